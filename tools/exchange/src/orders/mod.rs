//! The order side of rusto-exchange: accounts and signature checks, the matching engine against the served book,
//! the WebSocket API (`/ws-fapi/v1`) and REST order endpoints, the user data stream (listenKey, `/private`), and
//! the order faults. See tools/README.md.

pub mod algo;
pub mod api;
pub mod auth;
pub mod engine;
pub mod errors;
pub mod fx;
pub mod render;
pub mod rest;
pub mod types;
pub mod ws_api;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ctx::{Ctx, wall_ms};
use crate::market::{Frame, Kind};
use auth::ApiKey;
use engine::{Account, AccountCfg};
use errors::ApiError;

/// Order and request times kept for the `rateLimits` counts.
const MAX_RATE_TIMES: usize = 4800;

/// Order faults (set from the command line, consumed by the order endpoints).
#[derive(Default)]
pub struct OrderFaults {
    /// Order placements still to reject with `reject`.
    pub reject_left: AtomicU64,
    /// The error of `--reject-orders`.
    pub reject: Option<ApiError>,
    /// Placement acknowledgements still to lose (the order executes; no answer is sent).
    pub lose_left: AtomicU64,
    /// Delay before every order acknowledgement.
    pub ack_delay: Duration,
    /// User data stream connections are dropped this long after they open.
    pub user_stream_drop_after: Option<Duration>,
    /// Not a fault, a compatibility mode (`--legacy-conditionals`): the regular order endpoints accept
    /// STOP_MARKET / TAKE_PROFIT_MARKET as before the Algo migration instead of answering -4120.
    pub legacy_conditionals: bool,
    /// The user data stream is dropped as the next this-many fills are published, their events lost
    /// (`--user-stream-drop-on-fills`).
    pub user_stream_drop_on_fills: AtomicU64,
    /// Only fills of this order type (`"o"`) count for it (`--user-stream-drop-fill-type`; any when `None`).
    pub user_stream_drop_fill_type: Option<String>,
    /// The WebSocket API goes down after answering this many requests in all (`--ws-api-down-after`).
    pub ws_api_down_after: Option<u64>,
    /// How long it stays down (`None`: the rest of the run).
    pub ws_api_down_for: Option<Duration>,
    /// Requests answered over the WebSocket API so far (for `ws_api_down_after`).
    pub ws_api_answered: AtomicU64,
    /// When it went down.
    pub ws_api_down_since: Mutex<Option<Instant>>,
}

impl OrderFaults {
    /// Counts one answered WebSocket API request; true when this one takes the WebSocket API down.
    pub fn ws_api_answered_one(&self) -> bool {
        let Some(n) = self.ws_api_down_after else { return false };
        if self.ws_api_answered.fetch_add(1, Relaxed) + 1 != n {
            return false;
        }
        *self.ws_api_down_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        true
    }

    /// True while the WebSocket API is down (new connections are refused).
    pub fn ws_api_down(&self) -> bool {
        let since = *self.ws_api_down_since.lock().unwrap_or_else(|e| e.into_inner());
        since.is_some_and(|t| self.ws_api_down_for.is_none_or(|d| t.elapsed() < d))
    }
}

/// Counters of the order side that are not per account state.
#[derive(Default)]
pub struct OrderStats {
    /// Acknowledgements lost on purpose.
    pub acks_lost: AtomicU64,
    /// Acknowledgements delayed.
    pub acks_delayed: AtomicU64,
    /// Placements rejected by `--reject-orders`.
    pub injected_rejects: AtomicU64,
    /// User data stream events published (to the listenKey's stream).
    pub user_events: AtomicU64,
    /// User data stream events with no listenKey to publish to.
    pub user_events_unsent: AtomicU64,
    /// listenKeys that expired (`listenKeyExpired` pushed).
    pub listen_keys_expired: AtomicU64,
    /// User data stream connections dropped by the fault.
    pub user_streams_dropped: AtomicU64,
    /// WebSocket API sessions opened.
    pub ws_api_sessions: AtomicU64,
    /// WebSocket API connections refused (503) while it was down (`--ws-api-down-after`).
    pub ws_api_refused: AtomicU64,
    /// WebSocket API sessions closed by that fault.
    pub ws_api_dropped: AtomicU64,
}

/// The live listenKey.
pub struct ListenKey {
    /// The key.
    pub key: String,
    /// Wall time it expires, ms.
    pub expires_ms: i64,
}

/// Everything the order side owns.
pub struct Orders {
    /// Accepted keys (none: every order endpoint answers -2015).
    pub keys: Vec<ApiKey>,
    /// Faults.
    pub faults: OrderFaults,
    /// Counters.
    pub stats: OrderStats,
    /// listenKey validity.
    pub listen_ttl: Duration,
    acct: Mutex<Account>,
    listen: Mutex<Option<ListenKey>>,
    rates: Mutex<(VecDeque<i64>, VecDeque<i64>)>,
}

impl Orders {
    /// The order side with these keys, account settings and faults.
    pub fn new(keys: Vec<ApiKey>, cfg: AccountCfg, faults: OrderFaults, listen_ttl: Duration) -> Orders {
        Orders {
            keys,
            faults,
            stats: OrderStats::default(),
            listen_ttl,
            acct: Mutex::new(Account::new(cfg)),
            listen: Mutex::new(None),
            rates: Mutex::new((VecDeque::new(), VecDeque::new())),
        }
    }

    /// The account, locked (lock order: account, then market, then hub).
    pub fn account(&self) -> MutexGuard<'_, Account> {
        self.acct.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listen(&self) -> MutexGuard<'_, Option<ListenKey>> {
        self.listen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request (and an order request) for the `rateLimits` answers; returns (orders in 10 s, orders in
    /// 1 min, requests in 1 min).
    pub fn rate(&self, order: bool) -> (usize, usize, usize) {
        let now = wall_ms();
        let mut g = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let (orders, reqs) = &mut *g;
        for (q, add) in [(&mut *orders, order), (&mut *reqs, true)] {
            while q.front().is_some_and(|t| now - *t >= 60_000) || q.len() >= MAX_RATE_TIMES {
                q.pop_front();
            }
            if add {
                q.push_back(now);
            }
        }
        let in10 = orders.iter().filter(|t| now - **t < 10_000).count();
        (in10, orders.len(), reqs.len())
    }

    /// Takes one from a fault counter if it is positive.
    pub fn take(c: &AtomicU64) -> bool {
        c.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1)).is_ok()
    }

    /// Publishes the account's queued events to the listenKey's stream. Called with the account locked, so
    /// events from different threads keep the account's order.
    pub fn publish(&self, ctx: &Ctx, acct: &mut Account) {
        if acct.events.is_empty() {
            return;
        }
        let key = self.listen().as_ref().map(|l| l.key.clone());
        let Some(key) = key else {
            self.stats.user_events_unsent.fetch_add(acct.events.len() as u64, Relaxed);
            acct.events.clear();
            return;
        };
        // The fault: the stream goes down just before a fill's events, which are then lost as on Binance (an event
        // is sent once, to the connections open at that moment).
        let f = &self.faults;
        let hit = |e: &String| {
            e.contains("\"x\":\"TRADE\"")
                && f.user_stream_drop_fill_type.as_ref().is_none_or(|t| e.contains(&format!("\"o\":\"{t}\"")))
        };
        if f.user_stream_drop_on_fills.load(Relaxed) > 0
            && acct.events.iter().any(hit)
            && Self::take(&f.user_stream_drop_on_fills)
        {
            ctx.hub.drop_route(crate::hub::Route::Private, crate::stats::CloseReason::Fault);
            self.stats.user_streams_dropped.fetch_add(1, Relaxed);
            self.stats.user_events_unsent.fetch_add(acct.events.len() as u64, Relaxed);
            acct.events.clear();
            return;
        }
        self.stats.user_events.fetch_add(acct.events.len() as u64, Relaxed);
        let mut frames: Vec<Frame> = acct
            .events
            .drain(..)
            .map(|text| Frame { kind: Kind::UserData, sym: 0, stream: key.clone(), text })
            .collect();
        ctx.hub.publish(&mut frames);
    }

    /// Lets the engine see the trades and mark prices the feed served since the last call.
    pub fn drain_ticks(&self, ctx: &Ctx) {
        let mut acct = self.account();
        let now = ctx.clock.now_ms();
        let m = ctx.market();
        if m.ticks.is_empty() {
            return;
        }
        let mut m = m;
        let ticks = std::mem::take(&mut m.ticks);
        for t in &ticks {
            acct.on_tick(&m, t, now);
        }
        m.ticks = ticks;
        m.ticks.clear();
        drop(m);
        self.publish(ctx, &mut acct);
    }

    /// Creates the listenKey, or extends and returns the live one (as Binance does on `POST` with a live key).
    pub fn listen_start(&self) -> String {
        let mut g = self.listen();
        let now = wall_ms();
        let exp = now + self.listen_ttl.as_millis() as i64;
        if let Some(l) = g.as_mut().filter(|l| l.expires_ms > now) {
            l.expires_ms = exp;
            return l.key.clone();
        }
        let key = random_key();
        *g = Some(ListenKey { key: key.clone(), expires_ms: exp });
        key
    }

    /// Extends the live listenKey (-1125 when there is none).
    pub fn listen_ping(&self) -> Result<String, ApiError> {
        let mut g = self.listen();
        let now = wall_ms();
        match g.as_mut().filter(|l| l.expires_ms > now) {
            Some(l) => {
                l.expires_ms = now + self.listen_ttl.as_millis() as i64;
                Ok(l.key.clone())
            }
            None => Err(ApiError::new(-1125, "This listenKey does not exist.")),
        }
    }

    /// Closes the listenKey.
    pub fn listen_stop(&self) {
        *self.listen() = None;
    }

    /// Expires the listenKey when its time is over: pushes `listenKeyExpired` to its stream.
    pub fn expire_listen_key(&self, ctx: &Ctx) {
        let now = wall_ms();
        let key = {
            let mut g = self.listen();
            match g.as_ref() {
                Some(l) if l.expires_ms <= now => g.take().map(|l| l.key),
                _ => None,
            }
        };
        if let Some(key) = key {
            self.stats.listen_keys_expired.fetch_add(1, Relaxed);
            // USDⓈ-M "Event: User Data Stream Expired": E is a string in the docs' example.
            let text = json!({"e": "listenKeyExpired", "E": now.to_string(), "listenKey": key}).to_string();
            ctx.hub.publish(&mut vec![Frame { kind: Kind::UserData, sym: 0, stream: key, text }]);
        }
    }

    /// The order side's part of the stats JSON.
    pub fn stats_json(&self) -> Value {
        let a = self.account();
        let g = |c: &AtomicU64| c.load(Relaxed);
        let mut routes = serde_json::Map::new();
        for r in [types::ApiRoute::WsApi, types::ApiRoute::Rest] {
            let c = &a.counts[r.index()];
            let rejected: serde_json::Map<String, Value> =
                c.rejected.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            routes.insert(
                r.name().into(),
                json!({
                    "requests": c.requests,
                    "received": c.received,
                    "accepted": c.accepted,
                    "rejected": Value::Object(rejected),
                    "filled": c.filled,
                    "canceled": c.canceled,
                    "modified": c.modified,
                    "signed": c.signed,
                    "by_session": c.by_session,
                    "logon_requests": c.logon_requests,
                    "logons": c.logons,
                }),
            );
        }
        let ledger: serde_json::Map<String, Value> = a
            .ledger
            .iter()
            .map(|(cid, e)| {
                let v = json!({
                    "symbol": a.cfg.syms.get(e.sym).map_or("?", |x| x.name.as_str()),
                    "fills": e.fills,
                    "qty": e.qty.fmt(8),
                    "quote": e.quote.fmt(8),
                    "commission": e.commission.fmt(8),
                    "realized_pnl": e.realized.fmt(8),
                });
                (cid.clone(), v)
            })
            .collect();
        let margin: serde_json::Map<String, Value> = a
            .cfg
            .syms
            .iter()
            .zip(&a.positions)
            .map(|(x, p)| {
                (x.name.clone(), json!({"leverage": p.leverage, "isolated": p.isolated, "position": p.amt.fmt(8)}))
            })
            .collect();
        let s = &self.stats;
        json!({
            "routes": Value::Object(routes),
            "margin": Value::Object(margin),
            "ledger": Value::Object(ledger),
            "ledger_overflow": a.ledger_overflow,
            "open_orders": a.open.len(),
            "stops_triggered": a.triggered,
            "wallet_usdt": a.wallet.fmt(8),
            "acks_lost": g(&s.acks_lost),
            "acks_delayed": g(&s.acks_delayed),
            "injected_rejects": g(&s.injected_rejects),
            "user_events": g(&s.user_events),
            "user_events_unsent": g(&s.user_events_unsent),
            "user_events_dropped": a.events_dropped,
            "listen_keys_expired": g(&s.listen_keys_expired),
            "user_streams_dropped": g(&s.user_streams_dropped),
            "ws_api_sessions": g(&s.ws_api_sessions),
            "ws_api_refused": g(&s.ws_api_refused),
            "ws_api_dropped": g(&s.ws_api_dropped),
            "finished_orders_evicted": a.done_evicted,
            "algo": {
                "open": a.algo.open.len(),
                "placed": a.algo.placed,
                "cancelled": a.algo.canceled,
                "triggered": a.algo.triggered,
                "expired": a.algo.expired,
                "rejected": a.algo.rejected,
                "finished_evicted": a.algo.evicted,
            },
        })
    }
}

/// A 64-character listenKey of letters and digits from the system's random source.
fn random_key() -> String {
    use ring::rand::SecureRandom;
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 64];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // The system source failed: fall back to the clock (a test exchange; the key is not a secret).
        let mut x = wall_ms() as u64 | 1;
        for v in &mut b {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *v = x as u8;
        }
    }
    b.iter().map(|v| ALPHA[*v as usize % ALPHA.len()] as char).collect()
}

//! Counters and the stats JSON line.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::market::{Kind, MarketCounters};

/// Why a websocket connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it (close frame, EOF or a socket error).
    Client,
    /// More than the allowed incoming messages per second.
    RateLimit,
    /// No pong within `--pong-timeout-secs`.
    PongTimeout,
    /// `--max-conn-secs` reached.
    MaxAge,
    /// Its send queue overflowed or a write timed out.
    Slow,
    /// `--drop-connections` fault.
    Fault,
    /// The exchange is shutting down.
    Shutdown,
}

impl CloseReason {
    const N: usize = 7;
    const ALL: [CloseReason; CloseReason::N] = [
        CloseReason::Client,
        CloseReason::RateLimit,
        CloseReason::PongTimeout,
        CloseReason::MaxAge,
        CloseReason::Slow,
        CloseReason::Fault,
        CloseReason::Shutdown,
    ];
    fn name(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::RateLimit => "rate_limit",
            CloseReason::PongTimeout => "pong_timeout",
            CloseReason::MaxAge => "max_age",
            CloseReason::Slow => "slow",
            CloseReason::Fault => "fault_drop",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

type KindCounters = [AtomicU64; Kind::N];

/// Every counter of the exchange. Frames count as sent once written and flushed to a connection's socket.
pub struct Stats {
    /// Start of the run.
    pub start: Instant,
    /// Symbol names (upper case), by index.
    pub symbols: Vec<String>,
    /// Frames sent, by kind (summed over connections).
    pub sent: KindCounters,
    /// Frames sent, by symbol and kind.
    pub sent_sym: Vec<KindCounters>,
    /// Bytes of data frames sent.
    pub sent_bytes: AtomicU64,
    /// Replies to client messages sent.
    pub replies: AtomicU64,
    /// Malformed frames sent (fault).
    pub malformed: AtomicU64,
    /// Oversize frames sent (fault).
    pub oversize: AtomicU64,
    /// Pings sent.
    pub pings: AtomicU64,
    /// Pongs received.
    pub pongs: AtomicU64,
    /// Client messages received (text, binary, ping, pong).
    pub client_messages: AtomicU64,
    /// REST depth snapshots served (status 200).
    pub snapshots: AtomicU64,
    /// REST requests, all.
    pub rest_requests: AtomicU64,
    /// REST answers with 429.
    pub rest_429: AtomicU64,
    /// REST answers with 418.
    pub rest_418: AtomicU64,
    /// REST `ticker/24hr` answers.
    pub tickers: AtomicU64,
    /// REST `exchangeInfo` answers.
    pub exchange_infos: AtomicU64,
    /// TCP connections accepted.
    pub accepted: AtomicU64,
    /// TLS or HTTP failures before a request was routed.
    pub handshake_errors: AtomicU64,
    /// Websocket connections opened.
    pub ws_opened: AtomicU64,
    /// Websocket connections open now.
    pub ws_open: AtomicI64,
    /// Most websocket connections open at once since start.
    pub ws_open_max: AtomicI64,
    closed: [AtomicU64; CloseReason::N],
    /// Fault rounds fired.
    pub faults_fired: AtomicU64,
    /// Stalls done.
    pub stalls: AtomicU64,
}

fn kc() -> KindCounters {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl Stats {
    /// Counters for the given symbols.
    pub fn new(symbols: Vec<String>) -> Stats {
        Stats {
            start: Instant::now(),
            sent_sym: symbols.iter().map(|_| kc()).collect(),
            symbols,
            sent: kc(),
            sent_bytes: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            oversize: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            pongs: AtomicU64::new(0),
            client_messages: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            rest_requests: AtomicU64::new(0),
            rest_429: AtomicU64::new(0),
            rest_418: AtomicU64::new(0),
            tickers: AtomicU64::new(0),
            exchange_infos: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            handshake_errors: AtomicU64::new(0),
            ws_opened: AtomicU64::new(0),
            ws_open: AtomicI64::new(0),
            ws_open_max: AtomicI64::new(0),
            closed: std::array::from_fn(|_| AtomicU64::new(0)),
            faults_fired: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
        }
    }

    /// Counts one data frame sent.
    #[inline]
    pub fn count_sent(&self, kind: Kind, sym: u32, bytes: usize) {
        self.sent[kind.index()].fetch_add(1, Relaxed);
        if let Some(s) = self.sent_sym.get(sym as usize) {
            s[kind.index()].fetch_add(1, Relaxed);
        }
        self.sent_bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a closed websocket connection.
    pub fn count_closed(&self, r: CloseReason) {
        self.closed[CloseReason::ALL.iter().position(|x| *x == r).unwrap_or(0)].fetch_add(1, Relaxed);
    }

    /// The stats object (one JSON line when serialised).
    pub fn to_json(&self, m: &MarketCounters, books: Value) -> Value {
        let g = |a: &AtomicU64| a.load(Relaxed);
        let kinds = |c: &KindCounters| {
            let mut o = Map::new();
            for k in Kind::ALL {
                o.insert(k.name().into(), json!(c[k.index()].load(Relaxed)));
            }
            Value::Object(o)
        };
        let mut by_sym = Map::new();
        for (name, c) in self.symbols.iter().zip(&self.sent_sym) {
            by_sym.insert(name.clone(), kinds(c));
        }
        let mut published = Map::new();
        for k in Kind::ALL {
            published.insert(k.name().into(), json!(m.published[k.index()]));
        }
        let mut closed = Map::new();
        for (r, c) in CloseReason::ALL.iter().zip(&self.closed) {
            closed.insert(r.name().into(), json!(c.load(Relaxed)));
        }
        let s = &self.sent;
        json!({
            "uptime_secs": (self.start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            "trades": s[Kind::Trade.index()].load(Relaxed),
            "aggTrades": s[Kind::AggTrade.index()].load(Relaxed),
            "depth": s[Kind::Depth.index()].load(Relaxed),
            "bookTicker": s[Kind::BookTicker.index()].load(Relaxed),
            "markPrice": s[Kind::MarkPrice.index()].load(Relaxed),
            "snapshots": g(&self.snapshots),
            "sent": kinds(&self.sent),
            "sent_by_symbol": Value::Object(by_sym),
            "sent_bytes": g(&self.sent_bytes),
            "published": Value::Object(published),
            "depth_skipped": m.depth_skipped,
            "loops": m.loops,
            "replies": g(&self.replies),
            "malformed": g(&self.malformed),
            "oversize": g(&self.oversize),
            "pings": g(&self.pings),
            "pongs": g(&self.pongs),
            "client_messages": g(&self.client_messages),
            "rest": {
                "requests": g(&self.rest_requests),
                "depth": g(&self.snapshots),
                "ticker24hr": g(&self.tickers),
                "exchangeInfo": g(&self.exchange_infos),
                "status_429": g(&self.rest_429),
                "status_418": g(&self.rest_418),
            },
            "connections": {
                "accepted": g(&self.accepted),
                "handshake_errors": g(&self.handshake_errors),
                "ws_opened": g(&self.ws_opened),
                "ws_open": self.ws_open.load(Relaxed),
                "ws_open_max": self.ws_open_max.load(Relaxed),
                "ws_closed": Value::Object(closed),
            },
            "books": books,
            "faults_fired": g(&self.faults_fired),
            "stalls": g(&self.stalls),
        })
    }
}

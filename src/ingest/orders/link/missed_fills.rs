//! Fills a user data stream gap lost (issue 12). Binance sends an event once: a fill that happens while the user
//! stream is disconnected (or between an expired listenKey and its successor) never comes on the stream, and a
//! MARKET entry whose fill is never seen would leave the position without its protective stop.
//!
//! Contract: every regular order sent (MARKET entries and closes, the take profits' LIMITs) is remembered until it
//! is completely filled, cancelled, refused or expired (bounded, [`super::AWAITING_FILL_MAX`], the oldest forgotten
//! and counted). When the stream was down at any time since the order was sent, and once the stream is open again
//! and the order's acknowledgement gave its order id, the order's trades are asked for over REST
//! (`GET /fapi/v1/userTrades?orderId=`, whatever the WebSocket API's state) and those beyond the quantity the stream
//! reported are reported as the fills it would have carried: each trade's price, quantity, commission and realised
//! PnL. A MARKET order with no trade listed yet is asked again ([`CHECKS_MAX`] times, [`CHECK_EVERY`] apart); a
//! resting LIMIT with none simply has not filled. A fill reported twice (stream and trades) is dropped by the venue's
//! cumulative-quantity rule, both copies being the same. Not covered: a protective stop triggered in a gap (its
//! market order's id is not known before its first event).

use std::time::{Duration, Instant};

use crate::ingest::orders::response::{fills_from_trades, parse_rest_error, parse_user_trades};
use crate::ingest::orders::rest_lane::{RestAnswer, RestJob, RestOutcome};
use crate::types::order::ClientOrderId;
use crate::types::{ExecKind, ExecReport, OrderIntent, SymbolId, SymbolTable, clock};

use super::{Ctl, OrderLink, Sink, spec_of};

/// `userTrades` queries per order before its fills are left to the stream.
pub(super) const CHECKS_MAX: u8 = 5;
/// Time between two queries of one order (a trade may not be listed yet at the first).
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(500);

/// A MARKET order whose first fill is awaited.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaiting {
    client: ClientOrderId,
    decided_mono_ns: i64,
    symbol: SymbolId,
    qty_steps: i64,
    /// Binance's order id, from the acknowledgement (0 before it).
    order_id: i64,
    /// The user data stream was down at some time since the order was sent.
    gap: bool,
    /// `userTrades` queries sent.
    checks: u8,
    /// The next query is not sent before this.
    next_check: Option<Instant>,
    /// After a `-1021`: the clock measurement the next query waits for (the generation then).
    wait_clock: Option<u64>,
    /// A MARKET order (its first fill is the `order_fill` stage; no trade yet means not listed yet).
    market: bool,
    /// Cumulative quantity reported so far.
    cum_seen: i64,
}

impl Awaiting {
    /// `i`, sent while the stream is open (`gap` false) or not.
    pub(super) fn new(i: &OrderIntent, gap: bool) -> Self {
        Awaiting {
            client: i.client,
            decided_mono_ns: i.decided_mono_ns,
            symbol: i.symbol,
            qty_steps: i.qty_steps,
            order_id: 0,
            gap,
            checks: 0,
            next_check: None,
            wait_clock: None,
            market: i.order_type == crate::types::order::OrderType::Market,
            cum_seen: 0,
        }
    }
}

impl OrderLink {
    /// The user data stream went down (lost, or its listenKey expired or changed): every awaited order may lose
    /// its fill.
    pub(super) fn user_stream_gap(&mut self) {
        for a in &mut self.awaiting_fill {
            (a.gap, a.checks) = (true, 0);
        }
    }

    /// Remembers a regular order just sent (the oldest is forgotten when the watch is full: counted).
    pub(super) fn await_fills(&mut self, i: &OrderIntent) {
        if self.awaiting_fill.is_full() {
            self.awaiting_fill.remove(0);
            self.stats.awaiting_evicted += 1;
        }
        self.awaiting_fill.push(Awaiting::new(i, !self.user.open));
    }

    /// A report on its way to the engine: an acknowledgement gives the awaited order its id; a MARKET order's first
    /// fill is the `order_fill` stage; the complete fill, a cancel, a refusal or an expiry ends the watch.
    pub(super) fn note_awaited(&mut self, x: &ExecReport) {
        let Some(k) = self.awaiting_fill.iter().position(|a| a.client == x.client) else { return };
        let a = &mut self.awaiting_fill[k];
        match x.kind {
            ExecKind::Ack if x.exchange_order_id != 0 => a.order_id = x.exchange_order_id,
            ExecKind::Fill | ExecKind::PartialFill => {
                if a.market && a.cum_seen == 0 && a.decided_mono_ns != 0 {
                    self.order_fill.record((clock::now_ns() as i64).saturating_sub(a.decided_mono_ns).max(0) as u64);
                }
                a.cum_seen = a.cum_seen.max(x.cum_qty_steps);
                if x.kind == ExecKind::Fill {
                    self.awaiting_fill.remove(k);
                }
            }
            ExecKind::Canceled | ExecKind::Rejected | ExecKind::Expired => {
                self.awaiting_fill.remove(k);
            }
            _ => {}
        }
    }

    /// Once per turn: the awaited orders a stream gap touched, with their ids and the stream open again, are asked
    /// for their trades (one query per turn at most).
    pub(super) fn check_missed_fills(&mut self, table: &SymbolTable, now: Instant) {
        if self.rest.is_none() || !self.user.open || self.ctl.is_full() {
            return;
        }
        let generation = self.clock.generation();
        let due = self.awaiting_fill.iter().position(|a| {
            a.gap
                && a.order_id != 0
                && a.checks < CHECKS_MAX
                && a.next_check.is_none_or(|t| now >= t)
                && a.wait_clock.is_none_or(|g| g != generation)
        });
        let Some(k) = due else { return };
        let a = &mut self.awaiting_fill[k];
        a.checks += 1;
        a.next_check = Some(now + CHECK_EVERY);
        a.wait_clock = None;
        let (client, symbol, order_id) = (a.client, a.symbol, a.order_id);
        let Some(spec) = spec_of(table, symbol) else { return };
        let at = self.at();
        let Ok(call) = self.req.encode_rest_user_trades(&spec, order_id, at, &self.cfg.credentials) else { return };
        let id = self.next_id;
        self.next_id += 1;
        if self.queue_rest(RestJob::new(id, call, self.req.as_bytes())) {
            self.ctl.push((id, Ctl::Trades(client)));
            self.stats.fill_checks += 1;
        }
    }

    /// The trades of an awaited order: reported as its fills, unless the stream reported one meanwhile.
    pub(super) fn on_trades(&mut self, client: ClientOrderId, a: &RestAnswer, table: &SymbolTable, out: Sink<'_>) {
        let Some(k) = self.awaiting_fill.iter().position(|w| w.client == client) else { return };
        let qty_steps = self.awaiting_fill[k].qty_steps;
        let rows = match a.outcome {
            RestOutcome::Http(200) => parse_user_trades(a.body()),
            // A refusal or no answer: the next check asks again (after a clock measurement for a -1021).
            _ => {
                let code = parse_rest_error(a.body()).map(|e| e.code).ok();
                if code == Some(-1021) {
                    self.stats.clock_resyncs += 1;
                    self.clock.request_resync();
                    let w = &mut self.awaiting_fill[k];
                    (w.wait_clock, w.next_check) = (Some(self.clock.generation()), None);
                } else {
                    log::warn!("order session: userTrades of {client:?}: {:?} {code:?}; asked again", a.outcome);
                }
                return;
            }
        };
        let fills = match rows.and_then(|r| fills_from_trades(&r.0, client, qty_steps, table)) {
            Ok(f) => f,
            Err(e) => return self.undecodable(&e.to_string(), a.body()),
        };
        let w = &mut self.awaiting_fill[k];
        let seen = w.cum_seen;
        let missed = fills.iter().filter(|x| x.cum_qty_steps > seen).count();
        // Nothing listed yet for a MARKET order that never filled: asked again; otherwise this gap is checked.
        if !(w.market && fills.is_empty()) {
            w.gap = false;
        }
        if missed == 0 {
            return;
        }
        // A recovered fill is not a latency sample.
        w.decided_mono_ns = 0;
        self.stats.fills_recovered += missed as u64;
        log::warn!("order session: {missed} fill(s) of {client:?} the user data stream missed, taken from userTrades");
        for x in fills.iter().filter(|x| x.cum_qty_steps > seen) {
            self.report(x, out);
        }
    }
}

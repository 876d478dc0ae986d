//! Fills a user data stream gap lost (issue 12). Binance sends an event once: a fill that happens while the user
//! stream is disconnected (or between an expired listenKey and its successor) never comes on the stream, and a
//! MARKET entry whose fill is never seen would leave the position without its protective stop.
//!
//! Contract: every MARKET order sent is remembered until its first fill, refusal or expiry (bounded,
//! [`super::AWAITING_FILL_MAX`], the oldest forgotten). When the stream was down at any time since the order was
//! sent, and once the stream is open again and the order's acknowledgement gave its order id, the order's trades are
//! asked for over REST (`GET /fapi/v1/userTrades?orderId=`, [`CHECKS_MAX`] times, [`CHECK_EVERY`] apart, whatever
//! the WebSocket API's state) and reported as the fills the stream would have carried: each trade's price, quantity,
//! commission and realised PnL. A fill that does arrive on the stream meanwhile ends the check; one reported twice
//! (stream and trades) is dropped by the venue's cumulative-quantity rule, both copies being the same.

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
        }
    }
}

impl OrderLink {
    /// The user data stream went down (lost, or its listenKey expired or changed): every awaited order may lose
    /// its fill.
    pub(super) fn user_stream_gap(&mut self) {
        for a in &mut self.awaiting_fill {
            a.gap = true;
        }
    }

    /// A report on its way to the engine: an acknowledgement gives the awaited order its id; its first fill (the
    /// `order_fill` stage), a refusal or an expiry ends the wait.
    pub(super) fn note_awaited(&mut self, x: &ExecReport) {
        let Some(k) = self.awaiting_fill.iter().position(|a| a.client == x.client) else { return };
        match x.kind {
            ExecKind::Ack if x.exchange_order_id != 0 => self.awaiting_fill[k].order_id = x.exchange_order_id,
            ExecKind::Fill | ExecKind::PartialFill | ExecKind::Rejected | ExecKind::Expired => {
                let a = self.awaiting_fill.remove(k);
                if x.kind.is_fill() {
                    self.order_fill.record((clock::now_ns() as i64).saturating_sub(a.decided_mono_ns).max(0) as u64);
                }
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
        let Some(job) = RestJob::new(id, call, self.req.as_bytes()) else { return };
        if self.rest.as_mut().is_some_and(|l| l.push(job).is_ok()) {
            self.ctl.push((id, Ctl::Trades(client)));
            self.stats.fill_checks += 1;
        } else {
            self.stats.rest_queue_full += 1;
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
            Ok(f) if f.is_empty() => return,
            Ok(f) => f,
            Err(e) => return self.undecodable(&e.to_string(), a.body()),
        };
        self.awaiting_fill.remove(k);
        self.stats.fills_recovered += fills.len() as u64;
        log::warn!(
            "order session: {} fill(s) of {client:?} the user data stream missed, taken from userTrades",
            fills.len()
        );
        for x in &fills {
            self.report(x, out);
        }
    }
}

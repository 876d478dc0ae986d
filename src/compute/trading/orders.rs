//! Orders between a decision and its fill: the in-flight queue (order latency) and the resting take profits (queue
//! position). Exchange time only; nothing here allocates after the trader is built.
//!
//! **Latency.** A decision made on the event at exchange time `t` reaches the exchange at `t + L`, `L` the order
//! latency (`position.order_latency_ms`, or the measured one live). Until then the order waits in its trader's
//! [`OrderQueue`] (at most [`IN_FLIGHT_MAX`] orders; a full queue refuses the order, counted). It is executed on
//! the first event of its symbol whose exchange time is at or after its arrival, *before* that event is applied:
//! the market it meets is the book and clip as every earlier event left them, which is the market as it stood at
//! arrival. With `L = 0` an order is executed on the event that decided it. This is hftbacktest's order entry
//! latency (<https://hftbacktest.readthedocs.io/en/latest/latency_models.html>, "Order entry latency"), with a
//! constant latency; the fill report reaches the bot one latency later ("order response latency"), so orders the
//! bot sends *because of* a fill (the stop and take profits after the entry) arrive two latencies after it.
//!
//! Which orders travel: the entry (a market order), a SoftStop close (the bot decides it: a market order), the
//! breakeven move of the stop (a modify), and the stop + take profits sent on the entry fill. A stop-market order
//! already resting at the exchange triggers there with no latency; a liquidation is the exchange's own.
//!
//! The default `L` = 5 ms is a conservative one-way figure for a colocated box: a bot in the exchange's own cloud
//! region sees REST order round trips of a few ms, most of it the exchange's gateway, not the wire; measure yours
//! (link health's REST round trip: live paper runs use RTT/2 as soon as they have one).
//!
//! **Resting take profits.** TP1 and TP2 are reduce-only limit orders at their price, rounded onto the tick grid
//! away from the market (up for a sell, down for a buy: never a better price than the level asked for). They pay
//! the maker fee and fill only on trades, with a queue position by hftbacktest's risk-averse queue model
//! (`RiskAdverseQueueModel`, <https://hftbacktest.readthedocs.io/en/latest/order_fill.html>, "Queue Models"):
//! - joining, the quantity ahead is what the book shows at that price on our side (unknown, because the book is not
//!   synced: everything, so only a trade through the price fills);
//! - a trade *at* the price by an aggressor against our side (a buy for our sell) takes the queue ahead first and
//!   only its excess fills us (partially if it is smaller than our order);
//! - a trade *through* the price (beyond it) means the level was swept: we are filled completely;
//! - a depth update of the level can only shorten the queue ahead to the new resting quantity (cancels are assumed
//!   to be behind us; the model never moves us forward on a cancel otherwise);
//! - a price that merely touches the level (a quote, or trades that do not exhaust the queue) does not fill.
//! - A take profit whose price the market has already passed when it arrives would cross: it fills at once as a
//!   taker at its limit price (the worst price a limit allows, conservative), with the taker fee.

use arrayvec::ArrayVec;

use crate::compute::market::book::Book;
use crate::types::record::{ExitReason, Features, GatePass, Side};

/// Most orders one trader may have in flight at once (an entry, or the brackets, a stop move and a SoftStop close).
pub(crate) const IN_FLIGHT_MAX: usize = 4;

/// An entry decided on a signal, on its way to the exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EntryOrder {
    /// Direction.
    pub side: Side,
    /// Quantity (steps).
    pub qty: i64,
    /// Exchange time of the signal bar's last trade.
    pub bar_ts_ns: i64,
    /// The notional reserved with the risk limits at the decision, quote.
    pub reserved_notional: f64,
    /// What the gate measured at the decision.
    pub gate: GatePass,
    /// The signal's features.
    pub features: Features,
    /// Quote value of one tick.
    pub tick_value: f64,
    /// Base units per step.
    pub step_value: f64,
}

/// What an in-flight order does when it arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OrderKind {
    /// Open a position (a taker market order).
    Entry(EntryOrder),
    /// Close what is open (a taker market order), for `reason`, decided at `trigger_px` (ticks).
    Close {
        /// Why.
        reason: ExitReason,
        /// The price the decision was made at (ticks): the fill is never better.
        trigger_px: f64,
    },
    /// Move the resting stop to `px` (ticks), the breakeven + alpha level.
    MoveStop {
        /// The new stop.
        px: f64,
    },
    /// Place the stop and the take profits of the position just opened.
    Brackets,
}

/// An order in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InFlight {
    /// Exchange time it reaches the exchange.
    pub arrival_ns: i64,
    /// Exchange time of the event that decided it.
    pub decided_ns: i64,
    /// What it does.
    pub kind: OrderKind,
}

/// A trader's orders in flight, executed in arrival order (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct OrderQueue {
    q: ArrayVec<InFlight, IN_FLIGHT_MAX>,
}

impl OrderQueue {
    /// Queues `o`; a full queue gives it back (by value, as rtrb's `push` does: nothing is allocated).
    #[allow(clippy::result_large_err)]
    pub(crate) fn push(&mut self, o: InFlight) -> Result<(), InFlight> {
        self.q.try_push(o).map_err(|e| e.element())
    }

    /// The earliest arrival time, `i64::MAX` when nothing is in flight.
    #[inline]
    pub(crate) fn next_arrival_ns(&self) -> i64 {
        self.q.iter().map(|o| o.arrival_ns).min().unwrap_or(i64::MAX)
    }

    /// Takes the earliest order that has arrived by `ts_ns` (the first queued among equal arrivals).
    pub(crate) fn pop_due(&mut self, ts_ns: i64) -> Option<InFlight> {
        let (i, _) =
            self.q.iter().enumerate().filter(|(_, o)| o.arrival_ns <= ts_ns).min_by_key(|(_, o)| o.arrival_ns)?;
        Some(self.q.remove(i))
    }

    /// True when an order of this shape is in flight.
    pub(crate) fn has(&self, f: impl Fn(&OrderKind) -> bool) -> bool {
        self.q.iter().any(|o| f(&o.kind))
    }

    /// Drops every order (the position they were for is closed); returns how many entries were among them.
    pub(crate) fn clear(&mut self) -> usize {
        let entries = self.q.iter().filter(|o| matches!(o.kind, OrderKind::Entry(_))).count();
        self.q.clear();
        entries
    }

    /// Orders in flight.
    pub(crate) fn len(&self) -> usize {
        self.q.len()
    }
}

/// A resting reduce-only limit order with its queue position (risk-averse model, see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resting {
    /// Limit price (ticks, on the grid).
    pub px: i64,
    /// Quantity still to fill (steps).
    pub qty: i64,
    /// Quantity ahead of us at `px` (steps).
    pub ahead: i64,
    /// True for a sell (a long's take profit).
    pub sell: bool,
}

impl Resting {
    /// A limit at `level` (ticks, off the grid allowed: rounded away from the market) for `qty`, joining the queue
    /// the book shows at that price (everything when the book is not synced).
    pub(crate) fn join(level: f64, qty: i64, sell: bool, book: &Book) -> Self {
        let px = if sell { level.ceil() } else { level.floor() } as i64;
        let ahead = if book.is_synced() { book.qty_at(sell, px) } else { i64::MAX };
        Resting { px, qty, ahead, sell }
    }

    /// True when the market is already at or past the limit (`touch`: the best price on the other side, ticks):
    /// the order would cross on arrival.
    pub(crate) fn crosses(&self, touch: Option<i64>) -> bool {
        match touch {
            Some(t) if self.sell => t >= self.px,
            Some(t) => t <= self.px,
            None => false,
        }
    }

    /// A market trade at `px` for `qty` steps (`buyer_is_maker`: the seller was the aggressor). Returns the
    /// quantity that fills us.
    pub(crate) fn on_trade(&mut self, px: i64, qty: i64, buyer_is_maker: bool) -> i64 {
        if self.qty <= 0 {
            return 0;
        }
        let through = if self.sell { px > self.px } else { px < self.px };
        let at_us = px == self.px && (buyer_is_maker != self.sell);
        let filled = if through {
            self.qty
        } else if at_us {
            let excess = qty.saturating_sub(self.ahead.max(0));
            self.ahead = self.ahead.saturating_sub(qty).max(0);
            excess.clamp(0, self.qty)
        } else {
            0
        };
        self.qty -= filled;
        filled
    }

    /// The book changed: the queue ahead is at most what rests at our price now.
    pub(crate) fn on_depth(&mut self, book: &Book) {
        if book.is_synced() {
            self.ahead = self.ahead.min(book.qty_at(self.sell, self.px));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resting(ahead: i64) -> Resting {
        Resting { px: 10_060, qty: 5, ahead, sell: true }
    }

    #[test]
    fn a_trade_at_the_price_takes_the_queue_ahead_first() {
        let mut r = resting(8);
        // A buy (seller is maker = false) of 6 at our price: all of it goes to the queue ahead.
        assert_eq!(r.on_trade(10_060, 6, false), 0);
        assert_eq!(r.ahead, 2);
        // A sell at our price (a bid was hit there): not against our side.
        assert_eq!(r.on_trade(10_060, 50, true), 0);
        assert_eq!(r.ahead, 2);
        // A buy of 4: 2 to the queue, 2 to us.
        assert_eq!(r.on_trade(10_060, 4, false), 2);
        assert_eq!((r.ahead, r.qty), (0, 3));
        // A buy below our price: nothing.
        assert_eq!(r.on_trade(10_059, 100, false), 0);
        // A trade through the price: the rest.
        assert_eq!(r.on_trade(10_061, 1, true), 3);
        assert_eq!(r.qty, 0);
        assert_eq!(r.on_trade(10_070, 1, false), 0, "filled");
    }

    #[test]
    fn a_price_that_trades_once_with_less_than_the_queue_does_not_fill() {
        let mut r = resting(10);
        assert_eq!(r.on_trade(10_060, 9, false), 0);
        assert_eq!(r.qty, 5);
    }

    #[test]
    fn a_buy_limit_mirrors() {
        let mut r = Resting { px: 9_940, qty: 5, ahead: 3, sell: false };
        assert_eq!(r.on_trade(9_940, 5, false), 0, "a buy at our bid is not against us");
        assert_eq!(r.on_trade(9_940, 5, true), 2);
        assert_eq!(r.on_trade(9_939, 1, false), 3, "through");
        assert!(Resting { px: 9_940, qty: 1, ahead: 0, sell: false }.crosses(Some(9_940)));
        assert!(!Resting { px: 9_940, qty: 1, ahead: 0, sell: false }.crosses(Some(9_941)));
        assert!(Resting { px: 10_060, qty: 1, ahead: 0, sell: true }.crosses(Some(10_061)));
    }

    #[test]
    fn the_queue_pops_in_arrival_order_and_refuses_when_full() {
        let mut q = OrderQueue::default();
        let o = |a| InFlight { arrival_ns: a, decided_ns: 0, kind: OrderKind::Brackets };
        for a in [30, 10, 20, 10] {
            q.push(o(a)).unwrap();
        }
        assert_eq!(q.push(o(5)), Err(o(5)), "full");
        assert_eq!(q.next_arrival_ns(), 10);
        assert_eq!(q.pop_due(9), None);
        assert_eq!(q.pop_due(25).map(|o| o.arrival_ns), Some(10));
        assert_eq!(q.pop_due(25).map(|o| o.arrival_ns), Some(10));
        assert_eq!(q.pop_due(25).map(|o| o.arrival_ns), Some(20));
        assert_eq!(q.pop_due(25), None);
        assert_eq!(q.len(), 1);
        assert_eq!(q.clear(), 0);
        assert_eq!(q.next_arrival_ns(), i64::MAX);
    }
}

//! The book audit: each `bookTicker` is compared with the local book once the book has applied the depth update
//! with the same `u` (the bookTicker stream usually runs ahead of the depth stream, so the book reaches a ticker's
//! `u` only after the ticker arrived).

use crate::compute::market::book::Book;
use crate::types::event::MarketEvent;

/// A book ticker's best bid and ask, and the update id it describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticker {
    /// Update id `u`.
    pub u: u64,
    /// Best bid price (ticks).
    pub bid_px: i64,
    /// Best bid quantity (steps).
    pub bid_qty: i64,
    /// Best ask price (ticks).
    pub ask_px: i64,
    /// Best ask quantity (steps).
    pub ask_qty: i64,
}

impl Ticker {
    /// The ticker carried by a [`crate::types::event::EventKind::BookTicker`] event.
    pub fn of(e: &MarketEvent) -> Self {
        Ticker {
            u: e.ticker_update_id(),
            bid_px: e.ticker_bid_px(),
            bid_qty: e.ticker_bid_qty(),
            ask_px: e.ticker_ask_px(),
            ask_qty: e.ticker_ask_qty(),
        }
    }

    /// The book's best bid and ask (price and quantity) agree with the ticker.
    pub fn matches(&self, book: &Book) -> bool {
        matches!(book.top(), (Some(b), Some(a))
            if b.px == self.bid_px && b.qty == self.bid_qty && a.px == self.ask_px && a.qty == self.ask_qty)
    }
}

/// Book tickers waiting for the depth update with the same `u`. Fixed capacity; the oldest entry is overwritten
/// (counted). Every ticker ends compared, not compared for a counted reason, or still pending.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditQueue {
    items: [Ticker; AUDIT_PENDING],
    len: usize,
}

/// Book tickers kept waiting per symbol.
pub(crate) const AUDIT_PENDING: usize = 32;

/// Audit counters of one symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditCounts {
    /// Tickers compared with the book when the book's last applied depth `u` equalled theirs (at arrival, or
    /// later when the depth update with that `u` was applied).
    pub compared: u64,
    /// … of which the book's best bid and ask (price and quantity) agreed.
    pub matched: u64,
    /// Tickers not compared because the book was not synced when they arrived.
    pub unsynced: u64,
    /// Tickers not compared because the book passed their `u` without stopping at it (a depth update covers a
    /// range of ids; the ticker's fell inside one).
    pub passed: u64,
    /// Tickers not compared because the queue was full (the oldest waiting one is dropped).
    pub overflow: u64,
}

impl AuditQueue {
    /// True when no ticker waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tickers waiting for their depth update.
    pub fn pending(&self) -> u64 {
        self.len as u64
    }

    /// Queues `t`; true when the oldest waiting ticker had to be dropped to make room.
    fn push(&mut self, t: Ticker) -> bool {
        let full = self.len == AUDIT_PENDING;
        if full {
            self.items.copy_within(1.., 0);
            self.len -= 1;
        }
        self.items[self.len] = t;
        self.len += 1;
        full
    }

    /// A ticker arrived: compared now when the synced book is at its `u`, kept when the book is behind.
    pub fn on_ticker(&mut self, t: Ticker, book: &Book) -> AuditCounts {
        let mut c = AuditCounts::default();
        if book.is_synced() {
            let last_u = book.last_update_id();
            if t.u == last_u {
                c.compared = 1;
                c.matched = t.matches(book) as u64;
            } else if t.u > last_u {
                c.overflow = self.push(t) as u64;
            } else {
                c.passed = 1;
            }
        } else {
            c.unsynced = 1;
        }
        c
    }

    /// Compares the waiting tickers with `u == last_u` against the book and drops those the book has passed.
    pub fn settle(&mut self, book: &Book) -> AuditCounts {
        let last_u = book.last_update_id();
        let mut c = AuditCounts::default();
        let mut keep = 0;
        for i in 0..self.len {
            let t = self.items[i];
            if t.u == last_u {
                c.compared += 1;
                c.matched += t.matches(book) as u64;
            } else if t.u > last_u {
                self.items[keep] = t;
                keep += 1;
            } else {
                c.passed += 1;
            }
        }
        self.len = keep;
        c
    }
}

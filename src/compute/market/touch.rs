//! The freshest touch: the price levels a `bookTicker` or a trade has proven gone since the book's last diff.
//!
//! The book is built from `depth@0ms` diffs (about every 50 ms); trades and `bookTicker` run ahead of it. A fill
//! simulated against the book alone would sell at a bid the market had already left. [`Touch`] keeps, per symbol,
//! the clips that fresher events put on the book's top; [`crate::compute::trading::gate::walk`] (every entry and
//! exit fill) never takes a level beyond them.
//!
//! The rule, per side (bids shown; asks mirror it):
//! - **bookTicker**: a ticker whose `u` is newer than the book's last applied `u` clips the bids at its best bid
//!   `b` (and the asks at its best ask): no bid above `b` is available. At `b` itself the ticker's quantity is the
//!   freshest known and replaces the book's; deeper than `b`, the book's own levels are taken. A ticker whose `u`
//!   the book has already reached is ignored (the book is as fresh).
//!   It **expires** when a diff (or snapshot) with `u ≥` the ticker's `u` is applied.
//! - **trade**: a taker sell at `P` (buyer is maker) consumed every bid above `P`: no bid above `P` is available;
//!   the level at `P` keeps the book's quantity (what the trade left there is unknown; the book's is an upper
//!   bound). A taker buy at `P` clips the asks below `P`. The latest trade of each side replaces the earlier one
//!   (a later sell at a higher price proves that bid existed again). It **expires** when a diff with exchange time
//!   `≥` the trade's time is applied.
//! - Both clips can be active: a sell never fills above min(ticker bid, last sell trade); a buy never below
//!   max(ticker ask, last buy trade). When the clipped top holds less than the order needs, the walk goes on into
//!   the book's deeper levels (below the clip, which no fresher event contradicts); when those run out too, the
//!   walk is short and the caller refuses the entry or falls back to its observed price, as without a clip.
//!
//! The gate's filters (spread, depth imbalance, impact depth) still read the book as of its last diff; only the
//! fill walk reads the clip. Fixed size, `Copy`, O(1) per event, no allocation.

/// One side's clip: the price beyond which no level is available, and the quantity known there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideClip {
    /// Active ticker clip: (price ticks, quantity steps, update id `u`).
    ticker: Option<(i64, i64, u64)>,
    /// Active trade clip: (price ticks, exchange time ns).
    trade: Option<(i64, i64)>,
}

/// The limit a clip puts on one side of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// No level beyond this price is taken (above it for bids, below it for asks).
    pub px: i64,
    /// `Some(qty)`: the quantity at `px` is known from the ticker and replaces the book's level there.
    pub ticker_qty: Option<i64>,
}

/// The clips of one symbol's book (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touch {
    /// Bid-side clip (limits sells).
    pub bids: SideClip,
    /// Ask-side clip (limits buys).
    pub asks: SideClip,
    /// Tickers that clipped the book (their `u` was ahead of it).
    pub ticker_clips: u64,
    /// Trades that clipped the book.
    pub trade_clips: u64,
}

impl SideClip {
    /// The limit for this side; `better(a, b)` is true when price `a` is better for the resting side than `b`
    /// (higher for bids, lower for asks).
    #[inline]
    fn limit(&self, better: impl Fn(i64, i64) -> bool) -> Option<Limit> {
        match (self.ticker, self.trade) {
            (None, None) => None,
            (Some((px, q, _)), None) => Some(Limit { px, ticker_qty: Some(q) }),
            (None, Some((px, _))) => Some(Limit { px, ticker_qty: None }),
            // The trade proves the ticker's level gone: only the book's quantity at the trade price is left.
            (Some((tp, _, _)), Some((px, _))) if better(tp, px) => Some(Limit { px, ticker_qty: None }),
            (Some((px, q, _)), Some(_)) => Some(Limit { px, ticker_qty: Some(q) }),
        }
    }

    #[inline]
    fn expire(&mut self, book_u: u64, book_ts_ns: i64) {
        if matches!(self.ticker, Some((_, _, u)) if book_u >= u) {
            self.ticker = None;
        }
        if matches!(self.trade, Some((_, t)) if book_ts_ns >= t) {
            self.trade = None;
        }
    }
}

impl Touch {
    /// A bookTicker (best bid px/qty, best ask px/qty, update id `u`) arrived while the book's last applied id is
    /// `book_u`: clips both sides when `u > book_u`.
    #[inline]
    pub fn on_ticker(&mut self, bid: (i64, i64), ask: (i64, i64), u: u64, book_u: u64) {
        if u <= book_u {
            return;
        }
        self.ticker_clips += 1;
        self.bids.ticker = Some((bid.0, bid.1, u));
        self.asks.ticker = Some((ask.0, ask.1, u));
    }

    /// A market trade at `px` (ticks), exchange time `ts_ns`, made by a taker seller when `buyer_is_maker`, applied
    /// while the book's last update is at `book_ts_ns`: clips the side it consumed when the trade is newer.
    #[inline]
    pub fn on_trade(&mut self, px: i64, buyer_is_maker: bool, ts_ns: i64, book_ts_ns: i64) {
        if ts_ns <= book_ts_ns {
            // The book already has a diff at or after this trade.
            return;
        }
        self.trade_clips += 1;
        let side = if buyer_is_maker { &mut self.bids } else { &mut self.asks };
        side.trade = Some((px, ts_ns));
    }

    /// The book applied a message reaching update id `book_u` at exchange time `book_ts_ns`: the clips it
    /// supersedes expire.
    #[inline]
    pub fn on_depth(&mut self, book_u: u64, book_ts_ns: i64) {
        self.bids.expire(book_u, book_ts_ns);
        self.asks.expire(book_u, book_ts_ns);
    }

    /// The limit on bids (what a sell may take), if any.
    #[inline]
    pub fn bid_limit(&self) -> Option<Limit> {
        self.bids.limit(|a, b| a > b)
    }

    /// The limit on asks (what a buy may take), if any.
    #[inline]
    pub fn ask_limit(&self) -> Option<Limit> {
        self.asks.limit(|a, b| a < b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_clips_until_a_diff_reaches_its_u() {
        let mut t = Touch::default();
        t.on_ticker((100, 3), (101, 4), 50, 50);
        assert_eq!(t.bid_limit(), None, "a ticker the book has reached does not clip");
        t.on_ticker((100, 3), (101, 4), 51, 50);
        assert_eq!(t.bid_limit(), Some(Limit { px: 100, ticker_qty: Some(3) }));
        assert_eq!(t.ask_limit(), Some(Limit { px: 101, ticker_qty: Some(4) }));
        t.on_depth(50, 1_000);
        assert!(t.bid_limit().is_some(), "a diff older than the ticker keeps the clip");
        t.on_depth(51, 1_000);
        assert_eq!((t.bid_limit(), t.ask_limit()), (None, None));
        assert_eq!(t.ticker_clips, 1);
    }

    #[test]
    fn trade_clips_its_side_until_a_diff_at_its_time() {
        let mut t = Touch::default();
        t.on_trade(99, true, 2_000, 1_000); // taker sell at 99: bids above 99 gone
        assert_eq!(t.bid_limit(), Some(Limit { px: 99, ticker_qty: None }));
        assert_eq!(t.ask_limit(), None);
        t.on_trade(103, false, 2_000, 1_000); // taker buy at 103: asks below 103 gone
        assert_eq!(t.ask_limit(), Some(Limit { px: 103, ticker_qty: None }));
        t.on_trade(98, true, 1_000, 1_000);
        assert_eq!(t.bid_limit().unwrap().px, 99, "a trade the book already covers does not clip");
        t.on_depth(0, 1_999);
        assert!(t.bid_limit().is_some());
        t.on_depth(0, 2_000);
        assert_eq!((t.bid_limit(), t.ask_limit()), (None, None));
    }

    #[test]
    fn both_clips_take_the_tighter() {
        let mut t = Touch::default();
        t.on_ticker((100, 3), (101, 4), 51, 50);
        t.on_trade(99, true, 2_000, 1_000);
        assert_eq!(t.bid_limit(), Some(Limit { px: 99, ticker_qty: None }), "the trade is below the ticker's bid");
        t.on_trade(102, false, 2_000, 1_000);
        assert_eq!(t.ask_limit(), Some(Limit { px: 102, ticker_qty: None }));
        t.on_trade(100, false, 2_001, 1_000);
        assert_eq!(t.ask_limit(), Some(Limit { px: 101, ticker_qty: Some(4) }), "the ticker's ask is the tighter");
    }
}

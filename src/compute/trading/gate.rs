//! The execution gate: three filters before every entry, in order, each rejection counted by reason. Fails closed:
//! a missing or stale input blocks the entry.
//!
//! 1. **Book quality**: the symbol's book is synced; its last applied update is at most `max_book_age_ms` of
//!    exchange time older than the signal; spread = (ask − bid) / mid × 10⁴ bps ≤ `max_spread_bps`; depth imbalance
//!    over the top `depth_levels` levels favours the entry: long needs Σ bid qty / Σ ask qty ≥
//!    `min_depth_imbalance_ratio`, short needs Σ ask / Σ bid ≥ it.
//! 2. **Expectancy by symbol + UTC hour**: the mean PnL (% of notional, after fees) of the last `lookback_trades`
//!    closed trades of this symbol in this UTC hour of day; with at least `min_trades_per_hour` of them and a mean
//!    below `min_avg_pnl_pct`, block. The state ([`HourExpectancy`]) is persisted by the persistence thread and
//!    reloaded at start, so it survives restarts.
//! 3. **Slippage model**: expected slippage bps = half spread bps + `impact_weight_bps` × q / D, where q is the order
//!    quantity and D the quantity resting on the side the order takes (asks for a long) over the top
//!    `impact_depth_levels` levels. An order as large as the visible depth costs the half spread plus
//!    `impact_weight_bps`. Above `max_model_slippage_bps`, the entry is cancelled.

use crate::compute::market::book::{Book, MarketModel};
use crate::types::record::{GatePass, Side};

/// Gate parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateConfig {
    /// Oldest book update accepted, ms of exchange time before the signal.
    pub max_book_age_ms: i64,
    /// Widest spread, bps.
    pub max_spread_bps: f64,
    /// Levels per side in the depth imbalance.
    pub depth_levels: usize,
    /// Minimum favourable depth ratio.
    pub min_depth_imbalance_ratio: f64,
    /// Samples needed before the hour filter can block.
    pub min_trades_per_hour: usize,
    /// Mean PnL % below which the hour blocks.
    pub min_avg_pnl_pct: f64,
    /// Closed trades kept per symbol + hour.
    pub lookback_trades: usize,
    /// Most expected slippage, bps.
    pub max_model_slippage_bps: f64,
    /// Levels of the taking side in the impact depth.
    pub impact_depth_levels: usize,
    /// Impact coefficient, bps per unit of q / D.
    pub impact_weight_bps: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_book_age_ms: 2_000,
            max_spread_bps: 4.0,
            depth_levels: 5,
            min_depth_imbalance_ratio: 1.05,
            min_trades_per_hour: 12,
            min_avg_pnl_pct: 0.0,
            lookback_trades: 80,
            max_model_slippage_bps: 6.0,
            impact_depth_levels: 5,
            impact_weight_bps: 8.0,
        }
    }
}

// Bounds of `[gate]`.
crate::bounds!(GateConfig as _g {
    max_book_age_ms: [1, 3_600_000] "1 to 3600000 ms";
    max_spread_bps: [0.0, 10_000.0] "0 to 10000 bps";
    depth_levels: [1, 1000] "1 to 1000 levels";
    min_depth_imbalance_ratio: [0.0, 1000.0] "0 to 1000";
    min_trades_per_hour: [1, HOUR_LOOKBACK_MAX] "1 to 1024";
    min_avg_pnl_pct: [-100.0, 100.0] "-100 to 100 (%)";
    lookback_trades: [1, HOUR_LOOKBACK_MAX] "1 to 1024";
    max_model_slippage_bps: [0.0, 10_000.0] "0 to 10000 bps";
    impact_depth_levels: [1, 1000] "1 to 1000 levels";
    impact_weight_bps: [0.0, 10_000.0] "0 to 10000 bps";
});

/// Why the gate refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateReject {
    /// The book is not synced (or has no top).
    BookMissing,
    /// The book's last update is too old.
    BookStale,
    /// The spread is too wide.
    SpreadWide,
    /// Depth does not favour the entry.
    DepthImbalance,
    /// This symbol + UTC hour has negative expectancy.
    HourExpectancy,
    /// Expected slippage above the cap.
    Slippage,
}

impl GateReject {
    /// All reasons, in gate order.
    pub const ALL: [GateReject; 6] = [
        GateReject::BookMissing,
        GateReject::BookStale,
        GateReject::SpreadWide,
        GateReject::DepthImbalance,
        GateReject::HourExpectancy,
        GateReject::Slippage,
    ];
    /// Stable name.
    pub fn name(&self) -> &'static str {
        match self {
            GateReject::BookMissing => "book_missing",
            GateReject::BookStale => "book_stale",
            GateReject::SpreadWide => "spread_wide",
            GateReject::DepthImbalance => "depth_imbalance",
            GateReject::HourExpectancy => "hour_expectancy",
            GateReject::Slippage => "slippage",
        }
    }
    /// Index in [`GateReject::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }
}

/// Most closed trades kept per symbol and hour.
pub(crate) const HOUR_LOOKBACK_MAX: usize = 1024;

/// Recent closed-trade PnL per UTC hour of one symbol (a ring per hour, fixed capacity).
#[derive(Debug, Clone)]
pub struct HourExpectancy {
    rings: Vec<[f64; HOUR_LOOKBACK_MAX]>,
    len: [usize; 24],
    head: [usize; 24],
    lookback: usize,
}

impl HourExpectancy {
    /// Empty state keeping `lookback` trades per hour.
    pub fn new(lookback: usize) -> Self {
        HourExpectancy {
            rings: vec![[0.0; HOUR_LOOKBACK_MAX]; 24],
            len: [0; 24],
            head: [0; 24],
            lookback: lookback.clamp(1, HOUR_LOOKBACK_MAX),
        }
    }

    /// UTC hour of day of an exchange time.
    pub fn hour_of(ts_ns: i64) -> usize {
        (ts_ns.div_euclid(3_600_000_000_000).rem_euclid(24)) as usize
    }

    /// Adds a closed trade's PnL % to its hour.
    pub fn push(&mut self, hour: usize, pnl_pct: f64) {
        let h = hour % 24;
        let (head, n) = (self.head[h], self.lookback);
        self.rings[h][head] = pnl_pct;
        self.head[h] = (head + 1) % n;
        self.len[h] = (self.len[h] + 1).min(n);
    }

    /// (samples, mean) of an hour.
    pub fn stats(&self, hour: usize) -> (usize, f64) {
        let h = hour % 24;
        let n = self.len[h];
        if n == 0 {
            return (0, 0.0);
        }
        (n, self.rings[h][..n].iter().sum::<f64>() / n as f64)
    }

    /// The kept samples of an hour, oldest first (for persistence).
    pub fn samples(&self, hour: usize) -> impl Iterator<Item = f64> + '_ {
        let h = hour % 24;
        let n = self.len[h];
        let start = if n < self.lookback { 0 } else { self.head[h] };
        (0..n).map(move |k| self.rings[h][(start + k) % self.lookback])
    }
}

/// Sum of quantity over the best `n` levels of a side.
fn depth(side: &crate::compute::market::book::BookSide, n: usize) -> i64 {
    side.iter_from_best().take(n).map(|l| l.qty).sum()
}

/// Runs the three filters for an entry of `qty` steps at exchange time `ts_ns`.
pub(crate) fn check(
    cfg: &GateConfig,
    book: &Book,
    hours: &HourExpectancy,
    side: Side,
    qty: i64,
    ts_ns: i64,
) -> Result<GatePass, GateReject> {
    // 1. Book quality.
    if !book.is_synced() {
        return Err(GateReject::BookMissing);
    }
    let (Some(bid), Some(ask)) = book.top() else { return Err(GateReject::BookMissing) };
    if ts_ns - book.last_update_ns > cfg.max_book_age_ms.saturating_mul(1_000_000) {
        return Err(GateReject::BookStale);
    }
    let mid = (bid.px + ask.px) as f64 / 2.0;
    let spread_bps = (ask.px - bid.px) as f64 / mid * 1e4;
    if spread_bps > cfg.max_spread_bps {
        return Err(GateReject::SpreadWide);
    }
    let (bd, ad) = (depth(&book.bids, cfg.depth_levels), depth(&book.asks, cfg.depth_levels));
    let (fav, opp) = match side {
        Side::Long => (bd, ad),
        Side::Short => (ad, bd),
    };
    let depth_ratio = if opp > 0 { fav as f64 / opp as f64 } else { f64::INFINITY };
    if fav == 0 || depth_ratio < cfg.min_depth_imbalance_ratio {
        return Err(GateReject::DepthImbalance);
    }
    // 2. Hour expectancy.
    let (n, mean) = hours.stats(HourExpectancy::hour_of(ts_ns));
    if n >= cfg.min_trades_per_hour && mean < cfg.min_avg_pnl_pct {
        return Err(GateReject::HourExpectancy);
    }
    // 3. Slippage model.
    let take = match side {
        Side::Long => depth(&book.asks, cfg.impact_depth_levels),
        Side::Short => depth(&book.bids, cfg.impact_depth_levels),
    };
    if take <= 0 {
        return Err(GateReject::Slippage);
    }
    let expected_slippage_bps = spread_bps / 2.0 + cfg.impact_weight_bps * qty as f64 / take as f64;
    if expected_slippage_bps > cfg.max_model_slippage_bps {
        return Err(GateReject::Slippage);
    }
    Ok(GatePass { spread_bps, depth_ratio, expected_slippage_bps })
}

/// The fill walk of the top-of-book model (see [`walk`]).
fn walk_top(book: &Book, buy: bool, qty: i64) -> (f64, i64) {
    let (level, limit) =
        if buy { (book.asks.best(), book.clip.ask_limit()) } else { (book.bids.best(), book.clip.bid_limit()) };
    let Some(l) = level else { return (0.0, 0) };
    let px = match limit {
        Some(c) if buy && c.px > l.px => c.px,
        Some(c) if !buy && c.px < l.px => c.px,
        _ => l.px,
    };
    let filled = qty.min(l.qty).max(0);
    (if filled > 0 { px as f64 } else { 0.0 }, filled)
}

/// A simulated taker fill that walks the book: (VWAP price in ticks, filled qty). Takes asks for a buy and bids for
/// a sell; fills at most what the kept levels hold. Levels the book's clip ([`crate::compute::market::touch`])
/// proves gone are skipped: a sell never fills above the clip's bid, a buy never below its ask; at a ticker clip's
/// price the ticker's quantity replaces the book's, deeper levels come from the book.
///
/// Under the top-of-book model ([`crate::compute::market::book`]) the one level is the ticker's: the order fills up
/// to the ticker's quantity at the ticker's price, or at the price of a later trade that proves the ticker's level
/// gone (the clip: a sell never above the last taker sell, a buy never below the last taker buy); nothing deeper is
/// known, so a larger order is short and refused by the caller.
pub(crate) fn walk(book: &Book, buy: bool, qty: i64) -> (f64, i64) {
    if book.model() == MarketModel::TopOfBook {
        return walk_top(book, buy, qty);
    }
    let (side, limit) = if buy { (&book.asks, book.clip.ask_limit()) } else { (&book.bids, book.clip.bid_limit()) };
    let mut left = qty;
    let mut notional = 0.0;
    let mut take_at = |px: i64, avail: i64, left: &mut i64| {
        let take = (*left).min(avail.max(0));
        notional += take as f64 * px as f64;
        *left -= take;
    };
    // `beyond(px)`: the level is past the clip (better for the taker than the freshest touch allows).
    let (cap, strict) = match limit {
        Some(l) => {
            if let Some(q) = l.ticker_qty {
                take_at(l.px, q, &mut left);
            }
            // With the ticker's level taken, the book's level at that price is replaced, not added.
            (Some(l.px), l.ticker_qty.is_some())
        }
        None => (None, false),
    };
    let beyond = |px: i64| match cap {
        None => false,
        Some(c) if buy => px < c || (strict && px == c),
        Some(c) => px > c || (strict && px == c),
    };
    for l in side.iter_from_best() {
        if left <= 0 {
            break;
        }
        if beyond(l.px) {
            continue;
        }
        take_at(l.px, l.qty, &mut left);
    }
    let filled = qty - left;
    if filled == 0 { (0.0, 0) } else { (notional / filled as f64, filled) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::market::book::{BookConfig, BookOutcome};
    use crate::types::event::{EventKind, MarketEvent, flags};

    /// A synced book with the given levels (via a snapshot + bridging diff), last update at `ts`.
    pub(crate) fn book_with(bids: &[(i64, i64)], asks: &[(i64, i64)], ts: i64) -> Book {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 256 });
        let mut h = MarketEvent::new(EventKind::Snapshot, 0, ts, 0, 0);
        h.p[0] = 10;
        h.set_level_counts(bids.len() as u32, asks.len() as u32);
        b.on_event(&h);
        for (side, ask) in [(bids, false), (asks, true)] {
            for ch in side.chunks(2) {
                let mut e = MarketEvent::new(EventKind::Levels, 0, ts, 0, 0);
                e.flags = flags::SNAPSHOT
                    | if ask { flags::ASK } else { 0 }
                    | if ch.len() == 2 { flags::TWO_LEVELS } else { 0 };
                e.p[0] = ch[0].0;
                e.p[1] = ch[0].1;
                if ch.len() == 2 {
                    e.p[2] = ch[1].0;
                    e.p[3] = ch[1].1;
                }
                b.on_event(&e);
            }
        }
        let mut d = MarketEvent::new(EventKind::Depth, 0, ts, 0, 0);
        d.p = [10, 11, 9, 0];
        assert_eq!(b.on_event(&d), BookOutcome::Synced);
        b
    }

    const T: i64 = 1_680_652_800_000_000_000; // 00:00 UTC

    fn book() -> Book {
        // bid 99.99 x (3,2,...), ask 100.00: spread 1 tick of 10000 = 1 bp.
        book_with(&[(9999, 30), (9998, 20), (9997, 10)], &[(10000, 10), (10001, 10), (10002, 20)], T)
    }

    /// The top-of-book model: the ticker is the book (imbalance and impact from its quantities, the walk at its
    /// level or at a later trade's price), a stale ticker blocks, a crossed one unsyncs, the first depth message
    /// ends the model (unsynced until the depth stream syncs it).
    #[test]
    fn top_of_book_model() {
        let cfg = GateConfig::default();
        let h = HourExpectancy::new(80);
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 256 });
        assert!(!b.on_top_of_book((9999, 30), (10000, 20), 5, T), "not allowed: nothing done");
        b.allow_top_of_book();
        assert!(b.on_top_of_book((9999, 30), (10000, 20), 5, T));
        assert_eq!(b.model(), MarketModel::TopOfBook);
        let p = check(&cfg, &b, &h, Side::Long, 4, T + 1_000_000_000).unwrap();
        assert!((p.depth_ratio - 30.0 / 20.0).abs() < 1e-12);
        assert!((p.expected_slippage_bps - (p.spread_bps / 2.0 + 8.0 * 4.0 / 20.0)).abs() < 1e-9);
        assert_eq!(check(&cfg, &b, &h, Side::Short, 4, T), Err(GateReject::DepthImbalance));
        // Staleness: older than max_book_age_ms of exchange time blocks.
        assert_eq!(check(&cfg, &b, &h, Side::Long, 4, T + 2_000_000_001), Err(GateReject::BookStale));
        // The walk: the ticker's level, short beyond its quantity; a later taker sell moves a sell's price.
        assert_eq!(walk(&b, true, 4), (10000.0, 4));
        assert_eq!(walk(&b, true, 25), (10000.0, 20));
        b.clip_by_trade(9997, true, T + 1);
        assert_eq!(walk(&b, false, 10), (9997.0, 10));
        // A newer ticker expires that clip.
        assert!(b.on_top_of_book((9998, 30), (9999, 20), 6, T + 2));
        assert_eq!(walk(&b, false, 10), (9998.0, 10));
        // Crossed: fails closed.
        assert!(b.on_top_of_book((10000, 30), (10000, 20), 7, T + 3));
        assert_eq!((b.tob_refused, b.tob_tickers), (1, 2));
        assert_eq!(check(&cfg, &b, &h, Side::Long, 4, T + 3), Err(GateReject::BookMissing));
        // The first depth message: the full book from now on, unsynced, tickers no longer the book.
        assert!(b.on_top_of_book((9999, 30), (10000, 20), 8, T + 4));
        let mut d = MarketEvent::new(EventKind::Depth, 0, T + 5, 0, 0);
        d.p = [20, 21, 19, 0];
        b.on_event(&d);
        assert_eq!(b.model(), MarketModel::FullBook);
        assert!(!b.is_synced() && b.top() == (None, None));
        assert!(!b.on_top_of_book((9999, 30), (10000, 20), 9, T + 6));
        assert_eq!(check(&cfg, &b, &h, Side::Long, 4, T + 6), Err(GateReject::BookMissing));
    }

    #[test]
    fn passes_and_measures() {
        let p = check(&GateConfig::default(), &book(), &HourExpectancy::new(80), Side::Long, 4, T).unwrap();
        assert!((p.spread_bps - 1.0 / 9999.5 * 1e4).abs() < 1e-9);
        assert!((p.depth_ratio - 60.0 / 40.0).abs() < 1e-12);
        // half spread + 8 bps x 4 / 40.
        assert!((p.expected_slippage_bps - (p.spread_bps / 2.0 + 0.8)).abs() < 1e-9);
    }

    #[test]
    fn each_rejection_in_order() {
        let c = GateConfig::default();
        let h = HourExpectancy::new(80);
        let unsynced = Book::new(BookConfig::default());
        assert_eq!(check(&c, &unsynced, &h, Side::Long, 1, T), Err(GateReject::BookMissing));
        assert_eq!(check(&c, &book(), &h, Side::Long, 1, T + 2_000_000_001), Err(GateReject::BookStale));
        let wide = book_with(&[(9990, 30)], &[(10000, 10)], T);
        assert_eq!(check(&c, &wide, &h, Side::Long, 1, T), Err(GateReject::SpreadWide));
        // Depth favours longs (60 vs 40): a short is refused.
        assert_eq!(check(&c, &book(), &h, Side::Short, 1, T), Err(GateReject::DepthImbalance));
        let mut bad = HourExpectancy::new(80);
        for _ in 0..12 {
            bad.push(0, -0.1);
        }
        assert_eq!(check(&c, &book(), &bad, Side::Long, 1, T), Err(GateReject::HourExpectancy));
        // 11 samples are not enough to block; another hour is unaffected.
        let mut few = HourExpectancy::new(80);
        for _ in 0..11 {
            few.push(0, -0.1);
        }
        assert!(check(&c, &book(), &few, Side::Long, 1, T).is_ok());
        let later = book_with(&[(9999, 30), (9998, 20)], &[(10000, 10), (10001, 10)], T + 3_600_000_000_000);
        assert!(check(&c, &later, &bad, Side::Long, 1, T + 3_600_000_000_000).is_ok());
        // 40 steps against 40 on the asks: 0.5 + 8 bps > 6.
        assert_eq!(check(&c, &book(), &h, Side::Long, 40, T), Err(GateReject::Slippage));
    }

    #[test]
    fn walk_takes_levels_in_order() {
        let b = book();
        assert_eq!(walk(&b, true, 5), (10000.0, 5));
        let (px, q) = walk(&b, true, 15);
        assert_eq!(q, 15);
        assert!((px - (10.0 * 10000.0 + 5.0 * 10001.0) / 15.0).abs() < 1e-9);
        assert_eq!(walk(&b, false, 100).1, 60, "only what the book holds");
    }

    #[test]
    fn a_trade_below_the_stale_bid_caps_a_sell() {
        // Book (last diff at T): bids 99.99 x30, 99.98 x20, 99.97 x10. A taker sell at 99.97 (buyer is maker) at
        // T + 10 ms swept the two upper levels: a sell walk takes only 99.97 and below.
        let mut b = book();
        assert_eq!(walk(&b, false, 5), (9999.0, 5), "stale book: the old best bid");
        b.clip.on_trade(9997, true, T + 10_000_000, b.last_update_ns);
        assert_eq!(walk(&b, false, 5), (9997.0, 5), "no higher than the trade");
        assert_eq!(walk(&b, false, 30), (9997.0, 10), "only what is left at and below the trade");
        assert_eq!(walk(&b, true, 5), (10000.0, 5), "the asks are not clipped by a sell");
        // A diff at the trade's time (or later) supersedes the clip.
        b.clip.on_depth(b.last_update_id(), T + 9_000_000);
        assert_eq!(walk(&b, false, 5), (9997.0, 5), "an older diff keeps it");
        b.clip.on_depth(b.last_update_id(), T + 10_000_000);
        assert_eq!(walk(&b, false, 5), (9999.0, 5));
    }

    #[test]
    fn a_ticker_newer_than_the_book_clips_it_until_a_diff_reaches_its_u() {
        let mut b = book(); // last applied u = 11
        // Ticker u = 12: bid 99.98 x 7, ask 100.01 x 4 (99.99 and 100.00 are gone).
        b.clip.on_ticker((9998, 7), (10001, 4), 12, b.last_update_id());
        assert_eq!(walk(&b, false, 7), (9998.0, 7), "the ticker's quantity at its bid");
        // 7 at 99.98 from the ticker (not the book's 20), then 3 from the book at 99.97.
        let (px, q) = walk(&b, false, 10);
        assert_eq!(q, 10);
        assert!((px - (7.0 * 9998.0 + 3.0 * 9997.0) / 10.0).abs() < 1e-9, "{px}");
        assert_eq!(walk(&b, false, 100).1, 17, "ticker level + the book below it");
        let (px, q) = walk(&b, true, 6);
        assert_eq!(q, 6);
        assert!((px - (4.0 * 10001.0 + 2.0 * 10002.0) / 6.0).abs() < 1e-9, "{px}");
        // A ticker the book already reached does not clip; the diff with u = 12 clears the clip.
        let mut c = book();
        c.clip.on_ticker((9998, 7), (10001, 4), 11, c.last_update_id());
        assert_eq!(walk(&c, false, 5), (9999.0, 5));
        b.clip.on_depth(12, b.last_update_ns);
        assert_eq!(walk(&b, false, 5), (9999.0, 5), "cleared by the diff");
        assert_eq!(walk(&b, true, 5), (10000.0, 5));
    }

    #[test]
    fn a_ticker_with_a_new_better_level_is_taken_at_its_quantity() {
        // The ticker shows a bid at 100.00 x 2 (a level the stale book does not have) and the sell takes it first.
        let mut b = book();
        b.clip.on_ticker((10000, 2), (10001, 4), 12, b.last_update_id());
        let (px, q) = walk(&b, false, 5);
        assert_eq!(q, 5);
        assert!((px - (2.0 * 10000.0 + 3.0 * 9999.0) / 5.0).abs() < 1e-9, "{px}");
    }

    #[test]
    fn hour_ring_keeps_the_last_trades() {
        let mut h = HourExpectancy::new(3);
        for p in [1.0, 2.0, 3.0, 4.0] {
            h.push(5, p);
        }
        assert_eq!(h.stats(5), (3, 3.0));
        assert_eq!(h.samples(5).collect::<Vec<_>>(), vec![2.0, 3.0, 4.0]);
        assert_eq!(HourExpectancy::hour_of(T + 5 * 3_600_000_000_000 + 1), 5);
    }
}

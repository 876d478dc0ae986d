//! Range bars per symbol.
//!
//! A bar opens on a trade. A trade joins the open bar unless it would take the bar's high − low beyond the
//! range; then the open bar closes (without that trade) and the trade opens the next bar. So every market trade
//! belongs to exactly one bar, and the bar volumes add up to the traded volume exactly (the original design
//! counted the closing trade twice; this one cannot).
//!
//! Range: a fixed number of ticks, or a percentage of the bar's open price converted to ticks when the bar opens
//! (rounded to the nearest tick, at least 1). Times are exchange times; nothing reads the wall clock.
//! Non-market prints never reach this stage.
use crate::types::record::Bar;

/// How wide a bar may get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BarRange {
    /// high − low may be at most this many ticks.
    Ticks(i64),
    /// high − low may be at most this percent of the bar's open price.
    Pct(f64),
}

impl BarRange {
    /// The range in ticks for a bar opening at `open_px` ticks.
    #[inline]
    pub fn ticks_at(&self, open_px: i64) -> i64 {
        match *self {
            BarRange::Ticks(t) => t.max(1),
            BarRange::Pct(p) => ((open_px as f64 * p / 100.0).round() as i64).max(1),
        }
    }
}

/// Builds range bars for one symbol.
#[derive(Debug, Clone)]
pub struct RangeBars {
    range: BarRange,
    cur: Bar,
    open: bool,
    /// Bars closed so far.
    pub closed: u64,
}

impl RangeBars {
    /// A builder with the given range.
    pub fn new(range: BarRange) -> Self {
        RangeBars { range, cur: Bar::default(), open: false, closed: 0 }
    }

    /// The bar being built, if any.
    pub fn current(&self) -> Option<&Bar> {
        self.open.then_some(&self.cur)
    }

    /// Adds a market trade; returns the bar it closed, if any.
    #[inline]
    pub fn on_trade(&mut self, px: i64, qty: i64, buyer_maker: bool, ts_ns: i64, id: i64) -> Option<Bar> {
        let mut closed = None;
        if self.open {
            let hi = self.cur.high.max(px);
            let lo = self.cur.low.min(px);
            if hi - lo > self.cur.range_ticks {
                closed = Some(self.cur);
                self.closed += 1;
                self.open = false;
            } else {
                let b = &mut self.cur;
                b.high = hi;
                b.low = lo;
                b.close = px;
                Self::add(b, qty, buyer_maker, ts_ns, id);
                return None;
            }
        }
        self.cur = Bar {
            open: px,
            high: px,
            low: px,
            close: px,
            range_ticks: self.range.ticks_at(px),
            first_ts_ns: ts_ns,
            first_trade_id: id,
            ..Bar::default()
        };
        Self::add(&mut self.cur, qty, buyer_maker, ts_ns, id);
        self.open = true;
        closed
    }

    #[inline]
    fn add(b: &mut Bar, qty: i64, buyer_maker: bool, ts_ns: i64, id: i64) {
        b.volume += qty;
        if buyer_maker {
            b.sell_volume += qty;
        } else {
            b.buy_volume += qty;
        }
        b.trades += 1;
        b.last_ts_ns = ts_ns;
        b.last_trade_id = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_trade_opens_the_next_bar_and_volume_is_conserved() {
        let mut rb = RangeBars::new(BarRange::Ticks(3));
        let tape = [(100, 1, false), (102, 2, true), (103, 3, false), (104, 4, true), (101, 5, false), (100, 6, true)];
        let mut bars = vec![];
        for (i, &(px, q, m)) in tape.iter().enumerate() {
            if let Some(b) = rb.on_trade(px, q, m, i as i64, i as i64) {
                bars.push(b);
            }
        }
        // 100,102,103 fit (range 3); 104 would make 4 > 3: bar closes at 103 without 104.
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].open, bars[0].high, bars[0].low, bars[0].close), (100, 103, 100, 103));
        assert_eq!((bars[0].volume, bars[0].buy_volume, bars[0].sell_volume, bars[0].trades), (6, 4, 2, 3));
        // 104, 101 fit (range 3); 100 would make 4: closes.
        assert_eq!((bars[1].open, bars[1].high, bars[1].low, bars[1].close), (104, 104, 101, 101));
        assert_eq!(bars[1].volume, 9);
        let open = rb.current().unwrap();
        assert_eq!((open.open, open.volume), (100, 6));
        let total: i64 = bars.iter().map(|b| b.volume).sum::<i64>() + open.volume;
        assert_eq!(total, tape.iter().map(|t| t.1).sum::<i64>());
    }

    #[test]
    fn exact_range_does_not_close() {
        let mut rb = RangeBars::new(BarRange::Ticks(2));
        assert!(rb.on_trade(10, 1, false, 0, 0).is_none());
        assert!(rb.on_trade(12, 1, false, 1, 1).is_none());
        assert!(rb.on_trade(10, 1, false, 2, 2).is_none());
        assert!(rb.on_trade(13, 1, false, 3, 3).is_some());
    }

    #[test]
    fn pct_range_is_taken_at_open() {
        // 0.05% of 28145.10 (281451 ticks of 0.1) = 140.7 ticks -> 141.
        assert_eq!(BarRange::Pct(0.05).ticks_at(281451), 141);
        assert_eq!(BarRange::Pct(0.05).ticks_at(10), 1);
        assert_eq!(BarRange::Ticks(0).ticks_at(10), 1);
    }
}

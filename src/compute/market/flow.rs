//! Order flow per symbol, from market trades and closed range bars, in exchange time only.
//!
//! Definitions (volumes in quantity steps; the features convert to base-asset units):
//! - **Taker side**: `m = true` (buyer is maker) means the seller was the aggressor: taker *sell* volume.
//!   Otherwise taker *buy* volume.
//! - **Delta** of a bar = taker buy volume − taker sell volume.
//! - **CVD** = running sum of trade deltas. Reset at every UTC session boundary (`cvd_reset = "session"`, sessions of
//!   `session_hours` aligned to 00:00 UTC) or never (`"never"`).
//! - **cvd_1min_change** = CVD now − CVD at the end of the last whole exchange-time second that is at least
//!   `cvd_window_secs` (60) old. CVD is sampled once per second into a bounded ring of [`CVD_SAMPLES`] entries; with
//!   less history than the window the oldest sample serves (the change since the stream began).
//!   A session reset also clears the samples.
//! - **Imbalance ratio** = taker buy volume / taker sell volume, over the closing bar and over the last
//!   `imbalance_bars` bars. Zero denominator: 0/0 is 1.0 (no information); x/0 with x > 0 is `imbalance_cap`.
//!   The short side uses the reciprocal (sell/buy) with the same rules.
//! - **Volume burst ratio** = the closing bar's volume / the mean volume of the previous `burst_baseline_bars` bars.
//!   Undefined (0.0, so no burst) until `burst_baseline_bars` bars have closed.
//! - **Absorption** on a bar (uses the bar's trades): *bullish* (buyers absorb sellers) when taker sell volume
//!   ≥ `absorption_delta_ratio` × taker buy volume, taker sell volume ≥ `large_volume_multiplier` × the mean taker
//!   sell volume of the previous `burst_baseline_bars` bars, and the price held: open − low ≤
//!   `max_price_delta_ticks` ticks. *Bearish* is the mirror (taker buy volume, high − open). A symbol "has
//!   absorption" when one of its last `absorption_lookback_bars` bars (the closing one included) had it.

use crate::types::record::Bar;

/// Most CVD samples kept (one per second).
pub(crate) const CVD_SAMPLES: usize = 256;
/// Most bars of history kept for baselines.
pub(crate) const BAR_HISTORY: usize = 512;

/// How CVD resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CvdReset {
    /// At each UTC session boundary.
    Session,
    /// Never.
    Never,
}

/// Order flow parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// CVD reset policy.
    pub cvd_reset: CvdReset,
    /// Session length in hours (divides 24), aligned to 00:00 UTC.
    pub session_hours: u32,
    /// Window of the CVD change, seconds.
    pub cvd_window_secs: u32,
    /// Bars in the multi-bar imbalance.
    pub imbalance_bars: usize,
    /// Ratio reported for x/0.
    pub imbalance_cap: f64,
    /// Bars in the volume baseline (burst and absorption).
    pub burst_baseline_bars: usize,
    /// Aggressive volume vs the opposite side for absorption.
    pub absorption_delta_ratio: f64,
    /// "Large" aggressive volume = this × its rolling mean.
    pub large_volume_multiplier: f64,
    /// Most adverse ticks the price may give while absorbing.
    pub max_price_delta_ticks: i64,
    /// Bars back in which an absorption counts.
    pub absorption_lookback_bars: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            cvd_reset: CvdReset::Session,
            session_hours: 24,
            cvd_window_secs: 60,
            imbalance_bars: 3,
            imbalance_cap: 100.0,
            burst_baseline_bars: 40,
            absorption_delta_ratio: 3.0,
            large_volume_multiplier: 2.0,
            max_price_delta_ticks: 2,
            absorption_lookback_bars: 3,
        }
    }
}

// Bounds of `[flow]` (checked by the app's config; the divisor-of-24 rule is there too).
crate::bounds!(FlowConfig as _f {
    cvd_reset: any;
    session_hours: [1, 24] "1 to 24 hours, dividing 24";
    cvd_window_secs: [1, 200] "1 to 200 seconds";
    imbalance_bars: [1, 512] "1 to 512 bars";
    imbalance_cap: [1.0, 1e6] "1 to 1000000";
    burst_baseline_bars: [1, BAR_HISTORY] "1 to 512 bars";
    absorption_delta_ratio: [0.0, 1e6] "0 to 1000000";
    large_volume_multiplier: [0.0, 1e6] "0 to 1000000";
    max_price_delta_ticks: [0, 1_000_000] "0 to 1000000 ticks";
    absorption_lookback_bars: [1, 64] "1 to 64 bars";
});

/// What the flow stage knows after a bar closed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowSnapshot {
    /// Buy/sell imbalance of the closing bar.
    pub imbalance_bar: f64,
    /// Sell/buy imbalance of the closing bar.
    pub imbalance_bar_short: f64,
    /// Buy/sell imbalance over the last `imbalance_bars` bars.
    pub imbalance_multi: f64,
    /// CVD change over the window, in quantity steps.
    pub cvd_change_steps: i64,
    /// Burst ratio of the closing bar (0 while the baseline is short).
    pub burst_ratio: f64,
    /// Bullish absorption within the lookback.
    pub absorption_bull: bool,
    /// Bearish absorption within the lookback.
    pub absorption_bear: bool,
    /// Delta of the closing bar (steps).
    pub delta_steps: i64,
}

/// A fixed-capacity ring of i64 with a running sum.
#[derive(Debug, Clone)]
struct SumRing {
    v: Vec<i64>,
    head: usize,
    len: usize,
    sum: i64,
}

impl SumRing {
    fn new(cap: usize) -> Self {
        SumRing { v: vec![0; cap.max(1)], head: 0, len: 0, sum: 0 }
    }
    fn push(&mut self, x: i64) {
        let cap = self.v.len();
        if self.len == cap {
            self.sum -= self.v[self.head];
        } else {
            self.len += 1;
        }
        self.v[self.head] = x;
        self.sum += x;
        self.head = (self.head + 1) % cap;
    }
    fn full(&self) -> bool {
        self.len == self.v.len()
    }
    fn mean(&self) -> f64 {
        if self.len == 0 { 0.0 } else { self.sum as f64 / self.len as f64 }
    }
}

/// Order flow state of one symbol.
#[derive(Debug, Clone)]
pub struct OrderFlow {
    cfg: FlowConfig,
    /// Cumulative volume delta (steps).
    pub cvd: i64,
    session: i64,
    samples: [(i64, i64); CVD_SAMPLES],
    s_head: usize,
    s_len: usize,
    vol: SumRing,
    sell: SumRing,
    buy: SumRing,
    imb_buy: SumRing,
    imb_sell: SumRing,
    absorb_bull: u64,
    absorb_bear: u64,
    /// Bars seen.
    pub bars: u64,
}

fn ratio(num: i64, den: i64, cap: f64) -> f64 {
    match (num, den) {
        (0, 0) => 1.0,
        (_, 0) => cap,
        _ => (num as f64 / den as f64).min(cap),
    }
}

impl OrderFlow {
    /// New state (allocates its rings once).
    pub fn new(cfg: FlowConfig) -> Self {
        let n = cfg.burst_baseline_bars;
        let k = cfg.imbalance_bars;
        OrderFlow {
            vol: SumRing::new(n),
            sell: SumRing::new(n),
            buy: SumRing::new(n),
            imb_buy: SumRing::new(k),
            imb_sell: SumRing::new(k),
            cfg,
            cvd: 0,
            session: i64::MIN,
            samples: [(0, 0); CVD_SAMPLES],
            s_head: 0,
            s_len: 0,
            absorb_bull: 0,
            absorb_bear: 0,
            bars: 0,
        }
    }

    fn session_of(&self, ts_ns: i64) -> i64 {
        ts_ns.div_euclid(self.cfg.session_hours as i64 * 3_600_000_000_000)
    }

    /// Adds a market trade.
    #[inline]
    pub fn on_trade(&mut self, qty: i64, buyer_maker: bool, ts_ns: i64) {
        if self.cfg.cvd_reset == CvdReset::Session {
            let s = self.session_of(ts_ns);
            if s != self.session {
                self.session = s;
                self.cvd = 0;
                self.s_len = 0;
            }
        }
        self.cvd += if buyer_maker { -qty } else { qty };
        let sec = ts_ns.div_euclid(1_000_000_000);
        let last = (self.s_head + CVD_SAMPLES - 1) % CVD_SAMPLES;
        if self.s_len > 0 && self.samples[last].0 == sec {
            self.samples[last].1 = self.cvd;
        } else {
            self.samples[self.s_head] = (sec, self.cvd);
            self.s_head = (self.s_head + 1) % CVD_SAMPLES;
            self.s_len = (self.s_len + 1).min(CVD_SAMPLES);
        }
    }

    /// CVD now minus CVD `cvd_window_secs` ago (see the module doc), at exchange time `ts_ns`.
    pub fn cvd_change(&self, ts_ns: i64) -> i64 {
        if self.s_len == 0 {
            return 0;
        }
        let cutoff = ts_ns.div_euclid(1_000_000_000) - self.cfg.cvd_window_secs as i64;
        // Newest sample at or before the cutoff; else the oldest sample (taken as the value before the stream).
        let mut base = None;
        for k in 1..=self.s_len {
            let (sec, v) = self.samples[(self.s_head + CVD_SAMPLES - k) % CVD_SAMPLES];
            if sec <= cutoff {
                base = Some(v);
                break;
            }
        }
        let base = base.unwrap_or_else(|| {
            // Less history than the window: the change since the first sample's start, i.e. CVD itself when the
            // samples began at a reset, else the oldest value we hold.
            if self.s_len < CVD_SAMPLES { 0 } else { self.samples[self.s_head].1 }
        });
        self.cvd - base
    }

    /// Folds a closed bar in and returns the features known at its close.
    pub fn on_bar(&mut self, bar: &Bar) -> FlowSnapshot {
        let c = &self.cfg;
        let burst = if self.vol.full() && self.vol.mean() > 0.0 { bar.volume as f64 / self.vol.mean() } else { 0.0 };
        let large_sell = self.sell.full() && bar.sell_volume as f64 >= c.large_volume_multiplier * self.sell.mean();
        let large_buy = self.buy.full() && bar.buy_volume as f64 >= c.large_volume_multiplier * self.buy.mean();
        let bull = large_sell
            && bar.sell_volume as f64 >= c.absorption_delta_ratio * bar.buy_volume as f64
            && bar.open - bar.low <= c.max_price_delta_ticks;
        let bear = large_buy
            && bar.buy_volume as f64 >= c.absorption_delta_ratio * bar.sell_volume as f64
            && bar.high - bar.open <= c.max_price_delta_ticks;
        let mask = if c.absorption_lookback_bars >= 64 { u64::MAX } else { (1u64 << c.absorption_lookback_bars) - 1 };
        self.absorb_bull = ((self.absorb_bull << 1) | bull as u64) & mask;
        self.absorb_bear = ((self.absorb_bear << 1) | bear as u64) & mask;
        self.vol.push(bar.volume);
        self.sell.push(bar.sell_volume);
        self.buy.push(bar.buy_volume);
        self.imb_buy.push(bar.buy_volume);
        self.imb_sell.push(bar.sell_volume);
        self.bars += 1;
        FlowSnapshot {
            imbalance_bar: ratio(bar.buy_volume, bar.sell_volume, c.imbalance_cap),
            imbalance_bar_short: ratio(bar.sell_volume, bar.buy_volume, c.imbalance_cap),
            imbalance_multi: ratio(self.imb_buy.sum, self.imb_sell.sum, c.imbalance_cap),
            cvd_change_steps: self.cvd_change(bar.last_ts_ns),
            burst_ratio: burst,
            absorption_bull: self.absorb_bull != 0,
            absorption_bear: self.absorb_bear != 0,
            delta_steps: bar.buy_volume - bar.sell_volume,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn bar(open: i64, high: i64, low: i64, close: i64, buy: i64, sell: i64) -> Bar {
        Bar {
            open,
            high,
            low,
            close,
            volume: buy + sell,
            buy_volume: buy,
            sell_volume: sell,
            trades: 1,
            ..Bar::default()
        }
    }

    #[test]
    fn cvd_and_its_60s_change() {
        let mut f = OrderFlow::new(FlowConfig { cvd_reset: CvdReset::Never, ..FlowConfig::default() });
        let t0 = 1_700_000_000 * S;
        f.on_trade(5, false, t0); // +5
        f.on_trade(2, true, t0 + S / 2); // -2 -> 3 (same second)
        f.on_trade(10, false, t0 + 30 * S); // 13
        f.on_trade(4, true, t0 + 61 * S); // 9
        assert_eq!(f.cvd, 9);
        // At t0+61: cutoff = t0+1 s; newest sample at or before it is second t0 (CVD 3): change = 9 - 3.
        assert_eq!(f.cvd_change(t0 + 61 * S), 6);
        // At t0+95: cutoff t0+35: sample of t0+30 (13): change = -4.
        assert_eq!(f.cvd_change(t0 + 95 * S), -4);
        // Early: less than 60 s of history: change since the start (CVD itself).
        let mut g = OrderFlow::new(FlowConfig::default());
        g.on_trade(7, false, t0);
        assert_eq!(g.cvd_change(t0 + 10 * S), 7);
    }

    #[test]
    fn cvd_resets_at_the_utc_session() {
        let mut f = OrderFlow::new(FlowConfig::default());
        let midnight = 1_700_006_400 * S; // 2023-11-15 00:00:00 UTC
        assert_eq!(midnight % (86_400 * S), 0);
        f.on_trade(5, false, midnight - S);
        assert_eq!(f.cvd, 5);
        f.on_trade(3, true, midnight);
        assert_eq!(f.cvd, -3);
        assert_eq!(f.cvd_change(midnight + S), -3);
    }

    #[test]
    fn imbalance_zero_denominators() {
        assert_eq!(ratio(0, 0, 100.0), 1.0);
        assert_eq!(ratio(5, 0, 100.0), 100.0);
        assert_eq!(ratio(6, 3, 100.0), 2.0);
        assert_eq!(ratio(1000, 1, 100.0), 100.0);
    }

    #[test]
    fn burst_needs_a_full_baseline() {
        let mut f = OrderFlow::new(FlowConfig { burst_baseline_bars: 3, ..FlowConfig::default() });
        for _ in 0..3 {
            assert_eq!(f.on_bar(&bar(100, 105, 100, 105, 5, 5)).burst_ratio, 0.0);
        }
        // Baseline mean 10: a 25-lot bar is a 2.5x burst.
        let s = f.on_bar(&bar(105, 110, 105, 110, 20, 5));
        assert_eq!(s.burst_ratio, 2.5);
        // The baseline now holds 10, 10, 25: mean 15.
        assert_eq!(f.on_bar(&bar(110, 115, 110, 115, 15, 15)).burst_ratio, 2.0);
    }

    #[test]
    fn absorption_both_ways_with_lookback() {
        let cfg = FlowConfig { burst_baseline_bars: 2, absorption_lookback_bars: 2, ..FlowConfig::default() };
        let mut f = OrderFlow::new(cfg);
        f.on_bar(&bar(100, 104, 100, 104, 5, 5));
        f.on_bar(&bar(104, 108, 104, 108, 5, 5));
        // Heavy selling (30 >= 2 x mean 5, 30 >= 3 x 4) while the price gives 1 tick: bullish absorption.
        let s = f.on_bar(&bar(108, 112, 107, 112, 4, 30));
        assert!(s.absorption_bull && !s.absorption_bear);
        // Still within the 2-bar lookback on the next bar, gone on the one after.
        assert!(f.on_bar(&bar(112, 116, 112, 116, 5, 5)).absorption_bull);
        assert!(!f.on_bar(&bar(116, 120, 116, 120, 5, 5)).absorption_bull);
        // Heavy selling that pushes the price 3 ticks down is not absorption.
        let mut g = OrderFlow::new(FlowConfig { burst_baseline_bars: 2, ..FlowConfig::default() });
        g.on_bar(&bar(100, 104, 100, 104, 5, 5));
        g.on_bar(&bar(104, 108, 104, 108, 5, 5));
        assert!(!g.on_bar(&bar(108, 108, 105, 106, 4, 30)).absorption_bull);
        // Mirror: heavy buying absorbed by sellers, price up at most 2 ticks.
        let s = g.on_bar(&bar(106, 108, 102, 102, 40, 5));
        assert!(s.absorption_bear && !s.absorption_bull);
    }
}

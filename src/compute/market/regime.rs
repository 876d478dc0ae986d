//! Market regime per symbol from its recent closed range bars: trend vs range × high vs low volatility.
//!
//! Definitions (over the last `window_bars` closed bars; nothing is classified before the window is full, and the
//! regime starts as range/low):
//! - **Net move %** = |close of the newest bar − open of the oldest| / open of the oldest × 100.
//!   Trend when it reaches `trend_enter_pct` (reference 0.25 %); back to range only when it falls below
//!   `trend_exit_pct` (hysteresis, default 0.20 %).
//! - **Speed** (volatility for range bars, whose high − low is fixed by construction) = Σ |close_i − close_{i−1}| /
//!   close × 100 over the window, divided by the window's duration in minutes: % of price travelled per minute.
//!   High volatility when the speed is above the `high_vol_enter_pctile` percentile of its own last
//!   [`SPEED_HISTORY`] values (one per bar); back to low only below the `high_vol_exit_pctile` percentile. Until
//!   `min_history` values exist, speed is compared with the fixed `high_vol_fallback_pct_per_min`.
//! - A classification must hold for `confirm_bars` consecutive bars before the regime switches.
use crate::types::record::Regime;

/// Values of the speed history kept.
pub(crate) const SPEED_HISTORY: usize = 512;
/// Bars kept for the window.
pub(crate) const WINDOW_MAX: usize = 512;

/// Regime classifier parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegimeConfig {
    /// Bars classified.
    pub window_bars: usize,
    /// Net move % that makes a trend.
    pub trend_enter_pct: f64,
    /// Net move % below which a trend ends.
    pub trend_exit_pct: f64,
    /// Speed percentile (0..100) that makes high volatility.
    pub high_vol_enter_pctile: f64,
    /// Speed percentile below which high volatility ends.
    pub high_vol_exit_pctile: f64,
    /// Speed values needed before percentiles are used.
    pub min_history: usize,
    /// Fixed high-volatility speed (% per minute) until then.
    pub high_vol_fallback_pct_per_min: f64,
    /// Consecutive bars a new classification must hold.
    pub confirm_bars: u32,
}

impl Default for RegimeConfig {
    fn default() -> Self {
        RegimeConfig {
            window_bars: 40,
            trend_enter_pct: 0.25,
            trend_exit_pct: 0.20,
            high_vol_enter_pctile: 60.0,
            high_vol_exit_pctile: 40.0,
            min_history: 50,
            high_vol_fallback_pct_per_min: 0.12,
            confirm_bars: 3,
        }
    }
}

// Bounds of `[regime]`.
crate::bounds!(RegimeConfig as r {
    window_bars: [2, WINDOW_MAX] "2 to 512 bars";
    trend_enter_pct: [0.0, 100.0] "0 to 100 (%)";
    trend_exit_pct: [0.0, r.trend_enter_pct] "0 to trend_enter_pct";
    high_vol_enter_pctile: [0.0, 100.0] "0 to 100";
    high_vol_exit_pctile: [0.0, r.high_vol_enter_pctile] "0 to high_vol_enter_pctile";
    min_history: [2, SPEED_HISTORY] "2 to 512";
    high_vol_fallback_pct_per_min: finite "a finite % per minute";
    confirm_bars: [1, 1000] "1 to 1000 bars";
});

/// Regime state of one symbol.
#[derive(Debug, Clone)]
pub struct RegimeClassifier {
    cfg: RegimeConfig,
    closes: Vec<(i64, i64, i64)>, // (open, close, last_ts_ns) ring
    head: usize,
    len: usize,
    speeds: Vec<f64>,
    s_head: usize,
    s_len: usize,
    sorted: Vec<f64>,
    trend: bool,
    high: bool,
    pending: Regime,
    pending_n: u32,
    /// Current regime.
    pub regime: Regime,
    /// Regime switches.
    pub switches: u64,
}

impl RegimeClassifier {
    /// A classifier with preallocated rings.
    pub fn new(cfg: RegimeConfig) -> Self {
        let w = cfg.window_bars.clamp(2, WINDOW_MAX);
        RegimeClassifier {
            closes: vec![(0, 0, 0); w],
            head: 0,
            len: 0,
            speeds: vec![0.0; SPEED_HISTORY],
            s_head: 0,
            s_len: 0,
            sorted: Vec::with_capacity(SPEED_HISTORY),
            trend: false,
            high: false,
            pending: Regime::RangeLow,
            pending_n: 0,
            regime: Regime::RangeLow,
            switches: 0,
            cfg,
        }
    }

    fn percentile(&mut self, p: f64) -> f64 {
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.speeds[..self.s_len]);
        self.sorted.sort_unstable_by(f64::total_cmp);
        let k = ((p / 100.0) * (self.s_len - 1) as f64).round() as usize;
        self.sorted[k.min(self.s_len - 1)]
    }

    /// Folds a closed bar in (open, close in ticks; exchange time of its last trade) and returns the regime.
    pub fn on_bar(&mut self, open: i64, close: i64, ts_ns: i64) -> Regime {
        let w = self.closes.len();
        self.closes[self.head] = (open, close, ts_ns);
        self.head = (self.head + 1) % w;
        self.len = (self.len + 1).min(w);
        if self.len < w {
            return self.regime;
        }
        let oldest = self.closes[self.head];
        let newest = self.closes[(self.head + w - 1) % w];
        if oldest.0 <= 0 {
            return self.regime;
        }
        let net = (newest.1 - oldest.0).abs() as f64 / oldest.0 as f64 * 100.0;
        let mut path = 0.0;
        for k in 1..w {
            let a = self.closes[(self.head + k - 1) % w].1;
            let b = self.closes[(self.head + k) % w].1;
            path += (b - a).abs() as f64;
        }
        let minutes = ((newest.2 - oldest.2) as f64 / 60e9).max(1.0 / 60.0);
        let speed = path / newest.1.max(1) as f64 * 100.0 / minutes;
        let trend = if self.trend { net >= self.cfg.trend_exit_pct } else { net >= self.cfg.trend_enter_pct };
        let high = if self.s_len < self.cfg.min_history.max(2) {
            speed >= self.cfg.high_vol_fallback_pct_per_min
        } else if self.high {
            speed >= self.percentile(self.cfg.high_vol_exit_pctile)
        } else {
            speed > self.percentile(self.cfg.high_vol_enter_pctile)
        };
        self.speeds[self.s_head] = speed;
        self.s_head = (self.s_head + 1) % SPEED_HISTORY;
        self.s_len = (self.s_len + 1).min(SPEED_HISTORY);
        self.trend = trend;
        self.high = high;
        let cand = Regime::of(trend, high);
        if cand == self.regime {
            self.pending_n = 0;
        } else {
            if cand == self.pending {
                self.pending_n += 1;
            } else {
                self.pending = cand;
                self.pending_n = 1;
            }
            if self.pending_n >= self.cfg.confirm_bars.max(1) {
                self.regime = cand;
                self.switches += 1;
                self.pending_n = 0;
            }
        }
        self.regime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000_000;

    #[test]
    fn trend_needs_the_net_move_and_confirmation_and_has_hysteresis() {
        let cfg = RegimeConfig {
            window_bars: 4,
            confirm_bars: 2,
            min_history: 1000,
            high_vol_fallback_pct_per_min: 1e9,
            ..RegimeConfig::default()
        };
        let mut r = RegimeClassifier::new(cfg);
        // Flat: range.
        let mut t = 0;
        let mut bar = |r: &mut RegimeClassifier, o: i64, c: i64| {
            t += M;
            r.on_bar(o, c, t)
        };
        for _ in 0..4 {
            assert_eq!(bar(&mut r, 10_000, 10_001), Regime::RangeLow);
        }
        // Rising 10 ticks per bar on 10000: window net move grows past 0.25 % (25 ticks).
        assert_eq!(bar(&mut r, 10_001, 10_011), Regime::RangeLow); // net (10011-10000)=0.11%
        assert_eq!(bar(&mut r, 10_011, 10_021), Regime::RangeLow); // 0.20 %
        assert_eq!(bar(&mut r, 10_021, 10_031), Regime::RangeLow); // 0.30 %: trend seen once (needs 2)
        assert_eq!(bar(&mut r, 10_031, 10_041), Regime::TrendLow); // confirmed
        assert_eq!(r.switches, 1);
        // Net move 0.22 % (between exit 0.20 and enter 0.25): stays a trend (hysteresis).
        assert_eq!(bar(&mut r, 10_041, 10_033), Regime::TrendLow); // window opens at 10011: 0.22 %
        // Falls to 0.1 %: range after confirmation.
        assert_eq!(bar(&mut r, 10_033, 10_031), Regime::TrendLow); // opens 10021: 0.10 % -> pending 1
        assert_eq!(bar(&mut r, 10_031, 10_040), Regime::RangeLow); // opens 10031: 0.09 % -> switch
        assert_eq!(r.switches, 2);
    }

    #[test]
    fn volatility_against_its_own_percentile() {
        let cfg = RegimeConfig {
            window_bars: 2,
            confirm_bars: 1,
            min_history: 5,
            trend_enter_pct: 100.0,
            trend_exit_pct: 100.0,
            ..RegimeConfig::default()
        };
        let mut r = RegimeClassifier::new(cfg);
        let mut t = 0;
        // Slow market: one 1-tick move every 10 minutes.
        for i in 0..10 {
            t += 10 * M;
            r.on_bar(10_000 + i, 10_001 + i, t);
        }
        assert_eq!(r.regime, Regime::RangeLow);
        // The same moves every 10 seconds: far above its own history.
        t += M / 6;
        assert_eq!(r.on_bar(10_010, 10_011, t), Regime::RangeHigh);
    }
}

//! AdvancedOrderFlow: the entry signal, evaluated when a range bar closes.
//!
//! Exact rules (every threshold comes from the regime table row of the symbol's current regime):
//! - **Zone**: the bar's close is within `zone_bins` profile bins of a level. Long levels: VAL and the HVNs;
//!   short levels: VAH and the HVNs. `zone_distance_pct` = |close − nearest such level| / close × 100;
//!   `near_val`/`near_vah`/`near_hvn` say which levels are within the zone.
//! - **Absorption**: long needs bullish absorption (sellers absorbed at the bid), short bearish, within the flow
//!   stage's lookback (see [`crate::compute::market::flow`]).
//! - **Sharp CVD change**: long `cvd_1min_change ≥ min_cvd_change`, short `≤ −min_cvd_change` (base-asset units).
//! - **Imbalance**: long: the bar's taker buy/sell ratio ≥ `min_imbalance`; short: sell/buy ≥ `min_imbalance`.
//! - **Bar range**: (high − low) / open × 100 ≥ `min_bar_range_pct`.
//! - **Burst**: the bar's volume burst ratio ≥ the symbol's burst threshold: the tuned ratio (initially
//!   `burst_ratio` of the base row) scaled by the regime row's `min_burst_ratio` / the base row's.
//! - **Reversal bar** (`require_reversal_bar`): long needs an up bar (close > open) after a down bar; short mirrored.
//! - **Cooldown**: at least `cooldown_bars` bars since this symbol's last signal.
//! - Both sides passing at once (not possible with the rules above, but guarded) gives no signal.
//!
//! **Confidence** ∈ [0, 1]: the mean of five clearances, each clamped to [0, 1]: imbalance v/t − 1,
//! |CVD change| / t − 1, burst v/t − 1, bar range v/t − 1 (each relative to its threshold t, so twice the threshold
//! is full marks), and zone 1 − distance / zone width.

use crate::compute::market::flow::FlowSnapshot;
use crate::compute::market::profile::Levels;
use crate::types::record::{Bar, Features, Regime, Side, Signal};

/// Entry thresholds for one regime.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeParams {
    /// Minimum taker imbalance ratio.
    pub min_imbalance: f64,
    /// Minimum |CVD 1-minute change| in base-asset units.
    pub min_cvd_change: f64,
    /// Minimum bar range, % of price.
    pub min_bar_range_pct: f64,
    /// Minimum volume burst ratio (scales the tuned threshold, see the module doc).
    pub min_burst_ratio: f64,
    /// Bars between signals on one symbol.
    pub cooldown_bars: u32,
}

/// Strategy parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyConfig {
    /// Zone half-width in profile bins.
    pub zone_bins: f64,
    /// Require a reversal bar.
    pub require_reversal_bar: bool,
    /// The base row (and the initial burst threshold before tuning).
    pub base: RegimeParams,
    /// Row for trend + high volatility.
    pub trend_high: RegimeParams,
    /// Row for trend + low volatility.
    pub trend_low: RegimeParams,
    /// Row for range + high volatility.
    pub range_high: RegimeParams,
    /// Row for range + low volatility.
    pub range_low: RegimeParams,
}

fn scaled(b: RegimeParams, k: f64, cd: f64) -> RegimeParams {
    RegimeParams {
        min_imbalance: b.min_imbalance * k,
        min_cvd_change: b.min_cvd_change * k,
        min_bar_range_pct: b.min_bar_range_pct * k,
        min_burst_ratio: b.min_burst_ratio * k,
        cooldown_bars: (b.cooldown_bars as f64 * cd).round() as u32,
    }
}

impl Default for StrategyConfig {
    fn default() -> Self {
        let base = RegimeParams {
            min_imbalance: 2.2,
            min_cvd_change: 12.0,
            min_bar_range_pct: 0.04,
            min_burst_ratio: 1.8,
            cooldown_bars: 8,
        };
        StrategyConfig {
            zone_bins: 3.0,
            require_reversal_bar: true,
            base,
            // Fading absorption at value works best in ranges: aggressive there (× 0.9, cooldown × 0.75),
            // conservative in fast trends (× 1.15, cooldown × 1.4), base otherwise (reference multipliers).
            trend_high: scaled(base, 1.15, 1.4),
            trend_low: base,
            range_high: base,
            range_low: scaled(base, 0.9, 0.75),
        }
    }
}

// Bounds of `[strategy]` and of each row of its regime table.
crate::bounds!(RegimeParams as _r {
    min_imbalance: [0.0, f64::MAX] "a non-negative threshold";
    min_cvd_change: [0.0, f64::MAX] "a non-negative threshold";
    min_bar_range_pct: [0.0, f64::MAX] "a non-negative threshold";
    min_burst_ratio: [f64::MIN_POSITIVE, f64::MAX] "greater than 0";
    cooldown_bars: [0, 100_000] "0 to 100000 bars";
});
crate::bounds!(StrategyConfig as _s {
    zone_bins: [0.0, 1000.0] "0 to 1000 bins";
    require_reversal_bar: any;
    base: nested;
    trend_high: nested;
    trend_low: nested;
    range_high: nested;
    range_low: nested;
});

impl StrategyConfig {
    /// The row for `r`.
    pub fn row(&self, r: Regime) -> &RegimeParams {
        match r {
            Regime::TrendHigh => &self.trend_high,
            Regime::TrendLow => &self.trend_low,
            Regime::RangeHigh => &self.range_high,
            Regime::RangeLow => &self.range_low,
        }
    }
}

/// Everything the conditions look at for one bar, apart from the burst threshold (kept per bar for tuning).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BarEval {
    /// Close (ticks).
    pub close: i64,
    /// High (ticks).
    pub high: i64,
    /// Low (ticks).
    pub low: i64,
    /// All long conditions but burst and cooldown hold.
    pub long_ok: bool,
    /// All short conditions but burst and cooldown hold.
    pub short_ok: bool,
    /// Burst ratio divided by the regime scale (comparable with a tuned threshold).
    pub burst_norm: f64,
    /// Cooldown of the regime at this bar.
    pub cooldown: u32,
}

/// Per-symbol strategy state.
#[derive(Debug, Clone)]
pub struct Strategy {
    bars_since: u32,
    prev_up: Option<bool>,
    /// The symbol's burst threshold (tuned).
    pub burst_ratio: f64,
}

fn clear(v: f64, t: f64) -> f64 {
    if t <= 0.0 { 1.0 } else { (v / t - 1.0).clamp(0.0, 1.0) }
}

impl Strategy {
    /// New state with the base burst threshold.
    pub fn new(cfg: &StrategyConfig) -> Self {
        Strategy { bars_since: u32::MAX / 2, prev_up: None, burst_ratio: cfg.base.min_burst_ratio }
    }

    /// Evaluates a closed bar against `cfg`. Returns the bar's evaluation (for tuning) and the signal, if any.
    pub fn on_bar(&mut self, cfg: &StrategyConfig, m: &BarInputs<'_>) -> (BarEval, Option<Signal>) {
        let bar = m.bar;
        self.bars_since = self.bars_since.saturating_add(1);
        let row = cfg.row(m.regime);
        let up = bar.close > bar.open;
        let down = bar.close < bar.open;
        let (rev_long, rev_short) = match self.prev_up {
            Some(prev_up) => (up && !prev_up, down && prev_up),
            None => (false, false),
        };
        if bar.close != bar.open {
            self.prev_up = Some(up);
        }
        let scale = row.min_burst_ratio / cfg.base.min_burst_ratio;
        let mut ev = BarEval {
            close: bar.close,
            high: bar.high,
            low: bar.low,
            burst_norm: if scale > 0.0 { m.flow.burst_ratio / scale } else { 0.0 },
            cooldown: row.cooldown_bars,
            ..BarEval::default()
        };
        let Some(lv) = m.levels else { return (ev, None) };
        if bar.close <= 0 || bar.open <= 0 {
            return (ev, None);
        }
        let z = Zone::of(bar.close as f64, cfg.zone_bins * m.bin_ticks as f64, lv);
        let flow = m.flow;
        let cvd = flow.cvd_change_steps as f64 * m.qty_per_step;
        let range_pct = (bar.high - bar.low) as f64 / bar.open as f64 * 100.0;
        let rev_ok = |r: bool| !cfg.require_reversal_bar || r;
        ev.long_ok = z.long_level.is_some()
            && flow.absorption_bull
            && cvd >= row.min_cvd_change
            && flow.imbalance_bar >= row.min_imbalance
            && range_pct >= row.min_bar_range_pct
            && rev_ok(rev_long);
        ev.short_ok = z.short_level.is_some()
            && flow.absorption_bear
            && cvd <= -row.min_cvd_change
            && flow.imbalance_bar_short >= row.min_imbalance
            && range_pct >= row.min_bar_range_pct
            && rev_ok(rev_short);
        let threshold = self.burst_ratio * scale;
        let burst_ok = flow.burst_ratio >= threshold && flow.burst_ratio > 0.0;
        let cool_ok = self.bars_since >= row.cooldown_bars;
        let (side, level, imb) = match (ev.long_ok, ev.short_ok) {
            (true, false) => (Side::Long, z.long_level, flow.imbalance_bar),
            (false, true) => (Side::Short, z.short_level, flow.imbalance_bar_short),
            _ => return (ev, None),
        };
        if !(burst_ok && cool_ok) {
            return (ev, None);
        }
        self.bars_since = 0;
        let measured = Measured { side, level: level.unwrap_or(z.close), imbalance: imb, cvd, range_pct, threshold };
        (ev, Some(measured.signal(m, row, &z)))
    }
}

/// What a strategy reads at a bar close (shared by every account's strategy).
#[derive(Debug, Clone, Copy)]
pub struct BarInputs<'a> {
    /// The closed bar.
    pub bar: &'a Bar,
    /// Order flow as of the bar's last trade.
    pub flow: &'a FlowSnapshot,
    /// Profile levels, when the profile has any.
    pub levels: Option<&'a Levels>,
    /// The symbol's regime.
    pub regime: Regime,
    /// Converts CVD steps to base units.
    pub qty_per_step: f64,
    /// Profile bin width, ticks.
    pub bin_ticks: i64,
}

/// The bar's close against the profile levels (see the module doc, "Zone").
struct Zone {
    close: f64,
    width: f64,
    near_val: bool,
    near_vah: bool,
    near_hvn: bool,
    long_level: Option<f64>,
    short_level: Option<f64>,
}

impl Zone {
    fn of(close: f64, width: f64, lv: &Levels) -> Self {
        let near = |level: f64| (close - level).abs() <= width;
        let near_val = near(lv.val as f64);
        let near_vah = near(lv.vah as f64);
        let mut hvn_best: Option<f64> = None;
        for &h in &lv.hvn[..lv.n_hvn] {
            let d = (close - h as f64).abs();
            if d <= width && hvn_best.is_none_or(|b| d < (close - b).abs()) {
                hvn_best = Some(h as f64);
            }
        }
        let nearest = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(if (close - x).abs() <= (close - y).abs() { x } else { y }),
            (x, None) => x,
            (None, y) => y,
        };
        Zone {
            close,
            width,
            near_val,
            near_vah,
            near_hvn: hvn_best.is_some(),
            long_level: nearest(near_val.then_some(lv.val as f64), hvn_best),
            short_level: nearest(near_vah.then_some(lv.vah as f64), hvn_best),
        }
    }
}

/// The measurements of a bar that passed every condition.
struct Measured {
    side: Side,
    level: f64,
    imbalance: f64,
    cvd: f64,
    range_pct: f64,
    threshold: f64,
}

impl Measured {
    fn signal(&self, m: &BarInputs<'_>, row: &RegimeParams, z: &Zone) -> Signal {
        let dist = (z.close - self.level).abs();
        let burst = m.flow.burst_ratio;
        let confidence = (clear(self.imbalance, row.min_imbalance)
            + clear(self.cvd.abs(), row.min_cvd_change)
            + clear(burst, self.threshold)
            + clear(self.range_pct, row.min_bar_range_pct)
            + if z.width > 0.0 { (1.0 - dist / z.width).clamp(0.0, 1.0) } else { 1.0 })
            / 5.0;
        Signal {
            side: self.side,
            ts_ns: m.bar.last_ts_ns,
            price: m.bar.close,
            level: self.level,
            burst_threshold: self.threshold,
            features: Features {
                imbalance_ratio: self.imbalance,
                cvd_1min_change: self.cvd,
                volume_burst_ratio: burst,
                bar_range_pct: self.range_pct,
                zone_distance_pct: dist / z.close * 100.0,
                near_val: z.near_val,
                near_vah: z.near_vah,
                near_hvn: z.near_hvn,
                regime: m.regime,
                confidence,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StrategyConfig {
        let base = RegimeParams {
            min_imbalance: 2.0,
            min_cvd_change: 10.0,
            min_bar_range_pct: 0.04,
            min_burst_ratio: 1.5,
            cooldown_bars: 3,
        };
        StrategyConfig {
            zone_bins: 2.0,
            require_reversal_bar: true,
            base,
            trend_high: base,
            trend_low: base,
            range_high: base,
            range_low: base,
        }
    }

    fn inputs<'a>(bar: &'a Bar, flow: &'a FlowSnapshot, levels: Option<&'a Levels>) -> BarInputs<'a> {
        BarInputs { bar, flow, levels, regime: Regime::RangeLow, qty_per_step: 1.0, bin_ticks: 10 }
    }

    fn levels() -> Levels {
        // VAL 10_000, VAH 10_100, HVN at 10_050 (bins of 10 ticks: zone = 20 ticks).
        let mut l = Levels { poc: 10_050, val: 10_000, vah: 10_100, total: 1, ..Levels::default() };
        l.hvn[0] = 10_050;
        l.n_hvn = 1;
        l
    }

    fn down_bar() -> Bar {
        Bar {
            open: 10_020,
            high: 10_020,
            low: 10_000,
            close: 10_000,
            volume: 10,
            buy_volume: 5,
            sell_volume: 5,
            ..Bar::default()
        }
    }

    fn up_bar() -> Bar {
        Bar {
            open: 10_000,
            high: 10_010,
            low: 10_000,
            close: 10_010,
            volume: 30,
            buy_volume: 25,
            sell_volume: 5,
            last_ts_ns: 7,
            ..Bar::default()
        }
    }

    fn long_flow() -> FlowSnapshot {
        FlowSnapshot {
            imbalance_bar: 5.0,
            imbalance_bar_short: 0.2,
            cvd_change_steps: 15,
            burst_ratio: 3.0,
            absorption_bull: true,
            ..FlowSnapshot::default()
        }
    }

    #[test]
    fn long_at_val_with_every_condition_then_cooldown() {
        let c = cfg();
        let mut s = Strategy::new(&c);
        let lv = levels();
        assert!(s.on_bar(&c, &inputs(&down_bar(), &FlowSnapshot::default(), Some(&lv))).1.is_none());
        let (ev, sig) = s.on_bar(&c, &inputs(&up_bar(), &long_flow(), Some(&lv)));
        let sig = sig.expect("signal");
        assert!(ev.long_ok && !ev.short_ok);
        assert_eq!(sig.side, Side::Long);
        assert_eq!(sig.price, 10_010);
        assert_eq!(sig.level, 10_000.0);
        let f = sig.features;
        assert!(f.near_val && !f.near_vah && !f.near_hvn);
        assert!((f.zone_distance_pct - 10.0 / 10_010.0 * 100.0).abs() < 1e-12);
        assert!((f.bar_range_pct - 0.1).abs() < 1e-12);
        assert_eq!(f.cvd_1min_change, 15.0);
        // Clearances: imbalance 1 (5/2-1 clamped), cvd 0.5, burst 1, range 1 (0.1/0.04-1 clamped), zone 0.5.
        assert!((f.confidence - (1.0 + 0.5 + 1.0 + 1.0 + 0.5) / 5.0).abs() < 1e-12, "{}", f.confidence);
        // Cooldown: the next reversal within 3 bars gives nothing.
        s.on_bar(&c, &inputs(&down_bar(), &FlowSnapshot::default(), Some(&lv)));
        assert!(s.on_bar(&c, &inputs(&up_bar(), &long_flow(), Some(&lv))).1.is_none());
        s.on_bar(&c, &inputs(&down_bar(), &FlowSnapshot::default(), Some(&lv)));
        assert!(s.on_bar(&c, &inputs(&up_bar(), &long_flow(), Some(&lv))).1.is_some());
    }

    #[test]
    fn each_condition_is_required() {
        let c = cfg();
        let lv = levels();
        let run = |bar: Bar, flow: FlowSnapshot, lv: Option<&Levels>| {
            let mut s = Strategy::new(&c);
            s.on_bar(&c, &inputs(&down_bar(), &FlowSnapshot::default(), lv));
            s.on_bar(&c, &inputs(&bar, &flow, lv)).1
        };
        assert!(run(up_bar(), long_flow(), Some(&lv)).is_some());
        assert!(run(up_bar(), long_flow(), None).is_none(), "no profile");
        assert!(run(up_bar(), FlowSnapshot { absorption_bull: false, ..long_flow() }, Some(&lv)).is_none());
        assert!(run(up_bar(), FlowSnapshot { cvd_change_steps: 9, ..long_flow() }, Some(&lv)).is_none());
        assert!(run(up_bar(), FlowSnapshot { imbalance_bar: 1.9, ..long_flow() }, Some(&lv)).is_none());
        assert!(run(up_bar(), FlowSnapshot { burst_ratio: 1.4, ..long_flow() }, Some(&lv)).is_none());
        let far = Bar { open: 10_070, close: 10_075, high: 10_075, low: 10_070, ..up_bar() };
        assert!(run(far, long_flow(), Some(&lv)).is_none(), "out of every zone");
        let narrow = Bar { open: 10_000, close: 10_003, high: 10_003, low: 10_000, ..up_bar() };
        assert!(run(narrow, long_flow(), Some(&lv)).is_none(), "bar range 0.03 % < 0.04 %");
        // Without the reversal (two up bars) there is no signal.
        let mut s = Strategy::new(&c);
        s.on_bar(&c, &inputs(&up_bar(), &FlowSnapshot::default(), Some(&lv)));
        assert!(s.on_bar(&c, &inputs(&up_bar(), &long_flow(), Some(&lv))).1.is_none());
    }

    #[test]
    fn short_is_the_mirror_at_vah() {
        let c = cfg();
        let lv = levels();
        let mut s = Strategy::new(&c);
        let up = Bar { open: 10_080, high: 10_100, low: 10_080, close: 10_100, ..up_bar() };
        s.on_bar(&c, &inputs(&up, &FlowSnapshot::default(), Some(&lv)));
        let down = Bar {
            open: 10_100,
            high: 10_100,
            low: 10_090,
            close: 10_090,
            volume: 30,
            buy_volume: 5,
            sell_volume: 25,
            ..Bar::default()
        };
        let flow = FlowSnapshot {
            imbalance_bar: 0.2,
            imbalance_bar_short: 5.0,
            cvd_change_steps: -15,
            burst_ratio: 3.0,
            absorption_bear: true,
            ..FlowSnapshot::default()
        };
        let sig = s.on_bar(&c, &inputs(&down, &flow, Some(&lv))).1.expect("short");
        assert_eq!(sig.side, Side::Short);
        assert!(sig.features.near_vah);
        assert_eq!(sig.features.cvd_1min_change, -15.0);
    }

    #[test]
    fn regime_rows_scale_thresholds() {
        let d = StrategyConfig::default();
        assert!((d.range_low.min_imbalance - 2.2 * 0.9).abs() < 1e-12);
        assert_eq!(d.range_low.cooldown_bars, 6);
        assert!((d.trend_high.min_burst_ratio - 1.8 * 1.15).abs() < 1e-12);
        assert_eq!(d.trend_high.cooldown_bars, 11);
    }
}

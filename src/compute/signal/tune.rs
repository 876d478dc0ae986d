//! Per-symbol burst threshold auto-tuning (spec 3.1): a rolling backtest over the symbol's recent bars.
//!
//! Every closed bar leaves a [`BarEval`] (close, high, low, whether every long/short condition except the burst
//! and the cooldown held, the burst ratio normalised by the regime scale, the regime's cooldown). Every
//! `every_bars` closed bars, once `lookback_bars + lookahead_bars` bars exist, a run starts: the window is copied
//! into a preallocated scratch array and each candidate threshold is evaluated in its own slice (one candidate per
//! market trade that follows), so tick processing never waits for a whole backtest, and the result lands at a
//! deterministic event.
//!
//! Backtest of one candidate `c` over the first `lookback_bars` bars of the window: an entry on bar `i` when its
//! long (short) conditions held, its normalised burst ≥ `c`, and at least the bar's cooldown has passed since the
//! previous simulated entry; entry price = the bar's close. Exit over the next `lookahead_bars` bars: stop at
//! `stop_pct` adverse, target at `target_pct` favourable (a bar touching both counts as the stop: conservative), or
//! the close of the last lookahead bar. PnL % = move − 2 × `fee_pct` (taker in and out). The candidate with the
//! highest mean PnL % (expectancy) among those with ≥ `min_trades` trades wins (ties: the lower threshold); with
//! none qualifying the threshold stays. Every run yields a [`TuningLog`] for `volume_burst_tuning_logs`.

use crate::compute::signal::strategy::BarEval;
use crate::types::record::TuningLog;

/// Most candidates.
pub(crate) const MAX_CANDIDATES: usize = 16;
/// Most bars in a window.
pub(crate) const MAX_WINDOW: usize = 1024;

/// Tuning parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TuneConfig {
    /// On or off.
    pub enabled: bool,
    /// Closed bars between runs.
    pub every_bars: u32,
    /// Bars in which entries are simulated.
    pub lookback_bars: usize,
    /// Bars an entry may take to resolve.
    pub lookahead_bars: usize,
    /// Stop distance, %.
    pub stop_pct: f64,
    /// Target distance, %.
    pub target_pct: f64,
    /// Fee per side, %.
    pub fee_pct: f64,
    /// Fewest trades for a candidate to count.
    pub min_trades: u32,
    /// Candidate thresholds.
    pub candidates: Vec<f64>,
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            enabled: true,
            every_bars: 20,
            lookback_bars: 120,
            lookahead_bars: 8,
            stop_pct: 0.20,
            target_pct: 0.35,
            fee_pct: 0.05,
            min_trades: 8,
            candidates: vec![1.2, 1.5, 1.8, 2.2, 2.6, 3.0],
        }
    }
}

// Bounds of `[tune]` (`candidates` is checked by the app's config: 1 to MAX_CANDIDATES positive finite ratios).
crate::bounds!(TuneConfig as _t {
    enabled: any;
    every_bars: [1, 100_000] "1 to 100000 bars";
    lookback_bars: [2, MAX_WINDOW / 2] "2 to 512 bars";
    lookahead_bars: [1, MAX_WINDOW / 2] "1 to 512 bars";
    stop_pct: [0.0, 100.0] "0 to 100 (%)";
    target_pct: [0.0, 100.0] "0 to 100 (%)";
    fee_pct: [0.0, 10.0] "0 to 10 (%)";
    min_trades: [1, 100_000] "1 to 100000";
    candidates: any;
});

/// Result of one candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CandidateResult {
    /// Threshold.
    pub ratio: f64,
    /// Simulated trades.
    pub trades: u32,
    /// Winning trades.
    pub wins: u32,
    /// Sum of PnL %.
    pub pnl_pct_sum: f64,
}

/// Tuning state of one symbol.
#[derive(Debug, Clone)]
pub struct Tuner {
    cfg: TuneConfig,
    ring: Vec<BarEval>,
    head: usize,
    len: usize,
    since: u32,
    scratch: Vec<BarEval>,
    results: [CandidateResult; MAX_CANDIDATES],
    next: usize,
    running: bool,
    /// Runs finished.
    pub runs: u64,
}

impl Tuner {
    /// A tuner with its buffers allocated.
    pub fn new(cfg: TuneConfig) -> Self {
        let w = (cfg.lookback_bars + cfg.lookahead_bars).clamp(2, MAX_WINDOW);
        Tuner {
            ring: vec![BarEval::default(); w],
            scratch: Vec::with_capacity(w),
            head: 0,
            len: 0,
            since: 0,
            results: [CandidateResult::default(); MAX_CANDIDATES],
            next: 0,
            running: false,
            runs: 0,
            cfg,
        }
    }

    /// Records a closed bar's evaluation; may start a run.
    pub fn on_bar(&mut self, ev: BarEval) {
        if !self.cfg.enabled {
            return;
        }
        let w = self.ring.len();
        self.ring[self.head] = ev;
        self.head = (self.head + 1) % w;
        self.len = (self.len + 1).min(w);
        self.since += 1;
        if !self.running && self.len == w && self.since >= self.cfg.every_bars.max(1) {
            self.since = 0;
            self.scratch.clear();
            for k in 0..w {
                self.scratch.push(self.ring[(self.head + k) % w]);
            }
            self.next = 0;
            self.running = true;
        }
    }

    /// True while a run is in progress.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Evaluates one candidate of the running run; at the end returns the run's log. `current` is the symbol's
    /// threshold now.
    pub fn step(&mut self, current: f64, ts_ns: i64) -> Option<TuningLog> {
        if !self.running {
            return None;
        }
        let n = self.cfg.candidates.len().min(MAX_CANDIDATES);
        if self.next < n {
            let c = self.cfg.candidates[self.next];
            self.results[self.next] = backtest(&self.cfg, &self.scratch, c);
            self.next += 1;
            if self.next < n {
                return None;
            }
        }
        self.running = false;
        self.runs += 1;
        let mut best: Option<CandidateResult> = None;
        for r in &self.results[..n] {
            if r.trades < self.cfg.min_trades.max(1) {
                continue;
            }
            let e = r.pnl_pct_sum / r.trades as f64;
            let better = match best {
                None => true,
                Some(b) => {
                    let eb = b.pnl_pct_sum / b.trades as f64;
                    e > eb || (e == eb && r.ratio < b.ratio)
                }
            };
            if better {
                best = Some(*r);
            }
        }
        let c = &self.cfg;
        let mut log = TuningLog {
            ts_ns,
            tuned_ratio: current,
            previous_ratio: current,
            trades: 0,
            win_rate_pct: 0.0,
            expectancy_pct: 0.0,
            window_bars: c.lookback_bars as u32,
            lookahead_bars: c.lookahead_bars as u32,
            candidates: n as u32,
            fee_pct: c.fee_pct,
            stop_pct: c.stop_pct,
            target_pct: c.target_pct,
            changed: false,
        };
        if let Some(b) = best {
            log.tuned_ratio = b.ratio;
            log.trades = b.trades;
            log.win_rate_pct = b.wins as f64 / b.trades as f64 * 100.0;
            log.expectancy_pct = b.pnl_pct_sum / b.trades as f64;
            log.changed = b.ratio != current;
        }
        Some(log)
    }
}

/// Backtests one threshold over `bars` (see the module doc).
pub(crate) fn backtest(cfg: &TuneConfig, bars: &[BarEval], c: f64) -> CandidateResult {
    let mut r = CandidateResult { ratio: c, ..CandidateResult::default() };
    let la = cfg.lookahead_bars;
    let last_entry = bars.len().saturating_sub(la).min(cfg.lookback_bars);
    let mut since = u32::MAX / 2;
    for i in 0..last_entry {
        since = since.saturating_add(1);
        let b = &bars[i];
        let long = b.long_ok && b.burst_norm >= c && b.burst_norm > 0.0;
        let short = b.short_ok && b.burst_norm >= c && b.burst_norm > 0.0;
        if long == short || since < b.cooldown || b.close <= 0 {
            continue;
        }
        since = 0;
        let entry = b.close as f64;
        let (stop, target) = if long {
            (entry * (1.0 - cfg.stop_pct / 100.0), entry * (1.0 + cfg.target_pct / 100.0))
        } else {
            (entry * (1.0 + cfg.stop_pct / 100.0), entry * (1.0 - cfg.target_pct / 100.0))
        };
        let mut pnl = None;
        for b in &bars[i + 1..=i + la] {
            let (hit_stop, hit_target) = if long {
                (b.low as f64 <= stop, b.high as f64 >= target)
            } else {
                (b.high as f64 >= stop, b.low as f64 <= target)
            };
            if hit_stop {
                pnl = Some(-cfg.stop_pct);
                break;
            }
            if hit_target {
                pnl = Some(cfg.target_pct);
                break;
            }
        }
        let pnl = pnl.unwrap_or_else(|| {
            let exit = bars[i + la].close as f64;
            let m = (exit - entry) / entry * 100.0;
            if long { m } else { -m }
        }) - 2.0 * cfg.fee_pct;
        r.trades += 1;
        if pnl > 0.0 {
            r.wins += 1;
        }
        r.pnl_pct_sum += pnl;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(close: i64, high: i64, low: i64, long_ok: bool, burst: f64) -> BarEval {
        BarEval { close, high, low, long_ok, short_ok: false, burst_norm: burst, cooldown: 0 }
    }

    #[test]
    fn backtest_counts_stops_targets_and_fees() {
        let cfg = TuneConfig {
            lookback_bars: 4,
            lookahead_bars: 2,
            stop_pct: 1.0,
            target_pct: 2.0,
            fee_pct: 0.1,
            ..TuneConfig::default()
        };
        let bars = [
            ev(1000, 1000, 1000, true, 3.0), // entry 1000: next bar reaches 1020 -> +2 %
            ev(1010, 1020, 1005, false, 0.0),
            ev(1000, 1000, 1000, true, 1.5), // entry 1000 (burst 1.5): next bar low 990 -> -1 %
            ev(995, 1000, 990, false, 0.0),
            ev(1000, 1000, 1000, false, 0.0),
            ev(1000, 1000, 1000, false, 0.0),
        ];
        let r = backtest(&cfg, &bars, 1.2);
        assert_eq!((r.trades, r.wins), (2, 1));
        assert!((r.pnl_pct_sum - ((2.0 - 0.2) + (-1.0 - 0.2))).abs() < 1e-12);
        // A higher threshold keeps only the first entry.
        let r = backtest(&cfg, &bars, 2.0);
        assert_eq!((r.trades, r.wins), (1, 1));
    }

    #[test]
    fn runs_in_slices_and_picks_the_best_expectancy() {
        let cfg = TuneConfig {
            every_bars: 1,
            lookback_bars: 6,
            lookahead_bars: 1,
            stop_pct: 1.0,
            target_pct: 1.0,
            fee_pct: 0.0,
            min_trades: 2,
            candidates: vec![1.0, 2.0, 3.0],
            ..TuneConfig::default()
        };
        let mut t = Tuner::new(cfg);
        // Entries with burst 1.5 lose, entries with burst 2.5 win: 2.0 keeps only winners (2 trades).
        let seq = [
            ev(1000, 1000, 1000, true, 2.5),
            ev(1010, 1010, 1000, false, 0.0),
            ev(1000, 1000, 1000, true, 1.5),
            ev(990, 1000, 990, false, 0.0),
            ev(1000, 1000, 1000, true, 2.5),
            ev(1010, 1010, 1000, false, 0.0),
            ev(1000, 1000, 1000, false, 0.0),
        ];
        for e in seq {
            t.on_bar(e);
        }
        assert!(t.running());
        assert!(t.step(1.8, 1).is_none());
        assert!(t.step(1.8, 2).is_none());
        let log = t.step(1.8, 3).expect("third slice finishes");
        assert_eq!(log.tuned_ratio, 2.0);
        assert_eq!(log.trades, 2);
        assert_eq!(log.win_rate_pct, 100.0);
        assert!(log.changed);
        assert_eq!(log.previous_ratio, 1.8);
        assert!(!t.running());
        // Too few trades for every candidate: keep the threshold.
        let mut t = Tuner::new(TuneConfig {
            every_bars: 1,
            lookback_bars: 2,
            lookahead_bars: 1,
            min_trades: 5,
            candidates: vec![1.0],
            ..TuneConfig::default()
        });
        for e in [ev(1000, 1000, 1000, true, 2.0), ev(1000, 1000, 1000, false, 0.0), ev(1000, 1000, 1000, false, 0.0)] {
            t.on_bar(e);
        }
        let log = t.step(1.8, 9).unwrap();
        assert_eq!((log.tuned_ratio, log.changed, log.trades), (1.8, false, 0));
    }
}

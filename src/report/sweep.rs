//! The summary of a parameter sweep (`rusto sweep`): one row per cell, from the cell's database, ranked by
//! expectancy, with its confidence interval, trade count and maximum drawdown.
//!
//! - Trades: the base trader's closed positions of the database's newest finished run (a re-run cell appends a run;
//!   A/B variants and positions closed as `Crashed` are left out, as in `rusto report`).
//! - Expectancy: mean net PnL % of notional per trade ([`Agg::expectancy_pct`], the report's).
//! - Confidence interval: mean ± z·s/√n (normal approximation; s the sample standard deviation; none below 2
//!   trades). The family of m cells is corrected by Bonferroni: each interval is at level 1 − α/m, so that all m
//!   hold together with probability ≥ 1 − α (α = 0.05): z = Φ⁻¹(1 − α/(2m)).
//! - Maximum drawdown: the largest fall of cumulative net PnL (USDT) from a running peak, trades in exit order,
//!   starting from 0.
//! - Walk-forward: cells are ranked on the train window and reported out of sample on the test window; the summary
//!   warns when the best cell's test interval (Bonferroni over the m cells the choice was made among) contains 0.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::report::review::{Agg, ReviewError, Trade, load};

/// The family-wise error rate of the intervals.
pub(crate) const ALPHA: f64 = 0.05;

/// What a cell's database gave for one window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CellStats {
    /// Closed trades.
    pub trades: u64,
    /// Win rate, %.
    pub win_rate_pct: f64,
    /// Mean net PnL % per trade (none without trades).
    pub expectancy_pct: Option<f64>,
    /// The Bonferroni-corrected interval of the expectancy, % (none below 2 trades).
    pub ci_pct: Option<[f64; 2]>,
    /// Σ net PnL, USDT.
    pub pnl: f64,
    /// Largest peak-to-trough fall of cumulative net PnL, USDT (≥ 0).
    pub max_drawdown: f64,
}

/// The largest fall of cumulative net PnL from a running peak (trades in exit order, equity starting at 0).
pub(crate) fn max_drawdown(pnls: impl IntoIterator<Item = f64>) -> f64 {
    let (mut equity, mut peak, mut dd) = (0.0f64, 0.0f64, 0.0f64);
    for p in pnls {
        equity += p;
        peak = peak.max(equity);
        dd = dd.max(peak - equity);
    }
    dd
}

/// Φ⁻¹(p), the standard normal quantile (P. J. Acklam's rational approximation, relative error < 1.2e-9).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The z of a two-sided interval of a family of `m` with family-wise level 1 − [`ALPHA`] (Bonferroni).
pub fn bonferroni_z(m: usize) -> f64 {
    normal_quantile(1.0 - ALPHA / (2.0 * m.max(1) as f64))
}

/// The statistics of a set of closed trades (in exit order) with intervals of half-width `z`·s/√n.
pub fn cell_stats(trades: &[Trade], z: f64) -> CellStats {
    let mut agg = Agg::default();
    for t in trades {
        agg.add(t);
    }
    let n = trades.len() as f64;
    let mean = agg.expectancy_pct();
    let ci_pct = (trades.len() >= 2).then(|| {
        let var = trades.iter().map(|t| (t.pnl_pct - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let h = z * (var / n).sqrt();
        [mean - h, mean + h]
    });
    CellStats {
        trades: agg.trades,
        win_rate_pct: agg.win_rate_pct(),
        expectancy_pct: (agg.trades > 0).then_some(mean),
        ci_pct,
        pnl: agg.pnl,
        max_drawdown: max_drawdown(trades.iter().map(|t| t.pnl)),
    }
}

/// The base trader's closed trades (not `Crashed`) of the newest finished run of a cell's database. An error when
/// the database is missing, unreadable, or holds no cleanly finished run (the cell failed).
pub fn cell_trades(db: &Path) -> Result<Vec<Trade>, ReviewError> {
    let e = |x: rusqlite::Error| ReviewError::Db(db.display().to_string(), x.to_string());
    if !db.exists() {
        return Err(ReviewError::Db(db.display().to_string(), "no database (the replay did not start)".into()));
    }
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(e)?;
    let newest: Option<(i64, String)> = c
        .query_row("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(Some)
        .or_else(|x| if x == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(x) })
        .map_err(e)?;
    let run = match newest {
        Some((id, status)) if status == "finished" => id,
        Some((_, status)) => {
            return Err(ReviewError::Db(db.display().to_string(), format!("its newest run is `{status}`")));
        }
        None => return Err(ReviewError::Db(db.display().to_string(), "no run".into())),
    };
    drop(c);
    let mut trades = load(db)?;
    trades.retain(|t| t.run_id == run && &*t.variant == "base" && !t.crashed());
    Ok(trades)
}

/// One window's outcome of a cell: its statistics, or why it failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The replay finished.
    Done(CellStats),
    /// The replay failed (the reason from its log or database).
    Failed(String),
}

impl Outcome {
    fn stats(&self) -> Option<&CellStats> {
        match self {
            Outcome::Done(s) => Some(s),
            Outcome::Failed(_) => None,
        }
    }
    fn json(&self) -> Value {
        match self {
            Outcome::Done(s) => json!({"status": "done", "stats": s}),
            Outcome::Failed(why) => json!({"status": "failed", "error": why}),
        }
    }
}

/// One cell of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRow {
    /// `cell-000`, …
    pub name: String,
    /// The cell's overrides, `key = value` (TOML values).
    pub overrides: Vec<(String, String)>,
    /// The whole recording, or the train window in a walk-forward.
    pub main: Outcome,
    /// The test window (walk-forward only).
    pub test: Option<Outcome>,
}

/// The ranking key: failed cells last, then cells without trades, then by expectancy (higher first), then by
/// trade count, then by name.
fn rank_key(r: &CellRow) -> (u8, f64, u64) {
    match r.main.stats() {
        None => (2, 0.0, 0),
        Some(s) => match s.expectancy_pct {
            None => (1, 0.0, 0),
            Some(e) => (0, -e, u64::MAX - s.trades),
        },
    }
}

/// The summary of a sweep: the cells ranked, and the warning on the best one.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSummary {
    /// Cells, best first.
    pub cells: Vec<CellRow>,
    /// Whether the cells ran on a train and a test window.
    pub walk_forward: bool,
    /// The z of every interval (Bonferroni over the cells).
    pub z: f64,
    /// The warning on the best cell, if any.
    pub warning: Option<String>,
}

/// Ranks the cells (on the train window in a walk-forward) and checks the best one against the noise.
pub fn summarize(mut cells: Vec<CellRow>, walk_forward: bool) -> SweepSummary {
    cells.sort_by(|a, b| {
        let (ka, kb) = (rank_key(a), rank_key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.cmp(&kb.2)).then(a.name.cmp(&b.name))
    });
    let m = cells.len();
    let z = bonferroni_z(m);
    let warning = best_warning(cells.first(), walk_forward, m);
    SweepSummary { cells, walk_forward, z, warning }
}

/// Why the best cell's result may be noise: its (test) interval contains 0, or it has too few trades for one.
fn best_warning(best: Option<&CellRow>, walk_forward: bool, m: usize) -> Option<String> {
    let best = best?;
    let (what, outcome) = match (&best.test, walk_forward) {
        (Some(t), true) => ("out-of-sample (test) expectancy", t),
        _ => ("expectancy", &best.main),
    };
    let Some(s) = outcome.stats() else {
        return Some(format!("the best cell {} has no {what}: its replay failed", best.name));
    };
    let noise = format!("inside the noise of {m} comparisons (Bonferroni: each interval at {:.4} %)", level_pct(m));
    match (s.expectancy_pct, s.ci_pct) {
        (None, _) => Some(format!("the best cell {} has no trades for its {what}", best.name)),
        (Some(_), None) => Some(format!("the best cell {}'s {what} rests on {} trade: {noise}", best.name, s.trades)),
        (Some(e), Some([lo, hi])) if lo <= 0.0 && hi >= 0.0 => {
            Some(format!("the best cell {}'s {what} {e:.4} % (interval {lo:.4} .. {hi:.4} %) is {noise}", best.name))
        }
        _ => None,
    }
}

/// Each interval's confidence level, %, for a family of `m`.
fn level_pct(m: usize) -> f64 {
    100.0 * (1.0 - ALPHA / m.max(1) as f64)
}

impl SweepSummary {
    /// The method line (what the intervals are).
    fn method(&self) -> String {
        let m = self.cells.len();
        format!(
            "intervals: mean ± z·s/√n of per-trade net PnL % (normal approximation), Bonferroni over {m} cells: each \
             at {:.4} % (z = {:.3}) for a family-wise {:.0} %",
            level_pct(m),
            self.z,
            100.0 * (1.0 - ALPHA)
        )
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        let cells: Vec<Value> = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let over: serde_json::Map<String, Value> =
                    c.overrides.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                let mut v = json!({"rank": i + 1, "cell": c.name, "overrides": over});
                v[if self.walk_forward { "train" } else { "result" }] = c.main.json();
                if let Some(t) = &c.test {
                    v["test"] = t.json();
                }
                v
            })
            .collect();
        json!({
            "cells": cells,
            "walk_forward": self.walk_forward,
            "correction": "bonferroni",
            "alpha": ALPHA,
            "z": self.z,
            "method": self.method(),
            "failed": self.failed(),
            "warning": self.warning,
        })
    }

    /// Cells with a failed replay (any window).
    pub fn failed(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| c.main.stats().is_none() || c.test.as_ref().is_some_and(|t| t.stats().is_none()))
            .count()
    }

    /// The table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let head = if self.walk_forward { "train (ranked)" } else { "whole recording" };
        s.push_str(&format!("{:<4} {:<9} {:<44} {}", "rank", "cell", "overrides", head));
        s.push_str(if self.walk_forward { "  |  test (out of sample)\n" } else { "\n" });
        for (i, c) in self.cells.iter().enumerate() {
            let over: Vec<String> = c.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("{:<4} {:<9} {:<44} {}", i + 1, c.name, over.join(" "), outcome_text(&c.main)));
            if let Some(t) = &c.test {
                s.push_str(&format!("  |  {}", outcome_text(t)));
            }
            s.push('\n');
        }
        s.push_str("columns: trades, expectancy % [interval %], win %, PnL USDT, max drawdown USDT\n");
        s.push_str(&self.method());
        s.push('\n');
        if self.failed() > 0 {
            s.push_str(&format!("failed cells: {} (listed above with their error)\n", self.failed()));
        }
        if let Some(w) = &self.warning {
            s.push_str(&format!("warning: {w}\n"));
        }
        s
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Failed(why) => format!("FAILED: {why}"),
        Outcome::Done(s) => {
            let e = s.expectancy_pct.map_or("-".to_string(), |e| format!("{e:.4}"));
            let ci = s.ci_pct.map_or("[-]".to_string(), |[lo, hi]| format!("[{lo:.4} .. {hi:.4}]"));
            format!(
                "n={:<4} E={:>8} {:<22} win={:>5.1} pnl={:>9.2} dd={:>8.2}",
                s.trades, e, ci, s.win_rate_pct, s.pnl, s.max_drawdown
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pnl_pct: f64, pnl: f64) -> Trade {
        Trade { pnl_pct, pnl, ..Trade::default() }
    }

    #[test]
    fn quantiles_and_bonferroni() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090232).abs() < 1e-6);
        assert!((bonferroni_z(1) - 1.959964).abs() < 1e-6);
        // 9 cells: each interval at 1 − 0.05/9, z = Φ⁻¹(1 − 0.05/18) = 2.772921 (Python statistics.NormalDist).
        assert!((bonferroni_z(9) - 2.772921).abs() < 1e-5, "{}", bonferroni_z(9));
        assert!(normal_quantile(0.0).is_nan() && normal_quantile(1.0).is_nan());
    }

    #[test]
    fn stats_drawdown_and_interval() {
        // Equity 1, 3, 0, 2, -2: peak 3, trough -2 → drawdown 5.
        assert_eq!(max_drawdown([1.0, 2.0, -3.0, 2.0, -4.0]), 5.0);
        assert_eq!(max_drawdown([-1.0, -1.0]), 2.0);
        assert_eq!(max_drawdown([1.0, 1.0]), 0.0);
        let s = cell_stats(&[t(1.0, 10.0), t(-0.5, -5.0), t(0.5, 5.0)], 2.0);
        assert_eq!(s.trades, 3);
        assert!((s.expectancy_pct.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // s² = ((2/3)² + (5/6)² + (1/6)²) / 2 = 7/12; half-width 2·√(7/36).
        let h = 2.0 * (7.0f64 / 36.0).sqrt();
        let [lo, hi] = s.ci_pct.unwrap();
        assert!((lo - (1.0 / 3.0 - h)).abs() < 1e-12 && (hi - (1.0 / 3.0 + h)).abs() < 1e-12);
        assert_eq!(s.max_drawdown, 5.0);
        let one = cell_stats(&[t(1.0, 1.0)], 2.0);
        assert_eq!((one.ci_pct, one.expectancy_pct), (None, Some(1.0)));
        assert_eq!(cell_stats(&[], 2.0).expectancy_pct, None);
    }

    #[test]
    fn ranking_and_the_warning() {
        let row = |name: &str, trades: &[Trade]| CellRow {
            name: name.into(),
            overrides: vec![],
            main: Outcome::Done(cell_stats(trades, 2.0)),
            test: None,
        };
        let failed = CellRow { main: Outcome::Failed("boom".into()), ..row("cell-000", &[]) };
        let cells = vec![
            failed,
            row("cell-001", &[]),
            row("cell-002", &[t(0.1, 1.0), t(-0.05, -1.0)]),
            row("cell-003", &[t(0.3, 1.0), t(0.2, 1.0), t(0.25, 1.0)]),
        ];
        let s = summarize(cells, false);
        let order: Vec<&str> = s.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, ["cell-003", "cell-002", "cell-001", "cell-000"]);
        assert_eq!(s.failed(), 1);
        // cell-003: mean 0.25, s = 0.05, z(4) = 2.498: interval 0.25 ± 0.072, clear of 0: no warning.
        assert_eq!(s.warning, None);
        assert!(s.to_text().contains("FAILED: boom"));
        let noisy = summarize(vec![row("cell-000", &[t(0.3, 1.0), t(-0.2, -1.0)])], false);
        assert!(noisy.warning.as_deref().unwrap().contains("inside the noise of 1 comparisons"), "{noisy:?}");
        assert_eq!(noisy.to_json()["correction"], "bonferroni");
    }
}

//! `rusto report --db PATH`: the improvement loop of spec section 7, from `positions` + `entry_features`.
//!
//! - Expectancy (mean net PnL % of notional per trade), win rate, PnL (USDT) and trade count by symbol, by UTC hour
//!   of entry, by regime and by exit reason (7.1).
//! - For each entry feature, the closed trades are split into `feature_bins` equal-count bins by the feature's
//!   value; the bins with negative expectancy are listed with their value range (7.2: where to retune).
//! - MFE/MAE fit (7.3): the distribution (p25/p50/p75/p90) of MFE and MAE for winners and for losers, set against
//!   the configured stop, TP1, TP2 and SoftStop distances, and suggested distances: each candidate stop/target pair
//!   on a grid is replayed over the same trades using their MFE, MAE and which came first (`time_to_mfe_secs` vs
//!   `time_to_mae_secs`): a trade reaching the target before the stop earns the target, one reaching the stop
//!   first loses the stop, otherwise it keeps its realised PnL; the pair with the best expectancy is suggested,
//!   with that expectancy (an estimate: intrabar order beyond the first touch is unknown).
//!
//! - Execution costs (issue 10, `report/execution.rs`): fees, funding, maker/taker fills, expected vs realised entry
//!   slippage and stop-market exit slippage against the trigger, TP fills at their limit; by symbol, by final exit
//!   reason and by trader. A database older than schema 5 is read as it is, its missing columns shown as `-`.
//! - Positions closed as `Crashed` (their run was killed; the database closed them at the next start, see
//!   `persist/recover.rs`) are not strategy outcomes: they are left out of every statistic above and listed apart,
//!   by run (`crashed_runs`).
//! - The database is refused, as the writer refuses it, when its schema is newer than this binary knows, or when a
//!   read meets a damaged page (the error quotes `PRAGMA quick_check`, run then).
//!
//! Everything is read in one pass over the closed positions and computed in memory (1 M positions: see PERF.md).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use crate::report::execution::{ByPosition, Execution, PositionCosts};

/// One closed position with what the report needs.
#[derive(Debug, Clone, Default)]
pub struct Trade {
    /// Symbol.
    pub symbol: std::rc::Rc<str>,
    /// UTC hour of entry.
    pub hour: u8,
    /// Regime.
    pub regime: std::rc::Rc<str>,
    /// Exit reason.
    pub exit_reason: std::rc::Rc<str>,
    /// Net PnL, USDT.
    pub pnl: f64,
    /// Net PnL, % of notional.
    pub pnl_pct: f64,
    /// MFE %.
    pub mfe: f64,
    /// MAE %.
    pub mae: f64,
    /// MFE came before MAE.
    pub mfe_first: bool,
    /// Entry features in [`FEATURES`] order.
    pub features: [f64; 6],
    /// Exit time, ms.
    pub exit_ms: i64,
    /// Trader: "base" or an A/B variant's name.
    pub variant: std::rc::Rc<str>,
    /// The run it belongs to.
    pub run_id: i64,
    /// Fees, funding, entry slippage and what its fills add up to (the execution-cost section).
    pub costs: PositionCosts,
}

impl Trade {
    /// Closed by the database because its run was killed (not a strategy outcome).
    pub fn crashed(&self) -> bool {
        &*self.exit_reason == crate::types::record::ExitReason::Crashed.name()
    }
}

/// The entry features binned by the report.
pub(crate) const FEATURES: [&str; 6] =
    ["imbalance_ratio", "cvd_1min_change", "volume_burst_ratio", "bar_range_pct", "zone_distance_pct", "confidence"];

/// Aggregate of a group of trades.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Agg {
    /// Trades.
    pub trades: u64,
    /// Winners (net PnL > 0).
    pub wins: u64,
    /// Σ net PnL, USDT.
    pub pnl: f64,
    /// Σ net PnL %.
    pub pnl_pct_sum: f64,
}

impl Agg {
    pub(crate) fn add(&mut self, t: &Trade) {
        self.trades += 1;
        self.wins += (t.pnl > 0.0) as u64;
        self.pnl += t.pnl;
        self.pnl_pct_sum += t.pnl_pct;
    }
    /// Mean PnL % per trade.
    pub fn expectancy_pct(&self) -> f64 {
        if self.trades == 0 { 0.0 } else { self.pnl_pct_sum / self.trades as f64 }
    }
    /// Win rate, %.
    pub fn win_rate_pct(&self) -> f64 {
        if self.trades == 0 { 0.0 } else { self.wins as f64 * 100.0 / self.trades as f64 }
    }
}

/// Errors of the report.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The database could not be read.
    #[error("database {0}: {1}")]
    Db(String, String),
    /// The database is damaged or its schema is newer than this binary (the writer's own refusals).
    #[error(transparent)]
    Refused(#[from] crate::persist::DbError),
}

/// Refuses a database whose schema is newer than this binary (as the writer does); returns its version.
fn check_schema(c: &Connection, path: &Path) -> Result<i64, ReviewError> {
    let e = |x: rusqlite::Error| ReviewError::Db(path.display().to_string(), x.to_string());
    let found: i64 =
        c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0)).map_err(e)?;
    let known = crate::persist::Db::known_version();
    if found > known {
        return Err(crate::persist::DbError::TooNew { path: path.to_owned(), found, known }.into());
    }
    Ok(found)
}

/// Reads the closed positions (read-only; works while a live run writes). A database older than schema 5 is read
/// as it is (the report does not migrate): its execution columns read as NULL, its funding as 0.
pub fn load(path: &Path) -> Result<Vec<Trade>, ReviewError> {
    let e = |x: rusqlite::Error| ReviewError::Db(path.display().to_string(), x.to_string());
    if !path.exists() {
        return Err(ReviewError::Db(path.display().to_string(), "no such file".into()));
    }
    // One thread reads it: no SQLite mutex per column read (≈ 20 % of the time on 1 M positions).
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(e)?;
    let schema = check_schema(&c, path)?;
    let e = |x: rusqlite::Error| read_error(&c, path, x);
    let mut fills = crate::report::execution::load_fill_stats(&c, schema).map_err(e)?;
    let funding = if schema >= 5 { "p.funding" } else { "0.0" };
    let mut st = c
        .prepare(&format!(
            "SELECT p.symbol, (p.entry_ts_ms / 3600000) % 24, p.regime, p.exit_reason, p.pnl, p.pnl_pct, p.mfe_pct,
                    p.mae_pct, p.time_to_mfe_secs <= p.time_to_mae_secs,
                    f.imbalance_ratio, f.cvd_1min_change, f.volume_burst_ratio, f.bar_range_pct,
                    f.zone_distance_pct, f.confidence, COALESCE(p.exit_ts_ms, 0), p.variant, p.run_id,
                    p.id, p.fees, {funding}, p.expected_slippage_bps, p.realized_slippage_bps
             FROM positions p JOIN entry_features f ON f.position_id = p.id
             WHERE p.status = 'closed' ORDER BY p.exit_ts_ms, p.id"
        ))
        .map_err(e)?;
    // The few distinct symbols, regimes and exit reasons are shared, not allocated per row.
    let mut names: Vec<std::rc::Rc<str>> = Vec::new();
    let mut intern = |s: &str| -> std::rc::Rc<str> {
        if let Some(n) = names.iter().find(|n| &***n == s) {
            return n.clone();
        }
        let n: std::rc::Rc<str> = s.into();
        names.push(n.clone());
        n
    };
    let mut rows = st.query([]).map_err(e)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(e)? {
        out.push(trade_of(r, &mut intern, &mut fills).map_err(e)?);
    }
    Ok(out)
}

/// One row of [`load`]'s query as a trade (its fill statistics taken out of `fills`).
fn trade_of(
    r: &rusqlite::Row<'_>,
    intern: &mut impl FnMut(&str) -> std::rc::Rc<str>,
    fills: &mut ByPosition,
) -> rusqlite::Result<Trade> {
    let text = |i: usize| -> rusqlite::Result<&str> {
        Ok(match r.get_ref(i)? {
            rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or(""),
            _ => "",
        })
    };
    let id: i64 = r.get(18)?;
    Ok(Trade {
        symbol: intern(text(0)?),
        hour: r.get::<_, i64>(1)?.clamp(0, 23) as u8,
        regime: intern(text(2)?),
        exit_reason: intern(text(3)?),
        pnl: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
        pnl_pct: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
        mfe: r.get::<_, Option<f64>>(6)?.unwrap_or(0.0),
        mae: r.get::<_, Option<f64>>(7)?.unwrap_or(0.0),
        mfe_first: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
        features: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?],
        exit_ms: r.get(15)?,
        variant: intern(text(16)?),
        run_id: r.get(17)?,
        costs: PositionCosts {
            fees: r.get(19)?,
            funding: r.get(20)?,
            expected_slippage_bps: r.get(21)?,
            realized_slippage_bps: r.get(22)?,
            fills: fills.take(id),
        },
    })
}

/// A read error; a damaged page is reported as the writer reports it, with `quick_check`'s first problems. (The
/// report does not run `quick_check` up front: ≈ 3–6 s per GB, see PERF.md, while damage where it does not read
/// cannot change its figures, and damage where it reads fails the read.)
fn read_error(c: &Connection, path: &Path, x: rusqlite::Error) -> ReviewError {
    if !matches!(x.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt)) {
        return ReviewError::Db(path.display().to_string(), x.to_string());
    }
    match crate::persist::db::quick_check(c, path) {
        Err(d) => d.into(),
        Ok(()) => crate::persist::DbError::Damaged(path.to_owned(), x.to_string()).into(),
    }
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// Parameters the MFE/MAE fit compares with.
#[derive(Debug, Clone, Copy)]
pub struct Distances {
    /// Stop, %.
    pub stop_pct: f64,
    /// TP1, %.
    pub tp1_pct: f64,
    /// TP2, %.
    pub tp2_pct: f64,
    /// SoftStop drawdown, %.
    pub soft_stop_pct: f64,
    /// Fees per round trip, % of notional.
    pub fees_pct: f64,
}

/// One group's row: trades, win rate, expectancy and PnL (a JSON object, and a line of the text tables).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AggRow {
    /// Trades.
    pub trades: u64,
    /// Win rate, %.
    pub win_rate_pct: f64,
    /// Mean net PnL % per trade.
    pub expectancy_pct: f64,
    /// Σ net PnL, USDT.
    pub pnl: f64,
}

impl From<Agg> for AggRow {
    fn from(a: Agg) -> Self {
        AggRow { trades: a.trades, win_rate_pct: a.win_rate_pct(), expectancy_pct: a.expectancy_pct(), pnl: a.pnl }
    }
}

/// A feature bin with negative expectancy (where to retune).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeatureBin {
    /// Feature name (one of [`FEATURES`]).
    pub feature: &'static str,
    /// Bin number, from 1.
    pub bin: usize,
    /// Smallest value in the bin.
    pub from: f64,
    /// Largest value in the bin.
    pub to: f64,
    /// Trades in the bin.
    pub trades: u64,
    /// Mean net PnL % per trade.
    pub expectancy_pct: f64,
    /// Win rate, %.
    pub win_rate_pct: f64,
}

/// p25/p50/p75/p90 of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Quantiles {
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
}

impl Quantiles {
    fn of(mut v: Vec<f64>) -> Self {
        Quantiles { p25: pct(&mut v, 0.25), p50: pct(&mut v, 0.5), p75: pct(&mut v, 0.75), p90: pct(&mut v, 0.9) }
    }
}

/// MFE and MAE distributions of the winners or of the losers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Excursions {
    /// Trades in the group.
    pub trades: usize,
    /// MFE %.
    pub mfe_pct: Quantiles,
    /// MAE %.
    pub mae_pct: Quantiles,
}

/// The configured distances the fit is set against.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Configured {
    /// Stop, %.
    pub stop_pct: f64,
    /// TP1, %.
    pub tp1_pct: f64,
    /// TP2, %.
    pub tp2_pct: f64,
    /// SoftStop drawdown, %.
    pub soft_stop_pct: f64,
}

/// Share of the trades whose excursion reached each configured distance, %.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Reach {
    /// MFE ≥ TP1.
    pub tp1: f64,
    /// MFE ≥ TP2.
    pub tp2: f64,
    /// MAE ≥ stop.
    pub stop: f64,
    /// MAE ≥ SoftStop.
    pub soft_stop: f64,
}

/// The best stop/target pair of the grid search.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Suggested {
    /// Stop, %.
    pub stop_pct: f64,
    /// Target, %.
    pub target_pct: f64,
    /// Estimated expectancy with this pair, %.
    pub expectancy_pct: f64,
}

/// The MFE/MAE fit (7.3).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MfeMae {
    /// Winners' excursions.
    pub winners: Excursions,
    /// Losers' excursions.
    pub losers: Excursions,
    /// The configured distances.
    pub configured: Configured,
    /// Share reaching each distance.
    pub share_reaching_pct: Reach,
    /// Estimated expectancy with the configured stop and TP2, %.
    pub configured_estimate_expectancy_pct: f64,
    /// The best pair of the grid (none without closed positions: nothing to suggest).
    pub suggested: Option<Suggested>,
}

/// A variant compared with base.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VsBase {
    /// Expectancy difference (variant − base), %.
    pub expectancy_diff_pct: f64,
    /// 95 % confidence interval of the difference, %.
    pub ci95_pct: [f64; 2],
    /// The interval excludes zero.
    pub significant: bool,
    /// The interval lies above zero.
    pub better: bool,
}

/// One trader of the A/B comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VariantRow {
    /// Its trades.
    #[serde(flatten)]
    pub agg: AggRow,
    /// Against base (none for base itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_base: Option<VsBase>,
}

/// The whole review: `--json` prints it (keys sorted), [`text`] prints it as tables.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Review {
    /// Closed positions of the base trader.
    pub closed_positions: u64,
    /// Every trader, by name.
    pub variants: BTreeMap<String, VariantRow>,
    /// All base trades.
    pub total: AggRow,
    /// By symbol.
    pub by_symbol: BTreeMap<String, AggRow>,
    /// By UTC hour of entry ("00".."23", hours with trades only).
    pub by_utc_hour: BTreeMap<String, AggRow>,
    /// By regime.
    pub by_regime: BTreeMap<String, AggRow>,
    /// By exit reason.
    pub by_exit_reason: BTreeMap<String, AggRow>,
    /// Feature bins with negative expectancy.
    pub negative_expectancy_feature_bins: Vec<FeatureBin>,
    /// The MFE/MAE fit.
    pub mfe_mae: MfeMae,
    /// Execution costs: fees, funding, maker/taker fills, entry and stop-market exit slippage.
    pub execution: Execution,
    /// Positions closed as `Crashed`, by run id (left out of everything above; absent when there are none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub crashed_runs: BTreeMap<String, CrashedRun>,
    /// The real account's fills beside the paper model's (testnet and live runs; absent otherwise). [`build`]
    /// leaves it `None`: [`crate::report::load_real_vs_paper`] reads it from the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_vs_paper: Option<crate::report::real::RealVsPaper>,
}

/// A killed run's positions, closed by the database at the next start.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CrashedRun {
    /// Positions closed as `Crashed`.
    pub positions: u64,
    /// Their net PnL, USDT.
    pub pnl: f64,
    /// Their close time: the run's last committed row, ms.
    pub last_row_ms: i64,
}

/// The `Crashed` positions grouped by run.
fn crashed_runs(trades: &[Trade]) -> BTreeMap<String, CrashedRun> {
    let mut m: BTreeMap<String, CrashedRun> = BTreeMap::new();
    for t in trades.iter().filter(|t| t.crashed()) {
        let c = m.entry(t.run_id.to_string()).or_default();
        c.positions += 1;
        c.pnl += t.pnl;
        c.last_row_ms = c.last_row_ms.max(t.exit_ms);
    }
    m
}

/// The JSON text of a value with its object keys sorted (as `serde_json::Value` prints them).
fn json_text<T: serde::Serialize>(v: &T) -> String {
    // The report types hold only numbers, strings and string-keyed maps: serialising them cannot fail.
    serde_json::to_value(v).map_or_else(|e| format!("<{e}>"), |v| v.to_string())
}

impl Review {
    /// The `--json` object (keys sorted).
    pub fn to_json(&self) -> Value {
        // Only numbers, strings and string-keyed maps: cannot fail (Null would show it if it ever did).
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl std::fmt::Display for Review {
    /// The `--json` text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&json_text(self))
    }
}

fn rows(m: BTreeMap<String, Agg>) -> BTreeMap<String, AggRow> {
    m.into_iter().map(|(k, a)| (k, a.into())).collect()
}

/// Builds the report.
pub fn build(trades: &[Trade], d: Distances, feature_bins: usize) -> Review {
    // Crashed closes are listed apart; of the rest, everything below describes the base trader and the variants
    // are compared with it.
    let crashed = crashed_runs(trades);
    // Copied only when something is left out (1 M trades of one trader and no crash: no copy at all).
    let kept = keep(trades, |t| !t.crashed());
    let variants = variant_rows(&kept);
    let execution =
        crate::report::execution::build(kept.iter().map(|t| (&*t.symbol, &*t.exit_reason, &*t.variant, &t.costs)));
    let base = keep(&kept, |t| &*t.variant == "base");
    let trades = &base[..];
    let (total, [by_symbol, by_utc_hour, by_regime, by_exit_reason]) = groups(trades);
    Review {
        closed_positions: total.trades,
        variants,
        total: total.into(),
        by_symbol: rows(by_symbol),
        by_utc_hour: rows(by_utc_hour),
        by_regime: rows(by_regime),
        by_exit_reason: rows(by_exit_reason),
        negative_expectancy_feature_bins: negative_bins(trades, feature_bins.max(1)),
        mfe_mae: mfe_mae(trades, d),
        execution,
        crashed_runs: crashed,
        real_vs_paper: None,
    }
}

/// The trades that pass `f`: borrowed when all do, copied otherwise.
fn keep(trades: &[Trade], f: impl Fn(&Trade) -> bool) -> std::borrow::Cow<'_, [Trade]> {
    if trades.iter().all(&f) {
        std::borrow::Cow::Borrowed(trades)
    } else {
        std::borrow::Cow::Owned(trades.iter().filter(|t| f(t)).cloned().collect())
    }
}

/// The total and the groups by symbol, UTC hour, regime and exit reason.
fn groups(trades: &[Trade]) -> (Agg, [BTreeMap<String, Agg>; 4]) {
    let mut total = Agg::default();
    let mut by: [BTreeMap<String, Agg>; 4] = Default::default();
    let mut hours = [Agg::default(); 24];
    for t in trades {
        total.add(t);
        // Few distinct keys: look the group up by reference before allocating a key.
        for (m, k) in [(0, &*t.symbol), (2, &*t.regime), (3, &*t.exit_reason)] {
            match by[m].get_mut(k) {
                Some(a) => a.add(t),
                None => by[m].entry(k.to_string()).or_default().add(t),
            }
        }
        hours[t.hour as usize % 24].add(t);
    }
    for (h, a) in hours.iter().enumerate() {
        if a.trades > 0 {
            by[1].insert(format!("{h:02}"), *a);
        }
    }
    (total, by)
}

/// Feature bins with negative expectancy, feature by feature.
fn negative_bins(trades: &[Trade], bins: usize) -> Vec<FeatureBin> {
    let mut negative = Vec::new();
    let mut vals: Vec<f64> = Vec::with_capacity(trades.len());
    for (fi, name) in FEATURES.iter().enumerate() {
        vals.clear();
        vals.extend(trades.iter().map(|t| t.features[fi]));
        if vals.is_empty() {
            continue;
        }
        negative.extend(feature_bins(trades, fi, name, bins, &mut vals));
    }
    negative
}

/// Quantile bins of one feature: boundaries by selection (O(n)), then one pass; a value equal to a boundary falls
/// in the upper bin. `vals` holds the feature's values (reordered). Returns the bins with negative expectancy.
fn feature_bins(trades: &[Trade], fi: usize, name: &'static str, bins: usize, vals: &mut [f64]) -> Vec<FeatureBin> {
    let n = vals.len();
    let mut bounds = Vec::with_capacity(bins);
    for b in 1..bins {
        let k = (b * n / bins).min(n - 1);
        bounds.push(*vals.select_nth_unstable_by(k, f64::total_cmp).1);
    }
    let mut aggs = vec![Agg::default(); bins];
    let mut lo = vec![f64::INFINITY; bins];
    let mut hi = vec![f64::NEG_INFINITY; bins];
    for t in trades {
        let v = t.features[fi];
        let b = bounds.partition_point(|x| *x <= v);
        aggs[b].add(t);
        lo[b] = lo[b].min(v);
        hi[b] = hi[b].max(v);
    }
    (0..bins)
        .filter(|&b| aggs[b].trades > 0 && aggs[b].expectancy_pct() < 0.0)
        .map(|b| FeatureBin {
            feature: name,
            bin: b + 1,
            from: lo[b],
            to: hi[b],
            trades: aggs[b].trades,
            expectancy_pct: aggs[b].expectancy_pct(),
            win_rate_pct: aggs[b].win_rate_pct(),
        })
        .collect()
}

/// MFE / MAE distributions of the winners (`win`) or the losers.
fn excursions(trades: &[Trade], win: bool) -> Excursions {
    let mfe: Vec<f64> = trades.iter().filter(|t| (t.pnl > 0.0) == win).map(|t| t.mfe).collect();
    let mae: Vec<f64> = trades.iter().filter(|t| (t.pnl > 0.0) == win).map(|t| t.mae).collect();
    Excursions { trades: mfe.len(), mfe_pct: Quantiles::of(mfe), mae_pct: Quantiles::of(mae) }
}

/// The MFE/MAE fit: distributions, shares reaching each distance, and the grid search.
fn mfe_mae(trades: &[Trade], d: Distances) -> MfeMae {
    let reach = |f: &dyn Fn(&Trade) -> bool| -> f64 {
        if trades.is_empty() {
            0.0
        } else {
            trades.iter().filter(|t| f(t)).count() as f64 * 100.0 / trades.len() as f64
        }
    };
    let (current, suggested) = grid_fit(trades, d);
    MfeMae {
        winners: excursions(trades, true),
        losers: excursions(trades, false),
        configured: Configured {
            stop_pct: d.stop_pct,
            tp1_pct: d.tp1_pct,
            tp2_pct: d.tp2_pct,
            soft_stop_pct: d.soft_stop_pct,
        },
        share_reaching_pct: Reach {
            tp1: reach(&|t| t.mfe >= d.tp1_pct),
            tp2: reach(&|t| t.mfe >= d.tp2_pct),
            stop: reach(&|t| t.mae >= d.stop_pct),
            soft_stop: reach(&|t| t.mae >= d.soft_stop_pct),
        },
        configured_estimate_expectancy_pct: current,
        suggested,
    }
}

/// Grid search of stop/target distances on the same trades: (estimate with the configured stop and TP2, best pair;
/// none without trades).
fn grid_fit(trades: &[Trade], d: Distances) -> (f64, Option<Suggested>) {
    let grid = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0];
    let mut best: Option<Suggested> = None;
    // Compact columns for the grid (cache-friendly, branch-light).
    let cols: Vec<(f32, f32, f32, bool)> =
        trades.iter().map(|t| (t.mfe as f32, t.mae as f32, (t.pnl_pct + d.fees_pct) as f32, t.mfe_first)).collect();
    let sim = |stop: f64, target: f64| -> f64 {
        let (s32, t32) = (stop as f32, target as f32);
        let s: f64 = cols
            .iter()
            .map(|&(mfe, mae, base, first)| {
                let hit_t = mfe >= t32;
                let hit_s = mae >= s32;
                (if hit_t && (!hit_s || first) {
                    t32
                } else if hit_s {
                    -s32
                } else {
                    base
                }) as f64
            })
            .sum::<f64>()
            - d.fees_pct * cols.len() as f64;
        if cols.is_empty() { 0.0 } else { s / cols.len() as f64 }
    };
    for &stop_pct in grid.iter().filter(|_| !cols.is_empty()) {
        for &target_pct in &grid {
            let expectancy_pct = sim(stop_pct, target_pct);
            if best.is_none_or(|b| expectancy_pct > b.expectancy_pct) {
                best = Some(Suggested { stop_pct, target_pct, expectancy_pct });
            }
        }
    }
    (sim(d.stop_pct, d.tp2_pct), best)
}

/// (n, mean, sample variance) of a set of PnL %.
fn moments(v: &[f64]) -> (f64, f64, f64) {
    let n = v.len() as f64;
    if n == 0.0 {
        return (0.0, 0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = if n > 1.0 { v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (n, m, var)
}

/// Per trader: trades, win rate, expectancy, PnL; for each variant the difference in expectancy (variant − base)
/// with a 95 % confidence interval (Welch: ± 1.96 × √(s²ᵥ/nᵥ + s²ᵦ/nᵦ), normal approximation), and whether the
/// interval excludes zero (a promotion is a decision, not a guess).
pub(crate) fn variant_rows(trades: &[Trade]) -> BTreeMap<String, VariantRow> {
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut aggs: BTreeMap<String, Agg> = BTreeMap::new();
    for t in trades {
        groups.entry(t.variant.to_string()).or_default().push(t.pnl_pct);
        aggs.entry(t.variant.to_string()).or_default().add(t);
    }
    let (nb, mb, vb) = groups.get("base").map_or((0.0, 0.0, 0.0), |v| moments(v));
    let vs_base = |name: &str| -> VsBase {
        let (n, m, v) = groups.get(name).map_or((0.0, 0.0, 0.0), |v| moments(v));
        let diff = m - mb;
        let se = if n > 0.0 && nb > 0.0 { (v / n + vb / nb).sqrt() } else { f64::NAN };
        let (lo, hi) = (diff - 1.96 * se, diff + 1.96 * se);
        VsBase {
            expectancy_diff_pct: diff,
            ci95_pct: [lo, hi],
            significant: se.is_finite() && (lo > 0.0 || hi < 0.0),
            better: se.is_finite() && lo > 0.0,
        }
    };
    aggs.iter()
        .map(|(name, a)| {
            let vs = (name != "base").then(|| vs_base(name));
            (name.clone(), VariantRow { agg: (*a).into(), vs_base: vs })
        })
        .collect()
}

/// [`variant_rows`] as its JSON object.
pub fn variant_comparison(trades: &[Trade]) -> Value {
    // Only numbers and string-keyed maps: cannot fail (Null would show it if it ever did).
    serde_json::to_value(variant_rows(trades)).unwrap_or(Value::Null)
}

/// One line of a group table (the trade count unpadded, as the first release printed it).
fn row(k: &str, a: &AggRow) -> String {
    let (w, e, p) = (finite_or_zero(a.win_rate_pct), finite_or_zero(a.expectancy_pct), finite_or_zero(a.pnl));
    format!("  {:<16} {} {:>8.1} {:>12.4} {:>12.2}\n", k, a.trades, w, e, p)
}

/// The report as plain tables.
pub fn text(r: &Review) -> String {
    let mut s = format!("closed positions: {}\n", r.closed_positions);
    s.push_str(&row("TOTAL", &r.total));
    for (title, m) in [
        ("symbol", &r.by_symbol),
        ("UTC hour", &r.by_utc_hour),
        ("regime", &r.by_regime),
        ("exit reason", &r.by_exit_reason),
    ] {
        s.push_str(&format!(
            "\nby {title}:\n  {:<16} {:>8} {:>8} {:>12} {:>12}\n",
            "", "trades", "win %", "expect. %", "pnl USDT"
        ));
        for (k, a) in m {
            s.push_str(&row(k, a));
        }
    }
    s.push_str("\nfeature ranges with negative expectancy:\n");
    if r.negative_expectancy_feature_bins.is_empty() {
        s.push_str("  none\n");
    }
    for b in &r.negative_expectancy_feature_bins {
        s.push_str(&format!(
            "  {:<20} bin {} [{:.4} .. {:.4}] trades {} expectancy {:.4} %\n",
            b.feature,
            b.bin,
            finite_or_zero(b.from),
            finite_or_zero(b.to),
            b.trades,
            finite_or_zero(b.expectancy_pct)
        ));
    }
    if r.variants.len() > 1 {
        s.push_str(&variants_text(&r.variants));
    }
    s.push_str(&mfe_mae_text(&r.mfe_mae));
    s.push_str(&crate::report::execution::text(&r.execution, r.variants.len() > 1));
    if let Some(x) = &r.real_vs_paper {
        s.push_str(&crate::report::real::text(x));
    }
    if !r.crashed_runs.is_empty() {
        s.push_str(
            "\nruns killed before they ended (positions closed as Crashed at the run's last row, not counted above):\n",
        );
        for (id, c) in &r.crashed_runs {
            s.push_str(&format!(
                "  run {id}: {} position(s), pnl {:.2} USDT, last row at {} ms\n",
                c.positions,
                finite_or_zero(c.pnl),
                c.last_row_ms
            ));
        }
    }
    s
}

fn variants_text(v: &BTreeMap<String, VariantRow>) -> String {
    let mut s = String::from("\nA/B variants (95 % CI of the expectancy difference vs base):\n");
    for (k, x) in v {
        s.push_str(&row(k, &x.agg));
        if let Some(c) = &x.vs_base {
            s.push_str(&format!(
                "    diff {:+.4} %  CI [{:+.4}, {:+.4}]  {}\n",
                finite_or_zero(c.expectancy_diff_pct),
                finite_or_zero(c.ci95_pct[0]),
                finite_or_zero(c.ci95_pct[1]),
                if c.better {
                    "better"
                } else if c.significant {
                    "worse"
                } else {
                    "not significant"
                }
            ));
        }
    }
    s
}

/// A value the JSON object holds as `null` when not finite, shown as 0 in the tables (as before).
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn mfe_mae_text(m: &MfeMae) -> String {
    let mut s = format!(
        "\nMFE/MAE (p50) winners: MFE {} MAE {}; losers: MFE {} MAE {}\n",
        json_text(&m.winners.mfe_pct.p50),
        json_text(&m.winners.mae_pct.p50),
        json_text(&m.losers.mfe_pct.p50),
        json_text(&m.losers.mae_pct.p50)
    );
    s.push_str(&format!(
        "configured {}; share reaching {}\n",
        json_text(&m.configured),
        json_text(&m.share_reaching_pct)
    ));
    let suggested = match &m.suggested {
        Some(x) => json_text(x),
        None => "nothing to suggest (no closed positions)".into(),
    };
    s.push_str(&format!(
        "estimated expectancy now {:.4} %, suggested {suggested}\n",
        finite_or_zero(m.configured_estimate_expectancy_pct)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sym: &str, hour: u8, pnl_pct: f64, mfe: f64, mae: f64, f0: f64) -> Trade {
        Trade {
            symbol: sym.into(),
            hour,
            regime: "range_low".into(),
            exit_reason: if pnl_pct > 0.0 { "TP2".into() } else { "StopLoss".into() },
            pnl: pnl_pct * 10.0,
            pnl_pct,
            mfe,
            mae,
            mfe_first: pnl_pct > 0.0,
            features: [f0, 0.0, 0.0, 0.0, 0.0, 0.5],
            exit_ms: hour as i64 * 3_600_000,
            variant: "base".into(),
            run_id: 1,
            costs: PositionCosts::default(),
        }
    }

    #[test]
    fn groups_bins_and_fit() {
        let trades = vec![
            t("BTCUSDT", 1, 1.2, 1.3, 0.1, 1.0),
            t("BTCUSDT", 1, -0.4, 0.1, 0.4, 2.0),
            t("ETHUSDT", 2, -0.4, 0.05, 0.4, 3.0),
            t("ETHUSDT", 2, 1.2, 1.25, 0.2, 0.5),
        ];
        let d = Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.08 };
        let review = build(&trades, d, 2);
        let r = review.to_json();
        assert_eq!(r["closed_positions"], 4);
        assert_eq!(r["by_symbol"]["BTCUSDT"]["trades"], 2);
        assert!((r["total"]["expectancy_pct"].as_f64().unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(r["by_exit_reason"]["StopLoss"]["win_rate_pct"], 0.0);
        // Imbalance bin 2 (values 2.0, 3.0) holds both losers: negative expectancy.
        let neg = r["negative_expectancy_feature_bins"].as_array().unwrap();
        assert!(
            neg.iter()
                .any(|b| b["feature"] == "imbalance_ratio" && b["bin"] == 2 && b["from"] == 2.0 && b["to"] == 3.0)
        );
        let m = &r["mfe_mae"];
        assert_eq!(m["share_reaching_pct"]["tp2"], 50.0);
        // A tighter stop (0.3) with the 1.2 target keeps the winners (MAE 0.1, 0.2) and cuts the losers.
        let sug = &m["suggested"];
        assert!(sug["expectancy_pct"].as_f64().unwrap() > m["configured_estimate_expectancy_pct"].as_f64().unwrap());
        assert!(!text(&review).is_empty());
        // A/B: a variant whose trades are all winners is better than base with a CI excluding zero.
        let mut ab = trades.clone();
        for k in 0..6 {
            let mut t2 = t("BTCUSDT", 3, 1.0 + k as f64 * 0.01, 1.1, 0.1, 1.0);
            t2.variant = "tight".into();
            ab.push(t2);
        }
        let c = variant_comparison(&ab);
        assert_eq!(c["tight"]["trades"], 6);
        // Four noisy base trades: +0.625 % better on average, but the interval still holds zero.
        assert_eq!(c["tight"]["vs_base"]["significant"], false, "{c}");
        // Thirty steady losers against thirty steady winners: significant and better.
        let mut ab2 = vec![];
        for k in 0..30 {
            ab2.push(t("BTCUSDT", 3, -0.4 - k as f64 * 0.001, 0.1, 0.4, 1.0));
            let mut w = t("BTCUSDT", 3, 1.0 + k as f64 * 0.01, 1.1, 0.1, 1.0);
            w.variant = "tight".into();
            ab2.push(w);
        }
        let c = variant_comparison(&ab2);
        assert_eq!(c["tight"]["vs_base"]["better"], true, "{c}");
        let lo = c["tight"]["vs_base"]["ci95_pct"][0].as_f64().unwrap();
        assert!(lo > 0.0 && lo < c["tight"]["vs_base"]["expectancy_diff_pct"].as_f64().unwrap());
        assert_eq!(build(&ab, d, 2).closed_positions, 4, "the base report counts base trades only");
        let dir = std::env::temp_dir().join(format!("rusto-plot-{}", std::process::id()));
        let exits: Vec<i64> = trades.iter().map(|t| t.exit_ms).collect();
        crate::report::plot::write_all(&dir, &trades, &exits, d).unwrap();
        for f in ["equity.svg", "pnl_by_hour.svg", "mfe_mae.svg"] {
            let s = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{f}");
        }
        let heat = std::fs::read_to_string(dir.join("pnl_by_hour.svg")).unwrap();
        assert!(heat.contains("01h") && heat.contains("n=2"));
        assert_eq!(std::fs::read_to_string(dir.join("mfe_mae.svg")).unwrap().matches("<circle").count(), 4);
    }

    const JSON: &str = r##"{"by_exit_reason":{"StopLoss":{"expectancy_pct":-0.4,"pnl":-8.0,"trades":2,"win_rate_pct":0.0},"TP2":{"expectancy_pct":1.0333333333333332,"pnl":31.0,"trades":3,"win_rate_pct":100.0}},"by_regime":{"range_low":{"expectancy_pct":0.45999999999999996,"pnl":23.0,"trades":5,"win_rate_pct":60.0}},"by_symbol":{"BTCUSDT":{"expectancy_pct":0.39999999999999997,"pnl":8.0,"trades":2,"win_rate_pct":50.0},"ETHUSDT":{"expectancy_pct":0.5,"pnl":15.0,"trades":3,"win_rate_pct":66.66666666666667}},"by_utc_hour":{"01":{"expectancy_pct":0.39999999999999997,"pnl":8.0,"trades":2,"win_rate_pct":50.0},"02":{"expectancy_pct":0.39999999999999997,"pnl":8.0,"trades":2,"win_rate_pct":50.0},"05":{"expectancy_pct":0.7,"pnl":7.0,"trades":1,"win_rate_pct":100.0}},"closed_positions":5,"mfe_mae":{"configured":{"soft_stop_pct":0.15,"stop_pct":0.4,"tp1_pct":0.6,"tp2_pct":1.2},"configured_estimate_expectancy_pct":0.3960000109672547,"losers":{"mae_pct":{"p25":0.4,"p50":0.4,"p75":0.4,"p90":0.4},"mfe_pct":{"p25":0.05,"p50":0.1,"p75":0.1,"p90":0.1},"trades":2},"share_reaching_pct":{"soft_stop":80.0,"stop":40.0,"tp1":60.0,"tp2":40.0},"suggested":{"expectancy_pct":0.45999998569488526,"stop_pct":0.5,"target_pct":1.5},"winners":{"mae_pct":{"p25":0.2,"p50":0.2,"p75":0.3,"p90":0.3},"mfe_pct":{"p25":1.25,"p50":1.25,"p75":1.3,"p90":1.3},"trades":3}},"negative_expectancy_feature_bins":[{"bin":1,"expectancy_pct":-0.4,"feature":"volume_burst_ratio","from":-3.0,"to":-2.0,"trades":2,"win_rate_pct":0.0}],"total":{"expectancy_pct":0.45999999999999996,"pnl":23.0,"trades":5,"win_rate_pct":60.0},"variants":{"base":{"expectancy_pct":0.45999999999999996,"pnl":23.0,"trades":5,"win_rate_pct":60.0},"solo":{"expectancy_pct":0.3,"pnl":3.0,"trades":1,"vs_base":{"better":false,"ci95_pct":[-0.8710236001709084,0.5510236001709086],"expectancy_diff_pct":-0.15999999999999998,"significant":false},"win_rate_pct":100.0},"tight":{"expectancy_pct":0.4,"pnl":8.0,"trades":2,"vs_base":{"better":false,"ci95_pct":[-1.4342381744079153,1.3142381744079157],"expectancy_diff_pct":-0.05999999999999994,"significant":false},"win_rate_pct":50.0}}}"##;
    const TEXT: &str = r##"closed positions: 5
  TOTAL            5     60.0       0.4600        23.00

by symbol:
                     trades    win %    expect. %     pnl USDT
  BTCUSDT          2     50.0       0.4000         8.00
  ETHUSDT          3     66.7       0.5000        15.00

by UTC hour:
                     trades    win %    expect. %     pnl USDT
  01               2     50.0       0.4000         8.00
  02               2     50.0       0.4000         8.00
  05               1    100.0       0.7000         7.00

by regime:
                     trades    win %    expect. %     pnl USDT
  range_low        5     60.0       0.4600        23.00

by exit reason:
                     trades    win %    expect. %     pnl USDT
  StopLoss         2      0.0      -0.4000        -8.00
  TP2              3    100.0       1.0333        31.00

feature ranges with negative expectancy:
  volume_burst_ratio   bin 1 [-3.0000 .. -2.0000] trades 2 expectancy -0.4000 %

A/B variants (95 % CI of the expectancy difference vs base):
  base             5     60.0       0.4600        23.00
  solo             1    100.0       0.3000         3.00
    diff -0.1600 %  CI [-0.8710, +0.5510]  not significant
  tight            2     50.0       0.4000         8.00
    diff -0.0600 %  CI [-1.4342, +1.3142]  not significant

MFE/MAE (p50) winners: MFE 1.25 MAE 0.2; losers: MFE 0.1 MAE 0.4
configured {"soft_stop_pct":0.15,"stop_pct":0.4,"tp1_pct":0.6,"tp2_pct":1.2}; share reaching {"soft_stop":80.0,"stop":40.0,"tp1":60.0,"tp2":40.0}
estimated expectancy now 0.3960 %, suggested {"expectancy_pct":0.45999998569488526,"stop_pct":0.5,"target_pct":1.5}
"##;
    const EMPTY_JSON: &str = r##"{"by_exit_reason":{},"by_regime":{},"by_symbol":{},"by_utc_hour":{},"closed_positions":0,"mfe_mae":{"configured":{"soft_stop_pct":0.15,"stop_pct":0.4,"tp1_pct":0.6,"tp2_pct":1.2},"configured_estimate_expectancy_pct":0.0,"losers":{"mae_pct":{"p25":0.0,"p50":0.0,"p75":0.0,"p90":0.0},"mfe_pct":{"p25":0.0,"p50":0.0,"p75":0.0,"p90":0.0},"trades":0},"share_reaching_pct":{"soft_stop":0.0,"stop":0.0,"tp1":0.0,"tp2":0.0},"suggested":null,"winners":{"mae_pct":{"p25":0.0,"p50":0.0,"p75":0.0,"p90":0.0},"mfe_pct":{"p25":0.0,"p50":0.0,"p75":0.0,"p90":0.0},"trades":0}},"negative_expectancy_feature_bins":[],"total":{"expectancy_pct":0.0,"pnl":0.0,"trades":0,"win_rate_pct":0.0},"variants":{}}"##;
    const EMPTY_TEXT: &str = r##"closed positions: 0
  TOTAL            0      0.0       0.0000         0.00

by symbol:
                     trades    win %    expect. %     pnl USDT

by UTC hour:
                     trades    win %    expect. %     pnl USDT

by regime:
                     trades    win %    expect. %     pnl USDT

by exit reason:
                     trades    win %    expect. %     pnl USDT

feature ranges with negative expectancy:
  none

MFE/MAE (p50) winners: MFE 0.0 MAE 0.0; losers: MFE 0.0 MAE 0.0
configured {"soft_stop_pct":0.15,"stop_pct":0.4,"tp1_pct":0.6,"tp2_pct":1.2}; share reaching {"soft_stop":0.0,"stop":0.0,"tp1":0.0,"tp2":0.0}
estimated expectancy now 0.0000 %, suggested nothing to suggest (no closed positions)
"##;
    /// The execution-cost section of the text above (issue 10; these trades carry no costs).
    const EXEC_TEXT: &str = r##"
execution costs (base trader; entry slippage expected vs realised; stops: stop-market exits, slippage vs their trigger, + = worse; TP fills at their limit / all; bps; - = not recorded):
                     pos  fills  fees USDT    funding payments  maker  taker  exp bps real bps  stops slip bps    worst  TP@limit
  TOTAL                5      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  by symbol:
  BTCUSDT              2      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  ETHUSDT              3      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  by exit reason:
  StopLoss             2      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  TP2                  3      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  by trader (all):
  base                 5      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  solo                 1      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
  tight                2      0       0.00     0.0000        0      0      0     0.00     0.00      0        -        -       0/0
"##;
    const EMPTY_EXEC_TEXT: &str = r##"
execution costs (base trader; entry slippage expected vs realised; stops: stop-market exits, slippage vs their trigger, + = worse; TP fills at their limit / all; bps; - = not recorded):
                     pos  fills  fees USDT    funding payments  maker  taker  exp bps real bps  stops slip bps    worst  TP@limit
  TOTAL                0      0       0.00     0.0000        0      0      0        -        -      0        -        -       0/0
  by symbol:
  by exit reason:
"##;
    const EMPTY_EXEC_JSON: &str = r##"{"by_exit_reason":{},"by_symbol":{},"by_variant":{},"total":{"expected_entry_slippage_bps":null,"fees":0.0,"fills":0,"funding":0.0,"funding_payments":0,"maker_fills":0,"positions":0,"realized_entry_slippage_bps":null,"stop_exit_slippage_bps":null,"stop_exit_slippage_worst_bps":null,"stop_exits":0,"taker_fills":0,"tp_fills":0,"tp_fills_at_limit":0}}"##;
    /// The `--json` and text output, pinned as the `serde_json::Value` version printed them (issue 9), with the
    /// execution-cost section added after the MFE/MAE fit (issue 10).
    #[test]
    fn json_and_text_are_unchanged() {
        let mk = |sym: &str, hour: u8, pnl_pct: f64, mfe: f64, mae: f64, f0: f64, v: &str| {
            let mut x = t(sym, hour, pnl_pct, mfe, mae, f0);
            (x.features[1], x.features[2], x.variant) = (0.1 * f0, -f0, v.into());
            x
        };
        let trades = vec![
            mk("BTCUSDT", 1, 1.2, 1.3, 0.1, 1.0, "base"),
            mk("BTCUSDT", 1, -0.4, 0.1, 0.4, 2.0, "base"),
            mk("ETHUSDT", 2, -0.4, 0.05, 0.4, 3.0, "base"),
            mk("ETHUSDT", 2, 1.2, 1.25, 0.2, 0.5, "base"),
            mk("ETHUSDT", 5, 0.7, 0.9, 0.3, 0.7, "base"),
            mk("BTCUSDT", 3, 1.0, 1.1, 0.1, 1.0, "tight"),
            mk("BTCUSDT", 3, -0.2, 0.1, 0.3, 1.0, "tight"),
            mk("BTCUSDT", 3, 0.3, 0.4, 0.1, 1.0, "solo"),
        ];
        let d = Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.08 };
        let r = build(&trades, d, 2);
        let e = build(&[], d, 2);
        for (x, want) in [(&r, JSON), (&e, EMPTY_JSON)] {
            let mut v = x.to_json();
            v.as_object_mut().unwrap().remove("execution").unwrap();
            assert_eq!(v.to_string(), want, "everything but the execution section (issue 10) as before");
        }
        assert_eq!(e.to_json()["execution"].to_string(), EMPTY_EXEC_JSON);
        assert_eq!(text(&r), format!("{TEXT}{EXEC_TEXT}"));
        assert_eq!(text(&e), format!("{EMPTY_TEXT}{EMPTY_EXEC_TEXT}"));
    }
}

//! The persistence stage: the only thread that writes files (and, from the execution issue on, SQLite).
//!
//! It drains the compute → persist ring, keeps the symbol table announced by [`Record::Symbol`], writes closed bars
//! and signals to their CSVs when configured, and commits database rows in batches. Writes are buffered and flushed
//! when the ring is drained. Nothing is lost without a counter:
//! - a CSV write error stops that CSV (later lines counted in `csv_lines_lost`) and is the run's error, never a
//!   panic; records are still counted and the symbol table kept;
//! - a failed commit keeps its rows (up to `max_pending_rows`, the oldest dropped past it: `db_rows_dropped`) and
//!   retries with back-off; a row the database refuses on its own is dropped alone (`db_rows_rejected`);
//! - a control record that cannot be written is counted (`control_dropped`).

use std::io::Write;
use std::path::PathBuf;

use crate::handoff::handover::Handover;
use crate::handoff::ring::Consumer;
use crate::persist::db::{Db, DbError, Names, is_db_record};
use crate::types::decimal::Scale;
use crate::types::latency::{Stage, StageFigures};
use crate::types::record::{Bar, Record, Signal};
use crate::types::symbols::SymbolName;

/// Errors of the persistence stage.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The database could not be opened or written.
    #[error(transparent)]
    Db(#[from] crate::persist::db::DbError),
    /// Creating or writing the signals CSV failed.
    #[error("signals csv {path}: {cause}")]
    SignalsCsv {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// Creating or writing the bars CSV failed.
    #[error("bars csv {path}: {cause}")]
    BarsCsv {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
}

/// Counters of the persistence stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersistStats {
    /// Records received.
    pub records: u64,
    /// Bars received.
    pub bars: u64,
    /// Bars written to the CSV.
    pub bars_written: u64,
    /// Signals received.
    pub signals: u64,
    /// Tuning runs received.
    pub tuning_runs: u64,
    /// Positions opened.
    pub positions_opened: u64,
    /// Positions closed.
    pub positions_closed: u64,
    /// Fills.
    pub fills: u64,
    /// Order reports of the real account received (testnet and live).
    pub order_reports: u64,
    /// Database rows committed.
    pub db_rows: u64,
    /// Database commits.
    pub db_commits: u64,
    /// Failed database writes (each retried).
    pub db_write_errors: u64,
    /// Rows dropped because the database refused writes for longer than the buffer holds (must stay 0).
    pub db_rows_dropped: u64,
    /// Rows the database refused on their own (a constraint, a position it does not hold): dropped so that the rest
    /// of their batch is written (must stay 0).
    pub db_rows_rejected: u64,
    /// Control-thread records (selections, link health) that could not be written (must stay 0).
    pub control_dropped: u64,
    /// CSV lines not written because their CSV failed earlier (the run reports that first error).
    pub csv_lines_lost: u64,
    /// Runs left `running` by a killed process, marked `crashed` when the database was opened (each logged).
    pub crashed_runs_recovered: u64,
}

/// The CSV header of `--bars-csv`.
pub(crate) const BARS_CSV_HEADER: &str = "symbol,first_ts_ms,last_ts_ms,open,high,low,close,volume,buy_volume,sell_volume,trades,range_ticks,first_trade_id,last_trade_id";

/// The CSV header of `--signals-csv` (prices in quote units; zone level at its bin centre).
pub(crate) const SIGNALS_CSV_HEADER: &str = "symbol,ts_ms,side,price,level,burst_threshold,imbalance_ratio,cvd_1min_change,volume_burst_ratio,bar_range_pct,zone_distance_pct,near_val,near_vah,near_hvn,regime,confidence";

/// Which CSV output (for its error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvKind {
    Bars,
    Signals,
}

/// A CSV output. After a write error it writes nothing more (the error is reported, later lines counted).
struct CsvOut {
    kind: CsvKind,
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    failed: bool,
}

impl CsvOut {
    fn error(kind: CsvKind, path: PathBuf, source: std::io::Error) -> PersistError {
        match kind {
            CsvKind::Bars => PersistError::BarsCsv { path, cause: source },
            CsvKind::Signals => PersistError::SignalsCsv { path, cause: source },
        }
    }

    /// Creates the file and writes its header.
    fn create(kind: CsvKind, path: PathBuf, header: &str) -> Result<Self, PersistError> {
        let f = std::fs::File::create(&path).map_err(|e| Self::error(kind, path.clone(), e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        writeln!(w, "{header}").map_err(|e| Self::error(kind, path.clone(), e))?;
        Ok(CsvOut { kind, path, w, failed: false })
    }

    fn check(&mut self, r: std::io::Result<()>) -> Result<(), PersistError> {
        r.map_err(|e| {
            self.failed = true;
            Self::error(self.kind, self.path.clone(), e)
        })
    }

    /// Writes a line; false (and `lost` counted) when the CSV failed before or fails now.
    fn write(&mut self, line: &str, lost: &mut u64) -> Result<bool, PersistError> {
        if self.failed {
            *lost += 1;
            return Ok(false);
        }
        let r = self.w.write_all(line.as_bytes());
        if r.is_err() {
            *lost += 1;
        }
        self.check(r).map(|()| true)
    }

    fn flush(&mut self) -> Result<(), PersistError> {
        if self.failed {
            return Ok(());
        }
        let r = self.w.flush();
        self.check(r)
    }
}

/// Empty polls of the ring spent spinning before the persistence thread sleeps.
const IDLE_SPINS: u32 = 64;
/// The first sleep of an idle persistence thread, µs.
const IDLE_SLEEP_MIN_US: u64 = 200;
/// The longest sleep of an idle persistence thread, µs: the most a record waits in the ring (or the compute
/// thread's overflow buffer, which never blocks compute) before this thread looks again. A commit is therefore
/// at most this much later than at a busy thread, on top of `batch_ms`.
pub(crate) const IDLE_SLEEP_MAX_US: u64 = 2_000;

/// How long the persistence thread sleeps after `idle` empty polls in a row (0: spin): spins first, then sleeps
/// that double from [`IDLE_SLEEP_MIN_US`] to [`IDLE_SLEEP_MAX_US`]; any record resets `idle`.
fn idle_sleep_us(idle: u32) -> u64 {
    if idle < IDLE_SPINS {
        return 0;
    }
    // 200, 400, 800, 1600, then 2000 µs (the shift is bounded so that it cannot overflow).
    let doublings = (idle - IDLE_SPINS).min(16);
    (IDLE_SLEEP_MIN_US << doublings).min(IDLE_SLEEP_MAX_US)
}

/// Persistence stage state.
pub(crate) struct Persist {
    csv: Option<CsvOut>,
    signals_csv: Option<CsvOut>,
    line: String,
    db: Option<Db>,
    control: Option<std::sync::Arc<crossbeam_queue::ArrayQueue<crate::persist::db::ControlRecord>>>,
    names: Names,
    batch: Vec<Record>,
    batch_cfg: BatchConfig,
    /// Commit latency (ns).
    pub commit_stage: Stage,
    /// Counters.
    pub stats: PersistStats,
    /// Periodic copies of the counters and the commit stage for the metrics endpoint, their interval, the next due.
    metrics: Option<(std::sync::Arc<Handover<PersistFigures>>, std::time::Duration, std::time::Instant)>,
}

/// The persistence thread's periodic copy for the metrics endpoint (plain numbers).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PersistFigures {
    /// Counters.
    pub stats: PersistStats,
    /// Commit latency.
    pub commit: StageFigures,
}

/// When the persistence thread commits, and how much it holds on write failures.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Commit after this many rows.
    pub batch_rows: usize,
    /// Commit at least this often while rows wait, ms.
    pub batch_ms: u64,
    /// Rows kept in memory while the database refuses writes; past it the oldest are dropped (counted, reported).
    pub max_pending_rows: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { batch_rows: 1000, batch_ms: 50, max_pending_rows: 1_000_000 }
    }
}

// Bounds of `[persist]`.
crate::bounds!(BatchConfig as _c {
    batch_rows: [1, 1_000_000] "1 to 1000000 rows";
    batch_ms: [1, 60_000] "1 to 60000 ms";
    max_pending_rows: [1_000, 100_000_000] "1000 to 100000000 rows";
});

impl Persist {
    /// Opens the outputs (before any trading starts, so a bad path is an error up front).
    pub(crate) fn open(
        bars_csv: Option<PathBuf>,
        signals_csv: Option<PathBuf>,
        db: Option<Db>,
        batch_cfg: BatchConfig,
    ) -> Result<Self, PersistError> {
        let signals_csv = signals_csv.map(|p| CsvOut::create(CsvKind::Signals, p, SIGNALS_CSV_HEADER)).transpose()?;
        let csv = bars_csv.map(|p| CsvOut::create(CsvKind::Bars, p, BARS_CSV_HEADER)).transpose()?;
        let crashed_runs_recovered = db.as_ref().map_or(0, |d| d.recovered().len() as u64);
        Ok(Persist {
            csv,
            signals_csv,
            line: String::with_capacity(256),
            db,
            control: None,
            names: Names::default(),
            batch: Vec::with_capacity(batch_cfg.batch_rows.max(1) * 2),
            batch_cfg,
            commit_stage: Stage::new("persist_commit"),
            stats: PersistStats { crashed_runs_recovered, ..PersistStats::default() },
            metrics: None,
        })
    }

    /// Attaches the control thread's queue of control records.
    pub(crate) fn with_control_queue(
        mut self,
        q: std::sync::Arc<crossbeam_queue::ArrayQueue<crate::persist::db::ControlRecord>>,
    ) -> Self {
        self.control = Some(q);
        self
    }

    /// Hands a copy of the counters to `to` every `every` (between batches; never blocks: a copy with no free
    /// buffer is skipped and counted by the hand-over).
    pub(crate) fn with_metrics(
        mut self,
        to: std::sync::Arc<Handover<PersistFigures>>,
        every: std::time::Duration,
    ) -> Self {
        self.metrics = Some((to, every, std::time::Instant::now()));
        self
    }

    fn publish_metrics(&mut self) {
        let Some((to, every, next)) = &mut self.metrics else { return };
        let now = std::time::Instant::now();
        if now < *next {
            return;
        }
        *next = now + *every;
        let (stats, commit) = (self.stats, StageFigures::of("persist_commit", &self.commit_stage.hist));
        let _ = to.publish(|f| *f = PersistFigures { stats, commit });
    }

    fn drain_control(&mut self) {
        let (Some(q), Some(db)) = (&self.control, &mut self.db) else { return };
        while let Some(r) = q.pop() {
            if let Err(e) = db.write_control(&r) {
                self.stats.db_write_errors += 1;
                self.stats.control_dropped += 1;
                log::error!("database: {e} (selection/health record not stored, counted)");
            }
        }
    }

    /// The database run id, when a database is attached.
    pub(crate) fn run_id(&self) -> Option<i64> {
        self.db.as_ref().map(|d| d.run_id)
    }

    /// Handles one record: counters and the symbol table always, CSV lines while their file takes them.
    pub(crate) fn on_record(&mut self, r: &Record) -> Result<(), PersistError> {
        self.stats.records += 1;
        match *r {
            Record::Symbol { id, name, price, qty } => self.names.set(id, name, price, qty),
            Record::Signal { symbol, ref signal } => {
                self.stats.signals += 1;
                if let Some(out) = &mut self.signals_csv {
                    let (name, ps, _) = self.names.scales(symbol);
                    // Formatting into a String cannot fail (fmt::Write for String is infallible).
                    let _ = signal_line(&mut self.line, name, ps, signal);
                    out.write(&self.line, &mut self.stats.csv_lines_lost)?;
                }
            }
            Record::Tuning { .. } => self.stats.tuning_runs += 1,
            Record::Opened { .. } => self.stats.positions_opened += 1,
            Record::Closed { .. } => self.stats.positions_closed += 1,
            Record::Fill { .. } => self.stats.fills += 1,
            Record::Exec { .. } => self.stats.order_reports += 1,
            Record::HourPnl { .. }
            | Record::SnapshotRequest { .. }
            | Record::StopMoved { .. }
            | Record::DailyLimitHit { .. }
            | Record::EntriesHalted { .. } => {}
            Record::Bar { symbol, ref bar } => {
                self.stats.bars += 1;
                if let Some(out) = &mut self.csv {
                    // Formatting into a String cannot fail (fmt::Write for String is infallible).
                    let _ = bar_line(&mut self.line, self.names.scales(symbol), bar);
                    if out.write(&self.line, &mut self.stats.csv_lines_lost)? {
                        self.stats.bars_written += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Flushes buffered output (both CSVs: a failed flush is an error, never lost in a drop).
    pub(crate) fn flush(&mut self) -> Result<(), PersistError> {
        // Both are flushed even when the first fails, so neither is left to a drop that would lose its error.
        let bars = self.csv.as_mut().map_or(Ok(()), CsvOut::flush);
        let signals = self.signals_csv.as_mut().map_or(Ok(()), CsvOut::flush);
        bars.and(signals)
    }

    /// Commits the waiting rows in one transaction. On failure the rows stay (bounded) for the next attempt; a row
    /// the database refuses on its own is dropped (counted) so that it cannot block the rows behind it.
    fn commit(&mut self) -> bool {
        let Some(db) = &mut self.db else {
            self.batch.clear();
            return true;
        };
        if self.batch.is_empty() {
            return true;
        }
        let t0 = crate::types::clock::now_ns();
        match db.write_batch(&self.names, &self.batch) {
            Ok(()) => {
                self.commit_stage.record(crate::types::clock::now_ns().saturating_sub(t0));
                self.stats.db_rows += self.batch.len() as u64;
                self.stats.db_commits += 1;
                self.batch.clear();
                true
            }
            Err(DbError::Row(..)) => self.commit_row_by_row(),
            Err(e) => {
                self.keep_for_retry(&e);
                false
            }
        }
    }

    /// Writes the batch one row per transaction: refused rows are dropped and counted, any other error stops and
    /// keeps the rest for the next attempt.
    fn commit_row_by_row(&mut self) -> bool {
        let Some(db) = &mut self.db else { return true };
        let mut done = 0;
        let mut stopped = None;
        for r in &self.batch {
            match db.write_batch(&self.names, std::slice::from_ref(r)) {
                Ok(()) => {
                    self.stats.db_rows += 1;
                    self.stats.db_commits += 1;
                }
                Err(e @ DbError::Row(..)) => {
                    self.stats.db_rows_rejected += 1;
                    if self.stats.db_rows_rejected.is_power_of_two() {
                        log::error!("{e}: row dropped (counted, {} so far)", self.stats.db_rows_rejected);
                    }
                }
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
            done += 1;
        }
        self.batch.drain(..done);
        match stopped {
            Some(e) => {
                self.keep_for_retry(&e);
                false
            }
            None => true,
        }
    }

    /// Counts a failed commit and bounds the rows kept for the retry (the oldest go first, counted).
    fn keep_for_retry(&mut self, e: &DbError) {
        self.stats.db_write_errors += 1;
        if self.stats.db_write_errors == 1 || self.stats.db_write_errors.is_power_of_two() {
            log::error!(
                "database write failed ({e}); {} rows kept and retried (failure #{})",
                self.batch.len(),
                self.stats.db_write_errors
            );
        }
        let over = self.batch.len().saturating_sub(self.batch_cfg.max_pending_rows);
        if over > 0 {
            self.batch.drain(..over);
            self.stats.db_rows_dropped += over as u64;
            log::error!("database unwritable for too long: {over} oldest rows dropped (counted)");
        }
    }

    /// Runs the stage until the producer is gone and the ring is empty; commits on drain, every `batch_rows`
    /// rows or every `batch_ms`, whichever comes first.
    pub(crate) fn run(mut self, mut rx: Consumer<Record>) -> (Self, Result<(), PersistError>) {
        let mut idle = 0u32;
        let mut err = Ok(());
        let mut pacing = CommitPacing::default();
        loop {
            let mut n = 0;
            while let Some(r) = rx.pop() {
                n += 1;
                // Every record is counted and the symbol table kept even after an output failed (the first error
                // is the one reported).
                if let Err(e) = self.on_record(&r)
                    && err.is_ok()
                {
                    err = Err(e);
                }
                if self.db.is_some() && is_db_record(&r) {
                    self.batch.push(r);
                    pacing.oldest.get_or_insert_with(std::time::Instant::now);
                }
                if n >= 4096 || self.batch.len() >= self.batch_cfg.batch_rows {
                    break;
                }
            }
            let drained = rx.available() == 0;
            self.maybe_commit(&mut pacing, drained);
            self.publish_metrics();
            if n == 0 {
                self.drain_control();
                if rx.is_abandoned() && rx.available() == 0 {
                    break;
                }
                if let Err(e) = self.flush()
                    && err.is_ok()
                {
                    err = Err(e);
                }
                idle = idle.saturating_add(1);
                match idle_sleep_us(idle) {
                    0 => std::hint::spin_loop(),
                    us => std::thread::sleep(std::time::Duration::from_micros(us)),
                }
            } else {
                idle = 0;
            }
        }
        let end = self.finish();
        if err.is_ok() {
            err = end;
        }
        (self, err)
    }

    /// Commits when rows are due (ring drained, `batch_rows` reached or `batch_ms` elapsed) and no retry waits.
    fn maybe_commit(&mut self, p: &mut CommitPacing, drained: bool) {
        let due = !self.batch.is_empty()
            && (drained
                || self.batch.len() >= self.batch_cfg.batch_rows
                || p.oldest.is_some_and(|t| t.elapsed().as_millis() as u64 >= self.batch_cfg.batch_ms));
        if due && p.retry_at.is_none_or(|t| std::time::Instant::now() >= t) {
            if self.commit() {
                *p = CommitPacing::default();
            } else {
                p.retry_at = Some(std::time::Instant::now() + p.backoff);
                p.backoff = (p.backoff * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }

    /// The end of the run: control records, a final commit (a few retries), the run row's status, the CSV flush.
    fn finish(&mut self) -> Result<(), PersistError> {
        self.drain_control();
        for attempt in 0..5 {
            if self.commit() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
        }
        if !self.batch.is_empty() {
            self.stats.db_rows_dropped += self.batch.len() as u64;
            log::error!("{} rows could not be written to the database at exit", self.batch.len());
            self.batch.clear();
        }
        let mut result = Ok(());
        if let Some(db) = &mut self.db {
            let lost = self.stats.db_rows_dropped + self.stats.db_rows_rejected + self.stats.control_dropped;
            let status = if lost == 0 { "finished" } else { "finished_with_lost_rows" };
            result = db.end_run(status).map_err(PersistError::from);
        }
        let flushed = self.flush();
        result.and(flushed)
    }
}

/// A signals CSV line (formatting into a `String` cannot fail: `fmt::Write for String` is infallible).
fn signal_line(l: &mut String, name: SymbolName, ps: Scale, signal: &Signal) -> std::fmt::Result {
    use std::fmt::Write as _;
    l.clear();
    let f = &signal.features;
    write!(l, "{},{},{},", name, signal.ts_ns / 1_000_000, signal.side.name())?;
    ps.format(signal.price, l);
    writeln!(
        l,
        ",{:.6},{:.4},{:.6},{:.6},{:.4},{:.6},{:.6},{},{},{},{},{:.4}",
        ps.to_f64(1) * signal.level,
        signal.burst_threshold,
        f.imbalance_ratio,
        f.cvd_1min_change,
        f.volume_burst_ratio,
        f.bar_range_pct,
        f.zone_distance_pct,
        f.near_val as u8,
        f.near_vah as u8,
        f.near_hvn as u8,
        f.regime.name(),
        f.confidence
    )
}

/// A bars CSV line (formatting into a `String` cannot fail).
fn bar_line(l: &mut String, (name, ps, qs): (SymbolName, Scale, Scale), bar: &Bar) -> std::fmt::Result {
    use std::fmt::Write as _;
    l.clear();
    write!(l, "{},{},{},", name, bar.first_ts_ns / 1_000_000, bar.last_ts_ns / 1_000_000)?;
    for px in [bar.open, bar.high, bar.low, bar.close] {
        ps.format(px, l);
        l.push(',');
    }
    for q in [bar.volume, bar.buy_volume, bar.sell_volume] {
        qs.format(q, l);
        l.push(',');
    }
    writeln!(l, "{},{},{},{}", bar.trades, bar.range_ticks, bar.first_trade_id, bar.last_trade_id)
}

/// When the next commit may run: the oldest waiting row, and the back-off after a failed commit.
struct CommitPacing {
    oldest: Option<std::time::Instant>,
    retry_at: Option<std::time::Instant>,
    backoff: std::time::Duration,
}

impl Default for CommitPacing {
    fn default() -> Self {
        CommitPacing { oldest: None, retry_at: None, backoff: std::time::Duration::from_millis(10) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::db::ControlRecord;
    use crate::types::record::{FillKind, Liquidity};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rusto-writer-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        let _ = std::fs::remove_file(&p); // Fresh each run; absent is fine.
        p
    }

    fn db(name: &str) -> Db {
        let mut db = Db::open(&tmp(name)).unwrap();
        db.begin_run("test", "h", "replay", "").unwrap();
        db
    }

    fn symbol(id: u16, name: &str) -> Record {
        let (price, qty) = (Scale::decimals(2), Scale::decimals(3));
        Record::Symbol { id, name: SymbolName::new(name.as_bytes()).unwrap(), price, qty }
    }

    fn hour_pnl(symbol: u16) -> Record {
        Record::HourPnl { symbol, variant: 0, hour: 3, pnl_pct: 0.25 }
    }

    fn count(p: &Persist, sql: &str) -> i64 {
        p.db.as_ref().unwrap().conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A fill for a position the database does not hold used to fail its batch on every retry, so no row behind
    /// it was ever written: now it is dropped and counted, and the rest of the batch is committed.
    #[test]
    fn a_refused_row_does_not_block_the_rows_behind_it() {
        let mut p = Persist::open(None, None, Some(db("refused.db")), BatchConfig::default()).unwrap();
        p.on_record(&symbol(0, "BTCUSDT")).unwrap();
        let orphan = Record::Fill {
            symbol: 0,
            variant: 0,
            seq: 99,
            ts_ns: 1,
            decision_ts_ns: 1,
            kind: FillKind::Entry,
            liquidity: Liquidity::Taker,
            trigger_px: None,
            latency_ns: 0,
            buy: true,
            qty: 1,
            px: 1.0,
            fee: 0.0,
            pnl: 0.0,
        };
        p.batch.extend([orphan, hour_pnl(0), hour_pnl(0)]);
        assert!(p.commit(), "the refused row is dropped, the batch goes through");
        assert_eq!(count(&p, "SELECT count(*) FROM hour_expectancy"), 2);
        assert_eq!((p.stats.db_rows, p.stats.db_rows_rejected, p.stats.db_rows_dropped), (2, 1, 0));
        assert!(p.batch.is_empty());
    }

    /// A bars CSV that fails mid-run used to stop all record handling, so symbols announced afterwards were never
    /// learnt and their database rows were written without a name: the symbol table and counters now go on.
    #[test]
    fn a_failed_csv_does_not_stop_the_symbol_table_or_the_counters() {
        if !std::path::Path::new("/dev/full").exists() {
            return; // Needs Linux's always-full device.
        }
        let p = Persist::open(Some("/dev/full".into()), None, Some(db("csv.db")), BatchConfig::default()).unwrap();
        let (mut tx, rx) = crate::handoff::ring::ring::<Record>(8192);
        let bar = Record::Bar { symbol: 0, bar: Bar::default() };
        tx.push(symbol(0, "BTCUSDT")).unwrap();
        for _ in 0..4000 {
            tx.push(bar).unwrap(); // More than the 64 KiB buffer: the CSV fails on the way.
        }
        for r in [symbol(1, "ETHUSDT"), hour_pnl(1)] {
            tx.push(r).unwrap();
        }
        drop(tx);
        let (p, res) = p.run(rx);
        assert!(matches!(res, Err(PersistError::BarsCsv { .. })), "{res:?}");
        assert_eq!(count(&p, "SELECT count(*) FROM hour_expectancy WHERE symbol = 'ETHUSDT'"), 1);
        assert_eq!((p.stats.records, p.stats.bars), (4003, 4000));
        assert!(p.stats.csv_lines_lost > 0);
        assert_eq!(p.stats.bars, p.stats.bars_written + p.stats.csv_lines_lost);
    }

    /// The idle back-off spins first, then sleeps 200 µs doubling to its 2 ms bound and stays there: a record
    /// waits at most 2 ms in the ring while the thread is idle.
    #[test]
    fn the_idle_back_off_spins_then_doubles_to_its_bound() {
        let sleeps: Vec<u64> = (0..IDLE_SPINS + 8).map(idle_sleep_us).collect();
        assert!(sleeps[..IDLE_SPINS as usize].iter().all(|&s| s == 0), "spins first");
        assert_eq!(&sleeps[IDLE_SPINS as usize..], &[200, 400, 800, 1600, 2000, 2000, 2000, 2000]);
        assert_eq!(idle_sleep_us(u32::MAX), IDLE_SLEEP_MAX_US, "bounded however long it is idle");
        assert!((0..100_000).map(idle_sleep_us).all(|s| s <= IDLE_SLEEP_MAX_US));
    }

    /// A control record the database refuses is counted (it was only an error count before).
    #[test]
    fn a_refused_control_record_is_counted() {
        let db = db("control.db");
        db.conn().execute_batch("DROP TABLE link_health").unwrap();
        let q = std::sync::Arc::new(crossbeam_queue::ArrayQueue::new(4));
        q.push(ControlRecord::Health { ts_ms: 1, rtt_ms: 2.0, offset_ms: 0.5 }).unwrap();
        let mut p = Persist::open(None, None, Some(db), BatchConfig::default()).unwrap().with_control_queue(q);
        p.drain_control();
        assert_eq!((p.stats.control_dropped, p.stats.db_write_errors), (1, 1));
    }
}

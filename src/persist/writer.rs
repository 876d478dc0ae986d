//! The persistence stage: the only thread that writes files (and, from the execution issue on, SQLite).
//!
//! It drains the compute → persist ring, keeps the symbol table announced by [`Record::Symbol`], and writes
//! closed bars to the bars CSV when one is configured. Writes are buffered and flushed when the ring is drained;
//! an I/O error stops the writer with a clear error (reported at the end), never a panic.

use std::io::Write;
use std::path::PathBuf;

use crate::handoff::ring::Consumer;
use crate::persist::db::{Db, Names, is_db_record};
use crate::types::decimal::Scale;
use crate::types::latency::Stage;
use crate::types::record::Record;
use crate::types::symbols::SymbolName;

/// Errors of the persistence stage.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The database could not be opened or written.
    #[error(transparent)]
    Db(#[from] crate::persist::db::DbError),
    /// Creating or writing the signals CSV failed.
    #[error("signals csv {path}: {source}")]
    SignalsCsv {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Creating or writing the bars CSV failed.
    #[error("bars csv {path}: {source}")]
    BarsCsv {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Counters of the persistence stage.
#[derive(Debug, Clone, Default)]
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
    /// Database rows committed.
    pub db_rows: u64,
    /// Database commits.
    pub db_commits: u64,
    /// Failed database writes (each retried).
    pub db_write_errors: u64,
    /// Rows dropped because the database refused writes for longer than the buffer holds (must stay 0).
    pub db_rows_dropped: u64,
}

/// The CSV header of `--bars-csv`.
pub const BARS_CSV_HEADER: &str = "symbol,first_ts_ms,last_ts_ms,open,high,low,close,volume,buy_volume,sell_volume,trades,range_ticks,first_trade_id,last_trade_id";

/// The CSV header of `--signals-csv` (prices in quote units; zone level at its bin centre).
pub const SIGNALS_CSV_HEADER: &str = "symbol,ts_ms,side,price,level,burst_threshold,imbalance_ratio,cvd_1min_change,volume_burst_ratio,bar_range_pct,zone_distance_pct,near_val,near_vah,near_hvn,regime,confidence";

/// Persistence stage state.
pub struct Persist {
    names: Vec<(SymbolName, Scale, Scale)>,
    csv: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    signals_csv: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    line: String,
    db: Option<Db>,
    control: Option<std::sync::Arc<crossbeam_queue::ArrayQueue<crate::persist::db::ControlRecord>>>,
    db_names: Names,
    batch: Vec<Record>,
    batch_cfg: BatchConfig,
    /// Commit latency (ns).
    pub commit_stage: Stage,
    /// Counters.
    pub stats: PersistStats,
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
    pub fn open(
        bars_csv: Option<PathBuf>,
        signals_csv: Option<PathBuf>,
        db: Option<Db>,
        batch_cfg: BatchConfig,
    ) -> Result<Self, PersistError> {
        let signals_csv = match signals_csv {
            Some(path) => {
                let f = std::fs::File::create(&path)
                    .map_err(|source| PersistError::SignalsCsv { path: path.clone(), source })?;
                let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
                writeln!(w, "{SIGNALS_CSV_HEADER}")
                    .map_err(|source| PersistError::SignalsCsv { path: path.clone(), source })?;
                Some((path, w))
            }
            None => None,
        };
        let csv = match bars_csv {
            Some(path) => {
                let f = std::fs::File::create(&path)
                    .map_err(|source| PersistError::BarsCsv { path: path.clone(), source })?;
                let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
                writeln!(w, "{BARS_CSV_HEADER}")
                    .map_err(|source| PersistError::BarsCsv { path: path.clone(), source })?;
                Some((path, w))
            }
            None => None,
        };
        Ok(Persist {
            names: Vec::new(),
            csv,
            signals_csv,
            line: String::with_capacity(256),
            db,
            control: None,
            db_names: Names::default(),
            batch: Vec::with_capacity(batch_cfg.batch_rows.max(1) * 2),
            batch_cfg,
            commit_stage: Stage::new("persist_commit"),
            stats: PersistStats::default(),
        })
    }

    /// Attaches the control thread's queue of control records.
    pub fn with_control_queue(
        mut self,
        q: std::sync::Arc<crossbeam_queue::ArrayQueue<crate::persist::db::ControlRecord>>,
    ) -> Self {
        self.control = Some(q);
        self
    }

    fn drain_control(&mut self) {
        let (Some(q), Some(db)) = (&self.control, &mut self.db) else { return };
        while let Some(r) = q.pop() {
            if let Err(e) = db.write_control(&r) {
                self.stats.db_write_errors += 1;
                eprintln!("error: database: {e} (selection/health record not stored)");
            }
        }
    }

    /// The database run id, when a database is attached.
    pub fn run_id(&self) -> Option<i64> {
        self.db.as_ref().map(|d| d.run_id)
    }

    /// Handles one record.
    pub fn on_record(&mut self, r: &Record) -> Result<(), PersistError> {
        self.stats.records += 1;
        match *r {
            Record::Symbol { id, name, price, qty } => {
                self.db_names.set(id, name, price, qty);
                let i = id as usize;
                if self.names.len() <= i {
                    self.names.resize(i + 1, (SymbolName::default(), Scale::decimals(0), Scale::decimals(0)));
                }
                self.names[i] = (name, price, qty);
            }
            Record::Signal { symbol, signal } => {
                self.stats.signals += 1;
                if let Some((path, w)) = &mut self.signals_csv {
                    let (name, ps, _) = self.names.get(symbol as usize).copied().unwrap_or((
                        SymbolName::default(),
                        Scale::decimals(0),
                        Scale::decimals(0),
                    ));
                    use std::fmt::Write as _;
                    let l = &mut self.line;
                    l.clear();
                    let f = &signal.features;
                    let _ = write!(l, "{},{},{},", name, signal.ts_ns / 1_000_000, signal.side.name());
                    ps.format(signal.price, l);
                    let _ = writeln!(
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
                    );
                    w.write_all(l.as_bytes())
                        .map_err(|source| PersistError::SignalsCsv { path: path.clone(), source })?;
                }
            }
            Record::Tuning { .. } => {
                self.stats.tuning_runs += 1;
            }
            Record::Opened { .. } => self.stats.positions_opened += 1,
            Record::Closed { .. } => self.stats.positions_closed += 1,
            Record::Fill { .. } => self.stats.fills += 1,
            Record::HourPnl { .. }
            | Record::SnapshotRequest { .. }
            | Record::StopMoved { .. }
            | Record::DailyLimitHit { .. } => {}
            Record::Bar { symbol, bar } => {
                self.stats.bars += 1;
                if let Some((path, w)) = &mut self.csv {
                    let (name, ps, qs) = self.names.get(symbol as usize).copied().unwrap_or((
                        SymbolName::default(),
                        Scale::decimals(0),
                        Scale::decimals(0),
                    ));
                    use std::fmt::Write as _;
                    let l = &mut self.line;
                    l.clear();
                    let _ = write!(l, "{},{},{},", name, bar.first_ts_ns / 1_000_000, bar.last_ts_ns / 1_000_000);
                    for px in [bar.open, bar.high, bar.low, bar.close] {
                        ps.format(px, l);
                        l.push(',');
                    }
                    for q in [bar.volume, bar.buy_volume, bar.sell_volume] {
                        qs.format(q, l);
                        l.push(',');
                    }
                    let _ =
                        writeln!(l, "{},{},{},{}", bar.trades, bar.range_ticks, bar.first_trade_id, bar.last_trade_id);
                    w.write_all(l.as_bytes()).map_err(|source| PersistError::BarsCsv { path: path.clone(), source })?;
                    self.stats.bars_written += 1;
                }
            }
        }
        Ok(())
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> Result<(), PersistError> {
        if let Some((path, w)) = &mut self.csv {
            w.flush().map_err(|source| PersistError::BarsCsv { path: path.clone(), source })?;
        }
        Ok(())
    }

    /// Runs the stage until the producer is gone and the ring is empty.
    /// Commits the waiting rows in one transaction. On failure the rows stay (bounded) for the next attempt.
    fn commit(&mut self) -> bool {
        let Some(db) = &mut self.db else {
            self.batch.clear();
            return true;
        };
        if self.batch.is_empty() {
            return true;
        }
        let t0 = crate::types::clock::now_ns();
        match db.write_batch(&self.db_names, &self.batch) {
            Ok(()) => {
                self.commit_stage.record(crate::types::clock::now_ns().saturating_sub(t0));
                self.stats.db_rows += self.batch.len() as u64;
                self.stats.db_commits += 1;
                self.batch.clear();
                true
            }
            Err(e) => {
                self.stats.db_write_errors += 1;
                if self.stats.db_write_errors == 1 || self.stats.db_write_errors.is_power_of_two() {
                    eprintln!(
                        "error: database write failed ({e}); {} rows kept and retried (failure #{})",
                        self.batch.len(),
                        self.stats.db_write_errors
                    );
                }
                let over = self.batch.len().saturating_sub(self.batch_cfg.max_pending_rows);
                if over > 0 {
                    self.batch.drain(..over);
                    self.stats.db_rows_dropped += over as u64;
                    eprintln!("error: database unwritable for too long: {over} oldest rows dropped (counted)");
                }
                false
            }
        }
    }

    /// Runs the stage until the producer is gone and the ring is empty; commits on drain, every `batch_rows`
    /// rows or every `batch_ms`, whichever comes first.
    pub fn run(mut self, mut rx: Consumer<Record>) -> (Self, Result<(), PersistError>) {
        let mut idle = 0u32;
        let mut err = Ok(());
        let mut oldest: Option<std::time::Instant> = None;
        let mut backoff = std::time::Duration::from_millis(10);
        let mut retry_at: Option<std::time::Instant> = None;
        loop {
            let mut n = 0;
            while let Some(r) = rx.pop() {
                n += 1;
                if err.is_ok()
                    && let Err(e) = self.on_record(&r)
                {
                    err = Err(e);
                }
                if self.db.is_some() && is_db_record(&r) {
                    self.batch.push(r);
                    oldest.get_or_insert_with(std::time::Instant::now);
                }
                if n >= 4096 || self.batch.len() >= self.batch_cfg.batch_rows {
                    break;
                }
            }
            let drained = rx.available() == 0;
            let due = !self.batch.is_empty()
                && (drained
                    || self.batch.len() >= self.batch_cfg.batch_rows
                    || oldest.is_some_and(|t| t.elapsed().as_millis() as u64 >= self.batch_cfg.batch_ms));
            if due && retry_at.is_none_or(|t| std::time::Instant::now() >= t) {
                if self.commit() {
                    oldest = None;
                    retry_at = None;
                    backoff = std::time::Duration::from_millis(10);
                } else {
                    retry_at = Some(std::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
            }
            if n == 0 {
                self.drain_control();
                if rx.is_abandoned() && rx.available() == 0 {
                    break;
                }
                if err.is_ok()
                    && let Err(e) = self.flush()
                {
                    err = Err(e);
                }
                idle += 1;
                if idle < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            } else {
                idle = 0;
            }
        }
        self.drain_control();
        // Final commit: a few retries, then report what could not be written.
        for attempt in 0..5 {
            if self.commit() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
        }
        if !self.batch.is_empty() {
            self.stats.db_rows_dropped += self.batch.len() as u64;
            eprintln!("error: {} rows could not be written to the database at exit", self.batch.len());
            self.batch.clear();
        }
        if let Some(db) = &mut self.db {
            let status = if self.stats.db_rows_dropped == 0 { "finished" } else { "finished_with_lost_rows" };
            if let Err(e) = db.end_run(status)
                && err.is_ok()
            {
                err = Err(e.into());
            }
        }
        if err.is_ok() {
            err = self.flush();
        }
        (self, err)
    }
}

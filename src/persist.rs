//! The persistence stage: the only thread that writes files (and, from the execution issue on, SQLite).
//!
//! It drains the compute → persist ring, keeps the symbol table announced by [`Record::Symbol`], and writes
//! closed bars to the bars CSV when one is configured. Writes are buffered and flushed when the ring is drained;
//! an I/O error stops the writer with a clear error (reported at the end), never a panic.

use std::io::Write;
use std::path::PathBuf;

use crate::decimal::Scale;
use crate::engine::Record;
use crate::ring::Consumer;
use crate::symbols::SymbolName;

/// Errors of the persistence stage.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
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
    /// Counters.
    pub stats: PersistStats,
}

impl Persist {
    /// Opens the outputs (before any trading starts, so a bad path is an error up front).
    pub fn open(bars_csv: Option<PathBuf>, signals_csv: Option<PathBuf>) -> Result<Self, PersistError> {
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
            stats: PersistStats::default(),
        })
    }

    /// Handles one record.
    pub fn on_record(&mut self, r: &Record) -> Result<(), PersistError> {
        self.stats.records += 1;
        match *r {
            Record::Symbol { id, name, price, qty } => {
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
    pub fn run(mut self, mut rx: Consumer<Record>) -> (Self, Result<(), PersistError>) {
        let mut idle = 0u32;
        let mut err = Ok(());
        loop {
            let mut n = 0;
            while let Some(r) = rx.pop() {
                n += 1;
                if err.is_ok()
                    && let Err(e) = self.on_record(&r)
                {
                    err = Err(e);
                }
                if n >= 4096 {
                    break;
                }
            }
            if n == 0 {
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
        if err.is_ok() {
            err = self.flush();
        }
        (self, err)
    }
}

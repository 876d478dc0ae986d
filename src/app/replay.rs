//! `rusto replay`: a recording through the full threaded pipeline (recording thread → SPSC ring → pinned compute
//! thread → SPSC ring → persistence thread), exactly the path live data takes.

use std::path::PathBuf;
use std::time::Instant;

use crate::app::config::{Config, FullPolicy};
use crate::app::threads::{Backend, BackendEnd, BackendRings, PipelineError, join, open_db, spawn_pinned};
use crate::compute::engine::Engine;
use crate::compute::thread::ComputeHooks;
use crate::handoff::publish::Publisher;
use crate::handoff::ring::ring;
use crate::ingest::parse::{MAX_EVENTS_PER_FRAME, Parser};
use crate::persist::writer::Persist;
use crate::recording::reader::{FeedError, Line, classify};
use crate::recording::source::{Speed, check_distinct, run_source};
use crate::report::summary::{ReplayReport, ScaleSource, SymbolScales};
use crate::types::event::MarketEvent;
use crate::types::record::Record;
use crate::types::symbols::{SymbolId, SymbolName, SymbolSpec, SymbolTable};

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No input file.
    #[error("no recording given")]
    NoInput,
    /// A recording could not be read.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// The database, persistence or a pipeline thread failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The exchangeInfo file could not be used.
    #[error("exchange info {path}: {msg}")]
    ExchangeInfo {
        /// File.
        path: PathBuf,
        /// Cause.
        msg: String,
    },
}

/// Options of `rusto replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Recordings (merged by local time).
    pub files: Vec<PathBuf>,
    /// Pacing.
    pub speed: Speed,
    /// Closed bars to this CSV.
    pub bars_csv: Option<PathBuf>,
    /// An exchangeInfo body (raw JSON or a recording line) giving tick and step sizes.
    pub exchange_info: Option<PathBuf>,
    /// Every signal with its features to this CSV.
    pub signals_csv: Option<PathBuf>,
    /// SQLite database for positions, fills, features, tuning logs and the hour expectancy state.
    pub db: Option<PathBuf>,
}

/// Loads symbol specs from a file holding an exchangeInfo body (bare JSON or a recording line).
pub(crate) fn load_exchange_info(path: &std::path::Path) -> Result<Vec<SymbolSpec>, ReplayError> {
    let err = |msg: String| ReplayError::ExchangeInfo { path: path.to_owned(), msg };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    for line in text.split(|&c| c == b'\n') {
        let json = match classify(line) {
            Line::Frame { json, .. } => json,
            _ if line.first() == Some(&b'{') => line,
            _ => continue,
        };
        if memchr::memmem::find(json, b"\"symbols\"").is_some() {
            return crate::ingest::parse::parse_exchange_info(json).map_err(|e| err(e.to_string()));
        }
    }
    Err(err("no exchangeInfo body found".into()))
}

/// Runs a replay through the full threaded pipeline and returns what happened.
pub fn run_replay(cfg: &Config, opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    if opts.files.is_empty() {
        return Err(ReplayError::NoInput);
    }
    for f in &opts.files {
        if !f.exists() {
            return Err(FeedError::Open {
                path: f.clone(),
                cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            }
            .into());
        }
    }
    check_distinct(&opts.files)?;
    let (specs, given) = replay_specs(opts.exchange_info.as_deref())?;
    let mut engine = Engine::new(cfg.engine());
    let inputs: Vec<String> = opts.files.iter().map(|f| f.display().to_string()).collect();
    let db = open_db(cfg, &mut engine, opts.db.as_deref(), "replay", &inputs.join(" "))?;
    let persist = Persist::open(opts.bars_csv.clone(), opts.signals_csv.clone(), db, cfg.persist.clone())
        .map_err(PipelineError::from)?;
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let event_ring = cfg.pipeline.event_ring.max(MAX_EVENTS_PER_FRAME * 2);
    let (ev_tx, ev_rx) = ring::<MarketEvent>(event_ring);
    let (rec_tx, rec_rx) = ring::<Record>(cfg.pipeline.record_ring);
    let publisher = Publisher::new(ev_tx, FullPolicy::Spin, cfg.parser.max_symbols);
    let waiter = publisher.waiter();
    let max_line = cfg.parser.max_frame_bytes + 64;
    let started = Instant::now();
    let rings = BackendRings { events: ev_rx, records_tx: rec_tx, records_rx: rec_rx };
    let backend = Backend::start(cfg, persist, engine, rings, ComputeHooks::default(), waiter)?;
    let (files, speed) = (opts.files.clone(), opts.speed);
    let net_h =
        spawn_pinned("net", cfg.pipeline.net_core, move || run_source(parser, files, max_line, speed, publisher))?;

    let (parser, feed, parse_stage, feed_result) = join(net_h, "net")?;
    let scale_sources = scale_sources(parser.symbols(), &given);
    let end = backend.join()?;
    let elapsed = started.elapsed();
    // parse, the compute stages in print order, persist_commit, then tick_to_decision last.
    let (mut latency, tick_to_decision) = end.latency(&parse_stage);
    latency.extend(tick_to_decision);
    let BackendEnd { engine, persist, persist_result, .. } = end;
    feed_result?;
    persist_result.map_err(PipelineError::from)?;
    Ok(ReplayReport {
        feed,
        parse: parser.stats.clone(),
        engine,
        run_id: persist.run_id(),
        persist: persist.stats,
        latency,
        elapsed,
        vwap_band_sigmas: cfg.profile.vwap_band_sigmas,
        scale_sources,
    })
}

/// The specs the replay's parser starts with: those of the `--exchange-info` file, then the bundled entries
/// (`data/exchange-info/`) of the symbols the file does not name. Also the names the file gave.
fn replay_specs(file: Option<&std::path::Path>) -> Result<(Vec<SymbolSpec>, Vec<SymbolName>), ReplayError> {
    let mut specs = match file {
        Some(p) => load_exchange_info(p)?,
        None => Vec::new(),
    };
    let given: Vec<SymbolName> = specs.iter().map(|s| s.name).collect();
    let bundled = crate::ingest::parse::bundled_specs().map_err(|e| ReplayError::ExchangeInfo {
        path: "data/exchange-info/binance-usdm.json".into(),
        msg: e.to_string(),
    })?;
    specs.extend(bundled.into_iter().filter(|b| !given.contains(&b.name)));
    Ok((specs, given))
}

/// Where each interned symbol's scales came from: the file (`given`), the bundled table, or inferred.
fn scale_sources(table: &SymbolTable, given: &[SymbolName]) -> Vec<SymbolScales> {
    (0..table.len())
        .map(|i| {
            let e = table.get(i as SymbolId);
            let source = match (e.from_exchange_info, given.contains(&e.name)) {
                (true, true) => ScaleSource::ExchangeInfo,
                (true, false) => ScaleSource::Bundled,
                (false, _) => ScaleSource::Inferred,
            };
            SymbolScales { name: e.name, tick: e.price, step: e.qty, source }
        })
        .collect()
}

//! `rusto replay`: a recording through the full threaded pipeline (recording thread → SPSC ring → pinned compute
//! thread → SPSC ring → persistence thread), exactly the path live data takes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::app::config::{Config, FullPolicy};
use crate::app::threads::{Backend, BackendEnd, BackendRings, PipelineError, join, open_db, spawn_pinned};
use crate::compute::engine::{Engine, EngineConfig};
use crate::compute::thread::ComputeHooks;
use crate::handoff::publish::{FeedStats, Publisher};
use crate::handoff::ring::ring;
use crate::ingest::parse::{MAX_EVENTS_PER_FRAME, ParseStats, Parser};
use crate::persist::writer::Persist;
use crate::recording::cache::{CacheError, CacheKey, CacheWriter, EventCache, ParseConfig, cache_key, cache_path};
use crate::recording::reader::{FeedError, Line, classify};
use crate::recording::source::{Speed, check_distinct, run_cache, run_source_caching};
use crate::recording::window::TimeWindow;
use crate::report::summary::{ReplayReport, ScaleSource, SymbolScales};
use crate::types::event::MarketEvent;
use crate::types::latency::Stage;
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
    /// A validated cache could not be turned back into a symbol table.
    #[error("replay cache: {0}")]
    Cache(String),
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
    /// The part of the recordings replayed (`--from` / `--until`, by local receive time); default: all of it.
    pub window: TimeWindow,
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
    run_replay_cached(cfg, opts, None).map(|(report, _)| report)
}

/// What the event cache did in a replay with `--cache`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheOutcome {
    /// The cache file of this file set.
    pub path: PathBuf,
    /// The events came from the cache (no inflate, no parse).
    pub hit: bool,
    /// Cache files refused (stale, truncated, corrupt) before this replay parsed instead.
    pub rejected: u64,
    /// A new cache file was written.
    pub written: bool,
}

/// The validated cache of `opts`' file set in `dir` (the key computed as a replay would), for measuring the cache
/// reader alone.
pub fn open_replay_cache(cfg: &Config, opts: &ReplayOptions, dir: &Path) -> Result<EventCache, ReplayError> {
    let (specs, _) = replay_specs(opts.exchange_info.as_deref())?;
    let err = |e: CacheError| ReplayError::Cache(e.to_string());
    let (path, key) = cache_location(cfg, &opts.files, &specs, dir).map_err(err)?;
    EventCache::open(&path, &key, cfg.parser.max_symbols).map_err(err)
}

/// Where the cache of `files` lives in `dir`, and the key it must carry.
fn cache_location(
    cfg: &Config,
    files: &[PathBuf],
    specs: &[SymbolSpec],
    dir: &Path,
) -> Result<(PathBuf, CacheKey), CacheError> {
    Ok((cache_path(dir, files)?, cache_key(files, &parse_config(cfg, specs))?))
}

/// What of the config decides the parse (part of the cache key).
fn parse_config<'a>(cfg: &Config, specs: &'a [SymbolSpec]) -> ParseConfig<'a> {
    ParseConfig {
        max_symbols: cfg.parser.max_symbols,
        max_frame_bytes: cfg.parser.max_frame_bytes,
        max_line: cfg.parser.max_frame_bytes + 64,
        specs,
    }
}

/// Where the recording thread gets its events: a validated cache, or the files (maybe writing a cache).
enum Feed {
    Cache(EventCache),
    Parse(Option<Box<CacheWriter>>),
}

/// Finds the file set's cache in `dir`: a trusted one, or a writer for a new one (a refused file is counted).
fn open_cache(cfg: &Config, files: &[PathBuf], specs: &[SymbolSpec], dir: &Path, out: &mut CacheOutcome) -> Feed {
    let (path, key) = match cache_location(cfg, files, specs, dir) {
        Ok(pk) => pk,
        Err(e) => {
            // The outcome still names the file when only the key failed (an input could not be read).
            out.path = cache_path(dir, files).unwrap_or_default();
            log::warn!("replay cache: {e}; replaying without the cache");
            return Feed::Parse(None);
        }
    };
    out.path = path.clone();
    match EventCache::open(&path, &key, cfg.parser.max_symbols) {
        Ok(c) => {
            log::info!("replay cache: {} events from {}", c.n_events(), path.display());
            out.hit = true;
            return Feed::Cache(c);
        }
        Err(CacheError::Missing) => {}
        Err(e) => {
            out.rejected += 1;
            log::warn!("replay cache {}: {e}; not used, rebuilding it", path.display());
        }
    }
    match CacheWriter::create(path, key) {
        Ok(w) => Feed::Parse(Some(Box::new(w))),
        Err(e) => {
            log::warn!("replay cache: {e}; replaying without writing a cache");
            Feed::Parse(None)
        }
    }
}

/// The symbol table a cached parse ended with, rebuilt in id order.
fn cached_table(cfg: &Config, specs: Vec<SymbolSpec>, cache: &EventCache) -> Result<SymbolTable, ReplayError> {
    let bad = |msg: String| ReplayError::Cache(msg);
    let mut table = SymbolTable::new(cfg.parser.max_symbols, specs);
    for s in cache.symbols().map_err(|e| bad(e.to_string()))? {
        let (id, _) = table.intern(s.name.as_str().as_bytes()).map_err(|e| bad(e.to_string()))?;
        let e = table.get_mut(id);
        (e.price, e.qty, e.from_exchange_info) = (s.price, s.qty, s.from_exchange_info);
    }
    Ok(table)
}

/// What the recording thread ended with.
struct SourceEnd {
    parse: ParseStats,
    /// The parser (a parse replay), which owns the symbol table.
    parser: Option<Parser>,
    /// The table rebuilt from the cache (a cache replay).
    cached: Option<SymbolTable>,
    feed: FeedStats,
    parse_stage: Stage,
    result: Result<(), FeedError>,
    writer: Option<CacheWriter>,
}

impl SourceEnd {
    fn table(&self) -> Option<&SymbolTable> {
        self.parser.as_ref().map(Parser::symbols).or(self.cached.as_ref())
    }
}

/// Starts the recording thread on `feed` and waits for it.
fn run_feed(
    cfg: &Config,
    opts: &ReplayOptions,
    feed: Feed,
    specs: Vec<SymbolSpec>,
    publisher: Publisher,
) -> Result<SourceEnd, ReplayError> {
    let (files, speed, max_line, window) =
        (opts.files.clone(), opts.speed, cfg.parser.max_frame_bytes + 64, opts.window);
    match feed {
        Feed::Cache(cache) => {
            let table = cached_table(cfg, specs, &cache)?;
            let (lines, parse) = cache.stats();
            let h = spawn_pinned("net", cfg.pipeline.net_core, move || run_cache(&cache, speed, publisher))?;
            let (pushed, parse_stage) = join(h, "net")?;
            let feed = FeedStats {
                ring_full: pushed.ring_full,
                frames_dropped: pushed.frames_dropped,
                events: pushed.events,
                ..lines
            };
            Ok(SourceEnd { parse, parser: None, cached: Some(table), feed, parse_stage, result: Ok(()), writer: None })
        }
        Feed::Parse(writer) => {
            let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
            let h = spawn_pinned("net", cfg.pipeline.net_core, move || {
                run_source_caching(parser, files, max_line, speed, publisher, writer.map(|w| *w), window)
            })?;
            let (parser, feed, parse_stage, result, writer) = join(h, "net")?;
            let parse = parser.stats.clone();
            Ok(SourceEnd { parse, parser: Some(parser), cached: None, feed, parse_stage, result, writer })
        }
    }
}

/// Completes the cache the recording thread wrote, if any (a failure is logged: the replay itself succeeded).
fn finish_cache(src: &mut SourceEnd, out: &mut CacheOutcome) {
    if let (Some(w), Some(table)) = (src.writer.take(), src.table()) {
        match w.finish(&src.feed, &src.parse, table) {
            Ok(p) => {
                out.written = true;
                log::info!("replay cache: wrote {}", p.display());
            }
            Err(e) => log::warn!("replay cache: not written: {e}"),
        }
    }
}

/// [`run_replay`] with the event cache in `cache_dir` (see [`crate::recording::cache`]): a replay of a file set
/// seen before pushes its cached events instead of inflating and parsing; the report is the same either way.
pub fn run_replay_cached(
    cfg: &Config,
    opts: &ReplayOptions,
    cache_dir: Option<&Path>,
) -> Result<(ReplayReport, Option<CacheOutcome>), ReplayError> {
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
    // A window that ends early reads the files: a cache holds the whole stream and its whole counters.
    let cache_dir = cache_dir.filter(|_| opts.window.until_ns.is_none());
    let mut outcome = cache_dir.map(|_| CacheOutcome::default());
    let feed = match (cache_dir, outcome.as_mut()) {
        (Some(dir), Some(out)) => open_cache(cfg, &opts.files, &specs, dir, out),
        _ => Feed::Parse(None),
    };
    // A symbol without a depth stream replays on its bookTickers (the top-of-book model), never live.
    let mut engine =
        Engine::new(EngineConfig { top_of_book: true, entries_from_local_ns: opts.window.from_ns, ..cfg.engine() });
    let inputs: Vec<String> = opts.files.iter().map(|f| f.display().to_string()).collect();
    let db = open_db(cfg, &mut engine, opts.db.as_deref(), "replay", &inputs.join(" "))?;
    let persist = Persist::open(opts.bars_csv.clone(), opts.signals_csv.clone(), db, cfg.persist.clone())
        .map_err(PipelineError::from)?;
    let event_ring = cfg.pipeline.event_ring.max(MAX_EVENTS_PER_FRAME * 2);
    let (ev_tx, ev_rx) = ring::<MarketEvent>(event_ring);
    let (rec_tx, rec_rx) = ring::<Record>(cfg.pipeline.record_ring);
    let publisher = Publisher::new(ev_tx, FullPolicy::Spin, cfg.parser.max_symbols);
    let waiter = publisher.waiter();
    let started = Instant::now();
    let rings = BackendRings { events: ev_rx, records_tx: rec_tx, records_rx: rec_rx };
    let backend = Backend::start(cfg, persist, engine, rings, ComputeHooks::default(), waiter)?;
    let mut src = run_feed(cfg, opts, feed, specs, publisher)?;
    let table = src.table().ok_or_else(|| ReplayError::Cache("no symbol table".into()))?;
    let scale_sources = scale_sources(table, &given);
    let end = backend.join(None)?;
    let elapsed = started.elapsed();
    // parse, the compute stages in print order, persist_commit, then tick_to_decision last.
    let (mut latency, tick_to_decision) = end.latency(&src.parse_stage);
    latency.extend(tick_to_decision);
    let BackendEnd { engine, persist, persist_result, .. } = end;
    std::mem::replace(&mut src.result, Ok(()))?;
    persist_result.map_err(PipelineError::from)?;
    if let Some(out) = outcome.as_mut() {
        finish_cache(&mut src, out);
    }
    let model = crate::report::summary::market_model(&engine);
    if let (Some(path), Some(id), true) = (opts.db.as_deref(), persist.run_id(), model != "full_book") {
        crate::persist::mark_run_mode(path, id, &format!("replay-{model}")).map_err(PipelineError::from)?;
    }
    let report = ReplayReport {
        feed: src.feed,
        parse: src.parse,
        engine,
        run_id: persist.run_id(),
        persist: persist.stats,
        latency,
        elapsed,
        vwap_band_sigmas: cfg.profile.vwap_band_sigmas,
        scale_sources,
        window: opts.window,
    };
    Ok((report, outcome))
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

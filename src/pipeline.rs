//! The threaded pipeline: network (or recording) thread → SPSC ring → pinned compute thread → SPSC ring →
//! persistence thread. `rusto replay` drives recordings through exactly this path; live runs swap the source.
//!
//! Contracts:
//! - Every ring is allocated before the threads start and bounded.
//! - The source publishes each frame's events with one all-or-nothing push. When the event ring is full, replay
//!   spins (a file can wait and nothing may be lost); live applies [`FullPolicy`]: `drop-and-resync` drops the frame,
//!   counts it and tells the compute thread (a `Dropped` event) to resync that symbol's book.
//! - The compute thread never blocks: when the record ring is full, records wait in a preallocated overflow
//!   buffer; only if that overflows too is a record lost, and that is counted and reported.
//! - Latency stamps use the monotonic clock; trading logic never sees them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::app::config::{Config, FullPolicy};
use crate::compute::engine::{Engine, Verdict};
use crate::handoff::ring::{Consumer, Producer, PushSliceError, ring};
use crate::ingest::parse::{FrameMeta, MAX_EVENTS_PER_FRAME, ParseStats, Parser};
use crate::persist::db::Db;
use crate::persist::writer::{Persist, PersistError, PersistStats};
use crate::recording::reader::{FeedError, Line, LineReader, classify, symbol_from_file_name};
use crate::types::clock;
use crate::types::event::{EventKind, MarketEvent, SymbolId};
use crate::types::latency::{Stage, Summary};
use crate::types::record::Record;
use crate::types::symbols::{SymbolName, SymbolSpec, SymbolTable};

/// Replay pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Asap,
    /// Local timestamps × 1/factor (1.0 = real time).
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "asap" => Ok(Speed::Asap),
            "realtime" => Ok(Speed::Factor(1.0)),
            _ => match s.parse::<f64>() {
                Ok(f) if f > 0.0 && f.is_finite() => Ok(Speed::Factor(f)),
                _ => Err(format!("invalid speed {s:?}: use asap, realtime or a positive factor such as 10")),
            },
        }
    }
}

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No input file.
    #[error("no recording given")]
    NoInput,
    /// A recording could not be read.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// An output could not be written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// The database could not be opened.
    #[error(transparent)]
    Db(#[from] crate::persist::db::DbError),
    /// The exchangeInfo file could not be used.
    #[error("exchange info {path}: {msg}")]
    ExchangeInfo {
        /// File.
        path: PathBuf,
        /// Cause.
        msg: String,
    },
    /// A pipeline thread could not be started or died.
    #[error("pipeline thread {0}: {1}")]
    Thread(&'static str, String),
}

/// Counters of the source (feed) side.
#[derive(Debug, Clone, Default)]
pub struct FeedStats {
    /// Lines read.
    pub lines: u64,
    /// Lines that are not data (connection, configuration, blank).
    pub skipped_lines: u64,
    /// Lines in no known shape.
    pub bad_lines: u64,
    /// Lines longer than the frame limit (skipped).
    pub oversize_lines: u64,
    /// Frames whose push found the event ring full.
    pub ring_full: u64,
    /// Frames dropped on a full ring (drop-and-resync policy).
    pub frames_dropped: u64,
    /// Events pushed.
    pub events: u64,
}

impl FeedStats {
    /// Malformed input that never reached the parser.
    pub fn malformed_lines(&self) -> u64 {
        self.bad_lines + self.oversize_lines
    }
}

/// How the compute thread waits for events without burning a core: it spins `idle_spins` empty polls, then
/// announces that it sleeps and parks (at most 1 ms); the producer unparks it after a push when it announced so.
/// The flag is re-checked after being set, so a wake-up is never lost (and the timeout bounds any surprise).
#[derive(Default)]
pub struct Waiter {
    sleeping: std::sync::atomic::AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Waiter {
    /// Registers the consumer thread (call on that thread).
    pub fn register(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    /// Producer side: wakes the consumer if it sleeps.
    #[inline]
    pub fn wake(&self) {
        if self.sleeping.load(std::sync::atomic::Ordering::SeqCst)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }

    /// Consumer side: sleeps until woken or 1 ms passed, unless `ready()` says there is work.
    pub fn sleep(&self, ready: impl FnOnce() -> bool) {
        self.sleeping.store(true, std::sync::atomic::Ordering::SeqCst);
        if !ready() {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        self.sleeping.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Publishes parsed frames into the event ring under a [`FullPolicy`].
pub struct Publisher {
    waiter: Arc<Waiter>,
    tx: Producer<MarketEvent>,
    policy: FullPolicy,
    pending_drops: Vec<u32>,
    any_pending: bool,
    /// Counters (ring_full, frames_dropped, events).
    pub stats: FeedStats,
}

impl Publisher {
    /// A publisher over `tx` for up to `max_symbols` symbols.
    pub fn new(tx: Producer<MarketEvent>, policy: FullPolicy, max_symbols: usize) -> Self {
        Publisher {
            waiter: Arc::new(Waiter::default()),
            tx,
            policy,
            pending_drops: vec![0; max_symbols],
            any_pending: false,
            stats: FeedStats::default(),
        }
    }

    /// The waiter the consumer sleeps on.
    pub fn waiter(&self) -> Arc<Waiter> {
        self.waiter.clone()
    }

    fn flush_drops(&mut self) -> bool {
        if !self.any_pending {
            return true;
        }
        for (id, n) in self.pending_drops.iter_mut().enumerate() {
            if *n == 0 {
                continue;
            }
            let mut e = MarketEvent::new(EventKind::Dropped, id as SymbolId, 0, 0, clock::now_ns());
            e.p[0] = *n as i64;
            if self.tx.push(e).is_err() {
                return false;
            }
            *n = 0;
        }
        self.any_pending = false;
        self.waiter.wake();
        true
    }

    /// Pushes one frame's events. Returns false when the consumer is gone.
    #[inline]
    pub fn publish(&mut self, events: &[MarketEvent]) -> bool {
        if events.is_empty() {
            // Nothing to push, but pending drop notices go out as soon as there is room.
            let _ = self.flush_drops();
            return true;
        }
        let mut counted = false;
        let mut spins = 0u32;
        loop {
            if self.flush_drops() {
                match self.tx.push_slice(events) {
                    Ok(()) => {
                        self.stats.events += events.len() as u64;
                        self.waiter.wake();
                        return true;
                    }
                    Err(PushSliceError::TooLarge(_)) => {
                        // Cannot happen: the ring is validated to hold the largest frame. Treat as a drop.
                        self.drop_frame(events);
                        return true;
                    }
                    Err(PushSliceError::Full { .. }) => {}
                }
            }
            if !counted {
                counted = true;
                self.stats.ring_full += 1;
            }
            if self.tx.is_abandoned() {
                return false;
            }
            match self.policy {
                FullPolicy::Spin => {
                    // Spin briefly, then give the core away: on a 2-core box the consumer may need it.
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                FullPolicy::DropAndResync => {
                    self.drop_frame(events);
                    return true;
                }
            }
        }
    }

    /// Marks a symbol's data as lost (e.g. its connection dropped): a `Dropped` event reaches the compute thread
    /// before the symbol's next frame, so its book resyncs from a fresh snapshot.
    pub fn mark_lost(&mut self, symbol: SymbolId) {
        if let Some(n) = self.pending_drops.get_mut(symbol as usize) {
            *n += 1;
            self.any_pending = true;
        }
    }

    fn drop_frame(&mut self, events: &[MarketEvent]) {
        self.stats.frames_dropped += 1;
        for e in events {
            if e.kind != EventKind::Levels && e.kind != EventKind::SymbolDef {
                if let Some(n) = self.pending_drops.get_mut(e.symbol as usize) {
                    *n += 1;
                    self.any_pending = true;
                }
                break;
            }
        }
    }
}

/// What a replay did.
pub struct ReplayReport {
    /// Source counters.
    pub feed: FeedStats,
    /// Parser counters.
    pub parse: ParseStats,
    /// The compute stage at the end (books, bars, counters).
    pub engine: Engine,
    /// Persistence counters.
    pub persist: PersistStats,
    /// The database's run id (when a database was given).
    pub run_id: Option<i64>,
    /// Latency per stage, in print order.
    pub latency: Vec<(&'static str, Summary)>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// VWAP band width (σ) for reports.
    pub vwap_band_sigmas: f64,
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
pub fn load_exchange_info(path: &std::path::Path) -> Result<Vec<SymbolSpec>, ReplayError> {
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

fn pin(core: Option<usize>, what: &str) {
    let Some(want) = core else { return };
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.len() < 2 {
        return; // One core: pinning buys nothing.
    }
    match ids.iter().find(|c| c.id == want) {
        Some(&c) => {
            if !core_affinity::set_for_current(c) {
                eprintln!("warn: could not pin the {what} thread to core {want}");
            }
        }
        None => eprintln!("warn: {what} thread: core {want} does not exist here ({} cores); not pinned", ids.len()),
    }
}

/// Live hooks of the compute thread (all optional; replay uses none).
#[derive(Default, Clone)]
pub struct ComputeHooks {
    /// Where snapshot requests go (the control thread).
    pub snapshot_requests: Option<Arc<ArrayQueue<SymbolName>>>,
    /// Periodic latency reports (to the main thread) and their interval.
    pub reports: Option<(Arc<ArrayQueue<IntervalReport>>, Duration)>,
    /// Alerts: trading records worth a message go here (bounded; a full queue is counted by the alert side).
    pub alerts: Option<Arc<ArrayQueue<crate::app::alert::Alert>>>,
    /// Positions opened (true) and closed (false) by symbol, for the control thread's reselection.
    pub position_events: Option<Arc<ArrayQueue<(SymbolName, bool)>>>,
}

/// A latency and activity snapshot published by the compute thread at intervals.
#[derive(Debug, Clone)]
pub struct IntervalReport {
    /// Per-stage percentiles since start.
    pub latency: Vec<(&'static str, Summary)>,
    /// Events processed.
    pub events: u64,
    /// Per symbol: (name, trades, synced, open position).
    pub symbols: Vec<(SymbolName, u64, bool, bool)>,
}

/// Per-stage histograms of the compute thread.
pub struct ComputeStages {
    ring_wait: Stage,
    book: Stage,
    bars: Stage,
    other: Stage,
    compute: Stage,
    tick_to_decision: Stage,
}

/// The compute thread's loop: drains the event ring through the engine until the producer is gone, then closes
/// open positions (`Shutdown`) and hands every record to the persistence ring.
pub fn run_compute(
    mut engine: Engine,
    mut rx: Consumer<MarketEvent>,
    mut tx: Producer<Record>,
    idle_spins: u32,
    overflow_cap: usize,
    hooks: ComputeHooks,
    waiter: Arc<Waiter>,
) -> (Engine, ComputeStages) {
    waiter.register();
    let mut st = ComputeStages {
        ring_wait: Stage::new("ring_wait"),
        book: Stage::new("book"),
        bars: Stage::new("bars"),
        other: Stage::new("other"),
        compute: Stage::new("compute"),
        tick_to_decision: Stage::new("tick_to_decision"),
    };
    let mut overflow: Vec<Record> = Vec::with_capacity(overflow_cap);
    let mut idle = 0u32;
    let mut lost = 0u64;
    let mut next_report = Instant::now() + hooks.reports.as_ref().map_or(Duration::from_secs(3600), |r| r.1);
    loop {
        if let Some((q, every)) = &hooks.reports
            && Instant::now() >= next_report
        {
            next_report = Instant::now() + *every;
            let _ = q.push(interval_report(&engine, &st));
        }
        // Hand over records that waited for room.
        if !overflow.is_empty() {
            let mut k = 0;
            while k < overflow.len() && tx.push(overflow[k]).is_ok() {
                k += 1;
            }
            overflow.drain(..k);
        }
        if rx.available() == 0 {
            if rx.is_abandoned() && rx.available() == 0 {
                break;
            }
            idle += 1;
            if idle < idle_spins {
                std::hint::spin_loop();
            } else {
                waiter.sleep(|| rx.available() > 0 || rx.is_abandoned());
            }
            continue;
        }
        idle = 0;
        // One clock read per event: the end of one event is the start of the next within a batch.
        let mut t_prev = clock::now_ns();
        rx.pop_batch(256, |e| {
            let t0 = t_prev;
            let mut sink = |r: Record| {
                if !overflow.is_empty() || tx.push(r).is_err() {
                    if overflow.len() < overflow_cap {
                        overflow.push(r);
                    } else {
                        lost += 1;
                    }
                }
            };
            let v = engine.on_event(&e, &mut |r: Record| {
                if let Record::SnapshotRequest { name, .. } = r
                    && let Some(q) = &hooks.snapshot_requests
                {
                    if q.push(name).is_err() {
                        // The control thread is behind; the book keeps asking on its next need.
                    }
                    return;
                }
                if let Some(q) = &hooks.alerts
                    && matches!(
                        r,
                        Record::Opened { .. }
                            | Record::Closed { .. }
                            | Record::StopMoved { .. }
                            | Record::DailyLimitHit { .. }
                            | Record::Fill { reason: Some(crate::types::record::ExitReason::TakeProfit), .. }
                    )
                {
                    let _ = q.push(crate::app::alert::Alert::Trade(r));
                }
                if let Record::Opened { name, .. } | Record::Closed { name, .. } = r
                    && let Some(q) = &hooks.position_events
                {
                    let _ = q.push((name, matches!(r, Record::Opened { .. })));
                }
                sink(r)
            });
            let t1 = clock::now_ns();
            t_prev = t1;
            let enq = e.stamp_ns + e.parse_ns as u64;
            st.ring_wait.record(t0.saturating_sub(enq));
            let d = t1.saturating_sub(t0);
            match e.kind {
                EventKind::Depth | EventKind::Snapshot | EventKind::Levels => st.book.record(d),
                EventKind::Trade => st.bars.record(d),
                _ => st.other.record(d),
            }
            st.compute.record(d);
            if v != Verdict::None || e.kind == EventKind::Trade || e.kind == EventKind::BookTicker {
                st.tick_to_decision.record(t1.saturating_sub(e.stamp_ns));
            }
        });
    }
    engine.stats.records_lost += lost;
    // End of input: close open positions (reason Shutdown) so every position has a complete PnL.
    let mut lost = 0u64;
    engine.shutdown(&mut |r: Record| {
        if !overflow.is_empty() || tx.push(r).is_err() {
            if overflow.len() < overflow_cap {
                overflow.push(r);
            } else {
                lost += 1;
            }
        }
    });
    engine.stats.records_lost += lost;
    // Final hand-over: the persistence thread drains until we drop the producer.
    while !overflow.is_empty() {
        let mut k = 0;
        while k < overflow.len() && tx.push(overflow[k]).is_ok() {
            k += 1;
        }
        overflow.drain(..k);
        if tx.is_abandoned() {
            engine.stats.records_lost += overflow.len() as u64;
            break;
        }
        std::thread::yield_now();
    }
    (engine, st)
}

struct Source {
    reader: LineReader,
    head: Vec<u8>,
    head_ts: i64,
    head_url_symbol: Option<SymbolName>,
    last_symbol: Option<SymbolName>,
    name_hint: Option<SymbolName>,
    recognised: u64,
    looked: u64,
    live: bool,
}

impl Source {
    /// Advances to the next data line; false at the end of the file.
    fn advance(&mut self, feed: &mut FeedStats) -> Result<bool, FeedError> {
        loop {
            let head = &mut self.head;
            let mut ts_out = 0;
            let mut sym_out = None;
            let got = self.reader.next_line(|line| {
                let c = classify(line);
                match c {
                    Line::Frame { ts_ns, json, url_symbol } => {
                        head.clear();
                        head.extend_from_slice(json);
                        ts_out = ts_ns;
                        sym_out = url_symbol;
                        1
                    }
                    Line::Skip => {
                        if line.is_empty() {
                            0
                        } else {
                            2
                        }
                    }
                    Line::Bad => 3,
                }
            })?;
            let Some(kind) = got else {
                self.live = false;
                return Ok(false);
            };
            feed.lines += 1;
            match kind {
                1 => {
                    self.recognised += 1;
                    self.head_ts = ts_out;
                    self.head_url_symbol = sym_out;
                    return Ok(true);
                }
                2 => {
                    self.recognised += 1;
                    feed.skipped_lines += 1;
                }
                3 => {
                    self.looked += 1;
                    feed.bad_lines += 1;
                    if self.looked == 1 {
                        eprintln!("warn: {}: unrecognised line (counted)", self.reader.path().display());
                    }
                    if self.recognised == 0 && self.looked >= crate::recording::reader::SNIFF_LINES {
                        return Err(FeedError::UnknownFormat {
                            path: self.reader.path().to_owned(),
                            sample: String::from("no line in a known recording format"),
                        });
                    }
                }
                _ => {
                    // Blank line or the remains of an oversize line (counted by the reader).
                    feed.skipped_lines += 1;
                }
            }
            if self.recognised == 0 && self.looked >= crate::recording::reader::SNIFF_LINES {
                return Err(FeedError::UnknownFormat {
                    path: self.reader.path().to_owned(),
                    sample: String::from("no line in a known recording format"),
                });
            }
        }
    }
}

fn run_source(
    mut parser: Parser,
    files: Vec<PathBuf>,
    max_line: usize,
    speed: Speed,
    mut publisher: Publisher,
) -> (Parser, FeedStats, Stage, Result<(), FeedError>) {
    let mut parse_stage = Stage::new("parse");
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut sources: Vec<Source> = Vec::with_capacity(files.len());
    let mut feed = FeedStats::default();
    let result = (|| -> Result<(), FeedError> {
        for f in &files {
            let reader = LineReader::open(f, max_line)?;
            sources.push(Source {
                reader,
                head: Vec::with_capacity(64 << 10),
                head_ts: 0,
                head_url_symbol: None,
                last_symbol: None,
                name_hint: symbol_from_file_name(f),
                recognised: 0,
                looked: 0,
                live: true,
            });
        }
        for s in sources.iter_mut() {
            s.advance(&mut feed)?;
        }
        let wall0 = Instant::now();
        let mut ts0: Option<i64> = None;
        // A progress bar on a terminal only (quiet under systemd, in pipes and in tests).
        let total: u64 = sources.iter().map(|s| s.reader.file_size).sum();
        let bar = (std::io::IsTerminal::is_terminal(&std::io::stderr()) && total > 0).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} replay [{bar:40}] {bytes}/{total_bytes} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        let mut frames_seen = 0u64;
        loop {
            frames_seen += 1;
            if let Some(b) = &bar
                && frames_seen.is_multiple_of(65_536)
            {
                b.set_position(
                    sources.iter().map(|s| s.reader.file_read.load(std::sync::atomic::Ordering::Relaxed)).sum(),
                );
                b.set_message(format!("{frames_seen} frames"));
            }
            // The source with the earliest head (ties: file order).
            let mut best: Option<usize> = None;
            for (i, s) in sources.iter().enumerate() {
                if s.live && best.is_none_or(|b| s.head_ts < sources[b].head_ts) {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            let s = &mut sources[i];
            if let Speed::Factor(f) = speed {
                let t0 = *ts0.get_or_insert(s.head_ts);
                let due = Duration::from_nanos(((s.head_ts - t0).max(0) as f64 / f) as u64);
                loop {
                    let now = wall0.elapsed();
                    if now >= due {
                        break;
                    }
                    let left = due - now;
                    if left > Duration::from_micros(200) {
                        std::thread::sleep(left - Duration::from_micros(100));
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
            let meta = FrameMeta {
                local_ts_ns: s.head_ts,
                stamp_ns: clock::now_ns(),
                snapshot_symbol: s.head_url_symbol.or(s.last_symbol).or(s.name_hint),
            };
            staging.clear();
            let ok = parser.parse_frame(&s.head, &meta, &mut staging).is_ok();
            let t = clock::now_ns();
            let parse_ns = t.saturating_sub(meta.stamp_ns);
            parse_stage.record(parse_ns);
            let parse_ns = parse_ns.min(u32::MAX as u64) as u32;
            for e in staging.iter_mut() {
                e.parse_ns = parse_ns;
            }
            if ok && let Some(last) = staging.last() {
                s.last_symbol = Some(parser.symbols().get(last.symbol).name);
            }
            if !publisher.publish(&staging) {
                break;
            }
            s.advance(&mut feed)?;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(())
    })();
    for s in &sources {
        feed.oversize_lines += s.reader.oversize_lines;
    }
    feed.ring_full = publisher.stats.ring_full;
    feed.frames_dropped = publisher.stats.frames_dropped;
    feed.events = publisher.stats.events;
    (parser, feed, parse_stage, result)
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
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            }
            .into());
        }
    }
    let specs = match &opts.exchange_info {
        Some(p) => load_exchange_info(p)?,
        None => Vec::new(),
    };
    // The database is opened (and its state loaded) before any thread starts: a locked, read-only or corrupt
    // database is an error before any trading.
    let mut engine = Engine::new(cfg.engine());
    let db = match &opts.db {
        Some(path) => {
            let mut db = Db::open(path)?;
            db.set_variants(&cfg.variant_names());
            engine.preload_hour_expectancy(db.load_hour_expectancy(cfg.gate.lookback_trades)?);
            let inputs: Vec<String> = opts.files.iter().map(|f| f.display().to_string()).collect();
            db.begin_run(env!("CARGO_PKG_VERSION"), &cfg.hash(), "replay", &inputs.join(" "))?;
            Some(db)
        }
        None => None,
    };
    let persist = Persist::open(opts.bars_csv.clone(), opts.signals_csv.clone(), db, cfg.persist.clone())?;
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let event_ring = cfg.pipeline.event_ring.max(MAX_EVENTS_PER_FRAME * 2);
    let (ev_tx, ev_rx) = ring::<MarketEvent>(event_ring);
    let (rec_tx, rec_rx) = ring::<Record>(cfg.pipeline.record_ring);
    let publisher = Publisher::new(ev_tx, FullPolicy::Spin, cfg.parser.max_symbols);
    let waiter = publisher.waiter();
    let max_line = cfg.parser.max_frame_bytes + 64;
    let started = Instant::now();
    let p = cfg.pipeline.clone();

    let persist_h = std::thread::Builder::new()
        .name("rusto-persist".into())
        .spawn(move || {
            pin(p.persist_core, "persist");
            persist.run(rec_rx)
        })
        .map_err(|e| ReplayError::Thread("persist", e.to_string()))?;
    let p = cfg.pipeline.clone();
    let overflow_cap = cfg.pipeline.record_ring;
    let compute_h = std::thread::Builder::new()
        .name("rusto-compute".into())
        .spawn(move || {
            pin(p.compute_core, "compute");
            run_compute(engine, ev_rx, rec_tx, p.idle_spins, overflow_cap, ComputeHooks::default(), waiter)
        })
        .map_err(|e| ReplayError::Thread("compute", e.to_string()))?;
    let p = cfg.pipeline.clone();
    let files = opts.files.clone();
    let speed = opts.speed;
    let net_h = std::thread::Builder::new()
        .name("rusto-net".into())
        .spawn(move || {
            pin(p.net_core, "net");
            run_source(parser, files, max_line, speed, publisher)
        })
        .map_err(|e| ReplayError::Thread("net", e.to_string()))?;

    let (parser, feed, parse_stage, feed_result) =
        net_h.join().map_err(|_| ReplayError::Thread("net", "panicked".into()))?;
    let (engine, st) = compute_h.join().map_err(|_| ReplayError::Thread("compute", "panicked".into()))?;
    let (persist, persist_result) = persist_h.join().map_err(|_| ReplayError::Thread("persist", "panicked".into()))?;
    let elapsed = started.elapsed();
    feed_result?;
    persist_result?;
    let latency = vec![
        ("parse", Summary::of(&parse_stage.hist)),
        ("ring_wait", Summary::of(&st.ring_wait.hist)),
        ("book", Summary::of(&st.book.hist)),
        ("bars", Summary::of(&st.bars.hist)),
        ("other", Summary::of(&st.other.hist)),
        ("signal", Summary::of(&engine.signal_stage.hist)),
        ("tuning", Summary::of(&engine.tuning_stage.hist)),
        ("entry", Summary::of(&engine.entry_stage.hist)),
        ("position", Summary::of(&engine.position_stage.hist)),
        ("compute", Summary::of(&st.compute.hist)),
        ("persist_commit", Summary::of(&persist.commit_stage.hist)),
        ("tick_to_decision", Summary::of(&st.tick_to_decision.hist)),
    ];
    Ok(ReplayReport {
        feed,
        parse: parser.stats.clone(),
        engine,
        run_id: persist.run_id(),
        persist: persist.stats,
        latency,
        elapsed,
        vwap_band_sigmas: cfg.profile.vwap_band_sigmas,
    })
}

fn interval_report(engine: &Engine, st: &ComputeStages) -> IntervalReport {
    IntervalReport {
        latency: st.summaries(engine),
        events: engine.stats.events,
        symbols: engine
            .symbols
            .iter()
            .map(|s| (s.name, s.trades, s.book.is_synced(), s.trader.position.is_some()))
            .collect(),
    }
}

impl ComputeStages {
    /// Percentiles of every compute-side stage, in print order.
    pub fn summaries(&self, engine: &Engine) -> Vec<(&'static str, Summary)> {
        vec![
            ("ring_wait", Summary::of(&self.ring_wait.hist)),
            ("book", Summary::of(&self.book.hist)),
            ("bars", Summary::of(&self.bars.hist)),
            ("other", Summary::of(&self.other.hist)),
            ("signal", Summary::of(&engine.signal_stage.hist)),
            ("tuning", Summary::of(&engine.tuning_stage.hist)),
            ("entry", Summary::of(&engine.entry_stage.hist)),
            ("position", Summary::of(&engine.position_stage.hist)),
            ("compute", Summary::of(&self.compute.hist)),
            ("tick_to_decision", Summary::of(&self.tick_to_decision.hist)),
        ]
    }
}

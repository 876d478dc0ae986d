//! The recording source of a replay: reads one or more recordings, merges them by local time, paces them
//! ([`Speed`]), parses each frame and publishes its events, exactly as the network thread does live.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::handoff::publish::{FeedStats, Publisher};
use crate::ingest::parse::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use crate::recording::cache::{CacheWriter, EventCache};
use crate::recording::reader::{FeedError, Line, LineReader, Rejected, classify, symbol_from_file_name};
use crate::recording::window::TimeWindow;
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::latency::Stage;
use crate::types::symbols::SymbolName;

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

struct Source {
    reader: LineReader,
    head: Vec<u8>,
    head_ts: i64,
    head_url_symbol: Option<SymbolName>,
    last_symbol: Option<SymbolName>,
    name_hint: Option<SymbolName>,
    recognised: u64,
    looked: u64,
    /// Frames of this file the parser accepted.
    frames_ok: u64,
    /// Frames of this file the parser refused.
    malformed: u64,
    max_line: usize,
    live: bool,
}

/// What the line just read was (the line itself is only borrowed inside the reader's callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// A frame, now in `head` (with its stamp and URL symbol).
    Frame { ts_ns: i64, url_symbol: Option<SymbolName> },
    /// A recognised line without a frame (a connection header, the configuration).
    Skip,
    /// A line in no known format.
    Bad,
    /// A blank line or the remains of an oversize line (counted by the reader).
    Blank,
}

impl Source {
    fn open(path: &Path, max_line: usize) -> Result<Self, FeedError> {
        Ok(Source {
            reader: LineReader::open(path, max_line)?,
            head: Vec::with_capacity(64 << 10),
            head_ts: 0,
            head_url_symbol: None,
            last_symbol: None,
            name_hint: symbol_from_file_name(path),
            recognised: 0,
            looked: 0,
            frames_ok: 0,
            malformed: 0,
            max_line,
            live: true,
        })
    }

    /// Reads the next line, copying a frame into `head`; `None` at the end of the file.
    fn next_kind(&mut self) -> Result<Option<LineKind>, FeedError> {
        let head = &mut self.head;
        self.reader.next_line(|line| match classify(line) {
            Line::Frame { ts_ns, json, url_symbol } => {
                head.clear();
                head.extend_from_slice(json);
                LineKind::Frame { ts_ns, url_symbol }
            }
            Line::Skip if line.is_empty() => LineKind::Blank,
            Line::Skip => LineKind::Skip,
            Line::Bad => LineKind::Bad,
        })
    }

    /// Advances to the next data line; false at the end of the file.
    fn advance(&mut self, feed: &mut FeedStats) -> Result<bool, FeedError> {
        loop {
            let Some(kind) = self.next_kind()? else {
                self.live = false;
                return self.check_end().map(|()| false);
            };
            feed.lines += 1;
            match kind {
                LineKind::Frame { ts_ns, url_symbol } => {
                    self.recognised += 1;
                    self.head_ts = ts_ns;
                    self.head_url_symbol = url_symbol;
                    return Ok(true);
                }
                LineKind::Skip => {
                    self.recognised += 1;
                    feed.skipped_lines += 1;
                }
                LineKind::Bad => {
                    self.looked += 1;
                    feed.bad_lines += 1;
                    if self.looked == 1 {
                        log::warn!("{}: unrecognised line (counted)", self.reader.path().display());
                    }
                }
                LineKind::Blank => feed.skipped_lines += 1,
            }
            if self.recognised == 0 && self.looked >= crate::recording::reader::SNIFF_LINES {
                return Err(FeedError::UnknownFormat { path: self.reader.path().to_owned(), lines: self.looked });
            }
        }
    }
}

impl Source {
    /// At the end of the file (every frame of it published): lines but not one valid frame is an error.
    fn check_end(&self) -> Result<(), FeedError> {
        let rejected = Rejected {
            bad: self.looked,
            oversize: self.reader.oversize_lines,
            malformed: self.malformed,
            max_line: self.max_line,
        };
        if self.frames_ok == 0 && rejected.total() > 0 {
            return Err(FeedError::NoValidFrame { path: self.reader.path().to_owned(), rejected });
        }
        Ok(())
    }
}

/// Refuses a file given twice under any name (same device and inode on Unix, same canonical path elsewhere).
pub(crate) fn check_distinct(files: &[PathBuf]) -> Result<(), FeedError> {
    let mut seen: Vec<(FileKey, &PathBuf)> = Vec::with_capacity(files.len());
    for f in files {
        let key = FileKey::of(f)?;
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            return Err(FeedError::SameFile { path: f.clone(), first: (*first).clone() });
        }
        seen.push((key, f));
    }
    Ok(())
}

/// What identifies a file whatever name it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileKey {
    /// Device and inode.
    #[cfg(unix)]
    Inode(u64, u64),
    /// The canonical path.
    #[cfg(not(unix))]
    Canonical(PathBuf),
}

impl FileKey {
    fn of(path: &Path) -> Result<Self, FeedError> {
        let open = |cause| FeedError::Open { path: path.to_owned(), cause };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).map_err(open)?;
            Ok(FileKey::Inode(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            Ok(FileKey::Canonical(std::fs::canonicalize(path).map_err(open)?))
        }
    }
}

/// A progress bar on a terminal only (quiet under systemd, in pipes and in tests).
fn progress_bar(sources: &[Source]) -> Option<indicatif::ProgressBar> {
    let total: u64 = sources.iter().map(|s| s.reader.file_size).sum();
    (std::io::IsTerminal::is_terminal(&std::io::stderr()) && total > 0).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} replay [{bar:40}] {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

/// The live source with the earliest head (ties: file order).
fn earliest(sources: &[Source]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, s) in sources.iter().enumerate() {
        if s.live && best.is_none_or(|b| s.head_ts < sources[b].head_ts) {
            best = Some(i);
        }
    }
    best
}

/// Waits until a frame stamped `head_ts` is due: (`head_ts` − `ts0`) / factor after `wall0`.
fn pace(factor: f64, wall0: Instant, ts0: i64, head_ts: i64) {
    let due = Duration::from_nanos(((head_ts - ts0).max(0) as f64 / factor) as u64);
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

/// The recording thread's state (fields drop in order: the readers before the publisher, as before the split).
struct SourceRun {
    sources: Vec<Source>,
    staging: Vec<MarketEvent>,
    feed: FeedStats,
    parse_stage: Stage,
    parser: Parser,
    publisher: Publisher,
    /// The event cache being written (`--cache`), fed every published frame.
    cache: Option<CacheWriter>,
    /// The replay's window: reading stops at its end.
    window: TimeWindow,
}

/// Whether the consumer still takes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    ConsumerGone,
}

impl SourceRun {
    /// Parses the head frame of source `i` and publishes its events.
    fn publish_head(&mut self, i: usize) -> Flow {
        let s = &mut self.sources[i];
        let meta = FrameMeta {
            local_ts_ns: s.head_ts,
            stamp_ns: clock::now_ns(),
            snapshot_symbol: s.head_url_symbol.or(s.last_symbol).or(s.name_hint),
        };
        self.staging.clear();
        // A frame that fails to parse is counted by the parser (its `malformed` counters).
        let ok = self.parser.parse_frame(&s.head, &meta, &mut self.staging).is_ok();
        if ok {
            s.frames_ok += 1;
        } else {
            s.malformed += 1;
        }
        let parse_ns = clock::now_ns().saturating_sub(meta.stamp_ns);
        self.parse_stage.record(parse_ns);
        let parse_ns = parse_ns.min(u32::MAX as u64) as u32;
        for e in self.staging.iter_mut() {
            e.parse_ns = parse_ns;
        }
        if ok && let Some(last) = self.staging.last() {
            s.last_symbol = Some(self.parser.symbols().get(last.symbol).name);
        }
        if !self.publisher.publish(&self.staging) {
            return Flow::ConsumerGone;
        }
        if let Some(w) = self.cache.as_mut() {
            w.frame(s.head_ts, &self.staging);
        }
        Flow::Continue
    }

    /// Opens the files, then merges, paces, parses and publishes until every file ends or the consumer is gone.
    fn run(&mut self, files: &[PathBuf], max_line: usize, speed: Speed) -> Result<(), FeedError> {
        for f in files {
            self.sources.push(Source::open(f, max_line)?);
        }
        for s in self.sources.iter_mut() {
            s.advance(&mut self.feed)?;
        }
        let wall0 = Instant::now();
        let mut ts0: Option<i64> = None;
        let bar = progress_bar(&self.sources);
        let mut frames_seen = 0u64;
        loop {
            frames_seen += 1;
            if let Some(b) = &bar
                && frames_seen.is_multiple_of(65_536)
            {
                b.set_position(
                    self.sources.iter().map(|s| s.reader.file_read.load(std::sync::atomic::Ordering::Relaxed)).sum(),
                );
                b.set_message(format!("{frames_seen} frames"));
            }
            let Some(i) = earliest(&self.sources) else { break };
            if self.window.ended(self.sources[i].head_ts) {
                // The rest is past `--until`: an incomplete stream is never cached.
                self.cache = None;
                break;
            }
            if let Speed::Factor(f) = speed {
                let head_ts = self.sources[i].head_ts;
                pace(f, wall0, *ts0.get_or_insert(head_ts), head_ts);
            }
            if self.publish_head(i) == Flow::ConsumerGone {
                // An incomplete stream is never cached.
                self.cache = None;
                break;
            }
            self.sources[i].advance(&mut self.feed)?;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        Ok(())
    }
}

#[cfg(test)]
/// The recording thread: merges `files` by local time, paces them, parses every frame and publishes its events;
/// returns the parser (with its counters), the feed counters, the parse latency and how reading ended.
pub(crate) fn run_source(
    parser: Parser,
    files: Vec<PathBuf>,
    max_line: usize,
    speed: Speed,
    publisher: Publisher,
) -> (Parser, FeedStats, Stage, Result<(), FeedError>) {
    let (parser, feed, stage, result, _) =
        run_source_caching(parser, files, max_line, speed, publisher, None, TimeWindow::default());
    (parser, feed, stage, result)
}

/// [`run_source`] that also feeds every published frame to `cache`, handed back when the whole stream was read,
/// and stops at the end of `window`.
pub(crate) fn run_source_caching(
    parser: Parser,
    files: Vec<PathBuf>,
    max_line: usize,
    speed: Speed,
    publisher: Publisher,
    cache: Option<CacheWriter>,
    window: TimeWindow,
) -> (Parser, FeedStats, Stage, Result<(), FeedError>, Option<CacheWriter>) {
    let mut run = SourceRun {
        parser,
        publisher,
        parse_stage: Stage::new("parse"),
        staging: Vec::with_capacity(MAX_EVENTS_PER_FRAME),
        sources: Vec::with_capacity(files.len()),
        feed: FeedStats::default(),
        cache,
        window,
    };
    let result = run.run(&files, max_line, speed);
    let cache = if result.is_ok() { run.cache.take() } else { None };
    let mut feed = run.feed;
    for s in &run.sources {
        feed.oversize_lines += s.reader.oversize_lines;
    }
    feed.ring_full = run.publisher.stats.ring_full;
    feed.frames_dropped = run.publisher.stats.frames_dropped;
    feed.events = run.publisher.stats.events;
    (run.parser, feed, run.parse_stage, result, cache)
}

/// The recording thread of a cache replay: pushes each cached frame's events into the ring, paced like a parse
/// replay, stamped when taken out of the map (the `parse` stage times that copy). Returns the publisher's counters
/// (the line counters come from the cache) and the stage.
pub fn run_cache(cache: &EventCache, speed: Speed, mut publisher: Publisher) -> (FeedStats, Stage) {
    let mut stage = Stage::new("parse");
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let events = cache.events();
    let (wall0, mut ts0, mut pos) = (Instant::now(), None, 0usize);
    for i in 0..cache.n_frames() {
        let (local_ts_ns, n) = cache.frame(i);
        if let Speed::Factor(f) = speed {
            pace(f, wall0, *ts0.get_or_insert(local_ts_ns), local_ts_ns);
        }
        let stamp_ns = clock::now_ns();
        staging.clear();
        staging.extend_from_slice(&events[pos..pos + n]);
        pos += n;
        let parse_ns = clock::now_ns().saturating_sub(stamp_ns);
        stage.record(parse_ns);
        let parse_ns = parse_ns.min(u32::MAX as u64) as u32;
        for e in staging.iter_mut() {
            e.stamp_ns = stamp_ns;
            e.parse_ns = parse_ns;
        }
        if !publisher.publish(&staging) {
            break;
        }
    }
    let feed = FeedStats {
        ring_full: publisher.stats.ring_full,
        frames_dropped: publisher.stats.frames_dropped,
        events: publisher.stats.events,
        ..FeedStats::default()
    };
    (feed, stage)
}

//! The recording source of a replay: reads one or more recordings, merges them by local time, paces them
//! ([`Speed`]), parses each frame and publishes its events, exactly as the network thread does live.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::handoff::publish::{FeedStats, Publisher};
use crate::ingest::parse::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use crate::recording::reader::{FeedError, Line, LineReader, classify, symbol_from_file_name};
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

/// The recording thread: merges `files` by local time, paces them, parses every frame and publishes its events;
/// returns the parser (with its counters), the feed counters, the parse latency and how reading ended.
pub fn run_source(
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

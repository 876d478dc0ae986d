//! The process's logger behind the `log` facade: levels, UTC timestamps, a `RUST_LOG`-style filter, and no thread
//! that ever blocks on stderr.
//!
//! Contracts:
//! - `log::warn!` (and the other macros) format the line into a fixed-size buffer on the calling thread (no
//!   allocation; a longer line is cut and marked `…`) and push it into a bounded queue; a dedicated thread drains
//!   the queue to stderr. A full queue drops the line and counts it ([`Logger::dropped`]); the count is reported by
//!   the drain thread as soon as there is room again, so loss is never silent.
//! - Format on a terminal or in a pipe: `2026-12-01T11:27:56.123Z WARN  rusto::ingest::net: message`. Under systemd
//!   (`$JOURNAL_STREAM` set) each line starts with the syslog priority `<4>` instead, and journald adds the time.
//! - Filter: `$RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`, `off`; a `target=level` list is accepted and
//!   its entries for `rusto` decide; anything unreadable is reported once and `info` is used). Default `info`.
//! - [`flush`] drains everything queued so far (call it before exit).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrayvec::ArrayString;
use crossbeam_queue::ArrayQueue;
use log::{Level, LevelFilter, Log, Metadata, Record};

/// Longest line kept, in bytes (longer lines are cut).
pub(crate) const LINE_BYTES_MAX: usize = 512;
/// Lines that may wait for the drain thread.
pub(crate) const QUEUE_LINES_MAX: usize = 4096;

struct Line {
    level: Level,
    wall_ns: i64,
    text: ArrayString<LINE_BYTES_MAX>,
}

/// The installed logger.
pub(crate) struct Logger {
    queue: ArrayQueue<Line>,
    dropped: AtomicU64,
    journal: bool,
    draining: AtomicBool,
}

static LOGGER: OnceLock<Arc<Logger>> = OnceLock::new();

impl Logger {
    /// Lines lost to a full queue since start.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn write_line(&self, out: &mut impl std::io::Write, l: &Line) -> std::io::Result<()> {
        if self.journal {
            writeln!(out, "<{}>{}", syslog_priority(l.level), l.text)
        } else {
            writeln!(out, "{} {:<5} {}", Utc(l.wall_ns), l.level, l.text)
        }
    }

    /// Writes every queued line to stderr; true when any was written.
    fn drain(&self) -> bool {
        let stderr = std::io::stderr();
        let mut out = stderr.lock();
        let mut any = false;
        while let Some(l) = self.queue.pop() {
            any = true;
            // stderr gone (closed pipe): nothing else can report it; the line is lost by necessity.
            if self.write_line(&mut out, &l).is_err() {
                break;
            }
        }
        any
    }
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut text = ArrayString::<LINE_BYTES_MAX>::new();
        let mut w = Cut(&mut text, false);
        // A full buffer is not an error here: `Cut` keeps what fits and marks it.
        let _ = write!(w, "{}: {}", r.target(), r.args());
        let line = Line { level: r.level(), wall_ns: crate::types::clock::wall_ns(), text };
        if self.queue.push(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {
        self.drain();
    }
}

/// Writes into a fixed buffer, keeping what fits and ending a cut line with `…`.
struct Cut<'a>(&'a mut ArrayString<LINE_BYTES_MAX>, bool);

impl std::fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.1 {
            return Ok(());
        }
        if self.0.try_push_str(s).is_ok() {
            return Ok(());
        }
        let room = LINE_BYTES_MAX - self.0.len() - '…'.len_utf8();
        let mut end = room.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        while self.0.len() > LINE_BYTES_MAX - '…'.len_utf8() {
            self.0.pop();
        }
        self.0.push('…');
        self.1 = true;
        Ok(())
    }
}

fn syslog_priority(l: Level) -> u8 {
    match l {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Parses a `RUST_LOG`-style filter; the entry for `rusto` (or a bare level) decides.
pub(crate) fn parse_filter(spec: &str) -> Result<LevelFilter, String> {
    let mut level = None;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (target, lv) = match part.split_once('=') {
            Some((t, l)) => (Some(t.trim()), l.trim()),
            None => (None, part),
        };
        let parsed: LevelFilter = lv.parse().map_err(|_| format!("unknown level {lv:?} in RUST_LOG {spec:?}"))?;
        match target {
            None => level = level.or(Some(parsed)),
            Some(t) if t == "rusto" || t.starts_with("rusto::") => level = Some(parsed),
            Some(_) => {}
        }
    }
    Ok(level.unwrap_or(LevelFilter::Info))
}

/// Installs the logger and starts its drain thread (once per process; later calls do nothing).
pub fn init() {
    if LOGGER.get().is_some() {
        return;
    }
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger = Arc::new(Logger {
        queue: ArrayQueue::new(QUEUE_LINES_MAX),
        dropped: AtomicU64::new(0),
        journal,
        draining: AtomicBool::new(true),
    });
    if LOGGER.set(logger.clone()).is_err() || log::set_boxed_logger(Box::new(Shared(logger.clone()))).is_err() {
        return; // Another logger is installed (tests): keep it.
    }
    let (level, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) => match parse_filter(&spec) {
            Ok(l) => (l, None),
            Err(e) => (LevelFilter::Info, Some(e)),
        },
        Err(_) => (LevelFilter::Info, None),
    };
    log::set_max_level(level);
    if let Some(e) = bad {
        log::warn!("{e}; using info");
    }
    let spawned = std::thread::Builder::new().name("rusto-log".into()).spawn(move || drain_loop(&logger));
    if let Err(e) = spawned {
        // No drain thread: lines are written by `flush` only. Say so directly.
        eprintln!("warn: logger thread could not start ({e}); log lines are written at exit");
    }
}

fn drain_loop(logger: &Logger) {
    let mut reported = 0u64;
    while logger.draining.load(Ordering::Relaxed) {
        let wrote = logger.drain();
        let dropped = logger.dropped();
        if dropped > reported {
            reported = dropped;
            log::warn!("{dropped} log lines dropped so far (log queue full)");
        }
        if !wrote {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Writes every line queued so far to stderr (before exit).
pub fn flush() {
    if let Some(l) = LOGGER.get() {
        l.drain();
    }
}

struct Shared(Arc<Logger>);

impl Log for Shared {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn log(&self, r: &Record<'_>) {
        self.0.log(r)
    }
    fn flush(&self) {
        self.0.flush()
    }
}

/// A UTC timestamp with milliseconds (`2026-12-01T11:27:56.123Z`), formatted without allocation.
struct Utc(i64);

impl std::fmt::Display for Utc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.div_euclid(1_000_000);
        let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
        let (y, m, d) = crate::types::clock::civil_from_days(days);
        let s = ms_of_day / 1000;
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms_of_day % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(Utc(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2026-12-01T11:27:56.123Z
        assert_eq!(Utc(1_796_124_476_123_000_000).to_string(), "2026-12-01T11:27:56.123Z");
        assert_eq!(Utc(951_782_400_000 * 1_000_000).to_string(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn filters() {
        assert_eq!(parse_filter("debug"), Ok(LevelFilter::Debug));
        assert_eq!(parse_filter("hyper=trace,rusto=warn"), Ok(LevelFilter::Warn));
        assert_eq!(parse_filter("rusto::ingest=error"), Ok(LevelFilter::Error));
        assert_eq!(parse_filter("other=trace"), Ok(LevelFilter::Info));
        assert_eq!(parse_filter(""), Ok(LevelFilter::Info));
        assert!(parse_filter("loud").is_err());
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut s = ArrayString::<LINE_BYTES_MAX>::new();
        let mut w = Cut(&mut s, false);
        write!(w, "{}", "é".repeat(400)).unwrap();
        assert!(s.len() <= LINE_BYTES_MAX && s.ends_with('…'), "{}", s.len());
    }

    #[test]
    fn a_full_queue_counts_what_it_drops() {
        let l = Logger {
            queue: ArrayQueue::new(2),
            dropped: AtomicU64::new(0),
            journal: true,
            draining: AtomicBool::new(false),
        };
        log::set_max_level(LevelFilter::Info);
        for i in 0..5 {
            l.log(&Record::builder().level(Level::Warn).target("t").args(format_args!("line {i}")).build());
        }
        assert_eq!(l.dropped(), 3);
        let mut out = Vec::new();
        while let Some(x) = l.queue.pop() {
            l.write_line(&mut out, &x).unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "<4>t: line 0\n<4>t: line 1\n");
    }
}

//! Recording reader: files → timestamped frames, in the order a live run would have received them.
//!
//! Formats (detected per line, so a file may mix them):
//! - `<local ts> <raw frame>`: the recorder's and hftbacktest's format. The timestamp unit is told apart by its
//!   digit count: ≥ 18 digits ns, 15–17 µs, 12–14 ms, fewer s. REST snapshot bodies appear inline as bare frames.
//! - cryptofeed: `<unix s float>: <raw frame>`, REST bodies as `<url> -> <unix s float>: <body>` (the URL gives the
//!   snapshot's symbol), connection lines `<wss url> <-> <unix s float>` and `configuration: {...}` are skipped.
//!
//! A gzip file is recognised by its magic bytes. Each file is read and inflated on its own thread (zlib-rs) into
//! recycled 1 MiB chunks handed over by a bounded channel, so inflating overlaps with parsing and nothing is
//! allocated per line. Several files are merged by local timestamp (ties keep file order), so consecutive
//! recordings of one symbol replay as one stream and a cryptofeed `.ws.` file merges with its `.http.` snapshots.
//!
//! Limits: a line is at most `max_line_bytes`; a longer line is skipped to its end without being buffered and
//! counted. A file whose first [`SNIFF_LINES`] non-empty lines hold no recognisable line is rejected with
//! [`FeedError::UnknownFormat`].
//!
//! One rule for bad files: a file with lines but not one valid frame is an error, whatever its lines were (random
//! bytes, one 50 MB line, frames the parser refuses): [`FeedError::NoValidFrame`] names the file and counts the
//! lines rejected. A file with nothing to read (empty, blank lines, connection headers only) replays nothing and
//! is not an error: nothing in it was refused. A file with some valid frames replays them and counts the rest
//! (bad lines, oversize lines, malformed frames). The same file given twice, under any name (a symlink, a hard
//! link, another spelling of the path), is refused with [`FeedError::SameFile`]: merged with itself it would
//! count every event twice.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::types::symbols::SymbolName;

/// Chunk size handed from a reader thread to the parser.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight per file.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 4;
/// Lines looked at before a file with no recognisable line is rejected.
pub(crate) const SNIFF_LINES: u64 = 64;

/// Errors of the recording reader.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The file could not be opened.
    #[error("{path}: {cause}")]
    Open {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// Reading or inflating failed.
    #[error("{path}: read error: {msg}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        msg: String,
    },
    /// The file is not a recording in a format we know.
    #[error("{path}: not a recording in a known format (the first {lines} lines rejected: none is a recording line)")]
    UnknownFormat {
        /// File.
        path: PathBuf,
        /// Lines looked at, all rejected.
        lines: u64,
    },
    /// The file holds lines but not one valid frame: every line was rejected.
    #[error(
        "{path}: not one valid frame; lines rejected: {} ({} not in a recording format, {} longer than the \
         {}-byte line limit, {} malformed frames)",
        .rejected.total(), .rejected.bad, .rejected.oversize, .rejected.max_line, .rejected.malformed
    )]
    NoValidFrame {
        /// File.
        path: PathBuf,
        /// What was rejected.
        rejected: Rejected,
    },
    /// The same file was given twice (under the same or another name).
    #[error("{path}: the same file as {first} (given twice); pass each recording once")]
    SameFile {
        /// The second name of the file.
        path: PathBuf,
        /// The first name it was given under.
        first: PathBuf,
    },
}

/// The lines of one file that were rejected, by reason (for [`FeedError::NoValidFrame`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Lines in no recording format.
    pub bad: u64,
    /// Lines longer than the limit.
    pub oversize: u64,
    /// Frames the parser refused.
    pub malformed: u64,
    /// The line limit, in bytes.
    pub max_line: usize,
}

impl Rejected {
    /// All rejected lines.
    pub fn total(&self) -> u64 {
        self.bad + self.oversize + self.malformed
    }
}

/// One classified line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A frame with its local receive time.
    Frame {
        /// Local receive time, ns since the epoch.
        ts_ns: i64,
        /// The raw frame.
        json: &'a [u8],
        /// Symbol from a REST URL (`symbol=`), if the line carried one.
        url_symbol: Option<SymbolName>,
    },
    /// A line that is not data (connection line, configuration, blank).
    Skip,
    /// A line we do not understand.
    Bad,
}

#[inline]
fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn parse_uint(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(v)
}

/// An integer timestamp whose unit is told by its digit count, in ns.
#[inline]
pub(crate) fn int_ts_to_ns(b: &[u8]) -> Option<i64> {
    let v = parse_uint(b)?;
    match b.len() {
        18.. => Some(v),
        15..=17 => v.checked_mul(1_000),
        12..=14 => v.checked_mul(1_000_000),
        _ => v.checked_mul(1_000_000_000),
    }
}

/// Seconds as a decimal (`1626992741.06217`) to ns, exactly (digits past the 9th decimal are dropped).
pub(crate) fn secs_to_ns(b: &[u8]) -> Option<i64> {
    let n = digits(b);
    let secs = parse_uint(&b[..n])?;
    let mut ns = secs.checked_mul(1_000_000_000)?;
    if n < b.len() {
        if b[n] != b'.' {
            return None;
        }
        let frac = &b[n + 1..];
        if frac.is_empty() || digits(frac) != frac.len() {
            return None;
        }
        let mut scale = 100_000_000i64;
        for &c in frac.iter().take(9) {
            ns = ns.checked_add((c - b'0') as i64 * scale)?;
            scale /= 10;
        }
    }
    Some(ns)
}

fn url_symbol(url: &[u8]) -> Option<SymbolName> {
    let i = memchr::memmem::find(url, b"symbol=")? + 7;
    let rest = &url[i..];
    let end = rest.iter().position(|&c| c == b'&').unwrap_or(rest.len());
    SymbolName::new(&rest[..end])
}

/// Classifies one line (without its newline).
#[inline]
pub fn classify(line: &[u8]) -> Line<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || line.iter().all(|c| c.is_ascii_whitespace()) {
        return Line::Skip;
    }
    let n = digits(line);
    if n > 0 {
        let rest = &line[n..];
        // `<int ts> <frame>`
        if rest.first() == Some(&b' ') {
            return match int_ts_to_ns(&line[..n]) {
                Some(ts_ns) => Line::Frame { ts_ns, json: &rest[1..], url_symbol: None },
                None => Line::Bad,
            };
        }
        // `<float s>: <frame>`
        if let Some(colon) = memchr::memchr(b':', line)
            && line.get(colon + 1) == Some(&b' ')
            && let Some(ts_ns) = secs_to_ns(&line[..colon])
        {
            return Line::Frame { ts_ns, json: &line[colon + 2..], url_symbol: None };
        }
        return Line::Bad;
    }
    if line.starts_with(b"http") {
        // `<url> -> <float s>: <body>`
        if let Some(arrow) = memchr::memmem::find(line, b" -> ") {
            let after = &line[arrow + 4..];
            if let Some(colon) = memchr::memchr(b':', after)
                && after.get(colon + 1) == Some(&b' ')
                && let Some(ts_ns) = secs_to_ns(&after[..colon])
            {
                return Line::Frame { ts_ns, json: &after[colon + 2..], url_symbol: url_symbol(&line[..arrow]) };
            }
        }
        return Line::Bad;
    }
    if (line.starts_with(b"wss://") || line.starts_with(b"ws://")) && memchr::memmem::find(line, b" <-> ").is_some() {
        return Line::Skip;
    }
    if line.starts_with(b"configuration: ") {
        return Line::Skip;
    }
    Line::Bad
}

/// A chunk of file bytes, or the end of the file, or an error.
enum Chunk {
    Data(Vec<u8>),
    End,
    Err(String),
}

/// Reads one file on its own thread and yields its lines.
pub struct LineReader {
    path: PathBuf,
    rx: Receiver<Chunk>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    carry: Vec<u8>,
    discarding: bool,
    done: bool,
    max_line: usize,
    thread: Option<JoinHandle<()>>,
    /// Lines longer than the limit (skipped).
    pub oversize_lines: u64,
    /// Bytes of the file read so far (compressed bytes for gzip), for progress bars.
    pub file_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Size of the file.
    pub file_size: u64,
}

/// Counts the bytes read from the file (for progress bars), shared with the parser side.
struct Counting<R> {
    inner: R,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.fetch_add(k as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(k)
    }
}

fn open_reader(
    path: &Path,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<Box<dyn Read + Send>, FeedError> {
    let mut f = File::open(path).map_err(|cause| FeedError::Open { path: path.to_owned(), cause })?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(|e| FeedError::Read { path: path.to_owned(), msg: e.to_string() })?;
    drop(f);
    let f = File::open(path).map_err(|cause| FeedError::Open { path: path.to_owned(), cause })?;
    let r = BufReader::with_capacity(1 << 18, Counting { inner: f, n: counter });
    if n == 2 && magic == [0x1f, 0x8b] { Ok(Box::new(flate2::read::MultiGzDecoder::new(r))) } else { Ok(Box::new(r)) }
}

/// The reader thread: fills free buffers from `src` and sends them, then the end or the error.
fn read_chunks(
    src: &mut Box<dyn Read + Send>,
    tx: &std::sync::mpsc::SyncSender<Chunk>,
    free: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = free.recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES));
        buf.clear();
        buf.resize(CHUNK_BYTES, 0);
        let mut filled = 0;
        let res = loop {
            match src.read(&mut buf[filled..]) {
                Ok(0) => break Ok(true),
                Ok(k) => {
                    filled += k;
                    if filled == buf.len() {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.to_string()),
            }
        };
        buf.truncate(filled);
        let msg = match res {
            Ok(eof) => {
                if filled > 0 && tx.send(Chunk::Data(buf)).is_err() {
                    return;
                }
                if !eof {
                    continue;
                }
                Chunk::End
            }
            Err(e) => {
                if filled > 0 && tx.send(Chunk::Data(buf)).is_err() {
                    return;
                }
                Chunk::Err(e)
            }
        };
        // Fails only when the LineReader is gone: then nobody waits for the end or the error.
        let _ = tx.send(msg);
        return;
    }
}

impl LineReader {
    /// Opens `path` and starts its reader thread.
    pub fn open(path: &Path, max_line: usize) -> Result<Self, FeedError> {
        if path.is_dir() {
            return Err(FeedError::Read { path: path.to_owned(), msg: "is a directory".into() });
        }
        let file_read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut src = open_reader(path, file_read.clone())?;
        let (tx, rx) = sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
        let (back, free) = sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
        for _ in 0..CHUNKS_IN_FLIGHT + 1 {
            // Cannot fail: the channel holds CHUNKS_IN_FLIGHT + 2 and its receiver is alive (`free`, below).
            let _ = back.try_send(Vec::with_capacity(CHUNK_BYTES));
        }
        let name = format!("read-{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let thread = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || read_chunks(&mut src, &tx, &free))
            .map_err(|e| FeedError::Read { path: path.to_owned(), msg: e.to_string() })?;
        Ok(LineReader {
            path: path.to_owned(),
            rx,
            back,
            cur: Vec::new(),
            pos: 0,
            carry: Vec::with_capacity(64 << 10),
            discarding: false,
            done: false,
            max_line,
            thread: Some(thread),
            oversize_lines: 0,
            file_read,
            file_size,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn next_chunk(&mut self) -> Result<bool, FeedError> {
        let old = std::mem::take(&mut self.cur);
        if old.capacity() > 0 {
            // Buffer recycling only: when the free list is full or the reader thread has ended, the buffer is
            // dropped and the reader allocates a new one.
            let _ = self.back.try_send(old);
        }
        self.pos = 0;
        match self.rx.recv() {
            Ok(Chunk::Data(b)) => {
                self.cur = b;
                Ok(true)
            }
            Ok(Chunk::End) | Err(_) => {
                self.done = true;
                Ok(false)
            }
            Ok(Chunk::Err(msg)) => {
                self.done = true;
                Err(FeedError::Read { path: self.path.clone(), msg })
            }
        }
    }

    /// Calls `f` with the next line (without `\n`); `Ok(false)` at the end of the file.
    pub fn next_line<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, FeedError> {
        self.carry.clear();
        loop {
            if self.pos >= self.cur.len() {
                if self.done || !self.next_chunk()? {
                    if self.carry.is_empty() {
                        return Ok(None);
                    }
                    let discarding = std::mem::replace(&mut self.discarding, false);
                    if discarding {
                        return Ok(Some(f(b"")));
                    }
                    return Ok(Some(f(&self.carry)));
                }
                continue;
            }
            let rest = &self.cur[self.pos..];
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.pos += i + 1;
                    if self.discarding {
                        self.discarding = false;
                        self.carry.clear();
                        return Ok(Some(f(b"")));
                    }
                    if self.carry.is_empty() {
                        let start = self.pos - i - 1;
                        if i > self.max_line {
                            self.oversize_lines += 1;
                            return Ok(Some(f(b"")));
                        }
                        return Ok(Some(f(&self.cur[start..start + i])));
                    }
                    if self.carry.len() + i > self.max_line {
                        self.oversize_lines += 1;
                        self.carry.clear();
                        return Ok(Some(f(b"")));
                    }
                    let start = self.pos - i - 1;
                    self.carry.extend_from_slice(&self.cur[start..start + i]);
                    return Ok(Some(f(&self.carry)));
                }
                None => {
                    if !self.discarding {
                        if self.carry.len() + rest.len() > self.max_line {
                            self.oversize_lines += 1;
                            self.discarding = true;
                            self.carry.clear();
                            self.carry.push(b' ');
                        } else {
                            self.carry.extend_from_slice(rest);
                        }
                    }
                    self.pos = self.cur.len();
                }
            }
        }
    }
}

impl Drop for LineReader {
    fn drop(&mut self) {
        // Unblock the reader thread (it may be waiting to send, or for a free buffer) and let it finish: with both
        // channels' other ends gone its next send fails and it returns.
        let (_tx, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        let (back, _free) = sync_channel(0);
        drop(std::mem::replace(&mut self.back, back));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            log::error!("{}: the reader thread panicked", self.path.display());
        }
    }
}

/// A symbol name guessed from a file name such as `btcusdt_20230404.dat.gz` (for bare snapshots).
pub fn symbol_from_file_name(path: &Path) -> Option<SymbolName> {
    let name = path.file_name()?.to_str()?;
    let stem: String = name.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    if stem.len() >= 5 && stem.chars().any(|c| c.is_ascii_alphabetic()) && stem.to_ascii_uppercase().ends_with("USDT") {
        SymbolName::new(stem.as_bytes())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_known_line_shape() {
        match classify(b"1680652700423575 {\"e\":1}") {
            Line::Frame { ts_ns, json, url_symbol: None } => {
                assert_eq!(ts_ns, 1_680_652_700_423_575_000);
                assert_eq!(json, b"{\"e\":1}");
            }
            other => panic!("{other:?}"),
        }
        match classify(b"1680652700423575123 {}") {
            Line::Frame { ts_ns, .. } => assert_eq!(ts_ns, 1_680_652_700_423_575_123),
            other => panic!("{other:?}"),
        }
        match classify(b"1626992741.06217: {\"a\":1}") {
            Line::Frame { ts_ns, json, .. } => {
                assert_eq!(ts_ns, 1_626_992_741_062_170_000);
                assert_eq!(json, b"{\"a\":1}");
            }
            other => panic!("{other:?}"),
        }
        match classify(b"https://fapi.binance.com/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000 -> 1626992741.301402: {}") {
            Line::Frame { ts_ns, url_symbol, .. } => {
                assert_eq!(ts_ns, 1_626_992_741_301_402_000);
                assert_eq!(url_symbol.unwrap().as_str(), "SUSHIUSDT");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(classify(b"wss://fstream.binance.com/stream?streams=a@b <-> 1626992740.179554"), Line::Skip);
        assert_eq!(classify(b"configuration: {\"x\":1}"), Line::Skip);
        assert_eq!(classify(b""), Line::Skip);
        assert_eq!(classify(b"hello world"), Line::Bad);
        assert_eq!(classify(b"12abc"), Line::Bad);
        assert_eq!(classify(b"99999999999999999999999 {}"), Line::Bad);
    }

    #[test]
    fn symbol_from_file_names() {
        assert_eq!(symbol_from_file_name(Path::new("x/btcusdt_20230404.dat.gz")).unwrap().as_str(), "BTCUSDT");
        assert!(symbol_from_file_name(Path::new("BINANCE_FUTURES.ws.1.0.txt")).is_none());
    }
}

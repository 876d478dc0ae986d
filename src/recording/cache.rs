//! The pre-parsed event cache of `rusto replay --cache DIR`.
//!
//! A parameter sweep replays the same recordings many times; inflating and parsing them is most of the replay's
//! cost. The first replay of a file set writes what the recording thread published — every frame's fixed 64-byte
//! [`MarketEvent`]s, exactly as pushed into the ring, with each frame's local time and event count — plus the
//! counters replay reports (feed lines, parser counters) and the parser's symbol table, to one file in DIR. Later
//! replays of the same inputs map that file (memmap2) and push its events straight into the ring.
//!
//! The timing fields of an event (`stamp_ns`, `parse_ns`) are not cached (written as 0): a cache replay stamps each
//! frame when it is pushed, and its `parse` stage times the copy out of the map (there is no parse).
//!
//! Layout (little-endian): a 128-byte header (magic, format and parser versions, the 128-bit key, total length,
//! section counts, checksum of everything after the header), then the events (64 bytes each, so they stay
//! 64-byte aligned in the map), the frames (local ts i64, event count u64), the symbols (name 16 bytes,
//! packed price and quantity scales, from-exchangeInfo flag, 0) and the counters ([`STATS_WORDS`] u64).
//!
//! Key: [`CACHE_FORMAT_VERSION`], [`PARSER_VERSION`], a hash of the parser's own sources (any edit of the parser,
//! the event layout or the recording reader invalidates every cache), the parser limits, the exchange specs the
//! parser starts with, and each input file's size and a hash of all its bytes, in order. The file is named after
//! the file set (its canonical paths), so changed inputs or config find a stale file under that name: counted,
//! logged and rebuilt. A file that is truncated, corrupt (checksum), of another version, or whose content fails
//! validation (event kinds, frame counts, symbol ids) is never trusted either. Files are written to a temporary
//! name and renamed into place. The hash is a fast non-cryptographic one: it detects corruption and changed
//! inputs, not an adversary who forges cache files.
//!
//! Limits: a cache holds at most [`MAX_CACHE_BYTES`]; a larger stream is replayed without writing a cache (logged).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::handoff::publish::FeedStats;
use crate::ingest::parse::{MAX_EVENTS_PER_FRAME, ParseError, ParseStats};
use crate::types::decimal::Scale;
use crate::types::event::{EventKind, MarketEvent};
use crate::types::symbols::{SymbolName, SymbolSpec, SymbolTable};

/// Version of the cache file layout.
pub(crate) const CACHE_FORMAT_VERSION: u32 = 1;
/// Bump on any change of what the parser produces that the source hash below would not see.
pub(crate) const PARSER_VERSION: u32 = 1;
/// Largest cache file written.
pub(crate) const MAX_CACHE_BYTES: u64 = 64 << 30;

const MAGIC: [u8; 8] = *b"RUSTOEVC";
const HEADER_BYTES: usize = 128;
const EVENT_BYTES: usize = 64;
const FRAME_BYTES: usize = 16;
const SYMBOL_BYTES: usize = 48;
/// Counter words: 4 feed counters, 12 parser counters, the malformed counters by kind.
pub(crate) const STATS_WORDS: usize = 16 + ParseError::KINDS;

/// The sources whose code decides the cached event stream.
const PARSER_SOURCES: &[&[u8]] = &[
    include_bytes!("../ingest/parse/mod.rs"),
    include_bytes!("../ingest/parse/fast.rs"),
    include_bytes!("../ingest/parse/fields.rs"),
    include_bytes!("../ingest/parse/shapes.rs"),
    include_bytes!("../ingest/parse/depth_shape.rs"),
    include_bytes!("../ingest/parse/swar.rs"),
    include_bytes!("../ingest/parse/tape.rs"),
    include_bytes!("../ingest/parse/exchange_info.rs"),
    include_bytes!("../types/event.rs"),
    include_bytes!("../types/decimal.rs"),
    include_bytes!("../types/symbols.rs"),
    include_bytes!("reader.rs"),
    include_bytes!("source.rs"),
    include_bytes!("cache.rs"),
];

// The event is plain data without padding: 8 + 8 + 8 + 4 + 2 + 1 + 1 + 32 bytes.
const _: () = assert!(std::mem::size_of::<MarketEvent>() == EVENT_BYTES);
const _: () = assert!(8 + 8 + 8 + 4 + 2 + 1 + 1 + 32 == EVENT_BYTES);
const KIND_OFFSET: usize = std::mem::offset_of!(MarketEvent, kind);
const SYMBOL_OFFSET: usize = std::mem::offset_of!(MarketEvent, symbol);

/// Errors of the event cache. None is fatal to a replay: it falls back to parsing (and rebuilds the cache).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No cache file for this file set yet.
    #[error("no cache file")]
    Missing,
    /// Reading, writing or mapping failed.
    #[error("{path}: {cause}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// The file was made from other inputs, another parser or another config.
    #[error("stale: made from other inputs, parser or config")]
    Stale,
    /// The file is not a valid cache (truncated, corrupt, another format version).
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    /// The event stream exceeds [`MAX_CACHE_BYTES`].
    #[error("event stream larger than {MAX_CACHE_BYTES} bytes: not cached")]
    TooLarge,
}

/// A fast 64-bit hash over 32-byte blocks in four lanes (each round a bijection of its lane, so any changed word
/// changes its lane), finished with the murmur3 avalanche. Streaming: `update` any split gives the same result.
#[derive(Clone)]
pub(crate) struct Hash64 {
    lanes: [u64; 4],
    buf: [u8; 32],
    n_buf: usize,
    total: u64,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Hash64 {
    pub(crate) fn new(seed: u64) -> Self {
        let s = fmix(seed ^ K2);
        Hash64 { lanes: [s, s ^ K1, s ^ K2, s.rotate_left(17)], buf: [0; 32], n_buf: 0, total: 0 }
    }

    #[inline]
    fn block(&mut self, b: &[u8]) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            *lane = (*lane ^ word(b, i)).wrapping_mul(K1).rotate_left(31);
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.n_buf > 0 {
            let take = (32 - self.n_buf).min(data.len());
            self.buf[self.n_buf..self.n_buf + take].copy_from_slice(&data[..take]);
            self.n_buf += take;
            data = &data[take..];
            if self.n_buf < 32 {
                return;
            }
            let b = self.buf;
            self.block(&b);
            self.n_buf = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.block(b);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.n_buf = rest.len();
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.update(&v.to_le_bytes());
    }

    pub(crate) fn finish(&self) -> u64 {
        let mut h = self.total.wrapping_mul(K2);
        let mut tail = [0u8; 32];
        tail[..self.n_buf].copy_from_slice(&self.buf[..self.n_buf]);
        for (i, lane) in self.lanes.iter().enumerate() {
            let l = (*lane ^ word(&tail, i)).wrapping_mul(K1).rotate_left(31);
            h = fmix(h ^ l).wrapping_add(K1);
        }
        fmix(h ^ self.n_buf as u64)
    }
}

/// The 128-bit key of a cache: what must be equal for its events to be those a parse would produce now.
pub(crate) type CacheKey = [u64; 2];

/// What the parser is configured with (part of the key).
pub(crate) struct ParseConfig<'a> {
    /// Symbols the table holds.
    pub max_symbols: usize,
    /// Largest frame parsed.
    pub max_frame_bytes: usize,
    /// Longest line read.
    pub max_line: usize,
    /// The exchange specs the parser starts with.
    pub specs: &'a [SymbolSpec],
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |cause| CacheError::Io { path: path.to_owned(), cause }
}

/// Hashes each input's bytes (and size) with the parser identity and config into the key.
pub(crate) fn cache_key(files: &[PathBuf], cfg: &ParseConfig<'_>) -> Result<CacheKey, CacheError> {
    let mut hs = [Hash64::new(1), Hash64::new(2)];
    let mut feed = |v: u64| hs.iter_mut().for_each(|h| h.u64(v));
    feed(CACHE_FORMAT_VERSION as u64);
    feed(PARSER_VERSION as u64);
    for src in PARSER_SOURCES {
        let mut h = Hash64::new(3);
        h.update(src);
        feed(h.finish());
    }
    feed(cfg.max_symbols as u64);
    feed(cfg.max_frame_bytes as u64);
    feed(cfg.max_line as u64);
    feed(cfg.specs.len() as u64);
    for s in cfg.specs {
        let mut name = [0u8; 16];
        name[..s.name.as_str().len()].copy_from_slice(s.name.as_str().as_bytes());
        feed(u64::from_le_bytes(name[..8].try_into().unwrap_or_default()));
        feed(u64::from_le_bytes(name[8..].try_into().unwrap_or_default()));
        feed(s.tick.pack() as u64);
        feed(s.step.pack() as u64);
        feed(s.price_precision as u64 | (s.qty_precision as u64) << 8);
    }
    feed(files.len() as u64);
    let mut buf = vec![0u8; 1 << 20];
    for f in files {
        let mut file = File::open(f).map_err(io_err(f))?;
        let mut h = Hash64::new(4);
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CacheError::Io { path: f.clone(), cause: e }),
            };
            size += n as u64;
            h.update(&buf[..n]);
        }
        feed(size);
        feed(h.finish());
    }
    Ok([hs[0].finish(), hs[1].finish()])
}

/// The cache file of a file set in `dir`: named after the inputs' canonical paths, in order.
pub(crate) fn cache_path(dir: &Path, files: &[PathBuf]) -> Result<PathBuf, CacheError> {
    let mut h = Hash64::new(5);
    for f in files {
        let c = std::fs::canonicalize(f).map_err(io_err(f))?;
        h.update(c.as_os_str().as_encoded_bytes());
        h.update(&[0]);
    }
    Ok(dir.join(format!("{:016x}.evc", h.finish())))
}

/// The raw bytes of an event.
#[inline]
fn event_bytes(e: &MarketEvent) -> &[u8] {
    // SAFETY: MarketEvent is repr(C), 64 bytes, and has no padding (asserted above), so every byte is initialised;
    // the slice borrows `e` for its lifetime.
    unsafe { std::slice::from_raw_parts((e as *const MarketEvent).cast::<u8>(), EVENT_BYTES) }
}

/// Writes a cache while the recording thread parses (see the module doc). Dropped unfinished, it removes its
/// temporary file.
pub(crate) struct CacheWriter {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    key: CacheKey,
    hash: Hash64,
    frames: Vec<u8>,
    n_events: u64,
    n_frames: u64,
    failed: Option<CacheError>,
}

impl CacheWriter {
    /// Starts a cache for `dest` (created with its directory) under a temporary name.
    pub(crate) fn create(dest: PathBuf, key: CacheKey) -> Result<Self, CacheError> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&[0u8; HEADER_BYTES]).map_err(io_err(&tmp))?;
        Ok(CacheWriter {
            file: Some(file),
            tmp,
            dest,
            key,
            hash: Hash64::new(6),
            frames: Vec::with_capacity(1 << 16),
            n_events: 0,
            n_frames: 0,
            failed: None,
        })
    }

    /// Appends one published frame: its local time and events (timing fields zeroed).
    pub(crate) fn frame(&mut self, local_ts_ns: i64, events: &[MarketEvent]) {
        if self.failed.is_some() {
            return;
        }
        let bytes = HEADER_BYTES as u64
            + (self.n_events + events.len() as u64) * EVENT_BYTES as u64
            + (self.n_frames + 1) * FRAME_BYTES as u64;
        if bytes > MAX_CACHE_BYTES {
            self.failed = Some(CacheError::TooLarge);
            return;
        }
        let Some(file) = self.file.as_mut() else { return };
        for e in events {
            let mut e = *e;
            e.stamp_ns = 0;
            e.parse_ns = 0;
            let b = event_bytes(&e);
            self.hash.update(b);
            if let Err(cause) = file.write_all(b) {
                self.failed = Some(CacheError::Io { path: self.tmp.clone(), cause });
                return;
            }
        }
        self.frames.extend_from_slice(&local_ts_ns.to_le_bytes());
        self.frames.extend_from_slice(&(events.len() as u64).to_le_bytes());
        self.n_events += events.len() as u64;
        self.n_frames += 1;
    }

    /// Writes the frames, symbols and counters and the header, then renames the file into place.
    pub(crate) fn finish(
        mut self,
        feed: &FeedStats,
        parse: &ParseStats,
        table: &SymbolTable,
    ) -> Result<PathBuf, CacheError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut tail = std::mem::take(&mut self.frames);
        for i in 0..table.len() {
            let e = table.get(i as u16);
            let mut name = [0u8; 16];
            name[..e.name.as_str().len()].copy_from_slice(e.name.as_str().as_bytes());
            tail.extend_from_slice(&name);
            for v in [pack(e.price), pack(e.qty), e.from_exchange_info as u64, 0] {
                tail.extend_from_slice(&v.to_le_bytes());
            }
        }
        for v in stats_words(feed, parse) {
            tail.extend_from_slice(&v.to_le_bytes());
        }
        self.hash.update(&tail);
        let len = HEADER_BYTES as u64 + self.n_events * EVENT_BYTES as u64 + tail.len() as u64;
        let header = header_bytes(&Header {
            key: self.key,
            len,
            n_events: self.n_events,
            n_frames: self.n_frames,
            n_symbols: table.len() as u64,
            checksum: self.hash.finish(),
        });
        let tmp = self.tmp.clone();
        let mut file = self.file.take().ok_or(CacheError::Corrupt("writer already finished"))?;
        file.write_all(&tail).map_err(io_err(&tmp))?;
        let mut file = file.into_inner().map_err(|e| CacheError::Io { path: tmp.clone(), cause: e.into_error() })?;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&tmp))?;
        file.write_all(&header).map_err(io_err(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &self.dest).map_err(io_err(&tmp))?;
        Ok(self.dest.clone())
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if self.tmp.exists() {
            // Best effort: a leftover temporary file is never read (only `<key>.evc` names are).
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn pack(s: Option<Scale>) -> u64 {
    s.map_or(0, |s| s.pack() as u64)
}

fn stats_words(feed: &FeedStats, p: &ParseStats) -> [u64; STATS_WORDS] {
    let mut w = [0u64; STATS_WORDS];
    let head = [
        feed.lines,
        feed.skipped_lines,
        feed.bad_lines,
        feed.oversize_lines,
        p.frames,
        p.trade,
        p.non_market_trade,
        p.depth,
        p.book_ticker,
        p.mark_price,
        p.snapshot,
        p.exchange_info,
        p.control,
        p.unknown_event,
        p.inferred_scales,
        p.fast_path,
    ];
    w[..16].copy_from_slice(&head);
    w[16..].copy_from_slice(&p.malformed);
    w
}

struct Header {
    key: CacheKey,
    len: u64,
    n_events: u64,
    n_frames: u64,
    n_symbols: u64,
    checksum: u64,
}

fn header_bytes(h: &Header) -> [u8; HEADER_BYTES] {
    let mut b = [0u8; HEADER_BYTES];
    b[..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&PARSER_VERSION.to_le_bytes());
    for (i, v) in [h.key[0], h.key[1], h.len, h.n_events, h.n_frames, h.n_symbols, h.checksum].iter().enumerate() {
        b[16 + i * 8..24 + i * 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// One symbol of the cached table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedSymbol {
    pub name: SymbolName,
    pub price: Option<Scale>,
    pub qty: Option<Scale>,
    pub from_exchange_info: bool,
}

/// A validated, mapped cache file.
pub struct EventCache {
    map: memmap2::Mmap,
    n_events: usize,
    n_frames: usize,
    n_symbols: usize,
}

impl EventCache {
    /// Maps and validates the cache at `path` for `key`; never returns a file it does not trust.
    pub(crate) fn open(path: &Path, key: &CacheKey, max_symbols: usize) -> Result<Self, CacheError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheError::Missing),
            Err(e) => return Err(CacheError::Io { path: path.to_owned(), cause: e }),
        };
        // SAFETY: the map is read-only and private to this process; cache files are only ever replaced by rename,
        // never written in place, so the mapped bytes do not change under us (a user truncating the file by hand
        // is outside this contract). Every byte is validated below before any of it is used.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
        let h = parse_header(&map, key)?;
        let tail_len = h.n_frames as usize * FRAME_BYTES + h.n_symbols as usize * SYMBOL_BYTES + STATS_WORDS * 8;
        let expect = HEADER_BYTES as u64 + h.n_events * EVENT_BYTES as u64 + tail_len as u64;
        if h.len != expect || map.len() as u64 != h.len {
            return Err(CacheError::Corrupt("length does not match the header (truncated?)"));
        }
        let mut hash = Hash64::new(6);
        hash.update(&map[HEADER_BYTES..]);
        if hash.finish() != h.checksum {
            return Err(CacheError::Corrupt("checksum mismatch"));
        }
        if map.as_ptr().align_offset(EVENT_BYTES) != 0 || h.n_symbols as usize > max_symbols {
            return Err(CacheError::Corrupt("unaligned map or too many symbols"));
        }
        let cache = EventCache {
            map,
            n_events: h.n_events as usize,
            n_frames: h.n_frames as usize,
            n_symbols: h.n_symbols as usize,
        };
        cache.validate()?;
        Ok(cache)
    }

    /// Checks what must hold before the bytes are viewed as events: valid kinds, symbol ids in the table, frame
    /// sizes the ring takes that add up to the event count.
    fn validate(&self) -> Result<(), CacheError> {
        let ev = &self.map[HEADER_BYTES..HEADER_BYTES + self.n_events * EVENT_BYTES];
        for e in ev.chunks_exact(EVENT_BYTES) {
            let symbol = u16::from_le_bytes([e[SYMBOL_OFFSET], e[SYMBOL_OFFSET + 1]]) as usize;
            // EventKind discriminants are 0..=Dropped (event.rs): any other byte would not be a valid enum.
            if e[KIND_OFFSET] > EventKind::Dropped as u8 || symbol >= self.n_symbols.max(1) {
                return Err(CacheError::Corrupt("invalid event"));
            }
        }
        let mut total = 0usize;
        for i in 0..self.n_frames {
            let n = self.frame(i).1;
            if n > MAX_EVENTS_PER_FRAME {
                return Err(CacheError::Corrupt("frame larger than the parser's largest"));
            }
            total += n;
        }
        if total != self.n_events {
            return Err(CacheError::Corrupt("frame sizes do not add up to the event count"));
        }
        Ok(())
    }

    fn tail_word(&self, off: usize) -> u64 {
        word(&self.map[..], off / 8)
    }

    /// Events in the cache.
    pub fn n_events(&self) -> usize {
        self.n_events
    }

    /// Frames in the cache.
    pub fn n_frames(&self) -> usize {
        self.n_frames
    }

    /// All events, as published (timing fields 0).
    pub fn events(&self) -> &[MarketEvent] {
        let bytes = &self.map[HEADER_BYTES..HEADER_BYTES + self.n_events * EVENT_BYTES];
        // SAFETY: the map is 64-byte aligned (page aligned, checked in open) and HEADER_BYTES is a multiple of 64, so
        // the pointer is aligned for MarketEvent; the length is n_events × 64 bytes inside the map; every kind byte
        // is a valid EventKind discriminant (validate) and every other field is a plain integer, so each 64-byte
        // record is a valid MarketEvent. The slice borrows the map, which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<MarketEvent>(), self.n_events) }
    }

    /// Frame `i`: its local time and event count.
    #[inline]
    pub fn frame(&self, i: usize) -> (i64, usize) {
        let off = HEADER_BYTES + self.n_events * EVENT_BYTES + i * FRAME_BYTES;
        (self.tail_word(off) as i64, self.tail_word(off + 8) as usize)
    }

    fn symbols_offset(&self) -> usize {
        HEADER_BYTES + self.n_events * EVENT_BYTES + self.n_frames * FRAME_BYTES
    }

    /// The parser's symbol table at the end of the cached parse, in id order.
    pub(crate) fn symbols(&self) -> Result<Vec<CachedSymbol>, CacheError> {
        (0..self.n_symbols)
            .map(|i| {
                let off = self.symbols_offset() + i * SYMBOL_BYTES;
                let raw = &self.map[off..off + 16];
                let len = raw.iter().position(|&c| c == 0).unwrap_or(16);
                let name = SymbolName::new(&raw[..len]).ok_or(CacheError::Corrupt("invalid symbol name"))?;
                Ok(CachedSymbol {
                    name,
                    price: Scale::unpack(self.tail_word(off + 16) as i64),
                    qty: Scale::unpack(self.tail_word(off + 24) as i64),
                    from_exchange_info: self.tail_word(off + 32) != 0,
                })
            })
            .collect()
    }

    /// The feed counters (lines) and parser counters of the cached parse.
    pub(crate) fn stats(&self) -> (FeedStats, ParseStats) {
        let off = self.symbols_offset() + self.n_symbols * SYMBOL_BYTES;
        let w = |i: usize| self.tail_word(off + i * 8);
        let feed =
            FeedStats { lines: w(0), skipped_lines: w(1), bad_lines: w(2), oversize_lines: w(3), ..Default::default() };
        let mut malformed = [0u64; ParseError::KINDS];
        for (k, m) in malformed.iter_mut().enumerate() {
            *m = w(16 + k);
        }
        let parse = ParseStats {
            frames: w(4),
            trade: w(5),
            non_market_trade: w(6),
            depth: w(7),
            book_ticker: w(8),
            mark_price: w(9),
            snapshot: w(10),
            exchange_info: w(11),
            control: w(12),
            unknown_event: w(13),
            malformed,
            inferred_scales: w(14),
            fast_path: w(15),
        };
        (feed, parse)
    }
}

fn parse_header(map: &[u8], key: &CacheKey) -> Result<Header, CacheError> {
    if map.len() < HEADER_BYTES {
        return Err(CacheError::Corrupt("shorter than the header"));
    }
    if map[..8] != MAGIC {
        return Err(CacheError::Corrupt("bad magic"));
    }
    let u32_at = |o: usize| u32::from_le_bytes([map[o], map[o + 1], map[o + 2], map[o + 3]]);
    if u32_at(8) != CACHE_FORMAT_VERSION || u32_at(12) != PARSER_VERSION {
        return Err(CacheError::Stale);
    }
    let w = |i: usize| word(map, 2 + i);
    if [w(0), w(1)] != *key {
        return Err(CacheError::Stale);
    }
    let h = Header { key: *key, len: w(2), n_events: w(3), n_frames: w(4), n_symbols: w(5), checksum: w(6) };
    let sane = h.n_events < MAX_CACHE_BYTES / EVENT_BYTES as u64
        && h.n_frames < MAX_CACHE_BYTES / FRAME_BYTES as u64
        && h.n_symbols <= u16::MAX as u64 + 1;
    if !sane {
        return Err(CacheError::Corrupt("counts out of range"));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {

    /// Every source file of the parser is in the cache key: a parser file added without being listed would let a
    /// cache built by an older parser be trusted.
    #[test]
    fn every_parser_source_is_in_the_key() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ingest/parse");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("parser source folder") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let bytes = std::fs::read(&path).expect("parser source");
                assert!(PARSER_SOURCES.contains(&&bytes[..]), "{} is not in PARSER_SOURCES", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 6, "only {seen} parser sources found in {dir}");
    }

    use super::*;

    #[test]
    fn hash_is_split_independent_and_sees_every_byte() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut a = Hash64::new(9);
        a.update(&data);
        let mut b = Hash64::new(9);
        for c in data.chunks(13) {
            b.update(c);
        }
        assert_eq!(a.finish(), b.finish());
        for i in [0, 31, 32, 500, 999] {
            let mut d = data.clone();
            d[i] ^= 1;
            let mut h = Hash64::new(9);
            h.update(&d);
            assert_ne!(h.finish(), a.finish(), "flip at {i}");
        }
        let mut short = Hash64::new(9);
        short.update(&data[..999]);
        assert_ne!(short.finish(), a.finish());
    }
}

//! `rusto import`: Binance's public historical files (data.binance.vision) → one replay file, merged by time.
//!
//! Inputs: the archive's `.zip` files as downloaded (each CSV entry read in place: the zip crate reads the central
//! directory, the entry is inflated with zlib-rs and its CRC-32 and size checked at its end), plain `.csv` or gzip.
//! Several files, days and kinds are merged by their row time into one stream (a k-way merge: one row per input is
//! held at a time, so memory is bounded by the number of inputs, at most [`MAX_INPUTS`], never by their size; ties
//! keep the input order). Kinds, told by the header or, without one, by the column count:
//! - `aggTrades`: `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker` → one
//!   `aggTrade` frame per row at its transact time.
//! - `trades`: `id,price,qty,quote_qty,time,is_buyer_maker` → one `trade` frame per row at its time. The archive
//!   has no print-type column, so a row is written as a `MARKET` print.
//! - `bookTicker`: `update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time`
//!   → `bookTicker` frames at their event time.
//!
//! The row time (ms) becomes the local receive time (ns). Prices and quantities are copied as the exact strings.
//! `trades` and `aggTrades` of one symbol are the same prints: given together they are refused (counted twice
//! otherwise). `bookDepth` holds depth aggregated by % distance from the price, not order book levels: refused.
//! The symbol comes from `--symbol` or the file name (`BTCUSDT-aggTrades-2024-01-01.zip`). Malformed rows are
//! counted and skipped (the first is shown); a row older than the previous row of its input is counted in
//! `out_of_order` and written where the merge puts it. Output is gzip when its name ends in `.gz`. A progress bar
//! (bytes of CSV read against the inputs' uncompressed sizes) is drawn on stderr when it is a terminal.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::types::symbols::SymbolName;

/// Inputs merged at once (each holds an open file and a read buffer of [`READ_BUF_BYTES`]).
pub(crate) const MAX_INPUTS: usize = 4096;
/// Read buffer per input.
const READ_BUF_BYTES: usize = 256 << 10;
/// Output is flushed to the writer in blocks of this size.
const OUT_BUF_BYTES: usize = 1 << 20;

/// Import errors.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// I/O on a file.
    #[error("{0}: {1}")]
    Io(String, String),
    /// No symbol known.
    #[error("{0}: cannot tell the symbol from the file name; pass --symbol")]
    NoSymbol(String),
    /// Unsupported file.
    #[error("{0}: {1}")]
    Unsupported(String, &'static str),
    /// Inputs that cannot go together.
    #[error("{0}")]
    Conflict(String),
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Rows converted.
    pub rows: u64,
    /// Rows skipped as malformed.
    pub malformed: u64,
    /// Header lines skipped.
    pub headers: u64,
    /// Rows older than the previous row of the same input (written anyway, where the merge puts them).
    pub out_of_order: u64,
    /// CSV inputs read (a zip entry is one input).
    pub inputs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    AggTrades,
    Trades,
    BookTicker,
}

fn symbol_from_name(path: &Path) -> Option<SymbolName> {
    let name = path.file_name()?.to_str()?;
    SymbolName::new(name.split(['-', '_', '.']).next()?.as_bytes())
}

fn is_int(s: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 19 && s.iter().all(|c| c.is_ascii_digit())
}

fn is_dec(s: &[u8]) -> bool {
    crate::types::decimal::parse_decimal(s).is_ok()
}

fn is_bool(s: &[u8]) -> bool {
    matches!(s, b"true" | b"false" | b"True" | b"False")
}

/// The value of a validated integer field (≤ 19 digits: fits).
fn int_value(s: &[u8]) -> u64 {
    s.iter().fold(0u64, |a, &c| a.wrapping_mul(10).wrapping_add(u64::from(c - b'0')))
}

/// The fields of a CSV row: the first eight, and how many there were.
struct Row<'a> {
    fields: [&'a [u8]; 8],
    count: usize,
}

impl<'a> Row<'a> {
    fn split(l: &'a [u8]) -> Self {
        let mut fields: [&[u8]; 8] = [&[]; 8];
        let mut count = 0;
        for part in l.split(|&c| c == b',') {
            if count < fields.len() {
                fields[count] = part;
            }
            count += 1;
        }
        Row { fields, count }
    }

    /// The kind a header line fixes (a line whose first field is not an integer).
    fn header_kind(&self, l: &[u8]) -> Option<Kind> {
        if is_int(self.fields[0]) {
            return None;
        }
        let h = String::from_utf8_lossy(l).to_ascii_lowercase();
        if h.contains("agg_trade_id") {
            Some(Kind::AggTrades)
        } else if h.contains("best_bid_price") {
            Some(Kind::BookTicker)
        } else if h.contains("quote_qty") && h.contains("is_buyer_maker") {
            Some(Kind::Trades)
        } else {
            None
        }
    }

    /// The kind of a file without a header, told by its first row.
    fn guess_kind(&self) -> Kind {
        match self.count {
            6 => Kind::Trades,
            7 if is_bool(self.fields[6]) => Kind::AggTrades,
            _ => Kind::BookTicker,
        }
    }

    fn is_valid(&self, kind: Kind) -> bool {
        let f = &self.fields;
        match kind {
            Kind::AggTrades => {
                self.count == 7
                    && is_int(f[0])
                    && is_dec(f[1])
                    && is_dec(f[2])
                    && is_int(f[3])
                    && is_int(f[4])
                    && is_int(f[5])
                    && is_bool(f[6])
            }
            Kind::Trades => {
                self.count == 6 && is_int(f[0]) && is_dec(f[1]) && is_dec(f[2]) && is_int(f[4]) && is_bool(f[5])
            }
            Kind::BookTicker => {
                self.count == 7 && is_int(f[0]) && f[1..5].iter().all(|x| is_dec(x)) && is_int(f[5]) && is_int(f[6])
            }
        }
    }

    /// The row's time field (ms), of a validated row.
    fn time(&self, kind: Kind) -> &'a [u8] {
        match kind {
            Kind::AggTrades => self.fields[5],
            Kind::Trades => self.fields[4],
            Kind::BookTicker => self.fields[6],
        }
    }

    /// Appends the row's frame line (`<ns> <json>\n`) to `out` (the fields are validated: ASCII).
    fn write_frame(&self, kind: Kind, symbol: &str, out: &mut Vec<u8>) {
        let f = &self.fields;
        let s = symbol.as_bytes();
        let maker = |b: &[u8]| -> &'static [u8] { if b[0] == b't' || b[0] == b'T' { b"true" } else { b"false" } };
        match kind {
            Kind::AggTrades => {
                let keys = [("E", f[5], false), ("a", f[0], false), ("s", s, true), ("p", f[1], true)];
                let rest = [("q", f[2], true), ("f", f[3], false), ("l", f[4], false), ("T", f[5], false)];
                let m = [("m", maker(f[6]), false)];
                push_frame(out, f[5], "aggTrade", keys.iter().chain(&rest).chain(&m));
            }
            Kind::Trades => {
                let keys = [("E", f[4], false), ("T", f[4], false), ("s", s, true), ("t", f[0], false)];
                let rest = [("p", f[1], true), ("q", f[2], true), ("X", b"MARKET", true), ("m", maker(f[5]), false)];
                push_frame(out, f[4], "trade", keys.iter().chain(&rest));
            }
            Kind::BookTicker => {
                let keys = [("u", f[0], false), ("s", s, true), ("b", f[1], true), ("B", f[2], true)];
                let rest = [("a", f[3], true), ("A", f[4], true), ("T", f[5], false), ("E", f[6], false)];
                push_frame(out, f[6], "bookTicker", keys.iter().chain(&rest));
            }
        }
    }
}

/// `<ts_ms>000000 {"e":"<event>","k":v,...}\n`, strings quoted when the flag says so.
fn push_frame<'a>(
    out: &mut Vec<u8>,
    ts_ms: &[u8],
    event: &str,
    fields: impl Iterator<Item = &'a (&'a str, &'a [u8], bool)>,
) {
    out.extend_from_slice(ts_ms);
    out.extend_from_slice(b"000000 {\"e\":\"");
    out.extend_from_slice(event.as_bytes());
    out.push(b'"');
    for &(k, v, quoted) in fields {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        if quoted {
            out.push(b'"');
        }
        out.extend_from_slice(v);
        if quoted {
            out.push(b'"');
        }
    }
    out.extend_from_slice(b"}\n");
}

/// One CSV stream to read: a plain or gzip file, or one entry of a zip archive.
struct Input {
    name: String,
    reader: Box<dyn Read>,
    /// Uncompressed size, when known (plain files and zip entries).
    size: Option<u64>,
}

/// A zip entry's bytes, with its CRC-32 and size checked when it ends.
struct ZipEntry {
    inner: Box<dyn Read>,
    crc: flate2::Crc,
    read: u64,
    want_crc: u32,
    want_size: u64,
}

impl Read for ZipEntry {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 && !buf.is_empty() && (self.crc.sum() != self.want_crc || self.read != self.want_size) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "zip entry CRC-32 or size mismatch"));
        }
        Ok(n)
    }
}

/// The CSV entries of a zip archive, each read in place from its own file handle.
fn open_zip(path: &Path, name: &str) -> Result<Vec<Input>, ImportError> {
    let io = |e: std::io::Error| ImportError::Io(name.to_owned(), e.to_string());
    let zerr = |e: zip::result::ZipError| ImportError::Io(name.to_owned(), e.to_string());
    let mut ar = zip::ZipArchive::new(File::open(path).map_err(io)?).map_err(zerr)?;
    let mut out = Vec::new();
    for i in 0..ar.len() {
        let e = ar.by_index_raw(i).map_err(zerr)?;
        if e.is_dir() {
            continue;
        }
        if e.encrypted() {
            return Err(ImportError::Unsupported(name.to_owned(), "an encrypted zip entry"));
        }
        let ename = format!("{name}:{}", e.name().map_err(zerr)?);
        let start = e.data_start().ok_or_else(|| ImportError::Io(ename.clone(), "no data offset".into()))?;
        let (method, csize, size, crc) = (e.compression(), e.compressed_size(), e.size(), e.crc32());
        drop(e);
        let mut f = File::open(path).map_err(io)?;
        f.seek(SeekFrom::Start(start)).map_err(io)?;
        let raw = f.take(csize);
        let inner: Box<dyn Read> = match method {
            zip::CompressionMethod::Stored => Box::new(raw),
            zip::CompressionMethod::Deflated => Box::new(flate2::read::DeflateDecoder::new(raw)),
            _ => return Err(ImportError::Unsupported(ename, "a zip entry neither stored nor deflated")),
        };
        let reader = Box::new(ZipEntry { inner, crc: flate2::Crc::new(), read: 0, want_crc: crc, want_size: size });
        out.push(Input { name: ename, reader, size: Some(size) });
    }
    Ok(out)
}

/// Opens an input: a zip archive (its entries), gzip or plain.
fn open_input(path: &Path, name: &str) -> Result<Vec<Input>, ImportError> {
    let io = |e: std::io::Error| ImportError::Io(name.to_owned(), e.to_string());
    let mut f = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match f.read(&mut magic[got..]).map_err(io)? {
            0 => break,
            n => got += n,
        }
    }
    if got == 2 && magic == *b"PK" {
        return open_zip(path, name);
    }
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let (reader, size): (Box<dyn Read>, _) = if got == 2 && magic == [0x1f, 0x8b] {
        (Box::new(flate2::read::MultiGzDecoder::new(f)), None)
    } else {
        (Box::new(f), Some(len))
    };
    Ok(vec![Input { name: name.to_owned(), reader, size }])
}

/// One input in the merge: its current row, and where it stands.
struct Source {
    name: String,
    sym: SymbolName,
    kind: Option<Kind>,
    r: BufReader<Box<dyn Read>>,
    line: Vec<u8>,
    /// Length of the current row in `line` (line ending stripped).
    end: usize,
    /// Time of the current row (ms).
    ts_ms: u64,
    read_bytes: u64,
}

impl Source {
    fn new(input: Input, sym: SymbolName) -> Self {
        Source {
            name: input.name,
            sym,
            kind: None,
            r: BufReader::with_capacity(READ_BUF_BYTES, input.reader),
            line: Vec::with_capacity(256),
            end: 0,
            ts_ms: 0,
            read_bytes: 0,
        }
    }

    /// Reads to the next valid row (headers and malformed rows counted); false at the end of the input.
    fn advance(&mut self, st: &mut ImportStats) -> Result<bool, ImportError> {
        loop {
            self.line.clear();
            let n = self
                .r
                .read_until(b'\n', &mut self.line)
                .map_err(|e| ImportError::Io(self.name.clone(), e.to_string()))?;
            if n == 0 {
                return Ok(false);
            }
            self.read_bytes += n as u64;
            let l = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            if l.is_empty() {
                continue;
            }
            let row = Row::split(l);
            if let Some(k) = row.header_kind(l) {
                self.kind = Some(k);
                st.headers += 1;
                continue;
            }
            let kd = *self.kind.get_or_insert_with(|| row.guess_kind());
            if !row.is_valid(kd) {
                st.malformed += 1;
                if st.malformed == 1 {
                    let shown = String::from_utf8_lossy(&l[..l.len().min(120)]);
                    log::warn!("{}: malformed row skipped (counted): {shown}", self.name);
                }
                continue;
            }
            let ts_ms = int_value(row.time(kd));
            if ts_ms < self.ts_ms {
                st.out_of_order += 1;
            }
            self.ts_ms = ts_ms;
            self.end = l.len();
            return Ok(true);
        }
    }

    /// Appends the current row's frame.
    fn write(&self, out: &mut Vec<u8>) {
        if let Some(k) = self.kind {
            Row::split(&self.line[..self.end]).write_frame(k, self.sym.as_str(), out);
        }
    }
}

/// Refuses `trades` and `aggTrades` of one symbol together: they are the same prints.
fn check_conflicts(sources: &[Source]) -> Result<(), ImportError> {
    for a in sources.iter().filter(|s| s.kind == Some(Kind::Trades)) {
        if let Some(b) = sources.iter().find(|b| b.kind == Some(Kind::AggTrades) && b.sym == a.sym) {
            return Err(ImportError::Conflict(format!(
                "{} (trades) and {} (aggTrades) hold the same prints of {}: import one of them",
                a.name,
                b.name,
                a.sym.as_str()
            )));
        }
    }
    Ok(())
}

/// The k-way merge of the sources by row time (ties keep input order) into `out`.
fn merge(
    sources: &mut [Source],
    out: &mut dyn Write,
    st: &mut ImportStats,
    bar: &indicatif::ProgressBar,
) -> Result<(), ImportError> {
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        if s.advance(st)? {
            heap.push(Reverse((s.ts_ms, i)));
        }
    }
    check_conflicts(sources)?;
    let mut buf: Vec<u8> = Vec::with_capacity(OUT_BUF_BYTES + 4096);
    let write_out = |out: &mut dyn Write, buf: &[u8]| {
        out.write_all(buf).map_err(|e| ImportError::Io("output".into(), e.to_string()))
    };
    while let Some(Reverse((_, i))) = heap.pop() {
        let s = &mut sources[i];
        s.write(&mut buf);
        st.rows += 1;
        if s.advance(st)? {
            heap.push(Reverse((s.ts_ms, i)));
        }
        if buf.len() >= OUT_BUF_BYTES {
            write_out(out, &buf)?;
            buf.clear();
            bar.set_position(sources.iter().map(|s| s.read_bytes).sum());
        }
    }
    write_out(out, &buf)
}

/// Opens every input as merge sources, with the sum of their uncompressed sizes when all are known.
fn open_sources(inputs: &[PathBuf], symbol: Option<&str>) -> Result<(Vec<Source>, Option<u64>), ImportError> {
    let mut sources = Vec::new();
    let mut total = Some(0u64);
    for path in inputs {
        let name = path.display().to_string();
        if name.to_ascii_lowercase().contains("bookdepth") {
            return Err(ImportError::Unsupported(
                name,
                "bookDepth holds depth aggregated by % from the price, not order book levels: it cannot rebuild a book",
            ));
        }
        let sym = match symbol {
            Some(s) => SymbolName::new(s.as_bytes()),
            None => symbol_from_name(path),
        }
        .ok_or_else(|| ImportError::NoSymbol(name.clone()))?;
        for input in open_input(path, &name)? {
            total = total.zip(input.size).map(|(a, b)| a + b);
            sources.push(Source::new(input, sym));
            if sources.len() > MAX_INPUTS {
                return Err(ImportError::Conflict(format!("more than {MAX_INPUTS} inputs: import them in parts")));
            }
        }
    }
    Ok((sources, total))
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(t) => (indicatif::ProgressBar::new(t), "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"),
        None => (indicatif::ProgressBar::no_length(), "{spinner} {bytes} {bytes_per_sec} {elapsed}"),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Imports files (zip, gzip or plain CSV) merged by time into one output (gzip when its name ends in `.gz`).
pub fn import_files(inputs: &[PathBuf], symbol: Option<&str>, out: &Path) -> Result<ImportStats, ImportError> {
    let o = out.display().to_string();
    let (mut sources, total) = open_sources(inputs, symbol)?;
    let f = File::create(out).map_err(|e| ImportError::Io(o.clone(), e.to_string()))?;
    let mut w: Box<dyn Write> = if o.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            std::io::BufWriter::with_capacity(1 << 20, f),
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(std::io::BufWriter::with_capacity(1 << 20, f))
    };
    let mut st = ImportStats { inputs: sources.len() as u64, ..ImportStats::default() };
    let bar = progress_bar(total);
    merge(&mut sources, &mut w, &mut st, &bar)?;
    w.flush().map_err(|e| ImportError::Io(o, e.to_string()))?;
    bar.finish_and_clear();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two kinds, with and without a header, a malformed row and CRLF endings: the merged frames byte for byte.
    #[test]
    fn frames_are_written_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("rusto-import-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let agg = dir.join("BTCUSDT-aggTrades-2024-01-01.csv");
        std::fs::write(
            &agg,
            "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\r\n\
             7,42000.10,0.005,10,12,1704067200123,true\r\n1,x,1,1,1,1,true\n\n8,42000.2,1,13,13,1704067200124,False\n",
        )
        .unwrap();
        let bt = dir.join("ETHUSDT-bookTicker-2024-01-01.csv");
        std::fs::write(&bt, "5,2300.1,3.5,2300.2,1.25,1704067200000,1704067200001\n").unwrap();
        let out = dir.join("merged.dat");
        let st = import_files(&[agg, bt], None, &out).unwrap();
        assert_eq!(st, ImportStats { rows: 3, malformed: 1, headers: 1, out_of_order: 0, inputs: 2 });
        assert_eq!(std::fs::read_to_string(&out).unwrap(), EXPECTED);
        let _ = std::fs::remove_dir_all(&dir); // Clean-up only; a leftover temp folder is harmless.
    }

    /// Merged by time: the ticker (event time ...001) first.
    const EXPECTED: &str = r#"1704067200001000000 {"e":"bookTicker","u":5,"s":"ETHUSDT","b":"2300.1","B":"3.5","a":"2300.2","A":"1.25","T":1704067200000,"E":1704067200001}
1704067200123000000 {"e":"aggTrade","E":1704067200123,"a":7,"s":"BTCUSDT","p":"42000.10","q":"0.005","f":10,"l":12,"T":1704067200123,"m":true}
1704067200124000000 {"e":"aggTrade","E":1704067200124,"a":8,"s":"BTCUSDT","p":"42000.2","q":"1","f":13,"l":13,"T":1704067200124,"m":false}
"#;
}

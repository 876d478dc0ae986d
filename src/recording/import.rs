//! `rusto import`: Binance's public historical files (data.binance.vision) → the replay format.
//!
//! - `aggTrades` CSV, with or without its header: `agg_trade_id,price,quantity,first_trade_id,last_trade_id,
//!   transact_time,is_buyer_maker` → one `aggTrade` frame per row, stamped with its transact time (ms → ns) as the
//!   local receive time. Prices and quantities are copied as the exact strings.
//! - `bookTicker` CSV: `update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,
//!   event_time` → `bookTicker` frames.
//! - `bookDepth` CSVs hold depth aggregated by % distance from the price, not order book levels, so they cannot
//!   rebuild a book; they are refused with that explanation.
//!
//! The kind is told by the header or, without one, by the column count; the symbol comes from `--symbol` or the
//! file name (`BTCUSDT-aggTrades-2024-01-01.csv`). Input may be plain or gzip (unzip Binance's `.zip` first);
//! output is gzip when its name ends in `.gz`. Malformed rows are counted and skipped (the first is shown).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::types::symbols::SymbolName;

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
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    AggTrades,
    BookTicker,
}

fn symbol_from_name(path: &Path) -> Option<SymbolName> {
    let name = path.file_name()?.to_str()?;
    SymbolName::new(name.split(['-', '_', '.']).next()?.as_bytes())
}

fn is_int(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|c| c.is_ascii_digit())
}

fn is_dec(s: &[u8]) -> bool {
    crate::types::decimal::parse_decimal(s).is_ok()
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
        } else {
            None
        }
    }

    /// The kind of a file without a header, told by its first row.
    fn guess_kind(&self) -> Kind {
        if self.count == 7 && is_bool(self.fields[6]) { Kind::AggTrades } else { Kind::BookTicker }
    }

    fn is_valid(&self, kind: Kind) -> bool {
        let f = &self.fields;
        self.count == 7
            && match kind {
                Kind::AggTrades => {
                    is_int(f[0])
                        && is_dec(f[1])
                        && is_dec(f[2])
                        && is_int(f[3])
                        && is_int(f[4])
                        && is_int(f[5])
                        && is_bool(f[6])
                }
                Kind::BookTicker => is_int(f[0]) && f[1..5].iter().all(|x| is_dec(x)) && is_int(f[5]) && is_int(f[6]),
            }
    }

    /// Appends the row's frame line (`<ns> <json>\n`) to `out` (the fields are validated: ASCII).
    fn write_frame(&self, kind: Kind, symbol: &str, out: &mut Vec<u8>) {
        let f = &self.fields;
        let s = symbol.as_bytes();
        match kind {
            Kind::AggTrades => {
                let m: &[u8] = if f[6][0] == b't' || f[6][0] == b'T' { b"true" } else { b"false" };
                let keys = [("E", f[5], false), ("a", f[0], false), ("s", s, true), ("p", f[1], true)];
                let rest = [("q", f[2], true), ("f", f[3], false), ("l", f[4], false), ("T", f[5], false)];
                push_frame(out, f[5], "aggTrade", keys.iter().chain(&rest).chain(&[("m", m, false)]));
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

fn is_bool(s: &[u8]) -> bool {
    matches!(s, b"true" | b"false" | b"True" | b"False")
}

/// Opens an input, plain or gzip; refuses a zip archive.
fn open_input(input: &Path, name: &str) -> Result<Box<dyn Read>, ImportError> {
    let io = |e: std::io::Error| ImportError::Io(name.to_owned(), e.to_string());
    let f = std::fs::File::open(input).map_err(io)?;
    let mut magic = [0u8; 2];
    let gz = {
        let mut f2 = std::fs::File::open(input).map_err(io)?;
        // A file too short or unreadable here is read (and fails) as plain text below.
        f2.read(&mut magic).map(|n| n == 2 && magic == [0x1f, 0x8b]).unwrap_or(false)
    };
    if magic == *b"PK" {
        return Err(ImportError::Unsupported(
            name.to_owned(),
            "a zip archive: unzip it first (Binance ships one CSV per zip)",
        ));
    }
    Ok(if gz { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) })
}

/// The symbol of an input: `--symbol`, else its file name.
fn input_symbol(input: &Path, symbol: Option<&str>, name: &str) -> Result<SymbolName, ImportError> {
    match symbol {
        Some(s) => SymbolName::new(s.as_bytes()),
        None => symbol_from_name(input),
    }
    .ok_or_else(|| ImportError::NoSymbol(name.to_owned()))
}

/// Converts one file. `out` receives `<ns> <frame>` lines.
pub(crate) fn import(input: &Path, symbol: Option<&str>, out: &mut dyn Write) -> Result<ImportStats, ImportError> {
    let name = input.display().to_string();
    let sym = input_symbol(input, symbol, &name)?;
    if name.to_ascii_lowercase().contains("bookdepth") {
        return Err(ImportError::Unsupported(
            name,
            "bookDepth holds depth aggregated by % from the price, not order book levels: it cannot rebuild a book",
        ));
    }
    let mut r = BufReader::with_capacity(1 << 20, open_input(input, &name)?);
    let mut st = ImportStats::default();
    let mut kind: Option<Kind> = None;
    let mut line = Vec::with_capacity(256);
    let mut outbuf: Vec<u8> = Vec::with_capacity(1 << 20);
    let write_out = |out: &mut dyn Write, buf: &[u8]| {
        out.write_all(buf).map_err(|e| ImportError::Io("output".into(), e.to_string()))
    };
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| ImportError::Io(name.clone(), e.to_string()))?;
        if n == 0 {
            break;
        }
        let l = line.strip_suffix(b"\n").unwrap_or(&line);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.is_empty() {
            continue;
        }
        let row = Row::split(l);
        if let Some(k) = row.header_kind(l) {
            kind = Some(k);
            st.headers += 1;
            continue;
        }
        let kd = *kind.get_or_insert_with(|| row.guess_kind());
        if !row.is_valid(kd) {
            st.malformed += 1;
            if st.malformed == 1 {
                log::warn!(
                    "{name}: malformed row skipped (counted): {}",
                    String::from_utf8_lossy(&l[..l.len().min(120)])
                );
            }
            continue;
        }
        row.write_frame(kd, sym.as_str(), &mut outbuf);
        st.rows += 1;
        if outbuf.len() >= 1 << 20 {
            write_out(out, &outbuf)?;
            outbuf.clear();
        }
    }
    write_out(out, &outbuf)?;
    Ok(st)
}

/// Imports files into one output (gzip when its name ends in `.gz`).
pub fn import_files(
    inputs: &[std::path::PathBuf],
    symbol: Option<&str>,
    out: &Path,
) -> Result<ImportStats, ImportError> {
    let o = out.display().to_string();
    let f = std::fs::File::create(out).map_err(|e| ImportError::Io(o.clone(), e.to_string()))?;
    let mut w: Box<dyn Write> = if o.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            std::io::BufWriter::with_capacity(1 << 20, f),
            flate2::Compression::fast(),
        ))
    } else {
        Box::new(std::io::BufWriter::with_capacity(1 << 20, f))
    };
    let mut total = ImportStats::default();
    let bar =
        std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| indicatif::ProgressBar::new(inputs.len() as u64));
    for i in inputs {
        if let Some(b) = &bar {
            b.set_message(i.display().to_string());
        }
        let st = import(i, symbol, &mut w)?;
        if let Some(b) = &bar {
            b.inc(1);
        }
        total.rows += st.rows;
        total.malformed += st.malformed;
        total.headers += st.headers;
    }
    w.flush().map_err(|e| ImportError::Io(o, e.to_string()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kinds, with and without a header, a malformed row and CRLF endings: the frames byte for byte.
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
        let mut out = Vec::new();
        let a = import(&agg, None, &mut out).unwrap();
        let b = import(&bt, None, &mut out).unwrap();
        assert_eq!(a, ImportStats { rows: 2, malformed: 1, headers: 1 });
        assert_eq!(b, ImportStats { rows: 1, malformed: 0, headers: 0 });
        assert_eq!(String::from_utf8(out).unwrap(), EXPECTED);
        let _ = std::fs::remove_dir_all(&dir); // Clean-up only; a leftover temp folder is harmless.
    }

    const EXPECTED: &str = r#"1704067200123000000 {"e":"aggTrade","E":1704067200123,"a":7,"s":"BTCUSDT","p":"42000.10","q":"0.005","f":10,"l":12,"T":1704067200123,"m":true}
1704067200124000000 {"e":"aggTrade","E":1704067200124,"a":8,"s":"BTCUSDT","p":"42000.2","q":"1","f":13,"l":13,"T":1704067200124,"m":false}
1704067200001000000 {"e":"bookTicker","u":5,"s":"ETHUSDT","b":"2300.1","B":"3.5","a":"2300.2","A":"1.25","T":1704067200000,"E":1704067200001}
"#;
}

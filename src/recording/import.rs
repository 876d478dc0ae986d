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

/// Converts one file. `out` receives `<ns> <frame>` lines.
pub fn import(input: &Path, symbol: Option<&str>, out: &mut dyn Write) -> Result<ImportStats, ImportError> {
    let name = input.display().to_string();
    let sym = match symbol {
        Some(s) => SymbolName::new(s.as_bytes()).ok_or_else(|| ImportError::NoSymbol(name.clone()))?,
        None => symbol_from_name(input).ok_or_else(|| ImportError::NoSymbol(name.clone()))?,
    };
    if name.to_ascii_lowercase().contains("bookdepth") {
        return Err(ImportError::Unsupported(
            name,
            "bookDepth holds depth aggregated by % from the price, not order book levels: it cannot rebuild a book",
        ));
    }
    let f = std::fs::File::open(input).map_err(|e| ImportError::Io(name.clone(), e.to_string()))?;
    let mut magic = [0u8; 2];
    let gz = {
        let mut f2 = std::fs::File::open(input).map_err(|e| ImportError::Io(name.clone(), e.to_string()))?;
        f2.read(&mut magic).map(|n| n == 2 && magic == [0x1f, 0x8b]).unwrap_or(false)
    };
    if magic == *b"PK" {
        return Err(ImportError::Unsupported(name, "a zip archive: unzip it first (Binance ships one CSV per zip)"));
    }
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) };
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let s = sym.as_str();
    let mut st = ImportStats::default();
    let mut kind: Option<Kind> = None;
    let mut line = Vec::with_capacity(256);
    let mut outbuf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut first_bad = true;
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
        let mut fields: [&[u8]; 8] = [&[]; 8];
        let mut k = 0;
        for part in l.split(|&c| c == b',') {
            if k < fields.len() {
                fields[k] = part;
            }
            k += 1;
        }
        if !is_int(fields[0]) {
            // A header (or garbage); a header fixes the kind.
            let h = String::from_utf8_lossy(l).to_ascii_lowercase();
            if h.contains("agg_trade_id") {
                kind = Some(Kind::AggTrades);
                st.headers += 1;
                continue;
            }
            if h.contains("best_bid_price") {
                kind = Some(Kind::BookTicker);
                st.headers += 1;
                continue;
            }
        }
        let kd = *kind.get_or_insert(
            if k == 7
                && (fields[6] == b"true" || fields[6] == b"false" || fields[6] == b"True" || fields[6] == b"False")
            {
                Kind::AggTrades
            } else {
                Kind::BookTicker
            },
        );
        let ok = match kd {
            Kind::AggTrades => {
                k == 7
                    && is_int(fields[0])
                    && is_dec(fields[1])
                    && is_dec(fields[2])
                    && is_int(fields[3])
                    && is_int(fields[4])
                    && is_int(fields[5])
                    && matches!(fields[6], b"true" | b"false" | b"True" | b"False")
            }
            Kind::BookTicker => {
                k == 7
                    && is_int(fields[0])
                    && fields[1..5].iter().all(|f| is_dec(f))
                    && is_int(fields[5])
                    && is_int(fields[6])
            }
        };
        if !ok {
            st.malformed += 1;
            if first_bad {
                first_bad = false;
                eprintln!(
                    "warn: {name}: malformed row skipped (counted): {}",
                    String::from_utf8_lossy(&l[..l.len().min(120)])
                );
            }
            continue;
        }
        fn t(f: &[u8]) -> &str {
            std::str::from_utf8(f).unwrap_or("0")
        }
        match kd {
            Kind::AggTrades => {
                let m = fields[6][0] == b't' || fields[6][0] == b'T';
                let _ = writeln!(
                    outbuf,
                    "{}000000 {{\"e\":\"aggTrade\",\"E\":{},\"a\":{},\"s\":\"{s}\",\"p\":\"{}\",\"q\":\"{}\",\"f\":{},\"l\":{},\"T\":{},\"m\":{}}}",
                    t(fields[5]),
                    t(fields[5]),
                    t(fields[0]),
                    t(fields[1]),
                    t(fields[2]),
                    t(fields[3]),
                    t(fields[4]),
                    t(fields[5]),
                    m
                );
            }
            Kind::BookTicker => {
                let _ = writeln!(
                    outbuf,
                    "{}000000 {{\"e\":\"bookTicker\",\"u\":{},\"s\":\"{s}\",\"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\",\"T\":{},\"E\":{}}}",
                    t(fields[6]),
                    t(fields[0]),
                    t(fields[1]),
                    t(fields[2]),
                    t(fields[3]),
                    t(fields[4]),
                    t(fields[5]),
                    t(fields[6])
                );
            }
        }
        st.rows += 1;
        if outbuf.len() >= 1 << 20 {
            out.write_all(&outbuf).map_err(|e| ImportError::Io("output".into(), e.to_string()))?;
            outbuf.clear();
        }
    }
    out.write_all(&outbuf).map_err(|e| ImportError::Io("output".into(), e.to_string()))?;
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

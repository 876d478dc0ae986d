//! Wire parser benchmark on real recorded Binance USDⓈ-M futures frames.
//!
//! Every frame comes byte for byte from a recording (nothing is invented):
//! - `data/sample/btcusdt_20230404.dat.gz` and `btcusdt_20230405.dat.gz` (hftbacktest, `<µs> <json>`): `trade`,
//!   `bookTicker`, `depthUpdate` (`depth@0ms`) and the inline REST `/fapi/v1/depth?limit=1000` snapshot;
//! - `tests/data/BINANCE_FUTURES.ws.1.0.txt` (cryptofeed, `<secs>: <json>`): `aggTrade`. It holds only 91 of them,
//!   so when `../shared/data/cryptofeed-binance-futures-raw/` is present its other recordings top the set up to
//!   [`MAX_FRAMES`] (the count and sources are printed at start).
//!
//! For every kind the same group runs:
//! - `rusto`: [`Parser::parse_frame`] into a reused `Vec<MarketEvent>` (decimal strings become integer ticks/steps);
//! - `serde_json`: `serde_json::from_slice` into `#[derive(Deserialize)]` structs with borrowed `&str` prices,
//!   including the combined-stream wrapper; the target type is known in advance (no dispatch on `e`), depth levels
//!   go into `Vec<[&str; 2]>`. This is what a typical Rust bot does, minus turning the prices into numbers;
//! - `serde_json_f64`: the same plus `str::parse::<f64>()` of every price and quantity, so both sides do the
//!   decimal work.
//!
//! Each iteration parses one frame, cycling over the set; throughput is `Elements(1)`, so criterion's time is
//! ns per frame. Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench --bench parser`.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;

use rusto::ingest::{DEFAULT_MAX_FRAME_BYTES, FrameKind, FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use rusto::types::{MarketEvent, depth_event_count};
use rusto::types::{SymbolName, SymbolTable};

/// Most frames loaded per kind ("a few hundred").
const MAX_FRAMES: usize = 400;

const HFT_0404: &str = "data/sample/btcusdt_20230404.dat.gz";
const HFT_0405: &str = "data/sample/btcusdt_20230405.dat.gz";
const CF_BUNDLED: &str = "tests/data/BINANCE_FUTURES.ws.1.0.txt";
const CF_SHARED: [&str; 2] = [
    "../shared/data/cryptofeed-binance-futures-raw/BINANCE_FUTURES.ws.5.0.txt",
    "../shared/data/cryptofeed-binance-futures-raw/BINANCE_FUTURES-1125a2.0.txt",
];

// ---------------------------------------------------------------------------------------------------------------
// serde_json baseline types (borrowed strings, combined wrapper)

#[derive(Deserialize)]
struct Combined<'a, T> {
    #[allow(dead_code)]
    stream: &'a str,
    data: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AggTrade<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    a: u64,
    s: &'a str,
    p: &'a str,
    q: &'a str,
    f: u64,
    l: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    m: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Trade<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    s: &'a str,
    t: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "X")]
    x: &'a str,
    m: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct BookTicker<'a> {
    e: &'a str,
    u: u64,
    s: &'a str,
    b: &'a str,
    #[serde(rename = "B")]
    bid_qty: &'a str,
    a: &'a str,
    #[serde(rename = "A")]
    ask_qty: &'a str,
    #[serde(rename = "T")]
    trade_time: u64,
    #[serde(rename = "E")]
    event_time: u64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DepthUpdate<'a> {
    e: &'a str,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    s: &'a str,
    #[serde(rename = "U")]
    first: u64,
    u: u64,
    pu: u64,
    #[serde(borrow)]
    b: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    a: Vec<[&'a str; 2]>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Snapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(rename = "E")]
    event_time: u64,
    #[serde(rename = "T")]
    trade_time: u64,
    #[serde(borrow)]
    bids: Vec<[&'a str; 2]>,
    #[serde(borrow)]
    asks: Vec<[&'a str; 2]>,
}

#[inline]
fn f64_of(s: &str) -> f64 {
    s.parse::<f64>().unwrap_or(f64::NAN)
}

#[inline]
fn levels_f64(levels: &[[&str; 2]]) -> f64 {
    levels.iter().map(|[p, q]| f64_of(p) + f64_of(q)).sum()
}

// Each serde baseline: (typed parse, typed parse + f64 of prices and quantities). `None` = not that shape.
fn serde_agg(f: &[u8]) -> Option<()> {
    black_box(serde_json::from_slice::<Combined<AggTrade>>(f).ok()?);
    Some(())
}
fn serde_agg_f64(f: &[u8]) -> Option<f64> {
    let m = serde_json::from_slice::<Combined<AggTrade>>(f).ok()?.data;
    Some(f64_of(m.p) + f64_of(m.q))
}
fn serde_trade(f: &[u8]) -> Option<()> {
    black_box(serde_json::from_slice::<Combined<Trade>>(f).ok()?);
    Some(())
}
fn serde_trade_f64(f: &[u8]) -> Option<f64> {
    let m = serde_json::from_slice::<Combined<Trade>>(f).ok()?.data;
    Some(f64_of(m.p) + f64_of(m.q))
}
fn serde_bt(f: &[u8]) -> Option<()> {
    black_box(serde_json::from_slice::<Combined<BookTicker>>(f).ok()?);
    Some(())
}
fn serde_bt_f64(f: &[u8]) -> Option<f64> {
    let m = serde_json::from_slice::<Combined<BookTicker>>(f).ok()?.data;
    Some(f64_of(m.b) + f64_of(m.bid_qty) + f64_of(m.a) + f64_of(m.ask_qty))
}
fn serde_depth(f: &[u8]) -> Option<()> {
    black_box(serde_json::from_slice::<Combined<DepthUpdate>>(f).ok()?);
    Some(())
}
fn serde_depth_f64(f: &[u8]) -> Option<f64> {
    let m = serde_json::from_slice::<Combined<DepthUpdate>>(f).ok()?.data;
    Some(levels_f64(&m.b) + levels_f64(&m.a))
}
fn serde_snap(f: &[u8]) -> Option<()> {
    black_box(serde_json::from_slice::<Snapshot>(f).ok()?);
    Some(())
}
fn serde_snap_f64(f: &[u8]) -> Option<f64> {
    let m = serde_json::from_slice::<Snapshot>(f).ok()?;
    Some(levels_f64(&m.bids) + levels_f64(&m.asks))
}

// ---------------------------------------------------------------------------------------------------------------
// Loading real frames

/// Path relative to the crate root (cargo runs benches from there, but be explicit).
fn at(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The JSON frames of a recording, byte for byte: everything from the first `{` of each line (both formats put
/// the local time, and cryptofeed's REST lines a URL, before it; none of those contain `{`).
fn frames_of(rel: &str) -> Vec<Vec<u8>> {
    let path = at(rel);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader: Box<dyn Read> =
        if rel.ends_with(".gz") { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut out = Vec::new();
    for line in BufReader::new(reader).split(b'\n') {
        let mut line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if let Some(i) = line.iter().position(|&c| c == b'{') {
            out.push(line[i..].to_vec());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// (bids, asks) of a depth update or snapshot frame; setup only.
fn depth_sides(frame: &[u8]) -> (usize, usize) {
    let v: serde_json::Value = serde_json::from_slice(frame).expect("recorded frame is JSON");
    let d = v.get("data").unwrap_or(&v);
    let n = |k: &str| d.get(k).and_then(|x| x.as_array()).map_or(0, |a| a.len());
    if d.get("lastUpdateId").is_some() { (n("bids"), n("asks")) } else { (n("b"), n("a")) }
}

struct Sets {
    agg: Vec<Vec<u8>>,
    trade: Vec<Vec<u8>>,
    book_ticker: Vec<Vec<u8>>,
    depth_all: Vec<Vec<u8>>,
    depth_20_25: Vec<Vec<u8>>,
    depth_ge20: Vec<Vec<u8>>,
    snapshot: Vec<Vec<u8>>,
}

fn load() -> Sets {
    let hft: Vec<Vec<u8>> = frames_of(HFT_0404).into_iter().chain(frames_of(HFT_0405)).collect();
    let kind = |frames: &[Vec<u8>], tag: &[u8]| -> Vec<Vec<u8>> {
        frames.iter().filter(|f| contains(f, tag)).take(MAX_FRAMES).cloned().collect()
    };
    let trade = kind(&hft, b"\"e\":\"trade\"");
    let book_ticker = kind(&hft, b"\"e\":\"bookTicker\"");
    let depth_all = kind(&hft, b"\"e\":\"depthUpdate\"");
    let mut depth_20_25 = Vec::new();
    let mut depth_ge20 = Vec::new();
    for f in hft.iter().filter(|f| contains(f, b"\"e\":\"depthUpdate\"")) {
        let (b, a) = depth_sides(f);
        if (20..=25).contains(&b) && (20..=25).contains(&a) && depth_20_25.len() < MAX_FRAMES {
            depth_20_25.push(f.clone());
        }
        if b >= 20 && a >= 20 && depth_ge20.len() < MAX_FRAMES {
            depth_ge20.push(f.clone());
        }
    }
    let snapshot = kind(&hft, b"\"lastUpdateId\"");

    let mut agg = kind(&frames_of(CF_BUNDLED), b"\"e\":\"aggTrade\"");
    let bundled_agg = agg.len();
    let mut shared_used = Vec::new();
    for rel in CF_SHARED {
        if agg.len() >= MAX_FRAMES || !at(rel).exists() {
            continue;
        }
        let more = kind(&frames_of(rel), b"\"e\":\"aggTrade\"");
        let take = more.len().min(MAX_FRAMES - agg.len());
        agg.extend(more.into_iter().take(take));
        shared_used.push(format!("{take} from {rel}"));
    }
    eprintln!(
        "parser bench: aggTrade {} ({bundled_agg} from {CF_BUNDLED}{}{}), trade {}, bookTicker {}, depth all {}, \
         depth 20-25/side {}, depth >=20/side {}, snapshot {} (from {HFT_0404}, {HFT_0405})",
        agg.len(),
        if shared_used.is_empty() { "" } else { ", " },
        shared_used.join(", "),
        trade.len(),
        book_ticker.len(),
        depth_all.len(),
        depth_20_25.len(),
        depth_ge20.len(),
        snapshot.len(),
    );
    for (name, set) in [("depth 20-25", &depth_20_25), ("depth >=20", &depth_ge20)] {
        let (sb, sa, bytes) = set.iter().fold((0, 0, 0), |(sb, sa, by), f| {
            let (b, a) = depth_sides(f);
            (sb + b, sa + a, by + f.len())
        });
        let n = set.len().max(1);
        eprintln!(
            "parser bench: {name}: mean {:.1} bids, {:.1} asks, {} bytes per frame",
            sb as f64 / n as f64,
            sa as f64 / n as f64,
            bytes / n
        );
    }
    for f in &snapshot {
        let (b, a) = depth_sides(f);
        eprintln!("parser bench: snapshot: {b} bids, {a} asks, {} bytes", f.len());
    }
    Sets { agg, trade, book_ticker, depth_all, depth_20_25, depth_ge20, snapshot }
}

// ---------------------------------------------------------------------------------------------------------------
// Benchmarks

fn new_parser() -> Parser {
    Parser::new(SymbolTable::new(64, vec![]), DEFAULT_MAX_FRAME_BYTES)
}

/// Parses every frame once, checking that each one is accepted with the expected event count (so the timed loop
/// measures the success path) and warming the symbol table (scale inference logs once per symbol, here).
fn check_rusto(name: &str, parser: &mut Parser, frames: &[Vec<u8>], meta: &FrameMeta) {
    let mut out = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    for pass in 0..2 {
        for f in frames {
            out.clear();
            let k = parser
                .parse_frame(f, meta, &mut out)
                .unwrap_or_else(|e| panic!("{name}: rusto rejected a recorded frame: {e}"));
            assert!(matches!(k, FrameKind::Market | FrameKind::Snapshot), "{name}: {k:?}");
            if pass == 1 {
                // Second pass: scales are known, so no SymbolDef events precede the frame's own events.
                let expect = if name.starts_with("depth") || name.starts_with("snapshot") {
                    let (b, a) = depth_sides(f);
                    depth_event_count(b, a)
                } else {
                    1
                };
                assert_eq!(out.len(), expect, "{name}: event count");
            }
        }
    }
}

fn bench_kind<S, D>(c: &mut Criterion, name: &str, frames: &[Vec<u8>], meta: FrameMeta, serde_typed: S, serde_f64: D)
where
    S: Fn(&[u8]) -> Option<()>,
    D: Fn(&[u8]) -> Option<f64>,
{
    assert!(!frames.is_empty(), "{name}: no real frames found");
    let mut parser = new_parser();
    check_rusto(name, &mut parser, frames, &meta);
    for f in frames {
        assert!(serde_typed(f).is_some(), "{name}: serde_json rejected a recorded frame");
        assert!(serde_f64(f).is_some_and(|x| x.is_finite()), "{name}: f64");
    }

    let mut g: BenchmarkGroup<'_, _> = c.benchmark_group(format!("parse/{name}"));
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    let n = frames.len();
    let mut out: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    g.bench_function("rusto", |b| {
        let mut i = 0;
        b.iter(|| {
            let f = &frames[i];
            i += 1;
            if i == n {
                i = 0;
            }
            out.clear();
            let r = parser.parse_frame(black_box(f), &meta, &mut out);
            black_box(&out);
            black_box(r)
        })
    });
    g.bench_function("serde_json", |b| {
        let mut i = 0;
        b.iter(|| {
            let f = &frames[i];
            i += 1;
            if i == n {
                i = 0;
            }
            serde_typed(black_box(f))
        })
    });
    g.bench_function("serde_json_f64", |b| {
        let mut i = 0;
        b.iter(|| {
            let f = &frames[i];
            i += 1;
            if i == n {
                i = 0;
            }
            serde_f64(black_box(f))
        })
    });
    g.finish();
    assert_eq!(parser.stats.malformed_total(), 0, "{name}: malformed frames");
    paired(name, &mut parser, frames, &meta, &serde_typed, &serde_f64);
}

/// Rounds of the paired pass.
const PAIRED_ROUNDS: usize = 21;

/// ns per frame of `f` run `reps` times over all `frames`.
fn ns_per_frame(frames: &[Vec<u8>], reps: usize, mut f: impl FnMut(&[u8])) -> f64 {
    let t = Instant::now();
    for _ in 0..reps {
        for fr in frames {
            f(black_box(fr));
        }
    }
    t.elapsed().as_nanos() as f64 / (reps * frames.len()) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A paired pass after the criterion group: in each of [`PAIRED_ROUNDS`] rounds the three variants run back to back
/// over the whole frame set (≈ 2 ms each), and the ratio is taken within the round, so that load from other
/// processes on this shared machine hits both sides of a ratio alike. Prints medians over the rounds.
fn paired<S, D>(name: &str, parser: &mut Parser, frames: &[Vec<u8>], meta: &FrameMeta, serde_typed: &S, serde_f64: &D)
where
    S: Fn(&[u8]) -> Option<()>,
    D: Fn(&[u8]) -> Option<f64>,
{
    let mut out: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut rusto = |f: &[u8]| {
        out.clear();
        black_box(parser.parse_frame(f, meta, &mut out).is_ok());
        black_box(&out);
    };
    let one = ns_per_frame(frames, 1, &mut rusto) * frames.len() as f64;
    let reps = ((2e6 / one.max(1.0)) as usize).max(1);
    let (mut r, mut s, mut d) = (vec![], vec![], vec![]);
    let (mut ratio_s, mut ratio_d) = (vec![], vec![]);
    for _ in 0..PAIRED_ROUNDS {
        let tr = ns_per_frame(frames, reps, &mut rusto);
        let ts = ns_per_frame(frames, reps, |f| {
            black_box(serde_typed(f));
        });
        let td = ns_per_frame(frames, reps, |f| {
            black_box(serde_f64(f));
        });
        r.push(tr);
        s.push(ts);
        d.push(td);
        ratio_s.push(ts / tr);
        ratio_d.push(td / tr);
    }
    println!(
        "paired {name:<22} ns/frame, medians of {PAIRED_ROUNDS} rounds ({} frames x {reps}): rusto {:.1}, \
         serde_json {:.1}, serde_json_f64 {:.1}; serde_json/rusto {:.2}x, serde_json_f64/rusto {:.2}x",
        frames.len(),
        median(&mut r),
        median(&mut s),
        median(&mut d),
        median(&mut ratio_s),
        median(&mut ratio_d),
    );
}

fn parser_benches(c: &mut Criterion) {
    let s = load();
    let plain = FrameMeta::default();
    bench_kind(c, "aggTrade", &s.agg, plain, serde_agg, serde_agg_f64);
    bench_kind(c, "trade", &s.trade, plain, serde_trade, serde_trade_f64);
    bench_kind(c, "bookTicker", &s.book_ticker, plain, serde_bt, serde_bt_f64);
    bench_kind(c, "depth_20to25_per_side", &s.depth_20_25, plain, serde_depth, serde_depth_f64);
    bench_kind(c, "depth_ge20_per_side", &s.depth_ge20, plain, serde_depth, serde_depth_f64);
    bench_kind(c, "depth_all", &s.depth_all, plain, serde_depth, serde_depth_f64);
    let snap_meta = FrameMeta { snapshot_symbol: SymbolName::new(b"BTCUSDT"), ..FrameMeta::default() };
    bench_kind(c, "snapshot_1000", &s.snapshot, snap_meta, serde_snap, serde_snap_f64);
}

criterion_group!(benches, parser_benches);
criterion_main!(benches);

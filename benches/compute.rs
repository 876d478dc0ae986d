//! Compute-thread cost per event on the real bundled BTCUSDT sample, all measured in one run:
//! - `trade/bars_only`: `RangeBars::on_trade` alone (the engine-core baseline);
//! - `trade/engine_default`: `Engine::on_event` for every market trade with the default config (bars, order flow,
//!   volume profile per trade; regime, levels, strategy and tuning at each bar close; position checks);
//! - `trade/engine_small_bars`: the same with 1-USDT bars (a bar close every ≈ 70 trades), the signal stages'
//!   worst realistic case;
//! - `all_events/engine_default`: every event of the recording (book, tickers, trades) through `Engine::on_event`.
//!
//! - `profile_20k/*`: the volume profile at a bar close with ≥ 20 000 occupied bins (issue 11 item 1; see
//!   [`profile_levels`]): `levels` (the incremental computation the engine uses) against `levels_scan` (the full
//!   scan over every occupied bin it replaced, kept as the baseline), alone and on the bar-close path.
//!
//! Each iteration replays the whole tape into a fresh engine, so the numbers include bar closes and tuning slices
//! in their real proportions. `Throughput::Elements` makes criterion print events/s; ns per event = 1 / that.
//! Run: `cargo bench --bench compute`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusto::compute::{BarRange, RangeBars};
use rusto::compute::{Engine, EngineConfig};
use rusto::ingest::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use rusto::recording::{Line, classify};
use rusto::types::{EventKind, MarketEvent};
use rusto::types::{SymbolName, SymbolTable};

fn events() -> Vec<MarketEvent> {
    let mut parser = Parser::new(SymbolTable::new(64, vec![]), 1 << 20);
    let mut out = Vec::new();
    let mut staging = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    for f in ["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"] {
        let raw = std::fs::read(f).expect("bundled sample");
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text).expect("gunzip");
        for line in text.split(|&c| c == b'\n') {
            if let Line::Frame { ts_ns, json, .. } = classify(line) {
                let meta = FrameMeta { local_ts_ns: ts_ns, stamp_ns: 0, snapshot_symbol: SymbolName::new(b"BTCUSDT") };
                staging.clear();
                if parser.parse_frame(json, &meta, &mut staging).is_ok() {
                    out.extend_from_slice(&staging);
                }
            }
        }
    }
    out
}

fn run(cfg: &EngineConfig, evs: &[MarketEvent]) -> u64 {
    let mut e = Engine::new(cfg.clone());
    let mut n = 0u64;
    for ev in evs {
        let _ = black_box(e.on_event(ev, &mut |_| n += 1));
    }
    n
}

fn compute(c: &mut Criterion) {
    let all = events();
    let trades: Vec<MarketEvent> =
        all.iter().filter(|e| matches!(e.kind, EventKind::SymbolDef | EventKind::Trade)).copied().collect();
    let n_trades = trades.iter().filter(|e| e.kind == EventKind::Trade).count() as u64;
    let default = EngineConfig::default();
    let small = EngineConfig { bar_range: BarRange::Ticks(100), ..EngineConfig::default() };

    let mut g = c.benchmark_group("trade");
    g.sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    g.throughput(Throughput::Elements(n_trades));
    g.bench_function("bars_only", |b| {
        b.iter(|| {
            let mut rb = RangeBars::new(BarRange::Pct(0.05));
            let mut closed = 0u32;
            for e in &trades {
                if e.kind == EventKind::Trade {
                    let (px, qty) = (e.trade_price_ticks(), e.trade_qty_steps());
                    closed += rb.on_trade(px, qty, e.buyer_is_maker(), e.exch_ts_ns, e.trade_id()).is_some() as u32;
                }
            }
            black_box(closed)
        })
    });
    g.bench_function("engine_default", |b| b.iter(|| run(&default, &trades)));
    g.bench_function("engine_small_bars", |b| b.iter(|| run(&small, &trades)));
    g.finish();

    let mut g = c.benchmark_group("all_events");
    g.sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("engine_default", |b| b.iter(|| run(&default, &all)));
    g.finish();
}

/// A real trade: (price ticks, qty steps, buyer is maker, exchange time, trade id).
type Tr = (i64, i64, bool, i64, i64);

/// Real trades of the tape.
fn real_trades(all: &[MarketEvent]) -> Vec<Tr> {
    let t = all.iter().filter(|e| e.kind == EventKind::Trade);
    t.map(|e| (e.trade_price_ticks(), e.trade_qty_steps(), e.buyer_is_maker(), e.exch_ts_ns, e.trade_id())).collect()
}

/// Copies of the tape side by side in the profile at `bin_ticks = 1` (the sample alone spans 233 bins of 0.10).
const PROFILE_COPIES: i64 = 90;

/// The profile at a bar close with ≥ 20 000 occupied bins, built from real trades: the bundled sample's trades
/// (all of them, in order, at the real 0.10 tick: the parser's 0.01 ticks / 10) are added [`PROFILE_COPIES`] times
/// with `bin_ticks = 1`, copy k shifted up by k times
/// the sample's price span, all at the first trade's time (one session). Then the tape is replayed once more over
/// the middle copy, cut into 10-tick range bars: each `bar_close` iteration adds the next bar's real trades and
/// computes the levels, as the engine does at each close. `levels_only` times the levels of an unchanged profile.
fn profile_levels(c: &mut Criterion, all: &[MarketEvent]) {
    let mut trades = real_trades(all);
    assert!(trades.iter().all(|t| t.0 % 10 == 0), "prices on the 0.10 grid");
    trades.iter_mut().for_each(|t| t.0 /= 10);
    let (lo, hi) = trades.iter().fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t.0), b.max(t.0)));
    let span = hi - lo + 1;
    let mut cfg = EngineConfig::default();
    (cfg.profile.bin_ticks, cfg.profile.max_bins) = (1, 65_536);
    let mut e = Engine::new(cfg);
    let def = all.iter().find(|e| e.kind == EventKind::SymbolDef).expect("symbol definition");
    let _ = e.on_event(def, &mut |_| {});
    let mut p = e.symbols[0].profile.clone();
    let t0 = trades[0].3;
    let mut occupied: Vec<i64> = Vec::new();
    for k in 0..PROFILE_COPIES {
        for t in &trades {
            p.on_trade(t.0 + k * span, t.1, t0);
            occupied.push(t.0 + k * span);
        }
    }
    occupied.sort_unstable();
    occupied.dedup();
    assert!(occupied.len() >= 20_000, "{} bins, prices {lo}..={hi}, {} trades", occupied.len(), trades.len());
    eprintln!("profile_20k: {} occupied bins over {} ticks", occupied.len(), PROFILE_COPIES * span);
    let mid = PROFILE_COPIES / 2 * span;
    let mut bars = RangeBars::new(BarRange::Ticks(10));
    let mut cuts = vec![0];
    for (i, t) in trades.iter().enumerate() {
        if bars.on_trade(t.0, t.1, t.2, t.3, t.4).is_some() {
            cuts.push(i);
        }
    }
    let bar_trades: Vec<&[Tr]> = cuts.windows(2).map(|w| &trades[w[0]..w[1]]).collect();
    let _ = (p.levels(), p.levels_scan());

    let mut g = c.benchmark_group("profile_20k");
    g.sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    g.bench_function("levels_only/scan", |b| b.iter(|| black_box(p.levels_scan())));
    g.bench_function("levels_only/incremental", |b| b.iter(|| black_box(p.levels())));
    macro_rules! bar_close {
        ($name:literal, $levels:ident) => {
            let mut q = p.clone();
            let _ = q.$levels();
            let mut i = 0;
            g.bench_function($name, |b| {
                b.iter(|| {
                    for t in bar_trades[i] {
                        q.on_trade(t.0 + mid, t.1, t0);
                    }
                    i = (i + 1) % bar_trades.len();
                    black_box(q.$levels())
                })
            });
        };
    }
    bar_close!("bar_close/scan", levels_scan);
    bar_close!("bar_close/incremental", levels);
    g.finish();

    // Percentiles per bar close (criterion reports means): the same real bars through each, one pass each (the
    // scan's milliseconds would evict the other's trees if they alternated), then the value areas compared.
    macro_rules! pass {
        ($levels:ident) => {{
            let mut q = p.clone();
            let (mut times, mut areas) = (Vec::new(), Vec::new());
            for bar in &bar_trades {
                for t in *bar {
                    q.on_trade(t.0 + mid, t.1, t0);
                }
                let s = std::time::Instant::now();
                let l = black_box(q.$levels());
                times.push(s.elapsed().as_nanos() as u64);
                areas.push(l.map(|l| (l.poc, l.val, l.vah, l.va_bins)));
            }
            (times, areas)
        }};
    }
    let (mut t_inc, a_inc) = pass!(levels);
    let (mut t_scan, a_scan) = pass!(levels_scan);
    assert_eq!(a_inc, a_scan, "same value areas");
    let pct = |v: &mut Vec<u64>, q: usize| {
        v.sort_unstable();
        v[(v.len() * q / 100).min(v.len() - 1)]
    };
    println!(
        "profile_20k bar closes ({}), one pass each: levels p50 {} ns p99 {} ns max {} ns; levels_scan p50 {} ns p99 {} ns",
        t_inc.len(),
        pct(&mut t_inc, 50),
        pct(&mut t_inc, 99),
        pct(&mut t_inc, 100),
        pct(&mut t_scan, 50),
        pct(&mut t_scan, 99)
    );
}

fn profile(c: &mut Criterion) {
    profile_levels(c, &events());
}

criterion_group!(benches, compute, profile);
criterion_main!(benches);

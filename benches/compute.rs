//! Compute-thread cost per event on the real bundled BTCUSDT sample, all measured in one run:
//! - `trade/bars_only`: `RangeBars::on_trade` alone (the engine-core baseline);
//! - `trade/engine_default`: `Engine::on_event` for every market trade with the default config (bars, order flow,
//!   volume profile per trade; regime, levels, strategy and tuning at each bar close; position checks);
//! - `trade/engine_small_bars`: the same with 1-USDT bars (a bar close every ≈ 70 trades), the signal stages'
//!   worst realistic case;
//! - `all_events/engine_default`: every event of the recording (book, tickers, trades) through `Engine::on_event`.
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

criterion_group!(benches, compute);
criterion_main!(benches);

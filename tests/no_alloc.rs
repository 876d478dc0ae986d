//! The hot path (parse → ring → compute decision) allocates nothing after warm-up.
//!
//! A counting global allocator counts allocations made on this test's thread while counting is on. The real
//! BTCUSDT sample is loaded into memory first; the first part warms up (symbol creation, buffers reaching their
//! working size), then every remaining frame goes through `Parser::parse_frame`, the SPSC ring and
//! `Engine::on_event` with counting on, and the count must be zero. The inline layout's path (the compute loop run
//! on the network thread, `InlineCompute`) is counted the same way, and must emit the very records of the split one.
//! The order path (venue, intent ring, request encoding and signing, reports back as events) is counted too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use rusto::compute::{Engine, EngineConfig};

use rusto::ingest::{ApiKey, Auth, Credentials, FrameMeta, MAX_EVENTS_PER_FRAME, Parser, RequestBuf, SignedAt, Signer};
use rusto::recording::{Line, classify};
use rusto::types::MarketEvent;
use rusto::types::Record;
use rusto::types::{SymbolName, SymbolTable};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn load_lines() -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for f in ["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"] {
        let raw = std::fs::read(f).unwrap();
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text).unwrap();
        for line in text.split(|&c| c == b'\n') {
            if let Line::Frame { ts_ns, json, .. } = classify(line) {
                out.push((ts_ns, json.to_vec()));
            }
        }
    }
    out
}

/// What runs after each frame's events: the order path's exchange stand-in (see the order-path test).
type AfterFrame<'a> = Option<&'a mut dyn FnMut(&mut Engine)>;

/// Parses and computes the whole sample with `cfg` (symbols from `specs`), counting allocations after the first
/// fifth; returns (allocations, the engine, events).
fn run(lines: &[(i64, Vec<u8>)], cfg: EngineConfig, specs: Vec<rusto::types::SymbolSpec>) -> (u64, Engine, u64) {
    run_with(lines, Engine::new(cfg), specs, None)
}

/// [`run`] with a prepared engine and a hook after each frame.
fn run_with(
    lines: &[(i64, Vec<u8>)],
    mut engine: Engine,
    specs: Vec<rusto::types::SymbolSpec>,
    mut after: AfterFrame<'_>,
) -> (u64, Engine, u64) {
    let mut parser = Parser::new(SymbolTable::new(64, specs), 1 << 20);
    let (mut tx, mut rx) = rusto::handoff::ring::<MarketEvent>(1 << 16);
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut records: Vec<Record> = Vec::with_capacity(1 << 16);
    let hint = SymbolName::new(b"BTCUSDT");
    let warm = lines.len() / 5;
    let mut events = 0u64;
    ALLOCS.store(0, Ordering::Relaxed);
    for (k, (ts, frame)) in lines.iter().enumerate() {
        if k == warm {
            COUNTING.with(|c| c.set(true));
        }
        let meta = FrameMeta { local_ts_ns: *ts, stamp_ns: rusto::types::now_ns(), snapshot_symbol: hint };
        staging.clear();
        let _ = parser.parse_frame(frame, &meta, &mut staging);
        tx.push_slice(&staging).unwrap();
        rx.pop_batch(usize::MAX, |e| {
            let _ = engine.on_event(&e, &mut |r| {
                if records.len() < records.capacity() {
                    records.push(r)
                }
            });
            events += 1;
        });
        if let Some(f) = after.as_mut() {
            f(&mut engine);
        }
    }
    COUNTING.with(|c| c.set(false));
    (ALLOCS.load(Ordering::Relaxed), engine, events)
}

/// The inline layout's path (`[pipeline] layout = "inline"`): parse → `InlineCompute::publish` (the compute loop's
/// own `on_event`, record routing and stages, records into the persistence ring) on one thread, counting after the
/// first fifth; returns (allocations, the engine, every record in order, as text).
fn run_inline(lines: &[(i64, Vec<u8>)], cfg: EngineConfig) -> (u64, Engine, Vec<String>) {
    use rusto::handoff::EventSink;
    let mut parser = Parser::new(SymbolTable::new(64, vec![]), 1 << 20);
    let (rec_tx, mut rec_rx) = rusto::handoff::ring::<Record>(1 << 14);
    let mut inline = rusto::compute::InlineCompute::standalone(Engine::new(cfg), rec_tx, 1 << 10);
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut records: Vec<Record> = Vec::with_capacity(1 << 16);
    let hint = SymbolName::new(b"BTCUSDT");
    let warm = lines.len() / 5;
    ALLOCS.store(0, Ordering::Relaxed);
    for (k, (ts, frame)) in lines.iter().enumerate() {
        if k == warm {
            COUNTING.with(|c| c.set(true));
        }
        let meta = FrameMeta { local_ts_ns: *ts, stamp_ns: rusto::types::now_ns(), snapshot_symbol: hint };
        staging.clear();
        let _ = parser.parse_frame(frame, &meta, &mut staging);
        assert!(inline.publish(&staging));
        inline.turn();
        rec_rx.pop_batch(usize::MAX, |r| {
            if records.len() < records.capacity() {
                records.push(r)
            }
        });
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let text = records.iter().map(|r| format!("{r:?}")).collect();
    (allocs, inline.end(), text)
}

#[test]
fn the_inline_layout_allocates_nothing_and_decides_as_the_split_one() {
    let lines = load_lines();
    let cfg = || EngineConfig {
        bar_range: rusto::compute::BarRange::Ticks(100),
        flow: rusto::compute::FlowConfig { burst_baseline_bars: 10, ..Default::default() },
        regime: rusto::compute::RegimeConfig { window_bars: 10, min_history: 5, ..Default::default() },
        tune: rusto::compute::TuneConfig { every_bars: 5, lookback_bars: 20, lookahead_bars: 4, ..Default::default() },
        ..EngineConfig::default()
    };
    let (allocs, inline_engine, inline_records) = run_inline(&lines, cfg());
    assert_eq!(allocs, 0, "{allocs} heap allocations on the inline hot path after warm-up");
    let (_, split_engine, _) = run(&lines, cfg(), vec![]);
    let (a, b) = (&inline_engine.symbols[0], &split_engine.symbols[0]);
    assert!(a.bars.closed > 100 && a.audit_compared > 0, "the real pipeline ran");
    assert_eq!((a.trades, a.bars.closed, a.audit_compared), (b.trades, b.bars.closed, b.audit_compared));
    assert_eq!(inline_engine.stats.events, split_engine.stats.events);
    // The records, in order, are the split path's (the engine's own, before the end-of-run shutdown).
    let split_records = split_records(&lines, cfg());
    assert!(split_records.len() > 100, "{}", split_records.len());
    assert_eq!(inline_records, split_records);
}

/// Every record the engine emits on the sample, driven event by event as the split compute loop does, as text.
fn split_records(lines: &[(i64, Vec<u8>)], cfg: EngineConfig) -> Vec<String> {
    let mut parser = Parser::new(SymbolTable::new(64, vec![]), 1 << 20);
    let mut engine = Engine::new(cfg);
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut out = Vec::new();
    let hint = SymbolName::new(b"BTCUSDT");
    for (ts, frame) in lines {
        let meta = FrameMeta { local_ts_ns: *ts, stamp_ns: rusto::types::now_ns(), snapshot_symbol: hint };
        staging.clear();
        let _ = parser.parse_frame(frame, &meta, &mut staging);
        for e in &staging {
            let _ = engine.on_event(e, &mut |r| {
                if out.len() < 1 << 16 {
                    out.push(format!("{r:?}"))
                }
            });
        }
    }
    out
}

#[test]
fn hot_path_allocates_nothing_after_warm_up() {
    let lines = load_lines();
    assert!(lines.len() > 70_000);
    // Small bars (1 USDT on BTCUSDT at 0.01 ticks) so bar closes, regime, profile levels, strategy and tuning runs
    // all happen many times after warm-up.
    let cfg = EngineConfig {
        bar_range: rusto::compute::BarRange::Ticks(100),
        flow: rusto::compute::FlowConfig { burst_baseline_bars: 10, ..Default::default() },
        regime: rusto::compute::RegimeConfig { window_bars: 10, min_history: 5, ..Default::default() },
        tune: rusto::compute::TuneConfig { every_bars: 5, lookback_bars: 20, lookahead_bars: 4, ..Default::default() },
        ..EngineConfig::default()
    };
    let (allocs, engine, events) = run(&lines, cfg, vec![]);
    let s = &engine.symbols[0];
    assert!(s.book.is_synced() && s.audit_compared > 0 && s.trades > 10_000, "the real pipeline ran");
    assert!(events > 200_000);
    assert!(s.bars.closed > 100, "bars closed: {}", s.bars.closed);
    assert!(s.tuner.runs > 10, "tuning runs: {}", s.tuner.runs);
    assert!(s.levels.is_some());
    assert_eq!(allocs, 0, "{allocs} heap allocations on the hot path after warm-up");
    // The execution path too (orders in flight, resting take profits, stops, funding, five accounts), on the
    // bundled exchangeInfo's ticks as `rusto replay` uses them.
    let cfg = rusto::app::Config::load("tests/config/realism.toml").unwrap().engine();
    let info = std::fs::read("data/exchange-info/binance-usdm.json").unwrap();
    let specs = rusto::ingest::parse_exchange_info(&info).unwrap();
    let (allocs, engine, _) = run(&lines, cfg, specs);
    let t = &engine.symbols[0].traders[0];
    assert!(
        t.opened > 10 && t.maker_fills > 2 && t.funding != 0.0,
        "{} opened, {} maker fills, funding {}",
        t.opened,
        t.maker_fills,
        t.funding
    );
    assert_eq!(allocs, 0, "{allocs} heap allocations on the execution path after warm-up");
}

#[test]
fn the_order_path_allocates_nothing_after_warm_up() {
    // Issue 12: the venue beside the base account (caps, intents into the SPSC ring), each intent encoded and
    // HMAC-signed into the WebSocket API frame the network thread writes, and the exchange's answer coming back as
    // the Exec/ExecMore event pair on the inbound path, on every decision of the real sample with counting on.
    use rusto::compute::{Venue, VenueConfig};
    use rusto::types::{ExecKind, ExecReport, IntentKind, OrderIntent, OrderType};
    let lines = load_lines();
    let cfg = rusto::app::Config::load("tests/config/realism.toml").unwrap().engine();
    let info = std::fs::read("data/exchange-info/binance-usdm.json").unwrap();
    let specs = rusto::ingest::parse_exchange_info(&info).unwrap();
    let btc = *specs.iter().find(|s| s.name.as_str() == "BTCUSDT").unwrap();
    let mut engine = Engine::new(cfg);
    let (itx, mut irx) = rusto::handoff::ring::<OrderIntent>(256);
    let caps = VenueConfig {
        run_id: 7,
        order_notional_max: 1e9,
        symbol_notional_max: 1e9,
        total_notional_max: 1e9,
        orders_per_min_max: 1000,
        daily_loss_max: 1e9,
        ..VenueConfig::default()
    };
    engine.attach_venue(Venue::new(caps, itx, Default::default()));
    let creds =
        Credentials { api_key: ApiKey::new("vmskNoAllocKey").unwrap(), signer: Signer::hmac(b"secret").unwrap() };
    let mut req = RequestBuf::new();
    let (mut sent, mut bytes, mut next_id) = (0u64, 0usize, 0u64);
    let mut exchange = |engine: &mut Engine| {
        while let Some(i) = irx.pop() {
            next_id += 1;
            let at = SignedAt { timestamp_ms: 1_680_652_800_000, recv_window_ms: 5000 };
            req.encode_intent(next_id, &i, &btc, at, Auth::Signed(&creds)).unwrap();
            bytes += req.as_bytes().len();
            sent += 1;
            let px = engine.symbols[i.symbol as usize].last_px;
            let fill = i.kind == IntentKind::Place && i.order_type == OrderType::Market;
            let kind = match (fill, i.kind) {
                (true, _) => ExecKind::Fill,
                (false, IntentKind::Cancel) => ExecKind::Canceled,
                _ => ExecKind::Ack,
            };
            let (q, px) = if fill { (i.qty_steps, px) } else { (0, 0) };
            let x = ExecReport {
                exchange_order_id: next_id as i64,
                ..ExecReport::of_intent(&i, kind, q, px, 1_680_652_800_000)
            };
            for e in x.to_events(0, 0) {
                let _ = engine.on_event(&e, &mut |_| {});
            }
        }
    };
    let (allocs, engine, _) = run_with(&lines, engine, specs, Some(&mut exchange));
    let v = engine.venue().unwrap();
    assert!(v.stats.entries > 10 && v.stats.stops_placed > 10, "{:?}", v.stats);
    assert!(sent > 50 && bytes > sent as usize * 200, "{sent} requests, {bytes} bytes");
    assert_eq!(allocs, 0, "{allocs} heap allocations on the order path after warm-up");
}

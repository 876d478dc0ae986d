//! A draining symbol opens no new position, on the real bundled recording: the same feed that opens positions on
//! the loose configuration opens none once the symbol drains, and the refused entries are counted apart from the
//! gate and risk rejections.

use rusto::app::Config;
use rusto::compute::Engine;
use rusto::ingest::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use rusto::recording::{Line, classify};
use rusto::types::MarketEvent;
use rusto::types::{DrainCmd, Record};
use rusto::types::{SymbolName, SymbolTable};

/// Runs the recording through a fresh engine (draining BTCUSDT from its first event when `drain`); returns the
/// engine and the positions opened.
fn run(drain: bool) -> (Engine, u64) {
    let cfg = Config::load("tests/config/loose-signals.toml").unwrap();
    let mut engine = Engine::new(cfg.engine());
    // BTCUSDT's real tick (0.10) from the bundled exchangeInfo, as `rusto replay` uses it (the config's bars are in ticks).
    let specs = rusto::ingest::parse_exchange_info(include_bytes!("../data/exchange-info/binance-usdm.json")).unwrap();
    let mut parser = Parser::new(SymbolTable::new(64, specs), 1 << 20);
    let btc = SymbolName::new(b"BTCUSDT").unwrap();
    let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let mut opened = 0;
    for f in ["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"] {
        let raw = std::fs::read(f).unwrap();
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text).unwrap();
        for line in text.split(|&c| c == b'\n') {
            let Line::Frame { ts_ns, json, .. } = classify(line) else { continue };
            let meta = FrameMeta { local_ts_ns: ts_ns, stamp_ns: 0, snapshot_symbol: Some(btc) };
            staging.clear();
            let _ = parser.parse_frame(json, &meta, &mut staging);
            for e in &staging {
                let _ = engine.on_event(e, &mut |r| opened += u64::from(matches!(r, Record::Opened { .. })));
                if drain && engine.symbols.first().is_some_and(|s| s.draining.is_none()) {
                    assert!(engine.drain(DrainCmd::Drain { name: btc, ticket: 1 }));
                }
            }
        }
    }
    (engine, opened)
}

#[test]
fn a_draining_symbol_opens_no_new_position_and_counts_the_refusals() {
    let (normal, opened) = run(false);
    assert!(opened > 0, "the loose configuration opens positions on this feed");
    assert_eq!(normal.symbols[0].drain_refused, 0);
    let (drained, none) = run(true);
    let s = &drained.symbols[0];
    assert_eq!(none, 0, "no position opened while draining");
    assert_eq!(s.trader().opened, 0);
    assert_eq!(s.trader().signals, normal.symbols[0].trader().signals, "signals still evaluated and counted");
    assert!(s.drain_refused >= opened, "every refused entry counted: {} < {opened}", s.drain_refused);
    let t = s.trader();
    assert_eq!(t.gate_rejects.iter().sum::<u64>(), 0, "not a gate rejection");
    assert_eq!(t.risk_rejects.iter().sum::<u64>(), 0, "not a risk rejection");
    assert_eq!(s.drained(), Some(1), "flat and draining: the drain is confirmed");
}

//! Wire parser on real frames (copied verbatim from the recordings in tests/data and data/sample; the only edits are
//! the deliberate ones a test names, such as an added unknown field).

use rusto::ingest::{FrameKind, FrameMeta, MAX_EVENTS_PER_FRAME, ParseError, Parser};
use rusto::types::{EventKind, MarketEvent, flags};
use rusto::types::{SymbolName, SymbolTable};

fn parser() -> Parser {
    Parser::new(SymbolTable::new(64, vec![]), 1 << 20)
}

fn parse(p: &mut Parser, frame: &str) -> (Result<FrameKind, ParseError>, Vec<MarketEvent>) {
    let mut out = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let meta = FrameMeta { local_ts_ns: 7, stamp_ns: 0, snapshot_symbol: SymbolName::new(b"BTCUSDT") };
    let r = p.parse_frame(frame.as_bytes(), &meta, &mut out);
    (r, out)
}

const AGG: &str = r#"{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1626992744262,"a":87353230,"s":"SUSHIUSDT","p":"7.6120","q":"297","f":126902924,"l":126902927,"T":1626992744108,"m":false}}"#;
const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}"#;
const INSURANCE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652874406,"T":1680652874400,"s":"BTCUSDT","t":3535191080,"p":"28722.50","q":"0.001","X":"INSURANCE_FUND","m":true}}"#;
const DEPTH: &str = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1680652700594,"T":1680652700586,"s":"BTCUSDT","U":2710246765373,"u":2710246765597,"pu":2710246765326,"b":[["5000.00","14.368"],["28018.90","0.000"],["28049.60","0.288"],["28080.20","3.000"]],"a":[["28145.20","6.961"],["28173.30","0.015"],["28220.30","0.424"]]}}"#;
const TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":2710246762461,"s":"BTCUSDT","b":"28145.10","B":"3.868","a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}}"#;
const MARK: &str = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28147.27373413","P":"28142.15563565","i":"28159.75642857","r":"0.00002754","T":1680652800000}}"#;
const SNAP: &str = r#"{"lastUpdateId": 2710246765483, "E": 1680652700590, "T": 1680652700580, "bids": [["28145.10", "3.818"], ["28145.00", "0.413"], ["28144.70", "0.002"]], "asks": [["28145.20", "6.887"]]}"#;

fn data(evs: &[MarketEvent]) -> Vec<MarketEvent> {
    evs.iter().filter(|e| e.kind != EventKind::SymbolDef).copied().collect()
}

#[test]
fn agg_trade_combined_wrapper() {
    let mut p = parser();
    let (r, out) = parse(&mut p, AGG);
    assert_eq!(r, Ok(FrameKind::Market));
    assert_eq!(out[0].kind, EventKind::SymbolDef);
    assert_eq!(out[0].symbol_name().as_str(), "SUSHIUSDT");
    let e = data(&out)[0];
    assert_eq!(e.kind, EventKind::Trade);
    assert_eq!(e.trade(), (76120, 297, 87353230, false));
    assert_eq!(e.p[3], 4, "f..l aggregates four trades");
    assert_eq!(e.exch_ts_ns, 1626992744108 * 1_000_000, "trade time T");
    assert_eq!(e.local_ts_ns, 7);
    assert!(e.flags & flags::AGG != 0);
    // Raw (unwrapped) form gives the same event.
    let raw = &AGG[AGG.find("\"data\":").unwrap() + 7..AGG.len() - 1];
    let (r2, out2) = parse(&mut p, raw);
    assert_eq!(r2, Ok(FrameKind::Market));
    assert_eq!(data(&out2), vec![e]);
}

#[test]
fn trade_market_and_insurance_fund() {
    let mut p = parser();
    let (_, out) = parse(&mut p, TRADE);
    let e = data(&out)[0];
    assert_eq!(e.kind, EventKind::Trade);
    assert_eq!(e.trade(), (2814510, 2, 3535186032, true));
    let (_, out) = parse(&mut p, INSURANCE);
    let e = data(&out)[0];
    assert_eq!(e.kind, EventKind::NonMarketTrade);
    assert!(e.flags & flags::PRINT_INSURANCE_FUND != 0);
    assert_eq!(p.stats.trade, 1);
    assert_eq!(p.stats.non_market_trade, 1);
}

#[test]
fn depth_update_becomes_header_and_continuations() {
    let mut p = parser();
    let (r, out) = parse(&mut p, DEPTH);
    assert_eq!(r, Ok(FrameKind::Market));
    let evs = data(&out);
    assert_eq!(evs.len(), 1 + 2 + 2);
    let (first, last, prev, nb, na) = evs[0].depth_ids();
    assert_eq!((first, last, prev, nb, na), (2710246765373, 2710246765597, 2710246765326, 4, 3));
    let (lv, n) = evs[1].levels();
    assert_eq!(n, 2);
    assert_eq!((lv[0].px, lv[0].qty, lv[1].px, lv[1].qty), (500000, 14368, 2801890, 0));
    let (lv, n) = evs[4].levels();
    assert_eq!(n, 1);
    assert!(evs[4].flags & flags::ASK != 0);
    assert_eq!((lv[0].px, lv[0].qty), (2822030, 424));
}

#[test]
fn partial_depth_stream_is_flagged() {
    let mut p = parser();
    let partial = DEPTH.replace("btcusdt@depth@0ms", "btcusdt@depth5@100ms");
    let (_, out) = parse(&mut p, &partial);
    assert!(data(&out)[0].flags & flags::PARTIAL != 0);
}

#[test]
fn book_ticker_and_mark_price() {
    let mut p = parser();
    let (_, out) = parse(&mut p, TICKER);
    let e = data(&out)[0];
    assert_eq!(e.book_ticker(), (2814510, 3868, 2814520, 6887, 2710246762461));
    let (_, out) = parse(&mut p, MARK);
    let e = data(&out)[0];
    assert_eq!(e.kind, EventKind::MarkPrice);
    assert_eq!(e.p, [2_814_727_373_413, 2_815_975_642_857, 2754, 1680652800000]);
}

#[test]
fn rest_snapshot_uses_the_symbol_hint() {
    let mut p = parser();
    let (r, out) = parse(&mut p, SNAP);
    assert_eq!(r, Ok(FrameKind::Snapshot));
    let evs = data(&out);
    assert_eq!(evs[0].kind, EventKind::Snapshot);
    assert_eq!(evs[0].p[0], 2710246765483);
    assert_eq!(evs[0].level_counts(), (3, 1));
    assert_eq!(evs.len(), 1 + 2 + 1);
    // Without a hint it is a counted error.
    let mut out = Vec::new();
    let r = p.parse_frame(SNAP.as_bytes(), &FrameMeta::default(), &mut out);
    assert_eq!(r, Err(ParseError::SnapshotWithoutSymbol));
}

#[test]
fn exchange_info_sets_ticks_and_steps() {
    let text = std::fs::read_to_string("tests/data/BINANCE_FUTURES.0.txt").unwrap();
    let body = text.lines().find(|l| l.contains("exchangeInfo")).unwrap();
    let body = &body[body.find('{').unwrap()..];
    let specs = rusto::ingest::parse_exchange_info(body.as_bytes()).unwrap();
    assert_eq!(specs.len(), 122);
    let btc = specs.iter().find(|s| s.name.as_str() == "BTCUSDT").unwrap();
    assert_eq!(btc.tick, rusto::types::Scale { dec: 2, unit: 1 });
    assert_eq!(btc.step, rusto::types::Scale { dec: 3, unit: 1 });
    // Through the frame parser: the table is updated, and later frames use those scales.
    let mut p = Parser::new(SymbolTable::new(64, vec![]), 1 << 20);
    let mut out = Vec::new();
    let (r, _) = {
        let r = p.parse_frame(body.as_bytes(), &FrameMeta::default(), &mut out);
        (r, ())
    };
    assert_eq!(r, Ok(FrameKind::ExchangeInfo));
    let (_, out) = parse(&mut p, TRADE);
    assert_eq!(data(&out)[0].trade().0, 2814510);
    assert_eq!(p.stats.inferred_scales, 0);
}

#[test]
fn unknown_fields_are_ignored_and_unknown_events_counted() {
    let mut p = parser();
    let extra = TRADE.replace("\"X\":\"MARKET\"", "\"X\":\"MARKET\",\"zz\":{\"nested\":[1,2,{\"a\":null}]},\"yy\":1.5");
    let (r, out) = parse(&mut p, &extra);
    assert_eq!(r, Ok(FrameKind::Market));
    assert_eq!(data(&out)[0].trade().0, 2814510);
    let (r, out) = parse(
        &mut p,
        r#"{"stream":"ctkusdt@kline_1m","data":{"e":"kline","E":1626992741424,"s":"CTKUSDT","k":{"t":1626992700000,"T":1626992759999,"s":"CTKUSDT","i":"1m","f":23961275,"L":23961322,"o":"1.01000","c":"1.01100","h":"1.01100","l":"1.01000","v":"3917","n":48,"x":false,"q":"3957.89900","V":"1729","Q":"1748.01900","B":"0"}}}"#,
    );
    assert_eq!(r, Ok(FrameKind::Unknown));
    assert!(out.is_empty());
    assert_eq!(p.stats.unknown_event, 1);
    let (r, _) = parse(&mut p, r#"{"result":null,"id":1}"#);
    assert_eq!(r, Ok(FrameKind::Control));
}

//! Bad input, feed cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).

use std::io::Write;

use rusto::ingest::{FrameKind, ParseError};
use rusto::types::MarketEvent;

const AGG_TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1680652700455,"s":"BTCUSDT","a":1,"p":"28145.10","q":"0.002","f":10,"l":11,"T":1680652700452,"m":true}}"#;
const BOOK_TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":2710246762461,"s":"BTCUSDT","b":"28145.10","B":"3.868","a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}}"#;
const MARK_PRICE: &str = r#"{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28147.27373413","P":"28142.15563565","i":"28159.75642857","r":"0.00002754","T":1680652800000}}"#;

/// `frame` with the value of string field `field` replaced by `value` (the first occurrence of `"field":"`).
fn with(frame: &str, field: &str, value: &str) -> String {
    let key = format!("\"{field}\":\"");
    let at = frame.find(&key).unwrap_or_else(|| panic!("{field} in {frame}")) + key.len();
    let end = at + frame[at..].find('"').unwrap();
    format!("{}{value}{}", &frame[..at], &frame[end..])
}

/// Every zero or negative price or quantity of every kind that carries one, with the error it must give.
fn not_positive_cases() -> Vec<(String, ParseError)> {
    let mut cases = Vec::new();
    let fields: [(&str, &[&'static str]); 4] = [
        (super::TRADE, &["p", "q"]),
        (AGG_TRADE, &["p", "q"]),
        (BOOK_TICKER, &["b", "B", "a", "A"]),
        (MARK_PRICE, &["p", "i"]),
    ];
    for (frame, names) in fields {
        for &name in names {
            for value in ["-0.002", "0", "0.00", "-1"] {
                cases.push((with(frame, name, value), ParseError::NotPositive(name)));
            }
        }
    }
    cases
}

/// Issue 14 item 3: a zero or negative trade, aggTrade, bookTicker or markPrice price or quantity is a malformed
/// frame (`not_positive`), on the fast path and on the simd-json path alike; nothing is emitted, no scale is
/// learnt from it, and the next good frame parses as before.
#[test]
fn zero_or_negative_prices_and_quantities_are_refused_by_kind() {
    let cases = not_positive_cases();
    assert_eq!(cases.len(), 4 * (2 + 2 + 4 + 2));
    for fast in [true, false] {
        let mut p = super::parser();
        p.set_fast_path(fast);
        for (frame, want) in &cases {
            let (r, len) = super::parse(&mut p, frame.as_bytes());
            assert_eq!(r, Err(*want), "fast path {fast}: {frame}");
            assert_eq!(len, 1, "no event of a refused frame: {frame}");
        }
        let k = ParseError::NotPositive("p").index();
        assert_eq!(ParseError::kind_name(k), "not_positive");
        assert_eq!(p.stats.malformed[k], cases.len() as u64);
        assert_eq!(p.stats.malformed_total(), cases.len() as u64);
        assert_eq!((p.stats.trade, p.stats.book_ticker, p.stats.mark_price), (0, 0, 0));
        assert!(p.symbols().is_empty(), "a refused frame teaches the table nothing");
        // The scales come from the first good frame: 28145.10 at a 0.01 tick, 0.002 at a 0.001 step.
        let mut out: Vec<MarketEvent> = Vec::new();
        let r = p.parse_frame(super::TRADE.as_bytes(), &Default::default(), &mut out);
        assert_eq!(r, Ok(FrameKind::Market));
        let t = out.iter().find(|e| e.kind == rusto::types::EventKind::Trade).unwrap();
        assert_eq!((t.trade_price_ticks(), t.trade_qty_steps()), (2_814_510, 2));
    }
}

/// The same cases through a replay: counted under `malformed_kinds.not_positive`, traded quantity and CVD those of
/// the one good trade.
#[test]
fn a_replay_counts_zero_or_negative_values_as_malformed_and_leaves_the_flow_alone() {
    let cases = not_positive_cases();
    let mut text = Vec::new();
    let ts = 1_680_652_700_441_533u64;
    writeln!(text, "{ts} {}", super::TRADE).unwrap();
    for (k, (frame, _)) in cases.iter().enumerate() {
        writeln!(text, "{} {frame}", ts + 1 + k as u64).unwrap();
    }
    let r = super::replay(vec![super::tmp("not-positive.txt", &text)]).unwrap();
    let j = rusto::report::to_json(&r);
    assert_eq!(j["malformed"], cases.len());
    assert_eq!(j["malformed_kinds"], serde_json::json!({"not_positive": cases.len()}));
    let btc = &j["symbols"]["BTCUSDT"];
    assert_eq!(btc["trades"], 1);
    assert_eq!(btc["trade_qty"], "0.002");
    assert_eq!(btc["cvd"], "-0.002", "the good trade was a sell (buyer maker); the refused ones moved nothing");
}

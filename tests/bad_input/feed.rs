//! Bad input, feed cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).

use std::io::Write;

use rusto::ingest::{FrameKind, ParseError};
use rusto::types::DecimalError::Syntax;
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

/// A fresh parser (fast path on or off) fed every case: each is refused with its error and emits nothing.
fn refused_each(cases: &[(String, ParseError)], fast: bool) -> rusto::ingest::Parser {
    let mut p = super::parser();
    p.set_fast_path(fast);
    for (frame, want) in cases {
        let (r, len) = super::parse(&mut p, frame.as_bytes());
        assert_eq!(r, Err(*want), "fast path {fast}: {frame}");
        assert_eq!(len, 1, "no event of a refused frame: {frame}");
    }
    p
}

/// Issue 14 item 3: a zero or negative trade, aggTrade, bookTicker or markPrice price or quantity is a malformed
/// frame (`not_positive`), on the fast path and on the simd-json path alike; nothing is emitted, no scale is
/// learnt from it, and the next good frame parses as before.
#[test]
fn zero_or_negative_prices_and_quantities_are_refused_by_kind() {
    let cases = not_positive_cases();
    assert_eq!(cases.len(), 4 * (2 + 2 + 4 + 2));
    for fast in [true, false] {
        let mut p = refused_each(&cases, fast);
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

/// Replays one good trade followed by each case's frame (a recording named `name`); returns the JSON summary.
fn replay_after_a_good_trade(name: &str, cases: &[(String, ParseError)]) -> serde_json::Value {
    let mut text = Vec::new();
    let ts = 1_680_652_700_441_533u64;
    writeln!(text, "{ts} {}", super::TRADE).unwrap();
    for (k, (frame, _)) in cases.iter().enumerate() {
        writeln!(text, "{} {frame}", ts + 1 + k as u64).unwrap();
    }
    let r = super::replay(vec![super::tmp(name, &text)]).unwrap();
    rusto::report::to_json(&r)
}

/// The same cases through a replay: counted under `malformed_kinds.not_positive`, traded quantity and CVD those of
/// the one good trade.
#[test]
fn a_replay_counts_zero_or_negative_values_as_malformed_and_leaves_the_flow_alone() {
    let cases = not_positive_cases();
    let j = replay_after_a_good_trade("not-positive.txt", &cases);
    assert_eq!(j["malformed"], cases.len());
    assert_eq!(j["malformed_kinds"], serde_json::json!({"not_positive": cases.len()}));
    let btc = &j["symbols"]["BTCUSDT"];
    assert_eq!(btc["trades"], 1);
    assert_eq!(btc["trade_qty"], "0.002");
    assert_eq!(btc["cvd"], "-0.002", "the good trade was a sell (buyer maker); the refused ones moved nothing");
}

/// The lines of the bundled 2023-04-04 recording (decompressed).
fn sample_lines() -> Vec<String> {
    let raw = std::fs::read("data/sample/btcusdt_20230404.dat.gz").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).unwrap();
    text.lines().map(str::to_string).collect()
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// A fixed permutation (Fisher–Yates driven by xorshift64, seed 14), the same on every run.
fn shuffled(mut lines: Vec<String>) -> Vec<String> {
    let mut x: u64 = 14;
    for i in (1..lines.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lines.swap(i, (x % (i as u64 + 1)) as usize);
    }
    lines
}

/// Every trade frame and every depth message of one symbol lands in exactly one counter.
fn assert_every_event_accounted(r: &rusto::report::ReplayReport) {
    let trades: u64 = r.engine.symbols.iter().map(|s| s.trades + s.duplicate_trades + s.out_of_order_trades).sum();
    let non_market: u64 = r.engine.symbols.iter().map(|s| s.non_market_trades).sum();
    assert_eq!(trades + non_market, r.parse.trade + r.parse.non_market_trade, "every trade frame counted once");
    let depth: u64 = r
        .engine
        .symbols
        .iter()
        .map(|s| {
            let b = &s.book.stats;
            b.depth_applied + b.duplicates + b.depth_before_sync + s.book.buffered_messages() + b.partial_depth
        })
        .sum();
    assert_eq!(depth, r.parse.depth, "every depth message counted once");
    let tickers: u64 = r
        .engine
        .symbols
        .iter()
        .map(|s| {
            let k = &s.audit_skipped;
            s.audit_compared + k.unsynced + k.passed + k.overflow + s.audit_queue.pending()
        })
        .sum();
    assert_eq!(tickers, r.parse.book_ticker, "every bookTicker compared or not compared for a counted reason");
}

/// Issue 14 item 5: a shuffled recording drops most trades and diffs, and says so: the 2,197 trade frames are
/// 7 trades taken, the rest out of order (none is a copy); the 4,322 diffs are all before the sync or still
/// waiting for a snapshot.
#[test]
fn a_shuffled_recording_counts_every_dropped_trade_and_diff() {
    let lines = shuffled(sample_lines());
    let r = super::replay(vec![super::tmp("shuffled.dat", &joined(&lines))]).unwrap();
    assert_eq!((r.parse.trade, r.parse.depth), (2_197, 4_322));
    let s = &r.engine.symbols[0];
    let b = &s.book.stats;
    let got = (s.trades, s.duplicate_trades, s.out_of_order_trades);
    let depth = (b.depth_applied, b.duplicates, b.depth_before_sync, s.book.buffered_messages());
    assert_eq!(got, (7, 0, 2_190), "trades taken, duplicates, out of order");
    assert_eq!(depth, (0, 0, 2_677, 1_645), "diffs applied, duplicates, before sync, still buffered");
    assert_every_event_accounted(&r);
    let j = rusto::report::to_json(&r);
    let d = &j["symbols"]["BTCUSDT"]["dropped"];
    assert_eq!((d["out_of_order_trades"].as_u64(), d["depth_before_sync"].as_u64()), (Some(got.2), Some(depth.2)));
    assert_eq!(d["depth_buffered"], depth.3);
    let audit = &j["symbols"]["BTCUSDT"]["book_audit"];
    assert_eq!(audit["not_compared"]["unsynced"], 6_765, "the book never synced: no ticker compared");
    let text = rusto::report::to_text(&r);
    let want =
        format!("trades duplicate 0, out of order {}; depth duplicate 0, reordered 0, before sync {}", got.2, depth.2);
    assert!(text.contains(&want), "{text}");
}

/// The recording concatenated with itself: exactly the second copy's trades are duplicates, its diffs are
/// duplicates of applied ones, its snapshot is not needed, and the book audit is not counted twice.
#[test]
fn a_recording_concatenated_twice_counts_the_copy_as_duplicates() {
    let lines = sample_lines();
    let once = super::replay(vec![super::tmp("once.dat", &joined(&lines))]).unwrap();
    let twice: Vec<String> = lines.iter().chain(lines.iter()).cloned().collect();
    let r = super::replay(vec![super::tmp("twice.dat", &joined(&twice))]).unwrap();
    let (s, o) = (&r.engine.symbols[0], &once.engine.symbols[0]);
    assert_eq!((o.trades, o.duplicate_trades), (2_197, 0));
    assert_eq!((s.trades, s.duplicate_trades, s.out_of_order_trades), (2_197, 2_197, 0));
    assert_eq!(s.qty.unwrap().to_string(s.trade_qty), o.qty.unwrap().to_string(o.trade_qty));
    assert_eq!((s.book.stats.depth_applied, s.book.stats.duplicates), (4_322, 4_322));
    assert_eq!(s.book.stats.snapshots_ignored, 1);
    assert_eq!((s.audit_compared, s.audit_matched), (o.audit_compared, o.audit_matched));
    assert_every_event_accounted(&r);
    let j = rusto::report::to_json(&r);
    let d = &j["symbols"]["BTCUSDT"]["dropped"];
    assert_eq!(
        (&d["duplicate_trades"], &d["depth_duplicates"], &d["snapshots_ignored"]),
        (&2_197.into(), &4_322.into(), &1.into())
    );
}

/// The cryptofeed recording's snapshots arrive after its streams start: the diffs older than each snapshot are
/// counted as before sync (3 + 1 + 3 + 5 of 764), and every other diff is applied.
#[test]
fn diffs_older_than_the_snapshot_are_counted_before_sync() {
    let files = vec!["tests/data/BINANCE_FUTURES.ws.1.0.txt".into(), "tests/data/BINANCE_FUTURES.http.0.0.txt".into()];
    let r = super::replay(files).unwrap();
    let got: Vec<(&str, u64, u64)> = r
        .engine
        .symbols
        .iter()
        .map(|s| (s.name.as_str(), s.book.stats.depth_before_sync, s.book.stats.depth_applied))
        .collect();
    assert_eq!(got, [("SUSHIUSDT", 3, 252), ("AKROUSDT", 1, 188), ("KEEPUSDT", 3, 132), ("CTKUSDT", 5, 180)]);
    assert_eq!(r.parse.depth, 764);
    assert_every_event_accounted(&r);
}

fn feed_error(files: Vec<std::path::PathBuf>) -> rusto::recording::FeedError {
    match super::replay(files) {
        Err(rusto::app::ReplayError::Feed(e)) => e,
        Err(e) => panic!("not a feed error: {e}"),
        Ok(_) => panic!("must be refused"),
    }
}

/// Issue 14 item 8: the same file given twice (same name, another spelling, a symlink, a hard link) is refused,
/// naming both names; merged with itself it would count every event (and the book audit) twice.
#[test]
fn the_same_file_given_twice_is_refused_under_any_name() {
    let lines = sample_lines();
    let a = super::tmp("same.dat", &joined(&lines[..2_000]));
    let dir = a.parent().unwrap().to_path_buf();
    let spelled = dir.join(".").join("same.dat");
    let link = dir.join("same-link.dat");
    let hard = dir.join("same-hard.dat");
    let _ = std::fs::remove_file(&link); // left by an earlier run of this process id: absent is fine
    let _ = std::fs::remove_file(&hard);
    std::os::unix::fs::symlink(&a, &link).unwrap();
    std::fs::hard_link(&a, &hard).unwrap();
    for second in [a.clone(), spelled, link, hard] {
        let e = feed_error(vec![a.clone(), second.clone()]);
        assert!(
            matches!(&e, rusto::recording::FeedError::SameFile { path, first } if *path == second && *first == a),
            "{e}"
        );
        let want =
            format!("{}: the same file as {} (given twice); pass each recording once", second.display(), a.display());
        assert_eq!(e.to_string(), want);
    }
    // Two different files with the same content are two recordings: merged as usual.
    let copy = super::tmp("same-copy.dat", &joined(&lines[..2_000]));
    assert!(super::replay(vec![a, copy]).is_ok());
}

/// Issue 14 item 8, one rule: a file with lines but not one valid frame is an error naming the file and the count
/// of lines rejected, whether it is one 50 MB line, lines in no format, or frames the parser refuses.
#[test]
fn a_file_without_one_valid_frame_is_an_error() {
    use rusto::recording::{FeedError, Rejected};
    let max_line = rusto::app::Config::default().parser.max_frame_bytes + 64;
    let mut big = b"1680652700441533 ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 50 << 20));
    big.push(b'\n');
    let ts = 1_680_652_700_441_533u64;
    let refused: String = (0..3).map(|k| format!("{} {}\n", ts + k, &super::TRADE[..40])).collect();
    let cases = [
        ("one-line.txt", big, Rejected { oversize: 1, max_line, ..Default::default() }),
        ("bad-lines.txt", b"not a recording\nnor this\n".to_vec(), Rejected { bad: 2, max_line, ..Default::default() }),
        ("refused.txt", refused.into_bytes(), Rejected { malformed: 3, max_line, ..Default::default() }),
    ];
    for (name, bytes, want) in cases {
        let path = super::tmp(name, &bytes);
        let e = feed_error(vec![path.clone()]);
        assert!(matches!(&e, FeedError::NoValidFrame { path: p, rejected } if *p == path && *rejected == want), "{e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!(
            "{}: not one valid frame; lines rejected: {}",
            path.display(),
            want.total()
        )));
    }
    let path = super::tmp("one-refused.txt", b"1680652700441533 x\n");
    assert_eq!(
        feed_error(vec![path.clone()]).to_string(),
        format!(
            "{}: not one valid frame; lines rejected: 1 (0 not in a recording format, 0 longer than the \
             {max_line}-byte line limit, 1 malformed frames)",
            path.display()
        )
    );
    // 1 MB of random bytes: refused after the first lines already, with their count.
    let mut x: u64 = 8;
    let random: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let path = super::tmp("random.bin", &random);
    let e = feed_error(vec![path.clone()]);
    assert!(matches!(&e, FeedError::UnknownFormat { lines: 64, .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}: not a recording in a known format (the first 64", path.display())));
    // One valid frame among the bad lines: a counted recovery, not an error.
    let mut mixed = format!("{ts} {}\n", super::TRADE).into_bytes();
    mixed.extend_from_slice(b"not a recording\nnor this\n");
    let r = super::replay(vec![super::tmp("mixed-one-good.txt", &mixed)]).unwrap();
    assert_eq!((r.engine.symbols[0].trades, r.feed.bad_lines), (1, 2));
    // Nothing to read is not an error: nothing was refused.
    for (name, bytes) in [
        ("nothing.txt", &b""[..]),
        ("blank.txt", &b"\n\n  \n"[..]),
        ("connection-only.txt", &b"wss://fstream.binance.com/stream?streams=a@b <-> 1626992740.179554\n"[..]),
    ] {
        let r = super::replay(vec![super::tmp(name, bytes)]).unwrap();
        assert_eq!(r.parse.frames, 0, "{name}");
    }
}

/// `frame` without its string field `field` (the `,"field":"…"` pair removed).
fn without(frame: &str, field: &str) -> String {
    let key = format!(",\"{field}\":\"");
    let at = frame.find(&key).unwrap_or_else(|| panic!("{field} in {frame}"));
    let end = at + key.len() + frame[at + key.len()..].find('"').unwrap() + 1;
    format!("{}{}", &frame[..at], &frame[end..])
}

/// Every markPrice frame with a missing or non-numeric `p` or `r`, with the error it must give.
fn bad_mark_price_cases() -> Vec<(String, ParseError)> {
    let mut cases = Vec::new();
    for name in ["p", "r"] {
        cases.push((without(MARK_PRICE, name), ParseError::MissingField(name)));
        for value in ["abc", "", "1.2.3", "0x10"] {
            cases.push((with(MARK_PRICE, name, value), ParseError::Decimal(name, Syntax)));
        }
    }
    cases
}

/// Issue 10 (bad input): a markPrice frame with a missing or non-numeric mark price `p` or funding rate `r` is a
/// malformed frame (`missing_field` / `decimal`), on the fast path and on the simd-json path alike; nothing is
/// emitted and no markPrice is counted.
#[test]
fn a_mark_price_without_a_numeric_p_or_r_is_malformed() {
    let cases = bad_mark_price_cases();
    assert_eq!(cases.len(), 10);
    for fast in [true, false] {
        let mut p = refused_each(&cases, fast);
        let (missing, decimal) = (ParseError::MissingField("r").index(), ParseError::Decimal("r", Syntax).index());
        assert_eq!((ParseError::kind_name(missing), ParseError::kind_name(decimal)), ("missing_field", "decimal"));
        assert_eq!((p.stats.malformed[missing], p.stats.malformed[decimal]), (2, 8), "fast path {fast}");
        assert_eq!(p.stats.malformed_total(), 10);
        assert_eq!(p.stats.mark_price, 0);
        let (r, _) = super::parse(&mut p, MARK_PRICE.as_bytes());
        assert_eq!(r, Ok(FrameKind::Market), "the good frame still parses");
        assert_eq!(p.stats.mark_price, 1);
    }
}

/// The same cases through a replay: counted under `malformed_kinds`, with exact counts per kind.
#[test]
fn a_replay_counts_bad_mark_prices_by_kind() {
    let cases = bad_mark_price_cases();
    let j = replay_after_a_good_trade("bad-mark-price.txt", &cases);
    assert_eq!(j["malformed"], 10);
    assert_eq!(j["malformed_kinds"], serde_json::json!({"missing_field": 2, "decimal": 8}));
}

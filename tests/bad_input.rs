//! Bad input: every case gets a clear error or a counted recovery, never a panic or a hang.

use std::io::Write;
use std::path::PathBuf;

use rusto::app::Config;
use rusto::app::{ReplayError, ReplayOptions, run_replay};
use rusto::ingest::{FrameMeta, MAX_EVENTS_PER_FRAME, ParseError, Parser};
use rusto::recording::Speed;
use rusto::types::MarketEvent;
use rusto::types::{SymbolName, SymbolTable};

// One module per area, so the cases of each stage stay together (issue 14).
#[path = "bad_input/config.rs"]
mod config;
#[path = "bad_input/db.rs"]
mod db;
#[path = "bad_input/feed.rs"]
mod feed;
#[path = "bad_input/net.rs"]
mod net;

const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}"#;

fn parse(p: &mut Parser, frame: &[u8]) -> (Result<rusto::ingest::FrameKind, ParseError>, usize) {
    let mut out: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    out.push(MarketEvent::default()); // a previous frame's event must survive an error
    let meta = FrameMeta { snapshot_symbol: SymbolName::new(b"BTCUSDT"), ..Default::default() };
    let r = p.parse_frame(frame, &meta, &mut out);
    (r, out.len())
}

fn parser() -> Parser {
    Parser::new(SymbolTable::new(8, vec![]), 1 << 20)
}

#[test]
fn malformed_frames_are_counted_by_kind_and_the_stream_goes_on() {
    let mut p = parser();
    let cases: Vec<(Vec<u8>, ParseError)> = vec![
        (TRADE.as_bytes()[..TRADE.len() / 2].to_vec(), ParseError::Json),
        (b"hello, not json".to_vec(), ParseError::Json),
        (TRADE.replace("\"p\":\"28145.10\"", "\"p\":1.0").into_bytes(), ParseError::WrongType("p")),
        (TRADE.replace("\"q\":\"0.002\",", "").into_bytes(), ParseError::MissingField("q")),
        (
            TRADE.replace("\"28145.10\"", "\"28,145.10\"").into_bytes(),
            ParseError::Decimal("p", rusto::types::DecimalError::Syntax),
        ),
        (TRADE.replace("BTCUSDT", "BTC/USDT").into_bytes(), ParseError::Symbol(rusto::types::InternError::Invalid)),
        (b"[1,2,3]".to_vec(), ParseError::Shape),
        (vec![b' '; 2 << 20], ParseError::TooLarge(2 << 20)),
        (vec![0xff, 0xfe, b'{'], ParseError::Json),
        (Vec::new(), ParseError::Json),
    ];
    for (frame, want) in &cases {
        let (r, len) = parse(&mut p, frame);
        assert_eq!(r.as_ref().err(), Some(want), "{:?}", String::from_utf8_lossy(&frame[..frame.len().min(80)]));
        assert_eq!(len, 1, "output restored on error");
        // The next good frame still parses.
        let (r, len) = parse(&mut p, TRADE.as_bytes());
        assert!(r.is_ok());
        assert!(len >= 2);
    }
    assert_eq!(p.stats.malformed_total(), cases.len() as u64);
    assert_eq!(p.stats.malformed[ParseError::Json.index()], 4);
}

#[test]
fn symbol_table_full_is_a_counted_error() {
    let mut p = Parser::new(SymbolTable::new(1, vec![]), 1 << 20);
    assert!(parse(&mut p, TRADE.as_bytes()).0.is_ok());
    let other = TRADE.replace("BTCUSDT", "ETHUSDT");
    assert_eq!(parse(&mut p, other.as_bytes()).0, Err(ParseError::Symbol(rusto::types::InternError::Full(1))));
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn replay(files: Vec<PathBuf>) -> Result<rusto::report::ReplayReport, ReplayError> {
    let opts = ReplayOptions {
        files,
        speed: Speed::Asap,
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: None,
        window: Default::default(),
    };
    run_replay(&Config::default(), &opts)
}

#[test]
fn a_file_of_bad_lines_is_counted_and_replay_goes_on() {
    let mut text = Vec::new();
    let ts = 1680652700441533u64;
    writeln!(text, "{ts} {TRADE}").unwrap();
    writeln!(text, "{} {}", ts + 1, &TRADE[..40]).unwrap(); // truncated
    writeln!(text, "this line is not a recording line").unwrap();
    writeln!(text, "{} {}", ts + 2, TRADE.replace("\"p\":\"28145.10\"", "\"p\":1.0")).unwrap();
    writeln!(text, "{} {{\"e\":\"somethingNew\",\"s\":\"BTCUSDT\"}}", ts + 3).unwrap();
    text.extend_from_slice(format!("{} ", ts + 4).as_bytes());
    text.extend(std::iter::repeat_n(b'x', 10 << 20)); // a 10 MB line
    text.push(b'\n');
    writeln!(text, "{} {}", ts + 5, TRADE.replace("3535186032", "3535186033")).unwrap();
    let r = replay(vec![tmp("mixed.txt", &text)]).unwrap();
    let btc = &r.engine.symbols[0];
    assert_eq!(btc.trades, 2, "both good trades counted once");
    assert_eq!(r.parse.malformed[ParseError::Json.index()], 1);
    assert_eq!(r.parse.malformed[ParseError::WrongType("p").index()], 1);
    assert_eq!(r.parse.unknown_event, 1);
    assert_eq!(r.feed.bad_lines, 1);
    assert_eq!(r.feed.oversize_lines, 1);
}

#[test]
fn empty_file_replays_nothing() {
    let r = replay(vec![tmp("empty.txt", b"")]).unwrap();
    assert_eq!(r.parse.frames, 0);
    assert!(r.engine.symbols.is_empty());
}

#[test]
fn a_file_in_another_format_is_a_clear_error() {
    let csv: String = (0..200).map(|i| format!("agg_trade_id,price,quantity,{i}\n")).collect();
    let e = replay(vec![tmp("trades.csv", csv.as_bytes())]).err().expect("must fail").to_string();
    assert!(e.contains("not a recording in a known format"), "{e}");
}

#[test]
fn a_nonexistent_path_is_a_clear_error() {
    let e = replay(vec![PathBuf::from("/nonexistent/rusto.dat.gz")]).err().expect("must fail").to_string();
    assert!(e.contains("/nonexistent/rusto.dat.gz") && e.contains("no such file"), "{e}");
}

#[test]
fn a_corrupt_gzip_is_a_clear_error() {
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(b"definitely not deflate data");
    let e = replay(vec![tmp("corrupt.dat.gz", &gz)]).err().expect("must fail").to_string();
    assert!(e.contains("read error"), "{e}");
}

/// A depth gap mid-stream: the symbol unsyncs (counted) and the next snapshot resyncs it.
#[test]
fn depth_gap_mid_stream_unsyncs_until_the_next_snapshot() {
    let real = std::fs::read("data/sample/btcusdt_20230404.dat.gz").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&real[..]), &mut text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let snap = lines.iter().position(|l| l.contains("lastUpdateId")).unwrap();
    // Drop one depth update well after the sync, and repeat the snapshot line at the end of a later stretch.
    let depth_after: Vec<usize> = (snap + 1..lines.len()).filter(|&i| lines[i].contains("depthUpdate")).collect();
    let dropped = depth_after[500];
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i != dropped {
            out.push_str(l);
            out.push('\n');
        }
    }
    let r = replay(vec![tmp("gap.txt", out.as_bytes())]).unwrap();
    let btc = &r.engine.symbols[0];
    assert_eq!(btc.book.stats.gaps, 1);
    assert!(!btc.book.is_synced(), "no later snapshot in this file: stays unsynced");
    assert!(btc.book.wants_snapshot);
    assert_eq!(btc.book.stats.crossed, 0);
    // Every trade still counted: trades do not depend on the book.
    assert_eq!(btc.trades as usize, lines.iter().filter(|l| l.contains("\"X\":\"MARKET\"")).count());
}

#[test]
fn default_toml_is_the_built_in_default() {
    let file = Config::load("config/default.toml").unwrap();
    let d = Config::default();
    assert_eq!(format!("{:?}", file.pipeline), format!("{:?}", d.pipeline));
    assert_eq!(format!("{:?}", file.parser), format!("{:?}", d.parser));
    assert_eq!(format!("{:?}", file.book), format!("{:?}", d.book));
    assert_eq!(format!("{:?}", file.bars), format!("{:?}", d.bars));
    assert_eq!(format!("{:?}", file.flow), format!("{:?}", d.flow));
    assert_eq!(format!("{:?}", file.profile), format!("{:?}", d.profile));
    assert_eq!(format!("{:?}", file.regime), format!("{:?}", d.regime));
    assert_eq!(format!("{:?}", file.tune), format!("{:?}", d.tune));
    assert_eq!(format!("{:?}", file.gate), format!("{:?}", d.gate));
    assert_eq!(format!("{:?}", file.risk), format!("{:?}", d.risk));
    assert_eq!(format!("{:?}", file.position), format!("{:?}", d.position));
    assert_eq!(format!("{:?}", file.persist), format!("{:?}", d.persist));
    assert_eq!(format!("{:?}", file.live), format!("{:?}", d.live));
    assert_eq!(format!("{:?}", file.alerts), format!("{:?}", d.alerts));
    let (fs, ds) = (&file.strategy, &d.strategy);
    assert_eq!((fs.zone_bins, fs.require_reversal_bar, fs.base), (ds.zone_bins, ds.require_reversal_bar, ds.base));
    for (a, b) in [
        (fs.trend_high, ds.trend_high),
        (fs.trend_low, ds.trend_low),
        (fs.range_high, ds.range_high),
        (fs.range_low, ds.range_low),
    ] {
        assert!((a.min_imbalance - b.min_imbalance).abs() < 1e-9 && (a.min_cvd_change - b.min_cvd_change).abs() < 1e-9);
        assert!(
            (a.min_bar_range_pct - b.min_bar_range_pct).abs() < 1e-9
                && (a.min_burst_ratio - b.min_burst_ratio).abs() < 1e-9
        );
        assert_eq!(a.cooldown_bars, b.cooldown_bars);
    }
}

#[test]
fn bad_config_values_are_clear_errors() {
    for (text, key) in [
        ("[flow]\nsession_hours = 5\n", "flow.session_hours"),
        ("[tune]\ncandidates = []\n", "tune.candidates"),
        ("[regime]\ntrend_exit_pct = 0.5\n", "regime.trend_exit_pct"),
        ("[profile]\nbin_ticks = 0\n", "profile.bin_ticks"),
        (
            "[strategy]\nbase = { min_imbalance = -1.0, min_cvd_change = 1.0, min_bar_range_pct = 0.0, min_burst_ratio = 1.0, cooldown_bars = 1 }\n",
            "strategy.base",
        ),
    ] {
        let e = Config::from_toml(text, "t.toml").unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

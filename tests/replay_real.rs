//! Replays of real recordings through the full threaded pipeline, checked against independent counts.

use std::path::{Path, PathBuf};

use rusto::app::Config;
use rusto::app::{ReplayOptions, run_replay};
use rusto::recording::Speed;
use rusto::report::ReplayReport;

fn replay_with(files: &[PathBuf], bars_csv: Option<PathBuf>) -> ReplayReport {
    let opts = ReplayOptions {
        files: files.to_vec(),
        speed: Speed::Asap,
        bars_csv,
        exchange_info: None,
        signals_csv: None,
        db: None,
        window: Default::default(),
    };
    run_replay(&Config::default(), &opts).unwrap()
}

fn read_text(p: &Path) -> String {
    let raw = std::fs::read(p).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut s).unwrap();
        s
    } else {
        String::from_utf8(raw).unwrap()
    }
}

/// Independent count of market trades and their total quantity per symbol, with serde_json.
fn expected_trades(files: &[PathBuf]) -> std::collections::BTreeMap<String, (u64, f64, u64)> {
    let mut m = std::collections::BTreeMap::new();
    for f in files {
        for line in read_text(f).lines() {
            let Some(i) = line.find('{') else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line[i..]) else {
                continue;
            };
            let d = v.get("data").unwrap_or(&v);
            let e = d.get("e").and_then(|e| e.as_str()).unwrap_or("");
            let sym = d.get("s").and_then(|s| s.as_str()).unwrap_or("").to_string();
            let entry = m.entry(sym).or_insert((0u64, 0f64, 0u64));
            match e {
                "aggTrade" => {
                    entry.0 += 1;
                    entry.1 += d["q"].as_str().unwrap().parse::<f64>().unwrap();
                }
                "trade" if d["X"] == "MARKET" => {
                    entry.0 += 1;
                    entry.1 += d["q"].as_str().unwrap().parse::<f64>().unwrap();
                }
                "trade" => entry.2 += 1,
                _ => {}
            }
        }
    }
    m.retain(|_, v| v.0 + v.2 > 0);
    m
}

fn check_real(files: &[PathBuf]) -> ReplayReport {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let csv = std::env::temp_dir().join(format!("rusto-bars-{}-{k}.csv", std::process::id()));
    let r = replay_with(files, Some(csv.clone()));
    assert_eq!(r.parse.malformed_total() + r.feed.malformed_lines(), 0, "real data has no malformed frame");
    assert_eq!(r.feed.frames_dropped, 0);
    assert_eq!(r.engine.stats.records_lost, 0);
    let expected = expected_trades(files);
    for s in &r.engine.symbols {
        let name = s.name.as_str();
        let bs = &s.book.stats;
        assert_eq!(bs.gaps, 0, "{name}: the real recordings have no pu gap");
        assert_eq!(bs.crossed, 0, "{name}: the book is never crossed");
        assert!(s.book.is_synced(), "{name}: synced at the end");
        assert_eq!(bs.resyncs, 1, "{name}");
        assert!(s.audit_compared > 0, "{name}: the book audit compared tickers");
        assert_eq!(s.audit_compared, s.audit_matched, "{name}: every compared bookTicker matches the book");
        let (n, qty, non_market) = expected[name];
        assert_eq!(s.trades, n, "{name}: every market trade counted once");
        assert_eq!(s.non_market_trades, non_market, "{name}");
        let q = s.qty.unwrap().to_f64(s.trade_qty);
        assert!((q - qty).abs() < 1e-6 * qty.max(1.0), "{name}: traded quantity {q} vs {qty}");
        // Bar volumes plus the open bar add up to the traded quantity exactly.
        let open = s.bars.current().map_or(0, |b| b.volume);
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut closed_units = 0i64;
        let mut bars = 0u64;
        for line in text.lines().skip(1).filter(|l| l.starts_with(&format!("{name},"))) {
            let cols: Vec<&str> = line.split(',').collect();
            closed_units += s.qty.unwrap().parse(cols[7].as_bytes()).unwrap();
            let (hi, lo) = (
                s.price.unwrap().parse(cols[4].as_bytes()).unwrap(),
                s.price.unwrap().parse(cols[5].as_bytes()).unwrap(),
            );
            let range: i64 = cols[11].parse().unwrap();
            assert!(hi - lo <= range, "{name}: bar wider than its range: {line}");
            let (buy, sell) =
                (s.qty.unwrap().parse(cols[8].as_bytes()).unwrap(), s.qty.unwrap().parse(cols[9].as_bytes()).unwrap());
            assert_eq!(buy + sell, s.qty.unwrap().parse(cols[7].as_bytes()).unwrap());
            bars += 1;
        }
        assert_eq!(bars, s.bars.closed, "{name}");
        assert_eq!(closed_units + open, s.trade_qty, "{name}: bar volumes sum to the traded volume");
    }
    assert_eq!(r.engine.symbols.len(), expected.len());
    let _ = std::fs::remove_file(csv);
    r
}

fn sample() -> Vec<PathBuf> {
    vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()]
}

#[test]
fn bundled_btcusdt_sample() {
    let r = check_real(&sample());
    assert_eq!(r.parse.frames, 13_384 + 60_381);
    assert_eq!(r.parse.snapshot, 1);
    assert_eq!((r.parse.depth, r.parse.book_ticker, r.parse.mark_price), (4_322 + 11_788, 6_765 + 37_440, 99 + 415));
    let s = &r.engine.symbols[0];
    assert_eq!(s.name.as_str(), "BTCUSDT");
    // Pinned on this recording so a change in behaviour is noticed.
    assert_eq!(s.trades, 12_934);
    assert_eq!(s.qty.unwrap().to_string(s.trade_qty), "1189.085");
    assert_eq!(s.non_market_trades, 1, "the INSURANCE_FUND print");
    assert_eq!(s.book.stats.depth_applied, 16_110, "the first diff after the snapshot bridges it: every diff applied");
    let (b, a) = s.book.top();
    assert_eq!(s.price.unwrap().to_string(b.unwrap().px), "28140.10");
    assert_eq!(s.price.unwrap().to_string(a.unwrap().px), "28140.20");
    assert_eq!(s.audit_compared, 1565);
}

#[test]
fn cryptofeed_ws_with_separate_http_snapshots() {
    let r =
        check_real(&["tests/data/BINANCE_FUTURES.ws.1.0.txt".into(), "tests/data/BINANCE_FUTURES.http.0.0.txt".into()]);
    assert_eq!(r.engine.symbols.len(), 4);
    assert_eq!(r.parse.snapshot, 4);
}

#[test]
fn every_recording_in_shared_data() {
    let d = Path::new("../shared/data");
    if !d.exists() {
        eprintln!("../shared/data not present: skipped");
        return;
    }
    let c = d.join("cryptofeed-binance-futures-raw");
    check_real(&[c.join("BINANCE_FUTURES.ws.5.0.txt"), c.join("BINANCE_FUTURES.http.4.0.txt")]);
    check_real(&[c.join("BINANCE_FUTURES-1125a2.0.txt")]);
    let h = d.join("hftbacktest-usdm-raw");
    check_real(&[h.join("btcusdt_20230404.dat.gz"), h.join("btcusdt_20230405.dat.gz")]);
}

fn strip_timing(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    for k in ["latency_ns", "elapsed_s", "frames_per_s", "ring_full"] {
        o.remove(k);
    }
    v
}

#[test]
fn same_input_same_output() {
    let files = sample();
    let dir = std::env::temp_dir();
    let (c1, c2) = (
        dir.join(format!("rusto-det1-{}.csv", std::process::id())),
        dir.join(format!("rusto-det2-{}.csv", std::process::id())),
    );
    let r1 = replay_with(&files, Some(c1.clone()));
    let r2 = replay_with(&files, Some(c2.clone()));
    assert_eq!(strip_timing(rusto::report::to_json(&r1)), strip_timing(rusto::report::to_json(&r2)));
    let (b1, b2) = (std::fs::read(&c1).unwrap(), std::fs::read(&c2).unwrap());
    assert!(b1.len() > 100);
    assert_eq!(b1, b2, "bars identical run after run");
    let _ = (std::fs::remove_file(c1), std::fs::remove_file(c2));
}

#[test]
fn speed_factor_paces_by_local_timestamps() {
    // tests/data/BINANCE_FUTURES.ws.1.0.txt spans ≈ 30 s of local time; at 100× it must take at least ≈ 0.3 s.
    let files: Vec<PathBuf> =
        vec!["tests/data/BINANCE_FUTURES.ws.1.0.txt".into(), "tests/data/BINANCE_FUTURES.http.0.0.txt".into()];
    let opts = ReplayOptions {
        files,
        speed: Speed::Factor(100.0),
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: None,
        window: Default::default(),
    };
    let r = run_replay(&Config::default(), &opts).unwrap();
    assert!(r.elapsed.as_secs_f64() >= 0.28, "{:?}", r.elapsed);
    assert_eq!(r.engine.symbols.len(), 4);
    assert!("asap".parse::<Speed>().unwrap() == Speed::Asap);
    assert!("realtime".parse::<Speed>().unwrap() == Speed::Factor(1.0));
    assert!("0".parse::<Speed>().is_err() && "fast".parse::<Speed>().is_err());
}

fn replay_json(files: &[PathBuf], exchange_info: Option<PathBuf>) -> serde_json::Value {
    let opts = ReplayOptions {
        files: files.to_vec(),
        speed: Speed::Asap,
        bars_csv: None,
        exchange_info,
        signals_csv: None,
        db: None,
        window: Default::default(),
    };
    rusto::report::to_json(&run_replay(&Config::default(), &opts).unwrap())
}

fn scales(j: &serde_json::Value, sym: &str) -> serde_json::Value {
    j["symbols"][sym]["scales"].clone()
}

/// Issue 10 item 6: without `--exchange-info`, a replay takes each symbol's tick and step from the bundled real
/// exchangeInfo entries (BTCUSDT 0.10, not the 0.01 "28145.10" suggests), infers the symbols it has no entry for,
/// and says per symbol which; `--exchange-info` overrides the bundled entry.
#[test]
fn replay_takes_ticks_from_the_bundled_exchange_info_and_says_so() {
    let sample: Vec<PathBuf> =
        vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()];
    let r = replay_with(&sample, None);
    assert!(
        rusto::report::to_text(&r).contains("\ntick/step: BTCUSDT 0.10/0.001 bundled\n"),
        "{}",
        rusto::report::to_text(&r)
    );
    let j = rusto::report::to_json(&r);
    assert_eq!(scales(&j, "BTCUSDT"), serde_json::json!({"tick": "0.10", "step": "0.001", "source": "bundled"}));
    assert_eq!(j["malformed"], 0);
    // The 2021 body given as a file wins: BTCUSDT was at tick 0.01 then (every 0.10 price is on that grid too).
    let j = replay_json(&sample, Some("tests/data/BINANCE_FUTURES.0.txt".into()));
    assert_eq!(scales(&j, "BTCUSDT"), serde_json::json!({"tick": "0.01", "step": "0.001", "source": "exchange_info"}));
    let cf: Vec<PathBuf> =
        vec!["tests/data/BINANCE_FUTURES.ws.1.0.txt".into(), "tests/data/BINANCE_FUTURES.http.0.0.txt".into()];
    let j = replay_json(&cf, None);
    assert_eq!(scales(&j, "SUSHIUSDT"), serde_json::json!({"tick": "0.0010", "step": "1", "source": "bundled"}));
    assert_eq!(scales(&j, "AKROUSDT"), serde_json::json!({"tick": "0.00001", "step": "1", "source": "bundled"}));
    assert_eq!(scales(&j, "KEEPUSDT"), serde_json::json!({"tick": "0.0001", "step": "1", "source": "bundled"}));
    // CTKUSDT is not bundled (its snapshot holds levels off the 2021-07 grid): inferred from its first price.
    assert_eq!(scales(&j, "CTKUSDT")["source"], "inferred");
    assert_eq!(j["malformed"], 0);
}

/// A BTCUSDT price off the bundled 0.10 grid is a counted malformed frame (`decimal`: not on the tick grid), and
/// the flow keeps only the good trade; before the bundled table, "28145.15" taught an inferred 0.01 tick instead.
#[test]
fn a_price_off_the_bundled_tick_is_a_counted_malformed_frame() {
    let good = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":1,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}"#;
    let off = good.replace("28145.10", "28145.15").replace("\"t\":1,", "\"t\":2,");
    let text = format!("1680652700441533 {off}\n1680652700441534 {good}\n");
    let p = std::env::temp_dir().join(format!("rusto-offgrid-{}.txt", std::process::id()));
    std::fs::write(&p, text).unwrap();
    let j = replay_json(std::slice::from_ref(&p), None);
    let _ = std::fs::remove_file(&p);
    assert_eq!(j["malformed"], 1);
    assert_eq!(j["malformed_kinds"], serde_json::json!({"decimal": 1}));
    assert_eq!(j["symbols"]["BTCUSDT"]["trades"], 1);
    assert_eq!(scales(&j, "BTCUSDT"), serde_json::json!({"tick": "0.10", "step": "0.001", "source": "bundled"}));
}

//! The pre-parsed event cache of `rusto replay --cache`: a replay from the cache gives the same output as one that
//! parses (summary, latency stage counts, bars and signals CSVs, database rows); a corrupt, truncated or stale cache
//! file is refused, counted and rebuilt, never trusted.

use std::io::Read;
use std::path::{Path, PathBuf};

mod common;

use rusqlite::Connection;
use rusto::app::{CacheOutcome, Config, ReplayOptions, run_replay, run_replay_cached};
use rusto::recording::Speed;
use rusto::report::ReplayReport;

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-cache-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sample() -> Vec<PathBuf> {
    vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()]
}

fn loose() -> Config {
    Config::load("tests/config/loose-signals.toml").unwrap()
}

/// Everything a replay wrote, with the wall-clock parts left out.
#[derive(Debug, PartialEq)]
struct Output {
    summary: Vec<String>,
    bars_csv: String,
    signals_csv: String,
    db: Vec<String>,
}

/// The text summary without timing: the first line's elapsed time and rate, the ring-full count (how often the
/// producer found the ring full: a timing counter) and the latency values (stage names and counts stay, except the
/// count of database commits, which batch by time).
fn untimed(r: &ReplayReport) -> Vec<String> {
    let text = rusto::report::to_text(r);
    let mut in_latency = false;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push(line.split(" in ").next().unwrap().to_string());
            out.push(line.split(": ").nth(1).unwrap_or("").to_string());
            continue;
        }
        if line.starts_with("latency per stage") {
            in_latency = true;
        }
        if in_latency {
            // How many commits the persistence thread made depends on how rows arrived in time: name only.
            let cols = if line.starts_with("persist_commit") { 1 } else { 2 };
            out.push(line.split_whitespace().take(cols).collect::<Vec<_>>().join(" "));
        } else if let Some(k) = line.find("ring full ") {
            let rest = &line[k + 10..];
            let after = rest.find(',').map_or("", |j| &rest[j..]);
            out.push(format!("{}ring full _{after}", &line[..k]));
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// Every row of the trading tables, without run ids and wall-clock columns.
fn dump(db: &Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let tables = [
        (
            "positions",
            "seq, symbol, side, status, entry_ts_ms, entry_price, quantity, exit_ts_ms, exit_price, fees, pnl, \
             exit_reason, mfe_pct, mae_pct, regime, confidence, stop_price, tp1_price, tp2_price",
        ),
        ("fills", "position_id, ts_ms, kind, side, quantity, price, fee, pnl"),
        ("entry_features", "*"),
        ("volume_burst_tuning_logs", "symbol, ts_ms, tuned_ratio, previous_ratio, trades, changed"),
        ("hour_expectancy", "symbol, hour, pnl_pct"),
    ];
    common::rows(&c, &tables)
}

/// Replays `files` into fresh output files in `out_dir`, with the cache in `cache` when given.
fn replay(files: &[PathBuf], out_dir: &Path, cache: Option<&Path>) -> (Output, Option<CacheOutcome>) {
    for f in ["bars.csv", "signals.csv", "run.db", "run.db-wal", "run.db-shm"] {
        let _ = std::fs::remove_file(out_dir.join(f));
    }
    let opts = ReplayOptions {
        files: files.to_vec(),
        speed: Speed::Asap,
        bars_csv: Some(out_dir.join("bars.csv")),
        exchange_info: None,
        signals_csv: Some(out_dir.join("signals.csv")),
        db: Some(out_dir.join("run.db")),
        window: Default::default(),
    };
    let (r, outcome) = match cache {
        Some(dir) => run_replay_cached(&loose(), &opts, Some(dir)).unwrap(),
        None => (run_replay(&loose(), &opts).unwrap(), None),
    };
    assert_eq!((r.feed.frames_dropped, r.parse.malformed_total()), (0, 0));
    let out = Output {
        summary: untimed(&r),
        bars_csv: std::fs::read_to_string(out_dir.join("bars.csv")).unwrap(),
        signals_csv: std::fs::read_to_string(out_dir.join("signals.csv")).unwrap(),
        db: dump(&out_dir.join("run.db")),
    };
    (out, outcome)
}

/// Compares two outputs field by field (summary line by line), naming the first difference.
fn assert_same(a: &Output, b: &Output, what: &str) {
    for (i, (x, y)) in a.summary.iter().zip(&b.summary).enumerate() {
        assert_eq!(x, y, "{what}: summary line {i}");
    }
    assert_eq!(a.summary.len(), b.summary.len(), "{what}: summary lines");
    assert!(a.bars_csv == b.bars_csv, "{what}: bars CSV differs");
    assert!(a.signals_csv == b.signals_csv, "{what}: signals CSV differs");
    assert_eq!(a.db, b.db, "{what}: database rows");
}

fn only_cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one cache file and no temporary left: {files:?}");
    assert_eq!(files[0].extension().unwrap(), "evc");
    files[0].clone()
}

#[test]
fn cache_replay_output_is_identical_to_a_parse_replay() {
    let (out, cache) = (tmp_dir("same-out"), tmp_dir("same-cache"));
    let (parsed, none) = replay(&sample(), &out, None);
    assert!(none.is_none());
    assert!(parsed.db.iter().any(|r| r.starts_with("fills:")), "the loose config trades on the sample");
    assert!(parsed.signals_csv.lines().count() > 1 && parsed.bars_csv.lines().count() > 1);

    let (first, o1) = replay(&sample(), &out, Some(&cache));
    let o1 = o1.unwrap();
    assert!(!o1.hit && o1.written && o1.rejected == 0, "{o1:?}");
    assert_same(&first, &parsed, "writing the cache changes nothing");
    let file = only_cache_file(&cache);
    assert_eq!(o1.path, file);

    let (cached, o2) = replay(&sample(), &out, Some(&cache));
    let o2 = o2.unwrap();
    assert!(o2.hit && !o2.written && o2.rejected == 0, "{o2:?}");
    assert_same(&cached, &parsed, "a cache replay gives the parse replay's output");
}

/// A way to damage a cache file's bytes.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

#[test]
fn corrupt_or_truncated_cache_is_refused_counted_and_rebuilt() {
    let (out, cache) = (tmp_dir("corrupt-out"), tmp_dir("corrupt-cache"));
    let (reference, _) = replay(&sample(), &out, Some(&cache));
    let file = only_cache_file(&cache);
    let good = std::fs::read(&file).unwrap();
    let damage: [(&str, Damage); 4] = [
        ("one event byte flipped", Box::new(|b: &mut Vec<u8>| b[128 + 64 * 1000 + 40] ^= 0x10)),
        ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 100))),
        ("bad magic", Box::new(|b: &mut Vec<u8>| b[0] = b'X')),
        ("shorter than a header", Box::new(|b: &mut Vec<u8>| b.truncate(50))),
    ];
    for (what, f) in &damage {
        let mut bad = good.clone();
        f(&mut bad);
        std::fs::write(&file, &bad).unwrap();
        let (o, outcome) = replay(&sample(), &out, Some(&cache));
        let outcome = outcome.unwrap();
        assert!(!outcome.hit && outcome.rejected == 1 && outcome.written, "{what}: {outcome:?}");
        assert_same(&o, &reference, &format!("{what}: replayed by parsing"));
        assert_eq!(std::fs::read(&file).unwrap(), good, "{what}: rebuilt to the same bytes");
    }
    let (o, outcome) = replay(&sample(), &out, Some(&cache));
    assert!(outcome.unwrap().hit);
    assert_same(&o, &reference, "after the rebuild");
}

/// Inflates `src` to a plain file in `dir`.
fn plain_copy(src: &Path, dir: &Path) -> PathBuf {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(src).unwrap()).read_to_end(&mut text).unwrap();
    let dest = dir.join(src.file_name().unwrap().to_str().unwrap().trim_end_matches(".gz"));
    std::fs::write(&dest, text).unwrap();
    dest
}

#[test]
fn changed_input_bytes_make_the_cache_stale_even_with_the_same_size_and_mtime() {
    let (out, cache, inputs) = (tmp_dir("stale-out"), tmp_dir("stale-cache"), tmp_dir("stale-in"));
    let files: Vec<PathBuf> = sample().iter().map(|f| plain_copy(f, &inputs)).collect();
    let (before, o) = replay(&files, &out, Some(&cache));
    assert!(o.unwrap().written);

    // Change one digit of the first trade's quantity: same size, same mtime (restored), other content.
    let mtime = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let mut text = std::fs::read(&files[0]).unwrap();
    let at = memchr::memmem::find(&text, b"\"e\":\"trade\"").unwrap();
    let q = at + memchr::memmem::find(&text[at..], b"\"q\":\"").unwrap() + 5;
    text[q] = if text[q] == b'9' { b'8' } else { b'9' };
    let f = std::fs::OpenOptions::new().write(true).open(&files[0]).unwrap();
    std::io::Write::write_all(&mut &f, &text).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), mtime);

    let (parsed, _) = replay(&files, &out, None);
    assert_ne!(parsed.summary, before.summary, "the changed quantity shows in the trade totals");
    let (after, o) = replay(&files, &out, Some(&cache));
    let o = o.unwrap();
    assert!(!o.hit && o.rejected == 1 && o.written, "the old cache is stale: {o:?}");
    assert_same(&after, &parsed, "replayed from the changed input");
    let (again, o) = replay(&files, &out, Some(&cache));
    assert!(o.unwrap().hit);
    assert_same(&again, &parsed, "after the rebuild");
}

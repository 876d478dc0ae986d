//! Replay output pinned byte for byte: the `--json` summary (less wall-clock fields), every database table (less
//! wall-clock columns), the bars CSV and the signals CSV of the bundled recording, with the default configuration
//! and with the A/B test configuration. Written before the source tree was restructured (issue 9) and kept, so that
//! any change of behaviour shows up as a diff against `tests/golden/`.
//!
//! A deliberate behaviour change regenerates the files: `RUSTO_BLESS=1 cargo test --test golden`, then review the
//! diff with `git diff tests/golden/` and say why in the commit.

use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;

const SAMPLE: [&str; 2] = ["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"];

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir); // Fresh each run; absent is fine.
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON summary without the fields that measure the machine (latency, wall time, throughput, paths, and
/// `ring_full`: how often the replay reader found the ring full and waited, which depends on the machine's load;
/// replay never drops on a full ring, so no computed value depends on it).
fn stable_json(text: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("replay --json prints one JSON object");
    let o = v.as_object_mut().unwrap();
    for k in ["latency_ns", "elapsed_s", "frames_per_s", "db", "ring_full"] {
        o.remove(k);
    }
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

/// Every table in schema order, every column except wall-clock ones, rows in rowid order.
fn dump_db(db: &Path) -> String {
    let c = Connection::open(db).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = String::new();
    for t in tables {
        let cols: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}') ORDER BY cid"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|c: &String| !is_wall_clock_or_build(&t, c))
            .collect();
        out.push_str(&format!("## {t} ({})\n", cols.join(", ")));
        let mut st = c.prepare(&format!("SELECT {} FROM {t} ORDER BY rowid", cols.join(", "))).unwrap();
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                let mut s = String::new();
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    s.push_str(&format!("{v:?}|"));
                }
                Ok(s)
            })
            .unwrap();
        for r in rows {
            out.push_str(&r.unwrap());
            out.push('\n');
        }
    }
    out
}

/// Columns that hold the wall clock, the build or the invocation rather than what the replay computed.
fn is_wall_clock_or_build(table: &str, column: &str) -> bool {
    matches!(column, "started_at_ms" | "ended_at_ms" | "applied_at_ms")
        || (table == "runs" && matches!(column, "version" | "inputs"))
}

fn replay(config: Option<&str>, dir: &Path) -> Vec<(String, String)> {
    let db = dir.join("g.db");
    let bars = dir.join("bars.csv");
    let signals = dir.join("signals.csv");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rusto"));
    if let Some(c) = config {
        cmd.args(["--config", c]);
    }
    cmd.arg("replay").args(SAMPLE).arg("--json").arg("--db").arg(&db);
    cmd.arg("--bars-csv").arg(&bars).arg("--signals-csv").arg(&signals);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "replay failed: {}", String::from_utf8_lossy(&out.stderr));
    vec![
        ("summary.json".into(), stable_json(&String::from_utf8(out.stdout).unwrap())),
        ("db.txt".into(), dump_db(&db)),
        ("bars.csv".into(), std::fs::read_to_string(&bars).unwrap()),
        ("signals.csv".into(), std::fs::read_to_string(&signals).unwrap()),
    ]
}

fn check(name: &str, config: Option<&str>) {
    let dir = out_dir(name);
    let golden = Path::new("tests/golden").join(name);
    let bless = std::env::var_os("RUSTO_BLESS").is_some();
    let mut diffs = Vec::new();
    for (file, got) in replay(config, &dir) {
        let path = golden.join(&file);
        if bless {
            std::fs::create_dir_all(&golden).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if want != got {
            let line = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
            std::fs::write(dir.join(&file), &got).unwrap();
            diffs.push(format!(
                "{} differs from line {} (got: {})",
                path.display(),
                line + 1,
                dir.join(file).display()
            ));
        }
    }
    if diffs.is_empty() {
        let _ = std::fs::remove_dir_all(&dir); // Clean-up only; a leftover temp folder is harmless.
    }
    assert!(diffs.is_empty(), "replay output changed:\n{}", diffs.join("\n"));
}

#[test]
fn default_config_output_is_unchanged() {
    check("default", None);
}

#[test]
fn ab_variants_output_is_unchanged() {
    check("ab-variants", Some("tests/config/ab-variants.toml"));
}

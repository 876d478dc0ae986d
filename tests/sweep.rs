//! `rusto sweep` on the bundled sample (the loose test configuration, so that cells trade): a 3x3 grid run here,
//! through GNU parallel and through the Slurm array script gives identical summaries, each row checked against its
//! cell's database; bad grids are refused before anything runs; a failed cell is reported; walk-forward ranks on
//! train and reports test out of sample.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rusto");
const GRID_3X3: &str = "[grid]\n\"bars.range_ticks\" = [6, 8, 10]\n\"risk.stop_pct\" = [0.02, 0.05, 0.1]\n";
/// 2023-04-05T00:02:30Z, inside the sample (its first signals come before it).
const CUT: &str = "2023-04-05T00:02:30Z";
const CUT_MS: i64 = 1_680_652_950_000;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rusto-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rusto(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `rusto --config loose sweep --grid GRID --dir DIR ARGS…`.
fn sweep(grid: &Path, dir: &Path, args: &[&str]) -> Output {
    let (g, d) = (grid.to_str().unwrap(), dir.to_str().unwrap());
    let mut all = vec!["--config", "tests/config/loose-signals.toml", "sweep", "--grid", g, "--dir", d];
    all.extend_from_slice(args);
    rusto(&all)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn grid_file(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("grid.toml");
    std::fs::write(&p, body).unwrap();
    p
}

/// (trades, mean pnl_pct) of the base trader's closed positions in a cell's database, by SQL.
fn db_counts(db: &Path) -> (i64, Option<f64>) {
    let c = Connection::open(db).unwrap();
    c.query_row("SELECT count(*), avg(pnl_pct) FROM positions WHERE status = 'closed' AND variant = 'base'", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

/// Every row's trade count and expectancy equal its database's; rows are in expectancy order.
fn check_rows(summary: &Value, dir: &Path, key: &str, suffix: &str) {
    let cells = summary["cells"].as_array().unwrap();
    let mut last = f64::INFINITY;
    for c in cells {
        let name = c["cell"].as_str().unwrap();
        let stats = &c[key]["stats"];
        assert_eq!(c[key]["status"], "done", "{c}");
        let (n, mean) = db_counts(&dir.join(format!("{name}{suffix}.db")));
        assert_eq!(stats["trades"].as_i64().unwrap(), n, "{c}");
        match mean {
            Some(m) => {
                let e = stats["expectancy_pct"].as_f64().unwrap();
                assert!((e - m).abs() < 1e-12, "{c}");
                assert!(e <= last, "ranked by expectancy: {summary}");
                last = e;
            }
            None => assert!(stats["expectancy_pct"].is_null(), "{c}"),
        }
        assert!(stats["max_drawdown"].as_f64().unwrap() >= 0.0);
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs a job list with GNU parallel (CI installs it, see .ci/run).
fn gnu_parallel(jobs: &Path) {
    let o = Command::new("parallel")
        .args(["--jobs", "2", "--halt", "never"])
        .stdin(std::fs::File::open(jobs).unwrap())
        .output()
        .expect("GNU parallel is required by this test (apt-get install parallel; .ci/run installs it)");
    // parallel's exit status is the number of failed jobs.
    assert!(o.status.code().is_some(), "{}", text(&o));
}

#[test]
fn a_3x3_grid_here_through_gnu_parallel_and_slurm_gives_identical_summaries() {
    let root = scratch("3x3");
    let grid = grid_file(&root, GRID_3X3);
    let (here, par, slurm) = (root.join("here"), root.join("parallel"), root.join("slurm"));
    let o = sweep(&grid, &here, &["--jobs", "2", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cells = summary["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 9);
    assert_eq!((summary["failed"].as_u64(), summary["correction"].as_str()), (Some(0), Some("bonferroni")));
    assert!((summary["z"].as_f64().unwrap() - 2.772921).abs() < 1e-5, "Φ⁻¹(1 − 0.05/18)");
    check_rows(&summary, &here, "result", "");
    assert!(cells.iter().map(|c| c["result"]["stats"]["trades"].as_i64().unwrap()).sum::<i64>() >= 9);
    // Each cell's configuration is written beside it and is the base with the cell's keys.
    let c3 = read(&here.join("cell-003.toml"));
    let cfg = rusto::app::Config::from_toml(&c3, "cell-003").unwrap();
    assert_eq!((cfg.bars.range_ticks, cfg.risk.stop_pct, cfg.flow.burst_baseline_bars), (8, 0.02, 20));
    // The same grid through GNU parallel, then `sweep merge`.
    let o = sweep(&grid, &par, &["--emit-jobs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&par.join("jobs.txt")).lines().count(), 9);
    gnu_parallel(&par.join("jobs.txt"));
    let m = rusto(&["sweep", "merge", par.to_str().unwrap()]);
    assert!(m.status.success(), "{}", text(&m));
    assert_eq!(read(&par.join("summary.json")), read(&here.join("summary.json")));
    assert_eq!(read(&par.join("summary.txt")), read(&here.join("summary.txt")));
    assert_eq!(String::from_utf8_lossy(&m.stdout), read(&here.join("summary.txt")));
    // And as a Slurm array: each task runs its line of the job list.
    assert!(sweep(&grid, &slurm, &["--emit-jobs"]).status.success());
    let script = read(&slurm.join("slurm.sh"));
    assert!(script.contains("#SBATCH --array=0-8"), "{script}");
    for task in 0..9 {
        let o = Command::new("bash")
            .arg(slurm.join("slurm.sh"))
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .output()
            .unwrap();
        assert!(o.status.success(), "task {task}: {}", text(&o));
    }
    assert!(rusto(&["sweep", "merge", slurm.to_str().unwrap()]).status.success());
    assert_eq!(read(&slurm.join("summary.json")), read(&here.join("summary.json")));
    // A folder holding a sweep is not reused.
    let again = sweep(&grid, &here, &[]);
    assert!(!again.status.success() && text(&again).contains("already holds a sweep"), "{}", text(&again));
}

#[test]
fn bad_grids_are_refused_before_anything_runs() {
    let root = scratch("bad");
    let cases = [
        ("[grid]\n\"signal.some_key\" = [1, 2, 3]\n", "grid key `signal.some_key` is not a configuration key"),
        ("[grid]\n\"bars.range_tick\" = [1]\n", "[bars] has: bars.range_pct, bars.range_ticks"),
        ("[grid]\n\"risk.stop_pct\" = [0.1, -1.0]\n", "cell-001 (risk.stop_pct = -1.0): config key `risk.stop_pct`"),
        ("[grid]\n\"bars.range_ticks\" = [\"six\"]\n", "cell-000 (bars.range_ticks = \"six\")"),
        ("[grid]\n\"bars.range_ticks\" = []\n", "`bars.range_ticks` has no values"),
        ("[grids]\n\"bars.range_ticks\" = [1]\n", "unknown field `grids`"),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let grid = grid_file(&root, body);
        let dir = root.join(format!("out-{i}"));
        let o = sweep(&grid, &dir, &[]);
        assert_eq!(o.status.code(), Some(2), "{body}: {}", text(&o));
        assert!(text(&o).contains(want), "{body}: want {want:?} in {}", text(&o));
        assert!(!dir.exists(), "{body}: nothing is written before the grid is valid");
    }
}

#[test]
fn a_failed_cell_is_reported_not_skipped() {
    let root = scratch("failed");
    let grid = grid_file(&root, "[grid]\n\"bars.range_ticks\" = [6, 8, 10]\n");
    let dir = root.join("out");
    assert!(sweep(&grid, &dir, &["--emit-jobs"]).status.success());
    // cell-001's database path is taken by a folder (its replay fails); cell-002's job is never run.
    std::fs::create_dir(dir.join("cell-001.db")).unwrap();
    let jobs: Vec<String> = read(&dir.join("jobs.txt")).lines().map(String::from).collect();
    std::fs::write(dir.join("some.txt"), format!("{}\n{}\n", jobs[0], jobs[1])).unwrap();
    gnu_parallel(&dir.join("some.txt"));
    let o = rusto(&["sweep", "merge", dir.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("2 of 3 cells failed"), "{}", text(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| s["cells"].as_array().unwrap().iter().find(|c| c["cell"] == n).unwrap().clone();
    assert_eq!(by_name("cell-000")["result"]["status"], "done");
    let c1 = by_name("cell-001");
    assert_eq!(c1["result"]["status"], "failed");
    assert!(c1["result"]["error"].as_str().unwrap().contains("replay failed"), "{c1}");
    let c2 = by_name("cell-002");
    assert!(c2["result"]["error"].as_str().unwrap().contains("no database"), "{c2}");
    assert_eq!(s["cells"][0]["cell"], "cell-000", "failed cells rank last");
}

#[test]
fn walk_forward_ranks_on_train_and_reports_test_out_of_sample() {
    let root = scratch("wf");
    let grid = grid_file(&root, "[grid]\n\"bars.range_ticks\" = [6, 8, 10]\n");
    let (dir, cache) = (root.join("out"), root.join("cache"));
    let (train, test) = (format!("..{CUT}"), format!("{CUT}.."));
    let args = ["--train", &train, "--test", &test, "--cache", cache.to_str().unwrap(), "--json"];
    let o = sweep(&grid, &dir, &args);
    assert!(o.status.success(), "{}", text(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["walk_forward"], true);
    check_rows(&s, &dir, "train", ".train");
    for c in s["cells"].as_array().unwrap() {
        let name = c["cell"].as_str().unwrap();
        let (n, _) = db_counts(&dir.join(format!("{name}.test.db")));
        assert_eq!(c["test"]["stats"]["trades"].as_i64().unwrap(), n, "{c}");
        let t = Connection::open(dir.join(format!("{name}.test.db"))).unwrap();
        let early: i64 = t
            .query_row(&format!("SELECT count(*) FROM positions WHERE entry_ts_ms < {CUT_MS} - 1000"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(early, 0, "{name}: the test window enters only after the cut");
        let tr = Connection::open(dir.join(format!("{name}.train.db"))).unwrap();
        let late: i64 = tr
            .query_row(&format!("SELECT count(*) FROM positions WHERE exit_ts_ms > {CUT_MS} + 1000"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(late, 0, "{name}: the train window ends at the cut");
    }
    // The sample is far too short for any cell to be out of the noise: the warning says so, naming the correction.
    let w = s["warning"].as_str().unwrap();
    assert!(w.contains("out-of-sample") && w.contains("cell-"), "{w}");
    assert!(s["method"].as_str().unwrap().contains("Bonferroni over 3 cells"));
    // The test windows read the whole stream: the first wrote the cache, the others read it.
    let hits = (0..3).filter(|i| read(&dir.join(format!("cell-{i:03}.test.log"))).contains(": hit")).count();
    assert_eq!(hits, 2, "one miss (written), two hits");
    // Train and test must not overlap.
    let o = sweep(&grid, &root.join("overlap"), &["--train", &format!("..{CUT}"), "--test", "2023-04-05T00:01:00Z.."]);
    assert!(!o.status.success() && text(&o).contains("--test must start at or after"), "{}", text(&o));
}

#[test]
fn random_cells_repeat_with_their_seed() {
    let root = scratch("random");
    let body = "[grid]\n\"bars.range_ticks\" = [8, 10]\n[random]\nsamples = 2\nseed = 11\n[random.ranges]\n\"position.tp1_rr\" = [0.5, 2.0]\n";
    let grid = grid_file(&root, body);
    let manifest = |name: &str| -> Value {
        let dir = root.join(name);
        assert!(sweep(&grid, &dir, &["--emit-jobs"]).status.success());
        serde_json::from_str(&read(&dir.join("sweep.json"))).unwrap()
    };
    let (a, b) = (manifest("a"), manifest("b"));
    assert_eq!(a["cells"], b["cells"]);
    let cells = a["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    let tp: Vec<f64> = cells.iter().map(|c| c["overrides"][1][1].as_str().unwrap().parse().unwrap()).collect();
    assert!(tp.iter().all(|x| (0.5..2.0).contains(x)), "{tp:?}");
    assert_ne!(tp[0], tp[1]);
    assert_eq!(cells[0]["overrides"][0], serde_json::json!(["bars.range_ticks", "8"]));
    assert_eq!(cells[3]["overrides"][0], serde_json::json!(["bars.range_ticks", "10"]));
}

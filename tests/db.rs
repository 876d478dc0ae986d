//! The SQLite persistence: schema and contents after a real replay, determinism, the hour-expectancy state across
//! runs, start-up errors, write failures with retry, and kill -9 in the middle of writing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

use rusqlite::Connection;
use rusto::app::Config;
use rusto::app::{ReplayOptions, run_replay};
use rusto::recording::Speed;
use rusto::report::ReplayReport;

fn tmp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

fn sample() -> Vec<PathBuf> {
    vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()]
}

fn replay(cfg: &Config, db: &Path, speed: Speed) -> Result<ReplayReport, rusto::app::ReplayError> {
    let opts = ReplayOptions {
        files: sample(),
        speed,
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: Some(db.to_owned()),
        window: Default::default(),
    };
    run_replay(cfg, &opts)
}

fn loose() -> Config {
    Config::load("tests/config/loose-signals.toml").unwrap()
}

/// Every row of every trading table, without run ids and wall-clock columns, as text.
fn dump(db: &Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let tables = [
        (
            "positions",
            "seq, symbol, side, status, entry_ts_ms, entry_price, quantity, exit_ts_ms, exit_price, fees, pnl, pnl_pct, exit_reason, mfe_pct, mae_pct, time_to_mfe_secs, time_to_mae_secs, regime, confidence, expected_slippage_bps, realized_slippage_bps, stop_price, tp1_price, tp2_price, liquidation_price",
        ),
        ("fills", "position_id, ts_ms, kind, side, quantity, price, fee, pnl"),
        ("entry_features", "*"),
        (
            "volume_burst_tuning_logs",
            "symbol, ts_ms, tuned_ratio, previous_ratio, trades, win_rate_pct, expectancy_pct, window_bars, lookahead_bars, candidates, stop_pct, target_pct, fee_pct, changed",
        ),
        ("hour_expectancy", "symbol, hour, pnl_pct"),
    ];
    common::rows(&c, &tables)
}

#[test]
fn schema_and_contents_after_a_real_replay() {
    let db = tmp_db("contents.db");
    let r = replay(&loose(), &db, Speed::Asap).unwrap();
    assert_eq!(r.run_id, Some(1));
    let c = Connection::open(&db).unwrap();
    let one = |q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap() };
    assert_eq!(one("SELECT MAX(version) FROM schema_version"), rusto::persist::Db::known_version());
    assert_eq!(one("SELECT count(*) FROM schema_version"), rusto::persist::MIGRATIONS.len() as i64);
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(one("SELECT count(*) FROM runs WHERE status = 'finished' AND ended_at_ms >= started_at_ms"), 1);
    let s = &r.engine.symbols[0];
    assert_eq!(one("SELECT count(*) FROM positions"), s.trader().opened as i64);
    assert_eq!(
        one("SELECT count(*) FROM positions WHERE status = 'closed' AND exit_reason IS NOT NULL"),
        s.trader().opened as i64
    );
    assert_eq!(one("SELECT count(*) FROM entry_features"), s.trader().opened as i64);
    assert_eq!(one("SELECT count(*) FROM volume_burst_tuning_logs"), s.tuner.runs as i64);
    assert_eq!(one("SELECT count(*) FROM hour_expectancy"), s.trader().opened as i64);
    assert_eq!(one("SELECT count(*) FROM fills WHERE kind = 'entry'"), s.trader().opened as i64);
    assert!(s.trader().opened >= 1, "the loose config opens a position on the sample");
    // Fills add up to each position's PnL and fees.
    let bad: i64 = one(
        "SELECT count(*) FROM positions p WHERE abs(p.pnl - (SELECT sum(pnl) FROM fills f WHERE f.position_id = p.id)) > 1e-9
           OR abs(p.fees - (SELECT sum(fee) FROM fills f WHERE f.position_id = p.id)) > 1e-9",
    );
    assert_eq!(bad, 0);
    assert_eq!(r.persist.db_rows_dropped + r.persist.db_write_errors, 0);
    // Every loss counter is in the summary's db block, and zero here.
    let j = rusto::report::to_json(&r);
    for k in ["rows_dropped", "rows_rejected", "control_dropped", "write_errors"] {
        assert_eq!(j["db"][k], 0, "db.{k} in {}", j["db"]);
    }
    // The JSON's per-symbol PnL equals the database's.
    let pnl: f64 = c.query_row("SELECT sum(pnl) FROM positions", [], |r| r.get(0)).unwrap();
    assert!((pnl - s.trader().pnl).abs() < 1e-9);
    // Schema 5: every fill has its decision time and latency, an entry its liquidity; a position's funding is the
    // sum of its funding rows (included in its PnL above).
    assert_eq!(one("SELECT count(*) FROM fills WHERE decision_ts_ms IS NULL OR latency_ms IS NULL"), 0);
    assert_eq!(
        one("SELECT count(*) FROM fills WHERE kind = 'entry' AND liquidity = 'taker'"),
        s.trader().opened as i64
    );
    assert_eq!(
        one("SELECT count(*) FROM positions p WHERE abs(p.funding - (SELECT COALESCE(sum(pnl), 0) FROM fills f
               WHERE f.position_id = p.id AND f.kind = 'Funding')) > 1e-9"),
        0
    );
    // `rusto report` reads it, its execution section counting every position and fill.
    let trades = rusto::report::load_trades(&db).unwrap();
    let d = rusto::report::Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.1 };
    let x = rusto::report::build_review(&trades, d, 5).execution.total;
    assert_eq!(x.positions, s.trader().opened);
    assert_eq!(x.fills as i64, one("SELECT count(*) FROM fills WHERE kind != 'Funding'"));
    let fees: f64 = c.query_row("SELECT sum(fees) FROM positions", [], |r| r.get(0)).unwrap();
    assert!((x.fees - fees).abs() < 1e-9, "{} {fees}", x.fees);
}

#[test]
fn same_recording_same_rows() {
    let (a, b) = (tmp_db("det-a.db"), tmp_db("det-b.db"));
    replay(&loose(), &a, Speed::Asap).unwrap();
    replay(&loose(), &b, Speed::Asap).unwrap();
    let (da, db) = (dump(&a), dump(&b));
    assert!(da.len() > 10, "{}", da.len());
    assert_eq!(da, db);
}

#[test]
fn hour_expectancy_survives_a_restart() {
    let db = tmp_db("hours.db");
    let mut cfg = loose();
    cfg.gate.min_trades_per_hour = 1;
    let r1 = replay(&cfg, &db, Speed::Asap).unwrap();
    let s1 = &r1.engine.symbols[0];
    assert!(s1.trader().pnl < 0.0, "the sample's trade loses: the next run must see a negative hour");
    let rows = rusto::persist::Db::open(&db).unwrap().load_hour_expectancy(80).unwrap();
    assert_eq!(rows.len(), s1.trader().opened as usize);
    let r2 = replay(&cfg, &db, Speed::Asap).unwrap();
    let s2 = &r2.engine.symbols[0];
    assert!(
        s2.trader().gate_rejects[rusto::compute::GateReject::HourExpectancy.index()] >= 1,
        "{:?}",
        s2.trader().gate_rejects
    );
    assert_eq!(s2.trader().opened, 0);
    assert_eq!(r2.run_id, Some(2));
}

#[test]
fn corrupt_locked_and_newer_databases_are_refused_up_front() {
    let corrupt = tmp_db("corrupt.db");
    std::fs::write(&corrupt, vec![0x42u8; 8192]).unwrap();
    let e = replay(&loose(), &corrupt, Speed::Asap).err().expect("corrupt").to_string();
    assert!(e.contains("not a database or corrupt"), "{e}");

    let newer = tmp_db("newer.db");
    drop(rusto::persist::Db::open(&newer).unwrap());
    Connection::open(&newer).unwrap().execute("INSERT INTO schema_version VALUES (99, 'future', 0)", []).unwrap();
    let e = replay(&loose(), &newer, Speed::Asap).err().expect("newer").to_string();
    assert!(e.contains("schema version 99 is newer"), "{e}");

    let locked = tmp_db("locked.db");
    drop(rusto::persist::Db::open(&locked).unwrap());
    let holder = Connection::open(&locked).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = replay(&loose(), &locked, Speed::Asap).err().expect("locked").to_string();
    assert!(e.contains("locked by another process"), "{e}");
    holder.execute_batch("ROLLBACK").unwrap();

    let dir = tmp_db("no-such-dir").join("x.db");
    let e = replay(&loose(), &dir, Speed::Asap).err().expect("missing dir").to_string();
    assert!(e.contains("x.db"), "{e}");
}

#[test]
fn a_database_locked_mid_run_is_retried_and_loses_nothing() {
    let db = tmp_db("retry.db");
    let mut cfg = loose();
    cfg.tune.every_bars = 1; // many rows
    let reference = tmp_db("retry-ref.db");
    replay(&cfg, &reference, Speed::Asap).unwrap();
    // Lock the database for 3 s (longer than the 2 s busy timeout) while rows are arriving: the first tuning run
    // needs 68 bars (≈ 190 s of the recording, ≈ 3.2 s at 60x), and rows then keep coming to the end (≈ 8.5 s).
    drop(rusto::persist::Db::open(&db).unwrap());
    let path = db.clone();
    let locker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(4000));
        let c = Connection::open(&path).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        std::thread::sleep(Duration::from_secs(3));
        c.execute_batch("COMMIT").unwrap();
    });
    // Paced so that rows keep arriving while the lock is held (8.5 min at 60x ≈ 8.5 s).
    let r = replay(&cfg, &db, Speed::Factor(60.0)).unwrap();
    locker.join().unwrap();
    assert!(r.persist.db_write_errors >= 1, "the lock made at least one commit fail");
    assert_eq!(r.persist.db_rows_dropped, 0);
    assert_eq!(dump(&db), dump(&reference), "every row written despite the failures");
}

#[test]
fn kill_9_mid_write_keeps_every_committed_row() {
    let bin = env!("CARGO_BIN_EXE_rusto");
    let reference = tmp_db("kill-ref.db");
    let cfg_path = std::env::temp_dir().join(format!("rusto-kill-{}.toml", std::process::id()));
    let mut text = std::fs::read_to_string("tests/config/loose-signals.toml").unwrap();
    text = text.replace("every_bars = 10", "every_bars = 1");
    std::fs::write(&cfg_path, &text).unwrap();
    let status = Command::new(bin)
        .args(["--config", cfg_path.to_str().unwrap(), "replay", "--db", reference.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let full = dump(&reference);
    assert!(full.len() > 100, "{}", full.len());
    // At 100x the 8.5-minute recording takes ≈ 5 s and tuning rows start after ≈ 1.9 s: kill while they stream.
    let mut partial = 0;
    for (k, kill_after_ms) in [2300u64, 3100, 3900].into_iter().enumerate() {
        let db = tmp_db(&format!("kill-{k}.db"));
        let mut child = Command::new(bin)
            .args(["--config", cfg_path.to_str().unwrap(), "replay", "--speed", "100", "--db", db.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Opens cleanly, passes the integrity and foreign key checks, and what is there is exactly a prefix of
        // the complete run's rows in every table.
        let c = Connection::open(&db).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let fk: i64 = c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
        drop(c);
        let got = dump(&db);
        for table in ["fills:", "volume_burst_tuning_logs:", "hour_expectancy:", "entry_features:"] {
            let a: Vec<&String> = got.iter().filter(|r| r.starts_with(table)).collect();
            let b: Vec<&String> = full.iter().filter(|r| r.starts_with(table)).collect();
            assert!(
                a.len() <= b.len() && a[..] == b[..a.len()],
                "{table} is not a prefix after kill at {kill_after_ms} ms"
            );
        }
        let n = got.len();
        if n > 0 && n < full.len() {
            partial += 1;
        }
        // A new run on the same file works, and marks the killed run crashed (issue 14).
        let again = replay(&loose(), &db, Speed::Asap).unwrap();
        assert!(again.run_id.unwrap() >= 2);
        assert_eq!(again.persist.crashed_runs_recovered, 1);
    }
    assert!(partial >= 1, "at least one kill landed while rows were being written");
}

/// Issue 14 (7): a run killed with -9 while its paper position is open used to stay `running`, its position `open`,
/// forever. The next start marks it `crashed` at its last committed row and closes the position as `Crashed` at
/// its last recorded price (its entry fill here: the sample's position opens 229 s in and no TP1 is reached), PnL
/// as the engine computes an exit (the exit fee at the run's own rate), counted in the summary's `db` block.
#[test]
fn a_run_killed_with_an_open_position_is_marked_crashed_at_the_next_start() {
    let bin = env!("CARGO_BIN_EXE_rusto");
    let db = tmp_db("crash-e2e.db");
    let args = ["--config", "tests/config/loose-signals.toml", "replay", "--speed", "50", "--db"];
    let mut child = Command::new(bin)
        .args(args)
        .arg(&db)
        .args(sample())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // At 50x the position opens ≈ 4.6 s in and stays open to the end (≈ 10.3 s): poll until it and its entry fill
    // are committed.
    let t0 = std::time::Instant::now();
    let open_with_fill = "SELECT count(*) FROM positions p WHERE status = 'open'
                            AND EXISTS (SELECT 1 FROM fills f WHERE f.position_id = p.id AND f.kind = 'entry')";
    loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "no open position seen");
        let n = Connection::open(&db).ok().and_then(|c| c.query_row(open_with_fill, [], |r| r.get::<_, i64>(0)).ok());
        if n == Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A start on the same database while the run is alive (another process) leaves it running.
    let other = rusto::persist::Db::open(&db).unwrap();
    assert!(other.recovered().is_empty());
    drop(other);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What the killed run committed: its newest row's time, and the position's entry.
    let c = Connection::open(&db).unwrap();
    let last: i64 = c
        .query_row(
            "SELECT MAX(t) FROM (SELECT MAX(entry_ts_ms) AS t FROM positions UNION ALL SELECT MAX(ts_ms) FROM fills
               UNION ALL SELECT MAX(ts_ms) FROM volume_burst_tuning_logs)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (entry_px, qty, entry_fee): (f64, f64, f64) = c
        .query_row("SELECT entry_price, quantity, fees FROM positions", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    let status: String = c.query_row("SELECT status FROM runs WHERE id = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "running");
    drop(c);
    assert!(rusto::persist::lock_path(&db, 1).exists());
    let out = Command::new(bin).args(&args[..3]).args(["--json", "--db"]).arg(&db).args(sample()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["db"]["crashed_runs_recovered"], 1, "{}", j["db"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("run 1 was left running by a process that is gone"));
    let c = Connection::open(&db).unwrap();
    let (status, last_row): (String, i64) =
        c.query_row("SELECT status, last_row_ms FROM runs WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((status.as_str(), last_row), ("crashed", last));
    let (reason, exit_ts, exit_px, fees, pnl): (String, i64, f64, f64, f64) = c
        .query_row(
            "SELECT exit_reason, exit_ts_ms, exit_price, fees, pnl FROM positions WHERE run_id = 1 AND seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((reason.as_str(), exit_ts), ("Crashed", last));
    assert_eq!(exit_px, entry_px, "closed at its last fill, the entry");
    // At the entry price: no gross PnL, the entry fee and an exit fee at the same rate.
    assert!((fees - 2.0 * entry_fee).abs() < 1e-9 && (pnl + 2.0 * entry_fee).abs() < 1e-9, "{fees} {pnl}");
    let crashed_fill: f64 =
        c.query_row("SELECT quantity FROM fills WHERE run_id = 1 AND kind = 'Crashed'", [], |r| r.get(0)).unwrap();
    assert_eq!(crashed_fill, qty);
    assert!(!rusto::persist::lock_path(&db, 1).exists());
    // `rusto report` lists the crashed run apart and leaves its position out of the statistics.
    let rep = Command::new(bin).args(["report", "--db"]).arg(&db).output().unwrap();
    let text = String::from_utf8_lossy(&rep.stdout);
    assert!(text.contains(&format!("  run 1: 1 position(s), pnl {:.2} USDT, last row at {last} ms", pnl)), "{text}");
    assert!(text.starts_with("closed positions: 1\n"), "only run 2's own close is counted: {text}");
}

/// The sample's lines (one frame each) stamped before `cut_ns`, counted from the files themselves.
fn sample_lines_before(cut_ns: i64) -> (u64, u64) {
    let (mut all, mut before) = (0, 0);
    for f in sample() {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(f).unwrap()),
            &mut text,
        )
        .unwrap();
        for line in text.lines() {
            let us: i64 = line.split(' ').next().unwrap().parse().unwrap();
            all += 1;
            before += u64::from(us * 1000 < cut_ns);
        }
    }
    (all, before)
}

/// `--until` ends the stream before the first frame at the cut (positions close there); `--from` replays the whole
/// stream but enters only after the cut, its warm-up signals counted; a cache is neither read nor written with
/// `--until` (it holds the whole stream's counters).
#[test]
fn a_time_window_cuts_the_stream_and_warms_up_before_from() {
    use rusto::recording::TimeWindow;
    let cut_ns = 1_680_652_950_000_000_000i64; // 2023-04-05T00:02:30Z, inside the sample.
    let cut_ms = cut_ns / 1_000_000;
    let cache = std::env::temp_dir().join(format!("rusto-db-{}/window-cache", std::process::id()));
    let run = |name: &str, window: TimeWindow| {
        let db = tmp_db(name);
        let opts = ReplayOptions {
            files: sample(),
            speed: Speed::Asap,
            bars_csv: None,
            exchange_info: None,
            signals_csv: None,
            db: Some(db.clone()),
            window,
        };
        let (r, outcome) = rusto::app::run_replay_cached(&loose(), &opts, Some(&cache)).unwrap();
        (r, outcome, Connection::open(db).unwrap())
    };
    let (all, before) = sample_lines_before(cut_ns);
    let (full, _, full_db) = run("window-full.db", TimeWindow::default());
    let (train, outcome, train_db) = run("window-train.db", TimeWindow { from_ns: None, until_ns: Some(cut_ns) });
    let (test, _, test_db) = run("window-test.db", TimeWindow { from_ns: Some(cut_ns), until_ns: None });
    assert_eq!((full.parse.frames, train.parse.frames, test.parse.frames), (all, before, all));
    assert!(0 < before && before < all);
    assert_eq!(outcome, None, "no cache with --until");
    let one = |c: &Connection, q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap() };
    // Train: every position opened and closed before the cut (exchange time, within 1 s of local time here).
    let n_train = one(&train_db, "SELECT count(*) FROM positions WHERE status = 'closed'");
    assert!(n_train >= 1);
    assert_eq!(one(&train_db, &format!("SELECT count(*) FROM positions WHERE exit_ts_ms > {} + 1000", cut_ms)), 0);
    // Test: the warm-up ran the whole pipeline (same bars and signals as the full run), refused its entries and
    // entered only after the cut.
    assert_eq!(test.persist.bars_written, full.persist.bars_written);
    assert_eq!(test.persist.signals, full.persist.signals);
    assert!(test.engine.stats.warmup_refused >= 1, "the sample's first signals come before the cut");
    assert_eq!(one(&test_db, &format!("SELECT count(*) FROM positions WHERE entry_ts_ms < {} - 1000", cut_ms)), 0);
    let entered_before = one(&full_db, &format!("SELECT count(*) FROM positions WHERE entry_ts_ms < {cut_ms}"));
    assert!(entered_before >= 1, "the full run enters before the cut");
    let j = rusto::report::to_json(&test);
    assert_eq!(j["window"]["from"]["utc"], "2023-04-05T00:02:30Z");
    assert_eq!(j["window"]["warmup_refused"], test.engine.stats.warmup_refused);
    assert!(rusto::report::to_json(&full).get("window").is_none());
}

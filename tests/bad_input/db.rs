//! Bad input, db cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusto::app::{Config, ReplayOptions, run_replay};
use rusto::recording::Speed;

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-bad-db-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display())); // Fresh each run; absent is fine.
    }
    p
}

/// A replay of the bundled sample with the loose configuration (it opens one position) into `db`.
fn replay_into(db: &Path) -> Result<rusto::report::ReplayReport, rusto::app::ReplayError> {
    let opts = ReplayOptions {
        files: vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()],
        speed: Speed::Asap,
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: Some(db.to_owned()),
        window: Default::default(),
    };
    run_replay(&Config::load("tests/config/loose-signals.toml").unwrap(), &opts)
}

fn report_error(db: &Path) -> String {
    rusto::report::load_trades(db).expect_err("the report must refuse it").to_string()
}

/// Issue 14 (6): one page of a database with positions overwritten with random bytes used to pass start-up (the
/// replay traded and lost 12 rows, exit 0): `quick_check` at open now refuses it, naming the file, the first
/// problems and what to do; `rusto report` refuses it with the same words.
#[test]
fn a_damaged_page_is_refused_at_start() {
    let db = fresh("damaged.db");
    let r = replay_into(&db).unwrap();
    assert_eq!(r.persist.db_rows_dropped + r.persist.db_rows_rejected, 0);
    let c = Connection::open(&db).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    assert_eq!(c.query_row("SELECT count(*) FROM positions", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
    drop(c);
    // Bytes 12288..16383 (page 4: the positions table) get random bytes (a fixed xorshift, for an exact error).
    let mut bytes = std::fs::read(&db).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut bytes[12288..16384] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    let want = format!(
        "database {p}: damaged, quick_check reports: *** in database main *** Tree 4 page 4: btreeInitPage() \
         returns error code 11; wrong # of entries in index positions_variant; wrong # of entries in index \
         positions_symbol; restore it from a backup, or salvage its rows with `sqlite3 {p} .recover | sqlite3 \
         NEW.db`, and move the damaged file aside",
        p = db.display()
    );
    let e = replay_into(&db).err().expect("a damaged database must be refused").to_string();
    assert_eq!(e, want);
    assert_eq!(report_error(&db), want);
    // Nothing was written to it.
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

/// Issue 14 (6): a schema newer than this binary is refused by the writer (replay, live) and by `rusto report`.
#[test]
fn a_newer_schema_is_refused_by_replay_and_report() {
    let db = fresh("newer.db");
    drop(rusto::persist::Db::open(&db).unwrap());
    Connection::open(&db).unwrap().execute("INSERT INTO schema_version VALUES (99, 'future', 0)", []).unwrap();
    let want = format!(
        "database {}: schema version 99 is newer than this rusto knows ({}); upgrade rusto",
        db.display(),
        rusto::persist::Db::known_version()
    );
    assert_eq!(replay_into(&db).err().expect("newer").to_string(), want);
    assert_eq!(report_error(&db), want);
}

/// A database another connection holds an exclusive lock on is refused at start (after the 2 s busy timeout),
/// before any trading; `rusto report` still reads it (WAL readers do not wait for writers).
#[test]
fn a_locked_database_is_refused_at_start() {
    let db = fresh("locked.db");
    replay_into(&db).unwrap();
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let e = replay_into(&db).err().expect("locked").to_string();
    assert_eq!(e, format!("database {}: locked by another process (is another rusto running on it?)", db.display()));
    assert_eq!(rusto::report::load_trades(&db).unwrap().len(), 1);
    holder.execute_batch("ROLLBACK").unwrap();
}

/// Issue 14 (8): a database path in a directory that does not exist used to be reported as "read-only". It is
/// refused as a missing directory (not created: a mistyped path must not become a fresh, empty database; the
/// systemd unit's StateDirectory= creates the real one); a read-only location stays "read-only".
#[test]
fn a_missing_directory_is_not_called_read_only() {
    let dir = fresh("no-such-dir");
    let db = dir.join("x.db");
    let e = replay_into(&db).err().expect("missing dir").to_string();
    assert_eq!(
        e,
        format!(
            "database {}: directory {d} does not exist (create it first, e.g. mkdir -p {d})",
            db.display(),
            d = dir.display()
        )
    );
    assert!(!dir.exists(), "not created");
    // /proc refuses new files even to root (the tests may run as root, for whom permissions do not apply).
    let ro = Path::new("/proc/rusto-test.db");
    let e = replay_into(ro).err().expect("read-only").to_string();
    assert_eq!(e, "database /proc/rusto-test.db: read-only (check the file's and its directory's permissions)");
}

/// Issue 14 (8): the report of a database without positions says there is nothing to suggest instead of a stop
/// and target of 0.1 % "suggested" from no trades.
#[test]
fn a_report_without_positions_has_nothing_to_suggest() {
    let db = fresh("empty.db");
    let mut d = rusto::persist::Db::open(&db).unwrap();
    d.begin_run("test", "h", "replay", "").unwrap();
    d.end_run("finished").unwrap();
    drop(d);
    let trades = rusto::report::load_trades(&db).unwrap();
    assert!(trades.is_empty());
    let dist =
        rusto::report::Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.08 };
    let r = rusto::report::build_review(&trades, dist, 5);
    assert_eq!(r.to_json()["mfe_mae"]["suggested"], serde_json::Value::Null);
    let text = rusto::report::review_text(&r);
    let line = text.lines().find(|l| l.starts_with("estimated expectancy")).unwrap();
    assert_eq!(line, "estimated expectancy now 0.0000 %, suggested nothing to suggest (no closed positions)");
}

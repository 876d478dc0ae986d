//! Persistence throughput through the real `fills` table (schema 5: its foreign keys and `position_id` index), in
//! one run, alternating, `ROUNDS` rounds of `ROWS` rows in `BATCH`-row transactions (WAL, `synchronous = NORMAL`):
//! - `new`: `rusto::persist::Db::write_batch`, the persistence thread's path (multi-row inserts of 64, 32, ..., 1
//!   rows, cached statements, `raw_bind_parameter`, the writer's own parent checks with `foreign_keys = OFF`,
//!   160 lookaside slots, `wal_autocheckpoint = 4000`);
//! - `old`: the path of main before issue 11 item 5, kept here as the baseline: one cached single-row insert per
//!   fill with `params!`, the position id asked of the table per fill (the bench's position is not opened through
//!   the writer, so its old cache never held it), `foreign_keys = ON`;
//! - `old_id_known`: the old path with the position id known (its cache hit), to split the lookup from the rest;
//! - variants of `new` (pragmas, transaction size, the index dropped) and plain rusqlite floors without FK or index.
//!
//! Prints each round and the medians. Run: `cargo bench --bench persist`.
//! One variant only (for callgrind): `RUSTO_PERSIST_ONLY=new RUSTO_PERSIST_ROWS=20000 target/release/deps/persist-*`.

use std::time::Instant;

use rusqlite::{Connection, params};
use rusto::persist::{Db, Names};
use rusto::types::Scale;
use rusto::types::SymbolName;
use rusto::types::{ExitReason, FillKind, Liquidity, Record};

const BATCH: usize = 1000;
const ROWS: usize = 200_000;
const ROUNDS: usize = 3;

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("rusto-bench-{}-{name}", std::process::id()));
    for ext in ["", "-wal", "-shm", "-run1.lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display())); // Fresh each round; absent is fine.
    }
    p
}

fn fills(rows: usize) -> Vec<Record> {
    (0..rows)
        .map(|i| Record::Fill {
            symbol: 0,
            variant: 0,
            seq: 1,
            ts_ns: 1_680_652_800_000_000_000 + i as i64 * 1_000_000,
            decision_ts_ns: 1_680_652_800_000_000_000 + i as i64 * 1_000_000,
            kind: if i % 2 == 0 { FillKind::Entry } else { FillKind::Exit(ExitReason::Tp1) },
            liquidity: if i % 2 == 0 { Liquidity::Taker } else { Liquidity::Maker },
            trigger_px: None,
            latency_ns: 0,
            buy: i % 2 == 0,
            qty: 1 + (i % 7) as i64,
            px: 2_814_510.0 + (i % 100) as f64,
            fee: 0.4,
            pnl: -0.4,
        })
        .collect()
}

const POSITION_SQL: &str = "INSERT INTO positions (run_id, seq, symbol, side, status, entry_ts_ms, entry_price,
       quantity, fees, regime, confidence, expected_slippage_bps, realized_slippage_bps, stop_price, tp1_price,
       tp2_price, liquidation_price)
     VALUES (?1, 1, 'BTCUSDT', 'long', 'open', 0, 1, 1, 0, 'range_low', 0, 0, 0, 0, 0, 0, 0)";

/// A migrated database with a run and the one position the fills reference.
fn rusto_db(name: &str) -> Db {
    rusto_db_at(&tmp(name))
}

fn rusto_db_at(path: &std::path::Path) -> Db {
    let mut db = Db::open(path).expect("open");
    db.begin_run("bench", "0", "bench", "").expect("run");
    db.conn().execute(POSITION_SQL, params![db.run_id]).expect("position");
    db
}

fn names() -> Names {
    let mut names = Names::default();
    names.set(0, SymbolName::new(b"BTCUSDT").expect("name"), Scale::decimals(2), Scale::decimals(3));
    names
}

/// The new path, after `setup` ran on the writer's connection; `batch` rows per transaction.
fn new_path(rows: &[Record], setup: &str, batch: usize) -> f64 {
    let mut db = rusto_db("new.db");
    db.conn().execute_batch(setup).expect("setup");
    let names = names();
    let t = Instant::now();
    for chunk in rows.chunks(batch) {
        db.write_batch(&names, chunk).expect("batch");
    }
    rows.len() as f64 / t.elapsed().as_secs_f64()
}

/// The new path with SQLite's lookaside set back to `slots` slots of 1200 bytes (`Db::open` sets 160; SQLite's
/// default is 40).
fn new_lookaside(rows: &[Record], slots: i32) -> f64 {
    let mut db = rusto_db("lookaside.db");
    db.conn().flush_prepared_statement_cache();
    // SAFETY: the handle is this open connection's, used on this thread only while `db` lives; a null buffer asks
    // SQLite to allocate the slots itself, and SQLite refuses (SQLITE_BUSY, checked) while lookaside is in use.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            db.conn().handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            1200i32,
            slots,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK, "lookaside not set");
    let names = names();
    let t = Instant::now();
    for chunk in rows.chunks(BATCH) {
        db.write_batch(&names, chunk).expect("batch");
    }
    rows.len() as f64 / t.elapsed().as_secs_f64()
}

/// The fills insert of main before issue 11 item 5 (one row per statement).
const OLD_FILL_SQL: &str = "INSERT INTO fills (run_id, position_id, ts_ms, kind, side, quantity, price, fee, pnl,
                          liquidity, trigger_price, decision_ts_ms, latency_ms, funding_rate)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// The old path (main's `write_batch` for fills, as it was): foreign keys on, one row per statement, the position
/// asked of the table per fill unless `id_known`.
fn old_path(rows: &[Record], id_known: bool) -> f64 {
    let path = tmp("old.db");
    let db = rusto_db_at(&path);
    let run = db.run_id;
    drop(db);
    let mut conn = Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .expect("pragmas");
    let (tv, sv) = (0.01, 0.001);
    let t = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let tx = conn.transaction().expect("tx");
        {
            let mut fill = tx.prepare_cached(OLD_FILL_SQL).expect("prepare");
            for r in chunk {
                let Record::Fill { seq, ts_ns, decision_ts_ns, kind, liquidity, buy, qty, px, trigger_px, .. } = *r
                else {
                    continue;
                };
                let Record::Fill { latency_ns, fee, pnl, .. } = *r else { continue };
                let id: i64 = if id_known {
                    1
                } else {
                    tx.prepare_cached("SELECT id FROM positions WHERE run_id = ?1 AND seq = ?2")
                        .expect("prepare")
                        .query_row(params![run, seq as i64], |r| r.get(0))
                        .expect("position")
                };
                let rate = match kind {
                    FillKind::Funding { rate } => Some(rate),
                    FillKind::Entry | FillKind::Exit(_) => None,
                };
                fill.execute(params![
                    run,
                    id,
                    ts_ns / 1_000_000,
                    kind.name(),
                    if buy { "buy" } else { "sell" },
                    qty as f64 * sv,
                    px * tv,
                    fee,
                    pnl,
                    liquidity.name(),
                    trigger_px.map(|t| t * tv),
                    decision_ts_ns / 1_000_000,
                    latency_ns as f64 / 1e6,
                    rate,
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    rows.len() as f64 / t.elapsed().as_secs_f64()
}

/// Plain rusqlite, a table without FK and index: the 9 columns of the first bench, one row per statement.
fn plain_9(rows: &[Record]) -> f64 {
    let mut conn = Connection::open(tmp("plain.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE fills (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, position_id INTEGER NOT NULL,
           ts_ms INTEGER NOT NULL, kind TEXT NOT NULL, side TEXT NOT NULL, quantity REAL NOT NULL,
           price REAL NOT NULL, fee REAL NOT NULL, pnl REAL NOT NULL);",
    )
    .expect("schema");
    let t = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let tx = conn.transaction().expect("tx");
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO fills (run_id, position_id, ts_ms, kind, side, quantity, price, fee, pnl)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .expect("prepare");
            for r in chunk {
                if let Record::Fill { ts_ns, kind, buy, qty, px, fee, pnl, .. } = *r {
                    let side = if buy { "buy" } else { "sell" };
                    st.execute(params![
                        1,
                        1,
                        ts_ns / 1_000_000,
                        kind.name(),
                        side,
                        qty as f64 * 0.001,
                        px * 0.01,
                        fee,
                        pnl
                    ])
                    .expect("insert");
                }
            }
        }
        tx.commit().expect("commit");
    }
    rows.len() as f64 / t.elapsed().as_secs_f64()
}

/// The new path into the real schema with the `position_id` index dropped (what the index costs; not kept:
/// recovery and reports look fills up by position).
fn floor_no_index(rows: &[Record]) -> f64 {
    let mut db = rusto_db("floor.db");
    db.conn().execute_batch("DROP INDEX fills_position").expect("drop index");
    let names = names();
    let t = Instant::now();
    for chunk in rows.chunks(BATCH) {
        db.write_batch(&names, chunk).expect("batch");
    }
    rows.len() as f64 / t.elapsed().as_secs_f64()
}

type Variant = (&'static str, fn(&[Record]) -> f64);

const VARIANTS: &[Variant] = &[
    ("old", |r| old_path(r, false)),
    ("new", |r| new_path(r, "", BATCH)),
    ("old_id_known", |r| old_path(r, true)),
    ("new_autocheckpoint_default_1000", |r| new_path(r, "PRAGMA wal_autocheckpoint = 1000;", BATCH)),
    ("new_cache_16MiB", |r| new_path(r, "PRAGMA cache_size = -16384;", BATCH)),
    ("new_4000_row_tx", |r| new_path(r, "", 4 * BATCH)),
    ("new_lookaside_default_40", |r| new_lookaside(r, 40)),
    ("new_index_dropped", floor_no_index),
    ("plain_rusqlite_9_columns", plain_9),
];

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let only = std::env::var("RUSTO_PERSIST_ONLY").ok();
    let n = std::env::var("RUSTO_PERSIST_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(ROWS);
    let rows = fills(n);
    let chosen: Vec<&Variant> = VARIANTS.iter().filter(|v| only.as_deref().is_none_or(|o| o == v.0)).collect();
    let rounds = if only.is_some() { 1 } else { ROUNDS };
    let mut got = vec![Vec::new(); chosen.len()];
    for round in 0..rounds {
        for (k, (name, f)) in chosen.iter().enumerate() {
            let rate = f(&rows);
            println!("round {round} {name:<26} {:>8.0} k rows/s", rate / 1e3);
            got[k].push(rate);
        }
    }
    let base = median(&mut got[0].clone());
    println!("median of {rounds} rounds, {n} rows, {BATCH}-row transactions:");
    for ((name, _), v) in chosen.iter().zip(&mut got) {
        let m = median(v);
        println!("{name:<26} {:>8.0} k rows/s  {:.2}x {}", m / 1e3, m / base, chosen[0].0);
    }
}

//! Persistence throughput: `fills`-sized rows written through `rusto::persist::Db::write_batch` (the persistence
//! thread's path: `Record::Fill` → cached prepared statement, one transaction per 1000-row batch, WAL,
//! `synchronous = NORMAL`), against plain rusqlite inserting the same 10-column rows the same way, in one run.
//! Run: `cargo bench --bench persist`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use rusto::persist::{Db, Names};
use rusto::types::Scale;
use rusto::types::SymbolName;
use rusto::types::{ExitReason, FillKind, Liquidity, Record};

const BATCH: usize = 1000;
const ROWS: usize = 200_000;

fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("rusto-bench-{}-{name}", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display()));
    }
    p
}

fn fills() -> Vec<Record> {
    (0..ROWS)
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

fn persist(c: &mut Criterion) {
    let rows = fills();
    let mut g = c.benchmark_group("persist_fills");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("rusto_db_write_batch", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = tmp("rusto.db");
                let mut db = Db::open(&path).expect("open");
                db.begin_run("bench", "0", "bench", "").expect("run");
                let mut names = Names::default();
                names.set(0, SymbolName::new(b"BTCUSDT").expect("name"), Scale::decimals(2), Scale::decimals(3));
                // One position for the fills to reference.
                db.conn()
                    .execute(
                        "INSERT INTO positions (run_id, seq, symbol, side, status, entry_ts_ms, entry_price, quantity,
                           fees, regime, confidence, expected_slippage_bps, realized_slippage_bps, stop_price,
                           tp1_price, tp2_price, liquidation_price)
                         VALUES (?1, 1, 'BTCUSDT', 'long', 'open', 0, 1, 1, 0, 'range_low', 0, 0, 0, 0, 0, 0, 0)",
                        params![db.run_id],
                    )
                    .expect("position");
                let t = Instant::now();
                for chunk in rows.chunks(BATCH) {
                    db.write_batch(&names, chunk).expect("batch");
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.bench_function("plain_rusqlite_same_rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = tmp("plain.db");
                let mut conn = Connection::open(&path).expect("open");
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
                                st.execute(params![
                                    1,
                                    1,
                                    ts_ns / 1_000_000,
                                    kind.name(),
                                    if buy { "buy" } else { "sell" },
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
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, persist);
criterion_main!(benches);

//! Issue 10 (8): the execution-cost section of `rusto report` on a database with known rows (every figure worked
//! out by hand below), and a schema-4 database (before the execution columns): reported as it is, then upgraded in
//! place by the writer with its rows kept and reported the same.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde_json::{Value, json};

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-report-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    for ext in ["", "-wal", "-shm", "-run1.lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", p.display())); // Fresh each run; absent is fine.
    }
    p
}

fn dist() -> rusto::report::Distances {
    rusto::report::Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.1 }
}

/// A closed position as schema 1–4 hold it (and its entry features); returns its row id.
struct Pos<'a> {
    seq: i64,
    symbol: &'a str,
    side: &'a str,
    exit: &'a str,
    variant: &'a str,
    fees: f64,
    expected_bps: f64,
    realized_bps: f64,
}

fn insert_position(c: &Connection, p: &Pos<'_>) -> i64 {
    c.execute(
        "INSERT INTO positions (run_id, seq, symbol, side, status, entry_ts_ms, entry_price, quantity, exit_ts_ms,
           exit_price, fees, pnl, pnl_pct, exit_reason, mfe_pct, mae_pct, time_to_mfe_secs, time_to_mae_secs, regime,
           confidence, expected_slippage_bps, realized_slippage_bps, stop_price, tp1_price, tp2_price,
           liquidation_price, variant)
         VALUES (1, ?1, ?2, ?3, 'closed', 1680000000000 + ?1, 100.0, 1.0, 1680000060000 + ?1, 100.0, ?4, -?4,
           -?4, ?5, 0.1, 0.1, 1.0, 2.0, 'range_low', 0.5, ?6, ?7, 99.0, 101.0, 102.0, 90.0, ?8)",
        params![p.seq, p.symbol, p.side, p.fees, p.exit, p.expected_bps, p.realized_bps, p.variant],
    )
    .unwrap();
    let id = c.last_insert_rowid();
    c.execute(
        "INSERT INTO entry_features VALUES (?1, 1.0, 0.0, 1.0, 0.1, 0.0, 0, 0, 0, 'range_low', 0.5, 1.0, 1.0)",
        [id],
    )
    .unwrap();
    id
}

/// A fill with the schema-1 columns; returns its row id.
fn insert_fill(c: &Connection, pos: i64, kind: &str, side: &str, price: f64, fee: f64, pnl: f64) -> i64 {
    c.execute(
        "INSERT INTO fills (run_id, position_id, ts_ms, kind, side, quantity, price, fee, pnl)
         VALUES (1, ?1, 1680000000000, ?2, ?3, 1.0, ?4, ?5, ?6)",
        params![pos, kind, side, price, fee, pnl],
    )
    .unwrap();
    c.last_insert_rowid()
}

/// A schema-5 fill: the schema-1 columns plus liquidity, trigger price, decision time, latency and funding rate.
#[allow(clippy::too_many_arguments)]
fn fill5(c: &Connection, pos: i64, kind: &str, side: &str, px: f64, liq: Option<&str>, trigger: Option<f64>, pnl: f64) {
    let fee = if kind == "Funding" || liq.is_none() { 0.0 } else { 1.0 };
    let id = insert_fill(c, pos, kind, side, px, fee, pnl);
    let rate = (kind == "Funding").then_some(0.0001);
    c.execute(
        "UPDATE fills SET liquidity = ?2, trigger_price = ?3, decision_ts_ms = ts_ms, latency_ms = 0.25,
           funding_rate = ?4 WHERE id = ?1",
        params![id, liq, trigger, rate],
    )
    .unwrap();
}

fn report(db: &Path) -> rusto::report::Execution {
    let trades = rusto::report::load_trades(db).unwrap();
    rusto::report::build_review(&trades, dist(), 5).execution
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Six positions: four of the base trader (BTCUSDT long stopped, BTCUSDT short TP1 + breakeven, ETHUSDT TP1 + TP2,
/// ETHUSDT liquidated), one of variant "tight", one closed as Crashed (left out).
fn known_rows(c: &Connection) {
    let pos = |seq, symbol, side, exit, variant, fees, expected_bps, realized_bps| {
        insert_position(c, &Pos { seq, symbol, side, exit, variant, fees, expected_bps, realized_bps })
    };
    let (t, m) = (Some("taker"), Some("maker"));
    // A: stop at 9990 filled at 9980: (9990 − 9980) / 9990 = 10.01001 bps worse; paid 1.0 funding.
    let a = pos(1, "BTCUSDT", "long", "StopLoss", "base", 10.0, 0.6, 1.5);
    fill5(c, a, "entry", "buy", 10_000.0, t, Some(9_999.0), -1.0);
    fill5(c, a, "Funding", "sell", 10_000.5, None, None, -1.0);
    fill5(c, a, "StopLoss", "sell", 9_980.0, t, Some(9_990.0), -21.0);
    // B: a short; TP1 resting at 9900 filled there (maker), breakeven stop at 9998 filled buying at 9999:
    // (9999 − 9998) / 9998 = 1.00020 bps worse; received 0.5 funding.
    let b = pos(2, "BTCUSDT", "short", "Breakeven", "base", 6.0, 1.0, 0.5);
    fill5(c, b, "entry", "sell", 10_000.0, t, Some(10_001.0), -1.0);
    fill5(c, b, "Funding", "buy", 10_000.0, None, None, 0.5);
    fill5(c, b, "TakeProfit", "buy", 9_900.0, m, Some(9_900.0), 49.0);
    fill5(c, b, "Breakeven", "buy", 9_999.0, t, Some(9_998.0), -0.5);
    // C: TP1 and TP2, both at their limits.
    let cc = pos(3, "ETHUSDT", "long", "TP2", "base", 1.0, 2.0, 3.0);
    fill5(c, cc, "entry", "buy", 2_000.0, t, Some(2_000.0), -1.0);
    fill5(c, cc, "TakeProfit", "sell", 2_020.0, m, Some(2_020.0), 9.0);
    fill5(c, cc, "TP2", "sell", 2_040.0, m, Some(2_040.0), 19.0);
    // D: liquidated (no order of ours: no liquidity, no trigger).
    let d = pos(4, "ETHUSDT", "long", "Liquidation", "base", 2.0, 0.0, 1.0);
    fill5(c, d, "entry", "buy", 2_000.0, t, Some(1_999.8), -1.0);
    fill5(c, d, "Liquidation", "sell", 1_800.0, None, None, -200.0);
    // E: variant "tight", stopped exactly at its trigger.
    let e = pos(5, "BTCUSDT", "long", "StopLoss", "tight", 3.0, 4.0, 4.0);
    fill5(c, e, "entry", "buy", 10_000.0, t, Some(10_000.0), -1.0);
    fill5(c, e, "StopLoss", "sell", 9_950.0, t, Some(9_950.0), -51.0);
    // F: closed as Crashed by the database: not a strategy outcome, in no table.
    let f = pos(6, "BTCUSDT", "long", "Crashed", "base", 50.0, 9.0, 9.0);
    fill5(c, f, "entry", "buy", 10_000.0, t, Some(10_000.0), -1.0);
    fill5(c, f, "Crashed", "sell", 10_000.0, t, None, -1.0);
    c.execute("UPDATE positions SET funding = -1.0 WHERE seq = 1", []).unwrap();
    c.execute("UPDATE positions SET funding = 0.5 WHERE seq = 2", []).unwrap();
}

#[test]
fn the_execution_section_adds_up_known_rows() {
    let db = known_db("known.db");
    let x = report(&db);
    let j = serde_json::to_value(&x).unwrap();
    let slip_a = (9_990.0 - 9_980.0) / 9_990.0 * 1e4; // 10.01001001
    let slip_b = (9_999.0 - 9_998.0) / 9_998.0 * 1e4; // 1.00020004
    // Base total: A + B + C + D.
    let t = &x.total;
    assert_eq!((t.positions, t.fills, t.funding_payments, t.maker_fills, t.taker_fills), (4, 10, 2, Some(3), Some(6)));
    assert!(close(t.fees, 10.0 + 6.0 + 1.0 + 2.0) && close(t.funding, -1.0 + 0.5), "{t:?}");
    assert!(close(t.expected_entry_slippage_bps.unwrap(), (0.6 + 1.0 + 2.0 + 0.0) / 4.0), "{t:?}");
    assert!(close(t.realized_entry_slippage_bps.unwrap(), (1.5 + 0.5 + 3.0 + 1.0) / 4.0), "{t:?}");
    assert_eq!(t.stop_exits, 2);
    assert!(close(t.stop_exit_slippage_bps.unwrap(), (slip_a + slip_b) / 2.0), "{t:?}");
    assert!(close(t.stop_exit_slippage_worst_bps.unwrap(), slip_a), "{t:?}");
    assert_eq!((t.tp_fills, t.tp_fills_at_limit), (3, Some(3)));
    // By symbol: BTCUSDT = A + B, ETHUSDT = C + D (a liquidation is no stop-market exit).
    let btc = &x.by_symbol["BTCUSDT"];
    assert_eq!(
        (btc.positions, btc.fills, btc.maker_fills, btc.taker_fills, btc.stop_exits),
        (2, 5, Some(1), Some(4), 2)
    );
    assert!(close(btc.fees, 16.0) && close(btc.funding, -0.5) && close(btc.expected_entry_slippage_bps.unwrap(), 0.8));
    let eth = &x.by_symbol["ETHUSDT"];
    assert_eq!(
        (eth.positions, eth.fills, eth.maker_fills, eth.taker_fills, eth.stop_exits),
        (2, 5, Some(2), Some(2), 0)
    );
    assert_eq!((eth.stop_exit_slippage_bps, eth.tp_fills, eth.tp_fills_at_limit), (None, 2, Some(2)));
    assert!(close(eth.realized_entry_slippage_bps.unwrap(), 2.0) && close(eth.funding, 0.0));
    // By final exit reason.
    assert_eq!(x.by_exit_reason.keys().collect::<Vec<_>>(), ["Breakeven", "Liquidation", "StopLoss", "TP2"]);
    let sl = &x.by_exit_reason["StopLoss"];
    assert_eq!(
        (sl.positions, sl.fills, sl.funding_payments, sl.maker_fills, sl.taker_fills),
        (1, 2, 1, Some(0), Some(2))
    );
    assert!(close(sl.stop_exit_slippage_bps.unwrap(), slip_a) && close(sl.funding, -1.0) && close(sl.fees, 10.0));
    let be = &x.by_exit_reason["Breakeven"];
    assert_eq!(
        (be.fills, be.maker_fills, be.taker_fills, be.tp_fills, be.tp_fills_at_limit),
        (3, Some(1), Some(2), 1, Some(1))
    );
    assert!(close(be.stop_exit_slippage_bps.unwrap(), slip_b), "{be:?}");
    let liq = &x.by_exit_reason["Liquidation"];
    assert_eq!((liq.fills, liq.maker_fills, liq.taker_fills, liq.stop_exits), (2, Some(0), Some(1), 0));
    assert_eq!(j["by_exit_reason"]["Liquidation"]["stop_exit_slippage_bps"], Value::Null);
    // By trader: base = the total; "tight" stopped at its trigger (0 bps); the Crashed position nowhere.
    assert_eq!(x.by_variant["base"], x.total);
    let tight = &x.by_variant["tight"];
    assert_eq!((tight.positions, tight.stop_exits, tight.stop_exit_slippage_bps), (1, 1, Some(0.0)));
    assert_eq!(x.by_variant.len(), 2);
}

/// A database holding the rows of [`known_rows`] (one finished run).
fn known_db(name: &str) -> PathBuf {
    let db = fresh(name);
    let mut w = rusto::persist::Db::open(&db).unwrap();
    w.begin_run("test", "h", "replay", "").unwrap();
    w.end_run("finished").unwrap();
    drop(w);
    known_rows(&Connection::open(&db).unwrap());
    db
}

/// The text table of the same rows: the TOTAL, StopLoss and "tight" lines, figure by figure.
#[test]
fn the_execution_table_shows_known_rows() {
    let db = known_db("known-text.db");
    let trades = rusto::report::load_trades(&db).unwrap();
    let text = rusto::report::review_text(&rusto::report::build_review(&trades, dist(), 5));
    let words = |l: String| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    let total = text.lines().filter(|l| l.starts_with("  TOTAL")).nth(1).unwrap().to_string();
    assert_eq!(
        words(total),
        ["TOTAL", "4", "10", "19.00", "-0.5000", "2", "3", "6", "0.90", "1.50", "2", "5.51", "10.01", "3/3"]
    );
    let stop = text.lines().filter(|l| l.starts_with("  StopLoss")).nth(1).unwrap().to_string();
    assert_eq!(
        words(stop),
        ["StopLoss", "1", "2", "10.00", "-1.0000", "1", "0", "2", "0.60", "1.50", "1", "10.01", "10.01", "0/0"]
    );
    let tight = text.split("  by trader (all):\n").nth(1).unwrap().lines().nth(1).unwrap().to_string();
    assert_eq!(
        words(tight),
        ["tight", "1", "2", "3.00", "0.0000", "0", "0", "2", "4.00", "4.00", "1", "0.00", "0.00", "0/0"]
    );
}

/// A schema-4 database (what rusto wrote before issue 10) with one closed position.
fn v4_database(db: &Path) {
    let c = Connection::open(db).unwrap();
    c.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
    )
    .unwrap();
    for &(v, name, sql) in &rusto::persist::MIGRATIONS[..4] {
        c.execute_batch(sql).unwrap();
        c.execute("INSERT INTO schema_version VALUES (?1, ?2, 0)", params![v, name]).unwrap();
    }
    c.execute(
        "INSERT INTO runs (version, config_hash, mode, inputs, started_at_ms, ended_at_ms, status)
         VALUES ('0.1', 'h', 'replay', '', 0, 1, 'finished')",
        [],
    )
    .unwrap();
    let p = Pos {
        seq: 1,
        symbol: "BTCUSDT",
        side: "long",
        exit: "StopLoss",
        variant: "base",
        fees: 8.0,
        expected_bps: 0.5,
        realized_bps: 0.25,
    };
    let id = insert_position(&c, &p);
    insert_fill(&c, id, "entry", "buy", 10_000.0, 4.0, -4.0);
    insert_fill(&c, id, "StopLoss", "sell", 9_990.0, 4.0, -14.0);
}

/// A database at schema 4 reports as it is (the report does not migrate: the execution columns are missing, so
/// maker/taker are "-", funding 0); opened by the writer it is upgraded to 5 in place, keeps every row (the new
/// columns NULL, positions' funding 0) and reports exactly the same.
#[test]
fn a_schema_4_database_reports_and_upgrades_in_place() {
    let db = fresh("v4.db");
    v4_database(&db);
    let before = rusto::report::build_review(&rusto::report::load_trades(&db).unwrap(), dist(), 5);
    let x = &before.execution.total;
    assert_eq!(before.closed_positions, 1);
    assert_eq!((x.positions, x.fills, x.maker_fills, x.taker_fills, x.funding_payments), (1, 2, None, None, 0));
    assert_eq!((x.stop_exits, x.stop_exit_slippage_bps, x.tp_fills, x.tp_fills_at_limit), (0, None, 0, Some(0)));
    assert!(close(x.fees, 8.0) && x.funding == 0.0 && close(x.realized_entry_slippage_bps.unwrap(), 0.25));
    let text = rusto::report::review_text(&before);
    let total = text.lines().filter(|l| l.starts_with("  TOTAL")).nth(1).unwrap();
    assert_eq!(
        total.split_whitespace().collect::<Vec<_>>(),
        ["TOTAL", "1", "2", "8.00", "0.0000", "0", "-", "-", "0.50", "0.25", "0", "-", "-", "0/0"]
    );
    // The writer upgrades it.
    let w = rusto::persist::Db::open(&db).unwrap();
    assert_eq!(w.schema_version().unwrap(), rusto::persist::Db::known_version());
    assert!(w.recovered().is_empty());
    drop(w);
    let c = Connection::open(&db).unwrap();
    let n = |q: &str| -> i64 { c.query_row(q, [], |r| r.get(0)).unwrap() };
    assert_eq!(n("SELECT count(*) FROM schema_version"), rusto::persist::Db::known_version());
    assert_eq!(n("SELECT count(*) FROM positions WHERE funding = 0 AND bar_close_ts_ms IS NULL"), 1);
    assert_eq!(n("SELECT count(*) FROM positions WHERE entry_fill_ts_ms IS NULL AND order_latency_ms IS NULL"), 1);
    assert_eq!(
        n("SELECT count(*) FROM fills WHERE liquidity IS NULL AND trigger_price IS NULL AND decision_ts_ms IS NULL
             AND latency_ms IS NULL AND funding_rate IS NULL"),
        2
    );
    assert_eq!(n("SELECT count(*) FROM fills WHERE fee = 4.0"), 2, "the old rows are kept as they were");
    drop(c);
    let after = rusto::report::build_review(&rusto::report::load_trades(&db).unwrap(), dist(), 5);
    assert_eq!(after.to_json(), before.to_json());
    assert_eq!(serde_json::to_value(after.execution.total).unwrap()["maker_fills"], json!(null));
}

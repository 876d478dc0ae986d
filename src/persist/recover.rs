//! Runs killed before they ended (`kill -9`, a power cut): found and closed at the next start on the database.
//!
//! **Live or dead.** Every run holds SQLite's exclusive lock on its own lock file, `<db>-run<id>.lock` (a tiny
//! SQLite file kept in an open `BEGIN EXCLUSIVE`), for as long as its process lives: taken inside the transaction
//! that inserts the run row (so no other start ever sees the run `running` without its lock), released and removed
//! by [`crate::persist::Db::end_run`], and released by the kernel when the process dies however it dies (SQLite's
//! locks are POSIX advisory locks; SQLite also makes two connections of one process exclude each other). At start, a run still `running` whose lock file can be locked (or is
//! missing: a run of a rusto before these locks, or a removed file) is dead; one whose lock is held belongs to a
//! live process (a concurrent live run on the same database) and is left alone. No pid or host is involved, so a
//! reused pid cannot fool it; the lock is host-local, as the WAL journal already requires every process using the
//! database to be on the same host.
//!
//! **Recovery**, in one write transaction per start, for each dead run:
//! - `last_row_ms` = the newest timestamp among the run's committed rows: positions' entry and exit times, fills,
//!   tuning logs (exchange time), symbol selections and link health (wall clock); the run's `started_at_ms` when
//!   it committed none. `status` becomes `crashed`; `ended_at_ms` stays NULL (when the process died is unknown).
//! - each of its `open` positions is closed with exit reason `Crashed` at `last_row_ms`, at the last price
//!   it traded at: the price of its newest order fill (its entry fill, or its TP1 fill when TP1 was hit; not a
//!   funding row, whose price is a mark price), or its entry price when no fill of it was committed. The
//!   remaining quantity (entry quantity less the committed exit fills; funding rows carry the open quantity but
//!   close nothing) gets a `Crashed` fill (taker, decided at `last_row_ms`, no trigger price or latency) with PnL
//!   computed as the engine computes an exit: gross `±(price − entry) × quantity` less a taker fee at the run's
//!   own rate (its entry fee ÷ entry notional). The position's fees and PnL are then the sums over all its fills,
//!   funding payments included (as for any closed position: PnL = Σ fill PnL), its `funding` the sum of its
//!   funding rows, its exit price the quantity-weighted price of its exit fills; its MFE/MAE stay NULL (the run
//!   died before writing them). No hour-expectancy sample is written: the execution gate must not learn from a
//!   close the strategy never made.
//!
//! Each recovered run is logged (warn) and counted in the run summary's `db` block.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction, params};

use crate::persist::error::{DbError, classify};

/// The exit reason of a position closed because its run was killed, as stored.
fn crashed() -> &'static str {
    crate::types::record::ExitReason::Crashed.name()
}

/// A run found dead and marked `crashed`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// Run id.
    pub run_id: i64,
    /// Its last committed row's time, ms.
    pub last_row_ms: i64,
    /// Open positions closed as `Crashed`.
    pub positions_closed: u64,
}

/// The lock file of run `id` of the database at `db`.
pub fn lock_path(db: &Path, id: i64) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(format!("-run{id}.lock"));
    PathBuf::from(s)
}

/// Creates run `id`'s lock file (a one-table SQLite file) and takes its exclusive lock: an open `BEGIN EXCLUSIVE`
/// held by the returned connection until it is closed or the process dies.
pub(crate) fn lock_run(db: &Path, id: i64) -> Result<(PathBuf, Connection), DbError> {
    let p = lock_path(db, id);
    let fail = |e: rusqlite::Error| DbError::Other(db.to_owned(), format!("run lock {}: {e}", p.display()));
    let c = Connection::open(&p).map_err(fail)?;
    c.execute_batch(
        "PRAGMA journal_mode = DELETE; CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY);
         BEGIN EXCLUSIVE; INSERT OR REPLACE INTO run (id) VALUES (1);",
    )
    .map_err(fail)?;
    Ok((p, c))
}

/// True when run `id`'s process is alive: its lock file exists and another connection holds its lock.
fn is_alive(db: &Path, id: i64) -> Result<bool, DbError> {
    let p = lock_path(db, id);
    if !p.exists() {
        return Ok(false);
    }
    let fail = |e: rusqlite::Error| DbError::Other(db.to_owned(), format!("run lock {}: {e}", p.display()));
    let c = Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(fail)?;
    // Asked once, not waited for: a live run holds its lock for its whole life.
    c.busy_timeout(std::time::Duration::ZERO).map_err(fail)?;
    match c.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;") {
        Ok(()) => Ok(false),
        Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy)) => Ok(true),
        // Not a lock file rusto wrote (only rusto locks these): nobody holds it.
        Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase)) => Ok(false),
        Err(e) => Err(fail(e)),
    }
}

/// Marks every dead `running` run `crashed` and closes its open positions (one write transaction), logging each.
pub(crate) fn recover_crashed(conn: &mut Connection, db: &Path) -> Result<Vec<Recovered>, DbError> {
    let err = |e| classify(db, e);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
    let running: Vec<i64> = {
        let mut st = tx.prepare("SELECT id FROM runs WHERE status = 'running' ORDER BY id").map_err(err)?;
        let ids = st.query_map([], |r| r.get(0)).map_err(err)?;
        ids.collect::<rusqlite::Result<_>>().map_err(err)?
    };
    let mut out = Vec::new();
    for id in running {
        if is_alive(db, id)? {
            log::info!("database {}: run {id} is running in another process: left alone", db.display());
            continue;
        }
        let r = recover_run(&tx, id).map_err(err)?;
        log::warn!(
            "database {}: run {id} was left running by a process that is gone: marked crashed at its last row \
             ({} ms), {} open position(s) closed as {}",
            db.display(),
            r.last_row_ms,
            r.positions_closed,
            crashed()
        );
        out.push(r);
    }
    tx.commit().map_err(err)?;
    for r in &out {
        let p = lock_path(db, r.run_id);
        if p.exists()
            && let Err(e) = std::fs::remove_file(&p)
        {
            log::warn!("database {}: stale run lock {} not removed: {e}", db.display(), p.display());
        }
    }
    Ok(out)
}

/// The newest timestamp among run `id`'s committed rows (its start time when it has none), ms.
const LAST_ROW_SQL: &str = "SELECT COALESCE(MAX(t), (SELECT started_at_ms FROM runs WHERE id = ?1)) FROM (
       SELECT MAX(entry_ts_ms) AS t FROM positions WHERE run_id = ?1
       UNION ALL SELECT MAX(exit_ts_ms) FROM positions WHERE run_id = ?1
       UNION ALL SELECT MAX(ts_ms) FROM fills WHERE run_id = ?1
       UNION ALL SELECT MAX(ts_ms) FROM volume_burst_tuning_logs WHERE run_id = ?1
       UNION ALL SELECT MAX(ts_ms) FROM symbol_selections WHERE run_id = ?1
       UNION ALL SELECT MAX(ts_ms) FROM link_health WHERE run_id = ?1)";

fn recover_run(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Recovered> {
    let last_row_ms: i64 = tx.query_row(LAST_ROW_SQL, params![id], |r| r.get(0))?;
    let open: Vec<i64> = {
        let mut st = tx.prepare("SELECT id FROM positions WHERE run_id = ?1 AND status = 'open' ORDER BY id")?;
        let ids = st.query_map(params![id], |r| r.get(0))?;
        ids.collect::<rusqlite::Result<_>>()?
    };
    for &pos in &open {
        close_crashed(tx, id, pos, last_row_ms)?;
    }
    tx.execute("UPDATE runs SET status = 'crashed', last_row_ms = ?1 WHERE id = ?2", params![last_row_ms, id])?;
    Ok(Recovered { run_id: id, last_row_ms, positions_closed: open.len() as u64 })
}

/// What closing an open position needs from its row and its fills.
struct OpenPosition {
    long: bool,
    entry_price: f64,
    quantity: f64,
    entry_fee: f64,
    exited_qty: f64,
    last_price: f64,
}

/// The kinds of the fills that are not exits, as stored: (the entry, a funding payment).
fn not_exits() -> (&'static str, &'static str) {
    use crate::types::record::FillKind;
    (FillKind::Entry.name(), FillKind::Funding { rate: 0.0 }.name())
}

/// Closes position `pos` of run `run` as `Crashed` at `ts_ms` (see the module doc for the price and the PnL).
fn close_crashed(tx: &Transaction<'_>, run: i64, pos: i64, ts_ms: i64) -> rusqlite::Result<()> {
    let (entry, funding) = not_exits();
    let p = tx.query_row(
        "SELECT side = 'long', entry_price, quantity, fees,
                COALESCE((SELECT SUM(quantity) FROM fills WHERE position_id = ?1 AND kind NOT IN (?2, ?3)), 0),
                COALESCE((SELECT price FROM fills WHERE position_id = ?1 AND kind != ?3
                          ORDER BY ts_ms DESC, id DESC LIMIT 1),
                         entry_price)
         FROM positions WHERE id = ?1",
        params![pos, entry, funding],
        |r| {
            Ok(OpenPosition {
                long: r.get(0)?,
                entry_price: r.get(1)?,
                quantity: r.get(2)?,
                entry_fee: r.get(3)?,
                exited_qty: r.get(4)?,
                last_price: r.get(5)?,
            })
        },
    )?;
    let notional = p.entry_price * p.quantity;
    let fee_rate = if notional > 0.0 { p.entry_fee / notional } else { 0.0 };
    let qty = (p.quantity - p.exited_qty).max(0.0);
    let fee = p.last_price * qty * fee_rate;
    let sgn = if p.long { 1.0 } else { -1.0 };
    let pnl = sgn * (p.last_price - p.entry_price) * qty - fee;
    if qty > 0.0 {
        // A taker close (its fee is at the entry's taker rate), decided at the close time; no order, no latency.
        tx.execute(
            "INSERT INTO fills (run_id, position_id, ts_ms, kind, side, quantity, price, fee, pnl, liquidity,
                                decision_ts_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'taker', ?3)",
            params![run, pos, ts_ms, crashed(), if p.long { "sell" } else { "buy" }, qty, p.last_price, fee, pnl],
        )?;
    }
    // Fees and PnL: the entry fee (on the row) plus every other fill's (funding rows: no fee, their payment in
    // the PnL); the exit price weighted by exit quantity (funding rows are not exits).
    tx.execute(
        "UPDATE positions SET status = 'closed', exit_ts_ms = ?2, exit_reason = ?3,
           fees = fees + (SELECT COALESCE(SUM(fee), 0) FROM fills WHERE position_id = ?1 AND kind != ?4),
           pnl = -fees + (SELECT COALESCE(SUM(pnl), 0) FROM fills WHERE position_id = ?1 AND kind != ?4),
           funding = (SELECT COALESCE(SUM(pnl), 0) FROM fills WHERE position_id = ?1 AND kind = ?5),
           exit_price = (SELECT SUM(price * quantity) / NULLIF(SUM(quantity), 0) FROM fills
                         WHERE position_id = ?1 AND kind NOT IN (?4, ?5))
         WHERE id = ?1",
        params![pos, ts_ms, crashed(), entry, funding],
    )?;
    tx.execute(
        "UPDATE positions SET pnl_pct = pnl / NULLIF(entry_price * quantity, 0) * 100 WHERE id = ?1",
        params![pos],
    )?;
    Ok(())
}

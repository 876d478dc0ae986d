//! SQLite storage (rusqlite), used only by the persistence thread.
//!
//! - Migrations are the numbered files in `migrations/` (compiled in), applied in order at start inside one
//!   `BEGIN IMMEDIATE` transaction and recorded in `schema_version`. A database whose schema is newer than this
//!   binary knows is refused.
//! - WAL journal, `synchronous = NORMAL`, cached prepared statements, one transaction per batch; fills go in
//!   multi-row INSERTs (64 rows, then 32, 16, ..., 1 for the rest). After migration and recovery the writer's
//!   connection runs with `foreign_keys = OFF`: every parent a row names is checked by the writer itself (the run
//!   it began; a position inserted in the same batch, cached from an earlier commit, or found in the table), so a
//!   row for an unknown parent is refused as before ([`DbError::Row`]) without SQLite repeating the lookup per row.
//! - Start-up fails with a clear [`DbError`] (before any trading) when the file is locked by another process,
//!   read-only, in a directory that does not exist, not a database, or fails `PRAGMA quick_check` (a damaged
//!   page: measured at ≈ 2.9 s on a 0.9 GB database, see PERF.md; the full `integrity_check` takes ≈ 2.5 times as
//!   long and is left to the operator).
//! - A run left `running` by a killed process is marked `crashed` at the next start (see [`crate::persist::recover`]).
//! - Rows: prices (ticks) × the symbol's tick value, quantities (steps) × its step value, exchange times ns → ms
//!   (floored), order latencies ns → ms as REAL. A fill's `liquidity` is NULL for a liquidation or a funding
//!   payment, its `trigger_price` NULL when the order had none (liquidation, funding), its `funding_rate` set on
//!   funding rows only (schema 5, `migrations/0005_execution.sql`).
//! - The real account's order reports (testnet and live) go to `order_reports` (schema 6,
//!   `migrations/0006_orders.sql`), one row per report that changed the real position, with the run's run id: the
//!   run row is its parent, checked like the fills' (a report carries no position row id: it is tied to its paper
//!   position by decision time).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

pub(crate) use crate::persist::error::DbError;
use crate::persist::error::classify;
use crate::types::decimal::Scale;
use crate::types::order::{ExecKind, ExecReport, OrderSide};
use crate::types::record::{Features, FillKind, GatePass, Position, Record, TuningLog};
use crate::types::symbols::SymbolName;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "0001_init", include_str!("../../migrations/0001_init.sql")),
    (2, "0002_live", include_str!("../../migrations/0002_live.sql")),
    (3, "0003_variants", include_str!("../../migrations/0003_variants.sql")),
    (4, "0004_crashed", include_str!("../../migrations/0004_crashed.sql")),
    (5, "0005_execution", include_str!("../../migrations/0005_execution.sql")),
    (6, "0006_orders", include_str!("../../migrations/0006_orders.sql")),
];

/// Records from the control thread (low rate; they reach the persistence thread through a bounded queue).
#[derive(Debug, Clone)]
pub enum ControlRecord {
    /// A symbol selection (at start or the daily reselection).
    Selection {
        /// Wall clock, ms.
        ts_ms: i64,
        /// "start" or "daily".
        reason: &'static str,
        /// Symbols and their 24 h quote volumes, ranked.
        symbols: Vec<(SymbolName, f64)>,
    },
    /// A link health measurement.
    Health {
        /// Wall clock, ms.
        ts_ms: i64,
        /// Median REST round trip, ms.
        rtt_ms: f64,
        /// Exchange clock − local clock, ms.
        offset_ms: f64,
    },
}

/// A database path whose directory does not exist is refused as such (SQLite reports it as "unable to open").
fn check_directory(path: &Path) -> Result<(), DbError> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() && !d.is_dir() => Err(DbError::NoDirectory(path.to_owned(), d.to_owned())),
        _ => Ok(()),
    }
}

/// How many problems of `PRAGMA quick_check` an error quotes.
const QUICK_CHECK_SHOWN: usize = 3;

/// `PRAGMA quick_check` (b-tree structure, page and record format, NOT NULL; not index/table agreement nor
/// UNIQUE): a damaged database is refused before any trading instead of losing rows to it later.
pub(crate) fn quick_check(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let damaged = |m: String| DbError::Damaged(path.to_owned(), m);
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut st = conn.prepare(&format!("PRAGMA quick_check({QUICK_CHECK_SHOWN})"))?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(v) if v.len() == 1 && v[0] == "ok" => Ok(()),
        // Its first line names the database ("*** in database main ***"): one line per problem, joined.
        Ok(v) => Err(damaged(v.join("; ").replace('\n', " "))),
        Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt)) => {
            Err(damaged(e.to_string()))
        }
        Err(e) => Err(classify(path, e)),
    }
}

/// SQLite lookaside slots on the writer's connection (SQLite's default is 40 of 1200 bytes): the per-statement
/// and per-value allocations of a 64-row insert come from them instead of malloc (callgrind, `benches/persist.rs`:
/// 8 783 -> 8 133 instructions per fills row; 192 KiB per connection).
const LOOKASIDE_SLOTS: i32 = 160;
/// Bytes per lookaside slot (SQLite's default).
const LOOKASIDE_SLOT_BYTES: i32 = 1200;

/// Gives the fresh connection [`LOOKASIDE_SLOTS`] lookaside slots. Only a speed-up: when SQLite refuses (its
/// lookaside already in use) the connection keeps the default, logged.
fn set_lookaside(conn: &Connection, path: &Path) {
    // SAFETY: the handle is this open connection's, used on this thread while `conn` is borrowed; a null buffer
    // asks SQLite to allocate the slots itself, and the three variadic arguments are the (void*, int, int) that
    // SQLITE_DBCONFIG_LOOKASIDE reads. SQLite returns SQLITE_BUSY instead of changing lookaside in use.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            LOOKASIDE_SLOT_BYTES,
            LOOKASIDE_SLOTS,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        log::warn!("database {}: lookaside not enlarged (SQLite code {rc}), default kept", path.display());
    }
}

/// WAL pages between automatic checkpoints on the writer's connection (SQLite's default is 1000).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

/// Symbol names and scales announced to the persistence thread.
#[derive(Default)]
pub struct Names(Vec<(SymbolName, Scale, Scale)>);

impl Names {
    /// Records a symbol.
    pub fn set(&mut self, id: u16, name: SymbolName, price: Scale, qty: Scale) {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, Self::unknown());
        }
        self.0[i] = (name, price, qty);
    }
    /// (name, price scale, quantity scale) of a symbol (an unknown id: no name, scales of 1).
    pub fn scales(&self, id: u16) -> (SymbolName, Scale, Scale) {
        self.0.get(id as usize).copied().unwrap_or_else(Self::unknown)
    }
    /// (name, tick value, step value) of a symbol.
    pub fn get(&self, id: u16) -> (SymbolName, f64, f64) {
        let (n, p, q) = self.scales(id);
        (n, p.to_f64(1), q.to_f64(1))
    }
    /// What an id never announced reads as: no name, scales of 1.
    fn unknown() -> (SymbolName, Scale, Scale) {
        (SymbolName::default(), Scale::decimals(0), Scale::decimals(0))
    }
}

/// An open database with its run.
pub struct Db {
    conn: Connection,
    path: PathBuf,
    /// Position row ids by sequence number (a cache filled on insert, cleared when a batch rolls back).
    pos_ids: std::collections::HashMap<u64, i64>,
    /// Trader names by variant index (0 = "base").
    variants: Vec<String>,
    /// This run's lock file, held (an open exclusive transaction) while the run is alive: how the next start tells a live run from a
    /// killed one (see [`crate::persist::recover`]).
    run_lock: Option<(PathBuf, Connection)>,
    /// Runs found left `running` by a killed process and marked `crashed` when this database was opened.
    recovered: Vec<crate::persist::recover::Recovered>,
    /// The multi-row fills inserts, by [`FILL_CHUNKS`] index (64, 32, ..., 1 rows per statement).
    fill_sql: Vec<String>,
    /// Fills waiting for their multi-row insert (at most [`FILL_ROWS_MAX`], all inside the open batch).
    fills: Vec<FillRow>,
    /// This run's id.
    pub run_id: i64,
}

fn now_ms() -> i64 {
    crate::types::clock::wall_ns() / 1_000_000
}

impl Db {
    /// Opens (creating if needed) and migrates the database; fails clearly before any trading.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let err = |e| classify(path, e);
        check_directory(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        set_lookaside(&conn, path);
        conn.busy_timeout(std::time::Duration::from_millis(2_000)).map_err(err)?;
        // Touch the file: a non-database fails here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::Other(path.to_owned(), format!("could not enable WAL (journal_mode = {mode})")));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(err)?;
        quick_check(&conn, path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut db = Db {
            conn,
            path: path.to_owned(),
            pos_ids: Default::default(),
            variants: vec!["base".into()],
            run_lock: None,
            recovered: Vec::new(),
            fill_sql: FILL_CHUNKS.iter().map(|&n| fill_sql(n)).collect(),
            fills: Vec::with_capacity(FILL_ROWS_MAX),
            run_id: 0,
        };
        db.migrate()?;
        db.recovered = crate::persist::recover::recover_crashed(&mut db.conn, path)?;
        // From here on this connection writes only rows whose parents the writer checks itself (see
        // [`Db::write_batch`]): SQLite's own foreign key checks would repeat those lookups on every row.
        db.conn.execute_batch("PRAGMA foreign_keys = OFF;").map_err(err)?;
        // Checkpoint every 4000 WAL pages (≈ 16 MB) instead of 1000: fewer checkpoints (and their fsyncs) per row,
        // 1.3x fills rows/s in the same-run bench (PERF.md), the WAL bounded at about 16 MB between checkpoints.
        db.conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES).map_err(err)?;
        Ok(db)
    }

    /// The runs this open found left `running` by a killed process and marked `crashed`.
    pub fn recovered(&self) -> &[crate::persist::recover::Recovered] {
        &self.recovered
    }

    fn e(&self, e: rusqlite::Error) -> DbError {
        classify(&self.path, e)
    }

    /// The newest schema version this binary knows.
    pub fn known_version() -> i64 {
        MIGRATIONS.last().map_or(0, |m| m.0)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&path, e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
        )
        .map_err(|e| classify(&path, e))?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))
            .map_err(|e| classify(&path, e))?;
        let known = Self::known_version();
        if current > known {
            return Err(DbError::TooNew { path, found: current, known });
        }
        for &(v, name, sql) in MIGRATIONS {
            if v > current {
                tx.execute_batch(sql).map_err(|e| classify(&path, e))?;
                tx.execute(
                    "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
                    params![v, name, now_ms()],
                )
                .map_err(|e| classify(&path, e))?;
            }
        }
        tx.commit().map_err(|e| classify(&path, e))
    }

    /// Schema version in the file.
    pub fn schema_version(&self) -> Result<i64, DbError> {
        self.conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).map_err(|e| self.e(e))
    }

    /// Starts a run row and takes its lock file, in one write transaction: no other start can see the run
    /// `running` before its lock is held.
    pub fn begin_run(&mut self, version: &str, config_hash: &str, mode: &str, inputs: &str) -> Result<i64, DbError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        tx.execute(
            "INSERT INTO runs (version, config_hash, mode, inputs, started_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![version, config_hash, mode, inputs, now_ms()],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        let lock = crate::persist::recover::lock_run(&path, id)?;
        tx.commit().map_err(err)?;
        self.run_lock = Some(lock);
        self.run_id = id;
        Ok(id)
    }

    /// Ends the run row, then releases and removes its lock file.
    ///
    /// (A replay that ran a symbol on the top-of-book model then marks the ended run with [`mark_run_mode`].)
    pub fn end_run(&mut self, status: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "UPDATE runs SET ended_at_ms = ?1, status = ?2 WHERE id = ?3",
                params![now_ms(), status, self.run_id],
            )
            .map_err(|e| self.e(e))?;
        if let Some((p, f)) = self.run_lock.take() {
            drop(f); // Closing the connection rolls its transaction back and releases the lock.
            if let Err(e) = std::fs::remove_file(&p) {
                log::warn!("database {}: run lock {} not removed: {e}", self.path.display(), p.display());
            }
        }
        Ok(())
    }

    /// The positions a killed run left open that this run may adopt, one per symbol of `symbols` at most
    /// ([`crate::persist::adopt`]).
    pub fn adoption_candidates(&self, symbols: &[SymbolName]) -> Result<Vec<crate::persist::Candidate>, DbError> {
        let mut out = Vec::new();
        for s in symbols {
            if let Some(c) = crate::persist::adopt::candidate(&self.conn, *s).map_err(|e| self.e(e))? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Moves candidate `c` into this run as its position `seq` ([`crate::persist::adopt`]).
    pub fn adopt(&mut self, c: &crate::persist::Candidate, seq: u64) -> Result<(), DbError> {
        let run = self.run_id;
        crate::persist::adopt::transfer(&mut self.conn, c, run, seq).map_err(|e| classify(&self.path, e))?;
        self.pos_ids.insert(seq, c.row_id);
        Ok(())
    }

    /// Names the A/B variants (index k + 1 in records is `names[k]`).
    pub fn set_variants(&mut self, names: &[String]) {
        self.variants = std::iter::once("base".to_string()).chain(names.iter().cloned()).collect();
    }

    /// The newest `lookback` closed-trade PnLs per trader, symbol and UTC hour, oldest first:
    /// (symbol, trader index as named by [`Db::set_variants`], hour, pnl %). Traders no longer configured are skipped.
    pub fn load_hour_expectancy(&self, lookback: usize) -> Result<Vec<(SymbolName, u8, u8, f64)>, DbError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT symbol, hour, pnl_pct, variant FROM (
                   SELECT symbol, hour, pnl_pct, variant, id,
                          ROW_NUMBER() OVER (PARTITION BY variant, symbol, hour ORDER BY id DESC) AS rn
                   FROM hour_expectancy)
                 WHERE rn <= ?1 ORDER BY variant, symbol, hour, id",
            )
            .map_err(|e| self.e(e))?;
        let rows = st
            .query_map(params![lookback as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?, r.get::<_, String>(3)?))
            })
            .map_err(|e| self.e(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (s, h, p, v) = row.map_err(|e| self.e(e))?;
            let Some(vi) = self.variants.iter().position(|x| *x == v) else { continue };
            if let Some(n) = SymbolName::new(s.as_bytes()) {
                out.push((n, vi as u8, h.clamp(0, 23) as u8, p));
            }
        }
        Ok(out)
    }

    /// Writes a batch of records in one transaction (all or nothing).
    pub fn write_batch(&mut self, names: &Names, batch: &[Record]) -> Result<(), DbError> {
        let r = self.write_batch_tx(names, batch);
        if r.is_err() {
            // The transaction rolled back, so ids it put in the cache may be given to later positions: forget them
            // (lookups fall back to the positions table, which is always right).
            self.pos_ids.clear();
        }
        r
    }

    fn write_batch_tx(&mut self, names: &Names, batch: &[Record]) -> Result<(), DbError> {
        let path = self.path.clone();
        let run = self.run_id;
        let err = |e| classify(&path, e);
        // The parent every row names (fills, positions, tuning logs, hour expectancy): the run this Db began. With
        // the connection's foreign keys off, a batch before `begin_run` is refused here, as the key refused it.
        if run <= 0 && batch.iter().any(is_db_record) {
            return Err(DbError::Row(path.clone(), "no run begun on this database".into()));
        }
        self.fills.clear();
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut b = Batch { tx: &tx, run, names, variants: &self.variants, fills: &mut self.fills };
            for r in batch {
                write_one(&mut b, &self.fill_sql, &mut self.pos_ids, r).map_err(err)?;
            }
            flush_fills(&mut b, &self.fill_sql).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Writes a control-thread record (its own small transaction).
    pub fn write_control(&mut self, r: &ControlRecord) -> Result<(), DbError> {
        let path = self.path.clone();
        let run = self.run_id;
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        match r {
            ControlRecord::Selection { ts_ms, reason, symbols } => {
                for (rank, (s, q)) in symbols.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO symbol_selections (run_id, ts_ms, reason, rank, symbol, quote_volume)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![run, ts_ms, reason, rank as i64 + 1, s.as_str(), q.is_finite().then_some(*q)],
                    )
                    .map_err(err)?;
                }
            }
            ControlRecord::Health { ts_ms, rtt_ms, offset_ms } => {
                tx.execute(
                    "INSERT INTO link_health (run_id, ts_ms, rtt_ms, clock_offset_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![run, ts_ms, rtt_ms, offset_ms],
                )
                .map_err(err)?;
                tx.execute(
                    "UPDATE runs SET rtt_ms = COALESCE(rtt_ms, ?1), clock_offset_ms = COALESCE(clock_offset_ms, ?2)
                     WHERE id = ?3",
                    params![rtt_ms, offset_ms, run],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// The connection (tests and reports).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

fn pos_id(
    tx: &rusqlite::Transaction<'_>,
    run: i64,
    ids: &std::collections::HashMap<u64, i64>,
    seq: u64,
) -> rusqlite::Result<i64> {
    if let Some(&id) = ids.get(&seq) {
        return Ok(id);
    }
    tx.prepare_cached("SELECT id FROM positions WHERE run_id = ?1 AND seq = ?2")?
        .query_row(params![run, seq as i64], |r| r.get(0))
}

/// Rows per fills INSERT statement: full statements of 64 rows, the rest in powers of two (7 cached statements).
pub(crate) const FILL_CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// The most fills held before their insert runs (the largest statement).
const FILL_ROWS_MAX: usize = FILL_CHUNKS[0];

/// Position ids cached at most (open positions; a fill after its position's close could re-add one).
const POS_CACHE_MAX: usize = 4096;

/// Columns of a fills row.
const FILL_COLUMNS: usize = 14;

/// Prepared statements kept per connection: the 7 fills inserts, 6 other row statements, the control ones.
const STATEMENT_CACHE: usize = 32;

/// The fills insert of `rows` rows (the most frequent row; `rows` × 14 parameters, below SQLite's 32766).
fn fill_sql(rows: usize) -> String {
    const HEAD: &str = "INSERT INTO fills (run_id, position_id, ts_ms, kind, side, quantity, price, fee, pnl, \
                        liquidity, trigger_price, decision_ts_ms, latency_ms, funding_rate) VALUES ";
    const ROW: &str = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let mut s = String::with_capacity(HEAD.len() + rows * (ROW.len() + 1));
    s.push_str(HEAD);
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        s.push_str(ROW);
    }
    s
}

/// A fill's column values, as stored (resolved when the record is read, inserted with up to 63 others).
#[derive(Debug, Clone, Copy)]
struct FillRow {
    position_id: i64,
    ts_ms: i64,
    kind: &'static str,
    side: &'static str,
    quantity: f64,
    price: f64,
    fee: f64,
    pnl: f64,
    liquidity: Option<&'static str>,
    trigger_price: Option<f64>,
    decision_ts_ms: i64,
    latency_ms: f64,
    funding_rate: Option<f64>,
}

impl FillRow {
    /// Binds the row's 14 values from parameter `first` (1-based) on.
    fn bind(&self, st: &mut rusqlite::Statement<'_>, run: i64, first: usize) -> rusqlite::Result<()> {
        st.raw_bind_parameter(first, run)?;
        st.raw_bind_parameter(first + 1, self.position_id)?;
        st.raw_bind_parameter(first + 2, self.ts_ms)?;
        st.raw_bind_parameter(first + 3, self.kind)?;
        st.raw_bind_parameter(first + 4, self.side)?;
        st.raw_bind_parameter(first + 5, self.quantity)?;
        st.raw_bind_parameter(first + 6, self.price)?;
        st.raw_bind_parameter(first + 7, self.fee)?;
        st.raw_bind_parameter(first + 8, self.pnl)?;
        st.raw_bind_parameter(first + 9, self.liquidity)?;
        st.raw_bind_parameter(first + 10, self.trigger_price)?;
        st.raw_bind_parameter(first + 11, self.decision_ts_ms)?;
        st.raw_bind_parameter(first + 12, self.latency_ms)?;
        st.raw_bind_parameter(first + 13, self.funding_rate)
    }
}

/// Inserts the waiting fills in order: 64 rows per statement, the rest with one statement per set bit of the
/// remainder (32, 16, ..., 1), every statement cached.
fn flush_fills(b: &mut Batch<'_, '_>, sql: &[String]) -> rusqlite::Result<()> {
    let mut done = 0;
    for (k, &rows) in FILL_CHUNKS.iter().enumerate() {
        while b.fills.len() - done >= rows {
            let mut st = b.tx.prepare_cached(&sql[k])?;
            for (i, f) in b.fills[done..done + rows].iter().enumerate() {
                f.bind(&mut st, b.run, 1 + i * FILL_COLUMNS)?;
            }
            st.raw_execute()?;
            done += rows;
        }
    }
    b.fills.clear();
    Ok(())
}

/// Exchange ns as the schema's ms (floored, as every time column).
fn ms(ns: i64) -> i64 {
    ns / 1_000_000
}

/// A latency in ns as the schema's REAL ms.
fn latency_ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

/// What every row of a batch needs: the transaction, the run, the symbol names, the trader names and the fills
/// waiting for their insert.
struct Batch<'t, 'n> {
    tx: &'t rusqlite::Transaction<'t>,
    run: i64,
    names: &'n Names,
    variants: &'n [String],
    fills: &'n mut Vec<FillRow>,
}

impl Batch<'_, '_> {
    fn variant(&self, v: u8) -> &str {
        self.variants.get(v as usize).map_or("?", |s| s.as_str())
    }
}

fn write_one(
    b: &mut Batch<'_, '_>,
    fill_sql: &[String],
    ids: &mut std::collections::HashMap<u64, i64>,
    r: &Record,
) -> rusqlite::Result<()> {
    match *r {
        Record::Opened { symbol, variant, ref pos, features: ref f, ref gate, .. } => {
            let id = write_opened(b, symbol, variant, pos)?;
            ids.insert(pos.seq, id);
            write_entry_features(b, id, f, gate)
        }
        Record::Fill { .. } => {
            if b.fills.len() == FILL_ROWS_MAX {
                flush_fills(b, fill_sql)?;
            }
            push_fill(b, ids, r)
        }
        Record::Closed { symbol, ref pos, .. } => {
            ids.remove(&pos.seq);
            write_closed(b, symbol, pos)
        }
        Record::HourPnl { symbol, variant, hour, pnl_pct } => {
            let (name, _, _) = b.names.get(symbol);
            b.tx.prepare_cached(
                "INSERT INTO hour_expectancy (run_id, symbol, hour, pnl_pct, variant) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![b.run, name.as_str(), hour as i64, pnl_pct, b.variant(variant)])
            .map(|_| ())
        }
        Record::Tuning { symbol, ref log } => write_tuning(b, symbol, log),
        Record::Exec { ref report, decision_ms } => write_exec(b, report, decision_ms),
        Record::Symbol { .. }
        | Record::Bar { .. }
        | Record::Signal { .. }
        | Record::SnapshotRequest { .. }
        | Record::StopMoved { .. }
        | Record::DailyLimitHit { .. }
        | Record::EntriesHalted { .. } => Ok(()),
    }
}

/// Resolves a fill's values (prices × tick value, quantities × step value, times in ms, latency in ms) and its
/// position, and queues it for the batch's multi-row insert. The position must exist, inserted earlier in this
/// batch or committed before (the cache holds only those, [`Db::write_batch`] clears it on a rollback, a miss asks
/// the positions table): a fill of an unknown position is refused here, the check the foreign key made.
fn push_fill(b: &mut Batch<'_, '_>, ids: &mut std::collections::HashMap<u64, i64>, r: &Record) -> rusqlite::Result<()> {
    let Record::Fill {
        symbol,
        seq,
        ts_ns,
        decision_ts_ns,
        kind,
        liquidity,
        buy,
        qty,
        px,
        trigger_px,
        latency_ns,
        fee,
        pnl,
        ..
    } = *r
    else {
        return Ok(());
    };
    let (_, tv, sv) = b.names.get(symbol);
    let position_id = pos_id(b.tx, b.run, ids, seq)?;
    // Found in the table (committed by an earlier batch or run start): cached like an insert, so its next fills do
    // not ask again (the cache holds open positions only: a close removes it, a rollback clears it).
    if ids.len() >= POS_CACHE_MAX {
        ids.clear(); // Only a cache: bounded, a miss asks the table.
    }
    ids.insert(seq, position_id);
    let funding_rate = match kind {
        FillKind::Funding { rate } => Some(rate),
        FillKind::Entry | FillKind::Exit(_) => None,
    };
    b.fills.push(FillRow {
        position_id,
        ts_ms: ms(ts_ns),
        kind: kind.name(),
        side: if buy { "buy" } else { "sell" },
        quantity: qty as f64 * sv,
        price: px * tv,
        fee,
        pnl,
        liquidity: liquidity.name(),
        trigger_price: trigger_px.map(|t| t * tv),
        decision_ts_ms: ms(decision_ts_ns),
        latency_ms: latency_ms(latency_ns),
        funding_rate,
    });
    Ok(())
}

/// Inserts an order report of the real account (`order_reports`): prices × tick value, quantities × step value,
/// commission and realised PnL from 1e-8 units; the fill columns only for a fill, the error code only for a reject.
fn write_exec(b: &Batch<'_, '_>, x: &ExecReport, decision_ms: i64) -> rusqlite::Result<()> {
    let (name, tv, sv) = b.names.get(x.symbol);
    let client = x.client.to_bytes();
    let client = std::str::from_utf8(&client).unwrap_or("?");
    let fill = x.kind.is_fill();
    let e8 = |v: i64| v as f64 / 1e8;
    b.tx.prepare_cached(
        "INSERT INTO order_reports (run_id, symbol, client_order_id, position, leg, attempt, kind, side,
           exchange_order_id, ts_ms, decision_ts_ms, price, quantity, cum_quantity, commission, realized_pnl,
           liquidity, error_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        b.run,
        name.as_str(),
        client,
        x.client.position_id as i64,
        x.client.leg.name(),
        x.client.attempt as i64,
        x.kind.name(),
        if x.side == OrderSide::Buy { "buy" } else { "sell" },
        x.exchange_order_id,
        x.exchange_ms,
        decision_ms,
        fill.then_some(x.last_price_ticks as f64 * tv),
        fill.then_some(x.last_qty_steps as f64 * sv),
        x.cum_qty_steps as f64 * sv,
        fill.then(|| e8(x.commission_e8)),
        fill.then(|| e8(x.realized_pnl_e8)),
        fill.then_some(if x.maker { "maker" } else { "taker" }),
        (x.kind == ExecKind::Rejected).then_some(x.error_code as i64),
    ])
    .map(|_| ())
}

/// Inserts an opened position; returns its row id.
fn write_opened(b: &Batch<'_, '_>, symbol: u16, variant: u8, pos: &Position) -> rusqlite::Result<i64> {
    let (name, tv, sv) = b.names.get(symbol);
    b.tx.prepare_cached(
        "INSERT INTO positions (run_id, seq, symbol, side, status, entry_ts_ms, entry_price, quantity, fees,
           regime, confidence, expected_slippage_bps, realized_slippage_bps, stop_price, tp1_price, tp2_price,
           liquidation_price, variant, funding, bar_close_ts_ms, entry_fill_ts_ms, order_latency_ms)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
           ?21)",
    )?
    .execute(params![
        b.run,
        pos.seq as i64,
        name.as_str(),
        pos.side.name(),
        ms(pos.entry_ts_ns),
        pos.entry_px * tv,
        pos.qty as f64 * sv,
        pos.fees,
        pos.regime.name(),
        pos.confidence,
        pos.expected_slippage_bps,
        pos.realized_slippage_bps,
        pos.stop * tv,
        pos.tp1 * tv,
        pos.tp2 * tv,
        pos.liq * tv,
        b.variant(variant),
        pos.funding,
        ms(pos.bar_ts_ns),
        ms(pos.entry_fill_ts_ns),
        latency_ms(pos.latency_ns),
    ])?;
    Ok(b.tx.last_insert_rowid())
}

/// Inserts the entry features of position row `id`.
fn write_entry_features(b: &Batch<'_, '_>, id: i64, f: &Features, gate: &GatePass) -> rusqlite::Result<()> {
    b.tx.prepare_cached(
        "INSERT INTO entry_features (position_id, imbalance_ratio, cvd_1min_change, volume_burst_ratio,
           bar_range_pct, zone_distance_pct, near_val, near_vah, near_hvn, regime, confidence, spread_bps,
           depth_ratio)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        id,
        f.imbalance_ratio,
        f.cvd_1min_change,
        f.volume_burst_ratio,
        f.bar_range_pct,
        f.zone_distance_pct,
        f.near_val,
        f.near_vah,
        f.near_hvn,
        f.regime.name(),
        f.confidence,
        gate.spread_bps,
        if gate.depth_ratio.is_finite() { gate.depth_ratio } else { 1e9 },
    ])
    .map(|_| ())
}

/// Marks a position closed with its exit.
fn write_closed(b: &Batch<'_, '_>, symbol: u16, pos: &Position) -> rusqlite::Result<()> {
    let (_, tv, _) = b.names.get(symbol);
    b.tx.prepare_cached(
        "UPDATE positions SET status = 'closed', exit_ts_ms = ?1, exit_price = ?2, fees = ?3, pnl = ?4,
           pnl_pct = ?5, exit_reason = ?6, mfe_pct = ?7, mae_pct = ?8, time_to_mfe_secs = ?9,
           time_to_mae_secs = ?10, stop_price = ?11, funding = ?14
         WHERE run_id = ?12 AND seq = ?13",
    )?
    .execute(params![
        ms(pos.exit_ts_ns),
        pos.exit_px * tv,
        pos.fees,
        pos.pnl,
        pos.pnl_pct(),
        pos.exit_reason.map(|r| r.name()),
        pos.mfe_pct,
        pos.mae_pct,
        (pos.mfe_ts_ns - pos.entry_ts_ns) as f64 / 1e9,
        (pos.mae_ts_ns - pos.entry_ts_ns) as f64 / 1e9,
        pos.stop * tv,
        b.run,
        pos.seq as i64,
        pos.funding
    ])
    .and_then(|n| if n == 0 { Err(rusqlite::Error::QueryReturnedNoRows) } else { Ok(()) })
}

/// Inserts a tuning run.
fn write_tuning(b: &Batch<'_, '_>, symbol: u16, log: &TuningLog) -> rusqlite::Result<()> {
    let (name, _, _) = b.names.get(symbol);
    b.tx.prepare_cached(
        "INSERT INTO volume_burst_tuning_logs (run_id, symbol, ts_ms, tuned_ratio, previous_ratio, trades,
           win_rate_pct, expectancy_pct, window_bars, lookahead_bars, candidates, stop_pct, target_pct,
           fee_pct, changed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        b.run,
        name.as_str(),
        log.ts_ns / 1_000_000,
        log.tuned_ratio,
        log.previous_ratio,
        log.trades,
        log.win_rate_pct,
        log.expectancy_pct,
        log.window_bars,
        log.lookahead_bars,
        log.candidates,
        log.stop_pct,
        log.target_pct,
        log.fee_pct,
        log.changed
    ])
    .map(|_| ())
}

/// True when a record goes to the database.
pub(crate) fn is_db_record(r: &Record) -> bool {
    matches!(
        r,
        Record::Opened { .. }
            | Record::Fill { .. }
            | Record::Closed { .. }
            | Record::HourPnl { .. }
            | Record::Tuning { .. }
            | Record::Exec { .. }
    )
}

/// Sets an ended run's `mode` (a replay that ran a symbol on the top-of-book model: `replay-top_of_book` or
/// `replay-mixed`), so a report can tell such a run from a full-book `replay` and never mix them unknowingly.
pub fn mark_run_mode(path: &Path, run_id: i64, mode: &str) -> Result<(), DbError> {
    let c = rusqlite::Connection::open(path).map_err(|e| classify(path, e))?;
    c.execute("UPDATE runs SET mode = ?1 WHERE id = ?2", params![mode, run_id]).map_err(|e| classify(path, e))?;
    Ok(())
}

/// The distinct `mode`s of the runs that hold positions (for the report's warning on mixed market models).
pub fn position_run_modes(path: &Path) -> Result<Vec<String>, DbError> {
    let c = rusqlite::Connection::open(path).map_err(|e| classify(path, e))?;
    let sql = "SELECT DISTINCT r.mode FROM runs r JOIN positions p ON p.run_id = r.id ORDER BY r.mode";
    let mut st = c.prepare(sql).map_err(|e| classify(path, e))?;
    let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(|e| classify(path, e))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(|e| classify(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::recover::lock_path;
    use crate::types::record::{FillKind, Liquidity, Regime, Side};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rusto-dbunit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        for ext in ["", "-wal", "-shm", "-run1.lock", "-run2.lock"] {
            let _ = std::fs::remove_file(format!("{}{ext}", p.display())); // Fresh each run; absent is fine.
        }
        p
    }

    fn names() -> Names {
        let mut n = Names::default();
        n.set(0, SymbolName::new(b"BTCUSDT").unwrap(), Scale::decimals(1), Scale::decimals(3));
        n
    }

    fn features() -> Features {
        Features {
            imbalance_ratio: 1.0,
            cvd_1min_change: 0.0,
            volume_burst_ratio: 1.0,
            bar_range_pct: 0.1,
            zone_distance_pct: 0.0,
            near_val: false,
            near_vah: false,
            near_hvn: false,
            regime: Regime::RangeLow,
            confidence: 0.5,
        }
    }

    fn position(seq: u64) -> Position {
        Position {
            seq,
            side: Side::Long,
            entry_ts_ns: 1_000_000_000,
            bar_ts_ns: 1_000_000_000,
            entry_fill_ts_ns: 1_000_000_000,
            latency_ns: 0,
            entry_px: 281_437.0,
            qty: 988,
            remaining: 988,
            stop: 280_000.0,
            tp1: 282_000.0,
            tp2: 283_000.0,
            liq: 250_000.0,
            risk: 1_437.0,
            tp1_done: false,
            be_moved: false,
            fees: 11.0,
            funding: 0.0,
            pnl: -11.0,
            mfe_pct: 0.0,
            mae_pct: 0.0,
            mfe_ts_ns: 0,
            mae_ts_ns: 0,
            expected_slippage_bps: 0.0,
            realized_slippage_bps: 0.0,
            regime: Regime::RangeLow,
            confidence: 0.5,
            tick_value: 0.1,
            step_value: 0.001,
            exit_reason: None,
            exit_ts_ns: 0,
            exit_px: 0.0,
        }
    }

    fn opened(seq: u64) -> Record {
        let name = SymbolName::new(b"BTCUSDT").unwrap();
        Record::Opened {
            symbol: 0,
            variant: 0,
            name,
            pos: position(seq),
            features: features(),
            gate: GatePass::default(),
        }
    }

    fn entry_fill(seq: u64) -> Record {
        Record::Fill {
            symbol: 0,
            variant: 0,
            seq,
            ts_ns: 1_000_000_000,
            decision_ts_ns: 1_000_000_000,
            kind: FillKind::Entry,
            liquidity: Liquidity::Taker,
            trigger_px: None,
            latency_ns: 0,
            buy: true,
            qty: 988,
            px: 281_437.0,
            fee: 11.0,
            pnl: -11.0,
        }
    }

    fn one(db: &Db, sql: &str) -> i64 {
        db.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A batch that rolls back must forget the position ids it cached: SQLite gives the rolled-back row id to the
    /// next position, and a later fill of the rolled-back sequence number would be booked on that other position.
    #[test]
    fn an_order_report_is_written_in_quote_and_base_units_with_its_decision_time() {
        use crate::types::order::{ClientOrderId, Leg};
        let mut db = Db::open(&tmp("exec.db")).unwrap();
        let run = db.begin_run("test", "h", "testnet", "").unwrap();
        let client = ClientOrderId { run_id: run as u32, position_id: 3, leg: Leg::Tp1, attempt: 1 };
        let fill = ExecReport {
            exchange_order_id: 77,
            last_price_ticks: 600_005,
            last_qty_steps: 4,
            cum_qty_steps: 9,
            commission_e8: 1_200_000,
            realized_pnl_e8: -50_000_000,
            exchange_ms: 1_700_000_000_123,
            error_code: 0,
            client,
            symbol: 0,
            kind: ExecKind::PartialFill,
            side: OrderSide::Sell,
            maker: true,
            client_known: true,
        };
        let reject = ExecReport { kind: ExecKind::Rejected, error_code: -2022, ..fill };
        let batch = [
            Record::Exec { report: fill, decision_ms: 1_700_000_000_000 },
            Record::Exec { report: reject, decision_ms: 1_700_000_000_000 },
        ];
        db.write_batch(&names(), &batch).unwrap();
        let row = db
            .conn()
            .query_row(
                "SELECT client_order_id, position, leg, attempt, kind, side, price, quantity, cum_quantity, commission,
                        realized_pnl, liquidity, error_code, decision_ts_ms, exchange_order_id
                 FROM order_reports ORDER BY id LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        (r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?),
                        (r.get::<_, String>(4)?, r.get::<_, String>(5)?),
                        (r.get::<_, f64>(6)?, r.get::<_, f64>(7)?, r.get::<_, f64>(8)?),
                        (r.get::<_, f64>(9)?, r.get::<_, f64>(10)?, r.get::<_, String>(11)?),
                        (r.get::<_, Option<i64>>(12)?, r.get::<_, i64>(13)?, r.get::<_, i64>(14)?),
                    ))
                },
            )
            .unwrap();
        assert_eq!(row.0, std::str::from_utf8(&client.to_bytes()).unwrap());
        assert_eq!(row.1, (3, "tp1".to_owned(), 1));
        assert_eq!(row.2, ("partial_fill".to_owned(), "sell".to_owned()));
        let (px, qty, cum) = row.3;
        assert!((px - 60_000.5).abs() < 1e-9 && (qty - 0.004).abs() < 1e-12 && (cum - 0.009).abs() < 1e-12);
        assert_eq!(row.4, (0.012, -0.5, "maker".to_owned()));
        assert_eq!(row.5, (None, 1_700_000_000_000, 77));
        // The reject: its code, no fill columns.
        let r: (Option<f64>, Option<String>, i64) = db
            .conn()
            .query_row("SELECT price, liquidity, error_code FROM order_reports WHERE kind = 'rejected'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(r, (None, None, -2022));
    }

    #[test]
    fn a_rolled_back_batch_forgets_the_position_ids_it_cached() {
        let mut db = Db::open(&tmp("rollback.db")).unwrap();
        db.begin_run("test", "h", "replay", "").unwrap();
        let n = names();
        let mut closed = position(99);
        closed.exit_reason = Some(crate::types::record::ExitReason::StopLoss);
        // Position 1 is inserted (its id cached), then the batch fails on a close of a position it does not hold.
        let bad = [
            opened(1),
            Record::Closed { symbol: 0, variant: 0, name: SymbolName::new(b"BTCUSDT").unwrap(), pos: closed },
        ];
        assert!(matches!(db.write_batch(&n, &bad), Err(DbError::Row(..))));
        assert_eq!(one(&db, "SELECT count(*) FROM positions"), 0, "rolled back");
        // Position 2 gets the row id position 1 had in the rolled-back transaction.
        db.write_batch(&n, &[opened(2)]).unwrap();
        assert_eq!(one(&db, "SELECT id FROM positions WHERE seq = 2"), 1);
        // A fill of position 1 (never committed) is refused, not booked on position 2.
        let e = db.write_batch(&n, &[entry_fill(1)]).unwrap_err();
        assert!(matches!(e, DbError::Row(..)), "{e}");
        assert_eq!(one(&db, "SELECT count(*) FROM fills"), 0);
    }

    /// Fill `i` of position `seq`: its time, quantity and price tell the rows apart.
    fn nth_fill(seq: u64, i: i64) -> Record {
        let Record::Fill { symbol, variant, kind, liquidity, buy, fee, pnl, .. } = entry_fill(seq) else {
            unreachable!()
        };
        Record::Fill {
            symbol,
            variant,
            seq,
            ts_ns: (1_000 + i) * 1_000_000,
            decision_ts_ns: (1_000 + i) * 1_000_000 - 1,
            kind,
            liquidity,
            trigger_px: (i % 3 == 0).then_some(281_000.0 + i as f64),
            latency_ns: i * 1_000,
            buy,
            qty: 1 + i,
            px: 281_437.0 + i as f64,
            fee,
            pnl,
        }
    }

    /// Batches of every size around the statement sizes (64 rows, then 32, 16, ..., 1) are written whole, in
    /// order, with each row's own values and position: the same rows the one-row insert wrote.
    #[test]
    fn multi_row_fill_inserts_keep_every_row_its_values_and_its_order() {
        let n = names();
        for rows in [1i64, 2, 31, 63, 64, 65, 127, 128, 129, 200] {
            let mut db = Db::open(&tmp(&format!("multi-{rows}.db"))).unwrap();
            db.begin_run("test", "h", "replay", "").unwrap();
            db.write_batch(&n, &[opened(1)]).unwrap();
            // Position 2 opens in the middle of the batch; fills alternate between the two afterwards.
            let mut batch = Vec::new();
            for i in 0..rows {
                if i == rows / 2 {
                    batch.push(opened(2));
                }
                batch.push(nth_fill(if i > rows / 2 && i % 2 == 1 { 2 } else { 1 }, i));
            }
            db.write_batch(&n, &batch).unwrap();
            let mut st = db
                .conn()
                .prepare(
                    "SELECT p.seq, f.ts_ms, f.decision_ts_ms, f.quantity, f.price, f.trigger_price, f.latency_ms
                     FROM fills f JOIN positions p ON p.id = f.position_id ORDER BY f.id",
                )
                .unwrap();
            type Row = (i64, i64, i64, f64, f64, Option<f64>, f64);
            let got: Vec<Row> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(got.len(), rows as usize, "{rows} rows");
            for (i, g) in (0..rows).zip(&got) {
                let seq = if i > rows / 2 && i % 2 == 1 { 2 } else { 1 };
                assert_eq!((g.0, g.1, g.2), (seq, 1_000 + i, 1_000 + i - 1), "row {i} of {rows}");
                assert!((g.3 - (1 + i) as f64 * 0.001).abs() < 1e-12, "row {i} of {rows}: {g:?}");
                assert!((g.4 - (281_437.0 + i as f64) * 0.1).abs() < 1e-9, "row {i} of {rows}: {g:?}");
                assert_eq!(g.5.is_some(), i % 3 == 0, "row {i} of {rows}");
                assert!((g.6 - i as f64 / 1_000.0).abs() < 1e-12, "row {i} of {rows}: {g:?}");
            }
        }
    }

    /// The high-water mark of lookaside slots in use on a connection.
    fn lookaside_high(c: &Connection) -> i32 {
        let (mut cur, mut high) = (0, 0);
        // SAFETY: the connection's own handle, on this thread; SQLite writes the two ints it is given.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                c.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
                &mut cur,
                &mut high,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        high
    }

    /// The writer's connection has its enlarged lookaside: the same 64-row fills insert uses more lookaside slots
    /// on it than a connection with SQLite's default can hold.
    #[test]
    fn the_writer_connection_has_its_lookaside() {
        let p = tmp("lookaside.db");
        let mut db = Db::open(&p).unwrap();
        db.begin_run("test", "h", "replay", "").unwrap();
        let mut batch = vec![opened(1)];
        batch.extend((0..64).map(|i| nth_fill(1, i)));
        db.write_batch(&names(), &batch).unwrap();
        let plain = Connection::open(&p).unwrap();
        plain.execute_batch("BEGIN").unwrap();
        let mut st = plain.prepare(&fill_sql(64)).unwrap();
        let row = super::FillRow {
            position_id: 1,
            ts_ms: 1,
            kind: "entry",
            side: "buy",
            quantity: 1.0,
            price: 1.0,
            fee: 0.0,
            pnl: 0.0,
            liquidity: Some("taker"),
            trigger_price: None,
            decision_ts_ms: 1,
            latency_ms: 0.0,
            funding_rate: None,
        };
        for i in 0..64 {
            row.bind(&mut st, 1, 1 + i * FILL_COLUMNS).unwrap();
        }
        st.raw_execute().unwrap();
        let (ours, default) = (lookaside_high(db.conn()), lookaside_high(&plain));
        assert!(ours > default, "lookaside high-water mark {ours}, default connection {default}");
    }

    /// The writer's connection runs without SQLite's foreign key checks, so the writer checks the parents itself:
    /// a fill of a position that is nowhere (not in its batch, not committed) and a batch before `begin_run`
    /// are refused with nothing written, and what it does write passes `foreign_key_check`.
    #[test]
    fn the_writer_checks_the_parents_the_foreign_keys_checked() {
        let n = names();
        let p = tmp("parents.db");
        let mut db = Db::open(&p).unwrap();
        assert_eq!(one(&db, "PRAGMA foreign_keys"), 0, "off on the writer's connection");
        assert_eq!(one(&db, "PRAGMA wal_autocheckpoint"), WAL_AUTOCHECKPOINT_PAGES);
        let e = db.write_batch(&n, &[opened(1)]).unwrap_err();
        assert!(matches!(e, DbError::Row(..)), "no run yet: {e}");
        db.begin_run("test", "h", "replay", "").unwrap();
        // 70 fills (a 64-row statement and more) whose last names position 7, never opened.
        let mut batch = vec![opened(1)];
        batch.extend((0..69).map(|i| nth_fill(1, i)));
        batch.push(nth_fill(7, 69));
        let e = db.write_batch(&n, &batch).unwrap_err();
        assert!(matches!(e, DbError::Row(..)), "{e}");
        assert_eq!(one(&db, "SELECT count(*) FROM fills") + one(&db, "SELECT count(*) FROM positions"), 0);
        batch.pop();
        db.write_batch(&n, &batch).unwrap();
        db.write_batch(
            &n,
            &[
                opened(2),
                nth_fill(2, 70),
                nth_fill(1, 71),
                Record::HourPnl { symbol: 0, variant: 0, hour: 1, pnl_pct: 0.5 },
            ],
        )
        .unwrap();
        assert_eq!(one(&db, "SELECT count(*) FROM fills"), 71);
        let c = Connection::open(&p).unwrap();
        let fk: i64 = c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(fk, 0);
    }

    /// A run whose process died (its Db dropped without end_run: the lock is released, as by the kernel on kill -9)
    /// is marked crashed at the next open and its open position closed as Crashed at its last fill price; a run
    /// whose lock is held (a concurrent live run) is left alone.
    #[test]
    fn a_dead_run_is_marked_crashed_and_a_live_one_is_left_alone() {
        let p = tmp("crash.db");
        let n = names();
        let mut dead = Db::open(&p).unwrap();
        dead.begin_run("test", "h", "live", "").unwrap();
        dead.write_batch(&n, &[opened(1), entry_fill(1)]).unwrap();
        // TP1: half the position sold at 28200.0, one second later (exit fee at the run's own rate: 11/27805.97).
        let tp1 = Record::Fill {
            symbol: 0,
            variant: 0,
            seq: 1,
            ts_ns: 2_000_000_000,
            decision_ts_ns: 2_000_000_000,
            kind: FillKind::Exit(crate::types::record::ExitReason::Tp1),
            liquidity: Liquidity::Maker,
            trigger_px: Some(282_000.0),
            latency_ns: 0,
            buy: false,
            qty: 494,
            px: 282_000.0,
            fee: 5.5,
            pnl: 28.0,
        };
        dead.write_batch(&n, &[tp1]).unwrap();
        drop(dead); // killed
        assert!(lock_path(&p, 1).exists(), "a killed run leaves its lock file");
        let mut live = Db::open(&p).unwrap();
        let r = live.recovered().to_vec();
        assert_eq!(r, vec![crate::persist::recover::Recovered { run_id: 1, last_row_ms: 2_000, positions_closed: 1 }]);
        assert!(!lock_path(&p, 1).exists(), "the stale lock file is removed");
        live.begin_run("test", "h", "live", "").unwrap();
        let c = live.conn();
        let (status, last): (String, i64) = c
            .query_row("SELECT status, last_row_ms FROM runs WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((status.as_str(), last), ("crashed", 2_000));
        type Row = (String, String, i64, f64, f64, f64, f64);
        let pos: Row = c
            .query_row(
                "SELECT status, exit_reason, exit_ts_ms, exit_price, fees, pnl, pnl_pct FROM positions WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .unwrap();
        // The rest (0.494) at the last fill price (TP1's 28200.0): gross 0.494 × (28200.0 − 28143.7) = 27.8122,
        // fee 28200.0 × 0.494 × 11 / (28143.7 × 0.988).
        let rate = 11.0 / (28_143.7 * 0.988);
        let fee = 28_200.0 * 0.494 * rate;
        let pnl = -11.0 + 28.0 + 0.494 * (28_200.0 - 28_143.7) - fee;
        assert_eq!((pos.0.as_str(), pos.1.as_str(), pos.2), ("closed", "Crashed", 2_000));
        assert!((pos.3 - 28_200.0).abs() < 1e-9, "{pos:?}");
        assert!((pos.4 - (11.0 + 5.5 + fee)).abs() < 1e-9, "{pos:?}");
        assert!((pos.5 - pnl).abs() < 1e-9, "{pos:?}");
        assert!((pos.6 - pnl / (28_143.7 * 0.988) * 100.0).abs() < 1e-9, "{pos:?}");
        let fills: i64 = c
            .query_row(
                "SELECT count(*) FROM fills WHERE kind = 'Crashed' AND side = 'sell' AND quantity = 0.494",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(fills, 1);
        // Run 2 is alive (this process holds its lock): another open leaves it running.
        let other = Db::open(&p).unwrap();
        assert!(other.recovered().is_empty());
        assert_eq!(one(&other, "SELECT count(*) FROM runs WHERE id = 2 AND status = 'running'"), 1);
        drop(other);
        live.end_run("finished").unwrap();
        assert!(!lock_path(&p, 2).exists(), "a run that ends removes its lock file");
    }

    /// A long's funding payment: 0.988 BTC at a mark of 28150.0 and a rate of +0.01 % pays 2.78122 USDT.
    fn funding_fill(seq: u64, ts_ns: i64) -> Record {
        Record::Fill {
            symbol: 0,
            variant: 0,
            seq,
            ts_ns,
            decision_ts_ns: ts_ns,
            kind: FillKind::Funding { rate: 0.0001 },
            liquidity: Liquidity::None,
            trigger_px: None,
            latency_ns: 0,
            buy: false,
            qty: 988,
            px: 281_500.0,
            fee: 0.0,
            pnl: -2.781_22,
        }
    }

    /// Position 1's entry decided at 999.9 ms, filled 0.25 ms later at 1000.15 ms against a touch of 28143.6.
    fn late_entry_fill() -> Record {
        let Record::Fill { symbol, variant, seq, kind, buy, qty, px, fee, pnl, .. } = entry_fill(1) else {
            unreachable!()
        };
        Record::Fill {
            symbol,
            variant,
            seq,
            ts_ns: 1_000_150_000,
            decision_ts_ns: 999_900_000,
            kind,
            liquidity: Liquidity::Taker,
            trigger_px: Some(281_436.0),
            latency_ns: 250_000,
            buy,
            qty,
            px,
            fee,
            pnl,
        }
    }

    /// Position 1's TP1 resting at 28200.0, filled there (maker) at 9 s.
    fn maker_tp1() -> Record {
        Record::Fill {
            symbol: 0,
            variant: 0,
            seq: 1,
            ts_ns: 9_000_000_000,
            decision_ts_ns: 9_000_000_000,
            kind: FillKind::Exit(crate::types::record::ExitReason::Tp1),
            liquidity: Liquidity::Maker,
            trigger_px: Some(282_000.0),
            latency_ns: 0,
            buy: false,
            qty: 494,
            px: 282_000.0,
            fee: 2.786_16,
            pnl: 25.02,
        }
    }

    type FillRow = (String, Option<String>, Option<f64>, i64, i64, Option<f64>, Option<f64>, f64, f64, f64);

    fn fill_row(db: &Db, kind: &str) -> FillRow {
        db.conn()
            .query_row(
                "SELECT side, liquidity, trigger_price, decision_ts_ms, ts_ms, latency_ms, funding_rate, quantity,
                        price, pnl
                 FROM fills WHERE kind = ?1",
                [kind],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                    ))
                },
            )
            .unwrap()
    }

    /// Schema 5: an entry after 0.25 ms of order latency, a funding payment and a resting (maker) TP1 are written
    /// with their liquidity, trigger price (quote units), decision time, latency (ms) and funding rate, and read
    /// back as written; the position keeps its bar close, fill time, latency and funding.
    #[test]
    fn funding_and_maker_fills_are_written_and_read_back() {
        let mut db = Db::open(&tmp("exec.db")).unwrap();
        assert_eq!(db.schema_version().unwrap(), 6);
        db.begin_run("test", "h", "replay", "").unwrap();
        let n = names();
        let mut pos = position(1);
        (pos.bar_ts_ns, pos.entry_ts_ns, pos.entry_fill_ts_ns, pos.latency_ns) =
            (998_500_000, 999_900_000, 1_000_150_000, 250_000);
        let name = SymbolName::new(b"BTCUSDT").unwrap();
        let open = Record::Opened { symbol: 0, variant: 0, name, pos, features: features(), gate: GatePass::default() };
        db.write_batch(&n, &[open, late_entry_fill(), funding_fill(1, 8_000_000_000), maker_tp1()]).unwrap();
        let e = fill_row(&db, "entry");
        assert_eq!((e.0.as_str(), e.1.as_deref(), e.3, e.4), ("buy", Some("taker"), 999, 1_000));
        assert!((e.2.unwrap() - 28_143.6).abs() < 1e-9 && (e.5.unwrap() - 0.25).abs() < 1e-12, "{e:?}");
        assert_eq!(e.6, None);
        let f = fill_row(&db, "Funding");
        assert_eq!((f.1.as_deref(), f.2, f.3, f.4, f.6), (None, None, 8_000, 8_000, Some(0.0001)), "{f:?}");
        assert!((f.7 - 0.988).abs() < 1e-12 && (f.8 - 28_150.0).abs() < 1e-9 && f.9 == -2.781_22, "{f:?}");
        assert_eq!(f.5, Some(0.0));
        let t = fill_row(&db, "TakeProfit");
        assert_eq!(
            (t.0.as_str(), t.1.as_deref(), t.3, t.4, t.5, t.6),
            ("sell", Some("maker"), 9_000, 9_000, Some(0.0), None)
        );
        assert!((t.2.unwrap() - 28_200.0).abs() < 1e-9 && t.2 == Some(t.8), "a TP fills at its limit: {t:?}");
        // The close carries the funding.
        let mut closed = pos;
        (closed.funding, closed.exit_ts_ns, closed.exit_reason) =
            (-2.781_22, 9_000_000_000, Some(crate::types::record::ExitReason::Tp2));
        let close = Record::Closed { symbol: 0, variant: 0, name: SymbolName::new(b"BTCUSDT").unwrap(), pos: closed };
        db.write_batch(&n, &[close]).unwrap();
        type PosRow = (f64, i64, i64, i64, f64);
        let p: PosRow = db
            .conn()
            .query_row(
                "SELECT funding, bar_close_ts_ms, entry_ts_ms, entry_fill_ts_ms, order_latency_ms FROM positions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(p, (-2.781_22, 998, 999, 1_000, 0.25));
    }

    /// Recovery with a funding row: the funding row closes nothing (the whole 0.988 is closed as Crashed), its
    /// mark price is not taken for the last traded price (the close is at the entry fill's 28143.7), and the
    /// position's PnL is the sum of its fills, the funding payment included.
    #[test]
    fn a_crashed_position_with_funding_keeps_pnl_equal_to_its_fills() {
        let p = tmp("crash-funding.db");
        let n = names();
        let mut dead = Db::open(&p).unwrap();
        dead.begin_run("test", "h", "live", "").unwrap();
        dead.write_batch(&n, &[opened(1), entry_fill(1), funding_fill(1, 3_000_000_000)]).unwrap();
        drop(dead); // killed
        let live = Db::open(&p).unwrap();
        assert_eq!(live.recovered()[0].positions_closed, 1);
        let c = live.conn();
        type Row = (String, i64, f64, f64, f64, f64, f64);
        let pos: Row = c
            .query_row(
                "SELECT exit_reason, exit_ts_ms, exit_price, fees, pnl, funding, pnl_pct FROM positions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .unwrap();
        // Crashed fill: 0.988 at 28143.7, no gross PnL, fee at the entry's rate = the entry fee, 11.0.
        let (qty, px, fee, pnl, liq): (f64, f64, f64, f64, String) = c
            .query_row("SELECT quantity, price, fee, pnl, liquidity FROM fills WHERE kind = 'Crashed'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert!((qty - 0.988).abs() < 1e-12 && (px - 28_143.7).abs() < 1e-9, "{qty} {px}");
        assert!((fee - 11.0).abs() < 1e-9 && (pnl + 11.0).abs() < 1e-9 && liq == "taker", "{fee} {pnl} {liq}");
        let want = -11.0 - 2.781_22 - 11.0;
        assert_eq!((pos.0.as_str(), pos.1), ("Crashed", 3_000));
        assert!((pos.2 - 28_143.7).abs() < 1e-9, "exit price: exits only, {pos:?}");
        assert!((pos.3 - 22.0).abs() < 1e-9 && (pos.4 - want).abs() < 1e-9 && pos.5 == -2.781_22, "{pos:?}");
        assert!((pos.6 - want / (28_143.7 * 0.988) * 100.0).abs() < 1e-9, "{pos:?}");
        let sum: f64 = c.query_row("SELECT SUM(pnl) FROM fills", [], |r| r.get(0)).unwrap();
        assert!((pos.4 - sum).abs() < 1e-9, "PnL = Σ fills: {} vs {sum}", pos.4);
    }
}

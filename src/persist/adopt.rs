//! Positions a killed run left open on the exchange, for the next start that routes orders (issue 12, adoption).
//!
//! **Candidates.** For each traded symbol, the newest base-account position closed `Crashed` by recovery
//! ([`crate::persist::recover`]) of a run marked `crashed`, with the order reports of its real position (same run,
//! symbol and decision time): what the database knows. Whether it is adopted is decided against the exchange
//! (`app::account`): the position there must be exactly what the reports leave open.
//!
//! **The transfer**, one write transaction ([`transfer`]): the crash close is undone (its `Crashed` fill deleted,
//! the row open again with the fees, funding and PnL of its remaining fills) and the row, its fills and its order
//! reports move to the adopting run under the sequence number the engine gave it. The position then has one row
//! with its whole history, closed by the run that manages it to its exit; the killed run keeps what it closed
//! itself. Nothing is counted twice: the crash close's price and fee never happened.

use rusqlite::{Connection, OptionalExtension, params};

use crate::types::record::{ExitReason, FillKind, Regime, Side};
use crate::types::{AdoptedPaper, ClientOrderId, OrderSide, SymbolName};

/// What the database knows of a position that may be adopted.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The `positions` row.
    pub row_id: i64,
    /// The killed run.
    pub run_id: i64,
    /// The symbol.
    pub symbol: SymbolName,
    /// The paper position as its run left it.
    pub paper: AdoptedPaper,
    /// Its real position's reports.
    pub reports: ReportSummary,
}

/// A real position by its order reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportSummary {
    /// The run part of its client ids.
    pub client_run: u32,
    /// Its position number.
    pub position_id: u32,
    /// The entry's side.
    pub side: OrderSide,
    /// Entry quantity filled, base.
    pub filled: f64,
    /// Entry notional, quote.
    pub notional: f64,
    /// Cumulative fills per exit slot (stop, tp1, tp2, close, breakeven), base.
    pub exit_cum: [f64; 5],
    /// The next free attempt per leg (by `Leg as usize`): one above the highest seen, 0 when none.
    pub attempts: [u8; 7],
}

impl ReportSummary {
    /// What the reports leave open, base.
    pub fn open(&self) -> f64 {
        self.filled - self.exit_cum.iter().sum::<f64>()
    }
}

fn regime_of(name: &str) -> Regime {
    Regime::ALL.into_iter().find(|r| r.name() == name).unwrap_or_default()
}

/// The newest adoptable position on `symbol` (module doc), if any.
pub(crate) fn candidate(conn: &Connection, symbol: SymbolName) -> rusqlite::Result<Option<Candidate>> {
    let row = conn
        .query_row(
            "SELECT p.id, p.run_id, p.side, p.entry_ts_ms, COALESCE(p.bar_close_ts_ms, p.entry_ts_ms),
                    COALESCE(p.entry_fill_ts_ms, p.entry_ts_ms), COALESCE(p.order_latency_ms, 0), p.entry_price,
                    p.quantity, p.stop_price, p.tp1_price, p.tp2_price, p.liquidation_price,
                    p.expected_slippage_bps, p.realized_slippage_bps, p.regime, p.confidence
             FROM positions p JOIN runs r ON r.id = p.run_id
             WHERE p.symbol = ?1 AND p.variant = 'base' AND p.exit_reason = ?2 AND r.status = 'crashed'
             ORDER BY p.id DESC LIMIT 1",
            params![symbol.as_str(), ExitReason::Crashed.name()],
            |r| {
                let paper = AdoptedPaper {
                    side: if r.get::<_, String>(2)? == "long" { Side::Long } else { Side::Short },
                    entry_ts_ms: r.get(3)?,
                    bar_ts_ms: r.get(4)?,
                    entry_fill_ts_ms: r.get(5)?,
                    latency_ms: r.get(6)?,
                    entry_price: r.get(7)?,
                    qty: r.get(8)?,
                    exited_qty: 0.0,
                    initial_stop: r.get(9)?,
                    tp1: r.get(10)?,
                    tp2: r.get(11)?,
                    liq: r.get(12)?,
                    tp1_done: false,
                    fees: 0.0,
                    funding: 0.0,
                    pnl: 0.0,
                    expected_slippage_bps: r.get(13)?,
                    realized_slippage_bps: r.get(14)?,
                    regime: regime_of(&r.get::<_, String>(15)?),
                    confidence: r.get(16)?,
                };
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, paper))
            },
        )
        .optional()?;
    let Some((row_id, run_id, mut paper)) = row else { return Ok(None) };
    fill_sums(conn, row_id, &mut paper)?;
    let Some(reports) = reports(conn, run_id, symbol, paper.entry_ts_ms)? else { return Ok(None) };
    Ok(Some(Candidate { row_id, run_id, symbol, paper, reports }))
}

/// The paper position's fills, its crash close left out: quantity exited, TP1 done, fees, funding, PnL.
fn fill_sums(conn: &Connection, row_id: i64, p: &mut AdoptedPaper) -> rusqlite::Result<()> {
    let (entry, funding, crashed) =
        (FillKind::Entry.name(), FillKind::Funding { rate: 0.0 }.name(), ExitReason::Crashed.name());
    let (exited, tp1, fees, fund, pnl): (f64, i64, f64, f64, f64) = conn.query_row(
        "SELECT COALESCE(SUM(CASE WHEN kind NOT IN (?2, ?3) THEN quantity END), 0),
                COUNT(CASE WHEN kind = ?5 THEN 1 END),
                COALESCE(SUM(fee), 0),
                COALESCE(SUM(CASE WHEN kind = ?3 THEN pnl END), 0),
                COALESCE(SUM(pnl), 0)
         FROM fills WHERE position_id = ?1 AND kind != ?4",
        params![row_id, entry, funding, crashed, ExitReason::Tp1.name()],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    (p.exited_qty, p.tp1_done, p.fees, p.funding, p.pnl) = (exited, tp1 > 0, fees, fund, pnl);
    Ok(())
}

/// The real position of run `run` on `symbol` decided at `decision_ms`, by its order reports (`None`: no entry of
/// it filled).
fn reports(
    conn: &Connection,
    run: i64,
    symbol: SymbolName,
    decision_ms: i64,
) -> rusqlite::Result<Option<ReportSummary>> {
    let mut st = conn.prepare(
        "SELECT client_order_id, kind IN ('fill', 'partial_fill'), side, cum_quantity, COALESCE(price * quantity, 0)
         FROM order_reports WHERE run_id = ?1 AND symbol = ?2 AND decision_ts_ms = ?3 ORDER BY id",
    )?;
    let rows = st.query_map(params![run, symbol.as_str(), decision_ms], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, String>(2)?, r.get::<_, f64>(3)?, r.get(4)?))
    })?;
    let mut s: Option<ReportSummary> = None;
    for row in rows {
        let (client, fill, side, cum, notional): (String, bool, String, f64, f64) = row?;
        let Ok(id) = ClientOrderId::parse(client.as_bytes()) else { continue };
        let side = if side == "buy" { OrderSide::Buy } else { OrderSide::Sell };
        let sum = s.get_or_insert(ReportSummary {
            client_run: id.run_id,
            position_id: id.position_id,
            side,
            filled: 0.0,
            notional: 0.0,
            exit_cum: [0.0; 5],
            attempts: [0; 7],
        });
        crate::types::adopt::note_attempt(&mut sum.attempts, &id);
        if !fill {
            continue;
        }
        match id.leg.exit_slot() {
            None => {
                sum.side = side;
                sum.filled = sum.filled.max(cum);
                sum.notional += notional;
            }
            Some(slot) => sum.exit_cum[slot] = sum.exit_cum[slot].max(cum),
        }
    }
    Ok(s.filter(|s| s.filled > 0.0))
}

/// Moves candidate `c` into run `run` as its position `seq` (module doc).
pub(crate) fn transfer(conn: &mut Connection, c: &Candidate, run: i64, seq: u64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM fills WHERE position_id = ?1 AND kind = ?2",
        params![c.row_id, ExitReason::Crashed.name()],
    )?;
    tx.execute("UPDATE fills SET run_id = ?2 WHERE position_id = ?1", params![c.row_id, run])?;
    let n = tx.execute(
        "UPDATE positions SET run_id = ?2, seq = ?3, status = 'open', exit_ts_ms = NULL, exit_price = NULL,
           pnl = NULL, pnl_pct = NULL, exit_reason = NULL, mfe_pct = NULL, mae_pct = NULL, time_to_mfe_secs = NULL,
           time_to_mae_secs = NULL, fees = ?4, funding = ?5
         WHERE id = ?1 AND status = 'closed' AND exit_reason = ?6",
        params![c.row_id, run, seq as i64, c.paper.fees, c.paper.funding, ExitReason::Crashed.name()],
    )?;
    if n != 1 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    tx.execute(
        "UPDATE order_reports SET run_id = ?4 WHERE run_id = ?1 AND symbol = ?2 AND decision_ts_ms = ?3",
        params![c.run_id, c.symbol.as_str(), c.paper.entry_ts_ms, run],
    )?;
    tx.commit()
}

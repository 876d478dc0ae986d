//! A position of a killed run found open on the exchange at start and taken over by this run (issue 12, "Adopt
//! positions this run's database knows"): what the database knew of it (the paper position, the expected state)
//! and what the exchange and the order reports say of the real one. Plain values in quote and base units (the
//! symbol's tick and step are known only once its definition reaches the engine, which converts them then).

use super::order::{Leg, OrderSide};
use super::record::{Regime, Side};
use super::symbols::SymbolName;

/// The paper position as its run left it (the `positions` row and its fills, the crash close removed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdoptedPaper {
    /// Direction.
    pub side: Side,
    /// Exchange time of the entry decision, ms.
    pub entry_ts_ms: i64,
    /// Exchange time of the signal bar's last trade, ms.
    pub bar_ts_ms: i64,
    /// Exchange time of the entry fill, ms.
    pub entry_fill_ts_ms: i64,
    /// Order latency of its orders, ms.
    pub latency_ms: f64,
    /// Entry VWAP, quote.
    pub entry_price: f64,
    /// Entry quantity, base.
    pub qty: f64,
    /// Quantity its exit fills closed so far, base.
    pub exited_qty: f64,
    /// The stop it was opened with, quote (one R from the entry).
    pub initial_stop: f64,
    /// TP1, TP2 and the liquidation price, quote.
    pub tp1: f64,
    /// See `tp1`.
    pub tp2: f64,
    /// See `tp1`.
    pub liq: f64,
    /// TP1 filled.
    pub tp1_done: bool,
    /// Fees so far (entry and exit fills), quote.
    pub fees: f64,
    /// Funding so far, quote.
    pub funding: f64,
    /// Realised PnL so far (the sum of its fills), quote.
    pub pnl: f64,
    /// Expected and realised slippage of the entry, bps.
    pub expected_slippage_bps: f64,
    /// See `expected_slippage_bps`.
    pub realized_slippage_bps: f64,
    /// Regime at entry.
    pub regime: Regime,
    /// Signal confidence.
    pub confidence: f64,
}

/// The exchange's protective stop of the adopted position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdoptedStop {
    /// Its leg ([`Leg::Stop`] or [`Leg::Breakeven`]) and attempt, from its client id.
    pub leg: Leg,
    /// See `leg`.
    pub attempt: u8,
    /// Its trigger price, quote.
    pub trigger: f64,
}

/// The real position: the order reports of the killed run, checked against the exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdoptedReal {
    /// The run part of its client order ids (the killed run's start time): its orders keep their ids.
    pub client_run: u32,
    /// Its position number in them.
    pub position_id: u32,
    /// The entry's side.
    pub side: OrderSide,
    /// Entry quantity filled, base.
    pub filled: f64,
    /// Entry notional, quote.
    pub notional: f64,
    /// Open quantity (the exchange's position), base.
    pub open: f64,
    /// Cumulative fills per exit leg slot (stop, tp1, tp2, close, breakeven), base.
    pub exit_cum: [f64; 5],
    /// The working stop on the exchange (`None`: it has none, the venue places one at once).
    pub stop: Option<AdoptedStop>,
    /// TP1 and TP2 still working on the exchange.
    pub tps_working: [bool; 2],
    /// The next free attempt of each leg's client id (one above the highest seen, 0 when none; by `Leg as usize`).
    pub attempts: [u8; 7],
    /// Exchange time of the entry decision, ms (ties the real position to the paper one).
    pub decision_ms: i64,
}

/// Notes that `id` was used: its leg's next free attempt (in `attempts`, by `Leg as usize`) is one above it.
pub(crate) fn note_attempt(attempts: &mut [u8; 7], id: &super::order::ClientOrderId) {
    let a = &mut attempts[id.leg as usize];
    *a = (*a).max(id.attempt.saturating_add(1));
}

/// One adopted position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adoption {
    /// Its symbol.
    pub symbol: SymbolName,
    /// Its sequence number in this run (its `positions` row moves to this run under it).
    pub seq: u64,
    /// The expected state.
    pub paper: AdoptedPaper,
    /// The real position.
    pub real: AdoptedReal,
}

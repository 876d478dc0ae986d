//! The real account beside the paper one (issue 12): the base account's decisions become [`OrderIntent`]s for the
//! network thread, and the exchange's reports ([`ExecReport`], the `Exec`/`ExecMore` event pair) drive the real
//! position. The paper position is the *expected* state; where the two differ the venue says so and, past a grace
//! time, acts.
//!
//! Contracts:
//! - Nothing is sent in paper mode: the engine has no venue then, and the traders keep no decision log.
//! - Entries pass the caps before anything is sent (notional per order, per symbol and in total, orders per minute
//!   by exchange time, the day's realised loss, the halt switch); a refusal is counted and nothing reaches the ring.
//! - Protective orders (stop, take profits, closes, cancels) are never refused by a cap or the halt: a full intent
//!   ring keeps them in a bounded backlog sent first on the next turn; only a full backlog loses one (counted, and
//!   the halt is raised, since the position may then lack its protection).
//! - Right after the first entry fill, an exchange-side `STOP_MARKET` with `closePosition` at the paper stop
//!   (rounded onto the tick grid towards the entry: it triggers no later than the paper stop); on the complete
//!   fill, TP1 and TP2 as reduce-only GTC LIMITs at the paper levels (rounded away from the market, as the paper
//!   model rounds them), TP1's quantity the paper model's `tp1_fraction` of what actually filled.
//! - The breakeven move is a new stop ([`Leg::Breakeven`]) placed first; the old one is cancelled only once the
//!   new one is acknowledged, so the position is never without a stop. A SoftStop or shutdown close cancels the take
//!   profits and sends a reduce-only MARKET for the real open quantity.
//! - Fills are deduplicated by cumulative quantity (the WebSocket API response and the user stream both report an
//!   order): a report whose `cum_qty_steps` is not above what is known changes nothing.
//! - Divergence: a real position while the paper account is flat for longer than `divergence_grace_ms` (exchange
//!   time) is flattened and counted; a paper position whose real entry was rejected is counted.
//! - Time is the exchange's (the reports' and events' times); the monotonic clock is read only to stamp latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrayvec::ArrayVec;

use crate::handoff::ring::Producer;
use crate::types::AdoptedReal;
use crate::types::clock;
use crate::types::event::SymbolId;
use crate::types::order::{
    ClientOrderId, ExecKind, ExecReport, IntentKind, Leg, OrderIntent, OrderSide, OrderType, TimeInForce, WorkingType,
};
use crate::types::record::{ExitReason, Position, Side};

pub use crate::types::order::HaltCause;

/// Protective intents kept while the ring is full.
pub const BACKLOG_MAX: usize = 64;
/// Entries remembered for the orders-per-minute cap.
pub const RATE_WINDOW_MAX: usize = 256;
/// Symbols a venue trades at most.
pub const VENUE_SYMBOLS_MAX: usize = 64;
/// Killed runs whose positions one start adopts at most (one per symbol, usually one run).
const ADOPTED_RUNS_MAX: usize = VENUE_SYMBOLS_MAX;
/// Attempts at a protective order the exchange rejected before the position is flattened.
pub const PROTECT_ATTEMPTS_MAX: u8 = 3;

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A decision of the base account's paper trader, as the venue sees it ([`crate::compute::trading::trader`]
/// logs one per order it sends, the brackets excepted: the venue places those on the real fill).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Open a position of `qty` steps (a MARKET entry).
    Entry {
        /// Direction.
        side: Side,
        /// Quantity (steps).
        qty: i64,
        /// The decision's price (ticks), for the notional caps.
        px: i64,
    },
    /// Close what is open (reduce-only MARKET).
    Close {
        /// Why (SoftStop or Shutdown leg).
        reason: ExitReason,
    },
    /// Move the stop to `px` (ticks).
    MoveStop {
        /// The new stop.
        px: f64,
    },
}

/// The venue's limits and choices (`[execution]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct VenueConfig {
    /// The run, the first part of every client order id.
    pub run_id: u32,
    /// Largest notional of one entry, quote.
    pub order_notional_max: f64,
    /// Largest open notional on one symbol, quote.
    pub symbol_notional_max: f64,
    /// Largest open notional in total, quote.
    pub total_notional_max: f64,
    /// Entries per minute (exchange time).
    pub orders_per_min_max: usize,
    /// The day's (UTC) loss that halts new entries, quote (> 0): realised, fees included, plus the unrealised loss
    /// of the open real positions at the last trade price.
    pub daily_loss_max: f64,
    /// When the daily loss halts entries, also close every real position at once.
    pub flatten_on_daily_loss: bool,
    /// Trigger price of the stops.
    pub working_type: WorkingType,
    /// A real position with the paper account flat for this long is flattened, ms.
    pub divergence_grace_ms: i64,
    /// The paper model's TP1 share of the position.
    pub tp1_fraction: f64,
    /// The stop distance, % of the fill price, for a real fill that comes before its paper position.
    pub stop_pct: f64,
}

impl Default for VenueConfig {
    fn default() -> Self {
        VenueConfig {
            run_id: 0,
            order_notional_max: 1_000.0,
            symbol_notional_max: 2_000.0,
            total_notional_max: 5_000.0,
            orders_per_min_max: 10,
            daily_loss_max: 100.0,
            flatten_on_daily_loss: false,
            working_type: WorkingType::Mark,
            divergence_grace_ms: 5_000,
            tp1_fraction: 0.5,
            stop_pct: 1.0,
        }
    }
}

/// Why an entry was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryRefusal {
    /// Entries are halted (switch, daily loss, rate limit or an unknown error).
    #[error("entries halted")]
    Halted,
    /// The order's notional is above `order_notional_max`.
    #[error("order notional above its cap")]
    OrderNotional,
    /// The symbol's open notional would pass `symbol_notional_max`.
    #[error("symbol notional above its cap")]
    SymbolNotional,
    /// The total open notional would pass `total_notional_max`.
    #[error("total notional above its cap")]
    TotalNotional,
    /// `orders_per_min_max` entries in the last minute.
    #[error("orders per minute above the cap")]
    Rate,
    /// The symbol already has a real position or an entry in flight.
    #[error("symbol busy")]
    Busy,
    /// The symbol is not known to the venue (no price scale, or past `VENUE_SYMBOLS_MAX`).
    #[error("symbol unknown to the venue")]
    Unknown,
}

impl EntryRefusal {
    /// Every refusal, the order of [`VenueStats::refused`].
    pub const ALL: [EntryRefusal; 7] = [
        EntryRefusal::Halted,
        EntryRefusal::OrderNotional,
        EntryRefusal::SymbolNotional,
        EntryRefusal::TotalNotional,
        EntryRefusal::Rate,
        EntryRefusal::Busy,
        EntryRefusal::Unknown,
    ];

    /// Its name in the metrics (`snake_case`).
    pub const fn name(self) -> &'static str {
        match self {
            EntryRefusal::Halted => "halted",
            EntryRefusal::OrderNotional => "order_notional",
            EntryRefusal::SymbolNotional => "symbol_notional",
            EntryRefusal::TotalNotional => "total_notional",
            EntryRefusal::Rate => "rate",
            EntryRefusal::Busy => "busy",
            EntryRefusal::Unknown => "unknown",
        }
    }
}

/// What the venue counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VenueStats {
    /// Intents pushed to the network thread.
    pub intents: u64,
    /// Entries sent.
    pub entries: u64,
    /// Entries refused, by [`EntryRefusal::ALL`].
    pub refused: [u64; 7],
    /// Protective intents that waited in the backlog (ring full).
    pub backlogged: u64,
    /// Protective intents lost (backlog full too).
    pub lost: u64,
    /// Reports that repeated what was known (duplicates).
    pub duplicate_reports: u64,
    /// Reports of orders that are not ours (manual, liquidation) or of another run.
    pub foreign_reports: u64,
    /// Entries rejected for margin (`-2019`).
    pub rejected_margin: u64,
    /// Entries rejected below the minimum notional (`-4164`).
    pub rejected_min_notional: u64,
    /// Other rejects.
    pub rejected_other: u64,
    /// Real positions flattened because the paper account was flat.
    pub divergence_flattened: u64,
    /// Closes refused `-2022` (reduce-only: the exchange holds nothing to reduce): the real position was taken as
    /// flat (a closing fill the session never saw).
    pub closes_found_flat: u64,
    /// Paper positions opened whose real entry did not fill.
    pub divergence_paper_only: u64,
    /// `ACCOUNT_UPDATE` positions that disagreed with the real quantity the venue holds.
    pub position_mismatches: u64,
    /// Decisions the trader's log could not keep (must stay 0).
    pub decisions_lost: u64,
    /// Stops placed (initial and breakeven).
    pub stops_placed: u64,
    /// Positions of a killed run taken over at start.
    pub adopted: u64,
    /// The realised PnL of today's fills, commissions included, quote.
    pub day_pnl: f64,
    /// The unrealised PnL of the open real positions at their last trade prices, quote.
    pub unrealised: f64,
    /// Real positions closed because the daily loss was reached (`flatten_on_daily_loss`).
    pub daily_loss_flattened: u64,
    /// Why entries are halted, if they are.
    pub halted: Option<HaltCause>,
}

/// What the venue knows of one symbol's real position.
#[derive(Debug, Clone, Copy, Default)]
struct Real {
    /// The position's id in client order ids (0: none).
    position_id: u32,
    /// The run part of its client order ids: this run's, or a killed run's for an adopted position.
    client_run: u32,
    side: Option<OrderSide>,
    /// Entry quantity asked, steps.
    asked: i64,
    /// Entry quantity filled (cumulative), steps.
    filled: i64,
    /// Open quantity, steps.
    open: i64,
    /// Cumulative fills per exit leg (dedupe): stop, tp1, tp2, close, breakeven stop.
    exit_cum: [i64; 5],
    /// The working stop (leg, attempt) and its price.
    stop: Option<(Leg, u8)>,
    /// A replacement stop waiting for its ack before the old one is cancelled.
    stop_next: Option<(Leg, u8)>,
    /// Breakeven replacements so far.
    be_attempt: u8,
    /// Take profits placed.
    tps_placed: bool,
    /// A close was sent.
    closing: bool,
    /// Closes sent so far: each carries its own attempt in its client id (a retry after a refused close must not
    /// reuse the id: the exchange remembers it and answers `-4116`).
    close_attempt: u8,
    /// Exchange time since the real position has had no paper position (0: in step).
    unpaired_since_ms: i64,
    /// Entry notional, quote.
    notional: f64,
    /// The entry fills' price × quantity, ticks × steps (its VWAP × `filled`).
    entry_tq: f64,
    /// Its unrealised PnL at the last trade price, quote (0 when flat).
    unrealised: f64,
    /// Protective attempts rejected.
    protect_rejects: u8,
    /// Exchange time of the entry decision, ms (the paper position of the same decision has it as its entry time).
    decision_ms: i64,
}

/// Symbol constants the venue needs.
#[derive(Debug, Clone, Copy, Default)]
struct Spec {
    tick_value: f64,
    step_value: f64,
    known: bool,
}

/// The real account (module doc).
pub struct Venue {
    cfg: VenueConfig,
    tx: Producer<OrderIntent>,
    halt: Arc<AtomicBool>,
    backlog: ArrayVec<OrderIntent, BACKLOG_MAX>,
    entries_ms: ArrayVec<i64, RATE_WINDOW_MAX>,
    real: Vec<Real>,
    specs: Vec<Spec>,
    paper_seq: Vec<u64>,
    next_position: u32,
    day: i64,
    doorbell: Option<Doorbell>,
    /// The daily loss was reached today (UTC): entries halted, positions flattened if configured.
    day_loss_hit: bool,
    /// The client-id runs of the positions adopted (their late reports are not foreign).
    adopted_runs: ArrayVec<u32, ADOPTED_RUNS_MAX>,
    /// Counters.
    pub stats: VenueStats,
}

/// Wakes the thread that sends the intents (the network thread's poll waker) after intents were pushed: one
/// call per push, no allocation, no lock.
pub type Doorbell = Arc<dyn Fn() + Send + Sync>;

fn order_side(s: Side) -> OrderSide {
    match s {
        Side::Long => OrderSide::Buy,
        Side::Short => OrderSide::Sell,
    }
}

/// An intent with the fields every order shares.
fn intent(kind: IntentKind, client: ClientOrderId, symbol: SymbolId, side: OrderSide, ty: OrderType) -> OrderIntent {
    OrderIntent {
        price_ticks: 0,
        stop_ticks: 0,
        qty_steps: 0,
        decided_mono_ns: clock::now_ns() as i64,
        client,
        symbol,
        kind,
        side,
        order_type: ty,
        working_type: WorkingType::Contract,
        time_in_force: TimeInForce::Gtc,
        reduce_only: false,
        close_position: false,
        price_protect: false,
    }
}

impl Venue {
    /// A venue sending into `tx`; `halt` is the kill switch (set by `SIGUSR1` or the halt file).
    pub fn new(cfg: VenueConfig, tx: Producer<OrderIntent>, halt: Arc<AtomicBool>) -> Self {
        Venue {
            cfg,
            tx,
            halt,
            backlog: ArrayVec::new(),
            entries_ms: ArrayVec::new(),
            real: vec![Real::default(); VENUE_SYMBOLS_MAX],
            specs: vec![Spec::default(); VENUE_SYMBOLS_MAX],
            paper_seq: vec![0; VENUE_SYMBOLS_MAX],
            next_position: 0,
            day: 0,
            doorbell: None,
            day_loss_hit: false,
            adopted_runs: ArrayVec::new(),
            stats: VenueStats::default(),
        }
    }

    /// Rings `bell` after every push of intents into the ring (the network thread then sends them at once instead
    /// of at its next poll timeout).
    pub fn with_doorbell(mut self, bell: Doorbell) -> Self {
        self.doorbell = Some(bell);
        self
    }

    fn ring_bell(&self) {
        if let Some(b) = &self.doorbell {
            b();
        }
    }

    /// The symbol's tick and step values (quote per tick, base per step), from its definition.
    pub fn set_spec(&mut self, symbol: SymbolId, tick_value: f64, step_value: f64) {
        if let Some(s) = self.specs.get_mut(symbol as usize) {
            *s = Spec { tick_value, step_value, known: tick_value > 0.0 && step_value > 0.0 };
        }
    }

    /// The real open quantity of `symbol`, steps, signed (a long positive).
    pub fn real_qty(&self, symbol: SymbolId) -> i64 {
        self.real.get(symbol as usize).map_or(0, |r| match r.side {
            Some(OrderSide::Sell) => -r.open,
            _ => r.open,
        })
    }

    /// Takes over the real side of an adopted position on `symbol` (its spec set): its orders keep their client
    /// ids (the killed run's), each leg's next order takes the next attempt; with no stop at the exchange one is
    /// placed at once at the paper stop.
    pub fn adopt(&mut self, symbol: SymbolId, a: &AdoptedReal, paper: &Position) {
        let s = symbol as usize;
        let Some(spec) = self.specs.get(s).copied().filter(|sp| sp.known) else { return };
        let steps = |q: f64| (q / spec.step_value).round() as i64;
        let next = |leg: Leg| a.attempts[leg as usize];
        self.real[s] = Real {
            position_id: a.position_id,
            client_run: a.client_run,
            side: Some(a.side),
            asked: steps(a.filled),
            filled: steps(a.filled),
            open: steps(a.open),
            exit_cum: a.exit_cum.map(steps),
            stop: a.stop.map(|st| (st.leg, st.attempt)),
            be_attempt: next(Leg::Breakeven),
            tps_placed: a.tps_working.iter().any(|w| *w),
            close_attempt: next(Leg::SoftStop).max(next(Leg::Shutdown)),
            notional: a.notional,
            entry_tq: a.notional / (spec.tick_value * spec.step_value),
            decision_ms: a.decision_ms,
            ..Real::default()
        };
        self.paper_seq[s] = paper.seq;
        self.stats.adopted += 1;
        if !self.adopted_runs.contains(&a.client_run) {
            // Bounded by one per symbol: `real` has as many slots as the list.
            let _ = self.adopted_runs.try_push(a.client_run);
        }
        if a.stop.is_none() {
            log::error!("venue: adopted position on symbol {symbol} has no stop at the exchange: placing one");
            self.real[s].stop = Some((Leg::Stop, next(Leg::Stop)));
            self.place_stop(symbol, paper.stop, Leg::Stop, next(Leg::Stop));
        }
    }

    /// True when new entries are halted (the switch or a recorded cause).
    pub fn halted(&self) -> bool {
        self.stats.halted.is_some() || self.halt.load(Ordering::Relaxed)
    }

    fn raise(&mut self, cause: HaltCause) {
        if self.stats.halted.is_none() {
            log::error!("venue: new entries halted: {cause:?}");
            self.stats.halted = Some(cause);
        }
    }

    /// Sends what waits in the backlog, then `i` (protective: kept if the ring is full).
    fn push(&mut self, i: OrderIntent) {
        self.flush();
        if self.backlog.is_empty() && self.tx.push(i).is_ok() {
            self.stats.intents += 1;
            self.ring_bell();
            return;
        }
        self.stats.backlogged += 1;
        if self.backlog.try_push(i).is_err() {
            self.stats.lost += 1;
            self.raise(HaltCause::Protection);
        }
    }

    /// Pushes the backlog into the ring, oldest first, as far as it has room (call once per loop turn).
    pub fn flush(&mut self) {
        let mut sent = 0;
        for i in &self.backlog {
            if self.tx.push(*i).is_err() {
                break;
            }
            sent += 1;
        }
        self.backlog.drain(..sent);
        self.stats.intents += sent as u64;
        if sent > 0 {
            self.ring_bell();
        }
    }

    fn client(&self, r: &Real, leg: Leg, attempt: u8) -> ClientOrderId {
        ClientOrderId { run_id: r.client_run, position_id: r.position_id, leg, attempt }
    }

    /// A decision of the base account's trader on `symbol`, at exchange time `now_ms`.
    pub fn on_decision(&mut self, symbol: SymbolId, d: &Decision, now_ms: i64) -> Result<(), EntryRefusal> {
        match *d {
            Decision::Entry { side, qty, px } => {
                let r = self.enter(symbol, side, qty, px, now_ms);
                if let Err(e) = r {
                    self.stats.refused[EntryRefusal::ALL.iter().position(|x| *x == e).unwrap_or(0)] += 1;
                }
                r
            }
            Decision::Close { reason } => {
                self.close(symbol, if reason == ExitReason::Shutdown { Leg::Shutdown } else { Leg::SoftStop });
                Ok(())
            }
            Decision::MoveStop { px } => {
                self.move_stop(symbol, px);
                Ok(())
            }
        }
    }

    fn check_entry(&mut self, symbol: SymbolId, notional: f64, now_ms: i64) -> Result<(), EntryRefusal> {
        self.roll_day(now_ms);
        let r = self.real.get(symbol as usize).ok_or(EntryRefusal::Unknown)?;
        if !self.specs[symbol as usize].known {
            return Err(EntryRefusal::Unknown);
        }
        if self.halted() {
            return Err(EntryRefusal::Halted);
        }
        if r.position_id != 0 {
            return Err(EntryRefusal::Busy);
        }
        if notional > self.cfg.order_notional_max {
            return Err(EntryRefusal::OrderNotional);
        }
        if notional > self.cfg.symbol_notional_max {
            return Err(EntryRefusal::SymbolNotional);
        }
        let open: f64 = self.real.iter().filter(|r| r.position_id != 0).map(|r| r.notional).sum();
        if open + notional > self.cfg.total_notional_max {
            return Err(EntryRefusal::TotalNotional);
        }
        self.entries_ms.retain(|t| *t > now_ms - MINUTE_MS);
        if self.entries_ms.len() >= self.cfg.orders_per_min_max.min(RATE_WINDOW_MAX) {
            return Err(EntryRefusal::Rate);
        }
        Ok(())
    }

    fn enter(&mut self, symbol: SymbolId, side: Side, qty: i64, px: i64, now_ms: i64) -> Result<(), EntryRefusal> {
        let spec = *self.specs.get(symbol as usize).ok_or(EntryRefusal::Unknown)?;
        let notional = qty as f64 * spec.step_value * px as f64 * spec.tick_value;
        self.check_entry(symbol, notional, now_ms)?;
        self.entries_ms.push(now_ms);
        self.next_position += 1;
        let (id, s) = (self.next_position, order_side(side));
        self.real[symbol as usize] = Real {
            position_id: id,
            client_run: self.cfg.run_id,
            side: Some(s),
            asked: qty,
            notional,
            decision_ms: now_ms,
            ..Real::default()
        };
        let client = self.client(&self.real[symbol as usize], Leg::Entry, 0);
        let mut i = intent(IntentKind::Place, client, symbol, s, OrderType::Market);
        i.qty_steps = qty;
        self.stats.entries += 1;
        self.push(i);
        Ok(())
    }

    /// The stop at `px` (ticks, rounded towards the entry: up for a long's sell stop, down for a short's).
    fn place_stop(&mut self, symbol: SymbolId, px: f64, leg: Leg, attempt: u8) {
        let r = self.real[symbol as usize];
        let Some(side) = r.side else { return };
        let ticks = if side == OrderSide::Buy { px.ceil() } else { px.floor() } as i64;
        let mut i =
            intent(IntentKind::Place, self.client(&r, leg, attempt), symbol, side.opposite(), OrderType::StopMarket);
        i.stop_ticks = ticks;
        i.close_position = true;
        i.working_type = self.cfg.working_type;
        i.price_protect = true;
        self.stats.stops_placed += 1;
        self.push(i);
    }

    /// TP1/TP2 on the filled quantity at the paper levels (rounded away from the market).
    fn place_tps(&mut self, symbol: SymbolId, paper: &Position) {
        let r = self.real[symbol as usize];
        let Some(side) = r.side else { return };
        let exit = side.opposite();
        let tp1_qty = ((r.filled as f64 * self.cfg.tp1_fraction).round() as i64).clamp(1, r.filled);
        for (leg, qty, px) in [(Leg::Tp1, tp1_qty, paper.tp1), (Leg::Tp2, r.filled - tp1_qty, paper.tp2)] {
            if qty <= 0 || (leg == Leg::Tp1 && paper.tp1_done) {
                continue;
            }
            let mut i = intent(IntentKind::Place, self.client(&r, leg, 0), symbol, exit, OrderType::Limit);
            i.price_ticks = if exit == OrderSide::Sell { px.ceil() } else { px.floor() } as i64;
            i.qty_steps = qty;
            i.reduce_only = true;
            self.push(i);
        }
        self.real[symbol as usize].tps_placed = true;
    }

    fn cancel(&mut self, symbol: SymbolId, leg: Leg, attempt: u8, conditional: bool) {
        let r = self.real[symbol as usize];
        let Some(side) = r.side else { return };
        let ty = if conditional { OrderType::StopMarket } else { OrderType::Limit };
        let i = intent(IntentKind::Cancel, self.client(&r, leg, attempt), symbol, side.opposite(), ty);
        self.push(i);
    }

    fn cancel_tps(&mut self, symbol: SymbolId) {
        if std::mem::take(&mut self.real[symbol as usize].tps_placed) {
            self.cancel(symbol, Leg::Tp1, 0, false);
            self.cancel(symbol, Leg::Tp2, 0, false);
        }
    }

    /// A reduce-only MARKET for the real open quantity (the take profits cancelled first).
    fn close(&mut self, symbol: SymbolId, leg: Leg) {
        let Some(r) = self.real.get(symbol as usize).copied() else { return };
        let Some(side) = r.side else { return };
        if r.open <= 0 || r.closing {
            return;
        }
        self.cancel_tps(symbol);
        let real = &mut self.real[symbol as usize];
        real.closing = true;
        real.close_attempt = r.close_attempt.wrapping_add(1);
        // A new order: its cumulative fills start from zero (what earlier ones filled is already off `open`).
        if let Some(slot) = leg.exit_slot() {
            real.exit_cum[slot] = 0;
        }
        let client = self.client(&r, leg, r.close_attempt);
        let mut i = intent(IntentKind::Place, client, symbol, side.opposite(), OrderType::Market);
        i.qty_steps = r.open;
        i.reduce_only = true;
        self.push(i);
    }

    fn move_stop(&mut self, symbol: SymbolId, px: f64) {
        let Some(r) = self.real.get(symbol as usize).copied() else { return };
        if r.open <= 0 || r.closing || r.stop_next.is_some() {
            return;
        }
        let attempt = r.be_attempt;
        self.real[symbol as usize].be_attempt = attempt.wrapping_add(1);
        self.real[symbol as usize].stop_next = Some((Leg::Breakeven, attempt));
        self.place_stop(symbol, px, Leg::Breakeven, attempt);
    }
}

/// What is known to have filled of the order of `leg`, steps (a fill report not above it was applied already).
fn known_cum(r: &Real, leg: Leg) -> i64 {
    leg.exit_slot().map_or(r.filled, |slot| r.exit_cum[slot])
}

/// What a rejected entry's code means (Binance's codes: <https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code>).
fn classify_reject(stats: &mut VenueStats, code: i32) -> Option<HaltCause> {
    match code {
        -2019 => stats.rejected_margin += 1,
        -4164 => stats.rejected_min_notional += 1,
        // Too many requests / IP banned (HTTP 429 / 418 are reported with their status as a negative code).
        // -9005: an entry the order session refused unsent because the exchange rate-limited it.
        -1003 | -1008 | -1015 | -429 | -418 | -9005 => {
            stats.rejected_other += 1;
            return Some(HaltCause::RateLimited);
        }
        _ => {
            stats.rejected_other += 1;
            return Some(HaltCause::UnknownError);
        }
    }
    None
}

impl Venue {
    /// An order report of `symbol` (decoded from its event pair). `paper` is the base account's paper position on
    /// the symbol (the expected state; its stop prices the protective stop).
    ///
    /// Returns the exchange time of the entry decision of the real position the report belongs to when it is one to
    /// record (`order_reports`): not a foreign order's, not a late one of a position already closed, not a fill
    /// already applied (the WebSocket API answer and the user data stream both report each fill).
    pub fn on_exec(&mut self, x: &ExecReport, paper: Option<&Position>) -> Option<i64> {
        let s = x.symbol as usize;
        if !x.client_known || (x.client.run_id != self.cfg.run_id && !self.adopted_runs.contains(&x.client.run_id)) {
            self.stats.foreign_reports += 1;
            return None;
        }
        self.roll_day(x.exchange_ms);
        let r = self.real.get(s).filter(|r| {
            r.position_id == x.client.position_id && r.position_id != 0 && r.client_run == x.client.run_id
        })?;
        // (A late report of a position already closed, a cancel of its leftovers, changes nothing and is not kept.)
        let decision_ms = r.decision_ms;
        if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) && x.cum_qty_steps <= known_cum(r, x.client.leg) {
            self.stats.duplicate_reports += 1;
            return None;
        }
        match x.client.leg {
            Leg::Entry => self.on_entry_report(x, paper),
            Leg::Stop | Leg::Breakeven => self.on_stop_report(x, paper),
            _ => self.on_exit_report(x),
        }
        Some(decision_ms)
    }

    fn roll_day(&mut self, exchange_ms: i64) {
        let day = exchange_ms.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.stats.day_pnl = 0.0;
            self.day_loss_hit = false;
            if self.stats.halted == Some(HaltCause::DailyLoss) {
                self.stats.halted = None;
            }
        }
    }

    /// Books a fill's realised PnL less its commission (a charge is positive); the daily loss cap halts entries.
    fn book_fill(&mut self, x: &ExecReport) {
        self.stats.day_pnl += (x.realized_pnl_e8 - x.commission_e8) as f64 / 1e8;
        self.check_day_loss();
    }

    /// The day's loss (realised plus unrealised) against its cap: halts new entries and, with
    /// `flatten_on_daily_loss`, closes every real position (once per halt).
    fn check_day_loss(&mut self) {
        if self.day_loss_hit || self.stats.day_pnl + self.stats.unrealised > -self.cfg.daily_loss_max {
            return;
        }
        self.day_loss_hit = true;
        self.raise(HaltCause::DailyLoss);
        if self.cfg.flatten_on_daily_loss {
            for s in 0..self.real.len() {
                if self.real[s].open > 0 && !self.real[s].closing {
                    log::error!("venue: daily loss reached: closing the real position on symbol {s}");
                    self.stats.daily_loss_flattened += 1;
                    self.close(s as SymbolId, Leg::Shutdown);
                }
            }
        }
    }

    /// The last trade price of `symbol` (ticks): its real position's unrealised PnL, and the daily loss cap.
    pub fn mark(&mut self, symbol: SymbolId, last_px: i64) {
        let s = symbol as usize;
        let (Some(r), Some(spec)) = (self.real.get(s), self.specs.get(s)) else { return };
        if (r.open <= 0 && r.unrealised == 0.0) || last_px <= 0 {
            return;
        }
        let u = if r.open > 0 && r.filled > 0 {
            let sgn = if r.side == Some(OrderSide::Sell) { -1.0 } else { 1.0 };
            let entry = r.entry_tq / r.filled as f64;
            sgn * (last_px as f64 - entry) * r.open as f64 * spec.tick_value * spec.step_value
        } else {
            0.0
        };
        self.stats.unrealised += u - r.unrealised;
        self.real[s].unrealised = u;
        if u < 0.0 {
            self.check_day_loss();
        }
    }

    /// The stop price of a position with no paper stop yet: `stop_pct` from the fill price.
    fn fallback_stop(&self, side: OrderSide, fill_px: i64, stop_pct: f64) -> f64 {
        let k = if side == OrderSide::Buy { 1.0 - stop_pct / 100.0 } else { 1.0 + stop_pct / 100.0 };
        fill_px as f64 * k
    }

    fn on_entry_report(&mut self, x: &ExecReport, paper: Option<&Position>) {
        let s = x.symbol as usize;
        match x.kind {
            ExecKind::Fill | ExecKind::PartialFill => {
                let r = &mut self.real[s];
                debug_assert!(x.cum_qty_steps > r.filled, "on_exec lets only new fills through");
                r.open += x.cum_qty_steps - r.filled;
                r.entry_tq += x.last_price_ticks as f64 * (x.cum_qty_steps - r.filled) as f64;
                r.filled = x.cum_qty_steps;
                let (side, first) = (r.side.unwrap_or(OrderSide::Buy), r.stop.is_none() && r.stop_next.is_none());
                self.book_fill(x);
                if first {
                    let px = paper
                        .map_or_else(|| self.fallback_stop(side, x.last_price_ticks, self.cfg_stop_pct()), |p| p.stop);
                    self.real[s].stop = Some((Leg::Stop, 0));
                    self.place_stop(x.symbol, px, Leg::Stop, 0);
                }
                if x.kind == ExecKind::Fill
                    && let Some(p) = paper
                {
                    self.place_tps(x.symbol, p);
                }
            }
            ExecKind::Rejected | ExecKind::Canceled | ExecKind::Expired => {
                if x.kind == ExecKind::Rejected
                    && let Some(cause) = classify_reject(&mut self.stats, x.error_code)
                {
                    self.raise(cause);
                }
                if self.real[s].filled == 0 {
                    self.real[s] = Real::default();
                } else {
                    // A partial fill then an expiry: what filled is the position.
                    self.real[s].asked = self.real[s].filled;
                    if let Some(p) = paper {
                        self.place_tps(x.symbol, p);
                    }
                }
            }
            ExecKind::Ack | ExecKind::Amended => {}
        }
    }

    fn on_stop_report(&mut self, x: &ExecReport, paper: Option<&Position>) {
        let s = x.symbol as usize;
        let id = (x.client.leg, x.client.attempt);
        match x.kind {
            ExecKind::Ack => {
                if self.real[s].stop_next == Some(id) {
                    // The replacement is working: only now the old stop goes.
                    if let Some((leg, attempt)) = self.real[s].stop.replace(id) {
                        self.cancel(x.symbol, leg, attempt, true);
                    }
                    self.real[s].stop_next = None;
                }
            }
            ExecKind::Fill | ExecKind::PartialFill => self.on_exit_report(x),
            ExecKind::Rejected | ExecKind::Expired => self.on_stop_lost(x, paper),
            ExecKind::Canceled | ExecKind::Amended => {}
        }
    }

    /// A stop the exchange refused or dropped: a refused replacement keeps the old stop; a position left with no
    /// stop is retried, then closed at market.
    fn on_stop_lost(&mut self, x: &ExecReport, paper: Option<&Position>) {
        let s = x.symbol as usize;
        let id = (x.client.leg, x.client.attempt);
        let r = &mut self.real[s];
        if r.stop_next == Some(id) {
            r.stop_next = None;
            return;
        }
        if r.stop != Some(id) || r.open <= 0 {
            return;
        }
        r.protect_rejects += 1;
        let (tries, side) = (r.protect_rejects, r.side.unwrap_or(OrderSide::Buy));
        if tries < PROTECT_ATTEMPTS_MAX && x.error_code != -2021 {
            let px =
                paper.map_or_else(|| self.fallback_stop(side, x.last_price_ticks, self.cfg_stop_pct()), |p| p.stop);
            let next = (Leg::Stop, x.client.attempt.wrapping_add(1));
            self.real[s].stop = Some(next);
            self.place_stop(x.symbol, px, next.0, next.1);
        } else {
            // -2021: the stop would trigger at once (the market is already past it): close now.
            self.raise(HaltCause::Protection);
            self.close(x.symbol, Leg::SoftStop);
        }
    }

    fn on_exit_report(&mut self, x: &ExecReport) {
        let s = x.symbol as usize;
        let Some(slot) = x.client.leg.exit_slot() else { return };
        match x.kind {
            ExecKind::Fill | ExecKind::PartialFill => {
                let r = &mut self.real[s];
                debug_assert!(x.cum_qty_steps > r.exit_cum[slot], "on_exec lets only new fills through");
                r.open -= x.cum_qty_steps - r.exit_cum[slot];
                r.exit_cum[slot] = x.cum_qty_steps;
                self.book_fill(x);
                if self.real[s].open <= 0 {
                    self.flat(x.symbol, x.client.leg);
                }
            }
            ExecKind::Rejected if matches!(x.client.leg, Leg::SoftStop | Leg::Shutdown) => {
                self.stats.rejected_other += 1;
                if x.error_code == -2022 {
                    // Reduce-only rejected: the exchange holds nothing to reduce. Sending the close again would be
                    // refused again (at every event): the position is flat there.
                    log::warn!(
                        "venue: close of symbol {} refused -2022 (nothing to reduce): the real position is taken as \
                         flat",
                        x.symbol
                    );
                    self.stats.closes_found_flat += 1;
                    self.flat(x.symbol, x.client.leg);
                } else {
                    // A later decision may retry; a divergence flatten waits a new grace time, not the next event.
                    let r = &mut self.real[s];
                    r.closing = false;
                    r.unpaired_since_ms = 0;
                }
            }
            _ => {}
        }
    }

    /// The real position is closed: whatever of it still works at the exchange is cancelled.
    fn flat(&mut self, symbol: SymbolId, by: Leg) {
        self.cancel_tps(symbol);
        let r = self.real[symbol as usize];
        self.stats.unrealised -= r.unrealised;
        for (leg, attempt) in [r.stop, r.stop_next].into_iter().flatten() {
            if leg != by {
                self.cancel(symbol, leg, attempt, true);
            }
        }
        self.real[symbol as usize] = Real::default();
    }

    fn cfg_stop_pct(&self) -> f64 {
        self.cfg.stop_pct
    }

    /// After every event of `symbol` (exchange time `now_ms`): take profits that waited for the paper levels, and
    /// the divergence rules of the module doc.
    pub fn after_event(&mut self, symbol: SymbolId, paper: Option<&Position>, now_ms: i64) {
        let s = symbol as usize;
        let Some(r) = self.real.get(s).copied() else { return };
        if let Some(p) = paper
            && self.paper_seq[s] != p.seq
        {
            self.paper_seq[s] = p.seq;
            if r.position_id == 0 {
                self.stats.divergence_paper_only += 1;
            }
        }
        if r.open <= 0 {
            return;
        }
        match paper {
            Some(p) => {
                self.real[s].unpaired_since_ms = 0;
                if !r.tps_placed && !r.closing && r.filled >= r.asked {
                    self.place_tps(symbol, p);
                }
            }
            None if r.unpaired_since_ms == 0 => self.real[s].unpaired_since_ms = now_ms.max(1),
            None if !r.closing && now_ms - r.unpaired_since_ms > self.cfg.divergence_grace_ms => {
                log::warn!("venue: real position on symbol {symbol} with the paper account flat: flattening");
                self.stats.divergence_flattened += 1;
                self.close(symbol, Leg::Shutdown);
            }
            None => {}
        }
    }

    /// The exchange's position of `symbol` (`ACCOUNT_UPDATE`), signed amount in 1e-8 base units.
    pub fn on_position(&mut self, symbol: SymbolId, amount_e8: i64) {
        let Some(spec) = self.specs.get(symbol as usize) else { return };
        let ours = self.real_qty(symbol) as f64 * spec.step_value;
        if (amount_e8 as f64 / 1e8 - ours).abs() > spec.step_value / 2.0 {
            self.stats.position_mismatches += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::trading::position::{Entry, PositionConfig};
    use crate::handoff::ring::{Consumer, ring};
    use crate::types::record::Regime;

    const RUN: u32 = 7;

    fn venue(cap: usize) -> (Venue, Consumer<OrderIntent>, Arc<AtomicBool>) {
        let (tx, rx) = ring::<OrderIntent>(cap);
        let halt = Arc::new(AtomicBool::new(false));
        let cfg = VenueConfig { run_id: RUN, ..VenueConfig::default() };
        let mut v = Venue::new(cfg, tx, halt.clone());
        // BTCUSDT's real grid: tick 0.10 USDT, step 0.001 BTC.
        v.set_spec(0, 0.1, 0.001);
        (v, rx, halt)
    }

    /// A paper long of `qty` steps at `px` ticks, as the position model opens it.
    fn paper(px: f64, qty: i64) -> Position {
        let e = Entry {
            seq: 1,
            side: Side::Long,
            ts_ns: 0,
            bar_ts_ns: 0,
            fill_ts_ns: 0,
            latency_ns: 0,
            px,
            qty,
            touch: px,
            expected_slippage_bps: 0.0,
            regime: Regime::RangeLow,
            confidence: 0.5,
            tick_value: 0.1,
            step_value: 0.001,
        };
        Position::open(&PositionConfig::default(), 0.4, 10.0, &e)
    }

    fn drain(rx: &mut Consumer<OrderIntent>) -> Vec<OrderIntent> {
        std::iter::from_fn(|| rx.pop()).collect()
    }

    fn report(i: &OrderIntent, kind: ExecKind, cum: i64, px: i64) -> ExecReport {
        ExecReport { exchange_order_id: 1, ..ExecReport::of_intent(i, kind, cum, px, 1_000) }
    }

    /// 10 BTC-steps (0.010 BTC) at 60 000.0 USDT: a 600 USDT entry, inside the default caps.
    fn enter(v: &mut Venue, rx: &mut Consumer<OrderIntent>) -> OrderIntent {
        v.on_decision(0, &Decision::Entry { side: Side::Long, qty: 10, px: 600_000 }, 1_000).unwrap();
        let sent = drain(rx);
        assert_eq!(sent.len(), 1);
        sent[0]
    }

    /// The real side of an adopted long of 0.010 BTC of the killed run `OLD` (its position 1), with `stop` working.
    fn adopted(stop: Option<crate::types::AdoptedStop>) -> AdoptedReal {
        let mut attempts = [0u8; 7];
        attempts[Leg::Entry as usize] = 1;
        attempts[Leg::Stop as usize] = 1;
        AdoptedReal {
            client_run: OLD,
            position_id: 1,
            side: OrderSide::Buy,
            filled: 0.010,
            notional: 600.0,
            open: 0.010,
            exit_cum: [0.0; 5],
            stop,
            tps_working: [true, true],
            attempts,
            decision_ms: 500,
        }
    }

    const OLD: u32 = 0x0bad_cafe;

    #[test]
    fn an_adopted_position_keeps_its_old_ids_and_its_reports_never_meet_a_new_position() {
        let (mut v, mut rx, _) = venue(16);
        let stop = crate::types::AdoptedStop { leg: Leg::Stop, attempt: 0, trigger: 59_000.0 };
        v.adopt(0, &adopted(Some(stop)), &paper(600_000.0, 10));
        assert!(drain(&mut rx).is_empty(), "its stop is at the exchange: nothing to send");
        assert_eq!((v.real_qty(0), v.stats.adopted), (10, 1));
        // Its stop fills under the killed run's id: the position is flat, the take profits are cancelled under it.
        let old_stop = ClientOrderId { run_id: OLD, position_id: 1, leg: Leg::Stop, attempt: 0 };
        let mut i = intent(IntentKind::Place, old_stop, 0, OrderSide::Sell, OrderType::StopMarket);
        i.qty_steps = 10;
        assert_eq!(v.on_exec(&report(&i, ExecKind::Fill, 10, 590_000), None), Some(500));
        assert_eq!(v.real_qty(0), 0);
        let cancels = drain(&mut rx);
        assert!(cancels.iter().all(|c| c.kind == IntentKind::Cancel && c.client.run_id == OLD), "{cancels:?}");
        assert_eq!(cancels.len(), 2, "TP1 and TP2: {cancels:?}");
        // A late report of it is not foreign and changes nothing; a new entry (this run's position 1) never takes
        // the old position's reports.
        assert_eq!(v.on_exec(&report(&i, ExecKind::Canceled, 10, 0), None), None);
        let entry = enter(&mut v, &mut rx);
        assert_eq!((entry.client.run_id, entry.client.position_id), (RUN, 1));
        assert_eq!(v.on_exec(&report(&i, ExecKind::Fill, 20, 590_000), None), None);
        assert_eq!((v.real_qty(0), v.stats.foreign_reports), (0, 0));
    }

    #[test]
    fn an_adopted_position_without_a_stop_gets_one_at_once_with_the_next_attempt() {
        let (mut v, mut rx, _) = venue(16);
        v.adopt(0, &adopted(None), &paper(600_000.0, 10));
        let sent = drain(&mut rx);
        assert_eq!(sent.len(), 1, "{sent:?}");
        let s = sent[0];
        assert_eq!(
            (s.order_type, s.client.run_id, s.client.leg, s.client.attempt),
            (OrderType::StopMarket, OLD, Leg::Stop, 1)
        );
        assert!(s.close_position && s.side == OrderSide::Sell);
    }

    #[test]
    fn caps_refuse_an_oversized_entry_without_sending_it() {
        let (mut v, mut rx, _) = venue(16);
        // 0.1 BTC at 60 000 = 6 000 USDT > the 1 000 USDT order cap.
        let r = v.on_decision(0, &Decision::Entry { side: Side::Long, qty: 100, px: 600_000 }, 1_000);
        assert_eq!(r, Err(EntryRefusal::OrderNotional));
        assert!(drain(&mut rx).is_empty(), "nothing reaches the network thread");
        assert_eq!(v.stats.refused[1], 1);
        let e = enter(&mut v, &mut rx);
        assert_eq!(
            (e.order_type, e.side, e.qty_steps, e.client.leg),
            (OrderType::Market, OrderSide::Buy, 10, Leg::Entry)
        );
        assert_eq!(e.client.run_id, RUN);
        let again = v.on_decision(0, &Decision::Entry { side: Side::Long, qty: 10, px: 600_000 }, 1_001);
        assert_eq!(again, Err(EntryRefusal::Busy), "one position per symbol");
    }

    #[test]
    fn the_entry_fill_places_the_stop_then_the_take_profits_once() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        let p = paper(600_000.0, 10);
        // Recorded with the entry decision's exchange time (1 000 ms, see `enter`): the paper position's entry time.
        assert_eq!(v.on_exec(&report(&e, ExecKind::PartialFill, 4, 600_001), Some(&p)), Some(1_000));
        let stop = drain(&mut rx);
        assert_eq!(stop.len(), 1, "the stop goes with the first fill");
        let s = stop[0];
        assert_eq!(
            (s.order_type, s.side, s.close_position, s.client.leg),
            (OrderType::StopMarket, OrderSide::Sell, true, Leg::Stop)
        );
        assert_eq!(s.stop_ticks, p.stop.ceil() as i64, "rounded towards the entry");
        assert!(s.stop_ticks < 600_000);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_002), Some(&p));
        let tps = drain(&mut rx);
        assert_eq!(tps.len(), 2);
        assert!(tps.iter().all(|t| t.order_type == OrderType::Limit && t.reduce_only && t.side == OrderSide::Sell));
        assert_eq!((tps[0].client.leg, tps[0].qty_steps, tps[1].qty_steps), (Leg::Tp1, 5, 5));
        assert_eq!(tps[0].price_ticks, p.tp1.ceil() as i64, "a sell limit rounds up, never better than asked");
        // The same fill again (WS API response and user stream): nothing more, and nothing to record.
        assert_eq!(v.on_exec(&report(&e, ExecKind::Fill, 10, 600_002), Some(&p)), None);
        v.after_event(0, Some(&p), 1_002);
        assert!(drain(&mut rx).is_empty());
        assert_eq!(v.stats.duplicate_reports, 1);
        assert_eq!(v.real_qty(0), 10);
    }

    #[test]
    fn breakeven_cancels_the_old_stop_only_after_the_new_one_is_acknowledged() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        let p = paper(600_000.0, 10);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), Some(&p));
        let old = drain(&mut rx)[0];
        v.on_decision(0, &Decision::MoveStop { px: 600_010.4 }, 2_000).unwrap();
        let new = drain(&mut rx);
        assert_eq!(new.len(), 1, "only the new stop: the old one stays until then");
        assert_eq!((new[0].client.leg, new[0].stop_ticks), (Leg::Breakeven, 600_011));
        v.on_exec(&report(&new[0], ExecKind::Ack, 0, 0), Some(&p));
        let cancel = drain(&mut rx);
        assert_eq!(cancel.len(), 1);
        assert_eq!((cancel[0].kind, cancel[0].client), (IntentKind::Cancel, old.client));
        assert!(cancel[0].order_type.is_conditional(), "an algo cancel");
    }

    #[test]
    fn the_halt_stops_entries_and_never_protection() {
        let (mut v, mut rx, halt) = venue(16);
        let e = enter(&mut v, &mut rx);
        let p = paper(600_000.0, 10);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), Some(&p));
        drain(&mut rx);
        halt.store(true, Ordering::Relaxed);
        let r = v.on_decision(1, &Decision::Entry { side: Side::Long, qty: 1, px: 600_000 }, 2_000);
        assert_eq!(r, Err(EntryRefusal::Unknown), "symbol 1 has no spec");
        v.set_spec(1, 0.1, 0.001);
        let r = v.on_decision(1, &Decision::Entry { side: Side::Long, qty: 1, px: 600_000 }, 2_000);
        assert_eq!(r, Err(EntryRefusal::Halted));
        v.on_decision(0, &Decision::Close { reason: ExitReason::SoftStop }, 2_000).unwrap();
        let out = drain(&mut rx);
        let close = out.iter().find(|i| i.order_type == OrderType::Market).expect("the close goes out");
        assert_eq!((close.client.leg, close.qty_steps, close.reduce_only), (Leg::SoftStop, 10, true));
        assert_eq!(out.iter().filter(|i| i.kind == IntentKind::Cancel).count(), 2, "the take profits cancelled");
        v.on_exec(&report(close, ExecKind::Fill, 10, 599_990), None);
        let left = drain(&mut rx);
        assert_eq!(left.len(), 1, "flat: the stop is cancelled");
        assert_eq!(left[0].client.leg, Leg::Stop);
        assert_eq!(v.real_qty(0), 0);
    }

    #[test]
    fn a_real_position_without_its_paper_one_is_flattened_after_the_grace() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        // The real fill comes first: the stop is priced from the fill with stop_pct (1 %), the take profits wait.
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), None);
        let stop = drain(&mut rx);
        assert_eq!((stop.len(), stop[0].stop_ticks), (1, 594_000));
        v.after_event(0, None, 1_000);
        v.after_event(0, None, 6_000);
        assert!(drain(&mut rx).is_empty(), "inside the grace");
        v.after_event(0, None, 6_001);
        let out = drain(&mut rx);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].client.leg, out[0].qty_steps, out[0].reduce_only), (Leg::Shutdown, 10, true));
        assert_eq!(v.stats.divergence_flattened, 1);
    }

    #[test]
    fn a_refused_flatten_is_not_resent_at_every_event_and_nothing_to_reduce_means_flat() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), None);
        drain(&mut rx);
        v.after_event(0, None, 1_000);
        v.after_event(0, None, 6_001);
        let close = drain(&mut rx)[0];
        assert_eq!(close.client.leg, Leg::Shutdown);
        // Another refusal (a -1xxx): the flatten waits a new grace time instead of going out at the next event.
        v.on_exec(&ExecReport { error_code: -1001, ..report(&close, ExecKind::Rejected, 0, 0) }, None);
        for t in [6_002, 6_003, 7_000] {
            v.after_event(0, None, t);
        }
        assert!(drain(&mut rx).is_empty(), "not resent at every event");
        v.after_event(0, None, 13_003);
        let again = drain(&mut rx);
        assert_eq!((again.len(), again[0].client.leg), (1, Leg::Shutdown));
        // -2022: the exchange has nothing to reduce: the position is flat there, its stop is cancelled, no retry.
        v.on_exec(&ExecReport { error_code: -2022, ..report(&again[0], ExecKind::Rejected, 0, 0) }, None);
        let after = drain(&mut rx);
        assert!(after.iter().all(|i| i.kind == IntentKind::Cancel), "{after:?}");
        assert_eq!((v.real_qty(0), v.stats.closes_found_flat), (0, 1));
        v.after_event(0, None, 30_000);
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn a_full_ring_keeps_protection_in_the_backlog_in_order() {
        let (mut v, mut rx, _) = venue(2);
        let e = enter(&mut v, &mut rx);
        let p = paper(600_000.0, 10);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), Some(&p));
        assert_eq!(v.stats.backlogged, 1, "stop and TP1 fit, TP2 waits");
        let first: Vec<Leg> = drain(&mut rx).iter().map(|i| i.client.leg).collect();
        v.flush();
        let rest: Vec<Leg> = drain(&mut rx).iter().map(|i| i.client.leg).collect();
        assert_eq!((first, rest), (vec![Leg::Stop, Leg::Tp1], vec![Leg::Tp2]));
        assert_eq!(v.stats.lost, 0);
    }

    #[test]
    fn an_unrealised_loss_counts_in_the_daily_cap_and_optionally_flattens() {
        for flatten in [false, true] {
            let (tx, mut rx) = ring::<OrderIntent>(16);
            let cfg = VenueConfig { run_id: RUN, flatten_on_daily_loss: flatten, ..VenueConfig::default() };
            let mut v = Venue::new(cfg, tx, Arc::new(AtomicBool::new(false)));
            v.set_spec(0, 0.1, 0.001);
            let e = enter(&mut v, &mut rx);
            v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), None);
            drain(&mut rx);
            // 0.010 BTC bought at 60 000.0: at 55 000.0 the position is 50 USDT down, inside the 100 cap.
            v.mark(0, 550_000);
            assert!((v.stats.unrealised + 50.0).abs() < 1e-9, "{}", v.stats.unrealised);
            assert_eq!(v.stats.halted, None);
            // At 49 000.0: 110 down, past the cap with nothing realised.
            v.mark(0, 490_000);
            assert_eq!(v.stats.halted, Some(HaltCause::DailyLoss));
            let sent = drain(&mut rx);
            let closes: Vec<_> = sent.iter().filter(|i| i.order_type == OrderType::Market).collect();
            if flatten {
                assert_eq!(closes.len(), 1, "{sent:?}");
                assert!(closes[0].reduce_only && closes[0].qty_steps == 10 && closes[0].client.leg == Leg::Shutdown);
                assert_eq!(v.stats.daily_loss_flattened, 1);
            } else {
                assert!(closes.is_empty(), "{sent:?}");
            }
            v.mark(0, 480_000);
            assert!(drain(&mut rx).iter().all(|i| i.order_type != OrderType::Market), "one close per halt");
        }
    }

    #[test]
    fn the_daily_loss_halts_entries_until_the_next_utc_day() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        v.on_exec(&report(&e, ExecKind::Fill, 10, 600_000), None);
        let stop = drain(&mut rx)[0];
        let mut x = report(&stop, ExecKind::Fill, 10, 594_000);
        // 60 lost on the price and 41 paid in commission (positive: a charge, as Binance's `n`): the day is at
        // -101, past the 100 cap; a commission booked with the wrong sign would leave it at -19.
        x.realized_pnl_e8 = -60 * 100_000_000;
        x.commission_e8 = 41 * 100_000_000;
        v.on_exec(&x, None);
        assert_eq!(v.stats.halted, Some(HaltCause::DailyLoss));
        assert_eq!(
            v.on_decision(0, &Decision::Entry { side: Side::Long, qty: 1, px: 600_000 }, 2_000),
            Err(EntryRefusal::Halted)
        );
        let late = ExecReport { exchange_ms: DAY_MS - 1, kind: ExecKind::Canceled, ..x };
        v.on_exec(&late, None);
        assert_eq!(v.stats.halted, Some(HaltCause::DailyLoss), "the same day");
        assert!(v.on_decision(0, &Decision::Entry { side: Side::Long, qty: 1, px: 600_000 }, DAY_MS + 1).is_ok());
        assert_eq!(v.stats.halted, None, "a new UTC day lifts the daily-loss halt");
    }

    #[test]
    fn margin_rejects_free_the_symbol_and_unknown_errors_halt() {
        let (mut v, mut rx, _) = venue(16);
        let e = enter(&mut v, &mut rx);
        v.on_exec(&ExecReport { error_code: -2019, ..report(&e, ExecKind::Rejected, 0, 0) }, None);
        assert_eq!((v.stats.rejected_margin, v.stats.halted), (1, None));
        let e = enter(&mut v, &mut rx);
        assert_eq!(e.client.position_id, 2, "a new position id: a new client id");
        v.on_exec(&ExecReport { error_code: -1111, ..report(&e, ExecKind::Rejected, 0, 0) }, None);
        assert_eq!(v.stats.halted, Some(HaltCause::UnknownError));
    }
}

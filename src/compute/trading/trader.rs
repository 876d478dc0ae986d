//! Paper accounts and their traders.
//!
//! An [`Account`] is one set of rules (the base configuration, or an A/B variant) with its own balance; the engine
//! keeps them in one list, index 0 = base, then the variants in config order; the index is the `variant` tag of
//! every record the account produces. Each symbol keeps one [`Trader`] per account, at the same index: that
//! account's strategy state, open position, hour expectancy and counters on the symbol.
//!
//! A trader's decisions: sizing → gate → risk → entry fill → position on a signal ([`Trader::enter`]); position
//! management on every exit-side price ([`Trader::manage`]); a forced close at the end of input
//! ([`Trader::close_out`]). See the module docs of `gate`, `risk` and `position` for the rules.

use crate::compute::market::book::Book;
use crate::compute::signal::strategy::{BarEval, BarInputs, Strategy, StrategyConfig};
use crate::compute::trading::gate::{self, GateConfig, GateReject, HourExpectancy};
use crate::compute::trading::orders::{EntryOrder, IN_FLIGHT_MAX, InFlight, OrderKind, OrderQueue, Resting};
use crate::compute::trading::position::{Entry, ExitFill, ExitOrder, PositionConfig, StopTrigger};
use crate::compute::trading::risk::{Risk, RiskConfig, RiskReject, SymbolRisk};
use crate::compute::trading::venue::Decision;
use crate::types::decimal::Scale;
use crate::types::event::SymbolId;
use crate::types::record::{ExitReason, FillKind, HourSample, Liquidity, Position, Record, Side, Signal};
use crate::types::symbols::SymbolName;
use arrayvec::ArrayVec;

/// The rules one account trades by.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Name ("base" for the main configuration).
    pub name: String,
    /// Strategy thresholds.
    pub strategy: StrategyConfig,
    /// Gate.
    pub gate: GateConfig,
    /// Risk.
    pub risk: RiskConfig,
    /// Exits.
    pub position: PositionConfig,
}

/// One paper account: its rules and its balance (see the module doc).
#[derive(Debug, Clone)]
pub struct Account {
    /// Index in the engine's accounts (0 = base): the `variant` tag of its records.
    pub id: u8,
    /// The rules.
    pub rules: Variant,
    /// The balance, open positions and daily limit.
    pub risk: Risk,
}

impl Account {
    /// Account `id` with a fresh balance.
    pub fn new(id: u8, rules: Variant) -> Self {
        Account { id, risk: Risk::new(rules.risk.clone()), rules }
    }
}

/// What a trader reads of its symbol when it decides.
#[derive(Debug, Clone, Copy)]
pub struct SymbolCtx<'a> {
    /// Symbol id.
    pub id: SymbolId,
    /// Symbol name.
    pub name: SymbolName,
    /// The symbol's book.
    pub book: &'a Book,
    /// Price scale (ticks).
    pub price: Option<Scale>,
    /// Quantity scale (steps).
    pub qty: Option<Scale>,
    /// The last market trade price (ticks; 0 before any).
    pub last_px: i64,
    /// The measured order latency (live), ns, in force instead of the configured one.
    pub latency_ns: Option<i64>,
}

/// A market trade as the positions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeTick {
    /// Price (ticks).
    pub px: i64,
    /// Quantity (steps).
    pub qty: i64,
    /// The buyer was the maker (a sell aggressor).
    pub buyer_is_maker: bool,
    /// Exchange time.
    pub ts_ns: i64,
}

/// One account's paper trader on one symbol.
#[derive(Debug, Clone)]
pub struct Trader {
    /// Strategy state (cooldown, burst threshold: tuned for the base account).
    pub strategy: Strategy,
    /// Risk state of the symbol.
    pub risk: SymbolRisk,
    /// Expectancy by UTC hour.
    pub hours: HourExpectancy,
    /// The open position.
    pub position: Option<Position>,
    /// Orders in flight (`orders` module doc).
    pub(crate) orders: OrderQueue,
    /// The open position's resting take profits: TP1, TP2 (`None`: not placed yet, filled, or none).
    pub(crate) tps: [Option<Resting>; 2],
    /// The open position's stop and take profits are at the exchange (their order has arrived).
    pub(crate) brackets_live: bool,
    /// Gate rejections by reason ([`GateReject::ALL`] order).
    pub gate_rejects: [u64; 6],
    /// Risk rejections by reason ([`RiskReject::ALL`] order).
    pub risk_rejects: [u64; 6],
    /// Positions opened.
    pub opened: u64,
    /// Entries that reached the exchange with no synced book deep enough to price them: not opened (fail closed).
    pub entries_unfilled: u64,
    /// Entries still in flight when the input ended: never filled.
    pub entries_unsent: u64,
    /// Orders refused because the in-flight queue was full (must stay 0).
    pub orders_refused: u64,
    /// Positions closed, by final exit reason ([`crate::types::record::ExitReason::ALL`] order).
    pub closed_by_reason: [u64; 7],
    /// Exit fills by reason (TP1 partials included).
    pub exits_by_reason: [u64; 7],
    /// Realised net PnL (fees and funding included), quote.
    pub pnl: f64,
    /// Fees paid (entries, exits, liquidation clearance), quote.
    pub fees: f64,
    /// Funding received (positive) or paid (negative), quote.
    pub funding: f64,
    /// Fills by liquidity: maker (resting take profits), taker (entries, stops, SoftStops, shutdown closes).
    pub maker_fills: u64,
    /// See `maker_fills`.
    pub taker_fills: u64,
    /// Signals (long, short) of this trader's strategy.
    pub signals: [u64; 2],
    /// A mark price has been seen on the symbol: from then on only the mark liquidates (position module doc).
    pub mark_seen: bool,
    /// Decisions kept for the real account (`venue`), when [`Trader::log_decisions`] is on; drained after each
    /// event.
    pub(crate) decisions: ArrayVec<Decision, DECISIONS_MAX>,
    /// Decisions the full log could not keep (must stay 0: the engine drains it after every event).
    pub decisions_lost: u64,
    /// Keep a decision log (the base account when a venue trades beside it).
    pub log_decisions: bool,
}

/// Decisions one event can produce on one trader, with room to spare (an entry; a close and a stop move).
pub(crate) const DECISIONS_MAX: usize = 8;

/// When a fill happens and when it was decided.
#[derive(Debug, Clone, Copy)]
struct Timing {
    ts_ns: i64,
    decided_ns: i64,
}

impl Timing {
    /// At the exchange, on the event at `ts_ns` (a resting order: no latency).
    fn now(ts_ns: i64) -> Self {
        Timing { ts_ns, decided_ns: ts_ns }
    }

    /// On the arrival of an order in flight.
    fn of(o: &InFlight) -> Self {
        Timing { ts_ns: o.arrival_ns, decided_ns: o.decided_ns }
    }

    fn latency_ns(&self) -> i64 {
        self.ts_ns - self.decided_ns
    }
}

/// A close of what is open (a stop-market order triggered, a SoftStop or shutdown close): why, by which price
/// (ticks), when.
#[derive(Debug, Clone, Copy)]
struct StopHit {
    reason: ExitReason,
    trigger: f64,
    at: Timing,
}

/// Why an entry was refused.
enum Refusal {
    Gate(GateReject),
    Risk(RiskReject),
}

impl Trader {
    /// A trader for `account` on `name`, its hour expectancy seeded from the samples of that pair.
    pub fn new(account: &Account, name: SymbolName, preload: &[HourSample]) -> Self {
        let mut hours = HourExpectancy::new(account.rules.gate.lookback_trades);
        for h in preload.iter().filter(|h| h.symbol == name && h.variant == account.id) {
            hours.push(h.hour as usize, h.pnl_pct);
        }
        Trader {
            strategy: Strategy::new(&account.rules.strategy),
            risk: SymbolRisk::default(),
            hours,
            position: None,
            orders: OrderQueue::default(),
            tps: [None; 2],
            brackets_live: false,
            gate_rejects: [0; 6],
            risk_rejects: [0; 6],
            opened: 0,
            entries_unfilled: 0,
            entries_unsent: 0,
            orders_refused: 0,
            closed_by_reason: [0; 7],
            exits_by_reason: [0; 7],
            pnl: 0.0,
            fees: 0.0,
            funding: 0.0,
            maker_fills: 0,
            taker_fills: 0,
            signals: [0; 2],
            mark_seen: false,
            decisions: ArrayVec::new(),
            decisions_lost: 0,
            log_decisions: false,
        }
    }

    /// Takes over an adopted position ([`Position::adopted`]): its take profits rest again (at the back of their
    /// queues when the book is not synced yet, as at start), its stop and take profits count as at the exchange, its
    /// notional as open risk.
    pub(crate) fn adopt(&mut self, account: &mut Account, pos: Position, book: &Book) {
        let cfg = &account.rules.position;
        let sell = pos.side == Side::Long;
        let tp1_qty = ((pos.qty as f64 * cfg.tp1_fraction).round() as i64).clamp(1, pos.qty);
        let tp2_qty = (pos.qty - tp1_qty).min(pos.remaining);
        let tp1_left = if pos.tp1_done { 0 } else { pos.remaining - tp2_qty };
        self.tps[0] = (tp1_left > 0).then(|| Resting::join(pos.tp1, tp1_left, sell, book));
        self.tps[1] = (tp2_qty > 0).then(|| Resting::join(pos.tp2, tp2_qty, sell, book));
        self.brackets_live = true;
        account.risk.on_open(&mut self.risk, pos.notional());
        self.position = Some(pos);
    }

    /// True while the trader holds a position or has orders in flight (an entry on its way counts).
    pub fn is_active(&self) -> bool {
        self.position.is_some() || self.orders.len() > 0
    }

    /// The earliest arrival of its orders in flight, `i64::MAX` when none.
    #[inline]
    pub fn next_arrival_ns(&self) -> i64 {
        self.orders.next_arrival_ns()
    }

    /// Runs the account's strategy on a closed bar; counts the signal. Returns the bar's evaluation and the signal.
    pub fn on_bar(&mut self, account: &Account, m: &BarInputs<'_>) -> (BarEval, Option<Signal>) {
        let (ev, sig) = self.strategy.on_bar(&account.rules.strategy, m);
        if let Some(s) = &sig {
            self.signals[(s.side == Side::Short) as usize] += 1;
        }
        (ev, sig)
    }

    /// The order latency in force, ns.
    fn latency_ns(account: &Account, c: &SymbolCtx<'_>) -> i64 {
        c.latency_ns.unwrap_or((account.rules.position.order_latency_ms * 1e6).round() as i64)
    }

    /// Queues an order decided at `decided_ns`; a full queue refuses it (counted). Returns whether it was queued.
    fn send(&mut self, account: &Account, c: &SymbolCtx<'_>, decided_ns: i64, kind: OrderKind) -> bool {
        let arrival_ns = decided_ns.saturating_add(Self::latency_ns(account, c));
        let queued = self.orders.push(InFlight { arrival_ns, decided_ns, kind }).is_ok();
        self.orders_refused += u64::from(!queued);
        if queued && self.log_decisions {
            self.log(c, kind);
        }
        queued
    }

    /// The decision for the real account (the brackets are the venue's own, placed on the real fill).
    fn log(&mut self, c: &SymbolCtx<'_>, kind: OrderKind) {
        let d = match kind {
            OrderKind::Entry(e) => Decision::Entry { side: e.side, qty: e.qty, px: c.last_px },
            OrderKind::Close { reason, .. } => Decision::Close { reason },
            OrderKind::MoveStop { px } => Decision::MoveStop { px },
            OrderKind::Brackets => return,
        };
        if self.decisions.try_push(d).is_err() {
            self.decisions_lost += 1;
        }
    }

    /// Sizing → gate → risk at the decision (the event at `decided_ns` that closed the signal bar); the entry then
    /// travels to the exchange and fills on arrival ([`Trader::settle`]). The risk limits reserve its notional now.
    pub fn enter(
        &mut self,
        account: &mut Account,
        next_seq: &mut u64,
        c: &SymbolCtx<'_>,
        signal: &Signal,
        decided_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        match self.plan(account, c, signal) {
            Ok(order) => {
                if self.send(account, c, decided_ns, OrderKind::Entry(order)) {
                    account.risk.on_open(&mut self.risk, order.reserved_notional);
                }
                self.settle(account, next_seq, c, decided_ns, out);
            }
            Err(Refusal::Gate(r)) => self.gate_rejects[r.index()] += 1,
            Err(Refusal::Risk(r)) => self.risk_rejects[r.index()] += 1,
        }
    }

    fn plan(&self, account: &mut Account, c: &SymbolCtx<'_>, signal: &Signal) -> Result<EntryOrder, Refusal> {
        let (Some(ps), Some(qs)) = (c.price, c.qty) else {
            return Err(Refusal::Gate(GateReject::BookMissing));
        };
        let (tick_value, step_value) = (ps.to_f64(1), qs.to_f64(1));
        let price_quote = signal.price as f64 * tick_value;
        let qty_base = account.risk.size(price_quote, signal.features.confidence);
        let qty = (qty_base / step_value).floor() as i64;
        if qty <= 0 {
            return Err(Refusal::Risk(RiskReject::SizeTooSmall));
        }
        let gate = gate::check(&account.rules.gate, c.book, &self.hours, signal.side, qty, signal.ts_ns)
            .map_err(Refusal::Gate)?;
        let (vwap, filled) = gate::walk(c.book, signal.side == Side::Long, qty);
        if filled < qty || vwap <= 0.0 {
            return Err(Refusal::Gate(GateReject::Slippage));
        }
        let notional = vwap * tick_value * qty as f64 * step_value;
        account.risk.check(&self.risk, notional, signal.ts_ns).map_err(Refusal::Risk)?;
        Ok(EntryOrder {
            side: signal.side,
            qty,
            bar_ts_ns: signal.ts_ns,
            reserved_notional: notional,
            gate,
            features: signal.features,
            tick_value,
            step_value,
        })
    }

    /// Executes, in arrival order, every order in flight that has reached the exchange by `ts_ns`, against the
    /// market as the events before `ts_ns` left it (the engine calls this before applying the event at `ts_ns`).
    pub fn settle(
        &mut self,
        account: &mut Account,
        next_seq: &mut u64,
        c: &SymbolCtx<'_>,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        // Bounded: each pass takes one order out; an order executed here queues at most one more (the brackets
        // after an entry), and the queue holds at most IN_FLIGHT_MAX.
        for _ in 0..2 * IN_FLIGHT_MAX {
            let Some(o) = self.orders.pop_due(ts_ns) else { return };
            match o.kind {
                OrderKind::Entry(e) => self.fill_entry(account, next_seq, c, &o, &e, out),
                OrderKind::Close { reason, trigger_px } => {
                    self.close_at_arrival(account, c, &o, reason, trigger_px, out)
                }
                OrderKind::MoveStop { px } => self.move_stop(account, c, &o, px, out),
                OrderKind::Brackets => self.place_brackets(account, c, &o, out),
            }
        }
    }

    /// The entry reaches the exchange: a taker walk of the freshest book (fail closed without one).
    fn fill_entry(
        &mut self,
        account: &mut Account,
        next_seq: &mut u64,
        c: &SymbolCtx<'_>,
        o: &InFlight,
        e: &EntryOrder,
        out: &mut impl FnMut(Record),
    ) {
        let buy = e.side == Side::Long;
        let (vwap, filled) = if c.book.is_synced() { gate::walk(c.book, buy, e.qty) } else { (0.0, 0) };
        if filled < e.qty || vwap <= 0.0 {
            self.entries_unfilled += 1;
            account.risk.on_cancel(&mut self.risk);
            return;
        }
        *next_seq += 1;
        // The freshest touch: the first level the fill walk may take (the book's top as clipped by newer tickers and
        // trades, compute/market/touch.rs), so the realised slippage is measured against the market as it stood.
        let touch = gate::walk(c.book, buy, 1).0;
        let latency_ns = o.arrival_ns - o.decided_ns;
        let entry = Entry {
            seq: *next_seq,
            side: e.side,
            ts_ns: o.decided_ns,
            bar_ts_ns: e.bar_ts_ns,
            fill_ts_ns: o.arrival_ns,
            latency_ns,
            px: vwap,
            qty: e.qty,
            touch,
            expected_slippage_bps: e.gate.expected_slippage_bps,
            regime: e.features.regime,
            confidence: e.features.confidence,
            tick_value: e.tick_value,
            step_value: e.step_value,
        };
        let rules = &account.rules;
        let pos = Position::open(&rules.position, rules.risk.stop_pct, rules.risk.leverage, &entry);
        account.risk.resize_open(&mut self.risk, pos.notional());
        account.risk.on_pnl(-pos.fees, o.arrival_ns);
        self.opened += 1;
        self.pnl -= pos.fees;
        self.fees += pos.fees;
        self.taker_fills += 1;
        let (symbol, variant) = (c.id, account.id);
        out(Record::Opened { symbol, variant, name: c.name, pos, features: e.features, gate: e.gate });
        out(Record::Fill {
            symbol,
            variant,
            seq: pos.seq,
            ts_ns: o.arrival_ns,
            decision_ts_ns: o.decided_ns,
            kind: FillKind::Entry,
            liquidity: Liquidity::Taker,
            buy,
            qty: e.qty,
            px: vwap,
            trigger_px: Some(touch),
            latency_ns,
            fee: pos.fees,
            pnl: -pos.fees,
        });
        self.position = Some(pos);
        // The fill report takes one latency back, the stop and take profits one more to the exchange.
        self.send(account, c, o.arrival_ns.saturating_add(Self::latency_ns(account, c)), OrderKind::Brackets);
    }

    /// The stop and take profits reach the exchange: the take profits join their queues (or cross at once), the
    /// stop rests (or triggers at once if the last trade is already past it).
    fn place_brackets(&mut self, account: &mut Account, c: &SymbolCtx<'_>, o: &InFlight, out: &mut impl FnMut(Record)) {
        let Some(mut pos) = self.position else { return };
        let cfg = &account.rules.position;
        let sell = pos.side == Side::Long;
        let tp1_qty = ((pos.qty as f64 * cfg.tp1_fraction).round() as i64).clamp(1, pos.qty);
        let tp2_qty = pos.qty - tp1_qty;
        self.tps[0] = Some(Resting::join(pos.tp1, tp1_qty, sell, c.book));
        self.tps[1] = (tp2_qty > 0).then(|| Resting::join(pos.tp2, tp2_qty, sell, c.book));
        self.brackets_live = true;
        // The freshest touch on the side the take profits would take (the book's top as clipped by newer tickers and
        // trades): a sell limit at or below the best bid crosses, a buy limit at or above the best ask.
        let first = if c.book.is_synced() { gate::walk(c.book, !sell, 1).0 } else { 0.0 };
        let touch = (first > 0.0).then_some(first as i64);
        for i in 0..2 {
            let Some(r) = self.tps[i] else { continue };
            if r.crosses(touch) {
                let q = r.qty;
                self.tps[i] = None;
                self.tp_filled(&mut pos, i, q, r.px, Liquidity::Taker, Timing::of(o), account, c, out);
            }
        }
        self.after_stop_change(&mut pos, account, c, Timing::of(o), out);
        self.store(pos);
    }

    /// A take profit filled `q` at its limit `px`: books it (`tp` 0 = TP1, 1 = TP2).
    #[allow(clippy::too_many_arguments)]
    fn tp_filled(
        &mut self,
        pos: &mut Position,
        tp: usize,
        q: i64,
        px: i64,
        liquidity: Liquidity,
        at: Timing,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        out: &mut impl FnMut(Record),
    ) {
        let reason = if tp == 0 { ExitReason::Tp1 } else { ExitReason::Tp2 };
        if tp == 0 && self.tps[0].is_none_or(|r| r.qty == 0) {
            pos.tp1_done = true;
        }
        let px = px as f64;
        let (ts_ns, decided_ns) = (at.ts_ns, at.decided_ns);
        let order = ExitOrder { reason, qty: q, px, liquidity, trigger_px: Some(px), ts_ns, decided_ns };
        let f = pos.exit(&account.rules.position, &order, at.latency_ns());
        self.book_exit(account, c, pos, &f, out);
    }

    /// A stop-market exit triggered at `trigger` (ticks) at `ts_ns`: a taker walk of the freshest book, never better
    /// than the trigger (module doc of `position`).
    fn stop_out(
        &mut self,
        pos: &mut Position,
        hit: StopHit,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        out: &mut impl FnMut(Record),
    ) {
        let px = capped_exit_price(c.book, pos, pos.remaining, hit.trigger);
        self.close_all(pos, px, hit, account, c, out);
    }

    /// Closes what is open as a taker at `px` (ticks) for `hit` (its reason, reference price and times).
    fn close_all(
        &mut self,
        pos: &mut Position,
        px: f64,
        hit: StopHit,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        out: &mut impl FnMut(Record),
    ) {
        let order = ExitOrder {
            reason: hit.reason,
            qty: pos.remaining,
            px,
            liquidity: Liquidity::Taker,
            trigger_px: Some(hit.trigger),
            ts_ns: hit.at.ts_ns,
            decided_ns: hit.at.decided_ns,
        };
        let f = pos.exit(&account.rules.position, &order, hit.at.latency_ns());
        self.book_exit(account, c, pos, &f, out);
    }

    /// A SoftStop close reaches the exchange: a taker walk of the book as it stands, never better than the price
    /// the decision was made at.
    fn close_at_arrival(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        o: &InFlight,
        reason: ExitReason,
        trigger_px: f64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position else { return };
        self.stop_out(&mut pos, StopHit { reason, trigger: trigger_px, at: Timing::of(o) }, account, c, out);
        self.store(pos);
    }

    /// The breakeven move reaches the exchange: the stop moves (never backwards); it triggers at once if the last
    /// trade is already past it.
    fn move_stop(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        o: &InFlight,
        px: f64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position else { return };
        pos.move_stop(px);
        out(Record::StopMoved { symbol: c.id, variant: account.id, name: c.name, stop: pos.stop });
        self.after_stop_change(&mut pos, account, c, Timing::of(o), out);
        self.store(pos);
    }

    /// A stop that arrives (or moves) past the last trade triggers at once, at that trade's price or worse.
    fn after_stop_change(
        &mut self,
        pos: &mut Position,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        at: Timing,
        out: &mut impl FnMut(Record),
    ) {
        let last = c.last_px as f64;
        if pos.remaining > 0
            && last > 0.0
            && account.rules.position.stop_trigger == StopTrigger::Last
            && let Some(reason) = pos.stop_hit(last)
        {
            self.stop_out(pos, StopHit { reason, trigger: last, at }, account, c, out);
        }
    }

    /// A market trade: MFE/MAE, the liquidation fallback, the stop (last-price trigger), the take profits' queues,
    /// then the bot's decisions (SoftStop close, breakeven move), which travel with the order latency.
    pub fn on_trade(
        &mut self,
        account: &mut Account,
        next_seq: &mut u64,
        c: &SymbolCtx<'_>,
        t: TradeTick,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position else { return };
        let (px, cfg) = (t.px as f64, &account.rules.position);
        pos.observe(px, t.ts_ns);
        let limit_hits = account.risk.daily_limit_hits;
        if !self.mark_seen
            && let Some(f) = pos.liquidate_by_price(cfg, px, account.rules.risk.leverage, t.ts_ns)
        {
            self.book_exit(account, c, &pos, &f, out);
        } else if self.brackets_live
            && cfg.stop_trigger == StopTrigger::Last
            && let Some(reason) = pos.stop_hit(px)
        {
            self.stop_out(&mut pos, StopHit { reason, trigger: px, at: Timing::now(t.ts_ns) }, account, c, out);
        } else if self.brackets_live {
            self.take_profits(&mut pos, t, account, c, out);
        }
        if pos.remaining > 0 {
            self.decide(&pos, account, c, t);
        }
        self.after(account, limit_hits, t.ts_ns, out);
        self.store(pos);
        self.settle(account, next_seq, c, t.ts_ns, out);
    }

    /// The take profits' queues on a trade.
    fn take_profits(
        &mut self,
        pos: &mut Position,
        t: TradeTick,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        out: &mut impl FnMut(Record),
    ) {
        for i in 0..2 {
            let Some(mut r) = self.tps[i] else { continue };
            let q = r.on_trade(t.px, t.qty, t.buyer_is_maker);
            self.tps[i] = (r.qty > 0).then_some(r);
            if q > 0 && pos.remaining > 0 {
                self.tp_filled(pos, i, q, r.px, Liquidity::Maker, Timing::now(t.ts_ns), account, c, out);
            }
        }
    }

    /// The bot's own decisions on a trade: a SoftStop close, the breakeven move (sent with the order latency).
    fn decide(&mut self, pos: &Position, account: &Account, c: &SymbolCtx<'_>, t: TradeTick) {
        let (px, cfg) = (t.px as f64, &account.rules.position);
        if !self.orders.has(|k| matches!(k, OrderKind::Close { .. })) && pos.soft_stop_due(cfg, px, t.ts_ns) {
            let kind = OrderKind::Close { reason: ExitReason::SoftStop, trigger_px: px };
            self.send(account, c, t.ts_ns, kind);
        }
        if !self.orders.has(|k| matches!(k, OrderKind::MoveStop { .. }))
            && let Some(be) = pos.breakeven_due(cfg, px, t.ts_ns, 1.0)
        {
            self.send(account, c, t.ts_ns, OrderKind::MoveStop { px: be });
        }
    }

    /// A daily-limit record if this step's PnL hit the limit.
    fn after(&self, account: &Account, limit_hits: u64, ts_ns: i64, out: &mut impl FnMut(Record)) {
        if account.risk.daily_limit_hits > limit_hits {
            out(Record::DailyLimitHit { ts_ns, balance: account.risk.balance });
        }
    }

    /// Keeps `pos` as the open position, or clears the position's orders once it is closed.
    fn store(&mut self, pos: Position) {
        if pos.remaining > 0 {
            self.position = Some(pos);
        } else {
            self.position = None;
            self.tps = [None; 2];
            self.brackets_live = false;
            self.orders.clear();
        }
    }

    /// The book changed: the take profits' queues can only shorten to what rests at their price.
    pub fn on_depth(&mut self, c: &SymbolCtx<'_>) {
        for r in self.tps.iter_mut().flatten() {
            r.on_depth(c.book);
        }
    }

    /// Feeds a mark price (ticks) at exchange time `ts_ns`: the liquidation trigger of the open position, and the
    /// stop's when `stop_trigger` is `mark`.
    pub fn on_mark(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        mark: f64,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        if mark <= 0.0 {
            return;
        }
        self.mark_seen = true;
        let Some(mut pos) = self.position else { return };
        let limit_hits = account.risk.daily_limit_hits;
        let cfg = &account.rules.position;
        if let Some(f) = pos.on_mark(cfg, mark, account.rules.risk.leverage, ts_ns) {
            self.book_exit(account, c, &pos, &f, out);
        } else if self.brackets_live
            && cfg.stop_trigger == StopTrigger::Mark
            && let Some(reason) = pos.stop_hit(mark)
        {
            self.stop_out(&mut pos, StopHit { reason, trigger: mark, at: Timing::now(ts_ns) }, account, c, out);
        }
        self.after(account, limit_hits, ts_ns, out);
        self.store(pos);
    }

    /// Funding at the funding time `ts_ns` with `rate` at `mark` (ticks): a position filled before it pays or
    /// receives `qty × mark × rate`.
    pub fn on_funding(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        rate: f64,
        mark: f64,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position.filter(|p| p.entry_fill_ts_ns < ts_ns) else { return };
        let limit_hits = account.risk.daily_limit_hits;
        if let Some(f) = pos.fund(rate, mark, ts_ns) {
            self.book_exit(account, c, &pos, &f, out);
        }
        self.after(account, limit_hits, ts_ns, out);
        self.store(pos);
    }

    /// End of input: the open position closes at the book (or `last`), reason `Shutdown`; entries still in flight
    /// never fill (counted) and release their reservation.
    pub fn close_out(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        last: f64,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position else {
            let unsent = self.orders.clear();
            self.entries_unsent += unsent as u64;
            for _ in 0..unsent {
                account.risk.on_cancel(&mut self.risk);
            }
            return;
        };
        let px = exit_price(c.book, pos.side == Side::Short, pos.remaining, last);
        let hit = StopHit { reason: ExitReason::Shutdown, trigger: last, at: Timing::now(ts_ns) };
        self.close_all(&mut pos, px, hit, account, c, out);
        self.store(pos);
    }

    /// Books one fill of `pos` (already applied to it): PnL, counters, records; on the last fill the close.
    fn book_exit(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        pos: &Position,
        f: &ExitFill,
        out: &mut impl FnMut(Record),
    ) {
        let (symbol, variant, ts_ns) = (c.id, account.id, f.ts_ns);
        account.risk.on_pnl(f.pnl, ts_ns);
        self.pnl += f.pnl;
        self.fees += f.fee;
        if let FillKind::Funding { .. } = f.kind {
            self.funding += f.pnl;
        }
        if let Some(r) = f.kind.exit_reason() {
            self.exits_by_reason[r.index()] += 1;
        }
        self.maker_fills += u64::from(f.liquidity == Liquidity::Maker);
        self.taker_fills += u64::from(f.liquidity == Liquidity::Taker);
        out(Record::Fill {
            symbol,
            variant,
            seq: pos.seq,
            ts_ns,
            decision_ts_ns: f.decided_ns,
            kind: f.kind,
            liquidity: f.liquidity,
            buy: pos.side == Side::Short,
            qty: f.qty,
            px: f.px,
            trigger_px: f.trigger_px,
            latency_ns: f.latency_ns,
            fee: f.fee,
            pnl: f.pnl,
        });
        if f.closed {
            let reason = pos.exit_reason.unwrap_or(ExitReason::Shutdown);
            account.risk.on_close(&mut self.risk, pos.pnl, ts_ns);
            self.closed_by_reason[reason.index()] += 1;
            let hour = HourExpectancy::hour_of(pos.entry_ts_ns);
            let pct = pos.pnl_pct();
            self.hours.push(hour, pct);
            out(Record::HourPnl { symbol, variant, hour: hour as u8, pnl_pct: pct });
            out(Record::Closed { symbol, variant, name: c.name, pos: *pos });
        }
    }
}

/// Exit fill price: a taker walk of the book when it is synced and deep enough, else the observed price.
fn exit_price(book: &Book, buy: bool, qty: i64, observed: f64) -> f64 {
    if book.is_synced() {
        let (px, filled) = gate::walk(book, buy, qty);
        if filled == qty && px > 0.0 {
            return px;
        }
    }
    observed
}

/// A stop-market or SoftStop exit price: the taker walk, never better than `trigger` (ticks).
fn capped_exit_price(book: &Book, pos: &Position, qty: i64, trigger: f64) -> f64 {
    let px = exit_price(book, pos.side == Side::Short, qty, trigger);
    if pos.side == Side::Long { px.min(trigger) } else { px.max(trigger) }
}

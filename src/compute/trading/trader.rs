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
use crate::compute::trading::position::{Entry, ExitFill, LiqTrigger, PositionConfig};
use crate::compute::trading::risk::{Risk, RiskConfig, RiskReject, SymbolRisk};
use crate::types::decimal::Scale;
use crate::types::event::SymbolId;
use crate::types::record::{ExitReason, FillKind, GatePass, HourSample, Liquidity, Position, Record, Side, Signal};
use crate::types::symbols::SymbolName;

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
    /// Gate rejections by reason ([`GateReject::ALL`] order).
    pub gate_rejects: [u64; 6],
    /// Risk rejections by reason ([`RiskReject::ALL`] order).
    pub risk_rejects: [u64; 6],
    /// Positions opened.
    pub opened: u64,
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
}

/// Why an entry was refused.
enum Refusal {
    Gate(GateReject),
    Risk(RiskReject),
}

/// An entry that passed sizing, the gate, the fill walk and risk.
struct Plan {
    qty: i64,
    vwap: f64,
    notional: f64,
    tick_value: f64,
    step_value: f64,
    gate: GatePass,
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
            gate_rejects: [0; 6],
            risk_rejects: [0; 6],
            opened: 0,
            closed_by_reason: [0; 7],
            exits_by_reason: [0; 7],
            pnl: 0.0,
            fees: 0.0,
            funding: 0.0,
            maker_fills: 0,
            taker_fills: 0,
            signals: [0; 2],
            mark_seen: false,
        }
    }

    /// Runs the account's strategy on a closed bar; counts the signal. Returns the bar's evaluation and the signal.
    pub fn on_bar(&mut self, account: &Account, m: &BarInputs<'_>) -> (BarEval, Option<Signal>) {
        let (ev, sig) = self.strategy.on_bar(&account.rules.strategy, m);
        if let Some(s) = &sig {
            self.signals[(s.side == Side::Short) as usize] += 1;
        }
        (ev, sig)
    }

    /// Sizing → gate → risk → entry fill → position on `signal`; `next_seq` numbers the positions of the run.
    pub fn enter(
        &mut self,
        account: &mut Account,
        next_seq: &mut u64,
        c: &SymbolCtx<'_>,
        signal: &Signal,
        out: &mut impl FnMut(Record),
    ) {
        match self.plan(account, c, signal) {
            Ok(plan) => {
                *next_seq += 1;
                self.open(account, *next_seq, c, signal, &plan, out);
            }
            Err(Refusal::Gate(r)) => self.gate_rejects[r.index()] += 1,
            Err(Refusal::Risk(r)) => self.risk_rejects[r.index()] += 1,
        }
    }

    fn plan(&self, account: &mut Account, c: &SymbolCtx<'_>, signal: &Signal) -> Result<Plan, Refusal> {
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
        Ok(Plan { qty, vwap, notional, tick_value, step_value, gate })
    }

    fn open(
        &mut self,
        account: &mut Account,
        seq: u64,
        c: &SymbolCtx<'_>,
        signal: &Signal,
        plan: &Plan,
        out: &mut impl FnMut(Record),
    ) {
        let buy = signal.side == Side::Long;
        // The freshest touch: the first level the fill walk may take (the book's top as clipped by newer tickers and
        // trades, compute/market/touch.rs), so the realised slippage is measured against the market as it stood.
        let touch = gate::walk(c.book, buy, 1).0;
        let entry = Entry {
            seq,
            side: signal.side,
            ts_ns: signal.ts_ns,
            px: plan.vwap,
            qty: plan.qty,
            touch,
            expected_slippage_bps: plan.gate.expected_slippage_bps,
            regime: signal.features.regime,
            confidence: signal.features.confidence,
            tick_value: plan.tick_value,
            step_value: plan.step_value,
        };
        let rules = &account.rules;
        let pos = Position::open(&rules.position, rules.risk.stop_pct, rules.risk.leverage, &entry);
        account.risk.on_open(&mut self.risk, plan.notional);
        account.risk.on_pnl(-pos.fees, signal.ts_ns);
        self.opened += 1;
        self.pnl -= pos.fees;
        let (symbol, variant) = (c.id, account.id);
        out(Record::Opened { symbol, variant, name: c.name, pos, features: signal.features, gate: plan.gate });
        out(Record::Fill {
            symbol,
            variant,
            seq: pos.seq,
            ts_ns: signal.ts_ns,
            decision_ts_ns: signal.ts_ns,
            kind: FillKind::Entry,
            liquidity: Liquidity::Taker,
            trigger_px: Some(touch),
            latency_ns: 0,
            buy,
            qty: plan.qty,
            px: plan.vwap,
            fee: pos.fees,
            pnl: -pos.fees,
        });
        self.position = Some(pos);
    }

    /// Feeds an exit-side price to the open position and books its exits.
    pub fn manage(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        px: f64,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position else { return };
        let tick = 1.0;
        let (moved_before, limit_hits) = (pos.be_moved, account.risk.daily_limit_hits);
        let buy = pos.side == Side::Short;
        let mut fills: [Option<ExitFill>; 3] = [None; 3];
        let mut n = 0;
        let mut fill = |q: i64| exit_price(c.book, buy, q, px);
        let liq = LiqTrigger { leverage: account.rules.risk.leverage, by_price: !self.mark_seen };
        pos.on_price(&account.rules.position, px, tick, ts_ns, liq, &mut fill, &mut |f| {
            if n < fills.len() {
                fills[n] = Some(f);
                n += 1;
            }
        });
        for f in fills.into_iter().take(n).flatten() {
            self.book_exit(account, c, &pos, &f, out);
        }
        let (symbol, variant) = (c.id, account.id);
        if pos.be_moved && !moved_before && pos.remaining > 0 {
            out(Record::StopMoved { symbol, variant, name: c.name, stop: pos.stop });
        }
        if account.risk.daily_limit_hits > limit_hits {
            out(Record::DailyLimitHit { ts_ns, balance: account.risk.balance });
        }
        self.position = if pos.remaining > 0 { Some(pos) } else { None };
    }

    /// Feeds a mark price (ticks) at exchange time `ts_ns`: the liquidation trigger of the open position.
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
        let Some(f) = pos.on_mark(&account.rules.position, mark, account.rules.risk.leverage, ts_ns) else { return };
        self.book_exit(account, c, &pos, &f, out);
        if account.risk.daily_limit_hits > limit_hits {
            out(Record::DailyLimitHit { ts_ns, balance: account.risk.balance });
        }
        self.position = if pos.remaining > 0 { Some(pos) } else { None };
    }

    /// Closes the open position at `last` (or a book walk), reason `Shutdown`.
    pub fn close_out(
        &mut self,
        account: &mut Account,
        c: &SymbolCtx<'_>,
        last: f64,
        ts_ns: i64,
        out: &mut impl FnMut(Record),
    ) {
        let Some(mut pos) = self.position.take() else { return };
        let buy = pos.side == Side::Short;
        let mut fill = |q: i64| exit_price(c.book, buy, q, last);
        if let Some(f) = pos.close_all(&account.rules.position, ts_ns, &mut fill) {
            self.book_exit(account, c, &pos, &f, out);
        }
    }

    /// Books one exit fill of `pos` (already applied to it): PnL, counters, records; on the last fill the close.
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
        self.exits_by_reason[f.reason.index()] += 1;
        out(Record::Fill {
            symbol,
            variant,
            seq: pos.seq,
            ts_ns,
            decision_ts_ns: ts_ns,
            kind: FillKind::Exit(f.reason),
            liquidity: if f.reason == ExitReason::Liquidation { Liquidity::None } else { Liquidity::Taker },
            trigger_px: None,
            latency_ns: 0,
            buy: pos.side == Side::Short,
            qty: f.qty,
            px: f.px,
            fee: f.fee,
            pnl: f.pnl,
        });
        if f.closed {
            account.risk.on_close(&mut self.risk, pos.pnl, ts_ns);
            self.closed_by_reason[f.reason.index()] += 1;
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

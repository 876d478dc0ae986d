//! Paper positions: entry, every exit, funding, MFE/MAE. Exchange time only.
//!
//! Levels for a long (a short mirrors every sign), from the entry VWAP `E` and the stop distance `s` % (risk):
//! - **Stop** at `E × (1 − s/100)`; **TP1** at `E × (1 + tp1_rr × s/100)` closes `tp1_fraction` (50 %) of the
//!   quantity; **TP2** at `E × (1 + tp2_rr × s/100)` closes the rest.
//! - **Breakeven + alpha**: after TP1, once the position is at least `break_even_min_hold_secs` old and the price
//!   is at least `break_even_trigger_rr` × risk in profit, the stop moves to `E + profit_lock_ticks` ticks (never
//!   backwards). A stop hit after that move exits as `Breakeven`.
//! - **SoftStop**: at least `soft_stop_seconds` after entry, a price `soft_stop_drawdown_pct` % or more against
//!   the entry closes everything.
//! - **Liquidation** (isolated margin, one position, leverage `L`, maintenance margin rate `m`): the equity
//!   `E·q/L + q·(P − E)` meets the maintenance margin `m·q·P` at `P_long = E × (1 − 1/L) / (1 − m)` and
//!   `P_short = E × (1 + 1/L) / (1 + m)`. With L = 50 and m = 0.004 a long is liquidated 1.606 % below entry.
//!   As on Binance ("Liquidation occurs when the Mark Price hits the liquidation price of a position",
//!   <https://www.binance.com/en/support/faq/360033525371>, Binance Futures Liquidation Protocols), the trigger is
//!   the **mark price** (`markPrice` stream, fed by [`Position::on_mark`]), not the last trade or the touch. The
//!   loss is the position's whole isolated margin, `E·q/L` for the quantity still open, and no more: an isolated
//!   position cannot lose more than its margin. The liquidation (insurance) clearance fee,
//!   `liquidation_fee_rate` × `q` × mark (capped at the margin), is taken out of that margin and recorded as the
//!   fill's fee, so the fill's PnL is exactly −margin: the same page charges "a liquidation fee on the amount
//!   being liquidated" from what is left of the margin, the insurance fund covering a shortfall; the rate is per symbol, the `liquidationFee` field of `GET /fapi/v1/exchangeInfo`
//!   (<https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information>);
//!   the default 0.012 is BTCUSDT's in the real response bundled as `tests/data/BINANCE_FUTURES.0.txt`
//!   (2021-07, from cryptofeed's sample data; ETHUSDT and most others 0.005). The fill is recorded as
//!   `Liquidation` at the mark price that triggered it.
//! - Maintenance margin: Binance tiers it by notional (`GET /fapi/v1/leverageBracket`); no real bracket response
//!   is bundled (the shared docs examples hold none), so the configured `maintenance_margin_rate` is used for
//!   every notional (0.004 = Binance's first BTCUSDT bracket, notional up to 50 000 USDT).
//! - Without any mark price yet (a recording without the `markPrice` stream), the liquidation is triggered by a
//!   trade at or past the liquidation price, that price standing in for the mark; the loss is the same (the whole
//!   margin, the clearance fee out of it). Once a symbol has had a mark price, trades no longer liquidate.
//! - **Orders** (`compute::trading::orders`, `trader`): the entry is a market order that travels with the order
//!   latency and walks the freshest book on arrival (taker). The stop and the take profits are sent on the fill
//!   and rest at the exchange two latencies later. Checks on each market trade, in order: liquidation (before any
//!   mark price), the stop, the take profits' queues, then the bot's decisions (SoftStop close, breakeven move),
//!   which travel with the latency; on each mark price: liquidation, and the stop when `stop_trigger` is `mark`.
//! - **Stops** (stop loss, breakeven): stop-market orders resting at the exchange, triggered by the last trade
//!   (Binance's default `workingType`, CONTRACT_PRICE) or the mark price (MARK_PRICE) at or past the level, with no
//!   latency. They fill as a taker walk of the freshest book, at the triggering price or worse, never better: the
//!   book is rebuilt from diffs that can lag the trades, so a walk that would sell above the triggering trade (or
//!   buy below it) is capped at that price. A SoftStop close is the bot's market order, decided on a trade and
//!   filled on arrival, capped the same way at the price it was decided at.
//! - **Take profits**: TP1/TP2 are reduce-only limit orders, maker fee, filled by trades with a queue position
//!   (`orders` module doc); the breakeven move needs TP1 filled completely.
//! - **Fees**: `taker_fee` on the entry, stops, SoftStop and shutdown closes, `maker_fee` on resting take profits,
//!   each on its fill's notional. PnL = (exit − entry) × quantity − fees + funding (a liquidation: see above).
//! - **Funding**: at each funding time (`T` of the `markPrice` stream) a position filled before it pays (a long,
//!   positive rate) or receives `qty × mark × r` at the last mark and rate announced before `T`; recorded as a
//!   `Funding` fill, included in PnL, not in fees.
//! - **Times**: `entry_ts_ns` is the decision (the trade that closed the signal bar), `bar_ts_ns` the bar's last
//!   trade, `entry_fill_ts_ns` the fill; SoftStop and breakeven ages count from the fill; `exit_ts_ns` is the
//!   decision or trigger of the last exit.
//! - **MFE / MAE**: the largest favourable and adverse excursion of the last trade price from the entry, in % of
//!   the entry (both ≥ 0), with the times of each.
//! - On shutdown (end of a replay) open positions are closed at the book (or the last price) with reason
//!   `Shutdown`, so every position in the database has a complete PnL; entries still in flight never fill.

use crate::types::record::{ExitReason, FillKind, Liquidity, Position, Regime, Side};

/// The price that triggers a stop-market order (Binance's `workingType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopTrigger {
    /// The last trade price (`CONTRACT_PRICE`).
    Last,
    /// The mark price (`MARK_PRICE`).
    Mark,
}

/// Position management parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionConfig {
    /// TP1 distance in multiples of the stop distance.
    pub tp1_rr: f64,
    /// Share of the quantity closed at TP1.
    pub tp1_fraction: f64,
    /// TP2 distance in multiples of the stop distance.
    pub tp2_rr: f64,
    /// SoftStop: minimum age, seconds.
    pub soft_stop_seconds: u32,
    /// SoftStop: adverse move, %.
    pub soft_stop_drawdown_pct: f64,
    /// Breakeven move: minimum age, seconds.
    pub break_even_min_hold_secs: u32,
    /// Breakeven move: profit in multiples of the stop distance.
    pub break_even_trigger_rr: f64,
    /// Breakeven "+ alpha", ticks.
    pub profit_lock_ticks: i64,
    /// Taker fee rate (market entries, triggered stops, SoftStop and shutdown closes). Default 0.0005 (0.05 %):
    /// Binance's base (Regular) tier for USDⓈ-M futures, 0.02 % maker / 0.05 % taker
    /// (<https://www.binance.com/en/support/faq/360033544231>, Binance Futures Fee Structure). Paying fees in BNB
    /// takes 10 % off (0.045 % taker, 0.018 % maker): set 0.00045 and 0.00018 for an account that does.
    pub taker_fee: f64,
    /// Maker fee rate (the resting TP1/TP2 limit orders). Default 0.0002 (0.02 %), the same tier; never above
    /// `taker_fee`.
    pub maker_fee: f64,
    /// Order latency, ms: a decision at exchange time `t` reaches the exchange at `t + order_latency_ms` and fills
    /// against the market as it stands then (`compute::trading::orders`). Default 5 ms, one way (see that module).
    /// Live paper runs use the measured REST round trip / 2 once link health has one.
    pub order_latency_ms: f64,
    /// The price that triggers the stop-market orders (stop loss, breakeven stop): `last` (the last trade,
    /// Binance's default `workingType` CONTRACT_PRICE) or `mark` (`workingType` MARK_PRICE).
    pub stop_trigger: StopTrigger,
    /// Maintenance margin rate for the liquidation price.
    pub maintenance_margin_rate: f64,
    /// Liquidation clearance fee rate, charged on the liquidated notional at the mark price (module doc).
    pub liquidation_fee_rate: f64,
}

impl Default for PositionConfig {
    fn default() -> Self {
        PositionConfig {
            tp1_rr: 1.5,
            tp1_fraction: 0.5,
            tp2_rr: 3.0,
            soft_stop_seconds: 45,
            soft_stop_drawdown_pct: 0.15,
            break_even_min_hold_secs: 45,
            break_even_trigger_rr: 1.2,
            profit_lock_ticks: 1,
            taker_fee: 0.0005,
            maker_fee: 0.0002,
            order_latency_ms: 5.0,
            stop_trigger: StopTrigger::Last,
            maintenance_margin_rate: 0.004,
            liquidation_fee_rate: 0.012,
        }
    }
}

// Bounds of `[position]`.
crate::bounds!(PositionConfig as q {
    tp1_rr: [0.01, 100.0] "0.01 to 100";
    tp1_fraction: [0.0, 1.0] "0 to 1";
    tp2_rr: [q.tp1_rr, 100.0] "tp1_rr to 100";
    soft_stop_seconds: any;
    soft_stop_drawdown_pct: [0.0, 100.0] "0 to 100 (%)";
    break_even_min_hold_secs: any;
    break_even_trigger_rr: [0.0, 100.0] "0 to 100";
    profit_lock_ticks: [0, 1_000_000] "0 to 1000000 ticks";
    taker_fee: [0.0, 0.01] "0 to 0.01";
    maker_fee: [0.0, q.taker_fee] "0 to taker_fee";
    order_latency_ms: [0.0, 10_000.0] "0 to 10000 ms";
    stop_trigger: any;
    maintenance_margin_rate: [0.0, 0.5] "0 to 0.5";
    liquidation_fee_rate: [0.0, 0.1] "0 to 0.1";
});

/// Liquidation price (ticks) for an isolated position (see the module doc).
pub(crate) fn liquidation_price(side: Side, entry: f64, leverage: f64, mmr: f64) -> f64 {
    match side {
        Side::Long => entry * (1.0 - 1.0 / leverage) / (1.0 - mmr),
        Side::Short => entry * (1.0 + 1.0 / leverage) / (1.0 + mmr),
    }
}

/// One fill of an open position: an exit, a liquidation or a funding payment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitFill {
    /// Exit by reason, or funding.
    pub kind: FillKind,
    /// Maker, taker, or neither (liquidation, funding).
    pub liquidity: Liquidity,
    /// Quantity (steps).
    pub qty: i64,
    /// Fill price (ticks, VWAP; funding: the mark).
    pub px: f64,
    /// The order's reference price (ticks; see [`crate::types::record::Record::Fill`]).
    pub trigger_px: Option<f64>,
    /// Fee, quote.
    pub fee: f64,
    /// Net PnL of this fill, quote.
    pub pnl: f64,
    /// The position is now closed.
    pub closed: bool,
    /// Exchange time of the fill.
    pub ts_ns: i64,
    /// Exchange time of the event that produced the decision.
    pub decided_ns: i64,
    /// Order latency applied, ns.
    pub latency_ns: i64,
}

/// An exit order's execution: how much, at what price, which fee, and its times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitOrder {
    /// Why.
    pub reason: ExitReason,
    /// Quantity (steps; clamped to what is open).
    pub qty: i64,
    /// Fill price (ticks).
    pub px: f64,
    /// Maker (a resting limit) or taker.
    pub liquidity: Liquidity,
    /// The order's reference price (ticks).
    pub trigger_px: Option<f64>,
    /// Exchange time of the fill.
    pub ts_ns: i64,
    /// Exchange time of the decision.
    pub decided_ns: i64,
}

/// Everything needed to open a position.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Direction.
    pub side: Side,
    /// Exchange time of the decision (the event that closed the signal bar).
    pub ts_ns: i64,
    /// Exchange time of the signal bar's last trade.
    pub bar_ts_ns: i64,
    /// Exchange time of the fill.
    pub fill_ts_ns: i64,
    /// Order latency used, ns.
    pub latency_ns: i64,
    /// Fill VWAP (ticks).
    pub px: f64,
    /// Quantity (steps).
    pub qty: i64,
    /// Touch price at entry (ask for a long), ticks, for realised slippage.
    pub touch: f64,
    /// Expected slippage, bps.
    pub expected_slippage_bps: f64,
    /// Regime.
    pub regime: Regime,
    /// Confidence.
    pub confidence: f64,
    /// Quote value of one tick.
    pub tick_value: f64,
    /// Base units per step.
    pub step_value: f64,
}

impl Position {
    /// Opens a position (the entry fee, taker, is charged here).
    pub fn open(cfg: &PositionConfig, stop_pct: f64, leverage: f64, e: &Entry) -> Self {
        let sgn = if e.side == Side::Long { 1.0 } else { -1.0 };
        let r = e.px * stop_pct / 100.0;
        let notional = e.px * e.tick_value * e.qty as f64 * e.step_value;
        let fee = notional * cfg.taker_fee;
        let p = Position {
            seq: e.seq,
            side: e.side,
            entry_ts_ns: e.ts_ns,
            bar_ts_ns: e.bar_ts_ns,
            entry_fill_ts_ns: e.fill_ts_ns,
            latency_ns: e.latency_ns,
            entry_px: e.px,
            qty: e.qty,
            remaining: e.qty,
            stop: e.px - sgn * r,
            tp1: e.px + sgn * r * cfg.tp1_rr,
            tp2: e.px + sgn * r * cfg.tp2_rr,
            liq: liquidation_price(e.side, e.px, leverage, cfg.maintenance_margin_rate),
            risk: r,
            tp1_done: false,
            be_moved: false,
            fees: fee,
            funding: 0.0,
            pnl: -fee,
            mfe_pct: 0.0,
            mae_pct: 0.0,
            mfe_ts_ns: e.fill_ts_ns,
            mae_ts_ns: e.fill_ts_ns,
            expected_slippage_bps: e.expected_slippage_bps,
            realized_slippage_bps: if e.touch > 0.0 { sgn * (e.px - e.touch) / e.touch * 1e4 } else { 0.0 },
            regime: e.regime,
            confidence: e.confidence,
            tick_value: e.tick_value,
            step_value: e.step_value,
            exit_reason: None,
            exit_ts_ns: 0,
            exit_px: 0.0,
        };
        p.debug_check();
        p
    }

    /// The paper position of an adopted one ([`crate::types::Adoption`]), in the symbol's ticks and steps: the
    /// levels its run opened it with, the stop the exchange holds (a breakeven stop there means the move was
    /// made), what its fills closed, fees, funding and PnL so far. Its excursions start again from zero.
    pub fn adopted(a: &crate::types::Adoption, tick_value: f64, step_value: f64) -> Self {
        let p = &a.paper;
        let (px, steps) = (|q: f64| q / tick_value, |q: f64| (q / step_value).round() as i64);
        let entry_px = px(p.entry_price);
        let qty = steps(p.qty).max(1);
        let be = a.real.stop.filter(|s| s.leg == crate::types::Leg::Breakeven);
        let ms = |t: i64| t.saturating_mul(1_000_000);
        let pos = Position {
            seq: a.seq,
            side: p.side,
            entry_ts_ns: ms(p.entry_ts_ms),
            bar_ts_ns: ms(p.bar_ts_ms),
            entry_fill_ts_ns: ms(p.entry_fill_ts_ms),
            latency_ns: (p.latency_ms * 1e6) as i64,
            entry_px,
            qty,
            remaining: (qty - steps(p.exited_qty)).clamp(1, qty),
            stop: be.map_or(px(p.initial_stop), |s| px(s.trigger)),
            tp1: px(p.tp1),
            tp2: px(p.tp2),
            liq: px(p.liq),
            risk: (entry_px - px(p.initial_stop)).abs(),
            tp1_done: p.tp1_done,
            be_moved: be.is_some() && p.tp1_done,
            fees: p.fees.max(0.0),
            funding: p.funding,
            pnl: p.pnl,
            mfe_pct: 0.0,
            mae_pct: 0.0,
            mfe_ts_ns: ms(p.entry_fill_ts_ms),
            mae_ts_ns: ms(p.entry_fill_ts_ms),
            expected_slippage_bps: p.expected_slippage_bps,
            realized_slippage_bps: p.realized_slippage_bps,
            regime: p.regime,
            confidence: p.confidence,
            tick_value,
            step_value,
            exit_reason: None,
            exit_ts_ns: 0,
            exit_px: 0.0,
        };
        pos.debug_check();
        pos
    }

    /// The position's invariants: a positive entry quantity, 0 ≤ remaining ≤ quantity, closed (remaining 0) exactly
    /// when an exit reason is set, non-negative fees and excursions, the breakeven move only after TP1.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if self.qty <= 0 {
            return Err("entry quantity must be positive");
        }
        if !(0..=self.qty).contains(&self.remaining) {
            return Err("remaining quantity outside 0..=quantity");
        }
        if (self.remaining == 0) != self.exit_reason.is_some() {
            return Err("closed exactly when an exit reason is set");
        }
        if !(self.mfe_pct >= 0.0 && self.mae_pct >= 0.0) {
            return Err("excursions must be non-negative");
        }
        if self.be_moved && !self.tp1_done {
            return Err("breakeven move before TP1");
        }
        Ok(())
    }

    /// [`Position::check_invariants`] after each mutation, in debug builds.
    #[inline]
    fn debug_check(&self) {
        if cfg!(debug_assertions)
            && let Err(e) = self.check_invariants()
        {
            panic!("position invariant broken: {e} ({self:?})");
        }
    }

    /// Entry notional, quote.
    pub fn notional(&self) -> f64 {
        self.entry_px * self.tick_value * self.qty as f64 * self.step_value
    }

    /// Net PnL as % of the entry notional.
    pub fn pnl_pct(&self) -> f64 {
        let n = self.notional();
        if n > 0.0 { self.pnl / n * 100.0 } else { 0.0 }
    }

    fn sgn(&self) -> f64 {
        if self.side == Side::Long { 1.0 } else { -1.0 }
    }

    /// Executes an exit order (module doc): its fee at the maker or taker rate, gross PnL from the entry.
    pub fn exit(&mut self, cfg: &PositionConfig, o: &ExitOrder, latency_ns: i64) -> ExitFill {
        let qty = o.qty.clamp(0, self.remaining);
        let base = qty as f64 * self.step_value;
        let rate = if o.liquidity == Liquidity::Maker { cfg.maker_fee } else { cfg.taker_fee };
        let fee = o.px * self.tick_value * base * rate;
        let gross = self.sgn() * (o.px - self.entry_px) * self.tick_value * base;
        let mut f = self.book(o.reason, qty, o.px, fee, gross, o.decided_ns);
        f.liquidity = o.liquidity;
        f.trigger_px = o.trigger_px;
        f.ts_ns = o.ts_ns;
        f.latency_ns = latency_ns;
        f
    }

    /// Books an exit of `qty` at `px` with its fee and gross PnL (quote); `decided_ns` is the exit time recorded.
    fn book(&mut self, reason: ExitReason, qty: i64, px: f64, fee: f64, gross: f64, decided_ns: i64) -> ExitFill {
        let pnl = gross - fee;
        let done = self.qty - self.remaining;
        self.exit_px =
            if done + qty > 0 { (self.exit_px * done as f64 + px * qty as f64) / (done + qty) as f64 } else { px };
        self.remaining -= qty;
        self.fees += fee;
        self.pnl += pnl;
        let closed = self.remaining == 0;
        if closed {
            self.exit_reason = Some(reason);
            self.exit_ts_ns = decided_ns;
        }
        self.debug_check();
        ExitFill {
            kind: FillKind::Exit(reason),
            liquidity: Liquidity::None,
            qty,
            px,
            trigger_px: None,
            fee,
            pnl,
            closed,
            ts_ns: decided_ns,
            decided_ns,
            latency_ns: 0,
        }
    }

    /// Liquidates what is open at `mark` (ticks): the loss is the whole isolated margin of the open quantity
    /// (entry notional / leverage) plus the clearance fee on the liquidated notional at `mark` (module doc).
    fn liquidate(&mut self, cfg: &PositionConfig, mark: f64, leverage: f64, ts_ns: i64) -> ExitFill {
        let qty = self.remaining;
        let base = qty as f64 * self.step_value;
        let margin = self.entry_px * self.tick_value * base / leverage.max(1.0);
        let fee = (mark * self.tick_value * base * cfg.liquidation_fee_rate).min(margin);
        // The fill's PnL is gross − fee = −margin: the clearance fee comes out of the margin, not on top of it.
        self.book(ExitReason::Liquidation, qty, mark, fee, fee - margin, ts_ns)
    }

    /// Feeds a mark price (ticks) at exchange time `ts_ns`: the liquidation trigger (module doc). Returns the
    /// liquidation fill when the mark is at or past the liquidation price.
    pub fn on_mark(&mut self, cfg: &PositionConfig, mark: f64, leverage: f64, ts_ns: i64) -> Option<ExitFill> {
        if self.remaining <= 0 || mark <= 0.0 || self.sgn() * (mark - self.liq) > 0.0 {
            return None;
        }
        Some(self.liquidate(cfg, mark, leverage, ts_ns))
    }

    /// The fallback before any mark price: a trade at or past the liquidation price liquidates at that price.
    pub fn liquidate_by_price(&mut self, cfg: &PositionConfig, px: f64, leverage: f64, ts_ns: i64) -> Option<ExitFill> {
        self.on_mark(cfg, px, leverage, ts_ns)
    }

    /// Funding at `ts_ns` (a funding time) with `rate` at `mark` (ticks): the open quantity pays (a long, positive
    /// rate) or receives `qty × mark × rate`; booked into fees-free PnL and `funding`.
    pub fn fund(&mut self, rate: f64, mark: f64, ts_ns: i64) -> Option<ExitFill> {
        if self.remaining <= 0 || mark <= 0.0 {
            return None;
        }
        let qty = self.remaining;
        let pnl = -self.sgn() * qty as f64 * self.step_value * mark * self.tick_value * rate;
        self.funding += pnl;
        self.pnl += pnl;
        Some(ExitFill {
            kind: FillKind::Funding { rate },
            liquidity: Liquidity::None,
            qty,
            px: mark,
            trigger_px: None,
            fee: 0.0,
            pnl,
            closed: false,
            ts_ns,
            decided_ns: ts_ns,
            latency_ns: 0,
        })
    }

    /// Updates MFE / MAE with a trade price (ticks) at `ts_ns`.
    pub fn observe(&mut self, px: f64, ts_ns: i64) {
        let exc = self.sgn() * (px - self.entry_px) / self.entry_px * 100.0;
        if exc > self.mfe_pct {
            self.mfe_pct = exc;
            self.mfe_ts_ns = ts_ns;
        }
        if -exc > self.mae_pct {
            self.mae_pct = -exc;
            self.mae_ts_ns = ts_ns;
        }
    }

    /// The stop's exit reason when `px` is at or past the stop.
    pub fn stop_hit(&self, px: f64) -> Option<ExitReason> {
        if self.remaining <= 0 || self.sgn() * (px - self.stop) > 0.0 {
            return None;
        }
        Some(if self.be_moved { ExitReason::Breakeven } else { ExitReason::StopLoss })
    }

    /// True when `px` at `ts_ns` calls for a SoftStop: old enough and far enough against the entry.
    pub fn soft_stop_due(&self, cfg: &PositionConfig, px: f64, ts_ns: i64) -> bool {
        let age_s = (ts_ns - self.entry_fill_ts_ns) as f64 / 1e9;
        let adverse = -self.sgn() * (px - self.entry_px) / self.entry_px * 100.0;
        self.remaining > 0 && age_s >= cfg.soft_stop_seconds as f64 && adverse >= cfg.soft_stop_drawdown_pct
    }

    /// The breakeven + alpha stop level when `px` at `ts_ns` calls for the move (after TP1, old and far enough in
    /// profit); `tick` is one tick in the price unit.
    pub fn breakeven_due(&self, cfg: &PositionConfig, px: f64, ts_ns: i64, tick: f64) -> Option<f64> {
        if !self.tp1_done || self.be_moved || self.remaining <= 0 {
            return None;
        }
        let age_s = (ts_ns - self.entry_fill_ts_ns) as f64 / 1e9;
        let s = self.sgn();
        let rr = if self.risk > 0.0 { s * (px - self.entry_px) / self.risk } else { 0.0 };
        (age_s >= cfg.break_even_min_hold_secs as f64 && rr >= cfg.break_even_trigger_rr)
            .then_some(self.entry_px + s * cfg.profit_lock_ticks as f64 * tick)
    }

    /// Moves the stop to `px` (never backwards) and marks the breakeven move done.
    pub fn move_stop(&mut self, px: f64) {
        if self.sgn() * (px - self.stop) > 0.0 {
            self.stop = px;
        }
        self.be_moved = true;
        self.debug_check();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_680_652_800_000_000_000;
    const S: i64 = 1_000_000_000;

    fn entry(side: Side) -> Entry {
        // 100.00 in 0.01 ticks = 10000 ticks; 1 step = 1 base unit; 10 units.
        Entry {
            seq: 1,
            side,
            ts_ns: T,
            bar_ts_ns: T,
            fill_ts_ns: T,
            latency_ns: 0,
            px: 10_000.0,
            qty: 10,
            touch: 10_000.0,
            expected_slippage_bps: 1.0,
            regime: Regime::RangeLow,
            confidence: 0.5,
            tick_value: 0.01,
            step_value: 1.0,
        }
    }

    fn cfg() -> PositionConfig {
        PositionConfig::default()
    }

    fn order(reason: ExitReason, qty: i64, px: f64, liquidity: Liquidity) -> ExitOrder {
        ExitOrder { reason, qty, px, liquidity, trigger_px: Some(px), ts_ns: T + S, decided_ns: T + S }
    }

    #[test]
    fn liquidation_price_worked_examples() {
        // Long 50x, mmr 0.4 %: E (1 - 0.02) / 0.996.
        let l = liquidation_price(Side::Long, 10_000.0, 50.0, 0.004);
        assert!((l - 9_839.357_429_718_875).abs() < 1e-6, "{l}");
        let s = liquidation_price(Side::Short, 10_000.0, 50.0, 0.004);
        assert!((s - 10_159.362_549_800_797).abs() < 1e-6, "{s}");
        // At the liquidation price the equity equals the maintenance margin (per unit).
        let e = 10_000.0;
        assert!(((e / 50.0 + (l - e)) - 0.004 * l).abs() < 1e-6);
        // 10x: a long is liquidated ~9.64 % below entry.
        assert!((liquidation_price(Side::Long, 100.0, 10.0, 0.004) - 90.361_445_783_132_53).abs() < 1e-9);
    }

    #[test]
    fn maker_and_taker_exits_pay_their_own_fee() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        // Entry: 0.05 % of 1000 = 0.5.
        assert!((p.fees - 0.5).abs() < 1e-12);
        // TP1 half at 100.60 as a maker: fee 0.02 % of 503 = 0.1006; gross 0.60 x 5 = 3.0.
        let f = p.exit(&cfg(), &order(ExitReason::Tp1, 5, 10_060.0, Liquidity::Maker), 0);
        assert!((f.fee - 0.1006).abs() < 1e-12 && (f.pnl - (3.0 - 0.1006)).abs() < 1e-12, "{f:?}");
        assert_eq!((f.kind, f.liquidity, f.closed), (FillKind::Exit(ExitReason::Tp1), Liquidity::Maker, false));
        // The rest as a taker stop at 99.60: fee 0.05 % of 498 = 0.249; gross -0.40 x 5 = -2.0.
        let f = p.exit(&cfg(), &order(ExitReason::StopLoss, 5, 9_960.0, Liquidity::Taker), 0);
        assert!((f.fee - 0.249).abs() < 1e-12 && (f.pnl - (-2.0 - 0.249)).abs() < 1e-12, "{f:?}");
        assert!(f.closed);
        assert!((p.pnl - (-0.5 + 3.0 - 0.1006 - 2.0 - 0.249)).abs() < 1e-12, "{}", p.pnl);
        assert!((p.exit_px - 10_010.0).abs() < 1e-9, "quantity-weighted exit");
        assert_eq!((p.exit_reason, p.exit_ts_ns), (Some(ExitReason::StopLoss), T + S));
    }

    #[test]
    fn funding_sign_for_long_and_short_with_positive_and_negative_rates() {
        // 10 units at a mark of 100.00 (10000 ticks x 0.01): notional 1000; rate 0.01 % = 0.1 USDT.
        for (side, rate, want) in [
            (Side::Long, 0.0001, -0.1),
            (Side::Short, 0.0001, 0.1),
            (Side::Long, -0.0001, 0.1),
            (Side::Short, -0.0001, -0.1),
        ] {
            let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(side));
            let f = p.fund(rate, 10_000.0, T + 8 * 3600 * S).unwrap();
            assert!((f.pnl - want).abs() < 1e-12, "{side:?} {rate}: {}", f.pnl);
            assert_eq!((f.kind, f.fee, f.qty, f.closed), (FillKind::Funding { rate }, 0.0, 10, false));
            assert!((p.funding - want).abs() < 1e-12 && (p.pnl - (-0.5 + want)).abs() < 1e-12);
            assert_eq!(p.fees, 0.5, "funding is not a fee");
        }
        // Funding on the open quantity only (after a partial exit) at the mark, not the entry.
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        p.exit(&cfg(), &order(ExitReason::Tp1, 5, 10_060.0, Liquidity::Maker), 0);
        let f = p.fund(0.0001, 10_100.0, T + 2 * S).unwrap();
        assert!((f.pnl - (-5.0 * 101.0 * 0.0001)).abs() < 1e-12, "{}", f.pnl);
    }

    #[test]
    fn stop_soft_stop_and_breakeven_rules() {
        let c = cfg();
        let mut p = Position::open(&c, 0.4, 50.0, &entry(Side::Long));
        assert_eq!(p.stop, 9_960.0);
        assert_eq!(p.stop_hit(9_961.0), None);
        assert_eq!(p.stop_hit(9_960.0), Some(ExitReason::StopLoss));
        // SoftStop: -0.15 % after 45 s of the fill.
        assert!(!p.soft_stop_due(&c, 9_980.0, T + 30 * S), "too young");
        assert!(p.soft_stop_due(&c, 9_985.0, T + 46 * S));
        assert!(!p.soft_stop_due(&c, 9_990.0, T + 46 * S), "not far enough");
        // Breakeven: only after TP1, 45 s and 1.2 R (10048).
        assert_eq!(p.breakeven_due(&c, 10_050.0, T + 50 * S, 1.0), None, "before TP1");
        p.tp1_done = true;
        assert_eq!(p.breakeven_due(&c, 10_050.0, T + 40 * S, 1.0), None, "too young");
        assert_eq!(p.breakeven_due(&c, 10_040.0, T + 50 * S, 1.0), None, "not far enough");
        assert_eq!(p.breakeven_due(&c, 10_050.0, T + 50 * S, 1.0), Some(10_001.0));
        p.move_stop(10_001.0);
        assert_eq!((p.stop, p.be_moved), (10_001.0, true));
        assert_eq!(p.stop_hit(10_001.0), Some(ExitReason::Breakeven));
        // Never backwards.
        p.move_stop(9_000.0);
        assert_eq!(p.stop, 10_001.0);
        // A short mirrors.
        let s = Position::open(&c, 0.4, 50.0, &entry(Side::Short));
        assert_eq!((s.stop, s.stop_hit(10_040.0), s.stop_hit(10_039.0)), (10_040.0, Some(ExitReason::StopLoss), None));
    }

    #[test]
    fn liquidation_by_price_before_any_mark_takes_the_margin_capped() {
        // 200x: liquidation at E (1 - 0.005) / 0.996 = 99.90 % of E, above the 0.4 % stop.
        let mut p = Position::open(&cfg(), 0.4, 200.0, &entry(Side::Long));
        assert!(p.liq > p.stop);
        assert_eq!(p.liquidate_by_price(&cfg(), 9_995.0, 200.0, T + S), None);
        let f = p.liquidate_by_price(&cfg(), 9_985.0, 200.0, T + S).unwrap();
        assert_eq!(
            (f.kind, f.closed, f.px, f.liquidity),
            (FillKind::Exit(ExitReason::Liquidation), true, 9_985.0, Liquidity::None)
        );
        // Whole margin 1000 / 200 = 5; the clearance fee (1.2 % of 99.85 x 10 = 11.982) is capped at it.
        assert!((f.fee - 5.0).abs() < 1e-9, "{}", f.fee);
        assert!((f.pnl - (-5.0)).abs() < 1e-9, "{}", f.pnl);
    }

    #[test]
    fn mark_price_liquidation_takes_the_whole_margin_with_the_clearance_fee_out_of_it() {
        // 50x on a 1000 USDT entry: margin 20; long liquidated at 9839.357 ticks, short at 10159.363.
        for (side, not_yet, mark) in [(Side::Long, 9_840.0, 9_839.0), (Side::Short, 10_159.0, 10_160.0)] {
            let mut p = Position::open(&cfg(), 5.0, 50.0, &entry(side));
            assert_eq!(p.on_mark(&cfg(), not_yet, 50.0, T + S), None, "{side:?}: mark short of the price");
            let f = p.on_mark(&cfg(), mark, 50.0, T + 2 * S).unwrap();
            // Clearance fee: 1.2 % of the notional at the mark (mark x 0.01 x 10).
            let fee = 0.012 * mark * 0.1;
            assert_eq!(
                (f.kind, f.qty, f.px, f.closed, f.ts_ns),
                (FillKind::Exit(ExitReason::Liquidation), 10, mark, true, T + 2 * S)
            );
            assert!((f.fee - fee).abs() < 1e-9, "{side:?}: {}", f.fee);
            assert!((f.pnl - (-20.0)).abs() < 1e-9, "{side:?}: the whole margin and no more: {}", f.pnl);
            // Entry fee 0.05 % of 1000 = 0.5: -20 - 0.5 either side.
            assert!((p.pnl - (-20.5)).abs() < 1e-9, "{side:?}: {}", p.pnl);
            assert_eq!((p.exit_reason, p.exit_px, p.remaining), (Some(ExitReason::Liquidation), mark, 0));
            assert_eq!(p.on_mark(&cfg(), mark, 50.0, T + 3 * S), None, "closed");
        }
    }

    #[test]
    fn invariants_hold_through_every_exit_and_catch_a_broken_position() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        assert_eq!(p.check_invariants(), Ok(()));
        p.exit(&cfg(), &order(ExitReason::Tp1, 5, 10_060.0, Liquidity::Maker), 0);
        p.tp1_done = true;
        p.move_stop(10_001.0);
        assert_eq!(p.check_invariants(), Ok(()));
        p.exit(&cfg(), &order(ExitReason::Breakeven, 50, 10_001.0, Liquidity::Taker), 0);
        assert_eq!(p.remaining, 0, "an exit is clamped to what is open");
        assert_eq!(p.check_invariants(), Ok(()));
        let ok = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Short));
        assert!(Position { remaining: -1, ..ok }.check_invariants().is_err(), "negative quantity");
        assert!(Position { remaining: 11, ..ok }.check_invariants().is_err(), "more than opened");
        assert!(Position { remaining: 0, ..ok }.check_invariants().is_err(), "closed without a reason");
        assert!(Position { be_moved: true, ..ok }.check_invariants().is_err());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "position invariant")]
    fn opening_with_no_quantity_trips_the_debug_check() {
        Position::open(&cfg(), 0.4, 50.0, &Entry { qty: 0, ..entry(Side::Long) });
    }
}

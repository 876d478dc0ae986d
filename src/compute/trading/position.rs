//! Paper positions: entry, every exit, MFE/MAE. Exchange time only; checked on every trade and book update.
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
//! - Without any mark price yet (a recording without the `markPrice` stream), the liquidation is triggered by the
//!   exit-side trade or touch price as before, that price standing in for the mark; the loss is the same (the
//!   whole margin, the clearance fee out of it). Once a symbol has had a mark price, trades and touches no longer liquidate.
//! - Order of checks on each price: liquidation, stop, SoftStop, TP1, TP2, then the breakeven move.
//! - Fills are taker fills (the engine walks the book; without a synced book, the observed price), each paying
//!   `taker_fee` on its notional. PnL = (exit − entry) × quantity − fees (a liquidation: see above).
//! - Stop, breakeven and SoftStop exits are stop-market orders: they fill at the price that triggered them (the
//!   trade or exit-side touch at or past the level) or worse, never better. The book is rebuilt from diffs that can
//!   lag the trades, so a walk that would sell above the triggering trade (or buy below it) is capped at that price.
//! - **MFE / MAE**: the largest favourable and adverse excursion of the exit-side price from the entry, in % of the
//!   entry (both ≥ 0), with the seconds from entry to each.
//! - On shutdown (end of a replay) open positions are closed at the last price with reason `Shutdown`, so every
//!   position in the database has a complete PnL.

use crate::types::record::{ExitReason, Position, Regime, Side};

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

/// How a trade or touch price may liquidate (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiqTrigger {
    /// The account's leverage (the isolated margin is the entry notional over it).
    pub leverage: f64,
    /// The price liquidates: no mark price has been seen on the symbol yet.
    pub by_price: bool,
}

/// One exit fill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitFill {
    /// Reason.
    pub reason: ExitReason,
    /// Quantity (steps).
    pub qty: i64,
    /// Fill price (ticks, VWAP).
    pub px: f64,
    /// Fee, quote.
    pub fee: f64,
    /// Net PnL of this fill, quote.
    pub pnl: f64,
    /// The position is now closed.
    pub closed: bool,
    /// Exchange time of the fill.
    pub ts_ns: i64,
}

/// Everything needed to open a position.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Direction.
    pub side: Side,
    /// Exchange time.
    pub ts_ns: i64,
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
    /// Opens a position (the entry fee is charged here).
    pub fn open(cfg: &PositionConfig, stop_pct: f64, leverage: f64, e: &Entry) -> Self {
        let sgn = if e.side == Side::Long { 1.0 } else { -1.0 };
        let r = e.px * stop_pct / 100.0;
        let notional = e.px * e.tick_value * e.qty as f64 * e.step_value;
        let fee = notional * cfg.taker_fee;
        let p = Position {
            seq: e.seq,
            side: e.side,
            entry_ts_ns: e.ts_ns,
            bar_ts_ns: e.ts_ns,
            entry_fill_ts_ns: e.ts_ns,
            latency_ns: 0,
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
            mfe_ts_ns: e.ts_ns,
            mae_ts_ns: e.ts_ns,
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

    /// Closes `qty` at a fill price from `fill(qty)`.
    fn exit(
        &mut self,
        cfg: &PositionConfig,
        reason: ExitReason,
        qty: i64,
        ts_ns: i64,
        fill: &mut impl FnMut(i64) -> f64,
    ) -> ExitFill {
        let qty = qty.clamp(0, self.remaining);
        let px = fill(qty);
        let base = qty as f64 * self.step_value;
        let fee = px * self.tick_value * base * cfg.taker_fee;
        let gross = self.sgn() * (px - self.entry_px) * self.tick_value * base;
        self.book(reason, qty, px, fee, gross, ts_ns)
    }

    /// Books an exit of `qty` at `px` with its fee and gross PnL (quote).
    fn book(&mut self, reason: ExitReason, qty: i64, px: f64, fee: f64, gross: f64, ts_ns: i64) -> ExitFill {
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
            self.exit_ts_ns = ts_ns;
        }
        self.debug_check();
        ExitFill { reason, qty, px, fee, pnl, closed, ts_ns }
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

    /// Feeds an observed exit-side price (ticks) at exchange time `ts_ns`. Exit fills go to `out`; `fill(qty)`
    /// gives the fill price for a taker exit of `qty`; `liq` says whether this price can liquidate (no mark price
    /// seen yet) and the leverage.
    #[allow(clippy::too_many_arguments)]
    pub fn on_price(
        &mut self,
        cfg: &PositionConfig,
        px: f64,
        tick: f64,
        ts_ns: i64,
        liq: LiqTrigger,
        fill: &mut impl FnMut(i64) -> f64,
        out: &mut impl FnMut(ExitFill),
    ) {
        if self.remaining <= 0 || px <= 0.0 {
            return;
        }
        let s = self.sgn();
        let exc = s * (px - self.entry_px) / self.entry_px * 100.0;
        if exc > self.mfe_pct {
            self.mfe_pct = exc;
            self.mfe_ts_ns = ts_ns;
        }
        if -exc > self.mae_pct {
            self.mae_pct = -exc;
            self.mae_ts_ns = ts_ns;
        }
        let beyond = |level: f64| s * (px - level) <= 0.0; // at or past a level against us
        let reached = |level: f64| s * (px - level) >= 0.0; // at or past a level in our favour
        let age_s = (ts_ns - self.entry_ts_ns) as f64 / 1e9;
        if liq.by_price && beyond(self.liq) {
            out(self.liquidate(cfg, px, liq.leverage, ts_ns));
            return;
        }
        // Stop-market exits fill at the triggering price or worse, never better: a book walk over levels the
        // triggering trade or touch had already left is capped at that price.
        let mut stop_fill = |q: i64| {
            let f = fill(q);
            if s > 0.0 { f.min(px) } else { f.max(px) }
        };
        if beyond(self.stop) {
            let reason = if self.be_moved { ExitReason::Breakeven } else { ExitReason::StopLoss };
            out(self.exit(cfg, reason, self.remaining, ts_ns, &mut stop_fill));
            return;
        }
        if age_s >= cfg.soft_stop_seconds as f64 && -exc >= cfg.soft_stop_drawdown_pct {
            out(self.exit(cfg, ExitReason::SoftStop, self.remaining, ts_ns, &mut stop_fill));
            return;
        }
        if !self.tp1_done && reached(self.tp1) {
            self.tp1_done = true;
            let q = ((self.qty as f64 * cfg.tp1_fraction).round() as i64).clamp(1, self.remaining);
            let f = self.exit(cfg, ExitReason::Tp1, q, ts_ns, fill);
            out(f);
            if f.closed {
                return;
            }
        }
        if self.tp1_done && reached(self.tp2) {
            out(self.exit(cfg, ExitReason::Tp2, self.remaining, ts_ns, fill));
            return;
        }
        if self.tp1_done && !self.be_moved && age_s >= cfg.break_even_min_hold_secs as f64 {
            let rr = if self.risk > 0.0 { s * (px - self.entry_px) / self.risk } else { 0.0 };
            if rr >= cfg.break_even_trigger_rr {
                let be = self.entry_px + s * cfg.profit_lock_ticks as f64 * tick;
                if s * (be - self.stop) > 0.0 {
                    self.stop = be;
                }
                self.be_moved = true;
            }
        }
        self.debug_check();
    }

    /// Closes whatever is open (shutdown).
    pub fn close_all(
        &mut self,
        cfg: &PositionConfig,
        ts_ns: i64,
        fill: &mut impl FnMut(i64) -> f64,
    ) -> Option<ExitFill> {
        if self.remaining <= 0 {
            return None;
        }
        Some(self.exit(cfg, ExitReason::Shutdown, self.remaining, ts_ns, fill))
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

    /// 50x, no mark price seen: trade prices liquidate.
    const BY_PRICE: LiqTrigger = LiqTrigger { leverage: 50.0, by_price: true };

    fn cfg() -> PositionConfig {
        PositionConfig::default()
    }

    /// Feeds prices at given seconds after entry; returns the fills.
    fn run(p: &mut Position, tape: &[(i64, f64)]) -> Vec<ExitFill> {
        let mut fills = vec![];
        for &(sec, px) in tape {
            p.on_price(&cfg(), px, 1.0, T + sec * S, BY_PRICE, &mut |_| px, &mut |f| fills.push(f));
        }
        fills
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
    fn stop_loss() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        assert_eq!(p.stop, 9_960.0);
        let f = run(&mut p, &[(1, 9_990.0), (2, 9_960.0)]);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].reason, f[0].qty, f[0].closed), (ExitReason::StopLoss, 10, true));
        // (99.60 - 100) x 10 - fees (0.05 % of 1000 in, 0.05 % of 996 out).
        assert!((p.pnl - (-4.0 - 0.5 - 0.498)).abs() < 1e-9, "{}", p.pnl);
        assert!((p.mae_pct - 0.4).abs() < 1e-9);
        assert_eq!(p.mae_ts_ns, T + 2 * S);
    }

    #[test]
    fn a_stop_never_fills_better_than_the_price_that_triggered_it() {
        for side in [Side::Long, Side::Short] {
            let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(side));
            let (trigger, stale) = if side == Side::Long { (9_950.0, 9_990.0) } else { (10_050.0, 10_010.0) };
            // The book (stale) still shows a better price than the trade that crossed the stop.
            let mut fills = vec![];
            p.on_price(&cfg(), trigger, 1.0, T + S, BY_PRICE, &mut |_| stale, &mut |f| fills.push(f));
            assert_eq!((fills.len(), fills[0].reason), (1, ExitReason::StopLoss));
            assert_eq!(fills[0].px, trigger, "{side:?}: capped at the triggering price");
            // A walk worse than the trigger is kept.
            let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(side));
            let worse = if side == Side::Long { 9_940.0 } else { 10_060.0 };
            let mut fills = vec![];
            p.on_price(&cfg(), trigger, 1.0, T + S, BY_PRICE, &mut |_| worse, &mut |f| fills.push(f));
            assert_eq!(fills[0].px, worse);
            // SoftStop is capped the same way.
            let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(side));
            let (soft, better) = if side == Side::Long { (9_980.0, 9_999.0) } else { (10_020.0, 10_001.0) };
            let mut fills = vec![];
            p.on_price(&cfg(), soft, 1.0, T + 60 * S, BY_PRICE, &mut |_| better, &mut |f| fills.push(f));
            assert_eq!((fills[0].reason, fills[0].px), (ExitReason::SoftStop, soft));
        }
    }

    #[test]
    fn tp1_then_breakeven_stop() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        // TP1 at +0.6 % (10060): half closes. Breakeven needs 45 s and 1.2 R (10048).
        let f = run(&mut p, &[(10, 10_060.0), (20, 10_050.0)]);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].reason, f[0].qty, f[0].closed), (ExitReason::Tp1, 5, false));
        assert!(!p.be_moved, "too young for the breakeven move");
        let f = run(&mut p, &[(50, 10_050.0)]);
        assert!(f.is_empty());
        assert!(p.be_moved);
        assert_eq!(p.stop, 10_001.0, "breakeven + 1 tick");
        let f = run(&mut p, &[(60, 10_001.0)]);
        assert_eq!((f[0].reason, f[0].qty, f[0].closed), (ExitReason::Breakeven, 5, true));
        assert_eq!(p.exit_reason, Some(ExitReason::Breakeven));
        assert!(p.pnl > 0.0);
    }

    #[test]
    fn tp1_then_tp2() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Short));
        // Short: TP1 at 9940, TP2 at 9880 (one jump crosses both: TP1 then TP2 on the same price).
        let f = run(&mut p, &[(5, 9_870.0)]);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].reason, f[0].qty), (ExitReason::Tp1, 5));
        assert_eq!((f[1].reason, f[1].qty, f[1].closed), (ExitReason::Tp2, 5, true));
        assert!((p.mfe_pct - 1.3).abs() < 1e-9);
    }

    #[test]
    fn soft_stop_after_the_minimum_age() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        // -0.2 % at 30 s: too early; at 46 s: SoftStop.
        assert!(run(&mut p, &[(30, 9_980.0)]).is_empty());
        let f = run(&mut p, &[(46, 9_984.0)]);
        assert_eq!((f[0].reason, f[0].closed), (ExitReason::SoftStop, true));
    }

    #[test]
    fn liquidation_before_the_stop_when_leverage_is_high() {
        // 200x: liquidation at E (1 - 0.005) / 0.996 = 99.90 % of E, above the 0.4 % stop. No mark price yet: the
        // trade price triggers it and stands in for the mark.
        let mut p = Position::open(&cfg(), 0.4, 200.0, &entry(Side::Long));
        assert!(p.liq > p.stop);
        let mut f = vec![];
        let by_price = LiqTrigger { leverage: 200.0, by_price: true };
        p.on_price(&cfg(), 9_985.0, 1.0, T + S, by_price, &mut |_| 9_985.0, &mut |x| f.push(x));
        assert_eq!((f[0].reason, f[0].closed, f[0].px), (ExitReason::Liquidation, true, 9_985.0));
        // Whole margin 1000 / 200 = 5; the clearance fee (1.2 % of 99.85 x 10 = 11.982) is capped at it.
        assert!((f[0].fee - 5.0).abs() < 1e-9, "{}", f[0].fee);
        assert!((f[0].pnl - (-5.0)).abs() < 1e-9, "{}", f[0].pnl);
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
                (f.reason, f.qty, f.px, f.closed, f.ts_ns),
                (ExitReason::Liquidation, 10, mark, true, T + 2 * S)
            );
            assert!((f.fee - fee).abs() < 1e-9, "{side:?}: {}", f.fee);
            assert!((f.pnl - (-20.0)).abs() < 1e-9, "{side:?}: the whole margin and no more: {}", f.pnl);
            // Entry fee 0.05 % of 1000 = 0.5: -20 - 0.5 either side.
            let total = -20.5;
            assert!((p.pnl - total).abs() < 1e-9, "{side:?}: {}", p.pnl);
            assert_eq!((p.exit_reason, p.exit_px, p.remaining), (Some(ExitReason::Liquidation), mark, 0));
            assert_eq!(p.on_mark(&cfg(), mark, 50.0, T + 3 * S), None, "closed");
        }
    }

    #[test]
    fn a_trade_past_the_liquidation_price_does_not_liquidate_once_a_mark_is_known() {
        // 5 % stop (9500), liquidation at 9839.357: a trade at 9800 is past the liquidation price only.
        let mark_known = LiqTrigger { leverage: 50.0, by_price: false };
        let mut p = Position::open(&cfg(), 5.0, 50.0, &entry(Side::Long));
        let mut f = vec![];
        p.on_price(&cfg(), 9_800.0, 1.0, T + S, mark_known, &mut |_| 9_800.0, &mut |x| f.push(x));
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(p.on_mark(&cfg(), 9_900.0, 50.0, T + S), None, "the mark is not past it");
        assert_eq!(p.remaining, 10);
        // The same trade without any mark seen liquidates (the fallback).
        p.on_price(&cfg(), 9_800.0, 1.0, T + 2 * S, BY_PRICE, &mut |_| 9_800.0, &mut |x| f.push(x));
        assert_eq!((f[0].reason, f[0].px), (ExitReason::Liquidation, 9_800.0));
    }

    #[test]
    fn invariants_hold_through_every_exit_and_catch_a_broken_position() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        assert_eq!(p.check_invariants(), Ok(()));
        run(&mut p, &[(10, 10_060.0), (50, 10_050.0)]);
        assert_eq!(p.check_invariants(), Ok(()));
        run(&mut p, &[(60, 10_001.0)]);
        assert_eq!(p.remaining, 0);
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

    /// Through the trader (what the engine's `markPrice` arm calls): a trade past the liquidation price does not
    /// liquidate once a mark is known; the mark past it books a `Liquidation` fill at the mark, the whole margin
    /// plus the clearance fee off the balance, and the close.
    #[test]
    fn the_trader_liquidates_on_the_mark_and_books_it() {
        use crate::compute::market::book::{Book, BookConfig};
        use crate::compute::trading::trader::{Account, SymbolCtx, Trader, Variant};
        use crate::types::decimal::Scale;
        use crate::types::record::{FillKind, Record};
        use crate::types::symbols::SymbolName;
        let rules = Variant {
            name: "base".into(),
            strategy: Default::default(),
            gate: Default::default(),
            risk: Default::default(),
            position: cfg(),
        };
        let mut account = Account::new(0, rules);
        let name = SymbolName::new(b"BTCUSDT").unwrap();
        let mut t = Trader::new(&account, name, &[]);
        let book = Book::new(BookConfig::default());
        let c = SymbolCtx { id: 0, name, book: &book, price: Some(Scale::decimals(2)), qty: Some(Scale::decimals(0)) };
        let pos = Position::open(&cfg(), 5.0, 50.0, &entry(Side::Long));
        account.risk.on_open(&mut t.risk, pos.notional());
        t.position = Some(pos);
        let mut recs = vec![];
        t.on_mark(&mut account, &c, 9_900.0, T + S, &mut |r| recs.push(r));
        t.manage(&mut account, &c, 9_800.0, T + 2 * S, &mut |r| recs.push(r));
        assert!(recs.is_empty() && t.position.is_some(), "{recs:?}");
        t.on_mark(&mut account, &c, 9_839.0, T + 3 * S, &mut |r| recs.push(r));
        let fee = 0.012 * 98.39 * 10.0;
        match recs.first() {
            Some(&Record::Fill {
                kind: FillKind::Exit(ExitReason::Liquidation),
                px,
                qty: 10,
                fee: f,
                pnl,
                ts_ns,
                ..
            }) => {
                assert_eq!((px, ts_ns), (9_839.0, T + 3 * S));
                assert!((f - fee).abs() < 1e-9 && (pnl - (-20.0)).abs() < 1e-9, "{f} {pnl}");
            }
            r => panic!("{r:?}"),
        }
        assert!(recs.iter().any(|r| matches!(r, Record::Closed { .. })));
        assert!(t.position.is_none());
        assert_eq!(t.closed_by_reason[ExitReason::Liquidation.index()], 1);
        assert!((account.risk.balance - (10_000.0 - 20.0)).abs() < 1e-9, "{}", account.risk.balance);
    }

    #[test]
    fn shutdown_closes_the_rest() {
        let mut p = Position::open(&cfg(), 0.4, 50.0, &entry(Side::Long));
        let f = p.close_all(&cfg(), T + S, &mut |_| 10_010.0).unwrap();
        assert_eq!((f.reason, f.qty, f.closed), (ExitReason::Shutdown, 10, true));
        assert!(p.close_all(&cfg(), T + S, &mut |_| 1.0).is_none());
    }
}

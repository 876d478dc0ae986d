//! Risk: sizing and the limits every entry must pass (after the execution gate), in quote currency (USDT).
//!
//! - **Sizing**: risk budget = balance × `max_risk_per_trade` × scale, where scale = 1, or with
//!   `confidence_sizing` `min_scale + (max_scale − min_scale) × confidence`; quantity = budget / (entry ×
//!   `stop_pct` / 100), i.e. the stop loses the budget. Then capped by `max_notional_per_position` and by what
//!   `max_total_notional` leaves, and floored to the quantity step.
//! - **Limits** (each rejection counted): the daily loss limit (realised loss since 00:00 UTC ≥
//!   `daily_loss_limit_pct` % of the balance at the start of the UTC day stops new entries until the next UTC day);
//!   at most `max_concurrent_positions` open; one position per symbol; a symbol with `consecutive_loss_limit`
//!   losses in a row is blocked for `symbol_cooldown_minutes` of exchange time; a size that rounds to zero is refused.
//! - `leverage` sets the isolated margin (notional / leverage) and the liquidation price (see [`crate::compute::trading::position`]).

/// Risk parameters.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    /// Paper account balance at start, USDT.
    pub initial_balance: f64,
    /// Fraction of the balance at risk per trade.
    pub max_risk_per_trade: f64,
    /// Stop distance used for sizing and as the hard stop, %.
    pub stop_pct: f64,
    /// Daily loss limit, % of the day's starting balance.
    pub daily_loss_limit_pct: f64,
    /// Most open positions.
    pub max_concurrent_positions: usize,
    /// Largest notional of one position, USDT.
    pub max_notional_per_position: f64,
    /// Largest notional of all open positions, USDT.
    pub max_total_notional: f64,
    /// Leverage (isolated margin).
    pub leverage: f64,
    /// Losses in a row that trigger a symbol cooldown.
    pub consecutive_loss_limit: u32,
    /// Symbol cooldown, minutes.
    pub symbol_cooldown_minutes: u32,
    /// Scale size by signal confidence.
    pub confidence_sizing: bool,
    /// Scale at confidence 0.
    pub confidence_min_scale: f64,
    /// Scale at confidence 1.
    pub confidence_max_scale: f64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            initial_balance: 10_000.0,
            max_risk_per_trade: 0.01,
            stop_pct: 0.4,
            daily_loss_limit_pct: 3.0,
            max_concurrent_positions: 5,
            max_notional_per_position: 50_000.0,
            max_total_notional: 150_000.0,
            leverage: 50.0,
            consecutive_loss_limit: 3,
            symbol_cooldown_minutes: 30,
            confidence_sizing: true,
            confidence_min_scale: 0.6,
            confidence_max_scale: 1.2,
        }
    }
}

// Bounds of `[risk]`.
crate::bounds!(RiskConfig as k {
    initial_balance: [1.0, 1e12] "1 to 1e12 USDT";
    max_risk_per_trade: [0.0, 1.0] "0 to 1 (fraction of balance)";
    stop_pct: [0.001, 50.0] "0.001 to 50 (%)";
    daily_loss_limit_pct: [0.0, 100.0] "0 to 100 (%)";
    max_concurrent_positions: [0, 1024] "0 to 1024";
    max_notional_per_position: [0.0, 1e12] "0 to 1e12 USDT";
    max_total_notional: [0.0, 1e12] "0 to 1e12 USDT";
    leverage: [1.0, 125.0] "1 to 125";
    consecutive_loss_limit: [1, 1000] "1 to 1000";
    symbol_cooldown_minutes: [0, 100_000] "0 to 100000 minutes";
    confidence_sizing: any;
    confidence_min_scale: [0.0, 10.0] "0 to 10";
    confidence_max_scale: [k.confidence_min_scale, 10.0] "confidence_min_scale to 10";
});

/// Why risk refused an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskReject {
    /// The daily loss limit was hit.
    DailyLossLimit,
    /// Too many open positions.
    MaxPositions,
    /// The symbol already has a position.
    SymbolHasPosition,
    /// The symbol is cooling down after consecutive losses.
    SymbolCooldown,
    /// The notional caps leave no room.
    NotionalCap,
    /// The size rounds to zero.
    SizeTooSmall,
}

impl RiskReject {
    /// All reasons.
    pub const ALL: [RiskReject; 6] = [
        RiskReject::DailyLossLimit,
        RiskReject::MaxPositions,
        RiskReject::SymbolHasPosition,
        RiskReject::SymbolCooldown,
        RiskReject::NotionalCap,
        RiskReject::SizeTooSmall,
    ];
    /// Stable name.
    pub fn name(&self) -> &'static str {
        match self {
            RiskReject::DailyLossLimit => "daily_loss_limit",
            RiskReject::MaxPositions => "max_positions",
            RiskReject::SymbolHasPosition => "symbol_has_position",
            RiskReject::SymbolCooldown => "symbol_cooldown",
            RiskReject::NotionalCap => "notional_cap",
            RiskReject::SizeTooSmall => "size_too_small",
        }
    }
    /// Index in [`RiskReject::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }
}

/// Per-symbol risk state.
#[derive(Debug, Clone, Copy, Default)]
pub struct SymbolRisk {
    /// Losses in a row.
    pub consecutive_losses: u32,
    /// Blocked until this exchange time.
    pub cooldown_until_ns: i64,
    /// Has an open position.
    pub open: bool,
    /// Notional of the open position.
    pub notional: f64,
}

/// Account-level risk state.
#[derive(Debug, Clone)]
pub struct Risk {
    cfg: RiskConfig,
    /// Balance (initial + realised net PnL).
    pub balance: f64,
    day: i64,
    day_start_balance: f64,
    /// Open positions.
    pub open_positions: usize,
    /// Open notional.
    pub open_notional: f64,
    /// Times the daily loss limit tripped.
    pub daily_limit_hits: u64,
    day_blocked: bool,
}

impl Risk {
    /// New account.
    pub fn new(cfg: RiskConfig) -> Self {
        Risk {
            balance: cfg.initial_balance,
            day: i64::MIN,
            day_start_balance: cfg.initial_balance,
            open_positions: 0,
            open_notional: 0.0,
            daily_limit_hits: 0,
            day_blocked: false,
            cfg,
        }
    }

    /// The parameters.
    pub fn cfg(&self) -> &RiskConfig {
        &self.cfg
    }

    fn roll_day(&mut self, ts_ns: i64) {
        let d = ts_ns.div_euclid(86_400_000_000_000);
        if d != self.day {
            self.day = d;
            self.day_start_balance = self.balance;
            self.day_blocked = false;
        }
    }

    /// Size in base units for an entry at `price` (quote per base unit) with `confidence`, before step rounding.
    pub fn size(&self, price: f64, confidence: f64) -> f64 {
        let c = &self.cfg;
        let scale = if c.confidence_sizing {
            c.confidence_min_scale + (c.confidence_max_scale - c.confidence_min_scale) * confidence.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let budget = self.balance.max(0.0) * c.max_risk_per_trade * scale;
        let per_unit = price * c.stop_pct / 100.0;
        if per_unit <= 0.0 {
            return 0.0;
        }
        let qty = budget / per_unit;
        let room = (c.max_total_notional - self.open_notional).max(0.0);
        qty.min(c.max_notional_per_position / price).min(room / price)
    }

    /// Checks the limits for a new entry on a symbol at exchange time `ts_ns` with `notional`.
    pub fn check(&mut self, sym: &SymbolRisk, notional: f64, ts_ns: i64) -> Result<(), RiskReject> {
        self.roll_day(ts_ns);
        if self.day_blocked {
            return Err(RiskReject::DailyLossLimit);
        }
        if sym.open {
            return Err(RiskReject::SymbolHasPosition);
        }
        if self.open_positions >= self.cfg.max_concurrent_positions {
            return Err(RiskReject::MaxPositions);
        }
        if ts_ns < sym.cooldown_until_ns {
            return Err(RiskReject::SymbolCooldown);
        }
        if notional <= 0.0 {
            return Err(RiskReject::SizeTooSmall);
        }
        if self.open_notional + notional > self.cfg.max_total_notional + 1e-9
            || notional > self.cfg.max_notional_per_position + 1e-9
        {
            return Err(RiskReject::NotionalCap);
        }
        Ok(())
    }

    /// Books an opened position.
    pub fn on_open(&mut self, sym: &mut SymbolRisk, notional: f64) {
        sym.open = true;
        sym.notional = notional;
        self.open_positions += 1;
        self.open_notional += notional;
    }

    /// Sets the notional of the position the symbol reserved (the entry filled at another price than decided).
    pub fn resize_open(&mut self, sym: &mut SymbolRisk, notional: f64) {
        self.open_notional = (self.open_notional - sym.notional + notional).max(0.0);
        sym.notional = notional;
    }

    /// Releases a reservation that never became a position (the entry did not fill): no PnL, no cooldown.
    pub fn on_cancel(&mut self, sym: &mut SymbolRisk) {
        if !sym.open {
            return;
        }
        sym.open = false;
        self.open_positions = self.open_positions.saturating_sub(1);
        self.open_notional = (self.open_notional - sym.notional).max(0.0);
        sym.notional = 0.0;
    }

    /// Books realised PnL (partial or final).
    pub fn on_pnl(&mut self, pnl: f64, ts_ns: i64) {
        self.roll_day(ts_ns);
        self.balance += pnl;
        if !self.day_blocked
            && self.day_start_balance - self.balance >= self.day_start_balance * self.cfg.daily_loss_limit_pct / 100.0
        {
            self.day_blocked = true;
            self.daily_limit_hits += 1;
        }
    }

    /// Books a closed position with its total net PnL.
    pub fn on_close(&mut self, sym: &mut SymbolRisk, total_pnl: f64, ts_ns: i64) {
        sym.open = false;
        self.open_positions = self.open_positions.saturating_sub(1);
        self.open_notional = (self.open_notional - sym.notional).max(0.0);
        sym.notional = 0.0;
        if total_pnl < 0.0 {
            sym.consecutive_losses += 1;
            if sym.consecutive_losses >= self.cfg.consecutive_loss_limit.max(1) {
                sym.cooldown_until_ns = ts_ns + self.cfg.symbol_cooldown_minutes as i64 * 60_000_000_000;
                sym.consecutive_losses = 0;
            }
        } else {
            sym.consecutive_losses = 0;
        }
    }

    /// True while new entries are stopped for the day.
    pub fn day_blocked(&self) -> bool {
        self.day_blocked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_680_652_800_000_000_000; // 00:00 UTC
    const MIN: i64 = 60_000_000_000;

    #[test]
    fn sizing_puts_the_budget_at_the_stop() {
        let r = Risk::new(RiskConfig { confidence_sizing: false, ..RiskConfig::default() });
        // 1 % of 10000 = 100 USDT at a 0.4 % stop of 25000: 100 / 100 = 1.0 BTC (notional 25000 < 50000 cap).
        assert!((r.size(25_000.0, 0.5) - 1.0).abs() < 1e-12);
        let r = Risk::new(RiskConfig::default());
        assert!((r.size(25_000.0, 0.0) - 0.6).abs() < 1e-12);
        assert!((r.size(25_000.0, 1.0) - 1.2).abs() < 1e-12);
        // Capped by the per-position notional: at 100 per unit the raw size is 250 (25000 USDT) — fine; at 1.0 it
        // would be 25000 units = 25000 USDT; at 0.1 the cap (50000 / 0.1 = 500000 units) is not binding either;
        // a tighter cap binds.
        let r = Risk::new(RiskConfig {
            max_notional_per_position: 10_000.0,
            confidence_sizing: false,
            ..RiskConfig::default()
        });
        assert!((r.size(25_000.0, 0.5) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn limits() {
        let mut r = Risk::new(RiskConfig { max_concurrent_positions: 1, ..RiskConfig::default() });
        let mut a = SymbolRisk::default();
        let mut b = SymbolRisk::default();
        r.check(&a, 1000.0, T).unwrap();
        r.on_open(&mut a, 1000.0);
        assert_eq!(r.check(&a, 1000.0, T), Err(RiskReject::SymbolHasPosition));
        assert_eq!(r.check(&b, 1000.0, T), Err(RiskReject::MaxPositions));
        r.on_close(&mut a, 5.0, T);
        assert_eq!(r.check(&b, 0.0, T), Err(RiskReject::SizeTooSmall));
        assert_eq!(r.check(&b, 60_000.0, T), Err(RiskReject::NotionalCap));
        // Three losses in a row: 30 minutes of cooldown.
        for _ in 0..3 {
            r.on_open(&mut b, 100.0);
            r.on_close(&mut b, -1.0, T);
        }
        assert_eq!(r.check(&b, 100.0, T + 29 * MIN), Err(RiskReject::SymbolCooldown));
        assert!(r.check(&b, 100.0, T + 30 * MIN).is_ok());
    }

    #[test]
    fn daily_loss_limit_until_the_next_utc_day() {
        let mut r = Risk::new(RiskConfig::default());
        let s = SymbolRisk::default();
        r.on_pnl(-299.0, T + MIN);
        assert!(r.check(&s, 100.0, T + 2 * MIN).is_ok());
        r.on_pnl(-1.0, T + 3 * MIN); // -300 = 3 % of 10000
        assert_eq!(r.check(&s, 100.0, T + 4 * MIN), Err(RiskReject::DailyLossLimit));
        assert_eq!(r.daily_limit_hits, 1);
        assert!(r.check(&s, 100.0, T + 1440 * MIN).is_ok(), "next UTC day");
    }
}

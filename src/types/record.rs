//! What the compute thread emits and the persistence, alert and report layers consume: [`Record`] and the
//! payload types it carries (bars, signals with their features, positions with their exit reason, the gate's
//! measurements, tuning runs). Plain data: the logic that produces each lives with its stage in `compute/`.

use crate::types::decimal::Scale;
use crate::types::order::{ExecReport, HaltCause};
use crate::types::symbols::{SymbolId, SymbolName};

/// One range bar. Prices in ticks, volumes in steps, times in exchange ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bar {
    /// Open.
    pub open: i64,
    /// High.
    pub high: i64,
    /// Low.
    pub low: i64,
    /// Close.
    pub close: i64,
    /// Traded volume.
    pub volume: i64,
    /// Volume where the buyer was the aggressor (taker buy).
    pub buy_volume: i64,
    /// Volume where the seller was the aggressor (taker sell).
    pub sell_volume: i64,
    /// Market trades (messages) in the bar.
    pub trades: u32,
    /// The range in ticks the bar was built with.
    pub range_ticks: i64,
    /// Exchange time of the first trade.
    pub first_ts_ns: i64,
    /// Exchange time of the last trade.
    pub last_ts_ns: i64,
    /// Id of the first trade.
    pub first_trade_id: i64,
    /// Id of the last trade.
    pub last_trade_id: i64,
}

/// The four regimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Regime {
    /// Trending, high volatility.
    TrendHigh,
    /// Trending, low volatility.
    TrendLow,
    /// Ranging, high volatility.
    RangeHigh,
    /// Ranging, low volatility.
    #[default]
    RangeLow,
}

impl Regime {
    /// All regimes in table order.
    pub const ALL: [Regime; 4] = [Regime::TrendHigh, Regime::TrendLow, Regime::RangeHigh, Regime::RangeLow];
    /// Stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Regime::TrendHigh => "trend_high",
            Regime::TrendLow => "trend_low",
            Regime::RangeHigh => "range_high",
            Regime::RangeLow => "range_low",
        }
    }
    /// Index in [`Regime::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }
    pub(crate) fn of(trend: bool, high: bool) -> Self {
        match (trend, high) {
            (true, true) => Regime::TrendHigh,
            (true, false) => Regime::TrendLow,
            (false, true) => Regime::RangeHigh,
            (false, false) => Regime::RangeLow,
        }
    }
}

/// Signal direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy.
    Long,
    /// Sell.
    Short,
}

impl Side {
    /// "long" / "short".
    pub fn name(&self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// The features stored with an entry (`entry_features`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// Imbalance in the signal's direction (buy/sell for long, sell/buy for short).
    pub imbalance_ratio: f64,
    /// CVD change over the last minute, base-asset units.
    pub cvd_1min_change: f64,
    /// Volume burst ratio of the bar.
    pub volume_burst_ratio: f64,
    /// Bar range, % of its open.
    pub bar_range_pct: f64,
    /// Distance to the zone level, % of price.
    pub zone_distance_pct: f64,
    /// VAL within the zone.
    pub near_val: bool,
    /// VAH within the zone.
    pub near_vah: bool,
    /// An HVN within the zone.
    pub near_hvn: bool,
    /// Regime at the signal.
    pub regime: Regime,
    /// Confidence in [0, 1].
    pub confidence: f64,
}

/// An entry signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// Direction.
    pub side: Side,
    /// Exchange time of the bar's last trade.
    pub ts_ns: i64,
    /// Bar close (ticks): the reference entry price.
    pub price: i64,
    /// The zone level (ticks).
    pub level: f64,
    /// Burst threshold in force.
    pub burst_threshold: f64,
    /// Features.
    pub features: Features,
}

/// Why (part of) a position was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The initial stop.
    StopLoss,
    /// TP1 (partial).
    Tp1,
    /// TP2 (the rest).
    Tp2,
    /// SoftStop.
    SoftStop,
    /// Liquidation price reached.
    Liquidation,
    /// The stop after the breakeven move.
    Breakeven,
    /// Closed at shutdown (end of replay).
    Shutdown,
    /// Closed by the database at the next start because its run was killed (never by the engine, so not in
    /// [`ExitReason::ALL`], whose order indexes the engine's per-reason counters).
    Crashed,
}

impl ExitReason {
    /// Every reason the engine closes with ([`ExitReason::Crashed`] is the database's, see its doc).
    pub const ALL: [ExitReason; 7] = [
        ExitReason::StopLoss,
        ExitReason::Tp1,
        ExitReason::Tp2,
        ExitReason::SoftStop,
        ExitReason::Liquidation,
        ExitReason::Breakeven,
        ExitReason::Shutdown,
    ];
    /// Name as stored.
    pub fn name(&self) -> &'static str {
        match self {
            ExitReason::StopLoss => "StopLoss",
            // Stored under its schema-0001 name, so existing databases and reports keep reading it.
            ExitReason::Tp1 => "TakeProfit",
            ExitReason::Tp2 => "TP2",
            ExitReason::SoftStop => "SoftStop",
            ExitReason::Liquidation => "Liquidation",
            ExitReason::Breakeven => "Breakeven",
            ExitReason::Shutdown => "Shutdown",
            ExitReason::Crashed => "Crashed",
        }
    }
    /// Index in [`ExitReason::ALL`].
    pub fn index(&self) -> usize {
        *self as usize
    }
}

/// What a fill is: the entry, an exit, or a funding payment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FillKind {
    /// The entry (a taker market order).
    Entry,
    /// An exit, by reason.
    Exit(ExitReason),
    /// A funding payment at a funding time: `qty × mark × rate`, paid by a long and received by a short when
    /// `rate` is positive (the other way round when it is negative); no fee.
    Funding {
        /// The funding rate settled (a fraction, 0.0001 = 0.01 %).
        rate: f64,
    },
}

impl FillKind {
    /// Name as stored in `fills.kind`: `entry`, the exit reason's name, or `Funding`.
    pub fn name(&self) -> &'static str {
        match self {
            FillKind::Entry => "entry",
            FillKind::Exit(r) => r.name(),
            FillKind::Funding { .. } => "Funding",
        }
    }
    /// The exit reason, for an exit.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        match self {
            FillKind::Exit(r) => Some(*r),
            _ => None,
        }
    }
}

/// Which side of the book a fill took: a resting (maker) order, a taker order, or neither (a liquidation by the
/// exchange, a funding payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liquidity {
    /// A resting limit order filled (maker fee).
    Maker,
    /// A market order or a triggered stop-market order (taker fee).
    Taker,
    /// Not an order of ours: a liquidation or a funding payment.
    None,
}

impl Liquidity {
    /// Name as stored in `fills.liquidity` (`None` is stored as SQL NULL).
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Liquidity::Maker => Some("maker"),
            Liquidity::Taker => Some("taker"),
            Liquidity::None => None,
        }
    }
}

/// An open paper position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Sequence number in the run (deterministic).
    pub seq: u64,
    /// Direction.
    pub side: Side,
    /// Exchange time of the decision to enter: the event (the trade that closed the signal bar) that produced it.
    pub entry_ts_ns: i64,
    /// Exchange time of the signal bar's last trade.
    pub bar_ts_ns: i64,
    /// Exchange time the entry filled: the first event at or after the order's arrival (decision + latency).
    pub entry_fill_ts_ns: i64,
    /// Order latency used for this position's orders (decision → exchange), ns.
    pub latency_ns: i64,
    /// Entry VWAP (ticks).
    pub entry_px: f64,
    /// Entry quantity (steps).
    pub qty: i64,
    /// Open quantity (steps).
    pub remaining: i64,
    /// Stop (ticks).
    pub stop: f64,
    /// TP1 (ticks).
    pub tp1: f64,
    /// TP2 (ticks).
    pub tp2: f64,
    /// Liquidation price (ticks).
    pub liq: f64,
    /// Initial stop distance (ticks): one R.
    pub risk: f64,
    /// TP1 filled.
    pub tp1_done: bool,
    /// Stop moved to breakeven + alpha.
    pub be_moved: bool,
    /// Fees paid, quote.
    pub fees: f64,
    /// Funding received (positive) or paid (negative), quote; included in `pnl`.
    pub funding: f64,
    /// Realised net PnL (fees and funding included), quote.
    pub pnl: f64,
    /// MFE, %.
    pub mfe_pct: f64,
    /// MAE, % (≥ 0).
    pub mae_pct: f64,
    /// Exchange time of the MFE.
    pub mfe_ts_ns: i64,
    /// Exchange time of the MAE.
    pub mae_ts_ns: i64,
    /// Expected slippage (model), bps.
    pub expected_slippage_bps: f64,
    /// Realised slippage of the entry walk vs the touch, bps.
    pub realized_slippage_bps: f64,
    /// Regime at entry.
    pub regime: Regime,
    /// Signal confidence.
    pub confidence: f64,
    /// Quote value of one tick.
    pub tick_value: f64,
    /// Base units per step.
    pub step_value: f64,
    /// Last exit reason (when closed).
    pub exit_reason: Option<ExitReason>,
    /// Exchange time of the decision (or trigger) of the last exit (when closed).
    pub exit_ts_ns: i64,
    /// Quantity-weighted exit price (ticks).
    pub exit_px: f64,
}

/// What the gate measured on a passed entry.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GatePass {
    /// Spread, bps.
    pub spread_bps: f64,
    /// Favourable depth ratio.
    pub depth_ratio: f64,
    /// Expected slippage, bps.
    pub expected_slippage_bps: f64,
}

/// One tuning run's record (`volume_burst_tuning_logs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuningLog {
    /// Exchange time the run finished.
    pub ts_ns: i64,
    /// The threshold chosen (equal to `previous_ratio` when nothing qualified).
    pub tuned_ratio: f64,
    /// The threshold before.
    pub previous_ratio: f64,
    /// Trades of the chosen candidate (0 when nothing qualified).
    pub trades: u32,
    /// Win rate of the chosen candidate, %.
    pub win_rate_pct: f64,
    /// Expectancy of the chosen candidate, % per trade.
    pub expectancy_pct: f64,
    /// Window (lookback bars).
    pub window_bars: u32,
    /// Lookahead bars.
    pub lookahead_bars: u32,
    /// Candidates evaluated.
    pub candidates: u32,
    /// Fee per side, %.
    pub fee_pct: f64,
    /// Stop, %.
    pub stop_pct: f64,
    /// Target, %.
    pub target_pct: f64,
    /// Whether the threshold changed.
    pub changed: bool,
}

/// What the compute thread sends to the persistence thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Record {
    /// A symbol and its scales (sent before any other record of the symbol).
    Symbol {
        /// Id.
        id: SymbolId,
        /// Name.
        name: SymbolName,
        /// Price scale.
        price: Scale,
        /// Quantity scale.
        qty: Scale,
    },
    /// A closed range bar.
    Bar {
        /// Symbol.
        symbol: SymbolId,
        /// The bar.
        bar: Bar,
    },
    /// An entry signal with its features.
    Signal {
        /// Symbol.
        symbol: SymbolId,
        /// The signal.
        signal: Signal,
    },
    /// A position was opened (with the signal's features for `entry_features`).
    Opened {
        /// Symbol.
        symbol: SymbolId,
        /// Trader: 0 = base, k = the k-th A/B variant.
        variant: u8,
        /// Its name.
        name: SymbolName,
        /// The position at entry.
        pos: Position,
        /// The signal's features.
        features: Features,
        /// What the gate measured.
        gate: GatePass,
    },
    /// An entry or exit fill (`fills`).
    Fill {
        /// Symbol.
        symbol: SymbolId,
        /// Trader: 0 = base, k = the k-th A/B variant.
        variant: u8,
        /// Position sequence number.
        seq: u64,
        /// Exchange time of the fill (a funding payment: the funding time).
        ts_ns: i64,
        /// Exchange time of the event that produced the order's decision (a triggered stop or a resting limit:
        /// the trade that triggered or filled it; equal to `ts_ns` when no latency applies).
        decision_ts_ns: i64,
        /// Entry, exit by reason, or funding.
        kind: FillKind,
        /// Maker, taker, or neither.
        liquidity: Liquidity,
        /// True for a buy.
        buy: bool,
        /// Quantity (steps).
        qty: i64,
        /// Price (ticks, VWAP; a funding payment: the mark price).
        px: f64,
        /// The order's reference price (ticks): a stop's triggering price, a SoftStop's decision price, a take
        /// profit's limit price, the touch an entry was decided at; `None` for a liquidation or funding.
        trigger_px: Option<f64>,
        /// Order latency applied (decision → fill), ns; 0 for exchange-side triggers and funding.
        latency_ns: i64,
        /// Fee, quote.
        fee: f64,
        /// Net PnL of the fill, quote (the entry's is minus its fee).
        pnl: f64,
    },
    /// A position was closed.
    Closed {
        /// Symbol.
        symbol: SymbolId,
        /// Trader: 0 = base, k = the k-th A/B variant.
        variant: u8,
        /// Its name.
        name: SymbolName,
        /// The position at close.
        pos: Position,
    },
    /// The stop of an open position moved to breakeven + alpha.
    StopMoved {
        /// Symbol.
        symbol: SymbolId,
        /// Trader: 0 = base, k = the k-th A/B variant.
        variant: u8,
        /// Its name.
        name: SymbolName,
        /// The new stop (ticks).
        stop: f64,
    },
    /// The daily loss limit stopped new entries.
    DailyLimitHit {
        /// Exchange time.
        ts_ns: i64,
        /// Balance, USDT.
        balance: f64,
    },
    /// A closed trade's PnL % for the symbol + UTC hour expectancy state.
    HourPnl {
        /// Symbol.
        symbol: SymbolId,
        /// Trader: 0 = base, k = the k-th A/B variant.
        variant: u8,
        /// UTC hour of the entry.
        hour: u8,
        /// Net PnL, % of notional.
        pnl_pct: f64,
    },
    /// The symbol's book needs a REST snapshot (live: to the control thread; replay: ignored, the recording has
    /// them).
    SnapshotRequest {
        /// Symbol.
        symbol: SymbolId,
        /// Its name (what the REST request needs).
        name: SymbolName,
    },
    /// An order report of the real account that changed what the venue knows of its position (testnet and live;
    /// `order_reports`).
    Exec {
        /// The report (its symbol is the record's).
        report: ExecReport,
        /// Exchange time of the real position's entry decision, ms: the paper position of the same decision has
        /// it as its entry time.
        decision_ms: i64,
    },
    /// The real account's new entries were halted (testnet and live; an alert): positions keep their exchange-side
    /// protection.
    EntriesHalted {
        /// Exchange time of the event that saw it, ms.
        exchange_ms: i64,
        /// Why.
        cause: HaltCause,
    },
    /// A burst tuning run (`volume_burst_tuning_logs`).
    Tuning {
        /// Symbol.
        symbol: SymbolId,
        /// The run.
        log: TuningLog,
    },
}

/// A message for the alert thread. (The trading record travels by value so the compute thread never allocates;
/// the size difference with the text variant is deliberate.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Alert {
    /// A trading record from the compute thread.
    Trade(Record),
    /// Text from the control thread.
    Text(String),
}

/// A position opened or closed on a symbol (compute thread → control thread, so that a symbol with an open
/// position is never unsubscribed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionEvent {
    /// The symbol.
    pub name: SymbolName,
    /// True when a position opened, false when one closed (or, with `drained`, none is open).
    pub open: bool,
    /// `Some(ticket)`: the symbol is draining under the [`DrainCmd::Drain`] with that ticket and no account holds a
    /// position on it, so none will open one (the control thread may unsubscribe it); `None` otherwise.
    pub drained: Option<u64>,
}

/// Control thread → compute thread: stop opening new positions on a symbol dropped by a reselection (existing ones
/// are managed to their exit), or resume because it was selected again before it was unsubscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainCmd {
    /// Drain the symbol; `ticket` (unique per drain) is echoed in [`PositionEvent::drained`] once it is flat, so a
    /// confirmation of an earlier drain is never taken for this one.
    Drain {
        /// The symbol.
        name: SymbolName,
        /// This drain's ticket.
        ticket: u64,
    },
    /// Trade the symbol normally again.
    Undrain {
        /// The symbol.
        name: SymbolName,
    },
}

impl DrainCmd {
    /// The symbol it is about.
    pub fn name(&self) -> SymbolName {
        match *self {
            DrainCmd::Drain { name, .. } | DrainCmd::Undrain { name } => name,
        }
    }
}

/// One stored symbol + UTC hour expectancy sample (loaded from the database at start, oldest first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HourSample {
    /// The symbol.
    pub symbol: SymbolName,
    /// The account (trader) index: 0 = base, then the variants in order.
    pub variant: u8,
    /// UTC hour, 0..24.
    pub hour: u8,
    /// Net PnL of the closed position, % of its entry notional.
    pub pnl_pct: f64,
}

impl From<(SymbolName, u8, u8, f64)> for HourSample {
    fn from((symbol, variant, hour, pnl_pct): (SymbolName, u8, u8, f64)) -> Self {
        HourSample { symbol, variant, hour, pnl_pct }
    }
}

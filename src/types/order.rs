//! The order vocabulary: what the compute thread asks for ([`OrderIntent`]), what comes back ([`ExecReport`]), and
//! the deterministic client order id ([`ClientOrderId`]) that ties them together.
//!
//! Both records are fixed-size `#[repr(C)]` `Copy` values so they can cross an SPSC ring without the heap. Prices
//! and quantities are integers in units of the symbol's tick and step (see [`crate::types::decimal::Scale`]);
//! amounts that are not on a grid (commission, realised PnL) are in 1e-8 units.
//!
//! The client order id is a pure function of (run, position, leg, attempt), so a resend after a timeout carries the
//! same id and Binance refuses the duplicate (`-4116`) instead of opening a second position.

use super::event::{EventKind, MarketEvent};
use super::symbols::SymbolId;

/// Buy or sell, as Binance's `side`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderSide {
    /// `BUY`.
    Buy = 1,
    /// `SELL`.
    Sell = 2,
}

impl OrderSide {
    /// Binance's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderSide::Buy => "BUY",
            OrderSide::Sell => "SELL",
        }
    }

    /// The opposite side (the side that closes a position opened with `self`).
    pub const fn opposite(self) -> Self {
        match self {
            OrderSide::Buy => OrderSide::Sell,
            OrderSide::Sell => OrderSide::Buy,
        }
    }
}

/// The order types the engine sends (Binance's `type`). Conditional types go through the Algo Order API.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// `MARKET`: entry, SoftStop, shutdown.
    Market = 1,
    /// `LIMIT`: TP1/TP2 (reduce-only).
    Limit = 2,
    /// `STOP_MARKET`: the exchange-side protective stop (`closePosition` or `reduceOnly`).
    StopMarket = 3,
    /// `TAKE_PROFIT_MARKET`.
    TakeProfitMarket = 4,
}

impl OrderType {
    /// Binance's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "MARKET",
            OrderType::Limit => "LIMIT",
            OrderType::StopMarket => "STOP_MARKET",
            OrderType::TakeProfitMarket => "TAKE_PROFIT_MARKET",
        }
    }

    /// A conditional (trigger) order, placed with `algoOrder.place` since Binance's Algo Order migration.
    pub const fn is_conditional(self) -> bool {
        matches!(self, OrderType::StopMarket | OrderType::TakeProfitMarket)
    }
}

/// Which price triggers a conditional order (Binance's `workingType`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkingType {
    /// `MARK_PRICE`.
    Mark = 1,
    /// `CONTRACT_PRICE` (last trade price; Binance's default).
    Contract = 2,
}

impl WorkingType {
    /// Binance's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkingType::Mark => "MARK_PRICE",
            WorkingType::Contract => "CONTRACT_PRICE",
        }
    }
}

/// Time in force of a LIMIT order (ignored for the other types, which are not sent one).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc = 1,
    /// Immediate or cancel.
    Ioc = 2,
    /// Fill or kill.
    Fok = 3,
    /// Post only (`GTX`).
    Gtx = 4,
}

impl TimeInForce {
    /// Binance's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
            TimeInForce::Gtx => "GTX",
        }
    }
}

/// Which order of a position an intent is (part of the client order id).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The MARKET entry.
    Entry = 0,
    /// The protective STOP_MARKET placed right after the entry fill.
    Stop = 1,
    /// First take-profit (reduce-only LIMIT).
    Tp1 = 2,
    /// Second take-profit (reduce-only LIMIT).
    Tp2 = 3,
    /// SoftStop exit (reduce-only MARKET).
    SoftStop = 4,
    /// Shutdown / flatten (reduce-only MARKET).
    Shutdown = 5,
    /// The stop moved to breakeven (cancel/replace of [`Leg::Stop`]).
    Breakeven = 6,
}

impl Leg {
    const ALL: [Leg; 7] = [Leg::Entry, Leg::Stop, Leg::Tp1, Leg::Tp2, Leg::SoftStop, Leg::Shutdown, Leg::Breakeven];

    /// The one letter naming this leg inside a client order id.
    pub const fn code(self) -> u8 {
        b"ESABXQK"[self as usize]
    }

    /// The leg named by [`Leg::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        Leg::ALL.into_iter().find(|l| l.code() == c)
    }

    /// The slot of an exit leg among a real position's exit fills (stop, tp1, tp2, close, breakeven); `None` for
    /// the entry.
    pub const fn exit_slot(self) -> Option<usize> {
        match self {
            Leg::Stop => Some(0),
            Leg::Tp1 => Some(1),
            Leg::Tp2 => Some(2),
            Leg::SoftStop | Leg::Shutdown => Some(3),
            Leg::Breakeven => Some(4),
            Leg::Entry => None,
        }
    }

    /// Its name in the database (`order_reports.leg`).
    pub const fn name(self) -> &'static str {
        match self {
            Leg::Entry => "entry",
            Leg::Stop => "stop",
            Leg::Tp1 => "tp1",
            Leg::Tp2 => "tp2",
            Leg::SoftStop => "softstop",
            Leg::Shutdown => "shutdown",
            Leg::Breakeven => "breakeven",
        }
    }
}

/// Deterministic client order id: (run, position, leg, attempt) ⇄ `rst-<run:8 hex>-<position:8 hex>-<leg><attempt:2 hex>`.
///
/// 25 characters of `[a-z0-9-]`, inside Binance's `^[\.A-Z\:/a-z0-9_-]{1,36}$`. Anything else (ids Binance
/// generates, `autoclose-…` liquidations) does not parse, so foreign orders are told apart.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientOrderId {
    /// The run (database run id, truncated to 32 bits).
    pub run_id: u32,
    /// The position within the run.
    pub position_id: u32,
    /// Which order of the position.
    pub leg: Leg,
    /// Resend / replace counter: a resend after a timeout keeps it, a new order after a reject increments it.
    pub attempt: u8,
}

/// Length of a [`ClientOrderId`] as text.
pub const CLIENT_ID_LEN: usize = 25;

/// Why a string is not one of our client order ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    /// Wrong length or not our `rst-` layout (an id this engine did not make).
    #[error("not a rusto client order id")]
    Foreign,
    /// Our layout with a bad hex digit or an unknown leg letter.
    #[error("malformed rusto client order id")]
    Malformed,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(out: &mut [u8], v: u32) {
    let n = out.len();
    for (i, d) in out.iter_mut().enumerate() {
        *d = HEX[((v >> (4 * (n - 1 - i))) & 0xf) as usize];
    }
}

fn read_hex(s: &[u8]) -> Result<u32, ClientIdError> {
    s.iter().try_fold(0u32, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return Err(ClientIdError::Malformed),
        };
        Ok(acc << 4 | d as u32)
    })
}

impl ClientOrderId {
    /// The id as its 25 ASCII bytes.
    pub fn to_bytes(&self) -> [u8; CLIENT_ID_LEN] {
        let mut b = *b"rst-00000000-00000000-E00";
        write_hex(&mut b[4..12], self.run_id);
        write_hex(&mut b[13..21], self.position_id);
        b[22] = self.leg.code();
        write_hex(&mut b[23..25], self.attempt as u32);
        b
    }

    /// Parses [`ClientOrderId::to_bytes`] back (exactly; upper-case hex is refused so the mapping is one to one).
    pub fn parse(s: &[u8]) -> Result<Self, ClientIdError> {
        if s.len() != CLIENT_ID_LEN || &s[..4] != b"rst-" || s[12] != b'-' || s[21] != b'-' {
            return Err(ClientIdError::Foreign);
        }
        let leg = Leg::from_code(s[22]).ok_or(ClientIdError::Malformed)?;
        Ok(ClientOrderId {
            run_id: read_hex(&s[4..12])?,
            position_id: read_hex(&s[13..21])?,
            leg,
            attempt: read_hex(&s[23..25])? as u8,
        })
    }
}

/// What an [`OrderIntent`] asks for.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntentKind {
    /// Place a new order with `client` as its id.
    Place = 1,
    /// Cancel the working order whose id is `client`.
    Cancel = 2,
    /// Change price and quantity of the working LIMIT order `client` (`order.modify`; LIMIT only).
    Modify = 3,
}

/// One order decision of the compute thread, as it crosses the SPSC ring to the network thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderIntent {
    /// LIMIT price in ticks (0 when not used).
    pub price_ticks: i64,
    /// Trigger price of a conditional order in ticks (0 when not used).
    pub stop_ticks: i64,
    /// Quantity in steps (0 with `close_position`).
    pub qty_steps: i64,
    /// Monotonic time of the decision (latency: decision → frame written).
    pub decided_mono_ns: i64,
    /// The order's id (for Cancel/Modify: the target's id).
    pub client: ClientOrderId,
    /// The symbol.
    pub symbol: SymbolId,
    /// Place, cancel or modify.
    pub kind: IntentKind,
    /// Buy or sell.
    pub side: OrderSide,
    /// Order type.
    pub order_type: OrderType,
    /// Trigger price source of a conditional order.
    pub working_type: WorkingType,
    /// Time in force of a LIMIT order.
    pub time_in_force: TimeInForce,
    /// Only reduce the position.
    pub reduce_only: bool,
    /// Close the whole position when triggered (conditional orders; no quantity).
    pub close_position: bool,
    /// Binance's `priceProtect` for conditional orders.
    pub price_protect: bool,
}

const _: () = assert!(size_of::<OrderIntent>() == 56);

/// Why the real account's new entries are halted (the venue keeps the first cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaltCause {
    /// The kill switch (`SIGUSR1` or the halt file).
    Switch,
    /// The day's realised loss reached `daily_loss_max`.
    DailyLoss,
    /// The exchange asked us to back off (429/418, `-1003`).
    RateLimited,
    /// An error the venue has no rule for.
    UnknownError,
    /// A protective order could not be placed or kept.
    Protection,
}

impl HaltCause {
    /// Every cause, in declaration order.
    pub const ALL: [HaltCause; 5] = [
        HaltCause::Switch,
        HaltCause::DailyLoss,
        HaltCause::RateLimited,
        HaltCause::UnknownError,
        HaltCause::Protection,
    ];

    /// Its name in the metrics (`snake_case`).
    pub const fn name(self) -> &'static str {
        match self {
            HaltCause::Switch => "switch",
            HaltCause::DailyLoss => "daily_loss",
            HaltCause::RateLimited => "rate_limited",
            HaltCause::UnknownError => "unknown_error",
            HaltCause::Protection => "protection",
        }
    }
}

/// What happened to an order, as reported by the exchange.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecKind {
    /// Accepted (`NEW`).
    Ack = 1,
    /// Partly filled (`PARTIALLY_FILLED`).
    PartialFill = 2,
    /// Completely filled (`FILLED`).
    Fill = 3,
    /// Cancelled (`CANCELED`).
    Canceled = 4,
    /// Refused, with `error_code`.
    Rejected = 5,
    /// Expired (`EXPIRED`, `EXPIRED_IN_MATCH`).
    Expired = 6,
    /// Price/quantity amended (`order.modify`; execution type `AMENDMENT`).
    Amended = 7,
}

impl ExecKind {
    /// Its name in the database (`order_reports.kind`).
    pub const fn name(self) -> &'static str {
        match self {
            ExecKind::Ack => "ack",
            ExecKind::PartialFill => "partial_fill",
            ExecKind::Fill => "fill",
            ExecKind::Canceled => "canceled",
            ExecKind::Rejected => "rejected",
            ExecKind::Expired => "expired",
            ExecKind::Amended => "amended",
        }
    }

    /// A fill, complete or partial.
    pub const fn is_fill(self) -> bool {
        matches!(self, ExecKind::Fill | ExecKind::PartialFill)
    }
}

/// An acknowledgement, fill, cancel, reject or expiry, as it travels back on the inbound path.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// Binance's order id (algo id for conditional orders; 0 when unknown, e.g. a reject).
    pub exchange_order_id: i64,
    /// Price of this fill in ticks (0 when not a fill).
    pub last_price_ticks: i64,
    /// Quantity of this fill in steps (0 when not a fill).
    pub last_qty_steps: i64,
    /// Filled so far in steps.
    pub cum_qty_steps: i64,
    /// Commission of this fill in 1e-8 of the commission asset, as Binance's `n` gives it: positive is a charge
    /// (a negative value is a rebate).
    pub commission_e8: i64,
    /// Realised profit of this fill in 1e-8 of the margin asset.
    pub realized_pnl_e8: i64,
    /// Exchange time of the event (ms).
    pub exchange_ms: i64,
    /// Binance error code of a reject (0 otherwise).
    pub error_code: i32,
    /// Our id for the order (meaningful only when `client_known`).
    pub client: ClientOrderId,
    /// The symbol.
    pub symbol: SymbolId,
    /// What happened.
    pub kind: ExecKind,
    /// Side of the order.
    pub side: OrderSide,
    /// The fill was on the maker side.
    pub maker: bool,
    /// `client` parsed as one of our ids (false for foreign orders: manual, liquidation, another bot).
    pub client_known: bool,
}

const _: () = assert!(size_of::<ExecReport>() == 80);

/// Why two events are not an order report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExecDecodeError {
    /// The events are not an `Exec` followed by an `ExecMore` of the same symbol.
    #[error("not an Exec + ExecMore pair of one symbol")]
    NotAPair,
    /// A field holds a value no encoder writes (exec kind, side or leg).
    #[error("order report field out of range")]
    OutOfRange,
}

const EXEC_SELL: u8 = 1;
const EXEC_MAKER: u8 = 2;
const EXEC_KNOWN: u8 = 4;

impl ExecKind {
    const ALL: [ExecKind; 7] = [
        ExecKind::Ack,
        ExecKind::PartialFill,
        ExecKind::Fill,
        ExecKind::Canceled,
        ExecKind::Rejected,
        ExecKind::Expired,
        ExecKind::Amended,
    ];

    fn from_u8(v: u8) -> Option<Self> {
        ExecKind::ALL.into_iter().find(|k| *k as u8 == v)
    }
}

impl ExecReport {
    /// A report of one of our intents: `kind`, filled `cum_qty_steps` in total, of which this report's fill is all of
    /// it at `fill_px_ticks` (0 and 0 for a report that is not a fill); no fee, no PnL, no error, exchange id 0.
    pub fn of_intent(
        i: &OrderIntent,
        kind: ExecKind,
        cum_qty_steps: i64,
        fill_px_ticks: i64,
        exchange_ms: i64,
    ) -> Self {
        ExecReport {
            exchange_order_id: 0,
            last_price_ticks: fill_px_ticks,
            last_qty_steps: cum_qty_steps,
            cum_qty_steps,
            commission_e8: 0,
            realized_pnl_e8: 0,
            exchange_ms,
            error_code: 0,
            client: i.client,
            symbol: i.symbol,
            kind,
            side: i.side,
            maker: false,
            client_known: true,
        }
    }

    /// The report as the two events it travels in on the inbound path (the same ring and the same order as market
    /// data: see [`EventKind::Exec`]). `local_ts_ns` and `stamp_ns` are the read's, as for a market frame.
    pub fn to_events(&self, local_ts_ns: i64, stamp_ns: u64) -> [MarketEvent; 2] {
        let exch_ns = self.exchange_ms.saturating_mul(1_000_000);
        let mut a = MarketEvent::new(EventKind::Exec, self.symbol, exch_ns, local_ts_ns, stamp_ns);
        a.flags = self.kind as u8;
        a.p = [self.exchange_order_id, self.last_price_ticks, self.last_qty_steps, self.cum_qty_steps];
        let mut b = MarketEvent::new(EventKind::ExecMore, self.symbol, exch_ns, local_ts_ns, stamp_ns);
        b.flags = if self.side == OrderSide::Sell { EXEC_SELL } else { 0 }
            | if self.maker { EXEC_MAKER } else { 0 }
            | if self.client_known { EXEC_KNOWN } else { 0 };
        let c = self.client;
        let ids = (u64::from(c.run_id) << 32) | u64::from(c.position_id);
        let tail = u64::from(c.leg.code()) | (u64::from(c.attempt) << 8) | (u64::from(self.error_code as u32) << 32);
        b.p = [self.commission_e8, self.realized_pnl_e8, ids as i64, tail as i64];
        [a, b]
    }

    /// The report back from its two events ([`ExecReport::to_events`]).
    pub fn from_events(a: &MarketEvent, b: &MarketEvent) -> Result<Self, ExecDecodeError> {
        if a.kind != EventKind::Exec || b.kind != EventKind::ExecMore || a.symbol != b.symbol {
            return Err(ExecDecodeError::NotAPair);
        }
        let kind = ExecKind::from_u8(a.flags).ok_or(ExecDecodeError::OutOfRange)?;
        let (ids, tail) = (b.p[2] as u64, b.p[3] as u64);
        let leg = Leg::from_code(tail as u8).ok_or(ExecDecodeError::OutOfRange)?;
        let client =
            ClientOrderId { run_id: (ids >> 32) as u32, position_id: ids as u32, leg, attempt: (tail >> 8) as u8 };
        Ok(ExecReport {
            exchange_order_id: a.p[0],
            last_price_ticks: a.p[1],
            last_qty_steps: a.p[2],
            cum_qty_steps: a.p[3],
            commission_e8: b.p[0],
            realized_pnl_e8: b.p[1],
            exchange_ms: a.exch_ts_ns / 1_000_000,
            error_code: (tail >> 32) as u32 as i32,
            client,
            symbol: a.symbol,
            kind,
            side: if b.flags & EXEC_SELL != 0 { OrderSide::Sell } else { OrderSide::Buy },
            maker: b.flags & EXEC_MAKER != 0,
            client_known: b.flags & EXEC_KNOWN != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_round_trips_and_fits_binance_rule() {
        for (run, pos, leg, attempt) in
            [(0, 0, Leg::Entry, 0), (u32::MAX, 7, Leg::Breakeven, 255), (1234, 99, Leg::Tp2, 3)]
        {
            let id = ClientOrderId { run_id: run, position_id: pos, leg, attempt };
            let b = id.to_bytes();
            assert!(b.len() <= 36);
            assert!(b.iter().all(|&c| c.is_ascii_alphanumeric() || b".:/_-".contains(&c)));
            assert_eq!(ClientOrderId::parse(&b), Ok(id));
        }
        for leg in Leg::ALL {
            assert_eq!(Leg::from_code(leg.code()), Some(leg));
        }
    }

    #[test]
    fn exec_reports_round_trip_through_their_two_events() {
        let base = ExecReport {
            exchange_order_id: 8_389_765_791_412_361_325,
            last_price_ticks: 6_512_340,
            last_qty_steps: 17,
            cum_qty_steps: 34,
            commission_e8: -1_234_567,
            realized_pnl_e8: i64::MIN + 1,
            exchange_ms: 1_733_112_345_678,
            error_code: -2019,
            client: ClientOrderId { run_id: u32::MAX, position_id: 9, leg: Leg::Tp2, attempt: 255 },
            symbol: 513,
            kind: ExecKind::Rejected,
            side: OrderSide::Sell,
            maker: true,
            client_known: true,
        };
        for kind in ExecKind::ALL {
            for side in [OrderSide::Buy, OrderSide::Sell] {
                let r = ExecReport { kind, side, maker: side == OrderSide::Buy, ..base };
                let [a, b] = r.to_events(5, 6);
                assert_eq!((a.local_ts_ns, b.stamp_ns), (5, 6));
                assert_eq!(ExecReport::from_events(&a, &b), Ok(r));
            }
        }
        let [a, mut b] = base.to_events(0, 0);
        assert_eq!(ExecReport::from_events(&b, &a), Err(ExecDecodeError::NotAPair));
        b.symbol += 1;
        assert_eq!(ExecReport::from_events(&a, &b), Err(ExecDecodeError::NotAPair));
        let [mut a, b] = base.to_events(0, 0);
        a.flags = 0;
        assert_eq!(ExecReport::from_events(&a, &b), Err(ExecDecodeError::OutOfRange));
    }

    #[test]
    fn foreign_and_malformed_ids_are_refused() {
        assert_eq!(ClientOrderId::parse(b"TEST"), Err(ClientIdError::Foreign));
        assert_eq!(ClientOrderId::parse(b"autoclose-1568879465650000000"), Err(ClientIdError::Foreign));
        assert_eq!(ClientOrderId::parse(b"rst-0000000A-00000000-E00"), Err(ClientIdError::Malformed));
        assert_eq!(ClientOrderId::parse(b"rst-00000000-00000000-Z00"), Err(ClientIdError::Malformed));
        assert_eq!(ClientOrderId::parse(b"rst-00000000+00000000-E00"), Err(ClientIdError::Foreign));
    }
}

//! WebSocket API responses and REST order bodies → typed values and [`ExecReport`]s.
//!
//! A WebSocket API response is `{"id", "status", "result" | "error" {code, msg}, "rateLimits"?}`; the caller knows
//! which method it sent for an id, so it names the result type (`parse_ws::<OrderResult>` …). Unknown fields are
//! ignored; anything malformed is a [`WireError`], never a panic. Strings are borrowed from the input, arrays are
//! bounded ([`Bounded`]), so nothing grows without a limit.

use std::borrow::Cow;
use std::marker::PhantomData;

use arrayvec::ArrayVec;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::types::decimal::parse_e8;
use crate::types::{
    ClientOrderId, ExecKind, ExecReport, OrderIntent, OrderSide, Scale, SymbolId, SymbolName, SymbolTable,
};

use super::error::WireError;

/// Most `rateLimits` entries kept (Binance sends up to 3).
pub const MAX_RATE_LIMITS: usize = 8;
/// Most positions in one `account.position` answer or `ACCOUNT_UPDATE`.
pub const MAX_POSITIONS: usize = 64;
/// Longest request id kept (UUIDs are 36 characters).
pub const MAX_ID_LEN: usize = 64;

/// A JSON array of at most `N` items, without the heap; more items are an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded<T, const N: usize>(pub ArrayVec<T, N>);

impl<T, const N: usize> Default for Bounded<T, N> {
    fn default() -> Self {
        Bounded(ArrayVec::new())
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Bounded<T, N>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {N} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = ArrayVec::new();
                while let Some(x) = seq.next_element()? {
                    v.try_push(x).map_err(|_| de::Error::custom(format_args!("more than {N} items")))?;
                }
                Ok(Bounded(v))
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

/// The `id` of a response: what the request sent (integer or string), or `null` (e.g. a revoked session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestId {
    /// An integer id (what our encoders send).
    Int(u64),
    /// A string id, kept inline.
    Text([u8; MAX_ID_LEN], u8),
    /// `null`.
    Null,
}

impl RequestId {
    /// The text of a string id.
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            RequestId::Text(b, n) => Some(&b[..*n as usize]),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RequestId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer, a string or null")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RequestId, E> {
                Ok(RequestId::Int(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RequestId, E> {
                u64::try_from(v).map(RequestId::Int).map_err(|_| E::custom("negative id"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RequestId, E> {
                let b = v.as_bytes();
                if b.len() > MAX_ID_LEN {
                    return Err(E::custom("id too long"));
                }
                let mut t = [0u8; MAX_ID_LEN];
                t[..b.len()].copy_from_slice(b);
                Ok(RequestId::Text(t, b.len() as u8))
            }
            fn visit_unit<E: de::Error>(self) -> Result<RequestId, E> {
                Ok(RequestId::Null)
            }
        }
        d.deserialize_any(V)
    }
}

/// `rateLimitType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateLimitType {
    /// IP request weight.
    RequestWeight,
    /// Account order count.
    Orders,
    /// Raw request count.
    RawRequests,
}

/// `interval` of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateInterval {
    /// Seconds.
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days.
    Day,
}

/// One `rateLimits` entry: `count` used of `limit` per `interval_num` × `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// What is limited.
    pub rate_limit_type: RateLimitType,
    /// Interval unit.
    pub interval: RateInterval,
    /// Interval length in units.
    pub interval_num: u32,
    /// The limit.
    pub limit: u32,
    /// Used so far.
    pub count: u32,
}

/// Binance's `{code, msg}` error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError<'a> {
    /// The error code (see [`super::error::action_for`]).
    pub code: i32,
    /// The message (varies; codes are what matter).
    #[serde(borrow)]
    pub msg: Cow<'a, str>,
}

/// A WebSocket API response with a `result` of type `R`.
#[derive(Debug, Clone, PartialEq)]
pub struct WsResponse<'a, R> {
    /// The request's id.
    pub id: RequestId,
    /// HTTP-like status (200, 400, 401, 403, 429, 418 …).
    pub status: u16,
    /// `result` on success, `error` on failure.
    pub outcome: Result<R, ApiError<'a>>,
    /// `rateLimits`, when present.
    pub rate_limits: ArrayVec<RateLimit, MAX_RATE_LIMITS>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWs<'a, R> {
    id: RequestId,
    status: u16,
    result: Option<R>,
    #[serde(borrow)]
    error: Option<ApiError<'a>>,
    #[serde(default)]
    rate_limits: Bounded<RateLimit, MAX_RATE_LIMITS>,
}

/// Parses one WebSocket API response frame whose `result` is an `R`.
pub fn parse_ws<'a, R: Deserialize<'a>>(frame: &'a [u8]) -> Result<WsResponse<'a, R>, WireError> {
    let raw: RawWs<'a, R> = serde_json::from_slice(frame).map_err(WireError::json)?;
    let outcome = match (raw.result, raw.error) {
        (_, Some(e)) => Err(e),
        (Some(r), None) => Ok(r),
        (None, None) => return Err(WireError::Empty),
    };
    Ok(WsResponse { id: raw.id, status: raw.status, outcome, rate_limits: raw.rate_limits.0 })
}

/// Parses a REST order body (`POST` / `DELETE` / `GET /fapi/v1/order`: the order object, as in the WebSocket API's
/// `result`).
pub fn parse_rest_order(body: &[u8]) -> Result<OrderResult<'_>, WireError> {
    serde_json::from_slice(body).map_err(WireError::json)
}

/// Parses a REST error body `{"code": …, "msg": …}`.
pub fn parse_rest_error(body: &[u8]) -> Result<ApiError<'_>, WireError> {
    serde_json::from_slice(body).map_err(WireError::json)
}

/// The order object of `order.place` / `order.cancel` / `order.modify` / `order.status` and of the REST order
/// endpoints (fields the engine uses; the rest is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResult<'a> {
    /// Binance's order id.
    pub order_id: i64,
    /// Symbol.
    pub symbol: &'a str,
    /// Order status (`NEW`, `PARTIALLY_FILLED`, `FILLED`, `CANCELED`, `EXPIRED`, `EXPIRED_IN_MATCH`).
    pub status: &'a str,
    /// The client order id.
    pub client_order_id: &'a str,
    /// Limit price.
    pub price: &'a str,
    /// Original quantity.
    pub orig_qty: &'a str,
    /// Filled quantity.
    pub executed_qty: &'a str,
    /// `BUY` / `SELL`.
    pub side: &'a str,
    /// Order type.
    #[serde(rename = "type")]
    pub order_type: &'a str,
    /// Last update (ms); absent from some answers.
    #[serde(default)]
    pub update_time: i64,
}

/// The result of `algoOrder.place` (a conditional order in the Algo service).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlgoResult<'a> {
    /// Binance's algo id.
    pub algo_id: i64,
    /// Our `clientAlgoId`.
    pub client_algo_id: &'a str,
    /// `orderType` (`STOP_MARKET` …).
    pub order_type: &'a str,
    /// Symbol.
    pub symbol: &'a str,
    /// Side.
    pub side: &'a str,
    /// `algoStatus` (`NEW`, `CANCELED`, `TRIGGERING`, `TRIGGERED`, `FINISHED`, `REJECTED`, `EXPIRED`).
    pub algo_status: &'a str,
    /// Trigger price.
    pub trigger_price: &'a str,
    /// Last update (ms).
    #[serde(default)]
    pub update_time: i64,
}

/// The result of `algoOrder.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlgoCancelResult<'a> {
    /// Binance's algo id.
    pub algo_id: i64,
    /// Our `clientAlgoId`.
    pub client_algo_id: &'a str,
    /// `"200"` on success.
    pub code: &'a str,
}

/// The result of `session.logon` / `session.status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResult<'a> {
    /// The authenticated key (`null` when logged out).
    pub api_key: Option<&'a str>,
    /// When the key was authenticated (ms).
    pub authorized_since: Option<i64>,
    /// When the connection was opened (ms).
    pub connected_since: i64,
    /// Server time of the answer (ms): a clock-offset sample.
    pub server_time: i64,
}

/// One row of `v2/account.position` (amounts in 1e-8 units: they are compared with the engine's, not traded on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionInfo {
    /// Symbol.
    pub symbol: SymbolName,
    /// `positionSide` is `BOTH` (one-way mode).
    pub one_way: bool,
    /// Signed position amount, 1e-8 units of the base asset.
    pub amount_e8: i64,
    /// Entry price, 1e-8.
    pub entry_price_e8: i64,
    /// Unrealised profit, 1e-8 of the margin asset.
    pub unrealized_pnl_e8: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPosition<'a> {
    symbol: &'a str,
    position_side: &'a str,
    position_amt: &'a str,
    entry_price: &'a str,
    un_realized_profit: &'a str,
}

/// The result of `v2/account.position`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Positions(pub ArrayVec<PositionInfo, MAX_POSITIONS>);

impl<'de> Deserialize<'de> for Positions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Bounded::<RawPosition<'de>, MAX_POSITIONS>::deserialize(d)?;
        let mut out = ArrayVec::new();
        for p in raw.0 {
            let e8 = |s: &str, f: &'static str| parse_e8(s.as_bytes()).map_err(|_| de::Error::custom(f));
            out.push(PositionInfo {
                symbol: SymbolName::new(p.symbol.as_bytes()).ok_or_else(|| de::Error::custom("symbol"))?,
                one_way: p.position_side == "BOTH",
                amount_e8: e8(p.position_amt, "positionAmt")?,
                entry_price_e8: e8(p.entry_price, "entryPrice")?,
                unrealized_pnl_e8: e8(p.un_realized_profit, "unRealizedProfit")?,
            });
        }
        Ok(Positions(out))
    }
}

/// The symbol's id and (tick, step) scales.
pub(crate) fn symbol_scales(table: &SymbolTable, name: &str) -> Result<(SymbolId, Scale, Scale), WireError> {
    let unknown = || WireError::UnknownSymbol(name.chars().take(32).collect());
    let n = SymbolName::new(name.as_bytes()).ok_or_else(unknown)?;
    let id = table.find(&n).ok_or_else(unknown)?;
    let e = table.get(id);
    match (e.price, e.qty) {
        (Some(p), Some(q)) => Ok((id, p, q)),
        _ => Err(unknown()),
    }
}

/// `BUY` / `SELL`.
pub(crate) fn side_of(s: &str) -> Result<OrderSide, WireError> {
    match s {
        "BUY" => Ok(OrderSide::Buy),
        "SELL" => Ok(OrderSide::Sell),
        _ => Err(WireError::BadValue("side")),
    }
}

/// An order status (`X`) as an execution kind.
pub(crate) fn kind_of_status(s: &str) -> Result<ExecKind, WireError> {
    Ok(match s {
        "NEW" => ExecKind::Ack,
        "PARTIALLY_FILLED" => ExecKind::PartialFill,
        "FILLED" => ExecKind::Fill,
        "CANCELED" => ExecKind::Canceled,
        "EXPIRED" | "EXPIRED_IN_MATCH" => ExecKind::Expired,
        _ => return Err(WireError::BadValue("status")),
    })
}

/// A decimal field on the symbol's grid.
pub(crate) fn units(scale: Scale, s: &str, field: &'static str) -> Result<i64, WireError> {
    scale.parse(s.as_bytes()).map_err(|_| WireError::BadDecimal(field))
}

/// An order object (WebSocket API result or REST body) as an [`ExecReport`]. It carries the order's state, not a
/// fill: the fills themselves come from `ORDER_TRADE_UPDATE`.
pub fn exec_from_order(r: &OrderResult<'_>, table: &SymbolTable) -> Result<ExecReport, WireError> {
    let (symbol, _tick, step) = symbol_scales(table, r.symbol)?;
    let client = ClientOrderId::parse(r.client_order_id.as_bytes());
    Ok(ExecReport {
        exchange_order_id: r.order_id,
        last_price_ticks: 0,
        last_qty_steps: 0,
        cum_qty_steps: units(step, r.executed_qty, "executedQty")?,
        commission_e8: 0,
        realized_pnl_e8: 0,
        exchange_ms: r.update_time,
        error_code: 0,
        client: client.unwrap_or(FOREIGN),
        symbol,
        kind: kind_of_status(r.status)?,
        side: side_of(r.side)?,
        maker: false,
        client_known: client.is_ok(),
    })
}

/// The client id stored in a report whose id is not ours (`client_known` false).
pub(crate) const FOREIGN: ClientOrderId =
    ClientOrderId { run_id: 0, position_id: 0, leg: crate::types::Leg::Entry, attempt: 0 };

/// The report of a request Binance refused (error response): the intent it answered, and the code.
pub fn rejected(o: &OrderIntent, code: i32, exchange_ms: i64) -> ExecReport {
    ExecReport { error_code: code, ..ExecReport::of_intent(o, ExecKind::Rejected, 0, 0, exchange_ms) }
}

/// Trades of one order read from one `GET /fapi/v1/userTrades` answer at most (a MARKET order of this engine fills
/// in a few trades; more is an error, and the fills are then left to the user data stream).
pub const MAX_ORDER_TRADES: usize = 96;

/// One row of `GET /fapi/v1/userTrades` (…/trade/rest-api/Account-Trade-List; fields the engine uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradeRow<'a> {
    /// Trade id.
    pub id: i64,
    /// The order's id.
    pub order_id: i64,
    /// Symbol.
    pub symbol: &'a str,
    /// `BUY` / `SELL`.
    pub side: &'a str,
    /// Price.
    pub price: &'a str,
    /// Quantity.
    pub qty: &'a str,
    /// Commission, positive when paid (as the user stream's `n`).
    pub commission: &'a str,
    /// Realised PnL.
    pub realized_pnl: &'a str,
    /// Maker side.
    pub maker: bool,
    /// Time, ms.
    pub time: i64,
}

/// Parses a `userTrades` body (an array, oldest first as Binance returns it).
pub fn parse_user_trades(body: &[u8]) -> Result<Bounded<TradeRow<'_>, MAX_ORDER_TRADES>, WireError> {
    serde_json::from_slice(body).map_err(WireError::json)
}

/// The fills of `rows` (one order's trades) as reports of `client`'s order of `qty_steps`: cumulative quantity in
/// trade-id order, `Fill` once the whole quantity filled, each with its own price, commission and realised PnL, as
/// `ORDER_TRADE_UPDATE` would have reported them.
pub fn fills_from_trades(
    rows: &[TradeRow<'_>],
    client: ClientOrderId,
    qty_steps: i64,
    table: &SymbolTable,
) -> Result<ArrayVec<ExecReport, MAX_ORDER_TRADES>, WireError> {
    let mut sorted: ArrayVec<&TradeRow<'_>, MAX_ORDER_TRADES> = rows.iter().collect();
    sorted.sort_unstable_by_key(|r| r.id);
    let mut out = ArrayVec::new();
    let mut cum = 0i64;
    for r in sorted {
        let (symbol, tick, step) = symbol_scales(table, r.symbol)?;
        let last = units(step, r.qty, "qty")?;
        cum = cum.checked_add(last).filter(|_| last >= 0).ok_or(WireError::BadValue("qty"))?;
        let fee = parse_e8(r.commission.as_bytes()).map_err(|_| WireError::BadDecimal("commission"))?;
        out.push(ExecReport {
            exchange_order_id: r.order_id,
            last_price_ticks: units(tick, r.price, "price")?,
            last_qty_steps: last,
            cum_qty_steps: cum,
            commission_e8: fee,
            realized_pnl_e8: parse_e8(r.realized_pnl.as_bytes()).map_err(|_| WireError::BadDecimal("realizedPnl"))?,
            exchange_ms: r.time,
            error_code: 0,
            client,
            symbol,
            kind: if cum >= qty_steps { ExecKind::Fill } else { ExecKind::PartialFill },
            side: side_of(r.side)?,
            maker: r.maker,
            client_known: true,
        });
    }
    Ok(out)
}

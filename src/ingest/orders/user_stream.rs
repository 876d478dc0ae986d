//! The user data stream (`/private` route, listenKey): `ORDER_TRADE_UPDATE` → [`ExecReport`], `ACCOUNT_UPDATE`
//! → [`AccountUpdate`] (the real position), `ALGO_UPDATE` → [`AlgoUpdate`] (the protective stop's life),
//! `listenKeyExpired`. Other event types (`TRADE_LITE`, `MARGIN_CALL`, `ACCOUNT_CONFIG_UPDATE` …) are returned as
//! [`UserEvent::Other`] for the caller to count. Shapes: the examples in `tests/data/binance-docs-orders/uds_*.txt`.

use arrayvec::ArrayVec;
use serde::Deserialize;

use crate::types::decimal::parse_e8;
use crate::types::{ClientOrderId, ExecKind, ExecReport, OrderSide, SymbolName, SymbolTable};

use super::error::WireError;
use super::response::{Bounded, FOREIGN, MAX_POSITIONS, kind_of_status, side_of, symbol_scales, units};

/// Most balances in one `ACCOUNT_UPDATE`.
pub const MAX_BALANCES: usize = 16;

/// One user-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent<'a> {
    /// `ORDER_TRADE_UPDATE`: an order's new state or a fill.
    Order(ExecReport),
    /// `ACCOUNT_UPDATE`: balances and positions that changed, written into the caller's [`AccountUpdate`] (it is
    /// ~3.7 KB: kept out of the enum so every event stays small and nothing is boxed).
    Account,
    /// `ALGO_UPDATE`: a conditional order's state in the Algo service.
    Algo(AlgoUpdate),
    /// `listenKeyExpired`: no more events until a new listenKey is used.
    ListenKeyExpired {
        /// Event time (ms).
        event_ms: i64,
    },
    /// Any other event type (named by its `e`).
    Other(&'a str),
}

/// The event type: the string value of the top-level `"e"` key, found without parsing the rest (serde_json's
/// skipping of nested values it is not asked for uses a growable scratch buffer; this scan needs nothing).
fn event_type(msg: &[u8]) -> Result<&str, WireError> {
    let malformed = || WireError::Malformed("no top-level \"e\" string".into());
    let (mut depth, mut i) = (0usize, 0usize);
    while i < msg.len() {
        match msg[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1).ok_or_else(malformed)?,
            b'"' => {
                let end = string_end(msg, i + 1).ok_or_else(malformed)?;
                let rest = &msg[end + 1..];
                let colon = rest.iter().position(|c| !c.is_ascii_whitespace());
                let is_key = colon.is_some_and(|k| rest[k] == b':');
                if depth == 1 && is_key && &msg[i + 1..end] == b"e" {
                    let k = colon.unwrap_or(0) + 1;
                    let v = rest[k..].iter().position(|c| !c.is_ascii_whitespace()).map(|v| end + 1 + k + v);
                    let v = v.filter(|&v| msg[v] == b'"').ok_or_else(malformed)?;
                    let v_end = string_end(msg, v + 1).ok_or_else(malformed)?;
                    return std::str::from_utf8(&msg[v + 1..v_end]).map_err(|_| malformed());
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    Err(malformed())
}

/// Index of the closing quote of a JSON string whose body starts at `start`.
fn string_end(msg: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < msg.len() {
        match msg[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Parses one user-stream message. Order updates need the symbol table for the tick/step scales; an
/// `ACCOUNT_UPDATE` is written into `account` (untouched for other events).
pub fn parse_user_event<'a>(
    msg: &'a [u8],
    table: &SymbolTable,
    account: &mut AccountUpdate,
) -> Result<UserEvent<'a>, WireError> {
    Ok(match event_type(msg)? {
        "ORDER_TRADE_UPDATE" => UserEvent::Order(order_update(msg, table)?),
        "ACCOUNT_UPDATE" => {
            *account = account_update(msg)?;
            UserEvent::Account
        }
        "ALGO_UPDATE" => UserEvent::Algo(algo_update(msg)?),
        "listenKeyExpired" => {
            // The documentation's example has the event time as a number; the futures server sends it as a
            // string (`"E": "1693427319838"`, github.com/adshao/go-binance/issues/510, and the docs of the other
            // Binance products): both are read.
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Ms<'a> {
                Int(i64),
                Text(&'a str),
            }
            #[derive(Deserialize)]
            struct K<'a> {
                #[serde(rename = "E", borrow)]
                event_ms: Ms<'a>,
            }
            let k: K<'_> = serde_json::from_slice(msg).map_err(WireError::json)?;
            let event_ms = match k.event_ms {
                Ms::Int(n) => n,
                Ms::Text(t) => t.parse().map_err(|_| WireError::Malformed(format!("listenKeyExpired E {t:?}")))?,
            };
            UserEvent::ListenKeyExpired { event_ms }
        }
        other => UserEvent::Other(other),
    })
}

#[derive(Deserialize)]
struct RawOrderUpdate<'a> {
    #[serde(rename = "E")]
    event_ms: i64,
    #[serde(borrow)]
    o: RawOrder<'a>,
}

#[derive(Deserialize)]
struct RawOrder<'a> {
    s: &'a str,
    c: &'a str,
    #[serde(rename = "S")]
    side: &'a str,
    x: &'a str,
    #[serde(rename = "X")]
    status: &'a str,
    i: i64,
    l: &'a str,
    z: &'a str,
    #[serde(rename = "L")]
    last_price: &'a str,
    #[serde(default)]
    n: Option<&'a str>,
    #[serde(rename = "T")]
    trade_ms: i64,
    m: bool,
    #[serde(default)]
    rp: Option<&'a str>,
}

/// The execution kind of an `ORDER_TRADE_UPDATE` from its execution type `x` and order status `X`.
fn exec_kind(x: &str, status: &str) -> Result<ExecKind, WireError> {
    Ok(match x {
        "NEW" => ExecKind::Ack,
        "CANCELED" => ExecKind::Canceled,
        "EXPIRED" => ExecKind::Expired,
        "AMENDMENT" => ExecKind::Amended,
        // TRADE, and CALCULATED (a liquidation execution): a fill, partial or complete per the status.
        "TRADE" | "CALCULATED" => match kind_of_status(status)? {
            ExecKind::Fill => ExecKind::Fill,
            _ => ExecKind::PartialFill,
        },
        _ => return Err(WireError::BadValue("x")),
    })
}

fn e8_or_zero(s: Option<&str>, field: &'static str) -> Result<i64, WireError> {
    s.map_or(Ok(0), |v| parse_e8(v.as_bytes()).map_err(|_| WireError::BadDecimal(field)))
}

fn order_update(msg: &[u8], table: &SymbolTable) -> Result<ExecReport, WireError> {
    let r: RawOrderUpdate<'_> = serde_json::from_slice(msg).map_err(WireError::json)?;
    let o = &r.o;
    let (symbol, tick, step) = symbol_scales(table, o.s)?;
    let client = ClientOrderId::parse(o.c.as_bytes());
    Ok(ExecReport {
        exchange_order_id: o.i,
        last_price_ticks: units(tick, o.last_price, "L")?,
        last_qty_steps: units(step, o.l, "l")?,
        cum_qty_steps: units(step, o.z, "z")?,
        commission_e8: e8_or_zero(o.n, "n")?,
        realized_pnl_e8: e8_or_zero(o.rp, "rp")?,
        exchange_ms: if o.trade_ms != 0 { o.trade_ms } else { r.event_ms },
        error_code: 0,
        client: client.unwrap_or(FOREIGN),
        symbol,
        kind: exec_kind(o.x, o.status)?,
        side: side_of(o.side)?,
        maker: o.m,
        client_known: client.is_ok(),
    })
}

/// Why an `ACCOUNT_UPDATE` was sent (`m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountReason {
    /// `ORDER`: a fill changed the position.
    Order,
    /// `FUNDING_FEE`.
    FundingFee,
    /// `MARGIN_TYPE_CHANGE`.
    MarginTypeChange,
    /// `DEPOSIT`, `WITHDRAW`, `ASSET_TRANSFER`, `ADJUSTMENT` … (listed in the docs; not acted on).
    #[default]
    Other,
}

/// `positionSide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionSide {
    /// One-way mode.
    Both,
    /// Hedge mode long.
    Long,
    /// Hedge mode short.
    Short,
}

/// One changed balance (1e-8 units of the asset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Asset code (`USDT` …; same alphabet as symbol names).
    pub asset: SymbolName,
    /// Wallet balance.
    pub wallet_e8: i64,
    /// Cross wallet balance.
    pub cross_wallet_e8: i64,
    /// Balance change except PnL and commission.
    pub change_e8: i64,
}

/// One changed position (1e-8 units: compared with the engine's expected position, not traded on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionUpdate {
    /// Symbol.
    pub symbol: SymbolName,
    /// Position side.
    pub side: PositionSide,
    /// Signed amount.
    pub amount_e8: i64,
    /// Entry price.
    pub entry_price_e8: i64,
    /// Unrealised PnL.
    pub unrealized_pnl_e8: i64,
    /// Isolated margin (`mt` = `isolated`).
    pub isolated: bool,
}

/// An `ACCOUNT_UPDATE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountUpdate {
    /// Event time (ms).
    pub event_ms: i64,
    /// Transaction time (ms).
    pub transaction_ms: i64,
    /// Why.
    pub reason: AccountReason,
    /// Changed balances.
    pub balances: ArrayVec<Balance, MAX_BALANCES>,
    /// Changed positions ("Only symbols of changed positions will be pushed").
    pub positions: ArrayVec<PositionUpdate, MAX_POSITIONS>,
}

#[derive(Deserialize)]
struct RawAccount<'a> {
    #[serde(rename = "E")]
    event_ms: i64,
    #[serde(rename = "T")]
    transaction_ms: i64,
    #[serde(borrow)]
    a: RawAccountData<'a>,
}

#[derive(Deserialize)]
struct RawAccountData<'a> {
    m: &'a str,
    #[serde(rename = "B", borrow, default)]
    balances: Bounded<RawBalance<'a>, MAX_BALANCES>,
    #[serde(rename = "P", borrow, default)]
    positions: Bounded<RawPositionUpdate<'a>, MAX_POSITIONS>,
}

#[derive(Deserialize)]
struct RawBalance<'a> {
    a: &'a str,
    wb: &'a str,
    cw: &'a str,
    #[serde(default)]
    bc: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawPositionUpdate<'a> {
    s: &'a str,
    pa: &'a str,
    ep: &'a str,
    up: &'a str,
    mt: &'a str,
    ps: &'a str,
}

fn e8(s: &str, field: &'static str) -> Result<i64, WireError> {
    parse_e8(s.as_bytes()).map_err(|_| WireError::BadDecimal(field))
}

fn name(s: &str, field: &'static str) -> Result<SymbolName, WireError> {
    SymbolName::new(s.as_bytes()).ok_or(WireError::BadValue(field))
}

fn account_update(msg: &[u8]) -> Result<AccountUpdate, WireError> {
    let r: RawAccount<'_> = serde_json::from_slice(msg).map_err(WireError::json)?;
    let reason = match r.a.m {
        "ORDER" => AccountReason::Order,
        "FUNDING_FEE" => AccountReason::FundingFee,
        "MARGIN_TYPE_CHANGE" => AccountReason::MarginTypeChange,
        _ => AccountReason::Other,
    };
    let mut balances = ArrayVec::new();
    for b in &r.a.balances.0 {
        balances.push(Balance {
            asset: name(b.a, "a")?,
            wallet_e8: e8(b.wb, "wb")?,
            cross_wallet_e8: e8(b.cw, "cw")?,
            change_e8: e8_or_zero(b.bc, "bc")?,
        });
    }
    let mut positions = ArrayVec::new();
    for p in &r.a.positions.0 {
        positions.push(PositionUpdate {
            symbol: name(p.s, "s")?,
            side: match p.ps {
                "BOTH" => PositionSide::Both,
                "LONG" => PositionSide::Long,
                "SHORT" => PositionSide::Short,
                _ => return Err(WireError::BadValue("ps")),
            },
            amount_e8: e8(p.pa, "pa")?,
            entry_price_e8: e8(p.ep, "ep")?,
            unrealized_pnl_e8: e8(p.up, "up")?,
            isolated: p.mt == "isolated",
        });
    }
    Ok(AccountUpdate { event_ms: r.event_ms, transaction_ms: r.transaction_ms, reason, balances, positions })
}

/// `algoStatus` / `X` of a conditional order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlgoStatus {
    /// Placed, not triggered.
    New,
    /// Cancelled.
    Canceled,
    /// Trigger met, being forwarded to the matching engine.
    Triggering,
    /// Placed into the matching engine.
    Triggered,
    /// The triggered order was filled or cancelled.
    Finished,
    /// Denied by the matching engine (e.g. margin check).
    Rejected,
    /// Cancelled by the system.
    Expired,
}

/// An `ALGO_UPDATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgoUpdate {
    /// Event time (ms).
    pub event_ms: i64,
    /// Binance's algo id.
    pub algo_id: i64,
    /// Our id, when `caid` is one of ours.
    pub client: Option<ClientOrderId>,
    /// Symbol.
    pub symbol: SymbolName,
    /// Side.
    pub side: OrderSide,
    /// State.
    pub status: AlgoStatus,
    /// Trigger price, 1e-8.
    pub trigger_price_e8: i64,
    /// A reject reason (`rm`) was given.
    pub has_reason: bool,
}

#[derive(Deserialize)]
struct RawAlgoUpdate<'a> {
    #[serde(rename = "E")]
    event_ms: i64,
    #[serde(borrow)]
    o: RawAlgo<'a>,
}

#[derive(Deserialize)]
struct RawAlgo<'a> {
    caid: &'a str,
    aid: i64,
    s: &'a str,
    #[serde(rename = "S")]
    side: &'a str,
    #[serde(rename = "X")]
    status: &'a str,
    tp: &'a str,
    #[serde(default)]
    rm: Option<&'a str>,
}

fn algo_update(msg: &[u8]) -> Result<AlgoUpdate, WireError> {
    let r: RawAlgoUpdate<'_> = serde_json::from_slice(msg).map_err(WireError::json)?;
    let o = &r.o;
    let status = match o.status {
        "NEW" => AlgoStatus::New,
        "CANCELED" => AlgoStatus::Canceled,
        "TRIGGERING" => AlgoStatus::Triggering,
        "TRIGGERED" => AlgoStatus::Triggered,
        "FINISHED" => AlgoStatus::Finished,
        "REJECTED" => AlgoStatus::Rejected,
        "EXPIRED" => AlgoStatus::Expired,
        _ => return Err(WireError::BadValue("X")),
    };
    Ok(AlgoUpdate {
        event_ms: r.event_ms,
        algo_id: o.aid,
        client: ClientOrderId::parse(o.caid.as_bytes()).ok(),
        symbol: name(o.s, "s")?,
        side: side_of(o.side)?,
        status,
        trigger_price_e8: e8(o.tp, "tp")?,
        has_reason: o.rm.is_some_and(|m| !m.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_is_the_top_level_e() {
        assert_eq!(event_type(br#"{"e":"ALGO_UPDATE","o":{"e":"x"}}"#), Ok("ALGO_UPDATE"));
        assert_eq!(event_type(br#"{"o":{"e":"inner"}, "s":"a\"e", "e" : "listenKeyExpired"}"#), Ok("listenKeyExpired"));
        assert!(event_type(br#"{"o":{"e":"inner"}}"#).is_err());
        assert!(event_type(br#"{"e":5}"#).is_err());
        assert!(event_type(br#"{"e":"unterminated"#).is_err());
        assert!(event_type(b"}}").is_err());
    }

    #[test]
    fn execution_types_map_to_kinds() {
        assert_eq!(exec_kind("NEW", "NEW"), Ok(ExecKind::Ack));
        assert_eq!(exec_kind("TRADE", "PARTIALLY_FILLED"), Ok(ExecKind::PartialFill));
        assert_eq!(exec_kind("TRADE", "FILLED"), Ok(ExecKind::Fill));
        assert_eq!(exec_kind("CALCULATED", "FILLED"), Ok(ExecKind::Fill));
        assert_eq!(exec_kind("CANCELED", "CANCELED"), Ok(ExecKind::Canceled));
        assert_eq!(exec_kind("EXPIRED", "EXPIRED"), Ok(ExecKind::Expired));
        assert_eq!(exec_kind("AMENDMENT", "NEW"), Ok(ExecKind::Amended));
        assert_eq!(exec_kind("REPLACED", "NEW"), Err(WireError::BadValue("x")));
        assert_eq!(exec_kind("TRADE", "WEIRD"), Err(WireError::BadValue("status")));
    }
}

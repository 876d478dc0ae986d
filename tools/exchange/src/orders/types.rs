//! The order vocabulary of the engine, named as Binance's USDⓈ-M futures docs name the values on the wire.

use super::errors::ApiError;
use super::fx::Fx;

/// `side`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// BUY.
    Buy,
    /// SELL.
    Sell,
}

/// `type` (the order types this exchange executes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OType {
    /// MARKET.
    Market,
    /// LIMIT.
    Limit,
    /// STOP_MARKET: BUY triggers when the price ≥ stopPrice, SELL when ≤.
    StopMarket,
    /// TAKE_PROFIT_MARKET: BUY triggers when the price ≤ stopPrice, SELL when ≥.
    TakeProfitMarket,
}

/// `timeInForce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tif {
    /// Good till cancel.
    Gtc,
    /// Immediate or cancel.
    Ioc,
    /// Fill or kill.
    Fok,
    /// Post only (good till crossing).
    Gtx,
}

/// `workingType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Working {
    /// CONTRACT_PRICE (default): the served trades.
    Contract,
    /// MARK_PRICE: the served markPrice.
    Mark,
}

/// `status` / `X`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// NEW.
    New,
    /// PARTIALLY_FILLED.
    PartiallyFilled,
    /// FILLED.
    Filled,
    /// CANCELED.
    Canceled,
    /// EXPIRED.
    Expired,
}

/// `x` (execution type) of an `ORDER_TRADE_UPDATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exec {
    /// NEW.
    New,
    /// TRADE.
    Trade,
    /// CANCELED.
    Canceled,
    /// EXPIRED.
    Expired,
    /// AMENDMENT (order modified).
    Amendment,
}

/// Which API an order came through (the counters are kept per route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiRoute {
    /// The WebSocket API (`/ws-fapi/v1`).
    WsApi,
    /// REST (`/fapi/v1/order`).
    Rest,
}

impl ApiRoute {
    /// Index in per-route tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name in the stats JSON.
    pub fn name(self) -> &'static str {
        match self {
            ApiRoute::WsApi => "ws_api",
            ApiRoute::Rest => "rest",
        }
    }
}

impl Side {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// From the wire (-1117 otherwise).
    pub fn parse(s: &str) -> Result<Side, ApiError> {
        match s {
            "BUY" => Ok(Side::Buy),
            "SELL" => Ok(Side::Sell),
            _ => Err(ApiError::new(-1117, "Invalid side.")),
        }
    }

    /// +1 for a buy, −1 for a sell.
    pub fn sign(self) -> i128 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

impl OType {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            OType::Market => "MARKET",
            OType::Limit => "LIMIT",
            OType::StopMarket => "STOP_MARKET",
            OType::TakeProfitMarket => "TAKE_PROFIT_MARKET",
        }
    }

    /// From the wire (-1116 otherwise; STOP, TAKE_PROFIT and TRAILING_STOP_MARKET are not executed here).
    pub fn parse(s: &str) -> Result<OType, ApiError> {
        match s {
            "MARKET" => Ok(OType::Market),
            "LIMIT" => Ok(OType::Limit),
            "STOP_MARKET" => Ok(OType::StopMarket),
            "TAKE_PROFIT_MARKET" => Ok(OType::TakeProfitMarket),
            _ => Err(ApiError::new(-1116, "Invalid orderType.")),
        }
    }

    /// True for the triggered types.
    pub fn conditional(self) -> bool {
        matches!(self, OType::StopMarket | OType::TakeProfitMarket)
    }
}

impl Tif {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Tif::Gtc => "GTC",
            Tif::Ioc => "IOC",
            Tif::Fok => "FOK",
            Tif::Gtx => "GTX",
        }
    }

    /// From the wire (-1115 otherwise).
    pub fn parse(s: &str) -> Result<Tif, ApiError> {
        match s {
            "GTC" => Ok(Tif::Gtc),
            "IOC" => Ok(Tif::Ioc),
            "FOK" => Ok(Tif::Fok),
            "GTX" => Ok(Tif::Gtx),
            _ => Err(ApiError::new(-1115, "Invalid timeInForce.")),
        }
    }
}

impl Working {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Working::Contract => "CONTRACT_PRICE",
            Working::Mark => "MARK_PRICE",
        }
    }

    /// From the wire.
    pub fn parse(s: &str) -> Result<Working, ApiError> {
        match s {
            "CONTRACT_PRICE" => Ok(Working::Contract),
            "MARK_PRICE" => Ok(Working::Mark),
            _ => Err(ApiError::illegal("workingType")),
        }
    }
}

impl Status {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::PartiallyFilled => "PARTIALLY_FILLED",
            Status::Filled => "FILLED",
            Status::Canceled => "CANCELED",
            Status::Expired => "EXPIRED",
        }
    }

    /// True when the order can still execute.
    pub fn open(self) -> bool {
        matches!(self, Status::New | Status::PartiallyFilled)
    }
}

impl Exec {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Exec::New => "NEW",
            Exec::Trade => "TRADE",
            Exec::Canceled => "CANCELED",
            Exec::Expired => "EXPIRED",
            Exec::Amendment => "AMENDMENT",
        }
    }
}

/// One order.
#[derive(Clone, Debug)]
pub struct Order {
    /// `orderId`.
    pub id: i64,
    /// `clientOrderId`.
    pub client_id: String,
    /// Symbol index.
    pub sym: usize,
    /// Side.
    pub side: Side,
    /// Current type (a triggered stop becomes MARKET, as the user stream's `o` shows).
    pub otype: OType,
    /// `origType`.
    pub orig_type: OType,
    /// `timeInForce`.
    pub tif: Tif,
    /// `origQty` (zero for closePosition).
    pub qty: Fx,
    /// `price` (zero for market types).
    pub price: Fx,
    /// `stopPrice` (zero unless conditional).
    pub stop: Fx,
    /// `reduceOnly`.
    pub reduce_only: bool,
    /// `closePosition`.
    pub close_position: bool,
    /// `workingType`.
    pub working: Working,
    /// `priceProtect`.
    pub price_protect: bool,
    /// `executedQty`.
    pub exec: Fx,
    /// `cumQuote`.
    pub cum_quote: Fx,
    /// `status`.
    pub status: Status,
    /// Creation time, ms.
    pub time_ms: i64,
    /// Last change, ms.
    pub update_ms: i64,
    /// Route it came through.
    pub route: ApiRoute,
}

impl Order {
    /// Quantity still to execute.
    pub fn remaining(&self) -> Fx {
        self.qty - self.exec
    }

    /// `avgPrice` as a number (zero before the first fill).
    pub fn avg(&self) -> Fx {
        self.cum_quote.div(self.exec)
    }
}

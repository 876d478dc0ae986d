//! The order API shared by REST and the WebSocket API: authentication by security type, parameter parsing, and
//! the methods (place, cancel, modify, status, open orders, position risk, leverage, margin type, listenKey).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{Value, json};

use super::Orders;
use super::algo::NewAlgo;
use super::auth::{ApiKey, KeyKind, check_time, key_format_ok};
use super::engine::NewOrder;
use super::errors::ApiError;
use super::fx::Fx;
use super::render;
use super::types::{ApiRoute, OType, Side, Tif, Working};
use crate::ctx::Ctx;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// New order.
    Place,
    /// Cancel order.
    Cancel,
    /// Modify order.
    Modify,
    /// Query order.
    Status,
    /// Current open orders.
    OpenOrders,
    /// Position information.
    PositionRisk,
    /// Change initial leverage.
    Leverage,
    /// Change margin type.
    MarginType,
    /// Start user data stream.
    ListenKeyStart,
    /// Keep-alive user data stream.
    ListenKeyPing,
    /// Close user data stream.
    ListenKeyStop,
    /// WebSocket API `session.logon` (Ed25519 keys).
    Logon,
    /// New algo (conditional) order.
    AlgoPlace,
    /// Cancel algo order.
    AlgoCancel,
    /// Current open algo orders.
    OpenAlgoOrders,
    /// The account's trades of a symbol (`orderId` narrows them to one order).
    UserTrades,
}

impl Method {
    /// SIGNED (TRADE / USER_DATA) methods need timestamp and signature; USER_STREAM ones only the key.
    fn signed(self) -> bool {
        !matches!(self, Method::ListenKeyStart | Method::ListenKeyPing | Method::ListenKeyStop)
    }
}

/// One request, whatever its route.
pub struct Call<'a> {
    /// Route.
    pub route: ApiRoute,
    /// Method.
    pub method: Method,
    /// Parameters (decoded).
    pub params: &'a [(String, String)],
    /// `X-MBX-APIKEY` or the `apiKey` parameter.
    pub api_key: Option<&'a str>,
    /// What the signature signs (the parameters without `signature`, as the route defines it).
    pub payload: &'a str,
    /// `signature`.
    pub signature: Option<&'a str>,
    /// The key a WebSocket API session logged on with.
    pub session: Option<&'a str>,
}

impl Call<'_> {
    /// A parameter.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn req(&self, k: &str) -> Result<&str, ApiError> {
        self.get(k).ok_or_else(|| ApiError::missing(k))
    }

    fn flag(&self, k: &str) -> Result<bool, ApiError> {
        match self.get(k) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(ApiError::illegal(k)),
        }
    }

    fn fx(&self, k: &str) -> Result<Option<Fx>, ApiError> {
        self.get(k).map(|v| Fx::parse(v).ok_or_else(|| ApiError::illegal(k))).transpose()
    }
}

/// The answer to a call.
pub enum Reply {
    /// The result body.
    Ok(Value),
    /// An error.
    Err(ApiError),
    /// The order was executed, the acknowledgement is lost (fault).
    Lost,
}

impl Orders {
    /// The key of a call, checked as its security type requires.
    fn authenticate(&self, c: &Call, now_ms: i64) -> Result<&ApiKey, ApiError> {
        if let Some(s) = c.session
            && c.api_key.is_none_or(|k| k == s)
            && let Some(k) = self.keys.iter().find(|k| k.key == s)
        {
            self.account().counts[c.route.index()].by_session += 1;
            if c.method.signed() {
                check_time(c.get("timestamp"), c.get("recvWindow"), now_ms)?;
            }
            return Ok(k);
        }
        let key = c.api_key.filter(|k| !k.is_empty()).ok_or_else(ApiError::bad_key)?;
        if !key_format_ok(key) {
            return Err(ApiError::key_format());
        }
        let k = self.keys.iter().find(|k| k.key == key).ok_or_else(ApiError::bad_key)?;
        if c.method.signed() {
            check_time(c.get("timestamp"), c.get("recvWindow"), now_ms)?;
            let sig = c.signature.ok_or_else(|| ApiError::missing("signature"))?;
            if !k.verifies(c.payload, sig) {
                return Err(ApiError::bad_signature());
            }
        }
        Ok(k)
    }

    /// Answers one call.
    pub fn call(&self, ctx: &Ctx, c: &Call) -> Reply {
        let now = ctx.clock.now_ms();
        {
            let mut a = self.account();
            let n = &mut a.counts[c.route.index()];
            n.requests += 1;
            n.signed += u64::from(c.signature.is_some());
            n.logon_requests += u64::from(c.method == Method::Logon);
        }
        let placing = matches!(c.method, Method::Place | Method::AlgoPlace);
        if placing {
            self.account().counts[c.route.index()].received += 1;
        }
        let r = self.authenticate(c, now).and_then(|k| self.dispatch(ctx, c, k, now));
        if c.method == Method::Logon && r.is_ok() {
            self.account().counts[c.route.index()].logons += 1;
        }
        if placing {
            let mut a = self.account();
            match &r {
                Ok(_) => a.counts[c.route.index()].accepted += 1,
                Err(e) => *a.counts[c.route.index()].rejected.entry(e.code).or_default() += 1,
            }
        }
        let place_like = matches!(
            c.method,
            Method::Place | Method::Cancel | Method::Modify | Method::AlgoPlace | Method::AlgoCancel
        );
        if place_like && !self.faults.ack_delay.is_zero() {
            self.stats.acks_delayed.fetch_add(1, Relaxed);
            std::thread::sleep(self.faults.ack_delay);
        }
        match r {
            Ok(v) if placing && Orders::take(&self.faults.lose_left) => {
                drop(v);
                self.stats.acks_lost.fetch_add(1, Relaxed);
                Reply::Lost
            }
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Err(e),
        }
    }

    fn symbol(&self, ctx: &Ctx, c: &Call) -> Result<usize, ApiError> {
        let s = c.req("symbol")?;
        ctx.market().find(s).ok_or_else(|| ApiError::new(-1121, "Invalid symbol."))
    }

    fn dispatch(&self, ctx: &Ctx, c: &Call, key: &ApiKey, now: i64) -> Result<Value, ApiError> {
        match c.method {
            Method::Place => self.place(ctx, c, now),
            Method::Cancel => {
                let sym = self.symbol(ctx, c)?;
                let (id, cid) = order_ref(c)?;
                let mut a = self.account();
                let o = a.cancel(sym, id, cid, c.route, now)?;
                let v = render::order(&a, &o);
                self.publish(ctx, &mut a);
                Ok(v)
            }
            Method::Modify => {
                let sym = self.symbol(ctx, c)?;
                let (id, cid) = order_ref(c)?;
                let side = Side::parse(c.req("side")?)?;
                let qty = c.fx("quantity")?.ok_or_else(|| ApiError::missing("quantity"))?;
                let price = c.fx("price")?.ok_or_else(|| ApiError::missing("price"))?;
                let mut a = self.account();
                let o = {
                    let m = ctx.market();
                    a.modify(&m, sym, id, cid, side, qty, price, c.route, now)?
                };
                let v = render::order(&a, &o);
                self.publish(ctx, &mut a);
                Ok(v)
            }
            Method::Status => {
                let sym = self.symbol(ctx, c)?;
                let (id, cid) = order_ref(c)?;
                let a = self.account();
                let o = a.find(sym, id, cid).ok_or_else(|| ApiError::new(-2013, "Order does not exist."))?;
                Ok(render::order_query(&a, o))
            }
            Method::OpenOrders => {
                let sym = c.get("symbol").map(|_| self.symbol(ctx, c)).transpose()?;
                let a = self.account();
                let list = a.open.iter().filter(|o| sym.is_none_or(|s| o.sym == s)).map(|o| render::order_query(&a, o));
                Ok(Value::Array(list.collect()))
            }
            Method::PositionRisk => {
                let sym = c.get("symbol").map(|_| self.symbol(ctx, c)).transpose()?;
                let a = self.account();
                let n = a.positions.len();
                Ok(Value::Array(
                    (0..n).filter(|i| sym.is_none_or(|s| s == *i)).map(|i| render::position_risk(&a, i)).collect(),
                ))
            }
            Method::UserTrades => {
                let sym = self.symbol(ctx, c)?;
                let order = c.get("orderId").map(|v| v.parse::<i64>()).transpose().map_err(|_| {
                    ApiError::new(
                        -1100,
                        "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'.",
                    )
                })?;
                let limit = c.get("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(500).clamp(1, 1000);
                let a = self.account();
                let list = a.trades.iter().filter(|t| t.sym == sym && order.is_none_or(|o| t.order_id == o));
                let list: Vec<Value> = list.take(limit).map(|t| render::user_trade(&a, t)).collect();
                Ok(Value::Array(list))
            }
            Method::AlgoPlace => self.place_algo(ctx, c, now),
            Method::AlgoCancel | Method::OpenAlgoOrders => self.algo_call(ctx, c, now),
            Method::Leverage => self.leverage(ctx, c),
            Method::MarginType => self.margin_type(ctx, c),
            Method::ListenKeyStart => Ok(json!({"listenKey": self.listen_start()})),
            Method::ListenKeyPing => Ok(json!({"listenKey": self.listen_ping()?})),
            Method::ListenKeyStop => {
                self.listen_stop();
                Ok(json!({}))
            }
            Method::Logon => match key.kind {
                KeyKind::Ed25519(_) => Ok(json!({
                    "apiKey": key.key,
                    "authorizedSince": now,
                    "connectedSince": now,
                    "returnRateLimits": true,
                    "serverTime": now,
                })),
                KeyKind::Hmac(_) => Err(ApiError::bad_key()),
            },
        }
    }

    fn place(&self, ctx: &Ctx, c: &Call, now: i64) -> Result<Value, ApiError> {
        if Orders::take(&self.faults.reject_left)
            && let Some(e) = &self.faults.reject
        {
            self.stats.injected_rejects.fetch_add(1, Relaxed);
            return Err(e.clone());
        }
        let sym = self.symbol(ctx, c)?;
        let side = Side::parse(c.req("side")?)?;
        let tname = c.req("type")?;
        if !self.faults.legacy_conditionals && ALGO_TYPES.contains(&tname) {
            return Err(ApiError::new(
                -4120,
                "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            ));
        }
        let otype = OType::parse(tname)?;
        if c.get("positionSide").is_some_and(|p| p != "BOTH") {
            return Err(ApiError::new(-4061, "Order's position side does not match user's setting."));
        }
        let tif = match (otype, c.get("timeInForce")) {
            (OType::Limit, None) => return Err(ApiError::missing("timeInForce")),
            (_, Some(t)) => Tif::parse(t)?,
            (_, None) => Tif::Gtc,
        };
        let o = NewOrder {
            sym,
            side,
            otype,
            tif,
            qty: c.fx("quantity")?,
            price: c.fx("price")?,
            stop: c.fx("stopPrice")?,
            reduce_only: c.flag("reduceOnly")?,
            close_position: c.flag("closePosition")?,
            working: c.get("workingType").map(Working::parse).transpose()?.unwrap_or(Working::Contract),
            price_protect: c.flag("priceProtect")?,
            client_id: c.get("newClientOrderId").map(str::to_string),
            route: c.route,
        };
        match otype {
            OType::Market if o.qty.is_none() => return Err(ApiError::missing("quantity")),
            OType::Limit if o.qty.is_none() => return Err(ApiError::missing("quantity")),
            OType::Limit if o.price.is_none() => return Err(ApiError::missing("price")),
            OType::StopMarket | OType::TakeProfitMarket if o.stop.is_none() => {
                return Err(ApiError::missing("stopPrice"));
            }
            OType::StopMarket | OType::TakeProfitMarket if o.qty.is_none() && !o.close_position => {
                return Err(ApiError::missing("quantity"));
            }
            _ => {}
        }
        let result = c.get("newOrderRespType") == Some("RESULT");
        let mut a = self.account();
        let (acked, after) = {
            let m = ctx.market();
            a.place(&m, o, now)?
        };
        let v = render::order(&a, if result { &after } else { &acked });
        self.publish(ctx, &mut a);
        Ok(v)
    }

    /// `algoOrder.place` / `POST /fapi/v1/algoOrder` (algoType CONDITIONAL; STOP_MARKET and TAKE_PROFIT_MARKET
    /// execute here, the other conditional types answer -1116).
    fn place_algo(&self, ctx: &Ctx, c: &Call, now: i64) -> Result<Value, ApiError> {
        if Orders::take(&self.faults.reject_left)
            && let Some(e) = &self.faults.reject
        {
            self.stats.injected_rejects.fetch_add(1, Relaxed);
            return Err(e.clone());
        }
        if c.req("algoType")? != "CONDITIONAL" {
            return Err(ApiError::illegal("algoType"));
        }
        let sym = self.symbol(ctx, c)?;
        let side = Side::parse(c.req("side")?)?;
        let otype = OType::parse(c.req("type")?)?;
        if !otype.conditional() {
            return Err(ApiError::new(-1116, "Invalid orderType."));
        }
        if c.get("positionSide").is_some_and(|p| p != "BOTH") {
            return Err(ApiError::new(-4061, "Order's position side does not match user's setting."));
        }
        let o = NewOrder {
            sym,
            side,
            otype,
            tif: Tif::Gtc,
            qty: c.fx("quantity")?,
            price: None,
            stop: Some(c.fx("triggerPrice")?.ok_or_else(|| ApiError::missing("triggerPrice"))?),
            reduce_only: c.flag("reduceOnly")?,
            close_position: c.flag("closePosition")?,
            working: c.get("workingType").map(Working::parse).transpose()?.unwrap_or(Working::Contract),
            price_protect: c.flag("priceProtect")?,
            client_id: c.get("clientAlgoId").map(str::to_string),
            route: c.route,
        };
        if o.qty.is_none() && !o.close_position {
            return Err(ApiError::missing("quantity"));
        }
        let mut a = self.account();
        let placed = {
            let m = ctx.market();
            a.place_algo(&m, NewAlgo { order: o }, now)?
        };
        let v = render::algo(&a, &placed);
        self.publish(ctx, &mut a);
        Ok(v)
    }

    /// `algoOrder.cancel` / `DELETE /fapi/v1/algoOrder` (by algoId or clientAlgoId) and `GET
    /// /fapi/v1/openAlgoOrders`.
    fn algo_call(&self, ctx: &Ctx, c: &Call, now: i64) -> Result<Value, ApiError> {
        if c.method == Method::OpenAlgoOrders {
            let sym = c.get("symbol").map(|_| self.symbol(ctx, c)).transpose()?;
            let a = self.account();
            let list = a.algo.open.iter().filter(|o| sym.is_none_or(|s| o.sym == s)).map(|o| render::algo(&a, o));
            return Ok(Value::Array(list.collect()));
        }
        let id = c.get("algoId").map(|v| v.parse::<i64>().map_err(|_| ApiError::illegal("algoId"))).transpose()?;
        let cid = c.get("clientAlgoId");
        if id.is_none() && cid.is_none() {
            return Err(ApiError::new(-1102, "Either algoId or clientAlgoId must be sent."));
        }
        let mut a = self.account();
        let o = a.cancel_algo(id, cid, now)?;
        a.counts[c.route.index()].canceled += 1;
        self.publish(ctx, &mut a);
        Ok(render::algo_cancel(&o))
    }

    fn leverage(&self, ctx: &Ctx, c: &Call) -> Result<Value, ApiError> {
        let sym = self.symbol(ctx, c)?;
        let lev: u32 = c.req("leverage")?.parse().map_err(|_| ApiError::illegal("leverage"))?;
        if !(1..=125).contains(&lev) {
            return Err(ApiError::new(-4028, "Leverage is not valid"));
        }
        let mut a = self.account();
        a.positions[sym].leverage = lev;
        Ok(json!({"leverage": lev, "symbol": a.cfg.syms[sym].name}))
    }

    fn margin_type(&self, ctx: &Ctx, c: &Call) -> Result<Value, ApiError> {
        let sym = self.symbol(ctx, c)?;
        let isolated = match c.req("marginType")? {
            "ISOLATED" => true,
            "CROSSED" => false,
            _ => return Err(ApiError::illegal("marginType")),
        };
        let mut a = self.account();
        if a.positions[sym].isolated == isolated {
            return Err(ApiError::new(-4046, "No need to change margin type."));
        }
        if !a.positions[sym].amt.is_zero() || a.open.iter().any(|o| o.sym == sym) {
            return Err(ApiError::new(-4048, "Margin type cannot be changed if there exists position."));
        }
        a.positions[sym].isolated = isolated;
        Ok(json!({"code": 200, "msg": "success"}))
    }
}

/// The conditional types Binance moved to the Algo service; the regular endpoints answer them -4120
/// STOP_ORDER_SWITCH_ALGO unless `--legacy-conditionals`.
const ALGO_TYPES: [&str; 5] = ["STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"];

/// `orderId` or `origClientOrderId` (one is mandatory).
fn order_ref<'a>(c: &'a Call) -> Result<(Option<i64>, Option<&'a str>), ApiError> {
    let id = c.get("orderId").map(|v| v.parse::<i64>().map_err(|_| ApiError::illegal("orderId"))).transpose()?;
    let cid = c.get("origClientOrderId");
    if id.is_none() && cid.is_none() {
        return Err(ApiError::new(-1102, "Either orderId or origClientOrderId must be sent."));
    }
    Ok((id, cid))
}

//! The JSON shapes of Binance's USDⓈ-M futures docs:
//! - the order object of `POST/DELETE/PUT /fapi/v1/order` and `order.place`/`order.cancel`/`order.modify`
//!   (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api ,
//!   …/trade/websocket-api/New-Order), and of `GET /fapi/v1/order`, `order.status`, `GET /fapi/v1/openOrders`
//!   (the query shape: `time` instead of `cumQty`);
//! - `ORDER_TRADE_UPDATE` (…/user-data-streams/Event-Order-Update) and `ACCOUNT_UPDATE`
//!   (…/user-data-streams/Event-Balance-and-Position-Update);
//! - `GET /fapi/v2/positionRisk` (…/trade/rest-api/Position-Information-V2).

use serde_json::{Value, json};

use super::algo::{AlgoOrder, AlgoStatus};
use super::engine::{Account, Fill};
use super::fx::Fx;
use super::types::{Exec, Order, Side};

fn px(a: &Account, o: &Order, v: Fx) -> String {
    v.fmt(a.cfg.syms[o.sym].pp)
}

fn qty(a: &Account, o: &Order, v: Fx) -> String {
    v.fmt(a.cfg.syms[o.sym].qp)
}

/// A price field of the user stream: `"0"` when unset.
fn stream_px(a: &Account, o: &Order, v: Fx) -> String {
    if v.is_zero() { "0".into() } else { px(a, o, v) }
}

/// One row of `GET /fapi/v1/userTrades` (…/trade/rest-api/Account-Trade-List; the commission positive when paid).
pub fn user_trade(a: &Account, t: &super::engine::UserTrade) -> Value {
    let s = &a.cfg.syms[t.sym];
    let f = &t.fill;
    json!({
        "buyer": t.side == Side::Buy,
        "commission": f.fee.fmt(8),
        "commissionAsset": "USDT",
        "id": f.trade_id,
        "maker": f.maker,
        "orderId": t.order_id,
        "price": f.px.fmt(s.pp),
        "qty": f.qty.fmt(s.qp),
        "quoteQty": f.px.mul(f.qty).fmt(8),
        "realizedPnl": f.rp.fmt(8),
        "side": t.side.name(),
        "positionSide": "BOTH",
        "symbol": s.name,
        "time": t.time_ms,
    })
}

/// The order object answered to a placement, cancel or modification.
pub fn order(a: &Account, o: &Order) -> Value {
    let spec = &a.cfg.syms[o.sym];
    json!({
        "orderId": o.id,
        "symbol": spec.name,
        "status": o.status.name(),
        "clientOrderId": o.client_id,
        "price": px(a, o, o.price),
        "avgPrice": px(a, o, o.avg()),
        "origQty": qty(a, o, o.qty),
        "executedQty": qty(a, o, o.exec),
        "cumQty": qty(a, o, o.exec),
        "cumQuote": o.cum_quote.fmt(spec.pp + spec.qp),
        "timeInForce": o.tif.name(),
        "type": o.orig_type.name(),
        "reduceOnly": o.reduce_only,
        "closePosition": o.close_position,
        "side": o.side.name(),
        "positionSide": "BOTH",
        "stopPrice": px(a, o, o.stop),
        "workingType": o.working.name(),
        "priceProtect": o.price_protect,
        "origType": o.orig_type.name(),
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "updateTime": o.update_ms,
    })
}

/// The order object answered to a status query or in the open-orders list.
pub fn order_query(a: &Account, o: &Order) -> Value {
    let spec = &a.cfg.syms[o.sym];
    json!({
        "avgPrice": px(a, o, o.avg()),
        "clientOrderId": o.client_id,
        "cumQuote": o.cum_quote.fmt(spec.pp + spec.qp),
        "executedQty": qty(a, o, o.exec),
        "orderId": o.id,
        "origQty": qty(a, o, o.qty),
        "origType": o.orig_type.name(),
        "price": px(a, o, o.price),
        "reduceOnly": o.reduce_only,
        "side": o.side.name(),
        "positionSide": "BOTH",
        "status": o.status.name(),
        "stopPrice": px(a, o, o.stop),
        "closePosition": o.close_position,
        "symbol": spec.name,
        "time": o.time_ms,
        "timeInForce": o.tif.name(),
        "type": o.orig_type.name(),
        "updateTime": o.update_ms,
        "workingType": o.working.name(),
        "priceProtect": o.price_protect,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
    })
}

/// Open orders' notional of a symbol per side (the `b` and `a` of `ORDER_TRADE_UPDATE`).
fn open_notional(a: &Account, sym: usize, side: Side) -> Fx {
    a.open
        .iter()
        .filter(|o| o.sym == sym && o.side == side && o.status.open())
        .map(|o| o.remaining().mul(o.price))
        .fold(Fx::ZERO, |x, y| x + y)
}

/// One `ORDER_TRADE_UPDATE` event.
pub fn order_trade_update(a: &Account, o: &Order, x: Exec, f: Option<&Fill>, now_ms: i64) -> String {
    let spec = &a.cfg.syms[o.sym];
    let mut ev = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        ev.insert(k.to_string(), v);
    };
    put("s", json!(spec.name));
    put("c", json!(o.client_id));
    put("S", json!(o.side.name()));
    put("o", json!(o.otype.name()));
    put("f", json!(o.tif.name()));
    put("q", json!(qty(a, o, o.qty)));
    put("p", json!(stream_px(a, o, o.price)));
    put("ap", json!(stream_px(a, o, o.avg())));
    put("sp", json!(stream_px(a, o, o.stop)));
    put("x", json!(x.name()));
    put("X", json!(o.status.name()));
    put("i", json!(o.id));
    put("l", json!(f.map_or("0".into(), |f| qty(a, o, f.qty))));
    put("z", json!(qty(a, o, o.exec)));
    put("L", json!(f.map_or("0".into(), |f| px(a, o, f.px))));
    if let Some(f) = f {
        // "will not push if no commission"
        put("N", json!("USDT"));
        put("n", json!(f.fee.fmt(8)));
    }
    put("T", json!(o.update_ms));
    put("t", json!(f.map_or(0, |f| f.trade_id)));
    put("b", json!(open_notional(a, o.sym, Side::Buy).fmt(8)));
    put("a", json!(open_notional(a, o.sym, Side::Sell).fmt(8)));
    put("m", json!(f.is_some_and(|f| f.maker)));
    put("R", json!(o.reduce_only));
    put("wt", json!(o.working.name()));
    put("ot", json!(o.orig_type.name()));
    put("ps", json!("BOTH"));
    put("cp", json!(o.close_position));
    put("pP", json!(o.price_protect));
    put("si", json!(0));
    put("ss", json!(0));
    put("rp", json!(f.map_or(Fx::ZERO, |f| f.rp).fmt(8)));
    put("V", json!("NONE"));
    put("pm", json!("NONE"));
    put("gtd", json!(0));
    json!({"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": o.update_ms, "o": Value::Object(ev)}).to_string()
}

/// One `ACCOUNT_UPDATE` event after a fill of `sym` (reason `ORDER`): the USDT balance and the symbol's position.
pub fn account_update(a: &Account, sym: usize, now_ms: i64) -> String {
    let p = &a.positions[sym];
    let spec = &a.cfg.syms[sym];
    let wb = a.wallet.fmt(8);
    json!({
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": wb, "cw": wb, "bc": "0"}],
            "P": [{
                "s": spec.name,
                "pa": p.amt.fmt(spec.qp),
                "ep": p.entry.fmt(8),
                "bep": p.entry.fmt(8),
                "cr": p.realised.fmt(8),
                "up": a.unrealised(sym).fmt(8),
                "mt": if p.isolated { "isolated" } else { "cross" },
                "iw": "0",
                "ps": "BOTH",
            }],
        },
    })
    .to_string()
}

/// One entry of `GET /fapi/v2/positionRisk`.
pub fn position_risk(a: &Account, sym: usize) -> Value {
    let p = &a.positions[sym];
    let spec = &a.cfg.syms[sym];
    let mark = a.mark[sym].or(a.last[sym]).unwrap_or(Fx::ZERO);
    json!({
        "entryPrice": p.entry.fmt(8),
        "breakEvenPrice": p.entry.fmt(8),
        "marginType": if p.isolated { "isolated" } else { "cross" },
        "isAutoAddMargin": "false",
        "isolatedMargin": "0.00000000",
        "leverage": p.leverage.to_string(),
        "liquidationPrice": "0",
        "markPrice": mark.fmt(8),
        "positionAmt": p.amt.fmt(spec.qp),
        "notional": p.amt.mul(mark).fmt(8),
        "isolatedWallet": "0",
        "symbol": spec.name,
        "unRealizedProfit": a.unrealised(sym).fmt(8),
        "positionSide": "BOTH",
        "updateTime": p.update_ms,
    })
}

/// The algo order object of `algoOrder.place`, `POST /fapi/v1/algoOrder` and `GET /fapi/v1/openAlgoOrders`
/// (…/trade/rest-api/New-Algo-Order).
pub fn algo(a: &Account, o: &AlgoOrder) -> Value {
    let spec = &a.cfg.syms[o.sym];
    json!({
        "algoId": o.id,
        "clientAlgoId": o.client_id,
        "algoType": "CONDITIONAL",
        "orderType": o.otype.name(),
        "symbol": spec.name,
        "side": o.side.name(),
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": o.qty.fmt(spec.qp),
        "algoStatus": o.status.name(),
        "triggerPrice": o.trigger.fmt(spec.pp),
        "price": Fx::ZERO.fmt(spec.pp),
        "icebergQuantity": null,
        "selfTradePreventionMode": "NONE",
        "workingType": o.working.name(),
        "priceMatch": "NONE",
        "closePosition": o.close_position,
        "priceProtect": o.price_protect,
        "reduceOnly": o.reduce_only,
        "createTime": o.time_ms,
        "updateTime": o.update_ms,
        "triggerTime": o.trigger_ms,
        "goodTillDate": 0,
    })
}

/// The answer to `algoOrder.cancel` / `DELETE /fapi/v1/algoOrder`.
pub fn algo_cancel(o: &AlgoOrder) -> Value {
    json!({"algoId": o.id, "clientAlgoId": o.client_id, "code": "200", "msg": "success"})
}

/// One `ALGO_UPDATE` event (…/user-data-streams/Event-Algo-Order-Update).
pub fn algo_update(a: &Account, o: &AlgoOrder, now_ms: i64) -> String {
    let spec = &a.cfg.syms[o.sym];
    let placed = o.order_id.is_some();
    let mut ev = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        ev.insert(k.to_string(), v);
    };
    put("caid", json!(o.client_id));
    put("aid", json!(o.id));
    put("at", json!("CONDITIONAL"));
    put("o", json!(o.otype.name()));
    put("s", json!(spec.name));
    put("S", json!(o.side.name()));
    put("ps", json!("BOTH"));
    put("f", json!("GTC"));
    put("q", json!(o.qty.fmt(spec.qp)));
    put("X", json!(o.status.name()));
    put("ai", json!(o.order_id.map_or(String::new(), |i| i.to_string())));
    // ap / aq / act: the triggered order's average price, executed quantity and type ("0" before it exists).
    put("ap", json!(o.avg.fmt(spec.pp)));
    put("aq", json!(o.exec.fmt(spec.qp)));
    put("act", json!(if placed { "MARKET" } else { "0" }));
    put("tp", json!(o.trigger.fmt(spec.pp)));
    put("p", json!(Fx::ZERO.fmt(spec.pp)));
    put("V", json!("NONE"));
    put("wt", json!(o.working.name()));
    put("pm", json!("NONE"));
    put("cp", json!(o.close_position));
    put("pP", json!(o.price_protect));
    put("R", json!(o.reduce_only));
    put("tt", json!(o.trigger_ms));
    put("gtd", json!(0));
    let why = match o.status {
        AlgoStatus::Rejected => "Margin is insufficient.",
        AlgoStatus::Expired => "No position to reduce.",
        _ => "",
    };
    put("rm", json!(why));
    json!({"e": "ALGO_UPDATE", "T": o.update_ms, "E": now_ms, "o": Value::Object(ev)}).to_string()
}

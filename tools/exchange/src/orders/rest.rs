//! The REST order endpoints: `POST/DELETE/PUT/GET /fapi/v1/order`, `GET /fapi/v1/openOrders`,
//! `POST/DELETE /fapi/v1/algoOrder`, `GET /fapi/v1/openAlgoOrders`, `GET /fapi/v2/positionRisk`, `POST /fapi/v1/leverage`, `POST /fapi/v1/marginType`,
//! `POST/PUT/DELETE /fapi/v1/listenKey`. The key comes in `X-MBX-APIKEY`; the parameters in the query string
//! and/or an `application/x-www-form-urlencoded` body; the signature signs `totalParams`, the query string
//! concatenated with the body, without the `signature` pair
//! (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).

use serde_json::json;

use super::api::{Call, Method, Reply};
use super::types::ApiRoute;
use crate::conn::{Request, Response, parse_form};
use crate::ctx::Ctx;

/// The method of an order-side path, `None` for the other paths.
pub fn method_of(verb: &str, path: &str) -> Option<Method> {
    Some(match (verb, path) {
        ("POST", "/fapi/v1/order") => Method::Place,
        ("DELETE", "/fapi/v1/order") => Method::Cancel,
        ("PUT", "/fapi/v1/order") => Method::Modify,
        ("GET", "/fapi/v1/order") => Method::Status,
        ("GET", "/fapi/v1/openOrders") => Method::OpenOrders,
        ("GET", "/fapi/v1/userTrades") => Method::UserTrades,
        ("POST", "/fapi/v1/algoOrder") => Method::AlgoPlace,
        ("DELETE", "/fapi/v1/algoOrder") => Method::AlgoCancel,
        ("GET", "/fapi/v1/openAlgoOrders") => Method::OpenAlgoOrders,
        ("GET", "/fapi/v2/positionRisk") => Method::PositionRisk,
        ("POST", "/fapi/v1/leverage") => Method::Leverage,
        ("POST", "/fapi/v1/marginType") => Method::MarginType,
        ("POST", "/fapi/v1/listenKey") => Method::ListenKeyStart,
        ("PUT", "/fapi/v1/listenKey") => Method::ListenKeyPing,
        ("DELETE", "/fapi/v1/listenKey") => Method::ListenKeyStop,
        _ => return None,
    })
}

/// True for the order-side paths (any verb), so a wrong verb gets 405 rather than 404.
pub fn is_order_path(path: &str) -> bool {
    matches!(
        path,
        "/fapi/v1/order"
            | "/fapi/v1/openOrders"
            | "/fapi/v1/userTrades"
            | "/fapi/v1/algoOrder"
            | "/fapi/v1/openAlgoOrders"
            | "/fapi/v2/positionRisk"
            | "/fapi/v1/leverage"
            | "/fapi/v1/marginType"
            | "/fapi/v1/listenKey"
    )
}

/// Binance's request weight of an order-side call.
pub fn weight(m: Method, has_symbol: bool) -> u64 {
    match m {
        Method::Place | Method::Cancel | Method::Modify | Method::AlgoPlace | Method::AlgoCancel => 0,
        Method::OpenOrders | Method::OpenAlgoOrders if !has_symbol => 40,
        Method::PositionRisk | Method::UserTrades => 5,
        _ => 1,
    }
}

/// `part` without its `signature=…` pair (and the `&` before or after it).
fn strip_signature(part: &str) -> (String, Option<String>) {
    let mut sig = None;
    let kept: Vec<&str> = part
        .split('&')
        .filter(|p| {
            if let Some(v) = p.strip_prefix("signature=") {
                sig = Some(crate::conn::pct_decode(v));
                false
            } else {
                true
            }
        })
        .collect();
    (kept.join("&"), sig)
}

/// Answers one order-side REST request.
pub fn handle(req: &Request, m: Method, ctx: &Ctx) -> Response {
    let (q, qsig) = strip_signature(&req.raw_query);
    let (b, bsig) = strip_signature(&req.body);
    let payload = q + &b;
    let mut params = req.query.clone();
    params.extend(parse_form(&req.body));
    let call = Call {
        route: ApiRoute::Rest,
        method: m,
        params: &params,
        api_key: req.header("x-mbx-apikey"),
        payload: &payload,
        signature: qsig.as_deref().or(bsig.as_deref()),
        session: None,
    };
    match ctx.orders.call(ctx, &call) {
        Reply::Ok(v) => Response { status: 200, headers: vec![], body: v.to_string(), lost: false },
        Reply::Err(e) => Response {
            status: e.http_status(),
            headers: vec![],
            body: json!({"code": e.code, "msg": e.msg}).to_string(),
            lost: false,
        },
        Reply::Lost => Response { status: 200, headers: vec![], body: String::new(), lost: true },
    }
}

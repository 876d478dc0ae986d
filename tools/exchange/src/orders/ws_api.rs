//! The WebSocket API (`/ws-fapi/v1`): one JSON request per text frame, `{"id","method","params"}`, answered with
//! `{"id","status","result"|"error","rateLimits"}`. SIGNED requests carry `apiKey`, `timestamp` and `signature`
//! in `params`; the signature signs every other parameter sorted by name as `k=v&…`. After `session.logon`
//! (Ed25519 keys) the session's requests need neither apiKey nor signature.
//! (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-api-general-info)

use serde_json::{Value, json};

use super::Orders;
use super::api::{Call, Method, Reply};
use super::errors::ApiError;
use super::types::ApiRoute;
use crate::ctx::Ctx;

/// Largest request frame accepted, bytes.
pub const MAX_REQUEST_BYTES: usize = 16 << 10;

fn method_of(name: &str) -> Option<Method> {
    Some(match name {
        "order.place" => Method::Place,
        "order.cancel" => Method::Cancel,
        "order.modify" => Method::Modify,
        "order.status" => Method::Status,
        "algoOrder.place" => Method::AlgoPlace,
        "algoOrder.cancel" => Method::AlgoCancel,
        "account.position" => Method::PositionRisk,
        "session.logon" => Method::Logon,
        "userDataStream.start" => Method::ListenKeyStart,
        "userDataStream.ping" => Method::ListenKeyPing,
        "userDataStream.stop" => Method::ListenKeyStop,
        _ => return None,
    })
}

/// A parameter value as the signature payload writes it (strings bare, numbers and booleans as JSON prints them).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rate_limits(o: &Orders, order: bool) -> Value {
    let (in10, in60, reqs) = o.rate(order);
    json!([
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300, "count": in10},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200, "count": in60},
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400, "count": reqs},
    ])
}

fn error(id: &Value, e: &ApiError, rl: Value) -> String {
    json!({"id": id, "status": e.http_status(), "error": {"code": e.code, "msg": e.msg}, "rateLimits": rl}).to_string()
}

/// Answers one WebSocket API frame; `None` when the acknowledgement is lost on purpose. `session` holds the key
/// of a successful `session.logon`.
pub fn handle(text: &str, session: &mut Option<String>, ctx: &Ctx) -> Option<String> {
    let o = &ctx.orders;
    if text.len() > MAX_REQUEST_BYTES {
        return Some(error(&Value::Null, &ApiError::new(-1000, "Request too large."), rate_limits(o, false)));
    }
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return Some(error(&Value::Null, &ApiError::new(-1000, "Invalid JSON."), rate_limits(o, false))),
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = v.get("method").and_then(Value::as_str).and_then(method_of) else {
        let e = ApiError::new(-1000, "Unsupported method.");
        return Some(error(&id, &e, rate_limits(o, false)));
    };
    let mut params: Vec<(String, String)> = match v.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), plain(v))).collect(),
        Some(_) => return Some(error(&id, &ApiError::new(-1000, "Invalid params."), rate_limits(o, false))),
    };
    params.sort_by(|a, b| a.0.cmp(&b.0));
    let payload: Vec<String> =
        params.iter().filter(|(k, _)| k != "signature").map(|(k, v)| format!("{k}={v}")).collect();
    let payload = payload.join("&");
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let call = Call {
        route: ApiRoute::WsApi,
        method,
        params: &params,
        api_key: get("apiKey"),
        payload: &payload,
        signature: get("signature"),
        session: session.as_deref(),
    };
    let order =
        matches!(method, Method::Place | Method::Cancel | Method::Modify | Method::AlgoPlace | Method::AlgoCancel);
    match o.call(ctx, &call) {
        Reply::Lost => None,
        Reply::Ok(result) => {
            if method == Method::Logon {
                *session = result.get("apiKey").and_then(Value::as_str).map(str::to_string);
            }
            let rl = rate_limits(o, order);
            Some(json!({"id": id, "status": 200, "result": result, "rateLimits": rl}).to_string())
        }
        Reply::Err(e) => Some(error(&id, &e, rate_limits(o, order))),
    }
}

//! REST endpoints: `/fapi/v1/ping`, `/time`, `/exchangeInfo`, `/ticker/24hr`, `/depth`, with Binance's request
//! weights in `X-MBX-USED-WEIGHT-1M`, the 2400/min limit (429 with `Retry-After`), and the 429/418 faults; the
//! order-side paths are answered by [`crate::orders::rest`].

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{Map, Value, json};

use crate::conn::{Request, Response};
use crate::ctx::{Ctx, wall_ms};
use crate::market::Market;
use crate::orders;

fn ok(body: String) -> Response {
    Response { status: 200, headers: vec![], body, lost: false }
}

fn error(status: u16, code: i64, msg: &str) -> Response {
    Response { status, headers: vec![], body: json!({"code": code, "msg": msg}).to_string(), lost: false }
}

/// Takes one from a fault counter if it is positive.
fn take(c: &std::sync::atomic::AtomicU64) -> bool {
    c.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1)).is_ok()
}

/// Binance's weight of `/fapi/v1/depth` by limit.
pub fn depth_weight(limit: usize) -> u64 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// Answers one REST request.
pub fn handle(req: &Request, ctx: &Ctx) -> Response {
    ctx.stats.rest_requests.fetch_add(1, Relaxed);
    if take(&ctx.faults.rest_418) {
        ctx.stats.rest_418.fetch_add(1, Relaxed);
        let until = wall_ms() + 1000;
        let mut r = error(
            418,
            -1003,
            &format!(
                "Way too many requests; IP(127.0.0.1) banned until {until}. Please use the websocket for live updates to avoid bans."
            ),
        );
        r.headers.push(("Retry-After", "1".into()));
        return r;
    }
    if take(&ctx.faults.rest_429) {
        ctx.stats.rest_429.fetch_add(1, Relaxed);
        let mut r = error(
            429,
            -1003,
            "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.",
        );
        r.headers.push(("Retry-After", "1".into()));
        return r;
    }
    let order_method = if orders::rest::is_order_path(&req.path) {
        match orders::rest::method_of(&req.method, &req.path) {
            Some(m) => Some(m),
            None => return error(405, -1000, "method not served on this path by rusto-exchange"),
        }
    } else {
        None
    };
    if order_method.is_none() && req.method != "GET" && req.method != "HEAD" {
        return error(405, -1000, "only GET is served by rusto-exchange");
    }
    let limit = req.param("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(500);
    let weight = match req.path.as_str() {
        _ if order_method.is_some() => {
            order_method.map_or(1, |m| orders::rest::weight(m, req.param("symbol").is_some()))
        }
        "/fapi/v1/depth" => depth_weight(limit),
        "/fapi/v1/ticker/24hr" => {
            if req.param("symbol").is_some() {
                1
            } else {
                40
            }
        }
        _ => 1,
    };
    // Weight per wall-clock minute, like Binance's REQUEST_WEIGHT 1m window.
    let (used, over) = {
        let mut w = ctx.weight.lock().unwrap_or_else(|e| e.into_inner());
        let minute = wall_ms() / 60_000;
        if w.0 != minute {
            *w = (minute, 0);
        }
        w.1 += weight;
        (w.1, w.1 > ctx.cfg.weight_limit)
    };
    let mut r = if over {
        ctx.stats.rest_429.fetch_add(1, Relaxed);
        let mut r = error(
            429,
            -1003,
            &format!(
                "Too many requests; current limit of IP(127.0.0.1) is {} requests per minute. Please use the websocket for live updates to avoid polling the API.",
                ctx.cfg.weight_limit
            ),
        );
        let secs = 60 - (wall_ms() / 1000) % 60;
        r.headers.push(("Retry-After", secs.to_string()));
        r
    } else if let Some(m) = order_method {
        let r = orders::rest::handle(req, m, ctx);
        if r.lost {
            return r;
        }
        r
    } else {
        route(req, ctx, limit)
    };
    r.headers.push(("X-MBX-USED-WEIGHT-1M", used.to_string()));
    if req.method == "HEAD" {
        r.body.clear();
    }
    r
}

fn route(req: &Request, ctx: &Ctx, limit: usize) -> Response {
    match req.path.as_str() {
        "/fapi/v1/ping" => ok("{}".into()),
        "/fapi/v1/time" => ok(json!({"serverTime": ctx.clock.now_ms()}).to_string()),
        "/fapi/v1/exchangeInfo" => {
            ctx.stats.exchange_infos.fetch_add(1, Relaxed);
            ok(exchange_info(&ctx.market(), ctx.clock.now_ms(), ctx.exchange_info.as_ref(), ctx.cfg.weight_limit))
        }
        "/fapi/v1/ticker/24hr" => {
            let volumes = read_volumes(ctx);
            let m = ctx.market();
            match req.param("symbol") {
                Some(s) => match m.find(s) {
                    Some(i) => {
                        ctx.stats.tickers.fetch_add(1, Relaxed);
                        ok(ticker(&m, i, &volumes).to_string())
                    }
                    None => error(400, -1121, "Invalid symbol."),
                },
                None => {
                    ctx.stats.tickers.fetch_add(1, Relaxed);
                    let all: Vec<Value> = (0..m.syms.len()).map(|i| ticker(&m, i, &volumes)).collect();
                    ok(Value::Array(all).to_string())
                }
            }
        }
        "/fapi/v1/depth" => {
            let Some(s) = req.param("symbol") else {
                return error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
            };
            let now = ctx.clock.now_ms();
            let m = ctx.market();
            match m.find(s) {
                Some(i) => {
                    ctx.stats.snapshots.fetch_add(1, Relaxed);
                    ok(m.snapshot_json(i, limit.clamp(1, 1000), now))
                }
                None => error(400, -1121, "Invalid symbol."),
            }
        }
        _ => error(404, -1000, "Not found: rusto-exchange serves /fapi/v1/{ping,time,exchangeInfo,ticker/24hr,depth}"),
    }
}

/// The `--volumes` map, read again on every request (missing or bad file: empty map, with a warning).
fn read_volumes(ctx: &Ctx) -> Map<String, Value> {
    let Some(p) = &ctx.cfg.volumes else { return Map::new() };
    match std::fs::read(p)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
    {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            eprintln!("warn: {}: not a JSON object", p.display());
            Map::new()
        }
        Err(e) => {
            eprintln!("warn: {}: {e}", p.display());
            Map::new()
        }
    }
}

fn fmt(v: f64, dec: u8) -> String {
    format!("{:.*}", dec as usize, v)
}

fn ticker(m: &Market, i: usize, volumes: &Map<String, Value>) -> Value {
    let s = &m.syms[i];
    let t = &s.ticker;
    let pp = s.spec.price_precision;
    let qp = s.spec.qty_precision;
    let (bid, ask) = m.top(i);
    let fallback = bid.or(ask).map(|(p, _)| p.to_string()).unwrap_or_else(|| fmt(0.0, pp));
    let last = t.last_price.clone().unwrap_or_else(|| fallback.clone());
    let open = t.open_price.clone().unwrap_or_else(|| last.clone());
    let lastf: f64 = last.parse().unwrap_or(0.0);
    let openf: f64 = open.parse().unwrap_or(0.0);
    let change = lastf - openf;
    let pct = if openf != 0.0 { change / openf * 100.0 } else { 0.0 };
    let wavg = if t.volume > 0.0 { t.quote_volume / t.volume } else { lastf };
    let quote = match volumes.get(&s.name) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => fmt(t.quote_volume, 2),
    };
    let (high, low) = if t.count > 0 { (t.high, t.low) } else { (lastf, lastf) };
    json!({
        "symbol": s.name,
        "priceChange": fmt(change, pp),
        "priceChangePercent": fmt(pct, 3),
        "weightedAvgPrice": fmt(wavg, pp),
        "lastPrice": last,
        "lastQty": t.last_qty.clone().unwrap_or_else(|| fmt(0.0, qp)),
        "openPrice": open,
        "highPrice": fmt(high, pp),
        "lowPrice": fmt(low, pp),
        "volume": fmt(t.volume, qp),
        "quoteVolume": quote,
        "openTime": t.open_time,
        "closeTime": t.close_time,
        "firstId": t.first_id,
        "lastId": t.last_id,
        "count": t.count,
    })
}

/// The `/fapi/v1/exchangeInfo` body for the symbols served.
pub fn exchange_info(m: &Market, now_ms: i64, given: Option<&Map<String, Value>>, weight_limit: u64) -> String {
    let symbols: Vec<Value> = m
        .syms
        .iter()
        .map(|s| {
            if let Some(v) = given.and_then(|g| g.get(&s.name)) {
                return v.clone();
            }
            let base = s.name.strip_suffix("USDT").unwrap_or(&s.name);
            json!({
                "symbol": s.name,
                "pair": s.name,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000i64,
                "onboardDate": 1569398400000i64,
                "status": "TRADING",
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": s.spec.price_precision,
                "quantityPrecision": s.spec.qty_precision,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": s.spec.tick, "maxPrice": "4529764", "tickSize": s.spec.tick},
                    {"filterType": "LOT_SIZE", "stepSize": s.spec.step, "minQty": s.spec.step, "maxQty": "1000"},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": s.spec.step, "minQty": s.spec.step, "maxQty": "120"},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            })
        })
        .collect();
    json!({
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": true, "autoAssetExchange": "-10000"}],
        "symbols": symbols,
    })
    .to_string()
}

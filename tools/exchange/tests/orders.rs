//! The order side of rusto-exchange, driven by a client written here (tungstenite + ring, over real TLS trusting
//! the CA the exchange writes, or plain): signed orders over the WebSocket API (`/ws-fapi/v1`) and REST, fills
//! against the served recording (data/sample BTCUSDT, hftbacktest recording, MIT, (C) 2022 nkaz001), the user data
//! stream on `/private`, and the order faults. Each test is bounded (≤ ~40 s).
//!
//! The key pair is Binance's documented HMAC example (USDⓈ-M futures "SIGNED Endpoint Examples for POST
//! /fapi/v1/order", https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tungstenite::Message;

/// A signed MARKET order over the WebSocket API (real TLS) fills at the prices and quantities of the book the
/// exchange serves at that moment (the feed is stalled, so the book is static), partly across two levels; the
/// user data stream carries the docs' ORDER_TRADE_UPDATE and ACCOUNT_UPDATE fields; position, entry price and
/// commission follow.
#[test]
fn market_order_walks_the_served_book() {
    let ex = Exchange::start(true, &["--stall-secs", "80", "--fault-after-secs", "0", "--balance-usdt", "10000000"]);
    std::thread::sleep(Duration::from_millis(500));
    let (us, _key) = user_stream(&ex);
    let seen = &us.seen;
    let book = ex.get("/fapi/v1/depth?symbol=BTCUSDT&limit=5");
    let a0 = (num(&book["asks"][0][0]), num(&book["asks"][0][1]));
    let a1 = num(&book["asks"][1][0]);
    let qty = ((a0.1 + 0.001) * 1000.0).round() / 1000.0;
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": format!("{qty:.3}"),
               "newClientOrderId": "rusto-test-walk-1", "newOrderRespType": "RESULT"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let o = &r["result"];
    assert_eq!(o["status"], "FILLED", "{r}");
    assert_eq!(o["clientOrderId"], "rusto-test-walk-1");
    assert_eq!(num(&o["executedQty"]), qty);
    let want_avg = (a0.0 * a0.1 + a1 * 0.001) / qty;
    assert!((num(&o["avgPrice"]) - want_avg).abs() < 0.011, "avg {} vs {want_avg}", o["avgPrice"]);
    assert_eq!(r["rateLimits"].as_array().unwrap().len(), 3);
    let after = ex.get("/fapi/v1/depth?symbol=BTCUSDT&limit=5");
    assert_eq!(after["lastUpdateId"], book["lastUpdateId"], "the book moved during the test");

    let id = o["orderId"].as_i64().unwrap();
    wait_for(seen, Duration::from_secs(5), "FILLED event", |s| updates(s, id).iter().any(|u| u["X"] == "FILLED"));
    let s = seen.lock().unwrap().clone();
    let ups = updates(&s, id);
    assert_eq!(ups.iter().map(|u| u["x"].as_str().unwrap()).collect::<Vec<_>>(), ["NEW", "TRADE", "TRADE"]);
    assert_eq!(ups[1]["X"], "PARTIALLY_FILLED");
    assert_eq!((num(&ups[1]["L"]), num(&ups[1]["l"])), a0);
    assert_eq!((num(&ups[2]["L"]), num(&ups[2]["l"])), (a1, 0.001));
    // The docs' ORDER_TRADE_UPDATE "o" fields (AP and cr only come with TRAILING_STOP_MARKET; N and n only with
    // a commission).
    let base = [
        "s", "c", "S", "o", "f", "q", "p", "ap", "sp", "x", "X", "i", "l", "z", "L", "T", "t", "b", "a", "m", "R",
        "wt", "ot", "ps", "cp", "pP", "si", "ss", "rp", "V", "pm", "gtd",
    ];
    assert_eq!(keys(&ups[0]), set(&base));
    let mut trade = base.to_vec();
    trade.extend(["N", "n"]);
    assert_eq!(keys(&ups[1]), set(&trade));
    let fee0 = a0.0 * a0.1 * 0.0005;
    assert!((num(&ups[1]["n"]) - fee0).abs() < 1e-6, "commission {} vs {fee0}", ups[1]["n"]);
    assert_eq!(ups[1]["m"], false);
    let acc: Vec<&Value> = s.iter().filter(|e| e["e"] == "ACCOUNT_UPDATE").collect();
    assert_eq!(acc.len(), 2);
    assert_eq!(keys(acc[1]), set(&["e", "E", "T", "a"]));
    assert_eq!(keys(&acc[1]["a"]), set(&["m", "B", "P"]));
    assert_eq!(acc[1]["a"]["m"], "ORDER");
    assert_eq!(keys(&acc[1]["a"]["B"][0]), set(&["a", "wb", "cw", "bc"]));
    let p = &acc[1]["a"]["P"][0];
    assert_eq!(keys(p), set(&["s", "pa", "ep", "bep", "cr", "up", "mt", "iw", "ps"]));
    assert_eq!(num(&p["pa"]), qty);
    let fees = fee0 + a1 * 0.001 * 0.0005;
    assert!((num(&acc[1]["a"]["B"][0]["wb"]) - (10_000_000.0 - fees)).abs() < 1e-6);

    let (st, risk) = ex.signed("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", false).unwrap();
    assert_eq!(st, 200, "{risk}");
    assert_eq!(num(&risk[0]["positionAmt"]), qty);
    assert!((num(&risk[0]["entryPrice"]) - want_avg).abs() < 1e-6);
    let st = ex.fresh_stats();
    let ws_api = &st["orders"]["routes"]["ws_api"];
    assert_eq!(
        (ws_api["received"].as_u64(), ws_api["accepted"].as_u64(), ws_api["filled"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(st["orders"]["routes"]["rest"]["received"], 0);
}

/// Bad signatures give -1022, a timestamp outside recvWindow -1021, an unknown key -2015, on both routes; an
/// exchange clock skewed by 30 s rejects a client signing with its own clock (-1021) and accepts one that
/// corrects by `GET /fapi/v1/time`.
#[test]
fn bad_signature_skew_and_key_errors() {
    let ex = Exchange::start(false, &["--clock-skew-ms", "30000"]);
    let mut ws = ex.ws("/ws-fapi/v1");
    let limit = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "quantity": "0.010", "price": "20000.00"});
    let mut bad = limit.clone();
    bad["signature"] = json!("0".repeat(64));
    let r = ex.ws_call(&mut ws, "order.place", bad);
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["error"], json!({"code": -1022, "msg": "Signature for this request is not valid."}));
    let mut own_clock = limit.clone();
    own_clock["timestamp"] = json!(wall_ms());
    let r = ex.ws_call(&mut ws, "order.place", own_clock);
    assert_eq!(r["error"]["code"], -1021, "{r}");
    assert_eq!(r["error"]["msg"], "Timestamp for this request is outside of the recvWindow.");
    let mut stale = limit.clone();
    stale["timestamp"] = json!(ex.server_ms() - 6000);
    assert_eq!(ex.ws_call(&mut ws, "order.place", stale)["error"]["code"], -1021);
    let mut wrong_key = limit.clone();
    wrong_key["apiKey"] = json!("x".repeat(64));
    let r = ex.ws_call(&mut ws, "order.place", wrong_key);
    assert_eq!(r["error"], json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}));
    let r = ex.ws_call(&mut ws, "order.place", limit.clone());
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["result"]["status"], "NEW");
    assert!(num(&r["result"]["updateTime"].to_string().into()) > (wall_ms() + 20_000) as f64);

    // REST: the signature over the query string, then over query + body.
    let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.010&price=20000.00";
    let p = format!("{q}&timestamp={}", ex.server_ms());
    let (st, v) = ex.http("POST", &format!("/fapi/v1/order?{p}&signature={}", "ab".repeat(32)), "").unwrap();
    assert_eq!((st, v), (400, json!({"code": -1022, "msg": "Signature for this request is not valid."})));
    let p = format!("{q}&timestamp={}", wall_ms());
    let (st, v) = ex.http("POST", &format!("/fapi/v1/order?{p}&signature={}", sign(&p)), "").unwrap();
    assert_eq!((st, v["code"].as_i64()), (400, Some(-1021)));
    let ts = ex.server_ms();
    let body = format!("quantity=0.010&price=20000.00&timestamp={ts}");
    let query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC";
    let sig = sign(&format!("{query}{body}"));
    let (st, v) = ex.http("POST", &format!("/fapi/v1/order?{query}"), &format!("{body}&signature={sig}")).unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "NEW");
    let st = ex.fresh_stats();
    let r = &st["orders"]["routes"];
    assert_eq!(r["ws_api"]["rejected"], json!({"-1022": 1, "-1021": 2, "-2015": 1}));
    assert_eq!(r["ws_api"]["accepted"], 1);
    assert_eq!(r["rest"]["rejected"], json!({"-1022": 1, "-1021": 1}));
    assert_eq!(r["rest"]["accepted"], 1);
}

/// The latest served trade price, from the market stream.
fn last_trade(trades: &Mutex<Vec<Value>>) -> f64 {
    wait_for(trades, Duration::from_secs(10), "a served trade", |s| !s.is_empty());
    num(&trades.lock().unwrap().last().unwrap()["p"])
}

/// `--legacy-conditionals` (the regular endpoint before the Algo migration): a STOP_MARKET (closePosition,
/// CONTRACT_PRICE) triggers when a served trade reaches its stop price: it turns
/// into a MARKET order, closes the position against the book, and the trade that triggered it was on the market
/// stream.
#[test]
fn stop_market_triggers_on_served_trades() {
    let ex = Exchange::start(false, &["--speed", "4", "--legacy-conditionals"]);
    let tr = collect(ex.ws("/market/ws/btcusdt@trade"));
    let trades = &tr.seen;
    let (us, _key) = user_stream(&ex);
    let seen = &us.seen;
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.050"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let mut stop_px = 0.0;
    let mut id = 0;
    for ticks in [2, 3, 5, 8, 13] {
        stop_px = last_trade(trades) - ticks as f64 * 0.1;
        let r = ex.ws_call(
            &mut ws,
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "stopPrice": format!("{stop_px:.2}"),
                   "closePosition": "true", "workingType": "CONTRACT_PRICE"}),
        );
        if r["status"] == 200 {
            id = r["result"]["orderId"].as_i64().unwrap();
            break;
        }
        assert_eq!(r["error"]["code"], -2021, "{r}");
    }
    assert!(id > 0, "could not place the stop");
    wait_for(seen, Duration::from_secs(40), "the stop's FILLED", |s| updates(s, id).iter().any(|u| u["X"] == "FILLED"));
    let ups = updates(&seen.lock().unwrap(), id);
    assert_eq!(ups[0]["o"], "STOP_MARKET");
    assert_eq!((ups[0]["x"].as_str(), ups[0]["cp"].as_bool()), (Some("NEW"), Some(true)));
    assert_eq!(
        (ups[1]["x"].as_str(), ups[1]["o"].as_str(), ups[1]["ot"].as_str()),
        (Some("NEW"), Some("MARKET"), Some("STOP_MARKET"))
    );
    assert!(ups.iter().skip(2).all(|u| u["x"] == "TRADE" && u["wt"] == "CONTRACT_PRICE"));
    let filled: f64 = ups.iter().filter(|u| u["x"] == "TRADE").map(|u| num(&u["l"])).sum();
    assert!((filled - 0.05).abs() < 1e-9, "filled {filled}");
    std::thread::sleep(Duration::from_millis(300));
    let t = trades.lock().unwrap();
    assert!(t.iter().any(|x| num(&x["p"]) <= stop_px + 1e-9), "no served trade reached the stop {stop_px}");
    let (_, risk) = ex.signed("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", false).unwrap();
    assert_eq!(num(&risk[0]["positionAmt"]), 0.0);
    assert_eq!(ex.fresh_stats()["orders"]["stops_triggered"], 1);
}

/// A LIMIT GTC buy at the best bid rests (NEW), then fills as maker at its own price when served trades reach it.
#[test]
fn limit_rests_then_fills_on_served_trades() {
    let ex = Exchange::start(false, &["--speed", "4"]);
    let tr = collect(ex.ws("/market/ws/btcusdt@trade"));
    let trades = &tr.seen;
    let (us, _key) = user_stream(&ex);
    let seen = &us.seen;
    let bid = ex.get("/fapi/v1/depth?symbol=BTCUSDT&limit=5")["bids"][0][0].as_str().unwrap().to_string();
    let (st, v) = ex
        .signed("POST", "/fapi/v1/order", &format!("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.020&price={bid}&newClientOrderId=rusto-test-limit"), true)
        .unwrap();
    assert_eq!(st, 200, "{v}");
    let id = v["orderId"].as_i64().unwrap();
    let (_, open) = ex.signed("GET", "/fapi/v1/openOrders", "symbol=BTCUSDT", false).unwrap();
    let listed = open.as_array().unwrap().iter().find(|o| o["orderId"] == id).cloned();
    if let Some(o) = listed {
        assert_eq!(o["clientOrderId"], "rusto-test-limit");
    }
    wait_for(seen, Duration::from_secs(40), "the limit's FILLED", |s| {
        updates(s, id).iter().any(|u| u["X"] == "FILLED")
    });
    let ups = updates(&seen.lock().unwrap(), id);
    assert_eq!(ups[0]["x"], "NEW");
    let fills: Vec<&Value> = ups.iter().filter(|u| u["x"] == "TRADE").collect();
    assert!(!fills.is_empty());
    for f in &fills {
        assert_eq!(f["L"].as_str(), Some(bid.as_str()));
        assert_eq!(f["m"], true);
        assert!((num(&f["n"]) - num(&f["L"]) * num(&f["l"]) * 0.0002).abs() < 1e-6);
    }
    let t = trades.lock().unwrap();
    assert!(t.iter().any(|x| num(&x["p"]) <= num(&json!(bid))), "no served trade at or under {bid}");
    drop(t);
    let (st, q) =
        ex.signed("GET", "/fapi/v1/order", "symbol=BTCUSDT&origClientOrderId=rusto-test-limit", false).unwrap();
    assert_eq!(st, 200);
    assert_eq!((q["status"].as_str(), q["executedQty"].as_str()), (Some("FILLED"), Some("0.020")));
}

/// `--lose-acks 1`: the order executes but its acknowledgement never comes; the resend with the same client id
/// is refused as a duplicate (-4116), and the position holds the quantity once.
#[test]
fn lost_ack_resend_fills_once() {
    let ex = Exchange::start(false, &["--lose-acks", "1", "--speed", "0.01"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut ws = ex.ws("/ws-fapi/v1");
    let order = json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010",
                       "newClientOrderId": "rusto-run7-pos3-entry-a0"});
    let Value::Object(p) = order.clone() else { unreachable!() };
    let id = ex.ws_request(&mut ws, "order.place", p);
    assert!(Exchange::ws_answer(&mut ws, &id, Duration::from_millis(1500)).is_none(), "the ack was not lost");
    let r = ex.ws_call(&mut ws, "order.place", order);
    assert_eq!(r["error"], json!({"code": -4116, "msg": "ClientOrderId is duplicated."}), "{r}");
    let r = ex.ws_call(
        &mut ws,
        "order.status",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "rusto-run7-pos3-entry-a0"}),
    );
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    assert_eq!(r["result"]["executedQty"], "0.010");
    let (_, risk) = ex.signed("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", false).unwrap();
    assert_eq!(risk[0]["positionAmt"], "0.010");
    let st = ex.fresh_stats();
    assert_eq!(st["orders"]["acks_lost"], 1);
    assert_eq!(st["orders"]["routes"]["ws_api"]["filled"], 1);
}

/// A fresh exchange has sent and received nothing on the order side (what "paper mode sent nothing" asserts);
/// `--reject-orders 1` rejects the first placement with the given code; cancel, unknown order, listenKey
/// keep-alive, leverage and margin type answer in the docs' shapes.
#[test]
fn counters_faults_cancel_and_account_calls() {
    let ex = Exchange::start(false, &["--reject-orders", "1", "--reject-code", "-2019", "--speed", "0.01"]);
    let st = ex.stats();
    for r in ["ws_api", "rest"] {
        assert_eq!(st["orders"]["routes"][r]["requests"], 0);
        assert_eq!(st["orders"]["routes"][r]["received"], 0);
    }
    let place = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.010&price=90000.00&newClientOrderId=c1";
    let (s, v) = ex.signed("POST", "/fapi/v1/order", place, false).unwrap();
    assert_eq!((s, v), (400, json!({"code": -2019, "msg": "Margin is insufficient."})));
    let (s, v) = ex.signed("POST", "/fapi/v1/order", place, false).unwrap();
    assert_eq!(s, 200, "{v}");
    let (s, v) = ex.signed("DELETE", "/fapi/v1/order", "symbol=BTCUSDT&origClientOrderId=c1", false).unwrap();
    assert_eq!((s, v["status"].as_str()), (200, Some("CANCELED")));
    let (s, v) = ex.signed("DELETE", "/fapi/v1/order", "symbol=BTCUSDT&origClientOrderId=c1", false).unwrap();
    assert_eq!((s, v), (400, json!({"code": -2011, "msg": "Unknown order sent."})));
    let (s, v) = ex.signed("GET", "/fapi/v1/order", "symbol=BTCUSDT&orderId=999", false).unwrap();
    assert_eq!((s, v), (400, json!({"code": -2013, "msg": "Order does not exist."})));
    let (s, v) = ex
        .signed("POST", "/fapi/v1/order", "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.010&price=1.00", false)
        .unwrap();
    assert_eq!((s, v["code"].as_i64()), (400, Some(-1102)));
    let (s, v) = ex.signed("POST", "/fapi/v1/leverage", "symbol=BTCUSDT&leverage=5", false).unwrap();
    assert_eq!((s, v), (200, json!({"leverage": 5, "symbol": "BTCUSDT"})));
    let (s, v) = ex.signed("POST", "/fapi/v1/marginType", "symbol=BTCUSDT&marginType=ISOLATED", false).unwrap();
    assert_eq!((s, v), (200, json!({"code": 200, "msg": "success"})));
    let (s, v) = ex.signed("POST", "/fapi/v1/marginType", "symbol=BTCUSDT&marginType=ISOLATED", false).unwrap();
    assert_eq!((s, v), (400, json!({"code": -4046, "msg": "No need to change margin type."})));
    let (s, v) = ex.http("PUT", "/fapi/v1/listenKey", "").unwrap();
    assert_eq!((s, v["code"].as_i64()), (400, Some(-1125)));
    let (_, a) = ex.http("POST", "/fapi/v1/listenKey", "").unwrap();
    let (_, b) = ex.http("PUT", "/fapi/v1/listenKey", "").unwrap();
    assert_eq!(a, b);
    let st = ex.fresh_stats();
    let rest = &st["orders"]["routes"]["rest"];
    assert_eq!(rest["received"], 3);
    assert_eq!(rest["accepted"], 1);
    assert_eq!(rest["rejected"], json!({"-2019": 1, "-1102": 1}));
    assert_eq!(rest["canceled"], 1);
    assert_eq!(st["orders"]["routes"]["ws_api"]["requests"], 0);
    assert_eq!(st["orders"]["injected_rejects"], 1);
}

/// `--user-stream-drop-after-secs 1`: the user data stream connection is dropped abruptly after about a second.
#[test]
fn user_stream_drop_fault() {
    let ex = Exchange::start(false, &["--user-stream-drop-after-secs", "1", "--speed", "0.01"]);
    let (us, _key) = user_stream(&ex);
    let closed = &us.closed;
    let t0 = Instant::now();
    while closed.lock().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(5), "not dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(t0.elapsed() >= Duration::from_millis(700));
    let c = closed.lock().unwrap().clone().unwrap();
    assert!(!c.starts_with("close frame"), "dropped with a close frame: {c}");
    assert_eq!(ex.fresh_stats()["orders"]["user_streams_dropped"], 1);
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// `session.logon` with an Ed25519 key (the signature is base64 over the sorted parameters); afterwards the
/// session places, modifies and cancels a LIMIT order without apiKey or signature; an HMAC key cannot log on.
#[test]
fn ed25519_session_logon_modify_cancel() {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend_from_slice(kp.public_key().as_ref());
    let pem_dir = std::env::temp_dir().join(format!("rusto-exchange-ed25519-{}", std::process::id()));
    std::fs::create_dir_all(&pem_dir).unwrap();
    let pem = pem_dir.join("ed25519.pem");
    std::fs::write(&pem, format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", b64(&der))).unwrap();
    let ed_key = "rustoEd25519TestKey0123456789";
    let pem_s = pem.display().to_string();
    let ex = Exchange::start(false, &["--ed25519-api-key", ed_key, "--ed25519-pub", &pem_s, "--speed", "0.01"]);
    let mut ws = ex.ws("/ws-fapi/v1");
    let ts = ex.server_ms();
    let sig = b64(kp.sign(format!("apiKey={ed_key}&timestamp={ts}").as_bytes()).as_ref());
    let r = ex.ws_call(&mut ws, "session.logon", json!({"apiKey": ed_key, "timestamp": ts, "signature": sig}));
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["result"]["apiKey"], ed_key);
    let mut bare = |method: &str, params: Value| {
        let mut p = params;
        p["timestamp"] = json!(ex.server_ms());
        let id = format!("bare-{method}");
        ws.send(Message::text(json!({"id": id, "method": method, "params": p}).to_string())).unwrap();
        Exchange::ws_answer(&mut ws, &id, Duration::from_secs(10)).unwrap()
    };
    let r = bare(
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.010",
               "price": "20000.00", "newClientOrderId": "ed-1"}),
    );
    assert_eq!((r["status"].as_i64(), r["result"]["status"].as_str()), (Some(200), Some("NEW")), "{r}");
    let r = bare(
        "order.modify",
        json!({"symbol": "BTCUSDT", "origClientOrderId": "ed-1", "side": "BUY", "quantity": "0.020", "price": "20000.10"}),
    );
    assert_eq!(
        (r["result"]["origQty"].as_str(), r["result"]["price"].as_str()),
        (Some("0.020"), Some("20000.10")),
        "{r}"
    );
    let r = bare("order.cancel", json!({"symbol": "BTCUSDT", "origClientOrderId": "ed-1"}));
    assert_eq!(r["result"]["status"], "CANCELED", "{r}");
    let mut other = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(&mut other, "session.logon", json!({}));
    assert_eq!(r["error"]["code"], -2015, "{r}");
    let _ = std::fs::remove_dir_all(&pem_dir);
}

/// `--legacy-conditionals`: a STOP_MARKET with workingType MARK_PRICE triggers on the served markPrice (not on trades); its fills realise
/// the PnL (exit − entry) × quantity of the long it reduces.
#[test]
fn mark_price_stop_realises_pnl() {
    let ex = Exchange::start(false, &["--speed", "4", "--legacy-conditionals"]);
    let mk = collect(ex.ws("/market/ws/btcusdt@markPrice@1s"));
    let marks = &mk.seen;
    let (us, _key) = user_stream(&ex);
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.030"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let (_, risk) = ex.signed("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", false).unwrap();
    let entry = num(&risk[0]["entryPrice"]);
    let mut id = 0;
    let mut stop_px = 0.0;
    for ticks in [1, 2, 3, 5, 8] {
        wait_for(marks, Duration::from_secs(10), "a markPrice", |s| !s.is_empty());
        let mark = num(&marks.lock().unwrap().last().unwrap()["p"]);
        stop_px = (mark * 10.0).floor() / 10.0 - ticks as f64 * 0.1;
        let r = ex.ws_call(
            &mut ws,
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "stopPrice": format!("{stop_px:.2}"),
                   "quantity": "0.030", "reduceOnly": "true", "workingType": "MARK_PRICE"}),
        );
        if r["status"] == 200 {
            id = r["result"]["orderId"].as_i64().unwrap();
            break;
        }
        assert_eq!(r["error"]["code"], -2021, "{r}");
    }
    assert!(id > 0);
    wait_for(&us.seen, Duration::from_secs(40), "the stop's FILLED", |s| {
        updates(s, id).iter().any(|u| u["X"] == "FILLED")
    });
    let ups = updates(&us.seen.lock().unwrap(), id);
    assert!(ups.iter().all(|u| u["wt"] == "MARK_PRICE" && u["R"] == true));
    let fills: Vec<&Value> = ups.iter().filter(|u| u["x"] == "TRADE").collect();
    let rp: f64 = fills.iter().map(|u| num(&u["rp"])).sum();
    let want: f64 = fills.iter().map(|u| (num(&u["L"]) - entry) * num(&u["l"])).sum();
    assert!((rp - want).abs() < 1e-6, "realised {rp} vs {want}");
    assert!(marks.lock().unwrap().iter().any(|m| num(&m["p"]) <= stop_px + 1e-9), "no served mark reached {stop_px}");
}

/// A listenKey that is not kept alive expires: the stream gets `listenKeyExpired` with the key.
#[test]
fn listen_key_expires() {
    let ex = Exchange::start(false, &["--listen-key-ttl-secs", "1", "--speed", "0.01"]);
    let (us, key) = user_stream(&ex);
    wait_for(&us.seen, Duration::from_secs(5), "listenKeyExpired", |s| s.iter().any(|e| e["e"] == "listenKeyExpired"));
    let ev = us.seen.lock().unwrap().iter().find(|e| e["e"] == "listenKeyExpired").cloned().unwrap();
    assert_eq!(ev["listenKey"], key.as_str());
    assert_eq!(keys(&ev), set(&["e", "E", "listenKey"]));
    let (s, v) = ex.http("PUT", "/fapi/v1/listenKey", "").unwrap();
    assert_eq!((s, v["code"].as_i64()), (400, Some(-1125)));
}

//! Conditional orders through the Algo Order API (`algoOrder.place` / `algoOrder.cancel`, `POST/DELETE
//! /fapi/v1/algoOrder`, `GET /fapi/v1/openAlgoOrders`), `ALGO_UPDATE`, the -4120 answer of the regular
//! endpoints, `--partial-fills`, and orders surviving the client's disconnects. Parameters are the ones the
//! rusto client's encoder sends (src/ingest/orders/request.rs); answers are checked for the fields its parser
//! reads (response.rs `AlgoResult`, `AlgoCancelResult`; user_stream.rs `RawAlgo`). Data: data/sample BTCUSDT
//! (hftbacktest recording, MIT, (C) 2022 nkaz001).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The `o` objects of the ALGO_UPDATE events of algo `aid`.
fn algo_updates(seen: &[Value], aid: i64) -> Vec<Value> {
    seen.iter().filter(|e| e["e"] == "ALGO_UPDATE" && e["o"]["aid"] == aid).map(|e| e["o"].clone()).collect()
}

/// The first JSON value of a doc example in tests/data/binance-docs-orders (after its `#` attribution lines).
fn doc_example(name: &str) -> Value {
    let p = format!("{}/../../tests/data/binance-docs-orders/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let body: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
    serde_json::Deserializer::from_str(&body).into_iter::<Value>().next().expect("a JSON value").expect("JSON")
}

fn last_trade(trades: &std::sync::Mutex<Vec<Value>>) -> f64 {
    wait_for(trades, Duration::from_secs(10), "a served trade", |s| !s.is_empty());
    num(&trades.lock().unwrap().last().unwrap()["p"])
}

/// The regular endpoints answer conditional types -4120 (WebSocket API and REST); `algoOrder.place` accepts them
/// with the client's parameters and answers the `AlgoResult` fields; a duplicate clientAlgoId is -4116; cancel
/// by clientAlgoId (WebSocket API) and by algoId (REST) answer `AlgoCancelResult` and push ALGO_UPDATE CANCELED;
/// `GET /fapi/v1/openAlgoOrders` lists what is open; the stats count it.
#[test]
fn algo_place_cancel_and_switch_code() {
    let ex = Exchange::start(false, &["--speed", "0.01"]);
    let (us, _key) = user_stream(&ex);
    let mut ws = ex.ws("/ws-fapi/v1");
    let stop = json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "stopPrice": "1000.0",
                      "quantity": "0.010"});
    let r = ex.ws_call(&mut ws, "order.place", stop);
    assert_eq!(r["error"]["code"], -4120, "{r}");
    let (st, v) = ex
        .signed(
            "POST",
            "/fapi/v1/order",
            "symbol=BTCUSDT&side=BUY&type=TAKE_PROFIT_MARKET&stopPrice=1000.0&quantity=0.010",
            false,
        )
        .unwrap();
    assert_eq!((st, v["code"].as_i64()), (400, Some(-4120)), "{v}");
    let algo = |cid: &str| {
        json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.010", "reduceOnly": "true",
               "algoType": "CONDITIONAL", "triggerPrice": "1000.0", "workingType": "CONTRACT_PRICE",
               "clientAlgoId": cid})
    };
    let r = ex.ws_call(&mut ws, "algoOrder.place", algo("x-stop-1"));
    assert_eq!(r["status"], 200, "{r}");
    let res = &r["result"];
    assert_eq!(
        (res["clientAlgoId"].as_str(), res["orderType"].as_str(), res["symbol"].as_str(), res["side"].as_str()),
        (Some("x-stop-1"), Some("STOP_MARKET"), Some("BTCUSDT"), Some("SELL"))
    );
    assert_eq!((res["algoStatus"].as_str(), res["triggerPrice"].as_str()), (Some("NEW"), Some("1000.00")));
    let doc = doc_example("ws_algo_order_place_response.txt");
    assert_eq!(keys(res), keys(&doc["result"]), "the docs' New Algo Order result fields");
    let aid1 = res["algoId"].as_i64().unwrap();
    assert!(res["updateTime"].as_i64().unwrap() > 0);
    let r = ex.ws_call(&mut ws, "algoOrder.place", algo("x-stop-1"));
    assert_eq!(r["error"]["code"], -4116, "{r}");
    let r = ex.ws_call(&mut ws, "algoOrder.place", algo("x-stop-2"));
    let aid2 = r["result"]["algoId"].as_i64().unwrap();
    let (_, open) = ex.signed("GET", "/fapi/v1/openAlgoOrders", "symbol=BTCUSDT", false).unwrap();
    let ids: Vec<i64> = open.as_array().unwrap().iter().map(|o| o["algoId"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![aid1, aid2]);
    let r = ex.ws_call(&mut ws, "algoOrder.cancel", json!({"clientAlgoId": "x-stop-1"}));
    assert_eq!((r["result"]["algoId"].as_i64(), r["result"]["code"].as_str()), (Some(aid1), Some("200")), "{r}");
    assert_eq!(keys(&r["result"]), keys(&doc_example("ws_algo_order_cancel_response.txt")["result"]));
    let (st, v) = ex.signed("DELETE", "/fapi/v1/algoOrder", &format!("algoId={aid2}"), false).unwrap();
    assert_eq!((st, v["clientAlgoId"].as_str()), (200, Some("x-stop-2")), "{v}");
    let r = ex.ws_call(&mut ws, "algoOrder.cancel", json!({"clientAlgoId": "x-stop-1"}));
    assert_eq!(r["error"]["code"], -2011, "{r}");
    let q = "symbol=BTCUSDT&side=BUY&type=TAKE_PROFIT_MARKET&quantity=0.010&reduceOnly=true&algoType=CONDITIONAL\
             &triggerPrice=1000.0&workingType=MARK_PRICE&clientAlgoId=x-tp-3";
    let (st, v) = ex.signed("POST", "/fapi/v1/algoOrder", q, true).unwrap();
    assert_eq!(
        (st, v["algoStatus"].as_str(), v["workingType"].as_str()),
        (200, Some("NEW"), Some("MARK_PRICE")),
        "{v}"
    );
    let (st, v) = ex.signed("DELETE", "/fapi/v1/algoOrder", "clientAlgoId=x-tp-3", false).unwrap();
    assert_eq!((st, v["code"].as_str()), (200, Some("200")), "{v}");
    wait_for(&us.seen, Duration::from_secs(5), "both CANCELED", |s| {
        [aid1, aid2].iter().all(|a| algo_updates(s, *a).iter().any(|u| u["X"] == "CANCELED"))
    });
    let ups = algo_updates(&us.seen.lock().unwrap(), aid1);
    assert_eq!(keys(&ups[0]), keys(&doc_example("uds_algo_update.txt")["o"]), "the docs' ALGO_UPDATE fields");
    assert_eq!(ups.iter().map(|u| u["X"].as_str().unwrap()).collect::<Vec<_>>(), ["NEW", "CANCELED"]);
    assert_eq!(
        (ups[0]["caid"].as_str(), ups[0]["tp"].as_str(), ups[0]["at"].as_str()),
        (Some("x-stop-1"), Some("1000.00"), Some("CONDITIONAL"))
    );
    let (_, open) = ex.signed("GET", "/fapi/v1/openAlgoOrders", "", false).unwrap();
    assert_eq!(open, json!([]));
    let s = &ex.fresh_stats()["orders"]["algo"];
    assert_eq!((s["placed"].as_u64(), s["cancelled"].as_u64(), s["open"].as_u64()), (Some(3), Some(3), Some(0)), "{s}");
}

/// Orders belong to the account: a long and two protective stops (closePosition, and reduceOnly) are placed,
/// the WebSocket API session and the user stream are dropped, and after reconnecting `openAlgoOrders` still lists
/// them; when a served trade reaches the trigger the first goes TRIGGERING → TRIGGERED → FINISHED with its MARKET
/// order (`c` = clientAlgoId, `ot` STOP_MARKET) closing the position at prices never above the trigger; the
/// second finds the position flat and is EXPIRED.
#[test]
fn stops_survive_disconnect_and_trigger() {
    let ex = Exchange::start(false, &["--speed", "4"]);
    let tr = collect(ex.ws("/market/ws/btcusdt@trade"));
    let (us, key) = user_stream(&ex);
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.050"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let mut trigger = 0.0;
    let mut aids = Vec::new();
    for ticks in [2, 3, 5, 8, 13] {
        trigger = ((last_trade(&tr.seen) * 10.0).round() - ticks as f64) / 10.0;
        let p = |cid: &str, close: bool| {
            let mut v = json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "algoType": "CONDITIONAL",
                               "triggerPrice": format!("{trigger:.1}"), "workingType": "CONTRACT_PRICE",
                               "clientAlgoId": format!("{cid}-{ticks}")});
            if close {
                v["closePosition"] = json!("true");
            } else {
                v["quantity"] = json!("0.050");
                v["reduceOnly"] = json!("true");
            }
            v
        };
        let r = ex.ws_call(&mut ws, "algoOrder.place", p("close", true));
        if r["status"] != 200 {
            assert_eq!(r["error"]["code"], -2021, "{r}");
            continue;
        }
        aids.push(r["result"]["algoId"].as_i64().unwrap());
        let r = ex.ws_call(&mut ws, "algoOrder.place", p("reduce", false));
        if r["status"] == 200 {
            aids.push(r["result"]["algoId"].as_i64().unwrap());
            break;
        }
        assert_eq!(r["error"]["code"], -2021, "{r}");
        aids.clear();
        let _ = ex.ws_call(&mut ws, "algoOrder.cancel", json!({"clientAlgoId": format!("close-{ticks}")}));
    }
    assert_eq!(aids.len(), 2, "could not place the stops");
    drop(ws);
    drop(us);
    let mut ws = ex.ws("/ws-fapi/v1");
    let (st, open) = ex.signed("GET", "/fapi/v1/openAlgoOrders", "symbol=BTCUSDT", false).unwrap();
    assert_eq!(st, 200);
    let ids: Vec<i64> = open.as_array().unwrap().iter().map(|o| o["algoId"].as_i64().unwrap()).collect();
    assert_eq!(ids, aids, "{open}");
    let (st, v) = ex.http("POST", "/fapi/v1/listenKey", "").unwrap();
    assert_eq!((st, v["listenKey"].as_str()), (200, Some(key.as_str())), "the live key is returned");
    let us = collect(ex.ws(&format!("/private/ws/{key}")));
    wait_for(&us.seen, Duration::from_secs(40), "FINISHED and EXPIRED", |s| {
        algo_updates(s, aids[0]).iter().any(|u| u["X"] == "FINISHED")
            && algo_updates(s, aids[1]).iter().any(|u| u["X"] == "EXPIRED")
    });
    let seen = us.seen.lock().unwrap().clone();
    let ups = algo_updates(&seen, aids[0]);
    let states: Vec<&str> = ups.iter().map(|u| u["X"].as_str().unwrap()).collect();
    assert_eq!(states, ["TRIGGERING", "TRIGGERED", "FINISHED"]);
    let oid: i64 = ups[2]["ai"].as_str().unwrap().parse().unwrap();
    assert!((num(&ups[2]["aq"]) - 0.05).abs() < 1e-9, "{:?}", ups[2]);
    let ords = updates(&seen, oid);
    assert_eq!((ords[0]["o"].as_str(), ords[0]["ot"].as_str()), (Some("MARKET"), Some("STOP_MARKET")));
    assert!(ords.iter().all(|u| u["c"] == ups[0]["caid"]));
    assert_eq!(ords.last().unwrap()["X"], "FILLED");
    for f in ords.iter().filter(|u| u["x"] == "TRADE") {
        assert!(num(&f["L"]) <= trigger + 1e-9, "a sell stop filled at {} above its trigger {trigger}", f["L"]);
    }
    assert_eq!(algo_updates(&seen, aids[1]).last().unwrap()["X"], "EXPIRED");
    let (_, risk) = ex.signed("GET", "/fapi/v2/positionRisk", "symbol=BTCUSDT", false).unwrap();
    assert_eq!(num(&risk[0]["positionAmt"]), 0.0);
    let r = ex.ws_call(&mut ws, "order.status", json!({"symbol": "BTCUSDT", "orderId": oid}));
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    let s = &ex.fresh_stats()["orders"]["algo"];
    assert_eq!(
        (s["triggered"].as_u64(), s["expired"].as_u64(), s["open"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{s}"
    );
}

/// `--partial-fills 3`: a MARKET order of three steps fills in three TRADE events, PARTIALLY_FILLED,
/// PARTIALLY_FILLED, FILLED, with `z` the cumulative quantity and `ap` its average price (the client dedupes by
/// cumulative quantity).
#[test]
fn partial_fills_in_chunks() {
    let ex = Exchange::start(false, &["--stall-secs", "80", "--fault-after-secs", "0", "--partial-fills", "3"]);
    let (us, _key) = user_stream(&ex);
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.003"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let id = r["result"]["orderId"].as_i64().unwrap();
    wait_for(&us.seen, Duration::from_secs(10), "FILLED", |s| updates(s, id).iter().any(|u| u["X"] == "FILLED"));
    let fills: Vec<Value> = updates(&us.seen.lock().unwrap(), id).into_iter().filter(|u| u["x"] == "TRADE").collect();
    assert!(fills.len() >= 3, "{fills:?}");
    let (mut cum, mut quote) = (0.0, 0.0);
    for (i, f) in fills.iter().enumerate() {
        cum += num(&f["l"]);
        quote += num(&f["l"]) * num(&f["L"]);
        assert!((num(&f["z"]) - cum).abs() < 1e-9, "z {} vs {cum}", f["z"]);
        assert!((num(&f["ap"]) - quote / cum).abs() < 0.05, "ap {} vs {}", f["ap"], quote / cum);
        let want = if i + 1 == fills.len() { "FILLED" } else { "PARTIALLY_FILLED" };
        assert_eq!(f["X"], want);
    }
    assert!((cum - 0.003).abs() < 1e-9);
}

/// An algo SELL STOP_MARKET with workingType MARK_PRICE triggers on the served
/// markPrice and reduces the long: every ALGO_UPDATE says MARK_PRICE, FINISHED with `aq` the quantity.
#[test]
fn mark_price_algo_stop_triggers_on_mark() {
    let ex = Exchange::start(false, &["--speed", "4"]);
    let mk = collect(ex.ws("/market/ws/btcusdt@markPrice@1s"));
    let (us, _key) = user_stream(&ex);
    let mut ws = ex.ws("/ws-fapi/v1");
    let r = ex.ws_call(
        &mut ws,
        "order.place",
        json!({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.020"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    let mut aid = 0;
    let mut trigger = 0.0;
    for ticks in [1, 2, 3, 5, 8] {
        wait_for(&mk.seen, Duration::from_secs(10), "a markPrice", |s| !s.is_empty());
        let mark = num(&mk.seen.lock().unwrap().last().unwrap()["p"]);
        trigger = (mark * 10.0).floor() / 10.0 - ticks as f64 * 0.1;
        let r = ex.ws_call(
            &mut ws,
            "algoOrder.place",
            json!({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "algoType": "CONDITIONAL",
                   "triggerPrice": format!("{trigger:.1}"), "quantity": "0.020", "reduceOnly": "true",
                   "workingType": "MARK_PRICE", "clientAlgoId": format!("mark-{ticks}")}),
        );
        if r["status"] == 200 {
            aid = r["result"]["algoId"].as_i64().unwrap();
            break;
        }
        assert_eq!(r["error"]["code"], -2021, "{r}");
    }
    assert!(aid > 0, "could not place the stop");
    wait_for(&us.seen, Duration::from_secs(40), "FINISHED", |s| {
        algo_updates(s, aid).iter().any(|u| u["X"] == "FINISHED")
    });
    let ups = algo_updates(&us.seen.lock().unwrap(), aid);
    assert!(ups.iter().all(|u| u["wt"] == "MARK_PRICE"));
    assert!((num(&ups.last().unwrap()["aq"]) - 0.02).abs() < 1e-9);
    let marks = mk.seen.lock().unwrap();
    assert!(marks.iter().any(|m| num(&m["p"]) <= trigger + 1e-9), "no served mark reached {trigger}");
}

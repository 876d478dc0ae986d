//! Invariants of the order side's readers (issue 12: what the exchange sends back on the WebSocket API, the REST
//! endpoints and the user data stream), shared by the `order_messages` fuzz target and by
//! `tests/fuzz_regressions.rs` (which includes this file with `#[path]`, so it must build in both crates).
//!
//! The first byte picks the reader, the rest is the message:
//! - `0`: `parse_user_event` (`ORDER_TRADE_UPDATE`, `ACCOUNT_UPDATE`, `ALGO_UPDATE`, `listenKeyExpired`, others);
//! - `1`: `parse_ws::<OrderResult>` then `exec_from_order` (a WebSocket API order answer);
//! - `2`: `parse_rest_order` then `exec_from_order`, and `parse_rest_error` (a REST order answer or refusal);
//! - `3`: `parse_user_trades` then `fills_from_trades` (the fills of one order after a user data stream gap).
//!
//! Checked: no panic; an `ExecReport` from an order object never has a negative cumulative quantity; the fills of
//! `fills_from_trades` are at most `MAX_ORDER_TRADES`, their cumulative quantity is the running sum of their
//! quantities, and only a report whose cumulative quantity reaches the order's is a `Fill`.

use rusto::ingest::{
    AccountUpdate, OrderResult, exec_from_order, fills_from_trades, parse_rest_error, parse_rest_order,
    parse_user_event, parse_user_trades, parse_ws,
};
use rusto::types::{ClientOrderId, ExecKind, Leg, SymbolTable};

/// The order of the trades' fills: 3 steps.
const ORDER_QTY_STEPS: i64 = 3;

/// The bundled real exchangeInfo (BTCUSDT: tick 0.10, step 0.001), parsed once for every input.
fn table() -> &'static SymbolTable {
    static TABLE: std::sync::OnceLock<SymbolTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let info = include_bytes!("../../data/exchange-info/binance-usdm.json");
        let mut t = SymbolTable::new(8, rusto::ingest::parse_exchange_info(info).expect("bundled exchangeInfo"));
        t.intern(b"BTCUSDT").expect("a free slot");
        t
    })
}

/// Runs the reader the first byte picks on the rest (see the module doc).
pub fn check_order_message(data: &[u8]) {
    let Some((&pick, msg)) = data.split_first() else { return };
    let t = table();
    match pick % 4 {
        0 => {
            let mut acc = AccountUpdate::default();
            let _ = parse_user_event(msg, t, &mut acc);
        }
        1 => {
            if let Ok(r) = parse_ws::<OrderResult<'_>>(msg)
                && let Ok(o) = r.outcome
                && let Ok(x) = exec_from_order(&o, t)
            {
                assert!(x.cum_qty_steps >= 0 || x.kind != ExecKind::Fill, "{x:?}");
            }
        }
        2 => {
            if let Ok(o) = parse_rest_order(msg) {
                let _ = exec_from_order(&o, t);
            }
            let _ = parse_rest_error(msg);
        }
        _ => check_trades(msg, t),
    }
}

fn check_trades(msg: &[u8], t: &SymbolTable) {
    let Ok(rows) = parse_user_trades(msg) else { return };
    let client = ClientOrderId { run_id: 1, position_id: 1, leg: Leg::Entry, attempt: 0 };
    let Ok(fills) = fills_from_trades(&rows.0, client, ORDER_QTY_STEPS, t) else { return };
    assert!(fills.len() <= rusto::ingest::MAX_ORDER_TRADES && fills.len() == rows.0.len());
    let mut cum = 0i64;
    for x in &fills {
        cum += x.last_qty_steps;
        assert_eq!(x.cum_qty_steps, cum, "{x:?}");
        assert_eq!(x.kind == ExecKind::Fill, cum >= ORDER_QTY_STEPS, "{x:?}");
        assert!(x.client == client && x.client_known);
    }
}

//! The account at the start of a run that routes orders (issue 12, "Safety"), on the main thread before any
//! thread starts, with blocking signed REST calls:
//!
//! 1. The account lock: one exclusive `flock` per API key (`$XDG_RUNTIME_DIR`, else the temp dir,
//!    `rusto-account-<hash of the key>.lock`), held for the whole run; a second rusto on the same key is refused.
//! 2. Reconcile: `GET /fapi/v2/positionRisk`, `/fapi/v1/openOrders` and `/fapi/v1/openAlgoOrders`. A position or
//!    an open order on a symbol this run trades is refused (this build cannot adopt them yet: a clear error,
//!    nothing sent); on other symbols they are refused too unless `adopt_unknown = true`, which leaves them to
//!    their own exchange-side orders (warned, never touched).
//! 3. Isolated margin and the configured leverage on every traded symbol (`POST /fapi/v1/marginType`, `-4046`
//!    "no need to change" is success; `POST /fapi/v1/leverage`).

use std::fs::File;
use std::path::PathBuf;

use serde::Deserialize;

use crate::app::rest::{Rest, Signed, Verb};
use crate::ingest::orders::Credentials;
use crate::types::symbols::SymbolName;

/// Why the account is not ready to trade.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another process holds the account lock.
    #[error("another rusto trades this account (lock {0} is held); only one may route orders per API key")]
    Locked(String),
    /// The lock file could not be opened.
    #[error("account lock {0}: {1}")]
    LockFile(String, String),
    /// A REST call failed.
    #[error("{0}: {1}")]
    Rest(&'static str, String),
    /// The exchange refused a call.
    #[error("{0}: HTTP {1}: {2}")]
    Refused(&'static str, u16, String),
    /// The account holds what this run would have to adopt.
    #[error("the account already holds {0}; this build cannot adopt them: close them (or cancel the orders) first{1}")]
    NotFlat(String, &'static str),
}

/// The account lock, held until dropped.
pub(crate) struct AccountLock {
    _file: File,
    /// Where it is.
    pub path: PathBuf,
}

/// FNV-1a of the key: the lock's name tells accounts apart without showing the key.
fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Takes the account lock of `creds` (see the module doc).
pub(crate) fn lock(creds: &Credentials) -> Result<AccountLock, AccountError> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let path = dir.join(format!("rusto-account-{:016x}.lock", key_hash(creds.api_key.as_bytes())));
    let shown = path.display().to_string();
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AccountError::LockFile(shown.clone(), e.to_string()))?;
    match file.try_lock() {
        Ok(()) => Ok(AccountLock { _file: file, path }),
        Err(std::fs::TryLockError::WouldBlock) => Err(AccountError::Locked(shown)),
        Err(std::fs::TryLockError::Error(e)) => Err(AccountError::LockFile(shown, e.to_string())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RiskRow {
    symbol: String,
    position_amt: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderRow {
    symbol: String,
    #[serde(default)]
    order_id: Option<i64>,
    #[serde(default)]
    algo_id: Option<i64>,
}

/// What the account holds.
struct Holdings {
    /// (symbol, signed amount as Binance wrote it) of every open position.
    positions: Vec<(String, String)>,
    /// Open regular and algo orders.
    orders: Vec<OrderRow>,
}

/// One signed request named `what`; a status other than 200 is refused unless the body holds `benign` (an error
/// code that means the work is already done). Returns the body.
fn call(
    rest: &mut Rest,
    what: &'static str,
    req: Signed<'_>,
    offset_ms: f64,
    benign: Option<&[u8]>,
) -> Result<Vec<u8>, AccountError> {
    let (status, body) = rest.signed(req, offset_ms).map_err(|e| AccountError::Rest(what, e.to_string()))?;
    if status != 200 && !benign.is_some_and(|code| body.windows(code.len()).any(|w| w == code)) {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(AccountError::Refused(what, status, text));
    }
    Ok(body)
}

/// The account's positions and open orders.
fn holdings(rest: &mut Rest, c: &Credentials, offset_ms: f64) -> Result<Holdings, AccountError> {
    let mut get = |what: &'static str, path: &str| -> Result<Vec<u8>, AccountError> {
        call(rest, what, Signed { verb: Verb::Get, path, query: "", creds: c }, offset_ms, None)
    };
    let bad = |what: &'static str, e: serde_json::Error| AccountError::Rest(what, format!("unexpected body: {e}"));
    let risk: Vec<RiskRow> =
        serde_json::from_slice(&get("positionRisk", "/fapi/v2/positionRisk")?).map_err(|e| bad("positionRisk", e))?;
    let positions = risk
        .into_iter()
        .filter(|r| crate::types::decimal::parse_e8(r.position_amt.as_bytes()).is_ok_and(|a| a != 0))
        .map(|r| (r.symbol, r.position_amt))
        .collect();
    let mut orders: Vec<OrderRow> =
        serde_json::from_slice(&get("openOrders", "/fapi/v1/openOrders")?).map_err(|e| bad("openOrders", e))?;
    let algo: Vec<OrderRow> = serde_json::from_slice(&get("openAlgoOrders", "/fapi/v1/openAlgoOrders")?)
        .map_err(|e| bad("openAlgoOrders", e))?;
    orders.extend(algo);
    Ok(Holdings { positions, orders })
}

/// Reconciles the account with a run that starts flat (see the module doc).
pub(crate) fn reconcile(
    rest: &mut Rest,
    c: &Credentials,
    offset_ms: f64,
    traded: &[SymbolName],
    adopt_unknown: bool,
) -> Result<(), AccountError> {
    let h = holdings(rest, c, offset_ms)?;
    let positions: Vec<String> = h.positions.into_iter().map(|p| p.0).collect();
    let orders: Vec<String> = h.orders.into_iter().map(|o| o.symbol).collect();
    let is_traded = |s: &String| traded.iter().any(|t| t.as_str() == s);
    let mine: Vec<&String> = positions.iter().filter(|s| is_traded(s)).collect();
    let mine_orders: Vec<&String> = orders.iter().filter(|s| is_traded(s)).collect();
    if !mine.is_empty() || !mine_orders.is_empty() {
        let what = format!("positions on {mine:?} and {} open orders on traded symbols", mine_orders.len());
        return Err(AccountError::NotFlat(what, ""));
    }
    if !positions.is_empty() || !orders.is_empty() {
        let what = format!("positions on {positions:?} and {} open orders on other symbols", orders.len());
        if !adopt_unknown {
            return Err(AccountError::NotFlat(what, ", or set execution.adopt_unknown = true to leave them alone"));
        }
        log::warn!("the account holds {what}: left alone (execution.adopt_unknown = true), never touched by this run");
    }
    log::info!("account reconciled: no position and no open order on {} traded symbols", traded.len());
    Ok(())
}

/// Of the symbols a reselection adds, those this run may trade: the account holds no position and no open order on
/// them (someone else's, left alone), and isolated margin and `leverage` were set. A symbol that fails either is
/// left out (logged): it is never traded with the exchange's default margin or leverage.
pub(crate) fn prepare_added(
    rest: &mut Rest,
    c: &Credentials,
    offset_ms: f64,
    added: &[SymbolName],
    leverage: u32,
) -> Vec<SymbolName> {
    let h = match holdings(rest, c, offset_ms) {
        Ok(h) => h,
        Err(e) => {
            log::error!("reselection: the account could not be read ({e}): {added:?} not added");
            return Vec::new();
        }
    };
    let held = |s: &SymbolName| {
        h.positions.iter().any(|p| p.0 == s.as_str()) || h.orders.iter().any(|o| o.symbol == s.as_str())
    };
    let mut ok = Vec::with_capacity(added.len());
    for s in added {
        if held(s) {
            log::error!("reselection: the account holds a position or an open order on {s}: not added");
            continue;
        }
        match set_margin(rest, c, offset_ms, std::slice::from_ref(s), leverage) {
            Ok(()) => ok.push(*s),
            Err(e) => log::error!("reselection: {s}: {e}: not added"),
        }
    }
    ok
}

/// Isolated margin and `leverage` on every traded symbol.
pub(crate) fn set_margin(
    rest: &mut Rest,
    c: &Credentials,
    offset_ms: f64,
    traded: &[SymbolName],
    leverage: u32,
) -> Result<(), AccountError> {
    for s in traded {
        let q = format!("symbol={s}&marginType=ISOLATED");
        let req = Signed { verb: Verb::Post, path: "/fapi/v1/marginType", query: &q, creds: c };
        // -4046: "No need to change margin type." (already isolated).
        call(rest, "marginType", req, offset_ms, Some(b"-4046"))?;
        let q = format!("symbol={s}&leverage={leverage}");
        let req = Signed { verb: Verb::Post, path: "/fapi/v1/leverage", query: &q, creds: c };
        call(rest, "leverage", req, offset_ms, None)?;
    }
    log::warn!(
        "isolated margin and leverage {leverage}x set on {}",
        traded.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// The end of a run that routed orders, after every thread has stopped: with `flatten`, each position on a traded
/// symbol is closed with a reduce-only MARKET order and every open order there cancelled (the protective stops
/// last, once the position is flat); without it, the positions are left to their exchange-side stops and listed,
/// and a position with no open stop is warned about. Returns the positions left open.
pub(crate) fn shutdown(
    rest: &mut Rest,
    c: &Credentials,
    offset_ms: f64,
    traded: &[SymbolName],
    flatten: bool,
) -> Result<Vec<(String, String)>, AccountError> {
    let h = holdings(rest, c, offset_ms)?;
    let is_traded = |s: &str| traded.iter().any(|t| t.as_str() == s);
    let open: Vec<(String, String)> = h.positions.into_iter().filter(|p| is_traded(&p.0)).collect();
    if !flatten {
        for (s, amt) in &open {
            let stops = h.orders.iter().filter(|o| o.symbol == *s && o.algo_id.is_some()).count();
            if stops == 0 {
                log::error!("{s}: position {amt} left open with NO exchange-side stop: close it by hand");
            } else {
                log::warn!(
                    "{s}: position {amt} left open with {stops} exchange-side stop orders (flatten_on_exit = false)"
                );
            }
        }
        return Ok(open);
    }
    for (s, amt) in &open {
        let (side, qty) = match amt.strip_prefix('-') {
            Some(q) => ("BUY", q),
            None => ("SELL", amt.as_str()),
        };
        let q = format!("symbol={s}&side={side}&type=MARKET&quantity={qty}&reduceOnly=true");
        call(
            rest,
            "flatten",
            Signed { verb: Verb::Post, path: "/fapi/v1/order", query: &q, creds: c },
            offset_ms,
            None,
        )?;
        log::warn!("{s}: position {amt} flattened at shutdown (reduce-only MARKET {side} {qty})");
    }
    for o in h.orders.iter().filter(|o| is_traded(&o.symbol)) {
        let (path, q) = match (o.order_id, o.algo_id) {
            (_, Some(a)) => ("/fapi/v1/algoOrder", format!("algoId={a}")),
            (Some(id), None) => ("/fapi/v1/order", format!("symbol={}&orderId={id}", o.symbol)),
            (None, None) => continue,
        };
        let (status, body) = rest
            .signed(Signed { verb: Verb::Delete, path, query: &q, creds: c }, offset_ms)
            .map_err(|e| AccountError::Rest("cancel", e.to_string()))?;
        // -2011: already gone (filled or cancelled meanwhile).
        if status != 200 && !body.windows(5).any(|w| w == b"-2011") {
            log::warn!("{}: cancel at shutdown: HTTP {status}: {}", o.symbol, String::from_utf8_lossy(&body));
        }
    }
    let left = holdings(rest, c, offset_ms)?.positions.into_iter().filter(|p| is_traded(&p.0)).collect();
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_key_is_refused_and_freed_with_the_first() {
        let creds = Credentials {
            api_key: crate::ingest::orders::ApiKey::new(&format!("lockTest{}", std::process::id())).unwrap(),
            signer: crate::ingest::orders::Signer::hmac(b"s").unwrap(),
        };
        let first = lock(&creds).unwrap();
        let e = lock(&creds).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("another rusto trades this account"), "{e}");
        let path = first.path.clone();
        drop(first);
        let again = lock(&creds).unwrap();
        assert_eq!(again.path, path);
        let _ = std::fs::remove_file(path);
    }
}

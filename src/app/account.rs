//! The account at the start of a run that routes orders (issue 12, "Safety"), on the main thread before any
//! thread starts, with blocking signed REST calls:
//!
//! 1. The account lock: one exclusive `flock` per API key (`$XDG_RUNTIME_DIR`, else the temp dir,
//!    `rusto-account-<hash of the key>.lock`), held for the whole run; a second rusto on the same key is refused.
//! 2. Reconcile: `GET /fapi/v2/positionRisk`, `/fapi/v1/openOrders` and `/fapi/v1/openAlgoOrders`. A position on
//!    a symbol this run trades is adopted when the database knows it: a killed run's position
//!    ([`crate::persist::adopt`]) whose order reports leave open exactly what the exchange holds, on the same side,
//!    with no open order on the symbol but that position's own (its stop, its take profits); the engine then
//!    manages it to its exit under its old client ids. The orders such a position left on a symbol where the exchange
//!    holds nothing any more (closed by its stop or take profits while rusto was down) are cancelled. Any other
//!    position or open order on a traded symbol is refused (a clear error, nothing sent); on other symbols they are refused too unless `adopt_unknown = true`,
//!    which leaves them to their own exchange-side orders (warned, never touched).
//! 3. Isolated margin and the configured leverage on every traded symbol (`POST /fapi/v1/marginType`, `-4046`
//!    "no need to change" is success; `POST /fapi/v1/leverage`).

use std::fs::File;
use std::path::PathBuf;

use serde::Deserialize;

use crate::app::rest::{Rest, Signed, Verb};
use crate::ingest::orders::Credentials;
use crate::persist::Candidate;
use crate::types::symbols::SymbolName;
use crate::types::{AdoptedReal, AdoptedStop, Adoption, ClientOrderId, Leg, OrderSide};

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
    #[error("the account holds {0}; this run cannot adopt it{1}")]
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
    /// A regular order's client id.
    #[serde(default)]
    client_order_id: Option<String>,
    /// An algo (conditional) order's client id.
    #[serde(default)]
    client_algo_id: Option<String>,
    /// An algo order's trigger price.
    #[serde(default)]
    trigger_price: Option<String>,
}

impl OrderRow {
    /// Its client id, when it is one of rusto's.
    fn client(&self) -> Option<ClientOrderId> {
        let id = self.client_algo_id.as_deref().or(self.client_order_id.as_deref())?;
        ClientOrderId::parse(id.as_bytes()).ok()
    }
}

/// What the account holds.
struct Holdings {
    /// (symbol, signed amount as Binance wrote it) of every open position.
    positions: Vec<(String, String)>,
    /// Open regular and algo orders.
    orders: Vec<OrderRow>,
}

/// A position of a killed run taken over by this run: what the engine gets, and the database row to move.
pub(crate) struct Adopted {
    /// For the engine (its `seq` is set by the engine).
    pub adoption: Adoption,
    /// For the database.
    pub candidate: Candidate,
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

/// Reconciles the account with the run's start (see the module doc): returns the positions adopted.
pub(crate) fn reconcile(
    rest: &mut Rest,
    c: &Credentials,
    offset_ms: f64,
    traded: &[SymbolName],
    candidates: Vec<Candidate>,
    adopt_unknown: bool,
) -> Result<Vec<Adopted>, AccountError> {
    let h = holdings(rest, c, offset_ms)?;
    let is_traded = |s: &str| traded.iter().any(|t| t.as_str() == s);
    let mut adopted = Vec::new();
    for (sym, amt) in h.positions.iter().filter(|p| is_traded(&p.0)) {
        let cand = candidates.iter().find(|k| k.symbol.as_str() == sym).ok_or_else(|| {
            AccountError::NotFlat(format!("a position of {amt} on {sym} that this database does not know"), "")
        })?;
        let orders: Vec<&OrderRow> = h.orders.iter().filter(|o| o.symbol == *sym).collect();
        adopted.push(adopt_one(cand, amt, &orders)?);
    }
    let flat = h
        .orders
        .iter()
        .filter(|o| is_traded(&o.symbol) && !adopted.iter().any(|a: &Adopted| a.adoption.symbol.as_str() == o.symbol));
    let left = leftovers(flat, &candidates).map_err(|n| {
        AccountError::NotFlat(format!("{n} open orders on traded symbols without a position"), ": cancel them first")
    })?;
    for o in left {
        log::warn!(
            "{}: cancelling {:?}, left by a killed run's position closed while rusto was down",
            o.symbol,
            o.client()
        );
        cancel_open(rest, c, offset_ms, o)?;
    }
    for k in candidates.iter().filter(|k| !adopted.iter().any(|a| a.candidate.row_id == k.row_id)) {
        log::warn!(
            "run {}'s position on {} is not on the exchange any more (closed while rusto was down): it stays closed \
             as recovered (Crashed)",
            k.run_id,
            k.symbol
        );
    }
    let other_pos: Vec<&String> = h.positions.iter().map(|p| &p.0).filter(|s| !is_traded(s)).collect();
    let other_orders = h.orders.iter().filter(|o| !is_traded(&o.symbol)).count();
    if !other_pos.is_empty() || other_orders > 0 {
        let what = format!("positions on {other_pos:?} and {other_orders} open orders on other symbols");
        if !adopt_unknown {
            return Err(AccountError::NotFlat(what, ", or set execution.adopt_unknown = true to leave them alone"));
        }
        log::warn!("the account holds {what}: left alone (execution.adopt_unknown = true), never touched by this run");
    }
    log::info!(
        "account reconciled on {} traded symbols: {} positions adopted, nothing else open",
        traded.len(),
        adopted.len()
    );
    Ok(adopted)
}

/// Of the open orders on traded symbols that hold no position, those a killed run's position left behind (its own
/// client ids: a take profit or a stop of a position closed while rusto was down), to cancel. `Err(n)`: `n` of them
/// are not such leftovers (someone else's, or of a position the database does not know).
fn leftovers<'a>(
    orders: impl Iterator<Item = &'a OrderRow>,
    candidates: &[Candidate],
) -> Result<Vec<&'a OrderRow>, usize> {
    let (mut ours, mut other) = (Vec::new(), 0);
    for o in orders {
        let own = o.client().is_some_and(|id| {
            candidates.iter().any(|k| {
                k.symbol.as_str() == o.symbol
                    && k.reports.client_run == id.run_id
                    && k.reports.position_id == id.position_id
            })
        });
        if own { ours.push(o) } else { other += 1 }
    }
    if other > 0 { Err(other) } else { Ok(ours) }
}

/// Cancels an open order (`-2011`, already gone, is no error; another refusal is logged).
fn cancel_open(rest: &mut Rest, c: &Credentials, offset_ms: f64, o: &OrderRow) -> Result<(), AccountError> {
    let (path, q) = match (o.order_id, o.algo_id) {
        (_, Some(a)) => ("/fapi/v1/algoOrder", format!("algoId={a}")),
        (Some(id), None) => ("/fapi/v1/order", format!("symbol={}&orderId={id}", o.symbol)),
        (None, None) => return Ok(()),
    };
    let (status, body) = rest
        .signed(Signed { verb: Verb::Delete, path, query: &q, creds: c }, offset_ms)
        .map_err(|e| AccountError::Rest("cancel", e.to_string()))?;
    // -2011: already gone (filled or cancelled meanwhile).
    if status != 200 && !body.windows(5).any(|w| w == b"-2011") {
        log::warn!("{}: cancel: HTTP {status}: {}", o.symbol, String::from_utf8_lossy(&body));
    }
    Ok(())
}

/// Binance's decimal text as a number (0 when malformed: the checks below then refuse).
fn num(s: &str) -> f64 {
    crate::types::decimal::parse_e8(s.as_bytes()).map_or(0.0, |v| v as f64 / 1e8)
}

/// The adoption of candidate `k`, the exchange holding `amt` on its symbol with `orders` open there: refused unless
/// the exchange holds exactly what the order reports leave open, on the same side, and every open order there is
/// one of that position's.
fn adopt_one(k: &Candidate, amt: &str, orders: &[&OrderRow]) -> Result<Adopted, AccountError> {
    let r = &k.reports;
    let held = num(amt);
    let side_ok = (held > 0.0) == (r.side == OrderSide::Buy);
    let tol = 1e-9 * r.filled.max(1.0);
    if !side_ok || (held.abs() - r.open()).abs() > tol {
        let what = format!(
            "{amt} on {} while its run {} left {}{} open by its order reports (changed while rusto was down)",
            k.symbol,
            k.run_id,
            if r.side == OrderSide::Buy { "" } else { "-" },
            r.open()
        );
        return Err(AccountError::NotFlat(what, ": close it by hand"));
    }
    let mut real = AdoptedReal {
        client_run: r.client_run,
        position_id: r.position_id,
        side: r.side,
        filled: r.filled,
        notional: r.notional,
        open: held.abs(),
        exit_cum: r.exit_cum,
        stop: None,
        tps_working: [false; 2],
        attempts: r.attempts,
        decision_ms: k.paper.entry_ts_ms,
    };
    for o in orders {
        let Some(id) = o.client().filter(|id| id.run_id == r.client_run && id.position_id == r.position_id) else {
            let what = format!("an open order on {} that is not its adopted position's", k.symbol);
            return Err(AccountError::NotFlat(what, ": cancel it first"));
        };
        crate::types::adopt::note_attempt(&mut real.attempts, &id);
        match id.leg {
            Leg::Stop | Leg::Breakeven => {
                let trigger = num(o.trigger_price.as_deref().unwrap_or(""));
                let stop = AdoptedStop { leg: id.leg, attempt: id.attempt, trigger };
                // Two stops (a crash inside a breakeven replacement): the breakeven one, the newest, protects.
                let rank = |s: &AdoptedStop| (s.leg == Leg::Breakeven, s.attempt);
                if real.stop.is_none_or(|s| rank(&s) < rank(&stop)) {
                    real.stop = Some(stop);
                }
            }
            Leg::Tp1 => real.tps_working[0] = true,
            Leg::Tp2 => real.tps_working[1] = true,
            _ => {}
        }
    }
    log::warn!(
        "adopting run {}'s position on {}: {amt} open, stop {:?}, take profits working {:?}",
        k.run_id,
        k.symbol,
        real.stop.map(|s| (s.leg.name(), s.trigger)),
        real.tps_working
    );
    let adoption = Adoption { symbol: k.symbol, seq: 0, paper: k.paper, real };
    Ok(Adopted { adoption, candidate: k.clone() })
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
        cancel_open(rest, c, offset_ms, o)?;
    }
    let left = holdings(rest, c, offset_ms)?.positions.into_iter().filter(|p| is_traded(&p.0)).collect();
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A killed run's long of 0.010 BTC (run 3, client-id run 0x11, position 2) as the database knows it.
    fn candidate() -> Candidate {
        let paper = crate::types::AdoptedPaper {
            side: crate::types::record::Side::Long,
            entry_ts_ms: 1_000,
            bar_ts_ms: 990,
            entry_fill_ts_ms: 1_010,
            latency_ms: 10.0,
            entry_price: 60_000.0,
            qty: 0.010,
            exited_qty: 0.0,
            initial_stop: 59_820.0,
            tp1: 60_180.0,
            tp2: 60_360.0,
            liq: 58_900.0,
            tp1_done: false,
            fees: 0.24,
            funding: 0.0,
            pnl: -0.24,
            expected_slippage_bps: 0.5,
            realized_slippage_bps: 0.4,
            regime: crate::types::record::Regime::RangeLow,
            confidence: 0.7,
        };
        let mut attempts = [0; 7];
        attempts[0] = 1;
        let reports = crate::persist::ReportSummary {
            client_run: 0x11,
            position_id: 2,
            side: OrderSide::Buy,
            filled: 0.010,
            notional: 600.0,
            exit_cum: [0.0; 5],
            attempts,
        };
        Candidate { row_id: 9, run_id: 3, symbol: SymbolName::new(b"BTCUSDT").unwrap(), paper, reports }
    }

    fn order(client: &str, algo: bool, trigger: &str) -> OrderRow {
        OrderRow {
            symbol: "BTCUSDT".into(),
            order_id: (!algo).then_some(1),
            algo_id: algo.then_some(2),
            client_order_id: (!algo).then(|| client.to_string()),
            client_algo_id: algo.then(|| client.to_string()),
            trigger_price: algo.then(|| trigger.to_string()),
        }
    }

    #[test]
    fn a_position_is_adopted_only_as_its_reports_left_it_with_nothing_foreign_beside_it() {
        let k = candidate();
        let stop = order("rst-00000011-00000002-K01", true, "60001.0");
        let old_stop = order("rst-00000011-00000002-S00", true, "59820.0");
        let tp2 = order("rst-00000011-00000002-B00", false, "");
        let a = adopt_one(&k, "0.010", &[&old_stop, &stop, &tp2]).unwrap().adoption.real;
        // The breakeven stop protects (a crash inside its replacement left both); TP2 works, TP1 does not.
        assert_eq!(a.stop, Some(AdoptedStop { leg: Leg::Breakeven, attempt: 1, trigger: 60_001.0 }));
        assert_eq!((a.tps_working, a.open), ([false, true], 0.010));
        assert_eq!((a.attempts[Leg::Breakeven as usize], a.attempts[Leg::Stop as usize]), (2, 1));
        let e = |r: Result<Adopted, AccountError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        // The exchange holds another quantity, or the other side: changed while rusto was down.
        assert!(e(adopt_one(&k, "0.004", &[&stop])).contains("changed while rusto was down"));
        assert!(e(adopt_one(&k, "-0.010", &[&stop])).contains("changed while rusto was down"));
        // An order of another position, or not rusto's, on the symbol.
        let other = order("rst-00000011-00000003-S00", true, "1.0");
        let manual = order("web_abc", false, "");
        assert!(e(adopt_one(&k, "0.010", &[&stop, &other])).contains("not its adopted position's"));
        assert!(e(adopt_one(&k, "0.010", &[&manual])).contains("not its adopted position's"));
    }

    #[test]
    fn only_a_killed_positions_own_orders_are_cancelled_as_leftovers() {
        let k = [candidate()];
        let tp1 = order("rst-00000011-00000002-A00", false, "");
        let stop = order("rst-00000011-00000002-S00", true, "59820.0");
        let left = leftovers([&tp1, &stop].into_iter(), &k).unwrap();
        assert_eq!(left.len(), 2);
        let other_position = order("rst-00000011-00000005-A00", false, "");
        let other_run = order("rst-00000012-00000002-A00", false, "");
        let manual = order("web_abc", false, "");
        assert_eq!(leftovers([&tp1, &other_position, &other_run, &manual].into_iter(), &k).err(), Some(3));
        let mut eth = order("rst-00000011-00000002-A00", false, "");
        eth.symbol = "ETHUSDT".into();
        assert_eq!(leftovers([&eth].into_iter(), &k).err(), Some(1), "another symbol's");
        assert_eq!(leftovers([&tp1].into_iter(), &[]).err(), Some(1), "no candidate: not ours to cancel");
    }

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

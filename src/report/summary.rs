//! Replay summaries: the `--json` object and the human-readable summary with the latency table.

use serde_json::{Map, Value, json};

use crate::compute::engine::{Engine, SymbolState};
use crate::handoff::publish::FeedStats;
use crate::ingest::net::NetStats;
use crate::ingest::parse::ParseError;
use crate::ingest::parse::ParseStats;
use crate::persist::writer::PersistStats;
use crate::recording::window::LocalTime;
use crate::types::decimal::Scale;
use crate::types::latency;
use crate::types::latency::Summary;
use crate::types::symbols::SymbolName;
use std::time::Duration;

/// The latency block of the JSON reports: per stage count and p50/p90/p99/p99.9/max in ns.
/// What a replay did.
pub struct ReplayReport {
    /// Source counters.
    pub feed: FeedStats,
    /// Parser counters.
    pub parse: ParseStats,
    /// The compute stage at the end (books, bars, counters).
    pub engine: Engine,
    /// Persistence counters.
    pub persist: PersistStats,
    /// The database's run id (when a database was given).
    pub run_id: Option<i64>,
    /// Latency per stage, in print order.
    pub latency: Vec<(&'static str, Summary)>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// VWAP band width (σ) for reports.
    pub vwap_band_sigmas: f64,
    /// Where each symbol's tick and step came from.
    pub(crate) scale_sources: Vec<SymbolScales>,
    /// The replay's time window (`--from` / `--until`).
    pub window: crate::recording::window::TimeWindow,
}

/// Where a symbol's tick and step sizes came from in a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScaleSource {
    /// The `--exchange-info` file.
    ExchangeInfo,
    /// The exchangeInfo entries bundled with the binary (`data/exchange-info/`).
    Bundled,
    /// Inferred from the decimals of the first price and quantity seen (no entry anywhere).
    Inferred,
}

impl ScaleSource {
    /// The name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ScaleSource::ExchangeInfo => "exchange_info",
            ScaleSource::Bundled => "bundled",
            ScaleSource::Inferred => "inferred",
        }
    }
}

/// One symbol's scales at the end of a replay and where they came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SymbolScales {
    /// Symbol.
    pub(crate) name: SymbolName,
    /// Tick size (`None` when no price was ever seen).
    pub(crate) tick: Option<Scale>,
    /// Step size (`None` when no non-zero quantity was ever seen).
    pub(crate) step: Option<Scale>,
    /// Where they came from.
    pub(crate) source: ScaleSource,
}

/// A tick or step size as its decimal text ("0.10" for dec 2, unit 10).
fn scale_text(s: Option<Scale>) -> Option<String> {
    s.map(|s| Scale::decimals(s.dec).to_string(s.unit))
}

/// The tick/step line of a symbol in the `--json` object: `{"tick", "step", "source"}`.
fn scales_json(r: &ReplayReport, name: SymbolName) -> Value {
    match r.scale_sources.iter().find(|s| s.name == name) {
        Some(s) => json!({"tick": scale_text(s.tick), "step": scale_text(s.step), "source": s.source.name()}),
        None => Value::Null,
    }
}

/// The text summary's tick-source line: `tick/step: BTCUSDT 0.10/0.001 bundled, …`.
fn scales_line(r: &ReplayReport) -> String {
    let items: Vec<String> = r
        .scale_sources
        .iter()
        .map(|s| {
            let t = scale_text(s.tick).unwrap_or_else(|| "-".into());
            let q = scale_text(s.step).unwrap_or_else(|| "-".into());
            format!("{} {t}/{q} {}", s.name, s.source.name())
        })
        .collect();
    if items.is_empty() { String::new() } else { format!("tick/step: {}\n", items.join(", ")) }
}

/// What a live run did.
pub struct LiveReport {
    /// Network counters.
    pub net: NetStats,
    /// Parser counters.
    pub parse: crate::ingest::parse::ParseStats,
    /// Compute state at the end.
    pub engine: Engine,
    /// Persistence counters.
    pub persist: PersistStats,
    /// Latency per stage.
    pub latency: Vec<(&'static str, Summary)>,
    /// Ring full counts and drops.
    pub feed: crate::handoff::publish::FeedStats,
    /// The symbols traded at the end.
    pub symbols: Vec<SymbolName>,
    /// Link health at start.
    pub health: Health,
    /// REST counters.
    pub rest: RestStats,
    /// Selections made (start + reselections).
    pub selections: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The base account's configured `position.order_latency_ms` (in force until a measurement reaches the engine).
    pub config_order_latency_ms: f64,
}

/// Link health.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Health {
    /// Median REST round trip, ms.
    pub rtt_ms: f64,
    /// Exchange clock − local clock, ms.
    pub offset_ms: f64,
}

/// Counters of the REST client.
#[derive(Debug, Clone, Default)]
pub struct RestStats {
    /// Requests made.
    pub requests: u64,
    /// 429/418 answers honoured.
    pub rate_limited: u64,
    /// Last used weight reported.
    pub used_weight: u64,
}

fn latency_json(stages: &[(&'static str, crate::types::latency::Summary)]) -> Value {
    let mut lat = Map::new();
    for (name, m) in stages {
        lat.insert(
            name.to_string(),
            json!({"count": m.count, "p50": m.p50, "p90": m.p90, "p99": m.p99, "p999": m.p999, "max": m.max}),
        );
    }
    Value::Object(lat)
}

/// A price in ticks as its decimal text under the symbol's scale (`None` when either is not known).
fn price_text(scale: Option<Scale>, px: Option<i64>) -> Option<String> {
    Some(scale?.to_string(px?))
}

/// [`price_text`] as JSON (null when not known).
fn price_json(scale: Option<Scale>, px: Option<i64>) -> Value {
    price_text(scale, px).map_or(Value::Null, Value::String)
}

/// The volume profile of a symbol (prices in quote units), or null before the first profile.
fn profile_json(s: &SymbolState, vwap_band_sigmas: f64) -> Value {
    let px_f = |t: f64| -> Value {
        match s.price {
            Some(sc) => json!(format!("{:.*}", sc.dec as usize, t * sc.to_f64(1))),
            None => Value::Null,
        }
    };
    match &s.levels {
        Some(l) => json!({
            "poc": price_json(s.price, Some(l.poc)),
            "val": price_json(s.price, Some(l.val)),
            "vah": price_json(s.price, Some(l.vah)),
            "vwap": px_f(l.vwap),
            "vwap_upper": px_f(l.vwap + l.sigma * vwap_band_sigmas),
            "vwap_lower": px_f(l.vwap - l.sigma * vwap_band_sigmas),
            "value_area_share": l.va_share,
            "hvn": l.hvn[..l.n_hvn].iter().map(|&h| price_json(s.price, Some(h))).collect::<Vec<_>>(),
            "lvn": l.lvn[..l.n_lvn].iter().map(|&h| price_json(s.price, Some(h))).collect::<Vec<_>>(),
        }),
        None => Value::Null,
    }
}

/// Counts by name: `(name, count)` pairs as a JSON object.
fn counts<'a>(pairs: impl Iterator<Item = (&'a str, u64)>) -> Map<String, Value> {
    pairs.map(|(k, n)| (k.to_string(), json!(n))).collect()
}

/// What a symbol's compute stage dropped, by reason (shown in every summary, replay and live).
fn dropped_json(s: &SymbolState) -> Value {
    let bs = &s.book.stats;
    json!({
        "duplicate_trades": s.duplicate_trades,
        "out_of_order_trades": s.out_of_order_trades,
        "depth_duplicates": bs.duplicates,
        "depth_before_sync": bs.depth_before_sync,
        "depth_buffered": s.book.buffered_messages(),
        "partial_depth": bs.partial_depth,
        "snapshots_ignored": bs.snapshots_ignored,
        "orphan_levels": bs.orphan_levels,
    })
}

/// The book audit of a symbol: compared and matched, and the tickers not compared by reason.
fn audit_json(s: &SymbolState) -> Value {
    let k = &s.audit_skipped;
    json!({
        "compared": s.audit_compared,
        "matched": s.audit_matched,
        "not_compared": {
            "unsynced": k.unsynced, "passed": k.passed, "overflow": k.overflow, "pending": s.audit_queue.pending(),
        },
    })
}

/// One symbol of the `--json` object.
fn symbol_json(r: &ReplayReport, s: &SymbolState) -> Value {
    use crate::compute::trading::gate::GateReject;
    use crate::compute::trading::risk::RiskReject;
    use crate::types::record::{ExitReason, Regime};
    let (bid, ask) = s.book.top();
    let bs = &s.book.stats;
    let t = s.trader();
    let gate = counts(GateReject::ALL.iter().map(|g| (g.name(), t.gate_rejects[g.index()])));
    let risk = counts(RiskReject::ALL.iter().map(|k| (k.name(), t.risk_rejects[k.index()])));
    let closed = counts(ExitReason::ALL.iter().map(|x| (x.name(), t.closed_by_reason[x.index()])));
    let exits = counts(ExitReason::ALL.iter().map(|x| (x.name(), t.exits_by_reason[x.index()])));
    let by_regime = counts(Regime::ALL.iter().map(|g| (g.name(), s.signals_by_regime[g.index()])));
    json!({
        "scales": scales_json(r, s.name),
        "trades": s.trades,
        "trade_qty": s.qty.map(|q| q.to_string(s.trade_qty)).unwrap_or_else(|| s.trade_qty.to_string()),
        "non_market_trades": s.non_market_trades,
        "dropped": dropped_json(s),
        "depth_applied": bs.depth_applied,
        "gaps": bs.gaps,
        "reordered": bs.reordered,
        "resyncs": bs.resyncs,
        "snapshots_applied": bs.snapshots_applied,
        "stale_snapshots": bs.stale_snapshots,
        "crossed": bs.crossed,
        "synced": s.book.is_synced(),
        "best_bid": price_json(s.price, bid.map(|l| l.px)),
        "best_ask": price_json(s.price, ask.map(|l| l.px)),
        "bars": s.bars.closed,
        "book_audit": audit_json(s),
        "signals": {"long": t.signals[0], "short": t.signals[1]},
        "signals_by_regime": by_regime,
        "regime": s.regime.regime.name(),
        "regime_switches": s.regime.switches,
        "burst_threshold": t.strategy.burst_ratio,
        "tuning_runs": s.tuner.runs,
        "tuning_changes": s.tuning_changes,
        "cvd": s.qty.map(|q| q.to_string(s.flow.cvd)),
        "profile": profile_json(s, r.vwap_band_sigmas),
        "gate_rejections": gate,
        "risk_rejections": risk,
        "positions": {
            "opened": t.opened,
            "closed": t.closed_by_reason.iter().sum::<u64>(),
            "closed_by_exit_reason": closed,
            "exit_fills_by_reason": exits,
            "entries_unfilled": t.entries_unfilled,
            "entries_unsent": t.entries_unsent,
            "orders_refused": t.orders_refused,
        },
        "fundings": s.fundings,
        "pnl": t.pnl,
        "fees": t.fees,
        "funding": t.funding,
        "maker_fills": t.maker_fills,
        "taker_fills": t.taker_fills,
        "variants": shadows_json(r, s),
    })
}

/// One account's execution totals over its symbols' traders (fees and funding are in its PnL).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct AccountCosts {
    /// Realised net PnL, quote.
    pnl: f64,
    /// Fees paid, quote.
    fees: f64,
    /// Funding received (+) or paid (−), quote.
    funding: f64,
    /// Maker fills.
    maker_fills: u64,
    /// Taker fills.
    taker_fills: u64,
}

impl AccountCosts {
    /// The totals of account `k` (0 = base, k = the k-th variant) over every symbol.
    fn of(e: &Engine, k: usize) -> Self {
        let mut a = AccountCosts::default();
        for s in &e.symbols {
            let t = if k == 0 { Some(s.trader()) } else { s.variants().get(k - 1) };
            if let Some(t) = t {
                a.pnl += t.pnl;
                a.fees += t.fees;
                a.funding += t.funding;
                a.maker_fills += t.maker_fills;
                a.taker_fills += t.taker_fills;
            }
        }
        a
    }

    /// Its keys in the `--json` object.
    fn insert_into(&self, m: &mut Map<String, Value>) {
        m.insert("pnl".into(), json!(self.pnl));
        m.insert("fees".into(), json!(self.fees));
        m.insert("funding".into(), json!(self.funding));
        m.insert("maker_fills".into(), json!(self.maker_fills));
        m.insert("taker_fills".into(), json!(self.taker_fills));
    }

    /// Its text line.
    fn line(&self, name: &str, balance: f64) -> String {
        format!(
            "account {name}: balance {balance:.2}, pnl {:.4} (fees {:.4}, funding {:+.4}), fills maker {} taker {}\n",
            self.pnl, self.fees, self.funding, self.maker_fills, self.taker_fills
        )
    }
}

/// The base account's block of the `--json` object: balance, open positions, daily limit hits, and its totals.
fn account_json(e: &Engine) -> Value {
    let mut m = Map::new();
    m.insert("balance".into(), json!(e.risk().balance));
    m.insert("open_positions".into(), json!(e.risk().open_positions));
    m.insert("daily_limit_hits".into(), json!(e.risk().daily_limit_hits));
    AccountCosts::of(e, 0).insert_into(&mut m);
    Value::Object(m)
}

/// The A/B variants' accounts: balance and totals, by name.
fn variant_accounts_json(e: &Engine) -> Map<String, Value> {
    e.variant_accounts()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut m = Map::new();
            m.insert("balance".into(), json!(a.risk.balance));
            AccountCosts::of(e, i + 1).insert_into(&mut m);
            (a.rules.name.clone(), Value::Object(m))
        })
        .collect()
}

/// The text summary's account lines: PnL with its fees and funding, and the fills by liquidity.
fn accounts_text(e: &Engine) -> String {
    let mut s = AccountCosts::of(e, 0).line("base", e.risk().balance);
    for (i, a) in e.variant_accounts().iter().enumerate() {
        s.push_str(&AccountCosts::of(e, i + 1).line(&a.rules.name, a.risk.balance));
    }
    s
}

/// The A/B variants' traders of one symbol.
fn shadows_json(r: &ReplayReport, s: &SymbolState) -> Map<String, Value> {
    r.engine
        .variant_names()
        .iter()
        .zip(s.variants())
        .map(|(n, t)| {
            (
                n.to_string(),
                json!({
                    "signals": {"long": t.signals[0], "short": t.signals[1]},
                    "opened": t.opened,
                    "closed": t.closed_by_reason.iter().sum::<u64>(),
                    "pnl": t.pnl,
                    "fees": t.fees,
                    "funding": t.funding,
                    "maker_fills": t.maker_fills,
                    "taker_fills": t.taker_fills,
                }),
            )
        })
        .collect()
}

/// Malformed frames by kind, with the recording's bad and oversize lines.
fn malformed_kinds(p: &ParseStats, f: &FeedStats) -> Map<String, Value> {
    let mut m = Map::new();
    for (i, n) in p.malformed.iter().enumerate() {
        if *n > 0 {
            m.insert(ParseError::kind_name(i).to_string(), json!(n));
        }
    }
    if f.bad_lines > 0 {
        m.insert("bad_line".into(), json!(f.bad_lines));
    }
    if f.oversize_lines > 0 {
        m.insert("oversize_line".into(), json!(f.oversize_lines));
    }
    m
}

/// The database block of the JSON reports (the replay adds its run id).
fn db_json(p: &PersistStats) -> Value {
    json!({
        "rows": p.db_rows,
        "commits": p.db_commits,
        "write_errors": p.db_write_errors,
        "rows_dropped": p.db_rows_dropped,
        "rows_rejected": p.db_rows_rejected,
        "control_dropped": p.control_dropped,
        "crashed_runs_recovered": p.crashed_runs_recovered,
    })
}

/// The `--json` object.
/// The run's market model: `full_book` (every symbol's book from its depth stream, or nothing decided),
/// `top_of_book` (every symbol with a model ran on its bookTickers: no depth stream), or `mixed`.
pub fn market_model(engine: &crate::compute::engine::Engine) -> &'static str {
    use crate::compute::market::book::MarketModel;
    let has = |m: MarketModel| engine.symbols.iter().any(|s| s.book.model() == m);
    match (has(MarketModel::TopOfBook), has(MarketModel::FullBook)) {
        (true, true) => "mixed",
        (true, false) => MarketModel::TopOfBook.as_str(),
        _ => MarketModel::FullBook.as_str(),
    }
}

/// The `--json` object. `market_model` (top level and per symbol) is present only when a symbol ran the
/// top-of-book model: a full-book run's object is as before it existed.
pub fn to_json(r: &ReplayReport) -> Value {
    let mut v = to_json_full_book(r);
    let model = market_model(&r.engine);
    if model != "full_book" {
        v["market_model"] = json!(model);
        for s in &r.engine.symbols {
            v["symbols"][s.name.as_str()]["market_model"] = json!(s.book.model().as_str());
            v["symbols"][s.name.as_str()]["top_of_book_tickers"] = json!(s.book.tob_tickers);
            v["symbols"][s.name.as_str()]["top_of_book_refused"] = json!(s.book.tob_refused);
        }
    }
    if !r.window.is_all() {
        v["window"] = window_json(r);
    }
    v
}

/// The `--from` / `--until` window of a replay: its bounds (UTC and ns) and the signals refused before `from`.
fn window_json(r: &ReplayReport) -> Value {
    let at = |t: Option<i64>| t.map(|ns| json!({"utc": LocalTime(ns).to_string(), "ns": ns}));
    json!({
        "from": at(r.window.from_ns),
        "until": at(r.window.until_ns),
        "warmup_refused": r.engine.stats.warmup_refused,
    })
}

/// The text summary's window line, only with `--from` / `--until`.
fn window_line(r: &ReplayReport) -> String {
    if r.window.is_all() {
        return String::new();
    }
    let at = |t: Option<i64>| t.map_or("-".to_string(), |ns| LocalTime(ns).to_string());
    format!(
        "window (local time): entries from {}, stream until {}; signals refused in the warm-up before it: {}\n",
        at(r.window.from_ns),
        at(r.window.until_ns),
        r.engine.stats.warmup_refused
    )
}

fn to_json_full_book(r: &ReplayReport) -> Value {
    let p = &r.parse;
    let f = &r.feed;
    let frames = p.frames;
    let secs = r.elapsed.as_secs_f64();
    let symbols: Map<String, Value> =
        r.engine.symbols.iter().map(|s| (s.name.as_str().to_string(), symbol_json(r, s))).collect();
    let mut db = db_json(&r.persist);
    db["run_id"] = json!(r.run_id);
    json!({
        "frames": frames,
        "events": {
            "trade": p.trade,
            "non_market_trade": p.non_market_trade,
            "depth": p.depth,
            "book_ticker": p.book_ticker,
            "mark_price": p.mark_price,
            "snapshot": p.snapshot,
            "other": p.unknown_event + p.control + p.exchange_info,
        },
        "unknown_event": p.unknown_event,
        "malformed": p.malformed_total() + f.malformed_lines(),
        "malformed_kinds": malformed_kinds(p, f),
        "ring_full": f.ring_full,
        "frames_dropped": f.frames_dropped,
        "records_lost": r.engine.stats.records_lost,
        "orphan_events": r.engine.stats.orphan_events,
        "symbols_over_limit": r.engine.stats.symbols_over_limit,
        "bars_written": r.persist.bars_written,
        "signals": r.persist.signals,
        "variant_balances": r.engine.variant_accounts().iter()
            .map(|a| (a.rules.name.clone(), json!(a.risk.balance))).collect::<Map<String, Value>>(),
        "variant_accounts": variant_accounts_json(&r.engine),
        "account": account_json(&r.engine),
        "db": db,
        "tuning_runs": r.persist.tuning_runs,
        "elapsed_s": secs,
        "frames_per_s": if secs > 0.0 { frames as f64 / secs } else { 0.0 },
        "symbols": symbols,
        "latency_ns": latency_json(&r.latency),
    })
}

/// The text summary's market-model line, only when a symbol ran the top-of-book model.
fn market_model_line(engine: &crate::compute::engine::Engine) -> String {
    use crate::compute::market::book::MarketModel;
    let model = market_model(engine);
    if model == "full_book" {
        return String::new();
    }
    let tob: Vec<&str> =
        engine.symbols.iter().filter(|s| s.book.model() == MarketModel::TopOfBook).map(|s| s.name.as_str()).collect();
    format!(
        "market model: {model} (top of book for {}: no depth stream, the book is the latest bookTicker; entries \
         blocked when it is older than gate.max_book_age_ms)\n",
        tob.join(", ")
    )
}

/// The text summary's book table: one line per symbol.
fn book_table(r: &ReplayReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<12} {:>8} {:>14} {:>8} {:>5} {:>7} {:>7} {:>14} {:>14} {:>6} {:>15}\n",
        "symbol", "trades", "trade_qty", "depth", "gaps", "resyncs", "synced", "best_bid", "best_ask", "bars", "audit"
    ));
    for sym in &r.engine.symbols {
        let (bid, ask) = sym.book.top();
        s.push_str(&format!(
            "{:<12} {:>8} {:>14} {:>8} {:>5} {:>7} {:>7} {:>14} {:>14} {:>6} {:>15}\n",
            sym.name.as_str(),
            sym.trades,
            sym.qty.map(|q| q.to_string(sym.trade_qty)).unwrap_or_default(),
            sym.book.stats.depth_applied,
            sym.book.stats.gaps,
            sym.book.stats.resyncs,
            if sym.book.is_synced() { "yes" } else { "no" },
            price_text(sym.price, bid.map(|l| l.px)).unwrap_or_else(|| "-".into()),
            price_text(sym.price, ask.map(|l| l.px)).unwrap_or_else(|| "-".into()),
            sym.bars.closed,
            format!("{}/{}", sym.audit_matched, sym.audit_compared)
        ));
    }
    s
}

/// What a symbol dropped, as one text line (both summaries).
fn dropped_line(sym: &SymbolState) -> String {
    let bs = &sym.book.stats;
    format!(
        "{:<12} dropped: trades duplicate {}, out of order {}; depth duplicate {}, reordered {}, before sync {}, still buffered {}, partial {}; snapshots ignored {}; orphan levels {}; tickers not audited: unsynced {}, passed {}, overflow {}\n",
        sym.name.as_str(),
        sym.duplicate_trades,
        sym.out_of_order_trades,
        bs.duplicates,
        bs.reordered,
        bs.depth_before_sync,
        sym.book.buffered_messages(),
        bs.partial_depth,
        bs.snapshots_ignored,
        bs.orphan_levels,
        sym.audit_skipped.unsynced,
        sym.audit_skipped.passed,
        sym.audit_skipped.overflow
    )
}

/// Events dropped for symbols the engine does not hold, as a text line (empty when none).
fn unknown_symbols_line(e: &Engine) -> String {
    let st = &e.stats;
    if st.orphan_events + st.symbols_over_limit == 0 {
        return String::new();
    }
    format!(
        "events of unknown symbols dropped {}, symbols over the limit {}\n",
        st.orphan_events, st.symbols_over_limit
    )
}

/// The text summary's signal and profile table: one line per symbol.
fn signal_table(r: &ReplayReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<12} {:>6} {:>6} {:>11} {:>9} {:>6} {:>14} {:>14} {:>14} {:>14}\n",
        "symbol", "long", "short", "regime", "burst_thr", "tuned", "POC", "VAL", "VAH", "VWAP"
    ));
    for sym in &r.engine.symbols {
        let (poc, val, vah, vwap) = match (&sym.levels, sym.price) {
            (Some(l), Some(sc)) => (
                sc.to_string(l.poc),
                sc.to_string(l.val),
                sc.to_string(l.vah),
                format!("{:.*}", sc.dec as usize, l.vwap * sc.to_f64(1)),
            ),
            _ => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        s.push_str(&format!(
            "{:<12} {:>6} {:>6} {:>11} {:>9.2} {:>6} {:>14} {:>14} {:>14} {:>14}\n",
            sym.name.as_str(),
            sym.trader().signals[0],
            sym.trader().signals[1],
            sym.regime.regime.name(),
            sym.trader().strategy.burst_ratio,
            sym.tuner.runs,
            poc,
            val,
            vah,
            vwap
        ));
    }
    s
}

/// The human-readable summary.
pub fn to_text(r: &ReplayReport) -> String {
    let p = &r.parse;
    let f = &r.feed;
    let secs = r.elapsed.as_secs_f64();
    let mut s = String::new();
    s.push_str(&format!(
        "replayed {} frames in {:.3} s ({:.0} frames/s): trade {}, non-market {}, depth {}, bookTicker {}, markPrice {}, snapshot {}, other {}\n",
        p.frames,
        secs,
        if secs > 0.0 { p.frames as f64 / secs } else { 0.0 },
        p.trade,
        p.non_market_trade,
        p.depth,
        p.book_ticker,
        p.mark_price,
        p.snapshot,
        p.unknown_event + p.control + p.exchange_info
    ));
    s.push_str(&format!(
        "malformed {} (lines {}), unknown events {}, ring full {}, frames dropped {}, records lost {}\n\n",
        p.malformed_total() + f.malformed_lines(),
        f.malformed_lines(),
        p.unknown_event,
        f.ring_full,
        f.frames_dropped,
        r.engine.stats.records_lost
    ));
    s.push_str(&book_table(r));
    s.push_str(&scales_line(r));
    for sym in &r.engine.symbols {
        s.push_str(&dropped_line(sym));
    }
    s.push_str(&unknown_symbols_line(&r.engine));
    s.push('\n');
    s.push_str(&signal_table(r));
    s.push_str(&market_model_line(&r.engine));
    s.push_str(&window_line(r));
    s.push_str(&accounts_text(&r.engine));
    if r.persist.csv_lines_lost > 0 {
        s.push_str(&format!("CSV lines not written after the CSV's write error: {}\n", r.persist.csv_lines_lost));
    }
    if r.persist.crashed_runs_recovered > 0 {
        s.push_str(&format!(
            "database: runs of killed processes marked crashed: {}\n",
            r.persist.crashed_runs_recovered
        ));
    }
    s.push('\n');
    s.push_str("latency per stage (monotonic clock; replay --speed asap includes queueing in ring_wait):\n");
    s.push_str(&latency::table(&r.latency.iter().map(|(n, m)| (*n, *m)).collect::<Vec<_>>()));
    s
}

/// The `rusto live --json` object.
pub fn live_json(r: &LiveReport) -> Value {
    let mut symbols = Map::new();
    for s in &r.engine.symbols {
        let (bid, ask) = s.book.top();
        let bs = &s.book.stats;
        symbols.insert(
            s.name.as_str().to_string(),
            json!({
                "trades": s.trades,
                "non_market_trades": s.non_market_trades,
                "duplicate_trades": s.duplicate_trades,
                "trade_ids_missing": s.trade_ids.missing(),
                "dropped": dropped_json(s),
                "trade_qty": s.qty.map(|q| q.to_string(s.trade_qty)),
                "depth_applied": bs.depth_applied,
                "gaps": bs.gaps,
                "reordered": bs.reordered,
                "resyncs": bs.resyncs,
                "snapshots_applied": bs.snapshots_applied,
                "crossed": bs.crossed,
                "synced": s.book.is_synced(),
                "dropped_frames": s.dropped_frames,
                "best_bid": price_json(s.price, bid.map(|l| l.px)),
                "best_ask": price_json(s.price, ask.map(|l| l.px)),
                "book_audit": audit_json(s),
                "bars": s.bars.closed,
                "signals": {"long": s.trader().signals[0], "short": s.trader().signals[1]},
                "positions_opened": s.trader().opened,
                "pnl": s.trader().pnl, "fees": s.trader().fees, "funding": s.trader().funding,
                "maker_fills": s.trader().maker_fills, "taker_fills": s.trader().taker_fills,
                "draining": s.draining.is_some(),
                "drain_refused": s.drain_refused,
            }),
        );
    }
    let lat = latency_json(&r.latency);
    let (latency_ns, source) = order_latency(r);
    let latency_ms = latency_ns as f64 / 1e6;
    json!({
        "elapsed_s": r.elapsed.as_secs_f64(),
        "selected": r.symbols.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>(),
        "subscribed_streams": r.net.control_sent,
        "selections": r.selections,
        "net": {
            "frames": r.net.frames, "bytes": r.net.bytes, "pings": r.net.pings, "connects": r.net.connects,
            "disconnects": r.net.disconnects, "rotations": r.net.rotations, "conn_slots_max": r.net.conn_slots_max,
            "snapshots": r.net.snapshots,
            "control_sent": r.net.control_sent, "last_error": r.net.last_error,
            "ctrl_dropped": r.net.ctrl_dropped, "inbox_full": r.net.inbox_full, "frames_undelivered": r.net.frames_undelivered,
            "handshake_timeouts": r.net.handshake_timeouts, "feed_down": r.net.feed_down,
        },
        "events": {
            "trade": r.parse.trade, "depth": r.parse.depth, "book_ticker": r.parse.book_ticker,
            "mark_price": r.parse.mark_price, "snapshot": r.parse.snapshot,
            "other": r.parse.unknown_event + r.parse.control + r.parse.exchange_info,
        },
        "malformed": r.parse.malformed_total(),
        "ring_full": r.feed.ring_full,
        "frames_dropped": r.feed.frames_dropped,
        "compute_hooks": r.engine.stats.hooks,
        "orphan_events": r.engine.stats.orphan_events,
        "symbols_over_limit": r.engine.stats.symbols_over_limit,
        "rest": {"requests": r.rest.requests, "rate_limited": r.rest.rate_limited, "used_weight": r.rest.used_weight},
        "health": {"rtt_ms": r.health.rtt_ms, "clock_offset_ms": r.health.offset_ms},
        "order_latency_ms": latency_ms,
        "order_latency_ns": latency_ns,
        "order_latency_source": source,
        "db": db_json(&r.persist),
        "symbols": symbols,
        "latency_ns": lat,
    })
}

/// The order latency in force at the end of a live run, ns, and where it comes from: `measured` (the last link
/// health check's REST round trip / 2) or `config` (`position.order_latency_ms`).
fn order_latency(r: &LiveReport) -> (i64, &'static str) {
    match r.engine.order_latency_ns() {
        Some(ns) => (ns, "measured"),
        None => ((r.config_order_latency_ms * 1e6).round() as i64, "config"),
    }
}

/// The `rusto live` final text report.
pub fn live_text(r: &LiveReport) -> String {
    let mut s = format!(
        "live run of {:.1} s: {} frames, {} connects, {} disconnects, {} snapshots, malformed {}, ring full {}, dropped {}\n",
        r.elapsed.as_secs_f64(),
        r.net.frames,
        r.net.connects,
        r.net.disconnects,
        r.net.snapshots,
        r.parse.malformed_total(),
        r.feed.ring_full,
        r.feed.frames_dropped
    );
    for sym in &r.engine.symbols {
        s.push_str(&format!(
            "{:<12} trades {:>8} depth {:>8} gaps {:>3} resyncs {:>3} synced {:>5} audit {}/{} signals {}/{} pnl {:.2}\n",
            sym.name.as_str(),
            sym.trades,
            sym.book.stats.depth_applied,
            sym.book.stats.gaps,
            sym.book.stats.resyncs,
            sym.book.is_synced(),
            sym.audit_matched,
            sym.audit_compared,
            sym.trader().signals[0],
            sym.trader().signals[1],
            sym.trader().pnl
        ));
        s.push_str(&dropped_line(sym));
    }
    s.push_str(&unknown_symbols_line(&r.engine));
    let (latency_ns, source) = order_latency(r);
    s.push_str(&format!("order latency {:.3} ms ({source})\n", latency_ns as f64 / 1e6));
    s.push_str("latency per stage (tick-to-decision from the socket read):\n");
    s.push_str(&latency::table(&r.latency.iter().map(|(n, m)| (*n, *m)).collect::<Vec<_>>()));
    s
}

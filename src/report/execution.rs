//! The execution-cost section of `rusto report` (issue 10): what the fills cost, from `fills` and `positions`.
//!
//! Per group of closed positions (the base trader's by symbol and by final exit reason, as the report's other
//! tables; every trader's total, by trader):
//! - positions, order fills (entries and exits; funding rows are counted apart as funding payments), fees and
//!   funding (quote, from the positions: both are in their PnL);
//! - maker and taker fill counts (`fills.liquidity`; a liquidation takes neither);
//! - expected vs realised entry slippage: the means of the positions' `expected_slippage_bps` (the gate's model)
//!   and `realized_slippage_bps` (the entry walk against the freshest touch), bps;
//! - stop-market exit slippage (StopLoss, Breakeven, SoftStop, Shutdown fills with a `trigger_price`): the adverse
//!   distance of the fill price from the trigger, `(trigger − price) / trigger` for a sell and `(price − trigger) /
//!   trigger` for a buy, in bps (positive = worse than the trigger): mean and worst over those fills;
//! - take-profit fills (TP1, TP2) and how many of them filled at their limit (`price = trigger_price`).
//!
//! Databases written before schema 5 (`migrations/0005_execution.sql`) have no liquidity, trigger price or funding:
//! a figure that depends on them is `null` in the JSON and `-` in the text when none of the group's fills recorded
//! it (funding is 0 there: none was modelled). Maker/taker counts come from the fills written by schema 5 (they
//! have a decision time), so a database holding older and newer runs counts the newer fills only.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use crate::types::record::{ExitReason, FillKind};

/// The exit kinds filled as stop-market orders (their slippage is measured against the trigger).
const STOP_MARKET: [ExitReason; 4] =
    [ExitReason::StopLoss, ExitReason::Breakeven, ExitReason::SoftStop, ExitReason::Shutdown];
/// The exit kinds filled as resting reduce-only limit orders.
const TAKE_PROFIT: [ExitReason; 2] = [ExitReason::Tp1, ExitReason::Tp2];

/// One fill as the report reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FillRow<'a> {
    /// `fills.kind`.
    pub(crate) kind: &'a str,
    /// A sell.
    pub(crate) sell: bool,
    /// Price, quote.
    pub(crate) price: f64,
    /// `fills.liquidity` ("maker", "taker" or NULL).
    pub(crate) liquidity: Option<&'a str>,
    /// `fills.trigger_price`, quote.
    pub(crate) trigger_price: Option<f64>,
    /// Written by schema 5 or later (it has a decision time): its liquidity is known, NULL included.
    pub(crate) described: bool,
}

/// What one position's fills (or a group's) add up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FillStats {
    /// Order fills (entries and exits).
    pub fills: u64,
    /// Order fills written by schema 5 or later.
    pub described: u64,
    /// Maker fills.
    pub maker: u64,
    /// Taker fills.
    pub taker: u64,
    /// Funding rows.
    pub funding_payments: u64,
    /// Stop-market exits with a trigger price.
    pub stop_exits: u64,
    /// Σ of their slippage, bps.
    pub stop_slippage_bps_sum: f64,
    /// The worst of them, bps.
    pub stop_slippage_bps_worst: Option<f64>,
    /// Take-profit fills.
    pub tp_fills: u64,
    /// Take-profit fills with their limit price recorded.
    pub tp_priced: u64,
    /// Take-profit fills at their limit price.
    pub tp_at_limit: u64,
}

impl FillStats {
    /// Counts one fill.
    pub(crate) fn add(&mut self, f: &FillRow<'_>) {
        if f.kind == (FillKind::Funding { rate: 0.0 }).name() {
            self.funding_payments += 1;
            return;
        }
        self.fills += 1;
        self.described += f.described as u64;
        match f.liquidity {
            Some("maker") => self.maker += 1,
            Some("taker") => self.taker += 1,
            _ => {}
        }
        let is = |set: &[ExitReason]| set.iter().any(|r| r.name() == f.kind);
        if is(&STOP_MARKET)
            && let Some(t) = f.trigger_price.filter(|t| *t > 0.0)
        {
            let bps = (if f.sell { t - f.price } else { f.price - t }) / t * 1e4;
            self.stop_exits += 1;
            self.stop_slippage_bps_sum += bps;
            self.stop_slippage_bps_worst = Some(self.stop_slippage_bps_worst.map_or(bps, |w| w.max(bps)));
        }
        if is(&TAKE_PROFIT) {
            self.tp_fills += 1;
            if let Some(t) = f.trigger_price {
                self.tp_priced += 1;
                self.tp_at_limit += ((f.price - t).abs() <= 1e-9 * t.abs()) as u64;
            }
        }
    }

    /// Adds another's counts.
    pub fn merge(&mut self, o: &FillStats) {
        self.fills += o.fills;
        self.described += o.described;
        self.maker += o.maker;
        self.taker += o.taker;
        self.funding_payments += o.funding_payments;
        self.stop_exits += o.stop_exits;
        self.stop_slippage_bps_sum += o.stop_slippage_bps_sum;
        self.stop_slippage_bps_worst = match (self.stop_slippage_bps_worst, o.stop_slippage_bps_worst) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.tp_fills += o.tp_fills;
        self.tp_priced += o.tp_priced;
        self.tp_at_limit += o.tp_at_limit;
    }
}

/// What the execution section needs of one closed position.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PositionCosts {
    /// Fees, quote.
    pub fees: f64,
    /// Funding, quote (0 before schema 5).
    pub funding: f64,
    /// Expected entry slippage, bps.
    pub expected_slippage_bps: f64,
    /// Realised entry slippage, bps.
    pub realized_slippage_bps: f64,
    /// Its fills.
    pub fills: FillStats,
}

/// A group of positions being added up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CostAgg {
    positions: u64,
    fees: f64,
    funding: f64,
    expected_bps_sum: f64,
    realized_bps_sum: f64,
    fills: FillStats,
}

impl CostAgg {
    fn add(&mut self, p: &PositionCosts) {
        self.positions += 1;
        self.fees += p.fees;
        self.funding += p.funding;
        self.expected_bps_sum += p.expected_slippage_bps;
        self.realized_bps_sum += p.realized_slippage_bps;
        self.fills.merge(&p.fills);
    }
}

/// One group's execution costs (a JSON object, and a line of the text table). `None` (JSON `null`, text `-`):
/// not recorded (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CostRow {
    /// Positions.
    pub positions: u64,
    /// Order fills (entries and exits).
    pub fills: u64,
    /// Fees, quote.
    pub fees: f64,
    /// Funding received (+) or paid (−), quote.
    pub funding: f64,
    /// Funding payments (rows).
    pub funding_payments: u64,
    /// Maker fills.
    pub maker_fills: Option<u64>,
    /// Taker fills.
    pub taker_fills: Option<u64>,
    /// Mean expected entry slippage, bps.
    pub expected_entry_slippage_bps: Option<f64>,
    /// Mean realised entry slippage, bps.
    pub realized_entry_slippage_bps: Option<f64>,
    /// Stop-market exits with a trigger price.
    pub stop_exits: u64,
    /// Their mean slippage against the trigger, bps (positive = worse).
    pub stop_exit_slippage_bps: Option<f64>,
    /// Their worst slippage, bps.
    pub stop_exit_slippage_worst_bps: Option<f64>,
    /// Take-profit fills.
    pub tp_fills: u64,
    /// Take-profit fills at their limit price.
    pub tp_fills_at_limit: Option<u64>,
}

impl From<CostAgg> for CostRow {
    fn from(a: CostAgg) -> Self {
        let f = a.fills;
        let mean = |sum: f64, n: u64| (n > 0).then(|| sum / n as f64);
        let known = f.fills == 0 || f.described > 0;
        CostRow {
            positions: a.positions,
            fills: f.fills,
            fees: a.fees,
            funding: a.funding,
            funding_payments: f.funding_payments,
            maker_fills: known.then_some(f.maker),
            taker_fills: known.then_some(f.taker),
            expected_entry_slippage_bps: mean(a.expected_bps_sum, a.positions),
            realized_entry_slippage_bps: mean(a.realized_bps_sum, a.positions),
            stop_exits: f.stop_exits,
            stop_exit_slippage_bps: mean(f.stop_slippage_bps_sum, f.stop_exits),
            stop_exit_slippage_worst_bps: f.stop_slippage_bps_worst,
            tp_fills: f.tp_fills,
            tp_fills_at_limit: (f.tp_fills == 0 || f.tp_priced > 0).then_some(f.tp_at_limit),
        }
    }
}

/// The execution-cost section.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Execution {
    /// All base positions.
    pub total: CostRow,
    /// Base positions by symbol.
    pub by_symbol: BTreeMap<String, CostRow>,
    /// Base positions by final exit reason.
    pub by_exit_reason: BTreeMap<String, CostRow>,
    /// Every trader's positions, by trader.
    pub by_variant: BTreeMap<String, CostRow>,
}

/// A position's group keys and costs, as [`build`] takes them: (symbol, exit reason, trader, costs).
pub(crate) type Keyed<'a> = (&'a str, &'a str, &'a str, &'a PositionCosts);

/// Builds the section from the positions (crashed ones already left out).
pub(crate) fn build<'a>(positions: impl Iterator<Item = Keyed<'a>>) -> Execution {
    let mut total = CostAgg::default();
    let mut by: [BTreeMap<String, CostAgg>; 3] = Default::default();
    for (symbol, exit, variant, c) in positions {
        by[2].entry(variant.to_string()).or_default().add(c);
        if variant != "base" {
            continue;
        }
        total.add(c);
        by[0].entry(symbol.to_string()).or_default().add(c);
        by[1].entry(exit.to_string()).or_default().add(c);
    }
    let rows = |m: BTreeMap<String, CostAgg>| m.into_iter().map(|(k, a)| (k, a.into())).collect();
    let [s, e, v] = by;
    Execution { total: total.into(), by_symbol: rows(s), by_exit_reason: rows(e), by_variant: rows(v) }
}

/// Every position's fill statistics, by position row id: a vector indexed by the id when the ids are dense (row
/// ids of one database: the common case, no hashing on 1 M positions), a map otherwise.
pub(crate) enum ByPosition {
    /// Index = row id.
    Dense(Vec<FillStats>),
    /// Sparse or negative ids.
    Sparse(HashMap<i64, FillStats>),
}

impl ByPosition {
    fn slot(&mut self, id: i64) -> &mut FillStats {
        let fits = |v: &Vec<FillStats>| usize::try_from(id).is_ok_and(|i| i < v.len());
        if let ByPosition::Dense(v) = self
            && !fits(v)
        {
            // Beyond the maximum read up front (a row added since): kept in a map from here on.
            let used = v.iter().enumerate().filter(|(_, s)| s.fills + s.funding_payments > 0);
            *self = ByPosition::Sparse(used.map(|(i, s)| (i as i64, *s)).collect());
        }
        match self {
            ByPosition::Dense(v) => &mut v[id as usize],
            ByPosition::Sparse(m) => m.entry(id).or_default(),
        }
    }

    /// Takes position `id`'s statistics out (nothing recorded: zeros).
    pub(crate) fn take(&mut self, id: i64) -> FillStats {
        match self {
            ByPosition::Dense(v) => usize::try_from(id).ok().and_then(|i| v.get_mut(i)).map(std::mem::take),
            ByPosition::Sparse(m) => m.remove(&id),
        }
        .unwrap_or_default()
    }
}

/// Reads every fill once into [`ByPosition`]. `schema` is the database's version: before 5 the execution columns
/// do not exist and read as NULL.
pub(crate) fn load_fill_stats(c: &Connection, schema: i64) -> rusqlite::Result<ByPosition> {
    let (n, max): (i64, Option<i64>) =
        c.query_row("SELECT count(*), MAX(position_id) FROM fills", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut out = match max {
        Some(m) if m >= 0 && m <= 4 * n + 1024 => ByPosition::Dense(vec![FillStats::default(); m as usize + 1]),
        _ => ByPosition::Sparse(HashMap::new()),
    };
    let cols = if schema >= 5 { "liquidity, trigger_price, decision_ts_ms IS NOT NULL" } else { "NULL, NULL, 0" };
    let mut st = c.prepare(&format!("SELECT position_id, kind, side = 'sell', price, {cols} FROM fills"))?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<Option<&str>> {
            Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).ok(),
                _ => None,
            })
        };
        let f = FillRow {
            kind: text(1)?.unwrap_or(""),
            sell: r.get(2)?,
            price: r.get(3)?,
            liquidity: text(4)?,
            trigger_price: r.get(5)?,
            described: r.get(6)?,
        };
        out.slot(r.get(0)?).add(&f);
    }
    Ok(out)
}

/// A figure or `-`.
fn or_dash<T: std::fmt::Display>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

/// One line of the execution table.
fn line(k: &str, r: &CostRow) -> String {
    let bps = |x: f64| format!("{x:.2}");
    let n = |x: u64| x.to_string();
    format!(
        "  {:<16} {:>5} {:>6} {:>10.2} {:>10.4} {:>8} {:>6} {:>6} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9}\n",
        k,
        r.positions,
        r.fills,
        r.fees,
        r.funding,
        r.funding_payments,
        or_dash(r.maker_fills, n),
        or_dash(r.taker_fills, n),
        or_dash(r.expected_entry_slippage_bps, bps),
        or_dash(r.realized_entry_slippage_bps, bps),
        r.stop_exits,
        or_dash(r.stop_exit_slippage_bps, bps),
        or_dash(r.stop_exit_slippage_worst_bps, bps),
        format!("{}/{}", or_dash(r.tp_fills_at_limit, n), r.tp_fills),
    )
}

/// The section as text (`variants`: the report holds more than one trader, so the by-trader table is shown).
pub(crate) fn text(x: &Execution, variants: bool) -> String {
    let mut s = String::from(
        "\nexecution costs (base trader; entry slippage expected vs realised; stops: stop-market exits, slippage vs \
         their trigger, + = worse; TP fills at their limit / all; bps; - = not recorded):\n",
    );
    s.push_str(&format!(
        "  {:<16} {:>5} {:>6} {:>10} {:>10} {:>8} {:>6} {:>6} {:>8} {:>8} {:>6} {:>8} {:>8} {:>9}\n",
        "",
        "pos",
        "fills",
        "fees USDT",
        "funding",
        "payments",
        "maker",
        "taker",
        "exp bps",
        "real bps",
        "stops",
        "slip bps",
        "worst",
        "TP@limit"
    ));
    s.push_str(&line("TOTAL", &x.total));
    let mut tables = vec![("symbol", &x.by_symbol), ("exit reason", &x.by_exit_reason)];
    if variants {
        tables.push(("trader (all)", &x.by_variant));
    }
    for (title, m) in tables {
        s.push_str(&format!("  by {title}:\n"));
        for (k, r) in m {
            s.push_str(&line(k, r));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill<'a>(kind: &'a str, sell: bool, price: f64, liq: Option<&'a str>, trigger: Option<f64>) -> FillRow<'a> {
        FillRow { kind, sell, price, liquidity: liq, trigger_price: trigger, described: true }
    }

    /// A long stopped 2 USDT below its 10000 trigger is 2 bps worse; a short stopped at 10001 against 10000 is
    /// 1 bp worse; a sell filled above its trigger counts as negative (better); TPs at / off their limit.
    #[test]
    fn slippage_sign_and_tp_at_limit() {
        let mut s = FillStats::default();
        s.add(&fill("entry", false, 10_000.0, Some("taker"), Some(9_999.0)));
        s.add(&fill("StopLoss", true, 9_998.0, Some("taker"), Some(10_000.0)));
        s.add(&fill("Breakeven", false, 10_001.0, Some("taker"), Some(10_000.0)));
        s.add(&fill("SoftStop", true, 10_000.5, Some("taker"), Some(10_000.0)));
        s.add(&fill("TakeProfit", true, 10_100.0, Some("maker"), Some(10_100.0)));
        s.add(&fill("TP2", true, 10_150.0, Some("maker"), Some(10_200.0)));
        s.add(&fill("Liquidation", true, 9_000.0, None, None));
        s.add(&fill("Funding", false, 10_000.0, None, None));
        assert_eq!((s.fills, s.maker, s.taker, s.funding_payments, s.stop_exits), (7, 2, 4, 1, 3));
        assert!((s.stop_slippage_bps_sum - (2.0 + 1.0 - 0.5)).abs() < 1e-9, "{s:?}");
        assert_eq!(s.stop_slippage_bps_worst, Some(2.0));
        assert_eq!((s.tp_fills, s.tp_priced, s.tp_at_limit), (2, 2, 1));
    }

    /// Fills without the schema-5 columns: maker/taker and TP-at-limit are unknown, not zero.
    #[test]
    fn old_fills_are_not_recorded_rather_than_zero() {
        let mut s = FillStats::default();
        for (k, sell) in [("entry", false), ("TakeProfit", true), ("StopLoss", true)] {
            s.add(&FillRow { kind: k, sell, price: 1.0, liquidity: None, trigger_price: None, described: false });
        }
        let c = PositionCosts { fees: 1.0, fills: s, ..Default::default() };
        let r = build([("X", "StopLoss", "base", &c)].into_iter()).total;
        assert_eq!((r.fills, r.maker_fills, r.taker_fills, r.tp_fills, r.tp_fills_at_limit), (3, None, None, 1, None));
        assert_eq!((r.stop_exits, r.stop_exit_slippage_bps), (0, None));
        assert_eq!(line("X", &r).split_whitespace().collect::<Vec<_>>()[6..8], ["-", "-"]);
    }

    /// A position id beyond the dense vector (a fill added after the maximum was read) moves everything to the
    /// map, losing nothing; a position without fills takes zeros.
    #[test]
    fn ids_beyond_the_dense_range_are_kept() {
        let mut b = ByPosition::Dense(vec![FillStats::default(); 3]);
        b.slot(2).add(&fill("entry", false, 1.0, Some("taker"), Some(1.0)));
        b.slot(7).add(&fill("entry", false, 1.0, Some("maker"), Some(1.0)));
        assert!(matches!(b, ByPosition::Sparse(_)));
        assert_eq!((b.take(2).taker, b.take(7).maker, b.take(1)), (1, 1, FillStats::default()));
        assert_eq!(b.take(2), FillStats::default(), "taken out");
    }
}

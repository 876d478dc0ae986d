//! Real beside paper in `rusto report` (issue 12): how well the paper model predicted the real account.
//!
//! In testnet and live mode the base trader's paper positions run as the shadow of the real ones. Each real
//! position (its fills in `order_reports`, schema 6) is paired with the paper position of the same decision: the
//! base trader's position of the same run and symbol whose `entry_ts_ms` is the real position's `decision_ts_ms`.
//! Per symbol and fill type (the entry, then each exit type under the paper model's names: a real `stop` leg is a
//! `StopLoss`, `breakeven` a `Breakeven`, `tp1` a `TakeProfit`, `tp2` a `TP2`, `softstop`/`shutdown` as named), over
//! the pairs where both sides filled that type:
//! - the quantities filled (base units) on each side;
//! - the real VWAP against the paper VWAP, bps, adverse positive (a real buy dearer or a real sell cheaper than the
//!   paper fill): the paper model's price error;
//! - the slippage of each side against the paper fill's reference price (`fills.trigger_price`: the touch an entry
//!   was decided at, a stop's trigger, a take profit's limit), bps, adverse positive;
//! - fees (paper `fills.fee`) and commissions (real, Binance's `n`, positive = paid), quote.
//!
//! A type only one side filled (the paper position took TP1, the real one was stopped) is counted as `paper_only`
//! or `real_only`; a real position with no paper position of its decision is counted apart. Means are over the
//! pairs; a figure with no pair is `null` in the JSON and `-` in the text.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

/// Why the section could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// The database could not be read.
    #[error("database {0}: {1}")]
    Db(String, String),
}

/// One side's fills of one type in one position.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Side {
    qty: f64,
    quote: f64,
    fees: f64,
    sell: bool,
    /// The paper fill's reference price (quote), when recorded.
    reference: Option<f64>,
}

impl Side {
    fn add(&mut self, sell: bool, qty: f64, price: f64, fee: f64, reference: Option<f64>) {
        self.sell = sell;
        self.qty += qty;
        self.quote += qty * price;
        self.fees += fee;
        self.reference = self.reference.or(reference);
    }

    fn vwap(&self) -> Option<f64> {
        (self.qty > 0.0).then(|| self.quote / self.qty)
    }
}

/// Adverse distance of `price` from `reference`, bps (a buy above or a sell below it is positive).
fn adverse_bps(sell: bool, price: f64, reference: f64) -> f64 {
    (if sell { reference - price } else { price - reference }) / reference * 1e4
}

/// Real against paper for one symbol and fill type (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Compare {
    /// Positions where both sides filled this type.
    pub pairs: u64,
    /// Positions where only the paper side filled it.
    pub paper_only: u64,
    /// Positions where only the real side filled it.
    pub real_only: u64,
    /// Quantity the paper side filled, base units (over the pairs).
    pub paper_qty: f64,
    /// Quantity the real side filled, base units (over the pairs).
    pub real_qty: f64,
    /// Mean real VWAP against the paper VWAP, bps, adverse positive.
    pub real_vs_paper_bps: Option<f64>,
    /// Mean paper slippage against the reference price, bps, adverse positive.
    pub paper_slippage_bps: Option<f64>,
    /// Mean real slippage against the same reference price, bps, adverse positive.
    pub real_slippage_bps: Option<f64>,
    /// Paper fees, quote (over the pairs).
    pub paper_fees: f64,
    /// Real commissions, quote (over the pairs).
    pub real_fees: f64,
    #[serde(skip)]
    sums: [f64; 3],
    #[serde(skip)]
    counts: [u64; 3],
}

impl Compare {
    fn add(&mut self, paper: Option<&Side>, real: Option<&Side>) {
        let (p, r) = match (paper, real) {
            (Some(p), Some(r)) => (p, r),
            (Some(_), None) => return self.paper_only += 1,
            (None, Some(_)) => return self.real_only += 1,
            (None, None) => return,
        };
        self.pairs += 1;
        self.paper_qty += p.qty;
        self.real_qty += r.qty;
        self.paper_fees += p.fees;
        self.real_fees += r.fees;
        let mut mean = |i: usize, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                self.sums[i] += v;
                self.counts[i] += 1;
            }
        };
        let (pv, rv) = (p.vwap(), r.vwap());
        mean(0, pv.zip(rv).map(|(pv, rv)| adverse_bps(r.sell, rv, pv)));
        let reference = p.reference.filter(|x| *x > 0.0);
        mean(1, pv.zip(reference).map(|(pv, x)| adverse_bps(p.sell, pv, x)));
        mean(2, rv.zip(reference).map(|(rv, x)| adverse_bps(r.sell, rv, x)));
    }

    fn finish(&mut self) {
        let m = |s: f64, n: u64| (n > 0).then(|| s / n as f64);
        self.real_vs_paper_bps = m(self.sums[0], self.counts[0]);
        self.paper_slippage_bps = m(self.sums[1], self.counts[1]);
        self.real_slippage_bps = m(self.sums[2], self.counts[2]);
    }
}

/// The section (module doc).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RealVsPaper {
    /// Real positions with at least one fill.
    pub real_positions: u64,
    /// Of them, paired with their paper position.
    pub paired: u64,
    /// Real positions whose decision has no paper position in the database.
    pub without_paper: u64,
    /// By symbol, then by fill type.
    pub by_symbol: BTreeMap<String, BTreeMap<String, Compare>>,
    /// By fill type, every symbol.
    pub total: BTreeMap<String, Compare>,
}

/// The paper model's name of a real leg's fills.
fn fill_type(leg: &str) -> &str {
    match leg {
        "entry" => "entry",
        "stop" => "StopLoss",
        "breakeven" => "Breakeven",
        "tp1" => "TakeProfit",
        "tp2" => "TP2",
        "softstop" => "SoftStop",
        "shutdown" => "Shutdown",
        other => other,
    }
}

/// A real position: (run, symbol, decision time, position number).
type Key = (i64, String, i64, i64);
/// Fills by type.
type Legs = BTreeMap<String, Side>;

/// The real fills of every real position.
fn real_positions(c: &Connection) -> rusqlite::Result<BTreeMap<Key, Legs>> {
    let mut st = c.prepare(
        "SELECT run_id, symbol, decision_ts_ms, position, leg, side, price, quantity, commission
         FROM order_reports WHERE kind IN ('fill', 'partial_fill') ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    let mut out: BTreeMap<Key, Legs> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let key: Key = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (leg, side): (String, String) = (r.get(4)?, r.get(5)?);
        let (price, qty, fee): (f64, f64, f64) = (r.get(6)?, r.get(7)?, r.get(8)?);
        let legs = out.entry(key).or_default();
        legs.entry(fill_type(&leg).to_owned()).or_default().add(side == "sell", qty, price, fee, None);
    }
    Ok(out)
}

/// The order fills of the base trader's paper position of a real position's decision (`None`: there is none).
fn paper_fills(c: &Connection, k: &Key) -> rusqlite::Result<Option<Legs>> {
    let id: Option<i64> = c
        .prepare_cached(
            "SELECT id FROM positions WHERE run_id = ?1 AND symbol = ?2 AND entry_ts_ms = ?3 AND variant = 'base'
             ORDER BY seq LIMIT 1",
        )?
        .query_row(params![k.0, k.1, k.2], |r| r.get(0))
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
    let Some(id) = id else { return Ok(None) };
    let mut st = c.prepare_cached(
        "SELECT kind, side, quantity, price, fee, trigger_price FROM fills WHERE position_id = ?1 AND kind != 'Funding'",
    )?;
    let mut rows = st.query(params![id])?;
    let mut legs = Legs::new();
    while let Some(r) = rows.next()? {
        let (kind, side): (String, String) = (r.get(0)?, r.get(1)?);
        let (qty, price, fee, reference): (f64, f64, f64, Option<f64>) = (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        legs.entry(kind).or_default().add(side == "sell", qty, price, fee, reference);
    }
    Ok(Some(legs))
}

/// Reads the section from `path` (read-only); `None` when the database holds no real order report (paper runs, or
/// a schema before 6).
pub fn load(path: &Path) -> Result<Option<RealVsPaper>, RealError> {
    let e = |x: rusqlite::Error| RealError::Db(path.display().to_string(), x.to_string());
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(e)?;
    let has: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'order_reports'", [], |r| {
            r.get(0)
        })
        .map_err(e)?;
    if has == 0 {
        return Ok(None);
    }
    let real = real_positions(&c).map_err(e)?;
    if real.is_empty() {
        return Ok(None);
    }
    let mut out = RealVsPaper { real_positions: real.len() as u64, ..RealVsPaper::default() };
    for (k, legs) in &real {
        let Some(paper) = paper_fills(&c, k).map_err(e)? else {
            out.without_paper += 1;
            continue;
        };
        out.paired += 1;
        let types: std::collections::BTreeSet<&String> = legs.keys().chain(paper.keys()).collect();
        for t in types {
            let (p, r) = (paper.get(t), legs.get(t));
            out.by_symbol.entry(k.1.clone()).or_default().entry(t.clone()).or_default().add(p, r);
            out.total.entry(t.clone()).or_default().add(p, r);
        }
    }
    out.by_symbol.values_mut().flat_map(|m| m.values_mut()).chain(out.total.values_mut()).for_each(Compare::finish);
    Ok(Some(out))
}

fn bps(v: Option<f64>) -> String {
    // `+ 0.0` turns a -0.0 into 0.0; a value that rounds to zero prints as 0.00, not -0.00.
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.2}", if v.abs() < 0.005 { 0.0 } else { v + 0.0 }))
}

fn line(symbol: &str, t: &str, c: &Compare) -> String {
    format!(
        "  {:<12} {:<11} {:>5} {:>6} {:>6} {:>11.6} {:>11.6} {:>9} {:>9} {:>9} {:>10.4} {:>10.4}\n",
        symbol,
        t,
        c.pairs,
        c.paper_only,
        c.real_only,
        c.paper_qty,
        c.real_qty,
        bps(c.real_vs_paper_bps),
        bps(c.paper_slippage_bps),
        bps(c.real_slippage_bps),
        c.paper_fees,
        c.real_fees
    )
}

/// The section as a table.
pub(crate) fn text(x: &RealVsPaper) -> String {
    let mut s = format!(
        "\nreal vs paper ({} real positions, {} paired with their paper position, {} without one; bps adverse \
         positive, slippage against the paper fill's reference price):\n",
        x.real_positions, x.paired, x.without_paper
    );
    s.push_str(&format!(
        "  {:<12} {:<11} {:>5} {:>6} {:>6} {:>11} {:>11} {:>9} {:>9} {:>9} {:>10} {:>10}\n",
        "symbol",
        "type",
        "pairs",
        "paper",
        "real",
        "qty paper",
        "qty real",
        "real-ppr",
        "slip ppr",
        "slip real",
        "fees paper",
        "fees real"
    ));
    for (sym, m) in &x.by_symbol {
        for (t, c) in m {
            s.push_str(&line(sym, t, c));
        }
    }
    for (t, c) in &x.total {
        s.push_str(&line("TOTAL", t, c));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_buy_dearer_than_the_paper_one_is_adverse() {
        let mut c = Compare::default();
        let mut p = Side::default();
        p.add(false, 1.0, 100.0, 0.05, Some(99.9));
        let mut r = Side::default();
        r.add(false, 0.5, 100.1, 0.02, None);
        r.add(false, 0.5, 100.3, 0.03, None);
        c.add(Some(&p), Some(&r));
        c.add(Some(&p), None);
        c.finish();
        assert_eq!((c.pairs, c.paper_only, c.real_only), (1, 1, 0));
        // Real VWAP 100.2 against 100.0: 20 bps worse; against the 99.9 reference: paper 10.01, real 30.03 bps.
        assert!((c.real_vs_paper_bps.unwrap() - 20.0).abs() < 1e-9, "{c:?}");
        assert!((c.paper_slippage_bps.unwrap() - 0.1 / 99.9 * 1e4).abs() < 1e-9);
        assert!((c.real_slippage_bps.unwrap() - 0.3 / 99.9 * 1e4).abs() < 1e-9);
        assert!((c.real_fees - 0.05).abs() < 1e-12 && (c.paper_fees - 0.05).abs() < 1e-12);
    }

    #[test]
    fn a_difference_that_rounds_to_zero_prints_without_a_sign() {
        assert_eq!(
            (bps(Some(-0.001)), bps(Some(-0.0)), bps(Some(-0.25)), bps(None)),
            ("0.00".into(), "0.00".into(), "-0.25".into(), "-".into())
        );
    }

    #[test]
    fn a_real_sell_cheaper_than_the_paper_one_is_adverse() {
        assert!(adverse_bps(true, 99.0, 100.0) > 0.0);
        assert!(adverse_bps(true, 101.0, 100.0) < 0.0);
        assert!(adverse_bps(false, 101.0, 100.0) > 0.0);
    }
}

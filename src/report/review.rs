//! `rusto report --db PATH`: the improvement loop of spec section 7, from `positions` + `entry_features`.
//!
//! - Expectancy (mean net PnL % of notional per trade), win rate, PnL (USDT) and trade count by symbol, by UTC hour
//!   of entry, by regime and by exit reason (7.1).
//! - For each entry feature, the closed trades are split into `feature_bins` equal-count bins by the feature's
//!   value; the bins with negative expectancy are listed with their value range (7.2: where to retune).
//! - MFE/MAE fit (7.3): the distribution (p25/p50/p75/p90) of MFE and MAE for winners and for losers, set against
//!   the configured stop, TP1, TP2 and SoftStop distances, and suggested distances: each candidate stop/target pair
//!   on a grid is replayed over the same trades using their MFE, MAE and which came first (`time_to_mfe_secs` vs
//!   `time_to_mae_secs`): a trade reaching the target before the stop earns the target, one reaching the stop
//!   first loses the stop, otherwise it keeps its realised PnL; the pair with the best expectancy is suggested,
//!   with that expectancy (an estimate: intrabar order beyond the first touch is unknown).
//!
//! Everything is read in one pass over the closed positions and computed in memory (1 M positions: see PERF.md).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

/// One closed position with what the report needs.
#[derive(Debug, Clone, Default)]
pub struct Trade {
    /// Symbol.
    pub symbol: std::rc::Rc<str>,
    /// UTC hour of entry.
    pub hour: u8,
    /// Regime.
    pub regime: std::rc::Rc<str>,
    /// Exit reason.
    pub exit_reason: std::rc::Rc<str>,
    /// Net PnL, USDT.
    pub pnl: f64,
    /// Net PnL, % of notional.
    pub pnl_pct: f64,
    /// MFE %.
    pub mfe: f64,
    /// MAE %.
    pub mae: f64,
    /// MFE came before MAE.
    pub mfe_first: bool,
    /// Entry features in [`FEATURES`] order.
    pub features: [f64; 6],
    /// Exit time, ms.
    pub exit_ms: i64,
    /// Trader: "base" or an A/B variant's name.
    pub variant: std::rc::Rc<str>,
}

/// The entry features binned by the report.
pub const FEATURES: [&str; 6] =
    ["imbalance_ratio", "cvd_1min_change", "volume_burst_ratio", "bar_range_pct", "zone_distance_pct", "confidence"];

/// Aggregate of a group of trades.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Agg {
    /// Trades.
    pub trades: u64,
    /// Winners (net PnL > 0).
    pub wins: u64,
    /// Σ net PnL, USDT.
    pub pnl: f64,
    /// Σ net PnL %.
    pub pnl_pct_sum: f64,
}

impl Agg {
    fn add(&mut self, t: &Trade) {
        self.trades += 1;
        self.wins += (t.pnl > 0.0) as u64;
        self.pnl += t.pnl;
        self.pnl_pct_sum += t.pnl_pct;
    }
    /// Mean PnL % per trade.
    pub fn expectancy_pct(&self) -> f64 {
        if self.trades == 0 { 0.0 } else { self.pnl_pct_sum / self.trades as f64 }
    }
    /// Win rate, %.
    pub fn win_rate_pct(&self) -> f64 {
        if self.trades == 0 { 0.0 } else { self.wins as f64 * 100.0 / self.trades as f64 }
    }
    fn json(&self) -> Value {
        json!({"trades": self.trades, "win_rate_pct": self.win_rate_pct(), "expectancy_pct": self.expectancy_pct(), "pnl": self.pnl})
    }
}

/// Errors of the report.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The database could not be read.
    #[error("database {0}: {1}")]
    Db(String, String),
}

/// Reads the closed positions (read-only; works while a live run writes).
pub fn load(path: &Path) -> Result<Vec<Trade>, ReviewError> {
    let e = |x: rusqlite::Error| ReviewError::Db(path.display().to_string(), x.to_string());
    if !path.exists() {
        return Err(ReviewError::Db(path.display().to_string(), "no such file".into()));
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(e)?;
    let mut st = c
        .prepare(
            "SELECT p.symbol, (p.entry_ts_ms / 3600000) % 24, p.regime, p.exit_reason, p.pnl, p.pnl_pct, p.mfe_pct,
                    p.mae_pct, p.time_to_mfe_secs <= p.time_to_mae_secs,
                    f.imbalance_ratio, f.cvd_1min_change, f.volume_burst_ratio, f.bar_range_pct,
                    f.zone_distance_pct, f.confidence, COALESCE(p.exit_ts_ms, 0), p.variant
             FROM positions p JOIN entry_features f ON f.position_id = p.id
             WHERE p.status = 'closed' ORDER BY p.exit_ts_ms, p.id",
        )
        .map_err(e)?;
    // The few distinct symbols, regimes and exit reasons are shared, not allocated per row.
    let mut names: Vec<std::rc::Rc<str>> = Vec::new();
    let mut intern = |s: &str| -> std::rc::Rc<str> {
        if let Some(n) = names.iter().find(|n| &***n == s) {
            return n.clone();
        }
        let n: std::rc::Rc<str> = s.into();
        names.push(n.clone());
        n
    };
    let mut rows = st.query([]).map_err(e)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(e)? {
        let text = |i: usize| -> rusqlite::Result<&str> {
            Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).unwrap_or(""),
                _ => "",
            })
        };
        let (sym, reg, exit) = (text(0).map_err(e)?, text(2).map_err(e)?, text(3).map_err(e)?);
        let var = intern(text(16).map_err(e)?);
        out.push(
            (|| -> rusqlite::Result<Trade> {
                Ok(Trade {
                    symbol: intern(sym),
                    hour: r.get::<_, i64>(1)?.clamp(0, 23) as u8,
                    regime: intern(reg),
                    exit_reason: intern(exit),
                    pnl: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                    pnl_pct: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                    mfe: r.get::<_, Option<f64>>(6)?.unwrap_or(0.0),
                    mae: r.get::<_, Option<f64>>(7)?.unwrap_or(0.0),
                    mfe_first: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                    features: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?],
                    exit_ms: r.get(15)?,
                    variant: var.clone(),
                })
            })()
            .map_err(e)?,
        );
    }
    Ok(out)
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let k = ((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// Parameters the MFE/MAE fit compares with.
#[derive(Debug, Clone, Copy)]
pub struct Distances {
    /// Stop, %.
    pub stop_pct: f64,
    /// TP1, %.
    pub tp1_pct: f64,
    /// TP2, %.
    pub tp2_pct: f64,
    /// SoftStop drawdown, %.
    pub soft_stop_pct: f64,
    /// Fees per round trip, % of notional.
    pub fees_pct: f64,
}

/// Builds the report.
pub fn build(trades: &[Trade], d: Distances, feature_bins: usize) -> Value {
    // A/B: everything below describes the base trader; variants are compared with it.
    let all = trades;
    let base: Vec<Trade> = all.iter().filter(|t| &*t.variant == "base").cloned().collect();
    let trades = &base[..];
    let ab = variant_comparison(all);
    let mut total = Agg::default();
    let mut by: [BTreeMap<String, Agg>; 4] = Default::default();
    let mut hours = [Agg::default(); 24];
    for t in trades {
        total.add(t);
        // Few distinct keys: look the group up by reference before allocating a key.
        for (m, k) in [(0, &*t.symbol), (2, &*t.regime), (3, &*t.exit_reason)] {
            match by[m].get_mut(k) {
                Some(a) => a.add(t),
                None => by[m].entry(k.to_string()).or_default().add(t),
            }
        }
        hours[t.hour as usize % 24].add(t);
    }
    for (h, a) in hours.iter().enumerate() {
        if a.trades > 0 {
            by[1].insert(format!("{h:02}"), *a);
        }
    }
    let group = |m: &BTreeMap<String, Agg>| -> Value {
        m.iter().map(|(k, a)| (k.clone(), a.json())).collect::<serde_json::Map<_, _>>().into()
    };
    // Feature bins with negative expectancy.
    let mut negative = Vec::new();
    let bins = feature_bins.max(1);
    let mut vals: Vec<f64> = Vec::with_capacity(trades.len());
    for (fi, name) in FEATURES.iter().enumerate() {
        // Quantile bins: boundaries by selection (O(n)), then one pass; a value equal to a boundary falls in the upper bin.
        vals.clear();
        vals.extend(trades.iter().map(|t| t.features[fi]));
        let n = vals.len();
        if n == 0 {
            continue;
        }
        let mut bounds = Vec::with_capacity(bins);
        for b in 1..bins {
            let k = (b * n / bins).min(n - 1);
            bounds.push(*vals.select_nth_unstable_by(k, f64::total_cmp).1);
        }
        let mut aggs = vec![Agg::default(); bins];
        let mut lo = vec![f64::INFINITY; bins];
        let mut hi = vec![f64::NEG_INFINITY; bins];
        for t in trades {
            let v = t.features[fi];
            let b = bounds.partition_point(|x| *x <= v);
            aggs[b].add(t);
            lo[b] = lo[b].min(v);
            hi[b] = hi[b].max(v);
        }
        for b in 0..bins {
            let a = aggs[b];
            if a.trades > 0 && a.expectancy_pct() < 0.0 {
                negative.push(json!({
                    "feature": name,
                    "bin": b + 1,
                    "from": lo[b],
                    "to": hi[b],
                    "trades": a.trades,
                    "expectancy_pct": a.expectancy_pct(),
                    "win_rate_pct": a.win_rate_pct(),
                }));
            }
        }
    }
    // MFE / MAE distributions.
    let dist = |win: bool| -> Value {
        let mut mfe: Vec<f64> = trades.iter().filter(|t| (t.pnl > 0.0) == win).map(|t| t.mfe).collect();
        let mut mae: Vec<f64> = trades.iter().filter(|t| (t.pnl > 0.0) == win).map(|t| t.mae).collect();
        json!({
            "trades": mfe.len(),
            "mfe_pct": {"p25": pct(&mut mfe, 0.25), "p50": pct(&mut mfe, 0.5), "p75": pct(&mut mfe, 0.75), "p90": pct(&mut mfe, 0.9)},
            "mae_pct": {"p25": pct(&mut mae, 0.25), "p50": pct(&mut mae, 0.5), "p75": pct(&mut mae, 0.75), "p90": pct(&mut mae, 0.9)},
        })
    };
    let reach = |f: &dyn Fn(&Trade) -> bool| -> f64 {
        if trades.is_empty() {
            0.0
        } else {
            trades.iter().filter(|t| f(t)).count() as f64 * 100.0 / trades.len() as f64
        }
    };
    // Grid search of stop/target distances on the same trades.
    let grid = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0];
    let mut best: Option<(f64, f64, f64)> = None;
    // Compact columns for the grid (cache-friendly, branch-light).
    let cols: Vec<(f32, f32, f32, bool)> =
        trades.iter().map(|t| (t.mfe as f32, t.mae as f32, (t.pnl_pct + d.fees_pct) as f32, t.mfe_first)).collect();
    let sim = |stop: f64, target: f64| -> f64 {
        let (s32, t32) = (stop as f32, target as f32);
        let s: f64 = cols
            .iter()
            .map(|&(mfe, mae, base, first)| {
                let hit_t = mfe >= t32;
                let hit_s = mae >= s32;
                (if hit_t && (!hit_s || first) {
                    t32
                } else if hit_s {
                    -s32
                } else {
                    base
                }) as f64
            })
            .sum::<f64>()
            - d.fees_pct * cols.len() as f64;
        if cols.is_empty() { 0.0 } else { s / cols.len() as f64 }
    };
    for &stop in &grid {
        for &target in &grid {
            let e = sim(stop, target);
            if best.is_none_or(|b| e > b.2) {
                best = Some((stop, target, e));
            }
        }
    }
    let current = sim(d.stop_pct, d.tp2_pct);
    json!({
        "closed_positions": total.trades,
        "variants": ab,
        "total": total.json(),
        "by_symbol": group(&by[0]),
        "by_utc_hour": group(&by[1]),
        "by_regime": group(&by[2]),
        "by_exit_reason": group(&by[3]),
        "negative_expectancy_feature_bins": negative,
        "mfe_mae": {
            "winners": dist(true),
            "losers": dist(false),
            "configured": {"stop_pct": d.stop_pct, "tp1_pct": d.tp1_pct, "tp2_pct": d.tp2_pct, "soft_stop_pct": d.soft_stop_pct},
            "share_reaching_pct": {
                "tp1": reach(&|t| t.mfe >= d.tp1_pct),
                "tp2": reach(&|t| t.mfe >= d.tp2_pct),
                "stop": reach(&|t| t.mae >= d.stop_pct),
                "soft_stop": reach(&|t| t.mae >= d.soft_stop_pct),
            },
            "configured_estimate_expectancy_pct": current,
            "suggested": best.map(|(s, t, e)| json!({"stop_pct": s, "target_pct": t, "expectancy_pct": e})),
        },
    })
}

/// Per trader: trades, win rate, expectancy, PnL; for each variant the difference in expectancy (variant − base)
/// with a 95 % confidence interval (Welch: ± 1.96 × √(s²ᵥ/nᵥ + s²ᵦ/nᵦ), normal approximation), and whether the
/// interval excludes zero (a promotion is a decision, not a guess).
pub fn variant_comparison(trades: &[Trade]) -> Value {
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut aggs: BTreeMap<String, Agg> = BTreeMap::new();
    for t in trades {
        groups.entry(t.variant.to_string()).or_default().push(t.pnl_pct);
        aggs.entry(t.variant.to_string()).or_default().add(t);
    }
    let stats = |v: &[f64]| -> (f64, f64, f64) {
        let n = v.len() as f64;
        if n == 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let m = v.iter().sum::<f64>() / n;
        let var = if n > 1.0 { v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        (n, m, var)
    };
    let (nb, mb, vb) = groups.get("base").map_or((0.0, 0.0, 0.0), |v| stats(v));
    let mut out = serde_json::Map::new();
    for (name, a) in &aggs {
        let mut o = a.json();
        if name != "base" {
            let (n, m, v) = stats(&groups[name]);
            let diff = m - mb;
            let se = if n > 0.0 && nb > 0.0 { (v / n + vb / nb).sqrt() } else { f64::NAN };
            let (lo, hi) = (diff - 1.96 * se, diff + 1.96 * se);
            o["vs_base"] = json!({
                "expectancy_diff_pct": diff,
                "ci95_pct": [lo, hi],
                "significant": se.is_finite() && (lo > 0.0 || hi < 0.0),
                "better": se.is_finite() && lo > 0.0,
            });
        }
        out.insert(name.clone(), o);
    }
    Value::Object(out)
}

/// The report as plain tables.
pub fn text(r: &Value) -> String {
    let mut s = format!("closed positions: {}\n", r["closed_positions"]);
    let row = |k: &str, v: &Value| -> String {
        format!(
            "  {:<16} {:>8} {:>8.1} {:>12.4} {:>12.2}\n",
            k,
            v["trades"],
            v["win_rate_pct"].as_f64().unwrap_or(0.0),
            v["expectancy_pct"].as_f64().unwrap_or(0.0),
            v["pnl"].as_f64().unwrap_or(0.0)
        )
    };
    s.push_str(&row("TOTAL", &r["total"]));
    for (title, key) in [
        ("symbol", "by_symbol"),
        ("UTC hour", "by_utc_hour"),
        ("regime", "by_regime"),
        ("exit reason", "by_exit_reason"),
    ] {
        s.push_str(&format!(
            "\nby {title}:\n  {:<16} {:>8} {:>8} {:>12} {:>12}\n",
            "", "trades", "win %", "expect. %", "pnl USDT"
        ));
        if let Some(m) = r[key].as_object() {
            for (k, v) in m {
                s.push_str(&row(k, v));
            }
        }
    }
    s.push_str("\nfeature ranges with negative expectancy:\n");
    match r["negative_expectancy_feature_bins"].as_array() {
        Some(a) if !a.is_empty() => {
            for b in a {
                s.push_str(&format!(
                    "  {:<20} bin {} [{:.4} .. {:.4}] trades {} expectancy {:.4} %\n",
                    b["feature"].as_str().unwrap_or(""),
                    b["bin"],
                    b["from"].as_f64().unwrap_or(0.0),
                    b["to"].as_f64().unwrap_or(0.0),
                    b["trades"],
                    b["expectancy_pct"].as_f64().unwrap_or(0.0)
                ));
            }
        }
        _ => s.push_str("  none\n"),
    }
    if let Some(v) = r["variants"].as_object()
        && v.len() > 1
    {
        s.push_str("\nA/B variants (95 % CI of the expectancy difference vs base):\n");
        for (k, x) in v {
            s.push_str(&row(k, x));
            if let Some(c) = x.get("vs_base") {
                s.push_str(&format!(
                    "    diff {:+.4} %  CI [{:+.4}, {:+.4}]  {}\n",
                    c["expectancy_diff_pct"].as_f64().unwrap_or(0.0),
                    c["ci95_pct"][0].as_f64().unwrap_or(0.0),
                    c["ci95_pct"][1].as_f64().unwrap_or(0.0),
                    if c["better"] == true {
                        "better"
                    } else if c["significant"] == true {
                        "worse"
                    } else {
                        "not significant"
                    }
                ));
            }
        }
    }
    let m = &r["mfe_mae"];
    s.push_str(&format!(
        "\nMFE/MAE (p50) winners: MFE {} MAE {}; losers: MFE {} MAE {}\n",
        m["winners"]["mfe_pct"]["p50"],
        m["winners"]["mae_pct"]["p50"],
        m["losers"]["mfe_pct"]["p50"],
        m["losers"]["mae_pct"]["p50"]
    ));
    s.push_str(&format!("configured {}; share reaching {}\n", m["configured"], m["share_reaching_pct"]));
    s.push_str(&format!(
        "estimated expectancy now {:.4} %, suggested {}\n",
        m["configured_estimate_expectancy_pct"].as_f64().unwrap_or(0.0),
        m["suggested"]
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sym: &str, hour: u8, pnl_pct: f64, mfe: f64, mae: f64, f0: f64) -> Trade {
        Trade {
            symbol: sym.into(),
            hour,
            regime: "range_low".into(),
            exit_reason: if pnl_pct > 0.0 { "TP2".into() } else { "StopLoss".into() },
            pnl: pnl_pct * 10.0,
            pnl_pct,
            mfe,
            mae,
            mfe_first: pnl_pct > 0.0,
            features: [f0, 0.0, 0.0, 0.0, 0.0, 0.5],
            exit_ms: hour as i64 * 3_600_000,
            variant: "base".into(),
        }
    }

    #[test]
    fn groups_bins_and_fit() {
        let trades = vec![
            t("BTCUSDT", 1, 1.2, 1.3, 0.1, 1.0),
            t("BTCUSDT", 1, -0.4, 0.1, 0.4, 2.0),
            t("ETHUSDT", 2, -0.4, 0.05, 0.4, 3.0),
            t("ETHUSDT", 2, 1.2, 1.25, 0.2, 0.5),
        ];
        let d = Distances { stop_pct: 0.4, tp1_pct: 0.6, tp2_pct: 1.2, soft_stop_pct: 0.15, fees_pct: 0.08 };
        let r = build(&trades, d, 2);
        assert_eq!(r["closed_positions"], 4);
        assert_eq!(r["by_symbol"]["BTCUSDT"]["trades"], 2);
        assert!((r["total"]["expectancy_pct"].as_f64().unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(r["by_exit_reason"]["StopLoss"]["win_rate_pct"], 0.0);
        // Imbalance bin 2 (values 2.0, 3.0) holds both losers: negative expectancy.
        let neg = r["negative_expectancy_feature_bins"].as_array().unwrap();
        assert!(
            neg.iter()
                .any(|b| b["feature"] == "imbalance_ratio" && b["bin"] == 2 && b["from"] == 2.0 && b["to"] == 3.0)
        );
        let m = &r["mfe_mae"];
        assert_eq!(m["share_reaching_pct"]["tp2"], 50.0);
        // A tighter stop (0.3) with the 1.2 target keeps the winners (MAE 0.1, 0.2) and cuts the losers.
        let sug = &m["suggested"];
        assert!(sug["expectancy_pct"].as_f64().unwrap() > m["configured_estimate_expectancy_pct"].as_f64().unwrap());
        assert!(!text(&r).is_empty());
        // A/B: a variant whose trades are all winners is better than base with a CI excluding zero.
        let mut ab = trades.clone();
        for k in 0..6 {
            let mut t2 = t("BTCUSDT", 3, 1.0 + k as f64 * 0.01, 1.1, 0.1, 1.0);
            t2.variant = "tight".into();
            ab.push(t2);
        }
        let c = variant_comparison(&ab);
        assert_eq!(c["tight"]["trades"], 6);
        // Four noisy base trades: +0.625 % better on average, but the interval still holds zero.
        assert_eq!(c["tight"]["vs_base"]["significant"], false, "{c}");
        // Thirty steady losers against thirty steady winners: significant and better.
        let mut ab2 = vec![];
        for k in 0..30 {
            ab2.push(t("BTCUSDT", 3, -0.4 - k as f64 * 0.001, 0.1, 0.4, 1.0));
            let mut w = t("BTCUSDT", 3, 1.0 + k as f64 * 0.01, 1.1, 0.1, 1.0);
            w.variant = "tight".into();
            ab2.push(w);
        }
        let c = variant_comparison(&ab2);
        assert_eq!(c["tight"]["vs_base"]["better"], true, "{c}");
        let lo = c["tight"]["vs_base"]["ci95_pct"][0].as_f64().unwrap();
        assert!(lo > 0.0 && lo < c["tight"]["vs_base"]["expectancy_diff_pct"].as_f64().unwrap());
        assert_eq!(build(&ab, d, 2)["closed_positions"], 4, "the base report counts base trades only");
        let dir = std::env::temp_dir().join(format!("rusto-plot-{}", std::process::id()));
        let exits: Vec<i64> = trades.iter().map(|t| t.exit_ms).collect();
        crate::report::plot::write_all(&dir, &trades, &exits, d).unwrap();
        for f in ["equity.svg", "pnl_by_hour.svg", "mfe_mae.svg"] {
            let s = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{f}");
        }
        let heat = std::fs::read_to_string(dir.join("pnl_by_hour.svg")).unwrap();
        assert!(heat.contains("01h") && heat.contains("n=2"));
        assert_eq!(std::fs::read_to_string(dir.join("mfe_mae.svg")).unwrap().matches("<circle").count(), 4);
    }
}

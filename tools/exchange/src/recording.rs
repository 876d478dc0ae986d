//! Recordings → an in-memory event list that the replay loop serves again and again.
//!
//! Files are read with rusto's recording reader (`rusto::recording::reader`: hftbacktest/recorder `<ts> <frame>` lines and
//! cryptofeed files, gzip or plain) and merged by local timestamp. Every frame becomes a [`Template`] (its text
//! with the shiftable numbers marked) plus the facts the exchange needs (book levels, trade price and quantity).
//! The first REST depth snapshot of a symbol gives the book the exchange starts from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusto::recording::{Line, LineReader, classify, symbol_from_file_name};
use rusto::types::parse_decimal;
use serde_json::Value;

use crate::json::{NumKind, Template, field_text};
use crate::market::{Kind, Lvl, Spec};

/// What one recorded frame is.
pub enum Body {
    /// A depth diff (ids as recorded).
    Depth {
        /// Frame.
        tpl: Template,
        /// `U`.
        first: i64,
        /// `u`.
        last: i64,
        /// `pu`.
        prev: i64,
        /// `E`.
        e_ms: i64,
        /// `T`.
        t_ms: i64,
        /// Bids.
        bids: Vec<Lvl>,
        /// Asks.
        asks: Vec<Lvl>,
    },
    /// A raw trade (`trade`) or a recorded `aggTrade`.
    Trade {
        /// Frame.
        tpl: Template,
        /// [`Kind::Trade`] or [`Kind::AggTrade`].
        kind: Kind,
        /// The aggTrade derived from a market `trade`.
        agg: Option<Template>,
        /// Price.
        px: Box<str>,
        /// Quantity.
        qty: Box<str>,
        /// Trade id (`t`, or `a` for an aggTrade).
        id: i64,
        /// `T`.
        t_ms: i64,
        /// `E`.
        e_ms: i64,
        /// `m`.
        maker: bool,
        /// `X` is `MARKET` (or absent).
        market: bool,
    },
    /// markPrice (`markPrice@1s` also feeds the 3 s `markPrice` stream every third second).
    MarkPrice {
        /// Stream suffix.
        suffix: Box<str>,
        /// Frame.
        tpl: Template,
        /// `E`.
        e_ms: i64,
    },
    /// Anything else served as recorded (bookTicker, kline, partial depth, unknown events).
    Simple {
        /// Kind.
        kind: Kind,
        /// Stream suffix.
        suffix: Box<str>,
        /// Frame.
        tpl: Template,
    },
}

/// One recorded frame.
pub struct RecEvent {
    /// Local receive time, ns.
    pub ts_ns: i64,
    /// Symbol index.
    pub sym: u32,
    /// What it is.
    pub body: Body,
}

/// A REST depth snapshot.
#[derive(Clone, Default)]
pub struct Snap {
    /// `lastUpdateId`.
    pub last_update_id: i64,
    /// Bids.
    pub bids: Vec<Lvl>,
    /// Asks.
    pub asks: Vec<Lvl>,
}

/// The exact grid of a set of decimal strings: the gcd of their values at the largest number of decimals.
#[derive(Clone, Copy, Debug, Default)]
pub struct Grid {
    dec: u8,
    gcd: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Grid {
    /// Adds a decimal string.
    pub fn add(&mut self, s: &str) {
        let Ok(d) = parse_decimal(s.as_bytes()) else { return };
        if d.mantissa == 0 {
            return;
        }
        let mut m = d.mantissa.abs();
        if d.dec > self.dec {
            self.gcd = self.gcd.saturating_mul(10i64.saturating_pow((d.dec - self.dec) as u32));
            self.dec = d.dec;
        } else {
            m = m.saturating_mul(10i64.saturating_pow((self.dec - d.dec) as u32));
        }
        self.gcd = gcd(self.gcd, m);
    }

    /// The grid step as a decimal string with the decimals as written (`"0.10"`), and the decimals.
    pub fn step(&self) -> (String, u8) {
        let g = self.gcd.max(1);
        // The largest 1, 2 or 5 × 10^k that divides the gcd (real filters look like that).
        let mut unit = 1i64;
        let mut base = 1i64;
        while base <= g {
            for c in [base, base * 2, base * 5] {
                if c <= g && g % c == 0 {
                    unit = c;
                }
            }
            base = base.saturating_mul(10);
        }
        let scale = rusto::types::Scale { dec: self.dec, unit };
        (scale.to_string(1), self.dec)
    }
}

/// Per-symbol facts of a recording.
pub struct RecSymbol {
    /// Upper-case name.
    pub name: String,
    /// First REST snapshot.
    pub snapshot: Option<Snap>,
    /// Smallest and largest update id seen (`U`, `u`, `pu`, bookTicker `u`, `lastUpdateId`).
    pub ids: Option<(i64, i64)>,
    /// Smallest and largest trade id (`t`, `f`, `l`).
    pub trade_ids: Option<(i64, i64)>,
    /// Smallest and largest recorded aggregate id.
    pub agg_ids: Option<(i64, i64)>,
    /// Market trades (the derived aggTrade ids run over them).
    pub market_trades: i64,
    /// Base depth stream.
    pub base_suffix: String,
    /// Price grid.
    pub price: Grid,
    /// Quantity grid.
    pub qty: Grid,
}

impl RecSymbol {
    /// Exchange-info facts inferred from the strings seen.
    pub fn spec(&self) -> Spec {
        let (tick, pd) = self.price.step();
        let (step, qd) = self.qty.step();
        Spec { tick, step, price_precision: pd, qty_precision: qd }
    }
}

/// A loaded recording.
pub struct Recording {
    /// Symbols.
    pub symbols: Vec<RecSymbol>,
    /// Events in local-time order.
    pub events: Vec<RecEvent>,
    /// Smallest and largest local time.
    pub ts_range: (i64, i64),
    /// Smallest and largest `E`.
    pub e_range: (i64, i64),
    /// Lines that could not be used.
    pub skipped_lines: u64,
    /// Snapshots after the first of their symbol (not used: the exchange's book is its own).
    pub later_snapshots: u64,
}

fn span(r: &mut Option<(i64, i64)>, v: i64) {
    *r = Some(match *r {
        None => (v, v),
        Some((a, b)) => (a.min(v), b.max(v)),
    });
}

fn levels(v: Option<&Value>) -> Option<Vec<Lvl>> {
    v?.as_array()?
        .iter()
        .map(|l| {
            let a = l.as_array()?;
            Lvl::new(a.first()?.as_str()?, a.get(1)?.as_str()?)
        })
        .collect()
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k)?.as_i64()
}

fn default_suffix(e: &str, v: &Value) -> String {
    match e {
        "depthUpdate" => "depth@100ms".into(),
        "markPriceUpdate" => "markPrice@1s".into(),
        "kline" => format!("kline_{}", v.get("k").and_then(|k| k.get("i")).and_then(Value::as_str).unwrap_or("1m")),
        other => other.into(),
    }
}

struct Loader {
    symbols: Vec<RecSymbol>,
    events: Vec<RecEvent>,
    skipped: u64,
    later_snapshots: u64,
    snapshots: Vec<(i64, String, Snap)>,
}

impl Loader {
    fn sym(&mut self, name: &str) -> u32 {
        let up = name.to_ascii_uppercase();
        if let Some(i) = self.symbols.iter().position(|s| s.name == up) {
            return i as u32;
        }
        self.symbols.push(RecSymbol {
            name: up,
            snapshot: None,
            ids: None,
            trade_ids: None,
            agg_ids: None,
            market_trades: 0,
            base_suffix: String::new(),
            price: Grid::default(),
            qty: Grid::default(),
        });
        (self.symbols.len() - 1) as u32
    }

    fn frame(&mut self, ts_ns: i64, json: &str, url_symbol: Option<String>, file_symbol: Option<&str>) -> bool {
        // Combined wrapper?
        let (stream, data) = match (field_text(json, "stream"), field_text(json, "data")) {
            (Some(s), Some(d)) => (serde_json::from_str::<String>(s).ok(), d),
            _ => (None, json),
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else { return false };
        if v.get("lastUpdateId").is_some() && v.get("bids").is_some() {
            let Some(name) = url_symbol.or_else(|| file_symbol.map(str::to_string)) else { return false };
            let (Some(id), Some(bids), Some(asks)) =
                (int(&v, "lastUpdateId"), levels(v.get("bids")), levels(v.get("asks")))
            else {
                return false;
            };
            self.snapshots.push((ts_ns, name.to_ascii_uppercase(), Snap { last_update_id: id, bids, asks }));
            return true;
        }
        let Some(e) = v.get("e").and_then(Value::as_str) else { return false };
        let Some(s) = v.get("s").and_then(Value::as_str) else { return false };
        let sym = self.sym(s);
        let suffix = match &stream {
            Some(st) => match st.split_once('@') {
                Some((_, suf)) => suf.to_string(),
                None => return false,
            },
            None => default_suffix(e, &v),
        };
        let Some(tpl) = Template::build(data, e) else { return false };
        let e_ms = int(&v, "E").unwrap_or(0);
        let t_ms = int(&v, "T").unwrap_or(e_ms);
        let rs = &mut self.symbols[sym as usize];
        let body = match e {
            "depthUpdate" if suffix.starts_with("depth@") || suffix == "depth" => {
                let (Some(first), Some(last), Some(prev), Some(bids), Some(asks)) =
                    (int(&v, "U"), int(&v, "u"), int(&v, "pu"), levels(v.get("b")), levels(v.get("a")))
                else {
                    return false;
                };
                for x in [first, last, prev] {
                    span(&mut rs.ids, x);
                }
                for l in bids.iter().chain(&asks) {
                    rs.price.add(&l.px);
                    rs.qty.add(&l.qty);
                }
                if rs.base_suffix.is_empty() {
                    rs.base_suffix = suffix.clone();
                } else if rs.base_suffix != suffix {
                    // A second diff stream of the same symbol: served as recorded, not applied to the book.
                    return self.push(ts_ns, sym, Body::Simple { kind: Kind::Depth, suffix: suffix.into(), tpl });
                }
                Body::Depth { tpl, first, last, prev, e_ms, t_ms, bids, asks }
            }
            "trade" | "aggTrade" => {
                let (Some(px), Some(qty)) = (v.get("p").and_then(Value::as_str), v.get("q").and_then(Value::as_str))
                else {
                    return false;
                };
                rs.price.add(px);
                rs.qty.add(qty);
                let kind = if e == "trade" { Kind::Trade } else { Kind::AggTrade };
                let id = if e == "trade" { int(&v, "t") } else { int(&v, "a") };
                let Some(id) = id else { return false };
                if e == "trade" {
                    span(&mut rs.trade_ids, id);
                } else {
                    span(&mut rs.agg_ids, id);
                    for k in ["f", "l"] {
                        if let Some(x) = int(&v, k) {
                            span(&mut rs.trade_ids, x);
                        }
                    }
                }
                let market = v.get("X").and_then(Value::as_str).is_none_or(|x| x == "MARKET");
                let maker = v.get("m").and_then(Value::as_bool).unwrap_or(false);
                Body::Trade { tpl, kind, agg: None, px: px.into(), qty: qty.into(), id, t_ms, e_ms, maker, market }
            }
            "bookTicker" => {
                if let Some(u) = int(&v, "u") {
                    span(&mut rs.ids, u);
                }
                for k in ["b", "a"] {
                    if let Some(p) = v.get(k).and_then(Value::as_str) {
                        rs.price.add(p);
                    }
                }
                for k in ["B", "A"] {
                    if let Some(q) = v.get(k).and_then(Value::as_str) {
                        rs.qty.add(q);
                    }
                }
                Body::Simple { kind: Kind::BookTicker, suffix: suffix.into(), tpl }
            }
            "markPriceUpdate" => Body::MarkPrice { suffix: suffix.into(), tpl, e_ms },
            _ => Body::Simple { kind: Kind::of_suffix(&suffix), suffix: suffix.into(), tpl },
        };
        self.push(ts_ns, sym, body)
    }

    fn push(&mut self, ts_ns: i64, sym: u32, body: Body) -> bool {
        self.events.push(RecEvent { ts_ns, sym, body });
        true
    }
}

#[allow(clippy::too_many_arguments)]
fn derived_agg(name: &str, px: &str, qty: &str, id: i64, agg_id: i64, e_ms: i64, t_ms: i64, maker: bool) -> Template {
    let mut t = Template::default();
    t.lit(r#"{"e":"aggTrade","E":"#);
    t.num(NumKind::Time, e_ms);
    t.lit(r#","a":"#);
    t.num(NumKind::AggId, agg_id);
    t.lit(&format!(r#","s":"{name}","p":"{px}","q":"{qty}","f":"#));
    t.num(NumKind::TradeId, id);
    t.lit(r#","l":"#);
    t.num(NumKind::TradeId, id);
    t.lit(r#","T":"#);
    t.num(NumKind::Time, t_ms);
    t.lit(&format!(r#","m":{maker}}}"#));
    t
}

/// Loads and merges recordings.
pub fn load(paths: &[PathBuf]) -> Result<Recording> {
    let mut l =
        Loader { symbols: Vec::new(), events: Vec::new(), skipped: 0, later_snapshots: 0, snapshots: Vec::new() };
    for p in paths {
        load_file(&mut l, p).with_context(|| format!("reading {}", p.display()))?;
    }
    // Merge by local time; ties keep file order.
    l.events.sort_by_key(|e| e.ts_ns);
    l.snapshots.sort_by_key(|s| s.0);
    for (_, name, snap) in std::mem::take(&mut l.snapshots) {
        let i = l.sym(&name) as usize;
        let s = &mut l.symbols[i];
        if s.snapshot.is_some() {
            l.later_snapshots += 1;
            continue;
        }
        span(&mut s.ids, snap.last_update_id);
        for x in snap.bids.iter().chain(&snap.asks) {
            s.price.add(&x.px);
            s.qty.add(&x.qty);
        }
        s.snapshot = Some(snap);
    }
    // Derived aggTrades: one per market trade, ids consecutive from the symbol's first trade id.
    let mut next_agg: Vec<Option<i64>> = vec![None; l.symbols.len()];
    for ev in &mut l.events {
        if let Body::Trade { kind: Kind::Trade, agg, px, qty, id, t_ms, e_ms, maker, market: true, .. } = &mut ev.body {
            let s = &mut l.symbols[ev.sym as usize];
            let a = next_agg[ev.sym as usize].get_or_insert(*id);
            *agg = Some(derived_agg(&s.name, px, qty, *id, *a, *e_ms, *t_ms, *maker));
            *a += 1;
            s.market_trades += 1;
        }
    }
    if l.events.is_empty() {
        bail!("no usable frame in {paths:?}");
    }
    let ts_range = (l.events.first().map_or(0, |e| e.ts_ns), l.events.last().map_or(0, |e| e.ts_ns));
    let mut e_range = (i64::MAX, i64::MIN);
    for ev in &l.events {
        let e = match &ev.body {
            Body::Depth { e_ms, .. } | Body::Trade { e_ms, .. } | Body::MarkPrice { e_ms, .. } => Some(*e_ms),
            Body::Simple { tpl, .. } => tpl.first(NumKind::Time),
        };
        if let Some(e) = e.filter(|e| *e > 0) {
            e_range = (e_range.0.min(e), e_range.1.max(e));
        }
    }
    if e_range.0 > e_range.1 {
        e_range = (ts_range.0 / 1_000_000, ts_range.1 / 1_000_000);
    }
    for s in &mut l.symbols {
        if s.base_suffix.is_empty() {
            s.base_suffix = "depth@0ms".into();
        }
    }
    Ok(Recording {
        symbols: l.symbols,
        events: l.events,
        ts_range,
        e_range,
        skipped_lines: l.skipped,
        later_snapshots: l.later_snapshots,
    })
}

fn load_file(l: &mut Loader, path: &Path) -> Result<()> {
    let mut r = LineReader::open(path, 64 << 20)?;
    let file_symbol = symbol_from_file_name(path).map(|s| s.as_str().to_string());
    let mut good = 0u64;
    loop {
        let res = r.next_line(|line| match classify(line) {
            Line::Frame { ts_ns, json, url_symbol } => Some(match std::str::from_utf8(json) {
                Ok(j) => l.frame(ts_ns, j, url_symbol.map(|s| s.as_str().to_string()), file_symbol.as_deref()),
                Err(_) => false,
            }),
            Line::Skip => None,
            Line::Bad => Some(false),
        })?;
        match res {
            None => break,
            Some(Some(true)) => good += 1,
            Some(Some(false)) => l.skipped += 1,
            Some(None) => {}
        }
    }
    if good == 0 {
        bail!("no usable frame");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids() {
        let mut g = Grid::default();
        for s in ["28145.10", "28145.20", "5000.00", "28018.90"] {
            g.add(s);
        }
        assert_eq!(g.step(), ("0.10".to_string(), 2));
        let mut q = Grid::default();
        for s in ["0.002", "3.867", "0.000"] {
            q.add(s);
        }
        assert_eq!(q.step(), ("0.001".to_string(), 3));
    }
}

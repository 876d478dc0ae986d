//! The exchange's own market state: one book per symbol (kept by applying exactly the diffs it streams), 24 h
//! ticker figures, the coarser depth streams aggregated from the base diff stream, and the frames to publish.
//!
//! Books keep every price and quantity as the exact string it arrived as, keyed by an exact integer price, so a
//! REST snapshot shows the very strings the diffs carried and its `lastUpdateId` is the `u` of the last diff
//! applied: a client syncing with `U <= lastUpdateId <= u` and `pu == previous u` works exactly as on Binance.

use std::collections::BTreeMap;
use std::fmt::Write;

use rusto::types::parse_decimal;

/// Stream kinds (what the counters and the routes talk about).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `<s>@trade`.
    Trade,
    /// `<s>@aggTrade`.
    AggTrade,
    /// `<s>@depth…` diffs.
    Depth,
    /// `<s>@bookTicker`.
    BookTicker,
    /// `<s>@markPrice…`.
    MarkPrice,
    /// `<s>@kline_…`.
    Kline,
    /// Anything else a recording carried (served on /market).
    Other,
    /// User data stream events (`ORDER_TRADE_UPDATE`, `ACCOUNT_UPDATE`, …), served on /private only.
    UserData,
}

impl Kind {
    /// Number of kinds.
    pub const N: usize = 8;
    /// All kinds, in counter order.
    pub const ALL: [Kind; Kind::N] = [
        Kind::Trade,
        Kind::AggTrade,
        Kind::Depth,
        Kind::BookTicker,
        Kind::MarkPrice,
        Kind::Kline,
        Kind::Other,
        Kind::UserData,
    ];

    /// Counter index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name in the stats JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Trade => "trade",
            Kind::AggTrade => "aggTrade",
            Kind::Depth => "depth",
            Kind::BookTicker => "bookTicker",
            Kind::MarkPrice => "markPrice",
            Kind::Kline => "kline",
            Kind::Other => "other",
            Kind::UserData => "userData",
        }
    }

    /// True for the kinds Binance serves on `/public` (high-frequency book data); the rest are on `/market`.
    pub fn is_public(self) -> bool {
        matches!(self, Kind::Depth | Kind::BookTicker)
    }

    /// The kind of a stream name's suffix (the part after `symbol@`).
    pub fn of_suffix(suffix: &str) -> Kind {
        if suffix.starts_with("depth") {
            Kind::Depth
        } else if suffix == "bookTicker" {
            Kind::BookTicker
        } else if suffix == "aggTrade" {
            Kind::AggTrade
        } else if suffix == "trade" {
            Kind::Trade
        } else if suffix.starts_with("markPrice") {
            Kind::MarkPrice
        } else if suffix.starts_with("kline") {
            Kind::Kline
        } else {
            Kind::Other
        }
    }
}

/// One frame to publish: its stream name and raw payload (unwrapped).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Kind.
    pub kind: Kind,
    /// Symbol index.
    pub sym: u32,
    /// Full stream name (`btcusdt@depth@0ms`).
    pub stream: String,
    /// Raw payload JSON.
    pub text: String,
}

/// An exact integer key for a price string (`mantissa × 10^(18 − decimals)`).
pub fn price_key(px: &str) -> Option<i128> {
    let d = parse_decimal(px.as_bytes()).ok()?;
    Some(d.mantissa as i128 * 10i128.pow(18 - d.dec as u32))
}

/// True when a quantity string is zero (`"0"`, `"0.000"`).
pub fn is_zero(q: &str) -> bool {
    parse_decimal(q.as_bytes()).map(|d| d.mantissa == 0).unwrap_or(false)
}

/// One price level: exact key, price and quantity strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lvl {
    /// [`price_key`] of `px`.
    pub key: i128,
    /// Price as sent.
    pub px: Box<str>,
    /// Quantity as sent.
    pub qty: Box<str>,
}

impl Lvl {
    /// A level from strings; `None` when the price is not a decimal.
    pub fn new(px: &str, qty: &str) -> Option<Lvl> {
        Some(Lvl { key: price_key(px)?, px: px.into(), qty: qty.into() })
    }
}

type Side = BTreeMap<i128, (Box<str>, Box<str>)>;

/// A best level: (price, quantity) strings.
pub type Top<'a> = Option<(&'a str, &'a str)>;

fn apply(side: &mut Side, levels: &[Lvl]) {
    for l in levels {
        if is_zero(&l.qty) {
            side.remove(&l.key);
        } else {
            side.insert(l.key, (l.px.clone(), l.qty.clone()));
        }
    }
}

/// Exchange-info facts of one symbol.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `tickSize`.
    pub tick: String,
    /// `stepSize`.
    pub step: String,
    /// `pricePrecision`.
    pub price_precision: u8,
    /// `quantityPrecision`.
    pub qty_precision: u8,
}

/// 24 h ticker figures, computed from the trades served.
#[derive(Clone, Debug, Default)]
pub struct Ticker {
    /// Last trade price as sent.
    pub last_price: Option<String>,
    /// Last trade quantity.
    pub last_qty: Option<String>,
    /// First trade price.
    pub open_price: Option<String>,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Base volume.
    pub volume: f64,
    /// Quote volume.
    pub quote_volume: f64,
    /// Trades.
    pub count: u64,
    /// First trade id.
    pub first_id: i64,
    /// Last trade id.
    pub last_id: i64,
    /// First trade time.
    pub open_time: i64,
    /// Last trade time.
    pub close_time: i64,
}

struct Pending {
    window: i64,
    first: i64,
    last: i64,
    prev: i64,
    e_ms: i64,
    t_ms: i64,
    bids: Side,
    asks: Side,
}

struct Agg {
    suffix: &'static str,
    ms: i64,
    pending: Option<Pending>,
    skip: u64,
}

/// Per-symbol state.
pub struct SymState {
    /// Upper-case name.
    pub name: String,
    /// Lower-case name (stream names).
    pub lower: String,
    bids: Side,
    asks: Side,
    /// `u` of the last applied diff (or the initial snapshot's `lastUpdateId`).
    pub last_u: i64,
    /// `T` of the last applied diff.
    pub last_t_ms: i64,
    /// Base diff stream suffix (`depth@0ms`).
    pub base_suffix: String,
    aggs: Vec<Agg>,
    skip_base: u64,
    /// Ticker figures.
    pub ticker: Ticker,
    /// Exchange-info facts.
    pub spec: Spec,
}

/// Depth diff input (ids and times already shifted).
pub struct DepthIn<'a> {
    /// `U`.
    pub first: i64,
    /// `u`.
    pub last: i64,
    /// `pu`.
    pub prev: i64,
    /// `E`.
    pub e_ms: i64,
    /// `T`.
    pub t_ms: i64,
    /// Bid levels.
    pub bids: &'a [Lvl],
    /// Ask levels.
    pub asks: &'a [Lvl],
    /// The rendered frame, or `None` to render it from the fields.
    pub text: Option<String>,
}

/// Trade input.
pub struct TradeIn<'a> {
    /// The `trade` (or recorded `aggTrade`) frame.
    pub text: String,
    /// Its kind.
    pub kind: Kind,
    /// A derived `aggTrade` frame, if any.
    pub agg_text: Option<String>,
    /// Price.
    pub px: &'a str,
    /// Quantity.
    pub qty: &'a str,
    /// Trade id (shifted).
    pub id: i64,
    /// Trade time (shifted).
    pub t_ms: i64,
}

/// Counters kept by the market (read by the stats writer under the lock).
#[derive(Clone, Copy, Debug, Default)]
pub struct MarketCounters {
    /// Events produced, by [`Kind::index`] (whether or not anyone was subscribed).
    pub published: [u64; Kind::N],
    /// Depth diffs withheld by the `--skip-depth` fault (base and aggregated streams).
    pub depth_skipped: u64,
    /// Loops of the recording started.
    pub loops: u64,
    /// Ticks the order engine never saw because [`MAX_TICKS`] were already pending.
    pub ticks_dropped: u64,
}

/// The price source of a [`Tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickKind {
    /// A served trade (`lastPrice`, what `workingType=CONTRACT_PRICE` triggers on).
    Trade,
    /// A served mark price (`workingType=MARK_PRICE`).
    Mark,
}

/// A price the order engine must see: a served trade or mark price (drained by the feed after publishing).
#[derive(Clone, Debug)]
pub struct Tick {
    /// Symbol index.
    pub sym: usize,
    /// Trade or mark price.
    pub kind: TickKind,
    /// Price string as served.
    pub px: Box<str>,
    /// Trade quantity (`"0"` for a mark price).
    pub qty: Box<str>,
}

/// Ticks kept between two drains; more are dropped and counted in [`MarketCounters::ticks_dropped`].
pub const MAX_TICKS: usize = 4096;

/// All symbols.
pub struct Market {
    /// Symbols, by index.
    pub syms: Vec<SymState>,
    /// Counters.
    pub counters: MarketCounters,
    /// Trades and mark prices served since the order engine last looked.
    pub ticks: Vec<Tick>,
}

fn depth_ms(suffix: &str) -> i64 {
    match suffix {
        "depth@0ms" => 0,
        "depth@100ms" => 100,
        "depth" | "depth@250ms" => 250,
        "depth@500ms" => 500,
        _ => 0,
    }
}

const AGG_SPEEDS: [(&str, i64); 3] = [("depth@100ms", 100), ("depth", 250), ("depth@500ms", 500)];

/// Writes a depth diff frame in Binance's field order.
#[allow(clippy::too_many_arguments)]
pub fn render_depth<'a>(
    name: &str,
    e_ms: i64,
    t_ms: i64,
    first: i64,
    last: i64,
    prev: i64,
    bids: impl Iterator<Item = (&'a str, &'a str)>,
    asks: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut s = String::with_capacity(256);
    let _ =
        write!(s, r#"{{"e":"depthUpdate","E":{e_ms},"T":{t_ms},"s":"{name}","U":{first},"u":{last},"pu":{prev},"b":["#);
    levels_json(&mut s, bids);
    s.push_str(r#"],"a":["#);
    levels_json(&mut s, asks);
    s.push_str("]}");
    s
}

fn levels_json<'a>(s: &mut String, it: impl Iterator<Item = (&'a str, &'a str)>) {
    for (i, (p, q)) in it.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, r#"["{p}","{q}"]"#);
    }
}

impl Market {
    /// A market with the given symbols (upper-case names), base depth stream suffixes and specs.
    pub fn new(symbols: Vec<(String, String, Spec)>) -> Market {
        let syms = symbols
            .into_iter()
            .map(|(name, base_suffix, spec)| {
                let base_ms = depth_ms(&base_suffix);
                let aggs = AGG_SPEEDS
                    .iter()
                    .filter(|(_, ms)| *ms > base_ms)
                    .map(|&(suffix, ms)| Agg { suffix, ms, pending: None, skip: 0 })
                    .collect();
                SymState {
                    lower: name.to_ascii_lowercase(),
                    name,
                    bids: Side::new(),
                    asks: Side::new(),
                    last_u: 0,
                    last_t_ms: 0,
                    base_suffix,
                    aggs,
                    skip_base: 0,
                    ticker: Ticker::default(),
                    spec,
                }
            })
            .collect();
        Market { syms, counters: MarketCounters::default(), ticks: Vec::with_capacity(256) }
    }

    /// Index of a symbol by upper-case name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.syms.iter().position(|s| s.name == name)
    }

    /// Replaces a symbol's book (start of the run).
    pub fn init_book(&mut self, sym: usize, bids: &[Lvl], asks: &[Lvl], last_u: i64) {
        let s = &mut self.syms[sym];
        s.bids.clear();
        s.asks.clear();
        apply(&mut s.bids, bids);
        apply(&mut s.asks, asks);
        s.last_u = last_u;
    }

    /// The levels that turn the current book into `bids`/`asks` (zeros for levels that go, the target quantity
    /// for levels that are new or change), then `over` applied on top (a diff's own levels win).
    pub fn reset_levels(&self, sym: usize, target: (&[Lvl], &[Lvl]), over: (&[Lvl], &[Lvl])) -> (Vec<Lvl>, Vec<Lvl>) {
        let s = &self.syms[sym];
        let one = |cur: &Side, tgt: &[Lvl], over: &[Lvl]| -> Vec<Lvl> {
            let mut m: BTreeMap<i128, Lvl> = BTreeMap::new();
            let want: BTreeMap<i128, &Lvl> = tgt.iter().filter(|l| !is_zero(&l.qty)).map(|l| (l.key, l)).collect();
            for (k, (px, _)) in cur {
                if !want.contains_key(k) {
                    m.insert(*k, Lvl { key: *k, px: px.clone(), qty: "0".into() });
                }
            }
            for (k, l) in &want {
                if cur.get(k).map(|(_, q)| q != &l.qty).unwrap_or(true) {
                    m.insert(*k, (*l).clone());
                }
            }
            for l in over {
                m.insert(l.key, l.clone());
            }
            m.into_values().collect()
        };
        (one(&s.bids, target.0, over.0), one(&s.asks, target.1, over.1))
    }

    /// Applies a diff to the symbol's book and queues its frames (base stream, aggregated streams when a window
    /// closes).
    pub fn depth(&mut self, sym: usize, d: DepthIn, out: &mut Vec<Frame>) {
        // Close aggregation windows this diff does not belong to.
        self.flush_where(sym, |window, ms| d.e_ms.div_euclid(ms) != window, out);
        let s = &mut self.syms[sym];
        apply(&mut s.bids, d.bids);
        apply(&mut s.asks, d.asks);
        s.last_u = d.last;
        s.last_t_ms = d.t_ms;
        self.counters.published[Kind::Depth.index()] += 1;
        if s.skip_base > 0 {
            s.skip_base -= 1;
            self.counters.depth_skipped += 1;
        } else {
            let text = d.text.unwrap_or_else(|| {
                render_depth(
                    &s.name,
                    d.e_ms,
                    d.t_ms,
                    d.first,
                    d.last,
                    d.prev,
                    d.bids.iter().map(|l| (&*l.px, &*l.qty)),
                    d.asks.iter().map(|l| (&*l.px, &*l.qty)),
                )
            });
            out.push(Frame {
                kind: Kind::Depth,
                sym: sym as u32,
                stream: format!("{}@{}", s.lower, s.base_suffix),
                text,
            });
        }
        for a in &mut s.aggs {
            let window = d.e_ms.div_euclid(a.ms);
            let p = a.pending.get_or_insert_with(|| Pending {
                window,
                first: d.first,
                last: d.last,
                prev: d.prev,
                e_ms: d.e_ms,
                t_ms: d.t_ms,
                bids: Side::new(),
                asks: Side::new(),
            });
            p.last = d.last;
            p.e_ms = d.e_ms;
            p.t_ms = d.t_ms;
            for l in d.bids {
                p.bids.insert(l.key, (l.px.clone(), l.qty.clone()));
            }
            for l in d.asks {
                p.asks.insert(l.key, (l.px.clone(), l.qty.clone()));
            }
        }
    }

    /// Flushes the pending aggregated events of `sym` for which `due(pending window, window ms)` holds.
    fn flush_where(&mut self, sym: usize, due: impl Fn(i64, i64) -> bool, out: &mut Vec<Frame>) {
        let s = &mut self.syms[sym];
        for a in &mut s.aggs {
            if !a.pending.as_ref().is_some_and(|p| due(p.window, a.ms)) {
                continue;
            }
            let Some(p) = a.pending.take() else { continue };
            if a.skip > 0 {
                a.skip -= 1;
                self.counters.depth_skipped += 1;
                continue;
            }
            // Binance stamps an aggregated event at the end of its window.
            let e_ms = (p.window + 1) * a.ms - 1;
            let text = render_depth(
                &s.name,
                e_ms.max(p.e_ms),
                p.t_ms,
                p.first,
                p.last,
                p.prev,
                p.bids.values().map(|(a, b)| (&**a, &**b)),
                p.asks.values().map(|(a, b)| (&**a, &**b)),
            );
            out.push(Frame { kind: Kind::Depth, sym: sym as u32, stream: format!("{}@{}", s.lower, a.suffix), text });
        }
    }

    /// Closes every aggregation window that ended before exchange time `now_ms`.
    pub fn flush_due(&mut self, now_ms: i64, out: &mut Vec<Frame>) {
        for sym in 0..self.syms.len() {
            self.flush_where(sym, |window, ms| (window + 1) * ms <= now_ms, out);
        }
    }

    /// Queues a trade (and its derived aggTrade) and updates the ticker.
    pub fn trade(&mut self, sym: usize, t: TradeIn, out: &mut Vec<Frame>) {
        let s = &mut self.syms[sym];
        let tk = &mut s.ticker;
        let p: f64 = t.px.parse().unwrap_or(0.0);
        let q: f64 = t.qty.parse().unwrap_or(0.0);
        if tk.count == 0 {
            tk.open_price = Some(t.px.to_string());
            tk.high = p;
            tk.low = p;
            tk.first_id = t.id;
            tk.open_time = t.t_ms;
        }
        tk.count += 1;
        tk.high = tk.high.max(p);
        tk.low = tk.low.min(p);
        tk.volume += q;
        tk.quote_volume += p * q;
        tk.last_price = Some(t.px.to_string());
        tk.last_qty = Some(t.qty.to_string());
        tk.last_id = t.id;
        tk.close_time = t.t_ms;
        let tick = Tick { sym, kind: TickKind::Trade, px: t.px.into(), qty: t.qty.into() };
        self.push_tick(tick);
        let s = &self.syms[sym];
        let suffix = if t.kind == Kind::AggTrade { "aggTrade" } else { "trade" };
        self.counters.published[t.kind.index()] += 1;
        out.push(Frame { kind: t.kind, sym: sym as u32, stream: format!("{}@{}", s.lower, suffix), text: t.text });
        if let Some(a) = t.agg_text {
            self.counters.published[Kind::AggTrade.index()] += 1;
            out.push(Frame { kind: Kind::AggTrade, sym: sym as u32, stream: format!("{}@aggTrade", s.lower), text: a });
        }
    }

    /// Queues a frame that does not touch the book (bookTicker, markPrice, kline, …).
    pub fn simple(&mut self, sym: usize, kind: Kind, suffix: &str, text: String, out: &mut Vec<Frame>) {
        if kind == Kind::MarkPrice
            && let Some(px) = json_str_field(&text, "p")
        {
            let tick = Tick { sym, kind: TickKind::Mark, px: px.into(), qty: "0".into() };
            self.push_tick(tick);
        }
        let s = &self.syms[sym];
        self.counters.published[kind.index()] += 1;
        out.push(Frame { kind, sym: sym as u32, stream: format!("{}@{}", s.lower, suffix), text });
    }

    fn push_tick(&mut self, t: Tick) {
        if self.ticks.len() < MAX_TICKS {
            self.ticks.push(t);
        } else {
            self.counters.ticks_dropped += 1;
        }
    }

    /// The levels a taker order walks, best first: asks for a buy, bids for a sell, as (price, quantity) strings.
    pub fn taker_levels(&self, sym: usize, buy: bool) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        let s = &self.syms[sym];
        if buy {
            Box::new(s.asks.values().map(|(a, b)| (&**a, &**b)))
        } else {
            Box::new(s.bids.values().rev().map(|(a, b)| (&**a, &**b)))
        }
    }

    /// Withholds the next `n` diffs of a symbol on every depth stream (a `pu` gap for its subscribers).
    pub fn skip_depth(&mut self, sym: usize, n: u64) {
        let s = &mut self.syms[sym];
        s.skip_base += n;
        for a in &mut s.aggs {
            a.skip += n;
        }
    }

    /// The REST `/fapi/v1/depth` body of a symbol: the top `limit` levels of the exchange's own book.
    pub fn snapshot_json(&self, sym: usize, limit: usize, now_ms: i64) -> String {
        let s = &self.syms[sym];
        let mut out = String::with_capacity(64 + limit * 2 * 24);
        let _ = write!(out, r#"{{"lastUpdateId":{},"E":{},"T":{},"bids":["#, s.last_u, now_ms, s.last_t_ms);
        levels_json(&mut out, s.bids.values().rev().take(limit).map(|(a, b)| (&**a, &**b)));
        out.push_str(r#"],"asks":["#);
        levels_json(&mut out, s.asks.values().take(limit).map(|(a, b)| (&**a, &**b)));
        out.push_str("]}");
        out
    }

    /// Best bid and ask (price, quantity) of a symbol.
    pub fn top(&self, sym: usize) -> (Top<'_>, Top<'_>) {
        let s = &self.syms[sym];
        (s.bids.values().next_back().map(|(a, b)| (&**a, &**b)), s.asks.values().next().map(|(a, b)| (&**a, &**b)))
    }

    /// Levels per side of a symbol's book.
    pub fn book_len(&self, sym: usize) -> (usize, usize) {
        (self.syms[sym].bids.len(), self.syms[sym].asks.len())
    }

    /// True when the symbol's book is crossed (never expected).
    pub fn crossed(&self, sym: usize) -> bool {
        let s = &self.syms[sym];
        match (s.bids.keys().next_back(), s.asks.keys().next()) {
            (Some(b), Some(a)) => b >= a,
            _ => false,
        }
    }
}

/// The string value of `"name":"…"` in a flat JSON object (the first occurrence).
pub fn json_str_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!(r#""{name}":""#);
    let start = text.find(&pat)? + pat.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_fields() {
        // Real frame: data/sample/btcusdt_20230404.dat.gz, first markPrice@1s (hftbacktest recording, MIT, (C) 2022 nkaz001).
        let t = r#"{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28147.27373413","P":"28142.15563565","i":"28159.75642857","r":"0.00002754","T":1680652800000}"#;
        assert_eq!(json_str_field(t, "p"), Some("28147.27373413"));
        assert_eq!(json_str_field(t, "i"), Some("28159.75642857"));
        assert_eq!(json_str_field(t, "x"), None);
    }

    fn spec() -> Spec {
        Spec { tick: "0.10".into(), step: "0.001".into(), price_precision: 2, qty_precision: 3 }
    }

    fn l(p: &str, q: &str) -> Lvl {
        Lvl::new(p, q).unwrap()
    }

    #[test]
    fn book_snapshot_and_reset() {
        let mut m = Market::new(vec![("BTCUSDT".into(), "depth@0ms".into(), spec())]);
        m.init_book(0, &[l("100.00", "1.000"), l("99.90", "2.000")], &[l("100.10", "3.000")], 50);
        let mut out = Vec::new();
        m.depth(
            0,
            DepthIn {
                first: 51,
                last: 60,
                prev: 50,
                e_ms: 1000,
                t_ms: 999,
                bids: &[l("99.90", "0.000"), l("99.80", "5.000")],
                asks: &[],
                text: None,
            },
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, "btcusdt@depth@0ms");
        assert_eq!(
            out[0].text,
            r#"{"e":"depthUpdate","E":1000,"T":999,"s":"BTCUSDT","U":51,"u":60,"pu":50,"b":[["99.90","0.000"],["99.80","5.000"]],"a":[]}"#
        );
        assert_eq!(
            m.snapshot_json(0, 10, 1234),
            r#"{"lastUpdateId":60,"E":1234,"T":999,"bids":[["100.00","1.000"],["99.80","5.000"]],"asks":[["100.10","3.000"]]}"#
        );
        // Back to the initial book, with a diff's own level on top.
        let (b, a) = m.reset_levels(
            0,
            (&[l("100.00", "1.000"), l("99.90", "2.000")], &[l("100.10", "3.000")]),
            (&[], &[l("100.20", "1.000")]),
        );
        assert_eq!(b, vec![l("99.80", "0"), l("99.90", "2.000")]);
        assert_eq!(a, vec![l("100.20", "1.000")]);
        // Aggregated streams flush when their window is over.
        out.clear();
        m.flush_due(1100, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].stream, "btcusdt@depth@100ms");
        assert!(out[0].text.contains(r#""U":51,"u":60,"pu":50"#), "{}", out[0].text);
        out.clear();
        m.flush_due(1500, &mut out);
        assert_eq!(out.iter().map(|f| f.stream.as_str()).collect::<Vec<_>>(), ["btcusdt@depth", "btcusdt@depth@500ms"]);
    }
}

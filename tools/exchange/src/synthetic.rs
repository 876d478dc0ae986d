//! `--synthetic N`: a seeded random-walk market of N symbols (`SYM0USDT` …) for soak runs.
//!
//! Every 10 ms of market time, per symbol: a few trades hit the best bid or lift the best ask (depleting it, so the
//! price walks), resting levels near the top change or vanish, the spread refills, and then one depth diff carries
//! every level that changed (`U = previous u + 1`, `u = U + a few`, `pu = previous u`), a bookTicker follows when
//! the top changed, and markPrice comes every second. The generator keeps its own book in integer ticks and lots;
//! the exchange's book is fed the very diffs it serves, so REST snapshots and streams agree. Rates per symbol at
//! speed 1: ≈ 20 trades/s (each also as an aggTrade), ≈ 45 diffs/s, ≈ 30 bookTickers/s, 1 markPrice/s.

use std::collections::BTreeMap;
use std::time::Instant;

use rusto::types::Scale;

use crate::ctx::{Ctx, wall_ms};
use crate::market::{DepthIn, Frame, Kind, Lvl, Spec, TradeIn};
use crate::replay::pace;

/// splitmix64: small, seedable, good enough for a test market.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
}

/// One synthetic symbol.
pub struct SynSym {
    /// Name (`SYM0USDT`).
    pub name: String,
    px: Scale,
    qty: Scale,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_u: i64,
    trade_id: i64,
    agg_id: i64,
    last_top: (i64, i64, i64, i64),
    max_lot: i64,
}

const CLASSES: [(u8, i64, u8, i64); 4] = [
    // price decimals, starting price in ticks, quantity decimals, largest level in lots
    (1, 300_000, 3, 5_000),
    (2, 200_000, 3, 20_000),
    (4, 15_000, 0, 50_000),
    (5, 5_000, 0, 500_000),
];

impl SynSym {
    fn new(i: usize, rng: &mut Rng) -> SynSym {
        let (pd, p0, qd, max_lot) = CLASSES[i % CLASSES.len()];
        let mid = p0 + rng.range(-p0 / 10, p0 / 10);
        let mut s = SynSym {
            name: format!("SYM{i}USDT"),
            px: Scale::decimals(pd),
            qty: Scale::decimals(qd),
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_u: 1_000_000_000 + rng.range(0, 1_000_000) * 1000,
            trade_id: 100_000_000 + rng.range(0, 1_000_000),
            agg_id: 50_000_000 + rng.range(0, 1_000_000),
            last_top: (0, 0, 0, 0),
            max_lot,
        };
        for d in 0..200 {
            if d == 0 || rng.f() < 0.8 {
                s.bids.insert(mid - d, rng.range(1, max_lot));
                s.asks.insert(mid + 1 + d, rng.range(1, max_lot));
            }
        }
        s
    }

    /// Exchange-info facts.
    pub fn spec(&self) -> Spec {
        Spec {
            tick: self.px.to_string(1),
            step: self.qty.to_string(1),
            price_precision: self.px.dec,
            qty_precision: self.qty.dec,
        }
    }

    fn lvl(&self, px: i64, lots: i64) -> Lvl {
        let p = self.px.to_string(px);
        let q = self.qty.to_string(lots);
        Lvl { key: crate::market::price_key(&p).unwrap_or(0), px: p.into(), qty: q.into() }
    }

    fn levels(&self) -> (Vec<Lvl>, Vec<Lvl>) {
        (
            self.bids.iter().map(|(p, q)| self.lvl(*p, *q)).collect(),
            self.asks.iter().map(|(p, q)| self.lvl(*p, *q)).collect(),
        )
    }

    fn best_bid(&self) -> i64 {
        self.bids.keys().next_back().copied().unwrap_or(0)
    }

    fn best_ask(&self) -> i64 {
        self.asks.keys().next().copied().unwrap_or(1)
    }
}

/// N symbols from a seed.
pub fn symbols(n: usize, seed: u64) -> (Vec<SynSym>, Rng) {
    let mut rng = Rng::new(seed);
    let syms = (0..n).map(|i| SynSym::new(i, &mut rng)).collect();
    (syms, rng)
}

const STEP_MS: i64 = 10;

/// Runs the synthetic market until stopped.
pub fn run(mut syms: Vec<SynSym>, mut rng: Rng, ctx: &Ctx, start_ns: i64) {
    {
        let mut m = ctx.market();
        for (i, s) in syms.iter().enumerate() {
            let (b, a) = s.levels();
            m.init_book(i, &b, &a, s.last_u);
        }
    }
    let mut frames: Vec<Frame> = Vec::with_capacity(64);
    let mut last_flush = Instant::now();
    let mut step: i64 = 0;
    let mut next_mark = (start_ns / 1_000_000).div_euclid(1000) * 1000 + 1000;
    loop {
        let sched = start_ns + step * STEP_MS * 1_000_000;
        if !pace(ctx, sched, &mut frames, &mut last_flush) {
            return;
        }
        let t_ms = sched / 1_000_000 + ctx.clock.time_offset_ms();
        let mark = t_ms >= next_mark;
        if mark {
            next_mark = t_ms.div_euclid(1000) * 1000 + 1000;
        }
        for (i, s) in syms.iter_mut().enumerate() {
            let mut m = ctx.market();
            step_sym(i, s, &mut rng, t_ms, mark, &mut m, &mut frames);
            drop(m);
            ctx.hub.publish(&mut frames);
        }
        ctx.orders.drain_ticks(ctx);
        step += 1;
    }
}

fn step_sym(
    i: usize,
    s: &mut SynSym,
    rng: &mut Rng,
    t_ms: i64,
    mark: bool,
    m: &mut crate::market::Market,
    frames: &mut Vec<Frame>,
) {
    let mut ch_b: BTreeMap<i64, i64> = BTreeMap::new();
    let mut ch_a: BTreeMap<i64, i64> = BTreeMap::new();
    // Trades.
    let n = (rng.f() < 0.12) as u32 + (rng.f() < 0.06) as u32 + (rng.f() < 0.03) as u32;
    for _ in 0..n {
        let maker = rng.f() < 0.5;
        let (side, ch, px) = if maker {
            let p = s.best_bid();
            (&mut s.bids, &mut ch_b, p)
        } else {
            let p = s.best_ask();
            (&mut s.asks, &mut ch_a, p)
        };
        if side.len() <= 1 {
            continue;
        }
        let Some(level) = side.get(&px).copied() else { continue };
        let lots = rng.range(1, level.min((s.max_lot / 20).max(1)));
        let left = level - lots;
        if left <= 0 {
            side.remove(&px);
            ch.insert(px, 0);
        } else {
            side.insert(px, left);
            ch.insert(px, left);
        }
        let p = s.px.to_string(px);
        let q = s.qty.to_string(lots);
        let (t, a) = (s.trade_id, s.agg_id);
        s.trade_id += 1;
        s.agg_id += 1;
        let e = t_ms + 1;
        let text = format!(
            r#"{{"e":"trade","E":{e},"T":{t_ms},"s":"{}","t":{t},"p":"{p}","q":"{q}","X":"MARKET","m":{maker}}}"#,
            s.name
        );
        let agg = format!(
            r#"{{"e":"aggTrade","E":{e},"a":{a},"s":"{}","p":"{p}","q":"{q}","f":{t},"l":{t},"T":{t_ms},"m":{maker}}}"#,
            s.name
        );
        m.trade(i, TradeIn { text, kind: Kind::Trade, agg_text: Some(agg), px: &p, qty: &q, id: t, t_ms }, frames);
    }
    // Refill the spread (the walk: a depleted side is refilled from either side).
    let (bb, ba) = (s.best_bid(), s.best_ask());
    if ba - bb > 1 && rng.f() < 0.5 {
        let lots = rng.range(1, s.max_lot);
        if rng.f() < 0.5 {
            s.bids.insert(bb + 1, lots);
            ch_b.insert(bb + 1, lots);
        } else {
            s.asks.insert(ba - 1, lots);
            ch_a.insert(ba - 1, lots);
        }
    }
    // Resting levels change.
    if rng.f() < 0.35 {
        for _ in 0..rng.range(1, 3) {
            let d = (rng.f() * rng.f() * 40.0) as i64;
            let lots = if rng.f() < 0.25 { 0 } else { rng.range(1, s.max_lot) };
            let (bid, side, ch) =
                if rng.f() < 0.5 { (true, &mut s.bids, &mut ch_b) } else { (false, &mut s.asks, &mut ch_a) };
            let best = if bid { side.keys().next_back().copied() } else { side.keys().next().copied() };
            let Some(best) = best else { continue };
            let px = if bid { best - d } else { best + d };
            if px <= 0 || (lots == 0 && side.len() <= 20) {
                continue;
            }
            if lots == 0 {
                if side.remove(&px).is_some() {
                    ch.insert(px, 0);
                }
            } else {
                side.insert(px, lots);
                ch.insert(px, lots);
            }
        }
    }
    // Keep at least 20 levels a side.
    while s.bids.len() < 20 {
        let px = s.bids.keys().next().copied().unwrap_or(s.best_ask() - 1) - rng.range(1, 3);
        let lots = rng.range(1, s.max_lot);
        s.bids.insert(px, lots);
        ch_b.insert(px, lots);
    }
    while s.asks.len() < 20 {
        let px = s.asks.keys().next_back().copied().unwrap_or(s.best_bid() + 1) + rng.range(1, 3);
        let lots = rng.range(1, s.max_lot);
        s.asks.insert(px, lots);
        ch_a.insert(px, lots);
    }
    // And at most 400: the farthest level goes.
    while s.bids.len() > 400 {
        if let Some((px, _)) = s.bids.pop_first() {
            ch_b.insert(px, 0);
        }
    }
    while s.asks.len() > 400 {
        if let Some((px, _)) = s.asks.pop_last() {
            ch_a.insert(px, 0);
        }
    }
    if !ch_b.is_empty() || !ch_a.is_empty() {
        let first = s.last_u + 1;
        let last = first + rng.range(0, 7);
        let prev = s.last_u;
        s.last_u = last;
        let b: Vec<Lvl> = ch_b.iter().map(|(p, q)| s.lvl(*p, *q)).collect();
        let a: Vec<Lvl> = ch_a.iter().map(|(p, q)| s.lvl(*p, *q)).collect();
        m.depth(i, DepthIn { first, last, prev, e_ms: t_ms + 2, t_ms, bids: &b, asks: &a, text: None }, frames);
    }
    let (bb, ba) = (s.best_bid(), s.best_ask());
    let top = (bb, s.bids.get(&bb).copied().unwrap_or(0), ba, s.asks.get(&ba).copied().unwrap_or(0));
    if top != s.last_top {
        s.last_top = top;
        let text = format!(
            r#"{{"e":"bookTicker","u":{},"s":"{}","b":"{}","B":"{}","a":"{}","A":"{}","T":{t_ms},"E":{}}}"#,
            s.last_u,
            s.name,
            s.px.to_string(top.0),
            s.qty.to_string(top.1),
            s.px.to_string(top.2),
            s.qty.to_string(top.3),
            t_ms + 2
        );
        m.simple(i, Kind::BookTicker, "bookTicker", text, frames);
    }
    if mark {
        let mid = (bb + ba) as f64 / 2.0 * s.px.to_f64(1);
        let sec = t_ms.div_euclid(1000) * 1000;
        let funding = (sec / 28_800_000 + 1) * 28_800_000;
        let text = format!(
            r#"{{"e":"markPriceUpdate","E":{sec},"s":"{}","p":"{:.8}","P":"{:.8}","i":"{:.8}","r":"0.00010000","T":{funding}}}"#,
            s.name,
            mid,
            mid,
            mid * (1.0 + (rng.f() - 0.5) * 1e-4)
        );
        if (sec / 1000) % 3 == 0 {
            m.simple(i, Kind::MarkPrice, "markPrice", text.clone(), frames);
        }
        m.simple(i, Kind::MarkPrice, "markPrice@1s", text, frames);
    }
}

/// Wall time now in ns (the synthetic market starts its clock there).
pub fn now_ns() -> i64 {
    wall_ms() * 1_000_000
}

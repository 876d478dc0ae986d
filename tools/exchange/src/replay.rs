//! The recording replay loop: paces the recorded frames by their local timestamps at `--speed`, loops forever (or
//! `--loops N` times) with every timestamp and id shifted so the stream stays continuous and monotonic.
//!
//! Loop `k` adds `k × D` to every `E`/`T` (D = the recording's span + 1 s) and `k × span` to every update id, trade
//! id and aggregate id of a symbol (span = its largest minus smallest id + 1, so trade and aggregate ids stay
//! consecutive across loops). At a loop boundary the book does not jump: the first diff a symbol serves in loop
//! k ≥ 1 carries `pu` = the last `u` served, and its levels are the recorded diff's levels on top of the levels
//! that turn the exchange's current book back into the recording's initial snapshot. So a synced client never sees
//! a gap or a crossed book, and the REST snapshot stays consistent with the stream.

use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::json::Offsets;
use crate::market::{DepthIn, Frame, Kind, TradeIn};
use crate::recording::{Body, Recording, Snap};

/// Waits until the replay position reaches `sched_ns`, serving stalls and flushing aggregated depth windows on
/// the way. False when the exchange is stopping.
pub fn pace(ctx: &Ctx, sched_ns: i64, frames: &mut Vec<Frame>, last_flush: &mut Instant) -> bool {
    loop {
        if ctx.stopping() {
            return false;
        }
        let stall = ctx.faults.stall_ms.swap(0, std::sync::atomic::Ordering::Relaxed);
        if stall > 0 {
            let d = Duration::from_millis(stall);
            let until = Instant::now() + d;
            while Instant::now() < until {
                if ctx.stopping() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
            }
            ctx.clock.add_stall(d);
            ctx.stats.stalls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let now = Instant::now();
        if now.duration_since(*last_flush) >= Duration::from_millis(2) {
            *last_flush = now;
            ctx.market().flush_due(ctx.clock.now_ms(), frames);
            ctx.hub.publish(frames);
        }
        let target = ctx.clock.instant_of(sched_ns);
        if now >= target {
            return true;
        }
        std::thread::sleep((target - now).min(Duration::from_millis(5)));
    }
}

/// After the last loop: keep flushing (nothing else to send) until stopped.
pub fn idle(ctx: &Ctx) {
    let mut frames = Vec::new();
    while !ctx.stopping() {
        ctx.market().flush_due(i64::MAX, &mut frames);
        ctx.hub.publish(&mut frames);
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct SymLoop {
    l0: i64,
    bridged: bool,
    id_span: i64,
    trade_span: i64,
    agg_span: i64,
    snap: Snap,
}

/// Serves `rec` `loops` times (0 = forever), then idles.
pub fn run(rec: &Recording, ctx: &Ctx, loops: u64) {
    let (t0, t1) = rec.ts_range;
    let (e0, e1) = rec.e_range;
    let d_ms = ((t1 - t0) / 1_000_000).max(e1 - e0) + 1000;
    let d_ns = d_ms * 1_000_000;
    let mut st: Vec<SymLoop> = rec
        .symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let first_prev = rec.events.iter().find_map(|e| match &e.body {
                Body::Depth { prev, .. } if e.sym as usize == i => Some(*prev),
                _ => None,
            });
            let snap = s.snapshot.clone().unwrap_or_default();
            let l0 = s.snapshot.as_ref().map(|x| x.last_update_id).or(first_prev).unwrap_or(0);
            let w = |r: Option<(i64, i64)>| r.map_or(0, |(a, b)| b - a + 1);
            SymLoop {
                l0,
                bridged: false,
                id_span: w(s.ids),
                trade_span: w(s.trade_ids),
                agg_span: w(s.agg_ids).max(s.market_trades),
                snap,
            }
        })
        .collect();
    {
        let mut m = ctx.market();
        for (i, s) in st.iter().enumerate() {
            m.init_book(i, &s.snap.bids, &s.snap.asks, s.l0);
        }
    }
    let mut frames: Vec<Frame> = Vec::with_capacity(64);
    let mut last_flush = Instant::now();
    let mut text = String::with_capacity(4096);
    let mut k: i64 = 0;
    loop {
        if loops > 0 && k as u64 >= loops {
            break;
        }
        ctx.market().counters.loops = k as u64 + 1;
        for s in &mut st {
            s.bridged = false;
        }
        for ev in &rec.events {
            if !pace(ctx, ev.ts_ns + k * d_ns, &mut frames, &mut last_flush) {
                return;
            }
            let sym = ev.sym as usize;
            let s = &mut st[sym];
            let off = Offsets {
                time_ms: ctx.clock.time_offset_ms() + k * d_ms,
                update_id: k * s.id_span,
                trade_id: k * s.trade_span,
                agg_id: k * s.agg_span,
            };
            let mut m = ctx.market();
            match &ev.body {
                Body::Depth { tpl, first, last, prev, e_ms, t_ms, bids, asks } => {
                    let reset = !s.bridged && k > 0;
                    if !s.bridged {
                        if *last < s.l0 {
                            continue;
                        }
                        s.bridged = true;
                    }
                    let u = off.update_id;
                    if reset {
                        let (b, a) = m.reset_levels(sym, (&s.snap.bids, &s.snap.asks), (bids, asks));
                        let prev = m.syms[sym].last_u;
                        let d = DepthIn {
                            first: first + u,
                            last: last + u,
                            prev,
                            e_ms: e_ms + off.time_ms,
                            t_ms: t_ms + off.time_ms,
                            bids: &b,
                            asks: &a,
                            text: None,
                        };
                        m.depth(sym, d, &mut frames);
                    } else {
                        let d = DepthIn {
                            first: first + u,
                            last: last + u,
                            prev: prev + u,
                            e_ms: e_ms + off.time_ms,
                            t_ms: t_ms + off.time_ms,
                            bids,
                            asks,
                            text: Some(tpl.to_string_with(&off)),
                        };
                        m.depth(sym, d, &mut frames);
                    }
                }
                Body::Trade { tpl, kind, agg, px, qty, id, t_ms, .. } => {
                    let id_off = if *kind == Kind::Trade { off.trade_id } else { off.agg_id };
                    let t = TradeIn {
                        text: tpl.to_string_with(&off),
                        kind: *kind,
                        agg_text: agg.as_ref().map(|a| a.to_string_with(&off)),
                        px,
                        qty,
                        id: id + id_off,
                        t_ms: t_ms + off.time_ms,
                    };
                    m.trade(sym, t, &mut frames);
                }
                Body::MarkPrice { suffix, tpl, e_ms } => {
                    text.clear();
                    tpl.render(&off, &mut text);
                    if &**suffix == "markPrice@1s" && (e_ms + off.time_ms).div_euclid(1000) % 3 == 0 {
                        m.simple(sym, Kind::MarkPrice, "markPrice", text.clone(), &mut frames);
                    }
                    m.simple(sym, Kind::MarkPrice, suffix, text.clone(), &mut frames);
                }
                Body::Simple { kind, suffix, tpl } => {
                    m.simple(sym, *kind, suffix, tpl.to_string_with(&off), &mut frames);
                }
            }
            drop(m);
            ctx.hub.publish(&mut frames);
            ctx.orders.drain_ticks(ctx);
        }
        k += 1;
    }
    idle(ctx);
}

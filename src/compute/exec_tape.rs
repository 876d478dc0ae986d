//! Hand-built tapes through [`Engine::on_event`] for the execution rules (`compute::trading::orders`, `trader`,
//! `position`): an order in flight fills at the market of its arrival, stops never fill better than their trigger,
//! resting take profits fill by their queue, funding, maker and taker fees, the mark-price stop trigger.

use super::{Engine, EngineConfig};
use crate::compute::trading::orders::{EntryOrder, InFlight, OrderKind};
use crate::compute::trading::position::StopTrigger;
use crate::types::decimal::Scale;
use crate::types::event::{EventKind, MarketEvent, flags};
use crate::types::record::{ExitReason, Features, FillKind, GatePass, Liquidity, Record, Regime, Side};
use crate::types::symbols::SymbolName;

const T: i64 = 1_680_652_800_000_000_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;

/// An engine (order latency 5 ms) with one synced symbol, tick 0.01, step 1: bids 99.99 x30, 99.98 x20, 99.97 x10;
/// asks 100.00 x10, 100.01 x10, 100.60 x8 (TP1 of a long at 100.00 with a 0.4 % stop), 101.20 x4; last u = 11 at T.
fn engine_with(f: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut cfg = EngineConfig::default();
    cfg.position.order_latency_ms = 5.0;
    cfg.risk.stop_pct = 0.4;
    f(&mut cfg);
    let mut en = Engine::new(cfg);
    let mut out = |_| {};
    let name = SymbolName::new(b"BTCUSDT").unwrap();
    en.on_event(&MarketEvent::symbol_def(0, name, Some(Scale::decimals(2)), Some(Scale::decimals(0))), &mut out);
    let mut h = MarketEvent::new(EventKind::Snapshot, 0, T, 0, 0);
    h.p[0] = 10;
    h.set_level_counts(3, 4);
    en.on_event(&h, &mut out);
    let sides = [
        (false, [(9999, 30), (9998, 20)]),
        (false, [(9997, 10), (0, 0)]),
        (true, [(10000, 10), (10001, 10)]),
        (true, [(10060, 8), (10120, 4)]),
    ];
    for (ask, lv) in sides {
        let mut e = MarketEvent::new(EventKind::Levels, 0, T, 0, 0);
        let two = lv[1].1 > 0;
        e.flags = flags::SNAPSHOT | if ask { flags::ASK } else { 0 } | if two { flags::TWO_LEVELS } else { 0 };
        e.p = [lv[0].0, lv[0].1, lv[1].0, lv[1].1];
        en.on_event(&e, &mut out);
    }
    en.on_event(&diff(10, 11, 9, T, None), &mut out);
    assert!(en.symbols[0].book.is_synced());
    en
}

fn engine() -> Engine {
    engine_with(|_| {})
}

/// A diff `first..=last` (prev `prev`) at `ts`, with one level change (`ask`, px, qty) if given.
fn diff(first: i64, last: i64, prev: i64, ts: i64, level: Option<(bool, i64, i64)>) -> MarketEvent {
    let mut d = MarketEvent::new(EventKind::Depth, 0, ts, 0, 0);
    d.p = [first, last, prev, 0];
    if let Some((ask, _, _)) = level {
        d.set_level_counts(u32::from(!ask), u32::from(ask));
    }
    d
}

/// The level of a diff (the second event of a diff carries its levels).
fn diff_level(ask: bool, px: i64, qty: i64, ts: i64) -> MarketEvent {
    let mut e = MarketEvent::new(EventKind::Levels, 0, ts, 0, 0);
    e.flags = if ask { flags::ASK } else { 0 };
    e.p = [px, qty, 0, 0];
    e
}

fn trade(px: i64, qty: i64, id: i64, seller_aggressor: bool, ts: i64) -> MarketEvent {
    let mut e = MarketEvent::new(EventKind::Trade, 0, ts, 0, 0);
    e.p = [px, qty, id, 1];
    e.flags = if seller_aggressor { flags::BUYER_MAKER } else { 0 };
    e
}

fn mark(px_e8: i64, rate_e8: i64, next_funding_ms: i64, ts: i64) -> MarketEvent {
    let mut e = MarketEvent::new(EventKind::MarkPrice, 0, ts, 0, 0);
    e.p = [px_e8, px_e8, rate_e8, next_funding_ms];
    e
}

fn features() -> Features {
    Features {
        imbalance_ratio: 2.0,
        cvd_1min_change: 1.0,
        volume_burst_ratio: 2.0,
        bar_range_pct: 0.1,
        zone_distance_pct: 0.0,
        near_val: true,
        near_vah: false,
        near_hvn: false,
        regime: Regime::RangeLow,
        confidence: 0.5,
    }
}

/// Sends an entry of `qty` on the base account as the strategy would, decided at `decided_ns` (it travels with
/// the engine's order latency; the notional is reserved as `Trader::enter` does).
fn send_entry(en: &mut Engine, side: Side, qty: i64, decided_ns: i64) {
    let order = EntryOrder {
        side,
        qty,
        bar_ts_ns: decided_ns - MS,
        reserved_notional: qty as f64 * 100.0,
        gate: GatePass::default(),
        features: features(),
        tick_value: 0.01,
        step_value: 1.0,
    };
    let arrival_ns = decided_ns + 5 * MS;
    let t = &mut en.symbols[0].traders[0];
    t.orders.push(InFlight { arrival_ns, decided_ns, kind: OrderKind::Entry(order) }).unwrap();
    en.accounts[0].risk.on_open(&mut t.risk, order.reserved_notional);
    en.symbols[0].refresh_due();
}

/// Feeds `events`, returning the fills.
fn feed(en: &mut Engine, events: &[MarketEvent]) -> Vec<Record> {
    let mut recs = vec![];
    for e in events {
        en.on_event(e, &mut |r| recs.push(r));
    }
    recs.into_iter().filter(|r| matches!(r, Record::Fill { .. })).collect()
}

fn fill(r: &Record) -> (FillKind, Liquidity, i64, f64, i64, i64, f64) {
    match *r {
        Record::Fill { kind, liquidity, qty, px, ts_ns, decision_ts_ns, fee, .. } => {
            (kind, liquidity, qty, px, ts_ns, decision_ts_ns, fee)
        }
        _ => unreachable!(),
    }
}

/// A long of 5 at 100.00 opened at T + 6 ms (decided at T + 1 ms), its brackets live from T + 16 ms.
fn long_open(en: &mut Engine) {
    send_entry(en, Side::Long, 5, T + MS);
    let f = feed(en, &[trade(9999, 1, 1, true, T + 7 * MS), trade(9999, 1, 2, true, T + 20 * MS)]);
    assert_eq!(fill(&f[0]).0, FillKind::Entry);
    assert!(en.symbols[0].traders[0].brackets_live);
}

#[test]
fn an_order_in_flight_fills_at_the_market_of_its_arrival() {
    let mut en = engine();
    send_entry(&mut en, Side::Long, 5, T + MS);
    // At the decision the best ask is 100.00 x10. 2 ms later (still in flight) it is gone.
    let mut f =
        feed(&mut en, &[diff(12, 12, 11, T + 3 * MS, Some((true, 10000, 0))), diff_level(true, 10000, 0, T + 3 * MS)]);
    assert!(f.is_empty(), "in flight: {f:?}");
    // The first event at or after the arrival (T + 6 ms) fills it, before being applied itself.
    f = feed(&mut en, &[trade(10001, 1, 1, false, T + 8 * MS)]);
    let (kind, liq, qty, px, ts, decided, fee) = fill(&f[0]);
    assert_eq!((kind, liq, qty, px, ts, decided), (FillKind::Entry, Liquidity::Taker, 5, 10001.0, T + 6 * MS, T + MS));
    assert!((fee - 5.0 * 100.01 * 0.0005).abs() < 1e-12, "taker fee {fee}");
    let pos = en.symbols[0].traders[0].position.unwrap();
    assert_eq!((pos.entry_ts_ns, pos.entry_fill_ts_ns, pos.latency_ns), (T + MS, T + 6 * MS, 5 * MS));
    match f.first() {
        Some(Record::Fill { latency_ns, trigger_px, .. }) => {
            assert_eq!((*latency_ns, *trigger_px), (5 * MS, Some(10001.0)))
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn an_entry_arriving_on_an_unsynced_book_is_not_filled_and_releases_its_reservation() {
    let mut en = engine();
    send_entry(&mut en, Side::Long, 5, T + MS);
    en.symbols[0].book.invalidate();
    let f = feed(&mut en, &[trade(10000, 1, 1, false, T + 8 * MS)]);
    assert!(f.is_empty());
    let t = &en.symbols[0].traders[0];
    assert_eq!((t.entries_unfilled, t.position.is_none(), t.risk.open), (1, true, false));
    assert_eq!(en.accounts[0].risk.open_positions, 0);
}

#[test]
fn a_stop_never_fills_better_than_its_trigger() {
    let mut en = engine();
    long_open(&mut en);
    // Stop at 99.60. A sell trade at 99.55 crosses it while the (stale) book still bids 99.99.
    let f = feed(&mut en, &[trade(9955, 1, 3, true, T + 30 * MS)]);
    let (kind, liq, qty, px, ts, decided, _) = fill(&f[0]);
    assert_eq!((kind, liq, qty), (FillKind::Exit(ExitReason::StopLoss), Liquidity::Taker, 5));
    assert!(px <= 9955.0, "filled at {px}, better than the trigger 99.55");
    assert_eq!((ts, decided), (T + 30 * MS, T + 30 * MS), "a resting stop triggers at the exchange: no latency");
    assert!(en.symbols[0].traders[0].position.is_none());
}

#[test]
fn a_take_profit_fills_only_when_trades_exhaust_the_queue_ahead() {
    let mut en = engine();
    long_open(&mut en);
    let tp = en.symbols[0].traders[0].tps[0].unwrap();
    // TP1 of 3 (round(5 x 0.5)) rests at 100.60 behind the 8 the book shows there.
    assert_eq!((tp.px, tp.qty, tp.ahead), (10060, 3, 8));
    // The price trades once, with less than the queue: no fill. A sell at the price is not against us.
    assert!(feed(&mut en, &[trade(10060, 6, 3, false, T + 40 * MS), trade(10060, 9, 4, true, T + 41 * MS)]).is_empty());
    // The level shrinks to 1 (cancels): the queue ahead is at most that.
    feed(&mut en, &[diff(12, 12, 11, T + 42 * MS, Some((true, 10060, 1))), diff_level(true, 10060, 1, T + 42 * MS)]);
    assert_eq!(en.symbols[0].traders[0].tps[0].unwrap().ahead, 1);
    // A buy of 2 at the price: 1 to the queue, 1 to us (a partial maker fill at the limit).
    let f = feed(&mut en, &[trade(10060, 2, 5, false, T + 43 * MS)]);
    let (kind, liq, qty, px, _, _, fee) = fill(&f[0]);
    assert_eq!((kind, liq, qty, px), (FillKind::Exit(ExitReason::Tp1), Liquidity::Maker, 1, 10060.0));
    assert!((fee - 100.60 * 0.0002).abs() < 1e-12, "maker fee {fee}");
    assert!(!en.symbols[0].traders[0].position.unwrap().tp1_done);
    // A trade through the price fills the rest of TP1.
    let f = feed(&mut en, &[trade(10061, 1, 6, false, T + 44 * MS)]);
    assert_eq!(fill(&f[0]).2, 2);
    let pos = en.symbols[0].traders[0].position.unwrap();
    assert!(pos.tp1_done && pos.remaining == 2);
}

#[test]
fn a_take_profit_already_crossed_on_arrival_fills_as_a_taker_at_its_limit() {
    let mut en = engine();
    send_entry(&mut en, Side::Long, 5, T + MS);
    feed(&mut en, &[trade(9999, 1, 1, true, T + 7 * MS)]);
    // Before the brackets arrive (T + 16 ms) the market jumps: asks up to 100.60 gone, a bid at 100.70. TP1
    // (a sell limit at 100.60) would cross.
    let mut d = diff(12, 12, 11, T + 10 * MS, None);
    d.set_level_counts(1, 3);
    let mut asks = diff_level(true, 10000, 0, T + 10 * MS);
    asks.flags |= flags::TWO_LEVELS;
    asks.p[2..].copy_from_slice(&[10001, 0]);
    let jump = [d, diff_level(false, 10070, 5, T + 10 * MS), asks, diff_level(true, 10060, 0, T + 10 * MS)];
    feed(&mut en, &jump);
    assert_eq!(en.symbols[0].book.top().0.map(|l| l.px), Some(10070));
    let f = feed(&mut en, &[trade(10070, 1, 2, true, T + 17 * MS)]);
    let (kind, liq, qty, px, ts, _, _) = fill(&f[0]);
    assert_eq!((kind, liq, qty, px, ts), (FillKind::Exit(ExitReason::Tp1), Liquidity::Taker, 3, 10060.0, T + 16 * MS));
}

#[test]
fn a_soft_stop_is_decided_on_a_trade_and_fills_on_arrival_never_better_than_its_decision() {
    let mut en = engine();
    long_open(&mut en);
    // 46 s after the fill, a trade at 99.84 (-0.16 %): SoftStop decided; it reaches the exchange 5 ms later.
    let t0 = T + 6 * MS + 46 * S;
    assert!(feed(&mut en, &[trade(9984, 1, 3, true, t0)]).is_empty(), "in flight");
    let f = feed(&mut en, &[trade(9990, 1, 4, false, t0 + 6 * MS)]);
    let (kind, liq, qty, px, ts, decided, _) = fill(&f[0]);
    assert_eq!(
        (kind, liq, qty, ts, decided),
        (FillKind::Exit(ExitReason::SoftStop), Liquidity::Taker, 5, t0 + 5 * MS, t0)
    );
    // The stale book bids 99.99, better than the 99.84 the decision saw: capped there.
    assert_eq!(px, 9984.0);
}

#[test]
fn funding_is_paid_by_a_long_and_received_by_a_short_at_the_funding_time() {
    let funding_ms = (T + 60 * S) / MS;
    for (side, rate_e8, sign) in [(Side::Long, 10_000, -1.0), (Side::Short, 10_000, 1.0), (Side::Long, -10_000, 1.0)] {
        let mut en = engine();
        send_entry(&mut en, side, 5, T + MS);
        let px = if side == Side::Long { 9999 } else { 10000 };
        feed(&mut en, &[trade(px, 1, 1, side == Side::Long, T + 7 * MS)]);
        // Mark 100.00, rate ±0.01 %, next funding at T + 60 s.
        let f = feed(&mut en, &[mark(100 * 100_000_000, rate_e8, funding_ms, T + S)]);
        assert!(f.is_empty());
        let f = feed(&mut en, &[mark(100 * 100_000_000, rate_e8, funding_ms + 8 * 3600 * 1000, T + 61 * S)]);
        let Record::Fill { kind, qty, px, pnl, ts_ns, fee, .. } = f[0] else { unreachable!() };
        assert_eq!(
            (kind, qty, px, ts_ns, fee),
            (FillKind::Funding { rate: rate_e8 as f64 / 1e8 }, 5, 10000.0, funding_ms * MS, 0.0)
        );
        assert!((pnl - sign * 5.0 * 100.0 * 0.0001).abs() < 1e-12, "{side:?} {rate_e8}: {pnl}");
        assert!((en.symbols[0].traders[0].position.unwrap().funding - pnl).abs() < 1e-15);
        // Once per funding time.
        assert!(
            feed(&mut en, &[mark(100 * 100_000_000, rate_e8, funding_ms + 8 * 3600 * 1000, T + 62 * S)]).is_empty()
        );
    }
}

#[test]
fn a_mark_price_stop_trigger_ignores_trades_and_fires_on_the_mark() {
    let mut en = engine_with(|c| c.position.stop_trigger = StopTrigger::Mark);
    long_open(&mut en);
    assert!(feed(&mut en, &[trade(9955, 1, 3, true, T + 30 * MS)]).is_empty(), "the last trade does not trigger it");
    let f = feed(&mut en, &[mark(9958 * 1_000_000, 0, 0, T + 31 * MS)]);
    let (kind, _, _, px, _, _, _) = fill(&f[0]);
    assert_eq!(kind, FillKind::Exit(ExitReason::StopLoss));
    assert!(px <= 9958.0, "{px}");
}

#[test]
fn the_mark_liquidates_with_the_whole_margin_once_a_mark_is_known() {
    // 50x: a long at 100.00 is liquidated at 98.39 by the mark; a 5 % stop keeps the stop out of the way.
    let mut en = engine_with(|c| c.risk.stop_pct = 5.0);
    long_open(&mut en);
    feed(&mut en, &[mark(99 * 100_000_000, 0, 0, T + S)]);
    assert!(
        feed(&mut en, &[trade(9800, 1, 3, true, T + 2 * S)]).is_empty(),
        "a trade does not liquidate once a mark is known"
    );
    let f = feed(&mut en, &[mark(9838 * 1_000_000, 0, 0, T + 3 * S)]);
    let Record::Fill { kind, liquidity, pnl, px, .. } = f[0] else { unreachable!() };
    assert_eq!((kind, liquidity, px), (FillKind::Exit(ExitReason::Liquidation), Liquidity::None, 9838.0));
    // Margin: 5 x 100.00 / 50 = 10.
    assert!((pnl - (-10.0)).abs() < 1e-9, "{pnl}");
}

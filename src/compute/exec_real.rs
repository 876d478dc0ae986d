//! Real recordings through the engine event by event, every account's every fill checked against an independent
//! view of the market (what the tickers, trades and applied diffs said, kept here, not by the engine):
//! - no entry, stop-market or SoftStop fill is better than the freshest touch at the order's arrival (for a fill
//!   with latency: the view before the event it was executed on; without: the view including that event), and no
//!   stop or SoftStop fill is better than its trigger;
//! - no resting take profit fills unless a trade reached its price (a maker fill happens on a trade at or through
//!   the limit; a taker one on a touch already past it);
//! - each account's balance is its initial balance plus the sum of its fills' PnL (fees and funding included);
//! - two replays give identical records.

use super::Engine;
use crate::app::config::{Config, FullPolicy};
use crate::handoff::publish::Publisher;
use crate::handoff::ring::ring;
use crate::ingest::parse::Parser;
use crate::recording::source::{Speed, run_source};
use crate::types::event::{EventKind, MarketEvent};
use crate::types::record::{ExitReason, FillKind, Liquidity, Record};
use crate::types::symbols::SymbolTable;

/// The freshest bid and ask of one symbol: whichever event last told it (ticker, trade, applied diff).
#[derive(Default, Clone, Copy)]
struct Fresh {
    bid: Option<i64>,
    ask: Option<i64>,
}

impl Fresh {
    /// The view after `e` (the engine has applied it).
    fn after(mut self, e: &MarketEvent, engine: &Engine) -> Self {
        match e.kind {
            EventKind::BookTicker => (self.bid, self.ask) = (Some(e.ticker_bid_px()), Some(e.ticker_ask_px())),
            EventKind::Trade if e.buyer_is_maker() => self.bid = Some(e.trade_price_ticks()),
            EventKind::Trade => self.ask = Some(e.trade_price_ticks()),
            EventKind::Depth | EventKind::Levels | EventKind::Snapshot => {
                if let Some(s) = engine.symbols.get(e.symbol as usize)
                    && s.book.last_update_ns == e.exch_ts_ns
                    && let (Some(b), Some(a)) = s.book.top()
                {
                    (self.bid, self.ask) = (Some(b.px), Some(a.px));
                }
            }
            _ => {}
        }
        self
    }
}

/// What a replay showed.
#[derive(Debug, Default, PartialEq)]
struct Checked {
    /// Fills by kind: entries, stop-market and SoftStop exits, maker TPs, taker TPs, funding, other.
    entries: usize,
    stops: usize,
    maker_tps: usize,
    taker_tps: usize,
    fundings: usize,
    /// Every violation, described.
    violations: Vec<String>,
    /// Every record, as text, for the determinism check.
    records: Vec<String>,
}

/// Replays `files` with `cfg` and checks every fill (module doc).
fn replay(cfg: &Config, files: &[&str]) -> Checked {
    let files: Vec<std::path::PathBuf> = files.iter().map(Into::into).collect();
    // BTCUSDT's real tick (0.10) from the bundled exchangeInfo, as `rusto replay` uses it (the bars are in ticks).
    let specs = crate::ingest::parse::exchange_info::bundled_specs().unwrap();
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let (tx, mut rx) = ring::<MarketEvent>(1 << 16);
    let publisher = Publisher::new(tx, FullPolicy::Spin, cfg.parser.max_symbols);
    let max_line = cfg.parser.max_frame_bytes + 64;
    let h = std::thread::spawn(move || run_source(parser, files, max_line, Speed::Asap, publisher).3);
    let mut engine = Engine::new(cfg.engine());
    let mut fresh = [Fresh::default(); 64];
    let mut c = Checked::default();
    let mut pnl = vec![0.0; engine.accounts.len()];
    loop {
        let Some(e) = rx.pop() else {
            if rx.is_abandoned() && rx.available() == 0 {
                break;
            }
            std::thread::yield_now();
            continue;
        };
        let before = fresh[e.symbol as usize % 64];
        let mut recs = Vec::new();
        engine.on_event(&e, &mut |r| recs.push(r));
        let after = before.after(&e, &engine);
        fresh[e.symbol as usize % 64] = after;
        for r in &recs {
            check_fill(r, &e, before, after, &mut c, &mut pnl);
        }
        c.records.extend(recs.iter().map(|r| format!("{r:?}")));
    }
    h.join().unwrap().unwrap();
    let mut recs = Vec::new();
    engine.shutdown(&mut |r| recs.push(r));
    for r in &recs {
        if let Record::Fill { variant, pnl: p, .. } = r {
            pnl[*variant as usize] += p;
        }
    }
    c.records.extend(recs.iter().map(|r| format!("{r:?}")));
    for (a, p) in engine.accounts.iter().zip(&pnl) {
        let want = a.rules.risk.initial_balance + p;
        if (a.risk.balance - want).abs() > 1e-6 {
            c.violations.push(format!("{}: balance {} != initial + sum of fills {want}", a.rules.name, a.risk.balance));
        }
    }
    c
}

/// One record's checks (module doc).
fn check_fill(r: &Record, e: &MarketEvent, before: Fresh, after: Fresh, c: &mut Checked, pnl: &mut [f64]) {
    let Record::Fill { variant, kind, liquidity, buy, px, trigger_px, latency_ns, pnl: p, .. } = *r else { return };
    pnl[variant as usize] += p;
    // Better than a price for a buy = lower, for a sell = higher.
    let better = |than: f64| if buy { px < than - 1e-9 } else { px > than + 1e-9 };
    let view = if latency_ns > 0 { before } else { after };
    let touch = if buy { view.ask } else { view.bid }.map(|t| t as f64);
    let mut bad = |what: &str| c.violations.push(format!("{what}: {r:?} at {e:?}"));
    match (kind, liquidity) {
        (FillKind::Entry, _) => {
            c.entries += 1;
            if touch.is_some_and(better) {
                bad("entry better than the freshest touch");
            }
        }
        (FillKind::Exit(ExitReason::StopLoss | ExitReason::Breakeven | ExitReason::SoftStop), _) => {
            c.stops += 1;
            if touch.is_some_and(better) {
                bad("stop or SoftStop better than the freshest touch");
            }
            if trigger_px.is_none_or(better) {
                bad("stop or SoftStop better than its trigger");
            }
        }
        (FillKind::Exit(ExitReason::Tp1 | ExitReason::Tp2), Liquidity::Maker) => {
            c.maker_tps += 1;
            let limit = trigger_px.unwrap_or(f64::NAN);
            let t = e.trade_price_ticks() as f64;
            let reached = e.kind == EventKind::Trade && if buy { t <= limit } else { t >= limit };
            if !reached || px != limit {
                bad("a maker take profit without a trade at its price");
            }
        }
        (FillKind::Exit(ExitReason::Tp1 | ExitReason::Tp2), _) => {
            c.taker_tps += 1;
            let limit = trigger_px.unwrap_or(f64::NAN);
            let crossed = touch.is_some_and(|t| if buy { t <= limit } else { t >= limit });
            if !crossed || px != limit {
                bad("a taker take profit not crossed on arrival");
            }
        }
        (FillKind::Funding { .. }, _) => c.fundings += 1,
        _ => {}
    }
}

const SAMPLE: [&str; 2] = ["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"];

#[test]
fn every_fill_on_the_sample_keeps_the_execution_rules_and_replays_identically() {
    let cfg = Config::load("tests/config/realism.toml").unwrap();
    let a = replay(&cfg, &SAMPLE);
    eprintln!(
        "sample/realism: {} entries, {} stops, {} maker TPs, {} taker TPs, {} fundings, {} violations",
        a.entries,
        a.stops,
        a.maker_tps,
        a.taker_tps,
        a.fundings,
        a.violations.len()
    );
    assert!(a.violations.is_empty(), "{:#?}", &a.violations[..a.violations.len().min(5)]);
    // The checks had something to check: every kind of fill occurs on this real recording.
    assert!(a.entries >= 50 && a.stops >= 20 && a.maker_tps >= 5 && a.fundings >= 1, "{a:?}");
    let b = replay(&cfg, &SAMPLE);
    assert!(a.records == b.records, "two replays differ");
}

#[test]
fn entries_fill_no_better_than_the_freshest_touch_with_the_ab_variants() {
    for (config, n) in [("tests/config/loose-signals.toml", 1), ("tests/config/ab-variants.toml", 3)] {
        let c = replay(&Config::load(config).unwrap(), &SAMPLE);
        assert_eq!(c.entries, n, "{config}: entries on the sample");
        assert!(c.violations.is_empty(), "{config}: {:#?}", c.violations);
    }
}

#[test]
fn the_cryptofeed_recordings_keep_the_rules() {
    let cfg = Config::load("tests/config/realism.toml").unwrap();
    let mut files = vec![["tests/data/BINANCE_FUTURES.ws.1.0.txt", "tests/data/BINANCE_FUTURES.http.0.0.txt"].to_vec()];
    let shared = "../shared/data/cryptofeed-binance-futures-raw";
    if std::path::Path::new(shared).exists() {
        files.push(vec![
            "../shared/data/cryptofeed-binance-futures-raw/BINANCE_FUTURES.ws.5.0.txt",
            "../shared/data/cryptofeed-binance-futures-raw/BINANCE_FUTURES.http.4.0.txt",
        ]);
        files.push(vec!["../shared/data/cryptofeed-binance-futures-raw/BINANCE_FUTURES-1125a2.0.txt"]);
    }
    for f in files {
        let c = replay(&cfg, &f);
        eprintln!("{f:?}: {} entries, {} stops, {} maker TPs", c.entries, c.stops, c.maker_tps);
        assert!(c.violations.is_empty(), "{f:?}: {:#?}", c.violations);
    }
}

/// What a venue beside the base account did on a replay whose "exchange" fills every MARKET order at once at the
/// last trade price and acknowledges everything else (stops and take profits rest and never trigger there, so the
/// real position outlives each paper close and is flattened by the divergence rule).
struct Shadowed {
    records: Vec<String>,
    entry_decisions: u64,
    stats: crate::compute::VenueStats,
    undecodable: u64,
    real_open_at_end: i64,
    /// Reduce-only MARKET closes the echo exchange filled.
    closes: u64,
    /// The real account's records (`Exec`, `EntriesHalted`), kept apart from the paper model's.
    real_records: u64,
}

/// A record of the paper model as text; the real account's (`Exec`, `EntriesHalted`) only counted.
fn keep(r: Record, records: &mut Vec<String>, real: &mut u64) {
    if matches!(r, Record::Exec { .. } | Record::EntriesHalted { .. }) {
        *real += 1;
    } else {
        records.push(format!("{r:?}"));
    }
}

fn replay_with_venue(cfg: &Config, files: &[&str], venue: bool) -> Shadowed {
    use crate::compute::{Venue, VenueConfig};
    use crate::types::order::{ExecKind, ExecReport, IntentKind, OrderIntent, OrderType};
    let files: Vec<std::path::PathBuf> = files.iter().map(Into::into).collect();
    let specs = crate::ingest::parse::exchange_info::bundled_specs().unwrap();
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let (tx, mut rx) = ring::<MarketEvent>(1 << 16);
    let publisher = Publisher::new(tx, FullPolicy::Spin, cfg.parser.max_symbols);
    let max_line = cfg.parser.max_frame_bytes + 64;
    let h = std::thread::spawn(move || run_source(parser, files, max_line, Speed::Asap, publisher).3);
    let mut engine = Engine::new(cfg.engine());
    let (itx, mut irx) = ring::<OrderIntent>(64);
    let vcfg = VenueConfig {
        run_id: 3,
        order_notional_max: 1e9,
        symbol_notional_max: 1e9,
        total_notional_max: 1e9,
        orders_per_min_max: 1000,
        daily_loss_max: 1e9,
        ..VenueConfig::default()
    };
    if venue {
        engine.attach_venue(Venue::new(vcfg, itx, Default::default()));
    }
    let (mut records, mut entry_decisions, mut cum, mut closes) = (Vec::new(), 0u64, 0, 0u64);
    let mut real_records = 0u64;
    loop {
        let Some(e) = rx.pop() else {
            if rx.is_abandoned() && rx.available() == 0 {
                break;
            }
            std::thread::yield_now();
            continue;
        };
        engine.on_event(&e, &mut |r| keep(r, &mut records, &mut real_records));
        // The echo exchange: answers each intent with its report, as an Exec + ExecMore pair on the same path.
        while let Some(i) = irx.pop() {
            let s = &engine.symbols[i.symbol as usize];
            let fill = i.kind == IntentKind::Place && i.order_type == OrderType::Market;
            cum += 1;
            closes += u64::from(fill && i.client.leg != crate::types::order::Leg::Entry);
            let kind = if fill {
                ExecKind::Fill
            } else if i.kind == IntentKind::Cancel {
                ExecKind::Canceled
            } else {
                ExecKind::Ack
            };
            let (q, px) = if fill { (i.qty_steps, s.last_px) } else { (0, 0) };
            let x = ExecReport {
                exchange_order_id: cum,
                ..ExecReport::of_intent(&i, kind, q, px, e.exch_ts_ns / 1_000_000)
            };
            for ev in x.to_events(e.local_ts_ns, 0) {
                engine.on_event(&ev, &mut |r| keep(r, &mut records, &mut real_records));
            }
        }
    }
    h.join().unwrap().unwrap();
    // The base account's entry decisions: each opened, failed closed at arrival, or still in flight.
    for s in &engine.symbols {
        let t = &s.traders[0];
        entry_decisions += t.opened + t.entries_unfilled + t.orders.len() as u64;
    }
    let v = engine.venue();
    Shadowed {
        records,
        entry_decisions,
        stats: v.map(|v| v.stats.clone()).unwrap_or_default(),
        undecodable: engine.stats.exec_undecodable,
        closes,
        real_records,
        real_open_at_end: v.map_or(0, |v| (0..engine.symbols.len()).map(|s| v.real_qty(s as _).abs()).sum()),
    }
}

#[test]
fn a_venue_beside_the_base_account_changes_no_paper_record_and_follows_every_decision() {
    let cfg = Config::load("tests/config/realism.toml").unwrap();
    let paper = replay_with_venue(&cfg, &SAMPLE, false);
    let real = replay_with_venue(&cfg, &SAMPLE, true);
    assert!(paper.records == real.records, "the paper model is the same with a venue beside it");
    assert_eq!(paper.real_records, 0);
    assert!(real.real_records > 0, "the venue's reports are recorded for order_reports");
    let st = &real.stats;
    eprintln!("sample/realism with a venue: {st:?}");
    // Every entry the base account decided went out (no cap is near) unless the symbol's real position was still
    // open (`Busy`: the previous paper close waits for the divergence rule here), and each got its stop.
    assert!(real.entry_decisions >= 10, "{st:?}");
    let busy = st.refused[5];
    assert_eq!(st.entries + busy, real.entry_decisions, "{st:?}");
    assert_eq!(st.refused.iter().sum::<u64>(), busy, "no other refusal: {st:?}");
    assert!(st.stops_placed >= st.entries, "a protective stop per filled entry (and the breakeven moves)");
    assert_eq!((st.lost, st.decisions_lost, real.undecodable), (0, 0, 0));
    // Stops never trigger on the echo exchange: a paper SoftStop closes the real position at market, a paper stop or
    // take profit leaves it to the divergence rule. Every real position is closed exactly once, but the last one
    // may still be open when the input ends.
    assert!(st.divergence_flattened >= 1, "{st:?}");
    assert_eq!(real.closes + u64::from(real.real_open_at_end > 0), st.entries, "{st:?}");
}

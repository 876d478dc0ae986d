//! The compute stage: owns every symbol's market state and turns events into decisions and records.
//!
//! [`Engine::on_event`] is the single entry point, called on the pinned compute thread for every event in ring
//! order. It reads time only from events (exchange time), never from the wall clock, so a recording replayed
//! through it gives the same bars, counts and decisions every time. Per-symbol state is created on the
//! `SymbolDef` event that announces the symbol (bounded by `max_symbols`), after which nothing allocates.

use crate::compute::market::bars::{BarRange, RangeBars};

use crate::compute::market::book::{Book, BookConfig, BookOutcome};
use crate::compute::market::flow::{FlowConfig, OrderFlow};
use crate::compute::market::profile::{Levels, Profile, ProfileConfig};
use crate::compute::market::regime::{RegimeClassifier, RegimeConfig};
use crate::compute::signal::strategy::{Strategy, StrategyConfig};
use crate::compute::signal::tune::{TuneConfig, Tuner};
use crate::compute::trading::gate::{GateConfig, GateReject, HourExpectancy};
use crate::compute::trading::position::{Entry, ExitFill, PositionConfig};
use crate::compute::trading::risk::{Risk, RiskConfig, RiskReject, SymbolRisk};
use crate::types::clock;
use crate::types::decimal::Scale;
use crate::types::event::{EventKind, MarketEvent, SymbolId};
use crate::types::latency::Stage;
use crate::types::record::{Position, Record, Side, Signal};
use crate::types::symbols::SymbolName;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Book limits.
    pub book: BookConfig,
    /// Bar range for symbols without a fixed range.
    pub bar_range: BarRange,
    /// Fixed bar ranges in price units (e.g. BTCUSDT = "50"), converted to ticks when the tick is known.
    pub fixed_ranges: Vec<(SymbolName, String)>,
    /// Most symbols.
    pub max_symbols: usize,
    /// Order flow.
    pub flow: FlowConfig,
    /// Volume profile.
    pub profile: ProfileConfig,
    /// Regime classifier.
    pub regime: RegimeConfig,
    /// Strategy.
    pub strategy: StrategyConfig,
    /// Burst tuning.
    pub tune: TuneConfig,
    /// Execution gate.
    pub gate: GateConfig,
    /// Risk.
    pub risk: RiskConfig,
    /// Position management.
    pub position: PositionConfig,
    /// A/B variants run as shadow paper traders on the same feed (see `[[variants]]` in the config).
    pub variants: Vec<Variant>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            book: BookConfig::default(),
            bar_range: BarRange::Pct(0.05),
            fixed_ranges: Vec::new(),
            max_symbols: 64,
            flow: FlowConfig::default(),
            profile: ProfileConfig::default(),
            regime: RegimeConfig::default(),
            strategy: StrategyConfig::default(),
            tune: TuneConfig::default(),
            gate: GateConfig::default(),
            risk: RiskConfig::default(),
            position: PositionConfig::default(),
            variants: Vec::new(),
        }
    }
}

/// Book tickers waiting for the depth update with the same `u` (the bookTicker stream usually runs ahead of the
/// depth stream, so the book reaches a ticker's `u` only after the ticker arrived). Fixed capacity; the oldest
/// entry is overwritten.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditQueue {
    items: [(u64, i64, i64, i64, i64); AUDIT_PENDING],
    len: usize,
}

/// Book tickers kept waiting per symbol.
pub const AUDIT_PENDING: usize = 32;

impl AuditQueue {
    fn push(&mut self, t: (u64, i64, i64, i64, i64)) {
        if self.len == AUDIT_PENDING {
            self.items.copy_within(1.., 0);
            self.len -= 1;
        }
        self.items[self.len] = t;
        self.len += 1;
    }

    /// Compares the waiting tickers with `u == last_u` against the book and drops those the book has passed.
    /// Returns (compared, matched).
    fn settle(&mut self, book: &Book) -> (u64, u64) {
        let last_u = book.last_update_id();
        let (mut compared, mut matched) = (0, 0);
        let mut keep = 0;
        for i in 0..self.len {
            let t = self.items[i];
            if t.0 == last_u {
                compared += 1;
                matched += ticker_matches(book, t) as u64;
            } else if t.0 > last_u {
                self.items[keep] = t;
                keep += 1;
            }
        }
        self.len = keep;
        (compared, matched)
    }
}

fn ticker_matches(book: &Book, (_, bp, bq, ap, aq): (u64, i64, i64, i64, i64)) -> bool {
    matches!(book.top(), (Some(b), Some(a)) if b.px == bp && b.qty == bq && a.px == ap && a.qty == aq)
}

/// One paper trader's state for a symbol (the base strategy, or an A/B variant).
#[derive(Debug, Clone)]
pub struct Trader {
    /// Risk state of the symbol.
    pub risk: SymbolRisk,
    /// Expectancy by UTC hour.
    pub hours: HourExpectancy,
    /// The open position.
    pub position: Option<Position>,
    /// Gate rejections by reason ([`GateReject::ALL`] order).
    pub gate_rejects: [u64; 6],
    /// Risk rejections by reason ([`RiskReject::ALL`] order).
    pub risk_rejects: [u64; 6],
    /// Positions opened.
    pub opened: u64,
    /// Positions closed, by final exit reason ([`ExitReason::ALL`] order).
    pub closed_by_reason: [u64; 7],
    /// Exit fills by reason (TP1 partials included).
    pub exits_by_reason: [u64; 7],
    /// Realised net PnL, quote.
    pub pnl: f64,
    /// Signals (long, short) of this trader's strategy.
    pub signals: [u64; 2],
}

impl Trader {
    fn new(lookback: usize, preload: &[(SymbolName, u8, u8, f64)], name: SymbolName, variant: u8) -> Self {
        let mut hours = HourExpectancy::new(lookback);
        for &(n, v, hour, pnl) in preload {
            if n == name && v == variant {
                hours.push(hour as usize, pnl);
            }
        }
        Trader {
            risk: SymbolRisk::default(),
            hours,
            position: None,
            gate_rejects: [0; 6],
            risk_rejects: [0; 6],
            opened: 0,
            closed_by_reason: [0; 7],
            exits_by_reason: [0; 7],
            pnl: 0.0,
            signals: [0; 2],
        }
    }
}

/// The rules one trader follows.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Name ("base" for the main configuration).
    pub name: String,
    /// Strategy thresholds.
    pub strategy: StrategyConfig,
    /// Gate.
    pub gate: GateConfig,
    /// Risk.
    pub risk: RiskConfig,
    /// Exits.
    pub position: PositionConfig,
}

/// Per-symbol counters and state.
#[derive(Debug, Clone)]
pub struct SymbolState {
    /// Name.
    pub name: SymbolName,
    /// Price scale (ticks).
    pub price: Option<Scale>,
    /// Quantity scale (steps).
    pub qty: Option<Scale>,
    /// Local order book.
    pub book: Book,
    /// Range bars.
    pub bars: RangeBars,
    /// Market trades.
    pub trades: u64,
    /// Market traded quantity in steps.
    pub trade_qty: i64,
    /// Non-market prints (never in volume or bars).
    pub non_market_trades: u64,
    /// bookTicker messages.
    pub book_tickers: u64,
    /// bookTicker messages compared with the book when the book's last applied depth `u` equalled theirs
    /// (at arrival, or later when the depth update with that `u` was applied).
    pub audit_compared: u64,
    /// Tickers waiting for their depth update.
    pub audit_queue: AuditQueue,
    /// … of which the book's best bid and ask (price and quantity) agreed.
    pub audit_matched: u64,
    /// Mark price (1e-8) of the last markPriceUpdate.
    pub mark_price_e8: i64,
    /// markPriceUpdate messages.
    pub mark_prices: u64,
    /// Frames of this symbol lost upstream (ring full).
    pub dropped_frames: u64,
    /// Exchange time of the last event.
    pub last_exch_ns: i64,
    /// Order flow.
    pub flow: OrderFlow,
    /// Volume profile.
    pub profile: Profile,
    /// Regime classifier.
    pub regime: RegimeClassifier,
    /// Strategy state (cooldown, tuned burst threshold).
    pub strategy: Strategy,
    /// Burst tuner.
    pub tuner: Tuner,
    /// Profile levels at the last bar close.
    pub levels: Option<Levels>,
    /// Signals by regime (in [`Regime::ALL`] order).
    pub signals_by_regime: [u64; 4],
    /// Tuning runs that changed the threshold.
    pub tuning_changes: u64,
    /// The base strategy's paper trading state (positions, risk, gate and exit counters).
    pub trader: Trader,
    /// A/B variants: each its own strategy state and paper trader on the same feed.
    pub shadows: Vec<(Strategy, Trader)>,
    /// Last market trade price (ticks).
    pub last_px: i64,
    /// Highest market trade id seen (duplicates from overlapping connections are dropped).
    pub last_trade_id: i64,
    /// Duplicated trades dropped.
    pub duplicate_trades: u64,
}

/// Engine-wide counters.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// Events processed.
    pub events: u64,
    /// Records that could not be handed to the persistence ring even after buffering (must stay 0).
    pub records_lost: u64,
    /// Events for a symbol id never announced (must stay 0).
    pub orphan_events: u64,
    /// SymbolDef events beyond `max_symbols`.
    pub symbols_over_limit: u64,
}

/// The compute stage (see the module doc).
pub struct Engine {
    cfg: EngineConfig,
    /// Symbols by id.
    pub symbols: Vec<SymbolState>,
    /// Counters.
    pub stats: EngineStats,
    /// Latency of signal evaluation at bar close (flow, regime, profile levels, strategy).
    pub signal_stage: Stage,
    /// Latency of one tuning slice.
    pub tuning_stage: Stage,
    /// Latency of the gate + risk + entry on a signal.
    pub entry_stage: Stage,
    /// Latency of position management on a price update (when a position is open).
    pub position_stage: Stage,
    /// The paper account.
    pub risk: Risk,
    next_seq: u64,
    preload: Vec<(SymbolName, u8, u8, f64)>,
    base: Variant,
    /// The A/B variants' paper accounts.
    pub variant_risk: Vec<Risk>,
}

/// The verdict for one event (what the caller times as "decision").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to decide.
    None,
    /// The event changed the book.
    Book(BookOutcome),
    /// The event closed a bar.
    BarClosed,
    /// The event closed a bar that produced an entry signal.
    Signal(Side),
}

impl Engine {
    /// An engine with room for `cfg.max_symbols` symbols.
    pub fn new(cfg: EngineConfig) -> Self {
        let symbols = Vec::with_capacity(cfg.max_symbols);
        Engine {
            symbols,
            stats: EngineStats::default(),
            signal_stage: Stage::new("signal"),
            tuning_stage: Stage::new("tuning"),
            entry_stage: Stage::new("entry"),
            position_stage: Stage::new("position"),
            risk: Risk::new(cfg.risk.clone()),
            next_seq: 0,
            preload: Vec::new(),
            base: Variant {
                name: "base".into(),
                strategy: cfg.strategy.clone(),
                gate: cfg.gate.clone(),
                risk: cfg.risk.clone(),
                position: cfg.position.clone(),
            },
            variant_risk: cfg.variants.iter().map(|v| Risk::new(v.risk.clone())).collect(),
            cfg,
        }
    }

    /// The A/B variants' names, in order (trader k + 1).
    pub fn variant_names(&self) -> Vec<&str> {
        self.cfg.variants.iter().map(|v| v.name.as_str()).collect()
    }

    /// Seeds the symbol + UTC hour expectancy state (loaded from the database at start), oldest first:
    /// (symbol, trader, hour, pnl %).
    pub fn preload_hour_expectancy(&mut self, rows: Vec<(SymbolName, u8, u8, f64)>) {
        self.preload = rows;
    }

    /// Closes every open position at the last price (end of a replay), reason `Shutdown`.
    pub fn shutdown(&mut self, out: &mut impl FnMut(Record)) {
        let ts = self.symbols.iter().map(|s| s.last_exch_ns).max().unwrap_or(0);
        for i in 0..self.symbols.len() {
            let s = &mut self.symbols[i];
            let last = s.last_px as f64;
            let ctx = Ctx { book: &s.book, price: s.price, qty: s.qty, name: s.name };
            let traders = std::iter::once((0u8, &mut s.trader, &self.base, &mut self.risk)).chain(
                s.shadows
                    .iter_mut()
                    .zip(self.cfg.variants.iter())
                    .zip(self.variant_risk.iter_mut())
                    .enumerate()
                    .map(|(k, (((_, t), v), r))| (k as u8 + 1, t, v, r)),
            );
            for (variant, t, rules, risk) in traders {
                let Some(mut pos) = t.position else { continue };
                let buy = pos.side == Side::Short;
                let mut fill = |q: i64| exit_price(ctx.book, buy, q, last);
                if let Some(f) = pos.close_all(&rules.position, ts, &mut fill) {
                    on_exit(risk, ctx.name, t, i as SymbolId, variant, &mut pos, f, ts, out);
                }
                t.position = None;
            }
        }
    }

    fn range_for(&self, name: &SymbolName, price: Option<Scale>) -> BarRange {
        if let Some(scale) = price
            && let Some((_, v)) = self.cfg.fixed_ranges.iter().find(|(n, _)| n == name)
            && let Ok(t) = scale.parse(v.as_bytes())
        {
            return BarRange::Ticks(t.max(1));
        }
        self.cfg.bar_range
    }

    fn on_symbol_def(&mut self, e: &MarketEvent, out: &mut impl FnMut(Record)) {
        let id = e.symbol as usize;
        let name = e.symbol_name();
        let price = Scale::unpack(e.p[2]);
        let qty = Scale::unpack(e.p[3]);
        if id == self.symbols.len() {
            if id >= self.cfg.max_symbols {
                self.stats.symbols_over_limit += 1;
                return;
            }
            let range = self.range_for(&name, price);
            self.symbols.push(SymbolState {
                name,
                price,
                qty,
                book: Book::new(self.cfg.book),
                bars: RangeBars::new(range),
                trades: 0,
                trade_qty: 0,
                non_market_trades: 0,
                book_tickers: 0,
                audit_compared: 0,
                audit_matched: 0,
                audit_queue: AuditQueue::default(),
                mark_price_e8: 0,
                mark_prices: 0,
                dropped_frames: 0,
                last_exch_ns: 0,
                flow: OrderFlow::new(self.cfg.flow.clone()),
                profile: Profile::new(self.cfg.profile.clone()),
                regime: RegimeClassifier::new(self.cfg.regime.clone()),
                strategy: Strategy::new(&self.cfg.strategy),
                tuner: Tuner::new(self.cfg.tune.clone()),
                levels: None,
                signals_by_regime: [0; 4],
                tuning_changes: 0,
                trader: Trader::new(self.cfg.gate.lookback_trades, &self.preload, name, 0),
                shadows: self
                    .cfg
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        (
                            Strategy::new(&v.strategy),
                            Trader::new(v.gate.lookback_trades, &self.preload, name, k as u8 + 1),
                        )
                    })
                    .collect(),
                last_px: 0,
                last_trade_id: i64::MIN,
                duplicate_trades: 0,
            });
        } else if id < self.symbols.len() {
            let range = self.range_for(&name, price);
            let s = &mut self.symbols[id];
            if s.price != price && s.bars.current().is_none() {
                s.bars = RangeBars::new(range);
            }
            s.price = price;
            s.qty = qty;
        } else {
            self.stats.orphan_events += 1;
            return;
        }
        if let (Some(price), Some(qty)) = (price, qty) {
            out(Record::Symbol { id: e.symbol, name, price, qty });
        }
    }

    /// Processes one event; records for the persistence thread go to `out`.
    #[inline]
    pub fn on_event(&mut self, e: &MarketEvent, out: &mut impl FnMut(Record)) -> Verdict {
        self.stats.events += 1;
        if e.kind == EventKind::SymbolDef {
            self.on_symbol_def(e, out);
            return Verdict::None;
        }
        let Some(s) = self.symbols.get_mut(e.symbol as usize) else {
            self.stats.orphan_events += 1;
            return Verdict::None;
        };
        if e.exch_ts_ns > s.last_exch_ns {
            s.last_exch_ns = e.exch_ts_ns;
        }
        match e.kind {
            EventKind::Trade => {
                let (px, qty, id, maker) = e.trade();
                if id <= s.last_trade_id {
                    s.duplicate_trades += 1;
                    return Verdict::None;
                }
                s.last_trade_id = id;
                s.trades += 1;
                s.trade_qty += qty;
                let mut verdict = Verdict::None;
                if let Some(bar) = s.bars.on_trade(px, qty, maker, e.exch_ts_ns, id) {
                    // The closed bar is evaluated with the flow and profile as of its last trade; the trade that
                    // closed it belongs to the next bar and is added after.
                    out(Record::Bar { symbol: e.symbol, bar });
                    verdict = Verdict::BarClosed;
                    let t0 = clock::now_ns();
                    let snap = s.flow.on_bar(&bar);
                    let regime = s.regime.on_bar(bar.open, bar.close, bar.last_ts_ns);
                    s.levels = s.profile.levels();
                    let qty_per_step = s.qty.map_or(1.0, |q| q.to_f64(1));
                    let (ev, sig) = s.strategy.on_bar(
                        &self.cfg.strategy,
                        &bar,
                        &snap,
                        s.levels.as_ref(),
                        regime,
                        qty_per_step,
                        s.profile.bin_ticks(),
                    );
                    s.tuner.on_bar(ev);
                    let t1 = clock::now_ns();
                    self.signal_stage.record(t1.saturating_sub(t0));
                    let ctx = Ctx { book: &s.book, price: s.price, qty: s.qty, name: s.name };
                    if let Some(signal) = sig {
                        s.trader.signals[(signal.side == Side::Short) as usize] += 1;
                        s.signals_by_regime[regime.index()] += 1;
                        out(Record::Signal { symbol: e.symbol, signal });
                        verdict = Verdict::Signal(signal.side);
                        let (base, risk, seq) = (&self.base, &mut self.risk, &mut self.next_seq);
                        try_enter(base, risk, seq, &ctx, &mut s.trader, e.symbol, 0, &signal, out);
                        self.entry_stage.record(clock::now_ns().saturating_sub(t1));
                    }
                    // A/B variants: the same bar and features through each variant's own rules and account.
                    for (k, (((strategy, t), v), risk)) in
                        s.shadows.iter_mut().zip(self.cfg.variants.iter()).zip(self.variant_risk.iter_mut()).enumerate()
                    {
                        let (_, vsig) = strategy.on_bar(
                            &v.strategy,
                            &bar,
                            &snap,
                            s.levels.as_ref(),
                            regime,
                            qty_per_step,
                            s.profile.bin_ticks(),
                        );
                        if let Some(signal) = vsig {
                            t.signals[(signal.side == Side::Short) as usize] += 1;
                            try_enter(v, risk, &mut self.next_seq, &ctx, t, e.symbol, k as u8 + 1, &signal, out);
                        }
                    }
                }
                s.last_px = px;
                if s.has_position() {
                    let t0 = clock::now_ns();
                    let (base, variants) = (&self.base, &self.cfg.variants);
                    let (risk, vrisk) = (&mut self.risk, &mut self.variant_risk);
                    manage_all(base, variants, risk, vrisk, s, e.symbol, |_| Some(px as f64), e.exch_ts_ns, out);
                    self.position_stage.record(clock::now_ns().saturating_sub(t0));
                }
                s.flow.on_trade(qty, maker, e.exch_ts_ns);
                s.profile.on_trade(px, qty, e.exch_ts_ns);
                if s.tuner.running() {
                    let t0 = clock::now_ns();
                    if let Some(log) = s.tuner.step(s.strategy.burst_ratio, e.exch_ts_ns) {
                        if log.changed {
                            s.tuning_changes += 1;
                        }
                        s.strategy.burst_ratio = log.tuned_ratio;
                        out(Record::Tuning { symbol: e.symbol, log });
                    }
                    self.tuning_stage.record(clock::now_ns().saturating_sub(t0));
                }
                verdict
            }
            EventKind::NonMarketTrade => {
                s.non_market_trades += 1;
                Verdict::None
            }
            EventKind::Depth | EventKind::Snapshot | EventKind::Levels => {
                let o = s.book.on_event(e);
                if s.book.take_snapshot_request() {
                    out(Record::SnapshotRequest { symbol: e.symbol, name: s.name });
                }
                if matches!(o, BookOutcome::Applied | BookOutcome::Synced) {
                    if s.audit_queue.len > 0 {
                        let (c, m) = s.audit_queue.settle(&s.book);
                        s.audit_compared += c;
                        s.audit_matched += m;
                    }
                    if s.has_position() {
                        // Exit-side touch: the bid for a long, the ask for a short.
                        let t0 = clock::now_ns();
                        let (bid, ask) = s.book.top();
                        let touch = |p: &Position| if p.side == Side::Long { bid } else { ask }.map(|l| l.px as f64);
                        let (base, variants) = (&self.base, &self.cfg.variants);
                        let (risk, vrisk) = (&mut self.risk, &mut self.variant_risk);
                        manage_all(base, variants, risk, vrisk, s, e.symbol, touch, e.exch_ts_ns, out);
                        self.position_stage.record(clock::now_ns().saturating_sub(t0));
                    }
                }
                Verdict::Book(o)
            }
            EventKind::BookTicker => {
                s.book_tickers += 1;
                let (bp, bq, ap, aq, u) = e.book_ticker();
                if s.book.is_synced() {
                    let last_u = s.book.last_update_id();
                    if u == last_u {
                        s.audit_compared += 1;
                        s.audit_matched += ticker_matches(&s.book, (u, bp, bq, ap, aq)) as u64;
                    } else if u > last_u {
                        s.audit_queue.push((u, bp, bq, ap, aq));
                    }
                }
                Verdict::None
            }
            EventKind::MarkPrice => {
                s.mark_prices += 1;
                s.mark_price_e8 = e.p[0];
                Verdict::None
            }
            EventKind::Dropped => {
                s.dropped_frames += e.p[0] as u64;
                s.book.invalidate();
                if s.book.take_snapshot_request() {
                    out(Record::SnapshotRequest { symbol: e.symbol, name: s.name });
                }
                Verdict::Book(BookOutcome::LostSync)
            }
            EventKind::SymbolDef | EventKind::None => Verdict::None,
        }
    }
}

/// Exit fill price: a taker walk of the book when it is synced and deep enough, else the observed price.
fn exit_price(book: &Book, buy: bool, qty: i64, observed: f64) -> f64 {
    if book.is_synced() {
        let (px, filled) = crate::compute::trading::gate::walk(book, buy, qty);
        if filled == qty && px > 0.0 {
            return px;
        }
    }
    observed
}

/// What the trading functions read of a symbol.
struct Ctx<'a> {
    book: &'a Book,
    price: Option<Scale>,
    qty: Option<Scale>,
    name: SymbolName,
}

/// Sizing → gate → risk → entry fill → position (see the module docs of `gate`, `risk` and `position`).
#[allow(clippy::too_many_arguments)]
fn try_enter(
    rules: &Variant,
    risk: &mut Risk,
    next_seq: &mut u64,
    c: &Ctx<'_>,
    t: &mut Trader,
    symbol: SymbolId,
    variant: u8,
    signal: &Signal,
    out: &mut impl FnMut(Record),
) {
    let (Some(ps), Some(qs)) = (c.price, c.qty) else {
        t.gate_rejects[GateReject::BookMissing.index()] += 1;
        return;
    };
    let (tick_value, step_value) = (ps.to_f64(1), qs.to_f64(1));
    let price_quote = signal.price as f64 * tick_value;
    let qty_base = risk.size(price_quote, signal.features.confidence);
    let qty = (qty_base / step_value).floor() as i64;
    if qty <= 0 {
        t.risk_rejects[RiskReject::SizeTooSmall.index()] += 1;
        return;
    }
    let gate = match crate::compute::trading::gate::check(&rules.gate, c.book, &t.hours, signal.side, qty, signal.ts_ns)
    {
        Ok(g) => g,
        Err(r) => {
            t.gate_rejects[r.index()] += 1;
            return;
        }
    };
    let buy = signal.side == Side::Long;
    let (vwap, filled) = crate::compute::trading::gate::walk(c.book, buy, qty);
    if filled < qty || vwap <= 0.0 {
        t.gate_rejects[GateReject::Slippage.index()] += 1;
        return;
    }
    let notional = vwap * tick_value * qty as f64 * step_value;
    if let Err(r) = risk.check(&t.risk, notional, signal.ts_ns) {
        t.risk_rejects[r.index()] += 1;
        return;
    }
    let (bid, ask) = c.book.top();
    let touch = if buy { ask } else { bid }.map_or(0.0, |l| l.px as f64);
    *next_seq += 1;
    let entry = Entry {
        seq: *next_seq,
        side: signal.side,
        ts_ns: signal.ts_ns,
        px: vwap,
        qty,
        touch,
        expected_slippage_bps: gate.expected_slippage_bps,
        regime: signal.features.regime,
        confidence: signal.features.confidence,
        tick_value,
        step_value,
    };
    let pos = Position::open(&rules.position, rules.risk.stop_pct, rules.risk.leverage, &entry);
    risk.on_open(&mut t.risk, notional);
    risk.on_pnl(-pos.fees, signal.ts_ns);
    t.opened += 1;
    t.pnl -= pos.fees;
    out(Record::Opened { symbol, variant, name: c.name, pos, features: signal.features, gate });
    out(Record::Fill {
        symbol,
        variant,
        seq: pos.seq,
        ts_ns: signal.ts_ns,
        reason: None,
        buy,
        qty,
        px: vwap,
        fee: pos.fees,
        pnl: -pos.fees,
    });
    t.position = Some(pos);
}

impl SymbolState {
    /// True when the base trader or any variant holds a position.
    fn has_position(&self) -> bool {
        self.trader.position.is_some() || self.shadows.iter().any(|(_, t)| t.position.is_some())
    }
}

/// Position management for every trader of a symbol (base first, then the variants in order); `price_of` gives
/// the exit-side price a position is checked against (`None`: not checked now).
#[allow(clippy::too_many_arguments)]
fn manage_all(
    base: &Variant,
    variants: &[Variant],
    risk: &mut Risk,
    variant_risk: &mut [Risk],
    s: &mut SymbolState,
    symbol: SymbolId,
    price_of: impl Fn(&Position) -> Option<f64>,
    ts_ns: i64,
    out: &mut impl FnMut(Record),
) {
    let ctx = Ctx { book: &s.book, price: s.price, qty: s.qty, name: s.name };
    if let Some(px) = s.trader.position.as_ref().and_then(&price_of) {
        manage(base, risk, &ctx, &mut s.trader, symbol, 0, px, ts_ns, out);
    }
    for (k, (((_, t), v), r)) in s.shadows.iter_mut().zip(variants).zip(variant_risk.iter_mut()).enumerate() {
        if let Some(px) = t.position.as_ref().and_then(&price_of) {
            manage(v, r, &ctx, t, symbol, k as u8 + 1, px, ts_ns, out);
        }
    }
}

/// Feeds an exit-side price to the trader's open position and books its exits.
#[allow(clippy::too_many_arguments)]
fn manage(
    rules: &Variant,
    risk: &mut Risk,
    c: &Ctx<'_>,
    t: &mut Trader,
    symbol: SymbolId,
    variant: u8,
    px: f64,
    ts_ns: i64,
    out: &mut impl FnMut(Record),
) {
    let Some(mut pos) = t.position else { return };
    let tick = 1.0;
    let (moved_before, limit_hits) = (pos.be_moved, risk.daily_limit_hits);
    let buy = pos.side == Side::Short;
    let mut fills: [Option<ExitFill>; 3] = [None; 3];
    let mut n = 0;
    {
        let book = c.book;
        let mut fill = |q: i64| exit_price(book, buy, q, px);
        pos.on_price(&rules.position, px, tick, ts_ns, &mut fill, &mut |f| {
            if n < fills.len() {
                fills[n] = Some(f);
                n += 1;
            }
        });
    }
    for f in fills.into_iter().take(n).flatten() {
        on_exit(risk, c.name, t, symbol, variant, &mut pos, f, ts_ns, out);
    }
    if pos.be_moved && !moved_before && pos.remaining > 0 {
        out(Record::StopMoved { symbol, variant, name: c.name, stop: pos.stop });
    }
    if risk.daily_limit_hits > limit_hits {
        out(Record::DailyLimitHit { ts_ns, balance: risk.balance });
    }
    t.position = if pos.remaining > 0 { Some(pos) } else { None };
}

#[allow(clippy::too_many_arguments)]
fn on_exit(
    risk: &mut Risk,
    name: SymbolName,
    t: &mut Trader,
    symbol: SymbolId,
    variant: u8,
    pos: &mut Position,
    f: ExitFill,
    ts_ns: i64,
    out: &mut impl FnMut(Record),
) {
    risk.on_pnl(f.pnl, ts_ns);
    t.pnl += f.pnl;
    t.exits_by_reason[f.reason.index()] += 1;
    out(Record::Fill {
        symbol,
        variant,
        seq: pos.seq,
        ts_ns,
        reason: Some(f.reason),
        buy: pos.side == Side::Short,
        qty: f.qty,
        px: f.px,
        fee: f.fee,
        pnl: f.pnl,
    });
    if f.closed {
        risk.on_close(&mut t.risk, pos.pnl, ts_ns);
        t.closed_by_reason[f.reason.index()] += 1;
        let hour = HourExpectancy::hour_of(pos.entry_ts_ns);
        let pct = pos.pnl_pct();
        t.hours.push(hour, pct);
        out(Record::HourPnl { symbol, variant, hour: hour as u8, pnl_pct: pct });
        out(Record::Closed { symbol, variant, name, pos: *pos });
    }
}

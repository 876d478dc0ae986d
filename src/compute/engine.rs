//! The compute stage: owns every symbol's market state and turns events into decisions and records.
//!
//! [`Engine::on_event`] is the single entry point, called on the pinned compute thread for every event in ring
//! order. It reads time only from events (exchange time), never from the wall clock, so a recording replayed
//! through it gives the same bars, counts and decisions every time. Per-symbol state is created on the
//! `SymbolDef` event that announces the symbol (bounded by `max_symbols`), after which nothing allocates.
//!
//! Nothing is dropped without a counter, and every counter is in the summaries (`report::summary`, replay and
//! live): a trade (market or not) whose id was seen is a `duplicate_trades`, an older id never seen an
//! `out_of_order_trades` (told apart by [`TradeIds`], a fixed window of recent ids), and an id never received
//! between the first and the highest seen is a missing trade ([`TradeIds::missing`], `trade_ids_missing` in the
//! live summary and the metrics: Binance's trade and aggTrade ids are consecutive per symbol, so a trade lost on
//! the way, or not sent while a connection was down, is counted, never silent); the book counts its skipped
//! diffs ([`crate::compute::market::book::BookStats`]); events of an unknown symbol are `orphan_events`.

use crate::compute::market::audit::{AuditCounts, Ticker};
use crate::compute::market::bars::{BarRange, RangeBars};
use crate::compute::market::book::{Book, BookConfig, BookOutcome};
use crate::compute::market::flow::{FlowConfig, OrderFlow};
use crate::compute::market::profile::{Levels, Profile, ProfileConfig};
use crate::compute::market::regime::{RegimeClassifier, RegimeConfig};
use crate::compute::signal::strategy::{BarInputs, StrategyConfig};
use crate::compute::signal::tune::{TuneConfig, Tuner};
use crate::compute::trading::gate::GateConfig;
use crate::compute::trading::position::PositionConfig;
use crate::compute::trading::risk::{Risk, RiskConfig};
use crate::compute::trading::trader::{Account, SymbolCtx, TradeTick};
use crate::compute::trading::venue::{HaltCause, Venue};
use crate::types::Adoption;
use crate::types::clock;
use crate::types::decimal::Scale;
use crate::types::event::{EventKind, MarketEvent, SymbolId};
use crate::types::latency::Stage;
use crate::types::order::ExecReport;
use crate::types::record::{Bar, DrainCmd, HourSample, Position, Record, Side};
use crate::types::symbols::SymbolName;

pub(crate) use crate::compute::market::audit::AuditQueue;
pub(crate) use crate::compute::trading::trader::{Trader, Variant};

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
    /// Lets a symbol with no depth stream run the top-of-book market model (replay only; see
    /// [`crate::compute::market::book`]). Off live: there a missing depth stream must block entries.
    pub top_of_book: bool,
    /// No entry on a bar closed by an event received (local time, ns) before this: the replay's `--from` warm-up
    /// (books, bars, flow, profile, regime and tuning run; the signals are counted in `warmup_refused`).
    pub entries_from_local_ns: Option<i64>,
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
            top_of_book: false,
            entries_from_local_ns: None,
        }
    }
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
    /// Tickers the audit could not compare, by reason ([`AuditCounts`] without `compared` and `matched`).
    pub audit_skipped: AuditCounts,
    /// Mark price (1e-8) of the last markPriceUpdate.
    pub mark_price_e8: i64,
    /// markPriceUpdate messages.
    pub mark_prices: u64,
    /// Funding rate (1e-8) of the last markPriceUpdate: the rate that settles at `funding_next_ms`.
    pub funding_rate_e8: i64,
    /// The next funding time the markPriceUpdates announced (ms; 0 before any).
    pub funding_next_ms: i64,
    /// The last funding time settled (ms; 0 before any).
    pub funding_settled_ms: i64,
    /// Funding times settled on the symbol's open positions.
    pub fundings: u64,
    /// Exchange time (ns) of the next thing due before an event is applied: an order arriving at the exchange or a
    /// funding time (`i64::MAX`: nothing).
    pub next_due_ns: i64,
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
    /// Burst tuner (tunes the base account's strategy).
    pub tuner: Tuner,
    /// Profile levels at the last bar close.
    pub levels: Option<Levels>,
    /// Signals of the base account by regime (in [`crate::types::record::Regime::ALL`] order).
    pub signals_by_regime: [u64; 4],
    /// Tuning runs that changed the threshold.
    pub tuning_changes: u64,
    /// One paper trader per account, same index as [`Engine::accounts`] (0 = base, then the variants).
    pub traders: Vec<Trader>,
    /// Last market trade price (ticks).
    pub last_px: i64,
    /// The trade ids seen (market and non-market prints share one id sequence).
    pub trade_ids: TradeIds,
    /// Trades (market or not) dropped because their id was already seen (overlapping connections, a repeated
    /// recording).
    pub duplicate_trades: u64,
    /// Trades (market or not) dropped because their id is older than the highest seen but was never seen (or is
    /// older than the [`TRADE_ID_WINDOW`] ids remembered, where the two cannot be told apart).
    pub out_of_order_trades: u64,
    /// `Some(ticket)` while the symbol drains (dropped by a reselection): no account opens a new position on it.
    pub draining: Option<u64>,
    /// Entry signals of a flat account refused because the symbol was draining (not a gate or risk rejection).
    pub drain_refused: u64,
}

/// Trade ids remembered per symbol, up to the highest seen: enough to tell a copy from a late trade on overlapping
/// connections or a reordered recording.
pub(crate) const TRADE_ID_WINDOW: usize = 1 << 14;

/// What a trade's id says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeIdCheck {
    /// Higher than every id seen (or the first): taken.
    New,
    /// Seen already: dropped as a duplicate.
    Duplicate,
    /// Older than the highest id seen and never seen (or too old to tell): dropped as out of order.
    OutOfOrder,
}

/// The trade ids of one symbol: the first and the highest seen, a bit per id for the [`TRADE_ID_WINDOW`] ids up
/// to the highest (a fixed ring of bits, allocated with the symbol; checking an id allocates nothing), and the ids
/// skipped so far.
#[derive(Debug, Clone)]
pub struct TradeIds {
    first: Option<i64>,
    last: Option<i64>,
    missing: u64,
    bits: Box<[u64; TRADE_ID_WINDOW / 64]>,
}

impl Default for TradeIds {
    fn default() -> Self {
        TradeIds { first: None, last: None, missing: 0, bits: Box::new([0; TRADE_ID_WINDOW / 64]) }
    }
}

impl TradeIds {
    /// The highest id seen.
    pub fn last(&self) -> Option<i64> {
        self.last
    }

    /// Ids between the first and the highest seen that never arrived: each jump past the highest id adds the ids
    /// it skips, and a skipped id that arrives late (out of order, within the window) takes itself back. One older
    /// than the window cannot be told from a copy and is not taken back (the count then errs high, never low).
    pub fn missing(&self) -> u64 {
        self.missing
    }

    #[inline]
    fn slot(id: i64) -> (usize, u64) {
        let k = (id as u64 as usize) & (TRADE_ID_WINDOW - 1);
        (k / 64, 1u64 << (k % 64))
    }

    #[inline]
    fn mark(&mut self, id: i64) -> bool {
        let (w, b) = Self::slot(id);
        let seen = self.bits[w] & b != 0;
        self.bits[w] |= b;
        seen
    }

    /// Classifies `id` and remembers it.
    #[inline]
    pub fn check(&mut self, id: i64) -> TradeIdCheck {
        let Some(last) = self.last else {
            (self.first, self.last) = (Some(id), Some(id));
            self.mark(id);
            return TradeIdCheck::New;
        };
        let ahead = id as i128 - last as i128;
        if ahead > 0 {
            self.missing += (ahead - 1).min(u64::MAX as i128) as u64;
            // Forget the ids that leave the window: their bits are the ones of the ids last+1 ..= id.
            if ahead >= TRADE_ID_WINDOW as i128 {
                self.bits.fill(0);
            } else {
                for x in last + 1..=id {
                    let (w, b) = Self::slot(x);
                    self.bits[w] &= !b;
                }
            }
            self.last = Some(id);
            self.mark(id);
            return TradeIdCheck::New;
        }
        if -ahead >= TRADE_ID_WINDOW as i128 {
            return TradeIdCheck::OutOfOrder;
        }
        if self.mark(id) {
            return TradeIdCheck::Duplicate;
        }
        // Never seen, within the window: counted missing when the highest id jumped past it (unless it is older
        // than the first id seen), so it is no longer missing.
        if self.first.is_some_and(|f| id > f) {
            self.missing = self.missing.saturating_sub(1);
        }
        TradeIdCheck::OutOfOrder
    }
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
    /// Order report and position events received (two per report, [`EventKind::Exec`]; [`EventKind::Position`]).
    pub exec_events: u64,
    /// `ExecMore` events with no `Exec` before them, or whose pair does not decode (must stay 0).
    pub exec_undecodable: u64,
    /// What the compute thread could not hand to its live hooks at once (set when the thread ends).
    pub hooks: HookStats,
    /// Entry signals of a flat account refused because they came before the replay window's start (`--from`).
    pub warmup_refused: u64,
}

/// What the compute thread could not hand to its hooks at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HookStats {
    /// Interval reports dropped (the main thread had not read the previous ones).
    pub reports_dropped: u64,
    /// Trade alerts dropped (alert queue full).
    pub alerts_dropped: u64,
    /// Snapshot requests dropped (control queue full; the book asks again on its next need).
    pub snapshot_requests_dropped: u64,
    /// Position state changes that found the queue full and were sent later.
    pub position_events_deferred: u64,
    /// Position state changes still unsent when the thread ended (the queue was full at shutdown).
    pub position_events_unsent: u64,
    /// Drain commands for a symbol the engine does not know (confirmed drained at once: nothing is open on it).
    pub drains_unknown: u64,
    /// … of which the confirmation did not fit the bounded buffer (that symbol stays subscribed).
    pub drains_unconfirmed: u64,
    /// Synced books marked unsynced because their depth stream was silent for `alerts.feed_down_s` of exchange
    /// time while trades went on (live only; see `compute::thread`).
    pub depth_silent: u64,
}

/// The compute stage (see the module doc).
pub struct Engine {
    cfg: EngineConfig,
    /// Symbols by id.
    pub symbols: Vec<SymbolState>,
    /// Counters.
    pub stats: EngineStats,
    /// Latency of signal evaluation at bar close (flow, regime, profile levels, every account's strategy).
    pub signal_stage: Stage,
    /// Latency of one tuning slice.
    pub tuning_stage: Stage,
    /// Latency of the gate + risk + entry on the signals of a bar.
    pub entry_stage: Stage,
    /// Latency of position management on a price update (when a position is open).
    pub position_stage: Stage,
    /// The paper accounts: 0 = base, then the A/B variants in config order.
    accounts: Vec<Account>,
    next_seq: u64,
    preload: Vec<HourSample>,
    /// The measured order latency (live: REST round trip / 2), ns; `None`: each account's `order_latency_ms`.
    order_latency_ns: Option<i64>,
    /// The real account beside the base paper account (testnet/live); `None` in paper mode and replay.
    venue: Option<Box<Venue>>,
    /// The venue's entries were halted at the last look (the alert goes on the rising edge).
    venue_halted: bool,
    /// Per symbol, the `Exec` half of an order report waiting for its `ExecMore`.
    exec_stash: Vec<Option<MarketEvent>>,
    /// Adopted positions waiting for their symbol's definition ([`Engine::adopt`]).
    adoptions: Vec<Adoption>,
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

/// The [`SymbolCtx`] of symbol `$s` (a `SymbolState`) with id `$id`, borrowing only its book (so that its traders
/// can be borrowed mutably beside it).
macro_rules! ctx {
    ($s:expr, $id:expr, $lat:expr) => {
        SymbolCtx {
            id: $id as SymbolId,
            name: $s.name,
            book: &$s.book,
            price: $s.price,
            qty: $s.qty,
            last_px: $s.last_px,
            latency_ns: $lat,
        }
    };
}

/// Each account with its trader on one symbol (the same index in both lists).
fn seats<'a>(
    accounts: &'a mut [Account],
    traders: &'a mut [Trader],
) -> impl Iterator<Item = (&'a mut Account, &'a mut Trader)> {
    debug_assert_eq!(accounts.len(), traders.len(), "one trader per account on every symbol");
    accounts.iter_mut().zip(traders)
}

impl SymbolState {
    /// The base account's trader.
    pub fn trader(&self) -> &Trader {
        &self.traders[0]
    }

    /// The A/B variants' traders, in config order.
    pub fn variants(&self) -> &[Trader] {
        &self.traders[1..]
    }

    /// True when any account holds a position on the symbol.
    pub fn has_position(&self) -> bool {
        self.traders.iter().any(|t| t.is_active())
    }

    /// Recomputes [`SymbolState::next_due_ns`]: the earliest order arrival of its traders, or the next funding
    /// time when a position could owe it.
    fn refresh_due(&mut self) {
        let orders = self.traders.iter().map(Trader::next_arrival_ns).min().unwrap_or(i64::MAX);
        let funding = if self.has_position() { self.funding_due_ns() } else { i64::MAX };
        self.next_due_ns = orders.min(funding);
    }

    /// The announced funding time not settled yet, ns (`i64::MAX`: none).
    fn funding_due_ns(&self) -> i64 {
        if self.funding_next_ms > self.funding_settled_ms {
            self.funding_next_ms.saturating_mul(1_000_000)
        } else {
            i64::MAX
        }
    }

    /// The last mark price in ticks (`None` before the symbol's price scale is known).
    fn mark_ticks(&self) -> Option<f64> {
        self.price.map(|p| self.mark_price_e8 as f64 / 1e8 / p.to_f64(1))
    }

    /// True when some account holds an open position (an entry in flight does not count).
    fn has_open_position(&self) -> bool {
        self.traders.iter().any(|t| t.position.is_some())
    }

    /// The drain ticket to confirm: the symbol drains and no account holds a position on it.
    pub fn drained(&self) -> Option<u64> {
        self.draining.filter(|_| !self.has_position())
    }

    /// True when a trade with this id is new; a duplicate or out-of-order one is counted and must be dropped.
    #[inline]
    fn take_trade_id(&mut self, id: i64) -> bool {
        match self.trade_ids.check(id) {
            TradeIdCheck::New => true,
            TradeIdCheck::Duplicate => {
                self.duplicate_trades += 1;
                false
            }
            TradeIdCheck::OutOfOrder => {
                self.out_of_order_trades += 1;
                false
            }
        }
    }

    fn add_audit(&mut self, c: AuditCounts) {
        self.audit_compared += c.compared;
        self.audit_matched += c.matched;
        self.audit_skipped.unsynced += c.unsynced;
        self.audit_skipped.passed += c.passed;
        self.audit_skipped.overflow += c.overflow;
    }

    fn on_book_ticker(&mut self, e: &MarketEvent) {
        self.book_tickers += 1;
        let t = Ticker::of(e);
        // Under the top-of-book model the ticker is the book: no clip, and no synced depth book to audit it against
        // (counted as not audited, unsynced).
        if self.book.on_top_of_book((t.bid_px, t.bid_qty), (t.ask_px, t.ask_qty), t.u, e.exch_ts_ns) {
            self.audit_skipped.unsynced += 1;
            return;
        }
        // A ticker ahead of the book clips its top until the diff with its `u` is applied.
        self.book.clip_by_ticker((t.bid_px, t.bid_qty), (t.ask_px, t.ask_qty), t.u);
        let c = self.audit_queue.on_ticker(t, &self.book);
        self.add_audit(c);
    }

    /// Hands the book's snapshot request (if it raised one) to the control thread.
    fn forward_snapshot_request(&mut self, id: usize, out: &mut impl FnMut(Record)) {
        if self.book.take_snapshot_request() {
            out(Record::SnapshotRequest { symbol: id as SymbolId, name: self.name });
        }
    }
}

impl Engine {
    /// An engine with room for `cfg.max_symbols` symbols.
    pub fn new(cfg: EngineConfig) -> Self {
        let base = Variant {
            name: "base".into(),
            strategy: cfg.strategy.clone(),
            gate: cfg.gate.clone(),
            risk: cfg.risk.clone(),
            position: cfg.position.clone(),
        };
        let accounts = std::iter::once(base)
            .chain(cfg.variants.iter().cloned())
            .enumerate()
            .map(|(k, rules)| Account::new(k as u8, rules))
            .collect();
        Engine {
            symbols: Vec::with_capacity(cfg.max_symbols),
            stats: EngineStats::default(),
            signal_stage: Stage::new("signal"),
            tuning_stage: Stage::new("tuning"),
            entry_stage: Stage::new("entry"),
            position_stage: Stage::new("position"),
            accounts,
            next_seq: 0,
            preload: Vec::new(),
            order_latency_ns: None,
            venue: None,
            venue_halted: false,
            exec_stash: vec![None; cfg.max_symbols],
            adoptions: Vec::new(),
            cfg,
        }
    }

    /// Trades the base account's decisions on a real account too (see `compute::trading::venue`): from now on its
    /// traders log their decisions, and order reports drive the venue.
    pub fn attach_venue(&mut self, venue: Venue) {
        for s in &mut self.symbols {
            s.traders[0].log_decisions = true;
        }
        let mut v = Box::new(venue);
        for (id, s) in self.symbols.iter().enumerate() {
            if let (Some(p), Some(q)) = (s.price, s.qty) {
                v.set_spec(id as SymbolId, p.to_f64(1), q.to_f64(1));
            }
        }
        self.venue = Some(v);
    }

    /// Takes over a position a killed run left open (`app::account` checked it against the exchange): it gets the
    /// next sequence number, returned (its database row moves to this run under it), and is managed, by the base
    /// account's trader and the venue, from the moment its symbol's definition arrives. Call after
    /// [`Engine::attach_venue`], before the first event.
    pub fn adopt(&mut self, mut a: Adoption) -> u64 {
        self.next_seq += 1;
        a.seq = self.next_seq;
        self.adoptions.push(a);
        a.seq
    }

    /// The adoptions of symbol `id`, now that its tick and step are known.
    fn apply_adoptions(&mut self, id: usize) {
        let Some(s) = self.symbols.get_mut(id) else { return };
        let (Some(ps), Some(qs)) = (s.price, s.qty) else { return };
        let (tv, sv) = (ps.to_f64(1), qs.to_f64(1));
        while let Some(k) = self.adoptions.iter().position(|a| a.symbol == s.name) {
            let a = self.adoptions.swap_remove(k);
            let pos = Position::adopted(&a, tv, sv);
            s.traders[0].adopt(&mut self.accounts[0], pos, &s.book);
            if let Some(v) = self.venue.as_deref_mut() {
                v.adopt(id as SymbolId, &a.real, &pos);
            }
            log::warn!(
                "{}: adopted position {} ({:?}, {} of {} steps open, stop {:.1} ticks) is managed by this run",
                s.name,
                a.seq,
                pos.side,
                pos.remaining,
                pos.qty,
                pos.stop
            );
            s.refresh_due();
        }
    }

    /// The real account, when one is attached.
    pub fn venue(&self) -> Option<&Venue> {
        self.venue.as_deref()
    }

    /// The real account, when one is attached (the compute loop flushes its backlog once per turn).
    pub fn venue_mut(&mut self) -> Option<&mut Venue> {
        self.venue.as_deref_mut()
    }

    /// Sets the measured order latency (one way, ns; live: the REST round trip / 2 from link health) that every
    /// account's orders use from now on instead of their configured `order_latency_ms`; `None` goes back to the
    /// configured figures. A negative figure is taken as 0.
    pub fn set_order_latency_ns(&mut self, ns: Option<i64>) {
        self.order_latency_ns = ns.map(|n| n.max(0));
    }

    /// The measured order latency in force (see [`Engine::set_order_latency_ns`]).
    pub fn order_latency_ns(&self) -> Option<i64> {
        self.order_latency_ns
    }

    /// The base account's risk state (balance, open positions, daily limit).
    pub fn risk(&self) -> &Risk {
        &self.accounts[0].risk
    }

    /// The A/B variants' accounts, in config order.
    pub fn variant_accounts(&self) -> &[Account] {
        &self.accounts[1..]
    }

    /// The A/B variants' names, in order (account k + 1).
    pub fn variant_names(&self) -> Vec<&str> {
        self.variant_accounts().iter().map(|a| a.rules.name.as_str()).collect()
    }

    /// Seeds the symbol + UTC hour expectancy state (loaded from the database at start), oldest first.
    pub fn preload_hour_expectancy<R: Into<HourSample>>(&mut self, rows: impl IntoIterator<Item = R>) {
        self.preload = rows.into_iter().map(Into::into).collect();
    }

    /// Closes every open position at the last price (end of a replay), reason `Shutdown`.
    pub fn shutdown(&mut self, out: &mut impl FnMut(Record)) {
        let ts = self.symbols.iter().map(|s| s.last_exch_ns).max().unwrap_or(0);
        let lat = self.order_latency_ns;
        for (id, s) in self.symbols.iter_mut().enumerate() {
            let c = ctx!(s, id, lat);
            let last = s.last_px as f64;
            for (account, t) in seats(&mut self.accounts, &mut s.traders) {
                t.close_out(account, &c, last, ts, out);
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

    fn new_symbol(&self, name: SymbolName, price: Option<Scale>, qty: Option<Scale>) -> SymbolState {
        let mut book = Book::new(self.cfg.book);
        if self.cfg.top_of_book {
            book.allow_top_of_book();
        }
        SymbolState {
            name,
            price,
            qty,
            book,
            bars: RangeBars::new(self.range_for(&name, price)),
            trades: 0,
            trade_qty: 0,
            non_market_trades: 0,
            book_tickers: 0,
            audit_compared: 0,
            audit_matched: 0,
            audit_skipped: AuditCounts::default(),
            audit_queue: AuditQueue::default(),
            mark_price_e8: 0,
            mark_prices: 0,
            funding_rate_e8: 0,
            funding_next_ms: 0,
            funding_settled_ms: 0,
            fundings: 0,
            next_due_ns: i64::MAX,
            dropped_frames: 0,
            last_exch_ns: 0,
            flow: OrderFlow::new(self.cfg.flow.clone()),
            profile: Profile::new(self.cfg.profile.clone()),
            regime: RegimeClassifier::new(self.cfg.regime.clone()),
            tuner: Tuner::new(self.cfg.tune.clone()),
            levels: None,
            signals_by_regime: [0; 4],
            tuning_changes: 0,
            traders: self
                .accounts
                .iter()
                .map(|a| {
                    let mut t = Trader::new(a, name, &self.preload);
                    t.log_decisions = a.id == 0 && self.venue.is_some();
                    t
                })
                .collect(),
            last_px: 0,
            trade_ids: TradeIds::default(),
            duplicate_trades: 0,
            out_of_order_trades: 0,
            draining: None,
            drain_refused: 0,
        }
    }

    fn on_symbol_def(&mut self, e: &MarketEvent, out: &mut impl FnMut(Record)) {
        let id = e.symbol as usize;
        let name = e.symbol_name();
        let (price, qty) = (e.symbol_price_scale(), e.symbol_qty_scale());
        if id == self.symbols.len() {
            if id >= self.cfg.max_symbols {
                self.stats.symbols_over_limit += 1;
                return;
            }
            let s = self.new_symbol(name, price, qty);
            self.symbols.push(s);
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
            if let Some(v) = &mut self.venue {
                v.set_spec(e.symbol, price.to_f64(1), qty.to_f64(1));
            }
            out(Record::Symbol { id: e.symbol, name, price, qty });
            if !self.adoptions.is_empty() {
                self.apply_adoptions(id);
            }
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
        let id = e.symbol as usize;
        let Some(s) = self.symbols.get_mut(id) else {
            self.stats.orphan_events += 1;
            return Verdict::None;
        };
        s.last_exch_ns = s.last_exch_ns.max(e.exch_ts_ns);
        let continuation = matches!(e.kind, EventKind::Levels | EventKind::ExecMore);
        if e.exch_ts_ns >= s.next_due_ns && !continuation {
            // Orders that reached the exchange (and a funding time that passed) before this event meet the market
            // as the earlier events left it (`compute::trading::orders`). Never between a message's header and its
            // levels, which carry the header's time: the book would be half applied.
            self.settle_due(id, e.exch_ts_ns, out);
        }
        let verdict = self.dispatch(id, e, out);
        if self.venue.is_some() {
            self.drive_venue(id, e.exch_ts_ns);
            self.alert_halt(e.exch_ts_ns, out);
        }
        let s = &mut self.symbols[id];
        if s.next_due_ns != i64::MAX || s.has_position() {
            s.refresh_due();
        }
        verdict
    }

    /// Hands the base trader's decisions on symbol `id` to the venue, then its per-event checks.
    fn drive_venue(&mut self, id: usize, ts_ns: i64) {
        let (Some(v), Some(s)) = (self.venue.as_deref_mut(), self.symbols.get_mut(id)) else { return };
        let now_ms = ts_ns.div_euclid(1_000_000);
        let t = &mut s.traders[0];
        for d in t.decisions.drain(..) {
            // A refusal is counted by the venue; the paper position goes on as the expected state.
            let _ = v.on_decision(id as SymbolId, &d, now_ms);
        }
        v.stats.decisions_lost = t.decisions_lost;
        v.mark(id as SymbolId, s.last_px);
        v.after_event(id as SymbolId, t.position.as_ref(), now_ms);
    }

    /// The real account's entries became halted: one alert record per halt (the switch can be lifted and raised
    /// again).
    fn alert_halt(&mut self, ts_ns: i64, out: &mut impl FnMut(Record)) {
        let Some(v) = self.venue.as_deref() else { return };
        let halted = v.halted();
        if halted && !self.venue_halted {
            let cause = v.stats.halted.unwrap_or(HaltCause::Switch);
            out(Record::EntriesHalted { exchange_ms: ts_ns.div_euclid(1_000_000), cause });
        }
        self.venue_halted = halted;
    }

    /// An order report's or an exchange position's event.
    fn on_exec_event(&mut self, id: usize, e: &MarketEvent, out: &mut impl FnMut(Record)) {
        self.stats.exec_events += 1;
        let (Some(v), Some(s)) = (self.venue.as_deref_mut(), self.symbols.get(id)) else { return };
        match e.kind {
            EventKind::Exec => self.exec_stash[id] = Some(*e),
            EventKind::ExecMore => match self.exec_stash[id].take().map(|a| ExecReport::from_events(&a, e)) {
                Some(Ok(x)) => {
                    if let Some(decision_ms) = v.on_exec(&x, s.traders[0].position.as_ref()) {
                        out(Record::Exec { report: x, decision_ms });
                    }
                }
                _ => self.stats.exec_undecodable += 1,
            },
            _ => v.on_position(id as SymbolId, e.p[0]),
        }
    }

    /// The arm of [`Engine::on_event`] for the event's kind.
    #[inline]
    fn dispatch(&mut self, id: usize, e: &MarketEvent, out: &mut impl FnMut(Record)) -> Verdict {
        let s = &mut self.symbols[id];
        match e.kind {
            EventKind::Trade => self.on_trade(id, e, out),
            EventKind::NonMarketTrade => {
                if s.take_trade_id(e.trade_id()) {
                    s.non_market_trades += 1;
                }
                Verdict::None
            }
            EventKind::Depth | EventKind::Snapshot | EventKind::Levels => self.on_book(id, e, out),
            EventKind::BookTicker => {
                s.on_book_ticker(e);
                Verdict::None
            }
            EventKind::MarkPrice => {
                s.mark_prices += 1;
                s.mark_price_e8 = e.mark_price_e8();
                s.funding_rate_e8 = e.funding_rate_e8();
                if e.next_funding_ms() > s.funding_settled_ms {
                    s.funding_next_ms = e.next_funding_ms();
                }
                self.mark_positions(id, e.exch_ts_ns, out);
                Verdict::None
            }
            EventKind::Dropped => {
                s.dropped_frames += e.dropped_frames();
                s.book.invalidate();
                s.forward_snapshot_request(id, out);
                Verdict::Book(BookOutcome::LostSync)
            }
            EventKind::Exec | EventKind::ExecMore | EventKind::Position => {
                self.on_exec_event(id, e, out);
                Verdict::None
            }
            EventKind::SymbolDef | EventKind::None => Verdict::None,
        }
    }

    /// Executes what is due on symbol `id` by `ts_ns`, in time order: orders that arrived before the funding time,
    /// the funding (at the last rate and mark announced before it), then the orders that arrived after it.
    fn settle_due(&mut self, id: usize, ts_ns: i64, out: &mut impl FnMut(Record)) {
        let t0 = clock::now_ns();
        let lat = self.order_latency_ns;
        let s = &mut self.symbols[id];
        let funding_ns = s.funding_due_ns();
        let c = ctx!(s, id, lat);
        if funding_ns <= ts_ns {
            let rate = s.funding_rate_e8 as f64 / 1e8;
            let mark = s.mark_ticks().unwrap_or(0.0);
            let mut funded = false;
            for (account, t) in seats(&mut self.accounts, &mut s.traders) {
                t.settle(account, &mut self.next_seq, &c, funding_ns - 1, out);
                funded |= t.position.is_some();
                t.on_funding(account, &c, rate, mark, funding_ns, out);
            }
            s.funding_settled_ms = s.funding_next_ms;
            s.fundings += u64::from(funded);
        }
        for (account, t) in seats(&mut self.accounts, &mut s.traders) {
            t.settle(account, &mut self.next_seq, &c, ts_ns, out);
        }
        self.position_stage.record(clock::now_ns().saturating_sub(t0));
    }

    /// Starts or ends the drain of the symbol `cmd` names; false when no symbol has that name.
    pub fn drain(&mut self, cmd: DrainCmd) -> bool {
        let Some(s) = self.symbols.iter_mut().find(|s| s.name == cmd.name()) else { return false };
        s.draining = match cmd {
            DrainCmd::Drain { ticket, .. } => Some(ticket),
            DrainCmd::Undrain { .. } => None,
        };
        true
    }

    /// A market trade: bars (and at a bar close the signals), positions, flow, profile, tuning.
    fn on_trade(&mut self, id: usize, e: &MarketEvent, out: &mut impl FnMut(Record)) -> Verdict {
        let s = &mut self.symbols[id];
        let (px, qty, trade_id, maker) = (e.trade_price_ticks(), e.trade_qty_steps(), e.trade_id(), e.buyer_is_maker());
        if !s.take_trade_id(trade_id) {
            return Verdict::None;
        }
        s.trades += 1;
        s.trade_qty += qty;
        // The trade consumed the levels beyond its price: no fill from here on takes them (see `market::touch`).
        s.book.clip_by_trade(px, maker, e.exch_ts_ns);
        s.last_px = px;
        if s.has_open_position() {
            // Positions open before this trade: their stops, take profits and the bot's decisions on it.
            let t = TradeTick { px, qty, buyer_is_maker: maker, ts_ns: e.exch_ts_ns };
            self.trade_positions(id, t, out);
        }
        let mut verdict = Verdict::None;
        let s = &mut self.symbols[id];
        if let Some(bar) = s.bars.on_trade(px, qty, maker, e.exch_ts_ns, trade_id) {
            // The closed bar is evaluated with the flow and profile as of its last trade; the trade that closed it
            // belongs to the next bar and is added after. It is the event of the decision: entries leave at its time.
            out(Record::Bar { symbol: e.symbol, bar });
            let warming_up = self.cfg.entries_from_local_ns.is_some_and(|f| e.local_ts_ns < f);
            verdict = self.on_bar_closed(id, &bar, (e.exch_ts_ns, warming_up), out);
        }
        let s = &mut self.symbols[id];
        s.flow.on_trade(qty, maker, e.exch_ts_ns);
        s.profile.on_trade(px, qty, e.exch_ts_ns);
        if s.tuner.running() {
            self.step_tuner(id, e.exch_ts_ns, out);
        }
        verdict
    }

    /// A closed bar: features once, then every account's strategy and, on a signal, its entry. The base account's
    /// evaluation feeds the tuner; its signals are the ones recorded and counted by regime.
    /// `decided` is the deciding event's exchange time and whether it came before the entry window.
    fn on_bar_closed(&mut self, id: usize, bar: &Bar, decided: (i64, bool), out: &mut impl FnMut(Record)) -> Verdict {
        let (decided_ns, warming_up) = decided;
        let mut t = clock::now_ns();
        let s = &mut self.symbols[id];
        let flow = s.flow.on_bar(bar);
        let regime = s.regime.on_bar(bar.open, bar.close, bar.last_ts_ns);
        s.levels = s.profile.levels();
        let qty_per_step = s.qty.map_or(1.0, |q| q.to_f64(1));
        let m = BarInputs {
            bar,
            flow: &flow,
            levels: s.levels.as_ref(),
            regime,
            qty_per_step,
            bin_ticks: s.profile.bin_ticks(),
        };
        let c = ctx!(s, id, self.order_latency_ns);
        let (mut verdict, mut signal_ns, mut entry_ns) = (Verdict::BarClosed, 0, None);
        for (account, trader) in seats(&mut self.accounts, &mut s.traders) {
            let (ev, sig) = trader.on_bar(account, &m);
            let base = account.id == 0;
            if base {
                s.tuner.on_bar(ev);
            }
            let t1 = clock::now_ns();
            signal_ns += t1.saturating_sub(t);
            t = t1;
            let Some(signal) = sig else { continue };
            if base {
                s.signals_by_regime[regime.index()] += 1;
                out(Record::Signal { symbol: c.id, signal });
                verdict = Verdict::Signal(signal.side);
            }
            if s.draining.is_some() {
                // Draining: existing positions run to their exit, none opens.
                s.drain_refused += u64::from(!trader.is_active());
                continue;
            }
            if warming_up {
                self.stats.warmup_refused += u64::from(!trader.is_active());
                continue;
            }
            trader.enter(account, &mut self.next_seq, &c, &signal, decided_ns, out);
            let t2 = clock::now_ns();
            entry_ns = Some(entry_ns.unwrap_or(0) + t2.saturating_sub(t));
            t = t2;
        }
        self.signal_stage.record(signal_ns);
        if let Some(ns) = entry_ns {
            self.entry_stage.record(ns);
        }
        verdict
    }

    /// A market trade to every account's open position, in account order.
    fn trade_positions(&mut self, id: usize, t: TradeTick, out: &mut impl FnMut(Record)) {
        let t0 = clock::now_ns();
        let s = &mut self.symbols[id];
        let c = ctx!(s, id, self.order_latency_ns);
        for (account, tr) in seats(&mut self.accounts, &mut s.traders) {
            if tr.position.is_some() {
                tr.on_trade(account, &mut self.next_seq, &c, t, out);
            }
        }
        self.position_stage.record(clock::now_ns().saturating_sub(t0));
    }

    /// The symbol's latest mark price to every account's trader (the liquidation trigger, position module doc).
    fn mark_positions(&mut self, id: usize, ts_ns: i64, out: &mut impl FnMut(Record)) {
        let t0 = clock::now_ns();
        let s = &mut self.symbols[id];
        let Some(mark) = s.mark_ticks() else { return };
        let c = ctx!(s, id, self.order_latency_ns);
        for (account, t) in seats(&mut self.accounts, &mut s.traders) {
            t.on_mark(account, &c, mark, ts_ns, out);
        }
        self.position_stage.record(clock::now_ns().saturating_sub(t0));
    }

    /// One slice of the running tuning backtest; its result retunes the base account's strategy.
    fn step_tuner(&mut self, id: usize, ts_ns: i64, out: &mut impl FnMut(Record)) {
        let t0 = clock::now_ns();
        let s = &mut self.symbols[id];
        let strategy = &mut s.traders[0].strategy;
        if let Some(log) = s.tuner.step(strategy.burst_ratio, ts_ns) {
            if log.changed {
                s.tuning_changes += 1;
            }
            strategy.burst_ratio = log.tuned_ratio;
            out(Record::Tuning { symbol: id as SymbolId, log });
        }
        self.tuning_stage.record(clock::now_ns().saturating_sub(t0));
    }

    /// A book event: the book, then (on an applied message) the audit and the take profits' queues.
    fn on_book(&mut self, id: usize, e: &MarketEvent, out: &mut impl FnMut(Record)) -> Verdict {
        let s = &mut self.symbols[id];
        let o = s.book.on_event(e);
        s.forward_snapshot_request(id, out);
        if matches!(o, BookOutcome::Applied | BookOutcome::Synced) {
            if !s.audit_queue.is_empty() {
                let c = s.audit_queue.settle(&s.book);
                s.add_audit(c);
            }
            if s.has_open_position() {
                // The take profits' queues can only shorten to what now rests at their price.
                let c = ctx!(s, id, self.order_latency_ns);
                s.traders.iter_mut().for_each(|t| t.on_depth(&c));
            }
        }
        Verdict::Book(o)
    }
}

#[cfg(test)]
#[path = "exec_tape.rs"]
mod exec_tape;

/// Hand-built tapes through [`Engine::on_event`]: the trade, bookTicker and depth arms keep the book's clip.
#[cfg(test)]
mod clip_tape {
    use super::{Engine, EngineConfig};
    use crate::compute::trading::gate::walk;
    use crate::types::event::{EventKind, MarketEvent, flags};
    use crate::types::symbols::SymbolName;

    const T: i64 = 1_680_652_800_000_000_000;
    const MS: i64 = 1_000_000;

    /// An engine with one synced symbol: bids 99.99 x30, 99.98 x20, 99.97 x10; asks 100.00 x10, 100.01 x10; last
    /// applied u = 11 at `T`.
    fn engine() -> Engine {
        let mut en = Engine::new(EngineConfig::default());
        let mut out = |_| {};
        en.on_event(&MarketEvent::symbol_def(0, SymbolName::new(b"BTCUSDT").unwrap(), None, None), &mut out);
        let mut h = MarketEvent::new(EventKind::Snapshot, 0, T, 0, 0);
        h.p[0] = 10;
        h.set_level_counts(3, 2);
        en.on_event(&h, &mut out);
        for (ask, lv) in
            [(false, [(9999, 30), (9998, 20)]), (false, [(9997, 10), (0, 0)]), (true, [(10000, 10), (10001, 10)])]
        {
            let mut e = MarketEvent::new(EventKind::Levels, 0, T, 0, 0);
            let two = lv[1].1 > 0;
            e.flags = flags::SNAPSHOT | if ask { flags::ASK } else { 0 } | if two { flags::TWO_LEVELS } else { 0 };
            e.p = [lv[0].0, lv[0].1, lv[1].0, lv[1].1];
            en.on_event(&e, &mut out);
        }
        en.on_event(&diff(10, 11, 9, T), &mut out);
        assert!(en.symbols[0].book.is_synced());
        en
    }

    fn diff(first: i64, last: i64, prev: i64, ts: i64) -> MarketEvent {
        let mut d = MarketEvent::new(EventKind::Depth, 0, ts, 0, 0);
        d.p = [first, last, prev, 0];
        d
    }

    fn trade(px: i64, id: i64, seller_aggressor: bool, ts: i64) -> MarketEvent {
        let mut e = MarketEvent::new(EventKind::Trade, 0, ts, 0, 0);
        e.p = [px, 1, id, 1];
        e.flags = if seller_aggressor { flags::BUYER_MAKER } else { 0 };
        e
    }

    fn ticker(bid: (i64, i64), ask: (i64, i64), u: i64, ts: i64) -> MarketEvent {
        let mut e = MarketEvent::new(EventKind::BookTicker, 0, ts, 0, 0);
        e.p = [MarketEvent::pack_prices(bid.0, ask.0).unwrap(), bid.1, ask.1, u];
        e
    }

    #[test]
    fn a_trade_below_the_stale_bid_caps_the_next_sell_until_a_diff_at_its_time() {
        let mut en = engine();
        let mut out = |_| {};
        assert_eq!(walk(&en.symbols[0].book, false, 5), (9999.0, 5));
        en.on_event(&trade(9998, 1, true, T + 20 * MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, false, 5), (9998.0, 5), "no higher than the trade");
        en.on_event(&diff(12, 12, 11, T + 10 * MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, false, 5), (9998.0, 5), "a diff older than the trade keeps the clip");
        en.on_event(&diff(13, 13, 12, T + 20 * MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, false, 5), (9999.0, 5), "the diff at the trade's time clears it");
    }

    #[test]
    fn a_ticker_newer_than_the_book_clips_it_until_the_diff_with_its_u() {
        let mut en = engine();
        let mut out = |_| {};
        en.on_event(&ticker((9999, 30), (10000, 10), 11, T + MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, true, 5), (10000.0, 5), "a ticker the book has reached: no clip");
        en.on_event(&ticker((9999, 30), (10001, 3), 13, T + MS), &mut out);
        // 100.00 is gone; at 100.01 the ticker's 3 replace the book's 10, and this book has nothing deeper.
        assert_eq!(walk(&en.symbols[0].book, true, 5), (10001.0, 3));
        en.on_event(&diff(12, 12, 11, T + 2 * MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, true, 3), (10001.0, 3), "u 12 < 13: still clipped");
        en.on_event(&diff(13, 13, 12, T + 3 * MS), &mut out);
        assert_eq!(walk(&en.symbols[0].book, true, 5), (10000.0, 5), "the diff with u 13 clears it");
    }
}

/// Real recordings through the engine event by event: the execution rules hold on every fill.
#[cfg(test)]
#[path = "exec_real.rs"]
mod exec_real;

#[cfg(test)]
mod tests {
    use super::{TRADE_ID_WINDOW, TradeIdCheck as C, TradeIds};
    use std::collections::BTreeMap;

    /// The aggTrade ids of each symbol in the real cryptofeed recording (tests/data), in arrival order.
    fn recorded_agg_ids() -> BTreeMap<String, Vec<i64>> {
        let text = std::fs::read_to_string("tests/data/BINANCE_FUTURES.ws.1.0.txt").unwrap();
        let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for line in text.lines().filter(|l| l.contains(r#""e":"aggTrade""#)) {
            let field = |k: &str| {
                let at = line.find(&format!(r#""{k}":"#)).unwrap() + k.len() + 3;
                line[at..].split([',', '}']).next().unwrap().trim_matches('"').to_string()
            };
            ids.entry(field("s")).or_default().push(field("a").parse().unwrap());
        }
        ids
    }

    #[test]
    fn trade_ids_missing_counts_the_real_ids_that_never_came() {
        let ids = recorded_agg_ids();
        assert_eq!(ids.len(), 4, "{:?}", ids.keys());
        let (mut dropped_total, mut seen_total) = (0, 0);
        for (sym, all) in &ids {
            // The recording itself: every id between its first and its highest, minus those that came.
            let mut t = TradeIds::default();
            all.iter().for_each(|&id| _ = t.check(id));
            let (lo, hi) = (all[0], *all.iter().max().unwrap());
            let distinct = all.iter().collect::<std::collections::BTreeSet<_>>().len() as u64;
            assert_eq!(t.missing(), (hi - lo + 1) as u64 - distinct, "{sym}");
            let base = t.missing();
            // Every third trade after the first lost: each is missing. Copies of what came change nothing.
            let mut t = TradeIds::default();
            let (mut lost, mut kept) = (Vec::new(), 0);
            for (k, &id) in all.iter().enumerate() {
                if k % 3 == 1 && id != hi {
                    lost.push(id);
                    continue;
                }
                t.check(id);
                t.check(id);
                kept += 1;
            }
            assert_eq!(t.missing(), base + lost.len() as u64, "{sym}: {} of {} lost", lost.len(), all.len());
            // They arrive after all (late, out of order): no longer missing.
            for &id in &lost {
                assert_eq!(t.check(id), C::OutOfOrder, "{sym} {id}");
            }
            assert_eq!(t.missing(), base, "{sym}");
            (dropped_total, seen_total) = (dropped_total + lost.len(), seen_total + kept);
        }
        assert!(dropped_total > 10 && seen_total > 20, "{dropped_total} lost, {seen_total} kept");
    }

    #[test]
    fn trade_ids_tell_a_copy_from_a_late_trade() {
        let mut t = TradeIds::default();
        assert_eq!(t.check(100), C::New);
        assert_eq!(t.check(100), C::Duplicate);
        assert_eq!(t.check(103), C::New);
        assert_eq!(t.check(101), C::OutOfOrder, "older, never seen");
        assert_eq!(t.check(101), C::Duplicate, "a late trade seen once is a copy the second time");
        assert_eq!(t.check(102), C::OutOfOrder);
        assert_eq!(t.last(), Some(103));
        // At the window's edge: the oldest id remembered is still known, one older cannot be told apart.
        let w = TRADE_ID_WINDOW as i64;
        assert_eq!(t.check(100 + w - 1), C::New);
        assert_eq!(t.check(100), C::Duplicate);
        assert_eq!(t.check(99), C::OutOfOrder);
        // The bits of the ids that left the window are forgotten: their slots serve the new ids.
        assert_eq!(t.check(100 + w), C::New);
        assert_eq!(t.check(100 + w), C::Duplicate);
        assert_eq!(t.check(101 + w), C::New);
        // A jump past the whole window forgets everything before it.
        assert_eq!(t.check(100 + 3 * w), C::New);
        assert_eq!(t.check(100 + 2 * w + 1), C::OutOfOrder);
        assert_eq!(t.check(100 + 3 * w - 1), C::OutOfOrder);
        // 101 and 102 came late, 104 ..= 100 + w - 2 never (the window's slide cannot make an id come back);
        // older than the first id, or than the window, is not taken back.
        let mut t = TradeIds::default();
        t.check(10);
        t.check(14);
        assert_eq!(t.missing(), 3);
        t.check(5);
        t.check(12);
        t.check(12);
        assert_eq!(t.missing(), 2, "5 is before the first id, 12 came once");
        t.check(14 + w);
        assert_eq!(t.missing(), 2 + w as u64 - 1);
        t.check(11);
        assert_eq!(t.missing(), 2 + w as u64 - 1, "11 is older than the window: cannot be told from a copy");
    }
}

//! The compute thread's loop: drains the event ring through the [`Engine`] until the producer is gone, hands every
//! record to the persistence ring, and reports latency per stage.
//!
//! Contracts:
//! - The compute thread never blocks: when the record ring is full, records wait in a preallocated overflow
//!   buffer; only if that overflows too is a record lost, and that is counted and reported.
//! - The control thread learns, per symbol, whether any account holds a position ([`PositionEvent`]): the state,
//!   not each open and close, is what is sent, so a full queue delays the news (counted) but never loses it.
//! - Latency stamps use the monotonic clock; trading logic never sees them.
//! - A depth stream silent while trades go on (live: [`ComputeHooks::depth_silence_ns`]) fails closed: a trade at
//!   exchange time `T` on a synced book whose last depth message is older than `T − feed_down_s` marks the book
//!   unsynced ([`Book::invalidate`](crate::compute::market::book::Book::invalidate)), so the gate refuses entries
//!   (`book_missing`) until a fresh snapshot resyncs it; the snapshot is requested at once and the mark counted
//!   ([`HookStats::depth_silent`]). The check reads the exchange time the events carry, not the wall clock (the
//!   compute thread never does in trading logic), so it is deterministic and needs no command from the control
//!   thread: the control thread only sees frame counts, not which symbol's depth stream went quiet, and a command
//!   computed from its wall clock would race the events already in the ring. A whole feed that goes silent has no
//!   trade to notice it with: that is the control thread's `feed down` duty. When such an outage (longer than
//!   `feed_down_s`) ends, the first trade may be processed before the first diff (they come on two connections):
//!   the book then resyncs from a snapshot, the fail-closed side of that race. Exchange time runs `--speed` times
//!   faster on the local exchange, so its tests use a `feed_down_s` well above the connections' drift.
//! - The measured order latency (live: [`ComputeHooks::order_latency`]) reaches the engine without a lock or an
//!   allocation: the control thread stores the one-way figure (the REST round trip of its latest link-health check
//!   / 2, ns) in one [`MeasuredLatency`] atomic; the compute thread loads it (relaxed) once per loop turn, so once
//!   before each batch, and calls [`Engine::set_order_latency_ns`] only when it changed, and once more at the end
//!   of input (so a run's last measurement is the figure in force when it ends). A measurement applies from the
//!   next batch on: orders decided before it keep the latency they were sent with. Until the first measurement,
//!   and always in replay (no hook), every account uses its configured `position.order_latency_ms`.
//! - The metrics endpoint (live, `[metrics]` on: [`ComputeHooks::metrics`]) gets a copy of the stage percentiles
//!   and the per-symbol counters every `publish_interval_ms`, between batches, through a [`Handover`]: a buffer of
//!   a fixed pool filled in place (no lock, no allocation); when no buffer is free the copy is skipped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crossbeam_queue::ArrayQueue;

pub(crate) use crate::compute::engine::HookStats;

use crate::compute::engine::{Engine, Verdict};
use crate::handoff::handover::Handover;
use crate::handoff::publish::{AdaptiveWindow, EventSink, IdleMode, Waiter};
use crate::handoff::ring::{Consumer, Producer};
use crate::types::clock;
use crate::types::event::{EventKind, MarketEvent, SymbolId};
use crate::types::latency::{Stage, StageFigures, Summary};
use crate::types::record::{Alert, DrainCmd, ExitReason, FillKind, PositionEvent, Record};
use crate::types::symbols::SymbolName;

/// Live hooks of the compute thread (all optional; replay uses none).
#[derive(Default, Clone)]
pub(crate) struct ComputeHooks {
    /// Where snapshot requests go (the control thread).
    pub snapshot_requests: Option<Arc<ArrayQueue<SymbolName>>>,
    /// Periodic latency reports (to the main thread) and their interval.
    pub reports: Option<(Arc<ArrayQueue<IntervalReport>>, Duration)>,
    /// Alerts: trading records worth a message go here (bounded; a full queue is counted in [`HookStats`]).
    pub alerts: Option<Arc<ArrayQueue<Alert>>>,
    /// Per symbol, a position opened (true: the first open position of any account) or the last one closed
    /// (false), for the control thread's reselection. Lossless: see the module doc.
    pub position_events: Option<Arc<ArrayQueue<PositionEvent>>>,
    /// Drain and undrain commands from the control thread (a symbol dropped by a reselection opens no new
    /// position; its drained state goes back through `position_events`).
    pub drains: Option<Arc<ArrayQueue<DrainCmd>>>,
    /// Exchange-time silence of a symbol's depth stream, ns, after which a trade marks its book unsynced (live:
    /// `alerts.feed_down_s`; replay: none). See the module doc.
    pub depth_silence_ns: Option<i64>,
    /// The measured one-way order latency, written by the control thread (live: REST round trip / 2 of each
    /// link-health check; replay: none, the configured figures). See the module doc.
    pub order_latency: Option<Arc<MeasuredLatency>>,
    /// Periodic copies for the metrics endpoint (live, `[metrics]` on) and their interval. See [`ComputeSnapshot`].
    pub metrics: Option<(Arc<Handover<ComputeSnapshot>>, Duration)>,
}

/// A one-way order latency measured by another thread, handed to the compute thread through one atomic (no lock,
/// no allocation; see the module doc).
#[derive(Debug)]
pub(crate) struct MeasuredLatency(AtomicI64);

impl MeasuredLatency {
    /// Nothing measured yet.
    const NONE: i64 = -1;

    /// No measurement yet.
    pub(crate) fn new() -> Self {
        MeasuredLatency(AtomicI64::new(Self::NONE))
    }

    /// Publishes a one-way latency, ns (a negative figure is taken as 0).
    pub(crate) fn publish(&self, ns: i64) {
        self.0.store(ns.max(0), Ordering::Relaxed);
    }

    /// The latest figure published, ns, if any.
    pub(crate) fn get(&self) -> Option<i64> {
        let ns = self.0.load(Ordering::Relaxed);
        (ns != Self::NONE).then_some(ns)
    }
}

impl Default for MeasuredLatency {
    fn default() -> Self {
        Self::new()
    }
}

/// One symbol's activity in an [`IntervalReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SymbolActivity {
    /// The symbol.
    pub name: SymbolName,
    /// Market trades so far.
    pub trades: u64,
    /// The book is synced.
    pub synced: bool,
    /// Some account holds a position on it.
    pub open_position: bool,
}

/// A latency and activity snapshot published by the compute thread at intervals.
#[derive(Debug, Clone)]
pub(crate) struct IntervalReport {
    /// Per-stage percentiles since start.
    pub latency: Vec<(&'static str, Summary)>,
    /// Events processed.
    pub events: u64,
    /// Per symbol activity, by symbol id.
    pub symbols: Vec<SymbolActivity>,
    /// Hand-over counters so far.
    pub hooks: HookStats,
    /// The measured order latency in force, ns (`None`: the configured figures).
    pub order_latency_ns: Option<i64>,
}

/// Compute-side latency stages, in the interval report's print order.
pub(crate) const COMPUTE_STAGES: usize = 12;

/// One symbol in a [`ComputeSnapshot`] (the base account's trader).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SymbolFigures {
    /// The symbol.
    pub name: SymbolName,
    /// Market trades.
    pub trades: u64,
    /// Trade ids never received between the first and the highest seen (`TradeIds::missing`).
    pub trade_ids_missing: u64,
    /// The book is synced.
    pub synced: bool,
    /// Exchange time of the book's last update, ns since the epoch (0: never).
    pub book_update_ns: i64,
    /// Sequence gaps in the depth stream.
    pub gaps: u64,
    /// Resyncs from a snapshot.
    pub resyncs: u64,
    /// Gate rejections by reason (`GateReject::ALL` order).
    pub gate_rejects: [u64; 6],
    /// Risk rejections by reason (`RiskReject::ALL` order).
    pub risk_rejects: [u64; 6],
    /// Positions opened.
    pub opened: u64,
    /// Positions closed.
    pub closed: u64,
    /// A position is open (any account).
    pub open_position: bool,
    /// Realised net PnL, quote (fees and funding included).
    pub pnl: f64,
}

/// The compute thread's periodic copy for the metrics endpoint, filled in place (no allocation: the symbol list
/// has the capacity of `max_symbols`; symbols beyond it are counted in `symbols_truncated`, never pushed).
#[derive(Debug, Clone)]
pub(crate) struct ComputeSnapshot {
    /// Latency stages in print order.
    pub stages: [StageFigures; COMPUTE_STAGES],
    /// Events processed.
    pub events: u64,
    /// Per symbol, by symbol id.
    pub symbols: Vec<SymbolFigures>,
    /// Symbols left out (more than the list's capacity).
    pub symbols_truncated: u64,
    /// Hand-over counters so far.
    pub hooks: HookStats,
    /// Records lost so far (record ring and overflow buffer both full).
    pub records_lost: u64,
    /// The measured order latency in force, ns (`None`: the configured figures).
    pub order_latency_ns: Option<i64>,
    /// The real account's counters (testnet/live; `None` in paper mode).
    pub venue: Option<crate::compute::trading::venue::VenueStats>,
}

impl ComputeSnapshot {
    /// An empty copy with room for `max_symbols` symbols (allocated here, once).
    pub(crate) fn with_capacity(max_symbols: usize) -> Self {
        ComputeSnapshot {
            stages: [StageFigures::default(); COMPUTE_STAGES],
            events: 0,
            symbols: Vec::with_capacity(max_symbols),
            symbols_truncated: 0,
            hooks: HookStats::default(),
            records_lost: 0,
            order_latency_ns: None,
            venue: None,
        }
    }

    /// Fills the copy in place from the engine and the stages (allocates nothing).
    fn fill(&mut self, engine: &Engine, st: &ComputeStages, hooks: HookStats, records_lost: u64) {
        for (out, (name, h)) in self.stages.iter_mut().zip(st.hists(engine)) {
            *out = StageFigures::of(name, h);
        }
        self.events = engine.stats.events;
        self.symbols.clear();
        let cap = self.symbols.capacity();
        self.symbols_truncated = engine.symbols.len().saturating_sub(cap) as u64;
        for s in engine.symbols.iter().take(cap) {
            let t = s.trader();
            self.symbols.push(SymbolFigures {
                name: s.name,
                trades: s.trades,
                trade_ids_missing: s.trade_ids.missing(),
                synced: s.book.is_synced(),
                book_update_ns: s.book.last_update_ns,
                gaps: s.book.stats.gaps,
                resyncs: s.book.stats.resyncs,
                gate_rejects: t.gate_rejects,
                risk_rejects: t.risk_rejects,
                opened: t.opened,
                closed: t.closed_by_reason.iter().sum(),
                open_position: s.has_position(),
                pnl: t.pnl,
            });
        }
        self.hooks = hooks;
        self.records_lost = records_lost;
        self.order_latency_ns = engine.order_latency_ns();
        // Plain numbers and arrays: the copy allocates nothing.
        self.venue = engine.venue().map(|v| v.stats.clone());
    }
}

/// Per-stage histograms of the compute thread.
pub(crate) struct ComputeStages {
    ring_wait: Stage,
    book: Stage,
    bars: Stage,
    other: Stage,
    compute: Stage,
    /// The trade that closes a bar → its verdict (the whole event, bars through signals and entries).
    decision: Stage,
    tick_to_decision: Stage,
    /// Trades and bookTickers only: the socket read that completed the frame → the book or bars updated.
    tick_trade_bbo: Stage,
}

/// Records bound for the persistence ring, with the preallocated overflow buffer for when the ring is full.
struct RecordSink {
    tx: Producer<Record>,
    overflow: Vec<Record>,
    cap: usize,
    lost: u64,
}

impl RecordSink {
    fn push(&mut self, r: Record) {
        if !self.overflow.is_empty() || self.tx.push(r).is_err() {
            if self.overflow.len() < self.cap {
                self.overflow.push(r);
            } else {
                self.lost += 1;
            }
        }
    }

    /// Hands over records that waited for room, in order.
    fn flush(&mut self) {
        if !self.overflow.is_empty() {
            let mut k = 0;
            while k < self.overflow.len() && self.tx.push(self.overflow[k]).is_ok() {
                k += 1;
            }
            self.overflow.drain(..k);
        }
    }

    /// Final hand-over: the persistence thread drains until the producer is dropped; returns the records lost.
    fn finish(mut self) -> u64 {
        while !self.overflow.is_empty() {
            self.flush();
            if self.tx.is_abandoned() {
                self.lost += self.overflow.len() as u64;
                break;
            }
            std::thread::yield_now();
        }
        self.lost
    }
}

/// Tells the control thread each symbol's open-position state whenever it changes (see the module doc).
struct PositionReporter {
    /// Per symbol id: the state the control thread was last told (open, drained ticket).
    told: Vec<(bool, Option<u64>)>,
    /// Some symbol's state may differ from what was told.
    dirty: bool,
    /// Drains of symbols the engine does not know (so flat): confirmed from here (preallocated, bounded).
    unknown: Vec<PositionEvent>,
}

impl PositionReporter {
    fn new(max_symbols: usize) -> Self {
        PositionReporter { told: Vec::with_capacity(max_symbols), dirty: false, unknown: Vec::with_capacity(64) }
    }

    /// Applies the control thread's drain commands (each changes a state to tell).
    fn drains(&mut self, engine: &mut Engine, q: &ArrayQueue<DrainCmd>, stats: &mut HookStats) {
        while let Some(cmd) = q.pop() {
            self.dirty = true;
            if engine.drain(cmd) {
                continue;
            }
            stats.drains_unknown += 1;
            self.unknown.retain(|e| e.name != cmd.name());
            if let DrainCmd::Drain { name, ticket } = cmd {
                if self.unknown.len() < self.unknown.capacity() {
                    self.unknown.push(PositionEvent { name, open: false, drained: Some(ticket) });
                } else {
                    stats.drains_unconfirmed += 1;
                }
            }
        }
    }

    /// Sends every changed state that fits in the queue; the rest stays due for the next call. Returns how many
    /// stay due.
    fn publish(&mut self, engine: &Engine, q: &ArrayQueue<PositionEvent>, stats: &mut HookStats) -> u64 {
        if !self.dirty {
            return 0;
        }
        let mut due = 0;
        self.dirty = false;
        self.told.resize(engine.symbols.len(), (false, None));
        while let Some(&e) = self.unknown.last() {
            if q.push(e).is_err() {
                self.dirty = true;
                return self.unknown.len() as u64;
            }
            self.unknown.pop();
        }
        for (s, told) in engine.symbols.iter().zip(self.told.iter_mut()) {
            let now = (s.has_position(), s.drained());
            if now == *told {
                continue;
            }
            if q.push(PositionEvent { name: s.name, open: now.0, drained: now.1 }).is_ok() {
                *told = now;
            } else {
                stats.position_events_deferred += 1;
                self.dirty = true;
                due += 1;
            }
        }
        due
    }
}

/// Where a record goes besides persistence.
fn route(hooks: &ComputeHooks, r: &Record, stats: &mut HookStats, positions: &mut PositionReporter) -> bool {
    if let Record::SnapshotRequest { name, .. } = *r
        && let Some(q) = &hooks.snapshot_requests
    {
        if q.push(name).is_err() {
            stats.snapshot_requests_dropped += 1;
        }
        return false;
    }
    if let Some(q) = &hooks.alerts
        && matches!(
            r,
            Record::Opened { .. }
                | Record::Closed { .. }
                | Record::StopMoved { .. }
                | Record::DailyLimitHit { .. }
                | Record::EntriesHalted { .. }
                | Record::Fill { kind: FillKind::Exit(ExitReason::Tp1), .. }
        )
        && q.push(Alert::Trade(*r)).is_err()
    {
        stats.alerts_dropped += 1;
    }
    if matches!(r, Record::Opened { .. } | Record::Closed { .. }) {
        positions.dirty = true;
    }
    true
}

/// The loop's state (see [`run_compute`]).
struct ComputeLoop {
    engine: Engine,
    stages: ComputeStages,
    sink: RecordSink,
    hooks: ComputeHooks,
    stats: HookStats,
    positions: PositionReporter,
    next_report: Instant,
    next_metrics: Instant,
}

impl ComputeLoop {
    /// The loop's state around `engine`, its records going to `tx` (with `overflow_cap` waiting when it is full).
    fn new(engine: Engine, tx: Producer<Record>, overflow_cap: usize, hooks: ComputeHooks) -> Self {
        let next_report = Instant::now() + hooks.reports.as_ref().map_or(Duration::from_secs(3600), |r| r.1);
        ComputeLoop {
            positions: PositionReporter::new(engine.symbols.capacity()),
            engine,
            stages: ComputeStages::new(),
            sink: RecordSink { tx, overflow: Vec::with_capacity(overflow_cap), cap: overflow_cap, lost: 0 },
            hooks,
            stats: HookStats::default(),
            next_report,
            next_metrics: Instant::now(),
        }
    }

    /// Hands a new measured order latency to the engine (one relaxed load; see the module doc).
    fn sync_order_latency(&mut self) {
        if let Some(m) = &self.hooks.order_latency
            && let Some(ns) = m.get()
            && self.engine.order_latency_ns() != Some(ns)
        {
            self.engine.set_order_latency_ns(Some(ns));
        }
    }

    /// Work between batches: the measured order latency, the interval report, waiting records, due position
    /// states.
    fn housekeeping(&mut self) {
        self.sync_order_latency();
        if let Some((q, every)) = &self.hooks.reports
            && Instant::now() >= self.next_report
        {
            self.next_report = Instant::now() + *every;
            if q.push(interval_report(&self.engine, &self.stages, self.stats)).is_err() {
                self.stats.reports_dropped += 1;
            }
        }
        self.publish_metrics();
        self.sink.flush();
        if let Some(q) = &self.hooks.drains {
            self.positions.drains(&mut self.engine, q, &mut self.stats);
        }
        if let Some(q) = &self.hooks.position_events {
            // Whatever stays due is retried on the next loop.
            self.positions.publish(&self.engine, q, &mut self.stats);
        }
    }

    /// The periodic copy for the metrics endpoint, when due (filled in place: no lock, no allocation).
    fn publish_metrics(&mut self) {
        let Some((h, every)) = &self.hooks.metrics else { return };
        let now = Instant::now();
        if now < self.next_metrics {
            return;
        }
        self.next_metrics = now + *every;
        let (engine, stages, stats, lost) = (&self.engine, &self.stages, self.stats, self.sink.lost);
        // A skipped copy is counted by the hand-over and shown by the endpoint.
        let _ = h.publish(|snap| snap.fill(engine, stages, stats, lost));
    }

    /// A trade on a synced book whose depth stream has been silent for longer than `limit_ns` of exchange time:
    /// the book is marked unsynced (the gate then refuses entries) and a snapshot requested (see the module doc).
    fn check_depth_silence(&mut self, e: &MarketEvent, limit_ns: i64) {
        let Some(s) = self.engine.symbols.get_mut(e.symbol as usize) else { return };
        if !s.book.is_synced() || e.exch_ts_ns.saturating_sub(s.book.last_update_ns) <= limit_ns {
            return;
        }
        s.book.invalidate();
        self.stats.depth_silent += 1;
        if s.book.take_snapshot_request() {
            let r = Record::SnapshotRequest { symbol: e.symbol, name: s.name };
            if route(&self.hooks, &r, &mut self.stats, &mut self.positions) {
                self.sink.push(r);
            }
        }
    }

    /// One event through the engine, its records to their places; `t0` is when it started. Returns the end time.
    fn on_event(&mut self, e: &MarketEvent, t0: u64) -> u64 {
        if e.kind == EventKind::Trade
            && let Some(limit) = self.hooks.depth_silence_ns
        {
            self.check_depth_silence(e, limit);
        }
        let (hooks, sink, stats, positions) = (&self.hooks, &mut self.sink, &mut self.stats, &mut self.positions);
        let v = self.engine.on_event(e, &mut |r: Record| {
            if route(hooks, &r, stats, positions) {
                sink.push(r);
            }
        });
        let t1 = clock::now_ns();
        self.stages.record(e, v, t0, t1);
        t1
    }

    /// End of input: closes open positions (reason `Shutdown`) so every position has a complete PnL, tells the
    /// control thread, and hands every record over.
    fn finish(mut self) -> (Engine, ComputeStages) {
        self.sync_order_latency();
        let sink = &mut self.sink;
        self.engine.shutdown(&mut |r: Record| sink.push(r));
        self.positions.dirty = true;
        if let Some(q) = &self.hooks.position_events {
            self.stats.position_events_unsent = self.positions.publish(&self.engine, q, &mut self.stats);
        }
        self.engine.stats.records_lost += self.sink.finish();
        self.engine.stats.hooks = self.stats;
        (self.engine, self.stages)
    }
}

/// How the compute thread idles: the mode of `[pipeline] idle`, the legacy `idle_spins`, adaptive's budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleConfig {
    /// Mode.
    pub mode: IdleMode,
    /// `park`: empty polls spun before parking.
    pub spins: u32,
    /// `adaptive`: % of a core allowed for spinning.
    pub cpu_pct: f64,
}

/// Empty polls between two clock reads while adaptive spins (a clock read costs more than a poll).
const POLLS_PER_CLOCK_READ: u32 = 64;

/// The idle state machine of the compute thread: what one empty poll does under each mode.
struct Idler {
    cfg: IdleConfig,
    polls: u32,
    /// Monotonic ns of the first empty poll of this idle spell (adaptive only; 0 when busy).
    idle_since_ns: u64,
    window: AdaptiveWindow,
    parks: u64,
}

impl Idler {
    fn new(cfg: IdleConfig) -> Self {
        Idler { cfg, polls: 0, idle_since_ns: 0, window: AdaptiveWindow::new(cfg.cpu_pct), parks: 0 }
    }

    /// One empty poll of the event ring: spin, or park on `waiter` until `ready()`.
    #[inline]
    fn on_empty(&mut self, waiter: &Waiter, ready: impl FnOnce() -> bool) {
        self.polls = self.polls.saturating_add(1);
        let spin = match self.cfg.mode {
            IdleMode::Spin => true,
            IdleMode::Park => self.polls < self.cfg.spins,
            IdleMode::Adaptive => {
                if self.idle_since_ns == 0 {
                    self.idle_since_ns = clock::now_ns();
                }
                !self.polls.is_multiple_of(POLLS_PER_CLOCK_READ)
                    || clock::now_ns().saturating_sub(self.idle_since_ns) < self.window.window_ns()
            }
        };
        if spin {
            std::hint::spin_loop();
        } else {
            self.parks += 1;
            waiter.sleep(ready);
        }
    }

    /// Work arrived after an idle spell; `enq_ns` is when the batch's first event was enqueued.
    #[inline]
    fn on_work(&mut self, enq_ns: u64) {
        if self.idle_since_ns != 0 {
            self.window.on_gap(enq_ns.saturating_sub(self.idle_since_ns));
            self.idle_since_ns = 0;
        }
        self.polls = 0;
    }
}

/// The compute thread's loop: drains the event ring through the engine until the producer is gone, then closes
/// open positions (`Shutdown`) and hands every record to the persistence ring.
pub(crate) fn run_compute(
    engine: Engine,
    mut rx: Consumer<MarketEvent>,
    tx: Producer<Record>,
    idle: IdleConfig,
    overflow_cap: usize,
    hooks: ComputeHooks,
    waiter: Arc<Waiter>,
) -> (Engine, ComputeStages) {
    waiter.register();
    let mut c = ComputeLoop::new(engine, tx, overflow_cap, hooks);
    let mut idler = Idler::new(idle);
    loop {
        c.housekeeping();
        if rx.available() == 0 {
            if rx.is_abandoned() && rx.available() == 0 {
                break;
            }
            idler.on_empty(&waiter, || rx.available() > 0 || rx.is_abandoned());
            continue;
        }
        // One clock read per event: the end of one event is the start of the next within a batch.
        let mut t_prev = clock::now_ns();
        let mut first = true;
        rx.pop_batch(256, |e| {
            if first {
                first = false;
                idler.on_work(e.stamp_ns + e.parse_ns as u64);
            }
            t_prev = c.on_event(&e, t_prev)
        });
    }
    match idle.mode {
        IdleMode::Adaptive => log::info!(
            "compute: idle adaptive parked {} times (window {} ns after {} re-sizings)",
            idler.parks,
            idler.window.window_ns(),
            idler.window.resizes()
        ),
        mode => log::info!("compute: idle {} parked {} times", mode.name(), idler.parks),
    }
    c.finish()
}

/// The inline layout (`[pipeline] layout = "inline"`): the engine runs on the network thread, each frame's events
/// going through it straight from the parser, with no ring and no wake-up in between (the tokio bot of the spec, and
/// most peers, work this way; here it keeps every contract of the split layout's compute loop above: the same
/// [`ComputeLoop`], records to the persistence ring, the same hooks and stages). `ring_wait` then measures only the
/// call (parsed → engine entered). The network loop calls [`EventSink::turn`] once per turn (at least every 20 ms,
/// its poll timeout) for the housekeeping the split loop does between batches.
pub struct InlineCompute {
    c: ComputeLoop,
}

impl InlineCompute {
    /// The engine's loop state with no live hooks (as replay runs it), records to `tx` with `overflow_cap` records
    /// waiting when it is full.
    pub fn standalone(engine: Engine, tx: Producer<Record>, overflow_cap: usize) -> Self {
        Self::new(engine, tx, overflow_cap, ComputeHooks::default())
    }

    /// End of input, as [`InlineCompute::finish`]: the engine back.
    pub fn end(self) -> Engine {
        self.finish().0
    }

    /// The engine's loop state, run inline; records go to `tx`.
    pub(crate) fn new(engine: Engine, tx: Producer<Record>, overflow_cap: usize, hooks: ComputeHooks) -> Self {
        InlineCompute { c: ComputeLoop::new(engine, tx, overflow_cap, hooks) }
    }

    /// Events run through the engine so far.
    pub(crate) fn events(&self) -> u64 {
        self.c.engine.stats.events
    }

    /// End of input (see the split loop's end): open positions closed (`Shutdown`), every record handed over.
    pub(crate) fn finish(self) -> (Engine, ComputeStages) {
        log::info!("compute: inline on the network thread (no hand-off)");
        self.c.finish()
    }
}

impl EventSink for InlineCompute {
    #[inline]
    fn publish(&mut self, events: &[MarketEvent]) -> bool {
        let mut t = clock::now_ns();
        for e in events {
            t = self.c.on_event(e, t);
        }
        true
    }

    /// A `Dropped` event goes through the engine at once: the book resyncs before the symbol's next frame.
    fn mark_lost(&mut self, symbol: SymbolId) {
        let mut e = MarketEvent::new(EventKind::Dropped, symbol, 0, 0, clock::now_ns());
        e.p[0] = 1;
        let t = clock::now_ns();
        self.c.on_event(&e, t);
    }

    fn turn(&mut self) {
        self.c.housekeeping();
    }

    fn runs_engine(&self) -> bool {
        true
    }
}

fn interval_report(engine: &Engine, st: &ComputeStages, hooks: HookStats) -> IntervalReport {
    IntervalReport {
        latency: st.summaries(engine),
        events: engine.stats.events,
        symbols: engine
            .symbols
            .iter()
            .map(|s| SymbolActivity {
                name: s.name,
                trades: s.trades,
                synced: s.book.is_synced(),
                open_position: s.has_position(),
            })
            .collect(),
        hooks,
        order_latency_ns: engine.order_latency_ns(),
    }
}

impl ComputeStages {
    fn new() -> Self {
        ComputeStages {
            ring_wait: Stage::new("ring_wait"),
            book: Stage::new("book"),
            bars: Stage::new("bars"),
            other: Stage::new("other"),
            compute: Stage::new("compute"),
            decision: Stage::new("decision"),
            tick_to_decision: Stage::new("tick_to_decision"),
            tick_trade_bbo: Stage::new("tick_trade_bbo"),
        }
    }

    /// Times one event that ran from `t0` to `t1` with verdict `v`.
    fn record(&mut self, e: &MarketEvent, v: Verdict, t0: u64, t1: u64) {
        let enq = e.stamp_ns + e.parse_ns as u64;
        self.ring_wait.record(t0.saturating_sub(enq));
        let d = t1.saturating_sub(t0);
        match e.kind {
            EventKind::Depth | EventKind::Snapshot | EventKind::Levels => self.book.record(d),
            EventKind::Trade => self.bars.record(d),
            _ => self.other.record(d),
        }
        self.compute.record(d);
        if matches!(v, Verdict::BarClosed | Verdict::Signal(_)) {
            self.decision.record(d);
        }
        let trade_bbo = e.kind == EventKind::Trade || e.kind == EventKind::BookTicker;
        if v != Verdict::None || trade_bbo {
            self.tick_to_decision.record(t1.saturating_sub(e.stamp_ns));
        }
        if trade_bbo {
            self.tick_trade_bbo.record(t1.saturating_sub(e.stamp_ns));
        }
    }

    /// Every compute-side stage's histogram, in print order.
    fn hists<'a>(&'a self, engine: &'a Engine) -> [(&'static str, &'a Histogram<u64>); COMPUTE_STAGES] {
        [
            ("ring_wait", &self.ring_wait.hist),
            ("book", &self.book.hist),
            ("bars", &self.bars.hist),
            ("other", &self.other.hist),
            ("signal", &engine.signal_stage.hist),
            ("tuning", &engine.tuning_stage.hist),
            ("entry", &engine.entry_stage.hist),
            ("position", &engine.position_stage.hist),
            ("compute", &self.compute.hist),
            ("decision", &self.decision.hist),
            ("tick_trade_bbo", &self.tick_trade_bbo.hist),
            ("tick_to_decision", &self.tick_to_decision.hist),
        ]
    }

    /// Percentiles of every compute-side stage, in print order.
    pub(crate) fn summaries(&self, engine: &Engine) -> Vec<(&'static str, Summary)> {
        self.hists(engine).into_iter().map(|(name, h)| (name, Summary::of(h))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::engine::EngineConfig;
    use crate::compute::trading::position::{Entry, PositionConfig};
    use crate::types::record::{Position, Regime, Side};

    fn name(s: &str) -> SymbolName {
        SymbolName::new(s.as_bytes()).unwrap()
    }

    fn engine(symbols: &[&str]) -> Engine {
        let mut e = Engine::new(EngineConfig::default());
        for (id, s) in symbols.iter().enumerate() {
            let _ = e.on_event(&MarketEvent::symbol_def(id as _, name(s), None, None), &mut |_| {});
        }
        e
    }

    fn position() -> Position {
        let e = Entry {
            seq: 1,
            side: Side::Long,
            ts_ns: 0,
            bar_ts_ns: 0,
            fill_ts_ns: 0,
            latency_ns: 0,
            px: 100.0,
            qty: 1,
            touch: 100.0,
            expected_slippage_bps: 0.0,
            regime: Regime::RangeLow,
            confidence: 0.5,
            tick_value: 1.0,
            step_value: 1.0,
        };
        Position::open(&PositionConfig::default(), 0.4, 10.0, &e)
    }

    /// A position record as the engine emits it (what marks the state as due).
    fn passes(hooks: &ComputeHooks, rep: &mut PositionReporter, stats: &mut HookStats, symbol: &str) {
        let r = Record::Closed { symbol: 0, variant: 0, name: name(symbol), pos: position() };
        assert!(route(hooks, &r, stats, rep), "position records are persisted too");
    }

    #[test]
    fn position_states_survive_a_full_queue() {
        let q = ArrayQueue::new(1);
        let hooks = ComputeHooks::default();
        let mut e = engine(&["AAAUSDT", "BBBUSDT"]);
        let (mut rep, mut stats) = (PositionReporter::new(8), HookStats::default());
        let event = |s: &str, open: bool| Some(PositionEvent { name: name(s), open, drained: None });
        // Both symbols open a position in one batch; the queue has room for one event.
        e.symbols[0].traders[0].position = Some(position());
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        e.symbols[1].traders[0].position = Some(position());
        passes(&hooks, &mut rep, &mut stats, "BBBUSDT");
        assert_eq!(rep.publish(&e, &q, &mut stats), 1, "the second did not fit: kept due");
        assert_eq!(stats.position_events_deferred, 1, "and counted");
        assert_eq!(q.pop(), event("AAAUSDT", true));
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), event("BBBUSDT", true), "sent on the next loop, with no new record");
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), None, "nothing more to say");
        // A second account's position on A keeps it open until the last one closes.
        let mut second = e.symbols[0].traders[0].clone();
        second.position = Some(position());
        e.symbols[0].traders.push(second);
        e.symbols[0].traders[0].position = None;
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), None, "A still holds a position");
        e.symbols[0].traders[1].position = None;
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), event("AAAUSDT", false));
    }

    #[test]
    fn a_drain_is_confirmed_only_once_the_symbol_is_flat_and_undrained_on_request() {
        let (q, dq) = (ArrayQueue::new(8), ArrayQueue::new(8));
        let hooks = ComputeHooks::default();
        let mut e = engine(&["AAAUSDT", "BBBUSDT"]);
        let (mut rep, mut stats) = (PositionReporter::new(8), HookStats::default());
        let ev = |s: &str, open: bool, drained: Option<u64>| Some(PositionEvent { name: name(s), open, drained });
        e.symbols[0].traders[0].position = Some(position());
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        assert!(dq.push(DrainCmd::Drain { name: name("AAAUSDT"), ticket: 7 }).is_ok());
        rep.drains(&mut e, &dq, &mut stats);
        assert_eq!(e.symbols[0].draining, Some(7));
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), ev("AAAUSDT", true, None), "open: not drained yet");
        assert_eq!(q.pop(), None);
        e.symbols[0].traders[0].position = None;
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        rep.publish(&e, &q, &mut stats);
        assert_eq!(q.pop(), ev("AAAUSDT", false, Some(7)), "flat and draining: confirmed with the drain's ticket");
        assert!(dq.push(DrainCmd::Undrain { name: name("AAAUSDT") }).is_ok());
        rep.drains(&mut e, &dq, &mut stats);
        rep.publish(&e, &q, &mut stats);
        assert_eq!((e.symbols[0].draining, q.pop()), (None, ev("AAAUSDT", false, None)), "undrained");
        // A symbol the engine never saw holds nothing: confirmed at once, even through a full queue.
        assert!(dq.push(DrainCmd::Drain { name: name("ZZZUSDT"), ticket: 9 }).is_ok());
        rep.drains(&mut e, &dq, &mut stats);
        let full = ArrayQueue::new(1);
        assert!(full.push(PositionEvent { name: name("BBBUSDT"), open: false, drained: None }).is_ok());
        assert_eq!(rep.publish(&e, &full, &mut stats), 1, "kept due");
        rep.publish(&e, &q, &mut stats);
        assert_eq!((q.pop(), stats.drains_unknown), (ev("ZZZUSDT", false, Some(9)), 1));
        assert_eq!(q.pop(), None);
    }

    /// The engine a whole (empty) run of the compute loop ends with, given its latency hook.
    fn run_with(latency: Option<Arc<MeasuredLatency>>) -> Engine {
        let (ev_tx, ev_rx) = crate::handoff::ring::ring::<MarketEvent>(16);
        let (rec_tx, _rec_rx) = crate::handoff::ring::ring::<Record>(16);
        let publisher = crate::handoff::publish::Publisher::new(ev_tx, Default::default(), 8);
        let waiter = publisher.waiter();
        drop(publisher); // The producer is gone: the loop ends at once.
        let hooks = ComputeHooks { order_latency: latency, ..Default::default() };
        run_compute(
            Engine::new(EngineConfig::default()),
            ev_rx,
            rec_tx,
            IdleConfig { mode: IdleMode::Park, spins: 1, cpu_pct: 20.0 },
            16,
            hooks,
            waiter,
        )
        .0
    }

    #[test]
    fn the_measured_order_latency_reaches_the_engine_and_replay_keeps_the_configured_one() {
        assert_eq!(run_with(None).order_latency_ns(), None, "replay: no hook, the configured figures");
        let m = Arc::new(MeasuredLatency::new());
        assert_eq!((m.get(), run_with(Some(m.clone())).order_latency_ns()), (None, None), "nothing measured yet");
        m.publish(21_500);
        assert_eq!(run_with(Some(m.clone())).order_latency_ns(), Some(21_500));
        m.publish(-3);
        assert_eq!((m.get(), run_with(Some(m)).order_latency_ns()), (Some(0), Some(0)), "never negative");
    }

    #[test]
    fn full_hook_queues_are_counted() {
        let snaps = Arc::new(ArrayQueue::new(1));
        let alerts = Arc::new(ArrayQueue::new(1));
        let hooks =
            ComputeHooks { snapshot_requests: Some(snaps.clone()), alerts: Some(alerts.clone()), ..Default::default() };
        let (mut rep, mut stats) = (PositionReporter::new(8), HookStats::default());
        let snap = Record::SnapshotRequest { symbol: 0, name: name("AAAUSDT") };
        assert!(!route(&hooks, &snap, &mut stats, &mut rep), "snapshot requests go to the control thread only");
        assert!(!route(&hooks, &snap, &mut stats, &mut rep));
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        passes(&hooks, &mut rep, &mut stats, "AAAUSDT");
        assert_eq!((stats.snapshot_requests_dropped, stats.alerts_dropped), (1, 1));
        assert_eq!((snaps.len(), alerts.len()), (1, 1));
    }
}

//! The compute thread's loop: drains the event ring through the [`Engine`] until the producer is gone, hands every
//! record to the persistence ring, and reports latency per stage.
//!
//! Contracts:
//! - The compute thread never blocks: when the record ring is full, records wait in a preallocated overflow
//!   buffer; only if that overflows too is a record lost, and that is counted and reported.
//! - Latency stamps use the monotonic clock; trading logic never sees them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::compute::engine::{Engine, Verdict};
use crate::handoff::publish::Waiter;
use crate::handoff::ring::{Consumer, Producer};
use crate::types::clock;
use crate::types::event::{EventKind, MarketEvent};
use crate::types::latency::{Stage, Summary};
use crate::types::record::{Alert, ExitReason, PositionEvent, Record};
use crate::types::symbols::SymbolName;

/// Live hooks of the compute thread (all optional; replay uses none).
#[derive(Default, Clone)]
pub struct ComputeHooks {
    /// Where snapshot requests go (the control thread).
    pub snapshot_requests: Option<Arc<ArrayQueue<SymbolName>>>,
    /// Periodic latency reports (to the main thread) and their interval.
    pub reports: Option<(Arc<ArrayQueue<IntervalReport>>, Duration)>,
    /// Alerts: trading records worth a message go here (bounded; a full queue is counted by the alert side).
    pub alerts: Option<Arc<ArrayQueue<Alert>>>,
    /// Positions opened (true) and closed (false) by symbol, for the control thread's reselection.
    pub position_events: Option<Arc<ArrayQueue<PositionEvent>>>,
}

/// A latency and activity snapshot published by the compute thread at intervals.
#[derive(Debug, Clone)]
pub struct IntervalReport {
    /// Per-stage percentiles since start.
    pub latency: Vec<(&'static str, Summary)>,
    /// Events processed.
    pub events: u64,
    /// Per symbol: (name, trades, synced, open position).
    pub symbols: Vec<(SymbolName, u64, bool, bool)>,
}

/// Per-stage histograms of the compute thread.
pub struct ComputeStages {
    ring_wait: Stage,
    book: Stage,
    bars: Stage,
    other: Stage,
    compute: Stage,
    tick_to_decision: Stage,
}

/// The compute thread's loop: drains the event ring through the engine until the producer is gone, then closes
/// open positions (`Shutdown`) and hands every record to the persistence ring.
pub fn run_compute(
    mut engine: Engine,
    mut rx: Consumer<MarketEvent>,
    mut tx: Producer<Record>,
    idle_spins: u32,
    overflow_cap: usize,
    hooks: ComputeHooks,
    waiter: Arc<Waiter>,
) -> (Engine, ComputeStages) {
    waiter.register();
    let mut st = ComputeStages {
        ring_wait: Stage::new("ring_wait"),
        book: Stage::new("book"),
        bars: Stage::new("bars"),
        other: Stage::new("other"),
        compute: Stage::new("compute"),
        tick_to_decision: Stage::new("tick_to_decision"),
    };
    let mut overflow: Vec<Record> = Vec::with_capacity(overflow_cap);
    let mut idle = 0u32;
    let mut lost = 0u64;
    let mut next_report = Instant::now() + hooks.reports.as_ref().map_or(Duration::from_secs(3600), |r| r.1);
    loop {
        if let Some((q, every)) = &hooks.reports
            && Instant::now() >= next_report
        {
            next_report = Instant::now() + *every;
            let _ = q.push(interval_report(&engine, &st));
        }
        // Hand over records that waited for room.
        if !overflow.is_empty() {
            let mut k = 0;
            while k < overflow.len() && tx.push(overflow[k]).is_ok() {
                k += 1;
            }
            overflow.drain(..k);
        }
        if rx.available() == 0 {
            if rx.is_abandoned() && rx.available() == 0 {
                break;
            }
            idle += 1;
            if idle < idle_spins {
                std::hint::spin_loop();
            } else {
                waiter.sleep(|| rx.available() > 0 || rx.is_abandoned());
            }
            continue;
        }
        idle = 0;
        // One clock read per event: the end of one event is the start of the next within a batch.
        let mut t_prev = clock::now_ns();
        rx.pop_batch(256, |e| {
            let t0 = t_prev;
            let mut sink = |r: Record| {
                if !overflow.is_empty() || tx.push(r).is_err() {
                    if overflow.len() < overflow_cap {
                        overflow.push(r);
                    } else {
                        lost += 1;
                    }
                }
            };
            let v = engine.on_event(&e, &mut |r: Record| {
                if let Record::SnapshotRequest { name, .. } = r
                    && let Some(q) = &hooks.snapshot_requests
                {
                    if q.push(name).is_err() {
                        // The control thread is behind; the book keeps asking on its next need.
                    }
                    return;
                }
                if let Some(q) = &hooks.alerts
                    && matches!(
                        r,
                        Record::Opened { .. }
                            | Record::Closed { .. }
                            | Record::StopMoved { .. }
                            | Record::DailyLimitHit { .. }
                            | Record::Fill { reason: Some(ExitReason::Tp1), .. }
                    )
                {
                    let _ = q.push(Alert::Trade(r));
                }
                if let Record::Opened { name, .. } | Record::Closed { name, .. } = r
                    && let Some(q) = &hooks.position_events
                {
                    let _ = q.push(PositionEvent { name, open: matches!(r, Record::Opened { .. }) });
                }
                sink(r)
            });
            let t1 = clock::now_ns();
            t_prev = t1;
            let enq = e.stamp_ns + e.parse_ns as u64;
            st.ring_wait.record(t0.saturating_sub(enq));
            let d = t1.saturating_sub(t0);
            match e.kind {
                EventKind::Depth | EventKind::Snapshot | EventKind::Levels => st.book.record(d),
                EventKind::Trade => st.bars.record(d),
                _ => st.other.record(d),
            }
            st.compute.record(d);
            if v != Verdict::None || e.kind == EventKind::Trade || e.kind == EventKind::BookTicker {
                st.tick_to_decision.record(t1.saturating_sub(e.stamp_ns));
            }
        });
    }
    engine.stats.records_lost += lost;
    // End of input: close open positions (reason Shutdown) so every position has a complete PnL.
    let mut lost = 0u64;
    engine.shutdown(&mut |r: Record| {
        if !overflow.is_empty() || tx.push(r).is_err() {
            if overflow.len() < overflow_cap {
                overflow.push(r);
            } else {
                lost += 1;
            }
        }
    });
    engine.stats.records_lost += lost;
    // Final hand-over: the persistence thread drains until we drop the producer.
    while !overflow.is_empty() {
        let mut k = 0;
        while k < overflow.len() && tx.push(overflow[k]).is_ok() {
            k += 1;
        }
        overflow.drain(..k);
        if tx.is_abandoned() {
            engine.stats.records_lost += overflow.len() as u64;
            break;
        }
        std::thread::yield_now();
    }
    (engine, st)
}

fn interval_report(engine: &Engine, st: &ComputeStages) -> IntervalReport {
    IntervalReport {
        latency: st.summaries(engine),
        events: engine.stats.events,
        symbols: engine
            .symbols
            .iter()
            .map(|s| (s.name, s.trades, s.book.is_synced(), s.trader().position.is_some()))
            .collect(),
    }
}

impl ComputeStages {
    /// Percentiles of every compute-side stage, in print order.
    pub fn summaries(&self, engine: &Engine) -> Vec<(&'static str, Summary)> {
        vec![
            ("ring_wait", Summary::of(&self.ring_wait.hist)),
            ("book", Summary::of(&self.book.hist)),
            ("bars", Summary::of(&self.bars.hist)),
            ("other", Summary::of(&self.other.hist)),
            ("signal", Summary::of(&engine.signal_stage.hist)),
            ("tuning", Summary::of(&engine.tuning_stage.hist)),
            ("entry", Summary::of(&engine.entry_stage.hist)),
            ("position", Summary::of(&engine.position_stage.hist)),
            ("compute", Summary::of(&self.compute.hist)),
            ("tick_to_decision", Summary::of(&self.tick_to_decision.hist)),
        ]
    }
}

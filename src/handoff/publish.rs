//! Publishing parsed frames into the event ring (network or recording thread → compute thread).
//!
//! Contracts:
//! - The source publishes each frame's events with one all-or-nothing push. When the event ring is full, replay
//!   spins (a file can wait and nothing may be lost); live applies [`FullPolicy`]: `drop-and-resync` drops the frame,
//!   counts it and tells the compute thread (a `Dropped` event) to resync that symbol's book.
//! - The consumer parks when idle ([`Waiter`]); the publisher wakes it after a push, and a wake-up is never lost.

use std::sync::Arc;
use std::time::Duration;

use crate::handoff::ring::{Producer, PushSliceError};
use crate::types::clock;
use crate::types::event::{EventKind, MarketEvent, SymbolId};

/// What the network thread does when the ring to the compute thread has no room for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Drop the frame, count it, and mark its symbol unsynced so the book resyncs from a new snapshot
    /// (live default: the socket is never stalled).
    #[default]
    DropAndResync,
    /// Spin until there is room (replay always uses this: a file can wait, and nothing may be lost).
    Spin,
}

/// Counters of the source (feed) side.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedStats {
    /// Lines read.
    pub lines: u64,
    /// Lines that are not data (connection, configuration, blank).
    pub skipped_lines: u64,
    /// Lines in no known shape.
    pub bad_lines: u64,
    /// Lines longer than the frame limit (skipped).
    pub oversize_lines: u64,
    /// Frames whose push found the event ring full.
    pub ring_full: u64,
    /// Frames dropped on a full ring (drop-and-resync policy).
    pub frames_dropped: u64,
    /// Events pushed.
    pub events: u64,
}

impl FeedStats {
    /// Malformed input that never reached the parser.
    pub fn malformed_lines(&self) -> u64 {
        self.bad_lines + self.oversize_lines
    }
}

/// How the compute thread waits for events without burning a core: it spins `idle_spins` empty polls, then
/// announces that it sleeps and parks (at most 1 ms); the producer unparks it after a push when it announced so.
/// The flag is re-checked after being set, so a wake-up is never lost (and the timeout bounds any surprise).
#[derive(Default)]
pub struct Waiter {
    sleeping: std::sync::atomic::AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Waiter {
    /// Registers the consumer thread (call on that thread).
    pub fn register(&self) {
        // Ignoring a second registration is right: the first consumer thread stays the one woken (there is one).
        let _ = self.thread.set(std::thread::current());
    }

    /// Producer side: wakes the consumer if it sleeps.
    #[inline]
    pub fn wake(&self) {
        if self.sleeping.load(std::sync::atomic::Ordering::SeqCst)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }

    /// Consumer side: sleeps until woken or 1 ms passed, unless `ready()` says there is work.
    pub fn sleep(&self, ready: impl FnOnce() -> bool) {
        self.sleeping.store(true, std::sync::atomic::Ordering::SeqCst);
        if !ready() {
            std::thread::park_timeout(Duration::from_millis(1));
        }
        self.sleeping.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How the compute thread waits when the event ring is empty (`[pipeline] idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum IdleMode {
    /// Busy-spin forever (one core at 100 %; for a box with a core isolated for the compute thread).
    Spin,
    /// Spin for a window sized from the recent idle gaps within `idle_cpu_pct`, then park ([`AdaptiveWindow`]).
    Adaptive,
    /// Spin `idle_spins` empty polls (the legacy key), then park until the network thread's push wakes it.
    #[default]
    Park,
}

impl IdleMode {
    /// Name as in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            IdleMode::Spin => "spin",
            IdleMode::Adaptive => "adaptive",
            IdleMode::Park => "park",
        }
    }
}

/// Which thread runs the engine in a live run (`[pipeline] layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The network thread parses into the event ring; a compute thread of its own runs the engine.
    Split,
    /// The network thread runs the engine on each parsed frame itself: no ring, no wake-up in between (the live
    /// default: on the loopback measurements of PERF.md it decides 3–5x sooner than `split` in `park` mode, at less
    /// CPU).
    #[default]
    Inline,
}

impl Layout {
    /// Name as in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Split => "split",
            Layout::Inline => "inline",
        }
    }
}

/// Idle gaps kept per re-sizing of the adaptive window (the window is re-sized every `GAPS` batches).
pub(crate) const GAPS: usize = 64;

/// Longest adaptive spin window: past it the park's 1 ms timeout bounds the wait anyway.
pub(crate) const MAX_WINDOW_NS: u64 = 1_000_000;

/// The adaptive idle policy as a pure function of the observed idle gaps (gap in, window out; no clock here).
///
/// A gap is the time from the compute thread running out of events to the next event's enqueue. Spinning for a
/// window `w` catches every gap `<= w` without a wake-up and costs `min(gap, w)` of CPU per gap. Every [`GAPS`]
/// gaps the window becomes the largest of those gaps whose spin cost over the last [`GAPS`] gaps stays within
/// `cpu_pct` % of the idle time (capped at [`MAX_WINDOW_NS`]); 0 when even the shortest gap would exceed it.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveWindow {
    gaps_ns: [u64; GAPS],
    n: usize,
    window_ns: u64,
    cpu_pct: f64,
    resizes: u64,
}

impl AdaptiveWindow {
    /// A policy with a budget of `cpu_pct` % of a core for spinning; the first window (before any gap) is
    /// [`MAX_WINDOW_NS`] / 20, 50 µs.
    pub(crate) fn new(cpu_pct: f64) -> Self {
        AdaptiveWindow { gaps_ns: [0; GAPS], n: 0, window_ns: MAX_WINDOW_NS / 20, cpu_pct, resizes: 0 }
    }

    /// The current spin window, ns.
    #[inline]
    pub(crate) fn window_ns(&self) -> u64 {
        self.window_ns
    }

    /// Times the window was re-sized.
    pub(crate) fn resizes(&self) -> u64 {
        self.resizes
    }

    /// Records one idle gap; every [`GAPS`] gaps re-sizes the window.
    #[inline]
    pub(crate) fn on_gap(&mut self, gap_ns: u64) {
        self.gaps_ns[self.n] = gap_ns;
        self.n += 1;
        if self.n == GAPS {
            self.n = 0;
            self.window_ns = Self::size(&mut self.gaps_ns, self.cpu_pct);
            self.resizes += 1;
        }
    }

    /// The largest gap `w` of `gaps` with `sum(min(g, w)) <= cpu_pct % * sum(g)`, capped (sorts `gaps`).
    fn size(gaps: &mut [u64; GAPS], cpu_pct: f64) -> u64 {
        gaps.sort_unstable();
        let total: u64 = gaps.iter().sum();
        let budget = total as f64 * cpu_pct / 100.0;
        let mut best = 0;
        let mut below = 0u64; // Sum of the gaps shorter than gaps[i].
        for (i, &w) in gaps.iter().enumerate() {
            let cost = below + w * (GAPS - i) as u64;
            if cost as f64 > budget || w > MAX_WINDOW_NS {
                break;
            }
            best = w;
            below += w;
        }
        best
    }
}

/// Where the network thread hands each parsed frame: the event ring to a compute thread ([`Publisher`], the split
/// layout), or the engine itself on the network thread (the inline layout, `compute::thread::InlineCompute`).
///
/// Contract: [`EventSink::publish`] gets one frame's events at once and returns false only when whatever consumes
/// them is gone (the source stops); [`EventSink::mark_lost`] makes the symbol's book resync before its next frame;
/// [`EventSink::turn`] is called once per turn of the network loop, after the readiness events.
pub trait EventSink {
    /// Hands over one frame's events. False: the consumer is gone, stop the source.
    #[must_use = "false means the consumer is gone: stop the source"]
    fn publish(&mut self, events: &[MarketEvent]) -> bool;
    /// A symbol's data was lost (its connection dropped): its book must resync before its next frame.
    fn mark_lost(&mut self, symbol: SymbolId);
    /// Once per network loop turn: pending notices (split) or the engine's housekeeping (inline).
    fn turn(&mut self);
    /// True when `publish` runs the engine itself (no hand-off): the network thread then stamps no `enqueue` stage,
    /// since that time is the engine's and is reported as `compute`.
    fn runs_engine(&self) -> bool {
        false
    }
    /// The hand-off's counters (ring full, frames dropped); zero when there is no ring (inline).
    fn feed_stats(&self) -> FeedStats {
        FeedStats::default()
    }
}

impl EventSink for Publisher {
    #[inline]
    fn publish(&mut self, events: &[MarketEvent]) -> bool {
        Publisher::publish(self, events)
    }

    fn mark_lost(&mut self, symbol: SymbolId) {
        Publisher::mark_lost(self, symbol)
    }

    fn feed_stats(&self) -> FeedStats {
        self.stats
    }

    fn turn(&mut self) {
        // Pending drop notices go out as soon as there is room. An empty publish always reports the consumer as
        // present (a gone consumer is seen on the next frame's publish), so its result carries nothing here.
        let _ = Publisher::publish(self, &[]);
    }
}

/// Publishes parsed frames into the event ring under a [`FullPolicy`].
pub struct Publisher {
    waiter: Arc<Waiter>,
    tx: Producer<MarketEvent>,
    policy: FullPolicy,
    pending_drops: Vec<u32>,
    any_pending: bool,
    /// Counters (ring_full, frames_dropped, events).
    pub stats: FeedStats,
}

impl Publisher {
    /// A publisher over `tx` for up to `max_symbols` symbols.
    pub fn new(tx: Producer<MarketEvent>, policy: FullPolicy, max_symbols: usize) -> Self {
        Publisher {
            waiter: Arc::new(Waiter::default()),
            tx,
            policy,
            pending_drops: vec![0; max_symbols],
            any_pending: false,
            stats: FeedStats::default(),
        }
    }

    /// The waiter the consumer sleeps on.
    pub fn waiter(&self) -> Arc<Waiter> {
        self.waiter.clone()
    }

    #[must_use = "false means the ring had no room: the notices stay pending"]
    fn flush_drops(&mut self) -> bool {
        if !self.any_pending {
            return true;
        }
        for (id, n) in self.pending_drops.iter_mut().enumerate() {
            if *n == 0 {
                continue;
            }
            let mut e = MarketEvent::new(EventKind::Dropped, id as SymbolId, 0, 0, clock::now_ns());
            e.p[0] = *n as i64;
            if self.tx.push(e).is_err() {
                return false;
            }
            *n = 0;
        }
        self.any_pending = false;
        self.waiter.wake();
        true
    }

    /// Pushes one frame's events. Returns false when the consumer is gone (the source should stop).
    #[inline]
    #[must_use = "false means the consumer is gone: stop the source"]
    pub fn publish(&mut self, events: &[MarketEvent]) -> bool {
        if events.is_empty() {
            // Nothing to push, but pending drop notices go out as soon as there is room; without room they stay
            // pending for the next call, so the result needs no handling here.
            let _ = self.flush_drops();
            return true;
        }
        let mut counted = false;
        let mut spins = 0u32;
        loop {
            if self.flush_drops() {
                match self.tx.push_slice(events) {
                    Ok(()) => {
                        self.stats.events += events.len() as u64;
                        self.waiter.wake();
                        return true;
                    }
                    Err(PushSliceError::TooLarge(_)) => {
                        // Cannot happen: the ring is validated to hold the largest frame. Treat as a drop.
                        self.drop_frame(events);
                        return true;
                    }
                    Err(PushSliceError::Full { .. }) => {}
                }
            }
            if !counted {
                counted = true;
                self.stats.ring_full += 1;
            }
            if self.tx.is_abandoned() {
                return false;
            }
            match self.policy {
                FullPolicy::Spin => {
                    // Spin briefly, then give the core away: on a 2-core box the consumer may need it.
                    spins += 1;
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                FullPolicy::DropAndResync => {
                    self.drop_frame(events);
                    return true;
                }
            }
        }
    }

    /// Marks a symbol's data as lost (e.g. its connection dropped): a `Dropped` event reaches the compute thread
    /// before the symbol's next frame, so its book resyncs from a fresh snapshot.
    pub fn mark_lost(&mut self, symbol: SymbolId) {
        if let Some(n) = self.pending_drops.get_mut(symbol as usize) {
            *n += 1;
            self.any_pending = true;
        }
    }

    fn drop_frame(&mut self, events: &[MarketEvent]) {
        self.stats.frames_dropped += 1;
        for e in events {
            if e.kind != EventKind::Levels && e.kind != EventKind::SymbolDef {
                if let Some(n) = self.pending_drops.get_mut(e.symbol as usize) {
                    *n += 1;
                    self.any_pending = true;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(w: &mut AdaptiveWindow, gaps: impl IntoIterator<Item = u64>) {
        for g in gaps {
            w.on_gap(g);
        }
    }

    #[test]
    fn the_window_is_resized_every_64_gaps_only() {
        let mut w = AdaptiveWindow::new(20.0);
        let first = w.window_ns();
        feed(&mut w, std::iter::repeat_n(1_000, GAPS - 1));
        assert_eq!((w.window_ns(), w.resizes()), (first, 0));
        w.on_gap(1_000);
        assert_eq!(w.resizes(), 1);
    }

    #[test]
    fn short_gaps_among_long_ones_are_covered_within_the_budget() {
        // A burst: 56 gaps of 5 µs, then 8 pauses of 10 ms. Spinning 5 µs on every gap costs 64 * 5 µs = 320 µs
        // of the 80.28 ms idle (0.4 %), so the window covers the burst gaps but not the pauses (20 % budget).
        let mut w = AdaptiveWindow::new(20.0);
        feed(&mut w, (0..GAPS as u64).map(|i| if i % 8 == 7 { 10_000_000 } else { 5_000 }));
        assert_eq!(w.window_ns(), 5_000);
    }

    #[test]
    fn evenly_spaced_gaps_beyond_the_budget_give_no_window() {
        // Every gap 100 µs: spinning through any of them costs 100 % of the idle time, over a 20 % budget.
        let mut w = AdaptiveWindow::new(20.0);
        feed(&mut w, std::iter::repeat_n(100_000, GAPS));
        assert_eq!(w.window_ns(), 0);
        // With the whole core allowed, the window covers them.
        let mut w = AdaptiveWindow::new(100.0);
        feed(&mut w, std::iter::repeat_n(100_000, GAPS));
        assert_eq!(w.window_ns(), 100_000);
    }

    #[test]
    fn the_window_follows_the_budget_and_stays_capped() {
        // Gaps 1..=64 µs: a window of w costs sum(min(g, w)); for each budget the window is the largest gap within
        // it, so the next gap up is over it.
        let gaps: Vec<u64> = (1..=GAPS as u64).map(|g| g * 1_000).collect();
        let total: u64 = gaps.iter().sum();
        for pct in [10.0, 25.0, 50.0, 90.0] {
            let mut w = AdaptiveWindow::new(pct);
            feed(&mut w, gaps.iter().copied());
            let win = w.window_ns();
            let cost = |x: u64| gaps.iter().map(|&g| g.min(x)).sum::<u64>() as f64;
            assert!(cost(win) <= total as f64 * pct / 100.0, "{pct}: {win}");
            assert!(cost(win + 1_000) > total as f64 * pct / 100.0, "{pct}: {win} is not the largest");
        }
        // Gaps over the cap never make the window exceed it.
        let mut w = AdaptiveWindow::new(100.0);
        feed(&mut w, std::iter::repeat_n(50 * MAX_WINDOW_NS, GAPS));
        assert!(w.window_ns() <= MAX_WINDOW_NS);
    }
}

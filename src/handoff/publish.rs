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
#[derive(Debug, Clone, Default)]
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

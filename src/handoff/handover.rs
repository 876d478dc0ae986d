//! A periodic copy handed from one thread to another without a lock or an allocation ([`Handover`]).
//!
//! Contracts:
//! - A fixed pool of buffers (made once, by [`Handover::new`]) circulates between two bounded lock-free queues: the
//!   producer takes a free buffer, fills it in place and hands it over; the consumer takes the newest handed-over
//!   buffer, keeps it as its current copy and gives the one it held back to the pool. Nothing is allocated after
//!   construction as long as the producer's fill stays within the buffer's capacity.
//! - The producer never waits: when no buffer is free (the consumer is slow or holds them), that copy is skipped
//!   and counted ([`Handover::skipped`]); the next one goes through once a buffer is back.
//! - The consumer always sees the newest copy handed over (older ones still queued are returned unread).

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

/// Buffers in circulation: one held by the consumer, one in flight, one free for the producer.
pub(crate) const HANDOVER_BUFFERS: usize = 3;

/// A periodic copy from a producer thread to a consumer thread (see the module doc).
pub(crate) struct Handover<T> {
    free: ArrayQueue<T>,
    ready: ArrayQueue<T>,
    skipped: AtomicU64,
    published: AtomicU64,
}

impl<T> Handover<T> {
    /// A hand-over whose [`HANDOVER_BUFFERS`] buffers are made by `make` (preallocate their capacity there).
    pub(crate) fn new(mut make: impl FnMut() -> T) -> Self {
        let free = ArrayQueue::new(HANDOVER_BUFFERS);
        for _ in 0..HANDOVER_BUFFERS {
            // The queue holds exactly HANDOVER_BUFFERS items, so no push can find it full.
            let _ = free.push(make());
        }
        Handover {
            free,
            ready: ArrayQueue::new(HANDOVER_BUFFERS),
            skipped: AtomicU64::new(0),
            published: AtomicU64::new(0),
        }
    }

    /// Producer: fills a free buffer in place with `fill` and hands it over. False (counted) when no buffer was free.
    pub(crate) fn publish(&self, fill: impl FnOnce(&mut T)) -> bool {
        let Some(mut buf) = self.free.pop() else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        fill(&mut buf);
        // Every buffer is in exactly one of: free, ready, the consumer's hand; each queue holds them all, so this
        // push cannot fail; if it ever did, the buffer goes back to the pool rather than being lost.
        if let Err(buf) = self.ready.push(buf) {
            let _ = self.free.push(buf);
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Consumer: replaces `current` with the newest copy handed over, if any; every buffer it displaces goes back to
    /// the pool. True when `current` changed.
    pub(crate) fn take_latest(&self, current: &mut Option<T>) -> bool {
        let mut changed = false;
        while let Some(buf) = self.ready.pop() {
            if let Some(old) = current.replace(buf) {
                // Capacity for every buffer: cannot fail (see `publish`).
                let _ = self.free.push(old);
            }
            changed = true;
        }
        changed
    }

    /// Copies the producer skipped because no buffer was free.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Copies handed over.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_gets_the_newest_copy_and_buffers_circulate() {
        let h = Handover::new(|| Vec::<u32>::with_capacity(4));
        let mut cur = None;
        assert!(!h.take_latest(&mut cur), "nothing yet");
        for i in 0..3u32 {
            assert!(h.publish(|v| {
                v.clear();
                v.push(i);
            }));
        }
        assert!(!h.publish(|_| {}), "all three buffers are in flight");
        assert_eq!(h.skipped(), 1);
        assert!(h.take_latest(&mut cur));
        assert_eq!(cur.as_deref(), Some(&[2][..]), "the newest");
        // Two buffers are free again, the consumer holds one.
        assert!(h.publish(|v| {
            v.clear();
            v.push(7);
        }));
        assert!(h.take_latest(&mut cur));
        assert_eq!(cur.as_deref(), Some(&[7][..]));
        assert_eq!(h.published(), 4);
        for _ in 0..10 {
            assert!(h.publish(|_| {}), "one in hand, the others circulate");
            assert!(h.take_latest(&mut cur));
        }
        assert!(cur.is_some_and(|v| v.capacity() == 4), "the preallocated buffers, never new ones");
    }
}

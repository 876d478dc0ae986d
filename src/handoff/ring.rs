//! A bounded, preallocated, cache-padded single-producer single-consumer ring for `Copy` items.
//!
//! The hot-path ring between the network and compute threads. Design (as rtrb and the LMAX disruptor):
//! - capacity is a power of two fixed at construction; indices grow without wrapping and are masked;
//! - the producer's `tail` and the consumer's `head` live on separate cache lines, and each side keeps a cached copy
//!   of the other's index so it touches the shared line only when its cache says the ring is full (or empty);
//! - [`Producer::push_slice`] publishes a whole frame's events with one release store, all or nothing, so the
//!   consumer never sees half a depth message;
//! - `push` returns the item when the ring is full (the caller decides: count and drop, or spin);
//! - nothing allocates after [`ring`], nothing locks, nothing blocks.
//!
//! Items are `Copy`, so slots never need dropping.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pads and aligns a value to 128 bytes (two cache lines: adjacent-line prefetch pulls pairs on x86).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CachePadded<T>(pub T);

struct Shared<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buf: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: slots are written only by the single producer before it publishes them with a release store of `tail`, and
// read only by the single consumer after an acquire load of `tail`; a slot is reused only after the consumer
// released it with a release store of `head` that the producer acquires. `T: Send` is required to move items across.
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; the shared state is plain memory plus atomics.
unsafe impl<T: Send> Send for Shared<T> {}

/// The writing end.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    head_cache: usize,
}

/// The reading end.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    tail_cache: usize,
}

/// Error of [`Producer::push_slice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushSliceError {
    /// Not enough free slots right now: nothing was written.
    #[error("ring full: {needed} slots needed, {free} free")]
    Full {
        /// Slots the slice needs.
        needed: usize,
        /// Slots free now.
        free: usize,
    },
    /// The slice is larger than the ring could ever hold.
    #[error("{0} items exceed the ring capacity")]
    TooLarge(usize),
}

/// Creates a ring of at least `capacity` slots (rounded up to a power of two, minimum 2).
pub fn ring<T: Copy + Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let buf: Box<[UnsafeCell<MaybeUninit<T>>]> = (0..cap).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect();
    let shared = Arc::new(Shared {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        buf,
        mask: cap - 1,
    });
    (Producer { shared: shared.clone(), tail: 0, head_cache: 0 }, Consumer { shared, head: 0, tail_cache: 0 })
}

impl<T: Copy + Send> Producer<T> {
    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Free slots, refreshing the cached consumer index only when the cache says fewer than `want` are free.
    #[inline]
    fn free_for(&mut self, want: usize) -> usize {
        let cap = self.shared.mask + 1;
        let mut free = cap - (self.tail - self.head_cache);
        if free < want {
            self.head_cache = self.shared.head.0.load(Ordering::Acquire);
            free = cap - (self.tail - self.head_cache);
        }
        free
    }

    /// Free slots now.
    #[inline]
    pub fn free_slots(&mut self) -> usize {
        self.free_for(usize::MAX)
    }

    /// Pushes one item; returns it back when the ring is full.
    #[inline]
    #[must_use = "a full ring hands the item back: retry, keep or count it"]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.free_for(1) == 0 {
            return Err(item);
        }
        debug_assert!(self.tail - self.head_cache < self.capacity(), "the slot at tail is free");
        let slot = &self.shared.buf[self.tail & self.shared.mask];
        // SAFETY: the slot is free (tail - head < capacity), only this producer writes it, and the consumer does not
        // read it until the release store below publishes it.
        unsafe { (*slot.get()).write(item) };
        self.tail += 1;
        self.shared.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Pushes all of `items` or none, publishing them with one release store.
    #[inline]
    #[must_use = "a full ring pushed nothing: retry or count the loss"]
    pub fn push_slice(&mut self, items: &[T]) -> Result<(), PushSliceError> {
        let n = items.len();
        if n > self.capacity() {
            return Err(PushSliceError::TooLarge(n));
        }
        let free = self.free_for(n);
        if free < n {
            return Err(PushSliceError::Full { needed: n, free });
        }
        debug_assert!(self.tail + n - self.head_cache <= self.capacity(), "the n slots from tail are free");
        let mask = self.shared.mask;
        for (k, item) in items.iter().enumerate() {
            let slot = &self.shared.buf[(self.tail + k) & mask];
            // SAFETY: the n slots from tail are free (checked above), written only by this producer, and published
            // by the release store below.
            unsafe { (*slot.get()).write(*item) };
        }
        self.tail += n;
        self.shared.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// True when the consumer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) < 2
    }
}

impl<T: Copy + Send> Consumer<T> {
    /// Total slots.
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Items ready to read, refreshing the cached producer index only when the cache shows fewer than `want`.
    #[inline]
    fn ready_for(&mut self, want: usize) -> usize {
        if self.tail_cache - self.head < want {
            self.tail_cache = self.shared.tail.0.load(Ordering::Acquire);
        }
        self.tail_cache - self.head
    }

    /// Items ready to read now.
    #[inline]
    pub fn available(&mut self) -> usize {
        self.ready_for(usize::MAX)
    }

    /// Pops one item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.ready_for(1) == 0 {
            return None;
        }
        debug_assert!(self.head < self.tail_cache, "the slot at head was published");
        let slot = &self.shared.buf[self.head & self.shared.mask];
        // SAFETY: head < tail (acquired), so the producer wrote and published this slot and will not touch it until
        // the release store of head below.
        let item = unsafe { (*slot.get()).assume_init() };
        self.head += 1;
        self.shared.head.0.store(self.head, Ordering::Release);
        Some(item)
    }

    /// Reads up to `max` ready items into `f` and releases their slots with one store. Returns how many.
    #[inline]
    pub fn pop_batch(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let n = self.ready_for(max).min(max);
        debug_assert!(self.head + n <= self.tail_cache, "the n slots from head were published");
        let mask = self.shared.mask;
        for k in 0..n {
            let slot = &self.shared.buf[(self.head + k) & mask];
            // SAFETY: head + k < tail (acquired), so the slot was published and stays untouched until the release
            // store below.
            f(unsafe { (*slot.get()).assume_init() });
        }
        if n > 0 {
            self.head += n;
            self.shared.head.0.store(self.head, Ordering::Release);
        }
        n
    }

    /// True when the producer has been dropped (remaining items can still be read).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) < 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_returns_item_when_full() {
        let (mut p, mut c) = ring::<u64>(4);
        for i in 0..4 {
            p.push(i).unwrap();
        }
        assert_eq!(p.push(99), Err(99));
        assert_eq!(c.pop(), Some(0));
        p.push(4).unwrap();
        let mut got = vec![];
        c.pop_batch(10, |x| got.push(x));
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(c.pop(), None);
    }

    #[test]
    fn push_slice_is_all_or_nothing() {
        let (mut p, mut c) = ring::<u32>(8);
        p.push_slice(&[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(p.push_slice(&[6, 7, 8, 9]), Err(PushSliceError::Full { needed: 4, free: 3 }));
        assert_eq!(p.push_slice(&[0; 9]), Err(PushSliceError::TooLarge(9)));
        assert_eq!(c.pop(), Some(1));
        p.push_slice(&[6, 7, 8, 9]).unwrap();
        let mut got = vec![];
        while let Some(x) = c.pop() {
            got.push(x);
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn cross_thread_order_is_preserved() {
        let (mut p, mut c) = ring::<u64>(64);
        const N: u64 = 200_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                if p.push(i).is_ok() {
                    i += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expect = 0;
        while expect < N {
            c.pop_batch(16, |x| {
                assert_eq!(x, expect);
                expect += 1;
            });
        }
        t.join().unwrap();
        assert!(c.is_abandoned());
    }
}

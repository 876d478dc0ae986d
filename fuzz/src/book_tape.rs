//! The `book_tape` fuzz target: a byte tape of small commands becomes `Depth`/`Snapshot`/`Levels` events shaped
//! exactly as the parser emits them, fed to one `Book` (`max_levels: 64`, `buffer_events: 256`).
//!
//! Tape format (all integers little-endian; reading past the end yields zero bytes, so a message cut short still
//! gets the number of `Levels` events its header announces, as the parser guarantees; the tape ends at the first
//! command byte past the end). State: `prev_u` (the `u` of the last depth header on the tape, starts at 0) and
//! `mid` (the reference price in ticks, starts at 0).
//!
//! | command byte % 8 | what | operands |
//! |---|---|---|
//! | 0, 1, 7 | diff depth message | `id U`, `id u`, `id pu`, `u8 bids`, `u8 asks`, levels; then `prev_u = u` |
//! | 2 | the same from a partial-depth stream (`PARTIAL` flag) | as above |
//! | 3 | REST snapshot | `id lastUpdateId`, `u8 bids`, `u8 asks`, levels |
//! | 4 | set `mid` | `i64` (made non-negative) |
//! | 5 | a stray `Levels` event outside any message | `u8 flags` (low 3 bits), 2 levels |
//! | 6 | `Book::invalidate()` (a frame of the symbol was dropped upstream) | — |
//!
//! `id`: one byte `t`; `0x80` is followed by an absolute `i64`, anything else means `prev_u + (t as i8)`.
//! A level: `i16` price offset from `mid` (the price is clamped to >= 0, as the parser never emits a negative
//! price) and `u16` quantity (0 deletes).
//!
//! Invariants (panic when broken): after every event both sides hold at most `max_levels` levels and the returned
//! outcome agrees with the sync state (`Applied`/`Synced` ⇒ synced, `LostSync` ⇒ not synced); after every whole
//! message, stray event or invalidation each side is strictly ordered from its best level outward with no zero
//! quantity, and a synced book is not crossed (best bid < best ask).

use rusto::compute::{Book, BookConfig, BookOutcome};
use rusto::types::{EventKind, MarketEvent, flags};

/// Most levels per side of the fuzzed book.
pub const MAX_LEVELS: usize = 64;
/// Events the fuzzed book buffers while unsynced.
pub const BUFFER_EVENTS: usize = 256;

struct Tape<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Tape<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for x in &mut b {
            *x = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
        b
    }
    fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.bytes())
    }
    fn id(&mut self, base: i64) -> i64 {
        match self.u8() {
            0x80 => self.i64(),
            t => base.wrapping_add(t as i8 as i64),
        }
    }
    fn level(&mut self, mid: i64) -> (i64, i64) {
        let d = i16::from_le_bytes(self.bytes());
        let q = u16::from_le_bytes(self.bytes());
        (mid.saturating_add(d as i64).max(0), q as i64)
    }
}

struct Driver {
    book: Book,
    ts: i64,
}

impl Driver {
    fn feed(&mut self, e: &MarketEvent) {
        let outcome = self.book.on_event(e);
        assert!(self.book.bids.len() <= MAX_LEVELS, "bid side over max_levels");
        assert!(self.book.asks.len() <= MAX_LEVELS, "ask side over max_levels");
        match outcome {
            BookOutcome::Applied | BookOutcome::Synced => {
                assert!(self.book.is_synced(), "{outcome:?} but the book is not synced")
            }
            BookOutcome::LostSync => {
                assert!(!self.book.is_synced(), "LostSync but the book is synced")
            }
            BookOutcome::Pending => {}
        }
    }

    /// A header and its levels, bids first, two per `Levels` event, as `Parser` emits them.
    fn message(&mut self, tape: &mut Tape<'_>, mut head: MarketEvent, mid: i64, level_flags: u8) {
        let nb = tape.u8() as usize;
        let na = tape.u8() as usize;
        head.set_level_counts(nb as u32, na as u32);
        self.feed(&head);
        for (count, side_flags) in [(nb, level_flags), (na, level_flags | flags::ASK)] {
            let mut left = count;
            while left > 0 {
                let mut ev = MarketEvent::new(EventKind::Levels, 0, self.ts, self.ts, 0);
                let (px, qty) = tape.level(mid);
                ev.p[0] = px;
                ev.p[1] = qty;
                ev.flags = side_flags;
                if left >= 2 {
                    let (px, qty) = tape.level(mid);
                    ev.p[2] = px;
                    ev.p[3] = qty;
                    ev.flags |= flags::TWO_LEVELS;
                    left -= 2;
                } else {
                    left -= 1;
                }
                self.feed(&ev);
            }
        }
        self.check_whole();
    }

    /// Checks that hold between messages.
    fn check_whole(&self) {
        for (name, side, ask) in [("bid", &self.book.bids, false), ("ask", &self.book.asks, true)] {
            let mut prev: Option<i64> = None;
            for l in side.iter_from_best() {
                assert!(l.qty != 0, "{name} level {} with zero quantity", l.px);
                if let Some(p) = prev {
                    let outward = if ask { l.px > p } else { l.px < p };
                    assert!(outward, "{name} side out of order: {p} then {}", l.px);
                }
                prev = Some(l.px);
            }
        }
        if self.book.is_synced()
            && let (Some(b), Some(a)) = self.book.top()
        {
            assert!(b.px < a.px, "synced book is crossed: bid {} >= ask {}", b.px, a.px);
        }
    }
}

/// Runs one tape (see the module doc); panics when an invariant breaks. Returns the book, for inspection.
pub fn run(data: &[u8]) -> Book {
    let mut tape = Tape { data, pos: 0 };
    let mut d = Driver { book: Book::new(BookConfig { max_levels: MAX_LEVELS, buffer_events: BUFFER_EVENTS }), ts: 0 };
    let mut prev_u: i64 = 0;
    let mut mid: i64 = 0;
    while !tape.done() {
        d.ts += 1;
        let op = tape.u8() % 8;
        match op {
            0 | 1 | 2 | 7 => {
                let first = tape.id(prev_u);
                let last = tape.id(prev_u);
                let prev = tape.id(prev_u);
                let mut head = MarketEvent::new(EventKind::Depth, 0, d.ts, d.ts, 0);
                head.p[0] = first;
                head.p[1] = last;
                head.p[2] = prev;
                if op == 2 {
                    head.flags = flags::PARTIAL;
                }
                d.message(&mut tape, head, mid, 0);
                prev_u = last;
            }
            3 => {
                let mut head = MarketEvent::new(EventKind::Snapshot, 0, d.ts, d.ts, 0);
                head.p[0] = tape.id(prev_u);
                d.message(&mut tape, head, mid, flags::SNAPSHOT);
            }
            4 => mid = tape.i64() & i64::MAX,
            5 => {
                let mut ev = MarketEvent::new(EventKind::Levels, 0, d.ts, d.ts, 0);
                ev.flags = tape.u8() & 7;
                let (p0, q0) = tape.level(mid);
                let (p1, q1) = tape.level(mid);
                ev.p = [p0, q0, p1, q1];
                d.feed(&ev);
                d.check_whole();
            }
            _ => {
                d.book.invalidate();
                d.check_whole();
            }
        }
    }
    d.book
}

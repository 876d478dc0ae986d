//! Local order book per symbol, synced exactly as Binance documents for USDⓈ-M futures.
//!
//! Procedure (`binance-docs-examples/local_order_book_procedure.txt`):
//! 1. Buffer diff events while no snapshot has been applied (bounded: [`BookConfig::buffer_events`] events per symbol;
//!    on overflow the oldest half is discarded and counted, and a later snapshot must bridge the rest).
//! 2. Apply the REST snapshot (`lastUpdateId`).
//! 3. Drop every event with `u < lastUpdateId`.
//! 4. The first applied event must satisfy `U <= lastUpdateId <= u`; if the first remaining one has
//!    `U > lastUpdateId` the snapshot is older than the stream: it is counted (`stale_snapshots`), the book stays
//!    unsynced and a new snapshot is requested.
//! 5. After that every event must have `pu ==` the previous event's `u`; otherwise the symbol is marked unsynced
//!    (`gaps`), nothing may trade on it, diffs are buffered again, and a new snapshot is requested (in replay the
//!    next snapshot in the recording serves).
//!
//!    Reorder window: two connections carry the same stream while one is rotated out, and their frames interleave
//!    in arrival order, so a diff can arrive before the one it follows. A diff ahead of the chain (`pu` > the last
//!    `u`) therefore first puts the book in [`SyncState::Reordering`]: it is not synced (nothing may trade on it,
//!    it fails closed), its levels are kept, and diffs ahead of the chain are held in the buffer. The diff that
//!    continues the chain is applied, then every held diff that now continues it, in `u` order; when none is left
//!    held the book is synced again (`reordered`, no snapshot needed). A diff arriving [`REORDER_WINDOW_NS`] (local
//!    receive time, from the events: replay is deterministic) after the first held one, a full buffer, or a
//!    snapshot ends the window: the missing diff is lost, which is a gap as above; the held diffs stay buffered
//!    for the next snapshot's bridge.
//! 6. Quantities are absolute; quantity 0 deletes the level; deleting a missing level is normal.
//!
//! Every diff message ends in exactly one counter: applied (`depth_applied`), a copy of an applied one
//! (`duplicates`), discarded before the sync (`depth_before_sync`: older than the snapshot, cut from a full buffer,
//! or buffered when data was lost), a partial-depth picture (`partial_depth`), or still buffered
//! ([`Book::buffered_messages`]).
//!
//! Invariant: a synced book is never crossed (best bid < best ask) after a whole message is applied. A crossed book
//! would mean our sync is wrong, so it is counted (`crossed`), the symbol is unsynced and resynced; the tests
//! assert the count stays 0 on every real recording.
//!
//! Each side is a ring buffer (`VecDeque`) sorted with the best level last (bids ascending by price, asks
//! descending), preallocated to [`BookConfig::max_levels`]: an insert or delete shifts the shorter side (updates near
//! the top touch the end), evicting the worst level is O(1), and nothing allocates after start.
//! When a side is full, the level farthest from the top is evicted (counted).
//!
//! **Top-of-book model** (replays of files with no diff depth, such as Binance's public archive): when the engine
//! allows it ([`Book::allow_top_of_book`], replay only: never live) and the symbol has not seen one depth diff or
//! snapshot, each bookTicker *is* the book: one level per side, the ticker's prices and quantities, synced, its
//! exchange time as the update time. So the gate's book age (`max_book_age_ms` of exchange time between the last
//! ticker and the signal, default 2 000 ms) is the staleness limit: an older ticker blocks entries (`book_stale`),
//! the depth imbalance is the ratio of the ticker quantities, the slippage model's depth D and the fill walk are
//! the ticker's level on the taking side (a trade after the ticker that proves its level gone moves the fill price to
//! the trade's, the freshest touch, with the ticker's quantity as the estimate there; see
//! [`crate::compute::trading::gate::walk`]). A crossed or one-sided ticker unsyncs the book (fails closed). The first
//! depth diff or snapshot of the symbol ends the model for good: the ticker levels are cleared, the book unsynced
//! and synced from the depth stream as above ([`MarketModel::FullBook`]); [`Book::model`] says which one ran.

use std::collections::VecDeque;

use crate::compute::market::touch::Touch;
use crate::types::event::{EventKind, Level, MarketEvent};

/// How long (local receive time) a diff ahead of the chain waits for the one it follows before the missing diff is
/// taken as lost: well above the skew of two connections to the same stream, short enough that a real gap is
/// resynced promptly (the book is not tradable meanwhile).
pub(crate) const REORDER_WINDOW_NS: i64 = 200_000_000;

/// Book limits.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookConfig {
    /// Most levels kept per side.
    pub max_levels: usize,
    /// Most events (headers + continuations) buffered per symbol while unsynced.
    pub buffer_events: usize,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig { max_levels: 5000, buffer_events: 16384 }
    }
}

// Bounds of `[book]`.
crate::bounds!(BookConfig as _b {
    max_levels: [20, 100_000] "between 20 and 100000 levels per side";
    buffer_events: [256, 1 << 22] "between 256 and 4194304 events";
});

/// One side of the book.
#[derive(Debug, Clone)]
pub struct BookSide {
    /// Sorted by key, best level last; a ring buffer so that an insert or a delete shifts the shorter side (and
    /// evicting the worst level when full is O(1)).
    levels: VecDeque<Level>,
    ask: bool,
    cap: usize,
}

impl BookSide {
    fn new(ask: bool, cap: usize) -> Self {
        BookSide { levels: VecDeque::with_capacity(cap + 1), ask, cap }
    }

    #[inline]
    fn key(&self, px: i64) -> i64 {
        if self.ask { -px } else { px }
    }

    /// Sets the absolute quantity at `px` (0 deletes). Returns true when a level was evicted to make room.
    #[inline]
    pub fn set(&mut self, px: i64, qty: i64) -> bool {
        let k = self.key(px);
        let ask = self.ask;
        let pos = self.levels.binary_search_by(|l| (if ask { -l.px } else { l.px }).cmp(&k));
        match pos {
            Ok(i) => {
                if qty == 0 {
                    self.levels.remove(i);
                } else {
                    self.levels[i].qty = qty;
                    self.debug_check_at(i);
                }
                false
            }
            Err(i) => {
                if qty == 0 {
                    return false;
                }
                if self.levels.len() < self.cap {
                    self.levels.insert(i, Level { px, qty });
                    self.debug_check_at(i);
                    false
                } else if i == 0 {
                    // Worse than every level we keep: not kept.
                    true
                } else {
                    self.levels.pop_front();
                    self.levels.insert(i - 1, Level { px, qty });
                    self.debug_check_at(i - 1);
                    true
                }
            }
        }
    }

    /// The quantity resting at `px` (0 when no level is there).
    pub fn qty_at(&self, px: i64) -> i64 {
        let (k, ask) = (self.key(px), self.ask);
        match self.levels.binary_search_by(|l| (if ask { -l.px } else { l.px }).cmp(&k)) {
            Ok(i) => self.levels[i].qty,
            Err(_) => 0,
        }
    }

    /// Best level.
    #[inline]
    pub fn best(&self) -> Option<Level> {
        self.levels.back().copied()
    }

    /// Levels from the best outward.
    pub fn iter_from_best(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().rev()
    }

    /// Number of levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    fn clear(&mut self) {
        self.levels.clear();
    }

    /// The side's invariants: at most `cap` levels, strictly sorted with the best level last, every quantity > 0.
    pub fn check_invariants(&self) -> Result<(), BookInvariant> {
        if self.levels.len() > self.cap {
            return Err(BookInvariant::TooDeep { ask: self.ask, len: self.levels.len(), cap: self.cap });
        }
        if let Some(l) = self.levels.iter().find(|l| l.qty <= 0) {
            return Err(BookInvariant::NonPositiveQty { ask: self.ask, px: l.px, qty: l.qty });
        }
        match self.levels.iter().zip(self.levels.iter().skip(1)).find(|(a, b)| self.key(a.px) >= self.key(b.px)) {
            Some((_, b)) => Err(BookInvariant::Unsorted { ask: self.ask, px: b.px }),
            None => Ok(()),
        }
    }

    /// Local form of the invariants around index `i` (the level just written), checked in debug builds.
    #[inline]
    fn debug_check_at(&self, i: usize) {
        if cfg!(debug_assertions) && i < self.levels.len() {
            let k = self.key(self.levels[i].px);
            debug_assert!(self.levels[i].qty > 0, "book level with quantity {}", self.levels[i].qty);
            debug_assert!(i == 0 || self.key(self.levels[i - 1].px) < k, "book side unsorted at {i}");
            debug_assert!(i + 1 == self.levels.len() || k < self.key(self.levels[i + 1].px), "unsorted at {i}");
            debug_assert!(self.levels.len() <= self.cap, "book side deeper than its cap");
        }
    }
}

/// A broken book invariant (see [`Book::check_invariants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookInvariant {
    /// A side holds more levels than its cap.
    #[error("{} side has {len} levels, cap {cap}", side_name(*ask))]
    TooDeep {
        /// Ask side.
        ask: bool,
        /// Levels held.
        len: usize,
        /// Cap.
        cap: usize,
    },
    /// A level with zero or negative quantity.
    #[error("{} level {px} has quantity {qty}", side_name(*ask))]
    NonPositiveQty {
        /// Ask side.
        ask: bool,
        /// Price.
        px: i64,
        /// Quantity.
        qty: i64,
    },
    /// A side not strictly sorted (best level last).
    #[error("{} side not strictly sorted at {px}", side_name(*ask))]
    Unsorted {
        /// Ask side.
        ask: bool,
        /// The first price out of order.
        px: i64,
    },
    /// A synced book is crossed between messages.
    #[error("synced book crossed: bid {bid} >= ask {ask}")]
    Crossed {
        /// Best bid.
        bid: i64,
        /// Best ask.
        ask: i64,
    },
}

fn side_name(ask: bool) -> &'static str {
    if ask { "ask" } else { "bid" }
}

/// Where the sync procedure stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No usable snapshot: diffs are buffered.
    Unsynced,
    /// Snapshot levels are arriving.
    LoadingSnapshot,
    /// Snapshot applied, waiting for the event that bridges `lastUpdateId`.
    AwaitingBridge,
    /// A diff arrived ahead of the chain: levels kept, later diffs held while the missing one may still arrive on
    /// another connection (module doc, step 5). Not tradable.
    Reordering,
    /// In sync: every diff is applied as it arrives.
    Synced,
}

/// Counters of one book.
#[derive(Debug, Clone, Copy, Default)]
pub struct BookStats {
    /// Diff messages applied to the book.
    pub depth_applied: u64,
    /// Diff messages dropped because `u < lastUpdateId`.
    pub depth_dropped_old: u64,
    /// Partial-depth messages seen (not applied: they are pictures of the top, not diffs).
    pub partial_depth: u64,
    /// `pu != previous u` while synced, and the missing diff did not arrive within the reorder window.
    pub gaps: u64,
    /// Times diffs arrived out of order (overlapping connections) and the chain was restored without a snapshot.
    pub reordered: u64,
    /// Times the book went from unsynced to synced.
    pub resyncs: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Snapshots that arrived while synced (not needed).
    pub snapshots_ignored: u64,
    /// Snapshots older than the first remaining buffered event.
    pub stale_snapshots: u64,
    /// Buffered events discarded because the buffer was full.
    pub buffer_overflow: u64,
    /// Levels evicted because a side was full.
    pub evicted: u64,
    /// Times the book was found crossed after a message (must stay 0).
    pub crossed: u64,
    /// Snapshot requests raised (gap, stale snapshot, crossed, dropped data).
    pub snapshot_requests: u64,
    /// Diff messages already applied (overlapping connections), skipped.
    pub duplicates: u64,
    /// Diff messages discarded before the book synced: older than the snapshot (`depth_dropped_old`), cut from a
    /// full buffer (`buffer_overflow` counts their events), or buffered when data was lost upstream.
    pub depth_before_sync: u64,
    /// Level continuations that arrived without their header (cannot happen with whole-frame pushes), ignored.
    pub orphan_levels: u64,
}

/// The market model a book runs (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarketModel {
    /// Nothing decided yet: no ticker and no depth seen.
    #[default]
    Undecided,
    /// The latest bookTicker is the book (no depth stream seen so far).
    TopOfBook,
    /// The local book from diffs and snapshots.
    FullBook,
}

impl MarketModel {
    /// The name printed and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketModel::Undecided => "undecided",
            MarketModel::TopOfBook => "top_of_book",
            MarketModel::FullBook => "full_book",
        }
    }
}

/// What a message did to the book (for the caller's stage accounting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookOutcome {
    /// Nothing visible yet (a header waiting for its levels, or a buffered event).
    Pending,
    /// A whole message was applied and the book is synced.
    Applied,
    /// The book lost sync on this message.
    LostSync,
    /// The book became synced on this message.
    Synced,
}

/// A per-symbol local order book with its sync state machine. Feed it every `Depth`, `Snapshot` and `Levels` event
/// of its symbol, in order, through [`Book::on_event`].
#[derive(Debug, Clone)]
pub struct Book {
    /// Bids.
    pub bids: BookSide,
    /// Asks.
    pub asks: BookSide,
    state: SyncState,
    last_u: u64,
    snapshot_id: u64,
    /// Exchange time of the last applied message (ns).
    pub last_update_ns: i64,
    buffer: Vec<MarketEvent>,
    scratch: Vec<MarketEvent>,
    buffer_cap: usize,
    // The message whose continuation events are arriving.
    cur_remaining: u32,
    cur_mode: Mode,
    cur_u: u64,
    // Local receive time of the first diff held in the reorder window.
    reorder_since_ns: i64,
    // True while buffered diffs are being re-fed (after a snapshot or in the reorder window): an applied diff does
    // not start a nested re-feed, and a held diff that still does not chain is held again, not a gap.
    refeeding: bool,
    /// Counters.
    pub stats: BookStats,
    /// True while a snapshot is wanted (cleared when one is applied).
    pub wants_snapshot: bool,
    request_pending: bool,
    /// The clips fresher events (bookTicker, trades) put on the top until a diff supersedes them; kept here so
    /// every fill walk of the book sees them. Set through [`Book::clip_by_ticker`] and [`Book::clip_by_trade`];
    /// the book expires them itself whenever it applies a message (see [`crate::compute::market::touch`]).
    pub clip: Touch,
    /// The market model running (module doc).
    model: MarketModel,
    /// True when the top-of-book model may run (replay).
    tob_allowed: bool,
    /// Tickers that were the book under the top-of-book model.
    pub tob_tickers: u64,
    /// Tickers refused as the book (crossed or one-sided): the book was unsynced.
    pub tob_refused: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Buffer,
    Skip,
    Snapshot,
}

impl Book {
    /// An empty, unsynced book with preallocated sides and buffer.
    pub fn new(cfg: BookConfig) -> Self {
        Book {
            bids: BookSide::new(false, cfg.max_levels),
            asks: BookSide::new(true, cfg.max_levels),
            state: SyncState::Unsynced,
            last_u: 0,
            snapshot_id: 0,
            last_update_ns: 0,
            buffer: Vec::with_capacity(cfg.buffer_events),
            scratch: Vec::with_capacity(cfg.buffer_events),
            buffer_cap: cfg.buffer_events,
            cur_remaining: 0,
            cur_mode: Mode::Skip,
            cur_u: 0,
            reorder_since_ns: 0,
            refeeding: false,
            stats: BookStats::default(),
            wants_snapshot: true,
            clip: Touch::default(),
            request_pending: true,
            model: MarketModel::Undecided,
            tob_allowed: false,
            tob_tickers: 0,
            tob_refused: 0,
        }
    }

    /// Sync state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// True when the book is synced (and so may be traded on).
    #[inline]
    pub fn is_synced(&self) -> bool {
        self.state == SyncState::Synced
    }

    /// `u` of the last applied diff (or the snapshot's `lastUpdateId` right after a snapshot).
    pub fn last_update_id(&self) -> u64 {
        self.last_u
    }

    /// The quantity resting at `px` on the asks (`ask`) or the bids.
    pub fn qty_at(&self, ask: bool, px: i64) -> i64 {
        if ask { self.asks.qty_at(px) } else { self.bids.qty_at(px) }
    }

    /// Best bid and ask.
    #[inline]
    pub fn top(&self) -> (Option<Level>, Option<Level>) {
        (self.bids.best(), self.asks.best())
    }

    /// Diff messages buffered while unsynced, waiting for a snapshot (at the end of a replay: never applied).
    pub fn buffered_messages(&self) -> u64 {
        messages(&self.buffer)
    }

    /// Empties the buffer, counting its messages as discarded before sync.
    fn clear_buffer(&mut self) {
        self.stats.depth_before_sync += messages(&self.buffer);
        self.buffer.clear();
    }

    /// Lets the top-of-book model run while the symbol has no depth stream (module doc). Replay only.
    pub fn allow_top_of_book(&mut self) {
        self.tob_allowed = true;
    }

    /// The market model running.
    pub fn model(&self) -> MarketModel {
        self.model
    }

    /// A bookTicker under the top-of-book model: it becomes the book. Returns false (nothing done) when the model
    /// does not run for this book (not allowed, or a depth stream was seen). `ts_ns`: the ticker's exchange time.
    pub fn on_top_of_book(&mut self, bid: (i64, i64), ask: (i64, i64), u: u64, ts_ns: i64) -> bool {
        if !self.tob_allowed || self.model == MarketModel::FullBook {
            return false;
        }
        self.model = MarketModel::TopOfBook;
        self.bids.clear();
        self.asks.clear();
        self.last_u = u;
        self.last_update_ns = ts_ns;
        // The ticker is the book now: clips of trades up to its time expire.
        self.clip.on_depth(u, ts_ns);
        if bid.0 >= ask.0 || bid.1 <= 0 || ask.1 <= 0 {
            self.tob_refused += 1;
            self.state = SyncState::Unsynced;
            return true;
        }
        self.bids.set(bid.0, bid.1);
        self.asks.set(ask.0, ask.1);
        self.state = SyncState::Synced;
        self.tob_tickers += 1;
        true
    }

    /// The first depth diff or snapshot: the full book from now on (a top-of-book picture is dropped).
    fn enter_full_book(&mut self) {
        if self.model == MarketModel::TopOfBook {
            self.bids.clear();
            self.asks.clear();
            self.state = SyncState::Unsynced;
            self.last_u = 0;
        }
        self.model = MarketModel::FullBook;
    }

    /// A bookTicker arrived: it clips the top while its `u` is ahead of the book ([`Touch::on_ticker`]).
    #[inline]
    pub fn clip_by_ticker(&mut self, bid: (i64, i64), ask: (i64, i64), u: u64) {
        self.clip.on_ticker(bid, ask, u, self.last_u);
    }

    /// A market trade arrived: it clips the side it consumed while it is newer than the book ([`Touch::on_trade`]).
    #[inline]
    pub fn clip_by_trade(&mut self, px: i64, buyer_is_maker: bool, ts_ns: i64) {
        self.clip.on_trade(px, buyer_is_maker, ts_ns, self.last_update_ns);
    }

    /// Marks the book unsynced because data was lost upstream (e.g. a frame dropped on a full ring).
    pub fn invalidate(&mut self) {
        if self.state != SyncState::Unsynced {
            self.state = SyncState::Unsynced;
            self.clear_buffer();
            self.request_snapshot();
        }
        self.debug_check();
    }

    /// The book's invariants: each side within its cap, strictly sorted, with positive quantities; and a synced
    /// book is never crossed once a whole message is applied (inside a message it may be, transiently).
    pub fn check_invariants(&self) -> Result<(), BookInvariant> {
        self.bids.check_invariants()?;
        self.asks.check_invariants()?;
        if self.is_synced()
            && self.cur_remaining == 0
            && let (Some(b), Some(a)) = self.top()
            && b.px >= a.px
        {
            return Err(BookInvariant::Crossed { bid: b.px, ask: a.px });
        }
        Ok(())
    }

    /// The invariants after each whole message, in debug builds (so the tests check them on every recording).
    /// Order and quantities are checked where they can break, at each level write ([`BookSide::set`]), which
    /// keeps this O(1) per message; the whole-book scan of [`Book::check_invariants`] runs after each snapshot.
    #[inline]
    fn debug_check(&self) {
        if cfg!(debug_assertions) && self.cur_remaining == 0 {
            let (bids, asks) = (self.bids.len(), self.asks.len());
            debug_assert!(bids <= self.bids.cap && asks <= self.asks.cap, "book deeper than its cap");
            if self.is_synced()
                && let (Some(b), Some(a)) = self.top()
            {
                debug_assert!(b.px < a.px, "synced book crossed: bid {} >= ask {}", b.px, a.px);
            }
        }
    }

    /// [`Book::check_invariants`] in full, in debug builds.
    fn debug_check_all(&self) {
        if cfg!(debug_assertions)
            && let Err(e) = self.check_invariants()
        {
            panic!("book invariant broken: {e}");
        }
    }

    fn request_snapshot(&mut self) {
        self.wants_snapshot = true;
        self.request_pending = true;
        self.stats.snapshot_requests += 1;
    }

    /// True once per needed snapshot (at start, after a gap, a stale snapshot, a crossed book or lost data): the
    /// caller asks the control thread for a REST snapshot.
    pub fn take_snapshot_request(&mut self) -> bool {
        std::mem::take(&mut self.request_pending)
    }

    fn buffer_push(&mut self, e: &MarketEvent) {
        if self.buffer.len() == self.buffer_cap && self.state == SyncState::Reordering {
            // No room to hold more: the missing diff is taken as lost.
            self.reorder_lost();
        }
        if self.buffer.len() == self.buffer_cap {
            // Keep the newest half; everything older than a later snapshot is dropped anyway.
            let half = self.buffer_cap / 2;
            // Cut at a message boundary so the buffer always starts with a header.
            let mut cut = half;
            while cut < self.buffer.len() && self.buffer[cut].kind != EventKind::Depth {
                cut += 1;
            }
            self.stats.buffer_overflow += cut as u64;
            self.stats.depth_before_sync += messages(&self.buffer[..cut]);
            self.buffer.drain(..cut);
            if self.buffer.len() == self.buffer_cap {
                self.clear_buffer();
            }
            if e.kind != EventKind::Depth && self.buffer.is_empty() {
                // A continuation whose header was discarded: drop it too.
                self.stats.buffer_overflow += 1;
                return;
            }
        }
        self.buffer.push(*e);
    }

    /// Feeds one event of this symbol. Non-book kinds are ignored.
    #[inline]
    pub fn on_event(&mut self, e: &MarketEvent) -> BookOutcome {
        if self.model != MarketModel::FullBook && matches!(e.kind, EventKind::Depth | EventKind::Snapshot) {
            self.enter_full_book();
        }
        let o = match e.kind {
            EventKind::Depth => self.on_depth_header(e),
            EventKind::Snapshot => self.on_snapshot_header(e),
            EventKind::Levels => self.on_levels(e),
            _ => BookOutcome::Pending,
        };
        self.debug_check();
        o
    }

    fn on_depth_header(&mut self, e: &MarketEvent) -> BookOutcome {
        let (first, last, prev) = (e.depth_first_id(), e.depth_last_id(), e.depth_prev_id());
        let (nb, na) = e.level_counts();
        self.cur_remaining = nb.div_ceil(2).saturating_add(na.div_ceil(2));
        self.cur_u = last;
        if e.is_partial_depth() {
            self.stats.partial_depth += 1;
            self.cur_mode = Mode::Skip;
            return BookOutcome::Pending;
        }
        let mut outcome = BookOutcome::Pending;
        self.cur_mode = match self.state {
            SyncState::Synced | SyncState::Reordering if last <= self.last_u => {
                // Already applied (a duplicate from an overlapping connection): skip it.
                self.stats.duplicates += 1;
                Mode::Skip
            }
            SyncState::Synced | SyncState::Reordering if prev == self.last_u => Mode::Apply,
            SyncState::Synced => {
                // Ahead of the chain: hold it, the missing diff may be on another connection.
                self.state = SyncState::Reordering;
                self.clear_buffer();
                self.reorder_since_ns = e.local_ts_ns;
                outcome = BookOutcome::LostSync;
                Mode::Buffer
            }
            SyncState::Reordering => {
                if !self.refeeding && e.local_ts_ns.saturating_sub(self.reorder_since_ns) > REORDER_WINDOW_NS {
                    self.reorder_lost();
                }
                Mode::Buffer
            }
            SyncState::AwaitingBridge => {
                if last < self.snapshot_id {
                    self.stats.depth_dropped_old += 1;
                    self.stats.depth_before_sync += 1;
                    Mode::Skip
                } else if first <= self.snapshot_id {
                    Mode::Apply
                } else {
                    self.stats.stale_snapshots += 1;
                    self.state = SyncState::Unsynced;
                    self.request_snapshot();
                    Mode::Buffer
                }
            }
            SyncState::Unsynced | SyncState::LoadingSnapshot => Mode::Buffer,
        };
        if self.cur_mode == Mode::Buffer {
            self.buffer_push(e);
        }
        if self.cur_remaining == 0 {
            return self.finish_message(e.exch_ts_ns).max_outcome(outcome);
        }
        outcome
    }

    /// The reorder window ends without the missing diff: a gap. The held diffs stay buffered for the next
    /// snapshot's bridge.
    fn reorder_lost(&mut self) {
        self.stats.gaps += 1;
        self.state = SyncState::Unsynced;
        self.request_snapshot();
    }

    fn on_snapshot_header(&mut self, e: &MarketEvent) -> BookOutcome {
        let (nb, na) = e.level_counts();
        self.cur_remaining = nb.div_ceil(2).saturating_add(na.div_ceil(2));
        if self.state == SyncState::Reordering {
            self.reorder_lost();
        }
        if self.state == SyncState::Synced || self.state == SyncState::AwaitingBridge && !self.wants_snapshot {
            self.stats.snapshots_ignored += 1;
            self.cur_mode = Mode::Skip;
            return BookOutcome::Pending;
        }
        self.cur_mode = Mode::Snapshot;
        self.state = SyncState::LoadingSnapshot;
        self.snapshot_id = e.snapshot_last_update_id();
        self.bids.clear();
        self.asks.clear();
        self.last_update_ns = e.exch_ts_ns;
        if self.cur_remaining == 0 {
            return self.finish_snapshot();
        }
        BookOutcome::Pending
    }

    fn on_levels(&mut self, e: &MarketEvent) -> BookOutcome {
        if self.cur_remaining == 0 {
            // A continuation without a header (cannot happen with whole-frame pushes): counted, ignored.
            self.stats.orphan_levels += 1;
            return BookOutcome::Pending;
        }
        self.cur_remaining -= 1;
        match self.cur_mode {
            Mode::Apply | Mode::Snapshot => self.apply_levels(e),
            Mode::Buffer => self.buffer_push(e),
            Mode::Skip => {}
        }
        if self.cur_remaining == 0 {
            return match self.cur_mode {
                Mode::Snapshot => self.finish_snapshot(),
                Mode::Apply => self.finish_message(e.exch_ts_ns),
                _ => BookOutcome::Pending,
            };
        }
        BookOutcome::Pending
    }

    #[inline]
    fn apply_levels(&mut self, e: &MarketEvent) {
        let (lv, n) = e.levels();
        let side = if e.levels_are_asks() { &mut self.asks } else { &mut self.bids };
        for l in &lv[..n] {
            if side.set(l.px, l.qty) {
                self.stats.evicted += 1;
            }
        }
    }

    fn finish_message(&mut self, ts: i64) -> BookOutcome {
        if self.cur_mode != Mode::Apply {
            return BookOutcome::Pending;
        }
        self.last_u = self.cur_u;
        self.last_update_ns = ts;
        self.clip.on_depth(self.last_u, ts);
        self.stats.depth_applied += 1;
        if self.state == SyncState::Reordering {
            if self.refeeding {
                return BookOutcome::Pending; // the re-feed loop decides when the chain is whole again
            }
            return self.refeed_held();
        }
        let became = self.state != SyncState::Synced;
        self.state = SyncState::Synced;
        if self.is_crossed() {
            self.stats.crossed += 1;
            self.state = SyncState::Unsynced;
            self.clear_buffer();
            self.request_snapshot();
            return BookOutcome::LostSync;
        }
        if became {
            self.stats.resyncs += 1;
            self.wants_snapshot = false;
            BookOutcome::Synced
        } else {
            BookOutcome::Applied
        }
    }

    /// The diff that continued the chain was applied in the reorder window: re-feed the held diffs (each pass
    /// applies those that now continue the chain, holds the rest again) until a pass applies nothing. With nothing
    /// held the book is synced again; otherwise the window goes on.
    fn refeed_held(&mut self) -> BookOutcome {
        loop {
            let before = self.last_u;
            self.refeed_buffer();
            if self.last_u == before || self.buffer.is_empty() {
                break;
            }
        }
        if !self.buffer.is_empty() {
            return BookOutcome::Pending;
        }
        self.stats.reordered += 1;
        self.state = SyncState::Synced;
        if self.is_crossed() {
            self.stats.crossed += 1;
            self.state = SyncState::Unsynced;
            self.request_snapshot();
            return BookOutcome::LostSync;
        }
        BookOutcome::Synced
    }

    fn is_crossed(&self) -> bool {
        matches!(self.top(), (Some(b), Some(a)) if b.px >= a.px)
    }

    fn finish_snapshot(&mut self) -> BookOutcome {
        self.stats.snapshots_applied += 1;
        self.last_u = self.snapshot_id;
        self.clip.on_depth(self.last_u, self.last_update_ns);
        self.state = SyncState::AwaitingBridge;
        self.wants_snapshot = false;
        self.request_pending = false;
        let mut outcome = self.refeed_buffer();
        if self.state == SyncState::Reordering {
            // The buffer held diffs out of order: apply the rest in chain order as in the reorder window.
            outcome = match self.refeed_held() {
                BookOutcome::Pending => outcome,
                o => o,
            };
        }
        self.debug_check_all();
        outcome
    }

    /// Feeds the buffered diffs through the state machine again (after a snapshot, or in the reorder window once
    /// the chain moved); returns the strongest outcome. The buffer and the preallocated scratch swap roles, so
    /// events buffered again meanwhile (after a stale snapshot, or still ahead of the chain) need no allocation.
    fn refeed_buffer(&mut self) -> BookOutcome {
        // While re-feeding, an applied diff in the reorder window does not start another re-feed (the caller's
        // loop does), and the window's time limit does not apply (these diffs arrived within it).
        let was_refeeding = std::mem::replace(&mut self.refeeding, true);
        std::mem::swap(&mut self.buffer, &mut self.scratch);
        let mut outcome = BookOutcome::Pending;
        for i in 0..self.scratch.len() {
            let ev = self.scratch[i];
            let o = match ev.kind {
                EventKind::Depth => self.on_depth_header(&ev),
                EventKind::Levels => self.on_levels(&ev),
                _ => BookOutcome::Pending,
            };
            outcome = outcome.max_outcome(o);
        }
        self.scratch.clear();
        self.refeeding = was_refeeding;
        outcome
    }
}

/// Depth messages (headers) among buffered events.
fn messages(evs: &[MarketEvent]) -> u64 {
    evs.iter().filter(|e| e.kind == EventKind::Depth).count() as u64
}

impl BookOutcome {
    fn rank(self) -> u8 {
        match self {
            BookOutcome::Pending => 0,
            BookOutcome::Applied => 1,
            BookOutcome::Synced => 2,
            BookOutcome::LostSync => 3,
        }
    }
    fn max_outcome(self, o: BookOutcome) -> BookOutcome {
        if o.rank() > self.rank() { o } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::event::{EventKind, MarketEvent, flags};

    /// A depth message as events: header + level continuations.
    fn diff(first: u64, last: u64, prev: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Vec<MarketEvent> {
        let mut h = MarketEvent::new(EventKind::Depth, 0, last as i64, 0, 0);
        h.p[0] = first as i64;
        h.p[1] = last as i64;
        h.p[2] = prev as i64;
        msg(h, bids, asks, 0)
    }

    /// The events of a message received at local time `local_ns`.
    fn at(local_ns: i64, mut evs: Vec<MarketEvent>) -> Vec<MarketEvent> {
        evs.iter_mut().for_each(|e| e.local_ts_ns = local_ns);
        evs
    }

    fn snapshot(lid: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> Vec<MarketEvent> {
        let mut h = MarketEvent::new(EventKind::Snapshot, 0, 0, 0, 0);
        h.p[0] = lid as i64;
        msg(h, bids, asks, flags::SNAPSHOT)
    }

    fn msg(mut h: MarketEvent, bids: &[(i64, i64)], asks: &[(i64, i64)], f: u8) -> Vec<MarketEvent> {
        h.set_level_counts(bids.len() as u32, asks.len() as u32);
        let mut v = vec![h];
        for (side, ask) in [(bids, false), (asks, true)] {
            for ch in side.chunks(2) {
                let mut e = MarketEvent::new(EventKind::Levels, 0, h.exch_ts_ns, 0, 0);
                e.flags = f | if ask { flags::ASK } else { 0 } | if ch.len() == 2 { flags::TWO_LEVELS } else { 0 };
                e.p[0] = ch[0].0;
                e.p[1] = ch[0].1;
                if ch.len() == 2 {
                    e.p[2] = ch[1].0;
                    e.p[3] = ch[1].1;
                }
                v.push(e);
            }
        }
        v
    }

    fn feed(b: &mut Book, evs: &[MarketEvent]) -> BookOutcome {
        let mut o = BookOutcome::Pending;
        for e in evs {
            o = o.max_outcome(b.on_event(e));
        }
        o
    }

    fn top(b: &Book) -> (i64, i64, i64, i64) {
        let (bb, ba) = b.top();
        let (bb, ba) = (bb.unwrap(), ba.unwrap());
        (bb.px, bb.qty, ba.px, ba.qty)
    }

    #[test]
    fn documented_sync_procedure() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        // Buffered before the snapshot: one too old (u < lastUpdateId), one bridging (U <= 105 <= u).
        assert_eq!(feed(&mut b, &diff(90, 100, 89, &[(99, 1)], &[])), BookOutcome::Pending);
        assert_eq!(feed(&mut b, &diff(101, 110, 100, &[(100, 5)], &[(103, 0)])), BookOutcome::Pending);
        assert!(!b.is_synced());
        let o = feed(&mut b, &snapshot(105, &[(100, 2), (99, 3)], &[(102, 4), (103, 6)]));
        assert_eq!(o, BookOutcome::Synced);
        assert!(b.is_synced());
        assert_eq!(b.stats.depth_dropped_old, 1);
        assert_eq!(b.last_update_id(), 110);
        // 100 bid set to 5; ask 103 deleted; 99 from the snapshot kept (the old diff was dropped, not applied).
        assert_eq!(top(&b), (100, 5, 102, 4));
        assert_eq!(b.asks.len(), 1);
        assert_eq!(b.bids.len(), 2);
        // Next event chains on pu.
        assert_eq!(feed(&mut b, &diff(111, 112, 110, &[(101, 1)], &[])), BookOutcome::Applied);
        assert_eq!(top(&b).0, 101);
        // Deleting a level that is not there is normal.
        assert_eq!(feed(&mut b, &diff(113, 113, 112, &[(50, 0)], &[])), BookOutcome::Applied);
        assert_eq!(b.stats.resyncs, 1);
        assert_eq!(b.stats.crossed, 0);
    }

    #[test]
    fn gap_unsyncs_and_the_next_snapshot_resyncs() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(101, 1)]));
        assert_eq!(b.state(), SyncState::AwaitingBridge);
        assert_eq!(feed(&mut b, &diff(9, 12, 8, &[(100, 2)], &[])), BookOutcome::Synced);
        // pu 13 != 12: held in the reorder window (not tradable, no snapshot yet).
        assert_eq!(feed(&mut b, &diff(14, 15, 13, &[(100, 3)], &[])), BookOutcome::LostSync);
        assert!(!b.is_synced());
        assert_eq!(b.state(), SyncState::Reordering);
        assert_eq!((b.stats.gaps, b.stats.snapshot_requests), (0, 0));
        // A diff past the window: 13 is lost, a gap; the held diffs stay buffered for the next snapshot.
        feed(&mut b, &at(REORDER_WINDOW_NS + 1, diff(16, 18, 15, &[(100, 4)], &[])));
        assert!(b.wants_snapshot);
        assert_eq!(b.state(), SyncState::Unsynced);
        assert_eq!((b.stats.gaps, b.stats.snapshot_requests, b.stats.reordered), (1, 1, 0));
        feed(&mut b, &diff(19, 20, 18, &[], &[(101, 7)]));
        assert_eq!(feed(&mut b, &snapshot(17, &[(100, 9)], &[(101, 1)])), BookOutcome::Synced);
        assert_eq!(b.last_update_id(), 20);
        assert_eq!(top(&b), (100, 4, 101, 7));
        assert_eq!(b.stats.resyncs, 2);
    }

    #[test]
    fn diffs_out_of_order_within_the_window_are_applied_in_chain_order() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(105, 1)]));
        assert_eq!(feed(&mut b, &diff(9, 12, 8, &[(100, 2)], &[])), BookOutcome::Synced);
        // The successor connection delivers 19..20 and 16..18 before the predecessor's 13..15.
        assert_eq!(feed(&mut b, &diff(19, 20, 18, &[], &[(105, 7)])), BookOutcome::LostSync);
        assert_eq!(feed(&mut b, &diff(16, 18, 15, &[(100, 4)], &[])), BookOutcome::Pending);
        assert_eq!(top(&b), (100, 2, 105, 1), "held diffs are not applied yet");
        // A copy of an applied diff is still a duplicate inside the window.
        feed(&mut b, &diff(11, 12, 10, &[(100, 9)], &[]));
        assert_eq!(b.stats.duplicates, 1);
        assert_eq!(feed(&mut b, &diff(13, 15, 12, &[(101, 1)], &[])), BookOutcome::Synced);
        assert_eq!(b.last_update_id(), 20);
        assert_eq!(top(&b), (101, 1, 105, 7));
        let st = b.stats;
        assert_eq!((st.reordered, st.gaps, st.snapshot_requests, st.resyncs, st.depth_applied), (1, 0, 0, 1, 4));
        assert_eq!(b.buffered_messages(), 0);
        // The predecessor's late copies are duplicates.
        feed(&mut b, &diff(16, 18, 15, &[(100, 4)], &[]));
        assert_eq!(b.stats.duplicates, 2);
        assert_eq!(feed(&mut b, &diff(21, 21, 20, &[(99, 1)], &[])), BookOutcome::Applied);
    }

    #[test]
    fn diffs_buffered_out_of_order_before_the_snapshot_are_applied_in_chain_order() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &diff(11, 12, 10, &[(100, 2)], &[]));
        feed(&mut b, &diff(16, 18, 15, &[(100, 4)], &[]));
        feed(&mut b, &diff(13, 15, 12, &[(100, 3)], &[]));
        assert_eq!(feed(&mut b, &snapshot(11, &[(100, 1)], &[(105, 1)])), BookOutcome::Synced);
        assert_eq!((b.last_update_id(), top(&b)), (18, (100, 4, 105, 1)));
        assert_eq!((b.stats.reordered, b.stats.gaps, b.stats.resyncs, b.buffered_messages()), (1, 0, 1, 0));
    }

    #[test]
    fn a_full_buffer_ends_the_reorder_window_as_a_gap() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 4 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(105, 1)]));
        feed(&mut b, &diff(9, 12, 8, &[(100, 2)], &[]));
        feed(&mut b, &diff(14, 15, 13, &[(100, 3)], &[]));
        feed(&mut b, &diff(16, 16, 15, &[(100, 3)], &[]));
        assert_eq!(b.state(), SyncState::Reordering);
        feed(&mut b, &diff(17, 17, 16, &[(100, 3)], &[]));
        assert_eq!(b.state(), SyncState::Unsynced);
        assert_eq!((b.stats.gaps, b.stats.reordered), (1, 0));
        assert!(b.take_snapshot_request());
    }

    #[test]
    fn a_snapshot_during_the_reorder_window_ends_it_as_a_gap() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(105, 1)]));
        feed(&mut b, &diff(9, 12, 8, &[(100, 2)], &[]));
        feed(&mut b, &diff(14, 15, 13, &[(100, 3)], &[]));
        assert_eq!(feed(&mut b, &snapshot(14, &[(100, 8)], &[(105, 2)])), BookOutcome::Synced);
        assert_eq!((b.stats.gaps, b.stats.resyncs, b.last_update_id()), (1, 2, 15));
        assert_eq!(top(&b), (100, 3, 105, 2));
    }

    #[test]
    fn snapshot_older_than_every_buffered_event_is_refused() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &diff(50, 60, 49, &[(100, 1)], &[(101, 1)]));
        feed(&mut b, &diff(61, 70, 60, &[(100, 2)], &[]));
        // lastUpdateId 40 < U of the first buffered event: cannot bridge.
        assert_eq!(feed(&mut b, &snapshot(40, &[(100, 5)], &[(101, 5)])), BookOutcome::Pending);
        assert!(!b.is_synced());
        assert_eq!(b.stats.stale_snapshots, 1);
        assert!(b.wants_snapshot);
        // The buffered events were kept; a fresh snapshot syncs with them.
        assert_eq!(feed(&mut b, &snapshot(65, &[(100, 5)], &[(101, 5)])), BookOutcome::Synced);
        assert_eq!(top(&b), (100, 2, 101, 5));
    }

    #[test]
    fn snapshot_while_synced_is_ignored() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(101, 1)]));
        feed(&mut b, &diff(10, 11, 9, &[], &[]));
        assert!(b.is_synced());
        feed(&mut b, &snapshot(5, &[(1, 1)], &[(2, 1)]));
        assert!(b.is_synced());
        assert_eq!(b.stats.snapshots_ignored, 1);
        assert_eq!(top(&b), (100, 1, 101, 1));
    }

    #[test]
    fn crossed_book_is_counted_and_resynced() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        feed(&mut b, &snapshot(10, &[(100, 1)], &[(101, 1)]));
        feed(&mut b, &diff(10, 11, 9, &[], &[]));
        assert_eq!(feed(&mut b, &diff(12, 12, 11, &[(102, 1)], &[])), BookOutcome::LostSync);
        assert_eq!(b.stats.crossed, 1);
        assert!(!b.is_synced());
    }

    #[test]
    fn full_side_evicts_the_farthest_level() {
        let mut b = Book::new(BookConfig { max_levels: 3, buffer_events: 1024 });
        feed(&mut b, &snapshot(1, &[(100, 1), (99, 1), (98, 1)], &[(101, 1), (102, 1), (103, 1)]));
        feed(&mut b, &diff(1, 2, 0, &[(97, 1), (100, 2)], &[(100, 0), (101, 0), (104, 1), (105, 1)]));
        // 97 is worse than every kept bid: not kept; ask 101 deleted, 104 added, 105 evicts nothing (room).
        let bids: Vec<i64> = b.bids.iter_from_best().map(|l| l.px).collect();
        let asks: Vec<i64> = b.asks.iter_from_best().map(|l| l.px).collect();
        assert_eq!(bids, vec![100, 99, 98]);
        assert_eq!(asks, vec![102, 103, 104]);
        assert_eq!(b.stats.evicted, 2);
        // A better bid evicts the worst one.
        feed(&mut b, &diff(3, 3, 2, &[(101, 1)], &[]));
        let bids: Vec<i64> = b.bids.iter_from_best().map(|l| l.px).collect();
        assert_eq!(bids, vec![101, 100, 99]);
    }

    #[test]
    fn invariants_hold_through_the_procedure_and_catch_a_broken_book() {
        let mut b = Book::new(BookConfig { max_levels: 3, buffer_events: 1024 });
        assert_eq!(b.check_invariants(), Ok(()));
        feed(&mut b, &snapshot(10, &[(100, 1), (99, 2)], &[(101, 1), (102, 3)]));
        feed(&mut b, &diff(10, 11, 9, &[(98, 1), (97, 4)], &[(103, 1), (104, 1)]));
        assert!(b.is_synced());
        assert_eq!(b.check_invariants(), Ok(()));
        assert_eq!(b.bids.len(), 3, "bounded depth");
        // Each broken invariant is reported.
        let mut x = b.clone();
        x.bids.levels.swap(0, 1);
        assert!(matches!(x.check_invariants(), Err(BookInvariant::Unsorted { ask: false, .. })));
        let mut x = b.clone();
        x.asks.levels[0].qty = 0;
        assert!(matches!(x.check_invariants(), Err(BookInvariant::NonPositiveQty { ask: true, qty: 0, .. })));
        let mut x = b.clone();
        x.bids.levels.push_back(Level { px: 101, qty: 1 });
        assert!(matches!(x.check_invariants(), Err(BookInvariant::TooDeep { len: 4, cap: 3, .. })));
        let mut x = b.clone();
        x.bids.levels.remove(0);
        x.bids.levels.push_back(Level { px: 105, qty: 1 });
        assert_eq!(x.check_invariants(), Err(BookInvariant::Crossed { bid: 105, ask: 101 }));
        // Crossed while unsynced is not a broken invariant (the book is resyncing).
        x.state = SyncState::Unsynced;
        assert_eq!(x.check_invariants(), Ok(()));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "quantity")]
    fn a_negative_level_trips_the_debug_check() {
        let mut side = BookSide::new(false, 10);
        side.set(100, -1);
    }

    #[test]
    fn diffs_cut_from_a_full_buffer_are_counted_before_sync() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 8 });
        // Ten one-level diffs (a header and a continuation each) into room for eight events.
        for k in 0..10 {
            feed(&mut b, &diff(10 + k, 10 + k, 9 + k, &[(100, 1 + k as i64)], &[]));
        }
        assert_eq!(b.stats.buffer_overflow, 12, "events cut");
        assert_eq!((b.stats.depth_before_sync, b.buffered_messages()), (6, 4), "every message in one counter");
        // A snapshot at 16: the kept diffs are 16..=19, the first bridges it and all four apply.
        feed(&mut b, &snapshot(16, &[(100, 1)], &[(101, 1)]));
        assert!(b.is_synced());
        assert_eq!((b.stats.depth_applied, b.stats.depth_before_sync, b.buffered_messages()), (4, 6, 0));
    }

    #[test]
    fn partial_depth_is_not_applied() {
        let mut b = Book::new(BookConfig { max_levels: 100, buffer_events: 1024 });
        let mut p = diff(1, 2, 0, &[(100, 1)], &[(101, 1)]);
        p[0].flags = flags::PARTIAL;
        feed(&mut b, &p);
        assert_eq!(b.stats.partial_depth, 1);
        assert!(b.bids.is_empty());
    }
}

//! The fixed-size market event that crosses the net → compute ring.
//!
//! One Binance frame becomes one or more [`MarketEvent`]s. Every event is 64 bytes (one cache line), `Copy`, and
//! carries the exchange time, the local receive time and a monotonic latency stamp. A depth message (diff, partial
//! or a REST snapshot) becomes a header event followed by continuation events of at most
//! [`LEVELS_PER_EVENT`] levels each, all bids first and then all asks, so no message ever needs the heap.
//!
//! Prices and quantities are integers in units of the symbol's tick and step (see [`crate::types::decimal::Scale`]).
//! The mark price, which is not on the tick grid, is carried in units of 1e-8.
//!
//! Contract: the events of one frame are pushed into the ring together (all or none), so the consumer always sees a
//! header followed by exactly the continuation events it announces.

pub(crate) use super::symbols::SymbolId;

use super::decimal::Scale;

/// Number of price levels one continuation event carries.
pub(crate) const LEVELS_PER_EVENT: usize = 2;

/// What a [`MarketEvent`] is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EventKind {
    /// Empty slot; never produced by the parser.
    #[default]
    None = 0,
    /// A symbol got its id or its price/quantity scale changed. `p[0..2]` name bytes (NUL padded), `p[2]` packed
    /// price scale, `p[3]` packed quantity scale (see [`crate::types::decimal::Scale::pack`]).
    SymbolDef = 1,
    /// A market trade (`aggTrade`, or `trade` with `"X":"MARKET"`). `p[0]` price ticks, `p[1]` qty steps,
    /// `p[2]` trade id (aggregate id for aggTrade), `p[3]` the number of raw trades it aggregates (1 for `trade`).
    /// Flag [`flags::BUYER_MAKER`] when the buyer was the maker (the seller was the aggressor).
    Trade = 2,
    /// A non-market print (`trade` with `X` = `INSURANCE_FUND`, `ADL` or `NA`). Same payload as [`EventKind::Trade`];
    /// `flags` carries the print type ([`flags::PRINT_INSURANCE_FUND`] …). Never enters volume, CVD or bars.
    NonMarketTrade = 3,
    /// Header of a diff depth update (`depthUpdate`). `p[0]` = `U`, `p[1]` = `u`, `p[2]` = `pu`,
    /// `p[3]` = bid level count | ask level count << 32. Flag [`flags::PARTIAL`] for a partial-depth stream.
    Depth = 4,
    /// Header of a REST `/fapi/v1/depth` snapshot. `p[0]` = `lastUpdateId`, `p[3]` = bid count | ask count << 32.
    Snapshot = 5,
    /// Continuation: up to [`LEVELS_PER_EVENT`] levels of the preceding header. `p[0]` price, `p[1]` qty,
    /// `p[2]` price, `p[3]` qty. Flag [`flags::ASK`] for the ask side; [`flags::TWO_LEVELS`] when both are used.
    Levels = 6,
    /// `bookTicker`. `p[0]` = bid price | ask price << 32 (both ticks, as u32), `p[1]` bid qty, `p[2]` ask qty,
    /// `p[3]` = update id `u`.
    BookTicker = 7,
    /// `markPriceUpdate`. `p[0]` mark price, `p[1]` index price (both 1e-8 units), `p[2]` funding rate in 1e-8,
    /// `p[3]` next funding time (ms).
    MarkPrice = 8,
    /// Frames of this symbol were lost upstream (ring full under the drop-and-resync policy): `p[0]` frames.
    /// The compute thread marks the book unsynced and asks for a snapshot.
    Dropped = 9,
    /// An order report (acknowledgement, fill, cancel, reject, expiry) from the exchange, first of the two events
    /// of [`crate::types::order::ExecReport::to_events`]: `flags` the [`crate::types::order::ExecKind`], `p[0]` the
    /// exchange order id, `p[1]` last fill price (ticks), `p[2]` last fill quantity, `p[3]` cumulative quantity
    /// (steps). `exch_ts_ns` is the exchange's event time.
    Exec = 10,
    /// The second event of an order report: `flags` side and maker/known bits, `p[0]` commission (1e-8), `p[1]`
    /// realised PnL (1e-8), `p[2]` run id << 32 | position id, `p[3]` leg code | attempt << 8 | error code << 32.
    ExecMore = 11,
    /// The exchange's position of the symbol (`ACCOUNT_UPDATE`, one-way mode): `p[0]` signed amount (1e-8 of the
    /// base asset: negative is short), `p[1]` entry price (1e-8), `p[2]` unrealised PnL (1e-8), `p[3]` the event's
    /// transaction time (ms). Flag [`flags::ISOLATED`] for isolated margin. `exch_ts_ns` is the event time.
    Position = 12,
}

/// Bit flags of [`MarketEvent::flags`].
pub mod flags {
    /// Trade: the buyer was the maker, i.e. the seller was the aggressor (`"m": true`).
    pub const BUYER_MAKER: u8 = 1;
    /// Trade came from an `aggTrade` message (otherwise from `trade`).
    pub const AGG: u8 = 2;
    /// Non-market print type: insurance fund (liquidation).
    pub const PRINT_INSURANCE_FUND: u8 = 4;
    /// Non-market print type: auto-deleveraging.
    pub const PRINT_ADL: u8 = 8;
    /// Non-market print type: `NA` or anything else that is not `MARKET`.
    pub const PRINT_NA: u8 = 16;
    /// Depth: the message came from a partial-depth stream (`@depth5` …), a top-N picture, not a diff.
    pub const PARTIAL: u8 = 1;
    /// Levels: the levels are asks (otherwise bids).
    pub const ASK: u8 = 1;
    /// Levels: both level slots are used.
    pub const TWO_LEVELS: u8 = 2;
    /// Levels: the levels belong to a snapshot (otherwise to a diff).
    pub const SNAPSHOT: u8 = 4;
    /// Position: isolated margin.
    pub const ISOLATED: u8 = 1;
}

/// A fixed-size market event. See the module doc for the payload of each kind.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MarketEvent {
    /// Exchange time in ns since the Unix epoch (trade time `T` for trades, event time `E` otherwise,
    /// `T`/`E` of the body for snapshots).
    pub exch_ts_ns: i64,
    /// Local receive time in ns since the Unix epoch (socket read in live, the recorded time in replay).
    pub local_ts_ns: i64,
    /// Monotonic ns (see [`crate::types::clock`]) when the frame was handed to the parser. Latency accounting only:
    /// trading logic never reads it.
    pub stamp_ns: u64,
    /// Monotonic ns from `stamp_ns` to the moment the frame's events were pushed (parse time), saturating.
    pub parse_ns: u32,
    /// Symbol id.
    pub symbol: SymbolId,
    /// Event kind.
    pub kind: EventKind,
    /// Kind-specific flags (see [`flags`]).
    pub flags: u8,
    /// Kind-specific payload.
    pub p: [i64; 4],
}

const _: () = assert!(std::mem::size_of::<MarketEvent>() == 64);
const _: () = assert!(std::mem::align_of::<MarketEvent>() == 64);

/// One price level in integer units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Level {
    /// Price in ticks.
    pub px: i64,
    /// Quantity in steps (0 deletes the level in a diff).
    pub qty: i64,
}

impl MarketEvent {
    /// An event of `kind` for `symbol` with the given times and an empty payload.
    #[inline]
    pub fn new(kind: EventKind, symbol: SymbolId, exch_ts_ns: i64, local_ts_ns: i64, stamp_ns: u64) -> Self {
        MarketEvent { exch_ts_ns, local_ts_ns, stamp_ns, parse_ns: 0, symbol, kind, flags: 0, p: [0; 4] }
    }

    /// Trade fields: (price ticks, qty steps, trade id, buyer is maker).
    #[inline]
    pub fn trade(&self) -> (i64, i64, i64, bool) {
        (self.trade_price_ticks(), self.trade_qty_steps(), self.trade_id(), self.buyer_is_maker())
    }

    /// [`EventKind::Trade`] / [`EventKind::NonMarketTrade`]: price in ticks.
    #[inline]
    pub fn trade_price_ticks(&self) -> i64 {
        self.p[0]
    }

    /// Trade: quantity in steps.
    #[inline]
    pub fn trade_qty_steps(&self) -> i64 {
        self.p[1]
    }

    /// Trade: trade id (the aggregate id for `aggTrade`).
    #[inline]
    pub fn trade_id(&self) -> i64 {
        self.p[2]
    }

    /// Trade: number of raw trades aggregated (1 for `trade`).
    #[inline]
    pub fn trade_count(&self) -> i64 {
        self.p[3]
    }

    /// Trade: the buyer was the maker (the seller was the aggressor).
    #[inline]
    pub fn buyer_is_maker(&self) -> bool {
        self.flags & flags::BUYER_MAKER != 0
    }

    /// Depth header fields: (`U`, `u`, `pu`, bid count, ask count).
    #[inline]
    pub fn depth_ids(&self) -> (u64, u64, u64, u32, u32) {
        let (bids, asks) = self.level_counts();
        (self.depth_first_id(), self.depth_last_id(), self.depth_prev_id(), bids, asks)
    }

    /// [`EventKind::Depth`] header: first update id `U`.
    #[inline]
    pub fn depth_first_id(&self) -> u64 {
        self.p[0] as u64
    }

    /// Depth header: last update id `u`.
    #[inline]
    pub fn depth_last_id(&self) -> u64 {
        self.p[1] as u64
    }

    /// Depth header: the previous message's last update id `pu`.
    #[inline]
    pub fn depth_prev_id(&self) -> u64 {
        self.p[2] as u64
    }

    /// Depth header: the message came from a partial-depth stream.
    #[inline]
    pub fn is_partial_depth(&self) -> bool {
        self.flags & flags::PARTIAL != 0
    }

    /// [`EventKind::Snapshot`] header: `lastUpdateId`.
    #[inline]
    pub fn snapshot_last_update_id(&self) -> u64 {
        self.p[0] as u64
    }

    /// Level counts of a depth or snapshot header: (bids, asks).
    #[inline]
    pub fn level_counts(&self) -> (u32, u32) {
        (self.p[3] as u32, (self.p[3] >> 32) as u32)
    }

    /// Packs level counts into `p[3]`.
    #[inline]
    pub fn set_level_counts(&mut self, bids: u32, asks: u32) {
        self.p[3] = (bids as i64) | ((asks as i64) << 32);
    }

    /// The levels of a [`EventKind::Levels`] event (one or two).
    #[inline]
    pub fn levels(&self) -> ([Level; LEVELS_PER_EVENT], usize) {
        let n = if self.flags & flags::TWO_LEVELS != 0 { 2 } else { 1 };
        ([Level { px: self.p[0], qty: self.p[1] }, Level { px: self.p[2], qty: self.p[3] }], n)
    }

    /// [`EventKind::Levels`]: the levels are asks (otherwise bids).
    #[inline]
    pub fn levels_are_asks(&self) -> bool {
        self.flags & flags::ASK != 0
    }

    /// Book ticker fields: (bid px, bid qty, ask px, ask qty, update id).
    #[inline]
    pub fn book_ticker(&self) -> (i64, i64, i64, i64, u64) {
        (
            self.ticker_bid_px(),
            self.ticker_bid_qty(),
            self.ticker_ask_px(),
            self.ticker_ask_qty(),
            self.ticker_update_id(),
        )
    }

    /// [`EventKind::BookTicker`]: best bid price in ticks.
    #[inline]
    pub fn ticker_bid_px(&self) -> i64 {
        (self.p[0] as u64 & 0xffff_ffff) as i64
    }

    /// Book ticker: best ask price in ticks.
    #[inline]
    pub fn ticker_ask_px(&self) -> i64 {
        ((self.p[0] as u64) >> 32) as i64
    }

    /// Book ticker: best bid quantity in steps.
    #[inline]
    pub fn ticker_bid_qty(&self) -> i64 {
        self.p[1]
    }

    /// Book ticker: best ask quantity in steps.
    #[inline]
    pub fn ticker_ask_qty(&self) -> i64 {
        self.p[2]
    }

    /// Book ticker: update id `u`.
    #[inline]
    pub fn ticker_update_id(&self) -> u64 {
        self.p[3] as u64
    }

    /// [`EventKind::MarkPrice`]: mark price in 1e-8 units.
    #[inline]
    pub fn mark_price_e8(&self) -> i64 {
        self.p[0]
    }

    /// Mark price update: index price in 1e-8 units.
    #[inline]
    pub fn index_price_e8(&self) -> i64 {
        self.p[1]
    }

    /// Mark price update: funding rate in 1e-8.
    #[inline]
    pub fn funding_rate_e8(&self) -> i64 {
        self.p[2]
    }

    /// Mark price update: next funding time (ms).
    #[inline]
    pub fn next_funding_ms(&self) -> i64 {
        self.p[3]
    }

    /// [`EventKind::Dropped`]: frames of this symbol lost upstream.
    #[inline]
    pub fn dropped_frames(&self) -> u64 {
        self.p[0] as u64
    }

    /// [`EventKind::SymbolDef`]: the price scale (ticks), when known.
    #[inline]
    pub fn symbol_price_scale(&self) -> Option<Scale> {
        Scale::unpack(self.p[2])
    }

    /// [`EventKind::SymbolDef`]: the quantity scale (steps), when known.
    #[inline]
    pub fn symbol_qty_scale(&self) -> Option<Scale> {
        Scale::unpack(self.p[3])
    }

    /// Packs book ticker prices; `None` when a price does not fit in 32 bits of ticks.
    #[inline]
    pub fn pack_prices(bid: i64, ask: i64) -> Option<i64> {
        if (0..=u32::MAX as i64).contains(&bid) && (0..=u32::MAX as i64).contains(&ask) {
            Some((bid as u64 | ((ask as u64) << 32)) as i64)
        } else {
            None
        }
    }

    /// A [`EventKind::SymbolDef`] announcing `name` with its scales (`None`: not known yet).
    pub fn symbol_def(
        symbol: SymbolId,
        name: crate::types::symbols::SymbolName,
        price: Option<Scale>,
        qty: Option<Scale>,
    ) -> Self {
        let mut e = MarketEvent::new(EventKind::SymbolDef, symbol, 0, 0, 0);
        let b = name.padded();
        e.p[0] = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        e.p[1] = i64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        e.p[2] = price.map_or(0, |s| s.pack());
        e.p[3] = qty.map_or(0, |s| s.pack());
        e
    }

    /// Symbol name carried by a [`EventKind::SymbolDef`].
    pub fn symbol_name(&self) -> crate::types::symbols::SymbolName {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.p[0].to_le_bytes());
        b[8..].copy_from_slice(&self.p[1].to_le_bytes());
        crate::types::symbols::SymbolName::from_padded(b)
    }
}

/// Number of events a depth message with `bids` and `asks` levels becomes (header included).
#[inline]
pub const fn depth_event_count(bids: usize, asks: usize) -> usize {
    1 + bids.div_ceil(LEVELS_PER_EVENT) + asks.div_ceil(LEVELS_PER_EVENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_ticker_packing_round_trips() {
        let mut e = MarketEvent::new(EventKind::BookTicker, 1, 0, 0, 0);
        e.p[0] = MarketEvent::pack_prices(281451, 281452).unwrap();
        e.p[1] = 3868;
        e.p[2] = 6887;
        e.p[3] = 2710246762461;
        assert_eq!(e.book_ticker(), (281451, 3868, 281452, 6887, 2710246762461));
        assert!(MarketEvent::pack_prices(-1, 5).is_none());
        assert!(MarketEvent::pack_prices(1, 1 << 33).is_none());
    }

    #[test]
    fn symbol_def_round_trips() {
        let name = crate::types::symbols::SymbolName::new(b"BTCUSDT").unwrap();
        let e = MarketEvent::symbol_def(3, name, Some(Scale::decimals(2)), None);
        assert_eq!((e.kind, e.symbol, e.symbol_name()), (EventKind::SymbolDef, 3, name));
        assert_eq!((e.symbol_price_scale(), e.symbol_qty_scale()), (Some(Scale::decimals(2)), None));
    }

    #[test]
    fn depth_event_count_rounds_up() {
        assert_eq!(depth_event_count(0, 0), 1);
        assert_eq!(depth_event_count(1, 0), 2);
        assert_eq!(depth_event_count(20, 20), 21);
        assert_eq!(depth_event_count(3, 3), 5);
    }
}

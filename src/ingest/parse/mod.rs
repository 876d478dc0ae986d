//! Wire parser: Binance USDⓈ-M futures frames → [`MarketEvent`]s.
//!
//! Accepts raw frames and the combined-stream wrapper `{"stream":..,"data":..}` for `aggTrade`, `trade`,
//! `depthUpdate` (diff and partial), `bookTicker` and `markPriceUpdate`, the REST `/fapi/v1/depth` body (a
//! snapshot) and the REST `/fapi/v1/exchangeInfo` body (which updates the symbol table and is the only frame that
//! allocates). Subscription replies (`{"result":..,"id":..}`) are counted as control frames.
//!
//! Contracts:
//! - The frame is copied into one reused, padded buffer and parsed by simd-json into one reused tape; the tape is
//!   walked directly (no DOM, no `String`), so a frame allocates nothing after warm-up.
//! - Unknown fields are ignored; an unknown event type is counted ([`ParseStats::unknown_event`]).
//! - A malformed frame returns a [`ParseError`] and is counted by kind in [`ParseStats::malformed`]; the first
//!   frame of each kind is logged to stderr once with a short sample. Nothing panics; the caller goes on.
//! - The events of one frame are appended to `out` as a unit; on error `out` is restored to its length on entry,
//!   except for the `SymbolDef` events announcing a symbol or a scale the failed frame taught the table (so the
//!   compute thread's copy of the table never falls behind the parser's).
//! - Values: a trade's price and quantity, a bookTicker's four prices and quantities and a markPriceUpdate's mark
//!   and index prices must be > 0, else [`ParseError::NotPositive`] (checked before the frame may teach the symbol
//!   table a scale); a depth level may have quantity 0 (a deleted level) but no negative value
//!   ([`ParseError::PriceRange`]). Funding rates may be negative; a markPriceUpdate without `r` is
//!   [`ParseError::MissingField`], a non-numeric `p` or `r` [`ParseError::Decimal`].
//! - Limits: a frame is at most `max_frame_bytes`; a depth side has at most [`MAX_LEVELS_PER_SIDE`] levels.

pub(crate) mod depth_shape;
pub(crate) mod exchange_info;
pub(crate) mod fast;
pub(crate) mod fields;
pub(crate) mod shapes;
pub(crate) mod swar;
pub(crate) mod tape;

pub(crate) use exchange_info::bundled_specs;
pub use exchange_info::parse_exchange_info;
pub use fields::{MAX_LEVELS_PER_SIDE, ParseError};

use exchange_info::specs_from_tape;
use fields::{F, LevelArray, Msg, Val, is_partial_depth_stream};
use tape::TapeMsg;

use simd_json::{Node, Tape};

use crate::types::decimal::{Decimal, Scale, parse_e8};
use crate::types::event::{EventKind, LEVELS_PER_EVENT, MarketEvent, SymbolId, depth_event_count, flags};
use crate::types::symbols::{SYMBOL_NAME_MAX, SymbolName, SymbolTable};
use swar::parse_decimal;

/// Most events one frame can become.
pub const MAX_EVENTS_PER_FRAME: usize = depth_event_count(MAX_LEVELS_PER_SIDE, MAX_LEVELS_PER_SIDE) + 1;
/// Default largest frame accepted, in bytes (a 1000-level snapshot is ≈ 45 KB; exchangeInfo ≈ 1 MB today).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;

/// What a successfully parsed frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Market data: events were appended.
    Market,
    /// A REST snapshot: events were appended.
    Snapshot,
    /// exchangeInfo: the symbol table was updated (SymbolDef events appended for changed symbols).
    ExchangeInfo,
    /// A subscription reply or other control message.
    Control,
    /// Valid JSON with an event type we do not handle.
    Unknown,
}

/// Counters of the parser. Plain integers: owned by the network thread, copied out for reports.
#[derive(Debug, Clone, Default)]
pub struct ParseStats {
    /// Frames offered.
    pub frames: u64,
    /// Market trades.
    pub trade: u64,
    /// Non-market prints (insurance fund, ADL, NA).
    pub non_market_trade: u64,
    /// Depth updates (diff and partial).
    pub depth: u64,
    /// bookTicker messages.
    pub book_ticker: u64,
    /// markPriceUpdate messages.
    pub mark_price: u64,
    /// REST depth snapshots.
    pub snapshot: u64,
    /// exchangeInfo bodies.
    pub exchange_info: u64,
    /// Control frames (subscription replies).
    pub control: u64,
    /// Frames with an unknown event type.
    pub unknown_event: u64,
    /// Malformed frames by [`ParseError::index`].
    pub malformed: [u64; ParseError::KINDS],
    /// Symbols whose scales were inferred from decimals (no exchangeInfo entry).
    pub inferred_scales: u64,
    /// Frames taken by the hand-written fast path (the rest went through simd-json).
    pub fast_path: u64,
}

impl ParseStats {
    /// All malformed frames.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }
}

/// Per-frame facts from the transport.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameMeta {
    /// Local receive time, ns since the epoch.
    pub local_ts_ns: i64,
    /// Monotonic stamp when the frame was handed to the parser.
    pub stamp_ns: u64,
    /// Symbol a bare REST depth snapshot belongs to (from its URL or the recording's context).
    pub snapshot_symbol: Option<SymbolName>,
}

/// Which scale of a symbol.
#[derive(Clone, Copy)]
enum ScaleOf {
    Price,
    Qty,
}

/// What every frame handler returns.
type Parsed = Result<FrameKind, ParseError>;

/// A depth message's two sides.
#[derive(Clone, Copy)]
struct Sides {
    bids: LevelArray,
    asks: LevelArray,
}

/// The price and quantity scales of one symbol.
#[derive(Clone, Copy)]
struct Scales {
    price: Scale,
    qty: Scale,
}

/// The value of a required field, or `MissingField`; `pick` takes the expected type or it is `WrongType`.
#[inline]
fn need<'i, T>(m: &impl Msg<'i>, f: F, name: &'static str, pick: fn(Val<'i>) -> Option<T>) -> Result<T, ParseError> {
    match m.val(f) {
        Val::Missing => Err(ParseError::MissingField(name)),
        v => pick(v).ok_or(ParseError::WrongType(name)),
    }
}

#[inline]
fn need_str<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<&'i str, ParseError> {
    need(m, f, name, Val::as_str)
}

#[inline]
fn need_int<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<i64, ParseError> {
    need(m, f, name, Val::as_int)
}

#[inline]
fn need_bool<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<bool, ParseError> {
    need(m, f, name, Val::as_bool)
}

#[inline]
fn opt_int<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<Option<i64>, ParseError> {
    match m.val(f) {
        Val::Missing => Ok(None),
        _ => need_int(m, f, name).map(Some),
    }
}

#[inline]
fn opt_str<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<Option<&'i str>, ParseError> {
    match m.val(f) {
        Val::Missing => Ok(None),
        _ => need_str(m, f, name).map(Some),
    }
}

/// A depth side's levels array.
#[inline]
fn need_side<'i>(m: &impl Msg<'i>, f: F, name: &'static str) -> Result<LevelArray, ParseError> {
    let side = need(m, f, name, Val::as_levels)?;
    if side.len as usize > MAX_LEVELS_PER_SIDE { Err(ParseError::TooManyLevels) } else { Ok(side) }
}

#[inline]
fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}

#[inline]
fn dec(scale: Scale, s: &str, name: &'static str) -> Result<i64, ParseError> {
    parse_decimal(s.as_bytes()).and_then(|d| scale.units_of(d)).map_err(|e| ParseError::Decimal(name, e))
}

/// A decimal that must be > 0 (a trade's, a ticker's or a mark price's price or quantity): parsed once, checked
/// before the frame may teach the symbol table a scale, and converted with [`units`].
#[inline]
fn positive(s: &str, name: &'static str) -> Result<Decimal, ParseError> {
    let d = parse_decimal(s.as_bytes()).map_err(|e| ParseError::Decimal(name, e))?;
    if d.mantissa > 0 { Ok(d) } else { Err(ParseError::NotPositive(name)) }
}

/// A decimal from [`positive`] in units of `scale` (> 0: a positive mantissa on the grid is at least one unit).
#[inline]
fn units(scale: Scale, d: Decimal, name: &'static str) -> Result<i64, ParseError> {
    scale.units_of(d).map_err(|e| ParseError::Decimal(name, e))
}

/// A 1e-8 fixed-point price that must be > 0 (a mark or index price).
#[inline]
fn positive_e8(s: &str, name: &'static str) -> Result<i64, ParseError> {
    match parse_e8(s.as_bytes()) {
        Ok(v) if v > 0 => Ok(v),
        Ok(_) => Err(ParseError::NotPositive(name)),
        Err(e) => Err(ParseError::Decimal(name, e)),
    }
}

/// Exchange time: `T` when present, else `E`, in ns.
#[inline]
fn exch_time<'i>(m: &impl Msg<'i>) -> Result<i64, ParseError> {
    match opt_int(m, F::UpperT, "T")? {
        Some(t) => Ok(ms_to_ns(t)),
        None => need_int(m, F::UpperE, "E").map(ms_to_ns),
    }
}

/// Symbols remembered by their bytes as written (see [`Parser::intern`]): a combined stream interleaves a few.
const RECENT_SYMBOLS: usize = 8;

/// One remembered symbol: its bytes as written, zero-padded into two words, their count (0 = unused) and its id.
#[derive(Clone, Copy, Default)]
struct RecentSymbol {
    lo: u64,
    hi: u64,
    len: u8,
    id: SymbolId,
}

/// The recently interned symbols, replaced oldest first.
#[derive(Clone, Copy, Default)]
struct RecentSymbols {
    entries: [RecentSymbol; RECENT_SYMBOLS],
    next: usize,
}

const _: () = assert!(SYMBOL_NAME_MAX <= 16, "a symbol's bytes fit two words");

impl RecentSymbols {
    /// The two words of `raw` (1 to [`SYMBOL_NAME_MAX`] bytes), or `None` for any other length.
    #[inline(always)]
    fn words(raw: &[u8]) -> Option<(u64, u64)> {
        if raw.is_empty() || raw.len() > SYMBOL_NAME_MAX {
            return None;
        }
        let split = raw.len().min(8);
        Some((swar::load_le(&raw[..split]), swar::load_le(&raw[split..])))
    }

    #[inline]
    fn find(&self, raw: &[u8]) -> Option<SymbolId> {
        let (lo, hi) = Self::words(raw)?;
        let len = raw.len() as u8;
        self.entries.iter().find(|e| e.len == len && e.lo == lo && e.hi == hi).map(|e| e.id)
    }

    #[inline]
    fn remember(&mut self, raw: &[u8], id: SymbolId) {
        if let Some((lo, hi)) = Self::words(raw) {
            self.entries[self.next] = RecentSymbol { lo, hi, len: raw.len() as u8, id };
            self.next = (self.next + 1) % RECENT_SYMBOLS;
        }
    }
}

/// The wire parser (see the module doc).
pub struct Parser {
    symbols: SymbolTable,
    buf: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: Option<Tape<'static>>,
    max_frame_bytes: usize,
    fast_path: bool,
    /// The shape scanners are tried first (see [`Parser::set_shape_scanners`]).
    shapes: bool,
    /// Counters.
    pub stats: ParseStats,
    logged: [bool; ParseError::KINDS],
    logged_unknown: bool,
    pending_def: [SymbolId; 4],
    n_pending_def: usize,
    /// The symbols interned last, as written in the frame, and their ids (the same few repeat frame after frame).
    recent_symbols: RecentSymbols,
    /// The fast path's level spans, preallocated to [`fast::MAX_SPANS`] (never grows).
    spans: Vec<fast::LevelSpan>,
    /// Frames the shape scanners took (a part of [`ParseStats::fast_path`]; kept out of the reported counters).
    shape_frames: u64,
}

impl Parser {
    /// A parser with the given symbol table and frame limit; buffers are sized for `max_frame_bytes` up front.
    pub fn new(symbols: SymbolTable, max_frame_bytes: usize) -> Self {
        let warm = max_frame_bytes.min(1 << 20);
        let mut tape = Tape::null().reset();
        tape.0.reserve(warm / 2);
        Parser {
            symbols,
            buf: Vec::with_capacity(warm + simd_json::INPUT_PADDING + 64),
            buffers: simd_json::Buffers::new(warm),
            tape: Some(tape),
            max_frame_bytes,
            fast_path: true,
            shapes: true,
            stats: ParseStats::default(),
            logged: [false; ParseError::KINDS],
            logged_unknown: false,
            pending_def: [0; 4],
            n_pending_def: 0,
            spans: Vec::with_capacity(fast::MAX_SPANS),
            recent_symbols: RecentSymbols::default(),
            shape_frames: 0,
        }
    }

    /// Turns the hand-written fast path on or off (on by default). Off, every frame goes through simd-json; the
    /// tests compare both on every real recording.
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }

    /// Turns the shape scanners for the small hot frames ([`shapes`]) on or off (on by default); off, those frames
    /// go through the general fast scanner. Only for the tests, which compare every path on every real frame.
    #[doc(hidden)]
    pub fn set_shape_scanners(&mut self, on: bool) {
        self.shapes = on;
    }

    /// Frames the fast path handled (the rest went through simd-json).
    pub fn fast_frames(&self) -> u64 {
        self.stats.fast_path
    }

    /// Frames the shape scanners handled (a part of [`Parser::fast_frames`]). Only for the tests, which check
    /// that the shape scanners were used.
    #[doc(hidden)]
    pub fn shape_frames(&self) -> u64 {
        self.shape_frames
    }

    /// The symbol table.
    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    /// Parses one frame, appending its events to `out` (see the module doc for the contract).
    pub fn parse_frame(
        &mut self,
        frame: &[u8],
        meta: &FrameMeta,
        out: &mut Vec<MarketEvent>,
    ) -> Result<FrameKind, ParseError> {
        self.stats.frames += 1;
        let start = out.len();
        self.n_pending_def = 0;
        let r = self.parse_inner(frame, meta, out, start);
        match r {
            Ok(k) => {
                self.flush_defs(meta, out, start);
                match k {
                    FrameKind::Unknown => {
                        self.stats.unknown_event += 1;
                        if !self.logged_unknown {
                            self.logged_unknown = true;
                            log::warn!("unknown event type (counted, logged once): {}", sample(frame));
                        }
                    }
                    FrameKind::Control => self.stats.control += 1,
                    FrameKind::ExchangeInfo => self.stats.exchange_info += 1,
                    FrameKind::Snapshot => self.stats.snapshot += 1,
                    FrameKind::Market => {}
                }
                Ok(k)
            }
            Err(e) => {
                out.truncate(start);
                // Scale inferences made by a frame that then failed are kept (they came from valid numbers);
                // announce them so downstream tables stay in step with ours.
                self.flush_defs(meta, out, start);
                let k = e.index();
                self.stats.malformed[k] += 1;
                if !self.logged[k] {
                    self.logged[k] = true;
                    log::warn!("malformed frame ({e}; counted, logged once per kind): {}", sample(frame));
                }
                Err(e)
            }
        }
    }

    fn flush_defs(&mut self, meta: &FrameMeta, out: &mut Vec<MarketEvent>, start: usize) {
        for k in 0..self.n_pending_def {
            let id = self.pending_def[k];
            let e = self.symbol_def(id, meta);
            out.insert(start + k, e);
        }
        self.n_pending_def = 0;
    }

    /// A `SymbolDef` event for `id` with its current scales.
    pub fn symbol_def(&self, id: SymbolId, meta: &FrameMeta) -> MarketEvent {
        let s = self.symbols.get(id);
        let mut e = MarketEvent::symbol_def(id, s.name, s.price, s.qty);
        e.local_ts_ns = meta.local_ts_ns;
        e.stamp_ns = meta.stamp_ns;
        e
    }

    fn announce(&mut self, id: SymbolId) {
        if self.pending_def[..self.n_pending_def].contains(&id) {
            return;
        }
        if self.n_pending_def < self.pending_def.len() {
            self.pending_def[self.n_pending_def] = id;
            self.n_pending_def += 1;
        }
    }

    /// The id of `raw`, interning it when new. The last [`RECENT_SYMBOLS`] symbols are remembered by their bytes as
    /// written (ids are stable: the table never removes or renumbers an entry), which skips the table's
    /// normalisation and linear lookup for them.
    fn intern(&mut self, raw: &str) -> Result<SymbolId, ParseError> {
        if let Some(id) = self.recent_symbols.find(raw.as_bytes()) {
            return Ok(id);
        }
        let (id, new) = self.symbols.intern(raw.as_bytes()).map_err(ParseError::Symbol)?;
        if new {
            self.announce(id);
        }
        self.recent_symbols.remember(raw.as_bytes(), id);
        Ok(id)
    }

    /// The id of `raw` when it is already interned, without interning it (so a frame the shape scanners then
    /// refuse leaves no trace in the table or in the `SymbolDef` events); remembered like [`Parser::intern`].
    #[inline]
    fn known_symbol(&mut self, raw: &str) -> Option<SymbolId> {
        if let Some(id) = self.recent_symbols.find(raw.as_bytes()) {
            return Some(id);
        }
        let id = self.symbols.find(&SymbolName::new(raw.as_bytes())?)?;
        self.recent_symbols.remember(raw.as_bytes(), id);
        Some(id)
    }

    /// Makes sure `id` has a price scale (inferring it from `px` when unknown) and returns it.
    #[inline]
    fn price_scale(&mut self, id: SymbolId, px: &str, name: &'static str) -> Result<Scale, ParseError> {
        match self.symbols.get(id).price {
            Some(s) => Ok(s),
            None => self.infer_scale(id, ScaleOf::Price, px, name),
        }
    }

    /// Same as [`Parser::price_scale`] for quantities; a zero quantity never fixes the scale.
    #[inline]
    fn qty_scale(&mut self, id: SymbolId, qty: &str, name: &'static str) -> Result<Scale, ParseError> {
        match self.symbols.get(id).qty {
            Some(s) => Ok(s),
            None => self.infer_scale(id, ScaleOf::Qty, qty, name),
        }
    }

    /// Infers a missing scale from the decimals of `text` (no exchangeInfo entry), logs it and announces it.
    fn infer_scale(
        &mut self,
        id: SymbolId,
        which: ScaleOf,
        text: &str,
        name: &'static str,
    ) -> Result<Scale, ParseError> {
        let d = parse_decimal(text.as_bytes()).map_err(|e| ParseError::Decimal(name, e))?;
        let s = Scale::decimals(d.dec);
        let spec = self.symbols.get_mut(id);
        let what = match which {
            ScaleOf::Price => {
                spec.price = Some(s);
                self.stats.inferred_scales += 1;
                "price tick"
            }
            ScaleOf::Qty if d.mantissa == 0 => return Ok(s),
            ScaleOf::Qty => {
                spec.qty = Some(s);
                "quantity step"
            }
        };
        log::warn!(
            "{}: no exchangeInfo entry (neither given nor bundled); {what} inferred as 1e-{} from {text:?}",
            self.symbols.get(id).name,
            d.dec
        );
        self.announce(id);
        Ok(s)
    }

    #[inline(always)]
    fn parse_inner(&mut self, frame: &[u8], meta: &FrameMeta, out: &mut Vec<MarketEvent>, start: usize) -> Parsed {
        if frame.len() > self.max_frame_bytes {
            return Err(ParseError::TooLarge(frame.len()));
        }
        if self.fast_path {
            if let Some(hot) = if self.shapes { shapes::scan(frame) } else { None } {
                // The handler `event` would pick for the shape's `"e"`, called directly.
                let r = match &hot {
                    shapes::Hot::AggTrade(m) => self.trade(m, true, meta, out),
                    shapes::Hot::Trade(m) => self.trade(m, false, meta, out),
                    shapes::Hot::BookTicker(m) => self.book_ticker(m, meta, out),
                    shapes::Hot::Depth(d) => self.depth_shape(frame, d, meta, out).ok_or(ParseError::Shape),
                    shapes::Hot::Snapshot(h) => self.snapshot_shape(frame, h, meta, out).ok_or(ParseError::Shape),
                };
                if let Ok(k) = r {
                    self.stats.fast_path += 1;
                    self.shape_frames += 1;
                    return Ok(k);
                }
                out.truncate(start);
                // A depth frame the shape scanner refused (its levels are read only there) goes to the general
                // scanner; any other error is reported by simd-json (canonical), as for the general path below.
                if !matches!(hot, shapes::Hot::Depth(_) | shapes::Hot::Snapshot(_)) {
                    return self.parse_simd(frame, meta, out);
                }
            }
            let mut vals = fast::FastVals::new();
            // Taken for the frame (a pointer swap) so the handlers may borrow the parser mutably.
            let mut spans = std::mem::take(&mut self.spans);
            let r = fast::scan(frame, &mut vals, &mut spans).map(|sc| match &sc.inner {
                Some(inner) => self.event(inner, sc.stream, meta, out),
                None => self.dispatch_object(&sc.root, meta, out),
            });
            self.spans = spans;
            if let Some(Ok(k)) = r
                && k != FrameKind::Unknown
            {
                self.stats.fast_path += 1;
                return Ok(k);
            }
            // Anything the fast path does not take (or rejects) goes through simd-json, which gives the canonical
            // result and error.
            out.truncate(start);
        }
        self.parse_simd(frame, meta, out)
    }

    /// The simd-json path: the frame copied into the padded buffer, its tape filled and walked.
    fn parse_simd(&mut self, frame: &[u8], meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        self.buf.clear();
        self.buf.extend_from_slice(frame);
        let len = self.buf.len();
        self.buf.resize(len + simd_json::INPUT_PADDING, 0);
        let mut buf = std::mem::take(&mut self.buf);
        let mut tape: Tape<'_> = self.tape.take().unwrap_or_else(|| Tape::null().reset()).reset();
        let r = match simd_json::fill_tape_padded(&mut buf, len, &mut self.buffers, &mut tape) {
            Ok(()) => self.dispatch(&tape.0, meta, out),
            Err(_) => Err(ParseError::Json),
        };
        self.tape = Some(tape.reset());
        self.buf = buf;
        r
    }

    fn dispatch(&mut self, nodes: &[Node<'_>], meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        if nodes.is_empty() {
            return Err(ParseError::Json);
        }
        let root = TapeMsg::collect(nodes, 0)?;
        if let Val::Obj(d) = root.val(F::Data) {
            // Combined-stream wrapper.
            let stream = opt_str(&root, F::Stream, "stream")?;
            let inner = TapeMsg::collect(nodes, d as usize)?;
            return self.event(&inner, stream, meta, out);
        }
        if let Val::Arr(si, _) = root.val(F::Symbols) {
            let specs = specs_from_tape(nodes, si as usize)?;
            for id in self.symbols.set_specs(specs) {
                self.announce(id);
            }
            return Ok(FrameKind::ExchangeInfo);
        }
        self.dispatch_object(&root, meta, out)
    }

    /// A frame that is not a combined-stream wrapper: a raw event, a REST snapshot, or a control reply.
    fn dispatch_object<'i>(&mut self, root: &impl Msg<'i>, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        if root.val(F::LowerE) != Val::Missing {
            return self.event(root, None, meta, out);
        }
        if root.val(F::LastUpdateId) != Val::Missing {
            return self.snapshot(root, meta, out);
        }
        if root.val(F::Id) != Val::Missing && root.val(F::Result) != Val::Missing {
            return Ok(FrameKind::Control);
        }
        Ok(FrameKind::Unknown)
    }

    /// An event; `stream` is the combined-stream wrapper's stream name, if any (it tells a partial-depth stream,
    /// looked at only for a depth update).
    fn event<'i>(
        &mut self,
        m: &impl Msg<'i>,
        stream: Option<&str>,
        meta: &FrameMeta,
        out: &mut Vec<MarketEvent>,
    ) -> Parsed {
        match need_str(m, F::LowerE, "e")? {
            "aggTrade" => self.trade(m, true, meta, out),
            "trade" => self.trade(m, false, meta, out),
            "depthUpdate" => self.depth(m, stream.is_some_and(is_partial_depth_stream), meta, out),
            "bookTicker" => self.book_ticker(m, meta, out),
            "markPriceUpdate" => self.mark_price(m, meta, out),
            _ => Ok(FrameKind::Unknown),
        }
    }

    // Always inlined, as `parse_inner`: with the depth shape arms LLVM stopped inlining one or the other (+95
    // instructions per aggTrade frame under callgrind, PERF.md "Parser, fourth step").
    #[inline(always)]
    fn trade<'i>(&mut self, m: &impl Msg<'i>, agg: bool, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        let sym = need_str(m, F::LowerS, "s")?;
        let px = need_str(m, F::LowerP, "p")?;
        let qty = need_str(m, F::LowerQ, "q")?;
        let maker = need_bool(m, F::LowerM, "m")?;
        let ts = exch_time(m)?;
        let (id, n) = if agg {
            let a = need_int(m, F::LowerA, "a")?;
            let n = match (opt_int(m, F::LowerF, "f")?, opt_int(m, F::LowerL, "l")?) {
                (Some(f), Some(l)) => l.saturating_sub(f).saturating_add(1).max(1),
                _ => 1,
            };
            (a, n)
        } else {
            (need_int(m, F::LowerT, "t")?, 1)
        };
        let mut fl = if maker { flags::BUYER_MAKER } else { 0 };
        let mut kind = EventKind::Trade;
        if agg {
            fl |= flags::AGG;
        } else {
            let x = need_str(m, F::UpperX, "X")?;
            if x != "MARKET" {
                kind = EventKind::NonMarketTrade;
                fl |= match x {
                    "INSURANCE_FUND" => flags::PRINT_INSURANCE_FUND,
                    "ADL" => flags::PRINT_ADL,
                    _ => flags::PRINT_NA,
                };
            }
        }
        let (pd, qd) = (positive(px, "p")?, positive(qty, "q")?);
        let sid = self.intern(sym)?;
        let ps = self.price_scale(sid, px, "p")?;
        let qs = self.qty_scale(sid, qty, "q")?;
        let mut ev = MarketEvent::new(kind, sid, ts, meta.local_ts_ns, meta.stamp_ns);
        ev.flags = fl;
        ev.p = [units(ps, pd, "p")?, units(qs, qd, "q")?, id, n];
        out.push(ev);
        if kind == EventKind::Trade {
            self.stats.trade += 1;
        } else {
            self.stats.non_market_trade += 1;
        }
        Ok(FrameKind::Market)
    }

    /// The first (price, qty) strings of a side, for scale inference, preferring a nonzero quantity.
    fn probe_level<'i>(m: &impl Msg<'i>, side: LevelArray) -> Option<(&'i str, &'i str)> {
        let mut first = None;
        let mut nonzero = None;
        // Ignoring the result is right: the walk is stopped early with an error on purpose, and a malformed level
        // is reported by the real walk in `levels` that follows.
        let _ = m.for_levels(side, |p, q| {
            if first.is_none() {
                first = Some((p, q));
            }
            if q.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
                nonzero = Some((p, q));
                return Err(ParseError::Shape); // stop early
            }
            Ok(())
        });
        nonzero.or(first)
    }

    /// Appends continuation events for one side: one `reserve` for the side, then each event written into its
    /// slot of the spare capacity, and the length set once at the end (nothing is appended on error).
    fn levels<'i>(
        m: &impl Msg<'i>,
        side: LevelArray,
        scales: Scales,
        head: &MarketEvent,
        side_flags: u8,
        out: &mut Vec<MarketEvent>,
    ) -> Result<(), ParseError> {
        let Scales { price: ps, qty: qs } = scales;
        let n_events = (side.len as usize).div_ceil(LEVELS_PER_EVENT);
        out.reserve(n_events);
        let mut slots = out.spare_capacity_mut()[..n_events].iter_mut();
        let mut written = 0;
        let mut k = 0;
        let mut ev = MarketEvent::new(EventKind::Levels, head.symbol, head.exch_ts_ns, head.local_ts_ns, head.stamp_ns);
        ev.flags = side_flags;
        m.for_levels(side, |p, q| {
            let px = dec(ps, p, "price")?;
            let qty = dec(qs, q, "qty")?;
            if px < 0 || qty < 0 {
                return Err(ParseError::PriceRange);
            }
            ev.p[2 * k] = px;
            ev.p[2 * k + 1] = qty;
            k += 1;
            if k == LEVELS_PER_EVENT {
                ev.flags = side_flags | flags::TWO_LEVELS;
                // Both walks call back exactly `side.len` times, so a slot is always there.
                slots.next().ok_or(ParseError::Shape)?.write(ev);
                written += 1;
                ev.p = [0; 4];
                ev.flags = side_flags;
                k = 0;
            }
            Ok(())
        })?;
        if k > 0 {
            slots.next().ok_or(ParseError::Shape)?.write(ev);
            written += 1;
        }
        let len = out.len() + written;
        // SAFETY: the `written` slots after the old length were initialised above through `MaybeUninit::write`
        // (in order, from the first spare slot), and `reserve(n_events)` with `written <= n_events` keeps them
        // inside the capacity.
        unsafe { out.set_len(len) };
        Ok(())
    }

    /// Appends a depth header (`head`, for `head.symbol`) and its levels, inferring the scales when unknown.
    fn depth_body<'i>(
        &mut self,
        m: &impl Msg<'i>,
        Sides { bids, asks }: Sides,
        mut head: MarketEvent,
        level_flags: u8,
        out: &mut Vec<MarketEvent>,
    ) -> Result<(), ParseError> {
        let sid = head.symbol;
        let known = self.symbols.get(sid);
        let (mut ps, mut qs) = (known.price, known.qty);
        if (ps.is_none() || qs.is_none())
            && let Some((p, q)) = Self::probe_level(m, bids).or_else(|| Self::probe_level(m, asks))
        {
            ps = Some(self.price_scale(sid, p, "price")?);
            qs = Some(self.qty_scale(sid, q, "qty")?);
        }
        // With no levels at all there is nothing to scale.
        let ps = ps.unwrap_or(Scale::decimals(0));
        let qs = qs.unwrap_or(Scale::decimals(0));
        head.set_level_counts(bids.len, asks.len);
        out.push(head);
        let scales = Scales { price: ps, qty: qs };
        Self::levels(m, bids, scales, &head, level_flags, out)?;
        Self::levels(m, asks, scales, &head, level_flags | flags::ASK, out)?;
        Ok(())
    }

    fn depth<'i>(&mut self, m: &impl Msg<'i>, partial: bool, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        let sym = need_str(m, F::LowerS, "s")?;
        let ts = exch_time(m)?;
        let first = need_int(m, F::UpperU, "U")?;
        let last = need_int(m, F::LowerU, "u")?;
        let prev = need_int(m, F::Pu, "pu")?;
        let sides = Sides { bids: need_side(m, F::LowerB, "b")?, asks: need_side(m, F::LowerA, "a")? };
        let sid = self.intern(sym)?;
        let mut head = MarketEvent::new(EventKind::Depth, sid, ts, meta.local_ts_ns, meta.stamp_ns);
        head.p[0] = first;
        head.p[1] = last;
        head.p[2] = prev;
        if partial {
            head.flags = flags::PARTIAL;
        }
        self.depth_body(m, sides, head, 0, out)?;
        self.stats.depth += 1;
        Ok(FrameKind::Market)
    }

    /// Both scales of `sid` when it has them (else the general path infers them, see [`Parser::depth_body`]).
    #[inline]
    fn known_scales(&self, sid: SymbolId) -> Option<depth_shape::LevelScales> {
        let s = self.symbols.get(sid);
        Some(depth_shape::LevelScales { price: s.price?, qty: s.qty? })
    }

    /// A depthUpdate read by the shape scanner: its header and levels in one pass ([`depth_shape::append_depth`]),
    /// the events [`Parser::depth`] would append. `None` (nothing appended, nothing interned) when the rest of the
    /// frame is not the expected shape, or the symbol is new or has no scales yet (the general path interns it and
    /// infers them).
    fn depth_shape(
        &mut self,
        frame: &[u8],
        d: &shapes::DepthHead<'_>,
        meta: &FrameMeta,
        out: &mut Vec<MarketEvent>,
    ) -> Option<FrameKind> {
        let sid = self.known_symbol(d.symbol)?;
        let scales = self.known_scales(sid)?;
        let mut head = MarketEvent::new(EventKind::Depth, sid, ms_to_ns(d.trade_ms), meta.local_ts_ns, meta.stamp_ns);
        head.p[0] = d.first_id;
        head.p[1] = d.last_id;
        head.p[2] = d.prev_id;
        let layout = match d.stream {
            Some(st) => {
                if is_partial_depth_stream(st) {
                    head.flags = flags::PARTIAL;
                }
                &depth_shape::UPDATE_WRAPPED
            }
            None => &depth_shape::UPDATE_RAW,
        };
        depth_shape::append_depth::<false>(frame, d.bids_at, layout, scales, head, 0, out)?;
        self.stats.depth += 1;
        Some(FrameKind::Market)
    }

    /// A REST depth snapshot read by the shape scanner, as [`Parser::depth_shape`] for [`Parser::snapshot`].
    fn snapshot_shape(
        &mut self,
        frame: &[u8],
        h: &depth_shape::SnapshotHead,
        meta: &FrameMeta,
        out: &mut Vec<MarketEvent>,
    ) -> Option<FrameKind> {
        let sid = self.known_symbol(meta.snapshot_symbol?.as_str())?;
        let scales = self.known_scales(sid)?;
        let ts = ms_to_ns(h.trade_ms);
        let mut head = MarketEvent::new(EventKind::Snapshot, sid, ts, meta.local_ts_ns, meta.stamp_ns);
        head.p[0] = h.last_update_id;
        depth_shape::append_depth::<true>(
            frame,
            h.bids_at,
            &depth_shape::SNAPSHOT,
            scales,
            head,
            flags::SNAPSHOT,
            out,
        )?;
        Some(FrameKind::Snapshot)
    }

    fn snapshot<'i>(&mut self, m: &impl Msg<'i>, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        let lid = need_int(m, F::LastUpdateId, "lastUpdateId")?;
        let sides = Sides { bids: need_side(m, F::Bids, "bids")?, asks: need_side(m, F::Asks, "asks")? };
        let ts = match exch_time(m) {
            Ok(t) => t,
            Err(ParseError::MissingField(_)) => meta.local_ts_ns,
            Err(e) => return Err(e),
        };
        let name = meta.snapshot_symbol.ok_or(ParseError::SnapshotWithoutSymbol)?;
        let sid = self.intern(name.as_str())?;
        let mut head = MarketEvent::new(EventKind::Snapshot, sid, ts, meta.local_ts_ns, meta.stamp_ns);
        head.p[0] = lid;
        self.depth_body(m, sides, head, flags::SNAPSHOT, out)?;
        Ok(FrameKind::Snapshot)
    }

    fn book_ticker<'i>(&mut self, m: &impl Msg<'i>, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        let sym = need_str(m, F::LowerS, "s")?;
        let u = need_int(m, F::LowerU, "u")?;
        let (b, bq) = (need_str(m, F::LowerB, "b")?, need_str(m, F::UpperB, "B")?);
        let (a, aq) = (need_str(m, F::LowerA, "a")?, need_str(m, F::UpperA, "A")?);
        let ts = exch_time(m)?;
        // A best level always has a price and a quantity: an empty side is not a ticker the book can match.
        let (bd, bqd) = (positive(b, "b")?, positive(bq, "B")?);
        let (ad, aqd) = (positive(a, "a")?, positive(aq, "A")?);
        let sid = self.intern(sym)?;
        let ps = self.price_scale(sid, b, "b")?;
        let qs = self.qty_scale(sid, bq, "B")?;
        let mut ev = MarketEvent::new(EventKind::BookTicker, sid, ts, meta.local_ts_ns, meta.stamp_ns);
        ev.p[0] = MarketEvent::pack_prices(units(ps, bd, "b")?, units(ps, ad, "a")?).ok_or(ParseError::PriceRange)?;
        ev.p[1] = units(qs, bqd, "B")?;
        ev.p[2] = units(qs, aqd, "A")?;
        ev.p[3] = u;
        out.push(ev);
        self.stats.book_ticker += 1;
        Ok(FrameKind::Market)
    }

    fn mark_price<'i>(&mut self, m: &impl Msg<'i>, meta: &FrameMeta, out: &mut Vec<MarketEvent>) -> Parsed {
        let sym = need_str(m, F::LowerS, "s")?;
        let p = need_str(m, F::LowerP, "p")?;
        let e_ms = need_int(m, F::UpperE, "E")?;
        // The funding rate is required: a mark price without one cannot settle funding (issue 10 item 5), so a
        // frame without it, or with a non-numeric one, is a malformed frame like a bad `p`.
        let r = need_str(m, F::LowerR, "r")?;
        let mark = positive_e8(p, "p")?;
        let index = match opt_str(m, F::LowerI, "i")? {
            Some(i) => positive_e8(i, "i")?,
            None => 0,
        };
        let rate = parse_e8(r.as_bytes()).map_err(|e| ParseError::Decimal("r", e))?;
        let next = opt_int(m, F::UpperT, "T")?.unwrap_or(0);
        let sid = self.intern(sym)?;
        let mut ev = MarketEvent::new(EventKind::MarkPrice, sid, ms_to_ns(e_ms), meta.local_ts_ns, meta.stamp_ns);
        ev.p = [mark, index, rate, next];
        out.push(ev);
        self.stats.mark_price += 1;
        Ok(FrameKind::Market)
    }
}

/// A short printable sample of a frame for logs: its first 160 bytes (invalid UTF-8 shown as U+FFFD), and its
/// length when longer. Formatting it allocates nothing.
pub(crate) fn sample(frame: &[u8]) -> Sample<'_> {
    Sample(frame)
}

/// See [`sample`].
pub(crate) struct Sample<'a>(&'a [u8]);

impl std::fmt::Display for Sample<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let n = self.0.len().min(160);
        for chunk in self.0[..n].utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        if self.0.len() > n {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

//! Single-pass scanners for the hot frames, tried before the general fast scanner ([`super::fast`]).
//!
//! An `aggTrade`, `trade`, `bookTicker` or `depthUpdate` frame, raw or in the combined-stream wrapper, and a REST
//! depth snapshot (its levels: [`super::depth_shape`]) are read in one pass with
//! its keys at the positions Binance writes them (every real recording in data/ and tests/data): each key with its
//! quotes, colon and separator is one fixed-length compare, each value is read into a typed field as it is
//! scanned (integers eight digits per step), and no slot table or key lookup is set up. The first byte that
//! differs from that exact shape (another key order, a missing, extra or duplicate key, whitespace, an escape, a
//! number that is not a plain integer, a wrong type) makes [`scan`] return `None`, and the frame goes to the
//! general fast scanner and, failing that, simd-json, which give the canonical result or error.
//!
//! The typed fields are handed to the same handlers as the other two paths through [`Msg`]: a field the shape
//! does not have is [`Val::Missing`], exactly what the general scanner records for such a frame, so the events are
//! the same (tests/fastpath.rs compares all three paths on every real frame and on mutants).

use super::fast::json_int;
use super::fields::{F, LevelArray, LevelResult, Msg, ParseError, Val};
use super::swar;

/// A frame the shape scanner read.
pub(crate) enum Hot<'i> {
    /// An `aggTrade` event.
    AggTrade(AggTrade<'i>),
    /// A `trade` event.
    Trade(Trade<'i>),
    /// A `bookTicker` event.
    BookTicker(BookTicker<'i>),
    /// A `depthUpdate` event up to its bids array (the levels are read by [`super::depth_shape::append_depth`]).
    Depth(DepthHead<'i>),
    /// A REST depth snapshot up to its bids array (likewise).
    Snapshot(super::depth_shape::SnapshotHead),
}

/// `{"e":"aggTrade","E":…,"a":…,"s":…,"p":…,"q":…,"f":…,"l":…,"T":…,"m":…}`.
pub(crate) struct AggTrade<'i> {
    event_ms: i64,
    agg_id: i64,
    symbol: &'i str,
    price: &'i str,
    qty: &'i str,
    first_id: i64,
    last_id: i64,
    trade_ms: i64,
    buyer_maker: bool,
}

/// `{"e":"trade","E":…,"T":…,"s":…,"t":…,"p":…,"q":…,"X":…,"m":…}`.
pub(crate) struct Trade<'i> {
    event_ms: i64,
    trade_ms: i64,
    symbol: &'i str,
    trade_id: i64,
    price: &'i str,
    qty: &'i str,
    print: &'i str,
    buyer_maker: bool,
}

/// `{"e":"bookTicker","u":…,"s":…,"b":…,"B":…,"a":…,"A":…,"T":…,"E":…}`.
pub(crate) struct BookTicker<'i> {
    update_id: i64,
    symbol: &'i str,
    bid: &'i str,
    bid_qty: &'i str,
    ask: &'i str,
    ask_qty: &'i str,
    trade_ms: i64,
    event_ms: i64,
}

impl<'i> Msg<'i> for AggTrade<'i> {
    #[inline(always)]
    fn val(&self, f: F) -> Val<'i> {
        match f {
            F::LowerE => Val::Str("aggTrade"),
            F::UpperE => Val::Int(self.event_ms),
            F::LowerA => Val::Int(self.agg_id),
            F::LowerS => Val::Str(self.symbol),
            F::LowerP => Val::Str(self.price),
            F::LowerQ => Val::Str(self.qty),
            F::LowerF => Val::Int(self.first_id),
            F::LowerL => Val::Int(self.last_id),
            F::UpperT => Val::Int(self.trade_ms),
            F::LowerM => Val::Bool(self.buyer_maker),
            _ => Val::Missing,
        }
    }

    fn for_levels(&self, _: LevelArray, _: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        // No field of this shape is an array, so no handler asks for levels.
        Err(ParseError::Shape)
    }
}

impl<'i> Msg<'i> for Trade<'i> {
    #[inline(always)]
    fn val(&self, f: F) -> Val<'i> {
        match f {
            F::LowerE => Val::Str("trade"),
            F::UpperE => Val::Int(self.event_ms),
            F::UpperT => Val::Int(self.trade_ms),
            F::LowerS => Val::Str(self.symbol),
            F::LowerT => Val::Int(self.trade_id),
            F::LowerP => Val::Str(self.price),
            F::LowerQ => Val::Str(self.qty),
            F::UpperX => Val::Str(self.print),
            F::LowerM => Val::Bool(self.buyer_maker),
            _ => Val::Missing,
        }
    }

    fn for_levels(&self, _: LevelArray, _: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        // No field of this shape is an array, so no handler asks for levels.
        Err(ParseError::Shape)
    }
}

impl<'i> Msg<'i> for BookTicker<'i> {
    #[inline(always)]
    fn val(&self, f: F) -> Val<'i> {
        match f {
            F::LowerE => Val::Str("bookTicker"),
            F::LowerU => Val::Int(self.update_id),
            F::LowerS => Val::Str(self.symbol),
            F::LowerB => Val::Str(self.bid),
            F::UpperB => Val::Str(self.bid_qty),
            F::LowerA => Val::Str(self.ask),
            F::UpperA => Val::Str(self.ask_qty),
            F::UpperT => Val::Int(self.trade_ms),
            F::UpperE => Val::Int(self.event_ms),
            _ => Val::Missing,
        }
    }

    fn for_levels(&self, _: LevelArray, _: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        // No field of this shape is an array, so no handler asks for levels.
        Err(ParseError::Shape)
    }
}

/// [`super::depth_shape::append_depth`] reads from `bids_at` on.
/// `E` is checked to be an integer but not kept: the general path reads `T` when it is there.
pub(crate) struct DepthHead<'i> {
    /// `T` (the general path's exchange time when present).
    pub(crate) trade_ms: i64,
    /// `s`.
    pub(crate) symbol: &'i str,
    /// `U`.
    pub(crate) first_id: i64,
    /// `u`.
    pub(crate) last_id: i64,
    /// `pu`.
    pub(crate) prev_id: i64,
    /// The wrapper's stream name, if wrapped (it tells a partial-depth stream).
    pub(crate) stream: Option<&'i str>,
    /// Offset of the bids array's `[`.
    pub(crate) bids_at: usize,
}

/// A cursor over one frame; every step either consumes exactly what it expects or fails.
struct Cur<'i> {
    b: &'i [u8],
    i: usize,
}

impl<'i> Cur<'i> {
    /// The bytes `l` (a key with its quotes and colon, or punctuation) at the cursor.
    #[inline(always)]
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + l.len()) == Some(l) {
            self.i += l.len();
            Some(())
        } else {
            None
        }
    }

    /// A string value at the cursor: printable ASCII without escapes, as the general scanner accepts.
    #[inline(always)]
    fn str(&mut self) -> Option<&'i str> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let rest = self.b.get(start..)?;
        let swar::Quote::At(n) = swar::find_quote(rest) else {
            return None;
        };
        self.i = start + n + 1;
        debug_assert!(rest[..n].iter().all(|c| (0x20..0x7f).contains(c)), "printable ASCII only");
        // SAFETY: find_quote returned At(n) only after checking every byte of rest[..n] to be printable ASCII
        // (0x20..0x7f), which is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(&rest[..n]) })
    }

    /// An integer value at the cursor ([`json_int`]).
    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        let (v, end) = json_int(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// `true` or `false` at the cursor.
    #[inline(always)]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() { Some(true) } else { self.lit(b"false").map(|()| false) }
    }

    /// The fields of an aggTrade after its `"e":"aggTrade"`, up to its closing brace.
    #[inline(always)]
    fn agg_trade(&mut self) -> Option<AggTrade<'i>> {
        self.lit(b",\"E\":")?;
        let event_ms = self.int()?;
        self.lit(b",\"a\":")?;
        let agg_id = self.int()?;
        self.lit(b",\"s\":")?;
        let symbol = self.str()?;
        self.lit(b",\"p\":")?;
        let price = self.str()?;
        self.lit(b",\"q\":")?;
        let qty = self.str()?;
        self.lit(b",\"f\":")?;
        let first_id = self.int()?;
        self.lit(b",\"l\":")?;
        let last_id = self.int()?;
        self.lit(b",\"T\":")?;
        let trade_ms = self.int()?;
        self.lit(b",\"m\":")?;
        let buyer_maker = self.boolean()?;
        self.lit(b"}")?;
        Some(AggTrade { event_ms, agg_id, symbol, price, qty, first_id, last_id, trade_ms, buyer_maker })
    }

    /// The fields of a trade after its `"e":"trade"`, up to its closing brace.
    #[inline(always)]
    fn trade(&mut self) -> Option<Trade<'i>> {
        self.lit(b",\"E\":")?;
        let event_ms = self.int()?;
        self.lit(b",\"T\":")?;
        let trade_ms = self.int()?;
        self.lit(b",\"s\":")?;
        let symbol = self.str()?;
        self.lit(b",\"t\":")?;
        let trade_id = self.int()?;
        self.lit(b",\"p\":")?;
        let price = self.str()?;
        self.lit(b",\"q\":")?;
        let qty = self.str()?;
        self.lit(b",\"X\":")?;
        let print = self.str()?;
        self.lit(b",\"m\":")?;
        let buyer_maker = self.boolean()?;
        self.lit(b"}")?;
        Some(Trade { event_ms, trade_ms, symbol, trade_id, price, qty, print, buyer_maker })
    }

    /// The fields of a bookTicker after its `"e":"bookTicker"`, up to its closing brace.
    #[inline(always)]
    fn book_ticker(&mut self) -> Option<BookTicker<'i>> {
        self.lit(b",\"u\":")?;
        let update_id = self.int()?;
        self.lit(b",\"s\":")?;
        let symbol = self.str()?;
        self.lit(b",\"b\":")?;
        let bid = self.str()?;
        self.lit(b",\"B\":")?;
        let bid_qty = self.str()?;
        self.lit(b",\"a\":")?;
        let ask = self.str()?;
        self.lit(b",\"A\":")?;
        let ask_qty = self.str()?;
        self.lit(b",\"T\":")?;
        let trade_ms = self.int()?;
        self.lit(b",\"E\":")?;
        let event_ms = self.int()?;
        self.lit(b"}")?;
        Some(BookTicker { update_id, symbol, bid, bid_qty, ask, ask_qty, trade_ms, event_ms })
    }

    /// The fields of a depthUpdate after its `"e":"depthUpdate"`, up to its bids array (the cursor is left on its
    /// `[`).
    #[inline(always)]
    fn depth(&mut self, stream: Option<&'i str>) -> Option<DepthHead<'i>> {
        self.lit(b",\"E\":")?;
        self.int()?;
        self.lit(b",\"T\":")?;
        let trade_ms = self.int()?;
        self.lit(b",\"s\":")?;
        let symbol = self.str()?;
        self.lit(b",\"U\":")?;
        let first_id = self.int()?;
        self.lit(b",\"u\":")?;
        let last_id = self.int()?;
        self.lit(b",\"pu\":")?;
        let prev_id = self.int()?;
        self.lit(b",\"b\":")?;
        Some(DepthHead { trade_ms, symbol, first_id, last_id, prev_id, stream, bids_at: self.i })
    }
}

/// Reads `frame` when it is exactly one of the shapes (raw, or wrapped as `{"stream":"…","data":{…}}` with
/// nothing around it); `None` otherwise. For a depth update or a REST snapshot only the keys before the bids are
/// read here: the rest of the frame is read by [`super::depth_shape::append_depth`], which checks it to the end.
#[inline]
pub(crate) fn scan(frame: &[u8]) -> Option<Hot<'_>> {
    let mut c = Cur { b: frame, i: 0 };
    let stream = if c.lit(b"{\"stream\":").is_some() {
        // The stream name must be a string, as the general path requires; only a depth update reads it.
        let stream = c.str()?;
        c.lit(b",\"data\":{\"e\":")?;
        Some(stream)
    } else if c.lit(b"{\"e\":").is_some() {
        None
    } else {
        return super::depth_shape::snapshot_head(frame).map(Hot::Snapshot);
    };
    let hot = if c.lit(b"\"aggTrade\"").is_some() {
        Hot::AggTrade(c.agg_trade()?)
    } else if c.lit(b"\"trade\"").is_some() {
        Hot::Trade(c.trade()?)
    } else if c.lit(b"\"bookTicker\"").is_some() {
        Hot::BookTicker(c.book_ticker()?)
    } else if c.lit(b"\"depthUpdate\"").is_some() {
        return c.depth(stream).map(Hot::Depth);
    } else {
        return None;
    };
    if stream.is_some() {
        c.lit(b"}")?;
    }
    (c.i == frame.len()).then_some(hot)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real frames from tests/data/BINANCE_FUTURES.ws.1.0.txt and data/sample/btcusdt_20230404.dat.gz.
    const AGG: &[u8] = br#"{"stream":"ctkusdt@aggTrade","data":{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10","f":23961322,"l":23961322,"T":1626992741421,"m":false}}"#;
    const TICKER: &[u8] = br#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":2710246762461,"s":"BTCUSDT","b":"28145.10","B":"3.868","a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}}"#;

    #[test]
    fn reads_the_exact_shapes_raw_and_wrapped() {
        let Some(Hot::AggTrade(a)) = scan(AGG) else { panic!("aggTrade not read") };
        assert_eq!(
            (a.event_ms, a.agg_id, a.symbol, a.price, a.qty),
            (1626992741575, 16599292, "CTKUSDT", "1.01100", "10")
        );
        assert_eq!((a.first_id, a.last_id, a.trade_ms, a.buyer_maker), (23961322, 23961322, 1626992741421, false));
        assert_eq!(a.val(F::LowerT), Val::Missing);
        let at = TICKER.windows(5).position(|w| w == b"{\"e\":").unwrap();
        let raw = &TICKER[at..TICKER.len() - 1];
        let Some(Hot::BookTicker(t)) = scan(raw) else { panic!("raw bookTicker not read") };
        assert_eq!((t.update_id, t.bid, t.ask_qty, t.event_ms), (2710246762461, "28145.10", "6.887", 1680652700435));
    }

    #[test]
    fn anything_else_is_left_to_the_general_path() {
        let agg = std::str::from_utf8(AGG).unwrap();
        for v in [
            agg.replace(r#","a":16599292"#, ""), // missing key
            agg.replace(r#""a":16599292,"s""#, r#""s":"CTKUSDT","a":16599292,"x""#), // reordered and extra
            agg.replace(r#""m":false"#, r#""m":false,"m":true"#), // duplicate
            agg.replace(r#""p":"1.01100""#, r#""p": "1.01100""#), // whitespace
            agg.replace("CTKUSDT", "CTK\\u0055SDT"), // escape
            agg.replace("16599292", "1.6599292e7"), // not an integer
            agg.replace("1626992741575", "16269927415751234567"), // too many digits
            agg.replace(r#""q":"10""#, r#""q":10"#), // wrong type
            format!("{agg} "),                   // trailing bytes
            agg[..agg.len() - 1].to_owned(),     // truncated
        ] {
            assert!(scan(v.as_bytes()).is_none(), "{v}");
        }
    }
}

//! The parser's shared field vocabulary: the field slots ([`F`]) collected in one pass over an object, the value
//! view ([`Val`]) and the message trait ([`Msg`]) that both the simd-json tape walker ([`super::tape`]) and the
//! hand-written fast path ([`super::fast`]) implement, and the error every handler returns.

use crate::types::decimal::DecimalError;
use crate::types::symbols::InternError;

/// Most levels accepted on one side of one depth message or snapshot (Binance's REST maximum is 1000).
pub const MAX_LEVELS_PER_SIDE: usize = 5000;

/// Why a frame was rejected. One variant per kind of problem; each is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Larger than the configured frame limit.
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not valid JSON (truncated, garbage, not UTF-8).
    #[error("invalid JSON")]
    Json,
    /// Valid JSON but not an object of a known shape.
    #[error("unexpected JSON shape")]
    Shape,
    /// A required field is missing.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type (e.g. a number where Binance sends a string).
    #[error("field `{0}` has the wrong type")]
    WrongType(&'static str),
    /// A price or quantity string is not a decimal or does not fit.
    #[error("field `{0}`: {1}")]
    Decimal(&'static str, DecimalError),
    /// The symbol is invalid or the symbol table is full.
    #[error("symbol: {0}")]
    Symbol(InternError),
    /// More depth levels than [`MAX_LEVELS_PER_SIDE`].
    #[error("more than {MAX_LEVELS_PER_SIDE} levels on one side")]
    TooManyLevels,
    /// A REST depth snapshot whose symbol is not known (no URL and no symbol hint).
    #[error("depth snapshot without a symbol")]
    SnapshotWithoutSymbol,
    /// A price outside the range the event can carry.
    #[error("price out of range")]
    PriceRange,
    /// A price or quantity that must be > 0 is zero or negative (a trade's `p`/`q`, a bookTicker's `b`/`B`/`a`/`A`,
    /// a markPriceUpdate's `p`/`i`).
    #[error("field `{0}` is zero or negative")]
    NotPositive(&'static str),
}

impl ParseError {
    /// Number of distinct kinds (for per-kind counters).
    pub const KINDS: usize = 11;
    /// Index for per-kind counters.
    pub fn index(&self) -> usize {
        match self {
            ParseError::TooLarge(_) => 0,
            ParseError::Json => 1,
            ParseError::Shape => 2,
            ParseError::MissingField(_) => 3,
            ParseError::WrongType(_) => 4,
            ParseError::Decimal(..) => 5,
            ParseError::Symbol(_) => 6,
            ParseError::TooManyLevels => 7,
            ParseError::SnapshotWithoutSymbol => 8,
            ParseError::PriceRange => 9,
            ParseError::NotPositive(_) => 10,
        }
    }
    /// Stable name for reports.
    pub fn kind_name(i: usize) -> &'static str {
        [
            "too_large",
            "json",
            "shape",
            "missing_field",
            "wrong_type",
            "decimal",
            "symbol",
            "too_many_levels",
            "snapshot_without_symbol",
            "price_range",
            "not_positive",
        ][i]
    }
}

/// Field slots collected in one pass over an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names, missing_docs)]
pub(crate) enum F {
    LowerE,
    UpperE,
    UpperT,
    LowerS,
    LowerP,
    LowerQ,
    LowerM,
    UpperX,
    LowerT,
    LowerA,
    LowerB,
    UpperA,
    UpperB,
    UpperU,
    LowerU,
    Pu,
    LowerI,
    LowerR,
    UpperP,
    LowerF,
    LowerL,
    LastUpdateId,
    Bids,
    Asks,
    Stream,
    Data,
    Result,
    Id,
    Symbols,
}

pub(crate) const NF: usize = 29;

#[inline]
pub(crate) fn field_of(key: &[u8]) -> Option<F> {
    Some(match key {
        b"e" => F::LowerE,
        b"E" => F::UpperE,
        b"T" => F::UpperT,
        b"s" => F::LowerS,
        b"p" => F::LowerP,
        b"q" => F::LowerQ,
        b"m" => F::LowerM,
        b"X" => F::UpperX,
        b"t" => F::LowerT,
        b"a" => F::LowerA,
        b"b" => F::LowerB,
        b"A" => F::UpperA,
        b"B" => F::UpperB,
        b"U" => F::UpperU,
        b"u" => F::LowerU,
        b"pu" => F::Pu,
        b"i" => F::LowerI,
        b"r" => F::LowerR,
        b"P" => F::UpperP,
        b"f" => F::LowerF,
        b"l" => F::LowerL,
        b"lastUpdateId" => F::LastUpdateId,
        b"bids" => F::Bids,
        b"asks" => F::Asks,
        b"stream" => F::Stream,
        b"data" => F::Data,
        b"result" => F::Result,
        b"id" => F::Id,
        b"symbols" => F::Symbols,
        _ => return None,
    })
}

/// A field value as the handlers see it, from either the simd-json tape or the fast scanner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Val<'i> {
    /// Not present.
    Missing,
    /// A string without escapes.
    Str(&'i str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// An array: a handle for [`Msg::for_levels`] and its length.
    Arr(u32, u32),
    /// An object: a handle for [`Msg::object`].
    Obj(u32),
    /// Anything else (null, float, …).
    Other,
}

/// What a level callback and [`Msg::for_levels`] return (an error stops the walk).
pub(crate) type LevelResult = Result<(), ParseError>;

/// The levels array of one depth side: the handle [`Msg::for_levels`] walks and its level count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LevelArray {
    /// Handle (a tape index or a byte offset, depending on the parser).
    pub(crate) handle: u32,
    /// Levels.
    pub(crate) len: u32,
}

impl<'i> Val<'i> {
    /// The string, if it is one.
    #[inline]
    pub(crate) fn as_str(self) -> Option<&'i str> {
        if let Val::Str(s) = self { Some(s) } else { None }
    }

    /// The integer, if it is one.
    #[inline]
    pub(crate) fn as_int(self) -> Option<i64> {
        if let Val::Int(v) = self { Some(v) } else { None }
    }

    /// The boolean, if it is one.
    #[inline]
    pub(crate) fn as_bool(self) -> Option<bool> {
        if let Val::Bool(b) = self { Some(b) } else { None }
    }

    /// The array as a depth side, if it is one.
    #[inline]
    pub(crate) fn as_levels(self) -> Option<LevelArray> {
        if let Val::Arr(handle, len) = self { Some(LevelArray { handle, len }) } else { None }
    }
}

/// One JSON object's fields, from either parser.
pub(crate) trait Msg<'i> {
    /// The value of field `f`.
    fn val(&self, f: F) -> Val<'i>;
    /// Calls `f(price, qty)` for each `[price, qty]` pair of `side`, in order.
    fn for_levels(&self, side: LevelArray, f: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult;
}

/// True for a partial book depth stream name (`btcusdt@depth5`, `btcusdt@depth20@100ms`).
///
/// A plain byte comparison over the (short) stream name: `str::find` built a two-way searcher on every
/// wrapped frame. Same result as `find("@depth")` followed by the digit check (the first occurrence decides).
#[inline]
pub(crate) fn is_partial_depth_stream(stream: &str) -> bool {
    let b = stream.as_bytes();
    match b.windows(6).position(|w| w == b"@depth") {
        Some(i) => b.get(i + 6).is_some_and(|c| c.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_partial_depth_stream;

    /// The byte comparison agrees with the `str::find` version it replaced.
    #[test]
    fn partial_depth_stream_matches_find() {
        let find = |s: &str| match s.find("@depth") {
            Some(i) => s.as_bytes().get(i + 6).is_some_and(|c| c.is_ascii_digit()),
            None => false,
        };
        for s in [
            "btcusdt@depth5",
            "btcusdt@depth20@100ms",
            "btcusdt@depth",
            "btcusdt@depth@100ms",
            "btcusdt@depth@0ms@depth5",
            "btcusdt@aggTrade",
            "@depth1",
            "@depth",
            "@dept",
            "",
            "ethusdt@bookTicker",
        ] {
            assert_eq!(is_partial_depth_stream(s), find(s), "{s}");
        }
    }
}

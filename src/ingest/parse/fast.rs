//! Hand-written scanner for the hot message shapes, tried before simd-json.
//!
//! It reads the frame in place (no copy, no tape) and accepts only a strict subset of JSON: objects whose values are
//! strings without escapes (printable ASCII only), integers of at most 18 digits without leading zeros, `true`,
//! `false`, `null`, arrays of `[string, string]` pairs (depth levels), and one nested object under `"data"` (the
//! combined-stream wrapper). Anything else — an escape, a float, another nested object or array, trailing bytes —
//! makes [`scan`] return `None` and the frame goes through simd-json, which gives the canonical result or error.
//! The handlers in [`crate::ingest::parse`] are shared by both paths through the `Msg` trait, and a test replays every real
//! recording through both paths and requires identical events.

use super::fields::{F, LevelArray, LevelResult, Msg, NF, ParseError, Val, field_of};
use std::mem::MaybeUninit;

use super::swar;

/// The field slots of one object: each slot is written only when its field is seen, and a bit of `present` says
/// which slots hold a value, so an empty set costs one word to initialise instead of ≈ 700 bytes of `Missing`.
pub(crate) struct Slots<'i> {
    present: u32,
    vals: [MaybeUninit<Val<'i>>; NF],
}

const _: () = assert!(NF <= 32, "one present bit per field slot");

impl<'i> Slots<'i> {
    #[inline(always)]
    fn new() -> Self {
        Slots { present: 0, vals: [const { MaybeUninit::uninit() }; NF] }
    }

    #[inline(always)]
    fn set(&mut self, f: F, v: Val<'i>) {
        self.vals[f as usize].write(v);
        self.present |= 1 << f as u32;
    }

    #[inline(always)]
    fn get(&self, f: F) -> Val<'i> {
        if self.present & (1 << f as u32) != 0 {
            // SAFETY: the bit of `f` is set only by `set`, right after it wrote the slot of `f`; `Val` is `Copy`,
            // so reading it out leaves the slot valid.
            unsafe { self.vals[f as usize].assume_init_read() }
        } else {
            Val::Missing
        }
    }
}

/// The field slots of one frame's root object and of its `"data"` object, filled in place by [`scan`]. The caller
/// keeps them on its stack and hands them in by reference.
pub(crate) struct FastVals<'i> {
    root: Slots<'i>,
    inner: Slots<'i>,
}

impl FastVals<'_> {
    /// Empty slots.
    #[inline]
    pub(crate) fn new() -> Self {
        FastVals { root: Slots::new(), inner: Slots::new() }
    }
}

/// The fields of one object read by the fast scanner (a view of one half of [`FastVals`]).
pub(crate) struct FastMsg<'i, 'v> {
    b: &'i [u8],
    vals: &'v Slots<'i>,
    spans: &'v [LevelSpan],
}

/// Where one depth level's price and quantity strings are in the frame (byte offsets and lengths), recorded while
/// [`scan`] validates the level arrays, so the levels are read once and never re-scanned.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LevelSpan {
    p_at: u32,
    p_len: u32,
    q_at: u32,
    q_len: u32,
}

/// Most level spans one frame may record (both sides together); a frame with more goes through simd-json, which
/// gives the canonical result (e.g. [`ParseError::TooManyLevels`], counted).
pub(crate) const MAX_SPANS: usize = 2 * super::fields::MAX_LEVELS_PER_SIDE;

/// A string of the frame that [`Sc::string`] checked.
#[inline(always)]
fn checked_str(b: &[u8], at: u32, len: u32) -> Option<&str> {
    let bytes = b.get(at as usize..(at + len) as usize)?;
    debug_assert!(bytes.iter().all(|c| (0x20..0x7f).contains(c)), "printable ASCII only");
    // SAFETY: spans are recorded only by `Sc::level`, from strings `Sc::string` checked to be printable ASCII
    // (0x20..0x7f, valid UTF-8) in this same frame `b`.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

impl<'i> Msg<'i> for FastMsg<'i, '_> {
    #[inline]
    fn val(&self, f: F) -> Val<'i> {
        self.vals.get(f)
    }

    #[inline]
    fn for_levels(&self, side: LevelArray, mut f: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        let (at, n) = (side.handle as usize, side.len as usize);
        let spans = self.spans.get(at..at + n).ok_or(ParseError::Shape)?;
        for sp in spans {
            let p = checked_str(self.b, sp.p_at, sp.p_len).ok_or(ParseError::Shape)?;
            let q = checked_str(self.b, sp.q_at, sp.q_len).ok_or(ParseError::Shape)?;
            f(p, q)?;
        }
        Ok(())
    }
}

/// A key expected at the next position: the bytes `,"k":` (separator, quoted key, colon; at most 8) as a
/// little-endian word under `mask`, their count, and the slot the key fills.
#[derive(Clone, Copy)]
struct Key {
    word: u64,
    mask: u64,
    len: u8,
    f: F,
}

/// The [`Key`] for the key text `k` (at most 4 bytes: with the separator, quotes and colon, at most 8).
const fn key(k: &[u8], f: F) -> Key {
    let text_len = k.len() + 4;
    assert!(text_len <= 8, "one word per expected key");
    let mut word = (b',' as u64) | ((b'"' as u64) << 8);
    let mut j = 0;
    while j < k.len() {
        word |= (k[j] as u64) << (8 * (j + 2));
        j += 1;
    }
    word |= ((b'"' as u64) << (8 * (k.len() + 2))) | ((b':' as u64) << (8 * (k.len() + 3)));
    let mask = if text_len == 8 { u64::MAX } else { (1u64 << (8 * text_len)) - 1 };
    Key { word, mask, len: text_len as u8, f }
}

/// The keys after `"stream"` in a combined-stream wrapper.
const WRAPPER: [Key; 1] = [key(b"data", F::Data)];
/// The keys after `"e"`, in the order Binance writes them (as in every real recording in data/ and tests/data).
const AGG_TRADE: [Key; 9] = [
    key(b"E", F::UpperE),
    key(b"a", F::LowerA),
    key(b"s", F::LowerS),
    key(b"p", F::LowerP),
    key(b"q", F::LowerQ),
    key(b"f", F::LowerF),
    key(b"l", F::LowerL),
    key(b"T", F::UpperT),
    key(b"m", F::LowerM),
];
const TRADE: [Key; 8] = [
    key(b"E", F::UpperE),
    key(b"T", F::UpperT),
    key(b"s", F::LowerS),
    key(b"t", F::LowerT),
    key(b"p", F::LowerP),
    key(b"q", F::LowerQ),
    key(b"X", F::UpperX),
    key(b"m", F::LowerM),
];
const BOOK_TICKER: [Key; 8] = [
    key(b"u", F::LowerU),
    key(b"s", F::LowerS),
    key(b"b", F::LowerB),
    key(b"B", F::UpperB),
    key(b"a", F::LowerA),
    key(b"A", F::UpperA),
    key(b"T", F::UpperT),
    key(b"E", F::UpperE),
];
const DEPTH_UPDATE: [Key; 8] = [
    key(b"E", F::UpperE),
    key(b"T", F::UpperT),
    key(b"s", F::LowerS),
    key(b"U", F::UpperU),
    key(b"u", F::LowerU),
    key(b"pu", F::Pu),
    key(b"b", F::LowerB),
    key(b"a", F::LowerA),
];
const MARK_PRICE: [Key; 7] = [
    key(b"E", F::UpperE),
    key(b"s", F::LowerS),
    key(b"p", F::LowerP),
    key(b"P", F::UpperP),
    key(b"i", F::LowerI),
    key(b"r", F::LowerR),
    key(b"T", F::UpperT),
];

/// The keys expected after an object's first key `f` with value `v`. Only a guess: a wrong guess costs one
/// mismatch, after which the general matcher reads the object, so the event type is told by its length alone.
#[inline(always)]
fn template(f: Option<F>, v: Val<'_>) -> &'static [Key] {
    match (f, v) {
        (Some(F::Stream), _) => &WRAPPER,
        (Some(F::LowerE), Val::Str(e)) => match e.len() {
            8 => &AGG_TRADE,
            5 => &TRADE,
            10 => &BOOK_TICKER,
            11 => &DEPTH_UPDATE,
            15 => &MARK_PRICE,
            _ => &[],
        },
        _ => &[],
    }
}

/// The integer at `b[at..]` and the offset after it: at most [`swar::MAX_INT_DIGITS`] digits without a leading
/// zero, not followed by a fraction or an exponent (else `None`: simd-json decides); the digits are converted eight
/// at a time. Shared by both fast scanners, so they accept exactly the same integers.
#[inline(always)]
pub(super) fn json_int(b: &[u8], at: usize) -> Option<(i64, usize)> {
    let neg = b.get(at) == Some(&b'-');
    let start = at + neg as usize;
    let rest = b.get(start..)?;
    let (n, v) = swar::leading_digits(rest)?;
    if n == 0 || (n > 1 && rest[0] == b'0') {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = rest.get(n) {
        return None;
    }
    // At most 18 digits: the value fits an i64.
    let v = v as i64;
    Some((if neg { -v } else { v }, start + n))
}

struct Sc<'i, 's> {
    b: &'i [u8],
    i: usize,
    spans: &'s mut Vec<LevelSpan>,
}

impl<'i> Sc<'i, '_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    #[inline]
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + l.len()) == Some(l) {
            self.i += l.len();
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes; printable ASCII only. [`swar::find_quote`] finds the closing quote and checks the
    /// bytes eight at a time.
    #[inline]
    fn string(&mut self) -> Option<&'i str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let plain = |c: &u8| (0x20..0x7f).contains(c) && *c != b'\\';
        // Keys are mostly 1 or 2 characters: plain compares first, the SWAR search for longer strings (for a
        // 1-character key it executed more instructions than the byte loop). Same result either way.
        let n = match rest {
            [b'"', ..] => 0,
            [c, b'"', ..] if plain(c) => 1,
            [c, d, b'"', ..] if plain(c) && plain(d) => 2,
            _ => match swar::find_quote(rest) {
                swar::Quote::At(n) => n,
                swar::Quote::Refused => return None,
            },
        };
        self.i = start + n + 1;
        debug_assert!(rest[..n].iter().all(|c| (0x20..0x7f).contains(c)), "printable ASCII only");
        // SAFETY: find_quote returned At(n) only after checking every byte of rest[..n] to be printable ASCII
        // (0x20..0x7f), which is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(&rest[..n]) })
    }

    #[inline]
    fn int(&mut self) -> Option<i64> {
        let (v, end) = json_int(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// A level as Binance writes it, `["p","q"]` with no whitespace, at the cursor: its span and the offset after
    /// it, without moving the cursor. `None` for anything else (whitespace, an escape, a non-string), which
    /// [`Sc::level`] then reads byte by byte; both accept the same strings ([`swar::find_quote`]), so a tight
    /// level gives the span the general reading would give.
    #[inline(always)]
    fn tight_level(&self) -> Option<(LevelSpan, usize)> {
        let b = self.b;
        if b.get(self.i..self.i + 2)? != b"[\"" {
            return None;
        }
        let p_at = self.i + 2;
        let swar::Quote::At(p) = swar::find_quote(b.get(p_at..)?) else { return None };
        if b.get(p_at + p..p_at + p + 3)? != b"\",\"" {
            return None;
        }
        let q_at = p_at + p + 3;
        let swar::Quote::At(q) = swar::find_quote(b.get(q_at..)?) else { return None };
        if b.get(q_at + q + 1)? != &b']' {
            return None;
        }
        // Offsets fit u32: a frame is at most `max_frame_bytes`, far below 4 GiB (checked in `scan`).
        let span = LevelSpan { p_at: p_at as u32, p_len: p as u32, q_at: q_at as u32, q_len: q as u32 };
        Some((span, q_at + q + 2))
    }

    /// `[ "p" , "q" ]`, recorded as a [`LevelSpan`]; `None` past [`MAX_SPANS`].
    #[inline]
    fn level(&mut self) -> Option<()> {
        if self.spans.len() >= MAX_SPANS {
            return None;
        }
        if let Some((span, end)) = self.tight_level() {
            self.spans.push(span);
            self.i = end;
            return Some(());
        }
        self.ws();
        self.eat(b'[')?;
        self.ws();
        let p_at = self.i + 1;
        let p = self.string()?.len();
        self.ws();
        self.eat(b',')?;
        self.ws();
        let q_at = self.i + 1;
        let q = self.string()?.len();
        self.ws();
        self.eat(b']')?;
        // Offsets fit u32: a frame is at most `max_frame_bytes`, far below 4 GiB (checked in `scan`).
        self.spans.push(LevelSpan { p_at: p_at as u32, p_len: p as u32, q_at: q_at as u32, q_len: q as u32 });
        Some(())
    }

    /// An array of levels, recorded as spans; returns its first span's index and its length. The cursor is on `[`.
    fn levels(&mut self) -> Option<(u32, u32)> {
        self.eat(b'[')?;
        self.ws();
        let first = self.spans.len() as u32;
        if self.eat(b']').is_some() {
            return Some((first, 0));
        }
        let mut n = 0u32;
        loop {
            self.level()?;
            n += 1;
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some((first, n));
                }
                _ => return None,
            }
        }
    }

    /// A key (at the cursor, after a `{` or a `,`), its colon and the whitespace around them; the key's slot.
    #[inline]
    fn key(&mut self) -> Option<Option<F>> {
        self.ws();
        let key = self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(field_of(key.as_bytes()))
    }

    /// The expected key `k` (separator, key and colon as written by Binance, no whitespace) at the cursor; consumed
    /// when it is there. One 8-byte load and compare, byte by byte only within the frame's last 8 bytes.
    #[inline(always)]
    fn expected_key(&mut self, k: &Key) -> bool {
        let hit = match self.b.get(self.i..self.i + 8) {
            Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]) & k.mask == k.word,
            None => (0..k.len as usize).all(|j| self.b.get(self.i + j) == Some(&((k.word >> (8 * j)) as u8))),
        };
        if hit {
            self.i += k.len as usize;
        }
        hit
    }

    /// One value at the cursor (no whitespace before it); `inner` receives the nested `"data"` object.
    #[inline(always)]
    fn value(&mut self, f: Option<F>, inner: &mut Option<&mut Slots<'i>>) -> Option<Val<'i>> {
        Some(match *self.b.get(self.i)? {
            b'"' => Val::Str(self.string()?),
            b'-' | b'0'..=b'9' => Val::Int(self.int()?),
            b't' => {
                self.lit(b"true")?;
                Val::Bool(true)
            }
            b'f' => {
                self.lit(b"false")?;
                Val::Bool(false)
            }
            b'n' => {
                self.lit(b"null")?;
                Val::Other
            }
            b'[' => {
                let (first, n) = self.levels()?;
                Val::Arr(first, n)
            }
            b'{' if f == Some(F::Data) => {
                let at = self.i as u32;
                let inner_vals = inner.take()?;
                self.object(inner_vals, None)?;
                Val::Obj(at)
            }
            _ => return None,
        })
    }

    /// An object into `vals`; `inner` receives the nested `"data"` object when allowed.
    ///
    /// Keys by position: the first key (and for an event the length of its `"e"` value) picks the key order
    /// Binance writes for that shape ([`template`]); each next key is first compared with the expected one in one
    /// load ([`Sc::expected_key`]), and from the first mismatch on (reordered, missing, extra or duplicate keys,
    /// whitespace) the general matcher ([`Sc::key`]) reads the rest of the object. Both write the same slots, so
    /// the result does not depend on which one read a key.
    fn object(&mut self, vals: &mut Slots<'i>, mut inner: Option<&mut Slots<'i>>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut f = self.key()?;
        let mut v = self.value(f, &mut inner)?;
        let mut expect = template(f, v);
        loop {
            if let Some(f) = f {
                vals.set(f, v);
            }
            if let Some((k, rest)) = expect.split_first()
                && self.expected_key(k)
            {
                expect = rest;
                f = Some(k.f);
            } else {
                expect = &[];
                self.ws();
                match self.b.get(self.i)? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
                f = self.key()?;
            }
            v = self.value(f, &mut inner)?;
        }
    }
}

/// A scanned frame: its root object, the `"data"` object of a combined-stream wrapper if present, and the wrapper's
/// stream name.
pub(crate) struct Scanned<'i, 'v> {
    /// The root object.
    pub(crate) root: FastMsg<'i, 'v>,
    /// The wrapped event, if the frame is a combined-stream wrapper.
    pub(crate) inner: Option<FastMsg<'i, 'v>>,
    /// The wrapper's stream name (see [`super::fields::is_partial_depth_stream`]); `None` when there is no wrapper.
    pub(crate) stream: Option<&'i str>,
}

/// Scans a frame into `vals` (which must be empty, see [`FastVals::new`]) and its depth levels into `spans`
/// (cleared first; its capacity should be [`MAX_SPANS`] so that it never grows); `None` when the frame is outside
/// the fast subset.
#[inline]
pub(crate) fn scan<'i, 'v>(
    frame: &'i [u8],
    vals: &'v mut FastVals<'i>,
    spans: &'v mut Vec<LevelSpan>,
) -> Option<Scanned<'i, 'v>> {
    if frame.len() > u32::MAX as usize {
        return None;
    }
    spans.clear();
    let mut s = Sc { b: frame, i: 0, spans };
    s.object(&mut vals.root, Some(&mut vals.inner))?;
    s.ws();
    if s.i != frame.len() {
        return None;
    }
    let spans: &'v [LevelSpan] = spans;
    let vals: &'v FastVals<'i> = vals;
    let wrapped = matches!(vals.root.get(F::Data), Val::Obj(_));
    let stream = match vals.root.get(F::Stream) {
        Val::Str(st) => Some(st),
        Val::Missing => None,
        _ => return None,
    };
    let root = FastMsg { b: frame, vals: &vals.root, spans };
    if wrapped {
        Some(Scanned { root, inner: Some(FastMsg { b: frame, vals: &vals.inner, spans }), stream })
    } else {
        Some(Scanned { root, inner: None, stream: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each expected key's word is the bytes `,"k":` in order.
    #[test]
    fn expected_key_words_spell_the_keys() {
        for (k, text) in [
            (key(b"E", F::UpperE), &b",\"E\":"[..]),
            (key(b"pu", F::Pu), b",\"pu\":"),
            (key(b"data", F::Data), b",\"data\":"),
        ] {
            assert_eq!(k.len as usize, text.len());
            let mut w = [0u8; 8];
            w[..text.len()].copy_from_slice(text);
            assert_eq!(u64::from_le_bytes(w), k.word);
            assert_eq!(k.word & !k.mask, 0);
        }
    }

    /// The expected key is found by the word compare and, within a frame's last 8 bytes, by the byte compare.
    #[test]
    fn expected_key_matches_at_the_end_of_a_frame() {
        let mut spans = Vec::new();
        for (frame, at, hit) in [
            (&b"1,\"m\":true}"[..], 1, true),
            (b"1,\"m\":1}", 1, true),
            (b"1,\"m\"", 1, false),
            (b"1,\"n\":1}", 1, false),
            (b"1, \"m\":1}", 1, false),
        ] {
            let mut sc = Sc { b: frame, i: at, spans: &mut spans };
            assert_eq!(sc.expected_key(&key(b"m", F::LowerM)), hit, "{:?}", String::from_utf8_lossy(frame));
            assert_eq!(sc.i, if hit { at + 5 } else { at });
        }
    }
}

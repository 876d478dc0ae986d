//! Hand-written scanner for the hot message shapes, tried before simd-json.
//!
//! It reads the frame in place (no copy, no tape) and accepts only a strict subset of JSON: objects whose values are
//! strings without escapes (printable ASCII only), integers of at most 18 digits without leading zeros, `true`,
//! `false`, `null`, arrays of `[string, string]` pairs (depth levels), and one nested object under `"data"` (the
//! combined-stream wrapper). Anything else — an escape, a float, another nested object or array, trailing bytes —
//! makes [`scan`] return `None` and the frame goes through simd-json, which gives the canonical result or error.
//! The handlers in [`crate::ingest::parse`] are shared by both paths through the `Msg` trait, and a test replays every real
//! recording through both paths and requires identical events.

use super::fields::{F, LevelArray, LevelResult, Msg, NF, ParseError, Val, field_of, is_partial_depth_stream};

/// The field slots of one frame's root object and of its `"data"` object, filled in place by [`scan`]. The caller
/// keeps them on its stack and hands them in by reference: returning them by value copied ≈ 1.4 KB per frame.
pub(crate) struct FastVals<'i> {
    root: [Val<'i>; NF],
    inner: [Val<'i>; NF],
}

impl FastVals<'_> {
    /// Empty slots.
    #[inline]
    pub(crate) fn new() -> Self {
        FastVals { root: [Val::Missing; NF], inner: [Val::Missing; NF] }
    }
}

/// The fields of one object read by the fast scanner (a view of one half of [`FastVals`]).
pub(crate) struct FastMsg<'i, 'v> {
    b: &'i [u8],
    vals: &'v [Val<'i>; NF],
}

impl<'i> Msg<'i> for FastMsg<'i, '_> {
    #[inline]
    fn val(&self, f: F) -> Val<'i> {
        self.vals[f as usize]
    }

    #[inline]
    fn for_levels(&self, side: LevelArray, mut f: impl FnMut(&'i str, &'i str) -> LevelResult) -> LevelResult {
        let mut s = Sc { b: self.b, i: side.handle as usize + 1 };
        for k in 0..side.len {
            if k > 0 {
                s.ws();
                s.eat(b',').ok_or(ParseError::Shape)?;
            }
            let (p, q) = s.level().ok_or(ParseError::Shape)?;
            f(p, q)?;
        }
        Ok(())
    }
}

struct Sc<'i> {
    b: &'i [u8],
    i: usize,
}

impl<'i> Sc<'i> {
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

    /// A string without escapes; printable ASCII only. One pass finds the closing quote and checks the bytes
    /// (the strings here are short, so a plain loop beats a vectorised search).
    #[inline]
    fn string(&mut self) -> Option<&'i str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let mut n = 0;
        loop {
            let c = *rest.get(n)?;
            if c == b'"' {
                break;
            }
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                return None;
            }
            n += 1;
        }
        self.i = start + n + 1;
        debug_assert!(rest[..n].iter().all(|c| (0x20..0x7f).contains(c)), "printable ASCII only");
        // SAFETY: every byte of rest[..n] was checked above to be printable ASCII (0x20..0x7f), which is valid
        // UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(&rest[..n]) })
    }

    #[inline]
    fn int(&mut self) -> Option<i64> {
        let neg = self.eat(b'-').is_some();
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            // At most 18 digits: checked before the multiply, so the value always fits.
            if self.i - start >= 18 {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        Some(if neg { -v } else { v })
    }

    /// `[ "p" , "q" ]`
    #[inline]
    fn level(&mut self) -> Option<(&'i str, &'i str)> {
        self.ws();
        self.eat(b'[')?;
        self.ws();
        let p = self.string()?;
        self.ws();
        self.eat(b',')?;
        self.ws();
        let q = self.string()?;
        self.ws();
        self.eat(b']')?;
        Some((p, q))
    }

    /// An array of levels; returns its length. The cursor is on `[`.
    fn levels(&mut self) -> Option<u32> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(0);
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
                    return Some(n);
                }
                _ => return None,
            }
        }
    }

    /// An object into `vals`; `inner` receives the nested `"data"` object when allowed.
    fn object(&mut self, vals: &mut [Val<'i>; NF], mut inner: Option<&mut [Val<'i>; NF]>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let f = field_of(key.as_bytes());
            let v = match *self.b.get(self.i)? {
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
                    let at = self.i as u32;
                    Val::Arr(at, self.levels()?)
                }
                b'{' if f == Some(F::Data) => {
                    let at = self.i as u32;
                    let inner_vals = inner.take()?;
                    self.object(inner_vals, None)?;
                    Val::Obj(at)
                }
                _ => return None,
            };
            if let Some(f) = f {
                vals[f as usize] = v;
            }
            self.ws();
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

/// A scanned frame: its root object, the `"data"` object of a combined-stream wrapper if present, and whether the
/// wrapper's stream is a partial-depth stream.
pub(crate) struct Scanned<'i, 'v> {
    /// The root object.
    pub(crate) root: FastMsg<'i, 'v>,
    /// The wrapped event, if the frame is a combined-stream wrapper.
    pub(crate) inner: Option<FastMsg<'i, 'v>>,
    /// The wrapper names a partial-depth stream.
    pub(crate) partial: bool,
}

/// Scans a frame into `vals` (which must be empty, see [`FastVals::new`]); `None` when the frame is outside the fast
/// subset.
#[inline]
pub(crate) fn scan<'i, 'v>(frame: &'i [u8], vals: &'v mut FastVals<'i>) -> Option<Scanned<'i, 'v>> {
    let mut s = Sc { b: frame, i: 0 };
    s.object(&mut vals.root, Some(&mut vals.inner))?;
    s.ws();
    if s.i != frame.len() {
        return None;
    }
    let vals: &'v FastVals<'i> = vals;
    let wrapped = matches!(vals.root[F::Data as usize], Val::Obj(_));
    let partial = match vals.root[F::Stream as usize] {
        Val::Str(st) => is_partial_depth_stream(st),
        Val::Missing => false,
        _ => return None,
    };
    let root = FastMsg { b: frame, vals: &vals.root };
    if wrapped {
        Some(Scanned { root, inner: Some(FastMsg { b: frame, vals: &vals.inner }), partial })
    } else {
        Some(Scanned { root, inner: None, partial: false })
    }
}

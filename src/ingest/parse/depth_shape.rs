//! Single-pass reader of the depth level arrays of a `depthUpdate` and of a REST depth snapshot, for the shape
//! scanners ([`super::shapes`]).
//!
//! The two level arrays and what follows them are read once, left to right: each level's price and quantity are
//! converted to units of the symbol's scales as they are scanned (a plain decimal of up to 7 + 7 digits from three
//! 8-byte loads, [`swar::quoted_decimal`]; any other string by [`swar::find_quote`] and [`swar::parse_decimal`];
//! then [`Scale::units_of`], as the general path does), and every `Levels` event is written straight into the spare
//! capacity of `out` after one `reserve`, the header into the slot before them once both counts are known, and the
//! length set once at the end. Nothing is recorded in between (no level spans, no field slots).
//!
//! Anything that differs from the expected layout — a byte out of place, an escape, a level that is not two
//! strings, a decimal the general path would reject (syntax, overflow, off the grid) or a negative value, more
//! than [`MAX_LEVELS_PER_SIDE`] levels on a side — makes [`append_depth`] return `None` with `out` untouched, and
//! the frame goes to the general fast scanner and then simd-json, which give the canonical result or error.

use super::fast::json_int;
use super::fields::MAX_LEVELS_PER_SIDE;
use super::swar::{self, Quote};
use crate::types::decimal::Scale;
use crate::types::event::{EventKind, MarketEvent, flags};
use std::mem::MaybeUninit;

/// The layout of the bytes around the two level arrays: the tokens between the bids' `]` and the asks' `[`, and
/// the tokens after the asks' `]` up to the end of the frame.
pub(crate) struct Layout {
    /// Tokens between the arrays (e.g. `,` `"a"` `:`).
    pub(crate) mid: &'static [&'static [u8]],
    /// Tokens after the asks (e.g. `}` `}` for a wrapped update).
    pub(crate) tail: &'static [&'static [u8]],
}

/// A `depthUpdate` object, raw: `…,"b":[…],"a":[…]}`.
pub(crate) const UPDATE_RAW: Layout = Layout { mid: &[b",", b"\"a\"", b":"], tail: &[b"}"] };
/// A `depthUpdate` in the combined-stream wrapper: `…,"b":[…],"a":[…]}}`.
pub(crate) const UPDATE_WRAPPED: Layout = Layout { mid: &[b",", b"\"a\"", b":"], tail: &[b"}", b"}"] };
/// A REST depth snapshot: `…,"bids":[…],"asks":[…]}`.
pub(crate) const SNAPSHOT: Layout = Layout { mid: &[b",", b"\"asks\"", b":"], tail: &[b"}"] };

/// The price and quantity scales of the symbol.
#[derive(Clone, Copy)]
pub(crate) struct LevelScales {
    /// Price scale.
    pub(crate) price: Scale,
    /// Quantity scale.
    pub(crate) qty: Scale,
}

/// A cursor over one frame; with `WS` whitespace is allowed between tokens (as JSON allows; the REST body as
/// some recorders write it), without it every byte must be where Binance writes it.
struct Cur<'i> {
    b: &'i [u8],
    i: usize,
}

impl<'i> Cur<'i> {
    #[inline(always)]
    fn ws<const WS: bool>(&mut self) {
        if WS {
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
                self.i += 1;
            }
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    #[inline(always)]
    fn lit(&mut self, l: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + l.len()) == Some(l) {
            self.i += l.len();
            Some(())
        } else {
            None
        }
    }

    /// `tokens` in order, with whitespace before each one when `WS`.
    #[inline(always)]
    fn tokens<const WS: bool>(&mut self, tokens: &[&[u8]]) -> Option<()> {
        for t in tokens {
            self.ws::<WS>();
            self.lit(t)?;
        }
        Some(())
    }

    /// An integer value at the cursor ([`json_int`]).
    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        let (v, end) = json_int(self.b, self.i)?;
        self.i = end;
        Some(v)
    }

    /// A decimal string at the cursor (printable ASCII without escapes, as the general scanner accepts), in units
    /// of `scale`, and not negative.
    #[inline(always)]
    fn units(&mut self, scale: Scale) -> Option<i64> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let rest = self.b.get(start..)?;
        // A plain price or quantity in three loads; anything else (and the frame's last 16 bytes) by the quote
        // search and the decimal parser, which give the same for the plain ones.
        let (d, n) = match swar::quoted_decimal(rest) {
            Some(dn) => dn,
            None => {
                let Quote::At(n) = swar::find_quote(rest) else {
                    return None;
                };
                (swar::parse_decimal(&rest[..n]).ok()?, n)
            }
        };
        let v = scale.units_of(d).ok()?;
        self.i = start + n + 1;
        (v >= 0).then_some(v)
    }

    /// One level `["p","q"]` (whitespace between its tokens when `WS`), as (price, quantity) units.
    #[inline(always)]
    fn level<const WS: bool>(&mut self, s: LevelScales) -> Option<(i64, i64)> {
        self.eat(b'[')?;
        self.ws::<WS>();
        let px = self.units(s.price)?;
        self.ws::<WS>();
        self.eat(b',')?;
        self.ws::<WS>();
        let qty = self.units(s.qty)?;
        self.ws::<WS>();
        self.eat(b']')?;
        Some((px, qty))
    }

    /// After a level: `Some(true)` at `,` (another level follows), `Some(false)` at the array's `]`.
    #[inline(always)]
    fn more<const WS: bool>(&mut self) -> Option<bool> {
        self.ws::<WS>();
        let more = match self.b.get(self.i)? {
            b',' => true,
            b']' => false,
            _ => return None,
        };
        self.i += 1;
        if more {
            self.ws::<WS>();
        }
        Some(more)
    }

    /// One side's array at the cursor, its levels written two per event through `w`; the level count.
    fn side<const WS: bool>(&mut self, s: LevelScales, w: &mut Writer<'_>, side_flags: u8) -> Option<u32> {
        self.eat(b'[')?;
        self.ws::<WS>();
        if self.eat(b']').is_some() {
            return Some(0);
        }
        let mut n = 0u32;
        // Each turn writes one event, and `w` refuses past its reserved slots, so the loop is bounded.
        loop {
            let (p1, q1) = self.level::<WS>(s)?;
            if !self.more::<WS>()? {
                w.put(side_flags, [p1, q1, 0, 0])?;
                n += 1;
                break;
            }
            let (p2, q2) = self.level::<WS>(s)?;
            w.put(side_flags | flags::TWO_LEVELS, [p1, q1, p2, q2])?;
            n += 2;
            if !self.more::<WS>()? {
                break;
            }
        }
        (n as usize <= MAX_LEVELS_PER_SIDE).then_some(n)
    }
}

/// The `Levels` events of one frame, written in order into reserved spare capacity from slot 1 on (slot 0 is the
/// header's).
struct Writer<'o> {
    spare: &'o mut [MaybeUninit<MarketEvent>],
    n: usize,
    template: MarketEvent,
}

impl Writer<'_> {
    #[inline(always)]
    fn put(&mut self, side_flags: u8, p: [i64; 4]) -> Option<()> {
        let slot = self.spare.get_mut(self.n)?;
        let mut ev = self.template;
        ev.flags = side_flags;
        ev.p = p;
        slot.write(ev);
        self.n += 1;
        Some(())
    }
}

/// Most events a frame of `rest` bytes of level arrays can give: a level takes at least 10 bytes with its
/// separator (`["1","1"],`), an event holds two levels, a side with an odd count one more, and the header one.
#[inline(always)]
fn events_bound(rest: usize) -> usize {
    (3 + rest / 18).min(super::MAX_EVENTS_PER_FRAME)
}

/// Reads the bids array at `b[at..]` (the cursor on its `[`), the `layout.mid` tokens, the asks array and the
/// `layout.tail` tokens up to the end of `b`, and appends `head` (with the two level counts set) followed by the
/// `Levels` events (flags `level_flags`, plus [`flags::ASK`] for the asks), as the general path's handlers do.
/// `None`, with `out` untouched, on anything else.
pub(crate) fn append_depth<const WS: bool>(
    b: &[u8],
    at: usize,
    layout: &Layout,
    scales: LevelScales,
    mut head: MarketEvent,
    level_flags: u8,
    out: &mut Vec<MarketEvent>,
) -> Option<()> {
    let cap = events_bound(b.len().checked_sub(at)?);
    out.reserve(cap);
    let len = out.len();
    let spare = out.spare_capacity_mut().get_mut(..cap)?;
    let template = MarketEvent::new(EventKind::Levels, head.symbol, head.exch_ts_ns, head.local_ts_ns, head.stamp_ns);
    let mut w = Writer { spare, n: 1, template };
    let mut c = Cur { b, i: at };
    let bids = c.side::<WS>(scales, &mut w, level_flags)?;
    c.tokens::<WS>(layout.mid)?;
    c.ws::<WS>();
    let asks = c.side::<WS>(scales, &mut w, level_flags | flags::ASK)?;
    c.tokens::<WS>(layout.tail)?;
    c.ws::<WS>();
    if c.i != b.len() {
        return None;
    }
    head.set_level_counts(bids, asks);
    w.spare.first_mut()?.write(head);
    let written = w.n;
    // SAFETY: slots 0..written of the spare capacity were initialised above through `MaybeUninit::write` (the header
    // in slot 0, the Levels events in slots 1..written by `Writer::put`, in order), and `written <= cap` slots
    // were reserved.
    unsafe { out.set_len(len + written) };
    Some(())
}

/// The head of a REST depth snapshot, `{"lastUpdateId":…,"E":…,"T":…,"bids":` (whitespace between tokens
/// allowed), read by [`snapshot_head`].
pub(crate) struct SnapshotHead {
    /// `lastUpdateId`.
    pub(crate) last_update_id: i64,
    /// `T`, the transaction time (the general path's exchange time when present).
    pub(crate) trade_ms: i64,
    /// Offset of the bids array's `[`.
    pub(crate) bids_at: usize,
}

/// Reads a snapshot's keys before its bids array, in the order Binance writes them; `None` for anything else
/// (another order, a missing or extra key, a value that is not a plain integer).
pub(crate) fn snapshot_head(b: &[u8]) -> Option<SnapshotHead> {
    let mut c = Cur { b, i: 0 };
    c.tokens::<true>(&[b"{", b"\"lastUpdateId\"", b":"])?;
    c.ws::<true>();
    let last_update_id = c.int()?;
    c.tokens::<true>(&[b",", b"\"E\"", b":"])?;
    c.ws::<true>();
    c.int()?;
    c.tokens::<true>(&[b",", b"\"T\"", b":"])?;
    c.ws::<true>();
    let trade_ms = c.int()?;
    c.tokens::<true>(&[b",", b"\"bids\"", b":"])?;
    c.ws::<true>();
    Some(SnapshotHead { last_update_id, trade_ms, bids_at: c.i })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scales() -> LevelScales {
        LevelScales { price: Scale::decimals(2), qty: Scale::decimals(3) }
    }

    fn run<const WS: bool>(frame: &[u8], layout: &Layout) -> Option<Vec<MarketEvent>> {
        let at = frame.iter().position(|&c| c == b'[')?;
        let mut out = vec![MarketEvent::default()];
        let head = MarketEvent::new(EventKind::Depth, 3, 10, 20, 30);
        let r = append_depth::<WS>(frame, at, layout, scales(), head, 0, &mut out);
        if r.is_none() {
            assert_eq!(out.len(), 1, "out untouched on refusal");
            return None;
        }
        Some(out.split_off(1))
    }

    #[test]
    fn writes_header_and_levels_two_per_event() {
        let evs = run::<false>(br#"[["1.50","2.000"],["1.40","0.001"],["1.30","0"]],"a":[["1.60","1"]]}"#, &UPDATE_RAW)
            .expect("read");
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0].kind, EventKind::Depth);
        assert_eq!(evs[0].level_counts(), (3, 1));
        assert_eq!((evs[1].flags, evs[1].p), (flags::TWO_LEVELS, [150, 2000, 140, 1]));
        assert_eq!((evs[2].flags, evs[2].p), (0, [130, 0, 0, 0]));
        assert_eq!((evs[3].flags, evs[3].p), (flags::ASK, [160, 1000, 0, 0]));
        assert!(evs[1..].iter().all(|e| e.kind == EventKind::Levels && e.symbol == 3 && e.exch_ts_ns == 10));
        let empty = run::<false>(br#"[],"a":[]}}"#, &UPDATE_WRAPPED).expect("read");
        assert_eq!((empty.len(), empty[0].level_counts()), (1, (0, 0)));
        let spaced = run::<true>(b"[ [\"1.5\" , \"1\" ] ] , \"asks\" : [\n]\r\n}\n", &SNAPSHOT).expect("read");
        assert_eq!(spaced[1].p, [150, 1000, 0, 0]);
    }

    #[test]
    fn refuses_anything_else() {
        for f in [
            &br#"[["1.50","2.000"]],"a":[["1.60","1"]]}x"#[..], // trailing byte
            br#"[["1.50","2.000"]],"a":[["1.60","1"]]"#,        // truncated
            br#"[["1.50","2.000","3"]],"a":[]}"#,               // three elements
            br#"[["1.50",2]],"a":[]}"#,                         // a number
            br#"[["1.505","2"]],"a":[]}"#,                      // off the price grid
            br#"[["-1.50","2"]],"a":[]}"#,                      // negative
            br#"[["1.5\u0030","2"]],"a":[]}"#,                  // escape
            br#"[["1.50","2"],],"a":[]}"#,                      // trailing comma
            br#"[["1.50","2"]],"A":[]}"#,                       // another key
            br#"[ ["1.50","2"]],"a":[]}"#,                      // whitespace where Binance writes none
            br#"[["1.50","2"]],"a":[[]]}"#,                     // empty level
        ] {
            assert!(run::<false>(f, &UPDATE_RAW).is_none(), "{}", String::from_utf8_lossy(f));
        }
    }

    #[test]
    fn snapshot_head_reads_tight_and_spaced_bodies() {
        for f in [
            &br#"{"lastUpdateId":600859605926,"E":1626992741264,"T":1626992741261,"bids":[]"#[..],
            br#"{"lastUpdateId": 600859605926, "E": 1626992741264, "T": 1626992741261, "bids": []"#,
        ] {
            let h = snapshot_head(f).expect("read");
            assert_eq!((h.last_update_id, h.trade_ms, f[h.bids_at]), (600859605926, 1626992741261, b'['));
        }
        assert!(snapshot_head(br#"{"lastUpdateId":1,"T":2,"E":3,"bids":[]"#).is_none());
        assert!(snapshot_head(br#"{"lastUpdateId":1,"bids":[]"#).is_none());
    }
}

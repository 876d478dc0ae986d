//! SWAR helpers: eight bytes at a time in one `u64` ("SIMD within a register").
//!
//! - [`find_quote`]: the closing quote of a JSON string, eight bytes per step, also telling whether a byte that
//!   the fast path must refuse (a control byte, a backslash, non-ASCII) came first.
//! - [`parse_decimal`]: a decimal string such as `"67012.30"` or `"0.004"` into [`Decimal`], with at most 8
//!   integer and 8 fraction digits converted 8 at a time; anything else (a sign, longer strings, malformed text)
//!   goes to the scalar [`crate::types::decimal::parse_decimal`], so results and errors are identical to it on
//!   every input (a unit test compares both).

use crate::types::decimal::{self, Decimal, DecimalError};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const ZEROS: u64 = 0x3030_3030_3030_3030;

const POW10: [i64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Bytes `s[..n]` (n ≤ 8) in the low bytes of a `u64`, `s[0]` lowest; the other bytes are 0. No call, no
/// per-byte loop: two overlapping 4-byte loads, or three single loads for n < 4.
#[inline(always)]
pub(crate) fn load_le(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!(n <= 8);
    if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64;
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]) as u64;
        // The overlapping bytes are the same in both halves, so OR keeps them.
        lo | (hi << ((n - 4) * 8))
    } else if n > 0 {
        (s[0] as u64) | ((s[n / 2] as u64) << (8 * (n / 2))) | ((s[n - 1] as u64) << (8 * (n - 1)))
    } else {
        0
    }
}

/// One marker bit (0x80) in each byte of `v` that is zero; exact for the lowest zero byte (higher markers may be
/// false positives after a zero byte, so only the lowest is used).
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

/// Eight ASCII digits, most significant first in the lowest byte, as their value; `None` when a byte is not a digit.
#[inline(always)]
fn eight_digits(chunk: u64) -> Option<u32> {
    // Every byte must be 0x30..=0x39: high nibble 3, and adding 6 must not carry into the high nibble.
    if (chunk & 0xF0F0_F0F0_F0F0_F0F0) != ZEROS
        || (chunk.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) != ZEROS
    {
        return None;
    }
    Some(digits_value(chunk))
}

/// The value of eight bytes already known to be ASCII digits (first digit in the lowest byte).
#[inline(always)]
fn digits_value(chunk: u64) -> u32 {
    let v = chunk - ZEROS;
    // Pairs, then quads, then the eight digits (the first digit is in the lowest byte).
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    let v = v.wrapping_mul(10_000) + (v >> 32);
    v as u32
}

/// One marker bit (0x80) in each byte of `chunk` that is not an ASCII digit; exact for the lowest such byte (a
/// carry out of a byte ≥ 0xFA may mark the byte above it, which is past the first non-digit anyway).
#[inline(always)]
fn non_digits(chunk: u64) -> u64 {
    let high = (chunk & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS;
    let over = (chunk.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) ^ ZEROS;
    let t = high | over;
    // A nonzero byte of `t` becomes 0x80 (no carry leaves a byte: 0x7f + 0x7f < 0x100).
    ((t & 0x7F7F_7F7F_7F7F_7F7F).wrapping_add(0x7F7F_7F7F_7F7F_7F7F) | t) & HIGHS
}

/// Most digits [`leading_digits`] converts (the value then always fits an `i64`).
pub(crate) const MAX_INT_DIGITS: usize = 18;

const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// The run of ASCII digits at the start of `s`: its length and its value, eight digits per step while eight bytes
/// are left, then byte by byte; `None` when the run is longer than [`MAX_INT_DIGITS`].
#[inline]
pub(crate) fn leading_digits(s: &[u8]) -> Option<(usize, u64)> {
    let mut n = 0usize;
    let mut v = 0u64;
    while let Some(w) = s.get(n..n + 8) {
        let chunk = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let m = non_digits(chunk);
        let k = if m == 0 { 8 } else { (m.trailing_zeros() / 8) as usize };
        if n + k > MAX_INT_DIGITS {
            return None;
        }
        if k == 0 {
            return Some((n, v));
        }
        // The k digits to the top bytes, '0' below them (leading zeros do not change the value).
        let pad = ZEROS.checked_shr(8 * k as u32).unwrap_or(0);
        v = v * POW10_U64[k] + digits_value((chunk << (8 * (8 - k) as u32)) | pad) as u64;
        n += k;
        if k < 8 {
            return Some((n, v));
        }
    }
    while let Some(&c) = s.get(n) {
        if !c.is_ascii_digit() {
            break;
        }
        if n >= MAX_INT_DIGITS {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
        n += 1;
    }
    Some((n, v))
}

/// The value of 1 to 8 ASCII digits; `None` when empty, longer than 8 or a byte is not a digit.
#[inline(always)]
pub(crate) fn parse_u8digits(s: &[u8]) -> Option<u32> {
    let n = s.len();
    if n == 0 || n > 8 {
        return None;
    }
    // Right-align the digits and fill the leading bytes with '0' (a leading zero does not change the value).
    let shift = 8 * (8 - n) as u32;
    let pad = ZEROS.checked_shr(8 * n as u32).unwrap_or(0);
    eight_digits((load_le(s) << shift) | pad)
}

/// Parses `-?digits(.digits)?` exactly, like [`decimal::parse_decimal`] (same value, same error, on every input).
#[inline]
pub(crate) fn parse_decimal(s: &[u8]) -> Result<Decimal, DecimalError> {
    let n = s.len();
    if n == 0 || n > 17 {
        return decimal::parse_decimal(s);
    }
    if n <= 8 {
        return match short_decimal(s) {
            Some(d) => Ok(d),
            None => decimal::parse_decimal(s),
        };
    }
    let head = load_le(&s[..n.min(8)]);
    let dots = zero_bytes(head ^ 0x2E2E_2E2E_2E2E_2E2E) & (u64::MAX >> (8 * (8 - n.min(8))));
    let (int, frac) = if dots == 0 {
        if n > 8 {
            return decimal::parse_decimal(s);
        }
        (s, &s[n..])
    } else {
        let dot = (dots.trailing_zeros() / 8) as usize;
        (&s[..dot], &s[dot + 1..])
    };
    match (parse_u8digits(int), frac.len()) {
        (Some(i), 0) if dots == 0 => Ok(Decimal { mantissa: i as i64, dec: 0 }),
        (Some(i), 1..=8) => match parse_u8digits(frac) {
            Some(f) => Ok(Decimal { mantissa: i as i64 * POW10[frac.len()] + f as i64, dec: frac.len() as u8 }),
            None => decimal::parse_decimal(s),
        },
        _ => decimal::parse_decimal(s),
    }
}

/// `digits` or `digits.digits` of 1 to 8 bytes in one word: the point (if any) is found and squeezed out, and the
/// remaining digits converted at once. `None` for anything else (a sign, no digit before or after the point, a
/// second point, another byte), which [`parse_decimal`] hands to the scalar parser.
#[inline(always)]
fn short_decimal(s: &[u8]) -> Option<Decimal> {
    let n = s.len();
    debug_assert!((1..=8).contains(&n));
    let w = load_le(s);
    let dots = zero_bytes(w ^ 0x2E2E_2E2E_2E2E_2E2E) & (u64::MAX >> (8 * (8 - n)));
    let (digits, len, dec) = if dots == 0 {
        (w, n, 0)
    } else {
        let dot = (dots.trailing_zeros() / 8) as usize;
        if dot == 0 || dot == n - 1 {
            return None;
        }
        // The bytes below the point stay, the bytes above it move down by one (over the point).
        let below = (1u64 << (8 * dot)) - 1;
        ((w & below) | ((w >> 8) & !below), n - 1, n - 1 - dot)
    };
    let pad = ZEROS.checked_shr(8 * len as u32).unwrap_or(0);
    let v = eight_digits((digits << (8 * (8 - len) as u32)) | pad)?;
    Some(Decimal { mantissa: v as i64, dec: dec as u8 })
}

/// The first `k` (0 to 8) bytes of `w`, known to be ASCII digits, as their value.
#[inline(always)]
fn first_digits(w: u64, k: usize) -> u64 {
    if k == 0 {
        return 0;
    }
    // The k digits to the top bytes, '0' below them (leading zeros do not change the value).
    let pad = ZEROS.checked_shr(8 * k as u32).unwrap_or(0);
    digits_value((w << (8 * (8 - k) as u32)) | pad) as u64
}

/// The count of leading ASCII digits of `w` (8 when all are).
#[inline(always)]
fn digit_run(w: u64) -> usize {
    let m = non_digits(w);
    if m == 0 { 8 } else { (m.trailing_zeros() / 8) as usize }
}

/// A JSON string holding a plain decimal, `s` starting after its opening quote: `digits"` or `digits.digits"`
/// with 1 to 7 integer digits and 1 to 7 fraction digits (every Binance price and quantity), read from three
/// 8-byte loads with no per-byte loop. Returns the decimal and the offset of the closing quote, exactly what
/// [`find_quote`] and [`parse_decimal`] give for such a string; `None` for anything else, and whenever fewer than
/// 16 bytes are left (the caller then takes that slower pair).
#[inline(always)]
pub(crate) fn quoted_decimal(s: &[u8]) -> Option<(Decimal, usize)> {
    let w = s.get(..16)?;
    let w0 = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    let k = digit_run(w0);
    if k == 0 || k == 8 {
        return None;
    }
    let int = first_digits(w0, k);
    match w[k] {
        b'"' => Some((Decimal { mantissa: int as i64, dec: 0 }, k)),
        b'.' => {
            let f = &w[k + 1..k + 9];
            let w1 = u64::from_le_bytes([f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]]);
            let j = digit_run(w1);
            if j == 0 || j == 8 || f[j] != b'"' {
                return None;
            }
            let mantissa = int * POW10_U64[j] + first_digits(w1, j);
            Some((Decimal { mantissa: mantissa as i64, dec: j as u8 }, k + 1 + j))
        }
        _ => None,
    }
}

/// What [`find_quote`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    /// The closing quote is at this offset, and every byte before it is printable ASCII without a backslash.
    At(usize),
    /// A byte outside printable ASCII, or a backslash, comes first (or there is no closing quote).
    Refused,
}

/// Bytes of `v` outside 0x20..0x7f, plus backslashes and quotes, each marked with 0x80 (exact for the lowest).
#[inline(always)]
fn stop_bytes(v: u64) -> u64 {
    // < 0x20: subtracting 0x20 borrows into the high bit; ≥ 0x80 and 0x7f are the high bit or the DEL test.
    let ctl = v.wrapping_sub(0x2020_2020_2020_2020) & !v;
    let del = zero_bytes(v ^ 0x7F7F_7F7F_7F7F_7F7F);
    let quote = zero_bytes(v ^ 0x2222_2222_2222_2222);
    let bslash = zero_bytes(v ^ 0x5C5C_5C5C_5C5C_5C5C);
    (ctl | v | del | quote | bslash) & HIGHS
}

/// The offset of the closing quote in `s` (the bytes after an opening quote), checking that every byte before
/// it is printable ASCII and not a backslash; eight bytes per step, the tail byte by byte.
#[inline]
pub(crate) fn find_quote(s: &[u8]) -> Quote {
    let mut i = 0;
    while i + 8 <= s.len() {
        let v = u64::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3], s[i + 4], s[i + 5], s[i + 6], s[i + 7]]);
        let m = stop_bytes(v);
        if m != 0 {
            let at = i + (m.trailing_zeros() / 8) as usize;
            return if s[at] == b'"' { Quote::At(at) } else { Quote::Refused };
        }
        i += 8;
    }
    while let Some(&c) = s.get(i) {
        if c == b'"' {
            return Quote::At(i);
        }
        if !(0x20..0x7f).contains(&c) || c == b'\\' {
            return Quote::Refused;
        }
        i += 1;
    }
    Quote::Refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_quote(s: &[u8]) -> Quote {
        for (i, &c) in s.iter().enumerate() {
            if c == b'"' {
                return Quote::At(i);
            }
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                return Quote::Refused;
            }
        }
        Quote::Refused
    }

    #[test]
    fn digits_eight_at_a_time() {
        assert_eq!(parse_u8digits(b"0"), Some(0));
        assert_eq!(parse_u8digits(b"7"), Some(7));
        assert_eq!(parse_u8digits(b"67012"), Some(67012));
        assert_eq!(parse_u8digits(b"00000004"), Some(4));
        assert_eq!(parse_u8digits(b"99999999"), Some(99_999_999));
        assert_eq!(parse_u8digits(b"12345678"), Some(12_345_678));
        assert_eq!(parse_u8digits(b"123456789"), None, "9 digits do not fit one word");
        assert_eq!(parse_u8digits(b""), None);
        for bad in [&b"12a4"[..], b"1.2", b"/", b":", b" 1", b"1 ", b"\xb1", b"-1"] {
            assert_eq!(parse_u8digits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimals_match_the_scalar_parser() {
        let cases: &[&[u8]] = &[
            b"67012.30",
            b"0.004",
            b"0",
            b"00",
            b"007.50",
            b"1",
            b"12345678",
            b"123456789",
            b"12345678.12345678",
            b"99999999.99999999",
            b"123456789.1",
            b"1.123456789",
            b"1.",
            b".5",
            b".",
            b"-",
            b"-1.5",
            b"-0.004",
            b"",
            b"1e5",
            b"1.2.3",
            b"1,5",
            b" 1",
            b"1 ",
            b"+1",
            b"0.00000001",
            b"0.000000000001",
            b"0.0000000000001",
            b"1234567890123456789",
            b"123456789012345678",
            b"00000000000000000",
            b"1.2a",
            b"a.12",
            b"12345678.",
            b"12.345678901",
            b"\xff1.0",
        ];
        for &c in cases {
            assert_eq!(parse_decimal(c), decimal::parse_decimal(c), "{:?}", String::from_utf8_lossy(c));
        }
        assert_eq!(parse_decimal(b"67012.30"), Ok(Decimal { mantissa: 6_701_230, dec: 2 }));
        assert_eq!(parse_decimal(b"0.004"), Ok(Decimal { mantissa: 4, dec: 3 }));
        assert_eq!(parse_decimal(b"1234567890123456789"), Err(DecimalError::Overflow));
        assert_eq!(parse_decimal(b"12a4"), Err(DecimalError::Syntax));
    }

    /// Every string of up to 4 bytes over an alphabet with the interesting bytes, and random longer ones.
    #[test]
    fn decimals_match_the_scalar_parser_exhaustively() {
        let alpha = b"0159.-a";
        let mut buf = Vec::new();
        for len in 0..=5u32 {
            for mut k in 0..(alpha.len() as u32).pow(len) {
                buf.clear();
                for _ in 0..len {
                    buf.push(alpha[(k % alpha.len() as u32) as usize]);
                    k /= alpha.len() as u32;
                }
                assert_eq!(parse_decimal(&buf), decimal::parse_decimal(&buf), "{:?}", String::from_utf8_lossy(&buf));
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 20) as usize;
            buf.clear();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (y >> 59) as usize;
                buf.push(if r < 12 {
                    b'0' + (r % 10) as u8
                } else if r < 14 {
                    b'.'
                } else {
                    b"-x /:"[r % 5]
                });
            }
            assert_eq!(parse_decimal(&buf), decimal::parse_decimal(&buf), "{:?}", String::from_utf8_lossy(&buf));
        }
    }

    /// The scalar digit run `Sc::int` used before [`leading_digits`]: `None` at the 19th digit.
    fn scalar_digits(s: &[u8]) -> Option<(usize, u64)> {
        let mut v = 0u64;
        for (n, &c) in s.iter().enumerate() {
            if !c.is_ascii_digit() {
                return Some((n, v));
            }
            if n >= MAX_INT_DIGITS {
                return None;
            }
            v = v * 10 + (c - b'0') as u64;
        }
        Some((s.len(), v))
    }

    #[test]
    fn digit_runs_match_the_scalar_loop() {
        let cases: &[&[u8]] = &[
            b"",
            b"0",
            b"1626992741575,",
            b"1626992741575}",
            b"12345678",
            b"123456789",
            b"16269927415751234",
            b"162699274157512345",
            b"1626992741575123456",
            b"999999999999999999,\"",
            b"9999999999999999999",
            b"00000000000000000000",
            b"1234567/",
            b"1234567:",
            b"12345678\xfa9",
            b"1\xff",
            b"-1",
            b"12.5",
        ];
        for &c in cases {
            assert_eq!(leading_digits(c), scalar_digits(c), "{:?}", String::from_utf8_lossy(c));
        }
        let mut x: u64 = 0x5DEE_CE66_D1CE_4E5B;
        let mut buf = Vec::new();
        for _ in 0..200_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = ((x >> 58) % 26) as usize;
            buf.clear();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (y >> 56) as u8;
                // Mostly digits, sometimes a byte next to the digit range or a carry-making high byte.
                buf.push(match r % 16 {
                    0 => [b'/', b':', b',', b'}', 0xfa, 0xff, b'.', b'e'][(r as usize / 16) % 8],
                    _ => b'0' + r % 10,
                });
            }
            assert_eq!(leading_digits(&buf), scalar_digits(&buf), "{buf:?}");
        }
    }

    /// What `quoted_decimal` must give: the quote search and the decimal parser, when both succeed.
    fn slow_quoted(s: &[u8]) -> Option<(Decimal, usize)> {
        let Quote::At(n) = find_quote(s) else { return None };
        parse_decimal(&s[..n]).ok().map(|d| (d, n))
    }

    #[test]
    fn quoted_decimals_match_the_quote_search_and_the_parser() {
        let cases: &[&[u8]] = &[
            b"28145.20\",],[",
            b"0.288\"]],\"a\":[[",
            b"6.961\"],[\"28173.30\",",
            b"1\",\"2\"],[\"3\",\"4\"]",
            b"1234567\"]]}}xxxxxxxx",
            b"12345678\"]]}}xxxxxxx",
            b"1234567.1234567\"]]}}",
            b"1.12345678\"]]}}xxxxxx",
            b"007.50\"]]}}xxxxxxxxxx",
            b"\"]]}}xxxxxxxxxxxxxxxxxx",
            b".5\"]]}}xxxxxxxxxxxxxxxx",
            b"1.\"]]}}xxxxxxxxxxxxxxxx",
            b"1.2.3\"]]}}xxxxxxxxxxxxx",
            b"-1.5\"]]}}xxxxxxxxxxxxxx",
            b"1.5x\"]]}}xxxxxxxxxxxxxx",
            b"1.5\\\"]]}}xxxxxxxxxxxxx",
            b"1.5",
            b"28145.20\"]]}",
        ];
        for &c in cases {
            if let Some(fast) = quoted_decimal(c) {
                assert_eq!(Some(fast), slow_quoted(c), "{:?}", String::from_utf8_lossy(c));
            }
        }
        assert_eq!(quoted_decimal(b"28145.20\",\"0.001\"]"), Some((Decimal { mantissa: 2_814_520, dec: 2 }, 8)));
        assert_eq!(quoted_decimal(b"3\"],[\"1.0\",\"2\"]]}"), Some((Decimal { mantissa: 3, dec: 0 }, 1)));
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        let mut buf = Vec::new();
        let mut taken = 0;
        for _ in 0..300_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = ((x >> 58) % 24) as usize;
            buf.clear();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (y >> 56) as u8;
                // Mostly digits, with points, quotes and bytes next to the digit range or that carry.
                buf.push(match r % 16 {
                    0 => b'.',
                    1 => b'"',
                    2 => [b'/', b':', b'\\', 0xfa, 0xff, b'-', b' ', b'e'][(r as usize / 16) % 8],
                    _ => b'0' + r % 10,
                });
            }
            if let Some(fast) = quoted_decimal(&buf) {
                taken += 1;
                assert_eq!(Some(fast), slow_quoted(&buf), "{buf:?}");
            }
        }
        assert!(taken > 10_000, "{taken}");
    }

    #[test]
    fn quote_search_matches_the_scalar_loop() {
        let cases: &[&[u8]] = &[
            b"\"",
            b"BTCUSDT\"",
            b"btcusdt@aggTrade\",",
            b"0123456789abcdef\"",
            b"01234567\"",
            b"0123456\"",
            b"abc\\\"\"",
            b"abcdefgh\\ijk\"",
            b"abc\x01\"",
            b"abcdefghij\x7f\"",
            b"abcdefghij\xc3\xa9\"",
            b"no end",
            b"",
            b"abcdefgh",
            b"~ }|\"",
        ];
        for &c in cases {
            assert_eq!(find_quote(c), scalar_quote(c), "{:?}", String::from_utf8_lossy(c));
        }
        let mut x: u64 = 12345;
        let mut buf = Vec::new();
        for _ in 0..100_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = ((x >> 58) % 24) as usize;
            buf.clear();
            let mut y = x;
            for _ in 0..len {
                y = y.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (y >> 56) as u8;
                // Mostly printable, sometimes a stop byte.
                buf.push(match r % 16 {
                    0 => b'"',
                    1 => [0x00, 0x1f, 0x7f, 0x80, 0xff, b'\\'][(r as usize / 16) % 6],
                    _ => 0x20 + r % 0x5f,
                });
            }
            assert_eq!(find_quote(&buf), scalar_quote(&buf), "{buf:?}");
        }
    }
}

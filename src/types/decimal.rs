//! Exact decimal strings ↔ integer units.
//!
//! Binance sends prices and quantities as decimal strings (`"28145.10"`). A [`Scale`] says what one integer unit is
//! worth: `value = units × unit × 10^-dec`. A tick size of `"0.10"` is `Scale { dec: 2, unit: 10 }`, so
//! `"28145.10"` is 281451 ticks. Parsing is exact: a string that is not a whole number of units is an
//! [`DecimalError::OffGrid`] error, never a rounded value. Floats appear nowhere in this module.

/// Largest number of decimals we accept (Binance uses at most 8).
pub(crate) const MAX_DECIMALS: u8 = 12;
/// Largest number of significant digits in one decimal string (keeps every value inside i64).
pub(crate) const MAX_DIGITS: usize = 18;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// Why a decimal string could not become integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `-?digits(.digits)?`.
    #[error("not a decimal number")]
    Syntax,
    /// More digits than fit in an i64 at this scale.
    #[error("decimal out of range")]
    Overflow,
    /// The value is not a whole number of units of the scale.
    #[error("value is not on the tick/step grid")]
    OffGrid,
}

/// What one integer unit is worth: `unit × 10^-dec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale {
    /// Decimals of the unit as written.
    pub dec: u8,
    /// The unit in multiples of 10^-dec (1 for a power-of-ten tick).
    pub unit: i64,
}

/// A parsed decimal: `mantissa × 10^-dec`, with `dec` the number of digits written after the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// All digits as one integer.
    pub mantissa: i64,
    /// Digits after the decimal point.
    pub dec: u8,
}

/// Parses `-?digits(.digits)?` exactly.
#[inline]
pub fn parse_decimal(s: &[u8]) -> Result<Decimal, DecimalError> {
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return Err(DecimalError::Syntax);
    }
    let mut mantissa: i64 = 0;
    let mut digits = 0usize;
    let mut dec: u8 = 0;
    let mut seen_point = false;
    let mut int_digits = 0usize;
    for &c in body {
        match c {
            b'0'..=b'9' => {
                if mantissa != 0 || c != b'0' {
                    digits += 1;
                }
                if digits > MAX_DIGITS {
                    return Err(DecimalError::Overflow);
                }
                mantissa = mantissa * 10 + (c - b'0') as i64;
                if seen_point {
                    dec += 1;
                    if dec > MAX_DECIMALS {
                        return Err(DecimalError::Overflow);
                    }
                } else {
                    int_digits += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => return Err(DecimalError::Syntax),
        }
    }
    if int_digits == 0 || (seen_point && dec == 0) {
        return Err(DecimalError::Syntax);
    }
    Ok(Decimal { mantissa: if neg { -mantissa } else { mantissa }, dec })
}

impl Scale {
    /// A power-of-ten scale with `dec` decimals (unit 1).
    pub const fn decimals(dec: u8) -> Self {
        Scale { dec, unit: 1 }
    }

    /// The scale of a tick or step size string such as `"0.10"` or `"1"`. `None` for zero, negative or malformed.
    pub fn from_size(s: &str) -> Option<Self> {
        let d = parse_decimal(s.as_bytes()).ok()?;
        if d.mantissa <= 0 {
            return None;
        }
        // Normalise "0.00100" to dec 5, unit 100: keep the decimals as written, they give the display precision.
        Some(Scale { dec: d.dec, unit: d.mantissa })
    }

    /// Converts a parsed decimal to units of this scale, exactly.
    #[inline]
    pub fn units_of(&self, d: Decimal) -> Result<i64, DecimalError> {
        let atoms = if d.dec <= self.dec {
            d.mantissa.checked_mul(POW10[(self.dec - d.dec) as usize]).ok_or(DecimalError::Overflow)?
        } else {
            let p = POW10[(d.dec - self.dec) as usize];
            if d.mantissa % p != 0 {
                return Err(DecimalError::OffGrid);
            }
            d.mantissa / p
        };
        if self.unit == 1 {
            Ok(atoms)
        } else if atoms % self.unit != 0 {
            Err(DecimalError::OffGrid)
        } else {
            Ok(atoms / self.unit)
        }
    }

    /// Parses a decimal string straight into units of this scale.
    #[inline]
    pub fn parse(&self, s: &[u8]) -> Result<i64, DecimalError> {
        self.units_of(parse_decimal(s)?)
    }

    /// Writes `units` of this scale as a decimal string with `dec` decimals into `out`.
    pub fn format(&self, units: i64, out: &mut String) {
        use std::fmt::Write;
        let atoms = units as i128 * self.unit as i128;
        let neg = atoms < 0;
        let a = atoms.unsigned_abs();
        let p = 10u128.pow(self.dec as u32);
        // Writing into a String cannot fail (its fmt::Write never returns an error).
        let _ = if self.dec == 0 {
            write!(out, "{}{}", if neg { "-" } else { "" }, a)
        } else {
            write!(out, "{}{}.{:0w$}", if neg { "-" } else { "" }, a / p, a % p, w = self.dec as usize)
        };
    }

    /// `units` of this scale as a decimal string.
    pub fn to_string(&self, units: i64) -> String {
        let mut s = String::new();
        self.format(units, &mut s);
        s
    }

    /// `units` as an f64 value (statistics and display only).
    #[inline]
    pub fn to_f64(&self, units: i64) -> f64 {
        units as f64 * self.unit as f64 / POW10[self.dec as usize] as f64
    }

    /// Packs into one i64 for a [`crate::types::event::MarketEvent`] payload (0 = unknown).
    #[inline]
    pub fn pack(&self) -> i64 {
        (self.dec as i64) | (self.unit << 8)
    }

    /// Unpacks [`Scale::pack`]; `None` for 0 (unknown).
    #[inline]
    pub fn unpack(v: i64) -> Option<Self> {
        if v == 0 { None } else { Some(Scale { dec: (v & 0xff) as u8, unit: v >> 8 }) }
    }
}

/// Parses a decimal string into fixed 1e-8 units (used for the mark price, which is not on the tick grid).
/// Digits beyond the 8th decimal are truncated toward zero.
#[inline]
pub(crate) fn parse_e8(s: &[u8]) -> Result<i64, DecimalError> {
    let d = parse_decimal(s)?;
    if d.dec <= 8 {
        d.mantissa.checked_mul(POW10[(8 - d.dec) as usize]).ok_or(DecimalError::Overflow)
    } else {
        Ok(d.mantissa / POW10[(d.dec - 8) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        let tick = Scale::from_size("0.10").unwrap();
        assert_eq!(tick, Scale { dec: 2, unit: 10 });
        assert_eq!(tick.parse(b"28145.10"), Ok(281451));
        assert_eq!(tick.parse(b"28145.1"), Ok(281451));
        assert_eq!(tick.parse(b"28145.15"), Err(DecimalError::OffGrid));
        assert_eq!(tick.parse(b"28145.100"), Ok(281451));
        assert_eq!(tick.parse(b"28145.101"), Err(DecimalError::OffGrid));
        assert_eq!(tick.to_string(281451), "28145.10");
        let step = Scale::from_size("0.001").unwrap();
        assert_eq!(step.parse(b"0.002"), Ok(2));
        assert_eq!(step.parse(b"0"), Ok(0));
        assert_eq!(step.to_string(1122459), "1122.459");
        let one = Scale::from_size("1").unwrap();
        assert_eq!(one.parse(b"437848"), Ok(437848));
        assert_eq!(one.to_string(437848), "437848");
        let odd = Scale::from_size("0.00100").unwrap();
        assert_eq!(odd.parse(b"3.641"), Ok(3641));
        assert_eq!(odd.to_string(3641), "3.64100");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [&b""[..], b"-", b".", b"1.", b".5", b"1.2.3", b"1e5", b"abc", b" 1", b"1,0", b"+1"] {
            assert_eq!(parse_decimal(bad), Err(DecimalError::Syntax), "{:?}", std::str::from_utf8(bad));
        }
        assert_eq!(parse_decimal(b"1234567890123456789"), Err(DecimalError::Overflow));
        assert_eq!(parse_decimal(b"0.0000000000001"), Err(DecimalError::Overflow));
        assert!(Scale::from_size("0").is_none());
        assert!(Scale::from_size("-1").is_none());
    }

    #[test]
    fn leading_zeros_do_not_count_as_digits() {
        assert_eq!(parse_decimal(b"0.00000001"), Ok(Decimal { mantissa: 1, dec: 8 }));
        assert_eq!(parse_decimal(b"-0.5"), Ok(Decimal { mantissa: -5, dec: 1 }));
    }

    #[test]
    fn e8_truncates_extra_digits() {
        assert_eq!(parse_e8(b"28147.27373413"), Ok(2_814_727_373_413));
        assert_eq!(parse_e8(b"0.000027541"), Ok(2754));
        assert_eq!(parse_e8(b"-0.0001"), Ok(-10_000));
    }

    #[test]
    fn pack_round_trips() {
        let s = Scale { dec: 5, unit: 100 };
        assert_eq!(Scale::unpack(s.pack()), Some(s));
        assert_eq!(Scale::unpack(0), None);
    }
}

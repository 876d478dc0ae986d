//! Exact fixed-point numbers for the order engine: an `i128` scaled by 10^8 (Binance's prices, quantities and
//! balances never carry more than 8 decimals), parsed from and printed to the decimal strings of the wire.

use rusto::types::parse_decimal;

/// Decimals kept.
pub const DEC: u32 = 8;
/// 10^[`DEC`].
pub const ONE: i128 = 100_000_000;

/// A decimal number × 10^8.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fx(pub i128);

impl Fx {
    /// Zero.
    pub const ZERO: Fx = Fx(0);

    /// Parses `-?digits(.digits)?` with at most 8 decimals.
    pub fn parse(s: &str) -> Option<Fx> {
        let d = parse_decimal(s.as_bytes()).ok()?;
        if u32::from(d.dec) > DEC {
            return None;
        }
        Some(Fx(i128::from(d.mantissa) * 10i128.pow(DEC - u32::from(d.dec))))
    }

    /// `self × o`, truncated to 8 decimals.
    pub fn mul(self, o: Fx) -> Fx {
        Fx(self.0 * o.0 / ONE)
    }

    /// `self ÷ o`, truncated to 8 decimals (zero when `o` is zero).
    pub fn div(self, o: Fx) -> Fx {
        if o.0 == 0 { Fx::ZERO } else { Fx(self.0 * ONE / o.0) }
    }

    /// `self × n`.
    pub fn times(self, n: i128) -> Fx {
        Fx(self.0 * n)
    }

    /// Absolute value.
    pub fn abs(self) -> Fx {
        Fx(self.0.abs())
    }

    /// True when zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True when a whole multiple of `step` (any value when `step` is zero).
    pub fn is_multiple_of(self, step: Fx) -> bool {
        step.0 == 0 || self.0 % step.0 == 0
    }

    /// Printed with exactly `dec` decimals (truncated toward zero), like Binance's fixed-width fields.
    pub fn fmt(self, dec: u8) -> String {
        let dec = u32::from(dec).min(DEC);
        let cut = 10i128.pow(DEC - dec);
        let v = self.0 / cut;
        let neg = v < 0;
        let a = v.unsigned_abs();
        let p = 10u128.pow(dec);
        let sign = if neg { "-" } else { "" };
        if dec == 0 { format!("{sign}{}", a) } else { format!("{sign}{}.{:0w$}", a / p, a % p, w = dec as usize) }
    }
}

impl std::ops::Add for Fx {
    type Output = Fx;
    fn add(self, o: Fx) -> Fx {
        Fx(self.0 + o.0)
    }
}

impl std::ops::Sub for Fx {
    type Output = Fx;
    fn sub(self, o: Fx) -> Fx {
        Fx(self.0 - o.0)
    }
}

impl std::ops::Neg for Fx {
    type Output = Fx;
    fn neg(self) -> Fx {
        Fx(-self.0)
    }
}

impl std::ops::AddAssign for Fx {
    fn add_assign(&mut self, o: Fx) {
        self.0 += o.0;
    }
}

impl std::ops::SubAssign for Fx {
    fn sub_assign(&mut self, o: Fx) {
        self.0 -= o.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mul_fmt() {
        let p = Fx::parse("28147.27373413").unwrap();
        assert_eq!(p.fmt(2), "28147.27");
        assert_eq!(p.fmt(8), "28147.27373413");
        let q = Fx::parse("0.004").unwrap();
        assert_eq!(p.mul(q).fmt(8), "112.58909493");
        assert_eq!(Fx::parse("-1.5").unwrap().fmt(3), "-1.500");
        assert_eq!(Fx::parse("0.000000001"), None);
        assert_eq!(Fx::parse("3").unwrap().div(Fx::parse("2").unwrap()).fmt(1), "1.5");
        assert!(Fx::parse("0.030").unwrap().is_multiple_of(Fx::parse("0.001").unwrap()));
        assert!(!Fx::parse("0.0305").unwrap().is_multiple_of(Fx::parse("0.001").unwrap()));
        assert_eq!(Fx::ZERO.fmt(0), "0");
    }
}

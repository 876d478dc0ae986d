//! Declarative bounds of the configuration sections: each section lists every key once, next to its `Default`,
//! with its allowed range and the message shown when a value is outside it ([`bounds!`]). The same table gives
//! the canonical `key=value` form of the section, from which the configuration hash is computed, so neither the
//! check nor the hash depends on Rust type names, and a field missing from its table does not compile.
//!
//! One rule for floats: every float key with a range (or marked `finite`) rejects NaN and ±inf here.
//! Imports nothing from the crate.

use std::fmt::Write as _;

/// A value outside its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Dotted key, e.g. `live.reconnect_ms_max`.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is allowed.
    pub allowed: &'static str,
}

/// A section with a bounds table (implemented by [`bounds!`]).
pub(crate) trait Bounded {
    /// Checks every ranged key; `prefix` is the section's dotted name.
    fn check_bounds(&self, prefix: &str) -> Result<(), OutOfBounds>;
    /// Appends one `prefix.key=value` line per key, in table order.
    fn canon(&self, prefix: &str, out: &mut String);
}

/// A number a range applies to.
pub(crate) trait Scalar: Copy + PartialOrd + std::fmt::Display {
    /// False for NaN and ±inf.
    fn is_finite_value(self) -> bool;
}

macro_rules! scalar_ints {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn is_finite_value(self) -> bool {
                true
            }
        }
        impl Canon for $t {
            fn canon(&self, out: &mut String) {
                // Writing into a String cannot fail.
                write!(out, "{self}").ok();
            }
        }
        impl Ranged for $t {
            type Item = $t;
            fn value(&self) -> Option<$t> {
                Some(*self)
            }
        }
    )*};
}
scalar_ints!(u16, u32, u64, usize, i32, i64);

impl Scalar for f64 {
    fn is_finite_value(self) -> bool {
        self.is_finite()
    }
}

impl Ranged for f64 {
    type Item = f64;
    fn value(&self) -> Option<f64> {
        Some(*self)
    }
}

/// A key a range applies to: a number, or an optional number (`None` is always allowed).
pub(crate) trait Ranged {
    /// The number.
    type Item: Scalar;
    /// The value to check, if any.
    fn value(&self) -> Option<Self::Item>;
}

impl<T: Scalar + Ranged<Item = T>> Ranged for Option<T> {
    type Item = T;
    fn value(&self) -> Option<T> {
        *self
    }
}

/// Checks `lo <= v <= hi` (and finiteness).
pub(crate) fn check_range<V: Ranged>(
    prefix: &str,
    field: &str,
    v: &V,
    lo: V::Item,
    hi: V::Item,
    allowed: &'static str,
) -> Result<(), OutOfBounds> {
    match v.value() {
        Some(x) if !x.is_finite_value() || x < lo || x > hi => {
            Err(OutOfBounds { key: join(prefix, field), value: x.to_string(), allowed })
        }
        _ => Ok(()),
    }
}

/// Checks that a float is finite.
pub(crate) fn check_finite(prefix: &str, field: &str, v: f64, allowed: &'static str) -> Result<(), OutOfBounds> {
    if v.is_finite() { Ok(()) } else { Err(OutOfBounds { key: join(prefix, field), value: v.to_string(), allowed }) }
}

/// `prefix.field` (or `field` without a prefix).
pub(crate) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") }
}

/// The canonical text of a value in the configuration hash.
pub(crate) trait Canon {
    /// Appends the value.
    fn canon(&self, out: &mut String);
}

impl Canon for f64 {
    fn canon(&self, out: &mut String) {
        // `{:?}` is the shortest text that reads back to the same f64. Writing into a String cannot fail.
        write!(out, "{self:?}").ok();
    }
}

impl Canon for bool {
    fn canon(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl Canon for String {
    fn canon(&self, out: &mut String) {
        write!(out, "{self:?}").ok();
    }
}

impl<T: Canon> Canon for Option<T> {
    fn canon(&self, out: &mut String) {
        match self {
            Some(v) => v.canon(out),
            None => out.push_str("none"),
        }
    }
}

impl<T: Canon> Canon for Vec<T> {
    fn canon(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.canon(out);
        }
        out.push(']');
    }
}

impl<V: Canon> Canon for std::collections::BTreeMap<String, V> {
    fn canon(&self, out: &mut String) {
        out.push('{');
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write!(out, "{k:?}=").ok();
            v.canon(out);
        }
        out.push('}');
    }
}

/// Appends `prefix.field=value\n`.
pub(crate) fn canon_line<T: Canon + ?Sized>(prefix: &str, field: &str, v: &T, out: &mut String) {
    out.push_str(&join(prefix, field));
    out.push('=');
    v.canon(out);
    out.push('\n');
}

/// The bounds table of a section: every field once, with one of
/// - `[lo, hi] "message"`: a range (floats also finite), `Option`s checked when `Some`;
/// - `finite "message"`: a float with no range but never NaN or ±inf;
/// - `any`: no range (booleans, enums, strings, lists; checked elsewhere if at all);
/// - `nested`: a sub-table with its own `bounds!`;
/// - `flat`: a struct with its own `bounds!` whose keys sit in this table (`#[serde(flatten)]`), same prefix;
/// - `skip`: not configuration (derived state), neither checked nor hashed.
///
/// `Type as v` names the section value for bounds that depend on another key (`[0.0, v.trend_enter_pct]`).
/// Listing every field is enforced: the table destructures the struct without `..`.
#[macro_export]
macro_rules! bounds {
    ($ty:ty as $v:ident { $($field:ident : $kind:tt $($msg:literal)?);* $(;)? }) => {
        impl $crate::types::bounds::Bounded for $ty {
            #[allow(unused_variables)]
            fn check_bounds(&self, prefix: &str) -> Result<(), $crate::types::bounds::OutOfBounds> {
                let $v = self;
                let Self { $($field: _),* } = self;
                $( $crate::bounds!(@check prefix, self, $field, $kind $($msg)?); )*
                Ok(())
            }
            fn canon(&self, prefix: &str, out: &mut String) {
                $( $crate::bounds!(@canon prefix, self, $field, out, $kind); )*
            }
        }
    };
    (@check $p:ident, $s:ident, $f:ident, [$lo:expr, $hi:expr] $msg:literal) => {
        $crate::types::bounds::check_range($p, stringify!($f), &$s.$f, $lo, $hi, $msg)?
    };
    (@check $p:ident, $s:ident, $f:ident, finite $msg:literal) => {
        $crate::types::bounds::check_finite($p, stringify!($f), $s.$f, $msg)?
    };
    (@check $p:ident, $s:ident, $f:ident, nested) => {
        $crate::types::bounds::Bounded::check_bounds(&$s.$f, &$crate::types::bounds::join($p, stringify!($f)))?
    };
    (@check $p:ident, $s:ident, $f:ident, flat) => {
        $crate::types::bounds::Bounded::check_bounds(&$s.$f, $p)?
    };
    (@check $p:ident, $s:ident, $f:ident, any) => {};
    (@check $p:ident, $s:ident, $f:ident, skip) => {};
    (@canon $p:ident, $s:ident, $f:ident, $out:ident, nested) => {
        $crate::types::bounds::Bounded::canon(&$s.$f, &$crate::types::bounds::join($p, stringify!($f)), $out)
    };
    (@canon $p:ident, $s:ident, $f:ident, $out:ident, flat) => {
        $crate::types::bounds::Bounded::canon(&$s.$f, $p, $out)
    };
    (@canon $p:ident, $s:ident, $f:ident, $out:ident, skip) => {};
    (@canon $p:ident, $s:ident, $f:ident, $out:ident, $kind:tt) => {
        $crate::types::bounds::canon_line($p, stringify!($f), &$s.$f, $out)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Inner {
        ratio: f64,
    }
    crate::bounds!(Inner as _i { ratio: [0.0, 1.0] "0 to 1" });

    #[derive(Default)]
    struct Section {
        lo: u32,
        hi: u32,
        core: Option<usize>,
        x: f64,
        name: String,
        inner: Inner,
        cache: Vec<u8>,
    }
    crate::bounds!(Section as s {
        lo: [1, 10] "1 to 10";
        hi: [s.lo, 20] "lo to 20";
        core: [0, 3] "a core";
        x: finite "a finite number";
        name: any;
        inner: nested;
        cache: skip;
    });

    fn ok() -> Section {
        Section { lo: 2, hi: 5, core: None, x: 1.5, name: "n".into(), inner: Inner { ratio: 0.5 }, cache: vec![1] }
    }

    #[test]
    fn ranges_dependent_bounds_options_and_floats() {
        assert_eq!(ok().check_bounds("sec"), Ok(()));
        assert_eq!(ok().cache, [1]);
        let e = Section { lo: 0, ..ok() }.check_bounds("sec").unwrap_err();
        assert_eq!((e.key.as_str(), e.value.as_str(), e.allowed), ("sec.lo", "0", "1 to 10"));
        assert_eq!(Section { hi: 1, ..ok() }.check_bounds("sec").unwrap_err().key, "sec.hi");
        assert_eq!(Section { core: Some(4), ..ok() }.check_bounds("sec").unwrap_err().key, "sec.core");
        assert!(Section { core: Some(3), ..ok() }.check_bounds("sec").is_ok());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Section { x: bad, ..ok() }.check_bounds("sec").unwrap_err().key, "sec.x");
            let e = Section { inner: Inner { ratio: bad }, ..ok() }.check_bounds("").unwrap_err();
            assert_eq!(e.key, "inner.ratio");
        }
    }

    #[test]
    fn canonical_lines_name_every_key_in_order() {
        let mut out = String::new();
        ok().canon("sec", &mut out);
        assert_eq!(out, "sec.lo=2\nsec.hi=5\nsec.core=none\nsec.x=1.5\nsec.name=\"n\"\nsec.inner.ratio=0.5\n");
    }
}

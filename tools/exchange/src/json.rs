//! Minimal JSON scanning for frame templates.
//!
//! A recorded frame is served again on every loop with its timestamps and ids shifted, and everything else (prices,
//! quantities, field order, spacing) byte for byte as recorded. [`Template::build`] finds the numeric fields that
//! must move (by event type, see [`num_kind`]) and keeps the text between them as literals; [`Template::render`]
//! writes the frame with per-kind offsets added.

/// What a number in a frame is, for shifting on each loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumKind {
    /// A timestamp in ms (`E`, `T`, kline `t`/`T`).
    Time,
    /// A depth update id (`U`, `u`, `pu`, bookTicker `u`, `lastUpdateId`).
    UpdateId,
    /// A trade id (`t`, aggTrade `f`/`l`, kline `f`/`L`).
    TradeId,
    /// An aggregate trade id (aggTrade `a`).
    AggId,
}

/// Offsets added to each kind of number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// Added to [`NumKind::Time`].
    pub time_ms: i64,
    /// Added to [`NumKind::UpdateId`].
    pub update_id: i64,
    /// Added to [`NumKind::TradeId`].
    pub trade_id: i64,
    /// Added to [`NumKind::AggId`].
    pub agg_id: i64,
}

impl Offsets {
    /// The offset of one kind.
    pub fn of(&self, k: NumKind) -> i64 {
        match k {
            NumKind::Time => self.time_ms,
            NumKind::UpdateId => self.update_id,
            NumKind::TradeId => self.trade_id,
            NumKind::AggId => self.agg_id,
        }
    }
}

#[derive(Clone, Debug)]
enum Piece {
    Lit(Box<str>),
    Num(NumKind, i64),
}

/// A frame as literal text with shiftable numbers.
#[derive(Clone, Debug, Default)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// One `"key": value` of an object: key text and the byte range of the value.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The key without quotes (escapes are not decoded; Binance keys have none).
    pub key: &'a str,
    /// Start of the value.
    pub start: usize,
    /// End of the value (exclusive).
    pub end: usize,
}

fn ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

fn skip_string(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Skips one JSON value starting at `i` (after whitespace); returns the index after it.
pub fn skip_value(s: &[u8], i: usize) -> Option<usize> {
    let i = ws(s, i);
    match *s.get(i)? {
        b'"' => skip_string(s, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = skip_string(s, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                j += 1;
            }
            if j == i { None } else { Some(j) }
        }
    }
}

/// The fields of the object starting at `i` (after whitespace), and the index after the object.
pub fn object_fields(s: &[u8], i: usize) -> Option<(Vec<Field<'_>>, usize)> {
    let mut i = ws(s, i);
    if s.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(s, i + 1);
    let mut out = Vec::new();
    if s.get(i) == Some(&b'}') {
        return Some((out, i + 1));
    }
    loop {
        let kend = skip_string(s, i)?;
        let key = std::str::from_utf8(&s[i + 1..kend - 1]).ok()?;
        i = ws(s, kend);
        if s.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(s, i + 1);
        let end = skip_value(s, start)?;
        out.push(Field { key, start, end });
        i = ws(s, end);
        match s.get(i)? {
            b',' => i = ws(s, i + 1),
            b'}' => return Some((out, i + 1)),
            _ => return None,
        }
    }
}

/// The kind of a top-level numeric field of an event of type `e`, if it moves on a loop.
pub fn num_kind(e: &str, key: &str) -> Option<NumKind> {
    match (e, key) {
        (_, "E") | (_, "T") => Some(NumKind::Time),
        ("depthUpdate", "U" | "u" | "pu") => Some(NumKind::UpdateId),
        ("bookTicker", "u") => Some(NumKind::UpdateId),
        ("trade", "t") => Some(NumKind::TradeId),
        ("aggTrade", "a") => Some(NumKind::AggId),
        ("aggTrade", "f" | "l") => Some(NumKind::TradeId),
        (_, "lastUpdateId") => Some(NumKind::UpdateId),
        _ => None,
    }
}

fn kline_kind(key: &str) -> Option<NumKind> {
    match key {
        "t" | "T" => Some(NumKind::Time),
        "f" | "L" => Some(NumKind::TradeId),
        _ => None,
    }
}

fn int_at(s: &[u8], f: &Field) -> Option<i64> {
    let t = std::str::from_utf8(&s[f.start..f.end]).ok()?;
    if t.starts_with('-') || t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
}

impl Template {
    /// A template of the object `s` (an event payload) of event type `e`. `None` if `s` is not an object.
    pub fn build(s: &str, e: &str) -> Option<Template> {
        let b = s.as_bytes();
        let (fields, end) = object_fields(b, 0)?;
        let mut nums: Vec<(usize, usize, NumKind, i64)> = Vec::new();
        for f in &fields {
            if let Some(k) = num_kind(e, f.key)
                && let Some(v) = int_at(b, f)
            {
                nums.push((f.start, f.end, k, v));
            } else if e == "kline"
                && f.key == "k"
                && let Some((inner, _)) = object_fields(b, f.start)
            {
                for g in &inner {
                    if let Some(k) = kline_kind(g.key)
                        && let Some(v) = int_at(b, g)
                    {
                        nums.push((g.start, g.end, k, v));
                    }
                }
            }
        }
        nums.sort_by_key(|n| n.0);
        let mut t = Template::default();
        let mut pos = 0;
        for (start, stop, k, v) in nums {
            t.lit(&s[pos..start]);
            t.pieces.push(Piece::Num(k, v));
            pos = stop;
        }
        t.lit(&s[pos..end]);
        Some(t)
    }

    /// Appends literal text.
    pub fn lit(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if let Some(Piece::Lit(prev)) = self.pieces.last_mut() {
            let mut joined = String::with_capacity(prev.len() + s.len());
            joined.push_str(prev);
            joined.push_str(s);
            *prev = joined.into_boxed_str();
        } else {
            self.pieces.push(Piece::Lit(s.into()));
        }
    }

    /// Appends a shiftable number.
    pub fn num(&mut self, k: NumKind, v: i64) {
        self.pieces.push(Piece::Num(k, v));
    }

    /// Writes the frame with `off` applied.
    pub fn render(&self, off: &Offsets, out: &mut String) {
        use std::fmt::Write;
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Num(k, v) => {
                    let _ = write!(out, "{}", v + off.of(*k));
                }
            }
        }
    }

    /// The frame with `off` applied.
    pub fn to_string_with(&self, off: &Offsets) -> String {
        let mut s = String::new();
        self.render(off, &mut s);
        s
    }

    /// The first number of kind `k` (as recorded).
    pub fn first(&self, k: NumKind) -> Option<i64> {
        self.pieces.iter().find_map(|p| match p {
            Piece::Num(kk, v) if *kk == k => Some(*v),
            _ => None,
        })
    }
}

/// The raw text of the value of `key` in the object `s`, if present.
pub fn field_text<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let (fields, _) = object_fields(s.as_bytes(), 0)?;
    fields.iter().find(|f| f.key == key).map(|f| &s[f.start..f.end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_numbers_move_and_strings_stay() {
        let s = r#"{"e":"depthUpdate","E":1680652700594,"T":1680652700586,"s":"BTCUSDT","U":10,"u":20,"pu":5,"b":[["5000.00","14.368"]],"a":[]}"#;
        let t = Template::build(s, "depthUpdate").unwrap();
        assert_eq!(t.to_string_with(&Offsets::default()), s);
        let off = Offsets { time_ms: 1000, update_id: 100, trade_id: 7, agg_id: 9 };
        assert_eq!(
            t.to_string_with(&off),
            r#"{"e":"depthUpdate","E":1680652701594,"T":1680652701586,"s":"BTCUSDT","U":110,"u":120,"pu":105,"b":[["5000.00","14.368"]],"a":[]}"#
        );
    }

    #[test]
    fn book_ticker_a_is_a_price_and_kline_nested_times_move() {
        let s = r#"{"e":"bookTicker","u":5,"s":"X","b":"1.0","B":"2","a":"1.1","A":"3","T":1,"E":2}"#;
        let t = Template::build(s, "bookTicker").unwrap();
        let off = Offsets { time_ms: 10, update_id: 100, trade_id: 0, agg_id: 0 };
        assert_eq!(
            t.to_string_with(&off),
            r#"{"e":"bookTicker","u":105,"s":"X","b":"1.0","B":"2","a":"1.1","A":"3","T":11,"E":12}"#
        );
        let k = r#"{"e":"kline","E":5,"s":"X","k":{"t":1,"T":2,"s":"X","i":"1m","f":3,"L":4,"o":"1.0","x":false}}"#;
        let t = Template::build(k, "kline").unwrap();
        let off = Offsets { time_ms: 10, update_id: 0, trade_id: 100, agg_id: 0 };
        assert_eq!(
            t.to_string_with(&off),
            r#"{"e":"kline","E":15,"s":"X","k":{"t":11,"T":12,"s":"X","i":"1m","f":103,"L":104,"o":"1.0","x":false}}"#
        );
    }

    #[test]
    fn scanner_handles_escapes_and_nesting() {
        let s = r#"{"a" : "x\"}", "b":[1,{"c":[2]}], "d": -3}"#;
        let (f, end) = object_fields(s.as_bytes(), 0).unwrap();
        assert_eq!(end, s.len());
        assert_eq!(f.len(), 3);
        assert_eq!(&s[f[0].start..f[0].end], r#""x\"}""#);
        assert_eq!(&s[f[1].start..f[1].end], r#"[1,{"c":[2]}]"#);
        assert_eq!(field_text(s, "d"), Some("-3"));
        assert!(object_fields(br#"{"a":1"#, 0).is_none());
    }
}

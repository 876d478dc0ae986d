//! The time window of a replay (`--from` / `--until`), by the recording's local receive time: frames at or after
//! `until` are not read (the stream ends there, open positions close as at the end of a file); before `from` the
//! whole pipeline runs (book, bars, flow, profile, regime, tuning warm up on the past) but no entry is taken (the
//! signals refused are counted). So a test window replays out of sample with warmed-up state and no lookahead.

/// A replay's time window, local receive time in ns since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    /// Entries only from this time on (earlier frames warm the state up).
    pub from_ns: Option<i64>,
    /// The stream ends before the first frame stamped at or after this time.
    pub until_ns: Option<i64>,
}

impl TimeWindow {
    /// No window: the whole recording.
    pub fn is_all(&self) -> bool {
        self.from_ns.is_none() && self.until_ns.is_none()
    }

    /// Whether a frame stamped `ts_ns` is past the window's end (not read).
    #[inline]
    pub fn ended(&self, ts_ns: i64) -> bool {
        self.until_ns.is_some_and(|u| ts_ns >= u)
    }
}

/// A point in time given on the command line: `2023-04-05T00:02:00Z` (UTC, optional fraction of a second) or an
/// integer Unix timestamp whose unit is told by its digit count like the recordings' (s, ms, µs or ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(pub i64);

impl std::str::FromStr for LocalTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid time {s:?}: use YYYY-MM-DDTHH:MM:SS[.fff]Z (UTC) or a Unix timestamp");
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return crate::recording::reader::int_ts_to_ns(s.as_bytes()).map(LocalTime).ok_or_else(bad);
        }
        parse_utc(s).map(LocalTime).ok_or_else(bad)
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (secs, ns) = (self.0.div_euclid(1_000_000_000), self.0.rem_euclid(1_000_000_000));
        let (days, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = crate::types::clock::civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)?;
        if ns != 0 {
            write!(f, ".{:09}", ns)?;
        }
        f.write_str("Z")
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` to ns since the epoch.
fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let num = |t: &str, len: usize| -> Option<i64> {
        (t.len() == len && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    let (hms, frac) = time.split_once('.').map_or((time, None), |(a, b)| (a, Some(b)));
    let mut t = hms.split(':');
    let (h, mi, se) = (num(t.next()?, 2)?, num(t.next()?, 2)?, num(t.next()?, 2)?);
    if d.next().is_some() || t.next().is_some() || !(1..=12).contains(&mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, da as u32)?;
    let mut ns = ((days * 86_400 + h * 3600 + mi * 60 + se) as i128 * 1_000_000_000) as i64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ns += f.parse::<i64>().ok()? * 10i64.pow(9 - f.len() as u32);
    }
    Some(ns)
}

/// (year, month, day) → days since 1970-01-01 (H. Hinnant's algorithm); `None` for a day the month lacks.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let y0 = if m <= 2 { y - 1 } else { y };
    let era = y0.div_euclid(400);
    let yoe = y0 - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (d >= 1 && crate::types::clock::civil_from_days(days) == (y, m, d)).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_print() {
        let t: LocalTime = "2023-04-05T00:02:00Z".parse().unwrap();
        assert_eq!(t.0, 1_680_652_920 * 1_000_000_000);
        assert_eq!(t.to_string(), "2023-04-05T00:02:00Z");
        let f: LocalTime = "2023-04-05T00:02:00.25Z".parse().unwrap();
        assert_eq!(f.0 - t.0, 250_000_000);
        assert_eq!(f.to_string(), "2023-04-05T00:02:00.250000000Z");
        // Digit counts: s, ms, µs, ns.
        for s in ["1680652920", "1680652920000", "1680652920000000", "1680652920000000000"] {
            assert_eq!(s.parse::<LocalTime>().unwrap(), t, "{s}");
        }
        assert_eq!("2000-02-29T00:00:00Z".parse::<LocalTime>().unwrap().0, 951_782_400 * 1_000_000_000);
        for bad in
            ["", "2023-02-29T00:00:00Z", "2023-04-05T24:00:00Z", "2023-04-05T00:02:00", "2023-4-5T00:02:00Z", "x"]
        {
            assert!(bad.parse::<LocalTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_window_ends_at_until() {
        let w = TimeWindow { from_ns: None, until_ns: Some(10) };
        assert!(!w.ended(9) && w.ended(10) && w.ended(11));
        assert!(!TimeWindow::default().ended(i64::MAX) && TimeWindow::default().is_all());
    }
}

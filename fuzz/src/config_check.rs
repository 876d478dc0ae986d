//! The `parse_config` fuzz target's check, shared with `tests/fuzz_regressions.rs` (included there with `#[path]`).
//!
//! Arbitrary bytes (as UTF-8, lossily) to `Config::from_toml`, then the same text with a line planted at three
//! places (start, a place chosen by the first byte, end): `api_key = "<MARKER>"` and `stop_pct = "<MARKER>"`.
//! Checked: no panic; the credential plant is always refused as a credential, naming where credentials belong,
//! and the error never shows the marker; a parse error (`fuzz.toml…`, not a range error, which shows the value of a
//! known non-credential key by design) never shows the value planted under another key. Inputs that already hold
//! the marker's prefix are only parsed.

use rusto::app::Config;

/// The planted value; no message may show it.
pub const MARKER: &str = "ZQXSEKRET0451MARKER";
/// What must never appear (a prefix of [`MARKER`], so a cut-short echo is caught too).
const LEAK: &str = "ZQXSEKRET";

pub fn check_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Config::from_toml(&text, "fuzz.toml");
    if text.contains(LEAK) {
        return;
    }
    let mut mid = data.first().map_or(0, |&b| b as usize * text.len() / 255);
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    for at in [0, mid, text.len()] {
        let (before, after) = text.split_at(at);
        let planted = format!("{before}\napi_key = \"{MARKER}\"\n{after}");
        let e = Config::from_toml(&planted, "fuzz.toml").expect_err("a credential is always refused").to_string();
        assert!(!e.contains(LEAK), "the credential's value is shown: {e}");
        assert!(e.contains("looks like a credential") && e.contains("RUSTO_API_KEY"), "not a credential refusal: {e}");
        let planted = format!("{before}\nstop_pct = \"{MARKER}\"\n{after}");
        if let Err(e) = Config::from_toml(&planted, "fuzz.toml") {
            let e = e.to_string();
            assert!(!(e.starts_with("fuzz.toml") && e.contains(LEAK)), "a parse error shows a value: {e}");
        }
    }
}

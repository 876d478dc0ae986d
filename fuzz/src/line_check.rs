//! The `classify_line` fuzz target's check, shared with `tests/fuzz_regressions.rs` (included there with `#[path]`).

use rusto::recording::{Line, classify};

/// Classifies `line` (no panic allowed); a frame it finds must be a sub-slice of the line.
pub fn check_line(line: &[u8]) {
    if let Line::Frame { json, .. } = classify(line) {
        let whole = line.as_ptr_range();
        let frame = json.as_ptr_range();
        assert!(whole.start <= frame.start && frame.end <= whole.end, "frame outside the line");
    }
}

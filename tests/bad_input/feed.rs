//! Bad input, feed cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).

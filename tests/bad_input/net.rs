//! Bad input, net cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).

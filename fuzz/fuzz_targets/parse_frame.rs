//! Arbitrary bytes → `Parser::parse_frame`; the invariants are in `fuzz/src/parse_check.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rusto_fuzz::parse_check::check_frame(data);
});

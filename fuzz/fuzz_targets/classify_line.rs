//! Arbitrary bytes → `rusto::recording::classify`; the check is in `fuzz/src/line_check.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rusto_fuzz::line_check::check_line(data);
});

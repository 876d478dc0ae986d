//! Arbitrary bytes → `Config::from_toml`; the check is in `fuzz/src/config_check.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rusto_fuzz::config_check::check_config(data);
});

//! Arbitrary bytes → the order side's readers (first byte picks one); the invariants are in `fuzz/src/order_check.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rusto_fuzz::order_check::check_order_message(data);
});

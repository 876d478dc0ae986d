//! A command tape → `Book::on_event`; the format and the invariants are in `fuzz/src/book_tape.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rusto_fuzz::book_tape::run(data);
});

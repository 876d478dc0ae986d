//! Checks shared by the fuzz targets and, through `#[path]` includes, by `tests/fuzz_regressions.rs`.

pub mod book_tape;
pub mod config_check;
pub mod line_check;
pub mod order_check;
pub mod parse_check;

//! Human and JSON output: run summaries, the database review and its plots.

pub mod plot;
pub mod review;
pub mod summary;

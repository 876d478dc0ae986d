//! The persistence thread: batched SQLite writes and CSV outputs.

pub mod db;
pub mod writer;

//! The persistence thread: batched SQLite writes and CSV outputs.

pub(crate) mod db;
pub(crate) mod writer;

pub use db::{Db, MIGRATIONS, Names};

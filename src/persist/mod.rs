//! The persistence thread: batched SQLite writes and CSV outputs.

pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod recover;
pub(crate) mod writer;

pub use db::{Db, MIGRATIONS, Names};
pub use error::DbError;
pub use recover::{Recovered, lock_path};

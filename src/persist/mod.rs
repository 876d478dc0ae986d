//! The persistence thread: batched SQLite writes and CSV outputs.

pub(crate) mod adopt;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod recover;
pub(crate) mod writer;

pub use adopt::{Candidate, ReportSummary};
pub use db::{Db, MIGRATIONS, Names, mark_run_mode, position_run_modes};
pub use error::DbError;
pub use recover::{Recovered, lock_path};

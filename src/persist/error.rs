//! Database errors, one enum for the writer and the report, and how an SQLite error maps onto them.

use std::path::{Path, PathBuf};

/// Database errors, each with the file and a plain cause.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another process holds the database's write lock.
    #[error("database {0}: locked by another process (is another rusto running on it?)")]
    Locked(PathBuf),
    /// The directory the file should be in does not exist (rusto does not create it: a mistyped path must not be
    /// taken for a fresh deployment; systemd's `StateDirectory=` or `mkdir -p` creates it).
    #[error("database {0}: directory {1} does not exist (create it first, e.g. mkdir -p {1})")]
    NoDirectory(PathBuf, PathBuf),
    /// The file or its directory is not writable.
    #[error("database {0}: read-only (check the file's and its directory's permissions)")]
    ReadOnly(PathBuf),
    /// The file is not an SQLite database or is damaged.
    #[error("database {0}: not a database or corrupt ({1}); move it aside or restore a backup")]
    Corrupt(PathBuf, String),
    /// `PRAGMA quick_check` found damage (the first problems it reported).
    #[error(
        "database {0}: damaged, quick_check reports: {1}; restore it from a backup, or salvage its rows with \
         `sqlite3 {0} .recover | sqlite3 NEW.db`, and move the damaged file aside"
    )]
    Damaged(PathBuf, String),
    /// The schema is newer than this binary.
    #[error("database {path}: schema version {found} is newer than this rusto knows ({known}); upgrade rusto")]
    TooNew {
        /// File.
        path: PathBuf,
        /// Version in the file.
        found: i64,
        /// Newest known here.
        known: i64,
    },
    /// The database refuses this row itself (a constraint, or a position it does not hold): retrying cannot help.
    #[error("database {0}: row refused ({1})")]
    Row(PathBuf, String),
    /// Any other SQLite error.
    #[error("database {0}: {1}")]
    Other(PathBuf, String),
}

pub(crate) fn classify(path: &Path, e: rusqlite::Error) -> DbError {
    use rusqlite::ErrorCode as C;
    let p = path.to_owned();
    if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
        return DbError::Row(p, e.to_string());
    }
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => DbError::Locked(p),
        Some(C::ReadOnly) | Some(C::CannotOpen) if !path.exists() || is_read_only(path) => DbError::ReadOnly(p),
        Some(C::ReadOnly) => DbError::ReadOnly(p),
        Some(C::NotADatabase) | Some(C::DatabaseCorrupt) => DbError::Corrupt(p, e.to_string()),
        Some(C::ConstraintViolation) => DbError::Row(p, e.to_string()),
        _ => DbError::Other(p, e.to_string()),
    }
}

fn is_read_only(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.permissions().readonly()).unwrap_or(false)
}

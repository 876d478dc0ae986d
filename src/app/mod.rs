//! The application layer, the only one that sees the whole configuration: replay and live runs (sharing the thread
//! start-up of `threads`), the live control loop (`control`), the recorder, the REST client, alerts, notifications,
//! secrets.

pub mod alert;
pub mod config;
pub mod control;
pub mod live;
pub mod logger;
pub mod notify;
pub mod recorder;
pub mod replay;
pub mod rest;
pub mod secrets;
pub mod threads;

/// A fresh scratch directory for a unit test of this layer.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

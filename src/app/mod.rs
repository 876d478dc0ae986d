//! The application layer, the only one that sees the whole configuration: replay and live runs (sharing the thread
//! start-up of `threads`), the live control loop (`control`), the recorder, the REST client, alerts, notifications,
//! secrets.

pub(crate) mod account;
pub(crate) mod alert;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod live;
pub(crate) mod logger;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod order_rest;
pub(crate) mod orders;
pub(crate) mod recorder;
pub(crate) mod replay;
pub(crate) mod rest;
pub(crate) mod secrets;
pub(crate) mod sweep;
pub(crate) mod threads;

/// A fresh scratch directory for a unit test of this layer.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rusto-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub use config::Config;
pub use live::{LiveOptions, print_symbols, run_live, stop_on_signals};
pub use logger::{flush as flush_log, init as init_log};
pub use recorder::run_record;
pub use replay::{CacheOutcome, ReplayError, ReplayOptions, open_replay_cache, run_replay, run_replay_cached};
pub use secrets::load as load_secrets;
pub use sweep::{
    Emitted, Manifest, SweepError, SweepOptions, emit_jobs, merge as merge_sweep, prepare as prepare_sweep,
    run_local as run_sweep,
};

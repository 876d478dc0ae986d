//! The pinned compute thread: per-symbol market state, signals and paper trading, driven by one event at a time.

pub mod engine;
pub mod market;
pub mod signal;
pub mod thread;
pub mod trading;

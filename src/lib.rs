//! rusto: a low-latency order-flow trading engine for Binance USDⓈ-M futures.
//!
//! The pipeline (see `ARCHITECTURE` in the README): network or recording thread → [`ring`] → compute thread
//! ([`book`], [`bars`], …) → ring → persistence thread. Every stage is a plain struct with an `on_event` style
//! entry point that can be tested alone with a hand-built event tape.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod app;
pub mod compute;
pub mod handoff;
pub mod ingest;
pub mod persist;

pub mod recording;
pub mod report;
pub mod types;

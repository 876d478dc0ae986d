//! rusto: a low-latency order-flow trading engine for Binance USDⓈ-M futures.
//!
//! The pipeline (drawn in the README's "Architecture" section): network ([`ingest`]) or recording ([`recording`])
//! thread → [`handoff`] ring → pinned [`compute`] thread → ring → [`persist`] thread; [`app`] wires the threads
//! for replay and live runs, [`report`] prints what they produced, and [`types`] is the vocabulary they share.
//! Every stage is a plain struct with an `on_event` style entry point that can be tested alone with a hand-built
//! event tape. The layering is checked by `tests/layering.rs`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod app;
pub mod compute;
pub mod handoff;
pub mod ingest;
pub mod persist;

pub mod recording;
pub mod report;
pub mod types;

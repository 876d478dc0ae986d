//! rusto: a low-latency order-flow trading engine for Binance USDⓈ-M futures.
//!
//! The pipeline (see `ARCHITECTURE` in the README): network or recording thread → [`ring`] → compute thread
//! ([`book`], [`bars`], …) → ring → persistence thread. Every stage is a plain struct with an `on_event` style
//! entry point that can be tested alone with a hand-built event tape.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod alert;
pub mod bars;
pub mod book;
pub mod clock;
pub mod config;
pub mod control;
pub mod db;
pub mod decimal;
pub mod engine;
pub mod event;
pub mod fastpath;
pub mod feed;
pub mod flow;
pub mod gate;
pub mod import;
pub mod latency;
pub mod live;
pub mod net;
pub mod notify;
pub mod parse;
pub mod persist;
pub mod pipeline;
pub mod plot;
pub mod position;
pub mod profile;
pub mod regime;
pub mod report;
pub mod review;
pub mod ring;
pub mod risk;
pub mod secrets;
pub mod strategy;
pub mod symbols;
pub mod tune;
pub mod ws;

//! Leaf vocabulary shared by every layer: clocks, exact decimals, symbols, the 64-byte market event, the records the compute thread emits, latency stages. Imports nothing from the crate.

pub mod bounds;
pub mod clock;
pub mod decimal;
pub mod event;
pub mod latency;
pub mod record;
pub mod symbols;

//! Market state per symbol: order book, range bars, order flow, volume profile, regime.

pub mod audit;
pub mod bars;
pub mod book;
pub mod flow;
pub mod profile;
pub mod regime;

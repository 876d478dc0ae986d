//! Market state per symbol: order book, range bars, order flow, volume profile, regime.

pub(crate) mod audit;
pub(crate) mod bars;
pub(crate) mod book;
pub(crate) mod flow;
pub(crate) mod profile;
pub(crate) mod regime;
pub(crate) mod touch;

pub use bars::{BarRange, RangeBars};
pub use book::{Book, BookConfig, BookOutcome, MarketModel};
pub use flow::FlowConfig;
pub use regime::RegimeConfig;

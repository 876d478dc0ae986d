//! The AdvancedOrderFlow strategy and the burst threshold tuner.

pub(crate) mod strategy;
pub(crate) mod tune;

pub use tune::TuneConfig;

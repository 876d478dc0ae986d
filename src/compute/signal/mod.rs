//! The AdvancedOrderFlow strategy and the burst threshold tuner.

pub mod strategy;
pub mod tune;

//! Execution gate, risk, and paper positions.

pub mod gate;
pub mod position;
pub mod risk;
pub mod trader;

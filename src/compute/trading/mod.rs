//! Execution gate, risk, and paper positions.

pub(crate) mod gate;
pub(crate) mod position;
pub(crate) mod risk;
pub(crate) mod trader;

pub use gate::GateReject;

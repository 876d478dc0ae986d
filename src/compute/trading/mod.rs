//! Execution gate, risk, orders in flight and resting, and paper positions.

pub(crate) mod gate;
pub(crate) mod orders;
pub(crate) mod position;
pub(crate) mod risk;
pub(crate) mod trader;

pub use gate::GateReject;

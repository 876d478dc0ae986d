//! Execution gate, risk, orders in flight and resting, and paper positions.

pub(crate) mod gate;
pub(crate) mod orders;
pub(crate) mod position;
pub(crate) mod risk;
pub(crate) mod trader;
pub(crate) mod venue;

pub use gate::GateReject;
pub use venue::{
    BACKLOG_MAX, Decision, Doorbell, EntryRefusal, HaltCause, PROTECT_ATTEMPTS_MAX, RATE_WINDOW_MAX, VENUE_SYMBOLS_MAX,
    Venue, VenueConfig, VenueStats,
};

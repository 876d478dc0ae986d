//! The pinned compute thread: per-symbol market state, signals and paper trading, driven by one event at a time.

pub(crate) mod engine;
pub(crate) mod market;
pub(crate) mod signal;
pub(crate) mod thread;
pub(crate) mod trading;

pub use engine::{Engine, EngineConfig};
pub use market::{BarRange, Book, BookConfig, BookOutcome, FlowConfig, MarketModel, RangeBars, RegimeConfig};
pub use signal::TuneConfig;
pub use thread::InlineCompute;
pub use trading::{
    BACKLOG_MAX, Decision, Doorbell, EntryRefusal, GateReject, HaltCause, PROTECT_ATTEMPTS_MAX, RATE_WINDOW_MAX,
    VENUE_SYMBOLS_MAX, Venue, VenueConfig, VenueStats,
};

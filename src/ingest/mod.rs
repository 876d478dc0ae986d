//! The network thread: transport (endpoint, TLS, stream), websocket codec, the mio loop, and the parser that turns
//! frames into events.

pub(crate) mod error;
pub(crate) mod net;
pub(crate) mod orders;
pub(crate) mod parse;
pub(crate) mod transport;
pub(crate) mod ws;

pub use net::{ConnectionPolicy, Net, NetConfig, NetInbox};
pub use parse::{
    DEFAULT_MAX_FRAME_BYTES, FrameKind, FrameMeta, MAX_EVENTS_PER_FRAME, MAX_LEVELS_PER_SIDE, ParseError, Parser,
    parse_exchange_info,
};
pub use transport::Endpoint;
// The order wire protocol (issue 12): its names are the folder's `pub use` list in orders/mod.rs.
pub use orders::*;

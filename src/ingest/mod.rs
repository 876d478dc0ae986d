//! The network thread: transport (endpoint, TLS, stream), websocket codec, the mio loop, and the parser that turns
//! frames into events.

pub mod error;
pub mod net;
pub mod parse;
pub mod transport;
pub mod ws;

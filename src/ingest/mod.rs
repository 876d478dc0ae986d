//! The network thread: websocket codec, the mio loop over TLS, and the parser that turns frames into events.

pub mod net;
pub mod parse;
pub mod ws;

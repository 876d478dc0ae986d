//! The network layer's error (shared by the transport and the mio loop).

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A URL could not be understood.
    #[error("bad url {0:?}: {1}")]
    Url(String, &'static str),
    /// A host did not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
    /// The TLS configuration could not be built (e.g. an unreadable CA file).
    #[error("tls: {0}")]
    Tls(String),
    /// Polling failed.
    #[error("poll: {0}")]
    Poll(std::io::Error),
    /// The connection keeps failing.
    #[error("{route}: {count} reconnects within {window_secs} s (last error: {last}); giving up")]
    TooManyReconnects {
        /// Route.
        route: &'static str,
        /// Reconnects in the window.
        count: usize,
        /// Window.
        window_secs: u64,
        /// Last error.
        last: String,
    },
}

// Not `#[from]`: that would make the cause a `source()` too, and it is already in the message (printed twice).
impl From<std::io::Error> for NetError {
    fn from(e: std::io::Error) -> Self {
        NetError::Poll(e)
    }
}

//! The transport under the websocket codec: the endpoint (parsed and resolved once, at start), the rustls client
//! configuration, and the TCP stream with or without TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;

use crate::ingest::error::NetError;

/// A websocket endpoint (`wss://host:port` or `ws://host:port`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name (SNI and the Host header).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS or plain.
    pub tls: bool,
    /// Resolved addresses.
    pub addrs: Vec<SocketAddr>,
}

impl Endpoint {
    /// Parses and resolves `wss://host[:port]` / `ws://host[:port]` (resolution happens here, once, at start).
    pub fn parse(url: &str) -> Result<Self, NetError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("ws://") {
            (false, r)
        } else {
            return Err(NetError::Url(url.into(), "expected wss:// or ws://"));
        };
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| NetError::Url(url.into(), "bad port"))?),
            None => (hostport.to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(NetError::Url(url.into(), "no host"));
        }
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| NetError::Resolve(host.clone(), e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(NetError::Resolve(host, "no address".into()));
        }
        Ok(Endpoint { host, port, tls, addrs })
    }
}

/// The rustls client configuration: the webpki (Mozilla) roots, or, when a CA file is given, exactly the
/// certificates in it (the local exchange's CA, or a private proxy's). There is no option to skip verification.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_file.is_none() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(p) = ca_file {
        let mut n = 0;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(p)
            .map_err(|e| NetError::Tls(format!("{}: {e}", p.display())))?
        {
            let cert = cert.map_err(|e| NetError::Tls(format!("{}: {e}", p.display())))?;
            roots.add(cert).map_err(|e| NetError::Tls(format!("{}: {e}", p.display())))?;
            n += 1;
        }
        if n == 0 {
            return Err(NetError::Tls(format!("{}: no certificate", p.display())));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A TCP stream with or without TLS.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

/// Where a connection's handshake stands (for the timeout's count and log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakePhase {
    /// The TCP connect has not completed.
    TcpConnect,
    /// TCP is up, the TLS handshake has not completed.
    Tls,
    /// The transport is up, the websocket upgrade (HTTP 101) has not arrived.
    Upgrade,
}

impl HandshakePhase {
    /// Name for the log.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            HandshakePhase::TcpConnect => "TCP connect",
            HandshakePhase::Tls => "TLS handshake",
            HandshakePhase::Upgrade => "websocket upgrade",
        }
    }
}

impl Stream {
    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &mut s.sock,
        }
    }

    /// The handshake phase of a connection whose websocket upgrade is not done: a socket without a peer address
    /// is still connecting (mio connects in the background), a TLS session still handshaking is in TLS.
    pub(crate) fn phase(&mut self) -> HandshakePhase {
        let connected = self.tcp().peer_addr().is_ok();
        match self {
            _ if !connected => HandshakePhase::TcpConnect,
            Stream::Tls(s) if s.conn.is_handshaking() => HandshakePhase::Tls,
            _ => HandshakePhase::Upgrade,
        }
    }
}

/// Monotonic stamps of one read that returned data: when its bytes left the socket, and when they were plain text
/// (the same instant without TLS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReadStamp {
    /// Right after the socket read.
    pub socket_ns: u64,
    /// Right after TLS decryption.
    pub plain_ns: u64,
}

/// A `Read` whose reads are stamped: plain streams stamp once after the read, TLS stamps after the socket read and
/// again after decryption. `clock_reads` counts every `now()` call.
pub(crate) trait StampedRead: Read {
    /// As `read`, with the read's stamps.
    fn read_stamped(
        &mut self,
        buf: &mut [u8],
        now: &impl Fn() -> u64,
        clock_reads: &mut u64,
    ) -> std::io::Result<(usize, ReadStamp)> {
        read_stamped_once(self, buf, now, clock_reads)
    }
}

/// A plain read stamped once after it returns (socket and plain text are the same bytes).
fn read_stamped_once(
    r: &mut (impl Read + ?Sized),
    buf: &mut [u8],
    now: &impl Fn() -> u64,
    clock_reads: &mut u64,
) -> std::io::Result<(usize, ReadStamp)> {
    let n = r.read(buf)?;
    *clock_reads += 1;
    let t = now();
    Ok((n, ReadStamp { socket_ns: t, plain_ns: t }))
}

/// Socket reads one TLS read may take to complete a record (rustls reads at most 4 KiB at a time: five reads hold
/// the largest record). A record still incomplete after them is an `Interrupted` read: the caller reads again
/// (never `WouldBlock`, which would mean "nothing more there" while bytes are still waiting in the socket: mio's
/// readiness is edge-triggered, no new event would come for them).
const TLS_READS_PER_RECORD: usize = 5;

/// An established TLS session's read, split so the socket read and the decryption are stamped apart.
fn tls_read(
    s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: &mut [u8],
    now: &impl Fn() -> u64,
    clock_reads: &mut u64,
) -> std::io::Result<(usize, ReadStamp)> {
    use std::io::ErrorKind::WouldBlock;
    // Plain text left over from an earlier read goes first (the read buffer is larger than any frame, so this is
    // rare; it is stamped now, as its socket read is no longer known).
    match read_stamped_once(&mut s.conn.reader(), buf, now, clock_reads) {
        Ok(r) => return Ok(r),
        Err(e) if e.kind() == WouldBlock => {}
        Err(e) => return Err(e),
    }
    for _ in 0..TLS_READS_PER_RECORD {
        let got = s.conn.read_tls(&mut s.sock)?;
        *clock_reads += 1;
        let socket_ns = now();
        if got == 0 {
            return Ok((0, ReadStamp { socket_ns, plain_ns: socket_ns }));
        }
        s.conn.process_new_packets().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if s.conn.wants_write() {
            // Best effort (an alert or a key update): a failure shows up on the next write or read.
            let _ = s.conn.write_tls(&mut s.sock);
        }
        match s.conn.reader().read(buf) {
            Ok(n) => {
                *clock_reads += 1;
                return Ok((n, ReadStamp { socket_ns, plain_ns: now() }));
            }
            Err(e) if e.kind() == WouldBlock => {} // The record is not complete yet: read on.
            Err(e) => return Err(e),
        }
    }
    Err(std::io::ErrorKind::Interrupted.into())
}

impl StampedRead for Stream {
    fn read_stamped(
        &mut self,
        buf: &mut [u8],
        now: &impl Fn() -> u64,
        clock_reads: &mut u64,
    ) -> std::io::Result<(usize, ReadStamp)> {
        match self {
            Stream::Tls(s) if !s.conn.is_handshaking() => tls_read(s, buf, now, clock_reads),
            _ => read_stamped_once(self, buf, now, clock_reads),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => {
                s.flush()?;
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_resolve_locally() {
        let e = Endpoint::parse("wss://127.0.0.1:9443").unwrap();
        assert!(e.tls);
        assert_eq!(e.port, 9443);
        let e = Endpoint::parse("ws://localhost").unwrap();
        assert!(!e.tls);
        assert_eq!(e.port, 80);
        assert!(Endpoint::parse("http://x").is_err());
        assert!(Endpoint::parse("wss://:1").is_err());
    }

    #[test]
    fn tls_config_with_a_bad_ca_file_is_a_clear_error() {
        assert!(tls_config(None).is_ok());
        let e = tls_config(Some(Path::new("/nonexistent/ca.pem"))).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}

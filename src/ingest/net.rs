//! The live network thread: one mio `Poll` over non-blocking websocket connections (TLS by rustls, or plain), one
//! per route (`/market`, `/public`), frames parsed straight into the event ring.
//!
//! Contracts (the shape of mio's own `poll.rs`):
//! - One reused `Events`; every readable connection is drained until `WouldBlock` (bounded reads per wake so one
//!   busy connection cannot starve the other); nothing here blocks: connects, TLS, the upgrade and frames are all
//!   non-blocking, and host names are resolved once at start.
//! - Each text frame is stamped at the socket read (wall clock for `local_ts`, monotonic for latency), parsed into
//!   the reused staging buffer and pushed into the ring under the `drop-and-resync` policy.
//! - Pings are answered at once; the server's pings keep the connection alive (Binance: every 3 minutes, dropped
//!   after 10 without a pong).
//! - On any disconnect: the connection's books are marked unsynced (`Dropped` events, so the compute thread asks
//!   for fresh snapshots), and it reconnects with exponential backoff and jitter (`reconnect_min_ms` doubling to
//!   `reconnect_max_ms`). More than `max_reconnects` reconnects within `reconnect_window_secs` is a fatal
//!   [`NetError::TooManyReconnects`].
//! - Before a connection reaches Binance's 24 h limit (`rotate_after_secs`), a successor connection is opened; once
//!   it delivers its first frame the old one is closed. The engine drops the duplicated trades and depth updates.
//! - SUBSCRIBE/UNSUBSCRIBE requests are rate limited to `control_msgs_per_sec` (Binance allows 10 incoming messages
//!   per second per connection).
//! - Commands from the control thread (REST snapshot bodies, subscription changes) arrive through a bounded queue
//!   and a mio `Waker`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;

use crate::handoff::publish::Publisher;
use crate::ingest::parse::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
use crate::ingest::ws::{WsConn, WsError, WsState};
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::latency::Stage;
use crate::types::symbols::SymbolName;

/// Where `rusto record` writes each raw frame with its local receive time.
pub type RecordSink<'a> = &'a mut dyn FnMut(i64, &[u8]);

/// Token of the control thread's waker.
pub const WAKER: Token = Token(usize::MAX - 1);

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
    Poll(#[from] std::io::Error),
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
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, NetError> {
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
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &mut s.sock,
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

/// Which routed endpoint a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/market`: aggTrade, trade, markPrice.
    Market,
    /// `/public`: depth, bookTicker.
    Public,
}

impl Route {
    /// Name.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Market => "market",
            Route::Public => "public",
        }
    }
}

/// A command for the network thread.
#[derive(Debug)]
pub enum NetCmd {
    /// A REST depth snapshot body to inject into the stream for `symbol`.
    Snapshot {
        /// Symbol.
        symbol: SymbolName,
        /// Body.
        body: Vec<u8>,
        /// Local receive time (ns since the epoch).
        local_ts_ns: i64,
    },
    /// Subscribe streams on a route.
    Subscribe(Route, Vec<String>),
    /// Unsubscribe streams on a route.
    Unsubscribe(Route, Vec<String>),
    /// Drop every connection now (tests and operator action): they reconnect as after a failure.
    DropConnections,
}

/// Network thread settings: a plain struct built only by the app from `[live]` (`LiveConfig::net`), where the
/// keys, defaults and bounds live (`live.reconnect_ms_min`, `live.reconnect_ms_max`, `live.max_reconnects`,
/// `live.reconnect_window_s`, `live.rotate_after_s`, `live.control_msgs_per_s`).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Path prefix of the market route, e.g. `/market`.
    pub market_path: String,
    /// Path prefix of the public route, e.g. `/public`.
    pub public_path: String,
    /// Largest frame, bytes.
    pub max_frame_bytes: usize,
    /// Reconnect backoff start (`live.reconnect_ms_min`).
    pub reconnect_min_ms: u64,
    /// Reconnect backoff cap (`live.reconnect_ms_max`).
    pub reconnect_max_ms: u64,
    /// Most reconnects per window before giving up.
    pub max_reconnects: usize,
    /// The window (`live.reconnect_window_s`).
    pub reconnect_window_secs: u64,
    /// Open a successor connection after this long (`live.rotate_after_s`; Binance drops at 24 h).
    pub rotate_after_secs: u64,
    /// SUBSCRIBE/UNSUBSCRIBE messages per second per connection (`live.control_msgs_per_s`).
    pub control_msgs_per_sec: u32,
    /// Reads per readable event per connection.
    pub max_reads_per_wake: usize,
}

/// Counters of the network thread.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Text frames received.
    pub frames: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Pings answered.
    pub pings: u64,
    /// Connections opened (upgrade done).
    pub connects: u64,
    /// Disconnects (errors or peer close).
    pub disconnects: u64,
    /// Rotations before the 24 h limit.
    pub rotations: u64,
    /// Snapshots injected.
    pub snapshots: u64,
    /// Control messages sent.
    pub control_sent: u64,
    /// Last disconnect reason.
    pub last_error: String,
}

struct Conn {
    route: Route,
    token: Token,
    path: String,
    streams: Vec<String>,
    ws: Option<WsConn<Stream>>,
    backoff_ms: u64,
    next_attempt: Instant,
    opened_at: Option<Instant>,
    frames: u64,
    successor_of: Option<usize>,
    pending_ctrl: VecDeque<String>,
    sent_this_sec: u32,
    sec_start: Instant,
    next_id: u64,
    closed_for_good: bool,
    retire_at: Option<Instant>,
}

/// The network thread state.
pub struct Net {
    cfg: NetConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    poll: Poll,
    conns: Vec<Conn>,
    reconnects: VecDeque<Instant>,
    seed: u32,
    /// Counters.
    pub stats: NetStats,
    /// Parse latency.
    pub parse_stage: Stage,
    /// Frames received, readable from other threads (the watchdog's sign of life).
    pub progress: Arc<std::sync::atomic::AtomicU64>,
}

fn jitter(seed: &mut u32, ms: u64) -> u64 {
    let mut x = *seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *seed = x;
    // ±25 %.
    let span = ms / 2;
    ms - ms / 4 + if span > 0 { x as u64 % span } else { 0 }
}

impl Net {
    /// Sets up the poll and the connections (not yet connected). `market`/`public` are stream names.
    pub fn new(
        cfg: NetConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        market: Vec<String>,
        public: Vec<String>,
    ) -> Result<(Self, Arc<Waker>), NetError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut net = Net {
            cfg,
            tls,
            poll,
            conns: Vec::new(),
            reconnects: VecDeque::new(),
            seed: (clock::wall_ns() as u32) | 1,
            stats: NetStats::default(),
            parse_stage: Stage::new("parse"),
            progress: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        for (route, streams) in [(Route::Market, market), (Route::Public, public)] {
            if !streams.is_empty() {
                net.add_conn(route, streams, None);
            }
        }
        Ok((net, waker))
    }

    fn add_conn(&mut self, route: Route, streams: Vec<String>, successor_of: Option<usize>) -> usize {
        let i = self.conns.len();
        let prefix = match route {
            Route::Market => &self.cfg.market_path,
            Route::Public => &self.cfg.public_path,
        };
        self.conns.push(Conn {
            route,
            token: Token(i),
            path: format!("{prefix}/stream?streams={}", streams.join("/")),
            streams,
            ws: None,
            backoff_ms: self.cfg.reconnect_min_ms,
            next_attempt: Instant::now(),
            opened_at: None,
            frames: 0,
            successor_of,
            pending_ctrl: VecDeque::new(),
            sent_this_sec: 0,
            sec_start: Instant::now(),
            next_id: 1,
            closed_for_good: false,
            retire_at: None,
        });
        i
    }

    fn connect(&mut self, i: usize) -> Result<(), String> {
        let ep = &self.cfg.endpoint;
        let addr = ep.addrs[self.stats.connects as usize % ep.addrs.len()];
        let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        self.poll
            .registry()
            .register(&mut tcp, self.conns[i].token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        let stream = match &self.tls {
            Some(cfg) if ep.tls => {
                let name = ServerName::try_from(ep.host.clone()).map_err(|e| e.to_string())?;
                let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(|e| e.to_string())?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
            _ => Stream::Plain(tcp),
        };
        let host = if (ep.tls && ep.port == 443) || (!ep.tls && ep.port == 80) {
            ep.host.clone()
        } else {
            format!("{}:{}", ep.host, ep.port)
        };
        let c = &mut self.conns[i];
        c.ws = Some(WsConn::new(stream, &host, &c.path, self.cfg.max_frame_bytes, self.seed ^ i as u32));
        c.opened_at = None;
        c.frames = 0;
        Ok(())
    }

    /// Drops connection `i` after an error: counts it, marks its books unsynced, schedules the reconnect.
    fn fail(&mut self, i: usize, why: String, parser: &Parser, publisher: &mut Publisher) -> Result<(), NetError> {
        let c = &mut self.conns[i];
        if let Some(mut ws) = c.ws.take() {
            let _ = self.poll.registry().deregister(ws.stream_mut().tcp());
        }
        self.stats.disconnects += 1;
        self.stats.last_error = format!("{}: {why}", c.route.name());
        eprintln!("warn: {} connection lost: {why}; reconnecting", c.route.name());
        if c.route == Route::Public {
            // Depth continuity is lost: every book must resync from a fresh snapshot.
            for id in 0..parser.symbols().len() {
                publisher.mark_lost(id as u16);
            }
        }
        let now = Instant::now();
        let delay = jitter(&mut self.seed, c.backoff_ms);
        c.next_attempt = now + Duration::from_millis(delay);
        c.backoff_ms = (c.backoff_ms * 2).min(self.cfg.reconnect_max_ms);
        self.reconnects.push_back(now);
        let window = Duration::from_secs(self.cfg.reconnect_window_secs);
        while self.reconnects.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.reconnects.pop_front();
        }
        if self.reconnects.len() > self.cfg.max_reconnects {
            return Err(NetError::TooManyReconnects {
                route: c.route.name(),
                count: self.reconnects.len(),
                window_secs: self.cfg.reconnect_window_secs,
                last: why,
            });
        }
        Ok(())
    }

    fn queue_ctrl(&mut self, route: Route, method: &str, streams: &[String]) {
        for c in self.conns.iter_mut().filter(|c| c.route == route && !c.closed_for_good) {
            for s in streams {
                match method {
                    "SUBSCRIBE" => {
                        if !c.streams.contains(s) {
                            c.streams.push(s.clone());
                        }
                    }
                    _ => c.streams.retain(|x| x != s),
                }
            }
            // Reconnects use the path, so keep it current.
            let prefix = if route == Route::Market { &self.cfg.market_path } else { &self.cfg.public_path };
            c.path = format!("{prefix}/stream?streams={}", c.streams.join("/"));
            let id = c.next_id;
            c.next_id += 1;
            let params: Vec<String> = streams.iter().map(|s| format!("\"{s}\"")).collect();
            c.pending_ctrl
                .push_back(format!("{{\"method\":\"{method}\",\"params\":[{}],\"id\":{id}}}", params.join(",")));
        }
    }

    fn send_ctrl(&mut self) {
        let limit = self.cfg.control_msgs_per_sec.max(1);
        for c in &mut self.conns {
            if c.sec_start.elapsed() >= Duration::from_secs(1) {
                c.sec_start = Instant::now();
                c.sent_this_sec = 0;
            }
            let Some(ws) = c.ws.as_mut().filter(|w| w.state() == WsState::Open) else { continue };
            while c.sent_this_sec < limit {
                let Some(m) = c.pending_ctrl.pop_front() else { break };
                if ws.send_text(&m).is_ok() {
                    c.sent_this_sec += 1;
                    self.stats.control_sent += 1;
                }
            }
        }
    }

    /// Runs until `stop` is set. `inbox` carries the control thread's commands.
    pub fn run(
        &mut self,
        parser: &mut Parser,
        publisher: &mut Publisher,
        stop: &AtomicBool,
        inbox: &ArrayQueue<NetCmd>,
        mut record: Option<RecordSink<'_>>,
    ) -> Result<(), NetError> {
        let mut events = Events::with_capacity(64);
        let mut staging: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            // Connect what is due; rotate old connections.
            for i in 0..self.conns.len() {
                let c = &self.conns[i];
                if c.closed_for_good {
                    continue;
                }
                // A predecessor keeps being read for a grace second after its successor delivered data (so nothing
                // it already carried is lost; the copies are dropped by id), then it is closed.
                if c.retire_at.is_some_and(|t| now >= t) {
                    let c = &mut self.conns[i];
                    if let Some(mut ws) = c.ws.take() {
                        let _ = ws.close(1000);
                        let _ = self.poll.registry().deregister(ws.stream_mut().tcp());
                    }
                    c.closed_for_good = true;
                    continue;
                }
                if c.ws.is_none() && now >= c.next_attempt {
                    if let Err(e) = self.connect(i) {
                        self.fail(i, e, parser, publisher)?;
                    }
                    continue;
                }
                let rotate = Duration::from_secs(self.cfg.rotate_after_secs);
                if c.retire_at.is_none()
                    && c.opened_at.is_some_and(|t| now.duration_since(t) >= rotate)
                    && !self.conns.iter().any(|o| o.successor_of == Some(i))
                {
                    let (route, streams) = (c.route, c.streams.clone());
                    let j = self.add_conn(route, streams, Some(i));
                    self.stats.rotations += 1;
                    if let Err(e) = self.connect(j) {
                        self.fail(j, e, parser, publisher)?;
                    }
                }
            }
            self.poll.poll(&mut events, Some(Duration::from_millis(20)))?;
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let i = ev.token().0;
                if i >= self.conns.len() || self.conns[i].ws.is_none() {
                    continue;
                }
                let local = clock::wall_ns();
                let max_reads = self.cfg.max_reads_per_wake;
                let conn = &mut self.conns[i];
                let ws = conn.ws.as_mut().expect("checked above");
                let was_open = ws.state() == WsState::Open;
                let mut frames = 0u64;
                let parse_stage = &mut self.parse_stage;
                let res = ws.read_stamped(max_reads, clock::now_ns, |text, stamp| {
                    frames += 1;
                    if let Some(rec) = record.as_mut() {
                        rec(local, text);
                    }
                    let meta = FrameMeta { local_ts_ns: local, stamp_ns: stamp, snapshot_symbol: None };
                    staging.clear();
                    let _ = parser.parse_frame(text, &meta, &mut staging);
                    let t = clock::now_ns();
                    let parse_ns = t.saturating_sub(stamp);
                    parse_stage.record(parse_ns);
                    let p = parse_ns.min(u32::MAX as u64) as u32;
                    for e in staging.iter_mut() {
                        e.parse_ns = p;
                    }
                    publisher.publish(&staging);
                });
                match res {
                    Ok(st) => {
                        self.stats.frames += frames;
                        self.progress.store(self.stats.frames, Ordering::Relaxed);
                        self.stats.bytes += st.bytes as u64;
                        self.stats.pings += st.pings as u64;
                        let conn = &mut self.conns[i];
                        conn.frames += frames;
                        if !was_open && conn.ws.as_ref().is_some_and(|w| w.state() == WsState::Open) {
                            conn.opened_at = Some(Instant::now());
                            conn.backoff_ms = self.cfg.reconnect_min_ms;
                            self.stats.connects += 1;
                        }
                        if ev.is_writable()
                            && let Some(ws) = self.conns[i].ws.as_mut()
                            && let Err(e) = ws.flush()
                        {
                            self.fail(i, e.to_string(), parser, publisher)?;
                            continue;
                        }
                        // A successor that delivers data retires its predecessor (after a grace second).
                        if frames > 0
                            && let Some(old) = self.conns[i].successor_of.take()
                        {
                            self.conns[old].retire_at = Some(Instant::now() + Duration::from_secs(1));
                        }
                    }
                    Err(e) => {
                        self.stats.frames += frames;
                        let why = match &e {
                            WsError::Io(io) => format!("io: {io}"),
                            other => other.to_string(),
                        };
                        self.fail(i, why, parser, publisher)?;
                    }
                }
            }
            // Commands from the control thread.
            while let Some(cmd) = inbox.pop() {
                match cmd {
                    NetCmd::Snapshot { symbol, body, local_ts_ns } => {
                        if let Some(rec) = record.as_mut() {
                            rec(local_ts_ns, &body);
                        }
                        let stamp = clock::now_ns();
                        let meta = FrameMeta { local_ts_ns, stamp_ns: stamp, snapshot_symbol: Some(symbol) };
                        staging.clear();
                        if parser.parse_frame(&body, &meta, &mut staging).is_ok() {
                            self.stats.snapshots += 1;
                        }
                        publisher.publish(&staging);
                    }
                    NetCmd::Subscribe(route, streams) => self.queue_ctrl(route, "SUBSCRIBE", &streams),
                    NetCmd::Unsubscribe(route, streams) => self.queue_ctrl(route, "UNSUBSCRIBE", &streams),
                    NetCmd::DropConnections => {
                        for i in 0..self.conns.len() {
                            if self.conns[i].ws.is_some() {
                                self.fail(i, "dropped on request".into(), parser, publisher)?;
                            }
                        }
                    }
                }
            }
            self.send_ctrl();
            publisher.publish(&[]);
        }
        for c in &mut self.conns {
            if let Some(ws) = c.ws.as_mut() {
                let _ = ws.close(1000);
            }
        }
        Ok(())
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
    fn jitter_stays_within_a_quarter() {
        let mut s = 12345;
        for _ in 0..1000 {
            let j = jitter(&mut s, 1000);
            assert!((750..1250).contains(&j), "{j}");
        }
    }

    #[test]
    fn tls_config_with_a_bad_ca_file_is_a_clear_error() {
        assert!(tls_config(None).is_ok());
        let e = tls_config(Some(Path::new("/nonexistent/ca.pem"))).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}

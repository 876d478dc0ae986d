//! The live network thread: one mio `Poll` over non-blocking websocket connections (TLS by rustls, or plain), one
//! per route (`/market`, `/public`), frames parsed straight into the event ring.
//!
//! Contracts (the shape of mio's own `poll.rs`):
//! - One reused `Events`; every readable connection is drained until `WouldBlock`, at most `max_reads_per_wake`
//!   reads per turn so one busy connection cannot starve the other; one stopped by that bound is read again on the
//!   next turns until it says `WouldBlock` (mio's readiness is edge-triggered: bytes already waiting raise no new
//!   event, and a connection the peer closed after its last bytes would otherwise keep them, and its EOF, unread);
//!   nothing here blocks: connects, TLS, the upgrade and frames are all non-blocking, and host names are resolved
//!   once at start.
//! - Each connection-table slot keeps its websocket buffers (the `max_frame` read buffer, the reassembly and write
//!   buffers), allocated once with the slot and handed to each connection that uses the slot: a reconnect or a
//!   rotation allocates nothing large.
//! - Each text frame is stamped at the socket read (wall clock for `local_ts`, monotonic for latency), parsed into
//!   the reused staging buffer and pushed into the ring under the `drop-and-resync` policy.
//! - Pings are answered at once; the server's pings keep the connection alive (Binance: every 3 minutes, dropped
//!   after 10 without a pong).
//! - Every connection attempt has one deadline, `handshake_timeout_ms` after its TCP connect starts, for the TCP
//!   connect, the TLS handshake and the websocket upgrade (HTTP 101) together; it is checked on every turn of the
//!   loop (at most 20 ms apart, the poll timeout; no extra thread, nothing blocks). A peer that accepts TCP and
//!   never answers, or a plain server behind a `wss://` URL, therefore costs one counted timeout
//!   ([`NetStats::handshake_timeouts`]), a warning naming the phase and the URL, and a reconnect with the backoff
//!   (and so counts towards `max_reconnects`), instead of a silent stall. A peer that answers garbage fails the
//!   TLS or HTTP parse at once (a disconnect, same backoff).
//! - On any disconnect: the connection's books are marked unsynced (`Dropped` events, so the compute thread asks
//!   for fresh snapshots), and it reconnects with exponential backoff and jitter (`reconnect_ms_min` doubling to
//!   `reconnect_ms_max`). More than `max_reconnects` reconnects within `reconnect_window_s` is a fatal
//!   [`NetError::TooManyReconnects`].
//! - Before a connection reaches Binance's 24 h limit (`rotate_after_s`), a successor connection is opened; once
//!   it delivers its first frame the old one is closed after [`RETIRE_GRACE`], with a closing handshake: it is read
//!   until the server answers our close frame (at most [`CLOSE_WAIT`]), so nothing the server sent on it is lost. The engine drops the
//!   duplicated trades and depth updates. A closed connection's slot (and its mio token) is reused by the next successor, so
//!   the connection table never grows past the connections open at once (a month of rotations included).
//! - SUBSCRIBE/UNSUBSCRIBE requests ([`SubscribeCmd`]) are rate limited to `control_msgs_per_s` (Binance allows 10
//!   incoming messages per second per connection); at most [`PENDING_CTRL_MAX`] wait per connection, and one more
//!   is counted ([`NetStats::ctrl_dropped`]) while the connection's stream list still takes the change.
//! - Commands from the control thread (REST snapshot bodies, subscription changes) arrive through a [`NetInbox`]
//!   (bounded; a full one hands the command back to the caller and counts it) and a mio `Waker`.
//! - A publish that finds the compute thread gone is counted ([`NetStats::frames_undelivered`]) and ends the loop
//!   cleanly, as replay stops its source.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use mio::{Events, Poll, Token, Waker};

use crate::handoff::handover::Handover;
use crate::handoff::publish::EventSink;
pub(crate) use crate::ingest::error::NetError;
use crate::ingest::orders::link::open_ws;
use crate::ingest::orders::{API_TOKEN, OrderLink, USER_TOKEN};
use crate::ingest::parse::{FrameMeta, MAX_EVENTS_PER_FRAME, Parser};
pub(crate) use crate::ingest::transport::{Endpoint, HandshakePhase, Stream, tls_config};
use crate::ingest::ws::{ReadStamp, ReadStats, WsBuffers, WsConn, WsError, WsState};
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::latency::{Stage, StageFigures};
use crate::types::symbols::SymbolName;

/// Where `rusto record` writes each raw frame with its local receive time.
pub(crate) type RecordSink<'a> = &'a mut dyn FnMut(i64, &[u8]);

/// Token of the control thread's waker.
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

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

/// A subscription change on one route: one SUBSCRIBE or UNSUBSCRIBE request per connection of the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeCmd {
    /// Add `streams` (e.g. `btcusdt@aggTrade`) to every connection of `route`.
    Subscribe {
        /// Route.
        route: Route,
        /// Stream names.
        streams: Vec<String>,
    },
    /// Remove `streams` from every connection of `route`.
    Unsubscribe {
        /// Route.
        route: Route,
        /// Stream names.
        streams: Vec<String>,
    },
}

impl SubscribeCmd {
    /// The route it changes.
    pub fn route(&self) -> Route {
        match self {
            SubscribeCmd::Subscribe { route, .. } | SubscribeCmd::Unsubscribe { route, .. } => *route,
        }
    }

    /// The streams it names.
    pub fn streams(&self) -> &[String] {
        match self {
            SubscribeCmd::Subscribe { streams, .. } | SubscribeCmd::Unsubscribe { streams, .. } => streams,
        }
    }

    /// Binance's method name.
    fn method(&self) -> &'static str {
        match self {
            SubscribeCmd::Subscribe { .. } => "SUBSCRIBE",
            SubscribeCmd::Unsubscribe { .. } => "UNSUBSCRIBE",
        }
    }

    /// Applies the change to a connection's stream list (kept current for reconnects and rotations).
    fn apply(&self, current: &mut Vec<String>) {
        match self {
            SubscribeCmd::Subscribe { streams, .. } => {
                for s in streams {
                    if !current.contains(s) {
                        current.push(s.clone());
                    }
                }
            }
            SubscribeCmd::Unsubscribe { streams, .. } => current.retain(|x| !streams.contains(x)),
        }
    }

    /// The request text with request id `id`.
    fn request(&self, id: u64) -> String {
        let params: Vec<String> = self.streams().iter().map(|s| format!("\"{s}\"")).collect();
        format!("{{\"method\":\"{}\",\"params\":[{}],\"id\":{id}}}", self.method(), params.join(","))
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
    /// Subscribe or unsubscribe streams on a route.
    Subscription(SubscribeCmd),
    /// Drop every connection now (tests and operator action): they reconnect as after a failure.
    DropConnections,
}

impl NetCmd {
    /// [`SubscribeCmd::Subscribe`] of `streams` on `route`.
    pub fn subscribe(route: Route, streams: Vec<String>) -> Self {
        NetCmd::Subscription(SubscribeCmd::Subscribe { route, streams })
    }

    /// [`SubscribeCmd::Unsubscribe`] of `streams` on `route`.
    pub fn unsubscribe(route: Route, streams: Vec<String>) -> Self {
        NetCmd::Subscription(SubscribeCmd::Unsubscribe { route, streams })
    }
}

/// The bounded queue that carries the control thread's commands to the network thread, with the waker of its poll.
/// A push never blocks and never loses a command silently: when the queue is full the command comes back to the
/// caller (to retry later) and the refusal is counted ([`NetInbox::refused`], reported as `NetStats::inbox_full`).
pub struct NetInbox {
    queue: ArrayQueue<NetCmd>,
    waker: Arc<Waker>,
    refused: AtomicU64,
    wake_errors: AtomicU64,
}

impl NetInbox {
    /// A queue of `capacity` commands waking the poll behind `waker` (from [`Net::new`]).
    pub fn new(capacity: usize, waker: Arc<Waker>) -> Self {
        NetInbox {
            queue: ArrayQueue::new(capacity.max(1)),
            waker,
            refused: AtomicU64::new(0),
            wake_errors: AtomicU64::new(0),
        }
    }

    /// Queues `cmd` and wakes the network thread; when the queue is full, counts the refusal and returns `cmd`.
    #[must_use = "a full inbox hands the command back: keep it and push it again later"]
    pub fn push(&self, cmd: NetCmd) -> Result<(), NetCmd> {
        if let Err(cmd) = self.queue.push(cmd) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(cmd);
        }
        self.wake();
        Ok(())
    }

    /// Wakes the network thread (e.g. to see a stop flag at once). A failed wake is counted (the first one logged);
    /// the poll times out within 20 ms anyway.
    pub fn wake(&self) {
        if let Err(e) = self.waker.wake()
            && self.wake_errors.fetch_add(1, Ordering::Relaxed) == 0
        {
            log::warn!("waking the network thread: {e}");
        }
    }

    /// Pushes refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Wakes that failed.
    pub fn wake_errors(&self) -> u64 {
        self.wake_errors.load(Ordering::Relaxed)
    }

    /// Commands waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when no command waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn pop(&self) -> Option<NetCmd> {
        self.queue.pop()
    }
}

/// How the network thread reconnects, rotates and paces its control messages: keys of `[live]` (flattened into
/// the app's `LiveConfig`), with their defaults and bounds here, next to the code that uses them.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct ConnectionPolicy {
    /// Reconnect backoff start, ms (`live.reconnect_ms_min`).
    pub reconnect_ms_min: u64,
    /// Reconnect backoff cap, ms (`live.reconnect_ms_max`).
    pub reconnect_ms_max: u64,
    /// Most reconnects per window before exiting with an error (`live.max_reconnects`).
    pub max_reconnects: usize,
    /// The window, s (`live.reconnect_window_s`).
    pub reconnect_window_s: u64,
    /// Open a successor connection after this long, s (`live.rotate_after_s`; Binance drops connections at 24 h).
    pub rotate_after_s: u64,
    /// SUBSCRIBE/UNSUBSCRIBE per second per connection (`live.control_msgs_per_s`; Binance: at most 10 incoming
    /// messages per second).
    pub control_msgs_per_s: u32,
    /// Longest a connection may take from the TCP connect to the websocket upgrade's 101, ms
    /// (`live.handshake_timeout_ms`): TCP connect, TLS handshake and upgrade each end within it, or the attempt is
    /// counted ([`NetStats::handshake_timeouts`]), logged with its phase and URL, and retried with the backoff.
    pub handshake_timeout_ms: u64,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        ConnectionPolicy {
            reconnect_ms_min: 250,
            reconnect_ms_max: 30_000,
            max_reconnects: 30,
            reconnect_window_s: 600,
            rotate_after_s: 23 * 3600 + 1800,
            control_msgs_per_s: 5,
            handshake_timeout_ms: 10_000,
        }
    }
}

// Bounds of the connection keys of `[live]`.
crate::bounds!(ConnectionPolicy as c {
    reconnect_ms_min: [10, 60_000] "10 to 60000 ms";
    reconnect_ms_max: [c.reconnect_ms_min, 600_000] "reconnect_ms_min to 600000 ms";
    max_reconnects: [1, 10_000] "1 to 10000";
    reconnect_window_s: [1, 86_400] "1 to 86400 s";
    rotate_after_s: [1, 86_000] "1 to 86000 s (under Binance's 24 h)";
    control_msgs_per_s: [1, 10] "1 to 10 (Binance's limit)";
    handshake_timeout_ms: [50, 120_000] "50 to 120000 ms";
});

/// Network thread settings, built by the app from `[live]` (`LiveConfig::net`).
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
    /// Reconnects, rotation and control pacing.
    pub policy: ConnectionPolicy,
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
    /// Most slots the connection table ever had (open, connecting or retired; bounded by the connections open at
    /// once, however many rotations and reconnects).
    pub conn_slots_max: u64,
    /// Snapshots injected.
    pub snapshots: u64,
    /// Control messages sent.
    pub control_sent: u64,
    /// SUBSCRIBE/UNSUBSCRIBE requests not queued because the connection already had [`PENDING_CTRL_MAX`] waiting
    /// (the connection's stream list still changed, so its next reconnect or rotation applies them).
    pub ctrl_dropped: u64,
    /// Commands the control thread could not queue (full [`NetInbox`]; each came back to the caller).
    pub inbox_full: u64,
    /// Frames not delivered because the compute thread is gone (the network thread then stops).
    pub frames_undelivered: u64,
    /// Connection attempts that did not finish their handshake (TCP connect, TLS or websocket upgrade) within
    /// `handshake_timeout_ms` (each also a disconnect, retried with the backoff; the phase is in the log).
    pub handshake_timeouts: u64,
    /// Episodes of a silent feed (no frame for `alerts.feed_down_s`), counted by the control thread whether or not
    /// systemd's watchdog is set (filled in at the end of the run).
    pub feed_down: u64,
    /// Last disconnect reason.
    pub last_error: String,
}

/// Most SUBSCRIBE/UNSUBSCRIBE requests waiting on one connection: at Binance's 10 messages per second, 25 s of
/// backlog. A request beyond it is counted in [`NetStats::ctrl_dropped`] and logged, never queued.
pub(crate) const PENDING_CTRL_MAX: usize = 256;

/// How long a predecessor keeps being read after its successor delivered data (capped by `rotate_after_s`);
/// then it sends its close frame and is read until the server's close reply, for at most [`CLOSE_WAIT`].
pub(crate) const RETIRE_GRACE: Duration = Duration::from_secs(1);

/// How long a predecessor's closing handshake may take (capped by `rotate_after_s`): the server's reply comes after
/// everything it sent before it, which a loaded server (or this thread, stalled) may take seconds to get through.
/// When it is over, what arrived is still read once before the connection is dropped.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One slot of the connection table; slot `i` polls under `Token(i)`. A retired slot is reused by the next
/// connection (a rotation's successor), so the table stays as small as the most connections open at once.
struct Conn {
    route: Route,
    token: Token,
    path: String,
    streams: Vec<String>,
    ws: Option<WsConn<Stream>>,
    /// The slot's websocket buffers while no connection uses them: allocated with the slot, handed to each of its
    /// connections and back, so reconnects and rotations allocate nothing large.
    bufs: Option<WsBuffers>,
    backoff_ms: u64,
    next_attempt: Instant,
    opened_at: Option<Instant>,
    frames: u64,
    successor_of: Option<usize>,
    pending_ctrl: VecDeque<String>,
    sent_this_sec: u32,
    sec_start: Instant,
    next_id: u64,
    retired: bool,
    retire_at: Option<Instant>,
    closing: bool,
    /// While the handshake runs: when it must be done (see [`ConnectionPolicy::handshake_timeout_ms`]).
    handshake_deadline: Option<Instant>,
    /// The last read stopped before the socket said `WouldBlock` (`max_reads_per_wake` reached): bytes may be
    /// waiting that no readiness event will announce (mio is edge-triggered), so the loop reads it again next turn.
    unread: bool,
}

impl Conn {
    fn new(route: Route, token: Token, path: String, streams: Vec<String>, backoff_ms: u64) -> Self {
        Conn {
            route,
            token,
            path,
            streams,
            ws: None,
            bufs: None,
            backoff_ms,
            next_attempt: Instant::now(),
            opened_at: None,
            frames: 0,
            successor_of: None,
            pending_ctrl: VecDeque::new(),
            sent_this_sec: 0,
            sec_start: Instant::now(),
            next_id: 1,
            retired: false,
            retire_at: None,
            closing: false,
            handshake_deadline: None,
            unread: false,
        }
    }
}

/// The request path of a combined stream on the route under `prefix`.
fn stream_path(prefix: &str, streams: &[String]) -> String {
    format!("{prefix}/stream?streams={}", streams.join("/"))
}

/// Closes a connection on our side, best effort, and gives back its buffers.
fn close_ws(poll: &Poll, mut ws: WsConn<Stream>) -> WsBuffers {
    // Ignoring both results is right: the socket is dropped here, which closes it and removes it from the poll
    // whether or not the close frame fitted or the deregistration succeeded.
    let _ = ws.close(1000);
    let _ = poll.registry().deregister(ws.stream_mut().tcp());
    ws.into_buffers()
}

/// The network thread's latency stages, each stamped once (monotonic clock), and its clock reads. Per read that
/// returned data: `socket_read` (the poll's readiness → the bytes read; the first read of each readiness event
/// only, later ones follow it back to back) and `tls_decrypt` (bytes read → plain text; 0 without TLS). Per text
/// frame: `ws_frame` (plain text → the frame handed over, which includes the earlier frames of the same read),
/// `parse` and `enqueue` (the ring push and the wake of the compute thread; the compute side's `ring_wait` starts
/// at the push, so the two overlap by the push itself).
#[derive(Clone)]
pub struct NetStages {
    /// Readiness → bytes read.
    pub socket_read: Stage,
    /// Bytes read → decrypted.
    pub tls_decrypt: Stage,
    /// The per-frame stages.
    pub frame: FrameStages,
    /// Clock reads (monotonic and wall) outside the per-frame stages.
    pub clock_reads: u64,
}

/// The per-frame stages of the network thread.
#[derive(Clone)]
pub struct FrameStages {
    /// Decrypted → websocket frame handed to the parser.
    pub ws_frame: Stage,
    /// Parsing.
    pub parse: Stage,
    /// Push into the event ring and wake of the compute thread.
    pub enqueue: Stage,
    /// Clock reads of the per-frame stages.
    pub clock_reads: u64,
}

impl NetStages {
    fn new() -> Self {
        NetStages {
            socket_read: Stage::new("socket_read"),
            tls_decrypt: Stage::new("tls_decrypt"),
            frame: FrameStages {
                ws_frame: Stage::new("ws_frame"),
                parse: Stage::new("parse"),
                enqueue: Stage::new("enqueue"),
                clock_reads: 0,
            },
            clock_reads: 0,
        }
    }

    /// Every clock read of the network thread.
    pub fn total_clock_reads(&self) -> u64 {
        self.clock_reads + self.frame.clock_reads
    }
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
    /// Latency stages and clock reads.
    pub stages: NetStages,
    /// Frames received, readable from other threads (the watchdog's sign of life).
    pub progress: Arc<std::sync::atomic::AtomicU64>,
    /// How long one poll waits for readiness: [`POLL_WAIT`], or zero when busy-polling ([`Net::busy_poll`]).
    poll_timeout: Duration,
    /// The order session, when orders are routed to an exchange ([`Net::with_orders`]).
    pub orders: Option<Box<OrderLink>>,
    /// Periodic copies for the metrics endpoint ([`Net::publish_metrics`]).
    metrics: Option<NetMetrics>,
}

/// Network-side latency stages in a [`NetFigures`], in the latency table's order.
pub(crate) const NET_STAGES: usize = 5;

/// The network thread's periodic copy for the metrics endpoint (plain numbers: handed over without allocating).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NetFigures {
    /// socket_read, tls_decrypt, ws_frame, parse, enqueue.
    pub stages: [StageFigures; NET_STAGES],
    /// Text frames received.
    pub frames: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Connections opened (upgrade done).
    pub connects: u64,
    /// Disconnects (errors or peer close; each reconnected with the backoff).
    pub disconnects: u64,
    /// Rotations before the 24 h limit.
    pub rotations: u64,
    /// Slots in the connection table now.
    pub conn_slots: u64,
    /// Connections open now (upgrade done, not retired).
    pub conns_open: u64,
    /// Handshakes that timed out.
    pub handshake_timeouts: u64,
    /// Snapshots injected.
    pub snapshots: u64,
    /// SUBSCRIBE/UNSUBSCRIBE requests not queued (connection backlog full).
    pub ctrl_dropped: u64,
    /// Commands the control thread could not queue.
    pub inbox_full: u64,
    /// Frames offered to the parser.
    pub parsed_frames: u64,
    /// Malformed frames (every parse error kind).
    pub malformed: u64,
    /// Frames with an unknown event type.
    pub unknown_event: u64,
    /// Frames whose push found the event ring full (split layout).
    pub ring_full: u64,
    /// Frames dropped on a full ring (split layout, drop-and-resync).
    pub frames_dropped: u64,
}

/// Where and how often the network thread hands its [`NetFigures`] over.
struct NetMetrics {
    to: Arc<Handover<NetFigures>>,
    every: Duration,
    next: Instant,
    turns: u32,
}

/// Loop turns between two looks at the clock for the metrics copy (one clock read per this many turns).
const METRICS_TURNS: u32 = 64;

/// The longest wait of one poll: the loop's turns (deadlines, rotations, commands) are at most this far apart.
const POLL_WAIT: Duration = Duration::from_millis(20);

/// Connections open now: a socket whose upgrade is done (`opened_at` set), not retired.
fn open_conns(conns: &[Conn]) -> usize {
    conns.iter().filter(|c| !c.retired && c.ws.is_some() && c.opened_at.is_some()).count()
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

/// What the loop hands parsed frames to: the parser, its staging buffer, the event sink (the ring to the compute
/// thread, or the engine itself in the inline layout) and the optional recorder.
struct Feed<'a, 'r> {
    parser: &'a mut Parser,
    publisher: &'a mut dyn EventSink,
    record: Option<RecordSink<'r>>,
    staging: Vec<MarketEvent>,
    consumer_gone: bool,
    undelivered: u64,
}

impl Feed<'_, '_> {
    /// Parses one received text frame (stamped at the socket read that completed it) and publishes its events:
    /// three clock reads (handed over, parsed, pushed) for the `ws_frame`, `parse` and `enqueue` stages; two when
    /// the sink runs the engine itself (inline: no hand-off, so no `enqueue`).
    #[inline]
    fn frame(&mut self, text: &[u8], local_ts_ns: i64, stamp: ReadStamp, stages: &mut FrameStages) {
        let t_frame = clock::now_ns();
        stages.ws_frame.record(t_frame.saturating_sub(stamp.plain_ns));
        if let Some(rec) = self.record.as_mut() {
            rec(local_ts_ns, text);
        }
        let meta = FrameMeta { local_ts_ns, stamp_ns: stamp.socket_ns, snapshot_symbol: None };
        self.staging.clear();
        // Ignoring the result is right: the parser counts a malformed frame (and logs the first of each kind), and
        // leaves in `staging` only the SymbolDef events that must still go out.
        let _ = self.parser.parse_frame(text, &meta, &mut self.staging);
        let t_parsed = clock::now_ns();
        stages.parse.record(t_parsed.saturating_sub(t_frame));
        // The events carry socket read → enqueued (the compute thread's ring_wait starts there).
        let p = t_parsed.saturating_sub(stamp.socket_ns).min(u32::MAX as u64) as u32;
        for e in self.staging.iter_mut() {
            e.parse_ns = p;
        }
        self.publish();
        if self.publisher.runs_engine() {
            stages.clock_reads += 2; // The engine's time is its own `compute` stage: no hand-off to stamp.
        } else {
            stages.enqueue.record(clock::now_ns().saturating_sub(t_parsed));
            stages.clock_reads += 3;
        }
    }

    /// Parses a REST snapshot body for `symbol` and publishes it; true when it parsed.
    fn snapshot(&mut self, symbol: SymbolName, body: &[u8], local_ts_ns: i64) -> bool {
        if let Some(rec) = self.record.as_mut() {
            rec(local_ts_ns, body);
        }
        let meta = FrameMeta { local_ts_ns, stamp_ns: clock::now_ns(), snapshot_symbol: Some(symbol) };
        self.staging.clear();
        let ok = self.parser.parse_frame(body, &meta, &mut self.staging).is_ok();
        self.publish();
        ok
    }

    /// Publishes `staging`; a consumer that is gone is counted and stops the loop (as replay stops its source).
    #[inline]
    fn publish(&mut self) {
        if !self.publisher.publish(&self.staging) {
            self.consumer_gone = true;
            self.undelivered += 1;
        }
    }
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
            stages: NetStages::new(),
            progress: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            poll_timeout: POLL_WAIT,
            orders: None,
            metrics: None,
        };
        for (route, streams) in [(Route::Market, market), (Route::Public, public)] {
            if !streams.is_empty() {
                net.add_conn(route, streams, None);
            }
        }
        Ok((net, waker))
    }

    /// The TLS configuration of the market connections (the order session uses the same roots).
    pub fn tls(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.tls.clone()
    }

    /// Slots in the connection table (open, connecting, or retired and free for reuse).
    pub fn conn_slots(&self) -> usize {
        self.conns.len()
    }

    /// Connections not retired.
    pub fn live_conns(&self) -> usize {
        self.conns.iter().filter(|c| !c.retired).count()
    }

    fn prefix(&self, route: Route) -> &str {
        match route {
            Route::Market => &self.cfg.market_path,
            Route::Public => &self.cfg.public_path,
        }
    }

    /// Adds a connection (not yet connected) in the first retired slot, or a new one; returns its slot.
    fn add_conn(&mut self, route: Route, streams: Vec<String>, successor_of: Option<usize>) -> usize {
        let path = stream_path(self.prefix(route), &streams);
        let i = self.conns.iter().position(|c| c.retired).unwrap_or(self.conns.len());
        let mut conn = Conn::new(route, Token(i), path, streams, self.cfg.policy.reconnect_ms_min);
        conn.successor_of = successor_of;
        if i == self.conns.len() {
            // A new slot: its buffers are allocated here, once.
            conn.bufs = Some(WsBuffers::new(self.cfg.max_frame_bytes));
            self.conns.push(conn);
            self.stats.conn_slots_max = self.stats.conn_slots_max.max(self.conns.len() as u64);
        } else {
            // A reused slot: the successor inherits the retired connection's buffers.
            conn.bufs = self.conns[i].bufs.take();
            self.conns[i] = conn;
        }
        i
    }

    fn connect(&mut self, i: usize) -> Result<(), String> {
        let ep = &self.cfg.endpoint;
        let seed = self.stats.connects as u32;
        let (max_frame, c) = (self.cfg.max_frame_bytes, &mut self.conns[i]);
        let mut ws = open_ws(&self.poll, c.token, ep, self.tls.as_ref(), &c.path, max_frame, seed, &mut c.bufs)?;
        // Masking keys differ per connection.
        ws.reseed(self.seed ^ i as u32);
        c.ws = Some(ws);
        c.opened_at = None;
        c.frames = 0;
        c.unread = false;
        c.handshake_deadline = Some(Instant::now() + Duration::from_millis(self.cfg.policy.handshake_timeout_ms));
        Ok(())
    }

    /// Connection `i` did not finish its handshake in time: counted, then dropped and retried with the backoff like
    /// any failure, warned with the phase it was stuck in and the URL.
    fn handshake_timed_out(&mut self, i: usize, feed: &mut Feed) -> Result<(), NetError> {
        let c = &mut self.conns[i];
        let phase = c.ws.as_mut().map_or(HandshakePhase::TcpConnect, |ws| ws.stream_mut().phase());
        let ep = &self.cfg.endpoint;
        let url = format!("{}://{}:{}{}", if ep.tls { "wss" } else { "ws" }, ep.host, ep.port, c.path);
        let ms = self.cfg.policy.handshake_timeout_ms;
        self.stats.handshake_timeouts += 1;
        // One warning, from `fail`: "<route> connection lost: <phase> timed out after <ms> ms (<url>); reconnecting".
        self.fail(i, format!("{} timed out after {ms} ms ({url})", phase.name()), feed)
    }

    /// Drops connection `i` after an error: counts it, marks its books unsynced, schedules the reconnect. Its
    /// waiting SUBSCRIBE/UNSUBSCRIBE requests are dropped: the reconnect's path already carries every change.
    fn fail(&mut self, i: usize, why: String, feed: &mut Feed) -> Result<(), NetError> {
        let c = &mut self.conns[i];
        if let Some(ws) = c.ws.take() {
            c.bufs = Some(close_ws(&self.poll, ws));
        }
        c.unread = false;
        c.pending_ctrl.clear();
        self.stats.disconnects += 1;
        self.stats.last_error = format!("{}: {why}", c.route.name());
        log::warn!("{} connection lost: {why}; reconnecting", c.route.name());
        if c.route == Route::Public {
            // Depth continuity is lost: every book must resync from a fresh snapshot.
            for id in 0..feed.parser.symbols().len() {
                feed.publisher.mark_lost(id as u16);
            }
        }
        let now = Instant::now();
        let delay = jitter(&mut self.seed, c.backoff_ms);
        c.next_attempt = now + Duration::from_millis(delay);
        c.backoff_ms = (c.backoff_ms * 2).min(self.cfg.policy.reconnect_ms_max);
        self.reconnects.push_back(now);
        let window = Duration::from_secs(self.cfg.policy.reconnect_window_s);
        while self.reconnects.front().is_some_and(|t| now.duration_since(*t) > window) {
            self.reconnects.pop_front();
        }
        if self.reconnects.len() > self.cfg.policy.max_reconnects {
            return Err(NetError::TooManyReconnects {
                route: c.route.name(),
                count: self.reconnects.len(),
                window_secs: self.cfg.policy.reconnect_window_s,
                last: why,
            });
        }
        Ok(())
    }

    /// Applies a subscription change to every connection of its route and queues the request on each (bounded by
    /// [`PENDING_CTRL_MAX`]; an overflow is counted and logged).
    fn queue_ctrl(&mut self, cmd: &SubscribeCmd) {
        let route = cmd.route();
        let prefix = match route {
            Route::Market => &self.cfg.market_path,
            Route::Public => &self.cfg.public_path,
        };
        for c in self.conns.iter_mut().filter(|c| c.route == route && !c.retired) {
            cmd.apply(&mut c.streams);
            // Reconnects and rotations use the path, so keep it current.
            c.path = stream_path(prefix, &c.streams);
            if c.pending_ctrl.len() >= PENDING_CTRL_MAX {
                self.stats.ctrl_dropped += 1;
                log::warn!(
                    "{}: {} requests already waiting; {} not queued (counted; applied at the next reconnect)",
                    route.name(),
                    PENDING_CTRL_MAX,
                    cmd.method()
                );
                continue;
            }
            c.pending_ctrl.push_back(cmd.request(c.next_id));
            c.next_id += 1;
        }
    }

    /// Sends waiting requests on open connections within `control_msgs_per_s`.
    fn send_ctrl(&mut self) {
        let limit = self.cfg.policy.control_msgs_per_s.max(1);
        for c in &mut self.conns {
            if c.sec_start.elapsed() >= Duration::from_secs(1) {
                c.sec_start = Instant::now();
                c.sent_this_sec = 0;
            }
            let Some(ws) = c.ws.as_mut().filter(|w| w.state() == WsState::Open) else { continue };
            while c.sent_this_sec < limit {
                let Some(m) = c.pending_ctrl.pop_front() else { break };
                match ws.send_text(&m) {
                    Ok(()) => {
                        c.sent_this_sec += 1;
                        self.stats.control_sent += 1;
                    }
                    Err(WsError::WriteBufferFull) => {
                        // Not queued: keep it for the next round.
                        c.pending_ctrl.push_front(m);
                        break;
                    }
                    // Queued, but the socket failed: the next read reports the failure and the reconnect's path
                    // carries the change.
                    Err(_) => break,
                }
            }
        }
    }

    /// Routes order intents through `link` (its two connections join this loop's poll; its reports go to the same
    /// sink as market data).
    pub fn with_orders(&mut self, link: OrderLink) {
        self.orders = Some(Box::new(link));
    }

    /// One turn of the order session: connections, timeouts, the intents waiting; its reports are published.
    fn service_orders(&mut self, token: Option<Token>, feed: &mut Feed) {
        let Some(link) = self.orders.as_mut() else { return };
        let Feed { parser, publisher, consumer_gone, undelivered, .. } = feed;
        let mut out = |events: &[MarketEvent]| {
            if !publisher.publish(events) {
                *consumer_gone = true;
                *undelivered += 1;
            }
        };
        match token {
            Some(t) => link.on_ready(&self.poll, t, parser.symbols(), &mut out),
            None => link.turn(&self.poll, parser.symbols(), &mut out),
        }
    }

    /// Busy-polls the sockets (each poll returns at once) instead of sleeping in the kernel until one is readable:
    /// for the inline layout in `spin` mode, where this thread is the compute thread on a core of its own.
    pub fn busy_poll(&mut self, on: bool) {
        self.poll_timeout = if on { Duration::ZERO } else { POLL_WAIT };
    }

    /// Runs until `stop` is set (or the compute thread is gone). `inbox` carries the control thread's commands.
    pub fn run(
        &mut self,
        parser: &mut Parser,
        publisher: &mut dyn EventSink,
        stop: &AtomicBool,
        inbox: &NetInbox,
        record: Option<RecordSink<'_>>,
    ) -> Result<(), NetError> {
        let mut events = Events::with_capacity(64);
        let staging = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
        let mut feed = Feed { parser, publisher, record, staging, consumer_gone: false, undelivered: 0 };
        let r = self.run_loop(&mut feed, &mut events, stop, inbox);
        self.stats.frames_undelivered = feed.undelivered;
        if feed.consumer_gone {
            log::error!("the compute thread is gone: the network thread stops");
        }
        for c in &mut self.conns {
            if let Some(ws) = c.ws.take() {
                c.bufs = Some(close_ws(&self.poll, ws));
            }
        }
        if let Some(link) = self.orders.as_mut() {
            link.close(&self.poll);
        }
        r
    }

    /// Hands a copy of the counters and stage percentiles to `to` every `every` (see [`Net::metrics_turn`]).
    pub(crate) fn publish_metrics(&mut self, to: Arc<Handover<NetFigures>>, every: Duration) {
        self.metrics = Some(NetMetrics { to, every, next: Instant::now(), turns: 0 });
    }

    /// Once per loop turn: every [`METRICS_TURNS`] turns one clock read, and when the interval passed, the copy
    /// (filled in place: no lock, no allocation; a copy with no free buffer is skipped and counted by the hand-over).
    fn metrics_turn(&mut self, feed: &Feed) {
        let Some(m) = self.metrics.as_mut() else { return };
        m.turns += 1;
        if m.turns < METRICS_TURNS {
            return;
        }
        m.turns = 0;
        self.stages.clock_reads += 1;
        let now = Instant::now();
        if now < m.next {
            return;
        }
        m.next = now + m.every;
        let (st, ns, ps, fs) = (&self.stages, &self.stats, &feed.parser.stats, feed.publisher.feed_stats());
        let (slots, open) = (self.conns.len() as u64, open_conns(&self.conns) as u64);
        let _ = m.to.publish(|f| {
            let stages = [
                ("socket_read", &st.socket_read),
                ("tls_decrypt", &st.tls_decrypt),
                ("ws_frame", &st.frame.ws_frame),
                ("parse", &st.frame.parse),
                ("enqueue", &st.frame.enqueue),
            ];
            for (out, (name, s)) in f.stages.iter_mut().zip(stages) {
                *out = StageFigures::of(name, &s.hist);
            }
            f.frames = ns.frames;
            f.bytes = ns.bytes;
            f.connects = ns.connects;
            f.disconnects = ns.disconnects;
            f.rotations = ns.rotations;
            f.conn_slots = slots;
            f.conns_open = open;
            f.handshake_timeouts = ns.handshake_timeouts;
            f.snapshots = ns.snapshots;
            f.ctrl_dropped = ns.ctrl_dropped;
            f.inbox_full = ns.inbox_full;
            f.parsed_frames = ps.frames;
            f.malformed = ps.malformed_total();
            f.unknown_event = ps.unknown_event;
            f.ring_full = fs.ring_full;
            f.frames_dropped = fs.frames_dropped;
        });
    }

    fn run_loop(
        &mut self,
        feed: &mut Feed,
        events: &mut Events,
        stop: &AtomicBool,
        inbox: &NetInbox,
    ) -> Result<(), NetError> {
        while !stop.load(Ordering::Relaxed) && !feed.consumer_gone {
            self.service_conns(feed)?;
            self.service_orders(None, feed);
            // A connection with bytes still waiting is read this turn: the poll only looks for new readiness.
            let unread = self.conns.iter().any(|c| c.unread) || self.orders.as_ref().is_some_and(|o| o.has_unread());
            match self.poll.poll(events, Some(if unread { Duration::ZERO } else { self.poll_timeout })) {
                Ok(()) => {}
                // A signal (SIGTERM, SIGUSR1 of the halt switch, or SIGCONT after a stop) interrupted the wait:
                // epoll_wait is never restarted. Not an error: no events this turn, the loop goes on (and sees the
                // stop flag a handler may have set).
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => events.clear(),
                Err(e) => return Err(e.into()),
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    t @ (API_TOKEN | USER_TOKEN) => {
                        self.service_orders(Some(t), feed);
                        // Inline layout: a fill just decided the protective stop; it goes out at once.
                        self.service_orders(None, feed);
                    }
                    t => {
                        self.on_ready(t.0, ev.is_writable(), feed)?;
                        // Inline layout: the engine ran on these frames; its intents go out now, not after the
                        // other connections' reads (an empty ring costs one atomic load).
                        self.service_orders(None, feed);
                    }
                }
            }
            self.read_unread(feed)?;
            // Intents the compute thread pushed since the turn began (it rings the waker after a push).
            self.service_orders(None, feed);
            while let Some(cmd) = inbox.pop() {
                self.on_cmd(cmd, feed)?;
            }
            self.stats.inbox_full = inbox.refused();
            self.send_ctrl();
            feed.publisher.turn();
            self.metrics_turn(feed);
        }
        Ok(())
    }

    /// Reads again every connection whose last read stopped at `max_reads_per_wake` with bytes possibly waiting
    /// (one bounded read each per turn, as for a readiness event, so a busy connection cannot starve the other).
    fn read_unread(&mut self, feed: &mut Feed) -> Result<(), NetError> {
        for i in 0..self.conns.len() {
            if self.conns[i].unread {
                self.on_ready(i, false, feed)?;
                self.service_orders(None, feed);
            }
        }
        Ok(())
    }

    /// Connects what is due, retires predecessors whose grace is over, and opens successors of old connections.
    fn service_conns(&mut self, feed: &mut Feed) -> Result<(), NetError> {
        let now = Instant::now();
        let close_wait = CLOSE_WAIT.min(Duration::from_secs(self.cfg.policy.rotate_after_s));
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            if c.retired {
                continue;
            }
            // A predecessor keeps being read for a grace period after its successor delivered data, then sends its
            // close frame and is read until the server's close reply (so nothing the server sent on it is lost; the
            // copies are dropped by id), then its slot is freed.
            if c.retire_at.is_some_and(|t| now >= t) {
                if !c.closing && c.ws.as_mut().is_some_and(|ws| ws.state() == WsState::Open && ws.close(1000).is_ok()) {
                    c.closing = true;
                    c.retire_at = Some(now + close_wait);
                } else {
                    // The last bytes that arrived (a read of `max_reads_per_wake`; its errors end it as well).
                    self.on_ready(i, false, feed)?;
                    self.finish_retiring(i);
                }
                continue;
            }
            if c.handshake_deadline.is_some_and(|d| now >= d)
                && c.ws.as_ref().is_some_and(|ws| ws.state() == WsState::Upgrading)
            {
                self.handshake_timed_out(i, feed)?;
                continue;
            }
            if c.ws.is_none() {
                if now >= c.next_attempt
                    && let Err(e) = self.connect(i)
                {
                    self.fail(i, e, feed)?;
                }
                continue;
            }
            if self.due_for_rotation(i, now) {
                let (route, streams) = (self.conns[i].route, self.conns[i].streams.clone());
                let j = self.add_conn(route, streams, Some(i));
                self.stats.rotations += 1;
                if let Err(e) = self.connect(j) {
                    self.fail(j, e, feed)?;
                }
            }
        }
        Ok(())
    }

    /// The grace of a predecessor, capped by the rotation period (so fast test rotations stay bounded).
    fn retire_grace(&self) -> Duration {
        RETIRE_GRACE.min(Duration::from_secs(self.cfg.policy.rotate_after_s))
    }

    /// Closes a retiring connection for good and frees its slot.
    fn finish_retiring(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(ws) = c.ws.take() {
            c.bufs = Some(close_ws(&self.poll, ws));
        }
        c.retired = true;
        c.closing = false;
        c.unread = false;
        c.pending_ctrl.clear();
    }

    /// A read or write error on connection `i`: the end of a retiring connection's closing handshake, else a
    /// failure (see [`Net::fail`]).
    fn lost(&mut self, i: usize, why: String, feed: &mut Feed) -> Result<(), NetError> {
        // A retiring predecessor (in its grace period or its closing handshake) is not an outage: its successor
        // carries the streams, so it is closed for good without a disconnect, a resync or a reconnect.
        if self.conns[i].retire_at.is_some() {
            self.finish_retiring(i);
            return Ok(());
        }
        self.fail(i, why, feed)
    }

    /// An open connection older than `rotate_after_s` that is not itself a successor still waiting for data,
    /// not retiring, and has no successor yet.
    fn due_for_rotation(&self, i: usize, now: Instant) -> bool {
        let c = &self.conns[i];
        let rotate = Duration::from_secs(self.cfg.policy.rotate_after_s);
        c.retire_at.is_none()
            && c.successor_of.is_none()
            && c.opened_at.is_some_and(|t| now.duration_since(t) >= rotate)
            && !self.conns.iter().any(|o| !o.retired && o.successor_of == Some(i))
    }

    /// Reads connection `i` after a readiness event: frames go to `feed`; an error drops the connection.
    fn on_ready(&mut self, i: usize, writable: bool, feed: &mut Feed) -> Result<(), NetError> {
        let Some(ws) = self.conns.get_mut(i).and_then(|c| c.ws.as_mut()) else { return Ok(()) };
        let ready_ns = clock::now_ns();
        let local = clock::wall_ns();
        let was_open = ws.state() == WsState::Open;
        let mut frames = 0u64;
        let NetStages { socket_read, tls_decrypt, frame, clock_reads } = &mut self.stages;
        *clock_reads += 2;
        let mut first_read = true;
        let res = ws.read_stamped(
            self.cfg.max_reads_per_wake,
            &clock::now_ns,
            clock_reads,
            |s| {
                if first_read {
                    first_read = false;
                    socket_read.record(s.socket_ns.saturating_sub(ready_ns));
                }
                tls_decrypt.record(s.plain_ns.saturating_sub(s.socket_ns));
            },
            |text, stamp| {
                frames += 1;
                feed.frame(text, local, stamp, frame);
            },
        );
        self.stats.frames += frames;
        self.progress.store(self.stats.frames, Ordering::Relaxed);
        self.conns[i].unread = res.as_ref().is_ok_and(|st| !st.drained);
        match res {
            Ok(st) => self.after_read(i, &st, frames, was_open, writable, feed),
            Err(e) => self.lost(i, e.to_string(), feed),
        }
    }

    /// Books a successful read: counters, the upgrade completing, pending output, and a successor's first data
    /// retiring its predecessor.
    fn after_read(
        &mut self,
        i: usize,
        st: &ReadStats,
        frames: u64,
        was_open: bool,
        writable: bool,
        feed: &mut Feed,
    ) -> Result<(), NetError> {
        self.stats.bytes += st.bytes as u64;
        self.stats.pings += st.pings as u64;
        let conn = &mut self.conns[i];
        conn.frames += frames;
        if !was_open && conn.ws.as_ref().is_some_and(|w| w.state() == WsState::Open) {
            conn.opened_at = Some(Instant::now());
            conn.handshake_deadline = None;
            conn.backoff_ms = self.cfg.policy.reconnect_ms_min;
            self.stats.connects += 1;
        }
        if writable
            && let Some(ws) = conn.ws.as_mut()
            && let Err(e) = ws.flush()
        {
            return self.lost(i, e.to_string(), feed);
        }
        if frames > 0
            && let Some(old) = self.conns[i].successor_of.take()
        {
            self.conns[old].retire_at = Some(Instant::now() + self.retire_grace());
        }
        Ok(())
    }

    fn on_cmd(&mut self, cmd: NetCmd, feed: &mut Feed) -> Result<(), NetError> {
        match cmd {
            NetCmd::Snapshot { symbol, body, local_ts_ns } => {
                if feed.snapshot(symbol, &body, local_ts_ns) {
                    self.stats.snapshots += 1;
                }
            }
            NetCmd::Subscription(sub) => self.queue_ctrl(&sub),
            NetCmd::DropConnections => {
                for i in 0..self.conns.len() {
                    if self.conns[i].ws.is_some() {
                        self.fail(i, "dropped on request".into(), feed)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter() {
        let mut s = 12345;
        for _ in 0..1000 {
            let j = jitter(&mut s, 1000);
            assert!((750..1250).contains(&j), "{j}");
        }
    }

    fn offline_net() -> (Net, Arc<Waker>) {
        let cfg = NetConfig {
            endpoint: Endpoint::parse("ws://127.0.0.1:9").unwrap(),
            market_path: "/market".into(),
            public_path: "/public".into(),
            max_frame_bytes: 1 << 16,
            policy: ConnectionPolicy {
                reconnect_ms_min: 10,
                reconnect_ms_max: 50,
                max_reconnects: 10,
                reconnect_window_s: 60,
                rotate_after_s: 3600,
                control_msgs_per_s: 10,
                handshake_timeout_ms: 1000,
            },
            max_reads_per_wake: 16,
        };
        Net::new(cfg, None, vec!["a@trade".into()], vec!["a@depth".into()]).unwrap()
    }

    #[test]
    fn subscription_requests_are_binance_json_and_keep_the_path_current() {
        let (mut net, _) = offline_net();
        net.queue_ctrl(&SubscribeCmd::Subscribe {
            route: Route::Market,
            streams: vec!["b@trade".into(), "c@trade".into()],
        });
        net.queue_ctrl(&SubscribeCmd::Unsubscribe { route: Route::Market, streams: vec!["a@trade".into()] });
        let c = &net.conns[0];
        assert_eq!(c.path, "/market/stream?streams=b@trade/c@trade");
        assert_eq!(c.pending_ctrl[0], r#"{"method":"SUBSCRIBE","params":["b@trade","c@trade"],"id":1}"#);
        assert_eq!(c.pending_ctrl[1], r#"{"method":"UNSUBSCRIBE","params":["a@trade"],"id":2}"#);
        assert!(net.conns[1].pending_ctrl.is_empty(), "the other route is untouched");
    }

    #[test]
    fn waiting_control_requests_are_bounded_and_overflows_counted() {
        let (mut net, _) = offline_net();
        for k in 0..PENDING_CTRL_MAX + 10 {
            net.queue_ctrl(&SubscribeCmd::Subscribe { route: Route::Public, streams: vec![format!("s{k}@depth")] });
        }
        assert_eq!(net.conns[1].pending_ctrl.len(), PENDING_CTRL_MAX);
        assert_eq!(net.stats.ctrl_dropped, 10);
        // The dropped requests still changed the stream list: a reconnect subscribes them.
        assert_eq!(net.conns[1].streams.len(), PENDING_CTRL_MAX + 11);
    }

    #[test]
    fn a_full_inbox_hands_the_command_back_and_counts_it() {
        let (_, waker) = offline_net();
        let inbox = NetInbox::new(1, waker);
        assert!(inbox.push(NetCmd::DropConnections).is_ok());
        match inbox.push(NetCmd::subscribe(Route::Market, vec!["x@trade".into()])) {
            Err(NetCmd::Subscription(SubscribeCmd::Subscribe { streams, .. })) => assert_eq!(streams, ["x@trade"]),
            other => panic!("expected the command back, got {other:?}"),
        }
        assert_eq!(inbox.refused(), 1);
        assert_eq!(inbox.len(), 1);
        assert!(inbox.pop().is_some() && inbox.is_empty());
    }
}

//! The order session on the network thread (issue 12): the WebSocket API connection that carries the compute
//! thread's order intents, and the user data stream that carries fills and the real position back.
//!
//! Contracts:
//! - Owned and driven by the network loop ([`crate::ingest::net::Net::with_orders`]): [`OrderLink::turn`] once per
//!   loop turn (connects, the start-up requests, ack timeouts, keep-alive, then the intents waiting in the ring),
//!   [`OrderLink::on_ready`] for readiness of its two tokens ([`API_TOKEN`], [`USER_TOKEN`]). Nothing blocks:
//!   connects, TLS and the upgrade are non-blocking like the market connections. Per order nothing allocates: the
//!   request is encoded into one reused [`RequestBuf`] and queued into the connection's reused write buffer.
//! - Start-up of the API connection: `session.logon` when the key is Ed25519 (later requests carry no signature;
//!   a `-1021` refusal logs on again after the clock's re-measurement, [`LOGON_CLOCK_RETRIES`] times per
//!   connection; any other refusal is logged and counted, and orders wait), then `userDataStream.start`; the user stream connects with the listenKey (`<user_stream>?listenKey=<key>`),
//!   and `userDataStream.ping` keeps the key alive every `keepalive_s`. Intents wait in the ring until the API is
//!   ready: the compute thread's venue keeps its own bounded backlog when the ring is full.
//! - Every answer becomes an [`ExecReport`] on the inbound path: two events handed to the same sink as market data,
//!   so replay, paper and live share one path. A position change (`ACCOUNT_UPDATE`) becomes a
//!   [`EventKind::Position`] event. Anything that does not parse is counted ([`OrderStats::undecodable`]).
//! - Timestamps are the wall clock plus the offset the control thread measures ([`OrderClock`]); `-1021` asks it
//!   for a fresh measurement and resends the request once with the new offset; a second `-1021` is a reject.
//! - An unanswered request is resent with the same client id after `ack_timeout_ms` (idempotent: the exchange
//!   refuses a duplicate id with `-4116`, which on a resend means the first copy arrived: the order's status is then
//!   queried, `order.status`, and reported). After [`RESENDS_MAX`] resends the intent is reported rejected with
//!   [`LOCAL_ACK_LOST`], which halts new entries at the venue; exchange-side stops stay.
//! - A lost API connection keeps its pending requests; they are resent (same ids) once the new connection is up.
//! - Rate limits (`-1003`/`-1015`/`-1008`-class codes, HTTP 429/418): nothing is sent for a back-off that doubles
//!   from [`BACKOFF_MIN`] to [`BACKOFF_MAX`] with each refusal in a row (and shrinks back after answers that pass);
//!   a refused protective request (stop, take profit, close, cancel) waits and is resent after it, bounded by
//!   [`RESENDS_MAX`]; from the first such refusal on, every entry is refused locally with [`LOCAL_RATE_LIMITED`]
//!   without being sent (the venue halts new entries on it), so an entry decided during a back-off is never sent
//!   late against a market that has moved on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use rustls::pki_types::ServerName;

use crate::handoff::ring::Consumer;
use crate::ingest::transport::{Endpoint, Stream};
use crate::ingest::ws::{WsBuffers, WsConn, WsState};
use crate::types::event::{EventKind, MarketEvent, flags};
use crate::types::latency::Stage;
use crate::types::{ExecKind, ExecReport, IntentKind, OrderIntent, SymbolSpec, SymbolTable, clock};

use super::request::{Auth, RequestBuf, SignedAt};
use super::response::{
    AlgoCancelResult, AlgoResult, OrderResult, RequestId, SessionResult, exec_from_order, parse_ws, rejected,
};
use super::rest_lane::RestLane;
use super::session::{LOCAL_PENDING_FULL, OrderStats, Pending, PendingTable, SessionConfig};

mod missed_fills;
mod rest_route;
use super::user_stream::{AccountUpdate, AlgoStatus, AlgoUpdate, UserEvent, parse_user_event};

/// Where reports go: the network loop's publisher (the same sink as market data).
pub type Sink<'a> = &'a mut dyn FnMut(&[MarketEvent]);

/// Token of the WebSocket API connection.
pub const API_TOKEN: Token = Token(usize::MAX - 2);
/// Token of the user data stream connection.
pub const USER_TOKEN: Token = Token(usize::MAX - 3);
/// Resends of one unanswered request before it is given up.
pub const RESENDS_MAX: u8 = 3;
/// Local code of a request given up after [`RESENDS_MAX`] resends.
pub const LOCAL_ACK_LOST: i32 = -9002;
/// Local code of an intent for a symbol whose exchange scales are unknown (nothing is sent).
pub const LOCAL_NO_SPEC: i32 = -9003;
/// Local code of an entry refused without being sent because the exchange rate-limited this session.
pub const LOCAL_RATE_LIMITED: i32 = -9005;
/// First back-off after a rate-limit refusal.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest back-off.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Protective requests waiting out a back-off.
const WAITING_BACKOFF_MAX: usize = 32;
/// Regular orders whose fills are awaited (the `order_fill` stage, the missed-fill checks; beyond it the oldest is
/// forgotten, counted).
const AWAITING_FILL_MAX: usize = 64;
/// Local code of an intent the encoder refused (nothing is sent).
pub const LOCAL_ENCODE: i32 = -9004;
/// Most intents taken from the ring per loop turn.
const INTENTS_PER_TURN_MAX: usize = 32;
/// Most control requests (logon, listenKey) in flight.
const CTL_MAX: usize = 8;
/// Capacity of the requests written while the API connection is being read (status queries, listenKey requests:
/// a few hundred bytes each).
const DEFERRED_BYTES: usize = 16 << 10;
/// Reads per readiness event.
const READS_PER_WAKE: usize = 16;
/// Longest wait for the control thread's clock measurement after a `-1021`.
const RESYNC_WAIT: Duration = Duration::from_secs(2);
/// `session.logon`s refused with `-1021` retried per connection (after the clock's re-measurement).
const LOGON_CLOCK_RETRIES: u8 = 3;

/// The clock offset shared with the control thread, which measures it (`GET /fapi/v1/time`) at start, at every
/// link-health check, and at once when [`OrderClock::request_resync`] was called.
#[derive(Debug, Default)]
pub struct OrderClock {
    offset_us: AtomicI64,
    generation: AtomicU64,
    resync: AtomicBool,
}

impl OrderClock {
    /// Stores a measured offset (exchange − local, ms).
    pub fn set_offset_ms(&self, offset_ms: f64) {
        self.offset_us.store((offset_ms * 1000.0).round() as i64, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
        self.resync.store(false, Ordering::Relaxed);
    }

    /// The offset, whole ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_us.load(Ordering::Relaxed).div_euclid(1000)
    }

    /// Measurements stored so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Asks the control thread for a measurement now.
    pub fn request_resync(&self) {
        self.resync.store(true, Ordering::Relaxed);
    }

    /// True (once) when a measurement was asked for.
    pub fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::Relaxed)
    }
}

/// One connection with its reconnect schedule.
struct Wire {
    token: Token,
    ws: Option<WsConn<Stream>>,
    /// The last connection's buffers, for the next one.
    bufs: Option<WsBuffers>,
    /// The last read stopped at `READS_PER_WAKE` before the socket said `WouldBlock`: bytes may be waiting that no
    /// readiness event announces (mio is edge-triggered), so the next turn reads again.
    unread: bool,
    open: bool,
    backoff_ms: u64,
    next_attempt: Instant,
    deadline: Option<Instant>,
}

impl Wire {
    fn new(token: Token) -> Self {
        let next_attempt = Instant::now();
        let backoff_ms = BACKOFF_MS_MIN;
        Wire { token, ws: None, bufs: None, unread: false, open: false, backoff_ms, next_attempt, deadline: None }
    }

    fn close(&mut self, poll: &Poll) {
        if let Some(mut ws) = self.ws.take() {
            // Best effort: a peer that is gone cannot take a close frame.
            let _ = ws.close(1000);
            let _ = poll.registry().deregister(ws.stream_mut().tcp());
            self.bufs = Some(ws.into_buffers());
        }
        self.unread = false;
        self.open = false;
        self.deadline = None;
    }

    /// Drops the connection and schedules the next attempt with the doubling backoff.
    fn fail(&mut self, poll: &Poll) {
        self.close(poll);
        self.next_attempt = Instant::now() + Duration::from_millis(self.backoff_ms);
        self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MS_MAX);
    }
}

const BACKOFF_MS_MIN: u64 = 100;
const BACKOFF_MS_MAX: u64 = 5_000;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a non-blocking websocket connection (TLS when the endpoint says so), registered under `token`, with the
/// buffers in `bufs` (taken on success; new ones when there are none).
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_ws(
    poll: &Poll,
    token: Token,
    ep: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
    path: &str,
    max_frame: usize,
    seed: u32,
    bufs: &mut Option<WsBuffers>,
) -> Result<WsConn<Stream>, String> {
    let addr = ep.addrs[seed as usize % ep.addrs.len()];
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    if let Err(e) = tcp.set_nodelay(true) {
        log::warn!("{}: TCP_NODELAY not set ({e}); frames may wait for Nagle", ep.host);
    }
    poll.registry().register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE).map_err(|e| e.to_string())?;
    let stream = match tls {
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
    // The slot's buffers when it had a connection before (nothing large allocated), else new ones.
    let bufs = bufs.take().unwrap_or_else(|| WsBuffers::new(max_frame));
    Ok(WsConn::with_buffers(stream, &host, path, max_frame, seed, bufs))
}

/// A control request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctl {
    Logon,
    ListenStart,
    ListenPing,
    /// `order.status` of a pending request's intent after a duplicate-id answer (with its resends so far).
    Status(OrderIntent, u8),
    /// The same query over the REST fallback (`GET /fapi/v1/order`).
    RestStatus(OrderIntent, u8),
    /// `POST` (true: a new key) or `PUT` (keep-alive) `/fapi/v1/listenKey` over the REST fallback.
    RestListen(bool),
    /// `GET /fapi/v1/userTrades` of a watched regular order (over REST, whatever the WebSocket API's state).
    Trades(crate::types::order::ClientOrderId),
}

/// Where the API connection is in its start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Down,
    LoggingOn,
    Ready,
}

/// The order session (see the module doc).
pub struct OrderLink {
    cfg: SessionConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    clock: Arc<OrderClock>,
    intents: Consumer<OrderIntent>,
    api: Wire,
    user: Wire,
    phase: Phase,
    listen_key: String,
    user_path: String,
    pending: PendingTable,
    ctl: ArrayVec<(u64, Ctl), CTL_MAX>,
    waiting_resync: ArrayVec<(Pending, u64), 16>,
    resync_asked: Option<Instant>,
    /// A `session.logon` refused with `-1021`: (clock generation then, when), resent once the clock moved on.
    logon_retry: Option<(u64, Instant)>,
    /// `-1021` logon retries on this connection.
    logon_retries: u8,
    backoff: Backoff,
    req: Box<RequestBuf>,
    next_id: u64,
    last_ping: Instant,
    account: Box<AccountUpdate>,
    max_frame: usize,
    reading_api: bool,
    deferred: Vec<u8>,
    /// Counters.
    pub stats: OrderStats,
    /// Decision (the intent's `decided_mono_ns`) → its request frame handed to the socket.
    pub order_write: Stage,
    /// Frame written → the answer read (the WebSocket API's round trip).
    pub order_ack: Stage,
    /// Decision → the first fill report of a MARKET order (its answer or the user data stream, whichever is first).
    pub order_fill: Stage,
    /// Regular orders sent and not completely filled yet, oldest first (`missed_fills`).
    awaiting_fill: ArrayVec<missed_fills::Awaiting, AWAITING_FILL_MAX>,
    /// The REST fallback while the WebSocket API is down ([`OrderLink::with_rest`]).
    rest: Option<RestLane>,
    /// Since when the WebSocket API has not been ready (`None` while it is).
    down_since: Option<Instant>,
}

impl OrderLink {
    /// A session for `cfg`, taking intents from `intents`. Nothing connects until the first [`OrderLink::turn`].
    pub fn new(
        cfg: SessionConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        clock: Arc<OrderClock>,
        intents: Consumer<OrderIntent>,
        max_frame: usize,
    ) -> Self {
        let pending = PendingTable::new(cfg.max_pending);
        OrderLink {
            cfg,
            tls,
            clock,
            intents,
            api: Wire::new(API_TOKEN),
            user: Wire::new(USER_TOKEN),
            phase: Phase::Down,
            listen_key: String::with_capacity(96),
            user_path: String::with_capacity(256),
            pending,
            ctl: ArrayVec::new(),
            waiting_resync: ArrayVec::new(),
            resync_asked: None,
            logon_retry: None,
            logon_retries: 0,
            backoff: Backoff::default(),
            req: Box::new(RequestBuf::new()),
            next_id: 1,
            last_ping: Instant::now(),
            account: Box::default(),
            max_frame,
            reading_api: false,
            deferred: Vec::with_capacity(DEFERRED_BYTES),
            stats: OrderStats::default(),
            order_write: Stage::new("order_write"),
            order_ack: Stage::new("order_ack"),
            order_fill: Stage::new("order_fill"),
            awaiting_fill: ArrayVec::new(),
            rest: None,
            down_since: Some(Instant::now()),
        }
    }

    /// Routes requests over REST (`lane`) while the WebSocket API has been down for
    /// [`SessionConfig::rest_fallback_after_ms`].
    pub fn with_rest(&mut self, lane: RestLane) {
        self.rest = Some(lane);
    }

    /// True once the API connection is up and logged on (orders flow).
    pub fn ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// True while the user data stream is open.
    pub fn user_stream_open(&self) -> bool {
        self.user.open
    }

    /// Closes both connections (the end of the run). Exchange-side orders stay as they are.
    pub fn close(&mut self, poll: &Poll) {
        self.api.close(poll);
        self.user.close(poll);
        self.phase = Phase::Down;
    }

    /// Requests in flight.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn at(&self) -> SignedAt {
        let now_ms = clock::wall_ns().div_euclid(1_000_000);
        SignedAt { timestamp_ms: now_ms + self.clock.offset_ms(), recv_window_ms: self.cfg.recv_window_ms }
    }

    /// One loop turn: connections due, timeouts, keep-alive, then the intents in the ring. Reports go to `out`.
    pub fn turn(&mut self, poll: &Poll, table: &SymbolTable, out: Sink<'_>) {
        // A connection whose last read stopped at its bound is read on (no readiness event comes for those bytes).
        for token in [API_TOKEN, USER_TOKEN] {
            if self.wire(token).unread {
                self.on_ready(poll, token, table, &mut *out);
            }
        }
        let now = Instant::now();
        self.connect_due(poll, now);
        if self.phase == Phase::LoggingOn {
            self.retry_logon(now);
        }
        self.rest_answers(table, out);
        self.check_missed_fills(table, now);
        if self.phase != Phase::Ready && !self.rest_due(now) {
            // Intents wait in the ring for the connection (or for the REST fallback's delay).
            return;
        }
        // The listenKey's keep-alive, over whichever route requests take now.
        if now.duration_since(self.last_ping) >= Duration::from_secs(u64::from(self.cfg.keepalive_s.max(1))) {
            self.last_ping = now;
            self.send_ctl(Ctl::ListenPing);
        }
        if self.backoff.until.is_some_and(|t| now < t) {
            // Nothing goes out: entries are refused here, the rest waits for the back-off's end.
            for _ in 0..INTENTS_PER_TURN_MAX {
                let Some(i) = self.intents.pop() else { break };
                self.hold(Pending::first(i), out);
            }
            return;
        }
        if self.backoff.until.take().is_some() {
            for p in std::mem::take(&mut self.backoff.waiting) {
                self.resend(p, table, out);
            }
        }
        self.expire(table, out);
        self.resend_after_resync(table, now, out);
        for _ in 0..INTENTS_PER_TURN_MAX {
            let Some(i) = self.intents.pop() else { break };
            if self.backoff.limited && is_entry(&i) {
                self.report(&rejected(&i, LOCAL_RATE_LIMITED, self.exchange_ms()), out);
                continue;
            }
            self.send(i, table, out);
        }
    }

    /// A request that must not go out now (a back-off): an entry is refused with [`LOCAL_RATE_LIMITED`], anything
    /// else waits for the back-off's end (a full waiting list or too many resends refuse it: counted).
    fn hold(&mut self, p: Pending, out: Sink<'_>) {
        let i = p.intent;
        if is_entry(&i) {
            return self.report(&rejected(&i, LOCAL_RATE_LIMITED, self.exchange_ms()), out);
        }
        if p.resends >= RESENDS_MAX || self.backoff.waiting.try_push(p).is_err() {
            log::error!("order session: {:?} could not wait out the rate-limit back-off: refused", i.client);
            self.report(&rejected(&i, LOCAL_RATE_LIMITED, self.exchange_ms()), out);
        }
    }

    /// A rate-limit refusal of `p`: the back-off starts (or doubles) and `p` waits it out ([`OrderLink::hold`]).
    fn on_rate_limited(&mut self, p: Pending, code: i32, out: Sink<'_>) {
        let b = &mut self.backoff;
        b.limited = true;
        b.next = (b.next * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        let until = Instant::now() + b.next;
        if b.until.is_none_or(|t| t < until) {
            b.until = Some(until);
        }
        self.stats.backoffs += 1;
        log::warn!(
            "order session: rate-limited by the exchange ({code}): nothing sent for {:?}, new entries refused",
            self.backoff.next
        );
        self.hold(Pending { resends: p.resends + 1, ..p }, out);
    }

    fn connect_due(&mut self, poll: &Poll, now: Instant) {
        for (wire, user) in [(&mut self.api, false), (&mut self.user, true)] {
            if wire.ws.is_some() && !wire.open && wire.deadline.is_some_and(|d| now >= d) {
                log::warn!(
                    "order session: {} handshake timed out; reconnecting",
                    if user { "user stream" } else { "API" }
                );
                wire.fail(poll);
            }
        }
        if self.api.ws.is_none() && now >= self.api.next_attempt {
            let path = self.cfg.ws_api_path.clone();
            self.open(poll, false, &path);
        }
        if self.user.ws.is_none() && !self.listen_key.is_empty() && now >= self.user.next_attempt {
            let path = std::mem::take(&mut self.user_path);
            self.open(poll, true, &path);
            self.user_path = path;
        }
    }

    fn open(&mut self, poll: &Poll, user: bool, path: &str) {
        let (ep, wire) = if user { (&self.cfg.user_stream, &mut self.user) } else { (&self.cfg.ws_api, &mut self.api) };
        let seed = (clock::wall_ns() as u32) | 1;
        match open_ws(poll, wire.token, ep, self.tls.as_ref(), path, self.max_frame, seed, &mut wire.bufs) {
            Ok(ws) => {
                wire.ws = Some(ws);
                wire.deadline = Some(Instant::now() + HANDSHAKE_TIMEOUT);
            }
            Err(e) => {
                log::warn!("order session: connect to {}: {e}", ep.host);
                wire.fail(poll);
            }
        }
    }

    /// True while a connection has bytes waiting that its last read left (the network loop then polls without
    /// waiting, so [`OrderLink::turn`] reads them at once).
    pub fn has_unread(&self) -> bool {
        self.api.unread || self.user.unread
    }

    fn wire(&self, token: Token) -> &Wire {
        if token == USER_TOKEN { &self.user } else { &self.api }
    }

    /// Readiness of one of the two tokens: reads everything available and turns it into reports. The connection is
    /// taken out of its slot while its frames are handled, so the handlers can use the whole session; requests they
    /// write meanwhile on the API connection wait in the bounded `deferred` buffer and go out right after.
    pub fn on_ready(&mut self, poll: &Poll, token: Token, table: &SymbolTable, out: Sink<'_>) {
        let user = token == USER_TOKEN;
        let Some(mut ws) = (if user { self.user.ws.take() } else { self.api.ws.take() }) else { return };
        let local_ts_ns = clock::wall_ns();
        self.reading_api = !user;
        let res = ws.read_stamped(
            READS_PER_WAKE,
            &clock::now_ns,
            &mut 0,
            |_| {},
            |text, _| {
                if user {
                    self.on_user_frame(text, table, local_ts_ns, out);
                } else {
                    self.on_api_frame(text, table, out);
                }
            },
        );
        self.reading_api = false;
        let unread = res.as_ref().is_ok_and(|st| !st.drained);
        let res = res.and_then(|_| self.flush_deferred(&mut ws)).and_then(|_| ws.flush());
        let now_open = ws.state() == WsState::Open;
        let wire = if user { &mut self.user } else { &mut self.api };
        wire.unread = unread;
        // The listenKey expired while its stream was read: the connection is dropped, a new key is on its way.
        if user && self.listen_key.is_empty() {
            let _ = poll.registry().deregister(ws.stream_mut().tcp());
            wire.bufs = Some(ws.into_buffers());
            wire.unread = false;
            return;
        }
        wire.ws = Some(ws);
        if let Err(e) = res {
            self.lost(poll, user, &e.to_string());
        } else if now_open && !wire.open {
            wire.open = true;
            wire.deadline = None;
            wire.backoff_ms = BACKOFF_MS_MIN;
            self.opened(user);
        }
    }

    /// Writes the requests deferred while the API connection was being read.
    fn flush_deferred(&mut self, ws: &mut WsConn<Stream>) -> Result<(), crate::ingest::ws::WsError> {
        let mut at = 0;
        while at + 2 <= self.deferred.len() {
            let n = u16::from_le_bytes([self.deferred[at], self.deferred[at + 1]]) as usize;
            let frame = &self.deferred[at + 2..at + 2 + n];
            // The encoders write ASCII only.
            if let Ok(text) = std::str::from_utf8(frame) {
                ws.send_text(text)?;
                self.stats.sent += 1;
            }
            at += 2 + n;
        }
        self.deferred.clear();
        Ok(())
    }
}

impl OrderLink {
    /// A connection finished its upgrade: the API starts its session, the user stream starts delivering.
    fn opened(&mut self, user: bool) {
        if user {
            log::info!("order session: user data stream open");
            return;
        }
        log::info!("order session: WebSocket API open");
        if self.cfg.credentials.signer.is_ed25519() {
            self.phase = Phase::LoggingOn;
            (self.logon_retry, self.logon_retries) = (None, 0);
            self.send_ctl(Ctl::Logon);
        } else {
            self.ready_now();
        }
    }

    /// A `session.logon` refused for its timestamp goes again once the control thread measured the clock (or after
    /// [`RESYNC_WAIT`] with whatever offset there is).
    fn retry_logon(&mut self, now: Instant) {
        let Some((generation, at)) = self.logon_retry else { return };
        if self.clock.generation() != generation || now.duration_since(at) >= RESYNC_WAIT {
            self.logon_retry = None;
            self.send_ctl(Ctl::Logon);
        }
    }

    /// The answer to `session.logon`: ready, a retry after a clock re-measurement (`-1021`, bounded), or a refusal
    /// (a key the exchange does not know with this public key): logged and counted, and orders wait.
    fn on_logon(&mut self, outcome: Result<Result<(), i32>, super::error::WireError>) {
        match outcome {
            Ok(Ok(())) => {
                log::info!("order session: logged on (Ed25519)");
                self.ready_now();
            }
            Ok(Err(-1021)) if self.logon_retries < LOGON_CLOCK_RETRIES => {
                self.logon_retries += 1;
                self.stats.clock_resyncs += 1;
                log::warn!(
                    "order session: session.logon refused -1021 (timestamp): clock re-measured, logging on again"
                );
                self.clock.request_resync();
                self.logon_retry = Some((self.clock.generation(), Instant::now()));
            }
            Ok(Err(code)) => {
                self.stats.count_reject(code);
                log::error!(
                    "order session: session.logon refused ({code}): is the API key registered with this Ed25519 \
                     key's public key? Orders wait"
                );
            }
            Err(e) => log::error!("order session: session.logon answer unreadable: {e}; orders wait"),
        }
    }

    /// Logged on (or HMAC, which signs every request): the listenKey, then what waited is resent.
    fn ready_now(&mut self) {
        self.phase = Phase::Ready;
        if let Some(t) = self.down_since.take()
            && self.stats.rest_fallbacks > 0
        {
            log::info!("order session: WebSocket API back after {:?}; orders leave the REST fallback", t.elapsed());
        }
        self.last_ping = Instant::now();
        if self.listen_key.is_empty() || !self.user.open {
            self.send_ctl(Ctl::ListenStart);
        }
        // Requests of the lost connection: resent at once (same client ids) by the next `expire`.
        let now = clock::now_ns() as i64;
        self.pending.age_all(now, i64::from(self.cfg.ack_timeout_ms) * 1_000_000);
    }

    fn lost(&mut self, poll: &Poll, user: bool, why: &str) {
        if user {
            self.user_stream_gap();
            log::warn!("order session: user data stream lost: {why}; reconnecting");
            self.user.fail(poll);
            self.stats.user_stream_reconnects += 1;
        } else {
            log::warn!(
                "order session: WebSocket API lost: {why}; reconnecting ({} requests pending)",
                self.pending.len()
            );
            self.api.fail(poll);
            self.phase = Phase::Down;
            self.down_since.get_or_insert_with(Instant::now);
            self.requeue_status_queries();
            self.stats.api_reconnects += 1;
        }
    }

    /// Sends one control request (nothing is sent when CTL_MAX are already in flight: counted).
    fn send_ctl(&mut self, c: Ctl) {
        let id = self.next_id;
        self.next_id += 1;
        if matches!(c, Ctl::ListenStart | Ctl::ListenPing) && self.on_rest() {
            return self.send_rest_listen_key(id, c == Ctl::ListenStart);
        }
        let at = self.at();
        let r = match c {
            Ctl::Logon => self.req.encode_logon(id, &self.cfg.credentials, at),
            Ctl::ListenStart => self.req.encode_listen_key(id, "userDataStream.start", &self.cfg.credentials.api_key),
            Ctl::ListenPing => self.req.encode_listen_key(id, "userDataStream.ping", &self.cfg.credentials.api_key),
            Ctl::Status(..) | Ctl::RestStatus(..) | Ctl::RestListen(_) | Ctl::Trades(_) => return,
        };
        if let Err(e) = r {
            log::error!("order session: {c:?} not encoded: {e}");
            return;
        }
        self.write_ctl(id, c);
    }

    fn write_ctl(&mut self, id: u64, c: Ctl) {
        if self.ctl.is_full() {
            self.stats.ctl_dropped += 1;
            log::warn!("order session: {CTL_MAX} control requests in flight; {c:?} not sent (counted)");
            return;
        }
        if self.write_frame() {
            self.ctl.push((id, c));
        }
    }

    /// Writes the encoded request on the API connection; false when it could not be queued.
    fn write_frame(&mut self) -> bool {
        let Some(ws) = self.api.ws.as_mut() else {
            return self.reading_api && self.defer();
        };
        // The encoders write ASCII only.
        let Ok(text) = std::str::from_utf8(self.req.as_bytes()) else { return false };
        match ws.send_text(text) {
            Ok(()) => {
                self.stats.sent += 1;
                true
            }
            Err(e) => {
                log::warn!("order session: request not written: {e}");
                false
            }
        }
    }

    /// Keeps the encoded request for [`OrderLink::flush_deferred`]; false (counted) when the buffer is full.
    fn defer(&mut self) -> bool {
        let b = self.req.as_bytes();
        if self.deferred.len() + 2 + b.len() > self.deferred.capacity() {
            self.stats.ctl_dropped += 1;
            log::warn!("order session: deferred request buffer full; request left to its timeout (counted)");
            return false;
        }
        self.deferred.extend_from_slice(&(b.len() as u16).to_le_bytes());
        self.deferred.extend_from_slice(b);
        true
    }

    /// Encodes and writes one intent (a first copy: [`OrderLink::resend`] for the others).
    fn send(&mut self, i: OrderIntent, table: &SymbolTable, out: Sink<'_>) {
        if i.kind == IntentKind::Place && !i.order_type.is_conditional() {
            self.await_fills(&i);
        }
        let first = Pending::first(i);
        self.resend(first, table, out);
    }

    /// Encodes and writes `p.intent` under a new request id, tracking it as pending with `p`'s tries; a local
    /// refusal is reported.
    fn resend(&mut self, p: Pending, table: &SymbolTable, out: Sink<'_>) {
        let (i, resends) = (p.intent, p.resends);
        let Some(spec) = spec_of(table, i.symbol) else {
            log::error!("order session: symbol {} has no exchange scales: intent refused", i.symbol);
            return self.report(&rejected(&i, LOCAL_NO_SPEC, self.exchange_ms()), out);
        };
        let id = self.next_id;
        self.next_id += 1;
        let at = self.at();
        let via_rest = self.on_rest();
        let encoded = if via_rest {
            self.req.encode_rest(&i, &spec, at, &self.cfg.credentials).map(Some)
        } else {
            self.req.encode_intent(id, &i, &spec, at, auth(&self.cfg)).map(|()| None)
        };
        let call = match encoded {
            Ok(call) => call,
            Err(e) => {
                log::error!("order session: intent not encoded: {e}");
                return self.report(&rejected(&i, LOCAL_ENCODE, self.exchange_ms()), out);
            }
        };
        let sent_mono_ns = clock::now_ns() as i64;
        if self.pending.insert(Pending { request_id: id, sent_mono_ns, via_rest, ..p }).is_err() {
            self.stats.pending_full += 1;
            return self.report(&rejected(&i, LOCAL_PENDING_FULL, self.exchange_ms()), out);
        }
        // A request not handed on stays pending: the ack timeout resends it.
        if let Some(call) = call {
            self.push_rest(id, call);
        } else if self.write_frame() && resends == 0 && !p.clock_retried {
            self.order_write.record((clock::now_ns() as i64).saturating_sub(i.decided_mono_ns).max(0) as u64);
        }
    }

    fn exchange_ms(&self) -> i64 {
        clock::wall_ns().div_euclid(1_000_000) + self.clock.offset_ms()
    }

    /// Resends the oldest request past the ack timeout (one per turn), or gives it up after [`RESENDS_MAX`].
    fn expire(&mut self, table: &SymbolTable, out: Sink<'_>) {
        let now_ns = clock::now_ns() as i64;
        let timeout_ns = i64::from(self.cfg.ack_timeout_ms.max(1)) * 1_000_000;
        let Some(id) = self.pending.oldest_expired(now_ns, timeout_ns) else { return };
        let Some(p) = self.pending.take(id) else { return };
        self.stats.timeouts += 1;
        if p.resends >= RESENDS_MAX {
            log::error!("order session: {:?} unanswered after {RESENDS_MAX} resends: given up", p.intent.client);
            return self.report(&rejected(&p.intent, LOCAL_ACK_LOST, self.exchange_ms()), out);
        }
        self.stats.resends += 1;
        self.resend(Pending { resends: p.resends + 1, ..p }, table, out);
    }

    /// After a `-1021`: the requests waiting for the control thread's new offset go out once it arrived (or after
    /// [`RESYNC_WAIT`] with whatever offset there is).
    fn resend_after_resync(&mut self, table: &SymbolTable, now: Instant, out: Sink<'_>) {
        let Some(asked) = self.resync_asked else { return };
        let generation = self.clock.generation();
        if self.waiting_resync.iter().all(|(_, g)| *g == generation) && now.duration_since(asked) < RESYNC_WAIT {
            return;
        }
        self.resync_asked = None;
        let waiting = std::mem::take(&mut self.waiting_resync);
        for (p, _) in waiting {
            // Marked: a second -1021 is a reject.
            self.resend(Pending { clock_retried: true, ..p }, table, out);
        }
    }

    /// Hands a report to the inbound path.
    fn report(&mut self, x: &ExecReport, out: Sink<'_>) {
        if x.kind == ExecKind::Rejected {
            self.stats.count_reject(x.error_code);
        }
        self.note_awaited(x);
        out(&x.to_events(clock::wall_ns(), clock::now_ns()));
    }
}

/// The rate-limit back-off (module doc).
#[derive(Debug, Default)]
struct Backoff {
    /// Nothing is sent before this.
    until: Option<Instant>,
    /// The back-off the next refusal sets (doubles per refusal, halves per answered request).
    next: Duration,
    /// The exchange has rate-limited this session: entries are refused from now on.
    limited: bool,
    /// Protective requests waiting for the back-off's end.
    waiting: ArrayVec<Pending, WAITING_BACKOFF_MAX>,
}

/// A new position's order (what a rate limit stops); protective orders and cancels go on.
fn is_entry(i: &OrderIntent) -> bool {
    i.kind == IntentKind::Place && i.client.leg == crate::types::order::Leg::Entry
}

/// How requests are authorised: Ed25519 keys log the connection on, HMAC keys sign every request.
fn auth(cfg: &SessionConfig) -> Auth<'_> {
    if cfg.credentials.signer.is_ed25519() { Auth::Session } else { Auth::Signed(&cfg.credentials) }
}

/// The encoder's view of a symbol: only scales that came from exchangeInfo (inferred ones could be wrong).
fn spec_of(table: &SymbolTable, id: crate::types::SymbolId) -> Option<SymbolSpec> {
    if (id as usize) >= table.len() {
        return None;
    }
    let e = table.get(id);
    match (e.price, e.qty, e.from_exchange_info) {
        (Some(tick), Some(step), true) => {
            Some(SymbolSpec { name: e.name, tick, step, price_precision: tick.dec, qty_precision: step.dec })
        }
        _ => None,
    }
}

/// The listenKey of a `userDataStream.start`/`.ping` result or a REST `/fapi/v1/listenKey` answer.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Key<'a> {
    listen_key: &'a str,
}

/// The `id` of a WebSocket API answer, read without knowing its `result` type.
fn answer_id(frame: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: RequestId,
    }
    match serde_json::from_slice::<Id>(frame).ok()?.id {
        RequestId::Int(n) => Some(n),
        _ => None,
    }
}

/// What one answer said about the order it answers.
type Answer = Result<Result<ExecReport, i32>, super::error::WireError>;

/// A regular order's answer: its state; fills themselves come only from the user stream, so a `FILLED` answer
/// (`newOrderRespType=RESULT`, or a status query) is an acknowledgement with its cumulative quantity.
fn order_answer(frame: &[u8], table: &SymbolTable) -> Answer {
    let r = parse_ws::<OrderResult<'_>>(frame)?;
    Ok(match r.outcome {
        Ok(o) => {
            let mut x = exec_from_order(&o, table)?;
            if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) {
                x.kind = ExecKind::Ack;
            }
            Ok(x)
        }
        Err(e) => Err(e.code),
    })
}

/// An algo (conditional) order's answer: `algoOrder.place` acknowledges, `algoOrder.cancel` cancels.
fn algo_answer(frame: &[u8], i: &OrderIntent) -> Answer {
    let base = |kind, id, ms| ExecReport { exchange_order_id: id, ..ExecReport::of_intent(i, kind, 0, 0, ms) };
    Ok(if i.kind == IntentKind::Cancel {
        match parse_ws::<AlgoCancelResult<'_>>(frame)?.outcome {
            Ok(c) => Ok(base(ExecKind::Canceled, c.algo_id, 0)),
            Err(e) => Err(e.code),
        }
    } else {
        match parse_ws::<AlgoResult<'_>>(frame)?.outcome {
            Ok(a) => Ok(base(ExecKind::Ack, a.algo_id, a.update_time)),
            Err(e) => Err(e.code),
        }
    })
}

impl OrderLink {
    fn on_api_frame(&mut self, f: &[u8], table: &SymbolTable, out: Sink<'_>) {
        let Some(id) = answer_id(f) else {
            self.undecodable("WebSocket API answer without a numeric id", f);
            return;
        };
        if let Some(k) = self.ctl.iter().position(|(i, _)| *i == id) {
            let (_, c) = self.ctl.remove(k);
            return self.on_ctl_answer(c, f, table, out);
        }
        let Some(p) = self.pending.take(id) else {
            self.stats.unmatched += 1;
            return;
        };
        self.stats.acked += 1;
        self.backoff.next /= 2;
        self.order_ack.record((clock::now_ns() as i64).saturating_sub(p.sent_mono_ns).max(0) as u64);
        let answer =
            if p.intent.order_type.is_conditional() { algo_answer(f, &p.intent) } else { order_answer(f, table) };
        match answer {
            Ok(Ok(x)) => self.report(&x, out),
            Ok(Err(code)) => self.on_refused(p, code, table, out),
            Err(e) => {
                self.undecodable(&e.to_string(), f);
                // Unknown outcome: treated as unanswered, so the timeout asks again with the same id.
                let _ = self.pending.insert(Pending { sent_mono_ns: 0, ..p });
            }
        }
    }

    fn undecodable(&mut self, why: &str, f: &[u8]) {
        self.stats.undecodable += 1;
        if self.stats.undecodable <= 3 {
            let head = String::from_utf8_lossy(&f[..f.len().min(160)]);
            log::warn!("order session: undecodable message ({why}): {head}");
        }
    }

    /// A request the exchange refused with `code` (see the module doc for what each class does).
    fn on_refused(&mut self, p: Pending, code: i32, table: &SymbolTable, out: Sink<'_>) {
        use super::error::{ErrorAction, action_for};
        let i = p.intent;
        let ms = self.exchange_ms();
        match action_for(code) {
            ErrorAction::ResyncClockRetryOnce if !p.clock_retried => {
                self.stats.clock_resyncs += 1;
                self.clock.request_resync();
                self.resync_asked.get_or_insert_with(Instant::now);
                if self.waiting_resync.try_push((p, self.clock.generation())).is_err() {
                    self.report(&rejected(&i, code, ms), out);
                }
            }
            // The first copy of a resent request arrived: ask what became of it.
            ErrorAction::QueryStatus if code == -4116 && p.resends > 0 => {
                if i.order_type.is_conditional() {
                    self.report(&ExecReport::of_intent(&i, ExecKind::Ack, 0, 0, ms), out);
                } else {
                    self.send_status(i, p.resends, table, out);
                }
            }
            ErrorAction::BackOffHaltEntries => self.on_rate_limited(p, code, out),
            // A cancel whose order is already gone (filled, cancelled, expired): nothing is working any more.
            ErrorAction::AlreadyGone if i.kind == IntentKind::Cancel => {
                self.report(&ExecReport { kind: ExecKind::Canceled, ..rejected(&i, code, ms) }, out);
            }
            _ => self.report(&rejected(&i, code, ms), out),
        }
    }

    fn send_status(&mut self, i: OrderIntent, resends: u8, table: &SymbolTable, out: Sink<'_>) {
        let Some(spec) = spec_of(table, i.symbol) else {
            return self.report(&rejected(&i, LOCAL_NO_SPEC, self.exchange_ms()), out);
        };
        let id = self.next_id;
        self.next_id += 1;
        let at = self.at();
        if self.on_rest() {
            return self.send_rest_status(id, i, resends, &spec, out);
        }
        match self.req.encode_status(id, &i, &spec, at, auth(&self.cfg)) {
            Ok(()) => self.write_ctl(id, Ctl::Status(i, resends)),
            Err(_) => self.report(&rejected(&i, LOCAL_ENCODE, self.exchange_ms()), out),
        }
    }

    fn on_ctl_answer(&mut self, c: Ctl, f: &[u8], table: &SymbolTable, out: Sink<'_>) {
        match c {
            Ctl::Logon => {
                self.on_logon(parse_ws::<SessionResult<'_>>(f).map(|r| r.outcome.map(|_| ()).map_err(|e| e.code)))
            }
            Ctl::ListenStart | Ctl::ListenPing => match parse_ws::<Key<'_>>(f).map(|r| r.outcome.map_err(|e| e.code)) {
                Ok(Ok(k)) if k.listen_key != self.listen_key => self.set_listen_key(k.listen_key),
                Ok(Ok(_)) => {}
                Ok(Err(-1125)) => self.send_ctl(Ctl::ListenStart),
                other => log::error!("order session: {c:?} failed: {other:?}"),
            },
            Ctl::Status(i, resends) => match order_answer(f, table) {
                Ok(Ok(x)) => self.report(&x, out),
                other => {
                    if let Err(e) = other {
                        self.undecodable(&e.to_string(), f);
                    }
                    self.status_unknown(i, resends, out);
                }
            },
            // Answered by the REST worker only (ids are unique per session).
            Ctl::RestStatus(..) | Ctl::RestListen(_) | Ctl::Trades(_) => self.stats.unmatched += 1,
        }
    }

    /// The status of a resent request is still unknown (a refused or unreadable query, or a connection lost before
    /// the answer): the placement goes back to the pending table, due at once, and counts as one more resend (so
    /// the chain stays bounded).
    fn status_unknown(&mut self, i: OrderIntent, resends: u8, out: Sink<'_>) {
        if self.pending.insert(Pending { resends, ..Pending::first(i) }).is_err() {
            self.report(&rejected(&i, LOCAL_PENDING_FULL, self.exchange_ms()), out);
        }
    }

    /// A new listenKey: the user stream (re)connects with it.
    fn set_listen_key(&mut self, key: &str) {
        if self.user.open {
            self.user_stream_gap();
        }
        self.listen_key.clear();
        self.listen_key.push_str(key);
        self.user_path.clear();
        self.user_path.push_str(&self.cfg.user_stream_path);
        self.user_path.push_str("?listenKey=");
        self.user_path.push_str(key);
        // Any open user stream belongs to the old key.
        self.user.next_attempt = Instant::now();
        self.user.open = false;
        if let Some(ws) = self.user.ws.as_mut() {
            let _ = ws.close(1000);
        }
        self.user.ws = None;
        log::info!("order session: listenKey received; user data stream connecting");
    }

    fn on_user_frame(&mut self, f: &[u8], table: &SymbolTable, local_ts_ns: i64, out: Sink<'_>) {
        match parse_user_event(f, table, &mut self.account) {
            Ok(UserEvent::Order(x)) => self.report(&x, out),
            Ok(UserEvent::Account) => self.positions(table, local_ts_ns, out),
            Ok(UserEvent::Algo(a)) => {
                if let Some(x) = algo_report(&a, table) {
                    self.report(&x, out);
                }
            }
            Ok(UserEvent::ListenKeyExpired { .. }) => {
                self.stats.listen_key_expired += 1;
                log::warn!("order session: listenKey expired; starting a new one");
                self.user_stream_gap();
                self.listen_key.clear();
                self.send_ctl(Ctl::ListenStart);
            }
            Ok(UserEvent::Other(_)) => self.stats.other_events += 1,
            Err(e) => self.undecodable(&e.to_string(), f),
        }
    }

    /// The positions of an `ACCOUNT_UPDATE` as [`EventKind::Position`] events (symbols the parser does not know
    /// are counted: nothing trades them here).
    fn positions(&mut self, table: &SymbolTable, local_ts_ns: i64, out: Sink<'_>) {
        let a = &self.account;
        for p in &a.positions {
            let Some(id) = table.find(&p.symbol) else {
                self.stats.other_events += 1;
                continue;
            };
            let mut e = MarketEvent::new(
                EventKind::Position,
                id,
                a.event_ms.saturating_mul(1_000_000),
                local_ts_ns,
                clock::now_ns(),
            );
            e.flags = if p.isolated { flags::ISOLATED } else { 0 };
            e.p = [p.amount_e8, p.entry_price_e8, p.unrealized_pnl_e8, a.transaction_ms];
            out(&[e]);
            self.stats.positions += 1;
        }
    }
}

/// An `ALGO_UPDATE` of one of our conditional orders as a report: the states that end the order without a fill
/// (`CANCELED`, `EXPIRED`, `REJECTED`) and `NEW`; a triggered stop's fills come as `ORDER_TRADE_UPDATE`s of its
/// market order, whose client id is the algo's.
fn algo_report(a: &AlgoUpdate, table: &SymbolTable) -> Option<ExecReport> {
    let kind = match a.status {
        AlgoStatus::New => ExecKind::Ack,
        AlgoStatus::Canceled => ExecKind::Canceled,
        AlgoStatus::Expired => ExecKind::Expired,
        AlgoStatus::Rejected => ExecKind::Rejected,
        AlgoStatus::Triggering | AlgoStatus::Triggered | AlgoStatus::Finished => return None,
    };
    let client = a.client?;
    let symbol = table.find(&a.symbol)?;
    Some(ExecReport {
        exchange_order_id: a.algo_id,
        last_price_ticks: 0,
        last_qty_steps: 0,
        cum_qty_steps: 0,
        commission_e8: 0,
        realized_pnl_e8: 0,
        exchange_ms: a.event_ms,
        error_code: 0,
        client,
        symbol,
        kind,
        side: a.side,
        maker: false,
        client_known: true,
    })
}

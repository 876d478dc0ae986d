//! One accepted TCP connection: TLS (unless `--plain`), HTTP request routing, REST answers (keep-alive) or a
//! websocket session.
//!
//! Threads: a reader thread does blocking reads of the socket and hands the bytes to the connection thread through
//! the same queue that carries published frames, so the connection thread waits in exactly one place and never
//! polls. The connection thread owns the TLS state (rustls driven by hand: bytes in, plaintext out) and does
//! blocking writes with a timeout.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Bytes, Message, WebSocket};

use crate::ctx::{Ctx, wall_ms};
use crate::hub::{Input, Registration, Route, reason_of};
use crate::rest;
use crate::stats::CloseReason;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 << 10;
/// Largest request body accepted (order endpoints send form bodies).
const MAX_BODY: usize = 64 << 10;
/// Idle time allowed before the first request and between keep-alive requests.
const HTTP_IDLE: Duration = Duration::from_secs(60);
/// Inputs handled between two flushes of a websocket.
const BATCH: usize = 512;

/// The byte stream under HTTP and the websocket: plain TCP or TLS, fed with bytes by the reader thread.
pub struct Transport {
    tcp: TcpStream,
    tls: Option<rustls::ServerConnection>,
    inbox: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl Transport {
    fn on_bytes(&mut self, mut b: &[u8]) -> io::Result<()> {
        let Some(c) = &mut self.tls else {
            self.inbox.extend_from_slice(b);
            return Ok(());
        };
        while !b.is_empty() {
            let n = c.read_tls(&mut b)?;
            let st = match c.process_new_packets() {
                Ok(st) => st,
                Err(e) => {
                    // Send the alert, then give up.
                    while c.wants_write() && c.write_tls(&mut self.tcp).is_ok() {}
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let avail = st.plaintext_bytes_to_read();
            let closed = st.peer_has_closed();
            if avail > 0 {
                let start = self.inbox.len();
                self.inbox.resize(start + avail, 0);
                c.reader().read_exact(&mut self.inbox[start..])?;
            }
            if closed {
                self.eof = true;
            }
            if n == 0 {
                break;
            }
        }
        self.flush_tls()
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        if let Some(c) = &mut self.tls {
            while c.wants_write() {
                c.write_tls(&mut self.tcp)?;
            }
        }
        Ok(())
    }

    /// Sends TLS close_notify (a clean TLS end) if this is a TLS connection.
    fn close_notify(&mut self) {
        if let Some(c) = &mut self.tls {
            c.send_close_notify();
            let _ = self.flush_tls();
        }
    }

    fn available(&self) -> &[u8] {
        &self.inbox[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.inbox.len() {
            self.inbox.clear();
            self.pos = 0;
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.available();
        if avail.is_empty() {
            return if self.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.write(buf),
            Some(c) => {
                let n = c.writer().write(buf)?;
                self.flush_tls()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()?;
        self.tcp.flush()
    }
}

/// A parsed HTTP request head.
#[derive(Debug)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// The query string as sent (what a signature signs).
    pub raw_query: String,
    /// The body as sent (`Content-Length` bytes; empty without one).
    pub body: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// HTTP/1.0 (closes by default).
    pub http10: bool,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        match self.header("connection") {
            Some(v) => v.eq_ignore_ascii_case("close") || (self.http10 && !v.eq_ignore_ascii_case("keep-alive")),
            None => self.http10,
        }
    }

    fn is_upgrade(&self) -> bool {
        self.header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

/// Decodes `%XX` and `+` of a query or form value.
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `k=v&…` pairs of a query string or form body, decoded.
pub fn parse_form(qs: &str) -> Vec<(String, String)> {
    qs.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

/// Parses one request (head and `Content-Length` body) from `buf`: `Ok(None)` when incomplete, `Err` when
/// malformed or too large.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, &'static str> {
    let Some(end) = memfind(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Err("request head too large") } else { Ok(None) };
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "request head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let first = lines.next().ok_or("empty request")?;
    let mut parts = first.split(' ');
    let method = parts.next().filter(|m| !m.is_empty()).ok_or("no method")?.to_string();
    let target = parts.next().ok_or("no target")?;
    let version = parts.next().ok_or("no version")?;
    if !version.starts_with("HTTP/1.") {
        return Err("not HTTP/1.x");
    }
    let (path, qs) = target.split_once('?').unwrap_or((target, ""));
    let query = parse_form(qs);
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or("bad header line")?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = match headers.iter().find(|(k, _)| k == "content-length") {
        Some((_, v)) => v.parse::<usize>().map_err(|_| "bad Content-Length")?,
        None => 0,
    };
    if len > MAX_BODY {
        return Err("request body too large");
    }
    let start = end + 4;
    if buf.len() < start + len {
        return Ok(None);
    }
    let body = std::str::from_utf8(&buf[start..start + len]).map_err(|_| "request body is not UTF-8")?.to_string();
    let r = Request {
        method,
        path: pct_decode(path),
        query,
        raw_query: qs.to_string(),
        body,
        headers,
        http10: version == "HTTP/1.0",
    };
    Ok(Some((r, start + len)))
}

fn memfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// An HTTP response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: String,
    /// Send nothing and close the connection (a lost acknowledgement).
    pub lost: bool,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        418 => "I'm a teapot",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

fn write_response(t: &mut Transport, r: &Response, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\nServer: rusto-exchange\r\n",
        r.status,
        reason_phrase(r.status),
        r.body.len(),
        if close { "close" } else { "keep-alive" }
    );
    for (k, v) in &r.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    t.write_all(head.as_bytes())?;
    t.write_all(r.body.as_bytes())?;
    t.flush()
}

/// Handles one accepted connection on the current thread until it ends.
pub fn handle(tcp: TcpStream, ctx: Arc<Ctx>) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(ctx.cfg.write_timeout));
    let (tx, rx) = sync_channel::<Input>(ctx.cfg.send_queue.max(16));
    let Ok(mut rd) = tcp.try_clone() else { return };
    let Ok(killer) = tcp.try_clone() else { return };
    let rtx = tx.clone();
    let reader = std::thread::Builder::new().name("exch-read".into()).spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match rd.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = rtx.send(Input::Eof);
                    return;
                }
                Ok(n) => {
                    if rtx.send(Input::Bytes(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    if reader.is_err() {
        return;
    }
    let tls = match &ctx.tls {
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(c) => Some(c),
            Err(_) => return,
        },
        None => None,
    };
    let t = Transport { tcp, tls, inbox: Vec::new(), pos: 0, eof: false };
    http_loop(t, &rx, tx, &ctx, killer);
}

fn http_loop(mut t: Transport, rx: &Receiver<Input>, tx: SyncSender<Input>, ctx: &Arc<Ctx>, killer: TcpStream) {
    let mut deadline = Instant::now() + HTTP_IDLE;
    let mut routed = false;
    loop {
        let now = Instant::now();
        if now >= deadline || ctx.stopping() {
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(Input::Bytes(b)) => {
                if t.on_bytes(&b).is_err() {
                    if !routed {
                        ctx.stats.handshake_errors.fetch_add(1, Relaxed);
                    }
                    break;
                }
            }
            Ok(Input::Eof) => t.eof = true,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        loop {
            match parse_request(t.available()) {
                Err(msg) => {
                    let status = if msg.contains("too large") { 431 } else { 400 };
                    let body = json!({"code": -1000, "msg": msg}).to_string();
                    let _ = write_response(&mut t, &Response { status, headers: vec![], body, lost: false }, true);
                    t.close_notify();
                    if !routed {
                        ctx.stats.handshake_errors.fetch_add(1, Relaxed);
                    }
                    shutdown(&killer);
                    return;
                }
                Ok(None) => break,
                Ok(Some((req, n))) => {
                    t.consume(n);
                    routed = true;
                    if req.is_upgrade() {
                        ws_session(t, &req, rx, tx, ctx, killer);
                        return;
                    }
                    let resp = rest::handle(&req, ctx);
                    if resp.lost {
                        shutdown(&killer);
                        return;
                    }
                    let close = req.wants_close() || ctx.stopping();
                    if write_response(&mut t, &resp, close).is_err() || close {
                        t.close_notify();
                        shutdown(&killer);
                        return;
                    }
                    deadline = Instant::now() + HTTP_IDLE;
                }
            }
        }
        if t.eof {
            break;
        }
    }
    t.close_notify();
    shutdown(&killer);
}

fn shutdown(tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Both);
}

/// Route, combined mode and streams of a websocket path; `None` when it is not a stream path.
pub fn parse_ws_path(path: &str, query: &[(String, String)]) -> Option<(Route, bool, Vec<String>)> {
    if path == "/ws-fapi/v1" {
        return Some((Route::WsApi, false, Vec::new()));
    }
    let (route, rest) = if let Some(r) = path.strip_prefix("/market") {
        (Route::Market, r)
    } else if let Some(r) = path.strip_prefix("/public") {
        (Route::Public, r)
    } else if let Some(r) = path.strip_prefix("/private") {
        (Route::Private, r)
    } else {
        (Route::Unrouted, path)
    };
    let split = |s: &str| s.split('/').filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>();
    if rest == "/stream" {
        let streams = query.iter().find(|(k, _)| k == "streams").map(|(_, v)| split(v)).unwrap_or_default();
        return Some((route, true, streams));
    }
    if rest == "/ws" || rest == "/ws/" {
        // `/private/ws?listenKey=<key>` names the user data stream in the query.
        let keys = query.iter().filter(|(k, _)| k == "listenKey").map(|(_, v)| v.clone()).collect();
        return Some((route, false, if route == Route::Private { keys } else { Vec::new() }));
    }
    let names = rest.strip_prefix("/ws/")?;
    Some((route, false, split(names)))
}

struct Session {
    id: u64,
    route: Route,
    logon: Option<String>,
    opened: Instant,
    last_pong: Instant,
    next_ping: Instant,
    msgs: VecDeque<Instant>,
}

fn ws_session(
    mut t: Transport,
    req: &Request,
    rx: &Receiver<Input>,
    tx: SyncSender<Input>,
    ctx: &Arc<Ctx>,
    killer: TcpStream,
) {
    let Some((route, combined, streams)) = parse_ws_path(&req.path, &req.query) else {
        let body = json!({"code": -1000, "msg": "not a websocket stream path"}).to_string();
        let _ = write_response(&mut t, &Response { status: 404, headers: vec![], body, lost: false }, true);
        shutdown(&killer);
        return;
    };
    if route == Route::WsApi && ctx.orders.faults.ws_api_down() {
        ctx.orders.stats.ws_api_refused.fetch_add(1, Relaxed);
        let body = json!({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."});
        let resp = Response { status: 503, headers: vec![], body: body.to_string(), lost: false };
        let _ = write_response(&mut t, &resp, true);
        shutdown(&killer);
        return;
    }
    let Some(key) = req.header("sec-websocket-key") else {
        let body = json!({"code": -1000, "msg": "missing Sec-WebSocket-Key"}).to_string();
        let _ = write_response(&mut t, &Response { status: 400, headers: vec![], body, lost: false }, true);
        shutdown(&killer);
        return;
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if t.write_all(head.as_bytes()).and_then(|_| t.flush()).is_err() {
        shutdown(&killer);
        return;
    }
    let reason = Arc::new(AtomicU8::new(0));
    let Ok(hub_tcp) = killer.try_clone() else { return };
    let id = ctx.hub.register(Registration { tx, route, combined, streams, tcp: hub_tcp, reason: reason.clone() });
    ctx.stats.ws_opened.fetch_add(1, Relaxed);
    let open = ctx.stats.ws_open.fetch_add(1, Relaxed) + 1;
    ctx.stats.ws_open_max.fetch_max(open, Relaxed);
    // write_buffer_size 0: every frame goes to the socket inside `write`, so a frame counts as sent exactly when
    // the kernel has it (nothing is counted that a dropped connection could still hold in a user-space buffer).
    let cfg =
        WebSocketConfig::default().write_buffer_size(0).max_message_size(Some(1 << 20)).max_frame_size(Some(1 << 20));
    let mut ws = WebSocket::from_raw_socket(t, Role::Server, Some(cfg));
    let now = Instant::now();
    if route == Route::WsApi {
        ctx.orders.stats.ws_api_sessions.fetch_add(1, Relaxed);
    }
    let mut s = Session {
        id,
        route,
        logon: None,
        opened: now,
        last_pong: now,
        next_ping: now + ctx.cfg.ping_every,
        msgs: VecDeque::new(),
    };
    let r = run_ws(&mut ws, &mut s, rx, ctx);
    ctx.hub.unregister(id);
    // A reason recorded by the hub (slow consumer, fault drop) wins over what the session saw.
    let r = reason_of(reason.load(Relaxed)).unwrap_or(r);
    if r != CloseReason::Fault && r != CloseReason::Slow {
        ws.get_mut().close_notify();
    }
    ctx.stats.ws_open.fetch_sub(1, Relaxed);
    ctx.stats.count_closed(r);
    shutdown(&killer);
}

fn close_with(ws: &mut WebSocket<Transport>, code: CloseCode, why: &str) {
    let _ = ws.close(Some(CloseFrame { code, reason: why.to_string().into() }));
    let _ = ws.flush();
}

fn io_reason(e: &tungstenite::Error) -> CloseReason {
    match e {
        tungstenite::Error::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            CloseReason::Slow
        }
        _ => CloseReason::Client,
    }
}

fn run_ws(ws: &mut WebSocket<Transport>, s: &mut Session, rx: &Receiver<Input>, ctx: &Arc<Ctx>) -> CloseReason {
    let cfg = &ctx.cfg;
    loop {
        let now = Instant::now();
        if ctx.stopping() {
            close_with(ws, CloseCode::Away, "server shutting down");
            return CloseReason::Shutdown;
        }
        if now >= s.opened + cfg.max_conn {
            close_with(ws, CloseCode::Normal, "connection lifetime reached");
            return CloseReason::MaxAge;
        }
        if s.route == Route::Private
            && let Some(d) = ctx.orders.faults.user_stream_drop_after
            && now >= s.opened + d
        {
            ctx.orders.stats.user_streams_dropped.fetch_add(1, Relaxed);
            return CloseReason::Fault;
        }
        if now >= s.last_pong + cfg.pong_timeout {
            close_with(ws, CloseCode::Policy, "pong timeout");
            return CloseReason::PongTimeout;
        }
        if now >= s.next_ping {
            s.next_ping = now + cfg.ping_every;
            if !ctx.faults.stop_pinging.load(Relaxed) {
                let payload = Bytes::from(wall_ms().to_string());
                if let Err(e) = ws.write(Message::Ping(payload)).and_then(|_| ws.flush()) {
                    return io_reason(&e);
                }
                ctx.stats.pings.fetch_add(1, Relaxed);
            }
        }
        let mut wake = s.next_ping.min(s.last_pong + cfg.pong_timeout).min(s.opened + cfg.max_conn);
        if s.route == Route::Private
            && let Some(d) = ctx.orders.faults.user_stream_drop_after
        {
            wake = wake.min(s.opened + d);
        }
        let wait = wake.saturating_duration_since(now).min(Duration::from_millis(500));
        let mut item = match rx.recv_timeout(wait) {
            Ok(x) => Some(x),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return CloseReason::Client,
        };
        let mut n = 0;
        while let Some(inp) = item.take() {
            match inp {
                Input::Frame { kind, sym, text } => {
                    let len = text.len();
                    if let Err(e) = ws.write(Message::Text(text)) {
                        return io_reason(&e);
                    }
                    ctx.stats.count_sent(kind, sym, len);
                }
                Input::Raw { text, oversize } => {
                    if let Err(e) = ws.write(Message::Text(text)) {
                        return io_reason(&e);
                    }
                    let c = if oversize { &ctx.stats.oversize } else { &ctx.stats.malformed };
                    c.fetch_add(1, Relaxed);
                }
                Input::Bytes(b) => {
                    if ws.get_mut().on_bytes(&b).is_err() {
                        return CloseReason::Client;
                    }
                    if let Err(r) = read_all(ws, s, ctx) {
                        return r;
                    }
                }
                Input::Eof => {
                    ws.get_mut().eof = true;
                    if let Err(r) = read_all(ws, s, ctx) {
                        return r;
                    }
                    return CloseReason::Client;
                }
            }
            n += 1;
            if n < BATCH {
                item = rx.try_recv().ok();
            }
        }
        if let Err(e) = ws.flush() {
            return io_reason(&e);
        }
    }
}

/// Reads every complete message the transport holds.
fn read_all(ws: &mut WebSocket<Transport>, s: &mut Session, ctx: &Arc<Ctx>) -> Result<(), CloseReason> {
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Err(CloseReason::Client),
        };
        if matches!(msg, Message::Frame(_)) {
            continue;
        }
        if let Message::Close(_) = msg {
            let _ = ws.flush();
            return Err(CloseReason::Client);
        }
        ctx.stats.client_messages.fetch_add(1, Relaxed);
        let now = Instant::now();
        s.msgs.push_back(now);
        while s.msgs.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            s.msgs.pop_front();
        }
        // The WebSocket API is limited by request weight and order counts, not by the stream limit.
        if s.route != Route::WsApi && s.msgs.len() > ctx.cfg.max_msgs_per_sec {
            close_with(ws, CloseCode::Policy, "too many messages");
            return Err(CloseReason::RateLimit);
        }
        match msg {
            Message::Pong(_) => {
                s.last_pong = now;
                ctx.stats.pongs.fetch_add(1, Relaxed);
            }
            Message::Text(t) if s.route == Route::WsApi => {
                let Some(reply) = crate::orders::ws_api::handle(t.as_str(), &mut s.logon, ctx) else { continue };
                if ws.write(Message::text(reply)).and_then(|_| ws.flush()).is_err() {
                    return Err(CloseReason::Client);
                }
                ctx.stats.replies.fetch_add(1, Relaxed);
                if ctx.orders.faults.ws_api_answered_one() {
                    ctx.orders.stats.ws_api_dropped.fetch_add(1, Relaxed);
                    return Err(CloseReason::Fault);
                }
            }
            Message::Text(t) => {
                let reply = client_message(t.as_str(), s.id, ctx);
                if ws.write(Message::text(reply)).is_err() {
                    return Err(CloseReason::Client);
                }
                ctx.stats.replies.fetch_add(1, Relaxed);
            }
            // Pings are answered by tungstenite; binary frames are ignored (Binance ignores them too).
            _ => {}
        }
    }
}

/// The reply to one client text message (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`,
/// `GET_PROPERTY`), in Binance's shapes.
pub fn client_message(text: &str, conn: u64, ctx: &Ctx) -> String {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return json!({"error": {"code": 3, "msg": format!("Invalid JSON: {e}")}, "id": Value::Null}).to_string();
        }
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let err = |code: i64, msg: String| json!({"error": {"code": code, "msg": msg}, "id": id}).to_string();
    if !(id.is_null() || id.is_u64() || id.is_string()) {
        return err(2, "Invalid request: request ID must be an unsigned integer".into());
    }
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        return err(2, "Invalid request: missing field `method`".into());
    };
    let params: Vec<Value> = match v.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return err(2, "Invalid request: params must be an array".into()),
    };
    let names = || -> Result<Vec<String>, String> {
        params
            .iter()
            .map(|p| {
                p.as_str().map(str::to_string).ok_or_else(|| "Invalid request: stream name must be a string".into())
            })
            .collect()
    };
    match method {
        "SUBSCRIBE" | "UNSUBSCRIBE" => match names() {
            Ok(n) => {
                if method == "SUBSCRIBE" {
                    ctx.hub.subscribe(conn, &n);
                } else {
                    ctx.hub.unsubscribe(conn, &n);
                }
                json!({"result": Value::Null, "id": id}).to_string()
            }
            Err(m) => err(2, m),
        },
        "LIST_SUBSCRIPTIONS" => json!({"result": ctx.hub.list(conn), "id": id}).to_string(),
        "GET_PROPERTY" => match params.first().and_then(Value::as_str) {
            Some("combined") => json!({"result": ctx.hub.combined(conn, None), "id": id}).to_string(),
            _ => err(0, "Unknown property".into()),
        },
        "SET_PROPERTY" => match (params.first().and_then(Value::as_str), params.get(1)) {
            (Some("combined"), Some(Value::Bool(b))) => {
                ctx.hub.combined(conn, Some(*b));
                json!({"result": Value::Null, "id": id}).to_string()
            }
            (Some("combined"), _) => err(1, "Invalid value type: expected Boolean".into()),
            _ => err(0, "Unknown property".into()),
        },
        other => err(
            2,
            format!(
                "Invalid request: unknown variant `{other}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, \
                 `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads() {
        let b = b"GET /fapi/v1/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nrest";
        let (r, n) = parse_request(b).unwrap().unwrap();
        assert_eq!(n, b.len() - 4);
        assert_eq!(r.path, "/fapi/v1/depth");
        assert_eq!(r.param("symbol"), Some("BTCUSDT"));
        assert_eq!(r.param("limit"), Some("5"));
        assert!(r.wants_close());
        assert!(parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse_request(b"GARBAGE\r\n\r\n").is_err());
        assert_eq!(pct_decode("a%2Fb%40c"), "a/b@c");
    }

    #[test]
    fn ws_paths() {
        let q = vec![("streams".to_string(), "btcusdt@trade/btcusdt@depth@0ms".to_string())];
        assert_eq!(
            parse_ws_path("/market/stream", &q),
            Some((Route::Market, true, vec!["btcusdt@trade".into(), "btcusdt@depth@0ms".into()]))
        );
        assert_eq!(
            parse_ws_path("/public/ws/btcusdt@depth/ethusdt@depth", &[]),
            Some((Route::Public, false, vec!["btcusdt@depth".into(), "ethusdt@depth".into()]))
        );
        assert_eq!(
            parse_ws_path("/ws/btcusdt@bookTicker", &[]),
            Some((Route::Unrouted, false, vec!["btcusdt@bookTicker".into()]))
        );
        assert_eq!(parse_ws_path("/market/ws", &[]), Some((Route::Market, false, vec![])));
        assert_eq!(parse_ws_path("/fapi/v1/depth", &[]), None);
    }
}

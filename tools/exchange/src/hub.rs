//! Websocket connections and their subscriptions; fans published frames out to the connections that want them.
//!
//! Each connection has a bounded queue ([`Input`]) drained by its own thread. A queue that overflows means the
//! client does not keep up: the connection is dropped (as Binance drops slow consumers), never blocked on.

use std::collections::{HashMap, HashSet};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use tungstenite::Utf8Bytes;

use crate::market::{Frame, Kind};
use crate::stats::CloseReason;

/// What a connection thread is handed.
pub enum Input {
    /// Bytes read from the socket.
    Bytes(Vec<u8>),
    /// The socket reached EOF or failed.
    Eof,
    /// A data frame to send (already wrapped for combined connections).
    Frame {
        /// Kind.
        kind: Kind,
        /// Symbol index.
        sym: u32,
        /// Text.
        text: Utf8Bytes,
    },
    /// A fault frame to send as is.
    Raw {
        /// Text.
        text: Utf8Bytes,
        /// True for an oversize frame, false for a malformed one.
        oversize: bool,
    },
}

/// The websocket route of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/market/...`: aggTrade, trade, markPrice, kline, …
    Market,
    /// `/public/...`: depth, bookTicker.
    Public,
    /// `/ws/...` or `/stream?...` without a route: only public data, like Binance since 2026-04-23.
    Unrouted,
    /// `/private/...`: the user data stream (its stream name is the listenKey).
    Private,
    /// `/ws-fapi/v1`: the WebSocket API (request/response; no stream is delivered).
    WsApi,
}

impl Route {
    /// True when a stream of kind `k` is delivered on this route.
    pub fn allows(self, k: Kind) -> bool {
        match self {
            Route::Market => !k.is_public() && k != Kind::UserData,
            Route::Public | Route::Unrouted => k.is_public(),
            Route::Private => k == Kind::UserData,
            Route::WsApi => false,
        }
    }
}

/// Codes stored in a connection's shared close reason.
pub fn reason_code(r: CloseReason) -> u8 {
    match r {
        CloseReason::Client => 1,
        CloseReason::RateLimit => 2,
        CloseReason::PongTimeout => 3,
        CloseReason::MaxAge => 4,
        CloseReason::Slow => 5,
        CloseReason::Fault => 6,
        CloseReason::Shutdown => 7,
    }
}

/// Inverse of [`reason_code`].
pub fn reason_of(c: u8) -> Option<CloseReason> {
    Some(match c {
        1 => CloseReason::Client,
        2 => CloseReason::RateLimit,
        3 => CloseReason::PongTimeout,
        4 => CloseReason::MaxAge,
        5 => CloseReason::Slow,
        6 => CloseReason::Fault,
        7 => CloseReason::Shutdown,
        _ => return None,
    })
}

struct Entry {
    tx: SyncSender<Input>,
    route: Route,
    combined: bool,
    order: Vec<String>,
    streams: HashSet<String>,
    tcp: TcpStream,
    reason: Arc<AtomicU8>,
}

impl Entry {
    fn kill(&self, r: CloseReason) {
        let _ = self.reason.compare_exchange(0, reason_code(r), Ordering::Relaxed, Ordering::Relaxed);
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

/// All websocket connections.
#[derive(Default)]
pub struct Hub {
    conns: Mutex<HashMap<u64, Entry>>,
    next: std::sync::atomic::AtomicU64,
}

/// What a new connection registers.
pub struct Registration {
    /// Its queue.
    pub tx: SyncSender<Input>,
    /// Route.
    pub route: Route,
    /// Combined (wrapped) mode.
    pub combined: bool,
    /// Streams from the URL.
    pub streams: Vec<String>,
    /// A handle to shut the socket down.
    pub tcp: TcpStream,
    /// Where the hub records why it killed the connection.
    pub reason: Arc<AtomicU8>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub { conns: Mutex::new(HashMap::new()), next: std::sync::atomic::AtomicU64::new(1) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection; returns its id.
    pub fn register(&self, r: Registration) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut e = Entry {
            tx: r.tx,
            route: r.route,
            combined: r.combined,
            order: Vec::new(),
            streams: HashSet::new(),
            tcp: r.tcp,
            reason: r.reason,
        };
        for s in r.streams {
            if e.streams.insert(s.clone()) {
                e.order.push(s);
            }
        }
        self.lock().insert(id, e);
        id
    }

    /// Removes a connection.
    pub fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Adds streams to a connection.
    pub fn subscribe(&self, id: u64, names: &[String]) {
        if let Some(e) = self.lock().get_mut(&id) {
            for s in names {
                if e.streams.insert(s.clone()) {
                    e.order.push(s.clone());
                }
            }
        }
    }

    /// Removes streams from a connection.
    pub fn unsubscribe(&self, id: u64, names: &[String]) {
        if let Some(e) = self.lock().get_mut(&id) {
            for s in names {
                e.streams.remove(s);
            }
            let keep = &e.streams;
            e.order.retain(|s| keep.contains(s));
        }
    }

    /// A connection's streams, in subscription order.
    pub fn list(&self, id: u64) -> Vec<String> {
        self.lock().get(&id).map(|e| e.order.clone()).unwrap_or_default()
    }

    /// Sets or reads a connection's combined mode (`SET_PROPERTY` / `GET_PROPERTY`).
    pub fn combined(&self, id: u64, set: Option<bool>) -> bool {
        let mut g = self.lock();
        match g.get_mut(&id) {
            Some(e) => {
                if let Some(v) = set {
                    e.combined = v;
                }
                e.combined
            }
            None => false,
        }
    }

    /// Sends frames to every connection subscribed to their stream on a route that carries them.
    pub fn publish(&self, frames: &mut Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        let mut g = self.lock();
        let mut dead: Vec<u64> = Vec::new();
        for f in frames.drain(..) {
            let mut raw: Option<Utf8Bytes> = None;
            let mut wrapped: Option<Utf8Bytes> = None;
            for (id, e) in g.iter() {
                if !e.route.allows(f.kind) || !e.streams.contains(&f.stream) {
                    continue;
                }
                let text = if e.combined {
                    wrapped
                        .get_or_insert_with(|| {
                            let mut s = String::with_capacity(f.text.len() + f.stream.len() + 24);
                            s.push_str(r#"{"stream":""#);
                            s.push_str(&f.stream);
                            s.push_str(r#"","data":"#);
                            s.push_str(&f.text);
                            s.push('}');
                            Utf8Bytes::from(s)
                        })
                        .clone()
                } else {
                    raw.get_or_insert_with(|| Utf8Bytes::from(f.text.clone())).clone()
                };
                match e.tx.try_send(Input::Frame { kind: f.kind, sym: f.sym, text }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        e.kill(CloseReason::Slow);
                        dead.push(*id);
                    }
                    Err(TrySendError::Disconnected(_)) => dead.push(*id),
                }
            }
        }
        for id in dead {
            g.remove(&id);
        }
    }

    /// Closes every websocket connection abruptly (no close frame); returns how many.
    pub fn drop_all(&self, r: CloseReason) -> usize {
        self.drop_where(r, |_| true)
    }

    /// Closes every connection of `route` abruptly (no close frame); returns how many.
    pub fn drop_route(&self, route: Route, r: CloseReason) -> usize {
        self.drop_where(r, |e| e.route == route)
    }

    fn drop_where(&self, r: CloseReason, pick: impl Fn(&Entry) -> bool) -> usize {
        let mut g = self.lock();
        let before = g.len();
        g.retain(|_, e| {
            let drop = pick(e);
            if drop {
                e.kill(r);
            }
            !drop
        });
        before - g.len()
    }

    /// Sends fault frames to every connection: `make(first stream, combined)` builds them.
    pub fn broadcast(&self, oversize: bool, make: impl Fn(&str, bool) -> Vec<String>) {
        let g = self.lock();
        for e in g.values() {
            let first = e.order.first().map(String::as_str).unwrap_or("btcusdt@trade");
            for text in make(first, e.combined) {
                let _ = e.tx.try_send(Input::Raw { text: Utf8Bytes::from(text), oversize });
            }
        }
    }
}

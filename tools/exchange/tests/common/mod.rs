//! Shared helpers of the rusto-exchange integration tests: the exchange process (spawned on an ephemeral port,
//! killed on drop), plain or TLS connections trusting the CA it writes, signed REST and WebSocket API calls, and
//! a websocket reader thread that collects every frame.
//!
//! The key pair is Binance's documented HMAC example (USDⓈ-M futures "SIGNED Endpoint Examples for POST
//! /fapi/v1/order", https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::hmac;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

pub const KEY: &str = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83";
pub const SECRET: &str = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9";

pub static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b),
            Stream::Tls(s) => s.read(b),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(b),
            Stream::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub type Ws = WebSocket<Stream>;

/// A started exchange process: its port (from the `listening on` line), scratch dir, client TLS config (trusting
/// the CA it wrote) and the rest of its stdout lines.
pub struct Spawned {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub tls: Option<Arc<ClientConfig>>,
    pub lines: Receiver<String>,
}

/// Starts rusto-exchange from the workspace root, plain or TLS (`--ca-out` in a fresh scratch dir), with the
/// arguments `args` adds; waits ≤ 30 s for its `listening on` line.
pub fn spawn(prefix: &str, tls: bool, args: impl FnOnce(&mut Command, &std::path::Path)) -> Spawned {
    let dir = std::env::temp_dir().join(format!(
        "rusto-exchange-{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rusto-exchange"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    if tls {
        cmd.arg("--ca-out").arg(dir.join("ca.pem"));
    } else {
        cmd.arg("--plain");
    }
    args(&mut cmd, &dir);
    cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap());
    let mut child = cmd.spawn().expect("start rusto-exchange");
    let out = child.stdout.take().unwrap();
    let (tx, lines): (_, Receiver<String>) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(30)).expect("no `listening on` line within 30 s");
    let port: u16 = first
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let tls = tls.then(|| {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(dir.join("ca.pem")).expect("CA PEM")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    Spawned { child, port, dir, tls, lines }
}

/// A TCP connection to the exchange (TLS when `tls`), with this read timeout.
pub fn connect(port: u16, tls: Option<&Arc<ClientConfig>>, read_timeout: Duration) -> Stream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(read_timeout)).unwrap();
    tcp.set_nodelay(true).unwrap();
    match tls {
        None => Stream::Plain(tcp),
        Some(cfg) => {
            let conn = ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        }
    }
}

/// A websocket to `path` (ws:// or wss://), handshake within 10 s.
pub fn ws_handshake(port: u16, tls: Option<&Arc<ClientConfig>>, path: &str, read_timeout: Duration) -> Ws {
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://localhost:{port}{path}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = tungstenite::client(url.as_str(), connect(port, tls, read_timeout));
    loop {
        match r {
            Ok((ws, _)) => return ws,
            Err(tungstenite::HandshakeError::Interrupted(m)) if Instant::now() < deadline => r = m.handshake(),
            Err(e) => panic!("websocket {url}: {e}"),
        }
    }
}

pub struct Exchange {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub tls: Option<Arc<ClientConfig>>,
    pub next_id: AtomicUsize,
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn sign(payload: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    hmac::sign(&k, payload.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

impl Exchange {
    pub fn start(tls: bool, extra: &[&str]) -> Exchange {
        let s = spawn("orders", tls, |cmd, dir| {
            cmd.args(["--api-key", KEY, "--api-secret", SECRET, "--duration-secs", "90"]).args(extra);
            cmd.arg("--stats-out").arg(dir.join("stats.json"));
        });
        Exchange { child: s.child, port: s.port, dir: s.dir, tls: s.tls, next_id: AtomicUsize::new(1) }
    }

    pub fn connect(&self) -> Stream {
        connect(self.port, self.tls.as_ref(), Duration::from_millis(100))
    }

    pub fn ws(&self, path: &str) -> Ws {
        ws_handshake(self.port, self.tls.as_ref(), path, Duration::from_millis(100))
    }

    /// One HTTP request; `None` when the exchange closed the connection without an answer.
    pub fn http(&self, method: &str, target: &str, body: &str) -> Option<(u16, Value)> {
        let mut s = self.connect();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-MBX-APIKEY: {KEY}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..h]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse().ok())
                    .unwrap();
                if buf.len() >= h + 4 + len {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return Some((status, serde_json::from_slice(&buf[h + 4..h + 4 + len]).unwrap()));
                }
            }
            assert!(Instant::now() < deadline, "REST {target}: no complete answer in 10 s");
            match s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return None,
            }
        }
    }

    pub fn get(&self, target: &str) -> Value {
        let (st, v) = self.http("GET", target, "").expect("answer");
        assert_eq!(st, 200, "{target}: {v}");
        v
    }

    /// Exchange time, from `GET /fapi/v1/time` (the offset a real client measures).
    pub fn server_ms(&self) -> i64 {
        self.get("/fapi/v1/time")["serverTime"].as_i64().unwrap()
    }

    /// A signed REST call: `params` in the query string (or the body when `in_body`), timestamp from the exchange.
    pub fn signed(&self, method: &str, path: &str, params: &str, in_body: bool) -> Option<(u16, Value)> {
        let p = format!("{params}&timestamp={}", self.server_ms());
        let signed = format!("{p}&signature={}", sign(&p));
        if in_body { self.http(method, path, &signed) } else { self.http(method, &format!("{path}?{signed}"), "") }
    }

    /// A WebSocket API request with `params` signed as the docs say (sorted, `k=v&…`); `timestamp` from the
    /// exchange unless given.
    pub fn ws_request(&self, ws: &mut Ws, method: &str, mut params: serde_json::Map<String, Value>) -> String {
        params.entry("apiKey").or_insert(json!(KEY));
        if !params.contains_key("timestamp") {
            params.insert("timestamp".into(), json!(self.server_ms()));
        }
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect();
        pairs.sort();
        let payload: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        params.entry("signature").or_insert(json!(sign(&payload.join("&"))));
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let req = json!({"id": id, "method": method, "params": params});
        ws.send(Message::text(req.to_string())).unwrap();
        id
    }

    /// The answer to request `id`, or `None` after `wait`.
    pub fn ws_answer(ws: &mut Ws, id: &str, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["id"] == id {
                        return Some(v);
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(e) => panic!("ws-api read: {e}"),
            }
        }
        None
    }

    pub fn ws_call(&self, ws: &mut Ws, method: &str, params: Value) -> Value {
        let Value::Object(p) = params else { panic!("params must be an object") };
        let id = self.ws_request(ws, method, p);
        Exchange::ws_answer(ws, &id, Duration::from_secs(10)).expect("ws-api answer within 10 s")
    }

    pub fn stats(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(b) = std::fs::read(self.dir.join("stats.json"))
                && let Ok(v) = serde_json::from_slice::<Value>(&b)
            {
                return v;
            }
            assert!(Instant::now() < deadline, "no stats file");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the stats file to be rewritten after now (it is written every second).
    pub fn fresh_stats(&self) -> Value {
        std::thread::sleep(Duration::from_millis(1200));
        self.stats()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("exchange stderr: {}", std::fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default());
        }
    }
}

/// What a reader thread collects from one websocket.
pub struct Collected {
    /// Text frames, parsed.
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// How the connection ended, once it has.
    pub closed: Arc<Mutex<Option<String>>>,
    /// Stops the reader.
    pub stop: Arc<AtomicBool>,
}

impl Drop for Collected {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Collects every text frame of a websocket on its own thread.
pub fn collect(mut ws: Ws) -> Collected {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(Mutex::new(None));
    let (s2, st2, c2) = (seen.clone(), stop.clone(), closed.clone());
    std::thread::spawn(move || {
        while !st2.load(Ordering::Relaxed) {
            match ws.read() {
                Ok(Message::Text(t)) => s2.lock().unwrap().push(serde_json::from_str(t.as_str()).unwrap()),
                Ok(Message::Close(c)) => {
                    *c2.lock().unwrap() = Some(format!("close frame {c:?}"));
                    return;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
                Err(e) => {
                    *c2.lock().unwrap() = Some(format!("error {e}"));
                    return;
                }
            }
        }
    });
    Collected { seen, closed, stop }
}

/// Waits until `pred` holds for the collected frames.
pub fn wait_for(seen: &Mutex<Vec<Value>>, wait: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if pred(&seen.lock().unwrap()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: not seen within {wait:?}; frames: {:?}", seen.lock().unwrap());
}

pub fn num(v: &Value) -> f64 {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string")).parse().unwrap()
}

/// The `o` objects of the ORDER_TRADE_UPDATE events of order `id`.
pub fn updates(seen: &[Value], id: i64) -> Vec<Value> {
    seen.iter().filter(|e| e["e"] == "ORDER_TRADE_UPDATE" && e["o"]["i"] == id).map(|e| e["o"].clone()).collect()
}

pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub fn user_stream(ex: &Exchange) -> (Collected, String) {
    let (st, v) = ex.http("POST", "/fapi/v1/listenKey", "").unwrap();
    assert_eq!(st, 200, "{v}");
    let key = v["listenKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);
    (collect(ex.ws(&format!("/private/ws/{key}"))), key)
}

//! Smoke tests of rusto-exchange without the rusto client: the binary is started on port 0, and a tungstenite
//! client (over rustls trusting the CA the exchange wrote, or plain) checks routes, REST bodies, book sync with
//! rusto's own parser and book, loop continuity, faults and the stats line. Each test is bounded (≈ 10 s).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rusto::compute::{Book, BookConfig};
use rusto::ingest::{DEFAULT_MAX_FRAME_BYTES, FrameMeta, Parser, parse_exchange_info};
use rusto::types::{EventKind, MarketEvent, SymbolId};
use rusto::types::{SymbolName, SymbolTable};
use serde_json::{Value, json};
use tungstenite::Message;

mod common;

use common::{Stream, Ws, connect, spawn, ws_handshake};

/// A running exchange (killed on drop).
struct Exchange {
    child: Child,
    port: u16,
    dir: PathBuf,
    tls: Option<Arc<ClientConfig>>,
    lines: Receiver<String>,
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Exchange {
    fn start(tls: bool, extra: &[&str]) -> Exchange {
        // Safety net: the exchange stops by itself even if the test dies without killing it.
        let s = spawn("smoke", tls, |cmd, _| {
            cmd.args(extra).args(["--duration-secs", "60"]);
        });
        Exchange { child: s.child, port: s.port, dir: s.dir, tls: s.tls, lines: s.lines }
    }

    fn connect(&self) -> Stream {
        connect(self.port, self.tls.as_ref(), Duration::from_millis(200))
    }

    fn ws(&self, path: &str) -> Ws {
        ws_handshake(self.port, self.tls.as_ref(), path, Duration::from_millis(200))
    }

    fn get(&self, path: &str) -> HttpResponse {
        let mut s = self.connect();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        s.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
            if let Some(h) = head_end {
                let head = String::from_utf8_lossy(&buf[..h]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse().ok())
                    .unwrap();
                if buf.len() >= h + 4 + len {
                    let mut lines = head.lines();
                    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
                    let headers = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let body = String::from_utf8(buf[h + 4..h + 4 + len].to_vec()).unwrap();
                    return HttpResponse { status, headers, body };
                }
            }
            assert!(Instant::now() < deadline, "REST {path}: no complete answer in 10 s");
            match s.read(&mut chunk) {
                Ok(0) => panic!("REST {path}: EOF before the whole answer"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("REST {path}: {e}"),
            }
        }
    }

    /// SIGTERM, then the final stats line.
    fn stop(&mut self) -> Value {
        let st = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200))
                && let Ok(v) = serde_json::from_str::<Value>(&l)
            {
                let _ = self.child.wait();
                return v;
            }
        }
        panic!("no stats line within 10 s of SIGTERM");
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

/// What a reader thread saw on one websocket.
#[derive(Default)]
struct Seen {
    texts: Vec<(Instant, String)>,
    pings: usize,
    closed: Option<String>,
}

/// Reads a websocket on its own thread until `stop` or the connection ends.
fn collect(mut ws: Ws, stop: Arc<AtomicBool>) -> (JoinHandle<Ws>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s2 = seen.clone();
    let h = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match ws.read() {
                Ok(Message::Text(t)) => s2.lock().unwrap().texts.push((Instant::now(), t.to_string())),
                Ok(Message::Ping(_)) => s2.lock().unwrap().pings += 1,
                Ok(Message::Close(c)) => {
                    s2.lock().unwrap().closed = Some(format!("close frame {c:?}"));
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    s2.lock().unwrap().closed = Some(format!("error {e}"));
                    break;
                }
            }
        }
        ws
    });
    (h, seen)
}

fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// (stream, data) of a combined frame.
fn unwrap(t: &str) -> Option<(String, Value)> {
    let v: Value = serde_json::from_str(t).ok()?;
    Some((v.get("stream")?.as_str()?.to_string(), v.get("data")?.clone()))
}

fn count_streams(texts: &[(Instant, String)]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for (_, t) in texts {
        if let Some((s, _)) = unwrap(t) {
            *m.entry(s).or_insert(0) += 1;
        }
    }
    m
}

/// rusto's own parser and book, synced from a snapshot and diffs exactly as the live client will.
struct ClientBook {
    parser: Parser,
    books: std::collections::HashMap<SymbolId, Book>,
    out: Vec<MarketEvent>,
}

impl ClientBook {
    fn new(exchange_info: &str) -> ClientBook {
        let specs = parse_exchange_info(exchange_info.as_bytes()).expect("exchangeInfo parses with rusto");
        ClientBook {
            parser: Parser::new(SymbolTable::new(64, specs), DEFAULT_MAX_FRAME_BYTES),
            books: Default::default(),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, frame: &str, snapshot_symbol: Option<&str>) {
        let meta = FrameMeta {
            local_ts_ns: 0,
            stamp_ns: 0,
            snapshot_symbol: snapshot_symbol.and_then(|s| SymbolName::new(s.as_bytes())),
        };
        self.out.clear();
        self.parser.parse_frame(frame.as_bytes(), &meta, &mut self.out).expect("frame parses with rusto");
        for e in &self.out {
            if matches!(e.kind, EventKind::Depth | EventKind::Snapshot | EventKind::Levels) {
                self.books.entry(e.symbol).or_insert_with(|| Book::new(BookConfig::default())).on_event(e);
            }
        }
    }

    fn book(&self, name: &str) -> &Book {
        let id = self.parser.symbols().find(&SymbolName::new(name.as_bytes()).unwrap()).expect("symbol seen");
        &self.books[&id]
    }
}

fn ids(d: &Value) -> (i64, i64, i64) {
    (d["U"].as_i64().unwrap(), d["u"].as_i64().unwrap(), d["pu"].as_i64().unwrap())
}

#[test]
fn routes_rest_sync_and_subscribe_over_tls() {
    let mut ex = Exchange::start(true, &["--speed", "4"]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut market = ex.ws("/market/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@markPrice@1s/btcusdt@depth@0ms/btcusdt@bookTicker");
    send(&mut market, json!({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 7}));
    send(&mut market, json!({"method": "LIST_SUBSCRIPTIONS", "id": 8}));
    let (hm, market) = collect(market, stop.clone());
    let (hp, public) = collect(
        ex.ws("/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@trade/btcusdt@depth@100ms"),
        stop.clone(),
    );
    let (hr, raw) = collect(ex.ws("/public/ws/btcusdt@bookTicker"), stop.clone());

    // REST while the streams run.
    let info = ex.get("/fapi/v1/exchangeInfo");
    assert_eq!(info.status, 200);
    assert!(info.header("X-MBX-USED-WEIGHT-1M").is_some());
    assert!(info.header("Content-Type").unwrap().starts_with("application/json"));
    let specs = parse_exchange_info(info.body.as_bytes()).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].name.as_str(), "BTCUSDT");
    assert_eq!(specs[0].tick, rusto::types::Scale { dec: 2, unit: 10 }, "tickSize 0.10");
    assert_eq!(specs[0].step, rusto::types::Scale { dec: 3, unit: 1 }, "stepSize 0.001");
    let v: Value = serde_json::from_str(&info.body).unwrap();
    let s = &v["symbols"][0];
    assert_eq!(
        (s["contractType"].as_str(), s["status"].as_str(), s["quoteAsset"].as_str()),
        (Some("PERPETUAL"), Some("TRADING"), Some("USDT"))
    );
    assert_eq!(ex.get("/fapi/v1/ping").body, "{}");
    let t: Value = serde_json::from_str(&ex.get("/fapi/v1/time").body).unwrap();
    assert!(t["serverTime"].as_i64().unwrap() > 1_600_000_000_000);

    // Snapshot after the depth stream has started.
    std::thread::sleep(Duration::from_millis(800));
    let snap = ex.get("/fapi/v1/depth?symbol=BTCUSDT&limit=1000");
    let snap_at = Instant::now();
    assert_eq!(snap.status, 200);
    assert_eq!(snap.header("X-MBX-USED-WEIGHT-1M").map(|w| w.parse::<u64>().unwrap() >= 20), Some(true));
    let sv: Value = serde_json::from_str(&snap.body).unwrap();
    let last_update_id = sv["lastUpdateId"].as_i64().unwrap();
    assert!(sv["bids"].as_array().unwrap().len() > 100 && sv["asks"].as_array().unwrap().len() > 100);
    assert!(sv["E"].as_i64().is_some() && sv["T"].as_i64().is_some());
    assert_eq!(ex.get("/fapi/v1/depth?symbol=NOPEUSDT").status, 400);

    std::thread::sleep(Duration::from_millis(2500));
    let tickers = ex.get("/fapi/v1/ticker/24hr");
    let tv: Value = serde_json::from_str(&tickers.body).unwrap();
    let btc = tv.as_array().unwrap().iter().find(|x| x["symbol"] == "BTCUSDT").unwrap();
    assert!(btc["lastPrice"].as_str().unwrap().parse::<f64>().unwrap() > 1000.0);
    assert!(btc["quoteVolume"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    assert!(btc["volume"].as_str().unwrap().parse::<f64>().is_ok());
    stop.store(true, Ordering::Relaxed);
    let (_m, _p, _r) = (hm.join().unwrap(), hp.join().unwrap(), hr.join().unwrap());

    // Routes: market data only on /market, book data only on /public.
    let m = market.lock().unwrap();
    let mc = count_streams(&m.texts);
    for s in ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@markPrice@1s"] {
        assert!(mc.get(s).copied().unwrap_or(0) > 0, "{s} on /market: {mc:?}");
    }
    assert!(!mc.contains_key("btcusdt@depth@0ms") && !mc.contains_key("btcusdt@bookTicker"), "{mc:?}");
    let replies: Vec<Value> = m
        .texts
        .iter()
        .filter_map(|(_, t)| serde_json::from_str::<Value>(t).ok())
        .filter(|v| v.get("id").is_some())
        .collect();
    assert!(replies.contains(&json!({"result": null, "id": 7})), "{replies:?}");
    let list = replies.iter().find(|r| r["id"] == 8).expect("LIST_SUBSCRIPTIONS reply");
    assert!(list["result"].as_array().unwrap().contains(&json!("btcusdt@markPrice")), "{list}");
    // Derived aggTrades: one per market trade, consecutive ids, f = l = the trade id.
    let aggs: Vec<Value> = m
        .texts
        .iter()
        .filter_map(|(_, t)| unwrap(t))
        .filter(|(s, _)| s == "btcusdt@aggTrade")
        .map(|(_, d)| d)
        .collect();
    for w in aggs.windows(2) {
        assert_eq!(w[1]["a"].as_i64().unwrap(), w[0]["a"].as_i64().unwrap() + 1);
    }
    assert!(aggs.iter().all(|a| a["e"] == "aggTrade" && a["f"] == a["l"]));

    let p = public.lock().unwrap();
    let pc = count_streams(&p.texts);
    assert!(pc.get("btcusdt@depth@0ms").copied().unwrap_or(0) > 50, "{pc:?}");
    assert!(pc.get("btcusdt@depth@100ms").copied().unwrap_or(0) > 5, "{pc:?}");
    assert!(pc.get("btcusdt@bookTicker").copied().unwrap_or(0) > 50, "{pc:?}");
    assert!(!pc.contains_key("btcusdt@trade"), "trade must not arrive on /public: {pc:?}");

    // Raw mode: unwrapped payloads.
    let r = raw.lock().unwrap();
    assert!(r.texts.len() > 50);
    for (_, t) in &r.texts {
        let v: Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["e"], "bookTicker");
        assert!(v.get("stream").is_none());
    }

    // Sync: U <= lastUpdateId <= u on one diff, then pu == previous u; rusto's book agrees (no gap, not crossed).
    let diffs: Vec<(Instant, Value)> = p
        .texts
        .iter()
        .filter_map(|(at, t)| unwrap(t).filter(|(s, _)| s == "btcusdt@depth@0ms").map(|(_, d)| (*at, d)))
        .collect();
    let bridge = diffs
        .iter()
        .position(|(_, d)| {
            let (uu, u, _) = ids(d);
            uu <= last_update_id && last_update_id <= u
        })
        .expect("a diff bridges the snapshot's lastUpdateId");
    for w in diffs[bridge..].windows(2) {
        assert_eq!(ids(&w[1].1).2, ids(&w[0].1).1, "pu == previous u");
    }
    let mut cb = ClientBook::new(&info.body);
    let mut fed_snapshot = false;
    for (at, t) in p.texts.iter() {
        if !fed_snapshot && *at > snap_at {
            cb.feed(&snap.body, Some("BTCUSDT"));
            fed_snapshot = true;
        }
        if unwrap(t).is_some_and(|(s, _)| s == "btcusdt@depth@0ms") {
            cb.feed(t, None);
        }
    }
    let book = cb.book("BTCUSDT");
    assert!(book.is_synced(), "{:?}", book.stats);
    assert_eq!((book.stats.gaps, book.stats.crossed, book.stats.stale_snapshots), (0, 0, 0), "{:?}", book.stats);
    assert!(book.stats.depth_applied > 50);
    drop((m, p, r));

    let st = ex.stop();
    assert_eq!(st["final"], true);
    assert_eq!(st["snapshots"], 1);
    assert!(st["trades"].as_u64().unwrap() > 0 && st["depth"].as_u64().unwrap() > 0);
    assert_eq!(st["sent"]["trade"], st["sent_by_symbol"]["BTCUSDT"]["trade"]);
}

#[test]
fn loops_stay_continuous_and_monotonic() {
    // The first sample file alone is 100 s: at speed 50 a loop lasts 2 s.
    let stats_dir = std::env::temp_dir().join(format!("rusto-exchange-smoke-loops-{}", std::process::id()));
    std::fs::create_dir_all(&stats_dir).unwrap();
    let stats_file = stats_dir.join("stats.json");
    let mut ex = Exchange::start(
        false,
        &[
            "--recording",
            "data/sample/btcusdt_20230404.dat.gz",
            "--speed",
            "50",
            "--stats-out",
            stats_file.to_str().unwrap(),
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (hm, market) = collect(ex.ws("/market/stream?streams=btcusdt@trade/btcusdt@aggTrade"), stop.clone());
    let (hp, public) =
        collect(ex.ws("/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker/btcusdt@depth"), stop.clone());
    let info = ex.get("/fapi/v1/exchangeInfo").body;
    std::thread::sleep(Duration::from_millis(300));
    let snap = ex.get("/fapi/v1/depth?symbol=BTCUSDT&limit=1000").body;
    let snap_at = Instant::now();
    // Two loop boundaries (at ≈ 2 s and ≈ 4 s at full pace; a loaded machine may take longer).
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let loops = std::fs::read(&stats_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["loops"].as_u64())
            .unwrap_or(0);
        if loops >= 3 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (_m, _p) = (hm.join().unwrap(), hp.join().unwrap());
    let stats = ex.stop();
    let _ = std::fs::remove_dir_all(&stats_dir);
    assert!(stats["loops"].as_u64().unwrap() >= 3, "at least two loop boundaries crossed: {stats}");

    let m = market.lock().unwrap();
    let (mut trades, mut aggs) = (Vec::new(), Vec::new());
    for (_, t) in &m.texts {
        let (s, d) = unwrap(t).unwrap();
        match s.as_str() {
            "btcusdt@trade" => trades.push(d),
            "btcusdt@aggTrade" => aggs.push(d),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(trades.len() > 2197, "more than one loop of trades: {}", trades.len());
    for w in trades.windows(2) {
        assert_eq!(w[1]["t"].as_i64().unwrap(), w[0]["t"].as_i64().unwrap() + 1, "trade ids consecutive");
        assert!(w[1]["T"].as_i64().unwrap() >= w[0]["T"].as_i64().unwrap(), "trade time monotonic");
    }
    for w in aggs.windows(2) {
        assert_eq!(w[1]["a"].as_i64().unwrap(), w[0]["a"].as_i64().unwrap() + 1, "aggregate ids consecutive");
    }

    let p = public.lock().unwrap();
    let mut cb = ClientBook::new(&info);
    let mut fed = false;
    let (mut last_bt_u, mut prev_agg_u, mut depth_e) = (0i64, None::<i64>, 0i64);
    for (at, t) in &p.texts {
        if !fed && *at > snap_at {
            cb.feed(&snap, Some("BTCUSDT"));
            fed = true;
        }
        let (s, d) = unwrap(t).unwrap();
        match s.as_str() {
            "btcusdt@depth@0ms" => {
                let e = d["E"].as_i64().unwrap();
                assert!(e >= depth_e, "depth E monotonic");
                depth_e = e;
                cb.feed(t, None);
            }
            "btcusdt@depth" => {
                let (_, u, pu) = ids(&d);
                if let Some(prev) = prev_agg_u {
                    assert_eq!(pu, prev, "aggregated @depth stream: pu == previous u");
                }
                prev_agg_u = Some(u);
            }
            "btcusdt@bookTicker" => {
                let u = d["u"].as_i64().unwrap();
                assert!(u >= last_bt_u, "bookTicker u monotonic");
                last_bt_u = u;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let book = cb.book("BTCUSDT");
    assert!(book.is_synced(), "{:?}", book.stats);
    assert_eq!(
        (book.stats.gaps, book.stats.crossed),
        (0, 0),
        "loop boundaries keep the book continuous: {:?}",
        book.stats
    );
    assert_eq!(book.stats.resyncs, 1);
}

#[test]
fn faults_rate_limit_pings_and_stats() {
    let mut ex = Exchange::start(
        false,
        &[
            "--speed",
            "3",
            "--fault-after-secs",
            "2",
            "--skip-depth",
            "3",
            "--malformed",
            "--oversize-frame",
            "100000",
            "--rest-429",
            "2",
            "--rest-418",
            "1",
            "--ping-secs",
            "1",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (hp, public) = collect(ex.ws("/public/stream?streams=btcusdt@depth@0ms"), stop.clone());
    let (hm, market) = collect(ex.ws("/market/ws/btcusdt@trade"), stop.clone());
    assert_eq!(ex.get("/fapi/v1/ping").status, 200);

    // More than 10 messages in a second: closed.
    let mut chatty = ex.ws("/market/ws");
    for i in 0..12 {
        if chatty.send(Message::text(json!({"method": "LIST_SUBSCRIPTIONS", "id": i}).to_string())).is_err() {
            break;
        }
    }
    let (hc, chatty) = collect(chatty, stop.clone());

    std::thread::sleep(Duration::from_millis(2600));
    let rest: Vec<HttpResponse> = (0..4).map(|_| ex.get("/fapi/v1/time")).collect();
    assert_eq!(rest.iter().map(|r| r.status).collect::<Vec<_>>(), [418, 429, 429, 200]);
    assert!(rest[..3].iter().all(|r| r.header("Retry-After") == Some("1")));
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let (_p, _m) = (hp.join().unwrap(), hm.join().unwrap());
    let _ = hc.join();

    let c = chatty.lock().unwrap();
    assert!(c.closed.is_some(), "the chatty connection is closed");
    let p = public.lock().unwrap();
    assert!(p.pings >= 2, "server pings every second: {}", p.pings);
    let mut gap = false;
    let mut prev_u: Option<i64> = None;
    let (mut not_json, mut truncated, mut unknown, mut big) = (0, 0, 0, 0);
    for (_, t) in &p.texts {
        if t.len() == 100_000 {
            big += 1;
        }
        match serde_json::from_str::<Value>(t) {
            Err(_) if t.starts_with('{') => truncated += 1,
            Err(_) => not_json += 1,
            Ok(v) => {
                let d = &v["data"];
                match d["e"].as_str() {
                    Some("depthUpdate") => {
                        let (_, u, pu) = ids(d);
                        if prev_u.is_some_and(|p| p != pu) {
                            gap = true;
                        }
                        prev_u = Some(u);
                    }
                    Some("rustoUnknownEvent") => unknown += 1,
                    _ => {}
                }
            }
        }
    }
    assert!(gap, "--skip-depth makes a pu gap");
    assert_eq!((not_json, truncated, unknown, big), (1, 1, 1, 1), "malformed and oversize frames");
    let m = market.lock().unwrap();
    assert!(m.texts.iter().any(|(_, t)| t.starts_with(r#"{"e":"trade""#)), "raw-mode trades");
    assert!(m.texts.iter().any(|(_, t)| t.contains("rustoUnknownEvent") && !t.contains("\"stream\"")));

    let st = ex.stop();
    assert_eq!(st["connections"]["ws_closed"]["rate_limit"], 1, "{st}");
    assert_eq!(st["rest"]["status_429"], 2);
    assert_eq!(st["rest"]["status_418"], 1);
    assert!(st["depth_skipped"].as_u64().unwrap() >= 3);
    assert!(st["malformed"].as_u64().unwrap() >= 6 && st["oversize"].as_u64().unwrap() >= 2, "{st}");
    assert!(st["pongs"].as_u64().unwrap() >= 2, "{st}");
}

#[test]
fn synthetic_market_syncs_and_drop_fault_closes() {
    let mut ex = Exchange::start(
        true,
        &["--synthetic", "3", "--seed", "7", "--fault-after-secs", "3", "--drop-connections", "--speed", "2"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (hp, public) = collect(
        ex.ws("/public/stream?streams=sym0usdt@depth@0ms/sym1usdt@depth@0ms/sym0usdt@bookTicker"),
        stop.clone(),
    );
    let (hm, market) = collect(ex.ws("/market/stream?streams=sym2usdt@aggTrade/sym2usdt@markPrice@1s"), stop.clone());
    let info = ex.get("/fapi/v1/exchangeInfo").body;
    std::thread::sleep(Duration::from_millis(300));
    let snaps: Vec<(String, Instant)> = ["SYM0USDT", "SYM1USDT"]
        .iter()
        .map(|s| (ex.get(&format!("/fapi/v1/depth?symbol={s}&limit=1000")).body, Instant::now()))
        .collect();
    // The drop fault fires at 3 s: both connections end without a close frame.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(hp.is_finished() && hm.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let (_p, _m) = (hp.join().unwrap(), hm.join().unwrap());
    let p = public.lock().unwrap();
    assert!(p.closed.as_deref().is_some_and(|c| !c.starts_with("close frame")), "{:?}", p.closed);

    let mut cb = ClientBook::new(&info);
    let mut fed = [false, false];
    let mut audited = 0;
    for (at, t) in &p.texts {
        for (i, (body, sat)) in snaps.iter().enumerate() {
            if !fed[i] && at > sat {
                cb.feed(body, Some(["SYM0USDT", "SYM1USDT"][i]));
                fed[i] = true;
            }
        }
        let (s, d) = unwrap(t).unwrap();
        if s.ends_with("@bookTicker") {
            // The bookTicker carries the book's last u: when ours matches, the tops agree.
            let b = cb.book("SYM0USDT");
            if b.is_synced() && d["u"].as_u64() == Some(b.last_update_id()) {
                let (bid, ask) = b.top();
                let scale = rusto::types::Scale::decimals(1);
                assert_eq!(scale.to_string(bid.unwrap().px), d["b"].as_str().unwrap());
                assert_eq!(scale.to_string(ask.unwrap().px), d["a"].as_str().unwrap());
                audited += 1;
            }
        } else {
            cb.feed(t, None);
        }
    }
    for s in ["SYM0USDT", "SYM1USDT"] {
        let b = cb.book(s);
        assert!(b.is_synced(), "{s}: {:?}", b.stats);
        assert_eq!((b.stats.gaps, b.stats.crossed), (0, 0), "{s}: {:?}", b.stats);
        assert!(b.stats.depth_applied > 50, "{s}: {:?}", b.stats);
    }
    assert!(audited > 10, "bookTickers audited against the book: {audited}");
    let m = market.lock().unwrap();
    let mc = count_streams(&m.texts);
    assert!(mc.get("sym2usdt@aggTrade").copied().unwrap_or(0) > 20, "{mc:?}");
    assert!(mc.get("sym2usdt@markPrice@1s").copied().unwrap_or(0) >= 3, "{mc:?}");
    let st = ex.stop();
    assert_eq!(st["connections"]["ws_closed"]["fault_drop"], 2, "{st}");
    assert_eq!(st["aggTrades"], st["sent_by_symbol"]["SYM2USDT"]["aggTrade"]);
}

/// Throughput: frames per second one client receives from a fast replay (not part of the normal run:
/// `cargo test -p rusto-exchange --test smoke -- --ignored --nocapture throughput`).
#[test]
#[ignore]
fn throughput() {
    let tls = std::env::var("EXCHANGE_BENCH_TLS").is_ok_and(|v| v == "1");
    let speed = std::env::var("EXCHANGE_BENCH_SPEED").unwrap_or_else(|_| "1000".into());
    let mut ex = Exchange::start(tls, &["--speed", &speed]);
    let stop = Arc::new(AtomicBool::new(false));
    let (hm, market) =
        collect(ex.ws("/market/stream?streams=btcusdt@trade/btcusdt@aggTrade/btcusdt@markPrice@1s"), stop.clone());
    let (hp, public) = collect(ex.ws("/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker"), stop.clone());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let (_m, _p) = (hm.join().unwrap(), hp.join().unwrap());
    let (m, p) = (market.lock().unwrap().texts.len(), public.lock().unwrap().texts.len());
    let st = ex.stop();
    println!(
        "tls={tls} speed={speed}: received {} frames in {secs:.1}s = {:.0} frames/s ({} bytes sent by the exchange, {} loops)",
        m + p,
        (m + p) as f64 / secs,
        st["sent_bytes"],
        st["loops"]
    );
}

/// Reads raw websocket frames from a client that never answers pings, until a close frame: (seconds, close code).
fn silent_client_until_close(port: u16) -> (f64, u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    write!(
        s,
        "GET /public/ws/btcusdt@bookTicker HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let t0 = Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut upgraded = false;
    while t0.elapsed() < Duration::from_secs(10) {
        match s.read(&mut chunk) {
            Ok(0) => panic!("EOF without a close frame"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        if !upgraded {
            let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
            assert!(buf.starts_with(b"HTTP/1.1 101"));
            buf.drain(..h + 4);
            upgraded = true;
        }
        // Server frames are unmasked: opcode, 7/16/64-bit length, payload.
        while buf.len() >= 2 {
            let (op, l7) = (buf[0] & 15, (buf[1] & 127) as usize);
            let (len, off) = match l7 {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
                126 | 127 => break,
                n => (n, 2),
            };
            if buf.len() < off + len {
                break;
            }
            if op == 8 {
                return (t0.elapsed().as_secs_f64(), u16::from_be_bytes([buf[off], buf[off + 1]]));
            }
            buf.drain(..off + len);
        }
    }
    panic!("no close frame within 10 s");
}

#[test]
fn pong_timeout_and_connection_lifetime() {
    let mut ex = Exchange::start(
        false,
        &["--ping-secs", "0.5", "--pong-timeout-secs", "1.5", "--max-conn-secs", "3", "--speed", "2"],
    );
    let stop = Arc::new(AtomicBool::new(false));
    // tungstenite answers every ping: this one lives until the 3 s lifetime.
    let (h, polite) = collect(ex.ws("/public/stream?streams=btcusdt@bookTicker"), stop.clone());
    let (secs, code) = silent_client_until_close(ex.port);
    assert_eq!(code, 1008, "policy close for the missing pongs");
    assert!((1.3..2.8).contains(&secs), "closed after the pong timeout: {secs}");
    let _ = h.join();
    let p = polite.lock().unwrap();
    assert!(p.closed.as_deref().is_some_and(|c| c.contains("Normal")), "{:?}", p.closed);
    assert!(p.pings >= 3);
    let st = ex.stop();
    assert_eq!(st["connections"]["ws_closed"]["pong_timeout"], 1, "{st}");
    assert_eq!(st["connections"]["ws_closed"]["max_age"], 1, "{st}");
}

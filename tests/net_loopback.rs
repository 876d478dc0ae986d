//! The network thread over loopback against a minimal websocket server (tungstenite, plain `ws://`):
//! - hundreds of fast rotations (a successor connection per rotation, the predecessor retired once the successor
//!   delivers) keep the connection table bounded, because retired slots (and their mio tokens) are reused;
//! - when the compute thread (the ring's consumer) is gone, the network thread counts it and stops by itself.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusto::handoff::ring;
use rusto::handoff::{FullPolicy, Publisher};
use rusto::ingest::Parser;
use rusto::ingest::{ConnectionPolicy, Endpoint, Net, NetConfig, NetInbox};
use rusto::types::MarketEvent;
use rusto::types::SymbolTable;

const TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"a":1,"s":"BTCUSDT","p":"1.0","q":"1","f":1,"l":1,"T":1,"m":false}}"#;

/// Accepts websocket clients on a loopback port; each is sent a trade every few milliseconds until it goes away.
fn serve(accepted: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            accepted.fetch_add(1, Ordering::Relaxed);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(tcp) else { return };
                while !stop.load(Ordering::Relaxed) && ws.send(tungstenite::Message::text(TRADE)).is_ok() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
    });
    port
}

fn config(port: u16) -> NetConfig {
    NetConfig {
        endpoint: Endpoint::parse(&format!("ws://127.0.0.1:{port}")).unwrap(),
        market_path: "/market".into(),
        public_path: "/public".into(),
        max_frame_bytes: 1 << 16,
        policy: ConnectionPolicy {
            reconnect_ms_min: 10,
            reconnect_ms_max: 50,
            max_reconnects: 1000,
            reconnect_window_s: 60,
            // Rotate as soon as a connection is open: every successor replaces its predecessor at once.
            rotate_after_s: 0,
            control_msgs_per_s: 10,
            handshake_timeout_ms: 10_000,
        },
        max_reads_per_wake: 16,
    }
}

#[test]
fn hundreds_of_rotations_keep_the_connection_table_bounded() {
    const ROTATIONS: usize = 300;
    let (accepted, server_stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let port = serve(accepted.clone(), server_stop.clone());
    let (mut net, waker) = Net::new(config(port), None, vec!["btcusdt@aggTrade".into()], vec![]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let net_stop = stop.clone();
    let net_thread = std::thread::spawn(move || {
        let mut parser = Parser::new(SymbolTable::new(16, vec![]), 1 << 16);
        let (tx, rx) = ring::<MarketEvent>(1 << 12);
        let mut publisher = Publisher::new(tx, FullPolicy::DropAndResync, 16);
        let inbox = NetInbox::new(16, waker);
        let r = net.run(&mut parser, &mut publisher, &net_stop, &inbox, None);
        drop(rx);
        (net, r)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.load(Ordering::Relaxed) < ROTATIONS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let (net, r) = net_thread.join().unwrap();
    server_stop.store(true, Ordering::Relaxed);
    r.unwrap();
    let rotations = net.stats.rotations as usize;
    assert!(
        rotations + 1 >= ROTATIONS,
        "only {rotations} rotations ({} connections accepted)",
        accepted.load(Ordering::Relaxed)
    );
    assert_eq!(net.stats.disconnects, 0, "a rotation is not a disconnect: {}", net.stats.last_error);
    // One route: the current connection, its successor, and a predecessor in its grace period (plus one in flight).
    assert!(net.conn_slots() <= 4, "{} connection slots after {rotations} rotations", net.conn_slots());
    // ... and never had more at any moment (the high-water mark the live summary and the soak report).
    let most = net.stats.conn_slots_max;
    assert!((2..=4).contains(&most), "{most} slots at most after {rotations} rotations");
    assert!(net.live_conns() <= 3, "{} live connections", net.live_conns());
    // Every text frame is stamped once in each per-frame stage, with three clock reads each; every read that
    // returned data in tls_decrypt (0 here: plain ws), and socket_read at most once per readiness event.
    let (f, st) = (net.stats.frames, &net.stages);
    assert!(f > 0, "no frame received");
    for s in [&st.frame.ws_frame, &st.frame.parse, &st.frame.enqueue] {
        assert_eq!(s.hist.len(), f, "{}", s.name);
    }
    assert_eq!(st.frame.clock_reads, 3 * f);
    assert!(st.socket_read.hist.len() <= st.tls_decrypt.hist.len() && !st.tls_decrypt.hist.is_empty());
    assert!(st.clock_reads >= st.tls_decrypt.hist.len(), "one clock read per read at least");
}

#[test]
fn the_network_thread_stops_by_itself_when_the_consumer_is_gone() {
    let (accepted, server_stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let port = serve(accepted, server_stop.clone());
    let mut cfg = config(port);
    cfg.policy.rotate_after_s = 3600;
    let (mut net, waker) = Net::new(cfg, None, vec!["btcusdt@aggTrade".into()], vec![]).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let net_stop = stop.clone();
    std::thread::spawn(move || {
        let mut parser = Parser::new(SymbolTable::new(16, vec![]), 1 << 16);
        let (tx, rx) = ring::<MarketEvent>(4);
        drop(rx);
        let mut publisher = Publisher::new(tx, FullPolicy::DropAndResync, 16);
        let inbox = NetInbox::new(16, waker);
        let r = net.run(&mut parser, &mut publisher, &net_stop, &inbox, None);
        let _ = done_tx.send((net.stats.clone(), r.is_ok()));
    });
    let got = done_rx.recv_timeout(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    server_stop.store(true, Ordering::Relaxed);
    let (stats, ok) = got.expect("the network thread kept running with nobody reading its ring");
    assert!(ok, "a gone consumer is a clean stop");
    assert!(stats.frames_undelivered >= 1, "{stats:?}");
}

/// Accepts one websocket client, sends it `frames` trades as fast as the socket takes them, then shuts its side
/// down (FIN after the last byte) and keeps the socket open (no reset). Later clients get nothing.
fn serve_burst_then_fin(frames: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (k, tcp) in listener.incoming().enumerate() {
            let Ok(tcp) = tcp else { continue };
            let Ok(mut ws) = tungstenite::accept(tcp) else { continue };
            if k == 0 {
                for _ in 0..frames {
                    ws.write(tungstenite::Message::text(TRADE)).unwrap();
                }
                ws.flush().unwrap();
                ws.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
            }
            held.push(ws);
        }
    });
    port
}

#[test]
fn bytes_waiting_when_the_read_bound_is_reached_are_read_up_to_the_peers_fin() {
    // One read per readiness event of at most ~68 KiB (a 4 KiB frame limit), megabytes sent at once, then the
    // FIN: the last readiness event comes with far more waiting than one read takes. mio is edge-triggered, so
    // what the bounded read left behind must be read on the next turns (it used to stay unread, with the FIN, until
    // the connection was dropped: frames the server had sent, lost without a count).
    const FRAMES: usize = 20_000;
    let port = serve_burst_then_fin(FRAMES);
    let mut cfg = config(port);
    cfg.policy.rotate_after_s = 3600;
    cfg.policy.reconnect_ms_min = 1000;
    cfg.policy.reconnect_ms_max = 1000;
    cfg.max_frame_bytes = 4096;
    cfg.max_reads_per_wake = 1;
    let (mut net, waker) = Net::new(cfg, None, vec!["btcusdt@aggTrade".into()], vec![]).unwrap();
    let progress = net.progress.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let net_stop = stop.clone();
    let net_thread = std::thread::spawn(move || {
        let mut parser = Parser::new(SymbolTable::new(16, vec![]), 4096);
        let (tx, rx) = ring::<MarketEvent>(1 << 16);
        let mut publisher = Publisher::new(tx, FullPolicy::DropAndResync, 16);
        let inbox = NetInbox::new(16, waker);
        let r = net.run(&mut parser, &mut publisher, &net_stop, &inbox, None);
        drop(rx);
        (net, r)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while progress.load(Ordering::Relaxed) < FRAMES as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The FIN after the last frame is read too: one disconnect.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (net, r) = net_thread.join().unwrap();
    r.unwrap();
    assert_eq!(net.stats.frames, FRAMES as u64, "frames the server sent before its FIN, all read");
    assert_eq!(net.stats.disconnects, 1, "the FIN is seen: {}", net.stats.last_error);
}

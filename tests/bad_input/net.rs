//! Bad input, net cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).
//!
//! Hostile peers on loopback (a plain `std::net::TcpListener`), against the network thread itself: one that
//! accepts TCP and never answers, one that answers garbage instead of TLS, one that answers an HTTP status other
//! than 101. Each attempt must end (a handshake deadline, or the parse failing at once), be counted, and be retried
//! with the backoff; before issue 14 a silent peer held the connection in its handshake forever.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rusto::handoff::ring;
use rusto::handoff::{FullPolicy, Publisher};
use rusto::ingest::{ConnectionPolicy, Endpoint, Net, NetConfig, NetInbox, Parser};
use rusto::types::{MarketEvent, SymbolTable};

/// What a hostile peer does with each connection it accepts (it keeps every socket open until the test ends).
#[derive(Clone, Copy)]
enum Peer {
    /// Nothing: no byte is ever sent.
    Silent,
    /// Sends these bytes once.
    Says(&'static [u8]),
}

/// Listens on a loopback port; returns the port and the count of connections accepted.
fn hostile(peer: Peer) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { continue };
            count.fetch_add(1, Ordering::Relaxed);
            if let Peer::Says(bytes) = peer {
                let _ = tcp.write_all(bytes); // The client may already be gone: nothing to check.
            }
            held.push(tcp);
        }
    });
    (port, accepted)
}

/// A TLS client configuration that trusts nothing (no handshake here ever gets as far as the certificate).
fn tls() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Arc::new(cfg)
}

/// What a run of the network thread left: (handshake timeouts, disconnects, connects, last error).
type Outcome = (u64, u64, u64, String);

/// Runs the network thread on one market connection to `url` for `run`, with a `timeout_ms` handshake deadline.
fn run_net(url: &str, tls_cfg: Option<Arc<rustls::ClientConfig>>, timeout_ms: u64, run: Duration) -> Outcome {
    let cfg = NetConfig {
        endpoint: Endpoint::parse(url).unwrap(),
        market_path: "/market".into(),
        public_path: "/public".into(),
        max_frame_bytes: 1 << 16,
        policy: ConnectionPolicy {
            reconnect_ms_min: 20,
            reconnect_ms_max: 40,
            max_reconnects: 1000,
            reconnect_window_s: 60,
            rotate_after_s: 3600,
            control_msgs_per_s: 5,
            handshake_timeout_ms: timeout_ms,
        },
        max_reads_per_wake: 16,
    };
    let (mut net, waker) = Net::new(cfg, tls_cfg, vec!["btcusdt@trade".into()], vec![]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let net_stop = stop.clone();
    let h = std::thread::spawn(move || {
        let mut parser = Parser::new(SymbolTable::new(8, vec![]), 1 << 16);
        let (tx, _rx) = ring::<MarketEvent>(1 << 10);
        let mut publisher = Publisher::new(tx, FullPolicy::DropAndResync, 8);
        let inbox = NetInbox::new(8, waker);
        let r = net.run(&mut parser, &mut publisher, &net_stop, &inbox, None);
        (net, r)
    });
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    let (net, r) = h.join().unwrap();
    r.unwrap();
    let s = &net.stats;
    (s.handshake_timeouts, s.disconnects, s.connects, s.last_error.clone())
}

#[test]
fn a_peer_that_accepts_tcp_and_never_answers_times_out_in_the_tls_handshake_and_is_retried() {
    let (port, accepted) = hostile(Peer::Silent);
    let (timeouts, disconnects, connects, last) =
        run_net(&format!("wss://127.0.0.1:{port}"), Some(tls()), 200, Duration::from_millis(1500));
    // Each attempt: 200 ms, then a 15–50 ms backoff: 5 or 6 in 1.5 s; at least 3 on a loaded machine.
    assert!(timeouts >= 3, "{timeouts} timeouts: {last}");
    assert_eq!(disconnects, timeouts, "every failure was the deadline: {last}");
    assert_eq!(connects, 0);
    assert_eq!(
        last,
        format!(
            "market: TLS handshake timed out after 200 ms (wss://127.0.0.1:{port}/market/stream?streams=btcusdt@trade)"
        )
    );
    assert!(accepted.load(Ordering::Relaxed) as u64 >= timeouts, "each timeout was followed by a new attempt");
}

#[test]
fn a_peer_that_accepts_tcp_and_never_answers_times_out_in_the_websocket_upgrade() {
    let (port, _) = hostile(Peer::Silent);
    let (timeouts, disconnects, connects, last) =
        run_net(&format!("ws://127.0.0.1:{port}"), None, 200, Duration::from_millis(1000));
    assert!(timeouts >= 2, "{timeouts} timeouts: {last}");
    assert_eq!((disconnects, connects), (timeouts, 0), "{last}");
    assert_eq!(
        last,
        format!(
            "market: websocket upgrade timed out after 200 ms (ws://127.0.0.1:{port}/market/stream?streams=btcusdt@trade)"
        )
    );
}

#[test]
fn a_peer_that_answers_garbage_instead_of_tls_fails_at_once_and_is_retried() {
    let (port, accepted) = hostile(Peer::Says(b"garbage, not a TLS record\r\n\r\n"));
    // A 10 s deadline: every failure here comes from the TLS parse, long before it.
    let (timeouts, disconnects, connects, last) =
        run_net(&format!("wss://127.0.0.1:{port}"), Some(tls()), 10_000, Duration::from_millis(800));
    assert_eq!(timeouts, 0, "{last}");
    assert!(disconnects >= 3, "{disconnects} disconnects: {last}");
    assert_eq!(connects, 0);
    assert!(last.starts_with("market: io: "), "{last}");
    assert!(accepted.load(Ordering::Relaxed) as u64 >= disconnects);
}

#[test]
fn a_peer_that_answers_an_http_status_other_than_101_is_refused_at_once() {
    let (port, _) = hostile(Peer::Says(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let (timeouts, disconnects, connects, last) =
        run_net(&format!("ws://127.0.0.1:{port}"), None, 10_000, Duration::from_millis(800));
    assert_eq!((timeouts, connects), (0, 0), "{last}");
    assert!(disconnects >= 3, "{disconnects} disconnects: {last}");
    assert_eq!(last, "market: websocket upgrade refused: HTTP/1.1 200 OK");
}

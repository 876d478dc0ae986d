//! A reconnect or a rotation allocates nothing large: each connection-table slot keeps its websocket buffers (the
//! `max_frame` read buffer and the reassembly buffer), and the slot's next connection reuses them. A counting
//! global allocator counts every allocation of at least `max_frame` bytes while the network thread connects,
//! rotates and reconnects dozens of times against a loopback server; the count must stay that of the slots (two
//! buffers per slot, allocated once), not grow with the connections (it used to be two per connection).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusto::handoff::ring;
use rusto::handoff::{FullPolicy, Publisher};
use rusto::ingest::Parser;
use rusto::ingest::{ConnectionPolicy, Endpoint, Net, NetConfig, NetInbox};
use rusto::types::MarketEvent;
use rusto::types::SymbolTable;

const MAX_FRAME: usize = 1 << 20;

struct Counting;

static LARGE: AtomicU64 = AtomicU64::new(0);
static LARGE_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if size >= MAX_FRAME {
        LARGE.fetch_add(1, Ordering::Relaxed);
        LARGE_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TRADE: &str = r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"a":1,"s":"BTCUSDT","p":"1.0","q":"1","f":1,"l":1,"T":1,"m":false}}"#;

/// Accepts websocket clients; each gets a trade every 2 ms until the client rotates it away, except every third
/// one, closed right after the upgrade (a disconnect and a reconnect).
fn serve(accepted: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let k = accepted.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(tcp) else { return };
                while k % 3 != 1 && ws.send(tungstenite::Message::text(TRADE)).is_ok() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
    });
    port
}

#[test]
fn reconnects_and_rotations_reuse_the_slots_buffers() {
    const CONNECTIONS: usize = 60;
    let accepted = Arc::new(AtomicUsize::new(0));
    let port = serve(accepted.clone());
    let cfg = NetConfig {
        endpoint: Endpoint::parse(&format!("ws://127.0.0.1:{port}")).unwrap(),
        market_path: "/market".into(),
        public_path: "/public".into(),
        max_frame_bytes: MAX_FRAME,
        policy: ConnectionPolicy {
            reconnect_ms_min: 10,
            reconnect_ms_max: 20,
            max_reconnects: 10_000,
            reconnect_window_s: 60,
            // Rotate as soon as a connection is open.
            rotate_after_s: 0,
            control_msgs_per_s: 10,
            handshake_timeout_ms: 10_000,
        },
        max_reads_per_wake: 16,
    };
    let parser = Parser::new(SymbolTable::new(16, vec![]), MAX_FRAME);
    let (tx, rx) = ring::<MarketEvent>(1 << 10);
    let publisher = Publisher::new(tx, FullPolicy::DropAndResync, 16);
    let before = LARGE.load(Ordering::Relaxed);
    let (mut net, waker) = Net::new(cfg, None, vec!["btcusdt@aggTrade".into()], vec![]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let net_stop = stop.clone();
    let net_thread = std::thread::spawn(move || {
        let (mut parser, mut publisher) = (parser, publisher);
        let inbox = NetInbox::new(16, waker);
        let r = net.run(&mut parser, &mut publisher, &net_stop, &inbox, None);
        (net, r)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.load(Ordering::Relaxed) < CONNECTIONS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let (net, r) = net_thread.join().unwrap();
    drop(rx);
    r.unwrap();
    let (large, bytes) = (LARGE.load(Ordering::Relaxed) - before, LARGE_BYTES.load(Ordering::Relaxed));
    let (connects, slots) = (net.stats.connects, net.stats.conn_slots_max);
    assert!(
        connects >= CONNECTIONS as u64 / 2,
        "only {connects} connections ({} accepted)",
        accepted.load(Ordering::Relaxed)
    );
    assert!(net.stats.disconnects >= 5 && net.stats.rotations >= 5, "{:?}", net.stats);
    // Two large buffers per slot (read and reassembly), allocated when the slot was created; none per connection.
    assert!(
        large <= 2 * slots,
        "{large} allocations of >= {MAX_FRAME} bytes ({bytes} bytes in all) for {connects} connections, \
         {} disconnects and {} rotations in {slots} slots",
        net.stats.disconnects,
        net.stats.rotations
    );
}

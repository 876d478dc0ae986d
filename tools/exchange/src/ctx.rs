//! State shared by the threads: options, hub, market, counters, clock, fault switches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::hub::Hub;
use crate::market::Market;
use crate::stats::Stats;

/// Serving options.
#[derive(Clone, Debug)]
pub struct ServeCfg {
    /// Server ping interval.
    pub ping_every: Duration,
    /// Close a connection that has not ponged for this long.
    pub pong_timeout: Duration,
    /// Close every connection after this long.
    pub max_conn: Duration,
    /// Incoming messages per second allowed per connection.
    pub max_msgs_per_sec: usize,
    /// Frames queued per connection before it is dropped as slow.
    pub send_queue: usize,
    /// A socket write blocked this long drops the connection.
    pub write_timeout: Duration,
    /// `--volumes` file.
    pub volumes: Option<PathBuf>,
    /// REST weight allowed per minute.
    pub weight_limit: u64,
}

/// Replay time ↔ wall time ↔ exchange time.
///
/// The replay position advances at `speed` × wall time (minus stalls) from `first_ts_ns`; exchange time (what
/// `E`, `T` and `serverTime` say) is the position plus `base_off_ms` plus the stall shift.
pub struct Clock {
    start: Instant,
    first_ts_ns: i64,
    speed: f64,
    base_off_ms: i64,
    stalled_ns: AtomicI64,
    stall_shift_ms: AtomicI64,
}

/// Wall clock, ms since the epoch.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Clock {
    /// A clock whose replay position starts at `first_ts_ns` now.
    pub fn new(first_ts_ns: i64, speed: f64, base_off_ms: i64) -> Clock {
        Clock {
            start: Instant::now(),
            first_ts_ns,
            speed,
            base_off_ms,
            stalled_ns: AtomicI64::new(0),
            stall_shift_ms: AtomicI64::new(0),
        }
    }

    /// Current replay position (recording time, ns).
    pub fn position_ns(&self) -> i64 {
        let run = self.start.elapsed().as_nanos() as i64 - self.stalled_ns.load(Relaxed);
        self.first_ts_ns + (run as f64 * self.speed) as i64
    }

    /// The instant at which the replay position reaches `ts_ns`.
    pub fn instant_of(&self, ts_ns: i64) -> Instant {
        let run = ((ts_ns - self.first_ts_ns) as f64 / self.speed).max(0.0) as u64;
        self.start + Duration::from_nanos(run + self.stalled_ns.load(Relaxed).max(0) as u64)
    }

    /// Added to every recorded timestamp (besides the loop shift).
    pub fn time_offset_ms(&self) -> i64 {
        self.base_off_ms + self.stall_shift_ms.load(Relaxed)
    }

    /// Exchange time now, ms.
    pub fn now_ms(&self) -> i64 {
        self.position_ns().div_euclid(1_000_000) + self.time_offset_ms()
    }

    /// Records a stall of `d` wall time: the replay position did not move, exchange time jumps by what it would
    /// have advanced.
    pub fn add_stall(&self, d: Duration) {
        self.stalled_ns.fetch_add(d.as_nanos() as i64, Relaxed);
        self.stall_shift_ms.fetch_add((d.as_secs_f64() * 1000.0 * self.speed) as i64, Relaxed);
    }
}

/// Fault switches set by the fault scheduler and read by the other threads.
#[derive(Default)]
pub struct Faults {
    /// REST requests still to answer with 429.
    pub rest_429: AtomicU64,
    /// REST requests still to answer with 418.
    pub rest_418: AtomicU64,
    /// Server pings stopped.
    pub stop_pinging: AtomicBool,
    /// A stall of this many ms is requested of the feed thread.
    pub stall_ms: AtomicU64,
}

/// Everything the threads share.
pub struct Ctx {
    /// Serving options.
    pub cfg: ServeCfg,
    /// Websocket connections.
    pub hub: Hub,
    /// Books and tickers.
    pub market: Mutex<Market>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Time.
    pub clock: Clock,
    /// TLS, unless `--plain`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Fault switches.
    pub faults: Faults,
    /// REST weight used in the current minute: (minute, weight).
    pub weight: Mutex<(i64, u64)>,
    /// exchangeInfo symbol entries given with `--exchange-info`, by symbol.
    pub exchange_info: Option<serde_json::Map<String, serde_json::Value>>,
    /// Set when the process is stopping.
    pub stop: AtomicBool,
    /// The order side: accounts, orders, user data stream.
    pub orders: crate::orders::Orders,
}

impl Ctx {
    /// The market, locked.
    pub fn market(&self) -> MutexGuard<'_, Market> {
        self.market.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True once a stop was requested.
    pub fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }
}

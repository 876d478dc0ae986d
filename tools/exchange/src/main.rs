//! rusto-exchange: a local Binance USDⓈ-M futures compatible exchange on loopback, for testing rusto's live path.
//!
//! One TCP port serves the routed websocket endpoints (`/market/…`, `/public/…`, combined and raw) and the REST
//! market-data endpoints, over TLS with a throw-away CA (or plain with `--plain`). Data comes from recordings
//! (looped with shifted timestamps and ids) or from a seeded synthetic market; faults can be injected on a
//! schedule. See tools/README.md.

mod conn;
mod ctx;
mod hub;
mod json;
mod market;
mod orders;
mod recording;
mod replay;
mod rest;
mod stats;
mod synthetic;
mod tls;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::ctx::{Clock, Ctx, Faults, ServeCfg, wall_ms};
use crate::hub::Hub;
use crate::market::Market;
use crate::stats::{CloseReason, Stats};

/// How recorded timestamps are presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TimeBase {
    /// Shift `E`/`T` so the replay starts at the current wall-clock time (exchange time ≈ wall time at speed 1).
    Now,
    /// Keep the recorded times (plus the loop shift).
    Recorded,
}

/// A local Binance USDⓈ-M futures compatible exchange (websocket + REST) on loopback.
#[derive(Parser, Debug)]
#[command(name = "rusto-exchange", version)]
struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve plain HTTP/ws instead of TLS.
    #[arg(long)]
    plain: bool,
    /// Where to write the CA certificate (PEM) that signs the server certificate (required with TLS).
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// Recordings to replay (default: the bundled data/sample BTCUSDT recording).
    #[arg(long, num_args = 1.., value_name = "FILE", conflicts_with = "synthetic")]
    recording: Vec<PathBuf>,
    /// Serve a seeded random-walk market of N symbols (SYM0USDT …) instead of a recording.
    #[arg(long, value_name = "N")]
    synthetic: Option<usize>,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replay speed (1 = real time by the recorded local timestamps).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Loops of the recording to serve, then stay up silent (0 = loop forever).
    #[arg(long, default_value_t = 0)]
    loops: u64,
    /// Timestamps: shifted to start now, or as recorded.
    #[arg(long, value_enum, default_value = "now")]
    time_base: TimeBase,
    /// JSON map {"BTCUSDT": "123.4", …} of 24 h quote volumes, re-read on every ticker request.
    #[arg(long, value_name = "FILE")]
    volumes: Option<PathBuf>,
    /// An exchangeInfo body whose entries for the served symbols are served verbatim.
    #[arg(long, value_name = "FILE")]
    exchange_info: Option<PathBuf>,
    /// Server ping interval, seconds.
    #[arg(long, default_value_t = 180.0)]
    ping_secs: f64,
    /// Close a websocket that has not ponged for this long, seconds.
    #[arg(long, default_value_t = 600.0)]
    pong_timeout_secs: f64,
    /// Close every websocket after this long, seconds.
    #[arg(long, default_value_t = 86400.0)]
    max_conn_secs: f64,
    /// Incoming websocket messages allowed per second per connection (more: the connection is closed).
    #[arg(long, default_value_t = 10)]
    max_msgs_per_sec: usize,
    /// Frames queued per websocket before it is dropped as a slow consumer.
    #[arg(long, default_value_t = 65536)]
    send_queue: usize,
    /// A socket write blocked this long drops the connection, seconds.
    #[arg(long, default_value_t = 10.0)]
    write_timeout_secs: f64,
    /// REST request weight allowed per minute (429 beyond).
    #[arg(long, default_value_t = 2400)]
    weight_limit: u64,
    /// Faults fire this long after start, seconds.
    #[arg(long, default_value_t = 5.0)]
    fault_after_secs: f64,
    /// Faults fire again at this interval, seconds (default: once).
    #[arg(long)]
    fault_every_secs: Option<f64>,
    /// Symbol of `--skip-depth` (default: the first symbol).
    #[arg(long, value_name = "SYMBOL")]
    fault_symbol: Option<String>,
    /// Fault: close every websocket connection abruptly (no close frame).
    #[arg(long)]
    drop_connections: bool,
    /// Fault: withhold the next N depth diffs of one symbol on every depth stream (a `pu` gap).
    #[arg(long, value_name = "N")]
    skip_depth: Option<u64>,
    /// Fault: send nothing for S seconds (the market pauses; exchange time jumps over the pause).
    #[arg(long, value_name = "S")]
    stall_secs: Option<f64>,
    /// Fault: send each websocket a truncated JSON frame, a non-JSON text frame and an unknown event type.
    #[arg(long)]
    malformed: bool,
    /// Fault: send each websocket one text frame of this many bytes.
    #[arg(long, value_name = "BYTES")]
    oversize_frame: Option<usize>,
    /// Fault: stop sending server pings.
    #[arg(long)]
    stop_pinging: bool,
    /// Fault: answer the next N REST requests with 429 and `Retry-After: 1`.
    #[arg(long, value_name = "N")]
    rest_429: Option<u64>,
    /// Fault: answer the next N REST requests with 418 and `Retry-After: 1`.
    #[arg(long, value_name = "N")]
    rest_418: Option<u64>,
    /// Exit after this long, seconds.
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Write the stats JSON here, updated every second.
    #[arg(long, value_name = "FILE")]
    stats_out: Option<PathBuf>,
    #[command(flatten)]
    account: AccountArgs,
}

/// The order side: account, keys, fees, order faults.
#[derive(clap::Args, Debug)]
struct AccountArgs {
    /// API key of the account (HMAC-SHA256, with --api-secret). Without any key every order endpoint answers
    /// -2015.
    #[arg(long, value_name = "KEY", requires = "api_secret")]
    api_key: Option<String>,
    /// HMAC secret of --api-key.
    #[arg(long, value_name = "SECRET", requires = "api_key")]
    api_secret: Option<String>,
    /// API key of an Ed25519 key of the same account (with --ed25519-pub).
    #[arg(long, value_name = "KEY", requires = "ed25519_pub")]
    ed25519_api_key: Option<String>,
    /// PEM file of the Ed25519 public key of --ed25519-api-key.
    #[arg(long, value_name = "PEM", requires = "ed25519_api_key")]
    ed25519_pub: Option<PathBuf>,
    /// Starting USDT wallet balance.
    #[arg(long, default_value = "10000")]
    balance_usdt: String,
    /// Taker commission rate (Binance USDⓈ-M regular tier: 0.0005).
    #[arg(long, default_value = "0.0005")]
    taker_fee: String,
    /// Maker commission rate (Binance USDⓈ-M regular tier: 0.0002).
    #[arg(long, default_value = "0.0002")]
    maker_fee: String,
    /// Initial leverage of every symbol (POST /fapi/v1/leverage changes it).
    #[arg(long, default_value_t = 20)]
    leverage: u32,
    /// listenKey validity after creation or keep-alive, seconds.
    #[arg(long, default_value_t = 3600.0)]
    listen_key_ttl_secs: f64,
    /// Fault: reject the next N order placements with --reject-code (from the start).
    #[arg(long, value_name = "N")]
    reject_orders: Option<u64>,
    /// The code of --reject-orders: -1008, -1021, -2010, -2019 or -4164.
    #[arg(long, default_value_t = -2019, allow_hyphen_values = true)]
    reject_code: i64,
    /// Fault: delay every order placement/cancel/modify acknowledgement by this many ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    ack_delay_ms: u64,
    /// Fault: execute the next N order placements but never send their acknowledgement.
    #[arg(long, value_name = "N")]
    lose_acks: Option<u64>,
    /// Fault: drop every user data stream connection this long after it opens, seconds.
    #[arg(long, value_name = "S")]
    user_stream_drop_after_secs: Option<f64>,
    /// The regular order endpoints accept STOP_MARKET / TAKE_PROFIT_MARKET (the behaviour before Binance's 2025
    /// Algo Order migration) instead of answering -4120 STOP_ORDER_SWITCH_ALGO.
    #[arg(long)]
    legacy_conditionals: bool,
    /// A MARKET order's fills come in N chunks (N ORDER_TRADE_UPDATE PARTIALLY_FILLED … FILLED).
    #[arg(long, value_name = "N", default_value_t = 1)]
    partial_fills: u32,
    /// Fault: the user data stream is dropped just as the next N fills are published: their ORDER_TRADE_UPDATE and
    /// ACCOUNT_UPDATE are lost (Binance sends an event once, to the connections open at that moment).
    #[arg(long, value_name = "N", default_value_t = 0)]
    user_stream_drop_on_fills: u64,
    /// Only fills of orders of this type (MARKET, LIMIT …) count for --user-stream-drop-on-fills.
    #[arg(long, value_name = "TYPE")]
    user_stream_drop_fill_type: Option<String>,
    /// Fault: the WebSocket API goes down after answering N requests in all (every session together): the session
    /// that answered the Nth is closed and every WebSocket API connection after it is refused with HTTP 503 for
    /// --ws-api-down-secs (default: the rest of the run). REST and the streams stay up.
    #[arg(long, value_name = "N")]
    ws_api_down_after: Option<u64>,
    /// How long --ws-api-down-after keeps the WebSocket API down, seconds.
    #[arg(long, value_name = "S", requires = "ws_api_down_after")]
    ws_api_down_secs: Option<f64>,
    /// Fault: the exchange clock (serverTime, event times, the recvWindow check) is off by this many ms.
    #[arg(long, value_name = "MS", default_value_t = 0, allow_hyphen_values = true)]
    clock_skew_ms: i64,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: i32) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

#[cfg(unix)]
fn install_signals() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    // SAFETY: `signal` is the C library's; the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(2, on_signal); // SIGINT
        signal(15, on_signal); // SIGTERM
    }
}

#[cfg(not(unix))]
fn install_signals() {}

fn default_recordings() -> Vec<PathBuf> {
    ["btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz"]
        .iter()
        .map(|f| {
            let local = Path::new("data/sample").join(f);
            if local.exists() { local } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample").join(f) }
        })
        .collect()
}

fn secs(s: f64, what: &str) -> Result<Duration> {
    if !(s.is_finite() && s >= 0.0) {
        bail!("--{what} must be a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

enum Source {
    Recording(recording::Recording),
    Synthetic(Vec<synthetic::SynSym>, synthetic::Rng),
}

fn main() {
    if let Err(e) = run() {
        eprintln!("rusto-exchange: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        bail!("--listen {}: rusto-exchange only listens on loopback addresses", args.listen);
    }
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be > 0");
    }
    if !args.plain && args.ca_out.is_none() {
        bail!("--ca-out PATH is required with TLS (or use --plain)");
    }
    let cfg = ServeCfg {
        ping_every: secs(args.ping_secs, "ping-secs")?.max(Duration::from_millis(10)),
        pong_timeout: secs(args.pong_timeout_secs, "pong-timeout-secs")?,
        max_conn: secs(args.max_conn_secs, "max-conn-secs")?,
        max_msgs_per_sec: args.max_msgs_per_sec,
        send_queue: args.send_queue,
        write_timeout: secs(args.write_timeout_secs, "write-timeout-secs")?.max(Duration::from_millis(10)),
        volumes: args.volumes.clone(),
        weight_limit: args.weight_limit,
    };
    install_signals();

    // Data source.
    let t_load = Instant::now();
    let source = match args.synthetic {
        Some(n) => {
            if n == 0 {
                bail!("--synthetic needs at least one symbol");
            }
            let (syms, rng) = synthetic::symbols(n, args.seed);
            Source::Synthetic(syms, rng)
        }
        None => {
            let paths = if args.recording.is_empty() { default_recordings() } else { args.recording.clone() };
            Source::Recording(recording::load(&paths)?)
        }
    };
    let (symbols, clock) = match &source {
        Source::Recording(r) => {
            let first = r.ts_range.0;
            let base = match args.time_base {
                TimeBase::Now => wall_ms() - first.div_euclid(1_000_000),
                TimeBase::Recorded => 0,
            } + args.account.clock_skew_ms;
            eprintln!(
                "rusto-exchange: loaded {} events of {} symbol(s) in {:.2}s ({} lines skipped, {} later snapshots unused); \
                 one loop is {:.1}s of recording",
                r.events.len(),
                r.symbols.len(),
                t_load.elapsed().as_secs_f64(),
                r.skipped_lines,
                r.later_snapshots,
                (r.ts_range.1 - r.ts_range.0) as f64 / 1e9,
            );
            let syms: Vec<_> = r.symbols.iter().map(|s| (s.name.clone(), s.base_suffix.clone(), s.spec())).collect();
            (syms, Clock::new(first, args.speed, base))
        }
        Source::Synthetic(s, _) => {
            let syms: Vec<_> = s.iter().map(|x| (x.name.clone(), "depth@0ms".to_string(), x.spec())).collect();
            (syms, Clock::new(synthetic::now_ns(), args.speed, args.account.clock_skew_ms))
        }
    };
    for (name, base, spec) in &symbols {
        eprintln!(
            "rusto-exchange: {name}: base diff stream {}@{base}, tickSize {}, stepSize {}",
            name.to_ascii_lowercase(),
            spec.tick,
            spec.step
        );
    }
    let exchange_info = match &args.exchange_info {
        None => None,
        Some(p) => {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p).with_context(|| p.display().to_string())?)
                    .with_context(|| format!("{}: not JSON", p.display()))?;
            let mut map = serde_json::Map::new();
            for s in v.get("symbols").and_then(|s| s.as_array()).into_iter().flatten() {
                if let Some(n) = s.get("symbol").and_then(|n| n.as_str()) {
                    map.insert(n.to_string(), s.clone());
                }
            }
            Some(map)
        }
    };
    let stats = Arc::new(Stats::new(symbols.iter().map(|s| s.0.clone()).collect()));
    let orders = order_side(&args.account, &symbols, exchange_info.as_ref())?;
    let market = Market::new(symbols);
    let fault_sym = match &args.fault_symbol {
        Some(s) => market.find(&s.to_ascii_uppercase()).with_context(|| format!("--fault-symbol {s}: not served"))?,
        None => 0,
    };

    let tls = match (&args.plain, &args.ca_out) {
        (false, Some(p)) => Some(tls::server_config(p)?),
        _ => None,
    };
    let listener = TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;

    let ctx = Arc::new(Ctx {
        cfg,
        hub: Hub::new(),
        market: Mutex::new(market),
        stats: stats.clone(),
        clock,
        tls,
        faults: Faults::default(),
        weight: Mutex::new((0, 0)),
        exchange_info,
        stop: AtomicBool::new(false),
        orders,
    });

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    eprintln!(
        "rusto-exchange: {} on {addr}: ws{s}://{addr}/market/stream?streams=…, ws{s}://{addr}/public/stream?streams=…, \
         http{s}://{addr}/fapi/v1/…",
        if ctx.tls.is_some() { "TLS" } else { "plain" },
        s = if ctx.tls.is_some() { "s" } else { "" },
    );

    // Accept loop.
    {
        let ctx = ctx.clone();
        std::thread::Builder::new().name("exch-accept".into()).spawn(move || {
            for s in listener.incoming() {
                let Ok(s) = s else { continue };
                if ctx.stopping() {
                    break;
                }
                ctx.stats.accepted.fetch_add(1, Ordering::Relaxed);
                let c = ctx.clone();
                let _ = std::thread::Builder::new().name("exch-conn".into()).spawn(move || conn::handle(s, c));
            }
        })?;
    }

    // Feed.
    {
        let ctx = ctx.clone();
        let loops = args.loops;
        std::thread::Builder::new().name("exch-feed".into()).spawn(move || match source {
            Source::Recording(r) => replay::run(&r, &ctx, loops),
            Source::Synthetic(s, rng) => {
                let start = ctx.clock.position_ns();
                synthetic::run(s, rng, &ctx, start)
            }
        })?;
    }

    // Stats, faults, stop.
    let start = Instant::now();
    let deadline = args.duration_secs.map(|d| secs(d, "duration-secs")).transpose()?.map(|d| start + d);
    let mut next_fault = Some(start + secs(args.fault_after_secs, "fault-after-secs")?);
    let every = args.fault_every_secs.map(|d| secs(d, "fault-every-secs")).transpose()?;
    let any_fault = args.drop_connections
        || args.skip_depth.is_some()
        || args.stall_secs.is_some()
        || args.malformed
        || args.oversize_frame.is_some()
        || args.stop_pinging
        || args.rest_429.is_some()
        || args.rest_418.is_some();
    let mut next_stats = start;
    loop {
        let now = Instant::now();
        if SIGNALLED.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if any_fault && let Some(t) = next_fault.filter(|t| now >= *t) {
            fire_faults(&args, &ctx, fault_sym);
            next_fault = every.map(|e| t + e.max(Duration::from_millis(100)));
        }
        ctx.orders.expire_listen_key(&ctx);
        if now >= next_stats {
            next_stats = now + Duration::from_secs(1);
            if let Some(p) = &args.stats_out {
                write_stats(&ctx, p, false);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.stop.store(true, Ordering::SeqCst);
    // Let the connection threads send their close frames and count what they flushed.
    let wait_until = Instant::now() + Duration::from_millis(500);
    while ctx.stats.ws_open.load(Ordering::Relaxed) > 0 && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(10));
    }
    ctx.hub.drop_all(CloseReason::Shutdown);
    let line = stats_json(&ctx, true);
    if let Some(p) = &args.stats_out {
        write_stats(&ctx, p, true);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    std::process::exit(0);
}

fn stats_json(ctx: &Ctx, fin: bool) -> String {
    let (counters, books) = {
        let m = ctx.market();
        let mut books = serde_json::Map::new();
        for (i, s) in m.syms.iter().enumerate() {
            let (b, a) = m.book_len(i);
            books.insert(
                s.name.clone(),
                serde_json::json!({"bids": b, "asks": a, "last_update_id": s.last_u, "crossed": m.crossed(i)}),
            );
        }
        (m.counters, serde_json::Value::Object(books))
    };
    let mut v = ctx.stats.to_json(&counters, books);
    v["orders"] = ctx.orders.stats_json();
    v["final"] = serde_json::Value::Bool(fin);
    v.to_string()
}

fn write_stats(ctx: &Ctx, p: &Path, fin: bool) {
    let tmp = p.with_extension("tmp");
    let line = stats_json(ctx, fin) + "\n";
    if std::fs::write(&tmp, line).and_then(|_| std::fs::rename(&tmp, p)).is_err() {
        eprintln!("warn: could not write {}", p.display());
    }
}

fn fx_arg(v: &str, what: &str) -> Result<orders::fx::Fx> {
    orders::fx::Fx::parse(v)
        .filter(|x| *x >= orders::fx::Fx::ZERO)
        .with_context(|| format!("--{what} {v}: not a decimal ≥ 0 with ≤ 8 decimals"))
}

/// The order side from the account flags; each symbol's MIN_NOTIONAL from `--exchange-info` when given there.
fn order_side(
    a: &AccountArgs,
    symbols: &[(String, String, market::Spec)],
    info: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<orders::Orders> {
    let mut keys = Vec::new();
    if let (Some(k), Some(s)) = (&a.api_key, &a.api_secret) {
        keys.push(orders::auth::ApiKey::hmac(k, s));
    }
    if let (Some(k), Some(p)) = (&a.ed25519_api_key, &a.ed25519_pub) {
        let pem = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
        keys.push(
            orders::auth::ApiKey::ed25519(k, &pem)
                .map_err(anyhow::Error::msg)
                .with_context(|| p.display().to_string())?,
        );
    }
    let mut syms = Vec::new();
    for (name, _, spec) in symbols {
        let min = info
            .and_then(|m| m.get(name))
            .and_then(|s| s.get("filters"))
            .and_then(|f| f.as_array())
            .and_then(|f| f.iter().find(|x| x.get("filterType").and_then(|t| t.as_str()) == Some("MIN_NOTIONAL")))
            .and_then(|f| f.get("notional"))
            .and_then(|n| n.as_str())
            .unwrap_or("5");
        syms.push(orders::engine::SymSpec {
            name: name.clone(),
            tick: fx_arg(&spec.tick, "tickSize")?,
            step: fx_arg(&spec.step, "stepSize")?,
            pp: spec.price_precision,
            qp: spec.qty_precision,
            min_notional: fx_arg(min, "MIN_NOTIONAL")?,
        });
    }
    if !(1..=125).contains(&a.leverage) {
        bail!("--leverage must be 1..=125");
    }
    let cfg = orders::engine::AccountCfg {
        syms,
        balance: fx_arg(&a.balance_usdt, "balance-usdt")?,
        taker: fx_arg(&a.taker_fee, "taker-fee")?,
        maker: fx_arg(&a.maker_fee, "maker-fee")?,
        leverage: a.leverage,
        partial_fills: a.partial_fills,
    };
    if a.partial_fills == 0 {
        bail!("--partial-fills must be ≥ 1");
    }
    let reject = match a.reject_orders {
        Some(_) => Some(
            orders::errors::ApiError::injectable(a.reject_code)
                .with_context(|| format!("--reject-code {}: one of {:?}", a.reject_code, orders::errors::INJECTABLE))?,
        ),
        None => None,
    };
    let faults = orders::OrderFaults {
        reject_left: AtomicU64::new(a.reject_orders.unwrap_or(0)),
        reject,
        lose_left: AtomicU64::new(a.lose_acks.unwrap_or(0)),
        ack_delay: Duration::from_millis(a.ack_delay_ms),
        user_stream_drop_after: a
            .user_stream_drop_after_secs
            .map(|s| secs(s, "user-stream-drop-after-secs"))
            .transpose()?,
        legacy_conditionals: a.legacy_conditionals,
        user_stream_drop_on_fills: AtomicU64::new(a.user_stream_drop_on_fills),
        user_stream_drop_fill_type: a.user_stream_drop_fill_type.clone(),
        ws_api_down_after: a.ws_api_down_after,
        ws_api_down_for: a.ws_api_down_secs.map(|s| secs(s, "ws-api-down-secs")).transpose()?,
        ws_api_answered: AtomicU64::new(0),
        ws_api_down_since: std::sync::Mutex::new(None),
    };
    let ttl = secs(a.listen_key_ttl_secs, "listen-key-ttl-secs")?;
    Ok(orders::Orders::new(keys, cfg, faults, ttl))
}

fn fire_faults(a: &Args, ctx: &Ctx, sym: usize) {
    ctx.stats.faults_fired.fetch_add(1, Ordering::Relaxed);
    let now = ctx.clock.now_ms();
    if a.drop_connections {
        let n = ctx.hub.drop_all(CloseReason::Fault);
        eprintln!("fault: dropped {n} websocket connection(s)");
    }
    if let Some(n) = a.skip_depth {
        let mut m = ctx.market();
        m.skip_depth(sym, n);
        eprintln!("fault: withholding the next {n} depth diff(s) of {}", m.syms[sym].name);
    }
    if let Some(s) = a.stall_secs {
        ctx.faults.stall_ms.store((s * 1000.0).round().max(0.0) as u64, Ordering::Relaxed);
        eprintln!("fault: stalling the feed for {s}s");
    }
    if a.malformed {
        ctx.hub.broadcast(false, |stream, combined| malformed_frames(stream, combined, now));
        eprintln!("fault: malformed frames sent");
    }
    if let Some(n) = a.oversize_frame {
        ctx.hub.broadcast(true, |stream, combined| vec![oversize(stream, combined, now, n)]);
        eprintln!("fault: one {n}-byte frame sent to every websocket");
    }
    if a.stop_pinging && !ctx.faults.stop_pinging.swap(true, Ordering::Relaxed) {
        eprintln!("fault: server pings stopped");
    }
    let add = |c: &AtomicU64, n: Option<u64>, what: &str| {
        if let Some(n) = n {
            c.fetch_add(n, Ordering::Relaxed);
            eprintln!("fault: the next {n} REST request(s) get {what}");
        }
    };
    add(&ctx.faults.rest_429, a.rest_429, "429");
    add(&ctx.faults.rest_418, a.rest_418, "418");
}

fn wrap(stream: &str, combined: bool, data: &str) -> String {
    if combined { format!(r#"{{"stream":"{stream}","data":{data}}}"#) } else { data.to_string() }
}

/// A truncated JSON frame, a non-JSON text frame and a well-formed frame of an unknown event type.
fn malformed_frames(stream: &str, combined: bool, now: i64) -> Vec<String> {
    let sym = stream.split('@').next().unwrap_or("btcusdt").to_ascii_uppercase();
    let full = wrap(
        stream,
        combined,
        &format!(r#"{{"e":"trade","E":{now},"T":{now},"s":"{sym}","t":1,"p":"1.0","q":"1","X":"MARKET","m":true}}"#),
    );
    vec![
        full[..full.len() / 2].to_string(),
        "rusto-exchange fault injection: this text frame is not JSON".to_string(),
        wrap(stream, combined, &format!(r#"{{"e":"rustoUnknownEvent","E":{now},"s":"{sym}"}}"#)),
    ]
}

/// A well-formed frame of an unknown event type padded to `bytes` (or as small as it can be).
fn oversize(stream: &str, combined: bool, now: i64, bytes: usize) -> String {
    let sym = stream.split('@').next().unwrap_or("btcusdt").to_ascii_uppercase();
    let empty = wrap(stream, combined, &format!(r#"{{"e":"rustoOversize","E":{now},"s":"{sym}","pad":""}}"#));
    let pad = "x".repeat(bytes.saturating_sub(empty.len()));
    wrap(stream, combined, &format!(r#"{{"e":"rustoOversize","E":{now},"s":"{sym}","pad":"{pad}"}}"#))
}

//! `rusto live` and `rusto record`: the live pipeline (paper trading) and the recorder.
//!
//! Start-up, on the main thread, before any market data: exchangeInfo (tick/step sizes), link health (RTT and
//! clock offset, warned above the configured limits and stored with the run), symbol selection (manual, or the top
//! `top_n` USDT perpetuals by 24 h quote volume), the database (a bad one stops here). Then the threads: network
//! (pinned), compute (pinned), persistence, and the main thread as the control thread: it serves the compute
//! thread's snapshot requests over REST (within the weight budget, honouring 429/418), re-checks link health,
//! reselects the symbols at `reselect_hour_utc` (00:00 UTC = 09:00 KST) without a restart — new symbols are
//! subscribed at once, a dropped symbol is unsubscribed only once it has no open position — and prints the latency
//! report every `report_interval_s`. SIGINT/SIGTERM (or `--duration-secs`) stops reading, drains the rings,
//! closes paper positions (`Shutdown`), commits the database, prints the final report, and exits 0.
//!
//! Order latency: every link-health check (the start-up one, then the control thread's) sets the paper orders'
//! one-way latency to its REST round trip (the median of its pings) / 2, published to the compute thread through
//! one atomic (`app::control`, `compute::thread`). It replaces every account's configured
//! `position.order_latency_ms` from the first batch on, and is shown with its source in the interval reports and
//! the final summary (`order_latency_ms`, `order_latency_ns`, `order_latency_source` = `measured`; `config` only
//! if no measurement reached the engine). Replay uses the configured figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::app::config::{Config, IdleMode, Layout, LiveConfig};
use crate::app::control::{Control, ControlStart, Links, streams_for, warn_health};
use crate::app::rest::{Listing, Rest, RestError};
use crate::app::threads::{Backend, BackendEnd, BackendRings, PipelineError, join, open_db, spawn_pinned};
use crate::compute::engine::Engine;
use crate::compute::thread::{ComputeStages, InlineCompute};
use crate::handoff::publish::{FeedStats, Publisher};
use crate::handoff::ring::ring;
use crate::ingest::net::{Net, NetError, NetStages, NetStats, tls_config};
use crate::ingest::orders::OrderStats;
use crate::ingest::parse::{ParseStats, Parser};
use crate::persist::db::ControlRecord;
use crate::persist::writer::Persist;
use crate::report::summary::{Health, LiveReport};
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::latency::Stage;
use crate::types::record::Record;
use crate::types::symbols::{SymbolName, SymbolSpec, SymbolTable};

/// Errors of the live commands.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// REST failed at start.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// Nothing to trade.
    #[error("no symbol selected (check [live] symbols / exclude and the exchange's ticker)")]
    NoSymbols,
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A symbol name is invalid.
    #[error("invalid symbol {0:?}")]
    BadSymbol(String),
    /// The database, persistence or a pipeline thread failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Order routing could not be set up.
    #[error(transparent)]
    Routing(#[from] crate::app::orders::RoutingError),
    /// Output failed.
    #[error("{0}")]
    Io(String),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] crate::app::metrics::MetricsError),
}

/// Options of `rusto live`.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Symbols given on the command line (override the config).
    pub symbols: Vec<String>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Database.
    pub db: Option<PathBuf>,
}

/// Installs SIGINT/SIGTERM handlers that set `stop`.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<(), LiveError> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| LiveError::Io(e.to_string()))?;
    }
    Ok(())
}

/// The REST client of `[live]` (its base, CA and weight budget).
fn live_rest(cfg: &LiveConfig) -> Result<Rest, RestError> {
    let ca = cfg.ca_file.as_ref().map(PathBuf::from);
    Rest::new(&cfg.rest_url, ca.as_deref(), cfg.weight_budget)
}

fn names(list: &[String]) -> Result<Vec<SymbolName>, LiveError> {
    list.iter().map(|s| SymbolName::new(s.as_bytes()).ok_or_else(|| LiveError::BadSymbol(s.clone()))).collect()
}

/// Start-up: exchange facts, health and the selection.
pub(crate) struct Start {
    pub(crate) rest: Rest,
    pub(crate) specs: Vec<SymbolSpec>,
    pub(crate) listings: Vec<Listing>,
    pub(crate) health: Health,
    pub(crate) selection: Vec<(SymbolName, f64)>,
    /// `live.exclude`, parsed once.
    pub(crate) exclude: Vec<SymbolName>,
}

pub(crate) fn start(cfg: &LiveConfig, manual: &[String]) -> Result<Start, LiveError> {
    let mut rest = live_rest(cfg)?;
    let (specs, listings) = rest.exchange_info()?;
    let health = rest.health(cfg.ping_samples)?;
    warn_health(cfg, &health);
    let manual = if manual.is_empty() { names(&cfg.symbols)? } else { names(manual)? };
    let exclude = names(&cfg.exclude)?;
    let selection = if manual.is_empty() {
        rest.top(&listings, cfg.top_n, &exclude)?
    } else {
        manual.into_iter().map(|s| (s, f64::NAN)).collect()
    };
    if selection.is_empty() {
        return Err(LiveError::NoSymbols);
    }
    Ok(Start { rest, specs, listings, health, selection, exclude })
}

/// The network thread's loop for `syms` (TLS for `wss://`), shared by live and the recorder.
pub(crate) fn open_net(cfg: &Config, syms: &[SymbolName]) -> Result<(Net, Arc<mio::Waker>), LiveError> {
    let l = &cfg.live;
    let (market, public) = streams_for(l, syms);
    let tls = if l.ws_url.starts_with("wss://") {
        Some(tls_config(l.ca_file.as_ref().map(PathBuf::from).as_deref())?)
    } else {
        None
    };
    Ok(Net::new(l.net(cfg.parser.max_frame_bytes)?, tls, market, public)?)
}

/// What the network thread hands back.
struct NetEnd {
    stats: NetStats,
    stages: NetStages,
    parse: ParseStats,
    feed: FeedStats,
    result: Result<(), NetError>,
    /// The engine and its stages, when the network thread ran it (the inline layout).
    inline: Option<(Engine, ComputeStages)>,
    /// The order session's counters and stages.
    orders: Option<OrderEnd>,
}

/// What the order session leaves at the end of a run.
struct OrderEnd {
    stats: OrderStats,
    /// `order_write` (decision → frame written), `order_ack` (frame → answer), `order_fill` (decision → the first
    /// fill of a MARKET order).
    stages: [Stage; 3],
}

/// Where the network thread hands its frames: the event ring to the compute thread, or the engine itself.
enum NetSink {
    /// The split layout.
    Ring(Publisher),
    /// The inline layout.
    Inline(Box<InlineCompute>),
}

/// Starts the network thread: parses into its sink until `stop`, then sets `stop` for everyone. In the inline
/// layout it is the compute thread too: pinned to `compute_core`, busy-polling in `spin` mode.
fn spawn_net(
    cfg: &Config,
    mut net: Net,
    mut parser: Parser,
    sink: NetSink,
    stop: Arc<AtomicBool>,
    inbox: Arc<crate::ingest::net::NetInbox>,
) -> Result<std::thread::JoinHandle<NetEnd>, PipelineError> {
    let p = &cfg.pipeline;
    let core = if matches!(sink, NetSink::Inline(_)) { p.compute_core } else { p.net_core };
    net.busy_poll(matches!(sink, NetSink::Inline(_)) && p.idle == IdleMode::Spin);
    spawn_pinned("net", core, move || {
        let (result, feed, inline) = match sink {
            NetSink::Ring(mut publisher) => {
                let r = net.run(&mut parser, &mut publisher, &stop, &inbox, None);
                let s = &publisher.stats;
                let feed = FeedStats {
                    ring_full: s.ring_full,
                    frames_dropped: s.frames_dropped,
                    events: s.events,
                    ..Default::default()
                };
                (r, feed, None)
            }
            NetSink::Inline(mut engine) => {
                let r = net.run(&mut parser, engine.as_mut(), &stop, &inbox, None);
                let events = engine.events();
                (r, FeedStats { events, ..Default::default() }, Some(engine.finish()))
            }
        };
        // Whatever ended the loop, stop everyone.
        stop.store(true, Ordering::Relaxed);
        let orders = net.orders.as_ref().map(|o| OrderEnd {
            stats: o.stats,
            stages: [o.order_write.clone(), o.order_ack.clone(), o.order_fill.clone()],
        });
        NetEnd {
            stats: net.stats.clone(),
            stages: net.stages.clone(),
            parse: parser.stats.clone(),
            feed,
            result,
            inline,
            orders,
        }
    })
}

fn describe(selection: &[(SymbolName, f64)]) -> String {
    let each = selection.iter().map(|(s, q)| if q.is_nan() { s.to_string() } else { format!("{s} ({q:.0} USDT)") });
    each.collect::<Vec<_>>().join(", ")
}

/// Runs paper trading until a signal (or `duration`).
pub fn run_live(cfg: &Config, opts: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveReport, LiveError> {
    let started = Instant::now();
    let l = &cfg.live;
    let Start { mut rest, specs, listings, health, selection, exclude } = start(l, &opts.symbols)?;
    let current: Vec<SymbolName> = selection.iter().map(|s| s.0).collect();
    log::info!("symbols: {}", describe(&selection));
    log::info!("{}", crate::app::threads::Isolation::of_this_machine().startup_line(&cfg.pipeline));
    // Database first: a bad one stops us before any trading.
    let mut engine = Engine::new(cfg.engine());
    let db = open_db(cfg, &mut engine, opts.db.as_deref(), "live-paper", &l.ws_url)?;
    let endpoint = metrics_endpoint(cfg)?;
    let (mut net, waker) = open_net(cfg, &current)?;
    let bell_waker = waker.clone();
    // A failed wake only delays the intents to the network thread's next turn (at most its 20 ms poll).
    let bell: crate::compute::Doorbell = Arc::new(move || drop(bell_waker.wake()));
    let mut db = db;
    let order_control =
        attach_routing(cfg, (&mut engine, &mut net, db.as_mut()), &mut rest, health.offset_ms, &current, bell)?;
    let mode = if order_control.is_some() { "testnet orders" } else { "paper" };
    let mut links = Links::new(waker.clone());
    links.measured(&health);
    let mut persist = Persist::open(None, None, db, cfg.persist.clone())
        .map_err(PipelineError::from)?
        .with_control_queue(links.side.clone());
    if let Some((_, src)) = &endpoint {
        let every = cfg.metrics.every();
        net.publish_metrics(src.net.clone(), every);
        persist = persist.with_metrics(src.persist.clone(), every);
        links.metrics = Some((src.clone(), every));
    }
    let progress = net.progress.clone();
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let (rec_tx, rec_rx) = ring::<Record>(cfg.pipeline.record_ring);
    let alerts = (cfg.alerts.enabled && crate::app::alert::Destinations::from_env().any()).then(|| {
        crate::app::alert::spawn(cfg.alerts.clone(), crate::app::alert::Destinations::from_env(), stop.clone())
    });
    let (alerts, alert_thread) = alerts.map_or((None, None), |(a, t)| (Some(a), Some(t)));
    let hooks = links.hooks(l, cfg.alerts.feed_down_s, alerts.as_ref());
    let (backend, sink) = match cfg.pipeline.layout {
        Layout::Split => {
            let (ev_tx, ev_rx) =
                ring::<MarketEvent>(cfg.pipeline.event_ring.max(crate::ingest::parse::MAX_EVENTS_PER_FRAME * 2));
            let publisher = Publisher::new(ev_tx, cfg.pipeline.full_policy, cfg.parser.max_symbols);
            let waiter = publisher.waiter();
            let rings = BackendRings { events: ev_rx, records_tx: rec_tx, records_rx: rec_rx };
            (Backend::start(cfg, persist, engine, rings, hooks, waiter)?, NetSink::Ring(publisher))
        }
        Layout::Inline => {
            let inline = InlineCompute::new(engine, rec_tx, cfg.pipeline.record_ring, hooks);
            (Backend::start_persist(cfg, persist, rec_rx)?, NetSink::Inline(Box::new(inline)))
        }
    };
    let net_h = spawn_net(cfg, net, parser, sink, stop.clone(), links.inbox.clone())?;
    let metrics = endpoint.map(|(l, src)| crate::app::metrics::spawn(l, src, stop.clone())).transpose()?;

    // The control loop (this thread).
    let auto = opts.symbols.is_empty() && l.symbols.is_empty();
    let start =
        ControlStart { rest, listings, exclude, current, auto, progress, alerts, health, orders: order_control };
    let mut control = Control::new(cfg, links, start);
    let ts_ms = clock::wall_ns() / 1_000_000;
    control.record(ControlRecord::Health { ts_ms, rtt_ms: health.rtt_ms, offset_ms: health.offset_ms });
    control.record(ControlRecord::Selection { ts_ms, reason: "start", symbols: selection });
    control.say(format!(
        "🚀 rusto started ({mode}): {} | clock offset {:+.1} ms, REST rtt {:.2} ms",
        control.sel.current.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        health.offset_ms,
        health.rtt_ms
    ));
    control.run(&stop, opts.duration.map(|d| started + d));
    let threads = Threads { net: net_h, backend, alerts: alert_thread, metrics };
    let report = finish(cfg, &control, threads, (health, started))?;
    control.join_order_workers();
    if control.routes_orders() {
        // Every thread has stopped: the account's positions are settled over REST (flattened or listed).
        let creds = crate::app::orders::credentials(cfg)?;
        let offset = health.offset_ms;
        let traded = control.sel.current.clone();
        let left =
            crate::app::account::shutdown(control.rest_mut(), &creds, offset, &traded, cfg.execution.flatten_on_exit)
                .map_err(crate::app::orders::RoutingError::from)?;
        log::info!("orders: {} positions left open at exit", left.len());
    }
    Ok(report)
}

/// Order routing when the configuration routes orders (`app::orders`): the venue attached to `engine`, the order
/// session to `net`, the positions the account reconcile adopted handed to the engine and moved in `db` to this run.
/// Returns what the control thread keeps (`None` in paper mode).
fn attach_routing(
    cfg: &Config,
    (engine, net, db): (&mut Engine, &mut Net, Option<&mut crate::persist::Db>),
    rest: &mut Rest,
    offset_ms: f64,
    current: &[SymbolName],
    bell: crate::compute::Doorbell,
) -> Result<Option<crate::app::orders::OrderControl>, LiveError> {
    let candidates = match (&db, cfg.execution.routes_orders()) {
        (Some(d), true) => d.adoption_candidates(current).map_err(PipelineError::from)?,
        _ => Vec::new(),
    };
    let start = crate::app::orders::RoutingStart { rest, offset_ms, traded: current, bell, candidates };
    let Some(r) = crate::app::orders::routing(cfg, net.tls(), start)? else { return Ok(None) };
    engine.attach_venue(r.venue);
    let mut db = db;
    for a in r.adopted {
        let seq = engine.adopt(a.adoption);
        if let Some(d) = db.as_mut() {
            d.adopt(&a.candidate, seq).map_err(PipelineError::from)?;
        }
    }
    net.with_orders(r.link);
    Ok(Some(r.control))
}

/// The threads of a live run, joined at the end.
struct Threads {
    net: std::thread::JoinHandle<NetEnd>,
    backend: Backend,
    alerts: Option<std::thread::JoinHandle<()>>,
    metrics: Option<std::thread::JoinHandle<crate::app::metrics::ServerStats>>,
}

/// The metrics endpoint's socket, bound before any trading (a taken port stops the run), and its hand-overs.
fn metrics_endpoint(cfg: &Config) -> Result<Option<(std::net::TcpListener, crate::app::metrics::Sources)>, LiveError> {
    let addr = cfg.metrics.addr().map_err(|allowed| LiveError::Io(format!("metrics.listen: {allowed}")))?;
    let Some(addr) = addr else { return Ok(None) };
    let listener = crate::app::metrics::bind(addr)?;
    log::info!("metrics: serving GET /metrics on {addr}");
    Ok(Some((listener, crate::app::metrics::Sources::new(cfg.parser.max_symbols))))
}

/// Joins the threads (network, compute, persistence, alerts) and builds the report.
fn finish(
    cfg: &Config,
    control: &Control<'_>,
    t: Threads,
    (health, started): (Health, Instant),
) -> Result<LiveReport, LiveError> {
    let NetEnd {
        stats: mut net_stats,
        stages: net_stages,
        parse: parse_stats,
        feed,
        result: net_result,
        inline,
        orders,
    } = join(t.net, "net")?;
    let end = t.backend.join(inline)?;
    if let Some(a) = t.alerts
        && a.join().is_err()
    {
        log::warn!("the alert thread panicked");
    }
    if let Some(m) = t.metrics {
        match m.join() {
            Ok(s) => log::info!(
                "metrics: {} scrapes, {} not found, {} bad method, {} bad request, {} i/o errors",
                s.scrapes,
                s.not_found,
                s.bad_method,
                s.bad_request,
                s.io_errors
            ),
            Err(_) => log::warn!("the metrics thread panicked"),
        }
    }
    let s = &control.stats;
    log::info!(
        "control: {} command retries, {} control records dropped, {} snapshot retries, {} wake-ups and {} notifications failed",
        s.cmd_retries,
        s.side_dropped,
        s.snapshot_retries,
        s.wake_failed,
        s.notify_failed
    );
    log::info!("control: {} drain command retries, {} feed-down episodes", s.drain_retries, s.feed_down);
    net_stats.feed_down = s.feed_down;
    net_result?;
    let (latency, tick_to_decision) = end.latency(&net_stages.frame.parse);
    let mut latency = live_latency(latency, tick_to_decision, &net_stages);
    if cfg.pipeline.layout == Layout::Inline {
        // No hand-off: nothing is enqueued and nothing waits in a ring (the network thread runs the engine).
        latency.retain(|(name, _)| *name != "enqueue" && *name != "ring_wait");
    }
    log::info!(
        "net: {} clock reads for {} frames ({:.2} per frame)",
        net_stages.total_clock_reads(),
        net_stats.frames,
        net_stages.total_clock_reads() as f64 / net_stats.frames.max(1) as f64
    );
    if let Some(o) = &orders {
        log_orders(&o.stats, engine_venue_line(&end.engine));
        for st in &o.stages {
            latency.push((st.name, crate::types::latency::Summary::of(&st.hist)));
        }
    }
    let BackendEnd { engine, persist, persist_result, .. } = end;
    persist_result.map_err(PipelineError::from)?;
    Ok(LiveReport {
        net: net_stats,
        parse: parse_stats,
        engine,
        persist: persist.stats,
        latency,
        feed,
        symbols: control.sel.current.clone(),
        health,
        rest: control.rest().stats.clone(),
        selections: control.selections,
        elapsed: started.elapsed(),
        config_order_latency_ms: cfg.position.order_latency_ms,
    })
}

/// The venue's counters, one line.
fn engine_venue_line(engine: &Engine) -> String {
    engine.venue().map_or_else(String::new, |v| format!("{:?}", v.stats))
}

/// The order session's counters at the end of the run.
fn log_orders(o: &OrderStats, venue: String) {
    log::info!(
        "orders: {} requests sent, {} answered, {} timeouts ({} resent), {} rejected (-1xxx {}, -2xxx {}, other {}), \
         {} clock resyncs, {} rate-limit back-offs, {} API and {} user-stream reconnects, {} positions, {} undecodable, \
         {} unmatched; REST fallback: {} requests, {} of unknown outcome, {} not queued (queue full); {} fill checks \
         after user-stream gaps, {} fills recovered",
        o.sent,
        o.acked,
        o.timeouts,
        o.resends,
        o.rejected_1xxx + o.rejected_2xxx + o.rejected_other,
        o.rejected_1xxx,
        o.rejected_2xxx,
        o.rejected_other,
        o.clock_resyncs,
        o.backoffs,
        o.api_reconnects,
        o.user_stream_reconnects,
        o.positions,
        o.undecodable,
        o.unmatched,
        o.rest_fallbacks,
        o.rest_unknown,
        o.rest_queue_full,
        o.fill_checks,
        o.fills_recovered
    );
    log::info!("venue: {venue}");
}

/// The live latency table in pipeline order: socket_read, tls_decrypt, ws_frame, parse, enqueue, the compute
/// stages (ring_wait first) with tick_trade_bbo and tick_to_decision, then persist_commit.
fn live_latency(
    mut latency: Vec<crate::app::threads::Latency>,
    tick_to_decision: Option<crate::app::threads::Latency>,
    s: &NetStages,
) -> Vec<crate::app::threads::Latency> {
    use crate::types::latency::Summary;
    if let Some(t) = tick_to_decision {
        latency.insert(latency.len() - 1, t); // Live keeps it with the compute stages, before persist_commit.
    }
    let net = [("socket_read", &s.socket_read), ("tls_decrypt", &s.tls_decrypt), ("ws_frame", &s.frame.ws_frame)];
    for (i, (name, st)) in net.into_iter().enumerate() {
        latency.insert(i, (name, Summary::of(&st.hist)));
    }
    // After parse (now at index 3).
    latency.insert(4, ("enqueue", Summary::of(&s.frame.enqueue.hist)));
    latency
}

/// Prints the current top symbols (`rusto symbols`).
pub fn print_symbols(cfg: &Config) -> Result<Vec<(SymbolName, f64)>, LiveError> {
    let mut rest = live_rest(&cfg.live)?;
    let (_, listings) = rest.exchange_info()?;
    Ok(rest.top(&listings, cfg.live.top_n, &names(&cfg.live.exclude)?)?)
}

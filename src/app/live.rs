//! `rusto live` and `rusto record`: the live pipeline (paper trading) and the recorder.
//!
//! Start-up, on the main thread, before any market data: exchangeInfo (tick/step sizes), link health (RTT and
//! clock offset, warned above the configured limits and stored with the run), symbol selection (manual, or the top
//! `top_n` USDT perpetuals by 24 h quote volume), the database (a bad one stops here). Then the threads: network
//! (pinned), compute (pinned), persistence, and the main thread as the control thread: it serves the compute
//! thread's snapshot requests over REST (within the weight budget, honouring 429/418), re-checks link health,
//! reselects the symbols at `reselect_hour_utc` (00:00 UTC = 09:00 KST) without a restart — new symbols are
//! subscribed at once, a dropped symbol is unsubscribed only once it has no open position — and prints the latency
//! report every `report_interval_secs`. SIGINT/SIGTERM (or `--duration-secs`) stops reading, drains the rings,
//! closes paper positions (`Shutdown`), commits the database, prints the final report, and exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::app::config::LiveConfig;
use crate::app::config::{Config, FullPolicy};
use crate::app::control::{Rest, RestError, select_top};
use crate::app::threads::pin;
use crate::compute::engine::Engine;
use crate::compute::thread::{ComputeHooks, IntervalReport, run_compute};
use crate::handoff::publish::Publisher;
use crate::handoff::ring::ring;
use crate::ingest::net::{Endpoint, Net, NetCmd, NetConfig, NetError, NetInbox, NetStats, Route, tls_config};
use crate::ingest::parse::Parser;
use crate::persist::db::{ControlRecord, Db};
use crate::persist::writer::{Persist, PersistError};
use crate::report::summary::LiveReport;
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::latency::{Summary, table};
use crate::types::record::{PositionEvent, Record};
use crate::types::symbols::{SymbolName, SymbolTable};

/// Errors of the live commands.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// REST failed at start.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// The network layer failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The database failed at start.
    #[error(transparent)]
    Db(#[from] crate::persist::db::DbError),
    /// Persistence failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// Nothing to trade.
    #[error("no symbol selected (check [live] symbols / exclude and the exchange's ticker)")]
    NoSymbols,
    /// A symbol name is invalid.
    #[error("invalid symbol {0:?}")]
    BadSymbol(String),
    /// A thread died.
    #[error("thread {0} failed")]
    Thread(&'static str),
    /// Output failed.
    #[error("{0}")]
    Io(String),
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

fn streams_for(cfg: &LiveConfig, syms: &[SymbolName]) -> (Vec<String>, Vec<String>) {
    let mut market = Vec::new();
    let mut public = Vec::new();
    for s in syms {
        let l = s.as_str().to_ascii_lowercase();
        market.push(format!("{l}@{}", cfg.trade_stream));
        if !cfg.mark_price_stream.is_empty() {
            market.push(format!("{l}@{}", cfg.mark_price_stream));
        }
        public.push(format!("{l}@{}", cfg.depth_stream));
        if cfg.book_ticker {
            public.push(format!("{l}@bookTicker"));
        }
    }
    (market, public)
}

/// Installs SIGINT/SIGTERM handlers that set `stop`.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<(), LiveError> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| LiveError::Io(e.to_string()))?;
    }
    Ok(())
}

fn names(list: &[String]) -> Result<Vec<SymbolName>, LiveError> {
    list.iter().map(|s| SymbolName::new(s.as_bytes()).ok_or_else(|| LiveError::BadSymbol(s.clone()))).collect()
}

/// Start-up: exchange facts, health and the selection.
struct Start {
    rest: Rest,
    specs: Vec<crate::types::symbols::SymbolSpec>,
    listings: Vec<crate::app::control::Listing>,
    health: crate::report::summary::Health,
    selection: Vec<(SymbolName, f64)>,
}

fn start(cfg: &LiveConfig, manual: &[String]) -> Result<Start, LiveError> {
    let ca = cfg.ca_file.as_ref().map(PathBuf::from);
    let mut rest = Rest::new(&cfg.rest_url, ca.as_deref(), cfg.weight_budget)?;
    let (specs, listings) = rest.exchange_info()?;
    let health = rest.health(cfg.ping_samples)?;
    warn_health(cfg, &health);
    let manual = if manual.is_empty() { names(&cfg.symbols)? } else { names(manual)? };
    let selection = if manual.is_empty() {
        let vols = rest.quote_volumes()?;
        select_top(&listings, &vols, cfg.top_n, &names(&cfg.exclude)?)
    } else {
        manual.into_iter().map(|s| (s, f64::NAN)).collect()
    };
    if selection.is_empty() {
        return Err(LiveError::NoSymbols);
    }
    Ok(Start { rest, specs, listings, health, selection })
}

fn warn_health(cfg: &LiveConfig, h: &crate::report::summary::Health) {
    eprintln!("link: REST rtt {:.2} ms, clock offset {:+.1} ms", h.rtt_ms, h.offset_ms);
    if h.offset_ms.abs() > cfg.max_time_offset_ms {
        eprintln!("warn: clock offset {:+.1} ms exceeds {} ms: check NTP", h.offset_ms, cfg.max_time_offset_ms);
    }
    if h.rtt_ms > cfg.max_latency_ms {
        eprintln!("warn: REST round trip {:.2} ms exceeds {} ms", h.rtt_ms, cfg.max_latency_ms);
    }
}

fn net_config(cfg: &Config) -> Result<NetConfig, LiveError> {
    let l = &cfg.live;
    Ok(NetConfig {
        endpoint: Endpoint::parse(&l.ws_url)?,
        market_path: l.market_path.clone(),
        public_path: l.public_path.clone(),
        max_frame_bytes: cfg.parser.max_frame_bytes,
        reconnect_min_ms: l.reconnect_min_ms,
        reconnect_max_ms: l.reconnect_max_ms,
        max_reconnects: l.max_reconnects,
        reconnect_window_secs: l.reconnect_window_secs,
        rotate_after_secs: l.rotate_after_secs,
        control_msgs_per_sec: l.control_msgs_per_sec,
        max_reads_per_wake: 64,
    })
}

/// Runs paper trading until a signal (or `duration`).
pub fn run_live(cfg: &Config, opts: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveReport, LiveError> {
    let started = Instant::now();
    let l = cfg.live.clone();
    let Start { mut rest, specs, listings, health, selection } = start(&l, &opts.symbols)?;
    let mut current: Vec<SymbolName> = selection.iter().map(|s| s.0).collect();
    eprintln!(
        "symbols: {}",
        selection
            .iter()
            .map(|(s, q)| if q.is_nan() { s.to_string() } else { format!("{s} ({:.0} USDT)", q) })
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Database first: a bad one stops us before any trading.
    let mut engine = Engine::new(cfg.engine());
    let side = Arc::new(ArrayQueue::<ControlRecord>::new(256));
    let db = match &opts.db {
        Some(path) => {
            let mut db = Db::open(path)?;
            db.set_variants(&cfg.variant_names());
            engine.preload_hour_expectancy(db.load_hour_expectancy(cfg.gate.lookback_trades)?);
            db.begin_run(env!("CARGO_PKG_VERSION"), &cfg.hash(), "live-paper", &l.ws_url)?;
            Some(db)
        }
        None => None,
    };
    let _ = side.push(ControlRecord::Health {
        ts_ms: clock::wall_ns() / 1_000_000,
        rtt_ms: health.rtt_ms,
        offset_ms: health.offset_ms,
    });
    let _ = side.push(ControlRecord::Selection {
        ts_ms: clock::wall_ns() / 1_000_000,
        reason: "start",
        symbols: selection.clone(),
    });
    let persist = Persist::open(None, None, db, cfg.persist.clone())?.with_control_queue(side.clone());

    let (market, public) = streams_for(&l, &current);
    let tls = if l.ws_url.starts_with("wss://") {
        Some(tls_config(l.ca_file.as_ref().map(PathBuf::from).as_deref())?)
    } else {
        None
    };
    let (mut net, waker) = Net::new(net_config(cfg)?, tls, market, public)?;
    let progress = net.progress.clone();
    let parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    let (ev_tx, ev_rx) =
        ring::<MarketEvent>(cfg.pipeline.event_ring.max(crate::ingest::parse::MAX_EVENTS_PER_FRAME * 2));
    let (rec_tx, rec_rx) = ring::<Record>(cfg.pipeline.record_ring);
    let policy = cfg.pipeline.full_policy;
    let publisher = Publisher::new(ev_tx, policy, cfg.parser.max_symbols);
    let waiter = publisher.waiter();
    let snap_q = Arc::new(ArrayQueue::<SymbolName>::new(1024));
    let inbox = Arc::new(NetInbox::new(1024, waker.clone()));
    let reports = Arc::new(ArrayQueue::<IntervalReport>::new(4));
    let position_events = Arc::new(ArrayQueue::<PositionEvent>::new(4096));
    let mut open_now: Vec<SymbolName> = Vec::new();
    let alerts = (cfg.alerts.enabled && crate::app::alert::Destinations::from_env().any()).then(|| {
        crate::app::alert::spawn(cfg.alerts.clone(), crate::app::alert::Destinations::from_env(), stop.clone())
    });
    let say = |t: String| {
        if let Some((a, _)) = &alerts {
            a.send(crate::types::record::Alert::Text(t));
        }
    };
    say(format!(
        "🚀 rusto started (paper): {} | clock offset {:+.1} ms, REST rtt {:.2} ms",
        current.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        health.offset_ms,
        health.rtt_ms
    ));
    let hooks = ComputeHooks {
        alerts: alerts.as_ref().map(|(a, _)| a.queue()),
        snapshot_requests: Some(snap_q.clone()),
        reports: (l.report_interval_secs > 0).then(|| (reports.clone(), Duration::from_secs(l.report_interval_secs))),
        position_events: Some(position_events.clone()),
    };

    let p = cfg.pipeline.clone();
    let persist_h = std::thread::Builder::new()
        .name("rusto-persist".into())
        .spawn(move || {
            pin(p.persist_core, "persist");
            persist.run(rec_rx)
        })
        .map_err(|_| LiveError::Thread("persist"))?;
    let p = cfg.pipeline.clone();
    let overflow = cfg.pipeline.record_ring;
    let compute_h = std::thread::Builder::new()
        .name("rusto-compute".into())
        .spawn(move || {
            pin(p.compute_core, "compute");
            run_compute(engine, ev_rx, rec_tx, p.idle_spins, overflow, hooks, waiter)
        })
        .map_err(|_| LiveError::Thread("compute"))?;
    let p = cfg.pipeline.clone();
    let (stop_net, inbox_net) = (stop.clone(), inbox.clone());
    let net_h = std::thread::Builder::new()
        .name("rusto-net".into())
        .spawn(move || {
            pin(p.net_core, "net");
            let mut parser = parser;
            let mut publisher = publisher;
            let r = net.run(&mut parser, &mut publisher, &stop_net, &inbox_net, None);
            // Whatever ended the loop, stop everyone.
            stop_net.store(true, Ordering::Relaxed);
            let feed = crate::handoff::publish::FeedStats {
                ring_full: publisher.stats.ring_full,
                frames_dropped: publisher.stats.frames_dropped,
                events: publisher.stats.events,
                ..Default::default()
            };
            (net.stats.clone(), net.parse_stage.clone(), parser.stats.clone(), feed, r)
        })
        .map_err(|_| LiveError::Thread("net"))?;

    // The control loop (this thread). systemd: ready now; watchdog pings only while frames keep arriving.
    let notifier = crate::app::notify::Notifier::from_env();
    let _ = notifier.notify(&format!("READY=1\nSTATUS=paper trading {} symbols", current.len()));
    let ping_every = notifier.watchdog.map(|w| w / 2);
    let mut next_ping = Instant::now();
    let mut last_progress = 0u64;
    let deadline = opts.duration.map(|d| started + d);
    let mut next_health = Instant::now() + Duration::from_secs(l.health_interval_secs.max(1));
    let mut selections = 1u64;
    let mut last_reselect_day = if l.reselect_every_secs > 0 {
        clock::wall_ns().div_euclid(l.reselect_every_secs as i64 * 1_000_000_000)
    } else {
        (clock::wall_ns() - l.reselect_hour_utc as i64 * 3_600_000_000_000).div_euclid(86_400_000_000_000)
    };
    let mut pending_drop: Vec<SymbolName> = Vec::new();
    let mut unsynced_for = 0u64;
    let mut feed_alerted = false;
    let mut next_summary = Instant::now() + Duration::from_secs(3600);
    let mut silent_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let mut busy = false;
        while let Some(sym) = snap_q.pop() {
            busy = true;
            if !current.contains(&sym) && !pending_drop.contains(&sym) {
                continue;
            }
            match rest.depth(&sym, l.snapshot_limit) {
                Ok(body) => {
                    let _ = inbox.push(NetCmd::Snapshot { symbol: sym, body, local_ts_ns: clock::wall_ns() });
                    let _ = waker.wake();
                }
                Err(e) => {
                    eprintln!("warn: snapshot {sym}: {e}; asking again");
                    let _ = snap_q.push(sym);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        while let Some(r) = reports.pop() {
            print_interval(&r);
            let unsynced: Vec<String> = r.symbols.iter().filter(|s| !s.2).map(|s| s.0.to_string()).collect();
            if !unsynced.is_empty() {
                unsynced_for += l.report_interval_secs;
                if unsynced_for >= cfg.alerts.feed_down_secs && !feed_alerted {
                    feed_alerted = true;
                    say(format!("⚠️ unsynced for {unsynced_for} s: {}", unsynced.join(", ")));
                }
            } else {
                unsynced_for = 0;
                feed_alerted = false;
            }
            if cfg.alerts.hourly_summary && Instant::now() >= next_summary {
                next_summary = Instant::now() + Duration::from_secs(3600);
                say(format!(
                    "🕐 hourly: {} events; {}",
                    r.events,
                    r.symbols
                        .iter()
                        .map(|s| format!("{} {} trades{}", s.0, s.1, if s.3 { " (open)" } else { "" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if Instant::now() >= next_health {
            next_health = Instant::now() + Duration::from_secs(l.health_interval_secs.max(1));
            match rest.health(l.ping_samples) {
                Ok(h) => {
                    warn_health(&l, &h);
                    let _ = side.push(ControlRecord::Health {
                        ts_ms: clock::wall_ns() / 1_000_000,
                        rtt_ms: h.rtt_ms,
                        offset_ms: h.offset_ms,
                    });
                }
                Err(e) => eprintln!("warn: link health: {e}"),
            }
        }
        // Daily reselection at reselect_hour_utc (auto mode only).
        let now_ns = clock::wall_ns();
        let day = if l.reselect_every_secs > 0 {
            now_ns.div_euclid(l.reselect_every_secs as i64 * 1_000_000_000)
        } else {
            (now_ns - l.reselect_hour_utc as i64 * 3_600_000_000_000).div_euclid(86_400_000_000_000)
        };
        if opts.symbols.is_empty() && l.symbols.is_empty() && day != last_reselect_day {
            last_reselect_day = day;
            match rest.quote_volumes() {
                Ok(vols) => {
                    let sel = select_top(&listings, &vols, l.top_n, &names(&l.exclude).unwrap_or_default());
                    let next: Vec<SymbolName> = sel.iter().map(|s| s.0).collect();
                    let added: Vec<SymbolName> = next.iter().filter(|s| !current.contains(s)).copied().collect();
                    let dropped: Vec<SymbolName> = current.iter().filter(|s| !next.contains(s)).copied().collect();
                    eprintln!("reselection: +{added:?} -{dropped:?}");
                    say(format!("🔁 reselection: +{added:?} -{dropped:?}"));
                    if !added.is_empty() {
                        let (m, p) = streams_for(&l, &added);
                        let _ = inbox.push(NetCmd::subscribe(Route::Market, m));
                        let _ = inbox.push(NetCmd::subscribe(Route::Public, p));
                        let _ = waker.wake();
                    }
                    pending_drop.extend(dropped);
                    current = next;
                    selections += 1;
                    let _ = side.push(ControlRecord::Selection {
                        ts_ms: now_ns / 1_000_000,
                        reason: "daily",
                        symbols: sel,
                    });
                }
                Err(e) => eprintln!("warn: reselection: {e}; keeping the current symbols"),
            }
        }
        // A dropped symbol is unsubscribed once it has no open position.
        while let Some(PositionEvent { name: s, open }) = position_events.pop() {
            if open {
                open_now.push(s);
            } else {
                open_now.retain(|x| *x != s);
            }
        }
        if !pending_drop.is_empty() {
            let (keep, go): (Vec<SymbolName>, Vec<SymbolName>) =
                pending_drop.iter().partition(|s| open_now.contains(s));
            if !go.is_empty() {
                let (m, p) = streams_for(&l, &go);
                let _ = inbox.push(NetCmd::unsubscribe(Route::Market, m));
                let _ = inbox.push(NetCmd::unsubscribe(Route::Public, p));
                let _ = waker.wake();
            }
            pending_drop = keep;
        }
        if let Some(every) = ping_every
            && Instant::now() >= next_ping
        {
            next_ping = Instant::now() + every;
            let p = progress.load(Ordering::Relaxed);
            // Healthy: frames arrived since the last ping (a stalled feed or a dead net thread stops the pings).
            if p > last_progress {
                let _ = notifier.notify("WATCHDOG=1");
                silent_since = None;
            } else {
                let since = *silent_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(cfg.alerts.feed_down_secs) && !feed_alerted {
                    feed_alerted = true;
                    say(format!("⚠️ feed down: no market data for {:?}", since.elapsed()));
                }
                eprintln!("warn: no market data for {:?}: watchdog not fed", every);
            }
            last_progress = p;
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = notifier.notify("STOPPING=1");
    say("🛑 rusto stopping".into());
    let _ = waker.wake();
    let (net_stats, parse_stage, parse_stats, feed, net_result) = net_h.join().map_err(|_| LiveError::Thread("net"))?;
    let (engine, st) = compute_h.join().map_err(|_| LiveError::Thread("compute"))?;
    let (persist, persist_result) = persist_h.join().map_err(|_| LiveError::Thread("persist"))?;
    if let Some((_, t)) = alerts {
        let _ = t.join();
    }
    net_result?;
    persist_result?;
    let mut latency = vec![("parse", Summary::of(&parse_stage.hist))];
    latency.extend(st.summaries(&engine));
    latency.push(("persist_commit", Summary::of(&persist.commit_stage.hist)));
    Ok(LiveReport {
        net: net_stats,
        parse: parse_stats,
        engine,
        persist: persist.stats,
        latency,
        feed,
        symbols: current,
        health,
        rest: rest.stats.clone(),
        selections,
        elapsed: started.elapsed(),
    })
}

fn print_interval(r: &IntervalReport) {
    let syms: Vec<String> = r
        .symbols
        .iter()
        .map(|(n, t, synced, open)| {
            format!("{n}:{t}{}{}", if *synced { "" } else { "(unsynced)" }, if *open { "*" } else { "" })
        })
        .collect();
    eprintln!("events {}; {}\n{}", r.events, syms.join(" "), table(&r.latency));
}

/// Prints the current top symbols (`rusto symbols`).
pub fn print_symbols(cfg: &Config) -> Result<Vec<(SymbolName, f64)>, LiveError> {
    let ca = cfg.live.ca_file.as_ref().map(PathBuf::from);
    let mut rest = Rest::new(&cfg.live.rest_url, ca.as_deref(), cfg.live.weight_budget)?;
    let (_, listings) = rest.exchange_info()?;
    let vols = rest.quote_volumes()?;
    Ok(select_top(&listings, &vols, cfg.live.top_n, &names(&cfg.live.exclude)?))
}

/// `rusto record`: writes every frame (and REST snapshots, requested at start and after each public reconnect)
/// as `<local receive ns> <raw frame>` lines; gzip when the file name ends in `.gz`.
pub fn run_record(
    cfg: &Config,
    symbols: &[String],
    out: &std::path::Path,
    duration: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> Result<NetStats, LiveError> {
    let l = cfg.live.clone();
    let Start { mut rest, specs, selection, .. } = start(&l, symbols)?;
    let syms: Vec<SymbolName> = selection.iter().map(|s| s.0).collect();
    let file = std::fs::File::create(out).map_err(|e| LiveError::Io(format!("{}: {e}", out.display())))?;
    let mut w: Box<dyn std::io::Write + Send> = if out.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast()))
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    let (market, public) = streams_for(&l, &syms);
    let tls = if l.ws_url.starts_with("wss://") {
        Some(tls_config(l.ca_file.as_ref().map(PathBuf::from).as_deref())?)
    } else {
        None
    };
    let (mut net, waker) = Net::new(net_config(cfg)?, tls, market, public)?;
    let mut parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    // The recorder parses nothing downstream: events go to a ring nobody reads, dropped when full.
    let (ev_tx, _ev_rx) = ring::<MarketEvent>(1 << 12);
    let mut publisher = Publisher::new(ev_tx, FullPolicy::DropAndResync, cfg.parser.max_symbols);
    let inbox = Arc::new(NetInbox::new(256, waker.clone()));
    let (stop_net, inbox_net) = (stop.clone(), inbox.clone());
    let deadline = duration.map(|d| Instant::now() + d);
    let control = std::thread::spawn(move || {
        // Snapshots once the diff streams are flowing (so the recording can be synced), and hourly after.
        let mut next = Instant::now() + Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
                let _ = waker.wake();
                break;
            }
            if Instant::now() >= next {
                next = Instant::now() + Duration::from_secs(3600);
                for s in &syms {
                    match rest.depth(s, l.snapshot_limit) {
                        Ok(body) => {
                            let _ = inbox.push(NetCmd::Snapshot { symbol: *s, body, local_ts_ns: clock::wall_ns() });
                            let _ = waker.wake();
                        }
                        Err(e) => eprintln!("warn: snapshot {s}: {e}"),
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut write_err: Option<String> = None;
    let mut rec = |ts: i64, frame: &[u8]| {
        if write_err.is_none() {
            let r = write!(w, "{ts} ").and_then(|_| w.write_all(frame)).and_then(|_| w.write_all(b"\n"));
            if let Err(e) = r {
                write_err = Some(e.to_string());
            }
        }
    };
    use std::io::Write as _;
    let r = net.run(&mut parser, &mut publisher, &stop_net, &inbox_net, Some(&mut rec));
    stop_net.store(true, Ordering::Relaxed);
    let _ = control.join();
    r?;
    if let Some(e) = write_err {
        return Err(LiveError::Io(format!("{}: {e}", out.display())));
    }
    w.flush().map_err(|e| LiveError::Io(format!("{}: {e}", out.display())))?;
    drop(w);
    Ok(net.stats)
}

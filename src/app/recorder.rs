//! `rusto record`: the network thread writing raw frames to a file, with REST snapshots injected so the
//! recording can be synced on replay.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::app::config::{Config, FullPolicy};
use crate::app::control::Outbox;
use crate::app::live::{LiveError, Start, open_net, start};
use crate::handoff::publish::Publisher;
use crate::handoff::ring::ring;
use crate::ingest::net::{NetCmd, NetInbox, NetStats};
use crate::ingest::parse::Parser;
use crate::types::clock;
use crate::types::event::MarketEvent;
use crate::types::symbols::{SymbolName, SymbolTable};

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
    let Start { rest, specs, selection, .. } = start(&l, symbols)?;
    let syms: Vec<SymbolName> = selection.iter().map(|s| s.0).collect();
    let file = std::fs::File::create(out).map_err(|e| LiveError::Io(format!("{}: {e}", out.display())))?;
    let mut w: Box<dyn std::io::Write + Send> = if out.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast()))
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    let (mut net, waker) = open_net(cfg, &syms)?;
    let mut parser = Parser::new(SymbolTable::new(cfg.parser.max_symbols, specs), cfg.parser.max_frame_bytes);
    // The recorder parses nothing downstream: events go to a ring nobody reads, dropped when full.
    let (ev_tx, _ev_rx) = ring::<MarketEvent>(1 << 12);
    let mut publisher = Publisher::new(ev_tx, FullPolicy::DropAndResync, cfg.parser.max_symbols);
    let inbox = Arc::new(NetInbox::new(256, waker.clone()));
    let (stop_net, inbox_net) = (stop.clone(), inbox.clone());
    let deadline = duration.map(|d| Instant::now() + d);
    let snaps = Snapshots { rest, syms, limit: l.snapshot_limit, inbox, stop, deadline };
    let control = std::thread::spawn(move || snaps.run());
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
    if control.join().is_err() {
        log::warn!("the recorder's snapshot thread panicked");
    }
    r?;
    if let Some(e) = write_err {
        return Err(LiveError::Io(format!("{}: {e}", out.display())));
    }
    w.flush().map_err(|e| LiveError::Io(format!("{}: {e}", out.display())))?;
    drop(w);
    Ok(net.stats)
}

/// The recorder's control side: REST snapshots into the network thread's queue.
struct Snapshots {
    rest: crate::app::rest::Rest,
    syms: Vec<SymbolName>,
    limit: u32,
    inbox: Arc<NetInbox>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Snapshots {
    /// Snapshots once the diff streams are flowing, and hourly after, until `stop` (or the deadline).
    fn run(self) {
        let Snapshots { mut rest, syms, limit, inbox, stop, deadline } = self;
        // Snapshots once the diff streams are flowing (so the recording can be synced), and hourly after.
        let mut next = Instant::now() + Duration::from_secs(1);
        // Snapshots the network queue cannot take yet are kept and retried, never dropped.
        let mut outbox = Outbox::default();
        while !stop.load(Ordering::Relaxed) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
                inbox.wake();
                break;
            }
            if Instant::now() >= next {
                next = Instant::now() + Duration::from_secs(3600);
                for s in &syms {
                    match rest.depth(s, limit) {
                        Ok(body) => {
                            let cmd = NetCmd::Snapshot { symbol: *s, body, local_ts_ns: clock::wall_ns() };
                            outbox.send(&inbox, cmd);
                        }
                        Err(e) => log::warn!("snapshot {s}: {e}"),
                    }
                }
            }
            // Held snapshots go out as soon as the queue has room (each successful push wakes the network thread).
            outbox.flush(&inbox);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

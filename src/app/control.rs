//! The live control loop (the main thread of `rusto live`), one method per duty: snapshots for the compute
//! thread, interval reports and their alerts, link health, reselection, position tracking, feed silence, the
//! systemd watchdog.
//!
//! A feed with no frame for `alerts.feed_down_s` (a stall, a handshake that never completes, a dead link) is
//! warned once per episode, counted ([`ControlStats::feed_down`], the run's `net.feed_down`) and alerted, and its
//! end logged, whether or not systemd's watchdog is set (the watchdog is only fed while frames arrive).
//!
//! Each link-health check (at start, by `rusto live`, then every `health_interval_s`) also sets the paper orders'
//! one-way latency: the check's RTT, itself the median of its `ping_samples` REST pings (so one slow ping does not
//! move it), halved ([`one_way_ns`]) and published to the compute thread through one atomic
//! ([`MeasuredLatency`]); the latest check wins, so a route that got slower shows within one interval. The figure
//! in force is printed in each interval report and in the final summary.
//!
//! Two guarantees live here:
//! - a symbol with an open position is never unsubscribed: a symbol dropped by a reselection stays subscribed
//!   (and served snapshots) until every position on it (base and variants) has closed, then it is unsubscribed
//!   (open/close events counted per symbol; the interval reports' open flags are a second source);
//! - the drain is two-phase, so the compute thread cannot open a position between the check and the UNSUBSCRIBE:
//!   a dropped symbol is first drained ([`DrainCmd::Drain`]: the compute thread opens no new position on it), and
//!   unsubscribed only once the compute thread confirmed that drain with no position open
//!   ([`PositionEvent::drained`] carrying that drain's ticket); one selected again before is undrained. Drain
//!   commands the queue cannot take are held and retried like network commands ([`Outbox`]);
//! - nothing for the network thread is dropped: a command its queue cannot take now is kept, in order, and
//!   retried on the next turn of the loop (counted in [`ControlStats::cmd_retries`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use mio::Waker;

use crate::app::alert::Alerts;
use crate::app::config::{Config, LiveConfig};
use crate::app::metrics::{ControlFigures, Sources};
use crate::app::notify::Notifier;
use crate::app::rest::{Listing, Rest};
use crate::compute::thread::{ComputeHooks, IntervalReport, MeasuredLatency, SymbolActivity};
use crate::ingest::net::{NetCmd, NetInbox, Route};
use crate::persist::db::ControlRecord;
use crate::types::clock;
use crate::types::latency::table;
use crate::types::record::{DrainCmd, PositionEvent};
use crate::types::symbols::SymbolName;

/// The queues between the control thread and the others.
pub(crate) struct Links {
    /// Snapshot requests from compute.
    pub snapshots: Arc<ArrayQueue<SymbolName>>,
    /// Commands to the network thread (its push wakes the thread).
    pub inbox: Arc<NetInbox>,
    /// Interval reports from compute.
    pub reports: Arc<ArrayQueue<IntervalReport>>,
    /// Positions opened and closed, from compute.
    pub positions: Arc<ArrayQueue<PositionEvent>>,
    /// Control records (health, selections) to persistence.
    pub side: Arc<ArrayQueue<ControlRecord>>,
    /// Drain and undrain commands to compute.
    pub drains: Arc<ArrayQueue<DrainCmd>>,
    /// The measured one-way order latency, to compute (see the module doc).
    pub order_latency: Arc<MeasuredLatency>,
    /// The metrics endpoint's hand-overs and their interval (`[metrics]` on).
    pub metrics: Option<(Sources, Duration)>,
}

impl Links {
    /// The queues with their capacities; `waker` wakes the network thread's poll (from `Net::new`).
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        Links {
            snapshots: Arc::new(ArrayQueue::new(1024)),
            inbox: Arc::new(NetInbox::new(1024, waker)),
            reports: Arc::new(ArrayQueue::new(4)),
            positions: Arc::new(ArrayQueue::new(4096)),
            side: Arc::new(ArrayQueue::new(256)),
            drains: Arc::new(ArrayQueue::new(256)),
            order_latency: Arc::new(MeasuredLatency::new()),
            metrics: None,
        }
    }

    /// A link-health check: its RTT / 2 becomes the paper orders' latency (see the module doc).
    pub(crate) fn measured(&self, h: &crate::report::summary::Health) {
        self.order_latency.publish(one_way_ns(h.rtt_ms));
    }

    /// The compute thread's ends; a depth stream silent for `feed_down_s` of exchange time unsyncs its book.
    pub(crate) fn hooks(&self, l: &LiveConfig, feed_down_s: u64, alerts: Option<&Alerts>) -> ComputeHooks {
        ComputeHooks {
            depth_silence_ns: Some((feed_down_s as i64).saturating_mul(1_000_000_000)),
            alerts: alerts.map(|a| a.queue()),
            snapshot_requests: Some(self.snapshots.clone()),
            reports: (l.report_interval_s > 0)
                .then(|| (self.reports.clone(), Duration::from_secs(l.report_interval_s))),
            position_events: Some(self.positions.clone()),
            drains: Some(self.drains.clone()),
            order_latency: Some(self.order_latency.clone()),
            metrics: self.metrics.as_ref().map(|(src, every)| (src.compute.clone(), *every)),
        }
    }
}

/// The one-way latency of a round trip of `rtt_ms`: half of it, in ns (rounded).
pub(crate) fn one_way_ns(rtt_ms: f64) -> i64 {
    (rtt_ms * 1e6 / 2.0).round() as i64
}

/// Market and public stream names for `syms`.
pub(crate) fn streams_for(cfg: &LiveConfig, syms: &[SymbolName]) -> (Vec<String>, Vec<String>) {
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

/// The (un)subscription commands for `syms` on both routes: the one place they are built.
fn subscription(cfg: &LiveConfig, syms: &[SymbolName], subscribe: bool) -> [NetCmd; 2] {
    let (m, p) = streams_for(cfg, syms);
    if subscribe {
        [NetCmd::subscribe(Route::Market, m), NetCmd::subscribe(Route::Public, p)]
    } else {
        [NetCmd::unsubscribe(Route::Market, m), NetCmd::unsubscribe(Route::Public, p)]
    }
}

/// A bounded queue that hands an item back when it is full (never blocks, never drops).
pub(crate) trait Sink<T> {
    /// Queues `item`, or gives it back when full.
    fn offer(&self, item: T) -> Result<(), T>;
}

impl Sink<NetCmd> for NetInbox {
    /// The network thread's queue (a successful push wakes the thread; a refusal is counted there too).
    fn offer(&self, cmd: NetCmd) -> Result<(), NetCmd> {
        self.push(cmd)
    }
}

impl<T> Sink<T> for ArrayQueue<T> {
    fn offer(&self, item: T) -> Result<(), T> {
        self.push(item)
    }
}

impl<T, Q: Sink<T>> Sink<T> for Arc<Q> {
    fn offer(&self, item: T) -> Result<(), T> {
        (**self).offer(item)
    }
}

/// Items a queue could not take yet (network commands, drain commands), kept in order and retried.
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    held: VecDeque<T>,
    /// Pushes that found the queue full (each retried later).
    pub retries: u64,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Outbox { held: VecDeque::new(), retries: 0 }
    }
}

impl<T> Outbox<T> {
    /// Queues `item` behind any held ones and pushes what fits; true when something was pushed.
    pub(crate) fn send(&mut self, q: &impl Sink<T>, item: T) -> bool {
        self.send_all(q, [item])
    }

    /// Queues `items` behind any held ones and pushes what fits; true when something was pushed.
    pub(crate) fn send_all(&mut self, q: &impl Sink<T>, items: impl IntoIterator<Item = T>) -> bool {
        self.held.extend(items);
        self.flush(q)
    }

    /// Pushes held items in order until the queue is full; true when something was pushed.
    pub(crate) fn flush(&mut self, q: &impl Sink<T>) -> bool {
        let mut pushed = false;
        while let Some(item) = self.held.pop_front() {
            match q.offer(item) {
                Ok(()) => pushed = true,
                Err(item) => {
                    self.held.push_front(item);
                    self.retries += 1;
                    break;
                }
            }
        }
        pushed
    }

    /// Items still held.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

/// The selected symbols, those dropped but still subscribed, and the open positions per symbol.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// The current selection.
    pub current: Vec<SymbolName>,
    /// Dropped by a reselection, still subscribed until flat.
    pending_drop: Vec<SymbolName>,
    /// Open positions per symbol (base and variants each count).
    open: Vec<(SymbolName, u32)>,
    /// Symbols the compute thread's last interval report showed with an open position (a level, not an edge:
    /// a second source that heals a lost open event).
    reported_open: Vec<SymbolName>,
    /// The ticket of the drain sent for each dropped symbol.
    tickets: Vec<(SymbolName, u64)>,
    /// Dropped symbols whose current drain the compute thread confirmed (flat, opening nothing).
    drained: Vec<SymbolName>,
    /// Drain commands the reselections made, for the compute thread.
    due: Vec<DrainCmd>,
    /// The last drain ticket handed out.
    last_ticket: u64,
    /// Symbols unsubscribed after their drain (the compute thread still drains them until told otherwise).
    retired: Vec<SymbolName>,
}

impl Selection {
    /// Starts with `current` subscribed.
    pub(crate) fn new(current: Vec<SymbolName>) -> Self {
        Selection { current, ..Default::default() }
    }

    /// Still subscribed: selected, or dropped with an open position.
    pub(crate) fn subscribed(&self, s: &SymbolName) -> bool {
        self.current.contains(s) || self.pending_drop.contains(s)
    }

    /// A new ranking: returns (symbols to subscribe, symbols dropped). A dropped symbol is only unsubscribed by
    /// [`Selection::take_flat`]; one that comes back before that is neither subscribed again nor dropped.
    pub(crate) fn reselect(&mut self, next: Vec<SymbolName>) -> (Vec<SymbolName>, Vec<SymbolName>) {
        let added: Vec<SymbolName> = next.iter().filter(|s| !self.subscribed(s)).copied().collect();
        let dropped: Vec<SymbolName> = self.current.iter().filter(|s| !next.contains(s)).copied().collect();
        let back = self.pending_drop.iter().chain(&self.retired).filter(|s| next.contains(s));
        self.due.extend(back.map(|&name| DrainCmd::Undrain { name }));
        self.retired.retain(|s| !next.contains(s));
        self.pending_drop.retain(|s| !next.contains(s));
        self.tickets.retain(|(s, _)| !next.contains(s));
        self.drained.retain(|s| !next.contains(s));
        for &name in &dropped {
            self.last_ticket += 1;
            self.due.push(DrainCmd::Drain { name, ticket: self.last_ticket });
            self.tickets.push((name, self.last_ticket));
            self.pending_drop.push(name);
        }
        self.current = next;
        (added, dropped)
    }

    /// The drain and undrain commands the reselections made since the last call, in order.
    pub(crate) fn take_drain_cmds(&mut self) -> Vec<DrainCmd> {
        std::mem::take(&mut self.due)
    }

    /// A position opened or closed, or a drain confirmed (or no longer: the symbol is not drained).
    pub(crate) fn position(&mut self, ev: PositionEvent) {
        self.drained.retain(|s| *s != ev.name);
        // Only the confirmation of the drain last sent counts (an earlier one may predate an undrain).
        if ev.drained.is_some_and(|t| self.tickets.contains(&(ev.name, t))) {
            self.drained.push(ev.name);
        }
        match self.open.iter_mut().position(|(s, _)| *s == ev.name) {
            Some(i) if ev.open => self.open[i].1 += 1,
            Some(i) => {
                self.open[i].1 -= 1;
                if self.open[i].1 == 0 {
                    self.open.swap_remove(i);
                }
            }
            None if ev.open => self.open.push((ev.name, 1)),
            // A close without its open (tracking started after it): nothing is open on that symbol now.
            None => {}
        }
    }

    /// The symbols an interval report shows with an open position.
    pub(crate) fn reported(&mut self, open: impl Iterator<Item = SymbolName>) {
        self.reported_open.clear();
        self.reported_open.extend(open);
    }

    /// True while a position is open on `s` (by the events, or by the last report).
    pub(crate) fn is_open(&self, s: &SymbolName) -> bool {
        self.open.iter().any(|(x, _)| x == s) || self.reported_open.contains(s)
    }

    /// True when the compute thread confirmed the current drain of `s` (flat, opening nothing).
    pub(crate) fn is_drained(&self, s: &SymbolName) -> bool {
        self.drained.contains(s)
    }

    /// The dropped symbols whose drain the compute thread confirmed and with no open position: they leave the
    /// subscribed set now.
    pub(crate) fn take_flat(&mut self) -> Vec<SymbolName> {
        let (keep, go): (Vec<SymbolName>, Vec<SymbolName>) =
            self.pending_drop.iter().partition(|s| self.is_open(s) || !self.is_drained(s));
        self.pending_drop = keep;
        self.tickets.retain(|(s, _)| !go.contains(s));
        self.drained.retain(|s| !go.contains(s));
        self.retired.extend(go.iter().copied());
        go
    }

    /// Dropped symbols still subscribed because a position is open.
    pub(crate) fn pending_drop(&self) -> &[SymbolName] {
        &self.pending_drop
    }
}

/// Counters of the control thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct ControlStats {
    /// Control records persistence's queue could not take (a health or selection row lost).
    pub side_dropped: u64,
    /// Network commands retried because the queue was full.
    pub cmd_retries: u64,
    /// Network thread wake-ups that failed (it still polls on its own timeout).
    pub wake_failed: u64,
    /// systemd notifications that failed.
    pub notify_failed: u64,
    /// Snapshot requests retried after a REST error.
    pub snapshot_retries: u64,
    /// Drain commands retried because the compute thread's queue was full.
    pub drain_retries: u64,
    /// Episodes of a silent feed: no frame for `alerts.feed_down_s` (each warned once, its end logged).
    pub feed_down: u64,
}

/// Start-up facts the control loop needs.
pub(crate) struct ControlStart {
    /// REST client.
    pub rest: Rest,
    /// exchangeInfo selection facts.
    pub listings: Vec<Listing>,
    /// Never selected (`live.exclude`).
    pub exclude: Vec<SymbolName>,
    /// Initial symbols.
    pub current: Vec<SymbolName>,
    /// Auto selection (no manual symbols).
    pub auto: bool,
    /// Frames received by the network thread.
    pub progress: Arc<AtomicU64>,
    /// Alerts, when enabled.
    pub alerts: Option<Alerts>,
    /// The order routing's clock and halt switch, when orders are routed.
    pub orders: Option<crate::app::orders::OrderControl>,
    /// The start-up link health.
    pub health: crate::report::summary::Health,
}

/// How often the feed-silence duty looks at the network thread's frame count.
const FEED_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Feed-down bookkeeping: symbols unsynced in the interval reports, and the silence of the whole feed (watched
/// on its own, whether or not systemd's watchdog is set).
#[derive(Debug)]
struct FeedWatch {
    unsynced_for: u64,
    alerted: bool,
    /// Frames received when last looked at, and when that count last moved.
    last_progress: u64,
    last_frame_at: Instant,
    next_check: Instant,
    /// In a silence episode (warned and counted once).
    down: bool,
    /// `depth_silent` of the last interval report (a rise is warned).
    depth_silent: u64,
}

impl FeedWatch {
    fn new(now: Instant) -> Self {
        FeedWatch {
            unsynced_for: 0,
            alerted: false,
            last_progress: 0,
            last_frame_at: now,
            next_check: now,
            down: false,
            depth_silent: 0,
        }
    }
}

/// The systemd watchdog: pings only while frames keep arriving.
struct Watchdog {
    notifier: Notifier,
    every: Option<Duration>,
    next: Instant,
    last_progress: u64,
}

/// The live control loop.
pub(crate) struct Control<'a> {
    cfg: &'a Config,
    l: &'a LiveConfig,
    auto: bool,
    rest: Rest,
    listings: Vec<Listing>,
    exclude: Vec<SymbolName>,
    links: Links,
    progress: Arc<AtomicU64>,
    alerts: Option<Alerts>,
    orders: Option<crate::app::orders::OrderControl>,
    /// What is selected and subscribed.
    pub sel: Selection,
    outbox: Outbox<NetCmd>,
    drains: Outbox<DrainCmd>,
    snapshot_retry: VecDeque<SymbolName>,
    next_health: Instant,
    reselect_slot: i64,
    next_summary: Instant,
    feed: FeedWatch,
    watchdog: Watchdog,
    /// Selections made (the start one included).
    pub selections: u64,
    /// Counters.
    pub stats: ControlStats,
    /// The last link health and the failed checks, for the metrics endpoint.
    figures: ControlFigures,
    next_metrics: Instant,
}

/// The reselection slot `now_ns` falls in: every `reselect_every_s`, or the UTC day shifted by the hour.
fn reselect_slot(l: &LiveConfig, now_ns: i64) -> i64 {
    if l.reselect_every_s > 0 {
        now_ns.div_euclid(l.reselect_every_s as i64 * 1_000_000_000)
    } else {
        (now_ns - l.reselect_hour_utc as i64 * 3_600_000_000_000).div_euclid(86_400_000_000_000)
    }
}

impl<'a> Control<'a> {
    /// The loop's state at start (health and the start selection are already recorded by the caller).
    pub(crate) fn new(cfg: &'a Config, links: Links, s: ControlStart) -> Self {
        let l = &cfg.live;
        let notifier = Notifier::from_env();
        let every = notifier.watchdog.map(|w| w / 2);
        Control {
            cfg,
            l,
            auto: s.auto,
            rest: s.rest,
            listings: s.listings,
            exclude: s.exclude,
            links,
            progress: s.progress,
            alerts: s.alerts,
            orders: s.orders,
            sel: Selection::new(s.current),
            outbox: Outbox::default(),
            drains: Outbox::default(),
            snapshot_retry: VecDeque::new(),
            next_health: Instant::now() + Duration::from_secs(l.health_interval_s.max(1)),
            reselect_slot: reselect_slot(l, clock::wall_ns()),
            next_summary: Instant::now() + Duration::from_secs(3600),
            feed: FeedWatch::new(Instant::now()),
            watchdog: Watchdog { notifier, every, next: Instant::now(), last_progress: 0 },
            selections: 1,
            stats: ControlStats::default(),
            figures: ControlFigures { rtt_ms: s.health.rtt_ms, offset_ms: s.health.offset_ms, ..Default::default() },
            next_metrics: Instant::now(),
        }
    }

    /// The REST client (its counters go into the report).
    pub(crate) fn rest(&self) -> &Rest {
        &self.rest
    }

    /// The REST client, for the end of the run (the control loop is over).
    pub(crate) fn rest_mut(&mut self) -> &mut Rest {
        &mut self.rest
    }

    /// Joins the order routing's worker threads (once the network thread has ended).
    pub(crate) fn join_order_workers(&mut self) {
        if let Some(o) = self.orders.as_mut() {
            o.join_rest_worker();
        }
    }

    /// True when the run routed orders.
    pub(crate) fn routes_orders(&self) -> bool {
        self.orders.is_some()
    }

    /// Runs until `stop` (or `deadline`, which then sets `stop`).
    pub(crate) fn run(&mut self, stop: &AtomicBool, deadline: Option<Instant>) {
        self.notify(&format!("READY=1\nSTATUS=paper trading {} symbols", self.sel.current.len()));
        while !stop.load(Ordering::Relaxed) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            let busy = self.snapshots();
            self.reports();
            if self.orders.as_ref().is_some_and(|o| o.duties()) {
                // The order session saw -1021: measure the clock offset now.
                self.next_health = Instant::now();
            }
            self.health();
            self.reselection();
            self.positions();
            self.feed_silence();
            self.watchdog();
            self.publish_metrics();
            // Held commands go out as soon as the queue has room (each successful push wakes the network thread).
            self.outbox.flush(&self.links.inbox);
            self.drains.flush(&self.links.drains);
            if !busy {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.notify("STOPPING=1");
        self.say("🛑 rusto stopping".into());
        self.links.inbox.wake();
        self.stats.wake_failed = self.links.inbox.wake_errors();
        self.stats.cmd_retries = self.outbox.retries;
        self.stats.drain_retries = self.drains.retries;
        if self.drains.held() > 0 {
            log::warn!("{} drain commands not delivered at shutdown", self.drains.held());
        }
        if self.outbox.held() > 0 {
            log::warn!("{} network commands not delivered at shutdown", self.outbox.held());
        }
    }

    /// Duty: the copy for the metrics endpoint every `publish_interval_ms` (`[metrics]` on).
    fn publish_metrics(&mut self) {
        let Some((src, every)) = &self.links.metrics else { return };
        if Instant::now() < self.next_metrics {
            return;
        }
        self.next_metrics = Instant::now() + *every;
        let f = ControlFigures {
            feed_down: self.stats.feed_down,
            feed_is_down: self.feed.down,
            snapshot_retries: self.stats.snapshot_retries,
            side_dropped: self.stats.side_dropped,
            selections: self.selections,
            ..self.figures
        };
        // A copy with no free buffer is skipped and counted by the hand-over.
        let _ = src.control.publish(|c| *c = f);
    }

    /// Sends a text alert (when alerts are on).
    pub(crate) fn say(&self, text: String) {
        if let Some(a) = &self.alerts {
            a.send(crate::types::record::Alert::Text(text));
        }
    }

    /// Records a control row for persistence; a full queue loses the row, counted.
    pub(crate) fn record(&mut self, r: ControlRecord) {
        if self.links.side.push(r).is_err() {
            self.stats.side_dropped += 1;
            log::warn!("control record dropped: persistence queue full ({} so far)", self.stats.side_dropped);
        }
    }

    fn notify(&mut self, msg: &str) {
        if let Err(e) = self.watchdog.notifier.notify(msg) {
            self.stats.notify_failed += 1;
            if self.stats.notify_failed == 1 {
                log::warn!("systemd notify: {e}");
            }
        }
    }

    /// Queues `cmd` for the network thread (a successful push wakes it).
    fn send(&mut self, cmd: NetCmd) {
        self.outbox.send(&self.links.inbox, cmd);
    }

    /// Duty: REST depth snapshots the compute thread asked for (subscribed symbols only); a failed one is asked
    /// again on the next turn.
    fn snapshots(&mut self) -> bool {
        let mut todo: Vec<SymbolName> = self.snapshot_retry.drain(..).collect();
        while let Some(sym) = self.links.snapshots.pop() {
            todo.push(sym);
        }
        let busy = !todo.is_empty();
        for sym in todo {
            if !self.sel.subscribed(&sym) {
                continue;
            }
            match self.rest.depth(&sym, self.l.snapshot_limit) {
                Ok(body) => self.send(NetCmd::Snapshot { symbol: sym, body, local_ts_ns: clock::wall_ns() }),
                Err(e) => {
                    log::warn!("snapshot {sym}: {e}; asking again");
                    self.stats.snapshot_retries += 1;
                    if !self.snapshot_retry.contains(&sym) {
                        self.snapshot_retry.push_back(sym);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        busy
    }

    /// Duty: interval reports (printed) and the alerts they raise.
    fn reports(&mut self) {
        while let Some(r) = self.links.reports.pop() {
            print_interval(&r, self.cfg.position.order_latency_ms);
            self.sel.reported(r.symbols.iter().filter(|s| s.open_position).map(|s| s.name));
            self.report_alerts(&r);
        }
    }

    /// Duty: alerts on a report: a symbol unsynced for `feed_down_s`, and the hourly summary.
    fn report_alerts(&mut self, r: &IntervalReport) {
        if r.hooks.depth_silent > self.feed.depth_silent {
            let unsynced: Vec<&str> = r.symbols.iter().filter(|s| !s.synced).map(|s| s.name.as_str()).collect();
            log::warn!(
                "depth silent for {} s while trades went on: {} book(s) marked unsynced, resyncing (unsynced now: {})",
                self.cfg.alerts.feed_down_s,
                r.hooks.depth_silent - self.feed.depth_silent,
                unsynced.join(", ")
            );
            self.feed.depth_silent = r.hooks.depth_silent;
        }
        let unsynced: Vec<String> = r.symbols.iter().filter(|s| !s.synced).map(|s| s.name.to_string()).collect();
        if !unsynced.is_empty() {
            self.feed.unsynced_for += self.l.report_interval_s;
            if self.feed.unsynced_for >= self.cfg.alerts.feed_down_s && !self.feed.alerted {
                self.feed.alerted = true;
                self.say(format!("⚠️ unsynced for {} s: {}", self.feed.unsynced_for, unsynced.join(", ")));
            }
        } else {
            self.feed.unsynced_for = 0;
            self.feed.alerted = false;
        }
        if self.cfg.alerts.hourly_summary && Instant::now() >= self.next_summary {
            self.next_summary = Instant::now() + Duration::from_secs(3600);
            let syms: Vec<String> = r
                .symbols
                .iter()
                .map(|s| format!("{} {} trades{}", s.name, s.trades, if s.open_position { " (open)" } else { "" }))
                .collect();
            self.say(format!("🕐 hourly: {} events; {}", r.events, syms.join(", ")));
        }
    }

    /// Duty: link health every `health_interval_s`, warned and recorded.
    fn health(&mut self) {
        if Instant::now() < self.next_health {
            return;
        }
        self.next_health = Instant::now() + Duration::from_secs(self.l.health_interval_s.max(1));
        match self.rest.health(self.l.ping_samples) {
            Ok(h) => {
                (self.figures.rtt_ms, self.figures.offset_ms) = (h.rtt_ms, h.offset_ms);
                warn_health(self.l, &h);
                self.links.measured(&h);
                if let Some(o) = &self.orders {
                    o.clock.set_offset_ms(h.offset_ms);
                }
                let ts_ms = clock::wall_ns() / 1_000_000;
                self.record(ControlRecord::Health { ts_ms, rtt_ms: h.rtt_ms, offset_ms: h.offset_ms });
            }
            Err(e) => {
                self.figures.health_failures += 1;
                log::warn!("link health: {e}");
            }
        }
    }

    /// Duty: the daily (or every `reselect_every_s`) reselection in auto mode: new symbols subscribed at once,
    /// dropped ones left to [`Control::positions`].
    fn reselection(&mut self) {
        let now_ns = clock::wall_ns();
        let slot = reselect_slot(self.l, now_ns);
        if !self.auto || slot == self.reselect_slot {
            return;
        }
        self.reselect_slot = slot;
        let mut sel = match self.rest.top(&self.listings, self.l.top_n, &self.exclude) {
            Ok(sel) => sel,
            Err(e) => return log::warn!("reselection: {e}; keeping the current symbols"),
        };
        if let Some(o) = &self.orders {
            // Real orders: a new symbol is traded only once its margin type and leverage are set.
            let new: Vec<SymbolName> = sel.iter().map(|s| s.0).filter(|s| !self.sel.subscribed(s)).collect();
            if !new.is_empty() {
                let ok = o.prepare_added(&mut self.rest, &new);
                sel.retain(|s| !new.contains(&s.0) || ok.contains(&s.0));
            }
        }
        let (added, dropped) = self.sel.reselect(sel.iter().map(|s| s.0).collect());
        self.drains.send_all(&self.links.drains, self.sel.take_drain_cmds());
        if added.is_empty() && dropped.is_empty() {
            log::debug!("reselection: no change");
        } else {
            log::info!("reselection: +{added:?} -{dropped:?}");
            self.say(format!("🔁 reselection: +{added:?} -{dropped:?}"));
        }
        if !added.is_empty() {
            for cmd in subscription(self.l, &added, true) {
                self.send(cmd);
            }
        }
        self.selections += 1;
        self.record(ControlRecord::Selection { ts_ms: now_ns / 1_000_000, reason: "daily", symbols: sel });
    }

    /// Duty: position tracking: opened and closed positions, then the dropped symbols that are flat are
    /// unsubscribed (never one with an open position).
    fn positions(&mut self) {
        while let Some(ev) = self.links.positions.pop() {
            let was_open = self.sel.is_open(&ev.name);
            self.sel.position(ev);
            if was_open && !ev.open && self.sel.pending_drop().contains(&ev.name) {
                log::info!("position closed on {} (dropped from the selection)", ev.name);
            }
            if self.sel.is_drained(&ev.name) {
                log::info!("{}: drained (no open position, no new entry)", ev.name);
            }
        }
        let go = self.sel.take_flat();
        if !go.is_empty() {
            log::info!("unsubscribing {go:?} (no open position)");
            for cmd in subscription(self.l, &go, false) {
                self.send(cmd);
            }
        }
    }

    /// Duty: a feed silent for `alerts.feed_down_s` (no frame on any connection: a stall, a handshake that never
    /// ends, a dead link) is warned once per episode, counted ([`ControlStats::feed_down`]) and alerted; its end is
    /// logged. Runs whether or not systemd's watchdog is set.
    fn feed_silence(&mut self) {
        let now = Instant::now();
        if now < self.feed.next_check {
            return;
        }
        self.feed.next_check = now + FEED_CHECK_EVERY;
        let p = self.progress.load(Ordering::Relaxed);
        if p != self.feed.last_progress {
            let silent = now.duration_since(self.feed.last_frame_at);
            self.feed.last_progress = p;
            self.feed.last_frame_at = now;
            if std::mem::take(&mut self.feed.down) {
                log::info!("feed back: market data again after {:.1} s of silence", silent.as_secs_f64());
                self.say(format!("✅ feed back after {:.0} s", silent.as_secs_f64()));
            }
            return;
        }
        let silent = now.duration_since(self.feed.last_frame_at);
        if !self.feed.down && silent >= Duration::from_secs(self.cfg.alerts.feed_down_s) {
            self.feed.down = true;
            self.stats.feed_down += 1;
            log::warn!(
                "feed down: no market data for {:.1} s (alerts.feed_down_s = {})",
                silent.as_secs_f64(),
                self.cfg.alerts.feed_down_s
            );
            self.say(format!("⚠️ feed down: no market data for {:.0} s", silent.as_secs_f64()));
        }
    }

    /// Duty: the systemd watchdog, fed only while frames arrive (the silence itself is [`Control::feed_silence`]'s).
    fn watchdog(&mut self) {
        let Some(every) = self.watchdog.every else { return };
        if Instant::now() < self.watchdog.next {
            return;
        }
        self.watchdog.next = Instant::now() + every;
        let p = self.progress.load(Ordering::Relaxed);
        if p > self.watchdog.last_progress {
            self.notify("WATCHDOG=1");
        } else {
            log::warn!("no market data for {every:?}: watchdog not fed");
        }
        self.watchdog.last_progress = p;
    }
}

/// Logs the link health, warning above the configured limits.
pub(crate) fn warn_health(cfg: &LiveConfig, h: &crate::report::summary::Health) {
    log::info!("link: REST rtt {:.2} ms, clock offset {:+.1} ms", h.rtt_ms, h.offset_ms);
    if h.offset_ms.abs() > cfg.time_offset_ms_max {
        log::warn!("clock offset {:+.1} ms exceeds {} ms: check NTP", h.offset_ms, cfg.time_offset_ms_max);
    }
    if h.rtt_ms > cfg.latency_ms_max {
        log::warn!("REST round trip {:.2} ms exceeds {} ms", h.rtt_ms, cfg.latency_ms_max);
    }
}

/// The order latency in force, for the reports: measured (REST RTT / 2) or the configured `order_latency_ms`.
pub(crate) fn latency_text(measured_ns: Option<i64>, config_ms: f64) -> String {
    match measured_ns {
        Some(ns) => format!("order latency {:.3} ms (measured: REST rtt / 2)", ns as f64 / 1e6),
        None => format!("order latency {config_ms} ms (config)"),
    }
}

/// Prints an interval report: a multi-line table for the operator, on the control thread (never a hot thread).
fn print_interval(r: &IntervalReport, config_latency_ms: f64) {
    let syms: Vec<String> = r
        .symbols
        .iter()
        .map(|SymbolActivity { name: n, trades: t, synced, open_position: open }| {
            format!("{n}:{t}{}{}", if *synced { "" } else { "(unsynced)" }, if *open { "*" } else { "" })
        })
        .collect();
    let h = &r.hooks;
    let lost = h.reports_dropped + h.alerts_dropped + h.snapshot_requests_dropped + h.position_events_deferred;
    let hooks = if lost == 0 {
        String::new()
    } else {
        format!(
            "; compute hooks: reports dropped {}, alerts dropped {}, snapshot requests dropped {}, position \
             states deferred {}",
            h.reports_dropped, h.alerts_dropped, h.snapshot_requests_dropped, h.position_events_deferred
        )
    };
    let latency = latency_text(r.order_latency_ns, config_latency_ms);
    eprintln!("events {}; {}; {latency}{hooks}\n{}", r.events, syms.join(" "), table(&r.latency));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::net::SubscribeCmd;

    fn s(n: &str) -> SymbolName {
        SymbolName::new(n.as_bytes()).unwrap()
    }

    fn ev(n: &str, open: bool) -> PositionEvent {
        PositionEvent { name: s(n), open, drained: None }
    }

    /// The drain ticket the reselections sent for `n` (the compute thread's confirmation echoes it).
    fn ticket(cmds: &[DrainCmd], n: &str) -> u64 {
        cmds.iter()
            .rev()
            .find_map(|c| match *c {
                DrainCmd::Drain { name, ticket } if name == s(n) => Some(ticket),
                _ => None,
            })
            .unwrap()
    }

    /// The compute thread's confirmation that `n` is drained under `ticket` (the closing event when one was open).
    fn drained(n: &str, ticket: u64) -> PositionEvent {
        PositionEvent { name: s(n), open: false, drained: Some(ticket) }
    }

    #[test]
    fn a_symbol_with_an_open_position_stays_subscribed_until_it_closes() {
        let mut sel = Selection::new(vec![s("AUSDT"), s("BUSDT")]);
        sel.position(ev("AUSDT", true)); // base
        sel.position(ev("AUSDT", true)); // a variant
        let (added, dropped) = sel.reselect(vec![s("BUSDT"), s("CUSDT")]);
        assert_eq!((added, dropped), (vec![s("CUSDT")], vec![s("AUSDT")]));
        let cmds = sel.take_drain_cmds();
        assert_eq!(cmds, vec![DrainCmd::Drain { name: s("AUSDT"), ticket: ticket(&cmds, "AUSDT") }]);
        assert!(sel.take_drain_cmds().is_empty(), "sent once");
        assert!(sel.take_flat().is_empty(), "open: kept");
        assert!(sel.subscribed(&s("AUSDT")), "snapshots still served");
        sel.position(ev("AUSDT", false));
        assert!(sel.take_flat().is_empty(), "the variant's position is still open");
        sel.position(drained("AUSDT", ticket(&cmds, "AUSDT")));
        assert_eq!(sel.take_flat(), vec![s("AUSDT")]);
        assert!(!sel.subscribed(&s("AUSDT")));
        assert!(sel.take_flat().is_empty(), "unsubscribed once");
    }

    #[test]
    fn a_flat_dropped_symbol_waits_for_the_compute_threads_drain_confirmation() {
        let mut sel = Selection::new(vec![s("AUSDT")]);
        sel.reselect(vec![]);
        let t = ticket(&sel.take_drain_cmds(), "AUSDT");
        assert!(sel.take_flat().is_empty(), "flat as far as the control thread knows, but not confirmed");
        // Before the drain reached it, the compute thread opened a position: the race this closes.
        sel.position(ev("AUSDT", true));
        assert!(sel.take_flat().is_empty());
        sel.position(ev("AUSDT", false));
        assert!(sel.take_flat().is_empty(), "closed, but new entries may still open until the drain is confirmed");
        sel.position(drained("AUSDT", t));
        assert_eq!(sel.take_flat(), vec![s("AUSDT")]);
    }

    #[test]
    fn an_interval_report_showing_an_open_position_keeps_the_symbol_even_without_its_event() {
        let mut sel = Selection::new(vec![s("AUSDT")]);
        sel.reported([s("AUSDT")].into_iter()); // The open event was lost; the report still shows it.
        sel.reselect(vec![]);
        let t = ticket(&sel.take_drain_cmds(), "AUSDT");
        sel.position(drained("AUSDT", t));
        assert!(sel.take_flat().is_empty(), "the report still shows it open");
        sel.reported(std::iter::empty());
        assert_eq!(sel.take_flat(), vec![s("AUSDT")]);
    }

    #[test]
    fn a_dropped_symbol_that_comes_back_is_neither_resubscribed_nor_unsubscribed() {
        let mut sel = Selection::new(vec![s("AUSDT")]);
        sel.position(ev("AUSDT", true));
        sel.reselect(vec![s("BUSDT")]);
        let first = ticket(&sel.take_drain_cmds(), "AUSDT");
        let (added, dropped) = sel.reselect(vec![s("AUSDT")]);
        assert!(added.is_empty(), "still subscribed: {added:?}");
        assert_eq!(dropped, vec![s("BUSDT")]);
        let cmds = sel.take_drain_cmds();
        assert_eq!(cmds[0], DrainCmd::Undrain { name: s("AUSDT") }, "back in the ranking: trades normally again");
        sel.position(drained("BUSDT", ticket(&cmds, "BUSDT")));
        sel.position(drained("AUSDT", first)); // A confirmation of the first drain, sent before the undrain.
        assert_eq!(sel.take_flat(), vec![s("BUSDT")], "only the symbol really dropped");
        assert!(sel.subscribed(&s("AUSDT")));
    }

    #[test]
    fn a_symbol_selected_again_after_its_unsubscribe_is_undrained_and_subscribed() {
        let mut sel = Selection::new(vec![s("AUSDT")]);
        sel.reselect(vec![]);
        let t = ticket(&sel.take_drain_cmds(), "AUSDT");
        sel.position(drained("AUSDT", t));
        assert_eq!(sel.take_flat(), vec![s("AUSDT")]);
        let (added, _) = sel.reselect(vec![s("AUSDT")]);
        assert_eq!(added, vec![s("AUSDT")], "subscribed again");
        assert_eq!(sel.take_drain_cmds(), vec![DrainCmd::Undrain { name: s("AUSDT") }], "and trades again");
        sel.reselect(vec![s("AUSDT")]);
        assert!(sel.take_drain_cmds().is_empty(), "undrained once");
    }

    #[test]
    fn a_confirmation_of_an_earlier_drain_never_unsubscribes() {
        let mut sel = Selection::new(vec![s("AUSDT")]);
        sel.reselect(vec![]);
        let first = ticket(&sel.take_drain_cmds(), "AUSDT");
        sel.reselect(vec![s("AUSDT")]); // Undrained: the compute thread may open a position again ...
        sel.reselect(vec![]); // ... and dropped again before it saw either command.
        let second = ticket(&sel.take_drain_cmds(), "AUSDT");
        assert_ne!(first, second);
        sel.position(drained("AUSDT", first)); // Stale: predates the undrain.
        assert!(sel.take_flat().is_empty(), "a stale confirmation is not this drain's");
        sel.position(drained("AUSDT", second));
        assert_eq!(sel.take_flat(), vec![s("AUSDT")]);
    }

    #[test]
    fn a_health_check_sets_the_order_latency_to_half_its_round_trip() {
        let poll = mio::Poll::new().unwrap();
        let links = Links::new(Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap()));
        let hooks = links.hooks(&LiveConfig::default(), 60, None);
        let seen = hooks.order_latency.as_ref().unwrap();
        assert_eq!(seen.get(), None, "nothing measured yet");
        links.measured(&crate::report::summary::Health { rtt_ms: 0.223565, offset_ms: 1.0 });
        assert_eq!(seen.get(), Some(111_783), "RTT / 2, ns, rounded");
        links.measured(&crate::report::summary::Health { rtt_ms: 3.0, offset_ms: 1.0 });
        assert_eq!(seen.get(), Some(1_500_000), "the latest check wins");
        assert_eq!(latency_text(seen.get(), 5.0), "order latency 1.500 ms (measured: REST rtt / 2)");
        assert_eq!(latency_text(None, 5.0), "order latency 5 ms (config)");
    }

    #[test]
    fn drain_commands_the_queue_cannot_take_are_kept_in_order_and_retried() {
        let q = ArrayQueue::new(1);
        let mut out = Outbox::default();
        let (a, b) = (DrainCmd::Drain { name: s("AUSDT"), ticket: 1 }, DrainCmd::Undrain { name: s("BUSDT") });
        out.send_all(&q, [a, b]);
        assert_eq!((out.held(), out.retries), (1, 1));
        out.flush(&q);
        assert_eq!(out.retries, 2, "still full");
        assert_eq!(q.pop(), Some(a));
        out.flush(&q);
        assert_eq!((q.pop(), out.held()), (Some(b), 0), "in order, none lost");
    }

    #[test]
    fn commands_the_queue_cannot_take_are_kept_in_order_and_retried() {
        let poll = mio::Poll::new().unwrap();
        let q = NetInbox::new(1, Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap()));
        let mut out = Outbox::default();
        assert!(out.send(&q, NetCmd::DropConnections));
        assert!(!out.send(&q, NetCmd::subscribe(Route::Market, vec!["a".into()])));
        assert!(!out.send(&q, NetCmd::unsubscribe(Route::Market, vec!["a".into()])));
        assert_eq!((out.held(), out.retries), (2, 2));
        assert!(matches!(q.pop(), Some(NetCmd::DropConnections)));
        assert!(out.flush(&q));
        assert!(matches!(q.pop(), Some(NetCmd::Subscription(SubscribeCmd::Subscribe { .. }))), "order kept");
        assert!(out.flush(&q));
        assert!(matches!(q.pop(), Some(NetCmd::Subscription(SubscribeCmd::Unsubscribe { .. }))));
        assert_eq!((out.held(), out.retries), (0, 3));
        assert_eq!(q.refused(), 3, "the inbox counts each refusal too");
    }
}

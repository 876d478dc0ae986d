//! The Prometheus metrics endpoint of `rusto live` (`[metrics] listen`, off by default): one small blocking thread,
//! never on the hot path, serving `GET /metrics` in the text exposition format, version 0.0.4.
//!
//! Contracts:
//! - The stages never lock and never wait for it: the compute, network, persistence and control threads each hand
//!   a periodic copy of their counters and histogram percentiles over a [`Handover`] every `publish_interval_ms`
//!   (a fixed pool of buffers filled in place; a copy finding no free buffer is skipped and counted:
//!   `rusto_metrics_copies_skipped_total`). This thread is the only consumer: it takes the newest copy of each
//!   at every scrape and renders them; a source that has not published yet has no families in the output.
//! - Bounded: one connection at a time (the next waits in the kernel's backlog), a request head of at most
//!   [`MAX_REQUEST_BYTES`] (431 past it), a read and write timeout of [`IO_TIMEOUT`], `Connection: close` (after
//!   the answer, what the client still sends is read and dropped: at most 64 KiB, within the timeout). Only
//!   `GET /metrics` is served (200); another path is 404, another method 405 (with `Allow: GET`).
//! - The format: one `# HELP` and one `# TYPE` per family, a family's samples together, counters named `_total`,
//!   units last (`_seconds`, `_bytes`; PnL in the quote asset: `_quote`), latencies as summaries with `quantile`
//!   labels 0.5, 0.9, 0.99, 0.999 and 1 (the maximum) plus `_sum` and `_count`, label values escaped
//!   ([`Exposition`]).
//! - A bad `listen` address is a configuration error; an address that cannot be bound stops `rusto live` at start.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::compute::thread::ComputeSnapshot;
use crate::compute::trading::gate::GateReject;
use crate::compute::trading::risk::RiskReject;
use crate::handoff::handover::Handover;
use crate::ingest::net::NetFigures;
use crate::persist::writer::PersistFigures;
use crate::types::clock;
use crate::types::latency::StageFigures;

/// `[metrics]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` to serve `GET /metrics` on; `None` (the default): no endpoint.
    pub listen: Option<String>,
    /// How often each stage hands a copy of its figures to the endpoint, ms.
    pub publish_interval_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: None, publish_interval_ms: 1000 }
    }
}

crate::bounds!(MetricsConfig as _m {
    listen: any;
    publish_interval_ms: [100, 60_000] "100 to 60000 ms";
});

impl MetricsConfig {
    /// The address to listen on, if any; `Err` names what is wrong with `listen`.
    pub(crate) fn addr(&self) -> Result<Option<SocketAddr>, &'static str> {
        match &self.listen {
            None => Ok(None),
            Some(s) => s.parse::<SocketAddr>().map(Some).map_err(|_| "an IP address and port, as \"127.0.0.1:9184\""),
        }
    }

    /// The stages' publishing interval.
    pub(crate) fn every(&self) -> Duration {
        Duration::from_millis(self.publish_interval_ms)
    }
}

/// Errors of the metrics endpoint.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("metrics: cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// The thread could not be started.
    #[error("metrics: cannot start the thread: {0}")]
    Thread(std::io::Error),
}

/// Largest request head read, bytes.
pub(crate) const MAX_REQUEST_BYTES: usize = 8192;

/// Read and write timeout of one connection.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Most bytes read and dropped after an answer (the rest of an oversize request).
const MAX_DRAIN_BYTES: usize = 64 * 1024;

/// How often the idle thread looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(50);

/// The control thread's periodic copy: link health and its own counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ControlFigures {
    /// REST round trip of the last link-health check, ms.
    pub rtt_ms: f64,
    /// Exchange clock − local clock at the last check, ms.
    pub offset_ms: f64,
    /// Link-health checks that failed.
    pub health_failures: u64,
    /// Episodes of a silent feed.
    pub feed_down: u64,
    /// The feed is silent now.
    pub feed_is_down: bool,
    /// Snapshot requests retried after a REST error.
    pub snapshot_retries: u64,
    /// Control records persistence could not take.
    pub side_dropped: u64,
    /// Symbol selections made.
    pub selections: u64,
}

/// The hand-overs from the stages (one producer each, this thread the consumer).
#[derive(Clone)]
pub(crate) struct Sources {
    /// Compute thread (or the network thread running the engine inline).
    pub compute: Arc<Handover<ComputeSnapshot>>,
    /// Network thread.
    pub net: Arc<Handover<NetFigures>>,
    /// Persistence thread.
    pub persist: Arc<Handover<PersistFigures>>,
    /// Control thread.
    pub control: Arc<Handover<ControlFigures>>,
}

impl Sources {
    /// The hand-overs, the compute one with room for `max_symbols` symbols per copy.
    pub(crate) fn new(max_symbols: usize) -> Self {
        Sources {
            compute: Arc::new(Handover::new(|| ComputeSnapshot::with_capacity(max_symbols))),
            net: Arc::new(Handover::new(NetFigures::default)),
            persist: Arc::new(Handover::new(PersistFigures::default)),
            control: Arc::new(Handover::new(ControlFigures::default)),
        }
    }
}

/// The newest copy of each source.
#[derive(Default)]
pub(crate) struct Latest {
    compute: Option<ComputeSnapshot>,
    net: Option<NetFigures>,
    persist: Option<PersistFigures>,
    control: Option<ControlFigures>,
}

/// Requests served, by outcome.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ServerStats {
    /// `GET /metrics` answered.
    pub scrapes: u64,
    /// Other paths (404).
    pub not_found: u64,
    /// Other methods (405).
    pub bad_method: u64,
    /// Heads over [`MAX_REQUEST_BYTES`] (431) or not HTTP (400).
    pub bad_request: u64,
    /// Connections that timed out or failed before a full head.
    pub io_errors: u64,
}

/// What kind of family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// A level.
    Gauge,
    /// Quantiles, `_sum` and `_count`.
    Summary,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// A text exposition (format 0.0.4) being written: each family opened once ([`Exposition::family`]), its samples
/// right after it ([`Exposition::sample`]); a second opening of a family, or a counter not named `_total`, is
/// refused (its samples are left out and counted in [`Exposition::refused`]).
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
    seen: Vec<&'static str>,
    open: Option<&'static str>,
    /// Samples left out (their family was refused).
    pub refused: u64,
}

impl Exposition {
    /// Opens family `name`: writes its HELP and TYPE lines. False (nothing written) if it was opened before or is
    /// a counter whose name does not end in `_total`.
    pub(crate) fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> bool {
        if self.seen.contains(&name) || (kind == Kind::Counter && !name.ends_with("_total")) {
            self.open = None;
            return false;
        }
        self.seen.push(name);
        self.open = Some(name);
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.name());
        self.out.push('\n');
        true
    }

    /// One sample of the open family: its name plus `suffix` (`""`, `"_sum"`, `"_count"`), `labels`, `v`.
    pub(crate) fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], v: f64) {
        let Some(name) = self.open else {
            self.refused += 1;
            return;
        };
        self.out.push_str(name);
        self.out.push_str(suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(val, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(v, &mut self.out);
        self.out.push('\n');
    }

    /// A family of one unlabelled sample.
    pub(crate) fn single(&mut self, name: &'static str, kind: Kind, help: &str, v: f64) {
        if self.family(name, kind, help) {
            self.sample("", &[], v);
        }
    }

    /// A latency summary's samples (seconds) for one stage, under `label`.
    fn stage(&mut self, label: (&str, &str), s: &StageFigures) {
        let q = &s.summary;
        for (quantile, ns) in [("0.5", q.p50), ("0.9", q.p90), ("0.99", q.p99), ("0.999", q.p999), ("1", q.max)] {
            self.sample("", &[label, ("quantile", quantile)], ns as f64 / 1e9);
        }
        self.sample("_sum", &[label], s.sum_ns / 1e9);
        self.sample("_count", &[label], q.count as f64);
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value: `NaN`, `+Inf`, `-Inf` or the number (Rust's shortest round-trip form, never an exponent).
fn push_value(v: f64, out: &mut String) {
    use std::fmt::Write as _;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // Writing into a String cannot fail.
        let _ = write!(out, "{v}");
    }
}

impl Latest {
    /// Takes the newest copy of every source.
    fn refresh(&mut self, src: &Sources) {
        src.compute.take_latest(&mut self.compute);
        src.net.take_latest(&mut self.net);
        src.persist.take_latest(&mut self.persist);
        src.control.take_latest(&mut self.control);
    }
}

/// The whole page: every source that has published, then the endpoint's own counters; `now_ns` (wall clock, ns
/// since the epoch) dates the book ages.
pub(crate) fn render(l: &Latest, src: &Sources, server: &ServerStats, now_ns: i64) -> String {
    let mut x = Exposition::default();
    if let Some(n) = &l.net {
        render_net(&mut x, n);
    }
    if let Some(c) = &l.compute {
        render_compute(&mut x, c);
        render_symbols(&mut x, c, now_ns);
        render_trading(&mut x, c);
        if let Some(v) = &c.venue {
            render_real(&mut x, v);
        }
    }
    if let Some(p) = &l.persist {
        render_persist(&mut x, p);
    }
    if let Some(c) = &l.control {
        render_control(&mut x, c);
    }
    render_self(&mut x, src, server);
    x.finish()
}

fn counter(x: &mut Exposition, name: &'static str, help: &str, v: u64) {
    x.single(name, Kind::Counter, help, v as f64);
}

fn render_net(x: &mut Exposition, n: &NetFigures) {
    if x.family("rusto_net_stage_latency_seconds", Kind::Summary, "Network thread stage latency since start.") {
        for s in &n.stages {
            x.stage(("stage", s.name), s);
        }
    }
    counter(x, "rusto_frames_total", "Websocket text frames received.", n.frames);
    counter(x, "rusto_received_bytes_total", "Bytes received on the market data connections.", n.bytes);
    counter(x, "rusto_malformed_frames_total", "Frames the parser rejected as malformed.", n.malformed);
    counter(x, "rusto_unknown_event_frames_total", "Frames with an unknown event type.", n.unknown_event);
    counter(x, "rusto_ws_connects_total", "Websocket connections opened (upgrade done).", n.connects);
    counter(x, "rusto_ws_disconnects_total", "Disconnects (each reconnected with backoff).", n.disconnects);
    counter(x, "rusto_ws_rotations_total", "Planned connection rotations.", n.rotations);
    x.single("rusto_ws_connections_open", Kind::Gauge, "Websocket connections open now.", n.conns_open as f64);
    x.single("rusto_ws_connection_slots", Kind::Gauge, "Slots in the connection table now.", n.conn_slots as f64);
    counter(x, "rusto_ws_handshake_timeouts_total", "Handshakes that timed out.", n.handshake_timeouts);
    counter(x, "rusto_snapshots_injected_total", "REST depth snapshots handed to the books.", n.snapshots);
    counter(x, "rusto_ring_full_total", "Frames whose push found the event ring full.", n.ring_full);
    counter(x, "rusto_frames_dropped_total", "Frames dropped on a full event ring.", n.frames_dropped);
    counter(x, "rusto_subscribe_dropped_total", "Subscription requests not queued.", n.ctrl_dropped);
    counter(x, "rusto_net_commands_refused_total", "Commands the network inbox refused.", n.inbox_full);
}

fn render_compute(x: &mut Exposition, c: &ComputeSnapshot) {
    if x.family("rusto_stage_latency_seconds", Kind::Summary, "Compute stage latency since start.") {
        for s in &c.stages {
            x.stage(("stage", s.name), s);
        }
    }
    counter(x, "rusto_events_total", "Market events run through the engine.", c.events);
    counter(x, "rusto_records_lost_total", "Records lost (record ring and overflow full).", c.records_lost);
    let h = &c.hooks;
    if x.family("rusto_compute_handoff_dropped_total", Kind::Counter, "Compute hand-offs dropped, by queue.") {
        for (queue, v) in [
            ("reports", h.reports_dropped),
            ("alerts", h.alerts_dropped),
            ("snapshot_requests", h.snapshot_requests_dropped),
        ] {
            x.sample("", &[("queue", queue)], v as f64);
        }
    }
    counter(x, "rusto_depth_silent_total", "Books unsynced by a silent depth stream.", h.depth_silent);
    if let Some(ns) = c.order_latency_ns {
        x.single("rusto_order_latency_seconds", Kind::Gauge, "Paper order one-way latency in force.", ns as f64 / 1e9);
    }
    x.single("rusto_symbols_truncated", Kind::Gauge, "Symbols left out of the copy.", c.symbols_truncated as f64);
}

fn render_symbols(x: &mut Exposition, c: &ComputeSnapshot, now_ns: i64) {
    let names: Vec<String> = c.symbols.iter().map(|s| s.name.to_string()).collect();
    let per = |x: &mut Exposition, f: &dyn Fn(&crate::compute::thread::SymbolFigures) -> Option<f64>| {
        for (s, n) in c.symbols.iter().zip(&names) {
            if let Some(v) = f(s) {
                x.sample("", &[("symbol", n)], v);
            }
        }
    };
    if x.family("rusto_book_synced", Kind::Gauge, "1 when the symbol's order book is synced.") {
        per(x, &|s| Some(if s.synced { 1.0 } else { 0.0 }));
    }
    let updated = |s: &crate::compute::thread::SymbolFigures| (s.book_update_ns > 0).then_some(s.book_update_ns);
    if x.family(
        "rusto_book_age_seconds",
        Kind::Gauge,
        "Local wall clock minus the exchange time of the last book update.",
    ) {
        per(x, &|s| updated(s).map(|t| (now_ns - t) as f64 / 1e9));
    }
    if x.family("rusto_book_last_update_timestamp_seconds", Kind::Gauge, "Exchange time of the last book update.") {
        per(x, &|s| updated(s).map(|t| t as f64 / 1e9));
    }
    if x.family("rusto_book_gaps_total", Kind::Counter, "Sequence gaps in the depth stream.") {
        per(x, &|s| Some(s.gaps as f64));
    }
    if x.family("rusto_book_resyncs_total", Kind::Counter, "Book resyncs from a snapshot.") {
        per(x, &|s| Some(s.resyncs as f64));
    }
    if x.family("rusto_trades_total", Kind::Counter, "Market trades.") {
        per(x, &|s| Some(s.trades as f64));
    }
    if x.family(
        "rusto_trade_ids_missing_total",
        Kind::Counter,
        "Trade ids never received between the first and the highest seen (lost, or sent while disconnected).",
    ) {
        per(x, &|s| Some(s.trade_ids_missing as f64));
    }
}

/// One per-symbol value of a [`ComputeSnapshot`].
type PerSymbol = fn(&crate::compute::thread::SymbolFigures) -> f64;

fn render_trading(x: &mut Exposition, c: &ComputeSnapshot) {
    let names: Vec<String> = c.symbols.iter().map(|s| s.name.to_string()).collect();
    if x.family("rusto_entry_rejects_total", Kind::Counter, "Entries refused (base account), by check and reason.") {
        for (s, n) in c.symbols.iter().zip(&names) {
            for (g, v) in GateReject::ALL.iter().zip(s.gate_rejects) {
                x.sample("", &[("symbol", n), ("check", "gate"), ("reason", g.name())], v as f64);
            }
            for (r, v) in RiskReject::ALL.iter().zip(s.risk_rejects) {
                x.sample("", &[("symbol", n), ("check", "risk"), ("reason", r.name())], v as f64);
            }
        }
    }
    let fams: [(&'static str, Kind, &str, PerSymbol); 4] = [
        ("rusto_positions_opened_total", Kind::Counter, "Positions opened (base account).", |s| s.opened as f64),
        ("rusto_positions_closed_total", Kind::Counter, "Positions closed (base account).", |s| s.closed as f64),
        ("rusto_positions_open", Kind::Gauge, "1 when any account holds a position.", |s| {
            if s.open_position { 1.0 } else { 0.0 }
        }),
        (
            "rusto_realised_pnl_quote",
            Kind::Gauge,
            "Realised net PnL (base account, fees and funding in), quote asset.",
            |s| s.pnl,
        ),
    ];
    for (name, kind, help, f) in fams {
        if x.family(name, kind, help) {
            for (s, n) in c.symbols.iter().zip(&names) {
                x.sample("", &[("symbol", n)], f(s));
            }
        }
    }
}

/// The real account (testnet/live): what the venue sent, refused and followed.
fn render_real(x: &mut Exposition, v: &crate::compute::trading::venue::VenueStats) {
    use crate::compute::trading::venue::EntryRefusal;
    counter(x, "rusto_real_entries_total", "Real entries sent.", v.entries);
    if x.family("rusto_real_entries_refused_total", Kind::Counter, "Real entries refused before sending, by cap.") {
        for (r, n) in EntryRefusal::ALL.iter().zip(v.refused) {
            x.sample("", &[("reason", r.name())], n as f64);
        }
    }
    if x.family("rusto_real_entry_rejects_total", Kind::Counter, "Real entries the exchange rejected, by class.") {
        for (class, n) in
            [("margin", v.rejected_margin), ("min_notional", v.rejected_min_notional), ("other", v.rejected_other)]
        {
            x.sample("", &[("class", class)], n as f64);
        }
    }
    if x.family("rusto_real_reports_ignored_total", Kind::Counter, "Order reports that changed nothing, by why.") {
        for (why, n) in [("duplicate", v.duplicate_reports), ("foreign", v.foreign_reports)] {
            x.sample("", &[("why", why)], n as f64);
        }
    }
    if x.family("rusto_real_divergences_total", Kind::Counter, "Real account against the paper one, by kind.") {
        for (kind, n) in [
            ("flattened", v.divergence_flattened),
            ("paper_only", v.divergence_paper_only),
            ("position_mismatch", v.position_mismatches),
            ("close_found_flat", v.closes_found_flat),
        ] {
            x.sample("", &[("kind", kind)], n as f64);
        }
    }
    counter(x, "rusto_real_protection_lost_total", "Protective orders lost (ring and backlog full).", v.lost);
    counter(x, "rusto_real_positions_adopted_total", "Positions of a killed run adopted at start.", v.adopted);
    x.single("rusto_real_day_pnl_quote", Kind::Gauge, "Realised PnL of the UTC day, commissions in, quote.", v.day_pnl);
    x.single(
        "rusto_real_unrealised_pnl_quote",
        Kind::Gauge,
        "Unrealised PnL of the open real positions, quote.",
        v.unrealised,
    );
    if x.family("rusto_real_entries_halted", Kind::Gauge, "1 when new real entries are halted, by cause.") {
        for c in crate::types::order::HaltCause::ALL {
            x.sample("", &[("cause", c.name())], if v.halted == Some(c) { 1.0 } else { 0.0 });
        }
    }
}

fn render_persist(x: &mut Exposition, p: &PersistFigures) {
    let s = &p.stats;
    if x.family("rusto_persist_commit_latency_seconds", Kind::Summary, "Database commit latency since start.") {
        x.stage(("stage", p.commit.name), &p.commit);
    }
    counter(x, "rusto_db_write_errors_total", "Database writes that failed.", s.db_write_errors);
    counter(x, "rusto_db_rows_dropped_total", "Rows dropped past max_pending_rows.", s.db_rows_dropped);
    counter(x, "rusto_db_rows_rejected_total", "Rows the database refused.", s.db_rows_rejected);
    counter(x, "rusto_db_commits_total", "Database commits.", s.db_commits);
    counter(x, "rusto_db_rows_total", "Database rows written.", s.db_rows);
    counter(x, "rusto_control_records_dropped_total", "Control records that could not be written.", s.control_dropped);
    counter(x, "rusto_csv_lines_lost_total", "CSV lines lost after a CSV failed.", s.csv_lines_lost);
}

fn render_control(x: &mut Exposition, c: &ControlFigures) {
    x.single("rusto_clock_offset_seconds", Kind::Gauge, "Exchange clock minus local clock.", c.offset_ms / 1e3);
    x.single("rusto_rest_rtt_seconds", Kind::Gauge, "REST round trip (median of the pings).", c.rtt_ms / 1e3);
    counter(x, "rusto_health_check_failures_total", "Link-health checks that failed.", c.health_failures);
    counter(x, "rusto_feed_down_total", "Episodes of a silent feed.", c.feed_down);
    x.single(
        "rusto_feed_down",
        Kind::Gauge,
        "1 while the whole feed is silent.",
        if c.feed_is_down { 1.0 } else { 0.0 },
    );
    counter(x, "rusto_snapshot_retries_total", "Snapshot requests retried after a REST error.", c.snapshot_retries);
    counter(x, "rusto_control_queue_dropped_total", "Control records persistence could not take.", c.side_dropped);
    counter(x, "rusto_selections_total", "Symbol selections made.", c.selections);
}

fn render_self(x: &mut Exposition, src: &Sources, server: &ServerStats) {
    if x.family("rusto_metrics_copies_skipped_total", Kind::Counter, "Copies a stage skipped (no free buffer).") {
        for (source, v) in [
            ("compute", src.compute.skipped()),
            ("net", src.net.skipped()),
            ("persist", src.persist.skipped()),
            ("control", src.control.skipped()),
        ] {
            x.sample("", &[("source", source)], v as f64);
        }
    }
    if x.family("rusto_metrics_copies_total", Kind::Counter, "Copies a stage handed to the endpoint.") {
        for (source, v) in [
            ("compute", src.compute.published()),
            ("net", src.net.published()),
            ("persist", src.persist.published()),
            ("control", src.control.published()),
        ] {
            x.sample("", &[("source", source)], v as f64);
        }
    }
    if x.family("rusto_metrics_requests_total", Kind::Counter, "Requests to the endpoint, by outcome.") {
        for (outcome, v) in [
            ("ok", server.scrapes),
            ("not_found", server.not_found),
            ("bad_method", server.bad_method),
            ("bad_request", server.bad_request),
            ("io_error", server.io_errors),
        ] {
            x.sample("", &[("outcome", outcome)], v as f64);
        }
    }
}

/// Binds `addr` (at start, so a taken port stops the run before any trading).
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    let l = TcpListener::bind(addr).map_err(|cause| MetricsError::Bind { addr, cause })?;
    l.set_nonblocking(true).map_err(|cause| MetricsError::Bind { addr, cause })?;
    Ok(l)
}

/// Starts the endpoint's thread on `listener` until `stop`; it hands back its request counters.
pub(crate) fn spawn(
    listener: TcpListener,
    src: Sources,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<ServerStats>, MetricsError> {
    std::thread::Builder::new()
        .name("rusto-metrics".into())
        .spawn(move || serve(&listener, &src, &stop))
        .map_err(MetricsError::Thread)
}

fn serve(listener: &TcpListener, src: &Sources, stop: &AtomicBool) -> ServerStats {
    let mut stats = ServerStats::default();
    let mut latest = Latest::default();
    let mut buf = vec![0u8; MAX_REQUEST_BYTES];
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                if let Err(e) = answer(conn, &mut buf, &mut latest, src, &mut stats) {
                    stats.io_errors += 1;
                    log::debug!("metrics: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                stats.io_errors += 1;
                log::warn!("metrics: accept: {e}");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
    stats
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// `GET /metrics`.
    Metrics,
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// Not an HTTP request line.
    Bad,
}

/// Reads the request line of a head (`GET /metrics HTTP/1.1`; a query string is ignored).
pub(crate) fn classify(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Request::Bad;
    };
    if !version.starts_with(b"HTTP/1.") || parts.next().is_some() {
        return Request::Bad;
    }
    if method != b"GET" {
        return Request::BadMethod;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    if path == b"/metrics" { Request::Metrics } else { Request::NotFound }
}

/// Reads one request head (bounded in size and time) and answers it.
fn answer(
    mut conn: TcpStream,
    buf: &mut [u8],
    latest: &mut Latest,
    src: &Sources,
    stats: &mut ServerStats,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut n = 0;
    let complete = loop {
        if n == buf.len() {
            break false;
        }
        let got = conn.read(&mut buf[n..])?;
        if got == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before the end of the head"));
        }
        n += got;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
    };
    let (status, extra, body) = if !complete {
        stats.bad_request += 1;
        ("431 Request Header Fields Too Large", "", String::new())
    } else {
        match classify(&buf[..n]) {
            Request::Metrics => {
                stats.scrapes += 1;
                latest.refresh(src);
                ("200 OK", "", render(latest, src, stats, clock::wall_ns()))
            }
            Request::NotFound => {
                stats.not_found += 1;
                ("404 Not Found", "", "only /metrics is served\n".to_string())
            }
            Request::BadMethod => {
                stats.bad_method += 1;
                ("405 Method Not Allowed", "Allow: GET\r\n", String::new())
            }
            Request::Bad => {
                stats.bad_request += 1;
                ("400 Bad Request", "", String::new())
            }
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\
         {extra}Connection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()?;
    // What the client still sends (the rest of an oversize head) is read and dropped, bounded in size and time,
    // so closing with unread bytes does not reset the connection before the client read the answer.
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut drained = 0;
    while drained < MAX_DRAIN_BYTES {
        match conn.read(buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => drained += k,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (family, type) of every TYPE line, and the family names of the samples in order.
    fn parse(text: &str) -> (Vec<(String, String)>, Vec<String>) {
        let mut types = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("# TYPE ") {
                let (n, k) = t.split_once(' ').unwrap();
                types.push((n.to_string(), k.to_string()));
            } else if !line.starts_with('#') {
                samples.push(line.split(['{', ' ']).next().unwrap().to_string());
            }
        }
        (types, samples)
    }

    #[test]
    fn label_values_are_escaped_and_values_spelled_as_prometheus_reads_them() {
        let mut x = Exposition::default();
        assert!(x.family("rusto_t", Kind::Gauge, "a help\nwith \\ and a newline"));
        x.sample("", &[("symbol", "A\"B\\C\nD")], 1.5);
        x.sample("", &[("a", "x"), ("b", "y")], f64::NAN);
        x.sample("", &[], f64::INFINITY);
        x.sample("", &[], f64::NEG_INFINITY);
        x.sample("", &[], 12.0);
        let t = x.finish();
        assert_eq!(
            t,
            "# HELP rusto_t a help\\nwith \\\\ and a newline\n# TYPE rusto_t gauge\n\
             rusto_t{symbol=\"A\\\"B\\\\C\\nD\"} 1.5\nrusto_t{a=\"x\",b=\"y\"} NaN\nrusto_t +Inf\nrusto_t -Inf\nrusto_t 12\n"
        );
    }

    #[test]
    fn a_family_is_typed_once_and_a_counter_must_be_named_total() {
        let mut x = Exposition::default();
        assert!(x.family("rusto_a_total", Kind::Counter, "a"));
        x.sample("", &[], 1.0);
        assert!(!x.family("rusto_a_total", Kind::Counter, "a again"), "opened twice");
        x.sample("", &[], 2.0);
        assert!(!x.family("rusto_b", Kind::Counter, "a counter without _total"));
        x.sample("", &[], 3.0);
        assert_eq!(x.refused, 2);
        let (types, samples) = parse(&x.finish());
        assert_eq!(types, vec![("rusto_a_total".to_string(), "counter".to_string())]);
        assert_eq!(samples, vec!["rusto_a_total"]);
    }

    fn full_sources() -> (Latest, Sources) {
        let src = Sources::new(4);
        let mut snap = ComputeSnapshot::with_capacity(4);
        snap.symbols.push(crate::compute::thread::SymbolFigures {
            name: crate::types::symbols::SymbolName::new(b"BTCUSDT").unwrap(),
            synced: true,
            book_update_ns: 1_000_000_000,
            gate_rejects: [1, 0, 0, 0, 0, 0],
            trade_ids_missing: 7,
            ..Default::default()
        });
        snap.stages[0] = StageFigures {
            name: "ring_wait",
            summary: crate::types::latency::Summary {
                count: 2,
                p50: 1000,
                p90: 2000,
                p99: 2000,
                p999: 2000,
                max: 2000,
            },
            sum_ns: 3000.0,
        };
        snap.venue = Some(crate::compute::trading::venue::VenueStats {
            entries: 3,
            unrealised: -12.5,
            halted: Some(crate::types::order::HaltCause::DailyLoss),
            ..Default::default()
        });
        let latest = Latest {
            compute: Some(snap),
            net: Some(NetFigures::default()),
            persist: Some(PersistFigures::default()),
            control: Some(ControlFigures { rtt_ms: 2.0, offset_ms: -1.5, ..Default::default() }),
        };
        (latest, src)
    }

    #[test]
    fn the_page_types_every_family_once_keeps_its_samples_together_and_names_units_last() {
        let (latest, src) = full_sources();
        let text = render(&latest, &src, &ServerStats::default(), 3_000_000_000);
        let (types, samples) = parse(&text);
        let mut names: Vec<&String> = types.iter().map(|t| &t.0).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "one TYPE per family");
        // Samples of a family follow its TYPE line, together (a summary's _sum and _count included).
        let mut fam = 0;
        for s in &samples {
            while !(s == &types[fam].0
                || s.strip_prefix(types[fam].0.as_str()).is_some_and(|r| r == "_sum" || r == "_count"))
            {
                fam += 1;
                assert!(fam < types.len(), "{s} outside its family");
            }
        }
        for (name, kind) in &types {
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name} {kind}");
            assert!(name.starts_with("rusto_"), "{name}");
        }
        assert!(
            text.contains("rusto_stage_latency_seconds{stage=\"ring_wait\",quantile=\"0.5\"} 0.000001\n"),
            "{text}"
        );
        assert!(text.contains("rusto_stage_latency_seconds{stage=\"ring_wait\",quantile=\"1\"} 0.000002\n"));
        assert!(text.contains("rusto_stage_latency_seconds_count{stage=\"ring_wait\"} 2\n"));
        assert!(text.contains("rusto_book_age_seconds{symbol=\"BTCUSDT\"} 2\n"));
        assert!(text.contains("rusto_trade_ids_missing_total{symbol=\"BTCUSDT\"} 7\n"), "{text}");
        assert!(text.contains("rusto_entry_rejects_total{symbol=\"BTCUSDT\",check=\"gate\",reason=\""));
        assert!(text.contains("rusto_clock_offset_seconds -0.0015\n"));
        assert!(text.contains("rusto_real_entries_total 3\n"), "{text}");
        assert!(text.contains("rusto_real_unrealised_pnl_quote -12.5\n"));
        assert!(text.contains("rusto_real_entries_halted{cause=\"daily_loss\"} 1\n"));
        assert!(text.contains("rusto_real_entries_halted{cause=\"switch\"} 0\n"));
        assert!(text.contains("rusto_real_entries_refused_total{reason=\"order_notional\"} 0\n"));
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(classify(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Request::Metrics);
        assert_eq!(classify(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Request::Metrics);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(classify(b"GET /metricsx HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(classify(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::BadMethod);
        assert_eq!(classify(b"hello\r\n\r\n"), Request::Bad);
        assert_eq!(classify(b"GET /metrics SSH/2\r\n\r\n"), Request::Bad);
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let c = |s: &str| MetricsConfig { listen: Some(s.into()), ..Default::default() };
        assert_eq!(c("127.0.0.1:9184").addr(), Ok(Some("127.0.0.1:9184".parse().unwrap())));
        assert!(c("localhost").addr().is_err());
        assert!(c("127.0.0.1").addr().is_err());
        assert!(c("1.2.3.4:99999").addr().is_err());
        assert_eq!(MetricsConfig::default().addr(), Ok(None));
    }
}

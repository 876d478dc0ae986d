//! Order routing of a live run (`[execution] mode = "testnet"`): the venue for the compute thread, the order
//! session for the network thread, and what the control thread keeps for them (the clock offset it measures, the
//! halt switch: `SIGUSR1` or the `halt_file`).
//!
//! Contract: built on the main thread before any thread starts; a missing or malformed key, or a URL that does not
//! resolve, is an error here and nothing is sent. The venue's run id in the client order ids is the start time in
//! Unix seconds (unique per start, so a restart never reuses an id the exchange remembers).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app::config::Config;
use crate::app::secrets;
use crate::compute::{Doorbell, Venue};
use crate::handoff::ring::ring;
use crate::ingest::net::{Endpoint, NetError, tls_config};
use crate::ingest::orders::{ApiKey, Credentials, OrderClock, OrderLink, SessionConfig, Signer};
use crate::types::OrderIntent;
use crate::types::clock;

/// Capacity of the intent ring (compute → network); the venue keeps a bounded backlog behind it.
const INTENT_RING: usize = 256;
/// Requests in flight at once.
const PENDING_MAX: usize = 64;
/// `userDataStream.ping` interval (Binance: a listenKey lives 60 minutes; a keep-alive every 30 is advised).
const KEEPALIVE_S: u32 = 30 * 60;

/// Why order routing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// No credentials.
    #[error("execution.mode = {0:?} sends orders and needs API credentials: {1}")]
    NoCredentials(&'static str, String),
    /// Credentials present but unusable.
    #[error("API credentials: {0}")]
    Credentials(String),
    /// A URL did not parse or resolve.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The REST fallback's worker could not start (its CA file, or no thread).
    #[error("REST fallback worker not started: {0}")]
    RestWorker(String),
    /// The account is not ready (locked by another run, not flat, margin or leverage refused).
    #[error(transparent)]
    Account(#[from] crate::app::account::AccountError),
}

/// What the control thread keeps of the order routing.
pub(crate) struct OrderControl {
    /// The clock offset it measures for the signed requests.
    pub clock: Arc<OrderClock>,
    /// The halt switch (set by `SIGUSR1`, the halt file, or here).
    pub halt: Arc<AtomicBool>,
    /// The halt file, when configured.
    pub halt_file: Option<PathBuf>,
    /// The account lock, held for the run.
    pub _lock: crate::app::account::AccountLock,
    /// The credentials of the control thread's signed requests (margin and leverage of reselected symbols).
    pub credentials: Credentials,
    /// The leverage set on every traded symbol.
    pub leverage: u32,
    /// The REST fallback's worker (it ends once the network thread dropped the order session).
    pub rest_worker: Option<std::thread::JoinHandle<crate::app::order_rest::OrderRestStats>>,
}

impl OrderControl {
    /// Once per control-loop turn: the halt file. True when the control thread should measure the clock now.
    pub(crate) fn duties(&self) -> bool {
        if let Some(f) = &self.halt_file
            && !self.halt.load(Ordering::Relaxed)
            && f.exists()
        {
            log::error!("halt file {} exists: new entries halted", f.display());
            self.halt.store(true, Ordering::Relaxed);
        }
        self.clock.take_resync()
    }

    /// Joins the REST fallback's worker (after the network thread ended) and logs what it did.
    pub(crate) fn join_rest_worker(&mut self) {
        let Some(h) = self.rest_worker.take() else { return };
        match h.join() {
            Ok(s) => log::info!(
                "order REST fallback: {} requests, {} without an answer, {} answers dropped",
                s.requests,
                s.transport_errors,
                s.answers_dropped
            ),
            Err(_) => log::error!("order REST fallback: its worker thread panicked"),
        }
    }

    /// The symbols of `added` (a reselection) this run may trade: see [`crate::app::account::prepare_added`].
    pub(crate) fn prepare_added(
        &self,
        rest: &mut crate::app::rest::Rest,
        added: &[crate::types::symbols::SymbolName],
    ) -> Vec<crate::types::symbols::SymbolName> {
        crate::app::account::prepare_added(rest, &self.credentials, self.clock.offset_ms() as f64, added, self.leverage)
    }
}

/// The three parts of order routing.
pub(crate) struct Routing {
    /// For the compute thread's engine.
    pub venue: Venue,
    /// For the network thread.
    pub link: OrderLink,
    /// For the control thread.
    pub control: OrderControl,
    /// The positions adopted (the engine and the database take them over).
    pub adopted: Vec<crate::app::account::Adopted>,
}

/// Starts the REST fallback's worker on the `[live]` REST base and attaches its lane to `link`.
fn rest_fallback(
    cfg: &Config,
    link: &mut OrderLink,
    api_key: &str,
    bell: Doorbell,
) -> Result<std::thread::JoinHandle<crate::app::order_rest::OrderRestStats>, RoutingError> {
    let (lane, ends) = crate::ingest::orders::rest_lane();
    let ca = cfg.live.ca_file.as_ref().map(PathBuf::from);
    let agent = crate::app::rest::agent(ca.as_deref(), crate::app::order_rest::REQUEST_TIMEOUT)
        .map_err(|e| RoutingError::RestWorker(e.to_string()))?;
    let target = crate::app::order_rest::OrderRestTarget {
        base: cfg.live.rest_url.trim_end_matches('/').to_string(),
        api_key: api_key.to_string(),
    };
    let h = crate::app::order_rest::spawn(agent, target, ends, bell)
        .map_err(|e| RoutingError::RestWorker(e.to_string()))?;
    link.with_rest(lane.attach(h.thread().clone()));
    Ok(h)
}

/// `scheme://host[:port]/path` → (`scheme://host[:port]`, `/path`).
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, "/"),
    }
}

pub(crate) fn credentials(cfg: &Config) -> Result<Credentials, RoutingError> {
    let mode = if cfg.execution.mode == crate::app::config::ExecutionMode::Live { "live" } else { "testnet" };
    let c = secrets::load(&cfg.secrets)
        .map_err(|e| RoutingError::Credentials(e.to_string()))?
        .ok_or_else(|| RoutingError::NoCredentials(mode, secrets::where_they_belong()))?;
    let api_key = ApiKey::new(&c.key).map_err(|e| RoutingError::Credentials(e.to_string()))?;
    let signer = match &c.secret {
        secrets::Secret::Hmac(s) => Signer::hmac(s.as_bytes()),
        secrets::Secret::Ed25519Pem(pem) => Signer::ed25519_pem(pem),
    }
    .map_err(|e| RoutingError::Credentials(e.to_string()))?;
    Ok(Credentials { api_key, signer })
}

/// What the start-up knows when routing is set up.
pub(crate) struct RoutingStart<'a> {
    /// The start-up REST client (for the account's reconcile, margin type and leverage).
    pub rest: &'a mut crate::app::rest::Rest,
    /// The start-up clock measurement (exchange − local, ms).
    pub offset_ms: f64,
    /// The symbols the run starts with.
    pub traded: &'a [crate::types::symbols::SymbolName],
    /// Wakes the network thread after the venue pushed intents.
    pub bell: Doorbell,
    /// The positions killed runs left open that the database knows (`app::account` adopts those the exchange
    /// confirms).
    pub candidates: Vec<crate::persist::Candidate>,
}

/// Sets up routing when the configuration routes orders (`None` in paper mode): the account lock, the reconcile,
/// margin type and leverage (`app::account`), then the venue and the order session.
pub(crate) fn routing(
    cfg: &Config,
    tls: Option<Arc<rustls::ClientConfig>>,
    start: RoutingStart<'_>,
) -> Result<Option<Routing>, RoutingError> {
    let x = &cfg.execution;
    if !x.routes_orders() {
        return Ok(None);
    }
    let RoutingStart { rest, offset_ms, traded, bell, candidates } = start;
    let credentials = credentials(cfg)?;
    let how = if credentials.signer.is_ed25519() { "Ed25519 (WebSocket API session.logon)" } else { "HMAC-SHA256" };
    log::info!("API key: requests signed with {how}");
    let lock = crate::app::account::lock(&credentials)?;
    log::info!("account lock {} held", lock.path.display());
    let adopted = crate::app::account::reconcile(rest, &credentials, offset_ms, traded, candidates, x.adopt_unknown)?;
    let leverage = cfg.risk.leverage.round().clamp(1.0, 125.0) as u32;
    crate::app::account::set_margin(rest, &credentials, offset_ms, traded, leverage)?;
    let (api_base, api_path) = split_url(x.ws_api());
    let (user_base, user_path) = split_url(x.user_stream());
    let ws_api = Endpoint::parse(api_base)?;
    let user_stream = Endpoint::parse(user_base)?;
    // The market feed may be plain (a local test feed) while orders go over TLS: never send them in clear.
    let tls = match tls {
        None if ws_api.tls || user_stream.tls => {
            Some(tls_config(cfg.live.ca_file.as_ref().map(PathBuf::from).as_deref())?)
        }
        t => t,
    };
    let session = SessionConfig {
        ws_api,
        ws_api_path: api_path.to_string(),
        user_stream,
        user_stream_path: user_path.to_string(),
        credentials,
        recv_window_ms: x.recv_window_ms as u32,
        ack_timeout_ms: x.ack_timeout_ms as u32,
        max_pending: PENDING_MAX,
        keepalive_s: KEEPALIVE_S,
        rest_fallback_after_ms: x.rest_fallback.then_some(x.rest_fallback_after_ms as u32),
    };
    let order_clock = Arc::new(OrderClock::default());
    order_clock.set_offset_ms(offset_ms);
    let (itx, irx) = ring::<OrderIntent>(INTENT_RING);
    let halt = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, halt.clone()) {
        log::warn!("SIGUSR1 halt switch not installed: {e}");
    }
    let run_id = (clock::wall_ns() / 1_000_000_000) as u32;
    let key = String::from_utf8_lossy(session.credentials.api_key.as_bytes()).into_owned();
    let shown = format!("{}…{}", &key[..key.len().min(4)], &key[key.len().saturating_sub(4)..]);
    let net_bell = bell.clone();
    let venue = Venue::new(x.venue(run_id, cfg), itx, halt.clone()).with_doorbell(bell);
    let mut link = OrderLink::new(session, tls, order_clock.clone(), irx, cfg.parser.max_frame_bytes);
    // The worker also recovers fills a user data stream gap lost, so it runs even without the fallback.
    let rest_worker = Some(rest_fallback(cfg, &mut link, &key, net_bell)?);
    log::warn!(
        "orders are routed to {} (mode {:?}, API key {shown}, client-id run {run_id:08x}, symbols {}, leverage \
         {leverage}x isolated, {} positions adopted): caps {} USDT per order, {} per symbol, {} in total, {} \
         entries/min, daily loss {} USDT; SIGUSR1{} halts new entries",
        x.ws_api(),
        x.mode,
        traded.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        adopted.len(),
        x.order_notional_max,
        x.symbol_notional_max,
        x.total_notional_max,
        x.orders_per_min_max,
        x.daily_loss_max,
        if x.halt_file.is_empty() { String::new() } else { format!(" or the file {}", x.halt_file) }
    );
    let halt_file = (!x.halt_file.is_empty()).then(|| PathBuf::from(&x.halt_file));
    // The session owns its credentials; the control thread reads them again for its own signed requests.
    let control_credentials = self::credentials(cfg)?;
    let control = OrderControl {
        clock: order_clock,
        halt,
        halt_file,
        _lock: lock,
        credentials: control_credentials,
        leverage,
        rest_worker,
    };
    Ok(Some(Routing { venue, link, control, adopted }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_endpoint_and_path() {
        assert_eq!(split_url("wss://ws-fapi.binance.com/ws-fapi/v1"), ("wss://ws-fapi.binance.com", "/ws-fapi/v1"));
        assert_eq!(split_url("ws://127.0.0.1:9443/private/ws"), ("ws://127.0.0.1:9443", "/private/ws"));
        assert_eq!(split_url("wss://h:1"), ("wss://h:1", "/"));
    }

    #[test]
    fn paper_routes_nothing_and_testnet_without_keys_is_a_clear_error() {
        let bell: Doorbell = Arc::new(|| {});
        let mut rest = crate::app::rest::Rest::new("http://127.0.0.1:9", None, 1000).unwrap();
        fn start<'a>(rest: &'a mut crate::app::rest::Rest, bell: &Doorbell) -> RoutingStart<'a> {
            RoutingStart { rest, offset_ms: 0.0, traded: &[], bell: bell.clone(), candidates: Vec::new() }
        }
        let paper = Config::from_toml("", "t.toml").unwrap();
        assert!(routing(&paper, None, start(&mut rest, &bell)).unwrap().is_none());
        let cf = "/nonexistent/rusto-test-credentials";
        let testnet = format!("[execution]\nmode = \"testnet\"\n[secrets]\ncredentials_file = \"{cf}\"\n");
        let t = Config::from_toml(&testnet, "t.toml").unwrap();
        // The environment may hold keys on a developer's box: only the file path is under this test's control.
        if std::env::var(secrets::ENV_KEY).is_err() && std::env::var(secrets::ENV_FILE).is_err() {
            let e = routing(&t, None, start(&mut rest, &bell)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("credentials"), "{e}");
        }
    }
}

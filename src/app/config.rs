//! Configuration: one TOML file, every key optional with a documented default (`config/default.toml`), every
//! value validated with an error that names the key and the allowed range. Unknown keys are rejected, so a typo
//! never silently falls back to a default.

use serde::Deserialize;

use crate::bounds;
use crate::compute::engine::EngineConfig;
use crate::compute::market::bars::BarRange;
use crate::compute::market::book::BookConfig;
pub(crate) use crate::handoff::publish::FullPolicy;
pub(crate) use crate::handoff::publish::{IdleMode, Layout};
use crate::ingest::net::{ConnectionPolicy, Endpoint, NetConfig, NetError};
use crate::types::bounds::{Bounded, Canon, OutOfBounds};
use crate::types::symbols::SymbolName;

/// A configuration problem. No message quotes a line of the file or a value read as text (a misplaced API key
/// must not reach a terminal or the journal): parse errors give the line, the column and the key, and the parser's
/// message with every quoted value cut out ([`redact`]).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Read {
        /// File.
        path: String,
        /// Cause (shown in the message, so not a `source()`: the chain would print it twice).
        cause: std::io::Error,
    },
    /// Not valid TOML or an unknown key or a wrong type.
    #[error("{path}{}: {msg}", at_key(at.as_ref(), key.as_deref()))]
    Syntax {
        /// File.
        path: String,
        /// Where, when the parser knows.
        at: Option<Location>,
        /// The dotted key, when known.
        key: Option<String>,
        /// The parser's message, values cut out.
        msg: String,
    },
    /// A key that looks like a credential, anywhere in the file (its value is never shown).
    #[error("{path}{}: `{key}` looks like a credential (value not shown); {}", at_key(line.map(Location::line).as_ref(), None), crate::app::secrets::where_they_belong())]
    Credential {
        /// File.
        path: String,
        /// The dotted key.
        key: String,
        /// Its line (1-based), when found.
        line: Option<usize>,
    },
    /// A `[[variants]]` entry's merged configuration is invalid.
    #[error("variant `{name}`: {inner}")]
    Variant {
        /// The variant's name.
        name: String,
        /// What is wrong with it (shown in the message, so not a `source()`).
        inner: Box<ConfigError>,
    },
    /// A value out of range.
    #[error("config key `{key}` = {value}: {allowed}")]
    Range {
        /// Dotted key.
        key: String,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
}

/// A place in the file, 1-based (column 0: the whole line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line.
    pub line: usize,
    /// Column in characters.
    pub column: usize,
}

impl Location {
    fn line(line: usize) -> Location {
        Location { line, column: 0 }
    }

    /// The place of byte `offset` of `text`.
    fn of(text: &str, offset: usize) -> Location {
        let before = &text.as_bytes()[..offset.min(text.len())];
        let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        Location { line, column: String::from_utf8_lossy(&before[start..]).chars().count() + 1 }
    }
}

/// `: line 2, column 12, key `risk.stop_pct``, or what of it is known, for the messages above.
fn at_key(at: Option<&Location>, key: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(at) = at {
        out.push_str(&format!(": line {}", at.line));
        if at.column > 0 {
            out.push_str(&format!(", column {}", at.column));
        }
    }
    if let Some(k) = key {
        out.push_str(&format!("{} key `{k}`", if at.is_some() { "," } else { ":" }));
    }
    out
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Slots of the net → compute ring (power of two).
    pub event_ring: usize,
    /// Slots of the compute → persist ring.
    pub record_ring: usize,
    /// Policy on a full event ring in live runs.
    pub full_policy: FullPolicy,
    /// Core for the compute thread (none: not pinned).
    pub compute_core: Option<usize>,
    /// Core for the network thread.
    pub net_core: Option<usize>,
    /// Core for the persistence thread.
    pub persist_core: Option<usize>,
    /// Legacy: empty polls the compute thread spins before parking, in `park` mode only (setting it warns; with
    /// `spin` or `adaptive` it is an error).
    pub idle_spins: u32,
    /// How the compute thread waits for events: `spin`, `adaptive` or `park`.
    pub idle: IdleMode,
    /// `adaptive`'s budget: at most this % of a core spent spinning between events.
    pub idle_cpu_pct: f64,
    /// Live runs: `split` (a compute thread of its own behind the event ring) or `inline` (the network thread runs
    /// the engine; `idle` is then `park`, blocking in the poll, or `spin`, busy-polling the sockets).
    pub layout: Layout,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            event_ring: 1 << 16,
            record_ring: 1 << 14,
            full_policy: FullPolicy::DropAndResync,
            compute_core: Some(1),
            net_core: Some(0),
            persist_core: Some(0),
            idle_spins: 2_000,
            idle: IdleMode::Park,
            idle_cpu_pct: 20.0,
            layout: Layout::Inline,
        }
    }
}

bounds!(PipelineConfig as _p {
    event_ring: [1 << 12, 1 << 24] "between 4096 and 16777216 slots";
    record_ring: [1 << 8, 1 << 22] "between 256 and 4194304 slots";
    full_policy: any;
    compute_core: [0, 4095] "a core index between 0 and 4095";
    net_core: [0, 4095] "a core index between 0 and 4095";
    persist_core: [0, 4095] "a core index between 0 and 4095";
    idle_spins: [0, 100_000_000] "between 0 and 100000000";
    idle: any;
    idle_cpu_pct: [1.0, 100.0] "between 1 and 100 (% of one core)";
    layout: any;
});

/// `pipeline.idle_spins` is legacy: alone it keeps its meaning (with `idle = "park"`) and warns; with `spin` or
/// `adaptive` it is an error naming the key. Returns the warning.
fn check_idle_spins(t: &toml::Table, p: &PipelineConfig) -> Result<Option<String>, ConfigError> {
    let Some(v) = t.get("pipeline").and_then(|s| s.get("idle_spins")) else { return Ok(None) };
    if p.idle != IdleMode::Park {
        return Err(ConfigError::Range {
            key: "pipeline.idle_spins".into(),
            value: v.to_string(),
            allowed: "only with idle = \"park\" (it is legacy: remove it with idle = \"spin\" or \"adaptive\")",
        });
    }
    Ok(Some(
        "config key `pipeline.idle_spins` is legacy: it still sets the spins before parking, but prefer \
         `pipeline.idle` (\"spin\", \"adaptive\" or \"park\")"
            .into(),
    ))
}

/// The inline layout's network thread waits in its poll: `park` (block until a socket is readable) or `spin`
/// (busy-poll); `adaptive` sizes a compute thread's spin from its idle gaps and has no meaning there.
fn check_layout(p: &PipelineConfig) -> Result<(), ConfigError> {
    if p.layout == Layout::Inline && p.idle == IdleMode::Adaptive {
        return Err(ConfigError::Range {
            key: "pipeline.idle".into(),
            value: "\"adaptive\"".into(),
            allowed: "\"park\" or \"spin\" with layout = \"inline\", the default (the network thread blocks in its poll or \
                      busy-polls); adaptive needs layout = \"split\"",
        });
    }
    Ok(())
}

/// `[parser]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParserConfig {
    /// Largest frame accepted, bytes.
    pub max_frame_bytes: usize,
    /// Most symbols.
    pub max_symbols: usize,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig { max_frame_bytes: crate::ingest::parse::DEFAULT_MAX_FRAME_BYTES, max_symbols: 64 }
    }
}

bounds!(ParserConfig as _p {
    max_frame_bytes: [4096, 64 << 20] "between 4096 and 67108864 bytes";
    max_symbols: [1, 1024] "between 1 and 1024";
});

/// `[bars]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BarsConfig {
    /// Bar range as % of the bar's open price (used when `range_ticks` is 0 and no fixed range applies).
    pub range_pct: f64,
    /// Bar range in ticks (0: use `range_pct`).
    pub range_ticks: i64,
    /// Fixed ranges in price units per symbol, e.g. `BTCUSDT = "50"`.
    pub fixed: std::collections::BTreeMap<String, String>,
}

impl Default for BarsConfig {
    fn default() -> Self {
        BarsConfig { range_pct: 0.05, range_ticks: 0, fixed: Default::default() }
    }
}

// `fixed` (symbol names, positive decimals) is checked by `Config::validate`.
bounds!(BarsConfig as _b {
    range_pct: [f64::MIN_POSITIVE, 10.0] "greater than 0 and at most 10 (%)";
    range_ticks: [0, 1_000_000_000] "0 (use range_pct) or a tick count";
    fixed: any;
});

/// Where orders go (`[execution] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    /// Paper only: nothing is sent (the default).
    Paper,
    /// Binance's USDⓈ-M futures testnet.
    Testnet,
    /// The real account (also needs `confirm_live = true`).
    Live,
}

/// The stops' trigger price (`[execution] working_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopTriggerPrice {
    /// `MARK_PRICE`: a wick of the last price does not trigger the stop.
    Mark,
    /// `CONTRACT_PRICE`: the last trade price (as the paper model's stops).
    Contract,
}

/// `[execution]`: the real account beside the base paper account (`compute::trading::venue`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// `paper`, `testnet` or `live`.
    pub mode: ExecutionMode,
    /// Must be true for `mode = "live"`.
    pub confirm_live: bool,
    /// Largest notional of one entry, USDT.
    pub order_notional_max: f64,
    /// Largest open notional on one symbol, USDT.
    pub symbol_notional_max: f64,
    /// Largest open notional in total, USDT.
    pub total_notional_max: f64,
    /// Entries per minute (exchange time).
    pub orders_per_min_max: usize,
    /// The UTC day's loss (realised, fees included, plus the open positions' unrealised) that halts new entries, USDT.
    pub daily_loss_max: f64,
    /// When the daily loss halts entries, also close every real position (reduce-only MARKET) at once.
    pub flatten_on_daily_loss: bool,
    /// The protective stops' trigger price.
    pub working_type: StopTriggerPrice,
    /// A real position with the paper account flat for this long is flattened, ms.
    pub divergence_grace_ms: i64,
    /// Binance's `recvWindow` of signed requests, ms.
    pub recv_window_ms: u64,
    /// An order not acknowledged within this is queried, then resent with the same client id, ms.
    pub ack_timeout_ms: u64,
    /// While the WebSocket API is down, send orders over REST (`/fapi/v1/order`, `/fapi/v1/algoOrder`) instead of
    /// letting them wait for the reconnect.
    pub rest_fallback: bool,
    /// How long the WebSocket API must have been down before orders go over REST, ms.
    pub rest_fallback_after_ms: u64,
    /// Close every real position at shutdown (otherwise they keep their exchange-side stops).
    pub flatten_on_exit: bool,
    /// Adopt positions at start that this run's database does not know (otherwise: refuse to start).
    pub adopt_unknown: bool,
    /// A file whose existence halts new entries (like `SIGUSR1`); empty: none.
    pub halt_file: String,
    /// The WebSocket API (`wss://host/ws-fapi/v1`); empty: the mode's (testnet or live) Binance endpoint.
    pub ws_api_url: String,
    /// The user data stream (`wss://host/private/ws`, the listenKey is added as `?listenKey=`); empty: the mode's.
    pub user_stream_url: String,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            mode: ExecutionMode::Paper,
            confirm_live: false,
            order_notional_max: 1_000.0,
            symbol_notional_max: 2_000.0,
            total_notional_max: 5_000.0,
            orders_per_min_max: 10,
            daily_loss_max: 100.0,
            flatten_on_daily_loss: false,
            working_type: StopTriggerPrice::Mark,
            divergence_grace_ms: 5_000,
            recv_window_ms: 5_000,
            ack_timeout_ms: 2_000,
            rest_fallback: true,
            rest_fallback_after_ms: 500,
            flatten_on_exit: false,
            adopt_unknown: false,
            halt_file: String::new(),
            ws_api_url: String::new(),
            user_stream_url: String::new(),
        }
    }
}

bounds!(ExecutionConfig as x {
    mode: any;
    confirm_live: any;
    order_notional_max: [5.0, 1e9] "5 (Binance's minimum notional) to 1e9 USDT";
    symbol_notional_max: [x.order_notional_max, 1e9] "order_notional_max to 1e9 USDT";
    total_notional_max: [x.symbol_notional_max, 1e10] "symbol_notional_max to 1e10 USDT";
    orders_per_min_max: [1, 240] "1 to 240 (Binance allows 1200 orders a minute per account)";
    daily_loss_max: [f64::MIN_POSITIVE, 1e9] "greater than 0 and at most 1e9 USDT";
    flatten_on_daily_loss: any;
    working_type: any;
    divergence_grace_ms: [100, 600_000] "100 to 600000 ms";
    recv_window_ms: [1, 60_000] "1 to 60000 ms (Binance's limit)";
    ack_timeout_ms: [50, 60_000] "50 to 60000 ms";
    rest_fallback: any;
    rest_fallback_after_ms: [0, 600_000] "0 to 600000 ms";
    flatten_on_exit: any;
    adopt_unknown: any;
    halt_file: any;
    ws_api_url: any;
    user_stream_url: any;
});

impl Canon for ExecutionMode {
    fn canon(&self, out: &mut String) {
        out.push_str(match self {
            ExecutionMode::Paper => "paper",
            ExecutionMode::Testnet => "testnet",
            ExecutionMode::Live => "live",
        });
    }
}

impl Canon for StopTriggerPrice {
    fn canon(&self, out: &mut String) {
        out.push_str(match self {
            StopTriggerPrice::Mark => "mark",
            StopTriggerPrice::Contract => "contract",
        });
    }
}

impl ExecutionConfig {
    /// The venue's settings for run `run_id` (TP1's share and the stop distance from the base account's rules).
    pub fn venue(&self, run_id: u32, c: &Config) -> crate::compute::VenueConfig {
        crate::compute::VenueConfig {
            run_id,
            order_notional_max: self.order_notional_max,
            symbol_notional_max: self.symbol_notional_max,
            total_notional_max: self.total_notional_max,
            orders_per_min_max: self.orders_per_min_max,
            daily_loss_max: self.daily_loss_max,
            flatten_on_daily_loss: self.flatten_on_daily_loss,
            working_type: match self.working_type {
                StopTriggerPrice::Mark => crate::types::order::WorkingType::Mark,
                StopTriggerPrice::Contract => crate::types::order::WorkingType::Contract,
            },
            divergence_grace_ms: self.divergence_grace_ms,
            tp1_fraction: c.position.tp1_fraction,
            stop_pct: c.risk.stop_pct,
        }
    }
}

/// `live` needs `confirm_live` (real orders on the real account, behind the start-up reconcile, the adoption of
/// what the database knows and the one-process account lock of `app::account`). `testnet` routes orders to
/// Binance's testnet (or to `ws_api_url`); its URLs must be websocket URLs.
fn check_execution(x: &ExecutionConfig) -> Result<(), ConfigError> {
    for (key, url) in [("execution.ws_api_url", &x.ws_api_url), ("execution.user_stream_url", &x.user_stream_url)] {
        if !url.is_empty() && !url.starts_with("wss://") && !url.starts_with("ws://") {
            return Err(out_of_range(key, url, "a wss:// (or ws://) URL, or \"\" for the mode's Binance endpoint"));
        }
    }
    match x.mode {
        ExecutionMode::Paper | ExecutionMode::Testnet => Ok(()),
        ExecutionMode::Live if !x.confirm_live => Err(out_of_range(
            "execution.mode",
            "\"live\"",
            "\"live\" only with execution.confirm_live = true (real orders on the real account)",
        )),
        ExecutionMode::Live => Ok(()),
    }
}

impl ExecutionConfig {
    /// The WebSocket API URL: the configured one, or the mode's Binance endpoint.
    pub fn ws_api(&self) -> &str {
        match (self.ws_api_url.as_str(), self.mode) {
            ("", ExecutionMode::Live) => "wss://ws-fapi.binance.com/ws-fapi/v1",
            ("", _) => "wss://testnet.binancefuture.com/ws-fapi/v1",
            (u, _) => u,
        }
    }

    /// The user data stream URL: the configured one, or the mode's Binance endpoint (the `/private` route).
    pub fn user_stream(&self) -> &str {
        match (self.user_stream_url.as_str(), self.mode) {
            ("", ExecutionMode::Live) => "wss://fstream.binance.com/private/ws",
            ("", _) => "wss://fstream.binancefuture.com/private/ws",
            (u, _) => u,
        }
    }

    /// True when orders go to an exchange.
    pub fn routes_orders(&self) -> bool {
        self.mode != ExecutionMode::Paper
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[parser]`.
    pub parser: ParserConfig,
    /// `[book]`.
    pub book: BookConfig,
    /// `[bars]`.
    pub bars: BarsConfig,
    /// `[flow]`: order flow.
    pub flow: crate::compute::market::flow::FlowConfig,
    /// `[profile]`: volume profile.
    pub profile: crate::compute::market::profile::ProfileConfig,
    /// `[regime]`: regime classifier.
    pub regime: crate::compute::market::regime::RegimeConfig,
    /// `[strategy]`: AdvancedOrderFlow thresholds and the regime table.
    pub strategy: crate::compute::signal::strategy::StrategyConfig,
    /// `[tune]`: burst auto-tuning.
    pub tune: crate::compute::signal::tune::TuneConfig,
    /// `[gate]`: execution gate.
    pub gate: crate::compute::trading::gate::GateConfig,
    /// `[risk]`: sizing and limits.
    pub risk: crate::compute::trading::risk::RiskConfig,
    /// `[position]`: exits.
    pub position: crate::compute::trading::position::PositionConfig,
    /// `[persist]`: database batching.
    pub persist: crate::persist::writer::BatchConfig,
    /// `[live]`: endpoints, symbols, reconnects, health.
    pub live: LiveConfig,
    /// `[alerts]`: Discord / Telegram messages (destinations from the environment).
    pub alerts: crate::app::alert::AlertConfig,
    /// `[secrets]`: where API credentials live (never the credentials).
    pub secrets: crate::app::secrets::SecretsConfig,
    /// `[execution]`: paper (default), testnet or live orders, and the real account's caps.
    pub execution: ExecutionConfig,
    /// `[metrics]`: the Prometheus endpoint of `rusto live` (off by default). Validated, but not part of the
    /// configuration's hash: it changes no decision (like the paths on the command line).
    pub metrics: crate::app::metrics::MetricsConfig,
    /// `[[variants]]`: A/B paper variants, each a name and overrides of `[strategy]`, `[gate]`, `[risk]` and
    /// `[position]` keys, merged onto this configuration.
    pub variants: Vec<VariantSpec>,
    /// The variants resolved (merged and validated) by [`Config::from_toml`].
    #[serde(skip)]
    pub resolved_variants: Vec<crate::compute::engine::Variant>,
    /// Deprecated keys found in the file (each already logged, naming its new key).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

bounds!(Config as _c {
    pipeline: nested;
    parser: nested;
    book: nested;
    bars: nested;
    flow: nested;
    profile: nested;
    regime: nested;
    strategy: nested;
    tune: nested;
    gate: nested;
    risk: nested;
    position: nested;
    persist: nested;
    live: nested;
    alerts: nested;
    secrets: nested;
    execution: nested;
    metrics: skip;
    variants: any;
    resolved_variants: skip;
    warnings: skip;
});

/// One `[[variants]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Name stored with its positions (unique, not "base").
    pub name: String,
    /// Overrides, e.g. `[variants.overrides.position] tp1_rr = 1.0`.
    #[serde(default)]
    pub overrides: toml::Table,
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Keys renamed to the units-last rule (`<quantity>_<unit>[_<bound>]`, seconds as `s`): (section, old, new). The
/// old key is still accepted, with a warning naming the new one; giving both is an error.
pub(crate) const RENAMED_KEYS: &[(&str, &str, &str)] = &[
    ("live", "reconnect_min_ms", "reconnect_ms_min"),
    ("live", "reconnect_max_ms", "reconnect_ms_max"),
    ("live", "reconnect_window_secs", "reconnect_window_s"),
    ("live", "rotate_after_secs", "rotate_after_s"),
    ("live", "control_msgs_per_sec", "control_msgs_per_s"),
    ("live", "report_interval_secs", "report_interval_s"),
    ("live", "health_interval_secs", "health_interval_s"),
    ("live", "max_time_offset_ms", "time_offset_ms_max"),
    ("live", "max_latency_ms", "latency_ms_max"),
    ("live", "reselect_every_secs", "reselect_every_s"),
    ("alerts", "feed_down_secs", "feed_down_s"),
];

/// Moves each deprecated key of `t` to its new name; returns one warning per key moved.
fn upgrade_keys(t: &mut toml::Table) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for &(section, old, new) in RENAMED_KEYS {
        let Some(toml::Value::Table(sec)) = t.get_mut(section) else { continue };
        let Some(v) = sec.remove(old) else { continue };
        if sec.contains_key(new) {
            return Err(ConfigError::Range {
                key: format!("{section}.{old}"),
                value: v.to_string(),
                allowed: "only one of a deprecated key and its new name",
            });
        }
        sec.insert(new.to_string(), v);
        warnings.push(format!("config key `{section}.{old}` is deprecated: use `{section}.{new}`"));
    }
    Ok(warnings)
}

impl From<OutOfBounds> for ConfigError {
    fn from(e: OutOfBounds) -> Self {
        ConfigError::Range { key: e.key, value: e.value, allowed: e.allowed }
    }
}

/// Refuses a `[live]` key that is not in its bounds table (the table lists every key, flattened ones included),
/// naming the key and the section, as serde's `deny_unknown_fields` does for the other sections.
fn reject_unknown_live_keys(t: &toml::Table, path: &str) -> Result<(), ConfigError> {
    let Some(toml::Value::Table(live)) = t.get("live") else { return Ok(()) };
    let mut known = String::new();
    LiveConfig::default().canon("", &mut known);
    let is_known = |k: &str| known.lines().any(|l| l.split('=').next() == Some(k));
    match live.keys().find(|k| !is_known(k)) {
        Some(k) => Err(ConfigError::Syntax {
            path: path.into(),
            at: None,
            key: Some(format!("live.{k}")),
            msg: format!("unknown field `{k}` in [live]"),
        }),
        None => Ok(()),
    }
}

fn out_of_range(key: &str, value: impl std::fmt::Display, allowed: &'static str) -> ConfigError {
    ConfigError::Range { key: key.to_string(), value: value.to_string(), allowed }
}

/// A `_`/`-`-separated word that marks a key as a credential (`api_key`, `token`, `db-password`).
const CREDENTIAL_WORDS: &[&str] =
    &["key", "secret", "token", "password", "passwd", "pwd", "passphrase", "pass", "auth", "signature", "mnemonic"];
/// Text that marks a key as a credential wherever it appears in it, separators and case ignored (`apiSecret`).
const CREDENTIAL_PARTS: &[&str] =
    &["secret", "password", "passphrase", "apikey", "privatekey", "accesskey", "accesstoken", "authtoken"];

/// Whether a key name (one segment, as written) looks like it holds a credential. Case-insensitive.
pub(crate) fn looks_like_credential(name: &str) -> bool {
    let k = name.to_ascii_lowercase();
    let joined: String = k.chars().filter(char::is_ascii_alphanumeric).collect();
    k.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| CREDENTIAL_WORDS.contains(&w))
        || CREDENTIAL_PARTS.iter().any(|p| joined.contains(p))
}

/// Every dotted key and section of the schema (`secrets`, `secrets.credentials_file`, …): never a credential.
fn schema_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let canon = Config::default().canonical();
        let mut names = vec!["variants".to_string()];
        for line in canon.lines() {
            let key = line.split('=').next().unwrap_or("");
            for (i, _) in key.match_indices('.').chain([(key.len(), "")]) {
                names.push(key[..i].to_string());
            }
        }
        names
    })
}

/// The first credential-looking segment of a dotted key (a key or a table the schema does not have), as the
/// dotted key up to it.
fn credential_prefix(dotted: &str, schema: &[String]) -> Option<String> {
    let mut end = 0;
    for seg in dotted.split('.') {
        end += seg.len();
        let prefix = &dotted[..end];
        if looks_like_credential(seg) && !schema.iter().any(|s| s == prefix) {
            return Some(prefix.to_string());
        }
        end += 1;
    }
    None
}

/// `a . "b" .c` as `a.b.c`.
fn clean_key(k: &str) -> String {
    k.split('.').map(|s| s.trim().trim_matches(['"', '\''])).collect::<Vec<_>>().join(".")
}

/// Each table header and each `key = …` line of `text` as (1-based line, dotted key under the last header). Read
/// line by line, so it also works on a file that does not parse (a multi-line value's lines read as keys too:
/// this errs towards refusing).
fn keyed_lines(text: &str) -> Vec<(usize, String)> {
    let mut table = String::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with('[') {
            table = clean_key(line.trim_start_matches('[').split(']').next().unwrap_or(""));
            out.push((i + 1, table.clone()));
        } else if !line.is_empty() && !line.starts_with('#') {
            let key = match line.split_once('=') {
                Some((k, _)) => k,
                None => line.split_whitespace().next().unwrap_or(""),
            };
            let key = clean_key(key);
            if !key.is_empty() {
                out.push((i + 1, crate::types::bounds::join(&table, &key)));
            }
        }
    }
    out
}

/// A credential-looking key in a parsed value (inline tables and arrays of tables included), as its dotted key.
fn credential_in(t: &toml::Table, name: &str, schema: &[String]) -> Option<String> {
    t.iter().find_map(|(k, v)| {
        let name = crate::types::bounds::join(name, k);
        credential_prefix(&name, schema).or_else(|| credential_in_value(v, &name, schema))
    })
}

fn credential_in_value(v: &toml::Value, name: &str, schema: &[String]) -> Option<String> {
    match v {
        toml::Value::Table(t) => credential_in(t, name, schema),
        toml::Value::Array(a) => a.iter().find_map(|v| credential_in_value(v, name, schema)),
        _ => None,
    }
}

/// Refuses a file holding a credential-looking key: first line by line (`parsed: None`, before parsing, so a
/// syntax error on that line cannot show it either), then in the parsed table (inline tables, arrays).
fn refuse_credentials(text: &str, parsed: Option<&toml::Table>, path: &str) -> Result<(), ConfigError> {
    let schema = schema_names();
    let found = match parsed {
        None => keyed_lines(text).into_iter().find_map(|(l, k)| credential_prefix(&k, schema).map(|k| (k, Some(l)))),
        Some(t) => credential_in(t, "", schema).map(|k| {
            let seg = k.rsplit('.').next().unwrap_or(&k);
            (k.clone(), text.lines().position(|l| l.contains(seg)).map(|i| i + 1))
        }),
    };
    match found {
        Some((key, line)) => Err(ConfigError::Credential { path: path.into(), key, line }),
        None => Ok(()),
    }
}

/// The toml crate's message with every quoted value cut out: its `Display` quotes the source line, and its
/// messages quote values (`invalid type: string "…"`, `unknown variant `…``). What follows the last
/// ", expected " is the schema's side (types, field and variant names) and is kept, as is the key of an
/// unknown/missing/duplicate field; anything from the first quote on before it is cut.
///
/// Every value is cut, not only those of credential-looking keys: a secret pasted under a wrong key name (or a
/// value that swallowed the next lines through an unclosed string) must not show either.
pub(crate) fn redact(msg: &str) -> String {
    let (head, tail) = match msg.rsplit_once(", expected ") {
        Some((h, t)) => (h, Some(t)),
        None => (msg, None),
    };
    let head = redact_head(head);
    match tail {
        Some(t) => format!("{head}, expected {t}"),
        None => head,
    }
}

fn redact_head(head: &str) -> String {
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(name) = head.strip_prefix(prefix).and_then(|r| r.strip_suffix('`')) {
            let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            return if bare { head.to_string() } else { format!("{}(name not shown)", &prefix[..prefix.len() - 1]) };
        }
    }
    match head.find(['"', '`', '\'']) {
        Some(i) => format!("{} (value not shown)", head[..i].trim_end_matches([' ', ':'])),
        None => head.to_string(),
    }
}

/// The dotted key of line `line`, when that line is `bare.key = …` (a name, never a value: a line without `=`,
/// or with anything but bare-key characters before it, gives none).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let (k, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-. ".contains(c);
    if k.trim().is_empty() || !k.chars().all(bare) {
        return None;
    }
    keyed_lines(text).into_iter().find(|(l, _)| *l == line).map(|(_, k)| k)
}

/// A toml error as a [`ConfigError::Syntax`]: place (from `text`, when the error has a span into it), dotted key
/// (when the parser names it, else the key on that line) and [`redact`]ed message; never the source line.
fn syntax_error(path: &str, text: Option<&str>, mut e: toml::de::Error) -> ConfigError {
    let at = text.zip(e.span()).map(|(t, s)| Location::of(t, s.start));
    let msg = redact(e.message());
    // Without its input the error's `Display` is the message and then "in `a.b`" (names only) when it has keys.
    e.set_input(None);
    let shown = e.to_string();
    let key = shown
        .strip_prefix(e.message())
        .and_then(|r| r.strip_prefix("\nin `"))
        .and_then(|r| r.strip_suffix("`\n"))
        .map(str::to_string)
        .or_else(|| key_on_line(text?, at?.line));
    ConfigError::Syntax { path: path.into(), at, key, msg }
}

impl Config {
    /// Parses and validates TOML text (`path` is only for messages).
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        refuse_credentials(text, None, path)?;
        let syntax = |e| syntax_error(path, Some(text), e);
        let mut base: toml::Table = toml::from_str(text).map_err(syntax)?;
        refuse_credentials(text, Some(&base), path)?;
        let warnings = upgrade_keys(&mut base)?;
        reject_unknown_live_keys(&base, path)?;
        // Without deprecated keys the text itself is parsed again, so syntax errors keep their line numbers.
        let mut c: Config = if warnings.is_empty() {
            toml::from_str(text).map_err(syntax)?
        } else {
            base.clone().try_into().map_err(|e| syntax_error(path, None, e))?
        };
        for w in &warnings {
            log::warn!("{path}: {w}");
        }
        c.warnings = warnings;
        c.validate()?;
        if let Some(w) = check_idle_spins(&base, &c.pipeline)? {
            log::warn!("{path}: {w}");
            c.warnings.push(w);
        }
        // Each variant: the base file with its overrides merged in, validated like the base.
        base.remove("variants");
        check_variant_specs(&c.variants)?;
        let mut resolved = Vec::new();
        for v in &c.variants {
            let mut t = base.clone();
            merge(&mut t, &v.overrides);
            let merged: Config =
                t.try_into().map_err(|e| syntax_error(&format!("{path} [variant {}]", v.name), None, e))?;
            merged.validate().map_err(|e| ConfigError::Variant { name: v.name.clone(), inner: Box::new(e) })?;
            resolved.push(crate::compute::engine::Variant {
                name: v.name.clone(),
                strategy: merged.strategy,
                gate: merged.gate,
                risk: merged.risk,
                position: merged.position,
            });
        }
        c.resolved_variants = resolved;
        Ok(c)
    }

    /// Names of the A/B variants, in order.
    pub fn variant_names(&self) -> Vec<String> {
        self.resolved_variants.iter().map(|v| v.name.clone()).collect()
    }

    /// The canonical `key=value` lines of the effective configuration (every key of every section's bounds
    /// table, in table order, under its TOML name): independent of Rust type names and of the file's layout.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        self.canon("", &mut out);
        out
    }

    /// A stable hash of the effective configuration (FNV-1a over [`Config::canonical`]), stored with each run.
    pub fn hash(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.canonical().bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// Reads and validates a file.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: path.into(), cause })?;
        Self::from_toml(&text, path)
    }

    /// Checks every value: each section's bounds table, then the rules a range cannot say.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_bounds("")?;
        check_bars(&self.bars)?;
        check_divisors(self)?;
        check_candidates(&self.tune)?;
        check_live(&self.live, self.parser.max_symbols)?;
        check_layout(&self.pipeline)?;
        check_execution(&self.execution)?;
        self.metrics.check_bounds("metrics")?;
        if let Err(allowed) = self.metrics.addr() {
            return Err(out_of_range("metrics.listen", self.metrics.listen.as_deref().unwrap_or(""), allowed));
        }
        Ok(())
    }

    /// The compute stage's settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            book: self.book,
            bar_range: if self.bars.range_ticks > 0 {
                BarRange::Ticks(self.bars.range_ticks)
            } else {
                BarRange::Pct(self.bars.range_pct)
            },
            fixed_ranges: self
                .bars
                .fixed
                .iter()
                .filter_map(|(k, v)| SymbolName::new(k.as_bytes()).map(|n| (n, v.clone())))
                .collect(),
            max_symbols: self.parser.max_symbols,
            flow: self.flow.clone(),
            profile: self.profile.clone(),
            regime: self.regime.clone(),
            strategy: self.strategy.clone(),
            tune: self.tune.clone(),
            gate: self.gate.clone(),
            risk: self.risk.clone(),
            position: self.position.clone(),
            variants: self.resolved_variants.clone(),
            top_of_book: false,
            entries_from_local_ns: None,
        }
    }
}

fn check_variant_specs(variants: &[VariantSpec]) -> Result<(), ConfigError> {
    let mut names: Vec<&str> = vec!["base"];
    for v in variants {
        if v.name.is_empty() || names.contains(&v.name.as_str()) || v.name.len() > 32 {
            return Err(out_of_range("variants.name", &v.name, "a unique name of 1 to 32 characters, not \"base\""));
        }
        names.push(&v.name);
        if let Some(k) = v.overrides.keys().find(|k| !["strategy", "gate", "risk", "position"].contains(&k.as_str())) {
            return Err(out_of_range(
                "variants.overrides",
                format!("{} [{}]", v.name, k),
                "overrides of [strategy], [gate], [risk] and [position] only",
            ));
        }
        if names.len() > 9 {
            return Err(out_of_range("variants", names.len(), "at most 8 variants"));
        }
    }
    Ok(())
}

fn check_bars(b: &BarsConfig) -> Result<(), ConfigError> {
    for (sym, v) in &b.fixed {
        if SymbolName::new(sym.as_bytes()).is_none() {
            return Err(out_of_range("bars.fixed", sym, "a symbol name"));
        }
        match crate::types::decimal::parse_decimal(v.as_bytes()) {
            Ok(d) if d.mantissa > 0 => {}
            _ => {
                return Err(out_of_range(
                    "bars.fixed",
                    format!("{sym} = {v:?}"),
                    "a positive decimal price distance as a string, e.g. \"50\"",
                ));
            }
        }
    }
    Ok(())
}

fn check_divisors(c: &Config) -> Result<(), ConfigError> {
    if 24 % c.flow.session_hours != 0 {
        return Err(out_of_range("flow.session_hours", c.flow.session_hours, "a divisor of 24"));
    }
    if c.profile.session && 24 % c.profile.window_hours != 0 {
        return Err(out_of_range(
            "profile.window_hours",
            c.profile.window_hours,
            "a divisor of 24 when session = true",
        ));
    }
    Ok(())
}

fn check_candidates(t: &crate::compute::signal::tune::TuneConfig) -> Result<(), ConfigError> {
    if t.candidates.is_empty()
        || t.candidates.len() > crate::compute::signal::tune::MAX_CANDIDATES
        || t.candidates.iter().any(|c| !(*c > 0.0 && c.is_finite()))
    {
        return Err(out_of_range("tune.candidates", format!("{:?}", t.candidates), "1 to 16 positive ratios"));
    }
    Ok(())
}

fn check_live(l: &LiveConfig, max_symbols: usize) -> Result<(), ConfigError> {
    for (key, url, schemes) in
        [("live.ws_url", &l.ws_url, ["wss://", "ws://"]), ("live.rest_url", &l.rest_url, ["https://", "http://"])]
    {
        if !schemes.iter().any(|p| url.starts_with(p)) {
            return Err(out_of_range(key, url, "a wss:// or ws:// (https:// or http:// for REST) URL"));
        }
    }
    for s in l.symbols.iter().chain(&l.exclude) {
        if SymbolName::new(s.as_bytes()).is_none() {
            return Err(out_of_range("live.symbols", s, "symbol names such as BTCUSDT"));
        }
    }
    if l.top_n > max_symbols {
        return Err(out_of_range("live.top_n", l.top_n, "1 to parser.max_symbols"));
    }
    Ok(())
}

impl Canon for VariantSpec {
    fn canon(&self, out: &mut String) {
        self.name.canon(out);
        out.push(':');
        // The overrides table printed as TOML (keys sorted).
        out.push_str(&self.overrides.to_string().replace('\n', ";"));
    }
}

impl Canon for Layout {
    fn canon(&self, out: &mut String) {
        out.push_str(self.name());
    }
}

impl Canon for IdleMode {
    fn canon(&self, out: &mut String) {
        out.push_str(self.name());
    }
}

impl Canon for FullPolicy {
    fn canon(&self, out: &mut String) {
        out.push_str(match self {
            FullPolicy::DropAndResync => "drop-and-resync",
            FullPolicy::Spin => "spin",
        });
    }
}

impl Canon for crate::compute::trading::position::StopTrigger {
    fn canon(&self, out: &mut String) {
        out.push_str(match self {
            crate::compute::trading::position::StopTrigger::Last => "last",
            crate::compute::trading::position::StopTrigger::Mark => "mark",
        });
    }
}

impl Canon for crate::compute::market::flow::CvdReset {
    fn canon(&self, out: &mut String) {
        out.push_str(match self {
            crate::compute::market::flow::CvdReset::Session => "session",
            crate::compute::market::flow::CvdReset::Never => "never",
        });
    }
}

/// `[live]`. Its connection keys (`reconnect_ms_min` …) belong to the network layer's [`ConnectionPolicy`],
/// flattened into this table; unknown keys are refused by [`reject_unknown_live_keys`] (serde cannot deny unknown
/// fields next to a flattened struct).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LiveConfig {
    /// Websocket base, `wss://host[:port]` (2026 routed endpoints below).
    pub ws_url: String,
    /// REST base, `https://host[:port]`.
    pub rest_url: String,
    /// Path of the market route.
    pub market_path: String,
    /// Path of the public route.
    pub public_path: String,
    /// Trust exactly this CA (PEM) instead of the webpki roots (the local exchange, a private proxy).
    pub ca_file: Option<String>,
    /// Manual symbols; empty: auto selection.
    pub symbols: Vec<String>,
    /// Symbols in auto mode.
    pub top_n: usize,
    /// Never selected.
    pub exclude: Vec<String>,
    /// Trade stream suffix (`aggTrade` or `trade`).
    pub trade_stream: String,
    /// Depth stream suffix (`depth@0ms`, `depth@100ms`).
    pub depth_stream: String,
    /// Subscribe `bookTicker` (the book audit).
    pub book_ticker: bool,
    /// Mark price stream suffix (empty: none).
    pub mark_price_stream: String,
    /// Levels of a REST snapshot.
    pub snapshot_limit: u32,
    /// Reconnects, rotation and control pacing (keys `reconnect_ms_min`, `reconnect_ms_max`, `max_reconnects`,
    /// `reconnect_window_s`, `rotate_after_s`, `control_msgs_per_s`).
    #[serde(flatten)]
    pub connection: ConnectionPolicy,
    /// Latency report interval, s (0: only at exit).
    pub report_interval_s: u64,
    /// Link health interval, s.
    pub health_interval_s: u64,
    /// Warn above this clock offset, ms (reference max_time_offset_ms).
    pub time_offset_ms_max: f64,
    /// Warn above this REST RTT, ms (reference max_latency_ms).
    pub latency_ms_max: f64,
    /// Pings per health check (reference ping_samples).
    pub ping_samples: usize,
    /// Pause REST when the used weight per minute reaches this (Binance's limit is 2400).
    pub weight_budget: u64,
    /// UTC hour of the daily reselection (0 = 09:00 KST).
    pub reselect_hour_utc: u32,
    /// Reselect every this many seconds instead of daily (0: daily at `reselect_hour_utc`; tests and operators
    /// who want a faster rotation).
    pub reselect_every_s: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            ws_url: "wss://fstream.binance.com".into(),
            rest_url: "https://fapi.binance.com".into(),
            market_path: "/market".into(),
            public_path: "/public".into(),
            ca_file: None,
            symbols: Vec::new(),
            top_n: 10,
            exclude: Vec::new(),
            trade_stream: "aggTrade".into(),
            depth_stream: "depth@0ms".into(),
            book_ticker: true,
            mark_price_stream: "markPrice@1s".into(),
            snapshot_limit: 1000,
            connection: ConnectionPolicy::default(),
            report_interval_s: 10,
            health_interval_s: 300,
            time_offset_ms_max: 500.0,
            latency_ms_max: 15.0,
            ping_samples: 10,
            weight_budget: 2000,
            reselect_hour_utc: 0,
            reselect_every_s: 0,
        }
    }
}

// URLs, symbol names and `top_n <= parser.max_symbols` are checked by `Config::validate`.
bounds!(LiveConfig as l {
    ws_url: any;
    rest_url: any;
    market_path: any;
    public_path: any;
    ca_file: any;
    symbols: any;
    top_n: [1, 1024] "1 to parser.max_symbols";
    exclude: any;
    trade_stream: any;
    depth_stream: any;
    book_ticker: any;
    mark_price_stream: any;
    snapshot_limit: [5, 1000] "5 to 1000 (Binance's limits)";
    connection: flat;
    report_interval_s: any;
    health_interval_s: any;
    time_offset_ms_max: finite "a finite number of ms";
    latency_ms_max: finite "a finite number of ms";
    ping_samples: [1, 100] "1 to 100";
    weight_budget: [1, 2400] "1 to 2400";
    reselect_hour_utc: [0, 23] "0 to 23";
    reselect_every_s: [0, 7 * 86_400] "0 (daily) to 604800 s";
});

/// Reads per readable event per connection (not a key: one busy route must not starve the other).
const MAX_READS_PER_WAKE: usize = 64;

impl LiveConfig {
    /// The network thread's settings: the one place [`NetConfig`] is built from `[live]` (its values, defaults
    /// and bounds live here only). Resolves the websocket host.
    pub fn net(&self, max_frame_bytes: usize) -> Result<NetConfig, NetError> {
        Ok(NetConfig {
            endpoint: Endpoint::parse(&self.ws_url)?,
            market_path: self.market_path.clone(),
            public_path: self.public_path.clone(),
            max_frame_bytes,
            policy: self.connection.clone(),
            max_reads_per_wake: MAX_READS_PER_WAKE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_defaults_to_paper_testnet_routes_and_live_needs_confirm_live() {
        let c = Config::from_toml("", "t.toml").unwrap();
        assert_eq!(c.execution.mode, ExecutionMode::Paper);
        let v = c.execution.venue(9, &c);
        assert_eq!((v.run_id, v.tp1_fraction, v.stop_pct), (9, c.position.tp1_fraction, c.risk.stop_pct));
        let live = Config::from_toml("[execution]\nmode = \"live\"\n", "t.toml").unwrap_err().to_string();
        assert!(live.contains("confirm_live"), "{live}");
        assert!(!c.execution.routes_orders());
        let t = Config::from_toml("[execution]\nmode = \"testnet\"\n", "t.toml").unwrap();
        assert!(t.execution.routes_orders());
        assert_eq!(t.execution.ws_api(), "wss://testnet.binancefuture.com/ws-fapi/v1");
        let confirmed = "[execution]\nmode = \"live\"\nconfirm_live = true\n";
        let live = Config::from_toml(confirmed, "t.toml").unwrap();
        assert_eq!(live.execution.ws_api(), "wss://ws-fapi.binance.com/ws-fapi/v1");
        assert_eq!(live.execution.user_stream(), "wss://fstream.binance.com/private/ws");
        let url = Config::from_toml("[execution]\nws_api_url = \"https://x\"\n", "t.toml").unwrap_err().to_string();
        assert!(url.contains("execution.ws_api_url"), "{url}");
        let caps = "[execution]\norder_notional_max = 3000.0\nsymbol_notional_max = 2000.0\n";
        let e = Config::from_toml(caps, "t.toml").unwrap_err().to_string();
        assert!(e.contains("symbol_notional_max"), "{e}");
        let bad = Config::from_toml("[execution]\nmode = \"real\"\n", "t.toml").unwrap_err().to_string();
        assert!(bad.contains("mode"), "{bad}");
    }

    #[test]
    fn unknown_live_keys_are_refused_next_to_the_flattened_connection_keys() {
        let e = Config::from_toml("[live]\nreconect_ms_min = 80\n", "x").unwrap_err().to_string();
        assert!(e.contains("reconect_ms_min") && e.contains("[live]"), "{e}");
        let c = Config::from_toml("[live]\nreconnect_ms_min = 80\ntop_n = 3\n", "x").unwrap();
        assert_eq!((c.live.connection.reconnect_ms_min, c.live.top_n), (80, 3));
        let e = Config::from_toml("[live]\nmax_reconnects = 0\n", "x").unwrap_err().to_string();
        assert!(e.contains("live.max_reconnects"), "the flattened keys keep their [live] names: {e}");
    }

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
        let c = Config::from_toml("", "x").unwrap();
        assert_eq!(c.pipeline.event_ring, 1 << 16);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::from_toml("[book]\nmax_levels = 5\n", "x").unwrap_err().to_string();
        assert!(e.contains("book.max_levels"), "{e}");
        let e = Config::from_toml("[bars]\nrange_pct = -1.0\n", "x").unwrap_err().to_string();
        assert!(e.contains("bars.range_pct"), "{e}");
        let e = Config::from_toml("[bars]\nrange_pcx = 1.0\n", "x").unwrap_err().to_string();
        assert!(e.contains("range_pcx"), "{e}");
        let e = Config::from_toml("[bars.fixed]\nBTCUSDT = \"abc\"\n", "x").unwrap_err().to_string();
        assert!(e.contains("bars.fixed"), "{e}");
        let e = Config::from_toml("[pipeline]\nfull_policy = \"maybe\"\n", "x").unwrap_err().to_string();
        assert!(e.contains("full_policy") || e.contains("maybe"), "{e}");
        let e = Config::from_toml("[live]\nreconnect_ms_min = 500\nreconnect_ms_max = 100\n", "x").unwrap_err();
        assert!(e.to_string().contains("live.reconnect_ms_max") && e.to_string().contains("reconnect_ms_min to"));
        let row = "{ min_imbalance = 2.2, min_cvd_change = 12.0, min_bar_range_pct = 0.04, min_burst_ratio = 0.0, cooldown_bars = 8 }";
        let e = Config::from_toml(&format!("[strategy]\nbase = {row}\n"), "x").unwrap_err().to_string();
        assert!(e.contains("strategy.base.min_burst_ratio"), "{e}");
    }

    #[test]
    fn idle_modes_parse_and_bad_ones_are_clear_errors() {
        let c = Config::from_toml("", "x").unwrap();
        assert_eq!((c.pipeline.idle, c.pipeline.idle_spins, c.pipeline.idle_cpu_pct), (IdleMode::Park, 2_000, 20.0));
        assert!(c.warnings.is_empty());
        for (text, want) in [("spin", IdleMode::Spin), ("adaptive", IdleMode::Adaptive), ("park", IdleMode::Park)] {
            let c = Config::from_toml(&format!("[pipeline]\nlayout = \"split\"\nidle = \"{text}\"\n"), "x").unwrap();
            assert_eq!(c.pipeline.idle, want);
            assert!(c.canonical().contains(&format!("pipeline.idle={text}\n")));
        }
        let e = Config::from_toml("[pipeline]\nidle = \"yield\"\n", "x").unwrap_err().to_string();
        assert!(e.contains("pipeline.idle") && e.contains("`adaptive`"), "{e}");
        for bad in ["0.5", "101.0"] {
            let e = Config::from_toml(&format!("[pipeline]\nidle_cpu_pct = {bad}\n"), "x").unwrap_err().to_string();
            assert!(e.contains("pipeline.idle_cpu_pct") && e.contains("between 1 and 100"), "{e}");
        }
    }

    #[test]
    fn the_layout_parses_and_inline_refuses_adaptive() {
        let c = Config::from_toml("", "x").unwrap();
        assert_eq!(c.pipeline.layout, Layout::Inline);
        assert!(c.canonical().contains("pipeline.layout=inline\n"));
        for idle in ["park", "adaptive", "spin"] {
            let c = Config::from_toml(&format!("[pipeline]\nlayout = \"split\"\nidle = \"{idle}\"\n"), "x").unwrap();
            assert_eq!(c.pipeline.layout, Layout::Split);
            assert!(c.canonical().contains("pipeline.layout=split\n"));
        }
        for (idle, want) in [("park", IdleMode::Park), ("spin", IdleMode::Spin)] {
            let c = Config::from_toml(&format!("[pipeline]\nlayout = \"inline\"\nidle = \"{idle}\"\n"), "x").unwrap();
            assert_eq!((c.pipeline.layout, c.pipeline.idle), (Layout::Inline, want));
            assert!(c.canonical().contains("pipeline.layout=inline\n"));
        }
        for text in ["[pipeline]\nlayout = \"inline\"\nidle = \"adaptive\"\n", "[pipeline]\nidle = \"adaptive\"\n"] {
            let e = Config::from_toml(text, "x").unwrap_err().to_string();
            assert!(e.contains("pipeline.idle") && e.contains("adaptive needs layout = \"split\""), "{e}");
        }
        let e = Config::from_toml("[pipeline]\nlayout = \"fused\"\n", "x").unwrap_err().to_string();
        assert!(e.contains("pipeline.layout") && e.contains("`inline`"), "{e}");
    }

    #[test]
    fn idle_spins_is_legacy_alone_and_an_error_with_spin_or_adaptive() {
        let c = Config::from_toml("[pipeline]\nidle_spins = 50\n", "x").unwrap();
        assert_eq!((c.pipeline.idle, c.pipeline.idle_spins), (IdleMode::Park, 50));
        assert!(
            c.warnings.iter().any(|w| w.contains("pipeline.idle_spins") && w.contains("legacy")),
            "{:?}",
            c.warnings
        );
        let c = Config::from_toml("[pipeline]\nidle = \"park\"\nidle_spins = 50\n", "x").unwrap();
        assert_eq!(c.pipeline.idle_spins, 50);
        for mode in ["spin", "adaptive"] {
            let e = Config::from_toml(
                &format!("[pipeline]\nlayout = \"split\"\nidle = \"{mode}\"\nidle_spins = 50\n"),
                "x",
            );
            let e = e.unwrap_err().to_string();
            assert!(e.contains("pipeline.idle_spins") && e.contains("park"), "{e}");
        }
    }

    #[test]
    fn every_float_key_rejects_nan_and_infinity() {
        for key in ["bars.range_pct", "flow.imbalance_cap", "risk.leverage", "live.time_offset_ms_max"] {
            for bad in ["nan", "inf", "-inf"] {
                let (section, k) = key.split_once('.').unwrap();
                let e = Config::from_toml(&format!("[{section}]\n{k} = {bad}\n"), "x").unwrap_err().to_string();
                assert!(e.contains(key), "{key} = {bad}: {e}");
            }
        }
        let e = Config::from_toml("[regime]\nhigh_vol_fallback_pct_per_min = nan\n", "x").unwrap_err().to_string();
        assert!(e.contains("regime.high_vol_fallback_pct_per_min"), "{e}");
    }

    #[test]
    fn old_live_keys_are_accepted_with_a_warning_naming_the_new_key() {
        let old = Config::from_toml("[live]\nreconnect_min_ms = 75\nrotate_after_secs = 30\n", "x").unwrap();
        let new = Config::from_toml("[live]\nreconnect_ms_min = 75\nrotate_after_s = 30\n", "x").unwrap();
        assert_eq!((old.live.connection.reconnect_ms_min, old.live.connection.rotate_after_s), (75, 30));
        assert_eq!(old.hash(), new.hash());
        assert!(new.warnings.is_empty());
        assert_eq!(old.warnings.len(), 2, "{:?}", old.warnings);
        assert!(old.warnings[0].contains("live.reconnect_min_ms") && old.warnings[0].contains("live.reconnect_ms_min"));
        assert!(old.warnings[1].contains("`live.rotate_after_s`"), "{:?}", old.warnings);
        let e = Config::from_toml("[live]\nreconnect_min_ms = 75\nreconnect_ms_min = 80\n", "x").unwrap_err();
        assert!(e.to_string().contains("live.reconnect_min_ms"), "{e}");
        // Every deprecated key maps onto a real key.
        for (section, old, _) in RENAMED_KEYS {
            if let Err(e) = Config::from_toml(&format!("[{section}]\n{old} = 1\n"), "x") {
                assert!(!e.to_string().contains("unknown field"), "{section}.{old}: {e}");
            }
        }
    }

    #[test]
    fn hash_is_canonical_and_sees_every_section() {
        let d = Config::default();
        assert_eq!(d.hash(), Config::from_toml("", "x").unwrap().hash());
        let text = d.canonical();
        for key in [
            "pipeline.full_policy=drop-and-resync",
            "book.max_levels=5000",
            "strategy.base.min_imbalance=",
            "live.reconnect_ms_max=30000",
            "alerts.feed_down_s=30",
            "flow.cvd_reset=session",
        ] {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
        assert!(!text.contains("Config"), "no Rust type names: {text}");
        let other = Config::from_toml("[gate]\nmax_spread_bps = 5.0\n", "x").unwrap();
        assert_ne!(d.hash(), other.hash());
        let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap();
        let c = Config::from_toml(&file, "default.toml").unwrap();
        assert!(c.warnings.is_empty(), "config/default.toml uses the new names: {:?}", c.warnings);
        let (a, b) = (c.canonical(), d.canonical());
        // The same keys; the same values, up to the last bit of the regime table's products (12.0 * 1.15 ...).
        let value = |l: &str| l.split_once('=').map(|(_, v)| v.parse::<f64>());
        let diff: Vec<(&str, &str)> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| {
                x.split('=').next() != y.split('=').next()
                    || match (value(x), value(y)) {
                        (Some(Ok(p)), Some(Ok(q))) => (p - q).abs() > 1e-12 * q.abs(),
                        _ => x != y,
                    }
            })
            .collect();
        assert!(diff.is_empty(), "config/default.toml shows the built-in defaults: {diff:?}");
        assert_eq!(a.lines().count(), b.lines().count());
    }
    #[test]
    fn the_metrics_endpoint_is_off_by_default_validated_and_not_hashed() {
        let d = Config::default();
        assert_eq!(d.metrics.addr(), Ok(None), "off by default");
        let on = Config::from_toml("[metrics]\nlisten = \"127.0.0.1:9184\"\n", "x").unwrap();
        assert_eq!(on.metrics.addr(), Ok(Some("127.0.0.1:9184".parse().unwrap())));
        assert_eq!(on.hash(), d.hash(), "an operator setting: it changes no decision");
        let e = Config::from_toml("[metrics]\nlisten = \"localhost\"\n", "x").unwrap_err().to_string();
        assert!(e.contains("metrics.listen") && e.contains("IP address and port"), "{e}");
        let e = Config::from_toml("[metrics]\npublish_interval_ms = 10\n", "x").unwrap_err().to_string();
        assert!(e.contains("metrics.publish_interval_ms"), "{e}");
        assert!(Config::from_toml("[metrics]\nport = 1\n", "x").is_err(), "unknown keys refused");
    }
}

//! Configuration: one TOML file, every key optional with a documented default (`config/default.toml`), every
//! value validated with an error that names the key and the allowed range. Unknown keys are rejected, so a typo
//! never silently falls back to a default.

use serde::Deserialize;

use crate::compute::engine::EngineConfig;
use crate::compute::market::bars::BarRange;
use crate::compute::market::book::BookConfig;
pub use crate::handoff::publish::FullPolicy;
use crate::types::symbols::SymbolName;

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid TOML or an unknown key or a wrong type.
    #[error("{path}: {msg}")]
    Syntax {
        /// File.
        path: String,
        /// The parser's message (names the key).
        msg: String,
    },
    /// A value out of range.
    #[error("config key `{key}` = {value}: {allowed}")]
    Range {
        /// Dotted key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
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
    /// Empty polls the compute thread spins before yielding the core.
    pub idle_spins: u32,
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
        }
    }
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

/// `[book]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BookSection {
    /// Most levels kept per side.
    pub max_levels: usize,
    /// Most events buffered per symbol while waiting for a snapshot.
    pub buffer_events: usize,
}

impl Default for BookSection {
    fn default() -> Self {
        let d = BookConfig::default();
        BookSection { max_levels: d.max_levels, buffer_events: d.buffer_events }
    }
}

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

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[parser]`.
    pub parser: ParserConfig,
    /// `[book]`.
    pub book: BookSection,
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
    /// `[[variants]]`: A/B paper variants, each a name and overrides of `[strategy]`, `[gate]`, `[risk]` and
    /// `[position]` keys, merged onto this configuration.
    pub variants: Vec<VariantSpec>,
    /// The variants resolved (merged and validated) by [`Config::from_toml`].
    #[serde(skip)]
    pub resolved_variants: Vec<crate::compute::engine::Variant>,
}

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

fn range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    v: T,
    lo: T,
    hi: T,
    allowed: &'static str,
) -> Result<(), ConfigError> {
    if v < lo || v > hi { Err(ConfigError::Range { key, value: v.to_string(), allowed }) } else { Ok(()) }
}

impl Config {
    /// Parses and validates TOML text (`path` is only for messages).
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax { path: path.into(), msg: e.to_string() };
        let mut c: Config = toml::from_str(text).map_err(syntax)?;
        c.validate()?;
        // Each variant: the base file with its overrides merged in, validated like the base.
        let mut base: toml::Table = toml::from_str(text).map_err(syntax)?;
        base.remove("variants");
        let mut names: Vec<&str> = vec!["base"];
        for v in &c.variants {
            if v.name.is_empty() || names.contains(&v.name.as_str()) || v.name.len() > 32 {
                return Err(ConfigError::Range {
                    key: "variants.name",
                    value: v.name.clone(),
                    allowed: "a unique name of 1 to 32 characters, not \"base\"",
                });
            }
            names.push(&v.name);
            if let Some(k) =
                v.overrides.keys().find(|k| !["strategy", "gate", "risk", "position"].contains(&k.as_str()))
            {
                return Err(ConfigError::Range {
                    key: "variants.overrides",
                    value: format!("{} [{}]", v.name, k),
                    allowed: "overrides of [strategy], [gate], [risk] and [position] only",
                });
            }
            if names.len() > 9 {
                return Err(ConfigError::Range {
                    key: "variants",
                    value: names.len().to_string(),
                    allowed: "at most 8 variants",
                });
            }
        }
        let mut resolved = Vec::new();
        for v in &c.variants {
            let mut t = base.clone();
            merge(&mut t, &v.overrides);
            let merged: Config = t.try_into().map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: format!("{path} [variant {}]", v.name),
                msg: e.to_string(),
            })?;
            merged.validate()?;
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

    /// A stable hash of the effective configuration (FNV-1a over its canonical debug form), stored with each run.
    pub fn hash(&self) -> String {
        let text = format!("{self:?}");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// Reads and validates a file.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::from_toml(&text, path)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.pipeline;
        range("pipeline.event_ring", p.event_ring, 1 << 12, 1 << 24, "between 4096 and 16777216 slots")?;
        range("pipeline.record_ring", p.record_ring, 1 << 8, 1 << 22, "between 256 and 4194304 slots")?;
        range("pipeline.idle_spins", p.idle_spins, 0, 100_000_000, "between 0 and 100000000")?;
        for (key, core) in [
            ("pipeline.compute_core", p.compute_core),
            ("pipeline.net_core", p.net_core),
            ("pipeline.persist_core", p.persist_core),
        ] {
            if let Some(c) = core {
                range(key, c, 0, 4095, "a core index between 0 and 4095")?;
            }
        }
        range(
            "parser.max_frame_bytes",
            self.parser.max_frame_bytes,
            4096,
            64 << 20,
            "between 4096 and 67108864 bytes",
        )?;
        range("parser.max_symbols", self.parser.max_symbols, 1, 1024, "between 1 and 1024")?;
        range("book.max_levels", self.book.max_levels, 20, 100_000, "between 20 and 100000 levels per side")?;
        range("book.buffer_events", self.book.buffer_events, 256, 1 << 22, "between 256 and 4194304 events")?;
        if !(self.bars.range_pct > 0.0 && self.bars.range_pct <= 10.0) {
            return Err(ConfigError::Range {
                key: "bars.range_pct",
                value: self.bars.range_pct.to_string(),
                allowed: "greater than 0 and at most 10 (%)",
            });
        }
        let f = &self.flow;
        range("flow.session_hours", f.session_hours, 1, 24, "1 to 24 hours, dividing 24")?;
        if 24 % f.session_hours != 0 {
            return Err(ConfigError::Range {
                key: "flow.session_hours",
                value: f.session_hours.to_string(),
                allowed: "a divisor of 24",
            });
        }
        range("flow.cvd_window_secs", f.cvd_window_secs, 1, 200, "1 to 200 seconds")?;
        range("flow.imbalance_bars", f.imbalance_bars, 1, 512, "1 to 512 bars")?;
        range("flow.imbalance_cap", f.imbalance_cap, 1.0, 1e6, "1 to 1000000")?;
        range(
            "flow.burst_baseline_bars",
            f.burst_baseline_bars,
            1,
            crate::compute::market::flow::BAR_HISTORY,
            "1 to 512 bars",
        )?;
        range("flow.absorption_delta_ratio", f.absorption_delta_ratio, 0.0, 1e6, "0 to 1000000")?;
        range("flow.large_volume_multiplier", f.large_volume_multiplier, 0.0, 1e6, "0 to 1000000")?;
        range("flow.max_price_delta_ticks", f.max_price_delta_ticks, 0, 1_000_000, "0 to 1000000 ticks")?;
        range("flow.absorption_lookback_bars", f.absorption_lookback_bars, 1, 64, "1 to 64 bars")?;
        let p = &self.profile;
        range("profile.bin_ticks", p.bin_ticks, 1, 1_000_000, "1 to 1000000 ticks")?;
        range("profile.max_bins", p.max_bins, 16, 1 << 20, "16 to 1048576 bins")?;
        range("profile.window_hours", p.window_hours, 1, 168, "1 to 168 hours")?;
        if p.session && 24 % p.window_hours != 0 {
            return Err(ConfigError::Range {
                key: "profile.window_hours",
                value: p.window_hours.to_string(),
                allowed: "a divisor of 24 when session = true",
            });
        }
        range("profile.value_area_pct", p.value_area_pct, 1.0, 100.0, "1 to 100 (%)")?;
        range("profile.vwap_band_sigmas", p.vwap_band_sigmas, 0.0, 10.0, "0 to 10")?;
        range("profile.smooth_bins", p.smooth_bins, 1, 101, "1 to 101 bins")?;
        range("profile.node_prominence_pct", p.node_prominence_pct, 0.0, 100.0, "0 to 100 (%)")?;
        let r = &self.regime;
        range("regime.window_bars", r.window_bars, 2, crate::compute::market::regime::WINDOW_MAX, "2 to 512 bars")?;
        range("regime.trend_enter_pct", r.trend_enter_pct, 0.0, 100.0, "0 to 100 (%)")?;
        range("regime.trend_exit_pct", r.trend_exit_pct, 0.0, r.trend_enter_pct, "0 to trend_enter_pct")?;
        range("regime.high_vol_enter_pctile", r.high_vol_enter_pctile, 0.0, 100.0, "0 to 100")?;
        range(
            "regime.high_vol_exit_pctile",
            r.high_vol_exit_pctile,
            0.0,
            r.high_vol_enter_pctile,
            "0 to high_vol_enter_pctile",
        )?;
        range("regime.min_history", r.min_history, 2, crate::compute::market::regime::SPEED_HISTORY, "2 to 512")?;
        range("regime.confirm_bars", r.confirm_bars, 1, 1000, "1 to 1000 bars")?;
        let st = &self.strategy;
        range("strategy.zone_bins", st.zone_bins, 0.0, 1000.0, "0 to 1000 bins")?;
        for (key, row) in [
            ("strategy.base", &st.base),
            ("strategy.trend_high", &st.trend_high),
            ("strategy.trend_low", &st.trend_low),
            ("strategy.range_high", &st.range_high),
            ("strategy.range_low", &st.range_low),
        ] {
            let ok = row.min_imbalance >= 0.0
                && row.min_cvd_change >= 0.0
                && row.min_bar_range_pct >= 0.0
                && row.min_burst_ratio > 0.0
                && row.cooldown_bars <= 100_000;
            if !ok {
                return Err(ConfigError::Range {
                    key,
                    value: format!("{row:?}"),
                    allowed: "non-negative thresholds, min_burst_ratio > 0, cooldown_bars <= 100000",
                });
            }
        }
        let t = &self.tune;
        range("tune.every_bars", t.every_bars, 1, 100_000, "1 to 100000 bars")?;
        range("tune.lookback_bars", t.lookback_bars, 2, crate::compute::signal::tune::MAX_WINDOW / 2, "2 to 512 bars")?;
        range(
            "tune.lookahead_bars",
            t.lookahead_bars,
            1,
            crate::compute::signal::tune::MAX_WINDOW / 2,
            "1 to 512 bars",
        )?;
        range("tune.stop_pct", t.stop_pct, 0.0, 100.0, "0 to 100 (%)")?;
        range("tune.target_pct", t.target_pct, 0.0, 100.0, "0 to 100 (%)")?;
        range("tune.fee_pct", t.fee_pct, 0.0, 10.0, "0 to 10 (%)")?;
        range("tune.min_trades", t.min_trades, 1, 100_000, "1 to 100000")?;
        if t.candidates.is_empty()
            || t.candidates.len() > crate::compute::signal::tune::MAX_CANDIDATES
            || t.candidates.iter().any(|c| !(*c > 0.0 && c.is_finite()))
        {
            return Err(ConfigError::Range {
                key: "tune.candidates",
                value: format!("{:?}", t.candidates),
                allowed: "1 to 16 positive ratios",
            });
        }
        let g = &self.gate;
        range("gate.max_book_age_ms", g.max_book_age_ms, 1, 3_600_000, "1 to 3600000 ms")?;
        range("gate.max_spread_bps", g.max_spread_bps, 0.0, 10_000.0, "0 to 10000 bps")?;
        range("gate.depth_levels", g.depth_levels, 1, 1000, "1 to 1000 levels")?;
        range("gate.min_depth_imbalance_ratio", g.min_depth_imbalance_ratio, 0.0, 1000.0, "0 to 1000")?;
        range(
            "gate.min_trades_per_hour",
            g.min_trades_per_hour,
            1,
            crate::compute::trading::gate::HOUR_LOOKBACK_MAX,
            "1 to 1024",
        )?;
        range("gate.min_avg_pnl_pct", g.min_avg_pnl_pct, -100.0, 100.0, "-100 to 100 (%)")?;
        range(
            "gate.lookback_trades",
            g.lookback_trades,
            1,
            crate::compute::trading::gate::HOUR_LOOKBACK_MAX,
            "1 to 1024",
        )?;
        range("gate.max_model_slippage_bps", g.max_model_slippage_bps, 0.0, 10_000.0, "0 to 10000 bps")?;
        range("gate.impact_depth_levels", g.impact_depth_levels, 1, 1000, "1 to 1000 levels")?;
        range("gate.impact_weight_bps", g.impact_weight_bps, 0.0, 10_000.0, "0 to 10000 bps")?;
        let k = &self.risk;
        range("risk.initial_balance", k.initial_balance, 1.0, 1e12, "1 to 1e12 USDT")?;
        range("risk.max_risk_per_trade", k.max_risk_per_trade, 0.0, 1.0, "0 to 1 (fraction of balance)")?;
        range("risk.stop_pct", k.stop_pct, 0.001, 50.0, "0.001 to 50 (%)")?;
        range("risk.daily_loss_limit_pct", k.daily_loss_limit_pct, 0.0, 100.0, "0 to 100 (%)")?;
        range("risk.max_concurrent_positions", k.max_concurrent_positions, 0, 1024, "0 to 1024")?;
        range("risk.max_notional_per_position", k.max_notional_per_position, 0.0, 1e12, "0 to 1e12 USDT")?;
        range("risk.max_total_notional", k.max_total_notional, 0.0, 1e12, "0 to 1e12 USDT")?;
        range("risk.leverage", k.leverage, 1.0, 125.0, "1 to 125")?;
        range("risk.consecutive_loss_limit", k.consecutive_loss_limit, 1, 1000, "1 to 1000")?;
        range("risk.symbol_cooldown_minutes", k.symbol_cooldown_minutes, 0, 100_000, "0 to 100000 minutes")?;
        range("risk.confidence_min_scale", k.confidence_min_scale, 0.0, 10.0, "0 to 10")?;
        range(
            "risk.confidence_max_scale",
            k.confidence_max_scale,
            k.confidence_min_scale,
            10.0,
            "confidence_min_scale to 10",
        )?;
        let q = &self.position;
        range("position.tp1_rr", q.tp1_rr, 0.01, 100.0, "0.01 to 100")?;
        range("position.tp1_fraction", q.tp1_fraction, 0.0, 1.0, "0 to 1")?;
        range("position.tp2_rr", q.tp2_rr, q.tp1_rr, 100.0, "tp1_rr to 100")?;
        range("position.soft_stop_drawdown_pct", q.soft_stop_drawdown_pct, 0.0, 100.0, "0 to 100 (%)")?;
        range("position.break_even_trigger_rr", q.break_even_trigger_rr, 0.0, 100.0, "0 to 100")?;
        range("position.profit_lock_ticks", q.profit_lock_ticks, 0, 1_000_000, "0 to 1000000 ticks")?;
        range("position.taker_fee", q.taker_fee, 0.0, 0.01, "0 to 0.01")?;
        range("position.maintenance_margin_rate", q.maintenance_margin_rate, 0.0, 0.5, "0 to 0.5")?;
        range("persist.batch_rows", self.persist.batch_rows, 1, 1_000_000, "1 to 1000000 rows")?;
        range("persist.batch_ms", self.persist.batch_ms, 1, 60_000, "1 to 60000 ms")?;
        range("persist.max_pending_rows", self.persist.max_pending_rows, 1_000, 100_000_000, "1000 to 100000000 rows")?;
        let l = &self.live;
        for (key, url, schemes) in
            [("live.ws_url", &l.ws_url, ["wss://", "ws://"]), ("live.rest_url", &l.rest_url, ["https://", "http://"])]
        {
            if !schemes.iter().any(|p| url.starts_with(p)) {
                return Err(ConfigError::Range {
                    key,
                    value: url.clone(),
                    allowed: "a wss:// or ws:// (https:// or http:// for REST) URL",
                });
            }
        }
        for s in l.symbols.iter().chain(&l.exclude) {
            if SymbolName::new(s.as_bytes()).is_none() {
                return Err(ConfigError::Range {
                    key: "live.symbols",
                    value: s.clone(),
                    allowed: "symbol names such as BTCUSDT",
                });
            }
        }
        range("live.top_n", l.top_n, 1, self.parser.max_symbols, "1 to parser.max_symbols")?;
        range("live.reselect_hour_utc", l.reselect_hour_utc, 0, 23, "0 to 23")?;
        range("live.reselect_every_secs", l.reselect_every_secs, 0, 7 * 86_400, "0 (daily) to 604800 s")?;
        range("live.snapshot_limit", l.snapshot_limit, 5, 1000, "5 to 1000 (Binance's limits)")?;
        range("live.reconnect_min_ms", l.reconnect_min_ms, 10, 60_000, "10 to 60000 ms")?;
        range(
            "live.reconnect_max_ms",
            l.reconnect_max_ms,
            l.reconnect_min_ms,
            600_000,
            "reconnect_min_ms to 600000 ms",
        )?;
        range("live.max_reconnects", l.max_reconnects, 1, 10_000, "1 to 10000")?;
        range("live.reconnect_window_secs", l.reconnect_window_secs, 1, 86_400, "1 to 86400 s")?;
        range("live.rotate_after_secs", l.rotate_after_secs, 1, 86_000, "1 to 86000 s (under Binance's 24 h)")?;
        range("live.control_msgs_per_sec", l.control_msgs_per_sec, 1, 10, "1 to 10 (Binance's limit)")?;
        range("live.ping_samples", l.ping_samples, 1, 100, "1 to 100")?;
        range("live.weight_budget", l.weight_budget, 1, 2400, "1 to 2400")?;
        range("bars.range_ticks", self.bars.range_ticks, 0, 1_000_000_000, "0 (use range_pct) or a tick count")?;
        for (sym, v) in &self.bars.fixed {
            if SymbolName::new(sym.as_bytes()).is_none() {
                return Err(ConfigError::Range { key: "bars.fixed", value: sym.clone(), allowed: "a symbol name" });
            }
            match crate::types::decimal::parse_decimal(v.as_bytes()) {
                Ok(d) if d.mantissa > 0 => {}
                _ => {
                    return Err(ConfigError::Range {
                        key: "bars.fixed",
                        value: format!("{sym} = {v:?}"),
                        allowed: "a positive decimal price distance as a string, e.g. \"50\"",
                    });
                }
            }
        }
        Ok(())
    }

    /// The compute stage's settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            book: BookConfig { max_levels: self.book.max_levels, buffer_events: self.book.buffer_events },
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
        }
    }
}

/// `[live]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
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
    /// Reconnect backoff start, ms.
    pub reconnect_min_ms: u64,
    /// Reconnect backoff cap, ms.
    pub reconnect_max_ms: u64,
    /// Most reconnects per window before exiting with an error.
    pub max_reconnects: usize,
    /// The window, s.
    pub reconnect_window_secs: u64,
    /// Open a successor connection after this long (Binance drops connections at 24 h).
    pub rotate_after_secs: u64,
    /// SUBSCRIBE/UNSUBSCRIBE per second per connection (Binance: at most 10 incoming messages per second).
    pub control_msgs_per_sec: u32,
    /// Latency report interval, s (0: only at exit).
    pub report_interval_secs: u64,
    /// Link health interval, s.
    pub health_interval_secs: u64,
    /// Warn above this clock offset, ms (reference max_time_offset_ms).
    pub max_time_offset_ms: f64,
    /// Warn above this REST RTT, ms (reference max_latency_ms).
    pub max_latency_ms: f64,
    /// Pings per health check (reference ping_samples).
    pub ping_samples: usize,
    /// Pause REST when the used weight per minute reaches this (Binance's limit is 2400).
    pub weight_budget: u64,
    /// UTC hour of the daily reselection (0 = 09:00 KST).
    pub reselect_hour_utc: u32,
    /// Reselect every this many seconds instead of daily (0: daily at `reselect_hour_utc`; tests and operators
    /// who want a faster rotation).
    pub reselect_every_secs: u64,
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
            reconnect_min_ms: 250,
            reconnect_max_ms: 30_000,
            max_reconnects: 30,
            reconnect_window_secs: 600,
            rotate_after_secs: 23 * 3600 + 1800,
            control_msgs_per_sec: 5,
            report_interval_secs: 10,
            health_interval_secs: 300,
            max_time_offset_ms: 500.0,
            max_latency_ms: 15.0,
            ping_samples: 10,
            weight_budget: 2000,
            reselect_hour_utc: 0,
            reselect_every_secs: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}

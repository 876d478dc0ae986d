//! Configuration: one TOML file, every key optional with a documented default (`config/default.toml`), every
//! value validated with an error that names the key and the allowed range. Unknown keys are rejected, so a typo
//! never silently falls back to a default.

use serde::Deserialize;

use crate::bars::BarRange;
use crate::book::BookConfig;
use crate::engine::EngineConfig;
use crate::symbols::SymbolName;

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

/// What the network thread does when the ring to the compute thread has no room for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Drop the frame, count it, and mark its symbol unsynced so the book resyncs from a new snapshot
    /// (live default: the socket is never stalled).
    #[default]
    DropAndResync,
    /// Spin until there is room (replay always uses this: a file can wait, and nothing may be lost).
    Spin,
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
            idle_spins: 20_000,
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
        ParserConfig {
            max_frame_bytes: crate::parse::DEFAULT_MAX_FRAME_BYTES,
            max_symbols: 64,
        }
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
        BookSection {
            max_levels: d.max_levels,
            buffer_events: d.buffer_events,
        }
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
        BarsConfig {
            range_pct: 0.05,
            range_ticks: 0,
            fixed: Default::default(),
        }
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
}

fn range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    v: T,
    lo: T,
    hi: T,
    allowed: &'static str,
) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        Err(ConfigError::Range {
            key,
            value: v.to_string(),
            allowed,
        })
    } else {
        Ok(())
    }
}

impl Config {
    /// Parses and validates TOML text (`path` is only for messages).
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            msg: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and validates a file.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.pipeline;
        range(
            "pipeline.event_ring",
            p.event_ring,
            1 << 12,
            1 << 24,
            "between 4096 and 16777216 slots",
        )?;
        range(
            "pipeline.record_ring",
            p.record_ring,
            1 << 8,
            1 << 22,
            "between 256 and 4194304 slots",
        )?;
        range(
            "pipeline.idle_spins",
            p.idle_spins,
            0,
            100_000_000,
            "between 0 and 100000000",
        )?;
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
        range(
            "parser.max_symbols",
            self.parser.max_symbols,
            1,
            1024,
            "between 1 and 1024",
        )?;
        range(
            "book.max_levels",
            self.book.max_levels,
            20,
            100_000,
            "between 20 and 100000 levels per side",
        )?;
        range(
            "book.buffer_events",
            self.book.buffer_events,
            256,
            1 << 22,
            "between 256 and 4194304 events",
        )?;
        if !(self.bars.range_pct > 0.0 && self.bars.range_pct <= 10.0) {
            return Err(ConfigError::Range {
                key: "bars.range_pct",
                value: self.bars.range_pct.to_string(),
                allowed: "greater than 0 and at most 10 (%)",
            });
        }
        range(
            "bars.range_ticks",
            self.bars.range_ticks,
            0,
            1_000_000_000,
            "0 (use range_pct) or a tick count",
        )?;
        for (sym, v) in &self.bars.fixed {
            if SymbolName::new(sym.as_bytes()).is_none() {
                return Err(ConfigError::Range {
                    key: "bars.fixed",
                    value: sym.clone(),
                    allowed: "a symbol name",
                });
            }
            match crate::decimal::parse_decimal(v.as_bytes()) {
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
            book: BookConfig {
                max_levels: self.book.max_levels,
                buffer_events: self.book.buffer_events,
            },
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
        let e = Config::from_toml("[book]\nmax_levels = 5\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("book.max_levels"), "{e}");
        let e = Config::from_toml("[bars]\nrange_pct = -1.0\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bars.range_pct"), "{e}");
        let e = Config::from_toml("[bars]\nrange_pcx = 1.0\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("range_pcx"), "{e}");
        let e = Config::from_toml("[bars.fixed]\nBTCUSDT = \"abc\"\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bars.fixed"), "{e}");
        let e = Config::from_toml("[pipeline]\nfull_policy = \"maybe\"\n", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("full_policy") || e.contains("maybe"), "{e}");
    }
}

//! The control thread's blocking REST client (ureq over rustls) and symbol selection.
//!
//! - `GET /fapi/v1/exchangeInfo` at start: tick/step sizes, and status, contract type and quote asset for selection.
//! - `GET /fapi/v1/depth?symbol=X&limit=N` on request of the compute thread (a book that needs a snapshot).
//! - `GET /fapi/v1/ticker/24hr`: the top `top_n` symbols by 24 h `quoteVolume` among `PERPETUAL`, `TRADING`,
//!   quote `USDT` symbols, minus the exclude list.
//! - Link health: the round-trip time of `GET /fapi/v1/ping` (median of several samples) and the clock offset
//!   `serverTime − (t_send + t_recv) / 2` from `GET /fapi/v1/time`.
//! - Rate limits: a 429 or 418 answer is honoured by waiting `Retry-After` seconds (bounded) before the next
//!   request, counted; the used weight header (`X-MBX-USED-WEIGHT-1M`) above `weight_budget` makes the client pause
//!   until the next minute.

use std::time::{Duration, Instant};

use crate::report::summary::{Health, RestStats};
use crate::types::symbols::{SymbolName, SymbolSpec};

/// REST errors.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Transport or TLS failure.
    #[error("GET {url}: {msg}")]
    Transport {
        /// URL.
        url: String,
        /// Cause.
        msg: String,
    },
    /// A non-success status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// URL.
        url: String,
        /// Status.
        status: u16,
    },
    /// Every attempt was refused by the rate limiter: the last status (429 too many requests, 418 IP banned) and
    /// the `Retry-After` waited before the last attempt.
    #[error(
        "GET {url}: HTTP {status}{} on all {attempts} attempts (Retry-After {retry_after_s} s honoured between them \
         and before the next request)",
        if *status == 418 { " (IP banned)" } else { "" }
    )]
    RateLimited {
        /// URL.
        url: String,
        /// The last status, 429 or 418.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, s (bounded by [`RETRY_AFTER_MAX_SECS`]).
        retry_after_s: u64,
    },
    /// The body was not what Binance sends.
    #[error("GET {url}: unexpected body: {msg}")]
    Body {
        /// URL.
        url: String,
        /// Cause.
        msg: String,
    },
    /// A CA file problem.
    #[error("ca file {0}: {1}")]
    Ca(String, String),
}

/// A SIGNED request: verb, path, query (without `timestamp`, `recvWindow` and `signature`) and the key.
#[derive(Clone, Copy)]
pub(crate) struct Signed<'a> {
    /// The verb.
    pub verb: Verb,
    /// The path (`/fapi/v1/order`).
    pub path: &'a str,
    /// `k=v&…`, may be empty.
    pub query: &'a str,
    /// Who signs.
    pub creds: &'a crate::ingest::orders::Credentials,
}

/// The HTTP verb of a signed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

/// A blocking REST client.
pub(crate) struct Rest {
    agent: ureq::Agent,
    base: String,
    blocked_until: Option<Instant>,
    weight_budget: u64,
    /// Counters.
    pub stats: RestStats,
}

/// A ureq agent trusting `ca_file` only when given (else webpki's roots), each request bounded by `timeout`, HTTP
/// error statuses returned as answers (Binance's `{code, msg}` bodies are read by the callers).
pub(crate) fn agent(ca_file: Option<&std::path::Path>, timeout: Duration) -> Result<ureq::Agent, RestError> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(p) = ca_file {
        let pem = std::fs::read(p).map_err(|e| RestError::Ca(p.display().to_string(), e.to_string()))?;
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .map_err(|e| RestError::Ca(p.display().to_string(), e.to_string()))?;
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]));
    }
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into())
}

/// Attempts of one GET before a rate-limited answer is an error.
const GET_ATTEMPTS: u32 = 3;

/// Most seconds a Retry-After is honoured for at once.
pub(crate) const RETRY_AFTER_MAX_SECS: u64 = 120;

impl Rest {
    /// A client for `base` (e.g. `https://fapi.binance.com`), trusting `ca_file` only when given, else webpki.
    pub(crate) fn new(base: &str, ca_file: Option<&std::path::Path>, weight_budget: u64) -> Result<Self, RestError> {
        let agent = agent(ca_file, Duration::from_secs(10))?;
        Ok(Rest {
            agent,
            base: base.trim_end_matches('/').to_string(),
            blocked_until: None,
            weight_budget,
            stats: RestStats::default(),
        })
    }

    /// GET `path` (with query), honouring rate limits. Returns the body.
    pub(crate) fn get(&mut self, path: &str) -> Result<Vec<u8>, RestError> {
        let url = format!("{}{path}", self.base);
        let mut limited = (0u16, 0u64);
        for _attempt in 0..GET_ATTEMPTS {
            if let Some(t) = self.blocked_until.take() {
                let now = Instant::now();
                if t > now {
                    std::thread::sleep(t - now);
                }
            }
            self.stats.requests += 1;
            let mut resp = self
                .agent
                .get(&url)
                .call()
                .map_err(|e| RestError::Transport { url: url.clone(), msg: e.to_string() })?;
            let status = resp.status().as_u16();
            if let Some(w) =
                resp.headers().get("x-mbx-used-weight-1m").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
            {
                self.stats.used_weight = w;
                if w >= self.weight_budget {
                    // Pause until the next minute boundary.
                    let ms = 60_000 - (crate::types::clock::wall_ns() / 1_000_000).rem_euclid(60_000) as u64;
                    self.blocked_until = Some(Instant::now() + Duration::from_millis(ms));
                }
            }
            if status == 429 || status == 418 {
                self.stats.rate_limited += 1;
                let secs = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, RETRY_AFTER_MAX_SECS);
                log::warn!("GET {path}: HTTP {status}; waiting {secs} s as told (Retry-After)");
                self.blocked_until = Some(Instant::now() + Duration::from_secs(secs));
                limited = (status, secs);
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(RestError::Status { url, status });
            }
            return resp
                .body_mut()
                .with_config()
                .limit(32 << 20)
                .read_to_vec()
                .map_err(|e| RestError::Transport { url: url.clone(), msg: e.to_string() });
        }
        Err(RestError::RateLimited { url, status: limited.0, attempts: GET_ATTEMPTS, retry_after_s: limited.1 })
    }

    /// A SIGNED request (`TRADE` / `USER_DATA`): `query` plus `recvWindow` and `timestamp` (local clock plus
    /// `offset_ms`), signed with `creds` (HMAC-SHA256 hex or Ed25519 base64, as Binance's `signature`), the key in
    /// `X-MBX-APIKEY`. Returns (HTTP status, body): Binance's `{code, msg}` errors are the caller's to read. Start-up
    /// use only (blocking).
    ///
    /// A `-1021` answer (timestamp outside the window) re-measures the offset and retries once, as the order session
    /// does.
    pub(crate) fn signed(&mut self, call: Signed<'_>, offset_ms: f64) -> Result<(u16, Vec<u8>), RestError> {
        let (status, body) = self.signed_once(&call, offset_ms)?;
        if status == 400 && body.windows(7).any(|w| w == b"\"-1021\"" || w == b":-1021,") {
            let offset_ms = self.health(1)?.offset_ms;
            log::warn!(
                "{}: -1021 (timestamp outside recvWindow): clock offset re-measured ({offset_ms:+.1} ms), retried once",
                call.path
            );
            return self.signed_once(&call, offset_ms);
        }
        Ok((status, body))
    }

    fn signed_once(&mut self, call: &Signed<'_>, offset_ms: f64) -> Result<(u16, Vec<u8>), RestError> {
        let Signed { verb, path, query, creds } = *call;
        let ts = crate::types::clock::wall_ns() / 1_000_000 + offset_ms.round() as i64;
        let sep = if query.is_empty() { "" } else { "&" };
        let payload = format!("{query}{sep}recvWindow=5000&timestamp={ts}");
        let sig = creds.signer.sign(payload.as_bytes());
        let sig: String = sig.as_str().replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
        let url = format!("{}{path}?{payload}&signature={sig}", self.base);
        let shown = format!("{verb:?} {}{path}", self.base).to_uppercase();
        self.stats.requests += 1;
        let key = std::str::from_utf8(creds.api_key.as_bytes()).unwrap_or("");
        let resp = match verb {
            Verb::Post => self.agent.post(&url).header("X-MBX-APIKEY", key).send_empty(),
            Verb::Get => self.agent.get(&url).header("X-MBX-APIKEY", key).call(),
            Verb::Delete => self.agent.delete(&url).header("X-MBX-APIKEY", key).call(),
        };
        let mut resp = resp.map_err(|e| RestError::Transport { url: shown.clone(), msg: e.to_string() })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_vec()
            .map_err(|e| RestError::Transport { url: shown, msg: e.to_string() })?;
        Ok((status, body))
    }

    /// `exchangeInfo`: specs for the parser and the selection facts.
    pub(crate) fn exchange_info(&mut self) -> Result<(Vec<SymbolSpec>, Vec<Listing>), RestError> {
        let body = self.get("/fapi/v1/exchangeInfo")?;
        let url = format!("{}/fapi/v1/exchangeInfo", self.base);
        let specs = crate::ingest::parse::parse_exchange_info(&body)
            .map_err(|e| RestError::Body { url: url.clone(), msg: e.to_string() })?;
        let listings = listings(&body).map_err(|msg| RestError::Body { url, msg })?;
        Ok((specs, listings))
    }

    /// A depth snapshot body for `symbol`.
    pub(crate) fn depth(&mut self, symbol: &SymbolName, limit: u32) -> Result<Vec<u8>, RestError> {
        self.get(&format!("/fapi/v1/depth?symbol={}&limit={limit}", symbol.as_str()))
    }

    /// The `n` listed symbols with the highest 24 h quote volume, less `exclude` (start-up, `rusto symbols` and
    /// the reselection all choose through here).
    pub(crate) fn top(
        &mut self,
        listings: &[Listing],
        n: usize,
        exclude: &[SymbolName],
    ) -> Result<Vec<(SymbolName, f64)>, RestError> {
        Ok(select_top(listings, &self.quote_volumes()?, n, exclude))
    }

    /// 24 h quote volumes.
    pub(crate) fn quote_volumes(&mut self) -> Result<Vec<(SymbolName, f64)>, RestError> {
        let body = self.get("/fapi/v1/ticker/24hr")?;
        let url = format!("{}/fapi/v1/ticker/24hr", self.base);
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RestError::Body { url: url.clone(), msg: e.to_string() })?;
        let arr = v.as_array().ok_or_else(|| RestError::Body { url: url.clone(), msg: "not an array".into() })?;
        let mut out = Vec::with_capacity(arr.len());
        for t in arr {
            let (Some(s), Some(q)) = (t["symbol"].as_str(), t["quoteVolume"].as_str()) else { continue };
            if let (Some(n), Ok(q)) = (SymbolName::new(s.as_bytes()), q.parse::<f64>()) {
                out.push((n, q));
            }
        }
        Ok(out)
    }

    /// Link health: (median RTT of `samples` pings in ms, clock offset in ms from `/time`).
    pub(crate) fn health(&mut self, samples: usize) -> Result<Health, RestError> {
        let mut rtts = Vec::with_capacity(samples.max(1));
        for _ in 0..samples.max(1) {
            let t = Instant::now();
            self.get("/fapi/v1/ping")?;
            rtts.push(t.elapsed().as_secs_f64() * 1e3);
        }
        rtts.sort_by(f64::total_cmp);
        let t_send = crate::types::clock::wall_ns();
        let body = self.get("/fapi/v1/time")?;
        let t_recv = crate::types::clock::wall_ns();
        let url = format!("{}/fapi/v1/time", self.base);
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RestError::Body { url: url.clone(), msg: e.to_string() })?;
        let server = v["serverTime"].as_i64().ok_or(RestError::Body { url, msg: "no serverTime".into() })?;
        let local_mid_ms = (t_send + t_recv) as f64 / 2e6;
        Ok(Health { rtt_ms: rtts[rtts.len() / 2], offset_ms: server as f64 - local_mid_ms })
    }
}

/// Selection facts of one symbol from exchangeInfo.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listing {
    /// Symbol.
    pub name: SymbolName,
    /// `contractType`.
    pub contract_type: String,
    /// `status`.
    pub status: String,
    /// `quoteAsset`.
    pub quote: String,
}

/// Parses the selection facts of an exchangeInfo body.
pub(crate) fn listings(body: &[u8]) -> Result<Vec<Listing>, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let arr = v["symbols"].as_array().ok_or("no symbols array")?;
    Ok(arr
        .iter()
        .filter_map(|s| {
            Some(Listing {
                name: SymbolName::new(s["symbol"].as_str()?.as_bytes())?,
                contract_type: s["contractType"].as_str().unwrap_or("").to_string(),
                status: s["status"].as_str().unwrap_or("").to_string(),
                quote: s["quoteAsset"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect())
}

/// The top `n` USDT perpetuals in trading by 24 h quote volume, minus `exclude`, highest first (ties by name).
pub(crate) fn select_top(
    listings: &[Listing],
    volumes: &[(SymbolName, f64)],
    n: usize,
    exclude: &[SymbolName],
) -> Vec<(SymbolName, f64)> {
    let mut v: Vec<(SymbolName, f64)> = volumes
        .iter()
        .filter(|(s, q)| {
            q.is_finite()
                && !exclude.contains(s)
                && listings.iter().any(|l| {
                    l.name == *s && l.contract_type == "PERPETUAL" && l.status == "TRADING" && l.quote == "USDT"
                })
        })
        .copied()
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_filters_and_ranks() {
        let l = |n: &str, ct: &str, st: &str, q: &str| Listing {
            name: SymbolName::new(n.as_bytes()).unwrap(),
            contract_type: ct.into(),
            status: st.into(),
            quote: q.into(),
        };
        let listings = vec![
            l("BTCUSDT", "PERPETUAL", "TRADING", "USDT"),
            l("ETHUSDT", "PERPETUAL", "TRADING", "USDT"),
            l("BTCUSDT_260327", "CURRENT_QUARTER", "TRADING", "USDT"),
            l("ETHBUSD", "PERPETUAL", "TRADING", "BUSD"),
            l("OLDUSDT", "PERPETUAL", "SETTLING", "USDT"),
            l("XRPUSDT", "PERPETUAL", "TRADING", "USDT"),
        ];
        let s = |n: &str| SymbolName::new(n.as_bytes()).unwrap();
        let vols = vec![
            (s("BTCUSDT"), 9e9),
            (s("ETHUSDT"), 5e9),
            (s("BTCUSDT_260327"), 8e9),
            (s("ETHBUSD"), 7e9),
            (s("OLDUSDT"), 6e9),
            (s("XRPUSDT"), 1e9),
        ];
        let top = select_top(&listings, &vols, 2, &[]);
        assert_eq!(top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), vec!["BTCUSDT", "ETHUSDT"]);
        let top = select_top(&listings, &vols, 10, &[s("ETHUSDT")]);
        assert_eq!(top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), vec!["BTCUSDT", "XRPUSDT"]);
    }

    #[test]
    fn listings_from_the_real_2021_exchange_info() {
        let text = std::fs::read_to_string("tests/data/BINANCE_FUTURES.0.txt").unwrap();
        let line = text.lines().find(|l| l.contains("exchangeInfo")).unwrap();
        let l = listings(&line.as_bytes()[line.find('{').unwrap()..]).unwrap();
        assert_eq!(l.len(), 122);
        let btc = l.iter().find(|x| x.name.as_str() == "BTCUSDT").unwrap();
        assert_eq!(
            (btc.contract_type.as_str(), btc.status.as_str(), btc.quote.as_str()),
            ("PERPETUAL", "TRADING", "USDT")
        );
    }
}

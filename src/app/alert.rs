//! Alerts to Discord (webhook) and Telegram (bot), sent from their own thread, never from the hot path.
//!
//! The compute thread hands over compact `Copy` records (position opened, TP1 filled, stop moved to breakeven,
//! position closed or liquidated with its PnL, daily loss limit hit) through a bounded lock-free queue; the control
//! thread adds start-up (symbols, clock offset, RTT), reselections, feed-down/unsynced warnings and the hourly
//! summary as text. The alert thread formats, rate limits (`max_per_minute`, a token bucket) and posts each message
//! with `retries` retries and backoff; a dead webhook only costs the alert thread, never trading. A full queue or a
//! message that failed every retry is counted (`dropped`, `failed`), never silently lost.
//!
//! Secrets come from the environment only: the Discord webhook URL from `$RUSTO_DISCORD_WEBHOOK`, the Telegram
//! token and chat from `$RUSTO_TELEGRAM_TOKEN` and `$RUSTO_TELEGRAM_CHAT`; they are never logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::types::record::Alert;
use crate::types::record::{ExitReason, FillKind, Record};

/// `[alerts]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// On or off (off also when no destination is configured in the environment).
    pub enabled: bool,
    /// Messages per minute at most.
    pub max_per_minute: u32,
    /// Queue capacity.
    pub queue: usize,
    /// Retries per message.
    pub retries: u32,
    /// Telegram API base (tests point it at a local server).
    pub telegram_api: String,
    /// Send an hourly summary.
    pub hourly_summary: bool,
    /// Alert when a symbol stays unsynced (or the feed silent) this long, s.
    pub feed_down_s: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            enabled: true,
            max_per_minute: 20,
            queue: 256,
            retries: 3,
            telegram_api: "https://api.telegram.org".into(),
            hourly_summary: true,
            feed_down_s: 30,
        }
    }
}

crate::bounds!(AlertConfig as _a {
    enabled: any;
    max_per_minute: [1, 100_000] "1 to 100000 messages";
    queue: [1, 1 << 20] "1 to 1048576 messages";
    retries: [0, 100] "0 to 100";
    telegram_api: any;
    hourly_summary: any;
    feed_down_s: [1, 7 * 86_400] "1 to 604800 s";
});

/// Destinations from the environment.
#[derive(Clone, Default)]
pub(crate) struct Destinations {
    discord: Option<String>,
    telegram: Option<(String, String)>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(f, "Destinations {{ discord: {}, telegram: {} }}", self.discord.is_some(), self.telegram.is_some())
    }
}

impl Destinations {
    /// From `$RUSTO_DISCORD_WEBHOOK`, `$RUSTO_TELEGRAM_TOKEN` and `$RUSTO_TELEGRAM_CHAT`.
    pub(crate) fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Destinations {
            discord: get("RUSTO_DISCORD_WEBHOOK"),
            telegram: get("RUSTO_TELEGRAM_TOKEN").zip(get("RUSTO_TELEGRAM_CHAT")),
        }
    }
    /// Explicit destinations (tests).
    #[cfg(test)]
    pub(crate) fn new(discord: Option<String>, telegram: Option<(String, String)>) -> Self {
        Destinations { discord, telegram }
    }
    /// True when there is somewhere to send.
    pub(crate) fn any(&self) -> bool {
        self.discord.is_some() || self.telegram.is_some()
    }
}

/// Counters of the alert thread.
#[derive(Debug, Default)]
pub(crate) struct AlertStats {
    /// Messages delivered (per destination).
    pub sent: AtomicU64,
    /// Messages that failed every retry.
    pub failed: AtomicU64,
    /// Messages refused because the queue was full.
    pub dropped: AtomicU64,
    /// Messages delayed by the rate limit.
    pub rate_limited: AtomicU64,
}

/// The handle producers use.
#[derive(Clone)]
pub(crate) struct Alerts {
    q: Arc<ArrayQueue<Alert>>,
    /// Counters.
    pub stats: Arc<AlertStats>,
}

impl Alerts {
    /// Queues an alert; a full queue is counted, never blocks.
    pub(crate) fn send(&self, a: Alert) {
        if self.q.push(a).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    /// The queue (for the compute thread's hook).
    pub(crate) fn queue(&self) -> Arc<ArrayQueue<Alert>> {
        self.q.clone()
    }
}

/// Formats a trading record; `None` for records that are not alerts.
pub(crate) fn format(r: &Record) -> Option<String> {
    match r {
        Record::Opened { name, pos, features, .. } => Some(format!(
            "🟢 {name} {} opened: {:.8} @ {:.8} (confidence {:.2}, regime {})",
            pos.side.name(),
            pos.qty as f64 * pos.step_value,
            pos.entry_px * pos.tick_value,
            features.confidence,
            features.regime.name()
        )),
        Record::Fill { kind: FillKind::Exit(ExitReason::Tp1), qty, px, pnl, .. } => {
            Some(format!("🎯 TP1 filled: {qty} steps @ {px:.2} ticks, pnl {pnl:+.2} USDT"))
        }
        Record::StopMoved { name, stop, .. } => {
            Some(format!("🛡 {name} stop moved to breakeven + alpha ({stop:.2} ticks)"))
        }
        Record::Closed { name, pos, .. } => Some(format!(
            "{} {name} {} closed ({}): pnl {:+.2} USDT ({:+.3} %), MFE {:.3} %, MAE {:.3} %",
            if pos.exit_reason == Some(ExitReason::Liquidation) {
                "💥"
            } else if pos.pnl >= 0.0 {
                "✅"
            } else {
                "🔻"
            },
            pos.side.name(),
            pos.exit_reason.map_or("?", |r| r.name()),
            pos.pnl,
            pos.pnl_pct(),
            pos.mfe_pct,
            pos.mae_pct
        )),
        Record::DailyLimitHit { balance, .. } => {
            Some(format!("⛔ daily loss limit hit: new entries stop until 00:00 UTC (balance {balance:.2} USDT)"))
        }
        Record::EntriesHalted { cause, .. } => Some(format!(
            "⛔ real account: new entries halted ({cause:?}); open positions keep their exchange-side stops"
        )),
        _ => None,
    }
}

/// Starts the alert thread. It runs until `stop` is set and its queue is empty.
pub(crate) fn spawn(
    cfg: AlertConfig,
    dest: Destinations,
    stop: Arc<AtomicBool>,
) -> (Alerts, std::thread::JoinHandle<()>) {
    let q = Arc::new(ArrayQueue::new(cfg.queue.max(1)));
    let stats = Arc::new(AlertStats::default());
    let handle = Alerts { q: q.clone(), stats: stats.clone() };
    let t = std::thread::Builder::new()
        .name("rusto-alerts".into())
        .spawn(move || run(cfg, dest, q, stats, stop))
        .unwrap_or_else(|_| std::thread::spawn(|| {}));
    (handle, t)
}

fn post(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> bool {
    match agent.post(url).header("Content-Type", "application/json").send(body.to_string().as_bytes()) {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

fn run(cfg: AlertConfig, dest: Destinations, q: Arc<ArrayQueue<Alert>>, stats: Arc<AlertStats>, stop: Arc<AtomicBool>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let per_min = cfg.max_per_minute.max(1) as f64;
    let mut tokens = per_min;
    let mut last = Instant::now();
    // At shutdown the queue gets at most this long to drain; what is left is counted as failed.
    let mut give_up: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let g = *give_up.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
            if Instant::now() >= g {
                let mut left = 0;
                while q.pop().is_some() {
                    left += 1;
                }
                stats.failed.fetch_add(left, Ordering::Relaxed);
                break;
            }
        }
        let Some(a) = q.pop() else {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let text = match &a {
            Alert::Trade(r) => match format(r) {
                Some(t) => t,
                None => continue,
            },
            Alert::Text(t) => t.clone(),
        };
        // Token bucket: max_per_minute, refilled continuously.
        loop {
            let now = Instant::now();
            tokens = (tokens + now.duration_since(last).as_secs_f64() * per_min / 60.0).min(per_min);
            last = now;
            if tokens >= 1.0 {
                tokens -= 1.0;
                break;
            }
            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut targets: Vec<(String, serde_json::Value)> = Vec::new();
        if let Some(url) = &dest.discord {
            targets.push((url.clone(), serde_json::json!({ "content": text })));
        }
        if let Some((token, chat)) = &dest.telegram {
            targets.push((
                format!("{}/bot{token}/sendMessage", cfg.telegram_api.trim_end_matches('/')),
                serde_json::json!({ "chat_id": chat, "text": text }),
            ));
        }
        for (url, body) in targets {
            let mut ok = false;
            for attempt in 0..=cfg.retries {
                if post(&agent, &url, &body) {
                    ok = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
            }
            if ok {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;

    #[test]
    fn a_halt_of_the_real_account_is_an_alert_naming_its_cause() {
        let r = Record::EntriesHalted { exchange_ms: 1, cause: crate::types::order::HaltCause::RateLimited };
        let text = format(&r).unwrap();
        assert!(text.contains("new entries halted (RateLimited)"), "{text}");
    }

    /// A local HTTP server that records (path, body) of every POST and fails the first `fail_first` requests.
    type Received = Arc<Mutex<Vec<(String, String)>>>;

    fn server(fail_first: usize) -> (String, Received) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            for s in l.incoming().take(50) {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                n += 1;
                let status = if n <= fail_first { "500 Internal Server Error" } else { "200 OK" };
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
                if n > fail_first {
                    g.lock().unwrap().push((path, String::from_utf8(body).unwrap()));
                }
            }
        });
        (addr, got)
    }

    #[test]
    fn posts_to_discord_and_telegram_with_retries() {
        let (url, got) = server(1);
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = AlertConfig { telegram_api: url.clone(), retries: 2, ..AlertConfig::default() };
        let dest = Destinations::new(Some(format!("{url}/api/webhooks/1/x")), Some(("TOKEN".into(), "42".into())));
        assert!(!format!("{dest:?}").contains("TOKEN"), "secrets never printed");
        let (a, t) = spawn(cfg, dest, stop.clone());
        a.send(Alert::Text("rusto started".into()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().any(|(p, b)| p == "/api/webhooks/1/x" && b.contains("\"content\":\"rusto started\"")));
        assert!(got.iter().any(|(p, b)| p == "/botTOKEN/sendMessage" && b.contains("\"chat_id\":\"42\"")));
        assert_eq!(a.stats.sent.load(Ordering::Relaxed), 2);
        assert_eq!(a.stats.failed.load(Ordering::Relaxed), 0, "the first 500 was retried");
    }

    #[test]
    fn a_dead_webhook_is_counted_and_a_full_queue_never_blocks() {
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = AlertConfig { retries: 0, queue: 2, ..AlertConfig::default() };
        // Nothing listens on port 9 of loopback: every post fails fast.
        let (a, t) = spawn(cfg, Destinations::new(Some("http://127.0.0.1:9/hook".into()), None), stop.clone());
        for i in 0..10 {
            a.send(Alert::Text(format!("m{i}")));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let s = &a.stats;
        assert!(s.dropped.load(Ordering::Relaxed) >= 1);
        assert_eq!(s.sent.load(Ordering::Relaxed), 0);
        assert_eq!(s.failed.load(Ordering::Relaxed) + s.dropped.load(Ordering::Relaxed), 10);
    }
}

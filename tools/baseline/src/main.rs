//! `rusto-baseline`: the stack a user would otherwise pick (and the spec's original bot is built on): tokio,
//! tokio-tungstenite over rustls, serde_json into typed structs, a `BTreeMap` book. It connects to the same
//! `rusto-exchange` feed as `rusto live` (the same routes and streams) and measures the same latency as rusto's
//! `tick_trade_bbo` stage: from the monotonic stamp taken right after the socket read that completed a frame to
//! the moment the book (bookTicker) or the trade state (trade/aggTrade) is updated. Depth diffs are applied to the
//! `BTreeMap` levels too (not timed, as in rusto). At the end it prints p50/p90/p99/max and its CPU (getrusage).
//!
//! Not part of the rusto workspace (so CI never compiles tokio); built by `tools/perf/issue11/live.sh`.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, client_async_tls_with_config};

/// A TCP stream that stamps (monotonic ns since `base`) every read that returned data.
struct StampedTcp {
    inner: TcpStream,
    base: Instant,
    last_read_ns: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
}

impl AsyncRead for StampedTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let ns = self.base.elapsed().as_nanos() as u64;
            self.last_read_ns.store(ns, Ordering::Relaxed);
            self.reads.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A combined-stream message: `{"stream": ..., "data": {...}}`.
#[derive(Deserialize)]
struct Combined {
    data: Event,
}

/// The events the bot reads (prices and quantities are strings on Binance).
#[derive(Deserialize)]
#[serde(tag = "e")]
enum Event {
    #[serde(rename = "aggTrade", alias = "trade")]
    Trade {
        #[serde(rename = "p")]
        price: String,
        #[serde(rename = "q")]
        qty: String,
        #[serde(rename = "m")]
        buyer_is_maker: bool,
    },
    #[serde(rename = "bookTicker")]
    BookTicker {
        #[serde(rename = "b")]
        bid: String,
        #[serde(rename = "B")]
        bid_qty: String,
        #[serde(rename = "a")]
        ask: String,
        #[serde(rename = "A")]
        ask_qty: String,
    },
    #[serde(rename = "depthUpdate")]
    Depth {
        #[serde(rename = "b")]
        bids: Vec<[String; 2]>,
        #[serde(rename = "a")]
        asks: Vec<[String; 2]>,
    },
    #[serde(other)]
    Other,
}

/// Price key: price in 1e-8 units (ordered).
fn key(px: &str) -> i64 {
    (px.parse::<f64>().unwrap_or(0.0) * 1e8).round() as i64
}

/// The bot's state: a `BTreeMap` order book, the best bid/ask, a volume profile and the trade flow.
#[derive(Default)]
struct Book {
    bids: BTreeMap<i64, f64>,
    asks: BTreeMap<i64, f64>,
    best: (f64, f64, f64, f64),
    profile: BTreeMap<i64, f64>,
    last_px: f64,
    delta: f64,
}

impl Book {
    /// Applies one event; true for trades and bookTickers (the timed kinds).
    fn apply(&mut self, e: Event) -> bool {
        match e {
            Event::Trade { price, qty, buyer_is_maker } => {
                let q = qty.parse::<f64>().unwrap_or(0.0);
                self.last_px = price.parse().unwrap_or(0.0);
                *self.profile.entry(key(&price)).or_insert(0.0) += q;
                self.delta += if buyer_is_maker { -q } else { q };
                true
            }
            Event::BookTicker { bid, bid_qty, ask, ask_qty } => {
                let p = |s: &str| s.parse::<f64>().unwrap_or(0.0);
                self.best = (p(&bid), p(&bid_qty), p(&ask), p(&ask_qty));
                true
            }
            Event::Depth { bids, asks } => {
                for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
                    for [px, qty] in levels {
                        let q = qty.parse::<f64>().unwrap_or(0.0);
                        if q == 0.0 {
                            side.remove(&key(&px));
                        } else {
                            side.insert(key(&px), q);
                        }
                    }
                }
                false
            }
            Event::Other => false,
        }
    }
}

struct Args {
    ws: String,
    ca: Option<String>,
    symbol: String,
    trade_stream: String,
    depth_stream: String,
    duration: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        ws: String::new(),
        ca: None,
        symbol: "btcusdt".into(),
        trade_stream: "aggTrade".into(),
        depth_stream: "depth@0ms".into(),
        duration: Duration::from_secs(30),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--ws" => a.ws = v()?,
            "--ca" => a.ca = Some(v()?),
            "--symbol" => a.symbol = v()?.to_ascii_lowercase(),
            "--trade-stream" => a.trade_stream = v()?,
            "--depth-stream" => a.depth_stream = v()?,
            "--duration-secs" => a.duration = Duration::from_secs_f64(v()?.parse()?),
            _ => bail!("unknown argument {k} (--ws URL --ca PEM --symbol S --trade-stream --depth-stream --duration-secs)"),
        }
    }
    if a.ws.is_empty() {
        bail!("--ws wss://host:port is required");
    }
    Ok(a)
}

fn tls(ca: Option<&str>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(p) = ca {
        for c in rustls::pki_types::CertificateDer::pem_file_iter(p)? {
            roots.add(c?)?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<StampedTcp>>;

/// Connects `url` with its reads stamped into `last_read_ns`.
async fn connect(url: &str, tls: &Arc<rustls::ClientConfig>, base: Instant, stamp: &Stamp) -> anyhow::Result<Ws> {
    let hostport = url.split("://").nth(1).and_then(|r| r.split('/').next()).context("bad url")?;
    let tcp = TcpStream::connect(hostport.replace("localhost", "127.0.0.1")).await?;
    tcp.set_nodelay(true)?;
    let s = StampedTcp { inner: tcp, base, last_read_ns: stamp.0.clone(), reads: stamp.1.clone() };
    let connector = url.starts_with("wss://").then(|| Connector::Rustls(tls.clone()));
    let (ws, _) = client_async_tls_with_config(url, s, None, connector).await?;
    Ok(ws)
}

/// The last read's stamp and the read count of one connection.
#[derive(Clone, Default)]
struct Stamp(Arc<AtomicU64>, Arc<AtomicU64>);

fn cpu_s() -> f64 {
    // SAFETY: getrusage writes a plain struct we own; RUSAGE_SELF is always valid.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let tls = tls(a.ca.as_deref())?;
    let base = Instant::now();
    let (ms, ps) = (Stamp::default(), Stamp::default());
    let s = &a.symbol;
    let market = format!("{}/market/stream?streams={s}@{}", a.ws, a.trade_stream);
    let public = format!("{}/public/stream?streams={s}@{}/{s}@bookTicker", a.ws, a.depth_stream);
    let mut m = connect(&market, &tls, base, &ms).await.context("market connection")?;
    let mut p = connect(&public, &tls, base, &ps).await.context("public connection")?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut book = Book::default();
    let (mut frames, mut bad) = (0u64, 0u64);
    let (cpu0, wall0) = (cpu_s(), Instant::now());
    let deadline = tokio::time::sleep(a.duration);
    tokio::pin!(deadline);
    loop {
        let (msg, stamp, ws) = tokio::select! {
            _ = &mut deadline => break,
            x = m.next() => (x, &ms, &mut m),
            x = p.next() => (x, &ps, &mut p),
        };
        let Some(msg) = msg else { bail!("connection closed by the exchange") };
        match msg? {
            Message::Text(t) => {
                let read_ns = stamp.0.load(Ordering::Relaxed);
                frames += 1;
                match serde_json::from_str::<Combined>(t.as_str()) {
                    Ok(c) => {
                        if book.apply(c.data) {
                            let done = base.elapsed().as_nanos() as u64;
                            hist.saturating_record(done.saturating_sub(read_ns).max(1));
                        }
                    }
                    Err(_) => bad += 1,
                }
            }
            Message::Ping(d) => ws.send(Message::Pong(d)).await?,
            _ => {}
        }
    }
    let (cpu, wall) = (cpu_s() - cpu0, wall0.elapsed().as_secs_f64());
    let reads = ms.1.load(Ordering::Relaxed) + ps.1.load(Ordering::Relaxed);
    let q = |x: f64| hist.value_at_quantile(x);
    println!(
        "{{\"tick_trade_bbo\":{{\"count\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}},\"frames\":{frames},\
         \"bad_frames\":{bad},\"socket_reads\":{reads},\"cpu_pct\":{:.1},\"wall_s\":{wall:.1},\"book_levels\":{},\
         \"last_px\":{}}}",
        hist.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        hist.max(),
        100.0 * cpu / wall.max(1e-9),
        book.bids.len() + book.asks.len(),
        book.last_px
    );
    Ok(())
}

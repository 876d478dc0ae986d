//! The metrics endpoint end to end: `rusto live` against the local exchange (`tools/exchange`, plain websocket and
//! HTTP, replaying the bundled real recording) with `[metrics] listen` on, scraped over TCP twice: the families
//! and their types are there, the counters move, only `GET /metrics` is served. When `promtool` is on the PATH the
//! page also passes `promtool check metrics` (otherwise a notice is printed and that check is skipped).
//!
//! `cargo test --workspace` builds `rusto-exchange` next to this test binary.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exchange_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("rusto-exchange");
    assert!(p.exists(), "{} missing: run the workspace tests (cargo test --workspace), which build it", p.display());
    p
}

/// The exchange replaying the bundled recording at 100x, looped, plain: (process, port).
fn start_exchange(dir: &Path) -> (Kill, u16) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (a, b) = (root.join("data/sample/btcusdt_20230404.dat.gz"), root.join("data/sample/btcusdt_20230405.dat.gz"));
    let mut child = Command::new(exchange_bin())
        .args(["--listen", "127.0.0.1:0", "--duration-secs", "30", "--plain", "--stats-out"])
        .arg(dir.join("stats.json"))
        .args(["--speed", "100", "--loops", "0", "--recording"])
        .args([&a, &b])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let port = first.trim().rsplit(':').next().unwrap().parse().unwrap_or_else(|_| panic!("bad first line {first:?}"));
    (Kill(child), port)
}

/// A port free right now on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `request` to the endpoint and returns (status line, body); `None` while nothing listens.
fn http(port: u16, request: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

fn scrape(port: u16) -> String {
    let (status, body) = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("scrape");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// The value of the first sample whose line starts with `prefix` (name and labels).
fn value(page: &str, prefix: &str) -> f64 {
    let line = page.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{page}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn promtool(page: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        println!("notice: promtool not found on PATH: `promtool check metrics` skipped");
        return;
    };
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics: {said}");
}

#[test]
fn a_live_run_serves_prometheus_metrics_whose_counters_move() {
    let dir = std::env::temp_dir().join(format!("rusto-metrics-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_ex, port) = start_exchange(&dir);
    let mport = free_port();
    let cfg = dir.join("rusto.toml");
    std::fs::write(
        &cfg,
        format!(
            "[live]\nws_url = \"ws://localhost:{port}\"\nrest_url = \"http://localhost:{port}\"\n\
             symbols = [\"BTCUSDT\"]\ntrade_stream = \"trade\"\nreport_interval_s = 0\nreconnect_ms_min = 50\n\
             reconnect_ms_max = 100\ntime_offset_ms_max = 1e9\n[metrics]\nlisten = \"127.0.0.1:{mport}\"\n\
             publish_interval_ms = 200\n"
        ),
    )
    .unwrap();
    let rusto = Command::new(env!("CARGO_BIN_EXE_rusto"))
        .arg("--config")
        .arg(&cfg)
        .args(["live", "--json", "--duration-secs", "12", "--db"])
        .arg(dir.join("live.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rusto = Kill(rusto);
    // Wait until the compute thread's copy shows the symbol (frames flowing, the symbol defined).
    let start = Instant::now();
    let first = loop {
        assert!(start.elapsed() < Duration::from_secs(10), "no metrics page with frames within 10 s");
        if let Some((_, body)) = http(mport, "GET /metrics HTTP/1.1\r\n\r\n")
            && body.contains("rusto_events_total ")
            && body.contains("rusto_frames_total ")
            && body.contains("rusto_trades_total{symbol=\"BTCUSDT\"} ")
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let second = scrape(mport);
    for (family, kind) in [
        ("rusto_frames_total", "counter"),
        ("rusto_events_total", "counter"),
        ("rusto_malformed_frames_total", "counter"),
        ("rusto_ring_full_total", "counter"),
        ("rusto_frames_dropped_total", "counter"),
        ("rusto_ws_disconnects_total", "counter"),
        ("rusto_book_gaps_total", "counter"),
        ("rusto_book_resyncs_total", "counter"),
        ("rusto_entry_rejects_total", "counter"),
        ("rusto_positions_opened_total", "counter"),
        ("rusto_realised_pnl_quote", "gauge"),
        ("rusto_book_synced", "gauge"),
        ("rusto_book_age_seconds", "gauge"),
        ("rusto_clock_offset_seconds", "gauge"),
        ("rusto_rest_rtt_seconds", "gauge"),
        ("rusto_db_write_errors_total", "counter"),
        ("rusto_stage_latency_seconds", "summary"),
        ("rusto_net_stage_latency_seconds", "summary"),
    ] {
        assert_eq!(second.matches(&format!("# TYPE {family} ")).count(), 1, "{family} typed once");
        assert!(second.contains(&format!("# TYPE {family} {kind}\n")), "{family} is a {kind}:\n{second}");
    }
    for counter in ["rusto_frames_total ", "rusto_events_total ", "rusto_trades_total{symbol=\"BTCUSDT\"} "] {
        assert!(value(&second, counter) > value(&first, counter), "{counter} did not move");
    }
    assert!(second.contains("rusto_stage_latency_seconds{stage=\"tick_to_decision\",quantile=\"0.99\"} "));
    assert!(value(&second, "rusto_stage_latency_seconds_count{stage=\"compute\"} ") > 0.0);
    assert_eq!(value(&second, "rusto_db_write_errors_total "), 0.0);
    promtool(&second);
    // Only GET /metrics.
    assert_eq!(http(mport, "GET / HTTP/1.1\r\n\r\n").unwrap().0, "HTTP/1.1 404 Not Found");
    assert_eq!(http(mport, "POST /metrics HTTP/1.1\r\n\r\n").unwrap().0, "HTTP/1.1 405 Method Not Allowed");
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    assert_eq!(http(mport, &huge).map(|r| r.0).as_deref(), Some("HTTP/1.1 431 Request Header Fields Too Large"));
    let status = rusto.0.wait().unwrap();
    let mut err = String::new();
    rusto.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "rusto live failed: {err}");
    assert!(err.contains("metrics: ") && err.contains(" scrapes"), "{err}");
}

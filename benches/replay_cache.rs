//! The event cache reader alone: the mapped cache of the bundled sample → the recording thread's cache loop
//! (copy out of the map, stamp, publish) → the SPSC ring → a consumer that only counts. Prints events/s for each
//! pass and the median, so the reader's own ceiling can be compared with the full replay (`rusto replay --cache`).
//!
//! `cargo bench --bench replay_cache` (from the repo root; writes the cache to a temporary folder first).

use std::time::Instant;

use rusto::app::{Config, ReplayOptions, open_replay_cache, run_replay_cached};
use rusto::handoff::{FullPolicy, Publisher, ring};
use rusto::recording::{Speed, run_cache};
use rusto::types::MarketEvent;

const PASSES: usize = 7;

fn main() {
    let dir = std::env::temp_dir().join(format!("rusto-bench-cache-{}", std::process::id()));
    let opts = ReplayOptions {
        files: vec!["data/sample/btcusdt_20230404.dat.gz".into(), "data/sample/btcusdt_20230405.dat.gz".into()],
        speed: Speed::Asap,
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: None,
        window: Default::default(),
    };
    let cfg = Config::default();
    run_replay_cached(&cfg, &opts, Some(&dir)).expect("the replay that writes the cache");
    let mut rates = Vec::with_capacity(PASSES);
    for pass in 0..PASSES {
        let cache = open_replay_cache(&cfg, &opts, &dir).expect("the cache just written");
        let n = cache.n_events() as u64;
        let (tx, mut rx) = ring::<MarketEvent>(cfg.pipeline.event_ring);
        let publisher = Publisher::new(tx, FullPolicy::Spin, cfg.parser.max_symbols);
        let consumer = std::thread::spawn(move || {
            let mut seen = 0u64;
            loop {
                let k = rx.pop_batch(256, |e| seen += u64::from(e.kind != rusto::types::EventKind::None));
                if k == 0 {
                    if rx.is_abandoned() && rx.available() == 0 {
                        return seen;
                    }
                    std::hint::spin_loop();
                }
            }
        });
        let t0 = Instant::now();
        let (feed, _) = run_cache(&cache, Speed::Asap, publisher);
        let seen = consumer.join().expect("the consumer thread");
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!((feed.events, seen), (n, n), "every event reached the consumer");
        let rate = n as f64 / secs;
        println!("pass {pass}: {n} events in {:.2} ms: {:.2} M events/s", secs * 1e3, rate / 1e6);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median of {PASSES}: {:.2} M events/s", rates[PASSES / 2] / 1e6);
    let _ = std::fs::remove_dir_all(&dir);
}

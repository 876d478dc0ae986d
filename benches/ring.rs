//! Cross-thread SPSC queue benchmark for the engine's event type, [`MarketEvent`] (64 bytes, `Copy`).
//!
//! Compared in the same run, all with capacity [`CAP`]:
//! - `rusto`: [`rusto::handoff::ring`] with `push` / `pop`, and with the batch APIs the engine uses
//!   (`push_slice` of [`SLICE`]-event slices, `pop_batch` of up to [`POP_MAX`]);
//! - `crossbeam`: `crossbeam_queue::ArrayQueue` (`push` / `pop`; it has no batch API);
//! - `rtrb`: `rtrb::RingBuffer` with `push` / `pop`, and with its slice APIs (`push_entire_slice`, `read_chunk`).
//!
//! Throughput (`ring_throughput/*`): a producer thread pushes `10 M × iters` events (spinning while full), a
//! consumer thread pops and checks every one of them (order and payload); the time is the consumer's, from a
//! shared start barrier to the last event. `Throughput::Elements(10 M)`, so criterion prints events/s.
//!
//! One-way latency: ping-pong over two queues between two threads, one-way = round trip / 2.
//! - `ring_latency/*` (criterion): mean one-way time per round trip, per sample;
//! - a per-round-trip distribution printed before the criterion groups (`one-way latency …` lines): every round
//!   trip timed with `Instant::now()` (its own cost is printed too and is included once per round trip, i.e. half
//!   of it in the one-way figure), variants interleaved in rounds so that noise hits them alike.
//!
//! Threads are pinned to cores 0 and 1 with `core_affinity` when the machine has 2 or more cores.
//! Run: `CARGO_TARGET_DIR=/work/target-bench cargo bench --bench ring`.

use std::hint::{black_box, spin_loop};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;

use rusto::types::{EventKind, MarketEvent};

/// Queue capacity (all three).
const CAP: usize = 4096;
/// Events per criterion iteration of the throughput benches.
const N: u64 = 10_000_000;
/// Slice length for the batch producers (a typical diff-depth frame: a header and 6-7 level events).
const SLICE: usize = 8;
/// Most events one `pop_batch` / `read_chunk` takes.
const POP_MAX: usize = 256;
/// Round trips per variant and round in the latency distribution pass.
const RTT_PER_ROUND: usize = 100_000;
/// Rounds of the latency distribution pass.
const RTT_ROUNDS: usize = 10;

// ---------------------------------------------------------------------------------------------------------------
// Threads

/// Pins the current thread to core `i` when there are at least two cores. Returns whether it did.
fn pin(i: usize) -> bool {
    match core_affinity::get_core_ids() {
        Some(ids) if ids.len() >= 2 => core_affinity::set_for_current(ids[i % ids.len()]),
        _ => false,
    }
}

/// Runs `producer` on core 0 and `consumer` on core 1, released together by a barrier; returns the consumer's time.
fn cross_thread<P, C>(producer: P, consumer: C) -> Duration
where
    P: FnOnce() + Send + 'static,
    C: FnOnce() + Send + 'static,
{
    let start = Arc::new(Barrier::new(2));
    let start_p = start.clone();
    let p = thread::spawn(move || {
        pin(0);
        start_p.wait();
        producer();
    });
    let c = thread::spawn(move || {
        pin(1);
        start.wait();
        let t = Instant::now();
        consumer();
        t.elapsed()
    });
    p.join().expect("producer");
    c.join().expect("consumer")
}

#[inline]
fn event(i: u64) -> MarketEvent {
    let mut e = MarketEvent::new(EventKind::Trade, 1, i as i64, i as i64, i);
    e.p = [i as i64, 1, i as i64, 1];
    e
}

/// Consumer-side check state: every event must carry the next sequence number.
struct Check {
    next: u64,
    bad: u64,
}

impl Check {
    #[inline]
    fn see(&mut self, e: &MarketEvent) {
        self.bad |= (e.p[0] as u64) ^ self.next;
        self.next += 1;
    }
    fn done(self, n: u64) {
        assert_eq!(self.next, n, "event count");
        assert_eq!(self.bad, 0, "events out of order or corrupted");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Throughput

fn tp_rusto(n: u64) -> Duration {
    let (mut p, mut c) = rusto::handoff::ring::<MarketEvent>(CAP);
    cross_thread(
        move || {
            for i in 0..n {
                let mut e = event(i);
                while let Err(back) = p.push(e) {
                    e = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut ck = Check { next: 0, bad: 0 };
            while ck.next < n {
                match c.pop() {
                    Some(e) => ck.see(&e),
                    None => spin_loop(),
                }
            }
            ck.done(n);
        },
    )
}

fn tp_rusto_batch(n: u64) -> Duration {
    assert_eq!(n % SLICE as u64, 0);
    let (mut p, mut c) = rusto::handoff::ring::<MarketEvent>(CAP);
    cross_thread(
        move || {
            let mut buf = [MarketEvent::default(); SLICE];
            let mut i = 0;
            while i < n {
                for (k, slot) in buf.iter_mut().enumerate() {
                    *slot = event(i + k as u64);
                }
                while p.push_slice(&buf).is_err() {
                    spin_loop();
                }
                i += SLICE as u64;
            }
        },
        move || {
            let mut ck = Check { next: 0, bad: 0 };
            while ck.next < n {
                if c.pop_batch(POP_MAX, |e| ck.see(&e)) == 0 {
                    spin_loop();
                }
            }
            ck.done(n);
        },
    )
}

fn tp_crossbeam(n: u64) -> Duration {
    let q = Arc::new(ArrayQueue::<MarketEvent>::new(CAP));
    let qc = q.clone();
    cross_thread(
        move || {
            for i in 0..n {
                let mut e = event(i);
                while let Err(back) = q.push(e) {
                    e = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut ck = Check { next: 0, bad: 0 };
            while ck.next < n {
                match qc.pop() {
                    Some(e) => ck.see(&e),
                    None => spin_loop(),
                }
            }
            ck.done(n);
        },
    )
}

fn tp_rtrb(n: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<MarketEvent>::new(CAP);
    cross_thread(
        move || {
            for i in 0..n {
                let mut e = event(i);
                while let Err(rtrb::PushError::Full(back)) = p.push(e) {
                    e = back;
                    spin_loop();
                }
            }
        },
        move || {
            let mut ck = Check { next: 0, bad: 0 };
            while ck.next < n {
                match c.pop() {
                    Ok(e) => ck.see(&e),
                    Err(_) => spin_loop(),
                }
            }
            ck.done(n);
        },
    )
}

fn tp_rtrb_batch(n: u64) -> Duration {
    assert_eq!(n % SLICE as u64, 0);
    let (mut p, mut c) = rtrb::RingBuffer::<MarketEvent>::new(CAP);
    cross_thread(
        move || {
            let mut buf = [MarketEvent::default(); SLICE];
            let mut i = 0;
            while i < n {
                for (k, slot) in buf.iter_mut().enumerate() {
                    *slot = event(i + k as u64);
                }
                while p.push_entire_slice(&buf).is_err() {
                    spin_loop();
                }
                i += SLICE as u64;
            }
        },
        move || {
            let mut ck = Check { next: 0, bad: 0 };
            while ck.next < n {
                let k = c.slots().min(POP_MAX);
                if k == 0 {
                    spin_loop();
                    continue;
                }
                let chunk = c.read_chunk(k).expect("slots are ready");
                let (a, b) = chunk.as_slices();
                for e in a.iter().chain(b) {
                    ck.see(e);
                }
                chunk.commit_all();
            }
            ck.done(n);
        },
    )
}

/// A throughput run: pushes and pops `n` events across two threads, returns the consumer's time.
type ThroughputRun = fn(u64) -> Duration;

/// Rounds of the paired throughput pass.
const TP_ROUNDS: usize = 11;
/// Events per variant and round of the paired throughput pass.
const TP_EVENTS: u64 = 2_000_000;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A paired pass before the criterion group: each round runs every variant back to back on [`TP_EVENTS`] events and
/// takes the ratios within the round, so load from other processes on a shared machine hits both sides of a ratio
/// alike. Prints the median events/s per variant and the median ratios.
fn throughput_paired(cases: &[(&str, ThroughputRun)]) {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut vs_cb: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut vs_rtrb: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..TP_ROUNDS {
        let r: Vec<f64> = cases.iter().map(|(_, f)| TP_EVENTS as f64 / f(TP_EVENTS).as_secs_f64()).collect();
        for (k, &x) in r.iter().enumerate() {
            rates[k].push(x);
            vs_cb[k].push(x / r[2]);
            vs_rtrb[k].push(x / r[3]);
        }
    }
    println!(
        "paired throughput: {TP_ROUNDS} rounds x {TP_EVENTS} events per queue, capacity {CAP}, pinned: {}",
        core_affinity::get_core_ids().is_some_and(|c| c.len() >= 2)
    );
    for (k, (name, _)) in cases.iter().enumerate() {
        let (lo, hi) =
            (rates[k].iter().copied().fold(f64::INFINITY, f64::min), rates[k].iter().copied().fold(0.0, f64::max));
        println!(
            "paired throughput {name:<28} median {:>7.1} M events/s (min {:>6.1}, max {:>6.1}); \
             vs crossbeam {:>5.2}x, vs rtrb_push_pop {:>5.2}x",
            median(&mut rates[k]) / 1e6,
            lo / 1e6,
            hi / 1e6,
            median(&mut vs_cb[k]),
            median(&mut vs_rtrb[k]),
        );
    }
}

fn throughput(c: &mut Criterion) {
    // The paired pass takes its ratios against entries 2 (crossbeam) and 3 (rtrb push/pop).
    let cases: [(&str, ThroughputRun); 5] = [
        ("rusto_push_pop", tp_rusto),
        ("rusto_push_slice_pop_batch", tp_rusto_batch),
        ("crossbeam_array_queue", tp_crossbeam),
        ("rtrb_push_pop", tp_rtrb),
        ("rtrb_slice_chunk", tp_rtrb_batch),
    ];
    throughput_paired(&cases);
    let mut g = c.benchmark_group("ring_throughput");
    g.throughput(Throughput::Elements(N));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    for (name, f) in cases {
        g.bench_function(name, |b| b.iter_custom(|iters| f(iters * N)));
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Latency (ping-pong)

/// One side of a ping-pong link: send on one queue, receive on the other.
trait Link: Send + 'static {
    fn send(&mut self, e: MarketEvent) -> bool;
    fn recv(&mut self) -> Option<MarketEvent>;
}

struct RustoLink(rusto::handoff::Producer<MarketEvent>, rusto::handoff::Consumer<MarketEvent>);
impl Link for RustoLink {
    #[inline]
    fn send(&mut self, e: MarketEvent) -> bool {
        self.0.push(e).is_ok()
    }
    #[inline]
    fn recv(&mut self) -> Option<MarketEvent> {
        self.1.pop()
    }
}

struct CrossbeamLink(Arc<ArrayQueue<MarketEvent>>, Arc<ArrayQueue<MarketEvent>>);
impl Link for CrossbeamLink {
    #[inline]
    fn send(&mut self, e: MarketEvent) -> bool {
        self.0.push(e).is_ok()
    }
    #[inline]
    fn recv(&mut self) -> Option<MarketEvent> {
        self.1.pop()
    }
}

struct RtrbLink(rtrb::Producer<MarketEvent>, rtrb::Consumer<MarketEvent>);
impl Link for RtrbLink {
    #[inline]
    fn send(&mut self, e: MarketEvent) -> bool {
        self.0.push(e).is_ok()
    }
    #[inline]
    fn recv(&mut self) -> Option<MarketEvent> {
        self.1.pop().ok()
    }
}

fn rusto_links() -> (RustoLink, RustoLink) {
    let (ap, ac) = rusto::handoff::ring(CAP);
    let (bp, bc) = rusto::handoff::ring(CAP);
    (RustoLink(ap, bc), RustoLink(bp, ac))
}

fn crossbeam_links() -> (CrossbeamLink, CrossbeamLink) {
    let a = Arc::new(ArrayQueue::new(CAP));
    let b = Arc::new(ArrayQueue::new(CAP));
    (CrossbeamLink(a.clone(), b.clone()), CrossbeamLink(b, a))
}

fn rtrb_links() -> (RtrbLink, RtrbLink) {
    let (ap, ac) = rtrb::RingBuffer::new(CAP);
    let (bp, bc) = rtrb::RingBuffer::new(CAP);
    (RtrbLink(ap, bc), RtrbLink(bp, ac))
}

/// Stop marker for the echo thread.
const STOP: i64 = -1;

#[inline]
fn round_trip<L: Link>(l: &mut L, i: u64) {
    let e = event(i);
    while !l.send(e) {
        spin_loop();
    }
    loop {
        if let Some(r) = l.recv() {
            debug_assert_eq!(r.p[0], i as i64);
            black_box(r);
            return;
        }
        spin_loop();
    }
}

/// Runs `pinger(link)` on core 0 against an echo thread on core 1 and returns its result.
fn ping_pong<L: Link, R: Send + 'static>(
    (mut ping, mut echo): (L, L),
    pinger: impl FnOnce(&mut L) -> R + Send + 'static,
) -> R {
    let echo_t = thread::spawn(move || {
        pin(1);
        loop {
            match echo.recv() {
                Some(e) => {
                    let stop = e.p[0] == STOP;
                    while !echo.send(e) {
                        spin_loop();
                    }
                    if stop {
                        return;
                    }
                }
                None => spin_loop(),
            }
        }
    });
    let ping_t = thread::spawn(move || {
        pin(0);
        // Warm up: both threads spinning, caches and branch predictors hot.
        for i in 0..10_000 {
            round_trip(&mut ping, i);
        }
        let r = pinger(&mut ping);
        let mut stop = MarketEvent::default();
        stop.p[0] = STOP;
        while !ping.send(stop) {
            spin_loop();
        }
        while ping.recv().is_none() {
            spin_loop();
        }
        r
    });
    let r = ping_t.join().expect("pinger");
    echo_t.join().expect("echo");
    r
}

/// `iters` round trips; returns the total time divided by two (so criterion reports one-way time per iteration).
fn one_way_total<L: Link>(links: (L, L), iters: u64) -> Duration {
    ping_pong(links, move |l| {
        let t = Instant::now();
        for i in 0..iters {
            round_trip(l, i);
        }
        t.elapsed() / 2
    })
}

/// Every round trip timed on its own (ns, one `Instant::now()` per round trip).
fn round_trips<L: Link>(links: (L, L), n: usize) -> Vec<u64> {
    ping_pong(links, move |l| {
        let mut v = Vec::with_capacity(n);
        let mut t0 = Instant::now();
        for i in 0..n as u64 {
            round_trip(l, i);
            let t1 = Instant::now();
            v.push((t1 - t0).as_nanos() as u64);
            t0 = t1;
        }
        v
    })
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The per-round-trip one-way latency distribution, printed (not a criterion bench).
fn latency_distribution() {
    let mut now_cost: Vec<u64> = Vec::with_capacity(100_000);
    let mut t0 = Instant::now();
    for _ in 0..100_000 {
        let t1 = Instant::now();
        now_cost.push((t1 - t0).as_nanos() as u64);
        t0 = t1;
    }
    now_cost.sort_unstable();
    let mut all: [Vec<u64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..RTT_ROUNDS {
        all[0].extend(round_trips(rusto_links(), RTT_PER_ROUND));
        all[1].extend(round_trips(crossbeam_links(), RTT_PER_ROUND));
        all[2].extend(round_trips(rtrb_links(), RTT_PER_ROUND));
    }
    println!(
        "one-way latency = round trip / 2, {} round trips per queue in {RTT_ROUNDS} interleaved rounds, \
         capacity {CAP}, pinned: {}; Instant::now() back-to-back p50 {} ns (included once per round trip)",
        RTT_PER_ROUND * RTT_ROUNDS,
        core_affinity::get_core_ids().is_some_and(|c| c.len() >= 2),
        pct(&now_cost, 0.5)
    );
    for (name, v) in ["rusto", "crossbeam_array_queue", "rtrb"].iter().zip(all.iter_mut()) {
        v.sort_unstable();
        let ow = |p: f64| pct(v, p) as f64 / 2.0;
        println!(
            "one-way latency {name:<22} p50 {:>7.1} ns  p90 {:>7.1} ns  p99 {:>7.1} ns  p99.9 {:>8.1} ns  \
             max {:>9.1} ns",
            ow(0.5),
            ow(0.9),
            ow(0.99),
            ow(0.999),
            *v.last().unwrap_or(&0) as f64 / 2.0
        );
    }
}

fn latency(c: &mut Criterion) {
    latency_distribution();
    let mut g = c.benchmark_group("ring_latency");
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("rusto_one_way", |b| b.iter_custom(|iters| one_way_total(rusto_links(), iters)));
    g.bench_function("crossbeam_array_queue_one_way", |b| {
        b.iter_custom(|iters| one_way_total(crossbeam_links(), iters))
    });
    g.bench_function("rtrb_one_way", |b| b.iter_custom(|iters| one_way_total(rtrb_links(), iters)));
    g.finish();
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);

//! The REST fallback's worker thread (issue 12): runs the signed order requests the network thread's order session
//! queues while the WebSocket API is down (`ingest::orders::rest_lane`), one at a time, blocking, over ureq with
//! the `[live]` REST base and CA, and hands each answer back, ringing the network thread's doorbell.
//!
//! Contract: the only thread that blocks on these requests; it parks while its queue is empty and ends when the
//! session's lane is dropped (the network thread ended). A full answer ring is waited out (bounded: the network
//! thread drains it every turn); an answer that still finds no room is dropped and counted, and the request's ack
//! timeout resends it with the same client id.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::compute::Doorbell;
use crate::ingest::orders::{REST_BODY_MAX, RestAnswer, RestJob, RestMethod, RestWorkerEnds};

/// Longest wait for one request (connect, TLS, answer).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest park while the queue is empty (the lane also unparks the worker on every job and when it closes).
const PARK: Duration = Duration::from_millis(200);
/// Tries to hand an answer back while the answer ring is full, [`ANSWER_RETRY`] apart.
const ANSWER_TRIES: u32 = 100;
const ANSWER_RETRY: Duration = Duration::from_millis(5);

/// What the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OrderRestStats {
    /// Requests run.
    pub requests: u64,
    /// Requests that got no HTTP answer.
    pub transport_errors: u64,
    /// Answers dropped because the answer ring stayed full.
    pub answers_dropped: u64,
}

/// Where the worker sends its requests.
pub(crate) struct OrderRestTarget {
    /// `https://host[:port]` (the `[live]` REST base).
    pub base: String,
    /// The API key (`X-MBX-APIKEY`).
    pub api_key: String,
}

/// Starts the worker with `agent` (`app::rest::agent`, [`REQUEST_TIMEOUT`]); its `Thread` is for
/// [`crate::ingest::orders::RestLane::attach`].
pub(crate) fn spawn(
    agent: ureq::Agent,
    target: OrderRestTarget,
    ends: RestWorkerEnds,
    bell: Doorbell,
) -> std::io::Result<std::thread::JoinHandle<OrderRestStats>> {
    std::thread::Builder::new().name("rusto-order-rest".into()).spawn(move || run(&agent, &target, ends, &bell))
}

fn run(agent: &ureq::Agent, target: &OrderRestTarget, mut ends: RestWorkerEnds, bell: &Doorbell) -> OrderRestStats {
    let mut stats = OrderRestStats::default();
    let mut url = String::with_capacity(target.base.len() + 2048);
    loop {
        let Some(job) = ends.jobs.pop() else {
            if ends.closed.load(Ordering::Acquire) {
                return stats;
            }
            std::thread::park_timeout(PARK);
            continue;
        };
        stats.requests += 1;
        let answer = execute(agent, target, &job, &mut url);
        if answer.outcome == crate::ingest::orders::RestOutcome::Transport {
            stats.transport_errors += 1;
        }
        if !hand_back(&mut ends, answer, bell) {
            stats.answers_dropped += 1;
            log::error!("order REST worker: answer ring full; answer dropped (the request's timeout resends it)");
        }
    }
}

fn hand_back(ends: &mut RestWorkerEnds, mut answer: RestAnswer, bell: &Doorbell) -> bool {
    for _ in 0..ANSWER_TRIES {
        match ends.answers.push(answer) {
            Ok(()) => {
                bell();
                return true;
            }
            Err(a) => {
                answer = a;
                bell();
                std::thread::sleep(ANSWER_RETRY);
            }
        }
    }
    false
}

/// Runs one request: `<method> <base><path>?<signed query>` with the key header, no body.
fn execute(agent: &ureq::Agent, target: &OrderRestTarget, job: &RestJob, url: &mut String) -> RestAnswer {
    url.clear();
    url.push_str(&target.base);
    url.push_str(job.call.path);
    url.push('?');
    url.push_str(job.query());
    let key = target.api_key.as_str();
    let resp = match job.call.method {
        RestMethod::Post => agent.post(url.as_str()).header("X-MBX-APIKEY", key).send_empty(),
        RestMethod::Put => agent.put(url.as_str()).header("X-MBX-APIKEY", key).send_empty(),
        RestMethod::Delete => agent.delete(url.as_str()).header("X-MBX-APIKEY", key).call(),
        RestMethod::Get => agent.get(url.as_str()).header("X-MBX-APIKEY", key).call(),
    };
    let mut resp = match resp {
        Ok(r) => r,
        Err(e) => {
            log::warn!("order REST worker: {:?} {}: {e}", job.call.method, job.call.path);
            return RestAnswer::transport(job.request_id);
        }
    };
    let status = resp.status().as_u16();
    match resp.body_mut().with_config().limit(REST_BODY_MAX as u64 + 1).read_to_vec() {
        Ok(body) => RestAnswer::http(job.request_id, status, &body),
        // Longer than the limit (the reader refuses it) or cut off: the outcome is unknown.
        Err(e) => {
            log::warn!("order REST worker: {} answer body unreadable: {e}", job.call.path);
            RestAnswer::transport(job.request_id)
        }
    }
}

//! The REST fallback of the order session (issue 12): while the WebSocket API connection is down, the network
//! thread hands its signed requests to a blocking REST worker thread (`app::order_rest`) and takes the answers back.
//!
//! Contracts:
//! - Two preallocated SPSC rings of fixed-size, `Copy` records: [`RestJob`] (network → worker, [`REST_JOBS`]
//!   deep) and [`RestAnswer`] (worker → network, [`REST_ANSWERS`] deep). Nothing allocates per request on the
//!   network thread; a full job ring hands the job back (the request stays pending and its ack timeout sends it
//!   again, counted in `OrderStats::rest_ring_full`).
//! - The network thread never blocks on REST: it pushes a job and unparks the worker; the worker rings the network
//!   thread's doorbell after each answer, and the session reads the answers at its next turn.
//! - The worker ends when the network side ([`RestLane`]) is dropped.
//! - An answer carries the HTTP status and the first [`REST_BODY_MAX`] bytes of the body; a longer body is marked
//!   truncated and treated as an unknown outcome (the request is queried/resent, never guessed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::handoff::ring::{Consumer, Producer, ring};

use super::request::{MAX_REQUEST_BYTES, RestCall};

/// Jobs waiting for the worker.
pub const REST_JOBS: usize = 16;
/// Answers waiting for the network thread.
pub const REST_ANSWERS: usize = 16;
/// Largest body kept of an answer: Binance's order and algo order objects are under 1.5 KiB; a `userTrades` list of
/// one order takes ≈ 330 bytes a trade (a resting take profit can fill in tens of trades).
pub const REST_BODY_MAX: usize = 32 << 10;

/// One signed REST request: its call (method, path), its query string, and the session's request id.
#[derive(Clone, Copy)]
pub struct RestJob {
    /// The order session's request id (the pending table's key).
    pub request_id: u64,
    /// Method and path.
    pub call: RestCall,
    len: u16,
    query: [u8; MAX_REQUEST_BYTES],
}

impl RestJob {
    /// A job for `query` (the encoder's signed query string); `None` when it is longer than a request can be.
    pub fn new(request_id: u64, call: RestCall, query: &[u8]) -> Option<Self> {
        if query.len() > MAX_REQUEST_BYTES {
            return None;
        }
        let mut j = RestJob { request_id, call, len: query.len() as u16, query: [0; MAX_REQUEST_BYTES] };
        j.query[..query.len()].copy_from_slice(query);
        Some(j)
    }

    /// The signed query string (ASCII: the encoder writes nothing else).
    pub fn query(&self) -> &str {
        std::str::from_utf8(&self.query[..self.len as usize]).unwrap_or("")
    }
}

/// What became of a REST request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestOutcome {
    /// An HTTP answer with this status and the whole body.
    Http(u16),
    /// An HTTP answer whose body was longer than [`REST_BODY_MAX`] (unknown outcome).
    Truncated(u16),
    /// No answer: connect, TLS, timeout or read failure (unknown outcome).
    Transport,
}

/// The worker's answer to one [`RestJob`].
#[derive(Clone, Copy)]
pub struct RestAnswer {
    /// The job's request id.
    pub request_id: u64,
    /// Status or failure.
    pub outcome: RestOutcome,
    len: u16,
    body: [u8; REST_BODY_MAX],
}

impl RestAnswer {
    /// An answer with `body`, marked truncated when it does not fit.
    pub fn http(request_id: u64, status: u16, body: &[u8]) -> Self {
        let n = body.len().min(REST_BODY_MAX);
        let outcome =
            if body.len() > REST_BODY_MAX { RestOutcome::Truncated(status) } else { RestOutcome::Http(status) };
        let mut a = RestAnswer { request_id, outcome, len: n as u16, body: [0; REST_BODY_MAX] };
        a.body[..n].copy_from_slice(&body[..n]);
        a
    }

    /// A request that got no answer.
    pub fn transport(request_id: u64) -> Self {
        RestAnswer { request_id, outcome: RestOutcome::Transport, len: 0, body: [0; REST_BODY_MAX] }
    }

    /// The body kept.
    pub fn body(&self) -> &[u8] {
        &self.body[..self.len as usize]
    }
}

/// The job ring was full: the job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("REST fallback queue full (request {request_id} not queued)")]
pub struct LaneFull {
    /// The refused job's request id.
    pub request_id: u64,
}

/// The network thread's end: jobs out, answers in.
pub struct RestLane {
    jobs: Producer<RestJob>,
    answers: Consumer<RestAnswer>,
    worker: Option<std::thread::Thread>,
    closed: Arc<AtomicBool>,
}

/// The worker's end.
pub struct RestWorkerEnds {
    /// Jobs to run.
    pub jobs: Consumer<RestJob>,
    /// Where answers go.
    pub answers: Producer<RestAnswer>,
    /// Set when the network side is gone: the worker ends.
    pub closed: Arc<AtomicBool>,
}

/// The two ends of a REST lane; the worker's thread is attached with [`RestLane::attach`] once it runs.
pub fn rest_lane() -> (RestLane, RestWorkerEnds) {
    let (jtx, jrx) = ring::<RestJob>(REST_JOBS);
    let (atx, arx) = ring::<RestAnswer>(REST_ANSWERS);
    let closed = Arc::new(AtomicBool::new(false));
    (
        RestLane { jobs: jtx, answers: arx, worker: None, closed: closed.clone() },
        RestWorkerEnds { jobs: jrx, answers: atx, closed },
    )
}

impl RestLane {
    /// The worker's thread, unparked after each job.
    pub fn attach(mut self, worker: std::thread::Thread) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Queues `job` and wakes the worker. A full ring refuses it (the caller still holds the request as pending:
    /// a 1.5 KiB job is not handed back by value).
    pub fn push(&mut self, job: RestJob) -> Result<(), LaneFull> {
        self.jobs.push(job).map_err(|j| LaneFull { request_id: j.request_id })?;
        if let Some(w) = &self.worker {
            w.unpark();
        }
        Ok(())
    }

    /// The next answer, if any.
    pub fn pop(&mut self) -> Option<RestAnswer> {
        self.answers.pop()
    }
}

impl Drop for RestLane {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        if let Some(w) = &self.worker {
            w.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::orders::request::{REST_ORDER_PATH, RestMethod};

    #[test]
    fn jobs_and_answers_cross_the_lane_and_a_long_body_is_marked_truncated() {
        let (mut lane, mut w) = rest_lane();
        let call = RestCall { method: RestMethod::Post, path: REST_ORDER_PATH };
        for i in 0..REST_JOBS as u64 {
            lane.push(RestJob::new(i, call, b"symbol=BTCUSDT&side=BUY").unwrap()).map_err(|_| ()).unwrap();
        }
        let full = lane.push(RestJob::new(99, call, b"x=1").unwrap()).err().unwrap();
        assert_eq!(full, LaneFull { request_id: 99 }, "a full ring refuses the job");
        let j = w.jobs.pop().unwrap();
        assert_eq!((j.request_id, j.query(), j.call), (0, "symbol=BTCUSDT&side=BUY", call));
        assert!(RestJob::new(1, call, &[b'a'; MAX_REQUEST_BYTES + 1]).is_none());
        w.answers.push(RestAnswer::http(0, 200, br#"{"orderId":1}"#)).map_err(|_| ()).unwrap();
        w.answers.push(RestAnswer::http(1, 200, &[b' '; REST_BODY_MAX + 1])).map_err(|_| ()).unwrap();
        let a = lane.pop().unwrap();
        assert_eq!((a.request_id, a.outcome, a.body()), (0, RestOutcome::Http(200), &br#"{"orderId":1}"#[..]));
        assert_eq!(lane.pop().unwrap().outcome, RestOutcome::Truncated(200));
        assert!(!w.closed.load(Ordering::Acquire));
        drop(lane);
        assert!(w.closed.load(Ordering::Acquire), "the worker learns that the session is gone");
    }
}

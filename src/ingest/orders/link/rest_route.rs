//! The order session's REST fallback (see `rest_lane` for the lane's contract): while the WebSocket API has been
//! down for `rest_fallback_after_ms`, intents, resends and status queries are signed as REST requests
//! (`POST`/`DELETE`/`PUT`/`GET /fapi/v1/order`, `POST`/`DELETE /fapi/v1/algoOrder`) and handed to the REST worker;
//! its answers come back through the same handling as the WebSocket API's: reports, refusals by code, `-1021`
//! resyncs, `-4116` status queries, rate-limit back-offs. An answer of unknown outcome (no answer, a 5xx, a
//! truncated or unreadable body) leaves the request pending: its ack timeout resends it with the same client id,
//! which the exchange refuses as a duplicate if the first copy arrived, so nothing executes twice.

use std::time::{Duration, Instant};

use crate::ingest::orders::error::action_for_http;
use crate::ingest::orders::request::{RestCall, RestMethod};
use crate::ingest::orders::response::{
    AlgoCancelResult, AlgoResult, exec_from_order, parse_rest_error, parse_rest_order,
};
use crate::ingest::orders::rest_lane::{REST_ANSWERS, RestAnswer, RestJob, RestOutcome};
use crate::types::{ExecKind, ExecReport, IntentKind, OrderIntent, SymbolSpec, SymbolTable};

use super::{Answer, Ctl, LOCAL_ENCODE, OrderLink, Phase, Sink};
use crate::ingest::orders::session::Pending;

/// The user data stream's REST endpoint.
const REST_LISTEN_KEY_PATH: &str = "/fapi/v1/listenKey";

/// Binance's code for a rate-limited request whose body says nothing else (429/418 without a readable code).
const TOO_MANY_REQUESTS: i32 = -1003;

impl OrderLink {
    /// True when requests go over REST: no ready WebSocket API, a REST lane, and the fallback configured (the lane
    /// also serves the missed-fill checks when it is not).
    pub(super) fn on_rest(&self) -> bool {
        self.phase != Phase::Ready && self.rest.is_some() && self.cfg.rest_fallback_after_ms.is_some()
    }

    /// True once the WebSocket API has been down for the configured delay and a REST lane is there.
    pub(super) fn rest_due(&self, now: Instant) -> bool {
        let Some(after) = self.cfg.rest_fallback_after_ms else { return false };
        self.rest.is_some()
            && self.down_since.is_some_and(|t| now.duration_since(t) >= Duration::from_millis(u64::from(after)))
    }

    /// Hands `job` to the REST worker; false when there is no lane or no job, and (counted) when its queue is full.
    pub(super) fn queue_rest(&mut self, job: Option<RestJob>) -> bool {
        let (Some(lane), Some(job)) = (self.rest.as_mut(), job) else { return false };
        if lane.push(job).is_err() {
            self.stats.rest_queue_full += 1;
            log::warn!("order session: REST queue full; request left to its timeout or next check (counted)");
            return false;
        }
        true
    }

    /// Hands the encoded request (`self.req`) to the REST worker as a fallback request.
    pub(super) fn push_rest(&mut self, request_id: u64, call: RestCall) -> bool {
        if !self.queue_rest(RestJob::new(request_id, call, self.req.as_bytes())) {
            return false;
        }
        if self.stats.rest_fallbacks == 0 {
            log::warn!("order session: WebSocket API down: requests go over the REST fallback");
        }
        self.stats.rest_fallbacks += 1;
        true
    }

    /// `GET /fapi/v1/order` of `i` over REST (after a duplicate-id answer to a resend).
    pub(super) fn send_rest_status(&mut self, id: u64, i: OrderIntent, resends: u8, spec: &SymbolSpec, out: Sink<'_>) {
        let at = self.at();
        let call = match self.req.encode_rest_status(&i, spec, at, &self.cfg.credentials) {
            Ok(call) => call,
            Err(_) => return self.report(&crate::ingest::orders::rejected(&i, LOCAL_ENCODE, self.exchange_ms()), out),
        };
        if self.ctl.is_full() {
            self.stats.ctl_dropped += 1;
            return self.status_unknown(i, resends, out);
        }
        if self.push_rest(id, call) {
            self.ctl.push((id, Ctl::RestStatus(i, resends)));
        } else {
            self.status_unknown(i, resends, out);
        }
    }

    /// `POST` (`start`) or `PUT /fapi/v1/listenKey` over REST (USER_STREAM: the key header only, no parameters).
    pub(super) fn send_rest_listen_key(&mut self, id: u64, start: bool) {
        let method = if start { RestMethod::Post } else { RestMethod::Put };
        let call = RestCall { method, path: REST_LISTEN_KEY_PATH };
        if self.ctl.is_full() {
            self.stats.ctl_dropped += 1;
            return;
        }
        if self.queue_rest(RestJob::new(id, call, b"")) {
            self.stats.rest_fallbacks += 1;
            self.ctl.push((id, Ctl::RestListen(start)));
        }
    }

    /// A listenKey answer over REST: a new key reconnects the user stream; `-1125` (the key is gone) starts one.
    fn on_rest_listen_key(&mut self, start: bool, a: &RestAnswer) {
        match a.outcome {
            RestOutcome::Http(200..=299) => match serde_json::from_slice::<super::Key<'_>>(a.body()) {
                Ok(k) if k.listen_key != self.listen_key => self.set_listen_key(k.listen_key),
                Ok(_) => {}
                Err(e) => self.undecodable(&e.to_string(), a.body()),
            },
            _ => match parse_rest_error(a.body()) {
                Ok(e) if e.code == -1125 => self.send_ctl(Ctl::ListenStart),
                other => log::error!(
                    "order session: REST listenKey {} failed ({:?}): {:?}",
                    if start { "start" } else { "keep-alive" },
                    a.outcome,
                    other.map(|e| e.code)
                ),
            },
        }
    }

    /// The REST worker's answers, handled like the WebSocket API's (at most [`REST_ANSWERS`] per turn).
    pub(super) fn rest_answers(&mut self, table: &SymbolTable, out: Sink<'_>) {
        for _ in 0..REST_ANSWERS {
            let Some(a) = self.rest.as_mut().and_then(|l| l.pop()) else { return };
            self.on_rest_answer(&a, table, out);
        }
    }

    fn on_rest_answer(&mut self, a: &RestAnswer, table: &SymbolTable, out: Sink<'_>) {
        if let Some(k) = self.ctl.iter().position(|(id, _)| *id == a.request_id) {
            let (_, c) = self.ctl.remove(k);
            match c {
                Ctl::RestStatus(i, resends) => match rest_order_answer(a, table) {
                    Some(Ok(Ok(x))) => self.report(&x, out),
                    _ => self.status_unknown(i, resends, out),
                },
                Ctl::RestListen(start) => self.on_rest_listen_key(start, a),
                Ctl::Trades(client) => self.on_trades(client, a, table, out),
                _ => {}
            }
            return;
        }
        let Some(p) = self.pending.take(a.request_id) else {
            self.stats.unmatched += 1;
            return;
        };
        let answer = if p.intent.order_type.is_conditional() {
            rest_algo_answer(a, &p.intent)
        } else {
            rest_order_answer(a, table)
        };
        match answer {
            Some(Ok(Ok(x))) => {
                self.stats.acked += 1;
                self.backoff.next /= 2;
                self.report(&x, out);
            }
            Some(Ok(Err(code))) => {
                self.stats.acked += 1;
                self.on_refused(p, code, table, out);
            }
            other => self.rest_unknown(p, a, other),
        }
    }

    /// An answer that does not say what became of the request: it stays pending as it was sent, so its ack timeout
    /// resends it (same client id).
    fn rest_unknown(&mut self, p: Pending, a: &RestAnswer, answer: Option<Answer>) {
        self.stats.rest_unknown += 1;
        if let Some(Err(e)) = answer {
            self.undecodable(&e.to_string(), a.body());
        } else if self.stats.rest_unknown <= 3 {
            log::warn!(
                "order session: REST fallback answer of unknown outcome ({:?}); resent at its timeout",
                a.outcome
            );
        }
        let _ = self.pending.insert(p);
    }

    /// After the WebSocket API was lost: its control requests are gone; the status queries among them go back to
    /// the pending table (their intents would be forgotten otherwise), the REST ones stay.
    pub(super) fn requeue_status_queries(&mut self) {
        let mut k = 0;
        while k < self.ctl.len() {
            match self.ctl[k].1 {
                Ctl::RestStatus(..) | Ctl::RestListen(_) | Ctl::Trades(_) => k += 1,
                Ctl::Status(i, resends) => {
                    self.ctl.remove(k);
                    if self.pending.insert(Pending { resends, ..Pending::first(i) }).is_err() {
                        self.stats.pending_full += 1;
                        log::error!(
                            "order session: {:?} lost its status query and the pending table is full",
                            i.client
                        );
                    }
                }
                _ => {
                    self.ctl.remove(k);
                }
            }
        }
    }
}

/// An answer whose body is the requested object (a 2xx): `Ok`; otherwise the verdict without reading it as one: a
/// refusal's code (`Some(Ok(Err(code)))`, a rate limit without a readable code being `-1003`), an unreadable
/// refusal, or an unknown outcome (`None`: no answer, a 5xx, a truncated body).
fn rest_success(a: &RestAnswer) -> Result<(), Option<Answer>> {
    match a.outcome {
        RestOutcome::Http(200..=299) => Ok(()),
        RestOutcome::Http(s) if action_for_http(s) == Some(crate::ingest::orders::ErrorAction::BackOffHaltEntries) => {
            Err(refused(a, true))
        }
        RestOutcome::Http(400..=499) => Err(refused(a, false)),
        _ => Err(None),
    }
}

/// A refusal body's code (a rate limit without one is Binance's `-1003`).
fn refused(a: &RestAnswer, limited: bool) -> Option<Answer> {
    match parse_rest_error(a.body()) {
        Ok(e) => Some(Ok(Err(e.code))),
        Err(_) if limited => Some(Ok(Err(TOO_MANY_REQUESTS))),
        Err(e) => Some(Err(e)),
    }
}

/// A regular order's REST answer, as [`super::order_answer`] reads the WebSocket API's; `None`: unknown outcome.
fn rest_order_answer(a: &RestAnswer, table: &SymbolTable) -> Option<Answer> {
    if let Err(verdict) = rest_success(a) {
        return verdict;
    }
    Some(parse_rest_order(a.body()).and_then(|o| exec_from_order(&o, table)).map(|mut x| {
        // Fills come from the user data stream: a FILLED answer is an acknowledgement with its quantity.
        if matches!(x.kind, ExecKind::Fill | ExecKind::PartialFill) {
            x.kind = ExecKind::Ack;
        }
        Ok(x)
    }))
}

/// An algo order's REST answer (`POST`/`DELETE /fapi/v1/algoOrder`), as [`super::algo_answer`]; `None`: unknown.
fn rest_algo_answer(a: &RestAnswer, i: &OrderIntent) -> Option<Answer> {
    if let Err(verdict) = rest_success(a) {
        return verdict;
    }
    let base = |kind, id, ms| ExecReport { exchange_order_id: id, ..ExecReport::of_intent(i, kind, 0, 0, ms) };
    let json = crate::ingest::orders::WireError::json;
    Some(if i.kind == IntentKind::Cancel {
        serde_json::from_slice::<AlgoCancelResult<'_>>(a.body())
            .map_err(json)
            .map(|c| Ok(base(ExecKind::Canceled, c.algo_id, 0)))
    } else {
        serde_json::from_slice::<AlgoResult<'_>>(a.body())
            .map_err(json)
            .map(|r| Ok(base(ExecKind::Ack, r.algo_id, r.update_time)))
    })
}

//! The order session's configuration, counters and pending-request table (issue 12, network layer).
//!
//! Contract: [`PendingTable`] is allocated once with its capacity ([`SessionConfig::max_pending`]) and never grows;
//! `insert` on a full table returns [`PendingFull`] and leaves the table unchanged (the caller rejects the intent
//! locally with [`LOCAL_PENDING_FULL`] and counts it in [`OrderStats::pending_full`]). `take` removes by request id;
//! `oldest_expired` finds the oldest entry older than the ack timeout (the caller queries `order.status` and
//! resends with the same client id). No method allocates after construction.

use crate::ingest::orders::Credentials;
use crate::ingest::transport::Endpoint;
use crate::types::OrderIntent;

/// Local error code of an intent rejected because the pending table was full (outside Binance's −1xxx/−2xxx/−4xxx
/// ranges, so compute tells it apart).
pub const LOCAL_PENDING_FULL: i32 = -9001;

/// What the order session connects to and how it signs.
#[derive(Debug)]
pub struct SessionConfig {
    /// The WebSocket API's host (`wss://ws-fapi.binance.com`).
    pub ws_api: Endpoint,
    /// Its path (`/ws-fapi/v1`).
    pub ws_api_path: String,
    /// The user data stream's host (`wss://fstream.binance.com`).
    pub user_stream: Endpoint,
    /// Its path, the listenKey appended as `?listenKey=<key>` (`/private/ws`).
    pub user_stream_path: String,
    /// API key and signer.
    pub credentials: Credentials,
    /// `recvWindow` of signed requests.
    pub recv_window_ms: u32,
    /// Time after which an unanswered request is queried and resent.
    pub ack_timeout_ms: u32,
    /// Capacity of the pending table.
    pub max_pending: usize,
    /// Interval of `userDataStream.ping`.
    pub keepalive_s: u32,
    /// Requests go over REST once the WebSocket API has been down this long (`None`: never; they wait for it).
    pub rest_fallback_after_ms: Option<u32>,
}

/// Counters of the order session, exposed like `NetStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Request frames written.
    pub sent: u64,
    /// Acks received.
    pub acked: u64,
    /// Rejections with a −1xxx code (request / connectivity).
    pub rejected_1xxx: u64,
    /// Rejections with a −2xxx code (order logic).
    pub rejected_2xxx: u64,
    /// Rejections with a −4xxx code (filters) or any other code.
    pub rejected_other: u64,
    /// Requests unanswered within the ack timeout.
    pub timeouts: u64,
    /// Intents resent with the same client id.
    pub resends: u64,
    /// Clock offset re-measurements (−1021).
    pub clock_resyncs: u64,
    /// Requests handed to the REST fallback while the WS API was down.
    pub rest_fallbacks: u64,
    /// Requests not handed to the REST fallback because its queue was full (left to their ack timeout).
    pub rest_queue_full: u64,
    /// REST fallback answers of unknown outcome (no answer, a 5xx, a truncated or unreadable body): left to the ack
    /// timeout, which resends with the same client id.
    pub rest_unknown: u64,
    /// User data stream reconnects.
    pub user_stream_reconnects: u64,
    /// Intents rejected locally because the pending table was full.
    pub pending_full: u64,
    /// WebSocket API reconnects.
    pub api_reconnects: u64,
    /// Control requests (logon, listenKey, status) not sent because too many were in flight or the deferred buffer
    /// was full.
    pub ctl_dropped: u64,
    /// Answers or user-stream messages that did not parse.
    pub undecodable: u64,
    /// Answers whose id matched no request in flight (a late answer to a request already resent).
    pub unmatched: u64,
    /// Position updates (`ACCOUNT_UPDATE`) handed on.
    pub positions: u64,
    /// User-stream events of other types (`TRADE_LITE`, `MARGIN_CALL` …), counted and not acted on.
    pub other_events: u64,
    /// listenKeys that expired (a new one is started).
    pub listen_key_expired: u64,
    /// Rate-limit refusals (429/418 class) that started or extended a back-off.
    pub backoffs: u64,
    /// `userTrades` queries of regular orders a user data stream gap touched.
    pub fill_checks: u64,
    /// Fills the stream missed, reported from those queries.
    pub fills_recovered: u64,
    /// Working orders forgotten by the missed-fill watch because it was full (their gaps go unchecked).
    pub awaiting_evicted: u64,
}

impl OrderStats {
    /// Count one rejection by the class of its code.
    pub fn count_reject(&mut self, code: i32) {
        match -code {
            1000..=1999 => self.rejected_1xxx += 1,
            2000..=2999 => self.rejected_2xxx += 1,
            _ => self.rejected_other += 1,
        }
    }
}

/// One request awaiting its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The WS API request id.
    pub request_id: u64,
    /// The intent it carries (resent as is on timeout).
    pub intent: OrderIntent,
    /// Monotonic time the frame was written.
    pub sent_mono_ns: i64,
    /// Resends of this intent after ack timeouts so far (0: the first copy).
    pub resends: u8,
    /// Already resent once after a `-1021` (a second one is a reject).
    pub clock_retried: bool,
    /// This copy went over the REST fallback (its answer comes from the REST worker, not the connection).
    pub via_rest: bool,
}

impl Pending {
    /// The first copy of `intent`, not sent yet.
    pub fn first(intent: OrderIntent) -> Self {
        Pending { request_id: 0, intent, sent_mono_ns: 0, resends: 0, clock_retried: false, via_rest: false }
    }
}

/// The pending table was full; the intent was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pending table full ({capacity} requests)")]
pub struct PendingFull {
    /// The table's capacity.
    pub capacity: usize,
}

/// Bounded table of unanswered requests (linear scan: capacity is small, tens of entries).
#[derive(Debug)]
pub struct PendingTable {
    slots: Vec<Option<Pending>>,
    len: usize,
}

impl PendingTable {
    /// A table of `capacity` slots (the only allocation).
    pub fn new(capacity: usize) -> Self {
        PendingTable { slots: vec![None; capacity], len: 0 }
    }

    /// Entries stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no request is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Store `p`; a full table returns [`PendingFull`] unchanged.
    pub fn insert(&mut self, p: Pending) -> Result<(), PendingFull> {
        let capacity = self.slots.len();
        let slot = self.slots.iter_mut().find(|s| s.is_none()).ok_or(PendingFull { capacity })?;
        *slot = Some(p);
        self.len += 1;
        Ok(())
    }

    /// Remove and return the entry of `request_id`.
    pub fn take(&mut self, request_id: u64) -> Option<Pending> {
        let slot = self.slots.iter_mut().find(|s| matches!(s, Some(p) if p.request_id == request_id))?;
        self.len -= 1;
        slot.take()
    }

    /// Makes every entry sent on a connection due for its resend (after a reconnect: nothing in flight on the old
    /// connection will be answered); those in the REST fallback's hands wait for their answer.
    pub fn age_all(&mut self, now_mono_ns: i64, timeout_ns: i64) {
        for p in self.slots.iter_mut().flatten().filter(|p| !p.via_rest) {
            p.sent_mono_ns = p.sent_mono_ns.min(now_mono_ns - timeout_ns);
        }
    }

    /// Request id of the oldest entry written before `now_mono_ns − timeout_ns`.
    pub fn oldest_expired(&self, now_mono_ns: i64, timeout_ns: i64) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .filter(|p| now_mono_ns - p.sent_mono_ns >= timeout_ns)
            .min_by_key(|p| p.sent_mono_ns)
            .map(|p| p.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(request_id: u64, sent_mono_ns: i64) -> Pending {
        use crate::types::{ClientOrderId, IntentKind, Leg, OrderSide, OrderType, TimeInForce, WorkingType};
        let intent = OrderIntent {
            price_ticks: 0,
            stop_ticks: 0,
            qty_steps: 1,
            decided_mono_ns: sent_mono_ns,
            client: ClientOrderId { run_id: 12, position_id: 3, leg: Leg::Entry, attempt: 0 },
            symbol: 0,
            kind: IntentKind::Place,
            side: OrderSide::Buy,
            order_type: OrderType::Market,
            working_type: WorkingType::Contract,
            time_in_force: TimeInForce::Gtc,
            reduce_only: false,
            close_position: false,
            price_protect: false,
        };
        Pending { request_id, sent_mono_ns, ..Pending::first(intent) }
    }

    #[test]
    fn full_table_refuses_and_keeps_entries() {
        let mut t = PendingTable::new(2);
        assert_eq!(t.insert(pending(1, 10)), Ok(()));
        assert_eq!(t.insert(pending(2, 20)), Ok(()));
        assert_eq!(t.insert(pending(3, 30)), Err(PendingFull { capacity: 2 }));
        assert_eq!(t.len(), 2);
        assert_eq!(t.take(3), None);
        assert_eq!(t.take(1).map(|p| p.sent_mono_ns), Some(10));
        assert_eq!(t.insert(pending(3, 30)), Ok(()));
        assert_eq!(t.take(2).map(|p| p.request_id), Some(2));
        assert_eq!(t.take(3).map(|p| p.request_id), Some(3));
        assert!(t.is_empty());
    }

    #[test]
    fn oldest_expired_picks_the_oldest_past_timeout() {
        let mut t = PendingTable::new(4);
        for (id, sent) in [(7, 300), (8, 100), (9, 200)] {
            assert_eq!(t.insert(pending(id, sent)), Ok(()));
        }
        assert_eq!(t.oldest_expired(250, 100), Some(8));
        assert_eq!(t.oldest_expired(150, 100), None);
        assert_eq!(t.take(8).map(|p| p.request_id), Some(8));
        assert_eq!(t.oldest_expired(1_000, 100), Some(9));
    }

    #[test]
    fn rejects_count_by_code_class() {
        let mut s = OrderStats::default();
        for code in [-1021, -1022, -2019, -4164, LOCAL_PENDING_FULL] {
            s.count_reject(code);
        }
        assert_eq!((s.rejected_1xxx, s.rejected_2xxx, s.rejected_other), (2, 1, 2));
    }
}

//! The order wire protocol of Binance USDⓈ-M futures (issue 12, first step): signing, request encoders, response
//! and user-stream parsers, and the error-code policy. No network code: the network thread will own the
//! connections and call these.

pub(crate) mod error;
pub(crate) mod link;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod rest_lane;
pub(crate) mod session;
pub(crate) mod sign;
pub(crate) mod user_stream;

pub use error::{
    BinanceCode, EncodeError, ErrorAction, ErrorCounts, SignError, WireError, action_for, action_for_http,
};
pub use link::{
    API_TOKEN, BACKOFF_MAX, BACKOFF_MIN, LOCAL_ACK_LOST, LOCAL_ENCODE, LOCAL_NO_SPEC, LOCAL_RATE_LIMITED, OrderClock,
    OrderLink, RESENDS_MAX, Sink, USER_TOKEN,
};
pub use request::{
    Auth, MAX_REQUEST_BYTES, REST_ALGO_PATH, REST_ORDER_PATH, REST_USER_TRADES_PATH, RequestBuf, RestCall, RestMethod,
    SignedAt,
};
pub use response::{
    AlgoCancelResult, AlgoResult, ApiError, Bounded, MAX_ID_LEN, MAX_ORDER_TRADES, MAX_POSITIONS, MAX_RATE_LIMITS,
    OrderResult, PositionInfo, Positions, RateInterval, RateLimit, RateLimitType, RequestId, SessionResult, TradeRow,
    WsResponse, exec_from_order, fills_from_trades, parse_rest_error, parse_rest_order, parse_user_trades, parse_ws,
    rejected,
};
pub use rest_lane::{
    REST_ANSWERS, REST_BODY_MAX, REST_JOBS, RestAnswer, RestJob, RestLane, RestOutcome, RestWorkerEnds, rest_lane,
};
pub use session::{LOCAL_PENDING_FULL, OrderStats, Pending, PendingFull, PendingTable, SessionConfig};
pub use sign::{ApiKey, Credentials, MAX_API_KEY_LEN, MAX_SIGNATURE_LEN, Signature, Signer};
pub use user_stream::{
    AccountReason, AccountUpdate, AlgoStatus, AlgoUpdate, Balance, MAX_BALANCES, PositionSide, PositionUpdate,
    UserEvent, parse_user_event,
};

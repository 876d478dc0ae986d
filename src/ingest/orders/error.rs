//! Errors of the order wire layer, and Binance's error codes mapped to what the engine does about them.
//!
//! [`action_for`] is the policy of issue 12: `-1021` (timestamp outside recvWindow) resyncs the clock and retries
//! once; `-2019` (margin) and `-4164` (min notional) reject the entry and are counted; HTTP 429/418 back off and
//! halt new entries; an unknown code halts new entries and alerts (positions keep their exchange-side stops).
//! The codes and names are those of <https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code>
//! (copied in `tests/data/binance-docs-orders/error_codes.txt`).

/// Why a key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The API key is empty, too long or not `[A-Za-z0-9]`.
    #[error("API key is empty, too long or has characters other than A-Z a-z 0-9")]
    BadApiKey,
    /// The HMAC secret is empty.
    #[error("API secret is empty")]
    EmptySecret,
    /// Not a `-----BEGIN PRIVATE KEY-----` PEM with a base64 body.
    #[error("private key is not a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)")]
    BadPem,
    /// `ring` refused the PKCS#8 document (not an Ed25519 key, or corrupt).
    #[error("private key is not a valid Ed25519 PKCS#8 key")]
    BadPrivateKey,
}

/// Why a request could not be encoded (nothing is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The request does not fit the preallocated buffer.
    #[error("request longer than the {0}-byte buffer")]
    TooLong(usize),
    /// More parameters than the encoder's fixed table holds.
    #[error("more than {0} request parameters")]
    TooManyParams(usize),
    /// No price/quantity scale is known for the symbol, so ticks cannot be written as decimals.
    #[error("symbol has no known tick/step scale")]
    NoScale,
    /// `session.logon` needs an Ed25519 key (Binance: "Only Ed25519 keys are supported for this feature").
    #[error("session.logon needs an Ed25519 key")]
    LogonNeedsEd25519,
    /// `order.modify` supports LIMIT orders only; a conditional order is moved by cancel + place.
    #[error("only LIMIT orders can be modified")]
    ModifyNotLimit,
    /// The intent is inconsistent (e.g. a LIMIT without a price, a quantity with closePosition).
    #[error("inconsistent order intent: {0}")]
    BadIntent(&'static str),
}

/// Why a response or user-stream message could not be read (never a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not JSON of the expected shape (the serde message, bounded).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A field has a value outside the documented set.
    #[error("unexpected value for {0}")]
    BadValue(&'static str),
    /// A price or quantity is not a decimal on the symbol's grid.
    #[error("bad decimal in {0}")]
    BadDecimal(&'static str),
    /// The symbol is not in the table (or has no scale yet).
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    /// A success response without `result`, or an error response without `error`.
    #[error("response has neither result nor error")]
    Empty,
}

impl WireError {
    /// From a serde_json error, message capped so a hostile message cannot make a huge error.
    pub(crate) fn json(e: serde_json::Error) -> Self {
        let mut m = e.to_string();
        m.truncate(160);
        WireError::Malformed(m)
    }
}

/// What the engine does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorAction {
    /// Timestamp outside recvWindow: resync the clock offset, retry the same request (same client id) once.
    ResyncClockRetryOnce,
    /// The entry cannot be placed (margin, min notional, balance): drop this entry, count it, keep trading.
    RejectEntry,
    /// Rate limited or IP banned: back off and halt new entries until the limit clears.
    BackOffHaltEntries,
    /// Execution status unknown (timeout, duplicate client id): query the order before doing anything else.
    QueryStatus,
    /// The order a cancel targets is already gone (filled or cancelled): reconcile from the user stream.
    AlreadyGone,
    /// Anything else (including bad signature or key): halt new entries and alert; protective stops stay.
    HaltEntriesAlert,
}

/// The Binance codes the engine names (see the module doc); anything else is [`BinanceCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinanceCode {
    /// -1003 TOO_MANY_REQUESTS.
    TooManyRequests,
    /// -1006 UNEXPECTED_RESP (execution status unknown).
    UnexpectedResponse,
    /// -1007 TIMEOUT (execution status unknown).
    Timeout,
    /// -1008 Request Throttled (system overload; reduce-only orders exempt).
    Throttled,
    /// -1015 TOO_MANY_ORDERS.
    TooManyOrders,
    /// -1021 INVALID_TIMESTAMP.
    InvalidTimestamp,
    /// -1022 INVALID_SIGNATURE.
    InvalidSignature,
    /// -2011 CANCEL_REJECTED.
    CancelRejected,
    /// -2013 NO_SUCH_ORDER.
    NoSuchOrder,
    /// -2015 REJECTED_MBX_KEY.
    RejectedKey,
    /// -2018 BALANCE_NOT_SUFFICIENT.
    BalanceInsufficient,
    /// -2019 MARGIN_NOT_SUFFICIEN.
    MarginInsufficient,
    /// -4116 DUPLICATED_CLIENT_ORDER_ID.
    DuplicateClientOrderId,
    /// -4120 STOP_ORDER_SWITCH_ALGO.
    UseAlgoEndpoint,
    /// -4164 MIN_NOTIONAL.
    MinNotional,
    /// -5028 ME_RECVWINDOW_REJECT.
    MatchingEngineRecvWindow,
    /// Any other code.
    Other(i32),
}

impl BinanceCode {
    /// Names a numeric code.
    pub const fn from_code(code: i32) -> Self {
        match code {
            -1003 => BinanceCode::TooManyRequests,
            -1006 => BinanceCode::UnexpectedResponse,
            -1007 => BinanceCode::Timeout,
            -1008 => BinanceCode::Throttled,
            -1015 => BinanceCode::TooManyOrders,
            -1021 => BinanceCode::InvalidTimestamp,
            -1022 => BinanceCode::InvalidSignature,
            -2011 => BinanceCode::CancelRejected,
            -2013 => BinanceCode::NoSuchOrder,
            -2015 => BinanceCode::RejectedKey,
            -2018 => BinanceCode::BalanceInsufficient,
            -2019 => BinanceCode::MarginInsufficient,
            -4116 => BinanceCode::DuplicateClientOrderId,
            -4120 => BinanceCode::UseAlgoEndpoint,
            -4164 => BinanceCode::MinNotional,
            -5028 => BinanceCode::MatchingEngineRecvWindow,
            c => BinanceCode::Other(c),
        }
    }
}

/// The engine's action for a Binance error code (pure; the caller counts and acts).
pub const fn action_for(code: i32) -> ErrorAction {
    use BinanceCode as C;
    match BinanceCode::from_code(code) {
        C::InvalidTimestamp | C::MatchingEngineRecvWindow => ErrorAction::ResyncClockRetryOnce,
        C::MarginInsufficient | C::MinNotional | C::BalanceInsufficient => ErrorAction::RejectEntry,
        C::TooManyRequests | C::TooManyOrders | C::Throttled => ErrorAction::BackOffHaltEntries,
        C::UnexpectedResponse | C::Timeout | C::DuplicateClientOrderId => ErrorAction::QueryStatus,
        C::CancelRejected | C::NoSuchOrder => ErrorAction::AlreadyGone,
        C::InvalidSignature | C::RejectedKey | C::UseAlgoEndpoint | C::Other(_) => ErrorAction::HaltEntriesAlert,
    }
}

/// The action an HTTP status forces before the body is looked at: 429 (rate limit) and 418 (IP ban) back off and
/// halt entries; 503 "Unknown error" means execution status unknown. `None`: decide by the body's code.
pub const fn action_for_http(status: u16) -> Option<ErrorAction> {
    match status {
        429 | 418 => Some(ErrorAction::BackOffHaltEntries),
        503 => Some(ErrorAction::QueryStatus),
        _ => None,
    }
}

/// Counts of errors by action, kept by whoever handles responses (nothing is dropped without a count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// Clock resyncs requested (-1021, -5028).
    pub clock_resync: u64,
    /// Entries rejected for margin (-2019).
    pub margin: u64,
    /// Entries rejected for min notional (-4164).
    pub min_notional: u64,
    /// Entries rejected for balance (-2018).
    pub balance: u64,
    /// Rate-limit back-offs.
    pub backoff: u64,
    /// Status queries forced by an unknown execution status.
    pub status_unknown: u64,
    /// Cancels whose target was already gone.
    pub already_gone: u64,
    /// Halts with alert (unknown or fatal codes).
    pub halt_alert: u64,
}

impl ErrorCounts {
    /// Counts one error code and returns its action.
    pub fn record(&mut self, code: i32) -> ErrorAction {
        let a = action_for(code);
        let slot = match (a, BinanceCode::from_code(code)) {
            (ErrorAction::RejectEntry, BinanceCode::MarginInsufficient) => &mut self.margin,
            (ErrorAction::RejectEntry, BinanceCode::MinNotional) => &mut self.min_notional,
            (ErrorAction::RejectEntry, _) => &mut self.balance,
            (ErrorAction::ResyncClockRetryOnce, _) => &mut self.clock_resync,
            (ErrorAction::BackOffHaltEntries, _) => &mut self.backoff,
            (ErrorAction::QueryStatus, _) => &mut self.status_unknown,
            (ErrorAction::AlreadyGone, _) => &mut self.already_gone,
            (ErrorAction::HaltEntriesAlert, _) => &mut self.halt_alert,
        };
        *slot += 1;
        a
    }
}

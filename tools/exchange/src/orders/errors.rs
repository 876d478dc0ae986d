//! Binance's error answers (`{"code":-1022,"msg":"Signature for this request is not valid."}`), with the texts of
//! the USDⓈ-M futures error-code list (https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code).

/// One error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Binance's code.
    pub code: i64,
    /// Its message.
    pub msg: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: i64, msg: &str) -> ApiError {
        ApiError { code, msg: msg.to_string() }
    }

    /// -1102: a mandatory parameter is missing.
    pub fn missing(name: &str) -> ApiError {
        ApiError {
            code: -1102,
            msg: format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
        }
    }

    /// -1102 as Binance sends it for a parameter that does not parse.
    pub fn illegal(name: &str) -> ApiError {
        ApiError::missing(name)
    }

    /// -1022.
    pub fn bad_signature() -> ApiError {
        ApiError::new(-1022, "Signature for this request is not valid.")
    }

    /// -2015.
    pub fn bad_key() -> ApiError {
        ApiError::new(-2015, "Invalid API-key, IP, or permissions for action.")
    }

    /// -2014.
    pub fn key_format() -> ApiError {
        ApiError::new(-2014, "API-key format invalid.")
    }

    /// The HTTP status Binance answers this error with on REST.
    pub fn http_status(&self) -> u16 {
        match self.code {
            -2014 | -2015 => 401,
            // Binance answers a rate limit with 429 (REST and the WebSocket API's `status`).
            -1003 => 429,
            _ => 400,
        }
    }

    /// The error of a code given on the command line (`--reject-code`), when the code is one the exchange knows.
    pub fn injectable(code: i64) -> Option<ApiError> {
        let msg = match code {
            -1003 => {
                "Too many requests; current limit is 300 requests per minute. Please use the websocket for live updates to avoid polling the API."
            }
            -1008 => "Server is currently overloaded with other requests. Please try again in a few minutes.",
            -1021 => "Timestamp for this request is outside of the recvWindow.",
            -2010 => "NEW_ORDER_REJECTED",
            -2019 => "Margin is insufficient.",
            -4164 => "Order's notional must be no smaller than 5 (unless you choose reduce only).",
            _ => return None,
        };
        Some(ApiError::new(code, msg))
    }
}

/// Codes `--reject-code` accepts.
pub const INJECTABLE: [i64; 6] = [-1003, -1008, -1021, -2010, -2019, -4164];

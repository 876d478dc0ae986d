//! Order request encoders: WebSocket API frames (`order.place`, `algoOrder.place`, `order.cancel`,
//! `algoOrder.cancel`, `order.modify`, `session.logon`) and the REST query string for `POST`/`DELETE /fapi/v1/order`.
//!
//! Everything is written into a caller-owned [`RequestBuf`] of fixed capacity: no allocation per order, and a
//! request that does not fit is an [`EncodeError::TooLong`], never a reallocation. Rules followed (quoted in
//! `tests/data/binance-docs-orders/ws_api_rules.txt`): the WebSocket API signs "all request params except for the
//! signature … sorting them by name in alphabetical order"; `INT` parameters are JSON integers and `DECIMAL` ones JSON
//! strings. Prices and quantities are written from ticks/steps with the symbol's scale, never through `f64`. The
//! timestamp and recvWindow are inputs: nothing here reads a clock.
//!
//! Conditional orders (`STOP_MARKET`, `TAKE_PROFIT_MARKET`) go through the Algo Order API (`algoOrder.place`,
//! `triggerPrice`, `clientAlgoId`): the regular endpoint answers them with `-4120 STOP_ORDER_SWITCH_ALGO`.

use crate::types::{ClientOrderId, IntentKind, OrderIntent, OrderType, Scale, SymbolSpec};

use super::error::EncodeError;
use super::sign::{ApiKey, Credentials, Signature};

/// Capacity of the request frame (a full `order.place` with an Ed25519 signature is ~450 bytes).
pub const MAX_REQUEST_BYTES: usize = 1536;
/// Capacity of the signed payload and of the parameter value scratch.
const MAX_PAYLOAD_BYTES: usize = 1024;
/// Most parameters in one request.
const MAX_PARAMS: usize = 20;

/// When the request is signed: the caller's offset-corrected exchange time and the validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedAt {
    /// Exchange-clock milliseconds (`timestamp`).
    pub timestamp_ms: i64,
    /// `recvWindow` in milliseconds (0: not sent, Binance's default 5000 applies).
    pub recv_window_ms: u32,
}

/// How a WebSocket API request is authorised.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// `apiKey` + `signature` on the request.
    Signed(&'a Credentials),
    /// The connection did `session.logon`: "you can omit `apiKey` and `signature`".
    Session,
}

/// HTTP method of a REST order request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestMethod {
    /// Place.
    Post,
    /// Cancel.
    Delete,
    /// Modify.
    Put,
    /// Status query.
    Get,
}

/// Path of the REST order endpoint.
pub const REST_ORDER_PATH: &str = "/fapi/v1/order";
/// Path of the REST account trade list (`GET`, by `orderId`: the fills of one order).
pub const REST_USER_TRADES_PATH: &str = "/fapi/v1/userTrades";
/// Path of the REST Algo Order endpoint (conditional orders: the protective `STOP_MARKET`).
pub const REST_ALGO_PATH: &str = "/fapi/v1/algoOrder";

/// What a REST fallback request is: its method and path (the signed query string is the buffer's bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestCall {
    /// HTTP method.
    pub method: RestMethod,
    /// Endpoint path.
    pub path: &'static str,
}

#[derive(Clone, Copy)]
struct Fixed<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Fixed<N> {
    const fn new() -> Self {
        Fixed { buf: [0; N], len: 0 }
    }

    #[inline]
    fn push(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let end = self.len + b.len();
        if end > N {
            return Err(EncodeError::TooLong(N));
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// How a parameter's value is written in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Json {
    /// A JSON string (`STRING`, `ENUM`, `DECIMAL`).
    Str,
    /// A bare JSON integer (`INT`, `LONG`).
    Int,
}

#[derive(Clone, Copy)]
struct Param {
    name: &'static str,
    start: u16,
    end: u16,
    json: Json,
}

const NO_PARAM: Param = Param { name: "", start: 0, end: 0, json: Json::Str };

/// A preallocated request under construction and, after an `encode_*` call, the finished frame or query string.
pub struct RequestBuf {
    out: Fixed<MAX_REQUEST_BYTES>,
    payload: Fixed<MAX_PAYLOAD_BYTES>,
    values: Fixed<MAX_PAYLOAD_BYTES>,
    params: [Param; MAX_PARAMS],
    n_params: usize,
}

impl Default for RequestBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestBuf {
    /// An empty buffer (about 3.6 KB; make one per connection and reuse it).
    pub const fn new() -> Self {
        RequestBuf {
            out: Fixed::new(),
            payload: Fixed::new(),
            values: Fixed::new(),
            params: [NO_PARAM; MAX_PARAMS],
            n_params: 0,
        }
    }

    /// The encoded frame (WebSocket API JSON text) or query string (REST).
    pub fn as_bytes(&self) -> &[u8] {
        self.out.bytes()
    }

    /// The string that was signed (for tests and the local exchange's verifier).
    pub fn signed_payload(&self) -> &[u8] {
        self.payload.bytes()
    }

    fn reset(&mut self) {
        self.out.len = 0;
        self.payload.len = 0;
        self.values.len = 0;
        self.n_params = 0;
    }

    fn param(&mut self, name: &'static str, json: Json, v: &[u8]) -> Res {
        if self.n_params == MAX_PARAMS {
            return Err(EncodeError::TooManyParams(MAX_PARAMS));
        }
        let start = self.values.len;
        self.values.push(v)?;
        self.params[self.n_params] = Param { name, start: start as u16, end: self.values.len as u16, json };
        self.n_params += 1;
        Ok(())
    }

    fn str(&mut self, name: &'static str, v: &[u8]) -> Res {
        self.param(name, Json::Str, v)
    }

    fn int(&mut self, name: &'static str, v: i64) -> Res {
        let mut digits = [0u8; 20];
        self.param(name, Json::Int, write_int(v, &mut digits))
    }

    fn dec(&mut self, name: &'static str, scale: Scale, units: i64) -> Res {
        let mut text = [0u8; 48];
        let s = write_units(scale, units, &mut text);
        self.str(name, s)
    }

    fn client_id(&mut self, name: &'static str, id: ClientOrderId) -> Res {
        self.str(name, &id.to_bytes())
    }

    fn timing(&mut self, at: SignedAt) -> Res {
        if at.recv_window_ms > 0 {
            self.int("recvWindow", at.recv_window_ms as i64)?;
        }
        self.int("timestamp", at.timestamp_ms)
    }

    /// Sorts the parameters by name (byte order, as Python's `sorted` in Binance's sample) and writes the
    /// `name=value&…` payload.
    fn sort_and_payload(&mut self) -> Res {
        let ps = &mut self.params[..self.n_params];
        ps.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for i in 0..self.n_params {
            let p = self.params[i];
            if i > 0 {
                self.payload.push(b"&")?;
            }
            self.payload.push(p.name.as_bytes())?;
            self.payload.push(b"=")?;
            self.payload.push(&self.values.buf[p.start as usize..p.end as usize])?;
        }
        Ok(())
    }

    /// Finishes a WebSocket API frame: `{"id":…,"method":"…","params":{…sorted…,"signature":"…"}}`.
    fn finish_ws(&mut self, id: u64, method: &str, auth: Auth<'_>) -> Res {
        if let Auth::Signed(c) = auth {
            self.str("apiKey", c.api_key.as_bytes())?;
        }
        self.sort_and_payload()?;
        let mut digits = [0u8; 20];
        let id_text = write_int(id as i64, &mut digits);
        let out = &mut self.out;
        out.push(b"{\"id\":")?;
        out.push(id_text)?;
        out.push(b",\"method\":\"")?;
        out.push(method.as_bytes())?;
        out.push(b"\",\"params\":{")?;
        for i in 0..self.n_params {
            let p = self.params[i];
            let out = &mut self.out;
            if i > 0 {
                out.push(b",")?;
            }
            out.push(b"\"")?;
            out.push(p.name.as_bytes())?;
            out.push(if p.json == Json::Str { b"\":\"" } else { b"\":" })?;
            out.push(&self.values.buf[p.start as usize..p.end as usize])?;
            if p.json == Json::Str {
                out.push(b"\"")?;
            }
        }
        if let Auth::Signed(c) = auth {
            let sig = c.signer.sign(self.payload.bytes());
            self.out.push(b",\"signature\":\"")?;
            self.out.push(sig.as_bytes())?;
            self.out.push(b"\"")?;
        }
        self.out.push(b"}}")
    }

    /// Places an order: `order.place` for MARKET/LIMIT, `algoOrder.place` (CONDITIONAL) for stop/take-profit.
    pub fn encode_place(&mut self, id: u64, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt, auth: Auth<'_>) -> Res {
        self.reset();
        check_place(o)?;
        self.order_params(o, sym)?;
        self.timing(at)?;
        let method = if o.order_type.is_conditional() { "algoOrder.place" } else { "order.place" };
        self.finish_ws(id, method, auth)
    }

    /// The parameters of a new order (shared by the WebSocket API and REST encoders).
    fn order_params(&mut self, o: &OrderIntent, sym: &SymbolSpec) -> Res {
        self.str("symbol", sym.name.as_str().as_bytes())?;
        self.str("side", o.side.as_str().as_bytes())?;
        self.str("type", o.order_type.as_str().as_bytes())?;
        if o.order_type == OrderType::Limit {
            self.str("timeInForce", o.time_in_force.as_str().as_bytes())?;
            self.dec("price", sym.tick, o.price_ticks)?;
        }
        if o.close_position {
            self.str("closePosition", b"true")?;
        } else {
            self.dec("quantity", sym.step, o.qty_steps)?;
            if o.reduce_only {
                self.str("reduceOnly", b"true")?;
            }
        }
        if o.order_type.is_conditional() {
            self.str("algoType", b"CONDITIONAL")?;
            self.dec("triggerPrice", sym.tick, o.stop_ticks)?;
            self.str("workingType", o.working_type.as_str().as_bytes())?;
            if o.price_protect {
                self.str("priceProtect", b"true")?;
            }
            self.client_id("clientAlgoId", o.client)
        } else {
            self.client_id("newClientOrderId", o.client)
        }
    }

    /// Cancels the working order `o.client`: `order.cancel`, or `algoOrder.cancel` for a conditional order.
    pub fn encode_cancel(&mut self, id: u64, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt, auth: Auth<'_>) -> Res {
        self.reset();
        self.cancel_params(o, sym)?;
        self.timing(at)?;
        self.finish_ws(id, if o.order_type.is_conditional() { "algoOrder.cancel" } else { "order.cancel" }, auth)
    }

    /// The parameters of a cancel (shared by the WebSocket API and REST encoders).
    fn cancel_params(&mut self, o: &OrderIntent, sym: &SymbolSpec) -> Res {
        if o.order_type.is_conditional() {
            self.client_id("clientAlgoId", o.client)
        } else {
            self.str("symbol", sym.name.as_str().as_bytes())?;
            self.client_id("origClientOrderId", o.client)
        }
    }

    /// Moves a working LIMIT order to `o.price_ticks` / `o.qty_steps` (`order.modify`: "Both `quantity` and `price`
    /// must be sent").
    pub fn encode_modify(&mut self, id: u64, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt, auth: Auth<'_>) -> Res {
        self.reset();
        self.modify_params(o, sym)?;
        self.timing(at)?;
        self.finish_ws(id, "order.modify", auth)
    }

    /// The parameters of a modify (shared by the WebSocket API and REST encoders).
    fn modify_params(&mut self, o: &OrderIntent, sym: &SymbolSpec) -> Res {
        if o.order_type != OrderType::Limit {
            return Err(EncodeError::ModifyNotLimit);
        }
        self.str("symbol", sym.name.as_str().as_bytes())?;
        self.client_id("origClientOrderId", o.client)?;
        self.str("side", o.side.as_str().as_bytes())?;
        self.dec("quantity", sym.step, o.qty_steps)?;
        self.dec("price", sym.tick, o.price_ticks)
    }

    /// Encodes whatever the intent asks for (place, cancel or modify).
    pub fn encode_intent(&mut self, id: u64, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt, auth: Auth<'_>) -> Res {
        match o.kind {
            IntentKind::Place => self.encode_place(id, o, sym, at, auth),
            IntentKind::Cancel => self.encode_cancel(id, o, sym, at, auth),
            IntentKind::Modify => self.encode_modify(id, o, sym, at, auth),
        }
    }

    /// `order.status` of the working or finished order `o.client` (asked after a duplicate-id answer to a resend).
    pub fn encode_status(&mut self, id: u64, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt, auth: Auth<'_>) -> Res {
        self.status_params(o, sym, at)?;
        self.finish_ws(id, "order.status", auth)
    }

    /// The parameters of a status query of `o.client` (WebSocket API or REST).
    fn status_params(&mut self, o: &OrderIntent, sym: &SymbolSpec, at: SignedAt) -> Res {
        self.reset();
        self.str("symbol", sym.name.as_str().as_bytes())?;
        self.client_id("origClientOrderId", o.client)?;
        self.timing(at)
    }

    /// `userDataStream.start` / `userDataStream.ping` (USER_STREAM methods: the API key only, no timestamp and no
    /// signature).
    pub fn encode_listen_key(&mut self, id: u64, method: &'static str, key: &ApiKey) -> Res {
        self.reset();
        self.str("apiKey", key.as_bytes())?;
        self.finish_ws(id, method, Auth::Session)
    }

    /// `session.logon` (Ed25519 only): authenticates the connection so later requests need no signature.
    pub fn encode_logon(&mut self, id: u64, creds: &Credentials, at: SignedAt) -> Res {
        self.reset();
        if !creds.signer.is_ed25519() {
            return Err(EncodeError::LogonNeedsEd25519);
        }
        self.timing(at)?;
        self.finish_ws(id, "session.logon", Auth::Signed(creds))
    }

    /// The REST fallback: the signed query string of the request the WebSocket API would send for `o`, with the
    /// same parameters: `POST`/`DELETE` `/fapi/v1/order` (place, cancel), `PUT /fapi/v1/order` (modify),
    /// `POST`/`DELETE` `/fapi/v1/algoOrder` (conditional place, cancel). The API key goes in the `X-MBX-APIKEY`
    /// header, not here.
    pub fn encode_rest(
        &mut self,
        o: &OrderIntent,
        sym: &SymbolSpec,
        at: SignedAt,
        c: &Credentials,
    ) -> Result<RestCall, EncodeError> {
        self.reset();
        let path = if o.order_type.is_conditional() { REST_ALGO_PATH } else { REST_ORDER_PATH };
        let method = match o.kind {
            IntentKind::Place => {
                check_place(o)?;
                self.order_params(o, sym)?;
                RestMethod::Post
            }
            IntentKind::Cancel => {
                self.cancel_params(o, sym)?;
                RestMethod::Delete
            }
            IntentKind::Modify => {
                self.modify_params(o, sym)?;
                RestMethod::Put
            }
        };
        self.timing(at)?;
        self.finish_rest(c)?;
        Ok(RestCall { method, path })
    }

    /// The REST fallback's status query, `GET /fapi/v1/order` of `o.client` (asked after a duplicate-id answer to a
    /// resend, like `order.status`).
    pub fn encode_rest_status(
        &mut self,
        o: &OrderIntent,
        sym: &SymbolSpec,
        at: SignedAt,
        c: &Credentials,
    ) -> Result<RestCall, EncodeError> {
        self.status_params(o, sym, at)?;
        self.finish_rest(c)?;
        Ok(RestCall { method: RestMethod::Get, path: REST_ORDER_PATH })
    }

    /// `GET /fapi/v1/userTrades?symbol=…&orderId=…`: the trades of one order (the fills a user data stream gap may
    /// have lost).
    pub fn encode_rest_user_trades(
        &mut self,
        sym: &SymbolSpec,
        order_id: i64,
        at: SignedAt,
        c: &Credentials,
    ) -> Result<RestCall, EncodeError> {
        self.reset();
        self.str("symbol", sym.name.as_str().as_bytes())?;
        self.int("orderId", order_id)?;
        self.timing(at)?;
        self.finish_rest(c)?;
        Ok(RestCall { method: RestMethod::Get, path: REST_USER_TRADES_PATH })
    }

    /// Writes `name=value&…` in insertion order, signs exactly that (`totalParams`), appends `&signature=…`.
    fn finish_rest(&mut self, c: &Credentials) -> Res {
        for i in 0..self.n_params {
            let p = self.params[i];
            if i > 0 {
                self.payload.push(b"&")?;
            }
            self.payload.push(p.name.as_bytes())?;
            self.payload.push(b"=")?;
            self.payload.push(&self.values.buf[p.start as usize..p.end as usize])?;
        }
        let sig: Signature = c.signer.sign(self.payload.bytes());
        self.out.push(self.payload.bytes())?;
        self.out.push(b"&signature=")?;
        for &b in sig.as_bytes() {
            // Base64 (Ed25519) needs URL encoding: "the signature may contain `/` and `=`".
            match b {
                b'+' => self.out.push(b"%2B")?,
                b'/' => self.out.push(b"%2F")?,
                b'=' => self.out.push(b"%3D")?,
                _ => self.out.push(&[b])?,
            }
        }
        Ok(())
    }
}

type Res = Result<(), EncodeError>;

/// Refuses intents Binance would reject for their shape, before anything is sent.
fn check_place(o: &OrderIntent) -> Res {
    if o.close_position && !o.order_type.is_conditional() {
        return Err(EncodeError::BadIntent("closePosition is for STOP_MARKET / TAKE_PROFIT_MARKET only"));
    }
    if !o.close_position && o.qty_steps <= 0 {
        return Err(EncodeError::BadIntent("quantity must be positive"));
    }
    if o.order_type == OrderType::Limit && o.price_ticks <= 0 {
        return Err(EncodeError::BadIntent("LIMIT needs a positive price"));
    }
    if o.order_type.is_conditional() && o.stop_ticks <= 0 {
        return Err(EncodeError::BadIntent("conditional order needs a positive trigger price"));
    }
    Ok(())
}

/// Decimal text of a signed integer into `out`; returns the written slice.
fn write_int(v: i64, out: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

/// `units` of `scale` as a decimal with exactly `scale.dec` decimals (`Scale::format` without the heap).
pub(crate) fn write_units(scale: Scale, units: i64, out: &mut [u8; 48]) -> &[u8] {
    let atoms = units as i128 * scale.unit as i128;
    let mut a = atoms.unsigned_abs();
    let mut i = out.len();
    for _ in 0..scale.dec {
        i -= 1;
        out[i] = b'0' + (a % 10) as u8;
        a /= 10;
    }
    if scale.dec > 0 {
        i -= 1;
        out[i] = b'.';
    }
    loop {
        i -= 1;
        out[i] = b'0' + (a % 10) as u8;
        a /= 10;
        if a == 0 {
            break;
        }
    }
    if atoms < 0 {
        i -= 1;
        out[i] = b'-';
    }
    &out[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_match_scale_format() {
        let scales = [
            Scale { dec: 2, unit: 10 },
            Scale { dec: 3, unit: 1 },
            Scale { dec: 0, unit: 1 },
            Scale { dec: 5, unit: 100 },
        ];
        for s in scales {
            for u in [0i64, 1, 9, 10, 281451, 1122459, 437848, -5, -12345, 99_999_999_999] {
                let mut buf = [0u8; 48];
                assert_eq!(std::str::from_utf8(write_units(s, u, &mut buf)).unwrap(), s.to_string(u), "{s:?} {u}");
            }
        }
    }

    #[test]
    fn ints_are_written_exactly() {
        for v in [0i64, 7, -7, 1705311512994, i64::MAX, i64::MIN + 1] {
            let mut buf = [0u8; 20];
            assert_eq!(std::str::from_utf8(write_int(v, &mut buf)).unwrap(), v.to_string());
        }
    }
}

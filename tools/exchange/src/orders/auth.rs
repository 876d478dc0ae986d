//! Request authentication as Binance's USDⓈ-M futures docs specify it: the API key, the HMAC-SHA256 (hex) or
//! Ed25519 (base64) signature over the request's parameters, and the timing rule
//! `timestamp < serverTime + 1000 && serverTime - timestamp <= recvWindow` (recvWindow 5000 by default, 60000 at
//! most).

use ring::{hmac, signature};

use super::errors::ApiError;

/// recvWindow when the request gives none, ms.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5000;
/// Largest recvWindow accepted, ms.
pub const MAX_RECV_WINDOW_MS: i64 = 60000;

/// How a key signs.
pub enum KeyKind {
    /// HMAC-SHA256 with this secret; the signature is hex.
    Hmac(hmac::Key),
    /// Ed25519 with this public key (32 bytes); the signature is base64.
    Ed25519(Vec<u8>),
}

/// One API key the exchange accepts.
pub struct ApiKey {
    /// The `X-MBX-APIKEY` / `apiKey` value.
    pub key: String,
    /// How it signs.
    pub kind: KeyKind,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            KeyKind::Hmac(_) => "HMAC",
            KeyKind::Ed25519(_) => "Ed25519",
        };
        write!(f, "ApiKey({kind}, {} chars)", self.key.len())
    }
}

impl ApiKey {
    /// An HMAC-SHA256 key.
    pub fn hmac(key: &str, secret: &str) -> ApiKey {
        ApiKey { key: key.to_string(), kind: KeyKind::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())) }
    }

    /// An Ed25519 key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) text.
    pub fn ed25519(key: &str, pem: &str) -> Result<ApiKey, String> {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = b64_decode(&b64).ok_or("the Ed25519 PEM is not base64")?;
        // SubjectPublicKeyInfo of Ed25519 (RFC 8410): 30 2a 30 05 06 03 2b 65 70 03 21 00 || 32-byte key.
        const PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        if der.len() != 44 || der[..12] != PREFIX {
            return Err("the PEM is not an Ed25519 public key (RFC 8410 SubjectPublicKeyInfo)".into());
        }
        Ok(ApiKey { key: key.to_string(), kind: KeyKind::Ed25519(der[12..].to_vec()) })
    }

    /// True when `sig` signs `payload` with this key.
    pub fn verifies(&self, payload: &str, sig: &str) -> bool {
        match &self.kind {
            KeyKind::Hmac(k) => hex_decode(sig).is_some_and(|s| hmac::verify(k, payload.as_bytes(), &s).is_ok()),
            KeyKind::Ed25519(pk) => b64_decode(sig).is_some_and(|s| {
                signature::UnparsedPublicKey::new(&signature::ED25519, pk).verify(payload.as_bytes(), &s).is_ok()
            }),
        }
    }
}

/// Binance's API-key format: letters and digits (the real keys are 64 of them).
pub fn key_format_ok(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The timing rule: `Ok` when `timestamp` is acceptable at exchange time `server_ms`.
pub fn check_time(timestamp: Option<&str>, recv_window: Option<&str>, server_ms: i64) -> Result<(), ApiError> {
    let ts: i64 = match timestamp {
        Some(t) => t.parse().map_err(|_| ApiError::illegal("timestamp"))?,
        None => return Err(ApiError::missing("timestamp")),
    };
    let rw: i64 = match recv_window {
        Some(r) => r.parse().map_err(|_| ApiError::illegal("recvWindow"))?,
        None => DEFAULT_RECV_WINDOW_MS,
    };
    if !(0..=MAX_RECV_WINDOW_MS).contains(&rw) {
        return Err(ApiError::new(-1131, "recvWindow must be less than 60000"));
    }
    if ts >= server_ms + 1000 {
        return Err(ApiError::new(-1021, "Timestamp for this request was 1000ms ahead of the server's time."));
    }
    if server_ms - ts > rw {
        return Err(ApiError::new(-1021, "Timestamp for this request is outside of the recvWindow."));
    }
    Ok(())
}

/// Hex (either case) to bytes.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes().chunks(2).map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

/// Standard base64 (with or without `=` padding) to bytes.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binance's worked HMAC example (USDⓈ-M futures REST "SIGNED Endpoint Examples for POST /fapi/v1/order",
    /// https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info): key, secret, query
    /// string and the signature the docs print.
    #[test]
    fn docs_hmac_example() {
        let k = ApiKey::hmac(
            "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83",
            "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
        );
        let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert!(k.verifies(q, "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"));
        assert!(k.verifies(q, "3C661234138461FCC7A7D8746C6558C9842D4E10870D2ECBEDF7777CAD694AF9"));
        assert!(!k.verifies(q, "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af8"));
        assert!(
            !k.verifies(&q.replace("9000", "9001"), "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9")
        );
    }

    #[test]
    fn timing_rule() {
        assert!(check_time(Some("1000"), None, 5999).is_ok());
        assert_eq!(check_time(Some("1000"), None, 6001).unwrap_err().code, -1021);
        assert!(check_time(Some("1000"), Some("10000"), 6001).is_ok());
        assert_eq!(check_time(Some("2000"), None, 1000).unwrap_err().code, -1021);
        assert!(check_time(Some("1999"), None, 1000).is_ok());
        assert_eq!(check_time(None, None, 1000).unwrap_err().code, -1102);
        assert_eq!(check_time(Some("1"), Some("60001"), 1).unwrap_err().code, -1131);
    }

    #[test]
    fn decoders() {
        assert_eq!(b64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(b64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(hex_decode("0aFf").unwrap(), [10, 255]);
        assert!(hex_decode("0g").is_none());
    }
}

//! Request signing with `ring`: HMAC-SHA256 (hex signature) and Ed25519 (PKCS#8 key, base64 signature).
//!
//! Binance: "Use your `secretKey` as the key and `totalParams` as the value for the HMAC operation"; for Ed25519 the
//! docs' sample signs the `&`-joined, name-sorted parameters and base64-encodes the 64-byte signature. Key material
//! lives in types whose `Debug` prints nothing of it. Signing writes into a fixed [`Signature`]: no heap.

use ring::hmac;
use ring::signature::Ed25519KeyPair;

use super::error::SignError;

/// Longest signature text: base64 of a 64-byte Ed25519 signature (88 characters); HMAC hex is 64.
pub const MAX_SIGNATURE_LEN: usize = 88;
/// Longest API key accepted (Binance's are 64 characters).
pub const MAX_API_KEY_LEN: usize = 128;
/// Largest PKCS#8 document accepted for an Ed25519 key (v1 is 48 bytes, v2 with the public key 83-85).
const MAX_PKCS8_BYTES: usize = 256;

/// A signature as the text Binance expects (lower-case hex for HMAC, standard base64 for Ed25519).
#[derive(Clone, Copy)]
pub struct Signature {
    text: [u8; MAX_SIGNATURE_LEN],
    len: u8,
}

impl Signature {
    /// The signature text (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len as usize]
    }

    /// The signature text.
    pub fn as_str(&self) -> &str {
        // Only hex digits and base64 characters are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.as_str())
    }
}

/// A Binance API key (sent in the clear as `apiKey` / `X-MBX-APIKEY`); `[A-Za-z0-9]` only, so it needs no escaping.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKey {
    text: [u8; MAX_API_KEY_LEN],
    len: u8,
}

impl ApiKey {
    /// Checks and copies a key.
    pub fn new(key: &str) -> Result<Self, SignError> {
        let b = key.as_bytes();
        if b.is_empty() || b.len() > MAX_API_KEY_LEN || !b.iter().all(u8::is_ascii_alphanumeric) {
            return Err(SignError::BadApiKey);
        }
        let mut text = [0u8; MAX_API_KEY_LEN];
        text[..b.len()].copy_from_slice(b);
        Ok(ApiKey { text, len: b.len() as u8 })
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len as usize]
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(<{} chars>)", self.len)
    }
}

/// How requests are signed.
pub enum Signer {
    /// HMAC-SHA256 with the API secret.
    Hmac(hmac::Key),
    /// Ed25519 with a private key (required for `session.logon`).
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signer::Hmac(_) => "Signer::Hmac(<redacted>)",
            Signer::Ed25519(_) => "Signer::Ed25519(<redacted>)",
        })
    }
}

impl Signer {
    /// An HMAC-SHA256 signer keyed with the API secret's bytes (as Binance's example: the secret text itself).
    pub fn hmac(secret: &[u8]) -> Result<Self, SignError> {
        if secret.is_empty() {
            return Err(SignError::EmptySecret);
        }
        Ok(Signer::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// An Ed25519 signer from a PKCS#8 document (DER bytes, v1 or v2).
    pub fn ed25519_pkcs8_der(der: &[u8]) -> Result<Self, SignError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map(Signer::Ed25519).map_err(|_| SignError::BadPrivateKey)
    }

    /// An Ed25519 signer from a PEM `-----BEGIN PRIVATE KEY-----` file (what `openssl genpkey -algorithm ed25519`
    /// writes, and what Binance's key generator produces).
    pub fn ed25519_pem(pem: &str) -> Result<Self, SignError> {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")
            .and_then(|r| r.trim_end().strip_suffix("-----END PRIVATE KEY-----"))
            .ok_or(SignError::BadPem)?;
        let mut der = [0u8; MAX_PKCS8_BYTES];
        let n = base64_decode(body.as_bytes(), &mut der).ok_or(SignError::BadPem)?;
        Self::ed25519_pkcs8_der(&der[..n])
    }

    /// True for an Ed25519 signer.
    pub fn is_ed25519(&self) -> bool {
        matches!(self, Signer::Ed25519(_))
    }

    /// Signs `payload`.
    pub fn sign(&self, payload: &[u8]) -> Signature {
        let mut s = Signature { text: [0; MAX_SIGNATURE_LEN], len: 0 };
        match self {
            Signer::Hmac(k) => {
                let tag = hmac::sign(k, payload);
                s.len = hex_encode(tag.as_ref(), &mut s.text) as u8;
            }
            Signer::Ed25519(k) => {
                let sig = k.sign(payload);
                s.len = base64_encode(sig.as_ref(), &mut s.text) as u8;
            }
        }
        s
    }
}

/// API key plus signer.
#[derive(Debug)]
pub struct Credentials {
    /// The API key.
    pub api_key: ApiKey,
    /// The signer.
    pub signer: Signer,
}

/// Lower-case hex of `bytes` into `out`; returns the length written (`out` must hold 2 × `bytes.len()`).
fn hex_encode(bytes: &[u8], out: &mut [u8]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 15) as usize];
    }
    2 * bytes.len()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with `=` padding) of `bytes` into `out`; returns the length written.
pub(crate) fn base64_encode(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            out[n + i] = if i <= chunk.len() { B64[(v >> (18 - 6 * i) & 63) as usize] } else { b'=' };
        }
        n += 4;
    }
    n
}

/// Decodes standard base64, skipping ASCII whitespace (PEM line breaks); `None` on a bad character, bad padding or
/// output longer than `out`.
pub(crate) fn base64_decode(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut acc, mut bits, mut n, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            _ => return None,
        };
        if pad > 0 {
            return None; // Data after padding.
        }
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (pad <= 2).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..70usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut enc = [0u8; 100];
            let n = base64_encode(&data, &mut enc);
            assert_eq!(n, len.div_ceil(3) * 4);
            let mut dec = [0u8; 100];
            assert_eq!(base64_decode(&enc[..n], &mut dec), Some(len));
            assert_eq!(&dec[..len], &data[..]);
        }
        let mut enc = [0u8; 8];
        let n = base64_encode(b"foob", &mut enc);
        assert_eq!(&enc[..n], b"Zm9vYg==");
        assert_eq!(base64_decode(b"Zm9v!", &mut enc), None);
        assert_eq!(base64_decode(b"Zm==9v", &mut enc), None);
    }

    #[test]
    fn debug_prints_no_key_material() {
        let s = Signer::hmac(b"2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9").unwrap();
        let k = ApiKey::new("dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83").unwrap();
        let text = format!("{:?}", Credentials { api_key: k, signer: s });
        assert!(!text.contains("2b5e") && !text.contains("dbef"), "{text}");
        assert!(ApiKey::new("has space").is_err());
        assert!(Signer::hmac(b"").is_err());
    }
}

//! API credentials for live order routing: only from the environment or from files readable by their owner alone
//! (mode 0600 or stricter), never from the TOML, never logged (`Debug` redacts).
//!
//! Two kinds of key, as Binance issues them: an API key with its HMAC-SHA256 secret, or an API key registered with
//! an Ed25519 public key, whose private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`, what `openssl genpkey
//! -algorithm ed25519` and Binance's key generator write) stays in a file of its own.
//!
//! Order: `$RUSTO_API_KEY` with `$RUSTO_API_SECRET` or `$RUSTO_API_ED25519_KEY_FILE` (a PEM file path); else the
//! file named by `$RUSTO_API_CREDENTIALS_FILE` or the `[secrets] credentials_file` key, holding a `key=…` line and
//! either `secret=…` or `ed25519_private_key_file=…` (a path, relative to the credentials file's directory). Both
//! kinds at once is an error, not a choice.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// `[secrets]`: where credentials live (never the credentials themselves).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// A credentials file (mode 0600).
    pub credentials_file: Option<String>,
}

crate::bounds!(SecretsConfig as _s { credentials_file: any });

/// Largest credentials or PEM file read, bytes (a PKCS#8 Ed25519 PEM is ~120; a credentials file a few lines).
const MAX_FILE_BYTES: u64 = 16 << 10;

/// How the key signs, with its secret material.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The HMAC-SHA256 secret.
    Hmac(String),
    /// The Ed25519 private key, as its PKCS#8 PEM text.
    Ed25519Pem(String),
}

/// API credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// API key.
    pub key: String,
    /// Its secret.
    pub secret: Secret,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Hmac(_) => "HMAC <redacted>",
            Secret::Ed25519Pem(_) => "Ed25519 <redacted>",
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ key: <{} chars>, secret: {:?} }}", self.key.len(), self.secret)
    }
}

/// Why credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A file could not be read.
    #[error("credentials file {0}: {1}")]
    Read(String, String),
    /// A file is readable by others.
    #[error("credentials file {0}: mode {1:o} lets others read it; chmod 600 it")]
    Permissions(String, u32),
    /// The file lacks a line.
    #[error("credentials file {0}: missing `{1}=` line")]
    Missing(String, &'static str),
    /// The file has neither an HMAC secret nor an Ed25519 key.
    #[error("credentials file {0}: missing a `secret=` (HMAC) or `ed25519_private_key_file=` (Ed25519) line")]
    NoSecret(String),
    /// Both an HMAC secret and an Ed25519 key given.
    #[error("{0}: both an HMAC secret and an Ed25519 private key are given; keep the one of this API key")]
    BothKinds(String),
    /// A file is larger than any credentials file.
    #[error("credentials file {0}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge(String),
}

/// The variable holding the API key.
pub(crate) const ENV_KEY: &str = "RUSTO_API_KEY";
/// The variable holding the API secret (HMAC).
pub(crate) const ENV_SECRET: &str = "RUSTO_API_SECRET";
/// The variable naming the Ed25519 private key's PEM file.
pub(crate) const ENV_ED25519_FILE: &str = "RUSTO_API_ED25519_KEY_FILE";
/// The variable naming a credentials file.
pub(crate) const ENV_FILE: &str = "RUSTO_API_CREDENTIALS_FILE";
/// The credentials-file line naming the Ed25519 private key's PEM file.
const FILE_ED25519: &str = "ed25519_private_key_file";

/// Where credentials belong (the places [`load`] reads), for the refusal of a credential found anywhere else.
pub(crate) fn where_they_belong() -> String {
    format!(
        "credentials are never read from the config file: set {ENV_KEY} and {ENV_SECRET} (HMAC) or \
         {ENV_ED25519_FILE} (an Ed25519 private key's PEM file, chmod 600) in the environment, or put a `key=...` \
         line and a `secret=...` or `{FILE_ED25519}=...` line in a file only its owner can read (chmod 600) and \
         name it in {ENV_FILE} or in `[secrets] credentials_file`"
    )
}

/// Reads a file only its owner can access (bounded), refusing one that group or others can.
fn read_private(path: &Path) -> Result<String, SecretsError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| SecretsError::Read(p.clone(), e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::Permissions(p, mode));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SecretsError::TooLarge(p));
    }
    std::fs::read_to_string(path).map_err(|e| SecretsError::Read(p, e.to_string()))
}

/// The Ed25519 key's PEM text from its file (private, bounded; parsed by the signer).
fn ed25519_pem(path: &Path) -> Result<Secret, SecretsError> {
    read_private(path).map(Secret::Ed25519Pem)
}

/// The secret of `key` from an HMAC secret or an Ed25519 PEM path, exactly one of them (`what` names the source).
fn one_secret(what: &str, hmac: Option<String>, pem: Option<PathBuf>) -> Result<Option<Secret>, SecretsError> {
    match (hmac, pem) {
        (Some(_), Some(_)) => Err(SecretsError::BothKinds(what.to_string())),
        (Some(s), None) => Ok(Some(Secret::Hmac(s))),
        (None, Some(p)) => ed25519_pem(&p).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads a credentials file, refusing one (or an Ed25519 PEM file it names) that group or others can access.
pub(crate) fn from_file(path: &Path) -> Result<Credentials, SecretsError> {
    let p = path.display().to_string();
    let text = read_private(path)?;
    let get = |k: &str| -> Option<String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).and_then(|r| r.strip_prefix('=')).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    let key = get("key").ok_or(SecretsError::Missing(p.clone(), "key"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let pem = get(FILE_ED25519).map(|f| dir.join(f));
    let secret = one_secret(&p, get("secret"), pem)?.ok_or(SecretsError::NoSecret(p))?;
    Ok(Credentials { key, secret })
}

/// Loads credentials by the order in the module doc; `Ok(None)` when none are configured (paper trading).
pub fn load(cfg: &SecretsConfig) -> Result<Option<Credentials>, SecretsError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(key) = env(ENV_KEY) {
        let what = format!("{ENV_SECRET} and {ENV_ED25519_FILE}");
        if let Some(secret) = one_secret(&what, env(ENV_SECRET), env(ENV_ED25519_FILE).map(PathBuf::from))? {
            return Ok(Some(Credentials { key, secret }));
        }
    }
    match env(ENV_FILE).or_else(|| cfg.credentials_file.clone()) {
        Some(f) => from_file(Path::new(&f)).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(f: &Path, text: &str) {
        std::fs::write(f, text).unwrap();
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn file_must_be_private_and_debug_redacts() {
        let f = crate::app::test_dir("secrets").join("creds");
        std::fs::write(&f, "key=AKEY123\nsecret=S3CR3T\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains("S3CR3T"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = from_file(&f).unwrap();
        assert_eq!((c.key.as_str(), &c.secret), ("AKEY123", &Secret::Hmac("S3CR3T".into())));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("S3CR3T") && !dbg.contains("AKEY123") && dbg.contains("HMAC"), "{dbg}");
        std::fs::write(&f, "key=A\n").unwrap();
        let e = from_file(&f).unwrap_err().to_string();
        assert!(e.contains("secret=") && e.contains("ed25519_private_key_file="), "{e}");
        std::fs::write(&f, "secret=S\n").unwrap();
        assert!(from_file(&f).unwrap_err().to_string().contains("missing `key=`"));
        assert!(load(&SecretsConfig::default()).is_ok());
    }

    #[test]
    fn an_ed25519_key_file_is_named_relative_private_and_exclusive_of_a_secret() {
        let d = crate::app::test_dir("secrets-ed25519");
        let (creds, pem) = (d.join("creds"), d.join("key.pem"));
        // RFC 8410 section 10.3's example private key (https://www.rfc-editor.org/rfc/rfc8410#section-10.3).
        let text = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        std::fs::write(&pem, text).unwrap();
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o640)).unwrap();
        private(&creds, "key=EDKEY\ned25519_private_key_file=key.pem\n");
        let e = from_file(&creds).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("chmod 600") && !e.contains("MC4C"), "{e}");
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = from_file(&creds).unwrap();
        assert_eq!((c.key.as_str(), &c.secret), ("EDKEY", &Secret::Ed25519Pem(text.into())));
        let dbg = format!("{c:?}");
        assert!(dbg.contains("Ed25519") && !dbg.contains("MC4C") && !dbg.contains("EDKEY"), "{dbg}");
        private(&creds, "key=EDKEY\nsecret=S3CR3T\ned25519_private_key_file=key.pem\n");
        let e = from_file(&creds).unwrap_err().to_string();
        assert!(e.contains("both an HMAC secret and an Ed25519 private key") && !e.contains("S3CR3T"), "{e}");
        // The environment's pair: the same rule.
        let e = one_secret("env", Some("S".into()), Some(pem.clone())).unwrap_err().to_string();
        assert!(e.starts_with("env: both"), "{e}");
        assert_eq!(one_secret("env", None, Some(pem)).unwrap(), Some(Secret::Ed25519Pem(text.into())));
        assert_eq!(one_secret("env", None, None).unwrap(), None);
        let big = d.join("big.pem");
        private(&big, &"A".repeat(MAX_FILE_BYTES as usize + 1));
        assert!(matches!(one_secret("env", None, Some(big)), Err(SecretsError::TooLarge(_))));
    }
}

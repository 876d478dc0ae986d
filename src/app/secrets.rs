//! API credentials (for live order routing, later): only from the environment or from a file readable by its owner
//! alone (mode 0600 or stricter), never from the TOML, never logged (`Debug` redacts).
//!
//! Order: `$RUSTO_API_KEY` + `$RUSTO_API_SECRET`; else the file named by `$RUSTO_API_CREDENTIALS_FILE` or the
//! `[secrets] credentials_file` key, holding `key=…` and `secret=…` lines.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `[secrets]`: where credentials live (never the credentials themselves).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// A credentials file (mode 0600).
    pub credentials_file: Option<String>,
}

crate::bounds!(SecretsConfig as _s { credentials_file: any });

/// API credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// API key.
    pub key: String,
    /// API secret.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ key: <{} chars>, secret: <redacted> }}", self.key.len())
    }
}

/// Why credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The file could not be read.
    #[error("credentials file {0}: {1}")]
    Read(String, String),
    /// The file is readable by others.
    #[error("credentials file {0}: mode {1:o} lets others read it; chmod 600 it")]
    Permissions(String, u32),
    /// The file lacks a line.
    #[error("credentials file {0}: missing `{1}=` line")]
    Missing(String, &'static str),
}

/// The variable holding the API key.
pub(crate) const ENV_KEY: &str = "RUSTO_API_KEY";
/// The variable holding the API secret.
pub(crate) const ENV_SECRET: &str = "RUSTO_API_SECRET";
/// The variable naming a credentials file.
pub(crate) const ENV_FILE: &str = "RUSTO_API_CREDENTIALS_FILE";

/// Where credentials belong (the places [`load`] reads), for the refusal of a credential found anywhere else.
pub(crate) fn where_they_belong() -> String {
    format!(
        "credentials are never read from the config file: set {ENV_KEY} and {ENV_SECRET} in the environment, or \
         put `key=...` and `secret=...` lines in a file only its owner can read (chmod 600) and name it in \
         {ENV_FILE} or in `[secrets] credentials_file`"
    )
}

/// Reads a credentials file, refusing one that group or others can access.
pub(crate) fn from_file(path: &Path) -> Result<Credentials, SecretsError> {
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| SecretsError::Read(p.clone(), e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::Permissions(p, mode));
    }
    let text = std::fs::read_to_string(path).map_err(|e| SecretsError::Read(p.clone(), e.to_string()))?;
    let get = |k: &'static str| -> Result<String, SecretsError> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(k).and_then(|r| r.strip_prefix('=')).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
            .ok_or(SecretsError::Missing(p.clone(), k))
    };
    Ok(Credentials { key: get("key")?, secret: get("secret")? })
}

/// Loads credentials by the order in the module doc; `Ok(None)` when none are configured (paper trading).
pub fn load(cfg: &SecretsConfig) -> Result<Option<Credentials>, SecretsError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(key), Some(secret)) = (env(ENV_KEY), env(ENV_SECRET)) {
        return Ok(Some(Credentials { key, secret }));
    }
    match env(ENV_FILE).or_else(|| cfg.credentials_file.clone()) {
        Some(f) => from_file(Path::new(&f)).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_must_be_private_and_debug_redacts() {
        let f = crate::app::test_dir("secrets").join("creds");
        std::fs::write(&f, "key=AKEY123\nsecret=S3CR3T\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = from_file(&f).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains("S3CR3T"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = from_file(&f).unwrap();
        assert_eq!((c.key.as_str(), c.secret.as_str()), ("AKEY123", "S3CR3T"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("S3CR3T") && !dbg.contains("AKEY123"), "{dbg}");
        std::fs::write(&f, "key=A\n").unwrap();
        assert!(from_file(&f).unwrap_err().to_string().contains("secret="));
        assert!(load(&SecretsConfig::default()).is_ok());
    }
}

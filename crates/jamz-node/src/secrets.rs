//! Where the login token lives: the OS keyring (Secret Service on Linux,
//! Keychain on macOS, Credential Manager on Windows) through the `keyring`
//! crate, or, where no keyring answers (a headless node, CI), the 0600
//! credentials file itself. [`crate::account::CredentialStore`] decides; this
//! module only talks to the keyring.

use serde::{Deserialize, Serialize};

/// The service name of the node's keyring entries.
pub const KEYRING_SERVICE: &str = "app.trafficjamz.client";

/// `JAMZ_TOKEN_STORE=file` keeps the token in the credentials file even where a
/// keyring answers (`keyring`, the default, tries the keyring first).
pub const TOKEN_STORE_ENV: &str = "JAMZ_TOKEN_STORE";

/// Which store holds the saved login's token (shown by `status` and the app).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenStore {
    /// The OS keyring.
    Keyring,
    /// The credentials file (mode 0600 in a 0700 directory).
    File,
}

/// A keyring failure, as words (the crates' errors differ per platform).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SecretError(pub String);

/// A place for secrets outside the credentials file. The real one is
/// [`OsKeyring`]; tests may use another behind this same trait.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// Creates or replaces the secret of `account`.
    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError>;
    /// The secret of `account`, `None` when there is none.
    fn get(&self, account: &str) -> Result<Option<String>, SecretError>;
    /// Removes the secret of `account` (none: nothing to do).
    fn delete(&self, account: &str) -> Result<(), SecretError>;
}

/// The platform's keyring.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
}

impl Default for OsKeyring {
    fn default() -> Self {
        Self::new(KEYRING_SERVICE)
    }
}

impl OsKeyring {
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, account).map_err(describe)
    }
}

impl SecretStore for OsKeyring {
    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        self.entry(account)?.set_password(secret).map_err(describe)
    }

    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        match self.entry(account)?.get_password() {
            Ok(s) => Ok(Some(s)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(describe(e)),
        }
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(e)),
        }
    }
}

fn describe(e: keyring::Error) -> SecretError {
    SecretError(match e {
        keyring::Error::NoDefaultStore => "no keyring on this system".to_owned(),
        other => other.to_string(),
    })
}

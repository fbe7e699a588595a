//! Where a face keeps its files: the config directory (the saved login, a hosted
//! session's data) and the track cache. An environment variable overrides each
//! (tests, kiosks, several identities on one machine); else the platform decides.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::account::CredentialStore;
use crate::error::NodeError;

/// Overrides the config directory.
pub const CONFIG_DIR_ENV: &str = "JAMZ_CONFIG_DIR";

/// Overrides the track cache directory.
pub const CACHE_DIR_ENV: &str = "JAMZ_CACHE_DIR";

/// `$JAMZ_CONFIG_DIR`, else the platform config dir + `jamz` (`~/.config/jamz`).
pub fn config_dir() -> Result<PathBuf, NodeError> {
    overridden(CONFIG_DIR_ENV, || {
        ::dirs::config_dir().map(|d| d.join("jamz"))
    })
    .ok_or(NodeError::NoConfigDir)
}

/// `$JAMZ_CACHE_DIR`, else the platform cache dir + `jamz` (`~/.cache/jamz`).
pub fn cache_dir() -> Result<PathBuf, NodeError> {
    overridden(CACHE_DIR_ENV, || {
        ::dirs::cache_dir().map(|d| d.join("jamz"))
    })
    .ok_or(NodeError::NoCacheDir)
}

/// The variable `env` when set and not empty, else `platform()` (asked only then:
/// a platform lookup may fail where the override makes it unnecessary).
fn overridden(env: &str, platform: impl FnOnce() -> Option<PathBuf>) -> Option<PathBuf> {
    first_set(std::env::var_os(env), platform)
}

fn first_set(
    value: Option<OsString>,
    platform: impl FnOnce() -> Option<PathBuf>,
) -> Option<PathBuf> {
    value
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(platform)
}

/// Both directories of a face that keeps state between commands (the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub config: PathBuf,
    /// The track cache (the node's `cache_dir`).
    pub cache: PathBuf,
}

impl Dirs {
    /// The overrides, else the directories the platform gives this app (a phone's
    /// app sandbox: `config` and `cache` are asked only when no override is set).
    pub fn resolve(
        config: impl FnOnce() -> Option<PathBuf>,
        cache: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Dirs, NodeError> {
        Ok(Dirs {
            config: overridden(CONFIG_DIR_ENV, config).ok_or(NodeError::NoConfigDir)?,
            cache: overridden(CACHE_DIR_ENV, cache).ok_or(NodeError::NoCacheDir)?,
        })
    }

    /// The saved login.
    pub fn credentials(&self) -> CredentialStore {
        CredentialStore::with_os_keyring(&self.config)
    }

    /// A session this device hosts keeps its database and files here (reused, so
    /// a hosted session survives a restart).
    pub fn hosted_session(&self) -> PathBuf {
        self.config.join("hosted-session")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_wins_and_the_platform_is_asked_only_without_one() {
        let got = first_set(Some("/x".into()), || panic!("platform asked"));
        assert_eq!(got, Some(PathBuf::from("/x")));
        let got = first_set(Some("".into()), || Some(PathBuf::from("/p")));
        assert_eq!(got, Some(PathBuf::from("/p")), "an empty override is unset");
        assert_eq!(first_set(None, || None), None);
    }

    #[test]
    fn a_face_keeps_its_login_and_hosted_session_under_config() {
        let dirs = Dirs {
            config: "/c".into(),
            cache: "/k".into(),
        };
        assert_eq!(
            dirs.credentials().path(),
            PathBuf::from("/c/credentials.json")
        );
        assert_eq!(dirs.hosted_session(), PathBuf::from("/c/hosted-session"));
    }
}

//! Accounts: the saved token (one file under the platform config dir, mode 0600)
//! and the REST helpers every face needs (register, login, a client with the
//! saved token).

use std::path::{Path, PathBuf};

use jamz_link::RestClient;
use jamz_proto::UserId;
use jamz_proto::rest::AuthResponse;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

pub use crate::directories::CONFIG_DIR_ENV;

/// File name of the saved credentials inside the config directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// A login kept between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// The backend's base URL, as given at login.
    pub server: String,
    pub username: String,
    pub user_id: UserId,
    pub token: String,
}

/// Where credentials are kept: `<config dir>/credentials.json`.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

impl CredentialStore {
    /// `$JAMZ_CONFIG_DIR`, else the platform config dir + `jamz`
    /// (`~/.config/jamz` on Linux).
    pub fn default_location() -> Result<Self, NodeError> {
        Ok(Self::at(crate::directories::config_dir()?))
    }

    /// A store in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CredentialStore { dir: dir.into() }
    }

    /// The credentials file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The saved credentials, `None` if there are none.
    pub fn load(&self) -> Result<Option<Credentials>, NodeError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NodeError::io(path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| NodeError::Credentials {
                path,
                message: e.to_string(),
            })
    }

    /// Saves `creds`: the directory is created 0700, the file written 0600 to a
    /// temporary name and renamed over the old one (never half-written, never
    /// readable by others even for a moment).
    pub fn save(&self, creds: &Credentials) -> Result<(), NodeError> {
        create_private_dir(&self.dir)?;
        let path = self.path();
        let tmp = self.dir.join(format!("{CREDENTIALS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(creds).map_err(|e| NodeError::Credentials {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_private(&tmp, &json)?;
        std::fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))
    }

    /// Forgets the saved credentials.
    pub fn clear(&self) -> Result<(), NodeError> {
        match std::fs::remove_file(self.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NodeError::io(self.path(), e)),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| NodeError::io(dir, e))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| NodeError::io(path, e))?;
    // The umask cannot widen 0600, but an existing file's mode is kept by open:
    // set it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| NodeError::io(path, e))?;
    f.write_all(data).map_err(|e| NodeError::io(path, e))?;
    f.sync_all().map_err(|e| NodeError::io(path, e))
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    std::fs::write(path, data).map_err(|e| NodeError::io(path, e))
}

/// Same backend? Compares URLs without a trailing slash.
fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Registers a new account and saves its token.
pub async fn register(
    store: &CredentialStore,
    server: &str,
    username: &str,
    email: &str,
    password: &str,
) -> Result<Credentials, NodeError> {
    let auth = RestClient::new(server)?
        .register(username, email, password)
        .await?;
    save_login(store, server, auth)
}

/// Logs in and saves the token.
pub async fn login(
    store: &CredentialStore,
    server: &str,
    username: &str,
    password: &str,
) -> Result<Credentials, NodeError> {
    let auth = RestClient::new(server)?.login(username, password).await?;
    save_login(store, server, auth)
}

/// Saves the login that `server` answered with.
fn save_login(
    store: &CredentialStore,
    server: &str,
    auth: AuthResponse,
) -> Result<Credentials, NodeError> {
    let creds = Credentials {
        server: server.to_owned(),
        username: auth.user.username,
        user_id: auth.user.id,
        token: auth.token,
    };
    store.save(&creds)?;
    Ok(creds)
}

/// A REST client for `server` (default: the saved one) carrying the saved token.
pub fn saved_client(
    store: &CredentialStore,
    server: Option<&str>,
) -> Result<(RestClient, Credentials), NodeError> {
    let creds = store.load()?;
    let creds = match (creds, server) {
        (Some(c), Some(s)) if !same_server(&c.server, s) => {
            return Err(NodeError::NotLoggedIn { server: s.into() });
        }
        (Some(c), _) => c,
        (None, s) => {
            return Err(NodeError::NotLoggedIn {
                server: s.unwrap_or("any server").into(),
            });
        }
    };
    let rest = RestClient::new(&creds.server)?;
    rest.set_token(Some(creds.token.clone()));
    Ok((rest, creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_credentials_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("cfg"));
        assert_eq!(store.load().unwrap(), None);
        let c = Credentials {
            server: "http://127.0.0.1:5050".into(),
            username: "ann".into(),
            user_id: 3,
            token: "t".into(),
        };
        store.save(&c).unwrap();
        store.save(&c).unwrap();
        assert_eq!(store.load().unwrap(), Some(c.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(dir.path().join("cfg"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o077, 0, "config dir readable by others");
        }
        let (_, got) = saved_client(&store, Some("http://127.0.0.1:5050/")).unwrap();
        assert_eq!(got, c);
        assert!(matches!(
            saved_client(&store, Some("http://other:1")),
            Err(NodeError::NotLoggedIn { .. })
        ));
        store.clear().unwrap();
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_corrupt_credentials_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path());
        std::fs::write(store.path(), "{nope").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("credentials.json"), "{e}");
    }
}

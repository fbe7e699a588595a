//! Accounts: the saved login (the token in the OS keyring, or where none
//! answers in the credentials file, mode 0600; see [`crate::secrets`]) and the
//! REST helpers every face needs (register, login, logout, password, a client
//! with the saved token).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jamz_link::RestClient;
use jamz_proto::UserId;
use jamz_proto::rest::AuthResponse;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::secrets::{OsKeyring, SecretStore, TOKEN_STORE_ENV, TokenStore};

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

/// The credentials file: everything but the token when the keyring holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CredentialsFile {
    pub server: String,
    pub username: String,
    pub user_id: UserId,
    /// Absent when `token_store` is the keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Files written before the keyring existed hold the token themselves.
    #[serde(default = "file_store")]
    pub token_store: TokenStore,
}

fn file_store() -> TokenStore {
    TokenStore::File
}

impl CredentialsFile {
    /// Reads a credentials file's text; any malformed text is an error that
    /// names what is wrong, never a panic.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let file: CredentialsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match (file.token_store, &file.token) {
            (TokenStore::File, None) => Err("no token in the file".into()),
            _ => Ok(file),
        }
    }
}

/// Where credentials are kept: `<config dir>/credentials.json`, and the token in
/// the OS keyring when one answers.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
    /// `None`: the token stays in the file.
    keyring: Option<Arc<dyn SecretStore>>,
}

impl CredentialStore {
    /// `$JAMZ_CONFIG_DIR`, else the platform config dir + `jamz`
    /// (`~/.config/jamz` on Linux), with the token in the OS keyring unless
    /// `JAMZ_TOKEN_STORE=file`.
    pub fn default_location() -> Result<Self, NodeError> {
        Ok(Self::with_os_keyring(crate::directories::config_dir()?))
    }

    /// A store in `dir` keeping the token in the credentials file.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CredentialStore {
            dir: dir.into(),
            keyring: None,
        }
    }

    /// A store in `dir` keeping the token in the OS keyring (when one answers),
    /// unless `JAMZ_TOKEN_STORE=file`.
    pub fn with_os_keyring(dir: impl Into<PathBuf>) -> Self {
        let file_only =
            std::env::var(TOKEN_STORE_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("file"));
        let store = Self::at(dir);
        if file_only {
            store
        } else {
            store.with_keyring(Arc::new(OsKeyring::default()))
        }
    }

    /// This store keeping tokens in `keyring` when it answers.
    pub fn with_keyring(mut self, keyring: Arc<dyn SecretStore>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The directory it keeps its files in (also this device's mesh key, see
    /// [`crate::device_key`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The credentials file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The keyring entry of a login: one per account, server and config
    /// directory (two directories never share, or delete, each other's token).
    fn keyring_account(&self, server: &str, username: &str) -> String {
        format!(
            "{username}@{} ({})",
            server.trim_end_matches('/'),
            self.dir.display()
        )
    }

    fn error(&self, message: impl Into<String>) -> NodeError {
        NodeError::Credentials {
            path: self.path(),
            message: message.into(),
        }
    }

    fn read_file(&self) -> Result<Option<CredentialsFile>, NodeError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NodeError::io(path, e)),
        };
        CredentialsFile::parse(&text)
            .map(Some)
            .map_err(|m| self.error(m))
    }

    /// Which store holds the saved token (`None`: nothing saved). Reads only
    /// the file, never the keyring.
    pub fn token_store(&self) -> Result<Option<TokenStore>, NodeError> {
        Ok(self.read_file()?.map(|f| f.token_store))
    }

    /// The saved credentials, `None` if there are none.
    pub fn load(&self) -> Result<Option<Credentials>, NodeError> {
        let Some(file) = self.read_file()? else {
            return Ok(None);
        };
        let token = match (file.token_store, file.token) {
            (TokenStore::File, Some(t)) => t,
            (TokenStore::File, None) => return Err(self.error("no token in the file")),
            (TokenStore::Keyring, _) => {
                let keyring = self.keyring.as_ref().ok_or_else(|| {
                    self.error(format!(
                        "the token is in the OS keyring, which {TOKEN_STORE_ENV}=file turns off: log in again"
                    ))
                })?;
                let account = self.keyring_account(&file.server, &file.username);
                match keyring.get(&account) {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        return Err(
                            self.error("the token is no longer in the OS keyring: log in again")
                        );
                    }
                    Err(e) => {
                        return Err(self.error(format!(
                            "the token is in the OS keyring, which does not answer ({e}): log in again"
                        )));
                    }
                }
            }
        };
        Ok(Some(Credentials {
            server: file.server,
            username: file.username,
            user_id: file.user_id,
            token,
        }))
    }

    /// Saves `creds`: the token into the keyring when one answers (else into
    /// the file); the directory is created 0700, the file written 0600 to a
    /// temporary name and renamed over the old one (never half-written, never
    /// readable by others even for a moment). Returns where the token went.
    pub fn save(&self, creds: &Credentials) -> Result<TokenStore, NodeError> {
        create_private_dir(&self.dir)?;
        // A token of an earlier login under another name must not linger.
        let earlier = self.read_file().ok().flatten();
        let account = self.keyring_account(&creds.server, &creds.username);
        let in_keyring = match &self.keyring {
            Some(k) => match k.set(&account, &creds.token) {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(error = %e, "no OS keyring answers: the token goes into the credentials file");
                    false
                }
            },
            None => false,
        };
        let file = CredentialsFile {
            server: creds.server.clone(),
            username: creds.username.clone(),
            user_id: creds.user_id,
            token: (!in_keyring).then(|| creds.token.clone()),
            token_store: if in_keyring {
                TokenStore::Keyring
            } else {
                TokenStore::File
            },
        };
        let path = self.path();
        let tmp = self.dir.join(format!("{CREDENTIALS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(&file).map_err(|e| self.error(e.to_string()))?;
        write_private(&tmp, &json)?;
        std::fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))?;
        if let Some(earlier) = earlier {
            let old = self.keyring_account(&earlier.server, &earlier.username);
            if earlier.token_store == TokenStore::Keyring && (old != account || !in_keyring) {
                self.forget_in_keyring(&old);
            }
        }
        Ok(file.token_store)
    }

    fn forget_in_keyring(&self, account: &str) {
        if let Some(k) = &self.keyring
            && let Err(e) = k.delete(account)
        {
            tracing::warn!(error = %e, "could not remove the token from the OS keyring");
        }
    }

    /// Forgets the saved credentials (the keyring's entry too).
    pub fn clear(&self) -> Result<(), NodeError> {
        if let Ok(Some(file)) = self.read_file()
            && file.token_store == TokenStore::Keyring
        {
            self.forget_in_keyring(&self.keyring_account(&file.server, &file.username));
        }
        match std::fs::remove_file(self.path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NodeError::io(self.path(), e)),
        }
    }
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| NodeError::io(dir, e))
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), NodeError> {
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
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
pub(crate) fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
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

/// How a logout went: the saved login is always forgotten on this device; the
/// server revokes the account's tokens when it can be reached.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogoutOutcome {
    /// The server revoked every token of the account (on all its devices).
    pub revoked_on_server: bool,
    /// Why it could not, when it could not.
    pub problem: Option<String>,
}

/// Logs out: asks the server to revoke every token of the saved account, then
/// forgets the saved login whatever the server said (signing out of this
/// device never depends on the network). Nothing saved: nothing to do.
pub async fn logout(store: &CredentialStore) -> Result<LogoutOutcome, NodeError> {
    let Some(creds) = store.load()? else {
        return Ok(LogoutOutcome {
            revoked_on_server: false,
            problem: Some("no saved login".into()),
        });
    };
    let rest = RestClient::new(&creds.server)?;
    rest.set_token(Some(creds.token.clone()));
    let outcome = match rest.logout().await {
        Ok(()) => LogoutOutcome {
            revoked_on_server: true,
            problem: None,
        },
        // Already revoked (a logout elsewhere, a password change): nothing left to revoke.
        Err(e) if e.status() == Some(401) => LogoutOutcome {
            revoked_on_server: true,
            problem: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "logout: the server did not revoke the token");
            LogoutOutcome {
                revoked_on_server: false,
                problem: Some(e.to_string()),
            }
        }
    };
    store.clear()?;
    Ok(outcome)
}

/// Changes the saved account's password; every earlier token of the account is
/// revoked and the fresh one the server answers with is saved.
pub async fn change_password(
    store: &CredentialStore,
    current_password: &str,
    new_password: &str,
) -> Result<Credentials, NodeError> {
    let (rest, creds) = saved_client(store, None)?;
    let auth = rest.change_password(current_password, new_password).await?;
    save_login(store, &creds.server, auth)
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

    fn ann() -> Credentials {
        Credentials {
            server: "http://127.0.0.1:5050".into(),
            username: "ann".into(),
            user_id: 3,
            token: "secret-token".into(),
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The real OS keyring of wherever this runs: a desktop keeps the token
    /// there, a machine where no keyring answers (CI, this test's usual home)
    /// falls back to the 0600 file. Either way the login round-trips and the
    /// file says where the token is.
    #[test]
    fn the_os_keyring_or_else_the_file_keeps_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("cfg"))
            .with_keyring(Arc::new(OsKeyring::new("app.trafficjamz.unit-test")));
        let c = ann();
        let kept = store.save(&c).unwrap();
        eprintln!("token kept in: {kept:?}");
        assert_eq!(store.token_store().unwrap(), Some(kept));
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert_eq!(
            text.contains("secret-token"),
            kept == TokenStore::File,
            "{text}"
        );
        #[cfg(unix)]
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(store.load().unwrap(), Some(c));
        store.clear().unwrap();
        assert_eq!(store.load().unwrap(), None);
        assert_eq!(store.token_store().unwrap(), None);
    }

    #[test]
    fn a_file_from_before_the_keyring_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path());
        std::fs::write(
            store.path(),
            r#"{"server":"http://s","username":"ann","user_id":3,"token":"t"}"#,
        )
        .unwrap();
        assert_eq!(store.token_store().unwrap(), Some(TokenStore::File));
        assert_eq!(store.load().unwrap().unwrap().token, "t");
    }

    #[test]
    fn a_keyring_login_read_without_the_keyring_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path());
        std::fs::write(
            store.path(),
            r#"{"server":"http://s","username":"ann","user_id":3,"token_store":"keyring"}"#,
        )
        .unwrap();
        assert_eq!(store.token_store().unwrap(), Some(TokenStore::Keyring));
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("log in again"), "{e}");
        // A file-kept login without its token is refused too.
        std::fs::write(
            store.path(),
            r#"{"server":"http://s","username":"ann","user_id":3,"token_store":"file"}"#,
        )
        .unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("no token"), "{e}");
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

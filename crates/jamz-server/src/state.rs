//! What every handler shares.
use std::sync::Arc;

use crate::auth::TokenKeys;
use crate::db::Db;
use crate::error::ApiError;
use crate::grants::GrantSigner;
use crate::hasher::Hasher;
use crate::live::LiveSessions;
use crate::store::FileStore;
use crate::throttle::Throttle;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: TokenKeys,
    /// Signs controller grants (docs/protocol.md, "Controller grants").
    pub grants: Arc<GrantSigner>,
    pub store: FileStore,
    pub live: Arc<LiveSessions>,
    /// What `GET /metrics` shows.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub io: crate::cluster::Io,
    /// The base of absolute file URLs when set (`--public-url`); else the
    /// request's Host.
    pub public_url: Option<String>,
    /// Largest accepted upload, bytes.
    pub upload_limit: u64,
    /// Slowest accepted upload, bytes/s on average after [`crate::store::UPLOAD_GRACE`].
    pub upload_min_rate: u64,
    pub hasher: Hasher,
    /// Logins and username lookups, per account and per client address.
    pub throttle: Arc<Throttle>,
}

/// What a client is told to wait when the hashing pool is full: a check takes
/// a fraction of a second, so the queue drains within one.
const BUSY_RETRY_SECS: u64 = 1;

impl AppState {
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        self.hasher
            .hash(password)
            .await
            .map_err(|_| ApiError::Busy(BUSY_RETRY_SECS))?
            .ok_or_else(|| ApiError::Internal("hash password failed".into()))
    }

    /// Whether `password` matches `hash` (`None`: unknown user, same work, false).
    pub async fn verify_password(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, ApiError> {
        self.hasher
            .verify(password, hash)
            .await
            .map_err(|_| ApiError::Busy(BUSY_RETRY_SECS))
    }
}

/// The Socket.IO room of a session (docs/protocol.md: `audio-<sessionId>`).
pub fn room(session_id: &str) -> String {
    format!("audio-{session_id}")
}

/// A state over a fresh database in `dir`, for in-process tests.
#[cfg(test)]
pub async fn test_state(dir: &std::path::Path) -> AppState {
    let (_layer, io) = socketioxide::SocketIo::builder()
        .with_adapter::<crate::cluster::Adapter>(
            crate::cluster::ClusterDriver::local().adapter_state("jamz-test"),
        )
        .build_layer();
    // Broadcasts go to the default namespace, which must exist.
    io.ns("/", async |_s: crate::cluster::Sock| {})
        .await
        .unwrap();
    AppState {
        db: Db::open(&dir.join("jamz.db").into()).await.unwrap(),
        keys: TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef"),
        grants: Arc::new(GrantSigner::from_seed([7; 32])),
        store: FileStore::open(&dir.join("files")).unwrap(),
        live: Arc::new(LiveSessions::default()),
        metrics: Arc::new(crate::metrics::Metrics::default()),
        io,
        public_url: None,
        upload_limit: 1024 * 1024,
        upload_min_rate: 1,
        hasher: Hasher::start(1, 4).unwrap(),
        throttle: Arc::new(Throttle::new(
            crate::throttle::Rate {
                attempts: 10,
                window: std::time::Duration::from_secs(60),
            },
            crate::throttle::Rate {
                attempts: 10,
                window: std::time::Duration::from_secs(60),
            },
        )),
    }
}

//! The reference TrafficJamz backend: every REST route and Socket.IO event of
//! `docs/protocol.md`, on SQLite and a content-addressed file store.
//!
//! Run it as the `jamz-server` binary, or embed it (the app's "this device
//! hosts the session" mode) with [`bind`] and [`BoundServer::run`].
mod args;
mod auth;
mod clock;
mod cluster;
mod conn;
mod db;
mod error;
mod fsperm;
mod grants;
mod hasher;
mod live;
mod metrics;
mod playlist;
mod probe;
mod realtime;
mod rest;
mod service;
mod shutdown;
mod state;
mod store;
mod throttle;
mod tls;

#[cfg(test)]
#[path = "../tests/support/postgres.rs"]
mod test_postgres;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use socketioxide::SocketIo;

use crate::cluster::{Adapter, ClusterDriver, Io};

pub use args::ServerArgs;
pub use db::DbLocation;
pub use error::ApiError;
pub use rest::Limits;

/// Engine.IO's defaults (engine.io `pingInterval` 25 s, `pingTimeout` 20 s),
/// which the web app's clients expect.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest Socket.IO packet accepted: a 10,000-track `playlist-update` fits.
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 8 * 1024 * 1024;
/// Packets waiting for one slow socket before further ones to it are dropped
/// (socketioxide's default is 128). A DJ scrubbing sends bursts of seeks and a
/// listener on a congested LTE link drains slowly: room for a few seconds of that.
const SOCKET_SEND_BUFFER_PACKETS: usize = 2048;
/// The prefix of the Redis channels and keys of one deployment's processes.
pub const DEFAULT_REDIS_PREFIX: &str = "jamz";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// A SQLite file or a PostgreSQL URL (docs/architecture.md, "Storage").
    pub db: DbLocation,
    pub data_dir: PathBuf,
    /// Signs tokens. `None`: read from (or created in) `<data_dir>/jwt-secret`,
    /// so tokens stay valid across restarts.
    pub jwt_secret: Option<String>,
    pub public_url: Option<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_event_bytes: u64,
    pub limits: Limits,
    /// Threads checking passwords (each check holds about 19 MiB).
    pub hash_workers: usize,
    /// Password checks that may wait for a thread; past it, 503.
    pub hash_queue: usize,
    /// Login attempts per account, and per client address, per `login_window`.
    pub login_per_account: u32,
    pub login_per_address: u32,
    pub login_window: Duration,
    /// Time a client has to send a request's head, and to start the next one on
    /// a kept-alive connection.
    pub header_read_timeout: Duration,
    /// No byte either way for this long ends a connection. Raised to outlast
    /// the Engine.IO ping cycle if set lower.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Uploads slower than this (on average, after a grace period) are cut.
    pub upload_min_bytes_per_sec: u64,
    /// https/wss with this certificate chain and key (PEM files); plain http without.
    pub tls: Option<TlsFiles>,
    /// Redis (`redis://host:port/`): several processes as one (deploy/scale-out.md):
    /// relays reach the room's sockets on every process. `None`: this process alone.
    pub redis: Option<String>,
    /// The prefix of this deployment's Redis channels and keys (several deployments, or
    /// test runs, on one Redis keep apart by it).
    pub redis_prefix: String,
}

/// The PEM files of a TLS server: the certificate (then its chain) and the private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_MAX_CONNECTIONS: usize = 768;
/// A device runs a few sockets and downloads at once; a web app and a node on
/// one laptop, a few more. Far below what starves the process's descriptors.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// 4 KiB/s: a phone on a weak link still makes it; a client trickling a byte a
/// second to hold a connection does not.
pub const DEFAULT_UPLOAD_MIN_BYTES_PER_SEC: u64 = 4096;

/// Password checks that may wait: at a few hundred ms each on 2 cores, the
/// last of them is answered within a few seconds.
pub const DEFAULT_HASH_QUEUE: usize = 16;
pub const DEFAULT_LOGIN_PER_ACCOUNT: u32 = 10;
pub const DEFAULT_LOGIN_PER_ADDRESS: u32 = 60;
pub const DEFAULT_LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// About the core count: argon2 is CPU-bound, more threads only add memory.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl ServerConfig {
    pub fn new(bind: SocketAddr, db: impl Into<DbLocation>, data_dir: PathBuf) -> Self {
        Self {
            bind,
            db: db.into(),
            data_dir,
            jwt_secret: None,
            public_url: None,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            limits: Limits::default(),
            hash_workers: default_hash_workers(),
            hash_queue: DEFAULT_HASH_QUEUE,
            login_per_account: DEFAULT_LOGIN_PER_ACCOUNT,
            login_per_address: DEFAULT_LOGIN_PER_ADDRESS,
            login_window: DEFAULT_LOGIN_WINDOW,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            upload_min_bytes_per_sec: DEFAULT_UPLOAD_MIN_BYTES_PER_SEC,
            tls: None,
            redis: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_string(),
        }
    }
}

/// `jamz-server`'s exit status when its database cannot be opened or reached at start
/// (sysexits' EX_UNAVAILABLE): a service manager may retry; any other failure exits 1.
pub const EXIT_DATABASE_UNAVAILABLE: u8 = 69;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database cannot be opened, reached or migrated: `jamz-server` exits with
    /// [`EXIT_DATABASE_UNAVAILABLE`].
    #[error("database {location}: {source}")]
    Database {
        location: DbLocation,
        #[source]
        source: sqlx::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    /// Redis (`--redis`) cannot be reached at start: `jamz-server` exits with
    /// [`EXIT_DATABASE_UNAVAILABLE`] too (a service manager may retry).
    #[error("redis {location}: {reason}")]
    Redis { location: String, reason: String },
    #[error("startup: {0}")]
    Other(String),
}

/// A server bound to its address, not yet serving.
pub struct BoundServer {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    io: Io,
    local_addr: SocketAddr,
    limits: conn::ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Opens the database (applying migrations), the file store and the socket.
pub async fn bind(config: ServerConfig) -> Result<BoundServer, StartError> {
    // First: a wrong certificate path is told before anything is created.
    let tls = match &config.tls {
        Some(files) => Some(tls::acceptor(&files.cert, &files.key).map_err(StartError::Tls)?),
        None => None,
    };
    let db = db::Db::open(&config.db)
        .await
        .map_err(|source| StartError::Database {
            location: config.db.clone(),
            source,
        })?;
    // One SQLite file has one process: what is open was left by the previous run. On
    // PostgreSQL other processes may be serving; participations name their process and
    // those of a process that is gone are not counted (docs/architecture.md, "Storage").
    if matches!(config.db, DbLocation::Sqlite(_)) {
        let closed = db
            .close_open_participations()
            .await
            .map_err(|e| StartError::Other(e.to_string()))?;
        if closed > 0 {
            tracing::info!(
                closed,
                "closed participations left open by the previous run"
            );
        }
    }
    let driver = match &config.redis {
        Some(url) => ClusterDriver::connect(url)
            .await
            .map_err(|e| StartError::Redis {
                location: cluster::redact(url),
                reason: e.to_string(),
            })?,
        None => ClusterDriver::local(),
    };
    let data_dir_err = |source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    let store = store::FileStore::open(&config.data_dir.join("files")).map_err(data_dir_err)?;
    let secret = match &config.jwt_secret {
        Some(s) => s.clone(),
        None => load_or_create_secret(&config.data_dir).map_err(data_dir_err)?,
    };
    let grant_signer =
        grants::GrantSigner::load_or_create(&config.data_dir).map_err(data_dir_err)?;
    let shared_counters = driver.connection();
    let (dj_bus, dj_listener) =
        driver
            .dj_bus(&config.redis_prefix)
            .await
            .map_err(|e| StartError::Redis {
                location: config
                    .redis
                    .as_deref()
                    .map(cluster::redact)
                    .unwrap_or_default(),
                reason: e.to_string(),
            })?;
    let (layer, io) = SocketIo::builder()
        .with_adapter::<Adapter>(driver.adapter_state(&config.redis_prefix))
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(config.max_event_bytes)
        .max_buffer_size(SOCKET_SEND_BUFFER_PACKETS)
        // max_payload bounds HTTP long-polling only; websocket messages have their own cap.
        .ws_max_message_size(config.max_event_bytes as usize)
        .ws_max_frame_size(config.max_event_bytes as usize)
        .build_layer();
    let state = state::AppState {
        db,
        keys: auth::TokenKeys::from_secret(secret.as_bytes()),
        grants: Arc::new(grant_signer),
        store,
        live: Arc::new(live::LiveSessions::new(dj_bus)),
        metrics: Arc::new(metrics::Metrics::default()),
        io: io.clone(),
        public_url: config.public_url.clone(),
        upload_limit: config.limits.upload,
        upload_min_rate: config.upload_min_bytes_per_sec,
        hasher: hasher::Hasher::start(config.hash_workers, config.hash_queue)
            .map_err(|e| StartError::Other(format!("password threads: {e}")))?,
        throttle: Arc::new(
            throttle::Throttle::new(
                throttle::Rate {
                    attempts: config.login_per_account,
                    window: config.login_window,
                },
                throttle::Rate {
                    attempts: config.login_per_address,
                    window: config.login_window,
                },
            )
            .shared(shared_counters, &config.redis_prefix),
        ),
    };
    if let Some(mut listener) = dj_listener {
        let live = state.live.clone();
        tokio::spawn(async move {
            while let Some(heard) = listener.next().await {
                match heard {
                    cluster::DjHeard::Change(c) => live.remote_dj(
                        &c.session,
                        live::Dj {
                            user: c.user,
                            epoch: c.epoch,
                        },
                    ),
                    cluster::DjHeard::RedisBack => live.forget_all(),
                }
            }
        });
    }
    realtime::register(state.clone())
        .await
        .map_err(|reason| StartError::Redis {
            location: config
                .redis
                .as_deref()
                .map(cluster::redact)
                .unwrap_or_default(),
            reason,
        })?;
    let app = rest::router(state, config.limits)
        .layer(layer)
        .layer(tower_http::trace::TraceLayer::new_for_http().on_failure(ShedAwareOnFailure));
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.bind,
        source,
    })?;
    // A websocket is quiet between pings: the idle timeout must outlast a cycle.
    let ping_cycle = config.ping_interval + config.ping_timeout + Duration::from_secs(5);
    let limits = conn::ConnLimits {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout.max(ping_cycle),
        max_connections: config.max_connections.max(1),
        max_per_address: config.max_connections_per_address.max(1),
    };
    Ok(BoundServer {
        listener,
        app,
        io,
        local_addr,
        limits,
        tls,
    })
}

impl BoundServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients use on this machine: `https://` when serving TLS.
    pub fn local_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Serves until `shutdown` completes, then tells every socket to reconnect
    /// elsewhere (`server-shutdown`, [`shutdown::notify`]) and closes them.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let io = self.io.clone();
        let result = conn::serve(self.listener, self.app, self.limits, self.tls, async move {
            shutdown.await;
            shutdown::notify(&io).await;
            io.close().await;
        })
        .await;
        tracing::info!("server stopped");
        result
    }
}

/// The token-signing secret kept beside the data, created on first start.
fn load_or_create_secret(data_dir: &std::path::Path) -> std::io::Result<String> {
    fsperm::create_private_dir(data_dir)?;
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_string()),
        Ok(_) => tracing::warn!(path = %path.display(), "jwt-secret too short; replacing it"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    let tmp = data_dir.join("jwt-secret.tmp");
    {
        use std::io::Write;
        let mut f = fsperm::private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(secret.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}

/// Ctrl-C, or SIGTERM on Unix: what ends a server or a node run from a terminal or
/// a service manager.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// How the request trace reports a failed answer: a 503 is the server shedding load (a
/// busy password pool, a database away for a moment), which it survives by design, so
/// a warning; any other 5xx (or an error before an answer) is an error, as by default.
#[derive(Debug, Clone, Copy)]
struct ShedAwareOnFailure;

impl tower_http::trace::OnFailure<tower_http::classify::ServerErrorsFailureClass>
    for ShedAwareOnFailure
{
    fn on_failure(
        &mut self,
        class: tower_http::classify::ServerErrorsFailureClass,
        latency: Duration,
        _span: &tracing::Span,
    ) {
        use tower_http::classify::ServerErrorsFailureClass as Class;
        let latency_ms = latency.as_millis();
        match class {
            Class::StatusCode(axum::http::StatusCode::SERVICE_UNAVAILABLE) => {
                tracing::warn!(classification = %class, latency_ms, "service unavailable (shedding load)");
            }
            other => tracing::error!(classification = %other, latency_ms, "response failed"),
        }
    }
}

//! The server's command-line flags, shared by the `jamz-server` binary and
//! `jamz server` so that both take the same options.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{
    DEFAULT_HASH_QUEUE, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LOGIN_PER_ACCOUNT, DEFAULT_LOGIN_PER_ADDRESS, DEFAULT_LOGIN_WINDOW,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT, DEFAULT_UPLOAD_MIN_BYTES_PER_SEC, Limits, ServerConfig,
    default_hash_workers,
};

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub bind: SocketAddr,
    /// The database: a SQLite file (created if missing), or a PostgreSQL URL
    /// postgres://user:password@host:port/database (the database must exist; the
    /// server creates its tables). Cannot be opened or reached at start: exit status 69.
    /// From the environment, a URL's password stays out of the process list.
    #[arg(
        long,
        env = "JAMZ_DB",
        hide_env_values = true,
        default_value = "jamz-data/jamz.db",
        value_name = "FILE|URL"
    )]
    pub db: crate::DbLocation,
    /// Directory for uploaded files and the token secret.
    #[arg(long, default_value = "jamz-data")]
    pub data_dir: PathBuf,
    /// Token-signing secret (default: kept in <data-dir>/jwt-secret).
    #[arg(long, env = "JAMZ_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Base of absolute file URLs in tracks (default: the request's Host).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Serve https/wss with this certificate (PEM: the server's certificate, then its chain).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Redis (redis://[:password@]host:port/[db]): several jamz-server processes on one
    /// PostgreSQL serve as one (deploy/scale-out.md): relays reach the room's sockets on
    /// every process, and login throttling and connection caps count across them. Cannot
    /// be reached at start: exit status 69; goes away later: relays stay on each process
    /// (a warning) until it is back.
    #[arg(long, env = "JAMZ_REDIS", hide_env_values = true, value_name = "URL")]
    pub redis: Option<String>,
    /// The prefix of this deployment's Redis channels and keys: deployments (or test
    /// runs) sharing one Redis keep apart by it; every process of one uses the same.
    #[arg(long, env = "JAMZ_REDIS_PREFIX", default_value = crate::DEFAULT_REDIS_PREFIX)]
    pub redis_prefix: String,
    /// Engine.IO ping interval, ms.
    #[arg(long, default_value_t = DEFAULT_PING_INTERVAL.as_millis() as u64)]
    pub ping_interval_ms: u64,
    /// Engine.IO ping timeout, ms.
    #[arg(long, default_value_t = DEFAULT_PING_TIMEOUT.as_millis() as u64)]
    pub ping_timeout_ms: u64,
    /// Largest upload, MiB.
    #[arg(long, default_value_t = Limits::default().upload / (1024 * 1024))]
    pub max_upload_mib: u64,
    /// Threads checking passwords (each check holds about 19 MiB); default: the core count.
    #[arg(long, default_value_t = default_hash_workers())]
    pub hash_workers: usize,
    /// Password checks that may wait for a thread; past it, 503 with Retry-After.
    #[arg(long, default_value_t = DEFAULT_HASH_QUEUE)]
    pub hash_queue: usize,
    /// Login attempts (and member lookups) per account per window; past it, 429 with Retry-After.
    #[arg(long, default_value_t = DEFAULT_LOGIN_PER_ACCOUNT)]
    pub login_attempts_per_account: u32,
    /// Login attempts (and member lookups) per client address per window.
    #[arg(long, default_value_t = DEFAULT_LOGIN_PER_ADDRESS)]
    pub login_attempts_per_address: u32,
    /// The login throttling window, seconds (a bucket refills over it).
    #[arg(long, default_value_t = DEFAULT_LOGIN_WINDOW.as_secs())]
    pub login_window_secs: u64,
    /// Seconds a client has to send a request's head (and to start the next one
    /// on a kept-alive connection).
    #[arg(long, default_value_t = DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    pub header_read_timeout_secs: u64,
    /// Seconds without a byte either way before a connection is closed (at
    /// least one Engine.IO ping cycle).
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout_secs: u64,
    /// Open connections at most; past it new ones are closed at once.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Open connections at most from one client address.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_connections_per_address: usize,
    /// Slowest accepted upload, bytes/s on average (after a 10 s grace); slower ones get 408.
    #[arg(long, default_value_t = DEFAULT_UPLOAD_MIN_BYTES_PER_SEC)]
    pub upload_min_bytes_per_sec: u64,
}

impl ServerArgs {
    pub fn into_config(self) -> ServerConfig {
        let mut config = ServerConfig::new(self.bind, self.db, self.data_dir);
        config.jwt_secret = self.jwt_secret;
        config.public_url = self.public_url;
        config.ping_interval = Duration::from_millis(self.ping_interval_ms);
        config.ping_timeout = Duration::from_millis(self.ping_timeout_ms);
        config.limits.upload = self.max_upload_mib * 1024 * 1024;
        config.hash_workers = self.hash_workers;
        config.hash_queue = self.hash_queue;
        config.login_per_account = self.login_attempts_per_account;
        config.login_per_address = self.login_attempts_per_address;
        config.login_window = Duration::from_secs(self.login_window_secs.max(1));
        config.header_read_timeout = Duration::from_secs(self.header_read_timeout_secs.max(1));
        config.idle_timeout = Duration::from_secs(self.idle_timeout_secs.max(1));
        config.max_connections = self.max_connections;
        config.max_connections_per_address = self.max_connections_per_address;
        config.upload_min_bytes_per_sec = self.upload_min_bytes_per_sec;
        config.redis = self.redis;
        config.redis_prefix = self.redis_prefix;
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            config.tls = Some(crate::TlsFiles { cert, key });
        }
        config
    }
}

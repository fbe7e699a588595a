//! The server's command-line flags, shared by the `jamz-server` binary and
//! `jamz server` so that both take the same options.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, Limits, ServerConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:5050")]
    pub bind: SocketAddr,
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "jamz-data/jamz.db")]
    pub db: PathBuf,
    /// Directory for uploaded files and the token secret.
    #[arg(long, default_value = "jamz-data")]
    pub data_dir: PathBuf,
    /// Token-signing secret (default: kept in <data-dir>/jwt-secret).
    #[arg(long, env = "JAMZ_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Base of absolute file URLs in tracks (default: the request's Host).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Engine.IO ping interval, ms.
    #[arg(long, default_value_t = DEFAULT_PING_INTERVAL.as_millis() as u64)]
    pub ping_interval_ms: u64,
    /// Engine.IO ping timeout, ms.
    #[arg(long, default_value_t = DEFAULT_PING_TIMEOUT.as_millis() as u64)]
    pub ping_timeout_ms: u64,
    /// Largest upload, MiB.
    #[arg(long, default_value_t = Limits::default().upload / (1024 * 1024))]
    pub max_upload_mib: u64,
}

impl ServerArgs {
    pub fn into_config(self) -> ServerConfig {
        let mut config = ServerConfig::new(self.bind, self.db, self.data_dir);
        config.jwt_secret = self.jwt_secret;
        config.public_url = self.public_url;
        config.ping_interval = Duration::from_millis(self.ping_interval_ms);
        config.ping_timeout = Duration::from_millis(self.ping_timeout_ms);
        config.limits.upload = self.max_upload_mib * 1024 * 1024;
        config
    }
}

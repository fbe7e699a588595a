//! `jamz-server`: the reference TrafficJamz backend as a process.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use jamz_server::{Limits, ServerConfig};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Reference TrafficJamz backend (REST + Socket.IO, PROTOCOL.md)"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:5050")]
    bind: SocketAddr,
    /// SQLite database file (created if missing).
    #[arg(long, default_value = "jamz-data/jamz.db")]
    db: PathBuf,
    /// Directory for uploaded files and the token secret.
    #[arg(long, default_value = "jamz-data")]
    data_dir: PathBuf,
    /// Token-signing secret (default: kept in <data-dir>/jwt-secret).
    #[arg(long, env = "JAMZ_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Base of absolute file URLs in tracks (default: the request's Host).
    #[arg(long)]
    public_url: Option<String>,
    /// Engine.IO ping interval, ms.
    #[arg(long, default_value_t = jamz_server::DEFAULT_PING_INTERVAL.as_millis() as u64)]
    ping_interval_ms: u64,
    /// Engine.IO ping timeout, ms.
    #[arg(long, default_value_t = jamz_server::DEFAULT_PING_TIMEOUT.as_millis() as u64)]
    ping_timeout_ms: u64,
    /// Largest upload, MiB.
    #[arg(long, default_value_t = Limits::default().upload / (1024 * 1024))]
    max_upload_mib: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut config = ServerConfig::new(args.bind, args.db, args.data_dir);
    config.jwt_secret = args.jwt_secret;
    config.public_url = args.public_url;
    config.ping_interval = Duration::from_millis(args.ping_interval_ms);
    config.ping_timeout = Duration::from_millis(args.ping_timeout_ms);
    config.limits.upload = args.max_upload_mib * 1024 * 1024;
    let server = jamz_server::bind(config)
        .await
        .context("starting jamz-server")?;
    let addr = server.local_addr();
    tracing::info!(%addr, "listening");
    // The one line on stdout: scripts and tests read the address from it.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "jamz-server listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    server
        .run(async {
            jamz_server::stop_signal().await;
            tracing::info!("shutting down");
        })
        .await
        .context("serving")?;
    Ok(())
}

//! `jamz-server`: the reference TrafficJamz backend as a process.
use anyhow::Context;
use clap::Parser;
use jamz_server::ServerArgs;
use std::io::Write;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Reference TrafficJamz backend (REST + Socket.IO, docs/protocol.md)"
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
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
    let config = Args::parse().server.into_config();
    let server = jamz_server::bind(config)
        .await
        .context("starting jamz-server")?;
    let url = server.local_url();
    tracing::info!(%url, "listening");
    // The one line on stdout: scripts and tests read the address from it.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "jamz-server listening on {url}")?;
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

//! `jamz-server`: the reference TrafficJamz backend as a process.
use anyhow::Context;
use clap::Parser;
use jamz_server::ServerArgs;
use std::io::Write;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Reference TrafficJamz backend (REST + Socket.IO, docs/protocol.md)",
    after_help = "Exit status: 0 stopped by SIGTERM or Ctrl-C; 69 the database (--db) cannot be \
                  opened or reached at start, or Redis (--redis) cannot be reached; 1 any other failure."
)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let code = match run().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("jamz-server: {}", report(&e));
            // An unreachable database has a status of its own: a service manager (or
            // whoever watches) can tell "retry later" from "fix the configuration".
            let database = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<jamz_server::StartError>(),
                    Some(
                        jamz_server::StartError::Database { .. }
                            | jamz_server::StartError::Redis { .. }
                    )
                )
            });
            if database {
                jamz_server::EXIT_DATABASE_UNAVAILABLE
            } else {
                1
            }
        }
    };
    std::process::ExitCode::from(code)
}

/// The error and its causes on one line, each said once (a cause already in the message
/// that wraps it is not repeated).
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn run() -> anyhow::Result<()> {
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

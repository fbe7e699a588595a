//! Helpers that build the world of an end-to-end test in one line: a real
//! `jamz-server` process on a free loopback port with its own database and file
//! store, and Node processes running the official Socket.IO packages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a spawned process may take to say it is listening.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding the workspace's binaries (`target/debug`), found from
/// the test executable (`target/debug/deps/<test>`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// A workspace binary; panics with the command to run when it was not built.
/// `JAMZ_BIN_DIR` overrides the directory (a bench built in release using debug
/// binaries, say).
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("JAMZ_BIN_DIR").map_or_else(bin_dir, PathBuf::from);
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The repository's root (where package.json and node_modules live).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `jamz` (the CLI) as the user whose config and cache live in `home`, with no server or
/// password from the caller's environment. Killed on drop.
pub fn jamz_as(home: &Path) -> Command {
    let mut cmd = Command::new(workspace_bin("jamz"));
    cmd.env("JAMZ_CONFIG_DIR", home.join("config"))
        .env("JAMZ_CACHE_DIR", home.join("cache"))
        .env_remove("JAMZ_SERVER")
        .env_remove("JAMZ_PASSWORD")
        .kill_on_drop(true);
    cmd
}

/// A `jamz-server` child process. Killed (SIGKILL) on drop.
pub struct TestServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub addr: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server with a fresh database and file store on a free port.
    pub async fn start() -> Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Starts a server on `bind` over the database and files in `dir` (a restart
    /// reuses the same directory and address).
    pub async fn start_in(dir: &Path, bind: &str) -> Result<Self> {
        Self::start_in_with_args(dir, bind, &[]).await
    }

    /// `kill -9`, then wait for the process to be gone.
    pub async fn kill9(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Takes the temporary directory so that it outlives a kill and restart.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    /// Like [`TestServer::start_in`], with extra command-line arguments (e.g.
    /// `--ping-interval-ms 300 --ping-timeout-ms 300`).
    pub async fn start_in_with_args(dir: &Path, bind: &str, extra: &[&str]) -> Result<Self> {
        let mut child = Command::new(workspace_bin("jamz-server"))
            .arg("--bind")
            .arg(bind)
            .arg("--db")
            .arg(dir.join("jamz.db"))
            .arg("--data-dir")
            .arg(dir.join("files"))
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawn jamz-server")?;
        let addr = listening(
            &mut child,
            "jamz-server",
            "jamz-server listening on http://",
        )
        .await?;
        Ok(Self {
            child,
            url: format!("http://{addr}"),
            addr,
            dir: dir.to_path_buf(),
            _tmp: None,
        })
    }

    /// A fresh server (own temporary directory) with extra arguments.
    /// A server that lets each account try one login per `window_secs`: the second
    /// attempt in a window is refused with 429 and a `Retry-After`.
    pub async fn start_one_login_per(window_secs: u64) -> Result<Self> {
        let window = window_secs.to_string();
        Self::start_with_args(&[
            "--login-attempts-per-account",
            "1",
            "--login-window-secs",
            &window,
        ])
        .await
    }

    pub async fn start_with_args(extra: &[&str]) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in_with_args(&dir, "127.0.0.1:0", extra).await?;
        s._tmp = Some(tmp);
        Ok(s)
    }
}

/// `tests/js/ref-server.mjs`: docs/protocol.md on the official Node `socket.io`
/// server, in memory. Killed on drop.
pub struct RefServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl RefServer {
    /// Starts the reference server on a free port; `ping` = (pingInterval,
    /// pingTimeout) in ms, `None` for Socket.IO's defaults.
    pub async fn start(ping: Option<(u64, u64)>) -> Result<Self> {
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/js/ref-server.mjs"))
            .args(["--port", "0"])
            .current_dir(repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some((interval, timeout)) = ping {
            cmd.args(["--ping-interval-ms", &interval.to_string()]);
            cmd.args(["--ping-timeout-ms", &timeout.to_string()]);
        }
        let mut child = cmd.spawn().context("spawn node tests/js/ref-server.mjs")?;
        let url = listening(&mut child, "ref-server", "ref-server listening on ").await?;
        Ok(Self { child, url })
    }
}

/// Reads `child`'s stdout until the line starting with `prefix` (within
/// [`STARTUP_TIMEOUT`]) and returns the rest of it, trimmed; then keeps draining
/// stdout so that the child never blocks on a full pipe.
async fn listening(child: &mut Child, name: &str, prefix: &str) -> Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let rest = tokio::time::timeout(STARTUP_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok::<_, anyhow::Error>(rest.trim().to_string());
            }
        }
        bail!("{name} exited before listening")
    })
    .await
    .with_context(|| format!("{name} did not start in time"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(rest)
}

pub mod throttle;

/// What the benchmarks share: their knobs from the environment and their figures.
pub mod bench {
    /// `name` from the environment as a count, else `default`.
    pub fn env_usize(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The `p` quantile (0..=1, nearest rank) of ascending `sorted`; NaN when empty.
    pub fn percentile(sorted: &[f64], p: f64) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let i = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }
}

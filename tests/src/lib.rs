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
        .env_remove("JAMZ_DISCOVER")
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
        Self::start_on_db(dir, bind, dir.join("jamz.db").as_os_str(), extra).await
    }

    /// Like [`TestServer::start_in_with_args`], on the database `db`: a SQLite file or a
    /// `postgres://` URL (`--db`); `dir` holds the files and the token secret.
    pub async fn start_on_db(
        dir: &Path,
        bind: &str,
        db: &std::ffi::OsStr,
        extra: &[&str],
    ) -> Result<Self> {
        Self::spawn(dir, bind, db, extra, None).await
    }

    /// Two processes as one server: on the database `db` and the Redis at `redis` (under a
    /// key prefix of their own), signing tokens with `secret`; started one after the
    /// other, so the second finds the grant key the first made.
    pub async fn start_pair_on_redis(
        dir: &Path,
        db: &std::ffi::OsStr,
        redis: &str,
        secret: &str,
    ) -> Result<(Self, Self)> {
        Self::start_pair_on_redis_with_args(dir, db, redis, secret, &[]).await
    }

    /// Like [`TestServer::start_pair_on_redis`], with extra command-line arguments for both.
    pub async fn start_pair_on_redis_with_args(
        dir: &Path,
        db: &std::ffi::OsStr,
        redis: &str,
        secret: &str,
        extra: &[&str],
    ) -> Result<(Self, Self)> {
        // Unique per pair (process, clock, count): runs sharing one Redis never mix.
        static PAIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!(
            "jamz-t-{}-{nanos:x}-{}",
            std::process::id(),
            PAIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut args = vec![
            "--redis",
            redis,
            "--redis-prefix",
            prefix.as_str(),
            "--jwt-secret",
            secret,
        ];
        args.extend_from_slice(extra);
        let a = Self::start_on_db(dir, "127.0.0.1:0", db, &args).await?;
        let b = Self::start_on_db(dir, "127.0.0.1:0", db, &args).await?;
        Ok((a, b))
    }

    /// A fresh server (own temporary directory) with extra arguments whose log (its
    /// stderr: warnings and errors, no colours) goes to the file `log`, for a test that
    /// checks what the server logs.
    pub async fn start_logging_to(log: &Path, extra: &[&str]) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_path_buf();
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let db = dir.join("jamz.db");
        let mut s = Self::spawn(&dir, "127.0.0.1:0", db.as_os_str(), extra, Some(file)).await?;
        s._tmp = Some(tmp);
        Ok(s)
    }

    async fn spawn(
        dir: &Path,
        bind: &str,
        db: &std::ffi::OsStr,
        extra: &[&str],
        log: Option<std::fs::File>,
    ) -> Result<Self> {
        let mut cmd = Command::new(workspace_bin("jamz-server"));
        match log {
            Some(file) => cmd
                .env("RUST_LOG", "warn")
                .env("NO_COLOR", "1")
                .stderr(file),
            None => cmd
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stderr(Stdio::inherit()),
        };
        let mut child = cmd
            .arg("--bind")
            .arg(bind)
            .arg("--db")
            .arg(db)
            .arg("--data-dir")
            .arg(dir.join("files"))
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn jamz-server")?;
        let url = listening(&mut child, "jamz-server", "jamz-server listening on ").await?;
        let addr = url
            .split_once("://")
            .map(|(_, a)| a.to_owned())
            .with_context(|| format!("jamz-server printed no URL: {url:?}"))?;
        Ok(Self {
            child,
            url,
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

/// A loopback TCP proxy in front of a server: the link of whoever connects through it can be
/// cut (every connection through it closed at once, new ones closed as soon as they are
/// accepted) and restored, the way a car loses the network and finds it again while the
/// server runs on. It can also cut each response after a number of bytes (a download that
/// breaks off), and it keeps the start of every request and the bytes of every response,
/// per connection, for the test to read.
pub struct LinkProxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: std::sync::Arc<ProxyShared>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyShared {
    up: std::sync::atomic::AtomicBool,
    /// Close a connection after this many bytes from the server (0: never).
    cut_after: std::sync::atomic::AtomicU64,
    conns: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    log: std::sync::Mutex<Vec<ProxiedConnection>>,
}

/// What one connection through a [`LinkProxy`] carried.
#[derive(Debug, Clone, Default)]
pub struct ProxiedConnection {
    /// The first bytes the client sent (an HTTP request's head), lossily as text.
    pub request_head: String,
    /// Bytes from the server to the client.
    pub bytes_down: u64,
}

impl LinkProxy {
    /// Forwards to `upstream` (`HOST:PORT`), link up.
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = std::sync::Arc::new(ProxyShared::default());
        shared.up.store(true, std::sync::atomic::Ordering::SeqCst);
        let upstream = upstream.to_owned();
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !s.up.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let index = {
                    let mut log = s.log.lock().unwrap();
                    log.push(ProxiedConnection::default());
                    log.len() - 1
                };
                let task = tokio::spawn(proxy_one(client, upstream.clone(), s.clone(), index));
                let mut conns = s.conns.lock().unwrap();
                conns.retain(|c| !c.is_finished());
                conns.push(task.abort_handle());
            }
        });
        Ok(LinkProxy {
            url,
            shared,
            accept,
        })
    }

    /// The link goes down: every connection through the proxy is closed now and new
    /// ones are closed as they arrive, until [`LinkProxy::restore`].
    pub fn cut(&self) {
        self.shared
            .up
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// The link is back: new connections are forwarded again.
    pub fn restore(&self) {
        self.shared
            .up
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Each connection opened from now on is closed after `bytes` from the server
    /// (0: never).
    pub fn cut_responses_after(&self, bytes: u64) {
        self.shared
            .cut_after
            .store(bytes, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every connection so far, oldest first.
    pub fn connections(&self) -> Vec<ProxiedConnection> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn proxy_one(
    client: tokio::net::TcpStream,
    upstream: String,
    shared: std::sync::Arc<ProxyShared>,
    index: usize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
        return; // the server is down: the client sees its connection closed
    };
    let cut_after = shared.cut_after.load(std::sync::atomic::Ordering::SeqCst);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up_log = shared.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut seen = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if seen < 4096 {
                let take = n.min(4096 - seen);
                let text = String::from_utf8_lossy(&buf[..take]).into_owned();
                up_log.log.lock().unwrap()[index]
                    .request_head
                    .push_str(&text);
                seen += take;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down_log = shared.clone();
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let n = if cut_after > 0 {
                n.min(usize::try_from(cut_after - sent).unwrap_or(usize::MAX))
            } else {
                n
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
            sent += n as u64;
            down_log.log.lock().unwrap()[index].bytes_down = sent;
            if cut_after > 0 && sent >= cut_after {
                return; // the response breaks off here
            }
        }
    };
    // Either direction ending closes both: the connection is gone.
    tokio::select! {
        () = up => {}
        () = down => {}
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

pub mod tls;

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

/// Whether the caller runs inside a network namespace of its own and should do its work.
/// Outside one, runs the test `name` of this test binary again inside a fresh namespace
/// (`unshare --net`, then the shell script `setup`, which ends with `exec "$@"`), checks
/// it passed, and returns `false`. Where no namespace can be made (no root, no user
/// namespaces, no `ip`), skips with the reason on stderr, or fails when
/// `JAMZ_REQUIRE_NETNS` is set.
pub fn in_network_namespace(name: &str, setup: &str) -> bool {
    const INSIDE: &str = "JAMZ_TEST_INSIDE_NETNS";
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let required = std::env::var_os("JAMZ_REQUIRE_NETNS").is_some();
    let probe = std::process::Command::new("unshare")
        .args(["--net", "ip", "link", "show"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                !required,
                "JAMZ_REQUIRE_NETNS is set but no network namespace can be made: {why}"
            );
            eprintln!("skipped: cannot make a network namespace here ({why})");
            return false;
        }
    }
    let me = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new("unshare")
        .args(["--net", "sh", "-ec", setup, "setup"])
        .arg(&me)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inside the namespace: {text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run: {text}"
    );
    false
}

/// [`in_network_namespace`], and inside it `test` on a two-worker runtime, its error a
/// failure.
pub fn run_in_network_namespace<F>(name: &str, setup: &str, test: impl FnOnce() -> F)
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    if !in_network_namespace(name, setup) {
        return;
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(test());
    if let Err(e) = outcome {
        panic!("{name}: {e:?}");
    }
}

/// A minimal playlist track with this id (title `Title {id}`, a URL no test fetches).
pub fn track(id: &str) -> jamz_proto::Track {
    jamz_proto::Track {
        id: id.into(),
        title: format!("Title {id}"),
        url: format!("http://cdn.example/{id}.mp3"),
        ..jamz_proto::Track::default()
    }
}

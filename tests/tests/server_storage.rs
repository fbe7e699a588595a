//! jamz-server's storage as a client sees it, on both engines (docs/architecture.md,
//! "Storage"): a real `jamz-server` process on a SQLite file and on a fresh database of the
//! PostgreSQL that scripts/env.d/postgres.sh starts (`postgres::*` say "skipped: no
//! PostgreSQL" without it, and fail with `JAMZ_REQUIRE_POSTGRES=1`), and its bad input:
//! a database unreachable at start (exit status 69, a clear message) and a PostgreSQL
//! stopped mid-session (503 with Retry-After, then recovery when it returns).
//!
//! Needs `cargo build -p jamz-server` first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../crates/jamz-server/tests/support/postgres.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jamz_e2e::{TestServer, repo_root, track, workspace_bin};
use jamz_link::{LinkError, RestClient, RetryPolicy};

/// Every wait here is bounded by this; a hang fails the test, a slow machine does not.
const BOUND: Duration = Duration::from_secs(60);

/// A client that reports a 503 at once instead of waiting it out.
fn client(url: &str) -> RestClient {
    RestClient::new(url).unwrap().with_retry(RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    })
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"))
}

/// The scenario both engines must pass: accounts, a group with a member, its session
/// with a playlist, all still there after the server is killed and started again.
async fn a_group_and_its_session_survive_a_restart(db: &std::ffi::OsStr) {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_on_db(tmp.path(), "127.0.0.1:0", db, &[])
        .await
        .unwrap();
    let ann = client(&server.url);
    let bob = client(&server.url);
    ann.register("ann", "ann@e.test", "pw-ann-123")
        .await
        .unwrap();
    bob.register("bob", "bob@e.test", "pw-bob-123")
        .await
        .unwrap();
    let e = client(&server.url)
        .register("ANN", "other@e.test", "pw-123456")
        .await
        .unwrap_err();
    assert!(
        matches!(e, LinkError::Http { status: 409, .. }),
        "a name differing only in case is taken: {e}"
    );
    let group = ann
        .create_group("Trip", Some("to the coast"))
        .await
        .unwrap();
    ann.add_member(&group.id, "bob").await.unwrap();
    let session = ann.session_for_group(&group.id).await.unwrap();
    ann.append_track(&session.id, &track("a")).await.unwrap();
    ann.append_track(&session.id, &track("b")).await.unwrap();
    bob.append_track(&session.id, &track("c")).await.unwrap();

    server.kill9().await.unwrap();
    let server = TestServer::start_on_db(tmp.path(), &server.addr, db, &[])
        .await
        .unwrap();
    let bob = client(&server.url);
    bob.login("BOB", "pw-bob-123").await.unwrap();
    let groups = bob.groups().await.unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].id, group.id);
    assert_eq!(groups[0].members.len(), 2, "{:?}", groups[0].members);
    let again = bob.session_for_group(&group.id).await.unwrap();
    assert_eq!(again.id, session.id, "one session per group, kept");
    let ids: Vec<&str> = again.music.playlist.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn sqlite_a_group_and_its_session_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    a_group_and_its_session_survive_a_restart(tmp.path().join("jamz.db").as_os_str()).await;
}

#[tokio::test]
async fn postgres_a_group_and_its_session_survive_a_restart() {
    let Some(admin) = pg::admin_url("postgres_a_group_and_its_session_survive_a_restart") else {
        return;
    };
    let url = pg::fresh_database(&admin).await;
    a_group_and_its_session_survive_a_restart(url.as_ref()).await;
}

/// A port nothing listens on (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `jamz-server --db db` (or with `JAMZ_DB=db`) until it exits; its status and stderr.
async fn start_fails(db: &str, from_env: bool) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(workspace_bin("jamz-server"));
    if from_env {
        cmd.env("JAMZ_DB", db);
    } else {
        cmd.args(["--db", db]).env_remove("JAMZ_DB");
    }
    let child = cmd
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = bounded(
        "jamz-server on an unreachable database",
        child.wait_with_output(),
    )
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_a_clear_error_and_exit_status_69() {
    let port = free_port();
    let url = format!("postgres://jamz:hunter2@127.0.0.1:{port}/jamz");
    for from_env in [false, true] {
        let (code, stderr) = start_fails(&url, from_env).await;
        eprintln!("{stderr}");
        assert_eq!(code, Some(69), "{stderr}");
        let shown = format!("postgres://jamz:***@127.0.0.1:{port}/jamz");
        assert!(stderr.contains(&shown), "names the database: {stderr}");
        assert!(
            stderr.to_lowercase().contains("connection refused"),
            "says why: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "never shows the password: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test]
async fn a_missing_postgres_database_at_start_is_exit_status_69() {
    let Some(admin) = pg::admin_url("a_missing_postgres_database_at_start_is_exit_status_69")
    else {
        return;
    };
    let url = pg::database_url(&admin, "jamz_no_such_database");
    let (code, stderr) = start_fails(&url, false).await;
    eprintln!("{stderr}");
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains("jamz_no_such_database") && stderr.contains("does not exist"),
        "says which and why: {stderr}"
    );
}

/// A PostgreSQL cluster of this test's own (scripts/pg-cluster.sh), to stop and start.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn script() -> PathBuf {
        repo_root().join("scripts/pg-cluster.sh")
    }

    async fn start(dir: &Path, port: u16) -> String {
        let out = bounded(
            "pg-cluster.sh start",
            tokio::process::Command::new(Self::script())
                .arg("start")
                .arg(dir)
                .arg(port.to_string())
                .output(),
        )
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "pg-cluster.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    async fn stop(&self) {
        let out = bounded(
            "pg-cluster.sh stop",
            tokio::process::Command::new(Self::script())
                .arg("stop")
                .arg(&self.dir)
                .output(),
        )
        .await
        .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script())
            .arg("destroy")
            .arg(&self.dir)
            .status();
    }
}

fn unavailable(e: &LinkError) -> bool {
    matches!(
        e,
        LinkError::Throttled {
            status: 503,
            retry_after: Some(_),
            ..
        }
    )
}

/// `GET path`'s status, over a plain socket.
async fn status_of(addr: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    s.read_to_end(&mut head).await.unwrap();
    let text = String::from_utf8_lossy(&head);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_database_gone_mid_session_is_503_and_the_server_recovers_when_it_returns() {
    let test = "a_database_gone_mid_session_is_503_and_the_server_recovers_when_it_returns";
    if pg::admin_url(test).is_none() {
        return;
    }
    let cluster = Cluster {
        dir: std::env::temp_dir().join(format!("jamz-pg-outage-{:016x}", rand::random::<u64>())),
        port: free_port(),
    };
    let url = Cluster::start(&cluster.dir, cluster.port).await;
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start_on_db(tmp.path(), "127.0.0.1:0", url.as_ref(), &[])
        .await
        .unwrap();
    let ann = client(&server.url);
    ann.register("ann", "ann@e.test", "pw-ann-123")
        .await
        .unwrap();
    let group = ann.create_group("Trip", None).await.unwrap();
    let session = ann.session_for_group(&group.id).await.unwrap();
    assert_eq!(status_of(&server.addr, "/readyz").await, 200);

    cluster.stop().await;
    // Reads and writes alike: answered, 503 with a Retry-After; never a hang or a crash.
    let e = bounded("a read without the database", ann.groups())
        .await
        .unwrap_err();
    assert!(unavailable(&e), "{e}");
    let e = bounded(
        "a write without the database",
        ann.append_track(&session.id, &track("a")),
    )
    .await
    .unwrap_err();
    assert!(unavailable(&e), "{e}");
    assert_eq!(status_of(&server.addr, "/readyz").await, 503);
    assert_eq!(
        status_of(&server.addr, "/healthz").await,
        200,
        "the process itself is fine"
    );

    Cluster::start(&cluster.dir, cluster.port).await;
    // Back: the first request that finds it answers (each try bounded, the whole wait too).
    let groups = bounded("recovery", async {
        loop {
            match ann.groups().await {
                Ok(groups) => break groups,
                Err(e) if unavailable(&e) => tokio::task::yield_now().await,
                Err(e) => panic!("after the database returned: {e}"),
            }
        }
    })
    .await;
    assert_eq!(groups.len(), 1, "nothing lost: {groups:?}");
    let playlist = ann.append_track(&session.id, &track("a")).await.unwrap();
    assert_eq!(playlist.len(), 1);
    assert_eq!(status_of(&server.addr, "/readyz").await, 200);
}

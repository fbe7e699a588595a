//! A node given several servers of one backend rides the death of the one it is on
//! (docs/node-control.md, "Several servers"; docs/protocol.md, "Several servers"): two
//! real `jamz-server` processes on one PostgreSQL database (the cluster of
//! scripts/env.d/postgres.sh, a fresh database per test; "skipped: no PostgreSQL" without
//! it, a failure with `JAMZ_REQUIRE_POSTGRES=1`) and the same data directory (token
//! secret, grant key, uploads), and a `jamz node --json` given both URLs.
//!
//! - SIGKILL of the server the node is on: the node reconnects to the other, re-joins the
//!   session, the playlist is there, and a track added while it was switching is not lost.
//! - SIGTERM: the server tells every socket `server-shutdown` (ext) and exits 0; the node
//!   moves to the other server at once and says the move followed the notice.
//!
//! The controller and the playback position across such a switch (shared through the
//! database and Redis) are asserted by server_cluster.rs
//! (`sigkill_of_the_djs_process_moves_its_clients_and_the_session_goes_on`).
//!
//! Needs `cargo build -p jamz-cli -p jamz-server` first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;
#[path = "../../crates/jamz-server/tests/support/postgres.rs"]
mod pg;

use std::time::Duration;

use anyhow::{Context, Result};
use jamz_e2e::{TestServer, track};
use jamz_link::RestClient;
use jamz_proto::Track;
use node_support::{NodeProc, PASSWORD, WAIT, playlist_ids};
use serde_json::{Value, json};

/// Two servers on one fresh database and one data directory, a member with a group
/// whose session has track `a` (added through the first server).
struct Pair {
    a: TestServer,
    b: TestServer,
    group: String,
    dir: tempfile::TempDir,
}

impl Pair {
    async fn start(admin: &str) -> Result<Pair> {
        let db = pg::fresh_database(admin).await;
        let dir = tempfile::tempdir()?;
        // One after the other: the first creates the token secret the second reads.
        let a = TestServer::start_on_db(dir.path(), "127.0.0.1:0", db.as_ref(), &[]).await?;
        let b = TestServer::start_on_db(dir.path(), "127.0.0.1:0", db.as_ref(), &[]).await?;
        let rest = RestClient::new(&a.url)?;
        rest.register("ann", "ann@example.test", PASSWORD).await?;
        let group = rest.create_group("road trip", None).await?;
        let session = rest.session_for_group(&group.id).await?;
        rest.append_track(&session.id, &track("a")).await?;
        // The second server sees the same account, with a token the first signed.
        let seen = RestClient::new(&b.url)?;
        seen.set_token(rest.token());
        let via_b = seen.session_for_group(&group.id).await?;
        assert_eq!(ids(&via_b.music.playlist), ["a"]);
        Ok(Pair {
            a,
            b,
            group: group.id,
            dir,
        })
    }

    /// `jamz node --json` for ann with `servers` as its `--server` arguments.
    async fn node(&self, servers: &[&str]) -> Result<NodeProc> {
        let cache = self.dir.path().join("cache-ann");
        let config = self.dir.path().join("config-ann");
        let mut args = vec!["node", "--json"];
        for s in servers {
            args.extend(["--server", s]);
        }
        args.extend([
            "--username",
            "ann",
            "--password",
            PASSWORD,
            "--group",
            self.group.as_str(),
            "--output",
            "null",
            "--cache-dir",
            cache.to_str().context("path")?,
        ]);
        NodeProc::spawn("ann", &args, &config, &[]).await
    }

    /// The session's playlist as the server at `url` has it.
    async fn playlist_on(&self, url: &str) -> Result<Vec<String>> {
        let rest = RestClient::new(url)?;
        rest.login("ann", PASSWORD).await?;
        Ok(ids(&rest
            .session_for_group(&self.group)
            .await?
            .music
            .playlist))
    }
}

/// The node names a server as its URL parser spells it (`http://127.0.0.1:5050/`).
fn is(v: &Value, url: &str) -> bool {
    v.as_str().map(|s| s.trim_end_matches('/')) == Some(url.trim_end_matches('/'))
}

fn ids(playlist: &[Track]) -> Vec<String> {
    playlist.iter().map(|t| t.id.clone()).collect()
}

/// The node is on `url` (its first `server` event), joined, and has the playlist [a].
async fn on_first(node: &mut NodeProc, url: &str) -> Result<()> {
    let first = node.wait_event("server", |_| true).await?;
    assert!(is(&first["url"], url), "{first}");
    assert_eq!(first["previous"], Value::Null, "{first}");
    node.wait_event("ready", |_| true).await?;
    let p = node.wait_playlist(1).await?;
    assert_eq!(playlist_ids(&p), ["a"]);
    Ok(())
}

#[tokio::test]
async fn sigkill_of_the_server_moves_the_node_to_the_other_and_nothing_is_lost() -> Result<()> {
    let Some(admin) = pg::admin_url("sigkill_of_the_server_moves_the_node") else {
        return Ok(());
    };
    let mut pair = Pair::start(&admin).await?;
    let (a_url, b_url) = (pair.a.url.clone(), pair.b.url.clone());
    // The flag repeated.
    let mut node = pair.node(&[&a_url, &b_url]).await?;
    on_first(&mut node, &a_url).await?;

    pair.a.kill9().await?;
    // A change made while the node finds its way to the other server.
    node.send(json!({"cmd":"add","track":track("b")})).await?;

    let moved = node.wait_event("server", |_| true).await?;
    eprintln!("moved: {moved}");
    assert!(is(&moved["url"], &b_url), "{moved}");
    assert!(is(&moved["previous"], &a_url), "{moved}");
    assert_eq!(
        moved["notice"], false,
        "a killed server gives no notice: {moved}"
    );
    // Re-joined on the other server; the playlist has the append.
    node.wait_event("ready", |_| true).await?;
    let p = node.wait_playlist(2).await?;
    assert_eq!(playlist_ids(&p), ["a", "b"]);
    assert_eq!(pair.playlist_on(&b_url).await?, ["a", "b"]);
    let status = node.status().await?;
    assert!(is(&status["server"], &b_url), "{status}");
    assert!(
        !node.history().iter().any(|e| e["event"] == "error"),
        "no error: {:?}",
        node.history()
    );
    node.quit().await?;
    Ok(())
}

#[tokio::test]
async fn sigterm_tells_the_node_to_move_and_it_moves_at_once() -> Result<()> {
    let Some(admin) = pg::admin_url("sigterm_tells_the_node_to_move") else {
        return Ok(());
    };
    let mut pair = Pair::start(&admin).await?;
    let (a_url, b_url) = (pair.a.url.clone(), pair.b.url.clone());
    // Comma-separated.
    let both = format!("{a_url},{b_url}");
    let mut node = pair.node(&[&both]).await?;
    on_first(&mut node, &a_url).await?;

    let pid = pair.a.child.id().context("server pid")?;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(term.success());
    let exit = tokio::time::timeout(WAIT, pair.a.child.wait())
        .await
        .context("the server did not exit after SIGTERM")??;
    assert!(exit.success(), "server exit {exit}");

    let moved = node.wait_event("server", |_| true).await?;
    eprintln!("moved: {moved}");
    assert!(is(&moved["url"], &b_url), "{moved}");
    assert!(is(&moved["previous"], &a_url), "{moved}");
    assert_eq!(moved["notice"], true, "moved on the notice: {moved}");
    node.wait_event("ready", |_| true).await?;
    node.send(json!({"cmd":"add","track":track("c")})).await?;
    let p = node.wait_playlist(2).await?;
    assert_eq!(playlist_ids(&p), ["a", "c"]);
    assert_eq!(pair.playlist_on(&b_url).await?, ["a", "c"]);
    node.quit().await?;
    Ok(())
}

#[tokio::test]
async fn a_node_whose_first_server_is_down_at_start_logs_in_on_the_next() -> Result<()> {
    let Some(admin) = pg::admin_url("a_node_whose_first_server_is_down_at_start") else {
        return Ok(());
    };
    let mut pair = Pair::start(&admin).await?;
    let (a_url, b_url) = (pair.a.url.clone(), pair.b.url.clone());
    pair.a.kill9().await?;
    let mut node = pair.node(&[&a_url, &b_url]).await?;
    let first = node
        .wait_for_within("server", Duration::from_secs(30), |v| {
            v["event"] == "server"
        })
        .await?;
    assert!(is(&first["url"], &b_url), "{first}");
    node.wait_event("ready", |_| true).await?;
    let p = node.wait_playlist(1).await?;
    assert_eq!(playlist_ids(&p), ["a"]);
    node.quit().await?;
    Ok(())
}

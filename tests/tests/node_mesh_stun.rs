//! ICE servers from the settings: two `jamz node --json` processes started with
//! `--ice-server` (a real STUN server on loopback, and one that never answers) ask it from
//! their mesh sockets and still link; a TURN URL without its credentials is refused by name
//! before anything starts.
//! docs/node-control.md, "Peer mesh".
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::time::Duration;

use anyhow::Result;
use jamz_e2e::workspace_bin;
use jamz_mesh::stun_responder::StunResponder;
use node_support::{PASSWORD, World};

/// Bound on waiting for the STUN questions (they go out when the mesh starts).
const ASKED_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ask_the_stun_servers_of_their_settings_and_link() -> Result<()> {
    let world = World::new(2).await?;
    let stun = StunResponder::start()?;
    let silent = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let servers = format!("{},stun:{}", stun.url(), silent.local_addr()?);
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut n = world
            .node_with_args(i, "null", &[], &["--ice-server", servers.as_str()])
            .await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    world.wait_linked(&mut nodes, 2).await?;
    // Each node's mesh socket asked (two distinct sources).
    let asked = tokio::task::block_in_place(|| stun.wait_askers(2, ASKED_WITHIN));
    assert_eq!(asked.len(), 2, "one mesh socket per node asked: {asked:?}");
    assert!(asked.iter().all(|a| a.ip().is_loopback()), "{asked:?}");
    for n in &mut nodes {
        let s = n.status().await?;
        assert_eq!(s["peers"], 1, "{}: {s}", n.name);
    }
    for n in nodes {
        n.quit().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_server_without_credentials_is_refused_by_name() -> Result<()> {
    let world = World::new(1).await?;
    let config = world.dir.path().join("config");
    let out = tokio::process::Command::new(workspace_bin("jamz"))
        .args(["node", "--json", "--server", world.server.url.as_str()])
        .args(["--username", "car0", "--password", PASSWORD])
        .args(["--group", world.group.as_str(), "--output", "null"])
        .args(["--ice-server", "turn:relay.example.test:3478"])
        .args(["--ice-server", "stun:127.0.0.1:3478"])
        .env("JAMZ_CONFIG_DIR", &config)
        .env_remove("JAMZ_DISCOVER")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a TURN URL without credentials must not start a node"
    );
    assert!(
        stderr.contains("--ice-server")
            && stderr.contains("turn:relay.example.test:3478")
            && stderr.contains("needs a username and credential"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no events before the refusal");
    Ok(())
}

//! A missing link, end to end (docs/mesh-trust.md, "Relaying"): a real server and three
//! `jamz node --json` processes, where the DJ's device and car C have no path to each
//! other; the server is killed with SIGKILL and C still follows the DJ's pause, seek and
//! play, carried by B, the car in between, and checked by C against the DJ's signature;
//! and, with the server gone, the path between the DJ and C opens and their link comes up
//! on signals B carries over the mesh.
//!
//! The network: a network namespace this test makes (`unshare --net`, `ip` from iproute2:
//! scripts/apt/platform.txt; needs root or user namespaces) with three addresses on `lo`,
//! 10.0.1.1 (the DJ), 10.0.2.1 (B) and 10.0.3.1 (C). Each node reaches the server (listening
//! on all of them) at its own address, so it binds its mesh socket there (docs/protocol.md,
//! "Addresses"). Policy rules drop everything between 10.0.1.1 and 10.0.3.1 (`blackhole`,
//! ahead of the `local` table, which moves from preference 0 to 100): DJ - B - C, no DJ - C.
//! Skipped with a printed reason when no namespace can be made, unless
//! `JAMZ_REQUIRE_NETNS=1` (as on CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::{Context, Result};
use node_support::{NodeProc, World, click_track};
use serde_json::{Value, json};

const SETUP: &str = r#"
ip link set lo up
ip addr add 10.0.1.1/32 dev lo
ip addr add 10.0.2.1/32 dev lo
ip addr add 10.0.3.1/32 dev lo
ip rule add pref 100 table local
ip rule del pref 0
ip rule add from 10.0.1.1 to 10.0.3.1 blackhole pref 50
ip rule add from 10.0.3.1 to 10.0.1.1 blackhole pref 50
exec "$@"
"#;

/// Where node `i` reaches the server (and so where its mesh socket is).
fn address(i: usize) -> String {
    format!("10.0.{}.1", i + 1)
}

/// A `status` counter of the `mesh` object.
fn counter(status: &Value, name: &str) -> u64 {
    status["mesh"][name].as_u64().unwrap_or(0)
}

async fn statuses(nodes: &mut [NodeProc]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for n in nodes.iter_mut() {
        let s = n.status().await?;
        eprintln!("{}: peers {} mesh {}", n.name, s["peers"], s["mesh"]);
        out.push(s);
    }
    Ok(out)
}

#[test]
fn a_node_with_no_path_to_the_dj_follows_it_through_a_relay_after_the_server_dies() {
    const NAME: &str =
        "a_node_with_no_path_to_the_dj_follows_it_through_a_relay_after_the_server_dies";
    jamz_e2e::run_in_network_namespace(NAME, SETUP, missing_link);
}

async fn missing_link() -> Result<()> {
    let mut world = World::new_bound(3, "0.0.0.0:0", &[]).await?;
    let port = world
        .server
        .addr
        .rsplit(':')
        .next()
        .context("server port")?
        .to_owned();
    let first = world.dir.path().join("first.wav");
    let second = world.dir.path().join("second.wav");
    click_track(&first, 40.0, 1.0)?;
    click_track(&second, 40.0, -1.0)?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let url = format!("http://{}:{port}", address(i));
        let mut n = world.node_at(i, &url, "null", &[], &[]).await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    let (dj, b, c) = (world.user_id(0), world.user_id(1), world.user_id(2));
    nodes[0].take_control(dj).await?;
    nodes[0].add(&first, 1).await?;
    let pl = nodes[0].add(&second, 2).await?;
    let id1 = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    for n in nodes[1..].iter_mut() {
        n.wait_playlist(2).await?;
    }

    // The links that can exist come up through the server's signaling: DJ - B, B - C.
    for (i, peers) in [(0, vec![b]), (1, vec![dj, c]), (2, vec![b])] {
        for p in peers {
            nodes[i]
                .wait_event("peer", |v| v["userId"] == p && v["state"] == "connected")
                .await?;
        }
    }
    nodes[0]
        .send(json!({"cmd":"play","track":id1,"position":0.0}))
        .await?;
    for n in nodes[1..].iter_mut() {
        n.wait_position(&id1, 1.0).await?;
    }
    // The DJ and C never link: one peer each, B two.
    let s = statuses(&mut nodes).await?;
    assert_eq!(
        [&s[0]["peers"], &s[1]["peers"], &s[2]["peers"]],
        [1, 2, 1],
        "{s:?}"
    );
    assert!(
        !nodes[0]
            .history()
            .iter()
            .any(|v| v["event"] == "peer" && v["userId"] == c && v["state"] == "connected"),
        "the DJ reached C directly"
    );

    // The server dies: only B carries the DJ's words to C.
    for n in nodes.iter_mut() {
        n.clear();
    }
    let tmp = world.server.take_dir();
    world.server.kill9().await?;
    for n in nodes.iter_mut() {
        let e = n.wait_event("tier", |v| v["tier"] == "mesh").await?;
        eprintln!("{}: {e}", n.name);
    }
    let before = statuses(&mut nodes).await?;

    nodes[0].send(json!({"cmd":"pause"})).await?;
    for n in nodes[1..].iter_mut() {
        let ev = n
            .wait_event("playback", |v| {
                v["playing"] == false && v["track"] == id1.as_str()
            })
            .await?;
        eprintln!("{}: paused: {ev}", n.name);
    }
    nodes[0].send(json!({"cmd":"seek","position":20.0})).await?;
    for n in nodes[1..].iter_mut() {
        let ev = n
            .wait_event("playback", |v| {
                v["playing"] == false && v["position"].as_f64() == Some(20.0)
            })
            .await?;
        eprintln!("{}: seeked: {ev}", n.name);
    }
    nodes[0].send(json!({"cmd":"play"})).await?;
    for n in nodes[1..].iter_mut() {
        let ev = n
            .wait_event("playback", |v| {
                v["playing"] == true
                    && v["track"] == id1.as_str()
                    && v["position"]
                        .as_f64()
                        .is_some_and(|p| (20.0..21.0).contains(&p))
            })
            .await?;
        eprintln!("{}: playing from 20 s: {ev}", n.name);
    }
    let p = nodes[2].wait_position(&id1, 20.5).await?;
    eprintln!("{}: plays on at {p:.2} s", nodes[2].name);

    let after = statuses(&mut nodes).await?;
    let delta = |i: usize, name: &str| counter(&after[i], name) - counter(&before[i], name);
    // The DJ signed its three controls (and its position syncs).
    assert!(delta(0, "signed") >= 3, "DJ: {}", after[0]);
    // B passed them on to C (its only other link)...
    assert!(delta(1, "relayed") >= 3, "B: {}", after[1]);
    // ...B heard them from their author, C only relayed, each signature checked.
    assert_eq!(delta(1, "relayed_in"), 0, "B: {}", after[1]);
    assert!(delta(2, "relayed_in") >= 3, "C: {}", after[2]);
    assert_eq!(after[2]["peers"], 1, "C: {}", after[2]);
    assert_eq!(after[2]["tier"], "mesh", "C: {}", after[2]);
    for n in nodes {
        n.quit().await?;
    }
    drop(tmp);
    Ok(())
}

/// The same network; with the server gone the path between the DJ and C opens (the
/// `blackhole` rules go): their link comes up through signals B carries over the mesh
/// (docs/mesh-trust.md, "Signaling over the mesh"), and C then hears the DJ directly.
#[test]
fn with_the_server_gone_the_dj_and_c_link_through_signals_b_carries() {
    const NAME: &str = "with_the_server_gone_the_dj_and_c_link_through_signals_b_carries";
    jamz_e2e::run_in_network_namespace(NAME, SETUP, link_over_the_mesh);
}

/// How long ICE takes to give up on the blocked link and the mesh to try again, at most.
const RELINK_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

async fn link_over_the_mesh() -> Result<()> {
    let mut world = World::new_bound(3, "0.0.0.0:0", &[]).await?;
    let port = world
        .server
        .addr
        .rsplit(':')
        .next()
        .context("server port")?
        .to_owned();
    let song = world.dir.path().join("song.wav");
    click_track(&song, 60.0, 1.0)?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let url = format!("http://{}:{port}", address(i));
        let mut n = world.node_at(i, &url, "null", &[], &[]).await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    let (dj, b, c) = (world.user_id(0), world.user_id(1), world.user_id(2));
    nodes[0].take_control(dj).await?;
    let pl = nodes[0].add(&song, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    for n in nodes[1..].iter_mut() {
        n.wait_playlist(1).await?;
    }
    for (i, p) in [(0, b), (1, dj), (1, c), (2, b)] {
        nodes[i]
            .wait_event("peer", |v| v["userId"] == p && v["state"] == "connected")
            .await?;
    }
    nodes[0]
        .send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    nodes[2].wait_position(&id, 1.0).await?;

    let tmp = world.server.take_dir();
    world.server.kill9().await?;
    for n in nodes.iter_mut() {
        n.wait_event("tier", |v| v["tier"] == "mesh").await?;
    }
    // The path opens. No server: only signals carried over the mesh can set the link up.
    for (from, to) in [("10.0.1.1", "10.0.3.1"), ("10.0.3.1", "10.0.1.1")] {
        let out = std::process::Command::new("ip")
            .args([
                "rule",
                "del",
                "from",
                from,
                "to",
                to,
                "blackhole",
                "pref",
                "50",
            ])
            .output()?;
        anyhow::ensure!(out.status.success(), "ip rule del: {out:?}");
    }
    let ev = nodes[2]
        .wait_for_within("the DJ's link", RELINK_WAIT, |v| {
            v["event"] == "peer" && v["userId"] == dj && v["state"] == "connected"
        })
        .await?;
    eprintln!("{}: {ev}", nodes[2].name);
    nodes[0]
        .wait_event("peer", |v| v["userId"] == c && v["state"] == "connected")
        .await?;
    let s = statuses(&mut nodes).await?;
    for (i, st) in s.iter().enumerate() {
        assert_eq!(st["tier"], "mesh", "{}: {st}", nodes[i].name);
        assert_eq!(st["peers"], 2, "{}: {st}", nodes[i].name);
    }
    // B carried the DJ's and C's signals; each got the other's over the mesh.
    assert!(counter(&s[1], "signals_relayed") >= 2, "B: {}", s[1]);
    for i in [0, 2] {
        assert!(counter(&s[i], "signals_sent") >= 1, "{}", s[i]);
        assert!(counter(&s[i], "signals_in") >= 1, "{}", s[i]);
    }
    // The DJ's pause reaches C over the new link too.
    nodes[0].send(json!({"cmd":"pause"})).await?;
    let ev = nodes[2]
        .wait_event("playback", |v| {
            v["playing"] == false && v["track"] == id.as_str()
        })
        .await?;
    eprintln!("{}: paused: {ev}", nodes[2].name);
    for n in nodes {
        n.quit().await?;
    }
    drop(tmp);
    Ok(())
}

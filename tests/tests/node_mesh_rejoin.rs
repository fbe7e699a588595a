//! A node restarted while the server is dead rejoins the mesh (docs/node-control.md,
//! "Starting with the server gone"; docs/protocol.md, "Rejoining without the server"): a
//! real server and three `jamz node --json` processes play over linked meshes; the server
//! is killed with SIGKILL; then car C (not the DJ) is killed with SIGKILL and started
//! again. With no server to log in to, C starts from the session it kept in its cache
//! directory, asks B (the address it kept) for a link straight at B's mesh socket, and
//! gets its link to the DJ through signals B carries over the mesh. C then follows the
//! DJ's pause and seek, and when the server restarts every node is back on the socket
//! tier, C included (with the login token it kept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jamz_e2e::TestServer;
use node_support::{NodeProc, WAIT, World, click_track};
use serde_json::{Value, json};

/// A link's failure is found by ICE's consent checks, after seconds of silence; a
/// restarted node's links come up within a few rounds of `mesh-rejoin`.
const LINK_WAIT: Duration = Duration::from_secs(90);

/// The session C keeps in its cache directory, once it lists `peers` peer addresses.
async fn wait_kept(cache: &Path, peers: usize) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut last = Value::Null;
        if let Ok(dir) = std::fs::read_dir(cache) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("kept-session-") && name.ends_with(".json") {
                    let text = std::fs::read_to_string(entry.path())?;
                    last = serde_json::from_str(&text).context("kept session")?;
                }
            }
        }
        if last["peers"].as_object().is_some_and(|p| p.len() == peers) {
            return Ok(last);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no kept session with {peers} peers in {cache:?} within {WAIT:?}: {last}");
        }
        // A file written by another process: looked at again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counter(status: &Value, name: &str) -> u64 {
    status["mesh"][name].as_u64().unwrap_or(0)
}

async fn connected_to(n: &mut NodeProc, user: i64, wait: Duration) -> Result<()> {
    let e = n
        .wait_for_within("a link", wait, |v| {
            v["event"] == "peer" && v["userId"] == user && v["state"] == "connected"
        })
        .await?;
    eprintln!("{}: {e}", n.name);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_the_server_dead_rejoins_the_mesh_and_follows_the_dj() -> Result<()> {
    let mut world = World::new(3).await?;
    let track = world.dir.path().join("long.wav");
    click_track(&track, 60.0, 1.0)?;
    let mut dj = world.node(0, "null", &[]).await?;
    let mut b = world.node(1, "null", &[]).await?;
    let mut c = world.node(2, "null", &[]).await?;
    for n in [&mut dj, &mut b, &mut c] {
        n.wait_event("ready", |_| true).await?;
    }
    let (dj_user, b_user, c_user) = (world.user_id(0), world.user_id(1), world.user_id(2));
    dj.take_control(dj_user).await?;
    let pl = dj.add(&track, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    b.wait_playlist(1).await?;
    c.wait_playlist(1).await?;
    for (n, others) in [
        (&mut dj, [b_user, c_user]),
        (&mut b, [dj_user, c_user]),
        (&mut c, [dj_user, b_user]),
    ] {
        for u in others {
            connected_to(n, u, WAIT).await?;
        }
    }
    dj.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    b.wait_position(&id, 1.0).await?;
    c.wait_position(&id, 1.0).await?;
    // C has kept the session, with where its two peers are.
    let c_cache = world.dir.path().join("cache-car2");
    let kept = wait_kept(&c_cache, 2).await?;
    eprintln!(
        "C keeps session {} with peers {} and DJ {}",
        kept["sessionId"], kept["peers"], kept["controller"]
    );
    assert_eq!(kept["controller"], dj_user, "{kept}");
    assert!(kept["grant"].is_object(), "the DJ's grant is kept: {kept}");

    // The server dies: everyone on the mesh.
    for n in [&mut dj, &mut b, &mut c] {
        n.clear();
    }
    let tmp = world.server.take_dir();
    let (addr, dir) = (world.server.addr.clone(), world.server.dir.clone());
    world.server.kill9().await?;
    for n in [&mut dj, &mut b, &mut c] {
        let e = n.wait_event("tier", |v| v["tier"] == "mesh").await?;
        eprintln!("{}: {e}", n.name);
    }

    // C dies too; B and the DJ find its links gone.
    c.kill9().await?;
    for n in [&mut dj, &mut b] {
        let e = n
            .wait_for_within("C's link closed", LINK_WAIT, |v| {
                v["event"] == "peer" && v["userId"] == c_user && v["state"] == "closed"
            })
            .await?;
        eprintln!("{}: {e}", n.name);
    }
    let before_b = b.status().await?;

    // C starts again, with no server: from its kept session.
    let mut c = world.node(2, "null", &[]).await?;
    let e = c.wait_event("tier", |_| true).await?;
    eprintln!("{}: first tier: {e}", c.name);
    assert_eq!(e["tier"], "offline", "{e}");
    assert!(
        e["reason"].as_str().unwrap_or("").contains("kept session"),
        "{e}"
    );
    connected_to(&mut c, b_user, LINK_WAIT).await?;
    connected_to(&mut c, dj_user, LINK_WAIT).await?;
    connected_to(&mut dj, c_user, LINK_WAIT).await?;
    let e = c.wait_event("tier", |v| v["tier"] == "mesh").await?;
    eprintln!("{}: {e}", c.name);

    let sc = c.status().await?;
    let sb = b.status().await?;
    let sdj = dj.status().await?;
    for (name, s) in [("C", &sc), ("B", &sb), ("DJ", &sdj)] {
        eprintln!(
            "{name}: tier {} peers {} mesh {}",
            s["tier"], s["peers"], s["mesh"]
        );
    }
    assert_eq!(sc["peers"], 2, "C has its two links back: {sc}");
    assert_eq!(sc["tier"], "mesh", "{sc}");
    assert!(counter(&sc, "rejoins_sent") >= 1, "C asked for links: {sc}");
    assert!(
        counter(&sb, "direct_in") > counter(&before_b, "direct_in"),
        "C reached B straight at its mesh socket: {sb}"
    );
    assert!(
        counter(&sb, "signals_relayed") > counter(&before_b, "signals_relayed"),
        "B carried the signals of C's link to the DJ: {sb}"
    );
    assert!(
        counter(&sdj, "rejoins_in") >= 1,
        "the DJ heard C's rejoin (carried by B): {sdj}"
    );

    // C follows the DJ, the server still dead.
    c.clear();
    b.clear();
    dj.send(json!({"cmd":"pause"})).await?;
    for n in [&mut b, &mut c] {
        let e = n
            .wait_event("playback", |v| {
                v["playing"] == false && v["track"] == id.as_str()
            })
            .await?;
        eprintln!("{}: paused: {e}", n.name);
    }
    dj.send(json!({"cmd":"seek","position":20.0})).await?;
    for n in [&mut b, &mut c] {
        let e = n
            .wait_event("playback", |v| {
                v["playing"] == false && v["position"].as_f64() == Some(20.0)
            })
            .await?;
        eprintln!("{}: seeked: {e}", n.name);
    }
    let s = c.status().await?;
    assert_eq!(s["tier"], "mesh", "{s}");
    assert_eq!(s["playing"], false, "{s}");

    // The server returns: the socket tier for everyone, C too (its kept token).
    world.server = TestServer::start_in(&dir, &addr).await?;
    for n in [&mut dj, &mut b, &mut c] {
        let e = n.wait_event("tier", |v| v["tier"] == "socket").await?;
        eprintln!("{}: {e}", n.name);
        n.wait_event("ready", |_| true).await?;
    }
    let s = c.status().await?;
    assert_eq!(s["tier"], "socket", "{s}");
    for n in [dj, b, c] {
        n.quit().await?;
    }
    drop(tmp);
    Ok(())
}

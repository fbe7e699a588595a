//! The session goes on over the peer mesh when the server is gone: a real server and three
//! `jamz node --json` processes; their mesh links come up through the server's
//! `webrtc-signal` relay; the server is killed with SIGKILL; the DJ pauses, seeks, plays
//! and changes track, and every node follows (its `playback` events and `status`); the
//! tier goes socket -> mesh; a car's position and its "location off" reach the others over
//! the mesh; the server restarts and the tier comes back to socket with everyone still on
//! the DJ's track.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::TestServer;
use node_support::{NodeProc, World, click_track};
use serde_json::{Value, json};

const NODES: usize = 3;

/// Waits on each follower for a `playback` event matching `pred`.
async fn all_follow(
    followers: &mut [NodeProc],
    what: &str,
    pred: impl Fn(&Value) -> bool + Copy,
) -> Result<()> {
    for f in followers.iter_mut() {
        let ev = f.wait_event("playback", pred).await?;
        eprintln!("{}: {what}: {ev}", f.name);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_djs_controls_reach_every_node_over_the_mesh_after_the_server_dies() -> Result<()> {
    let mut world = World::new(NODES).await?;
    let first = world.dir.path().join("first.wav");
    let second = world.dir.path().join("second.wav");
    click_track(&first, 40.0, 1.0)?;
    click_track(&second, 40.0, -1.0)?;
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let mut n = world.node(i, "null", &[]).await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    let (dj, followers) = nodes.split_first_mut().unwrap();
    dj.take_control(world.user_id(0)).await?;
    dj.add(&first, 1).await?;
    let pl = dj.add(&second, 2).await?;
    let id1 = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    let id2 = pl["playlist"][1]["id"].as_str().unwrap().to_owned();
    for f in followers.iter_mut() {
        f.wait_playlist(2).await?;
    }

    // Every node links with every other through the server's signaling relay.
    for (i, n) in std::iter::once(&mut *dj)
        .chain(followers.iter_mut())
        .enumerate()
    {
        for j in (0..NODES).filter(|j| *j != i) {
            let user = world.user_id(j);
            n.wait_event("peer", |v| v["userId"] == user && v["state"] == "connected")
                .await?;
        }
        let s = n.status().await?;
        assert_eq!(s["peers"], (NODES - 1) as u64, "{}: {s}", n.name);
        assert_eq!(s["tier"], "socket", "{}: {s}", n.name);
    }

    dj.send(json!({"cmd":"play","track":id1,"position":0.0}))
        .await?;
    for f in followers.iter_mut() {
        f.wait_position(&id1, 1.0).await?;
    }

    // The server dies: every node goes on over the mesh.
    for n in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        n.clear();
    }
    let tmp = world.server.take_dir();
    let (addr, dir) = (world.server.addr.clone(), world.server.dir.clone());
    world.server.kill9().await?;
    for n in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        let e = n.wait_event("tier", |v| v["tier"] == "mesh").await?;
        eprintln!("{}: {e}", n.name);
        assert!(
            e["reason"].as_str().unwrap_or("").contains("on the mesh"),
            "{e}"
        );
    }

    // A car shares its position with the server gone: the others see it over the mesh,
    // and then see it turned off.
    let (car, others) = followers.split_first_mut().unwrap();
    let car_user = world.user_id(1);
    car.send(json!({"cmd":"share-location","enabled":true}))
        .await?;
    car.send(json!({"cmd":"location","latitude":48.2,"longitude":11.5,"speed":20}))
        .await?;
    for n in std::iter::once(&mut *dj).chain(others.iter_mut()) {
        let e = n
            .wait_event("location", |v| v["userId"] == car_user)
            .await?;
        assert_eq!(e["latitude"], 48.2, "{}: {e}", n.name);
        eprintln!("{}: sees {} over the mesh: {e}", n.name, car.name);
    }
    car.send(json!({"cmd":"share-location","enabled":false}))
        .await?;
    for n in std::iter::once(&mut *dj).chain(others.iter_mut()) {
        n.wait_event("location-off", |v| v["userId"] == car_user)
            .await?;
    }

    dj.send(json!({"cmd":"pause"})).await?;
    all_follow(followers, "paused", |v| {
        v["playing"] == false && v["track"] == id1.as_str()
    })
    .await?;

    dj.send(json!({"cmd":"seek","position":20.0})).await?;
    all_follow(followers, "seeked", |v| {
        v["playing"] == false && v["position"].as_f64() == Some(20.0)
    })
    .await?;

    dj.send(json!({"cmd":"play"})).await?;
    all_follow(followers, "playing from 20 s", |v| {
        v["playing"] == true
            && v["track"] == id1.as_str()
            && v["position"]
                .as_f64()
                .is_some_and(|p| (20.0..21.0).contains(&p))
    })
    .await?;

    dj.send(json!({"cmd":"next"})).await?;
    all_follow(followers, "changed track", |v| {
        v["playing"] == true && v["track"] == id2.as_str()
    })
    .await?;
    for f in followers.iter_mut() {
        let p = f.wait_position(&id2, 0.5).await?;
        let s = f.status().await?;
        assert_eq!(s["tier"], "mesh", "{}: {s}", f.name);
        eprintln!(
            "{}: plays the DJ's new track over the mesh ({p:.2} s)",
            f.name
        );
    }

    // The server comes back: the socket tier again, everyone still on the DJ's track.
    world.server = TestServer::start_in(&dir, &addr).await?;
    for n in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        let e = n.wait_event("tier", |v| v["tier"] == "socket").await?;
        eprintln!("{}: {e}", n.name);
        n.wait_event("ready", |_| true).await?;
    }
    for f in followers.iter_mut() {
        let s = f.status().await?;
        let p = f.wait_position(&id2, 1.0).await?;
        assert_eq!(s["track"], id2.as_str(), "{}: {s}", f.name);
        eprintln!(
            "{}: back on the socket, still on the DJ's track ({p:.2} s)",
            f.name
        );
    }
    for n in nodes {
        n.quit().await?;
    }
    drop(tmp);
    Ok(())
}

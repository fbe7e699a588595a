//! A DJ whose link drops and returns keeps the role, end to end through the nodes: the
//! DJ's node reaches the real server through a [`LinkProxy`] that closes its connections;
//! once it is back on a new socket, the server still names it DJ and the follower obeys its
//! pause and seek.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::LinkProxy;
use jamz_link::RestClient;
use node_support::{PASSWORD, World, click_track};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dj_back_from_a_dropped_link_still_steers_the_group() -> Result<()> {
    let world = World::new(2).await?;
    let proxy = LinkProxy::start(&world.server.addr).await?;
    let track = world.dir.path().join("long.wav");
    click_track(&track, 60.0, 1.0)?;
    let dj_id = world.user_id(0);

    let mut dj = world.node_at(0, &proxy.url, "null", &[], &[]).await?;
    let mut follower = world.node(1, "null", &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    follower.wait_event("ready", |_| true).await?;
    dj.take_control(dj_id).await?;
    follower
        .wait_event("controller", |v| v["userId"] == dj_id)
        .await?;
    let pl = dj.add(&track, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    follower.wait_playlist(1).await?;
    dj.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    follower
        .wait_event("playback", |v| v["playing"] == true)
        .await?;

    // The DJ's link drops and returns: it joins again on a new socket.
    let from = follower.history().len();
    dj.clear();
    proxy.cut();
    dj.wait_event("tier", |v| v["tier"] != "socket").await?;
    proxy.restore();
    dj.wait_event("tier", |v| v["tier"] == "socket").await?;
    let ready = dj.wait_event("ready", |_| true).await?;
    eprintln!("the DJ joined again: {ready}");

    // The server still names it DJ...
    let rest = RestClient::new(&world.server.url)?;
    rest.login(&world.users[1].0, PASSWORD).await?;
    let session = rest.session_for_group(&world.group).await?;
    assert_eq!(
        session.music.controller_id,
        Some(dj_id),
        "{:?}",
        session.music
    );

    // ... and the follower obeys it: pause, then play from 30 s.
    follower.clear();
    dj.send(json!({"cmd":"pause"})).await?;
    follower
        .wait_event("playback", |v| v["playing"] == false)
        .await?;
    dj.send(json!({"cmd":"play","track":id,"position":30.0}))
        .await?;
    let p = follower
        .wait_event("playback", |v| {
            v["playing"] == true && v["position"].as_f64().is_some_and(|p| p >= 29.5)
        })
        .await?;
    eprintln!("the follower plays again: {p}");
    let s = follower.status().await?;
    assert_eq!(s["track"], json!(id), "{s}");
    // Nobody else took the role on the way.
    let since = &follower.history()[from..];
    assert!(
        !since
            .iter()
            .any(|v| v["event"] == "controller" && v["userId"] != dj_id),
        "the role moved: {since:?}"
    );
    dj.quit().await?;
    follower.quit().await?;
    Ok(())
}

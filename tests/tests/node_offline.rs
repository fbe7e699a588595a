//! The tier follows the link: a node playing when the server is killed reports
//! `tier: offline`, keeps playing from its cache, and reports `tier: socket`
//! again once the server is back on the same address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::TestServer;
use node_support::{World, click_track};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_plays_on_offline_and_comes_back_to_the_socket_tier() -> Result<()> {
    let mut world = World::new(1).await?;
    let track = world.dir.path().join("long.wav");
    click_track(&track, 30.0, 1.0)?;
    let mut n = world.node(0, "null", &[]).await?;
    n.wait_event("tier", |v| v["tier"] == "socket").await?;
    n.wait_event("ready", |_| true).await?;
    n.take_control(world.user_id(0)).await?;
    let pl = n.add(&track, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    n.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    n.wait_position(&id, 1.0).await?;

    // the server dies
    n.clear();
    let tmp = world.server.take_dir();
    let addr = world.server.addr.clone();
    let dir = world.server.dir.clone();
    world.server.kill9().await?;
    let e = n.wait_event("tier", |v| v["tier"] == "offline").await?;
    eprintln!("tier event: {e}");
    let s = n.status().await?;
    assert_eq!(s["tier"], "offline", "{s}");
    let p = s["position"].as_f64().unwrap_or(0.0);
    let later = n.wait_position(&id, p + 1.0).await?;
    eprintln!("played on offline from {p:.2} s to {later:.2} s");
    let s = n.status().await?;
    assert_eq!(s["tier"], "offline", "{s}");

    // and comes back
    n.clear();
    world.server = TestServer::start_in(&dir, &addr).await?;
    let e = n.wait_event("tier", |v| v["tier"] == "socket").await?;
    eprintln!("tier event: {e}");
    n.wait_event("ready", |_| true).await?;
    let s = n.status().await?;
    assert_eq!(s["tier"], "socket", "{s}");
    assert_eq!(s["playing"], true, "{s}");
    n.quit().await?;
    drop(tmp);
    Ok(())
}

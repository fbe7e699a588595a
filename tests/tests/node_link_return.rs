//! Auto-preload when the link returns: a node started with `--auto-preload` whose link
//! to the server is cut (a [`LinkProxy`] in front of the server closes its connections)
//! misses the tracks another car adds meanwhile; it cannot fetch them while away, and
//! once the link is back it caches them without being asked; also when the playlist did
//! not change meanwhile (auto-preload turned on while away).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::LinkProxy;
use node_support::{NodeProc, World, click_track};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tracks_added_while_the_link_was_down_are_cached_once_it_returns() -> Result<()> {
    let world = World::new(2).await?;
    let proxy = LinkProxy::start(&world.server.addr).await?;
    let dir = world.dir.path();
    let (a, b) = (dir.join("a.wav"), dir.join("b.wav"));
    click_track(&a, 3.0, 1.0)?;
    click_track(&b, 3.0, -1.0)?;

    let mut n0 = world.node(0, "null", &[]).await?;
    let mut n1 = world
        .node_at(1, &proxy.url, "null", &[], &["--auto-preload"])
        .await?;
    n0.wait_event("ready", |_| true).await?;
    n1.wait_event("ready", |_| true).await?;

    // car1's link goes down; car0 adds two tracks meanwhile.
    n1.clear();
    proxy.cut();
    n1.wait_event("tier", |v| v["tier"] != "socket").await?;
    n0.add(&a, 1).await?;
    n0.add(&b, 2).await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"], 0, "cached while away: {s}");

    // Back: both tracks are cached, unasked (no `preload` command was ever sent).
    back_with_tracks_cached(&proxy, &mut n1, 2).await?;
    n0.quit().await?;
    n1.quit().await?;
    Ok(())
}

/// The same when the node learnt of the track while away: it adds one itself over the peer
/// mesh (its playlist changes at once, yet nothing is fetched while the server is out of
/// reach); once the link is back the track is cached, unasked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_track_added_over_the_mesh_while_away_is_cached_on_return() -> Result<()> {
    let world = World::new(2).await?;
    let proxy = LinkProxy::start(&world.server.addr).await?;
    let file = world.dir.path().join("c.wav");
    click_track(&file, 3.0, 1.0)?;
    // A file on the server that is in no playlist yet.
    let rest = jamz_link::RestClient::new(&world.server.url)?;
    rest.login(&world.users[0].0, node_support::PASSWORD)
        .await?;
    let track = rest
        .upload(jamz_link::Upload {
            file_name: "c.wav".into(),
            content_type: Some("audio/wav".into()),
            data: std::fs::read(&file)?.into(),
            ..jamz_link::Upload::default()
        })
        .await?;

    let mut n0 = world.node(0, "null", &[]).await?;
    let mut n1 = world
        .node_at(1, &proxy.url, "null", &[], &["--auto-preload"])
        .await?;
    n0.wait_event("ready", |_| true).await?;
    n1.wait_event("ready", |_| true).await?;
    n1.wait_event("peer", |v| v["state"] == "connected").await?;

    n1.clear();
    proxy.cut();
    n1.wait_event("tier", |v| v["tier"] == "mesh").await?;
    n1.send(serde_json::json!({"cmd":"add","track":track}))
        .await?;
    n1.wait_playlist(1).await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"], 0, "cached while away: {s}");

    back_with_tracks_cached(&proxy, &mut n1, 1).await?;
    n0.quit().await?;
    n1.quit().await?;
    Ok(())
}

/// The same when nothing changed while away: the node knew the playlist, yet had not
/// cached it (auto-preload was off) when the link went down; turned on while away it can
/// fetch nothing, and once the link is back (the playlist as it was, so no change to set it
/// off) the tracks are cached, unasked: auto-preload runs "when the link comes back"
/// (docs/node-control.md, `auto-preload`), not only when the playlist changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_preload_turned_on_while_away_caches_when_the_link_returns() -> Result<()> {
    let world = World::new(2).await?;
    let proxy = LinkProxy::start(&world.server.addr).await?;
    let dir = world.dir.path();
    let (a, b) = (dir.join("a.wav"), dir.join("b.wav"));
    click_track(&a, 3.0, 1.0)?;
    click_track(&b, 3.0, -1.0)?;

    let mut n0 = world.node(0, "null", &[]).await?;
    let mut n1 = world.node_at(1, &proxy.url, "null", &[], &[]).await?;
    n0.wait_event("ready", |_| true).await?;
    n1.wait_event("ready", |_| true).await?;
    n0.add(&a, 1).await?;
    n0.add(&b, 2).await?;
    n1.wait_playlist(2).await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"], 0, "cached without auto-preload: {s}");

    n1.clear();
    proxy.cut();
    n1.wait_event("tier", |v| v["tier"] != "socket").await?;
    n1.send(serde_json::json!({"cmd":"auto-preload","enabled":true}))
        .await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"], 0, "cached while away: {s}");

    back_with_tracks_cached(&proxy, &mut n1, 2).await?;
    n0.quit().await?;
    n1.quit().await?;
    Ok(())
}

/// The link comes back: the node is on the socket again, preloads `tracks` unasked, and
/// its cache then holds them.
async fn back_with_tracks_cached(proxy: &LinkProxy, n1: &mut NodeProc, tracks: u64) -> Result<()> {
    proxy.restore();
    n1.wait_event("tier", |v| v["tier"] == "socket").await?;
    n1.wait_event("progress", |v| {
        v["what"] == "preload" && v["total"] == tracks && v["done"] == tracks
    })
    .await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"], tracks, "{s}");
    Ok(())
}

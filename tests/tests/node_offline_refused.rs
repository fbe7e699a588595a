//! Playlist changes a DJ makes while its link is down (`reorder`, `remove`) wait in its
//! outbox and reach the server when the link is back; a waiting change the server then
//! refuses, because another member took the DJ role meanwhile (the server's own rule: only
//! the DJ may delete), is reported with an `error` event and leaves the outbox, never lost
//! silently nor applied. The DJ's node reaches the real server through a [`LinkProxy`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::LinkProxy;
use node_support::{NodeProc, World, click_track, playlist_ids};
use serde_json::{Value, json};

async fn outbox_of(n: &mut NodeProc, len: usize) -> Result<Value> {
    n.wait_event("outbox", |v| {
        v["pending"].as_array().is_some_and(|p| p.len() == len)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_remove_and_reorder_arrive_and_a_refused_one_is_reported() -> Result<()> {
    let world = World::new(2).await?;
    let proxy = LinkProxy::start(&world.server.addr).await?;
    let dir = world.dir.path();
    let mut dj = world.node_at(0, &proxy.url, "null", &[], &[]).await?;
    let mut other = world.node(1, "null", &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    other.wait_event("ready", |_| true).await?;
    dj.take_control(world.user_id(0)).await?;
    let mut tracks = Vec::new();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let path = dir.join(format!("{name}.wav"));
        // Different lengths: different files (the server keeps one copy of equal bytes).
        click_track(&path, 2.0 + 0.2 * i as f64, 1.0)?;
        let pl = dj.add(&path, i + 1).await?;
        tracks = playlist_ids(&pl);
    }
    let [a, b, c] = [&tracks[0], &tracks[1], &tracks[2]].map(String::clone);
    other.wait_playlist(3).await?;

    // 1. Away, the DJ reverses the order and removes `a`: both wait, in order (the
    // playlist here changes only when the server has taken them).
    dj.clear();
    proxy.cut();
    dj.wait_event("tier", |v| v["tier"] != "socket").await?;
    dj.send(json!({"cmd":"reorder","order":[c, b, a]})).await?;
    outbox_of(&mut dj, 1).await?;
    dj.send(json!({"cmd":"remove","track":a})).await?;
    let waiting = outbox_of(&mut dj, 2).await?;
    eprintln!("waiting: {waiting}");
    // The others still have all three.
    let s = other.status().await?;
    assert_eq!(s["tier"], "socket", "{s}");
    // Back: the server takes both; everyone has [c, b].
    proxy.restore();
    let want = vec![c.clone(), b.clone()];
    other
        .wait_event("playlist", |v| playlist_ids(v) == want)
        .await?;
    outbox_of(&mut dj, 0).await?;
    dj.wait_event("playlist", |v| playlist_ids(v) == want)
        .await?;

    // 2. Away again, the DJ removes `b`; meanwhile the other member takes the role.
    dj.clear();
    proxy.cut();
    dj.wait_event("tier", |v| v["tier"] != "socket").await?;
    dj.send(json!({"cmd":"remove","track":b})).await?;
    outbox_of(&mut dj, 1).await?;
    other.take_control(world.user_id(1)).await?;
    // Back: the server refuses the waiting change (no longer the DJ's); the DJ's node
    // says so, and the change leaves its outbox.
    proxy.restore();
    let e = dj
        .wait_event("error", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("did not go through"))
        })
        .await?;
    eprintln!("reported: {e}");
    let m = e["message"].as_str().unwrap_or_default();
    assert!(m.contains("DJ"), "the reason is missing: {e}");
    outbox_of(&mut dj, 0).await?;
    let s = dj.status().await?;
    assert_eq!(s["queued"], 0, "{s}");
    // Not applied: the playlist is still [c, b] everywhere.
    let s = other.status().await?;
    assert_eq!(s["tier"], "socket", "{s}");
    let rest = jamz_link::RestClient::new(&world.server.url)?;
    rest.login(&world.users[1].0, node_support::PASSWORD)
        .await?;
    let on_server = rest.session_for_group(&world.group).await?.music.playlist;
    let on_server: Vec<String> = on_server.into_iter().map(|t| t.id).collect();
    assert_eq!(on_server, want);
    dj.quit().await?;
    other.quit().await?;
    Ok(())
}

//! Playlist changes reach the others on a server that follows the seeds' flow strictly:
//! the reference server (`tests/js/ref-server.mjs`, the official Node `socket.io`) stores
//! a REST change and broadcasts nothing; the client that made it tells the room with
//! `playlist-update`, which the server only relays. A second node must see every append,
//! reorder and delete the first one makes, without restarting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::{Context, Result};
use jamz_e2e::RefServer;
use jamz_link::RestClient;
use node_support::{NodeProc, PASSWORD, click_track, playlist_ids};
use serde_json::json;

async fn node(server: &str, group: &str, name: &str, dir: &std::path::Path) -> Result<NodeProc> {
    let cache = dir.join(format!("cache-{name}"));
    let config = dir.join(format!("config-{name}"));
    NodeProc::spawn(
        name,
        &[
            "node",
            "--json",
            "--server",
            server,
            "--username",
            name,
            "--password",
            PASSWORD,
            "--group",
            group,
            "--name",
            &format!("{name}'s car"),
            "--output",
            "null",
            "--cache-dir",
            cache.to_str().context("path")?,
        ],
        &config,
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_sees_every_playlist_change_on_a_relay_only_server() -> Result<()> {
    let server = RefServer::start(None).await?;
    let dir = tempfile::tempdir()?;
    let mut users = Vec::new();
    let mut owner = None;
    for name in ["ann", "bob"] {
        let rest = RestClient::new(&server.url)?;
        let auth = rest
            .register(name, &format!("{name}@example.test"), PASSWORD)
            .await?;
        users.push(auth.user.id);
        owner.get_or_insert(rest);
    }
    let owner = owner.context("no members")?;
    let group = owner.create_group("road trip", None).await?;
    owner.add_member(&group.id, "bob").await?;

    let mut ann = node(&server.url, &group.id, "ann", dir.path()).await?;
    let mut bob = node(&server.url, &group.id, "bob", dir.path()).await?;
    for n in [&mut ann, &mut bob] {
        n.wait_event("ready", |_| true).await?;
    }
    ann.take_control(users[0]).await?;

    // Append: each track ann adds shows up at bob's.
    let mut tracks = Vec::new();
    for (i, seconds) in [3.0, 4.0, 5.0].into_iter().enumerate() {
        let path = dir.path().join(format!("song-{i}.wav"));
        click_track(&path, seconds, 1.0)?;
        let mine = ann.add(&path, i + 1).await?;
        tracks = playlist_ids(&mine);
        let theirs = bob.wait_playlist(i + 1).await?;
        assert_eq!(playlist_ids(&theirs), tracks, "bob after append {i}");
    }

    // Reorder: the last one first.
    let order = vec![tracks[2].clone(), tracks[0].clone(), tracks[1].clone()];
    ann.send(json!({"cmd":"reorder","order":order})).await?;
    let want = order.clone();
    let theirs = bob
        .wait_event("playlist", |v| playlist_ids(v) == want)
        .await
        .context("bob never saw the reorder")?;
    assert_eq!(playlist_ids(&theirs), order);

    // Delete: the middle one.
    ann.send(json!({"cmd":"remove","track":order[1]})).await?;
    let want = vec![order[0].clone(), order[2].clone()];
    let theirs = bob
        .wait_event("playlist", |v| playlist_ids(v) == want)
        .await
        .context("bob never saw the delete")?;
    assert_eq!(playlist_ids(&theirs), want);

    ann.quit().await?;
    bob.quit().await?;
    Ok(())
}

//! Four nodes stay in step through the server's death: a real server and four `jamz node
//! --json` processes writing WAV files play a click track; the server is killed with
//! SIGKILL; over the mesh the DJ pauses, seeks, plays and changes track. The recordings'
//! clicks, paired across nodes, keep the bound the socket tier keeps (node_sources.rs),
//! before and after the failover alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use node_support::{Comparison, World, click_track, wav_clicks};
use serde_json::json;

const NODES: usize = 4;
/// Clicks of two nodes are paired within this window.
const PAIR_WINDOW_S: f64 = 0.25;
/// Nodes writing WAV files on one machine: every paired click within this bound (the
/// socket tier's, as in node_sources.rs).
const MAX_OFFSET_MS: f64 = 5.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_stay_in_step_through_the_servers_death() -> Result<()> {
    let mut world = World::new(NODES).await?;
    let dir = world.dir.path().to_path_buf();
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let first = dir.join("first.wav");
    let second = dir.join("second.wav");
    click_track(&first, 30.0, 1.0)?;
    click_track(&second, 30.0, -1.0)?;
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let mut n = world
            .node(i, &format!("wav:{}", wav(i).display()), &[])
            .await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    world.wait_linked(&mut nodes, NODES).await?;
    let (dj, followers) = nodes.split_first_mut().unwrap();
    dj.take_control(world.user_id(0)).await?;
    dj.add(&first, 1).await?;
    let pl = dj.add(&second, 2).await?;
    let id1 = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    let id2 = pl["playlist"][1]["id"].as_str().unwrap().to_owned();
    for f in followers.iter_mut() {
        f.wait_playlist(2).await?;
    }
    dj.send(json!({"cmd":"play","track":id1,"position":0.0}))
        .await?;
    for f in followers.iter_mut() {
        f.wait_position(&id1, 3.0).await?;
    }

    let _keep = world.server.take_dir();
    world.server.kill9().await?;
    for n in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        n.wait_event("tier", |v| v["tier"] == "mesh").await?;
    }
    dj.wait_position(&id1, 5.0).await?;
    dj.send(json!({"cmd":"pause"})).await?;
    for f in followers.iter_mut() {
        f.wait_event("playback", |v| v["playing"] == false).await?;
    }
    dj.send(json!({"cmd":"seek","position":12.0})).await?;
    dj.send(json!({"cmd":"play"})).await?;
    for f in followers.iter_mut() {
        f.wait_position(&id1, 15.0).await?;
    }
    dj.send(json!({"cmd":"next"})).await?;
    for f in followers.iter_mut() {
        f.wait_position(&id2, 3.0).await?;
    }
    for n in nodes {
        n.quit().await?;
    }

    let reference = wav_clicks(&wav(0))?;
    assert!(
        reference.len() >= 20,
        "the DJ recorded {} clicks",
        reference.len()
    );
    eprintln!("offsets against car0 (the DJ), before and after the server's death:");
    for i in 1..NODES {
        let clicks = wav_clicks(&wav(i))?;
        let c = Comparison::new(
            &format!("car{i} - car0"),
            &reference,
            &clicks,
            PAIR_WINDOW_S,
        );
        c.print();
        assert!(
            c.matched >= 20 && c.matched + 2 >= clicks.len(),
            "car{i}: only {} of {} clicks paired",
            c.matched,
            c.clicks
        );
        assert!(
            c.max_abs_ms() <= MAX_OFFSET_MS,
            "car{i}: max |offset| {:.2} ms > {MAX_OFFSET_MS} ms",
            c.max_abs_ms()
        );
    }
    Ok(())
}

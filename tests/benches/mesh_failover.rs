//! Figures for the peer mesh with N headless nodes (null outputs) on this machine:
//! the time from the server's death (SIGKILL) to the first control carried over the mesh
//! (a DJ's pause issued 100 ms after the kill), and the broadcast latency of the DJ's
//! controls over the mesh, p50 and p99.
//!
//! ```text
//! cargo build --release -p jamz-server -p jamz-cli
//! cargo bench -p jamz-e2e --bench mesh_failover                    # 3 nodes, 20 controls
//! JAMZ_BENCH_NODES=6 JAMZ_BENCH_CONTROLS=50 cargo bench -p jamz-e2e --bench mesh_failover
//! JAMZ_BIN_DIR=target/debug cargo bench -p jamz-e2e --bench mesh_failover   # debug binaries
//! ```
//! Latencies are measured by this process from writing the DJ's command to its stdin to
//! reading each follower's `playback` event from its stdout: they include both pipes and
//! the scheduling of N+1 processes on this machine, not only the mesh.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/node_support/mod.rs"]
mod node_support;

use jamz_e2e::bench::{env_usize, percentile};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::future::join_all;
use node_support::{NodeProc, World, click_track};
use serde_json::{Value, json};

/// When each follower showed a `playback` event matching `pred`.
async fn arrivals(
    followers: &mut [NodeProc],
    pred: impl Fn(&Value) -> bool + Copy,
) -> Result<Vec<Instant>> {
    join_all(followers.iter_mut().map(|f| async move {
        f.wait_event("playback", pred).await?;
        Ok(Instant::now())
    }))
    .await
    .into_iter()
    .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n = env_usize("JAMZ_BENCH_NODES", 3).max(2);
    let controls = env_usize("JAMZ_BENCH_CONTROLS", 20).max(1);
    let mut world = World::new(n).await?;
    let track = world.dir.path().join("track.wav");
    click_track(&track, 120.0, 1.0)?;
    let started = Instant::now();
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut node = world.node(i, "null", &[]).await?;
        node.wait_event("ready", |_| true).await?;
        nodes.push(node);
    }
    let (dj, followers) = nodes.split_first_mut().unwrap();
    dj.take_control(world.user_id(0)).await?;
    let pl = dj.add(&track, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    for f in followers.iter_mut() {
        f.wait_playlist(1).await?;
    }
    for f in followers.iter_mut() {
        loop {
            if f.status().await?["peers"].as_u64() == Some((n - 1) as u64) {
                break;
            }
            f.wait_event("peer", |v| v["state"] == "connected").await?;
        }
    }
    println!(
        "{n} nodes up and fully meshed in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    dj.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    for f in followers.iter_mut() {
        f.wait_position(&id, 0.5).await?;
    }

    // The server dies; the DJ pauses 100 ms later.
    for node in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        node.clear();
    }
    let tmp = world.server.take_dir();
    world.server.kill9().await?;
    let dead = Instant::now();
    tokio::time::sleep_until((dead + Duration::from_millis(100)).into()).await;
    let issued = Instant::now();
    dj.send(json!({"cmd":"pause"})).await?;
    let paused = arrivals(followers, |v| v["playing"] == false).await?;
    let from_death: Vec<f64> = paused
        .iter()
        .map(|t| t.duration_since(dead).as_secs_f64() * 1000.0)
        .collect();
    let from_issue: Vec<f64> = paused
        .iter()
        .map(|t| t.duration_since(issued).as_secs_f64() * 1000.0)
        .collect();
    let worst = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "server killed -> pause issued +100 ms -> every follower paused: {:.1} ms after the kill \
         (slowest follower), {:.1} ms after the pause was issued",
        worst(&from_death),
        worst(&from_issue)
    );
    for node in std::iter::once(&mut *dj).chain(followers.iter_mut()) {
        let s = node.status().await?;
        assert_eq!(s["tier"], "mesh", "{}: {s}", node.name);
    }

    // Broadcast latency over the mesh: seeks while paused, one at a time.
    let mut samples = Vec::new();
    for k in 0..controls {
        let position = 1.0 + k as f64;
        let sent = Instant::now();
        dj.send(json!({"cmd":"seek","position":position})).await?;
        let got = arrivals(followers, move |v| v["position"].as_f64() == Some(position)).await?;
        samples.extend(
            got.iter()
                .map(|t| t.duration_since(sent).as_secs_f64() * 1000.0),
        );
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "{controls} controls to {} followers over the mesh: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n - 1,
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    for node in nodes {
        node.quit().await?;
    }
    drop(tmp);
    Ok(())
}

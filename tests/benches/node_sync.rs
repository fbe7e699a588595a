//! Tight figures for what `tests/node_sync.rs` only bounds loosely: how far apart
//! the WAV outputs of N headless nodes play, over several rounds of play + seek.
//!
//! ```text
//! cargo build --release -p jamz-server -p jamz-cli
//! cargo bench -p jamz-e2e --bench node_sync                     # 3 nodes, 3 rounds
//! JAMZ_BENCH_NODES=5 JAMZ_BENCH_ROUNDS=10 cargo bench -p jamz-e2e --bench node_sync
//! JAMZ_BIN_DIR=target/debug cargo bench -p jamz-e2e --bench node_sync   # debug binaries
//! ```
//! Offsets come from the clicks of each node's WAV, put on the Unix timeline by
//! the WAV's schedule sidecar, against node 0's; printed as median, p95 and max
//! of |offset| per node and over everything.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/node_support/mod.rs"]
mod node_support;

use anyhow::Result;
use jamz_e2e::bench::{env_usize, percentile};
use node_support::{Comparison, World, click_track, wav_clicks};
use serde_json::json;

async fn round(nodes: usize, round: usize) -> Result<Vec<f64>> {
    let world = World::new(nodes).await?;
    let dir = world.dir.path().to_path_buf();
    let track = dir.join("alpha.wav");
    click_track(&track, 12.0, 1.0)?;
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let mut procs = Vec::new();
    for i in 0..nodes {
        let mut n = world
            .node(i, &format!("wav:{}", wav(i).display()), &[])
            .await?;
        n.wait_event("ready", |_| true).await?;
        procs.push(n);
    }
    let dj = world.user_id(0);
    procs[0].send(json!({"cmd":"take-control"})).await?;
    for n in procs.iter_mut() {
        n.wait_event("controller", |v| v["userId"] == dj).await?;
    }
    procs[0].send(json!({"cmd":"add","path":track})).await?;
    let mut id = String::new();
    for n in procs.iter_mut() {
        let pl = n
            .wait_event("playlist", |v| {
                v["playlist"].as_array().is_some_and(|p| p.len() == 1)
            })
            .await?;
        id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    }
    procs[0]
        .send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    procs[0].wait_position(&id, 4.0).await?;
    procs[0].send(json!({"cmd":"seek","position":7.0})).await?;
    procs[0].wait_position(&id, 10.0).await?;
    for n in procs {
        n.quit().await?;
    }
    let reference = wav_clicks(&wav(0))?;
    let mut all = Vec::new();
    for i in 1..nodes {
        let c = Comparison::new(
            &format!("round {round}: node {i} - node 0"),
            &reference,
            &wav_clicks(&wav(i))?,
            0.25,
        );
        c.print();
        all.extend(c.offsets_ms.iter().map(|d| d.abs()));
    }
    Ok(all)
}

fn main() -> Result<()> {
    let nodes = env_usize("JAMZ_BENCH_NODES", 3).max(2);
    let rounds = env_usize("JAMZ_BENCH_ROUNDS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!("node_sync: {nodes} nodes (wav outputs), {rounds} rounds of play + seek");
    let mut all = Vec::new();
    for r in 0..rounds {
        all.extend(rt.block_on(round(nodes, r))?);
    }
    all.sort_by(f64::total_cmp);
    println!(
        "node_sync: {} paired clicks; |offset| median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        all.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

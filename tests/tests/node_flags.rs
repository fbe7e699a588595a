//! The node's flags that change what it does, on real `jamz node --json` processes and a
//! real `jamz-server`: `--latency-offset-ms` (the node plays that much earlier, measured in
//! its WAV against a node without it), `--cache-max-mib` (the cache's limit, in `status`)
//! and `--auto-preload` (the playlist is cached without being asked).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use node_support::{Comparison, World, click_track, wav_clicks};
use serde_json::json;

const OFFSET_MS: f64 = 200.0;

/// Bound on how far the measured shift may be from `OFFSET_MS` (as node_sync.rs's bound
/// between two nodes: a node that ignored the flag is 200 ms off).
const MAX_ERROR_MS: f64 = 30.0;

/// Clicks of equal level repeat every 600 ms: a 250 ms window pairs each click of the early
/// node with the same click of the other, never a neighbour.
const PAIR_WINDOW_S: f64 = 0.25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_offset_plays_earlier_cache_limit_and_auto_preload_apply() -> Result<()> {
    let world = World::new(2).await?;
    let dir = world.dir.path().to_path_buf();
    let track = dir.join("alpha.wav");
    click_track(&track, 8.0, 1.0)?;
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let out = |i: usize| format!("wav:{}", wav(i).display());

    let mut n0 = world.node(0, &out(0), &[]).await?;
    let offset = OFFSET_MS.to_string();
    let mut n1 = world
        .node_with_args(
            1,
            &out(1),
            &[("JAMZ_LATENCY_OFFSET_MS", offset.as_str())],
            &["--cache-max-mib", "32", "--auto-preload"],
        )
        .await?;
    n0.wait_event("ready", |_| true).await?;
    n1.wait_event("ready", |_| true).await?;
    let s = n1.status().await?;
    assert_eq!(s["latency_offset_ms"].as_f64(), Some(OFFSET_MS), "{s}");
    assert_eq!(s["cache"]["max_bytes"].as_u64(), Some(32 << 20), "{s}");

    n0.take_control(world.user_id(0)).await?;
    let pl = n0.add(&track, 1).await?;
    let id = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    // car1 was never asked to preload: --auto-preload caches the new track by itself.
    n1.wait_event("progress", |v| {
        v["what"] == "preload" && v["total"] == 1 && v["done"] == 1
    })
    .await?;
    let s = n1.status().await?;
    assert_eq!(s["cache"]["tracks"].as_u64(), Some(1), "{s}");

    n0.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    n1.wait_event("playback", |v| v["playing"] == true).await?;
    n0.wait_position(&id, 5.0).await?;
    n1.wait_position(&id, 5.0).await?;
    n0.quit().await?;
    n1.quit().await?;

    let reference = wav_clicks(&wav(0))?;
    let early = wav_clicks(&wav(1))?;
    let c = Comparison::new("car1 - car0", &reference, &early, PAIR_WINDOW_S);
    c.print();
    assert!(
        reference.len() >= 15,
        "car0 recorded {} clicks",
        reference.len()
    );
    assert!(
        c.matched >= 15 && c.matched as f64 >= 0.8 * c.clicks as f64,
        "{} of {} clicks paired",
        c.matched,
        c.clicks
    );
    let worst = c
        .offsets_ms
        .iter()
        .fold(0.0f64, |m, d| m.max((d + OFFSET_MS).abs()));
    assert!(
        worst <= MAX_ERROR_MS,
        "car1 should play {OFFSET_MS} ms early: median {:.2} ms, worst error {worst:.2} ms",
        c.median_ms()
    );
    Ok(())
}

//! Two headless nodes on real (virtual) devices: each plays through cpal into its
//! own PulseAudio null sink, and each sink's monitor is recorded with parec. The
//! clicks of both recordings are put on one timeline (the test's monotonic clock,
//! from when parec's reads arrived) and compared, as in `node_sync.rs`.
//!
//! Needs the private PulseAudio that scripts/env.d/pulseaudio.sh starts (it
//! exports JAMZ_PULSE_SINK); without it the test says so loudly on stderr and passes,
//! unless JAMZ_REQUIRE_PULSE is set (CI): then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;
mod pulse_support;

use std::time::Instant;

use anyhow::Result;
use node_support::{Click, Comparison, World, click_track, position_in};
use pulse_support::{NullSink, Recording, sink_or_skip};
use serde_json::json;

/// Loose bound on |offset| after the seek (both streams running). Looser than
/// node_sync.rs's 30 ms for the WAV outputs because two things add here: each
/// recording's timeline is estimated from when parec's reads arrived (biased
/// early by up to parec's 20 ms latency, not always alike for both), and the
/// device latency cpal reports on the ALSA -> PulseAudio path right after the
/// stream stalls (a new PulseAudio stream holds back 1.4-1.7 s when the first
/// track starts; until the node realigned on `PlayerEvent::Stalled`, a node
/// stayed 8-19 ms off for that whole segment, which the engine cannot see: its
/// audio clock reports come from the same estimate). Typical figures are 0-3 ms
/// (printed); the first segment's largest offsets are the clicks before the
/// realigned start lands, 300 ms after the stall.
const MAX_OFFSET_MS: f64 = 50.0;

/// Clicks this long after the seek was sent belong to the seek's timeline
/// (jamz-sync's control lead is 300 ms).
const AFTER_SEEK_S: f64 = 0.6;

const PAIR_WINDOW_S: f64 = 0.25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_pulseaudio_sinks_play_in_step() -> Result<()> {
    let Some(sink_a) = sink_or_skip() else {
        return Ok(());
    };
    let sink_b = NullSink::load(&format!("jamz_node_b_{}", std::process::id()))?;

    let world = World::new(2).await?;
    let dir = world.dir.path().to_path_buf();
    let a_path = dir.join("alpha.wav");
    click_track(&a_path, 10.0, 1.0)?;

    let origin = Instant::now();
    let rec_a = Recording::start(&sink_a)?;
    let rec_b = Recording::start(&sink_b.name)?;
    let mut n0 = world
        .node(0, "default", &[("PULSE_SINK", sink_a.as_str())])
        .await?;
    let mut n1 = world
        .node(1, "default", &[("PULSE_SINK", sink_b.name.as_str())])
        .await?;
    n0.wait_event("ready", |_| true).await?;
    n1.wait_event("ready", |_| true).await?;
    n0.take_control(world.user_id(0)).await?;
    n0.add(&a_path, 1).await?;
    let pl = n1.wait_playlist(1).await?;
    let a = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    n0.send(json!({"cmd":"play","track":a,"position":0.0}))
        .await?;
    n1.wait_event("playback", |v| v["playing"] == true).await?;
    n0.wait_position(&a, 4.0).await?;
    let seek_sent = origin.elapsed().as_secs_f64();
    n0.send(json!({"cmd":"seek","position":6.0})).await?;
    n1.wait_event("playback", |v| position_in(v, 5.9..7.0))
        .await?;
    n0.wait_position(&a, 8.5).await?;
    n1.wait_position(&a, 8.5).await?;
    n0.quit().await?;
    n1.quit().await?;

    let clicks_a = rec_a.finish(origin)?;
    let clicks_b = rec_b.finish(origin)?;
    eprintln!(
        "\nPulseAudio monitors ({sink_a}, {}), clicks paired within +-{PAIR_WINDOW_S} s:",
        sink_b.name
    );
    eprintln!("  car0 on {sink_a}: {} clean clicks", clicks_a.len());
    if std::env::var_os("JAMZ_DEBUG_CLICKS").is_some() {
        for (name, cl) in [("car0", &clicks_a), ("car1", &clicks_b)] {
            let t: Vec<String> = cl
                .iter()
                .map(|c| format!("{:.3}/{}", c.t, c.level))
                .collect();
            eprintln!("  {name}: {}", t.join(" "));
        }
    }
    // Before the seek: the first start on a fresh PulseAudio stream, which stalls 1.4-1.7 s
    // before its first buffers flow; each node realigns on the stall, but until then a first
    // start has been seen 10-40 ms off, and once (in about 15 runs) one click 210 ms off (see
    // the report of issue 5). So there: most clicks pair (80 %) and their median offset is
    // within MAX_OFFSET_MS. After the seek both streams run: every click pairs (but those of
    // car1 after car0 stopped: car0 quits first) and every offset is within MAX_OFFSET_MS.
    let split = seek_sent + AFTER_SEEK_S;
    let (a_before, a_after): (Vec<Click>, Vec<Click>) = clicks_a.iter().partition(|c| c.t < split);
    let (b_before, b_after): (Vec<Click>, Vec<Click>) = clicks_b.iter().partition(|c| c.t < split);
    // Pairs are looked for across the split too: a click just after it on one sink may pair
    // with one just before it on the other.
    let a_end = clicks_a.last().map_or(f64::INFINITY, |c| c.t);
    let b_after_in_both: Vec<Click> = b_after
        .iter()
        .filter(|c| c.t < a_end - PAIR_WINDOW_S)
        .cloned()
        .collect();
    let before = Comparison::new(
        "car1 - car0, first start",
        &clicks_a,
        &b_before,
        PAIR_WINDOW_S,
    );
    let after = Comparison::new(
        "car1 - car0, after the seek",
        &clicks_a,
        &b_after_in_both,
        PAIR_WINDOW_S,
    );
    before.print();
    after.print();
    eprintln!(
        "  (car0: {} clicks before the split, {} after)",
        a_before.len(),
        a_after.len()
    );
    assert!(
        clicks_a.len() >= 15,
        "car0's sink: {} clicks",
        clicks_a.len()
    );
    assert!(
        before.matched as f64 >= 0.8 * before.clicks as f64,
        "{}: {} of {} clicks paired",
        before.name,
        before.matched,
        before.clicks
    );
    assert!(
        before.median_ms().abs() <= MAX_OFFSET_MS,
        "first start: median offset {:.2} ms",
        before.median_ms()
    );
    assert!(
        after.matched >= 8 && after.matched == after.clicks,
        "after the seek: {} of {} clicks paired",
        after.matched,
        after.clicks
    );
    assert!(
        after.max_abs_ms() <= MAX_OFFSET_MS,
        "after the seek: max |offset| {:.2} ms",
        after.max_abs_ms()
    );
    Ok(())
}

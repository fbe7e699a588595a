//! Start while downloading: a node joins a playing session whose track it has not
//! cached, served by a real `jamz-server` through a throttled link (a TCP proxy named
//! as the server's public URL, so every track download goes through it). It must be
//! audible before its download ends, in step with the DJ's node, which has the track
//! cached; when the link stops for a while it reports `buffering`, and when the link
//! comes back it plays on, still in step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use jamz_e2e::throttle::ThrottleProxy;
use node_support::{Comparison, World, click_track, wav_clicks};
use serde_json::json;

/// The link while the joiner downloads: twice what the track needs to play (a 48 kHz
/// stereo 16-bit WAV is 188 KiB/s), so it starts within a few seconds of joining and
/// the download then runs ahead of playback.
const LINK_BYTES_PER_S: u64 = 384 * 1024;

/// Loose bound on |offset| between the two nodes' clicks (see node_sync.rs): it
/// catches a node that started at the wrong offset or came back off its timeline
/// after the stall, each of which is 100s of ms.
const MAX_OFFSET_MS: f64 = 30.0;

/// Clicks more than this apart are not the same click (one cycle is 0.6 s).
const PAIR_WINDOW_S: f64 = 0.25;

/// How long the link stops once the joiner is audible, in seconds of the DJ's playback:
/// longer than what the joiner holds ahead (its download's lead plus the player's
/// half second), so the stall reaches the output.
const STALL_S: f64 = 4.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_joiner_plays_a_track_while_it_downloads_and_stays_in_step_through_a_stall() -> Result<()>
{
    let proxy = ThrottleProxy::start().await?;
    let world = World::new_with_server_args(2, &["--public-url", &proxy.url]).await?;
    proxy.forward_to(&world.server.addr);
    let dir = world.dir.path().to_path_buf();
    let track_path = dir.join("long.wav");
    click_track(&track_path, 24.0, 1.0)?;
    let size = std::fs::metadata(&track_path)?.len();
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let out = |i: usize| format!("wav:{}", wav(i).display());

    // car0: the DJ, with the track cached (it uploads it).
    let mut n0 = world.node(0, &out(0), &[]).await?;
    n0.wait_event("ready", |_| true).await?;
    n0.take_control(world.user_id(0)).await?;
    let playlist = n0.add(&track_path, 1).await?;
    let id = playlist["playlist"][0]["id"].as_str().unwrap().to_owned();
    n0.wait_event("progress", |v| {
        v["what"].as_str().is_some_and(|w| w.starts_with("upload")) && v["done"] == v["total"]
    })
    .await?;
    n0.send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    n0.wait_position(&id, 1.0).await?;

    // car1 joins over the slow link, with nothing cached.
    proxy.set_rate(Some(LINK_BYTES_PER_S));
    let mut n1 = world.node(1, &out(1), &[]).await?;
    n1.wait_event("ready", |_| true).await?;
    n1.wait_event("buffering", |v| {
        v["track"] == id.as_str() && v["buffering"] == true
    })
    .await?;
    n1.wait_event("buffering", |v| {
        v["track"] == id.as_str() && v["buffering"] == false
    })
    .await?;
    let started = n1.status().await?;
    let at_start = proxy.delivered();
    eprintln!("car1 started with {at_start} of {size} bytes delivered; status {started}");
    assert!(
        at_start < size,
        "car1 started only after its whole download ({at_start} of {size} bytes)"
    );

    // The link stops: car1 says it is buffering, then plays on when the link is back.
    proxy.pause();
    let paused_at = n0.wait_position(&id, 0.0).await?;
    n1.wait_event("buffering", |v| {
        v["track"] == id.as_str() && v["buffering"] == true
    })
    .await?;
    let stalled = n1.status().await?;
    assert_eq!(
        stalled["buffering"],
        id.as_str(),
        "status names the wait: {stalled}"
    );
    n0.wait_position(&id, paused_at + STALL_S).await?;
    proxy.resume();
    let resumed_unix = now_unix();
    n1.wait_event("buffering", |v| {
        v["track"] == id.as_str() && v["buffering"] == false
    })
    .await?;
    let resumed_pos = n0.wait_position(&id, 0.0).await?;
    n0.wait_position(&id, resumed_pos + 3.0).await?;
    let after = n1.status().await?;
    assert!(after["buffering"].is_null(), "no wait any more: {after}");
    let downloaded_at = proxy.reached_at(size);

    n1.quit().await?;
    n0.quit().await?;

    // ---- the recordings
    let reference = wav_clicks(&wav(0))?;
    let joiner = wav_clicks(&wav(1))?;
    let first = joiner.first().map(|c| c.t);
    eprintln!(
        "car1's first click at {first:?} (Unix s); its download's bytes all delivered at {downloaded_at:?}; link back at {resumed_unix:.3}"
    );
    let first = first.expect("car1 recorded no click");
    if let Some(done) = downloaded_at {
        assert!(
            first < done,
            "car1 was audible only {:.3} s after its download ended",
            first - done
        );
    }
    let all = Comparison::new("car1 - car0", &reference, &joiner, PAIR_WINDOW_S);
    // Clicks once the link is back and car1 had a second to catch up.
    let late: Vec<_> = joiner
        .iter()
        .copied()
        .filter(|c| c.t > resumed_unix + 1.0)
        .collect();
    let after_stall = Comparison::new(
        "car1 - car0 after the stall",
        &reference,
        &late,
        PAIR_WINDOW_S,
    );
    all.print();
    after_stall.print();
    assert!(
        all.matched >= 10,
        "only {} of car1's clicks paired",
        all.matched
    );
    assert!(
        all.median_ms().abs() <= MAX_OFFSET_MS,
        "car1 is {:.2} ms off car0",
        all.median_ms()
    );
    assert!(
        after_stall.clicks >= 5 && after_stall.matched == after_stall.clicks,
        "after the stall {} of {} clicks paired",
        after_stall.matched,
        after_stall.clicks
    );
    assert!(
        after_stall.max_abs_ms() <= MAX_OFFSET_MS,
        "after the stall car1 is up to {:.2} ms off car0",
        after_stall.max_abs_ms()
    );
    Ok(())
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

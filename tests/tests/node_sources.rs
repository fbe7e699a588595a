//! Tracks from other sources in the shared playlist (docs/protocol.md, "How a native device
//! plays each source"): a YouTube video leaves headless nodes silent, in step, saying why,
//! and the upload after it starts on time on every node; a Spotify track plays from its
//! preview URL (served here by the test's own server) through the cache, in step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use node_support::{Comparison, World, click_track, wav_clicks};
use serde_json::json;

/// Clicks of two nodes are paired within this window.
const PAIR_WINDOW_S: f64 = 0.25;
/// Two nodes writing WAV files on one machine: every paired click within this bound.
const MAX_OFFSET_MS: f64 = 5.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_leaves_nodes_silent_and_in_step_and_a_preview_plays_like_an_upload() -> Result<()>
{
    let world = World::new(2).await?;
    let dir = world.dir.path().to_path_buf();
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let out = |i: usize| format!("wav:{}", wav(i).display());
    let mut dj = world.node(0, &out(0), &[]).await?;
    let mut car = world.node(1, &out(1), &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    car.wait_event("ready", |_| true).await?;
    dj.take_control(world.user_id(0)).await?;

    // A 3 s video, an upload, and a Spotify track whose preview is an upload's file.
    dj.send(json!({"cmd":"add","track":{
        "title":"Video","artist":"Tube","source":"youtube","youtube_id":"dQw4w9WgXcQ","duration":3.0
    }}))
    .await?;
    dj.wait_playlist(1).await?;
    let song = dir.join("song.wav");
    click_track(&song, 4.0, 1.0)?;
    let listed = dj.add(&song, 2).await?;
    let song_url = listed["playlist"][1]["url"].as_str().unwrap().to_owned();
    dj.send(json!({"cmd":"add","track":{
        "title":"Preview","artist":"Spot","source":"spotify","spotify_preview_url":song_url,"duration":4.0
    }}))
    .await?;
    let listed = car.wait_playlist(3).await?;
    let id = |i: usize| listed["playlist"][i]["id"].as_str().unwrap().to_owned();
    let (video, upload, preview) = (id(0), id(1), id(2));

    dj.clear();
    car.clear();
    dj.send(json!({"cmd":"play","track":video,"position":0.0}))
        .await?;
    // Both are headless: both say why they are silent, once.
    for n in [&mut dj, &mut car] {
        let silent = n
            .wait_event("not-playable", |v| v["track"] == video.as_str())
            .await?;
        assert!(
            silent["reason"].as_str().unwrap().contains("YouTube"),
            "{silent}"
        );
    }
    // At the video's end the DJ moves on; the upload then the preview play on both.
    for n in [&mut dj, &mut car] {
        n.wait_position(&upload, 1.0).await?;
    }
    for n in [&mut dj, &mut car] {
        n.wait_position(&preview, 1.0).await?;
    }
    dj.wait_position(&preview, 3.0).await?;
    dj.quit().await?;
    car.quit().await?;

    let reference = wav_clicks(&wav(0))?;
    let clicks = wav_clicks(&wav(1))?;
    // The upload's and the preview's clicks (the video is silence).
    assert!(
        reference.len() >= 10,
        "the DJ recorded {} clicks",
        reference.len()
    );
    let c = Comparison::new("car1 - car0", &reference, &clicks, PAIR_WINDOW_S);
    c.print();
    assert!(
        c.matched >= 10,
        "only {} of {} clicks paired",
        c.matched,
        c.clicks
    );
    assert!(
        c.max_abs_ms() <= MAX_OFFSET_MS,
        "max |offset| {:.2} ms > {MAX_OFFSET_MS} ms",
        c.max_abs_ms()
    );
    Ok(())
}

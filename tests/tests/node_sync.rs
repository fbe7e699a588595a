//! Four headless nodes (`jamz node --json --output wav:...`) and a real
//! `jamz-server` on loopback. The DJ uploads two click tracks, plays, pauses,
//! resumes, seeks, changes track and hands the DJ role to another node; a fourth
//! node joins late. Every node's WAV must follow the DJ's timeline: the clicks
//! of each recording, put on the Unix timeline by the WAV's schedule sidecar,
//! are paired with the same clicks of the first DJ's recording and the offsets
//! printed; a loose bound is asserted (tight figures belong to a benchmark).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use anyhow::Result;
use node_support::{Comparison, NodeProc, World, click_track, position_in, wav_clicks};
use serde_json::{Value, json};

/// Loose bound on |offset| between two nodes' clicks. Loose on purpose: it
/// catches a node that missed a seek, a pause or a track change, or started by
/// the wrong clock (each of which is 100s of ms), not jitter.
const MAX_OFFSET_MS: f64 = 30.0;

/// Clicks more than this apart are not the same click (one click cycle is
/// 3 x 200 ms, so this never pairs a click with its neighbour of equal level).
const PAIR_WINDOW_S: f64 = 0.25;

/// Share of a node's clean clicks that must have a partner in the reference
/// recording (clicks cut by a fade, or played while the other was not yet
/// playing, have none).
const MIN_MATCHED_SHARE: f64 = 0.8;

async fn all(
    nodes: &mut [&mut NodeProc],
    what: &str,
    pred: impl Fn(&Value) -> bool + Copy,
) -> Result<()> {
    for n in nodes.iter_mut() {
        n.wait_event(what, pred).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_nodes_wav_follows_the_djs_timeline() -> Result<()> {
    let world = World::new(4).await?;
    let dir = world.dir.path().to_path_buf();
    let (a_path, b_path) = (dir.join("alpha.wav"), dir.join("bravo.wav"));
    click_track(&a_path, 10.0, 1.0)?;
    click_track(&b_path, 10.0, -1.0)?;
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let out = |i: usize| format!("wav:{}", wav(i).display());

    let mut n0 = world.node(0, &out(0), &[]).await?;
    let mut n1 = world.node(1, &out(1), &[]).await?;
    let mut n2 = world.node(2, &out(2), &[]).await?;
    for n in [&mut n0, &mut n1, &mut n2] {
        n.wait_event("ready", |_| true).await?;
    }
    let (u0, u1) = (world.user_id(0), world.user_id(1));

    // car0 becomes the DJ and uploads both tracks.
    n0.send(json!({"cmd":"take-control"})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "controller", |v| {
        v["userId"] == u0
    })
    .await?;
    n0.add(&a_path, 1).await?;
    n0.send(json!({"cmd":"add","path":b_path})).await?;
    let mut playlist = Value::Null;
    for n in [&mut n0, &mut n1, &mut n2] {
        playlist = n.wait_playlist(2).await?;
    }
    n0.wait_event("progress", |v| {
        v["what"].as_str().is_some_and(|w| w.starts_with("upload")) && v["done"] == v["total"]
    })
    .await?;
    // car2 caches the whole playlist ahead; car1 shares a position fix
    n2.send(json!({"cmd":"preload"})).await?;
    n2.wait_event("progress", |v| {
        v["what"] == "preload" && v["done"] == 2 && v["total"] == 2
    })
    .await?;
    n1.send(json!({"cmd":"share-location","enabled":true}))
        .await?;
    n1.send(
        json!({"cmd":"location","latitude":48.137,"longitude":11.575,"speed":27.5,"heading":90}),
    )
    .await?;
    n0.wait_event("location", |v| v["userId"] == u1 && v["latitude"] == 48.137)
        .await?;
    // (full volume: the analysis tells clicks apart by their level)
    n2.send(json!({"cmd":"volume","level":1.0})).await?;
    let a = playlist["playlist"][0]["id"].as_str().unwrap().to_owned();
    let b = playlist["playlist"][1]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        playlist["playlist"][0]["title"], "alpha",
        "title from the file name"
    );

    // play A from 0
    for n in [&mut n0, &mut n1, &mut n2] {
        n.clear();
    }
    n0.send(json!({"cmd":"play","track":a,"position":0.0}))
        .await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["playing"] == true
    })
    .await?;
    n0.wait_position(&a, 2.0).await?;

    // pause, then resume where it paused
    n0.send(json!({"cmd":"pause"})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["playing"] == false
    })
    .await?;
    let paused = n2.status().await?;
    assert_eq!(paused["playing"], false, "{paused}");
    assert!(
        paused["position"].as_f64().is_some_and(|p| p >= 2.0),
        "a paused status names where the timeline stopped: {paused}"
    );
    n0.send(json!({"cmd":"play"})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["playing"] == true
    })
    .await?;
    let resumed = n0.wait_position(&a, 0.0).await?;
    n0.wait_position(&a, resumed + 1.2).await?;

    // seek
    n0.send(json!({"cmd":"seek","position":5.0})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["playing"] == true && position_in(v, 4.9..6.0)
    })
    .await?;
    n0.wait_position(&a, 6.5).await?;

    // track change
    n0.send(json!({"cmd":"play","track":b,"position":1.0}))
        .await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["track"] == b.as_str()
    })
    .await?;
    n0.wait_position(&b, 2.5).await?;

    // car1 takes over as DJ and seeks
    n1.send(json!({"cmd":"take-control"})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "controller", |v| {
        v["userId"] == u1
    })
    .await?;
    n1.send(json!({"cmd":"seek","position":4.0})).await?;
    all(&mut [&mut n0, &mut n1, &mut n2], "playback", |v| {
        v["track"] == b.as_str() && position_in(v, 3.9..5.0)
    })
    .await?;
    // the old DJ may no longer steer
    n0.clear();
    n0.send(json!({"cmd":"pause"})).await?;
    n0.wait_event("error", |v| v["cmd"] == "pause").await?;

    // car3 joins late and must land mid-track, in step
    let mut n3 = world.node(3, &out(3), &[]).await?;
    n3.wait_event("ready", |_| true).await?;
    n3.wait_event("playback", |v| {
        v["playing"] == true && v["track"] == b.as_str()
    })
    .await?;
    let joined_at = n3.wait_position(&b, 0.0).await?;
    n3.wait_position(&b, joined_at + 1.5).await?;

    for n in [n0, n1, n2, n3] {
        n.quit().await?;
    }

    // ---- the recordings
    let reference = wav_clicks(&wav(0))?;
    eprintln!("\noffsets against car0 (first DJ), clicks paired within +-{PAIR_WINDOW_S} s:");
    eprintln!("  car0: {} clean clicks", reference.len());
    assert!(
        reference.len() > 40,
        "car0 recorded {} clicks",
        reference.len()
    );
    let mut failures = Vec::new();
    for i in 1..4 {
        let clicks = wav_clicks(&wav(i))?;
        let c = Comparison::new(
            &format!("car{i} - car0"),
            &reference,
            &clicks,
            PAIR_WINDOW_S,
        );
        c.print();
        if c.matched < 5 || (c.matched as f64) < MIN_MATCHED_SHARE * c.clicks as f64 {
            failures.push(format!(
                "{}: only {} of {} clicks paired",
                c.name, c.matched, c.clicks
            ));
        }
        if c.max_abs_ms() > MAX_OFFSET_MS {
            failures.push(format!(
                "{}: max |offset| {:.2} ms > {MAX_OFFSET_MS} ms",
                c.name,
                c.max_abs_ms()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

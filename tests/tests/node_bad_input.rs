//! A node fed bad input, from the DJ over the server and from its own stdin:
//! each is answered with a clear `error` event and the node keeps going (it
//! still answers `status`, and still plays a good command afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use jamz_link::{LinkEvent, LinkState, SocketClient, SocketConfig, Upload};
use jamz_proto::Track;
use jamz_proto::events::{
    ControlAction, JoinAudioSession, MusicControl, MusicTakeControl, PlaylistUpdate,
};
use node_support::{NodeProc, PASSWORD, World, click_track};
use serde_json::{Value, json};

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Waits for an error event whose message contains `needle`, then checks that
/// the node still answers.
async fn expect_error(n: &mut NodeProc, needle: &str, cmd: Option<&str>) -> Result<Value> {
    let e = n
        .wait_event("error", |v| {
            v["message"].as_str().is_some_and(|m| m.contains(needle))
        })
        .await?;
    if let Some(cmd) = cmd {
        assert_eq!(e["cmd"], cmd, "{e}");
    }
    eprintln!("  error event: {e}");
    let s = n.status().await?;
    assert_eq!(s["tier"], "socket", "{s}");
    Ok(e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_an_error_event_and_the_node_goes_on() -> Result<()> {
    let world = World::new(2).await?;
    let mut node = world.node(0, "null", &[]).await?;
    node.wait_event("ready", |_| true).await?;

    // The DJ is a bare protocol client (jamz-link), free to send anything.
    let rest = jamz_link::RestClient::new(&world.server.url)?;
    let auth = rest.login(&world.users[1].0, PASSWORD).await?;
    let session = rest.session_for_group(&world.group).await?;
    let (dj, mut dj_events) =
        SocketClient::connect(SocketConfig::new(&world.server.url).token(auth.token.clone()))?;
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = dj_events.recv().await {
            if let LinkEvent::State(LinkState::Connected { .. }) = ev {
                return;
            }
        }
    })
    .await?;
    tokio::spawn(async move { while dj_events.recv().await.is_some() {} });
    dj.send(&JoinAudioSession {
        session_id: session.id.clone(),
        user_id: Some(auth.user.id),
        display_name: Some("bad dj".into()),
    })?;
    dj.send(&MusicTakeControl {
        session_id: session.id.clone(),
        user_id: Some(auth.user.id),
    })?;
    node.wait_event("controller", |v| v["userId"] == auth.user.id)
        .await?;

    // One real 5 s track in the playlist.
    let path = world.dir.path().join("real.wav");
    click_track(&path, 5.0, 1.0)?;
    let real = rest
        .upload(Upload {
            file_name: "real.wav".into(),
            content_type: Some("audio/wav".into()),
            data: Bytes::from(std::fs::read(&path)?),
            title: Some("Real".into()),
            duration: Some(5.0),
            ..Upload::default()
        })
        .await?;
    rest.append_track(&session.id, &real).await?;
    node.wait_playlist(1).await?;

    let control = |track: Track, position: f64, timestamp: f64| MusicControl {
        session_id: session.id.clone(),
        action: ControlAction::Play,
        position,
        track: Some(track),
        timestamp,
    };

    eprintln!("bad input and the node's answers:");
    // a music-control naming an unknown track
    let ghost = Track {
        id: "ghost-track".into(),
        title: "Ghost".into(),
        url: format!("{}/api/music/files/{}", world.server.url, "0".repeat(64)),
        ..Track::default()
    };
    dj.send(&control(ghost, 0.0, now_ms()))?;
    expect_error(&mut node, "ghost-track", None).await?;

    // a position past the end
    dj.send(&control(real.clone(), 9_999.0, now_ms()))?;
    expect_error(&mut node, "past the end", None).await?;

    // a timestamp far in the future
    dj.send(&control(real.clone(), 0.0, now_ms() + 86_400_000.0))?;
    expect_error(&mut node, "in the future", None).await?;

    // a playlist with 10,000 entries
    let huge: Vec<Track> = (0..10_000)
        .map(|i| Track {
            id: format!("t{i}"),
            title: format!("Track {i}"),
            artist: "Many".into(),
            url: format!("http://127.0.0.1:9/{i}.mp3"),
            ..Track::default()
        })
        .collect();
    dj.send(&PlaylistUpdate {
        session_id: session.id.clone(),
        playlist: huge,
    })?;
    let sent = std::time::Instant::now();
    let e = node
        .wait_for_within("error", Duration::from_secs(300), |v| {
            v["event"] == "error" && v["message"].as_str().is_some_and(|m| m.contains("10000"))
        })
        .await?;
    eprintln!("  error event after {:?}: {e}", sent.elapsed());

    // invalid commands on stdin
    node.send_raw("this is not json").await?;
    expect_error(&mut node, "not JSON", None).await?;
    node.send_raw(r#"{"cmd":"fly"}"#).await?;
    expect_error(&mut node, "unknown command", Some("fly")).await?;
    node.send(json!({"cmd":"seek","position":-3})).await?;
    expect_error(&mut node, ">= 0", Some("seek")).await?;
    node.send(json!({"cmd":"volume","level":"loud"})).await?;
    expect_error(&mut node, "invalid `volume`", Some("volume")).await?;
    node.send(json!({"cmd":"pause"})).await?;
    expect_error(&mut node, "DJ", Some("pause")).await?;
    node.send(json!({"cmd":"add","path":"/nonexistent/x.mp3"}))
        .await?;
    let e = expect_error(&mut node, "/nonexistent/x.mp3", Some("add")).await?;
    let message = e["message"].as_str().unwrap_or_default();
    assert_eq!(
        message.matches("/nonexistent/x.mp3").count(),
        1,
        "the file is named once: {message}"
    );

    // ... and a good command still works afterwards
    node.clear();
    dj.send(&control(real.clone(), 1.0, now_ms()))?;
    node.wait_event("playback", |v| {
        v["playing"] == true && v["track"] == real.id.as_str()
    })
    .await?;
    node.wait_position(&real.id, 1.5).await?;
    node.quit().await?;
    Ok(())
}

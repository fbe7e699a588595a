//! Tracks from other sources in the shared playlist (docs/protocol.md, "How a native device
//! plays each source"): a YouTube video leaves headless nodes silent, in step, saying why,
//! and the upload after it starts on time on every node; a Spotify track plays from its
//! preview URL (served here by the test's own server) through the cache, in step. A video
//! added by link is titled from a local oEmbed stand-in; bad links and videos are refused
//! in words; a preview that answers 404 or is not audio is said, and the session goes on.
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

/// A stand-in of YouTube's oEmbed endpoint on loopback (no test reaches the internet):
/// `okvideo0001` has a title and channel, `okvideo0002` a title, `noembed0001` may not be
/// embedded (401), any other video does not exist (404).
async fn oembed_stand_in() -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                    match tcp.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let (status, body) = if head.contains("okvideo0001") {
                    (
                        "200 OK",
                        r#"{"title":"Stand-in song","author_name":"Stand-in channel"}"#,
                    )
                } else if head.contains("okvideo0002") {
                    ("200 OK", r#"{"title":"Second song"}"#)
                } else if head.contains("noembed0001") {
                    ("401 Unauthorized", "Unauthorized")
                } else {
                    ("404 Not Found", "Not Found")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(origin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_video_added_by_link_is_titled_from_oembed_and_bad_links_are_refused_in_words()
-> Result<()> {
    let world = World::new(1).await?;
    let origin = oembed_stand_in().await?;
    let mut dj = world
        .node_with_args(0, "null", &[], &["--youtube-origin", &origin])
        .await?;
    dj.wait_event("ready", |_| true).await?;

    // A link: the video's title and channel from the stand-in, its id, its duration.
    dj.send(json!({"cmd":"add","youtube":"https://www.youtube.com/watch?v=okvideo0001&t=3","duration":30}))
        .await?;
    let listed = dj.wait_playlist(1).await?;
    let t = &listed["playlist"][0];
    assert_eq!(t["source"], "youtube", "{t}");
    assert_eq!(t["youtube_id"], "okvideo0001", "{t}");
    assert_eq!(t["title"], "Stand-in song", "{t}");
    assert_eq!(t["artist"], "Stand-in channel", "{t}");
    assert_eq!(t["duration"], 30.0, "{t}");

    // Malformed: refused at once, in words; nothing is added.
    for (bad, says) in [
        ("https://vimeo.com/123", "is not a YouTube link"),
        ("https://youtu.be/short", "is not a YouTube video id"),
        ("https://www.youtube.com/watch?list=PL1", "names no video"),
    ] {
        dj.send(json!({"cmd":"add","youtube":bad})).await?;
        let e = dj.wait_event("error", |v| v["cmd"] == "add").await?;
        assert!(e["message"].as_str().unwrap().contains(says), "{bad}: {e}");
    }
    // What oEmbed says about the video: refused with its reason.
    for (video, says) in [
        ("youtu.be/noembed0001", "does not allow"),
        ("gone0000001", "does not exist"),
    ] {
        dj.send(json!({"cmd":"add","youtube":video})).await?;
        let e = dj.wait_event("error", |v| v["cmd"] == "add").await?;
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{video}: {e}"
        );
    }
    // A bare id, with no duration (the DJ then moves on by hand at its end).
    dj.send(json!({"cmd":"add","youtube":"okvideo0002"}))
        .await?;
    let listed = dj.wait_playlist(2).await?;
    assert_eq!(listed["playlist"][1]["youtube_id"], "okvideo0002");
    assert_eq!(listed["playlist"][1]["title"], "Second song");
    assert!(listed["playlist"][1]["duration"].is_null());
    dj.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_preview_that_answers_404_or_is_not_audio_is_said_and_the_session_goes_on() -> Result<()>
{
    let world = World::new(1).await?;
    let dir = world.dir.path().to_path_buf();
    let mut dj = world.node(0, "null", &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    dj.take_control(world.user_id(0)).await?;
    // The real server: a file it does not have (404), and its health page (not audio).
    let missing = format!("{}/api/music/files/no-such-file.mp3", world.server.url);
    let not_audio = format!("{}/healthz", world.server.url);
    dj.send(json!({"cmd":"add","track":{
        "title":"Gone","artist":"Spot","source":"spotify","spotify_preview_url":missing,"duration":2.0
    }}))
    .await?;
    dj.wait_playlist(1).await?;
    dj.send(json!({"cmd":"add","track":{
        "title":"Page","artist":"Spot","source":"spotify","spotify_preview_url":not_audio,"duration":2.0
    }}))
    .await?;
    dj.wait_playlist(2).await?;
    let song = dir.join("song.wav");
    click_track(&song, 4.0, 1.0)?;
    let listed = dj.add(&song, 3).await?;
    let id = |i: usize| listed["playlist"][i]["id"].as_str().unwrap().to_owned();
    let (gone, page, upload) = (id(0), id(1), id(2));

    dj.clear();
    dj.send(json!({"cmd":"play","track":gone,"position":0.0}))
        .await?;
    let e = dj
        .wait_event("error", |v| {
            v["message"].as_str().is_some_and(|m| m.contains("404"))
        })
        .await?;
    println!("404 preview: {}", e["message"]);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot fetch the track"),
        "{e}"
    );
    // The next (not audio) is said too, then the upload plays on time.
    let e = dj
        .wait_event("error", |v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains(page.as_str()))
        })
        .await?;
    println!("not-audio preview: {}", e["message"]);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("unsupported format") || message.contains("corrupt"),
        "{e}"
    );
    dj.wait_position(&upload, 1.0).await?;
    dj.quit().await?;
    Ok(())
}

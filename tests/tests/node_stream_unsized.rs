//! A streamed track whose bytes cannot be placed before they come: an M4A with its index
//! (the `moov` box) at its end, served by this test's own HTTP server in chunks with no
//! `Content-Length`, and added to the playlist with no size or duration. The player can
//! open it only once its end is there. The server holds the second half back: the node
//! must say it is buffering, and meanwhile go on with every other command: a start of
//! another track (cached) plays at once. Once the server lets go, the track plays (a real
//! decode of the download).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use node_support::{NodeProc, WAIT, World, click_track, wav_clicks};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes of the file in each HTTP chunk.
const CHUNK: usize = 16 * 1024;

/// Serves one file to every GET: `200`, chunked, no `Content-Length`; the first half at
/// once, the rest when `release` turns true.
struct HeldServer {
    url: String,
    release: watch::Sender<bool>,
    requests: Arc<AtomicUsize>,
}

impl HeldServer {
    async fn start(bytes: Vec<u8>, name: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/{name}", listener.local_addr()?);
        let (release, held) = watch::channel(false);
        let requests = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(bytes);
        let count = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (bytes, held) = (Arc::clone(&bytes), held.clone());
                tokio::spawn(async move {
                    if let Err(e) = serve(sock, &bytes, held).await {
                        eprintln!("held server: {e:#}");
                    }
                });
            }
        });
        Ok(HeldServer {
            url,
            release,
            requests,
        })
    }
}

async fn serve(mut sock: TcpStream, bytes: &[u8], mut held: watch::Receiver<bool>) -> Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            bail!("request cut short");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&head);
    eprintln!(
        "held server: {}",
        request.lines().next().unwrap_or_default()
    );
    sock.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: audio/mp4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .await?;
    let half = bytes.len() / 2;
    for (i, piece) in bytes.chunks(CHUNK).enumerate() {
        if i * CHUNK >= half {
            held.wait_for(|go| *go).await?;
        }
        sock.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await?;
        sock.write_all(piece).await?;
        sock.write_all(b"\r\n").await?;
    }
    sock.write_all(b"0\r\n\r\n").await?;
    sock.flush().await?;
    Ok(())
}

/// `wav` encoded by ffmpeg as AAC in MP4, its index at the end (ffmpeg's default).
fn m4a_index_last(wav: &Path, out: &Path) -> Result<Vec<u8>> {
    let st = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args(["-c:a", "aac", "-b:a", "128k"])
        .arg(out)
        .status()
        .context("ffmpeg runs (scripts/apt/audio.txt installs it)")?;
    anyhow::ensure!(st.success(), "ffmpeg failed");
    let bytes = std::fs::read(out)?;
    let moov = bytes.windows(4).position(|w| w == b"moov");
    let mdat = bytes.windows(4).position(|w| w == b"mdat");
    match (moov, mdat) {
        (Some(moov), Some(mdat)) if moov > mdat && moov > bytes.len() / 2 => Ok(bytes),
        _ => bail!("ffmpeg put the index first (moov at {moov:?}, mdat at {mdat:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_track_that_cannot_open_before_its_end_buffers_while_other_commands_go_on() -> Result<()>
{
    let world = World::new(1).await?;
    let dir = world.dir.path().to_path_buf();
    let wav = dir.join("out.wav");
    let late_src = dir.join("late.wav");
    click_track(&late_src, 30.0, 1.0)?;
    let bytes = m4a_index_last(&late_src, &dir.join("late.m4a"))?;
    let size = bytes.len();
    let server = HeldServer::start(bytes, "late.m4a").await?;
    let other = dir.join("other.wav");
    click_track(&other, 20.0, -1.0)?;

    let mut n = world
        .node(0, &format!("wav:{}", wav.display()), &[])
        .await?;
    n.wait_event("ready", |_| true).await?;
    n.take_control(world.user_id(0)).await?;
    n.add(&other, 1).await?;
    n.send(json!({"cmd":"add","track":{"title":"Index last","artist":"Held","url":server.url}}))
        .await?;
    let listed = n.wait_playlist(2).await?;
    let id = |i: usize| listed["playlist"][i]["id"].as_str().unwrap().to_owned();
    let (other_id, late_id) = (id(0), id(1));
    assert!(
        listed["playlist"][1]["size"].is_null() && listed["playlist"][1]["duration"].is_null(),
        "the streamed track states neither size nor duration: {listed}"
    );

    // The held track: its first half comes, its index never does (yet).
    n.send(json!({"cmd":"play","track":late_id,"position":0.0}))
        .await?;
    n.wait_event("buffering", |v| {
        v["track"] == late_id.as_str() && v["buffering"] == true
    })
    .await?;
    let waiting = n.status().await?;
    eprintln!("while the index is held: {waiting}");
    assert_eq!(waiting["buffering"], late_id.as_str(), "{waiting}");

    // Another command meanwhile: a cached track plays at once (before the fix the audio
    // task sat in the held track's open and never took it).
    n.send(json!({"cmd":"play","track":other_id,"position":0.0}))
        .await?;
    let heard = wait_heard(&mut n, &other_id).await?;
    eprintln!("the other track is heard while the held one waits: {heard}");
    n.wait_position(&other_id, 1.0).await?;
    n.wait_event("buffering", |v| {
        v["track"] == late_id.as_str() && v["buffering"] == false
    })
    .await?;

    // The server lets go: the held track, now whole, plays.
    let released_unix = now_unix();
    server.release.send_replace(true);
    n.send(json!({"cmd":"play","track":late_id,"position":2.0}))
        .await?;
    let late_heard = n.wait_position(&late_id, 3.0).await?;
    eprintln!(
        "the held track ({size} bytes, {} requests) plays once released: at {late_heard:.3} s",
        server.requests.load(Ordering::SeqCst)
    );
    n.quit().await?;

    // The recording: the other track's clicks (polarity -1) before the server let go.
    let clicks = wav_clicks(&wav)?;
    let before: Vec<_> = clicks
        .iter()
        .filter(|c| c.polarity < 0 && c.t < released_unix)
        .collect();
    let held: Vec<_> = clicks.iter().filter(|c| c.polarity > 0).collect();
    eprintln!(
        "{} clicks of the other track before the release, {} of the held track after it",
        before.len(),
        held.len()
    );
    assert!(
        before.len() >= 3,
        "the other track was not heard while the held one waited"
    );
    assert!(
        !held.is_empty() && held.iter().all(|c| c.t > released_unix),
        "the held track is heard once released, not before"
    );
    Ok(())
}

/// Polls `status` until `track` is the one playing and the sync meter has measured it
/// (it measures only what the player makes audible); returns that status.
async fn wait_heard(n: &mut NodeProc, track: &str) -> Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = n.status().await?;
        if s["track"] == track && s["sync_offset_ms"].is_number() {
            return Ok(s);
        }
        if std::time::Instant::now() > deadline {
            bail!("{track} was never heard; last status {s}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

//! Time to the first audible sample of a track that is not cached, over a slow link,
//! against one that is: the issue's target is within 1 s of the start instant for an
//! 8 MiB MP3 over 1 MiB/s (it was about 8 s when a track played only once downloaded).
//!
//! ```text
//! cargo build --release -p jamz-server -p jamz-cli
//! cargo bench -p jamz-e2e --bench stream_start
//! JAMZ_BENCH_ROUNDS=5 JAMZ_BENCH_LINK_KIB=512 cargo bench -p jamz-e2e --bench stream_start
//! JAMZ_BIN_DIR=target/debug cargo bench -p jamz-e2e --bench stream_start   # debug binaries
//! ```
//! Each round: a real `jamz-server` whose public URL is a throttling proxy (every track
//! download goes through it), a DJ node that uploaded the track, a node that cached it
//! ahead (preload, before the link is throttled) and one that has nothing. The DJ plays
//! from 0; each node's first sound in its `wav:` output (a sample above a tenth of full
//! scale: the first click's onset), on the Unix timeline, minus the start instant the DJ
//! announced, is its time to the first audible sample. The MP3 is
//! made with ffmpeg (clicks every 0.2 s, 320 kb/s: 8 MiB is 210 s), skipped without it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/node_support/mod.rs"]
mod node_support;

use std::path::Path;

use anyhow::{Context, Result, bail};
use jamz_e2e::bench::{env_usize, percentile};
use jamz_e2e::throttle::ThrottleProxy;
use node_support::{World, click_track};
use serde_json::json;

/// 8 MiB at 320 kb/s.
const TRACK_S: f64 = 8.0 * 1024.0 * 1024.0 * 8.0 / 320_000.0;

fn make_mp3(dir: &Path) -> Result<Option<std::path::PathBuf>> {
    let wav = dir.join("clicks.wav");
    let mp3 = dir.join("clicks.mp3");
    click_track(&wav, TRACK_S, 1.0)?;
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-c:a", "libmp3lame", "-b:a", "320k"])
        .arg(&mp3)
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
        Ok(o) if !o.status.success() => {
            bail!("ffmpeg failed: {}", String::from_utf8_lossy(&o.stderr))
        }
        Ok(_) => {
            std::fs::remove_file(&wav)?;
            Ok(Some(mp3))
        }
    }
}

/// (uncached, cached) seconds from the start instant to the first audible click.
async fn round(mp3: &Path, link_bytes_per_s: u64) -> Result<(f64, f64)> {
    let proxy = ThrottleProxy::start().await?;
    let world = World::new_with_server_args(3, &["--public-url", &proxy.url]).await?;
    proxy.forward_to(&world.server.addr);
    let dir = world.dir.path().to_path_buf();
    let wav = |i: usize| dir.join(format!("out-{i}.wav"));
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut n = world
            .node(i, &format!("wav:{}", wav(i).display()), &[])
            .await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    nodes[0].take_control(world.user_id(0)).await?;
    nodes[0].add(mp3, 1).await?;
    let mut id = String::new();
    for n in nodes.iter_mut().skip(1) {
        let pl = n.wait_playlist(1).await?;
        id = pl["playlist"][0]["id"].as_str().context("id")?.to_owned();
    }
    nodes[0]
        .wait_event("progress", |v| {
            v["what"].as_str().is_some_and(|w| w.starts_with("upload")) && v["done"] == v["total"]
        })
        .await?;
    // node 2 caches the track ahead; node 1 has nothing.
    nodes[2].send(json!({"cmd":"preload"})).await?;
    nodes[2]
        .wait_event("progress", |v| {
            v["what"] == "preload" && v["done"] == 1 && v["total"] == 1
        })
        .await?;
    proxy.set_rate(Some(link_bytes_per_s));
    for n in nodes.iter_mut() {
        n.clear();
    }
    nodes[0]
        .send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    let play = nodes[0]
        .wait_event("playback", |v| v["playing"] == true)
        .await?;
    // The node's local clock is the Unix clock at its start carried on monotonically.
    let start_unix = play["at"].as_f64().context("at")? / 1000.0;
    nodes[1].wait_position(&id, 5.0).await?;
    nodes[0].wait_position(&id, 5.0).await?;
    let delivered = proxy.delivered();
    for n in nodes {
        n.quit().await?;
    }
    let first = |i: usize| -> Result<f64> {
        Ok(first_sound(&wav(i))?.context("nothing audible recorded")? - start_unix)
    };
    let (uncached, cached) = (first(1)?, first(2)?);
    eprintln!(
        "  uncached {:>7.1} ms   cached {:>7.1} ms   (DJ {:>6.1} ms; {delivered} bytes over the link by then)",
        uncached * 1000.0,
        cached * 1000.0,
        first(0)? * 1000.0
    );
    Ok((uncached, cached))
}

/// The Unix time of the first sample of a `wav:` output above a tenth of full scale
/// (the first click's onset, whatever its fade-in), if any.
fn first_sound(path: &Path) -> Result<Option<f64>> {
    let sidecar: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{}.json",
        path.display()
    ))?)?;
    let frame0_ns = sidecar["frame0_unix_ns"]
        .as_f64()
        .context("frame0_unix_ns")?;
    let mut r = hound::WavReader::open(path)?;
    let spec = r.spec();
    let ch = usize::from(spec.channels).max(1);
    for (i, s) in r.samples::<f32>().enumerate() {
        if s?.abs() > 0.1 {
            let frame = (i / ch) as f64;
            return Ok(Some(frame0_ns / 1e9 + frame / f64::from(spec.sample_rate)));
        }
    }
    Ok(None)
}

fn main() -> Result<()> {
    let rounds = env_usize("JAMZ_BENCH_ROUNDS", 3).max(1);
    let link = env_usize("JAMZ_BENCH_LINK_KIB", 1024).max(1) as u64 * 1024;
    let tmp = tempfile::tempdir()?;
    let Some(mp3) = make_mp3(tmp.path())? else {
        println!("stream_start: skipped: ffmpeg is not installed");
        return Ok(());
    };
    let size = std::fs::metadata(&mp3)?.len();
    eprintln!(
        "stream_start: a {:.1} MiB MP3 ({TRACK_S:.0} s) over a link of {} KiB/s, {rounds} rounds",
        size as f64 / 1048576.0,
        link / 1024
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut un, mut ca) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (u, c) = rt.block_on(round(&mp3, link))?;
        un.push(u * 1000.0);
        ca.push(c * 1000.0);
    }
    un.sort_by(f64::total_cmp);
    ca.sort_by(f64::total_cmp);
    println!(
        "stream_start: first audible sample after the start instant: uncached median {:.1} ms, max {:.1} ms; cached median {:.1} ms, max {:.1} ms (whole download at this rate: {:.1} s)",
        percentile(&un, 0.5),
        un.last().copied().unwrap_or(f64::NAN),
        percentile(&ca, 0.5),
        ca.last().copied().unwrap_or(f64::NAN),
        size as f64 / link as f64
    );
    Ok(())
}

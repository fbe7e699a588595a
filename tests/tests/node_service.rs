//! `jamz node` as a service and for people: with stdin at /dev/null (what a service
//! manager gives) the node does not quit, tells the session in words on stdout, and on
//! SIGTERM leaves the session and exits 0 with its WAV output complete
//! (docs/node-control.md, "By hand and as a service").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jamz_e2e::workspace_bin;
use node_support::{PASSWORD, World, click_track, wav_clicks};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_no_stdin_plays_until_sigterm_then_leaves_and_finishes_its_wav() -> Result<()> {
    let world = World::new(2).await?;
    let mut dj = world.node(0, "null", &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    dj.take_control(world.user_id(0)).await?;
    let song = world.dir.path().join("song.wav");
    click_track(&song, 30.0, 1.0)?;
    dj.add(&song, 1).await?;

    // The service: human mode, stdin /dev/null, a WAV output.
    let (name, _) = &world.users[1];
    let wav = world.dir.path().join("car1.wav");
    let mut child = Command::new(workspace_bin("jamz"))
        .args(["node", "--server", &world.server.url, "--username", name])
        .args(["--password", PASSWORD, "--group", &world.group])
        .args(["--name", "Demo car", "--output"])
        .arg(format!("wav:{}", wav.display()))
        .arg("--cache-dir")
        .arg(world.dir.path().join("cache-car1"))
        .env("JAMZ_CONFIG_DIR", world.dir.path().join("config-car1"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("pid")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut seen = Vec::new();
    let mut wait_line = async |what: &str, pred: &dyn Fn(&str) -> bool| -> Result<String> {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await? {
                seen.push(line.clone());
                if pred(&line) {
                    return Ok(line);
                }
            }
            bail!("stdout ended")
        })
        .await;
        match found {
            Ok(r) => r.with_context(|| format!("waiting for {what}; lines so far: {seen:#?}")),
            Err(_) => bail!("no {what} within {WAIT:?}; lines so far: {seen:#?}"),
        }
    };

    wait_line("the join", &|l| l.starts_with("Joined the session as")).await?;
    // Not a line of JSON: a sentence.
    wait_line("the DJ", &|l| l == "car0's car is the DJ").await?;
    dj.send(json!({"cmd":"play"})).await?;
    let playing = wait_line("playing", &|l| l.starts_with("Playing ")).await?;
    assert!(playing.contains("song"), "{playing}");
    // End of stdin was long ago: the node is still in the session.
    dj.wait_event("participants", |v| {
        v["participants"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["userId"] == world.user_id(1)))
    })
    .await?;
    // Let it play a few clicks into the WAV (its own reports, no fixed sleep).
    let mut heard = 0;
    for _ in 0..200 {
        if let Ok(c) = wav_clicks(&wav) {
            heard = c.len();
            if heard >= 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .context("the node did not exit after SIGTERM")??;
    assert!(status.success(), "exit {status}");

    // It left the session: the DJ's participants no longer list it.
    dj.wait_event("participants", |v| {
        v["participants"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["userId"] != world.user_id(1)))
    })
    .await?;
    // The WAV is complete (its header matches its data) and holds the clicks it played.
    let clicks = wav_clicks(&wav)?;
    assert!(
        clicks.len() >= heard.max(1),
        "{} clicks in the finished WAV, {heard} seen while playing",
        clicks.len()
    );
    let reader = hound::WavReader::open(&wav)?;
    let frames = reader.duration() as u64;
    let bytes = std::fs::metadata(&wav)?.len();
    let data =
        frames * u64::from(reader.spec().channels) * u64::from(reader.spec().bits_per_sample / 8);
    // Finalized: the header counts every sample written. A process killed without
    // finishing leaves up to half a second (192 KB) the header does not count.
    assert!(
        bytes >= data && bytes - data < 1024,
        "{bytes} bytes on disk, the header counts {data} bytes of samples"
    );
    dj.quit().await?;
    Ok(())
}

//! Interoperability with the web app: the DJ is a web-app client (the official
//! `socket.io-client` with its default transports, the event shapes of docs/protocol.md,
//! "play now" timestamps from its own clock: tests/js/web-dj.mjs) and a native node
//! (`jamz node --json --output wav:...`) follows it. The web DJ prints the timeline
//! anchors it set (position P at Unix time T); the native node's WAV, put on the
//! Unix timeline by its schedule sidecar, must have each click where the web DJ's
//! timeline puts it. Every process runs on this machine, so all clocks are one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use jamz_link::RestClient;
use node_support::{
    CLICK_EVERY_S, Click, Comparison, LEVELS, PASSWORD, World, click_track, track_id, wav_clicks,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The same loose bound as node_sync.rs: catches a node that followed the wrong
/// anchor, misread a timestamp or a position (100s of ms), not jitter.
const MAX_OFFSET_MS: f64 = 30.0;

/// After each anchor the native node needs the control relayed, the track
/// opened and its start scheduled; it then joins the timeline mid-track. Clicks
/// this soon after an anchor are printed but not held to the bound.
const SETTLE_S: f64 = 0.5;

const PAIR_WINDOW_S: f64 = 0.25;
const MIN_MATCHED_SHARE: f64 = 0.8;

/// Where the web DJ's track sits on the Unix timeline from `at_s`.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    position: f64,
    at_s: f64,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The clicks the web DJ's timeline says are audible: segment `i` runs from its
/// anchor to the next one (the last to `end_s`).
fn expected_clicks(anchors: &[Anchor], end_s: f64, track_s: f64) -> Vec<Click> {
    let mut out = Vec::new();
    for (i, a) in anchors.iter().enumerate() {
        let until = anchors.get(i + 1).map_or(end_s, |n| n.at_s);
        let clicks = (track_s / CLICK_EVERY_S) as usize;
        for k in 0..clicks {
            let p = k as f64 * CLICK_EVERY_S;
            let t = a.at_s + (p - a.position);
            if p >= a.position && t < until {
                out.push(Click {
                    t,
                    polarity: 1,
                    level: k % LEVELS.len(),
                });
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_node_follows_a_web_app_dj() -> Result<()> {
    let root = repo_root();
    if !root.join("node_modules/socket.io-client").exists() {
        bail!("socket.io-client is not installed: run scripts/setup.sh (npm ci) first");
    }
    let world = World::new(2).await?;
    let dir = world.dir.path().to_path_buf();
    let track_path = dir.join("alpha.wav");
    const TRACK_S: f64 = 14.0;
    click_track(&track_path, TRACK_S, 1.0)?;
    let wav = dir.join("native.wav");

    // car1 is native: it joins and adds the track.
    let mut native = world
        .node(1, &format!("wav:{}", wav.display()), &[])
        .await?;
    native.wait_event("ready", |_| true).await?;
    native.send(json!({"cmd":"volume","level":1.0})).await?;
    let playlist = native.add(&track_path, 1).await?;
    let track = track_id(&playlist, 0)?;

    // car0 is the web app.
    let rest = RestClient::new(&world.server.url)?;
    let auth = rest.login(&world.users[0].0, PASSWORD).await?;
    let session = rest.session_for_group(&world.group).await?;
    let mut dj = tokio::process::Command::new("node")
        .arg(root.join("tests/js/web-dj.mjs"))
        .env("JAMZ_URL", &world.server.url)
        .env("JAMZ_TOKEN", &auth.token)
        .env("JAMZ_SESSION", &session.id)
        .env("JAMZ_USER_ID", auth.user.id.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("run node (Node.js) for the web DJ")?;
    let mut lines = BufReader::new(dj.stdout.take().context("stdout")?).lines();
    let mut anchors = Vec::new();
    let end_s = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            let v: Value = serde_json::from_str(&line).with_context(|| line.clone())?;
            if v["done"] == true {
                return anyhow::Ok(now_unix_s());
            }
            assert_eq!(v["track"], track.as_str(), "{v}");
            anchors.push(Anchor {
                position: v["position"].as_f64().context("position")?,
                at_s: v["timestamp"].as_f64().context("timestamp")? / 1000.0,
            });
        }
        bail!("the web DJ ended without finishing")
    })
    .await
    .context("the web DJ did not finish in time")??;
    let status = dj.wait().await?;
    assert!(status.success(), "web DJ: {status}");
    assert_eq!(anchors.len(), 2, "{anchors:?}");
    // The native node saw the web DJ take control and play.
    let events = native.quit().await?;
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "controller" && e["userId"] == world.user_id(0)),
        "the native node never saw the web DJ take control"
    );

    // ---- the recording against the web DJ's timeline
    let expected = expected_clicks(&anchors, end_s, TRACK_S);
    let heard = wav_clicks(&wav)?;
    let settled: Vec<Click> = heard
        .iter()
        .copied()
        .filter(|c| {
            anchors
                .iter()
                .rev()
                .find(|a| a.at_s <= c.t)
                .is_some_and(|a| c.t >= a.at_s + SETTLE_S)
        })
        .collect();
    eprintln!(
        "\nnative node against the web DJ's timeline (clicks paired within +-{PAIR_WINDOW_S} s):"
    );
    Comparison::new("all clicks", &expected, &heard, PAIR_WINDOW_S).print();
    let cmp = Comparison::new(
        &format!("{SETTLE_S} s after each anchor"),
        &expected,
        &settled,
        PAIR_WINDOW_S,
    );
    cmp.print();
    assert!(
        settled.len() >= 20,
        "only {} clicks recorded after the anchors settled",
        settled.len()
    );
    assert!(
        cmp.matched as f64 >= MIN_MATCHED_SHARE * settled.len() as f64,
        "{} of {} clicks on the web DJ's timeline",
        cmp.matched,
        settled.len()
    );
    assert!(
        cmp.max_abs_ms() <= MAX_OFFSET_MS,
        "a click {:.2} ms off the web DJ's timeline",
        cmp.max_abs_ms()
    );
    Ok(())
}

fn now_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

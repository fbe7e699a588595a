//! A web app peer and a native node on one peer mesh, through the real server: headless
//! Chromium (Debian's `chromium`, driven by playwright-core) runs a page of our own
//! (`tests/js/browser-web-peer.mjs`) that uses only the standard RTCPeerConnection API and
//! the official socket.io-client's browser bundle with docs/protocol.md's payloads: it logs
//! in over REST, joins the session and links with the native DJ (`jamz node --json`)
//! through the server's `webrtc-signal` relay. Then:
//! - both see the link open: the node's `peer` event and `status.peers`, the page's
//!   `music-control` channel (ordered, maxRetransmits 3), and each other's `state-hello`
//!   (the node's reaches the page; the page's is sent on open);
//! - the DJ's play reaches the page over the DataChannel; the page's `location-update`
//!   reaches the node over it;
//! - the server is killed with SIGKILL; the node goes to the mesh tier; the page appends a
//!   track with a mesh `playlist-update` (a member's append, docs/protocol.md's access
//!   rules) and the node takes it; the DJ pauses and the pause reaches the page over the
//!   DataChannel in the seeds' format (`type: music-control, action: pause, data:
//!   {position, trackId, track, timestamp, from}`).
//!
//! Run with Chromium's mDNS hiding of host addresses on (its default: `.local` candidates)
//! and off (`--disable-features=WebRtcHideLocalIpsWithMdns`), with the native node offering
//! (it has the lower user id) and with the page offering.
//!
//! Without chromium (or playwright-core, or node) the test prints why and passes, unless
//! `JAMZ_REQUIRE_CHROMIUM` is set: then it fails with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{Result, bail};
use node_support::{NodeProc, PASSWORD, World, click_track, track_id};
use serde_json::{Value, json};
use tokio::process::Command;

/// One Chromium at a time: the machine is small and each case launches a browser.
static BROWSER: Mutex<()> = Mutex::new(());

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
fn missing_browser() -> Option<String> {
    let chromium = chromium_path();
    if !chromium.exists() {
        return Some(format!(
            "{} not found (apt-get install chromium, see scripts/apt/mesh.txt)",
            chromium.display()
        ));
    }
    for module in ["playwright-core", "socket.io-client/dist/socket.io.min.js"] {
        if !repo_root().join("node_modules").join(module).exists() {
            return Some(format!("node_modules/{module} not found (npm ci)"));
        }
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node not found".into());
    }
    None
}

/// Returns false (after printing why) when the test must be skipped.
fn browser_available() -> bool {
    match missing_browser() {
        None => true,
        Some(reason) if std::env::var_os("JAMZ_REQUIRE_CHROMIUM").is_some() => {
            panic!("JAMZ_REQUIRE_CHROMIUM is set but the browser test cannot run: {reason}")
        }
        Some(reason) => {
            println!("SKIPPED browser mesh interop: {reason}");
            false
        }
    }
}

/// `node tests/js/browser-web-peer.mjs`: commands to its stdin, its JSON lines in a queue
/// ([`NodeProc`] drives it like a node); a line with `error` ends any wait.
struct WebPeer(NodeProc);

impl WebPeer {
    async fn spawn(world: &World, member: usize, hide_with_mdns: bool) -> Result<Self> {
        let mut cmd = Command::new("node");
        cmd.current_dir(repo_root())
            .arg("tests/js/browser-web-peer.mjs")
            .env("JAMZ_URL", &world.server.url)
            .env("JAMZ_USERNAME", &world.users[member].0)
            .env("JAMZ_PASSWORD", PASSWORD)
            .env("JAMZ_GROUP", &world.group)
            .env("CHROMIUM_PATH", chromium_path())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if !hide_with_mdns {
            cmd.arg("--no-mdns");
        }
        Ok(WebPeer(NodeProc::spawn_command("the browser peer", cmd)?))
    }

    async fn send(&mut self, cmd: Value) -> Result<()> {
        self.0.send(cmd).await
    }

    /// Waits (at most `node_support::WAIT`) for a line matching `pred` and takes it out of the
    /// queue.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let v = self
            .0
            .wait_for(what, |v| v.get("error").is_some() || pred(v))
            .await?;
        if let Some(e) = v.get("error") {
            bail!(
                "the browser peer failed: {e}; its last lines: {}",
                self.0.tail()
            );
        }
        Ok(v)
    }

    /// Waits for a mesh message from `peer` matching `pred`; returns its envelope.
    async fn wait_mesh(
        &mut self,
        what: &str,
        peer: i64,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let v = self
            .wait(what, |v| {
                v["event"] == "mesh" && v["peer"] == peer && pred(&v["message"])
            })
            .await?;
        Ok(v["message"].clone())
    }

    /// The local candidates the page signalled so far.
    fn candidates(&mut self) -> Vec<String> {
        self.0
            .history()
            .iter()
            .filter(|v| v["event"] == "candidate")
            .filter_map(|v| v["candidate"].as_str().map(str::to_owned))
            .collect()
    }

    async fn quit(self) -> Result<()> {
        self.0.quit_with(json!({"quit": true})).await?;
        Ok(())
    }
}

/// Checks a mesh `music-control` envelope from `dj` against docs/protocol.md's "Peer mesh"
/// (the seeds' format): `{type, action, data: {position, trackId, track, timestamp, from},
/// sequence, from}`.
fn assert_seeds_control(m: &Value, action: &str, dj: i64, track: &str) {
    assert_eq!(m["type"], "music-control", "{m}");
    assert_eq!(m["action"], action, "{m}");
    assert_eq!(m["from"], dj, "{m}");
    assert!(m["sequence"].is_u64(), "sequence: {m}");
    let d = &m["data"];
    assert!(
        d["position"].as_f64().is_some_and(|p| p >= 0.0),
        "data.position: {m}"
    );
    assert_eq!(d["trackId"], track, "data.trackId: {m}");
    assert_eq!(d["track"]["id"], track, "data.track: {m}");
    assert!(d["timestamp"].as_f64().is_some(), "data.timestamp: {m}");
    assert_eq!(d["from"], dj, "data.from: {m}");
}

/// The whole scenario; `browser_first`: the page's member has the lower user id (the page
/// offers), else the native DJ's (the node offers).
async fn scenario(hide_with_mdns: bool, browser_first: bool) -> Result<()> {
    let mut world = World::new(2).await?;
    let (web_i, dj_i) = if browser_first { (0, 1) } else { (1, 0) };
    let (web_id, dj_id) = (world.user_id(web_i), world.user_id(dj_i));
    eprintln!(
        "mDNS hiding {hide_with_mdns}; the DJ is user {dj_id} (native), the web peer user \
         {web_id}; {} offers",
        if browser_first {
            "the page"
        } else {
            "the node"
        }
    );
    let track_path = world.dir.path().join("alpha.wav");
    click_track(&track_path, 30.0, 1.0)?;

    let mut dj = world.node(dj_i, "null", &[]).await?;
    dj.wait_event("ready", |_| true).await?;
    dj.take_control(dj_id).await?;
    let pl = dj.add(&track_path, 1).await?;
    let track = track_id(&pl, 0)?;

    // ---- the web peer joins and links with the DJ through the server
    let mut web = WebPeer::spawn(&world, web_i, hide_with_mdns).await?;
    let joined = web.wait("joined", |v| v["event"] == "joined").await?;
    assert_eq!(joined["userId"], web_id, "{joined}");
    assert_eq!(joined["state"]["controller_id"], dj_id, "{joined}");
    assert_eq!(
        joined["state"]["playlist"][0]["id"],
        track.as_str(),
        "{joined}"
    );

    let open = web
        .wait("the music-control channel open", |v| {
            v["event"] == "open" && v["peer"] == dj_id
        })
        .await?;
    eprintln!("browser: {open}");
    assert_eq!(open["label"], "music-control", "{open}");
    assert_eq!(open["ordered"], true, "{open}");
    assert_eq!(open["maxRetransmits"], 3, "{open}");
    let peer = dj
        .wait_event("peer", |v| {
            v["userId"] == web_id && v["state"] == "connected"
        })
        .await?;
    eprintln!("native: {peer}");
    let s = dj.status().await?;
    assert_eq!(s["peers"], 1, "the DJ's status: {s}");
    assert_eq!(s["tier"], "socket", "the DJ's status: {s}");
    let hello = web
        .wait_mesh("the DJ's state-hello", dj_id, |m| {
            m["type"] == "state-hello"
        })
        .await?;
    eprintln!("browser got: {hello}");
    assert_eq!(hello["from"], dj_id, "{hello}");
    assert_eq!(hello["data"]["controller"], dj_id, "{hello}");
    assert!(hello["data"]["playlistHash"].is_string(), "{hello}");
    web.wait("the page's own state-hello", |v| {
        v["event"] == "sent" && v["message"]["type"] == "state-hello"
    })
    .await?;
    let candidates = web.candidates();
    let hidden = candidates.iter().any(|c| c.contains(".local"));
    assert_eq!(
        hidden, hide_with_mdns,
        "the browser's candidates do not match the mode: {candidates:?}"
    );

    // ---- both ways with the server up: the DJ's play, the page's position
    dj.send(json!({"cmd":"play","track":track,"position":0.0}))
        .await?;
    let play = web
        .wait_mesh("the DJ's play over the mesh", dj_id, |m| {
            m["type"] == "music-control" && m["action"] == "play"
        })
        .await?;
    eprintln!("browser got: {play}");
    assert_seeds_control(&play, "play", dj_id, &track);

    web.send(json!({"location": {"latitude": 48.2, "longitude": 11.5, "speed": 20}}))
        .await?;
    let loc = dj.wait_event("location", |v| v["userId"] == web_id).await?;
    eprintln!("native got: {loc}");
    assert_eq!(loc["latitude"], 48.2, "{loc}");
    assert_eq!(loc["longitude"], 11.5, "{loc}");

    // ---- the server dies: the link carries on
    // Playing for a second first, so the pause names a position of its own.
    let p = dj.wait_position(&track, 1.0).await?;
    eprintln!("native: playing at {p:.2} s");
    dj.clear();
    let tmp = world.server.take_dir();
    world.server.kill9().await?;
    let tier = dj.wait_event("tier", |v| v["tier"] == "mesh").await?;
    eprintln!("native: {tier}");
    web.wait("the page's socket down", |v| {
        v["event"] == "socket" && v["name"] == "disconnect"
    })
    .await?;

    // The page appends a track over the mesh (a member may append): the DJ takes it.
    // A track of its own (another file: the same file twice is one track).
    let sha = "b0".repeat(32);
    let appended = json!({
        "id": "b0b0b0b0b0b0b0b0b0b0b0b0",
        "title": "from the browser",
        "artist": "web peer",
        "source": "upload",
        "url": format!("{}/api/music/files/{sha}", world.server.url),
        "sha256": sha,
    });
    web.send(json!({ "append": appended })).await?;
    let sent = web
        .wait("the page's append sent", |v| {
            v["event"] == "sent" && v["message"]["type"] == "playlist-update"
        })
        .await?;
    eprintln!("browser sent: {sent}");
    // The playlist, or what the node says against it.
    let pl = dj
        .wait_for("the page's append (or a refusal)", |v| {
            v["event"] == "playlist" && v["playlist"].as_array().is_some_and(|p| p.len() == 2)
                || v["event"] == "mesh-refused"
                || v["event"] == "error"
        })
        .await?;
    assert_eq!(
        pl["event"], "playlist",
        "the DJ did not take the page's append: {pl}"
    );
    eprintln!("native got: {pl}");
    assert_eq!(pl["playlist"][0]["id"], track.as_str(), "{pl}");
    assert_eq!(pl["playlist"][1]["id"], "b0b0b0b0b0b0b0b0b0b0b0b0", "{pl}");

    // The native DJ pauses: the page hears it over the DataChannel, in the seeds' format.
    dj.send(json!({"cmd":"pause"})).await?;
    let pause = web
        .wait_mesh("the DJ's pause over the mesh", dj_id, |m| {
            m["type"] == "music-control" && m["action"] == "pause"
        })
        .await?;
    eprintln!("browser got, with the server dead: {pause}");
    assert_seeds_control(&pause, "pause", dj_id, &track);
    let s = dj.status().await?;
    eprintln!("native status after the pause: {s}");
    let (said, paused) = (
        pause["data"]["position"].as_f64().unwrap_or(f64::NAN),
        s["position"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        said >= 1.0 && (said - paused).abs() < 0.25,
        "the pause the page got says {said} s, the DJ paused at {paused} s"
    );
    assert_eq!(s["peers"], 1, "the DJ's status: {s}");
    assert_eq!(s["tier"], "mesh", "the DJ's status: {s}");
    assert_eq!(s["playing"], false, "the DJ's status: {s}");
    let refused = s["mesh"]["refused"].as_u64().unwrap_or(u64::MAX);
    assert_eq!(refused, 0, "the DJ refused something of the page: {s}");

    web.quit().await?;
    dj.quit().await?;
    drop(tmp);
    Ok(())
}

fn check(hide_with_mdns: bool, browser_first: bool) {
    if !browser_available() {
        return;
    }
    let _one_browser = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = rt.block_on(scenario(hide_with_mdns, browser_first)) {
        panic!(
            "browser mesh interop (mDNS hiding {hide_with_mdns}, page offers \
             {browser_first}): {e:#}"
        );
    }
}

#[test]
fn web_peer_mdns_hidden_native_offers() {
    check(true, false);
}

#[test]
fn web_peer_mdns_hidden_page_offers() {
    check(true, true);
}

#[test]
fn web_peer_raw_addresses_native_offers() {
    check(false, false);
}

#[test]
fn web_peer_raw_addresses_page_offers() {
    check(false, true);
}

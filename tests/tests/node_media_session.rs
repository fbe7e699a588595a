//! The node's media session seen from outside (docs/architecture.md, "Media session"):
//! `jamz node --media-session` on a private D-Bus session bus, read and steered with
//! `playerctl` as a desktop's "now playing" and a steering wheel's buttons would.
//!
//! Keep-awake: while the session plays the node holds the desktop's screen saver off
//! (`org.freedesktop.ScreenSaver.Inhibit`); no desktop runs here, so the DJ's bus has a
//! stand-in service with that interface that records the calls.
//!
//! Needs `dbus-daemon` and `playerctl` (scripts/apt/keyring.txt, platform.txt): skipped
//! with a reason when missing, unless `JAMZ_REQUIRE_MEDIA_SESSION` is set (CI).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use node_support::{NodeProc, WAIT, World, click_track};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// A private session bus (`dbus-daemon --session`), stopped on drop.
struct Bus {
    address: String,
    _daemon: Child,
}

impl Bus {
    async fn start() -> Result<Bus> {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawn dbus-daemon")?;
        let stdout = daemon.stdout.take().context("stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let address = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .context("dbus-daemon printed no address")??
            .context("dbus-daemon exited")?;
        Ok(Bus {
            address: address.trim().to_owned(),
            _daemon: daemon,
        })
    }

    /// `playerctl --player=trafficjamz ARGS` on this bus; its stdout, trimmed.
    async fn playerctl(&self, args: &[&str]) -> Result<String> {
        let out = tokio::time::timeout(
            WAIT,
            Command::new("playerctl")
                .arg("--player=trafficjamz")
                .args(args)
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("playerctl hung")??;
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() {
            bail!(
                "playerctl {args:?}: {}: {stdout} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// A property of the player (`dbus-send`, as a head unit's bridge would read it).
    async fn player_property(&self, name: &str) -> Result<String> {
        let list = self.playerctl(&["--list-all"]).await?;
        let player = list
            .lines()
            .find(|l| l.starts_with("trafficjamz"))
            .context("no trafficjamz player listed")?;
        let out = Command::new("dbus-send")
            .args([
                "--print-reply",
                &format!("--dest=org.mpris.MediaPlayer2.{player}"),
                "/org/mpris/MediaPlayer2",
                "org.freedesktop.DBus.Properties.Get",
                "string:org.mpris.MediaPlayer2.Player",
                &format!("string:{name}"),
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Asks `playerctl ARGS` until its answer satisfies `pred` (the player signals
    /// its changes a moment after the node's event); the last answer.
    async fn playerctl_until(&self, args: &[&str], pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = self.playerctl(args).await;
            if let Ok(a) = &answer
                && pred(a)
            {
                return Ok(a.clone());
            }
            if tokio::time::Instant::now() > deadline {
                let players = self.playerctl(&["--list-all"]).await;
                let metadata = self.player_property("Metadata").await;
                bail!(
                    "playerctl {args:?} never matched; last answer {answer:?}; players {players:?}; Metadata {metadata:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The desktop's screen saver as the node sees it: each call, in words, on a channel.
struct ScreenSaver {
    calls: tokio::sync::mpsc::UnboundedSender<String>,
    cookies: u32,
}

#[zbus::interface(name = "org.freedesktop.ScreenSaver")]
impl ScreenSaver {
    fn inhibit(&mut self, application_name: &str, reason: &str) -> u32 {
        self.cookies += 1;
        let _ = self.calls.send(format!(
            "Inhibit({application_name}, {reason}) = {}",
            self.cookies
        ));
        self.cookies
    }

    fn un_inhibit(&mut self, cookie: u32) {
        let _ = self.calls.send(format!("UnInhibit({cookie})"));
    }
}

/// Serves the stand-in on `bus`; its calls arrive on the receiver.
async fn screen_saver(
    bus: &Bus,
) -> Result<(
    zbus::Connection,
    tokio::sync::mpsc::UnboundedReceiver<String>,
)> {
    let (calls, rx) = tokio::sync::mpsc::unbounded_channel();
    let connection = zbus::connection::Builder::address(bus.address.as_str())?
        .name("org.freedesktop.ScreenSaver")?
        .serve_at(
            "/org/freedesktop/ScreenSaver",
            ScreenSaver { calls, cookies: 0 },
        )?
        .build()
        .await?;
    Ok((connection, rx))
}

async fn next_call(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Result<String> {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .context("no call to the screen saver")?
        .context("the stand-in stopped")
}

fn required() -> bool {
    std::env::var_os("JAMZ_REQUIRE_MEDIA_SESSION").is_some()
}

async fn node_on(world: &World, i: usize, bus: &Bus) -> Result<NodeProc> {
    world
        .node_with_args(
            i,
            "null",
            &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())],
            &["--media-session"],
        )
        .await
}

/// `out`: `audio` as FLAC with a 16x16 red PNG (`cover`) attached as its front cover.
async fn with_cover(
    audio: &std::path::Path,
    cover: &std::path::Path,
    out: &std::path::Path,
) -> Result<()> {
    let ffmpeg = |args: Vec<&std::ffi::OsStr>| {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args);
        cmd
    };
    let s = |x: &'static str| std::ffi::OsStr::new(x);
    let made = ffmpeg(vec![
        s("-f"),
        s("lavfi"),
        s("-i"),
        s("color=c=red:s=16x16"),
        s("-frames:v"),
        s("1"),
        cover.as_os_str(),
    ])
    .status()
    .await
    .context("ffmpeg (scripts/apt/audio-test.txt)")?;
    anyhow::ensure!(made.success(), "ffmpeg could not make the cover");
    let made = ffmpeg(vec![
        s("-i"),
        audio.as_os_str(),
        s("-i"),
        cover.as_os_str(),
        s("-map"),
        s("0:a"),
        s("-map"),
        s("1:v"),
        s("-c:a"),
        s("flac"),
        s("-c:v"),
        s("copy"),
        s("-disposition:v"),
        s("attached_pic"),
        out.as_os_str(),
    ])
    .status()
    .await?;
    anyhow::ensure!(made.success(), "ffmpeg could not attach the cover");
    Ok(())
}

/// A `file://` URL's path with its `%XX` escapes undone.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn title_of(playlist: &Value, i: usize) -> String {
    playlist["playlist"][i]["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playerctl_reads_now_playing_and_steers_the_dj_but_not_the_others() -> Result<()> {
    let missing: Vec<_> = ["dbus-daemon", "dbus-send", "playerctl"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if !missing.is_empty() {
        if required() {
            bail!(
                "JAMZ_REQUIRE_MEDIA_SESSION is set but {missing:?} is missing (scripts/apt/platform.txt)"
            );
        }
        eprintln!("SKIPPED: {missing:?} not installed (scripts/apt/platform.txt)");
        return Ok(());
    }
    let world = World::new(2).await?;
    let (dj_bus, rider_bus) = (Bus::start().await?, Bus::start().await?);
    let (_screen_saver, mut saver_calls) = screen_saver(&dj_bus).await?;
    let mut dj = node_on(&world, 0, &dj_bus).await?;
    let mut rider = node_on(&world, 1, &rider_bus).await?;
    dj.take_control(world.user_id(0)).await?;
    rider
        .wait_event("controller", |v| v["userId"] == world.user_id(0))
        .await?;

    let first_wav = world.dir.path().join("first drive.wav");
    let second = world.dir.path().join("second drive.wav");
    click_track(&first_wav, 40.0, 1.0)?;
    click_track(&second, 30.0, -1.0)?;
    // The first track carries a cover picture in its tags (FLAC with an attached PNG).
    let cover = world.dir.path().join("cover.png");
    let first = world.dir.path().join("first drive.flac");
    with_cover(&first_wav, &cover, &first).await?;
    dj.add(&first, 1).await?;
    let playlist = dj.add(&second, 2).await?;
    rider.wait_playlist(2).await?;
    let (title_a, title_b) = (title_of(&playlist, 0), title_of(&playlist, 1));
    let id_b = playlist["playlist"][1]["id"].clone();
    eprintln!("playlist: {title_a:?}, {title_b:?}");

    // Nothing playing yet: the player is there, stopped.
    let status = dj_bus.playerctl(&["status"]).await?;
    assert_eq!(status, "Stopped");
    assert!(dj_bus.player_property("CanGoNext").await?.ends_with("true"));
    assert!(
        rider_bus
            .player_property("CanGoNext")
            .await?
            .ends_with("false"),
        "the rider's Next button is greyed out"
    );
    // Play stays enabled for the rider (MPRIS: there is a track; clients hide the now
    // playing of a player that cannot play): the engine says no (below).
    assert!(
        rider_bus
            .player_property("CanPlay")
            .await?
            .ends_with("true")
    );

    // The DJ's play key plays for the group.
    dj_bus.playerctl(&["play"]).await?;
    dj.wait_event("playback", |v| v["playing"] == true).await?;
    rider
        .wait_event("playback", |v| v["playing"] == true)
        .await?;
    // Playing: the screen is kept awake.
    let inhibit = next_call(&mut saver_calls).await?;
    eprintln!("screen saver: {inhibit}");
    assert_eq!(inhibit, "Inhibit(TrafficJamz, a session is playing) = 1");
    let format = "{{status}}|{{title}}|{{artist}}|{{mpris:length}}";
    let expected_a = format!("Playing|{title_a}|");
    let meta = dj_bus
        .playerctl_until(&["metadata", "--format", format], |m| {
            m.starts_with(&expected_a)
        })
        .await?;
    eprintln!("DJ's now playing: {meta}");
    // 40 s of track, in µs, as the playlist says.
    assert!(meta.ends_with("|40000000"), "{meta}");
    // The rider's desktop shows the same track playing.
    let rider_meta = rider_bus
        .playerctl_until(&["metadata", "--format", format], |m| {
            m.starts_with(&expected_a)
        })
        .await?;
    eprintln!("rider's now playing: {rider_meta}");
    // The cover from the track's tags, as a file each desktop reads from its own cache.
    let png = std::fs::read(&cover)?;
    for (who, bus) in [("DJ", &dj_bus), ("rider", &rider_bus)] {
        let art = bus
            .playerctl_until(&["metadata", "mpris:artUrl"], |m| m.starts_with("file://"))
            .await?;
        eprintln!("{who}'s cover: {art}");
        let path = percent_decode(art.trim_start_matches("file://"));
        assert_eq!(
            std::fs::read(&path).with_context(|| format!("{who}'s cover {path}"))?,
            png,
            "{who}'s cover is the picture in the track's tags"
        );
    }

    // Next: the second track, for everyone.
    dj_bus.playerctl(&["next"]).await?;
    dj.wait_event("playback", |v| v["track"] == id_b && v["playing"] == true)
        .await?;
    let expected_b = format!("Playing|{title_b}|");
    let meta = dj_bus
        .playerctl_until(&["metadata", "--format", format], |m| {
            m.starts_with(&expected_b)
        })
        .await?;
    eprintln!("after next: {meta}");
    assert!(meta.ends_with("|30000000"), "{meta}");

    // A seek to 12 s (playerctl's SetPosition on the track now playing).
    dj_bus.playerctl(&["position", "12"]).await?;
    let seeked = dj
        .wait_event("playback", |v| {
            v["track"] == id_b
                && v["position"]
                    .as_f64()
                    .is_some_and(|p| (p - 12.0).abs() < 0.5)
        })
        .await?;
    eprintln!("after position 12: {seeked}");

    // The rider's key is only a command: the engine refuses it, the node says so, and
    // the group plays on.
    rider.clear();
    rider_bus.playerctl(&["play-pause"]).await?;
    let refused = rider.wait_event("error", |v| v["cmd"] == "pause").await?;
    eprintln!("rider's play-pause: {refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("only the DJ")),
        "{refused}"
    );

    // The DJ's play-pause pauses everyone.
    dj_bus.playerctl(&["play-pause"]).await?;
    dj.wait_event("playback", |v| v["playing"] == false).await?;
    rider
        .wait_event("playback", |v| v["playing"] == false)
        .await?;
    let status = rider_bus
        .playerctl_until(&["status"], |s| s == "Paused")
        .await?;
    assert_eq!(status, "Paused");
    dj_bus
        .playerctl_until(&["status"], |s| s == "Paused")
        .await?;
    // Paused: the screen may sleep again (next track and seek kept one inhibition).
    let released = next_call(&mut saver_calls).await?;
    eprintln!("screen saver: {released}");
    assert_eq!(released, "UnInhibit(1)");

    rider.quit().await?;
    dj.quit().await?;
    Ok(())
}

//! `jamz node` by hand on a terminal (a pseudo-terminal here): single keys act at once
//! (space plays and pauses, q quits), `:` types a word command, and the terminal's modes
//! are put back when the node ends (docs/node-control.md, "By hand and as a service").
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jamz_e2e::workspace_bin;
use node_support::{PASSWORD, World, click_track};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{LocalModes, tcgetattr};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(30);

/// What the node wrote on the terminal so far, read by a thread.
struct Screen {
    chunks: mpsc::Receiver<Vec<u8>>,
    text: String,
    /// Where the next wait starts looking (each wait is for something new).
    from: usize,
}

impl Screen {
    /// Waits for `what` after what the last wait found.
    fn wait_for(&mut self, what: &str) -> Result<()> {
        self.wait(what, false)
    }

    /// Waits for `what` anywhere on the screen (lines whose order is not fixed).
    fn wait_anywhere(&mut self, what: &str) -> Result<()> {
        self.wait(what, true)
    }

    fn wait(&mut self, what: &str, anywhere: bool) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let from = if anywhere { 0 } else { self.from };
            if let Some(i) = self.text[from..].find(what) {
                if anywhere {
                    return Ok(());
                }
                self.from += i + what.len();
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(c) => self.text.push_str(&String::from_utf8_lossy(&c)),
                Err(_) => bail!(
                    "no {what:?} on the terminal within {WAIT:?}; it shows:\n{}",
                    self.text
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_on_a_terminal_play_pause_and_quit_and_the_terminal_is_restored() -> Result<()> {
    let world = World::new(2).await?;
    let mut other = world.node(0, "null", &[]).await?;
    other.wait_event("ready", |_| true).await?;
    let song = world.dir.path().join("song.wav");
    click_track(&song, 30.0, 1.0)?;
    other.add(&song, 1).await?;

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str()?)?;
    assert!(
        tcgetattr(&tty)?.local_modes.contains(LocalModes::ICANON),
        "a fresh terminal reads lines"
    );
    let (name0, _) = &world.users[1];
    let mut child = Command::new(workspace_bin("jamz"))
        .args(["node", "--server", &world.server.url, "--username", name0])
        .args(["--password", PASSWORD, "--group", &world.group])
        .args(["--name", "Keys car", "--output", "null", "--cache-dir"])
        .arg(world.dir.path().join("cache-keys"))
        .env("JAMZ_CONFIG_DIR", world.dir.path().join("config-keys"))
        .stdin(Stdio::from(tty.try_clone()?))
        .stdout(Stdio::from(tty.try_clone()?))
        .stderr(Stdio::from(tty.try_clone()?))
        .kill_on_drop(true)
        .spawn()?;
    let mut keyboard = std::fs::File::from(master);
    let mut reader = keyboard.try_clone()?;
    let (tx, chunks) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut screen = Screen {
        chunks,
        text: String::new(),
        from: 0,
    };

    screen.wait_for("Joined the session as Keys car")?;
    screen.wait_anywhere("Playlist: 1 track")?;
    // Key by key now: no line discipline, no echo.
    let modes = tcgetattr(&tty)?.local_modes;
    assert!(
        !modes.intersects(LocalModes::ICANON | LocalModes::ECHO),
        "the node reads keys: {modes:?}"
    );
    // `:` and a word command: the letters are typed, not taken as keys (p is "previous").
    keyboard.write_all(b":dj\r")?;
    screen.wait_for("You are the DJ")?;
    keyboard.write_all(b" ")?;
    screen.wait_for("Playing song from 0:00")?;
    other
        .wait_event("playback", |v| v["playing"] == true)
        .await?;
    keyboard.write_all(b" ")?;
    screen.wait_for("Paused song at")?;
    other
        .wait_event("playback", |v| v["playing"] == false)
        .await?;
    keyboard.write_all(b"q")?;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .context("the node did not quit on q")??;
    assert!(status.success(), "exit {status}");
    let modes = tcgetattr(&tty)?.local_modes;
    assert!(
        modes.contains(LocalModes::ICANON | LocalModes::ECHO),
        "the terminal is put back: {modes:?}"
    );
    other.quit().await?;
    Ok(())
}

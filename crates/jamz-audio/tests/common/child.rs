//! A test that runs its other half in a child process: this test binary re-run on one ignored
//! test, with its own environment (the sound server and ALSA configuration a player uses are
//! chosen by the environment). The child reports on stdout, one line per event.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use jamz_audio::{OutputSpec, Player, PlayerEvent, Source};

use super::{Fmt, RATE, make_file, sine};

/// The command that re-runs this test binary on the ignored test `test` alone; the caller adds
/// its environment and passes it to [`ChildRun::spawn`].
pub fn rerun(test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--ignored", "--nocapture"]);
    cmd
}

/// The child process and the lines it prints.
pub struct ChildRun {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildRun {
    /// Starts `cmd` with its stdout read line by line; its stderr lines come through the same
    /// channel prefixed with `stderr: `, so a child's panic message is echoed with the rest.
    pub fn spawn(mut cmd: Command) -> ChildRun {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx_err.send(format!("stderr: {line}"));
            }
        });
        ChildRun { child, lines: rx }
    }

    /// Waits (up to `timeout`) for a line starting with `what`; returns it. Every line read
    /// on the way is echoed.
    pub fn expect(&self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(what) => {
                    println!("child: {l}");
                    return l;
                }
                Ok(l) => println!("child: {l}"),
                Err(_) => panic!("child never said {what:?}"),
            }
        }
    }

    /// Waits for the child to exit.
    pub fn wait(mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }
}

/// The child halves' playback: a player on `spec` playing a 30 s tone (a FLAC made in `dir`)
/// from 300 ms from now, with its events and that start instant.
pub fn play_long_tone(dir: &Path, spec: &OutputSpec) -> (Player, Receiver<PlayerEvent>, Instant) {
    let player = Player::new(spec).unwrap();
    let events = player.events();
    let t0 = Instant::now() + Duration::from_millis(300);
    player.start(long_tone(dir), 0.0, t0).unwrap();
    (player, events, t0)
}

/// What a caller that keeps the group's timeline does on `DeviceRestored` (the player decides
/// nothing): starts the tone again where a timeline that began at `t0` is, a little ahead so
/// that the first sound lands on schedule.
pub fn restart_on_the_timeline(player: &Player, dir: &Path, t0: Instant) {
    let at = Instant::now() + Duration::from_millis(300);
    let position = at.saturating_duration_since(t0).as_secs_f64();
    player.start(long_tone(dir), position, at).unwrap();
}

/// The 30 s tone of [`play_long_tone`], written to `dir` once.
fn long_tone(dir: &Path) -> Source {
    let path = dir.join("tone.flac");
    if !path.exists() {
        let tone = sine(RATE as usize * 30, 440.0, 0.3);
        let made = make_file(dir, "tone", Fmt::Flac, &tone);
        assert_eq!(made, path, "make_file names files by stem and format");
    }
    Source::new("tone", &path)
}

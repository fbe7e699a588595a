//! A private PulseAudio server with a null sink, for tests that kill and restart
//! the sound server under a playing player.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a private server may take to answer `pactl info`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The shared null sink that scripts/env.d/pulseaudio.sh starts (`JAMZ_PULSE_SINK`), or `None`
/// after saying loudly on stderr that the calling test is skipped. With `JAMZ_REQUIRE_PULSE`
/// set (CI) a missing sink fails the test instead.
pub fn sink_or_skip() -> Option<String> {
    let sink = std::env::var("JAMZ_PULSE_SINK").ok();
    if sink.is_none() && std::env::var_os("JAMZ_REQUIRE_PULSE").is_some() {
        panic!(
            "JAMZ_REQUIRE_PULSE is set but JAMZ_PULSE_SINK is not: source scripts/env.d/pulseaudio.sh"
        );
    }
    if sink.is_none() {
        eprintln!(
            "\n*** skipped: no PulseAudio (JAMZ_PULSE_SINK unset; scripts/env.d/pulseaudio.sh starts a null sink) ***\n"
        );
    }
    sink
}

/// A running server, killed when dropped.
pub struct Pulse {
    child: Child,
    /// Its address, for `PULSE_SERVER`.
    pub server: String,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a PulseAudio of our own in `dir` (not daemonised: we hold its process)
/// with a null sink named `sink`; `None` if it cannot start or does not answer.
pub fn start_pulse(dir: &Path, sink: &str) -> Option<Pulse> {
    let runtime = dir.join("runtime");
    let home = dir.join("home");
    std::fs::create_dir_all(&runtime).ok()?;
    std::fs::create_dir_all(home.join(".config/pulse")).ok()?;
    let socket = runtime.join("native");
    let server = format!("unix:{}", socket.display());
    let child = Command::new("pulseaudio")
        .args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "-n",
        ])
        .arg(format!(
            "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
            socket.display()
        ))
        .arg(format!(
            "--load=module-null-sink sink_name={sink} channels=2 rate=48000"
        ))
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Pulse { child, server };
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        let ok = Command::new("pactl")
            .arg("info")
            .env("PULSE_SERVER", &p.server)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(p);
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    None
}

//! Recording PulseAudio null sinks for the tests that play nodes on real (virtual)
//! devices: a second null sink of the test's own, and parec on a sink's monitor with
//! the arrival of every read, so clicks land on the test's monotonic timeline.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::node_support::{Click, find_clicks};

/// The null sinks' rate (scripts/env.d/pulseaudio.sh pins 50 kHz: no drift against
/// the monotonic clock, docs/architecture.md, "real-time audio without a sound
/// card"); parec records at it.
pub const SINK_RATE: u32 = 50_000;

/// The sink scripts/env.d/pulseaudio.sh started, or `None` (and a loud note on
/// stderr: the caller skips) when there is no PulseAudio. With JAMZ_REQUIRE_PULSE set
/// (CI) a missing PulseAudio fails the test instead: never a silent skip there.
pub fn sink_or_skip() -> Option<String> {
    match std::env::var("JAMZ_PULSE_SINK") {
        Ok(s) => Some(s),
        Err(_) if std::env::var_os("JAMZ_REQUIRE_PULSE").is_some() => panic!(
            "JAMZ_REQUIRE_PULSE is set but JAMZ_PULSE_SINK is not: source scripts/env.d/pulseaudio.sh"
        ),
        Err(_) => {
            eprintln!(
                "\n*** skipped: no PulseAudio (JAMZ_PULSE_SINK unset; source scripts/env.d/pulseaudio.sh) ***\n"
            );
            None
        }
    }
}

/// Samples recorded so far, and (arrival, frames so far) after each read.
type Recorded = (Vec<i16>, Vec<(Instant, u64)>);

/// A parec recording of one sink's monitor, with the arrival of each read.
pub struct Recording {
    child: std::process::Child,
    data: Arc<Mutex<Recorded>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Recording {
    pub fn start(sink: &str) -> Result<Self> {
        let mut child = Command::new("parec")
            .args([
                "-d",
                &format!("{sink}.monitor"),
                // parec's default latency makes the sink render ~2 s ahead.
                "--latency-msec=20",
                "--channels=2",
                "--format=s16le",
                "--raw",
            ])
            .arg(format!("--rate={SINK_RATE}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn parec")?;
        let mut out = child.stdout.take().context("parec stdout")?;
        let data = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let d = Arc::clone(&data);
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            let mut pending: Vec<u8> = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                pending.extend_from_slice(&buf[..n]);
                let whole = pending.len() / 4 * 4;
                let mut g = d.lock().unwrap();
                for fr in pending[..whole].chunks_exact(4) {
                    g.0.push(i16::from_le_bytes([fr[0], fr[1]]));
                }
                pending.drain(..whole);
                let frames = g.0.len() as u64;
                g.1.push((now, frames));
            }
        });
        Ok(Recording {
            child,
            data,
            reader: Some(reader),
        })
    }

    /// Stops parec; returns the clicks on the timeline of seconds since `origin`.
    pub fn finish(mut self, origin: Instant) -> Result<Vec<Click>> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let g = self.data.lock().unwrap();
        let (samples, arrivals) = (&g.0, &g.1);
        if arrivals.is_empty() {
            bail!("parec recorded nothing");
        }
        // Frame 0 was captured no later than (arrival - frames/rate) for every read:
        // the earliest such bound estimates it (reads arrive after their frames).
        let rate = f64::from(SINK_RATE);
        let t0 = arrivals
            .iter()
            .map(|(at, frames)| at.duration_since(origin).as_secs_f64() - *frames as f64 / rate)
            .fold(f64::INFINITY, f64::min);
        let mono: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
        Ok(find_clicks(&mono, SINK_RATE, t0))
    }
}

pub fn pactl(args: &[&str]) -> Result<String> {
    let out = Command::new("pactl").args(args).output().context("pactl")?;
    if !out.status.success() {
        bail!(
            "pactl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A null sink of the test's own, unloaded on drop.
pub struct NullSink {
    pub name: String,
    module: String,
}

impl NullSink {
    pub fn load(name: &str) -> Result<Self> {
        let module = pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={name}"),
            "channels=2",
            &format!("rate={SINK_RATE}"),
        ])?;
        Ok(NullSink {
            name: name.to_owned(),
            module,
        })
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        let _ = pactl(&["unload-module", &self.module]);
    }
}

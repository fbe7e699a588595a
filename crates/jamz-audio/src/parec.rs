//! For the tests only (feature `test-support`): the latency calibration's independent
//! check on a private PulseAudio. parec records two monitors (the output's, and the
//! microphone's after a `module-loopback` with the delay no API reports) during a
//! calibration, each read stamped with its arrival, and [`probe_delays_ms`] finds each probe
//! in both: how much later the microphone's monitor had it. jamz-audio's calibrate_pulse
//! and the node's node_pulse_calibrate check the calibration against it.
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::latency::{self, ProbeError};

/// parec's first reads bring the monitor's backlog in a burst: they say nothing of when
/// frames were captured and are left out of the clock estimate (and out of the search).
pub const BURST: Duration = Duration::from_millis(500);
/// The latency parec asks of each monitor, which sets the null sinks' block: a null sink
/// renders a block at the instant of its first frame and hands it whole to its monitor, so
/// the rig's "microphone" (a monitor) delivers frames up to a block before they are heard,
/// which no real microphone can. The calibration times its input by arrival and reads early
/// by about half a block: measured on calibrate_pulse, 2 ms blocks read 1.3-1.6 ms early,
/// 10 ms blocks 5.2 ms, 1 ms blocks 0.5-0.8 ms. parec sees the same on both monitors, so its
/// own figure is unaffected. The smallest block parec can ask for keeps this artifact of the
/// rig well inside the 2 ms the calibration must agree within.
pub const LATENCY_MS: u32 = 1;
/// Reads before a recording counts as running.
const RUNNING_READS: usize = 5;

/// Mono samples, and after each read its arrival instant and the frames so far.
#[derive(Default)]
struct Log {
    samples: Vec<f32>,
    reads: Vec<(Instant, u64)>,
}

/// parec on one PulseAudio source (a monitor), mono float at `rate`, stopped by
/// [`Parec::finish`] (or killed when dropped).
pub struct Parec {
    child: Child,
    log: Arc<(Mutex<Log>, Condvar)>,
    reader: Option<JoinHandle<()>>,
    started: Instant,
    rate: u32,
}

/// A finished recording: its samples and the instant of its frame 0.
#[derive(Debug, Clone)]
pub struct Recording {
    pub samples: Vec<f32>,
    /// The earliest "arrival minus the frames before it" after the backlog burst: every read
    /// arrives at or after its last frame was made (as NTP's lowest-delay sample).
    pub frame0: Instant,
    pub rate: u32,
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Parec {
    /// Starts parec on `source` (`NAME.monitor` for a sink's) at `rate` Hz, 2 ms latency.
    pub fn start(source: &str, rate: u32) -> std::io::Result<Parec> {
        let mut child = Command::new("parec")
            .args(["-d", source, "--channels=1"])
            .arg(format!("--latency-msec={LATENCY_MS}"))
            .args(["--format=float32le", "--raw", &format!("--rate={rate}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let Some(mut out) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("parec's output is not piped"));
        };
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let l2 = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut carry: Vec<u8> = Vec::new();
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                carry.extend_from_slice(&buf[..n]);
                let whole = carry.len() / 4 * 4;
                let mut r = lock(&l2.0);
                r.samples.extend(
                    carry[..whole]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                carry.drain(..whole);
                let frames = r.samples.len() as u64;
                r.reads.push((now, frames));
                drop(r);
                l2.1.notify_all();
            }
        });
        Ok(Parec {
            child,
            log,
            reader: Some(reader),
            started: Instant::now(),
            rate,
        })
    }

    /// Blocks until parec delivers (a few reads) or `timeout` has passed; returns whether it
    /// delivers.
    pub fn wait_running(&self, timeout: Duration) -> bool {
        let (log, delivered) = &*self.log;
        let guard = lock(log);
        let (guard, _) = delivered
            .wait_timeout_while(guard, timeout, |r| r.reads.len() < RUNNING_READS)
            .unwrap_or_else(PoisonError::into_inner);
        guard.reads.len() >= RUNNING_READS
    }

    /// Stops parec; the recording, or `None` if it stopped within its backlog burst.
    pub fn finish(mut self) -> Option<Recording> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let mut r = lock(&self.log.0);
        let rate = f64::from(self.rate);
        let frame0 = r
            .reads
            .iter()
            .filter(|(at, _)| *at >= self.started + BURST)
            .map(|&(at, f)| at - Duration::from_secs_f64(f as f64 / rate))
            .min()?;
        Some(Recording {
            samples: std::mem::take(&mut r.samples),
            frame0,
            rate: self.rate,
        })
    }
}

impl Drop for Parec {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The delays (ms, sorted) of `probes` probes from recording `a` to recording `b` (same
/// rate): each probe found in `a` after its backlog burst (the strongest left each time),
/// then in `b` from 0.3 s before to 1 s after. Per probe, as the calibration does: the
/// loopback adapts its rate, so its delay moves a little over seconds.
pub fn probe_delays_ms(a: &Recording, b: &Recording, probes: usize) -> Result<Vec<f64>, String> {
    let rate = f64::from(a.rate);
    let template = latency::probe(a.rate);
    let skip = ((BURST.as_secs_f64() * rate) as usize).min(a.samples.len());
    let mut rest = a.samples[skip..].to_vec();
    let mut delays = Vec::with_capacity(probes);
    for k in 0..probes {
        let found = latency::find_echo(&template, &rest)
            .map_err(|e: ProbeError| format!("probe {k} not in the output's monitor: {e}"))?;
        let at = found.frame.round() as usize;
        // Masked, so that the next search finds another probe.
        let from = at.saturating_sub(template.len());
        let to = (at + 2 * template.len()).min(rest.len());
        rest[from..to].iter_mut().for_each(|s| *s = 0.0);
        let sent = a.frame0 + Duration::from_secs_f64((skip as f64 + found.frame) / rate);
        let b_from = sent
            .checked_sub(Duration::from_millis(300))
            .and_then(|t| t.checked_duration_since(b.frame0))
            .map(|d| (d.as_secs_f64() * rate) as usize)
            .unwrap_or(0)
            .min(b.samples.len());
        let b_to = (b_from + (1.3 * rate) as usize + template.len()).min(b.samples.len());
        let echo = latency::find_echo(&template, &b.samples[b_from..b_to])
            .map_err(|e| format!("probe {k} not in the microphone's monitor: {e}"))?;
        let heard = b.frame0 + Duration::from_secs_f64((b_from as f64 + echo.frame) / rate);
        delays.push(match heard.checked_duration_since(sent) {
            Some(d) => d.as_secs_f64() * 1e3,
            None => -(sent - heard).as_secs_f64() * 1e3,
        });
    }
    delays.sort_by(f64::total_cmp);
    Ok(delays)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Silence of `len` frames with the probe at each of `at` (frames).
    fn with_probes(rate: u32, len: usize, at: &[usize]) -> Vec<f32> {
        let probe = latency::probe(rate);
        let mut v = vec![0.0f32; len];
        for &a in at {
            v[a..a + probe.len()].copy_from_slice(&probe);
        }
        v
    }

    #[test]
    fn the_delays_between_two_recordings_are_found_per_probe_on_their_own_clocks() {
        let rate = 8_000;
        let start = Instant::now();
        // Probes 1.5 s apart after the burst; the second recording has each 120, 125, 130 ms
        // later in sound, and began 0.2 s after the first (its frame 0 is that much later).
        let sent = [8_000usize, 20_000, 32_000];
        let heard: Vec<usize> = sent
            .iter()
            .zip([0.120, 0.125, 0.130])
            .map(|(&s, d)| s + (d * f64::from(rate)) as usize - 1_600)
            .collect();
        let a = Recording {
            samples: with_probes(rate, 44_000, &sent),
            frame0: start,
            rate,
        };
        let b = Recording {
            samples: with_probes(rate, 44_000, &heard),
            frame0: start + Duration::from_millis(200),
            rate,
        };
        let delays = probe_delays_ms(&a, &b, 3).unwrap();
        for (got, want) in delays.iter().zip([120.0, 125.0, 130.0]) {
            assert!((got - want).abs() < 0.2, "{delays:?}");
        }
        // A microphone's recording without the probes says which probe it missed.
        let silent = Recording {
            samples: vec![0.0; 44_000],
            ..b
        };
        let err = probe_delays_ms(&a, &silent, 3).unwrap_err();
        assert!(err.contains("microphone's monitor"), "{err}");
    }
}

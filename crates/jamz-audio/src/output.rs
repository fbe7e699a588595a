//! Outputs: a cpal device (the default one or a named one), and the real-time-paced `null` and
//! `wav:` outputs that follow the same clock model (a thread stands in for the device callback;
//! its "playback instant" is the write instant).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use std::sync::mpsc;

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::{Deserialize, Serialize};

use crate::error::{AudioError, Result};
use crate::mixer::Mixer;
use crate::player::PlayerEvent;
use crate::shared::Shared;
use crate::spec::OutputSpec;
use crate::track::OUT_CHANNELS;

mod device;

/// Sample rate of the `null` and `wav:` outputs: 48 kHz, the rate of nearly every device and of
/// the PulseAudio null sink's clients in docs/architecture.md ("real-time audio without a sound card").
pub const PACED_RATE: u32 = 48_000;

/// Frames per paced "callback": 480 frames = 10 ms at 48 kHz, close to a real device's period
/// (cpal's ALSA path delivers 512-frame callbacks).
const PACED_PERIOD_FRAMES: u64 = 480;

/// How far ahead of its playback instant a paced period is rendered: one period, as a device
/// with a double buffer would ask for it.
const PACED_LEAD_PERIODS: u64 = 1;

/// The schedule written beside a `wav:PATH` output as `PATH.json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WavSchedule {
    /// Wall-clock time (Unix epoch, ns) at which frame 0 of the WAV file played.
    pub frame0_unix_ns: u128,
    pub sample_rate: u32,
    pub channels: u16,
}

impl WavSchedule {
    /// The sidecar path for a WAV output path: `PATH.json`.
    pub fn sidecar_path(wav: &Path) -> PathBuf {
        let mut s = wav.as_os_str().to_owned();
        s.push(".json");
        PathBuf::from(s)
    }

    /// Reads the sidecar of a WAV output.
    pub fn read(wav: &Path) -> Result<Self> {
        let p = Self::sidecar_path(wav);
        let err = |detail: String| AudioError::WavOutput {
            path: p.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&p).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

pub(crate) fn lock(m: &Mutex<Mixer>) -> MutexGuard<'_, Mixer> {
    // A panic while holding the lock cannot leave the mixer in a state worse than "mid-buffer";
    // keep playing rather than propagate the poison.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Room in an output thread's control queue. Stream errors beyond it are dropped (a backend in
/// trouble can report the same error thousands of times a second); 64 keeps the first ones.
const CTL_CAPACITY: usize = 64;

/// Messages to an output's thread.
pub(crate) enum Ctl {
    /// Stop the output (the player is dropped).
    Stop,
    /// The cpal stream of generation `.0` reported an error.
    StreamError(u64, cpal::Error),
}

/// A running output; stops (and finalises a WAV) when dropped.
pub(crate) struct OutputHandle {
    stop: mpsc::SyncSender<Ctl>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for OutputHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(Ctl::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the output named by `spec`; returns what the player shares with its mixer, and the
/// handle.
pub(crate) fn open(
    spec: &OutputSpec,
    events: Sender<PlayerEvent>,
) -> Result<(Arc<Shared>, OutputHandle)> {
    let (stop_tx, stop_rx) = mpsc::sync_channel::<Ctl>(CTL_CAPACITY);
    match spec {
        OutputSpec::Null | OutputSpec::Wav(_) => {
            let shared = Arc::new(Shared::new(PACED_RATE));
            // The paced thread is the mixer's only user: it owns it.
            let mixer = Mixer::new(PACED_RATE, shared.clone(), events);
            let sink = match spec {
                OutputSpec::Wav(path) => Some(WavSink::create(path)?),
                _ => None,
            };
            let sh = shared.clone();
            let thread = std::thread::Builder::new()
                .name("jamz-audio-paced".into())
                .spawn(move || paced_loop(mixer, &sh, sink, &stop_rx))
                .map_err(|e| AudioError::Device(format!("cannot start output thread: {e}")))?;
            Ok((
                shared,
                OutputHandle {
                    stop: stop_tx,
                    thread: Some(thread),
                },
            ))
        }
        OutputSpec::Default | OutputSpec::Device(_) => {
            let wanted = match spec {
                OutputSpec::Device(id) => device::Wanted::Device(id.clone()),
                _ => device::Wanted::Default,
            };
            let (shared, thread) = device::spawn(wanted, events, stop_tx.clone(), stop_rx)?;
            Ok((
                shared,
                OutputHandle {
                    stop: stop_tx,
                    thread: Some(thread),
                },
            ))
        }
    }
}

/// The float WAV written by `wav:PATH`, with its schedule sidecar.
struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    periods: u64,
}

/// Flush the WAV header every 50 periods (0.5 s) so a killed process leaves a readable file.
const WAV_FLUSH_PERIODS: u64 = 50;

impl WavSink {
    fn create(path: &Path) -> Result<Self> {
        let spec = hound::WavSpec {
            channels: OUT_CHANNELS as u16,
            sample_rate: PACED_RATE,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| AudioError::WavOutput {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(WavSink {
            path: path.to_owned(),
            writer,
            periods: 0,
        })
    }

    fn write_schedule(&self, frame0: Instant) -> Result<()> {
        let frame0_unix = crate::clock::unix_time_of(frame0);
        let sched = WavSchedule {
            frame0_unix_ns: frame0_unix.as_nanos(),
            sample_rate: PACED_RATE,
            channels: OUT_CHANNELS as u16,
        };
        let p = WavSchedule::sidecar_path(&self.path);
        let json = serde_json::to_string_pretty(&sched).map_err(|e| AudioError::WavOutput {
            path: p.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&p, json).map_err(|e| AudioError::WavOutput {
            path: p,
            detail: e.to_string(),
        })
    }

    fn write(&mut self, samples: &[f32]) -> std::result::Result<(), hound::Error> {
        for &s in samples {
            self.writer.write_sample(s)?;
        }
        self.periods += 1;
        if self.periods.is_multiple_of(WAV_FLUSH_PERIODS) {
            self.writer.flush()?;
        }
        Ok(())
    }
}

/// The `null`/`wav:` output: renders one period at a time, paced against `Instant`, each
/// period's playback instant being `t0 + frames_written / rate` exactly.
fn paced_loop(
    mut mixer: Mixer,
    shared: &Shared,
    mut sink: Option<WavSink>,
    stop: &mpsc::Receiver<Ctl>,
) {
    let rate = u64::from(PACED_RATE);
    let period = crate::clock::frames_to_duration(PACED_PERIOD_FRAMES, rate);
    // Frame 0 plays one lead after now, as a device's first buffer would.
    let t0 = Instant::now() + period * (PACED_LEAD_PERIODS as u32 + 1);
    if let Some(s) = &sink
        && let Err(e) = s.write_schedule(t0)
    {
        tracing::error!(error = %e, "wav output: cannot write schedule");
    }
    let mut buf = vec![0.0f32; PACED_PERIOD_FRAMES as usize * OUT_CHANNELS];
    let mut written: u64 = 0;
    loop {
        let playback = t0 + crate::clock::frames_to_duration(written, rate);
        let render_at = playback
            .checked_sub(period * PACED_LEAD_PERIODS as u32)
            .unwrap_or(playback);
        let now = Instant::now();
        if render_at > now {
            // Waiting on the stop channel doubles as the pacing sleep.
            match stop.recv_timeout(render_at - now) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match stop.try_recv() {
                Err(mpsc::TryRecvError::Empty) => {}
                Ok(_) | Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        let began = Instant::now();
        shared.set_device_latency(Some(period * PACED_LEAD_PERIODS as u32));
        mixer.render(&mut buf, playback);
        shared.record_callback(began.elapsed());
        if let Some(s) = sink.as_mut()
            && let Err(e) = s.write(&buf)
        {
            tracing::error!(error = %e, "wav output: write failed; stopping the output");
            break;
        }
        written += PACED_PERIOD_FRAMES;
    }
    if let Some(s) = sink
        && let Err(e) = s.writer.finalize()
    {
        tracing::error!(error = %e, "wav output: finalize failed");
    }
}

/// Used by the device output's monitor: an unbounded event channel is never full.
pub(crate) fn event_channel() -> (Sender<PlayerEvent>, Receiver<PlayerEvent>) {
    unbounded()
}

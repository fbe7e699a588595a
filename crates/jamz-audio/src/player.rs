//! The public face: a [`Player`] on one output, driven by the sync engine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::error::{AudioError, Result};
use crate::mixer::{Mixer, Scheduled};
use crate::output::{self, OutputHandle, lock};
use crate::spec::OutputSpec;
use crate::track::{Source, TrackStream};

/// The rate trim band: +-1000 ppm (+-0.1 %), the band of the sync design (docs/architecture.md:
/// "ratio within +-0.1 %"); Snapcast corrects within +-0.05 %. Past it, the engine seeks.
pub const MAX_RATE_TRIM_PPM: f64 = 1000.0;

/// Largest per-device latency offset accepted: 2 s, far above the 150-300 ms Bluetooth car
/// stereos add (docs/architecture.md, timing figures), and below anything that could only be a unit mistake.
pub const MAX_LATENCY_OFFSET: Duration = Duration::from_secs(2);

/// Largest volume gain: 1.0 is full scale (no amplification, so no clipping is introduced).
pub const MAX_VOLUME: f32 = 1.0;

/// A track and a position in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The caller's track id.
    pub track: String,
    /// Seconds from the track's start.
    pub seconds: f64,
}

/// What the player reports, on the channel from [`Player::events`].
#[derive(Debug, Clone, PartialEq)]
pub enum PlayerEvent {
    /// A track's first frame became audible at `at` (a scheduled start, or gapless).
    TrackStarted { track: String, at: Instant },
    /// A track played to its end (or to a decode error, reported just before).
    TrackEnded { track: String },
    /// The output device went away; playback continues when it comes back (a named device is
    /// tried first, then the default device), reported by `DeviceRestored`.
    DeviceLost { message: String },
    /// A device is open again. It plays nothing until the next [`Player::start`]: the
    /// caller, who knows where the group is, decides what plays and from when.
    DeviceRestored { device: String, sample_rate: u32 },
    /// The output stalled for `gap` while playing (see [`crate::STALL_GAP`]): audio was late
    /// by that much, and the device's latency figures may stay off until the next start. A
    /// caller that knows the group's timeline should start the track again on it.
    Stalled { gap: Duration },
    /// Something failed that the caller should hear about (decode error mid-track, ...).
    Error {
        track: Option<String>,
        message: String,
    },
}

/// Plays tracks on one output with a sample-accurate clock.
///
/// Every method is cheap except [`Player::start`], [`Player::seek`], [`Player::resume`] and
/// [`Player::enqueue_next`], which open and seek the file on the calling thread (never in the
/// audio callback). All take `&self`; a `Player` can be shared between threads.
pub struct Player {
    mixer: Arc<Mutex<Mixer>>,
    events: Receiver<crate::PlayerEvent>,
    spec: OutputSpec,
    paused: Mutex<Option<(Source, f64)>>,
    // Last: dropping the handle stops the output thread.
    _output: OutputHandle,
}

impl std::fmt::Debug for Player {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Player")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Player {
    /// Opens the output and starts its clock (silence until something is started).
    pub fn new(spec: &OutputSpec) -> Result<Self> {
        let (tx, rx) = output::event_channel();
        let (mixer, handle) = output::open(spec, tx)?;
        Ok(Player {
            mixer,
            events: rx,
            spec: spec.clone(),
            paused: Mutex::new(None),
            _output: handle,
        })
    }

    /// The event stream (track ended, device lost/restored, errors). Clones share one queue.
    pub fn events(&self) -> Receiver<PlayerEvent> {
        self.events.clone()
    }

    /// The output's sample rate (the device's, or 48 kHz for `null`/`wav:`).
    pub fn sample_rate(&self) -> u32 {
        lock(&self.mixer).out_rate
    }

    /// The output this player was opened on.
    pub fn spec(&self) -> &OutputSpec {
        &self.spec
    }

    /// Latency the device last reported (from its callback to the DAC), without the offset.
    pub fn device_latency(&self) -> Option<Duration> {
        lock(&self.mixer).device_latency
    }

    /// Plays `source` so that the frame at `at_position_s` is audible at `at_instant`
    /// (device latency and the latency offset included). If `at_instant` has already passed,
    /// playback starts at once from where the track is at that moment, so it stays in step.
    /// Replaces whatever is playing, with a 5 ms crossfade.
    pub fn start(&self, source: Source, at_position_s: f64, at_instant: Instant) -> Result<()> {
        if !at_position_s.is_finite() || at_position_s < 0.0 {
            return Err(AudioError::InvalidArgument(format!(
                "start position {at_position_s} s"
            )));
        }
        let (rate, trim, frontier) = {
            let m = lock(&self.mixer);
            (m.out_rate, m.trim_ppm, m.render_frontier())
        };
        // Late already (a late joiner, or a start for "now"): seek to where the track is at the
        // render frontier, plus a little for the time we take to open the file here.
        let (pos, when) = match frontier {
            Some(f) if f > at_instant => {
                let late = (f - at_instant).as_secs_f64() * (1.0 + trim * 1e-6);
                (at_position_s + late, f)
            }
            _ => (at_position_s, at_instant),
        };
        let stream = TrackStream::prepare(&source, pos, rate, trim)?;
        if let Ok(mut p) = self.paused.lock() {
            *p = None;
        }
        lock(&self.mixer).schedule(Scheduled {
            stream,
            at_instant: when,
            at_position_s: pos,
        });
        Ok(())
    }

    /// Seeks the current track: its frame at `position_s` becomes audible at `at_instant`.
    pub fn seek(&self, position_s: f64, at_instant: Instant) -> Result<()> {
        let src = lock(&self.mixer).current_source().cloned();
        let src = src
            .or_else(|| {
                self.paused
                    .lock()
                    .ok()
                    .and_then(|p| p.as_ref().map(|(s, _)| s.clone()))
            })
            .ok_or_else(|| AudioError::InvalidArgument("seek with nothing playing".into()))?;
        self.start(src, position_s, at_instant)
    }

    /// Pauses (5 ms fade-out). Returns where it paused: the track and its position.
    pub fn pause(&self) -> Option<Position> {
        let now = Instant::now();
        let mut m = lock(&self.mixer);
        let heard = m.audible_position(now);
        let (src, rendered_pos) = m.stop()?;
        drop(m);
        let pos = heard
            .filter(|h| h.track == src.id)
            .map(|h| h.seconds)
            .unwrap_or(rendered_pos);
        if let Ok(mut p) = self.paused.lock() {
            *p = Some((src.clone(), pos));
        }
        Some(Position {
            track: src.id,
            seconds: pos,
        })
    }

    /// Resumes a paused track from where it paused, audible at `at_instant`.
    pub fn resume(&self, at_instant: Instant) -> Result<()> {
        let (src, pos) = self
            .paused
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .ok_or_else(|| AudioError::InvalidArgument("resume with nothing paused".into()))?;
        self.start(src, pos, at_instant)
    }

    /// Stops playback (5 ms fade-out) and forgets the paused position and the queue.
    pub fn stop(&self) {
        let mut m = lock(&self.mixer);
        m.stop();
        let _ = m.take_next();
        if let Ok(mut p) = self.paused.lock() {
            *p = None;
        }
    }

    /// The track and position audible at `at_instant`, or `None` if nothing is (paused,
    /// silence, not started yet, device lost). Exact for instants already rendered (the last
    /// 2 s); for later instants it predicts from the current rate, or from a pending start.
    pub fn audible_position(&self, at_instant: Instant) -> Option<Position> {
        lock(&self.mixer).audible_position(at_instant)
    }

    /// Plays slightly faster (positive) or slower (negative), in parts per million, within
    /// +-[`MAX_RATE_TRIM_PPM`]. Takes effect within one resampler chunk (5 ms), with no seek.
    pub fn set_rate_trim(&self, ppm: f64) -> Result<()> {
        if !ppm.is_finite() || ppm.abs() > MAX_RATE_TRIM_PPM {
            return Err(AudioError::RateTrimOutOfRange {
                ppm,
                max: MAX_RATE_TRIM_PPM,
            });
        }
        lock(&self.mixer).set_trim(ppm);
        Ok(())
    }

    /// The rate trim in force, ppm.
    pub fn rate_trim(&self) -> f64 {
        lock(&self.mixer).trim_ppm
    }

    /// Sets the volume (0.0 silent .. 1.0 full), reached by a 20 ms ramp (no clicks).
    pub fn set_volume(&self, volume: f32) -> Result<()> {
        if !volume.is_finite() || !(0.0..=MAX_VOLUME).contains(&volume) {
            return Err(AudioError::InvalidArgument(format!("volume {volume}")));
        }
        lock(&self.mixer).set_volume(volume);
        Ok(())
    }

    /// Queues `source` to follow the current track with no gap (its first frame right after the
    /// current track's last). Replaces an earlier queued track.
    pub fn enqueue_next(&self, source: Source) -> Result<()> {
        let (rate, trim) = {
            let m = lock(&self.mixer);
            (m.out_rate, m.trim_ppm)
        };
        let stream = TrackStream::prepare(&source, 0.0, rate, trim)?;
        lock(&self.mixer).enqueue_next(stream);
        Ok(())
    }

    /// Extra latency of this device beyond what it reports (a Bluetooth car stereo adds
    /// 150-300 ms): scheduled starts are that much earlier, positions that much later.
    pub fn set_latency_offset(&self, offset: Duration) -> Result<()> {
        if offset > MAX_LATENCY_OFFSET {
            return Err(AudioError::InvalidArgument(format!(
                "latency offset {offset:?} above {MAX_LATENCY_OFFSET:?}"
            )));
        }
        lock(&self.mixer).set_latency_offset(offset);
        Ok(())
    }

    /// The latency offset in force.
    pub fn latency_offset(&self) -> Duration {
        lock(&self.mixer).latency_offset()
    }
}

// The node shares one player between tokio tasks: keep it Send + Sync.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Player>();
};

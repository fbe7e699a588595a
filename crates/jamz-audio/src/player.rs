//! The public face: a [`Player`] on one output, driven by the sync engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::error::{AudioError, Result};
use crate::mixer::Scheduled;
use crate::output::{self, OutputHandle};
use crate::ring;
use crate::shared::{CallbackStats, Cmd, Shared};
use crate::spec::OutputSpec;
use crate::stream::Wanted;
use crate::timeline::PendingStart;
use crate::track::Source;

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
/// [`Player::enqueue_next`], which open and seek the file and decode its first 170 ms on the
/// calling thread (a stream's, as long as its bytes take to come: a caller that must not wait
/// takes a [`StartTicket`] in order and opens on another thread with [`Player::start_with`]);
/// a decode thread of the track's own keeps 0.5 s decoded ahead of the audio
/// callback, which only copies (see the crate docs). No method takes a lock the audio
/// callback waits on. All take `&self`; a `Player` can be shared between threads.
pub struct Player {
    shared: Arc<Shared>,
    events: Receiver<crate::PlayerEvent>,
    spec: OutputSpec,
    control: Mutex<Control>,
    // Last: dropping the handle stops the output thread.
    _output: OutputHandle,
}

/// What the control side remembers of the commands it sent.
#[derive(Default)]
struct Control {
    /// Sequence number of the latest command sent.
    seq: u64,
    /// The latest start sent, with its sequence number: until the mixer has applied it,
    /// positions at and after its instant are answered from it.
    sent_start: Option<(u64, PendingStart)>,
    /// The track of the latest start, and the one queued to follow it.
    started: Option<Source>,
    queued: Option<Source>,
    paused: Option<(Source, f64)>,
    /// Counts the commands that supersede a start (a start's ticket, a pause, a stop).
    epoch: u64,
    /// The track of the latest ticket while it is being opened: cleared when a later command
    /// supersedes it, so a stream's read waiting for bytes gives up.
    opening: Option<Wanted>,
}

impl Control {
    /// A command that supersedes any start still opening its track.
    fn supersede(&mut self) {
        self.epoch += 1;
        if let Some(w) = self.opening.take() {
            w.store(false, Ordering::Relaxed);
        }
    }
}

/// A start's place among the player's commands, taken (cheaply, in the caller's order of
/// commands) before its track is opened by [`Player::start_with`], which may wait for a
/// stream's bytes on another thread. A later ticket, [`Player::pause`] or [`Player::stop`]
/// supersedes it: its open gives up waiting and the start does nothing
/// ([`AudioError::Superseded`]), so the player ends up doing the last thing asked whatever
/// order the opens finish in.
#[derive(Debug)]
pub struct StartTicket {
    epoch: u64,
    wanted: Wanted,
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
        let (shared, handle) = output::open(spec, tx)?;
        Ok(Player {
            shared,
            events: rx,
            spec: spec.clone(),
            control: Mutex::new(Control::default()),
            _output: handle,
        })
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        // Control is only ever updated field by field with plain values: a poisoned one is
        // still consistent enough to go on with.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `cmd` for the audio callback; returns its sequence number.
    fn send(&self, c: &mut Control, cmd: Cmd) -> Result<u64> {
        let seq = c.seq + 1;
        if !self.shared.send(seq, cmd) {
            return Err(AudioError::Busy);
        }
        c.seq = seq;
        Ok(seq)
    }

    /// The event stream (track ended, device lost/restored, errors). Clones share one queue.
    pub fn events(&self) -> Receiver<PlayerEvent> {
        self.events.clone()
    }

    /// The output's sample rate (the device's, or 48 kHz for `null`/`wav:`).
    pub fn sample_rate(&self) -> u32 {
        self.shared.out_rate()
    }

    /// The output this player was opened on.
    pub fn spec(&self) -> &OutputSpec {
        &self.spec
    }

    /// Latency the device last reported (from its callback to the DAC), without the offset.
    pub fn device_latency(&self) -> Option<Duration> {
        self.shared.device_latency()
    }

    /// Whether the output is past its start-up: its buffers have reached the device in real
    /// time, steadily, for a while. A new stream may be held back by the sound server for a
    /// second or two after its first buffers (ALSA -> PulseAudio does); a start in that
    /// window loses its beginning. The output runs (silence) from [`Player::new`], so a
    /// caller that opens it early and waits for this before the first start never hits it.
    pub fn is_warm(&self) -> bool {
        self.shared.is_warm()
    }

    /// Blocks until the output is warm ([`Player::is_warm`]) or `timeout` has passed;
    /// returns whether it is warm. The audio callback cannot signal through a lock (it never
    /// takes one), so this looks at its flag every few milliseconds.
    pub fn wait_warm(&self, timeout: Duration) -> bool {
        const LOOK_EVERY: Duration = Duration::from_millis(5);
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.is_warm() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(LOOK_EVERY.min(deadline - now));
        }
    }

    /// How the audio callback has done so far: callbacks, underruns (a track's decode thread
    /// fell behind), and the time each callback took.
    pub fn callback_stats(&self) -> CallbackStats {
        self.shared.callback_stats()
    }

    /// Plays `source` so that the frame at `at_position_s` is audible at `at_instant`
    /// (device latency and the latency offset included). If `at_instant` has already passed,
    /// playback starts at once from where the track is at that moment, so it stays in step.
    /// Replaces whatever is playing, with a 5 ms crossfade.
    pub fn start(&self, source: Source, at_position_s: f64, at_instant: Instant) -> Result<()> {
        self.start_with(self.ticket(), source, at_position_s, at_instant)
    }

    /// Takes the next start's place among the commands (see [`StartTicket`]); supersedes a
    /// start still opening its track.
    pub fn ticket(&self) -> StartTicket {
        let mut c = self.control();
        c.supersede();
        let wanted: Wanted = Arc::new(AtomicBool::new(true));
        c.opening = Some(wanted.clone());
        StartTicket {
            epoch: c.epoch,
            wanted,
        }
    }

    /// [`Player::start`] in the place of `ticket`: fails with [`AudioError::Superseded`],
    /// having changed nothing, if a later command came while the track was being opened
    /// (a stream's open then stops waiting for bytes).
    pub fn start_with(
        &self,
        ticket: StartTicket,
        source: Source,
        at_position_s: f64,
        at_instant: Instant,
    ) -> Result<()> {
        let superseded = |epoch: u64| self.control().epoch != epoch;
        if !at_position_s.is_finite() || at_position_s < 0.0 {
            return Err(AudioError::InvalidArgument(format!(
                "start position {at_position_s} s"
            )));
        }
        let rate = self.shared.out_rate();
        let trim = self.shared.trim.get();
        let frontier = self.shared.published().render_frontier();
        // Late already (a late joiner, or a start for "now"): seek to where the track is at the
        // render frontier; the mixer skips what opening the file here took on top.
        let (pos, when) = match frontier {
            Some(f) if f > at_instant => {
                let late = (f - at_instant).as_secs_f64() * (1.0 + trim * 1e-6);
                (at_position_s + late, f)
            }
            _ => (at_position_s, at_instant),
        };
        self.shared.drop_retired();
        let blocks = self.shared.ring_blocks();
        let opened = ring::open_wanted(&source, pos, rate, trim, blocks, ticket.wanted);
        let (reader, producer) = match opened {
            Err(_) if superseded(ticket.epoch) => return Err(AudioError::Superseded),
            r => r?,
        };
        let mut c = self.control();
        if c.epoch != ticket.epoch {
            return Err(AudioError::Superseded);
        }
        // The reader owns its flag from here: a later command goes to the mixer instead.
        c.opening = None;
        ring::spawn_decode_ahead(
            producer,
            self.shared.trim.clone(),
            self.shared.retired.clone(),
        )?;
        let pending = PendingStart {
            track: reader.id.clone(),
            at_instant: when,
            at_position_s: pos,
        };
        let seq = self.send(
            &mut c,
            Cmd::Schedule(Scheduled {
                reader,
                at_instant: when,
                at_position_s: pos,
            }),
        )?;
        c.sent_start = Some((seq, pending));
        c.started = Some(source);
        c.paused = None;
        Ok(())
    }

    /// Seeks the track last started (or the one playing, or the paused one): its frame at
    /// `position_s` becomes audible at `at_instant`.
    pub fn seek(&self, position_s: f64, at_instant: Instant) -> Result<()> {
        let src = {
            let c = self.control();
            let tl = self.shared.published();
            let unapplied = c.sent_start.as_ref().is_some_and(|(s, _)| *s > tl.applied);
            if unapplied || tl.pending.is_some() {
                c.started.clone()
            } else if let Some((id, _)) = &tl.current {
                [&c.started, &c.queued]
                    .into_iter()
                    .flatten()
                    .find(|s| *s.id == **id)
                    .cloned()
            } else {
                c.paused.as_ref().map(|(s, _)| s.clone())
            }
        };
        let src =
            src.ok_or_else(|| AudioError::InvalidArgument("seek with nothing playing".into()))?;
        self.start(src, position_s, at_instant)
    }

    /// Pauses (5 ms fade-out). Returns where it paused: the track and its position.
    pub fn pause(&self) -> Option<Position> {
        let heard = self.audible_position(Instant::now());
        let mut c = self.control();
        c.supersede();
        let current = self.shared.published().current.clone();
        if let Err(e) = self.send(&mut c, Cmd::Stop) {
            tracing::warn!(error = %e, "pause: the output takes no commands");
        }
        c.sent_start = None;
        let (id, rendered) = current?;
        let src = [&c.started, &c.queued]
            .into_iter()
            .flatten()
            .find(|s| *s.id == *id)
            .cloned()?;
        let pos = heard
            .filter(|h| h.track == src.id)
            .map(|h| h.seconds)
            .or(rendered)?;
        c.paused = Some((src.clone(), pos));
        Some(Position {
            track: src.id,
            seconds: pos,
        })
    }

    /// Resumes a paused track from where it paused, audible at `at_instant`.
    pub fn resume(&self, at_instant: Instant) -> Result<()> {
        let (src, pos) = self
            .control()
            .paused
            .clone()
            .ok_or_else(|| AudioError::InvalidArgument("resume with nothing paused".into()))?;
        self.start(src, pos, at_instant)
    }

    /// Stops playback (5 ms fade-out) and forgets the paused position and the queue.
    pub fn stop(&self) {
        let mut c = self.control();
        c.supersede();
        if let Err(e) = self.send(&mut c, Cmd::StopAll) {
            tracing::warn!(error = %e, "stop: the output takes no commands");
        }
        c.sent_start = None;
        c.queued = None;
        c.paused = None;
    }

    /// The track and position audible at `at_instant`, or `None` if nothing is (paused,
    /// silence, not started yet, device lost). Exact for instants already rendered (the last
    /// 2 s); for later instants it predicts from the current rate, or from a pending start.
    pub fn audible_position(&self, at_instant: Instant) -> Option<Position> {
        if self.shared.device_lost() {
            return None;
        }
        let trim = self.shared.trim.get();
        let sent = self.control().sent_start.clone();
        let tl = self.shared.published();
        if let Some((seq, p)) = sent
            && seq > tl.applied
            && let Some(pos) = p.position_at(at_instant, trim)
        {
            return Some(pos);
        }
        tl.audible_position(at_instant, trim)
    }

    /// Plays slightly faster (positive) or slower (negative), in parts per million, within
    /// +-[`MAX_RATE_TRIM_PPM`]. Applied to the audio decoded from now on, which is heard
    /// after what is decoded ahead (at most 0.5 s), with no seek; positions stay exact.
    pub fn set_rate_trim(&self, ppm: f64) -> Result<()> {
        if !ppm.is_finite() || ppm.abs() > MAX_RATE_TRIM_PPM {
            return Err(AudioError::RateTrimOutOfRange {
                ppm,
                max: MAX_RATE_TRIM_PPM,
            });
        }
        self.shared.trim.set(ppm);
        Ok(())
    }

    /// The rate trim in force, ppm.
    pub fn rate_trim(&self) -> f64 {
        self.shared.trim.get()
    }

    /// Sets the volume (0.0 silent .. 1.0 full), reached by a 20 ms ramp (no clicks).
    pub fn set_volume(&self, volume: f32) -> Result<()> {
        if !volume.is_finite() || !(0.0..=MAX_VOLUME).contains(&volume) {
            return Err(AudioError::InvalidArgument(format!("volume {volume}")));
        }
        self.shared.set_volume(volume);
        Ok(())
    }

    /// Queues `source` to follow the current track with no gap (its first frame right after the
    /// current track's last). Replaces an earlier queued track.
    pub fn enqueue_next(&self, source: Source) -> Result<()> {
        let rate = self.shared.out_rate();
        let trim = self.shared.trim.get();
        self.shared.drop_retired();
        let blocks = self.shared.ring_blocks();
        let (reader, producer) = ring::open(&source, 0.0, rate, trim, blocks)?;
        ring::spawn_decode_ahead(
            producer,
            self.shared.trim.clone(),
            self.shared.retired.clone(),
        )?;
        let mut c = self.control();
        self.send(&mut c, Cmd::Next(reader))?;
        c.queued = Some(source);
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
        self.shared.set_latency_offset(offset);
        Ok(())
    }

    /// The latency offset in force.
    pub fn latency_offset(&self) -> Duration {
        self.shared.latency_offset()
    }
}

// The node shares one player between tokio tasks: keep it Send + Sync.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Player>();
};

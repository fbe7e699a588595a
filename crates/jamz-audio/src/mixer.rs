//! The render core shared by every output: scheduled starts, gapless queue, volume and
//! de-click ramps, rate trim, and the history that maps output frames to track positions.
//!
//! It is sans-IO: an output (cpal callback, or a paced thread for `null`/`wav:`) calls
//! [`Mixer::render`] with a buffer and the instant its first frame reaches the listener's
//! device; everything else follows from frame counting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::clock::ClockAnchor;
use crate::player::{PlayerEvent, Position};
use crate::track::{OUT_CHANNELS, TrackStream};

/// Length of the de-click fades (start, stop, seek, pause): 5 ms. Below about 2 ms a cut still
/// clicks audibly; above about 10 ms the fade is heard as a fade. 5 ms is the usual choice in
/// DAWs for edit crossfades.
pub(crate) const DECLICK: Duration = Duration::from_millis(5);

/// Time for the volume to move across its whole range: 20 ms. Short enough to feel immediate,
/// long enough that a jump from 0 to 1 has no step (a step is what clicks).
pub(crate) const VOLUME_RAMP: Duration = Duration::from_millis(20);

/// Output history kept to answer `audible_position` for instants already rendered: 2 s is far
/// above any device latency (Bluetooth 150-300 ms plus the buffer).
const HISTORY: Duration = Duration::from_secs(2);

/// Two history segments play at the same rate if their seconds-per-frame differ by less than
/// this: a 0.001 ppm trim difference at 48 kHz is ~2e-14 s/frame, so 1e-15 only merges equal
/// rates (up to float rounding).
const SAME_RATE_EPSILON: f64 = 1e-15;

/// Two history segments are contiguous in the track if the second starts within 1 ns of where
/// the first ends: float rounding is far below, a real jump (one frame = 21 us) far above.
const CONTIGUOUS_EPSILON_S: f64 = 1e-9;

/// A stretch of output frames that played one track at one rate.
#[derive(Debug, Clone)]
struct Segment {
    start_frame: u64,
    frames: u64,
    track: Arc<str>,
    /// Track position of `start_frame`, seconds.
    position_s: f64,
    /// Track seconds per output frame.
    seconds_per_frame: f64,
}

/// A start waiting for its instant.
#[derive(Debug)]
pub(crate) struct Scheduled {
    pub stream: TrackStream,
    /// Audible instant of the stream's first frame.
    pub at_instant: Instant,
    /// Track position (seconds) the stream was prepared at.
    pub at_position_s: f64,
}

/// A jump in the playback timeline this large is a stall, not scheduling jitter (device
/// periods are 5-25 ms; a PulseAudio stream's timing estimate wobbles by a few ms).
pub const STALL_GAP: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Fading {
    stream: TrackStream,
    gain: f32,
}

#[derive(Debug)]
pub(crate) struct Mixer {
    pub out_rate: u32,
    /// Output frame index of the next frame to render.
    frames_rendered: u64,
    clock: Option<ClockAnchor>,
    latency_offset: Duration,
    current: Option<TrackStream>,
    /// Fade-in gain of the current track (0 -> 1 over DECLICK after a start).
    current_gain: f32,
    pending: Option<Scheduled>,
    next: Option<TrackStream>,
    fading: Vec<Fading>,
    volume_target: f32,
    volume: f32,
    pub trim_ppm: f64,
    history: VecDeque<Segment>,
    events: Sender<PlayerEvent>,
    scratch: Vec<f32>,
    /// Where the latest rendered buffer started (its first frame and playback instant); the
    /// next buffer is due `frames_rendered - frame` frames later. The same as `clock` except
    /// that `reset_rate` keeps it: the first buffer on a reopened device is still checked
    /// against the last one before the loss.
    last_buffer: Option<ClockAnchor>,
    /// Latency the device reported at the last callback (playback - callback timestamp).
    pub device_latency: Option<Duration>,
    /// Wall-clock instant of the latest render call (the output watchdog reads it).
    pub last_callback: Option<Instant>,
    /// Set while the output device is lost: nothing is audible, so no position is reported.
    pub device_lost: bool,
}

impl Mixer {
    pub fn new(out_rate: u32, events: Sender<PlayerEvent>) -> Self {
        Mixer {
            out_rate,
            frames_rendered: 0,
            clock: None,
            latency_offset: Duration::ZERO,
            current: None,
            current_gain: 1.0,
            pending: None,
            next: None,
            fading: Vec::new(),
            volume_target: 1.0,
            volume: 1.0,
            trim_ppm: 0.0,
            history: VecDeque::new(),
            events,
            scratch: Vec::new(),
            last_buffer: None,
            device_latency: None,
            last_callback: None,
            device_lost: false,
        }
    }

    /// Switches to another output rate: the history and clock of the old rate are dropped.
    pub fn reset_rate(&mut self, rate: u32) {
        self.out_rate = rate;
        self.history.clear();
        self.clock = None;
    }

    fn emit(&self, ev: PlayerEvent) {
        // The receiver may be gone (nobody listening); that is not an error for playback.
        let _ = self.events.send(ev);
    }

    pub fn set_latency_offset(&mut self, offset: Duration) {
        self.latency_offset = offset;
    }

    pub fn latency_offset(&self) -> Duration {
        self.latency_offset
    }

    /// Audible instant of output frame `frame`, if the clock is anchored.
    fn audible_instant(&self, frame: u64) -> Option<Instant> {
        self.clock
            .map(|c| c.instant_of(frame, self.out_rate) + self.latency_offset)
    }

    /// Audible instant of the next frame to render: anything scheduled before it is late.
    pub fn render_frontier(&self) -> Option<Instant> {
        self.audible_instant(self.frames_rendered)
    }

    pub fn schedule(&mut self, s: Scheduled) {
        self.pending = Some(s);
    }

    pub fn take_next(&mut self) -> Option<TrackStream> {
        self.next.take()
    }

    pub fn enqueue_next(&mut self, t: TrackStream) {
        self.next = Some(t);
    }

    pub fn set_volume(&mut self, v: f32) {
        self.volume_target = v;
    }

    pub fn set_trim(&mut self, ppm: f64) {
        self.trim_ppm = ppm;
        for t in [self.current.as_mut(), self.next.as_mut()]
            .into_iter()
            .flatten()
        {
            t.set_trim(ppm);
        }
        if let Some(p) = self.pending.as_mut() {
            p.stream.set_trim(ppm);
        }
    }

    /// Stops the current track with a fade; returns it (for its source and position).
    pub fn stop(&mut self) -> Option<(crate::Source, f64)> {
        self.pending = None;
        let cur = self.current.take()?;
        let info = (cur.source.clone(), cur.position_s());
        self.fading.push(Fading {
            stream: cur,
            gain: self.current_gain,
        });
        Some(info)
    }

    /// Everything that would have to be re-prepared for another output rate.
    pub fn take_streams(
        &mut self,
    ) -> (Option<TrackStream>, Option<Scheduled>, Option<TrackStream>) {
        self.fading.clear();
        (self.current.take(), self.pending.take(), self.next.take())
    }

    pub fn current_source(&self) -> Option<&crate::Source> {
        self.current
            .as_ref()
            .map(|t| &t.source)
            .or_else(|| self.pending.as_ref().map(|p| &p.stream.source))
    }

    /// Where the listener is at `at`: the track and its position, or `None` if nothing is
    /// audible then (silence, paused, or before any output).
    pub fn audible_position(&self, at: Instant) -> Option<Position> {
        if self.device_lost {
            return None;
        }
        // A pending start answers for instants at or after its schedule.
        if let Some(p) = &self.pending
            && at >= p.at_instant
        {
            let dt = (at - p.at_instant).as_secs_f64();
            return Some(Position {
                track: p.stream.id.to_string(),
                seconds: p.at_position_s + dt * (1.0 + self.trim_ppm * 1e-6),
            });
        }
        let frame_f = self.frame_of(at)?;
        if frame_f < 0.0 {
            return None;
        }
        let seg_at = |s: &Segment| Position {
            track: s.track.to_string(),
            seconds: s.position_s + (frame_f - s.start_frame as f64) * s.seconds_per_frame,
        };
        for s in self.history.iter().rev() {
            let end = (s.start_frame + s.frames) as f64;
            if frame_f >= s.start_frame as f64 && frame_f < end {
                return Some(seg_at(s));
            }
            if frame_f >= end {
                // Past the last rendered segment: predict if that track is still playing and
                // the segment reaches the render frontier.
                let still = s.start_frame + s.frames == self.frames_rendered
                    && self.current.as_ref().is_some_and(|c| c.id == s.track);
                return still.then(|| seg_at(s));
            }
        }
        None
    }

    fn push_history(&mut self, seg: Segment) {
        if seg.frames == 0 {
            return;
        }
        if let Some(last) = self.history.back_mut()
            && last.track == seg.track
            && last.start_frame + last.frames == seg.start_frame
            && (last.seconds_per_frame - seg.seconds_per_frame).abs() < SAME_RATE_EPSILON
        {
            let expected = last.position_s + last.frames as f64 * last.seconds_per_frame;
            if (expected - seg.position_s).abs() < CONTIGUOUS_EPSILON_S {
                last.frames += seg.frames;
                return;
            }
        }
        self.history.push_back(seg);
        let keep_from = self
            .frames_rendered
            .saturating_sub((HISTORY.as_secs_f64() * f64::from(self.out_rate)) as u64);
        while self
            .history
            .front()
            .is_some_and(|s| s.start_frame + s.frames < keep_from)
        {
            self.history.pop_front();
        }
    }

    /// Renders `out.len() / 2` stereo frames whose first frame reaches the device at
    /// `playback` (before the per-device latency offset).
    pub fn render(&mut self, out: &mut [f32], playback: Instant) {
        let frames = out.len() / OUT_CHANNELS;
        let anchor = ClockAnchor {
            frame: self.frames_rendered,
            instant: playback,
        };
        self.clock = Some(anchor);
        self.detect_stall(playback);
        self.last_buffer = Some(anchor);
        self.last_callback = Some(Instant::now());
        out.fill(0.0);
        let rate = f64::from(self.out_rate);
        let declick_step = 1.0 / (DECLICK.as_secs_f64() * rate).max(1.0) as f32;
        let vol_step = 1.0 / (VOLUME_RAMP.as_secs_f64() * rate).max(1.0) as f32;

        let mut i = 0;
        while i < frames {
            let frame = self.frames_rendered + i as u64;
            // 1. A scheduled start that is due at or before this frame.
            let mut block_end = frames;
            if let Some(p) = &self.pending {
                // The clock was anchored above.
                let due = self.frame_of(p.at_instant).unwrap_or(0.0);
                if due <= frame as f64 {
                    self.activate_pending(frame, due);
                    continue;
                }
                let rel = (due.ceil() as u64).saturating_sub(self.frames_rendered) as usize;
                block_end = block_end.min(rel.max(i + 1));
            }
            let n = block_end - i;
            let block = &mut out[i * OUT_CHANNELS..block_end * OUT_CHANNELS];
            // 2. The current track, continuing into the queued one at its end.
            let mut filled = 0;
            while filled < n {
                let Some(cur) = self.current.as_mut() else {
                    break;
                };
                let seg_start = frame + filled as u64;
                let pos = cur.position_s();
                let spf = cur.seconds_per_frame();
                let got = cur.pull(&mut block[filled * OUT_CHANNELS..]);
                let track = cur.id.clone();
                self.push_history(Segment {
                    start_frame: seg_start,
                    frames: got as u64,
                    track,
                    position_s: pos,
                    seconds_per_frame: spf,
                });
                // De-click fade-in.
                for f in 0..got {
                    if self.current_gain >= 1.0 {
                        break;
                    }
                    let k = (filled + f) * OUT_CHANNELS;
                    for c in 0..OUT_CHANNELS {
                        block[k + c] *= self.current_gain;
                    }
                    self.current_gain = (self.current_gain + declick_step).min(1.0);
                }
                filled += got;
                if filled < n {
                    self.end_current();
                }
            }
            // 3. Tracks fading out after a stop, seek or replacement.
            self.scratch.resize(n * OUT_CHANNELS, 0.0);
            for fade in &mut self.fading {
                let got = fade.stream.pull(&mut self.scratch[..n * OUT_CHANNELS]);
                for f in 0..got {
                    if fade.gain <= 0.0 {
                        break;
                    }
                    for c in 0..OUT_CHANNELS {
                        block[f * OUT_CHANNELS + c] +=
                            self.scratch[f * OUT_CHANNELS + c] * fade.gain;
                    }
                    fade.gain -= declick_step;
                }
                if got < n {
                    fade.gain = 0.0;
                }
            }
            self.fading.retain(|f| f.gain > 0.0);
            // 4. Volume, ramped.
            for f in 0..n {
                if self.volume != self.volume_target {
                    let d = self.volume_target - self.volume;
                    self.volume += d.clamp(-vol_step, vol_step);
                }
                if self.volume != 1.0 {
                    for c in 0..OUT_CHANNELS {
                        block[f * OUT_CHANNELS + c] *= self.volume;
                    }
                }
            }
            i = block_end;
        }
        self.frames_rendered += frames as u64;
    }

    /// Output frame (fractional) whose audible instant is `at`, if the clock is anchored.
    fn frame_of(&self, at: Instant) -> Option<f64> {
        let c = self.clock?;
        let base = c.instant + self.latency_offset;
        let rate = f64::from(self.out_rate);
        Some(if at >= base {
            c.frame as f64 + (at - base).as_secs_f64() * rate
        } else {
            c.frame as f64 - (base - at).as_secs_f64() * rate
        })
    }

    /// A buffer due much later than the previous one ended: the output stalled (an underrun,
    /// a sound server that held its stream back). Reported while something plays or is
    /// scheduled, so the caller can put the track back on the group's timeline: right after a
    /// stall the device's reported latency may be off for as long as the stream runs (seen on
    /// ALSA -> PulseAudio: 10-20 ms for a whole track after a stalled first start).
    fn detect_stall(&mut self, playback: Instant) {
        let Some(prev) = self.last_buffer else {
            return;
        };
        let expected = Duration::from_secs_f64(
            (self.frames_rendered - prev.frame) as f64 / f64::from(self.out_rate.max(1)),
        );
        let Some(gap) = playback
            .checked_duration_since(prev.instant)
            .and_then(|step| step.checked_sub(expected))
        else {
            return;
        };
        if gap >= STALL_GAP && (self.current.is_some() || self.pending.is_some()) {
            self.emit(PlayerEvent::Stalled { gap });
        }
    }

    /// Makes the pending start current at output frame `frame`; `due` is the (fractional) frame
    /// it was scheduled for. If late, the stream skips ahead so the group stays in step.
    fn activate_pending(&mut self, frame: u64, due: f64) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        let late = (frame as f64 - due).floor();
        if late >= 1.0 {
            tracing::debug!(track = %p.stream.id, late_frames = late, "late start: skipping ahead");
            p.stream.discard(late as usize);
        }
        if let Some(old) = self.current.take() {
            self.fading.push(Fading {
                stream: old,
                gain: self.current_gain,
            });
        }
        let at = self.audible_instant(frame).unwrap_or(p.at_instant);
        self.emit(PlayerEvent::TrackStarted {
            track: p.stream.id.to_string(),
            at,
        });
        self.current = Some(p.stream);
        self.current_gain = 0.0;
    }

    /// The current track ran out: report it and move to the queued one (gapless).
    fn end_current(&mut self) {
        let Some(mut cur) = self.current.take() else {
            return;
        };
        if let Some(e) = cur.error.take() {
            self.emit(PlayerEvent::Error {
                track: Some(cur.id.to_string()),
                message: e.to_string(),
            });
        }
        self.emit(PlayerEvent::TrackEnded {
            track: cur.id.to_string(),
        });
        if let Some(next) = self.next.take() {
            let at = self
                .audible_instant(self.frames_rendered)
                .unwrap_or_else(Instant::now);
            self.emit(PlayerEvent::TrackStarted {
                track: next.id.to_string(),
                at,
            });
            self.current = Some(next);
            // Gapless: no fade-in, the next track's first sample follows the last one.
            self.current_gain = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::track::Source;

    const RATE: u32 = 48_000;
    const PERIOD: usize = 480;

    /// A mixer with a 2 s tone scheduled at `t0`, and its event queue.
    fn playing_mixer(
        dir: &std::path::Path,
        t0: Instant,
    ) -> (Mixer, crossbeam_channel::Receiver<PlayerEvent>) {
        let path = dir.join("tone.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..RATE as usize * 2 {
            let v = ((i as f32 * 0.05).sin() * 8000.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(v).unwrap();
        }
        w.finalize().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut m = Mixer::new(RATE, tx);
        let stream = TrackStream::prepare(&Source::new("t", path), 0.0, RATE, 0.0).unwrap();
        m.schedule(Scheduled {
            stream,
            at_instant: t0,
            at_position_s: 0.0,
        });
        (m, rx)
    }

    fn period() -> Duration {
        Duration::from_secs_f64(PERIOD as f64 / f64::from(RATE))
    }

    #[test]
    fn a_jump_in_the_playback_timeline_is_reported_as_a_stall() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now() + Duration::from_secs(1);
        let (mut m, events) = playing_mixer(dir.path(), t0);
        let mut out = vec![0.0f32; PERIOD * OUT_CHANNELS];
        let mut at = t0;
        // Steady periods: no stall.
        for _ in 0..20 {
            m.render(&mut out, at);
            at += period();
        }
        assert!(
            !events
                .try_iter()
                .any(|e| matches!(e, PlayerEvent::Stalled { .. })),
            "a stall reported for steady periods"
        );
        // The next buffer is due 300 ms late: a stall of 300 ms.
        at += Duration::from_millis(300);
        m.render(&mut out, at);
        let gaps: Vec<Duration> = events
            .try_iter()
            .filter_map(|e| match e {
                PlayerEvent::Stalled { gap } => Some(gap),
                _ => None,
            })
            .collect();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(
            gaps[0].abs_diff(Duration::from_millis(300)) < Duration::from_millis(1),
            "{gaps:?}"
        );
        // Jitter below STALL_GAP is not a stall.
        at += period() + STALL_GAP / 2;
        m.render(&mut out, at);
        assert!(
            !events
                .try_iter()
                .any(|e| matches!(e, PlayerEvent::Stalled { .. }))
        );
    }

    #[test]
    fn an_idle_output_that_stalls_reports_nothing() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut m = Mixer::new(RATE, tx);
        let mut out = vec![0.0f32; PERIOD * OUT_CHANNELS];
        let t = Instant::now();
        m.render(&mut out, t);
        m.render(&mut out, t + Duration::from_secs(2));
        assert_eq!(rx.try_iter().count(), 0);
    }
}

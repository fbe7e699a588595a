//! The render core shared by every output: scheduled starts, gapless queue, volume and
//! de-click ramps, and the timeline that maps output frames to track positions.
//!
//! It is sans-IO: an output (cpal callback, or a paced thread for `null`/`wav:`) calls
//! [`Mixer::render`] with a buffer and the instant its first frame reaches the listener's
//! device; everything else follows from frame counting. It runs on the audio thread, so it
//! only copies decoded audio out of each track's ring ([`crate::ring`]), takes control calls
//! from a lock-free queue and reads settings from atomics ([`crate::shared`]): it never
//! decodes, resamples, allocates for audio, or waits on a lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::clock::ClockAnchor;
use crate::player::PlayerEvent;
use crate::ring::{Pulled, Reader};
use crate::shared::{Cmd, Shared};
use crate::timeline::{PendingStart, Segment, Timeline};
use crate::track::OUT_CHANNELS;
use crate::warmup::Warmup;

/// Length of the de-click fades (start, stop, seek, pause): 5 ms. Below about 2 ms a cut still
/// clicks audibly; above about 10 ms the fade is heard as a fade. 5 ms is the usual choice in
/// DAWs for edit crossfades.
pub(crate) const DECLICK: Duration = Duration::from_millis(5);

/// Time for the volume to move across its whole range: 20 ms. Short enough to feel immediate,
/// long enough that a jump from 0 to 1 has no step (a step is what clicks).
pub(crate) const VOLUME_RAMP: Duration = Duration::from_millis(20);

/// A start waiting for its instant.
#[derive(Debug)]
pub(crate) struct Scheduled {
    pub reader: Reader,
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
    reader: Reader,
    gain: f32,
}

pub(crate) struct Mixer {
    tl: Timeline,
    shared: Arc<Shared>,
    current: Option<Reader>,
    /// Fade-in gain of the current track (0 -> 1 over DECLICK after a start).
    current_gain: f32,
    /// The current track's `TrackStarted` is sent: at its first frame that plays, which a
    /// late start skipping ahead reaches only once its decode thread has caught up.
    announced: bool,
    pending: Option<Scheduled>,
    next: Option<Reader>,
    fading: Vec<Fading>,
    volume: f32,
    events: Sender<PlayerEvent>,
    scratch: Vec<f32>,
    /// Where the latest rendered buffer started (its first frame and playback instant); the
    /// next buffer is due `frames_rendered - frame` frames later. The same as the timeline's
    /// clock except that `reset_rate` keeps it: the first buffer on a reopened device is still
    /// checked against the last one before the loss.
    last_buffer: Option<ClockAnchor>,
    /// Whether the output is past its start-up yet (published in `Shared`).
    warmup: Warmup,
}

/// Room kept for tracks fading out at once (a few quick seeks in a row); more are dropped cut.
const MAX_FADING: usize = 8;

/// Largest buffer the scratch space is made for up front (frames): cpal periods here are
/// 512-1024 frames; a larger one grows it once.
const SCRATCH_FRAMES: usize = 8192;

impl Mixer {
    pub fn new(out_rate: u32, shared: Arc<Shared>, events: Sender<PlayerEvent>) -> Self {
        Mixer {
            tl: Timeline::new(out_rate),
            shared,
            current: None,
            current_gain: 1.0,
            announced: true,
            pending: None,
            next: None,
            fading: Vec::with_capacity(MAX_FADING),
            volume: 1.0,
            events,
            scratch: vec![0.0; SCRATCH_FRAMES * OUT_CHANNELS],
            last_buffer: None,
            warmup: Warmup::default(),
        }
    }

    /// Switches to another output rate: the history and clock of the old rate are dropped.
    pub fn reset_rate(&mut self, rate: u32) {
        self.tl.reset_rate(rate);
        self.shared.set_out_rate(rate);
        // A new stream has its own start-up to get through.
        self.warmup.reset();
        self.shared.set_warm(false);
        self.shared.publish(&self.tl);
    }

    fn emit(&self, ev: PlayerEvent) {
        // The receiver may be gone (nobody listening); that is not an error for playback.
        let _ = self.events.send(ev);
    }

    /// Hands a reader to the decode threads to drop (memory is not freed on the audio thread).
    fn retire(&self, r: Reader) {
        r.abandon();
        if let Err(r) = self.shared.retired.push(r) {
            drop(r);
        }
    }

    fn fade_out(&mut self, reader: Reader, gain: f32) {
        if self.fading.len() < MAX_FADING {
            self.fading.push(Fading { reader, gain });
        } else {
            self.retire(reader);
        }
    }

    /// Carries out the control calls queued since the last callback.
    pub fn apply_commands(&mut self) {
        while let Some((seq, cmd)) = self.shared.next_cmd() {
            self.tl.applied = seq;
            match cmd {
                Cmd::Schedule(s) => {
                    if let Some(old) = self.pending.replace(s) {
                        self.retire(old.reader);
                    }
                }
                Cmd::Next(r) => {
                    if let Some(old) = self.next.replace(r) {
                        self.retire(old);
                    }
                }
                Cmd::Stop => self.stop(),
                Cmd::StopAll => {
                    self.stop();
                    if let Some(old) = self.next.take() {
                        self.retire(old);
                    }
                }
            }
        }
    }

    /// Stops the current track with a fade and drops a pending start.
    fn stop(&mut self) {
        if let Some(p) = self.pending.take() {
            self.retire(p.reader);
        }
        if let Some(cur) = self.current.take() {
            self.fade_out(cur, self.current_gain);
        }
    }

    /// Drops everything playing or scheduled (the output is switching to another device).
    pub fn drop_streams(&mut self) {
        self.apply_commands();
        let readers: Vec<Reader> = self
            .fading
            .drain(..)
            .map(|f| f.reader)
            .chain(self.current.take())
            .chain(self.pending.take().map(|p| p.reader))
            .chain(self.next.take())
            .collect();
        for r in readers {
            self.retire(r);
        }
        self.publish();
    }

    /// Publishes the timeline for the control side.
    fn publish(&mut self) {
        self.tl.pending = self.pending.as_ref().map(|p| PendingStart {
            track: p.reader.id.clone(),
            at_instant: p.at_instant,
            at_position_s: p.at_position_s,
        });
        self.tl.current = self
            .current
            .as_ref()
            .map(|c| (c.id.clone(), c.position_s()));
        self.shared.publish(&self.tl);
    }

    /// Renders `out.len() / 2` stereo frames whose first frame reaches the device at
    /// `playback` (before the per-device latency offset).
    pub fn render(&mut self, out: &mut [f32], playback: Instant) {
        self.apply_commands();
        self.tl.latency_offset = self.shared.latency_offset();
        let volume_target = self.shared.volume();
        let frames = out.len() / OUT_CHANNELS;
        self.shared.record_period(frames);
        let anchor = ClockAnchor {
            frame: self.tl.frames_rendered,
            instant: playback,
        };
        self.tl.clock = Some(anchor);
        self.detect_stall(playback);
        self.last_buffer = Some(anchor);
        if !self.warmup.is_warm() && self.warmup.observe(Instant::now(), playback) {
            self.shared.set_warm(true);
        }
        self.shared.beat();
        out.fill(0.0);
        let rate = f64::from(self.tl.out_rate);
        let declick_step = 1.0 / (DECLICK.as_secs_f64() * rate).max(1.0) as f32;
        let vol_step = 1.0 / (VOLUME_RAMP.as_secs_f64() * rate).max(1.0) as f32;

        let mut underrun = 0u64;
        let mut i = 0;
        while i < frames {
            let frame = self.tl.frames_rendered + i as u64;
            // 1. A scheduled start that is due at or before this frame.
            let mut block_end = frames;
            if let Some(p) = &self.pending {
                // The clock was anchored above.
                let due = self.tl.frame_of(p.at_instant).unwrap_or(0.0);
                if due <= frame as f64 {
                    self.activate_pending(frame, due);
                    continue;
                }
                let rel = (due.ceil() as u64).saturating_sub(self.tl.frames_rendered) as usize;
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
                match cur.pull(&mut block[filled * OUT_CHANNELS..]) {
                    Pulled::Frames {
                        frames: got,
                        position_s,
                        seconds_per_frame,
                    } => {
                        let track = cur.id.clone();
                        if !self.announced {
                            self.announced = true;
                            let at = self
                                .tl
                                .audible_instant(frame + filled as u64)
                                .unwrap_or_else(Instant::now);
                            let _ = self.events.send(PlayerEvent::TrackStarted {
                                track: track.to_string(),
                                at,
                            });
                        }
                        self.tl.push_history(Segment {
                            start_frame: frame + filled as u64,
                            frames: got as u64,
                            track,
                            position_s,
                            seconds_per_frame,
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
                    }
                    Pulled::Underrun => {
                        // Silence for the rest of this stretch; the track skips as many frames
                        // when its audio arrives, so it stays on its timeline. Before its first
                        // frame, this is a late start catching up, not an underrun.
                        let missing = (n - filled) as u64;
                        cur.skip(missing);
                        if self.announced {
                            underrun += missing;
                        }
                        break;
                    }
                    Pulled::Ended => self.end_current(),
                }
            }
            // 3. Tracks fading out after a stop, seek or replacement.
            if self.scratch.len() < n * OUT_CHANNELS {
                self.scratch.resize(n * OUT_CHANNELS, 0.0);
            }
            for fade in &mut self.fading {
                let got = fade.reader.pull_all(&mut self.scratch[..n * OUT_CHANNELS]);
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
            let mut k = 0;
            while k < self.fading.len() {
                if self.fading[k].gain > 0.0 {
                    k += 1;
                } else {
                    let done = self.fading.swap_remove(k);
                    self.retire(done.reader);
                }
            }
            // 4. Volume, ramped.
            for f in 0..n {
                if self.volume != volume_target {
                    let d = volume_target - self.volume;
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
        self.tl.frames_rendered += frames as u64;
        if underrun > 0 {
            self.shared.record_underrun(underrun);
        }
        self.publish();
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
            (self.tl.frames_rendered - prev.frame) as f64 / f64::from(self.tl.out_rate.max(1)),
        );
        let Some(gap) = playback
            .checked_duration_since(prev.instant)
            .and_then(|step| step.checked_sub(expected))
        else {
            return;
        };
        if gap >= STALL_GAP && (self.current.is_some() || self.pending.is_some()) {
            self.shared.record_stall();
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
            tracing::debug!(track = %p.reader.id, late_frames = late, "late start: skipping ahead");
            p.reader.skip(late as u64);
        }
        if let Some(old) = self.current.take() {
            self.fade_out(old, self.current_gain);
        }
        self.current = Some(p.reader);
        self.current_gain = 0.0;
        self.announced = false;
    }

    /// The current track ran out: report it and move to the queued one (gapless).
    fn end_current(&mut self) {
        let Some(cur) = self.current.take() else {
            return;
        };
        if let Some(e) = cur.take_error() {
            self.emit(PlayerEvent::Error {
                track: Some(cur.id.to_string()),
                message: e.to_string(),
            });
        }
        self.emit(PlayerEvent::TrackEnded {
            track: cur.id.to_string(),
        });
        self.retire(cur);
        if let Some(next) = self.next.take() {
            let at = self
                .tl
                .audible_instant(self.tl.frames_rendered)
                .unwrap_or_else(Instant::now);
            self.emit(PlayerEvent::TrackStarted {
                track: next.id.to_string(),
                at,
            });
            self.current = Some(next);
            // Gapless: no fade-in, the next track's first sample follows the last one.
            self.current_gain = 1.0;
            self.announced = true;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ring::{self, Producer};
    use crate::track::Source;

    const RATE: u32 = 48_000;
    const PERIOD: usize = 480;

    /// A mixer with a 2 s tone scheduled at `t0`, the tone's decode side (filled by hand: no
    /// decode thread runs here), and the event queue.
    fn playing_mixer(
        dir: &std::path::Path,
        t0: Instant,
    ) -> (Mixer, Producer, crossbeam_channel::Receiver<PlayerEvent>) {
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
        let shared = Arc::new(Shared::new(RATE));
        let m = Mixer::new(RATE, shared.clone(), tx);
        let (reader, producer) = ring::open(
            &Source::new("t", path),
            0.0,
            RATE,
            0.0,
            ring::PREFILL_BLOCKS,
        )
        .unwrap();
        assert!(shared.send(
            1,
            Cmd::Schedule(Scheduled {
                reader,
                at_instant: t0,
                at_position_s: 0.0,
            })
        ));
        (m, producer, rx)
    }

    fn period() -> Duration {
        Duration::from_secs_f64(PERIOD as f64 / f64::from(RATE))
    }

    #[test]
    fn a_jump_in_the_playback_timeline_is_reported_as_a_stall() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now() + Duration::from_secs(1);
        let (mut m, mut producer, events) = playing_mixer(dir.path(), t0);
        let mut out = vec![0.0f32; PERIOD * OUT_CHANNELS];
        let mut at = t0;
        // Steady periods: no stall.
        for _ in 0..20 {
            producer.fill(0.0);
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
        let mut m = Mixer::new(RATE, Arc::new(Shared::new(RATE)), tx);
        let mut out = vec![0.0f32; PERIOD * OUT_CHANNELS];
        let t = Instant::now();
        m.render(&mut out, t);
        m.render(&mut out, t + Duration::from_secs(2));
        assert_eq!(rx.try_iter().count(), 0);
    }

    #[test]
    fn an_underrun_plays_silence_counts_it_and_keeps_the_track_on_its_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now() + Duration::from_secs(1);
        let (mut m, mut producer, _events) = playing_mixer(dir.path(), t0);
        let shared = m.shared.clone();
        let mut out = vec![0.0f32; PERIOD * OUT_CHANNELS];
        let mut at = t0;
        // The decode side is not refilled: the ring (PREFILL_BLOCKS blocks) runs dry.
        let ring_frames = ring::PREFILL_BLOCKS * ring::BLOCK_FRAMES;
        let periods = ring_frames / PERIOD + 3;
        let mut silent_tail = false;
        for _ in 0..periods {
            m.render(&mut out, at);
            silent_tail = out.iter().all(|s| *s == 0.0);
            at += period();
        }
        let stats = shared.callback_stats();
        let rendered = (periods * PERIOD) as u64;
        assert!(silent_tail, "the last period is silence");
        // The ring held up to PREFILL_BLOCKS blocks (the first one short: the resampler's delay was
        // dropped from it); everything after them was an underrun.
        let dry = rendered - ring_frames as u64;
        assert!(
            (dry..dry + ring::BLOCK_FRAMES as u64).contains(&stats.underrun_frames),
            "{stats:?}, {dry} frames expected at least"
        );
        assert!(stats.underruns >= 1, "{stats:?}");
        // The audio comes back: the track resumes where its timeline is, not where it stopped.
        producer.fill(0.0);
        let resumed_at = at;
        m.render(&mut out, at);
        assert!(out.iter().any(|s| *s != 0.0), "the track plays again");
        let heard = shared
            .published()
            .audible_position(resumed_at, 0.0)
            .unwrap();
        let want = (resumed_at - t0).as_secs_f64();
        assert!(
            (heard.seconds - want).abs() < 1e-6,
            "after the underrun the track is at {} s, its timeline at {want} s",
            heard.seconds
        );
    }
}

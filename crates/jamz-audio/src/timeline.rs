//! The playback timeline: which output frame reaches the listener when, and which track
//! position it played. The mixer keeps it; the player reads a copy the mixer publishes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::ClockAnchor;
use crate::player::Position;

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

/// Instants are whole nanoseconds: the instant given out for output frame F can map back to
/// F less up to 1 ns of frames (5e-5 frames at 48 kHz), which would fall before a segment
/// starting at F. Positions are looked up this much later (2 ns at 48 kHz: nothing audible).
const INSTANT_ROUNDING_FRAMES: f64 = 1e-4;

/// A stretch of output frames that played one track at one rate.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub start_frame: u64,
    pub frames: u64,
    pub track: Arc<str>,
    /// Track position of `start_frame`, seconds.
    pub position_s: f64,
    /// Track seconds per output frame.
    pub seconds_per_frame: f64,
}

/// A start waiting for its instant, as the timeline sees it.
#[derive(Debug, Clone)]
pub(crate) struct PendingStart {
    pub track: Arc<str>,
    /// Audible instant of the first frame.
    pub at_instant: Instant,
    /// Track position (seconds) of that frame.
    pub at_position_s: f64,
}

impl PendingStart {
    /// The position audible at `at` (at or after the start), playing at `trim_ppm`.
    pub fn position_at(&self, at: Instant, trim_ppm: f64) -> Option<Position> {
        let dt = at.checked_duration_since(self.at_instant)?.as_secs_f64();
        Some(Position {
            track: self.track.to_string(),
            seconds: self.at_position_s + dt * (1.0 + trim_ppm * 1e-6),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    pub out_rate: u32,
    /// Output frame index of the next frame to render.
    pub frames_rendered: u64,
    pub clock: Option<ClockAnchor>,
    pub latency_offset: Duration,
    history: VecDeque<Segment>,
    pub pending: Option<PendingStart>,
    /// The track playing, and the position of its next frame to render.
    pub current: Option<(Arc<str>, Option<f64>)>,
    /// Sequence number of the last control command the mixer applied.
    pub applied: u64,
}

impl Timeline {
    pub fn new(out_rate: u32) -> Self {
        Timeline {
            out_rate,
            ..Timeline::default()
        }
    }

    /// Switches to another output rate: the history and clock of the old rate are dropped.
    pub fn reset_rate(&mut self, rate: u32) {
        self.out_rate = rate;
        self.history.clear();
        self.clock = None;
    }

    /// Copies `other` into `self`, reusing `self`'s allocations.
    pub fn copy_from(&mut self, other: &Timeline) {
        self.out_rate = other.out_rate;
        self.frames_rendered = other.frames_rendered;
        self.clock = other.clock;
        self.latency_offset = other.latency_offset;
        self.history.clone_from(&other.history);
        self.pending.clone_from(&other.pending);
        self.current.clone_from(&other.current);
        self.applied = other.applied;
    }

    /// Audible instant of output frame `frame`, if the clock is anchored.
    pub fn audible_instant(&self, frame: u64) -> Option<Instant> {
        self.clock
            .map(|c| c.instant_of(frame, self.out_rate) + self.latency_offset)
    }

    /// Audible instant of the next frame to render: anything scheduled before it is late.
    pub fn render_frontier(&self) -> Option<Instant> {
        self.audible_instant(self.frames_rendered)
    }

    /// Output frame (fractional) whose audible instant is `at`, if the clock is anchored.
    pub fn frame_of(&self, at: Instant) -> Option<f64> {
        let c = self.clock?;
        let base = c.instant + self.latency_offset;
        let rate = f64::from(self.out_rate);
        Some(if at >= base {
            c.frame as f64 + (at - base).as_secs_f64() * rate
        } else {
            c.frame as f64 - (base - at).as_secs_f64() * rate
        })
    }

    /// Where the listener is at `at`: the track and its position, or `None` if nothing is
    /// audible then (silence, paused, or before any output).
    pub fn audible_position(&self, at: Instant, trim_ppm: f64) -> Option<Position> {
        // A pending start answers for instants at or after its schedule.
        if let Some(p) = self
            .pending
            .as_ref()
            .and_then(|p| p.position_at(at, trim_ppm))
        {
            return Some(p);
        }
        let frame_f = self.frame_of(at)? + INSTANT_ROUNDING_FRAMES;
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
                    && self.current.as_ref().is_some_and(|(c, _)| *c == s.track);
                return still.then(|| seg_at(s));
            }
        }
        None
    }

    pub fn push_history(&mut self, seg: Segment) {
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
}

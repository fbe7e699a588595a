//! A model of jamz-audio's `Player` on a device whose crystal runs at `1 + skew`: positions
//! advance at `(1 + skew) * (1 + trim)` against true time; a start lands exactly at the
//! device-local instant asked for, or, if that has passed, at once from where the track is by
//! then (as `Player::start` does).
//!
//! Its output can fail the way real ones do: a *stall* makes the audio late by the gap while
//! the player's figures do not show it (what it reports stays where it was: the device's
//! latency figures are off until the next start), a *lost* device plays and reports nothing,
//! and a device that comes back, like a newly chosen output, plays nothing until started.
use crate::api::{AudioCommand, Heard};

use super::clock::DeviceClock;

#[derive(Debug, Clone)]
struct Segment {
    track: String,
    duration: Option<f64>,
    /// Position (s) at true time `t0` (ms).
    pos0: f64,
    t0: f64,
    /// How much later than reported this segment is audible (ms): the stalls it went
    /// through.
    delay_ms: f64,
}

impl Segment {
    /// Position (s) at true time `t` by the player's figures, `None` outside the segment.
    fn at(&self, t: f64, rate: f64) -> Option<Heard> {
        if t < self.t0 {
            return None;
        }
        let position = self.pos0 + (t - self.t0) / 1000.0 * rate;
        if self.duration.is_some_and(|d| position >= d) {
            return None;
        }
        Some(Heard {
            track: self.track.clone(),
            position,
        })
    }

    fn advance_to(&mut self, now: f64, rate: f64) {
        if now > self.t0 {
            self.pos0 += (now - self.t0) / 1000.0 * rate;
            self.t0 = now;
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimPlayer {
    seg: Option<Segment>,
    /// What plays until a start scheduled ahead lands (as the real player keeps playing).
    prev: Option<Segment>,
    trim_ppm: f64,
    lost: bool,
}

impl SimPlayer {
    fn rate(&self, clock: &DeviceClock) -> f64 {
        (1.0 + clock.skew) * (1.0 + self.trim_ppm * 1e-6)
    }

    /// The segment audible (by the player's figures) at true time `t`.
    fn playing_at(&self, t: f64) -> Option<&Segment> {
        match (&self.seg, &self.prev) {
            (Some(s), Some(p)) if t < s.t0 => Some(p),
            (s, _) => s.as_ref(),
        }
    }

    /// What is audible at true time `t` (the truth, stalls included).
    pub fn heard(&self, t: f64, clock: &DeviceClock) -> Option<Heard> {
        if self.lost {
            return None;
        }
        let s = self.playing_at(t)?;
        s.at(t - s.delay_ms, self.rate(clock))
    }

    /// What the player says is audible at true time `t` (its figures miss the stalls).
    pub fn reported(&self, t: f64, clock: &DeviceClock) -> Option<Heard> {
        if self.lost {
            return None;
        }
        self.playing_at(t)?.at(t, self.rate(clock))
    }

    /// The output stalled for `gap_ms` at true time `now`: what plays is that much late
    /// from now on (a start still to come is placed by the figures of its own moment).
    pub fn stall(&mut self, gap_ms: f64, now: f64) {
        if self.lost {
            return;
        }
        let playing = match (&mut self.seg, &mut self.prev) {
            (Some(s), Some(p)) if now < s.t0 => Some(p),
            (s, _) => s.as_mut(),
        };
        if let Some(s) = playing {
            s.delay_ms += gap_ms;
        }
    }

    /// The device went away: silence, and nothing to report.
    pub fn lose(&mut self) {
        self.lost = true;
    }

    /// A device is open again (the same one come back, or another output chosen): it plays
    /// nothing until the next start.
    pub fn reopen(&mut self) {
        self.lost = false;
        self.seg = None;
        self.prev = None;
    }

    /// Applies a command at true time `now`. `QueryClock` is answered by the caller.
    pub fn apply(&mut self, cmd: &AudioCommand, now: f64, clock: &DeviceClock) {
        match cmd {
            AudioCommand::Start {
                track,
                position,
                at,
            } => {
                let at_true = clock.true_time(*at);
                let (pos0, t0) = if at_true >= now {
                    (*position, at_true)
                } else {
                    let late_local = clock.local(now) - *at;
                    (
                        *position + late_local / 1000.0 * (1.0 + self.trim_ppm * 1e-6),
                        now,
                    )
                };
                // The segment playing now goes on until the new one lands.
                let playing = self.playing_at(now).cloned();
                self.prev = playing.filter(|_| t0 > now);
                self.seg = Some(Segment {
                    track: track.id.clone(),
                    duration: track.duration,
                    pos0,
                    t0,
                    delay_ms: 0.0,
                });
            }
            AudioCommand::Pause | AudioCommand::Stop => {
                self.seg = None;
                self.prev = None;
            }
            AudioCommand::SetRateTrim { ppm } => {
                let rate_before = self.rate(clock);
                for s in [self.seg.as_mut(), self.prev.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    s.advance_to(now, rate_before);
                }
                self.trim_ppm = ppm.clamp(-1000.0, 1000.0);
            }
            AudioCommand::Preload(_) | AudioCommand::QueryClock => {}
        }
    }
}

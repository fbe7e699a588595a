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
}

#[derive(Debug, Clone, Default)]
pub struct SimPlayer {
    seg: Option<Segment>,
    trim_ppm: f64,
    /// How much later than reported the audio is (ms): the stalls since the last start.
    hidden_delay_ms: f64,
    lost: bool,
}

impl SimPlayer {
    fn rate(&self, clock: &DeviceClock) -> f64 {
        (1.0 + clock.skew) * (1.0 + self.trim_ppm * 1e-6)
    }

    /// What is audible at true time `t` (the truth, stalls included).
    pub fn heard(&self, t: f64, clock: &DeviceClock) -> Option<Heard> {
        self.reported(t - self.hidden_delay_ms, clock)
    }

    /// What the player says is audible at true time `t` (its figures miss the stalls).
    pub fn reported(&self, t: f64, clock: &DeviceClock) -> Option<Heard> {
        if self.lost {
            return None;
        }
        let s = self.seg.as_ref()?;
        if t < s.t0 {
            return None;
        }
        let position = s.pos0 + (t - s.t0) / 1000.0 * self.rate(clock);
        if s.duration.is_some_and(|d| position >= d) {
            return None;
        }
        Some(Heard {
            track: s.track.clone(),
            position,
        })
    }

    /// The output stalled for `gap_ms`: everything audible from now on is that much late.
    pub fn stall(&mut self, gap_ms: f64) {
        if self.seg.is_some() && !self.lost {
            self.hidden_delay_ms += gap_ms;
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
        self.hidden_delay_ms = 0.0;
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
                self.hidden_delay_ms = 0.0;
                self.seg = Some(Segment {
                    track: track.id.clone(),
                    duration: track.duration,
                    pos0,
                    t0,
                });
            }
            AudioCommand::Pause | AudioCommand::Stop => self.seg = None,
            AudioCommand::SetRateTrim { ppm } => {
                let rate_before = self.rate(clock);
                if let Some(s) = self.seg.as_mut()
                    && now > s.t0
                {
                    s.pos0 += (now - s.t0) / 1000.0 * rate_before;
                    s.t0 = now;
                }
                self.trim_ppm = ppm.clamp(-1000.0, 1000.0);
            }
            AudioCommand::Preload(_) | AudioCommand::QueryClock => {}
        }
    }
}

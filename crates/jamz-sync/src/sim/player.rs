//! A model of jamz-audio's `Player` on a device whose crystal runs at `1 + skew`: positions
//! advance at `(1 + skew) * (1 + trim)` against true time; a start lands exactly at the
//! device-local instant asked for, or, if that has passed, at once from where the track is by
//! then (as `Player::start` does).
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
}

impl SimPlayer {
    fn rate(&self, clock: &DeviceClock) -> f64 {
        (1.0 + clock.skew) * (1.0 + self.trim_ppm * 1e-6)
    }

    /// What is audible at true time `t`.
    pub fn heard(&self, t: f64, clock: &DeviceClock) -> Option<Heard> {
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

//! The playback clock: which instant an output frame reaches the device.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// "Output frame `frame` reaches the device at `instant`", from the latest device callback
/// (cpal's `OutputCallbackInfo::timestamp().playback`, or the write instant of a paced
/// `null`/`wav:` output). Later frames follow at the output rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockAnchor {
    pub frame: u64,
    pub instant: Instant,
}

impl ClockAnchor {
    /// Instant at which output frame `frame` reaches the device.
    pub fn instant_of(&self, frame: u64, rate: u32) -> Instant {
        let rate = u64::from(rate.max(1));
        if frame >= self.frame {
            self.instant + frames_to_duration(frame - self.frame, rate)
        } else {
            self.instant
                .checked_sub(frames_to_duration(self.frame - frame, rate))
                .unwrap_or(self.instant)
        }
    }
}

/// Exact duration of `frames` at `rate` (integer nanoseconds, no float drift).
pub fn frames_to_duration(frames: u64, rate: u64) -> Duration {
    let secs = frames / rate;
    let rem = frames % rate;
    Duration::new(
        secs,
        ((u128::from(rem) * 1_000_000_000) / u128::from(rate)) as u32,
    )
}

/// Unix time (since the epoch) of the monotonic instant `t`. The two clocks are read
/// back to back; a thread preempted between the reads would skew the pair by as long as
/// it waited, so the tightest of a few bracketed readings is used (tens of nanoseconds on
/// an idle machine, and still well under a microsecond on a loaded one).
pub fn unix_time_of(t: Instant) -> Duration {
    let mut best: Option<(Duration, Instant, Duration)> = None;
    for _ in 0..5 {
        let before = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let after = Instant::now();
        let width = after - before;
        if best.is_none_or(|(w, _, _)| width < w) {
            best = Some((width, before + width / 2, wall));
        }
    }
    let Some((_, mono, wall)) = best else {
        return Duration::ZERO;
    };
    if t >= mono {
        wall + (t - mono)
    } else {
        wall.saturating_sub(mono - t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_map_to_exact_instants_both_ways() {
        let t = Instant::now();
        let a = ClockAnchor {
            frame: 48_000,
            instant: t,
        };
        assert_eq!(a.instant_of(96_000, 48_000) - t, Duration::from_secs(1));
        assert_eq!(t - a.instant_of(24_000, 48_000), Duration::from_millis(500));
        assert_eq!(frames_to_duration(1, 48_000), Duration::from_nanos(20_833));
    }
}

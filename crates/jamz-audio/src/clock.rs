//! The playback clock: which instant an output frame reaches the device.

use std::time::{Duration, Instant};

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

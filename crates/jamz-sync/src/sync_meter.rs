//! The sync meter: how far what this device plays is from the group's timeline, in
//! milliseconds, for the faces (`status`, `playback`, the app's status bar).
//!
//! Each measurement is the playout error the engine already takes every
//! [`AUDIO_CLOCK_INTERVAL_MS`]: the player's audible position (which includes the output's
//! latency offset) against the position the group's timeline is due at that instant, the
//! instant carried to the server's clock by the clock estimate. One measurement is noisy
//! (the player's clock is refreshed every 100-250 ms), so the meter shows the median of the
//! last second's, and nothing once they are older than that: a paused or silent device has
//! no offset to show.
use std::collections::VecDeque;

use crate::api::LocalTime;
use crate::constants::{AUDIO_CLOCK_INTERVAL_MS, SHORT_WINDOW};

/// Measurements older than this (ms) no longer count: one second of them, as the
/// playout's short window.
pub const SYNC_METER_WINDOW_MS: f64 = SHORT_WINDOW as f64 * AUDIO_CLOCK_INTERVAL_MS;

/// Within this (ms) a device is "in sync": two cars' speakers 5 ms apart are one sound
/// to a listener who hears both through open windows (the Haas effect's fusion zone);
/// beyond it the faces say "off by".
pub const IN_SYNC_MS: f64 = 5.0;

/// What the meter shows now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyncReading {
    /// This device's offset to the group, ms; positive: it plays ahead.
    pub offset_ms: f64,
    /// Measurements the figure is the median of.
    pub samples: usize,
}

impl SyncReading {
    pub fn in_sync(&self) -> bool {
        is_in_sync(self.offset_ms)
    }
}

/// Whether an offset (ms) counts as in sync ([`IN_SYNC_MS`]).
pub fn is_in_sync(offset_ms: f64) -> bool {
    offset_ms.abs() <= IN_SYNC_MS
}

/// The last second of playout errors.
#[derive(Debug, Clone, Default)]
pub struct SyncMeter {
    recent: VecDeque<(LocalTime, f64)>,
}

impl SyncMeter {
    /// One measured error (ms, positive: ahead) at local instant `at`.
    pub fn observe(&mut self, at: LocalTime, error_ms: f64) {
        if !error_ms.is_finite() || !at.is_finite() {
            return;
        }
        self.recent.push_back((at, error_ms));
        while self.recent.len() > 4 * SHORT_WINDOW {
            self.recent.pop_front();
        }
    }

    /// A new start or a pause: what was measured before says nothing of what plays next.
    pub fn reset(&mut self) {
        self.recent.clear();
    }

    /// The median of the measurements of the last [`SYNC_METER_WINDOW_MS`] before `now`;
    /// `None` without any.
    pub fn reading(&self, now: LocalTime) -> Option<SyncReading> {
        let mut window: Vec<f64> = self
            .recent
            .iter()
            .filter(|(at, _)| *at <= now && now - at <= SYNC_METER_WINDOW_MS)
            .map(|(_, e)| *e)
            .collect();
        if window.is_empty() {
            return None;
        }
        window.sort_by(f64::total_cmp);
        let n = window.len();
        let offset_ms = if n % 2 == 1 {
            window[n / 2]
        } else {
            (window[n / 2 - 1] + window[n / 2]) / 2.0
        };
        Some(SyncReading {
            offset_ms,
            samples: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_median_of_the_last_second() {
        let mut m = SyncMeter::default();
        for (i, e) in [40.0, 1.0, 2.0, -80.0, 3.0, 2.5].into_iter().enumerate() {
            m.observe(1_000.0 + 200.0 * i as f64, e);
        }
        // At 2000 the first one (1000 ms old) still counts, the window is 6 long.
        let r = m.reading(2_000.0).unwrap();
        assert_eq!(r.samples, 6);
        assert_eq!(r.offset_ms, 2.25);
        assert!(r.in_sync());
        // 200 ms later the 40 ms outlier has left the window.
        let r = m.reading(2_200.0).unwrap();
        assert_eq!(r.samples, 5);
        assert_eq!(r.offset_ms, 2.0);
    }

    #[test]
    fn nothing_to_show_once_the_measurements_are_old_or_reset() {
        let mut m = SyncMeter::default();
        m.observe(0.0, 30.0);
        assert!(!m.reading(100.0).unwrap().in_sync());
        assert_eq!(m.reading(SYNC_METER_WINDOW_MS + 1.0), None);
        m.observe(5_000.0, 1.0);
        m.reset();
        assert_eq!(m.reading(5_000.0), None);
    }

    #[test]
    fn ignores_what_is_not_a_number() {
        let mut m = SyncMeter::default();
        m.observe(0.0, f64::NAN);
        m.observe(f64::INFINITY, 1.0);
        assert_eq!(m.reading(0.0), None);
    }

    #[test]
    fn in_sync_is_within_five_ms_either_way() {
        assert!(is_in_sync(-5.0) && is_in_sync(4.9));
        assert!(!is_in_sync(5.1) && !is_in_sync(-12.0));
    }
}

//! The node's local clock: wall-clock milliseconds at start plus monotonic time
//! since, so that it never jumps when the system clock is set, and the mapping
//! between it and `Instant` (what jamz-audio schedules on) is exact.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One (Instant, wall ms) origin pair; every conversion goes through it.
#[derive(Debug, Clone, Copy)]
pub struct LocalClock {
    origin: Instant,
    origin_ms: f64,
}

impl Default for LocalClock {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalClock {
    /// Pairs `Instant::now()` with the wall clock now.
    pub fn new() -> Self {
        let origin = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        LocalClock {
            origin,
            origin_ms: wall.as_secs_f64() * 1000.0,
        }
    }

    /// A clock with a given origin (tests).
    pub fn with_origin(origin: Instant, origin_ms: f64) -> Self {
        LocalClock { origin, origin_ms }
    }

    /// Local time now, ms since the Unix epoch (as the wall clock said at start).
    pub fn now_ms(&self) -> f64 {
        self.ms_at(Instant::now())
    }

    /// Local time of `instant`, ms.
    pub fn ms_at(&self, instant: Instant) -> f64 {
        if instant >= self.origin {
            self.origin_ms + (instant - self.origin).as_secs_f64() * 1000.0
        } else {
            self.origin_ms - (self.origin - instant).as_secs_f64() * 1000.0
        }
    }

    /// The `Instant` of local time `ms`; saturates at the origin for times before
    /// the process could represent, and at about a year ahead for absurd futures.
    pub fn instant_at(&self, ms: f64) -> Instant {
        const MAX_AHEAD: Duration = Duration::from_secs(365 * 24 * 3600);
        let delta_ms = ms - self.origin_ms;
        if !delta_ms.is_finite() {
            return self.origin;
        }
        let d = Duration::try_from_secs_f64(delta_ms.abs() / 1000.0).unwrap_or(MAX_AHEAD);
        if delta_ms >= 0.0 {
            self.origin
                .checked_add(d.min(MAX_AHEAD))
                .unwrap_or(self.origin)
        } else {
            self.origin.checked_sub(d).unwrap_or(self.origin)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_local_ms_map_both_ways() {
        let origin = Instant::now();
        let c = LocalClock::with_origin(origin, 1_000_000.0);
        let later = origin + Duration::from_millis(1500);
        assert!((c.ms_at(later) - 1_001_500.0).abs() < 1e-6);
        let back = c.instant_at(1_001_500.0);
        assert!(back.max(later) - back.min(later) < Duration::from_micros(1));
        assert_eq!(c.instant_at(f64::NAN), origin);
        assert!(c.instant_at(1e30) > origin);
        let _ = c.instant_at(-1e30);
    }
}

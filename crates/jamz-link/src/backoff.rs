//! Capped exponential backoff with jitter, on a seeded RNG so that tests can
//! replay a schedule.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// First delay after a lost connection. Socket.IO's client uses 1 s
/// (`reconnectionDelay`); we start lower because a road-trip link drops often and
/// briefly (tunnels, cell hand-overs) and the server is cheap to reach again.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(250);
/// Cap of the delay: Socket.IO's `reconnectionDelayMax` default (5 s).
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
/// Growth per attempt (Socket.IO: 2).
pub const DEFAULT_FACTOR: f64 = 2.0;
/// Each delay is drawn uniformly in `[d * (1 - j), d * (1 + j)]` and then capped
/// (Socket.IO's `randomizationFactor` default is 0.5), so that a car full of
/// devices does not reconnect in lock step after the server restarts.
pub const DEFAULT_JITTER: f64 = 0.5;

/// How reconnection delays grow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    /// In `[0, 1]`.
    pub jitter: f64,
    /// Stop trying after this many failed attempts in a row (`None`: never stop).
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial: DEFAULT_INITIAL_DELAY,
            max: DEFAULT_MAX_DELAY,
            factor: DEFAULT_FACTOR,
            jitter: DEFAULT_JITTER,
            max_attempts: None,
        }
    }
}

/// The delay schedule of one link.
#[derive(Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    rng: StdRng,
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Self {
            policy,
            rng: StdRng::seed_from_u64(seed),
            attempt: 0,
        }
    }

    /// Attempts made since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Forgets past failures (after a successful connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, or `None` when the policy gives up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if let Some(max) = self.policy.max_attempts
            && self.attempt >= max
        {
            return None;
        }
        let exp = self.attempt.min(63) as i32;
        self.attempt = self.attempt.saturating_add(1);
        let max = self.policy.max.as_secs_f64();
        let base =
            (self.policy.initial.as_secs_f64() * self.policy.factor.max(1.0).powi(exp)).min(max);
        let j = self.policy.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            self.rng.random_range((1.0 - j)..=(1.0 + j))
        } else {
            1.0
        };
        let secs = (base * factor).clamp(0.0, max);
        Some(Duration::try_from_secs_f64(secs).unwrap_or(self.policy.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_stays_within_jitter_bounds() {
        let policy = ReconnectPolicy::default();
        let mut b = Backoff::new(policy, 42);
        let mut prev_base = 0.0;
        for attempt in 0..20 {
            let d = b.next_delay().unwrap().as_secs_f64();
            let base = (0.25 * 2f64.powi(attempt)).min(5.0);
            assert!(
                d >= base * 0.5 - 1e-9 && d <= 5.0 + 1e-9,
                "attempt {attempt}: {d}"
            );
            assert!(base >= prev_base);
            prev_base = base;
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let p = ReconnectPolicy::default();
        let a: Vec<_> = {
            let mut b = Backoff::new(p, 7);
            (0..10).map(|_| b.next_delay()).collect()
        };
        let mut b = Backoff::new(p, 7);
        let c: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(a, c);
    }

    #[test]
    fn gives_up_after_max_attempts_and_reset_starts_over() {
        let p = ReconnectPolicy {
            max_attempts: Some(2),
            jitter: 0.0,
            ..Default::default()
        };
        let mut b = Backoff::new(p, 1);
        assert_eq!(b.next_delay(), Some(Duration::from_millis(250)));
        assert_eq!(b.next_delay(), Some(Duration::from_millis(500)));
        assert_eq!(b.next_delay(), None);
        b.reset();
        assert_eq!(b.next_delay(), Some(Duration::from_millis(250)));
    }
}

//! This device's playout loop: from (audible - due) errors to rate trims, and the decision to
//! restart the player when soft sync cannot catch up (Snapcast's discipline).
use std::collections::VecDeque;

use crate::api::LocalTime;
use crate::constants::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Nothing to change.
    Keep,
    /// Set the player's rate trim to this (ppm).
    Trim(f64),
    /// Restart the player at the due position.
    Hard,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Playout {
    short: VecDeque<f64>,
    long: VecDeque<f64>,
    integral_ppm: f64,
    trim_ppm: f64,
    last_report: Option<LocalTime>,
    last_forced: Option<LocalTime>,
    /// End of a late joiner's join phase (tighter restart limit).
    join_until: Option<LocalTime>,
}

impl Playout {
    /// A new start: the error history no longer applies (the trim and its integral do: they
    /// describe this device's clocks, not the track).
    pub fn reset(&mut self) {
        self.short.clear();
        self.long.clear();
        self.last_report = None;
    }

    pub fn trim_ppm(&self) -> f64 {
        self.trim_ppm
    }

    /// A late joiner started: tighter limits until `until`.
    pub fn begin_join_phase(&mut self, until: LocalTime) {
        self.join_until = Some(until);
    }

    fn joining(&self, now: LocalTime) -> bool {
        self.join_until.is_some_and(|t| now < t)
    }

    /// May the player be restarted now (not within the cooldown of the last restart)?
    pub fn may_force(&self, now: LocalTime) -> bool {
        let cooldown = if self.joining(now) {
            JOIN_RESYNC_COOLDOWN_MS
        } else {
            HARD_SYNC_COOLDOWN_MS
        };
        self.last_forced
            .is_none_or(|t| now - t >= cooldown || now < t)
    }

    pub fn forced(&mut self, now: LocalTime) {
        self.last_forced = Some(now);
        self.reset();
    }

    /// One measured error (ms, positive: ahead) at local instant `at`; `drift_ppm` is the
    /// server clock's rate against ours, which the trim must follow.
    pub fn observe(&mut self, at: LocalTime, error_ms: f64, drift_ppm: f64) -> Decision {
        if !error_ms.is_finite() {
            return Decision::Keep;
        }
        push(&mut self.short, error_ms, SHORT_WINDOW);
        push(&mut self.long, error_ms, LONG_WINDOW);
        let short = median(&self.short);
        let long = median(&self.long);
        let hard = error_ms.abs() > HARD_SYNC_IMMEDIATE_MS
            || (self.short.len() == SHORT_WINDOW && short.abs() > HARD_SYNC_SHORT_MS)
            || (self.long.len() == LONG_WINDOW && long.abs() > HARD_SYNC_LONG_MS)
            || (self.joining(at)
                && self.short.len() == SHORT_WINDOW
                && short.abs() > JOIN_HARD_SYNC_MS);
        if hard && self.may_force(at) {
            self.forced(at);
            return Decision::Hard;
        }
        let dt_s = self
            .last_report
            .map(|t| ((at - t) / 1000.0).clamp(0.0, 1.0))
            .unwrap_or(0.0);
        self.last_report = Some(at);
        let e = short;
        self.integral_ppm = (self.integral_ppm - RATE_TRIM_INTEGRAL_PPM_PER_MS_S * e * dt_s)
            .clamp(-MAX_INTEGRAL_PPM, MAX_INTEGRAL_PPM);
        let correction = if e.abs() < SOFT_SYNC_DEADBAND_MS {
            0.0
        } else {
            (-RATE_TRIM_GAIN_PPM_PER_MS * e).clamp(-MAX_CORRECTION_PPM, MAX_CORRECTION_PPM)
        };
        let drift = if drift_ppm.is_finite() {
            drift_ppm
        } else {
            0.0
        };
        let trim =
            (drift + self.integral_ppm + correction).clamp(-MAX_RATE_TRIM_PPM, MAX_RATE_TRIM_PPM);
        if (trim - self.trim_ppm).abs() >= RATE_TRIM_STEP_PPM {
            self.trim_ppm = trim;
            Decision::Trim(trim)
        } else {
            Decision::Keep
        }
    }
}

fn push(w: &mut VecDeque<f64>, v: f64, cap: usize) {
    w.push_back(v);
    while w.len() > cap {
        w.pop_front();
    }
}

fn median(w: &VecDeque<f64>) -> f64 {
    let mut v: Vec<f64> = w.iter().copied().collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_errors_trim_the_rate_towards_zero() {
        let mut p = Playout::default();
        let Decision::Trim(ppm) = p.observe(0.0, 2.0, 0.0) else {
            panic!("no trim")
        };
        assert!(ppm < 0.0, "ahead must slow down: {ppm}");
        assert!(ppm.abs() <= MAX_CORRECTION_PPM + MAX_INTEGRAL_PPM);
    }

    #[test]
    fn trim_follows_the_clock_drift_with_no_error() {
        let mut p = Playout::default();
        assert_eq!(p.observe(0.0, 0.0, 80.0), Decision::Trim(80.0));
    }

    #[test]
    fn a_huge_error_restarts_at_once_and_then_cools_down() {
        let mut p = Playout::default();
        assert_eq!(p.observe(0.0, 900.0, 0.0), Decision::Hard);
        assert_ne!(p.observe(100.0, 900.0, 0.0), Decision::Hard);
        assert_eq!(
            p.observe(HARD_SYNC_COOLDOWN_MS + 1.0, 900.0, 0.0),
            Decision::Hard
        );
    }

    #[test]
    fn a_sustained_moderate_error_restarts_after_the_short_window() {
        let mut p = Playout::default();
        let decisions: Vec<_> = (0..SHORT_WINDOW)
            .map(|i| p.observe(i as f64 * 200.0, 80.0, 0.0))
            .collect();
        assert_eq!(decisions.last(), Some(&Decision::Hard));
        assert!(
            decisions[..SHORT_WINDOW - 1]
                .iter()
                .all(|d| *d != Decision::Hard)
        );
    }
}

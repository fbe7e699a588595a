//! What is skipped, and the plausibility filter every source runs its fixes through.

use serde::Serialize;

use crate::fix::Fix;

/// No car moves faster than this, m/s (360 km/h): a fix that implies more is a
/// receiver glitch (multipath, a cold start's first guess) and is skipped.
pub const MAX_PLAUSIBLE_SPEED_MPS: f64 = 100.0;

/// After this many jumps in a row the filter takes the new place as the truth: the
/// fix it kept was the outlier (a bad first fix) or the receiver really moved while it
/// was off (a ferry, a tunnel with no dead reckoning), and rejecting forever is worse.
pub const JUMPS_BEFORE_RESET: u32 = 3;

/// Why a sentence, report or fix was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// An NMEA sentence whose checksum does not match.
    BadChecksum,
    /// A truncated or unparsable sentence, line or track point.
    Malformed,
    /// A gpsd report that is not JSON of the expected shape.
    BadReport,
    /// The receiver had no fix: no satellites, mode below 2D, status "void".
    NoFix,
    /// A fix with no usable time (GGA before any dated sentence, a GPX point without `<time>`).
    NoTime,
    /// Coordinates outside the WGS 84 ranges, or not finite.
    OutOfRange,
    /// A fix not newer than the last one kept.
    Stale,
    /// A fix implying a speed above [`MAX_PLAUSIBLE_SPEED_MPS`].
    Jump,
}

/// How many of each [`SkipReason`] a source has dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SkipCounts {
    pub bad_checksum: u64,
    pub malformed: u64,
    pub bad_report: u64,
    pub no_fix: u64,
    pub no_time: u64,
    pub out_of_range: u64,
    pub stale: u64,
    pub jump: u64,
}

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason) {
        let c = match reason {
            SkipReason::BadChecksum => &mut self.bad_checksum,
            SkipReason::Malformed => &mut self.malformed,
            SkipReason::BadReport => &mut self.bad_report,
            SkipReason::NoFix => &mut self.no_fix,
            SkipReason::NoTime => &mut self.no_time,
            SkipReason::OutOfRange => &mut self.out_of_range,
            SkipReason::Stale => &mut self.stale,
            SkipReason::Jump => &mut self.jump,
        };
        *c += 1;
    }

    pub fn get(&self, reason: SkipReason) -> u64 {
        match reason {
            SkipReason::BadChecksum => self.bad_checksum,
            SkipReason::Malformed => self.malformed,
            SkipReason::BadReport => self.bad_report,
            SkipReason::NoFix => self.no_fix,
            SkipReason::NoTime => self.no_time,
            SkipReason::OutOfRange => self.out_of_range,
            SkipReason::Stale => self.stale,
            SkipReason::Jump => self.jump,
        }
    }

    pub fn total(&self) -> u64 {
        self.bad_checksum
            + self.malformed
            + self.bad_report
            + self.no_fix
            + self.no_time
            + self.out_of_range
            + self.stale
            + self.jump
    }
}

/// Drops implausible fixes and tidies the optional fields of the rest. Sans-IO.
#[derive(Debug, Clone, Default)]
pub struct FixFilter {
    last: Option<Fix>,
    jumps_in_row: u32,
}

impl FixFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fix to pass on, or why it is dropped.
    pub fn check(&mut self, fix: Fix) -> Result<Fix, SkipReason> {
        if !fix.timestamp.is_finite() {
            return Err(SkipReason::NoTime);
        }
        if jamz_proto::model::validate_coordinates(fix.latitude, fix.longitude).is_err() {
            return Err(SkipReason::OutOfRange);
        }
        let fix = tidy(fix);
        if let Some(last) = &self.last {
            let dt_s = (fix.timestamp - last.timestamp) / 1000.0;
            if dt_s <= 0.0 {
                return Err(SkipReason::Stale);
            }
            if fix.distance_to(last) / dt_s > MAX_PLAUSIBLE_SPEED_MPS {
                self.jumps_in_row += 1;
                if self.jumps_in_row < JUMPS_BEFORE_RESET {
                    return Err(SkipReason::Jump);
                }
            }
        }
        self.jumps_in_row = 0;
        self.last = Some(fix);
        Ok(fix)
    }
}

/// Optional fields that are not finite or out of range say nothing: drop them.
fn tidy(mut fix: Fix) -> Fix {
    let keep = |v: Option<f64>, ok: fn(f64) -> bool| v.filter(|x| x.is_finite() && ok(*x));
    fix.accuracy = keep(fix.accuracy, |a| a >= 0.0);
    fix.speed = keep(fix.speed, |s| (0.0..=1000.0).contains(&s));
    fix.heading = keep(fix.heading, |_| true).map(|h| h.rem_euclid(360.0));
    fix.altitude = keep(fix.altitude, |a| a.abs() < 100_000.0);
    fix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::destination;

    fn at(m_east: f64, t_s: f64) -> Fix {
        let (lat, lon) = destination(48.0, 11.0, 90.0, m_east);
        Fix::at(lat, lon, t_s * 1000.0)
    }

    #[test]
    fn a_jump_is_skipped_and_the_track_goes_on() {
        let mut f = FixFilter::new();
        assert!(f.check(at(0.0, 0.0)).is_ok());
        assert!(f.check(at(30.0, 1.0)).is_ok());
        assert_eq!(f.check(at(5_000.0, 2.0)), Err(SkipReason::Jump));
        assert!(f.check(at(90.0, 3.0)).is_ok());
        assert_eq!(f.check(at(90.0, 3.0)), Err(SkipReason::Stale));
        assert_eq!(
            f.check(Fix::at(91.0, 0.0, 4000.0)),
            Err(SkipReason::OutOfRange)
        );
    }

    #[test]
    fn a_bad_first_fix_does_not_block_the_track_forever() {
        let mut f = FixFilter::new();
        assert!(f.check(at(50_000.0, 0.0)).is_ok());
        let results: Vec<_> = (1..=4)
            .map(|i| f.check(at(i as f64 * 20.0, i as f64)))
            .collect();
        assert_eq!(results[0], Err(SkipReason::Jump));
        assert_eq!(results[1], Err(SkipReason::Jump));
        assert!(results[2].is_ok(), "{results:?}");
        assert!(results[3].is_ok(), "{results:?}");
    }

    #[test]
    fn nonsense_optional_fields_are_dropped() {
        let mut fix = at(0.0, 0.0);
        fix.speed = Some(f64::NAN);
        fix.heading = Some(-90.0);
        fix.accuracy = Some(-1.0);
        let out = FixFilter::new().check(fix).unwrap();
        assert_eq!(out.speed, None);
        assert_eq!(out.heading, Some(270.0));
        assert_eq!(out.accuracy, None);
    }
}

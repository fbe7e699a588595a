//! What a microphone calibration of this device's output changes: the output latency
//! offset (how much earlier than its device reports the node plays, because the sound is
//! heard that much later: a Bluetooth car stereo's 40-300 ms). The measurement itself is
//! jamz-audio's; whether and how to apply it is decided here.

pub mod peer;
pub mod relative;

/// The offsets a node accepts (ms): jamz-audio's limit.
pub const MAX_LATENCY_OFFSET_MS: f64 = 2_000.0;

/// Below this confidence (0-1, jamz-audio's: the probes' clarity times the share that agree)
/// a measurement is not applied.
pub const MIN_CALIBRATION_CONFIDENCE: f64 = 0.5;

/// A result this much below zero (ms) is rounding and timing noise around "no extra delay"
/// and sets the offset to 0; further below, the device reports more latency than there is,
/// which an offset (which only plays earlier) cannot fix.
pub const NEGATIVE_TOLERANCE_MS: f64 = 5.0;

/// Why a measurement is not applied.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum NotApplied {
    #[error(
        "the measurement is not reliable enough (confidence {confidence:.2}, at least {MIN_CALIBRATION_CONFIDENCE} needed): try again somewhere quieter, with the volume up"
    )]
    Unreliable { confidence: f64 },
    #[error(
        "the output is heard {early_ms:.1} ms earlier than its device reports: a latency offset cannot correct that"
    )]
    Early { early_ms: f64 },
    #[error(
        "the output would need an offset of {offset_ms:.0} ms, over the limit of {MAX_LATENCY_OFFSET_MS} ms"
    )]
    TooLate { offset_ms: f64 },
    #[error("the measurement is not a number")]
    NotANumber,
    #[error(
        "the offset changed from {then_ms:.0} ms to {now_ms:.0} ms while it was measured: measure again"
    )]
    Changed { then_ms: f64, now_ms: f64 },
}

/// The latency offset (ms) after a calibration that found the probes heard `delay_ms` later
/// than the player reckoned while `current_ms` was in force, with `confidence`.
pub fn offset_after_calibration(
    current_ms: f64,
    delay_ms: f64,
    confidence: f64,
) -> Result<f64, NotApplied> {
    if !(current_ms.is_finite() && delay_ms.is_finite() && confidence.is_finite()) {
        return Err(NotApplied::NotANumber);
    }
    if confidence < MIN_CALIBRATION_CONFIDENCE {
        return Err(NotApplied::Unreliable { confidence });
    }
    let offset_ms = current_ms + delay_ms;
    if offset_ms < -NEGATIVE_TOLERANCE_MS {
        return Err(NotApplied::Early {
            early_ms: -offset_ms,
        });
    }
    if offset_ms > MAX_LATENCY_OFFSET_MS {
        return Err(NotApplied::TooLate { offset_ms });
    }
    Ok(offset_ms.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_delay_adds_to_the_offset_in_force() {
        assert_eq!(offset_after_calibration(0.0, 152.5, 0.9), Ok(152.5));
        // Already partly corrected: the probes were heard 30 ms late with 120 in force.
        assert_eq!(offset_after_calibration(120.0, 30.0, 0.9), Ok(150.0));
        // Over-corrected: heard early by 20 ms.
        assert_eq!(offset_after_calibration(170.0, -20.0, 0.9), Ok(150.0));
        // Noise around zero.
        assert_eq!(offset_after_calibration(0.0, -1.5, 0.9), Ok(0.0));
    }

    #[test]
    fn unreliable_early_or_huge_results_are_not_applied() {
        assert_eq!(
            offset_after_calibration(0.0, 150.0, 0.3),
            Err(NotApplied::Unreliable { confidence: 0.3 })
        );
        assert_eq!(
            offset_after_calibration(0.0, -40.0, 0.9),
            Err(NotApplied::Early { early_ms: 40.0 })
        );
        assert_eq!(
            offset_after_calibration(1_900.0, 300.0, 0.9),
            Err(NotApplied::TooLate { offset_ms: 2_200.0 })
        );
        assert_eq!(
            offset_after_calibration(0.0, f64::NAN, 0.9),
            Err(NotApplied::NotANumber)
        );
        assert!(
            NotApplied::Unreliable { confidence: 0.3 }
                .to_string()
                .contains("not reliable enough")
        );
    }
}

//! `jamz calibrate` and the app's "Calibrate this car's speakers" outside a session: open an
//! output, measure its latency with the microphone (jamz-audio), and decide the latency
//! offset from it (jamz-sync). In a session the node's `calibrate` command does the same on
//! the output in use.
use std::time::Duration;

use jamz_audio::{CalibrationOptions, OutputSpec, Player};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// A calibration's figures and the latency offset they call for.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibrated {
    /// How much later than the output reckoned (with `from_offset_ms` in force) the probes
    /// were heard, ms.
    pub delay_ms: f64,
    /// The agreeing probes' delays lie within this, ms.
    pub spread_ms: f64,
    /// 0 to 1.
    pub confidence: f64,
    pub probes: usize,
    pub agreeing: usize,
    /// The latency offset in force during the measurement, ms.
    pub from_offset_ms: f64,
    /// The latency offset to use from now on, ms.
    pub latency_offset_ms: f64,
}

/// Opens `spec`, sets `offset_ms` as its latency offset, plays `probes` probes (default 5)
/// while the default input records, and returns the figures with the offset to use. Blocks
/// for several seconds: call it off any async runtime's workers.
pub fn calibrate_output(
    spec: &OutputSpec,
    offset_ms: f64,
    probes: Option<usize>,
) -> Result<Calibrated, NodeError> {
    if matches!(spec, OutputSpec::Null | OutputSpec::Wav(_)) {
        return Err(NodeError::Calibration(format!(
            "output {spec} plays to no speaker: calibrate a device (`default` or `device:ID`)"
        )));
    }
    if !(offset_ms.is_finite()
        && (0.0..=jamz_sync::calibration::MAX_LATENCY_OFFSET_MS).contains(&offset_ms))
    {
        return Err(NodeError::Invalid(format!(
            "latency offset must be within 0..={} ms, got {offset_ms}",
            jamz_sync::calibration::MAX_LATENCY_OFFSET_MS
        )));
    }
    let player = Player::new(spec)?;
    player.set_latency_offset(Duration::from_secs_f64(offset_ms / 1000.0))?;
    let mut opts = CalibrationOptions::default();
    if let Some(n) = probes {
        opts.probes = n;
    }
    let r =
        jamz_audio::calibrate(&player, &opts).map_err(|e| NodeError::Calibration(e.to_string()))?;
    let latency_offset_ms =
        jamz_sync::calibration::offset_after_calibration(offset_ms, r.delay_ms, r.confidence)
            .map_err(|why| {
                NodeError::Calibration(format!(
                    "heard {:+.1} ms from the expected, not applied: {why}",
                    r.delay_ms
                ))
            })?;
    Ok(Calibrated {
        delay_ms: r.delay_ms,
        spread_ms: r.spread_ms,
        confidence: r.confidence,
        probes: r.probes,
        agreeing: r.agreeing,
        from_offset_ms: offset_ms,
        latency_offset_ms,
    })
}

//! Finding how late an output is heard, from a microphone's recording: the maths alone (no
//! device, no clock), so every rule is unit-tested on synthetic signals. `calibrate.rs` plays
//! and records; this module makes the probe and reads the recordings.
//!
//! The probe is a linear chirp (a sweep from [`CHIRP_LOW_HZ`] to [`CHIRP_HIGH_HZ`]): its
//! autocorrelation is one narrow peak, so a cross-correlation with the recording finds where it
//! was heard to well under a millisecond even through a small speaker, a car's cabin echoes
//! and road noise; and, unlike a maximum-length sequence, it stays inside the band that a
//! phone's microphone and a car's speakers both carry. The correlation runs through an FFT.
//!
//! Several probes are played; each gives an [`Echo`] (its delay and how clearly it was heard),
//! and [`summarize`] keeps the delay the probes agree on, with a confidence figure, or says why
//! there is none (the microphone hears silence, or not the probe, or the probes disagree).
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// The probe's lowest frequency (Hz): above the road's rumble and a phone speaker's low end.
pub const CHIRP_LOW_HZ: f64 = 300.0;
/// The probe's highest frequency (Hz): below what a phone's microphone or a Bluetooth codec
/// at its lowest quality still carries.
pub const CHIRP_HIGH_HZ: f64 = 6_000.0;
/// The probe's length (s): long enough to carry energy over noise, short enough that a
/// calibration of several probes takes a few seconds.
pub const PROBE_S: f64 = 0.25;
/// The probe's peak level (full scale 1.0): loud, with room for a resampler's overshoot.
pub const PROBE_LEVEL: f32 = 0.5;
/// Fade in and out of the probe (s), so it starts and ends without a click.
const FADE_S: f64 = 0.005;

/// A recording whose level stays below this (dBFS, RMS) is silence: no microphone, a muted
/// one, or one that hears nothing (a quiet room's microphone sits around -60 to -50 dBFS).
pub const SILENT_DBFS: f64 = -70.0;
/// A probe whose normalised correlation peak is below this was not heard clearly enough:
/// under it, noise or another sound explains most of the recording where the probe should
/// be.
pub const MIN_CONFIDENCE: f64 = 0.3;
/// Probes whose delays are within this (ms) of the median agree.
pub const AGREE_MS: f64 = 1.0;
/// At least this share of the probes must be heard and agree.
pub const MIN_AGREEING_SHARE: f64 = 0.6;

/// The probe at `rate` Hz: a linear sweep from [`CHIRP_LOW_HZ`] to [`CHIRP_HIGH_HZ`] over
/// [`PROBE_S`], at [`PROBE_LEVEL`], faded in and out.
pub fn probe(rate: u32) -> Vec<f32> {
    let rate = f64::from(rate.max(1));
    let n = (PROBE_S * rate).round() as usize;
    let sweep = (CHIRP_HIGH_HZ - CHIRP_LOW_HZ) / PROBE_S;
    let fade = FADE_S * rate;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let phase = 2.0 * std::f64::consts::PI * (CHIRP_LOW_HZ * t + 0.5 * sweep * t * t);
            let edge = (i as f64).min((n - 1 - i) as f64);
            let gain = if edge < fade {
                0.5 - 0.5 * (std::f64::consts::PI * edge / fade).cos()
            } else {
                1.0
            };
            (f64::from(PROBE_LEVEL) * gain * phase.sin()) as f32
        })
        .collect()
}

/// Where one probe was heard in a recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Echo {
    /// Where the probe starts in the recording, in frames (fractional: the peak is
    /// interpolated between frames).
    pub frame: f64,
    /// The normalised correlation at that place, 0 to 1: 1 when the recording there is the
    /// probe (at any level), lower as noise or other sounds take a larger share.
    pub confidence: f64,
}

/// Why a recording gives no delay.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// The microphone delivered (near) silence.
    #[error(
        "the microphone hears nothing usable (level {level_dbfs:.0} dBFS): is it muted, or is another input the default?"
    )]
    Silent { level_dbfs: f64 },
    /// Sound, but not the probe.
    #[error(
        "the microphone does not hear the probe clearly (confidence {confidence:.2}, at least {MIN_CONFIDENCE} needed): turn the volume up, bring the microphone closer, or make it quieter"
    )]
    NotHeard { confidence: f64 },
    /// The probes were heard, at delays too far apart to trust.
    #[error(
        "the probes were heard at delays {spread_ms:.1} ms apart ({agreeing} of {probes} agree): try again somewhere quieter"
    )]
    Inconsistent {
        spread_ms: f64,
        agreeing: usize,
        probes: usize,
    },
    /// Nothing to read (no probe or no recording).
    #[error("no recording to read")]
    Empty,
    /// Too few probes were in the recording at all (the input fell behind, a busy machine),
    /// while those that were there were heard clearly.
    #[error(
        "only {heard} of {probes} probes were in the recording (the microphone's input fell behind: the machine may be too busy); try again"
    )]
    Missed { heard: usize, probes: usize },
}

/// The recording's RMS level in dBFS (`-inf` for digital silence).
pub fn level_dbfs(recording: &[f32]) -> f64 {
    if recording.is_empty() {
        return f64::NEG_INFINITY;
    }
    let energy: f64 = recording.iter().map(|s| f64::from(*s).powi(2)).sum();
    10.0 * (energy / recording.len() as f64).log10()
}

/// Finds `probe` in `recording` (same rate): the place of the cross-correlation's highest
/// peak (either polarity: a speaker may be wired inverted), interpolated between frames, and
/// the normalised correlation there as the confidence.
pub fn find_echo(probe: &[f32], recording: &[f32]) -> Result<Echo, ProbeError> {
    if probe.is_empty() || recording.len() < probe.len() {
        return Err(ProbeError::Empty);
    }
    let level_dbfs = level_dbfs(recording);
    if level_dbfs.is_nan() || level_dbfs < SILENT_DBFS {
        return Err(ProbeError::Silent { level_dbfs });
    }
    let corr = correlate(probe, recording);
    let lags = recording.len() - probe.len() + 1;
    let Some(best) = (0..lags).max_by(|&a, &b| corr[a].abs().total_cmp(&corr[b].abs())) else {
        return Err(ProbeError::Empty);
    };
    let probe_energy: f64 = probe.iter().map(|s| f64::from(*s).powi(2)).sum();
    let window_energy: f64 = recording[best..best + probe.len()]
        .iter()
        .map(|s| f64::from(*s).powi(2))
        .sum();
    let norm = (probe_energy * window_energy).sqrt();
    let confidence = if norm > 0.0 {
        (corr[best].abs() / norm).min(1.0)
    } else {
        0.0
    };
    if confidence < MIN_CONFIDENCE {
        return Err(ProbeError::NotHeard { confidence });
    }
    // A parabola through the peak and its neighbours (same sign as the peak) places it
    // between frames.
    let offset = if best > 0 && best + 1 < lags {
        let sign = corr[best].signum();
        let (l, c, r) = (
            sign * corr[best - 1],
            sign * corr[best],
            sign * corr[best + 1],
        );
        let denom = l - 2.0 * c + r;
        if denom < 0.0 {
            (0.5 * (l - r) / denom).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    } else {
        0.0
    };
    Ok(Echo {
        frame: best as f64 + offset,
        confidence,
    })
}

/// `out[lag] = sum_i probe[i] * recording[lag + i]` for every lag where the probe fits in
/// the recording, through one FFT of the zero-padded pair.
fn correlate(probe: &[f32], recording: &[f32]) -> Vec<f64> {
    let n = (recording.len() + probe.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let inverse = planner.plan_fft_inverse(n);
    let spectrum = |signal: &[f32]| {
        let mut input = forward.make_input_vec();
        for (d, s) in input.iter_mut().zip(signal) {
            *d = f64::from(*s);
        }
        let mut out = forward.make_output_vec();
        // The lengths come from the same plan: processing cannot fail on them.
        let _ = forward.process(&mut input, &mut out);
        out
    };
    let rec = spectrum(recording);
    let pro = spectrum(probe);
    let mut product: Vec<Complex<f64>> = rec.iter().zip(&pro).map(|(r, p)| r * p.conj()).collect();
    // A real signal's spectrum has real first and last bins; rounding can leave a trace of
    // an imaginary part there, which the inverse transform refuses.
    if let Some(first) = product.first_mut() {
        first.im = 0.0;
    }
    if let Some(last) = product.last_mut() {
        last.im = 0.0;
    }
    let mut out = inverse.make_output_vec();
    let _ = inverse.process(&mut product, &mut out);
    let scale = 1.0 / n as f64;
    out.truncate(recording.len() - probe.len() + 1);
    out.iter_mut().for_each(|v| *v *= scale);
    out
}

/// One probe's delay (ms) and how it was heard, or why it gave none.
pub type ProbeReading = Result<(f64, Echo), ProbeError>;

/// What a calibration found: how much later than the output reckons the probes were heard.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationResult {
    /// The delay (ms): the median of the agreeing probes'.
    pub delay_ms: f64,
    /// The agreeing probes' delays lie within this (ms): max minus min.
    pub spread_ms: f64,
    /// 0 to 1: the agreeing probes' median clarity times the share of probes that agree.
    pub confidence: f64,
    /// Probes played.
    pub probes: usize,
    /// Probes heard and agreeing with the median.
    pub agreeing: usize,
}

/// The delay the probes agree on (each probe: its delay in ms, or why it gave none). At
/// least [`MIN_AGREEING_SHARE`] of them must be heard within [`AGREE_MS`] of the median;
/// otherwise the most telling failure: silence if the microphone heard silence for most,
/// the probe not heard, or the probes' disagreement.
pub fn summarize(probes: &[ProbeReading]) -> Result<CalibrationResult, ProbeError> {
    let n = probes.len();
    if n == 0 {
        return Err(ProbeError::Empty);
    }
    let needed = ((n as f64 * MIN_AGREEING_SHARE).ceil() as usize).max(1);
    let heard: Vec<(f64, Echo)> = probes
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .filter(|(d, _)| d.is_finite())
        .collect();
    if heard.len() < needed {
        let silent: Vec<f64> = probes
            .iter()
            .filter_map(|p| match p {
                Err(ProbeError::Silent { level_dbfs }) => Some(*level_dbfs),
                _ => None,
            })
            .collect();
        if silent.len() * 2 > n {
            let level_dbfs = silent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            return Err(ProbeError::Silent { level_dbfs });
        }
        // The clearest of the probes not heard clearly (each below the minimum): a heard
        // probe's clarity here would say "0.8, at least 0.3 needed".
        let unclear = probes.iter().filter_map(|p| match p {
            Err(ProbeError::NotHeard { confidence }) => Some(*confidence),
            _ => None,
        });
        return Err(match unclear.reduce(f64::max) {
            Some(confidence) => ProbeError::NotHeard { confidence },
            None => ProbeError::Missed {
                heard: heard.len(),
                probes: n,
            },
        });
    }
    let median_of = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let m = v.len();
        if m % 2 == 1 {
            v[m / 2]
        } else {
            (v[m / 2 - 1] + v[m / 2]) / 2.0
        }
    };
    let median = median_of(heard.iter().map(|(d, _)| *d).collect());
    let agreeing: Vec<(f64, Echo)> = heard
        .iter()
        .copied()
        .filter(|(d, _)| (d - median).abs() <= AGREE_MS)
        .collect();
    let delays: Vec<f64> = agreeing.iter().map(|(d, _)| *d).collect();
    let spread_of = |v: &[f64]| {
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - v.iter().copied().fold(f64::INFINITY, f64::min)
    };
    if agreeing.len() < needed {
        let all: Vec<f64> = heard.iter().map(|(d, _)| *d).collect();
        return Err(ProbeError::Inconsistent {
            spread_ms: spread_of(&all),
            agreeing: agreeing.len(),
            probes: n,
        });
    }
    let clarity = median_of(agreeing.iter().map(|(_, e)| e.confidence).collect());
    Ok(CalibrationResult {
        delay_ms: median_of(delays.clone()),
        spread_ms: spread_of(&delays),
        confidence: clarity * agreeing.len() as f64 / n as f64,
        probes: n,
        agreeing: agreeing.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a seeded generator for the tests' noise.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in [-1, 1).
        fn uniform(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        }
        /// About normal (sum of 4 uniforms), unit variance.
        fn gauss(&mut self) -> f64 {
            (0..4).map(|_| self.uniform()).sum::<f64>() * (3.0f64 / 4.0).sqrt()
        }
    }

    fn seed() -> u64 {
        std::env::var("JAMZ_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5EED_CA1B)
    }

    /// The probe `delay` frames (fractional: a band-limited shift) into a recording of
    /// `len` frames, at `gain`, with white noise of RMS `noise`, and a room's echo.
    fn recording(
        rate: u32,
        delay: f64,
        len: usize,
        gain: f64,
        noise: f64,
        rng: &mut Rng,
    ) -> Vec<f32> {
        let rate_f = f64::from(rate);
        let n = (PROBE_S * rate_f).round() as usize;
        let sweep = (CHIRP_HIGH_HZ - CHIRP_LOW_HZ) / PROBE_S;
        // The probe's formula evaluated at the shifted instants: an exact fractional delay.
        let at = |t: f64| {
            if !(0.0..(n as f64 - 1.0) / rate_f).contains(&t) {
                return 0.0;
            }
            let i = t * rate_f;
            let edge = i.min(n as f64 - 1.0 - i);
            let fade = FADE_S * rate_f;
            let g = if edge < fade {
                0.5 - 0.5 * (std::f64::consts::PI * edge / fade).cos()
            } else {
                1.0
            };
            let phase = 2.0 * std::f64::consts::PI * (CHIRP_LOW_HZ * t + 0.5 * sweep * t * t);
            f64::from(PROBE_LEVEL) * g * phase.sin()
        };
        (0..len)
            .map(|i| {
                let t = (i as f64 - delay) / rate_f;
                // Direct sound plus a weaker reflection 3.1 ms later (a car's cabin).
                let s = gain * (at(t) + 0.3 * at(t - 0.0031));
                (s + noise * rng.gauss()) as f32
            })
            .collect()
    }

    #[test]
    fn the_probe_is_a_faded_sweep_at_its_level() {
        let p = probe(48_000);
        assert_eq!(p.len(), 12_000);
        assert!(p[0].abs() < 1e-6 && p[p.len() - 1].abs() < 1e-3);
        let peak = p.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - PROBE_LEVEL).abs() < 0.01, "{peak}");
    }

    #[test]
    fn finds_a_delayed_noisy_probe_to_a_tenth_of_a_frame() {
        let seed = seed();
        let mut rng = Rng(seed);
        for rate in [44_100, 48_000, 50_000] {
            for _ in 0..6 {
                let delay = 100.0 + (rng.uniform() + 1.0) * 0.5 * f64::from(rate) * 0.8;
                let gain = 0.05 + 0.5 * (rng.uniform() + 1.0);
                // 20 dB under the probe's level at that gain.
                let noise = gain * f64::from(PROBE_LEVEL) * 0.07;
                let len = (f64::from(rate) * 1.3) as usize;
                let rec = recording(rate, delay, len, gain, noise, &mut rng);
                let echo = find_echo(&probe(rate), &rec)
                    .unwrap_or_else(|e| panic!("seed {seed}: rate {rate} delay {delay}: {e}"));
                assert!(
                    (echo.frame - delay).abs() < 0.1,
                    "seed {seed}: rate {rate}: found {} for {delay}",
                    echo.frame
                );
                assert!(
                    echo.confidence > 0.8 && echo.confidence <= 1.0,
                    "seed {seed}: confidence {}",
                    echo.confidence
                );
            }
        }
    }

    #[test]
    fn an_inverted_speaker_is_found_at_the_same_place() {
        let mut rng = Rng(seed());
        let rec: Vec<f32> = recording(48_000, 7_777.25, 30_000, 0.3, 0.0, &mut rng)
            .into_iter()
            .map(|s| -s)
            .collect();
        let echo = find_echo(&probe(48_000), &rec).unwrap();
        assert!((echo.frame - 7_777.25).abs() < 0.1, "{echo:?}");
    }

    #[test]
    fn silence_and_noise_without_the_probe_are_refused() {
        let seed = seed();
        let mut rng = Rng(seed);
        let p = probe(48_000);
        let silent = vec![0.0f32; 60_000];
        assert!(matches!(
            find_echo(&p, &silent),
            Err(ProbeError::Silent { .. })
        ));
        let hiss: Vec<f32> = (0..60_000).map(|_| (1e-5 * rng.gauss()) as f32).collect();
        assert!(
            matches!(find_echo(&p, &hiss), Err(ProbeError::Silent { level_dbfs }) if level_dbfs < -90.0),
            "seed {seed}"
        );
        let noise: Vec<f32> = (0..60_000).map(|_| (0.1 * rng.gauss()) as f32).collect();
        assert!(
            matches!(find_echo(&p, &noise), Err(ProbeError::NotHeard { confidence }) if confidence < MIN_CONFIDENCE),
            "seed {seed}: {:?}",
            find_echo(&p, &noise)
        );
        // The probe far under the noise: heard by nobody, refused rather than guessed.
        let buried = recording(48_000, 5_000.0, 60_000, 0.01, 0.2, &mut rng);
        assert!(
            matches!(find_echo(&p, &buried), Err(ProbeError::NotHeard { .. })),
            "seed {seed}"
        );
        assert_eq!(find_echo(&p, &p[..100]), Err(ProbeError::Empty));
    }

    fn heard(delay_ms: f64, confidence: f64) -> Result<(f64, Echo), ProbeError> {
        Ok((
            delay_ms,
            Echo {
                frame: 0.0,
                confidence,
            },
        ))
    }

    #[test]
    fn the_probes_agree_on_the_median_and_an_outlier_lowers_the_confidence() {
        let all = [
            heard(150.2, 0.9),
            heard(150.0, 0.95),
            heard(150.4, 0.9),
            heard(150.1, 0.92),
            heard(150.3, 0.91),
        ];
        let r = summarize(&all).unwrap();
        assert_eq!((r.probes, r.agreeing), (5, 5));
        assert!((r.delay_ms - 150.2).abs() < 1e-9, "{r:?}");
        assert!((r.spread_ms - 0.4).abs() < 1e-9, "{r:?}");
        assert!((r.confidence - 0.91).abs() < 1e-9, "{r:?}");
        let mut one_off = all;
        one_off[2] = heard(190.0, 0.5);
        let r = summarize(&one_off).unwrap();
        assert_eq!(r.agreeing, 4);
        assert!((r.delay_ms - 150.15).abs() < 1e-9, "{r:?}");
        assert!(r.confidence < 0.8, "{r:?}");
    }

    #[test]
    fn no_agreement_or_no_probe_heard_is_an_error_that_says_which() {
        let scattered = [
            heard(100.0, 0.9),
            heard(140.0, 0.9),
            heard(180.0, 0.9),
            heard(220.0, 0.9),
            heard(260.0, 0.9),
        ];
        assert!(matches!(
            summarize(&scattered),
            Err(ProbeError::Inconsistent {
                agreeing: 1,
                probes: 5,
                ..
            })
        ));
        let silent = [Err(ProbeError::Silent { level_dbfs: -120.0 }); 5];
        assert!(matches!(summarize(&silent), Err(ProbeError::Silent { .. })));
        let noisy = [
            Err(ProbeError::NotHeard { confidence: 0.1 }),
            Err(ProbeError::NotHeard { confidence: 0.2 }),
            heard(150.0, 0.4),
            Err(ProbeError::Silent { level_dbfs: -80.0 }),
            Err(ProbeError::NotHeard { confidence: 0.15 }),
        ];
        assert_eq!(
            summarize(&noisy),
            Err(ProbeError::NotHeard { confidence: 0.2 })
        );
        // Heard clearly, but most probes were not in the recording at all.
        let missed = [
            heard(150.0, 0.8),
            Err(ProbeError::Empty),
            heard(150.2, 0.8),
            Err(ProbeError::Empty),
            Err(ProbeError::Empty),
        ];
        assert_eq!(
            summarize(&missed),
            Err(ProbeError::Missed {
                heard: 2,
                probes: 5
            })
        );
        assert_eq!(summarize(&[]), Err(ProbeError::Empty));
        let msg = ProbeError::Silent { level_dbfs: -120.0 }.to_string();
        assert!(msg.contains("hears nothing usable"), "{msg}");
    }
}

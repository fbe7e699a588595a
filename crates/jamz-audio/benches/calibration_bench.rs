//! The calibration's maths on synthetic recordings: how far from the true delay each probe
//! is found, and how long reading one probe takes, at three noise levels. The end-to-end
//! figures on a real (PulseAudio) output are printed by `tests/calibrate_pulse.rs`.
//!
//! `cargo bench -p jamz-audio --bench calibration_bench` (`JAMZ_BENCH_SEED` to replay).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jamz_audio::latency::{self, PROBE_S};

const RATE: u32 = 48_000;
const TRIALS: usize = 40;

/// splitmix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        (0..4).map(|_| 2.0 * self.unit() - 1.0).sum::<f64>() * (3.0f64 / 4.0).sqrt()
    }
}

fn main() {
    let seed = std::env::var("JAMZ_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xB3_4C11);
    println!("calibration maths, {RATE} Hz, {TRIALS} probes per line, seed {seed}");
    let mut rng = Rng(seed);
    let probe = latency::probe(RATE);
    // The window one probe is looked for in: 300 ms early to 900 ms late.
    let window = ((0.3 + 0.9 + PROBE_S) * f64::from(RATE)) as usize;
    for (label, snr_db) in [("quiet car", 30.0), ("road noise", 10.0), ("loud", 0.0)] {
        let mut errors_us = Vec::new();
        let mut took = Duration::ZERO;
        let mut missed = 0;
        for _ in 0..TRIALS {
            let delay = 0.3 * f64::from(RATE) + rng.unit() * 0.9 * f64::from(RATE);
            let whole = delay.floor() as usize;
            let gain = 0.05 + 0.4 * rng.unit();
            let noise =
                gain * f64::from(latency::PROBE_LEVEL) / 2f64.sqrt() * 10f64.powf(-snr_db / 20.0);
            // An integer delay plus a room's reflection; noise everywhere.
            let mut rec: Vec<f32> = (0..window).map(|_| (noise * rng.gauss()) as f32).collect();
            for (i, s) in probe.iter().enumerate() {
                if let Some(r) = rec.get_mut(whole + i) {
                    *r += (gain * f64::from(*s)) as f32;
                }
                if let Some(r) = rec.get_mut(whole + i + 149) {
                    *r += (0.3 * gain * f64::from(*s)) as f32;
                }
            }
            let started = Instant::now();
            let found = latency::find_echo(&probe, &rec);
            took += started.elapsed();
            match found {
                Ok(e) => errors_us.push((e.frame - whole as f64).abs() / f64::from(RATE) * 1e6),
                Err(_) => missed += 1,
            }
        }
        errors_us.sort_by(f64::total_cmp);
        let median = errors_us
            .get(errors_us.len() / 2)
            .copied()
            .unwrap_or(f64::NAN);
        let max = errors_us.last().copied().unwrap_or(f64::NAN);
        println!(
            "{label:>10} (SNR {snr_db:>4.0} dB): error median {median:.1} us, max {max:.1} us; {missed} of {TRIALS} not heard; {:.2} ms per probe",
            took.as_secs_f64() * 1e3 / TRIALS as f64
        );
    }
}

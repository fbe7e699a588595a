//! Test audio made at test time (in code, or encoded with ffmpeg/sox into a temp dir).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use jamz_audio::PlayerEvent;

pub mod child;
pub mod load;
pub mod pulse;

/// Sample rate of generated test audio: 44.1 kHz, so that playback at 48 kHz exercises the
/// resampler the way real music files do.
pub const RATE: u32 = 44_100;

/// A small seeded generator (xorshift64*): tests print the seed, and the same seed gives the
/// same signal everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Music-like stereo test signal: two sines per channel plus a little seeded noise, at -10 dBFS.
pub fn music(frames: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(frames * 2);
    for i in 0..frames {
        let t = i as f32 / RATE as f32;
        let l = 0.2 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
            + 0.1 * (2.0 * std::f32::consts::PI * 1234.5 * t).sin()
            + 0.01 * rng.unit();
        let r = 0.2 * (2.0 * std::f32::consts::PI * 660.0 * t).sin()
            + 0.1 * (2.0 * std::f32::consts::PI * 97.0 * t).sin()
            + 0.01 * rng.unit();
        v.extend_from_slice(&[l, r]);
    }
    v
}

/// A stereo sine of `frames` frames at `RATE`: `freq` Hz, peak `amplitude`, both channels alike.
pub fn sine(frames: usize, freq: f32, amplitude: f32) -> Vec<f32> {
    (0..frames)
        .flat_map(|i| {
            let s = amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / RATE as f32).sin();
            [s, s]
        })
        .collect()
}

/// Silence with a one-sample click (0.9 full scale, both channels) at each frame in `clicks`.
pub fn clicks(frames: usize, clicks: &[usize]) -> Vec<f32> {
    let mut v = vec![0.0f32; frames * 2];
    for &c in clicks {
        v[c * 2] = 0.9;
        v[c * 2 + 1] = 0.9;
    }
    v
}

/// Writes interleaved stereo samples as a 16-bit WAV at `RATE`.
pub fn write_wav16(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// The formats we encode test files into, with the ffmpeg arguments that make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Wav,
    Flac,
    Mp3,
    M4a,
    Ogg,
}

impl Fmt {
    pub const ALL: [Fmt; 5] = [Fmt::Wav, Fmt::Flac, Fmt::Mp3, Fmt::M4a, Fmt::Ogg];
    pub fn ext(self) -> &'static str {
        match self {
            Fmt::Wav => "wav",
            Fmt::Flac => "flac",
            Fmt::Mp3 => "mp3",
            Fmt::M4a => "m4a",
            Fmt::Ogg => "ogg",
        }
    }
    pub fn lossy(self) -> bool {
        matches!(self, Fmt::Mp3 | Fmt::M4a | Fmt::Ogg)
    }
    fn codec_args(self) -> &'static [&'static str] {
        match self {
            Fmt::Wav => &["-c:a", "pcm_s16le"],
            Fmt::Flac => &["-c:a", "flac"],
            Fmt::Mp3 => &["-c:a", "libmp3lame", "-b:a", "192k"],
            Fmt::M4a => &["-c:a", "aac", "-b:a", "192k"],
            Fmt::Ogg => &["-c:a", "libvorbis", "-q:a", "6"],
        }
    }
}

/// Encodes a WAV into `fmt` with ffmpeg (extra args such as metadata go before the output).
pub fn encode(wav: &Path, fmt: Fmt, out: &Path, extra: &[&str]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(wav)
        .args(fmt.codec_args())
        .args(extra)
        .arg(out);
    let st = cmd
        .status()
        .expect("ffmpeg runs (scripts/apt/audio.txt installs it)");
    assert!(st.success(), "ffmpeg failed encoding {out:?}");
}

/// Makes `name.<ext>` in `dir` from interleaved stereo samples at `RATE`.
pub fn make_file(dir: &Path, name: &str, fmt: Fmt, samples: &[f32]) -> PathBuf {
    let wav = dir.join(format!("{name}.src.wav"));
    write_wav16(&wav, samples);
    let out = dir.join(format!("{name}.{}", fmt.ext()));
    if fmt == Fmt::Wav {
        std::fs::rename(&wav, &out).unwrap();
    } else {
        encode(&wav, fmt, &out, &[]);
    }
    out
}

/// Decodes with sox to signed 16-bit interleaved stereo.
pub fn sox_decode_s16(path: &Path) -> Vec<i16> {
    let out = Command::new("sox")
        .arg(path)
        .args(["-t", "raw", "-e", "signed-integer", "-b", "16", "-"])
        .output()
        .expect("sox runs (scripts/apt/audio.txt installs it)");
    assert!(
        out.status.success(),
        "sox failed on {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Decodes with ffmpeg to f32 interleaved stereo.
pub fn ffmpeg_decode_f32(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "2", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed on {path:?}");
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Index (frame) of the largest absolute sample of channel 0, searching from `from`.
pub fn peak_frame(samples: &[f32], channels: usize, from: usize) -> usize {
    let mut best = (from, 0.0f32);
    for (i, f) in samples.chunks_exact(channels).enumerate().skip(from) {
        if f[0].abs() > best.1 {
            best = (i, f[0].abs());
        }
    }
    best.0
}

/// Frames (channel 0) whose absolute value is at least `threshold`, merging hits closer than
/// `min_gap` frames (one click rings over a few samples after resampling).
pub fn click_frames(
    samples: &[f32],
    channels: usize,
    threshold: f32,
    min_gap: usize,
) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut best: Option<(usize, f32)> = None;
    for (i, f) in samples.chunks_exact(channels).enumerate() {
        let a = f[0].abs();
        if a >= threshold {
            match best {
                Some((bi, ba)) if i - bi < min_gap => {
                    if a > ba {
                        best = Some((i, a));
                    }
                }
                Some((bi, _)) => {
                    out.push(bi);
                    best = Some((i, a));
                }
                None => best = Some((i, a)),
            }
        }
    }
    if let Some((bi, _)) = best {
        out.push(bi);
    }
    out
}

/// Sub-sample position of a click near `frame`: the centroid of |x| over +-4 frames (a
/// band-limited click resampled is a symmetric sinc, whose centroid is its true position).
pub fn click_centroid(samples: &[f32], channels: usize, frame: usize) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    let n = samples.len() / channels;
    for i in frame.saturating_sub(4)..(frame + 5).min(n) {
        let a = f64::from(samples[i * channels]).powi(2);
        num += a * i as f64;
        den += a;
    }
    if den > 0.0 { num / den } else { frame as f64 }
}

/// The first event matching `pred` within `timeout` (earlier ones are dropped); panics without.
pub fn wait_for(
    events: &Receiver<PlayerEvent>,
    timeout: Duration,
    pred: impl Fn(&PlayerEvent) -> bool,
) -> PlayerEvent {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(ev) if pred(&ev) => return ev,
            Ok(_) => {}
            Err(e) => panic!("no matching event within {timeout:?}: {e}"),
        }
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

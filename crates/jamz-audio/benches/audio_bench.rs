//! Figures, not assertions: decode speed per format next to ffmpeg on the same files in the same
//! run, command-to-first-sample latency, and the audio callback's time and underruns, idle and
//! with every core busy. `cargo bench -p jamz-audio`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::load::Load;
use common::{Fmt, RATE};
use jamz_audio::{Decoder, OutputSpec, Player, PlayerEvent, Source};

#[path = "../tests/common/mod.rs"]
mod common;

/// Length of the benchmark file: 60 s makes ffmpeg's process start-up (tens of ms) a small part
/// of its time, and is about one song.
const SECONDS: usize = 60;
/// Best of this many runs per decoder (the machine is shared; the best run is the least
/// disturbed one).
const RUNS: usize = 3;
/// Scheduled-start trials for the latency figure.
const LATENCY_TRIALS: usize = 10;
/// Playback time per callback-time run: a few thousand callbacks.
const CALLBACK_RUN: Duration = Duration::from_secs(10);

/// The bench's signal: a sine per channel and a little noise, as floats for `write_wav16`.
fn music() -> Vec<f32> {
    let mut seed = 0x1234_5678_u64;
    let mut v = Vec::with_capacity(SECONDS * RATE as usize * 2);
    for i in 0..SECONDS * RATE as usize {
        let t = i as f32 / RATE as f32;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        let l = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin() + 0.05 * noise;
        let r = 0.3 * (2.0 * std::f32::consts::PI * 554.4 * t).sin() - 0.05 * noise;
        v.extend_from_slice(&[l, r]);
    }
    v
}

/// The benchmark file as a 16-bit WAV, and encoded into every other format (the tests'
/// encoder settings: tests/common).
fn make_files(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let wav = dir.join("bench.wav");
    common::write_wav16(&wav, &music());
    let mut out = vec![("wav", wav.clone())];
    for (name, fmt) in [
        ("flac", Fmt::Flac),
        ("mp3", Fmt::Mp3),
        ("aac/m4a", Fmt::M4a),
        ("vorbis", Fmt::Ogg),
    ] {
        let p = dir.join(format!("bench.{}", fmt.ext()));
        common::encode(&wav, fmt, &p, &[]);
        out.push((name, p));
    }
    out
}

fn ours(path: &Path) -> Duration {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let mut d = Decoder::open(path).unwrap();
            let mut n = 0usize;
            while let Some(c) = d.next_chunk().unwrap() {
                n += c.len();
            }
            std::hint::black_box(n);
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// ffmpeg's decode time: best of `RUNS` of its own `-benchmark` "rtime" (the decode loop without
/// process start-up), and the wall time of the whole command for reference.
fn ffmpeg(path: &Path) -> (Duration, Duration) {
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-nostats",
                "-benchmark",
                "-threads",
                "1",
                "-i",
            ])
            .arg(path)
            .args(["-map", "0:a", "-f", "null", "-"])
            .output()
            .unwrap();
        let wall = t.elapsed();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let rtime = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("rtime="))
            .and_then(|v| v.trim_end_matches('s').parse::<f64>().ok())
            .map(Duration::from_secs_f64)
            .unwrap_or(wall);
        best = (best.0.min(rtime), best.1.min(wall));
    }
    best
}

fn decode_speed(files: &[(&str, PathBuf)]) {
    println!(
        "\n== decode speed, {SECONDS} s stereo 44.1 kHz, best of {RUNS} (x real time; higher is faster)"
    );
    println!(
        "{:<9} {:>11} {:>15} {:>12} {:>17}",
        "format", "jamz-audio", "ffmpeg (rtime)", "ours/ffmpeg", "ffmpeg (wall)"
    );
    for (name, p) in files {
        let a = ours(p);
        let (b, wall) = ffmpeg(p);
        let x = |d: Duration| SECONDS as f64 / d.as_secs_f64();
        println!(
            "{name:<9} {:>10.0}x {:>14.0}x {:>12.2} {:>16.0}x",
            x(a),
            x(b),
            x(a) / x(b),
            x(wall)
        );
    }
    println!(
        "(rtime: ffmpeg's own -benchmark time for the decode loop; wall adds its process start-up)"
    );
}

fn start_latency(spec: &OutputSpec, file: &Path) {
    let player = match Player::new(spec) {
        Ok(p) => p,
        Err(e) => {
            println!("{spec}: not measured: {e}");
            return;
        }
    };
    let events = player.events();
    // Let the device settle: PulseAudio's null sink renders 2 s ahead until a low-latency client
    // (the parec above) has connected; wait (bounded) for a sane reported latency.
    let settle = Instant::now() + Duration::from_secs(5);
    while Instant::now() < settle
        && player
            .device_latency()
            .is_none_or(|l| l >= Duration::from_millis(200))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut call = Vec::new();
    let mut first = Vec::new();
    // Trial 0 warms the output up (a new stream's first buffers) and is not counted.
    for i in 0..=LATENCY_TRIALS {
        let t = Instant::now();
        // "Play now": a start scheduled for the current instant plays from the first frame the
        // output can still reach.
        player
            .start(Source::new(format!("t{i}"), file), 0.0, t)
            .unwrap();
        call.push(t.elapsed());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(PlayerEvent::TrackStarted { at, .. }) => {
                    if i > 0 {
                        first.push(at.saturating_duration_since(t));
                    } else {
                        call.clear();
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("no start: {e}"),
            }
        }
    }
    call.sort();
    first.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<8} start() call: median {:.2} ms, max {:.2} ms | command to first sample at the device: median {:.2} ms, max {:.2} ms (device latency {:?})",
        spec.to_string(),
        ms(call[call.len() / 2]),
        ms(call[call.len() - 1]),
        ms(first[first.len() / 2]),
        ms(first[first.len() - 1]),
        player.device_latency()
    );
}

/// Plays `file` for CALLBACK_RUN and prints what the callback took: its time per buffer (it
/// only copies decoded audio; decoding and resampling run on the track's own thread) and the
/// underruns (buffers the decode thread had not filled in time).
fn callback_time(spec: &OutputSpec, label: &str, file: &Path, busy: bool) {
    let player = match Player::new(spec) {
        Ok(p) => p,
        Err(e) => {
            println!("{spec}: not measured: {e}");
            return;
        }
    };
    let _load = busy.then(Load::start);
    let before = player.callback_stats();
    player
        .start(Source::new("bench", file), 0.0, Instant::now())
        .unwrap();
    std::thread::sleep(CALLBACK_RUN);
    let s = player.callback_stats();
    player.stop();
    let callbacks = s.callbacks - before.callbacks;
    let per_hour = (s.underruns - before.underruns) as f64 * 3600.0 / CALLBACK_RUN.as_secs_f64();
    println!(
        "{:<8} {label:<7} {:>5} {:>6} callbacks: mean {:>6.1} us, max {:>7.1} us | underruns {} ({} frames), {per_hour:.0}/hour",
        spec.to_string(),
        if busy { "busy" } else { "idle" },
        callbacks,
        s.mean.as_secs_f64() * 1e6,
        s.max.as_secs_f64() * 1e6,
        s.underruns - before.underruns,
        s.underrun_frames - before.underrun_frames,
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is accepted and ignored.
    let dir = tempfile::tempdir().unwrap();
    let files = make_files(dir.path());
    decode_speed(&files);
    println!(
        "\n== audio callback: time per buffer and underruns over {} s of playback (44.1 kHz files resampled to the output rate)",
        CALLBACK_RUN.as_secs()
    );
    for (name, p) in &files {
        if *name == "mp3" || *name == "aac/m4a" {
            for busy in [false, true] {
                callback_time(&OutputSpec::Null, name, p, busy);
                if std::env::var_os("JAMZ_PULSE_SINK").is_some() {
                    callback_time(&OutputSpec::Default, name, p, busy);
                }
            }
        }
    }
    println!("\n== command-to-first-sample latency, local file, {LATENCY_TRIALS} trials");
    for (name, p) in &files {
        if *name == "flac" || *name == "mp3" {
            println!("-- {name}");
            start_latency(&OutputSpec::Null, p);
            if let Some(sink) = std::env::var_os("JAMZ_PULSE_SINK") {
                // A low-latency reader on the monitor keeps the null sink from rendering 2 s ahead
                // (docs/architecture.md, real-time audio without a sound card), as a real device would not.
                let mut parec = Command::new("parec")
                    .arg("-d")
                    .arg(format!("{}.monitor", sink.to_string_lossy()))
                    .args(["--latency-msec=20", "--raw"])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .ok();
                start_latency(&OutputSpec::Default, p);
                if let Some(c) = parec.as_mut() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            } else {
                println!(
                    "default: not measured (no PulseAudio: source scripts/env.d/pulseaudio.sh)"
                );
            }
        }
    }
}

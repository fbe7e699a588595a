//! Measures how much later than it reckons an output is heard: plays a train of probes
//! through the player while the default input (a microphone near the speakers) records, and
//! finds each probe in the recording ([`crate::latency`]). The result is what the output's
//! latency offset should grow by: a Bluetooth car stereo's 40-300 ms that no API reports.
//!
//! Both sides are placed on the monotonic clock by their own device's timestamps: the player
//! knows the instant each frame is heard by its device latency (plus the offset already
//! set), the recording the instant each frame was captured. What is left between the two is
//! what neither device reports: the path after the output (a Bluetooth link, a stereo's
//! processing) and the sound's flight to the microphone (3 ms per metre).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::error::AudioError;
use crate::latency::{self, CalibrationResult, ProbeError};
use crate::player::Player;
use crate::track::Source;

/// How a calibration runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationOptions {
    /// Probes per run of the train (each gives one delay; a run's delay is their median).
    pub probes: usize,
    /// The longest delay looked for, beyond what the output reports.
    pub max_delay: Duration,
    /// How much earlier than the output reckons a probe may be heard (an offset set too
    /// large).
    pub max_early: Duration,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            probes: 3,
            // A Bluetooth car stereo: 150-300 ms; with a slow codec and buffering up to ~600.
            max_delay: Duration::from_millis(900),
            max_early: Duration::from_millis(300),
        }
    }
}

/// Why a calibration gave no result.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The microphone, or what it heard.
    #[error("{0}")]
    Probe(#[from] ProbeError),
    /// The output or the input failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The input opened but delivered nothing, or failed while recording.
    #[error("the microphone {name} {what}")]
    Input { name: String, what: String },
    /// Fewer than two runs of the probe train agreed (each clean run's delay, ms; empty if
    /// none was clean: the output underran or stalled each time).
    #[error(
        "the measurements disagree ({delays_ms:.1?} ms): the machine may be too busy, or the sound changed; try again"
    )]
    RunsDisagree { delays_ms: Vec<f64> },
    /// Writing the probe's temporary file failed.
    #[error("cannot write the probe signal to {path}: {source}")]
    ProbeFile {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    /// Bad options.
    #[error("invalid calibration options: {0}")]
    Options(String),
}

/// Silence before the first probe in its file: the player's start crossfade stays off it.
const FILE_LEAD_S: f64 = 0.1;
/// How far ahead the probe train is scheduled: the file opened and decoded ahead.
const START_LEAD: Duration = Duration::from_millis(400);
/// Bound on waiting for the input's first buffers and for the output to warm up.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the waits look.
const LOOK_EVERY: Duration = Duration::from_millis(10);

impl CalibrationOptions {
    /// Probe k starts this long after probe k-1: room for the earliest and latest hearing
    /// of each without overlap with its neighbours'.
    fn spacing_s(&self) -> f64 {
        self.max_early.as_secs_f64() + self.max_delay.as_secs_f64() + latency::PROBE_S + 0.1
    }

    fn check(&self) -> Result<(), CalibrationError> {
        if self.probes == 0 || self.probes > 50 {
            return Err(CalibrationError::Options(format!(
                "{} probes (1 to 50)",
                self.probes
            )));
        }
        if self.max_delay > Duration::from_secs(5) || self.max_early > Duration::from_secs(2) {
            return Err(CalibrationError::Options(format!(
                "looking {:?} late and {:?} early (at most 5 s and 2 s)",
                self.max_delay, self.max_early
            )));
        }
        Ok(())
    }
}

/// Plays the probes on `player` and records the default input; returns by how much later
/// than the player reckons (its device latency and latency offset included) they were
/// heard. The player's track is replaced by the probes and stopped after; its rate trim is
/// set to 0 for the measurement and put back.
///
/// One run can be off as a whole: a sound server that holds a stream back, a scheduler that
/// delays the output's or the input's thread on a busy machine, shift every probe of a run
/// alike, which the probes' agreement within the run cannot show. So the train is played
/// [`RUNS`] times (a run during which the output underran or stalled does not count, up to
/// [`MAX_RUNS`] in all) and the result is the median run, if at least two runs agree within
/// [`RUN_AGREE_MS`]. A silent microphone ends it at the first run.
pub fn calibrate(
    player: &Player,
    opts: &CalibrationOptions,
) -> Result<CalibrationResult, CalibrationError> {
    opts.check()?;
    let trim = player.rate_trim();
    let _ = player.set_rate_trim(0.0);
    let outcome = median_run(player, opts);
    let _ = player.set_rate_trim(trim);
    outcome
}

/// Clean runs of the probe train a calibration takes (each about 5 s with 3 probes).
pub const RUNS: usize = 3;
/// Runs at most, counting those the output's underruns or stalls spoiled.
pub const MAX_RUNS: usize = 5;
/// Runs whose delays are within this (ms) of the median run's agree.
pub const RUN_AGREE_MS: f64 = 3.0;

fn median_run(
    player: &Player,
    opts: &CalibrationOptions,
) -> Result<CalibrationResult, CalibrationError> {
    let mut runs: Vec<CalibrationResult> = Vec::new();
    let mut last_error = None;
    for attempt in 1..=MAX_RUNS {
        if runs.len() == RUNS {
            break;
        }
        // A start while the output is still starting up lands late by what no timestamp
        // shows: wait for it.
        let warm = player.wait_warm(DEVICE_TIMEOUT);
        let before = player.callback_stats();
        let run = measure(player, opts)
            .and_then(|probes| latency::summarize(&probes).map_err(CalibrationError::from));
        let after = player.callback_stats();
        // An underrun or a stall moved the probes after it by what no timestamp shows.
        let spoiled = after.underruns > before.underruns || after.stalls > before.stalls;
        tracing::debug!(attempt, warm, spoiled, ?run, "calibration run");
        match run {
            Ok(r) if !spoiled => runs.push(r),
            Ok(_) => {}
            Err(e @ CalibrationError::Probe(ProbeError::Silent { .. })) => return Err(e),
            Err(e @ (CalibrationError::Audio(_) | CalibrationError::Input { .. })) => {
                return Err(e);
            }
            Err(e) => last_error = Some(e),
        }
    }
    if runs.is_empty() {
        return Err(last_error.unwrap_or(CalibrationError::RunsDisagree { delays_ms: vec![] }));
    }
    runs.sort_by(|a, b| a.delay_ms.total_cmp(&b.delay_ms));
    let median = runs[runs.len() / 2];
    let agreeing: Vec<&CalibrationResult> = runs
        .iter()
        .filter(|r| (r.delay_ms - median.delay_ms).abs() <= RUN_AGREE_MS)
        .collect();
    if agreeing.len() < 2 {
        return Err(CalibrationError::RunsDisagree {
            delays_ms: runs.iter().map(|r| r.delay_ms).collect(),
        });
    }
    let lowest = agreeing
        .iter()
        .map(|r| r.delay_ms)
        .fold(f64::INFINITY, f64::min);
    let highest = agreeing
        .iter()
        .map(|r| r.delay_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(CalibrationResult {
        delay_ms: median.delay_ms,
        spread_ms: highest - lowest,
        // The median run's clarity, times the share of the runs that agree with it.
        confidence: median.confidence * agreeing.len() as f64 / runs.len() as f64,
        probes: runs.iter().map(|r| r.probes).sum(),
        agreeing: agreeing.iter().map(|r| r.agreeing).sum(),
    })
}

/// One run: plays the probe train and returns each probe's delay (ms) or why it has none.
fn measure(
    player: &Player,
    opts: &CalibrationOptions,
) -> Result<Vec<latency::ProbeReading>, CalibrationError> {
    let capture = Capture::open_default()?;
    wait_for_input(&capture)?;
    let spacing = opts.spacing_s();
    let file = probe_file(player.sample_rate(), opts.probes, spacing)?;
    let at = Instant::now() + START_LEAD;
    let played = player.start(Source::new("jamz-calibration-probe", &file), 0.0, at);
    let recorded = played.map_err(CalibrationError::from).and_then(|()| {
        let end = at
            + Duration::from_secs_f64(FILE_LEAD_S + spacing * opts.probes as f64)
            + opts.max_delay;
        wait_recorded_until(&capture, end)
    });
    player.stop();
    let _ = std::fs::remove_file(&file);
    recorded?;
    let name = capture.name.clone();
    let rec = capture.finish().ok_or_else(|| CalibrationError::Input {
        name,
        what: "recorded nothing".into(),
    })?;
    let template = latency::probe(rec.rate);
    let rate = f64::from(rec.rate);
    let early = opts.max_early.as_secs_f64();
    let late = opts.max_delay.as_secs_f64() + latency::PROBE_S;
    let window = ((early + late) * rate) as usize;
    let Some(start) = rec.frame0_between(0, u64::MAX) else {
        return Err(ProbeError::Empty.into());
    };
    let results = (0..opts.probes)
        .map(|k| {
            // Where the player reckons probe k is heard, in frames of the recording: roughly
            // first, then by the buffers around it (an input that lost frames on the way
            // moved the later ones).
            let offset_s = FILE_LEAD_S + spacing * k as f64;
            let rough = (signed_secs(at, start) + offset_s) * rate;
            let margin = 0.5 * rate;
            let frame0 = rec
                .frame0_between(
                    (rough - early * rate - margin).max(0.0) as u64,
                    (rough + late * rate + margin).max(0.0) as u64,
                )
                .unwrap_or(start);
            let due = signed_secs(at, frame0) + offset_s;
            let first = ((due - early) * rate).round();
            if first < 0.0 {
                return Err(ProbeError::Empty);
            }
            let first = first as usize;
            let Some(part) = rec
                .samples
                .get(first..(first + window).min(rec.samples.len()))
            else {
                return Err(ProbeError::Empty);
            };
            let echo = latency::find_echo(&template, part)?;
            let heard = (first as f64 + echo.frame) / rate;
            Ok(((heard - due) * 1000.0, echo))
        })
        .collect::<Vec<_>>();
    for (k, r) in results.iter().enumerate() {
        tracing::debug!(probe = k, result = ?r, "calibration probe");
    }
    Ok(results)
}

/// `a - b` in seconds, either sign.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64(),
        None => -b.duration_since(a).as_secs_f64(),
    }
}

fn wait_for_input(capture: &Capture) -> Result<(), CalibrationError> {
    let deadline = Instant::now() + DEVICE_TIMEOUT;
    loop {
        let (frames, error) = capture.progress();
        if let Some(e) = error {
            return Err(CalibrationError::Input {
                name: capture.name.clone(),
                what: format!("failed: {e}"),
            });
        }
        if frames > 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CalibrationError::Input {
                name: capture.name.clone(),
                what: format!("delivered no audio in {} s", DEVICE_TIMEOUT.as_secs()),
            });
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

fn wait_recorded_until(capture: &Capture, end: Instant) -> Result<(), CalibrationError> {
    let deadline = end + DEVICE_TIMEOUT;
    loop {
        if let (_, Some(e)) = capture.progress() {
            return Err(CalibrationError::Input {
                name: capture.name.clone(),
                what: format!("failed while recording: {e}"),
            });
        }
        if capture.recorded_until().is_some_and(|t| t >= end) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CalibrationError::Input {
                name: capture.name.clone(),
                what: "stopped delivering audio".into(),
            });
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

/// The probe train as a temporary mono WAV at the output's rate (no resampling on the way):
/// probe k at `FILE_LEAD_S + k * spacing` s.
fn probe_file(rate: u32, probes: usize, spacing: f64) -> Result<PathBuf, CalibrationError> {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!(
        "jamz-calibration-{}-{unique}.wav",
        std::process::id()
    ));
    write_probe_file(&path, rate, probes, spacing).map_err(|source| {
        let _ = std::fs::remove_file(&path);
        CalibrationError::ProbeFile {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

fn write_probe_file(path: &Path, rate: u32, probes: usize, spacing: f64) -> hound::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let probe = latency::probe(rate);
    let total = ((FILE_LEAD_S + spacing * probes as f64) * f64::from(rate)) as usize;
    let mut signal = vec![0.0f32; total];
    for k in 0..probes {
        let start = ((FILE_LEAD_S + spacing * k as f64) * f64::from(rate)).round() as usize;
        if let Some(dst) = signal.get_mut(start..start + probe.len()) {
            dst.copy_from_slice(&probe);
        }
    }
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in signal {
        w.write_sample(s)?;
    }
    w.finalize()
}

/// Plays one probe on `player` audible at each of `at` (its device latency and latency
/// offset included, as any start), then stops it: the player's side of a relative
/// calibration (jamz-sync's `calibration::relative`), where another device listens. Blocks
/// until the last probe has played; call it off any async runtime's workers.
pub fn play_probes(player: &Player, at: &[Instant]) -> Result<(), CalibrationError> {
    let (Some(&first), Some(&last)) = (at.first(), at.last()) else {
        return Err(CalibrationError::Options("no probe to play".into()));
    };
    if at.windows(2).any(|w| w[1] < w[0]) || last - first > Duration::from_secs(60) {
        return Err(CalibrationError::Options(
            "the probes are not in order within a minute".into(),
        ));
    }
    let offsets: Vec<f64> = at
        .iter()
        .map(|t| FILE_LEAD_S + (*t - first).as_secs_f64())
        .collect();
    let file = probe_file_at(player.sample_rate(), &offsets)?;
    let trim = player.rate_trim();
    let _ = player.set_rate_trim(0.0);
    // A start while the output is still starting up lands late by what no timestamp shows.
    player.wait_warm(DEVICE_TIMEOUT);
    // A start instant already past plays from where the file is by then: the probes still
    // to come stay on their instants.
    let start = first
        .checked_sub(Duration::from_secs_f64(FILE_LEAD_S))
        .unwrap_or(first);
    let played = player.start(Source::new("jamz-calibration-probe", &file), 0.0, start);
    if played.is_ok() {
        let end = last
            + Duration::from_secs_f64(latency::PROBE_S)
            + player.device_latency().unwrap_or_default()
            + player.latency_offset();
        while Instant::now() < end {
            std::thread::sleep(LOOK_EVERY);
        }
    }
    player.stop();
    let _ = player.set_rate_trim(trim);
    let _ = std::fs::remove_file(&file);
    played.map_err(CalibrationError::from)
}

/// Where [`listen_for_probes`] found one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeardProbe {
    /// The instant the probe starts in the recording, by the input's stamps.
    pub at: Instant,
    /// The finder's confidence, 0 to 1.
    pub confidence: f64,
}

/// Records the default input until `until` and looks for one probe heard at each of `at`,
/// from `opts.max_early` before to `opts.max_delay` after it: the listener's side of a
/// relative calibration. A probe not found is `None`; a silent or failing input is an
/// error. Blocks until `until`; call it off any async runtime's workers.
pub fn listen_for_probes(
    at: &[Instant],
    until: Instant,
    opts: &CalibrationOptions,
) -> Result<Vec<Option<HeardProbe>>, CalibrationError> {
    let capture = Capture::open_default()?;
    wait_for_input(&capture)?;
    wait_recorded_until(&capture, until)?;
    let name = capture.name.clone();
    let rec = capture.finish().ok_or_else(|| CalibrationError::Input {
        name,
        what: "recorded nothing".into(),
    })?;
    let level = latency::level_dbfs(&rec.samples);
    if level < latency::SILENT_DBFS {
        return Err(ProbeError::Silent { level_dbfs: level }.into());
    }
    let template = latency::probe(rec.rate);
    let rate = f64::from(rec.rate);
    let early = opts.max_early.as_secs_f64();
    let late = opts.max_delay.as_secs_f64() + latency::PROBE_S;
    let window = ((early + late) * rate) as usize;
    let Some(start) = rec.frame0_between(0, u64::MAX) else {
        return Err(ProbeError::Empty.into());
    };
    let found = at
        .iter()
        .enumerate()
        .map(|(k, due_at)| {
            // Frame 0's instant by the buffers near the probe (an input that lost frames on
            // the way moved the later ones), as `measure` does.
            let rough = signed_secs(*due_at, start) * rate;
            let margin = 0.5 * rate;
            let frame0 = rec
                .frame0_between(
                    (rough - early * rate - margin).max(0.0) as u64,
                    (rough + late * rate + margin).max(0.0) as u64,
                )
                .unwrap_or(start);
            let due = signed_secs(*due_at, frame0);
            let first = ((due - early) * rate).round();
            if first < 0.0 {
                tracing::debug!(probe = k, "probe before the recording");
                return None;
            }
            let first = first as usize;
            let part = rec
                .samples
                .get(first..(first + window).min(rec.samples.len()))?;
            match latency::find_echo(&template, part) {
                Ok(echo) => {
                    let heard = (first as f64 + echo.frame) / rate;
                    let at = frame0.checked_add(Duration::try_from_secs_f64(heard).ok()?)?;
                    tracing::debug!(
                        probe = k,
                        late_ms = (heard - due) * 1000.0,
                        confidence = echo.confidence,
                        "probe heard"
                    );
                    Some(HeardProbe {
                        at,
                        confidence: echo.confidence,
                    })
                }
                Err(e) => {
                    tracing::debug!(probe = k, error = %e, "probe not heard");
                    None
                }
            }
        })
        .collect();
    Ok(found)
}

/// Probes at `offsets` (s) in a temporary mono WAV at the output's rate.
fn probe_file_at(rate: u32, offsets: &[f64]) -> Result<PathBuf, CalibrationError> {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path =
        std::env::temp_dir().join(format!("jamz-probes-{}-{unique}.wav", std::process::id()));
    write_probes_at(&path, rate, offsets).map_err(|source| {
        let _ = std::fs::remove_file(&path);
        CalibrationError::ProbeFile {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

fn write_probes_at(path: &Path, rate: u32, offsets: &[f64]) -> hound::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let probe = latency::probe(rate);
    let end = offsets.iter().copied().fold(0.0, f64::max) + latency::PROBE_S + FILE_LEAD_S;
    let mut signal = vec![0.0f32; (end * f64::from(rate)) as usize];
    for offset in offsets {
        let start = (offset * f64::from(rate)).round() as usize;
        if let Some(dst) = signal.get_mut(start..start + probe.len()) {
            dst.copy_from_slice(&probe);
        }
    }
    let mut w = hound::WavWriter::create(path, spec)?;
    for s in signal {
        w.write_sample(s)?;
    }
    w.finalize()
}

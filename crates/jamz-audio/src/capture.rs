//! The default input (a microphone) recorded into memory, mono, with each buffer's arrival
//! instant, for the latency calibration. Not a real-time path of the player: the input
//! callback appends under a mutex that the caller only takes to look at how much there is.
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, InputCallbackInfo, SampleFormat, SizedSample};

use crate::error::{AudioError, Result};

#[derive(Default)]
struct Recorded {
    samples: Vec<f32>,
    /// Per buffer: its arrival (`Instant::now()` in the callback) minus the frames up to its
    /// end: never earlier than frame 0's capture.
    arrivals: Vec<(u64, Instant)>,
    error: Option<String>,
}

/// A running recording of the default input.
pub(crate) struct Capture {
    // Kept for its lifetime: dropping it stops the recording.
    _stream: cpal::Stream,
    recorded: Arc<Mutex<Recorded>>,
    rate: u32,
    pub(crate) name: String,
}

/// What was recorded.
pub(crate) struct Recording {
    pub samples: Vec<f32>,
    pub rate: u32,
    /// Per buffer: its first frame's index, and its arrival minus the frames up to its end.
    arrivals: Vec<(u64, Instant)>,
}

impl Recording {
    /// When frame 0 was captured, by the buffers that start within `from..=to` (frames):
    /// the earliest of their "arrival minus the frames up to its end". Each buffer arrives
    /// after its last frame was captured, so none is too early, and the earliest is the one
    /// delivered fastest (as NTP's lowest-delay sample). Not the backends' capture
    /// timestamps: those of ALSA's PulseAudio plugin wander by milliseconds over seconds.
    /// Only nearby buffers: an input that lost frames (an overrun on a busy machine) moved
    /// every later frame's place by what it lost.
    pub fn frame0_between(&self, from: u64, to: u64) -> Option<Instant> {
        self.arrivals
            .iter()
            .filter(|(start, _)| (from..=to).contains(start))
            .map(|(_, t)| *t)
            .min()
    }
}

fn lock(m: &Mutex<Recorded>) -> MutexGuard<'_, Recorded> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Capture {
    /// Opens the system's default input and starts recording.
    pub fn open_default() -> Result<Self> {
        let host = cpal::default_host();
        let device = host
            .default_input_device()
            .ok_or_else(|| AudioError::Device("no default input device (microphone)".into()))?;
        let name = device
            .id()
            .map(|id| id.to_string())
            .unwrap_or_else(|_| "default input".into());
        let supported = device
            .default_input_config()
            .map_err(|e| AudioError::Device(format!("{name}: {e}")))?;
        let config = supported.config();
        let rate = config.sample_rate;
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let stream = match supported.sample_format() {
            SampleFormat::F32 => build::<f32>(&device, &config, &recorded),
            SampleFormat::I16 => build::<i16>(&device, &config, &recorded),
            SampleFormat::I32 => build::<i32>(&device, &config, &recorded),
            SampleFormat::U16 => build::<u16>(&device, &config, &recorded),
            other => Err(AudioError::Device(format!(
                "{name}: unsupported input sample format {other}"
            ))),
        }?;
        stream
            .play()
            .map_err(|e| AudioError::Device(format!("{name}: cannot start recording: {e}")))?;
        Ok(Capture {
            _stream: stream,
            recorded,
            rate,
            name,
        })
    }

    /// Frames recorded so far, and the input's error if it reported one.
    pub fn progress(&self) -> (u64, Option<String>) {
        let r = lock(&self.recorded);
        (r.samples.len() as u64, r.error.clone())
    }

    /// The instant up to which audio has been recorded (by the last buffer's arrival), if
    /// any.
    pub fn recorded_until(&self) -> Option<Instant> {
        let r = lock(&self.recorded);
        let &(_, frame0) = r.arrivals.last()?;
        Some(frame0 + Duration::from_secs_f64(r.samples.len() as f64 / f64::from(self.rate)))
    }

    /// Stops and hands over the recording (`None` if nothing came).
    pub fn finish(self) -> Option<Recording> {
        let rate = self.rate;
        let recorded = Arc::clone(&self.recorded);
        drop(self);
        let mut r = lock(&recorded);
        if r.arrivals.is_empty() {
            return None;
        }
        Some(Recording {
            samples: std::mem::take(&mut r.samples),
            rate,
            arrivals: std::mem::take(&mut r.arrivals),
        })
    }
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    recorded: &Arc<Mutex<Recorded>>,
) -> Result<cpal::Stream>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let ch = usize::from(config.channels.max(1));
    let rate = f64::from(config.sample_rate.max(1));
    let rec = Arc::clone(recorded);
    // The backend's capture timestamps are not used (see `Recording::frame0_between`): the
    // arrival of each buffer bounds when its frames were captured.
    let data_cb = move |data: &[T], _: &InputCallbackInfo| {
        let arrived = Instant::now();
        let mut r = lock(&rec);
        let start = r.samples.len() as u64;
        let end = Duration::from_secs_f64((start + (data.len() / ch) as u64) as f64 / rate);
        if let Some(a) = arrived.checked_sub(end) {
            r.arrivals.push((start, a));
        }
        r.samples.extend(data.chunks_exact(ch).map(|f| {
            f.iter()
                .map(|s| <f32 as FromSample<T>>::from_sample_(*s))
                .sum::<f32>()
                / ch as f32
        }));
    };
    let err_rec = Arc::clone(recorded);
    let err_cb = move |e: cpal::Error| {
        lock(&err_rec).error = Some(e.to_string());
    };
    let stream = device
        .build_input_stream::<T, _, _>(*config, data_cb, err_cb, None)
        .map_err(|e| AudioError::Device(format!("input: {e}")))?;
    Ok(stream)
}

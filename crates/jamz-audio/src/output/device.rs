//! A cpal device (the default one, or one named by its id), its playback clock, and reopening
//! when the current one is lost: the named device again first, else the default device.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    ErrorKind, FromSample, OutputCallbackInfo, SampleFormat, SizedSample, StreamConfig,
    StreamInstant,
};
use std::sync::mpsc::{self, RecvTimeoutError};

use crossbeam_channel::{Sender, bounded};

use super::{Ctl, lock};
use crate::error::{AudioError, Result};
use crate::mixer::Mixer;
use crate::player::PlayerEvent;
use crate::shared::Shared;
use crate::track::OUT_CHANNELS;

/// How often to look for a new default device after the current one is lost: 500 ms makes
/// recovery feel immediate to a person plugging a cable back in, and costs nothing.
const RETRY_PERIOD: Duration = Duration::from_millis(500);

/// A stream whose callback has not run for this long is stalled: treat it as lost. ALSA's
/// PulseAudio plugin does not report the server going away as a device error (checked here: it
/// floods the error callback with I/O errors and the data callbacks stop), so errors alone
/// cannot detect it. 3 s is above the 1.8-2 s a new stream can stall on a PulseAudio sink before
/// its first buffers flow (docs/architecture.md ("real-time audio without a sound card"); seen here too), so a slow start is not taken
/// for a loss.
const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// While a named device is away and playback runs on the default one, how often to look
/// for it (listing devices costs ~15 ms on ALSA: not every watchdog turn).
const NAMED_CHECK_PERIOD: Duration = Duration::from_secs(3);

/// How often the watchdog looks at the callback's heartbeat.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(100);

/// What the monitor thread sends back once the first device is open (or not).
type Opened = Result<Arc<Shared>>;

/// Which device an output wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Wanted {
    /// The host's default output device, whichever it is at the time.
    Default,
    /// The output device whose cpal id (`Display` form) is this.
    Device(String),
}

impl std::fmt::Display for Wanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wanted::Default => f.write_str("the default device"),
            Wanted::Device(id) => write!(f, "device `{id}`"),
        }
    }
}

pub(super) fn spawn(
    wanted: Wanted,
    events: Sender<PlayerEvent>,
    ctl_tx: mpsc::SyncSender<Ctl>,
    ctl: mpsc::Receiver<Ctl>,
) -> Result<(Arc<Shared>, JoinHandle<()>)> {
    let (ready_tx, ready_rx) = bounded::<Opened>(1);
    let thread = std::thread::Builder::new()
        .name("jamz-audio-device".into())
        .spawn(move || monitor(&wanted, events, ctl_tx, ctl, ready_tx))
        .map_err(|e| AudioError::Device(format!("cannot start output thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(shared)) => Ok((shared, thread)),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(AudioError::Device(
            "output thread died while opening".into(),
        )),
    }
}

struct Opening {
    device: cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    name: String,
}

fn find(host: &cpal::Host, wanted: &Wanted) -> Result<Opening> {
    let device = match wanted {
        Wanted::Default => host
            .default_output_device()
            .ok_or_else(|| AudioError::Device("no default output device".into()))?,
        Wanted::Device(id) => find_named(host, id)?,
    };
    let name = device.id().map(|id| id.to_string()).unwrap_or_else(|_| {
        match wanted {
            Wanted::Default => "default",
            Wanted::Device(id) => id,
        }
        .into()
    });
    let supported = device
        .default_output_config()
        .map_err(|e| AudioError::Device(format!("{name}: {e}")))?;
    Ok(Opening {
        format: supported.sample_format(),
        config: supported.config(),
        device,
        name,
    })
}

/// The output device whose id is `id`; an error listing the ids there are if none is.
fn find_named(host: &cpal::Host, id: &str) -> Result<cpal::Device> {
    let devices = host
        .output_devices()
        .map_err(|e| AudioError::Device(format!("cannot list output devices: {e}")))?;
    let mut available = Vec::new();
    for device in devices {
        match device.id() {
            Ok(d) if d.to_string() == id => return Ok(device),
            Ok(d) => available.push(d.to_string()),
            Err(e) => tracing::debug!(error = %e, "output device without an id"),
        }
    }
    let available = if available.is_empty() {
        "none".to_string()
    } else {
        available.join(", ")
    };
    Err(AudioError::Device(format!(
        "output device `{id}` not found; available: {available}"
    )))
}

/// Opens a stream again after a loss: the wanted device first, then (for a named device) the
/// default one. Each attempt gets its own generation, so errors from a stream that failed to
/// start cannot be taken for a loss of the next one.
fn reopen(
    host: &cpal::Host,
    wanted: &Wanted,
    out: &Out,
    ctl_tx: &mpsc::SyncSender<Ctl>,
    generation: &mut u64,
) -> Result<(cpal::Stream, Opening)> {
    let mut attempt = |w: &Wanted| {
        *generation += 1;
        find(host, w).and_then(|o| {
            reset_for(&out.mixer, o.config.sample_rate);
            build(&o, out, ctl_tx, *generation).map(|s| (s, o))
        })
    };
    match wanted {
        Wanted::Default => attempt(&Wanted::Default),
        Wanted::Device(_) => attempt(wanted).or_else(|e| {
            tracing::debug!(error = %e, "{wanted} not back yet; trying the default device");
            attempt(&Wanted::Default)
        }),
    }
}

/// The mixer and what it shares with the player. The mixer sits behind a mutex only so that a
/// new stream can take it over after a device loss: the stream's callback is its one user while
/// the stream runs, so the callback never waits for it.
#[derive(Clone)]
struct Out {
    mixer: Arc<Mutex<Mixer>>,
    shared: Arc<Shared>,
}

/// Builds and starts a stream on `o` rendering from `out`'s mixer.
fn build(
    o: &Opening,
    out: &Out,
    errors: &mpsc::SyncSender<Ctl>,
    generation: u64,
) -> Result<cpal::Stream> {
    let stream = match o.format {
        SampleFormat::F32 => build_typed::<f32>(o, out, errors, generation),
        SampleFormat::I16 => build_typed::<i16>(o, out, errors, generation),
        SampleFormat::I32 => build_typed::<i32>(o, out, errors, generation),
        SampleFormat::U16 => build_typed::<u16>(o, out, errors, generation),
        other => Err(AudioError::Device(format!(
            "{}: unsupported sample format {other}",
            o.name
        ))),
    }?;
    stream
        .play()
        .map_err(|e| AudioError::Device(format!("{}: cannot start: {e}", o.name)))?;
    Ok(stream)
}

fn build_typed<T>(
    o: &Opening,
    out: &Out,
    errors: &mpsc::SyncSender<Ctl>,
    generation: u64,
) -> Result<cpal::Stream>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let ch = usize::from(o.config.channels.max(1));
    // cpal's StreamInstant and Instant run at the same rate (docs/architecture.md, real-time audio without a sound card); pair them
    // once, when the stream is built, and map every playback timestamp through that pair.
    let pair: Arc<Mutex<Option<(StreamInstant, Instant)>>> = Arc::new(Mutex::new(None));
    let cb_pair = pair.clone();
    let m = out.mixer.clone();
    let shared = out.shared.clone();
    // Room for the usual periods up front: growing it would allocate on the audio thread.
    let mut stereo: Vec<f32> = Vec::with_capacity(8192 * OUT_CHANNELS);
    let data_cb = move |data: &mut [T], info: &OutputCallbackInfo| {
        let began = Instant::now();
        let frames = data.len() / ch;
        stereo.resize(frames * OUT_CHANNELS, 0.0);
        let ts = info.timestamp();
        let (si, inst) = {
            let mut p = cb_pair.lock().unwrap_or_else(|e| e.into_inner());
            *p.get_or_insert_with(|| (ts.callback, Instant::now()))
        };
        let playback = match ts.playback.checked_duration_since(si) {
            Some(d) => inst + d,
            None => inst
                .checked_sub(si.saturating_duration_since(ts.playback))
                .unwrap_or(inst),
        };
        shared.set_device_latency(ts.playback.checked_duration_since(ts.callback));
        lock(&m).render(&mut stereo, playback);
        for (f, frame) in data.chunks_exact_mut(ch).enumerate() {
            let (l, r) = (stereo[f * 2], stereo[f * 2 + 1]);
            if ch == 1 {
                frame[0] = T::from_sample(0.5 * (l + r));
                continue;
            }
            for (c, s) in frame.iter_mut().enumerate() {
                *s = T::from_sample(match c {
                    0 => l,
                    1 => r,
                    _ => 0.0,
                });
            }
        }
        shared.record_callback(began.elapsed());
    };
    let errors = errors.clone();
    let err_cb = move |e: cpal::Error| {
        // try_send: a backend in trouble can call this in a tight loop (ALSA's PulseAudio plugin
        // does when the server dies); drop what the monitor has no room for.
        let _ = errors.try_send(Ctl::StreamError(generation, e));
    };
    let stream = o
        .device
        .build_output_stream::<T, _, _>(o.config, data_cb, err_cb, None)
        .map_err(|e| AudioError::Device(format!("{}: {e}", o.name)))?;
    if let Ok(mut p) = pair.lock() {
        *p = Some((stream.now(), Instant::now()));
    }
    Ok(stream)
}

/// Owns the cpal stream (not every platform's stream may cross threads), watches its errors
/// and its heartbeat, and reopens the wanted device (or, failing that, the default one) when
/// it is lost.
fn monitor(
    wanted: &Wanted,
    events: Sender<PlayerEvent>,
    ctl_tx: mpsc::SyncSender<Ctl>,
    ctl: mpsc::Receiver<Ctl>,
    ready: Sender<Opened>,
) {
    let host = cpal::default_host();
    // Each stream gets a generation number, so a late error from a dropped stream is ignored.
    let mut generation = 0u64;
    let first = find(&host, wanted).and_then(|o| {
        let shared = Arc::new(Shared::new(o.config.sample_rate));
        let mixer = Mixer::new(o.config.sample_rate, shared.clone(), events.clone());
        let out = Out {
            mixer: Arc::new(Mutex::new(mixer)),
            shared,
        };
        out.shared.beat();
        let stream = build(&o, &out, &ctl_tx, generation)?;
        tracing::info!(device = %o.name, rate = o.config.sample_rate, channels = o.config.channels, "output open");
        Ok((out, stream))
    });
    let (out, mut stream) = match first {
        Ok((out, s)) => {
            let _ = ready.send(Ok(out.shared.clone()));
            (out, Some(s))
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut next_retry = Instant::now();
    // Playing on the default device while the named one is away: move back when it returns.
    let mut on_fallback = false;
    let mut next_named_check = Instant::now();
    // A `DeviceRestored` waiting for its stream to be warm, and when the stream opened.
    let mut restored: Option<(PlayerEvent, Instant)> = None;
    loop {
        let wait = if stream.is_some() {
            WATCHDOG_PERIOD
        } else {
            RETRY_PERIOD
        };
        match ctl.recv_timeout(wait) {
            Ok(Ctl::Stop) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Ctl::StreamError(g, e)) => {
                let fatal = matches!(
                    e.kind(),
                    ErrorKind::DeviceNotAvailable
                        | ErrorKind::StreamInvalidated
                        | ErrorKind::HostUnavailable
                );
                if g == generation && stream.is_some() && fatal {
                    tracing::warn!(error = %e, "output device lost");
                    lost(&out.shared, &events, &mut stream, e.to_string());
                    next_retry = Instant::now() + RETRY_PERIOD;
                } else {
                    tracing::debug!(error = %e, "output stream");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if stream.is_none() {
            restored = None;
        } else if let Some((_, opened)) = &restored
            // Not warm within the stall timeout: the watchdog below takes it for lost if
            // its callbacks stopped; if they run, the caller may as well try.
            && (out.shared.is_warm() || opened.elapsed() >= STALL_TIMEOUT)
            && let Some((event, _)) = restored.take()
        {
            let _ = events.send(event);
        }
        // Checked on every turn, not only on timeouts: a stream in trouble may flood us with
        // errors while its callbacks have stopped.
        if stream.is_some() {
            if out.shared.since_last_callback() > STALL_TIMEOUT {
                let msg = format!("output stalled: no callback for {STALL_TIMEOUT:?}");
                tracing::warn!("{msg}");
                lost(&out.shared, &events, &mut stream, msg);
                next_retry = Instant::now() + RETRY_PERIOD;
            }
            if on_fallback
                && Instant::now() >= next_named_check
                && let Wanted::Device(id) = wanted
            {
                next_named_check = Instant::now() + NAMED_CHECK_PERIOD;
                if find_named(&host, id).is_ok() {
                    tracing::info!(device = %id, "output device is back; moving playback to it");
                    out.shared.set_device_lost(true);
                    stream = None;
                    next_retry = Instant::now();
                    continue;
                }
            }
        } else {
            // No callback runs while the device is away: carry out the control calls here, so
            // the queue does not fill (what they start is dropped when a device opens again).
            lock(&out.mixer).apply_commands();
        }
        if stream.is_none() && Instant::now() >= next_retry {
            next_retry = Instant::now() + RETRY_PERIOD;
            match reopen(&host, wanted, &out, &ctl_tx, &mut generation) {
                Ok((s, o)) => {
                    on_fallback = false;
                    match wanted {
                        Wanted::Device(id) if *id != o.name => {
                            tracing::warn!(
                                device = %o.name,
                                "output device `{id}` is still away; restored on the default device"
                            );
                            on_fallback = true;
                            next_named_check = Instant::now() + NAMED_CHECK_PERIOD;
                        }
                        _ => tracing::info!(device = %o.name, "output device restored"),
                    }
                    out.shared.set_device_lost(false);
                    // The heartbeat restarts with the new stream.
                    out.shared.beat();
                    stream = Some(s);
                    // Told once the new stream is warm: the caller restarts playback on
                    // it, and a start during its start-up would lose its beginning.
                    restored = Some((
                        PlayerEvent::DeviceRestored {
                            device: o.name.clone(),
                            sample_rate: o.config.sample_rate,
                        },
                        Instant::now(),
                    ));
                }
                Err(e) => tracing::debug!(error = %e, "no output device yet"),
            }
        }
    }
    drop(stream);
}

/// Marks the device lost, drops its stream and tells the caller.
fn lost(
    shared: &Shared,
    events: &Sender<PlayerEvent>,
    stream: &mut Option<cpal::Stream>,
    message: String,
) {
    shared.set_device_lost(true);
    *stream = None;
    let _ = events.send(PlayerEvent::DeviceLost { message });
}

/// After a gap in output: what was playing or scheduled is dropped (it would come late by the
/// gap, on figures of another device), and the clock starts over at the new device's rate.
/// Nothing plays until the caller starts again: it knows where the group is, this crate does
/// not (it reports `DeviceRestored` and decides nothing).
fn reset_for(mixer: &Mutex<Mixer>, rate: u32) {
    let mut m = lock(mixer);
    m.drop_streams();
    m.reset_rate(rate);
}

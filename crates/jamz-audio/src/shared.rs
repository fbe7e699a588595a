//! What the control side (the [`crate::Player`]'s methods, on any thread) and the render side
//! (the mixer, in the audio callback) share. The callback never waits on the control side: it
//! pops commands from a lock-free queue, reads atomics, and publishes its timeline with a
//! `try_lock` that it simply retries at the next callback if a reader holds the copy.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use crate::mixer::Scheduled;
use crate::ring::{Reader, SharedTrim};
use crate::timeline::Timeline;

/// Room for commands the callback has not applied yet. The node sends a few per second; 64
/// only fills if the output has stopped calling back, which the device monitor notices.
const CMD_CAPACITY: usize = 64;

/// Room for readers the callback let go of and a decode thread has not dropped yet: a few
/// per start or stop.
const RETIRED_CAPACITY: usize = 64;

/// A control call, carried out by the mixer at its next callback.
pub(crate) enum Cmd {
    /// Start a track at its instant (replacing a pending start).
    Schedule(Scheduled),
    /// Play this track gaplessly after the current one (replacing a queued one).
    Next(Reader),
    /// Fade the current track out and drop a pending start.
    Stop,
    /// `Stop`, and drop the queued track too.
    StopAll,
}

/// How the audio callback has been doing since the output opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallbackStats {
    /// Callbacks run (device periods rendered).
    pub callbacks: u64,
    /// Callbacks in which a playing track ran out of decoded audio (its decode thread was
    /// behind): that stretch played silence, and the track skipped ahead to stay on time.
    pub underruns: u64,
    /// Output frames of silence those underruns cost.
    pub underrun_frames: u64,
    /// Stalls of the output while something played or was scheduled (each also a
    /// `PlayerEvent::Stalled`): the device's timing may be off until the next start.
    pub stalls: u64,
    /// Mean time one callback took to render its buffer.
    pub mean: Duration,
    /// Longest time one callback took.
    pub max: Duration,
}

pub(crate) struct Shared {
    cmds: ArrayQueue<(u64, Cmd)>,
    /// Readers the callback let go of; decode threads drop them (freeing memory is not for
    /// the audio thread).
    pub retired: Arc<ArrayQueue<Reader>>,
    /// The rate trim in force, read by decode threads.
    pub trim: Arc<SharedTrim>,
    published: Mutex<Timeline>,
    volume_bits: AtomicU32,
    latency_offset_ns: AtomicU64,
    out_rate: AtomicU32,
    /// `u64::MAX`: not known.
    device_latency_ns: AtomicU64,
    /// Nanoseconds after `epoch` of the latest callback.
    last_callback_ns: AtomicU64,
    epoch: Instant,
    device_lost: AtomicBool,
    /// The output is past its start-up (see [`crate::warmup`]).
    warm: AtomicBool,
    callbacks: AtomicU64,
    callback_ns_total: AtomicU64,
    callback_ns_max: AtomicU64,
    underruns: AtomicU64,
    underrun_frames: AtomicU64,
    stalls: AtomicU64,
    /// The largest buffer a callback asked for, frames.
    max_period: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Shared {
    pub fn new(out_rate: u32) -> Self {
        Shared {
            cmds: ArrayQueue::new(CMD_CAPACITY),
            retired: Arc::new(ArrayQueue::new(RETIRED_CAPACITY)),
            trim: Arc::new(SharedTrim::default()),
            published: Mutex::new(Timeline::new(out_rate)),
            volume_bits: AtomicU32::new(1.0f32.to_bits()),
            latency_offset_ns: AtomicU64::new(0),
            out_rate: AtomicU32::new(out_rate),
            device_latency_ns: AtomicU64::new(u64::MAX),
            last_callback_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            device_lost: AtomicBool::new(false),
            warm: AtomicBool::new(false),
            callbacks: AtomicU64::new(0),
            callback_ns_total: AtomicU64::new(0),
            callback_ns_max: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            underrun_frames: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            max_period: AtomicU64::new(0),
        }
    }

    /// Queues a command; false (and the command dropped here, on the control side) if the
    /// queue is full.
    pub fn send(&self, seq: u64, cmd: Cmd) -> bool {
        self.cmds.push((seq, cmd)).is_ok()
    }

    pub fn next_cmd(&self) -> Option<(u64, Cmd)> {
        self.cmds.pop()
    }

    /// Drops the readers the callback retired (on a thread that may free memory).
    pub fn drop_retired(&self) {
        while let Some(r) = self.retired.pop() {
            drop(r);
        }
    }

    /// The copy of the timeline the callback published last.
    pub fn published(&self) -> MutexGuard<'_, Timeline> {
        // Only whole copies are ever written under this lock: a poisoned one is still whole.
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `tl` unless a reader holds the copy (then the next callback does).
    pub fn publish(&self, tl: &Timeline) {
        if let Ok(mut p) = self.published.try_lock() {
            p.copy_from(tl);
        }
    }

    pub fn volume(&self) -> f32 {
        f32::from_bits(self.volume_bits.load(Ordering::Relaxed))
    }
    pub fn set_volume(&self, v: f32) {
        self.volume_bits.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn latency_offset(&self) -> Duration {
        Duration::from_nanos(self.latency_offset_ns.load(Ordering::Relaxed))
    }
    pub fn set_latency_offset(&self, d: Duration) {
        self.latency_offset_ns.store(nanos(d), Ordering::Relaxed);
    }

    pub fn out_rate(&self) -> u32 {
        self.out_rate.load(Ordering::Relaxed)
    }
    pub fn set_out_rate(&self, rate: u32) {
        self.out_rate.store(rate, Ordering::Relaxed);
    }

    pub fn device_latency(&self) -> Option<Duration> {
        match self.device_latency_ns.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }
    pub fn set_device_latency(&self, d: Option<Duration>) {
        self.device_latency_ns
            .store(d.map_or(u64::MAX, nanos), Ordering::Relaxed);
    }

    /// Marks a callback as just run (the device watchdog reads it).
    pub fn beat(&self) {
        self.last_callback_ns
            .store(nanos(self.epoch.elapsed()), Ordering::Relaxed);
    }

    /// Time since the latest callback (or since [`Shared::beat`] was last called for a new
    /// stream).
    pub fn since_last_callback(&self) -> Duration {
        let last = Duration::from_nanos(self.last_callback_ns.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub fn device_lost(&self) -> bool {
        self.device_lost.load(Ordering::Relaxed)
    }
    pub fn set_device_lost(&self, lost: bool) {
        self.device_lost.store(lost, Ordering::Relaxed);
    }

    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }
    pub fn set_warm(&self, warm: bool) {
        self.warm.store(warm, Ordering::Release);
    }

    /// Records one callback's render time.
    pub fn record_callback(&self, took: Duration) {
        let ns = nanos(took);
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        self.callback_ns_total.fetch_add(ns, Ordering::Relaxed);
        self.callback_ns_max.fetch_max(ns, Ordering::Relaxed);
    }

    /// Records the size of a buffer a callback asked for.
    pub fn record_period(&self, frames: usize) {
        self.max_period.fetch_max(frames as u64, Ordering::Relaxed);
    }

    /// Blocks a new track's ring gets on this output.
    pub fn ring_blocks(&self) -> usize {
        let period = self.max_period.load(Ordering::Relaxed);
        crate::ring::ring_blocks(usize::try_from(period).unwrap_or(usize::MAX / 4))
    }

    /// Records an underrun of `frames` output frames.
    pub fn record_underrun(&self, frames: u64) {
        self.underruns.fetch_add(1, Ordering::Relaxed);
        self.underrun_frames.fetch_add(frames, Ordering::Relaxed);
    }

    pub fn record_stall(&self) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn callback_stats(&self) -> CallbackStats {
        let callbacks = self.callbacks.load(Ordering::Relaxed);
        let total = self.callback_ns_total.load(Ordering::Relaxed);
        CallbackStats {
            callbacks,
            underruns: self.underruns.load(Ordering::Relaxed),
            underrun_frames: self.underrun_frames.load(Ordering::Relaxed),
            stalls: self.stalls.load(Ordering::Relaxed),
            mean: Duration::from_nanos(total.checked_div(callbacks).unwrap_or(0)),
            max: Duration::from_nanos(self.callback_ns_max.load(Ordering::Relaxed)),
        }
    }
}

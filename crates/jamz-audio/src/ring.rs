//! The decode-ahead ring between a track's decode thread and the audio callback.
//!
//! A track is decoded and resampled on a thread of its own ([`spawn_decode_ahead`]) into a
//! fixed set of blocks that circulate between two bounded lock-free queues: the thread takes
//! a free block, fills it and queues it as filled; the callback ([`Reader`]) copies out of
//! filled blocks and hands them back. Nothing is allocated, freed or locked on the callback's
//! side, and a decode that is slow (a busy machine, a file on a slow disk) only drains the
//! ring: the callback plays what is there and counts an underrun when it runs dry.
//!
//! Every block carries the track position of its first frame and the step (source frames per
//! output frame) it was resampled at, so positions stay exact whatever the trim was when the
//! block was made.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use crate::error::{AudioError, Result};
use crate::stream::Wanted;
use crate::track::{OUT_CHANNELS, Source, TrackStream};

/// Output frames per block: one resampler chunk (256 frames, 5.3 ms at 48 kHz), so a block is
/// made at one rate step.
pub(crate) const BLOCK_FRAMES: usize = crate::track::RESAMPLER_CHUNK;

/// Blocks per track, at least: 96 x 256 frames = 0.5 s at 48 kHz decoded ahead. On a
/// two-core machine with every core busy (the benchmark's load on top of other builds), a
/// 170 ms ring ran dry in two of four 10 s runs: a waking thread can wait that long for a
/// core. It is also how long a rate trim takes to be heard: the engine asks for positions
/// every 200 ms and corrects by 20 % of the error per second, so half a second of delay in
/// that loop changes nothing it can see.
pub(crate) const RING_BLOCKS: usize = 96;

/// Blocks decoded on the caller's thread when a track is opened, before it is scheduled:
/// 32 blocks (170 ms at 48 kHz) are far more than a start needs before its decode thread
/// runs, and keep `start()` quick; the thread fills the rest.
pub(crate) const PREFILL_BLOCKS: usize = 32;

/// A device asking for large buffers (a sound server's stream without a low-latency reader
/// can ask for tenths of a second at once) gets a ring of this many of its largest buffers,
/// if that is more than [`RING_BLOCKS`]: the callback must find a whole buffer, and the next
/// one being made, in the ring.
const RING_PERIODS: usize = 3;

/// Blocks for a ring on a device whose largest buffer so far is `period_frames`.
pub(crate) fn ring_blocks(period_frames: usize) -> usize {
    RING_BLOCKS.max((RING_PERIODS * period_frames).div_ceil(BLOCK_FRAMES))
}

/// How often a decode thread tops its ring up: 5 ms refills the ring long before it drains,
/// and a sleeping thread costs nothing.
const FILL_PERIOD: Duration = Duration::from_millis(5);

/// A piece of a track at the output rate.
pub(crate) struct Block {
    samples: Box<[f32]>,
    frames: usize,
    /// Source frame (file timeline) of the first frame.
    src_pos: f64,
    /// Source frames per output frame.
    step: f64,
    /// The track ends after this block.
    last: bool,
}

impl Block {
    fn new() -> Self {
        Block {
            samples: vec![0.0; BLOCK_FRAMES * OUT_CHANNELS].into_boxed_slice(),
            frames: 0,
            src_pos: 0.0,
            step: 1.0,
            last: false,
        }
    }
}

/// What the two sides of one track share.
pub(crate) struct Ring {
    filled: ArrayQueue<Block>,
    free: ArrayQueue<Block>,
    /// A decode error that ended the track, set before its last block is queued.
    error: Mutex<Option<AudioError>>,
}

/// The trim in force (ppm, as `f64` bits), read by every decode thread before each block.
#[derive(Debug, Default)]
pub(crate) struct SharedTrim(AtomicU64);

impl SharedTrim {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub fn set(&self, ppm: f64) {
        self.0.store(ppm.to_bits(), Ordering::Relaxed);
    }
}

/// The decode side of a track: its decoder and resampler, filling the ring.
pub(crate) struct Producer {
    stream: TrackStream,
    ring: Arc<Ring>,
    done: bool,
}

/// What [`Reader::pull`] got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pulled {
    /// `frames` frames, all of one block: the first at `position_s` of the track, each
    /// `seconds_per_frame` after the one before.
    Frames {
        frames: usize,
        position_s: f64,
        seconds_per_frame: f64,
    },
    /// The ring is empty: the decode thread is behind.
    Underrun,
    /// The track has ended.
    Ended,
}

/// The callback's side of a track: copies frames out of the ring, never blocks.
pub(crate) struct Reader {
    pub id: Arc<str>,
    ring: Arc<Ring>,
    src_rate: f64,
    block: Option<Block>,
    off: usize,
    /// Frames still to drop before the next one is played: a late start catching up, or an
    /// underrun keeping the track on its timeline.
    skip: u64,
    ended: bool,
    /// Cleared when this reader is let go of: a decode thread waiting for a stream's bytes
    /// then stops.
    wanted: Wanted,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("id", &self.id)
            .field("skip", &self.skip)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// Opens `source` at `position_s` and fills the start of its ring on the calling thread (so the
/// first frames are ready the moment the reader is scheduled); the producer keeps it full.
pub(crate) fn open(
    source: &Source,
    position_s: f64,
    out_rate: u32,
    trim_ppm: f64,
    blocks: usize,
) -> Result<(Reader, Producer)> {
    let wanted: Wanted = Arc::new(AtomicBool::new(true));
    open_wanted(source, position_s, out_rate, trim_ppm, blocks, wanted)
}

/// [`open`], with the flag that says whether the track is still wanted: cleared while it is
/// being opened (a later command superseded its start), a stream's read that waits for bytes
/// gives up and the open fails; once the reader exists, it clears it when let go of.
pub(crate) fn open_wanted(
    source: &Source,
    position_s: f64,
    out_rate: u32,
    trim_ppm: f64,
    blocks: usize,
    wanted: Wanted,
) -> Result<(Reader, Producer)> {
    let stream = TrackStream::prepare(source, position_s, out_rate, trim_ppm, &wanted)?;
    let blocks = blocks.max(1);
    let ring = Arc::new(Ring {
        filled: ArrayQueue::new(blocks),
        free: ArrayQueue::new(blocks),
        error: Mutex::new(None),
    });
    for _ in 0..blocks {
        // The queue was made with room for exactly these blocks.
        let _ = ring.free.push(Block::new());
    }
    let reader = Reader {
        id: stream.id.clone(),
        ring: ring.clone(),
        src_rate: f64::from(stream.src_rate()),
        block: None,
        off: 0,
        skip: 0,
        ended: false,
        wanted,
    };
    let mut producer = Producer {
        stream,
        ring,
        done: false,
    };
    producer.fill_up_to(trim_ppm, PREFILL_BLOCKS);
    Ok((reader, producer))
}

impl Producer {
    /// Fills every free block; false once the track's last block is queued.
    pub fn fill(&mut self, trim_ppm: f64) -> bool {
        self.fill_up_to(trim_ppm, usize::MAX)
    }

    /// Fills at most `blocks` free blocks; false once the track's last block is queued.
    fn fill_up_to(&mut self, trim_ppm: f64, blocks: usize) -> bool {
        if self.done {
            return false;
        }
        self.stream.set_trim(trim_ppm);
        for _ in 0..blocks {
            let Some(mut b) = self.ring.free.pop() else {
                break;
            };
            b.src_pos = self.stream.src_pos();
            let (frames, step) = self.stream.pull_block(&mut b.samples);
            b.frames = frames;
            b.step = step;
            b.last = frames == 0 || self.stream.finished() || self.stream.error.is_some();
            if b.last {
                if let Some(e) = self.stream.error.take()
                    && let Ok(mut slot) = self.ring.error.lock()
                {
                    *slot = Some(e);
                }
                self.done = true;
            }
            // Never full: the ring's blocks all fit in either queue.
            let _ = self.ring.filled.push(b);
            if self.done {
                return false;
            }
        }
        true
    }

    /// True once nobody reads this track any more.
    fn abandoned(&self) -> bool {
        Arc::strong_count(&self.ring) == 1
    }
}

/// Runs `producer` on a thread of its own until its track ends or its reader is dropped.
/// `retired` holds readers the callback let go of (dropping them there would free memory on
/// the audio thread); decode threads drop them.
pub(crate) fn spawn_decode_ahead(
    mut producer: Producer,
    trim: Arc<SharedTrim>,
    retired: Arc<ArrayQueue<Reader>>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("jamz-audio-decode".into())
        .spawn(move || {
            loop {
                while let Some(r) = retired.pop() {
                    drop(r);
                }
                if producer.abandoned() || !producer.fill(trim.get()) {
                    return;
                }
                std::thread::sleep(FILL_PERIOD);
            }
        })
        .map(|_| ())
        .map_err(|e| AudioError::Device(format!("cannot start a decode thread: {e}")))
}

impl Reader {
    /// Copies the next frames into `out` (stereo interleaved), from one block at most.
    pub fn pull(&mut self, out: &mut [f32]) -> Pulled {
        let want = out.len() / OUT_CHANNELS;
        loop {
            if self.ended {
                return Pulled::Ended;
            }
            let Some(b) = self.block.as_ref().filter(|b| self.off < b.frames) else {
                if let Some(b) = self.block.take() {
                    let last = b.last;
                    let _ = self.ring.free.push(b);
                    if last {
                        self.ended = true;
                        continue;
                    }
                }
                match self.ring.filled.pop() {
                    Some(b) => {
                        self.block = Some(b);
                        self.off = 0;
                        continue;
                    }
                    None => return Pulled::Underrun,
                }
            };
            let avail = b.frames - self.off;
            if self.skip > 0 {
                let n = avail.min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.off += n;
                self.skip -= n as u64;
                continue;
            }
            let n = avail.min(want);
            let from = self.off * OUT_CHANNELS;
            out[..n * OUT_CHANNELS].copy_from_slice(&b.samples[from..from + n * OUT_CHANNELS]);
            let position_s = (b.src_pos + self.off as f64 * b.step) / self.src_rate;
            self.off += n;
            return Pulled::Frames {
                frames: n,
                position_s,
                seconds_per_frame: b.step / self.src_rate,
            };
        }
    }

    /// Fills as much of `out` as the ring holds (a fading track: its positions do not matter);
    /// returns the frames written.
    pub fn pull_all(&mut self, out: &mut [f32]) -> usize {
        let want = out.len() / OUT_CHANNELS;
        let mut done = 0;
        while done < want {
            match self.pull(&mut out[done * OUT_CHANNELS..]) {
                Pulled::Frames { frames, .. } if frames > 0 => done += frames,
                _ => break,
            }
        }
        done
    }

    /// Nobody will play this track any more: its decode thread may stop waiting for bytes
    /// (an atomic store: fine on the audio thread).
    pub fn abandon(&self) {
        self.wanted.store(false, Ordering::Relaxed);
    }

    /// Drops the next `frames` frames as they arrive.
    pub fn skip(&mut self, frames: u64) {
        self.skip = self.skip.saturating_add(frames);
    }

    /// Position of the next frame, seconds, if a block is at hand.
    pub fn position_s(&self) -> Option<f64> {
        let b = self.block.as_ref()?;
        Some((b.src_pos + self.off as f64 * b.step) / self.src_rate)
    }

    /// The decode error that ended the track, if one did (taken once).
    pub fn take_error(&self) -> Option<AudioError> {
        self.ring.error.try_lock().ok().and_then(|mut e| e.take())
    }
}

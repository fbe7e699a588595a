//! One source on its way to the output: decoder, channel map to stereo, rate conversion to the
//! output rate with the rate trim applied (rubato), and exact position bookkeeping.

use std::path::PathBuf;
use std::sync::Arc;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Adjustable, Async, FixedAsync, Resampler, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use crate::decode::Decoder;
use crate::error::{AudioError, Result};
use crate::stream::{OpenStream, Patient, Wanted};

/// The mixer's fixed format: interleaved stereo `f32`.
pub(crate) const OUT_CHANNELS: usize = 2;

/// Output frames per resampler call. 256 frames is 5.3 ms at 48 kHz: small enough that a trim
/// change takes effect within one device callback (cpal's ALSA path uses 512-frame callbacks,
/// docs/architecture.md ("real-time audio without a sound card")), large enough to keep the per-call overhead low.
pub(crate) const RESAMPLER_CHUNK: usize = 256;

/// Sinc filter length (taps). rubato's docs call 256 "a good starting point"; 128 halves the cost
/// and still puts the stop band well above 90 dB with a Blackman-Harris window, which is below
/// what any car stereo reproduces. It also sets the resampler delay (64 input frames).
const SINC_LEN: usize = 128;

/// Oversampling of the sinc table; with linear interpolation between table points, 256 keeps
/// the interpolation error below the filter's own stop band (rubato's examples use 256).
const SINC_OVERSAMPLING: usize = 256;

/// Largest relative ratio change the resampler is built for. The trim band is +-1000 ppm
/// ([`crate::MAX_RATE_TRIM_PPM`]); 1 % leaves room without widening the filter transition much.
const MAX_RELATIVE_RATIO: f64 = 1.01;

/// A source's identity and bytes, as the caller names them: a local file, or a stream (a
/// download still arriving, see [`crate::stream`]).
#[derive(Clone)]
pub struct Source {
    /// Opaque track id chosen by the caller; echoed in positions and events.
    pub id: String,
    /// A local file (the cache's copy); for a stream, the name used in errors, whose
    /// extension hints the format.
    pub path: PathBuf,
    /// Where the bytes come from when they are not (all) in a file yet.
    pub stream: Option<Arc<dyn OpenStream>>,
}

impl Source {
    pub fn new(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Source {
            id: id.into(),
            path: path.into(),
            stream: None,
        }
    }

    /// A source read from `stream` (opened anew for every start, seek or resume); `name`
    /// names it in errors and its extension, if any, hints the format.
    pub fn streaming(
        id: impl Into<String>,
        name: impl Into<PathBuf>,
        stream: Arc<dyn OpenStream>,
    ) -> Self {
        Source {
            id: id.into(),
            path: name.into(),
            stream: Some(stream),
        }
    }

    /// Opens its decoder; a stream's reads wait for bytes while `wanted` holds.
    fn open_decoder(&self, wanted: &Wanted) -> Result<Decoder> {
        match &self.stream {
            None => Decoder::open(&self.path),
            Some(s) => {
                let io_err = |source| AudioError::Io {
                    path: self.path.clone(),
                    source,
                };
                let main = Patient::new(s.open().map_err(io_err)?, wanted.clone());
                let edit = Patient::new(s.open().map_err(io_err)?, wanted.clone());
                Decoder::open_stream(&self.path, Box::new(main), edit)
            }
        }
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("stream", &self.stream.is_some())
            .finish()
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        let same_stream = match (&self.stream, &other.stream) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.id == other.id && self.path == other.path && same_stream
    }
}

impl Eq for Source {}

/// A prepared, positioned source producing stereo frames at the output rate.
pub(crate) struct TrackStream {
    pub id: Arc<str>,
    decoder: Decoder,
    src_rate: u32,
    src_ch: usize,
    out_rate: u32,
    resampler: Async<f32>,
    /// Stereo input at the source rate waiting for the resampler.
    in_fifo: Vec<f32>,
    /// Stereo output at the output rate not yet handed out, and the read offset into it.
    out_fifo: Vec<f32>,
    out_off: usize,
    /// Source frames per output frame of the frames now in `out_fifo`.
    fifo_step: f64,
    /// Source frames per output frame at the current trim.
    step: f64,
    /// The trim `step` was made for, ppm.
    trim_ppm: f64,
    /// Position (source frames, file timeline) of the next output frame.
    src_pos: f64,
    /// Source frame where the file ended, once the decoder reached it.
    end_frame: Option<u64>,
    /// A decode error met mid-track; the track ends there.
    pub error: Option<AudioError>,
}

impl std::fmt::Debug for TrackStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackStream")
            .field("id", &self.id)
            .field("src_pos", &self.src_pos)
            .finish_non_exhaustive()
    }
}

fn ratio(src_rate: u32, out_rate: u32, trim_ppm: f64) -> f64 {
    f64::from(out_rate) / (f64::from(src_rate) * (1.0 + trim_ppm * 1e-6))
}

impl TrackStream {
    /// Opens `source`, seeks to `position_s` and primes the resampler so that the first output
    /// frame is the source frame at `position_s`. Runs on the caller's thread, never in the
    /// audio callback.
    pub fn prepare(
        source: &Source,
        position_s: f64,
        out_rate: u32,
        trim_ppm: f64,
        wanted: &Wanted,
    ) -> Result<Self> {
        if !position_s.is_finite() || position_s < 0.0 {
            return Err(AudioError::InvalidArgument(format!(
                "position {position_s} s"
            )));
        }
        let mut decoder = source.open_decoder(wanted)?;
        let src_rate = decoder.info().sample_rate;
        let src_ch = decoder.info().channels.max(1);
        let start_frame = (position_s * f64::from(src_rate)).round() as u64;
        if start_frame > 0 {
            decoder.seek(start_frame)?;
        }
        let params = SincInterpolationParameters::new(SINC_LEN, WindowFunction::Blackman2)
            .oversampling_factor(SINC_OVERSAMPLING)
            .interpolation(SincInterpolationType::Linear);
        let r = ratio(src_rate, out_rate, trim_ppm);
        let resampler = Async::<f32>::new_sinc(
            r,
            MAX_RELATIVE_RATIO,
            &params,
            RESAMPLER_CHUNK,
            OUT_CHANNELS,
            FixedAsync::Output,
        )
        .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let step = 1.0 / r;
        let mut t = TrackStream {
            id: Arc::from(source.id.as_str()),
            decoder,
            src_rate,
            src_ch,
            out_rate,
            resampler,
            in_fifo: Vec::new(),
            out_fifo: Vec::new(),
            out_off: 0,
            fifo_step: step,
            step,
            trim_ppm,
            src_pos: start_frame as f64,
            end_frame: None,
            error: None,
        };
        // Drop the resampler's delay, as rubato's own process_all does, so that output frame 0
        // is input frame 0.
        let delay = t.resampler.output_delay();
        t.discard(delay);
        t.src_pos = start_frame as f64;
        if let Some(e) = t.error.take() {
            return Err(e);
        }
        Ok(t)
    }

    /// The file's sample rate.
    pub fn src_rate(&self) -> u32 {
        self.src_rate
    }

    /// Position of the next output frame, in source frames (the file's timeline).
    pub fn src_pos(&self) -> f64 {
        self.src_pos
    }

    /// Applies a rate trim from the next resampler chunk on (no ramp: a step of at most
    /// 1000 ppm is a 1.7-cent pitch change and leaves the waveform continuous).
    pub fn set_trim(&mut self, trim_ppm: f64) {
        if trim_ppm == self.trim_ppm {
            return;
        }
        let r = ratio(self.src_rate, self.out_rate, trim_ppm);
        if self.resampler.set_resample_ratio(r, false).is_ok() {
            self.step = 1.0 / r;
            self.trim_ppm = trim_ppm;
        }
    }

    /// True once every frame of the file has been handed out.
    pub fn finished(&self) -> bool {
        matches!(self.end_frame, Some(end) if self.src_pos >= end as f64 - 0.5 * self.step)
    }

    /// Pulls and drops `frames` output frames (a late start catching up).
    pub fn discard(&mut self, frames: usize) {
        let mut scratch = vec![0.0f32; RESAMPLER_CHUNK * OUT_CHANNELS];
        let mut left = frames;
        while left > 0 {
            let n = left.min(RESAMPLER_CHUNK);
            let got = self.pull(&mut scratch[..n * OUT_CHANNELS]);
            if got == 0 {
                break;
            }
            left -= got;
        }
    }

    /// Fills `out` (stereo interleaved) with the next frames; returns how many frames were
    /// written, fewer than asked only at the end of the track (or on a decode error).
    pub fn pull(&mut self, out: &mut [f32]) -> usize {
        let want = out.len() / OUT_CHANNELS;
        let mut done = 0;
        while done < want {
            let (n, _) = self.pull_block(&mut out[done * OUT_CHANNELS..]);
            if n == 0 {
                break;
            }
            done += n;
        }
        done
    }

    /// Fills the start of `out` with frames of one resampler chunk (all at one step); returns
    /// how many frames were written (0 at the end of the track) and their step (source frames
    /// per output frame).
    pub fn pull_block(&mut self, out: &mut [f32]) -> (usize, f64) {
        let want = out.len() / OUT_CHANNELS;
        if want == 0 || self.finished() {
            return (0, self.fifo_step);
        }
        if self.out_off * OUT_CHANNELS >= self.out_fifo.len() && !self.produce_chunk() {
            return (0, self.fifo_step);
        }
        let avail = self.out_fifo.len() / OUT_CHANNELS - self.out_off;
        let mut n = avail.min(want);
        if let Some(end) = self.end_frame {
            // Stop exactly at the file's last frame, not at the resampler's flushed tail.
            let left = ((end as f64 - self.src_pos) / self.fifo_step)
                .ceil()
                .max(0.0) as usize;
            n = n.min(left);
            if n == 0 {
                self.src_pos = end as f64;
                return (0, self.fifo_step);
            }
        }
        let from = self.out_off * OUT_CHANNELS;
        out[..n * OUT_CHANNELS].copy_from_slice(&self.out_fifo[from..from + n * OUT_CHANNELS]);
        self.out_off += n;
        self.src_pos += n as f64 * self.fifo_step;
        (n, self.fifo_step)
    }

    /// Runs the resampler once into `out_fifo`. False when nothing more can come.
    fn produce_chunk(&mut self) -> bool {
        let need = self.resampler.input_frames_next();
        while self.in_fifo.len() < need * OUT_CHANNELS {
            if self.end_frame.is_some() {
                // Flush the filter's tail with silence.
                self.in_fifo.resize(need * OUT_CHANNELS, 0.0);
                break;
            }
            match self.decoder.next_chunk() {
                Ok(Some(chunk)) => push_stereo(&mut self.in_fifo, chunk, self.src_ch),
                Ok(None) => self.end_frame = Some(self.decoder.position()),
                Err(e) => {
                    tracing::warn!(track = %self.id, error = %e, "decode error: ending track");
                    self.end_frame = Some(self.decoder.position());
                    self.error = Some(e);
                }
            }
        }
        self.out_fifo.resize(RESAMPLER_CHUNK * OUT_CHANNELS, 0.0);
        let (Ok(input), Ok(mut output)) = (
            InterleavedSlice::new(&self.in_fifo[..], OUT_CHANNELS, need),
            InterleavedSlice::new_mut(&mut self.out_fifo[..], OUT_CHANNELS, RESAMPLER_CHUNK),
        ) else {
            return false;
        };
        match self
            .resampler
            .process_into_buffer(&input, &mut output, None)
        {
            Ok((read, written)) => {
                self.in_fifo.drain(..read * OUT_CHANNELS);
                self.out_fifo.truncate(written * OUT_CHANNELS);
                self.out_off = 0;
                self.fifo_step = self.step;
                written > 0
            }
            Err(e) => {
                tracing::warn!(track = %self.id, error = %e, "resampler error: ending track");
                self.error = Some(AudioError::Resampler(e.to_string()));
                self.end_frame = Some(self.src_pos as u64);
                false
            }
        }
    }
}

/// Appends interleaved `chunk` of `ch` channels to `fifo` as stereo: mono is doubled, more than
/// two channels keep the first two (front left and right in every container we decode).
fn push_stereo(fifo: &mut Vec<f32>, chunk: &[f32], ch: usize) {
    match ch {
        2 => fifo.extend_from_slice(chunk),
        1 => {
            for &s in chunk {
                fifo.extend_from_slice(&[s, s]);
            }
        }
        _ => {
            for frame in chunk.chunks_exact(ch) {
                fifo.extend_from_slice(&frame[..2]);
            }
        }
    }
}

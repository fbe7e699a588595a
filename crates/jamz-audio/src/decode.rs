//! Decoding local files to interleaved `f32` with symphonia, with sample-accurate seeking.
//!
//! [`Decoder`] is usable on its own (the cache and the node open local files with it) and is
//! what the player feeds from. Positions are counted in frames of the file's own sample rate.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::units::{TimeBase, Timestamp};

use crate::error::{AudioError, Result};
use crate::mp4_edit::{self, RawEdit};

/// How many packets in a row may fail to decode before the file is declared corrupt. A lossy
/// stream with a damaged frame is still worth playing (the decoder resynchronises on the next
/// frame header), but a file where nothing decodes must fail rather than spin. 64 packets is
/// about 1.5 s of MP3 (1152 frames per packet at 44.1 kHz): longer than any plausible burst of
/// damage in a file that is otherwise good.
const MAX_CONSECUTIVE_DECODE_ERRORS: u32 = 64;

/// Largest channel count we accept from a stream. Symphonia supports up to 32 positioned
/// channels; anything claiming more is corrupt input.
const MAX_CHANNELS: usize = 32;

/// Highest sample rate we accept (DXD is 352.8 kHz; 768 kHz is the largest rate any consumer
/// DAC advertises). Anything above is a corrupt header.
const MAX_SAMPLE_RATE: u32 = 768_000;

/// How far short of its stated length a stream may end before we call it truncated. Encoders
/// state lengths that are off by the codec's priming/padding (an MP3 Xing header counts whole
/// 1152-frame packets; AAC adds 1024-2048 frames of priming), so allow a few packets: 8192
/// frames (0.19 s at 44.1 kHz) is above any codec's delay plus padding.
const TRUNCATION_SLACK_FRAMES: u64 = 8192;

/// Pre-roll before a seek target for lossy codecs: 4096 frames covers two MP3 packets (2 x 1152:
/// one for the MDCT overlap, one for the bit reservoir, which symphonia's reader also rewinds
/// for), two AAC frames (2 x 1024) and Vorbis's usual long block (2048). It costs under 0.1 s of
/// decoding per seek.
const LOSSY_SEEK_PREROLL_FRAMES: u64 = 4096;

/// What a decoded stream is.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// Frames per second of the decoded audio.
    pub sample_rate: u32,
    /// Interleaved channels in every chunk [`Decoder::next_chunk`] returns.
    pub channels: usize,
    /// Number of playable frames, if the container states it.
    pub frames: Option<u64>,
    /// Short codec name, e.g. "mp3", "flac".
    pub codec: String,
}

impl AudioInfo {
    /// Duration in seconds, if the frame count is known.
    pub fn duration_s(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / f64::from(self.sample_rate))
    }
}

/// A whole file decoded into memory.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    pub channels: usize,
    /// Interleaved samples, `channels` per frame.
    pub samples: Vec<f32>,
}

impl DecodedAudio {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }
}

/// Decodes a whole file into memory.
pub fn decode_file(path: &Path) -> Result<DecodedAudio> {
    let mut dec = Decoder::open(path)?;
    let mut samples = Vec::new();
    while let Some(chunk) = dec.next_chunk()? {
        samples.extend_from_slice(chunk);
    }
    Ok(DecodedAudio {
        sample_rate: dec.info().sample_rate,
        channels: dec.info().channels,
        samples,
    })
}

/// A streaming decoder over one local file: interleaved `f32` chunks, sample-accurate seek.
pub struct Decoder {
    path: PathBuf,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    time_base: TimeBase,
    info: AudioInfo,
    /// Frame index (in the decoded stream, priming included) of the first frame the next
    /// chunk returns.
    position: u64,
    /// Decoded frames before the audio (an MP4 edit list's priming); positions outside are
    /// counted from the first frame after them.
    lead: u64,
    /// Decoded frame (priming included) where the audio ends, if the edit list says.
    end: Option<u64>,
    /// After a seek: frames to drop until `position` reaches this target.
    seek_target: Option<u64>,
    /// Reusable output buffer.
    buf: Vec<f32>,
    /// Samples decoded during `open` to learn the channel count, returned first.
    primed: bool,
    /// Set by a seek: take the position from the next packet's timestamp.
    reanchor: bool,
    eof: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

pub(crate) fn probe(path: &Path) -> Result<Box<dyn FormatReader>> {
    let file = File::open(path).map_err(|source| AudioError::Io {
        path: path.to_owned(),
        source,
    })?;
    probe_source(path, Box::new(file))
}

/// Probes any media source; `name` names it in errors and its extension hints the format.
fn probe_source(name: &Path, source: Box<dyn MediaSource>) -> Result<Box<dyn FormatReader>> {
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = name.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    guard(name, || {
        symphonia::default::get_probe().probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
    })
    .map_err(|e| map_err(name, e))
}

/// Runs a symphonia call, turning a panic inside it into a decode error: input from disk must
/// never take the process down, and a codec library bug on a hostile file is exactly such input.
/// (The random-flip and truncation tests found none; this is the belt to their braces.)
fn guard<T>(path: &Path, f: impl FnOnce() -> Result<T, SymError>) -> Result<T, SymError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(path = %path.display(), "symphonia panicked on this file");
            Err(SymError::DecodeError("decoder panicked on malformed input"))
        }
    }
}

/// Maps a symphonia error to ours, naming the file.
pub(crate) fn map_err(path: &Path, e: SymError) -> AudioError {
    let path = path.to_owned();
    match e {
        SymError::Unsupported(what) => AudioError::Unsupported {
            path,
            detail: what.to_string(),
        },
        SymError::IoError(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Corrupt {
                path,
                detail: "truncated (unexpected end of file)".into(),
            }
        }
        SymError::IoError(source) => AudioError::Io { path, source },
        other => AudioError::Corrupt {
            path,
            detail: other.to_string(),
        },
    }
}

impl Decoder {
    /// Opens a file, finds its first audio track and prepares a decoder for it.
    pub fn open(path: &Path) -> Result<Self> {
        let edit = File::open(path)
            .ok()
            .and_then(|f| mp4_edit::read_edit(std::io::BufReader::new(f)));
        Self::from_reader(path, probe(path)?, edit)
    }

    /// Decodes a stream ([`crate::stream`]); `edit` is a second reader over the same bytes,
    /// read for an MP4 edit list. `name` is used in errors, its extension hints the format.
    pub(crate) fn open_stream(
        name: &Path,
        source: Box<dyn MediaSource>,
        edit: impl std::io::Read + std::io::Seek,
    ) -> Result<Self> {
        let edit = mp4_edit::read_edit(std::io::BufReader::new(edit));
        Self::from_reader(name, probe_source(name, source)?, edit)
    }

    /// Decodes a file held in memory (an upload, a cache entry being checked). `name` is used in
    /// errors, and its extension (if any) hints the format.
    pub fn from_bytes(name: impl AsRef<Path>, bytes: Vec<u8>) -> Result<Self> {
        let name = name.as_ref();
        let edit = mp4_edit::read_edit(std::io::Cursor::new(&bytes));
        let reader = probe_source(name, Box::new(std::io::Cursor::new(bytes)))?;
        Self::from_reader(name, reader, edit)
    }

    fn from_reader(
        path: &Path,
        reader: Box<dyn FormatReader>,
        edit: Option<RawEdit>,
    ) -> Result<Self> {
        let unsupported = |detail: &str| AudioError::Unsupported {
            path: path.to_owned(),
            detail: detail.to_string(),
        };
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or_else(|| unsupported("no audio track"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| unsupported("no audio codec parameters"))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| map_err(path, e))?;
        let sample_rate = params
            .sample_rate
            .filter(|r| (1..=MAX_SAMPLE_RATE).contains(r))
            .ok_or_else(|| AudioError::Corrupt {
                path: path.to_owned(),
                detail: "missing or absurd sample rate".into(),
            })?;
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        let time_base = track
            .time_base
            .or_else(|| TimeBase::try_from_recip(sample_rate))
            .unwrap_or_default();
        let stream_frames = track.num_frames.or_else(|| {
            track
                .duration
                .map(|d| ts_to_frames_u(time_base, sample_rate, d.get()))
        });
        let edit = edit.map(|e| e.at_rate(sample_rate));
        let lead = edit.map_or(0, |e| e.skip);
        let frames = match edit.and_then(|e| e.frames) {
            Some(f) => Some(f),
            None => stream_frames.map(|f| f.saturating_sub(lead)),
        };
        let end = edit.and_then(|e| e.frames).map(|f| f + lead);
        let info = AudioInfo {
            sample_rate,
            channels,
            frames,
            codec: decoder.codec_info().short_name.to_string(),
        };
        let track_id = track.id;
        let mut dec = Decoder {
            path: path.to_owned(),
            reader,
            decoder,
            track_id,
            time_base,
            info,
            position: 0,
            lead,
            end,
            seek_target: None,
            buf: Vec::new(),
            primed: false,
            reanchor: false,
            eof: false,
        };
        if dec.info.channels == 0 || dec.info.channels > MAX_CHANNELS {
            // The container did not say (or said nonsense): decode the first packet to learn it.
            dec.decode_next()?;
            dec.primed = true;
        }
        Ok(dec)
    }

    /// The stream's rate, channels, length and codec.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The file this decoder reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frame index of the first frame the next [`Decoder::next_chunk`] returns (frame 0 is
    /// the first frame of the audio, after any encoder priming).
    pub fn position(&self) -> u64 {
        self.raw_position() - self.lead
    }

    /// The same, counted in the decoded stream (priming included).
    fn raw_position(&self) -> u64 {
        self.seek_target.unwrap_or(self.position).max(self.lead)
    }

    /// Seeks so that the next chunk starts exactly at `frame`: the container seeks to the packet
    /// at or before it, then we decode and drop up to the target.
    pub fn seek(&mut self, frame: u64) -> Result<()> {
        let seek_err = |detail: String| AudioError::Seek {
            path: self.path.clone(),
            position_s: frame as f64 / f64::from(self.info.sample_rate),
            detail,
        };
        if let Some(total) = self.info.frames
            && frame > total
        {
            return Err(seek_err(format!("past the end ({total} frames)")));
        }
        // Lossy codecs need pre-roll: the first frame decoded after a jump has no MDCT overlap
        // (and, for MP3, maybe no bit reservoir), so its output is wrong. Land early and
        // decode-and-drop up to the target.
        let preroll = if self.is_lossless() {
            0
        } else {
            LOSSY_SEEK_PREROLL_FRAMES
        };
        let raw = frame + self.lead;
        let ts = frames_to_ts(
            self.time_base,
            self.info.sample_rate,
            raw.saturating_sub(preroll),
        );
        let track_id = self.track_id;
        let reader = &mut self.reader;
        let seeked = guard(&self.path, || {
            reader.seek(
                SeekMode::Accurate,
                SeekTo::Timestamp {
                    ts: Timestamp::new(ts),
                    track_id,
                },
            )
        })
        .map_err(|e| seek_err(e.to_string()))?;
        tracing::trace!(frame, ?seeked, "seek");
        self.decoder.reset();
        self.buf.clear();
        self.primed = false;
        self.eof = false;
        self.position = ts_to_frames(
            self.time_base,
            self.info.sample_rate,
            seeked.actual_ts.get(),
        )
        .max(0) as u64;
        self.seek_target = Some(raw);
        self.reanchor = true;
        Ok(())
    }

    /// Seeks to a position in seconds (see [`Decoder::seek`]).
    pub fn seek_seconds(&mut self, seconds: f64) -> Result<()> {
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(AudioError::InvalidArgument(format!(
                "seek position {seconds} s"
            )));
        }
        self.seek((seconds * f64::from(self.info.sample_rate)).round() as u64)
    }

    /// The next chunk of interleaved samples (`info().channels` per frame), or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>> {
        loop {
            if self.primed {
                self.primed = false;
            } else {
                if self.eof {
                    return Ok(None);
                }
                self.decode_next()?;
                if self.eof {
                    return Ok(None);
                }
            }
            let ch = self.info.channels.max(1);
            let frames = (self.buf.len() / ch) as u64;
            let first = self.position;
            self.position += frames;
            // The frames wanted: from a seek target or the end of the priming, to the end of
            // the edit.
            let from = self.seek_target.unwrap_or(0).max(self.lead);
            if first + frames <= from {
                continue;
            }
            self.seek_target = None;
            let mut upto = frames;
            if let Some(end) = self.end {
                if first >= end {
                    self.eof = true;
                    self.position = end;
                    return Ok(None);
                }
                if end - first < frames {
                    upto = end - first;
                    // Encoder padding after the audio: this chunk is the last.
                    self.eof = true;
                    self.position = end;
                }
            }
            let start = from.saturating_sub(first);
            if start >= upto {
                continue;
            }
            return Ok(Some(&self.buf[start as usize * ch..upto as usize * ch]));
        }
    }

    /// Reads and decodes one packet of our track into `self.buf`; sets `eof` at the end.
    fn decode_next(&mut self) -> Result<()> {
        let mut errors = 0u32;
        loop {
            let reader = &mut self.reader;
            let packet = match guard(&self.path, || reader.next_packet()) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.eof = true;
                    self.buf.clear();
                    return self.check_complete();
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.eof = true;
                    self.buf.clear();
                    return self.check_complete();
                }
                Err(SymError::ResetRequired) => {
                    // A chained Ogg stream: treat the end of the first logical stream as the end.
                    self.eof = true;
                    self.buf.clear();
                    return Ok(());
                }
                Err(SymError::DecodeError(msg)) => {
                    errors += 1;
                    if errors > MAX_CONSECUTIVE_DECODE_ERRORS {
                        return Err(self.corrupt(msg.to_string()));
                    }
                    continue;
                }
                Err(e) => return Err(map_err(&self.path, e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let pts_frame = ts_to_frames(self.time_base, self.info.sample_rate, packet.pts.get());
            let dur = ts_to_frames_u(self.time_base, self.info.sample_rate, packet.dur.get());
            let trim_start = ts_to_frames_u(
                self.time_base,
                self.info.sample_rate,
                packet.trim_start.get(),
            );
            let trim_end =
                ts_to_frames_u(self.time_base, self.info.sample_rate, packet.trim_end.get());
            let decoder = &mut self.decoder;
            let decoded = match guard(&self.path, || decoder.decode(&packet)) {
                Ok(d) => d,
                Err(SymError::DecodeError(msg)) => {
                    errors += 1;
                    if errors > MAX_CONSECUTIVE_DECODE_ERRORS {
                        return Err(self.corrupt(msg.to_string()));
                    }
                    continue;
                }
                Err(SymError::IoError(_)) => {
                    // A packet cut short: skip it like a decode error.
                    errors += 1;
                    if errors > MAX_CONSECUTIVE_DECODE_ERRORS {
                        return Err(self.corrupt("packets cut short".into()));
                    }
                    continue;
                }
                Err(e) => return Err(map_err(&self.path, e)),
            };
            let spec_ch = decoded.spec().channels().count();
            if spec_ch == 0 || spec_ch > MAX_CHANNELS {
                return Err(self.corrupt(format!("{spec_ch} channels")));
            }
            if self.info.channels == 0 || self.info.channels > MAX_CHANNELS {
                self.info.channels = spec_ch;
            } else if spec_ch != self.info.channels {
                return Err(self.corrupt(format!(
                    "channel count changed mid-stream ({} -> {spec_ch})",
                    self.info.channels
                )));
            }
            let n = decoded.frames() as u64;
            // Gapless: decoders that trim delay and padding themselves return `dur` frames; for
            // those that don't, trim here when the arithmetic says the packet is untrimmed.
            let trims = trim_start + trim_end;
            let first_frame = if trims > 0 && n == dur + trims {
                let (a, b) = (trim_start as usize, (n - trim_end) as usize);
                decoded.slice(a..b).copy_to_vec_interleaved(&mut self.buf);
                pts_frame + trim_start as i64
            } else {
                decoded.copy_to_vec_interleaved(&mut self.buf);
                if trims > 0 && n == dur {
                    // The decoder trimmed: the first frame left is `trim_start` after the pts.
                    pts_frame + trim_start as i64
                } else {
                    pts_frame
                }
            };
            if self.reanchor && !self.buf.is_empty() {
                // The first packet with output after a seek (a Vorbis decoder's first packet
                // after a reset only primes it): its timestamp says where its frames sit.
                self.reanchor = false;
                self.position = first_frame.max(0) as u64;
            }
            return Ok(());
        }
    }

    /// PCM and FLAC decode any packet on its own; everything else needs pre-roll after a seek.
    fn is_lossless(&self) -> bool {
        let c = self.info.codec.as_str();
        c.starts_with("pcm") || c == "flac" || c == "alac"
    }

    /// At the end of the stream: a file that stops well short of the length its header states
    /// is truncated, and says so.
    fn check_complete(&self) -> Result<()> {
        match self.info.frames {
            Some(total) if self.position() + TRUNCATION_SLACK_FRAMES < total => Err(self.corrupt(
                format!("truncated: ends at frame {} of {total}", self.position()),
            )),
            _ => Ok(()),
        }
    }

    fn corrupt(&self, detail: String) -> AudioError {
        AudioError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

/// Converts a timestamp in `tb` units to frames at `rate` (floor; i128 avoids overflow).
fn ts_to_frames(tb: TimeBase, rate: u32, ts: i64) -> i64 {
    let v =
        i128::from(ts) * i128::from(tb.numer.get()) * i128::from(rate) / i128::from(tb.denom.get());
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn ts_to_frames_u(tb: TimeBase, rate: u32, ts: u64) -> u64 {
    ts_to_frames(tb, rate, i64::try_from(ts).unwrap_or(i64::MAX)).max(0) as u64
}

/// Converts frames at `rate` to a timestamp in `tb` units.
fn frames_to_ts(tb: TimeBase, rate: u32, frames: u64) -> i64 {
    let v = i128::from(frames) * i128::from(tb.denom.get())
        / (i128::from(tb.numer.get()) * i128::from(rate.max(1)));
    v.clamp(0, i128::from(i64::MAX)) as i64
}

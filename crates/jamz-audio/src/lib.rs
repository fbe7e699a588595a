//! # jamz-audio: the native audio engine
//!
//! Decode (symphonia: MP3, AAC/M4A, FLAC, Ogg Vorbis, WAV), output (the default cpal device, a
//! named one from [`output_devices`], `null`, or `wav:PATH`), and a sample-accurate playback
//! clock with the primitives the sync engine needs: scheduled start, pause, seek, audible
//! position, rate trim, volume ramps, gapless queueing and a per-device latency offset.
//!
//! This crate is an adapter: it knows nothing of the other crates and needs no async runtime.
//! Track identity is an opaque string chosen by the caller.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use jamz_audio::{OutputSpec, Player, Source};
//!
//! # fn main() -> Result<(), jamz_audio::AudioError> {
//! let player = Player::new(&"default".parse::<OutputSpec>()?)?;
//! let at = Instant::now() + Duration::from_millis(300);
//! player.start(Source::new("t1", "/music/a.flac"), 12.5, at)?;
//! let heard = player.audible_position(at + Duration::from_secs(1)); // ~13.5 s of "t1"
//! player.set_rate_trim(250.0)?; // +250 ppm: catch up 0.25 ms per second
//! # let _ = heard; Ok(()) }
//! ```
//!
//! The clock model is the same for every output: each buffer is rendered with the instant its
//! first frame reaches the device (cpal's `OutputCallbackInfo::timestamp().playback`, mapped to
//! `Instant`; for `null`/`wav:` the write instant of a real-time-paced thread), plus the
//! latency offset; every other frame's instant follows from counting frames.

mod calibrate;
mod capture;
mod clock;
mod decode;
mod devices;
mod error;
pub mod latency;
mod mixer;
mod mp4_edit;
mod output;
#[cfg(feature = "test-support")]
pub mod parec;
mod player;
mod ring;
mod shared;
mod spec;
mod stream;
mod tags;
mod timeline;
mod track;
mod warmup;

pub use calibrate::{
    CalibrationError, CalibrationOptions, HeardProbe, calibrate, listen_for_probes, play_probes,
};
pub use clock::{ClockAnchor, frames_to_duration, unix_time_of};
pub use decode::{AudioInfo, DecodedAudio, Decoder, decode_file};
pub use devices::{OutputDevice, SYSTEM_DEFAULT_NAME, output_devices};
pub use error::{AudioError, Result};
pub use latency::{CalibrationResult, ProbeError};
pub use mixer::STALL_GAP;
pub use output::{PACED_RATE, WavSchedule};
pub use player::{
    MAX_LATENCY_OFFSET, MAX_RATE_TRIM_PPM, MAX_VOLUME, Player, PlayerEvent, Position, StartTicket,
};
pub use shared::CallbackStats;
pub use spec::OutputSpec;
pub use stream::{OpenStream, StreamRead};
pub use tags::{Cover, Tags, read_tags};
pub use track::Source;

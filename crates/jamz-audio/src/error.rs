//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `jamz-audio`. Variants name what failed and on what input.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The container or codec is not one we decode.
    #[error("{path}: unsupported format: {detail}")]
    Unsupported { path: PathBuf, detail: String },
    /// The file is truncated or corrupt beyond what the decoder could skip.
    #[error("{path}: corrupt or truncated audio: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    /// A seek target outside the track, or a seek the container refused.
    #[error("{path}: cannot seek to {position_s:.3} s: {detail}")]
    Seek {
        path: PathBuf,
        position_s: f64,
        detail: String,
    },
    /// An output spec string we do not understand.
    #[error(
        "bad output spec {spec:?}: expected \"default\", \"device:ID\", \"null\" or \"wav:PATH\""
    )]
    BadOutputSpec { spec: String },
    /// The audio device could not be found or opened.
    #[error("audio device: {0}")]
    Device(String),
    /// Writing the WAV output (or its schedule sidecar) failed.
    #[error("wav output {path}: {detail}")]
    WavOutput { path: PathBuf, detail: String },
    /// A rate trim outside the supported band.
    #[error("rate trim {ppm} ppm is outside +-{max} ppm")]
    RateTrimOutOfRange { ppm: f64, max: f64 },
    /// An argument that makes no sense (negative position, NaN volume, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The resampler refused its parameters.
    #[error("resampler: {0}")]
    Resampler(String),
    /// The output has not taken the commands already sent (its callbacks stopped; the device
    /// monitor reports that as a lost device).
    #[error("the audio output is not taking commands")]
    Busy,
    /// The player's output thread has stopped.
    #[error("the player has shut down")]
    Closed,
    /// A start given up because a later command (another start, a pause, a stop) came while
    /// its track was still being opened (a stream waiting for its bytes): nothing to report.
    #[error("a later command superseded this start")]
    Superseded,
}

/// Shorthand for this crate's results.
pub type Result<T, E = AudioError> = std::result::Result<T, E>;

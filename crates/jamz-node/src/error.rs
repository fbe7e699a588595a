//! The node's one error type.

use std::path::PathBuf;

/// What failed in the node, and on what.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("backend link: {0}")]
    Link(#[from] jamz_link::LinkError),
    #[error("audio: {0}")]
    Audio(#[from] jamz_audio::AudioError),
    #[error("track cache: {0}")]
    Cache(#[from] jamz_cache::CacheError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {path}: {message}")]
    Credentials { path: PathBuf, message: String },
    #[error("not logged in to {server}: run `jamz login` (or `jamz register`) first")]
    NotLoggedIn { server: String },
    #[error("no platform config directory: set JAMZ_CONFIG_DIR")]
    NoConfigDir,
    #[error("no platform cache directory: pass --cache-dir")]
    NoCacheDir,
    #[error("{0}")]
    Invalid(String),
    #[error("hosting the session: {0}")]
    Host(String),
    #[error("the node's runtime stopped: {0}")]
    Stopped(String),
}

impl NodeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NodeError::Io {
            path: path.into(),
            source,
        }
    }
}

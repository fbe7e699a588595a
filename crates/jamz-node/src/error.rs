//! The node's one error type, and the stable code each face branches on.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What failed in the node, and on what.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("backend link: {0}")]
    Link(#[from] jamz_link::LinkError),
    #[error("audio: {0}")]
    Audio(#[from] jamz_audio::AudioError),
    #[error("track cache: {0}")]
    Cache(#[from] jamz_cache::CacheError),
    /// Its message names the tile or the template already.
    #[error(transparent)]
    Tiles(#[from] jamz_cache::tiles::TileError),
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
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("no session is open")]
    NoSession,
    #[error("a session is already open: leave it first")]
    SessionOpen,
    #[error("this device already hosts a session at {0}")]
    AlreadyHosting(String),
    /// Finding a hosted session on the local network (mDNS), in words.
    #[error("{0}")]
    Discovery(String),
}

impl NodeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NodeError::Io {
            path: path.into(),
            source,
        }
    }

    /// What a face branches on.
    pub fn code(&self) -> ErrorCode {
        use jamz_cache::tiles::TileError;
        use jamz_link::LinkError;
        match self {
            NodeError::Link(
                LinkError::Http { status, .. }
                | LinkError::Throttled { status, .. }
                | LinkError::UploadRefused { status, .. },
            ) => ErrorCode::of_http(*status),
            NodeError::Link(LinkError::Request { .. } | LinkError::WebSocket(_)) => {
                ErrorCode::Unreachable
            }
            // No session answered on this network: none to reach, as with a dead URL.
            NodeError::Discovery(_) => ErrorCode::Unreachable,
            NodeError::Link(LinkError::Url { .. }) => ErrorCode::BadUrl,
            NodeError::Link(_) => ErrorCode::Link,
            NodeError::NotLoggedIn { .. } => ErrorCode::NotLoggedIn,
            NodeError::Audio(_) | NodeError::Calibration(_) => ErrorCode::Audio,
            NodeError::Cache(_) => ErrorCode::Cache,
            NodeError::Tiles(TileError::BadTemplate { .. } | TileError::BadTile { .. }) => {
                ErrorCode::Invalid
            }
            NodeError::Tiles(TileError::Unavailable { .. }) => ErrorCode::Unreachable,
            NodeError::Tiles(TileError::Disk { .. } | TileError::Client { .. }) => ErrorCode::Node,
            NodeError::Invalid(_) => ErrorCode::Invalid,
            NodeError::Stopped(_) => ErrorCode::Stopped,
            NodeError::Host(_) => ErrorCode::Host,
            NodeError::NoSession => ErrorCode::NoSession,
            NodeError::SessionOpen => ErrorCode::SessionOpen,
            NodeError::AlreadyHosting(_) => ErrorCode::AlreadyHosting,
            NodeError::Io { .. }
            | NodeError::Credentials { .. }
            | NodeError::NoConfigDir
            | NodeError::NoCacheDir => ErrorCode::Node,
        }
    }
}

/// A stable, machine-readable name for a kind of failure (the app's `code`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The backend refused the request's content (HTTP 400, 422).
    BadRequest,
    /// HTTP 401: a wrong password or an expired token.
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    /// HTTP 429 or 503 after the client waited as long as it may: too many
    /// attempts, or the server is busy; try again later.
    Throttled,
    /// HTTP 408: an upload too slow for the server.
    TooSlow,
    /// HTTP 415: an upload that is not audio the server can play.
    NotAudio,
    /// Any other HTTP status.
    ServerError,
    /// The backend cannot be reached at all.
    Unreachable,
    BadUrl,
    /// Another failure of the backend link.
    Link,
    NotLoggedIn,
    Audio,
    Cache,
    Invalid,
    Stopped,
    Host,
    /// Files and directories of this device.
    Node,
    NoSession,
    SessionOpen,
    AlreadyHosting,
}

impl ErrorCode {
    /// The code of an HTTP status the backend answered.
    fn of_http(status: u16) -> Self {
        match status {
            400 | 422 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::TooLarge,
            408 => ErrorCode::TooSlow,
            415 => ErrorCode::NotAudio,
            429 | 503 => ErrorCode::Throttled,
            _ => ErrorCode::ServerError,
        }
    }
}

/// An error as a face hands it on: the code to branch on and a message for people.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    pub code: ErrorCode,
    pub message: String,
}

impl From<&NodeError> for ErrorView {
    fn from(e: &NodeError) -> Self {
        ErrorView {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<NodeError> for ErrorView {
    fn from(e: NodeError) -> Self {
        ErrorView::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let v = serde_json::to_value(ErrorView::from(NodeError::NoSession)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "no-session", "message": "no session is open"})
        );
    }

    #[test]
    fn http_statuses_map_to_codes_the_ui_branches_on() {
        let e = NodeError::Link(jamz_link::LinkError::Http {
            method: "POST".into(),
            path: "/api/auth/login".into(),
            status: 401,
            message: "bad password".into(),
        });
        let v = serde_json::to_value(ErrorView::from(e)).unwrap();
        assert_eq!(v["code"], "unauthorized");
        assert!(v["message"].as_str().unwrap().contains("bad password"));
        for (status, code) in [
            (400, "bad-request"),
            (403, "forbidden"),
            (404, "not-found"),
            (409, "conflict"),
            (413, "too-large"),
            (408, "too-slow"),
            (415, "not-audio"),
            (429, "throttled"),
            (503, "throttled"),
            (500, "server-error"),
        ] {
            let v = serde_json::to_value(ErrorCode::of_http(status)).unwrap();
            assert_eq!(v, code, "{status}");
        }
    }
}

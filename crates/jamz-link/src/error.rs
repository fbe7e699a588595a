//! The one error type of this crate.

use std::time::Duration;

use crate::packet::PacketError;

/// Everything that can go wrong on the link to the backend.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The server answered with a non-success status; `message` is its
    /// `{"error": ...}` text (or the body itself when it was not that shape).
    #[error("{method} {path}: HTTP {status}: {message}")]
    Http {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The server kept answering 429 (too many attempts) or 503 (at capacity)
    /// and the [`crate::RetryPolicy`] allowed no further wait.
    #[error(
        "{method} {path}: HTTP {status}: {message}; gave up after {attempts} attempt(s){}",
        wait_hint(.retry_after)
    )]
    Throttled {
        method: String,
        path: String,
        status: u16,
        message: String,
        attempts: u32,
        /// What the server's last `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// The server refused an upload's body: too large (413), too slow (408),
    /// or not audio its decoders accept (415).
    #[error("upload of {file:?} refused: {reason} (HTTP {status}: {message})")]
    UploadRefused {
        file: String,
        status: u16,
        reason: &'static str,
        message: String,
    },
    /// The request could not be made or its body not read (connection refused,
    /// timeout, TLS ...).
    #[error("{method} {path}: {source}")]
    Request {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON this route promises.
    #[error("{method} {path}: unexpected answer: {source}")]
    Decode {
        method: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// TLS set-up on this side: an unreadable CA file, a verifier that cannot start.
    #[error("TLS: {reason}")]
    Tls { reason: String },
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The server refused the Socket.IO CONNECT (`connect_error`), e.g.
    /// `Authentication failed`.
    #[error("connection refused by the server: {message}")]
    ConnectRefused { message: String },
    /// A malformed Engine.IO / Socket.IO packet from the server.
    #[error("malformed packet from the server ({packet:?}): {source}")]
    Packet {
        packet: String,
        #[source]
        source: PacketError,
    },
    /// The server broke the protocol in a way the codec cannot see.
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("no ack for {event:?} within {timeout:?}")]
    AckTimeout { event: String, timeout: Duration },
    /// The connection went away after the event was sent and before its ack came.
    #[error("the link went down before the ack of {event:?} arrived")]
    AckLost { event: String },
    /// The bounded outgoing queue was full while disconnected; this event was
    /// dropped to make room (or refused).
    #[error("outgoing queue full ({capacity} events): dropped {event:?}")]
    QueueOverflow { event: String, capacity: usize },
    /// A newer event of a latest-only kind replaced this one while it waited offline.
    #[error("{event:?} was replaced by a newer one before it could be sent")]
    Superseded { event: String },
    /// The handshake did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The link was closed by the caller (or its task is gone).
    #[error("the link is closed")]
    Closed,
    #[error("encoding {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Proto(#[from] jamz_proto::ProtoError),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<tokio_tungstenite::tungstenite::Error> for LinkError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        LinkError::WebSocket(Box::new(e))
    }
}

impl LinkError {
    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            LinkError::Http { status, .. }
            | LinkError::Throttled { status, .. }
            | LinkError::UploadRefused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server could not be reached (no network, refused, timed out, a proxy
    /// saying the backend is away): trying again later may succeed. A refusal by
    /// the server itself (4xx, 500) would be refused again.
    pub fn is_unreachable(&self) -> bool {
        match self {
            LinkError::Request { source, .. } => {
                source.is_connect()
                    || source.is_timeout()
                    || source.is_request()
                    || source.is_body()
            }
            LinkError::Http { status, .. } => matches!(status, 502..=504),
            // The server said to come back later.
            LinkError::Throttled { .. } => true,
            LinkError::Timeout(_) | LinkError::WebSocket(_) | LinkError::Closed => true,
            _ => false,
        }
    }
}

/// ", try again in N s" when the server said how long to wait.
fn wait_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!("; the server asks to wait {} s", d.as_secs().max(1)),
        None => String::new(),
    }
}

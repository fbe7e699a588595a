//! Why the engine refused a command or an event. Each becomes a
//! [`crate::Notification::Error`]; the engine goes on.
use jamz_proto::UserId;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("only the DJ may {what} (the DJ is {dj})")]
    NotDj { what: &'static str, dj: DjName },
    #[error("a control from user {user}, who is not the DJ (the DJ is {dj})")]
    ControlFromNonDj { user: UserId, dj: DjName },
    #[error("a bad mesh message on the link to user {link}: {message}")]
    BadMesh { link: UserId, message: String },
    #[error("track {id:?} is not in the playlist")]
    UnknownTrack { id: String },
    #[error("a control without a track, and no track is loaded")]
    NoTrack,
    #[error("track {title:?} has nothing to play (no audio URL, video id or preview)")]
    UnplayableTrack { title: String },
    #[error("position {position} s is past the end of {title:?} ({duration} s)")]
    PositionPastEnd {
        position: f64,
        duration: f64,
        title: String,
    },
    #[error("position {position} is not a non-negative number of seconds")]
    InvalidPosition { position: f64 },
    #[error("timestamp {timestamp} is {ahead_ms:.0} ms in the future (limit {limit_ms} ms)")]
    TimestampInFuture {
        timestamp: f64,
        ahead_ms: f64,
        limit_ms: f64,
    },
    #[error("timestamp {timestamp} is {behind_ms:.0} ms in the past (limit {limit_ms} ms)")]
    TimestampInPast {
        timestamp: f64,
        behind_ms: f64,
        limit_ms: f64,
    },
    #[error("timestamp {timestamp} is not a number of milliseconds")]
    InvalidTimestamp { timestamp: f64 },
    #[error("playlist of {len} entries refused (at most {max})")]
    PlaylistTooLong { len: usize, max: usize },
    #[error("{title:?} by {artist:?} is already in the playlist")]
    Duplicate { title: String, artist: String },
    #[error("track {title:?} has no url (upload it first), video id or preview")]
    TrackWithoutUrl { title: String },
    #[error("the new order is not a permutation of the playlist: {reason}")]
    BadReorder { reason: String },
    #[error("the playlist is empty")]
    EmptyPlaylist,
    #[error("no {which} track in the playlist")]
    NoAdjacentTrack { which: &'static str },
    #[error("nothing is loaded to {what}")]
    NothingLoaded { what: &'static str },
    #[error("not in a session yet")]
    NoSession,
    #[error("server: {message}")]
    Server { message: String },
    #[error("REST call failed: {message}")]
    Rest { message: String },
}

/// Who the DJ is, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DjName(pub Option<UserId>);

impl std::fmt::Display for DjName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(u) => write!(f, "user {u}"),
            None => f.write_str("nobody"),
        }
    }
}

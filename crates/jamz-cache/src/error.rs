//! The crate's one error type.

use std::io;
use std::sync::Arc;

/// Everything that can go wrong in the cache. Variants name the track (its id) and
/// what failed. Cloneable, because one download can have several waiters (the player
/// and a preload) and each of them gets the same answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// `get_cached` (or an offline caller) asked for a track that has no complete,
    /// verified file in the cache.
    #[error("track {id}: not cached")]
    NotCached { id: String },

    /// No connection could be made to the track's server (no network, server down,
    /// DNS failure, connect timeout).
    #[error("track {id}: offline, cannot reach {url}: {message}")]
    Offline {
        id: String,
        url: String,
        message: String,
    },

    /// The connection was made but the transfer failed and retries ran out.
    #[error("track {id}: network error fetching {url}: {message}")]
    Network {
        id: String,
        url: String,
        message: String,
    },

    /// The server answered with a status we cannot use (404, 500, ...).
    #[error("track {id}: server answered {status} for {url}")]
    HttpStatus {
        id: String,
        url: String,
        status: u16,
    },

    /// The downloaded bytes do not hash to what the track (or the server's ETag) says.
    #[error("track {id}: sha256 mismatch, expected {expected}, got {got}")]
    HashMismatch {
        id: String,
        expected: String,
        got: String,
    },

    /// The downloaded length differs from the track's size or the server's length.
    #[error("track {id}: size mismatch, expected {expected} bytes, got {got}")]
    SizeMismatch { id: String, expected: u64, got: u64 },

    /// The disk (or the file system holding the cache) is full. Nothing half-written
    /// is kept in the served area.
    #[error("disk full{} while {during}", for_track(.id))]
    DiskFull { id: String, during: &'static str },

    /// Any other I/O error on the cache's files.
    #[error("i/o error{} while {during}: {source}", for_track(.id))]
    Io {
        id: String,
        during: &'static str,
        #[source]
        source: Arc<io::Error>,
    },

    /// The SQLite index failed (`id` is empty for operations on no single track).
    #[error("cache index error{} while {during}: {message}", for_track(.id))]
    Index {
        id: String,
        during: &'static str,
        message: String,
    },

    /// The HTTP client could not be built (TLS back-end set-up).
    #[error("cannot build the HTTP client: {message}")]
    Client { message: String },

    /// Another process holds the cache directory.
    #[error("cache directory {dir} is in use by another process")]
    Locked { dir: String },

    /// The cache was closed (its session ended): this handle can do nothing more.
    #[error("the cache was closed")]
    Closed,

    /// The download was cancelled (preload cancelled, `remove`, `clear`, `shutdown`).
    #[error("track {id}: download cancelled")]
    Cancelled { id: String },

    /// The track's input is unusable (empty id, URL that is not http(s), bad sha256).
    #[error("track {id}: invalid input: {message}")]
    InvalidTrack { id: String, message: String },
}

/// `errno` for "no space left on device" on Linux, Android, macOS and iOS (28 on all).
/// `io::ErrorKind::StorageFull` covers it where std maps it; the raw value is a
/// fallback for errors built from raw OS codes.
const ENOSPC: i32 = 28;

/// " for track <id>", or nothing for operations on no single track.
fn for_track(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(" for track {id}")
    }
}

/// Whether an I/O error means the disk is full.
pub(crate) fn is_disk_full(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull || err.raw_os_error() == Some(ENOSPC)
}

impl CacheError {
    /// Maps an I/O error at a write site: a full disk becomes [`CacheError::DiskFull`].
    pub(crate) fn io(id: &str, during: &'static str, err: io::Error) -> Self {
        if is_disk_full(&err) {
            CacheError::DiskFull {
                id: id.to_owned(),
                during,
            }
        } else {
            CacheError::Io {
                id: id.to_owned(),
                during,
                source: Arc::new(err),
            }
        }
    }

    /// A blocking task doing file work that did not finish (it panicked, or the
    /// runtime is shutting down).
    pub(crate) fn io_task_failed(
        id: &str,
        during: &'static str,
        err: &tokio::task::JoinError,
    ) -> Self {
        CacheError::Io {
            id: id.to_owned(),
            during,
            source: Arc::new(io::Error::other(err.to_string())),
        }
    }

    /// A blocking task doing index work that did not finish.
    pub(crate) fn index_task_failed(
        id: &str,
        during: &'static str,
        err: &tokio::task::JoinError,
    ) -> Self {
        CacheError::Index {
            id: id.to_owned(),
            during,
            message: err.to_string(),
        }
    }

    /// Maps a SQLite error: `SQLITE_FULL` becomes [`CacheError::DiskFull`].
    pub(crate) fn index(id: &str, during: &'static str, err: &rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, _) = err
            && e.code == rusqlite::ErrorCode::DiskFull
        {
            return CacheError::DiskFull {
                id: id.to_owned(),
                during,
            };
        }
        CacheError::Index {
            id: id.to_owned(),
            during,
            message: err.to_string(),
        }
    }

    /// Whether this is the "not cached" answer.
    pub fn is_not_cached(&self) -> bool {
        matches!(self, CacheError::NotCached { .. })
    }

    /// Whether a later attempt might succeed without anything changing on our side
    /// (network trouble), as opposed to a verdict on the content (hash, size, 404).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CacheError::Offline { .. } | CacheError::Network { .. } | CacheError::Cancelled { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_disk_full() {
        let e = CacheError::io("t1", "writing", io::Error::from_raw_os_error(ENOSPC));
        assert!(matches!(e, CacheError::DiskFull { .. }), "{e}");
        let e = CacheError::io("t1", "writing", io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(e, CacheError::DiskFull { .. }), "{e}");
        let e = CacheError::io(
            "t1",
            "writing",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(e, CacheError::Io { .. }), "{e}");
    }

    #[test]
    fn messages_name_the_track() {
        let e = CacheError::HashMismatch {
            id: "track-9".into(),
            expected: "aa".into(),
            got: "bb".into(),
        };
        assert_eq!(
            e.to_string(),
            "track track-9: sha256 mismatch, expected aa, got bb"
        );
    }
}

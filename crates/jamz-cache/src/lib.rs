//! On-disk track cache for TrafficJamz native.
//!
//! Complete tracks live in `files/<sha256>` (content-addressed, verified before they
//! get there), described by a SQLite index (WAL). Downloads stream into
//! `partial/`, resume with `Range` after a dropped connection, and can be read while
//! they arrive. Least recently played unpinned tracks are evicted past a track count
//! and a byte budget. Start-up reconciles the index with the files, so a crash at
//! any point never makes the cache serve a half-written or wrong file.
//!
//! The map's tiles have their own, simpler cache in [`tiles`] (files with a hash
//! header, a byte budget, least recently used out first).
//!
//! Entry point: [`Cache`]. The cache knows nothing of the other adapters: callers map
//! their track type onto [`CacheTrack`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), jamz_cache::CacheError> {
//! use jamz_cache::{Cache, CacheConfig, CacheTrack, CancellationToken};
//!
//! let cache = Cache::open("/tmp/jamz-cache", CacheConfig::default()).await?;
//! let track = CacheTrack {
//!     id: "42".into(),
//!     url: "http://127.0.0.1:3000/api/music/files/abc".into(),
//!     sha256: None,
//!     size: Some(4_200_000),
//!     ..Default::default()
//! };
//! // Playback: a Read + Seek reader, usable before the download ends.
//! let reader = cache.get_or_fetch(&track).await?;
//! std::thread::spawn(move || {
//!     let mut reader = reader; // hand it to the decoder on a blocking thread
//!     let _ = std::io::copy(&mut reader, &mut std::io::sink());
//! });
//! cache.mark_played("42").await?;
//! // The playlist: pinned, and fetched ahead.
//! cache.set_pinned(&["42".to_owned()]).await?;
//! let report = cache
//!     .preload(&[track], |p| println!("{}/{} items", p.items_done, p.items_total), &CancellationToken::new())
//!     .await;
//! assert!(report.failed.is_empty());
//! // Offline: answers NotCached at once for what is not here.
//! let _ = cache.get_cached("7").await;
//! # Ok(()) }
//! ```

mod cache;
mod config;
mod download;
mod error;
mod http;
mod import;
pub mod index;
mod layout;
mod preload;
mod reader;
mod reconcile;
mod shared;
#[cfg(test)]
mod stream_tests;
pub mod tiles;
mod track;
mod writer;

pub use cache::{Cache, CacheStats, DownloadStatus};
pub use config::{
    CacheConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BYTES, DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TRACKS, DEFAULT_READ_WAIT_TIMEOUT, DEFAULT_RETRY_BACKOFF, DEFAULT_STALL_TIMEOUT,
    MAX_RETRY_BACKOFF,
};
pub use error::CacheError;
pub use preload::{PreloadProgress, PreloadReport};
pub use reader::TrackReader;
pub use reconcile::ReconcileReport;
pub use tokio_util::sync::CancellationToken;
pub use track::{CacheTrack, CachedEntry, StoredTrack};

/// The complete, verified file with this content hash in the cache at `cache_dir`,
/// when there is one. Stored files are named by content and never rewritten, so they
/// may be read (for their tags) without holding the cache. `None` for anything but a
/// lower-case hex SHA-256, so the name can never leave the cache's directory.
pub fn stored_file(cache_dir: &std::path::Path, sha256: &str) -> Option<std::path::PathBuf> {
    let valid = sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    let path = layout::Layout::new(cache_dir).file(sha256);
    path.is_file().then_some(path)
}

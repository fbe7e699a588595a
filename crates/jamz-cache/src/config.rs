//! Configuration and its defaults.

use std::time::Duration;

/// The web app's cache keeps at most 50 tracks, with LRU eviction (docs/architecture.md,
/// "real components": the track cache); the native cache keeps the same default.
pub const DEFAULT_MAX_TRACKS: usize = 50;

/// 2 GiB: 50 tracks of a long DJ mix (~40 MB each at 128 kbit/s for 40 min) fit, while
/// a phone with a few GB free is not filled by surprise. Configurable.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// A captive portal or a dead cell link can swallow SYNs; 5 s is long enough for a
/// slow satellite handshake (~1-2 s RTT budget) and short enough that an offline
/// request fails before a listener notices a gap.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// No byte for this long on an open transfer counts as a dropped connection and the
/// download resumes with `Range`. 20 s rides out a tunnel on the motorway without
/// waiting forever on a half-open TCP connection.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a `TrackReader` waits for bytes that are not downloaded yet before its
/// `read` errors with `TimedOut`. Longer than one stall timeout plus a first retry
/// back-off, so a single resumed connection never surfaces as a read error.
pub const DEFAULT_READ_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Consecutive attempts that bring no new byte before a download gives up. With the
/// back-off below this spans ~4 s of trying (0.25+0.5+1+2), enough for a brief drop
/// and short enough to tell the UI quickly that the network is gone.
pub const DEFAULT_MAX_RETRIES: u32 = 4;

/// First back-off between resume attempts; doubled per failed attempt.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(250);

/// Upper bound of the back-off doubling, so a long stall does not grow into minutes.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Settings of a [`crate::Cache`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most tracks kept; least recently played unpinned tracks go first.
    pub max_tracks: usize,
    /// Most bytes kept (sum of the distinct files).
    pub max_bytes: u64,
    /// TCP connect timeout of the HTTP client.
    pub connect_timeout: Duration,
    /// No byte for this long on a transfer: the attempt is dropped and resumed.
    pub stall_timeout: Duration,
    /// How long a reader waits for bytes not downloaded yet.
    pub read_wait_timeout: Duration,
    /// Consecutive attempts that bring no new byte before giving up (0: one attempt
    /// only). An attempt that brings bytes resets the count, so a long download over
    /// a flaky link keeps going as long as it advances. A connection refused on the
    /// very first attempt is `Offline` at once, without retries.
    pub max_retries: u32,
    /// First back-off between attempts; doubles up to [`MAX_RETRY_BACKOFF`].
    pub retry_backoff: Duration,
    /// Certificate authorities (DER) trusted for https beside the platform's: the
    /// self-hosted server's own CA, as the link trusts it.
    pub extra_ca_der: Vec<Vec<u8>>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            extra_ca_der: Vec::new(),
            max_tracks: DEFAULT_MAX_TRACKS,
            max_bytes: DEFAULT_MAX_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            read_wait_timeout: DEFAULT_READ_WAIT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
        }
    }
}

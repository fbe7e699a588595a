//! Map tiles kept on this device, so the map still draws in a dead zone for every
//! area already seen. The app's web view never reaches a tile server itself: it
//! asks the shell, which asks this cache.
//!
//! Policy: a tile on disk and younger than [`TileCacheConfig::max_age`] is served
//! from disk; otherwise it is fetched (with the app's `User-Agent`, as tile usage
//! policies ask) and kept; when the fetch fails an older copy is served rather than
//! nothing. Damaged files are removed and fetched again. The disk holds at most
//! [`TileCacheConfig::max_bytes`], least recently used tiles leaving first.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jamz_cache::tiles::TileError> {
//! use jamz_cache::tiles::{TileCache, TileCacheConfig, TileKey, TileSource};
//! let cache = TileCache::open("/tmp/map-tiles", TileCacheConfig::default()).await?;
//! let osm = TileSource::parse("https://tile.openstreetmap.org/{z}/{x}/{y}.png")?;
//! let tile = cache.tile(&osm, TileKey::new(12, 2144, 1434)?).await?;
//! println!("{} bytes of {}", tile.body.len(), tile.media_type);
//! # Ok(()) }
//! ```

mod error;
mod record;
mod source;
mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

pub use error::TileError;
pub use record::MAX_TILE_BYTES;
pub use source::{MAX_ZOOM, TileKey, TileSource};

use record::TileRecord;
use store::{Lookup, TileStore};

/// How the cache fetches and how much it keeps.
#[derive(Debug, Clone)]
pub struct TileCacheConfig {
    /// Bytes on disk at most (headers included).
    pub max_bytes: u64,
    /// A tile older than this is fetched again when the server answers.
    pub max_age: Duration,
    /// Whole request, connect to last byte.
    pub fetch_timeout: Duration,
    /// Sent with every request (tile servers ask apps to name themselves).
    pub user_agent: String,
}

/// 256 MiB: a few thousand tiles, the roads of a long trip at street zoom.
pub const DEFAULT_TILE_CACHE_BYTES: u64 = 256 * 1024 * 1024;

impl Default for TileCacheConfig {
    fn default() -> Self {
        TileCacheConfig {
            max_bytes: DEFAULT_TILE_CACHE_BYTES,
            // OpenStreetMap's tile policy asks for at least 7 days.
            max_age: Duration::from_secs(7 * 24 * 3600),
            fetch_timeout: Duration::from_secs(15),
            user_agent: format!("TrafficJamz/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A tile to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub media_type: String,
    pub body: Vec<u8>,
    /// Served from disk (no request made, or the server did not answer).
    pub from_cache: bool,
}

/// What the cache holds and has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TileStats {
    pub tiles: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    /// Tiles served from disk.
    pub from_cache: u64,
    /// Tiles fetched from the server.
    pub fetched: u64,
    /// Requests answered with an error (not on disk, server unreachable).
    pub failed: u64,
    /// Damaged files found and removed.
    pub damaged: u64,
}

#[derive(Default)]
struct Counters {
    from_cache: AtomicU64,
    fetched: AtomicU64,
    failed: AtomicU64,
    damaged: AtomicU64,
}

/// The tile cache of one device. Cheap to clone (shared).
#[derive(Clone)]
pub struct TileCache {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    store: Mutex<TileStore>,
    client: reqwest::Client,
    max_age: Duration,
    counters: Counters,
}

impl TileCache {
    /// Opens (creating) the cache in `dir`.
    pub async fn open(
        dir: impl AsRef<Path>,
        config: TileCacheConfig,
    ) -> Result<TileCache, TileError> {
        let root = dir.as_ref().to_owned();
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| TileError::Client {
                message: e.to_string(),
            })?;
        let (r, max) = (root.clone(), config.max_bytes);
        let store = tokio::task::spawn_blocking(move || TileStore::open(&r, max))
            .await
            .map_err(|e| disk_error(&root, &e))?
            .map_err(|e| disk_error(&root, &e))?;
        Ok(TileCache {
            inner: Arc::new(Inner {
                root,
                store: Mutex::new(store),
                client,
                max_age: config.max_age,
                counters: Counters::default(),
            }),
        })
    }

    /// The tile `key` of `source`: from disk when fresh, else from the server
    /// (kept), else an older copy from disk, else an error saying why.
    pub async fn tile(&self, source: &TileSource, key: TileKey) -> Result<Tile, TileError> {
        let name = (source.id().to_owned(), key);
        let c = &self.inner.counters;
        let n = name.clone();
        let lookup = self.blocking(move |store| store.get(&n)).await;
        let (stale, was_damaged) = match lookup {
            Ok(Lookup::Hit(record)) if self.fresh(&record) => {
                c.from_cache.fetch_add(1, Ordering::Relaxed);
                return Ok(served(record, true));
            }
            Ok(Lookup::Hit(record)) => (Some(record), false),
            Ok(Lookup::Miss) => (None, false),
            Ok(Lookup::Damaged) => {
                c.damaged.fetch_add(1, Ordering::Relaxed);
                (None, true)
            }
            Err(e) => {
                // The disk failed, the network may still answer.
                tracing::warn!("map tile {key}: reading the cache: {e}");
                (None, false)
            }
        };
        match self.fetch(source, key).await {
            Ok(record) => {
                c.fetched.fetch_add(1, Ordering::Relaxed);
                let kept = record.clone();
                if let Err(e) = self.blocking(move |store| store.put(&name, &kept)).await {
                    tracing::warn!("map tile {key}: not kept: {e}");
                }
                Ok(served(record, false))
            }
            Err(reason) => match stale {
                Some(record) => {
                    tracing::debug!("map tile {key}: an older copy, the server failed: {reason}");
                    c.from_cache.fetch_add(1, Ordering::Relaxed);
                    Ok(served(record, true))
                }
                None => {
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    Err(TileError::Unavailable {
                        tile: key.to_string(),
                        reason,
                        was_damaged,
                    })
                }
            },
        }
    }

    fn fresh(&self, record: &TileRecord) -> bool {
        let age = unix_now().saturating_sub(record.fetched_at);
        Duration::from_secs(age) < self.inner.max_age
    }

    /// The tile from the server: `Err` says why not, in words.
    async fn fetch(&self, source: &TileSource, key: TileKey) -> Result<TileRecord, String> {
        let url = source.url(key);
        let res = self
            .inner
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("cannot reach the tile server ({})", error_chain(&e)))?;
        let status = res.status();
        if !status.is_success() {
            return Err(format!("the tile server answered {status}"));
        }
        let media_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
            .unwrap_or_default();
        // Only pictures reach the web view.
        if !media_type.starts_with("image/") {
            return Err(format!(
                "the tile server sent {:?}, not an image",
                if media_type.is_empty() {
                    "no media type"
                } else {
                    media_type.as_str()
                }
            ));
        }
        if res
            .content_length()
            .is_some_and(|n| n > MAX_TILE_BYTES as u64)
        {
            return Err(format!("the tile is larger than {MAX_TILE_BYTES} bytes"));
        }
        let mut body = Vec::new();
        let mut res = res;
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("the transfer failed ({})", error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_TILE_BYTES {
                return Err(format!("the tile is larger than {MAX_TILE_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        if body.is_empty() {
            return Err("the tile server sent an empty tile".into());
        }
        Ok(TileRecord {
            fetched_at: unix_now(),
            media_type,
            body,
        })
    }

    pub async fn stats(&self) -> TileStats {
        let c = &self.inner.counters;
        let (tiles, bytes, max_bytes) = {
            let store = lock(&self.inner.store);
            (store.tiles(), store.bytes(), store.max_bytes())
        };
        TileStats {
            tiles,
            bytes,
            max_bytes,
            from_cache: c.from_cache.load(Ordering::Relaxed),
            fetched: c.fetched.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            damaged: c.damaged.load(Ordering::Relaxed),
        }
    }

    /// Removes every tile.
    pub async fn clear(&self) -> Result<(), TileError> {
        let root = self.inner.root.clone();
        self.blocking(|store| store.clear())
            .await
            .map_err(|e| disk_error(&root, &e))
    }

    /// A new budget, applied at once.
    pub async fn set_max_bytes(&self, max_bytes: u64) {
        lock(&self.inner.store).set_max_bytes(max_bytes);
    }

    /// Runs `f` on the store on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut TileStore) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&inner.store)))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// The store stays consistent between calls (each updates memory after the disk),
/// so a panic elsewhere while holding it does not make it unusable.
fn lock(m: &Mutex<TileStore>) -> MutexGuard<'_, TileStore> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn served(record: TileRecord, from_cache: bool) -> Tile {
    Tile {
        media_type: record.media_type,
        body: record.body,
        from_cache,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn disk_error(root: &Path, e: &dyn std::fmt::Display) -> TileError {
    TileError::Disk {
        path: root.display().to_string(),
        message: e.to_string(),
    }
}

/// reqwest's error and its causes, each once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

//! The public face: [`Cache`].

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::CacheConfig;
use crate::download::{self, Download};
use crate::error::CacheError;
use crate::index::{Index, Removed};
use crate::layout::{Layout, now_ms, remove_file_if_exists};
use crate::reader::TrackReader;
use crate::reconcile::{ReconcileReport, reconcile};
use crate::shared::{Shared, wait_done, wait_started};
use crate::track::{CacheTrack, CachedEntry};

/// Counters and totals, see [`Cache::stats`].
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats {
    /// Complete tracks in the index.
    pub tracks: u64,
    /// Bytes of their files (a file shared by two track ids counts once).
    pub bytes: u64,
    /// `get_or_fetch`/`get_cached` calls answered from a complete file, since open.
    pub hits: u64,
    /// Such calls that were not (a download started or joined, or `NotCached`).
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 when there were none.
    pub hit_rate: f64,
    /// Downloads running now.
    pub downloads_in_flight: usize,
    pub max_tracks: usize,
    pub max_bytes: u64,
}

/// A download in progress, see [`Cache::downloads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadStatus {
    pub id: String,
    /// Bytes on disk and readable.
    pub bytes: u64,
    /// Expected total, once known.
    pub total: Option<u64>,
    /// Readers attached (playback) and preloads waiting on it.
    pub readers: usize,
    pub preloads: usize,
}

/// State shared by the cache handle and its download tasks.
#[derive(Debug)]
pub(crate) struct Inner {
    pub layout: Layout,
    pub config: CacheConfig,
    pub index: Arc<Mutex<Index>>,
    pub client: reqwest::Client,
    limits: Mutex<(usize, u64)>,
    /// (URL prefix, bearer token): the token goes only to URLs under that prefix,
    /// never to third-party storage.
    auth: RwLock<Option<(String, String)>>,
    inflight: Mutex<HashMap<String, Arc<Download>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    root_cancel: CancellationToken,
    reconcile: ReconcileReport,
    /// The directory's lock, held until [`Cache::close`] (or the last clone drops): one
    /// process per directory.
    lock: Mutex<Option<File>>,
    /// Set by [`Cache::close`]: every later index operation fails with
    /// [`CacheError::Closed`], so a clone left in some task cannot touch the directory
    /// once another `Cache` may own it.
    closed: AtomicBool,
}

impl Inner {
    /// The index, for one operation; refused once the cache is closed (checked under the
    /// index's mutex, so an operation either ran before [`Cache::close`] or sees it).
    pub(crate) fn index(&self) -> Result<MutexGuard<'_, Index>, CacheError> {
        let index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::SeqCst) {
            return Err(CacheError::Closed);
        }
        Ok(index)
    }

    pub fn limits(&self) -> (usize, u64) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn auth_for(&self, url: &str) -> Option<String> {
        let auth = self.auth.read().unwrap_or_else(PoisonError::into_inner);
        auth.as_ref()
            .filter(|(prefix, _)| url.starts_with(prefix.as_str()))
            .map(|(_, token)| token.clone())
    }

    /// Deletes the files of removed rows that no other row references. Blocking.
    pub fn delete_files(&self, removed: &[Removed]) {
        for r in removed.iter().filter(|r| r.file_unreferenced) {
            if let Err(e) = remove_file_if_exists(&self.layout.file(&r.sha256)) {
                // Left as an orphan: the next start-up removes it.
                tracing::warn!(track = %r.id, error = %e, "could not delete an evicted file");
            }
        }
    }

    fn downloads(&self) -> Vec<Arc<Download>> {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// The on-disk track cache. Cheap to clone (one shared state).
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl Cache {
    /// The shared state, for the crate's other modules.
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

/// Runs a closure on the index on a blocking thread.
async fn on_index<T: Send + 'static>(
    inner: &Arc<Inner>,
    id: &str,
    during: &'static str,
    f: impl FnOnce(&Inner, &mut Index) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, CacheError> {
    let inner = Arc::clone(inner);
    let id2 = id.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut index = inner.index()?;
        f(&inner, &mut index).map_err(|e| CacheError::index(&id2, during, &e))
    })
    .await
    .map_err(|e| CacheError::index_task_failed(id, during, &e))?
}

impl Cache {
    /// Opens the cache in `dir` (created if needed), takes its lock, migrates the
    /// index and reconciles it with the files (see [`ReconcileReport`]).
    pub async fn open(dir: impl AsRef<Path>, config: CacheConfig) -> Result<Cache, CacheError> {
        let layout = Layout::new(dir.as_ref());
        let client_err = |e: reqwest::Error| CacheError::Client {
            message: e.to_string(),
        };
        let roots = config
            .extra_ca_der
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(client_err)?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| CacheError::Client {
                message: e.to_string(),
            })?;
        let limits = (config.max_tracks, config.max_bytes);
        let opened = tokio::task::spawn_blocking(move || open_blocking(layout, limits))
            .await
            .map_err(|e| CacheError::index_task_failed("", "opening the cache", &e))??;
        let (layout, lock, index, reconcile) = opened;
        tracing::info!(dir = ?layout.root, ?reconcile, "cache opened");
        Ok(Cache {
            inner: Arc::new(Inner {
                layout,
                config,
                index: Arc::new(Mutex::new(index)),
                client,
                limits: Mutex::new(limits),
                auth: RwLock::new(None),
                inflight: Mutex::new(HashMap::new()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                root_cancel: CancellationToken::new(),
                reconcile,
                lock: Mutex::new(Some(lock)),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.inner.layout.root
    }

    /// What start-up reconciliation did.
    pub fn last_reconcile(&self) -> &ReconcileReport {
        &self.inner.reconcile
    }

    /// Sends `Authorization: Bearer <token>` with downloads whose URL starts with
    /// `url_prefix` (the backend's origin, e.g. `http://host:port/api/music/files/`);
    /// `None` stops sending it.
    pub fn set_auth(&self, auth: Option<(String, String)>) {
        *self
            .inner
            .auth
            .write()
            .unwrap_or_else(PoisonError::into_inner) = auth;
    }

    /// A reader over the track: from the cache on a hit, else from a download that
    /// starts now (or is already running). Returns once the first bytes can be read
    /// (or the download failed before any: `Offline`, `HttpStatus`, ...); the reader
    /// waits for later bytes. The download continues if the reader is dropped.
    pub async fn get_or_fetch(&self, track: &CacheTrack) -> Result<TrackReader, CacheError> {
        self.refuse_if_closed()?;
        track.validate()?;
        match self.open_complete(&track.id, track.expected_sha256()).await {
            Ok(reader) => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(reader);
            }
            Err(CacheError::NotCached { .. }) => {}
            Err(e) => return Err(e),
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let dl = self.start_or_join(track);
        let reader =
            TrackReader::growing(Arc::clone(&dl.shared), self.inner.config.read_wait_timeout);
        wait_started(&dl.shared).await?;
        Ok(reader)
    }

    /// A reader over a complete cached track, without any network: `NotCached` at
    /// once otherwise (also while it is still downloading).
    pub async fn get_cached(&self, id: &str) -> Result<TrackReader, CacheError> {
        let r = self.open_complete(id, None).await;
        let counter = match &r {
            Ok(_) => &self.inner.hits,
            Err(_) => &self.inner.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The path of a complete cached track's file (content-addressed, read-only by
    /// convention), or `NotCached`. No network.
    pub async fn cached_path(&self, id: &str) -> Result<PathBuf, CacheError> {
        let reader = self.open_complete(id, None).await?;
        reader
            .final_path()
            .ok_or_else(|| CacheError::NotCached { id: id.to_owned() })
    }

    /// Whether a complete file for the track is cached.
    pub async fn contains(&self, id: &str) -> Result<bool, CacheError> {
        match self.open_complete(id, None).await {
            Ok(_) => Ok(true),
            Err(CacheError::NotCached { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes the cache for every clone: stops the downloads and waits for them and for
    /// the index operation in progress, then releases the directory's lock, so that
    /// [`Cache::open`] of the same directory succeeds at once (a session ends, the app
    /// administers its cache). Clones still held somewhere answer every later
    /// operation with [`CacheError::Closed`].
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.root_cancel.cancel();
        let running: Vec<Arc<Shared>> = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|d| Arc::clone(&d.shared))
            .collect();
        for shared in running {
            let _ = wait_done(&shared).await;
        }
        let inner = Arc::clone(&self.inner);
        let released = tokio::task::spawn_blocking(move || {
            // Taking the index's mutex waits for the operation in progress.
            drop(inner.index.lock().unwrap_or_else(PoisonError::into_inner));
            inner
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        })
        .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "releasing the cache's lock failed");
        }
        tracing::info!(dir = ?self.inner.layout.root, "cache closed");
    }

    /// A download must not start on a closed cache (its index would refuse the result).
    fn refuse_if_closed(&self) -> Result<(), CacheError> {
        if self.is_closed() {
            Err(CacheError::Closed)
        } else {
            Ok(())
        }
    }

    /// Whether [`Cache::close`] was called (on this or another clone).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Waits until the track is cached (downloading it if needed) and returns the
    /// path of its verified file.
    pub async fn fetch_to_path(&self, track: &CacheTrack) -> Result<PathBuf, CacheError> {
        self.refuse_if_closed()?;
        track.validate()?;
        if let Ok(r) = self.open_complete(&track.id, track.expected_sha256()).await
            && let Some(p) = r.final_path()
        {
            return Ok(p);
        }
        let dl = self.start_or_join(track);
        wait_done(&dl.shared).await
    }

    /// Opens a complete file from the index; a row whose file has vanished is dropped.
    /// With `expected_sha256`, a cached file of other content (the track was replaced
    /// on the server) counts as not cached, so the new content gets fetched.
    pub(crate) async fn open_complete(
        &self,
        id: &str,
        expected_sha256: Option<String>,
    ) -> Result<TrackReader, CacheError> {
        let inner = Arc::clone(&self.inner);
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut index = inner.index()?;
            let entry = index
                .get(&id)
                .map_err(|e| CacheError::index(&id, "looking the track up", &e))?;
            let Some(entry) = entry else {
                return Err(CacheError::NotCached { id });
            };
            if expected_sha256.is_some_and(|sha| sha != entry.stored.sha256) {
                tracing::info!(track = %id, "cached file has other content than the track now names");
                return Err(CacheError::NotCached { id });
            }
            let path = inner.layout.file(&entry.stored.sha256);
            let opened = File::open(&path).and_then(|f| f.metadata().map(|m| (f, m.len())));
            match opened {
                Ok((file, len)) if len == entry.stored.size => Ok(TrackReader::complete(&id, file, len, path)),
                other => {
                    tracing::warn!(track = %id, ?path, ok = other.is_ok(), "indexed file missing or wrong size; dropping the row");
                    if let Ok(Some(r)) = index.remove(&id) {
                        drop(index);
                        inner.delete_files(&[r]);
                    }
                    Err(CacheError::NotCached { id })
                }
            }
        })
        .await
        .map_err(|e| CacheError::index_task_failed("", "opening a cached track", &e))?
    }

    /// The running download of the track, or a new one.
    pub(crate) fn start_or_join(&self, track: &CacheTrack) -> Arc<Download> {
        let mut map = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A download being cancelled is not joined: a new one starts after it stops
        // (they share the partial file) and resumes where it left off.
        let previous = match map.get(&track.id) {
            Some(dl) if !dl.cancel.is_cancelled() => return Arc::clone(dl),
            Some(dl) => Some(Arc::clone(&dl.shared)),
            None => None,
        };
        let shared = Arc::new(Shared::new(
            &track.id,
            self.inner.layout.partial_file(&track.id),
            track.size,
        ));
        let dl = Arc::new(Download {
            shared: Arc::clone(&shared),
            cancel: self.inner.root_cancel.child_token(),
        });
        map.insert(track.id.clone(), Arc::clone(&dl));
        drop(map);

        let inner = Arc::clone(&self.inner);
        let track = track.clone();
        let cancel = dl.cancel.clone();
        let mine = Arc::clone(&dl);
        let span = tracing::info_span!("download", track = %track.id);
        tokio::spawn(
            async move {
                let id = track.id.clone();
                if let Some(previous) = previous {
                    let _ = wait_done(&previous).await;
                }
                let run = download::run(Arc::clone(&inner), track, Arc::clone(&shared), cancel);
                let result = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                    Ok(r) => r,
                    Err(_) => Err(CacheError::Io {
                        id: id.clone(),
                        during: "downloading (the task panicked)",
                        source: Arc::new(std::io::Error::other("panic")),
                    }),
                };
                match &result {
                    Ok(_) => {}
                    Err(e @ CacheError::Cancelled { .. }) => {
                        tracing::info!(error = %e, "download stopped")
                    }
                    Err(e) => tracing::warn!(error = %e, "download failed"),
                }
                {
                    let mut map = inner
                        .inflight
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if map.get(&id).is_some_and(|d| Arc::ptr_eq(d, &mine)) {
                        map.remove(&id);
                    }
                }
                // Release the cache state before waking waiters, so that a waiter
                // that drops its `Cache` really closes it (and its lock).
                drop(inner);
                drop(mine);
                shared.finish(result);
            }
            .instrument(span),
        );
        dl
    }

    /// Records that a track started playing (LRU order, `last_played`, `play_count`).
    /// Returns whether the track is cached.
    pub async fn mark_played(&self, id: &str) -> Result<bool, CacheError> {
        let id2 = id.to_owned();
        on_index(&self.inner, id, "recording a play", move |_, idx| {
            idx.mark_played(&id2, now_ms())
        })
        .await
    }

    /// Replaces the pinned set (the current playlist): pinned tracks are never
    /// evicted. Ids not cached yet are pinned when they arrive.
    pub async fn set_pinned(&self, ids: &[String]) -> Result<(), CacheError> {
        let ids = ids.to_vec();
        on_index(&self.inner, "", "pinning", move |_, idx| {
            idx.set_pinned(&ids)
        })
        .await?;
        self.evict_now().await
    }

    /// Pins one track.
    pub async fn pin(&self, id: &str) -> Result<(), CacheError> {
        let id2 = id.to_owned();
        on_index(&self.inner, id, "pinning", move |_, idx| {
            idx.pin(&id2, true)
        })
        .await
    }

    /// Unpins one track (and evicts if the cache is over its limits).
    pub async fn unpin(&self, id: &str) -> Result<(), CacheError> {
        let id2 = id.to_owned();
        on_index(&self.inner, id, "unpinning", move |_, idx| {
            idx.pin(&id2, false)
        })
        .await?;
        self.evict_now().await
    }

    /// The limits in force: (tracks, bytes).
    pub fn limits(&self) -> (usize, u64) {
        self.inner.limits()
    }

    /// Changes the limits and evicts down to them.
    pub async fn set_limits(&self, max_tracks: usize, max_bytes: u64) -> Result<(), CacheError> {
        *self
            .inner
            .limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (max_tracks, max_bytes);
        self.evict_now().await
    }

    async fn evict_now(&self) -> Result<(), CacheError> {
        on_index(&self.inner, "", "evicting", |inner, idx| {
            let (t, b) = inner.limits();
            let removed = idx.evict(t, b, None)?;
            inner.delete_files(&removed);
            Ok(())
        })
        .await
    }

    /// Totals and hit counters.
    pub async fn stats(&self) -> Result<CacheStats, CacheError> {
        let (tracks, bytes) = on_index(&self.inner, "", "counting", |_, idx| idx.totals()).await?;
        let hits = self.inner.hits.load(Ordering::Relaxed);
        let misses = self.inner.misses.load(Ordering::Relaxed);
        let (max_tracks, max_bytes) = self.inner.limits();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let hit_rate = if hits + misses == 0 {
            0.0
        } else {
            hits as f64 / (hits + misses) as f64
        };
        Ok(CacheStats {
            tracks,
            bytes,
            hits,
            misses,
            hit_rate,
            downloads_in_flight: self.inner.downloads().len(),
            max_tracks,
            max_bytes,
        })
    }

    /// The downloads in progress (for a UI's progress display), by track id.
    pub fn downloads(&self) -> Vec<DownloadStatus> {
        let mut v: Vec<DownloadStatus> = self
            .inner
            .downloads()
            .iter()
            .map(|d| {
                let st = d.shared.lock();
                DownloadStatus {
                    id: d.shared.id.clone(),
                    bytes: st.valid_len,
                    total: st.total,
                    readers: d.shared.readers.load(Ordering::SeqCst),
                    preloads: d.shared.preloaders.load(Ordering::SeqCst),
                }
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Every cached track, least recently used first.
    pub async fn entries(&self) -> Result<Vec<CachedEntry>, CacheError> {
        on_index(&self.inner, "", "listing", |_, idx| idx.entries()).await
    }

    /// One cached track's row.
    pub async fn entry(&self, id: &str) -> Result<Option<CachedEntry>, CacheError> {
        let id2 = id.to_owned();
        on_index(&self.inner, id, "looking the track up", move |_, idx| {
            idx.get(&id2)
        })
        .await
    }

    /// Cancels a running download of the track, then deletes its file, row and any
    /// partial download. Returns whether a complete track was removed.
    pub async fn remove(&self, id: &str) -> Result<bool, CacheError> {
        let running = self
            .inner
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(dl) = running {
            dl.cancel.cancel();
            let _ = wait_done(&dl.shared).await;
        }
        let id2 = id.to_owned();
        on_index(&self.inner, id, "removing", move |inner, idx| {
            let removed = idx.remove(&id2)?;
            idx.delete_partial(&id2)?;
            let _ = remove_file_if_exists(&inner.layout.partial_file(&id2));
            let was = removed.is_some();
            inner.delete_files(&removed.into_iter().collect::<Vec<_>>());
            Ok(was)
        })
        .await
    }

    /// Cancels every download and deletes every cached and partial file. Pins stay.
    pub async fn clear(&self) -> Result<(), CacheError> {
        self.cancel_all().await;
        on_index(&self.inner, "", "clearing", |inner, idx| {
            idx.clear()?;
            for dir in [&inner.layout.files, &inner.layout.partial] {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_file())
                            && let Err(err) = remove_file_if_exists(&e.path())
                        {
                            tracing::warn!(file = ?e.path(), error = %err, "clear: could not delete");
                        }
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Cancels every running download (their partial files are kept for a later
    /// resume) and waits for them to stop.
    pub async fn shutdown(&self) {
        self.cancel_all().await;
    }

    async fn cancel_all(&self) {
        let running = self.inner.downloads();
        for dl in &running {
            dl.cancel.cancel();
        }
        for dl in running {
            let _ = wait_done(&dl.shared).await;
        }
    }
}

type Opened = (Layout, File, Index, ReconcileReport);

fn open_blocking(layout: Layout, limits: (usize, u64)) -> Result<Opened, CacheError> {
    let dir = layout.root.display().to_string();
    let io = |during, e| CacheError::io("", during, e);
    std::fs::create_dir_all(&layout.root).map_err(|e| io("creating the cache directory", e))?;
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&layout.lock)
        .map_err(|e| io("opening the lock file", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(CacheError::Locked { dir }),
        Err(TryLockError::Error(e)) => return Err(io("locking the cache directory", e)),
    }
    layout
        .create_dirs()
        .map_err(|e| io("creating the cache directories", e))?;
    let mut index =
        Index::open(&layout.index).map_err(|e| CacheError::index("", "opening the index", &e))?;
    let report =
        reconcile(&layout, &mut index).map_err(|e| CacheError::index("", "reconciling", &e))?;
    let removed = index
        .evict(limits.0, limits.1, None)
        .map_err(|e| CacheError::index("", "evicting", &e))?;
    for r in removed.iter().filter(|r| r.file_unreferenced) {
        let _ = remove_file_if_exists(&layout.file(&r.sha256));
    }
    Ok((layout, lock, index, report))
}

//! One download: HTTP attempts with `Range` resumption, written through a
//! [`PartialWriter`], verified and committed into the index.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, ETAG, IF_RANGE, RANGE};
use tokio_util::sync::CancellationToken;

use crate::cache::Inner;
use crate::config::MAX_RETRY_BACKOFF;
use crate::error::CacheError;
use crate::http::{etag_sha256, is_strong_etag, parse_content_range};
use crate::index::PartialRow;
use crate::layout::{now_ms, remove_file_if_exists};
use crate::shared::Shared;
use crate::track::CacheTrack;
use crate::track::StoredTrack;
use crate::writer::{Committed, PartialWriter};

type Writer = Arc<Mutex<PartialWriter>>;

/// Times one download may evict tracks to make room after hitting a full disk: one
/// round normally suffices (it frees at least what is missing); more only cover other
/// writers filling the disk meanwhile, and a bound keeps a shrinking disk from
/// emptying the cache track by track.
const MAX_MAKE_ROOM_ROUNDS: u32 = 3;

/// Runs `f` on the writer on a blocking thread.
async fn with_writer<T: Send + 'static>(
    id: &str,
    w: &Writer,
    f: impl FnOnce(&mut PartialWriter) -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    let w = Arc::clone(w);
    tokio::task::spawn_blocking(move || f(&mut w.lock().unwrap_or_else(PoisonError::into_inner)))
        .await
        .map_err(|e| CacheError::io_task_failed(id, "running the writer", &e))?
}

/// Why an attempt ended without a complete body.
enum AttemptEnd {
    /// Worth another attempt (dropped connection, stall, 5xx, inconsistent answer).
    Retry { message: String, connect: bool },
    /// Final.
    Fail(CacheError),
}

/// The state of one download across attempts.
struct Job {
    inner: Arc<Inner>,
    track: CacheTrack,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    writer: Writer,
    etag: Option<String>,
    /// Expected total: the track's size, else what the server said.
    size_hint: Option<u64>,
    /// A response has been received at least once (a later connect error is a
    /// dropped network, not "offline from the start").
    ever_connected: bool,
    /// Bytes came from more than one response (a resume happened).
    resumed: bool,
}

/// Downloads `track`, returns the final path of its verified file.
pub(crate) async fn run(
    inner: Arc<Inner>,
    track: CacheTrack,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Result<PathBuf, CacheError> {
    let id = track.id.clone();
    let path = inner.layout.partial_file(&id);
    let (writer, partial) = {
        let shared = Arc::clone(&shared);
        let index = Arc::clone(&inner.index);
        let id2 = id.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let w = PartialWriter::open(&id2, path, shared)?;
            let row = index
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_partial(&id2)
                .map_err(|e| CacheError::index(&id2, "reading the partial row", &e))?;
            Ok::<_, CacheError>((w, row))
        })
        .await;
        opened
            .map_err(|e| CacheError::io_task_failed(&id, "opening the partial download", &e))??
    };
    let mut job = Job {
        size_hint: track.size,
        etag: None,
        writer: Arc::new(Mutex::new(writer)),
        inner,
        shared,
        cancel,
        ever_connected: false,
        resumed: false,
        track,
    };
    let expected_sha = job.track.expected_sha256();
    match partial {
        Some(row)
            if row.url == job.track.url
                && (row.sha256.is_none()
                    || expected_sha.is_none()
                    || row.sha256 == expected_sha)
                // Kept bytes are trusted only if the whole file will be hashed
                // against a known value: after a power cut a partial file may end
                // in bytes that were never written (SIGKILL cannot do that).
                && (expected_sha.is_some()
                    || row.sha256.is_some()
                    || row.etag.as_deref().and_then(etag_sha256).is_some()) =>
        {
            job.etag = row.etag;
            job.size_hint = job.size_hint.or(row.size);
        }
        _ => {
            // No record of what these bytes are, another file now, or nothing to
            // verify them against: start over.
            with_writer(&id, &job.writer, |w| w.reset()).await?;
        }
    }
    if job.etag.is_none() {
        job.etag = job.track.etag.clone();
    }
    job.shared.set_total(job.size_hint);
    job.download().await
}

impl Job {
    fn id(&self) -> &str {
        &self.track.id
    }

    fn offset(&self) -> u64 {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offset()
    }

    async fn download(&mut self) -> Result<PathBuf, CacheError> {
        let mut restarted = false;
        let mut room_made = 0u32;
        loop {
            let offset = self.offset();
            if offset > 0 {
                // Kept bytes from an earlier run. Readers get them once the server
                // has answered (not before: offline, `get_or_fetch` must fail at once
                // rather than hand out a reader that stops mid-track).
                self.resumed = true;
            }
            let complete_locally = self.size_hint.is_some_and(|s| s == offset && offset > 0);
            if !complete_locally && let Err(e) = self.transfer().await {
                if matches!(e, CacheError::DiskFull { .. }) && room_made < MAX_MAKE_ROOM_ROUNDS {
                    let needed = self
                        .size_hint
                        .map_or(1, |s| s.saturating_sub(self.offset()).max(1));
                    if self.make_room(needed).await > 0 {
                        room_made += 1;
                        continue;
                    }
                }
                // A full disk needs the room back; a file that is gone (404/410)
                // will never resume. Auth failures (401/403) keep the partial: the
                // caller may retry with a fresh token.
                if matches!(
                    e,
                    CacheError::DiskFull { .. }
                        | CacheError::HttpStatus {
                            status: 404 | 410,
                            ..
                        }
                ) {
                    self.discard(&e).await;
                }
                return Err(e);
            }
            match self.commit().await {
                Ok(path) => return Ok(path),
                Err(e @ (CacheError::HashMismatch { .. } | CacheError::SizeMismatch { .. }))
                    if self.resumed && !restarted =>
                {
                    // Bytes from two responses may not belong together: one clean try.
                    tracing::warn!(track = %self.id(), error = %e, "verification failed after a resume; downloading again from the start");
                    restarted = true;
                    self.resumed = false;
                    self.etag = None;
                    with_writer(self.id(), &self.writer, |w| w.reset()).await?;
                }
                Err(e) => {
                    if !e.is_transient() {
                        self.discard(&e).await;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Evicts least recently used unpinned tracks to free `needed` bytes after the
    /// disk filled up. Returns the bytes freed (0: nothing could be done).
    async fn make_room(&self, needed: u64) -> u64 {
        let inner = Arc::clone(&self.inner);
        let id = self.track.id.clone();
        let freed = tokio::task::spawn_blocking(move || {
            let removed = inner
                .index
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .evict_for_space(needed, &id);
            match removed {
                Ok(removed) => {
                    inner.delete_files(&removed);
                    removed
                        .iter()
                        .filter(|r| r.file_unreferenced)
                        .map(|r| r.size)
                        .sum::<u64>()
                }
                Err(e) => {
                    tracing::warn!(track = %id, error = %e, "could not evict to make room");
                    0
                }
            }
        })
        .await
        .unwrap_or(0);
        if freed > 0 {
            tracing::warn!(track = %self.id(), needed, freed, "disk full: evicted older tracks to make room");
        }
        freed
    }

    /// Deletes the partial file and its row.
    async fn discard(&self, why: &CacheError) {
        let w = Arc::clone(&self.writer);
        let index = Arc::clone(&self.inner.index);
        let id = self.track.id.clone();
        let why = why.clone();
        let done = tokio::task::spawn_blocking(move || {
            w.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .discard(why);
            if let Err(e) = index
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .delete_partial(&id)
            {
                tracing::warn!(track = %id, error = %e, "could not delete the partial row");
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(track = %self.id(), error = %e, "discarding the partial failed");
        }
    }

    /// Attempts until one body arrives whole.
    async fn transfer(&mut self) -> Result<(), CacheError> {
        let mut failures = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Err(self.cancelled());
            }
            let before = self.offset();
            match self.attempt().await {
                Ok(()) => return Ok(()),
                Err(AttemptEnd::Fail(e)) => return Err(e),
                Err(AttemptEnd::Retry { message, connect }) => {
                    if connect && !self.ever_connected {
                        return Err(CacheError::Offline {
                            id: self.track.id.clone(),
                            url: self.track.url.clone(),
                            message,
                        });
                    }
                    let progressed = self.offset() > before;
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures > self.inner.config.max_retries {
                        return Err(if connect {
                            CacheError::Offline {
                                id: self.track.id.clone(),
                                url: self.track.url.clone(),
                                message,
                            }
                        } else {
                            CacheError::Network {
                                id: self.track.id.clone(),
                                url: self.track.url.clone(),
                                message,
                            }
                        });
                    }
                    let backoff = self
                        .inner
                        .config
                        .retry_backoff
                        .saturating_mul(1 << (failures - 1).min(16))
                        .min(MAX_RETRY_BACKOFF);
                    tracing::info!(track = %self.id(), failures, ?backoff, %message, "transfer interrupted; resuming");
                    tokio::select! {
                        biased;
                        () = self.cancel.cancelled() => return Err(self.cancelled()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }

    fn cancelled(&self) -> CacheError {
        CacheError::Cancelled {
            id: self.track.id.clone(),
        }
    }

    fn retry(message: impl Into<String>) -> AttemptEnd {
        AttemptEnd::Retry {
            message: message.into(),
            connect: false,
        }
    }

    /// One request: headers, then the body into the writer.
    async fn attempt(&mut self) -> Result<(), AttemptEnd> {
        let id = self.track.id.clone();
        let offset = self.offset();
        let mut req = self.inner.client.get(&self.track.url);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
            if let Some(etag) = self.etag.as_deref().filter(|e| is_strong_etag(e)) {
                req = req.header(IF_RANGE, etag);
            }
        }
        if let Some(token) = self.inner.auth_for(&self.track.url) {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let sent = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(AttemptEnd::Fail(self.cancelled())),
            r = tokio::time::timeout(self.inner.config.stall_timeout, req.send()) => r,
        };
        let mut resp = match sent {
            Err(_) => return Err(Self::retry("no response headers within the stall timeout")),
            Ok(Err(e)) => {
                return Err(AttemptEnd::Retry {
                    connect: e.is_connect(),
                    message: e.to_string(),
                });
            }
            Ok(Ok(r)) => r,
        };
        self.ever_connected = true;
        let status = resp.status();
        let new_etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let total = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_content_range);
                let changed = offset > 0
                    && self.etag.as_deref().is_some_and(is_strong_etag)
                    && new_etag.is_some()
                    && new_etag != self.etag;
                match range {
                    Some((start, _, total)) if start == offset && !changed => total,
                    _ => {
                        tracing::warn!(track = %id, offset, "206 that does not continue our bytes; starting over");
                        self.reset().await?;
                        return Err(Self::retry("206 with an unexpected Content-Range or ETag"));
                    }
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    tracing::info!(track = %id, offset, "server sent the whole file; comparing the kept bytes");
                    let w = Arc::clone(&self.writer);
                    w.lock().unwrap_or_else(PoisonError::into_inner).rewind();
                    self.resumed = true;
                }
                resp.content_length()
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                self.reset().await?;
                return Err(Self::retry("416 for a resume; starting over"));
            }
            s if s.is_server_error()
                || s == StatusCode::REQUEST_TIMEOUT
                || s == StatusCode::TOO_MANY_REQUESTS =>
            {
                return Err(Self::retry(format!("server answered {s}")));
            }
            s => {
                return Err(AttemptEnd::Fail(CacheError::HttpStatus {
                    id,
                    url: self.track.url.clone(),
                    status: s.as_u16(),
                }));
            }
        };
        if offset > 0 && status == StatusCode::PARTIAL_CONTENT {
            self.resumed = true;
        }
        if self.size_hint.is_none() {
            self.size_hint = total;
            self.shared.set_total(total);
        }
        if new_etag.is_some() {
            self.etag = new_etag;
        }
        self.record_partial().await.map_err(AttemptEnd::Fail)?;
        self.shared.set_streaming();
        loop {
            let chunk = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(AttemptEnd::Fail(self.cancelled())),
                r = tokio::time::timeout(self.inner.config.stall_timeout, resp.chunk()) => r,
            };
            match chunk {
                Ok(Ok(Some(bytes))) => {
                    with_writer(&id, &self.writer, move |w| w.write(&bytes))
                        .await
                        .map_err(AttemptEnd::Fail)?;
                }
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) => return Err(Self::retry(format!("transfer broke: {e}"))),
                Err(_) => return Err(Self::retry("no byte within the stall timeout")),
            }
        }
    }

    async fn reset(&mut self) -> Result<(), AttemptEnd> {
        self.etag = None;
        with_writer(self.id(), &self.writer, |w| w.reset())
            .await
            .map_err(AttemptEnd::Fail)
    }

    /// Writes the partial row before any byte of this response lands in the file, so
    /// a kept partial always has its URL and ETag on record.
    async fn record_partial(&self) -> Result<(), CacheError> {
        let row = PartialRow {
            track_id: self.track.id.clone(),
            url: self.track.url.clone(),
            etag: self.etag.clone(),
            sha256: self.track.expected_sha256(),
            size: self.size_hint,
            updated_at: now_ms(),
        };
        let index = Arc::clone(&self.inner.index);
        let id = self.track.id.clone();
        tokio::task::spawn_blocking(move || {
            index
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .upsert_partial(&row)
                .map_err(|e| CacheError::index(&id, "recording the partial download", &e))
        })
        .await
        .map_err(|e| {
            CacheError::index_task_failed(self.id(), "recording the partial download", &e)
        })?
    }

    /// Verifies, moves the file into place, writes the index row, evicts.
    async fn commit(&self) -> Result<PathBuf, CacheError> {
        let inner = Arc::clone(&self.inner);
        let track = self.track.clone();
        let w = Arc::clone(&self.writer);
        let etag = self.etag.clone();
        // The track's sha256, else the one the server's ETag claims.
        let expected_sha = track
            .expected_sha256()
            .or_else(|| etag.as_deref().and_then(etag_sha256));
        let expected_size = self.size_hint;
        tokio::task::spawn_blocking(move || {
            let committed = w.lock().unwrap_or_else(PoisonError::into_inner).commit(
                &inner.layout,
                expected_sha.as_deref(),
                expected_size,
            )?;
            record_committed(&inner, &track, &committed, etag)
        })
        .await
        .map_err(|e| CacheError::io_task_failed(self.id(), "committing the download", &e))?
    }
}

/// A download in flight, shared by everyone who asked for the track.
#[derive(Debug)]
pub(crate) struct Download {
    pub shared: Arc<Shared>,
    pub cancel: CancellationToken,
}

/// Writes the index row of a file [`PartialWriter::commit`] just moved into place,
/// drops the track's partial row and evicts down to the limits. A row that cannot
/// be written does not leave its file behind.
pub(crate) fn record_committed(
    inner: &Inner,
    track: &CacheTrack,
    committed: &Committed,
    etag: Option<String>,
) -> Result<PathBuf, CacheError> {
    let entry = StoredTrack {
        id: track.id.clone(),
        url: track.url.clone(),
        etag,
        sha256: committed.sha256.clone(),
        size: committed.size,
        mime: track.mime.clone(),
        title: track.title.clone(),
        artist: track.artist.clone(),
        duration: track.duration,
        cached_at: now_ms(),
    };
    let (max_tracks, max_bytes) = inner.limits();
    let removed = {
        let mut index = inner.index()?;
        let inserted = index
            .insert(&entry)
            .map_err(|e| CacheError::index(&track.id, "recording the cached track", &e));
        let replaced = match inserted {
            Ok(r) => r,
            Err(e) => {
                // No row points at the file: do not leave it behind.
                if !index.is_referenced(&committed.sha256).unwrap_or(true) {
                    let _ = remove_file_if_exists(&committed.path);
                }
                return Err(e);
            }
        };
        if let Err(e) = index.delete_partial(&track.id) {
            tracing::warn!(track = %track.id, error = %e, "could not delete the partial row");
        }
        let mut removed: Vec<_> = replaced.into_iter().collect();
        match index.evict(max_tracks, max_bytes, Some(&track.id)) {
            Ok(r) => removed.extend(r),
            Err(e) => tracing::warn!(error = %e, "eviction failed"),
        }
        removed
    };
    inner.delete_files(&removed);
    tracing::info!(track = %track.id, sha256 = %committed.sha256, size = committed.size, "cached");
    Ok(committed.path.clone())
}

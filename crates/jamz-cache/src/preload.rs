//! `preload`: fetch a list of tracks one after another, with progress and
//! cancellation.

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::error::CacheError;
use crate::shared::wait_done;
use crate::track::CacheTrack;

/// Progress is reported at least every this many bytes of one download (and at each
/// item's end): 256 KiB is ~2 s of a 128 kbit/s MP3 per update on a slow link, and
/// only a few hundred callbacks for a whole album on a fast one.
const PROGRESS_STEP: u64 = 256 * 1024;

/// Where a preload stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreloadProgress {
    pub items_done: usize,
    pub items_total: usize,
    /// Bytes of finished items plus bytes downloaded of the current one.
    pub bytes_done: u64,
    /// Sum of the sizes known so far (tracks without a `size` add theirs once the
    /// server tells it).
    pub bytes_total: u64,
    /// The track being fetched.
    pub current: Option<String>,
}

/// How a preload ended.
#[derive(Debug, Default)]
pub struct PreloadReport {
    /// Downloaded by this preload (or by a download it joined).
    pub fetched: Vec<String>,
    /// Already complete in the cache.
    pub already_cached: Vec<String>,
    /// Failed, with why; the preload goes on with the next track.
    pub failed: Vec<(String, CacheError)>,
    /// Stopped by the cancellation token.
    pub cancelled: bool,
}

impl Cache {
    /// Fetches `tracks` in order, one at a time (leaving bandwidth to playback),
    /// skipping those already cached. Calls `progress` as bytes arrive and after each
    /// item. Cancelling `cancel` stops it promptly; a download it started is
    /// cancelled too unless a reader is attached (its partial file is kept).
    /// Preloads do not count as hits or misses.
    pub async fn preload(
        &self,
        tracks: &[CacheTrack],
        mut progress: impl FnMut(&PreloadProgress) + Send,
        cancel: &CancellationToken,
    ) -> PreloadReport {
        let mut report = PreloadReport::default();
        let mut p = PreloadProgress {
            items_total: tracks.len(),
            bytes_total: tracks.iter().filter_map(|t| t.size).sum(),
            ..PreloadProgress::default()
        };
        progress(&p);
        for track in tracks {
            if cancel.is_cancelled() {
                report.cancelled = true;
                break;
            }
            p.current = Some(track.id.clone());
            if let Err(e) = track.validate() {
                report.failed.push((track.id.clone(), e));
                p.items_done += 1;
                progress(&p);
                continue;
            }
            if let Ok(Some(entry)) = self.entry(&track.id).await
                && track
                    .expected_sha256()
                    .is_none_or(|sha| sha == entry.stored.sha256)
                && self.contains(&track.id).await.unwrap_or(false)
            {
                if track.size.is_none() {
                    p.bytes_total += entry.stored.size;
                }
                p.bytes_done += entry.stored.size;
                p.items_done += 1;
                report.already_cached.push(track.id.clone());
                progress(&p);
                continue;
            }
            let dl = self.start_or_join(track);
            let shared = &dl.shared;
            shared.preloaders.fetch_add(1, Ordering::SeqCst);
            let base = p.bytes_done;
            let mut learned_total = track.size.is_some();
            let mut bytes = shared.bytes();
            // Bytes written before we subscribed count too.
            bytes.mark_changed();
            let mut last = 0u64;
            let done = wait_done(shared);
            tokio::pin!(done);
            let result = loop {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => {
                        let left = shared.preloaders.fetch_sub(1, Ordering::SeqCst) - 1;
                        if left == 0 && shared.readers.load(Ordering::SeqCst) == 0 {
                            dl.cancel.cancel();
                        }
                        report.cancelled = true;
                        progress(&p);
                        return report;
                    }
                    r = &mut done => break r,
                    changed = bytes.changed() => {
                        if changed.is_err() {
                            break (&mut done).await;
                        }
                        let now = *bytes.borrow_and_update();
                        if !learned_total && let Some(t) = shared.lock().total {
                            p.bytes_total += t;
                            learned_total = true;
                        }
                        if now.saturating_sub(last) >= PROGRESS_STEP {
                            last = now;
                            p.bytes_done = base + now;
                            progress(&p);
                        }
                    }
                }
            };
            shared.preloaders.fetch_sub(1, Ordering::SeqCst);
            let size = shared.lock().valid_len;
            match result {
                Ok(_) => {
                    if !learned_total {
                        p.bytes_total += size;
                    }
                    p.bytes_done = base + size;
                    report.fetched.push(track.id.clone());
                }
                Err(e) => {
                    p.bytes_done = base;
                    if let Some(s) = track.size {
                        p.bytes_total = p.bytes_total.saturating_sub(s);
                    }
                    report.failed.push((track.id.clone(), e));
                }
            }
            p.items_done += 1;
            progress(&p);
        }
        p.current = None;
        progress(&p);
        report
    }
}

//! Keeping the playlist on disk: pins, the asked-for preload and the
//! background one.

use super::*;

/// Keeps the cache's pins equal to the latest playlist, one change at a time.
pub(super) fn spawn_pinning(cache: Cache) -> tokio::sync::watch::Sender<Vec<String>> {
    let (tx, mut rx) = tokio::sync::watch::channel(Vec::new());
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let ids = rx.borrow_and_update().clone();
            if let Err(e) = cache.set_pinned(&ids).await {
                tracing::warn!(error = %e, "cannot pin the playlist in the cache");
            }
        }
    });
    tx
}

impl Runtime {
    /// The session's playlist is what must play offline: its cached tracks are
    /// kept whatever the size limit (jamz-cache never evicts pinned tracks).
    pub(super) fn pin_playlist(&self, playlist: &[Track]) {
        let ids: Vec<String> = playlist.iter().map(|t| t.id.clone()).collect();
        self.pins.send_replace(ids);
    }

    /// The background preload, when it is on and the server is reachable. A run
    /// asked for by the user is left to finish; a background one starts over
    /// with the new playlist (tracks already cached are skipped at once).
    pub(super) fn auto_preload(&mut self) {
        if !self.auto_preload || !self.connected || (self.preload.is_some() && self.preload_manual)
        {
            return;
        }
        self.preload(false);
    }

    /// Caches the whole playlist with `progress` events; `manual` runs (the
    /// `preload` command) also report each track that fails.
    pub(super) fn preload(&mut self, manual: bool) {
        if let Some(old) = self.preload.take() {
            old.cancel();
        }
        let cancel = CancellationToken::new();
        self.preload = Some(cancel.clone());
        self.preload_generation += 1;
        self.preload_manual = manual;
        let generation = self.preload_generation;
        // Only what this device plays through the cache (a YouTube video is not fetched).
        let tracks: Vec<_> = self
            .playlist
            .iter()
            .filter_map(|t| jamz_sync::sources::audio_of(t).ok())
            .map(|t| cache_track(&t))
            .collect();
        let cache = self.cache.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let j = jobs.clone();
            let mut last = (usize::MAX, 0u64);
            let report = cache
                .preload(
                    &tracks,
                    move |p| {
                        // Per item, and per MiB within an item.
                        let key = (p.items_done, p.bytes_done >> 20);
                        if key != last {
                            last = key;
                            let _ = j.send(Job::Event(NodeEvent::Progress {
                                what: "preload".into(),
                                done: p.items_done as u64,
                                total: p.items_total as u64,
                            }));
                        }
                    },
                    &cancel,
                )
                .await;
            for (id, e) in &report.failed {
                if manual {
                    let _ = jobs.send(Job::Event(NodeEvent::error(
                        format!("preload: track {id}: {e}"),
                        Some("preload"),
                    )));
                } else {
                    tracing::info!(track = %id, error = %e, "background preload");
                }
            }
            let _ = jobs.send(Job::PreloadDone(generation));
        });
    }
}

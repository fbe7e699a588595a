//! The audio adapter's task: takes playout commands in order, fetches tracks
//! through the cache, and calls the player (whose file-opening calls run on a
//! blocking thread, never on the runtime's workers).
//!
//! A start waits for its track to be in the cache; commands that come while it
//! waits supersede it (a pause or stop cancels it, a newer start (also a seek)
//! replaces it), so the player always ends up doing the last thing asked.

use std::path::PathBuf;
use std::sync::Arc;

use jamz_audio::{Player, PlayerEvent, Source};
use jamz_cache::Cache;
use jamz_proto::Track;
use tokio::sync::mpsc;

use crate::clock::LocalClock;
use crate::tracks::cache_track;

/// What the node asks of the audio side.
#[derive(Debug, Clone)]
pub enum AudioJob {
    /// Play `track` so that `position` (s) is audible at local time `at_ms`.
    Start {
        track: Box<Track>,
        position: f64,
        at_ms: f64,
    },
    Pause,
    Stop,
    RateTrim {
        ppm: f64,
    },
    Volume {
        level: f32,
    },
}

/// What the audio side reports back to the node.
#[derive(Debug, Clone)]
pub enum AudioReport {
    /// The track could not be fetched or opened.
    Failed {
        track: Option<String>,
        message: String,
    },
    /// A track reached its end.
    Ended { track: String },
    /// The player's own events, for the log and the engine.
    Player(PlayerEvent),
}

/// The handle the node keeps.
#[derive(Debug, Clone)]
pub struct AudioHandle {
    jobs: mpsc::UnboundedSender<AudioJob>,
    player: Arc<Player>,
}

impl AudioHandle {
    /// Queues a job (dropped silently once the audio task is gone).
    pub fn send(&self, job: AudioJob) {
        let _ = self.jobs.send(job);
    }

    /// The player, for cheap clock reads (`audible_position`).
    pub fn player(&self) -> &Player {
        &self.player
    }
}

struct Pending {
    generation: u64,
    track: Box<Track>,
    position: f64,
    at_ms: f64,
}

/// Starts the audio task and the thread forwarding the player's events.
pub fn spawn(
    player: Arc<Player>,
    cache: Cache,
    clock: LocalClock,
    reports: mpsc::UnboundedSender<AudioReport>,
) -> AudioHandle {
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    // Player events come on a crossbeam channel: one thread bridges them.
    let events = player.events();
    let fwd = reports.clone();
    let spawned = std::thread::Builder::new()
        .name("jamz-audio-events".into())
        .spawn(move || {
            while let Ok(ev) = events.recv() {
                let report = match &ev {
                    PlayerEvent::TrackEnded { track } => AudioReport::Ended {
                        track: track.clone(),
                    },
                    _ => AudioReport::Player(ev),
                };
                if fwd.send(report).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the audio event thread; track ends go unreported");
    }
    tokio::spawn(run(Arc::clone(&player), cache, clock, jobs_rx, reports));
    AudioHandle {
        jobs: jobs_tx,
        player,
    }
}

async fn run(
    player: Arc<Player>,
    cache: Cache,
    clock: LocalClock,
    mut jobs: mpsc::UnboundedReceiver<AudioJob>,
    reports: mpsc::UnboundedSender<AudioReport>,
) {
    let (fetched_tx, mut fetched_rx) =
        mpsc::unbounded_channel::<(u64, String, Result<PathBuf, String>)>();
    let mut generation = 0u64;
    let mut pending: Option<Pending> = None;
    // The engine restarts a track that is not audible; a track that cannot be
    // fetched fails the same way each time: say so once, until a start succeeds.
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                match job {
                    AudioJob::Start { track, position, at_ms } => {
                        generation += 1;
                        let g = generation;
                        let ct = cache_track(&track);
                        let c = cache.clone();
                        let tx = fetched_tx.clone();
                        let id = track.id.clone();
                        tokio::spawn(async move {
                            let r = c.fetch_to_path(&ct).await.map_err(|e| e.to_string());
                            if r.is_ok() {
                                let _ = c.mark_played(&ct.id).await;
                            }
                            let _ = tx.send((g, id, r));
                        });
                        pending = Some(Pending { generation: g, track, position, at_ms });
                    }
                    AudioJob::Pause => {
                        generation += 1;
                        pending = None;
                        let _ = player.pause();
                    }
                    AudioJob::Stop => {
                        generation += 1;
                        pending = None;
                        player.stop();
                    }
                    AudioJob::RateTrim { ppm } => {
                        if let Err(e) = player.set_rate_trim(ppm) {
                            let _ = reports.send(AudioReport::Failed { track: None, message: e.to_string() });
                        }
                    }
                    AudioJob::Volume { level } => {
                        if let Err(e) = player.set_volume(level) {
                            let _ = reports.send(AudioReport::Failed { track: None, message: e.to_string() });
                        }
                    }
                }
            }
            Some((g, id, result)) = fetched_rx.recv() => {
                let Some(p) = pending.take_if(|p| p.generation == g) else {
                    tracing::debug!(track = %id, "fetched a track no longer wanted");
                    continue;
                };
                match result {
                    Ok(path) => {
                        let pl = Arc::clone(&player);
                        let at = clock.instant_at(p.at_ms);
                        let source = Source::new(p.track.id.clone(), path);
                        let position = p.position;
                        let r = tokio::task::spawn_blocking(move || pl.start(source, position, at)).await;
                        if matches!(r, Ok(Ok(()))) {
                            failing = None;
                        } else if failing.as_deref() != Some(p.track.id.as_str()) {
                            failing = Some(p.track.id.clone());
                            report_blocking(&reports, Some(p.track.id), r);
                        }
                    }
                    Err(message) => {
                        if failing.as_deref() == Some(p.track.id.as_str()) {
                            tracing::debug!(track = %p.track.id, %message, "still cannot fetch the track");
                            continue;
                        }
                        failing = Some(p.track.id.clone());
                        let _ = reports.send(AudioReport::Failed {
                            track: Some(p.track.id),
                            message: format!("cannot fetch the track: {message}"),
                        });
                    }
                }
            }
        }
    }
}

fn report_blocking(
    reports: &mpsc::UnboundedSender<AudioReport>,
    track: Option<String>,
    r: Result<jamz_audio::Result<()>, tokio::task::JoinError>,
) {
    let message = match r {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    let _ = reports.send(AudioReport::Failed { track, message });
}

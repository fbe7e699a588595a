//! The audio adapter's task: takes playout commands in order, fetches tracks
//! through the cache, and calls the player (whose file-opening calls run on a
//! blocking thread, never on the runtime's workers).
//!
//! A start waits for its track to be in the cache; commands that come while it
//! waits supersede it (a pause or stop cancels it, a newer start (also a seek)
//! replaces it), so the player always ends up doing the last thing asked.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jamz_audio::{OutputSpec, Player, PlayerEvent, Source};
use jamz_cache::Cache;
use jamz_proto::Track;
use jamz_sync::AudioCommand;
use tokio::sync::mpsc;

use crate::clock::LocalClock;
use crate::tracks::cache_track;

/// What the node asks of the audio side.
// A few jobs a second at most: a start's `Track` inline costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AudioJob {
    /// What the engine decided for the player: start (at a local instant), pause, stop,
    /// rate trim. The runtime answers `Preload` and `QueryClock` itself.
    Playout(AudioCommand),
    Volume {
        level: f32,
    },
    /// The output's extra latency (a Bluetooth stereo's); the engine sees the
    /// audible position move and corrects for it like any other drift.
    LatencyOffset {
        offset: Duration,
    },
    /// Open another output (the engine then restarts playback there).
    SwitchOutput {
        spec: OutputSpec,
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
    /// Now playing on this output.
    OutputSwitched { spec: String },
}

/// The player in use; replaced when the output is switched.
type SharedPlayer = Arc<RwLock<Arc<Player>>>;

/// The handle the node keeps.
#[derive(Debug, Clone)]
pub struct AudioHandle {
    jobs: mpsc::UnboundedSender<AudioJob>,
    player: SharedPlayer,
}

impl AudioHandle {
    /// Queues a job (dropped silently once the audio task is gone).
    pub fn send(&self, job: AudioJob) {
        let _ = self.jobs.send(job);
    }

    /// The player, for cheap clock reads (`audible_position`).
    pub fn player(&self) -> Arc<Player> {
        current(&self.player)
    }
}

fn current(shared: &SharedPlayer) -> Arc<Player> {
    // A poisoned lock still holds a valid Arc (it is only ever swapped whole).
    Arc::clone(&shared.read().unwrap_or_else(|e| e.into_inner()))
}

/// Forwards a player's events to the node on a thread of their own (they come on
/// a crossbeam channel); the thread ends when the player is dropped.
fn forward_events(player: &Player, reports: mpsc::UnboundedSender<AudioReport>) {
    let events = player.events();
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
                if reports.send(report).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the audio event thread; track ends go unreported");
    }
}

struct Pending {
    generation: u64,
    track: Track,
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
    forward_events(&player, reports.clone());
    let shared: SharedPlayer = Arc::new(RwLock::new(player));
    tokio::spawn(run(Arc::clone(&shared), cache, clock, jobs_rx, reports));
    AudioHandle {
        jobs: jobs_tx,
        player: shared,
    }
}

/// What the audio task carries over to another output.
#[derive(Default)]
struct Carried {
    volume: Option<f32>,
}

async fn run(
    shared: SharedPlayer,
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
    let mut carried = Carried::default();
    loop {
        let player = current(&shared);
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                match job {
                    AudioJob::Playout(AudioCommand::Start { track, position, at: at_ms }) => {
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
                    AudioJob::Playout(AudioCommand::Pause) => {
                        generation += 1;
                        pending = None;
                        let _ = player.pause();
                    }
                    AudioJob::Playout(AudioCommand::Stop) => {
                        generation += 1;
                        pending = None;
                        player.stop();
                    }
                    AudioJob::Playout(AudioCommand::SetRateTrim { ppm }) => {
                        if let Err(e) = player.set_rate_trim(ppm) {
                            let _ = reports.send(AudioReport::Failed { track: None, message: e.to_string() });
                        }
                    }
                    AudioJob::Volume { level } => {
                        carried.volume = Some(level);
                        if let Err(e) = player.set_volume(level) {
                            let _ = reports.send(AudioReport::Failed { track: None, message: e.to_string() });
                        }
                    }
                    AudioJob::LatencyOffset { offset } => {
                        if let Err(e) = player.set_latency_offset(offset) {
                            let _ = reports.send(AudioReport::Failed { track: None, message: e.to_string() });
                        }
                    }
                    AudioJob::SwitchOutput { spec } => {
                        switch_output(&shared, spec, &carried, &reports).await;
                    }
                    AudioJob::Playout(other @ (AudioCommand::Preload(_) | AudioCommand::QueryClock)) => {
                        tracing::debug!(command = ?other, "not the audio task's: the runtime answers it");
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

/// Opens `spec`, moves the settings over and stops the old output; the node's
/// engine then restarts playback on the new one (it owns every restart). On
/// failure the old output keeps playing.
async fn switch_output(
    shared: &SharedPlayer,
    spec: OutputSpec,
    carried: &Carried,
    reports: &mpsc::UnboundedSender<AudioReport>,
) {
    let old = current(shared);
    let label = spec.to_string();
    let opened = tokio::task::spawn_blocking(move || Player::new(&spec)).await;
    let new = match opened {
        Ok(Ok(p)) => Arc::new(p),
        Ok(Err(e)) => {
            let _ = reports.send(AudioReport::Failed {
                track: None,
                message: format!("cannot switch to output `{label}`: {e}"),
            });
            return;
        }
        Err(e) => {
            let _ = reports.send(AudioReport::Failed {
                track: None,
                message: format!("cannot switch to output `{label}`: {e}"),
            });
            return;
        }
    };
    // The engine restarts playback on the new output as soon as it hears of it: let the
    // output get through its start-up first (the old one plays meanwhile).
    let warming = Arc::clone(&new);
    let warm =
        tokio::task::spawn_blocking(move || warming.wait_warm(crate::runtime::OUTPUT_WARM_TIMEOUT))
            .await;
    if !matches!(warm, Ok(true)) {
        tracing::warn!(output = %label, "the new output is not running steadily yet; switching anyway");
    }
    let setup = (|| -> jamz_audio::Result<()> {
        new.set_latency_offset(old.latency_offset())?;
        new.set_rate_trim(old.rate_trim())?;
        if let Some(v) = carried.volume {
            new.set_volume(v)?;
        }
        Ok(())
    })();
    if let Err(e) = setup {
        tracing::warn!(error = %e, "carrying settings to the new output");
    }
    forward_events(&new, reports.clone());
    old.stop();
    *shared.write().unwrap_or_else(|e| e.into_inner()) = new;
    tracing::info!(output = %label, "switched the audio output");
    let _ = reports.send(AudioReport::OutputSwitched { spec: label });
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

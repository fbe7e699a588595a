//! The audio adapter's task: takes playout commands in order, fetches tracks
//! through the cache, and calls the player (whose file-opening calls run on a
//! blocking thread, never on the runtime's workers, and are never waited for
//! here: opening a stream waits for its bytes, for as long as a download of
//! unknown size or an M4A with its index at the end takes, and the task goes on
//! taking commands meanwhile; see `jamz_audio::StartTicket`).
//!
//! A start of a cached track plays its file. A track not cached yet plays from the
//! cache's reader over its download as soon as enough of it is there for the start
//! (`jamz_sync::sources::start_bytes`, for where the group is by then); meanwhile,
//! and whenever the download falls behind the player later, the task reports the
//! track as buffering (the engine tells the user and does not restart it), and
//! the player keeps it on the group's timeline. Commands that come while a start
//! waits supersede it (a pause or stop cancels it, a newer start (also a seek)
//! replaces it), so the player always ends up doing the last thing asked. An output
//! switch opens and warms the new output off the task too: the old output plays, and
//! takes the commands, until the new one is ready; a later switch supersedes it.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use jamz_audio::{OpenStream, OutputSpec, Player, PlayerEvent, Source, StreamRead};
use jamz_cache::{Cache, TrackReader};
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
    /// `track` waits for bytes still downloading (`true`: silent meanwhile), or has
    /// them again (`false`).
    Buffering { track: String, buffering: bool },
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

/// How long a read of bytes still downloading waits before the track is reported as
/// buffering (the read then waits on): the decoder reads 0.5 s ahead of the output, so
/// the report comes before the output falls silent.
const STALL_REPORT_WAIT: Duration = Duration::from_millis(250);

/// How often a start waiting for bytes looks again at where the group is (the bytes it
/// needs grow with the position).
const START_WAIT_STEP: Duration = Duration::from_millis(100);

/// The cache's reader over a track, for the player: opened anew from its start for each
/// start, seek or resume, reporting when a read waits for bytes still downloading.
#[derive(Debug)]
struct CacheStream {
    reader: TrackReader,
    stall: Arc<StallReport>,
}

/// Tells the node, once per change, whether `track` waits for its bytes. One per start:
/// once a newer command supersedes the start it is retired (told as over) and silent.
#[derive(Debug)]
struct StallReport {
    track: String,
    /// (waiting now, retired); sent under the lock so the reports stay in order.
    state: Mutex<(bool, bool)>,
    reports: mpsc::UnboundedSender<AudioReport>,
}

impl StallReport {
    fn new(track: &str, reports: &mpsc::UnboundedSender<AudioReport>) -> Arc<Self> {
        Arc::new(StallReport {
            track: track.to_owned(),
            state: Mutex::new((false, false)),
            reports: reports.clone(),
        })
    }

    fn set(&self, buffering: bool) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.1 || st.0 == buffering {
            return;
        }
        st.0 = buffering;
        let _ = self.reports.send(AudioReport::Buffering {
            track: self.track.clone(),
            buffering,
        });
    }

    /// The start this reports for is superseded: a wait it reported is over.
    fn retire(&self) {
        self.set(false);
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
    }
}

impl OpenStream for CacheStream {
    fn open(&self) -> std::io::Result<Box<dyn StreamRead>> {
        let mut reader = self.reader.reopen()?;
        reader.set_read_wait(STALL_REPORT_WAIT);
        Ok(Box::new(ReportingReader {
            reader,
            stall: Arc::clone(&self.stall),
        }))
    }
}

struct ReportingReader {
    reader: TrackReader,
    stall: Arc<StallReport>,
}

impl std::io::Read for ReportingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = std::io::Read::read(&mut self.reader, buf);
        match &r {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => self.stall.set(true),
            Ok(n) if *n > 0 => self.stall.set(false),
            _ => {}
        }
        r
    }
}

impl std::io::Seek for ReportingReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        std::io::Seek::seek(&mut self.reader, to)
    }
}

impl StreamRead for ReportingReader {
    fn byte_len(&self) -> Option<u64> {
        self.reader.len()
    }
}

/// A track's source for the player, once enough of it is there to start at
/// `position` (s) due at local `at_ms`: its file if cached, else the cache's reader
/// over its download. Reports the track buffering while the start waits.
async fn source_for(
    cache: &Cache,
    clock: &LocalClock,
    track: &Track,
    position: f64,
    at_ms: f64,
    stall: &Arc<StallReport>,
) -> Result<Source, String> {
    let ct = cache_track(track);
    let reader = cache.get_or_fetch(&ct).await.map_err(|e| e.to_string())?;
    if let Some(path) = reader.final_path() {
        let _ = cache.mark_played(&ct.id).await;
        return Ok(Source::new(track.id.clone(), path));
    }
    // Played when its download completes (a later start then finds it cached).
    let (c, done) = (cache.clone(), ct.clone());
    tokio::spawn(async move {
        if c.fetch_to_path(&done).await.is_ok() {
            let _ = c.mark_played(&done.id).await;
        }
    });
    let mut reader = reader;
    loop {
        // Where the group is by now: the start lands there (a late start skips ahead).
        let late_s = ((clock.now_ms() - at_ms) / 1000.0).max(0.0);
        let Some(need) = jamz_sync::sources::start_bytes(track, position + late_s) else {
            break;
        };
        let (r, got) = tokio::task::spawn_blocking(move || {
            let got = reader.wait_available(need, START_WAIT_STEP);
            (reader, got)
        })
        .await
        .map_err(|e| e.to_string())?;
        reader = r;
        if let Some(e) = reader.failed() {
            return Err(e.to_string());
        }
        if got >= need || reader.is_complete() {
            break;
        }
        stall.set(true);
    }
    let name = stream_name(track);
    let stream = Arc::new(CacheStream {
        reader,
        stall: Arc::clone(stall),
    });
    Ok(Source::streaming(track.id.clone(), name, stream))
}

/// A name for a stream's errors whose extension hints the format: the URL's last
/// segment (uploads keep the file's extension), else the track id.
fn stream_name(track: &Track) -> String {
    let path = track.url.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('/').next() {
        Some(last) if !last.is_empty() => last.to_owned(),
        _ => track.id.clone(),
    }
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
    type Fetched = Result<Source, String>;
    type Started = Result<jamz_audio::Result<()>, tokio::task::JoinError>;
    type Opened = Result<Arc<Player>, String>;
    let (fetched_tx, mut fetched_rx) = mpsc::unbounded_channel::<(u64, String, Fetched)>();
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<(u64, String, Started)>();
    let mut generation = 0u64;
    let mut pending: Option<Pending> = None;
    // The engine restarts a track that is not audible; a track that cannot be
    // fetched fails the same way each time: say so once, until a start succeeds.
    let mut failing: Option<String> = None;
    let mut carried = Carried::default();
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<(u64, String, Opened)>();
    let mut switching = 0u64;
    // The latest start's buffering report (retired when a command supersedes it).
    let mut stall_report: Option<Arc<StallReport>> = None;
    loop {
        let player = current(&shared);
        tokio::select! {
            job = jobs.recv() => {
                let Some(job) = job else { return };
                match job {
                    AudioJob::Playout(AudioCommand::Start { track, position, at: at_ms }) => {
                        generation += 1;
                        let g = generation;
                        let c = cache.clone();
                        let tx = fetched_tx.clone();
                        let stall = StallReport::new(&track.id, &reports);
                        if let Some(old) = stall_report.replace(Arc::clone(&stall)) {
                            old.retire();
                        }
                        let (t, clk) = (track.clone(), clock);
                        tokio::spawn(async move {
                            let r = source_for(&c, &clk, &t, position, at_ms, &stall).await;
                            let _ = tx.send((g, t.id.clone(), r));
                        });
                        pending = Some(Pending { generation: g, track, position, at_ms });
                    }
                    AudioJob::Playout(AudioCommand::Pause) => {
                        generation += 1;
                        pending = None;
                        if let Some(old) = stall_report.take() {
                            old.retire();
                        }
                        let _ = player.pause();
                    }
                    AudioJob::Playout(AudioCommand::Stop) => {
                        generation += 1;
                        pending = None;
                        if let Some(old) = stall_report.take() {
                            old.retire();
                        }
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
                        // Opening and warming the new output takes up to a few seconds: it
                        // runs off this task, which goes on taking commands for the old
                        // output (still playing); a later switch supersedes this one.
                        switching += 1;
                        let (g, tx) = (switching, opened_tx.clone());
                        tokio::spawn(async move {
                            let label = spec.to_string();
                            let r = open_warm(spec).await;
                            let _ = tx.send((g, label, r));
                        });
                    }
                    AudioJob::Playout(other @ (AudioCommand::Preload(_) | AudioCommand::QueryClock)) => {
                        tracing::debug!(command = ?other, "not the audio task's: the runtime answers it");
                    }
                }
            }
            Some((g, label, opened)) = opened_rx.recv() => {
                match opened {
                    Ok(new) if g != switching => {
                        tracing::debug!(output = %label, "an output switch superseded by a later one");
                        new.stop();
                    }
                    Ok(new) => switch_to(&shared, new, &label, &carried, &reports),
                    Err(message) => {
                        let _ = reports.send(AudioReport::Failed {
                            track: None,
                            message: format!("cannot switch to output `{label}`: {message}"),
                        });
                    }
                }
            }
            Some((g, id, result)) = fetched_rx.recv() => {
                let Some(p) = pending.take_if(|p| p.generation == g) else {
                    tracing::debug!(track = %id, "fetched a track no longer wanted");
                    continue;
                };
                match result {
                    Ok(source) => {
                        // Opening a stream waits for its bytes as long as they take (an M4A
                        // whose index is at its end, a track of unknown size): it runs off
                        // this task, which goes on taking commands; its ticket keeps it in
                        // their order, and a later command supersedes it.
                        let ticket = player.ticket();
                        let pl = Arc::clone(&player);
                        let at = clock.instant_at(p.at_ms);
                        let position = p.position;
                        let tx = started_tx.clone();
                        tokio::spawn(async move {
                            let r = tokio::task::spawn_blocking(move || pl.start_with(ticket, source, position, at)).await;
                            let _ = tx.send((g, p.track.id, r));
                        });
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
            Some((g, id, r)) = started_rx.recv() => {
                if matches!(r, Ok(Err(jamz_audio::AudioError::Superseded))) || g != generation {
                    tracing::debug!(track = %id, "a start superseded while its track was opened");
                    continue;
                }
                if let Some(stall) = &stall_report {
                    // Started: the player has its bytes (a later stall says so again).
                    stall.set(false);
                }
                if matches!(r, Ok(Ok(()))) {
                    failing = None;
                } else if failing.as_deref() != Some(id.as_str()) {
                    failing = Some(id.clone());
                    report_blocking(&reports, Some(id), r);
                }
            }
        }
    }
}

/// Opens `spec` and lets it get through its start-up (the engine restarts playback on
/// the new output as soon as it hears of it; the old one plays meanwhile).
async fn open_warm(spec: OutputSpec) -> Result<Arc<Player>, String> {
    let label = spec.to_string();
    let new = match tokio::task::spawn_blocking(move || Player::new(&spec)).await {
        Ok(Ok(p)) => Arc::new(p),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let warming = Arc::clone(&new);
    let warm =
        tokio::task::spawn_blocking(move || warming.wait_warm(crate::runtime::OUTPUT_WARM_TIMEOUT))
            .await;
    if !matches!(warm, Ok(true)) {
        tracing::warn!(output = %label, "the new output is not running steadily yet; switching anyway");
    }
    Ok(new)
}

/// Moves the settings in force now (they may have changed while the new output opened)
/// over to `new`, stops the old output and makes `new` the player; the node's engine then
/// restarts playback on it (it owns every restart).
fn switch_to(
    shared: &SharedPlayer,
    new: Arc<Player>,
    label: &str,
    carried: &Carried,
    reports: &mpsc::UnboundedSender<AudioReport>,
) {
    let old = current(shared);
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
    let _ = reports.send(AudioReport::OutputSwitched {
        spec: label.to_owned(),
    });
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

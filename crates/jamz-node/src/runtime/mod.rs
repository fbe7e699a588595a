//! The running node: one tokio task that owns the sync engine and feeds it link
//! events, local commands, audio clock reports and timer ticks, and carries out
//! its actions on the adapters (link, audio, cache).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jamz_audio::{OutputSpec, Player};
use jamz_cache::{Cache, CancellationToken};
use jamz_link::{
    DisconnectReason, LinkEvent, LinkEvents, LinkState, RestClient, SocketClient, SocketConfig,
};
use jamz_proto::events::{LeaveAudioSession, names};
use jamz_proto::{Track, UserId};
use jamz_sync::Engine;
use jamz_sync::api::{
    Action, AudioCommand, Command, EngineConfig, ExternalReport, Heard, Input, Notification,
    RestCall,
};
use tokio::sync::mpsc;

use crate::account::{CredentialStore, saved_client};
use crate::audio::{self, AudioHandle, AudioJob, AudioReport};
use crate::clock::LocalClock;
use crate::control::{CacheSummary, NodeCommand, NodeEvent, OutputView, StatusView, Tier};
use crate::error::NodeError;
use crate::outbox::{Outbox, Pending};
use crate::positions::LastPositions;
use crate::secrets::TokenStore;
use crate::tracks::{cache_track, default_cache_dir, open_cache, upload_file};
use crate::waiting_fixes::WaitingFixes;

mod commands;
mod config;
mod kept;
mod location;
mod mesh;
mod offline;
mod playout;
mod preload;
mod youtube;

pub use config::{LocationSource, NodeAuth, NodeConfig};
use kept::KeptWriter;
use offline::OutboxFailure;
use preload::spawn_pinning;

/// Longest wait for a newly opened output to run steadily (`Player::wait_warm`) before
/// the node joins the session or moves playback to it: 3 s, above the 1.4-2 s a new
/// PulseAudio stream is held back after its first buffers (docs/architecture.md, "A warm
/// output"). Past it the node goes on; the engine re-syncs if the output stalls later.
pub(crate) const OUTPUT_WARM_TIMEOUT: Duration = Duration::from_secs(3);

/// Time given to `leave-audio-session` and the close handshake on `quit`.
pub const QUIT_GRACE: Duration = Duration::from_secs(2);

/// Sends commands to a running node. Clone freely.
#[derive(Debug, Clone)]
pub struct Commander(mpsc::UnboundedSender<NodeCommand>);

impl Commander {
    pub fn send(&self, cmd: NodeCommand) -> Result<(), NodeError> {
        self.0
            .send(cmd)
            .map_err(|_| NodeError::Stopped("the node has stopped".into()))
    }
}

/// A running node: send [`NodeCommand`]s, receive [`NodeEvent`]s.
#[derive(Debug)]
pub struct Node {
    commands: Commander,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
    user_id: UserId,
    session_id: String,
    /// The OS's "now playing" (`NodeConfig::media_session`), fed every event.
    media: Option<crate::media_session::MediaSession>,
}

impl Node {
    /// Logs in, finds the group's session, opens the cache and the audio output,
    /// connects the link and starts the node's task. Errors here are fatal
    /// (bad credentials, unknown group, output that cannot open).
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        // The same checks as the commands that change these later.
        for setting in [
            NodeCommand::LatencyOffset {
                ms: config.latency_offset_ms,
            },
            NodeCommand::CacheLimit {
                bytes: config.cache_max_bytes.unwrap_or(u64::MAX),
                tracks: None,
            },
        ] {
            setting.validate().map_err(NodeError::Invalid)?;
        }
        // The output opens while the login runs: it has a start-up of its own to get
        // through before it can play anything on time (see `OUTPUT_WARM_TIMEOUT`).
        let (logged_in, opened) = tokio::join!(login(&config), open_output(&config.output));
        let (player, output_error) = opened?;
        let cache_dir = match &config.cache_dir {
            Some(d) => d.clone(),
            None => default_cache_dir()?,
        };
        // With the server unreachable, the session kept from the last run (if it may be
        // used: jamz_sync::kept) in place of the login's and the session's answers.
        let online = match logged_in {
            Ok((rest, user_id, username)) => match rest.session_for_group(&config.group_id).await {
                Ok(session) => Ok((rest, user_id, username, session)),
                Err(e) => Err((NodeError::from(e), Some(username))),
            },
            Err(e) => Err((e, username_hint(&config))),
        };
        let (rest, user_id, username, start) = match online {
            Ok((rest, user_id, username, session)) => {
                (rest, user_id, username, Start::Online(Box::new(session)))
            }
            Err((e, hint)) => {
                let kept = start_offline(&config, &cache_dir, e, hint.as_deref())?;
                let rest =
                    RestClient::new(&config.server)?.with_fallbacks(&config.fallback_servers)?;
                rest.set_token(Some(kept.identity.token.clone()));
                (
                    rest,
                    kept.identity.user_id,
                    kept.identity.username.clone(),
                    Start::Kept(Box::new(kept)),
                )
            }
        };
        let session_id = match &start {
            Start::Online(s) => s.id.clone(),
            Start::Kept(k) => k.session_id.clone(),
        };
        let player = Arc::new(player);
        let warming = {
            let p = Arc::clone(&player);
            tokio::task::spawn_blocking(move || p.wait_warm(OUTPUT_WARM_TIMEOUT))
        };
        let token_store = saved_token_store(&config);
        let token = rest
            .token()
            .ok_or_else(|| NodeError::Invalid("login gave no token".into()))?;
        let cache = open_cache(Some(&cache_dir)).await?;
        let (outbox, outbox_problem) = Outbox::open(&cache_dir, rest.base_url(), &session_id)?;
        let (positions, positions_problem) =
            LastPositions::open(&cache_dir, rest.base_url(), &session_id);
        let (waiting_fixes, kept_fixes, kept_problem) =
            WaitingFixes::open(&cache_dir, rest.base_url(), &session_id);
        if let Some(bytes) = config.cache_max_bytes {
            let (tracks, _) = cache.limits();
            cache.set_limits(tracks, bytes).await?;
        }
        let files_prefix = format!("{}/api/music/files/", rest.base_url().trim_end_matches('/'));
        cache.set_auth(Some((files_prefix, token.clone())));
        player.set_latency_offset(Duration::from_secs_f64(config.latency_offset_ms / 1000.0))?;
        let device_key = device_key(&config);
        // Every server of the backend, the one the login reached first.
        let mut servers = rest.server_urls();
        let first = rest.current_url();
        if let Some(i) = servers.iter().position(|s| *s == first) {
            servers.rotate_left(i);
        }
        let mut socket_config = SocketConfig::new(first).fallbacks(servers);
        if let Some(key) = &device_key {
            socket_config = socket_config.device_key(key.public_hex());
        }
        let (link, link_events) = SocketClient::connect(
            socket_config
                .token(token.clone())
                // Only a car's newest position matters: fixes queued while
                // offline must not crowd real changes out of the queue.
                .latest_only([names::LOCATION_UPDATE, names::MUSIC_POSITION_SYNC])
                // What waited offline goes out after the engine's join (see
                // `link_event`): the server refuses room events from a socket
                // that has not joined yet.
                .hold_queue(true),
        )?;
        let clock = LocalClock::new();
        let display_name = config
            .display_name
            .clone()
            .unwrap_or_else(|| username.clone());
        let kept_writer = KeptWriter {
            dir: cache_dir.clone(),
            identity: jamz_sync::kept::KeptIdentity {
                server: config.server.clone(),
                group_id: config.group_id.clone(),
                user_id,
                username,
                display_name: display_name.clone(),
                token: token.clone(),
            },
            last: None,
            dirty: false,
        };
        let mut engine_config =
            EngineConfig::new(user_id, display_name).with_session(session_id.clone());
        engine_config.location = config.location_rules;
        engine_config.external_video_player = config.external_video_player;
        engine_config.device_key = device_key;
        // Sequence numbers grow across restarts of this member: they start at the Unix time.
        engine_config.mesh_first_sequence = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2));
        let engine = Engine::new(engine_config);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let audio = audio::spawn(Arc::clone(&player), cache.clone(), clock, reports_tx);
        drop(player);
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        // The peer mesh: a node without it still plays (socket and offline tiers).
        let mesh_ip = mesh::route_to(rest.base_url()).await;
        let mesh = mesh::spawn(
            session_id.clone(),
            user_id,
            &[mesh_ip],
            &config.ice_servers,
            link.clone(),
            jobs_tx.clone(),
        )
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "no peer mesh"))
        .ok();
        let mut rt = Runtime {
            token_store,
            status_in_flight: 0,
            output: if output_error.is_some() {
                OutputSpec::Null.to_string()
            } else {
                config.output.to_string()
            },
            latency_offset_ms: config.latency_offset_ms,
            calibrating: false,
            probes_playing: Arc::default(),
            engine,
            clock,
            rest,
            link,
            cache: cache.clone(),
            audio,
            events: events_tx,
            jobs: jobs_tx,
            session_id: session_id.clone(),
            kept: kept_writer,
            connected: false,
            server: None,
            shutdown_notice: false,
            tier: Tier::Offline,
            playlist: match &start {
                Start::Online(s) => s.music.playlist.clone(),
                Start::Kept(k) => k.playlist.clone(),
            },
            playing: false,
            current: None,
            queued: 0,
            rest_in_flight: 0,
            preload: None,
            outbox,
            outbox_sending: false,
            preload_generation: 0,
            preload_manual: false,
            auto_preload: config.auto_preload,
            pending: VecDeque::new(),
            pins: spawn_pinning(cache.clone()),
            positions,
            waiting_fixes,
            mesh,
            oembed: jamz_link::OEmbedClient::new(&config.youtube_origin)
                .inspect_err(|e| tracing::warn!(error = %e, "no YouTube titles"))
                .ok(),
        };
        let location = location::spawn(config.location.0.clone(), &cmd_tx, rt.events.clone());
        if let Some(message) = output_error {
            rt.emit(NodeEvent::error(message, None));
        }
        if let Some(message) = outbox_problem {
            rt.emit(NodeEvent::error(message, None));
        }
        if !rt.outbox.is_empty() {
            rt.emit_outbox();
        }
        for message in [positions_problem, kept_problem].into_iter().flatten() {
            rt.emit(NodeEvent::error(message, Some("location")));
        }
        let known = rt.positions.all();
        if !known.is_empty() {
            rt.emit(NodeEvent::LastPositions { positions: known });
        }
        // Nothing may start before the output is warm: the first start of the session would
        // land in its start-up and lose its beginning.
        if !matches!(warming.await, Ok(true)) {
            tracing::warn!(
                timeout = ?OUTPUT_WARM_TIMEOUT,
                "the audio output is not running steadily yet; joining anyway"
            );
        }
        rt.feed(match start {
            Start::Online(session) => Input::SessionLoaded(session),
            Start::Kept(kept) => Input::SessionKept(kept),
        });
        if !kept_fixes.is_empty() {
            tracing::info!(
                fixes = kept_fixes.len(),
                "positions kept from an earlier run wait for the server"
            );
            rt.feed(Input::Location(jamz_sync::location::LocationInput::Kept {
                reports: kept_fixes,
            }));
        }
        rt.grant_key(&cache_dir);
        if config.share_location {
            rt.feed(Input::Location(jamz_sync::location::LocationInput::Share {
                enabled: true,
                for_ms: config.share_for_s.map(|s| s * 1000.0),
            }));
        }
        let commands = Commander(cmd_tx);
        let media = if config.media_session {
            crate::media_session::MediaSession::start(
                user_id,
                commands.clone(),
                clock,
                cache_dir.clone(),
            )
            .await
        } else {
            None
        };
        let task = tokio::spawn(async move {
            // The location source stops with the runtime.
            let _location = location;
            rt.run(cmd_rx, link_events, reports_rx, jobs_rx).await
        });
        Ok(Node {
            commands,
            events: events_rx,
            task,
            user_id,
            session_id,
            media,
        })
    }

    /// A handle to send commands with.
    pub fn commander(&self) -> Commander {
        self.commands.clone()
    }

    /// Sends one command.
    pub fn send(&self, cmd: NodeCommand) -> Result<(), NodeError> {
        self.commands.send(cmd)
    }

    /// The next event; `None` once the node has stopped and every event was read.
    pub async fn next_event(&mut self) -> Option<NodeEvent> {
        let event = self.events.recv().await;
        if let (Some(media), Some(event)) = (&self.media, &event) {
            media.event(event);
        }
        event
    }

    /// This node's user.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The session it is in.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Waits for the node's task to end (after `quit`).
    pub async fn join(self) -> Result<(), NodeError> {
        self.task
            .await
            .map_err(|e| NodeError::Stopped(e.to_string()))?
    }
}

/// Opens the output. A sound device that cannot open (unplugged, busy, no
/// sound server) does not keep the car out of the session: the node keeps
/// time on the silent `null` output and says why, and `output` can switch
/// later. A `wav:` file that cannot be written is a mistake in the command
/// line: that fails.
async fn open_output(spec: &OutputSpec) -> Result<(Player, Option<String>), NodeError> {
    let wanted = spec.clone();
    let opened = tokio::task::spawn_blocking(move || Player::new(&wanted))
        .await
        .map_err(|e| NodeError::Stopped(e.to_string()))?;
    match (opened, spec) {
        (Ok(p), _) => Ok((p, None)),
        (Err(e), OutputSpec::Default | OutputSpec::Device(_)) => {
            let message = format!(
                "cannot open the audio output `{spec}` ({e}); playing silently until another output is chosen"
            );
            tracing::warn!("{message}");
            let player = tokio::task::spawn_blocking(|| Player::new(&OutputSpec::Null))
                .await
                .map_err(|e| NodeError::Stopped(e.to_string()))??;
            Ok((player, Some(message)))
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// How the node starts: with the server's answers, or with the session kept from its
/// last run (the server unreachable).
enum Start {
    Online(Box<jamz_proto::Session>),
    Kept(Box<jamz_sync::kept::KeptSession>),
}

/// The user a node logs in as, when known without the server (for the kept session's
/// check).
fn username_hint(config: &NodeConfig) -> Option<String> {
    match &config.auth {
        NodeAuth::Password { username, .. } => Some(username.clone()),
        NodeAuth::Token { username, .. } => Some(username.clone()),
        NodeAuth::Saved => None,
    }
}

/// The server did not answer at start (`error`): the session kept from the last run, if
/// there is one that may be used (docs/node-control.md, "Starting with the server gone").
/// Else the start fails as it always did, with `error`, and why the kept session is not
/// used when there is one.
fn start_offline(
    config: &NodeConfig,
    cache_dir: &std::path::Path,
    error: NodeError,
    username: Option<&str>,
) -> Result<jamz_sync::kept::KeptSession, NodeError> {
    let unreachable = matches!(&error, NodeError::Link(e) if e.is_unreachable());
    if !unreachable {
        return Err(error);
    }
    let now_ms = crate::clock::LocalClock::new().now_ms();
    let check = jamz_sync::kept::KeptCheck {
        server: &config.server,
        group_id: &config.group_id,
        username,
        now_ms,
    };
    match crate::kept_session::load(cache_dir, &check) {
        Ok(Some(kept)) => {
            tracing::warn!(
                error = %error,
                session = kept.session_id,
                "the server is unreachable: starting from the kept session"
            );
            Ok(kept)
        }
        Ok(None) => Err(error),
        Err(why) => Err(NodeError::Invalid(format!("{error}; and {why}"))),
    }
}

/// Logs in on the first server that answers (`server`, then the fallbacks).
async fn login(config: &NodeConfig) -> Result<(RestClient, UserId, String), NodeError> {
    let client = |url: &str| -> Result<RestClient, NodeError> {
        Ok(RestClient::new(url)?.with_fallbacks(&config.fallback_servers)?)
    };
    match &config.auth {
        NodeAuth::Password { username, password } => {
            let rest = client(&config.server)?;
            let auth = rest.login(username, password).await?;
            Ok((rest, auth.user.id, auth.user.username))
        }
        NodeAuth::Saved => {
            let store = match &config.store {
                Some(s) => s.clone(),
                None => CredentialStore::default_location()?,
            };
            let (rest, creds) = saved_client(&store, Some(&config.server))?;
            let rest = rest.with_fallbacks(&config.fallback_servers)?;
            Ok((rest, creds.user_id, creds.username))
        }
        NodeAuth::Token {
            token,
            user_id,
            username,
        } => {
            let rest = client(&config.server)?;
            rest.set_token(Some(token.clone()));
            Ok((rest, *user_id, username.clone()))
        }
    }
}

/// This device's mesh key, kept in the config directory (the saved login's, else the
/// platform's): without one the node still plays, its DJ obeyed on direct links only.
fn device_key(config: &NodeConfig) -> Option<jamz_sync::trust::DeviceKey> {
    let dir = match &config.store {
        Some(store) => Ok(store.dir().to_owned()),
        None => crate::directories::config_dir(),
    };
    dir.and_then(|d| crate::device_key::load_or_create(&d))
        .inspect_err(|e| tracing::warn!(error = %e, "no device key: mesh messages unsigned"))
        .ok()
}

/// Which store holds the token a [`NodeAuth::Saved`] node logged in with.
fn saved_token_store(config: &NodeConfig) -> Option<TokenStore> {
    if !matches!(config.auth, NodeAuth::Saved) {
        return None;
    }
    let store = match &config.store {
        Some(s) => s.clone(),
        None => CredentialStore::default_location().ok()?,
    };
    store.token_store().ok().flatten()
}

/// Results of work done off the loop, fed back in order of completion.
enum Job {
    Input(Input),
    Event(NodeEvent),
    RestDone(Input),
    /// A preload run ended (its generation: a newer run may have replaced it).
    PreloadDone(u64),
    /// A change found no server: it waits in the outbox.
    Unreachable(Pending),
    /// The outbox's oldest change was sent (or not).
    OutboxSent(Result<Vec<Track>, OutboxFailure>),
    /// Time to try the outbox again (its last try found no server while the socket was up).
    RetryOutbox,
    /// A cache change (`cmd`) ended.
    CacheChanged {
        result: Result<(), jamz_cache::CacheError>,
        cmd: &'static str,
    },
    /// The cache's figures for a `status` event.
    Status(Result<jamz_cache::CacheStats, jamz_cache::CacheError>),
    /// A batch of fixes for the server's history is done with (see `report_locations`).
    LocationsPosted(u64),
    /// A `calibrate` ended.
    Calibrated(Result<jamz_audio::CalibrationResult, String>),
}

struct Runtime {
    /// Where the saved login's token is kept (for `status`); `None` when the
    /// node was given a password or a token.
    token_store: Option<TokenStore>,
    /// `status` answers asked for and not yet emitted (see `answer_status_in_flight`).
    status_in_flight: usize,
    /// The audio output in use (`OutputSpec`'s spelling).
    output: String,
    latency_offset_ms: f64,
    /// A `calibrate` is running (one at a time).
    calibrating: bool,
    /// Held while a relative calibration's probes play: a later run's probes wait for the
    /// earlier ones to stop, so that the earlier run's end never stops them.
    probes_playing: Arc<std::sync::Mutex<()>>,
    engine: Engine,
    clock: LocalClock,
    rest: RestClient,
    link: SocketClient,
    cache: Cache,
    audio: AudioHandle,
    events: mpsc::UnboundedSender<NodeEvent>,
    jobs: mpsc::UnboundedSender<Job>,
    session_id: String,
    /// What is kept for a start with the server gone.
    kept: KeptWriter,
    connected: bool,
    /// The server the link is on (last connected to), as configured.
    server: Option<String>,
    /// The link left its server on a `server-shutdown` notice: the next connection
    /// says so.
    shutdown_notice: bool,
    /// The engine's tier, as last announced (for `status`).
    tier: Tier,
    playlist: Vec<Track>,
    playing: bool,
    current: Option<String>,
    /// Socket events sent while the link was down (held in the link's queue).
    queued: u64,
    rest_in_flight: u64,
    preload: Option<CancellationToken>,
    /// Playlist changes waiting for the server, and whether one is on its way.
    outbox: Outbox,
    outbox_sending: bool,
    /// Counts preload runs; whether the one running was asked for (`preload`) or
    /// is the background one (`auto-preload`).
    preload_generation: u64,
    preload_manual: bool,
    auto_preload: bool,
    pending: VecDeque<Input>,
    /// The playlist's ids, for the pinning task (it applies the latest only).
    pins: tokio::sync::watch::Sender<Vec<String>>,
    /// Everyone's last position, kept on disk for a map with no link.
    positions: LastPositions,
    /// This car's fixes not yet delivered, kept on disk for the next run.
    waiting_fixes: WaitingFixes,
    /// The peer mesh's task (`None` if its sockets could not be bound).
    mesh: Option<mesh::MeshHandle>,
    /// Where a YouTube video's title comes from (`None`: the origin setting is not a
    /// URL; videos are then added with a plain title).
    oembed: Option<jamz_link::OEmbedClient>,
}

impl Runtime {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<NodeCommand>,
        link_events: LinkEvents,
        mut reports: mpsc::UnboundedReceiver<AudioReport>,
        mut jobs: mpsc::UnboundedReceiver<Job>,
    ) -> Result<(), NodeError> {
        let mut link_events = Some(link_events);
        self.tell_calibration_state();
        loop {
            let deadline = self
                .engine
                .next_timeout()
                .map(|t| tokio::time::Instant::from_std(self.clock.instant_at(t)));
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    if cmd == NodeCommand::Quit {
                        // A `status` asked just before `quit` (`echo '{"cmd":"status"}' |
                        // jamz node --json`, then end of input) is answered first.
                        self.answer_status_in_flight(&mut jobs).await;
                        break;
                    }
                    self.command(cmd);
                }
                ev = next_link_event(&mut link_events) => match ev {
                    Some(ev) => self.link_event(ev),
                    None => {
                        // The link task ended (it retries forever, so only after a
                        // close): stay offline and keep playing from the cache.
                        link_events = None;
                        if self.connected {
                            self.set_offline("the link closed".into());
                        }
                    }
                },
                Some(report) = reports.recv() => self.audio_report(report),
                Some(job) = jobs.recv() => match job {
                    Job::Input(i) => {
                        if matches!(i, Input::PeerAddress { .. }) {
                            self.kept.changed();
                        }
                        self.feed(i);
                    }
                    Job::RestDone(i) => {
                        self.rest_in_flight = self.rest_in_flight.saturating_sub(1);
                        self.feed(i);
                    }
                    Job::Event(e) => self.emit(e),
                    Job::Unreachable(pending) => {
                        if matches!(pending, Pending::Rest(_)) {
                            self.rest_in_flight = self.rest_in_flight.saturating_sub(1);
                        }
                        self.keep_for_later(pending);
                        // The link may have come back while this call failed: its
                        // `Connected` flushed an outbox that did not hold it yet.
                        self.flush_outbox();
                    }
                    Job::OutboxSent(r) => self.outbox_sent(r),
                    Job::RetryOutbox => self.flush_outbox(),
                    Job::CacheChanged { result, cmd } => self.after_cache_change(result, cmd),
                    Job::Status(stats) => {
                        self.status_in_flight = self.status_in_flight.saturating_sub(1);
                        let ev = self.status(stats);
                        self.emit(ev);
                    }
                    Job::PreloadDone(generation) => {
                        if generation == self.preload_generation {
                            self.preload = None;
                        }
                    }
                    Job::LocationsPosted(batch) => self.waiting_fixes.posted(batch),
                    Job::Calibrated(result) => self.calibrated(result),
                },
                () = sleep_until_opt(deadline) => self.feed(Input::Tick),
            }
            self.save_waiting_fixes(false);
            self.save_kept();
        }
        self.quit().await;
        Ok(())
    }

    /// Waits (at most [`QUIT_GRACE`]) for the `status` answers still on their way; other
    /// jobs are dropped: the node is stopping, and what must survive is on disk.
    async fn answer_status_in_flight(&mut self, jobs: &mut mpsc::UnboundedReceiver<Job>) {
        let deadline = tokio::time::Instant::now() + QUIT_GRACE;
        while self.status_in_flight > 0 {
            match tokio::time::timeout_at(deadline, jobs.recv()).await {
                Ok(Some(Job::Status(stats))) => {
                    self.status_in_flight -= 1;
                    let ev = self.status(stats);
                    self.emit(ev);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    async fn quit(&mut self) {
        if let Some(c) = self.preload.take() {
            c.cancel();
        }
        self.audio.send(AudioJob::Playout(AudioCommand::Stop));
        self.save_positions(true);
        self.save_waiting_fixes(true);
        self.mesh_stop(QUIT_GRACE).await;
        let _ = self.link.send(&LeaveAudioSession {
            session_id: self.session_id.clone(),
        });
        let _ = tokio::time::timeout(QUIT_GRACE, self.link.close()).await;
        // Tasks (the audio worker, preloads, fetches) may still hold clones of the cache:
        // closing it releases the directory now, so the face may administer it as soon as
        // `Node::join` returns.
        self.cache.close().await;
        tracing::info!("node stopped");
    }

    fn emit(&self, ev: NodeEvent) {
        let _ = self.events.send(ev);
    }

    fn now(&self) -> f64 {
        self.clock.now_ms()
    }

    /// Feeds one input, then carries out every action (inputs that actions
    /// produce at once are fed in turn, never recursively).
    fn feed(&mut self, input: Input) {
        self.pending.push_back(input);
        while let Some(input) = self.pending.pop_front() {
            let now = self.now();
            self.engine.handle(now, input);
            while let Some(action) = self.engine.poll() {
                self.act(action);
            }
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Emit { event, data } if event == names::JOIN_AUDIO_SESSION => {
                // Ahead of what the link holds since the connection.
                if let Err(e) = self.link.emit_first(event, data) {
                    tracing::warn!(error = %e, "join failed");
                }
            }
            Action::Emit { event, data } => {
                if !self.connected {
                    self.queued += 1;
                }
                if let Err(e) = self.link.emit(event, data) {
                    tracing::warn!(event, error = %e, "emit failed");
                }
            }
            Action::TimeSync { t0, timeout_ms } => {
                let link = self.link.clone();
                let jobs = self.jobs.clone();
                let clock = self.clock;
                tokio::spawn(async move {
                    let timeout = Duration::from_secs_f64(timeout_ms.max(0.0) / 1000.0);
                    let input = match link.time_sync(t0, timeout).await {
                        Ok(r) => Input::TimeSyncReply {
                            t0,
                            t1: r.t1,
                            t2: r.t2,
                            t3: clock.now_ms(),
                        },
                        Err(e) => {
                            tracing::debug!(error = %e, "time-sync failed");
                            Input::TimeSyncFailed { t0 }
                        }
                    };
                    let _ = jobs.send(Job::Input(input));
                });
            }
            Action::Rest(call) => self.rest_call(call),
            Action::Audio(cmd) => self.audio_command(cmd),
            Action::Notify(n) => self.notify(n),
            Action::ReportLocations { reports } => self.report_locations(reports),
            Action::Mesh { to, message } => self.mesh_send(to, message),
            Action::Signal(signal) => self.mesh_signal(*signal),
            Action::MeshDirect { to, message } => self.mesh_direct(to, message),
            Action::Rejoin { user, by_peer } => self.mesh_rejoin(user, by_peer),
            Action::Calibration(a) => self.calibration_action(a),
            Action::External(directive) => {
                let event = youtube::directive_event(directive, self.clock.now_ms());
                self.emit(NodeEvent::Youtube(event));
            }
        }
    }

    fn notify(&mut self, n: Notification) {
        if matches!(
            n,
            Notification::Ready { .. }
                | Notification::Playlist { .. }
                | Notification::Participants { .. }
                | Notification::Playback { .. }
                | Notification::Controller { .. }
        ) {
            self.kept.changed();
        }
        match &n {
            Notification::Playlist { playlist } => {
                self.pin_playlist(playlist);
                if self.playlist != *playlist {
                    self.playlist = playlist.clone();
                    self.auto_preload();
                }
            }
            Notification::Participants { participants } => self.mesh_members(participants),
            Notification::Playback { playing, track, .. } => {
                self.playing = *playing;
                self.current = track.clone();
            }
            Notification::Tier { tier, .. } => self.tier = *tier,
            Notification::ClockEstimate {
                offset_ms,
                drift_ppm,
                rtt_ms,
                source,
            } => {
                tracing::debug!(offset_ms, drift_ppm, ?rtt_ms, ?source, "clock estimate");
                return;
            }
            Notification::Resync { cause } => {
                tracing::info!(?cause, "restarted the player on the group's timeline");
                return;
            }
            Notification::Location(ev) => self.remember_position(ev),
            Notification::MeshRefused {
                from,
                via,
                reason,
                message,
                ..
            } => tracing::info!(from, via, reason, message, "mesh message refused"),
            Notification::Ready { .. } => {
                // Joined: what changed while away goes to the server now, not on the bare
                // connection. Sent before the join, an append could be in the server's
                // playlist but not in the (older) state the join answers with, and, not in
                // the room yet, this device would never hear of it.
                self.flush_outbox();
            }
            Notification::Controller { .. }
            | Notification::PeerCalibration(_)
            | Notification::Error { .. }
            | Notification::NotPlayable { .. }
            | Notification::Buffering { .. } => {}
        }
        self.emit(NodeEvent::Session(n));
    }

    /// The link connected to `url`: REST follows it there, and a move is told.
    fn on_server(&mut self, url: String) {
        if !self.rest.use_server(&url) {
            tracing::warn!(%url, "the link's server is not one of the REST client's");
        }
        let notice = std::mem::take(&mut self.shutdown_notice);
        if self.server.as_deref() == Some(url.as_str()) {
            return;
        }
        tracing::info!(%url, previous = ?self.server, notice, "on server");
        let previous = self.server.replace(url.clone());
        // Track files named by this server get the token (the first server's did so far).
        if let Some(token) = self.rest.token() {
            let prefix = format!("{}/api/music/files/", url.trim_end_matches('/'));
            self.cache.set_auth(Some((prefix, token)));
        }
        self.emit(NodeEvent::Server {
            url,
            previous,
            notice,
        });
    }

    fn set_offline(&mut self, reason: String) {
        self.connected = false;
        self.mesh_online(false);
        self.feed(Input::Disconnected { reason });
    }

    fn link_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::State(LinkState::Connected { sid, server, .. }) => {
                self.on_server(server);
                self.connected = true;
                self.queued = 0;
                self.mesh_online(true);
                // The engine joins; then what waited offline may follow.
                self.feed(Input::Connected { socket_id: sid });
                if let Err(e) = self.link.release_queue() {
                    tracing::warn!(error = %e, "release of the offline queue failed");
                }
                // Back online: catch up on what others added. What changed here while away
                // waits for the join (`Notification::Ready`).
                self.auto_preload();
            }
            LinkEvent::State(LinkState::Refused { message }) => {
                self.emit(NodeEvent::error(
                    format!("the server refused the connection: {message}"),
                    None,
                ));
                if self.connected {
                    self.set_offline(format!("refused: {message}"));
                }
            }
            LinkEvent::State(LinkState::Disconnected {
                reason: DisconnectReason::ServerShutdown { reconnect_after },
            }) => {
                tracing::info!(server = ?self.server, ?reconnect_after, "the server announced its shutdown");
                self.shutdown_notice = true;
                if self.connected {
                    self.set_offline("the server is shutting down".into());
                }
            }
            LinkEvent::State(
                state @ (LinkState::Dead { .. }
                | LinkState::Disconnected { .. }
                | LinkState::Closed),
            ) => {
                if self.connected {
                    self.set_offline(describe(&state));
                }
            }
            LinkEvent::State(state) => tracing::debug!(?state, "link"),
            // The server's `webrtc-signal`s too: the engine hands them to the mesh.
            LinkEvent::Event { event: ev, .. } => self.feed(Input::Server(*ev)),
            LinkEvent::BadEvent { error, raw } => self.emit(NodeEvent::error(
                format!("bad `{}` event from the server: {error}", raw.name),
                None,
            )),
            LinkEvent::QueueOverflow { dropped } => {
                self.emit(NodeEvent::error(
                    format!(
                        "{} changes made while offline were dropped (the queue was full)",
                        dropped.len()
                    ),
                    None,
                ));
            }
            LinkEvent::Warning(w) => tracing::warn!(warning = %w, "link"),
        }
    }
}

/// A link state in words, for `tier` events.
fn describe(state: &LinkState) -> String {
    match state {
        LinkState::Dead { silence } => format!("no word from the server for {silence:?}"),
        LinkState::Disconnected { reason } => match reason {
            DisconnectReason::TransportClosed(m) => format!("connection lost: {m}"),
            DisconnectReason::ServerDisconnect => "the server closed the session".into(),
            DisconnectReason::PingTimeout => "the server stopped answering pings".into(),
            DisconnectReason::ProtocolError(m) => format!("protocol error: {m}"),
            DisconnectReason::ConnectFailed(m) => format!("cannot connect: {m}"),
            DisconnectReason::ClientClose => "closed".into(),
            DisconnectReason::ServerShutdown { .. } => "the server is shutting down".into(),
        },
        LinkState::Closed => "the link closed".into(),
        other => format!("{other:?}"),
    }
}

async fn next_link_event(events: &mut Option<LinkEvents>) -> Option<LinkEvent> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_states_read_as_reasons() {
        let s = describe(&LinkState::Disconnected {
            reason: DisconnectReason::PingTimeout,
        });
        assert!(s.contains("pings"), "{s}");
        assert_eq!(describe(&LinkState::Closed), "the link closed");
    }
}

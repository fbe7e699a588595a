//! The running node: one tokio task that owns the sync engine and feeds it link
//! events, local commands, audio clock reports and timer ticks, and carries out
//! its actions on the adapters (link, audio, cache).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jamz_audio::{OutputSpec, Player};
use jamz_cache::{Cache, CancellationToken};
use jamz_link::{
    DisconnectReason, LinkEvent, LinkEvents, LinkState, RestClient, SocketClient, SocketConfig,
};
use jamz_proto::events::{JoinAudioSession, LeaveAudioSession, LocationUpdate, names};
use jamz_proto::{ServerEvent, Track, UserId};
use jamz_sync::Engine;
use jamz_sync::api::{
    Action, AudioCommand, Command, EngineConfig, Heard, Input, Notification, RestCall,
};
use tokio::sync::mpsc;

use crate::account::{CredentialStore, saved_client};
use crate::audio::{self, AudioHandle, AudioJob, AudioReport};
use crate::clock::LocalClock;
use crate::control::{
    CacheSummary, NodeCommand, NodeEvent, OutputView, ParticipantView, StatusView, Tier,
};
use crate::error::NodeError;
use crate::outbox::{Outbox, Pending};
use crate::tracks::{cache_track, default_cache_dir, open_cache, upload_file};

/// How often the player's audible position is reported to the engine. The
/// engine's playout control wants 100-250 ms (jamz-sync's api.rs); 200 ms keeps
/// the node's share of one core small.
pub const CLOCK_REPORT_PERIOD: Duration = Duration::from_millis(200);

/// How long a `time-sync` exchange may take before it counts as failed: far above
/// any round trip worth using (a satellite link's is about 50 ms, notes/sync-anchors.md).
pub const TIME_SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// Time given to `leave-audio-session` and the close handshake on `quit`.
pub const QUIT_GRACE: Duration = Duration::from_secs(2);

/// How the node logs in.
#[derive(Debug, Clone)]
pub enum NodeAuth {
    /// Log in with these (the token is not saved).
    Password { username: String, password: String },
    /// Use the token saved by `jamz login` (needs [`NodeConfig::store`]).
    Saved,
    /// A token the caller already has, for this user.
    Token {
        token: String,
        user_id: UserId,
        username: String,
    },
}

/// Where location fixes come from (`--location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationSource {
    None,
    Replay(PathBuf),
    Gpsd(String),
}

impl FromStr for LocationSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(LocationSource::None);
        }
        if let Some(f) = s.strip_prefix("replay:").filter(|f| !f.is_empty()) {
            return Ok(LocationSource::Replay(PathBuf::from(f)));
        }
        if let Some(a) = s.strip_prefix("gpsd:").filter(|a| !a.is_empty()) {
            return Ok(LocationSource::Gpsd(a.to_owned()));
        }
        Err(format!(
            "location source `{s}`: expected replay:FILE.nmea, gpsd:HOST:PORT or none"
        ))
    }
}

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The backend, `http://host:port`.
    pub server: String,
    pub auth: NodeAuth,
    /// Where saved credentials live (for [`NodeAuth::Saved`]).
    pub store: Option<CredentialStore>,
    pub group_id: String,
    /// Display name in the session (default: the username).
    pub display_name: Option<String>,
    pub output: OutputSpec,
    /// Track cache directory (default: the platform cache dir).
    pub cache_dir: Option<PathBuf>,
    pub location: LocationSource,
    /// Extra output latency, ms (`latency-offset`; 0 ..= 2000).
    pub latency_offset_ms: f64,
    /// Cache size limit in bytes (`cache-limit`; default: jamz-cache's, 2 GiB).
    pub cache_max_bytes: Option<u64>,
    /// Cache the playlist in the background while online (`auto-preload`).
    pub auto_preload: bool,
}

impl NodeConfig {
    /// A node for `group_id` on `server` with the defaults: the system's default
    /// output, the platform's cache directory, no location source, no offset.
    pub fn new(server: impl Into<String>, auth: NodeAuth, group_id: impl Into<String>) -> Self {
        NodeConfig {
            server: server.into(),
            auth,
            store: None,
            group_id: group_id.into(),
            display_name: None,
            output: OutputSpec::Default,
            cache_dir: None,
            location: LocationSource::None,
            latency_offset_ms: 0.0,
            cache_max_bytes: None,
            auto_preload: false,
        }
    }
}

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
        let (rest, user_id, username) = login(&config).await?;
        let token = rest
            .token()
            .ok_or_else(|| NodeError::Invalid("login gave no token".into()))?;
        let session = rest.session_for_group(&config.group_id).await?;
        let cache = open_cache(config.cache_dir.as_deref()).await?;
        let outbox_dir = match &config.cache_dir {
            Some(d) => d.clone(),
            None => default_cache_dir()?,
        };
        let (outbox, outbox_problem) = Outbox::open(&outbox_dir, rest.base_url(), &session.id)?;
        if let Some(bytes) = config.cache_max_bytes {
            let (tracks, _) = cache.limits();
            cache.set_limits(tracks, bytes).await?;
        }
        let files_prefix = format!("{}/api/music/files/", rest.base_url().trim_end_matches('/'));
        cache.set_auth(Some((files_prefix, token.clone())));
        let (player, output_error) = open_output(&config.output).await?;
        player.set_latency_offset(Duration::from_secs_f64(config.latency_offset_ms / 1000.0))?;
        let player = Arc::new(player);
        let (link, link_events) = SocketClient::connect(
            SocketConfig::new(rest.base_url())
                .token(token)
                // Only a car's newest position matters: fixes queued while
                // offline must not crowd real changes out of the queue.
                .latest_only([names::LOCATION_UPDATE, names::MUSIC_POSITION_SYNC]),
        )?;
        let clock = LocalClock::new();
        let display_name = config.display_name.clone().unwrap_or(username);
        // Declare the room before the first connection: the link then joins first
        // on every (re)connection, before it sends what was queued while offline
        // (a command given before the link is up would otherwise reach the server
        // from a socket that is not in the room yet, and be refused).
        let join = JoinAudioSession {
            session_id: session.id.clone(),
            user_id: Some(user_id),
            display_name: Some(display_name.clone()),
        };
        link.join_session(&join)?;
        let room = serde_json::to_value(&join).ok();
        let session_id = session.id.clone();
        let engine =
            Engine::new(EngineConfig::new(user_id, display_name).with_session(session.id.clone()));
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let audio = audio::spawn(Arc::clone(&player), cache.clone(), clock, reports_tx);
        drop(player);
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let mut rt = Runtime {
            user_id,
            output: if output_error.is_some() {
                OutputSpec::Null.to_string()
            } else {
                config.output.to_string()
            },
            latency_offset_ms: config.latency_offset_ms,
            engine,
            clock,
            rest,
            link,
            cache: cache.clone(),
            audio,
            events: events_tx,
            jobs: jobs_tx,
            session_id: session.id.clone(),
            room,
            connected: false,
            tier: Tier::Offline,
            playlist: session.music.playlist.clone(),
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
            last_playback: None,
            pins: spawn_pinning(cache.clone()),
        };
        if config.location != LocationSource::None {
            rt.emit(NodeEvent::error(
                format!(
                    "location source {:?} is not available yet (it comes with jamz-geo); manual fixes with the `location` command work",
                    config.location
                ),
                None,
            ));
        }
        if let Some(message) = output_error {
            rt.emit(NodeEvent::error(message, None));
        }
        if let Some(message) = outbox_problem {
            rt.emit(NodeEvent::error(message, None));
        }
        if !rt.outbox.is_empty() {
            rt.emit_outbox();
        }
        rt.feed(Input::SessionLoaded(Box::new(session)));
        let task = tokio::spawn(rt.run(cmd_rx, link_events, reports_rx, jobs_rx));
        Ok(Node {
            commands: Commander(cmd_tx),
            events: events_rx,
            task,
            user_id,
            session_id,
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
        self.events.recv().await
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

async fn login(config: &NodeConfig) -> Result<(RestClient, UserId, String), NodeError> {
    match &config.auth {
        NodeAuth::Password { username, password } => {
            let rest = RestClient::new(&config.server)?;
            let auth = rest.login(username, password).await?;
            Ok((rest, auth.user.id, auth.user.username))
        }
        NodeAuth::Saved => {
            let store = match &config.store {
                Some(s) => s.clone(),
                None => CredentialStore::default_location()?,
            };
            let (rest, creds) = saved_client(&store, Some(&config.server))?;
            Ok((rest, creds.user_id, creds.username))
        }
        NodeAuth::Token {
            token,
            user_id,
            username,
        } => {
            let rest = RestClient::new(&config.server)?;
            rest.set_token(Some(token.clone()));
            Ok((rest, *user_id, username.clone()))
        }
    }
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
}

/// Uploads a file with its tags (`progress` events per 10 %) and caches it here:
/// this device never downloads its own upload back.
async fn upload_and_cache(
    rest: &RestClient,
    cache: &Cache,
    path: &std::path::Path,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Result<Track, NodeError> {
    let what = format!("upload {}", path.display());
    let j = jobs.clone();
    let last = Arc::new(std::sync::Mutex::new(u64::MAX));
    let progress: jamz_link::Progress = Arc::new(move |done, total| {
        // One event per 10 % (and the last), not one per 64 KiB chunk.
        let step = (done * 10).checked_div(total).unwrap_or(10);
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if *l != step {
            *l = step;
            let _ = j.send(Job::Event(NodeEvent::Progress {
                what: what.clone(),
                done,
                total,
            }));
        }
    });
    let track = upload_file(rest, path, Some(progress)).await?;
    if let Err(e) = cache.import_file(&cache_track(&track), path).await {
        tracing::warn!(track = %track.id, error = %e, "cannot cache the uploaded file");
    }
    Ok(track)
}

/// Why the outbox's oldest change did not go through.
enum OutboxFailure {
    /// Still no server: try again on the next connection.
    Unreachable(String),
    /// The server (or the file) refused it: it will not go through.
    Refused(String),
}

impl OutboxFailure {
    fn of(e: NodeError) -> Self {
        match &e {
            NodeError::Link(l) if l.is_unreachable() => OutboxFailure::Unreachable(e.to_string()),
            _ => OutboxFailure::Refused(e.to_string()),
        }
    }
}

/// Sends one waiting change; the playlist after it. An upload is appended at
/// once (not queued behind later changes), so the order stays the user's.
async fn send_pending(
    rest: &RestClient,
    cache: &Cache,
    session_id: &str,
    pending: &Pending,
    jobs: &mpsc::UnboundedSender<Job>,
) -> Result<Vec<Track>, OutboxFailure> {
    match pending {
        Pending::Rest(call) => send_rest(rest, call)
            .await
            .map_err(|e| OutboxFailure::of(e.into())),
        Pending::Upload { path } => {
            let track = upload_and_cache(rest, cache, path, jobs)
                .await
                .map_err(|e| match OutboxFailure::of(e) {
                    OutboxFailure::Refused(m) => {
                        OutboxFailure::Refused(format!("cannot add {}: {m}", path.display()))
                    }
                    u => u,
                })?;
            rest.append_track(session_id, &track)
                .await
                .map_err(|e| OutboxFailure::of(e.into()))
        }
    }
}

/// One playlist change over REST; the playlist after it.
async fn send_rest(rest: &RestClient, call: &RestCall) -> Result<Vec<Track>, jamz_link::LinkError> {
    match call {
        RestCall::AppendTrack { session_id, track } => rest.append_track(session_id, track).await,
        RestCall::DeleteTrack {
            session_id,
            track_id,
        } => rest.delete_track(session_id, track_id).await,
        RestCall::Reorder { session_id, order } => rest.reorder_playlist(session_id, order).await,
    }
}

struct Runtime {
    user_id: UserId,
    /// The audio output in use (`OutputSpec`'s spelling).
    output: String,
    latency_offset_ms: f64,
    engine: Engine,
    clock: LocalClock,
    rest: RestClient,
    link: SocketClient,
    cache: Cache,
    audio: AudioHandle,
    events: mpsc::UnboundedSender<NodeEvent>,
    jobs: mpsc::UnboundedSender<Job>,
    session_id: String,
    /// The `join-audio-session` declared to the link (re-sent by it first after
    /// every reconnect).
    room: Option<serde_json::Value>,
    connected: bool,
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
    /// When the last `playback` event went out (local ms).
    last_playback: Option<f64>,
    /// The playlist's ids, for the pinning task (it applies the latest only).
    pins: tokio::sync::watch::Sender<Vec<String>>,
}

/// Keeps the cache's pins equal to the latest playlist, one change at a time.
fn spawn_pinning(cache: Cache) -> tokio::sync::watch::Sender<Vec<String>> {
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

/// How far ahead a realigning start is scheduled (ms): the engine's control lead
/// (jamz-sync `CONTROL_LEAD_MS`), which lands on time on every output measured.
const REALIGN_LEAD_MS: f64 = 300.0;

/// While playing, a `playback` event at least this often (ms), so a face can
/// show a moving position without polling `status`.
const PLAYBACK_EVENT_PERIOD_MS: f64 = 1000.0;

impl Runtime {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<NodeCommand>,
        link_events: LinkEvents,
        mut reports: mpsc::UnboundedReceiver<AudioReport>,
        mut jobs: mpsc::UnboundedReceiver<Job>,
    ) -> Result<(), NodeError> {
        self.emit(NodeEvent::Tier {
            tier: Tier::Offline,
            reason: "connecting".into(),
        });
        let mut link_events = Some(link_events);
        let mut clock_reports = tokio::time::interval(CLOCK_REPORT_PERIOD);
        clock_reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .engine
                .next_timeout()
                .map(|t| tokio::time::Instant::from_std(self.clock.instant_at(t)));
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    if cmd == NodeCommand::Quit {
                        break;
                    }
                    self.command(cmd).await;
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
                Some(report) = reports.recv() => self.audio_report(report).await,
                Some(job) = jobs.recv() => match job {
                    Job::Input(i) => self.feed(i),
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
                    }
                    Job::OutboxSent(r) => self.outbox_sent(r),
                    Job::PreloadDone(generation) => {
                        if generation == self.preload_generation {
                            self.preload = None;
                        }
                    }
                },
                _ = clock_reports.tick() => self.report_clock(),
                () = sleep_until_opt(deadline) => self.feed(Input::Tick),
            }
        }
        self.quit().await;
        Ok(())
    }

    async fn quit(&mut self) {
        if let Some(c) = self.preload.take() {
            c.cancel();
        }
        self.audio.send(AudioJob::Stop);
        let _ = self.link.send(&LeaveAudioSession {
            session_id: self.session_id.clone(),
        });
        let _ = tokio::time::timeout(QUIT_GRACE, self.link.close()).await;
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
                // The engine joins on every `Connected`; the link has already
                // re-joined the declared room by then. Only a different join (other
                // session or name) goes out, and becomes the declared room.
                if self.room.as_ref() != Some(&data) {
                    if let Err(e) = self.link.join_room(event, data.clone()) {
                        tracing::warn!(error = %e, "join failed");
                    }
                    self.room = Some(data);
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
            Action::TimeSync { t0 } => {
                let link = self.link.clone();
                let jobs = self.jobs.clone();
                let clock = self.clock;
                tokio::spawn(async move {
                    let input = match link.time_sync(t0, TIME_SYNC_TIMEOUT).await {
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
        }
    }

    fn rest_call(&mut self, call: RestCall) {
        // Behind calls already waiting, or with no server: wait with them, in order.
        if !self.connected || !self.outbox.is_empty() {
            self.keep_for_later(Pending::Rest(call));
            return;
        }
        self.rest_in_flight += 1;
        let rest = self.rest.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let job = match send_rest(&rest, &call).await {
                Ok(playlist) => Job::RestDone(Input::PlaylistLoaded(playlist)),
                Err(e) if e.is_unreachable() => Job::Unreachable(Pending::Rest(call)),
                Err(e) => Job::RestDone(Input::RestFailed {
                    call,
                    message: e.to_string(),
                }),
            };
            let _ = jobs.send(job);
        });
    }

    /// Puts a playlist change in the outbox (on disk) until the server is back.
    fn keep_for_later(&mut self, call: Pending) {
        if let Err(e) = self.outbox.push(call) {
            self.emit(NodeEvent::error(
                format!("a change made offline cannot be kept for later: {e}"),
                None,
            ));
        }
        self.emit_outbox();
    }

    fn emit_outbox(&self) {
        self.emit(NodeEvent::Outbox {
            pending: self.outbox.views(),
        });
    }

    /// Sends the oldest waiting change; each answer sends the next one.
    fn flush_outbox(&mut self) {
        if self.outbox_sending || !self.connected {
            return;
        }
        let Some(call) = self.outbox.front().cloned() else {
            return;
        };
        self.outbox_sending = true;
        let rest = self.rest.clone();
        let cache = self.cache.clone();
        let session_id = self.session_id.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            let r = send_pending(&rest, &cache, &session_id, &call, &jobs).await;
            let _ = jobs.send(Job::OutboxSent(r));
        });
    }

    fn outbox_sent(&mut self, r: Result<Vec<Track>, OutboxFailure>) {
        self.outbox_sending = false;
        match r {
            Err(OutboxFailure::Unreachable(e)) => {
                tracing::info!(error = %e, "offline changes wait for the next connection");
                return;
            }
            Err(OutboxFailure::Refused(e)) => self.emit(NodeEvent::error(
                format!("a change made offline did not go through: {e}"),
                None,
            )),
            Ok(playlist) => self.feed(Input::PlaylistLoaded(playlist)),
        }
        if let Err(e) = self.outbox.pop_front() {
            self.emit(NodeEvent::error(
                format!("the offline changes file: {e}"),
                None,
            ));
        }
        self.emit_outbox();
        self.flush_outbox();
    }

    fn audio_command(&mut self, cmd: AudioCommand) {
        match cmd {
            AudioCommand::Start {
                track,
                position,
                at,
            } => self.audio.send(AudioJob::Start {
                track: Box::new(track),
                position,
                at_ms: at,
            }),
            AudioCommand::Pause => self.audio.send(AudioJob::Pause),
            AudioCommand::Stop => self.audio.send(AudioJob::Stop),
            AudioCommand::SetRateTrim { ppm } => self.audio.send(AudioJob::RateTrim { ppm }),
            AudioCommand::Preload(track) => {
                let cache = self.cache.clone();
                tokio::spawn(async move {
                    if let Err(e) = cache.fetch_to_path(&cache_track(&track)).await {
                        tracing::info!(track = %track.id, error = %e, "preloading the next track failed");
                    }
                });
            }
            AudioCommand::QueryClock => {
                let input = self.clock_input();
                self.pending.push_back(input);
            }
        }
    }

    fn clock_input(&self) -> Input {
        let now = Instant::now();
        let heard = self.audio.player().audible_position(now).map(|p| Heard {
            track: p.track,
            position: p.seconds,
        });
        Input::AudioClock {
            at: self.clock.ms_at(now),
            heard,
        }
    }

    fn report_clock(&mut self) {
        let input = self.clock_input();
        self.feed(input);
        self.periodic_playback();
    }

    /// The engine reports playback on changes only; while audio plays, repeat
    /// where it is about once a second (from the audio clock, like the engine's).
    fn periodic_playback(&mut self) {
        if !self.playing {
            return;
        }
        let now = self.now();
        if self
            .last_playback
            .is_some_and(|t| now - t < PLAYBACK_EVENT_PERIOD_MS)
        {
            return;
        }
        let at = Instant::now();
        if let Some(p) = self.audio.player().audible_position(at) {
            self.last_playback = Some(now);
            self.emit(NodeEvent::Playback {
                playing: true,
                track: Some(p.track),
                position: p.seconds,
                at: self.clock.ms_at(at),
            });
        }
    }

    fn notify(&mut self, n: Notification) {
        let ev = match n {
            Notification::Ready {
                user_id,
                session_id,
                socket_id,
            } => NodeEvent::Ready {
                user_id,
                session_id,
                socket_id,
            },
            Notification::Playlist { playlist } => {
                self.pin_playlist(&playlist);
                let changed = self.playlist != playlist;
                self.playlist = playlist.clone();
                if changed {
                    self.auto_preload();
                }
                NodeEvent::Playlist { playlist }
            }
            Notification::Controller { user_id } => NodeEvent::Controller { user_id },
            Notification::Participants { participants } => NodeEvent::Participants {
                participants: participants
                    .into_iter()
                    .map(|p| ParticipantView {
                        user_id: p.user_id,
                        display_name: p.display_name,
                        socket_id: p.socket_id,
                    })
                    .collect(),
            },
            Notification::Playback {
                playing,
                track,
                position,
                at,
            } => {
                self.playing = playing;
                self.current = track.clone();
                self.last_playback = Some(self.now());
                NodeEvent::Playback {
                    playing,
                    track,
                    position,
                    at,
                }
            }
            Notification::Error { message, cmd } => NodeEvent::Error {
                message,
                cmd: cmd.map(str::to_owned),
            },
            Notification::ClockEstimate {
                offset_ms,
                drift_ppm,
                rtt_ms,
                source,
            } => {
                tracing::debug!(offset_ms, drift_ppm, ?rtt_ms, ?source, "clock estimate");
                return;
            }
            Notification::Resync { error_ms } => {
                tracing::info!(error_ms, "hard re-sync");
                return;
            }
        };
        self.emit(ev);
    }

    /// Starts the playing track again where the group's timeline has it
    /// [`REALIGN_LEAD_MS`] from now: after a stall or a device change, this
    /// device's latency figures are not to be trusted, and a start scheduled
    /// ahead on the shared timeline is what lands exactly (as a seek does).
    fn realign(&mut self) {
        if !self.playing {
            return;
        }
        let at = self.now() + REALIGN_LEAD_MS;
        let Some((id, position)) = self.engine.due_position(at) else {
            return;
        };
        let Some(track) = self.engine.timeline().map(|t| t.track.clone()) else {
            return;
        };
        if track.id != id || position < 0.0 {
            return;
        }
        self.audio.send(AudioJob::Start {
            track: Box::new(track),
            position,
            at_ms: at,
        });
    }

    /// The session's playlist is what must play offline: its cached tracks are
    /// kept whatever the size limit (jamz-cache never evicts pinned tracks).
    fn pin_playlist(&self, playlist: &[Track]) {
        let ids: Vec<String> = playlist.iter().map(|t| t.id.clone()).collect();
        self.pins.send_replace(ids);
    }

    fn set_offline(&mut self, reason: String) {
        self.connected = false;
        if self.tier != Tier::Offline {
            self.tier = Tier::Offline;
            self.emit(NodeEvent::Tier {
                tier: Tier::Offline,
                reason,
            });
        }
        self.feed(Input::Disconnected);
    }

    fn link_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::State(LinkState::Connected { sid, .. }) => {
                self.connected = true;
                self.queued = 0;
                if self.tier != Tier::Socket {
                    self.tier = Tier::Socket;
                    self.emit(NodeEvent::Tier {
                        tier: Tier::Socket,
                        reason: "connected to the server".into(),
                    });
                }
                self.feed(Input::Connected { socket_id: sid });
                // Back online: send what changed while away, catch up on what others added.
                self.flush_outbox();
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
            LinkEvent::Message(m) => match m.decode() {
                Ok(ev) => {
                    if let ServerEvent::LocationUpdate(l) = &ev {
                        self.emit(NodeEvent::Location {
                            user_id: l.user_id,
                            latitude: l.latitude,
                            longitude: l.longitude,
                            speed: l.speed,
                            heading: l.heading,
                            together: Vec::new(),
                        });
                    }
                    self.feed(Input::Server(ev));
                }
                Err(e) => self.emit(NodeEvent::error(
                    format!("bad `{}` event from the server: {e}", m.name),
                    None,
                )),
            },
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

    async fn audio_report(&mut self, report: AudioReport) {
        match report {
            AudioReport::Failed { track, message } => {
                let message = match track {
                    Some(t) => format!("track {t}: {message}"),
                    None => message,
                };
                self.emit(NodeEvent::error(format!("audio: {message}"), None));
            }
            AudioReport::Ended { track } => self.feed(Input::TrackEnded { track }),
            AudioReport::OutputSwitched { spec } => {
                self.output = spec;
                let ev = self.status().await;
                self.emit(ev);
            }
            AudioReport::Player(ev) => match ev {
                jamz_audio::PlayerEvent::Error { track, message } => {
                    let message = match track {
                        Some(t) => format!("audio: track {t}: {message}"),
                        None => format!("audio: {message}"),
                    };
                    self.emit(NodeEvent::error(message, None));
                }
                jamz_audio::PlayerEvent::Stalled { gap } => {
                    tracing::info!(
                        ?gap,
                        "the output stalled; starting again on the group's timeline"
                    );
                    self.realign();
                }
                other @ jamz_audio::PlayerEvent::DeviceRestored { .. } => {
                    tracing::info!(event = ?other, "player");
                    self.realign();
                }
                other => tracing::info!(event = ?other, "player"),
            },
        }
    }

    async fn command(&mut self, cmd: NodeCommand) {
        let input = match cmd {
            NodeCommand::Status => {
                let ev = self.status().await;
                self.emit(ev);
                return;
            }
            NodeCommand::TakeControl => Command::TakeControl,
            NodeCommand::Add {
                track: Some(track), ..
            } => Command::Add(*track),
            NodeCommand::Add {
                path: Some(path), ..
            } => {
                self.upload(path);
                return;
            }
            NodeCommand::Add { .. } => {
                self.emit(NodeEvent::error(
                    "add needs exactly one of `path` and `track`",
                    Some("add"),
                ));
                return;
            }
            NodeCommand::Remove { track } => Command::Remove { track },
            NodeCommand::Reorder { order } => Command::Reorder { order },
            NodeCommand::Play { track, position } => Command::Play { track, position },
            NodeCommand::Pause => Command::Pause,
            NodeCommand::Seek { position } => Command::Seek { position },
            NodeCommand::Next => Command::Next,
            NodeCommand::Previous => Command::Previous,
            NodeCommand::Volume { level } => {
                self.audio.send(AudioJob::Volume {
                    level: level as f32,
                });
                return;
            }
            NodeCommand::Preload => {
                self.preload(true);
                return;
            }
            NodeCommand::AutoPreload { enabled } => {
                self.auto_preload = enabled;
                if enabled {
                    self.auto_preload();
                } else if !self.preload_manual
                    && let Some(c) = self.preload.take()
                {
                    c.cancel();
                }
                return;
            }
            NodeCommand::Location {
                latitude,
                longitude,
                speed,
                heading,
            } => {
                self.location(latitude, longitude, speed, heading);
                return;
            }
            NodeCommand::Quit => return,
            NodeCommand::LatencyOffset { ms } => {
                self.latency_offset_ms = ms;
                self.audio.send(AudioJob::LatencyOffset {
                    offset: Duration::from_secs_f64(ms / 1000.0),
                });
                return;
            }
            NodeCommand::CacheLimit { bytes, tracks } => {
                let (max_tracks, _) = self.cache.limits();
                let r = self
                    .cache
                    .set_limits(tracks.unwrap_or(max_tracks), bytes)
                    .await;
                self.after_cache_change(r, "cache-limit").await;
                return;
            }
            NodeCommand::CacheClear => {
                if let Some(c) = self.preload.take() {
                    c.cancel();
                }
                let r = self.cache.clear().await;
                self.after_cache_change(r, "cache-clear").await;
                return;
            }
            NodeCommand::Output { spec } => {
                match spec.parse() {
                    Ok(spec) => self.audio.send(AudioJob::SwitchOutput { spec }),
                    Err(e) => self.emit(NodeEvent::error(format!("{e}"), Some("output"))),
                }
                return;
            }
            NodeCommand::Outputs => {
                let ev = match tokio::task::spawn_blocking(jamz_audio::output_devices).await {
                    Ok(Ok(devices)) => NodeEvent::Outputs {
                        outputs: devices
                            .into_iter()
                            .map(|d| OutputView {
                                id: d.id,
                                name: d.name,
                                is_default: d.is_default,
                            })
                            .collect(),
                    },
                    Ok(Err(e)) => {
                        NodeEvent::error(format!("listing outputs: {e}"), Some("outputs"))
                    }
                    Err(e) => NodeEvent::error(format!("listing outputs: {e}"), Some("outputs")),
                };
                self.emit(ev);
                return;
            }
        };
        self.feed(Input::Command(input));
    }

    /// Answers a cache change with the error, or with a `status` carrying the
    /// cache's new figures.
    async fn after_cache_change(&mut self, r: Result<(), jamz_cache::CacheError>, cmd: &str) {
        match r {
            Ok(()) => {
                let ev = self.status().await;
                self.emit(ev);
            }
            Err(e) => self.emit(NodeEvent::error(format!("track cache: {e}"), Some(cmd))),
        }
    }

    async fn status(&self) -> NodeEvent {
        let heard = self.audio.player().audible_position(Instant::now());
        let (max_tracks, max_bytes) = self.cache.limits();
        let cache = match self.cache.stats().await {
            Ok(s) => CacheSummary {
                tracks: s.tracks,
                bytes: s.bytes,
                hits: s.hits,
                misses: s.misses,
                max_bytes,
                max_tracks: max_tracks as u64,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cache stats");
                CacheSummary::default()
            }
        };
        let stats = self.engine.stats();
        let now = self.now();
        // What is audible; when nothing is (paused, not started), where the
        // group's timeline stands.
        let (track, position) = match heard {
            Some(h) => (Some(h.track), Some(h.seconds)),
            None => match self.engine.timeline() {
                Some(t) => (
                    Some(t.track.id.clone()),
                    Some(t.position_at(self.engine.to_server_time(now))),
                ),
                None => (self.current.clone(), None),
            },
        };
        let clock = self.engine.clock_estimate(now);
        NodeEvent::Status(StatusView {
            tier: self.tier,
            playing: self.playing,
            track,
            position,
            clock_offset_ms: Some(clock.offset_ms),
            drift_ms: stats.last_error_ms,
            peers: 0,
            cache,
            queued: self.queued + self.rest_in_flight + self.outbox.len() as u64,
            output: self.output.clone(),
            latency_offset_ms: self.latency_offset_ms,
        })
    }

    fn upload(&mut self, path: PathBuf) {
        // Without a server (or behind changes waiting for one): upload later, in order.
        if !self.connected || !self.outbox.is_empty() {
            self.keep_for_later(Pending::Upload { path });
            return;
        }
        let rest = self.rest.clone();
        let cache = self.cache.clone();
        let jobs = self.jobs.clone();
        tokio::spawn(async move {
            match upload_and_cache(&rest, &cache, &path, &jobs).await {
                Ok(track) => {
                    let _ = jobs.send(Job::Input(Input::Command(Command::Add(track))));
                }
                Err(NodeError::Link(e)) if e.is_unreachable() => {
                    let _ = jobs.send(Job::Unreachable(Pending::Upload { path }));
                }
                Err(e) => {
                    let _ = jobs.send(Job::Event(NodeEvent::error(
                        format!("cannot add {}: {e}", path.display()),
                        Some("add"),
                    )));
                }
            }
        });
    }

    /// The background preload, when it is on and the server is reachable. A run
    /// asked for by the user is left to finish; a background one starts over
    /// with the new playlist (tracks already cached are skipped at once).
    fn auto_preload(&mut self) {
        if !self.auto_preload || !self.connected || (self.preload.is_some() && self.preload_manual)
        {
            return;
        }
        self.preload(false);
    }

    /// Caches the whole playlist with `progress` events; `manual` runs (the
    /// `preload` command) also report each track that fails.
    fn preload(&mut self, manual: bool) {
        if let Some(old) = self.preload.take() {
            old.cancel();
        }
        let cancel = CancellationToken::new();
        self.preload = Some(cancel.clone());
        self.preload_generation += 1;
        self.preload_manual = manual;
        let generation = self.preload_generation;
        let tracks: Vec<_> = self.playlist.iter().map(cache_track).collect();
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

    fn location(
        &mut self,
        latitude: f64,
        longitude: f64,
        speed: Option<f64>,
        heading: Option<f64>,
    ) {
        let fix = LocationUpdate {
            session_id: self.session_id.clone(),
            latitude,
            longitude,
            accuracy: None,
            speed,
            heading,
            timestamp: self.now(),
        };
        if !self.connected {
            self.queued += 1;
        }
        if let Err(e) = self.link.send(&fix) {
            self.emit(NodeEvent::error(
                format!("cannot send the fix: {e}"),
                Some("location"),
            ));
            return;
        }
        // The server relays a fix to the others only: show this device's own too.
        self.emit(NodeEvent::Location {
            user_id: self.user_id,
            latitude,
            longitude,
            speed,
            heading,
            together: Vec::new(),
        });
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
    fn location_sources_parse() {
        assert_eq!("none".parse(), Ok(LocationSource::None));
        assert_eq!(
            "replay:/tmp/a.nmea".parse(),
            Ok(LocationSource::Replay("/tmp/a.nmea".into()))
        );
        assert_eq!(
            "gpsd:localhost:2947".parse(),
            Ok(LocationSource::Gpsd("localhost:2947".into()))
        );
        for bad in ["", "replay:", "gps", "gpsd:"] {
            assert!(bad.parse::<LocationSource>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_states_read_as_reasons() {
        let s = describe(&LinkState::Disconnected {
            reason: DisconnectReason::PingTimeout,
        });
        assert!(s.contains("pings"), "{s}");
        assert_eq!(describe(&LinkState::Closed), "the link closed");
    }
}

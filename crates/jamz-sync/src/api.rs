//! The engine's public contract with the runtime (`jamz-node`), the simulation and the tests.
//!
//! The engine is sans-IO: the node feeds [`Input`]s with the current [`LocalTime`] through
//! `Engine::handle(now, input)`, then drains `Engine::poll()` until it returns `None`, and
//! calls `handle(t, Input::Tick)` when the clock reaches `Engine::next_timeout()`.
//! Nothing here reads a clock, opens a socket or spawns a task.
//!
//! # Time
//! - [`LocalTime`]: milliseconds on this device's clock. The node derives it as
//!   `wall clock at start (ms since the Unix epoch) + monotonic elapsed`, so it never jumps
//!   (NTP steps and manual clock changes do not reach the engine).
//! - [`ServerTime`]: milliseconds on the server's clock, the group clock every device
//!   converts to and from with its estimated offset.
//! - A protocol `timestamp` is milliseconds on its *sender's* clock (docs/protocol.md). Our own
//!   engines send server-clock timestamps (local + estimated offset).
use jamz_proto::{Session, Track, UserId};
use serde::{Deserialize, Serialize};

/// Milliseconds on this device's monotonic-since-start clock (see the module doc).
pub type LocalTime = f64;

/// Milliseconds on the server's clock (the group clock).
pub type ServerTime = f64;

/// How the engine is set up for one user in one session.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// This user's id (from login).
    pub user_id: UserId,
    /// The name shown to others (`display_name` in `join-audio-session`).
    pub display_name: String,
    /// The session to join on `Input::Connected`. May also come later from
    /// [`Input::SessionLoaded`].
    pub session_id: Option<String>,
    /// Lead of the DJ's play/seek/track-change: the agreed start instant is this far in the
    /// future so every device can start together. Default [`crate::constants::CONTROL_LEAD_MS`].
    pub control_lead_ms: f64,
    /// Force the position-sync period for high-latency links (3 s instead of 5 s); `None`
    /// decides from the measured round trip (`crate::constants::HIGH_LATENCY_RTT_MS`).
    pub high_latency_link: Option<bool>,
    /// Location sharing and the convoy's settings.
    pub location: crate::location::LocationConfig,
    /// This device has an external video player (the app's web view runs YouTube's IFrame
    /// player): YouTube tracks are steered there ([`Action::External`]) instead of leaving
    /// the device silent.
    pub external_video_player: bool,
    /// This device's own key (docs/mesh-trust.md): while this device is the DJ and the
    /// server's grant names its key, it signs what it sends over the mesh, so that peers
    /// obey it relayed too. `None`: nothing signed (obeyed on direct links only).
    pub device_key: Option<crate::trust::DeviceKey>,
    /// The sequence number of this member's first mesh message. It must grow across
    /// restarts, or peers that remember the earlier run drop the new messages as seen: the
    /// node gives the Unix time in ms at start.
    pub mesh_first_sequence: u64,
}

impl EngineConfig {
    /// A configuration with every tunable at its default.
    pub fn new(user_id: UserId, display_name: impl Into<String>) -> Self {
        Self {
            user_id,
            display_name: display_name.into(),
            session_id: None,
            control_lead_ms: crate::constants::CONTROL_LEAD_MS,
            high_latency_link: None,
            location: crate::location::LocationConfig::default(),
            external_video_player: false,
            device_key: None,
            mesh_first_sequence: 1,
        }
    }

    /// The same, with the session to join.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }
}

/// A report of the external video player (the app's web view), stamped with the local
/// instant it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum ExternalReport {
    /// `getCurrentTime()` and `getPlayerState()` of the player while it holds `video`.
    Reading {
        video: String,
        reading: crate::external::Reading,
    },
    /// `onError` with this code while it held `video`: this device is silent for it.
    Error { video: String, code: i64 },
}

/// What the node feeds the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The REST session document (`GET /api/audio/sessions/group/:groupId`): sets the session
    /// id, the playlist and the controller. Playback in it is ignored (it has no clock).
    SessionLoaded(Box<Session>),
    /// The Socket.IO link is up with this socket id. The engine then emits
    /// `join-audio-session` itself (the node must not) and starts clock sync.
    Connected { socket_id: String },
    /// The Socket.IO link is down (`reason` in words, for the `tier` notification). Playback
    /// goes on by the last clock estimate.
    Disconnected { reason: String },
    /// Every decoded server event (`jamz_proto::ServerEvent::decode`). Unknown ones are ignored.
    Server(jamz_proto::ServerEvent),
    /// The ack of a `time-sync {t0}` the engine asked for with [`Action::TimeSync`]:
    /// `t0` as sent, `t1`/`t2` from the ack (server ms), `t3` = local time the ack arrived.
    TimeSyncReply {
        t0: LocalTime,
        t1: ServerTime,
        t2: ServerTime,
        t3: LocalTime,
    },
    /// The `time-sync {t0}` got no ack (timeout, or the server lacks the extension). After
    /// a few of these with no reply ever, the engine falls back to the seeds' rule.
    TimeSyncFailed { t0: LocalTime },
    /// A command of the local user (docs/node-control.md).
    Command(Command),
    /// The player's audible position at local instant `at` (`Player::audible_position`),
    /// `None` when nothing is audible. Answer [`AudioCommand::QueryClock`] with it; sending it
    /// unasked (every 100-250 ms) is fine too.
    AudioClock { at: LocalTime, heard: Option<Heard> },
    /// The player reached the end of `track` (`PlayerEvent::TrackEnded`).
    TrackEnded { track: String },
    /// The output stalled for `gap_ms` while playing (`PlayerEvent::Stalled`): audio came
    /// that much late and the device's latency figures may stay off until the next start.
    /// The engine restarts on the group's timeline.
    OutputStalled { gap_ms: f64 },
    /// The track `track` waits for its bytes (`buffering: true`: a start of a track still
    /// downloading waits for enough of it, or the download stalled under the player), or has
    /// them again (`false`). While it waits the device is silent and the engine does not
    /// restart it for that silence; the player stays on the group's timeline and plays in
    /// step as soon as the bytes are there.
    Buffering { track: String, buffering: bool },
    /// The output device went away (`PlayerEvent::DeviceLost`): nothing is audible until it
    /// is back, and the engine does not restart meanwhile.
    OutputLost,
    /// A device is open again (`PlayerEvent::DeviceRestored`). The player plays nothing on
    /// it by itself; the engine restarts on the group's timeline.
    OutputRestored,
    /// Another output was opened on the user's request (the old one stopped); the engine
    /// restarts on the group's timeline there.
    OutputSwitched,
    /// What the external video player reported (see [`crate::external`]).
    External(ExternalReport),
    /// A playlist from a REST answer (`{success, playlist}` of append/delete/reorder).
    PlaylistLoaded(Vec<Track>),
    /// A REST call asked for with [`Action::Rest`] failed (403, 409, network ...).
    RestFailed { call: RestCall, message: String },
    /// Location: this car's fixes, sharing on/off, the regroup point
    /// ([`crate::location`]).
    Location(crate::location::LocationInput),
    /// The mesh's `music-control` channel to `user` is open (docs/protocol.md, "Peer mesh"),
    /// with the round trip measured so far if any. Also sent again when the round trip is
    /// measured anew.
    PeerUp { user: UserId, rtt_ms: Option<f64> },
    /// The mesh link to `user` closed (or the member left).
    PeerDown { user: UserId },
    /// A mesh message that arrived on the direct link to `link`, already de-duplicated by
    /// `(from, sequence)` per link by the mesh adapter. `message.from` is who says they
    /// wrote it; the engine decides whether to believe it ([`crate::trust::Gate::judge`]):
    /// what it refuses is not applied and comes out as [`Notification::MeshRefused`].
    Mesh {
        link: UserId,
        message: Box<jamz_proto::mesh::MeshEnvelope>,
    },
    /// A `webrtc-signal` the mesh has for a peer (an offer, an answer, a candidate). The
    /// engine sends it through the server while the socket is up, else over the open mesh
    /// links for the peers there to carry (docs/mesh-trust.md, "Signaling over the
    /// mesh"); with neither it is dropped (the mesh offers again when a link closes).
    SignalOut(Box<jamz_proto::events::WebrtcSignal>),
    /// The server's grant-signing key (`GET /api/mesh/grant-key`), fetched while online
    /// and kept by the node for when the server is gone: without it no control is obeyed
    /// over the mesh (docs/mesh-trust.md).
    GrantKey(jamz_proto::grant::GrantKey),
    /// **(ext)** Instead of [`Input::SessionLoaded`] when the server is unreachable at start:
    /// the session the node kept ([`crate::kept::KeptSession::read`] said it may be used).
    /// The engine takes its session, members, DJ and grant, playlist and timeline, and asks
    /// the peers it kept the address of for links ([`Action::MeshDirect`]) until one is
    /// open, then the others over the mesh (docs/protocol.md, "Rejoining without the
    /// server").
    SessionKept(Box<crate::kept::KeptSession>),
    /// The mesh link to `user` is open with its end at `address` (kept for a restart).
    PeerAddress {
        user: UserId,
        address: std::net::SocketAddr,
    },
    /// **(ext)** A mesh message that came straight to this device's mesh socket from
    /// `address`, not over a link (`mesh-rejoin`, `webrtc-signal`: jamz-mesh's `direct`).
    MeshDirect {
        address: std::net::SocketAddr,
        message: Box<jamz_proto::mesh::MeshEnvelope>,
    },
    /// **(ext)** The relative calibration (docs/protocol.md, "Relative calibration"): the
    /// user's request, the output's state, the listener's recording.
    Calibration(CalibrationInput),
    /// The time of `Engine::next_timeout()` has come.
    Tick,
}

/// **(ext)** What the node tells the engine of a relative calibration
/// ([`crate::calibration::peer`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationInput {
    /// The user asks (on the listening device) for member `user`'s output to be calibrated
    /// from this device's microphone, with `probes` probes.
    Start { user: UserId, probes: usize },
    /// What the player knows of its output: whether it reaches a speaker, the latency
    /// offset in force (ms), whether its own calibration runs. Sent at start and on every
    /// change; until then the device refuses to play probes (no speaker known).
    Output {
        audible: bool,
        offset_ms: f64,
        calibrating: bool,
    },
    /// The listener's recording of `run_id` ended: where each probe of
    /// [`CalibrationAction::Record`]'s `at` was found (in its order; `None`: not found),
    /// and the input's latency (ms) not in those instants.
    Heard {
        run_id: String,
        heard: Vec<Option<HeardProbe>>,
        input_latency_ms: f64,
    },
    /// The recording (listener) or the probes (player) of `run_id` failed.
    Failed { run_id: String, message: String },
}

/// Where the listener found one probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeardProbe {
    /// The local instant the probe starts in the recording (by the input's stamps).
    pub at: LocalTime,
    /// The finder's confidence, 0 to 1.
    pub confidence: f64,
}

/// **(ext)** What the engine asks the node to do for a relative calibration.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationAction {
    /// Listener: record the default input from now until `until` and look for a probe
    /// heard at each of `at` (local ms), from [`crate::calibration::relative`]'s 300 ms
    /// early to 900 ms late; answer with [`CalibrationInput::Heard`] or `Failed`.
    Record {
        run_id: String,
        at: Vec<LocalTime>,
        until: LocalTime,
    },
    /// Player: play one probe audible at each of `at` (local ms, the output's latency
    /// offset in force included, as any start); a failure as [`CalibrationInput::Failed`].
    PlayProbes { run_id: String, at: Vec<LocalTime> },
    /// Player: set the output's latency offset to the result's `latency_offset_ms` and
    /// tell the user (its `calibration` event, `from` the listener).
    SetOffset(PeerCalibrated),
}

/// A relative calibration's figures: on the player, from the listener `user`; on the
/// listener, of the player `user`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeerCalibrated {
    #[serde(rename = "userId")]
    pub user: UserId,
    /// How much later than the player reckoned (with `from_offset_ms` in force) the probes
    /// were heard, ms.
    pub delay_ms: f64,
    pub spread_ms: f64,
    pub confidence: f64,
    pub probes: usize,
    pub agreeing: usize,
    /// The player's latency offset in force during the measurement, ms.
    pub from_offset_ms: f64,
    /// The player's latency offset from now on, ms.
    pub latency_offset_ms: f64,
}

/// What the player says is audible.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heard {
    /// Track id.
    pub track: String,
    /// Seconds into the track.
    pub position: f64,
}

/// The local user's commands (docs/node-control.md); DJ-only ones are refused with an error
/// notification when this user is not the DJ. Spelled as the node's control lines spell them
/// (jamz-node's `NodeCommand::Session` carries them as they are), except `Add`: a line names a
/// file or a track, which the node uploads or checks before it hands the engine a `Track`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// Become the DJ (`music-take-control`). Takes effect on `music-controller-changed`.
    TakeControl,
    /// DJ: play `track` (an id in the playlist; `None`: the current one, else the first) from
    /// `position` seconds (`None`: where it was paused, else 0).
    Play {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<f64>,
    },
    /// DJ: pause everyone.
    Pause,
    /// DJ: move the current track to `position` seconds.
    Seek { position: f64 },
    /// DJ: the next track of the playlist.
    Next,
    /// DJ: the previous track of the playlist.
    Previous,
    /// Anyone: append a track that already has a `url` (uploaded by the node).
    #[serde(skip)]
    Add(Box<Track>),
    /// DJ: remove a track by id.
    Remove { track: String },
    /// DJ: reorder the playlist; `order` must be a permutation of the current ids.
    Reorder { order: Vec<String> },
}

impl Command {
    /// The names of the commands a control line can spell as they are (all but `add`).
    pub const NAMES: [&'static str; 8] = [
        "take-control",
        "play",
        "pause",
        "seek",
        "next",
        "previous",
        "remove",
        "reorder",
    ];

    /// The docs/node-control.md name of the command, for `error` events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TakeControl => "take-control",
            Self::Play { .. } => "play",
            Self::Pause => "pause",
            Self::Seek { .. } => "seek",
            Self::Next => "next",
            Self::Previous => "previous",
            Self::Add(_) => "add",
            Self::Remove { .. } => "remove",
            Self::Reorder { .. } => "reorder",
        }
    }
}

/// What the engine asks the node to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Emit a Socket.IO event to the server, `event` in docs/protocol.md spelling
    /// (`jamz_proto::events::names`), `data` its payload.
    Emit {
        event: &'static str,
        data: serde_json::Value,
    },
    /// Emit `time-sync {t0}` with an ack; feed the ack back as [`Input::TimeSyncReply`]
    /// (with `t3` = local time of arrival), or [`Input::TimeSyncFailed`] when no ack came
    /// within `timeout_ms` (the engine's one time-sync timeout,
    /// `crate::constants::TIME_SYNC_TIMEOUT_MS`; it counts the probe as lost then too, so
    /// reporting failures is optional). Several may be in flight at once (the burst on
    /// connect pipelines up to 16).
    TimeSync { t0: LocalTime, timeout_ms: f64 },
    /// A REST call; feed the answer's playlist back as [`Input::PlaylistLoaded`], a failure as
    /// [`Input::RestFailed`].
    Rest(RestCall),
    /// Drive the player.
    Audio(AudioCommand),
    /// Drive the external video player (the app's YouTube IFrame player).
    External(crate::external::Directive),
    /// Tell the user (docs/node-control.md events; serializes as one JSON line).
    Notify(Notification),
    /// `POST /api/locations` each fix, in order (fixes the socket could not carry, for the
    /// server's history). Those not taken because the server is unreachable go back as
    /// `Input::Location(LocationInput::ReportFailed)`.
    ReportLocations {
        reports: Vec<jamz_proto::rest::LocationReport>,
    },
    /// Send a mesh message as it is: to one peer (`to`), or to every connected peer
    /// (`None`). The engine stamped it (this member's next sequence number; the DJ's
    /// device signs it, docs/mesh-trust.md), or it is another member's message relayed
    /// with one hop less to go (docs/protocol.md, "Relaying").
    Mesh {
        to: Option<UserId>,
        message: Box<jamz_proto::mesh::MeshEnvelope>,
    },
    /// **(ext)** The node's part of a relative calibration (record, play probes, set the
    /// offset).
    Calibration(CalibrationAction),
    /// Hand the mesh a `webrtc-signal` for this device: from the server, or carried over
    /// the mesh by other peers (docs/mesh-trust.md, "Signaling over the mesh").
    Signal(Box<jamz_proto::events::WebrtcSignal>),
    /// **(ext)** Send a mesh message (`mesh-rejoin`, `webrtc-signal`) straight to a peer's
    /// mesh socket at `to`, not over a link: a restarted node and the peer it asks for a
    /// link, before that link is open (jamz-mesh's `direct`).
    MeshDirect {
        to: std::net::SocketAddr,
        message: Box<jamz_proto::mesh::MeshEnvelope>,
    },
    /// **(ext)** A link with `user` is wanted anew (`mesh-rejoin`): `by_peer`, `user`
    /// restarted and asked; else this device, restarted, asks it. The mesh sets the link
    /// up anew where that helps (`Mesh::rejoined`).
    Rejoin { user: UserId, by_peer: bool },
}

/// A mesh message before the engine stamps it: the envelope's `type`, `action` and
/// `data` (docs/protocol.md, "Peer mesh").
#[derive(Debug, Clone, PartialEq)]
pub struct MeshOut {
    pub kind: &'static str,
    pub action: Option<jamz_proto::events::ControlAction>,
    pub data: serde_json::Value,
}

/// REST calls of the playlist (docs/protocol.md, "REST"); the session id is the engine's.
// Rare, like commands: kept unboxed for the node's convenience.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum RestCall {
    /// `POST /api/audio/sessions/:sessionId/music/playlist {track}` (anyone).
    AppendTrack { session_id: String, track: Track },
    /// `DELETE /api/audio/sessions/:sessionId/music/playlist/:trackId` (DJ).
    DeleteTrack {
        session_id: String,
        track_id: String,
    },
    /// `PUT /api/audio/sessions/:sessionId/music/playlist {order}` (DJ).
    Reorder {
        session_id: String,
        order: Vec<String>,
    },
}

/// Player commands (map one to one onto `jamz_audio::Player`).
#[derive(Debug, Clone, PartialEq)]
pub enum AudioCommand {
    /// `Player::start`: play `track` so that `position` (s) is audible at local instant `at`.
    /// `at` may be in the past (late joiner, late message): the player then starts at once
    /// from where the track is by then, so it stays in step.
    Start {
        track: Track,
        position: f64,
        at: LocalTime,
    },
    /// `Player::pause`.
    Pause,
    /// `Player::stop`.
    Stop,
    /// `Player::set_rate_trim(ppm)`, always within +-1000 ppm.
    SetRateTrim { ppm: f64 },
    /// Fetch `track` into the cache ahead of time (the next one in the playlist).
    Preload(Track),
    /// Answer with [`Input::AudioClock`] for the current local time.
    QueryClock,
}

/// Where the engine's server clock estimate comes from, best first.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    /// NTP-style `time-sync` exchanges, lowest round trips kept.
    TimeSync,
    /// One-shot: `server_time` of `music-session-state` at arrival (off by the one-way delay).
    SessionState,
    /// No estimate: the seeds' rule `position + (now - timestamp)/1000`, i.e. clocks assumed
    /// to agree (offset 0).
    SeedsRule,
}

/// The engine's view of the server clock: `server = local + offset_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockEstimate {
    /// Server minus local clock at the time of the estimate, ms.
    pub offset_ms: f64,
    /// Rate of the server clock against ours, ppm (server runs faster if positive).
    pub drift_ppm: f64,
    /// Lowest round trip in the window, ms (`None` without time-sync).
    pub rtt_ms: Option<f64>,
    /// Bound on the offset error from the round trip (half the best RTT), ms.
    pub error_bound_ms: Option<f64>,
    pub source: ClockSource,
}

/// Events for the user, in docs/node-control.md spelling: the node's `--json` events and
/// the app's session events are these, as they are (jamz-node's `NodeEvent::Session`), so
/// each is spelled once. Not every one is shown: `clock-estimate` and `resync` are logged.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Notification {
    /// Joined (or re-joined) the session.
    Ready {
        #[serde(rename = "userId")]
        user_id: UserId,
        #[serde(rename = "sessionId")]
        session_id: String,
        #[serde(rename = "socketId")]
        socket_id: String,
    },
    Playlist {
        playlist: Vec<Track>,
    },
    /// The DJ changed (`None`: nobody).
    Controller {
        #[serde(rename = "userId")]
        user_id: Option<UserId>,
    },
    Participants {
        participants: Vec<ParticipantView>,
    },
    /// Playback changed: `position` (s) of `track` is due at local instant `at`.
    /// `sync_offset_ms` is the sync meter ([`crate::sync_meter`]): how far ahead (positive)
    /// of the group this device plays, ms; `null` when not measured in the last second
    /// (paused, just started, silent). Set on the periodic reports while playing.
    Playback {
        playing: bool,
        track: Option<String>,
        position: f64,
        at: LocalTime,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        sync_offset_ms: Option<f64>,
    },
    /// This device cannot play `track` (a YouTube video on a headless node, a Spotify track
    /// without a preview): it stays silent for it, in step, and plays the next on time.
    NotPlayable {
        track: String,
        reason: String,
    },
    /// This device waits for the bytes of `track` (`buffering: true`: the track is still
    /// downloading, it is silent meanwhile) or has them again and plays in step (`false`).
    Buffering {
        track: String,
        buffering: bool,
    },
    /// A refused command or a bad event; the engine goes on. `cmd` names the command.
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cmd: Option<String>,
    },
    /// The server clock estimate improved or changed source.
    ClockEstimate {
        offset_ms: f64,
        drift_ppm: f64,
        rtt_ms: Option<f64>,
        source: ClockSource,
    },
    /// How this device reaches the group changed (see [`Tier`]), with why.
    Tier {
        tier: Tier,
        reason: String,
    },
    /// The player was restarted on the group's timeline, for `cause`. Rare by design;
    /// logged for diagnosis.
    Resync {
        cause: RestartCause,
    },
    /// A peer's mesh message was refused and nothing of it applied (docs/mesh-trust.md):
    /// `from` as it claims, arrived on the link to `via`, of mesh `type` `kind`, for
    /// `reason` (a stable label such as `not-controller`, `grant-expired`,
    /// `grant-bad-signature`), `message` in words. Reported at most once per link and
    /// reason every few seconds; `count` is how many were refused since the last report.
    MeshRefused {
        from: UserId,
        via: UserId,
        #[serde(rename = "type")]
        kind: String,
        reason: String,
        message: String,
        count: u64,
    },
    /// **(ext)** The listener's relative calibration ended: member `userId`'s output was
    /// measured and it applied the result (its new offset `latency_offset_ms`).
    PeerCalibration(PeerCalibrated),
    /// Positions, sharing, together, the regroup point, falling behind: each its own
    /// event (`location`, `regroup`, ...), serialized as [`crate::location::LocationEvent`].
    #[serde(untagged)]
    Location(crate::location::LocationEvent),
}

/// How this device reaches the group, as the engine judges both transports' health:
/// `socket` while the server link is up and answers; `mesh` when it does not but at least
/// one peer's mesh link is open (the DJ's controls still arrive); `offline` with neither
/// (playback goes on by the last clock estimate).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Socket,
    Mesh,
    Offline,
}

/// Why the engine restarted the player (every restart has one, see `Engine`'s restart path).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum RestartCause {
    /// The playout error went past the hard limits: `error_ms` off (positive: ahead).
    Drift {
        #[serde(rename = "errorMs")]
        error_ms: f64,
    },
    /// Nothing (or another track) was audible well after a start: the start was lost.
    Silence,
    /// The output stalled for `gap_ms`.
    Stall {
        #[serde(rename = "gapMs")]
        gap_ms: f64,
    },
    /// The output device came back.
    DeviceRestored,
    /// Another output was chosen.
    OutputSwitched,
}

impl RestartCause {
    /// Counted in [`EngineStats::output_restarts`] (else in `hard_resyncs`).
    pub fn is_output_event(&self) -> bool {
        matches!(
            self,
            Self::Stall { .. } | Self::DeviceRestored | Self::OutputSwitched
        )
    }
}

/// One live connection of a member, as the user sees it (and as the node's `participants`
/// event lists it: docs/node-control.md spelling).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantView {
    #[serde(rename = "userId")]
    pub user_id: UserId,
    pub display_name: Option<String>,
    #[serde(rename = "socketId")]
    pub socket_id: String,
}

/// Counters for diagnostics and the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct EngineStats {
    /// Player restarts forced by a playout error past the hard limits (or a lost start).
    pub hard_resyncs: u64,
    /// Player restarts for what the output reported: a stall, a restored device, a switched
    /// output (one each).
    pub output_restarts: u64,
    /// Starts for a new timeline (play, seek, track change, join).
    pub starts: u64,
    /// The rate trim in force, ppm.
    pub rate_trim_ppm: f64,
    /// The last measured playout error (audible minus due), ms; positive: ahead.
    pub last_error_ms: Option<f64>,
    /// Time-sync samples accepted.
    pub time_sync_samples: u64,
    /// Mesh messages refused by the trust rules (docs/mesh-trust.md).
    pub mesh_refused: u64,
    /// Admitted mesh messages dropped as already had (a copy over another path, or a
    /// replayed sequence).
    pub mesh_duplicates: u64,
    /// Copies of other members' mesh messages this device relayed to its peers.
    pub mesh_relayed: u64,
    /// Admitted mesh messages that arrived relayed (their author is not the peer of the
    /// link they came on): each one signed by the DJ's device, its signature checked
    /// against the server's grant (docs/mesh-trust.md, "Relaying").
    pub mesh_relayed_in: u64,
    /// Mesh messages this device sent signed (as the DJ under a grant naming its key).
    pub mesh_signed: u64,
    /// Signals this device sent over the mesh (the server could not carry them).
    pub mesh_signals_sent: u64,
    /// Copies of other members' signals this device carried on to its peers.
    pub mesh_signals_relayed: u64,
    /// Signals for this device that arrived over the mesh and were handed to it.
    pub mesh_signals_in: u64,
    /// `mesh-rejoin`s this device sent (started from a kept session, the server gone).
    pub mesh_rejoins_sent: u64,
    /// `mesh-rejoin`s for this device acted on (a restarted member asked for a link).
    pub mesh_rejoins_in: u64,
    /// Messages that came straight to this device's mesh socket and were taken.
    pub mesh_direct_in: u64,
    /// Relative calibration messages refused (bad fields, an unknown run, not for this
    /// device, a result against an offset no longer in force).
    pub calibration_refused: u64,
}

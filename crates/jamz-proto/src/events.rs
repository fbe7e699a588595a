//! Socket.IO events (docs/protocol.md, "Socket.IO"), both directions.
//!
//! Field spellings follow docs/protocol.md message by message (`sessionId` but
//! `display_name`); the other spelling of each field is accepted on decode.
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::grant::ControllerGrant;
use crate::model::{Track, UserId};
use crate::{ProtoError, decode};

/// Event names, exactly as on the wire.
pub mod names {
    pub const JOIN_AUDIO_SESSION: &str = "join-audio-session";
    pub const LEAVE_AUDIO_SESSION: &str = "leave-audio-session";
    pub const MUSIC_TAKE_CONTROL: &str = "music-take-control";
    pub const MUSIC_CONTROL: &str = "music-control";
    pub const MUSIC_POSITION_SYNC: &str = "music-position-sync";
    pub const PLAYLIST_UPDATE: &str = "playlist-update";
    pub const WEBRTC_SIGNAL: &str = "webrtc-signal";
    pub const LOCATION_UPDATE: &str = "location-update";
    pub const TIME_SYNC: &str = "time-sync";
    /// (ext) Convoy signals: location sharing stopped, the regroup point set or cleared.
    pub const CONVOY_UPDATE: &str = "convoy-update";
    /// (ext) The relative calibration between two members (docs/protocol.md, "Relative
    /// calibration").
    pub const CALIBRATION_UPDATE: &str = "calibration-update";

    pub const MUSIC_SESSION_STATE: &str = "music-session-state";
    pub const CURRENT_PARTICIPANTS: &str = "current-participants";
    pub const PARTICIPANT_JOINED: &str = "participant-joined";
    pub const PARTICIPANT_LEFT: &str = "participant-left";
    pub const MUSIC_CONTROLLER_CHANGED: &str = "music-controller-changed";
    pub const MUSIC_PLAY: &str = "music-play";
    pub const MUSIC_PAUSE: &str = "music-pause";
    pub const MUSIC_SEEK: &str = "music-seek";
    pub const MUSIC_TRACK_CHANGE: &str = "music-track-change";
    pub const MUSIC_ERROR: &str = "music-error";

    /// Socket.IO's own event for a refused CONNECT.
    pub const CONNECT_ERROR: &str = "connect_error";
}

/// A payload that travels as one named event.
pub trait Event: Serialize + DeserializeOwned {
    const NAME: &'static str;
}

macro_rules! event {
    ($ty:ty, $name:expr) => {
        impl Event for $ty {
            const NAME: &'static str = $name;
        }
    };
}

// ---------------------------------------------------------------- client -> server

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinAudioSession {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    #[serde(rename = "userId", alias = "user_id", default)]
    pub user_id: Option<UserId>,
    #[serde(alias = "displayName", default)]
    pub display_name: Option<String>,
}
event!(JoinAudioSession, names::JOIN_AUDIO_SESSION);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaveAudioSession {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
}
event!(LeaveAudioSession, names::LEAVE_AUDIO_SESSION);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicTakeControl {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    #[serde(rename = "userId", alias = "user_id", default)]
    pub user_id: Option<UserId>,
}
event!(MusicTakeControl, names::MUSIC_TAKE_CONTROL);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlAction {
    Play,
    Pause,
    Seek,
    TrackChange,
}

impl ControlAction {
    /// The event the server relays this action as.
    pub fn relay_event(self) -> &'static str {
        match self {
            Self::Play => names::MUSIC_PLAY,
            Self::Pause => names::MUSIC_PAUSE,
            Self::Seek => names::MUSIC_SEEK,
            Self::TrackChange => names::MUSIC_TRACK_CHANGE,
        }
    }
}

/// The DJ's playback command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicControl {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub action: ControlAction,
    /// Seconds into the track.
    #[serde(default)]
    pub position: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Track>,
    /// Milliseconds since the Unix epoch, on the sender's clock.
    pub timestamp: f64,
}
event!(MusicControl, names::MUSIC_CONTROL);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionSync {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub position: f64,
    pub timestamp: f64,
}
event!(PositionSync, names::MUSIC_POSITION_SYNC);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistUpdate {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub playlist: Vec<Track>,
}
event!(PlaylistUpdate, names::PLAYLIST_UPDATE);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalType {
    Offer,
    Answer,
    IceCandidate,
}

/// An `RTCIceCandidateInit`, spelled as browsers spell it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IceCandidateInit {
    pub candidate: String,
    #[serde(rename = "sdpMid", alias = "sdp_mid", default)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", alias = "sdp_m_line_index", default)]
    pub sdp_m_line_index: Option<u16>,
    #[serde(
        rename = "usernameFragment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub username_fragment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SignalData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<IceCandidateInit>,
}

/// WebRTC signaling, relayed unchanged to user `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebrtcSignal {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub from: UserId,
    pub to: UserId,
    #[serde(rename = "type")]
    pub kind: SignalType,
    #[serde(default)]
    pub data: SignalData,
}
event!(WebrtcSignal, names::WEBRTC_SIGNAL);

crate::fix::with_fix_fields! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct LocationUpdate {
        #[serde(rename = "sessionId", alias = "session_id")]
        pub session_id: String,
    }
}
event!(LocationUpdate, names::LOCATION_UPDATE);

/// (ext) What a convoy signal says. A kind this version does not know is kept as
/// [`ConvoyKind::Unknown`] and ignored by receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConvoyKind {
    /// The sender stopped sharing its position: remove its marker now.
    LocationOff,
    /// The sender set the regroup point at `latitude`, `longitude`.
    RegroupSet,
    /// The sender cleared the regroup point.
    RegroupClear,
    #[serde(other)]
    Unknown,
}

/// (ext) `convoy-update {sessionId, kind, latitude?, longitude?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvoyUpdate {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub kind: ConvoyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}
event!(ConvoyUpdate, names::CONVOY_UPDATE);

/// (ext) What a `calibration-update` says. A kind this version does not know is kept as
/// [`CalibrationKind::Unknown`] and refused by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationKind {
    /// The listener asks `target` to play one probe heard at each instant of `at`.
    ProbeRequest,
    /// The player's answer: it plays them (`ok`, `offsetMs`), or why not (`message`); and,
    /// after an `offset-result`, whether it applied it.
    ProbeAnswer,
    /// The listener's measurement, against the offset `againstMs`.
    OffsetResult,
    #[serde(other)]
    Unknown,
}

/// Longest `runId` carried (a run's id is the listener's own: a few dozen characters).
pub const CALIBRATION_RUN_ID_MAX: usize = 64;
/// Longest `message` carried (a refusal in words).
pub const CALIBRATION_MESSAGE_MAX: usize = 500;
/// Most instants an `at` carries (jamz-sync's relative calibration plays at most 20).
pub const CALIBRATION_AT_MAX: usize = 20;

/// (ext) `calibration-update {sessionId, kind, target, runId, ...}`: one message of the
/// relative calibration, for member `target` only. Which of the optional fields a kind
/// carries is docs/protocol.md's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationUpdate {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub kind: CalibrationKind,
    pub target: UserId,
    #[serde(rename = "runId", alias = "run_id")]
    pub run_id: String,
    /// `probe-request`: the server instants (ms) at which each probe is to be heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Vec<f64>>,
    /// `probe-answer`: whether the player plays (or applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    /// `probe-answer`: the player's latency offset in force, ms.
    #[serde(
        rename = "offsetMs",
        alias = "offset_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub offset_ms: Option<f64>,
    /// `probe-answer`: the player's clock uncertainty (half its best round trip), ms.
    #[serde(
        rename = "clockMs",
        alias = "clock_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_ms: Option<f64>,
    /// `probe-answer`: why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `offset-result`: how much later than planned the player is heard, ms.
    #[serde(
        rename = "delayMs",
        alias = "delay_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delay_ms: Option<f64>,
    #[serde(
        rename = "spreadMs",
        alias = "spread_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub spread_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// `offset-result`: the probes asked for, and how many of them agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreeing: Option<u32>,
    /// `offset-result`: the player's offset the probes were measured against, ms.
    #[serde(
        rename = "againstMs",
        alias = "against_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub against_ms: Option<f64>,
}
event!(CalibrationUpdate, names::CALIBRATION_UPDATE);

impl CalibrationUpdate {
    /// A message of `kind` for `target` in run `run_id`, every optional field absent.
    pub fn new(
        session_id: impl Into<String>,
        kind: CalibrationKind,
        target: UserId,
        run_id: impl Into<String>,
    ) -> Self {
        Self {
            session_id: session_id.into(),
            kind,
            target,
            run_id: run_id.into(),
            at: None,
            ok: None,
            offset_ms: None,
            clock_ms: None,
            message: None,
            delay_ms: None,
            spread_ms: None,
            confidence: None,
            probes: None,
            agreeing: None,
            against_ms: None,
        }
    }

    /// Whether it is within the sizes carried: what a server relays and a client takes.
    pub fn check_size(&self) -> Result<(), String> {
        if self.run_id.is_empty() || self.run_id.len() > CALIBRATION_RUN_ID_MAX {
            return Err(format!(
                "calibration-update runId must be 1 to {CALIBRATION_RUN_ID_MAX} characters"
            ));
        }
        if self
            .at
            .as_ref()
            .is_some_and(|a| a.len() > CALIBRATION_AT_MAX)
        {
            return Err(format!(
                "calibration-update carries at most {CALIBRATION_AT_MAX} instants"
            ));
        }
        if self
            .message
            .as_ref()
            .is_some_and(|m| m.len() > CALIBRATION_MESSAGE_MAX)
        {
            return Err(format!(
                "calibration-update message is over {CALIBRATION_MESSAGE_MAX} bytes"
            ));
        }
        Ok(())
    }
}

/// (ext) A clock probe; the server's ack is a [`TimeSyncReply`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeSync {
    /// The client's send time, ms.
    pub t0: f64,
}
event!(TimeSync, names::TIME_SYNC);

/// (ext) The ack of `time-sync`: server receive (`t1`) and send (`t2`) times, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeSyncReply {
    pub t0: f64,
    pub t1: f64,
    pub t2: f64,
}

/// Everything a client may send, decoded by name.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    JoinAudioSession(JoinAudioSession),
    LeaveAudioSession(LeaveAudioSession),
    MusicTakeControl(MusicTakeControl),
    MusicControl(MusicControl),
    PositionSync(PositionSync),
    PlaylistUpdate(PlaylistUpdate),
    WebrtcSignal(WebrtcSignal),
    LocationUpdate(LocationUpdate),
    TimeSync(TimeSync),
    ConvoyUpdate(ConvoyUpdate),
    CalibrationUpdate(CalibrationUpdate),
}

impl ClientEvent {
    /// Decodes the first argument of event `name`. `Ok(None)` for a name this
    /// protocol does not define (to be ignored, never an error).
    pub fn decode(name: &str, data: serde_json::Value) -> Result<Option<Self>, ProtoError> {
        fn d<T: Event>(data: serde_json::Value) -> Result<T, ProtoError> {
            decode(data).map_err(|e| e.in_event(T::NAME))
        }
        Ok(Some(match name {
            names::JOIN_AUDIO_SESSION => Self::JoinAudioSession(d(data)?),
            names::LEAVE_AUDIO_SESSION => Self::LeaveAudioSession(d(data)?),
            names::MUSIC_TAKE_CONTROL => Self::MusicTakeControl(d(data)?),
            names::MUSIC_CONTROL => Self::MusicControl(d(data)?),
            names::MUSIC_POSITION_SYNC => Self::PositionSync(d(data)?),
            names::PLAYLIST_UPDATE => Self::PlaylistUpdate(d(data)?),
            names::WEBRTC_SIGNAL => Self::WebrtcSignal(d(data)?),
            names::LOCATION_UPDATE => Self::LocationUpdate(d(data)?),
            names::TIME_SYNC => Self::TimeSync(d(data)?),
            names::CONVOY_UPDATE => Self::ConvoyUpdate(d(data)?),
            names::CALIBRATION_UPDATE => Self::CalibrationUpdate(d(data)?),
            _ => return Ok(None),
        }))
    }
}

// ---------------------------------------------------------------- server -> client

crate::model::with_music_state_fields! {
    /// The state a joiner (or a re-joiner) receives.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct MusicSessionState {
        /// The DJ's socket id (public, see docs/protocol.md).
        #[serde(default, alias = "controllerSocketId")]
        pub controller_socket_id: Option<String>,
        /// The server's clock when it sent this, ms (absent from servers without it).
        #[serde(default, alias = "serverTime", skip_serializing_if = "Option::is_none")]
        pub server_time: Option<f64>,
        /// **(ext)** The server-signed grant of the current DJ (absent from servers without
        /// it, and while nobody controls).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grant: Option<ControllerGrant>,
        /// **(ext)** The server tells the room of REST playlist changes itself, so the
        /// client that made one sends no `playlist-update` after it (false, the web
        /// backend's way, when absent).
        #[serde(default, rename = "restBroadcasts", skip_serializing_if = "std::ops::Not::not")]
        pub rest_broadcasts: bool,
    }
}
event!(MusicSessionState, names::MUSIC_SESSION_STATE);

/// One live connection of a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    #[serde(rename = "socketId", alias = "socket_id")]
    pub socket_id: String,
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    #[serde(alias = "displayName", default)]
    pub display_name: Option<String>,
}
event!(ParticipantInfo, names::PARTICIPANT_JOINED);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentParticipants {
    pub participants: Vec<ParticipantInfo>,
}
event!(CurrentParticipants, names::CURRENT_PARTICIPANTS);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantLeft {
    #[serde(rename = "socketId", alias = "socket_id")]
    pub socket_id: String,
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
}
event!(ParticipantLeft, names::PARTICIPANT_LEFT);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicControllerChanged {
    /// The DJ's socket id (not a user id: the seeds' naming).
    #[serde(rename = "controllerId", alias = "controller_id")]
    pub controller_id: String,
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    pub timestamp: f64,
    /// **(ext)** The new DJ's server-signed grant (absent from servers without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<ControllerGrant>,
}
event!(MusicControllerChanged, names::MUSIC_CONTROLLER_CHANGED);

/// `music-play` / `music-pause` / `music-seek` / `music-track-change`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicRelay {
    #[serde(default)]
    pub position: f64,
    #[serde(default)]
    pub track: Option<Track>,
    pub timestamp: f64,
    /// The DJ's socket id.
    #[serde(rename = "controllerId", alias = "controller_id", default)]
    pub controller_id: Option<String>,
    #[serde(rename = "userId", alias = "user_id", default)]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionSyncRelay {
    pub position: f64,
    pub timestamp: f64,
    #[serde(rename = "userId", alias = "user_id", default)]
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistRelay {
    pub playlist: Vec<Track>,
}

crate::fix::with_fix_fields! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct LocationRelay {
        #[serde(rename = "userId", alias = "user_id")]
        pub user_id: UserId,
        #[serde(
            rename = "sessionId",
            alias = "session_id",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub session_id: Option<String>,
    }
}

/// (ext) A relayed `convoy-update`: the sender's `userId` added by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvoyRelay {
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    #[serde(
        rename = "sessionId",
        alias = "session_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_id: Option<String>,
    pub kind: ConvoyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// (ext) A relayed `calibration-update`: the sender's `userId` added by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRelay {
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    #[serde(flatten)]
    pub update: CalibrationUpdate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicError {
    pub error: String,
}
event!(MusicError, names::MUSIC_ERROR);

/// Socket.IO's CONNECT_ERROR payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectError {
    pub message: String,
}

/// Everything a server (or, relayed, another client) may send, decoded by name.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    MusicSessionState(MusicSessionState),
    CurrentParticipants(CurrentParticipants),
    ParticipantJoined(ParticipantInfo),
    ParticipantLeft(ParticipantLeft),
    MusicControllerChanged(MusicControllerChanged),
    MusicPlay(MusicRelay),
    MusicPause(MusicRelay),
    MusicSeek(MusicRelay),
    MusicTrackChange(MusicRelay),
    PositionSync(PositionSyncRelay),
    PlaylistUpdate(PlaylistRelay),
    WebrtcSignal(WebrtcSignal),
    LocationUpdate(LocationRelay),
    ConvoyUpdate(ConvoyRelay),
    CalibrationUpdate(CalibrationRelay),
    MusicError(MusicError),
    /// An event this version does not know: kept, never an error.
    Unknown {
        name: String,
        data: serde_json::Value,
    },
}

impl ServerEvent {
    /// Decodes the first argument of event `name`.
    pub fn decode(name: &str, data: serde_json::Value) -> Result<Self, ProtoError> {
        fn d<T: DeserializeOwned>(name: &str, data: serde_json::Value) -> Result<T, ProtoError> {
            decode(data).map_err(|e| e.in_event(name))
        }
        Ok(match name {
            names::MUSIC_SESSION_STATE => Self::MusicSessionState(d(name, data)?),
            names::CURRENT_PARTICIPANTS => Self::CurrentParticipants(d(name, data)?),
            names::PARTICIPANT_JOINED => Self::ParticipantJoined(d(name, data)?),
            names::PARTICIPANT_LEFT => Self::ParticipantLeft(d(name, data)?),
            names::MUSIC_CONTROLLER_CHANGED => Self::MusicControllerChanged(d(name, data)?),
            names::MUSIC_PLAY => Self::MusicPlay(d(name, data)?),
            names::MUSIC_PAUSE => Self::MusicPause(d(name, data)?),
            names::MUSIC_SEEK => Self::MusicSeek(d(name, data)?),
            names::MUSIC_TRACK_CHANGE => Self::MusicTrackChange(d(name, data)?),
            names::MUSIC_POSITION_SYNC => Self::PositionSync(d(name, data)?),
            names::PLAYLIST_UPDATE => Self::PlaylistUpdate(d(name, data)?),
            names::WEBRTC_SIGNAL => Self::WebrtcSignal(d(name, data)?),
            names::LOCATION_UPDATE => Self::LocationUpdate(d(name, data)?),
            names::CONVOY_UPDATE => Self::ConvoyUpdate(d(name, data)?),
            names::CALIBRATION_UPDATE => Self::CalibrationUpdate(d(name, data)?),
            names::MUSIC_ERROR => Self::MusicError(d(name, data)?),
            _ => Self::Unknown {
                name: name.to_string(),
                data,
            },
        })
    }

    /// The wire name of this event.
    pub fn name(&self) -> &str {
        match self {
            Self::MusicSessionState(_) => names::MUSIC_SESSION_STATE,
            Self::CurrentParticipants(_) => names::CURRENT_PARTICIPANTS,
            Self::ParticipantJoined(_) => names::PARTICIPANT_JOINED,
            Self::ParticipantLeft(_) => names::PARTICIPANT_LEFT,
            Self::MusicControllerChanged(_) => names::MUSIC_CONTROLLER_CHANGED,
            Self::MusicPlay(_) => names::MUSIC_PLAY,
            Self::MusicPause(_) => names::MUSIC_PAUSE,
            Self::MusicSeek(_) => names::MUSIC_SEEK,
            Self::MusicTrackChange(_) => names::MUSIC_TRACK_CHANGE,
            Self::PositionSync(_) => names::MUSIC_POSITION_SYNC,
            Self::PlaylistUpdate(_) => names::PLAYLIST_UPDATE,
            Self::WebrtcSignal(_) => names::WEBRTC_SIGNAL,
            Self::LocationUpdate(_) => names::LOCATION_UPDATE,
            Self::ConvoyUpdate(_) => names::CONVOY_UPDATE,
            Self::CalibrationUpdate(_) => names::CALIBRATION_UPDATE,
            Self::MusicError(_) => names::MUSIC_ERROR,
            Self::Unknown { name, .. } => name,
        }
    }

    /// The event's payload as JSON, in docs/protocol.md's spelling.
    pub fn to_json(&self) -> serde_json::Value {
        fn j<T: Serialize>(v: &T) -> serde_json::Value {
            // Serializing these plain structs cannot fail: every map key is a string.
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
        }
        match self {
            Self::MusicSessionState(v) => j(v),
            Self::CurrentParticipants(v) => j(v),
            Self::ParticipantJoined(v) => j(v),
            Self::ParticipantLeft(v) => j(v),
            Self::MusicControllerChanged(v) => j(v),
            Self::MusicPlay(v)
            | Self::MusicPause(v)
            | Self::MusicSeek(v)
            | Self::MusicTrackChange(v) => j(v),
            Self::PositionSync(v) => j(v),
            Self::PlaylistUpdate(v) => j(v),
            Self::WebrtcSignal(v) => j(v),
            Self::LocationUpdate(v) => j(v),
            Self::ConvoyUpdate(v) => j(v),
            Self::CalibrationUpdate(v) => j(v),
            Self::MusicError(v) => j(v),
            Self::Unknown { data, .. } => data.clone(),
        }
    }
}

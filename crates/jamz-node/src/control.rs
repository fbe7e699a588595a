//! The JSON-lines control interface of a node (`docs/node-control.md`): one
//! [`NodeCommand`] per line in, one [`NodeEvent`] per line out.
//!
//! [`parse_command`] never fails hard: a line that is not a command becomes a
//! [`CommandError`] whose [`CommandError::to_event`] is the `error` event to answer.

use crate::secrets::TokenStore;
use std::path::PathBuf;

use jamz_proto::{Track, UserId};
pub use jamz_sync::Command;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest command line accepted (a `reorder` of a 10,000-track playlist of
/// 36-character ids is about 400 KiB; 4 MiB leaves room and bounds memory).
pub const MAX_COMMAND_LINE: usize = 4 * 1024 * 1024;

/// A command, one JSON object per line on stdin.
// `remote = "Self"`: the derives write inherent `serialize`/`deserialize` for the node's own
// commands, and the trait impls below pass the engine's as [`Command`]s, as they are. Not
// serde's `untagged` variant: with it, a wrong field of any command would only be "did not
// match any variant" instead of the field's own error.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", remote = "Self")]
pub enum NodeCommand {
    /// Answer one `status` event now.
    Status,
    /// `{"cmd":"add","path":...}`: read tags, upload, append; or
    /// `{"cmd":"add","track":{...}}`: append a track that already has a URL; or
    /// `{"cmd":"add","youtube":"https://youtu.be/ID"}`: append a YouTube video named by a
    /// link or id, titled from oEmbed (`duration`, seconds, optional: the IFrame player's).
    Add {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track: Option<Box<Track>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        youtube: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
    },
    /// Local only, 0.0 ..= 1.0.
    Volume { level: f64 },
    /// Cache the whole playlist, with `progress` events.
    Preload,
    /// A manual location fix (sent to the others by the sharing rule while sharing is on).
    Location {
        latitude: f64,
        longitude: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heading: Option<f64>,
    },
    /// Location sharing on (for `duration_s` seconds, or until turned off) or off.
    ShareLocation {
        enabled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<f64>,
    },
    /// Sets the group's regroup point (anyone may).
    Regroup { latitude: f64, longitude: f64 },
    /// Clears the regroup point (the DJ, or whoever set it).
    RegroupClear,
    /// Leave the session and exit 0.
    Quit,
    // Beyond docs/node-control.md (README "Node control: additions"): the settings a
    // user changes while a session runs.
    /// How much later than the group this device's sound leaves the speakers
    /// (a Bluetooth link, a car's head unit), 0 ..= 2000 ms: the node plays that
    /// much earlier.
    LatencyOffset { ms: f64 },
    /// The cache's size limit in bytes (and optionally in tracks); evicts at once.
    CacheLimit {
        bytes: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracks: Option<usize>,
    },
    /// Empties the track cache (playing goes on from the open file; the next
    /// start fetches again).
    CacheClear,
    /// Switches the audio output (`default`, `null`, `wav:PATH`, `device:ID`)
    /// without leaving the session; playback carries on where the group is.
    Output { spec: String },
    /// Answers an `outputs` event: the output devices this machine has.
    Outputs,
    /// Caches every playlist track in the background while online, as tracks are
    /// added (for the stretches with no coverage); `progress` events as `preload`.
    AutoPreload { enabled: bool },
    /// The app's YouTube player, read just now while it holds `video`: `position` is
    /// `getCurrentTime()` (s), `state` `getPlayerState()` (IFrame API codes), `duration`
    /// `getDuration()` (s; left out while the player answers 0): a track without a
    /// duration takes it (docs/protocol.md, "Track").
    YoutubeReading {
        video: String,
        position: f64,
        state: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration: Option<f64>,
    },
    /// The app's YouTube player failed on `video` with this `onError` code.
    YoutubeError { video: String, code: i64 },
    /// Measures this output's latency with the default input (a microphone near the
    /// speakers): plays `probes` probe signals (default 5), finds them in the recording,
    /// and sets the latency offset from it; answered by a `calibration` event (or an
    /// `error`). Refused while the session plays: the probes go through the same output.
    Calibrate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probes: Option<usize>,
    },
    /// Measures member `user`'s output from this device's microphone (the relative
    /// calibration: docs/protocol.md, "Relative calibration"): `user`'s device plays
    /// `probes` probes (default 5, 3 to 20) while this one records, and its latency offset
    /// is set from the result; answered by a `peer-calibration` event (or an `error`).
    CalibratePeer {
        user: jamz_proto::UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probes: Option<usize>,
    },
    /// The session's own commands (`take-control`, `play`, `pause`, `seek`, `next`,
    /// `previous`, `remove`, `reorder`): the engine's [`Command`]s, spelled once.
    #[serde(skip_serializing, skip_deserializing)]
    #[cfg_attr(feature = "ts", ts(untagged))]
    Session(Command),
}

impl Serialize for NodeCommand {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeCommand::Session(command) => command.serialize(serializer),
            own => NodeCommand::serialize(own, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for NodeCommand {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let engine_command = value
            .get("cmd")
            .and_then(Value::as_str)
            .is_some_and(|name| Command::NAMES.contains(&name));
        if engine_command {
            Command::deserialize(value)
                .map(NodeCommand::Session)
                .map_err(serde::de::Error::custom)
        } else {
            NodeCommand::deserialize(value).map_err(serde::de::Error::custom)
        }
    }
}

/// Largest output latency offset accepted, as jamz-audio's `set_latency_offset`.
pub const MAX_LATENCY_OFFSET_MS: f64 = 2000.0;

/// Most probes a `calibrate` may ask for (each takes about 1.5 s).
pub const MAX_CALIBRATION_PROBES: usize = 20;

/// Smallest cache size limit accepted: one long track, so a limit can never
/// evict the track that is playing on its own.
pub const MIN_CACHE_BYTES: u64 = 16 * 1024 * 1024;

impl NodeCommand {
    /// The command's name as on the wire (`"take-control"`).
    pub fn name(&self) -> &'static str {
        match self {
            NodeCommand::Status => "status",
            NodeCommand::Add { .. } => "add",
            NodeCommand::Volume { .. } => "volume",
            NodeCommand::Preload => "preload",
            NodeCommand::Location { .. } => "location",
            NodeCommand::ShareLocation { .. } => "share-location",
            NodeCommand::Regroup { .. } => "regroup",
            NodeCommand::RegroupClear => "regroup-clear",
            NodeCommand::Quit => "quit",
            NodeCommand::LatencyOffset { .. } => "latency-offset",
            NodeCommand::CacheLimit { .. } => "cache-limit",
            NodeCommand::CacheClear => "cache-clear",
            NodeCommand::Output { .. } => "output",
            NodeCommand::Outputs => "outputs",
            NodeCommand::AutoPreload { .. } => "auto-preload",
            NodeCommand::YoutubeReading { .. } => "youtube-reading",
            NodeCommand::YoutubeError { .. } => "youtube-error",
            NodeCommand::Calibrate { .. } => "calibrate",
            NodeCommand::CalibratePeer { .. } => "calibrate-peer",
            NodeCommand::Session(c) => c.name(),
        }
    }

    /// Checks what can be checked without any state (numbers finite and in range,
    /// `add` with exactly one of `path`/`track`).
    pub fn validate(&self) -> Result<(), String> {
        let finite_non_negative = |what: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{what} must be a finite number >= 0, got {v}"))
            }
        };
        match self {
            NodeCommand::Add {
                path,
                track,
                youtube,
                duration,
            } => {
                let given = usize::from(path.is_some())
                    + usize::from(track.is_some())
                    + usize::from(youtube.is_some());
                if given != 1 {
                    return Err("add needs exactly one of `path`, `track` and `youtube`".into());
                }
                if let Some(text) = youtube {
                    jamz_proto::youtube::parse_video_ref(text).map_err(|e| e.to_string())?;
                }
                match duration {
                    Some(_) if youtube.is_none() => {
                        Err("`duration` goes with `youtube` (a track carries its own)".into())
                    }
                    Some(d) if !d.is_finite() || *d <= 0.0 => Err(format!(
                        "duration must be a positive number of seconds, got {d}"
                    )),
                    _ => Ok(()),
                }
            }
            NodeCommand::Session(Command::Play {
                position: Some(p), ..
            }) => finite_non_negative("position", *p),
            NodeCommand::Session(Command::Seek { position }) => {
                finite_non_negative("position", *position)
            }
            NodeCommand::Volume { level } => {
                if level.is_finite() && (0.0..=1.0).contains(level) {
                    Ok(())
                } else {
                    Err(format!("level must be within 0.0..=1.0, got {level}"))
                }
            }
            NodeCommand::Location {
                latitude,
                longitude,
                speed,
                heading,
            } => {
                jamz_proto::validate_coordinates(*latitude, *longitude)?;
                match (speed, heading) {
                    (Some(v), _) if !v.is_finite() || *v < 0.0 => {
                        Err(format!("speed must be a finite number >= 0, got {v}"))
                    }
                    (_, Some(h)) if !h.is_finite() => {
                        Err(format!("heading must be a finite number, got {h}"))
                    }
                    _ => Ok(()),
                }
            }
            NodeCommand::Regroup {
                latitude,
                longitude,
            } => jamz_proto::validate_coordinates(*latitude, *longitude),
            NodeCommand::ShareLocation {
                duration_s: Some(d),
                ..
            } => {
                if d.is_finite() && *d > 0.0 {
                    Ok(())
                } else {
                    Err(format!("duration_s must be a positive number, got {d}"))
                }
            }
            NodeCommand::LatencyOffset { ms } => {
                if ms.is_finite() && (0.0..=MAX_LATENCY_OFFSET_MS).contains(ms) {
                    Ok(())
                } else {
                    Err(format!(
                        "ms must be within 0..={MAX_LATENCY_OFFSET_MS}, got {ms}"
                    ))
                }
            }
            NodeCommand::CacheLimit { bytes, tracks } => {
                if *bytes < MIN_CACHE_BYTES {
                    Err(format!(
                        "bytes must be at least {MIN_CACHE_BYTES} (16 MiB), got {bytes}"
                    ))
                } else if *tracks == Some(0) {
                    Err("tracks must be at least 1".into())
                } else {
                    Ok(())
                }
            }
            NodeCommand::Calibrate { probes: Some(n) }
                if !(1..=MAX_CALIBRATION_PROBES).contains(n) =>
            {
                Err(format!(
                    "probes must be within 1..={MAX_CALIBRATION_PROBES}, got {n}"
                ))
            }
            NodeCommand::CalibratePeer {
                probes: Some(n), ..
            } if !(jamz_sync::calibration::relative::MIN_PROBES
                ..=jamz_sync::calibration::relative::MAX_PROBES)
                .contains(n) =>
            {
                Err(format!(
                    "probes must be within {}..={}, got {n}",
                    jamz_sync::calibration::relative::MIN_PROBES,
                    jamz_sync::calibration::relative::MAX_PROBES
                ))
            }
            NodeCommand::Output { spec } => spec
                .parse::<jamz_audio::OutputSpec>()
                .map(drop)
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

/// A line that is not a valid command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    pub message: String,
    /// The `cmd` the line named, when it named one.
    pub cmd: Option<String>,
}

impl CommandError {
    /// The `error` event answering it.
    pub fn to_event(&self) -> NodeEvent {
        NodeEvent::error(self.message.clone(), self.cmd.as_deref())
    }
}

/// Parses and validates one line of stdin.
pub fn parse_command(line: &str) -> Result<NodeCommand, CommandError> {
    if line.len() > MAX_COMMAND_LINE {
        return Err(CommandError {
            message: format!(
                "command line of {} bytes is over the limit of {MAX_COMMAND_LINE}",
                line.len()
            ),
            cmd: None,
        });
    }
    let value: Value = serde_json::from_str(line).map_err(|e| CommandError {
        message: format!("not JSON: {e}"),
        cmd: None,
    })?;
    let cmd = match &value {
        Value::Object(map) => match map.get("cmd") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(CommandError {
                    message: "`cmd` must be a string".into(),
                    cmd: None,
                });
            }
            None => {
                return Err(CommandError {
                    message: "missing `cmd`".into(),
                    cmd: None,
                });
            }
        },
        _ => {
            return Err(CommandError {
                message: "a command is a JSON object".into(),
                cmd: None,
            });
        }
    };
    let command: NodeCommand = serde_json::from_value(value).map_err(|e| CommandError {
        message: if e.to_string().starts_with("unknown variant") {
            format!("unknown command `{cmd}`")
        } else {
            format!("invalid `{cmd}` command: {e}")
        },
        cmd: Some(cmd.clone()),
    })?;
    command.validate().map_err(|message| CommandError {
        message,
        cmd: Some(cmd),
    })?;
    Ok(command)
}

/// One live connection of a member, as the `participants` event lists it: the
/// engine's own type (same wire spelling), passed through as it is.
pub use jamz_sync::api::ParticipantView;

/// The `cache` object of a `status` event.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CacheSummary {
    pub tracks: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    /// The size limits (beyond docs/node-control.md).
    #[serde(default)]
    pub max_bytes: u64,
    #[serde(default)]
    pub max_tracks: u64,
}

/// The `mesh` object of a `status` event (beyond docs/node-control.md): what the peer
/// mesh carried since the node started (docs/mesh-trust.md).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MeshCounters {
    /// Messages this device sent signed (it is the DJ, under a grant naming its key).
    pub signed: u64,
    /// Messages obeyed that arrived relayed by another peer: each signed by the DJ's
    /// device, the signature checked against the server's grant.
    pub relayed_in: u64,
    /// Copies of the DJ's messages this device passed on to its other peers.
    pub relayed: u64,
    /// Messages refused by the trust rules (each also a `mesh-refused` report, at most
    /// one per peer and reason every 5 s).
    pub refused: u64,
    /// Messages admitted before and dropped as copies (another path, a replay).
    pub duplicates: u64,
    /// `webrtc-signal`s this device sent over the mesh (the server could not carry them).
    #[serde(default)]
    pub signals_sent: u64,
    /// Other members' signals this device carried on.
    #[serde(default)]
    pub signals_relayed: u64,
    /// Signals for this device that arrived over the mesh.
    #[serde(default)]
    pub signals_in: u64,
    /// **(ext)** `mesh-rejoin`s this device sent: it started from a kept session with the
    /// server gone and asked peers for links (docs/node-control.md).
    #[serde(default)]
    pub rejoins_sent: u64,
    /// `mesh-rejoin`s for this device acted on: a restarted member asked it for a link.
    #[serde(default)]
    pub rejoins_in: u64,
    /// Messages taken that came straight to this device's mesh socket (a restarted
    /// member's `mesh-rejoin` and signals, before its link is open).
    #[serde(default)]
    pub direct_in: u64,
}

/// How the node reaches the group: the engine decides it.
pub use jamz_sync::{Notification, Tier};

/// A peer connection's state.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    Connecting,
    Connected,
    Closed,
}

/// How a peer's mesh link goes, once its pair of addresses is chosen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkPath {
    /// Straight between the two devices.
    Direct,
    /// Through a TURN relay.
    Relay,
}

impl From<jamz_mesh::LinkPath> for LinkPath {
    fn from(p: jamz_mesh::LinkPath) -> Self {
        match p {
            jamz_mesh::LinkPath::Direct => LinkPath::Direct,
            jamz_mesh::LinkPath::Relay => LinkPath::Relay,
        }
    }
}

/// The `status` event's fields.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub tier: Tier,
    pub playing: bool,
    pub track: Option<String>,
    /// Seconds, this device's audio clock (`null` when nothing is loaded).
    pub position: Option<f64>,
    pub clock_offset_ms: Option<f64>,
    pub drift_ms: Option<f64>,
    /// The sync meter: how far ahead (positive) of the group's timeline this device is
    /// heard, ms, the median of the last second's measurements (`jamz_sync::sync_meter`);
    /// `null` while nothing was measured (paused, just started, silent) (beyond
    /// docs/node-control.md).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub sync_offset_ms: Option<f64>,
    pub peers: u32,
    pub cache: CacheSummary,
    pub queued: u64,
    /// The audio output in use (beyond docs/node-control.md).
    #[serde(default)]
    pub output: String,
    /// The output latency offset in use, ms (beyond docs/node-control.md).
    #[serde(default)]
    pub latency_offset_ms: f64,
    /// Where the saved login's token is kept: `keyring` (the OS keyring) or
    /// `file` (the 0600 credentials file, where no keyring answers); `null`
    /// when the node was given a password (beyond docs/node-control.md).
    #[serde(default)]
    pub token_store: Option<TokenStore>,
    /// Underruns of the output since it opened: stretches where the playing track's
    /// decoding fell behind the device, played as silence and skipped over so the track
    /// stays on the group's timeline (beyond docs/node-control.md).
    #[serde(default)]
    pub underruns: u64,
    /// The silence those underruns cost, ms (beyond docs/node-control.md).
    #[serde(default)]
    pub underrun_ms: f64,
    /// The track this device waits for the bytes of (still downloading: silent
    /// meanwhile, in step once they are there), `null` otherwise (beyond
    /// docs/node-control.md).
    #[serde(default)]
    pub buffering: Option<String>,
    /// What the peer mesh carried (beyond docs/node-control.md); boxed to keep
    /// [`NodeEvent`] small.
    #[serde(default)]
    pub mesh: Box<MeshCounters>,
    /// The server the link is on now, as configured (one of `--server`'s), `null`
    /// before the first connection (beyond docs/node-control.md).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub server: Option<String>,
}

/// One change waiting for the server, as the `outbox` event lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    /// `add`, `upload`, `remove` or `reorder`.
    #[cfg_attr(
        feature = "ts",
        ts(type = r#""add" | "upload" | "remove" | "reorder""#)
    )]
    pub action: String,
    /// What to show a person: a track's title, a file's name.
    pub label: String,
}

/// One output device, as the `outputs` event lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputView {
    /// The spec to pass to `output` (`default`, `device:ID`).
    pub id: String,
    /// What to show a person.
    pub name: String,
    pub is_default: bool,
}

impl From<jamz_audio::OutputDevice> for OutputView {
    fn from(d: jamz_audio::OutputDevice) -> Self {
        OutputView {
            id: d.id,
            name: d.name,
            is_default: d.is_default,
        }
    }
}

/// An event, one JSON object per line on stdout: the engine's [`Notification`]s as they
/// are (`ready`, `playlist`, `controller`, `participants`, `playback`, `tier`, `error`),
/// and what only the node knows.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum NodeEvent {
    Status(StatusView),
    Peer {
        #[serde(rename = "userId")]
        user_id: UserId,
        state: PeerState,
        // The link's round trip (ms), once measured: sent again (state `connected`) when
        // it changes notably.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_ms: Option<f64>,
        // Direct or through a TURN relay, once known: sent again when it changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<LinkPath>,
    },
    Progress {
        what: String,
        done: u64,
        total: u64,
    },
    /// Beyond docs/node-control.md: the answer to `outputs`.
    Outputs {
        outputs: Vec<OutputView>,
    },
    /// Beyond docs/node-control.md: the answer to `calibrate`: the probes were heard
    /// `delay_ms` later than the output reckoned (with the offset then in force), the
    /// agreeing ones within `spread_ms`; `confidence` 0-1; `latency_offset_ms` is the
    /// offset now set.
    Calibration {
        delay_ms: f64,
        spread_ms: f64,
        confidence: f64,
        probes: usize,
        agreeing: usize,
        latency_offset_ms: f64,
        /// Set by another member's relative calibration: the listening member's user id
        /// (absent for this device's own `calibrate`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        from: Option<jamz_proto::UserId>,
    },
    /// Beyond docs/node-control.md: the changes waiting for the server, oldest first
    /// (sent whenever the list changes; empty once all went through).
    Outbox {
        pending: Vec<PendingView>,
    },
    /// Beyond docs/node-control.md: everyone's last known position as an earlier run
    /// kept it (sent once at start, when there are any), for a map with no link.
    LastPositions {
        positions: Vec<crate::positions::KnownPosition>,
    },
    /// Beyond docs/node-control.md: the link connected to `url` (one of the configured
    /// servers), sent on the first connection and whenever it moves to another server;
    /// `previous` is the one it was on, `notice` says the move followed that server's
    /// `server-shutdown` notice (docs/protocol.md, "Several servers").
    Server {
        url: String,
        #[serde(default)]
        previous: Option<String>,
        #[serde(default)]
        notice: bool,
    },
    /// Beyond docs/node-control.md: what the app's YouTube player is to do (the engine's
    /// `external::Directive`), with the instant as a delay from now (`in_ms`). Only a node
    /// started with an external video player (the app) sends it.
    Youtube(VideoDirective),
    /// What the engine tells the user, spelled once (jamz-sync's `Notification`).
    #[serde(untagged)]
    Session(Notification),
}

/// A directive for the app's YouTube IFrame player (`youtube` event).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum VideoDirective {
    /// Load `video` paused at `position` s (unless it is loaded: then pause and seek there)
    /// and play it `in_ms` from now; a negative `in_ms` is lateness: play at once from
    /// `position` plus it.
    Play {
        video: String,
        position: f64,
        in_ms: f64,
    },
    /// Pause `video` at `position` s.
    Pause { video: String, position: f64 },
    /// Stop and unload.
    Stop,
}

pub use jamz_sync::location::{EtaView, LocationEvent};

impl NodeEvent {
    /// An `error` event.
    pub fn error(message: impl Into<String>, cmd: Option<&str>) -> Self {
        NodeEvent::Session(Notification::Error {
            message: message.into(),
            cmd: cmd.map(str::to_owned),
        })
    }

    /// The event as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        // Serializing these plain types cannot fail (string keys, no maps of other
        // keys); a float that is not finite becomes `null` in serde_json.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"event":"error","message":"cannot encode an event: {e}"}}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_command_of_node_control_parses() {
        let lines = [
            (r#"{"cmd":"status"}"#, NodeCommand::Status),
            (
                r#"{"cmd":"take-control"}"#,
                NodeCommand::Session(Command::TakeControl),
            ),
            (
                r#"{"cmd":"add","path":"/music/a.mp3"}"#,
                NodeCommand::Add {
                    path: Some("/music/a.mp3".into()),
                    track: None,
                    youtube: None,
                    duration: None,
                },
            ),
            (
                r#"{"cmd":"add","youtube":"https://youtu.be/dQw4w9WgXcQ","duration":212.5}"#,
                NodeCommand::Add {
                    path: None,
                    track: None,
                    youtube: Some("https://youtu.be/dQw4w9WgXcQ".into()),
                    duration: Some(212.5),
                },
            ),
            (
                r#"{"cmd":"remove","track":"t1"}"#,
                NodeCommand::Session(Command::Remove { track: "t1".into() }),
            ),
            (
                r#"{"cmd":"reorder","order":["b","a"]}"#,
                NodeCommand::Session(Command::Reorder {
                    order: vec!["b".into(), "a".into()],
                }),
            ),
            (
                r#"{"cmd":"play","track":"t1","position":0.0}"#,
                NodeCommand::Session(Command::Play {
                    track: Some("t1".into()),
                    position: Some(0.0),
                }),
            ),
            (
                r#"{"cmd":"play"}"#,
                NodeCommand::Session(Command::Play {
                    track: None,
                    position: None,
                }),
            ),
            (r#"{"cmd":"pause"}"#, NodeCommand::Session(Command::Pause)),
            (
                r#"{"cmd":"seek","position":42.5}"#,
                NodeCommand::Session(Command::Seek { position: 42.5 }),
            ),
            (r#"{"cmd":"next"}"#, NodeCommand::Session(Command::Next)),
            (
                r#"{"cmd":"previous"}"#,
                NodeCommand::Session(Command::Previous),
            ),
            (
                r#"{"cmd":"volume","level":0.8}"#,
                NodeCommand::Volume { level: 0.8 },
            ),
            (r#"{"cmd":"preload"}"#, NodeCommand::Preload),
            (
                r#"{"cmd":"location","latitude":48.1,"longitude":11.5,"speed":20,"heading":90}"#,
                NodeCommand::Location {
                    latitude: 48.1,
                    longitude: 11.5,
                    speed: Some(20.0),
                    heading: Some(90.0),
                },
            ),
            (
                r#"{"cmd":"share-location","enabled":true,"duration_s":3600}"#,
                NodeCommand::ShareLocation {
                    enabled: true,
                    duration_s: Some(3600.0),
                },
            ),
            (
                r#"{"cmd":"regroup","latitude":48.2,"longitude":11.6}"#,
                NodeCommand::Regroup {
                    latitude: 48.2,
                    longitude: 11.6,
                },
            ),
            (r#"{"cmd":"regroup-clear"}"#, NodeCommand::RegroupClear),
            (r#"{"cmd":"quit"}"#, NodeCommand::Quit),
            (
                r#"{"cmd":"latency-offset","ms":120}"#,
                NodeCommand::LatencyOffset { ms: 120.0 },
            ),
            (
                r#"{"cmd":"cache-limit","bytes":1073741824}"#,
                NodeCommand::CacheLimit {
                    bytes: 1 << 30,
                    tracks: None,
                },
            ),
            (r#"{"cmd":"cache-clear"}"#, NodeCommand::CacheClear),
            (
                r#"{"cmd":"output","spec":"null"}"#,
                NodeCommand::Output {
                    spec: "null".into(),
                },
            ),
            (r#"{"cmd":"outputs"}"#, NodeCommand::Outputs),
            (
                r#"{"cmd":"auto-preload","enabled":true}"#,
                NodeCommand::AutoPreload { enabled: true },
            ),
            (
                r#"{"cmd":"calibrate"}"#,
                NodeCommand::Calibrate { probes: None },
            ),
            (
                r#"{"cmd":"calibrate","probes":7}"#,
                NodeCommand::Calibrate { probes: Some(7) },
            ),
            (
                r#"{"cmd":"calibrate-peer","user":4,"probes":5}"#,
                NodeCommand::CalibratePeer {
                    user: 4,
                    probes: Some(5),
                },
            ),
        ];
        for (line, want) in lines {
            assert_eq!(parse_command(line).unwrap(), want, "{line}");
            // Written back (as the app sends them), the line reads as the same command.
            let written = serde_json::to_string(&want).unwrap();
            assert_eq!(parse_command(&written).unwrap(), want, "{written}");
        }
        let add =
            parse_command(r#"{"cmd":"add","track":{"id":"x","title":"T","url":"http://h/f"}}"#)
                .unwrap();
        assert!(
            matches!(add, NodeCommand::Add { track: Some(t), path: None, .. } if t.url == "http://h/f")
        );
    }

    #[test]
    fn bad_lines_are_errors_that_name_the_command() {
        let cases = [
            ("not json", None, "not JSON"),
            ("[1,2]", None, "JSON object"),
            (r#"{"x":1}"#, None, "missing `cmd`"),
            (r#"{"cmd":7}"#, None, "must be a string"),
            (
                r#"{"cmd":"dance"}"#,
                Some("dance"),
                "unknown command `dance`",
            ),
            (r#"{"cmd":"seek"}"#, Some("seek"), "invalid `seek`"),
            (r#"{"cmd":"seek","position":-1}"#, Some("seek"), ">= 0"),
            (
                r#"{"cmd":"seek","position":"x"}"#,
                Some("seek"),
                "invalid `seek`",
            ),
            (r#"{"cmd":"volume","level":3}"#, Some("volume"), "0.0..=1.0"),
            (
                r#"{"cmd":"calibrate","probes":0}"#,
                Some("calibrate"),
                "probes must be within 1..=20",
            ),
            (
                r#"{"cmd":"calibrate-peer","user":4,"probes":2}"#,
                Some("calibrate-peer"),
                "probes must be within 3..=20",
            ),
            (
                r#"{"cmd":"calibrate-peer","user":"bob"}"#,
                Some("calibrate-peer"),
                "invalid `calibrate-peer`",
            ),
            (r#"{"cmd":"add"}"#, Some("add"), "exactly one"),
            (
                r#"{"cmd":"add","youtube":"https://vimeo.com/1","path":"/a.mp3"}"#,
                Some("add"),
                "exactly one",
            ),
            (
                r#"{"cmd":"add","youtube":"https://vimeo.com/1"}"#,
                Some("add"),
                "is not a YouTube link",
            ),
            (
                r#"{"cmd":"add","youtube":"https://youtu.be/short"}"#,
                Some("add"),
                "is not a YouTube video id",
            ),
            (
                r#"{"cmd":"add","youtube":"dQw4w9WgXcQ","duration":-1}"#,
                Some("add"),
                "positive",
            ),
            (
                r#"{"cmd":"add","path":"/a.mp3","duration":3}"#,
                Some("add"),
                "goes with `youtube`",
            ),
            (
                r#"{"cmd":"location","latitude":91,"longitude":0}"#,
                Some("location"),
                "latitude",
            ),
            (
                r#"{"cmd":"share-location","enabled":true,"duration_s":0}"#,
                Some("share-location"),
                "positive",
            ),
            (
                r#"{"cmd":"regroup","latitude":0,"longitude":181}"#,
                Some("regroup"),
                "longitude",
            ),
            (
                r#"{"cmd":"location","latitude":1,"longitude":1,"speed":-3}"#,
                Some("location"),
                "speed",
            ),
            (
                r#"{"cmd":"latency-offset","ms":2001}"#,
                Some("latency-offset"),
                "0..=2000",
            ),
            (
                r#"{"cmd":"latency-offset","ms":-5}"#,
                Some("latency-offset"),
                "0..=2000",
            ),
            (
                r#"{"cmd":"cache-limit","bytes":1000}"#,
                Some("cache-limit"),
                "at least",
            ),
            (
                r#"{"cmd":"cache-limit","bytes":-1}"#,
                Some("cache-limit"),
                "invalid `cache-limit`",
            ),
            (
                r#"{"cmd":"output","spec":"speakers"}"#,
                Some("output"),
                "speakers",
            ),
        ];
        for (line, cmd, needle) in cases {
            let e = parse_command(line).unwrap_err();
            assert_eq!(e.cmd.as_deref(), cmd, "{line}");
            assert!(e.message.contains(needle), "{line}: {}", e.message);
            let ev = serde_json::to_value(e.to_event()).unwrap();
            assert_eq!(ev["event"], "error");
        }
    }

    #[test]
    fn events_use_node_control_spelling() {
        let ready = NodeEvent::Session(Notification::Ready {
            user_id: 7,
            session_id: "s".into(),
            socket_id: "k".into(),
        });
        assert_eq!(
            serde_json::to_value(&ready).unwrap(),
            json!({"event":"ready","userId":7,"sessionId":"s","socketId":"k"})
        );
        let p = NodeEvent::Session(Notification::Participants {
            participants: vec![ParticipantView {
                user_id: 1,
                display_name: Some("Ann".into()),
                socket_id: "a".into(),
            }],
        });
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"event":"participants","participants":[{"userId":1,"display_name":"Ann","socketId":"a"}]})
        );
        let s = NodeEvent::Status(StatusView {
            tier: Tier::Socket,
            playing: true,
            track: Some("t".into()),
            position: Some(1.5),
            clock_offset_ms: Some(0.25),
            drift_ms: None,
            sync_offset_ms: Some(-1.5),
            peers: 0,
            cache: CacheSummary::default(),
            queued: 0,
            output: "null".into(),
            latency_offset_ms: 0.0,
            token_store: Some(TokenStore::File),
            underruns: 2,
            underrun_ms: 10.5,
            buffering: None,
            mesh: Box::default(),
            server: Some("http://a:1".into()),
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["event"], "status");
        assert_eq!(v["tier"], "socket");
        assert_eq!(v["sync_offset_ms"], -1.5);
        assert_eq!(
            (v["underruns"].as_u64(), v["underrun_ms"].as_f64()),
            (Some(2), Some(10.5))
        );
        assert_eq!(
            v["cache"],
            json!({"tracks":0,"bytes":0,"hits":0,"misses":0,"max_bytes":0,"max_tracks":0})
        );
        let e = NodeEvent::error("boom", Some("play"));
        assert_eq!(
            e.to_line(),
            r#"{"event":"error","message":"boom","cmd":"play"}"#
        );
        let back: NodeEvent = serde_json::from_str(&s.to_line()).unwrap();
        assert_eq!(back, s);
        // The engine's location events keep their own names, both ways.
        let l = NodeEvent::Session(Notification::Location(LocationEvent::Location {
            user_id: 3,
            latitude: 48.1,
            longitude: 11.5,
            speed: Some(20.0),
            heading: None,
            together: vec![4],
        }));
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"event":"location","userId":3,"latitude":48.1,"longitude":11.5,"speed":20.0,"heading":null,"together":[4]})
        );
        assert_eq!(serde_json::from_str::<NodeEvent>(&l.to_line()).unwrap(), l);
        let b = NodeEvent::Session(Notification::Location(LocationEvent::FallingBehind {
            user_id: 5,
            behind_m: 2500.0,
        }));
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"event":"falling-behind","userId":5,"behind_m":2500.0})
        );
        assert_eq!(serde_json::from_str::<NodeEvent>(&b.to_line()).unwrap(), b);
    }
}

//! Peer-mesh DataChannel messages (docs/protocol.md, "Peer mesh").
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::events::ControlAction;
use crate::model::{Track, UserId};
use crate::{ProtoError, decode};

/// The DataChannel every pair of members opens.
pub const CHANNEL_LABEL: &str = "music-control";
/// Retransmissions per message on that channel (`ordered: true`).
pub const CHANNEL_MAX_RETRANSMITS: u16 = 3;
/// The largest mesh message, in bytes of JSON text: larger ones are refused both ways.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The envelope of every mesh message: `{type, action?, data, sequence, from, epoch?, sig?,
/// ttl?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshEnvelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ControlAction>,
    #[serde(default)]
    pub data: serde_json::Value,
    /// Grows by one per sender; receivers drop what they have seen.
    pub sequence: u64,
    pub from: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// **(ext)** How many more times peers may relay this message (docs/protocol.md,
    /// "Relaying"): the sender sets it, each relay lowers it by one, none left (or absent)
    /// is not relayed. Not signed: a relay must be able to lower it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
}

pub mod kinds {
    pub const MUSIC_CONTROL: &str = "music-control";
    pub const POSITION_SYNC: &str = "position-sync";
    pub const PLAYLIST_UPDATE: &str = "playlist-update";
    pub const CONTROLLER_CHANGED: &str = "controller-changed";
    pub const LOCATION_UPDATE: &str = "location-update";
    pub const STATE_HELLO: &str = "state-hello";
    pub const TIME_SYNC: &str = "time-sync";
    pub const TIME_SYNC_REPLY: &str = "time-sync-reply";
    /// (ext) A convoy signal (location off, regroup point) while the server is away.
    pub const CONVOY_UPDATE: &str = "convoy-update";
    /// (ext) A `webrtc-signal` carried over the mesh while the server cannot carry it: its
    /// `data` is the socket event's payload (docs/protocol.md, "Signaling over the mesh").
    pub const WEBRTC_SIGNAL: &str = "webrtc-signal";
    /// (ext) A member back from a restart asks a peer for a fresh link, sent straight to
    /// an address it kept or carried over the mesh like a signal (docs/protocol.md,
    /// "Rejoining without the server").
    pub const MESH_REJOIN: &str = "mesh-rejoin";
    /// (ext) A relative calibration's message between two members while the server cannot
    /// relay it: its `data` is the socket event's payload, taken only from the peer itself
    /// on a link vouched for (docs/protocol.md, "Relative calibration (ext)").
    pub const CALIBRATION_UPDATE: &str = "calibration-update";
}

/// (ext) `mesh-rejoin`'s `data`: `from` (the envelope's sender) asks `to` for a link in
/// session `sessionId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshRejoin {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    pub from: UserId,
    pub to: UserId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshControl {
    #[serde(default)]
    pub position: f64,
    #[serde(rename = "trackId", alias = "track_id", default)]
    pub track_id: Option<String>,
    #[serde(default)]
    pub track: Option<Track>,
    pub timestamp: f64,
    #[serde(default)]
    pub from: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshPositionSync {
    pub position: f64,
    #[serde(rename = "trackId", alias = "track_id", default)]
    pub track_id: Option<String>,
    pub timestamp: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshPlaylist {
    pub playlist: Vec<Track>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshControllerChanged {
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    pub epoch: u64,
    /// **(ext)** The server's grant for this DJ and epoch, passed on so that a peer that
    /// missed `music-controller-changed` can still check relayed messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<crate::grant::ControllerGrant>,
}

crate::fix::with_fix_fields! {
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct MeshLocation {}
}

/// (ext) `convoy-update` over the mesh: the socket event's `kind`, `latitude?`,
/// `longitude?`, said by the envelope's `from` (no session id: the mesh is one session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshConvoy {
    pub kind: crate::events::ConvoyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// A summary of the sender's session state, sent when a channel opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateHello {
    #[serde(rename = "playlistHash", alias = "playlist_hash")]
    pub playlist_hash: String,
    #[serde(default)]
    pub controller: Option<UserId>,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub playing: bool,
    #[serde(default)]
    pub position: f64,
    pub timestamp: f64,
}

/// A mesh message's typed payload.
#[derive(Debug, Clone, PartialEq)]
pub enum MeshPayload {
    MusicControl(ControlAction, Box<MeshControl>),
    PositionSync(MeshPositionSync),
    PlaylistUpdate(MeshPlaylist),
    ControllerChanged(MeshControllerChanged),
    LocationUpdate(MeshLocation),
    ConvoyUpdate(MeshConvoy),
    StateHello(StateHello),
    TimeSync(crate::events::TimeSync),
    TimeSyncReply(crate::events::TimeSyncReply),
    /// (ext) A signal for a peer connection, carried by peers.
    Signal(Box<crate::events::WebrtcSignal>),
    /// (ext) A restarted member asks for a link.
    Rejoin(MeshRejoin),
    /// (ext) A relative calibration's message, from the link's own peer.
    Calibration(Box<crate::events::CalibrationUpdate>),
    /// A type this version does not understand: ignored by the receiver.
    Unknown,
}

impl MeshEnvelope {
    /// Decodes `data` according to `type`.
    pub fn payload(&self) -> Result<MeshPayload, ProtoError> {
        let data = self.data.clone();
        let ctx = |e: ProtoError| e.in_event(&format!("mesh {}", self.kind));
        Ok(match self.kind.as_str() {
            kinds::MUSIC_CONTROL => {
                let action = self.action.ok_or_else(|| ProtoError::Field {
                    field: "action".into(),
                    message: "missing field `action`".into(),
                })?;
                MeshPayload::MusicControl(action, Box::new(decode(data).map_err(ctx)?))
            }
            kinds::POSITION_SYNC => MeshPayload::PositionSync(decode(data).map_err(ctx)?),
            kinds::PLAYLIST_UPDATE => MeshPayload::PlaylistUpdate(decode(data).map_err(ctx)?),
            kinds::CONTROLLER_CHANGED => MeshPayload::ControllerChanged(decode(data).map_err(ctx)?),
            kinds::LOCATION_UPDATE => MeshPayload::LocationUpdate(decode(data).map_err(ctx)?),
            kinds::CONVOY_UPDATE => MeshPayload::ConvoyUpdate(decode(data).map_err(ctx)?),
            kinds::STATE_HELLO => MeshPayload::StateHello(decode(data).map_err(ctx)?),
            kinds::TIME_SYNC => MeshPayload::TimeSync(decode(data).map_err(ctx)?),
            kinds::TIME_SYNC_REPLY => MeshPayload::TimeSyncReply(decode(data).map_err(ctx)?),
            kinds::WEBRTC_SIGNAL => MeshPayload::Signal(Box::new(decode(data).map_err(ctx)?)),
            kinds::MESH_REJOIN => MeshPayload::Rejoin(decode(data).map_err(ctx)?),
            kinds::CALIBRATION_UPDATE => {
                MeshPayload::Calibration(Box::new(decode(data).map_err(ctx)?))
            }
            _ => MeshPayload::Unknown,
        })
    }
}

/// How many sequence numbers below the highest seen are remembered per sender. A copy
/// arriving later than this many newer messages is dropped as stale.
pub const DEDUP_WINDOW: u64 = 1024;

/// Senders remembered at once; past this the least recently heard one is forgotten, so a
/// flood of forged `from` values cannot grow memory without bound.
pub const MAX_SENDERS: usize = 1024;

/// The sequences seen from one sender: the highest, and a bitmap of the window below it.
#[derive(Debug, Clone)]
struct Window {
    highest: u64,
    /// Bit `i` set: `highest - i` was seen (bit 0 is `highest` itself).
    seen: [u64; (DEDUP_WINDOW / 64) as usize],
    touched: u64,
}

impl Window {
    fn new(sequence: u64, touched: u64) -> Self {
        let mut seen = [0; (DEDUP_WINDOW / 64) as usize];
        seen[0] = 1;
        Self {
            highest: sequence,
            seen,
            touched,
        }
    }

    fn bit(&self, back: u64) -> bool {
        let (word, bit) = ((back / 64) as usize, back % 64);
        self.seen.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn set(&mut self, back: u64) {
        let (word, bit) = ((back / 64) as usize, back % 64);
        if let Some(w) = self.seen.get_mut(word) {
            *w |= 1 << bit;
        }
    }

    fn shift(&mut self, by: u64) {
        if by >= DEDUP_WINDOW {
            self.seen = [0; (DEDUP_WINDOW / 64) as usize];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        let n = self.seen.len();
        for i in (0..n).rev() {
            let lo = i.checked_sub(words).map_or(0, |j| self.seen[j]);
            let carry = if bits == 0 {
                0
            } else {
                i.checked_sub(words + 1)
                    .map_or(0, |j| self.seen[j] >> (64 - bits))
            };
            self.seen[i] = (lo << bits) | carry;
        }
    }

    /// Records `sequence`; false if it was seen or is too old to tell.
    fn accept(&mut self, sequence: u64) -> bool {
        if sequence > self.highest {
            self.shift(sequence - self.highest);
            self.highest = sequence;
            self.set(0);
            return true;
        }
        let back = self.highest - sequence;
        if back >= DEDUP_WINDOW || self.bit(back) {
            return false;
        }
        self.set(back);
        true
    }
}

/// The `(from, sequence)` pairs seen, per sender: a window of [`DEDUP_WINDOW`] below each
/// sender's highest, for at most [`MAX_SENDERS`] senders (the least recently heard is
/// forgotten first). Every receiver of mesh messages drops what this has seen.
#[derive(Debug, Clone, Default)]
pub struct SeenSequences {
    windows: HashMap<UserId, Window>,
    clock: u64,
}

impl SeenSequences {
    /// How many senders are remembered.
    pub fn senders(&self) -> usize {
        self.windows.len()
    }

    /// Records `(from, sequence)`; false if it was seen before (or is older than the window).
    pub fn accept(&mut self, from: UserId, sequence: u64) -> bool {
        self.clock += 1;
        let clock = self.clock;
        if let Some(w) = self.windows.get_mut(&from) {
            w.touched = clock;
            return w.accept(sequence);
        }
        if self.windows.len() >= MAX_SENDERS
            && let Some(oldest) = self
                .windows
                .iter()
                .min_by_key(|(_, w)| w.touched)
                .map(|(u, _)| *u)
        {
            self.windows.remove(&oldest);
        }
        self.windows.insert(from, Window::new(sequence, clock));
        true
    }
}

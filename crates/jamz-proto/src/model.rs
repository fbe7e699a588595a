//! The protocol's shared objects: users, groups, tracks, sessions, locations.
use serde::{Deserialize, Serialize};

use crate::wire_helpers::null_as_default;

/// User ids are integers (the web backend's PostgreSQL serial ids).
pub type UserId = i64;

/// A date as the backends send it: milliseconds since the Unix epoch, or an
/// ISO-8601 string (MongoDB dates serialized by the web backend).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DateValue {
    Millis(f64),
    Text(String),
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    #[default]
    Upload,
    Youtube,
    Spotify,
    /// A source this version does not know; kept so that the track is not lost.
    #[serde(other)]
    Unknown,
}

/// A playable track. Encodes as docs/protocol.md's `Track`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "TrackWire")]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct Track {
    /// Empty when the track has not been given an id yet (a client proposing
    /// it); then it is left out on the wire and the server assigns one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub title: String,
    pub artist: String,
    pub source: TrackSource,
    /// Empty for sources played by id (YouTube); then left out on the wire.
    #[serde(skip_serializing_if = "String::is_empty")]
    #[cfg_attr(feature = "ts", ts(as = "Option<String>", optional))]
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub youtube_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spotify_preview_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album_art: Option<String>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Bytes of the file behind `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Lower-case hex SHA-256 of the file behind `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded_by: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateValue>,
}

impl Track {
    /// The playlist's duplicate rule: same `url`, else same `title`+`artist`
    /// (case-insensitive, trimmed).
    pub fn is_duplicate_of(&self, other: &Track) -> bool {
        let url = self.url.trim();
        if !url.is_empty() && url == other.url.trim() {
            return true;
        }
        let norm = |s: &str| s.trim().to_lowercase();
        !self.title.trim().is_empty()
            && norm(&self.title) == norm(&other.title)
            && norm(&self.artist) == norm(&other.artist)
    }
}

/// Every spelling a track arrives in. The web backend's documents carry both
/// `url` and the legacy `fileUrl`, so they are separate fields here (serde's
/// aliases would call that a duplicate field) and merged into [`Track`].
#[derive(Deserialize)]
struct TrackWire {
    #[serde(default, alias = "_id", alias = "trackId", alias = "track_id")]
    #[serde(deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    #[serde(default, deserialize_with = "null_as_default")]
    artist: String,
    #[serde(default, deserialize_with = "null_as_default")]
    source: TrackSource,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, rename = "fileUrl")]
    file_url_camel: Option<String>,
    #[serde(default, rename = "file_url")]
    file_url: Option<String>,
    #[serde(default, alias = "youtubeId")]
    youtube_id: Option<String>,
    #[serde(default, alias = "spotifyPreviewUrl")]
    spotify_preview_url: Option<String>,
    #[serde(default, alias = "albumArt")]
    album_art: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default, alias = "uploadedBy")]
    uploaded_by: Option<UserId>,
    #[serde(default, alias = "createdAt")]
    created_at: Option<DateValue>,
}

impl From<TrackWire> for Track {
    fn from(w: TrackWire) -> Self {
        let url = [w.url, w.file_url, w.file_url_camel]
            .into_iter()
            .flatten()
            .find(|u| !u.is_empty())
            .unwrap_or_default();
        Track {
            id: w.id,
            title: w.title,
            artist: w.artist,
            source: w.source,
            url,
            youtube_id: w.youtube_id,
            spotify_preview_url: w.spotify_preview_url,
            album_art: w.album_art,
            duration: w.duration,
            size: w.size,
            sha256: w.sha256,
            uploaded_by: w.uploaded_by,
            created_at: w.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub email: String,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    #[serde(alias = "_id", alias = "groupId", alias = "group_id")]
    pub id: String,
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub description: String,
    #[serde(alias = "creatorId")]
    pub creator_id: UserId,
    #[serde(default)]
    pub members: Vec<UserId>,
    #[serde(default, alias = "createdAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateValue>,
}

/// A member's presence in a session, as persisted (participant history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    #[serde(alias = "userId")]
    pub user_id: UserId,
    #[serde(default, alias = "socketId")]
    pub socket_id: Option<String>,
    #[serde(default, alias = "displayName")]
    pub display_name: Option<String>,
    #[serde(default, alias = "joinedAt")]
    pub joined_at: Option<DateValue>,
    #[serde(default, alias = "leftAt")]
    pub left_at: Option<DateValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentlyPlaying {
    #[serde(default)]
    pub track: Option<Track>,
    /// Seconds into the track.
    #[serde(default)]
    pub position: f64,
    #[serde(default, alias = "startedAt")]
    pub started_at: Option<DateValue>,
    #[serde(
        default,
        alias = "controlledBy",
        skip_serializing_if = "Option::is_none"
    )]
    pub controlled_by: Option<UserId>,
}

/// Declares a struct whose first fields are a session's music state (the four of
/// [`MusicState`], spelled alike), followed by its own, and gives it `music_state()`. The
/// `music-session-state` event carries them beside its own fields; `#[serde(flatten)]`
/// would decode them from a buffer, and a decoding error would then no longer name the
/// field (`playlist[1].id`) that [`crate::decode`] promises.
macro_rules! with_music_state_fields {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            #[serde(default, deserialize_with = "crate::wire_helpers::null_as_default")]
            pub playlist: Vec<$crate::model::Track>,
            #[serde(default, alias = "currentlyPlaying")]
            pub currently_playing: Option<$crate::model::CurrentlyPlaying>,
            /// The DJ's user id.
            #[serde(default, alias = "controllerId")]
            pub controller_id: Option<$crate::model::UserId>,
            #[serde(
                default,
                alias = "isPlaying",
                deserialize_with = "crate::wire_helpers::null_as_default"
            )]
            pub is_playing: bool,
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The session's music state it carries.
            pub fn music_state(&self) -> $crate::model::MusicState {
                $crate::model::MusicState {
                    playlist: self.playlist.clone(),
                    currently_playing: self.currently_playing.clone(),
                    controller_id: self.controller_id,
                    is_playing: self.is_playing,
                }
            }
        }
    };
}
pub(crate) use with_music_state_fields;

with_music_state_fields! {
    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    pub struct MusicState {}
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    #[serde(alias = "sessionId", alias = "session_id")]
    pub id: String,
    #[serde(alias = "groupId")]
    pub group_id: String,
    #[serde(default, alias = "creatorId")]
    pub creator_id: Option<UserId>,
    #[serde(
        default,
        alias = "activeParticipants",
        deserialize_with = "null_as_default"
    )]
    pub active_participants: Vec<UserId>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub participants: Vec<Participant>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub music: MusicState,
    #[serde(default, alias = "createdAt")]
    pub created_at: Option<DateValue>,
    #[serde(default, alias = "lastActivity")]
    pub last_activity: Option<DateValue>,
}

crate::fix::with_fix_fields! {
    /// A stored position fix of one member.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Location {
        #[serde(alias = "userId")]
        pub user_id: UserId,
    }
}

/// Checks the protocol's ranges for a position fix.
pub fn validate_coordinates(latitude: f64, longitude: f64) -> Result<(), String> {
    if !latitude.is_finite() || !(-90.0..=90.0).contains(&latitude) {
        return Err(format!("latitude {latitude} is outside [-90, 90]"));
    }
    if !longitude.is_finite() || !(-180.0..=180.0).contains(&longitude) {
        return Err(format!("longitude {longitude} is outside [-180, 180]"));
    }
    Ok(())
}

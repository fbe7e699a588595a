//! The OS's "now playing" (docs/architecture.md, "Media session"): what the session plays,
//! shown where the desktop, the lock screen and a car's head unit show it, and the OS's
//! media keys (a steering wheel's buttons, `playerctl`) sent back as node commands.
//!
//! [`NowPlaying`] follows the node's events and says what to show; it decides nothing:
//! a button is the engine's own command (`play`, `pause`, `next`, `previous`, `seek`),
//! which the engine refuses for a member who is not the DJ (an `error` event, shown by the
//! face as any refusal). `Can*` say whether this member is the DJ, so that the OS greys
//! the buttons out as the app does.
//!
//! Linux: an MPRIS player (`org.mpris.MediaPlayer2`) on the session bus ([`mpris`]), as
//! `org.mpris.MediaPlayer2.trafficjamz.instance<pid>`. Other platforms: not yet
//! ([`MediaSession::start`] gives `None`).

#[cfg(target_os = "linux")]
mod mpris;

use std::collections::HashMap;
use std::path::Path;

use jamz_proto::{Track, UserId};
use jamz_sync::LocalTime;

use crate::clock::LocalClock;
use crate::control::{Command, NodeCommand, NodeEvent, Notification};
use crate::runtime::Commander;

/// The player's name as the OS shows it.
pub const IDENTITY: &str = "TrafficJamz";

/// What the session plays, as the node's events told it.
#[derive(Debug, Clone)]
pub struct NowPlaying {
    me: UserId,
    playlist: Vec<Track>,
    controller: Option<UserId>,
    track: Option<String>,
    playing: bool,
    /// Seconds into `track` at local time `at` (ms).
    position: f64,
    at: LocalTime,
    volume: f64,
    /// Covers found in cached tracks' tags, by SHA-256: a `file://` URL, or `None` when
    /// the track has none.
    covers: HashMap<String, Option<String>>,
}

/// The OS's playback state (MPRIS `PlaybackStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Playing,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Playing => "Playing",
            Status::Paused => "Paused",
            Status::Stopped => "Stopped",
        }
    }
}

/// What changed with one event (what to signal to the OS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub metadata: bool,
    pub status: bool,
    pub controls: bool,
    /// The position jumped (a seek, another track): MPRIS `Seeked`.
    pub seeked: bool,
}

impl Changed {
    pub fn any(self) -> bool {
        self.metadata || self.status || self.controls || self.seeked
    }
}

/// A media key, as the OS delivers it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key {
    Play,
    Pause,
    PlayPause,
    Stop,
    Next,
    Previous,
    /// Move by this many seconds from where the track is now.
    SeekBy(f64),
    /// Go to this position (s) of the track now playing.
    SeekTo(f64),
}

impl NowPlaying {
    pub fn new(me: UserId) -> Self {
        NowPlaying {
            me,
            playlist: Vec::new(),
            controller: None,
            track: None,
            playing: false,
            position: 0.0,
            at: 0.0,
            volume: 1.0,
            covers: HashMap::new(),
        }
    }

    /// Follows one node event.
    pub fn apply(&mut self, event: &NodeEvent) -> Changed {
        let mut changed = Changed::default();
        let NodeEvent::Session(n) = event else {
            return changed;
        };
        match n {
            Notification::Playlist { playlist } => {
                let before = self.current().cloned();
                self.playlist = playlist.clone();
                changed.metadata = before.as_ref() != self.current();
                changed.controls = true;
            }
            Notification::Controller { user_id } => {
                changed.controls = self.controller != *user_id;
                self.controller = *user_id;
            }
            Notification::Playback {
                playing,
                track,
                position,
                at,
                ..
            } => {
                let expected = self.position_at(*at);
                changed.metadata = self.track != *track;
                changed.status = self.status() != status_of(track.as_deref(), *playing);
                // Periodic reports while playing restate the same timeline.
                changed.seeked = changed.metadata || (expected - position).abs() > 1.0;
                self.track = track.clone();
                self.playing = *playing;
                self.position = *position;
                self.at = *at;
            }
            _ => {}
        }
        changed
    }

    pub fn status(&self) -> Status {
        status_of(self.track.as_deref(), self.playing)
    }

    /// The track now playing (or paused), when it is in the playlist.
    pub fn current(&self) -> Option<&Track> {
        let id = self.track.as_deref()?;
        self.playlist.iter().find(|t| t.id == id)
    }

    /// The current track's picture as a URL the OS fetches itself: the track's own
    /// `album_art` when it is an http(s) or file URL (not a `data:` URL), else the cover
    /// found in its tags.
    pub fn art_url(&self) -> Option<&str> {
        let t = self.current()?;
        if let Some(art) = t.album_art.as_deref().filter(|a| fetchable(a)) {
            return Some(art);
        }
        self.covers.get(t.sha256.as_deref()?)?.as_deref()
    }

    /// The SHA-256 of the current track when its cover is still to be looked for in
    /// the cache (see [`NowPlaying::found_cover`]).
    pub fn cover_wanted(&self) -> Option<&str> {
        let t = self.current()?;
        if t.album_art.as_deref().is_some_and(fetchable) {
            return None;
        }
        let sha = t.sha256.as_deref()?;
        (!self.covers.contains_key(sha)).then_some(sha)
    }

    /// What the cache said of a track's cover (`None`: the track has none); true when
    /// that changes what is shown now.
    pub fn found_cover(&mut self, sha256: &str, file: Option<&Path>) -> bool {
        let before = self.art_url().map(str::to_owned);
        self.covers.insert(sha256.to_owned(), file.map(file_url));
        before.as_deref() != self.art_url()
    }

    pub fn track_id(&self) -> Option<&str> {
        self.track.as_deref()
    }

    /// Seconds into the track at local time `now` (ms).
    pub fn position_at(&self, now: LocalTime) -> f64 {
        if self.playing {
            (self.position + (now - self.at) / 1000.0).max(0.0)
        } else {
            self.position
        }
    }

    /// Whether this member is the DJ (whose buttons the engine follows).
    pub fn is_dj(&self) -> bool {
        self.controller == Some(self.me)
    }

    pub fn has_tracks(&self) -> bool {
        !self.playlist.is_empty()
    }

    pub fn volume(&self) -> f64 {
        self.volume
    }

    /// The node command a media key stands for (`now`: local time, ms, for relative seeks).
    pub fn command(&self, key: Key, now: LocalTime) -> NodeCommand {
        let play = Command::Play {
            track: None,
            position: None,
        };
        let cmd = match key {
            Key::Play => play,
            Key::Pause | Key::Stop => Command::Pause,
            Key::PlayPause if self.playing => Command::Pause,
            Key::PlayPause => play,
            Key::Next => Command::Next,
            Key::Previous => Command::Previous,
            Key::SeekBy(s) => Command::Seek {
                position: (self.position_at(now) + s).max(0.0),
            },
            Key::SeekTo(s) => Command::Seek {
                position: s.max(0.0),
            },
        };
        NodeCommand::Session(cmd)
    }

    /// A `volume` command (0..=1), remembered as the volume the OS shows.
    pub fn set_volume(&mut self, level: f64) -> NodeCommand {
        let level = if level.is_finite() {
            level.clamp(0.0, 1.0)
        } else {
            self.volume
        };
        self.volume = level;
        NodeCommand::Volume { level }
    }
}

fn fetchable(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("file://")
}

/// A `file://` URL (RFC 8089) for an absolute path, every byte outside the unreserved
/// set and `/` percent-encoded.
fn file_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut url = String::from("file://");
    for b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(b) {
            url.push(char::from(*b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn status_of(track: Option<&str>, playing: bool) -> Status {
    match (track, playing) {
        (None, _) => Status::Stopped,
        (Some(_), true) => Status::Playing,
        (Some(_), false) => Status::Paused,
    }
}

/// A running media session: feed it every event of the node ([`MediaSession::event`]);
/// dropping it takes the player off the OS.
#[derive(Debug)]
pub struct MediaSession {
    #[cfg(target_os = "linux")]
    inner: mpris::Mpris,
}

impl MediaSession {
    /// Shows this node's session to the OS; `None` (logged) where there is no media
    /// session to join (no session bus, another platform).
    /// `cache_dir`: the track cache, where covers found in tags are kept.
    pub async fn start(
        me: UserId,
        commander: Commander,
        clock: LocalClock,
        cache_dir: std::path::PathBuf,
    ) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            match mpris::Mpris::start(NowPlaying::new(me), commander, clock, cache_dir).await {
                Ok(inner) => Some(MediaSession { inner }),
                Err(e) => {
                    tracing::warn!("no media session (MPRIS): {e}");
                    None
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (me, commander, clock, cache_dir);
            tracing::info!("no media session on this platform yet");
            None
        }
    }

    /// One event of the node, in order.
    pub fn event(&self, event: &NodeEvent) {
        #[cfg(target_os = "linux")]
        self.inner.event(event);
        #[cfg(not(target_os = "linux"))]
        let _ = event;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(id: &str, title: &str) -> Track {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": title, "artist": "The Band", "source": "local",
            "url": format!("http://x/{id}.mp3"), "duration": 180.0,
        }))
        .expect("a track")
    }

    fn playback(track: Option<&str>, playing: bool, position: f64, at: f64) -> NodeEvent {
        NodeEvent::Session(Notification::Playback {
            playing,
            track: track.map(str::to_owned),
            position,
            at,
            sync_offset_ms: None,
        })
    }

    #[test]
    fn follows_the_playlist_and_the_playback() {
        let mut now = NowPlaying::new(7);
        assert_eq!(now.status(), Status::Stopped);
        let list = NodeEvent::Session(Notification::Playlist {
            playlist: vec![track("a", "First"), track("b", "Second")],
        });
        assert!(!now.apply(&list).metadata);
        let c = now.apply(&playback(Some("b"), true, 10.0, 1_000.0));
        assert!(c.metadata && c.status && c.seeked, "{c:?}");
        assert_eq!(now.current().map(|t| t.title.as_str()), Some("Second"));
        assert_eq!(now.status(), Status::Playing);
        assert!((now.position_at(3_000.0) - 12.0).abs() < 1e-9);
        // A periodic report on the same timeline is no seek.
        let c = now.apply(&playback(Some("b"), true, 12.0, 3_000.0));
        assert!(!c.any(), "{c:?}");
        let c = now.apply(&playback(Some("b"), true, 60.0, 3_000.0));
        assert!(c.seeked && !c.metadata, "{c:?}");
        let c = now.apply(&playback(Some("b"), false, 61.0, 4_000.0));
        assert!(c.status && !c.seeked, "{c:?}");
        assert!((now.position_at(99_000.0) - 61.0).abs() < 1e-9);
    }

    #[test]
    fn keys_are_the_engines_commands_and_only_the_dj_may() {
        let mut now = NowPlaying::new(7);
        assert!(!now.is_dj());
        now.apply(&NodeEvent::Session(Notification::Controller {
            user_id: Some(7),
        }));
        assert!(now.is_dj());
        let play = NodeCommand::Session(Command::Play {
            track: None,
            position: None,
        });
        assert_eq!(now.command(Key::PlayPause, 0.0), play);
        now.apply(&playback(Some("a"), true, 5.0, 0.0));
        assert_eq!(
            now.command(Key::PlayPause, 0.0),
            NodeCommand::Session(Command::Pause)
        );
        assert_eq!(
            now.command(Key::SeekBy(-10.0), 2_000.0),
            NodeCommand::Session(Command::Seek { position: 0.0 })
        );
        assert_eq!(
            now.command(Key::SeekBy(10.0), 2_000.0),
            NodeCommand::Session(Command::Seek { position: 17.0 })
        );
        assert_eq!(now.set_volume(f64::NAN), NodeCommand::Volume { level: 1.0 });
        assert_eq!(now.set_volume(1.5), NodeCommand::Volume { level: 1.0 });
        now.apply(&NodeEvent::Session(Notification::Controller {
            user_id: Some(8),
        }));
        assert!(!now.is_dj());
    }

    #[test]
    fn the_picture_is_the_tracks_own_url_else_the_cover_from_its_tags() {
        let mut now = NowPlaying::new(7);
        let mut with_sha = track("a", "First");
        with_sha.sha256 = Some("ab".repeat(32));
        let mut with_url = track("b", "Second");
        with_url.sha256 = Some("cd".repeat(32));
        with_url.album_art = Some("https://img.example/b.jpg".into());
        let mut inline = track("c", "Third");
        inline.sha256 = Some("ef".repeat(32));
        inline.album_art = Some("data:image/png;base64,AAAA".into());
        now.apply(&NodeEvent::Session(Notification::Playlist {
            playlist: vec![with_sha, with_url, inline],
        }));
        assert_eq!(now.cover_wanted(), None, "nothing playing");

        now.apply(&playback(Some("a"), true, 0.0, 0.0));
        let sha_a = "ab".repeat(32);
        assert_eq!(now.cover_wanted(), Some(sha_a.as_str()));
        assert_eq!(now.art_url(), None);
        let changed = now.found_cover(&sha_a, Some(Path::new("/c/covers/a b#1")));
        assert!(changed);
        assert_eq!(now.art_url(), Some("file:///c/covers/a%20b%231"));
        assert_eq!(now.cover_wanted(), None, "looked for once");

        // A track's own http(s) picture wins and needs no look.
        now.apply(&playback(Some("b"), true, 0.0, 0.0));
        assert_eq!(now.cover_wanted(), None);
        assert_eq!(now.art_url(), Some("https://img.example/b.jpg"));

        // A data: URL is no picture the OS can fetch: the tags are looked at.
        now.apply(&playback(Some("c"), true, 0.0, 0.0));
        let sha_c = "ef".repeat(32);
        assert_eq!(now.cover_wanted(), Some(sha_c.as_str()));
        assert!(
            !now.found_cover(&sha_c, None),
            "no picture: nothing changes"
        );
        assert_eq!(now.art_url(), None);
        assert_eq!(now.cover_wanted(), None);
    }
}

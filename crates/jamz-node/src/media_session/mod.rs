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
    pub async fn start(me: UserId, commander: Commander, clock: LocalClock) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            match mpris::Mpris::start(NowPlaying::new(me), commander, clock).await {
                Ok(inner) => Some(MediaSession { inner }),
                Err(e) => {
                    tracing::warn!("no media session (MPRIS): {e}");
                    None
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (me, commander, clock);
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
}

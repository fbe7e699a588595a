//! Per-session state kept in memory: the DJ (mirrored from the database) and
//! playback (docs/protocol.md: playing and position live in server memory).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use jamz_proto::{Track, UserId};

use crate::clock::now_ms_f64;

#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub user: UserId,
    pub socket_id: String,
    /// The change of control that made this DJ (docs/protocol.md, "Controller grants").
    pub epoch: u64,
    /// The DJ device's public key (hex), if its client presented one.
    pub device_key: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Playback {
    pub track: Option<Track>,
    /// Seconds into the track at `at_ms`.
    pub position: f64,
    /// Server time (ms) when `position` was true.
    pub at_ms: f64,
    pub playing: bool,
    /// Server time (ms) of the last play/seek/track change.
    pub started_at_ms: f64,
}

impl Playback {
    /// Where playback is now, by the server's clock.
    pub fn position_at(&self, now_ms: f64) -> f64 {
        if self.playing {
            self.position + ((now_ms - self.at_ms) / 1000.0).max(0.0)
        } else {
            self.position
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LiveSession {
    /// `None` until loaded from the database (first join after start-up).
    pub controller: Option<Controller>,
    pub controller_loaded: bool,
    pub playback: Playback,
}

/// One session's state and the lock that serializes its playlist writes. Each
/// session has its own: a huge reorder in one group never delays another.
#[derive(Default)]
struct Slot {
    live: Mutex<LiveSession>,
    playlist: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
pub struct LiveSessions {
    /// Held only to find or insert a slot, never while working on one.
    sessions: RwLock<HashMap<String, Arc<Slot>>>,
}

impl LiveSessions {
    /// Sessions with state in this process.
    pub fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn slot(&self, session_id: &str) -> Arc<Slot> {
        // A poisoned lock means a panic elsewhere while holding it; the map is
        // still consistent (inserts are single calls), keep serving.
        if let Some(slot) = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(session_id)
        {
            return slot.clone();
        }
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(session_id.to_string())
            .or_default()
            .clone()
    }

    /// Runs `f` on the session's live state, creating it empty if absent.
    pub fn with<R>(&self, session_id: &str, f: impl FnOnce(&mut LiveSession) -> R) -> R {
        let slot = self.slot(session_id);
        let mut live = slot.live.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut live)
    }

    /// Serializes read-modify-write of this session's playlist.
    pub async fn lock_playlist(&self, session_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.slot(session_id).playlist.clone().lock_owned().await
    }

    pub fn playback_now(&self, session_id: &str) -> (Playback, f64) {
        let now = now_ms_f64();
        (self.with(session_id, |s| s.playback.clone()), now)
    }
}

//! Per-session state: the DJ and the playback anchor (stored in the database,
//! docs/architecture.md "Storage"), and the per-process playlist locks.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jamz_proto::{Track, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub user: UserId,
    pub socket_id: String,
    /// The change of control that made this DJ (docs/protocol.md, "Controller grants").
    pub epoch: u64,
    /// The DJ device's public key (hex), if its client presented one.
    pub device_key: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
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

/// One session's lock that serializes its playlist writes in this process. Each
/// session has its own: a huge reorder in one group never delays another. (Across
/// processes the write itself is conditional: [`crate::db::Db::save_playlist_if`].)
#[derive(Default)]
struct Slot {
    playlist: Arc<tokio::sync::Mutex<()>>,
    playback: std::sync::Mutex<Pending>,
}

/// A playback anchor on its way to the database: the newest one, its generation, and
/// whether a writer is at work (one per session; it writes the newest, so a burst of
/// seeks costs one write at a time, not one each).
#[derive(Default)]
struct Pending {
    latest: Option<Playback>,
    generation: u64,
    writing: bool,
}

/// What this process keeps per session: only locks. The DJ, the playlist and the
/// playback anchor live in the database, so that every process answers the same
/// (deploy/scale-out.md).
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

    /// Counts the session as having state in this process (a socket joined it here).
    pub fn touch(&self, session_id: &str) {
        self.slot(session_id);
    }

    /// The anchor this process set that may not be in the database yet.
    pub fn pending_playback(&self, session_id: &str) -> Option<Playback> {
        let slot = self.slot(session_id);
        let p = slot.playback.lock().unwrap_or_else(|p| p.into_inner());
        p.latest.clone()
    }

    /// Offers a new anchor; true when the caller must start the session's writer.
    pub fn offer_playback(&self, session_id: &str, playback: Playback) -> bool {
        let slot = self.slot(session_id);
        let mut p = slot.playback.lock().unwrap_or_else(|p| p.into_inner());
        p.latest = Some(playback);
        p.generation += 1;
        !std::mem::replace(&mut p.writing, true)
    }

    /// The writer's next anchor to write, and its generation.
    pub fn playback_to_write(&self, session_id: &str) -> Option<(Playback, u64)> {
        let slot = self.slot(session_id);
        let mut p = slot.playback.lock().unwrap_or_else(|p| p.into_inner());
        match p.latest.clone() {
            Some(latest) => Some((latest, p.generation)),
            None => {
                p.writing = false;
                None
            }
        }
    }

    /// Generation `generation` is written: done (true) unless a newer one came meanwhile.
    pub fn playback_written(&self, session_id: &str, generation: u64) -> bool {
        let slot = self.slot(session_id);
        let mut p = slot.playback.lock().unwrap_or_else(|p| p.into_inner());
        if p.generation == generation {
            p.latest = None;
            p.writing = false;
            true
        } else {
            false
        }
    }

    /// Serializes read-modify-write of this session's playlist.
    pub async fn lock_playlist(&self, session_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.slot(session_id).playlist.clone().lock_owned().await
    }
}

//! Per-session state: the DJ and the playback anchor (stored in the database,
//! docs/architecture.md "Storage", and kept in each process's memory for the relay
//! path), and the per-process playlist locks.
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

/// One session's state in this process: the lock that serializes its playlist writes
/// (each session has its own: a huge reorder in one group never delays another; across
/// processes the write itself is conditional: [`crate::db::Db::save_playlist_if`]), the
/// DJ as this process knows it, and the playback anchor.
#[derive(Default)]
struct Slot {
    playlist: Arc<tokio::sync::Mutex<()>>,
    /// `None`: not known here (never read, or another process changed it since).
    dj: std::sync::Mutex<Option<Dj>>,
    playback: std::sync::Mutex<Anchor>,
    /// Wakes the session's writer from its [`COALESCE`] wait when a change arrives.
    urgent: Arc<tokio::sync::Notify>,
}

/// Who is the session's DJ, at which change of control (docs/protocol.md, "Controller
/// grants"): what the relay path checks, in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dj {
    pub user: Option<UserId>,
    pub epoch: u64,
}

/// How soon an anchor must reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// A play, pause, seek or track change: the session's writer writes it next.
    Now,
    /// A position-sync with other processes around: written with the next write, at
    /// most every [`COALESCE`].
    Later,
    /// A position-sync in a single process: memory is authoritative; written with the
    /// next change only.
    No,
}

/// The longest a position-sync waits for its write when several processes share the
/// database: a DJ syncing every 100 ms costs the database one write per this, not 20.
pub const COALESCE: std::time::Duration = std::time::Duration::from_secs(2);

/// In a single process, the shortest time between two writes of one session's anchor,
/// even of changes: a burst of seeks is written as its newest anchor at most this often.
pub const SPACING: std::time::Duration = std::time::Duration::from_millis(250);

/// The playback anchor this process knows: the newest one, its generation, the one
/// in the database, and whether a writer is at work (one per session; it writes the
/// newest, so a burst of seeks costs one write at a time, not one each).
#[derive(Default)]
struct Anchor {
    /// `None`: not known here (read it from the database).
    current: Option<Playback>,
    generation: u64,
    written: u64,
    /// The newest generation that must not wait for [`COALESCE`].
    urgent: u64,
    writing: bool,
    /// Another process changed the DJ while this one's writer was at work: the anchor
    /// is dropped when the writer is done.
    stale: bool,
}

/// What this process keeps per session. The database holds the DJ, the playlist and the
/// playback anchor so that every process answers the same (deploy/scale-out.md); this
/// process keeps the DJ and the anchor in memory too, so relays never wait for the
/// database: the DJ is re-read when it changes here, and dropped when another process
/// says it changed it there (Redis); the anchor goes to the database in the background.
#[derive(Default)]
pub struct LiveSessions {
    /// Held only to find or insert a slot, never while working on one.
    sessions: RwLock<HashMap<String, Arc<Slot>>>,
    /// Other processes share the database (`--redis`): this one's memory is not the
    /// only truth, so position-syncs are written too (coalesced) and another process's
    /// change of DJ drops this one's anchor.
    clustered: bool,
    /// Tells the other processes of this one's changes of control.
    bus: crate::cluster::DjBus,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere while holding it; the values are plain
    // data, still consistent: keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LiveSessions {
    /// The state of one process among several (`clustered`) or of the only one.
    pub fn new(bus: crate::cluster::DjBus) -> Self {
        Self {
            sessions: RwLock::default(),
            clustered: bus.clustered(),
            bus,
        }
    }

    /// Whether other processes share the database (`--redis`).
    pub fn clustered(&self) -> bool {
        self.clustered
    }

    /// This process made `dj` the session's DJ: noted, and the other processes told.
    pub async fn dj_changed_here(&self, session_id: &str, dj: Dj) {
        self.note_dj(session_id, dj);
        self.bus.announce(session_id, dj).await;
    }

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

    fn existing(&self, session_id: &str) -> Option<Arc<Slot>> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(session_id)
            .cloned()
    }

    /// The DJ as this process knows it (`None`: read the database).
    pub fn dj(&self, session_id: &str) -> Option<Dj> {
        *lock(&self.slot(session_id).dj)
    }

    /// What the database said (or a change of control made here): kept unless this
    /// process already knows a later change.
    pub fn note_dj(&self, session_id: &str, dj: Dj) {
        let slot = self.slot(session_id);
        let mut known = lock(&slot.dj);
        if known.is_none_or(|k| k.epoch <= dj.epoch) {
            *known = Some(dj);
        }
    }

    /// This process's change of control lost to another's: read the DJ again.
    pub fn forget_dj(&self, session_id: &str) {
        *lock(&self.slot(session_id).dj) = None;
    }

    /// Another process changed the session's DJ: noted, and this process's anchor is
    /// dropped (the new DJ's process writes the anchor now) unless it still has to
    /// write it.
    pub fn remote_dj(&self, session_id: &str, dj: Dj) {
        let Some(slot) = self.existing(session_id) else {
            return;
        };
        {
            let mut known = lock(&slot.dj);
            if known.is_some_and(|k| k.epoch >= dj.epoch) {
                return;
            }
            *known = Some(dj);
        }
        let mut a = lock(&slot.playback);
        if a.writing {
            a.stale = true;
        } else {
            a.current = None;
        }
    }

    /// The link to the other processes was lost and is back: messages may have been
    /// missed, so every DJ and anchor is read from the database again.
    pub fn forget_all(&self) {
        let slots: Vec<Arc<Slot>> = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            *lock(&slot.dj) = None;
            let mut a = lock(&slot.playback);
            if a.writing {
                a.stale = true;
            } else {
                a.current = None;
            }
        }
    }

    /// The anchor this process knows (`None`: read the database).
    pub fn playback(&self, session_id: &str) -> Option<Playback> {
        lock(&self.slot(session_id).playback).current.clone()
    }

    /// Fills in the anchor from the database unless this process knows one.
    pub fn note_playback(&self, session_id: &str, stored: &Playback) {
        let slot = self.slot(session_id);
        let mut a = lock(&slot.playback);
        if a.current.is_none() {
            a.current = Some(stored.clone());
        }
    }

    /// Sets the session's anchor; true when the caller must start the session's writer.
    pub fn offer_playback(&self, session_id: &str, playback: Playback, persist: Persist) -> bool {
        let slot = self.slot(session_id);
        let mut a = lock(&slot.playback);
        a.current = Some(playback);
        a.stale = false;
        a.generation += 1;
        let persist = match persist {
            Persist::No if self.clustered => Persist::Later,
            p => p,
        };
        match persist {
            Persist::No => {
                // Nothing to write for this one: counts as written unless older
                // changes still wait (then the writer takes this one along).
                if a.written + 1 == a.generation && !a.writing {
                    a.written = a.generation;
                }
                false
            }
            Persist::Now | Persist::Later => {
                if persist == Persist::Now {
                    a.urgent = a.generation;
                    // A writer waiting to coalesce position-syncs writes this at once.
                    slot.urgent.notify_one();
                }
                !std::mem::replace(&mut a.writing, true)
            }
        }
    }

    /// The writer's next anchor to write, its generation and whether it may wait
    /// [`COALESCE`] first; `None`: all written, the writer stops.
    pub fn playback_to_write(&self, session_id: &str) -> Option<(Playback, u64, bool)> {
        let slot = self.slot(session_id);
        let mut a = lock(&slot.playback);
        match a.current.clone() {
            Some(current) if a.written < a.generation => {
                Some((current, a.generation, a.urgent <= a.written))
            }
            _ => {
                a.writing = false;
                if std::mem::take(&mut a.stale) {
                    a.current = None;
                }
                None
            }
        }
    }

    /// Notified when a change must not wait for [`COALESCE`] (the writer's wait ends).
    pub fn urgent(&self, session_id: &str) -> Arc<tokio::sync::Notify> {
        self.slot(session_id).urgent.clone()
    }

    /// Generation `generation` is in the database.
    pub fn playback_written(&self, session_id: &str, generation: u64) {
        let slot = self.slot(session_id);
        let mut a = lock(&slot.playback);
        a.written = a.written.max(generation);
    }

    /// Serializes read-modify-write of this session's playlist.
    pub async fn lock_playlist(&self, session_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.slot(session_id).playlist.clone().lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(position: f64) -> Playback {
        Playback {
            position,
            ..Playback::default()
        }
    }

    /// One process: a position-sync changes the anchor in memory and costs no write; a
    /// change is written (by one writer), taking the newest anchor along.
    #[test]
    fn a_single_process_writes_changes_not_position_syncs() {
        let live = LiveSessions::default();
        assert!(!live.offer_playback("s", at(1.0), Persist::No));
        assert!(live.playback_to_write("s").is_none(), "nothing to write");
        assert_eq!(live.playback("s").map(|p| p.position), Some(1.0));
        assert!(
            live.offer_playback("s", at(2.0), Persist::Now),
            "starts the writer"
        );
        assert!(
            !live.offer_playback("s", at(3.0), Persist::No),
            "one writer"
        );
        let (p, generation, may_wait) = live.playback_to_write("s").unwrap();
        assert_eq!((p.position, may_wait), (3.0, false));
        live.playback_written("s", generation);
        assert!(live.playback_to_write("s").is_none(), "all written");
        assert_eq!(live.playback("s").map(|p| p.position), Some(3.0), "kept");
    }

    /// Several processes: position-syncs are written too, but may wait (coalesced); another
    /// process's change of DJ drops the anchor once it is written.
    #[test]
    fn a_clustered_process_coalesces_syncs_and_drops_its_anchor_when_the_dj_moves() {
        let live = LiveSessions {
            clustered: true,
            ..LiveSessions::default()
        };
        live.note_dj(
            "s",
            Dj {
                user: Some(1),
                epoch: 3,
            },
        );
        assert!(live.offer_playback("s", at(1.0), Persist::No));
        let (_, generation, may_wait) = live.playback_to_write("s").unwrap();
        assert!(may_wait, "a position-sync may wait");
        live.remote_dj(
            "s",
            Dj {
                user: Some(2),
                epoch: 4,
            },
        );
        assert_eq!(live.dj("s").and_then(|d| d.user), Some(2));
        assert!(live.playback("s").is_some(), "still to be written");
        live.playback_written("s", generation);
        assert!(live.playback_to_write("s").is_none());
        assert!(live.playback("s").is_none(), "dropped once written");
        // An older announcement changes nothing; this process's own change does.
        live.remote_dj(
            "s",
            Dj {
                user: Some(1),
                epoch: 2,
            },
        );
        assert_eq!(live.dj("s").and_then(|d| d.user), Some(2));
        live.note_dj(
            "s",
            Dj {
                user: Some(1),
                epoch: 5,
            },
        );
        assert_eq!(live.dj("s").and_then(|d| d.user), Some(1));
        live.forget_all();
        assert!(live.dj("s").is_none());
    }

    /// A change during a writer's wait to coalesce position-syncs wakes it: other
    /// processes read the anchor at a join and must not see it 2 s late.
    #[tokio::test]
    async fn a_change_wakes_a_writer_waiting_to_coalesce() {
        let live = LiveSessions {
            clustered: true,
            ..LiveSessions::default()
        };
        assert!(live.offer_playback("s", at(1.0), Persist::No));
        let (_, _, may_wait) = live.playback_to_write("s").unwrap();
        assert!(may_wait, "a position-sync may wait");
        let urgent = live.urgent("s");
        assert!(
            !live.offer_playback("s", at(2.0), Persist::Now),
            "the writer is at work"
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), urgent.notified())
            .await
            .expect("the waiting writer is woken");
        let (p, _, may_wait) = live.playback_to_write("s").unwrap();
        assert_eq!((p.position, may_wait), (2.0, false));
    }
}

//! Everyone's last known position, kept on the device for a map with no link: one file
//! per server and session, `<dir>/positions-<key>.json`, rewritten whole (tmp, fsync,
//! rename) at most every [`SAVE_EVERY_MS`] and when the node stops.
//!
//! A member who stopped sharing (`location-off`) is removed from it: the file never shows
//! a car that asked not to be shown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jamz_proto::UserId;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// Positions change every few seconds while driving; the disk hears of them this often
/// (ms): a crash loses at most that much of the map, and a flash card is spared.
pub const SAVE_EVERY_MS: f64 = 10_000.0;

/// One member's last position, with when this device learnt it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnownPosition {
    #[serde(rename = "userId")]
    pub user_id: UserId,
    pub latitude: f64,
    pub longitude: f64,
    pub speed: Option<f64>,
    pub heading: Option<f64>,
    /// Milliseconds since the Unix epoch (this device's clock) when it arrived.
    pub at: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    server: String,
    session_id: String,
    positions: BTreeMap<UserId, KnownPosition>,
}

/// The last positions of one session's members.
#[derive(Debug)]
pub struct LastPositions {
    path: PathBuf,
    stored: Stored,
    dirty: bool,
    saved_at: f64,
}

impl LastPositions {
    /// The positions an earlier run kept for `session_id` on `server` in `dir`. A file that
    /// cannot be read is an empty map and a message (positions are a convenience, not
    /// data to rescue).
    pub fn open(dir: &Path, server: &str, session_id: &str) -> (LastPositions, Option<String>) {
        let path = dir.join(format!(
            "positions-{:016x}.json",
            crate::outbox::key(server, session_id)
        ));
        let empty = || Stored {
            server: server.to_owned(),
            session_id: session_id.to_owned(),
            positions: BTreeMap::new(),
        };
        let (stored, problem) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(s) if s.server == server && s.session_id == session_id => (s, None),
                Ok(_) => (empty(), None),
                Err(e) => (
                    empty(),
                    Some(format!(
                        "the last known positions in {} could not be read ({e}); starting without them",
                        path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (empty(), None),
            Err(e) => (empty(), Some(format!("reading {}: {e}", path.display()))),
        };
        let lp = LastPositions {
            path,
            stored,
            dirty: false,
            saved_at: f64::NEG_INFINITY,
        };
        (lp, problem)
    }

    /// Every known position, by user id.
    pub fn all(&self) -> Vec<KnownPosition> {
        self.stored.positions.values().copied().collect()
    }

    pub fn update(&mut self, p: KnownPosition) {
        self.stored.positions.insert(p.user_id, p);
        self.dirty = true;
    }

    pub fn remove(&mut self, user: UserId) {
        self.dirty |= self.stored.positions.remove(&user).is_some();
    }

    /// Saves if something changed and the last save is [`SAVE_EVERY_MS`] old (or `force`).
    pub fn save_if_due(&mut self, now: f64, force: bool) -> Result<(), NodeError> {
        if !self.dirty || (!force && now - self.saved_at < SAVE_EVERY_MS) {
            return Ok(());
        }
        self.dirty = false;
        self.saved_at = now;
        let bytes = serde_json::to_vec(&self.stored)
            .map_err(|e| NodeError::Invalid(format!("encoding the last positions: {e}")))?;
        crate::files::write_atomically(&self.path, &bytes).map_err(|e| NodeError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(user: UserId, lat: f64) -> KnownPosition {
        KnownPosition {
            user_id: user,
            latitude: lat,
            longitude: 11.5,
            speed: Some(20.0),
            heading: None,
            at: 1.0,
        }
    }

    #[test]
    fn positions_survive_a_restart_and_a_car_that_stopped_sharing_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, problem) = LastPositions::open(dir.path(), "http://s", "sess");
        assert!(problem.is_none());
        p.update(at(1, 48.0));
        p.update(at(2, 48.1));
        p.save_if_due(0.0, false).unwrap();
        p.update(at(1, 48.2));
        p.remove(2);
        // Not due yet: the file still has the first save.
        p.save_if_due(1_000.0, false).unwrap();
        let (q, _) = LastPositions::open(dir.path(), "http://s", "sess");
        assert_eq!(q.all(), vec![at(1, 48.0), at(2, 48.1)]);
        p.save_if_due(2_000.0, true).unwrap();
        let (q, _) = LastPositions::open(dir.path(), "http://s", "sess");
        assert_eq!(q.all(), vec![at(1, 48.2)]);
        // Another session's file is another file.
        let (other, _) = LastPositions::open(dir.path(), "http://s", "other");
        assert!(other.all().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_empty_map_and_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = LastPositions::open(dir.path(), "http://s", "sess");
        std::fs::write(&p.path, b"{not json").unwrap();
        let (q, problem) = LastPositions::open(dir.path(), "http://s", "sess");
        assert!(q.all().is_empty());
        assert!(problem.unwrap().contains("could not be read"));
    }
}

//! This car's fixes not yet delivered to the server, kept on the device so that a restart
//! (or a crash) in a dead zone loses none: one file per server and session,
//! `<dir>/waiting-fixes-<key>.json`, rewritten whole (tmp, fsync, rename) at most every
//! [`SAVE_EVERY_MS`] while they change, and when the node stops. The engine decides what
//! waits ([`jamz_sync::Engine::location_backlog`]); this only keeps it, with the batches
//! on their way to `POST /api/locations`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jamz_proto::rest::LocationReport;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// Offline, a fix is taken every few seconds; the disk hears of them this often (ms): a
/// crash loses at most that much of the history.
pub const SAVE_EVERY_MS: f64 = 10_000.0;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    server: String,
    session_id: String,
    fixes: Vec<LocationReport>,
}

/// The waiting fixes of one session.
#[derive(Debug)]
pub struct WaitingFixes {
    path: PathBuf,
    server: String,
    session_id: String,
    /// Batches being posted, by id: not in the engine's backlog any more, not delivered yet.
    posting: BTreeMap<u64, Vec<LocationReport>>,
    next_batch: u64,
    /// The engine's backlog version and the batches last saved.
    saved: Option<(u64, Vec<u64>)>,
    saved_at: f64,
}

impl WaitingFixes {
    /// The fixes an earlier run kept for `session_id` on `server` in `dir`. A file that
    /// cannot be read is set aside (renamed `.unreadable`), never overwritten, and reported.
    pub fn open(
        dir: &Path,
        server: &str,
        session_id: &str,
    ) -> (WaitingFixes, Vec<LocationReport>, Option<String>) {
        let path = dir.join(format!(
            "waiting-fixes-{:016x}.json",
            crate::outbox::key(server, session_id)
        ));
        let (kept, problem) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(s) if s.server == server && s.session_id == session_id => (s.fixes, None),
                Ok(_) => (Vec::new(), None),
                Err(e) => {
                    let aside = path.with_extension("json.unreadable");
                    let moved = std::fs::rename(&path, &aside)
                        .map(|()| format!("set aside as {}", aside.display()))
                        .unwrap_or_else(|e| format!("and could not be set aside: {e}"));
                    (
                        Vec::new(),
                        Some(format!(
                            "the positions kept for the server in {} could not be read ({e}); {moved}",
                            path.display()
                        )),
                    )
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
            Err(e) => (Vec::new(), Some(format!("reading {}: {e}", path.display()))),
        };
        let wf = WaitingFixes {
            path,
            server: server.to_owned(),
            session_id: session_id.to_owned(),
            posting: BTreeMap::new(),
            next_batch: 0,
            // What was read is what is on disk.
            saved: Some((u64::MAX, Vec::new())),
            saved_at: f64::NEG_INFINITY,
        };
        (wf, kept, problem)
    }

    /// A batch leaves for the server: kept until [`WaitingFixes::posted`].
    pub fn posting(&mut self, reports: &[LocationReport]) -> u64 {
        let id = self.next_batch;
        self.next_batch += 1;
        self.posting.insert(id, reports.to_vec());
        id
    }

    /// The batch was delivered, or what was not is back in the engine's backlog.
    pub fn posted(&mut self, id: u64) {
        self.posting.remove(&id);
    }

    /// Saves when the backlog (`version`, `backlog`) or the batches on their way changed and
    /// the last save is [`SAVE_EVERY_MS`] old, or when `force`d.
    pub fn save_if_due(
        &mut self,
        now: f64,
        version: u64,
        backlog: impl FnOnce() -> Vec<LocationReport>,
        force: bool,
    ) -> Result<(), NodeError> {
        let state = (version, self.posting.keys().copied().collect::<Vec<_>>());
        if self.saved.as_ref() == Some(&state) || (!force && now - self.saved_at < SAVE_EVERY_MS) {
            return Ok(());
        }
        let mut fixes = backlog();
        fixes.extend(self.posting.values().flatten().cloned());
        fixes.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        self.saved = Some(state);
        self.saved_at = now;
        if fixes.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(NodeError::io(&self.path, e)),
            };
        }
        let stored = Stored {
            server: self.server.clone(),
            session_id: self.session_id.clone(),
            fixes,
        };
        let bytes = serde_json::to_vec(&stored)
            .map_err(|e| NodeError::Invalid(format!("encoding the waiting positions: {e}")))?;
        crate::files::write_atomically(&self.path, &bytes).map_err(|e| NodeError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(t: f64) -> LocationReport {
        LocationReport {
            session_id: Some("sess".into()),
            latitude: 48.0,
            longitude: 11.5,
            accuracy: None,
            speed: Some(20.0),
            heading: None,
            timestamp: t,
        }
    }

    #[test]
    fn waiting_and_posting_fixes_survive_a_restart_and_a_delivered_batch_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, kept, problem) = WaitingFixes::open(dir.path(), "http://s", "sess");
        assert!(kept.is_empty() && problem.is_none());
        let batch = w.posting(&[fix(1.0), fix(2.0)]);
        w.save_if_due(0.0, 1, || vec![fix(3.0)], false).unwrap();
        let (_, kept, _) = WaitingFixes::open(dir.path(), "http://s", "sess");
        let times: Vec<f64> = kept.iter().map(|f| f.timestamp).collect();
        assert_eq!(times, [1.0, 2.0, 3.0]);
        // Another session's file is another file.
        let (_, other, _) = WaitingFixes::open(dir.path(), "http://s", "other");
        assert!(other.is_empty());
        // Delivered: within the save period nothing is written, unless forced.
        w.posted(batch);
        w.save_if_due(1.0, 1, || vec![fix(3.0)], false).unwrap();
        assert_eq!(
            WaitingFixes::open(dir.path(), "http://s", "sess").1.len(),
            3
        );
        w.save_if_due(2.0, 1, || vec![fix(3.0)], true).unwrap();
        assert_eq!(
            WaitingFixes::open(dir.path(), "http://s", "sess").1.len(),
            1
        );
        // Nothing waits: no file.
        w.save_if_due(3.0, 2, Vec::new, true).unwrap();
        assert!(
            WaitingFixes::open(dir.path(), "http://s", "sess")
                .1
                .is_empty()
        );
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let (w, _, _) = WaitingFixes::open(dir.path(), "http://s", "sess");
        std::fs::write(&w.path, b"{ not json").unwrap();
        let (_, kept, problem) = WaitingFixes::open(dir.path(), "http://s", "sess");
        assert!(kept.is_empty());
        assert!(problem.unwrap().contains("set aside"));
        let aside = w.path.with_extension("json.unreadable");
        assert_eq!(std::fs::read(aside).unwrap(), b"{ not json");
    }
}

//! Playlist changes made while the server is out of reach (add, remove, reorder
//! go over REST; a file added needs its upload first): kept in order, on disk,
//! and sent when the link is back. "Changes
//! made offline reach the server later, none lost", also across a restart of the
//! app in between.
//!
//! One file per server and session, `<dir>/outbox-<key>.json`, rewritten whole
//! (tmp, fsync, rename) on every change: a few calls, rarely more than dozens.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use jamz_sync::api::RestCall;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// One change waiting for the server.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Pending {
    /// A playlist change over REST.
    Rest(RestCall),
    /// A local file to upload and append (added while offline).
    Upload { path: PathBuf },
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    server: String,
    session_id: String,
    calls: VecDeque<Pending>,
}

impl Pending {
    fn view(&self) -> crate::control::PendingView {
        let (action, label) = match self {
            Pending::Rest(RestCall::AppendTrack { track, .. }) => ("add", track.title.clone()),
            Pending::Rest(RestCall::DeleteTrack { track_id, .. }) => ("remove", track_id.clone()),
            Pending::Rest(RestCall::Reorder { order, .. }) => {
                ("reorder", format!("{} tracks", order.len()))
            }
            Pending::Upload { path } => (
                "upload",
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
            ),
        };
        crate::control::PendingView {
            action: action.to_owned(),
            label,
        }
    }
}

/// The waiting calls of one session.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    stored: Stored,
}

impl Outbox {
    /// The outbox of `session_id` on `server` in `dir`, with what an earlier run
    /// left in it. A file that cannot be read is set aside (renamed `.bad`) and
    /// reported, never silently dropped.
    pub fn open(
        dir: &Path,
        server: &str,
        session_id: &str,
    ) -> Result<(Outbox, Option<String>), NodeError> {
        std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
        let path = dir.join(format!("outbox-{:016x}.json", key(server, session_id)));
        let empty = || Stored {
            server: server.to_owned(),
            session_id: session_id.to_owned(),
            calls: VecDeque::new(),
        };
        let (stored, problem) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(s) if s.server == server && s.session_id == session_id => (s, None),
                Ok(_) => (empty(), None),
                Err(e) => {
                    let bad = path.with_extension("json.bad");
                    let _ = std::fs::rename(&path, &bad);
                    (
                        empty(),
                        Some(format!(
                            "offline changes in {} could not be read ({e}); kept as {}",
                            path.display(),
                            bad.display()
                        )),
                    )
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (empty(), None),
            Err(e) => return Err(NodeError::io(&path, e)),
        };
        Ok((Outbox { path, stored }, problem))
    }

    pub fn len(&self) -> usize {
        self.stored.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stored.calls.is_empty()
    }

    /// Every waiting change, oldest first, as the `outbox` event shows them.
    pub fn views(&self) -> Vec<crate::control::PendingView> {
        self.stored.calls.iter().map(Pending::view).collect()
    }

    /// The oldest waiting change.
    pub fn front(&self) -> Option<&Pending> {
        self.stored.calls.front()
    }

    /// Adds a change at the end and saves.
    pub fn push(&mut self, call: Pending) -> Result<(), NodeError> {
        self.stored.calls.push_back(call);
        self.save()
    }

    /// Removes the oldest call (it reached the server, or the server refused it) and saves.
    pub fn pop_front(&mut self) -> Result<Option<Pending>, NodeError> {
        let call = self.stored.calls.pop_front();
        self.save()?;
        Ok(call)
    }

    fn save(&self) -> Result<(), NodeError> {
        if self.stored.calls.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(NodeError::io(&self.path, e)),
            };
        }
        let bytes = serde_json::to_vec(&self.stored)
            .map_err(|e| NodeError::Invalid(format!("encoding the offline changes: {e}")))?;
        crate::files::write_atomically(&self.path, &bytes).map_err(|e| NodeError::io(&self.path, e))
    }
}

/// A stable file key for (server, session): FNV-1a, not std's randomly seeded hasher.
pub(crate) fn key(server: &str, session_id: &str) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    (server, session_id).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reorder(n: usize) -> Pending {
        Pending::Rest(RestCall::Reorder {
            session_id: "s".into(),
            order: vec![n.to_string()],
        })
    }

    #[test]
    fn calls_survive_a_restart_in_order_and_an_empty_outbox_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, problem) = Outbox::open(dir.path(), "http://a", "s").unwrap();
        assert!(problem.is_none());
        o.push(reorder(1)).unwrap();
        o.push(Pending::Upload {
            path: "/music/a.mp3".into(),
        })
        .unwrap();
        o.push(reorder(2)).unwrap();
        drop(o);
        let (mut o, _) = Outbox::open(dir.path(), "http://a", "s").unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o.pop_front().unwrap(), Some(reorder(1)));
        assert_eq!(
            o.pop_front().unwrap(),
            Some(Pending::Upload {
                path: "/music/a.mp3".into()
            })
        );
        assert_eq!(o.front(), Some(&reorder(2)));
        o.pop_front().unwrap();
        assert!(o.is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Another session on the same device has its own outbox.
        let (o, _) = Outbox::open(dir.path(), "http://a", "other").unwrap();
        assert!(o.is_empty());
    }

    #[test]
    fn a_damaged_file_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), "http://a", "s").unwrap();
        o.push(reorder(1)).unwrap();
        let path = o.path.clone();
        drop(o);
        std::fs::write(&path, b"{ not json").unwrap();
        let (o, problem) = Outbox::open(dir.path(), "http://a", "s").unwrap();
        assert!(o.is_empty());
        assert!(problem.unwrap().contains("could not be read"));
        assert!(path.with_extension("json.bad").exists());
    }
}

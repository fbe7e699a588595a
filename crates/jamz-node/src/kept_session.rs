//! The kept session on disk (docs/node-control.md, "Starting with the server gone"): one
//! file per server and group in the cache directory, `kept-session-<key>.json`, written
//! whole (tmp, fsync, rename), mode 0600 (it holds the login's token, like the saved
//! login). What is in it, and whether it may be used, is `jamz_sync::kept`'s.

use std::io::Write;
use std::path::{Path, PathBuf};

use jamz_sync::kept::{KEPT_MAX_BYTES, KeptCheck, KeptSession};

use crate::error::NodeError;

/// Where the session of `group_id` on `server` is kept in `dir`.
pub fn path(dir: &Path, server: &str, group_id: &str) -> PathBuf {
    dir.join(KeptSession::file_name(server, group_id))
}

/// The kept session for `check`'s server and group, if there is one and it may be used:
/// `Ok(None)` with no file; `Err` (its message names the file and why) when it cannot be
/// used: unreadable, truncated, of another server, group or user, stale.
pub fn load(dir: &Path, check: &KeptCheck<'_>) -> Result<Option<KeptSession>, NodeError> {
    let path = path(dir, check.server, check.group_id);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NodeError::io(&path, e)),
    };
    let mut bytes = Vec::new();
    let limit = u64::try_from(KEPT_MAX_BYTES).unwrap_or(u64::MAX) + 1;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit), &mut bytes)
        .map_err(|e| NodeError::io(&path, e))?;
    KeptSession::read(&bytes, check).map(Some).map_err(|e| {
        NodeError::Invalid(format!(
            "the kept session {} is not used: {e}",
            path.display()
        ))
    })
}

/// Writes `kept` (the whole file anew, readable by this user only).
pub fn save(dir: &Path, kept: &KeptSession) -> Result<(), NodeError> {
    let path = path(dir, &kept.identity.server, &kept.identity.group_id);
    let bytes = serde_json::to_vec(kept)
        .map_err(|e| NodeError::Invalid(format!("cannot encode the kept session: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| NodeError::io(&path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use jamz_sync::kept::{KEPT_FORMAT, KeptIdentity};

    use super::*;

    const NOW: f64 = 1_800_000_000_000.0;

    fn kept(server: &str) -> KeptSession {
        KeptSession {
            format: KEPT_FORMAT,
            identity: KeptIdentity {
                server: server.into(),
                group_id: "g".into(),
                user_id: 2,
                username: "car1".into(),
                display_name: "car1's car".into(),
                token: "secret".into(),
            },
            session_id: "s".into(),
            members: vec![],
            controller: None,
            grant: None,
            playlist: vec![],
            timeline: None,
            peers: BTreeMap::new(),
            saved_at_ms: NOW - 1000.0,
        }
    }

    fn check(server: &str) -> KeptCheck<'_> {
        KeptCheck {
            server,
            group_id: "g",
            username: Some("car1"),
            now_ms: NOW,
        }
    }

    #[test]
    fn kept_and_found_again_private_to_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let server = "http://127.0.0.1:1";
        assert!(load(dir.path(), &check(server)).unwrap().is_none());
        save(dir.path(), &kept(server)).unwrap();
        assert_eq!(
            load(dir.path(), &check(server)).unwrap(),
            Some(kept(server))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path(), server, "g"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_truncated_garbage_or_foreign_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let server = "http://127.0.0.1:1";
        save(dir.path(), &kept(server)).unwrap();
        let file = path(dir.path(), server, "g");
        let whole = std::fs::read(&file).unwrap();
        std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
        let e = load(dir.path(), &check(server)).unwrap_err().to_string();
        assert!(e.contains("is not used") && e.contains("truncated"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");
        std::fs::write(&file, b"\x00\x01garbage\xff").unwrap();
        let e = load(dir.path(), &check(server)).unwrap_err().to_string();
        assert!(e.contains("not a kept session"), "{e}");
        // A file of another server, under this server's name (copied over, say).
        let other = kept("http://10.9.9.9:1");
        std::fs::write(&file, serde_json::to_vec(&other).unwrap()).unwrap();
        let e = load(dir.path(), &check(server)).unwrap_err().to_string();
        assert!(e.contains("for the server http://10.9.9.9:1"), "{e}");
    }
}

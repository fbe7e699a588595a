//! The server's grant-signing key (`GET /api/mesh/grant-key`, docs/mesh-trust.md),
//! kept on disk: fetched while the server is reachable, it is what lets the engine check
//! the DJ's controller grant when the server is gone, including after a restart of the
//! node in the middle of an outage.
//!
//! One file per server, `<dir>/mesh-grant-key-<key>.json`, the route's answer as it came
//! (`{"algorithm":"ed25519","publicKey":"<hex>"}`), rewritten whole (tmp, fsync, rename).

use std::path::{Path, PathBuf};

use jamz_proto::grant::GrantKey;

use crate::error::NodeError;

/// Where the key of `server` is kept in `dir`.
pub fn path(dir: &Path, server: &str) -> PathBuf {
    dir.join(format!(
        "mesh-grant-key-{:016x}.json",
        crate::outbox::key(server, "")
    ))
}

/// The key kept for `server`, if any. A file that does not parse is reported (`Err`)
/// and otherwise ignored: the next fetch rewrites it.
pub fn load(dir: &Path, server: &str) -> Result<Option<GrantKey>, NodeError> {
    let path = path(dir, server);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NodeError::io(&path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        NodeError::Invalid(format!(
            "the server's grant key in {} is unreadable: {e}",
            path.display()
        ))
    })
}

/// Keeps `key` for `server` (unchanged files are not rewritten).
pub fn save(dir: &Path, server: &str, key: &GrantKey) -> Result<(), NodeError> {
    if matches!(load(dir, server), Ok(Some(k)) if k == *key) {
        return Ok(());
    }
    let path = path(dir, server);
    let bytes = serde_json::to_vec(key)
        .map_err(|e| NodeError::Invalid(format!("cannot encode the grant key: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    crate::files::write_atomically(&path, &bytes).map_err(|e| NodeError::io(&path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_kept_is_found_again_per_server_and_a_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let key = GrantKey {
            algorithm: "ed25519".into(),
            public_key: "ab".repeat(32),
        };
        assert_eq!(load(dir.path(), "http://a").unwrap(), None);
        save(dir.path(), "http://a", &key).unwrap();
        assert_eq!(load(dir.path(), "http://a").unwrap(), Some(key.clone()));
        assert_eq!(load(dir.path(), "http://b").unwrap(), None);
        std::fs::write(path(dir.path(), "http://a"), b"{not json").unwrap();
        assert!(load(dir.path(), "http://a").is_err());
        save(dir.path(), "http://a", &key).unwrap();
        assert_eq!(load(dir.path(), "http://a").unwrap(), Some(key));
    }
}

//! This device's own Ed25519 key (docs/mesh-trust.md, "Keys"): presented at every
//! CONNECT as `auth.deviceKey`, named in the server's grant when this device's user takes
//! control, and signing what the DJ's device sends over the mesh, so that peers obey it
//! relayed too.
//!
//! Kept like the login: `<config dir>/device-key`, the 32-byte seed in hex, mode 0600 in a
//! 0700 directory, made on first start and kept across restarts (a grant outlives a
//! restart of the DJ's app). A damaged file is replaced by a new key, said in the log:
//! the only loss is the grant naming the old key, and the server signs a new one at the
//! next join.

use std::path::{Path, PathBuf};

use jamz_sync::trust::DeviceKey;

use crate::account::{create_private_dir, write_private};
use crate::error::NodeError;

/// The file's name in the config directory.
pub const DEVICE_KEY_FILE: &str = "device-key";

/// Where the key of a node whose config directory is `dir` is kept.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(DEVICE_KEY_FILE)
}

/// The key kept in `dir`, made (and kept) when there is none or the file is damaged.
pub fn load_or_create(dir: &Path) -> Result<DeviceKey, NodeError> {
    let path = path(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut seed = [0u8; 32];
            match hex::decode_to_slice(text.trim(), &mut seed) {
                Ok(()) => return Ok(DeviceKey::from_seed(seed)),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "the device key is damaged; making a new one"
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io(&path, e)),
    }
    let seed: [u8; 32] = rand::random();
    create_private_dir(dir)?;
    // Written aside and renamed over: a crash never leaves half a key.
    let tmp = dir.join(format!("{DEVICE_KEY_FILE}.tmp"));
    write_private(&tmp, hex::encode(seed).as_bytes())?;
    std::fs::rename(&tmp, &path).map_err(|e| NodeError::io(&path, e))?;
    tracing::info!(path = %path.display(), "made this device's mesh key");
    Ok(DeviceKey::from_seed(seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_a_damaged_file_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("cfg");
        let first = load_or_create(&cfg).unwrap();
        let again = load_or_create(&cfg).unwrap();
        assert_eq!(first.public_hex(), again.public_hex(), "kept across starts");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(&cfg)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(&cfg).unwrap().permissions().mode();
            assert_eq!(dmode & 0o077, 0, "config dir readable by others");
        }
        let other = tempfile::tempdir().unwrap();
        let elsewhere = load_or_create(other.path()).unwrap();
        assert_ne!(
            first.public_hex(),
            elsewhere.public_hex(),
            "one key per device"
        );
        std::fs::write(path(&cfg), b"not a seed").unwrap();
        let replaced = load_or_create(&cfg).unwrap();
        assert_ne!(replaced.public_hex(), first.public_hex());
        assert_eq!(
            load_or_create(&cfg).unwrap().public_hex(),
            replaced.public_hex(),
            "the new key is kept"
        );
    }
}

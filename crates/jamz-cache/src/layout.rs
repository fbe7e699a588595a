//! Where things live inside the cache directory, and the durability helpers.
//!
//! ```text
//! <dir>/lock                 advisory lock: one process per cache directory
//! <dir>/index.sqlite3        the index (WAL mode, so also -wal and -shm files)
//! <dir>/files/<sha256 hex>   complete, verified tracks, named by content
//! <dir>/partial/<key>.part   downloads in progress; key = sha256 hex of the track id
//! ```

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Extension of partial downloads.
const PARTIAL_EXT: &str = "part";

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
    pub files: PathBuf,
    pub partial: PathBuf,
    pub index: PathBuf,
    pub lock: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
            files: root.join("files"),
            partial: root.join("partial"),
            index: root.join("index.sqlite3"),
            lock: root.join("lock"),
        }
    }

    /// Creates the directories (and makes their entries durable).
    pub fn create_dirs(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.files)?;
        std::fs::create_dir_all(&self.partial)?;
        sync_dir(&self.root)
    }

    /// The final path of a file with this content hash.
    pub fn file(&self, sha256: &str) -> PathBuf {
        self.files.join(sha256)
    }

    /// The partial-download path of a track.
    pub fn partial_file(&self, track_id: &str) -> PathBuf {
        self.partial
            .join(format!("{}.{PARTIAL_EXT}", partial_key(track_id)))
    }
}

/// The file-name key of a track's partial download: track ids come from the network
/// and are never used as file names directly.
pub(crate) fn partial_key(track_id: &str) -> String {
    hex::encode(Sha256::digest(track_id.as_bytes()))
}

/// Makes a directory's entries (a rename, a new file) durable. On Windows directories
/// cannot be opened for syncing and NTFS journals renames, so this is a no-op there.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_never_contain_the_raw_id() {
        let l = Layout::new(Path::new("/c"));
        let p = l.partial_file("../../etc/passwd");
        assert_eq!(p.parent(), Some(Path::new("/c/partial")));
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(name.len(), 64 + 1 + PARTIAL_EXT.len());
    }
}

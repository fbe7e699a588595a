//! A real full disk: the cache on a 2 MiB tmpfs. Needs root (mount); skipped loudly
//! on stderr when mounting is not permitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use jamz_cache::CacheError;
use support::*;

/// Size of the first test's file system: room for the index and a small track, not
/// for the big one.
const SMALL_TMPFS: &str = "size=2m";
/// Size of the second test's: room for the index and either track, not both.
const ROOM_FOR_ONE: &str = "size=8m";

/// A tmpfs of a given size mounted on a fresh temporary directory; unmounted (then
/// the directory removed) on drop.
struct Tmpfs {
    root: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a loud note on stderr) when mounting is not permitted; a failure
    /// instead when `JAMZ_REQUIRE_MOUNT=1` (CI: the test must run, not skip).
    fn mount(size: &str) -> Option<Tmpfs> {
        let tmpfs = Self::try_mount(size);
        if tmpfs.is_none() && std::env::var("JAMZ_REQUIRE_MOUNT").as_deref() == Ok("1") {
            panic!("JAMZ_REQUIRE_MOUNT=1 but no tmpfs could be mounted (see above)");
        }
        tmpfs
    }

    fn try_mount(size: &str) -> Option<Tmpfs> {
        let root = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", size, "tmpfs"])
            .arg(root.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { root }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED disk_full test: cannot mount a tmpfs ({}); run as root to test a full disk for real",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED disk_full test: cannot run mount: {e}");
                None
            }
        }
    }

    /// Where the tests put the cache, inside the tmpfs.
    fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Runs before `root` is dropped: the directory is removed once unmounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.root.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_nothing_half_written_is_served() {
    let Some(tmpfs) = Tmpfs::mount(SMALL_TMPFS) else {
        return;
    };
    let dir = tmpfs.cache_dir();
    let server = TestServer::start().await;
    let (small, small_data) = server.add_track("small", 1, 300_000);
    let (big, _) = server.add_track("big", 2, 3_000_000);
    let cache = open_cache(&dir).await;
    cache.fetch_to_path(&small).await.unwrap();

    let err = cache.fetch_to_path(&big).await.unwrap_err();
    assert!(
        matches!(err, CacheError::DiskFull { ref id, .. } if id == "big"),
        "{err}"
    );
    assert!(err.to_string().contains("disk full"), "{err}");
    // The failed download left nothing behind, and is not served.
    assert!(cache.get_cached("big").await.unwrap_err().is_not_cached());
    assert_eq!(list(&dir.join("partial")), Vec::<String>::new());
    assert_eq!(list(&dir.join("files")), [sha_hex(&small_data)]);
    // What was cached before is intact, also after a restart.
    assert_eq!(read_cached(&cache, "small").await, small_data);
    drop(cache);
    let cache = open_cache(&dir).await;
    assert_eq!(read_cached(&cache, "small").await, small_data);
    // A reader streaming the failing download sees the error, not a short file.
    let reader = cache.get_or_fetch(&big).await;
    match reader {
        Ok(r) => {
            let e = read_all(r).await.unwrap_err();
            assert!(e.to_string().contains("disk full"), "{e}");
        }
        Err(e) => assert!(matches!(e, CacheError::DiskFull { .. }), "{e}"),
    }
    drop(cache);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_evicts_older_unpinned_tracks_to_make_room() {
    let Some(tmpfs) = Tmpfs::mount(ROOM_FOR_ONE) else {
        return;
    };
    let dir = tmpfs.cache_dir();
    let server = TestServer::start().await;
    let (old, _) = server.add_track("old", 1, 3_000_000);
    let (new, new_data) = server.add_track("new", 2, 5_500_000);
    let cache = open_cache(&dir).await;

    // Pinned, the old track may not go: the new one does not fit.
    cache.pin("old").await.unwrap();
    cache.fetch_to_path(&old).await.unwrap();
    let err = cache.fetch_to_path(&new).await.unwrap_err();
    assert!(matches!(err, CacheError::DiskFull { .. }), "{err}");
    assert!(cache.contains("old").await.unwrap());

    // Unpinned, it is evicted and the new track is cached whole.
    cache.unpin("old").await.unwrap();
    let path = cache.fetch_to_path(&new).await.unwrap();
    assert_eq!(sha_hex(&std::fs::read(path).unwrap()), sha_hex(&new_data));
    assert!(!cache.contains("old").await.unwrap());
    assert_eq!(list(&dir.join("files")), [sha_hex(&new_data)]);
}

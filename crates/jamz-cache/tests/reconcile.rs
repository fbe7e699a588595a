//! Start-up reconciliation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use jamz_cache::{CacheError, ReconcileReport};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_go_missing_files_drop_rows_partials_stay() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = server.add_track("a", 1, 3000);
    let (b, _) = server.add_track("b", 2, 3000);
    let (c, c_data) = server.add_track("c", 3, 300_000);
    {
        let cache = open_cache_without_retries(dir.path()).await;
        let path_a = cache.fetch_to_path(&a).await.unwrap();
        cache.fetch_to_path(&b).await.unwrap();
        server.cut(100_000, 1);
        let err = cache.fetch_to_path(&c).await.unwrap_err();
        assert!(matches!(err, CacheError::Network { .. }), "{err}");
        // Damage: a's file vanishes; junk appears in files/ and partial/.
        std::fs::remove_file(path_a).unwrap();
    }
    let files = dir.path().join("files");
    std::fs::write(files.join("not-a-hash"), b"junk").unwrap();
    std::fs::write(files.join("f".repeat(64)), b"orphan").unwrap();
    std::fs::write(dir.path().join("partial").join("stray.part"), b"x").unwrap();

    let cache = open_cache(dir.path()).await;
    assert_eq!(
        cache.last_reconcile(),
        &ReconcileReport {
            orphan_files_removed: 2,
            rows_dropped: 1,
            partials_kept: 1,
            partials_removed: 1,
        }
    );
    assert!(cache.get_cached("a").await.unwrap_err().is_not_cached());
    assert!(cache.contains("b").await.unwrap());
    // The kept partial resumes.
    let got = fetch_all(&cache, &c).await;
    assert_eq!(got, c_data);
    assert_eq!(
        server.seen().last().unwrap().range.as_deref(),
        Some("bytes=100000-")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_the_wrong_size_is_not_served() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = server.add_track("a", 1, 3000);
    let path = {
        let cache = open_cache(dir.path()).await;
        cache.fetch_to_path(&a).await.unwrap()
    };
    std::fs::write(&path, b"truncated").unwrap();
    let cache = open_cache(dir.path()).await;
    assert_eq!(cache.last_reconcile().rows_dropped, 1);
    assert!(cache.get_cached("a").await.unwrap_err().is_not_cached());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_partial_is_finished_without_the_network() {
    // A crash after the last byte but before the rename leaves a full partial.
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, data) = server.add_track("a", 1, 200_000);
    server.cut(199_999, 1);
    leave_partial(dir.path(), &a).await;
    // Append the last byte by hand, as if it had arrived before the crash.
    let part = std::fs::read_dir(dir.path().join("partial"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&part).unwrap();
    assert_eq!(bytes.len(), 199_999);
    bytes.push(data[199_999]);
    std::fs::write(&part, bytes).unwrap();
    server.shutdown().await;
    let cache = open_cache(dir.path()).await;
    let got = fetch_all(&cache, &a).await;
    assert_eq!(got, data);
}

//! A file this device already has (one it just uploaded) goes into the cache
//! without a download, verified like one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use jamz_cache::CacheError;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_file_is_served_without_a_request() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (track, data) = server.add_track("a", 7, 200_000);
    let local = dir.path().join("song.mp3");
    std::fs::write(&local, &data).unwrap();
    let cache = open_cache(&dir.path().join("cache")).await;

    let path = cache.import_file(&track, &local).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let before = server.requests();
    assert_eq!(fetch_all(&cache, &track).await, data);
    assert_eq!(
        server.requests(),
        before,
        "the imported track was fetched again"
    );
    let stats = cache.stats().await.unwrap();
    assert_eq!((stats.tracks, stats.bytes), (1, 200_000));
    // Importing it again changes nothing.
    cache.import_file(&track, &local).await.unwrap();
    assert_eq!(cache.stats().await.unwrap().tracks, 1);
    // It survives a restart like a downloaded track.
    drop(cache);
    let cache = open_cache(&dir.path().join("cache")).await;
    assert_eq!(read_cached(&cache, &track.id).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_the_track_is_refused_and_leaves_nothing() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (track, mut data) = server.add_track("a", 7, 50_000);
    data[10] ^= 0xff; // changed since it was uploaded
    let local = dir.path().join("song.mp3");
    std::fs::write(&local, &data).unwrap();
    let cache = open_cache(&dir.path().join("cache")).await;

    let e = cache.import_file(&track, &local).await.unwrap_err();
    assert!(matches!(e, CacheError::HashMismatch { .. }), "{e}");
    assert_eq!(cache.stats().await.unwrap().tracks, 0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache/partial"))
        .unwrap()
        .chain(std::fs::read_dir(dir.path().join("cache/files")).unwrap())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let e = cache
        .import_file(&track, &dir.path().join("missing.mp3"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("opening the file to cache"), "{e}");
}

//! Eviction order, pinning, byte limits, stats, remove and clear.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use jamz_cache::{Cache, CacheConfig};
use support::*;

fn ids(entries: &[jamz_cache::CachedEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.stored.id.as_str()).collect()
}

async fn cache_with(dir: &std::path::Path, max_tracks: usize, max_bytes: u64) -> Cache {
    let cfg = CacheConfig {
        max_tracks,
        max_bytes,
        ..test_config()
    };
    Cache::open(dir, cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_recently_played_goes_first_when_over_the_count() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with(dir.path(), 3, u64::MAX).await;
    let tracks: Vec<_> = (0..5)
        .map(|i| server.add_track(&format!("t{i}"), 100 + i, 1000).0)
        .collect();
    for t in &tracks[..3] {
        cache.fetch_to_path(t).await.unwrap();
    }
    // Play t0 and t1: t2 is now the least recently used.
    cache.mark_played("t0").await.unwrap();
    cache.mark_played("t1").await.unwrap();
    cache.mark_played("t0").await.unwrap();
    cache.fetch_to_path(&tracks[3]).await.unwrap();
    assert_eq!(ids(&cache.entries().await.unwrap()), ["t1", "t0", "t3"]);
    cache.fetch_to_path(&tracks[4]).await.unwrap();
    assert_eq!(ids(&cache.entries().await.unwrap()), ["t0", "t3", "t4"]);
    let e = cache.entry("t0").await.unwrap().unwrap();
    assert_eq!(e.play_count, 2);
    assert!(e.last_played.is_some());
    // Evicted files are gone from disk, kept ones are there.
    assert_eq!(list(&dir.path().join("files")).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_tracks_are_never_evicted() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with(dir.path(), 2, u64::MAX).await;
    let tracks: Vec<_> = (0..4)
        .map(|i| server.add_track(&format!("p{i}"), 200 + i, 500).0)
        .collect();
    // The playlist (p0, p1) is pinned before it is even cached.
    cache.set_pinned(&["p0".into(), "p1".into()]).await.unwrap();
    for t in &tracks {
        cache.fetch_to_path(t).await.unwrap();
    }
    // Over the limit: only pinned ones and the newest may stay.
    let left = cache.entries().await.unwrap();
    assert_eq!(ids(&left), ["p0", "p1", "p3"]);
    assert!(left[0].pinned && left[1].pinned && !left[2].pinned);
    // Unpinning p0 lets eviction bring the cache back to 2.
    cache.unpin("p0").await.unwrap();
    assert_eq!(ids(&cache.entries().await.unwrap()), ["p1", "p3"]);
}

/// A playlist longer than the cache's limits (docs: "the playlist's tracks are pinned and
/// never evicted"): every pinned track stays, over both limits; what is not on the playlist
/// makes way, and a limit lowered below the playlist evicts only unpinned tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_larger_than_the_limits_stays_whole() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Room for 2 tracks or 2,500 bytes; the playlist is 4 tracks of 1,000 bytes.
    let cache = cache_with(dir.path(), 2, 2_500).await;
    let playlist: Vec<_> = (0..4)
        .map(|i| server.add_track(&format!("pl{i}"), 400 + i, 1_000).0)
        .collect();
    let other = server.add_track("other", 500, 1_000).0;
    cache.fetch_to_path(&other).await.unwrap();
    cache
        .set_pinned(&playlist.iter().map(|t| t.id.clone()).collect::<Vec<_>>())
        .await
        .unwrap();
    for t in &playlist {
        cache.fetch_to_path(t).await.unwrap();
    }
    let left = cache.entries().await.unwrap();
    let mut kept = ids(&left);
    kept.sort_unstable();
    assert_eq!(kept, ["pl0", "pl1", "pl2", "pl3"], "{left:?}");
    assert!(left.iter().all(|e| e.pinned));
    // Every pinned track is still served from disk.
    for t in &playlist {
        assert!(cache.get_cached(&t.id).await.is_ok(), "{}", t.id);
    }
    assert_eq!(list(&dir.path().join("files")).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_limit_evicts_until_under_budget() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with(dir.path(), 50, 25_000).await;
    for (i, size) in [10_000usize, 10_000, 4_000, 8_000].into_iter().enumerate() {
        let t = server.add_track(&format!("b{i}"), 300 + i as u64, size).0;
        cache.fetch_to_path(&t).await.unwrap();
    }
    // 10k+10k+4k = 24k fits; adding 8k makes 32k: b0 goes (22k).
    let s = cache.stats().await.unwrap();
    assert_eq!(ids(&cache.entries().await.unwrap()), ["b1", "b2", "b3"]);
    assert_eq!((s.tracks, s.bytes), (3, 22_000));
    // Lowering the budget evicts at once.
    cache.set_limits(50, 12_000).await.unwrap();
    assert_eq!(ids(&cache.entries().await.unwrap()), ["b2", "b3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_after_a_known_sequence() {
    let mut server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let (a, _) = server.add_track("a", 1, 1000);
    let (b, _) = server.add_track("b", 2, 2000);
    cache.get_or_fetch(&a).await.unwrap(); // miss
    cache.fetch_to_path(&a).await.unwrap(); // neither (waits for the same download)
    cache.get_or_fetch(&a).await.unwrap(); // hit
    cache.get_or_fetch(&a).await.unwrap(); // hit
    cache.get_cached("b").await.unwrap_err(); // miss
    cache.get_or_fetch(&b).await.unwrap(); // miss
    cache.fetch_to_path(&b).await.unwrap();
    server.shutdown().await;
    cache.get_cached("b").await.unwrap(); // hit
    let s = cache.stats().await.unwrap();
    assert_eq!((s.hits, s.misses), (3, 3));
    assert!((s.hit_rate - 0.5).abs() < 1e-9);
    assert_eq!((s.tracks, s.bytes), (2, 3000));
    assert_eq!(s.downloads_in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_content_under_two_ids_is_one_file() {
    let server = TestServer::start().await;
    let data = content(9, 5000);
    server.add("k1", data.clone());
    server.add("k2", data.clone());
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    cache
        .fetch_to_path(&server.track("one", "k1"))
        .await
        .unwrap();
    cache
        .fetch_to_path(&server.track("two", "k2"))
        .await
        .unwrap();
    assert_eq!(list(&dir.path().join("files")), [sha_hex(&data)]);
    assert_eq!(cache.stats().await.unwrap().bytes, 5000);
    assert!(cache.remove("one").await.unwrap());
    // Still referenced by "two".
    assert_eq!(read_cached(&cache, "two").await, data);
    assert!(cache.remove("two").await.unwrap());
    assert!(list(&dir.path().join("files")).is_empty());
    assert!(!cache.remove("two").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_removes_everything_but_the_pins() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let (a, _) = server.add_track("a", 1, 1000);
    cache.set_pinned(&["a".into()]).await.unwrap();
    cache.fetch_to_path(&a).await.unwrap();
    cache.clear().await.unwrap();
    assert_eq!(cache.stats().await.unwrap().tracks, 0);
    assert!(list(&dir.path().join("files")).is_empty());
    cache.fetch_to_path(&a).await.unwrap();
    assert!(cache.entry("a").await.unwrap().unwrap().pinned);
}

//! Fetching against a real local HTTP server: hits, misses, resumption, bad bytes,
//! streaming before the end, offline behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use std::time::Duration;

use jamz_cache::{Cache, CacheConfig, CacheError};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_downloads_and_verifies_then_hits_without_network() {
    init_tracing();
    let mut server = TestServer::start().await;
    let (track, data) = server.add_track("song1", 1, 300_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;

    let got = fetch_all(&cache, &track).await;
    assert_eq!(got, data);
    assert_eq!(server.requests(), 1);

    server.shutdown().await;
    let reader = cache.get_or_fetch(&track).await.unwrap();
    assert!(reader.is_complete());
    let path = reader.final_path().unwrap();
    assert_eq!(path.file_name().unwrap().to_str().unwrap(), sha_hex(&data));
    assert_eq!(read_all(reader).await.unwrap(), data);

    let s = cache.stats().await.unwrap();
    assert_eq!((s.tracks, s.bytes, s.hits, s.misses), (1, 300_000, 1, 1));
    let e = cache.entry("song1").await.unwrap().unwrap();
    assert_eq!(e.stored.title.as_deref(), Some("Title song1"));
    assert_eq!(e.stored.sha256, sha_hex(&data));
    assert_eq!(list(&dir.path().join("partial")), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_resumed_with_range() {
    init_tracing();
    let server = TestServer::start().await;
    let (track, data) = server.add_track("cut", 2, 500_000);
    server.cut(123_456, 2);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;

    let got = fetch_all(&cache, &track).await;
    assert_eq!(got, data);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=123456-"));
    assert_eq!(seen[2].range.as_deref(), Some("bytes=246912-"));
    let etag = format!("\"{}\"", sha_hex(&data));
    assert_eq!(seen[1].if_range.as_deref(), Some(etag.as_str()));
    assert!(cache.contains("cut").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_rejected_and_never_served() {
    init_tracing();
    let server = TestServer::start().await;
    let (track, _data) = server.add_track("bad", 3, 200_000);
    server.state.sw.wrong_bytes.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;

    let reader = cache.get_or_fetch(&track).await.unwrap();
    let err = read_all(reader).await.unwrap_err();
    assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    let err = cache.fetch_to_path(&track).await.unwrap_err();
    assert!(
        matches!(err, CacheError::HashMismatch { ref id, .. } if id == "bad"),
        "{err}"
    );
    assert!(cache.get_cached("bad").await.unwrap_err().is_not_cached());
    assert_eq!(list(&dir.path().join("files")), Vec::<String>::new());
    assert_eq!(list(&dir.path().join("partial")), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_hash_is_checked_when_the_track_has_no_sha256() {
    let server = TestServer::start().await;
    let (mut track, _) = server.add_track("noetag", 4, 50_000);
    track.sha256 = None;
    track.size = None;
    server.state.sw.wrong_bytes.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let err = cache.fetch_to_path(&track).await.unwrap_err();
    assert!(matches!(err, CacheError::HashMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_declared_size_is_rejected() {
    let server = TestServer::start().await;
    let (mut track, _) = server.add_track("size", 5, 10_000);
    track.size = Some(10_001);
    track.sha256 = None;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let err = cache.fetch_to_path(&track).await.unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::SizeMismatch {
                expected: 10_001,
                got: 10_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(!cache.contains("size").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ignoring_range_still_yields_the_right_file() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("norange", 6, 400_000);
    server.state.sw.ignore_range.store(true, Ordering::SeqCst);
    server.cut(150_000, 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let got = fetch_all(&cache, &track).await;
    assert_eq!(got, data);
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_begins_before_the_download_ends() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("stream", 7, 600_000);
    server.close_gate_at(100_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;

    let mut reader = cache.get_or_fetch(&track).await.unwrap();
    assert_eq!(reader.len(), Some(600_000));
    // The first 100 000 bytes are readable while the server holds the rest.
    let first = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 100_000];
        reader.read_exact(&mut buf).unwrap();
        assert!(!reader.is_complete());
        (reader, buf)
    })
    .await
    .unwrap();
    let (mut reader, buf) = first;
    assert_eq!(buf, data[..100_000]);
    server.open_gate();
    let rest = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        reader.read_to_end(&mut v).unwrap();
        // Seeking works on the (now complete) reader.
        reader.seek(SeekFrom::Start(10)).unwrap();
        let mut b = [0u8; 5];
        reader.read_exact(&mut b).unwrap();
        (v, b, reader.is_complete())
    })
    .await
    .unwrap();
    assert_eq!(rest.0, data[100_000..]);
    assert_eq!(rest.1, data[10..15]);
    assert!(rest.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_bytes_not_arriving_times_out_instead_of_hanging() {
    let server = TestServer::start().await;
    let (track, _) = server.add_track("stall", 8, 200_000);
    server.close_gate_at(50_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = CacheConfig {
        read_wait_timeout: Duration::from_millis(300),
        ..test_config()
    };
    let cache = Cache::open(dir.path(), cfg).await.unwrap();
    let mut reader = cache.get_or_fetch(&track).await.unwrap();
    let err = tokio::task::spawn_blocking(move || {
        reader.seek(SeekFrom::Start(60_000)).unwrap();
        let mut b = [0u8; 10];
        reader.read(&mut b).unwrap_err()
    })
    .await
    .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    server.open_gate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_an_error_naming_the_track() {
    let server = TestServer::start().await;
    let mut track = server.add_track("x", 9, 10).0;
    track.id = "ghost".into();
    track.url = server.url("missing");
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let err = cache.get_or_fetch(&track).await.unwrap_err();
    assert!(
        matches!(err, CacheError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_cached_plays_and_uncached_fails_at_once() {
    let mut server = TestServer::start().await;
    let (cached, data) = server.add_track("have", 10, 100_000);
    let (uncached, _) = server.add_track("havenot", 11, 100_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    cache.fetch_to_path(&cached).await.unwrap();
    server.shutdown().await;

    assert_eq!(read_cached(&cache, "have").await, data);
    assert!(
        cache
            .get_cached("havenot")
            .await
            .unwrap_err()
            .is_not_cached()
    );
    let err = cache.get_or_fetch(&uncached).await.unwrap_err();
    assert!(matches!(err, CacheError::Offline { .. }), "{err}");

    let mut nowhere = uncached.clone();
    nowhere.url = dead_url();
    let err = cache.get_or_fetch(&nowhere).await.unwrap_err();
    assert!(matches!(err, CacheError::Offline { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_download() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("shared", 12, 300_000);
    server.close_gate_at(1000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let r1 = cache.get_or_fetch(&track).await.unwrap();
    let r2 = cache.get_or_fetch(&track).await.unwrap();
    let d = cache.downloads();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].id.as_str(), d[0].readers, d[0].total),
        ("shared", 2, Some(300_000))
    );
    assert!(d[0].bytes <= 1000);
    server.open_gate();
    let (a, b) = tokio::join!(read_all(r1), read_all(r2));
    assert_eq!(a.unwrap(), data);
    assert_eq!(b.unwrap(), data);
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_download_survives_a_restart_and_resumes() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("resume", 13, 400_000);
    server.cut(100_000, 1);
    let dir = tempfile::tempdir().unwrap();
    let err = leave_partial(dir.path(), &track).await;
    assert!(matches!(err, CacheError::Network { .. }), "{err}");
    let cache = open_cache(dir.path()).await;
    assert_eq!(cache.last_reconcile().partials_kept, 1);
    let got = fetch_all(&cache, &track).await;
    assert_eq!(got, data);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_changed_on_the_server_during_a_resume_is_handled() {
    // The partial holds bytes of version 1; the server now has version 2 (another
    // ETag), so If-Range fails and the whole new file comes back.
    let server = TestServer::start().await;
    let (mut track, _v1) = server.add_track("changing", 14, 300_000);
    let v2 = content(15, 300_000);
    server.add("changing-v2", v2.clone());
    track.sha256 = None;
    track.size = None;
    server.cut(80_000, 1);
    let dir = tempfile::tempdir().unwrap();
    leave_partial(dir.path(), &track).await;
    server.replace("changing", "changing-v2");
    let cache = open_cache(dir.path()).await;
    let path = cache.fetch_to_path(&track).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), v2);
    assert_eq!(path.file_name().unwrap().to_str().unwrap(), sha_hex(&v2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_trickle_completes() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("slow", 16, 64 * 1024);
    server.state.sw.chunk.store(2048, Ordering::SeqCst);
    server.state.sw.trickle_us.store(2_000, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let got = fetch_all(&cache, &track).await;
    assert_eq!(got, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_goes_only_to_the_configured_origin() {
    let server = TestServer::start().await;
    let (track, _) = server.add_track("auth", 17, 1000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    cache.set_auth(Some(("http://elsewhere/".into(), "secret".into())));
    cache.fetch_to_path(&track).await.unwrap();
    cache.remove("auth").await.unwrap();
    cache.set_auth(Some((format!("http://{}/", server.addr), "tok".into())));
    cache.fetch_to_path(&track).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[1].authorization.as_deref(), Some("Bearer tok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_refused_before_any_io() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let t = jamz_cache::CacheTrack {
        id: "t".into(),
        url: "ftp://x/y".into(),
        ..Default::default()
    };
    let err = cache.get_or_fetch(&t).await.unwrap_err();
    assert!(matches!(err, CacheError::InvalidTrack { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _cache = open_cache(dir.path()).await;
    let err = Cache::open(dir.path(), test_config()).await.unwrap_err();
    assert!(matches!(err, CacheError::Locked { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_with_a_partial_download_fails_at_once_too() {
    let mut server = TestServer::start().await;
    let (track, _) = server.add_track("half", 18, 300_000);
    server.cut(100_000, 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache_without_retries(dir.path()).await;
    cache.fetch_to_path(&track).await.unwrap_err();
    server.shutdown().await;
    let err = cache.get_or_fetch(&track).await.unwrap_err();
    assert!(matches!(err, CacheError::Offline { .. }), "{err}");
    assert!(cache.get_cached("half").await.unwrap_err().is_not_cached());
}

#[test]
fn handles_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Cache>();
    send::<jamz_cache::TrackReader>();
    send_sync::<CacheError>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverifiable_partial_is_not_trusted_after_a_restart() {
    // No sha256 on the track and an opaque ETag: kept bytes could not be checked
    // at the end, so a new run starts over instead of resuming.
    let server = TestServer::start().await;
    let (mut track, data) = server.add_track("opaque", 19, 300_000);
    track.sha256 = None;
    server.state.sw.opaque_etag.store(true, Ordering::SeqCst);
    server.cut(100_000, 1);
    let dir = tempfile::tempdir().unwrap();
    leave_partial(dir.path(), &track).await;
    let cache = open_cache(dir.path()).await;
    let path = cache.fetch_to_path(&track).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_whose_content_changed_is_fetched_again() {
    let server = TestServer::start().await;
    let (v1, _) = server.add_track("song", 20, 20_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    cache.fetch_to_path(&v1).await.unwrap();
    // Same id, new file on the server, new sha256 in the track.
    let data2 = content(21, 30_000);
    server.add("song", data2.clone());
    let v2 = server.track("song", "song");
    assert_ne!(v1.sha256, v2.sha256);
    let got = fetch_all(&cache, &v2).await;
    assert_eq!(got, data2);
    assert_eq!(list(&dir.path().join("files")), [sha_hex(&data2)]);
    assert_eq!(cache.stats().await.unwrap().tracks, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_past_the_downloaded_bytes_waits_for_them() {
    let server = TestServer::start().await;
    let (track, data) = server.add_track("wait", 22, 400_000);
    server.close_gate_at(50_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let mut reader = cache.get_or_fetch(&track).await.unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let blocked = tokio::task::spawn_blocking(move || {
        // The decoder probes the end of the file (ID3v1, MP4 atoms) first.
        let end = reader.seek(SeekFrom::End(-16)).unwrap();
        assert_eq!(end, 400_000 - 16);
        tx.send(reader.available()).unwrap();
        let mut tail = [0u8; 16];
        reader.read_exact(&mut tail).unwrap(); // waits for the gate
        tail
    });
    let available = tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    assert!(available <= 50_000, "{available}");
    server.open_gate();
    assert_eq!(blocked.await.unwrap(), data[400_000 - 16..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_past_bytes_that_changed_on_the_server_gets_an_error_not_a_mix() {
    let server = TestServer::start().await;
    let (mut track, v1) = server.add_track("mix", 23, 300_000);
    track.sha256 = None; // the ETag names the content
    track.size = None;
    server.cut(80_000, 1);
    let dir = tempfile::tempdir().unwrap();
    leave_partial(dir.path(), &track).await;
    // The server now has other content under the same URL; hold its body.
    let v2 = content(24, 300_000);
    server.add("mix-v2", v2.clone());
    server.replace("mix", "mix-v2");
    server.close_gate_at(0);
    let cache = open_cache(dir.path()).await;
    let mut reader = cache.get_or_fetch(&track).await.unwrap();
    let (reader, first) = tokio::task::spawn_blocking(move || {
        let mut b = vec![0u8; 1000];
        reader.read_exact(&mut b).unwrap();
        (reader, b)
    })
    .await
    .unwrap();
    assert_eq!(first, v1[..1000]); // the kept bytes, before the new body arrived
    server.open_gate();
    let err = read_all(reader).await.unwrap_err();
    assert!(err.to_string().contains("content changed"), "{err}");
    // The cache itself ends up with the new content only.
    let path = cache.fetch_to_path(&track).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), v2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_downloads_and_frees_the_directory_at_once() {
    let server = TestServer::start().await;
    let (stalled, _) = server.add_track("stalled", 9, 200_000);
    let (song, data) = server.add_track("song", 10, 50_000);
    server.close_gate_at(50_000);
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    assert_eq!(fetch_all(&cache, &song).await, data);
    // A clone held by some task, and a download stuck mid-file.
    let lingering = cache.clone();
    let downloading = {
        let c = cache.clone();
        tokio::spawn(async move { c.fetch_to_path(&stalled).await })
    };
    let second = Cache::open(dir.path(), test_config()).await;
    assert!(
        matches!(second, Err(CacheError::Locked { .. })),
        "{second:?}"
    );

    cache.close().await;
    // The download was stopped, not left to hold the directory.
    let stopped = tokio::time::timeout(Duration::from_secs(10), downloading)
        .await
        .expect("the download did not stop")
        .unwrap();
    assert!(stopped.is_err(), "{stopped:?}");
    // Another cache owns the directory at once, with what was cached.
    let reopened = Cache::open(dir.path(), test_config()).await.unwrap();
    assert_eq!(read_cached(&reopened, "song").await, data);
    // The old handles touch nothing any more.
    assert!(lingering.is_closed());
    assert!(matches!(lingering.stats().await, Err(CacheError::Closed)));
    assert!(matches!(
        lingering.fetch_to_path(&song).await,
        Err(CacheError::Closed)
    ));
    server.open_gate();
}

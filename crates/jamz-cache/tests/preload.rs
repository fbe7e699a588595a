//! Preload: progress, skipping cached tracks, failures, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use jamz_cache::{CacheError, CancellationToken, PreloadProgress};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preload_fetches_in_order_with_progress_and_skips_cached() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let sizes = [700_000usize, 20_000, 900_000];
    let tracks: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| server.add_track(&format!("pl{i}"), 40 + i as u64, *s).0)
        .collect();
    cache.fetch_to_path(&tracks[1]).await.unwrap();
    let requests_before = server.requests();

    // pl0 is held at 300 000 bytes until progress within it has been reported, so the
    // download cannot finish before the preload sees its bytes arrive.
    server.close_gate_at(300_000);
    let server_state = Arc::clone(&server.state);
    let seen: Arc<Mutex<Vec<PreloadProgress>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let report = cache
        .preload(
            &tracks,
            move |p| {
                sink.lock().unwrap().push(p.clone());
                if p.bytes_done > 0 {
                    server_state.gate.send_replace(true);
                }
            },
            &CancellationToken::new(),
        )
        .await;
    assert_eq!(report.fetched, ["pl0", "pl2"]);
    assert_eq!(report.already_cached, ["pl1"]);
    assert!(report.failed.is_empty() && !report.cancelled);
    assert_eq!(server.requests() - requests_before, 2);

    let seen = seen.lock().unwrap().clone();
    let total: u64 = sizes.iter().map(|s| *s as u64).sum();
    let last = seen.last().unwrap();
    assert_eq!((last.items_done, last.items_total), (3, 3));
    assert_eq!((last.bytes_done, last.bytes_total), (total, total));
    // Monotonic, and byte progress reported within items (not only at their ends).
    assert!(
        seen.windows(2)
            .all(|w| w[0].bytes_done <= w[1].bytes_done && w[0].items_done <= w[1].items_done)
    );
    assert!(seen.iter().any(|p| p.items_done == 0 && p.bytes_done > 0));
    // Preloads are neither hits nor misses.
    let s = cache.stats().await.unwrap();
    assert_eq!((s.hits, s.misses, s.tracks), (0, 0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_track_does_not_stop_the_preload() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let (a, _) = server.add_track("a", 1, 1000);
    let (b, _) = server.add_track("b", 2, 1000);
    let mut gone = a.clone();
    gone.id = "gone".into();
    gone.url = server.url("nothing-here");
    let report = cache
        .preload(&[a, gone, b], |_| {}, &CancellationToken::new())
        .await;
    assert_eq!(report.fetched, ["a", "b"]);
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(
        report.failed[0].1,
        CacheError::HttpStatus { status: 404, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_preload_stops_it_and_keeps_the_partial_for_later() {
    init_tracing();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let (a, a_data) = server.add_track("a", 1, 500_000);
    let (b, _) = server.add_track("b", 2, 1000);
    // The server holds `a` at 300 000 bytes; cancel once progress shows bytes.
    server.close_gate_at(300_000);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let report = cache
        .preload(
            &[a.clone(), b],
            move |p| {
                if p.bytes_done >= 256 * 1024 {
                    c2.cancel();
                }
            },
            &cancel,
        )
        .await;
    assert!(report.cancelled);
    assert!(report.fetched.is_empty());
    assert!(!cache.contains("b").await.unwrap());
    server.open_gate();
    // Playing `a` now resumes from the kept bytes rather than starting over.
    let got = fetch_all(&cache, &a).await;
    assert_eq!(got, a_data);
    let last = server.seen().last().unwrap().clone();
    let from: u64 = last
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("the last request is not a resume: {:?}", server.seen()));
    assert!(from >= 256 * 1024, "resumed from {from}");
}

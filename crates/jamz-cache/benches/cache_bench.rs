//! Figures for the cache: cache-hit open-to-first-byte latency, fill throughput
//! against a loopback server, index operations per second at 10 000 entries.
//! Run with `cargo bench -p jamz-cache`. Prints; asserts nothing about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use jamz_cache::StoredTrack;
use jamz_cache::index::Index;
use jamz_cache::{Cache, CacheConfig, CacheTrack};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use support::*;

/// Entries in the index benchmark (the figure).
const INDEX_ENTRIES: usize = 10_000;
/// Latency samples: enough for a stable p99.
const HIT_SAMPLES: usize = 2_000;
/// Fill benchmark: tracks x size (a 16 MiB track is ~17 min of 128 kbit/s audio).
const FILL_TRACKS: u64 = 8;
const FILL_SIZE: usize = 16 * 1024 * 1024;
/// Seed of every RNG here.
const SEED: u64 = 0xbe_0c4;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<44} n={:<6} median {:>8.1} us  p99 {:>8.1} us  mean {:>8.1} us",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e6,
        percentile(&v, 0.99).as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

fn rate(name: &str, ops: usize, took: Duration) {
    println!(
        "{name:<44} {ops:>7} ops in {:>8.1} ms = {:>10.0} ops/s",
        took.as_secs_f64() * 1e3,
        ops as f64 / took.as_secs_f64()
    );
}

async fn hit_latency() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let tracks: Vec<CacheTrack> = (0..20)
        .map(|i| server.add_track(&format!("h{i}"), i, 1024 * 1024).0)
        .collect();
    for t in &tracks {
        cache.fetch_to_path(t).await.unwrap();
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut via_fetch = Vec::with_capacity(HIT_SAMPLES);
    let mut via_cached = Vec::with_capacity(HIT_SAMPLES);
    let mut b = [0u8; 1];
    for _ in 0..HIT_SAMPLES {
        let t = &tracks[rng.random_range(0..tracks.len())];
        let t0 = Instant::now();
        let mut r = cache.get_or_fetch(t).await.unwrap();
        r.read_exact(&mut b).unwrap();
        via_fetch.push(t0.elapsed());
        let t0 = Instant::now();
        let mut r = cache.get_cached(&t.id).await.unwrap();
        r.read_exact(&mut b).unwrap();
        via_cached.push(t0.elapsed());
    }
    println!("== cache hit: open to first byte (1 MiB tracks, 20 cached)");
    report("get_or_fetch (hit) + read 1 byte", via_fetch);
    report("get_cached + read 1 byte", via_cached);
}

async fn fill_throughput() {
    let server = TestServer::start().await;
    let tracks: Vec<CacheTrack> = (0..FILL_TRACKS)
        .map(|i| server.add_track(&format!("f{i}"), 100 + i, FILL_SIZE).0)
        .collect();
    let total = FILL_TRACKS as f64 * FILL_SIZE as f64 / (1024.0 * 1024.0);
    println!(
        "== fill throughput against a loopback server ({FILL_TRACKS} x {} MiB)",
        FILL_SIZE >> 20
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let t0 = Instant::now();
    for t in &tracks {
        cache.fetch_to_path(t).await.unwrap();
    }
    let took = t0.elapsed();
    println!(
        "{:<44} {total:>7.0} MiB in {:>8.1} ms = {:>8.1} MiB/s",
        "sequential (verify + fsync + index each)",
        took.as_secs_f64() * 1e3,
        total / took.as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in tracks.clone() {
        let c = cache.clone();
        set.spawn(async move { c.fetch_to_path(&t).await.unwrap() });
    }
    while set.join_next().await.is_some() {}
    let took = t0.elapsed();
    println!(
        "{:<44} {total:>7.0} MiB in {:>8.1} ms = {:>8.1} MiB/s",
        format!("{FILL_TRACKS} concurrent downloads"),
        took.as_secs_f64() * 1e3,
        total / took.as_secs_f64()
    );

    // Streaming: a reader following the download.
    let dir = tempfile::tempdir().unwrap();
    let cache = open_cache(dir.path()).await;
    let t0 = Instant::now();
    let r = cache.get_or_fetch(&tracks[0]).await.unwrap();
    let first = t0.elapsed();
    let n = read_all(r).await.unwrap().len();
    let took = t0.elapsed();
    println!(
        "{:<44} first byte after {:>6.2} ms, {} MiB read in {:>7.1} ms = {:>8.1} MiB/s",
        "miss: get_or_fetch + read while downloading",
        first.as_secs_f64() * 1e3,
        n >> 20,
        took.as_secs_f64() * 1e3,
        (n as f64 / (1024.0 * 1024.0)) / took.as_secs_f64()
    );
}

fn entry(i: usize, sha: String) -> StoredTrack {
    StoredTrack {
        id: format!("track-{i}"),
        url: format!("http://example.invalid/api/music/files/{i}"),
        etag: Some(format!("\"{sha}\"")),
        sha256: sha,
        size: 1,
        mime: Some("audio/mpeg".into()),
        title: Some(format!("Title {i}")),
        artist: Some("Artist".into()),
        duration: Some(200.0),
        cached_at: 1_700_000_000_000,
    }
}

async fn index_ops() {
    println!("== index operations at {INDEX_ENTRIES} entries (SQLite WAL, synchronous=NORMAL)");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(SEED);
    let shas: Vec<String> = (0..INDEX_ENTRIES + 1000)
        .map(|i| sha_hex(format!("content {i}").as_bytes()))
        .collect();
    {
        let mut idx = Index::open(&dir.path().join("bench.sqlite3")).unwrap();
        let t0 = Instant::now();
        for (i, sha) in shas.iter().take(INDEX_ENTRIES).enumerate() {
            idx.insert(&entry(i, sha.clone())).unwrap();
        }
        rate(
            "Index::insert (one transaction each)",
            INDEX_ENTRIES,
            t0.elapsed(),
        );

        let n = 20_000;
        let t0 = Instant::now();
        for _ in 0..n {
            let i = rng.random_range(0..INDEX_ENTRIES);
            assert!(idx.get(&format!("track-{i}")).unwrap().is_some());
        }
        rate("Index::get", n, t0.elapsed());

        let t0 = Instant::now();
        for k in 0..n {
            let i = rng.random_range(0..INDEX_ENTRIES);
            idx.mark_played(&format!("track-{i}"), k as i64).unwrap();
        }
        rate("Index::mark_played", n, t0.elapsed());

        let n = 1000;
        let t0 = Instant::now();
        for k in 0..n {
            let i = INDEX_ENTRIES + k;
            idx.insert(&entry(i, shas[i].clone())).unwrap();
            let gone = idx
                .evict(INDEX_ENTRIES, u64::MAX, Some(&format!("track-{i}")))
                .unwrap();
            assert_eq!(gone.len(), 1);
        }
        rate("Index::insert + evict one (at the limit)", n, t0.elapsed());

        let t0 = Instant::now();
        let n = 200;
        for _ in 0..n {
            idx.recount().unwrap();
        }
        rate("Index::recount (full scan, once at open)", n, t0.elapsed());
    }

    // Through the async API, with a real file per row (so reconciliation keeps them).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    {
        let mut idx = Index::open(&dir.path().join("index.sqlite3")).unwrap();
        for (i, sha) in shas.iter().take(INDEX_ENTRIES).enumerate() {
            std::fs::write(dir.path().join("files").join(sha), b"x").unwrap();
            idx.insert(&entry(i, sha.clone())).unwrap();
        }
    }
    let cfg = CacheConfig {
        max_tracks: INDEX_ENTRIES,
        ..test_config()
    };
    let t0 = Instant::now();
    let cache = Cache::open(dir.path(), cfg).await.unwrap();
    println!(
        "{:<44} {:>8.1} ms",
        format!("Cache::open + reconcile of {INDEX_ENTRIES} entries"),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let n = 5_000;
    let t0 = Instant::now();
    for _ in 0..n {
        let i = rng.random_range(0..INDEX_ENTRIES);
        cache.get_cached(&format!("track-{i}")).await.unwrap();
    }
    rate("Cache::get_cached (lookup + open file)", n, t0.elapsed());
    let t0 = Instant::now();
    for _ in 0..n {
        let i = rng.random_range(0..INDEX_ENTRIES);
        cache.mark_played(&format!("track-{i}")).await.unwrap();
    }
    rate("Cache::mark_played (spawn_blocking)", n, t0.elapsed());
    let t0 = Instant::now();
    for _ in 0..n {
        cache.stats().await.unwrap();
    }
    rate("Cache::stats", n, t0.elapsed());
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        hit_latency().await;
        fill_throughput().await;
        index_ops().await;
    });
}

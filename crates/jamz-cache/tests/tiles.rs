//! The map tile cache against a real HTTP tile server on loopback: tiles are
//! fetched once and then served from disk, also with the server gone; the byte
//! budget holds with the least recently used tiles leaving first; damaged files
//! are fetched again (or give a clear error offline); bad answers are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jamz_cache::tiles::{TileCache, TileCacheConfig, TileError, TileKey, TileSource};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;

/// What the tile server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `image/png`, `size` bytes that depend on the tile.
    Png {
        size: usize,
    },
    NotFound,
    Html,
}

/// A tiny HTTP/1.1 tile server (keep-alive). Stopping it closes every
/// connection, as a dead zone would.
struct TileServer {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    tasks: JoinSet<()>,
}

fn body_of(path: &str, size: usize) -> Vec<u8> {
    let seed = path
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    (0..size).map(|i| seed.wrapping_add(i as u8)).collect()
}

impl TileServer {
    async fn start(answer: Answer) -> TileServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let requests = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = JoinSet::new();
        let (a, r) = (answer.clone(), requests.clone());
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    break;
                };
                let (a, r) = (a.clone(), r.clone());
                conns.spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                        loop {
                            let mut h = String::new();
                            if rd.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if h == "\r\n" {
                                break;
                            }
                        }
                        *r.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                        let answer = *a.lock().unwrap();
                        let (status, ty, body) = match answer {
                            Answer::Png { size } => ("200 OK", "image/png", body_of(&path, size)),
                            Answer::NotFound => ("404 Not Found", "text/plain", b"no".to_vec()),
                            Answer::Html => ("200 OK", "text/html", b"<html></html>".to_vec()),
                        };
                        let head = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: {ty}\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if wr.write_all(head.as_bytes()).await.is_err()
                            || wr.write_all(&body).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
            drop(conns);
        });
        TileServer {
            addr,
            answer,
            requests,
            tasks,
        }
    }

    fn source(&self) -> TileSource {
        TileSource::parse(&format!("http://{}/tiles/{{z}}/{{x}}/{{y}}.png", self.addr)).unwrap()
    }

    fn requests(&self, key: TileKey) -> usize {
        let path = format!("/tiles/{}/{}/{}.png", key.z, key.x, key.y);
        self.requests
            .lock()
            .unwrap()
            .get(&path)
            .copied()
            .unwrap_or(0)
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Stops listening and closes every open connection.
    async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn config(max_bytes: u64) -> TileCacheConfig {
    TileCacheConfig {
        max_bytes,
        fetch_timeout: Duration::from_secs(10),
        ..TileCacheConfig::default()
    }
}

fn key(z: u8, x: u32, y: u32) -> TileKey {
    TileKey::new(z, x, y).unwrap()
}

/// Every tile file under `dir` (not the `tmp/` area).
fn tile_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for source in std::fs::read_dir(dir).unwrap().flatten() {
        if source.file_name() == "tmp" || !source.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(source.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_tile_is_fetched_once_then_served_from_disk_also_offline_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TileServer::start(Answer::Png { size: 900 }).await;
    let source = server.source();
    let cache = TileCache::open(dir.path(), config(1 << 20)).await.unwrap();
    let k = key(12, 2144, 1434);

    let first = cache.tile(&source, k).await.unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.media_type, "image/png");
    assert_eq!(first.body, body_of("/tiles/12/2144/1434.png", 900));
    let second = cache.tile(&source, k).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.body, first.body);
    assert_eq!(server.requests(k), 1, "the second came from disk");

    server.stop().await;
    let offline = cache.tile(&source, k).await.unwrap();
    assert!(offline.from_cache);
    assert_eq!(offline.body, first.body);
    let stats = cache.stats().await;
    assert_eq!((stats.fetched, stats.from_cache, stats.failed), (1, 2, 0));
    assert_eq!(stats.tiles, 1);

    // A tile never seen: a clear error, nothing kept.
    let unseen = cache.tile(&source, key(12, 0, 0)).await.unwrap_err();
    let msg = unseen.to_string();
    assert!(
        msg.starts_with("map tile 12/0/0: not on this device and cannot reach the tile server"),
        "{msg}"
    );
    assert_eq!(cache.stats().await.failed, 1);

    // Another process later, same directory, server still gone.
    drop(cache);
    let reopened = TileCache::open(dir.path(), config(1 << 20)).await.unwrap();
    let after = reopened.tile(&source, k).await.unwrap();
    assert!(after.from_cache);
    assert_eq!(after.body, first.body);
}

#[tokio::test]
async fn the_byte_budget_holds_and_the_least_recently_used_tile_leaves_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = TileServer::start(Answer::Png { size: 10_000 }).await;
    let source = server.source();
    // Room for three tiles of 10,000 bytes and their headers, not four.
    let budget = 3 * 10_200;
    let cache = TileCache::open(dir.path(), config(budget)).await.unwrap();
    let (a, b, c, d) = (key(5, 1, 1), key(5, 2, 2), key(5, 3, 3), key(5, 4, 4));
    for k in [a, b, c] {
        cache.tile(&source, k).await.unwrap();
    }
    assert_eq!(cache.stats().await.tiles, 3);
    // A is used again: B is now the least recently used.
    assert!(cache.tile(&source, a).await.unwrap().from_cache);
    cache.tile(&source, d).await.unwrap();

    let stats = cache.stats().await;
    assert_eq!(stats.tiles, 3);
    assert!(
        stats.bytes <= budget,
        "{} bytes over the budget {budget}",
        stats.bytes
    );
    let on_disk: u64 = tile_files(dir.path())
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, stats.bytes, "the count agrees with the disk");
    assert_eq!(tile_files(dir.path()).len(), 3);

    for k in [a, c, d] {
        assert!(
            cache.tile(&source, k).await.unwrap().from_cache,
            "{k} was evicted"
        );
    }
    assert_eq!(server.requests(b), 1);
    assert!(
        !cache.tile(&source, b).await.unwrap().from_cache,
        "B was kept"
    );
    assert_eq!(server.requests(b), 2);

    // A smaller budget, at the next open: down to it at once.
    drop(cache);
    let smaller = TileCache::open(dir.path(), config(10_200)).await.unwrap();
    let stats = smaller.stats().await;
    assert_eq!(stats.tiles, 1);
    assert!(stats.bytes <= 10_200);
    assert_eq!(tile_files(dir.path()).len(), 1);
    // A tile larger than the whole budget is served, not kept.
    server.set(Answer::Png { size: 20_000 });
    let big = smaller.tile(&source, key(6, 0, 0)).await.unwrap();
    assert_eq!(big.body.len(), 20_000);
    assert!(smaller.stats().await.bytes <= 10_200);
    server.stop().await;
}

#[tokio::test]
async fn a_damaged_file_is_fetched_again_or_gives_a_clear_error_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server = TileServer::start(Answer::Png { size: 2_000 }).await;
    let source = server.source();
    let cache = TileCache::open(dir.path(), config(1 << 20)).await.unwrap();
    let (k, other) = (key(8, 10, 20), key(8, 11, 20));
    let good = cache.tile(&source, k).await.unwrap();
    cache.tile(&source, other).await.unwrap();
    let files = tile_files(dir.path());
    let path_of = |k: TileKey| {
        files
            .iter()
            .find(|p| p.ends_with(format!("{}-{}-{}", k.z, k.x, k.y)))
            .unwrap()
            .clone()
    };

    // Cut off: fetched again, and kept whole.
    let p = path_of(k);
    let len = p.metadata().unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let again = cache.tile(&source, k).await.unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.body, good.body);
    assert_eq!(server.requests(k), 2);
    assert_eq!(cache.stats().await.damaged, 1);
    assert!(
        cache.tile(&source, k).await.unwrap().from_cache,
        "the new copy is whole"
    );

    // Overwritten with garbage while offline: an error that says so, the file removed.
    server.stop().await;
    let p = path_of(other);
    std::fs::write(&p, b"garbage, not a tile").unwrap();
    let e = cache.tile(&source, other).await.unwrap_err();
    assert!(
        matches!(
            e,
            TileError::Unavailable {
                was_damaged: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .ends_with("(the copy on disk was damaged and has been removed)"),
        "{e}"
    );
    assert!(!p.exists());
    let stats = cache.stats().await;
    assert_eq!((stats.damaged, stats.tiles), (2, 1));

    // A damaged file found at open is dealt with at the first use, no panic.
    drop(cache);
    std::fs::write(path_of(k), [0u8; 3]).unwrap();
    let reopened = TileCache::open(dir.path(), config(1 << 20)).await.unwrap();
    assert!(reopened.tile(&source, k).await.is_err());
    assert_eq!(reopened.stats().await.tiles, 0);
}

#[tokio::test]
async fn answers_that_are_not_tiles_are_refused_and_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = TileServer::start(Answer::NotFound).await;
    let source = server.source();
    let cache = TileCache::open(dir.path(), config(1 << 20)).await.unwrap();
    let e = cache
        .tile(&source, key(3, 1, 1))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "map tile 3/1/1: not on this device and the tile server answered 404 Not Found"
    );
    server.set(Answer::Html);
    let e = cache
        .tile(&source, key(3, 1, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("the tile server sent \"text/html\", not an image"),
        "{e}"
    );
    server.set(Answer::Png {
        size: jamz_cache::tiles::MAX_TILE_BYTES + 1,
    });
    let e = cache
        .tile(&source, key(3, 1, 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than"), "{e}");
    let stats = cache.stats().await;
    assert_eq!((stats.tiles, stats.failed), (0, 3));
    assert!(tile_files(dir.path()).is_empty());
    // Stale but the server fails: the old copy rather than nothing.
    server.set(Answer::Png { size: 500 });
    let stale_cfg = TileCacheConfig {
        max_age: Duration::ZERO,
        ..config(1 << 20)
    };
    drop(cache);
    let always_stale = TileCache::open(dir.path(), stale_cfg).await.unwrap();
    let fresh = always_stale.tile(&source, key(3, 2, 2)).await.unwrap();
    assert!(!fresh.from_cache);
    server.set(Answer::NotFound);
    let old = always_stale.tile(&source, key(3, 2, 2)).await.unwrap();
    assert!(old.from_cache);
    assert_eq!(old.body, fresh.body);
    always_stale.clear().await.unwrap();
    assert_eq!(always_stale.stats().await.tiles, 0);
    assert!(tile_files(dir.path()).is_empty());
    server.stop().await;
}

//! The track cache against the real `jamz-server` process: a download that breaks off
//! leaves a partial file; the server is killed and started again; a new cache (the app
//! restarted) resumes with `Range` and `If-Range` carrying the server's own `ETag`, and
//! the server answers with the rest only. When the stored file changed behind the same
//! name in between, the resumed bytes do not belong to the kept ones: the cache starts
//! over from byte 0 and never hands out a file made of both.
//!
//! Between the cache and the server is [`LinkProxy`]: it breaks the first response off
//! after a number of bytes and shows what each request asked for and how much came back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use jamz_cache::{Cache, CacheConfig, CacheError, CacheTrack};
use jamz_e2e::{LinkProxy, TestServer};
use jamz_link::RestClient;
use jamz_link::rest::Upload;

/// Bytes of the uploaded WAV (about 1.5 MB).
const SECONDS: u32 = 8;
/// The first response is cut after this many bytes (headers included).
const CUT_AT: u64 = 400_000;

/// An 8 s stereo WAV whose samples follow `seed` (two seeds: two different files).
fn wav(seed: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    for _ in 0..48_000 * SECONDS * 2 {
        // xorshift: incompressible, different for every seed
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        w.write_sample((x >> 20) as i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

fn config(max_retries: u32) -> CacheConfig {
    CacheConfig {
        connect_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(10),
        read_wait_timeout: Duration::from_secs(20),
        retry_backoff: Duration::from_millis(5),
        max_retries,
        ..CacheConfig::default()
    }
}

/// A server with one uploaded track; the track as the cache sees it, through `proxy`.
async fn world() -> Result<(TestServer, LinkProxy, CacheTrack, Vec<u8>)> {
    let server = TestServer::start().await?;
    let rest = RestClient::new(&server.url)?;
    rest.register("ann", "ann@example.test", "correct horse battery")
        .await?;
    let data = wav(1);
    let track = rest
        .upload(Upload {
            file_name: "noise.wav".into(),
            content_type: Some("audio/wav".into()),
            data: data.clone().into(),
            ..Upload::default()
        })
        .await?;
    let proxy = LinkProxy::start(&server.addr).await?;
    let url = track.url.replacen(&server.url, &proxy.url, 1);
    assert_ne!(
        url, track.url,
        "the file URL is not on the server: {}",
        track.url
    );
    let cache_track = CacheTrack {
        id: track.id.clone(),
        url,
        sha256: track.sha256.clone(),
        size: track.size,
        etag: None,
        mime: Some("audio/wav".into()),
        title: Some(track.title.clone()),
        artist: None,
        duration: None,
    };
    Ok((server, proxy, cache_track, data))
}

/// A cache that gives up at the first broken transfer fetches `track` through a proxy
/// that cuts it: a partial file stays in `dir`. Returns how many bytes of the file came.
async fn leave_partial(dir: &Path, proxy: &LinkProxy, track: &CacheTrack) -> Result<u64> {
    proxy.cut_responses_after(CUT_AT);
    let cache = Cache::open(dir, config(0)).await?;
    let e = cache.fetch_to_path(track).await.unwrap_err();
    assert!(matches!(e, CacheError::Network { .. }), "{e}");
    cache.close().await;
    drop(cache);
    proxy.cut_responses_after(0);
    let first = proxy.connections().pop().context("no connection")?;
    assert_eq!(first.bytes_down, CUT_AT, "{first:?}");
    let partial = std::fs::read_dir(dir.join("partial"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0);
    assert!(
        partial > CUT_AT / 2 && partial < CUT_AT,
        "{partial} bytes kept of the first {CUT_AT} (headers included)"
    );
    Ok(partial)
}

/// The server killed with `kill -9` and started again on its address and data.
async fn restart(server: &mut TestServer) -> Result<Option<tempfile::TempDir>> {
    let tmp = server.take_dir();
    let (dir, addr) = (server.dir.clone(), server.addr.clone());
    server.kill9().await?;
    *server = TestServer::start_in(&dir, &addr).await?;
    Ok(tmp)
}

/// The file named `name` under `dir`, at any depth.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let p = e.path();
            if p.is_dir() {
                find_file(&p, name)
            } else {
                (e.file_name() == name).then_some(p)
            }
        })
}

/// Every request's head, in order (a connection may carry several).
fn requests(conns: &[jamz_e2e::ProxiedConnection]) -> Vec<&str> {
    conns
        .iter()
        .flat_map(|c| c.request_head.split("\r\n\r\n"))
        .filter(|r| !r.trim().is_empty())
        .collect()
}

/// Where a request's `Range` starts (`bytes=N-`).
fn range_start(head: &str) -> Option<u64> {
    header(head, "range")?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// Regular files under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .map(|e| {
                let p = e.path();
                if p.is_dir() { files_under(&p) } else { 1 }
            })
            .sum()
    })
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_download_resumes_from_the_real_server_with_if_range() -> Result<()> {
    let (mut server, proxy, track, data) = world().await?;
    let dir = tempfile::tempdir()?;
    let kept = leave_partial(dir.path(), &proxy, &track).await?;
    let _tmp = restart(&mut server).await?;

    let cache = Cache::open(dir.path(), config(0)).await?;
    assert_eq!(cache.last_reconcile().partials_kept, 1);
    let path = cache.fetch_to_path(&track).await?;
    assert!(std::fs::read(&path)? == data, "the resumed file differs");

    let conns = proxy.connections();
    assert_eq!(conns.len(), 2, "{conns:?}");
    assert_eq!(requests(&conns).len(), 2, "{conns:?}");
    let resume = &conns[1];
    let head = &resume.request_head;
    // From the bytes kept (all of them, or what was surely written of them).
    let start = range_start(head).unwrap_or_else(|| panic!("no resume: {head}"));
    assert!(
        start > CUT_AT / 2 && start <= kept,
        "{start} of {kept} kept: {head}"
    );
    let etag = format!("\"{}\"", track.sha256.as_deref().unwrap());
    assert_eq!(header(head, "if-range"), Some(etag.as_str()), "{head}");
    // Only the rest came (and one response's headers).
    let rest = data.len() as u64 - start;
    assert!(
        resume.bytes_down >= rest && resume.bytes_down < rest + 2048,
        "{} bytes came for the {rest} missing",
        resume.bytes_down
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_on_the_server_is_fetched_from_the_start_never_spliced() -> Result<()> {
    let (mut server, proxy, track, data) = world().await?;
    let dir = tempfile::tempdir()?;
    let kept = leave_partial(dir.path(), &proxy, &track).await?;

    // While the server is down, its stored file is replaced under the same name (a
    // restore from another backup): same URL and ETag, other bytes.
    let sha = track.sha256.clone().unwrap();
    let stored = find_file(&server.dir, &sha).context("the stored file")?;
    let tmp = server.take_dir();
    let (sdir, addr) = (server.dir.clone(), server.addr.clone());
    server.kill9().await?;
    let other = wav(2);
    assert_eq!(other.len(), data.len());
    std::fs::write(&stored, &other).context("replacing the stored file")?;
    server = TestServer::start_in(&sdir, &addr).await?;

    let cache = Cache::open(dir.path(), config(0)).await?;
    let e = cache.fetch_to_path(&track).await.unwrap_err();
    assert!(matches!(e, CacheError::HashMismatch { .. }), "{e}");
    // Resumed at the kept offset, then, when the whole did not verify, once more from 0
    // (on the same connection or another one).
    let conns = proxy.connections();
    let requests = requests(&conns);
    assert_eq!(requests.len(), 3, "{conns:?}");
    let start = range_start(requests[1]);
    assert!(
        start.is_some_and(|s| s > CUT_AT / 2 && s <= kept),
        "{kept} kept: {}",
        requests[1]
    );
    assert_eq!(header(requests[2], "range"), None, "{}", requests[2]);
    let after_the_cut: u64 = conns[1..].iter().map(|c| c.bytes_down).sum();
    let whole = data.len() as u64;
    assert!(
        after_the_cut >= whole - start.unwrap_or(0) + whole,
        "{after_the_cut} bytes after the cut: {conns:?}"
    );
    // Nothing is served from the cache: neither the spliced nor the wrong file.
    assert!(cache.get_cached(&track.id).await.is_err());
    assert_eq!(files_under(&dir.path().join("files")), 0, "a file was kept");
    drop((server, tmp));
    Ok(())
}

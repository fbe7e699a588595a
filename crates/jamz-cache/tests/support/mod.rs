//! Test helpers: a small axum file server with fault switches, content generators,
//! and a cache builder.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use jamz_cache::{Cache, CacheConfig, CacheError, CacheTrack};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, watch};

/// Bytes per body chunk the server sends: 16 KiB, hyper's usual read size.
const CHUNK: usize = 16 * 1024;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub authorization: Option<String>,
}

/// Fault switches, all off by default.
#[derive(Default)]
pub struct Switches {
    /// Cut the connection after this many body bytes of a response, for the next
    /// `cuts_left` responses.
    pub cut_after: AtomicU64,
    pub cuts_left: AtomicUsize,
    /// Flip one byte in the middle of every file served.
    pub wrong_bytes: AtomicBool,
    /// Answer 200 with the whole file whatever the `Range`.
    pub ignore_range: AtomicBool,
    /// Sleep this many microseconds between chunks (slow trickle).
    pub trickle_us: AtomicU64,
    /// Chunk size override for trickling (0 = CHUNK).
    pub chunk: AtomicUsize,
    /// Send an opaque ETag (`"v1"`) instead of the sha256 one.
    pub opaque_etag: AtomicBool,
    /// Serve the bytes of this other key instead, with its ETag (content changed).
    pub replaced: Mutex<HashMap<String, String>>,
}

pub struct ServerState {
    /// key -> (bytes, ETag)
    files: Mutex<HashMap<String, (Bytes, String)>>,
    pub seen: Mutex<Vec<Seen>>,
    pub requests: AtomicUsize,
    /// Response bodies begun and not yet sent to their end (nor dropped).
    pub bodies_in_flight: AtomicUsize,
    pub sw: Switches,
    /// Bodies stop at absolute offset `gate_at` until `gate` is true.
    pub gate_at: AtomicU64,
    pub gate: watch::Sender<bool>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic content for a seed.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

impl TestServer {
    pub async fn start() -> TestServer {
        let state = Arc::new(ServerState {
            files: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            bodies_in_flight: AtomicUsize::new(0),
            sw: Switches::default(),
            gate_at: AtomicU64::new(u64::MAX),
            gate: watch::Sender::new(true),
        });
        Self::start_with(state, "127.0.0.1:0").await
    }

    async fn start_with(state: Arc<ServerState>, bind: &str) -> TestServer {
        let app = Router::new()
            .route("/api/music/files/{key}", get(serve_file))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = CutListener {
            inner: listener,
            state: Arc::clone(&state),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        TestServer {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops listening and closes connections (bounded wait).
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
        {
            eprintln!("test server: graceful shutdown timed out");
        }
    }

    pub fn add(&self, key: &str, data: Vec<u8>) {
        self.state.files.lock().unwrap().insert(
            key.to_owned(),
            (Bytes::from(data.clone()), format!("\"{}\"", sha_hex(&data))),
        );
    }

    pub fn url(&self, key: &str) -> String {
        format!("http://{}/api/music/files/{key}", self.addr)
    }

    /// A track for `key` with sha256 and size filled in.
    pub fn track(&self, id: &str, key: &str) -> CacheTrack {
        let data = self
            .state
            .files
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap()
            .0;
        CacheTrack {
            id: id.to_owned(),
            url: self.url(key),
            sha256: Some(sha_hex(&data)),
            size: Some(data.len() as u64),
            etag: None,
            mime: Some("audio/mpeg".into()),
            title: Some(format!("Title {id}")),
            artist: Some("Artist".into()),
            duration: Some(180.0),
        }
    }

    /// Adds generated content under `key` and returns its track (id = key).
    pub fn add_track(&self, key: &str, seed: u64, len: usize) -> (CacheTrack, Vec<u8>) {
        let data = content(seed, len);
        self.add(key, data.clone());
        (self.track(key, key), data)
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// How many response bodies are being sent right now: a client killed now is killed
    /// in the middle of a download.
    pub fn bodies_in_flight(&self) -> usize {
        self.state.bodies_in_flight.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Cut the next `times` responses after `after` body bytes.
    pub fn cut(&self, after: u64, times: usize) {
        self.state.sw.cut_after.store(after, Ordering::SeqCst);
        self.state.sw.cuts_left.store(times, Ordering::SeqCst);
    }

    /// Hold bodies at absolute offset `at` until `open_gate`.
    pub fn close_gate_at(&self, at: u64) {
        self.state.gate_at.store(at, Ordering::SeqCst);
        self.state.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.state.gate.send_replace(true);
    }

    /// Serve `with`'s bytes and ETag under `key` from now on (the content changed).
    pub fn replace(&self, key: &str, with: &str) {
        self.state
            .sw
            .replaced
            .lock()
            .unwrap()
            .insert(key.to_owned(), with.to_owned());
    }
}

fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end))
}

async fn serve_file(
    State(st): State<Arc<ServerState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let h = |n: header::HeaderName| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    st.seen.lock().unwrap().push(Seen {
        key: key.clone(),
        range: h(header::RANGE),
        if_range: h(header::IF_RANGE),
        authorization: h(header::AUTHORIZATION),
    });
    let source_key = st
        .sw
        .replaced
        .lock()
        .unwrap()
        .get(&key)
        .cloned()
        .unwrap_or_else(|| key.clone());
    let Some((mut data, etag)) = st.files.lock().unwrap().get(&source_key).cloned() else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = if st.sw.opaque_etag.load(Ordering::SeqCst) {
        "\"v1\"".to_owned()
    } else {
        etag
    };
    if st.sw.wrong_bytes.load(Ordering::SeqCst) && !data.is_empty() {
        let mut v = data.to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0xff;
        data = Bytes::from(v);
    }
    let len = data.len() as u64;
    let range = h(header::RANGE)
        .filter(|_| !st.sw.ignore_range.load(Ordering::SeqCst))
        .filter(|_| h(header::IF_RANGE).is_none_or(|ir| ir == etag));
    let (status, start, end) = match range {
        Some(r) => match parse_range(&r, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
            None => {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap();
            }
        },
        None => (StatusCode::OK, 0, len),
    };
    let chunk = match st.sw.chunk.load(Ordering::SeqCst) {
        0 => CHUNK,
        n => n,
    };
    let trickle = Duration::from_micros(st.sw.trickle_us.load(Ordering::SeqCst));
    let gate_at = st.gate_at.load(Ordering::SeqCst);
    let gate = st.gate.subscribe();
    /// Counts a body in `bodies_in_flight` from its first byte until it ends or is dropped.
    struct InFlight(Arc<ServerState>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.bodies_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
    struct Body0 {
        state: Arc<ServerState>,
        flight: Option<InFlight>,
        data: Bytes,
        pos: u64,
        end: u64,
        chunk: usize,
        trickle: Duration,
        gate_at: u64,
        gate: watch::Receiver<bool>,
    }
    let b = Body0 {
        state: Arc::clone(&st),
        flight: None,
        data,
        pos: start,
        end,
        chunk,
        trickle,
        gate_at,
        gate,
    };
    let stream = futures_util::stream::unfold(b, |mut b| async move {
        if b.pos >= b.end {
            return None;
        }
        if b.flight.is_none() {
            b.state.bodies_in_flight.fetch_add(1, Ordering::SeqCst);
            b.flight = Some(InFlight(Arc::clone(&b.state)));
        }
        if b.pos >= b.gate_at {
            let _ = b.gate.wait_for(|open| *open).await;
        }
        if !b.trickle.is_zero() {
            tokio::time::sleep(b.trickle).await;
        }
        let mut n = (b.end - b.pos).min(b.chunk as u64);
        if b.pos < b.gate_at {
            n = n.min(b.gate_at - b.pos);
        }
        let out = b.data.slice(b.pos as usize..(b.pos + n) as usize);
        b.pos += n;
        Some((Ok::<Bytes, std::io::Error>(out), b))
    });
    let mut resp = Response::builder()
        .status(status)
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "audio/mpeg")
        .header(header::CONTENT_LENGTH, end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    resp.body(Body::from_stream(stream)).unwrap()
}

/// A config with short back-offs for tests.
pub fn test_config() -> CacheConfig {
    CacheConfig {
        connect_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(5),
        read_wait_timeout: Duration::from_secs(20),
        retry_backoff: Duration::from_millis(5),
        max_retries: 4,
        ..CacheConfig::default()
    }
}

pub async fn open_cache(dir: &std::path::Path) -> Cache {
    Cache::open(dir, test_config()).await.unwrap()
}

/// A cache that gives up at the first broken transfer (`max_retries: 0`).
pub async fn open_cache_without_retries(dir: &std::path::Path) -> Cache {
    let cfg = CacheConfig {
        max_retries: 0,
        ..test_config()
    };
    Cache::open(dir, cfg).await.unwrap()
}

/// Fetches `track` with a cache that gives up at the first broken transfer and
/// closes that cache again, so that a cut response leaves a partial download in
/// `dir`. Returns the fetch's error.
pub async fn leave_partial(dir: &std::path::Path, track: &CacheTrack) -> CacheError {
    let cache = open_cache_without_retries(dir).await;
    cache.fetch_to_path(track).await.unwrap_err()
}

/// Reads a reader to the end on a blocking thread.
pub async fn read_all(mut r: jamz_cache::TrackReader) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut v).map(|_| v)
    })
    .await
    .unwrap()
}

/// The whole track through `get_or_fetch` (from the cache or the network).
pub async fn fetch_all(cache: &Cache, track: &CacheTrack) -> Vec<u8> {
    read_all(cache.get_or_fetch(track).await.unwrap())
        .await
        .unwrap()
}

/// The whole track through `get_cached` (from the cache only).
pub async fn read_cached(cache: &Cache, id: &str) -> Vec<u8> {
    read_all(cache.get_cached(id).await.unwrap()).await.unwrap()
}

/// Files in `dir` (names), sorted.
pub fn list(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Logs to the test output when RUST_LOG is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Unused-port URL: bind, learn the port, drop the listener.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/api/music/files/nothing")
}

/// A listener whose connections can be cut after exactly N body bytes of a 2xx
/// response: the bytes before the cut reach the kernel, then every write fails and
/// hyper drops the connection. Done at the socket because an error from an axum body
/// stream makes hyper discard what it still has buffered.
struct CutListener {
    inner: tokio::net::TcpListener,
    state: Arc<ServerState>,
}

impl axum::serve::Listener for CutListener {
    type Io = CutIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CutIo, SocketAddr) {
        loop {
            if let Ok((s, a)) = self.inner.accept().await {
                let io = CutIo {
                    inner: s,
                    state: Arc::clone(&self.state),
                    head: Vec::new(),
                    body_left: None,
                    cut_left: None,
                    dead: false,
                };
                return (io, a);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

struct CutIo {
    inner: tokio::net::TcpStream,
    state: Arc<ServerState>,
    /// Bytes of the response head seen so far (headers mode when `body_left` is None).
    head: Vec<u8>,
    body_left: Option<u64>,
    cut_left: Option<u64>,
    dead: bool,
}

impl CutIo {
    /// The response head is complete: learn the body length and whether to cut it.
    fn head_done(&mut self) {
        let text = String::from_utf8_lossy(&self.head).to_ascii_lowercase();
        let ok = text.starts_with("http/1.1 20");
        let len = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        self.head.clear();
        self.body_left = (len > 0).then_some(len);
        let sw = &self.state.sw;
        if ok
            && len > 0
            && sw
                .cuts_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.cut_left = Some(sw.cut_after.load(Ordering::SeqCst));
        }
    }
}

impl tokio::io::AsyncRead for CutIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CutIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if self.dead {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let me = &mut *self;
        // How much of `buf` to pass on in this call.
        let take = match me.body_left {
            None => {
                // Headers: pass up to the end of the head, then switch to body mode.
                let mut n = buf.len();
                for (i, b) in buf.iter().enumerate() {
                    me.head.push(*b);
                    if me.head.ends_with(b"\r\n\r\n") {
                        n = i + 1;
                        break;
                    }
                }
                n
            }
            Some(left) => {
                let mut n = (buf.len() as u64).min(left);
                if let Some(c) = me.cut_left {
                    n = n.min(c);
                }
                n as usize
            }
        };
        if take == 0 {
            // Cut point reached.
            me.dead = true;
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let r = std::pin::Pin::new(&mut me.inner).poll_write(cx, &buf[..take]);
        if let Poll::Ready(Ok(written)) = &r {
            let written = *written as u64;
            match me.body_left {
                None => {
                    // Bytes of the head not written must be re-offered: drop them from
                    // `head` again.
                    let unwritten = take - written as usize;
                    let keep = me.head.len() - unwritten;
                    me.head.truncate(keep);
                    if me.head.ends_with(b"\r\n\r\n") {
                        me.head_done();
                    }
                }
                Some(left) => {
                    let left = left - written;
                    me.body_left = (left > 0).then_some(left);
                    if let Some(c) = me.cut_left.as_mut() {
                        *c -= written;
                    }
                    if me.body_left.is_none() {
                        me.cut_left = None;
                    }
                }
            }
        } else if matches!(r, Poll::Pending) && me.body_left.is_none() {
            let keep = me.head.len() - take;
            me.head.truncate(keep);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

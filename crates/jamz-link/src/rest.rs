//! A typed client for every REST route of the protocol (docs/protocol.md), on reqwest + rustls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use jamz_proto::rest::{
    AddMemberRequest, AddTrackRequest, AuthResponse, ChangePasswordRequest, CreateGroupRequest,
    GroupResponse, GroupsResponse, LatestLocationsResponse, LocationReport, LoginRequest,
    PlaylistResponse, RegisterRequest, ReorderRequest, SessionResponse, TrackResponse,
};
use jamz_proto::{Group, Location, Session, Track};
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, ETAG, RANGE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LinkError;
use crate::retry::{self, RetryPolicy};

/// Time allowed to open a TCP (+TLS) connection: a car on a weak cell link can
/// take several seconds; beyond 10 s the link is better reported as down.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an answer (not the total time, so that large
/// uploads and downloads are not cut short).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Total time of a plain JSON request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Chunk size of upload bodies (each chunk reports progress).
pub const UPLOAD_CHUNK: usize = 64 * 1024;

/// A progress callback: `(bytes sent, total bytes)`.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A REST client bound to one backend (one or several processes sharing its
/// data, see [`RestClient::with_fallbacks`]). Clone freely: clones share the
/// connection pool, the token and the server in use.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    /// The first server: the backend's name ([`RestClient::base_url`]).
    base: url::Url,
    servers: Arc<Servers>,
    token: Arc<RwLock<Option<String>>>,
    retry: RetryPolicy,
}

/// Every server of the backend (`base` first) and the one in use.
#[derive(Debug)]
struct Servers {
    list: Vec<url::Url>,
    current: AtomicUsize,
}

impl Servers {
    fn current(&self) -> &url::Url {
        let i = self.current.load(Ordering::Relaxed);
        &self.list[i.min(self.list.len() - 1)]
    }

    /// Moves on from `from` (the server a request found dead) to the next one,
    /// unless another request moved already.
    fn next_after(&self, from: usize) {
        let next = (from + 1) % self.list.len();
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base.as_str())
            .field("current", &self.servers.current().as_str())
            .field("has_token", &self.token().is_some())
            .finish()
    }
}

/// An upload's file and its optional metadata.
#[derive(Clone, Default)]
pub struct Upload {
    pub file_name: String,
    pub content_type: Option<String>,
    pub data: Bytes,
    pub title: Option<String>,
    pub artist: Option<String>,
    /// Seconds.
    pub duration: Option<f64>,
    pub progress: Option<Progress>,
}

/// The answer of a (possibly ranged) download.
#[derive(Debug, Clone)]
pub struct Download {
    /// 200 for the whole file, 206 for a range.
    pub status: u16,
    pub bytes: Bytes,
    /// `Content-Range`, e.g. `bytes 0-99/1000`.
    pub content_range: Option<String>,
    pub etag: Option<String>,
}

impl Download {
    /// Status and headers of `resp`, with an empty body.
    fn head(resp: &reqwest::Response) -> Self {
        Self {
            status: resp.status().as_u16(),
            bytes: Bytes::new(),
            content_range: header(resp, CONTENT_RANGE),
            etag: header(resp, ETAG),
        }
    }

    /// The file's total size from `Content-Range` (or the body length for a 200).
    pub fn total_len(&self) -> Option<u64> {
        match &self.content_range {
            Some(cr) => cr.rsplit('/').next().and_then(|t| t.parse().ok()),
            None => Some(self.bytes.len() as u64),
        }
    }
}

impl RestClient {
    /// A client for the backend at `base_url` (`http(s)://host:port`).
    pub fn new(base_url: &str) -> Result<Self, LinkError> {
        let http = reqwest::Client::builder()
            .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
            .read_timeout(DEFAULT_READ_TIMEOUT)
            .tls_certs_merge(crate::tls::reqwest_roots()?)
            .build()
            .map_err(request_error("-", base_url))?;
        let base = parse_base(base_url)?;
        Ok(Self {
            http,
            servers: Arc::new(Servers {
                list: vec![base.clone()],
                current: AtomicUsize::new(0),
            }),
            base,
            token: Arc::new(RwLock::new(None)),
            retry: RetryPolicy::default(),
        })
    }

    /// This client waiting on 429 and 503 as `policy` says (default:
    /// [`RetryPolicy::default`]).
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How this client waits on 429 and 503.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// This client with further servers of the same backend (processes sharing
    /// its database): a request that cannot reach the server in use (connection
    /// refused, no route, timeout while connecting) goes to the next one, round
    /// robin, and the client stays there. Repeats of a URL are left out.
    pub fn with_fallbacks<I, S>(self, urls: I) -> Result<Self, LinkError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = vec![self.base.clone()];
        for u in urls {
            let u = parse_base(u.as_ref())?;
            if !list.contains(&u) {
                list.push(u);
            }
        }
        Ok(Self {
            servers: Arc::new(Servers {
                list,
                current: AtomicUsize::new(0),
            }),
            ..self
        })
    }

    /// The backend's base URL: its first server (also what
    /// [`crate::SocketConfig::new`] takes), whichever server is in use.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The server requests go to now.
    pub fn current_url(&self) -> String {
        self.servers.current().to_string()
    }

    /// Every server, the first one first.
    pub fn server_urls(&self) -> Vec<String> {
        self.servers.list.iter().map(url::Url::to_string).collect()
    }

    /// Sends the next requests to `url` (one of [`Self::server_urls`], e.g. the
    /// server the socket link is on now). Returns `false`, changing nothing, for
    /// a URL that is not one of them.
    pub fn use_server(&self, url: &str) -> bool {
        let Ok(wanted) = url::Url::parse(url) else {
            return false;
        };
        match self.servers.list.iter().position(|u| *u == wanted) {
            Some(i) => {
                self.servers.current.store(i, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// The bearer token in use (set by [`register`](Self::register) and
    /// [`login`](Self::login), or by the caller).
    pub fn token(&self) -> Option<String> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_token(&self, token: Option<String>) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    fn url(&self, path: &str) -> Result<url::Url, LinkError> {
        self.servers
            .current()
            .join(path)
            .map_err(|e| LinkError::Url {
                url: path.into(),
                reason: e.to_string(),
            })
    }

    /// Adds the bearer token, if any.
    fn authorized(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.token() {
            Some(t) => rb.header(AUTHORIZATION, format!("Bearer {t}")),
            None => rb,
        }
    }

    /// A plain JSON request: authorized, within [`DEFAULT_REQUEST_TIMEOUT`].
    fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, LinkError> {
        let rb = self
            .http
            .request(method, self.url(path)?)
            .timeout(DEFAULT_REQUEST_TIMEOUT);
        Ok(self.authorized(rb))
    }

    /// Sends, checks the status, decodes the JSON answer.
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, LinkError> {
        let build = || {
            let rb = self.request(method.clone(), path)?;
            Ok(match body {
                Some(b) => rb.json(b),
                None => rb,
            })
        };
        let resp = self.send(build, &method, path).await?;
        read_json(resp, &method, path).await
    }

    /// An auth route: decodes the answer and keeps its token.
    async fn authenticate<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<AuthResponse, LinkError> {
        let auth: AuthResponse = self.call(Method::POST, path, Some(body)).await?;
        self.set_token(Some(auth.token.clone()));
        Ok(auth)
    }

    /// `POST /api/auth/register`; keeps the token.
    pub async fn register(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<AuthResponse, LinkError> {
        let body = RegisterRequest {
            username: username.into(),
            email: email.into(),
            password: password.into(),
        };
        self.authenticate("/api/auth/register", &body).await
    }

    /// `POST /api/auth/login`; keeps the token.
    pub async fn login(&self, username: &str, password: &str) -> Result<AuthResponse, LinkError> {
        let body = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.authenticate("/api/auth/login", &body).await
    }

    /// (ext) `POST /api/auth/logout`: revokes every token of this account (on
    /// all its devices) and forgets the token here.
    pub async fn logout(&self) -> Result<(), LinkError> {
        let _: serde_json::Value = self
            .call(Method::POST, "/api/auth/logout", None::<&()>)
            .await?;
        self.set_token(None);
        Ok(())
    }

    /// (ext) `POST /api/auth/password`: every earlier token is revoked; keeps
    /// the fresh one the server answers with.
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
    ) -> Result<AuthResponse, LinkError> {
        let body = ChangePasswordRequest {
            current_password: current_password.into(),
            new_password: new_password.into(),
        };
        self.authenticate("/api/auth/password", &body).await
    }

    /// `GET /api/groups`
    pub async fn groups(&self) -> Result<Vec<Group>, LinkError> {
        let r: GroupsResponse = self.call(Method::GET, "/api/groups", None::<&()>).await?;
        Ok(r.groups)
    }

    /// `POST /api/groups`
    pub async fn create_group(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Group, LinkError> {
        let body = CreateGroupRequest {
            name: name.into(),
            description: description.map(str::to_owned),
        };
        let r: GroupResponse = self.call(Method::POST, "/api/groups", Some(&body)).await?;
        Ok(r.group)
    }

    /// `POST /api/groups/:groupId/members` (creator only).
    pub async fn add_member(&self, group_id: &str, username: &str) -> Result<Group, LinkError> {
        let body = AddMemberRequest {
            username: username.into(),
        };
        let path = format!("/api/groups/{}/members", seg(group_id));
        let r: GroupResponse = self.call(Method::POST, &path, Some(&body)).await?;
        Ok(r.group)
    }

    /// **(ext)** `GET /api/mesh/grant-key`: the key the server signs controller grants
    /// with (docs/protocol.md, "Controller grants"). A server without the extension
    /// answers 404: the caller carries on without (peers then obey the DJ on direct
    /// links only).
    pub async fn grant_key(&self) -> Result<jamz_proto::grant::GrantKey, LinkError> {
        self.call(Method::GET, "/api/mesh/grant-key", None::<&()>)
            .await
    }

    /// (ext) `DELETE /api/groups/:groupId/members/me`: leaves the group.
    pub async fn leave_group(&self, group_id: &str) -> Result<(), LinkError> {
        let path = format!("/api/groups/{}/members/me", seg(group_id));
        let _: serde_json::Value = self.call(Method::DELETE, &path, None::<&()>).await?;
        Ok(())
    }

    /// `GET /api/audio/sessions/group/:groupId` (created on first call).
    pub async fn session_for_group(&self, group_id: &str) -> Result<Session, LinkError> {
        let path = format!("/api/audio/sessions/group/{}", seg(group_id));
        let r: SessionResponse = self.call(Method::GET, &path, None::<&()>).await?;
        Ok(r.session)
    }

    /// `POST /api/audio/sessions/:sessionId/music/playlist`: the playlist after
    /// the append (unchanged when the track was a duplicate).
    pub async fn append_track(
        &self,
        session_id: &str,
        track: &Track,
    ) -> Result<Vec<Track>, LinkError> {
        let body = AddTrackRequest {
            track: track.clone(),
        };
        let path = format!("/api/audio/sessions/{}/music/playlist", seg(session_id));
        let r: PlaylistResponse = self.call(Method::POST, &path, Some(&body)).await?;
        Ok(r.playlist)
    }

    /// `DELETE /api/audio/sessions/:sessionId/music/playlist/:trackId` (DJ only).
    pub async fn delete_track(
        &self,
        session_id: &str,
        track_id: &str,
    ) -> Result<Vec<Track>, LinkError> {
        let path = format!(
            "/api/audio/sessions/{}/music/playlist/{}",
            seg(session_id),
            seg(track_id)
        );
        let r: PlaylistResponse = self.call(Method::DELETE, &path, None::<&()>).await?;
        Ok(r.playlist)
    }

    /// `PUT /api/audio/sessions/:sessionId/music/playlist` (DJ only).
    pub async fn reorder_playlist(
        &self,
        session_id: &str,
        order: &[String],
    ) -> Result<Vec<Track>, LinkError> {
        let body = ReorderRequest {
            order: order.to_vec(),
        };
        let path = format!("/api/audio/sessions/{}/music/playlist", seg(session_id));
        let r: PlaylistResponse = self.call(Method::PUT, &path, Some(&body)).await?;
        Ok(r.playlist)
    }

    /// `POST /api/music/upload` (multipart), reporting progress per chunk. A
    /// refusal of the file itself (413, 408, 415) is [`LinkError::UploadRefused`].
    pub async fn upload(&self, upload: Upload) -> Result<Track, LinkError> {
        let path = "/api/music/upload";
        let method = Method::POST;
        // A 429/503 answer means the server took nothing: the form is built
        // again (from the shared bytes) for each attempt.
        let build = || {
            let form = upload_form(&upload).map_err(request_error(method.as_str(), path))?;
            // No total timeout (unlike `request`): a large file on a slow link
            // may take long; the read timeout still catches a silent server.
            Ok(self.authorized(self.http.post(self.url(path)?).multipart(form)))
        };
        let resp = self
            .send(build, &method, path)
            .await
            .map_err(|e| upload_refused(e, &upload.file_name))?;
        let r: TrackResponse = read_json(resp, &method, path).await?;
        Ok(r.track)
    }

    /// Downloads a track's file (`url` absolute, or a path on this backend),
    /// optionally a byte range `start..=end` (`end` `None`: to the end). The
    /// bearer token is only sent to this backend's origin, never to third-party
    /// hosts.
    pub async fn download(
        &self,
        url: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Download, LinkError> {
        let resp = self.download_response(url, range).await?;
        let head = Download::head(&resp);
        let bytes = resp.bytes().await.map_err(request_error("GET", url))?;
        Ok(Download { bytes, ..head })
    }

    /// Like [`download`](Self::download), streaming the body into `out` (a cache
    /// file) instead of memory; `progress` gets `(bytes written, expected total)`
    /// where the total is the body length announced by the server (0 if unknown).
    /// Returns the answer with an empty `bytes`.
    pub async fn download_to<W>(
        &self,
        url: &str,
        range: Option<(u64, Option<u64>)>,
        out: &mut W,
        progress: Option<Progress>,
    ) -> Result<Download, LinkError>
    where
        W: tokio::io::AsyncWrite + Unpin,
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let resp = self.download_response(url, range).await?;
        let head = Download::head(&resp);
        let total = resp.content_length().unwrap_or(0);
        let io_err = |source| LinkError::Io {
            path: url.to_owned(),
            source,
        };
        let mut written = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(request_error("GET", url))?;
            out.write_all(&chunk).await.map_err(io_err)?;
            written += chunk.len() as u64;
            if let Some(p) = &progress {
                p(written, total);
            }
        }
        out.flush().await.map_err(io_err)?;
        Ok(head)
    }

    async fn download_response(
        &self,
        url: &str,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<reqwest::Response, LinkError> {
        let build = || {
            let target = self.url(url)?;
            let same_origin = self
                .servers
                .list
                .iter()
                .any(|s| s.origin() == target.origin());
            let mut rb = self.http.get(target);
            if same_origin {
                rb = self.authorized(rb);
            }
            if let Some((start, end)) = range {
                let spec = match end {
                    Some(end) => format!("bytes={start}-{end}"),
                    None => format!("bytes={start}-"),
                };
                rb = rb.header(RANGE, spec);
            }
            Ok(rb)
        };
        self.send(build, &Method::GET, url).await
    }

    /// `POST /api/locations`
    pub async fn post_location(&self, report: &LocationReport) -> Result<(), LinkError> {
        let path = "/api/locations";
        let build = || Ok(self.request(Method::POST, path)?.json(report));
        self.send(build, &Method::POST, path).await?;
        Ok(())
    }

    /// `GET /api/groups/:groupId/locations/latest`
    pub async fn latest_locations(&self, group_id: &str) -> Result<Vec<Location>, LinkError> {
        let path = format!("/api/groups/{}/locations/latest", seg(group_id));
        let r: LatestLocationsResponse = self.call(Method::GET, &path, None::<&()>).await?;
        Ok(r.locations)
    }
}

/// The multipart form of an upload; its body reports progress per chunk.
fn upload_form(upload: &Upload) -> Result<reqwest::multipart::Form, reqwest::Error> {
    let total = upload.data.len() as u64;
    let progress = upload.progress.clone();
    let data = upload.data.clone();
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(UPLOAD_CHUNK)
        .map(|start| data.slice(start..(start + UPLOAD_CHUNK).min(data.len())))
        .collect();
    let mut sent = 0u64;
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |c| {
        sent += c.len() as u64;
        if let Some(p) = &progress {
            p(sent, total);
        }
        Ok::<Bytes, std::io::Error>(c)
    }));
    let mut part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
            .file_name(upload.file_name.clone());
    if let Some(ct) = &upload.content_type {
        part = part.mime_str(ct)?;
    }
    let mut form = reqwest::multipart::Form::new().part("file", part);
    if let Some(t) = &upload.title {
        form = form.text("title", t.clone());
    }
    if let Some(a) = &upload.artist {
        form = form.text("artist", a.clone());
    }
    if let Some(d) = upload.duration {
        form = form.text("duration", d.to_string());
    }
    Ok(form)
}

/// An upload's error status said in words: what was wrong with the file.
fn upload_refused(e: LinkError, file: &str) -> LinkError {
    let reason = match e.status() {
        Some(413) => "the file is larger than the server accepts",
        Some(408) => "the link was too slow: the server stopped waiting for the file",
        Some(415) => "the server does not recognise the file as audio it can play",
        _ => return e,
    };
    match e {
        LinkError::Http {
            status, message, ..
        } => LinkError::UploadRefused {
            file: file.to_owned(),
            status,
            reason,
            message,
        },
        other => other,
    }
}

impl RestClient {
    /// Sends what `build` makes; on 429 or 503 waits as the server's
    /// `Retry-After` and this client's [`RetryPolicy`] allow and sends again.
    /// An error status becomes [`LinkError::Http`] with the server's
    /// `{"error"}` message, or [`LinkError::Throttled`] once it gave up waiting.
    async fn send(
        &self,
        build: impl Fn() -> Result<reqwest::RequestBuilder, LinkError>,
        method: &Method,
        path: &str,
    ) -> Result<reqwest::Response, LinkError> {
        let mut retries = 0u32;
        let mut waited = Duration::ZERO;
        // Servers found dead by this request: each other one is tried once.
        let mut dead = 0usize;
        loop {
            let on = self.servers.current.load(Ordering::Relaxed);
            let resp = match build()?.send().await {
                Ok(resp) => resp,
                Err(e) if e.is_connect() && dead + 1 < self.servers.list.len() => {
                    tracing::warn!(server = %self.servers.current(), error = %e, "server unreachable; trying the next one");
                    self.servers.next_after(on);
                    dead += 1;
                    continue;
                }
                Err(e) => return Err(request_error(method.as_str(), path)(e)),
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let after = retry::retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            let message = error_message(status, &text);
            if !retry::is_retryable(status.as_u16()) {
                return Err(LinkError::Http {
                    method: method.to_string(),
                    path: path.into(),
                    status: status.as_u16(),
                    message,
                });
            }
            let Some(wait) = self.retry.next_wait(retries, waited, after) else {
                return Err(LinkError::Throttled {
                    method: method.to_string(),
                    path: path.into(),
                    status: status.as_u16(),
                    message,
                    attempts: retries + 1,
                    retry_after: after,
                });
            };
            tracing::info!(%method, path, status = status.as_u16(), ?wait, "the server asks to wait; trying again");
            tokio::time::sleep(wait).await;
            retries += 1;
            waited += wait;
        }
    }
}

/// A server's base URL: `http(s)://host:port`.
fn parse_base(base_url: &str) -> Result<url::Url, LinkError> {
    let base = url::Url::parse(base_url).map_err(|e| LinkError::Url {
        url: base_url.into(),
        reason: e.to_string(),
    })?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(LinkError::Url {
            url: base_url.into(),
            reason: "scheme must be http or https".into(),
        });
    }
    Ok(base)
}

/// Reads the body of a successful answer and decodes it as `R`.
async fn read_json<R: DeserializeOwned>(
    resp: reqwest::Response,
    method: &Method,
    path: &str,
) -> Result<R, LinkError> {
    let bytes = resp
        .bytes()
        .await
        .map_err(request_error(method.as_str(), path))?;
    serde_json::from_slice(&bytes).map_err(|source| LinkError::Decode {
        method: method.to_string(),
        path: path.into(),
        source,
    })
}

/// `map_err` for a request that could not be made or read.
fn request_error(method: &str, path: &str) -> impl FnOnce(reqwest::Error) -> LinkError {
    move |source| LinkError::Request {
        method: method.to_owned(),
        path: path.to_owned(),
        source,
    }
}

fn error_message(status: StatusCode, body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: serde_json::Value,
    }
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody {
            error: serde_json::Value::String(s),
        }) => s,
        Ok(ErrorBody { error }) => error.to_string(),
        Err(_) if !body.trim().is_empty() => body.trim().chars().take(500).collect(),
        Err(_) => status
            .canonical_reason()
            .unwrap_or("error without a message")
            .to_owned(),
    }
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Percent-encodes one path segment.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_come_from_the_error_field() {
        assert_eq!(
            error_message(StatusCode::FORBIDDEN, r#"{"error":"only the DJ"}"#),
            "only the DJ"
        );
        assert_eq!(error_message(StatusCode::NOT_FOUND, ""), "Not Found");
        assert_eq!(error_message(StatusCode::BAD_REQUEST, "plain"), "plain");
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("abc-1_2.3~"), "abc-1_2.3~");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn base_must_be_http() {
        assert!(RestClient::new("ftp://x").is_err());
        assert!(RestClient::new("http://127.0.0.1:1").is_ok());
        let r = RestClient::new("http://127.0.0.1:1").unwrap();
        assert!(r.with_fallbacks(["ftp://x"]).is_err());
    }

    #[test]
    fn fallbacks_and_the_server_in_use() {
        let r = RestClient::new("http://127.0.0.1:1")
            .unwrap()
            .with_fallbacks(["http://127.0.0.1:2", "http://127.0.0.1:1/"])
            .unwrap();
        assert_eq!(
            r.server_urls(),
            ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]
        );
        assert_eq!(r.current_url(), "http://127.0.0.1:1/");
        assert!(r.use_server("http://127.0.0.1:2"));
        let clone = r.clone();
        assert_eq!(clone.current_url(), "http://127.0.0.1:2/");
        assert_eq!(r.base_url(), "http://127.0.0.1:1/");
        assert!(!r.use_server("http://127.0.0.1:3"));
        assert_eq!(r.current_url(), "http://127.0.0.1:2/");
    }

    #[tokio::test]
    async fn an_unreachable_server_hands_over_to_the_next() {
        // Two ports nobody listens on: the request tries both, then reports.
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        drop((a, b));
        let r = RestClient::new(&format!("http://127.0.0.1:{pa}"))
            .unwrap()
            .with_fallbacks([format!("http://127.0.0.1:{pb}")])
            .unwrap();
        let err = r.groups().await.unwrap_err();
        assert!(matches!(err, LinkError::Request { .. }), "{err:?}");
        assert_eq!(r.current_url(), format!("http://127.0.0.1:{pb}/"));
    }

    #[test]
    fn total_len_from_content_range() {
        let d = Download {
            status: 206,
            bytes: Bytes::from_static(b"ab"),
            content_range: Some("bytes 0-1/10".into()),
            etag: None,
        };
        assert_eq!(d.total_len(), Some(10));
    }
}

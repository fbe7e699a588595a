//! How to reach the server and how the link behaves: shared by the sans-IO
//! [`Session`](crate::session::Session) and its tokio driver.

use std::time::Duration;

use crate::backoff::ReconnectPolicy;
use crate::error::LinkError;

/// Events kept while disconnected. A road-trip session emits a few events per
/// second at most (position syncs every 3-5 s, a location per second, control
/// now and then), so 256 covers a minute-long tunnel; older news is worth less
/// than newer, so the oldest is dropped first.
pub const OUTGOING_QUEUE_CAPACITY: usize = 256;

/// Time allowed for TCP + websocket handshake + `open` + Socket.IO `CONNECT`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound on the server's pingInterval and pingTimeout (each): an hour is
/// far above any real deployment (Socket.IO's defaults are 25 s and 20 s) and keeps
/// a hostile `open` packet from overflowing timer arithmetic.
pub const MAX_PING_MS: u64 = 3_600_000;

/// The Socket.IO path of the protocol (docs/protocol.md).
pub const DEFAULT_PATH: &str = "/socket.io/";

/// Longest wait a server's `server-shutdown` notice can ask of a link with no other
/// server to move to: its `reconnectAfterMs` comes from the network.
pub const MAX_SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// How to reach the server and how to behave.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// `http://host:port`, `https://...`, `ws://...` or `wss://...` (a path is ignored;
    /// see `path`): the first server tried.
    pub url: String,
    /// Further servers of the same service (processes sharing one database), tried
    /// in turn when the one in use dies: the link stays on the last one that
    /// worked and, when it fails, goes round the list (`url` first) with its
    /// backoff; a `server-shutdown` notice moves it to the next at once
    /// (docs/protocol.md, "Several servers").
    pub fallbacks: Vec<String>,
    pub path: String,
    /// Sent as the CONNECT auth payload `{token}`; updatable with
    /// [`SocketClient::set_token`](crate::SocketClient::set_token).
    pub token: Option<String>,
    /// **(ext)** This device's Ed25519 public key (hex), sent as `deviceKey` beside the
    /// token in every CONNECT: the server names it in the controller grant when this
    /// device takes control (docs/protocol.md, "Controller grants"). Other servers
    /// ignore it.
    pub device_key: Option<String>,
    pub reconnect: ReconnectPolicy,
    /// Seed of the jitter RNG; `None` draws one.
    pub seed: Option<u64>,
    pub queue_capacity: usize,
    pub connect_timeout: Duration,
    /// Events of which only the newest matters (a car's position): while offline, a
    /// newer one replaces the one queued instead of taking a place in the queue, so
    /// an hour of GPS fixes cannot push a playlist change out of it.
    pub latest_only: Vec<String>,
    /// After each (re)connection, keep what was queued while offline (and what is
    /// emitted meanwhile) until the caller releases it. The caller first sends
    /// what a new connection needs (a room join) with `emit_first`: the server
    /// refuses room events from a socket that has not joined yet.
    pub hold_queue: bool,
}

impl SocketConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallbacks: Vec::new(),
            path: DEFAULT_PATH.to_owned(),
            token: None,
            device_key: None,
            reconnect: ReconnectPolicy::default(),
            seed: None,
            queue_capacity: OUTGOING_QUEUE_CAPACITY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            latest_only: Vec::new(),
            hold_queue: false,
        }
    }

    /// Marks events whose queued copy a newer one replaces (see [`Self::latest_only`]).
    pub fn latest_only<I, S>(mut self, events: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.latest_only = events.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the further servers (see [`Self::fallbacks`]); `url` itself and
    /// repeats are left out.
    pub fn fallbacks<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list: Vec<String> = Vec::new();
        for u in urls {
            let u = u.into();
            if u != self.url && !list.contains(&u) {
                list.push(u);
            }
        }
        self.fallbacks = list;
        self
    }

    /// Every server, `url` first.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.fallbacks.iter().map(String::as_str))
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Presents this device's public key at every CONNECT (see [`Self::device_key`]).
    pub fn device_key(mut self, key: impl Into<String>) -> Self {
        self.device_key = Some(key.into());
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Holds the offline queue after each connection until released (see
    /// [`Self::hold_queue`]).
    pub fn hold_queue(mut self, hold: bool) -> Self {
        self.hold_queue = hold;
        self
    }

    /// The Socket.IO path (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The websocket URL: `ws(s)://host:port/socket.io/?EIO=4&transport=websocket`.
    pub fn ws_url(&self) -> Result<String, LinkError> {
        self.ws_url_of(&self.url)
    }

    /// The websocket URL of every server, `url` first (see [`Self::ws_url`]).
    pub fn ws_urls(&self) -> Result<Vec<String>, LinkError> {
        self.servers().map(|u| self.ws_url_of(u)).collect()
    }

    fn ws_url_of(&self, url: &str) -> Result<String, LinkError> {
        let bad = |reason: &str| LinkError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let scheme = match u.scheme() {
            "http" | "ws" => "ws",
            "https" | "wss" => "wss",
            _ => return Err(bad("scheme must be http, https, ws or wss")),
        };
        u.set_scheme(scheme)
            .map_err(|()| bad("cannot set the scheme"))?;
        u.set_path(&self.path);
        u.set_query(Some("EIO=4&transport=websocket"));
        u.set_fragment(None);
        Ok(u.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_from_http_base() {
        let c = SocketConfig::new("http://127.0.0.1:3000");
        assert_eq!(
            c.ws_url().unwrap(),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        let c = SocketConfig::new("https://jamz.example/api");
        assert_eq!(
            c.ws_url().unwrap(),
            "wss://jamz.example/socket.io/?EIO=4&transport=websocket"
        );
        assert!(SocketConfig::new("ftp://x").ws_url().is_err());
        assert!(SocketConfig::new("not a url").ws_url().is_err());
    }

    #[test]
    fn fallbacks_keep_their_order_without_repeats() {
        let c = SocketConfig::new("http://a:1").fallbacks([
            "http://b:2",
            "http://a:1",
            "http://b:2",
            "http://c:3",
        ]);
        assert_eq!(
            c.servers().collect::<Vec<_>>(),
            ["http://a:1", "http://b:2", "http://c:3"]
        );
        assert_eq!(c.ws_urls().unwrap().len(), 3);
        let bad = SocketConfig::new("http://a:1").fallbacks(["ftp://b"]);
        assert!(bad.ws_urls().is_err());
    }
}

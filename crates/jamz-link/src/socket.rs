//! A Socket.IO v5 client over Engine.IO v4, websocket transport only.
//!
//! One background tokio task owns the websocket; [`SocketClient`] is a cheap,
//! clone-able handle that talks to it over a channel, and [`LinkEvents`] is the
//! single stream of what happens on the link (server events, state changes,
//! overflow reports).
//!
//! Behaviour, from the Engine.IO and Socket.IO specs and the brief:
//! - handshake: `GET /socket.io/?EIO=4&transport=websocket`, wait for the `open`
//!   packet, send `CONNECT` with the auth payload `{token}`, wait for `CONNECT`
//!   (`{sid}`) or `CONNECT_ERROR` (`{message}`);
//! - heartbeat: answer every server `ping` with a `pong`; when nothing at all
//!   arrives for `pingInterval + pingTimeout`, the link is declared dead;
//! - acks both ways; binary packets are refused (reported, attachments skipped);
//! - reconnection with capped exponential backoff and jitter; after each
//!   reconnect the declared room join is re-emitted first, then the events queued
//!   while disconnected, in order;
//! - a bounded queue while disconnected: the oldest event is dropped on overflow
//!   and reported as [`LinkEvent::QueueOverflow`] (an acked one also fails its ack).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, warn};

use crate::backoff::{Backoff, ReconnectPolicy};
use crate::error::LinkError;
use crate::packet::{EioPacket, MAIN_NAMESPACE, OpenData, SioKind, SioPacket};

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

/// The Socket.IO path of PROTOCOL.md.
pub const DEFAULT_PATH: &str = "/socket.io/";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How to reach the server and how to behave.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// `http://host:port`, `https://...`, `ws://...` or `wss://...` (a path is ignored;
    /// see `path`).
    pub url: String,
    pub path: String,
    /// Sent as the CONNECT auth payload `{token}`; updatable with
    /// [`SocketClient::set_token`].
    pub token: Option<String>,
    pub reconnect: ReconnectPolicy,
    /// Seed of the jitter RNG; `None` draws one.
    pub seed: Option<u64>,
    pub queue_capacity: usize,
    pub connect_timeout: Duration,
    /// Events of which only the newest matters (a car's position): while offline, a
    /// newer one replaces the one queued instead of taking a place in the queue, so
    /// an hour of GPS fixes cannot push a playlist change out of it.
    pub latest_only: Vec<String>,
}

impl SocketConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            path: DEFAULT_PATH.to_owned(),
            token: None,
            reconnect: ReconnectPolicy::default(),
            seed: None,
            queue_capacity: OUTGOING_QUEUE_CAPACITY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            latest_only: Vec::new(),
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

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
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

    /// The Socket.IO path (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The websocket URL: `ws(s)://host:port/socket.io/?EIO=4&transport=websocket`.
    pub fn ws_url(&self) -> Result<String, LinkError> {
        let bad = |reason: &str| LinkError::Url {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let mut u = url::Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
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

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The websocket closed or failed (server gone, network down).
    TransportClosed(String),
    /// The server sent Engine.IO `close` or Socket.IO `DISCONNECT`.
    ServerDisconnect,
    /// Nothing arrived for pingInterval + pingTimeout.
    PingTimeout,
    /// The server sent something this client cannot parse; we closed.
    ProtocolError(String),
    /// A connection attempt failed before CONNECT completed.
    ConnectFailed(String),
    /// The caller closed the link.
    ClientClose,
}

/// The life of the link, reported as [`LinkEvent::State`].
#[derive(Debug, Clone, PartialEq)]
pub enum LinkState {
    /// `attempt` is 0 for the first connection, n for the n-th retry since the
    /// last success (the same n as the `Reconnecting` before it).
    Connecting {
        attempt: u32,
    },
    /// Socket.IO CONNECT accepted; `sid` is the Socket.IO socket id (what the
    /// server calls `socketId`), `engine_sid` the Engine.IO session id.
    Connected {
        sid: String,
        engine_sid: String,
        ping_interval: Duration,
        ping_timeout: Duration,
    },
    /// No packet from the server for `silence` (>= pingInterval + pingTimeout).
    Dead {
        silence: Duration,
    },
    Disconnected {
        reason: DisconnectReason,
    },
    /// The next attempt (1-based since the last success) starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
    },
    /// The server refused our CONNECT (`connect_error`, e.g. `Authentication
    /// failed`). The link waits for [`SocketClient::set_token`] instead of
    /// retrying a refused token.
    Refused {
        message: String,
    },
    /// The reconnect policy gave up, or the caller closed the link. Final.
    Closed,
}

/// An event sent or queued by this client.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub name: String,
    pub args: Vec<Value>,
}

/// A server event. If the server asked for an ack, `ack` answers it.
#[derive(Debug)]
pub struct ServerMessage {
    pub name: String,
    pub args: Vec<Value>,
    pub ack: Option<AckSender>,
}

impl ServerMessage {
    /// The first argument (every PROTOCOL.md event has exactly one), or `null`.
    pub fn data(&self) -> &Value {
        self.args.first().unwrap_or(&Value::Null)
    }

    /// Takes the first argument.
    pub fn into_data(self) -> Value {
        self.args.into_iter().next().unwrap_or(Value::Null)
    }
}

/// Answers a server event that asked for an acknowledgement. Dropping it without
/// calling [`AckSender::send`] leaves the server without an answer, as in
/// Socket.IO's JavaScript API.
#[derive(Debug)]
pub struct AckSender {
    id: u64,
    generation: u64,
    cmd: mpsc::UnboundedSender<Command>,
}

impl AckSender {
    /// Sends `ACK id [args...]` on the connection the event came from (ignored if
    /// that connection is gone).
    pub fn send(self, args: Vec<Value>) -> Result<(), LinkError> {
        self.cmd
            .send(Command::Ack {
                id: self.id,
                generation: self.generation,
                args,
            })
            .map_err(|_| LinkError::Closed)
    }
}

/// What the link reports, in order.
#[derive(Debug)]
pub enum LinkEvent {
    State(LinkState),
    Message(ServerMessage),
    /// The outgoing queue was full while disconnected: these events were dropped.
    QueueOverflow {
        dropped: Vec<OutgoingEvent>,
    },
    /// A non-fatal problem worth a log line (e.g. a binary packet refused).
    Warning(String),
}

enum Command {
    Emit {
        event: OutgoingEvent,
        ack: Option<oneshot::Sender<Result<Vec<Value>, LinkError>>>,
    },
    Ack {
        id: u64,
        generation: u64,
        args: Vec<Value>,
    },
    SetRoom(Option<OutgoingEvent>),
    SetToken(Option<String>),
    Close(oneshot::Sender<()>),
}

/// The receiving side of a link: every [`LinkEvent`], in order.
#[derive(Debug)]
pub struct LinkEvents {
    rx: mpsc::UnboundedReceiver<LinkEvent>,
}

impl LinkEvents {
    /// The next event; `None` once the link task has ended.
    pub async fn recv(&mut self) -> Option<LinkEvent> {
        self.rx.recv().await
    }
}

impl futures_util::Stream for LinkEvents {
    type Item = LinkEvent;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<LinkEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// A handle on the link task. Clone freely; the task ends when
/// [`SocketClient::close`] is called or every handle is dropped.
#[derive(Debug, Clone)]
pub struct SocketClient {
    cmd: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<LinkState>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Emit { .. } => "Emit",
            Command::Ack { .. } => "Ack",
            Command::SetRoom(_) => "SetRoom",
            Command::SetToken(_) => "SetToken",
            Command::Close(_) => "Close",
        })
    }
}

impl SocketClient {
    /// Starts the link task (it connects in the background; watch
    /// [`LinkEvents`] for [`LinkState::Connected`]). Must be called within a
    /// tokio runtime. Fails only on a bad URL.
    pub fn connect(config: SocketConfig) -> Result<(SocketClient, LinkEvents), LinkError> {
        let ws_url = config.ws_url()?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(LinkState::Connecting { attempt: 0 });
        let task = LinkTask {
            state_tx,
            backoff: Backoff::new(config.reconnect, config.seed.unwrap_or_else(rand::random)),
            ws_url,
            config,
            cmd_rx,
            cmd_tx: cmd_tx.downgrade(),
            events: ev_tx,
            queue: VecDeque::new(),
            room: None,
            pending: HashMap::new(),
            next_ack_id: 0,
            generation: 0,
            write_limit: DEFAULT_CONNECT_TIMEOUT,
        };
        tokio::spawn(task.run());
        Ok((
            SocketClient {
                cmd: cmd_tx,
                state: state_rx,
            },
            LinkEvents { rx: ev_rx },
        ))
    }

    /// The link's latest state (also reported in order on [`LinkEvents`]).
    pub fn state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    /// Whether the link is connected right now.
    pub fn is_connected(&self) -> bool {
        matches!(*self.state.borrow(), LinkState::Connected { .. })
    }

    /// Waits until the link is connected (or `timeout` passes, or the link is
    /// closed); returns the Socket.IO socket id. Does not consume [`LinkEvents`].
    pub async fn wait_connected(&self, timeout: Duration) -> Result<String, LinkError> {
        let mut rx = self.state.clone();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    LinkState::Connected { sid, .. } => return Ok(sid.clone()),
                    LinkState::Closed => return Err(LinkError::Closed),
                    LinkState::Refused { message } => {
                        return Err(LinkError::ConnectRefused {
                            message: message.clone(),
                        });
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(LinkError::Closed);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| LinkError::Timeout(timeout))?
    }

    fn command(&self, cmd: Command) -> Result<(), LinkError> {
        self.cmd.send(cmd).map_err(|_| LinkError::Closed)
    }

    /// Emits `name` with one argument. Sent at once when connected, queued
    /// otherwise (see [`OUTGOING_QUEUE_CAPACITY`]).
    pub fn emit(&self, name: impl Into<String>, data: Value) -> Result<(), LinkError> {
        self.command(Command::Emit {
            event: OutgoingEvent {
                name: name.into(),
                args: vec![data],
            },
            ack: None,
        })
    }

    /// Emits `name` asking for an acknowledgement and waits up to `timeout` for
    /// it (queued time included). Returns the ack's arguments.
    pub async fn emit_with_ack(
        &self,
        name: impl Into<String>,
        data: Value,
        timeout: Duration,
    ) -> Result<Vec<Value>, LinkError> {
        let name = name.into();
        let (tx, rx) = oneshot::channel();
        self.command(Command::Emit {
            event: OutgoingEvent {
                name: name.clone(),
                args: vec![data],
            },
            ack: Some(tx),
        })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => Err(LinkError::AckTimeout {
                event: name,
                timeout,
            }),
        }
    }

    /// Declares the room this client is in: `name`/`data` (PROTOCOL.md:
    /// `join-audio-session`) is emitted now if connected, and again first thing
    /// after every reconnect.
    pub fn join_room(&self, name: impl Into<String>, data: Value) -> Result<(), LinkError> {
        self.command(Command::SetRoom(Some(OutgoingEvent {
            name: name.into(),
            args: vec![data],
        })))
    }

    /// Forgets the room (no re-join after reconnects). Emitting the leave event
    /// is the caller's business.
    pub fn forget_room(&self) -> Result<(), LinkError> {
        self.command(Command::SetRoom(None))
    }

    /// Replaces the auth token used by the next CONNECT. While waiting (after a
    /// refusal, or between attempts), this also starts a new attempt at once.
    pub fn set_token(&self, token: Option<String>) -> Result<(), LinkError> {
        self.command(Command::SetToken(token))
    }

    /// Disconnects cleanly (Socket.IO DISCONNECT, Engine.IO close) and ends the
    /// task. Queued events are dropped and reported as overflow.
    pub async fn close(&self) -> Result<(), LinkError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Close(tx))?;
        rx.await.map_err(|_| LinkError::Closed)
    }
}

type AckTx = oneshot::Sender<Result<Vec<Value>, LinkError>>;

struct Queued {
    event: OutgoingEvent,
    ack: Option<AckTx>,
}

struct LinkTask {
    state_tx: watch::Sender<LinkState>,
    config: SocketConfig,
    ws_url: String,
    backoff: Backoff,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// For [`AckSender`]s; weak so that dropping every handle ends the task.
    cmd_tx: mpsc::WeakUnboundedSender<Command>,
    events: mpsc::UnboundedSender<LinkEvent>,
    queue: VecDeque<Queued>,
    room: Option<OutgoingEvent>,
    /// Acks we wait for on the current connection: id -> (event name, caller).
    pending: HashMap<u64, (String, AckTx)>,
    next_ack_id: u64,
    /// Bumped per connection, so that a server ack id from an old connection is
    /// never answered on a new one.
    generation: u64,
    /// Longest a single write may take on the current connection
    /// (pingInterval + pingTimeout).
    write_limit: Duration,
}

/// How a wait while not connected ([`LinkTask::offline`]) ended.
enum Waited<T> {
    /// What was awaited finished.
    Done(T),
    /// A new token: try now.
    Retry,
    /// Closed by the caller (`Some`: answer when done) or by dropping every handle.
    Close(Option<oneshot::Sender<()>>),
}

struct Session {
    ws: Ws,
    open: OpenData,
}

impl LinkTask {
    fn report(&self, ev: LinkEvent) {
        // The receiver may be gone; the link still serves emitters.
        let _ = self.events.send(ev);
    }

    fn state(&self, s: LinkState) {
        self.state_tx.send_replace(s.clone());
        self.report(LinkEvent::State(s));
    }

    async fn run(mut self) {
        let mut refused = false;
        let close_ack = loop {
            if refused {
                // Wait for a new token.
                match self.offline(std::future::pending::<()>(), true).await {
                    Waited::Close(tx) => break tx,
                    Waited::Done(()) | Waited::Retry => refused = false,
                }
            }
            let attempt = self.backoff.attempt();
            self.state(LinkState::Connecting { attempt });
            let token_used = self.config.token.clone();
            let connect = Self::handshake(
                self.ws_url.clone(),
                token_used.clone(),
                self.config.connect_timeout,
            );
            let result = match self.offline(connect, false).await {
                Waited::Done(result) => result,
                Waited::Close(tx) => break tx,
                Waited::Retry => unreachable!("a new token does not interrupt a handshake"),
            };
            match result {
                Ok((session, sid)) => {
                    self.backoff.reset();
                    self.generation += 1;
                    let reason = self.connected(session, sid).await;
                    self.fail_pending();
                    match reason {
                        Ended::Close(tx) => break tx,
                        Ended::Lost(reason) => {
                            self.state(LinkState::Disconnected { reason });
                        }
                    }
                }
                Err(LinkError::ConnectRefused { message }) => {
                    warn!(%message, "Socket.IO CONNECT refused");
                    self.state(LinkState::Refused { message });
                    // A token set during the handshake deserves its own attempt.
                    refused = self.config.token == token_used;
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "connection attempt failed");
                    self.state(LinkState::Disconnected {
                        reason: DisconnectReason::ConnectFailed(e.to_string()),
                    });
                }
            }
            let Some(delay) = self.backoff.next_delay() else {
                warn!("reconnect policy exhausted; closing the link");
                break None;
            };
            self.state(LinkState::Reconnecting {
                attempt: self.backoff.attempt(),
                delay,
            });
            // A new token skips the rest of the delay.
            if let Waited::Close(tx) = self.offline(tokio::time::sleep(delay), true).await {
                break tx;
            }
        };
        let dropped: Vec<OutgoingEvent> = self
            .queue
            .drain(..)
            .map(|q| {
                if let Some(tx) = q.ack {
                    let _ = tx.send(Err(LinkError::Closed));
                }
                q.event
            })
            .collect();
        if !dropped.is_empty() {
            self.report(LinkEvent::QueueOverflow { dropped });
        }
        self.state(LinkState::Closed);
        if let Some(tx) = close_ack {
            let _ = tx.send(());
        }
    }

    /// Serves commands while not connected (emits are queued) until `until`
    /// finishes, the link is closed, or, if `retry_ends`, a new token asks for an
    /// attempt now.
    async fn offline<T>(&mut self, until: impl Future<Output = T>, retry_ends: bool) -> Waited<T> {
        tokio::pin!(until);
        loop {
            tokio::select! {
                r = &mut until => return Waited::Done(r),
                cmd = self.cmd_rx.recv() => {
                    // Every handle dropped: close.
                    let Some(cmd) = cmd else { return Waited::Close(None) };
                    match cmd {
                        Command::Emit { event, ack } => self.enqueue(event, ack),
                        // The connection that asked is gone: nothing to answer.
                        Command::Ack { .. } => {}
                        Command::SetRoom(room) => self.room = room,
                        Command::SetToken(t) => {
                            self.config.token = t;
                            if retry_ends {
                                return Waited::Retry;
                            }
                        }
                        Command::Close(tx) => return Waited::Close(Some(tx)),
                    }
                }
            }
        }
    }

    fn enqueue(&mut self, event: OutgoingEvent, ack: Option<AckTx>) {
        let capacity = self.config.queue_capacity;
        if self.config.latest_only.contains(&event.name) {
            // The queued copy is out of date: answer its ack as sent-never, keep the newest.
            let name = event.name.clone();
            self.queue.retain_mut(|q| {
                if q.event.name != name {
                    return true;
                }
                if let Some(tx) = q.ack.take() {
                    let _ = tx.send(Err(LinkError::Superseded {
                        event: name.clone(),
                    }));
                }
                false
            });
        }
        // Oldest first out; with no capacity at all, that is the new event itself.
        self.queue.push_back(Queued { event, ack });
        let mut dropped = Vec::new();
        while self.queue.len() > capacity {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            if let Some(tx) = old.ack {
                let _ = tx.send(Err(LinkError::QueueOverflow {
                    event: old.event.name.clone(),
                    capacity,
                }));
            }
            dropped.push(old.event);
        }
        if !dropped.is_empty() {
            warn!(count = dropped.len(), "outgoing queue overflow");
            self.report(LinkEvent::QueueOverflow { dropped });
        }
    }

    fn fail_pending(&mut self) {
        for (_, (event, tx)) in self.pending.drain() {
            let _ = tx.send(Err(LinkError::AckLost { event }));
        }
    }

    /// TCP + websocket + Engine.IO open + Socket.IO CONNECT, within `timeout`.
    async fn handshake(
        ws_url: String,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<(Session, String), LinkError> {
        if ws_url.starts_with("wss:") {
            ensure_tls_provider();
        }
        tokio::time::timeout(timeout, async move {
            let (mut ws, _resp) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
            let mut open: Option<OpenData> = None;
            loop {
                let Some(msg) = ws.next().await else {
                    return Err(LinkError::Protocol("closed during the handshake".into()));
                };
                let text = match msg? {
                    Message::Text(t) => t,
                    Message::Close(_) => {
                        return Err(LinkError::Protocol("closed during the handshake".into()));
                    }
                    _ => continue,
                };
                let packet =
                    EioPacket::decode(text.as_str()).map_err(|source| LinkError::Packet {
                        packet: truncate(text.as_str()),
                        source,
                    })?;
                match packet {
                    EioPacket::Open(o) if open.is_none() => {
                        let auth = match &token {
                            Some(t) => json!({ "token": t }),
                            None => json!({}),
                        };
                        let connect = SioPacket::main(SioKind::Connect(Some(auth)));
                        ws.send(Message::text(EioPacket::Message(connect.encode()).encode()))
                            .await?;
                        open = Some(o);
                    }
                    EioPacket::Ping(p) => {
                        ws.send(Message::text(EioPacket::Pong(p).encode())).await?;
                    }
                    EioPacket::Close => {
                        return Err(LinkError::Protocol(
                            "server closed during the handshake".into(),
                        ));
                    }
                    EioPacket::Message(m) => {
                        let Some(o) = open.take() else {
                            return Err(LinkError::Protocol("message before open".into()));
                        };
                        let sio = SioPacket::decode(&m).map_err(|source| LinkError::Packet {
                            packet: truncate(&m),
                            source,
                        })?;
                        if sio.namespace != MAIN_NAMESPACE {
                            open = Some(o);
                            continue;
                        }
                        match sio.kind {
                            SioKind::Connect(Some(data)) => {
                                let sid = data
                                    .get("sid")
                                    .and_then(Value::as_str)
                                    .ok_or_else(|| {
                                        LinkError::Protocol("CONNECT without sid".into())
                                    })?
                                    .to_owned();
                                return Ok((Session { ws, open: o }, sid));
                            }
                            SioKind::ConnectError(data) => {
                                let message = data
                                    .get("message")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| data.to_string());
                                return Err(LinkError::ConnectRefused { message });
                            }
                            other => {
                                return Err(LinkError::Protocol(format!(
                                    "expected CONNECT, got {other:?}"
                                )));
                            }
                        }
                    }
                    other => debug!(?other, "ignored during the handshake"),
                }
            }
        })
        .await
        .map_err(|_| LinkError::Timeout(timeout))?
    }

    async fn connected(&mut self, session: Session, sid: String) -> Ended {
        let Session { mut ws, open } = session;
        // Capped: the values come from the network and feed timer arithmetic.
        let ping_interval = Duration::from_millis(open.ping_interval.min(MAX_PING_MS));
        let ping_timeout = Duration::from_millis(open.ping_timeout.min(MAX_PING_MS));
        let silence_limit = ping_interval + ping_timeout;
        self.write_limit = silence_limit;
        info!(%sid, engine_sid = %open.sid, ?ping_interval, ?ping_timeout, "connected");
        self.state(LinkState::Connected {
            sid,
            engine_sid: open.sid.clone(),
            ping_interval,
            ping_timeout,
        });
        let mut last_heard = Instant::now();
        // Re-join first, then what was queued, in order.
        if let Some(room) = self.room.clone()
            && let Err(reason) = self.write_room(&mut ws, room).await
        {
            return Ended::Lost(reason);
        }
        while let Some(q) = self.queue.pop_front() {
            let Queued { event, ack } = q;
            if let Err(reason) = self.write_event(&mut ws, event, ack).await {
                return Ended::Lost(reason);
            }
        }
        // Binary attachments still to skip after a refused binary packet.
        let mut skip_binary: u32 = 0;
        loop {
            let deadline = last_heard + silence_limit;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    let silence = last_heard.elapsed();
                    warn!(?silence, "no packet from the server: link dead");
                    self.state(LinkState::Dead { silence });
                    // Do not wait for a close handshake on a dead link.
                    drop(ws);
                    return Ended::Lost(DisconnectReason::PingTimeout);
                }
                msg = ws.next() => {
                    last_heard = Instant::now();
                    let msg = match msg {
                        None => return Ended::Lost(DisconnectReason::TransportClosed("end of stream".into())),
                        Some(Err(e)) => return Ended::Lost(DisconnectReason::TransportClosed(e.to_string())),
                        Some(Ok(m)) => m,
                    };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Binary(_) => {
                            if skip_binary > 0 {
                                skip_binary -= 1;
                            } else {
                                self.report(LinkEvent::Warning("unexpected binary frame ignored".into()));
                            }
                            continue;
                        }
                        Message::Close(frame) => {
                            return Ended::Lost(DisconnectReason::TransportClosed(format!("close frame {frame:?}")));
                        }
                        _ => continue,
                    };
                    match self.incoming(&mut ws, text.as_str(), &mut skip_binary).await {
                        Ok(()) => {}
                        Err(reason) => {
                            if matches!(reason, DisconnectReason::ProtocolError(_)) {
                                let _ = tokio::time::timeout(self.write_limit, ws.close(None)).await;
                            }
                            return Ended::Lost(reason);
                        }
                    }
                }
                cmd = self.cmd_rx.recv() => {
                    let Some(cmd) = cmd else {
                        let _ = self.say_goodbye(&mut ws).await;
                        return Ended::Close(None);
                    };
                    match cmd {
                        Command::Emit { event, ack } => {
                            if let Err(reason) = self.write_event(&mut ws, event, ack).await {
                                return Ended::Lost(reason);
                            }
                        }
                        Command::Ack { id, generation, args } => {
                            if generation == self.generation {
                                let p = SioPacket::main(SioKind::Ack { id, args });
                                if let Err(e) = send_sio(&mut ws, &p, self.write_limit).await {
                                    return Ended::Lost(DisconnectReason::TransportClosed(e.to_string()));
                                }
                            }
                        }
                        Command::SetRoom(room) => {
                            self.room = room.clone();
                            if let Some(room) = room
                                && let Err(reason) = self.write_room(&mut ws, room).await
                            {
                                return Ended::Lost(reason);
                            }
                        }
                        Command::SetToken(t) => self.config.token = t,
                        Command::Close(tx) => {
                            let _ = self.say_goodbye(&mut ws).await;
                            return Ended::Close(Some(tx));
                        }
                    }
                }
            }
        }
    }

    async fn say_goodbye(&mut self, ws: &mut Ws) -> Result<(), LinkError> {
        send_sio(ws, &SioPacket::main(SioKind::Disconnect), self.write_limit).await?;
        send_text(ws, EioPacket::Close.encode(), self.write_limit).await?;
        let _ = tokio::time::timeout(self.write_limit, ws.close(None)).await;
        Ok(())
    }

    /// Writes the room's join; never queued (it is re-sent after every reconnect).
    async fn write_room(
        &mut self,
        ws: &mut Ws,
        room: OutgoingEvent,
    ) -> Result<(), DisconnectReason> {
        let packet = SioPacket::main(SioKind::Event {
            id: None,
            name: room.name,
            args: room.args,
        });
        send_sio(ws, &packet, self.write_limit)
            .await
            .map_err(|e| DisconnectReason::TransportClosed(e.to_string()))
    }

    /// Writes an event; on a write failure the event goes back to the front of the
    /// queue (it may or may not have reached the server) and the connection is
    /// reported lost.
    async fn write_event(
        &mut self,
        ws: &mut Ws,
        event: OutgoingEvent,
        ack: Option<AckTx>,
    ) -> Result<(), DisconnectReason> {
        let id = if ack.is_some() {
            let id = self.next_ack_id;
            self.next_ack_id += 1;
            Some(id)
        } else {
            None
        };
        let packet = SioPacket::main(SioKind::Event {
            id,
            name: event.name.clone(),
            args: event.args.clone(),
        });
        match send_sio(ws, &packet, self.write_limit).await {
            Ok(()) => {
                if let (Some(id), Some(tx)) = (id, ack) {
                    // Forget callers that gave up waiting.
                    self.pending.retain(|_, (_, tx)| !tx.is_closed());
                    self.pending.insert(id, (event.name, tx));
                }
                Ok(())
            }
            Err(e) => {
                self.queue.push_front(Queued { event, ack });
                Err(DisconnectReason::TransportClosed(e.to_string()))
            }
        }
    }

    async fn incoming(
        &mut self,
        ws: &mut Ws,
        text: &str,
        skip_binary: &mut u32,
    ) -> Result<(), DisconnectReason> {
        let packet = EioPacket::decode(text).map_err(|e| {
            warn!(error = %e, packet = %truncate(text), "malformed Engine.IO packet");
            DisconnectReason::ProtocolError(e.to_string())
        })?;
        match packet {
            EioPacket::Ping(p) => {
                send_text(ws, EioPacket::Pong(p).encode(), self.write_limit)
                    .await
                    .map_err(|e| DisconnectReason::TransportClosed(e.to_string()))?;
            }
            EioPacket::Close => return Err(DisconnectReason::ServerDisconnect),
            EioPacket::Message(m) => {
                let sio = SioPacket::decode(&m).map_err(|e| {
                    warn!(error = %e, packet = %truncate(&m), "malformed Socket.IO packet");
                    DisconnectReason::ProtocolError(e.to_string())
                })?;
                if sio.namespace != MAIN_NAMESPACE {
                    debug!(namespace = %sio.namespace, "packet for another namespace ignored");
                    return Ok(());
                }
                match sio.kind {
                    SioKind::Event { id, name, args } => {
                        let ack = id.and_then(|id| {
                            self.cmd_tx.upgrade().map(|cmd| AckSender {
                                id,
                                generation: self.generation,
                                cmd,
                            })
                        });
                        self.report(LinkEvent::Message(ServerMessage { name, args, ack }));
                    }
                    SioKind::Ack { id, args } => match self.pending.remove(&id) {
                        Some((_, tx)) => {
                            let _ = tx.send(Ok(args));
                        }
                        None => debug!(id, "ack for nobody (timed out?)"),
                    },
                    SioKind::Disconnect => return Err(DisconnectReason::ServerDisconnect),
                    SioKind::Binary { attachments, ack } => {
                        *skip_binary = skip_binary.saturating_add(attachments);
                        self.report(LinkEvent::Warning(format!(
                            "binary {} with {attachments} attachment(s) refused: not supported",
                            if ack { "ack" } else { "event" }
                        )));
                    }
                    SioKind::Connect(_) | SioKind::ConnectError(_) => {
                        debug!("CONNECT packet after the handshake ignored");
                    }
                }
            }
            EioPacket::Open(_) | EioPacket::Pong(_) | EioPacket::Upgrade | EioPacket::Noop => {}
        }
        Ok(())
    }
}

enum Ended {
    Lost(DisconnectReason),
    Close(Option<oneshot::Sender<()>>),
}

async fn send_sio(ws: &mut Ws, p: &SioPacket, limit: Duration) -> Result<(), LinkError> {
    send_text(ws, EioPacket::Message(p.encode()).encode(), limit).await
}

/// One frame, within `limit`: a peer that stops reading must not block the link
/// forever (its silence is detected only while the task is not stuck writing).
async fn send_text(ws: &mut Ws, text: String, limit: Duration) -> Result<(), LinkError> {
    match tokio::time::timeout(limit, ws.send(Message::text(text))).await {
        Ok(r) => r.map_err(LinkError::from),
        Err(_) => Err(LinkError::Timeout(limit)),
    }
}

/// tokio-tungstenite builds its TLS config with rustls' process-wide provider;
/// install aws-lc-rs (reqwest's) unless the application installed one already.
fn ensure_tls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one meanwhile: fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
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
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(300);
        let t = truncate(&s);
        assert!(t.ends_with("..."));
        assert!(t.len() <= 203);
    }
}

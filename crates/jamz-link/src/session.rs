//! The link's protocol state machine without I/O: Engine.IO v4 / Socket.IO v5
//! over one websocket at a time, with reconnection, heartbeat and the offline
//! queue. Frames and time go in; frames to send, transport orders, a timeout and
//! events come out. No tokio, no sockets: the driver in [`crate::socket`] owns
//! those, the way quinn owns quinn-proto's connections.
//!
//! Behaviour, from the Engine.IO and Socket.IO specs:
//! - handshake: the driver opens `GET /socket.io/?EIO=4&transport=websocket`
//!   ([`Io::Connect`]); on the `open` packet the session sends `CONNECT` with the
//!   auth payload `{token}` and waits for `CONNECT` (`{sid}`) or `CONNECT_ERROR`
//!   (`{message}`), all within the connect timeout;
//! - heartbeat: every server `ping` is answered with a `pong`; when nothing at
//!   all arrives for `pingInterval + pingTimeout`, the link is declared dead;
//! - acks both ways; binary packets are refused (reported, attachments skipped);
//! - reconnection with capped exponential backoff and jitter; after each
//!   connection the events queued while disconnected are sent in order, at once
//!   or, with [`SocketConfig::hold_queue`], when the caller releases them;
//! - a bounded queue while disconnected: the oldest event is dropped on overflow
//!   and reported (an acked one also fails its ack);
//! - several servers of one service ([`SocketConfig::fallbacks`]): each attempt
//!   goes to the server in use; a failed attempt moves on to the next one (round
//!   robin, `url` first), so after a lost connection the link tries the server it
//!   was on once more (a tunnel, not a dead process) and then the others, with
//!   the backoff between attempts; a `server-shutdown` notice (**(ext)**,
//!   docs/protocol.md) moves it to the next server at once, or, with a single
//!   server, waits the notice's `reconnectAfterMs` (at most
//!   [`MAX_SHUTDOWN_WAIT`]).
//!
//! Every byte comes from the network: malformed input ends the connection with a
//! reason, never a panic.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::{DEFAULT_CONNECT_TIMEOUT, MAX_PING_MS, MAX_SHUTDOWN_WAIT, SocketConfig};
use crate::error::LinkError;
use crate::packet::{EioPacket, MAIN_NAMESPACE, OpenData, SioKind, SioPacket};

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
    /// **(ext)** The server announced its shutdown (`server-shutdown`) and asked
    /// for at least `reconnect_after` before coming back to it; the link moves to
    /// its next server at once, if it has one.
    ServerShutdown { reconnect_after: Duration },
}

/// **(ext)** The event a server sends every socket before it stops
/// (docs/protocol.md, "Several servers"): `{reconnectAfterMs}`.
pub const SERVER_SHUTDOWN: &str = "server-shutdown";

/// The life of the link.
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
        /// The server connected to, as configured (`url` or one of the fallbacks).
        server: String,
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
    /// failed`). The link waits for a new token instead of retrying a refused one.
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

/// Names an emit that waits for the server's ack; its result comes back as
/// [`SessionEvent::AckResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// A server event's request for an ack: its id on connection `generation`, so
/// that an answer never reaches a later connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckTicket {
    pub id: u64,
    pub generation: u64,
}

/// What the transport delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary,
    /// A websocket close frame (its description).
    Close(&'a str),
    /// A websocket ping or pong: proof of life only.
    Control,
    /// The stream ended without a close frame.
    End,
}

/// One text frame to write. Hand it back with [`Session::handle_write_failed`]
/// when the write fails: the event it carries goes back to the queue.
#[derive(Debug)]
pub struct Transmit {
    pub frame: String,
    carried: Option<Carried>,
}

#[derive(Debug)]
struct Carried {
    queued: Queued,
    ack_id: Option<u64>,
}

/// What the driver must do with its transport, in order.
#[derive(Debug)]
pub enum Io {
    /// Open a new websocket to the configured URL (replacing any other).
    Connect,
    Send(Transmit),
    /// Drop the websocket: with a close handshake (bounded by
    /// [`Session::write_limit`]) or, for a dead or abandoned one, without.
    Close {
        graceful: bool,
    },
}

/// What the session reports, in order.
#[derive(Debug)]
pub enum SessionEvent {
    State(LinkState),
    /// A server event; `ack` when the server asked for an answer.
    Message {
        name: String,
        args: Vec<Value>,
        ack: Option<AckTicket>,
    },
    /// Dropped from the outgoing queue (full while disconnected, or closed).
    QueueOverflow {
        dropped: Vec<OutgoingEvent>,
    },
    /// A non-fatal problem worth a log line (e.g. a binary packet refused).
    Warning(String),
    /// The answer to an acked emit, or why there will be none.
    AckResult {
        request: RequestId,
        result: Result<Vec<Value>, LinkError>,
    },
}

#[derive(Debug)]
struct Queued {
    event: OutgoingEvent,
    request: Option<RequestId>,
}

#[derive(Debug)]
enum Phase {
    /// Transport, `open`, then CONNECT, before `deadline`.
    Handshake {
        deadline: Instant,
        /// The token this attempt sends (a newer one deserves its own attempt).
        token: Option<String>,
        open: Option<OpenData>,
    },
    Connected {
        last_heard: Instant,
        silence_limit: Duration,
        /// The offline queue waits for [`Session::release_queue`].
        held: bool,
        /// Binary attachments still to skip after a refused binary packet.
        skip_binary: u32,
    },
    /// Waiting before the next attempt.
    Backoff {
        until: Instant,
    },
    /// Refused; waiting for a new token.
    Refused,
    Closed,
}

/// The state machine of one link (see the module documentation).
#[derive(Debug)]
pub struct Session {
    config: SocketConfig,
    /// Every server, `config.url` first.
    servers: Vec<String>,
    /// The one the next (or current) attempt goes to.
    server: usize,
    backoff: Backoff,
    phase: Phase,
    queue: VecDeque<Queued>,
    /// Acks we wait for on the current connection: id -> (event name, request).
    pending: HashMap<u64, (String, RequestId)>,
    next_ack_id: u64,
    /// Bumped per connection (see [`AckTicket`]).
    generation: u64,
    /// Longest a single write may take (pingInterval + pingTimeout once known).
    write_limit: Duration,
    io: VecDeque<Io>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    /// A session that starts its first attempt at `now` (see [`Session::poll_io`]).
    pub fn new(config: SocketConfig, seed: u64, now: Instant) -> Self {
        let mut s = Self {
            servers: config.servers().map(str::to_owned).collect(),
            server: 0,
            backoff: Backoff::new(config.reconnect, seed),
            config,
            // Replaced at once by the first attempt.
            phase: Phase::Closed,
            queue: VecDeque::new(),
            pending: HashMap::new(),
            next_ack_id: 0,
            generation: 0,
            write_limit: DEFAULT_CONNECT_TIMEOUT,
            io: VecDeque::new(),
            events: VecDeque::new(),
        };
        s.start_attempt(now);
        s
    }

    /// The next transport order.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// The next event to report.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] is due, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Handshake { deadline, .. } => Some(*deadline),
            Phase::Connected {
                last_heard,
                silence_limit,
                ..
            } => last_heard.checked_add(*silence_limit),
            Phase::Backoff { until } => Some(*until),
            Phase::Refused | Phase::Closed => None,
        }
    }

    /// Longest a single write may take on the current transport: a peer that
    /// stops reading must not block the link forever.
    pub fn write_limit(&self) -> Duration {
        self.write_limit
    }

    /// The index (in [`SocketConfig::servers`] order) of the server of the current
    /// or next attempt.
    pub fn server(&self) -> usize {
        self.server
    }

    /// The URL of that server, as configured.
    pub fn server_url(&self) -> &str {
        self.servers
            .get(self.server)
            .map_or(self.config.url.as_str(), String::as_str)
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected { .. })
    }

    /// Final: nothing more will come out but what is already queued.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Events waiting in the offline queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Handshake { deadline, .. } if now >= deadline => {
                let e = LinkError::Timeout(self.config.connect_timeout);
                self.attempt_failed(now, e.to_string());
            }
            Phase::Connected {
                last_heard,
                silence_limit,
                ..
            } if now >= last_heard + silence_limit => {
                let silence = now.saturating_duration_since(last_heard);
                warn!(?silence, "no packet from the server: link dead");
                self.state(LinkState::Dead { silence });
                // Do not wait for a close handshake on a dead link.
                self.lost(now, DisconnectReason::PingTimeout, false);
            }
            Phase::Backoff { until } if now >= until => self.start_attempt(now),
            _ => {}
        }
    }

    /// Opening the transport failed, or reading from it did.
    pub fn handle_transport_error(&mut self, now: Instant, error: String) {
        match self.phase {
            Phase::Handshake { .. } => self.attempt_failed(now, error),
            Phase::Connected { .. } => {
                self.lost(now, DisconnectReason::TransportClosed(error), false)
            }
            _ => debug!(%error, "transport error with no connection"),
        }
    }

    /// A write failed: what `transmit` carried goes back to the front of the queue
    /// (it may or may not have reached the server), and the connection is lost.
    pub fn handle_write_failed(&mut self, now: Instant, transmit: Transmit, error: String) {
        self.requeue_unsent(Some(transmit));
        match self.phase {
            Phase::Handshake { .. } => self.attempt_failed(now, error),
            Phase::Connected { .. } => {
                self.lost(now, DisconnectReason::TransportClosed(error), false)
            }
            _ => {}
        }
    }

    pub fn handle_frame(&mut self, now: Instant, frame: Frame<'_>) {
        match self.phase {
            Phase::Handshake { .. } => match self.handshake_frame(frame) {
                Ok(None) => {}
                Ok(Some((open, sid))) => self.connected(now, open, sid),
                Err(LinkError::ConnectRefused { message }) => self.refused(now, message),
                Err(e) => self.attempt_failed(now, e.to_string()),
            },
            Phase::Connected { .. } => {
                if let Phase::Connected { last_heard, .. } = &mut self.phase {
                    *last_heard = now;
                }
                if let Err((reason, graceful)) = self.connected_frame(frame) {
                    self.lost(now, reason, graceful);
                }
            }
            _ => debug!(?frame, "frame with no connection ignored"),
        }
    }

    /// Emits an event: sent at once when connected (and not held), queued
    /// otherwise. With `request`, its ack comes back as [`SessionEvent::AckResult`].
    pub fn emit(&mut self, event: OutgoingEvent, request: Option<RequestId>) {
        let queued = Queued { event, request };
        match self.phase {
            Phase::Connected { held: false, .. } => self.transmit_event(queued),
            Phase::Closed => self.answer(queued.request, Err(LinkError::Closed)),
            _ => self.enqueue(queued),
        }
    }

    /// Sends an event now, ahead of a held queue: what this connection needs
    /// before anything else (a room join). Not connected, it is dropped: the next
    /// connection needs its own.
    pub fn emit_first(&mut self, event: OutgoingEvent) {
        if self.is_connected() {
            self.transmit_event(Queued {
                event,
                request: None,
            });
        } else {
            debug!(event = %event.name, "not connected: first event dropped");
        }
    }

    /// Sends what the queue held since the connection (see
    /// [`SocketConfig::hold_queue`]), in order. Does nothing when not held.
    pub fn release_queue(&mut self) {
        if let Phase::Connected { held, .. } = &mut self.phase
            && *held
        {
            *held = false;
            while let Some(q) = self.queue.pop_front() {
                self.transmit_event(q);
            }
        }
    }

    /// Answers a server event that asked for an ack (only on its own connection).
    pub fn ack(&mut self, ticket: AckTicket, args: Vec<Value>) {
        if self.is_connected() && ticket.generation == self.generation {
            let p = SioPacket::main(SioKind::Ack {
                id: ticket.id,
                args,
            });
            self.send_packet(&p);
        }
    }

    /// The caller stopped waiting for this ack.
    pub fn forget_request(&mut self, request: RequestId) {
        self.pending.retain(|_, (_, r)| *r != request);
    }

    /// Replaces the token of the next CONNECT. While waiting (after a refusal, or
    /// between attempts), this also starts a new attempt at once.
    pub fn set_token(&mut self, now: Instant, token: Option<String>) {
        self.config.token = token;
        if matches!(self.phase, Phase::Refused | Phase::Backoff { .. }) {
            self.start_attempt(now);
        }
    }

    /// Disconnects cleanly (Socket.IO DISCONNECT, Engine.IO close) and ends the
    /// session; what was still queued is reported as dropped.
    pub fn close(&mut self) {
        match self.phase {
            Phase::Closed => return,
            Phase::Connected { .. } => {
                self.send_packet(&SioPacket::main(SioKind::Disconnect));
                self.send_text(EioPacket::Close.encode());
                self.io.push_back(Io::Close { graceful: true });
            }
            Phase::Handshake { .. } => self.io.push_back(Io::Close { graceful: false }),
            Phase::Backoff { .. } | Phase::Refused => {}
        }
        self.fail_pending();
        self.finish();
    }

    fn state(&mut self, s: LinkState) {
        self.events.push_back(SessionEvent::State(s));
    }

    fn answer(&mut self, request: Option<RequestId>, result: Result<Vec<Value>, LinkError>) {
        if let Some(request) = request {
            self.events
                .push_back(SessionEvent::AckResult { request, result });
        }
    }

    fn start_attempt(&mut self, now: Instant) {
        let attempt = self.backoff.attempt();
        self.state(LinkState::Connecting { attempt });
        self.phase = Phase::Handshake {
            deadline: now + self.config.connect_timeout,
            token: self.config.token.clone(),
            open: None,
        };
        self.io.push_back(Io::Connect);
    }

    fn attempt_failed(&mut self, now: Instant, reason: String) {
        debug!(%reason, "connection attempt failed");
        self.io.push_back(Io::Close { graceful: false });
        self.state(LinkState::Disconnected {
            reason: DisconnectReason::ConnectFailed(reason),
        });
        self.next_server();
        self.schedule_retry(now, Duration::ZERO);
    }

    fn refused(&mut self, now: Instant, message: String) {
        warn!(%message, "Socket.IO CONNECT refused");
        let token_used = match &mut self.phase {
            Phase::Handshake { token, .. } => token.take(),
            _ => None,
        };
        self.io.push_back(Io::Close { graceful: false });
        self.state(LinkState::Refused { message });
        if self.config.token == token_used {
            self.phase = Phase::Refused;
        } else {
            // A token set during the handshake deserves its own attempt.
            self.start_attempt(now);
        }
    }

    /// Round robin: the next attempt goes to the next server.
    fn next_server(&mut self) {
        if !self.servers.is_empty() {
            self.server = (self.server + 1) % self.servers.len();
        }
    }

    /// The next attempt after the backoff's delay, and not before `at_least`.
    fn schedule_retry(&mut self, now: Instant, at_least: Duration) {
        match self.backoff.next_delay() {
            Some(delay) => {
                let delay = delay.max(at_least);
                self.state(LinkState::Reconnecting {
                    attempt: self.backoff.attempt(),
                    delay,
                });
                self.phase = Phase::Backoff { until: now + delay };
            }
            None => {
                warn!("reconnect policy exhausted; closing the link");
                self.finish();
            }
        }
    }

    fn connected(&mut self, now: Instant, open: OpenData, sid: String) {
        self.backoff.reset();
        self.generation += 1;
        // Capped: the values come from the network and feed timer arithmetic.
        let ping_interval = Duration::from_millis(open.ping_interval.min(MAX_PING_MS));
        let ping_timeout = Duration::from_millis(open.ping_timeout.min(MAX_PING_MS));
        let silence_limit = ping_interval + ping_timeout;
        self.write_limit = silence_limit;
        info!(%sid, engine_sid = %open.sid, ?ping_interval, ?ping_timeout, "connected");
        let server = self.server_url().to_owned();
        info!(%server, "on this server");
        self.state(LinkState::Connected {
            sid,
            engine_sid: open.sid,
            server,
            ping_interval,
            ping_timeout,
        });
        self.phase = Phase::Connected {
            last_heard: now,
            silence_limit,
            held: true,
            skip_binary: 0,
        };
        if !self.config.hold_queue {
            self.release_queue();
        }
    }

    /// The connection is gone: unsent events back to the queue, pending acks
    /// failed, then a retry after the backoff (the same server first). After a
    /// shutdown notice: the next server at once, or with a single server, the
    /// same one after the wait the notice asked for.
    fn lost(&mut self, now: Instant, reason: DisconnectReason, graceful: bool) {
        self.requeue_unsent(None);
        self.io.push_back(Io::Close { graceful });
        self.fail_pending();
        let notice = match &reason {
            DisconnectReason::ServerShutdown { reconnect_after } => Some(*reconnect_after),
            _ => None,
        };
        self.state(LinkState::Disconnected { reason });
        match notice {
            Some(_) if self.servers.len() > 1 => {
                self.next_server();
                self.start_attempt(now);
            }
            Some(wait) => self.schedule_retry(now, wait),
            None => self.schedule_retry(now, Duration::ZERO),
        }
    }

    /// Puts the events of `first` and of every send not yet carried out back at
    /// the front of the queue, in their order.
    fn requeue_unsent(&mut self, first: Option<Transmit>) {
        let mut carried: Vec<Carried> = first.into_iter().filter_map(|t| t.carried).collect();
        let mut rest = VecDeque::with_capacity(self.io.len());
        for io in self.io.drain(..) {
            match io {
                Io::Send(t) => carried.extend(t.carried),
                other => rest.push_back(other),
            }
        }
        self.io = rest;
        for c in carried.into_iter().rev() {
            if let Some(id) = c.ack_id {
                self.pending.remove(&id);
            }
            self.queue.push_front(c.queued);
        }
    }

    fn fail_pending(&mut self) {
        let mut failed: Vec<_> = self.pending.drain().collect();
        failed.sort_by_key(|(id, _)| *id);
        for (_, (event, request)) in failed {
            self.answer(Some(request), Err(LinkError::AckLost { event }));
        }
    }

    /// Ends the session: what is still queued is reported dropped.
    fn finish(&mut self) {
        let mut dropped = Vec::with_capacity(self.queue.len());
        while let Some(q) = self.queue.pop_front() {
            self.answer(q.request, Err(LinkError::Closed));
            dropped.push(q.event);
        }
        if !dropped.is_empty() {
            self.events
                .push_back(SessionEvent::QueueOverflow { dropped });
        }
        self.phase = Phase::Closed;
        self.state(LinkState::Closed);
    }

    fn enqueue(&mut self, queued: Queued) {
        let capacity = self.config.queue_capacity;
        if self.config.latest_only.contains(&queued.event.name) {
            // The queued copy is out of date: answer its ack as sent-never, keep the newest.
            let name = queued.event.name.clone();
            let mut superseded = Vec::new();
            self.queue.retain(|q| {
                if q.event.name != name {
                    return true;
                }
                superseded.extend(q.request);
                false
            });
            for r in superseded {
                self.answer(
                    Some(r),
                    Err(LinkError::Superseded {
                        event: name.clone(),
                    }),
                );
            }
        }
        // Oldest first out; with no capacity at all, that is the new event itself.
        self.queue.push_back(queued);
        let mut dropped = Vec::new();
        while self.queue.len() > capacity {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            let event = old.event.name.clone();
            self.answer(
                old.request,
                Err(LinkError::QueueOverflow { event, capacity }),
            );
            dropped.push(old.event);
        }
        if !dropped.is_empty() {
            warn!(count = dropped.len(), "outgoing queue overflow");
            self.events
                .push_back(SessionEvent::QueueOverflow { dropped });
        }
    }

    fn transmit_event(&mut self, queued: Queued) {
        let ack_id = queued.request.map(|request| {
            let id = self.next_ack_id;
            self.next_ack_id += 1;
            self.pending
                .insert(id, (queued.event.name.clone(), request));
            id
        });
        let packet = SioPacket::main(SioKind::Event {
            id: ack_id,
            name: queued.event.name.clone(),
            args: queued.event.args.clone(),
        });
        self.io.push_back(Io::Send(Transmit {
            frame: EioPacket::Message(packet.encode()).encode(),
            carried: Some(Carried { queued, ack_id }),
        }));
    }

    fn send_packet(&mut self, p: &SioPacket) {
        self.send_text(EioPacket::Message(p.encode()).encode());
    }

    fn send_text(&mut self, frame: String) {
        self.io.push_back(Io::Send(Transmit {
            frame,
            carried: None,
        }));
    }

    /// One frame of the handshake: `Some` once CONNECT is accepted.
    fn handshake_frame(
        &mut self,
        frame: Frame<'_>,
    ) -> Result<Option<(OpenData, String)>, LinkError> {
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Close(_) | Frame::End => {
                return Err(LinkError::Protocol("closed during the handshake".into()));
            }
            Frame::Binary | Frame::Control => return Ok(None),
        };
        let packet = EioPacket::decode(text).map_err(|source| LinkError::Packet {
            packet: truncate(text),
            source,
        })?;
        let Phase::Handshake { token, open, .. } = &mut self.phase else {
            return Ok(None);
        };
        match packet {
            EioPacket::Open(o) if open.is_none() => {
                let mut auth = match token {
                    Some(t) => json!({ "token": t }),
                    None => json!({}),
                };
                if let Some(key) = &self.config.device_key {
                    auth["deviceKey"] = json!(key);
                }
                *open = Some(o);
                self.send_packet(&SioPacket::main(SioKind::Connect(Some(auth))));
            }
            EioPacket::Ping(p) => self.send_text(EioPacket::Pong(p).encode()),
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
                    *open = Some(o);
                    return Ok(None);
                }
                match sio.kind {
                    SioKind::Connect(Some(data)) => {
                        let sid = data
                            .get("sid")
                            .and_then(Value::as_str)
                            .ok_or_else(|| LinkError::Protocol("CONNECT without sid".into()))?
                            .to_owned();
                        return Ok(Some((o, sid)));
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
        Ok(None)
    }

    /// One frame while connected; `Err` ends the connection (`true`: with a close
    /// handshake).
    fn connected_frame(&mut self, frame: Frame<'_>) -> Result<(), (DisconnectReason, bool)> {
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary => {
                if let Phase::Connected { skip_binary, .. } = &mut self.phase
                    && *skip_binary > 0
                {
                    *skip_binary -= 1;
                } else {
                    self.events.push_back(SessionEvent::Warning(
                        "unexpected binary frame ignored".into(),
                    ));
                }
                return Ok(());
            }
            Frame::Close(desc) => {
                return Err((
                    DisconnectReason::TransportClosed(format!("close frame {desc}")),
                    false,
                ));
            }
            Frame::End => {
                return Err((
                    DisconnectReason::TransportClosed("end of stream".into()),
                    false,
                ));
            }
            Frame::Control => return Ok(()),
        };
        let protocol_error = |e: String| (DisconnectReason::ProtocolError(e), true);
        let packet = EioPacket::decode(text).map_err(|e| {
            warn!(error = %e, packet = %truncate(text), "malformed Engine.IO packet");
            protocol_error(e.to_string())
        })?;
        match packet {
            EioPacket::Ping(p) => self.send_text(EioPacket::Pong(p).encode()),
            EioPacket::Close => return Err((DisconnectReason::ServerDisconnect, false)),
            EioPacket::Message(m) => {
                let sio = SioPacket::decode(&m).map_err(|e| {
                    warn!(error = %e, packet = %truncate(&m), "malformed Socket.IO packet");
                    protocol_error(e.to_string())
                })?;
                if sio.namespace != MAIN_NAMESPACE {
                    debug!(namespace = %sio.namespace, "packet for another namespace ignored");
                    return Ok(());
                }
                match sio.kind {
                    SioKind::Event { name, args, .. } if name == SERVER_SHUTDOWN => {
                        let reconnect_after = shutdown_wait(args.first());
                        info!(server = %self.server_url(), ?reconnect_after, "the server announced its shutdown");
                        return Err((DisconnectReason::ServerShutdown { reconnect_after }, false));
                    }
                    SioKind::Event { id, name, args } => {
                        let generation = self.generation;
                        let ack = id.map(|id| AckTicket { id, generation });
                        self.events
                            .push_back(SessionEvent::Message { name, args, ack });
                    }
                    SioKind::Ack { id, args } => match self.pending.remove(&id) {
                        Some((_, request)) => self.answer(Some(request), Ok(args)),
                        None => debug!(id, "ack for nobody (timed out?)"),
                    },
                    SioKind::Disconnect => return Err((DisconnectReason::ServerDisconnect, false)),
                    SioKind::Binary { attachments, ack } => {
                        if let Phase::Connected { skip_binary, .. } = &mut self.phase {
                            *skip_binary = skip_binary.saturating_add(attachments);
                        }
                        self.events.push_back(SessionEvent::Warning(format!(
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

/// The wait a `server-shutdown` notice asks for: its `reconnectAfterMs`, within
/// `0..=MAX_SHUTDOWN_WAIT` (absent or not a number: none).
fn shutdown_wait(data: Option<&Value>) -> Duration {
    let ms = data
        .and_then(|d| d.get("reconnectAfterMs"))
        .and_then(Value::as_f64)
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .unwrap_or(0.0)
        // Capped before the conversion: a huge number must not overflow it.
        .min(MAX_SHUTDOWN_WAIT.as_secs_f64() * 1000.0);
    Duration::from_secs_f64(ms / 1000.0)
}

/// A frame shortened for error messages and logs.
pub(crate) fn truncate(s: &str) -> String {
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
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(300);
        let t = truncate(&s);
        assert!(t.ends_with("..."));
        assert!(t.len() <= 203);
    }
}

//! The tokio driver of a [`Session`]: one background task owns the websocket,
//! writes what the session sends, feeds it what arrives, and sleeps until its
//! next timeout. Every protocol decision is the session's.
//!
//! [`SocketClient`] is a cheap, clone-able handle that talks to the task over a
//! channel, and [`LinkEvents`] is the single stream of what happens on the link
//! (server events, state changes, overflow reports).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jamz_proto::{ProtoError, ServerEvent};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::SocketConfig;
use crate::error::LinkError;
use crate::session::{
    AckTicket, Frame, Io, LinkState, OutgoingEvent, RequestId, Session, SessionEvent,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Opening = Pin<Box<dyn Future<Output = Result<Ws, LinkError>> + Send>>;

/// A server event. If the server asked for an ack, `ack` answers it.
#[derive(Debug)]
pub struct ServerMessage {
    pub name: String,
    pub args: Vec<Value>,
    pub ack: Option<AckSender>,
}

impl ServerMessage {
    /// The first argument (every event of the protocol has exactly one), or `null`.
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
    ticket: AckTicket,
    cmd: mpsc::UnboundedSender<Command>,
}

impl AckSender {
    /// Sends `ACK id [args...]` on the connection the event came from (ignored if
    /// that connection is gone).
    pub fn send(self, args: Vec<Value>) -> Result<(), LinkError> {
        self.cmd
            .send(Command::Ack {
                ticket: self.ticket,
                args,
            })
            .map_err(|_| LinkError::Closed)
    }
}

/// What the link reports, in order.
#[derive(Debug)]
pub enum LinkEvent {
    State(LinkState),
    /// A server event, decoded (a name this version does not know arrives as
    /// [`ServerEvent::Unknown`]). `raw` is its wire form, with the ack the server
    /// asked for, if any.
    Event {
        /// Boxed: some events (a session state with its playlist) are large.
        event: Box<ServerEvent>,
        raw: ServerMessage,
    },
    /// A server event whose payload breaks the protocol: `error` names the event
    /// and the field at fault. Not delivered as an event.
    BadEvent {
        error: ProtoError,
        raw: ServerMessage,
    },
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
    EmitFirst(OutgoingEvent),
    ReleaseQueue,
    Ack {
        ticket: AckTicket,
        args: Vec<Value>,
    },
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
            Command::EmitFirst(_) => "EmitFirst",
            Command::ReleaseQueue => "ReleaseQueue",
            Command::Ack { .. } => "Ack",
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
        let ws_urls = config.ws_urls()?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(LinkState::Connecting { attempt: 0 });
        let seed = config.seed.unwrap_or_else(rand::random);
        let driver = Driver {
            session: Session::new(config, seed, now()),
            ws_urls,
            transport: Transport::None,
            state_tx,
            cmd_rx,
            cmd_tx: cmd_tx.downgrade(),
            events: ev_tx,
            waiters: HashMap::new(),
            next_request: 0,
            close_acks: Vec::new(),
        };
        tokio::spawn(driver.run());
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

    /// Emits `name` now, ahead of the events the queue holds after a connection
    /// (see [`SocketConfig::hold_queue`]): what a connection needs first, such as
    /// `join-audio-session`. Dropped when not connected: the next connection needs
    /// its own.
    pub fn emit_first(&self, name: impl Into<String>, data: Value) -> Result<(), LinkError> {
        self.command(Command::EmitFirst(OutgoingEvent {
            name: name.into(),
            args: vec![data],
        }))
    }

    /// Sends what the queue held since the connection (events queued while
    /// offline, then those emitted since), in order. Without
    /// [`SocketConfig::hold_queue`] the queue is never held and this does nothing.
    pub fn release_queue(&self) -> Result<(), LinkError> {
        self.command(Command::ReleaseQueue)
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

enum Transport {
    None,
    Opening(Opening),
    Open(Box<Ws>),
}

/// What the transport did.
enum Happened {
    Opened,
    OpenFailed(LinkError),
    Message(Message),
    ReadFailed(String),
    End,
}

/// Waits for the transport (forever when there is none). Cancel-safe: the
/// opening future and the stream keep their progress.
async fn next_on(transport: &mut Transport) -> Happened {
    match transport {
        Transport::None => std::future::pending().await,
        Transport::Opening(fut) => match fut.await {
            Ok(ws) => {
                *transport = Transport::Open(Box::new(ws));
                Happened::Opened
            }
            Err(e) => {
                *transport = Transport::None;
                Happened::OpenFailed(e)
            }
        },
        Transport::Open(ws) => match ws.next().await {
            Some(Ok(m)) => Happened::Message(m),
            Some(Err(e)) => {
                *transport = Transport::None;
                Happened::ReadFailed(e.to_string())
            }
            None => {
                *transport = Transport::None;
                Happened::End
            }
        },
    }
}

struct Driver {
    session: Session,
    /// The websocket URL of every server, in the session's order.
    ws_urls: Vec<String>,
    transport: Transport,
    state_tx: watch::Sender<LinkState>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    /// For [`AckSender`]s; weak so that dropping every handle ends the task.
    cmd_tx: mpsc::WeakUnboundedSender<Command>,
    events: mpsc::UnboundedSender<LinkEvent>,
    /// Callers waiting for an ack.
    waiters: HashMap<RequestId, AckTx>,
    next_request: u64,
    close_acks: Vec<oneshot::Sender<()>>,
}

fn now() -> std::time::Instant {
    std::time::Instant::now()
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.carry_out().await;
            if self.session.is_closed() {
                break;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                () = sleep_until_opt(deadline) => self.session.handle_timeout(now()),
                happened = next_on(&mut self.transport) => self.transport_did(happened),
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    // Every handle dropped: close.
                    None => self.session.close(),
                },
            }
        }
        for tx in self.close_acks.drain(..) {
            let _ = tx.send(());
        }
    }

    /// Does what the session asks of the transport and reports its events, until
    /// it asks nothing more.
    async fn carry_out(&mut self) {
        loop {
            let mut busy = false;
            while let Some(io) = self.session.poll_io() {
                busy = true;
                self.io(io).await;
            }
            while let Some(ev) = self.session.poll_event() {
                busy = true;
                self.deliver(ev);
            }
            if !busy {
                return;
            }
        }
    }

    async fn io(&mut self, io: Io) {
        match io {
            Io::Connect => {
                let Some(url) = self.ws_urls.get(self.session.server()).cloned() else {
                    let e = LinkError::Protocol("no server to connect to".into());
                    self.transport = Transport::Opening(Box::pin(async move { Err(e) }));
                    return;
                };
                let connector = if url.starts_with("wss:") {
                    ensure_tls_provider();
                    match crate::tls::client_config() {
                        Ok(c) => Some(tokio_tungstenite::Connector::Rustls(c)),
                        Err(e) => {
                            self.transport = Transport::Opening(Box::pin(async move { Err(e) }));
                            return;
                        }
                    }
                } else {
                    None
                };
                self.transport = Transport::Opening(Box::pin(async move {
                    let (ws, _resp) = tokio_tungstenite::connect_async_tls_with_config(
                        url.as_str(),
                        None,
                        false,
                        connector,
                    )
                    .await?;
                    Ok(ws)
                }));
            }
            Io::Send(mut t) => {
                let limit = self.session.write_limit();
                let Transport::Open(ws) = &mut self.transport else {
                    self.session
                        .handle_write_failed(now(), t, "no open websocket".into());
                    return;
                };
                let frame = std::mem::take(&mut t.frame);
                let written = match tokio::time::timeout(limit, ws.send(Message::text(frame))).await
                {
                    Ok(r) => r.map_err(LinkError::from),
                    Err(_) => Err(LinkError::Timeout(limit)),
                };
                if let Err(e) = written {
                    self.session.handle_write_failed(now(), t, e.to_string());
                }
            }
            Io::Close { graceful } => {
                let transport = std::mem::replace(&mut self.transport, Transport::None);
                if graceful && let Transport::Open(mut ws) = transport {
                    let closing = WebSocketStream::close(&mut ws, None);
                    let _ = tokio::time::timeout(self.session.write_limit(), closing).await;
                }
            }
        }
    }

    fn transport_did(&mut self, happened: Happened) {
        let now = now();
        match happened {
            Happened::Opened => {}
            Happened::OpenFailed(e) => self.session.handle_transport_error(now, e.to_string()),
            Happened::ReadFailed(e) => self.session.handle_transport_error(now, e),
            Happened::End => self.session.handle_frame(now, Frame::End),
            Happened::Message(m) => match m {
                Message::Text(t) => self.session.handle_frame(now, Frame::Text(t.as_str())),
                Message::Binary(_) => self.session.handle_frame(now, Frame::Binary),
                Message::Close(frame) => {
                    let desc = format!("{frame:?}");
                    self.session.handle_frame(now, Frame::Close(&desc));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                    self.session.handle_frame(now, Frame::Control)
                }
            },
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Emit { event, ack } => {
                let request = ack.map(|tx| {
                    // Forget callers that gave up waiting.
                    let gone: Vec<RequestId> = self
                        .waiters
                        .iter()
                        .filter(|(_, tx)| tx.is_closed())
                        .map(|(id, _)| *id)
                        .collect();
                    for id in gone {
                        self.waiters.remove(&id);
                        self.session.forget_request(id);
                    }
                    let id = RequestId(self.next_request);
                    self.next_request += 1;
                    self.waiters.insert(id, tx);
                    id
                });
                self.session.emit(event, request);
            }
            Command::EmitFirst(event) => self.session.emit_first(event),
            Command::ReleaseQueue => self.session.release_queue(),
            Command::Ack { ticket, args } => self.session.ack(ticket, args),
            Command::SetToken(t) => self.session.set_token(now(), t),
            Command::Close(tx) => {
                self.close_acks.push(tx);
                self.session.close();
            }
        }
    }

    fn deliver(&mut self, ev: SessionEvent) {
        let ev = match ev {
            SessionEvent::State(s) => {
                self.state_tx.send_replace(s.clone());
                LinkEvent::State(s)
            }
            SessionEvent::Message { name, args, ack } => {
                let ack = ack
                    .and_then(|ticket| self.cmd_tx.upgrade().map(|cmd| AckSender { ticket, cmd }));
                ServerMessage { name, args, ack }.into()
            }
            SessionEvent::QueueOverflow { dropped } => LinkEvent::QueueOverflow { dropped },
            SessionEvent::Warning(w) => LinkEvent::Warning(w),
            SessionEvent::AckResult { request, result } => {
                if let Some(tx) = self.waiters.remove(&request) {
                    let _ = tx.send(result);
                }
                return;
            }
        };
        // The receiver may be gone; the link still serves emitters.
        let _ = self.events.send(ev);
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
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

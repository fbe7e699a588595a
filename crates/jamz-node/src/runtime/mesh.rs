//! The peer mesh's driver: one tokio task that owns the UDP sockets and a sans-IO
//! [`jamz_mesh::Mesh`], fed by the node loop (the participants, the server's
//! `webrtc-signal`s, the engine's mesh messages) and feeding it back (links up and down,
//! messages from peers, `peer` events). The WebRTC work (DTLS handshakes, SCTP) runs
//! here, never on the node loop.
//!
//! Links are signalled through the server while it is reachable and survive its loss;
//! while it is not, the engine sends signals over the mesh for other peers to carry.
//! Which members get a link, and when a link is set up anew, is the mesh's
//! ([`Mesh::set_members`], [`Mesh::relink`]): this task hands it the participant list.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jamz_link::SocketClient;
use jamz_mesh::{Mesh, MeshConfig, MeshEvent, Received, Receiver};
use jamz_proto::UserId;
use jamz_proto::events::{WebrtcSignal, names};
use jamz_proto::mesh::MeshEnvelope;
use jamz_sync::api::Input;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Job;
use crate::control::{NodeEvent, PeerState};
use crate::error::NodeError;

/// The largest datagram read (UDP's limit; the mesh's own are about 1200 bytes).
const MAX_DATAGRAM: usize = 65_536;

/// How often the links' round trips are read (ICE measures them every few seconds).
const RTT_EVERY: Duration = Duration::from_secs(2);

/// What the node loop asks of the mesh task.
#[derive(Debug)]
pub(super) enum MeshJob {
    /// The session's members now (from the participant list).
    Members(BTreeSet<UserId>),
    /// A `webrtc-signal` for this device (the server's, or carried over the mesh).
    Signal(WebrtcSignal),
    /// The engine's message, stamped (and signed) by it, to send as it is (to one peer,
    /// or to all).
    Send {
        to: Option<UserId>,
        message: Box<MeshEnvelope>,
    },
    /// Whether the server link is up: signals go out only then (queued ones would reach
    /// peers stale, and an old offer replaces a live link).
    Online(bool),
    /// The engine's `mesh-rejoin` or signal, straight to a peer's mesh socket.
    Direct {
        to: SocketAddr,
        message: Box<MeshEnvelope>,
    },
    /// A link with a member is wanted anew (`Mesh::rejoined`; `true`: it asked).
    Rejoin(UserId, bool),
    /// The settings' STUN servers, their names resolved anew.
    IceServers(ResolvedIceServers),
    /// The node stops: the mesh releases what it holds on servers (its TURN relays), sends
    /// it, says so and ends.
    Stop(tokio::sync::oneshot::Sender<()>),
}

/// The node loop's handle on the mesh task (it stops when this is dropped).
#[derive(Debug, Clone)]
pub(super) struct MeshHandle {
    jobs: mpsc::UnboundedSender<MeshJob>,
    /// How many links are open, for `status.peers`.
    connected: Arc<std::sync::atomic::AtomicU32>,
}

impl MeshHandle {
    pub fn send(&self, job: MeshJob) {
        if self.jobs.send(job).is_err() {
            tracing::debug!("the mesh task has stopped");
        }
    }

    pub fn connected_peers(&self) -> u32 {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The local address the system routes to the server from: the one host candidate a
/// node advertises by default (a loopback server gives a loopback mesh, as in tests).
pub(super) async fn route_to(server: &str) -> IpAddr {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let target = match tokio::net::lookup_host(with_port).await {
        Ok(mut addrs) => addrs.next(),
        Err(e) => {
            tracing::warn!(error = %e, server, "cannot resolve the server for the mesh address");
            None
        }
    };
    let local = async {
        let target = target?;
        let any: IpAddr = if target.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        let probe = UdpSocket::bind((any, 0)).await.ok()?;
        probe.connect(target).await.ok()?;
        probe.local_addr().ok().map(|a| a.ip())
    };
    local.await.unwrap_or(Ipv4Addr::LOCALHOST.into())
}

/// Binds one UDP socket per address and starts the mesh task.
pub(super) async fn spawn(
    session_id: String,
    user: UserId,
    addresses: &[IpAddr],
    ice_servers: &[jamz_mesh::IceServer],
    link: SocketClient,
    jobs_back: mpsc::UnboundedSender<Job>,
) -> Result<MeshHandle, NodeError> {
    let mut sockets = Vec::new();
    for ip in addresses {
        let socket = UdpSocket::bind((*ip, 0))
            .await
            .map_err(|e| NodeError::Invalid(format!("cannot bind a mesh socket on {ip}: {e}")))?;
        let local = socket
            .local_addr()
            .map_err(|e| NodeError::Invalid(format!("mesh socket on {ip}: {e}")))?;
        sockets.push((local, Arc::new(socket)));
    }
    let (resolved, all_resolved) = resolve_ice_servers(ice_servers, true).await;
    let mesh = Mesh::new(
        Instant::now(),
        MeshConfig {
            session_id,
            local_user: user,
            local_candidates: sockets.iter().map(|(a, _)| *a).collect(),
            stun_servers: resolved.stun,
            turn_servers: resolved.turn,
        },
    );
    tracing::info!(addresses = ?mesh_addresses(&sockets), "mesh sockets bound");
    let (tx, rx) = mpsc::unbounded_channel();
    let (datagrams_tx, datagrams_rx) = mpsc::unbounded_channel();
    for (local, socket) in &sockets {
        tokio::spawn(read_socket(
            *local,
            Arc::clone(socket),
            datagrams_tx.clone(),
        ));
    }
    let connected = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let driver = Driver {
        mesh,
        sockets,
        link,
        jobs_back,
        online: false,
        receivers: HashMap::new(),
        connected: Arc::clone(&connected),
        dropped: 0,
        rtts: HashMap::new(),
        paths: HashMap::new(),
        next_rtt: Instant::now() + RTT_EVERY,
    };
    if !ice_servers.is_empty() {
        tokio::spawn(keep_resolving_ice_servers(
            ice_servers.to_vec(),
            tx.downgrade(),
            all_resolved,
        ));
    }
    tokio::spawn(driver.run(rx, datagrams_rx));
    Ok(MeshHandle {
        jobs: tx,
        connected,
    })
}

/// How long an ICE server's name may take to resolve: the mesh starts without a server
/// whose name does not resolve (offline at start, a typo), saying so.
const ICE_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the ICE servers' names are resolved again: a server's address may change
/// over a long drive (DNS-balanced servers, a network that changed).
const ICE_RESOLVE_EVERY: Duration = Duration::from_secs(300);
/// How soon again while some name did not resolve (offline at start, coverage coming back).
const ICE_RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// The settings' ICE servers with their names resolved.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ResolvedIceServers {
    stun: Vec<SocketAddr>,
    turn: Vec<jamz_mesh::TurnServer>,
}

/// Resolves the ICE servers' names anew, every [`ICE_RESOLVE_EVERY`] (every
/// [`ICE_RESOLVE_RETRY`] while one does not resolve), and hands the mesh the addresses,
/// for as long as the mesh task runs.
async fn keep_resolving_ice_servers(
    servers: Vec<jamz_mesh::IceServer>,
    jobs: mpsc::WeakUnboundedSender<MeshJob>,
    mut all_resolved: bool,
) {
    loop {
        tokio::time::sleep(if all_resolved {
            ICE_RESOLVE_EVERY
        } else {
            ICE_RESOLVE_RETRY
        })
        .await;
        let (resolved, all) = resolve_ice_servers(&servers, false).await;
        if all && !all_resolved {
            tracing::info!("every ICE server resolves now");
        }
        all_resolved = all;
        let Some(jobs) = jobs.upgrade() else {
            return; // the mesh is gone
        };
        if jobs.send(MeshJob::IceServers(resolved)).is_err() {
            return;
        }
    }
}

/// The settings' ICE servers as addresses, and whether every name resolved (a name that
/// does not resolve in time is left out, with a warning when `report`: the mesh still
/// links on host candidates).
async fn resolve_ice_servers(
    servers: &[jamz_mesh::IceServer],
    report: bool,
) -> (ResolvedIceServers, bool) {
    let mut all_resolved = true;
    let mut resolved = ResolvedIceServers::default();
    for server in servers {
        let (host, port) = match server {
            jamz_mesh::IceServer::Stun(u) => (u.host.as_str(), u.port),
            jamz_mesh::IceServer::Turn(u) => (u.host.as_str(), u.port),
        };
        let found =
            tokio::time::timeout(ICE_RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await;
        let why = match found {
            Ok(Ok(addrs)) => {
                for a in addrs {
                    match server {
                        jamz_mesh::IceServer::Stun(_) if !resolved.stun.contains(&a) => {
                            resolved.stun.push(a);
                        }
                        jamz_mesh::IceServer::Turn(u)
                            if !resolved.turn.iter().any(|t| t.address == a) =>
                        {
                            resolved.turn.push(jamz_mesh::TurnServer {
                                address: a,
                                username: u.username.clone(),
                                credential: u.credential.clone(),
                            });
                        }
                        _ => {}
                    }
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer in {ICE_RESOLVE_TIMEOUT:?}"),
        };
        all_resolved = false;
        if report {
            tracing::warn!(%server, error = why, "ICE server not resolved; the mesh goes on without it and tries again every {ICE_RESOLVE_RETRY:?}");
        } else {
            tracing::debug!(%server, error = why, "ICE server still not resolved");
        }
    }
    (resolved, all_resolved)
}

fn mesh_addresses(sockets: &[(SocketAddr, Arc<UdpSocket>)]) -> Vec<SocketAddr> {
    sockets.iter().map(|(a, _)| *a).collect()
}

/// A datagram in: (from, to which local socket, bytes).
type Datagram = (SocketAddr, SocketAddr, Vec<u8>);

async fn read_socket(
    local: SocketAddr,
    socket: Arc<UdpSocket>,
    out: mpsc::UnboundedSender<Datagram>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            () = out.closed() => return, // the mesh task stopped: free the socket
        };
        match received {
            Ok((n, source)) => {
                if out.send((source, local, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            // ICMP port-unreachable from a peer that went away shows up as an error on
            // some systems: not fatal to the socket.
            Err(e) => {
                tracing::debug!(error = %e, %local, "mesh socket read");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

struct Driver {
    mesh: Mesh,
    sockets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    link: SocketClient,
    jobs_back: mpsc::UnboundedSender<Job>,
    online: bool,
    /// De-duplication per link: what one peer sends under another's name cannot move
    /// that member's window (a forged far-ahead sequence would make its real messages
    /// look old); the engine judges who wrote what (docs/mesh-trust.md).
    receivers: HashMap<UserId, Receiver>,
    connected: Arc<std::sync::atomic::AtomicU32>,
    /// Messages and signals refused (bad, duplicate, not ours), for the logs.
    dropped: u64,
    /// Each open link's round trip last reported (ms).
    rtts: HashMap<UserId, f64>,
    /// Each open link's path as last told.
    paths: HashMap<UserId, jamz_mesh::LinkPath>,
    next_rtt: Instant,
}

impl Driver {
    async fn run(
        mut self,
        mut jobs: mpsc::UnboundedReceiver<MeshJob>,
        mut datagrams: mpsc::UnboundedReceiver<Datagram>,
    ) {
        loop {
            self.flush();
            let deadline = self
                .mesh
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
                .min(self.next_rtt);
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(MeshJob::Stop(done)) => {
                        // the node stops: its relays are freed now, not in 10 minutes
                        self.mesh.release_relays(Instant::now());
                        self.flush();
                        let _ = done.send(());
                        break;
                    }
                    Some(job) => self.job(job),
                    None => break,
                },
                Some((source, local, bytes)) = datagrams.recv() => {
                    if jamz_mesh::direct::is_direct(&bytes) {
                        self.direct_in(source, &bytes);
                    } else {
                        self.mesh.handle_datagram(Instant::now(), source, local, &bytes);
                    }
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                    let now = Instant::now();
                    self.mesh.handle_timeout(now);
                    if now >= self.next_rtt {
                        self.next_rtt = now + RTT_EVERY;
                        self.report_rtts(now);
                    }
                }
            }
        }
        tracing::debug!(dropped = self.dropped, "mesh task stopped");
    }

    fn job(&mut self, job: MeshJob) {
        let now = Instant::now();
        let result = match job {
            MeshJob::Members(members) => self.mesh.set_members(now, members),
            MeshJob::Signal(signal) => self.mesh.handle_signal(now, signal),
            MeshJob::Send { to, message } => match jamz_mesh::message::encode(&message) {
                Ok(text) => match to {
                    Some(user) => self.mesh.send_text(now, user, &text),
                    None => self.mesh.broadcast_text(now, &text).map(|_| ()),
                },
                Err(e) => {
                    tracing::warn!(error = %e, kind = message.kind, "mesh message not sent");
                    Ok(())
                }
            },
            MeshJob::Online(online) => {
                self.online = online;
                Ok(())
            }
            MeshJob::Direct { to, message } => {
                self.direct(to, &message);
                Ok(())
            }
            MeshJob::Rejoin(user, by_peer) => self.mesh.rejoined(now, user, by_peer),
            MeshJob::IceServers(servers) => {
                self.mesh.set_stun_servers(now, servers.stun);
                self.mesh.set_turn_servers(now, servers.turn);
                Ok(())
            }
            // `run` ends the task on it before any job is handled here
            MeshJob::Stop(_) => Ok(()),
        };
        if let Err(e) = result {
            self.dropped += 1;
            tracing::debug!(error = %e, "mesh");
        }
    }

    /// Carries out what the mesh has to say: datagrams, signals, events (an event may
    /// set a link up again, which has more to say: until nothing is left).
    fn flush(&mut self) {
        loop {
            let mut busy = false;
            while let Some(t) = self.mesh.poll_transmit() {
                busy = true;
                let Some((_, socket)) = self.sockets.iter().find(|(a, _)| *a == t.source) else {
                    continue;
                };
                // UDP: a full send buffer drops the datagram like the network would.
                if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                    tracing::trace!(error = %e, to = %t.destination, "mesh datagram not sent");
                }
            }
            while let Some(signal) = self.mesh.poll_signal() {
                busy = true;
                self.signal(&signal);
            }
            while let Some(event) = self.mesh.poll_event() {
                busy = true;
                self.event(event);
            }
            if !busy {
                break;
            }
        }
        let open = self
            .mesh
            .peers()
            .filter(|(_, s)| *s == jamz_mesh::LinkState::Connected)
            .count();
        self.connected.store(
            u32::try_from(open).unwrap_or(u32::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn signal(&self, signal: &WebrtcSignal) {
        if !self.online {
            // The server cannot carry it: the engine sends it over the mesh, for the peers
            // that reach its target to carry (docs/mesh-trust.md).
            self.back(Job::Input(Input::SignalOut(Box::new(signal.clone()))));
            return;
        }
        match serde_json::to_value(signal) {
            Ok(data) => {
                if let Err(e) = self.link.emit(names::WEBRTC_SIGNAL, data) {
                    tracing::debug!(error = %e, "webrtc-signal not sent");
                }
            }
            Err(e) => tracing::warn!(error = %e, "webrtc-signal not encoded"),
        }
    }

    fn event(&mut self, event: MeshEvent) {
        match event {
            MeshEvent::PeerConnecting(user) => self.peer(user, PeerState::Connecting),
            MeshEvent::PeerConnected(user) => {
                self.peer(user, PeerState::Connected);
                self.back(Job::Input(Input::PeerUp { user, rtt_ms: None }));
                if let Some(address) = self.mesh.remote_address(user) {
                    self.back(Job::Input(Input::PeerAddress { user, address }));
                }
            }
            MeshEvent::PeerClosed(user) => {
                self.rtts.remove(&user);
                self.paths.remove(&user);
                self.peer(user, PeerState::Closed);
                self.back(Job::Input(Input::PeerDown { user }));
                if let Err(e) = self.mesh.relink(Instant::now(), user) {
                    tracing::debug!(error = %e, user, "mesh link not set up again");
                }
            }
            MeshEvent::Message { from, text } => match self
                .receivers
                .entry(from)
                .or_default()
                .receive(text.as_bytes())
            {
                Ok(Received::Message(envelope, _)) => self.back(Job::Input(Input::Mesh {
                    link: from,
                    message: envelope,
                })),
                Ok(Received::Duplicate { .. }) => {}
                Ok(Received::Ignored { kind }) => tracing::debug!(kind, from, "mesh type ignored"),
                Err(e) => {
                    self.dropped += 1;
                    tracing::debug!(error = %e, from, "mesh message refused");
                }
            },
            MeshEvent::Dropped { from, reason } => {
                self.dropped += 1;
                tracing::debug!(?from, reason, "mesh input dropped");
            }
            MeshEvent::Reflexive { base, mapped } => {
                tracing::info!(%base, %mapped, "a STUN server sees this device's mesh socket at {mapped}");
            }
            MeshEvent::Relayed { base, relayed } => {
                tracing::info!(%base, %relayed, "a TURN server relays for this device's mesh socket at {relayed}");
            }
            MeshEvent::RelayTrouble(why) => tracing::warn!("{why}"),
        }
    }

    /// Sends a mesh message straight to `to` (jamz-mesh's `direct`), from the socket of
    /// the same family.
    fn direct(&self, to: SocketAddr, message: &MeshEnvelope) {
        let bytes = match jamz_mesh::direct::encode(message) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, kind = message.kind, "direct mesh message not sent");
                return;
            }
        };
        let Some((_, socket)) = self
            .sockets
            .iter()
            .find(|(a, _)| a.is_ipv4() == to.is_ipv4())
        else {
            tracing::debug!(%to, "no mesh socket of that address family");
            return;
        };
        if let Err(e) = socket.try_send_to(&bytes, to) {
            tracing::debug!(error = %e, %to, "direct mesh datagram not sent");
        }
    }

    /// A datagram straight to our socket: to the engine, which judges it.
    fn direct_in(&mut self, source: SocketAddr, bytes: &[u8]) {
        match jamz_mesh::direct::decode(bytes) {
            Ok(message) => self.back(Job::Input(Input::MeshDirect {
                address: source,
                message: Box::new(message),
            })),
            Err(e) => {
                self.dropped += 1;
                tracing::debug!(error = %e, %source, "direct mesh datagram refused");
            }
        }
    }

    fn peer(&self, user: UserId, state: PeerState) {
        self.back(Job::Event(NodeEvent::Peer {
            user_id: user,
            state,
            rtt_ms: None,
            path: None,
        }));
    }

    /// Tells the engine and the user each open link's round trip when it is first known
    /// or has changed by more than a fifth (and a millisecond), and the user its path
    /// (direct or relayed) when first known or changed.
    fn report_rtts(&mut self, now: Instant) {
        let open: Vec<UserId> = self
            .mesh
            .peers()
            .filter(|(_, s)| *s == jamz_mesh::LinkState::Connected)
            .map(|(u, _)| u)
            .collect();
        for user in open {
            let path = self.mesh.path(now, user);
            let new_path = path.is_some() && path != self.paths.get(&user).copied();
            if let Some(p) = path {
                self.paths.insert(user, p);
            }
            let rtt = self.mesh.rtt_ms(now, user);
            let new_rtt = rtt.is_some_and(|rtt| {
                self.rtts
                    .get(&user)
                    .is_none_or(|old| (rtt - old).abs() > (old * 0.2).max(1.0))
            });
            if let (true, Some(rtt)) = (new_rtt, rtt) {
                self.rtts.insert(user, rtt);
                self.back(Job::Input(Input::PeerUp {
                    user,
                    rtt_ms: Some(rtt),
                }));
            }
            if !new_rtt && !new_path {
                continue;
            }
            self.back(Job::Event(NodeEvent::Peer {
                user_id: user,
                state: PeerState::Connected,
                rtt_ms: self.rtts.get(&user).copied(),
                path: path.map(Into::into),
            }));
        }
    }

    fn back(&self, job: Job) {
        let _ = self.jobs_back.send(job);
    }
}

/// The node loop's side: small hooks called from `runtime/mod.rs`.
impl super::Runtime {
    /// The server's grant key for the engine's trust checks: the one kept on disk at
    /// once (the server may be gone already), then the server's own, fetched and kept.
    pub(super) fn grant_key(&mut self, dir: &std::path::Path) {
        let server = self.rest.base_url().to_owned();
        match crate::grant_key::load(dir, &server) {
            Ok(Some(key)) => self.feed(Input::GrantKey(key)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the kept grant key is not used"),
        }
        let rest = self.rest.clone();
        let jobs = self.jobs.clone();
        let dir = dir.to_owned();
        tokio::spawn(async move {
            match rest.grant_key().await {
                Ok(key) => {
                    if let Err(e) = crate::grant_key::save(&dir, &server, &key) {
                        tracing::warn!(error = %e, "the server's grant key is not kept");
                    }
                    let _ = jobs.send(Job::Input(Input::GrantKey(key)));
                }
                // A server without grants, or gone: the kept key (if any) stays in use.
                Err(e) => tracing::info!(error = %e, "no grant key from the server"),
            }
        });
    }

    /// The engine's mesh message.
    pub(super) fn mesh_send(&self, to: Option<UserId>, message: Box<MeshEnvelope>) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Send { to, message });
        }
    }

    /// The participant list changed: every member gets a link.
    pub(super) fn mesh_members(&self, participants: &[jamz_sync::api::ParticipantView]) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Members(
                participants.iter().map(|p| p.user_id).collect(),
            ));
        }
    }

    /// A `webrtc-signal` for this device (the engine's word: the server's, or carried over
    /// the mesh).
    pub(super) fn mesh_signal(&self, signal: WebrtcSignal) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Signal(signal));
        }
    }

    /// The engine's message straight to a peer's mesh socket.
    pub(super) fn mesh_direct(&self, to: SocketAddr, message: Box<MeshEnvelope>) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Direct { to, message });
        }
    }

    /// A member asks for a link anew.
    pub(super) fn mesh_rejoin(&self, user: UserId, by_peer: bool) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Rejoin(user, by_peer));
        }
    }

    /// The server link went up or down.
    pub(super) fn mesh_online(&self, online: bool) {
        if let Some(mesh) = &self.mesh {
            mesh.send(MeshJob::Online(online));
        }
    }

    /// Stops the mesh task, once it has released its TURN relays (at most `within`).
    pub(super) async fn mesh_stop(&mut self, within: Duration) {
        if let Some(mesh) = self.mesh.take() {
            let (done, stopped) = tokio::sync::oneshot::channel();
            mesh.send(MeshJob::Stop(done));
            if tokio::time::timeout(within, stopped).await.is_err() {
                tracing::debug!("the mesh task did not stop in time");
            }
        }
    }

    /// How many peers' links are open (`status.peers`).
    pub(super) fn mesh_peers(&self) -> u32 {
        self.mesh.as_ref().map_or(0, MeshHandle::connected_peers)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ice_server_names_resolve_to_addresses_and_one_that_does_not_is_told_apart() {
        let local: jamz_mesh::IceServer = "stun:127.0.0.1:3478".parse().unwrap();
        let relay: jamz_mesh::IceServer = "turn:car:secret@localhost:3479".parse().unwrap();
        let (servers, all) = resolve_ice_servers(&[local.clone(), relay.clone()], false).await;
        assert_eq!(
            servers.stun,
            vec!["127.0.0.1:3478".parse::<SocketAddr>().unwrap()]
        );
        assert!(
            servers.turn.iter().any(|t| t.address
                == "127.0.0.1:3479".parse::<SocketAddr>().unwrap()
                && t.username == "car"
                && t.credential == "secret"),
            "{:?}",
            servers.turn
        );
        assert!(all);
        // `.invalid` never resolves (RFC 6761): the known servers are kept, and the
        // answer says a retry is due.
        let nowhere: jamz_mesh::IceServer = "stun:stun.jamz.invalid:3478".parse().unwrap();
        let relay_nowhere: jamz_mesh::IceServer =
            "turn:car:secret@turn.jamz.invalid".parse().unwrap();
        let (servers, all) =
            resolve_ice_servers(&[local, nowhere, relay, relay_nowhere], false).await;
        assert_eq!(
            servers.stun,
            vec!["127.0.0.1:3478".parse::<SocketAddr>().unwrap()]
        );
        assert!(!servers.turn.is_empty());
        assert!(servers.turn.iter().all(|t| t.address.port() == 3479));
        assert!(!all);
    }
}

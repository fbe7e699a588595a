//! The peer mesh, sans-IO: one WebRTC peer connection per pair of session members, each
//! with a `music-control` DataChannel (ordered, 3 retransmissions), as docs/protocol.md's
//! "Peer mesh" gives it.
//!
//! Like the engine, a [`Mesh`] never reads a clock and owns no socket. Its owner (the node)
//! feeds it `now`, the datagrams its UDP sockets received and the `webrtc-signal` payloads
//! the server relayed, and drains what comes out: datagrams to send
//! ([`Mesh::poll_transmit`]), signals to send ([`Mesh::poll_signal`]), events
//! ([`Mesh::poll_event`]) and the next deadline ([`Mesh::poll_timeout`]).
//!
//! All links share the owner's sockets: each local host candidate is one socket address
//! (bound to a specific address, not a wildcard). A datagram is routed to its link by
//! the ICE username of a connectivity check, else by the address it came from.
//!
//! The WebRTC core is `rtc` (webrtc-rs's sans-IO core); see the crate README for why and
//! what the browser interop test showed.

pub mod direct;
mod ice_url;
mod link;
pub mod message;
mod reflexive;
mod stun;
#[cfg(feature = "test-support")]
pub mod stun_responder;
mod turn;
#[cfg(feature = "test-support")]
pub mod turn_server;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use jamz_proto::UserId;
use jamz_proto::events::{SignalType, WebrtcSignal};

pub use ice_url::{DEFAULT_STUN_PORT, IceServer, IceUrlError, StunUrl, TurnUrl};
use link::{Gathered, Link, LinkOutput};
pub use link::{LinkPath, LinkState};
pub use message::{MAX_MESSAGE_BYTES, MessageError, Outgoing, Received, Receiver};
pub use turn::TurnServer;

const MAX_OUTSTANDING_CHECKS: usize = 4096;

/// What a [`Mesh`] needs to know about its member and its network.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub session_id: String,
    pub local_user: UserId,
    /// The addresses of the owner's UDP sockets, advertised as host candidates.
    pub local_candidates: Vec<SocketAddr>,
    /// STUN servers (the settings' [`StunUrl`]s, resolved by the owner) each socket asks
    /// for its server-reflexive address; none by default: host candidates only. The list at
    /// start: [`Mesh::set_stun_servers`] replaces it (the gatherer holds the one in force).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers (the settings' [`TurnUrl`]s, resolved by the owner) on which each
    /// socket holds an allocation, advertised as a relayed candidate; none by default.
    /// The list at start: [`Mesh::set_turn_servers`] replaces it.
    pub turn_servers: Vec<TurnServer>,
}

/// A datagram for the owner to send from the socket bound to `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// What happened on the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// A link to `user` is being set up (signaling, ICE, DTLS, SCTP).
    PeerConnecting(UserId),
    /// The `music-control` channel to `user` is open: time for `state-hello`.
    PeerConnected(UserId),
    /// The link to `user` failed or was closed; it needs new signaling to come back.
    PeerClosed(UserId),
    /// A text message on `user`'s `music-control` channel.
    Message { from: UserId, text: String },
    /// Something refused: a signal for another session or user, a binary or oversized
    /// message. Counted by the owner; never fatal.
    Dropped {
        from: Option<UserId>,
        reason: String,
    },
    /// A STUN server says datagrams from our socket `base` come from `mapped`: advertised
    /// to every link as a server-reflexive candidate (unless it is `base` itself: no NAT).
    Reflexive {
        base: SocketAddr,
        mapped: SocketAddr,
    },
    /// A TURN server relays for our socket `base` at `relayed`: advertised to every link
    /// as a relayed candidate.
    Relayed {
        base: SocketAddr,
        relayed: SocketAddr,
    },
    /// A TURN server refused or did not answer; what was tried again, and when, is said.
    /// Never fatal: the other candidates still link.
    RelayTrouble(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("no link to user {0}")]
    UnknownPeer(UserId),
    #[error("the link is not connected")]
    NotConnected,
    #[error("a mesh message is {0} bytes; the limit is 64 KiB")]
    TooLarge(usize),
    #[error("signal refused: {0}")]
    BadSignal(String),
    #[error("webrtc: {0}")]
    Rtc(String),
}

/// An offer unanswered for this long is made anew when its peer asks for a link again
/// ([`Mesh::rejoined`]): younger, its answer may still be on its way.
pub const REOFFER_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// The peer mesh of one member: a link per other member.
pub struct Mesh {
    config: MeshConfig,
    links: BTreeMap<UserId, Link>,
    /// Who we last sent to from which remote address: routes datagrams with no ICE username.
    routes: HashMap<SocketAddr, UserId>,
    /// Our outstanding connectivity checks: a response may come back from another source
    /// address than the one checked (a host with several addresses answers from the one
    /// its kernel picks), so responses are routed by transaction id.
    checks: HashMap<[u8; 12], UserId>,
    transmits: VecDeque<Transmit>,
    signals: VecDeque<WebrtcSignal>,
    events: VecDeque<MeshEvent>,
    /// The session's members as last given by [`Mesh::set_members`] (without us).
    members: BTreeSet<UserId>,
    /// Each link's peer: the address its datagrams last came from.
    last_source: HashMap<UserId, SocketAddr>,
    /// Peers whose current link was made for a rejoin request ([`Mesh::rejoined`]).
    asked: BTreeSet<UserId>,
    /// Our questions to the STUN servers, and their answers.
    reflexive: reflexive::Gatherer,
    /// Our allocations on the TURN servers.
    relays: turn::Relays,
}

impl Mesh {
    /// A mesh with no links yet; its first questions to the STUN servers are due at `now`.
    pub fn new(now: Instant, config: MeshConfig) -> Self {
        let reflexive = reflexive::Gatherer::new(&config.local_candidates, &config.stun_servers);
        let relays = turn::Relays::new(now, &config.local_candidates, &config.turn_servers);
        let mut mesh = Self {
            config,
            links: BTreeMap::new(),
            routes: HashMap::new(),
            checks: HashMap::new(),
            transmits: VecDeque::new(),
            signals: VecDeque::new(),
            events: VecDeque::new(),
            members: BTreeSet::new(),
            last_source: HashMap::new(),
            asked: BTreeSet::new(),
            reflexive,
            relays,
        };
        mesh.ask_stun_servers(now);
        mesh.collect_relays(now);
        mesh
    }

    /// The TURN servers' names resolved anew: an allocation on a server still there is
    /// kept, a new server is asked at once, one gone is released. Candidates already given
    /// to links stay theirs.
    pub fn set_turn_servers(&mut self, now: Instant, servers: Vec<TurnServer>) {
        if self
            .relays
            .set_servers(now, &self.config.local_candidates, &servers)
        {
            tracing::info!(servers = ?servers, "TURN servers resolved anew");
        }
        self.collect_relays(now);
    }

    /// Releases every TURN allocation (a refresh with lifetime 0, RFC 8656 §7), for an owner
    /// that is stopping: the server frees the relay at once instead of when its lifetime
    /// ends. The requests are transmits like any other; send them before closing the sockets.
    pub fn release_relays(&mut self, now: Instant) {
        self.relays
            .set_servers(now, &self.config.local_candidates, &[]);
        self.collect_relays(now);
    }

    /// Moves what the allocations produced: datagrams to the servers, relayed candidates to
    /// every link, forwarded datagrams to their link.
    fn collect_relays(&mut self, now: Instant) {
        loop {
            while let Some((source, destination, contents)) = self.relays.poll_transmit() {
                self.transmits.push_back(Transmit {
                    source,
                    destination,
                    contents,
                });
            }
            let Some(out) = self.relays.poll_output() else {
                break;
            };
            match out {
                turn::TurnOutput::Allocated { base, relayed } => {
                    self.gathered(Gathered::Relayed {
                        base,
                        address: relayed,
                    });
                    self.events.push_back(MeshEvent::Relayed { base, relayed });
                }
                turn::TurnOutput::Data {
                    relayed,
                    from,
                    contents,
                } => self.route_datagram(now, from, relayed, &contents),
                turn::TurnOutput::Trouble(why) => {
                    // servers pad their reason phrases with NULs
                    self.events
                        .push_back(MeshEvent::RelayTrouble(why.replace('\0', "")));
                }
            }
        }
    }

    /// A reflexive or relayed address learned: told to every link.
    fn gathered(&mut self, gathered: Gathered) {
        let users: Vec<UserId> = self.links.keys().copied().collect();
        for user in users {
            if let Some(link) = self.links.get_mut(&user)
                && let Err(e) = link.add_gathered(gathered)
            {
                tracing::debug!(user, "candidate not added: {e}");
            }
            self.collect_user(user);
        }
    }

    /// The STUN servers' names resolved anew (the owner does so from time to time, and
    /// sooner while a name did not resolve): a server new to the list is asked at once, one
    /// still there keeps its mapping, one gone is no longer asked. Candidates already given
    /// to links stay theirs.
    pub fn set_stun_servers(&mut self, now: Instant, servers: Vec<SocketAddr>) {
        if self
            .reflexive
            .set_servers(&self.config.local_candidates, &servers)
        {
            tracing::info!(servers = ?servers, "STUN servers resolved anew");
        }
        self.ask_stun_servers(now);
    }

    fn ask_stun_servers(&mut self, now: Instant) {
        for (source, destination, contents) in self.reflexive.requests(now) {
            self.transmits.push_back(Transmit {
                source,
                destination,
                contents,
            });
        }
    }

    /// An answer from a STUN server: a new address is told to every link.
    fn stun_answer(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        match self
            .reflexive
            .handle_answer(now, source, destination, contents)
        {
            Ok(None) => true,
            Ok(Some(learned)) => {
                self.gathered(Gathered::Reflexive {
                    base: learned.base,
                    address: learned.mapped,
                });
                self.events.push_back(MeshEvent::Reflexive {
                    base: learned.base,
                    mapped: learned.mapped,
                });
                true
            }
            Err(reflexive::NotAnswer::Bad(why)) => {
                self.events.push_back(MeshEvent::Dropped {
                    from: None,
                    reason: format!("an answer from the STUN server {source}: {why}"),
                });
                true
            }
            Err(reflexive::NotAnswer::NotOurs) => false,
        }
    }

    /// The session's members, as the participant list gives them: each gets a link
    /// ([`Mesh::add_peer`]). A member new to the list has no link on its side (it
    /// (re)joined): if we offer, we offer anew unless our link to it is open (a first
    /// offer may have gone out before it was in the room, and the server refused to relay
    /// it). A member gone from the list keeps its link until it closes: after a server
    /// restart the list fills again as members rejoin. Returns the last error, if any.
    pub fn set_members(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = UserId>,
    ) -> Result<(), MeshError> {
        let mine = self.config.local_user;
        let members: BTreeSet<UserId> = members.into_iter().filter(|u| *u != mine).collect();
        let rejoined: Vec<UserId> = members.difference(&self.members).copied().collect();
        for user in rejoined {
            if self.offers_to(user) && self.peer_state(user) != Some(LinkState::Connected) {
                self.remove_peer(user);
            }
        }
        self.members = members;
        let mut result = Ok(());
        for user in self.members.clone() {
            if let Err(e) = self.add_peer(now, user) {
                result = Err(e);
            }
        }
        result
    }

    /// After [`MeshEvent::PeerClosed`]: the link to `user` is set up again while it is
    /// still a member.
    pub fn relink(&mut self, now: Instant, user: UserId) -> Result<(), MeshError> {
        if self.members.contains(&user) {
            self.add_peer(now, user)
        } else {
            Ok(())
        }
    }

    /// A link with `user` is wanted again (a `mesh-rejoin`, docs/protocol.md): `by_peer`,
    /// `user` restarted and asks (any offer made before went nowhere); else this device,
    /// restarted, asks. If we offer, we offer anew unless our link to it is open, already
    /// answered (its checks under way), or our offer is younger than [`REOFFER_AFTER`]
    /// and was made for such a request (its answer may be on its way); if it offers, a
    /// closed link waits for its offer again. Safe to call again and again (a restarted
    /// member asks until a link is up). `user` becomes a member if it was not one (the
    /// engine checked it is one of the session's).
    pub fn rejoined(&mut self, now: Instant, user: UserId, by_peer: bool) -> Result<(), MeshError> {
        if user == self.config.local_user {
            return Ok(());
        }
        self.members.insert(user);
        let stale = match self.links.get(&user) {
            None => true,
            Some(l) => {
                let young = now.saturating_duration_since(l.created) < REOFFER_AFTER;
                let for_a_request = self.asked.contains(&user);
                l.state == LinkState::Closed
                    || (self.offers_to(user)
                        && l.is_offerer()
                        && !l.has_remote_description()
                        && l.state != LinkState::Connected
                        && !(young && (for_a_request || !by_peer)))
            }
        };
        if stale {
            self.remove_peer(user);
            self.add_peer(now, user)?;
            self.asked.insert(user);
        }
        Ok(())
    }

    /// Where `user`'s datagrams last came from (its end of the link): kept so a restarted
    /// node can ask it for a link again with no server.
    pub fn remote_address(&self, user: UserId) -> Option<SocketAddr> {
        self.last_source.get(&user).copied()
    }

    pub fn local_user(&self) -> UserId {
        self.config.local_user
    }

    /// Whether this member makes the offer to `remote` (the lower user id does: no glare).
    pub fn offers_to(&self, remote: UserId) -> bool {
        self.config.local_user < remote
    }

    /// A member to link with. The lower user id offers; the other waits for its offer.
    /// A no-op while a link to `user` is live; a closed link is replaced.
    pub fn add_peer(&mut self, now: Instant, user: UserId) -> Result<(), MeshError> {
        if user == self.config.local_user {
            return Ok(());
        }
        if let Some(link) = self.links.get(&user)
            && link.state != LinkState::Closed
        {
            return Ok(());
        }
        self.new_link(now, user, self.offers_to(user))
    }

    /// A member left: its link is closed and forgotten.
    pub fn remove_peer(&mut self, user: UserId) {
        if let Some(mut link) = self.links.remove(&user) {
            link.close();
            self.collect(user, &mut link);
        }
        self.routes.retain(|_, u| *u != user);
        self.checks.retain(|_, u| *u != user);
        self.last_source.remove(&user);
        self.asked.remove(&user);
    }

    /// The members with a link, and where each stands.
    pub fn peers(&self) -> impl Iterator<Item = (UserId, LinkState)> + '_ {
        self.links.iter().map(|(u, l)| (*u, l.state))
    }

    pub fn peer_state(&self, user: UserId) -> Option<LinkState> {
        self.links.get(&user).map(|l| l.state)
    }

    /// The last round trip measured on the link to `user` (ms): its ICE connectivity
    /// checks' (STUN) on the pair in use. `None` before a first measure.
    pub fn rtt_ms(&mut self, now: Instant, user: UserId) -> Option<f64> {
        self.links.get_mut(&user)?.rtt_ms(now)
    }

    /// Whether the link to `user` goes through a TURN relay; `None` before its pair is
    /// chosen.
    pub fn path(&mut self, now: Instant, user: UserId) -> Option<LinkPath> {
        self.links.get_mut(&user)?.path(now)
    }

    fn new_link(&mut self, now: Instant, user: UserId, offerer: bool) -> Result<(), MeshError> {
        self.asked.remove(&user);
        if let Some(mut old) = self.links.remove(&user) {
            old.close();
            self.collect(user, &mut old);
            self.routes.retain(|_, u| *u != user);
        }
        let gathered: Vec<Gathered> = self
            .reflexive
            .known()
            .into_iter()
            .map(|l| Gathered::Reflexive {
                base: l.base,
                address: l.mapped,
            })
            .chain(
                self.relays
                    .known()
                    .into_iter()
                    .map(|(base, address)| Gathered::Relayed { base, address }),
            )
            .collect();
        let mut link = Link::new(now, offerer, &self.config.local_candidates, &gathered)?;
        self.events.push_back(MeshEvent::PeerConnecting(user));
        self.collect(user, &mut link);
        self.links.insert(user, link);
        Ok(())
    }

    /// A `webrtc-signal` the server (or a relaying peer) delivered.
    pub fn handle_signal(&mut self, now: Instant, signal: WebrtcSignal) -> Result<(), MeshError> {
        if signal.session_id != self.config.session_id {
            return Err(MeshError::BadSignal(format!(
                "for session {}, not ours",
                signal.session_id
            )));
        }
        if signal.to != self.config.local_user || signal.from == self.config.local_user {
            return Err(MeshError::BadSignal(format!(
                "from {} to {}: not for us",
                signal.from, signal.to
            )));
        }
        let user = signal.from;
        match signal.kind {
            SignalType::Offer => {
                let sdp = signal
                    .data
                    .sdp
                    .ok_or_else(|| MeshError::BadSignal("an offer without sdp".into()))?;
                let replace = match self.links.get(&user) {
                    None => true,
                    // our own offer is pending: the lower id wins the glare
                    Some(l) if l.is_offerer() && !l.has_remote_description() => {
                        if self.offers_to(user) {
                            return Err(MeshError::BadSignal(
                                "an offer from a higher user id while ours is pending".into(),
                            ));
                        }
                        true
                    }
                    // a second offer on a described link: the remote restarted
                    Some(l) => l.has_remote_description() || l.state == LinkState::Closed,
                };
                if replace {
                    let early = self.links.get_mut(&user).map(Link::take_early_candidates);
                    self.new_link(now, user, false)?;
                    if let (Some(early), Some(link)) = (early, self.links.get_mut(&user)) {
                        link.restore_early_candidates(early);
                    }
                }
                let link = self
                    .links
                    .get_mut(&user)
                    .ok_or(MeshError::UnknownPeer(user))?;
                let result = link.handle_description(now, SignalType::Offer, sdp);
                if result.is_err() {
                    // a bad offer leaves no half-built link behind
                    self.remove_peer(user);
                } else {
                    self.collect_user(user);
                }
                result
            }
            SignalType::Answer => {
                let sdp = signal
                    .data
                    .sdp
                    .ok_or_else(|| MeshError::BadSignal("an answer without sdp".into()))?;
                let link = self
                    .links
                    .get_mut(&user)
                    .ok_or(MeshError::UnknownPeer(user))?;
                if !link.is_offerer() || link.has_remote_description() {
                    return Err(MeshError::BadSignal("an answer we did not ask for".into()));
                }
                let result = link.handle_description(now, SignalType::Answer, sdp);
                self.collect_user(user);
                result
            }
            SignalType::IceCandidate => {
                let candidate = signal
                    .data
                    .candidate
                    .ok_or_else(|| MeshError::BadSignal("a candidate signal without one".into()))?;
                if candidate.candidate.is_empty() {
                    return Ok(()); // end of the remote's candidates
                }
                // a candidate may come before the offer: keep it on a waiting link
                if !self.links.contains_key(&user) {
                    self.new_link(now, user, self.offers_to(user))?;
                }
                let link = self
                    .links
                    .get_mut(&user)
                    .ok_or(MeshError::UnknownPeer(user))?;
                link.handle_candidate(candidate);
                self.collect_user(user);
                Ok(())
            }
        }
    }

    /// A datagram one of the owner's sockets received: `destination` is that socket's
    /// address (one of the local candidates), `source` the sender's.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if self.reflexive.is_server(source) && self.stun_answer(now, source, destination, contents)
        {
            return;
        }
        if self.relays.is_server(source, destination) {
            self.relays
                .handle_datagram(now, source, destination, contents);
            self.collect_relays(now);
            return;
        }
        self.route_datagram(now, source, destination, contents);
    }

    /// A peer's datagram, to our socket or (forwarded by a TURN server) to our relayed
    /// address `destination`: to its link.
    fn route_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let ufrag = stun::local_ufrag(contents);
        let by_ufrag = ufrag.and_then(|ufrag| {
            self.links
                .iter()
                .find(|(_, l)| l.local_ufrag.as_deref() == Some(ufrag))
                .map(|(u, _)| *u)
        });
        let by_check = stun::response_id(contents).and_then(|id| self.checks.remove(&id));
        let Some(user) = by_ufrag
            .or(by_check)
            .or_else(|| self.routes.get(&source).copied())
        else {
            self.events.push_back(MeshEvent::Dropped {
                from: None,
                reason: match ufrag {
                    Some(u) => format!("a connectivity check from {source} for unknown ufrag {u}"),
                    None => format!(
                        "a datagram from {source} that no link expects ({} bytes, first {:?})",
                        contents.len(),
                        contents.first()
                    ),
                },
            });
            return;
        };
        self.routes.insert(source, user);
        if let Some(link) = self.links.get_mut(&user) {
            self.last_source.insert(user, source);
            link.handle_datagram(now, source, destination, contents);
            self.collect_user(user);
        }
    }

    /// The earliest time [`Mesh::handle_timeout`] is due.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        [
            self.links.values_mut().filter_map(Link::poll_timeout).min(),
            self.reflexive.poll_timeout(),
            self.relays.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ask_stun_servers(now);
        self.relays.handle_timeout(now);
        self.collect_relays(now);
        let due: Vec<UserId> = self
            .links
            .iter_mut()
            .filter_map(|(u, l)| l.poll_timeout().filter(|t| *t <= now).map(|_| *u))
            .collect();
        for user in due {
            if let Some(link) = self.links.get_mut(&user) {
                link.handle_timeout(now);
            }
            self.collect_user(user);
        }
    }

    /// Sends `text` on `user`'s `music-control` channel.
    pub fn send_text(&mut self, now: Instant, user: UserId, text: &str) -> Result<(), MeshError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(MeshError::TooLarge(text.len()));
        }
        let link = self
            .links
            .get_mut(&user)
            .ok_or(MeshError::UnknownPeer(user))?;
        let result = link.send_text(now, text);
        self.collect_user(user);
        result
    }

    /// Sends `text` to every connected peer; returns how many it went to.
    pub fn broadcast_text(&mut self, now: Instant, text: &str) -> Result<usize, MeshError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(MeshError::TooLarge(text.len()));
        }
        let connected: Vec<UserId> = self
            .links
            .iter()
            .filter(|(_, l)| l.state == LinkState::Connected)
            .map(|(u, _)| *u)
            .collect();
        let mut sent = 0;
        for user in connected {
            match self.send_text(now, user, text) {
                Ok(()) => sent += 1,
                Err(e) => tracing::debug!(user, "broadcast skipped a peer: {e}"),
            }
        }
        Ok(sent)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_signal(&mut self) -> Option<WebrtcSignal> {
        self.signals.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<MeshEvent> {
        self.events.pop_front()
    }

    fn collect_user(&mut self, user: UserId) {
        if let Some(mut link) = self.links.remove(&user) {
            self.collect(user, &mut link);
            self.links.insert(user, link);
        }
    }

    /// Moves a link's outputs into the mesh's queues, tagged with its user.
    fn collect(&mut self, user: UserId, link: &mut Link) {
        let mut relayed = false;
        while let Some(t) = link.transmits.pop_front() {
            self.routes.insert(t.destination, user);
            if let Some(id) = stun::request_id(&t.contents) {
                if self.checks.len() >= MAX_OUTSTANDING_CHECKS {
                    // unanswered checks pile up only on dead paths: forget them all at once
                    self.checks.clear();
                }
                self.checks.insert(id, user);
            }
            if self.relays.is_relayed(t.source) {
                // sent from our relayed address: through its TURN server
                let now = link.now();
                self.relays.send(now, t.source, t.destination, t.contents);
                relayed = true;
            } else {
                self.transmits.push_back(t);
            }
        }
        if relayed {
            while let Some((source, destination, contents)) = self.relays.poll_transmit() {
                self.transmits.push_back(Transmit {
                    source,
                    destination,
                    contents,
                });
            }
        }
        while let Some(out) = link.outputs.pop_front() {
            match out {
                LinkOutput::Signal(kind, data) => self.signals.push_back(WebrtcSignal {
                    session_id: self.config.session_id.clone(),
                    from: self.config.local_user,
                    to: user,
                    kind,
                    data,
                }),
                LinkOutput::Opened => self.events.push_back(MeshEvent::PeerConnected(user)),
                LinkOutput::Closed => self.events.push_back(MeshEvent::PeerClosed(user)),
                LinkOutput::Text(text) => self
                    .events
                    .push_back(MeshEvent::Message { from: user, text }),
                LinkOutput::Dropped(reason) => self.events.push_back(MeshEvent::Dropped {
                    from: Some(user),
                    reason: reason.to_owned(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamz_proto::events::{IceCandidateInit, SignalData};

    fn mesh(user: UserId) -> Mesh {
        Mesh::new(
            Instant::now(),
            MeshConfig {
                session_id: "s".into(),
                local_user: user,
                local_candidates: vec![SocketAddr::from(([127, 0, 0, 1], 40000))],
                stun_servers: Vec::new(),
                turn_servers: Vec::new(),
            },
        )
    }

    fn signal(from: UserId, to: UserId, kind: SignalType, data: SignalData) -> WebrtcSignal {
        WebrtcSignal {
            session_id: "s".into(),
            from,
            to,
            kind,
            data,
        }
    }

    fn sdp(text: &str) -> SignalData {
        SignalData {
            sdp: Some(text.into()),
            candidate: None,
        }
    }

    fn offers(m: &mut Mesh) -> Vec<UserId> {
        std::iter::from_fn(|| m.poll_signal())
            .filter(|s| s.kind == SignalType::Offer)
            .map(|s| s.to)
            .collect()
    }

    fn candidates_to(m: &mut Mesh, to: UserId) -> Vec<String> {
        std::iter::from_fn(|| m.poll_signal())
            .filter(|s| s.to == to && s.kind == SignalType::IceCandidate)
            .filter_map(|s| s.data.candidate.map(|c| c.candidate))
            .collect()
    }

    #[test]
    fn a_stun_servers_answer_becomes_a_reflexive_candidate_on_every_link() {
        let now = Instant::now();
        let host = SocketAddr::from(([127, 0, 0, 1], 40000));
        let stun = SocketAddr::from(([127, 0, 0, 1], 3478));
        let mut m = Mesh::new(
            now,
            MeshConfig {
                session_id: "s".into(),
                local_user: 1,
                local_candidates: vec![host],
                stun_servers: vec![stun],
                turn_servers: Vec::new(),
            },
        );
        // Asked at once, from the host socket.
        let ask = m.poll_transmit().unwrap();
        assert_eq!((ask.source, ask.destination), (host, stun));
        // A link made before the answer: host candidate only.
        m.add_peer(now, 2).unwrap();
        let before = candidates_to(&mut m, 2);
        assert!(before.iter().any(|c| c.contains("typ host")), "{before:?}");
        assert!(!before.iter().any(|c| c.contains("srflx")), "{before:?}");
        // The answer: behind a NAT at 203.0.113.7:50000.
        let mapped = SocketAddr::from(([203, 0, 113, 7], 50000));
        m.handle_datagram(now, stun, host, &reflexive::answer(&ask.contents, mapped));
        let events: Vec<MeshEvent> = std::iter::from_fn(|| m.poll_event()).collect();
        assert!(
            events.contains(&MeshEvent::Reflexive { base: host, mapped }),
            "{events:?}"
        );
        let srflx = "typ srflx raddr 127.0.0.1 rport 40000";
        let trickled = candidates_to(&mut m, 2);
        assert!(
            trickled
                .iter()
                .any(|c| c.contains("203.0.113.7 50000") && c.contains(srflx)),
            "the existing link trickles it: {trickled:?}"
        );
        // A link made after the answer has it with its host candidate.
        m.add_peer(now, 3).unwrap();
        let after = candidates_to(&mut m, 3);
        assert!(
            after
                .iter()
                .any(|c| c.contains("203.0.113.7 50000") && c.contains(srflx)),
            "{after:?}"
        );
        // A garbled answer to the next question is dropped with a reason, not obeyed.
        let refresh_at = m.poll_timeout().unwrap();
        m.handle_timeout(refresh_at);
        let again = std::iter::from_fn(|| m.poll_transmit())
            .find(|t| t.destination == stun)
            .unwrap();
        let mut garbled = reflexive::answer(&again.contents, mapped);
        garbled.truncate(26);
        m.handle_datagram(refresh_at, stun, host, &garbled);
        let events: Vec<MeshEvent> = std::iter::from_fn(|| m.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, MeshEvent::Dropped { from: None, reason } if reason.contains("STUN"))),
            "{events:?}"
        );
    }

    #[test]
    fn a_rejoin_request_gets_one_fresh_offer_and_no_churn() {
        let now = Instant::now();
        let mut m = mesh(1);
        m.set_members(now, [1, 2, 5]).unwrap();
        assert_eq!(offers(&mut m), [2, 5]);
        // Our own asking, the offers young: nothing new.
        m.rejoined(now, 2, false).unwrap();
        assert!(offers(&mut m).is_empty());
        // 2 restarted and asks: our earlier offer went nowhere, a fresh one goes.
        m.rejoined(now, 2, true).unwrap();
        assert_eq!(offers(&mut m), [2]);
        // It asks again soon after: its answer may be on its way, no churn.
        m.rejoined(now + std::time::Duration::from_secs(1), 2, true)
            .unwrap();
        assert!(offers(&mut m).is_empty());
        // Unanswered for REOFFER_AFTER: offered anew.
        m.rejoined(now + REOFFER_AFTER, 2, true).unwrap();
        assert_eq!(offers(&mut m), [2]);
        m.rejoined(now + REOFFER_AFTER, 5, false).unwrap();
        assert_eq!(offers(&mut m), [5]);
        // A higher id offers to us: we only wait (no offer), and a member unknown before
        // becomes one.
        let mut high = mesh(9);
        high.rejoined(now, 3, true).unwrap();
        assert!(offers(&mut high).is_empty());
        assert_eq!(high.peer_state(3), Some(LinkState::Connecting));
        assert!(high.remote_address(3).is_none());
    }

    #[test]
    fn members_get_links_and_a_rejoining_one_a_fresh_offer() {
        let now = Instant::now();
        let mut m = mesh(1);
        m.set_members(now, [1, 2, 3]).unwrap();
        assert_eq!(offers(&mut m), [2, 3]);
        // 2 drops off the list (a server restart): its link stays, nothing is offered.
        m.set_members(now, [3]).unwrap();
        assert_eq!(m.peers().map(|(u, _)| u).collect::<Vec<_>>(), [2, 3]);
        assert!(offers(&mut m).is_empty());
        assert!(m.relink(now, 2).is_ok());
        assert!(offers(&mut m).is_empty(), "2 is not a member: no relink");
        // 2 is back with no link on its side: a fresh offer, not the old one.
        m.set_members(now, [2, 3]).unwrap();
        assert_eq!(offers(&mut m), [2]);
    }

    #[test]
    fn the_lower_user_id_offers_and_the_higher_waits() {
        let now = Instant::now();
        let mut low = mesh(1);
        low.add_peer(now, 2).unwrap();
        let offer = low.poll_signal().unwrap();
        assert_eq!(
            (offer.from, offer.to, offer.kind),
            (1, 2, SignalType::Offer)
        );
        let first_candidate = low.poll_signal().unwrap();
        assert_eq!(first_candidate.kind, SignalType::IceCandidate);
        assert!(
            first_candidate
                .data
                .candidate
                .unwrap()
                .candidate
                .contains("127.0.0.1 40000 typ host")
        );
        let mut high = mesh(2);
        high.add_peer(now, 1).unwrap();
        assert!(
            high.poll_signal().is_none(),
            "the higher id waits for the offer"
        );
        assert_eq!(high.poll_event(), Some(MeshEvent::PeerConnecting(1)));
        high.handle_signal(now, offer).unwrap();
        assert_eq!(high.poll_signal().map(|s| s.kind), Some(SignalType::Answer));
        assert!(low.add_peer(now, 1).is_ok() && low.add_peer(now, 2).is_ok());
    }

    #[test]
    fn bad_signals_and_stray_datagrams_are_refused_without_panic() {
        let now = Instant::now();
        let mut m = mesh(5);
        let mut other_session = signal(3, 5, SignalType::Offer, sdp("v=0"));
        other_session.session_id = "other".into();
        assert!(matches!(
            m.handle_signal(now, other_session),
            Err(MeshError::BadSignal(_))
        ));
        let not_for_us = signal(3, 4, SignalType::Offer, sdp("v=0"));
        assert!(matches!(
            m.handle_signal(now, not_for_us),
            Err(MeshError::BadSignal(_))
        ));
        let garbage_offer = signal(3, 5, SignalType::Offer, sdp("not an sdp"));
        assert!(matches!(
            m.handle_signal(now, garbage_offer),
            Err(MeshError::Rtc(_))
        ));
        let unasked = signal(9, 5, SignalType::Answer, sdp("v=0"));
        assert!(m.handle_signal(now, unasked).is_err());
        let no_sdp = signal(3, 5, SignalType::Offer, SignalData::default());
        assert!(matches!(
            m.handle_signal(now, no_sdp),
            Err(MeshError::BadSignal(_))
        ));
        let bad_candidate = IceCandidateInit {
            candidate: "candidate:garbage".into(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        };
        let early = signal(
            8,
            5,
            SignalType::IceCandidate,
            SignalData {
                sdp: None,
                candidate: Some(bad_candidate),
            },
        );
        assert!(
            m.handle_signal(now, early).is_ok(),
            "kept until its offer comes"
        );
        while m.poll_event().is_some() {}
        m.handle_datagram(
            now,
            SocketAddr::from(([10, 0, 0, 1], 9)),
            m.config.local_candidates[0],
            &[0xff; 40],
        );
        assert!(matches!(
            m.poll_event(),
            Some(MeshEvent::Dropped { from: None, .. })
        ));
        assert!(matches!(
            m.send_text(now, 8, "x"),
            Err(MeshError::NotConnected)
        ));
        assert!(matches!(
            m.send_text(now, 8, &"x".repeat(MAX_MESSAGE_BYTES + 1)),
            Err(MeshError::TooLarge(_))
        ));
    }
}

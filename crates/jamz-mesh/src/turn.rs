//! Relayed candidates (RFC 8445 §5.1.1.2, RFC 8656): each of the owner's sockets holds an
//! allocation on each TURN server of the settings, and every link advertises its relayed
//! address as a `relay` candidate. Cars behind NATs that map each destination apart
//! (carrier-grade NAT) cannot reach each other's reflexive addresses; the relay can.
//!
//! Sans-IO like the rest: `rtc`'s TURN client (rtc-turn) speaks to the server through
//! [`crate::Transmit`]s from the socket it belongs to; what a peer connection sends from a
//! relayed address is wrapped here and goes to the server, and what the server forwards
//! comes back as a datagram from the peer to the relayed address.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::crypto::RTCCryptoProvider;
use rtc::sansio::Protocol;
use rtc::shared::error::Error as RtcError;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::message::TransactionId;
use rtc::turn::client::{Client, ClientConfig, Event};

/// A TURN server of the settings, its name resolved by the owner.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    pub address: SocketAddr,
    pub username: String,
    pub credential: String,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TurnServer({}@{})", self.username, self.address)
    }
}

/// A refused or unanswered allocation is asked again after this, doubling up to
/// [`RETRY_MAX`]: a server that is down now may be up later, and a wrong credential is
/// not hammered.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Datagrams kept per peer while their permission is asked (ICE checks, DTLS): the
/// oldest go first, and ICE sends its checks again anyway.
const WAITING_PER_PEER: usize = 16;
/// Allocations refreshed at least this often: the client-to-server NAT mapping must not
/// expire while the relay is idle (many NATs forget UDP mappings after 30 s; ICE's
/// consent checks keep it alive once a link uses the relay).
const REFRESH_CAP: Duration = Duration::from_secs(25);

/// What the allocations produced for the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TurnOutput {
    /// The server gave our socket `base` the relayed address `relayed`.
    Allocated {
        base: SocketAddr,
        relayed: SocketAddr,
    },
    /// A peer's datagram forwarded by the server.
    Data {
        relayed: SocketAddr,
        from: SocketAddr,
        contents: Vec<u8>,
    },
    /// Something refused or lost, with why (an allocation refused, a bad datagram).
    Trouble(String),
}

/// One socket's allocation on one server.
struct Allocation {
    base: SocketAddr,
    server: TurnServer,
    client: Client,
    relayed: Option<SocketAddr>,
    /// When to ask again for an allocation that failed.
    retry_at: Option<Instant>,
    wait: Duration,
    /// Permissions asked and not answered yet, by transaction.
    asked: HashMap<TransactionId, SocketAddr>,
    /// Datagrams waiting for their peer's permission.
    waiting: HashMap<SocketAddr, VecDeque<Vec<u8>>>,
}

/// The allocations of one mesh.
pub(crate) struct Relays {
    crypto: Option<Arc<dyn RTCCryptoProvider>>,
    allocations: Vec<Allocation>,
    outputs: VecDeque<TurnOutput>,
    transmits: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Relays {
    /// Each local socket asks each server (same address family only), at once.
    pub(crate) fn new(now: Instant, locals: &[SocketAddr], servers: &[TurnServer]) -> Self {
        let mut relays = Relays {
            crypto: None,
            allocations: Vec::new(),
            outputs: VecDeque::new(),
            transmits: VecDeque::new(),
        };
        relays.set_servers(now, locals, servers);
        relays
    }

    /// The servers are now `servers` (names resolved anew): an allocation still wanted is
    /// kept, a new one is asked at once, one no longer wanted is released. Whether anything
    /// changed.
    pub(crate) fn set_servers(
        &mut self,
        now: Instant,
        locals: &[SocketAddr],
        servers: &[TurnServer],
    ) -> bool {
        let wanted: Vec<(SocketAddr, &TurnServer)> = locals
            .iter()
            .flat_map(|l| servers.iter().map(move |s| (*l, s)))
            .filter(|(l, s)| l.is_ipv4() == s.address.is_ipv4())
            .collect();
        let before = self.allocations.len();
        let mut kept = Vec::new();
        for mut a in std::mem::take(&mut self.allocations) {
            if wanted.iter().any(|(l, s)| *l == a.base && **s == a.server) {
                kept.push(a);
            } else {
                if let Some(relayed) = a.relayed
                    && let Ok(mut relay) = a.client.relay(relayed)
                    && let Err(e) = relay.close(now)
                {
                    tracing::debug!(%relayed, "TURN allocation not released: {e}");
                }
                self.flush(&mut a);
            }
        }
        let mut changed = kept.len() != before;
        self.allocations = kept;
        for (base, server) in wanted {
            if self
                .allocations
                .iter()
                .any(|a| a.base == base && a.server == *server)
            {
                continue;
            }
            changed = true;
            match self.client(base, server) {
                Ok(client) => {
                    let mut a = Allocation {
                        base,
                        server: server.clone(),
                        client,
                        relayed: None,
                        retry_at: Some(now),
                        wait: RETRY_FIRST,
                        asked: HashMap::new(),
                        waiting: HashMap::new(),
                    };
                    self.allocate(now, &mut a);
                    self.allocations.push(a);
                }
                Err(e) => self.outputs.push_back(TurnOutput::Trouble(format!(
                    "no TURN client for {} from {base}: {e}",
                    server.address
                ))),
            }
        }
        changed
    }

    fn client(&mut self, base: SocketAddr, server: &TurnServer) -> Result<Client, String> {
        let crypto = match &self.crypto {
            Some(c) => c.clone(),
            None => {
                let c = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
                self.crypto = Some(c.clone());
                c
            }
        };
        let config = ClientConfig {
            stun_serv_addr: String::new(),
            turn_serv_addr: server.address.to_string(),
            local_addr: base,
            transport_protocol: TransportProtocol::UDP,
            username: server.username.clone(),
            password: server.credential.clone(),
            // learned from the server's first (unauthenticated) answer
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            allocation_refresh_interval_cap: Some(REFRESH_CAP),
        };
        Client::new(config, crypto).map_err(|e| e.to_string())
    }

    fn allocate(&mut self, now: Instant, a: &mut Allocation) {
        a.retry_at = None;
        if let Err(e) = a.client.allocate(now) {
            self.failed(now, a, format!("not asked: {e}"));
        }
        self.flush(a);
    }

    /// The allocation failed: asked again later.
    fn failed(&mut self, now: Instant, a: &mut Allocation, why: String) {
        self.outputs.push_back(TurnOutput::Trouble(format!(
            "the TURN server {} gave {} no relay ({why}); asking again in {} s",
            a.server.address,
            a.base,
            a.wait.as_secs()
        )));
        a.relayed = None;
        a.retry_at = Some(now + a.wait);
        a.wait = (a.wait * 2).min(RETRY_MAX);
    }

    pub(crate) fn is_server(&self, source: SocketAddr, local: SocketAddr) -> bool {
        self.allocations
            .iter()
            .any(|a| a.server.address == source && a.base == local)
    }

    /// Whether `addr` is one of our relayed addresses (a peer connection sending from it
    /// sends through its server).
    pub(crate) fn is_relayed(&self, addr: SocketAddr) -> bool {
        self.allocations.iter().any(|a| a.relayed == Some(addr))
    }

    /// The (base, relayed) pairs known, for a link made now.
    pub(crate) fn known(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.allocations
            .iter()
            .filter_map(|a| a.relayed.map(|r| (a.base, r)))
            .collect()
    }

    /// A datagram from our server `source` to our socket `local`.
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        contents: &[u8],
    ) {
        let Some(i) = self
            .allocations
            .iter()
            .position(|a| a.server.address == source && a.base == local)
        else {
            return;
        };
        let mut a = self.allocations.swap_remove(i);
        let read = a.client.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: local,
                peer_addr: source,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(contents),
        });
        match read {
            // rtc-turn keeps a relay whose refresh the server refused (437: it no longer
            // has the allocation, as after a restart), and says so only in this error's
            // text: the allocation is made anew, and its new address trickles to every link.
            Err(e) if e.to_string().starts_with("Refresh error response") => {
                let why = format!("the allocation was lost: {e}");
                self.flush(&mut a);
                match self.client(a.base, &a.server.clone()) {
                    Ok(client) => {
                        a.client = client;
                        a.asked.clear();
                        a.waiting.clear();
                        a.wait = RETRY_FIRST;
                        a.relayed = None;
                        a.retry_at = Some(now);
                        self.outputs.push_back(TurnOutput::Trouble(format!(
                            "the TURN server {source} no longer relays for {} ({why}); asking \
                             for a new relay",
                            a.base
                        )));
                    }
                    Err(e) => self.failed(now, &mut a, format!("{why}; no new client: {e}")),
                }
            }
            Err(e) => self.outputs.push_back(TurnOutput::Trouble(format!(
                "a datagram from the TURN server {source} ({} bytes): {e}",
                contents.len()
            ))),
            Ok(()) => {}
        }
        self.flush(&mut a);
        self.settle(now, &mut a);
        self.allocations.push(a);
    }

    /// Sends `contents` from our relayed address to `peer` through its server; held until
    /// the server permits that peer.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
        contents: Vec<u8>,
    ) {
        let Some(i) = self
            .allocations
            .iter()
            .position(|a| a.relayed == Some(relayed))
        else {
            return;
        };
        let mut a = self.allocations.swap_remove(i);
        tracing::trace!(%relayed, %peer, bytes = contents.len(), "relaying");
        match a.client.relay(relayed) {
            Ok(mut relay) => match relay.send_to(now, &contents, peer) {
                Ok(()) => {}
                Err(RtcError::ErrNoPermission) => {
                    tracing::trace!(%peer, "no permission yet");
                    let queue = a.waiting.entry(peer).or_default();
                    if queue.len() >= WAITING_PER_PEER {
                        queue.pop_front();
                    }
                    queue.push_back(contents);
                    if !a.asked.values().any(|p| *p == peer) {
                        match relay.create_permission(now, peer) {
                            Ok(Some(id)) => {
                                a.asked.insert(id, peer);
                            }
                            Ok(None) => {}
                            Err(e) => self.outputs.push_back(TurnOutput::Trouble(format!(
                                "no permission asked for {peer} on {relayed}: {e}"
                            ))),
                        }
                    }
                }
                Err(e) => tracing::debug!(%peer, %relayed, "not relayed: {e}"),
            },
            Err(e) => tracing::debug!(%relayed, "no such allocation: {e}"),
        }
        self.flush(&mut a);
        self.settle(now, &mut a);
        self.allocations.push(a);
    }

    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.allocations
            .iter_mut()
            .filter_map(|a| match (a.client.poll_timeout(), a.retry_at) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            })
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for mut a in std::mem::take(&mut self.allocations) {
            if a.retry_at.is_some_and(|t| t <= now) {
                self.allocate(now, &mut a);
            }
            if a.client.poll_timeout().is_some_and(|t| t <= now)
                && let Err(e) = a.client.handle_timeout(now)
            {
                tracing::debug!(server = %a.server.address, "TURN timeout: {e}");
            }
            self.flush(&mut a);
            self.settle(now, &mut a);
            self.allocations.push(a);
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<TurnOutput> {
        self.outputs.pop_front()
    }

    /// (from, to, datagram)
    pub(crate) fn poll_transmit(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    fn flush(&mut self, a: &mut Allocation) {
        while let Some(t) = a.client.poll_write() {
            self.transmits.push_back((
                t.transport.local_addr,
                t.transport.peer_addr,
                t.message.to_vec(),
            ));
        }
    }

    /// Acts on what the client learned.
    fn settle(&mut self, now: Instant, a: &mut Allocation) {
        while let Some(event) = a.client.poll_event() {
            match event {
                Event::AllocateResponse(_, relayed) => {
                    a.relayed = Some(relayed);
                    a.wait = RETRY_FIRST;
                    self.outputs.push_back(TurnOutput::Allocated {
                        base: a.base,
                        relayed,
                    });
                }
                Event::AllocateError(_, e) => self.failed(now, a, e.to_string()),
                Event::CreatePermissionResponse(id, peer) => {
                    tracing::debug!(%peer, base = %a.base, "TURN permission granted");
                    a.asked.remove(&id);
                    let waiting = a.waiting.remove(&peer).unwrap_or_default();
                    if let Some(relayed) = a.relayed
                        && let Ok(mut relay) = a.client.relay(relayed)
                    {
                        for contents in waiting {
                            if let Err(e) = relay.send_to(now, &contents, peer) {
                                tracing::debug!(%peer, "not relayed after its permission: {e}");
                            }
                        }
                    }
                }
                Event::CreatePermissionError(id, e) => {
                    if let Some(peer) = a.asked.remove(&id) {
                        a.waiting.remove(&peer);
                        self.outputs.push_back(TurnOutput::Trouble(format!(
                            "the TURN server {} refused a permission for {peer}: {e}",
                            a.server.address
                        )));
                    }
                }
                Event::TransactionTimeout(id) => {
                    if let Some(peer) = a.asked.remove(&id) {
                        a.waiting.remove(&peer);
                    } else if a.relayed.is_none() && a.retry_at.is_none() {
                        self.failed(now, a, "no answer".to_owned());
                    }
                }
                Event::DataIndicationOrChannelData(_, from, data) => {
                    tracing::trace!(%from, bytes = data.len(), "relayed to us");
                    if let Some(relayed) = a.relayed {
                        self.outputs.push_back(TurnOutput::Data {
                            relayed,
                            from,
                            contents: data.to_vec(),
                        });
                    }
                }
                _ => {}
            }
        }
        self.flush(a);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server() -> TurnServer {
        TurnServer {
            address: "127.0.0.1:3478".parse().unwrap(),
            username: "car".into(),
            credential: "secret".into(),
        }
    }

    #[test]
    fn each_socket_asks_each_server_of_its_family_at_once_and_again_after_no_answer() {
        let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let v6 = TurnServer {
            address: "[::1]:3478".parse().unwrap(),
            ..server()
        };
        let t0 = Instant::now();
        let mut relays = Relays::new(t0, &[local], &[server(), v6]);
        let asked: Vec<_> = std::iter::from_fn(|| relays.poll_transmit()).collect();
        assert_eq!(
            asked.len(),
            1,
            "the IPv6 server is not asked from an IPv4 socket"
        );
        assert_eq!((asked[0].0, asked[0].1), (local, server().address));
        assert!(relays.is_server(server().address, local));
        assert!(!relays.is_relayed(local));
        // Unanswered: the client retransmits, then gives up and the mesh asks again later.
        let mut now = t0;
        let mut told = Vec::new();
        for _ in 0..64 {
            let Some(next) = relays.poll_timeout() else {
                break;
            };
            now = next.max(now);
            relays.handle_timeout(now);
            while relays.poll_transmit().is_some() {}
            told.extend(std::iter::from_fn(|| relays.poll_output()));
            if !told.is_empty() {
                break;
            }
        }
        assert!(
            matches!(told.first(), Some(TurnOutput::Trouble(why)) if why.contains("no answer")),
            "{told:?}"
        );
        // Forgetting the server releases nothing (no allocation) and stops asking it.
        assert!(relays.set_servers(now, &[local], &[]));
        assert!(!relays.is_server(server().address, local));
        assert_eq!(relays.poll_timeout(), None);
    }

    proptest::proptest! {
        #![proptest_config(jamz_proto::test_support::proptest_config(256))]
        #[test]
        fn never_panics_on_datagrams_from_the_server(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
            stun_header in proptest::prelude::any::<bool>(),
        ) {
            let local: SocketAddr = "127.0.0.1:4000".parse().unwrap();
            let now = Instant::now();
            let mut relays = Relays::new(now, &[local], &[server()]);
            let request = relays.poll_transmit().unwrap().2;
            let mut bytes = bytes;
            if stun_header && bytes.len() >= 20 {
                // a response-shaped header with the outstanding transaction id
                bytes[0] = 0x01;
                bytes[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
                bytes[8..20].copy_from_slice(&request[8..20]);
            }
            relays.handle_datagram(now, server().address, local, &bytes);
            while relays.poll_output().is_some() {}
            relays.handle_timeout(now + Duration::from_secs(1));
            relays.send(now, "127.0.0.1:9".parse().unwrap(), "127.0.0.1:10".parse().unwrap(), bytes);
        }
    }
}

//! Native meshes over real loopback UDP sockets: every pair links up through signaling
//! passed between them (as the server relays `webrtc-signal`), and messages go both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Cmd, NodeHandle, Out, spawn_node, spawn_node_asking};
use jamz_mesh::stun_responder::StunResponder;
use jamz_mesh::{Outgoing, Received, Receiver};
use jamz_proto::UserId;
use jamz_proto::events::{ControlAction, SignalType, WebrtcSignal};
use jamz_proto::mesh::{MeshPayload, kinds};
use serde_json::json;
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Relays signals between the nodes and collects their events until `done` says so.
struct Harness {
    nodes: Vec<NodeHandle>,
    outs: mpsc::UnboundedReceiver<(UserId, Out)>,
    tx: common::Outputs,
    /// A link may close (a restarted peer's old link is replaced).
    closed_ok: bool,
    connected: BTreeSet<(UserId, UserId)>,
    messages: BTreeMap<UserId, Vec<(UserId, String)>>,
    signals: usize,
    /// Hold each offer and answer until a candidate of the same pair has been delivered.
    candidates_first: bool,
    held: Vec<WebrtcSignal>,
    early_candidates: usize,
    /// Each node's (base, mapped) from a STUN server's answer.
    reflexive: BTreeMap<UserId, (std::net::SocketAddr, std::net::SocketAddr)>,
}

impl Harness {
    /// Stops `user`'s node (its socket closes with it) and starts a fresh one for the user.
    async fn restart(&mut self, user: UserId) {
        self.nodes.retain(|n| n.user != user);
        self.connected.retain(|(a, b)| *a != user && *b != user);
        self.closed_ok = true;
        let node = spawn_node(user, self.tx.clone()).await;
        self.nodes.push(node);
    }

    async fn new(users: &[UserId]) -> Self {
        Self::asking(users, Vec::new()).await
    }

    /// Nodes whose meshes ask `stun_servers` for their reflexive addresses.
    async fn asking(users: &[UserId], stun_servers: Vec<std::net::SocketAddr>) -> Self {
        let (tx, outs) = mpsc::unbounded_channel();
        let mut nodes = Vec::new();
        for u in users {
            nodes.push(spawn_node_asking(*u, tx.clone(), stun_servers.clone()).await);
        }
        Self {
            nodes,
            outs,
            tx,
            closed_ok: false,
            connected: BTreeSet::new(),
            messages: BTreeMap::new(),
            signals: 0,
            candidates_first: false,
            held: Vec::new(),
            early_candidates: 0,
            reflexive: BTreeMap::new(),
        }
    }

    fn node(&self, user: UserId) -> &NodeHandle {
        self.nodes.iter().find(|n| n.user == user).unwrap()
    }

    /// Every member learns of every other (as the session's participant list tells it).
    fn join_all(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                if a.user != b.user {
                    a.send(Cmd::AddPeer(b.user));
                }
            }
        }
    }

    async fn run_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let result = tokio::time::timeout(TIMEOUT, async {
            while !done(self) {
                let (user, out) = self.outs.recv().await.expect("nodes stopped");
                self.handle_quietly(user, out);
            }
        })
        .await;
        assert!(
            result.is_ok(),
            "{what}: not within {TIMEOUT:?}; connected {:?}, messages {:?}",
            self.connected,
            self.messages
        );
    }

    fn handle(&mut self, user: UserId, out: Out) {
        match out {
            Out::Signal(s) => {
                assert_eq!(s.from, user, "a signal carries its sender");
                assert_protocol_shape(&s);
                self.signals += 1;
                let pair = (s.from, s.to);
                if self.candidates_first && s.kind != SignalType::IceCandidate {
                    self.held.push(s);
                    return;
                }
                if s.kind == SignalType::IceCandidate {
                    self.early_candidates +=
                        usize::from(self.held.iter().any(|h| (h.from, h.to) == pair));
                }
                // a signal for a node that is gone is lost, as the server would drop it
                if let Some(n) = self.nodes.iter().find(|n| n.user == s.to) {
                    n.send(Cmd::Signal(s));
                }
                // the description follows its first candidate
                let (release, keep) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|h| (h.from, h.to) == pair);
                self.held = keep;
                for h in release {
                    self.node(h.to).send(Cmd::Signal(h));
                }
            }
            Out::Event(jamz_mesh::MeshEvent::PeerConnected(peer)) => {
                self.connected.insert((user, peer));
            }
            Out::Event(jamz_mesh::MeshEvent::Message { from, text }) => {
                self.messages.entry(user).or_default().push((from, text));
            }
            Out::Event(jamz_mesh::MeshEvent::PeerClosed(peer)) => {
                assert!(self.closed_ok, "{user}: link to {peer} closed");
                self.connected.remove(&(user, peer));
            }
            Out::Event(jamz_mesh::MeshEvent::Reflexive { base, mapped }) => {
                self.reflexive.insert(user, (base, mapped));
            }
            Out::Event(_) | Out::Path(..) => {}
            Out::Error(e) => panic!("{user}: {e}"),
        }
    }

    fn handle_quietly(&mut self, user: UserId, out: Out) {
        // outputs of a node that has been stopped are stale
        if self.nodes.iter().any(|n| n.user == user) {
            self.handle(user, out);
        }
    }

    fn total_messages(&self) -> usize {
        self.messages.values().map(Vec::len).sum()
    }

    fn all_connected(&self) -> bool {
        let n = self.nodes.len();
        self.connected.len() == n * (n - 1)
    }
}

/// docs/protocol.md's `webrtc-signal` payload, exactly as a browser produces it.
fn assert_protocol_shape(s: &WebrtcSignal) {
    let v = serde_json::to_value(s).unwrap();
    assert_eq!(v["sessionId"], common::SESSION);
    assert!(v["from"].is_i64() && v["to"].is_i64(), "{v}");
    match v["type"].as_str() {
        Some("offer" | "answer") => {
            assert!(
                v["data"]["sdp"]
                    .as_str()
                    .is_some_and(|sdp| sdp.starts_with("v=0"))
            );
            assert!(v["data"].get("candidate").is_none(), "{v}");
        }
        Some("ice-candidate") => {
            let c = &v["data"]["candidate"];
            assert!(
                c["candidate"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("candidate:")),
                "{v}"
            );
            assert!(
                c["sdpMid"].is_string() && c["sdpMLineIndex"].is_u64(),
                "{v}"
            );
            assert!(v["data"].get("sdp").is_none(), "{v}");
        }
        other => panic!("signal type {other:?}"),
    }
}

#[tokio::test]
async fn candidates_before_their_description_are_kept_until_it_comes() {
    let mut h = Harness::new(&[1, 2]).await;
    h.candidates_first = true;
    h.join_all();
    h.run_until("link 1-2", Harness::all_connected).await;
    assert!(
        h.early_candidates >= 2,
        "both the offer and the answer were preceded by a candidate ({})",
        h.early_candidates
    );
    h.node(2).send(Cmd::Send(1, "late but fine".into()));
    h.run_until("message", |h| h.total_messages() == 1).await;
    assert_eq!(h.messages[&1], vec![(2, "late but fine".to_owned())]);
}

/// ICE servers from the settings: each mesh asks a real STUN server (a loopback UDP socket)
/// and learns the address it is seen at; a second server that never answers holds nothing
/// up; the links come up and carry messages.
#[tokio::test]
async fn meshes_ask_their_stun_servers_and_an_unanswering_one_delays_nothing() {
    let stun = StunResponder::start().unwrap();
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let servers = vec![stun.addr, silent.local_addr().unwrap()];
    let mut h = Harness::asking(&[1, 2], servers).await;
    h.join_all();
    h.run_until("links and both reflexive addresses", |h| {
        h.all_connected() && h.reflexive.len() == 2
    })
    .await;
    for n in &h.nodes {
        // No NAT on loopback: seen at the socket's own address.
        assert_eq!(h.reflexive[&n.user], (n.addr, n.addr));
        assert!(stun.asked_by().contains(&n.addr), "{:?}", stun.asked_by());
    }
    // The silent server was asked too (a Binding request: STUN's first byte 0, the cookie).
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(TIMEOUT, silent.recv_from(&mut buf))
        .await
        .expect("the silent server is asked")
        .unwrap();
    assert!(n >= 20 && buf[0] == 0 && buf[1] == 1 && buf[4..8] == [0x21, 0x12, 0xA4, 0x42]);
    h.node(1).send(Cmd::Send(2, "through".into()));
    h.run_until("message", |h| h.total_messages() == 1).await;
}

#[tokio::test]
async fn two_meshes_link_and_exchange_messages_both_ways() {
    let mut h = Harness::new(&[1, 2]).await;
    h.join_all();
    h.run_until("link 1-2", Harness::all_connected).await;
    h.node(1).send(Cmd::Send(2, "from one".into()));
    h.node(2).send(Cmd::Send(1, "from two".into()));
    h.run_until("messages", |h| h.total_messages() == 2).await;
    assert_eq!(h.messages[&2], vec![(1, "from one".to_owned())]);
    assert_eq!(h.messages[&1], vec![(2, "from two".to_owned())]);
    assert!(h.signals >= 2, "an offer and an answer at least");
}

#[tokio::test]
async fn three_meshes_link_pairwise_and_broadcast_protocol_messages() {
    let mut h = Harness::new(&[5, 3, 9]).await;
    h.join_all();
    h.run_until("all three links", Harness::all_connected).await;

    // each member broadcasts a control message in the protocol's envelope
    let mut texts = BTreeMap::new();
    for n in &h.nodes {
        let mut out = Outgoing::new(n.user, 1_000);
        let text = out
            .encode(
                kinds::MUSIC_CONTROL,
                Some(ControlAction::Pause),
                json!({"position": 42.0, "trackId": "t", "timestamp": 1.0, "from": n.user}),
                Some(1),
            )
            .unwrap();
        texts.insert(n.user, text.clone());
        n.send(Cmd::Broadcast(text));
    }
    h.run_until("broadcasts", |h| h.total_messages() == 6).await;

    for n in &h.nodes {
        let got = &h.messages[&n.user];
        let senders: BTreeSet<UserId> = got.iter().map(|(f, _)| *f).collect();
        let others: BTreeSet<UserId> = h
            .nodes
            .iter()
            .map(|o| o.user)
            .filter(|u| *u != n.user)
            .collect();
        assert_eq!(senders, others, "{} heard from every other member", n.user);
        let mut rx = Receiver::new();
        for (from, text) in got {
            assert_eq!(text, &texts[from], "the text arrived unchanged");
            let Ok(Received::Message(env, MeshPayload::MusicControl(action, _))) =
                rx.receive(text.as_bytes())
            else {
                panic!("{}: not a control message: {text}", n.user);
            };
            assert_eq!((env.from, action), (*from, ControlAction::Pause));
            // the same message over a second transport is dropped
            assert!(matches!(
                rx.receive(text.as_bytes()),
                Ok(Received::Duplicate { .. })
            ));
        }
    }
}

#[tokio::test]
async fn a_restarted_member_links_again_whichever_side_offers() {
    let mut h = Harness::new(&[1, 2]).await;
    h.join_all();
    h.run_until("first link", Harness::all_connected).await;

    // the answerer (higher id) restarts: the offerer drops the old link and offers anew
    h.restart(2).await;
    h.node(1).send(Cmd::RemovePeer(2));
    h.join_all();
    h.run_until("link after 2 restarted", Harness::all_connected)
        .await;

    // the offerer restarts: its new offer replaces the answerer's described link
    h.restart(1).await;
    h.join_all();
    h.run_until("link after 1 restarted", Harness::all_connected)
        .await;

    h.node(1).send(Cmd::Send(2, "after both restarts".into()));
    h.run_until("message", |h| h.total_messages() == 1).await;
    assert_eq!(h.messages[&2], vec![(1, "after both restarts".to_owned())]);
}

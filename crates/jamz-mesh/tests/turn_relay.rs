//! TURN relays with a real server: Debian's coturn on loopback (scripts/apt/mesh.txt).
//! Two meshes whose datagrams reach nothing but the server (as behind NATs that map each
//! destination apart) link through coturn; a wrong credential is told, and the host
//! candidates still link.
//!
//! Without `turnserver` the tests print why and pass, unless `JAMZ_REQUIRE_COTURN` is set
//! (as on CI): then they fail with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Cmd, NodeHandle, Out, spawn_node_relayed};
use jamz_mesh::turn_server::TurnServerProcess;
use jamz_mesh::{LinkPath, MeshEvent, TurnServer};
use jamz_proto::UserId;
use tokio::sync::mpsc;

const TIMEOUT: Duration = Duration::from_secs(60);

fn coturn() -> Option<TurnServerProcess> {
    match TurnServerProcess::start("127.0.0.1".parse().unwrap(), "car", "secret") {
        Ok(server) => Some(server),
        Err(e) if std::env::var_os("JAMZ_REQUIRE_COTURN").is_some() => {
            panic!("JAMZ_REQUIRE_COTURN is set but no TURN server runs: {e}")
        }
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

fn server(at: SocketAddr, credential: &str) -> TurnServer {
    TurnServer {
        address: at,
        username: "car".into(),
        credential: credential.into(),
    }
}

/// Runs until `done` holds for the outputs seen, within [`TIMEOUT`]; signals go between
/// the nodes.
struct Run {
    nodes: Vec<NodeHandle>,
    outs: mpsc::UnboundedReceiver<(UserId, Out)>,
    events: Vec<(UserId, MeshEvent)>,
    paths: Vec<(UserId, UserId, Option<LinkPath>)>,
    texts: BTreeSet<(UserId, UserId, String)>,
}

impl Run {
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let result = tokio::time::timeout(TIMEOUT, async {
            while !done(self) {
                let (user, out) = self.outs.recv().await.expect("nodes stopped");
                match out {
                    Out::Signal(s) => {
                        if let Some(n) = self.nodes.iter().find(|n| n.user == s.to) {
                            n.send(Cmd::Signal(s));
                        }
                    }
                    Out::Event(MeshEvent::Message { from, text }) => {
                        self.texts.insert((user, from, text));
                    }
                    Out::Event(e) => self.events.push((user, e)),
                    Out::Path(peer, path) => self.paths.push((user, peer, path)),
                    Out::Error(e) => panic!("{user}: {e}"),
                }
            }
        })
        .await;
        assert!(
            result.is_ok(),
            "{what}: not within {TIMEOUT:?}; events {:?}",
            self.events
        );
    }

    fn saw(&self, user: UserId, f: impl Fn(&MeshEvent) -> bool) -> bool {
        self.events.iter().any(|(u, e)| *u == user && f(e))
    }
}

async fn start(servers: &[Vec<TurnServer>], servers_only: bool) -> Run {
    let (tx, outs) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    for (i, turn) in servers.iter().enumerate() {
        let user = UserId::try_from(i + 1).unwrap();
        nodes.push(
            spawn_node_relayed(user, tx.clone(), Vec::new(), turn.clone(), servers_only).await,
        );
    }
    Run {
        nodes,
        outs,
        events: Vec::new(),
        paths: Vec::new(),
        texts: BTreeSet::new(),
    }
}

fn join(run: &Run) {
    for a in &run.nodes {
        for b in &run.nodes {
            if a.user != b.user {
                a.send(Cmd::AddPeer(b.user));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_meshes_that_reach_only_the_server_link_through_coturn() {
    let Some(turn) = coturn() else { return };
    let relay = server(turn.address, "secret");
    let mut run = start(&[vec![relay.clone()], vec![relay]], true).await;
    run.until("both allocations", |r| {
        [1, 2]
            .iter()
            .all(|u| r.saw(*u, |e| matches!(e, MeshEvent::Relayed { .. })))
    })
    .await;
    for (user, e) in &run.events {
        if let MeshEvent::Relayed { base, relayed } = e {
            println!("{user}: socket {base} relayed at {relayed}");
            assert_eq!(
                relayed.ip(),
                turn.address.ip(),
                "coturn relays from its address"
            );
            assert_ne!(relayed, base);
        }
    }
    join(&run);
    run.until("linked through the relay", |r| {
        [(1, 2), (2, 1)]
            .iter()
            .all(|(u, p)| r.saw(*u, |e| *e == MeshEvent::PeerConnected(*p)))
    })
    .await;
    run.nodes[0].send(Cmd::Send(2, "pause from 1".into()));
    run.nodes[1].send(Cmd::Send(1, "seek from 2".into()));
    for n in &run.nodes {
        n.send(Cmd::Path(3 - n.user));
    }
    run.until("texts both ways and the paths", |r| {
        r.texts.contains(&(2, 1, "pause from 1".into()))
            && r.texts.contains(&(1, 2, "seek from 2".into()))
            && r.paths.len() == 2
    })
    .await;
    println!("paths: {:?}", run.paths);
    for (user, peer, path) in &run.paths {
        assert_eq!(
            *path,
            Some(LinkPath::Relay),
            "{user} -> {peer} goes through coturn\n{}",
            turn.log()
        );
    }
    assert!(
        !run.events
            .iter()
            .any(|(_, e)| matches!(e, MeshEvent::RelayTrouble(_))),
        "{:?}",
        run.events
    );
    // A mesh that stops releases its relays: coturn deletes both allocations at once.
    for n in &run.nodes {
        n.send(Cmd::ReleaseRelays);
    }
    tokio::task::block_in_place(|| turn.wait_released(2, TIMEOUT)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_credential_is_told_and_host_candidates_still_link() {
    let Some(turn) = coturn() else { return };
    let mut run = start(
        &[vec![server(turn.address, "not-the-secret")], vec![]],
        false,
    )
    .await;
    run.until("the refusal", |r| {
        r.saw(1, |e| matches!(e, MeshEvent::RelayTrouble(_)))
    })
    .await;
    let told: Vec<&MeshEvent> = run.events.iter().map(|(_, e)| e).collect();
    println!("{told:?}");
    assert!(
        told.iter().any(|e| matches!(e, MeshEvent::RelayTrouble(why)
            if why.contains(&turn.address.to_string()) && why.contains("asking again"))),
        "{told:?}"
    );
    assert!(
        !told.iter().any(|e| matches!(e, MeshEvent::Relayed { .. })),
        "{told:?}"
    );
    join(&run);
    run.until("linked over host candidates", |r| {
        r.saw(1, |e| *e == MeshEvent::PeerConnected(2))
            && r.saw(2, |e| *e == MeshEvent::PeerConnected(1))
    })
    .await;
    run.nodes[0].send(Cmd::Path(2));
    run.until("the path", |r| !r.paths.is_empty()).await;
    assert_eq!(run.paths[0].2, Some(LinkPath::Direct));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_turn_server_gives_a_new_relay() {
    let Some(turn) = coturn() else { return };
    let address = turn.address;
    let mut run = start(&[vec![server(address, "secret")]], false).await;
    let relayed = |r: &Run| {
        r.events
            .iter()
            .filter(|(_, e)| matches!(e, MeshEvent::Relayed { .. }))
            .count()
    };
    run.until("the first allocation", |r| relayed(r) == 1).await;
    // The server restarts: its allocations are gone; the next refresh (within 25 s)
    // is refused, and a new relay is asked for.
    drop(turn);
    let again = TurnServerProcess::start_on(address, "car", "secret").unwrap();
    run.until("a new allocation", |r| relayed(r) == 2).await;
    let told: Vec<&MeshEvent> = run.events.iter().map(|(_, e)| e).collect();
    println!("{told:?}");
    assert!(
        told.iter().any(|e| matches!(e, MeshEvent::RelayTrouble(why)
            if why.contains("no longer relays"))),
        "{told:?}\n{}",
        again.log()
    );
}

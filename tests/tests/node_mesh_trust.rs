//! Who is obeyed over the peer mesh, end to end (docs/mesh-trust.md): a real server, three
//! `jamz node --json` processes and a lying member (this test, on the mesh with jamz-mesh
//! like any peer). With the server killed: the liar's control, its claim to be the DJ and
//! its forged grant are refused by every node (`mesh-refused`) and they keep playing; the
//! DJ's pause is obeyed; a track appended on the mesh reaches everyone at once; the DJ's
//! device dies (SIGKILL) and every node names the same successor, whose play the other
//! obeys; the server returns and the appended track is on it once, sent by its author only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jamz_e2e::TestServer;
use jamz_link::{LinkEvent, LinkState, RestClient, SocketClient, SocketConfig};
use jamz_mesh::{Mesh, MeshConfig, MeshEvent};
use jamz_proto::ServerEvent;
use jamz_proto::events::names;
use jamz_proto::grant::ControllerGrant;
use node_support::{NodeProc, PASSWORD, WAIT, World, click_track};
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A member that lies: on the mesh like any peer (its links signalled through the server),
/// it sends what the test tells it to every peer.
struct Liar {
    user: i64,
    session_id: String,
    texts: mpsc::UnboundedSender<String>,
    connected: mpsc::UnboundedReceiver<i64>,
}

impl Liar {
    async fn join(world: &World, i: usize) -> Result<Liar> {
        let (name, user) = world.users[i].clone();
        let rest = RestClient::new(&world.server.url)?;
        rest.login(&name, PASSWORD).await?;
        let session = rest.session_for_group(&world.group).await?;
        let session_id_kept = session.id.clone();
        let (link, mut events) = SocketClient::connect(
            SocketConfig::new(&world.server.url).token(rest.token().context("token")?),
        )?;
        let udp = UdpSocket::bind("127.0.0.1:0").await?;
        let local = udp.local_addr()?;
        let mut mesh = Mesh::new(
            std::time::Instant::now(),
            MeshConfig {
                session_id: session.id.clone(),
                local_user: user,
                local_candidates: vec![local],
                stun_servers: Vec::new(),
                turn_servers: Vec::new(),
            },
        );
        let members: BTreeSet<i64> = world.users.iter().map(|(_, u)| *u).collect();
        let (texts, mut texts_rx) = mpsc::unbounded_channel::<String>();
        let (connected_tx, connected) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut link_open = true;
            loop {
                while let Some(t) = mesh.poll_transmit() {
                    let _ = udp.send_to(&t.contents, t.destination).await;
                }
                while let Some(signal) = mesh.poll_signal() {
                    let _ = link.emit(names::WEBRTC_SIGNAL, serde_json::to_value(&signal).unwrap());
                }
                while let Some(event) = mesh.poll_event() {
                    if let MeshEvent::PeerConnected(u) = event {
                        let _ = connected_tx.send(u);
                    }
                }
                let deadline = mesh
                    .poll_timeout()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
                tokio::select! {
                    ev = events.recv(), if link_open => match ev {
                        Some(LinkEvent::State(LinkState::Connected { .. })) => {
                            let join = json!({"sessionId": session.id, "userId": user,
                                "displayName": "liar"});
                            let _ = link.emit(names::JOIN_AUDIO_SESSION, join);
                        }
                        Some(LinkEvent::Event { event, .. }) => match *event {
                            ServerEvent::WebrtcSignal(s) => {
                                let _ = mesh.handle_signal(Instant::now(), s);
                            }
                            ServerEvent::CurrentParticipants(_)
                            | ServerEvent::ParticipantJoined(_) => {
                                let _ = mesh.set_members(Instant::now(), members.clone());
                            }
                            _ => {}
                        },
                        Some(_) => {}
                        // The link task ended: the mesh goes on without it.
                        None => link_open = false,
                    },
                    r = udp.recv_from(&mut buf) => if let Ok((n, from)) = r {
                        let from: SocketAddr = from;
                        mesh.handle_datagram(Instant::now(), from, local, &buf[..n]);
                    },
                    text = texts_rx.recv() => match text {
                        Some(text) => { let _ = mesh.broadcast_text(Instant::now(), &text); }
                        None => return,
                    },
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                        mesh.handle_timeout(Instant::now());
                    }
                }
            }
        });
        Ok(Liar {
            user,
            session_id: session_id_kept,
            texts,
            connected,
        })
    }

    async fn wait_linked(&mut self, users: &[i64]) -> Result<()> {
        let mut missing: BTreeSet<i64> = users.iter().copied().collect();
        while !missing.is_empty() {
            let u = tokio::time::timeout(WAIT, self.connected.recv())
                .await
                .with_context(|| format!("liar: no link to {missing:?}"))?
                .context("liar stopped")?;
            missing.remove(&u);
        }
        Ok(())
    }

    fn send(&self, envelope: Value) {
        self.texts.send(envelope.to_string()).unwrap();
    }
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap()
}

/// Waits for a `mesh-refused` of `reason` from `from` on `node`.
async fn refused(node: &mut NodeProc, from: i64, reason: &str) -> Result<Value> {
    let ev = node
        .wait_event("mesh-refused", |v| {
            v["from"] == from && v["reason"] == reason
        })
        .await?;
    eprintln!("{}: {ev}", node.name);
    Ok(ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_mesh_only_the_granted_dj_or_its_successor_is_obeyed() -> Result<()> {
    let mut world = World::new(4).await?;
    let first = world.dir.path().join("first.wav");
    let second = world.dir.path().join("second.wav");
    click_track(&first, 60.0, 1.0)?;
    click_track(&second, 60.0, -1.0)?;
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut n = world.node(i, "null", &[]).await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    let (a, b, c) = (world.user_id(0), world.user_id(1), world.user_id(2));
    assert!(
        b < c,
        "the successor rule picks the lowest id: {b} before {c}"
    );
    nodes[0].take_control(a).await?;
    nodes[0].add(&first, 1).await?;
    let pl = nodes[0].add(&second, 2).await?;
    let id1 = pl["playlist"][0]["id"].as_str().unwrap().to_owned();
    let mut liar = Liar::join(&world, 3).await?;
    for n in nodes.iter_mut() {
        n.wait_playlist(2).await?;
    }
    // The three nodes, and the liar (member 3).
    world.wait_linked(&mut nodes, 4).await?;
    liar.wait_linked(&[a, b, c]).await?;
    nodes[0]
        .send(json!({"cmd":"play","track":id1,"position":0.0}))
        .await?;
    for n in nodes[1..].iter_mut() {
        n.wait_position(&id1, 1.0).await?;
    }

    // The server dies.
    let tmp = world.server.take_dir();
    let (addr, dir) = (world.server.addr.clone(), world.server.dir.clone());
    world.server.kill9().await?;
    for n in nodes.iter_mut() {
        n.wait_event("tier", |v| v["tier"] == "mesh").await?;
        n.clear();
    }

    // The liar pauses everyone in its own name, then in the DJ's, then shows a grant
    // of its own making that names it DJ (signed by no key of the server's).
    let pause = |from: i64, seq: u64| {
        json!({"type": "music-control", "action": "pause", "sequence": seq, "from": from,
            "data": {"position": 5.0, "trackId": id1, "timestamp": now_ms(), "from": from}})
    };
    liar.send(pause(liar.user, 1));
    liar.send(pause(a, 2));
    let grant = ControllerGrant {
        session_id: liar.session_id.clone(),
        user_id: liar.user,
        epoch: 99,
        device_key: None,
        issued_at: now_ms() as u64,
        expires_at: now_ms() as u64 + 3_600_000,
        sig: "ab".repeat(64),
    };
    liar.send(
        json!({"type": "controller-changed", "sequence": 3, "from": liar.user,
        "data": {"userId": liar.user, "epoch": 99, "grant": grant}}),
    );
    for n in nodes[1..].iter_mut() {
        refused(n, liar.user, "not-controller").await?;
        refused(n, a, "grant-other-epoch").await?;
        refused(n, liar.user, "grant-bad-signature").await?;
        let s = n.status().await?;
        assert_eq!(
            s["playing"], true,
            "{}: the liar changed nothing: {s}",
            n.name
        );
        assert_eq!(s["tier"], "mesh", "{}: {s}", n.name);
        assert!(
            !n.history()
                .iter()
                .any(|v| v["event"] == "playback" && v["playing"] == false),
            "{}: never paused by the liar",
            n.name
        );
        let ctl = n
            .history()
            .iter()
            .any(|v| v["event"] == "controller" && v["userId"] == liar.user);
        assert!(!ctl, "{}: the forged grant named nobody", n.name);
    }

    // The DJ's pause over the mesh: obeyed.
    nodes[0].send(json!({"cmd":"pause"})).await?;
    for n in nodes[1..].iter_mut() {
        let ev = n
            .wait_event("playback", |v| {
                v["playing"] == false && v["track"] == id1.as_str()
            })
            .await?;
        eprintln!("{}: paused by the DJ over the mesh: {ev}", n.name);
    }

    // A member appends a track while the server is gone: everyone sees it at once.
    let added = json!({"id": "added-on-the-mesh", "title": "Added on the mesh",
        "artist": "car2", "url": "https://example.invalid/mesh.mp3", "duration": 30.0});
    nodes[2].send(json!({"cmd":"add","track":added})).await?;
    for n in nodes.iter_mut() {
        n.wait_playlist(3).await?;
    }
    nodes[2]
        .wait_event("outbox", |v| {
            v["pending"].as_array().is_some_and(|p| p.len() == 1)
        })
        .await?;

    // The DJ's device dies: both others name the same successor, the lowest id.
    let dj = nodes.remove(0);
    dj.kill9().await?;
    for n in nodes.iter_mut() {
        let ev = n
            .wait_for_within("controller", WAIT + Duration::from_secs(15), |v| {
                v["event"] == "controller" && v["userId"] == b
            })
            .await?;
        eprintln!("{}: successor {ev}", n.name);
    }
    // Only the successor controls: the other's play is refused at home, the successor's
    // is obeyed.
    nodes[1].send(json!({"cmd":"play"})).await?;
    nodes[1].wait_event("error", |v| v["cmd"] == "play").await?;
    nodes[0].send(json!({"cmd":"play"})).await?;
    let ev = nodes[1]
        .wait_event("playback", |v| {
            v["playing"] == true && v["track"] == id1.as_str()
        })
        .await?;
    eprintln!("{}: plays on the successor's word: {ev}", nodes[1].name);

    // The server returns: its DJ again, and the appended track on it once, sent by its
    // author only.
    world.server = TestServer::start_in(&dir, &addr).await?;
    for n in nodes.iter_mut() {
        n.wait_event("tier", |v| v["tier"] == "socket").await?;
    }
    nodes[1]
        .wait_event("outbox", |v| {
            v["pending"].as_array().is_some_and(Vec::is_empty)
        })
        .await?;
    let rest = RestClient::new(&world.server.url)?;
    rest.login(&world.users[1].0, PASSWORD).await?;
    let on_server = rest.session_for_group(&world.group).await?.music.playlist;
    let copies = on_server
        .iter()
        .filter(|t| t.title == "Added on the mesh")
        .count();
    assert_eq!(copies, 1, "{on_server:?}");
    let sent_by_b = nodes[0]
        .history()
        .iter()
        .any(|v| v["event"] == "outbox" && v["pending"].as_array().is_some_and(|p| !p.is_empty()));
    assert!(!sent_by_b, "only the author keeps it for the server");
    for n in nodes {
        n.quit().await?;
    }
    drop(tmp);
    Ok(())
}

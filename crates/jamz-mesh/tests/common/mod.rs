//! A small tokio driver for a sans-IO `Mesh` over one real loopback UDP socket, for tests
//! and the benchmark only (the node owns the sockets in the app).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jamz_mesh::{Mesh, MeshConfig, MeshEvent};
use jamz_proto::UserId;
use jamz_proto::events::WebrtcSignal;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub const SESSION: &str = "mesh-test-session";

pub enum Cmd {
    AddPeer(UserId),
    RemovePeer(UserId),
    Signal(WebrtcSignal),
    Send(UserId, String),
    Broadcast(String),
    /// Asks how the link to a user goes: answered by [`Out::Path`].
    Path(UserId),
    /// Releases the TURN allocations, as an owner that stops does.
    ReleaseRelays,
}

#[derive(Debug)]
pub enum Out {
    Signal(WebrtcSignal),
    Event(MeshEvent),
    /// A call into the mesh returned an error (kept for the test to assert on).
    Error(String),
    Path(UserId, Option<jamz_mesh::LinkPath>),
}

pub struct NodeHandle {
    pub user: UserId,
    pub addr: SocketAddr,
    pub cmd: mpsc::UnboundedSender<Cmd>,
}

/// Where every node's outputs go, tagged with the node's user.
pub type Outputs = mpsc::UnboundedSender<(UserId, Out)>;

impl NodeHandle {
    pub fn send(&self, cmd: Cmd) {
        assert!(self.cmd.send(cmd).is_ok(), "node {} has stopped", self.user);
    }
}

/// Binds a loopback socket and runs a mesh for `user` on it in a task.
pub async fn spawn_node(user: UserId, out: Outputs) -> NodeHandle {
    spawn_node_asking(user, out, Vec::new()).await
}

/// [`spawn_node`] whose mesh asks `stun_servers` for its reflexive address.
pub async fn spawn_node_asking(
    user: UserId,
    out: Outputs,
    stun_servers: Vec<SocketAddr>,
) -> NodeHandle {
    spawn_node_relayed(user, out, stun_servers, Vec::new(), false).await
}

/// [`spawn_node_asking`] whose mesh also holds an allocation on `turn_servers`. With
/// `servers_only`, its datagrams reach the STUN and TURN servers only, as behind a NAT that
/// maps each destination apart: a peer is reached through a relay or not at all.
pub async fn spawn_node_relayed(
    user: UserId,
    out: Outputs,
    stun_servers: Vec<SocketAddr>,
    turn_servers: Vec<jamz_mesh::TurnServer>,
    servers_only: bool,
) -> NodeHandle {
    let reachable: Option<Vec<SocketAddr>> = servers_only.then(|| {
        stun_servers
            .iter()
            .copied()
            .chain(turn_servers.iter().map(|t| t.address))
            .collect()
    });
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = socket.local_addr().expect("local addr");
    let mesh = Mesh::new(
        Instant::now(),
        MeshConfig {
            session_id: SESSION.to_owned(),
            local_user: user,
            local_candidates: vec![addr],
            stun_servers,
            turn_servers,
        },
    );
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(user, mesh, socket, addr, cmd_rx, out, reachable));
    NodeHandle {
        user,
        addr,
        cmd: cmd_tx,
    }
}

async fn run(
    user: UserId,
    mut mesh: Mesh,
    socket: UdpSocket,
    local: SocketAddr,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    out: Outputs,
    reachable: Option<Vec<SocketAddr>>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = mesh.poll_transmit() {
            if reachable
                .as_ref()
                .is_some_and(|r| !r.contains(&t.destination))
            {
                continue;
            }
            // multicast mDNS queries cannot leave a loopback-bound socket: not an error here
            let _ = socket.send_to(&t.contents, t.destination).await;
        }
        while let Some(s) = mesh.poll_signal() {
            let _ = out.send((user, Out::Signal(s)));
        }
        while let Some(e) = mesh.poll_event() {
            let _ = out.send((user, Out::Event(e)));
        }
        let deadline = mesh
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                mesh.handle_timeout(Instant::now());
            }
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = r {
                    mesh.handle_datagram(Instant::now(), source, local, &buf[..n]);
                }
            }
            cmd = cmds.recv() => {
                let now = Instant::now();
                let result = match cmd {
                    None => break,
                    Some(Cmd::AddPeer(u)) => mesh.add_peer(now, u),
                    Some(Cmd::RemovePeer(u)) => {
                        mesh.remove_peer(u);
                        Ok(())
                    }
                    Some(Cmd::Signal(s)) => mesh.handle_signal(now, s),
                    Some(Cmd::Send(u, text)) => mesh.send_text(now, u, &text),
                    Some(Cmd::Broadcast(text)) => mesh.broadcast_text(now, &text).map(|_| ()),
                    Some(Cmd::ReleaseRelays) => {
                        mesh.release_relays(now);
                        Ok(())
                    }
                    Some(Cmd::Path(u)) => {
                        let _ = out.send((user, Out::Path(u, mesh.path(now, u))));
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    let _ = out.send((user, Out::Error(e.to_string())));
                }
            }
        }
    }
}

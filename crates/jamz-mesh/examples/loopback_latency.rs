//! One-way delivery latency of a control message between two native meshes on loopback.
//!
//! `cargo run -p jamz-mesh --example loopback_latency [-- COUNT]` links two meshes over real
//! UDP sockets (signaling passed between them), then sends COUNT (default 500) `music-control`
//! envelopes from one to the other, one at a time, and prints p50/p95/max of the time from
//! `send_text` to the receiver's `Message` event (both in this process, one clock; the figure
//! includes the tokio channel hop from the receiving task to the harness).
//!
//! With `--relay` both meshes hold an allocation on a TURN server (Debian's coturn, started
//! here on loopback: scripts/apt/mesh.txt) and their datagrams reach nothing but it, so the
//! link and every message go through the relay.

#[allow(clippy::expect_used, clippy::unwrap_used)]
#[path = "../tests/common/mod.rs"]
mod common;

use std::error::Error;
use std::time::{Duration, Instant};

use common::{Cmd, Out, spawn_node_relayed};
use jamz_mesh::turn_server::TurnServerProcess;
use jamz_mesh::{MeshEvent, Outgoing, TurnServer};
use jamz_proto::events::ControlAction;
use jamz_proto::mesh::kinds;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let relay = args.iter().any(|a| a == "--relay");
    let count: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500);
    // kept alive for the run: dropping it stops coturn
    let coturn = relay
        .then(|| TurnServerProcess::start(std::net::Ipv4Addr::LOCALHOST.into(), "car", "pw"))
        .transpose()?;
    let turn: Vec<TurnServer> = coturn
        .iter()
        .map(|c| TurnServer {
            address: c.address,
            username: "car".into(),
            credential: "pw".into(),
        })
        .collect();
    let (tx, mut outs) = tokio::sync::mpsc::unbounded_channel();
    let dj = spawn_node_relayed(1, tx.clone(), Vec::new(), turn.clone(), relay).await;
    let peer = spawn_node_relayed(2, tx, Vec::new(), turn, relay).await;
    dj.send(Cmd::AddPeer(2));
    peer.send(Cmd::AddPeer(1));

    let limit = Duration::from_secs(30);
    let start = Instant::now();
    let mut connected = 0;
    while connected < 2 {
        let (_, out) = tokio::time::timeout(limit, outs.recv())
            .await?
            .ok_or("nodes stopped")?;
        match out {
            Out::Signal(s) if s.to == 1 => dj.send(Cmd::Signal(s)),
            Out::Signal(s) => peer.send(Cmd::Signal(s)),
            Out::Event(MeshEvent::PeerConnected(_)) => connected += 1,
            Out::Error(e) => return Err(e.into()),
            Out::Event(_) | Out::Path(..) => {}
        }
    }
    println!(
        "linked in {:?} (signaling + ICE + DTLS + SCTP + channel open)",
        start.elapsed()
    );

    let mut out = Outgoing::new(1, 1);
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let text = out.encode(
            kinds::MUSIC_CONTROL,
            Some(ControlAction::Pause),
            json!({"position": i as f64, "trackId": "t", "timestamp": 0, "from": 1}),
            Some(1),
        )?;
        let sent = Instant::now();
        dj.send(Cmd::Send(2, text));
        loop {
            let (_, o) = tokio::time::timeout(limit, outs.recv())
                .await?
                .ok_or("nodes stopped")?;
            match o {
                Out::Event(MeshEvent::Message { .. }) => break,
                Out::Error(e) => return Err(e.into()),
                _ => {}
            }
        }
        samples.push(sent.elapsed());
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{count} control messages{}, one-way: p50 {:?}, p95 {:?}, max {:?}",
        if relay { " through coturn" } else { "" },
        pick(0.50),
        pick(0.95),
        samples[samples.len() - 1]
    );
    Ok(())
}

//! The mesh side of the engine's worlds: engines with the server's grant key and a
//! granted DJ, their mesh messages, and the node's stamping of them.
#![allow(dead_code)]

use jamz_proto::mesh::MeshEnvelope;
use jamz_sync::{Action, AudioCommand, Engine, Input, Notification, Tier};

use super::*;

pub const DJ: i64 = 1;
pub const ME: i64 = 2;
pub const OTHER: i64 = 3;

/// `user`'s engine with a known clock (server 500 ms ahead), DJ = user 1, two tracks, and
/// the mesh links to `peers` open.
pub fn world(user: i64, peers: &[i64]) -> (Engine, f64) {
    world_at(user, 500.0, peers)
}

/// [`world`] with the server `offset` ms ahead of this engine's clock.
pub fn world_at(user: i64, offset: f64, peers: &[i64]) -> (Engine, f64) {
    let mut e = connected(user, 0.0);
    e.handle(0.0, Input::GrantKey(grant_key()));
    let now = sync_clock(&mut e, 0.0, offset, 20);
    server(&mut e, now, controller_granted(DJ, 1));
    server(
        &mut e,
        now,
        playlist(vec![track(1, 200.0), track(2, 200.0)]),
    );
    for p in peers {
        e.handle(
            now,
            Input::PeerUp {
                user: *p,
                rtt_ms: Some(1.0),
            },
        );
    }
    drain(&mut e);
    (e, now)
}

pub fn tiers(actions: &[Action]) -> Vec<Tier> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Tier { tier, .. }) => Some(*tier),
            _ => None,
        })
        .collect()
}

/// The mesh messages among `actions`: (to, message).
pub fn mesh_out(actions: &[Action]) -> Vec<(Option<i64>, MeshEnvelope)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Mesh { to, message } => Some((*to, (**message).clone())),
            _ => None,
        })
        .collect()
}

/// `message` as if `from` had sent it with `sequence` (unsigned).
pub fn envelope(from: i64, sequence: u64, message: &MeshEnvelope) -> Box<MeshEnvelope> {
    Box::new(MeshEnvelope {
        sequence,
        from,
        epoch: None,
        sig: None,
        ttl: None,
        ..message.clone()
    })
}

pub fn pauses(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Audio(AudioCommand::Pause)))
        .count()
}

pub fn disconnect(e: &mut Engine, now: f64) -> Vec<Action> {
    e.handle(
        now,
        Input::Disconnected {
            reason: "connection lost".into(),
        },
    );
    drain(e)
}

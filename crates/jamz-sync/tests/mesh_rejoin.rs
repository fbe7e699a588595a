//! Rejoining without the server (docs/protocol.md, "Rejoining without the server"): an
//! engine started from a kept session asks one kept peer address at a time for a link
//! (the other members before the DJ), then, once a link is open, the others over the mesh;
//! a peer takes a `mesh-rejoin` or signal that came straight to its socket only from a
//! member, for itself, with no link open, and sends its signals for that member back
//! there. What an engine keeps is what a kept start takes back.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::*;
use jamz_proto::UserId;
use jamz_proto::events::{
    CurrentParticipants, ParticipantInfo, SignalData, SignalType, WebrtcSignal,
};
use jamz_proto::mesh::{MeshEnvelope, kinds};
use jamz_sync::constants::REJOIN_EVERY_MS;
use jamz_sync::kept::{KEPT_FORMAT, KeptIdentity, KeptMember, KeptSession, KeptTimeline};
use jamz_sync::{Action, Engine, EngineConfig, Input, Notification, Tier};

const DJ: UserId = 1;
const B: UserId = 2;
const C: UserId = 3;
const T0: f64 = 1_000_000.0;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn identity(user: UserId) -> KeptIdentity {
    KeptIdentity {
        server: "http://127.0.0.1:1".into(),
        group_id: "g".into(),
        user_id: user,
        username: format!("car{user}"),
        display_name: format!("user {user}"),
        token: "t".into(),
    }
}

fn kept() -> KeptSession {
    KeptSession {
        format: KEPT_FORMAT,
        identity: identity(C),
        session_id: SESSION.into(),
        members: [DJ, B, C]
            .map(|u| KeptMember {
                user_id: u,
                display_name: None,
            })
            .into(),
        controller: Some(DJ),
        grant: Some(grant(DJ, 1)),
        playlist: vec![track(1, 600.0)],
        timeline: Some(KeptTimeline {
            track_id: track(1, 600.0).id,
            playing: false,
            position: 12.0,
            at_server_ms: T0,
        }),
        peers: BTreeMap::from([(DJ, addr(1001)), (B, addr(1002))]),
        saved_at_ms: T0,
    }
}

/// The straight-to-socket messages among `actions`: (to, type, data.to).
fn direct(actions: &[Action]) -> Vec<(SocketAddr, String, Option<UserId>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::MeshDirect { to, message } => Some((
                *to,
                message.kind.clone(),
                message.data["to"].as_i64().map(|u| u as UserId),
            )),
            _ => None,
        })
        .collect()
}

fn rejoins(actions: &[Action]) -> Vec<(UserId, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Rejoin { user, by_peer } => Some((*user, *by_peer)),
            _ => None,
        })
        .collect()
}

fn tiers(actions: &[Action]) -> Vec<(Tier, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Tier { tier, reason }) => Some((*tier, reason.clone())),
            _ => None,
        })
        .collect()
}

fn kept_start() -> (Engine, Vec<Action>) {
    let mut e = Engine::new(EngineConfig::new(C, "user 3").with_session(SESSION));
    e.handle(T0, Input::SessionKept(Box::new(kept())));
    e.handle(T0, Input::GrantKey(grant_key()));
    let actions = drain(&mut e);
    (e, actions)
}

#[test]
fn a_kept_start_asks_the_other_member_first_then_the_dj_then_over_the_mesh() {
    let (mut e, actions) = kept_start();
    assert_eq!(e.session_id(), Some(SESSION));
    assert_eq!(e.controller(), Some(DJ));
    assert_eq!(e.playlist().tracks().len(), 1);
    assert_eq!(e.timeline().map(|t| t.position_s), Some(12.0));
    let t = tiers(&actions);
    assert_eq!(t[0].0, Tier::Offline, "{t:?}");
    assert!(t[0].1.contains("kept session"), "{t:?}");
    // The members go to the mesh (every one gets a link).
    assert!(actions.iter().any(|a| matches!(a,
        Action::Notify(Notification::Participants { participants }) if participants.len() == 3)));
    // Round 1: B (not the DJ), straight at its kept address.
    assert_eq!(
        direct(&actions),
        [(addr(1002), kinds::MESH_REJOIN.to_owned(), Some(B))]
    );
    assert_eq!(rejoins(&actions), [(B, false)]);
    // Nothing more before the next round.
    e.handle(T0 + REJOIN_EVERY_MS / 2.0, Input::Tick);
    assert!(direct(&drain(&mut e)).is_empty());
    // Round 2 (no answer): the DJ.
    assert_eq!(e.next_timeout(), Some(T0 + REJOIN_EVERY_MS));
    e.handle(T0 + REJOIN_EVERY_MS, Input::Tick);
    let a = drain(&mut e);
    assert_eq!(
        direct(&a),
        [(addr(1001), kinds::MESH_REJOIN.to_owned(), Some(DJ))]
    );
    // Our signals for B (here an answer to its offer) go straight to B while the link is
    // not open.
    let signal = WebrtcSignal {
        session_id: SESSION.into(),
        from: C,
        to: B,
        kind: SignalType::Answer,
        data: SignalData {
            sdp: Some("v=0".into()),
            candidate: None,
        },
    };
    e.handle(
        T0 + REJOIN_EVERY_MS,
        Input::SignalOut(Box::new(signal.clone())),
    );
    let a = drain(&mut e);
    assert_eq!(
        direct(&a),
        [(addr(1002), kinds::WEBRTC_SIGNAL.to_owned(), Some(B))]
    );
    // B's link opens: the mesh tier, and round 3 asks the DJ over the mesh.
    let now = T0 + REJOIN_EVERY_MS + 10.0;
    e.handle(
        now,
        Input::PeerUp {
            user: B,
            rtt_ms: None,
        },
    );
    let a = drain(&mut e);
    assert_eq!(tiers(&a)[0].0, Tier::Mesh, "{a:?}");
    e.handle(T0 + 2.0 * REJOIN_EVERY_MS, Input::Tick);
    let a = drain(&mut e);
    assert!(direct(&a).is_empty(), "{a:?}");
    let over_mesh: Vec<&MeshEnvelope> = a
        .iter()
        .filter_map(|a| match a {
            Action::Mesh { to: None, message } if message.kind == kinds::MESH_REJOIN => {
                Some(&**message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(over_mesh.len(), 1, "{a:?}");
    assert_eq!(over_mesh[0].data["to"], DJ);
    assert_eq!(over_mesh[0].ttl, Some(4), "carried like a signal");
    assert_eq!(rejoins(&a), [(DJ, false)]);
    // The server returns: no more asking.
    e.handle(
        T0 + 2.0 * REJOIN_EVERY_MS + 1.0,
        Input::Connected {
            socket_id: socket_of(C),
        },
    );
    drain(&mut e);
    e.handle(T0 + 4.0 * REJOIN_EVERY_MS, Input::Tick);
    let a = drain(&mut e);
    assert!(direct(&a).is_empty() && rejoins(&a).is_empty(), "{a:?}");
    assert_eq!(e.stats().mesh_rejoins_sent, 3);
}

/// B, in the session with the DJ and C, the server gone.
fn peer_b() -> Engine {
    let mut e = connected(B, 0.0);
    server(
        &mut e,
        0.0,
        jamz_proto::ServerEvent::CurrentParticipants(CurrentParticipants {
            participants: [DJ, B, C]
                .map(|u| ParticipantInfo {
                    socket_id: socket_of(u),
                    user_id: u,
                    display_name: None,
                })
                .into(),
        }),
    );
    e.handle(
        1.0,
        Input::Disconnected {
            reason: "gone".into(),
        },
    );
    drain(&mut e);
    e
}

fn envelope(kind: &str, from: UserId, sequence: u64, data: serde_json::Value) -> MeshEnvelope {
    MeshEnvelope {
        kind: kind.into(),
        action: None,
        data,
        sequence,
        from,
        epoch: None,
        sig: None,
        ttl: None,
    }
}

fn rejoin_from(from: UserId, to: UserId, sequence: u64) -> MeshEnvelope {
    envelope(
        kinds::MESH_REJOIN,
        from,
        sequence,
        serde_json::json!({"sessionId": SESSION, "from": from, "to": to}),
    )
}

fn straight(e: &mut Engine, now: f64, from: SocketAddr, m: MeshEnvelope) -> Vec<Action> {
    e.handle(
        now,
        Input::MeshDirect {
            address: from,
            message: Box::new(m),
        },
    );
    drain(e)
}

#[test]
fn a_peer_takes_a_members_direct_rejoin_and_answers_there_and_refuses_the_rest() {
    let mut b = peer_b();
    let c_addr = addr(2003);
    // C asks: B's mesh sets its link up anew, and B's signals for C go back to C's socket.
    let a = straight(&mut b, 10.0, c_addr, rejoin_from(C, B, 1));
    assert_eq!(rejoins(&a), [(C, true)]);
    assert!(refused(&a).is_empty(), "{a:?}");
    let offer = WebrtcSignal {
        session_id: SESSION.into(),
        from: B,
        to: C,
        kind: SignalType::Offer,
        data: SignalData {
            sdp: Some("v=0".into()),
            candidate: None,
        },
    };
    b.handle(11.0, Input::SignalOut(Box::new(offer)));
    assert_eq!(
        direct(&drain(&mut b)),
        [(c_addr, kinds::WEBRTC_SIGNAL.to_owned(), Some(C))]
    );
    // The same datagram again: dropped as a copy.
    let a = straight(&mut b, 12.0, c_addr, rejoin_from(C, B, 1));
    assert!(rejoins(&a).is_empty(), "{a:?}");
    // C's answer straight to B: handed to B's mesh, the link unvouched (C is not the DJ).
    let answer = envelope(
        kinds::WEBRTC_SIGNAL,
        C,
        2,
        serde_json::json!({"sessionId": SESSION, "from": C, "to": B, "type": "answer",
            "data": {"sdp": "v=0"}}),
    );
    let a = straight(&mut b, 13.0, c_addr, answer);
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Signal(s) if s.from == C)),
        "{a:?}"
    );
    let s = b.stats();
    assert_eq!((s.mesh_direct_in, s.mesh_rejoins_in), (2, 1));

    // Refused, each with its reason, nothing handed on: a stranger ...
    let mut b = peer_b();
    let a = straight(&mut b, 10.0, addr(9), rejoin_from(9, B, 1));
    assert_eq!(refused(&a), [(9, 9, "bad-signal".to_owned())]);
    assert!(rejoins(&a).is_empty());
    // ... a rejoin for someone else (never carried from a socket) ...
    let mut b = peer_b();
    let a = straight(&mut b, 10.0, addr(9), rejoin_from(C, DJ, 1));
    assert_eq!(refused(&a), [(C, C, "bad-signal".to_owned())]);
    // ... a control (only rejoins and signals come straight) ...
    let mut b = peer_b();
    let control = envelope(
        kinds::MUSIC_CONTROL,
        DJ,
        1,
        serde_json::json!({"position": 1.0, "timestamp": 1.0}),
    );
    let a = straight(&mut b, 10.0, addr(9), control);
    assert!(rejoins(&a).is_empty() && refused(&a).len() == 1, "{a:?}");
    // ... another session's, or one whose envelope and data disagree ...
    let mut b = peer_b();
    let other = envelope(
        kinds::MESH_REJOIN,
        C,
        1,
        serde_json::json!({"sessionId": "other", "from": C, "to": B}),
    );
    let a = straight(&mut b, 10.0, addr(9), other);
    assert_eq!(refused(&a), [(C, C, "bad-signal".to_owned())]);
    let forged = envelope(
        kinds::MESH_REJOIN,
        C,
        2,
        serde_json::json!({"sessionId": SESSION, "from": DJ, "to": B}),
    );
    // (a fresh peer: refusals are reported once per link and reason every 5 s)
    let mut b = peer_b();
    let a = straight(&mut b, 10.0, addr(9), forged);
    assert!(rejoins(&a).is_empty() && refused(&a).len() == 1, "{a:?}");
    // ... and one in the name of a member whose link here is open.
    let mut b = peer_b();
    b.handle(
        10.0,
        Input::PeerUp {
            user: C,
            rtt_ms: None,
        },
    );
    drain(&mut b);
    let a = straight(&mut b, 11.0, addr(9), rejoin_from(C, B, 1));
    assert_eq!(refused(&a), [(C, C, "signal-link-open".to_owned())]);
    assert!(rejoins(&a).is_empty());
    // Garbage data of a known type: refused, no panic.
    let mut b = peer_b();
    let bad = envelope(kinds::MESH_REJOIN, C, 1, serde_json::json!([1, "x"]));
    let a = straight(&mut b, 10.0, addr(9), bad);
    assert!(rejoins(&a).is_empty() && refused(&a).len() == 1, "{a:?}");
}

#[test]
fn what_is_kept_is_what_a_kept_start_takes_back() {
    let (mut e, _) = kept_start();
    e.handle(
        T0 + 1.0,
        Input::PeerAddress {
            user: B,
            address: addr(3002),
        },
    );
    // Not a member: not kept.
    e.handle(
        T0 + 1.0,
        Input::PeerAddress {
            user: 77,
            address: addr(3077),
        },
    );
    drain(&mut e);
    let k = e.kept_session(identity(C), T0 + 5.0).unwrap();
    let mut want = kept();
    want.peers.insert(B, addr(3002));
    want.saved_at_ms = T0 + 5.0;
    assert_eq!(k, want);
    // A fresh engine with no session keeps nothing.
    let fresh = Engine::new(EngineConfig::new(C, "user 3"));
    assert!(fresh.kept_session(identity(C), T0).is_none());
}

//! Who is obeyed over the mesh, in the engine (docs/mesh-trust.md): with the server gone,
//! control and playlist changes count only from the DJ holding a valid grant of the
//! server's for this session (or the succession rule's DJ when the DJ's device is gone);
//! anything else is refused, nothing of it applied, and reported as `mesh-refused`.
//! Appends made over the mesh spread at once and go to the server from their author only.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::mesh::*;
use common::*;
use jamz_proto::events::{ControlAction, names};
use jamz_proto::mesh::{MeshEnvelope, kinds};
use jamz_proto::test_support::fuzz_runner;
use jamz_sync::constants::MESH_REFUSAL_REPORT_MS;
use jamz_sync::trust::{Acting, DJ_ABSENCE_MS};
use jamz_sync::{Action, Command, Engine, Input, Notification, RestCall, Tier};
use proptest::prelude::*;
use serde_json::json;

/// A follower (ME) playing track 1 from the DJ, the server gone, links to DJ and OTHER.
fn follower_offline() -> (Engine, f64) {
    let (mut dj, now) = world(DJ, &[ME, OTHER]);
    let (mut me, _) = world(ME, &[DJ, OTHER]);
    let actions = command(&mut dj, now, play());
    server(&mut me, now, relay_of_play(&actions));
    disconnect(&mut me, now + 100.0);
    assert_eq!(me.tier(), Tier::Mesh);
    assert!(me.timeline().unwrap().playing);
    (me, now + 100.0)
}

fn relay_of_play(actions: &[Action]) -> jamz_proto::ServerEvent {
    let sent = emitted(actions, names::MUSIC_CONTROL);
    let data = sent[0];
    let track: jamz_proto::Track = serde_json::from_value(data["track"].clone()).unwrap();
    jamz_proto::ServerEvent::MusicPlay(relay(
        DJ,
        Some(track),
        data["position"].as_f64().unwrap(),
        data["timestamp"].as_f64().unwrap(),
    ))
}

/// A mesh pause by `from`, stamped `sequence`, at server time `at`.
fn pause_by(from: i64, sequence: u64, at: f64) -> Box<MeshEnvelope> {
    Box::new(MeshEnvelope {
        kind: kinds::MUSIC_CONTROL.into(),
        action: Some(ControlAction::Pause),
        data: json!({"position": 3.0, "trackId": "t1", "timestamp": at, "from": from}),
        sequence,
        from,
        epoch: None,
        sig: None,
        ttl: None,
    })
}

fn controller_changed(from: i64, grant: jamz_proto::grant::ControllerGrant) -> Box<MeshEnvelope> {
    Box::new(MeshEnvelope {
        kind: kinds::CONTROLLER_CHANGED.into(),
        action: None,
        data: json!({"userId": grant.user_id, "epoch": grant.epoch, "grant": grant}),
        sequence: 1,
        from,
        epoch: None,
        sig: None,
        ttl: None,
    })
}

fn mesh(e: &mut Engine, now: f64, link: i64, message: Box<MeshEnvelope>) -> Vec<Action> {
    e.handle(now, Input::Mesh { link, message });
    drain(e)
}

fn audio(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Audio(_)))
        .count()
}

#[test]
fn a_lying_peer_is_refused_nothing_applied_and_reported() {
    let (mut me, now) = follower_offline();
    let playing = me.timeline().cloned();
    let at = me.to_server_time(now);
    // A member that is not the DJ sends control on its own link.
    let out = mesh(&mut me, now, OTHER, pause_by(OTHER, 1, at));
    assert_eq!(refused(&out), vec![(OTHER, OTHER, "not-controller".into())]);
    // It claims the DJ's name on its own link (unsigned, relayed as far as we know).
    let out2 = mesh(&mut me, now + 1.0, OTHER, pause_by(DJ, 2, at));
    assert_eq!(refused(&out2)[0].2, "grant-other-epoch", "{out2:?}");
    // It presents a grant of its own making for itself.
    let forged = grant_by(
        &ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
        SESSION,
        OTHER,
        9,
        u64::MAX / 2,
    );
    let out3 = mesh(&mut me, now + 2.0, OTHER, controller_changed(OTHER, forged));
    assert_eq!(refused(&out3)[0].2, "grant-bad-signature");
    // A real grant of the server's, but for another session.
    let elsewhere = grant_by(&grant_signer(), "s-other", OTHER, 9, u64::MAX / 2);
    let out4 = mesh(
        &mut me,
        now + 3.0,
        OTHER,
        controller_changed(OTHER, elsewhere),
    );
    assert_eq!(refused(&out4)[0].2, "grant-other-session");
    // An older real grant of its own (an earlier turn as DJ): not newer, nothing changes.
    let out5 = mesh(
        &mut me,
        now + 4.0,
        OTHER,
        controller_changed(OTHER, grant(OTHER, 0)),
    );
    assert!(refused(&out5).is_empty(), "{out5:?}");
    for out in [&out, &out2, &out3, &out4, &out5] {
        assert_eq!(audio(out), 0, "nothing applied: {out:?}");
    }
    assert_eq!(me.timeline().cloned(), playing, "still playing as before");
    assert_eq!(me.controller(), Some(DJ));
    assert_eq!(me.stats().mesh_refused, 4);
    // The DJ's own pause on its link: obeyed.
    let ok = mesh(&mut me, now + 5.0, DJ, pause_by(DJ, 3, at + 5.0));
    assert!(refused(&ok).is_empty(), "{ok:?}");
    assert!(!me.timeline().unwrap().playing);
}

#[test]
fn without_a_valid_grant_not_even_the_dj_is_obeyed_over_the_mesh() {
    // No server key ever fetched: the DJ's grant cannot be checked.
    let mut me = connected(ME, 0.0);
    let now = sync_clock(&mut me, 0.0, 500.0, 20);
    server(&mut me, now, controller_granted(DJ, 1));
    me.handle(
        now,
        Input::PeerUp {
            user: DJ,
            rtt_ms: None,
        },
    );
    disconnect(&mut me, now);
    let at = me.to_server_time(now);
    let out = mesh(&mut me, now, DJ, pause_by(DJ, 1, at));
    assert_eq!(refused(&out), vec![(DJ, DJ, "no-server-key".into())]);
    // The key arrives (from the node's file): the same DJ is obeyed.
    me.handle(now, Input::GrantKey(grant_key()));
    let at = me.to_server_time(now);
    let out = mesh(&mut me, now + 1.0, DJ, pause_by(DJ, 2, at));
    assert!(refused(&out).is_empty(), "{out:?}");

    // A grant that expired (on the server's clock as estimated here).
    let mut me = connected(ME, 0.0);
    me.handle(0.0, Input::GrantKey(grant_key()));
    let now = sync_clock(&mut me, 0.0, 500.0, 20);
    let server_now = me.to_server_time(now) as u64;
    let expired = grant_by(&grant_signer(), SESSION, DJ, 1, server_now - 1);
    server(
        &mut me,
        now,
        jamz_proto::ServerEvent::MusicControllerChanged(
            jamz_proto::events::MusicControllerChanged {
                controller_id: socket_of(DJ),
                user_id: DJ,
                timestamp: 0.0,
                grant: Some(expired),
            },
        ),
    );
    me.handle(
        now,
        Input::PeerUp {
            user: DJ,
            rtt_ms: None,
        },
    );
    disconnect(&mut me, now);
    let at = me.to_server_time(now);
    let out = mesh(&mut me, now, DJ, pause_by(DJ, 1, at));
    assert_eq!(refused(&out), vec![(DJ, DJ, "grant-expired".into())]);
}

#[test]
fn refusals_are_reported_once_per_link_and_reason_with_a_count() {
    let (mut me, now) = follower_offline();
    let at = me.to_server_time(now);
    let mut reports = Vec::new();
    for i in 0..100u64 {
        let out = mesh(&mut me, now + i as f64, OTHER, pause_by(OTHER, i, at));
        reports.extend(out.into_iter().filter_map(|a| match a {
            Action::Notify(Notification::MeshRefused { count, .. }) => Some(count),
            _ => None,
        }));
    }
    assert_eq!(reports, vec![1], "one report for the flood");
    let later = now + 100.0 + MESH_REFUSAL_REPORT_MS;
    let out = mesh(&mut me, later, OTHER, pause_by(OTHER, 500, at));
    let counts: Vec<u64> = out
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::MeshRefused { count, .. }) => Some(*count),
            _ => None,
        })
        .collect();
    assert_eq!(counts, vec![100], "the 99 unreported and this one");
    assert_eq!(me.stats().mesh_refused, 101);
}

/// Random traffic from every link, lies and truths mixed: the timeline and the playlist
/// move only for the DJ's own messages on its own link, and the DJ stays the DJ.
#[test]
fn fuzz_only_the_granted_dj_moves_the_session_over_the_mesh() {
    let links = [DJ, OTHER, 4];
    let kinds_ = [
        kinds::MUSIC_CONTROL,
        kinds::POSITION_SYNC,
        kinds::PLAYLIST_UPDATE,
        kinds::CONTROLLER_CHANGED,
        kinds::TIME_SYNC,
    ];
    let strategy = prop::collection::vec(
        (0usize..3, 0usize..3, 0usize..5, 0u32..4, 0.0f64..150.0),
        1..40,
    );
    fuzz_runner("mesh trust", 64, file!())
        .run(&strategy, |steps| {
            let (mut me, mut t) = follower_offline();
            for (seq, (li, fi, ki, variant, position)) in steps.into_iter().enumerate() {
                t += 50.0;
                let link = links[li];
                let from = if fi == 0 { link } else { links[fi] };
                let at = me.to_server_time(t);
                let data = match kinds_[ki] {
                    kinds::MUSIC_CONTROL => {
                        json!({"position": position, "trackId": "t1", "timestamp": at, "from": from})
                    }
                    kinds::POSITION_SYNC => json!({"position": position, "trackId": "t1", "timestamp": at}),
                    kinds::PLAYLIST_UPDATE => json!({"playlist": [track(2, 200.0)]}),
                    kinds::CONTROLLER_CHANGED => {
                        let signer = if variant == 0 {
                            ed25519_dalek::SigningKey::from_bytes(&[99; 32])
                        } else {
                            grant_signer()
                        };
                        let session = if variant == 1 { "elsewhere" } else { SESSION };
                        // Epoch 0 and 1: not newer than the DJ's (1).
                        let g = grant_by(&signer, session, from, u64::from(variant % 2), u64::MAX / 2);
                        json!({"userId": from, "epoch": g.epoch, "grant": g})
                    }
                    _ => json!({"t0": at}),
                };
                let action = match variant {
                    0 => ControlAction::Pause,
                    1 => ControlAction::Seek,
                    2 => ControlAction::Play,
                    _ => ControlAction::TrackChange,
                };
                let message = Box::new(MeshEnvelope {
                    kind: kinds_[ki].into(),
                    action: (ki == 0).then_some(action),
                    data,
                    sequence: seq as u64,
                    from,
                    epoch: None,
                    sig: None,
                    ttl: None,
                });
                let before = (me.timeline().cloned(), me.playlist().tracks().to_vec());
                me.handle(t, Input::Mesh { link, message });
                drain(&mut me);
                let after = (me.timeline().cloned(), me.playlist().tracks().to_vec());
                let trusted = link == DJ && from == DJ;
                prop_assert!(
                    trusted || before == after,
                    "{} from {from} via {link} changed the session", kinds_[ki]
                );
                prop_assert_eq!(me.controller(), Some(DJ));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn when_the_djs_device_is_gone_every_peer_names_the_same_successor() {
    // Three followers linked to the DJ and to each other; the server is gone.
    let users = [ME, OTHER, 4];
    let mut peers: Vec<(Engine, f64)> = users
        .iter()
        .map(|u| {
            let links: Vec<i64> = std::iter::once(DJ)
                .chain(users.iter().copied().filter(|v| v != u))
                .collect();
            world(*u, &links)
        })
        .collect();
    let now = peers.iter().map(|(_, t)| *t).fold(0.0, f64::max);
    let (mut dj, _) = world(DJ, &users);
    let played = relay_of_play(&command(&mut dj, now, play()));
    for (e, _) in &mut peers {
        server(e, now, played.clone());
        disconnect(e, now);
        assert_eq!(e.acting(), Acting::Server(DJ));
    }
    // The DJ goes silent (its device died: no answer to any probe) for longer than the
    // absence limit: every peer picks the lowest id among those present, with no message.
    let later = now + DJ_ABSENCE_MS + 1.0;
    for (e, _) in &mut peers {
        e.handle(later, Input::Tick);
        let out = drain(e);
        assert_eq!(e.acting(), Acting::Successor(ME));
        assert!(
            out.iter().any(|a| matches!(
                a,
                Action::Notify(Notification::Controller { user_id: Some(ME) })
            )),
            "the change is announced: {out:?}"
        );
    }
    assert!(peers[0].0.is_dj() && !peers[1].0.is_dj() && !peers[2].0.is_dj());
    // Only the successor controls: its pause goes over the mesh only (the server would
    // refuse it), the others obey it; another follower's pause is refused.
    let (succ, rest) = peers.split_first_mut().unwrap();
    let out = command(&mut succ.0, later + 10.0, Command::Pause);
    assert!(emitted(&out, names::MUSIC_CONTROL).is_empty(), "{out:?}");
    let sent = mesh_out(&out);
    assert_eq!(sent.len(), 1, "{out:?}");
    for (i, (e, _)) in rest.iter_mut().enumerate() {
        let got = mesh(e, later + 11.0, ME, envelope(ME, 10, &sent[0].1));
        assert!(refused(&got).is_empty(), "{got:?}");
        assert!(!e.timeline().unwrap().playing, "peer {i} paused");
    }
    let (other, four) = rest.split_at_mut(1);
    assert!(errors(&command(&mut other[0].0, later + 12.0, play())).len() == 1);
    let lie = pause_by(OTHER, 11, four[0].0.to_server_time(later));
    assert_eq!(
        refused(&mesh(&mut four[0].0, later + 12.0, OTHER, lie)),
        vec![(OTHER, OTHER, "not-controller".into())]
    );
    // The DJ's link closing gives the same answer at once, on a fresh world.
    let (mut e, t) = world(4, &[DJ, ME, OTHER]);
    disconnect(&mut e, t);
    e.handle(t + 1.0, Input::PeerDown { user: DJ });
    drain(&mut e);
    assert_eq!(e.acting(), Acting::Successor(ME));
    // The server returns: its DJ is the DJ again.
    e.handle(
        t + 2.0,
        Input::Connected {
            socket_id: "back".into(),
        },
    );
    drain(&mut e);
    assert_eq!((e.acting(), e.controller()), (Acting::Server(DJ), Some(DJ)));
}

#[test]
fn an_append_made_over_the_mesh_spreads_at_once_and_only_its_author_sends_it() {
    let (mut me, now) = world(ME, &[DJ, OTHER]);
    let (mut other, _) = world(OTHER, &[DJ, ME]);
    disconnect(&mut me, now);
    disconnect(&mut other, now);
    let added = track(3, 100.0);
    let out = command(&mut me, now + 1.0, Command::Add(Box::new(added.clone())));
    let rest: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Rest(RestCall::AppendTrack { track, .. }) => Some(track.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rest, vec!["t3".to_string()], "the author's outbox gets it");
    assert_eq!(me.playlist().len(), 3, "seen here at once");
    let sent = mesh_out(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.kind, kinds::PLAYLIST_UPDATE);
    let got = mesh(&mut other, now + 2.0, ME, envelope(ME, 1, &sent[0].1));
    assert!(refused(&got).is_empty(), "{got:?}");
    assert_eq!(other.playlist().tracks().last().unwrap().id, "t3");
    assert!(
        !got.iter().any(|a| matches!(a, Action::Rest(_))),
        "a peer that learns of it over the mesh never sends it: {got:?}"
    );
    // Over the socket, an append is the server's to spread: nothing over the mesh.
    let (mut online, t) = world(ME, &[DJ]);
    let out = command(&mut online, t, Command::Add(Box::new(added)));
    assert!(mesh_out(&out).is_empty());
    assert_eq!(online.playlist().len(), 2);
}

#[test]
fn the_servers_dj_heard_again_takes_control_back_and_everyone_is_told() {
    let (mut e, t) = world(4, &[DJ, ME, OTHER]);
    disconnect(&mut e, t);
    let later = t + DJ_ABSENCE_MS + 1.0;
    e.handle(later, Input::Tick);
    drain(&mut e);
    assert_eq!(e.acting(), Acting::Successor(ME));
    // The DJ's device wakes up: its control on its own link shows it is there; control
    // is back with it, announced, and that first control is obeyed.
    let at = e.to_server_time(later);
    let out = mesh(&mut e, later + 1.0, DJ, pause_by(DJ, 50, at));
    assert!(refused(&out).is_empty(), "{out:?}");
    assert_eq!(e.acting(), Acting::Server(DJ));
    assert_eq!(pauses(&out), 1, "the DJ's first control counts: {out:?}");
    let back = out;
    assert!(
        back.iter().any(|a| matches!(
            a,
            Action::Notify(Notification::Controller { user_id: Some(DJ) })
        )),
        "{back:?}"
    );
    // The server returning with the same DJ is announced too (it was a successor here).
    let (mut e, t) = world(4, &[DJ, ME, OTHER]);
    disconnect(&mut e, t);
    e.handle(t + 1.0, Input::PeerDown { user: DJ });
    drain(&mut e);
    e.handle(
        t + 2.0,
        Input::Connected {
            socket_id: "back".into(),
        },
    );
    let out = drain(&mut e);
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Notify(Notification::Controller { user_id: Some(DJ) })
        )),
        "{out:?}"
    );
}

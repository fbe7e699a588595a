//! The engine's side of the peer mesh: the tier from both transports, the DJ's controls
//! over the socket and the mesh at once, one application per control whichever copy comes
//! first, who may steer over the mesh, and the server's return.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::mesh::*;
use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::{ControlAction, names};
use jamz_proto::mesh::{MeshEnvelope, kinds};
use jamz_sync::{Action, ClockSource, Command, Engine, Input, Notification, Tier};

#[test]
fn the_tier_goes_socket_mesh_offline_and_back_each_change_announced() {
    let (mut e, now) = world(ME, &[]);
    assert_eq!(e.tier(), Tier::Socket);
    e.handle(
        now,
        Input::PeerUp {
            user: DJ,
            rtt_ms: None,
        },
    );
    assert!(tiers(&drain(&mut e)).is_empty(), "the socket still wins");
    let went = disconnect(&mut e, now + 1.0);
    assert_eq!(tiers(&went), vec![Tier::Mesh]);
    let reason = went.iter().find_map(|a| match a {
        Action::Notify(Notification::Tier { reason, .. }) => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(
        reason.as_deref(),
        Some("connection lost; 1 peer on the mesh")
    );
    e.handle(now + 2.0, Input::PeerDown { user: DJ });
    assert_eq!(tiers(&drain(&mut e)), vec![Tier::Offline]);
    e.handle(
        now + 3.0,
        Input::PeerUp {
            user: OTHER,
            rtt_ms: Some(2.0),
        },
    );
    assert_eq!(tiers(&drain(&mut e)), vec![Tier::Mesh]);
    assert_eq!(e.mesh_peers(), 1);
    e.handle(
        now + 4.0,
        Input::Connected {
            socket_id: "again".into(),
        },
    );
    assert_eq!(tiers(&drain(&mut e)), vec![Tier::Socket]);
}

#[test]
fn a_peer_coming_up_gets_a_state_hello() {
    let (mut e, now) = world(ME, &[]);
    e.handle(
        now,
        Input::PeerUp {
            user: OTHER,
            rtt_ms: None,
        },
    );
    let out = mesh_out(&drain(&mut e));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, Some(OTHER));
    assert_eq!(out[0].1.kind, kinds::STATE_HELLO);
    assert_eq!(out[0].1.data["controller"], DJ);
    // A measured round trip later is no new channel: no second hello.
    e.handle(
        now,
        Input::PeerUp {
            user: OTHER,
            rtt_ms: Some(3.0),
        },
    );
    assert!(mesh_out(&drain(&mut e)).is_empty());
}

#[test]
fn the_djs_control_goes_out_over_the_socket_and_the_mesh_at_once() {
    let (mut dj, now) = world(DJ, &[ME]);
    let actions = command(&mut dj, now, play());
    let socket = emitted(&actions, names::MUSIC_CONTROL);
    let mesh = mesh_out(&actions);
    assert_eq!(socket.len(), 1);
    assert_eq!(mesh.len(), 1, "{mesh:?}");
    let (to, m) = &mesh[0];
    assert_eq!(*to, None, "broadcast");
    assert_eq!(m.kind, kinds::MUSIC_CONTROL);
    assert_eq!(m.action, Some(ControlAction::Play));
    assert_eq!(m.data["timestamp"], socket[0]["timestamp"]);
    assert_eq!(m.data["position"], socket[0]["position"]);
    assert_eq!(m.data["trackId"], "t1");
    assert_eq!(m.data["from"], DJ);
}

/// A DJ and a follower, both playing track 1; the DJ's pause as its socket relay and its
/// mesh message.
fn a_pause_both_ways() -> (Engine, f64, ServerEvent, Box<MeshEnvelope>) {
    let (mut dj, now) = world(DJ, &[ME]);
    let (mut me, _) = world(ME, &[DJ]);
    let actions = command(&mut dj, now, play());
    let play_relay = relay_of(&actions, ControlAction::Play);
    server(&mut me, now, play_relay);
    let actions = command(&mut dj, now + 5_000.0, Command::Pause);
    let socket = relay_of(&actions, ControlAction::Pause);
    let mesh = mesh_out(&actions);
    assert_eq!(mesh.len(), 1);
    (me, now + 5_000.0, socket, envelope(DJ, 7, &mesh[0].1))
}

/// The server's relay of the DJ's `music-control` among `actions`.
fn relay_of(actions: &[Action], action: ControlAction) -> ServerEvent {
    let sent = emitted(actions, names::MUSIC_CONTROL);
    assert_eq!(sent.len(), 1);
    let data = sent[0];
    let track: jamz_proto::Track = serde_json::from_value(data["track"].clone()).unwrap();
    let r = relay(
        DJ,
        Some(track),
        data["position"].as_f64().unwrap(),
        data["timestamp"].as_f64().unwrap(),
    );
    match action {
        ControlAction::Play => ServerEvent::MusicPlay(r),
        ControlAction::Pause => ServerEvent::MusicPause(r),
        ControlAction::Seek => ServerEvent::MusicSeek(r),
        ControlAction::TrackChange => ServerEvent::MusicTrackChange(r),
    }
}

#[test]
fn a_control_over_both_transports_is_applied_once_socket_first() {
    let (mut me, now, socket, mesh) = a_pause_both_ways();
    assert_eq!(pauses(&server(&mut me, now + 20.0, socket)), 1);
    me.handle(
        now + 25.0,
        Input::Mesh {
            link: DJ,
            message: mesh,
        },
    );
    let second = drain(&mut me);
    assert_eq!(pauses(&second), 0, "{second:?}");
    assert!(errors(&second).is_empty(), "{second:?}");
    assert!(!me.timeline().unwrap().playing);
}

#[test]
fn a_control_over_both_transports_is_applied_once_mesh_first() {
    let (mut me, now, socket, mesh) = a_pause_both_ways();
    me.handle(
        now + 5.0,
        Input::Mesh {
            link: DJ,
            message: mesh,
        },
    );
    assert_eq!(pauses(&drain(&mut me)), 1);
    let second = server(&mut me, now + 20.0, socket);
    assert_eq!(pauses(&second), 0, "{second:?}");
    assert!(!me.timeline().unwrap().playing);
}

#[test]
fn with_the_server_gone_the_djs_controls_arrive_over_the_mesh() {
    let (mut dj, now) = world(DJ, &[ME]);
    let (mut me, _) = world(ME, &[DJ]);
    let actions = command(&mut dj, now, play());
    server(&mut me, now, relay_of(&actions, ControlAction::Play));
    // The server dies: both lose the socket, the mesh stays.
    assert_eq!(tiers(&disconnect(&mut dj, now + 100.0)), vec![Tier::Mesh]);
    assert_eq!(tiers(&disconnect(&mut me, now + 100.0)), vec![Tier::Mesh]);
    let mut sequence = 100;
    let mut deliver = |dj: &mut Engine, me: &mut Engine, at: f64, cmd: Command| {
        let actions = command(dj, at, cmd);
        let mesh = mesh_out(&actions);
        assert_eq!(mesh.len(), 1, "{actions:?}");
        sequence += 1;
        me.handle(
            at + 1.0,
            Input::Mesh {
                link: DJ,
                message: envelope(DJ, sequence, &mesh[0].1),
            },
        );
        drain(me)
    };
    let paused = deliver(&mut dj, &mut me, now + 200.0, Command::Pause);
    assert_eq!(pauses(&paused), 1, "{paused:?}");
    let seeked = deliver(
        &mut dj,
        &mut me,
        now + 300.0,
        Command::Seek { position: 42.0 },
    );
    assert!(errors(&seeked).is_empty(), "{seeked:?}");
    assert_eq!(me.timeline().unwrap().position_s, 42.0);
    let changed = deliver(&mut dj, &mut me, now + 400.0, Command::Next);
    let tl = me.timeline().unwrap();
    assert_eq!(
        (tl.track.id.as_str(), tl.position_s, tl.playing),
        ("t2", 0.0, false),
        "{changed:?}"
    );
    let played = deliver(&mut dj, &mut me, now + 500.0, play());
    assert_eq!(starts(&played).len(), 1, "{played:?}");
    assert_eq!(me.timeline(), dj.timeline());
}

#[test]
fn over_the_mesh_only_the_dj_on_its_own_link_is_obeyed() {
    let (mut dj, now) = world(DJ, &[ME]);
    let actions = command(&mut dj, now, Command::Pause);
    assert!(errors(&actions).len() == 1, "nothing loaded: {actions:?}");
    let actions = command(&mut dj, now, play());
    let mesh = mesh_out(&actions);
    let (mut me, _) = world(ME, &[DJ, OTHER]);
    disconnect(&mut me, now);
    // The DJ's words relayed by another peer, unsigned (no epoch): not believed.
    me.handle(
        now,
        Input::Mesh {
            link: OTHER,
            message: envelope(DJ, 1, &mesh[0].1),
        },
    );
    let relayed = drain(&mut me);
    assert!(starts(&relayed).is_empty());
    assert_eq!(
        refused(&relayed),
        vec![(DJ, OTHER, "grant-other-epoch".to_string())],
        "{relayed:?}"
    );
    // Another member's own control on its own link: not the DJ.
    let mut theirs = envelope(OTHER, 1, &mesh[0].1);
    theirs.data["from"] = OTHER.into();
    me.handle(
        now,
        Input::Mesh {
            link: OTHER,
            message: theirs,
        },
    );
    let forged = drain(&mut me);
    assert!(starts(&forged).is_empty());
    assert_eq!(
        refused(&forged),
        vec![(OTHER, OTHER, "not-controller".to_string())],
        "{forged:?}"
    );
    assert!(me.timeline().is_none());
    // Garbage data is an error, not a panic.
    let mut bad = envelope(DJ, 2, &mesh[0].1);
    bad.data = serde_json::json!({"position": "soon"});
    me.handle(
        now,
        Input::Mesh {
            link: DJ,
            message: bad,
        },
    );
    assert_eq!(errors(&drain(&mut me)).len(), 1);
    // The DJ itself: obeyed.
    me.handle(
        now,
        Input::Mesh {
            link: DJ,
            message: envelope(DJ, 3, &mesh[0].1),
        },
    );
    assert_eq!(starts(&drain(&mut me)).len(), 1);
    assert_eq!(me.stats().mesh_refused, 2);
}

#[test]
fn when_the_server_returns_its_stale_memory_does_not_undo_the_djs_mesh_controls() {
    let (mut dj, now) = world(DJ, &[ME]);
    let (mut me, _) = world(ME, &[DJ]);
    let actions = command(&mut dj, now, play());
    let played = relay_of(&actions, ControlAction::Play);
    server(&mut me, now, played);
    disconnect(&mut dj, now + 100.0);
    disconnect(&mut me, now + 100.0);
    let actions = command(&mut dj, now + 200.0, Command::Pause);
    let mesh = mesh_out(&actions);
    let replayed = relay_of(&actions, ControlAction::Pause);
    me.handle(
        now + 201.0,
        Input::Mesh {
            link: DJ,
            message: envelope(DJ, 9, &mesh[0].1),
        },
    );
    drain(&mut me);
    let paused = me.timeline().cloned().unwrap();
    assert!(!paused.playing);
    // The server is back with its memory from before the outage: still playing track 1.
    me.handle(
        now + 5_000.0,
        Input::Connected {
            socket_id: "back".into(),
        },
    );
    let back = server(
        &mut me,
        now + 5_000.0,
        session_state(
            Some(DJ),
            vec![track(1, 200.0), track(2, 200.0)],
            Some((track(1, 200.0), 4.0)),
            None,
        ),
    );
    assert!(starts(&back).is_empty(), "{back:?}");
    assert_eq!(me.timeline(), Some(&paused));
    // Then the DJ's link replays the pause it queued: the copy already applied.
    let replay = server(&mut me, now + 5_100.0, replayed);
    assert_eq!(pauses(&replay), 0);
    assert_eq!(me.tier(), Tier::Socket);
}

#[test]
fn with_the_server_gone_the_clock_follows_the_dj_on_the_servers_timeline() {
    // The DJ's clock reads 300 ms behind ours; the server is 500 ms ahead of the DJ's,
    // so 200 ms ahead of ours. Both know it from the server (1 ms each way).
    let (mut dj, dj_now) = world_at(DJ, 500.0, &[ME]);
    let (mut me, me_now) = world_at(ME, 200.0, &[DJ]);
    let start = me_now.max(dj_now + 300.0) + 1.0;
    let before = me.clock_estimate(start);
    assert!(close(before.offset_ms, 200.0, 0.5), "{before:?}");
    disconnect(&mut dj, start - 300.0);
    disconnect(&mut me, start);
    // Over the mesh: 5 ms each way. Run 10 s of our timers, carrying the probes.
    let mut now = start;
    let mut sequence = 0;
    let mut probes = 0;
    while now < start + 10_000.0 {
        now = me.next_timeout().expect("probing").max(now);
        me.handle(now, Input::Tick);
        for (to, m) in mesh_out(&drain(&mut me)) {
            if to != Some(DJ) || m.kind != kinds::TIME_SYNC {
                continue;
            }
            probes += 1;
            sequence += 1;
            dj.handle(
                now - 300.0 + 5.0,
                Input::Mesh {
                    link: ME,
                    message: envelope(ME, sequence, &m),
                },
            );
            for (to, reply) in mesh_out(&drain(&mut dj)) {
                assert_eq!(to, Some(ME));
                me.handle(
                    now + 10.0,
                    Input::Mesh {
                        link: DJ,
                        message: envelope(DJ, sequence, &reply),
                    },
                );
            }
            now += 10.0;
        }
    }
    let after = me.clock_estimate(now);
    eprintln!("{probes} probes over the mesh; before {before:?}, after {after:?}");
    assert!(probes > 12, "{probes}");
    assert_eq!(after.source, ClockSource::TimeSync);
    assert!(
        after.rtt_ms.is_some_and(|r| close(r, 10.0, 0.5)),
        "the estimate in use is the mesh's: {after:?}"
    );
    assert!(
        close(after.offset_ms, 200.0, 1.0),
        "still the server's timeline: {after:?}"
    );
    // The server returns: its own estimate again.
    me.handle(
        now,
        Input::Connected {
            socket_id: "back".into(),
        },
    );
    let back = me.clock_estimate(now);
    assert!(back.rtt_ms.is_some_and(|r| close(r, 2.0, 0.5)), "{back:?}");
}

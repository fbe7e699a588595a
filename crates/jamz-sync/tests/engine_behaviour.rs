//! The engine's behaviours, one scenario per test, driven through its public contract.
mod common;

use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::names;
use jamz_sync::constants::*;
use jamz_sync::{
    Action, AudioCommand, ClockSource, Command, Engine, EngineConfig, Heard, Input, Notification,
    RestCall, Tier,
};

const DJ: i64 = 1;
const ME: i64 = 2;

/// `user`'s engine, its clock known (server `offset` ms ahead), user 1 the DJ, `tracks` in
/// the playlist; with the local time reached.
fn world(user: i64, offset: f64, tracks: Vec<jamz_proto::Track>) -> (Engine, f64) {
    let mut e = connected(user, 0.0);
    let now = sync_clock(&mut e, 0.0, offset, 20);
    server(&mut e, now, controller_is(DJ));
    server(&mut e, now, playlist(tracks));
    assert_eq!(e.is_dj(), user == DJ);
    (e, now)
}

/// A DJ whose clock is known (server 500 ms ahead), with two tracks.
fn dj_world() -> (Engine, f64) {
    world(DJ, 500.0, vec![track(1, 200.0), track(2, 200.0)])
}

/// A follower whose server is `offset` ms ahead, DJ = user 1, two tracks.
fn follower_world(offset: f64) -> (Engine, f64) {
    world(ME, offset, vec![track(1, 200.0), track(2, 200.0)])
}

#[test]
fn connecting_joins_the_session_and_starts_clock_sync() {
    let mut e = Engine::new(EngineConfig::new(ME, "me").with_session(SESSION));
    e.handle(
        0.0,
        Input::Connected {
            socket_id: "abc".into(),
        },
    );
    let actions = drain(&mut e);
    let join = emitted(&actions, names::JOIN_AUDIO_SESSION);
    assert_eq!(join.len(), 1);
    assert_eq!(join[0]["sessionId"], SESSION);
    assert_eq!(join[0]["userId"], ME);
    assert!(actions.iter().any(|a| matches!(a, Action::TimeSync { .. })));
}

#[test]
fn dj_play_is_announced_for_a_future_server_instant_and_starts_there() {
    let (mut e, now) = dj_world();
    let actions = command(
        &mut e,
        now,
        Command::Play {
            track: Some("t1".into()),
            position: Some(10.0),
        },
    );
    let control = emitted(&actions, names::MUSIC_CONTROL);
    assert_eq!(control.len(), 1);
    assert_eq!(control[0]["action"], "play");
    assert_eq!(control[0]["position"], 10.0);
    let ts = control[0]["timestamp"].as_f64().unwrap_or(f64::NAN);
    assert!(
        close(ts, now + 500.0 + CONTROL_LEAD_MS, 0.01),
        "{ts} vs {now}"
    );
    let s = starts(&actions);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, "t1");
    assert_eq!(s[0].1, 10.0);
    assert!(close(s[0].2, now + CONTROL_LEAD_MS, 0.01));
}

#[test]
fn follower_maps_the_dj_timeline_to_its_own_clock() {
    let (mut e, now) = follower_world(-1_000.0);
    // The DJ says: position 5 at server instant S = (our now + 200 ms) on the server clock.
    let s = now + 200.0 - 1_000.0;
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 5.0, s)),
    );
    let st = starts(&actions);
    assert_eq!(st.len(), 1, "{actions:?}");
    assert!(
        close(st[0].2, now + 200.0, 0.01),
        "start at {} now {now}",
        st[0].2
    );
    assert_eq!(st[0].1, 5.0);
}

#[test]
fn falls_back_to_seeds_rule_without_time_sync() {
    let mut e = connected(ME, 0.0);
    let mut now = 0.0;
    // The server never acks `time-sync` (it lacks the extension).
    for _ in 0..TIME_SYNC_GIVE_UP_AFTER {
        let t0 = drain(&mut e)
            .into_iter()
            .chain(
                run_until(&mut e, now, now + 10_000.0)
                    .into_iter()
                    .map(|(_, a)| a),
            )
            .find_map(|a| match a {
                Action::TimeSync { t0, .. } => Some(t0),
                _ => None,
            });
        let Some(t0) = t0 else { break };
        now = t0 + 100.0;
        e.handle(now, Input::TimeSyncFailed { t0 });
    }
    drain(&mut e);
    assert_eq!(e.clock_estimate(now).source, ClockSource::SeedsRule);
    server(&mut e, now, controller_is(DJ));
    // A web DJ sent "position 30 at its timestamp", 2 s ago by our clock.
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 30.0, now - 2_000.0)),
    );
    let st = starts(&actions);
    assert_eq!(st.len(), 1);
    // position + (now - timestamp)/1000
    assert!(close(st[0].1, 32.0, 1e-9), "{st:?}");
    assert!(close(st[0].2, now, 1e-9));
}

#[test]
fn session_state_server_time_gives_a_first_offset_before_time_sync() {
    let mut e = connected(ME, 0.0);
    server(
        &mut e,
        100.0,
        session_state(None, vec![], None, Some(7_100.0)),
    );
    let est = e.clock_estimate(100.0);
    assert_eq!(est.source, ClockSource::SessionState);
    assert!(close(est.offset_ms, 7_000.0, 1e-9));
}

#[test]
fn late_joiner_waits_for_the_djs_anchor_then_starts_mid_track() {
    let mut e = connected(ME, 0.0);
    let now = sync_clock(&mut e, 0.0, 250.0, 20);
    let tracks = vec![track(1, 200.0), track(2, 200.0)];
    // The server's memory: about 50 s into t1.
    let actions = server(
        &mut e,
        now,
        session_state(
            Some(DJ),
            tracks.clone(),
            Some((track(1, 200.0), 50.0)),
            Some(now + 250.0),
        ),
    );
    assert!(
        starts(&actions).is_empty(),
        "waits for the DJ's exact anchor"
    );
    // The DJ's position sync, sent 40 ms ago: 62.0 s then.
    let actions = server(&mut e, now, position_sync(DJ, 62.0, now + 250.0 - 40.0));
    let st = starts(&actions);
    assert_eq!(st.len(), 1, "{actions:?}");
    assert!(close(st[0].1, 62.04, 1e-6), "{st:?}");
}

#[test]
fn late_joiner_without_a_dj_anchor_starts_from_the_server_state_in_time() {
    let mut e = connected(ME, 0.0);
    let now = sync_clock(&mut e, 0.0, 0.0, 20);
    server(
        &mut e,
        now,
        session_state(
            Some(DJ),
            vec![track(1, 200.0)],
            Some((track(1, 200.0), 50.0)),
            Some(now),
        ),
    );
    let later = run_until(&mut e, now, now + JOIN_SETTLE_MAX_MS + 1.0);
    let actions: Vec<Action> = later.iter().map(|(_, a)| a.clone()).collect();
    let st = starts(&actions);
    assert_eq!(st.len(), 1);
    let expect = 50.0 + JOIN_SETTLE_MAX_MS / 1000.0;
    assert!(close(st[0].1, expect, 0.01), "{st:?}");
}

#[test]
fn non_dj_control_is_refused() {
    let (mut e, now) = follower_world(0.0);
    for cmd in [
        Command::Play {
            track: None,
            position: None,
        },
        Command::Pause,
        Command::Seek { position: 3.0 },
        Command::Next,
        Command::Previous,
        Command::Remove { track: "t1".into() },
        Command::Reorder {
            order: vec!["t2".into(), "t1".into()],
        },
    ] {
        let name = cmd.name();
        let actions = command(&mut e, now, cmd);
        assert!(emitted(&actions, names::MUSIC_CONTROL).is_empty(), "{name}");
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Rest(_))),
            "{name}"
        );
        let errs = errors(&actions);
        assert_eq!(errs.len(), 1, "{name}: {actions:?}");
        assert!(errs[0].contains("only the DJ"), "{name}: {}", errs[0]);
    }
    assert!(e.timeline().is_none());
}

#[test]
fn relayed_control_from_a_former_dj_is_refused() {
    let (mut e, now) = follower_world(0.0);
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(7, Some(track(1, 200.0)), 0.0, now)),
    );
    assert!(starts(&actions).is_empty());
    assert!(errors(&actions)[0].contains("not the DJ"));
}

#[test]
fn control_naming_an_unknown_track_is_an_error_and_the_engine_goes_on() {
    let (mut e, now) = follower_world(0.0);
    let ghost = jamz_proto::Track {
        id: "ghost".into(),
        title: "Nobody's".into(),
        ..Default::default()
    };
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(ghost), 0.0, now)),
    );
    assert!(starts(&actions).is_empty());
    assert!(errors(&actions)[0].contains("not in the playlist"));
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(2, 200.0)), 0.0, now)),
    );
    assert_eq!(starts(&actions).len(), 1);
}

#[test]
fn position_past_the_end_is_an_error() {
    let (mut e, now) = follower_world(0.0);
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicSeek(relay(DJ, Some(track(1, 200.0)), 500.0, now)),
    );
    assert!(starts(&actions).is_empty());
    assert!(errors(&actions)[0].contains("past the end"));
    let (mut dj, now) = dj_world();
    assert!(
        errors(&command(
            &mut dj,
            now,
            Command::Play {
                track: Some("t1".into()),
                position: Some(201.5),
            }
        ))[0]
            .contains("past the end")
    );
}

#[test]
fn timestamp_far_in_the_future_is_refused() {
    let (mut e, now) = follower_world(0.0);
    let far = now + MAX_FUTURE_TIMESTAMP_MS + 5_000.0;
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 0.0, far)),
    );
    assert!(starts(&actions).is_empty());
    assert!(errors(&actions)[0].contains("in the future"));
    let actions = server(&mut e, now, position_sync(DJ, 3.0, far));
    assert!(errors(&actions)[0].contains("in the future"));
}

#[test]
fn playlist_of_ten_thousand_entries_is_refused_and_the_old_one_kept() {
    let (mut e, now) = follower_world(0.0);
    let huge: Vec<_> = (0..10_000).map(|i| track(i, 100.0)).collect();
    let actions = server(&mut e, now, playlist(huge));
    assert!(errors(&actions)[0].contains("10000 entries refused"));
    assert_eq!(e.playlist().len(), 2);
}

#[test]
fn duplicate_is_refused_by_url_then_by_title_and_artist() {
    let (mut e, now) = follower_world(0.0);
    let same_url = jamz_proto::Track {
        title: "Other".into(),
        ..track(1, 10.0)
    };
    let same_song = jamz_proto::Track {
        url: "https://elsewhere.invalid/x.mp3".into(),
        title: "  song 1 ".into(),
        artist: "BAND".into(),
        ..track(9, 10.0)
    };
    for t in [same_url, same_song] {
        let actions = command(&mut e, now, Command::Add(Box::new(t)));
        assert!(errors(&actions)[0].contains("already in the playlist"));
        assert!(!actions.iter().any(|a| matches!(a, Action::Rest(_))));
    }
    let actions = command(&mut e, now, Command::Add(Box::new(track(3, 10.0))));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Rest(RestCall::AppendTrack { .. })))
    );
}

#[test]
fn incoming_playlist_duplicates_are_dropped() {
    let (mut e, now) = follower_world(0.0);
    server(
        &mut e,
        now,
        playlist(vec![track(1, 1.0), track(1, 1.0), track(2, 1.0)]),
    );
    assert_eq!(e.playlist().len(), 2);
}

#[test]
fn dj_removes_and_reorders_over_rest() {
    let (mut e, now) = dj_world();
    let a = command(&mut e, now, Command::Remove { track: "t2".into() });
    assert!(a.iter().any(|a| matches!(a,
        Action::Rest(RestCall::DeleteTrack { track_id, .. }) if track_id == "t2")));
    assert!(
        errors(&command(
            &mut e,
            now,
            Command::Reorder {
                order: vec!["t2".into()],
            }
        ))[0]
            .contains("permutation")
    );
    assert!(
        command(
            &mut e,
            now,
            Command::Reorder {
                order: vec!["t2".into(), "t1".into()],
            }
        )
        .iter()
        .any(|a| matches!(a, Action::Rest(RestCall::Reorder { .. })))
    );
}

fn position_sync_times(high_latency: Option<bool>) -> Vec<f64> {
    let mut e = Engine::new(EngineConfig {
        high_latency_link: high_latency,
        ..EngineConfig::new(DJ, "dj").with_session(SESSION)
    });
    e.handle(
        0.0,
        Input::Connected {
            socket_id: socket_of(DJ),
        },
    );
    let now = sync_clock(&mut e, 0.0, 0.0, 20);
    server(&mut e, now, controller_is(DJ));
    server(&mut e, now, playlist(vec![track(1, 200.0)]));
    command(&mut e, now, play());
    run_until(&mut e, now, now + 20_000.0)
        .into_iter()
        .filter(|(_, a)| matches!(a, Action::Emit { event, .. } if *event == names::MUSIC_POSITION_SYNC))
        .map(|(t, _)| t)
        .collect()
}

#[test]
fn dj_sends_position_sync_every_5_s_and_every_3_s_on_high_latency_links() {
    for (high, period) in [
        (Some(false), POSITION_SYNC_PERIOD_MS),
        (Some(true), HIGH_LATENCY_POSITION_SYNC_PERIOD_MS),
    ] {
        let times = position_sync_times(high);
        assert!(times.len() >= 3, "{times:?}");
        for w in times.windows(2).skip(1) {
            assert!(close(w[1] - w[0], period, 1.0), "{high:?}: {times:?}");
        }
    }
}

#[test]
fn dj_sends_a_position_sync_when_someone_joins() {
    let (mut e, now) = dj_world();
    command(&mut e, now, play());
    let later = now + 1_000.0;
    run_until(&mut e, now, later);
    let actions = server(&mut e, later, joined(3));
    let sync = emitted(&actions, names::MUSIC_POSITION_SYNC);
    assert_eq!(sync.len(), 1);
    let p = sync[0]["position"].as_f64().unwrap_or(f64::NAN);
    assert!(close(p, (1_000.0 - CONTROL_LEAD_MS) / 1000.0, 1e-6), "{p}");
}

#[test]
fn small_playout_error_trims_the_rate_and_a_large_one_restarts() {
    let (mut e, now) = follower_world(0.0);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 10.0, now)),
    );
    let t = now + 1_000.0;
    let Some((id, due)) = e.due_position(t) else {
        panic!("not playing")
    };
    e.handle(
        t,
        Input::AudioClock {
            at: t,
            heard: Some(Heard {
                track: id.clone(),
                position: due + 0.002,
            }),
        },
    );
    let trims: Vec<f64> = drain(&mut e)
        .into_iter()
        .filter_map(|a| match a {
            Action::Audio(AudioCommand::SetRateTrim { ppm }) => Some(ppm),
            _ => None,
        })
        .collect();
    assert_eq!(trims.len(), 1);
    assert!(
        trims[0] < 0.0 && trims[0] >= -MAX_RATE_TRIM_PPM,
        "ahead slows down: {trims:?}"
    );
    assert_eq!(e.stats().hard_resyncs, 0);
    let t = t + 200.0;
    e.handle(
        t,
        Input::AudioClock {
            at: t,
            heard: Some(Heard {
                track: id,
                position: due + 0.2 + 0.6,
            }),
        },
    );
    let st = starts(&drain(&mut e));
    assert_eq!(st.len(), 1);
    assert_eq!(e.stats().hard_resyncs, 1);
    assert!(close(st[0].1, 10.0 + (t - now) / 1000.0, 1e-6), "{st:?}");
}

#[test]
fn dj_changes_track_at_the_end_without_a_gap() {
    let (mut e, now) = world(DJ, 0.0, vec![track(1, 10.0), track(2, 10.0)]);
    let first = emitted(&command(&mut e, now, play()), names::MUSIC_CONTROL)[0]["timestamp"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let later = run_until(&mut e, now, now + 11_000.0);
    let change = later.iter().find_map(|(t, a)| match a {
        Action::Emit { event, data } if *event == names::MUSIC_CONTROL => Some((*t, data.clone())),
        _ => None,
    });
    let Some((sent_at, data)) = change else {
        panic!("no track change")
    };
    assert_eq!(data["action"], "track-change");
    assert_eq!(data["track"]["id"], "t2");
    assert_eq!(data["position"], 0.0);
    let ts = data["timestamp"].as_f64().unwrap_or(f64::NAN);
    assert!(
        close(ts, first + 10_000.0, 1e-6),
        "starts exactly at the end"
    );
    assert!(sent_at <= ts - CONTROL_LEAD_MS + 1.0, "announced ahead");
}

#[test]
fn small_position_sync_deviations_of_a_web_dj_are_ignored_big_ones_followed() {
    let (mut e, now) = follower_world(0.0);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 0.0, now)),
    );
    let t = now + 5_000.0;
    let actions = server(&mut e, t, position_sync(DJ, 5.010, t));
    assert!(starts(&actions).is_empty());
    let actions = server(&mut e, t, position_sync(DJ, 5.400, t));
    let st = starts(&actions);
    assert_eq!(st.len(), 1);
    assert!(close(st[0].1, 5.4, 1e-6));
}

#[test]
fn pause_stops_everyone_where_the_dj_is() {
    let (mut e, now) = dj_world();
    command(
        &mut e,
        now,
        Command::Play {
            track: None,
            position: Some(20.0),
        },
    );
    let t = now + CONTROL_LEAD_MS + 2_000.0;
    let actions = command(&mut e, t, Command::Pause);
    let c = emitted(&actions, names::MUSIC_CONTROL);
    assert_eq!(c[0]["action"], "pause");
    assert!(close(
        c[0]["position"].as_f64().unwrap_or(f64::NAN),
        22.0,
        1e-6
    ));
    assert!(actions.contains(&Action::Audio(AudioCommand::Pause)));
    // Play with no position resumes there.
    let st = starts(&command(&mut e, t + 1_000.0, play()));
    assert!(close(st[0].1, 22.0, 1e-6), "{st:?}");
}

#[test]
fn bad_numbers_never_panic_nor_spoil_the_clock_or_the_next_play() {
    let (mut e, now) = follower_world(-1_000.0);
    for ev in [
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), f64::NAN, now)),
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), -1.0, now)),
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 1.0, f64::INFINITY)),
        position_sync(DJ, f64::NAN, now),
    ] {
        let a = server(&mut e, now, ev);
        assert_eq!(errors(&a).len(), 1, "{a:?}");
    }
    e.handle(f64::NAN, Input::Tick);
    e.handle(
        now,
        Input::TimeSyncReply {
            t0: now,
            t1: f64::NAN,
            t2: 0.0,
            t3: now,
        },
    );
    e.handle(
        now,
        Input::AudioClock {
            at: f64::INFINITY,
            heard: None,
        },
    );
    drain(&mut e);
    // Nothing of that reached the clock: the estimate is still the one the good samples gave.
    let est = e.clock_estimate(now);
    assert!(close(est.offset_ms, -1_000.0, 0.01), "{est:?}");
    assert!(est.drift_ppm.is_finite(), "{est:?}");
    assert_eq!(est.source, ClockSource::TimeSync, "{est:?}");
    // And a good play afterwards starts where it should (as in
    // follower_maps_the_dj_timeline_to_its_own_clock).
    let s = now + 200.0 - 1_000.0;
    let st = starts(&server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 5.0, s)),
    ));
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0].1, 5.0);
    assert!(
        close(st[0].2, now + 200.0, 0.01),
        "start at {} now {now}",
        st[0].2
    );
}

#[test]
fn notifications_serialize_as_node_control_events() {
    let json = |n: &jamz_sync::Notification| serde_json::to_value(n).unwrap_or_default();
    let c = jamz_sync::Notification::Controller { user_id: Some(7) };
    assert_eq!(
        json(&c),
        serde_json::json!({"event": "controller", "userId": 7})
    );
    let e = jamz_sync::Notification::Error {
        message: "nope".into(),
        cmd: Some("play".into()),
    };
    assert_eq!(
        json(&e),
        serde_json::json!({"event": "error", "message": "nope", "cmd": "play"})
    );
}

#[test]
fn timestamp_from_long_ago_is_refused_and_a_finished_track_is_not_started() {
    let (mut e, now) = follower_world(0.0);
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(
            DJ,
            Some(track(1, 200.0)),
            0.0,
            now - MAX_PAST_TIMESTAMP_MS - 1.0,
        )),
    );
    assert!(errors(&actions)[0].contains("in the past"));
    // Started 250 s ago on a 200 s track: over; nothing to play until the DJ moves on.
    let actions = server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 0.0, now - 250_000.0)),
    );
    assert!(errors(&actions).is_empty());
    assert!(starts(&actions).is_empty());
    assert!(actions.contains(&Action::Audio(AudioCommand::Stop)));
}

#[test]
fn output_events_restart_once_ahead_on_the_timeline_and_only_while_playing() {
    let (mut e, now) = follower_world(0.0);
    // Nothing handed to the player yet: nothing to restart.
    e.handle(now, Input::OutputRestored);
    assert!(starts(&drain(&mut e)).is_empty());
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 10.0, now)),
    );
    let t = now + 5_000.0;
    for (i, input) in [
        Input::OutputStalled { gap_ms: 80.0 },
        Input::OutputRestored,
        Input::OutputSwitched,
    ]
    .into_iter()
    .enumerate()
    {
        let t = t + i as f64 * 10_000.0;
        e.handle(t, input.clone());
        let actions = drain(&mut e);
        let st = starts(&actions);
        assert_eq!(st.len(), 1, "{input:?}: {actions:?}");
        let (id, position, at) = st[0].clone();
        assert_eq!(id, "t1");
        assert!(close(at, t + RESTART_LEAD_MS, 1e-6), "{input:?}: at {at}");
        assert!(
            close(position, 10.0 + (at - now) / 1000.0, 1e-6),
            "{input:?}: the group's position at the restart: {position}"
        );
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Notify(Notification::Resync { .. }))),
            "{input:?}: announced"
        );
        let stats = e.stats();
        assert_eq!(stats.output_restarts, i as u64 + 1);
        assert_eq!(stats.hard_resyncs, 0);
        assert_eq!(stats.starts, 1, "a restart is not a new timeline");
    }
    // Paused: nothing plays, nothing to restart.
    server(
        &mut e,
        t + 40_000.0,
        ServerEvent::MusicPause(relay(DJ, None, 50.0, t + 40_000.0)),
    );
    e.handle(t + 41_000.0, Input::OutputSwitched);
    assert!(starts(&drain(&mut e)).is_empty());
    assert_eq!(e.stats().output_restarts, 3);
}

#[test]
fn a_lost_output_is_not_restarted_until_it_is_back() {
    let (mut e, now) = follower_world(0.0);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 10.0, now)),
    );
    let lost_at = now + 5_000.0;
    e.handle(lost_at, Input::OutputLost);
    // Silence for far longer than the lost-start retry's cooldown: the clock queries go on,
    // nothing restarts.
    let during = run_until(&mut e, lost_at, lost_at + 4.0 * HARD_SYNC_COOLDOWN_MS);
    let queries = during
        .iter()
        .filter(|(_, a)| *a == Action::Audio(AudioCommand::QueryClock))
        .count();
    assert!(queries > 10, "the clock loop runs on: {queries}");
    for (t, a) in &during {
        if *a == Action::Audio(AudioCommand::QueryClock) {
            e.handle(
                *t,
                Input::AudioClock {
                    at: *t,
                    heard: None,
                },
            );
        }
    }
    let back = lost_at + 4.0 * HARD_SYNC_COOLDOWN_MS;
    let silent = drain(&mut e);
    assert!(starts(&silent).is_empty(), "{silent:?}");
    assert_eq!(e.stats().hard_resyncs, 0);
    e.handle(back, Input::OutputRestored);
    let st = starts(&drain(&mut e));
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(e.stats().output_restarts, 1);
}

fn playbacks(actions: &[(f64, Action)]) -> Vec<(bool, Option<String>, f64)> {
    actions
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Notify(Notification::Playback {
                playing,
                track,
                position,
                ..
            }) => Some((*playing, track.clone(), *position)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_engine_repeats_playback_while_playing_and_stops_when_paused() {
    let (mut e, now) = dj_world();
    command(&mut e, now, play());
    let start = now + CONTROL_LEAD_MS;
    let until = start + 3.5 * PLAYBACK_REPORT_PERIOD_MS;
    let repeated = playbacks(&run_until(&mut e, now, until));
    assert_eq!(repeated.len(), 3, "{repeated:?}");
    assert!(
        repeated
            .iter()
            .all(|(playing, track, _)| *playing && track.as_deref() == Some("t1"))
    );
    assert!(
        repeated.windows(2).all(|w| w[1].2 > w[0].2),
        "the position moves: {repeated:?}"
    );
    command(&mut e, until, Command::Pause);
    let after = playbacks(&run_until(&mut e, until, until + 5_000.0));
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn time_sync_probes_carry_the_engines_timeout() {
    let mut e = Engine::new(EngineConfig::new(ME, "me").with_session(SESSION));
    e.handle(
        0.0,
        Input::Connected {
            socket_id: "s".into(),
        },
    );
    let probes: Vec<f64> = drain(&mut e)
        .into_iter()
        .filter_map(|a| match a {
            Action::TimeSync { timeout_ms, .. } => Some(timeout_ms),
            _ => None,
        })
        .collect();
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|t| *t == TIME_SYNC_TIMEOUT_MS));
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

#[test]
fn the_engine_decides_the_tier_from_the_links_health() {
    let mut e = Engine::new(EngineConfig::new(ME, "me").with_session(SESSION));
    e.handle(0.0, Input::Tick);
    assert_eq!(
        tiers(&drain(&mut e)),
        vec![(Tier::Offline, "connecting".to_string())]
    );
    e.handle(
        1.0,
        Input::Connected {
            socket_id: "s".into(),
        },
    );
    assert_eq!(tiers(&drain(&mut e))[0].0, Tier::Socket);
    let now = sync_clock(&mut e, 1.0, 0.0, 20);
    assert_eq!(e.tier(), Tier::Socket);
    // The server stops answering: after enough missed probes, offline, with why.
    let silent = run_until(&mut e, now, now + 20_000.0);
    let went: Vec<(Tier, String)> = tiers(&silent.into_iter().map(|(_, a)| a).collect::<Vec<_>>());
    assert_eq!(went.len(), 1, "{went:?}");
    assert_eq!(went[0].0, Tier::Offline);
    assert!(went[0].1.contains("stopped answering"), "{went:?}");
    // It answers again: socket.
    let now = sync_clock(&mut e, now + 20_000.0, 0.0, 1);
    assert_eq!(e.tier(), Tier::Socket);
    e.handle(
        now,
        Input::Disconnected {
            reason: "cable".into(),
        },
    );
    assert_eq!(
        tiers(&drain(&mut e)),
        vec![(Tier::Offline, "cable".to_string())]
    );
}

#[test]
fn a_server_without_time_sync_does_not_make_the_link_offline() {
    let mut e = Engine::new(EngineConfig::new(ME, "me").with_session(SESSION));
    e.handle(
        0.0,
        Input::Connected {
            socket_id: "s".into(),
        },
    );
    let all = run_until(&mut e, 0.0, 60_000.0);
    assert_eq!(e.tier(), Tier::Socket, "{:?}", all.len());
}

#[test]
fn the_dj_stops_the_session_at_the_end_of_the_playlist_like_a_pause() {
    let (mut e, now) = world(DJ, 0.0, vec![track(1, 10.0)]);
    let first = emitted(&command(&mut e, now, play()), names::MUSIC_CONTROL)[0]["timestamp"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let later = run_until(&mut e, now, now + 20_000.0);
    let controls: Vec<(f64, serde_json::Value)> = later
        .iter()
        .filter_map(|(t, a)| match a {
            Action::Emit { event, data } if *event == names::MUSIC_CONTROL => {
                Some((*t, data.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(controls.len(), 1, "{controls:?}");
    let (sent_at, data) = &controls[0];
    assert_eq!(data["action"], "pause");
    assert_eq!(data["position"], 10.0);
    let ts = data["timestamp"].as_f64().unwrap_or(f64::NAN);
    assert!(
        close(ts, first + 10_000.0, 1e-6),
        "at the track's end: {ts}"
    );
    assert!(
        *sent_at >= ts - 1.0,
        "not before the end: sent {sent_at}, end {ts}"
    );
    assert!(
        later
            .iter()
            .any(|(_, a)| *a == Action::Audio(AudioCommand::Pause))
    );
    let pb = playbacks(&later);
    assert_eq!(pb.last().map(|p| (p.0, p.2)), Some((false, 10.0)), "{pb:?}");
    assert!(pb.iter().all(|p| p.2 <= 10.0), "{pb:?}");
    assert_eq!(e.group_position(now + 20_000.0), Some(("t1".into(), 10.0)));
}

#[test]
fn a_follower_stops_at_the_end_of_the_playlist_and_never_reports_past_it() {
    let (mut e, now) = world(ME, 0.0, vec![track(1, 10.0)]);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 10.0)), 8.0, now)),
    );
    // A web DJ sends no pause at the end: the follower stops by itself.
    let later = run_until(&mut e, now, now + 10_000.0);
    let pb = playbacks(&later);
    assert_eq!(pb.last().map(|p| (p.0, p.2)), Some((false, 10.0)), "{pb:?}");
    assert!(pb.iter().all(|p| p.2 <= 10.0), "{pb:?}");
    assert!(
        later
            .iter()
            .any(|(_, a)| *a == Action::Audio(AudioCommand::Pause))
    );
    assert_eq!(e.group_position(now + 60_000.0), Some(("t1".into(), 10.0)));
    assert!(
        e.due_position(now + 60_000.0).is_none(),
        "not playing any more"
    );
}

#[test]
fn a_follower_does_not_stop_at_the_end_of_a_track_that_has_a_next_one() {
    let (mut e, now) = world(ME, 0.0, vec![track(1, 10.0), track(2, 10.0)]);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 10.0)), 8.0, now)),
    );
    let later = run_until(&mut e, now, now + 5_000.0);
    assert!(
        playbacks(&later).iter().all(|p| p.0),
        "the DJ's track change comes"
    );
    assert_eq!(e.group_position(now + 5_000.0), Some(("t1".into(), 10.0)));
}

#[test]
fn a_rest_change_is_told_to_the_room_with_playlist_update() {
    let (mut e, now) = dj_world();
    let tracks = vec![track(2, 200.0), track(1, 200.0)];
    e.handle(now, Input::PlaylistLoaded(tracks.clone()));
    let actions = drain(&mut e);
    let updates = emitted(&actions, names::PLAYLIST_UPDATE);
    assert_eq!(updates.len(), 1, "{actions:?}");
    assert_eq!(updates[0]["sessionId"], SESSION);
    assert_eq!(updates[0]["playlist"][0]["id"], "t2");
    assert_eq!(updates[0]["playlist"][1]["id"], "t1");
    // A playlist from the room is not echoed back; a failed call tells nobody.
    let relayed = server(&mut e, now, playlist(tracks));
    assert!(emitted(&relayed, names::PLAYLIST_UPDATE).is_empty());
    e.handle(
        now,
        Input::RestFailed {
            call: RestCall::Reorder {
                session_id: SESSION.into(),
                order: Vec::new(),
            },
            message: "403".into(),
        },
    );
    assert!(emitted(&drain(&mut e), names::PLAYLIST_UPDATE).is_empty());
}

#[test]
fn a_server_that_tells_the_room_of_rest_changes_gets_no_playlist_update_after_one() {
    let (mut e, now) = dj_world();
    let ServerEvent::MusicSessionState(mut state) = session_state(
        Some(DJ),
        vec![track(1, 200.0), track(2, 200.0)],
        None,
        Some(now),
    ) else {
        unreachable!("session_state builds a session state")
    };
    state.rest_broadcasts = true;
    server(&mut e, now, ServerEvent::MusicSessionState(state));
    e.handle(
        now,
        Input::PlaylistLoaded(vec![track(2, 200.0), track(1, 200.0)]),
    );
    let actions = drain(&mut e);
    assert!(
        emitted(&actions, names::PLAYLIST_UPDATE).is_empty(),
        "the server told the room already: {actions:?}"
    );
    assert_eq!(
        e.playlist().tracks()[0].id,
        "t2",
        "this device has the answer"
    );
}

#[test]
fn a_rest_answer_while_the_socket_is_down_is_told_after_the_rejoin_as_the_server_has_it() {
    let (mut e, now) = dj_world();
    e.handle(
        now,
        Input::Disconnected {
            reason: "cut".into(),
        },
    );
    e.handle(
        now,
        Input::PlaylistLoaded(vec![track(2, 200.0), track(1, 200.0)]),
    );
    let away = drain(&mut e);
    assert!(
        emitted(&away, names::PLAYLIST_UPDATE).is_empty(),
        "nothing queued for a later connection: {away:?}"
    );
    e.handle(
        now + 10.0,
        Input::Connected {
            socket_id: socket_of(DJ),
        },
    );
    drain(&mut e);
    // Meanwhile another change took track 1 out: the room hears the server's list.
    let back = server(
        &mut e,
        now + 20.0,
        session_state(Some(DJ), vec![track(2, 200.0)], None, Some(now + 20.0)),
    );
    let updates = emitted(&back, names::PLAYLIST_UPDATE);
    assert_eq!(updates.len(), 1, "{back:?}");
    assert_eq!(updates[0]["playlist"].as_array().map(Vec::len), Some(1));
    assert_eq!(updates[0]["playlist"][0]["id"], "t2");
    // Owed once: the next session state tells nobody.
    let again = server(
        &mut e,
        now + 30.0,
        session_state(Some(DJ), vec![track(2, 200.0)], None, Some(now + 30.0)),
    );
    assert!(
        emitted(&again, names::PLAYLIST_UPDATE).is_empty(),
        "{again:?}"
    );
}

#[test]
fn a_track_this_device_cannot_play_leaves_it_silent_and_the_next_starts_on_time() {
    let mut video = track(1, 3.0);
    video.source = jamz_proto::TrackSource::Youtube;
    video.url = String::new();
    video.youtube_id = Some("dQw4w9WgXcQ".into());
    let mut preview = track(3, 30.0);
    preview.source = jamz_proto::TrackSource::Spotify;
    preview.url = String::new();
    preview.spotify_preview_url = Some("https://example.invalid/preview-3.mp3".into());
    let (mut e, now) = world(DJ, 500.0, vec![video, track(2, 3.0), preview]);
    let actions = command(
        &mut e,
        now,
        Command::Play {
            track: Some("t1".into()),
            position: Some(0.0),
        },
    );
    // The group is told (the web app plays the video); this device stays silent, says why.
    assert!(errors(&actions).is_empty(), "{:?}", errors(&actions));
    assert_eq!(emitted(&actions, names::MUSIC_CONTROL).len(), 1);
    assert!(starts(&actions).is_empty(), "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Audio(AudioCommand::Stop)))
    );
    let silent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::NotPlayable { track, reason }) => {
                Some((track.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(silent.len(), 1, "{actions:?}");
    assert_eq!(silent[0].0, "t1");
    assert!(silent[0].1.contains("YouTube"), "{}", silent[0].1);
    // Nothing is preloaded for a video; the next upload is.
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Audio(AudioCommand::Preload(t)) if t.id == "t2"))
    );

    // At the video's end the DJ moves on: the upload starts exactly then, and the Spotify
    // track after it plays from its preview.
    let video_end = now + CONTROL_LEAD_MS + 3_000.0;
    let later: Vec<Action> = run_until(&mut e, now, video_end + 4_000.0)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let s = starts(&later);
    assert!(s.len() >= 2, "{s:?}");
    assert_eq!(s[0].0, "t2");
    assert!(
        close(s[0].2, video_end, 1.0),
        "t2 at {} vs {video_end}",
        s[0].2
    );
    assert_eq!(s[1].0, "t3");
    assert!(close(s[1].2, video_end + 3_000.0, 1.0), "t3 at {}", s[1].2);
    let preview_url = later.iter().find_map(|a| match a {
        Action::Audio(AudioCommand::Start { track, .. }) if track.id == "t3" => {
            Some(track.url.clone())
        }
        _ => None,
    });
    assert_eq!(
        preview_url.as_deref(),
        Some("https://example.invalid/preview-3.mp3")
    );
}

#[test]
fn the_sync_meter_shows_the_measured_offset_in_playback_and_forgets_it_when_paused() {
    let (mut e, now) = follower_world(250.0);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 10.0, now)),
    );
    assert_eq!(e.sync_reading(now), None, "nothing measured yet");
    // The player answers every clock query 12 ms ahead of the group's timeline: within the
    // soft-sync limits, so nothing restarts and the meter reads what was measured.
    let mut t = now;
    let mut meter_in_playback = Vec::new();
    while t < now + 3_500.0 {
        let Some(next) = e.next_timeout() else {
            panic!("the engine stopped ticking")
        };
        t = next.max(t);
        e.handle(t, Input::Tick);
        for a in drain(&mut e) {
            match a {
                Action::Audio(AudioCommand::QueryClock) => {
                    if let Some((id, due)) = e.due_position(t) {
                        e.handle(
                            t,
                            Input::AudioClock {
                                at: t,
                                heard: Some(Heard {
                                    track: id,
                                    position: due + 0.012,
                                }),
                            },
                        );
                    }
                }
                Action::Notify(Notification::Playback {
                    playing: true,
                    sync_offset_ms,
                    ..
                }) => meter_in_playback.push(sync_offset_ms),
                _ => {}
            }
        }
    }
    assert_eq!(e.stats().hard_resyncs, 0);
    let reading = e.sync_reading(t).expect("a reading while playing");
    assert!(close(reading.offset_ms, 12.0, 1e-6), "{reading:?}");
    assert!(!reading.in_sync(), "12 ms is beyond the in-sync band");
    let shown: Vec<f64> = meter_in_playback.iter().flatten().copied().collect();
    assert!(
        shown.len() >= 2 && shown.iter().all(|o| close(*o, 12.0, 1e-6)),
        "the periodic playback carries the meter: {meter_in_playback:?}"
    );
    let after_pause = server(
        &mut e,
        t,
        ServerEvent::MusicPause(relay(DJ, Some(track(1, 200.0)), 13.0, t)),
    );
    let paused: Vec<Option<f64>> = after_pause
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Playback {
                playing: false,
                sync_offset_ms,
                ..
            }) => Some(*sync_offset_ms),
            _ => None,
        })
        .collect();
    assert_eq!(paused, vec![None], "{after_pause:?}");
    assert_eq!(
        e.sync_reading(t),
        None,
        "a paused device has no offset to show"
    );
}

/// Every `buffering` notification among `actions`: (track, buffering).
fn bufferings(actions: &[Action]) -> Vec<(String, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Buffering { track, buffering }) => {
                Some((track.clone(), *buffering))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_track_waiting_for_its_bytes_is_buffering_not_restarted_and_told_once() {
    let (mut e, now) = follower_world(0.0);
    server(
        &mut e,
        now,
        ServerEvent::MusicPlay(relay(DJ, Some(track(1, 200.0)), 10.0, now)),
    );
    // Another track's wait is not this device's state.
    e.handle(
        now + 10.0,
        Input::Buffering {
            track: "t2".into(),
            buffering: true,
        },
    );
    assert!(bufferings(&drain(&mut e)).is_empty());
    assert_eq!(e.buffering(), None);
    e.handle(
        now + 20.0,
        Input::Buffering {
            track: "t1".into(),
            buffering: true,
        },
    );
    e.handle(
        now + 30.0,
        Input::Buffering {
            track: "t1".into(),
            buffering: true,
        },
    );
    assert_eq!(bufferings(&drain(&mut e)), vec![("t1".into(), true)]);
    assert_eq!(e.buffering(), Some("t1"));
    // Silent for far longer than the lost-start retry's cooldown: no restart.
    let until = now + 4.0 * HARD_SYNC_COOLDOWN_MS;
    let mut t = now + 100.0;
    while t < until {
        e.handle(t, Input::AudioClock { at: t, heard: None });
        t += AUDIO_CLOCK_INTERVAL_MS;
    }
    assert!(starts(&drain(&mut e)).is_empty());
    assert_eq!(e.stats().hard_resyncs, 0);
    // The bytes are back: the player catching up is not a lost start; the wait is over
    // (told once) when the track is heard again.
    e.handle(
        until,
        Input::Buffering {
            track: "t1".into(),
            buffering: false,
        },
    );
    e.handle(
        until + 1.0,
        Input::Buffering {
            track: "t1".into(),
            buffering: false,
        },
    );
    e.handle(
        until + 200.0,
        Input::AudioClock {
            at: until + 200.0,
            heard: None,
        },
    );
    let actions = drain(&mut e);
    assert!(bufferings(&actions).is_empty(), "{actions:?}");
    assert!(starts(&actions).is_empty(), "{actions:?}");
    assert_eq!(e.buffering(), Some("t1"));
    let heard_at = until + 400.0;
    let due = 10.0 + (heard_at - now) / 1000.0;
    e.handle(
        heard_at,
        Input::AudioClock {
            at: heard_at,
            heard: Some(Heard {
                track: "t1".into(),
                position: due,
            }),
        },
    );
    assert_eq!(bufferings(&drain(&mut e)), vec![("t1".into(), false)]);
    assert_eq!(e.buffering(), None);
    // Bytes back but silent well after: the start was lost after all; restarted.
    let t2 = heard_at + 100.0;
    e.handle(
        t2,
        Input::Buffering {
            track: "t1".into(),
            buffering: true,
        },
    );
    e.handle(
        t2 + 100.0,
        Input::Buffering {
            track: "t1".into(),
            buffering: false,
        },
    );
    let late = t2 + 100.0 + HARD_SYNC_COOLDOWN_MS + 100.0;
    e.handle(
        late,
        Input::AudioClock {
            at: late,
            heard: None,
        },
    );
    let actions = drain(&mut e);
    assert_eq!(starts(&actions).len(), 1, "{actions:?}");
    assert_eq!(bufferings(&actions), vec![("t1".into(), true)]);
    // A wait for a track the timeline left is told as over.
    let actions = server(
        &mut e,
        late + 20.0,
        ServerEvent::MusicPlay(relay(DJ, Some(track(2, 200.0)), 0.0, late + 20.0)),
    );
    assert_eq!(
        bufferings(&actions),
        vec![("t1".into(), false)],
        "{actions:?}"
    );
    assert_eq!(e.buffering(), None);
}

#[test]
fn buffering_serializes_as_its_node_control_event() {
    let n = Notification::Buffering {
        track: "7".into(),
        buffering: true,
    };
    assert_eq!(
        serde_json::to_value(&n).unwrap(),
        serde_json::json!({"event":"buffering","track":"7","buffering":true})
    );
}

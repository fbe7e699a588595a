//! The relative calibration through the engine's contract (docs/protocol.md, "Relative
//! calibration (ext)"): a listener and a player, their `calibration-update`s carried as the
//! server relays them; and what either does with messages that are wrong, late, or not
//! its own: refused and counted, never applied, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::{CalibrationKind, CalibrationRelay, CalibrationUpdate, names};
use jamz_sync::{
    Action, CalibrationAction, CalibrationInput, Engine, HeardProbe, Input, Notification,
};

const PLAYER: i64 = 1;
const LISTENER: i64 = 2;
/// How much later than it reckons the player is heard (the car stereo).
const LATE_MS: f64 = 150.0;

fn calibration(e: &mut Engine, now: f64, i: CalibrationInput) -> Vec<Action> {
    e.handle(now, Input::Calibration(i));
    drain(e)
}

/// The `calibration-update`s emitted, as the server relays them (from `from`).
fn relayed(actions: &[Action], from: i64) -> Vec<ServerEvent> {
    emitted(actions, names::CALIBRATION_UPDATE)
        .into_iter()
        .map(|v| {
            ServerEvent::CalibrationUpdate(CalibrationRelay {
                user_id: from,
                update: serde_json::from_value(v.clone()).unwrap(),
            })
        })
        .collect()
}

fn update(ev: &ServerEvent) -> &CalibrationUpdate {
    match ev {
        ServerEvent::CalibrationUpdate(r) => &r.update,
        other => panic!("not a calibration-update: {other:?}"),
    }
}

fn calibration_actions(actions: &[Action]) -> Vec<CalibrationAction> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Calibration(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Both devices connected, clocks settled, the player's output a speaker with no offset.
fn pair() -> (Engine, Engine, f64) {
    let mut player = connected(PLAYER, 0.0);
    let mut listener = connected(LISTENER, 0.0);
    let now = sync_clock(&mut player, 0.0, 0.0, 12);
    let now = sync_clock(&mut listener, now, 0.0, 12).max(now);
    calibration(
        &mut player,
        now,
        CalibrationInput::Output {
            audible: true,
            offset_ms: 0.0,
            calibrating: false,
        },
    );
    (player, listener, now)
}

/// The listener asks; the player's answer and actions; the request as relayed.
fn ask(player: &mut Engine, listener: &mut Engine, now: f64) -> (ServerEvent, Vec<Action>) {
    let out = calibration(
        listener,
        now,
        CalibrationInput::Start {
            user: PLAYER,
            probes: 5,
        },
    );
    let request = relayed(&out, LISTENER).pop().expect("a probe-request");
    assert_eq!(update(&request).kind, CalibrationKind::ProbeRequest);
    let answered = server(player, now + 20.0, request.clone());
    (request, answered)
}

#[test]
fn a_run_sets_the_players_offset_and_tells_both() {
    let (mut player, mut listener, now) = pair();
    let (request, answered) = ask(&mut player, &mut listener, now);
    let plays = calibration_actions(&answered);
    let [CalibrationAction::PlayProbes { at: played, .. }] = plays.as_slice() else {
        panic!("the player plays the probes: {answered:?}")
    };
    let at = update(&request).at.clone().unwrap();
    assert_eq!(played.len(), 5);
    for (local, server) in played.iter().zip(&at) {
        assert!(close(*local, *server, 2.0), "{local} vs {server}");
    }
    let answer = relayed(&answered, PLAYER).pop().unwrap();
    assert_eq!(update(&answer).ok, Some(true));
    assert_eq!(update(&answer).offset_ms, Some(0.0));
    // The listener records, then hears each probe 150 ms late.
    let out = server(&mut listener, now + 40.0, answer);
    let recs = calibration_actions(&out);
    let [CalibrationAction::Record { run_id, at, until }] = recs.as_slice() else {
        panic!("the listener records: {out:?}")
    };
    assert!(*until >= at[4] + 900.0);
    let heard = at
        .iter()
        .map(|t| {
            Some(HeardProbe {
                at: t + LATE_MS,
                confidence: 0.9,
            })
        })
        .collect();
    let out = calibration(
        &mut listener,
        until + 500.0,
        CalibrationInput::Heard {
            run_id: run_id.clone(),
            heard,
            input_latency_ms: 0.0,
        },
    );
    let result = relayed(&out, LISTENER).pop().expect("an offset-result");
    assert_eq!(update(&result).kind, CalibrationKind::OffsetResult);
    assert!(close(update(&result).delay_ms.unwrap(), LATE_MS, 2.0));
    assert_eq!(update(&result).against_ms, Some(0.0));
    // The player applies it and says so.
    let out = server(&mut player, until + 600.0, result);
    let set = calibration_actions(&out);
    let [CalibrationAction::SetOffset(r)] = set.as_slice() else {
        panic!("the player sets its offset: {out:?}")
    };
    assert_eq!(r.user, LISTENER);
    assert!(close(r.latency_offset_ms, LATE_MS, 2.0));
    let applied = relayed(&out, PLAYER).pop().unwrap();
    assert_eq!(update(&applied).ok, Some(true));
    let out = server(&mut listener, until + 700.0, applied);
    let done: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::PeerCalibration(r)) => Some(*r),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1, "{out:?}");
    assert_eq!(done[0].user, PLAYER);
    assert!(close(done[0].latency_offset_ms, LATE_MS, 2.0));
    assert_eq!(player.stats().calibration_refused, 0);
    assert_eq!(listener.stats().calibration_refused, 0);
}

#[test]
fn a_player_that_cannot_play_refuses_in_words_and_the_listener_says_why() {
    let (mut player, mut listener, now) = pair();
    calibration(
        &mut player,
        now,
        CalibrationInput::Output {
            audible: false,
            offset_ms: 0.0,
            calibrating: false,
        },
    );
    let (_, answered) = ask(&mut player, &mut listener, now);
    assert!(calibration_actions(&answered).is_empty());
    let answer = relayed(&answered, PLAYER).pop().unwrap();
    assert_eq!(update(&answer).ok, Some(false));
    let out = server(&mut listener, now + 40.0, answer);
    let errs = errors(&out);
    assert!(
        errs.iter()
            .any(|e| e.contains("refused") && e.contains("no speaker")),
        "{errs:?}"
    );
    assert!(calibration_actions(&out).is_empty());
}

#[test]
fn no_answer_ends_the_run_with_an_error() {
    let (_, mut listener, now) = pair();
    calibration(
        &mut listener,
        now,
        CalibrationInput::Start {
            user: PLAYER,
            probes: 3,
        },
    );
    let mut t = now;
    let mut errs = Vec::new();
    while errs.is_empty() && t < now + 60_000.0 {
        t = listener.next_timeout().unwrap_or(t + 1000.0).max(t + 1.0);
        listener.handle(t, Input::Tick);
        errs = errors(&drain(&mut listener));
    }
    assert!(errs[0].contains("did not answer"), "{errs:?}");
}

#[test]
fn garbage_unknown_runs_strangers_and_stale_results_are_refused_and_counted() {
    let (mut player, mut listener, now) = pair();
    let (request, answered) = ask(&mut player, &mut listener, now);
    let run = update(&request).run_id.clone();
    assert!(!calibration_actions(&answered).is_empty());
    let result = |run: &str, target: i64| {
        let mut m = CalibrationUpdate::new(SESSION, CalibrationKind::OffsetResult, target, run);
        m.delay_ms = Some(150.0);
        m.spread_ms = Some(1.0);
        m.confidence = Some(0.9);
        m.against_ms = Some(0.0);
        m
    };
    let from = |user: i64, m: CalibrationUpdate| {
        ServerEvent::CalibrationUpdate(CalibrationRelay {
            user_id: user,
            update: m,
        })
    };
    let t = now + 100.0;
    let mut refused = 0;
    // Not for this device: nothing answered.
    let out = server(&mut player, t, from(LISTENER, result(&run, 99)));
    refused += 1;
    assert!(relayed(&out, PLAYER).is_empty() && calibration_actions(&out).is_empty());
    // An unknown run, and the right run from someone else: answered, not applied.
    for ev in [
        from(LISTENER, result("nope", PLAYER)),
        from(7, result(&run, PLAYER)),
    ] {
        let out = server(&mut player, t, ev);
        refused += 1;
        assert!(calibration_actions(&out).is_empty(), "{out:?}");
        let answer = relayed(&out, PLAYER).pop().unwrap();
        assert_eq!(update(&answer).ok, Some(false));
        assert!(
            update(&answer)
                .message
                .as_ref()
                .unwrap()
                .contains("no calibration run")
        );
    }
    assert_eq!(player.stats().calibration_refused, refused);
    // A request with no instants, or absurd ones: refused in words.
    let mut bad = update(&request).clone();
    bad.run_id = "other".into();
    for at in [None, Some(vec![f64::MAX, 1.0, -1.0]), Some(vec![])] {
        bad.at = at;
        let out = server(&mut player, t, from(LISTENER, bad.clone()));
        refused += 1;
        assert!(calibration_actions(&out).is_empty());
        assert_eq!(update(&relayed(&out, PLAYER)[0]).ok, Some(false));
    }
    // A result with a field missing, for the run in progress: refused, the run ended.
    let mut missing = result(&run, PLAYER);
    missing.against_ms = None;
    let out = server(&mut player, t, from(LISTENER, missing));
    refused += 1;
    assert!(calibration_actions(&out).is_empty());
    assert!(
        update(&relayed(&out, PLAYER)[0])
            .message
            .as_ref()
            .unwrap()
            .contains("lacks")
    );
    assert_eq!(player.stats().calibration_refused, refused);

    // A new run; the user changes the offset while the probes play: the result, measured
    // against the old offset, is refused and said so; the offset stays.
    // (A new listener: the first one still waits for its answer.)
    let mut listener = connected(LISTENER, t);
    let t = sync_clock(&mut listener, t, 0.0, 12);
    let (request, _) = ask(&mut player, &mut listener, t + 200.0);
    let run = update(&request).run_id.clone();
    calibration(
        &mut player,
        t + 300.0,
        CalibrationInput::Output {
            audible: true,
            offset_ms: 80.0,
            calibrating: false,
        },
    );
    let out = server(&mut player, t + 400.0, from(LISTENER, result(&run, PLAYER)));
    refused += 1;
    assert!(calibration_actions(&out).is_empty(), "{out:?}");
    let answer = relayed(&out, PLAYER).pop().unwrap();
    assert_eq!(update(&answer).ok, Some(false));
    assert!(
        update(&answer)
            .message
            .as_ref()
            .unwrap()
            .contains("changed")
    );
    assert!(errors(&out).iter().any(|e| e.contains("not applied")));
    assert_eq!(player.stats().calibration_refused, refused);
    // An answer to a run the listener never had: counted, never answered back.
    let stray = server(
        &mut listener,
        t + 500.0,
        from(
            PLAYER,
            CalibrationUpdate::new(SESSION, CalibrationKind::ProbeAnswer, LISTENER, "stray"),
        ),
    );
    assert!(relayed(&stray, LISTENER).is_empty());
    assert!(listener.stats().calibration_refused >= 1);
}

#[test]
fn the_listener_refuses_what_it_cannot_do() {
    let (_, mut listener, now) = pair();
    let out = calibration(
        &mut listener,
        now,
        CalibrationInput::Start {
            user: LISTENER,
            probes: 5,
        },
    );
    assert!(errors(&out)[0].contains("own"), "{out:?}");
    listener.handle(
        now,
        Input::Disconnected {
            reason: "test".into(),
        },
    );
    drain(&mut listener);
    let out = calibration(
        &mut listener,
        now,
        CalibrationInput::Start {
            user: PLAYER,
            probes: 5,
        },
    );
    assert!(errors(&out)[0].contains("not reachable"), "{out:?}");
    // A recording this device never asked for is ignored.
    let out = calibration(
        &mut listener,
        now,
        CalibrationInput::Heard {
            run_id: "x".into(),
            heard: vec![None],
            input_latency_ms: f64::NAN,
        },
    );
    assert!(out.iter().all(|a| !matches!(a, Action::Emit { .. })));
}

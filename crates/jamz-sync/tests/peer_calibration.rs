//! The relative calibration through the engine's contract (docs/protocol.md, "Relative
//! calibration (ext)"): a listener and a player, their `calibration-update`s carried as the
//! server relays them; and what either does with messages that are wrong, late, or not
//! its own: refused and counted, never applied, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mesh::{disconnect, mesh_out};
use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::{CalibrationKind, CalibrationRelay, CalibrationUpdate, names};
use jamz_proto::mesh::{MeshEnvelope, kinds};
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

/// The listener's recording asked for in `out`, ended: every probe heard `LATE_MS` late.
/// What the listener then does, and when its recording ended.
fn hears_late(listener: &mut Engine, out: &[Action]) -> (Vec<Action>, f64) {
    let recs = calibration_actions(out);
    let [CalibrationAction::Record { run_id, at, until }] = recs.as_slice() else {
        panic!("the listener records: {out:?}")
    };
    assert!(*until >= at[at.len() - 1] + 900.0);
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
        listener,
        until + 500.0,
        CalibrationInput::Heard {
            run_id: run_id.clone(),
            heard,
            input_latency_ms: 0.0,
        },
    );
    (out, *until)
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
    let (out, until) = hears_late(&mut listener, &out);
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
    assert!(
        errors(&out)[0].contains("neither the server nor a mesh link"),
        "{out:?}"
    );
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

/// The one `calibration-update` among `actions`, sent over the mesh straight to `to`:
/// never relayable (no `ttl`, no signature).
fn over_mesh(actions: &[Action], to: i64) -> Box<MeshEnvelope> {
    let mut sent: Vec<_> = mesh_out(actions)
        .into_iter()
        .filter(|(_, m)| m.kind == kinds::CALIBRATION_UPDATE)
        .collect();
    assert_eq!(
        sent.len(),
        1,
        "one calibration-update over the mesh: {actions:?}"
    );
    let (dest, m) = sent.remove(0);
    assert_eq!(dest, Some(to), "straight to its target's link");
    assert_eq!(
        (m.ttl, m.sig.as_deref()),
        (None, None),
        "never relayed: {m:?}"
    );
    Box::new(m)
}

fn from_link(e: &mut Engine, now: f64, link: i64, message: Box<MeshEnvelope>) -> Vec<Action> {
    e.handle(now, Input::Mesh { link, message });
    drain(e)
}

/// [`pair`] with the mesh link between them open, then the server gone for both.
fn pair_on_the_mesh() -> (Engine, Engine, f64) {
    let (mut player, mut listener, now) = pair();
    for (e, peer) in [(&mut player, LISTENER), (&mut listener, PLAYER)] {
        e.handle(
            now,
            Input::PeerUp {
                user: peer,
                rtt_ms: Some(1.0),
            },
        );
        drain(e);
        disconnect(e, now);
    }
    (player, listener, now)
}

#[test]
fn with_the_server_gone_a_run_goes_over_the_mesh_link_and_sets_the_offset() {
    let (mut player, mut listener, now) = pair_on_the_mesh();
    let out = calibration(
        &mut listener,
        now,
        CalibrationInput::Start {
            user: PLAYER,
            probes: 5,
        },
    );
    assert!(
        emitted(&out, names::CALIBRATION_UPDATE).is_empty(),
        "{out:?}"
    );
    let request = over_mesh(&out, PLAYER);
    let answered = from_link(&mut player, now + 20.0, LISTENER, request);
    let plays = calibration_actions(&answered);
    assert!(
        matches!(plays.as_slice(), [CalibrationAction::PlayProbes { at, .. }] if at.len() == 5),
        "the player plays the probes: {answered:?}"
    );
    let answer = over_mesh(&answered, LISTENER);
    let out = from_link(&mut listener, now + 40.0, PLAYER, answer);
    let (out, until) = hears_late(&mut listener, &out);
    let result = over_mesh(&out, PLAYER);
    let out = from_link(&mut player, until + 600.0, LISTENER, result);
    let set = calibration_actions(&out);
    let [CalibrationAction::SetOffset(r)] = set.as_slice() else {
        panic!("the player sets its offset: {out:?}")
    };
    assert_eq!(r.user, LISTENER);
    assert!(close(r.latency_offset_ms, LATE_MS, 2.0), "{r:?}");
    let applied = over_mesh(&out, LISTENER);
    let out = from_link(&mut listener, until + 700.0, PLAYER, applied);
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Notify(Notification::PeerCalibration(r))
                if r.user == PLAYER && close(r.latency_offset_ms, LATE_MS, 2.0)
        )),
        "{out:?}"
    );
    assert_eq!(player.stats().calibration_refused, 0);
    assert_eq!(listener.stats().calibration_refused, 0);
}

#[test]
fn over_the_mesh_only_the_peers_own_link_and_its_session_count() {
    const OTHER: i64 = 3;
    let (mut player, mut listener, now) = pair_on_the_mesh();
    player.handle(
        now,
        Input::PeerUp {
            user: OTHER,
            rtt_ms: Some(1.0),
        },
    );
    drain(&mut player);
    let out = calibration(
        &mut listener,
        now,
        CalibrationInput::Start {
            user: PLAYER,
            probes: 5,
        },
    );
    let request = over_mesh(&out, PLAYER);
    // The listener's request carried by another peer: not taken (a calibration moves this
    // device's sound for a user that must be known).
    let out = from_link(&mut player, now + 10.0, OTHER, request.clone());
    assert!(calibration_actions(&out).is_empty(), "{out:?}");
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Notify(Notification::MeshRefused { reason, .. }) if reason == "not-direct"
        )),
        "refused and reported: {out:?}"
    );
    // On its own link but for another session: refused and counted.
    let mut other_session = request.clone();
    other_session.sequence += 100;
    other_session.data["sessionId"] = serde_json::json!("another-session");
    let out = from_link(&mut player, now + 20.0, LISTENER, other_session);
    assert!(calibration_actions(&out).is_empty(), "{out:?}");
    assert_eq!(player.stats().calibration_refused, 1);
    // The genuine one is still taken.
    let out = from_link(&mut player, now + 30.0, LISTENER, request);
    assert_eq!(calibration_actions(&out).len(), 1, "{out:?}");
    // With no link to it and no server, the listener says so in words and sends nothing.
    let out = calibration(
        &mut listener,
        now + 40.0,
        CalibrationInput::Start {
            user: OTHER,
            probes: 5,
        },
    );
    assert!(mesh_out(&out).is_empty(), "{out:?}");
    assert!(!errors(&out).is_empty(), "{out:?}");
}

#[test]
fn the_gate_takes_a_calibration_only_from_a_vouched_links_own_peer() {
    use jamz_sync::trust::{Admitted, Gate, Rejection};
    let gate = Gate::new("s1");
    let m = |from: i64| MeshEnvelope {
        kind: kinds::CALIBRATION_UPDATE.into(),
        action: None,
        data: serde_json::json!({}),
        sequence: 1,
        from,
        epoch: None,
        sig: None,
        ttl: None,
    };
    assert_eq!(gate.judge_on(0.0, 2, true, &m(2)), Ok(Admitted::Member));
    assert!(matches!(
        gate.judge_on(0.0, 3, true, &m(2)),
        Err(Rejection::NotDirect { .. })
    ));
    // A link set up by signals that neither the server nor the DJ vouched for proves
    // nothing of who is on it.
    assert!(matches!(
        gate.judge_on(0.0, 2, false, &m(2)),
        Err(Rejection::NotVouched { .. })
    ));
}

#[test]
fn a_listener_that_gave_up_a_run_may_ask_again_once_its_probes_have_played() {
    const THIRD: i64 = 3;
    let (mut player, mut listener, now) = pair();
    let (request, answered) = ask(&mut player, &mut listener, now);
    let answer = relayed(&answered, PLAYER).pop().unwrap();
    let out = server(&mut listener, now + 40.0, answer);
    let recs = calibration_actions(&out);
    let [CalibrationAction::Record { run_id, at, .. }] = recs.as_slice() else {
        panic!("the listener records: {out:?}")
    };
    let (run_id, last) = (run_id.clone(), at[at.len() - 1]);
    // The recording held nothing that agrees: the listener's run ends there.
    let out = calibration(
        &mut listener,
        last + 1_500.0,
        CalibrationInput::Failed {
            run_id,
            message: "only 2 of 5 probes agree".into(),
        },
    );
    assert!(!errors(&out).is_empty());
    // Another member meanwhile: refused, the player's run is still in hand.
    let mut stranger = update(&request).clone();
    stranger.run_id = "3-1-0".into();
    stranger.at = Some(
        update(&request)
            .at
            .clone()
            .unwrap()
            .iter()
            .map(|t| t + 9_000.0)
            .collect(),
    );
    let out = server(
        &mut player,
        last + 1_600.0,
        ServerEvent::CalibrationUpdate(CalibrationRelay {
            user_id: THIRD,
            update: stranger,
        }),
    );
    assert!(calibration_actions(&out).is_empty(), "{out:?}");
    // The same listener asks again: its old run is dropped, the new probes play.
    let (_, answered) = ask(&mut player, &mut listener, last + 1_700.0);
    let plays = calibration_actions(&answered);
    assert!(
        matches!(plays.as_slice(), [CalibrationAction::PlayProbes { .. }]),
        "{answered:?}"
    );
    assert_eq!(update(&relayed(&answered, PLAYER)[0]).ok, Some(true));
}

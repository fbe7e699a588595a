//! The engine's location part through its public contract: the sharing rule and the
//! privacy switch decide what is sent, fixes the socket could not carry go to REST when the
//! link is back, and the others' positions come out with `together`, the regroup point's
//! ETAs and the falling-behind alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use jamz_proto::ServerEvent;
use jamz_proto::events::{ConvoyKind, ConvoyRelay, LocationRelay, names};
use jamz_sync::convoy::{Position, TOGETHER_WINDOW_MS};
use jamz_sync::location::{LocationEvent, LocationInput};
use jamz_sync::{Action, Engine, Input, Notification};

const ME: i64 = 2;
const DJ: i64 = 1;
const R: f64 = 6_371_008.8;

/// `m` metres north of the start.
fn north(m: f64, speed: f64) -> Position {
    Position::moving(48.137 + (m / R).to_degrees(), 11.575, speed, 0.0)
}

fn loc(e: &mut Engine, now: f64, i: LocationInput) -> Vec<Action> {
    e.handle(now, Input::Location(i));
    drain(e)
}

fn share(e: &mut Engine, now: f64, for_ms: Option<f64>) -> Vec<Action> {
    loc(
        e,
        now,
        LocationInput::Share {
            enabled: true,
            for_ms,
        },
    )
}

fn events(actions: &[Action]) -> Vec<LocationEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Location(ev)) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

fn reports(actions: &[Action]) -> Vec<f64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ReportLocations { reports } => Some(reports.iter().map(|r| r.latitude)),
            _ => None,
        })
        .flatten()
        .collect()
}

fn relay(user: i64, pos: Position) -> ServerEvent {
    ServerEvent::LocationUpdate(LocationRelay {
        user_id: user,
        session_id: Some(SESSION.into()),
        latitude: pos.latitude,
        longitude: pos.longitude,
        accuracy: None,
        speed: pos.speed,
        heading: pos.heading,
        timestamp: 0.0,
    })
}

fn convoy(user: i64, kind: ConvoyKind, at: Option<(f64, f64)>) -> ServerEvent {
    ServerEvent::ConvoyUpdate(ConvoyRelay {
        user_id: user,
        session_id: Some(SESSION.into()),
        kind,
        latitude: at.map(|p| p.0),
        longitude: at.map(|p| p.1),
    })
}

#[test]
fn nothing_is_sent_until_sharing_is_on_and_then_by_the_rule() {
    let mut e = connected(ME, 0.0);
    // Off: this car's fix is shown here only.
    let a = loc(&mut e, 1_000.0, LocationInput::Fix(north(0.0, 15.0)));
    assert!(emitted(&a, names::LOCATION_UPDATE).is_empty());
    assert!(matches!(
        events(&a)[..],
        [LocationEvent::Location { user_id: ME, .. }]
    ));

    let a = share(&mut e, 2_000.0, None);
    assert!(matches!(
        events(&a)[..],
        [LocationEvent::Sharing {
            enabled: true,
            until: None,
            ..
        }]
    ));
    // On: the first fix at once, then every 50 m or 5 s, whichever first.
    let a = loc(&mut e, 2_500.0, LocationInput::Fix(north(10.0, 15.0)));
    let sent = emitted(&a, names::LOCATION_UPDATE);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["sessionId"], SESSION);
    let a = loc(&mut e, 3_500.0, LocationInput::Fix(north(25.0, 15.0)));
    assert!(emitted(&a, names::LOCATION_UPDATE).is_empty(), "15 m, 1 s");
    assert!(
        events(&a).is_empty(),
        "held back fixes are not shown either"
    );
    let a = loc(&mut e, 6_000.0, LocationInput::Fix(north(62.0, 15.0)));
    assert_eq!(emitted(&a, names::LOCATION_UPDATE).len(), 1, "52 m");
    // Stopped: sent once where it stands, then not while stationary.
    let a = loc(&mut e, 7_000.0, LocationInput::Fix(north(63.0, 0.0)));
    assert_eq!(emitted(&a, names::LOCATION_UPDATE).len(), 1, "stopped");
    for i in 1..10 {
        let a = loc(
            &mut e,
            7_000.0 + 5_000.0 * f64::from(i),
            LocationInput::Fix(north(63.0, 0.0)),
        );
        assert!(emitted(&a, names::LOCATION_UPDATE).is_empty(), "stationary");
    }
}

#[test]
fn turning_sharing_off_or_running_out_tells_the_others_at_once() {
    let mut e = connected(ME, 0.0);
    share(&mut e, 0.0, Some(30_000.0));
    loc(&mut e, 1_000.0, LocationInput::Fix(north(0.0, 15.0)));
    // Ticks until the sharing time is over: `location-off` goes out, then nothing more.
    let mut now = 1_000.0;
    let mut off = Vec::new();
    while now < 30_000.0 {
        now = e.next_timeout().unwrap().max(now);
        e.handle(now, Input::Tick);
        off.extend(drain(&mut e));
    }
    let sent = emitted(&off, names::CONVOY_UPDATE);
    assert_eq!(sent.len(), 1, "{off:?}");
    assert_eq!(sent[0]["kind"], "location-off");
    assert!(events(&off).iter().any(|ev| matches!(
        ev,
        LocationEvent::Sharing { enabled: false, reason, .. } if reason.contains("ran out")
    )));
    let a = loc(
        &mut e,
        now + 10_000.0,
        LocationInput::Fix(north(500.0, 15.0)),
    );
    assert!(emitted(&a, names::LOCATION_UPDATE).is_empty());

    // Turned on and off by hand.
    share(&mut e, now + 11_000.0, None);
    let a = loc(
        &mut e,
        now + 12_000.0,
        LocationInput::Fix(north(600.0, 15.0)),
    );
    assert_eq!(emitted(&a, names::LOCATION_UPDATE).len(), 1);
    let a = loc(
        &mut e,
        now + 13_000.0,
        LocationInput::Share {
            enabled: false,
            for_ms: None,
        },
    );
    assert_eq!(emitted(&a, names::CONVOY_UPDATE)[0]["kind"], "location-off");
    let bad = share(&mut e, now + 14_000.0, Some(-1.0));
    assert_eq!(errors(&bad).len(), 1);
}

#[test]
fn fixes_the_socket_could_not_carry_go_to_rest_when_it_is_back() {
    let mut e = connected(ME, 0.0);
    share(&mut e, 0.0, None);
    // Sent while connected and confirmed by a later probe's answer.
    let a = loc(&mut e, 1_000.0, LocationInput::Fix(north(0.0, 15.0)));
    assert_eq!(emitted(&a, names::LOCATION_UPDATE).len(), 1);
    e.handle(
        1_500.0,
        Input::TimeSyncReply {
            t0: 1_200.0,
            t1: 1_201.0,
            t2: 1_201.0,
            t3: 1_500.0,
        },
    );
    drain(&mut e);
    // Sent, never confirmed: the link died under it.
    let a = loc(&mut e, 5_000.0, LocationInput::Fix(north(60.0, 15.0)));
    assert_eq!(emitted(&a, names::LOCATION_UPDATE).len(), 1);
    e.handle(
        5_500.0,
        Input::Disconnected {
            reason: "gone".into(),
        },
    );
    drain(&mut e);
    // Offline: kept, not emitted.
    let mut now = 5_500.0;
    for i in 2..8 {
        now += 4_000.0;
        let a = loc(
            &mut e,
            now,
            LocationInput::Fix(north(60.0 * f64::from(i), 15.0)),
        );
        assert!(emitted(&a, names::LOCATION_UPDATE).is_empty());
    }
    e.handle(
        now + 1_000.0,
        Input::Connected {
            socket_id: "again".into(),
        },
    );
    let a = drain(&mut e);
    let join = a.iter().position(
        |x| matches!(x, Action::Emit { event, .. } if *event == names::JOIN_AUDIO_SESSION),
    );
    let newest = a
        .iter()
        .position(|x| matches!(x, Action::Emit { event, .. } if *event == names::LOCATION_UPDATE));
    assert!(join < newest, "the join goes first");
    // The unconfirmed one and every offline one but the newest, in order, by REST; the
    // newest over the socket.
    let lat = |m: f64| north(m, 0.0).latitude;
    let want: Vec<f64> = [60.0, 120.0, 180.0, 240.0, 300.0, 360.0]
        .into_iter()
        .map(lat)
        .collect();
    assert_eq!(reports(&a), want);
    let newest = emitted(&a, names::LOCATION_UPDATE);
    assert_eq!(newest.len(), 1);
    assert!((newest[0]["latitude"].as_f64().unwrap() - lat(420.0)).abs() < 1e-9);

    // A batch the server did not take waits for the next connection.
    let failed = a
        .into_iter()
        .find_map(|x| match x {
            Action::ReportLocations { reports } => Some(reports),
            _ => None,
        })
        .unwrap();
    loc(
        &mut e,
        now + 2_000.0,
        LocationInput::ReportFailed { reports: failed },
    );
    e.handle(
        now + 3_000.0,
        Input::Disconnected {
            reason: "again".into(),
        },
    );
    e.handle(
        now + 4_000.0,
        Input::Connected {
            socket_id: "third".into(),
        },
    );
    let a = drain(&mut e);
    // The failed batch and the newest (unconfirmed again), oldest first.
    let mut again = reports(&a);
    again.extend(
        emitted(&a, names::LOCATION_UPDATE)
            .iter()
            .map(|v| v["latitude"].as_f64().unwrap()),
    );
    assert_eq!(again.len(), 7, "{again:?}");
    assert!(again.windows(2).all(|w| w[0] < w[1]), "in order: {again:?}");
}

#[test]
fn others_positions_carry_together_and_a_leaving_car_splits_off() {
    let mut e = connected(ME, 0.0);
    // Cars 5 and 6 drive north 100 m apart at 20 m/s; 7 drives east from the start.
    let mut now = 0.0;
    let mut seen_together = false;
    for s in 0..60 {
        now = f64::from(s) * 1_000.0;
        let d = 20.0 * f64::from(s);
        let mut a = server(&mut e, now, relay(5, north(d + 100.0, 20.0)));
        a.extend(server(&mut e, now, relay(6, north(d, 20.0))));
        a.extend(server(
            &mut e,
            now,
            relay(
                7,
                Position::moving(48.137, 11.575 + (d / (R * 0.667)).to_degrees(), 20.0, 90.0),
            ),
        ));
        for ev in events(&a) {
            if let LocationEvent::Location {
                user_id: 6,
                together,
                ..
            } = ev
            {
                if together == vec![5] {
                    seen_together = true;
                    assert!(now >= TOGETHER_WINDOW_MS, "together only after the window");
                }
                assert!(!together.contains(&7), "7 goes another way");
            }
        }
    }
    assert!(seen_together, "5 and 6 never together by {now} ms");
    // 6 stops sharing: its marker goes.
    let a = server(&mut e, now, convoy(6, ConvoyKind::LocationOff, None));
    assert!(events(&a).contains(&LocationEvent::LocationOff { user_id: 6 }));
}

#[test]
fn the_regroup_point_reports_etas_and_only_the_dj_or_setter_clears_it() {
    let mut e = connected(ME, 0.0);
    server(&mut e, 0.0, controller_is(DJ));
    let point = north(3_000.0, 0.0);
    server(
        &mut e,
        0.0,
        convoy(
            5,
            ConvoyKind::RegroupSet,
            Some((point.latitude, point.longitude)),
        ),
    );
    let mut etas = Vec::new();
    let mut now = 0.0;
    for s in 0..40 {
        now = f64::from(s) * 1_000.0;
        let a = server(&mut e, now, relay(5, north(20.0 * f64::from(s), 20.0)));
        let ticks = actions_until(&mut e, now, now + 999.0);
        for ev in events(&a).into_iter().chain(events(&ticks)) {
            if let LocationEvent::Regroup {
                set_by, etas: list, ..
            } = ev
            {
                assert_eq!(set_by, 5);
                if let Some(eta) = list.iter().find(|x| x.user_id == 5).and_then(|x| x.eta_s) {
                    etas.push(eta);
                }
            }
        }
    }
    assert!(etas.len() >= 5, "{etas:?}");
    assert!(etas.windows(2).all(|w| w[1] <= w[0]), "ETAs fall: {etas:?}");
    // Car 7 (not the DJ, not the setter) cannot clear it; the DJ can.
    let a = server(&mut e, now, convoy(7, ConvoyKind::RegroupClear, None));
    assert!(
        !events(&a)
            .iter()
            .any(|x| matches!(x, LocationEvent::RegroupCleared { .. }))
    );
    let a = server(&mut e, now, convoy(DJ, ConvoyKind::RegroupClear, None));
    assert!(events(&a).contains(&LocationEvent::RegroupCleared { user_id: DJ }));
    // This user (not the DJ, not the setter) may not clear one set by someone else.
    server(
        &mut e,
        now,
        convoy(
            5,
            ConvoyKind::RegroupSet,
            Some((point.latitude, point.longitude)),
        ),
    );
    let a = loc(&mut e, now, LocationInput::ClearRegroup);
    assert_eq!(errors(&a).len(), 1, "{a:?}");
    // Anyone may set one: sent to the others.
    let a = loc(
        &mut e,
        now,
        LocationInput::SetRegroup {
            latitude: 48.2,
            longitude: 11.6,
        },
    );
    assert_eq!(emitted(&a, names::CONVOY_UPDATE)[0]["kind"], "regroup-set");
}

#[test]
fn a_car_that_stops_falls_behind_the_group() {
    let mut e = connected(ME, 0.0);
    let mut behind = None;
    let mut stop_at = 0.0;
    // Cars 5, 6, 7 drive north at 25 m/s; 7 stops at 60 s.
    for s in 0..240 {
        let now = f64::from(s) * 1_000.0;
        let d = 25.0 * f64::from(s);
        let d7 = if s < 60 { d } else { 25.0 * 60.0 };
        let v7 = if s < 60 { 25.0 } else { 0.0 };
        if s == 60 {
            stop_at = now;
        }
        let mut a = server(&mut e, now, relay(5, north(d + 200.0, 25.0)));
        a.extend(server(&mut e, now, relay(6, north(d + 100.0, 25.0))));
        a.extend(server(&mut e, now, relay(7, north(d7, v7))));
        a.extend(actions_until(&mut e, now, now + 999.0));
        for ev in events(&a) {
            if let LocationEvent::FallingBehind { user_id, behind_m } = ev {
                assert_eq!(user_id, 7);
                assert!(behind_m > 2_000.0);
                behind.get_or_insert(now);
            }
        }
    }
    let at = behind.expect("no falling-behind alert");
    eprintln!("7 stopped at {stop_at} ms, alert at {at} ms");
    assert!(at > stop_at);
}

/// The actions of the engine's timers up to `until`.
fn actions_until(e: &mut Engine, now: f64, until: f64) -> Vec<Action> {
    run_until(e, now, until)
        .into_iter()
        .map(|(_, a)| a)
        .collect()
}

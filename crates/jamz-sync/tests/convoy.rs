//! Convoy decisions on synthetic drives in virtual time: the sharing rule, who travels
//! together, gaps and ETAs, the regroup point, the falling-behind alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_sync::convoy::*;
use proptest::prelude::*;

const R: f64 = 6_371_008.8;
const START: (f64, f64) = (48.137, 11.575);

/// A car driving legs of (from second, speed m/s, heading degrees), one fix a second,
/// sharing by the product's rule.
struct Car {
    id: i64,
    lat: f64,
    lon: f64,
    speed: f64,
    heading: f64,
    legs: Vec<(u64, f64, f64)>,
    share: SharePolicy,
}

impl Car {
    /// A car `behind_m` behind the start on a northbound road.
    fn new(id: i64, behind_m: f64, legs: &[(u64, f64, f64)]) -> Car {
        Car {
            id,
            lat: START.0 - (behind_m / R).to_degrees(),
            lon: START.1,
            speed: 0.0,
            heading: 0.0,
            legs: legs.to_vec(),
            share: SharePolicy::default(),
        }
    }

    fn step(&mut self, t: u64) {
        if let Some(&(_, v, h)) = self.legs.iter().rev().find(|(from, _, _)| *from <= t) {
            self.speed = v;
            self.heading = h;
        }
        let d = self.speed;
        self.lat += (d * self.heading.to_radians().cos() / R).to_degrees();
        self.lon +=
            (d * self.heading.to_radians().sin() / (R * self.lat.to_radians().cos())).to_degrees();
    }

    fn pos(&self) -> Position {
        Position::moving(self.lat, self.lon, self.speed, self.heading)
    }
}

/// Drives `cars` from second 0 to `until`, each shared fix reaching the convoy; calls
/// `each` after every second's tick with the events that came out.
fn run(
    convoy: &mut Convoy,
    cars: &mut [Car],
    until: u64,
    mut each: impl FnMut(u64, &Convoy, Vec<ConvoyEvent>),
) {
    for t in 0..=until {
        let now = t as f64 * 1000.0;
        for car in cars.iter_mut() {
            car.step(t);
            let pos = car.pos();
            if car.share.offer(now, &pos).is_some() {
                convoy.update(now, car.id, pos);
            }
        }
        convoy.tick(now);
        let mut events = Vec::new();
        while let Some(e) = convoy.poll() {
            events.push(e);
        }
        each(t, convoy, events);
    }
}

// ------------------------------------------------------------------ sharing

fn shares(policy: &mut SharePolicy, fixes: &[(f64, Position)]) -> Vec<(u64, ShareReason)> {
    fixes
        .iter()
        .filter_map(|(t, p)| policy.offer(*t, p).map(|r| ((*t / 1000.0) as u64, r)))
        .collect()
}

fn straight(speed: f64, seconds: u64) -> Vec<(f64, Position)> {
    (0..seconds)
        .map(|s| {
            let d = speed * s as f64;
            let lat = START.0 + (d / R).to_degrees();
            (
                s as f64 * 1000.0,
                Position::moving(lat, START.1, speed, 0.0),
            )
        })
        .collect()
}

#[test]
fn fast_cars_share_every_50_m_slow_ones_every_5_s() {
    let fast = shares(&mut SharePolicy::default(), &straight(20.0, 12));
    // 20 m/s: 60 m after 3 s comes before the 5 s interval.
    assert_eq!(
        fast,
        [
            (0, ShareReason::First),
            (3, ShareReason::Distance),
            (6, ShareReason::Distance),
            (9, ShareReason::Distance),
        ]
    );
    let slow = shares(&mut SharePolicy::default(), &straight(4.0, 16));
    // 4 m/s: 5 s (20 m) comes before 50 m.
    assert_eq!(
        slow,
        [
            (0, ShareReason::First),
            (5, ShareReason::Interval),
            (10, ShareReason::Interval),
            (15, ShareReason::Interval),
        ]
    );
}

#[test]
fn a_stopped_car_shares_once_then_keeps_quiet() {
    let mut fixes = straight(10.0, 3);
    let stop = Position::moving(fixes[2].1.latitude, START.1, 0.0, 0.0);
    for s in 3..200 {
        fixes.push((s as f64 * 1000.0, stop));
    }
    let got = shares(&mut SharePolicy::default(), &fixes);
    assert_eq!(
        got,
        [
            (0, ShareReason::First),
            (3, ShareReason::Stopped),
            (63, ShareReason::Keepalive),
            (123, ShareReason::Keepalive),
            (183, ShareReason::Keepalive),
        ]
    );
    let quiet = ShareConfig {
        stationary_keepalive_ms: None,
        ..ShareConfig::default()
    };
    assert_eq!(shares(&mut SharePolicy::new(quiet), &fixes).len(), 2);
    let chatty = ShareConfig {
        share_while_stationary: true,
        ..ShareConfig::default()
    };
    let all = shares(&mut SharePolicy::new(chatty), &fixes);
    assert_eq!(all.len(), 2 + (199 - 3) / 5);
}

#[test]
fn without_a_speed_stationary_is_judged_from_the_track() {
    let parked: Vec<(f64, Position)> = (0..30)
        .map(|s| (s as f64 * 1000.0, Position::new(START.0, START.1)))
        .collect();
    let got = shares(&mut SharePolicy::default(), &parked);
    assert_eq!(got, [(0, ShareReason::First), (1, ShareReason::Stopped)]);
    let mut policy = SharePolicy::default();
    policy.offer(0.0, &Position::new(START.0, START.1));
    assert_eq!(
        policy.offer(0.0, &Position::new(f64::NAN, START.1)),
        None,
        "an invalid fix is never shared"
    );
    policy.reset();
    assert_eq!(
        policy.offer(1000.0, &Position::new(START.0, START.1)),
        Some(ShareReason::First)
    );
}

// ------------------------------------------------------------------ together

#[test]
fn together_changes_when_a_car_takes_another_road() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let turn_at = 120;
    let mut cars = vec![
        Car::new(1, 0.0, &[(0, 15.0, 0.0)]),
        Car::new(2, 120.0, &[(0, 15.0, 0.0)]),
        Car::new(3, 240.0, &[(0, 15.0, 0.0), (turn_at, 15.0, 90.0)]),
    ];
    let mut changes = Vec::new();
    run(&mut convoy, &mut cars, 300, |t, c, events| {
        for e in events {
            if let ConvoyEvent::Together { groups } = e {
                changes.push((t, groups));
            }
        }
        if (60..turn_at).contains(&t) {
            assert_eq!(c.together_with(3), [1, 2], "t={t}");
        }
    });
    assert_eq!(changes.len(), 2, "{changes:?}");
    let window = (TOGETHER_WINDOW_MS / 1000.0) as u64;
    // Together once the pair rule held for the window.
    assert_eq!(changes[0].1, [vec![1, 2, 3]]);
    assert!((window..window + 5).contains(&changes[0].0), "{changes:?}");
    // Apart within the window plus the time the turn takes to show in smoothed headings.
    let (t, groups) = &changes[1];
    assert_eq!(groups, &[vec![1, 2]]);
    let smoothing = (SPEED_SMOOTHING_MS / 1000.0) as u64;
    assert!(
        (turn_at + window..=turn_at + window + smoothing).contains(t),
        "apart at {t}, turned at {turn_at}"
    );
}

#[test]
fn crossing_or_oncoming_cars_are_never_together() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let mut cars = vec![
        Car::new(1, 0.0, &[(0, 15.0, 0.0)]),
        // Southbound on the same road, starting 1.5 km ahead: they meet at 50 s.
        Car::new(2, -1500.0, &[(0, 15.0, 180.0)]),
    ];
    // Eastbound, crossing the road 750 m north at the same moment.
    cars.push(Car {
        lat: START.0 + (750.0 / R).to_degrees(),
        lon: START.1 - (750.0 / (R * START.0.to_radians().cos())).to_degrees(),
        ..Car::new(3, 0.0, &[(0, 15.0, 90.0)])
    });
    let mut closest: f64 = f64::MAX;
    run(&mut convoy, &mut cars, 150, |t, c, events| {
        assert!(c.groups().is_empty(), "t={t}: {:?}", c.groups());
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ConvoyEvent::Together { .. }))
        );
        if let Some(g) = c.gap(t as f64 * 1000.0, 1, 2) {
            closest = closest.min(g.distance_m);
        }
    });
    assert!(closest < 50.0, "the cars did meet: {closest} m");
}

#[test]
fn parked_side_by_side_is_together_and_stale_cars_drop_out() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let window = TOGETHER_WINDOW_MS;
    for t in (0..=40).map(|s| s as f64 * 1000.0) {
        convoy.update(t, 1, Position::moving(START.0, START.1, 0.0, 0.0));
        convoy.update(t, 2, Position::moving(START.0 + 1e-4, START.1, 0.0, 0.0));
        convoy.tick(t);
    }
    assert_eq!(convoy.groups(), [vec![1, 2]]);
    // Car 2's sharing stops: after the stale limit it is out at once, with no window.
    let quiet_from = 40_000.0;
    let mut t = quiet_from;
    while convoy.groups() == [vec![1, 2]] {
        t += 1000.0;
        convoy.update(t, 1, Position::moving(START.0, START.1, 0.0, 0.0));
        convoy.tick(t);
        assert!(t < quiet_from + MEMBER_STALE_MS + window + 2000.0);
    }
    assert!(t > quiet_from + MEMBER_STALE_MS, "{t}");
    // Location off: out at the next tick.
    convoy.update(t, 2, Position::moving(START.0, START.1, 0.0, 0.0));
    convoy.remove(2);
    convoy.tick(t + 1.0);
    assert!(convoy.together_with(1).is_empty());
    assert!(convoy.position(t, 2).is_none());
}

// ------------------------------------------------------------------ gaps, regroup

#[test]
fn gap_and_eta_between_cars() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let mut cars = vec![
        Car::new(1, 1500.0, &[(0, 20.0, 0.0)]),
        Car::new(2, 0.0, &[(0, 20.0, 0.0)]),
    ];
    run(&mut convoy, &mut cars, 60, |_, _, _| {});
    let g = convoy.gap(60_000.0, 1, 2).unwrap();
    assert!((g.distance_m - 1500.0).abs() < 5.0, "{g:?}");
    let eta = g.eta_s.unwrap();
    assert!((eta - 1500.0 * ROAD_FACTOR / 20.0).abs() < 1.0, "{eta}");
    assert!(convoy.gap(60_000.0, 1, 99).is_none());
}

#[test]
fn regroup_etas_fall_as_cars_approach_and_only_the_dj_or_setter_clears() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let point_north = 3000.0;
    let point = (START.0 + (point_north / R).to_degrees(), START.1);
    let mut cars = vec![
        // Car 1 stops at the point; car 2 is on its way.
        Car::new(1, 0.0, &[(0, 20.0, 0.0), (150, 0.0, 0.0)]),
        Car::new(2, 500.0, &[(0, 15.0, 0.0)]),
    ];
    assert_eq!(
        convoy.clear_regroup(1, true),
        Err(ConvoyError::NoRegroupPoint)
    );
    assert!(matches!(
        convoy.set_regroup(0.0, 2, 95.0, 0.0),
        Err(ConvoyError::BadPoint(_))
    ));
    convoy.set_regroup(0.0, 2, point.0, point.1).unwrap();
    assert!(matches!(
        convoy.poll(),
        Some(ConvoyEvent::RegroupSet { .. })
    ));
    let mut history: Vec<Vec<RegroupEta>> = Vec::new();
    run(&mut convoy, &mut cars, 170, |t, c, _| {
        if t >= 10 && t % 10 == 0 {
            history.push(c.regroup_etas(t as f64 * 1000.0));
        }
    });
    for w in history.windows(2) {
        for (before, after) in w[0].iter().zip(&w[1]) {
            assert_eq!(before.user_id, after.user_id);
            if !before.arrived {
                assert!(after.distance_m < before.distance_m, "{w:?}");
                assert!(after.eta_s.unwrap() < before.eta_s.unwrap(), "{w:?}");
            }
        }
    }
    // Car 1 (20 m/s) is there at 150 s; car 2 (15 m/s, 500 m back) is not yet.
    let at_150 = &history[14];
    assert!(
        at_150[0].arrived && at_150[0].eta_s == Some(0.0),
        "{at_150:?}"
    );
    assert!(!at_150[1].arrived);
    assert!((at_150[1].eta_s.unwrap() - at_150[1].distance_m * ROAD_FACTOR / 15.0).abs() < 1.0);

    assert_eq!(convoy.clear_regroup(1, false), Err(ConvoyError::NotAllowed));
    convoy.clear_regroup(1, true).unwrap();
    assert!(convoy.regroup().is_none() && convoy.regroup_etas(0.0).is_empty());
    convoy.set_regroup(0.0, 2, point.0, point.1).unwrap();
    convoy.clear_regroup(2, false).unwrap();
}

// ------------------------------------------------------------------ falling behind

#[test]
fn the_alert_fires_for_the_car_that_stops_and_clears_when_it_catches_up() {
    let mut convoy = Convoy::new(ConvoyConfig::default());
    let (stop, go) = (100, 250);
    let mut cars = vec![
        Car::new(1, 0.0, &[(0, 15.0, 0.0), (400, 0.0, 0.0)]),
        Car::new(2, 100.0, &[(0, 15.0, 0.0), (400, 0.0, 0.0)]),
        Car::new(
            3,
            200.0,
            &[(0, 15.0, 0.0), (stop, 0.0, 0.0), (go, 30.0, 0.0)],
        ),
    ];
    let mut alerts = Vec::new();
    run(&mut convoy, &mut cars, 600, |t, _, events| {
        for e in events {
            if matches!(
                e,
                ConvoyEvent::FallingBehind { .. } | ConvoyEvent::CaughtUp { .. }
            ) {
                alerts.push((t, e));
            }
        }
    });
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let (t_on, ConvoyEvent::FallingBehind { user_id, behind_m }) = &alerts[0] else {
        panic!("{alerts:?}")
    };
    assert_eq!(*user_id, 3);
    assert!(*behind_m > BEHIND_DISTANCE_M);
    // Stopped 200 m behind car 2 at 15 m/s: the gap passes 2 km after (2000 - 100) / 15 s.
    let expected = stop + ((BEHIND_DISTANCE_M - 100.0) / 15.0) as u64;
    assert!(
        (expected..expected + 3).contains(t_on),
        "alert at {t_on}, expected about {expected}"
    );
    let (t_off, ConvoyEvent::CaughtUp { user_id }) = &alerts[1] else {
        panic!("{alerts:?}")
    };
    assert_eq!(*user_id, 3);
    assert!(*t_off > go, "{alerts:?}");
}

#[test]
fn with_two_cars_the_one_that_stops_falls_behind() {
    let mut convoy = Convoy::new(ConvoyConfig {
        behind_distance_m: 1000.0,
        ..ConvoyConfig::default()
    });
    let mut cars = vec![
        Car::new(1, 0.0, &[(0, 20.0, 0.0)]),
        Car::new(2, 100.0, &[(0, 20.0, 0.0), (60, 0.0, 0.0)]),
    ];
    let mut behind = Vec::new();
    run(&mut convoy, &mut cars, 200, |_, _, events| {
        for e in events {
            if let ConvoyEvent::FallingBehind { user_id, .. } = e {
                behind.push(user_id);
            }
        }
    });
    assert_eq!(behind, [2]);
    assert!(convoy.falling_behind().contains_key(&2));
}

// ------------------------------------------------------------------ never panics

#[derive(Debug, Clone)]
enum Op {
    Update(i64, f64, f64, Option<f64>, Option<f64>),
    Remove(i64),
    Tick,
    Regroup(i64, f64, f64),
    Clear(i64, bool),
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        -200f64..200.0,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        any::<f64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..5, 47.9f64..48.3, 11.3f64..11.8, prop::option::of(0f64..60.0), prop::option::of(0f64..360.0))
            .prop_map(|(u, a, o, s, h)| Op::Update(u, a, o, s, h)),
        1 => (0i64..5, any_f64(), any_f64(), prop::option::of(any_f64()), prop::option::of(any_f64()))
            .prop_map(|(u, a, o, s, h)| Op::Update(u, a, o, s, h)),
        1 => (0i64..5).prop_map(Op::Remove),
        3 => Just(Op::Tick),
        1 => (0i64..5, any_f64(), any_f64()).prop_map(|(u, a, o)| Op::Regroup(u, a, o)),
        1 => (0i64..5, any::<bool>()).prop_map(|(u, d)| Op::Clear(u, d)),
    ]
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(500))]

    #[test]
    fn arbitrary_inputs_never_panic_and_groups_stay_sound(
        ops in prop::collection::vec((op(), prop_oneof![0f64..20_000.0, any_f64()]), 0..200),
    ) {
        let mut convoy = Convoy::new(ConvoyConfig::default());
        let mut share = SharePolicy::default();
        let mut now = 0.0;
        for (op, dt) in ops {
            now += if dt.is_finite() { dt.abs().min(1e7) } else { 0.0 };
            let t = if dt.is_finite() { now } else { dt };
            match op {
                Op::Update(u, lat, lon, speed, heading) => {
                    let pos = Position { latitude: lat, longitude: lon, speed, heading };
                    let _ = share.offer(t, &pos);
                    convoy.update(t, u, pos);
                }
                Op::Remove(u) => convoy.remove(u),
                Op::Tick => convoy.tick(t),
                Op::Regroup(u, lat, lon) => { let _ = convoy.set_regroup(t, u, lat, lon); }
                Op::Clear(u, dj) => { let _ = convoy.clear_regroup(u, dj); }
            }
            while convoy.poll().is_some() {}
            let mut seen = std::collections::BTreeSet::new();
            for g in convoy.groups() {
                prop_assert!(g.len() >= 2);
                prop_assert!(g.windows(2).all(|w| w[0] < w[1]));
                for u in g {
                    prop_assert!(seen.insert(*u), "{} in two groups", u);
                }
            }
            for e in convoy.regroup_etas(now) {
                prop_assert!(e.distance_m.is_finite() && e.distance_m >= 0.0);
                prop_assert!(e.eta_s.is_none_or(|s| s.is_finite() && s >= 0.0));
            }
            let _ = convoy.gap(now, 0, 1);
            let _ = convoy.next_timeout();
        }
    }
}

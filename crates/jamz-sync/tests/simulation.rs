//! The deterministic simulation: whole sessions in virtual time. Bounds here are loose;
//! the bench (`cargo bench -p jamz-sync --bench sync_sim`) reports the tight figures.
//! Every assertion message carries the seed: rerun with it to reproduce.
use jamz_sync::sim::{Partition, Profile, Report, Scenario, Simulation};

/// The seeds every scenario runs with: two by default, more on CI (`JAMZ_SIM_SEEDS`).
fn seeds() -> Vec<u64> {
    jamz_proto::test_support::sim_seeds(2)
}

/// The standard session, shortened to 2 minutes (the joiner comes at 60 s).
fn scenario(profile: Profile, seed: u64) -> Scenario {
    Scenario {
        duration_ms: 120_000.0,
        ..Scenario::new(profile, seed)
    }
}

/// The standard session for every seed, changed by `adjust`, each run checked with
/// [`check_clean`].
fn clean_runs(profile: Profile, adjust: impl Fn(&mut Scenario)) -> impl Iterator<Item = Report> {
    seeds().into_iter().map(move |seed| {
        let mut sc = scenario(profile.clone(), seed);
        adjust(&mut sc);
        let r = sc.run();
        check_clean(&r);
        r
    })
}

fn check_clean(r: &Report) {
    assert!(
        r.errors.is_empty(),
        "seed {}: errors {:?}",
        r.seed,
        r.errors
    );
    assert!(r.steady.samples > 1_000, "seed {}: {r}", r.seed);
}

#[test]
fn lan_session_stays_within_a_millisecond() {
    for r in clean_runs(Profile::lan(), |_| {}) {
        assert!(r.steady.p95 < 1.0, "seed {}: {r}", r.seed);
        assert!(r.steady.max < 2.0, "seed {}: {r}", r.seed);
        assert_eq!(r.hard_resyncs_steady, 0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn starlink_session_stays_within_fifteen_ms_without_hard_resyncs() {
    for r in clean_runs(Profile::starlink(), |_| {}) {
        assert!(r.steady.p95 < 15.0, "seed {}: {r}", r.seed);
        assert_eq!(r.hard_resyncs_steady, 0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn lte_session_stays_within_twenty_ms() {
    for r in clean_runs(Profile::lte(), |_| {}) {
        assert!(r.steady.p95 < 20.0, "seed {}: {r}", r.seed);
        assert_eq!(r.hard_resyncs_steady, 0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn an_asymmetric_path_shared_by_every_device_cancels_out() {
    // Each device's offset is off by (10 - 60)/2 = -25 ms, the same for all: they agree.
    for r in clean_runs(Profile::asymmetric(), |_| {}) {
        assert!(r.steady.p95 < 2.0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn late_joiner_starts_mid_track_in_sync() {
    for (profile, bound_ms) in [(Profile::lan(), 1_000.0), (Profile::starlink(), 10_000.0)] {
        for seed in seeds() {
            let r = scenario(profile.clone(), seed).run();
            let join = r.join_converge_ms.first().copied().flatten();
            assert!(
                join.is_some_and(|ms| ms <= bound_ms),
                "seed {seed}: {r} (join {join:?})"
            );
            assert_eq!(r.hard_resyncs_steady, 0, "seed {seed}: {r}");
        }
    }
}

#[test]
fn late_joiner_does_not_disturb_the_others() {
    let seed = 11;
    let sc = scenario(Profile::lan(), seed);
    let mut sim = Simulation::new(&sc);
    sim.run_until(59_000.0);
    let before: Vec<u64> = (0..4)
        .filter_map(|i| sim.engine(i).map(|e| e.stats().starts))
        .collect();
    sim.run_until(70_000.0);
    let after: Vec<u64> = (0..4)
        .filter_map(|i| sim.engine(i).map(|e| e.stats().starts))
        .collect();
    assert_eq!(before, after, "seed {seed}: a join restarted someone");
    assert!(sim.heard(4).is_some(), "seed {seed}: the joiner plays");
}

#[test]
fn simulation_is_deterministic_for_a_seed() {
    let a = scenario(Profile::starlink(), 42).run();
    let b = scenario(Profile::starlink(), 42).run();
    assert_eq!(a, b);
}

#[test]
fn partitioned_device_keeps_time_and_rejoins_in_sync() {
    let outage = |sc: &mut Scenario| {
        sc.partitions = vec![Partition {
            device: 2,
            from_ms: 70_000.0,
            to_ms: 95_000.0,
        }];
    };
    for r in clean_runs(Profile::lan(), outage) {
        assert!(
            r.worst_per_device_ms[2] < 3.0,
            "seed {}: {r} {:?}",
            r.seed,
            r.worst_per_device_ms
        );
        assert_eq!(r.hard_resyncs_steady, 0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn falls_back_to_seeds_rule_when_the_server_has_no_clock() {
    // A production backend without `time-sync` or `server_time`, devices whose clocks agree
    // (what the seeds' rule assumes): the DJ's future start instant still lines everyone up.
    let no_clock = |sc: &mut Scenario| {
        sc.server_time_sync = false;
        sc.server_time_in_state = false;
        sc.clock_offset_max_ms = 0.0;
        sc.skew_max_ppm = 0.0;
    };
    for r in clean_runs(Profile::lan(), no_clock) {
        assert!(r.steady.p95 < 3.0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn session_state_time_alone_bounds_the_error_by_the_one_way_delay() {
    // No `time-sync`, but `server_time` in the state: clocks 2 s apart agree to ~1 ms on a LAN.
    let state_time_only = |sc: &mut Scenario| {
        sc.server_time_sync = false;
        sc.skew_max_ppm = 0.0;
    };
    for r in clean_runs(Profile::lan(), state_time_only) {
        assert!(r.steady.p95 < 5.0, "seed {}: {r}", r.seed);
    }
}

#[test]
fn dj_that_loses_its_link_stays_dj_and_nobody_skips() {
    for seed in seeds() {
        let mut sc = scenario(Profile::lan(), seed);
        sc.partitions = vec![Partition {
            device: 0,
            from_ms: 40_000.0,
            to_ms: 50_000.0,
        }];
        let mut sim = Simulation::new(&sc);
        sim.run_until(sc.duration_ms);
        assert!(
            sim.engine(0).is_some_and(|e| e.is_dj()),
            "seed {seed}: the DJ lost its role"
        );
        let r = sim.report();
        check_clean(&r);
        assert!(r.steady.p95 < 1.0, "seed {seed}: {r}");
        assert_eq!(r.hard_resyncs_steady, 0, "seed {seed}: {r}");
    }
}

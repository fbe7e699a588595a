//! What the audio output reports (a stall, a lost and restored device, a switched output)
//! in whole simulated sessions: the engine restarts exactly once per event, through its own
//! playout state and statistics, and the device is back in step with the DJ.
//! Every assertion message carries the seed: rerun with it to reproduce.
use jamz_sync::sim::{OutputFault, OutputFaultKind, Profile, Scenario, Simulation};

/// The seeds every scenario runs with: two by default, more on CI (`JAMZ_SIM_SEEDS`).
fn seeds() -> Vec<u64> {
    jamz_proto::test_support::sim_seeds(2)
}

/// The device whose output fails (a follower present from the start).
const DEV: usize = 2;

/// When it fails: well in the steady state of the first track (100 s long).
const FAULT_AT_MS: f64 = 40_000.0;

fn session(seed: u64, faults: Vec<OutputFault>) -> Scenario {
    Scenario {
        duration_ms: 90_000.0,
        late_joiners: Vec::new(),
        output_faults: faults,
        ..Scenario::new(Profile::lan(), seed)
    }
}

fn fault(at_ms: f64, kind: OutputFaultKind) -> OutputFault {
    OutputFault {
        device: DEV,
        at_ms,
        kind,
    }
}

/// |audible position of DEV - the DJ's| now (ms); `None` when either is silent.
fn offset_ms(sim: &Simulation) -> Option<f64> {
    let (dj, dev) = (sim.heard(0)?, sim.heard(DEV)?);
    (dj.track == dev.track).then(|| ((dev.position - dj.position) * 1000.0).abs())
}

/// (hard re-syncs, output restarts, starts) of DEV's engine.
fn counts(sim: &Simulation) -> (u64, u64, u64) {
    let st = sim.engine(DEV).map(|e| e.stats()).unwrap_or_default();
    (st.hard_resyncs, st.output_restarts, st.starts)
}

/// After one output event: exactly one restart of the player, no hard re-sync on top
/// (`before`: [`counts`] just before the event), and the device back within 1 ms.
fn assert_one_restart_back_in_step(seed: u64, sim: &Simulation, before: (u64, u64, u64)) {
    let after = counts(sim);
    assert_eq!(
        after.1,
        before.1 + 1,
        "seed {seed}: one restart for one event"
    );
    assert_eq!(after.0, before.0, "seed {seed}: no hard re-sync on top");
    assert!(
        offset_ms(sim).is_some_and(|o| o < 1.0),
        "seed {seed}: back in step: {:?}",
        offset_ms(sim)
    );
}

#[test]
fn a_stall_is_answered_by_one_restart_that_puts_the_device_back_in_step() {
    let gap_ms = 80.0;
    for seed in seeds() {
        let sc = session(
            seed,
            vec![fault(FAULT_AT_MS, OutputFaultKind::Stall { gap_ms })],
        );
        let mut sim = Simulation::new(&sc);
        sim.run_until(FAULT_AT_MS - 1.0);
        let before = counts(&sim);
        assert!(
            offset_ms(&sim).is_some_and(|o| o < 1.0),
            "seed {seed}: in step before the stall ({:?})",
            offset_ms(&sim)
        );
        // Right after the stall the audio is late by the gap (the player's figures miss it),
        // until the restart lands: how soon that is depends on the seed (with seed 14 the
        // device is already restarting 100 ms after the fault), so the lateness is watched
        // in 1 ms steps over those 100 ms.
        let mut late: Option<f64> = None;
        for step in 1..=100 {
            sim.run_until(FAULT_AT_MS + f64::from(step));
            if let Some(o) = offset_ms(&sim) {
                late = Some(late.map_or(o, |l| l.max(o)));
            }
        }
        assert!(
            late.is_some_and(|o| (o - gap_ms).abs() < 2.0),
            "seed {seed}: the stall made the audio late: {late:?}"
        );
        sim.run_until(FAULT_AT_MS + 5_000.0);
        assert_one_restart_back_in_step(seed, &sim, before);
        assert_eq!(counts(&sim).2, before.2, "seed {seed}: not a new timeline");
        let r = sim.report();
        assert!(r.errors.is_empty(), "seed {seed}: {:?}", r.errors);
        assert_eq!(r.output_restarts[DEV], 1, "seed {seed}: {r}");
        assert_eq!(r.output_restarts.iter().sum::<u64>(), 1, "seed {seed}: {r}");
    }
}

#[test]
fn a_lost_device_is_not_restarted_while_away_and_once_when_it_returns() {
    let away_ms = 8_000.0;
    for seed in seeds() {
        let sc = session(
            seed,
            vec![fault(
                FAULT_AT_MS,
                OutputFaultKind::Lost { for_ms: away_ms },
            )],
        );
        let mut sim = Simulation::new(&sc);
        sim.run_until(FAULT_AT_MS - 1.0);
        let before = counts(&sim);
        // Away for longer than the cooldown of the lost-start retry: still nothing restarts.
        sim.run_until(FAULT_AT_MS + away_ms - 1.0);
        assert!(sim.heard(DEV).is_none(), "seed {seed}: silent while away");
        assert_eq!(counts(&sim), before, "seed {seed}: no restart while away");
        sim.run_until(FAULT_AT_MS + away_ms + 5_000.0);
        assert_one_restart_back_in_step(seed, &sim, before);
        let r = sim.report();
        assert!(r.errors.is_empty(), "seed {seed}: {:?}", r.errors);
        assert_eq!(r.output_restarts.iter().sum::<u64>(), 1, "seed {seed}: {r}");
    }
}

#[test]
fn a_switched_output_plays_again_in_step_after_one_restart() {
    for seed in seeds() {
        let sc = session(seed, vec![fault(FAULT_AT_MS, OutputFaultKind::Switch)]);
        let mut sim = Simulation::new(&sc);
        sim.run_until(FAULT_AT_MS - 1.0);
        let before = counts(&sim);
        sim.run_until(FAULT_AT_MS + 1.0);
        assert!(
            sim.heard(DEV).is_none(),
            "seed {seed}: the new output starts silent"
        );
        sim.run_until(FAULT_AT_MS + 5_000.0);
        assert_one_restart_back_in_step(seed, &sim, before);
    }
}

#[test]
fn every_event_of_a_bad_day_gets_exactly_one_restart_and_the_session_stays_in_step() {
    let faults = vec![
        fault(30_000.0, OutputFaultKind::Stall { gap_ms: 60.0 }),
        fault(40_000.0, OutputFaultKind::Lost { for_ms: 4_000.0 }),
        fault(52_000.0, OutputFaultKind::Switch),
        fault(60_000.0, OutputFaultKind::Stall { gap_ms: 200.0 }),
        fault(70_000.0, OutputFaultKind::Stall { gap_ms: 55.0 }),
    ];
    for seed in seeds() {
        let r = session(seed, faults.clone()).run();
        assert!(r.errors.is_empty(), "seed {seed}: {:?}", r.errors);
        assert_eq!(r.output_restarts[DEV], 5, "seed {seed}: {r}");
        assert_eq!(r.output_restarts.iter().sum::<u64>(), 5, "seed {seed}: {r}");
        assert_eq!(r.hard_resyncs_total, 0, "seed {seed}: {r}");
        // The others never moved; the failing device was out of step only for the lead of
        // each restart.
        for (i, worst) in r.worst_per_device_ms.iter().enumerate() {
            if i != DEV {
                assert!(
                    *worst < 2.0,
                    "seed {seed}: device {i} off by {worst} ms: {r}"
                );
            }
        }
    }
}

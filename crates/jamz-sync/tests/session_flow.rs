//! Whole simulated sessions on a server that follows the seeds' flow strictly (it stores a
//! REST change and broadcasts nothing; clients tell the room): the playlist reaches every
//! device, and the end of the playlist stops the session everywhere.
//! Every assertion message carries the seed: rerun with it to reproduce.
use jamz_sync::sim::{Profile, Scenario, Simulation};

/// The seeds every scenario runs with: two by default, more on CI (`JAMZ_SIM_SEEDS`).
fn seeds() -> Vec<u64> {
    jamz_proto::test_support::sim_seeds(2)
}

#[test]
fn every_device_gets_the_djs_playlist_from_the_djs_playlist_update() {
    for seed in seeds() {
        let sc = Scenario {
            duration_ms: 10_000.0,
            late_joiners: Vec::new(),
            ..Scenario::new(Profile::lte(), seed)
        };
        let mut sim = Simulation::new(&sc);
        sim.run_until(sc.duration_ms);
        for i in 0..sc.devices {
            let n = sim.engine(i).map(|e| e.playlist().len());
            assert_eq!(n, Some(sc.tracks), "seed {seed}: device {i}");
        }
        let r = sim.report();
        assert!(r.errors.is_empty(), "seed {seed}: {:?}", r.errors);
    }
}

#[test]
fn the_session_stops_for_everyone_at_the_end_of_the_playlist() {
    for seed in seeds() {
        let sc = Scenario {
            tracks: 2,
            track_duration_s: 20.0,
            duration_ms: 60_000.0,
            // Comes in after the end: the session it joins is stopped.
            late_joiners: vec![55_000.0],
            ..Scenario::new(Profile::lan(), seed)
        };
        let mut sim = Simulation::new(&sc);
        // Play starts at 4 s (plus the lead): two tracks of 20 s end before 45 s.
        sim.run_until(30_000.0);
        assert!(sim.heard(1).is_some(), "seed {seed}: still playing at 30 s");
        sim.run_until(sc.duration_ms);
        for i in 0..sc.devices + 1 {
            let e = sim.engine(i).expect("device");
            assert!(
                sim.heard(i).is_none(),
                "seed {seed}: device {i} still plays"
            );
            assert!(
                e.timeline().is_some_and(|t| !t.playing),
                "seed {seed}: device {i}: {:?}",
                e.timeline()
            );
            let last = e.playlist().tracks().last().map(|t| t.id.clone());
            let at = e.group_position(0.0);
            assert_eq!(
                at.as_ref().map(|(t, _)| Some(t.clone())),
                Some(last),
                "seed {seed}: device {i}"
            );
            assert_eq!(at.map(|(_, p)| p), Some(20.0), "seed {seed}: device {i}");
        }
        let r = sim.report();
        assert!(r.errors.is_empty(), "seed {seed}: {:?}", r.errors);
    }
}

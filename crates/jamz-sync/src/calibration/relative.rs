//! The relative calibration (docs/protocol.md, "Relative calibration (ext)"): a device
//! that listens (a phone in the car) measures how late another device of the session (the
//! car's laptop, playing into the car stereo) is heard, on the group's timeline, and that
//! device's latency offset is set from it over the session.
//!
//! Both devices share the group's timeline (the server clock each one estimates): the
//! listener asks for probes audible at server instants of its choosing; the player plays
//! each so that it is audible then (its latency offset in force included); the listener
//! records, finds each probe in its recording (jamz-audio's finder), turns where it found
//! it into a server instant through its own clock estimate and its input's latency, and
//! the difference is how much later than its player reckons the other device is heard.
//!
//! Everything here is a decision without I/O: the plan of the probes, whether a player
//! accepts a request, what the listener concludes from what it heard, and what the player
//! does with the result.

use super::{NotApplied, offset_after_calibration};

/// How far ahead of the listener's "now" (server ms) the first probe is: the request
/// crosses the server (or the mesh) to the player, which opens the probe on its output;
/// 1.5 s covers a slow link's round trip and a cold start of the output.
pub const FIRST_PROBE_LEAD_MS: f64 = 1_500.0;

/// Probes are this far apart (ms): each is 0.25 s long (jamz-audio's chirp), and a car's
/// output is heard up to 0.3 s late plus the listener's clock error, so an echo never runs
/// into the next probe's window.
pub const PROBE_EVERY_MS: f64 = 1_000.0;

/// Probes a request may ask for (each takes [`PROBE_EVERY_MS`]).
pub const MAX_PROBES: usize = 20;
/// Fewest probes of a request: one alone cannot show that the others agree.
pub const MIN_PROBES: usize = 3;

/// Latest first probe a player accepts, from its own "now" on the server clock: a request
/// further ahead is a clock gone wrong, not a plan.
pub const MAX_LEAD_MS: f64 = 10_000.0;

/// Probes heard within this (ms) of the median agree. Looser than jamz-audio's own 1 ms:
/// two clock estimates are in the figure, each with its jitter.
pub const AGREE_MS: f64 = 3.0;

/// The share of the probes that must agree.
pub const MIN_AGREEING_SHARE: f64 = 0.6;

/// The largest clock uncertainty (ms, both devices' together: each clock estimate's
/// half round trip) the result is applied with: more than that and the figure says more
/// about the link than about the speakers.
pub const MAX_CLOCK_UNCERTAINTY_MS: f64 = 10.0;

/// The probes the listener asks for: server instants (ms) at which each is to be heard.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePlan {
    pub at_server_ms: Vec<f64>,
}

/// The probes for a request made at `now_server_ms` (the listener's estimate of the server
/// clock): `probes` (clamped to [`MIN_PROBES`]..=[`MAX_PROBES`]) every [`PROBE_EVERY_MS`],
/// the first [`FIRST_PROBE_LEAD_MS`] ahead.
pub fn plan(now_server_ms: f64, probes: usize) -> ProbePlan {
    let n = probes.clamp(MIN_PROBES, MAX_PROBES);
    let first = now_server_ms + FIRST_PROBE_LEAD_MS;
    ProbePlan {
        at_server_ms: (0..n).map(|i| first + i as f64 * PROBE_EVERY_MS).collect(),
    }
}

/// Why a player refuses a request to play probes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("the session is playing: the probes would play over the music (pause first)")]
    Playing,
    #[error("a calibration is already running on this device")]
    Busy,
    #[error("its output plays to no speaker (null or wav:)")]
    NoSpeaker,
    #[error("{0} probes: between {MIN_PROBES} and {MAX_PROBES} are played")]
    Count(usize),
    #[error("the probes are not in order, {PROBE_EVERY_MS} ms apart")]
    Spacing,
    #[error("the first probe is {late_ms:.0} ms in the past on this device's clock")]
    Past { late_ms: f64 },
    #[error(
        "the first probe is {ahead_ms:.0} ms ahead, over {MAX_LEAD_MS} ms: the clocks disagree"
    )]
    TooFarAhead { ahead_ms: f64 },
}

/// What a player knows of itself when a request comes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerState {
    pub playing: bool,
    pub calibrating: bool,
    /// The output reaches a speaker (not `null` or `wav:`).
    pub audible: bool,
}

/// Whether the player plays the probes of `plan`, asked at its own `now_server_ms`.
pub fn accept(player: PlayerState, now_server_ms: f64, plan: &ProbePlan) -> Result<(), Refused> {
    if player.calibrating {
        return Err(Refused::Busy);
    }
    if player.playing {
        return Err(Refused::Playing);
    }
    if !player.audible {
        return Err(Refused::NoSpeaker);
    }
    let at = &plan.at_server_ms;
    if !(MIN_PROBES..=MAX_PROBES).contains(&at.len()) {
        return Err(Refused::Count(at.len()));
    }
    let spaced = at.iter().all(|t| t.is_finite())
        && at
            .windows(2)
            .all(|w| (w[1] - w[0] - PROBE_EVERY_MS).abs() < 0.5);
    if !spaced || !now_server_ms.is_finite() {
        return Err(Refused::Spacing);
    }
    let ahead = at[0] - now_server_ms;
    if ahead < 0.0 {
        return Err(Refused::Past { late_ms: -ahead });
    }
    if ahead > MAX_LEAD_MS {
        return Err(Refused::TooFarAhead { ahead_ms: ahead });
    }
    Ok(())
}

/// One probe as the listener found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    /// Where the probe starts in the listener's recording, turned into the server clock
    /// (its capture instant through its clock estimate), ms.
    pub at_server_ms: f64,
    /// The finder's confidence, 0 to 1 (jamz-audio's `Echo::confidence`).
    pub confidence: f64,
}

/// What the listener concludes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// How much later than planned the other device is heard, ms (its offset in force
    /// included): the change its latency offset needs.
    pub delay_ms: f64,
    /// The agreeing probes lie within this, ms.
    pub spread_ms: f64,
    /// 0 to 1: the agreeing probes' weakest finding times the share that agree.
    pub confidence: f64,
    pub probes: usize,
    pub agreeing: usize,
}

/// Why the listener concludes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotMeasured {
    #[error("none of the {0} probes was heard")]
    NothingHeard(usize),
    #[error(
        "only {agreeing} of {probes} probes agree within {AGREE_MS} ms: too much noise or echo"
    )]
    Disagree { agreeing: usize, probes: usize },
    #[error(
        "the clocks are too uncertain ({uncertainty_ms:.1} ms, at most {MAX_CLOCK_UNCERTAINTY_MS} ms): try again on a better link"
    )]
    Clocks { uncertainty_ms: f64 },
}

/// The delay from `plan` to what was `heard` (`None` for a probe not found), with the
/// listener's input latency (ms: from the sound at its microphone to the instant its
/// recording's frame is stamped with, when its capture stamps the read rather than the
/// capture) taken off, and the two clock estimates' uncertainty (ms) checked.
pub fn measure(
    plan: &ProbePlan,
    heard: &[Option<Heard>],
    input_latency_ms: f64,
    clock_uncertainty_ms: f64,
) -> Result<Measurement, NotMeasured> {
    if !(clock_uncertainty_ms.is_finite() && clock_uncertainty_ms <= MAX_CLOCK_UNCERTAINTY_MS) {
        return Err(NotMeasured::Clocks {
            uncertainty_ms: clock_uncertainty_ms,
        });
    }
    let probes = plan.at_server_ms.len();
    let input = if input_latency_ms.is_finite() {
        input_latency_ms.max(0.0)
    } else {
        0.0
    };
    let mut found: Vec<(f64, f64)> = plan
        .at_server_ms
        .iter()
        .zip(heard)
        .filter_map(|(planned, h)| {
            let h = h.as_ref()?;
            let d = h.at_server_ms - input - planned;
            (d.is_finite() && h.confidence.is_finite()).then_some((d, h.confidence))
        })
        .collect();
    if found.is_empty() {
        return Err(NotMeasured::NothingHeard(probes));
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = found[found.len() / 2].0;
    let agree: Vec<(f64, f64)> = found
        .into_iter()
        .filter(|(d, _)| (d - median).abs() <= AGREE_MS)
        .collect();
    let agreeing = agree.len();
    let needed = ((probes as f64 * MIN_AGREEING_SHARE).ceil() as usize).max(2);
    if agreeing < needed {
        return Err(NotMeasured::Disagree { agreeing, probes });
    }
    let delays: Vec<f64> = agree.iter().map(|(d, _)| *d).collect();
    let lo = delays.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = delays.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weakest = agree.iter().map(|(_, c)| *c).fold(1.0, f64::min);
    Ok(Measurement {
        delay_ms: delays[delays.len() / 2],
        spread_ms: hi - lo,
        confidence: (weakest * agreeing as f64 / probes as f64).clamp(0.0, 1.0),
        probes,
        agreeing,
    })
}

/// The player's side of a result: its latency offset from now on, given the one it had in
/// force while the probes played (the result may come after the player changed it: the
/// listener says which it measured against, and a result for another offset is refused).
pub fn apply(
    offset_in_force_ms: f64,
    measured_against_ms: f64,
    m: &Measurement,
) -> Result<f64, NotApplied> {
    if (offset_in_force_ms - measured_against_ms).abs() > 0.5 {
        return Err(NotApplied::Changed {
            then_ms: measured_against_ms,
            now_ms: offset_in_force_ms,
        });
    }
    offset_after_calibration(offset_in_force_ms, m.delay_ms, m.confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: PlayerState = PlayerState {
        playing: false,
        calibrating: false,
        audible: true,
    };

    fn heard(plan: &ProbePlan, late_ms: &[f64], confidence: f64) -> Vec<Option<Heard>> {
        plan.at_server_ms
            .iter()
            .zip(late_ms)
            .map(|(t, d)| {
                d.is_finite().then_some(Heard {
                    at_server_ms: t + d,
                    confidence,
                })
            })
            .collect()
    }

    #[test]
    fn a_plan_is_ahead_spaced_and_bounded() {
        let p = plan(10_000.0, 5);
        assert_eq!(
            p.at_server_ms,
            vec![11_500.0, 12_500.0, 13_500.0, 14_500.0, 15_500.0]
        );
        assert_eq!(plan(0.0, 1).at_server_ms.len(), MIN_PROBES);
        assert_eq!(plan(0.0, 500).at_server_ms.len(), MAX_PROBES);
        assert_eq!(accept(IDLE, 10_000.0, &p), Ok(()));
    }

    #[test]
    fn a_player_refuses_what_it_cannot_play_or_should_not() {
        let p = plan(10_000.0, 5);
        let with = |f: fn(&mut PlayerState)| {
            let mut s = IDLE;
            f(&mut s);
            accept(s, 10_000.0, &p)
        };
        assert_eq!(with(|s| s.playing = true), Err(Refused::Playing));
        assert_eq!(with(|s| s.calibrating = true), Err(Refused::Busy));
        assert_eq!(with(|s| s.audible = false), Err(Refused::NoSpeaker));
        // Its clock is 2 s ahead of the listener's: the first probe is past there.
        assert_eq!(
            accept(IDLE, 12_000.0, &p),
            Err(Refused::Past { late_ms: 500.0 })
        );
        assert!(matches!(
            accept(IDLE, 0.0, &p),
            Err(Refused::TooFarAhead { .. })
        ));
        let mut bad = p.clone();
        bad.at_server_ms[3] += 100.0;
        assert_eq!(accept(IDLE, 10_000.0, &bad), Err(Refused::Spacing));
        bad.at_server_ms[3] = f64::NAN;
        assert_eq!(accept(IDLE, 10_000.0, &bad), Err(Refused::Spacing));
        let short = ProbePlan {
            at_server_ms: vec![11_500.0],
        };
        assert_eq!(accept(IDLE, 10_000.0, &short), Err(Refused::Count(1)));
        assert!(Refused::Playing.to_string().contains("pause first"));
    }

    #[test]
    fn the_listener_finds_the_delay_less_its_own_input_latency() {
        let p = plan(0.0, 5);
        let h = heard(&p, &[162.0, 161.0, 163.5, 162.5, 161.5], 0.9);
        let m = measure(&p, &h, 12.0, 2.0).unwrap();
        assert_eq!(m.delay_ms, 150.0);
        assert_eq!((m.agreeing, m.probes), (5, 5));
        assert!((m.spread_ms - 2.5).abs() < 1e-9);
        assert!((m.confidence - 0.9).abs() < 1e-9);
    }

    #[test]
    fn a_lost_or_stray_probe_lowers_the_confidence_and_too_many_end_it() {
        let p = plan(0.0, 5);
        // One not heard, one an echo 40 ms later: 3 of 5 agree.
        let h = heard(&p, &[150.0, f64::NAN, 151.0, 190.0, 149.0], 0.9);
        let m = measure(&p, &h, 0.0, 1.0).unwrap();
        assert_eq!((m.delay_ms, m.agreeing), (150.0, 3));
        assert!((m.confidence - 0.9 * 3.0 / 5.0).abs() < 1e-9);
        // Two pairs, neither 3 of 5.
        let h = heard(&p, &[150.0, f64::NAN, 151.0, 190.0, 191.0], 0.9);
        assert_eq!(
            measure(&p, &h, 0.0, 1.0),
            Err(NotMeasured::Disagree {
                agreeing: 2,
                probes: 5
            })
        );
        let none = vec![None; 5];
        assert_eq!(
            measure(&p, &none, 0.0, 1.0),
            Err(NotMeasured::NothingHeard(5))
        );
    }

    #[test]
    fn uncertain_clocks_measure_nothing() {
        let p = plan(0.0, 3);
        let h = heard(&p, &[150.0, 150.0, 150.0], 0.9);
        assert_eq!(
            measure(&p, &h, 0.0, 25.0),
            Err(NotMeasured::Clocks {
                uncertainty_ms: 25.0
            })
        );
        assert!(measure(&p, &h, 0.0, f64::NAN).is_err());
    }

    #[test]
    fn the_player_applies_a_result_measured_against_its_offset_in_force() {
        let p = plan(0.0, 3);
        let m = measure(&p, &heard(&p, &[30.0, 30.5, 29.5], 0.9), 0.0, 1.0).unwrap();
        assert_eq!(apply(120.0, 120.0, &m), Ok(150.0));
        assert_eq!(
            apply(200.0, 120.0, &m),
            Err(NotApplied::Changed {
                then_ms: 120.0,
                now_ms: 200.0
            })
        );
        let weak = Measurement {
            confidence: 0.2,
            ..m
        };
        assert!(matches!(
            apply(120.0, 120.0, &weak),
            Err(NotApplied::Unreliable { .. })
        ));
    }
}

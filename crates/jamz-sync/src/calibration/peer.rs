//! The relative calibration carried between two members (docs/protocol.md, "Relative
//! calibration (ext)"): the runs of both sides, the listener's and the player's, as the
//! engine keeps them. What is decided about a run is [`super::relative`]'s; this is who
//! asked what, which message belongs to which run, and what each side does next.
//!
//! Every message comes from another device and is judged as such: a field missing or out
//! of range, a run this device does not know, a result measured against an offset no longer
//! in force are refused (answered in words where the sender waits for an answer) and
//! counted, never applied.

use jamz_proto::UserId;
use jamz_proto::events::{CalibrationKind, CalibrationUpdate};

use super::relative::{self, Heard, Measurement, PlayerState, ProbePlan};
use super::{MAX_LATENCY_OFFSET_MS, NotApplied};
use crate::api::{
    CalibrationAction, CalibrationInput, ClockEstimate, ClockSource, LocalTime, Notification,
    PeerCalibrated,
};

/// How long the listener waits for the player's first answer (ms): a round trip through
/// the server, well within the first probe's lead.
pub const ANSWER_WAIT_MS: f64 = 5_000.0;
/// How long after the last probe the listener waits for its recording to be searched (ms).
pub const RECORDING_WAIT_MS: f64 = 30_000.0;
/// How long the listener waits for the player to say whether it applied the result (ms).
pub const APPLIED_WAIT_MS: f64 = 10_000.0;
/// How long after its last probe a player takes the result of a run (ms): the listener's
/// recording ends 1 s after it and is searched in a few seconds.
pub const RESULT_WAIT_MS: f64 = 40_000.0;
/// How long after its last instant plus the offset in force a probe has surely played out
/// (ms): the probe (250 ms), the file's lead and a device's latency, with room to spare.
pub const PROBE_PLAYED_MS: f64 = 1_000.0;
/// The command name on the listener's errors.
pub const COMMAND: &str = "calibrate-peer";

/// What the engine knows when a calibration message or input comes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: LocalTime,
    pub me: UserId,
    pub session_id: Option<&'a str>,
    /// The socket is up: the messages go through the server.
    pub connected: bool,
    /// The peers with an open mesh link vouched for: with the server gone, a run with one
    /// of them goes straight over that link.
    pub mesh_links: &'a [UserId],
    pub playing: bool,
    pub clock: ClockEstimate,
}

impl Context<'_> {
    /// Whether a message for `user` can go out: through the server or over its link.
    fn reaches(&self, user: UserId) -> bool {
        self.connected || self.mesh_links.contains(&user)
    }

    fn server_at(&self, local: LocalTime) -> f64 {
        local + self.clock.offset_ms
    }

    fn local_at(&self, server: f64) -> LocalTime {
        server - self.clock.offset_ms
    }

    /// This device's clock uncertainty (ms), when it has a `time-sync` estimate.
    fn clock_ms(&self) -> Option<f64> {
        (self.clock.source == ClockSource::TimeSync)
            .then_some(self.clock.error_bound_ms)
            .flatten()
            .filter(|ms| ms.is_finite())
    }
}

/// What the engine does for a run: a message to send, the node's part, the user's news.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Send(CalibrationUpdate),
    Do(CalibrationAction),
    Notify(Notification),
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    /// The request went out; the player's answer is awaited.
    Asked,
    /// The player plays; the node records. `peer_clock_ms`: the player's clock
    /// uncertainty; `against_ms`: the offset it announced.
    Recording { against_ms: f64, peer_clock_ms: f64 },
    /// The result went out; whether the player applied it is awaited.
    Sent { m: Measurement, against_ms: f64 },
}

#[derive(Debug, Clone, PartialEq)]
struct ListenerRun {
    id: String,
    target: UserId,
    plan: ProbePlan,
    stage: Stage,
    deadline: LocalTime,
}

#[derive(Debug, Clone, PartialEq)]
struct PlayerRun {
    id: String,
    listener: UserId,
    probes: usize,
    until: LocalTime,
    /// When its last probe has surely been heard (its offset and the probe's length
    /// past the instant): a new run of the same listener may play from then on.
    played_by: LocalTime,
}

/// Both sides' runs on one device (at most one of each at a time).
#[derive(Debug, Clone, Default)]
pub struct PeerCalibration {
    listening: Option<ListenerRun>,
    playing: Option<PlayerRun>,
    /// What the node said of its output (`CalibrationInput::Output`).
    audible: bool,
    offset_ms: f64,
    own_calibration: bool,
    next_run: u64,
    /// Messages refused (bad fields, unknown run, not for this device, stale offset).
    pub refused: u64,
}

impl PeerCalibration {
    /// A run of either side is in progress (its probes play or its microphone records).
    pub fn running(&self) -> bool {
        self.listening.is_some() || self.playing.is_some()
    }

    /// When the engine must look again (a wait that may run out).
    pub fn next_timeout(&self) -> Option<LocalTime> {
        [
            self.listening.as_ref().map(|r| r.deadline),
            self.playing.as_ref().map(|r| r.until),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    /// The time has come: a wait ran out.
    pub fn on_tick(&mut self, cx: &Context<'_>, out: &mut Vec<Out>) {
        if self.playing.as_ref().is_some_and(|r| cx.now >= r.until) {
            self.playing = None;
        }
        if let Some(run) = self.listening.take_if(|r| cx.now >= r.deadline) {
            let what = match run.stage {
                Stage::Asked => "did not answer",
                Stage::Recording { .. } => "was not heard in time (the recording did not end)",
                Stage::Sent { .. } => "did not say whether it applied the result",
            };
            out.push(error(format!(
                "calibration of user {}'s output: it {what}",
                run.target
            )));
        }
    }

    /// An input of the node's.
    pub fn on_input(&mut self, cx: &Context<'_>, input: CalibrationInput, out: &mut Vec<Out>) {
        match input {
            CalibrationInput::Start { user, probes } => self.start(cx, user, probes, out),
            CalibrationInput::Output {
                audible,
                offset_ms,
                calibrating,
            } => {
                self.audible = audible;
                if offset_ms.is_finite() {
                    self.offset_ms = offset_ms;
                }
                self.own_calibration = calibrating;
            }
            CalibrationInput::Heard {
                run_id,
                heard,
                input_latency_ms,
            } => self.heard(cx, &run_id, &heard, input_latency_ms, out),
            CalibrationInput::Failed { run_id, message } => {
                if self.playing.as_ref().is_some_and(|r| r.id == run_id) {
                    self.playing = None;
                    out.push(error(format!(
                        "the probes of a calibration failed: {message}"
                    )));
                } else if let Some(run) = self.listening.take_if(|r| r.id == run_id) {
                    out.push(error(format!(
                        "calibration of user {}'s output: {message}",
                        run.target
                    )));
                }
            }
        }
    }

    fn start(&mut self, cx: &Context<'_>, target: UserId, probes: usize, out: &mut Vec<Out>) {
        let refuse = |out: &mut Vec<Out>, why: &str| out.push(error(why.to_string()));
        if target == cx.me {
            return refuse(
                out,
                "that is this device's own user: use `calibrate` for its own output",
            );
        }
        if self.listening.is_some() || self.playing.is_some() || self.own_calibration {
            return refuse(out, "a calibration is already running on this device");
        }
        let Some(session_id) = cx.session_id else {
            return refuse(out, "join a session first");
        };
        if !cx.reaches(target) {
            return refuse(
                out,
                "neither the server nor a mesh link reaches that device: a calibration of another device goes through one of them",
            );
        }
        if cx.clock_ms().is_none() {
            return refuse(
                out,
                "this device's clock is not synchronised with the server yet: try again in a few seconds",
            );
        }
        self.next_run += 1;
        let id = format!("{}-{}-{}", cx.me, self.next_run, cx.now.max(0.0) as u64);
        let plan = relative::plan(cx.server_at(cx.now), probes);
        let mut m = CalibrationUpdate::new(session_id, CalibrationKind::ProbeRequest, target, &id);
        m.at = Some(plan.at_server_ms.clone());
        out.push(Out::Send(m));
        self.listening = Some(ListenerRun {
            id,
            target,
            plan,
            stage: Stage::Asked,
            deadline: cx.now + ANSWER_WAIT_MS,
        });
    }

    /// A message relayed by the server (`from`: its sender, as the server says) or come
    /// over the mesh link of its sender (`from`: that link's peer).
    pub fn on_message(
        &mut self,
        cx: &Context<'_>,
        from: UserId,
        m: CalibrationUpdate,
        out: &mut Vec<Out>,
    ) {
        if m.target != cx.me
            || cx.session_id != Some(m.session_id.as_str())
            || m.check_size().is_err()
        {
            self.refused += 1;
            return;
        }
        match m.kind {
            CalibrationKind::ProbeRequest => self.on_request(cx, from, m, out),
            CalibrationKind::OffsetResult => self.on_result(cx, from, m, out),
            CalibrationKind::ProbeAnswer => self.on_answer(cx, from, m, out),
            CalibrationKind::Unknown => self.refused += 1,
        }
    }

    fn on_request(
        &mut self,
        cx: &Context<'_>,
        from: UserId,
        m: CalibrationUpdate,
        out: &mut Vec<Out>,
    ) {
        let plan = ProbePlan {
            at_server_ms: m.at.clone().unwrap_or_default(),
        };
        // A listener keeps one run at a time: its new request means it gave up the run in
        // hand (a result that did not hold, say). If the new one is accepted, it replaces
        // that run at once instead of this device waiting `RESULT_WAIT_MS` for a result
        // that will not come, provided the old probes have played out before the new start.
        let first = plan.at_server_ms.first().map(|t| cx.local_at(*t));
        let supersedes = self
            .playing
            .as_ref()
            .is_some_and(|r| r.listener == from && first.is_some_and(|f| f >= r.played_by));
        let player = PlayerState {
            playing: cx.playing,
            calibrating: self.own_calibration
                || self.listening.is_some()
                || (self.playing.is_some() && !supersedes),
            audible: self.audible,
        };
        let verdict = relative::accept(player, cx.server_at(cx.now), &plan)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                cx.clock_ms()
                    .ok_or_else(|| "its clock is not synchronised with the server yet".to_string())
            });
        let mut answer = reply(cx, &m, from);
        match verdict {
            Ok(clock_ms) => {
                let at: Vec<LocalTime> =
                    plan.at_server_ms.iter().map(|t| cx.local_at(*t)).collect();
                let last = at.last().copied().unwrap_or(cx.now);
                self.playing = Some(PlayerRun {
                    id: m.run_id.clone(),
                    listener: from,
                    probes: at.len(),
                    until: last + RESULT_WAIT_MS,
                    played_by: last + self.offset_ms.max(0.0) + PROBE_PLAYED_MS,
                });
                out.push(Out::Do(CalibrationAction::PlayProbes {
                    run_id: m.run_id,
                    at,
                }));
                answer.ok = Some(true);
                answer.offset_ms = Some(self.offset_ms);
                answer.clock_ms = Some(clock_ms);
            }
            Err(why) => {
                self.refused += 1;
                answer.ok = Some(false);
                answer.message = Some(why);
            }
        }
        out.push(Out::Send(answer));
    }

    fn on_result(
        &mut self,
        cx: &Context<'_>,
        from: UserId,
        m: CalibrationUpdate,
        out: &mut Vec<Out>,
    ) {
        let mut answer = reply(cx, &m, from);
        answer.ok = Some(false);
        let Some(run) = self
            .playing
            .take_if(|r| r.id == m.run_id && r.listener == from)
        else {
            self.refused += 1;
            answer.message = Some(format!("no calibration run {} here", m.run_id));
            out.push(Out::Send(answer));
            return;
        };
        let fields = (m.delay_ms, m.spread_ms, m.confidence, m.against_ms);
        let (Some(delay_ms), Some(spread_ms), Some(confidence), Some(against_ms)) = fields else {
            self.refused += 1;
            answer.message =
                Some("the result lacks delayMs, spreadMs, confidence or againstMs".into());
            out.push(Out::Send(answer));
            return;
        };
        let probes = m.probes.map_or(run.probes, |n| n as usize);
        let measurement = Measurement {
            delay_ms,
            spread_ms,
            confidence,
            probes,
            agreeing: m.agreeing.map_or(probes, |n| n as usize).min(probes),
        };
        let sane = [delay_ms, spread_ms, confidence, against_ms]
            .iter()
            .all(|v| v.is_finite())
            && (0.0..=1.0).contains(&confidence)
            && spread_ms >= 0.0;
        let applied = if sane {
            relative::apply(self.offset_ms, against_ms, &measurement)
        } else {
            Err(NotApplied::NotANumber)
        };
        match applied {
            Ok(new) => {
                let result = PeerCalibrated {
                    user: from,
                    delay_ms,
                    spread_ms,
                    confidence,
                    probes: measurement.probes,
                    agreeing: measurement.agreeing,
                    from_offset_ms: self.offset_ms,
                    latency_offset_ms: new,
                };
                self.offset_ms = new;
                out.push(Out::Do(CalibrationAction::SetOffset(result)));
                answer.ok = Some(true);
                answer.offset_ms = Some(new);
            }
            Err(why) => {
                self.refused += 1;
                let message =
                    format!("heard {delay_ms:+.1} ms from the expected, not applied: {why}");
                out.push(Out::Notify(Notification::Error {
                    message: format!("calibration from user {from}: {message}"),
                    cmd: None,
                }));
                answer.offset_ms = Some(self.offset_ms);
                answer.message = Some(message);
            }
        }
        out.push(Out::Send(answer));
    }

    fn on_answer(
        &mut self,
        cx: &Context<'_>,
        from: UserId,
        m: CalibrationUpdate,
        out: &mut Vec<Out>,
    ) {
        let Some(run) = self
            .listening
            .take_if(|r| r.id == m.run_id && r.target == from)
        else {
            // Never answered: an answer to an answer could go back and forth.
            self.refused += 1;
            return;
        };
        let refused_by_peer = |m: &CalibrationUpdate| {
            error(format!(
                "user {from} refused: {}",
                m.message.as_deref().unwrap_or("no reason given")
            ))
        };
        match run.stage {
            Stage::Asked => {
                if m.ok != Some(true) {
                    return out.push(refused_by_peer(&m));
                }
                let offset = m
                    .offset_ms
                    .filter(|o| o.is_finite() && (0.0..=MAX_LATENCY_OFFSET_MS).contains(o));
                let clock = m.clock_ms.filter(|c| c.is_finite() && *c >= 0.0);
                let (Some(against_ms), Some(peer_clock_ms)) = (offset, clock) else {
                    self.refused += 1;
                    return out.push(error(format!(
                        "user {from} answered without a usable offsetMs and clockMs"
                    )));
                };
                let at: Vec<LocalTime> = run
                    .plan
                    .at_server_ms
                    .iter()
                    .map(|t| cx.local_at(*t))
                    .collect();
                let last = at.last().copied().unwrap_or(cx.now);
                out.push(Out::Do(CalibrationAction::Record {
                    run_id: run.id.clone(),
                    at,
                    until: last + relative::PROBE_EVERY_MS,
                }));
                self.listening = Some(ListenerRun {
                    stage: Stage::Recording {
                        against_ms,
                        peer_clock_ms,
                    },
                    deadline: last + RECORDING_WAIT_MS,
                    ..run
                });
            }
            Stage::Sent {
                m: measured,
                against_ms,
            } => {
                if m.ok != Some(true) {
                    return out.push(error(format!(
                        "user {from} did not apply the result ({:+.1} ms): {}",
                        measured.delay_ms,
                        m.message.as_deref().unwrap_or("no reason given")
                    )));
                }
                let Some(new) = m.offset_ms.filter(|o| o.is_finite()) else {
                    self.refused += 1;
                    return out.push(error(format!(
                        "user {from} applied the result but did not say its new offset"
                    )));
                };
                out.push(Out::Notify(Notification::PeerCalibration(PeerCalibrated {
                    user: from,
                    delay_ms: measured.delay_ms,
                    spread_ms: measured.spread_ms,
                    confidence: measured.confidence,
                    probes: measured.probes,
                    agreeing: measured.agreeing,
                    from_offset_ms: against_ms,
                    latency_offset_ms: new,
                })));
            }
            Stage::Recording { .. } => {
                // An answer while the probes play: the player gave up (or says nothing new).
                if m.ok == Some(true) {
                    self.refused += 1;
                    self.listening = Some(run);
                } else {
                    out.push(refused_by_peer(&m));
                }
            }
        }
    }

    fn heard(
        &mut self,
        cx: &Context<'_>,
        run_id: &str,
        heard: &[Option<crate::api::HeardProbe>],
        input_latency_ms: f64,
        out: &mut Vec<Out>,
    ) {
        let Some(run) = self.listening.take_if(|r| r.id == run_id) else {
            return;
        };
        let Stage::Recording {
            against_ms,
            peer_clock_ms,
        } = run.stage
        else {
            self.listening = Some(run);
            return;
        };
        let found: Vec<Option<Heard>> = heard
            .iter()
            .map(|h| {
                h.map(|h| Heard {
                    at_server_ms: cx.server_at(h.at),
                    confidence: h.confidence,
                })
            })
            .collect();
        let uncertainty = cx.clock_ms().unwrap_or(f64::INFINITY) + peer_clock_ms;
        let m = match relative::measure(&run.plan, &found, input_latency_ms, uncertainty) {
            Ok(m) => m,
            Err(why) => {
                return out.push(error(format!(
                    "calibration of user {}'s output: {why}",
                    run.target
                )));
            }
        };
        let Some(session_id) = cx.session_id else {
            return out.push(error("the session was left".to_string()));
        };
        let mut result = CalibrationUpdate::new(
            session_id,
            CalibrationKind::OffsetResult,
            run.target,
            &run.id,
        );
        result.delay_ms = Some(m.delay_ms);
        result.spread_ms = Some(m.spread_ms);
        result.confidence = Some(m.confidence);
        result.against_ms = Some(against_ms);
        result.probes = u32::try_from(m.probes).ok();
        result.agreeing = u32::try_from(m.agreeing).ok();
        out.push(Out::Send(result));
        self.listening = Some(ListenerRun {
            stage: Stage::Sent { m, against_ms },
            deadline: cx.now + APPLIED_WAIT_MS,
            ..run
        });
    }
}

/// A `probe-answer` to `m`'s sender, in `m`'s run.
fn reply(cx: &Context<'_>, m: &CalibrationUpdate, to: UserId) -> CalibrationUpdate {
    CalibrationUpdate::new(
        cx.session_id.unwrap_or(&m.session_id),
        CalibrationKind::ProbeAnswer,
        to,
        &m.run_id,
    )
}

fn error(message: String) -> Out {
    Out::Notify(Notification::Error {
        message,
        cmd: Some(COMMAND.to_string()),
    })
}

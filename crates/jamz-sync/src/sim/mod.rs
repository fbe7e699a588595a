//! A deterministic simulation of a session: N devices running the very same [`Engine`], each
//! with its own clock (offset and skew), a model of its player, and a link to a simulated
//! server (latency, jitter, loss as retransmission delay, spikes, asymmetry, partitions).
//! Everything is seeded; virtual time only (a few minutes run in milliseconds).
//!
//! The figure of merit is the *audible offset* between devices: the difference of their
//! audible positions at the same true instant.
mod clock;
mod net;
mod player;
mod rng;
mod server;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;

use jamz_proto::{ServerEvent, Track, UserId};

use crate::api::{
    Action, AudioCommand, Command, EngineConfig, Heard, Input, Notification, RestCall,
};
use crate::engine::Engine;

pub use clock::DeviceClock;
use net::Pipe;
pub use net::{Profile, Spikes};
use player::SimPlayer;
pub use rng::Rng;
use server::{Sender, ServerMsg, SimServer};

/// How often the audible offset is sampled (ms of true time).
pub const SAMPLE_MS: f64 = 50.0;
/// A device counts in the steady state this long after it joined (ms).
pub const SETTLE_MS: f64 = 10_000.0;
/// "In sync after a join": within this of the DJ (ms) ...
pub const JOIN_SYNC_MS: f64 = 5.0;
/// ... and staying there this long (ms).
pub const JOIN_HOLD_MS: f64 = 2_000.0;
/// A run stops with an error after this many events (an engine asking for a timer in the past
/// over and over would otherwise never end).
const MAX_EVENTS: u64 = 5_000_000;

/// A link outage of one device: its socket drops at `from_ms` and reconnects at `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partition {
    pub device: usize,
    pub from_ms: f64,
    pub to_ms: f64,
}

/// Trouble on one device's audio output, at a true instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputFault {
    pub device: usize,
    pub at_ms: f64,
    pub kind: OutputFaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputFaultKind {
    /// The output stalls for this long (ms): late audio, unseen by the player's figures.
    Stall { gap_ms: f64 },
    /// The device is lost for this long (ms), then comes back.
    Lost { for_ms: f64 },
    /// The user switches to another output.
    Switch,
}

/// What to simulate. [`Scenario::new`] gives the standard session: device 0 takes control,
/// adds the tracks and plays; the others follow; late joiners come in mid-track.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub profile: Profile,
    /// Devices whose link differs from `profile`: (device, its profile).
    pub device_profiles: Vec<(usize, Profile)>,
    /// The report's name for this scenario (default: the profile's).
    pub name: &'static str,
    pub seed: u64,
    /// Devices present from the start (device 0 is the DJ).
    pub devices: usize,
    /// True times (ms) at which one more device each joins.
    pub late_joiners: Vec<f64>,
    pub duration_ms: f64,
    /// Samples before this (ms) are not steady state.
    pub warmup_ms: f64,
    /// Device clocks are off by up to +-this (ms) ...
    pub clock_offset_max_ms: f64,
    /// ... and run fast or slow by up to +-this (ppm).
    pub skew_max_ppm: f64,
    /// Whether the server answers `time-sync`.
    pub server_time_sync: bool,
    /// Whether `music-session-state` carries `server_time`.
    pub server_time_in_state: bool,
    pub partitions: Vec<Partition>,
    /// Tracks the DJ adds, each this long (s).
    pub tracks: usize,
    pub track_duration_s: f64,
    /// Extra commands: (true time ms, device, command).
    pub script: Vec<(f64, usize, Command)>,
    /// Output stalls, losses and switches.
    pub output_faults: Vec<OutputFault>,
}

impl Scenario {
    pub fn new(profile: Profile, seed: u64) -> Self {
        Self {
            name: profile.name,
            profile,
            device_profiles: Vec::new(),
            seed,
            devices: 4,
            late_joiners: vec![60_000.0],
            duration_ms: 180_000.0,
            warmup_ms: 20_000.0,
            clock_offset_max_ms: 2_000.0,
            skew_max_ppm: 100.0,
            server_time_sync: true,
            server_time_in_state: true,
            partitions: Vec::new(),
            tracks: 3,
            track_duration_s: 100.0,
            script: Vec::new(),
            output_faults: Vec::new(),
        }
    }

    /// Runs it to the end.
    pub fn run(&self) -> Report {
        let mut sim = Simulation::new(self);
        sim.run_until(self.duration_ms);
        sim.report()
    }
}

/// Percentiles of the audible offset, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spread {
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
    pub samples: usize,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            p50: at(0.5),
            p95: at(0.95),
            max: at(1.0),
            samples: v.len(),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub profile: &'static str,
    pub seed: u64,
    /// Largest minus smallest audible position among settled devices on the same track,
    /// sampled every [`SAMPLE_MS`] after the warm-up.
    pub steady: Spread,
    /// For each late joiner: ms from its connect until it was within [`JOIN_SYNC_MS`] of the
    /// DJ for [`JOIN_HOLD_MS`] (`None`: never).
    pub join_converge_ms: Vec<Option<f64>>,
    /// Hard re-syncs of settled devices after the warm-up.
    pub hard_resyncs_steady: u64,
    /// All hard re-syncs.
    pub hard_resyncs_total: u64,
    /// Restarts for output events (stall, restored device, switched output), per device.
    pub output_restarts: Vec<u64>,
    /// Error notifications, as (true time ms, device, message).
    pub errors: Vec<(f64, usize, String)>,
    /// Largest |audible - DJ| (ms) of each device over the whole steady state.
    pub worst_per_device_ms: Vec<f64>,
}

impl Report {
    /// The bench table's header.
    pub fn header() -> String {
        format!(
            "{:<18} {:>8} {:>8} {:>8} {:>7} {:>14} {:>12} {:>20}",
            "profile",
            "p50 ms",
            "p95 ms",
            "max ms",
            "samples",
            "join->5ms (s)",
            "hard steady",
            "seed"
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = self
            .join_converge_ms
            .iter()
            .map(|j| match j {
                Some(ms) => format!("{:.2}", ms / 1000.0),
                None => "never".to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
        write!(
            f,
            "{:<18} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>14} {:>12} {:>20}",
            self.profile,
            self.steady.p50,
            self.steady.p95,
            self.steady.max,
            self.steady.samples,
            join,
            self.hard_resyncs_steady,
            self.seed
        )
    }
}

// ------------------------------------------------------------------ the machinery

// Simulation-internal; a Box per message would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum UpMsg {
    Emit {
        name: &'static str,
        data: serde_json::Value,
    },
    TimeSync {
        t0: f64,
    },
    Rest(RestCall),
}

// The simulation's own queue: a track inline in a REST call costs nothing here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum SimEvent {
    Connect {
        dev: usize,
    },
    Disconnect {
        dev: usize,
    },
    ToServer {
        dev: usize,
        socket: String,
        msg: UpMsg,
    },
    ToDevice {
        dev: usize,
        socket: String,
        msg: ServerMsg,
    },
    Timer {
        dev: usize,
        generation: u64,
    },
    Command {
        dev: usize,
        cmd: Command,
    },
    Output {
        dev: usize,
        kind: OutputEvent,
    },
    Sample,
}

#[derive(Debug, Clone, Copy)]
enum OutputEvent {
    Stall { gap_ms: f64 },
    Lost,
    Restored,
    Switched,
}

struct Queued {
    t: f64,
    seq: u64,
    ev: SimEvent,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Earliest first in a max-heap; ties in the order queued.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

struct Device {
    engine: Engine,
    /// This device's link to the server.
    link: Profile,
    user: UserId,
    clock: DeviceClock,
    player: SimPlayer,
    up: Pipe,
    down: Pipe,
    socket: Option<String>,
    connections: u32,
    joined_at: Option<f64>,
    timer_generation: u64,
    timer_at: Option<f64>,
    /// True times of hard re-syncs, and the number of restarts for output events.
    resyncs: Vec<f64>,
    output_restarts: u64,
}

/// A running simulation; [`Scenario::run`] is the usual entry.
pub struct Simulation {
    scenario: Scenario,
    now: f64,
    seq: u64,
    events: u64,
    queue: BinaryHeap<Queued>,
    server: SimServer,
    devices: Vec<Device>,
    spreads: Vec<f64>,
    worst: Vec<f64>,
    within_since: Vec<Option<f64>>,
    converged: Vec<Option<f64>>,
    errors: Vec<(f64, usize, String)>,
}

const SESSION: &str = "sim-session";

impl Simulation {
    pub fn new(sc: &Scenario) -> Self {
        let mut rng = Rng::new(sc.seed);
        let total = sc.devices + sc.late_joiners.len();
        let clock = |rng: &mut Rng| DeviceClock {
            offset_ms: sc.clock_offset_max_ms * rng.signed(),
            skew: sc.skew_max_ppm * 1e-6 * rng.signed(),
        };
        let mut server = SimServer::new(clock(&mut rng));
        server.time_sync = sc.server_time_sync;
        server.server_time_in_state = sc.server_time_in_state;
        let devices = (0..total)
            .map(|i| {
                let user = 100 + i as UserId;
                let link = sc
                    .device_profiles
                    .iter()
                    .find(|(d, _)| *d == i)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_else(|| sc.profile.clone());
                let cfg = EngineConfig::new(user, format!("car {i}")).with_session(SESSION);
                Device {
                    engine: Engine::new(cfg),
                    user,
                    clock: clock(&mut rng),
                    player: SimPlayer::default(),
                    up: Pipe::new(link.up_ms, rng.fork()),
                    down: Pipe::new(link.down_ms, rng.fork()),
                    link,
                    socket: None,
                    connections: 0,
                    joined_at: None,
                    timer_generation: 0,
                    timer_at: None,
                    resyncs: Vec::new(),
                    output_restarts: 0,
                }
            })
            .collect();
        let mut sim = Self {
            scenario: sc.clone(),
            now: 0.0,
            seq: 0,
            events: 0,
            queue: BinaryHeap::new(),
            server,
            devices,
            spreads: Vec::new(),
            worst: vec![0.0; total],
            within_since: vec![None; total],
            converged: vec![None; total],
            errors: Vec::new(),
        };
        for dev in 0..sc.devices {
            let t = 500.0 * rng.unit();
            sim.at(t, SimEvent::Connect { dev });
        }
        for (k, t) in sc.late_joiners.iter().enumerate() {
            sim.at(
                *t,
                SimEvent::Connect {
                    dev: sc.devices + k,
                },
            );
        }
        for p in &sc.partitions {
            sim.at(p.from_ms, SimEvent::Disconnect { dev: p.device });
            sim.at(p.to_ms, SimEvent::Connect { dev: p.device });
        }
        // The DJ's script: take control, add the tracks, play.
        sim.at(
            1_000.0,
            SimEvent::Command {
                dev: 0,
                cmd: Command::TakeControl,
            },
        );
        for i in 0..sc.tracks {
            let track = Track {
                title: format!("Song {i}"),
                artist: "The Simulators".to_string(),
                url: format!("https://example.invalid/music/{i}.mp3"),
                duration: Some(sc.track_duration_s),
                ..Track::default()
            };
            sim.at(
                1_500.0 + 100.0 * i as f64,
                SimEvent::Command {
                    dev: 0,
                    cmd: Command::Add(Box::new(track)),
                },
            );
        }
        sim.at(
            4_000.0,
            SimEvent::Command {
                dev: 0,
                cmd: Command::Play {
                    track: None,
                    position: None,
                },
            },
        );
        for (t, dev, cmd) in sc.script.clone() {
            sim.at(t, SimEvent::Command { dev, cmd });
        }
        for f in &sc.output_faults {
            let dev = f.device;
            match f.kind {
                OutputFaultKind::Stall { gap_ms } => {
                    let kind = OutputEvent::Stall { gap_ms };
                    sim.at(f.at_ms, SimEvent::Output { dev, kind });
                }
                OutputFaultKind::Lost { for_ms } => {
                    let kind = OutputEvent::Lost;
                    sim.at(f.at_ms, SimEvent::Output { dev, kind });
                    let kind = OutputEvent::Restored;
                    sim.at(f.at_ms + for_ms, SimEvent::Output { dev, kind });
                }
                OutputFaultKind::Switch => {
                    let kind = OutputEvent::Switched;
                    sim.at(f.at_ms, SimEvent::Output { dev, kind });
                }
            }
        }
        sim.at(SAMPLE_MS, SimEvent::Sample);
        sim
    }

    fn at(&mut self, t: f64, ev: SimEvent) {
        self.seq += 1;
        self.queue.push(Queued {
            t,
            seq: self.seq,
            ev,
        });
    }

    /// True time now (ms).
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Device `i`'s engine.
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.devices.get(i).map(|d| &d.engine)
    }

    /// What device `i` plays at this true instant.
    pub fn heard(&self, i: usize) -> Option<Heard> {
        let d = self.devices.get(i)?;
        d.player.heard(self.now, &d.clock)
    }

    /// Device `i`'s clock-offset estimate error against the truth (ms), now.
    pub fn clock_error_ms(&self, i: usize) -> Option<f64> {
        let d = self.devices.get(i)?;
        let local = d.clock.local(self.now);
        let truth = self.server.clock.local(self.now) - local;
        Some(d.engine.clock_estimate(local).offset_ms - truth)
    }

    /// Runs every event up to true time `t` (ms).
    pub fn run_until(&mut self, t: f64) {
        while let Some(q) = self.queue.peek() {
            if q.t > t {
                break;
            }
            let Some(q) = self.queue.pop() else { break };
            self.events += 1;
            if self.events > MAX_EVENTS {
                self.errors
                    .push((self.now, 0, "simulation: too many events".to_string()));
                self.queue.clear();
                break;
            }
            self.now = q.t.max(self.now);
            self.dispatch(q.ev);
        }
        self.now = self.now.max(t);
    }

    fn dispatch(&mut self, ev: SimEvent) {
        match ev {
            SimEvent::Connect { dev } => {
                let Some(d) = self.devices.get_mut(dev) else {
                    return;
                };
                d.connections += 1;
                let socket = format!("sock-{dev}-{}", d.connections);
                d.socket = Some(socket.clone());
                d.up.reset(self.now);
                d.down.reset(self.now);
                d.joined_at.get_or_insert(self.now);
                self.feed(dev, Input::Connected { socket_id: socket });
            }
            SimEvent::Disconnect { dev } => {
                let Some(socket) = self.devices.get_mut(dev).and_then(|d| d.socket.take()) else {
                    return;
                };
                let mut out = Vec::new();
                self.server.disconnect(&socket, &mut out);
                self.send_down(out);
                self.feed(
                    dev,
                    Input::Disconnected {
                        reason: "partition".to_string(),
                    },
                );
            }
            SimEvent::ToServer { dev, socket, msg } => {
                let Some(d) = self.devices.get(dev) else {
                    return;
                };
                if d.socket.as_deref() != Some(socket.as_str()) {
                    return; // the connection it was sent on is gone
                }
                let user = d.user;
                let mut out = Vec::new();
                let from = Sender {
                    dev,
                    socket: &socket,
                    user,
                };
                match msg {
                    UpMsg::Emit { name, data } => {
                        self.server.on_event(self.now, &from, name, data, &mut out)
                    }
                    UpMsg::TimeSync { t0 } => self.server.on_event(
                        self.now,
                        &from,
                        "time-sync",
                        serde_json::json!({ "t0": t0 }),
                        &mut out,
                    ),
                    UpMsg::Rest(call) => self.server.on_rest(dev, user, call, &mut out),
                }
                self.send_down(out);
            }
            SimEvent::ToDevice { dev, socket, msg } => {
                let Some(d) = self.devices.get(dev) else {
                    return;
                };
                if d.socket.as_deref() != Some(socket.as_str()) {
                    return;
                }
                let local = d.clock.local(self.now);
                let input = match msg {
                    ServerMsg::Event { name, data } => match ServerEvent::decode(name, data) {
                        Ok(ev) => Input::Server(ev),
                        Err(e) => {
                            self.errors.push((self.now, dev, format!("decode: {e}")));
                            return;
                        }
                    },
                    ServerMsg::TimeSyncAck { t0, t1, t2 } => Input::TimeSyncReply {
                        t0,
                        t1,
                        t2,
                        t3: local,
                    },
                    ServerMsg::RestAnswer(Ok(playlist)) => Input::PlaylistLoaded(playlist),
                    ServerMsg::RestAnswer(Err(message)) => Input::RestFailed {
                        call: RestCall::Reorder {
                            session_id: SESSION.to_string(),
                            order: Vec::new(),
                        },
                        message,
                    },
                };
                self.feed(dev, input);
            }
            SimEvent::Timer { dev, generation } => {
                let due = self
                    .devices
                    .get(dev)
                    .is_some_and(|d| d.timer_generation == generation);
                if due {
                    if let Some(d) = self.devices.get_mut(dev) {
                        d.timer_at = None;
                    }
                    self.feed(dev, Input::Tick);
                }
            }
            SimEvent::Command { dev, cmd } => self.feed(dev, Input::Command(cmd)),
            SimEvent::Output { dev, kind } => {
                let Some(d) = self.devices.get_mut(dev) else {
                    return;
                };
                // The player changes first, then reports (as jamz-audio's events come after).
                let input = match kind {
                    OutputEvent::Stall { gap_ms } => {
                        d.player.stall(gap_ms, self.now);
                        Input::OutputStalled { gap_ms }
                    }
                    OutputEvent::Lost => {
                        d.player.lose();
                        Input::OutputLost
                    }
                    OutputEvent::Restored => {
                        d.player.reopen();
                        Input::OutputRestored
                    }
                    OutputEvent::Switched => {
                        d.player.reopen();
                        Input::OutputSwitched
                    }
                };
                self.feed(dev, input);
            }
            SimEvent::Sample => {
                self.sample();
                self.at(self.now + SAMPLE_MS, SimEvent::Sample);
            }
        }
    }

    fn send_down(&mut self, out: Vec<(usize, ServerMsg)>) {
        for (dev, msg) in out {
            let now = self.now;
            let Some(d) = self.devices.get_mut(dev) else {
                continue;
            };
            let profile = d.link.clone();
            let Some(socket) = d.socket.clone() else {
                continue;
            };
            let t = d.down.delivery(now, &profile);
            self.at(t, SimEvent::ToDevice { dev, socket, msg });
        }
    }

    /// Hands `input` to device `dev`'s engine and carries out what it asks.
    fn feed(&mut self, dev: usize, input: Input) {
        let now = self.now;
        let mut outgoing = Vec::new();
        let Some(d) = self.devices.get_mut(dev) else {
            return;
        };
        let profile = d.link.clone();
        let local = d.clock.local(now);
        d.engine.handle(local, input);
        let mut follow_ups = Vec::new();
        loop {
            while let Some(action) = d.engine.poll() {
                match action {
                    Action::Emit { event, data } => {
                        outgoing.push(UpMsg::Emit { name: event, data })
                    }
                    Action::TimeSync { t0, .. } => outgoing.push(UpMsg::TimeSync { t0 }),
                    Action::Rest(call) => outgoing.push(UpMsg::Rest(call)),
                    Action::Audio(AudioCommand::QueryClock) => {
                        follow_ups.push(Input::AudioClock {
                            at: local,
                            heard: d.player.reported(now, &d.clock),
                        });
                    }
                    Action::Audio(cmd) => d.player.apply(&cmd, now, &d.clock),
                    Action::Notify(Notification::Resync { cause }) => {
                        if cause.is_output_event() {
                            d.output_restarts += 1;
                        } else {
                            d.resyncs.push(now);
                        }
                    }
                    Action::Notify(Notification::Error { message, .. }) => {
                        self.errors.push((now, dev, message));
                    }
                    // The simulated server has no location history.
                    Action::Notify(_) | Action::ReportLocations { .. } => {}
                    // The simulated devices have no mesh (the engine's mesh side is
                    // covered by tests/mesh_tier.rs).
                    Action::Mesh { .. }
                    | Action::Signal(_)
                    | Action::MeshDirect { .. }
                    | Action::Rejoin { .. }
                    | Action::Calibration(_) => {}
                    // Nor an external video player (headless, like a node).
                    Action::External(_) => {}
                }
            }
            if follow_ups.is_empty() {
                break;
            }
            for input in follow_ups.drain(..) {
                d.engine.handle(local, input);
            }
        }
        if let Some(socket) = d.socket.clone() {
            for msg in outgoing {
                let t = d.up.delivery(now, &profile);
                self.seq += 1;
                self.queue.push(Queued {
                    t,
                    seq: self.seq,
                    ev: SimEvent::ToServer {
                        dev,
                        socket: socket.clone(),
                        msg,
                    },
                });
            }
        }
        if let Some(t_local) = d.engine.next_timeout() {
            let mut t = d.clock.true_time(t_local).max(now);
            // Rounding must not wake the engine a hair before its own deadline.
            while d.clock.local(t) < t_local {
                t += (t.abs() * f64::EPSILON).max(1e-9);
            }
            if d.timer_at != Some(t) {
                d.timer_generation += 1;
                d.timer_at = Some(t);
                let generation = d.timer_generation;
                self.at(t, SimEvent::Timer { dev, generation });
            }
        }
    }

    fn sample(&mut self) {
        let now = self.now;
        let Some(dj) = self.heard(0) else {
            return;
        };
        let warm = now >= self.scenario.warmup_ms;
        let mut positions = Vec::new();
        for i in 0..self.devices.len() {
            let Some(joined) = self.devices[i].joined_at else {
                continue;
            };
            let Some(h) = self.heard(i).filter(|h| h.track == dj.track) else {
                self.within_since[i] = None;
                continue;
            };
            let diff_ms = (h.position - dj.position) * 1000.0;
            let settled = now - joined >= SETTLE_MS;
            if settled && warm {
                positions.push(h.position);
                self.worst[i] = self.worst[i].max(diff_ms.abs());
            }
            if i >= self.scenario.devices && self.converged[i].is_none() {
                if diff_ms.abs() <= JOIN_SYNC_MS {
                    let since = *self.within_since[i].get_or_insert(now);
                    if now - since >= JOIN_HOLD_MS {
                        self.converged[i] = Some(since - joined);
                    }
                } else {
                    self.within_since[i] = None;
                }
            }
        }
        if positions.len() >= 2 {
            let lo = positions.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = positions.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            self.spreads.push((hi - lo) * 1000.0);
        }
    }

    /// The figures so far.
    pub fn report(&self) -> Report {
        let sc = &self.scenario;
        let mut steady = 0;
        let mut total = 0;
        for d in &self.devices {
            for t in &d.resyncs {
                total += 1;
                let settled = d.joined_at.is_some_and(|j| t - j >= SETTLE_MS);
                if settled && *t >= sc.warmup_ms {
                    steady += 1;
                }
            }
        }
        Report {
            profile: sc.name,
            seed: sc.seed,
            steady: Spread::of(self.spreads.clone()),
            join_converge_ms: (sc.devices..self.devices.len())
                .map(|i| self.converged[i])
                .collect(),
            hard_resyncs_steady: steady,
            hard_resyncs_total: total,
            output_restarts: self.devices.iter().map(|d| d.output_restarts).collect(),
            errors: self.errors.clone(),
            worst_per_device_ms: self.worst.clone(),
        }
    }
}

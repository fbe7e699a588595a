//! Location sharing and the convoy as a part of the engine, sans-IO.
//!
//! In: this car's fixes (any source, manual ones too), the others' `location-update`s and
//! `convoy-update`s, the user's switches (sharing on/off, for how long; the regroup point),
//! the link going up and down, and ticks. Out: the `location-update`s to send, the fixes
//! the socket could not carry (for `POST /api/locations` once the server is back), and
//! notifications: positions with who travels `together`, the regroup point with each
//! car's ETA, a car falling behind, a car whose sharing stopped.
//!
//! The decisions themselves are [`crate::convoy`]'s; this module applies them to the
//! session and owns the privacy rule: nothing is sent until sharing is turned on, and
//! turning it off (or its time running out) sends `location-off` at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jamz_proto::UserId;
use jamz_proto::events::{
    ConvoyKind, ConvoyRelay, ConvoyUpdate, Event, LocationRelay, LocationUpdate,
};
use jamz_proto::mesh::{MeshConvoy, MeshLocation, kinds};
use jamz_proto::rest::LocationReport;
use serde::Serialize;

use crate::api::{Action, LocalTime, MeshOut, Notification, ServerTime};
use crate::convoy::{Convoy, ConvoyConfig, ConvoyEvent, Position, ShareConfig, SharePolicy};

/// While a regroup point is set, everyone's ETA to it is reported this often (ms): the
/// sharing interval, so each report can carry newer positions.
pub const REGROUP_REPORT_MS: f64 = 5_000.0;

/// The convoy is re-judged at least this often while anyone's position is known (ms):
/// stale positions drop out, a car that stopped sending falls behind.
pub const CONVOY_TICK_MS: f64 = 5_000.0;

/// A fix sent over the socket counts as delivered once a `time-sync` probe sent after it
/// is answered (one socket, handled in order). Unconfirmed fixes older than this (ms) are
/// taken as delivered: the link declares a silent server dead after its ping interval
/// plus timeout (45 s), so an older one was not caught by a dead link. Without the
/// `time-sync` extension no fix is ever confirmed, and this bounds the list.
pub const UNCONFIRMED_KEEP_MS: f64 = 60_000.0;

/// At most this many fixes wait for the server (about 28 hours at one fix every 5 s);
/// past it the oldest go first.
pub const OFFLINE_KEEP_FIXES: usize = 20_000;

/// Fixes per [`Action::ReportLocations`].
pub const REPORT_BATCH: usize = 100;

/// The location part's settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocationConfig {
    pub share: ShareConfig,
    pub convoy: ConvoyConfig,
}

/// What the user (or the node, for the user) does about location.
#[derive(Debug, Clone, PartialEq)]
pub enum LocationInput {
    /// A fix of this car, from any source (manual ones too): shown here, and sent to the
    /// others when sharing is on and the sharing rule lets it through.
    Fix(Position),
    /// Sharing on (for `for_ms`, or until turned off) or off. Off sends `location-off`.
    Share { enabled: bool, for_ms: Option<f64> },
    /// Anyone may set the regroup point.
    SetRegroup { latitude: f64, longitude: f64 },
    /// The DJ, or whoever set it, may clear the regroup point.
    ClearRegroup,
    /// Fixes of an [`Action::ReportLocations`] the server did not take (unreachable):
    /// they wait for the next connection, ahead of newer ones.
    ReportFailed { reports: Vec<LocationReport> },
    /// Fixes an earlier run kept on disk and never delivered: they wait like
    /// [`LocationInput::ReportFailed`] ones, and go at once when the link is up.
    Kept { reports: Vec<LocationReport> },
}

impl LocationInput {
    /// The node-control command that carries it, for `error` events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fix(_) => "location",
            Self::Share { .. } => "share-location",
            Self::SetRegroup { .. } => "regroup",
            Self::ClearRegroup => "regroup-clear",
            Self::ReportFailed { .. } | Self::Kept { .. } => "location",
        }
    }
}

/// One car's way to the regroup point, as the `regroup` event lists it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct EtaView {
    #[serde(rename = "userId")]
    pub user_id: UserId,
    /// Straight-line distance, m.
    pub distance_m: f64,
    /// Rough time to get there, s; `null` for a car that is not moving.
    pub eta_s: Option<f64>,
    pub arrived: bool,
}

/// Location notifications (docs/node-control.md spelling; each serializes as one event).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LocationEvent {
    /// A car's position (this car's as the sharing rule passes it), with the cars it
    /// travels with.
    Location {
        #[serde(rename = "userId")]
        user_id: UserId,
        latitude: f64,
        longitude: f64,
        speed: Option<f64>,
        heading: Option<f64>,
        together: Vec<UserId>,
    },
    /// `userId` stopped sharing (or left): remove its marker.
    LocationOff {
        #[serde(rename = "userId")]
        user_id: UserId,
    },
    /// This car's sharing changed; `until` is the local instant (ms) it stops by itself.
    Sharing {
        enabled: bool,
        until: Option<f64>,
        reason: String,
    },
    /// The groups of cars travelling together changed (each sorted, two cars or more).
    Together { groups: Vec<Vec<UserId>> },
    /// The regroup point (on a change, and every few seconds while set) with every car's
    /// distance and ETA to it.
    Regroup {
        latitude: f64,
        longitude: f64,
        #[serde(rename = "setBy")]
        set_by: UserId,
        etas: Vec<EtaView>,
    },
    RegroupCleared {
        #[serde(rename = "userId")]
        user_id: UserId,
    },
    /// `userId` is more than the set distance behind the group along its way.
    FallingBehind {
        #[serde(rename = "userId")]
        user_id: UserId,
        behind_m: f64,
    },
    /// `userId` is no longer falling behind.
    CaughtUp {
        #[serde(rename = "userId")]
        user_id: UserId,
    },
}

/// What the engine knows when it hands something to this part.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub user: UserId,
    pub session: Option<&'a str>,
    pub connected: bool,
    pub server_now: ServerTime,
    /// The DJ's user.
    pub dj: Option<UserId>,
}

/// What happened, as the engine reports it.
pub(crate) enum Happening<'a> {
    Input(LocationInput),
    Remote(&'a LocationRelay),
    Convoy(&'a ConvoyRelay),
    Connected,
    Disconnected,
    /// A `time-sync` probe sent at this local instant was answered.
    Confirmed(LocalTime),
    /// A member joined (the regroup point is told again to the joiner).
    Joined,
    /// A member's last connection left.
    Left(UserId),
    Tick,
}

/// Sharing, the others' positions and the convoy's decisions.
#[derive(Debug, Default)]
pub(crate) struct LocationState {
    policy: SharePolicy,
    convoy: Convoy,
    sharing: bool,
    share_until: Option<LocalTime>,
    /// Everyone's last position (this car's included), for `location` events.
    last: BTreeMap<UserId, Position>,
    /// Sent over the socket, not yet known to have arrived: (local instant sent, fix).
    unconfirmed: VecDeque<(LocalTime, LocationReport)>,
    /// Waiting for `POST /api/locations`, oldest first.
    offline: VecDeque<LocationReport>,
    next_tick: Option<LocalTime>,
    next_regroup_report: Option<LocalTime>,
    actions: VecDeque<Action>,
    /// Mesh messages for everyone, for the engine to stamp (it owns the sequence numbers).
    mesh: VecDeque<MeshOut>,
    /// Counts changes of the fixes not yet delivered (see [`LocationState::backlog`]).
    backlog_version: u64,
    /// Each other member's newest fix taken: timestamp, latitude, longitude.
    newest_fix: BTreeMap<UserId, (f64, f64, f64)>,
    /// Members whose `location-off` was reported since their last fix.
    told_off: BTreeSet<UserId>,
}

impl LocationState {
    pub fn new(cfg: LocationConfig) -> Self {
        LocationState {
            policy: SharePolicy::new(cfg.share),
            convoy: Convoy::new(cfg.convoy),
            ..LocationState::default()
        }
    }

    /// Whether this car shares its position now.
    pub fn sharing(&self) -> bool {
        self.sharing
    }

    /// Fixes waiting for the server.
    pub fn waiting(&self) -> usize {
        self.offline.len()
    }

    pub fn next_timeout(&self) -> Option<LocalTime> {
        [
            self.share_until,
            self.next_tick,
            self.next_regroup_report,
            self.convoy.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    /// The actions this part produced, in order.
    pub fn drain(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// The mesh messages (to every peer) this part produced, in order.
    pub fn drain_mesh(&mut self) -> impl Iterator<Item = MeshOut> + '_ {
        self.mesh.drain(..)
    }

    /// This car's fixes not known to have reached the server, oldest first: those waiting
    /// for it and those sent over a socket that has not confirmed them yet. A device keeps
    /// them on disk (a restart loses none; an unconfirmed one may reach the server twice).
    pub fn backlog(&self) -> Vec<LocationReport> {
        let mut all: Vec<LocationReport> = self
            .offline
            .iter()
            .chain(self.unconfirmed.iter().map(|(_, r)| r))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        all
    }

    /// Changes whenever [`LocationState::backlog`] does.
    pub fn backlog_version(&self) -> u64 {
        self.backlog_version
    }

    fn backlog_signature(&self) -> (usize, usize, Option<f64>, Option<f64>, Option<LocalTime>) {
        (
            self.offline.len(),
            self.unconfirmed.len(),
            self.offline.front().map(|r| r.timestamp),
            self.offline.back().map(|r| r.timestamp),
            self.unconfirmed.back().map(|(at, _)| *at),
        )
    }

    pub fn handle(&mut self, now: LocalTime, h: Happening<'_>, ctx: &Ctx<'_>) {
        let before = self.backlog_signature();
        self.handle_inner(now, h, ctx);
        if self.backlog_signature() != before {
            self.backlog_version += 1;
        }
    }

    fn handle_inner(&mut self, now: LocalTime, h: Happening<'_>, ctx: &Ctx<'_>) {
        match h {
            Happening::Input(i) => {
                let name = i.name();
                if let Err(message) = self.input(now, i, ctx) {
                    self.notify(Notification::Error {
                        message,
                        cmd: Some(name.to_owned()),
                    });
                }
            }
            Happening::Remote(l) => self.remote(now, l, ctx),
            Happening::Convoy(c) => self.remote_convoy(now, c, ctx),
            Happening::Connected => self.flush(now, ctx),
            Happening::Disconnected => {
                // What the socket may have lost goes by REST later, ahead of newer fixes.
                while let Some((at, report)) = self.unconfirmed.pop_back() {
                    if now - at <= UNCONFIRMED_KEEP_MS {
                        self.offline.push_front(report);
                    }
                }
                self.bound_offline();
            }
            Happening::Confirmed(t0) => {
                while self.unconfirmed.front().is_some_and(|(at, _)| *at < t0) {
                    self.unconfirmed.pop_front();
                }
            }
            Happening::Joined => {
                if let (Some(point), Some(session)) = (self.convoy.regroup(), ctx.session)
                    && point.set_by == ctx.user
                {
                    let update = ConvoyUpdate {
                        session_id: session.to_owned(),
                        kind: ConvoyKind::RegroupSet,
                        latitude: Some(point.latitude),
                        longitude: Some(point.longitude),
                    };
                    self.emit(&update);
                }
            }
            Happening::Left(user) => {
                if self.last.remove(&user).is_some() {
                    self.convoy.remove(user);
                    self.notify_event(LocationEvent::LocationOff { user_id: user });
                    self.judge(now, ctx);
                }
            }
            Happening::Tick => {}
        }
        self.timers(now, ctx);
    }

    fn input(&mut self, now: LocalTime, i: LocationInput, ctx: &Ctx<'_>) -> Result<(), String> {
        match i {
            LocationInput::Fix(pos) => {
                jamz_proto::validate_coordinates(pos.latitude, pos.longitude)?;
                for (name, v) in [("speed", pos.speed), ("heading", pos.heading)] {
                    if v.is_some_and(|x| !x.is_finite()) {
                        return Err(format!("{name} must be a finite number"));
                    }
                }
                self.own_fix(now, pos, ctx);
            }
            LocationInput::Share {
                enabled: true,
                for_ms,
            } => {
                if let Some(ms) = for_ms
                    && !(ms.is_finite() && ms > 0.0)
                {
                    return Err(format!(
                        "the sharing duration must be positive, got {ms} ms"
                    ));
                }
                if !self.sharing {
                    // The first fix after turning it on goes out at once.
                    self.policy.reset();
                }
                self.sharing = true;
                self.share_until = for_ms.map(|ms| now + ms);
                self.notify_event(LocationEvent::Sharing {
                    enabled: true,
                    until: self.share_until,
                    reason: "turned on".into(),
                });
            }
            LocationInput::Share { enabled: false, .. } => self.stop_sharing(ctx, "turned off"),
            LocationInput::SetRegroup {
                latitude,
                longitude,
            } => {
                self.convoy
                    .set_regroup(now, ctx.user, latitude, longitude)
                    .map_err(|e| e.to_string())?;
                self.signal(ctx, ConvoyKind::RegroupSet, Some((latitude, longitude)));
                self.judge(now, ctx);
            }
            LocationInput::ClearRegroup => {
                self.convoy
                    .clear_regroup(ctx.user, ctx.dj == Some(ctx.user))
                    .map_err(|e| e.to_string())?;
                self.signal(ctx, ConvoyKind::RegroupClear, None);
                self.judge(now, ctx);
            }
            LocationInput::ReportFailed { reports } => {
                for r in reports.into_iter().rev() {
                    self.offline.push_front(r);
                }
                self.bound_offline();
            }
            LocationInput::Kept { reports } => {
                self.offline.extend(reports);
                self.bound_offline();
                if ctx.connected {
                    self.flush(now, ctx);
                }
            }
        }
        Ok(())
    }

    /// This car's fix: shown and judged as the sharing rule passes it, and sent when
    /// sharing is on (the same rule thins what this device shows and what it sends).
    fn own_fix(&mut self, now: LocalTime, pos: Position, ctx: &Ctx<'_>) {
        if self.policy.offer(now, &pos).is_none() {
            return;
        }
        self.update(now, ctx.user, pos);
        if self.sharing {
            let report = LocationReport {
                session_id: ctx.session.map(str::to_owned),
                latitude: pos.latitude,
                longitude: pos.longitude,
                accuracy: None,
                speed: pos.speed,
                heading: pos.heading,
                timestamp: ctx.server_now,
            };
            // Peers on the mesh see the car whether or not the server does (a receiver
            // keeps one copy of a fix that arrives both ways).
            self.mesh(
                kinds::LOCATION_UPDATE,
                &MeshLocation {
                    latitude: report.latitude,
                    longitude: report.longitude,
                    accuracy: report.accuracy,
                    speed: report.speed,
                    heading: report.heading,
                    timestamp: report.timestamp,
                },
            );
            if ctx.connected && ctx.session.is_some() {
                self.send(now, report);
            } else {
                self.offline.push_back(report);
                self.bound_offline();
            }
        }
        self.judge(now, ctx);
        self.notify_location(ctx.user);
    }

    fn remote(&mut self, now: LocalTime, l: &LocationRelay, ctx: &Ctx<'_>) {
        if l.user_id == ctx.user
            || jamz_proto::validate_coordinates(l.latitude, l.longitude).is_err()
        {
            return;
        }
        // The same fix over the socket and the mesh is taken once, and one overtaken by a
        // newer fix not at all. (Equal timestamps with other coordinates are taken: a
        // sender may not stamp every fix anew.)
        let stamp = (l.timestamp, l.latitude, l.longitude);
        if let Some(newest) = self.newest_fix.get(&l.user_id)
            && (stamp.0 < newest.0 || stamp == *newest)
        {
            return;
        }
        self.newest_fix.insert(l.user_id, stamp);
        self.told_off.remove(&l.user_id);
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        let pos = Position {
            latitude: l.latitude,
            longitude: l.longitude,
            speed: finite(l.speed),
            heading: finite(l.heading),
        };
        self.update(now, l.user_id, pos);
        self.judge(now, ctx);
        self.notify_location(l.user_id);
    }

    fn remote_convoy(&mut self, now: LocalTime, c: &ConvoyRelay, ctx: &Ctx<'_>) {
        if c.user_id == ctx.user {
            return;
        }
        match c.kind {
            ConvoyKind::LocationOff => {
                // Said over the socket and the mesh: told once.
                let had = self.last.remove(&c.user_id).is_some();
                if !had && !self.told_off.insert(c.user_id) {
                    return;
                }
                self.told_off.insert(c.user_id);
                self.convoy.remove(c.user_id);
                self.notify_event(LocationEvent::LocationOff { user_id: c.user_id });
            }
            ConvoyKind::RegroupSet => {
                let (Some(lat), Some(lon)) = (c.latitude, c.longitude) else {
                    return;
                };
                // A point outside the map is dropped: the server checks it already.
                let _ = self.convoy.set_regroup(now, c.user_id, lat, lon);
            }
            ConvoyKind::RegroupClear => {
                // Only the DJ or the setter may clear; anyone else's clear is ignored.
                let _ = self
                    .convoy
                    .clear_regroup(c.user_id, ctx.dj == Some(c.user_id));
            }
            ConvoyKind::Unknown => return,
        }
        self.judge(now, ctx);
    }

    fn update(&mut self, now: LocalTime, user: UserId, pos: Position) {
        self.last.insert(user, pos);
        self.convoy.update(now, user, pos);
        if self.next_tick.is_none() {
            self.next_tick = Some(now + CONVOY_TICK_MS);
        }
    }

    fn send(&mut self, now: LocalTime, report: LocationReport) {
        let Some(session_id) = report.session_id.clone() else {
            return;
        };
        self.emit(&LocationUpdate {
            session_id,
            latitude: report.latitude,
            longitude: report.longitude,
            accuracy: report.accuracy,
            speed: report.speed,
            heading: report.heading,
            timestamp: report.timestamp,
        });
        self.unconfirmed.push_back((now, report));
        while self
            .unconfirmed
            .front()
            .is_some_and(|(at, _)| now - at > UNCONFIRMED_KEEP_MS)
        {
            self.unconfirmed.pop_front();
        }
    }

    /// The link is back: the newest waiting fix over the socket (the others see where the
    /// car is now), the rest to the server's history in batches.
    fn flush(&mut self, now: LocalTime, ctx: &Ctx<'_>) {
        let Some(session) = ctx.session else { return };
        let Some(mut newest) = self.offline.pop_back() else {
            return;
        };
        while !self.offline.is_empty() {
            let n = self.offline.len().min(REPORT_BATCH);
            let reports: Vec<LocationReport> = self.offline.drain(..n).collect();
            self.actions.push_back(Action::ReportLocations { reports });
        }
        newest.session_id = Some(session.to_owned());
        self.send(now, newest);
    }

    fn stop_sharing(&mut self, ctx: &Ctx<'_>, reason: &str) {
        if !self.sharing {
            return;
        }
        self.sharing = false;
        self.share_until = None;
        self.signal(ctx, ConvoyKind::LocationOff, None);
        self.notify_event(LocationEvent::Sharing {
            enabled: false,
            until: None,
            reason: reason.to_owned(),
        });
    }

    fn timers(&mut self, now: LocalTime, ctx: &Ctx<'_>) {
        if self.share_until.is_some_and(|t| now >= t) {
            self.stop_sharing(ctx, "the sharing time ran out");
        }
        let convoy_due = self.convoy.next_timeout().is_some_and(|t| now >= t);
        if convoy_due || self.next_tick.is_some_and(|t| now >= t) {
            self.next_tick = (!self.last.is_empty()).then_some(now + CONVOY_TICK_MS);
            self.judge(now, ctx);
        }
        if self.next_regroup_report.is_some_and(|t| now >= t) {
            self.report_regroup(now);
        }
    }

    /// Re-judges the convoy at `now` and tells what changed.
    fn judge(&mut self, now: LocalTime, _ctx: &Ctx<'_>) {
        self.convoy.tick(now);
        while let Some(ev) = self.convoy.poll() {
            match ev {
                ConvoyEvent::Together { groups } => {
                    self.notify_event(LocationEvent::Together { groups });
                    let users: Vec<UserId> = self.last.keys().copied().collect();
                    for u in users {
                        self.notify_location(u);
                    }
                }
                ConvoyEvent::RegroupSet { .. } => self.report_regroup(now),
                ConvoyEvent::RegroupCleared { by } => {
                    self.next_regroup_report = None;
                    self.notify_event(LocationEvent::RegroupCleared { user_id: by });
                }
                ConvoyEvent::FallingBehind { user_id, behind_m } => {
                    self.notify_event(LocationEvent::FallingBehind { user_id, behind_m });
                }
                ConvoyEvent::CaughtUp { user_id } => {
                    self.notify_event(LocationEvent::CaughtUp { user_id });
                }
            }
        }
    }

    fn report_regroup(&mut self, now: LocalTime) {
        let Some(point) = self.convoy.regroup().cloned() else {
            self.next_regroup_report = None;
            return;
        };
        let etas = self
            .convoy
            .regroup_etas(now)
            .into_iter()
            .map(|e| EtaView {
                user_id: e.user_id,
                distance_m: e.distance_m,
                eta_s: e.eta_s,
                arrived: e.arrived,
            })
            .collect();
        self.notify_event(LocationEvent::Regroup {
            latitude: point.latitude,
            longitude: point.longitude,
            set_by: point.set_by,
            etas,
        });
        self.next_regroup_report = Some(now + REGROUP_REPORT_MS);
    }

    fn notify_location(&mut self, user: UserId) {
        let Some(pos) = self.last.get(&user).copied() else {
            return;
        };
        let together = self.convoy.together_with(user);
        self.notify_event(LocationEvent::Location {
            user_id: user,
            latitude: pos.latitude,
            longitude: pos.longitude,
            speed: pos.speed,
            heading: pos.heading,
            together,
        });
    }

    /// Keeps the waiting fixes in the order they were taken (fixes put back after a failed
    /// batch or a dead link are older than some already waiting) and within bounds.
    fn bound_offline(&mut self) {
        self.offline
            .make_contiguous()
            .sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
        while self.offline.len() > OFFLINE_KEEP_FIXES {
            self.offline.pop_front();
        }
    }

    /// A convoy signal of this car: to the server when in a session, and to the mesh.
    fn signal(&mut self, ctx: &Ctx<'_>, kind: ConvoyKind, at: Option<(f64, f64)>) {
        let (latitude, longitude) = (at.map(|a| a.0), at.map(|a| a.1));
        if let Some(session) = ctx.session {
            self.emit(&ConvoyUpdate {
                session_id: session.to_owned(),
                kind,
                latitude,
                longitude,
            });
        }
        self.mesh(
            kinds::CONVOY_UPDATE,
            &MeshConvoy {
                kind,
                latitude,
                longitude,
            },
        );
    }

    /// A broadcast to every peer on the mesh (none: the node sends nothing).
    fn mesh<T: Serialize>(&mut self, kind: &'static str, data: &T) {
        // Plain structs with string keys always serialize.
        if let Ok(data) = serde_json::to_value(data) {
            self.mesh.push_back(MeshOut {
                kind,
                action: None,
                data,
            });
        }
    }

    fn emit<E: Event>(&mut self, e: &E) {
        // Plain structs with string keys always serialize.
        if let Ok(data) = serde_json::to_value(e) {
            self.actions.push_back(Action::Emit {
                event: E::NAME,
                data,
            });
        }
    }

    fn notify_event(&mut self, ev: LocationEvent) {
        self.notify(Notification::Location(ev));
    }

    fn notify(&mut self, n: Notification) {
        self.actions.push_back(Action::Notify(n));
    }
}

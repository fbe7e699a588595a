//! Convoy decisions, sans-IO: when this car shares its position, which cars travel
//! together, distances and rough ETAs between cars and to a regroup point, and which car
//! is falling behind.
//!
//! Time comes in as `now` (ms, the caller's clock) with every call; nothing here reads a
//! clock, sleeps or does I/O. Positions are judged by when they were received, not by
//! the sender's timestamp: the cars' clocks need not agree.
//!
//! The small geodesy here repeats jamz-geo's on purpose: the engine depends on
//! jamz-proto only, and adapters on nothing of the engine's.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use jamz_proto::UserId;
use serde::Serialize;

// ------------------------------------------------------------------ sharing

/// Share at least this often while moving (ms): the product's rule, "every 5 s or 50 m,
/// whichever comes first". At motorway speed (36 m/s) 50 m comes first (1.4 s), in a
/// traffic jam 5 s does.
pub const SHARE_INTERVAL_MS: f64 = 5_000.0;

/// Share as soon as the car is this far from the last shared position (m).
pub const SHARE_DISTANCE_M: f64 = 50.0;

/// Below this speed a car is stationary (m/s): GNSS speed noise of a parked receiver is
/// 0.1-0.5 m/s; walking pace is 1.4 m/s, and no car crawls slower than 1 m/s for long.
pub const STATIONARY_SPEED_MPS: f64 = 1.0;

/// A stationary car still shares this often (ms), so that the others can tell a parked
/// car from one whose sharing stopped (a position older than [`MEMBER_STALE_MS`]).
pub const STATIONARY_KEEPALIVE_MS: f64 = 60_000.0;

/// What the sharing rule needs to know of a fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    /// m/s, if the source measured it.
    pub speed: Option<f64>,
    /// Degrees clockwise from north, if the source measured it.
    pub heading: Option<f64>,
}

impl Position {
    pub fn new(latitude: f64, longitude: f64) -> Self {
        Position {
            latitude,
            longitude,
            speed: None,
            heading: None,
        }
    }

    pub fn moving(latitude: f64, longitude: f64, speed: f64, heading: f64) -> Self {
        Position {
            latitude,
            longitude,
            speed: Some(speed),
            heading: Some(heading),
        }
    }

    /// Whether all numbers are usable (finite coordinates in range).
    fn is_valid(&self) -> bool {
        jamz_proto::model::validate_coordinates(self.latitude, self.longitude).is_ok()
    }
}

/// The sharing rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShareConfig {
    pub interval_ms: f64,
    pub distance_m: f64,
    /// Share on the interval even while stationary.
    pub share_while_stationary: bool,
    /// While stationary (and not sharing then), still share this often; `None`: never.
    pub stationary_keepalive_ms: Option<f64>,
}

impl Default for ShareConfig {
    fn default() -> Self {
        ShareConfig {
            interval_ms: SHARE_INTERVAL_MS,
            distance_m: SHARE_DISTANCE_M,
            share_while_stationary: false,
            stationary_keepalive_ms: Some(STATIONARY_KEEPALIVE_MS),
        }
    }
}

/// Why a fix is shared (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareReason {
    /// The first fix since sharing started.
    First,
    /// Moved [`ShareConfig::distance_m`] from the last shared position.
    Distance,
    /// [`ShareConfig::interval_ms`] passed while moving.
    Interval,
    /// The car just stopped: where it stands is worth sending once.
    Stopped,
    /// A stationary car's keepalive.
    Keepalive,
}

/// This car's sharing rule: every 5 s or 50 m, whichever first, not while stationary.
#[derive(Debug, Clone, Default)]
pub struct SharePolicy {
    config: ShareConfig,
    /// The last shared position, when, and whether the car was stationary then.
    last: Option<(Position, f64, bool)>,
}

impl SharePolicy {
    pub fn new(config: ShareConfig) -> Self {
        SharePolicy { config, last: None }
    }

    pub fn config(&self) -> ShareConfig {
        self.config
    }

    /// Starts afresh (sharing turned on again): the next fix is shared.
    pub fn reset(&mut self) {
        self.last = None;
    }

    /// Whether the fix `pos`, taken at `now`, is to be shared; if so it becomes the last
    /// shared one. Invalid positions are never shared.
    pub fn offer(&mut self, now: f64, pos: &Position) -> Option<ShareReason> {
        if !pos.is_valid() || !now.is_finite() {
            return None;
        }
        let c = &self.config;
        let reason = match self.last {
            None => Some(ShareReason::First),
            Some((last, at, was_stationary)) => {
                let moved = distance_m(&last, pos);
                // Without a measured speed, a car is stationary when it moved less than
                // the sharing distance over the interval.
                let stationary = match pos.speed {
                    Some(s) if s.is_finite() => s < STATIONARY_SPEED_MPS,
                    _ => {
                        let dt = (now - at).max(1.0) / 1000.0;
                        moved / dt < STATIONARY_SPEED_MPS
                    }
                };
                let elapsed = now - at;
                if moved >= c.distance_m {
                    Some(ShareReason::Distance)
                } else if stationary && !was_stationary {
                    Some(ShareReason::Stopped)
                } else if elapsed >= c.interval_ms && (!stationary || c.share_while_stationary) {
                    Some(ShareReason::Interval)
                } else if stationary && c.stationary_keepalive_ms.is_some_and(|k| elapsed >= k) {
                    Some(ShareReason::Keepalive)
                } else {
                    None
                }
            }
        };
        if reason.is_some() {
            let stationary = pos.speed.is_some_and(|s| s < STATIONARY_SPEED_MPS)
                || matches!(reason, Some(ShareReason::Stopped | ShareReason::Keepalive));
            self.last = Some((*pos, now, stationary));
        }
        reason
    }
}

// ------------------------------------------------------------------ convoy

/// Cars within this distance of each other may travel together (m): in town a red light
/// splits a convoy by a block or two (100-300 m); on a motorway two cars 2-3 s apart with
/// a few others between are 100-250 m apart. Two cars on parallel roads a kilometre apart
/// are not together.
pub const TOGETHER_DISTANCE_M: f64 = 500.0;

/// Moving cars whose smoothed speeds differ by more than this are not together (m/s,
/// 29 km/h): on one road, speeds differ by an overtaking manoeuvre, rarely more for long.
pub const TOGETHER_SPEED_DIFF_MPS: f64 = 8.0;

/// Moving cars whose headings differ by more than this are not together (degrees): a
/// curve or a roundabout turns the lead and the tail apart for a moment; cars on crossing
/// roads differ by 90 degrees and opposite lanes by 180.
pub const TOGETHER_HEADING_DIFF_DEG: f64 = 60.0;

/// A pair's "together" changes only after the new state held this long (ms): passing each
/// other at a crossing is not travelling together, and one red light is not a split.
/// Longer than a typical urban red phase's effect on a 500 m gap (30-60 s at 8-15 m/s
/// would be needed to open it), short enough that a car taking another exit shows within
/// half a minute.
pub const TOGETHER_WINDOW_MS: f64 = 30_000.0;

/// Speeds are averaged over this (ms) before comparing or estimating: a traffic light or
/// a lane change is a moment, the pace of a drive is minutes.
pub const SPEED_SMOOTHING_MS: f64 = 30_000.0;

/// Average speed for ETAs over this (ms): stop-and-go in town averages out over minutes.
pub const ETA_SPEED_WINDOW_MS: f64 = 120_000.0;

/// Below this average speed a car has no ETA (m/s): it is parked or stuck, and a time
/// from it would be hours of noise.
pub const ETA_MIN_SPEED_MPS: f64 = 1.0;

/// Road distance over straight distance (the "detour index"): 1.2-1.4 for road networks
/// in the literature; the ETA is rough, and 1.3 errs neither way.
pub const ROAD_FACTOR: f64 = 1.3;

/// A car within this of the regroup point has arrived (m): a car park or a rest area.
pub const ARRIVED_RADIUS_M: f64 = 150.0;

/// Default distance behind the group at which a car is falling behind (m): farther than
/// the together distance and a motorway exit's length, near enough to turn back.
pub const BEHIND_DISTANCE_M: f64 = 2_000.0;

/// A car no longer falls behind once it is this fraction of the distance behind: without
/// the margin a car hovering at the limit would raise and clear the alert in turns.
pub const BEHIND_CLEAR_RATIO: f64 = 0.75;

/// A member whose last position is older than this (ms) is left out of every decision
/// (its sharing stopped or its link is down): longer than the stationary keepalive.
pub const MEMBER_STALE_MS: f64 = 90_000.0;

/// Positions are projected forward by their speed and heading at most this long (ms):
/// fixes come every 5 s or 50 m, so comparing two cars' last fixes as they are would put
/// a car 5 s (up to 180 m) behind where it is.
pub const PROJECT_MAX_MS: f64 = 10_000.0;

/// How long a member's track is kept (ms): the longest window above.
const HISTORY_MS: f64 = ETA_SPEED_WINDOW_MS;

/// The convoy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConvoyConfig {
    pub together_distance_m: f64,
    pub together_speed_diff_mps: f64,
    pub together_heading_diff_deg: f64,
    pub together_window_ms: f64,
    pub behind_distance_m: f64,
}

impl Default for ConvoyConfig {
    fn default() -> Self {
        ConvoyConfig {
            together_distance_m: TOGETHER_DISTANCE_M,
            together_speed_diff_mps: TOGETHER_SPEED_DIFF_MPS,
            together_heading_diff_deg: TOGETHER_HEADING_DIFF_DEG,
            together_window_ms: TOGETHER_WINDOW_MS,
            behind_distance_m: BEHIND_DISTANCE_M,
        }
    }
}

/// A meeting place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegroupPoint {
    pub latitude: f64,
    pub longitude: f64,
    pub set_by: UserId,
    pub set_at: f64,
}

/// One car's way to the regroup point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegroupEta {
    pub user_id: UserId,
    /// Straight-line distance, m.
    pub distance_m: f64,
    /// Rough time to get there, s (`None`: the car is not moving).
    pub eta_s: Option<f64>,
    pub arrived: bool,
}

/// The distance and rough ETA from one car to another.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gap {
    /// Straight-line distance, m.
    pub distance_m: f64,
    /// Rough time for the first car to reach where the second is, s.
    pub eta_s: Option<f64>,
}

/// What changed, for the node to report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ConvoyEvent {
    /// The groups of cars travelling together (each sorted, at least two cars).
    Together {
        groups: Vec<Vec<UserId>>,
    },
    RegroupSet {
        point: RegroupPoint,
    },
    RegroupCleared {
        by: UserId,
    },
    /// `user_id` is more than the set distance behind the group.
    FallingBehind {
        user_id: UserId,
        behind_m: f64,
    },
    /// `user_id` caught up (or left the convoy's decisions).
    CaughtUp {
        user_id: UserId,
    },
}

/// Why a convoy request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvoyError {
    #[error("the regroup point is outside the map: {0}")]
    BadPoint(String),
    #[error("only the DJ or whoever set the regroup point may clear it")]
    NotAllowed,
    #[error("there is no regroup point")]
    NoRegroupPoint,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    pos: Position,
}

#[derive(Debug, Clone, Copy, Default)]
struct PairState {
    together: bool,
    /// Since when the raw condition has disagreed with `together`.
    pending_since: Option<f64>,
}

/// Everyone's positions and the decisions drawn from them.
#[derive(Debug, Clone, Default)]
pub struct Convoy {
    config: ConvoyConfig,
    tracks: BTreeMap<UserId, VecDeque<Sample>>,
    pairs: BTreeMap<(UserId, UserId), PairState>,
    groups: Vec<Vec<UserId>>,
    behind: BTreeMap<UserId, f64>,
    regroup: Option<RegroupPoint>,
    events: VecDeque<ConvoyEvent>,
}

impl Convoy {
    pub fn new(config: ConvoyConfig) -> Self {
        Convoy {
            config,
            ..Convoy::default()
        }
    }

    pub fn config(&self) -> ConvoyConfig {
        self.config
    }

    /// A member's position, received at `now`. Invalid positions are ignored.
    pub fn update(&mut self, now: f64, user: UserId, pos: Position) {
        if !pos.is_valid() || !now.is_finite() {
            return;
        }
        let track = self.tracks.entry(user).or_default();
        // Out-of-order calls must not break the track's order.
        if track.back().is_some_and(|s| s.at > now) {
            return;
        }
        track.push_back(Sample { at: now, pos });
        while track.front().is_some_and(|s| now - s.at > HISTORY_MS) {
            track.pop_front();
        }
    }

    /// A member stopped sharing (or left): it is out of every decision at once.
    pub fn remove(&mut self, user: UserId) {
        self.tracks.remove(&user);
        self.pairs.retain(|(a, b), _| *a != user && *b != user);
        if self.behind.remove(&user).is_some() {
            self.events
                .push_back(ConvoyEvent::CaughtUp { user_id: user });
        }
    }

    /// Re-evaluates everything at `now`; changes come out of [`Convoy::poll`].
    pub fn tick(&mut self, now: f64) {
        if !now.is_finite() {
            return;
        }
        let live: Vec<UserId> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.back().is_some_and(|s| now - s.at <= MEMBER_STALE_MS))
            .map(|(u, _)| *u)
            .collect();
        self.update_pairs(now, &live);
        let groups = self.components(&live);
        if groups != self.groups {
            self.groups = groups.clone();
            self.events.push_back(ConvoyEvent::Together { groups });
        }
        self.update_behind(now, &live);
    }

    /// The next change, if any.
    pub fn poll(&mut self) -> Option<ConvoyEvent> {
        self.events.pop_front()
    }

    /// When a pending change of "together" would be decided, if one is pending: the caller
    /// ticks then.
    pub fn next_timeout(&self) -> Option<f64> {
        self.pairs
            .values()
            .filter_map(|p| p.pending_since)
            .map(|s| s + self.config.together_window_ms)
            .reduce(f64::min)
    }

    /// The groups travelling together, each sorted, at least two cars each.
    pub fn groups(&self) -> &[Vec<UserId>] {
        &self.groups
    }

    /// The others `user` travels with.
    pub fn together_with(&self, user: UserId) -> Vec<UserId> {
        self.groups
            .iter()
            .find(|g| g.contains(&user))
            .map(|g| g.iter().copied().filter(|u| *u != user).collect())
            .unwrap_or_default()
    }

    /// Who is falling behind, and by how much (m).
    pub fn falling_behind(&self) -> &BTreeMap<UserId, f64> {
        &self.behind
    }

    /// Where `user` is at `now` (its last position, projected by speed and heading).
    pub fn position(&self, now: f64, user: UserId) -> Option<Position> {
        let s = self.tracks.get(&user)?.back()?;
        Some(project(s, now))
    }

    /// The distance from `from` to `to` and a rough ETA for `from` to reach where `to` is.
    pub fn gap(&self, now: f64, from: UserId, to: UserId) -> Option<Gap> {
        let a = self.position(now, from)?;
        let b = self.position(now, to)?;
        let distance_m = distance_m(&a, &b);
        Some(Gap {
            distance_m,
            eta_s: self.eta(now, from, distance_m),
        })
    }

    /// Sets the regroup point (anyone may).
    pub fn set_regroup(
        &mut self,
        now: f64,
        by: UserId,
        latitude: f64,
        longitude: f64,
    ) -> Result<(), ConvoyError> {
        jamz_proto::model::validate_coordinates(latitude, longitude)
            .map_err(ConvoyError::BadPoint)?;
        let point = RegroupPoint {
            latitude,
            longitude,
            set_by: by,
            set_at: now,
        };
        self.regroup = Some(point.clone());
        self.events.push_back(ConvoyEvent::RegroupSet { point });
        Ok(())
    }

    /// Clears the regroup point: the DJ may, and so may whoever set it.
    pub fn clear_regroup(&mut self, by: UserId, by_is_dj: bool) -> Result<(), ConvoyError> {
        let point = self.regroup.as_ref().ok_or(ConvoyError::NoRegroupPoint)?;
        if !by_is_dj && point.set_by != by {
            return Err(ConvoyError::NotAllowed);
        }
        self.regroup = None;
        self.events.push_back(ConvoyEvent::RegroupCleared { by });
        Ok(())
    }

    pub fn regroup(&self) -> Option<&RegroupPoint> {
        self.regroup.as_ref()
    }

    /// Each live car's distance and rough ETA to the regroup point, by user id.
    pub fn regroup_etas(&self, now: f64) -> Vec<RegroupEta> {
        let Some(point) = &self.regroup else {
            return Vec::new();
        };
        let target = Position::new(point.latitude, point.longitude);
        self.tracks
            .iter()
            .filter(|(_, t)| t.back().is_some_and(|s| now - s.at <= MEMBER_STALE_MS))
            .filter_map(|(&user, _)| {
                let pos = self.position(now, user)?;
                let d = distance_m(&pos, &target);
                let arrived = d <= ARRIVED_RADIUS_M;
                Some(RegroupEta {
                    user_id: user,
                    distance_m: d,
                    eta_s: if arrived {
                        Some(0.0)
                    } else {
                        self.eta(now, user, d)
                    },
                    arrived,
                })
            })
            .collect()
    }

    fn eta(&self, now: f64, user: UserId, straight_m: f64) -> Option<f64> {
        let v = self.mean_speed(now, user, ETA_SPEED_WINDOW_MS)?;
        (v >= ETA_MIN_SPEED_MPS).then(|| straight_m * ROAD_FACTOR / v)
    }

    /// The mean of reported speeds over `window`; without reports, the distance covered
    /// over the time.
    fn mean_speed(&self, now: f64, user: UserId, window: f64) -> Option<f64> {
        let track = self.tracks.get(&user)?;
        let recent: Vec<&Sample> = track.iter().filter(|s| now - s.at <= window).collect();
        let last = *recent.last()?;
        let speeds: Vec<f64> = recent
            .iter()
            .filter_map(|s| s.pos.speed)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect();
        if !speeds.is_empty() {
            return Some(speeds.iter().sum::<f64>() / speeds.len() as f64);
        }
        let first = recent[0];
        let dt = (last.at - first.at) / 1000.0;
        (dt > 0.0).then(|| {
            recent
                .windows(2)
                .map(|w| distance_m(&w[0].pos, &w[1].pos))
                .sum::<f64>()
                / dt
        })
    }

    /// The smoothed heading: the direction of the mean velocity of recent reports.
    fn mean_heading(&self, now: f64, user: UserId) -> Option<f64> {
        let track = self.tracks.get(&user)?;
        let (mut x, mut y) = (0.0, 0.0);
        for s in track.iter().filter(|s| now - s.at <= SPEED_SMOOTHING_MS) {
            if let (Some(v), Some(h)) = (s.pos.speed, s.pos.heading)
                && v.is_finite()
                && h.is_finite()
            {
                x += v * h.to_radians().sin();
                y += v * h.to_radians().cos();
            }
        }
        (x != 0.0 || y != 0.0).then(|| x.atan2(y).to_degrees().rem_euclid(360.0))
    }

    fn agree(&self, now: f64, a: UserId, b: UserId) -> bool {
        let c = &self.config;
        let (Some(pa), Some(pb)) = (self.position(now, a), self.position(now, b)) else {
            return false;
        };
        if distance_m(&pa, &pb) > c.together_distance_m {
            return false;
        }
        let va = self.mean_speed(now, a, SPEED_SMOOTHING_MS).unwrap_or(0.0);
        let vb = self.mean_speed(now, b, SPEED_SMOOTHING_MS).unwrap_or(0.0);
        if (va - vb).abs() > c.together_speed_diff_mps {
            return false;
        }
        // Parked side by side is together; headings only mean something when moving.
        if va < STATIONARY_SPEED_MPS || vb < STATIONARY_SPEED_MPS {
            return true;
        }
        match (self.mean_heading(now, a), self.mean_heading(now, b)) {
            (Some(ha), Some(hb)) => angle_diff(ha, hb) <= c.together_heading_diff_deg,
            _ => true,
        }
    }

    fn update_pairs(&mut self, now: f64, live: &[UserId]) {
        let live_set: BTreeSet<UserId> = live.iter().copied().collect();
        self.pairs
            .retain(|(a, b), _| live_set.contains(a) && live_set.contains(b));
        for (i, &a) in live.iter().enumerate() {
            for &b in &live[i + 1..] {
                let raw = self.agree(now, a, b);
                let window = self.config.together_window_ms;
                let state = self.pairs.entry((a, b)).or_default();
                if raw == state.together {
                    state.pending_since = None;
                } else {
                    let since = *state.pending_since.get_or_insert(now);
                    if now - since >= window {
                        state.together = raw;
                        state.pending_since = None;
                    }
                }
            }
        }
    }

    /// Cars linked by "together" pairs, transitively: a long convoy is one group even if
    /// its head and tail are farther apart than the pair distance.
    fn components(&self, live: &[UserId]) -> Vec<Vec<UserId>> {
        let mut group_of: BTreeMap<UserId, usize> =
            live.iter().enumerate().map(|(i, u)| (*u, i)).collect();
        let mut changed = true;
        while changed {
            changed = false;
            for (&(a, b), p) in &self.pairs {
                if !p.together {
                    continue;
                }
                let (Some(&ga), Some(&gb)) = (group_of.get(&a), group_of.get(&b)) else {
                    continue;
                };
                if ga != gb {
                    let g = ga.min(gb);
                    for v in group_of.values_mut() {
                        if *v == ga || *v == gb {
                            *v = g;
                        }
                    }
                    changed = true;
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<UserId>> = BTreeMap::new();
        for (u, g) in group_of {
            groups.entry(g).or_default().push(u);
        }
        let mut out: Vec<Vec<UserId>> = groups.into_values().filter(|g| g.len() > 1).collect();
        out.sort();
        out
    }

    /// Behind: more than the set distance behind the rear of the group along the group's
    /// direction of travel. The group is the largest one travelling together (less the car
    /// judged); with no group, the other moving cars.
    fn update_behind(&mut self, now: f64, live: &[UserId]) {
        let main: Vec<UserId> = self
            .groups
            .iter()
            .max_by_key(|g| g.len())
            .cloned()
            .unwrap_or_default();
        let mut next: BTreeMap<UserId, f64> = BTreeMap::new();
        for &user in live {
            if main.contains(&user) {
                continue;
            }
            let reference: Vec<UserId> = if main.is_empty() {
                live.iter()
                    .copied()
                    .filter(|u| {
                        *u != user
                            && self
                                .mean_speed(now, *u, SPEED_SMOOTHING_MS)
                                .is_some_and(|v| v >= STATIONARY_SPEED_MPS)
                    })
                    .collect()
            } else {
                main.clone()
            };
            let Some(lag) = self.lag_behind(now, user, &reference) else {
                // No direction of travel (everyone parked): keep what was decided.
                if let Some(&m) = self.behind.get(&user) {
                    next.insert(user, m);
                }
                continue;
            };
            let limit = self.config.behind_distance_m;
            let was = self.behind.contains_key(&user);
            if lag > limit || (was && lag > limit * BEHIND_CLEAR_RATIO) {
                next.insert(user, lag);
            }
        }
        for (&user, &lag) in &next {
            if !self.behind.contains_key(&user) {
                self.events.push_back(ConvoyEvent::FallingBehind {
                    user_id: user,
                    behind_m: lag,
                });
            }
        }
        // Caught up, or no longer judged (its position went stale).
        for &user in self.behind.keys() {
            if !next.contains_key(&user) {
                self.events
                    .push_back(ConvoyEvent::CaughtUp { user_id: user });
            }
        }
        self.behind = next;
    }

    /// How far `user` is behind the rearmost of `reference` along their mean direction of
    /// travel (m; negative: ahead of it). `None` without a direction.
    fn lag_behind(&self, now: f64, user: UserId, reference: &[UserId]) -> Option<f64> {
        let (mut x, mut y) = (0.0, 0.0);
        for &r in reference {
            if let Some(h) = self.mean_heading(now, r) {
                x += h.to_radians().sin();
                y += h.to_radians().cos();
            }
        }
        if x.hypot(y) < 1e-9 {
            return None;
        }
        let (ux, uy) = (x / x.hypot(y), y / x.hypot(y));
        let me = self.position(now, user)?;
        let along = |p: &Position| {
            let (e, n) = local_xy(&me, p);
            e * ux + n * uy
        };
        let rear = reference
            .iter()
            .filter_map(|r| self.position(now, *r))
            .map(|p| along(&p))
            .reduce(f64::min)?;
        Some(rear)
    }
}

// ------------------------------------------------------------------ geodesy

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance, m.
pub fn distance_m(a: &Position, b: &Position) -> f64 {
    let (p1, p2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dp = p2 - p1;
    let dl = (b.longitude - a.longitude).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// East and north offsets of `p` from `origin`, m (flat within a few km: plenty here).
fn local_xy(origin: &Position, p: &Position) -> (f64, f64) {
    let lat0 = origin.latitude.to_radians();
    let mut dlon = p.longitude - origin.longitude;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let e = dlon.to_radians() * lat0.cos() * EARTH_RADIUS_M;
    let n = (p.latitude - origin.latitude).to_radians() * EARTH_RADIUS_M;
    (e, n)
}

fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// The sample's position moved on by its speed and heading until `now` (capped).
fn project(s: &Sample, now: f64) -> Position {
    let (Some(v), Some(h)) = (s.pos.speed, s.pos.heading) else {
        return s.pos;
    };
    let dt = ((now - s.at).clamp(0.0, PROJECT_MAX_MS)) / 1000.0;
    let d = v * dt;
    if !d.is_finite() || d <= 0.0 || !h.is_finite() {
        return s.pos;
    }
    let n = d * h.to_radians().cos();
    let e = d * h.to_radians().sin();
    let lat = s.pos.latitude + (n / EARTH_RADIUS_M).to_degrees();
    let coslat = s.pos.latitude.to_radians().cos().max(1e-6);
    let lon = s.pos.longitude + (e / (EARTH_RADIUS_M * coslat)).to_degrees();
    let lat = lat.clamp(-90.0, 90.0);
    let lon = (lon + 540.0).rem_euclid(360.0) - 180.0;
    Position {
        latitude: lat,
        longitude: lon,
        ..s.pos
    }
}

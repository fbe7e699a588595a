//! The server clock estimate: NTP-style four-timestamp exchanges over `time-sync`, filtered
//! for the fastest packets in each direction (see [`ClockFilter`]), offset and drift fitted;
//! falls back to `music-session-state`'s `server_time`, then to the seeds' rule (offset 0).
use std::collections::VecDeque;

use crate::api::{ClockEstimate, ClockSource, LocalTime, ServerTime};
use crate::constants::*;

/// One exchange, as two one-way measurements: at local `t0` the probe left and reached the
/// server at its `t1`; the ack left at server `t2` and arrived at local `t3`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    t0: f64,
    t1: f64,
    t2: f64,
    t3: f64,
}

impl Sample {
    fn rtt(&self) -> f64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }

    /// Forward: `t1 - t0` = up delay + offset, at local `t0`.
    fn forward(&self) -> Point {
        Point {
            x: self.t0,
            y: self.t1 - self.t0,
        }
    }

    /// Backward: `t3 - t2` = down delay - offset, at local `t3`.
    fn backward(&self) -> Point {
        Point {
            x: self.t3,
            y: self.t3 - self.t2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    x: f64,
    y: f64,
}

/// `offset(local) = offset + drift * (local - ref_local)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Fit {
    ref_local: f64,
    offset: f64,
    /// ms of offset per ms of local time (ppm * 1e-6).
    drift: f64,
    rtt_min: f64,
    error_bound: f64,
}

impl Fit {
    fn offset_at(&self, local: LocalTime) -> f64 {
        self.offset + self.drift * (local - self.ref_local)
    }
}

/// The samples and the estimate drawn from them.
///
/// NTP's rule keeps the exchanges with the lowest round trip: their offset error is at most
/// half the round trip's excess over the path's minimum, which needs *both* directions to
/// be fast at once. Here each direction is filtered on its own (Paxson 1998; Moon, Skelly
/// and Towsley 1999): the forward delays `t1 - t0` lie on or above the line
/// `min up + offset(t)`, the backward ones `t3 - t2` on or above `min down - offset(t)`, and
/// the lower envelope of each (the supporting line of its lower convex hull at the window's
/// middle) finds the path minimum as soon as *one* fast packet went each way. Half their
/// difference is the offset, half the difference of their slopes the drift. Like NTP, it
/// assumes equal minimum delays both ways; an asymmetric path biases it by half the
/// difference, the same for every device on such a path.
#[derive(Debug, Clone, Default)]
struct ClockFilter {
    samples: VecDeque<Sample>,
    fit: Option<Fit>,
}

impl ClockFilter {
    /// Adds an exchange; `false` if it is impossible (negative round trip, not finite).
    fn add(&mut self, t0: f64, t1: f64, t2: f64, t3: f64) -> bool {
        let s = Sample { t0, t1, t2, t3 };
        if ![t0, t1, t2, t3, s.rtt()].iter().all(|v| v.is_finite()) || s.rtt() < 0.0 || t3 < t0 {
            return false;
        }
        self.samples.push_back(s);
        while self.samples.len() > CLOCK_MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.refit(t3);
        true
    }

    fn refit(&mut self, now: LocalTime) {
        while self
            .samples
            .front()
            .is_some_and(|s| s.t3 < now - CLOCK_WINDOW_MS)
        {
            self.samples.pop_front();
        }
        let Some(rtt_min) = self.samples.iter().map(Sample::rtt).reduce(f64::min) else {
            self.fit = None;
            return;
        };
        let forward: Vec<Point> = self.samples.iter().map(Sample::forward).collect();
        let backward: Vec<Point> = self.samples.iter().map(Sample::backward).collect();
        let span = match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) => b.t3 - a.t0,
            _ => 0.0,
        };
        // A slope is trusted once the floor is sharp against the hull edge it comes from: its
        // error is about the floor's noise (how far the next-lowest points sit above the
        // envelope) over the edge's length. On a LAN that takes seconds, on LTE a minute.
        let enveloped = (span >= CLOCK_DRIFT_MIN_SPAN_MS)
            .then(|| Some((envelope(&forward)?, envelope(&backward)?)))
            .flatten()
            .filter(|(f, b)| {
                let drift = (f.slope - b.slope) / 2.0;
                let stderr = f.slope_error().hypot(b.slope_error()) / 2.0;
                // The floors are constant, so the two slopes must be opposite: what they fail
                // to cancel is noise in one of them.
                let disagreement = (f.slope + b.slope).abs() / 2.0;
                let limit = MAX_DRIFT_STDERR_PPM * 1e-6;
                drift.abs() <= MAX_DRIFT_PPM * 1e-6 && stderr <= limit && disagreement <= limit
            });
        let (offset, drift) = match enveloped {
            Some((f, b)) => ((f.at(now) - b.at(now)) / 2.0, (f.slope - b.slope) / 2.0),
            None => {
                // No trusted slope yet: the recent minima, carried to `now` with the last drift
                // (0 at first).
                let drift = self.fit.map(|f| f.drift).unwrap_or(0.0);
                let low = |pts: &[Point], sign: f64| {
                    pts.iter()
                        .filter(|p| p.x >= now - CLOCK_FLAT_WINDOW_MS)
                        .map(|p| p.y + sign * drift * (now - p.x))
                        .fold(f64::INFINITY, f64::min)
                };
                ((low(&forward, 1.0) - low(&backward, -1.0)) / 2.0, drift)
            }
        };
        self.fit = offset.is_finite().then_some(Fit {
            ref_local: now,
            offset,
            drift,
            rtt_min,
            error_bound: rtt_min / 2.0,
        });
    }
}

/// A line under a cloud of one-way delays, and how sharp the cloud's floor is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Envelope {
    x0: f64,
    y0: f64,
    slope: f64,
    /// How far above the line the third-lowest point sits (the two hull points touch it).
    noise: f64,
    /// Length (ms) of the hull edge the line comes from.
    edge: f64,
}

impl Envelope {
    fn slope_error(&self) -> f64 {
        self.noise / self.edge
    }

    fn at(&self, x: f64) -> f64 {
        self.y0 + self.slope * (x - self.x0)
    }
}

/// The lower envelope of `points`: the supporting line of their lower convex hull at the
/// middle of their time span (the line below every point that is closest to them on
/// average, Moon et al.'s linear program).
fn envelope(points: &[Point]) -> Option<Envelope> {
    let mut pts: Vec<Point> = points.to_vec();
    pts.sort_by(|a, b| a.x.total_cmp(&b.x));
    let mut hull: Vec<Point> = Vec::with_capacity(pts.len());
    for p in &pts {
        while let [.., a, b] = hull[..] {
            // Keep only left turns (counter-clockwise): the lower hull.
            let cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
            if cross <= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(*p);
    }
    let (first, last) = (hull.first()?, hull.last()?);
    let mid = (first.x + last.x) / 2.0;
    let edge = hull
        .windows(2)
        .find(|w| w[0].x <= mid && mid <= w[1].x && w[1].x > w[0].x)?;
    let (a, b) = (edge[0], edge[1]);
    let slope = (b.y - a.y) / (b.x - a.x);
    let line = |x: f64| a.y + slope * (x - a.x);
    let mut above: Vec<f64> = pts.iter().map(|p| p.y - line(p.x)).collect();
    above.sort_by(f64::total_cmp);
    let noise = above
        .get(2)
        .or(above.last())
        .copied()
        .unwrap_or(0.0)
        .max(0.0);
    slope.is_finite().then_some(Envelope {
        x0: a.x,
        y0: a.y,
        slope,
        noise,
        edge: b.x - a.x,
    })
}

/// Probing the server and the estimate that results.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClockSync {
    filter: ClockFilter,
    /// `server_time - arrival` of the last `music-session-state` (one-shot).
    one_shot: Option<f64>,
    connected: bool,
    /// Probes awaiting an ack: (t0, deadline).
    outstanding: Vec<(LocalTime, LocalTime)>,
    /// Recently sent probes: a late ack is still a good (if slow) sample.
    sent: VecDeque<LocalTime>,
    burst_left: u32,
    next_probe: Option<LocalTime>,
    failures: u32,
    ever_replied: bool,
    gave_up: bool,
    samples: u64,
}

/// How many sent probes are remembered for late acks (a whole burst).
const SENT_MEMORY: usize = 64;

impl ClockSync {
    pub fn on_connected(&mut self, now: LocalTime) {
        self.connected = true;
        self.outstanding.clear();
        self.burst_left = TIME_SYNC_BURST;
        self.next_probe = Some(now);
    }

    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.outstanding.clear();
        self.next_probe = None;
    }

    /// A probe to send now, if one is due. During the burst on connect, probes go out as
    /// soon as the previous one is answered or [`TIME_SYNC_BURST_SPACING_MS`] after it,
    /// whichever comes first (Snapcast pipelines its burst too); then one per interval.
    pub fn poll_probe(&mut self, now: LocalTime) -> Option<LocalTime> {
        let expired: Vec<LocalTime> = self
            .outstanding
            .iter()
            .filter(|(_, deadline)| now >= *deadline)
            .map(|(t0, _)| *t0)
            .collect();
        for t0 in expired {
            self.on_failed(t0, now);
        }
        if !self.connected
            || self.outstanding.len() >= MAX_OUTSTANDING_PROBES
            || !self.next_probe.is_some_and(|t| now >= t)
        {
            return None;
        }
        self.outstanding.push((now, now + TIME_SYNC_TIMEOUT_MS));
        self.sent.push_back(now);
        while self.sent.len() > SENT_MEMORY {
            self.sent.pop_front();
        }
        self.next_probe = Some(if self.burst_left > 0 {
            self.burst_left -= 1;
            now + TIME_SYNC_BURST_SPACING_MS
        } else if self.gave_up {
            now + TIME_SYNC_RETRY_MS
        } else {
            now + TIME_SYNC_INTERVAL_MS
        });
        Some(now)
    }

    /// An ack arrived. `true` if it became a sample.
    pub fn on_reply(&mut self, t0: f64, t1: f64, t2: f64, t3: f64) -> bool {
        if !self.sent.contains(&t0) {
            return false;
        }
        self.sent.retain(|t| *t != t0);
        self.outstanding.retain(|(o, _)| *o != t0);
        let accepted = self.filter.add(t0, t1, t2, t3);
        if accepted {
            self.samples += 1;
            self.ever_replied = true;
            self.gave_up = false;
            self.failures = 0;
        }
        if self.connected && self.burst_left > 0 && t3.is_finite() {
            self.next_probe = Some(self.next_probe.map_or(t3, |t| t.min(t3)));
        }
        accepted
    }

    /// A probe got no ack.
    pub fn on_failed(&mut self, t0: f64, now: LocalTime) {
        let before = self.outstanding.len();
        self.outstanding.retain(|(o, _)| *o != t0);
        if self.outstanding.len() == before {
            return;
        }
        self.failures += 1;
        if !self.ever_replied && self.failures >= TIME_SYNC_GIVE_UP_AFTER && !self.gave_up {
            self.gave_up = true;
            self.burst_left = 0;
            self.outstanding.clear();
            self.next_probe = Some(now + TIME_SYNC_RETRY_MS);
        }
    }

    /// Probes in a row that got no ack (since the last accepted one), and whether any ever
    /// did (a server without the extension never answers: that says nothing of the link).
    pub fn missed_in_a_row(&self) -> Option<u32> {
        self.ever_replied.then_some(self.failures)
    }

    pub fn next_timeout(&self) -> Option<LocalTime> {
        self.outstanding
            .iter()
            .map(|(_, d)| *d)
            // With every slot taken, the next probe waits for an ack or a deadline.
            .chain(
                self.next_probe
                    .filter(|_| self.connected && self.outstanding.len() < MAX_OUTSTANDING_PROBES),
            )
            .reduce(f64::min)
    }

    /// Records `server_time` of a `music-session-state` that arrived at `now`.
    pub fn on_session_state(&mut self, server_time: ServerTime, now: LocalTime) {
        if server_time.is_finite() {
            self.one_shot = Some(server_time - now);
        }
    }

    /// Where the estimate comes from.
    pub fn source(&self) -> ClockSource {
        if self.filter.fit.is_some() {
            ClockSource::TimeSync
        } else if self.one_shot.is_some() {
            ClockSource::SessionState
        } else {
            ClockSource::SeedsRule
        }
    }

    /// Whether the time-sync estimate stands on enough exchanges (whatever the link).
    pub fn settled(&self) -> bool {
        self.filter.fit.is_some() && self.samples >= CLOCK_READY_SAMPLES
    }

    /// Whether a joiner may start: a time-sync estimate from a few exchanges, or no hope of
    /// one (the server lacks the extension, or we are offline).
    pub fn ready(&self) -> bool {
        (self.filter.fit.is_some() && self.samples >= CLOCK_READY_SAMPLES)
            || self.gave_up
            || !self.connected
    }

    /// Server minus local clock at local instant `local`, ms.
    pub fn offset_at(&self, local: LocalTime) -> f64 {
        match (self.filter.fit, self.one_shot) {
            (Some(f), _) => f.offset_at(local),
            (None, Some(o)) => o,
            (None, None) => 0.0,
        }
    }

    pub fn to_server(&self, local: LocalTime) -> ServerTime {
        local + self.offset_at(local)
    }

    pub fn to_local(&self, server: ServerTime) -> LocalTime {
        // offset varies by ppm: one fixed-point step is exact to well under a nanosecond.
        let guess = server - self.offset_at(server);
        server - self.offset_at(guess)
    }

    /// Rate of the server clock against ours, ppm.
    pub fn drift_ppm(&self) -> f64 {
        self.filter.fit.map(|f| f.drift * 1e6).unwrap_or(0.0)
    }

    pub fn min_rtt(&self) -> Option<f64> {
        self.filter.fit.map(|f| f.rtt_min)
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn estimate(&self, now: LocalTime) -> ClockEstimate {
        ClockEstimate {
            offset_ms: self.offset_at(now),
            drift_ppm: self.drift_ppm(),
            rtt_ms: self.filter.fit.map(|f| f.rtt_min),
            error_bound_ms: self.filter.fit.map(|f| f.error_bound),
            source: self.source(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server `offset` ms ahead, drifting `ppm`, `up`/`down` ms away.
    fn exchange(c: &mut ClockSync, t0: f64, offset: f64, ppm: f64, up: f64, down: f64) {
        let srv = |local: f64| local + offset + ppm * 1e-6 * local;
        let t1 = srv(t0 + up);
        let t3 = t0 + up + down;
        c.sent.push_back(t0);
        c.on_reply(t0, t1, t1, t3);
    }

    #[test]
    fn symmetric_exchanges_give_the_offset() {
        let mut c = ClockSync::default();
        for i in 0..10 {
            exchange(&mut c, 1_000.0 * f64::from(i), 1_234.5, 0.0, 5.0, 5.0);
        }
        assert!((c.offset_at(10_000.0) - 1_234.5).abs() < 1e-6);
        assert_eq!(c.source(), ClockSource::TimeSync);
    }

    #[test]
    fn lowest_round_trips_win_over_slow_asymmetric_ones() {
        let mut c = ClockSync::default();
        for i in 0..40 {
            let slow = i % 4 != 0;
            let (up, down) = if slow { (80.0, 20.0) } else { (10.0, 10.0) };
            exchange(&mut c, 1_000.0 * f64::from(i), -500.0, 0.0, up, down);
        }
        assert!(
            (c.offset_at(40_000.0) + 500.0).abs() < 1.0,
            "{}",
            c.offset_at(40_000.0)
        );
    }

    #[test]
    fn drift_is_fitted_and_extrapolated() {
        let mut c = ClockSync::default();
        for i in 0..60 {
            exchange(&mut c, 1_000.0 * f64::from(i), 100.0, 80.0, 2.0, 2.0);
        }
        assert!((c.drift_ppm() - 80.0).abs() < 1.0, "{}", c.drift_ppm());
        let want = 100.0 + 80e-6 * 65_000.0;
        assert!((c.offset_at(65_000.0) - want).abs() < 0.05);
    }

    #[test]
    fn unknown_or_impossible_replies_are_ignored() {
        let mut c = ClockSync::default();
        assert!(!c.on_reply(5.0, 1.0, 1.0, 6.0));
        c.sent.push_back(5.0);
        assert!(!c.on_reply(5.0, 100.0, 200.0, 6.0));
        assert_eq!(c.source(), ClockSource::SeedsRule);
    }
}

//! What an operator watches (`GET /metrics`, Prometheus text format 0.0.4): open sockets,
//! live sessions, socket events handled and how long each took (the relay path: checks,
//! storage, emit to the room), and the database pool. Plain atomics: a handler pays a few
//! relaxed increments, never a lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the event-handling histogram, seconds.
const HANDLE_BUCKETS_S: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    sockets: AtomicI64,
    events: AtomicU64,
    refused: AtomicU64,
    /// Per bucket of [`HANDLE_BUCKETS_S`], then one for everything slower.
    handled: [AtomicU64; HANDLE_BUCKETS_S.len() + 1],
    handled_sum_us: AtomicU64,
}

/// Figures read at scrape time from elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub live_sessions: usize,
    pub db_connections: u32,
    pub db_idle: usize,
}

impl Metrics {
    pub fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn socket_closed(&self) {
        self.sockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// A socket event was handled in `took` (`refused`: answered with `music-error`).
    pub fn event_handled(&self, took: Duration, refused: bool) {
        self.events.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        let s = took.as_secs_f64();
        let bucket = HANDLE_BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(HANDLE_BUCKETS_S.len());
        self.handled[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.handled_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "jamz_sockets",
            "gauge",
            "Open Socket.IO connections.",
            self.sockets.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "jamz_live_sessions",
            "gauge",
            "Sessions with playback state in this process.",
            g.live_sessions.to_string(),
        );
        metric(
            "jamz_socket_events_total",
            "counter",
            "Socket events handled.",
            self.events.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "jamz_socket_events_refused_total",
            "counter",
            "Socket events answered with music-error.",
            self.refused.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "jamz_db_connections",
            "gauge",
            "Database pool connections open.",
            g.db_connections.to_string(),
        );
        metric(
            "jamz_db_connections_idle",
            "gauge",
            "Database pool connections idle.",
            g.db_idle.to_string(),
        );
        let name = "jamz_socket_event_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to handle a socket event (checks, storage, relay to the room).\n# TYPE {name} histogram"
        );
        let mut cumulative = 0u64;
        for (i, n) in self.handled.iter().enumerate() {
            cumulative += n.load(Ordering::Relaxed);
            let le = HANDLE_BUCKETS_S
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum_s = self.handled_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum_s}\n{name}_count {cumulative}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_event() {
        let m = Metrics::default();
        m.socket_opened();
        m.socket_opened();
        m.socket_closed();
        m.event_handled(Duration::from_micros(300), false);
        m.event_handled(Duration::from_millis(3), true);
        m.event_handled(Duration::from_secs(2), false);
        let text = m.render(Gauges {
            live_sessions: 4,
            db_connections: 2,
            db_idle: 1,
        });
        for line in [
            "jamz_sockets 1",
            "jamz_live_sessions 4",
            "jamz_socket_events_total 3",
            "jamz_socket_events_refused_total 1",
            "jamz_socket_event_seconds_bucket{le=\"0.0005\"} 1",
            "jamz_socket_event_seconds_bucket{le=\"0.0025\"} 1",
            "jamz_socket_event_seconds_bucket{le=\"0.005\"} 2",
            "jamz_socket_event_seconds_bucket{le=\"1\"} 2",
            "jamz_socket_event_seconds_bucket{le=\"+Inf\"} 3",
            "jamz_socket_event_seconds_count 3",
            "jamz_db_connections 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}

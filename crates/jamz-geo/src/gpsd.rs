//! gpsd over its JSON protocol: TCP (port 2947), `?WATCH={"enable":true,"json":true}`,
//! one report per line; `TPV` reports carry the fixes.
//!
//! Reports are read into a small struct of the fields used rather than `gpsd_proto`'s
//! types: a report of a class that crate does not know, or with a field of an unexpected
//! type, then costs one skipped report instead of an error for the whole line set.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, sleep_until, timeout};

use crate::filter::{FixFilter, SkipCounts, SkipReason};
use crate::fix::{Fix, parse_utc_ms};
use crate::nmea::MAX_LINE_BYTES;
use crate::source::{
    Backoff, EventFuture, Gate, GeoError, LocationSource, SourceEvent, SourceStatus,
    read_line_capped,
};

/// gpsd's registered port.
pub const DEFAULT_PORT: u16 = 2947;

/// The command that makes gpsd stream JSON reports.
pub const WATCH: &str = "?WATCH={\"enable\":true,\"json\":true}\n";

/// A connection attempt that takes longer than this has failed: gpsd answers at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// First wait before reconnecting: gpsd restarting (a package upgrade, a receiver
/// replugged) is back within a second or two.
pub const RECONNECT_MIN: Duration = Duration::from_millis(250);

/// Longest wait between reconnection attempts: a car's position should resume within
/// seconds of gpsd returning, and a local connect attempt costs nothing.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What a report line gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Fix(Fix),
    Skip(SkipReason),
    /// A report of another class (VERSION, DEVICES, WATCH, SKY, ...).
    Other,
}

#[derive(Deserialize)]
struct Raw {
    class: String,
    #[serde(default)]
    mode: Option<u8>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    speed: Option<f64>,
    #[serde(default)]
    track: Option<f64>,
    #[serde(default)]
    eph: Option<f64>,
    #[serde(default)]
    epx: Option<f64>,
    #[serde(default)]
    epy: Option<f64>,
    #[serde(default, rename = "altMSL")]
    alt_msl: Option<f64>,
    #[serde(default)]
    alt: Option<f64>,
}

/// Decodes one gpsd report line. Sans-IO.
pub fn decode_report(line: &str) -> Report {
    let line = line.trim();
    if line.is_empty() {
        return Report::Other;
    }
    let Ok(raw) = serde_json::from_str::<Raw>(line) else {
        return Report::Skip(SkipReason::BadReport);
    };
    if raw.class != "TPV" {
        return Report::Other;
    }
    // Mode 0/1: no fix yet; 2: 2D; 3: 3D.
    if raw.mode.unwrap_or(0) < 2 {
        return Report::Skip(SkipReason::NoFix);
    }
    let (Some(lat), Some(lon)) = (raw.lat, raw.lon) else {
        return Report::Skip(SkipReason::NoFix);
    };
    let Some(time) = raw.time.as_deref() else {
        return Report::Skip(SkipReason::NoTime);
    };
    let Some(timestamp) = parse_utc_ms(time) else {
        return Report::Skip(SkipReason::BadReport);
    };
    let accuracy = raw.eph.or(match (raw.epx, raw.epy) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    });
    Report::Fix(Fix {
        latitude: lat,
        longitude: lon,
        accuracy,
        speed: raw.speed,
        heading: raw.track,
        altitude: raw.alt_msl.or(raw.alt),
        timestamp,
    })
}

/// Fixes from a gpsd daemon; reconnects with capped backoff when it goes away.
pub struct GpsdSource {
    host: String,
    port: u16,
    conn: Option<BufReader<OwnedReadHalf>>,
    /// Keeps the write half (and so the watch) open.
    _writer: Option<tokio::net::tcp::OwnedWriteHalf>,
    retry_at: Option<Instant>,
    backoff: Backoff,
    gate: Gate,
    buf: Vec<u8>,
}

impl GpsdSource {
    /// A source for gpsd at `host:port`; it connects on the first [`LocationSource::next_event`].
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        GpsdSource {
            host: host.into(),
            port,
            conn: None,
            _writer: None,
            retry_at: None,
            backoff: Backoff::new(RECONNECT_MIN, RECONNECT_MAX),
            gate: Gate::default(),
            buf: Vec::new(),
        }
    }

    /// Waits between reconnection attempts: from `min`, doubling, up to `max`.
    pub fn with_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(min, max);
        self
    }

    async fn connect(&mut self) -> Result<(), String> {
        let addr = (self.host.as_str(), self.port);
        let stream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
            Err(_) => return Err("connection attempt timed out".into()),
        };
        let (read, mut write) = stream.into_split();
        write
            .write_all(WATCH.as_bytes())
            .await
            .map_err(|e| format!("cannot send WATCH: {e}"))?;
        self.conn = Some(BufReader::new(read));
        self._writer = Some(write);
        Ok(())
    }

    fn drop_connection(&mut self, reason: String) -> SourceEvent {
        self.conn = None;
        self._writer = None;
        let retry_in = self.backoff.step();
        self.retry_at = Some(Instant::now() + retry_in);
        tracing::debug!(host = %self.host, port = self.port, %reason, ?retry_in, "gpsd link down");
        SourceEvent::Status(SourceStatus::Disconnected { reason, retry_in })
    }

    async fn next(&mut self) -> SourceEvent {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                if let Some(at) = self.retry_at.take() {
                    sleep_until(at).await;
                }
                return match self.connect().await {
                    Ok(()) => {
                        // A restarted daemon or another receiver may run on another
                        // clock: judge its fixes afresh.
                        self.gate.filter = FixFilter::new();
                        SourceEvent::Status(SourceStatus::Connected {
                            detail: format!("gpsd at {}:{}", self.host, self.port),
                        })
                    }
                    Err(reason) => self.drop_connection(reason),
                };
            };
            match read_line_capped(conn, &mut self.buf, MAX_LINE_BYTES).await {
                Ok(Some(Ok(line))) => match decode_report(&line) {
                    Report::Fix(fix) => {
                        // A report after (re)connecting means gpsd really serves us.
                        self.backoff.reset();
                        return self.gate.pass(fix);
                    }
                    Report::Skip(reason) => return self.gate.skip(reason),
                    Report::Other => self.backoff.reset(),
                },
                Ok(Some(Err(()))) => return self.gate.skip(SkipReason::BadReport),
                Ok(None) => return self.drop_connection("gpsd closed the connection".into()),
                Err(e) => return self.drop_connection(format!("read failed: {e}")),
            }
        }
    }
}

impl LocationSource for GpsdSource {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(async move { Ok::<_, GeoError>(self.next().await) })
    }

    fn counts(&self) -> SkipCounts {
        self.gate.counts
    }

    fn describe(&self) -> String {
        format!("gpsd:{}:{}", self.host, self.port)
    }
}

/// Whether gpsd answers at `host:port` within `wait` (it greets with a VERSION report).
pub async fn gpsd_answers(host: &str, port: u16, wait: Duration) -> bool {
    let probe = async {
        let stream = TcpStream::connect((host, port)).await.ok()?;
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        let line = read_line_capped(&mut r, &mut buf, MAX_LINE_BYTES)
            .await
            .ok()??
            .ok()?;
        line.contains("\"VERSION\"").then_some(())
    };
    matches!(timeout(wait, probe).await, Ok(Some(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpv_reports_decode() {
        let tpv = r#"{"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2026-12-01T21:11:05.000Z","ept":0.005,"lat":48.137154,"lon":11.575490,"altMSL":519.0,"epx":3.1,"epy":4.2,"track":87.5,"speed":20.1}"#;
        let Report::Fix(f) = decode_report(tpv) else {
            panic!("not a fix")
        };
        assert_eq!((f.latitude, f.longitude), (48.137154, 11.575490));
        assert_eq!(f.timestamp, 1_796_159_465_000.0);
        assert_eq!(
            (f.speed, f.heading, f.accuracy),
            (Some(20.1), Some(87.5), Some(4.2))
        );
        assert_eq!(f.altitude, Some(519.0));
    }

    #[test]
    fn other_and_bad_reports() {
        assert_eq!(
            decode_report(r#"{"class":"VERSION","release":"3.22"}"#),
            Report::Other
        );
        assert_eq!(
            decode_report(r#"{"class":"TPV","mode":1,"time":"2026-12-01T21:11:05Z"}"#),
            Report::Skip(SkipReason::NoFix)
        );
        assert_eq!(
            decode_report(r#"{"class":"TPV","mode":3,"lat":1.0,"lon":2.0}"#),
            Report::Skip(SkipReason::NoTime)
        );
        for bad in [
            r#"{"class":"TPV","mode":"x"}"#,
            "{\"class\":",
            "[]",
            "nonsense",
        ] {
            assert_eq!(
                decode_report(bad),
                Report::Skip(SkipReason::BadReport),
                "{bad}"
            );
        }
    }
}

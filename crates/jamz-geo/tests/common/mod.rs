//! Synthetic drives for the source tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jamz_geo::fix::{bearing_deg, destination};
use jamz_geo::{Fix, LocationSource, SourceEvent};

/// 2026-12-01T21:11:05Z.
pub const T0: f64 = 1_796_159_465_000.0;

/// One fix a second along `legs` (bearing in degrees, length in m) at `speed` m/s.
pub fn drive(start: (f64, f64), legs: &[(f64, f64)], speed: f64, t0: f64) -> Vec<Fix> {
    let mut fixes = Vec::new();
    let (mut lat, mut lon) = start;
    let mut t = t0;
    for &(bearing, length) in legs {
        let steps = (length / speed).round() as usize;
        for _ in 0..steps {
            let (nlat, nlon) = destination(lat, lon, bearing, speed);
            let mut f = Fix::at(lat, lon, t);
            f.speed = Some(speed);
            f.heading = Some(bearing_deg(lat, lon, nlat, nlon));
            f.accuracy = Some(5.0);
            f.altitude = Some(519.0);
            fixes.push(f);
            (lat, lon) = (nlat, nlon);
            t += 1000.0;
        }
    }
    fixes
}

/// A city drive: 600 m north, 400 m east, 500 m south-east, at 15 m/s.
pub fn city_drive() -> Vec<Fix> {
    drive(
        (48.137, 11.575),
        &[(0.0, 600.0), (90.0, 400.0), (135.0, 500.0)],
        15.0,
        T0,
    )
}

/// The drive as an NMEA log (RMC + GGA a fix, CRLF line ends, correct checksums).
#[allow(unused_imports)] // not every test binary writes a log
pub use jamz_geo::nmea::log_of as nmea_log;

/// Whether `got` is `want` as a receiver would report it (positions to ~0.2 m: NMEA
/// carries 1e-5 minutes).
pub fn same_fix(got: &Fix, want: &Fix) -> bool {
    got.timestamp == want.timestamp && got.distance_to(want) < 0.2
}

/// Every event until the source ends (or `limit` events, as a guard).
pub async fn drain(source: &mut dyn LocationSource, limit: usize) -> Vec<SourceEvent> {
    let mut events = Vec::new();
    for _ in 0..limit {
        let ev = source.next_event().await.expect("source error");
        let end = ev == SourceEvent::Ended;
        events.push(ev);
        if end {
            break;
        }
    }
    events
}

pub fn fixes_of(events: &[SourceEvent]) -> Vec<Fix> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Fix(f) => Some(*f),
            _ => None,
        })
        .collect()
}

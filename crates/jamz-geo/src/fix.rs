//! A position fix, the distances between fixes, and UTC times as Unix milliseconds.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (IUGG), m: the haversine distance is within 0.5 % of the ellipsoid's,
/// far below what convoy decisions or jump filtering need.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// One position report from a source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// Degrees, WGS 84.
    pub latitude: f64,
    /// Degrees, WGS 84.
    pub longitude: f64,
    /// Horizontal accuracy estimate, m.
    pub accuracy: Option<f64>,
    /// Ground speed, m/s.
    pub speed: Option<f64>,
    /// Course over ground, degrees clockwise from true north, `[0, 360)`.
    pub heading: Option<f64>,
    /// Altitude above mean sea level, m.
    pub altitude: Option<f64>,
    /// When the position was measured, ms since the Unix epoch, on the receiver's
    /// clock (GNSS time for gpsd and NMEA, the file's time for a replay).
    pub timestamp: f64,
}

impl Fix {
    /// A fix with only a position and a time.
    pub fn at(latitude: f64, longitude: f64, timestamp: f64) -> Self {
        Fix {
            latitude,
            longitude,
            accuracy: None,
            speed: None,
            heading: None,
            altitude: None,
            timestamp,
        }
    }

    /// Great-circle distance to `other`, m.
    pub fn distance_to(&self, other: &Fix) -> f64 {
        distance_m(
            self.latitude,
            self.longitude,
            other.latitude,
            other.longitude,
        )
    }
}

/// Great-circle (haversine) distance between two points in degrees, m.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Initial bearing from the first point to the second, degrees in `[0, 360)`.
pub fn bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

/// The point `distance` m from a start along `bearing` degrees.
pub fn destination(lat: f64, lon: f64, bearing: f64, distance: f64) -> (f64, f64) {
    let d = distance / EARTH_RADIUS_M;
    let (p1, l1, b) = (lat.to_radians(), lon.to_radians(), bearing.to_radians());
    let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * b.cos()).asin();
    let l2 = l1 + (b.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
    let lon2 = (l2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
    (p2.to_degrees(), lon2)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01: (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 / ISO 8601 UTC time as gpsd and GPX write it
/// (`2026-12-01T21:11:05.250Z`, or with a `+hh:mm` offset) into Unix ms.
pub fn parse_utc_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || !s.is_ascii() || b[4] != b'-' || b[7] != b'-' || b[13] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // 60 is a leap second: count it as the next second's start.
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac_ms = format!("0.{}", &r[..digits]).parse::<f64>().ok()? * 1000.0;
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" | "" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let hh: i64 = o[1..3].parse().ok()?;
            let mm: i64 = o[4..6].parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (hh * 60 + mm)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs as f64 * 1000.0 + frac_ms)
}

/// Formats Unix ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_utc_ms(ms: f64) -> String {
    let total_ms = ms.round() as i64;
    let secs = total_ms.div_euclid(1000);
    let milli = total_ms.rem_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_degree_of_latitude_is_about_111_km() {
        let d = distance_m(48.0, 11.0, 49.0, 11.0);
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        assert_eq!(distance_m(48.0, 11.0, 48.0, 11.0), 0.0);
    }

    #[test]
    fn bearings_point_the_right_way() {
        assert!((bearing_deg(48.0, 11.0, 49.0, 11.0) - 0.0).abs() < 1e-9);
        assert!((bearing_deg(48.0, 11.0, 48.0, 12.0) - 90.0).abs() < 0.5);
        assert!((bearing_deg(48.0, 11.0, 47.0, 11.0) - 180.0).abs() < 1e-9);
        let (lat, lon) = destination(48.0, 11.0, 90.0, 1000.0);
        assert!((distance_m(48.0, 11.0, lat, lon) - 1000.0).abs() < 0.01);
        assert!((bearing_deg(48.0, 11.0, lat, lon) - 90.0).abs() < 0.01);
    }

    #[test]
    fn utc_times_round_trip() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_utc_ms("2026-12-01T21:11:05.250Z"),
            Some(1_796_159_465_250.0)
        );
        assert_eq!(
            parse_utc_ms("2026-12-01T23:11:05+02:00"),
            Some(1_796_159_465_000.0)
        );
        assert_eq!(
            format_utc_ms(1_796_159_465_250.0),
            "2026-12-01T21:11:05.250Z"
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-01T21:11",
            "2026-12-01X21:11:05Z",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
        for days in [-1000, 0, 59, 60, 365, 20_000, 20_789] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

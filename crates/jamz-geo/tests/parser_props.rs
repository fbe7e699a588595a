//! Arbitrary input never panics a parser, and what passes the filter is plausible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use jamz_geo::fix::parse_utc_ms;
use jamz_geo::gpsd::decode_report;
use jamz_geo::gpx::decode_gpx;
use jamz_geo::nmea::{Decoded, NmeaDecoder, fix_sentences, sentence};
use jamz_geo::{Fix, FixFilter, LocationSpec, MAX_PLAUSIBLE_SPEED_MPS};
use proptest::prelude::*;

/// Lines that look like NMEA: a known header, then fields of digits, letters and commas,
/// sometimes with a right checksum, so the parser gets past its first checks.
fn nmea_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GPRMC", "GPGGA", "GNRMC", "GNGGA", "GPGSV", "XXRMC"]),
        "[0-9A-Z.,*-]{0,90}",
        any::<bool>(),
    )
        .prop_map(|(head, body, checked)| {
            let body = format!("{head},{body}");
            if checked {
                sentence(&body)
            } else {
                format!("${body}")
            }
        })
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(2000))]

    #[test]
    fn nmea_lines_never_panic(lines in prop::collection::vec(
        prop_oneof![any::<String>(), nmea_like(), "\\PC{0,200}"], 0..40)) {
        let mut d = NmeaDecoder::new();
        let mut out = Vec::new();
        for l in &lines {
            d.push_line(l, &mut out);
        }
        d.finish(&mut out);
        prop_assert!(out.len() <= lines.len() * 2 + 1);
    }

    #[test]
    fn gpsd_reports_never_panic(line in prop_oneof![
        any::<String>(),
        "\\{\"class\":\"TPV\",\"mode\":[0-9],\"time\":\"[0-9TZ:.-]{0,30}\",\"lat\":-?[0-9.e]{1,12},\"lon\":-?[0-9.e]{1,12}\\}",
    ]) {
        let _ = decode_report(&line);
    }

    #[test]
    fn gpx_never_panics(text in prop_oneof![
        any::<String>(),
        "(<trkpt( lat=\"-?[0-9.]{0,8}\")?( lon='-?[0-9.]{0,8}')?/?>(<time>[0-9TZ:-]{0,24}</time>)?(</trkpt>)?){0,6}",
    ]) {
        let _ = decode_gpx(&text);
    }

    #[test]
    fn times_and_specs_never_panic(s in any::<String>(), t in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,14}[Z+:0-9-]{0,6}") {
        let _ = parse_utc_ms(&s);
        let _ = parse_utc_ms(&t);
        let _ = s.parse::<LocationSpec>();
        for kind in ["gpsd:", "nmea:", "replay:"] {
            if let Ok(spec) = format!("{kind}{s}").parse::<LocationSpec>() {
                // What parses prints as something that parses to the same.
                prop_assert_eq!(spec.to_string().parse::<LocationSpec>().ok(), Some(spec));
            }
        }
    }

    #[test]
    fn written_fixes_read_back(lat in -89.9f64..89.9, lon in -179.9f64..179.9,
                               // NMEA dates have two-digit years; the nmea crate reads 00..=69 as 20xx.
                               t in 9.5e11f64..3.1e12, speed in 0f64..80.0, heading in 0f64..359.9) {
        let t = (t / 10.0).round() * 10.0;
        let mut fix = Fix::at(lat, lon, t);
        fix.speed = Some(speed);
        fix.heading = Some(heading);
        let mut d = NmeaDecoder::new();
        let mut out = Vec::new();
        for l in fix_sentences(&fix, 7) {
            d.push_line(&l, &mut out);
        }
        prop_assert_eq!(out.len(), 1);
        let Decoded::Fix(g) = out[0] else { return Err(TestCaseError::fail("no fix")) };
        prop_assert!(g.distance_to(&fix) < 0.2, "{:?} vs {:?}", g, fix);
        prop_assert_eq!(g.timestamp, t);
    }

    #[test]
    fn the_filter_passes_only_plausible_tracks(
        steps in prop::collection::vec((-0.01f64..0.01, -0.01f64..0.01, -2000f64..3000.0), 1..60),
        seed_lat in -80f64..80.0, seed_lon in -170f64..170.0,
    ) {
        let mut filter = FixFilter::new();
        let (mut lat, mut lon, mut t) = (seed_lat, seed_lon, 0.0);
        let mut kept: Vec<Fix> = Vec::new();
        let mut in_row = 0;
        for (dlat, dlon, dt) in steps {
            lat += dlat;
            lon += dlon;
            t += dt;
            match filter.check(Fix::at(lat, lon, t)) {
                Ok(f) => {
                    if let Some(prev) = kept.last() {
                        prop_assert!(f.timestamp > prev.timestamp);
                        let v = f.distance_to(prev) / ((f.timestamp - prev.timestamp) / 1000.0);
                        // Only a reset after repeated jumps may exceed the limit.
                        prop_assert!(v <= MAX_PLAUSIBLE_SPEED_MPS || in_row >= 2, "{} m/s", v);
                    }
                    kept.push(f);
                    in_row = 0;
                }
                Err(jamz_geo::SkipReason::Jump) => in_row += 1,
                Err(_) => {}
            }
        }
    }
}

//! GPX track points (`<trkpt lat=".." lon=".."><ele/><time/></trkpt>`) to fixes, sans-IO.
//!
//! A small scanner rather than an XML crate: a track point needs two attributes and two
//! child texts, and a logger that lost power leaves a truncated file whose complete points
//! should still replay, where a strict parser would refuse the whole document.

use crate::filter::SkipReason;
use crate::fix::{Fix, bearing_deg, parse_utc_ms};
use crate::nmea::Decoded;

/// The track points of a GPX document, in order. Points without a time or with bad
/// coordinates come out as skips; speed and heading, which GPX 1.1 does not carry, are
/// derived from the neighbouring points.
pub fn decode_gpx(text: &str) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find_tag(rest, "trkpt") {
        let after = &rest[start..];
        let Some(tag_end) = after.find('>') else {
            out.push(Decoded::Skip(SkipReason::Malformed));
            break;
        };
        let tag = &after[..tag_end];
        let self_closing = tag.ends_with('/');
        let (body, consumed) = if self_closing {
            ("", tag_end + 1)
        } else {
            match after.find("</trkpt>") {
                Some(close) => (&after[tag_end + 1..close], close + "</trkpt>".len()),
                None => {
                    // Truncated inside the last point: it has no reliable data.
                    out.push(Decoded::Skip(SkipReason::Malformed));
                    break;
                }
            }
        };
        rest = &after[consumed..];
        out.push(point(tag, body));
    }
    derive_motion(&mut out);
    out
}

fn point(tag: &str, body: &str) -> Decoded {
    let num = |name: &str| attribute(tag, name).and_then(|v| v.trim().parse::<f64>().ok());
    let (Some(lat), Some(lon)) = (num("lat"), num("lon")) else {
        return Decoded::Skip(SkipReason::Malformed);
    };
    let Some(time) = child_text(body, "time") else {
        return Decoded::Skip(SkipReason::NoTime);
    };
    let Some(timestamp) = parse_utc_ms(time) else {
        return Decoded::Skip(SkipReason::NoTime);
    };
    let mut fix = Fix::at(lat, lon, timestamp);
    fix.altitude = child_text(body, "ele").and_then(|e| e.trim().parse().ok());
    Decoded::Fix(fix)
}

/// The byte offset of the next `<name` start tag (also `<prefix:name`).
fn find_tag(s: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find('<') {
        let at = from + i;
        let tail = &s[at + 1..];
        let local = match tail.find(|c: char| c.is_whitespace() || c == '>' || c == '/') {
            Some(end) => &tail[..end],
            None => tail,
        };
        let local = local.rsplit(':').next().unwrap_or(local);
        if local == name {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = tag[..at].ends_with(char::is_whitespace);
        let after = tag[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value = after[1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value = &value[1..];
        return value.find(quote).map(|end| &value[..end]);
    }
    None
}

fn child_text<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = find_tag(body, name)?;
    let open_end = body[start..].find('>')? + start + 1;
    let close = body[open_end..].find("</")? + open_end;
    Some(&body[open_end..close])
}

/// Speed and heading from each point's predecessor (the first point from its successor).
fn derive_motion(out: &mut [Decoded]) {
    let fixes: Vec<usize> = out
        .iter()
        .enumerate()
        .filter_map(|(i, d)| matches!(d, Decoded::Fix(_)).then_some(i))
        .collect();
    let get = |out: &[Decoded], i: usize| match out[i] {
        Decoded::Fix(f) => Some(f),
        Decoded::Skip(_) => None,
    };
    for w in 0..fixes.len() {
        let (a, b) = match (w.checked_sub(1), fixes.get(w + 1)) {
            (Some(p), _) => (fixes[p], fixes[w]),
            (None, Some(&n)) => (fixes[w], n),
            (None, None) => continue,
        };
        let (Some(fa), Some(fb)) = (get(out, a), get(out, b)) else {
            continue;
        };
        let dt = (fb.timestamp - fa.timestamp) / 1000.0;
        if let Decoded::Fix(f) = &mut out[fixes[w]] {
            if dt > 0.0 {
                f.speed = Some(fa.distance_to(&fb) / dt);
            }
            if fa.distance_to(&fb) > 0.5 {
                f.heading = Some(bearing_deg(
                    fa.latitude,
                    fa.longitude,
                    fb.latitude,
                    fb.longitude,
                ));
            }
        }
    }
}

/// A GPX 1.1 document with one track of `fixes` (for tests and for saving a drive).
pub fn write_gpx(fixes: &[Fix]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"jamz-geo\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n<trk><trkseg>\n",
    );
    for f in fixes {
        s.push_str(&format!(
            "<trkpt lat=\"{:.7}\" lon=\"{:.7}\">",
            f.latitude, f.longitude
        ));
        if let Some(e) = f.altitude {
            s.push_str(&format!("<ele>{e:.1}</ele>"));
        }
        s.push_str(&format!(
            "<time>{}</time></trkpt>\n",
            crate::fix::format_utc_ms(f.timestamp)
        ));
    }
    s.push_str("</trkseg></trk>\n</gpx>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_points_decode_with_derived_motion() {
        let text = r#"<?xml version="1.0"?><gpx><trk><trkseg>
          <trkpt lat="48.0" lon="11.0"><ele>500.5</ele><time>2026-12-01T21:11:05Z</time></trkpt>
          <trkpt lon='11.0' lat='48.0009'><time>2026-12-01T21:11:15Z</time></trkpt>
          <trkpt lat="48.1" lon="11.0"/>
          <trkpt lat="x" lon="11.0"><time>2026-12-01T21:11:25Z</time></trkpt>
          <trkpt lat="48.0018" lon="11.0"><time>2026-12-01T21:11:2"#;
        let out = decode_gpx(text);
        assert_eq!(out.len(), 5, "{out:?}");
        let Decoded::Fix(a) = out[0] else { panic!() };
        let Decoded::Fix(b) = out[1] else { panic!() };
        assert_eq!(a.altitude, Some(500.5));
        assert_eq!(b.timestamp - a.timestamp, 10_000.0);
        assert!((b.speed.unwrap() - 10.0).abs() < 0.1, "{b:?}");
        assert!(a.speed.is_some() && b.heading.unwrap().abs() < 1e-6);
        assert_eq!(out[2], Decoded::Skip(SkipReason::NoTime));
        assert_eq!(out[3], Decoded::Skip(SkipReason::Malformed));
        assert_eq!(out[4], Decoded::Skip(SkipReason::Malformed));
    }

    #[test]
    fn written_tracks_read_back() {
        let fixes: Vec<Fix> = (0..3)
            .map(|i| {
                Fix::at(
                    48.0 + i as f64 * 1e-4,
                    11.0,
                    1_796_159_465_000.0 + i as f64 * 1e3,
                )
            })
            .collect();
        let back: Vec<Fix> = decode_gpx(&write_gpx(&fixes))
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Fix(f) => Some(f),
                Decoded::Skip(_) => None,
            })
            .collect();
        assert_eq!(back.len(), 3);
        for (a, b) in fixes.iter().zip(&back) {
            assert!(a.distance_to(b) < 0.05 && a.timestamp == b.timestamp);
        }
    }
}

//! NMEA 0183 lines to fixes, sans-IO: the `nmea` crate parses and checks each sentence;
//! this module groups a receiver's RMC and GGA of one epoch into one fix.
//!
//! `nmea::Nmea::parse_for_fix` groups too, but it needs to be told the full sentence set a
//! receiver sends and answers one opaque error for every bad line; grouping by the
//! sentences' own time here keeps checksum, truncation and no-fix counts apart and works
//! for receivers that send RMC only, GGA only or both.

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use nmea::sentences::rmc::RmcStatusOfFix;
use nmea::sentences::{FixType, GgaData, RmcData};
use nmea::{Error as NmeaError, ParseResult};

use crate::filter::SkipReason;
use crate::fix::{Fix, days_from_civil};

/// m/s per knot.
pub const MPS_PER_KNOT: f64 = 1852.0 / 3600.0;

/// HDOP times this is the accuracy estimate, m: HDOP has no unit; 5 m is a consumer
/// receiver's usual user-equivalent range error in open sky.
pub const UERE_M: f64 = 5.0;

/// The longest line read from a receiver or a log: NMEA allows 82 characters, and the
/// longest gpsd report (SKY with 60+ satellites) stays below this.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// What one line (or the end of the input) gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Fix(Fix),
    Skip(SkipReason),
}

#[derive(Debug, Default)]
struct Epoch {
    time: Option<NaiveTime>,
    rmc: Option<RmcData>,
    gga: Option<GgaData>,
}

/// Turns NMEA lines into fixes. Fixes come out when an epoch is complete (its RMC and
/// GGA both seen) or the next epoch starts; [`NmeaDecoder::finish`] flushes the last.
#[derive(Debug, Default)]
pub struct NmeaDecoder {
    epoch: Option<Epoch>,
    /// The last date an RMC gave, for GGA-only epochs.
    date: Option<NaiveDate>,
    last_time: Option<NaiveTime>,
}

impl NmeaDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one line (with or without its line ending); fixes and skips go to `out`.
    /// Blank lines, comments (`#`) and sentences other than RMC and GGA give nothing.
    pub fn push_line(&mut self, line: &str, out: &mut Vec<Decoded>) {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        if !line.starts_with('$') && !line.starts_with('!') {
            out.push(Decoded::Skip(SkipReason::Malformed));
            return;
        }
        match nmea::parse_str(line) {
            Ok(ParseResult::RMC(rmc)) => {
                let time = rmc.fix_time;
                self.start_epoch(time, out);
                if let Some(e) = self.epoch.as_mut() {
                    e.rmc = Some(rmc);
                }
            }
            Ok(ParseResult::GGA(gga)) => {
                let time = gga.fix_time;
                self.start_epoch(time, out);
                if let Some(e) = self.epoch.as_mut() {
                    e.gga = Some(gga);
                }
            }
            Ok(_) => return,
            Err(NmeaError::ChecksumMismatch { .. }) => {
                out.push(Decoded::Skip(SkipReason::BadChecksum));
                return;
            }
            Err(
                NmeaError::DisabledSentence
                | NmeaError::Unsupported(_)
                | NmeaError::Unknown(_)
                | NmeaError::UnknownTalkerId { .. },
            ) => return,
            Err(_) => {
                out.push(Decoded::Skip(SkipReason::Malformed));
                return;
            }
        }
        if self
            .epoch
            .as_ref()
            .is_some_and(|e| e.rmc.is_some() && e.gga.is_some())
        {
            self.flush(out);
        }
    }

    /// The end of the input: the last epoch's fix, if any.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) {
        self.flush(out);
    }

    fn start_epoch(&mut self, time: Option<NaiveTime>, out: &mut Vec<Decoded>) {
        if self.epoch.as_ref().is_some_and(|e| e.time != time) {
            self.flush(out);
        }
        if self.epoch.is_none() {
            self.epoch = Some(Epoch {
                time,
                ..Epoch::default()
            });
        }
    }

    fn flush(&mut self, out: &mut Vec<Decoded>) {
        if let Some(epoch) = self.epoch.take() {
            out.push(match self.fix_of(epoch) {
                Ok(fix) => Decoded::Fix(fix),
                Err(reason) => Decoded::Skip(reason),
            });
        }
    }

    fn fix_of(&mut self, e: Epoch) -> Result<Fix, SkipReason> {
        if let Some(rmc) = &e.rmc
            && rmc.status_of_fix == RmcStatusOfFix::Invalid
        {
            return Err(SkipReason::NoFix);
        }
        if let Some(gga) = &e.gga
            && (gga.fix_type.is_none_or(|t| t == FixType::Invalid) || gga.fix_satellites == Some(0))
        {
            return Err(SkipReason::NoFix);
        }
        let (lat, lon) = match (&e.rmc, &e.gga) {
            (
                Some(RmcData {
                    lat: Some(la),
                    lon: Some(lo),
                    ..
                }),
                _,
            ) => (*la, *lo),
            (
                _,
                Some(GgaData {
                    latitude: Some(la),
                    longitude: Some(lo),
                    ..
                }),
            ) => (*la, *lo),
            _ => return Err(SkipReason::NoFix),
        };
        let time = e.time.ok_or(SkipReason::NoTime)?;
        let date = match e.rmc.as_ref().and_then(|r| r.fix_date) {
            Some(d) => d,
            None => {
                let d = self.date.ok_or(SkipReason::NoTime)?;
                // A GGA-only epoch past midnight belongs to the next day.
                if self.last_time.is_some_and(|t| time < t) {
                    d.succ_opt().ok_or(SkipReason::NoTime)?
                } else {
                    d
                }
            }
        };
        self.date = Some(date);
        self.last_time = Some(time);
        let days = days_from_civil(i64::from(date.year()), date.month(), date.day());
        let ms = (days * 86_400 + i64::from(time.num_seconds_from_midnight())) as f64 * 1000.0
            + f64::from(time.nanosecond() / 1_000_000);
        let rmc = e.rmc.as_ref();
        let gga = e.gga.as_ref();
        Ok(Fix {
            latitude: lat,
            longitude: lon,
            accuracy: gga.and_then(|g| g.hdop).map(|h| f64::from(h) * UERE_M),
            speed: rmc
                .and_then(|r| r.speed_over_ground)
                .map(|k| f64::from(k) * MPS_PER_KNOT),
            heading: rmc.and_then(|r| r.true_course).map(f64::from),
            altitude: gga.and_then(|g| g.altitude).map(f64::from),
            timestamp: ms,
        })
    }
}

/// Decodes a whole NMEA log.
pub fn decode_all(text: &str) -> Vec<Decoded> {
    let mut decoder = NmeaDecoder::new();
    let mut out = Vec::new();
    for line in text.lines() {
        decoder.push_line(line, &mut out);
    }
    decoder.finish(&mut out);
    out
}

/// `$BODY*CS` with the checksum NMEA 0183 defines (XOR of the body's bytes).
pub fn sentence(body: &str) -> String {
    let cs = body.bytes().fold(0u8, |a, b| a ^ b);
    format!("${body}*{cs:02X}")
}

/// A log of `fixes` as a receiver with 9 satellites in view would write it: RMC and GGA per
/// fix, CRLF line ends. What the replay source, gpsd and gpsfake read.
pub fn log_of(fixes: &[Fix]) -> String {
    fixes
        .iter()
        .flat_map(|f| fix_sentences(f, 9))
        .map(|line| line + "\r\n")
        .collect()
}

/// The RMC and GGA sentences a receiver with `satellites` in view would send for `fix`.
/// Tests and simulators use it to write drives that gpsd and [`NmeaDecoder`] read back.
pub fn fix_sentences(fix: &Fix, satellites: u32) -> [String; 2] {
    let ms = fix.timestamp.round() as i64;
    let (secs, centis) = (ms.div_euclid(1000), ms.rem_euclid(1000) / 10);
    let (y, mo, d) = crate::fix::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let hms = format!(
        "{:02}{:02}{:02}.{centis:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    let date = format!("{d:02}{mo:02}{:02}", y.rem_euclid(100));
    let (lat, ns) = ddmm(fix.latitude, 2, ('N', 'S'));
    let (lon, ew) = ddmm(fix.longitude, 3, ('E', 'W'));
    let knots = fix.speed.unwrap_or(0.0) / MPS_PER_KNOT;
    let course = fix.heading.unwrap_or(0.0);
    let rmc = format!("GPRMC,{hms},A,{lat},{ns},{lon},{ew},{knots:.2},{course:.1},{date},,,A");
    let quality = u8::from(satellites > 0);
    let hdop = fix.accuracy.map_or(1.0, |a| a / UERE_M);
    let alt = fix.altitude.unwrap_or(0.0);
    let gga = format!(
        "GPGGA,{hms},{lat},{ns},{lon},{ew},{quality},{satellites:02},{hdop:.1},{alt:.1},M,47.0,M,,"
    );
    [sentence(&rmc), sentence(&gga)]
}

fn ddmm(deg: f64, width: usize, hemis: (char, char)) -> (String, char) {
    let h = if deg < 0.0 { hemis.1 } else { hemis.0 };
    let a = deg.abs();
    let mut whole = a.trunc();
    let mut minutes = (a - whole) * 60.0;
    // Rounding to 5 decimals can give 60.00000: carry it into the degrees.
    if (minutes * 100_000.0).round() >= 6_000_000.0 {
        whole += 1.0;
        minutes = 0.0;
    }
    (format!("{:0width$}{minutes:08.5}", whole as u32), h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixes(out: &[Decoded]) -> Vec<Fix> {
        out.iter()
            .filter_map(|d| match d {
                Decoded::Fix(f) => Some(*f),
                Decoded::Skip(_) => None,
            })
            .collect()
    }

    #[test]
    fn written_sentences_decode_back() {
        let mut fix = Fix::at(48.137_154, -11.575_49, 1_796_159_465_000.0);
        fix.speed = Some(20.0);
        fix.heading = Some(87.5);
        fix.accuracy = Some(6.0);
        fix.altitude = Some(519.0);
        let [rmc, gga] = fix_sentences(&fix, 8);
        let out = decode_all(&format!("{rmc}\r\n{gga}\r\n"));
        let got = fixes(&out);
        assert_eq!(got.len(), 1, "{out:?}");
        let g = got[0];
        assert!((g.latitude - fix.latitude).abs() < 1e-6);
        assert!((g.longitude - fix.longitude).abs() < 1e-6);
        assert_eq!(g.timestamp, fix.timestamp);
        assert!((g.speed.unwrap() - 20.0).abs() < 0.01);
        assert!((g.heading.unwrap() - 87.5).abs() < 0.01);
        assert!((g.accuracy.unwrap() - 6.0).abs() < 0.01);
        assert_eq!(g.altitude, Some(519.0));
    }

    #[test]
    fn bad_lines_are_counted_apart() {
        let fix = Fix::at(48.0, 11.0, 1_796_159_465_000.0);
        let [rmc, gga] = fix_sentences(&fix, 8);
        let mut bad_cs = rmc.clone();
        bad_cs.replace_range(bad_cs.len() - 2.., "00");
        let truncated = &gga[..gga.len() / 2];
        let [_, no_sats] = fix_sentences(&Fix::at(48.0, 11.0, 1_796_159_466_000.0), 0);
        let gsv = sentence("GPGSV,1,1,01,05,40,083,46");
        let text = [bad_cs.as_str(), truncated, "garbage", &gsv, &no_sats].join("\n");
        let out = decode_all(&text);
        assert_eq!(
            out,
            vec![
                Decoded::Skip(SkipReason::BadChecksum),
                Decoded::Skip(SkipReason::Malformed),
                Decoded::Skip(SkipReason::Malformed),
                Decoded::Skip(SkipReason::NoFix),
            ]
        );
    }

    #[test]
    fn gga_only_takes_the_last_rmc_date() {
        let t0 = 1_796_159_465_000.0;
        let [rmc, _] = fix_sentences(&Fix::at(48.0, 11.0, t0), 8);
        let [_, gga] = fix_sentences(&Fix::at(48.0001, 11.0, t0 + 1000.0), 8);
        let got = fixes(&decode_all(&format!("{rmc}\n{gga}\n")));
        assert_eq!(
            got.iter().map(|f| f.timestamp).collect::<Vec<_>>(),
            [t0, t0 + 1000.0]
        );
        let lone = fixes(&decode_all(&gga));
        assert!(lone.is_empty());
    }
}

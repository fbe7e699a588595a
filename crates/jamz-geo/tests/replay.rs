//! Replays of generated drives from real files: pace, skipped input, GPX, the spec.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use jamz_geo::fix::destination;
use jamz_geo::nmea::{fix_sentences, sentence};
use jamz_geo::{
    Fix, GeoError, LocationSource, LocationSpec, ReplayFormat, ReplaySource, ReplaySpeed,
    SerialNmeaSource, SkipReason, SourceEvent,
};
use tokio::time::Instant;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(start_paused = true)]
async fn nmea_replay_keeps_the_recorded_pace_scaled() {
    let drive = city_drive();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "drive.nmea", &nmea_log(&drive));
    let spec: LocationSpec = format!("replay:{}@4", path.display()).parse().unwrap();
    let mut source = spec.open().await.unwrap().expect("a source");
    let start = Instant::now();
    let events = drain(source.as_mut(), 10_000).await;
    // Virtual time: the replay waited exactly the recorded span over the factor.
    let span = Duration::from_secs((drive.len() - 1) as u64);
    assert_eq!(start.elapsed(), span / 4);
    let got = fixes_of(&events);
    assert_eq!(got.len(), drive.len());
    for (g, w) in got.iter().zip(&drive) {
        assert!(same_fix(g, w), "{g:?} != {w:?}");
        assert!((g.speed.unwrap() - 15.0).abs() < 0.01);
    }
    assert_eq!(events.last(), Some(&SourceEvent::Ended));
    assert_eq!(source.counts().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_skipped_and_counted() {
    let drive = city_drive();
    let mut log = String::new();
    let mut expected = Vec::new();
    for (i, f) in drive.iter().enumerate() {
        let [rmc, gga] = fix_sentences(f, 9);
        match i {
            10 => {
                // A flipped digit: the checksum no longer matches, and the epoch's fix
                // still comes from its GGA.
                log.push_str(&rmc.replacen("A,", "A,9", 1));
                log.push_str("\r\n");
                log.push_str(&gga);
                expected.push(*f);
            }
            20 => {
                // Power lost mid-sentence, then the next sentence.
                log.push_str(&rmc[..rmc.len() / 2]);
                log.push_str("\r\n");
                log.push_str(&gga);
                expected.push(*f);
            }
            30 => {
                let [rmc0, gga0] = fix_sentences(f, 0);
                log.push_str(&rmc0);
                log.push_str("\r\n");
                log.push_str(&gga0);
            }
            40 => {
                // 50 km away, one second later: a glitch, not a drive.
                let (lat, lon) = destination(f.latitude, f.longitude, 0.0, 50_000.0);
                let far = Fix {
                    latitude: lat,
                    longitude: lon,
                    ..*f
                };
                let [r, g] = fix_sentences(&far, 9);
                log.push_str(&r);
                log.push_str("\r\n");
                log.push_str(&g);
            }
            _ => {
                log.push_str(&rmc);
                log.push_str("\r\n");
                log.push_str(&gga);
                expected.push(*f);
            }
        }
        log.push_str("\r\n");
        if i == 5 {
            log.push_str(&sentence("GPGSV,1,1,01,05,40,083,46"));
            log.push_str("\r\n\r\n$GPRMC,,,\r\n\u{fffd}\u{0}\r\n");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.nmea", &log);
    let mut source = ReplaySource::open(&path, ReplayFormat::Nmea, ReplaySpeed::Max)
        .await
        .unwrap();
    let events = drain(&mut source, 10_000).await;
    let got = fixes_of(&events);
    assert_eq!(got.len(), expected.len());
    for (g, w) in got.iter().zip(&expected) {
        assert!(same_fix(g, w), "{g:?} != {w:?}");
    }
    let c = source.counts();
    assert_eq!(c.bad_checksum, 1, "{c:?}");
    // The truncated RMC, `$GPRMC,,,` and the binary line.
    assert_eq!(c.malformed, 3, "{c:?}");
    assert_eq!(c.no_fix, 1, "{c:?}");
    assert_eq!(c.jump, 1, "{c:?}");
    let skipped = events
        .iter()
        .filter(|e| matches!(e, SourceEvent::Skipped(_)))
        .count() as u64;
    assert_eq!(skipped, c.total());
}

#[tokio::test(start_paused = true)]
async fn gpx_replay_gives_the_track_with_derived_speed() {
    let drive = city_drive();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "drive.gpx", &jamz_geo::gpx::write_gpx(&drive));
    let spec: LocationSpec = format!("replay:{}", path.display()).parse().unwrap();
    let mut source = spec.open().await.unwrap().expect("a source");
    let start = Instant::now();
    let got = fixes_of(&drain(source.as_mut(), 10_000).await);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs((drive.len() - 1) as u64)
    );
    assert_eq!(got.len(), drive.len());
    for (g, w) in got.iter().zip(&drive) {
        assert!(g.distance_to(w) < 0.05 && g.timestamp == w.timestamp);
        assert!((g.speed.unwrap() - 15.0).abs() < 0.1, "{g:?}");
        assert_eq!(g.altitude, Some(519.0));
    }
}

#[tokio::test]
async fn unreadable_or_empty_replays_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing: LocationSpec = format!("replay:{}/none.nmea", dir.path().display())
        .parse()
        .unwrap();
    assert!(matches!(missing.open().await, Err(GeoError::File { .. })));
    let path = write(
        &dir,
        "void.nmea",
        &fix_sentences(&city_drive()[0], 0).join("\r\n"),
    );
    match ReplaySource::open(&path, ReplayFormat::Nmea, ReplaySpeed::Max).await {
        Err(GeoError::NoFixes { counts, .. }) => assert_eq!(counts.get(SkipReason::NoFix), 1),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a replay with no fix opened"),
    }
}

#[tokio::test]
async fn the_nmea_source_reads_a_plain_file_to_its_end() {
    let drive = city_drive();
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "log.nmea", &nmea_log(&drive));
    let mut source = SerialNmeaSource::new(&path, None);
    let events = drain(&mut source, 10_000).await;
    assert!(
        matches!(events[0], SourceEvent::Status(_)),
        "{:?}",
        events[0]
    );
    let got = fixes_of(&events);
    assert_eq!(got.len(), drive.len());
    assert!(got.iter().zip(&drive).all(|(g, w)| same_fix(g, w)));
    assert_eq!(events.last(), Some(&SourceEvent::Ended));
}

/// A pseudo-terminal is a real serial line to the kernel: the source sets it raw at
/// 9600 baud and reads the receiver's sentences written to the other side.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_nmea_source_reads_a_serial_line() {
    use std::io::Write;

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use rustix::termios::tcgetattr;

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let device = std::path::PathBuf::from(name.to_str().unwrap());
    let spec: LocationSpec = format!("nmea:{}@9600", device.display()).parse().unwrap();
    let mut source = spec.open().await.unwrap().expect("a source");
    assert!(matches!(
        source.next_event().await.unwrap(),
        SourceEvent::Status(jamz_geo::SourceStatus::Connected { .. })
    ));
    let slave = std::fs::File::open(&device).unwrap();
    assert_eq!(tcgetattr(&slave).unwrap().output_speed(), 9600);
    let drive = city_drive();
    let mut master = std::fs::File::from(master);
    master.write_all(nmea_log(&drive[..5]).as_bytes()).unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let ev = tokio::time::timeout(Duration::from_secs(20), source.next_event())
            .await
            .expect("no fix from the serial line")
            .unwrap();
        if let SourceEvent::Fix(f) = ev {
            got.push(f);
        }
    }
    assert!(
        got.iter().zip(&drive).all(|(g, w)| same_fix(g, w)),
        "{got:?}"
    );
    assert_eq!(source.counts().total(), 0);
}

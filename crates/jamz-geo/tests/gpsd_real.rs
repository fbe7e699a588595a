//! A real gpsd, started by gpsfake, replaying an NMEA log of a generated drive: the gpsd
//! source reports the drive's fixes, and reconnects when gpsd restarts.
//!
//! Needs Debian's `gpsd` and `gpsd-clients` (scripts/apt/geo.txt). Without them the
//! test prints why and passes, unless `JAMZ_REQUIRE_GPSD` is set: then it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use jamz_geo::{Fix, GpsdSource, LocationSource, SourceEvent, SourceStatus};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// gpsfake starts gpsd and feeds it a pseudo-terminal: seconds on a loaded machine.
const WAIT: Duration = Duration::from_secs(90);

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(tool).is_file())
    })
}

/// gpsfake and its gpsd, in their own process group so that both end together.
struct Gpsfake {
    child: Child,
}

impl Gpsfake {
    fn start(log: &Path, port: u16, out: &Path) -> Gpsfake {
        let out = std::fs::File::create(out).unwrap();
        let child = Command::new("gpsfake")
            // One sentence every 0.1 s (a fix each 0.2 s), looping, gpsd on our port.
            .args(["-c", "0.1", "-P", &port.to_string()])
            .arg(log)
            .env("PATH", path_with_sbin())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start gpsfake");
        Gpsfake { child }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
        let _ = timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

impl Drop for Gpsfake {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// gpsfake runs `gpsd`, which Debian installs in /usr/sbin.
fn path_with_sbin() -> String {
    let p = std::env::var("PATH").unwrap_or_default();
    format!("{p}:/usr/sbin:/sbin")
}

/// Events until `n` fixes came; the fixes and whether a disconnection was seen.
async fn fixes(source: &mut GpsdSource, n: usize, what: &str) -> Vec<Fix> {
    let mut got = Vec::new();
    while got.len() < n {
        let ev = timeout(WAIT, source.next_event())
            .await
            .unwrap_or_else(|_| panic!("no fix from gpsd ({what}); {} so far", got.len()))
            .unwrap();
        if let SourceEvent::Fix(f) = ev {
            got.push(f);
        }
    }
    got
}

fn assert_from(drive: &[Fix], got: &[Fix]) {
    for g in got {
        assert!(
            drive.iter().any(|w| same_fix(g, w)),
            "gpsd reported {g:?}, which is not in the drive"
        );
    }
}

#[tokio::test]
async fn gpsd_reports_the_drive_and_the_source_survives_a_restart() {
    let missing: Vec<_> = ["gpsfake", "gpsd"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        let why = format!(
            "{missing:?} not installed (Debian packages gpsd, gpsd-clients; scripts/apt/geo.txt)"
        );
        if std::env::var_os("JAMZ_REQUIRE_GPSD").is_some() {
            panic!("JAMZ_REQUIRE_GPSD is set but {why}");
        }
        println!("skipped: {why}");
        return;
    }
    let drive = city_drive();
    let (first, second) = drive.split_at(drive.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let log1 = dir.path().join("first.nmea");
    let log2 = dir.path().join("second.nmea");
    std::fs::write(&log1, nmea_log(first)).unwrap();
    std::fs::write(&log2, nmea_log(second)).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    println!("gpsd on port {port}, logs in {}", dir.path().display());

    let gpsd = Gpsfake::start(&log1, port, &dir.path().join("gpsfake1.out"));
    let mut source = GpsdSource::new("127.0.0.1", port)
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1));
    let before = fixes(&mut source, 5, "first run").await;
    assert_from(first, &before);

    gpsd.stop().await;
    let mut saw_down = false;
    while !saw_down {
        match timeout(WAIT, source.next_event()).await {
            Ok(Ok(SourceEvent::Status(SourceStatus::Disconnected { .. }))) => saw_down = true,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("the source did not notice gpsd stopping"),
        }
    }

    let gpsd = Gpsfake::start(&log2, port, &dir.path().join("gpsfake2.out"));
    let after = fixes(&mut source, 5, "after the restart").await;
    assert_from(second, &after);
    gpsd.stop().await;
    println!(
        "{} + {} fixes from gpsd; skipped: {:?}",
        before.len(),
        after.len(),
        source.counts()
    );
}

//! The node's `--location` source: a replayed drive and a real gpsd (gpsfake) reach the
//! node as `location` events for this car, thinned by the sharing rule; a source that
//! cannot start is an `error` event and the node goes on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::Notification;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jamz_geo::Fix;
use jamz_geo::fix::destination;
use jamz_geo::nmea::log_of;
use jamz_node::{LocationEvent, LocationSource, Node, NodeCommand, NodeConfig, NodeEvent};

mod support;

use support::{ann_config, next_matching, quit, world};

fn config(url: &str, group: &str, dir: &Path, location: &str) -> NodeConfig {
    let mut config = ann_config(url, group, dir);
    config.location = location.parse::<LocationSource>().unwrap();
    config
}

/// `n` fixes a second northward at 15 m/s from 2026-12-01T21:11:05Z.
fn drive(n: usize) -> Vec<Fix> {
    (0..n)
        .map(|i| {
            let (lat, lon) = destination(48.137, 11.575, 0.0, 15.0 * i as f64);
            let mut f = Fix::at(lat, lon, 1_796_159_465_000.0 + 1000.0 * i as f64);
            f.speed = Some(15.0);
            f.heading = Some(0.0);
            f
        })
        .collect()
}

/// The next `location` event for `user`, checked to be a point of `drive`.
async fn own_fix(node: &mut Node, user: i64, drive: &[Fix]) -> (f64, f64) {
    let ev = next_matching(
        node,
        "a location event",
        |e| matches!(e, NodeEvent::Session(Notification::Location(LocationEvent::Location { user_id, .. })) if *user_id == user),
    )
    .await;
    let NodeEvent::Session(Notification::Location(LocationEvent::Location {
        latitude,
        longitude,
        ..
    })) = ev
    else {
        unreachable!()
    };
    let here = Fix::at(latitude, longitude, 0.0);
    assert!(
        drive.iter().any(|f| f.distance_to(&here) < 0.5),
        "({latitude}, {longitude}) is not on the drive"
    );
    (latitude, longitude)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_drive_becomes_this_cars_location_events() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let drive = drive(60);
    let log = dir.path().join("drive.nmea");
    std::fs::write(&log, log_of(&drive)).unwrap();
    // At once: the sharing rule then thins by distance only, whatever the machine's load.
    let spec = format!("replay:{}@max", log.display());
    let mut node = Node::start(config(&url, &group, dir.path(), &spec))
        .await
        .unwrap();
    let user = node.user_id();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(own_fix(&mut node, user, &drive).await);
    }
    // Shared by the rule: 50 m apart at 15 m/s (every 4th fix), never every fix.
    for w in seen.windows(2) {
        let a = Fix::at(w[0].0, w[0].1, 0.0);
        let b = Fix::at(w[1].0, w[1].1, 0.0);
        let d = a.distance_to(&b);
        assert!((50.0..=65.0).contains(&d), "{d} m between shared fixes");
    }
    quit(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_cannot_start_is_an_error_and_the_node_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let spec = format!("replay:{}/missing.nmea", dir.path().display());
    let mut node = Node::start(config(&url, &group, dir.path(), &spec))
        .await
        .unwrap();
    let ev = next_matching(
        &mut node,
        "the location error",
        |e| matches!(e, NodeEvent::Session(Notification::Error { cmd: Some(c), .. }) if c == "location"),
    )
    .await;
    let NodeEvent::Session(Notification::Error { message, .. }) = ev else {
        unreachable!()
    };
    assert!(message.contains("missing.nmea"), "{message}");
    node.send(NodeCommand::Status).unwrap();
    next_matching(&mut node, "a status", |e| matches!(e, NodeEvent::Status(_))).await;
    quit(node).await;
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|d| d.join(tool).is_file())
    })
}

/// gpsfake and the gpsd it starts, in one process group that ends together.
struct Gpsfake(tokio::process::Child);

impl Gpsfake {
    fn start(log: &Path, port: u16, out: &Path) -> Gpsfake {
        let out = std::fs::File::create(out).unwrap();
        let path = format!(
            "{}:/usr/sbin:/sbin",
            std::env::var("PATH").unwrap_or_default()
        );
        Gpsfake(
            tokio::process::Command::new("gpsfake")
                .args(["-c", "0.1", "-P", &port.to_string()])
                .arg(log)
                .env("PATH", path)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .expect("start gpsfake"),
        )
    }

    async fn stop(mut self) {
        self.signal("-TERM");
        let _ = tokio::time::timeout(Duration::from_secs(20), self.0.wait()).await;
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args([sig, "--", &format!("-{pid}")])
                .status();
        }
    }
}

impl Drop for Gpsfake {
    fn drop(&mut self) {
        self.signal("-KILL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reports_gpsd_fixes_and_survives_a_gpsd_restart() {
    let missing: Vec<_> = ["gpsfake", "gpsd"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if !missing.is_empty() {
        let why = format!("{missing:?} not installed (Debian gpsd, gpsd-clients)");
        if std::env::var_os("JAMZ_REQUIRE_GPSD").is_some() {
            panic!("JAMZ_REQUIRE_GPSD is set but {why}");
        }
        println!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let drive = drive(120);
    let (first, second) = drive.split_at(60);
    let log1 = dir.path().join("first.nmea");
    let log2 = dir.path().join("second.nmea");
    std::fs::write(&log1, log_of(first)).unwrap();
    std::fs::write(&log2, log_of(second)).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let gpsd = Gpsfake::start(&log1, port, &dir.path().join("gpsfake1.out"));
    let spec = format!("gpsd:127.0.0.1:{port}");
    let mut node = Node::start(config(&url, &group, dir.path(), &spec))
        .await
        .unwrap();
    let user = node.user_id();
    for _ in 0..3 {
        own_fix(&mut node, user, first).await;
    }
    gpsd.stop().await;
    next_matching(
        &mut node,
        "the lost gpsd",
        |e| matches!(e, NodeEvent::Session(Notification::Error { cmd: Some(c), .. }) if c == "location"),
    )
    .await;
    let gpsd = Gpsfake::start(&log2, port, &dir.path().join("gpsfake2.out"));
    for _ in 0..3 {
        own_fix(&mut node, user, second).await;
    }
    gpsd.stop().await;
    quit(node).await;
}

//! The `desktop` source against a real GeoClue (Debian `geoclue-2.0`, 2.6) on a private
//! D-Bus system bus: GeoClue's NMEA source reads a generated drive from a Unix socket
//! (`nmea-socket`), GeoClue's configuration allows or refuses the app, and an agent is on
//! the bus (what gnome-shell is on a desktop). Each test starts its own `dbus-daemon`s,
//! GeoClue (in a private mount namespace, with its own configuration: root) and agent.
//!
//! The source runs in a child process (this binary again, `desktop_child_process`) whose
//! environment names the private buses: `DBUS_SYSTEM_BUS_ADDRESS` for GeoClue, and
//! `DBUS_SESSION_BUS_ADDRESS` for a session bus without the XDG portal, so that
//! robius-location goes to GeoClue directly.
//!
//! Without `dbus-daemon` or GeoClue the tests print why and pass, unless
//! `JAMZ_REQUIRE_GEOCLUE` is set (CI): then they fail.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::*;
use jamz_geo::nmea::fix_sentences;
use jamz_geo::{DesktopSource, Fix, LocationSource, LocationSpec, SourceEvent};

/// Names the child's task; unset in the normal run.
const CHILD: &str = "JAMZ_TEST_DESKTOP_CHILD";
/// A bound on every wait (a daemon starting, the child's run) on a loaded machine.
const WAIT: Duration = Duration::from_secs(90);
const GEOCLUE: &str = "/usr/libexec/geoclue";
const GEOCLUE_NAME: &str = "org.freedesktop.GeoClue2";
/// An agent ID in the `[agent] whitelist` of Debian's /etc/geoclue/geoclue.conf.
const AGENT_ID: &str = "geoclue-demo-agent";

/// Whether GeoClue and dbus-daemon are here; if not, says why (and fails under
/// `JAMZ_REQUIRE_GEOCLUE`).
fn available() -> bool {
    let dbus = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("dbus-daemon").is_file())
    });
    // GeoClue gets its own configuration through a private mount namespace (root).
    let unshare = Command::new("unshare")
        .args(["--mount", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing: Vec<&str> = [
        ("dbus-daemon", dbus),
        (GEOCLUE, Path::new(GEOCLUE).is_file()),
        ("a mount namespace (`unshare --mount`, root)", unshare),
    ]
    .into_iter()
    .filter(|(_, here)| !here)
    .map(|(what, _)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{missing:?} missing (Debian packages dbus-daemon, geoclue-2.0: scripts/apt/geo.txt)"
    );
    assert!(
        std::env::var_os("JAMZ_REQUIRE_GEOCLUE").is_none(),
        "JAMZ_REQUIRE_GEOCLUE is set but {why}"
    );
    println!("skipped: {why}");
    false
}

/// A child process killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private bus of `kind` (`system` or `session`): anyone may own any name (GeoClue runs
/// as this user, not as `geoclue`) and talk to anyone.
fn start_bus(dir: &Path, kind: &str) -> (Daemon, String) {
    let config = dir.join(format!("{kind}-bus.conf"));
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{kind}</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            dir.join(format!("{kind}-bus")).display()
        ),
    )
    .unwrap();
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dbus-daemon");
    // It prints its address once it listens (or exits: then the line is empty).
    let mut address = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let address = address.trim().to_owned();
    assert!(!address.is_empty(), "dbus-daemon gave no address");
    (Daemon(child), address)
}

/// GeoClue on `bus` with a configuration of its own (bind-mounted over
/// /etc/geoclue/geoclue.conf in a private mount namespace: GeoClue 2.6 reads no other
/// path): only the NMEA source, reading `socket` (no Wi-Fi, no modem; its network
/// position, which 2.6 asks for even with Wi-Fi off, goes to a closed local port), and
/// this app allowed or refused by `allow`. Its log in `log`.
fn start_geoclue(bus: &str, socket: &Path, allow: bool, log: &Path) -> Daemon {
    let conf = log.with_file_name("geoclue.conf");
    std::fs::write(
        &conf,
        format!(
            "[agent]\nwhitelist={AGENT_ID}\n\n\
             [network-nmea]\nenable=true\nnmea-socket={}\n\n\
             [3g]\nenable=false\n\n[cdma]\nenable=false\n\n[modem-gps]\nenable=false\n\n\
             [wifi]\nenable=false\nurl=http://127.0.0.1:9/geolocate\nsubmit-data=false\nsubmission-nick=geoclue\n\n\
             [compass]\nenable=false\n\n\
             [{}]\nallowed={allow}\nsystem=false\nusers=\n",
            socket.display(),
            jamz_geo::desktop::DESKTOP_ID
        ),
    )
    .unwrap();
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "mount --bind \"$1\" /etc/geoclue/geoclue.conf; exec {GEOCLUE} --timeout 0"
        ))
        .arg("sh")
        .arg(&conf)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env("G_MESSAGES_DEBUG", "Geoclue")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start geoclue");
    Daemon(child)
}

/// The user's GeoClue agent (GeoClue 2.6 holds `GetClient` until the caller's user has
/// one): grants what it is asked, and keeps the desktop IDs it was asked about. Whether
/// the app may is GeoClue's configuration's say here: GeoClue does not ask the agent
/// about a root client, and the tests run as root for the mount namespace.
struct Agent {
    asked: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.freedesktop.GeoClue2.Agent")]
impl Agent {
    fn authorize_app(&self, desktop_id: String, req_accuracy_level: u32) -> (bool, u32) {
        self.asked.lock().unwrap().push(desktop_id);
        (true, req_accuracy_level)
    }

    #[zbus(property)]
    fn max_accuracy_level(&self) -> u32 {
        8 // GCLUE_ACCURACY_LEVEL_EXACT
    }
}

/// Serves the agent on `bus` once GeoClue owns its name, and registers it with GeoClue.
fn start_agent(
    bus: &str,
    geoclue_log: &Path,
) -> (zbus::blocking::Connection, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let agent = Agent {
        asked: asked.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let bus = bus.to_owned();
    std::thread::spawn(move || {
        let run = || -> zbus::Result<zbus::blocking::Connection> {
            let conn = zbus::blocking::connection::Builder::address(bus.as_str())?
                .serve_at("/org/freedesktop/GeoClue2/Agent", agent)?
                .build()?;
            let dbus = zbus::blocking::fdo::DBusProxy::new(&conn)?;
            let mut changes = dbus.receive_name_owner_changed()?;
            let name = zbus::names::BusName::try_from(GEOCLUE_NAME)?;
            if !dbus.name_has_owner(name)? {
                // Wait for GeoClue to take its name (the subscription came first).
                for change in &mut changes {
                    let args = change.args()?;
                    if args.name().as_str() == GEOCLUE_NAME && args.new_owner().is_some() {
                        break;
                    }
                }
            }
            zbus::blocking::Proxy::new(
                &conn,
                GEOCLUE_NAME,
                "/org/freedesktop/GeoClue2/Manager",
                "org.freedesktop.GeoClue2.Manager",
            )?
            .call_method("AddAgent", &(AGENT_ID,))?;
            Ok(conn)
        };
        let _ = tx.send(run());
    });
    match rx.recv_timeout(WAIT) {
        Ok(Ok(conn)) => (conn, asked),
        Ok(Err(e)) => panic!("agent: {e}; geoclue: {}", read(geoclue_log)),
        Err(_) => panic!(
            "GeoClue did not appear on the bus; geoclue: {}",
            read(geoclue_log)
        ),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// How often the stand-in receiver sends a fix (a 5 Hz receiver).
const FIX_INTERVAL: Duration = Duration::from_millis(200);

/// A receiver on GeoClue's NMEA socket: every connection gets `fixes`, one per
/// [`FIX_INTERVAL`], then stays open. No fixes: it accepts and stays silent. It stops when
/// the returned sender is dropped (the test's world ends): between fixes it waits on that,
/// bounded by the receiver's pace.
fn start_receiver(socket: &Path, fixes: Vec<Fix>) -> mpsc::Sender<()> {
    let listener = UnixListener::bind(socket).unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            for fix in &fixes {
                let [rmc, gga] = fix_sentences(fix, 9);
                if stream
                    .write_all(format!("{rmc}\r\n{gga}\r\n").as_bytes())
                    .is_err()
                {
                    break;
                }
                if !matches!(
                    stopped.recv_timeout(FIX_INTERVAL),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
            open.push(stream);
        }
    });
    stop
}

/// A drive of ten minutes at 5 fixes a second: more than any test reads.
fn long_drive() -> Vec<Fix> {
    drive(
        (48.137, 11.575),
        &[(0.0, 3000.0), (90.0, 3000.0), (180.0, 3000.0)],
        15.0,
        T0,
    )
}

/// A private system bus with GeoClue on it (unless `geoclue` is false) and its agent.
struct World {
    dir: tempfile::TempDir,
    bus: String,
    session: String,
    asked: Arc<Mutex<Vec<String>>>,
    _agent: Option<zbus::blocking::Connection>,
    /// Dropped with the world: the stand-in receiver stops.
    _receiver: Option<mpsc::Sender<()>>,
    _geoclue: Option<Daemon>,
    _bus: Daemon,
    _session: Daemon,
}

impl World {
    fn start(geoclue: bool, allow: bool, fixes: Vec<Fix>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let (bus_daemon, bus) = start_bus(dir.path(), "system");
        // A desktop session's bus, without the XDG portal: robius-location then goes to
        // GeoClue directly.
        let (session_daemon, session) = start_bus(dir.path(), "session");
        println!("private system bus at {bus}, session bus at {session}");
        let socket = dir.path().join("nmea.sock");
        let log = dir.path().join("geoclue.log");
        let (geoclue, agent, asked, receiver) = if geoclue {
            let receiver = start_receiver(&socket, fixes);
            let gc = start_geoclue(&bus, &socket, allow, &log);
            let (agent, asked) = start_agent(&bus, &log);
            (Some(gc), Some(agent), asked, Some(receiver))
        } else {
            (None, None, Arc::default(), None)
        };
        World {
            dir,
            bus,
            session,
            asked,
            _agent: agent,
            _receiver: receiver,
            _geoclue: geoclue,
            _bus: bus_daemon,
            _session: session_daemon,
        }
    }

    /// Runs the child with `task`; its output lines.
    async fn child(&self, task: &str) -> Vec<String> {
        self.child_on(task, &self.session).await
    }

    /// Runs the child with `task`, its session bus at `session`; its output lines.
    async fn child_on(&self, task: &str, session: &str) -> Vec<String> {
        let me = std::env::current_exe().unwrap();
        let run = tokio::process::Command::new(me)
            .args([
                "--exact",
                "desktop_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, task)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus)
            .env("DBUS_SESSION_BUS_ADDRESS", session)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(WAIT, run)
            .await
            .unwrap_or_else(|_| {
                panic!("the child `{task}` did not finish; geoclue: {}", self.log())
            })
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains("1 passed"),
            "child `{task}`: {text}{}; geoclue: {}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        // The first may follow libtest's `test desktop_child_process ... ` on its line.
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| {
                ["FIX ", "ERROR ", "SOURCE ", "STATUS "]
                    .iter()
                    .filter_map(|p| l.find(p))
                    .min()
                    .map(|at| l[at..].to_owned())
            })
            .collect();
        println!("child `{task}`: {lines:#?}");
        lines
    }

    fn log(&self) -> String {
        read(&self.dir.path().join("geoclue.log"))
    }
}

/// The child's `FIX lat lon` lines.
fn fixes_in(lines: &[String]) -> Vec<(f64, f64)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut w = l.strip_prefix("FIX ")?.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

fn assert_on_drive(drive: &[Fix], got: &[(f64, f64)]) {
    for &(lat, lon) in got {
        let here = Fix::at(lat, lon, 0.0);
        assert!(
            drive.iter().any(|f| f.distance_to(&here) < 0.2),
            "GeoClue gave ({lat}, {lon}), which is not on the drive"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_reports_the_drive_that_geoclue_reads() {
    if !available() {
        return;
    }
    let drive = long_drive();
    let world = World::start(true, true, drive.clone());
    let lines = world.child("desktop 5").await;
    assert_eq!(lines.first().map(String::as_str), Some("SOURCE desktop"));
    let got = fixes_in(&lines);
    assert_eq!(got.len(), 5, "{lines:?}");
    assert_on_drive(&drive, &got);
    println!(
        "the agent was asked about {:?}",
        world.asked.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_takes_the_desktop_service_when_no_gpsd_answers() {
    if !available() {
        return;
    }
    if jamz_geo::gpsd::gpsd_answers("localhost", 2947, Duration::from_millis(500)).await {
        println!("skipped: a gpsd answers on localhost:2947, and `auto` rightly prefers it");
        return;
    }
    let drive = long_drive();
    let world = World::start(true, true, drive.clone());
    let lines = world.child("auto 3").await;
    assert_eq!(
        lines.first().map(String::as_str),
        Some("SOURCE desktop"),
        "geoclue: {}",
        world.log()
    );
    let got = fixes_in(&lines);
    assert_eq!(got.len(), 3, "{lines:?}");
    assert_on_drive(&drive, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_permission_denied_and_auto_moves_on() {
    if !available() {
        return;
    }
    let world = World::start(true, false, long_drive());
    let lines = world.child("desktop 1").await;
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "ERROR desktop location service: permission denied: the location service (its agent, a portal prompt or the privacy settings) refused `app.trafficjamz.client`"
        ),
        "{lines:?}"
    );
    assert!(fixes_in(&lines).is_empty());
    let lines = world.child("auto 1").await;
    assert_eq!(lines, ["SOURCE none"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_geoclue_on_the_bus_is_no_location_service() {
    if !available() {
        return;
    }
    let world = World::start(false, true, Vec::new());
    let lines = world.child("desktop 1").await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("ERROR desktop location service: no location service on this computer"),
        "{lines:?}"
    );
    let lines = world.child("auto 1").await;
    assert_eq!(lines, ["SOURCE none"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_bus_is_said_in_words() {
    if !available() {
        return;
    }
    // GeoClue runs, but the node is outside any desktop session (a system service).
    let world = World::start(true, true, long_drive());
    let nowhere = format!(
        "unix:path={}",
        world.dir.path().join("no-session-bus").display()
    );
    let lines = world.child_on("desktop 1", &nowhere).await;
    let last = lines.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("ERROR desktop location service: no D-Bus session bus"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_position_is_no_fix_in_time() {
    if !available() {
        return;
    }
    // GeoClue runs and grants, but its only source (the NMEA socket) stays silent.
    let world = World::start(true, true, Vec::new());
    let lines = world.child("probe 3").await;
    assert_eq!(
        lines,
        ["ERROR desktop location service: the location service gave no position within 3 s"]
    );
}

/// The child: does nothing in the normal run; with `JAMZ_TEST_DESKTOP_CHILD` set (by the
/// tests above) it runs that task on the buses its environment names and prints
/// `SOURCE name`, `FIX lat lon`, `STATUS reason`, `ERROR message` lines.
///
/// - `desktop N`: the `desktop` source until N fixes or an error;
/// - `auto N`: `auto` (the desktop probe waiting up to 60 s), then as above;
/// - `probe S`: the desktop source's probe with an S-second wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_child_process() {
    let Ok(task) = std::env::var(CHILD) else {
        return;
    };
    let (what, n) = task.split_once(' ').unwrap();
    let n: u64 = n.parse().unwrap();
    let mut source: Box<dyn LocationSource> = match what {
        "probe" => match DesktopSource::probe(Duration::from_secs(n)).await {
            Ok(_) => {
                println!("SOURCE desktop");
                return;
            }
            Err(e) => {
                println!("ERROR {}", jamz_geo::GeoError::from(e));
                return;
            }
        },
        spec => match spec
            .parse::<LocationSpec>()
            .unwrap()
            .open_with(Duration::from_secs(60))
            .await
            .unwrap()
        {
            Some(s) => s,
            None => {
                println!("SOURCE none");
                return;
            }
        },
    };
    println!("SOURCE {}", source.describe());
    let mut fixes = 0;
    while fixes < n {
        match source.next_event().await {
            Ok(SourceEvent::Fix(f)) => {
                fixes += 1;
                println!("FIX {} {}", f.latitude, f.longitude);
            }
            Ok(SourceEvent::Status(s)) => println!("STATUS {s:?}"),
            Ok(SourceEvent::Skipped(r)) => eprintln!("skipped {r:?}"),
            Ok(SourceEvent::Ended) => break,
            Err(e) => {
                println!("ERROR {e}");
                break;
            }
        }
    }
}

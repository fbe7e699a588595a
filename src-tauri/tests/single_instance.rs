//! The real app binary, twice, on a private X server and a private D-Bus session
//! bus: the second launch hands its `trafficjamz://` link to the first and exits;
//! the first logs it, to stderr and to its log file.
//!
//! Needs `Xvfb` and `dbus-daemon` (scripts/apt/app.txt, keyring.txt): skipped with a
//! printed reason when missing, unless `JAMZ_REQUIRE_XVFB=1`.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);
const IDENTIFIER: &str = "app.trafficjamz.client";

/// Kills and reaps the child when the test ends, passed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The first line the program prints on stdout (an address, a display number).
fn first_stdout_line(child: &mut Child, what: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what} printed nothing in time"));
    assert!(!line.trim().is_empty(), "{what} exited without printing");
    line.trim().to_owned()
}

/// Each stderr line of `child`, as it comes.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[first] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if pred(&l) => return l,
            Ok(_) => {}
            Err(_) => panic!("no {what} from the first instance in time"),
        }
    }
}

/// `child`'s exit status, waited for at most [`WAIT`].
fn exit_of(mut child: Child, what: &str) -> (ExitStatus, String) {
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send((child.wait(), text));
    });
    let (status, text) = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what} did not exit in time"));
    (status.unwrap(), text)
}

fn app(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trafficjamz"));
    cmd.env_remove("JAMZ_CONFIG_DIR")
        .env_remove("JAMZ_CACHE_DIR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The newest log file in `dir` and its text.
fn newest_log(dir: &Path) -> Option<(PathBuf, String)> {
    let path = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Some((path, text))
}

/// The text of the newest log file in `dir` once it contains `needle`. The file writer
/// flushes on its own thread: each write to the directory (an inotify event) is a reason
/// to look again, up to [`WAIT`].
fn log_file_with(dir: &Path, needle: &str) -> (PathBuf, String) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::fs::inotify;
    let watch =
        inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(
        &watch,
        dir,
        inotify::WatchFlags::MODIFY
            | inotify::WatchFlags::CREATE
            | inotify::WatchFlags::CLOSE_WRITE,
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut events = [0u8; 4096];
    loop {
        // Looked at after the watch is set: a write before it is in the file already.
        if let Some((path, text)) = newest_log(dir).filter(|(_, t)| t.contains(needle)) {
            return (path, text);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no log file in {} with {needle:?} in time",
            dir.display()
        );
        let timeout = Timespec::try_from(left).unwrap();
        poll(&mut [PollFd::new(&watch, PollFlags::IN)], Some(&timeout)).unwrap();
        // Drain what came; only that something came matters.
        while rustix::io::read(&watch, &mut events).is_ok_and(|n| n > 0) {}
    }
}

#[test]
fn a_second_launch_hands_its_link_to_the_first_and_exits() {
    let missing: Vec<&str> = ["Xvfb", "dbus-daemon"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("JAMZ_REQUIRE_XVFB").is_none(),
            "JAMZ_REQUIRE_XVFB is set but {missing:?} is missing"
        );
        eprintln!("skipped: {missing:?} not installed (scripts/apt/app.txt)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let display = format!(":{}", first_stdout_line(&mut xvfb, "Xvfb"));
    let _xvfb = Reaped(xvfb);
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bus_address = first_stdout_line(&mut bus, "dbus-daemon");
    let _bus = Reaped(bus);

    let home = tmp.path();
    let env = [
        ("DISPLAY", display),
        ("DBUS_SESSION_BUS_ADDRESS", bus_address),
        ("HOME", home.display().to_string()),
        ("XDG_CONFIG_HOME", home.join("config").display().to_string()),
        ("XDG_DATA_HOME", home.join("data").display().to_string()),
        ("XDG_CACHE_HOME", home.join("cache").display().to_string()),
        ("XDG_RUNTIME_DIR", home.display().to_string()),
    ];

    let mut first = app(&env).spawn().unwrap();
    let lines = stderr_lines(&mut first);
    let first = Reaped(first);
    wait_for_line(&lines, "start-up line", |l| l.contains("started (logs in"));

    let link = "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=g-1";
    let second = app(&env).arg(link).spawn().unwrap();
    let (status, second_log) = exit_of(second, "the second launch");
    assert!(status.success(), "second launch: {status}\n{second_log}");
    assert!(
        !second_log.contains("started (logs in"),
        "the second launch started an app of its own:\n{second_log}"
    );

    let handed = wait_for_line(&lines, "hand-over line", |l| l.contains("a second launch"));
    assert!(handed.contains(&format!("Some(\"{link}\")")), "{handed}");
    let mut first = first;
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first instance exited"
    );

    // The same line in the rotating log file, in the app's log directory.
    let log_dir = home.join("data").join(IDENTIFIER).join("logs");
    let (path, text) = log_file_with(&log_dir, link);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("trafficjamz.") && name.ends_with(".log"),
        "{name}"
    );
    assert!(text.contains("started (logs in"), "{text}");
}

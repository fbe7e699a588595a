//! A player opened on a named device (`device:ID`) that is lost: it comes back on that device
//! when it returns, and falls back to the default device while it stays away.
//!
//! The named device is an ALSA `pulse` PCM pinned to a private PulseAudio "A" (declared in an
//! asoundrc under the child's XDG_CONFIG_HOME, with a hint so cpal lists it); the default device
//! follows PULSE_SERVER. The player runs in a child process (this test binary re-run), because
//! ALSA reads its configuration and the PulseAudio address from the environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::child::{ChildRun, play_long_tone, rerun, restart_on_the_timeline};
use common::pulse::{Pulse, sink_or_skip, start_pulse};
use jamz_audio::{OutputSpec, PlayerEvent};

/// Bound on each wait. Losing the device is noticed within the player's stall timeout (3 s).
const TIMEOUT: Duration = Duration::from_secs(20);

const CHILD_DIR_ENV: &str = "JAMZ_AUDIO_NAMED_LOSS_CHILD";
const CHILD_SPEC_ENV: &str = "JAMZ_AUDIO_NAMED_LOSS_SPEC";
/// How many restarts after a restore the child waits for before it exits (default 1).
const CHILD_RESUMES_ENV: &str = "JAMZ_AUDIO_NAMED_LOSS_RESUMES";

/// The ALSA PCM the test declares, and the device id cpal gives it.
const PCM: &str = "jamz_named";
const NAMED_ID: &str = "alsa:jamz_named";
/// cpal's id of ALSA's default device (which follows PULSE_SERVER through the pulse plugin).
const DEFAULT_ID: &str = "alsa:default";

/// The child process and the lines it prints.
struct Run(ChildRun);

impl Run {
    /// Re-runs this binary's child test on `device:NAMED_ID`, with the named PCM pinned to
    /// `named_server` and the default device on `default_server`.
    fn start(dir: &Path, named_server: &str, default_server: &str, resumes: u32) -> Run {
        let xdg = dir.join("xdg");
        std::fs::create_dir_all(xdg.join("alsa")).unwrap();
        std::fs::write(
            xdg.join("alsa/asoundrc"),
            format!(
                "pcm.{PCM} {{\n  type pulse\n  server \"{named_server}\"\n  \
                 hint {{ show on description \"jamz test: named device\" }}\n}}\n"
            ),
        )
        .unwrap();
        let mut cmd = rerun("child_plays_on_a_named_device_and_reports_events");
        cmd.env(CHILD_DIR_ENV, dir)
            .env(CHILD_SPEC_ENV, format!("device:{NAMED_ID}"))
            .env(CHILD_RESUMES_ENV, resumes.to_string())
            .env("XDG_CONFIG_HOME", &xdg)
            .env("PULSE_SERVER", default_server)
            .env_remove("PULSE_SINK");
        Run(ChildRun::spawn(cmd))
    }

    /// Waits (bounded) for a line starting with `what`; returns it.
    fn expect(&self, what: &str) -> String {
        self.0.expect(what, TIMEOUT)
    }

    fn finish(self) {
        let st = self.0.wait();
        assert!(st.success(), "child failed");
    }
}

/// PulseAudio "A" (or "B"): a private server in `dir/name` with a null sink.
fn start_server(dir: &Path, name: &str) -> Pulse {
    start_pulse(&dir.join(name), "named")
        .unwrap_or_else(|| panic!("PulseAudio {} starts", name.to_uppercase()))
}

#[test]
fn a_lost_named_device_is_reopened_first_when_it_returns() {
    if sink_or_skip().is_none() {
        return;
    }
    // Named and default devices on the same server: when it returns both are there again at
    // once, and the named one must win.
    let dir = common::tempdir();
    let a = start_server(dir.path(), "a");
    let server = a.server.clone();
    let run = Run::start(dir.path(), &server, &server, 1);
    run.expect(&format!("PLAYING {NAMED_ID}"));
    drop(a);
    run.expect("EVENT DeviceLost");
    let _a2 = start_server(dir.path(), "a");
    run.expect(&format!("EVENT DeviceRestored {NAMED_ID}"));
    run.expect("RESUMED");
    run.finish();
}

#[test]
fn a_named_device_that_stays_away_falls_back_to_the_default_and_playback_returns_with_it() {
    if sink_or_skip().is_none() {
        return;
    }
    let dir = common::tempdir();
    let a = start_server(dir.path(), "a");
    let b = start_server(dir.path(), "b");
    let run = Run::start(dir.path(), &a.server, &b.server, 2);
    run.expect(&format!("PLAYING {NAMED_ID}"));
    drop(a); // the named device's server dies; the default's stays
    run.expect("EVENT DeviceLost");
    run.expect(&format!("EVENT DeviceRestored {DEFAULT_ID}"));
    run.expect("RESUMED");
    // The named device comes back (a USB DAC plugged in again): playback moves back to it.
    let _a2 = start_server(dir.path(), "a");
    run.expect(&format!("EVENT DeviceRestored {NAMED_ID}"));
    run.expect("RESUMED");
    run.finish();
}

/// The child half: plays a long tone on the spec in CHILD_SPEC_ENV and reports what happens.
#[test]
#[ignore = "run by the named-device loss tests"]
fn child_plays_on_a_named_device_and_reports_events() {
    let (Some(dir), Ok(spec)) = (
        std::env::var_os(CHILD_DIR_ENV).map(PathBuf::from),
        std::env::var(CHILD_SPEC_ENV),
    ) else {
        eprintln!("skipped: only runs as the child of the named-device loss tests");
        return;
    };
    let spec: OutputSpec = spec.parse().unwrap();
    let (player, events, t0) = play_long_tone(&dir, &spec);
    let deadline = Instant::now() + TIMEOUT * 3;
    let mut restored = false;
    let mut resumes_left: u32 = std::env::var(CHILD_RESUMES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left).expect("events") {
            PlayerEvent::TrackStarted { .. } if !restored => {
                let OutputSpec::Device(id) = &spec else {
                    unreachable!()
                };
                println!("PLAYING {id}");
            }
            PlayerEvent::TrackStarted { .. } => {
                println!("RESUMED");
                resumes_left = resumes_left.saturating_sub(1);
                if resumes_left == 0 {
                    return;
                }
            }
            PlayerEvent::DeviceRestored { device, .. } => {
                restored = true;
                println!("EVENT DeviceRestored {device}");
                restart_on_the_timeline(&player, &dir, t0);
            }
            PlayerEvent::DeviceLost { message } => println!("EVENT DeviceLost {message}"),
            other => println!("EVENT {other:?}"),
        }
    }
}

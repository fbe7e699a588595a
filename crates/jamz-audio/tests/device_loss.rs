//! Device lost and restored: a player on the default device (ALSA -> a private PulseAudio) sees
//! its server killed, reports DeviceLost, and resumes on the new default device when a server
//! comes back. The player runs in a child process (this test binary re-run with another
//! PULSE_SERVER), because the server it talks to is chosen by its environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::pulse::start_pulse;
use common::{Fmt, RATE, make_file};
use jamz_audio::{OutputSpec, Player, PlayerEvent, Source};

/// Bound on each wait. Losing the device is noticed within the player's stall timeout (3 s).
const TIMEOUT: Duration = Duration::from_secs(20);

const CHILD_ENV: &str = "JAMZ_AUDIO_DEVICE_LOSS_CHILD";

#[test]
fn device_lost_is_reported_and_playback_resumes_on_the_new_default() {
    if std::env::var_os("JAMZ_PULSE_SINK").is_none() {
        eprintln!(
            "\n*** skipped: no PulseAudio (JAMZ_PULSE_SINK unset; scripts/env.d/pulseaudio.sh) ***\n"
        );
        return;
    }
    let dir = common::tempdir();
    let Some(pulse) = start_pulse(dir.path(), "lossy") else {
        panic!("PulseAudio is installed but a private instance did not start");
    };
    let server = pulse.server.clone();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_plays_and_reports_events",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .env("PULSE_SERVER", &server)
        .env_remove("PULSE_SINK")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let expect = |what: &str| {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.starts_with(what) => {
                    println!("child: {l}");
                    return l;
                }
                Ok(l) => println!("child: {l}"),
                Err(_) => panic!("child never said {what:?}"),
            }
        }
    };
    expect("PLAYING");
    drop(pulse); // the server dies: the device is gone
    expect("EVENT DeviceLost");
    let _pulse2 = start_pulse(dir.path(), "lossy").expect("second PulseAudio");
    expect("EVENT DeviceRestored");
    let l = expect("RESUMED");
    let st = child.wait().unwrap();
    assert!(st.success(), "child failed: {l}");
}

/// The child half: plays a long tone on the default device and reports what happens.
#[test]
#[ignore = "run by device_lost_is_reported_and_playback_resumes_on_the_new_default"]
fn child_plays_and_reports_events() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        eprintln!("skipped: only runs as the child of the device-loss test");
        return;
    };
    let tone: Vec<f32> = (0..RATE as usize * 30)
        .flat_map(|i| {
            let s = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / RATE as f32).sin();
            [s, s]
        })
        .collect();
    let src = make_file(&dir, "tone", Fmt::Flac, &tone);
    let player = Player::new(&OutputSpec::Default).unwrap();
    let events = player.events();
    let t0 = Instant::now() + Duration::from_millis(300);
    player.start(Source::new("tone", &src), 0.0, t0).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut restored = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left).expect("events") {
            PlayerEvent::TrackStarted { .. } if !restored => println!("PLAYING"),
            PlayerEvent::TrackStarted { at, .. } => {
                // Resumed where the group is: position = time since the original start.
                let pos = player.audible_position(at).unwrap();
                let want = (at - t0).as_secs_f64();
                println!(
                    "RESUMED at {:.3} s of the track, {:.3} s after the start",
                    pos.seconds, want
                );
                assert!(
                    (pos.seconds - want).abs() < 0.01,
                    "resumed at {} vs {want}",
                    pos.seconds
                );
                return;
            }
            PlayerEvent::DeviceRestored { .. } => {
                restored = true;
                println!("EVENT DeviceRestored");
            }
            PlayerEvent::DeviceLost { message } => {
                assert!(player.audible_position(Instant::now()).is_none());
                println!("EVENT DeviceLost {message}");
            }
            other => println!("EVENT {other:?}"),
        }
    }
}

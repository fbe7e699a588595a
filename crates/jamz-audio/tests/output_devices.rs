//! Listing the output devices and opening one by its id, on the real host (ALSA, whose `pulse`
//! and `default` devices reach the private PulseAudio null sink that scripts/env.d/pulseaudio.sh
//! starts). Without that PulseAudio the tests say "skipped: no PulseAudio" on stderr and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::pulse::sink_or_skip;
use common::{Fmt, RATE, make_file};
use jamz_audio::{
    AudioError, OutputDevice, OutputSpec, Player, PlayerEvent, SYSTEM_DEFAULT_NAME, Source,
    output_devices,
};

/// Bound on every wait. A new stream on a PulseAudio sink can stall ~2 s before its first
/// buffers flow (docs/architecture.md, real-time audio without a sound card), so this is far above any healthy start.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Schedule the first sound this far ahead: the first callbacks may report latency 0 before
/// the stream is polled (docs/architecture.md, real-time audio without a sound card).
const LEAD: Duration = Duration::from_millis(300);

/// The listed real devices (everything after the synthetic "System default" entry).
fn real_devices() -> Vec<OutputDevice> {
    let list = output_devices().expect("the host lists its output devices");
    for d in &list {
        println!("{}\t{}\t{}", d.id, d.name, d.is_default);
    }
    list.into_iter().skip(1).collect()
}

#[test]
fn the_list_starts_with_the_system_default_and_has_real_devices() {
    if sink_or_skip().is_none() {
        return;
    }
    let list = output_devices().unwrap();
    assert_eq!(
        list[0],
        OutputDevice {
            id: "default".into(),
            name: SYSTEM_DEFAULT_NAME.into(),
            is_default: true,
        }
    );
    let real = real_devices();
    assert!(!real.is_empty(), "no real output device listed: {list:?}");
    for d in &real {
        assert!(!d.name.is_empty(), "{d:?} has no name");
    }
    // At most one real device is the current default.
    assert!(
        real.iter().filter(|d| d.is_default).count() <= 1,
        "{real:?}"
    );
}

#[test]
fn every_listed_id_is_an_output_spec_that_prints_back_the_same() {
    if sink_or_skip().is_none() {
        return;
    }
    for d in output_devices().unwrap() {
        let spec: OutputSpec = d.id.parse().unwrap_or_else(|e| panic!("{d:?}: {e}"));
        assert_eq!(spec.to_string(), d.id);
        if d.id != "default" {
            assert!(matches!(spec, OutputSpec::Device(_)), "{d:?} gave {spec:?}");
        }
    }
}

/// Opens `device` by its id, plays a track on it and waits (bounded) until the device's callback
/// has rendered its first frame and the audible position has moved on.
fn opens_and_plays(device: &OutputDevice) {
    let spec: OutputSpec = device.id.parse().unwrap();
    let player = Player::new(&spec).unwrap_or_else(|e| panic!("{} does not open: {e}", device.id));
    assert_eq!(player.spec(), &spec);

    let dir = common::tempdir();
    let src = make_file(
        dir.path(),
        "music",
        Fmt::Wav,
        &common::music(RATE as usize * 5, 7),
    );
    let events = player.events();
    let t0 = Instant::now() + LEAD;
    player.start(Source::new("music", &src), 0.0, t0).unwrap();

    // TrackStarted comes from the device's callback rendering the first frame: the stream runs.
    let deadline = Instant::now() + TIMEOUT;
    let started_at = loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(PlayerEvent::TrackStarted { track, at }) => {
                assert_eq!(track, "music");
                break at;
            }
            Ok(PlayerEvent::DeviceLost { message }) => {
                panic!("{}: device lost: {message}", device.id)
            }
            Ok(PlayerEvent::Error { message, .. }) => panic!("{}: {message}", device.id),
            Ok(_) => {}
            Err(e) => panic!("{}: the track never started: {e}", device.id),
        }
    };
    assert!(
        player.device_latency().is_some(),
        "no callback reported a latency"
    );

    // And the clock moves on: once the track is audible (from `started_at`, which includes the
    // device latency), its audible position advances by a clear step. A reading of `None` in
    // between is not a stop: through ALSA's PulseAudio plugin the delay a stream reports jumps
    // during its first second (the server fills its buffer), which can move the instant the
    // track became audible past `now` for a moment; a track that stopped would never reach
    // the step.
    const STEP_S: f64 = 0.1;
    let mut first: Option<f64> = None;
    loop {
        let now = Instant::now();
        if let Some(pos) = player.audible_position(now) {
            assert_eq!(pos.track, "music");
            match first {
                None => first = Some(pos.seconds),
                Some(f) if pos.seconds >= f + STEP_S => {
                    println!(
                        "{} ({}): started at {:?} from now, heard from {f:.3} s, playing at {:.3} s, device latency {:?}",
                        device.id,
                        device.name,
                        started_at.saturating_duration_since(now),
                        pos.seconds,
                        player.device_latency()
                    );
                    break;
                }
                Some(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "{}: the position never advanced by {STEP_S} s (first heard at {first:?})",
            device.id
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
    // No loss reported along the way.
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev, PlayerEvent::DeviceLost { .. }),
            "{}: {ev:?}",
            device.id
        );
    }
}

#[test]
fn the_first_listed_device_opens_by_id_and_plays() {
    if sink_or_skip().is_none() {
        return;
    }
    let first = real_devices().into_iter().next().expect("a real device");
    opens_and_plays(&first);
}

/// The first listed device may be one that discards everything (ALSA's `null` here); the
/// current default one, opened by its id, plays through the PulseAudio sink.
#[test]
fn the_current_default_device_opens_by_id_and_plays() {
    if sink_or_skip().is_none() {
        return;
    }
    let real = real_devices();
    let default = real
        .iter()
        .find(|d| d.is_default)
        .unwrap_or_else(|| panic!("no listed device is the default: {real:?}"));
    opens_and_plays(default);
}

#[test]
fn an_unknown_device_id_is_refused_with_its_name_and_the_choices() {
    if sink_or_skip().is_none() {
        return;
    }
    let id = "alsa:no-such-device-7f3a";
    let err = Player::new(&OutputSpec::Device(id.into())).unwrap_err();
    let AudioError::Device(message) = &err else {
        panic!("expected a device error, got {err:?}");
    };
    assert!(
        message.starts_with(&format!("output device `{id}` not found; available: ")),
        "{message}"
    );
    // The choices named are the listed devices' ids.
    let real = real_devices();
    let listed = real[0].id.strip_prefix("device:").unwrap();
    assert!(message.contains(listed), "{message} does not name {listed}");
}

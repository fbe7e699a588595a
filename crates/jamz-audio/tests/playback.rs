//! The player on the `wav:` output (real-time paced, the same clock model as a device): where
//! scheduled sounds land, latency offset, gapless queueing, rate trim, and no clicks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Fmt, RATE, make_file};
use crossbeam_channel::Receiver;
use jamz_audio::{OutputSpec, PACED_RATE, Player, PlayerEvent, Source, WavSchedule};

/// Lead before a scheduled start: well past the output's own buffering (two 10 ms periods).
const LEAD: Duration = Duration::from_millis(300);

/// Upper bound on waiting for any event: the longest scenario plays 11 s.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How close a click lands to its schedule in the WAV: the clock model is exact up to the
/// start's quantisation to a whole output frame (1/48000 s = 21 us) and the resampler's
/// sub-frame centroid; 2 frames leaves room for both.
const PLACEMENT_TOLERANCE_S: f64 = 2.0 / PACED_RATE as f64;

fn unix_ns(t: Instant) -> f64 {
    jamz_audio::unix_time_of(t).as_nanos() as f64
}

fn wait_for(events: &Receiver<PlayerEvent>, pred: impl Fn(&PlayerEvent) -> bool) -> PlayerEvent {
    common::wait_for(events, EVENT_TIMEOUT, pred)
}

fn ended(id: &str) -> impl Fn(&PlayerEvent) -> bool + '_ {
    move |e| matches!(e, PlayerEvent::TrackEnded { track } if track == id)
}

/// Reads a `wav:` output: its samples (stereo) and the wall time of its frame 0 (Unix ns).
fn read_output(path: &Path) -> (Vec<f32>, f64) {
    let sched = WavSchedule::read(path).unwrap();
    assert_eq!(sched.sample_rate, PACED_RATE);
    let mut r = hound::WavReader::open(path).unwrap();
    let samples: Vec<f32> = r.samples::<f32>().map(|s| s.unwrap()).collect();
    (samples, sched.frame0_unix_ns as f64)
}

/// Unix ns at which each click (|x| >= 0.3) of the output plays.
fn click_instants(samples: &[f32], frame0_ns: f64) -> Vec<f64> {
    click_instants_gap(samples, frame0_ns, 2000)
}

fn click_instants_gap(samples: &[f32], frame0_ns: f64, min_gap: usize) -> Vec<f64> {
    common::click_frames(samples, 2, 0.3, min_gap)
        .into_iter()
        .map(|f| frame0_ns + common::click_centroid(samples, 2, f) * 1e9 / f64::from(PACED_RATE))
        .collect()
}

struct Rig {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    out: PathBuf,
}

impl Rig {
    /// A player on the rig's `wav:` output, and its events.
    fn wav_player(&self) -> (Player, Receiver<PlayerEvent>) {
        player_on(&OutputSpec::Wav(self.out.clone()))
    }
}

/// A player on `spec`, and its events.
fn player_on(spec: &OutputSpec) -> (Player, Receiver<PlayerEvent>) {
    let player = Player::new(spec).unwrap();
    let events = player.events();
    (player, events)
}

fn rig() -> Rig {
    let dir = common::tempdir();
    let p = dir.path().to_owned();
    Rig {
        out: p.join("out.wav"),
        dir: p,
        _dir: dir,
    }
}

fn clicks_file(dir: &Path, name: &str, seconds: f64, at_s: &[f64]) -> PathBuf {
    let frames = (seconds * f64::from(RATE)) as usize;
    let at: Vec<usize> = at_s
        .iter()
        .map(|s| (s * f64::from(RATE)).round() as usize)
        .collect();
    make_file(dir, name, Fmt::Wav, &common::clicks(frames, &at))
}

#[test]
fn scheduled_start_plays_each_click_at_its_instant() {
    let rig = rig();
    let src = clicks_file(&rig.dir, "c", 1.2, &[0.5, 1.0]);
    let (player, events) = rig.wav_player();
    let t = Instant::now() + LEAD;
    player.start(Source::new("c", &src), 0.25, t).unwrap();
    wait_for(&events, ended("c"));
    // The position the player reports for an instant it has rendered.
    let pos = player
        .audible_position(t + Duration::from_millis(500))
        .unwrap();
    drop(player);
    assert_eq!(pos.track, "c");
    assert!(
        (pos.seconds - 0.75).abs() < 1e-4,
        "audible_position says {}",
        pos.seconds
    );

    let (samples, frame0) = read_output(&rig.out);
    let got = click_instants(&samples, frame0);
    let want = [unix_ns(t) + 0.25e9, unix_ns(t) + 0.75e9];
    assert_eq!(got.len(), 2, "clicks in the output: {got:?}");
    for (g, w) in got.iter().zip(want) {
        let err = (g - w) / 1e9;
        println!(
            "click scheduled at T{:+.6} s landed {:+.1} us off",
            (w - unix_ns(t)) / 1e9,
            err * 1e6
        );
        assert!(
            err.abs() <= PLACEMENT_TOLERANCE_S,
            "click {err:+.6} s off its schedule"
        );
    }
}

#[test]
fn latency_offset_moves_output_earlier_by_the_offset() {
    let rig = rig();
    let src = clicks_file(&rig.dir, "c", 0.6, &[0.3]);
    let (player, events) = rig.wav_player();
    let offset = Duration::from_millis(200); // a Bluetooth car stereo
    player.set_latency_offset(offset).unwrap();
    let t = Instant::now() + LEAD + offset;
    player.start(Source::new("c", &src), 0.0, t).unwrap();
    wait_for(&events, ended("c"));
    drop(player);
    let (samples, frame0) = read_output(&rig.out);
    let got = click_instants(&samples, frame0);
    assert_eq!(got.len(), 1);
    // Written to the device 200 ms before it is heard.
    let err = (got[0] - (unix_ns(t) + 0.3e9 - offset.as_nanos() as f64)) / 1e9;
    println!(
        "with a 200 ms offset the click was written {:+.1} us off",
        err * 1e6
    );
    assert!(err.abs() <= PLACEMENT_TOLERANCE_S);
}

#[test]
fn queued_track_follows_with_no_gap() {
    let rig = rig();
    // A's click 100 frames before its end, B's 100 frames after its start: in the output they
    // must be 200 source frames apart, converted to the output rate.
    let a_len = 0.5;
    let a = clicks_file(&rig.dir, "a", a_len, &[a_len - 100.0 / f64::from(RATE)]);
    let b = clicks_file(&rig.dir, "b", 0.5, &[100.0 / f64::from(RATE)]);
    let (player, events) = rig.wav_player();
    player
        .start(Source::new("a", &a), 0.0, Instant::now() + LEAD)
        .unwrap();
    player.enqueue_next(Source::new("b", &b)).unwrap();
    wait_for(&events, ended("a"));
    wait_for(
        &events,
        |e| matches!(e, PlayerEvent::TrackStarted { track, .. } if track == "b"),
    );
    wait_for(&events, ended("b"));
    drop(player);
    let (samples, frame0) = read_output(&rig.out);
    let got = click_instants_gap(&samples, frame0, 50);
    assert_eq!(got.len(), 2, "{got:?}");
    let gap_frames = (got[1] - got[0]) / 1e9 * f64::from(PACED_RATE);
    let want = 200.0 * f64::from(PACED_RATE) / f64::from(RATE);
    println!("gapless: clicks {gap_frames:.2} output frames apart, expected {want:.2}");
    assert!(
        (gap_frames - want).abs() <= 1.5,
        "gap between tracks: {gap_frames:.2} vs {want:.2}"
    );
}

/// Rate trim +500 ppm: over 10 s of output, the track advances 10.005 s.
#[test]
fn rate_trim_plus_500_ppm_gains_5_ms_over_10_s() {
    let rig = rig();
    let src = clicks_file(&rig.dir, "c", 10.8, &[0.4, 10.4]);
    let (player, events) = rig.wav_player();
    player.set_rate_trim(500.0).unwrap();
    let t = Instant::now() + LEAD;
    player.start(Source::new("c", &src), 0.0, t).unwrap();
    wait_for(&events, ended("c"));
    let p0 = player
        .audible_position(t + Duration::from_millis(400))
        .unwrap();
    drop(player);
    let (samples, frame0) = read_output(&rig.out);
    let got = click_instants(&samples, frame0);
    assert_eq!(got.len(), 2, "{got:?}");
    // 10 s of track played in `wall` seconds; scale the gain to 10 s of wall time.
    let wall = (got[1] - got[0]) / 1e9;
    let gain_ms = (10.0 - wall) / wall * 10.0 * 1e3;
    println!(
        "rate trim +500 ppm: 10 s of track took {wall:.6} s: +{gain_ms:.3} ms per 10 s (want 5 +- 0.5)"
    );
    assert!(
        (gain_ms - 5.0).abs() <= 0.5,
        "position gained {gain_ms:.3} ms over 10 s"
    );
    // The clock agrees: the position 0.4 s after the start is 0.4 * 1.0005 s.
    assert!(
        (p0.seconds - 0.4 * 1.0005).abs() < 1e-4,
        "audible_position {}",
        p0.seconds
    );
}

/// Volume changes, rate-trim jumps (+-1000 ppm), pause, resume and seek never step the waveform: the largest sample-to-sample
/// change stays near the sine's own.
#[test]
fn volume_trim_pause_resume_and_seek_do_not_click() {
    let rig = rig();
    let frames = RATE as usize * 3;
    let src = make_file(
        &rig.dir,
        "sine",
        Fmt::Wav,
        &common::sine(frames, 440.0, 0.5),
    );
    let (player, events) = rig.wav_player();
    let t = Instant::now() + LEAD;
    player.start(Source::new("s", &src), 0.0, t).unwrap();
    wait_for(&events, |e| matches!(e, PlayerEvent::TrackStarted { .. }));
    // Each change waits until the previous one has been rendered: the paced output renders one
    // 10 ms period ahead of its playback instant, so once the wall clock is 50 ms past `at` the
    // output is past it too. The wait polls the event queue (10 ms) and is bounded.
    let rendered = |at: Instant| {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while Instant::now() < at + Duration::from_millis(50) {
            assert!(Instant::now() < deadline);
            let _ = events.recv_timeout(Duration::from_millis(10));
        }
    };
    rendered(t + Duration::from_millis(200));
    player.set_volume(0.2).unwrap();
    player.set_rate_trim(1000.0).unwrap();
    rendered(t + Duration::from_millis(300));
    player.set_volume(1.0).unwrap();
    player.set_rate_trim(-1000.0).unwrap();
    rendered(t + Duration::from_millis(400));
    // Where it pauses is where the track is audible when pause() runs: bracketed by the wall
    // clock read just before and after the call (not a bound on how long anything takes).
    let before = Instant::now();
    let paused = player.pause().unwrap();
    let after = Instant::now();
    rendered(t + Duration::from_millis(500));
    player
        .resume(Instant::now() + Duration::from_millis(100))
        .unwrap();
    rendered(t + Duration::from_millis(700));
    player
        .seek(1.2345, Instant::now() + Duration::from_millis(100))
        .unwrap();
    rendered(t + Duration::from_millis(900));
    player.stop();
    rendered(t + Duration::from_millis(1000));
    drop(player);
    // +-1000 ppm trims for 100 ms each move the position by 0.1 ms; 2 ms covers that and the
    // paced output's frame rounding.
    let earliest = (before - t).as_secs_f64() - 0.002;
    let latest = (after - t).as_secs_f64() + 0.002;
    assert!(
        paused.seconds >= earliest && paused.seconds <= latest,
        "paused at {} s, not within [{earliest}, {latest}] (where the track was when pause() ran)",
        paused.seconds
    );

    let (samples, _) = read_output(&rig.out);
    let max_step = samples
        .chunks_exact(2)
        .map(|f| f[0])
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    // The sine's own largest step: 2 pi f / rate * amplitude.
    let sine_step = 2.0 * std::f32::consts::PI * 440.0 / PACED_RATE as f32 * 0.5;
    println!("largest sample step {max_step:.4} (the sine's own: {sine_step:.4})");
    assert!(
        max_step < 1.5 * sine_step,
        "a click: step {max_step} vs the sine's {sine_step}"
    );
    let energy: f32 = samples.iter().map(|s| s * s).sum();
    assert!(energy > 1000.0, "the sine was not played");
}

#[test]
fn null_output_reports_start_end_and_position() {
    let rig = rig();
    let src = clicks_file(&rig.dir, "c", 0.4, &[0.1]);
    let (player, events) = player_on(&OutputSpec::Null);
    assert_eq!(player.sample_rate(), PACED_RATE);
    let t = Instant::now() + LEAD;
    player.start(Source::new("n", &src), 0.0, t).unwrap();
    // Predicted before it plays:
    let p = player
        .audible_position(t + Duration::from_millis(100))
        .unwrap();
    assert!((p.seconds - 0.1).abs() < 1e-6);
    assert!(
        player
            .audible_position(t - Duration::from_millis(100))
            .is_none()
    );
    let ev = wait_for(&events, |e| matches!(e, PlayerEvent::TrackStarted { .. }));
    let PlayerEvent::TrackStarted { at, .. } = ev else {
        unreachable!()
    };
    let off = if at > t { at - t } else { t - at };
    assert!(
        off <= Duration::from_micros(21),
        "started {off:?} off its instant"
    );
    wait_for(&events, ended("n"));
    assert!(player.set_rate_trim(1500.0).is_err());
    assert!(player.set_volume(f32::NAN).is_err());
}

#[test]
fn a_file_cut_short_plays_what_it_has_then_reports_an_error_and_ends() {
    let rig = rig();
    let src = make_file(&rig.dir, "cut", Fmt::Flac, &common::music(RATE as usize, 3));
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
    let (player, events) = player_on(&OutputSpec::Null);
    player
        .start(Source::new("cut", &src), 0.0, Instant::now() + LEAD)
        .unwrap();
    let err = wait_for(&events, |e| matches!(e, PlayerEvent::Error { .. }));
    println!("{err:?}");
    let PlayerEvent::Error { track, message } = err else {
        unreachable!()
    };
    assert_eq!(track.as_deref(), Some("cut"));
    assert!(message.contains("truncated"), "{message}");
    wait_for(&events, ended("cut"));
}

#[test]
fn starting_an_unreadable_file_fails_at_once_and_keeps_playing_the_old_one() {
    let rig = rig();
    let good = clicks_file(&rig.dir, "good", 2.0, &[1.0]);
    let bad = rig.dir.join("bad.mp3");
    std::fs::write(&bad, b"ID3 definitely not an mp3").unwrap();
    let (player, events) = player_on(&OutputSpec::Null);
    let t = Instant::now() + LEAD;
    player.start(Source::new("good", &good), 0.0, t).unwrap();
    wait_for(&events, |e| matches!(e, PlayerEvent::TrackStarted { .. }));
    let e = player
        .start(Source::new("bad", &bad), 0.0, Instant::now())
        .unwrap_err();
    println!("{e}");
    assert!(e.to_string().contains("bad.mp3"));
    let p = player
        .audible_position(t + Duration::from_millis(100))
        .unwrap();
    assert_eq!(p.track, "good");
}

/// How long a starved read waits for the rest to arrive before it times out, as the cache's
/// growing reader's read wait does.
const STARVED_READ_WAIT: Duration = Duration::from_millis(20);

/// A stream over a file whose bytes past `limit` are "not downloaded yet" (reads wait for
/// them with a bounded wait and time out, as the cache's growing reader does) until the
/// reads have been starved for `starve`: then the rest "arrives".
#[derive(Debug)]
struct StarvedOnce {
    path: PathBuf,
    limit: u64,
    starve: Duration,
    state: Arc<Arrival>,
}

/// When the first starved read happened and whether the rest has arrived, with the
/// condition that waiters are woken on when either changes.
#[derive(Debug, Default)]
struct Arrival {
    state: Mutex<(Option<Instant>, bool)>,
    arrived: std::sync::Condvar,
}

impl Arrival {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, bool)> {
        self.state.lock().unwrap()
    }

    /// Waits, at most `timeout`, for the first starved read; whether it happened.
    fn wait_starved(&self, timeout: Duration) -> bool {
        let (st, _) = self
            .arrived
            .wait_timeout_while(self.lock(), timeout, |st| st.0.is_none())
            .unwrap();
        st.0.is_some()
    }
}

struct StarvedReader {
    file: std::fs::File,
    pos: u64,
    len: u64,
    limit: u64,
    starve: Duration,
    state: Arc<Arrival>,
}

impl jamz_audio::OpenStream for StarvedOnce {
    fn open(&self) -> std::io::Result<Box<dyn jamz_audio::StreamRead>> {
        let file = std::fs::File::open(&self.path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(StarvedReader {
            file,
            pos: 0,
            len,
            limit: self.limit,
            starve: self.starve,
            state: self.state.clone(),
        }))
    }
}

impl std::io::Read for StarvedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Seek;
        let mut st = self.state.lock();
        if !st.1 && self.pos >= self.limit {
            let first = st.0.is_none();
            let due = *st.0.get_or_insert_with(Instant::now) + self.starve;
            if first {
                self.state.arrived.notify_all();
            }
            let now = Instant::now();
            if now < due {
                // Wait for the arrival, at most the read wait (it comes at `due`).
                let wait = STARVED_READ_WAIT.min(due - now);
                let (st, _) = self
                    .state
                    .arrived
                    .wait_timeout_while(st, wait, |st| !st.1)
                    .unwrap();
                if !st.1 && Instant::now() < due {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "not downloaded yet",
                    ));
                }
                drop(st);
                arrive(&self.state);
                return self.read(buf);
            }
            st.1 = true;
            self.state.arrived.notify_all();
        }
        let cap = if st.1 { self.len } else { self.limit };
        drop(st);
        let want = buf.len().min(cap.saturating_sub(self.pos) as usize);
        self.file.seek(std::io::SeekFrom::Start(self.pos))?;
        let n = std::io::Read::read(&mut self.file, &mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The rest has arrived: every waiting reader goes on.
fn arrive(arrival: &Arrival) {
    arrival.lock().1 = true;
    arrival.arrived.notify_all();
}

impl std::io::Seek for StarvedReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            std::io::SeekFrom::Start(n) => n,
            std::io::SeekFrom::End(d) => self.len.saturating_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

impl jamz_audio::StreamRead for StarvedReader {
    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[test]
fn a_stream_that_stalls_plays_silence_then_resumes_on_its_timeline() {
    let rig = rig();
    let at = [0.5, 1.0, 1.5, 2.4, 2.8];
    let src = clicks_file(&rig.dir, "s", 3.0, &at);
    let len = std::fs::metadata(&src).unwrap().len();
    // Bytes for the first 1.2 s arrive; the rest only once the decoder has waited 1.2 s
    // for them (it runs 0.5 s ahead: audio stops at 1.2 s and returns near 1.9 s).
    let stream = Arc::new(StarvedOnce {
        path: src.clone(),
        limit: len * 12 / 30,
        starve: Duration::from_millis(1200),
        state: Arc::default(),
    });
    let (player, events) = rig.wav_player();
    let t = Instant::now() + LEAD;
    player
        .start(Source::streaming("s", "s.wav", stream.clone()), 0.0, t)
        .unwrap();
    wait_for(&events, ended("s"));
    let stats = player.callback_stats();
    drop(player);
    assert!(stream.state.lock().1, "the stream stalled and resumed");
    let (samples, frame0) = read_output(&rig.out);
    let got = click_instants(&samples, frame0);
    println!(
        "underruns {} ({} frames)",
        stats.underruns, stats.underrun_frames
    );
    assert!(stats.underruns > 0, "the stall is counted as underruns");
    let landed = |s: f64| {
        got.iter()
            .map(|g| (g - (unix_ns(t) + s * 1e9)) / 1e9)
            .find(|e| e.abs() < 0.1)
    };
    for s in [0.5, 1.0, 2.4, 2.8] {
        let err = landed(s).unwrap_or_else(|| panic!("click at {s} s missing: {got:?}"));
        println!("click at {s} s landed {:+.1} us off", err * 1e6);
        assert!(
            err.abs() <= PLACEMENT_TOLERANCE_S,
            "click at {s} s off by {err} s"
        );
    }
    assert!(
        landed(1.5).is_none(),
        "the stalled stretch is silent: {got:?}"
    );
}

/// A start whose stream waits for bytes that never come (a download whose size is not
/// known, an M4A whose index is at its end) is opened on another thread with its ticket:
/// a stop given meanwhile supersedes it, its open stops waiting and it does nothing, and a
/// later start plays as usual.
#[test]
fn a_start_waiting_for_its_bytes_is_superseded_by_a_later_command() {
    let rig = rig();
    let src = clicks_file(&rig.dir, "held", 3.0, &[0.5]);
    let stream = Arc::new(StarvedOnce {
        path: src.clone(),
        // The header only: the open's first blocks wait.
        limit: 44,
        starve: Duration::from_secs(3600),
        state: Arc::default(),
    });
    let (player, events) = rig.wav_player();
    let player = Arc::new(player);
    let ticket = player.ticket();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let opening = {
        let player = Arc::clone(&player);
        let stream = stream.clone();
        std::thread::spawn(move || {
            let r = player.start_with(
                ticket,
                Source::streaming("held", "held.wav", stream),
                0.0,
                Instant::now() + LEAD,
            );
            let _ = tx.send(r);
        })
    };
    // Bounded wait until the open is starved of bytes.
    assert!(
        stream.state.wait_starved(EVENT_TIMEOUT),
        "the open never read past the header"
    );
    assert!(
        rx.try_recv().is_err(),
        "the start waits for its bytes meanwhile"
    );
    player.stop();
    let r = rx
        .recv_timeout(EVENT_TIMEOUT)
        .expect("the superseded open stopped waiting");
    opening.join().unwrap();
    assert!(
        matches!(r, Err(jamz_audio::AudioError::Superseded)),
        "superseded: {r:?}"
    );
    // The player goes on: a file starts and ends; the held stream never plays.
    let file = clicks_file(&rig.dir, "next", 1.0, &[0.2]);
    player
        .start(Source::new("next", &file), 0.0, Instant::now() + LEAD)
        .unwrap();
    loop {
        let e = events
            .recv_timeout(EVENT_TIMEOUT)
            .expect("the next track ends");
        assert!(
            !matches!(&e, PlayerEvent::TrackStarted { track, .. } if track == "held"),
            "the superseded track started"
        );
        if ended("next")(&e) {
            break;
        }
    }
}

//! Decoding ahead of the audio callback (crates/jamz-audio/README.md, "Threads"): with both
//! cores taken by busy loops and a decoder slowed down (a read of the track waits until its
//! bytes are due at the source's rate, as from a slow disk or a slow codec), a track still plays to its end with no underrun;
//! while a decoder slower than the music itself is counted as underruns. The output is a
//! `wav:` file, rendered in real time by the player's own clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::load::Load;
use common::{Fmt, RATE, Rng, make_file};
use jamz_audio::{CallbackStats, OpenStream, OutputSpec, Player, PlayerEvent, Source, StreamRead};

/// The track's length: long enough for many ring refills.
const SECONDS: f64 = 4.0;
/// Bound on the track's end arriving (it plays in real time, plus start-up).
const END_WAIT: Duration = Duration::from_secs(30);
/// Lead from the start call to the start instant.
const LEAD: Duration = Duration::from_millis(300);

/// A track whose bytes past its first `fast_bytes` come no faster than `speed` times the
/// rate the music needs them (the start is on time: a start that waits
/// for its first bytes is a late start, caught up, not an underrun).
#[derive(Debug)]
struct SlowTrack {
    path: PathBuf,
    /// Bytes per second of music (the file's length over its duration).
    bytes_per_s: f64,
    speed: f64,
    fast_bytes: u64,
    done: Arc<Done>,
}

/// Set when the test is done with a track: a read waiting for its bytes' due time stops
/// waiting.
#[derive(Debug, Default)]
struct Done {
    done: Mutex<bool>,
    changed: Condvar,
}

/// Sets [`Done`] when dropped.
struct DoneOnDrop(Arc<Done>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

impl Done {
    fn set(&self) {
        *self.done.lock().unwrap() = true;
        self.changed.notify_all();
    }

    /// Waits until `due`, or until the test is done with the track.
    fn wait_until(&self, due: Instant) {
        let Some(ahead) = due.checked_duration_since(Instant::now()) else {
            return;
        };
        let done = self.done.lock().unwrap();
        let _ = self
            .changed
            .wait_timeout_while(done, ahead, |d| !*d)
            .unwrap();
    }
}

struct SlowReader {
    file: std::fs::File,
    pos: u64,
    len: u64,
    fast_bytes: u64,
    /// Bytes per second past `fast_bytes`, and when the first of them was read.
    rate: f64,
    slow_since: Option<Instant>,
    done: Arc<Done>,
}

impl OpenStream for SlowTrack {
    fn open(&self) -> std::io::Result<Box<dyn StreamRead>> {
        let file = std::fs::File::open(&self.path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(SlowReader {
            file,
            pos: 0,
            len,
            fast_bytes: self.fast_bytes,
            rate: self.bytes_per_s * self.speed,
            slow_since: None,
            done: Arc::clone(&self.done),
        }))
    }
}

impl Read for SlowReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        if self.pos > self.fast_bytes {
            // These bytes are not to be had before the source's rate allows, as from a slow
            // disk: the read waits for their due time (or for the test to be done).
            let since = *self.slow_since.get_or_insert_with(Instant::now);
            let due =
                since + Duration::from_secs_f64((self.pos - self.fast_bytes) as f64 / self.rate);
            self.done.wait_until(due);
        }
        Ok(n)
    }
}

impl Seek for SlowReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl StreamRead for SlowReader {
    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

/// Plays `track` to its end on a fresh `wav:` output: the player's callback statistics and
/// the seconds of the output that are not silent.
fn play_to_end(dir: &std::path::Path, name: &str, track: SlowTrack) -> (CallbackStats, f64) {
    let out = dir.join(format!("{name}.out.wav"));
    let player = Player::new(&OutputSpec::Wav(out.clone())).unwrap();
    let events = player.events();
    // However this ends (a panic included), a decoder still waiting for bytes is let go.
    let done = DoneOnDrop(Arc::clone(&track.done));
    let source = Source::streaming(name, track.path.clone(), Arc::new(track));
    player.start(source, 0.0, Instant::now() + LEAD).unwrap();
    let deadline = Instant::now() + END_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(PlayerEvent::TrackEnded { track }) if track == name => break,
            Ok(PlayerEvent::Error { message, .. }) => panic!("{name}: {message}"),
            Ok(_) => {}
            Err(e) => panic!("{name}: no end within {END_WAIT:?}: {e}"),
        }
    }
    let stats = player.callback_stats();
    println!(
        "{name}: {} callbacks, mean {:.1} us, max {:.1} us, underruns {} ({} frames)",
        stats.callbacks,
        stats.mean.as_secs_f64() * 1e6,
        stats.max.as_secs_f64() * 1e6,
        stats.underruns,
        stats.underrun_frames
    );
    drop(done);
    drop(player);
    let mut wav = hound::WavReader::open(&out).unwrap();
    let channels = usize::from(wav.spec().channels);
    let rate = f64::from(wav.spec().sample_rate);
    let samples: Vec<f32> = wav.samples::<f32>().map(|s| s.unwrap()).collect();
    let sounding = samples
        .chunks(channels)
        .filter(|f| f.iter().any(|x| x.abs() > 1e-4))
        .count() as f64
        / rate;
    println!("{name}: {sounding:.3} s of sound");
    (stats, sounding)
}

#[test]
fn decoding_ahead_rides_out_busy_cores_and_a_slow_decoder_and_a_too_slow_one_is_counted() {
    let seed = 0x5eed_0014;
    println!("seed {seed:#x}");
    let mut rng = Rng::new(seed);
    let frames = (SECONDS * f64::from(RATE)) as usize;
    let noise: Vec<f32> = (0..frames * 2).map(|_| 0.3 * rng.unit()).collect();
    let dir = common::tempdir();
    let mp3 = make_file(dir.path(), "noise", Fmt::Mp3, &noise);
    let bytes_per_s = std::fs::metadata(&mp3).unwrap().len() as f64 / SECONDS;

    // Both cores busy; the decoder's bytes come at 3 times the music's rate, in reads
    // that each sleep: the 0.5 s the decode thread keeps ahead absorbs it.
    let (slow, sounding) = {
        let _busy = Load::start();
        play_to_end(
            dir.path(),
            "slow",
            SlowTrack {
                path: mp3.clone(),
                bytes_per_s,
                speed: 3.0,
                fast_bytes: (bytes_per_s * 0.5) as u64,
                done: Arc::default(),
            },
        )
    };
    assert!(slow.callbacks > 0, "the output ran: {slow:?}");
    assert_eq!(
        slow.underruns, 0,
        "a decoder 3x faster than the music never lets the callback run dry: {slow:?}"
    );
    assert!(
        sounding > SECONDS - 0.1,
        "the whole track was heard: {sounding:.3} s of {SECONDS} s"
    );

    // Bytes at half the music's rate: the ring runs dry, and that is counted.
    let (too_slow, gapped) = play_to_end(
        dir.path(),
        "too-slow",
        SlowTrack {
            path: mp3,
            bytes_per_s,
            speed: 0.5,
            fast_bytes: (bytes_per_s * 0.5) as u64,
            done: Arc::default(),
        },
    );
    assert!(
        too_slow.underruns > 0 && too_slow.underrun_frames > 0,
        "a decoder slower than the music is counted as underruns: {too_slow:?}"
    );
    assert!(
        gapped < SECONDS - 0.5,
        "what the underruns cost is silent: {gapped:.3} s of {SECONDS} s heard"
    );
}

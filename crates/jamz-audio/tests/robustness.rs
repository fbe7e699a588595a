//! Every truncation of small test files, and thousands of seeded random byte flips, either
//! decode or fail with an error: never a panic, never a hang.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Fmt, RATE, Rng, make_file};
use jamz_audio::{Decoder, read_tags};

/// Length of the test files: 0.1 s (several packets of every codec) keeps "every truncation"
/// (one decode per byte length) to about 40,000 decodes in all, most of them tiny.
const SECONDS: f64 = 0.1;

/// Every this many cases, also read the tags (that path goes through a file).
const TAG_SAMPLE_EVERY: usize = 16;

/// Number of random-flip cases per format (5 formats: a few thousand in all).
const FLIP_CASES: u64 = 600;

/// Default seed; set JAMZ_FUZZ_SEED to replay another run.
const DEFAULT_SEED: u64 = 0xF11F_5EED;

/// At most this many chunks per input byte (plus [`EXTRA_CHUNKS`]): every chunk comes from a
/// packet of at least one byte, so a decoder past this bound is not reading its input any
/// more but going on forever.
const CHUNKS_PER_BYTE: usize = 4;
const EXTRA_CHUNKS: usize = 1_000;

/// Decodes everything a file holds (from memory, so thousands of cases cost no file I/O); the
/// result is ignored: a panic, or a decoder that keeps giving chunks past the bound above
/// (one that never ends), is a failure.
fn exercise(name: &str, bytes: &[u8]) {
    let Ok(mut dec) = Decoder::from_bytes(name, bytes.to_vec()) else {
        return;
    };
    let max_chunks = bytes.len() * CHUNKS_PER_BYTE + EXTRA_CHUNKS;
    let mut chunks = 0usize;
    while let Ok(Some(_)) = dec.next_chunk() {
        chunks += 1;
        assert!(
            chunks <= max_chunks,
            "{name} ({} bytes): the decoder does not end ({chunks} chunks)",
            bytes.len()
        );
    }
    // Seeking into a damaged file must fail or work, not panic.
    let _ = dec.seek_seconds(SECONDS / 2.0);
    let _ = dec.next_chunk();
}

/// Tag reading goes through the file system; a sample of the cases exercises it.
fn exercise_tags(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let _ = read_tags(path);
}

fn small_files(dir: &Path) -> Vec<(Fmt, Vec<u8>)> {
    let src = common::music((f64::from(RATE) * SECONDS) as usize, 7);
    Fmt::ALL
        .iter()
        .map(|&f| (f, std::fs::read(make_file(dir, "small", f, &src)).unwrap()))
        .collect()
}

#[test]
fn every_truncation_decodes_or_fails_cleanly() {
    let dir = common::tempdir();
    let mut total = 0;
    for (fmt, bytes) in small_files(dir.path()) {
        let name = format!("cut.{}", fmt.ext());
        let path = dir.path().join(&name);
        for len in 0..=bytes.len() {
            let cut = &bytes[..len];
            let r = std::panic::catch_unwind(|| {
                exercise(&name, cut);
                if len.is_multiple_of(TAG_SAMPLE_EVERY) {
                    exercise_tags(&path, cut);
                }
            });
            assert!(
                r.is_ok(),
                "{fmt:?}: panic on a truncation to {len} of {} bytes",
                bytes.len()
            );
            total += 1;
        }
    }
    println!("{total} truncations decoded or failed cleanly");
}

#[test]
fn seeded_random_byte_flips_decode_or_fail_cleanly() {
    let seed = std::env::var("JAMZ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("seed {seed} (JAMZ_FUZZ_SEED={seed} replays this run)");
    let dir = common::tempdir();
    let mut rng = Rng::new(seed);
    let mut total = 0;
    for (fmt, bytes) in small_files(dir.path()) {
        let name = format!("flipped.{}", fmt.ext());
        let path = dir.path().join(&name);
        for case in 0..FLIP_CASES {
            let mut b = bytes.clone();
            // 1 to 8 flips; half the cases aim at the first 512 bytes, where headers are.
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let span = if rng.below(2) == 0 {
                    b.len().min(512)
                } else {
                    b.len()
                };
                let i = rng.below(span as u64) as usize;
                b[i] ^= 1 << rng.below(8);
            }
            let r = std::panic::catch_unwind(|| {
                exercise(&name, &b);
                if (case as usize).is_multiple_of(TAG_SAMPLE_EVERY) {
                    exercise_tags(&path, &b);
                }
            });
            assert!(
                r.is_ok(),
                "{fmt:?}: panic on flip case {case} (seed {seed})"
            );
            total += 1;
        }
    }
    println!("{total} flipped files decoded or failed cleanly (seed {seed})");
}

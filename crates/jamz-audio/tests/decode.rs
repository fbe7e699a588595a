//! Decoding: equality with sox for lossless formats, closeness to ffmpeg for lossy ones,
//! sample-accurate seeking, clear errors, and tags.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fmt, RATE, make_file};
use jamz_audio::{AudioError, Decoder, decode_file, read_tags};

/// Seed of the generated test music (printed by failing assertions).
const SEED: u64 = 0x5EED_0001;

#[test]
fn wav_and_flac_decode_sample_for_sample_like_sox() {
    let dir = common::tempdir();
    let src = common::music(RATE as usize * 3, SEED);
    for fmt in [Fmt::Wav, Fmt::Flac] {
        let path = make_file(dir.path(), "music", fmt, &src);
        let ours = decode_file(&path).unwrap();
        assert_eq!((ours.sample_rate, ours.channels), (RATE, 2), "{fmt:?}");
        let sox = common::sox_decode_s16(&path);
        assert_eq!(
            ours.samples.len(),
            sox.len(),
            "{fmt:?}: length differs from sox"
        );
        let ours_i16: Vec<i16> = ours
            .samples
            .iter()
            .map(|&s| (s * 32768.0).round() as i16)
            .collect();
        let diff = ours_i16.iter().zip(&sox).position(|(a, b)| a != b);
        assert_eq!(
            diff, None,
            "{fmt:?}: first differing sample (seed {SEED:#x})"
        );
        println!("{fmt:?}: {} frames equal to sox's decode", ours.frames());
    }
}

/// Lossy decoders agree with ffmpeg's to within float rounding, once aligned; the alignment
/// itself may differ by at most the codec's priming (encoder delay) handling.
#[test]
fn lossy_formats_decode_close_to_ffmpeg() {
    let dir = common::tempdir();
    let src = common::music(RATE as usize * 3, SEED);
    for fmt in [Fmt::Mp3, Fmt::M4a, Fmt::Ogg] {
        let path = make_file(dir.path(), "music", fmt, &src);
        let ours = decode_file(&path).unwrap();
        assert_eq!((ours.sample_rate, ours.channels), (RATE, 2), "{fmt:?}");
        let theirs = common::ffmpeg_decode_f32(&path);
        let (lag, snr) = best_alignment(&ours.samples, &theirs, PRIMING_TOLERANCE_FRAMES);
        println!(
            "{fmt:?}: ours {} frames, ffmpeg {} frames, alignment {lag:+} frames, SNR {snr:.1} dB",
            ours.frames(),
            theirs.len() / 2
        );
        assert!(
            snr >= LOSSY_MIN_SNR_DB,
            "{fmt:?}: SNR against ffmpeg {snr:.1} dB < {LOSSY_MIN_SNR_DB} dB (seed {SEED:#x})"
        );
        let len_diff = (ours.frames() as i64 - (theirs.len() / 2) as i64).abs();
        assert!(
            len_diff <= PRIMING_TOLERANCE_FRAMES as i64,
            "{fmt:?}: length differs by {len_diff}"
        );
    }
}

/// Every format of the same audio lands on the same frame as the WAV: the encoders' priming
/// (AAC's 1024 frames, stated by the MP4 edit list; LAME's delay, stated in its header) is
/// dropped, so a car playing the M4A and a phone playing the MP3 of one track are in step.
#[test]
fn every_format_lands_on_the_same_frame_as_the_wav() {
    let dir = common::tempdir();
    // Broadband noise: it decorrelates one frame away, so the best lag is unambiguous even
    // through a lossy codec (a sine would look almost as good one frame off).
    let mut rng = common::Rng::new(SEED);
    let src: Vec<f32> = (0..RATE as usize * 3 * 2)
        .map(|_| 0.3 * rng.unit())
        .collect();
    let reference = decode_file(&make_file(dir.path(), "noise", Fmt::Wav, &src))
        .unwrap()
        .samples;
    for fmt in Fmt::ALL {
        let path = make_file(dir.path(), "noise", fmt, &src);
        let ours = decode_file(&path).unwrap();
        let (lag, snr) = best_alignment(&ours.samples, &reference, PRIMING_TOLERANCE_FRAMES);
        let len_diff = ours.frames() as i64 - (reference.len() / 2) as i64;
        println!(
            "{fmt:?}: {lag:+} frames from the WAV (SNR there {snr:.1} dB), length {len_diff:+} frames"
        );
        assert_eq!(
            lag, 0,
            "{fmt:?} decodes {lag:+} frames off the WAV (seed {SEED:#x})"
        );
    }
}

/// Two decoders of the same lossy bitstream differ only by float rounding and, for AAC, by the
/// spectral-band details of the decoder: 40 dB is far below rounding noise (~100 dB) and far
/// above what a wrong decode (misalignment, dropped frames) gives (< 10 dB).
const LOSSY_MIN_SNR_DB: f64 = 40.0;

/// Largest encoder delay among our lossy codecs: AAC primes with 1024 frames, and a decoder may
/// or may not trim them; MP3 (LAME) has 576 + 529 = 1105; Vorbis none. 2112 covers the common
/// 2112-frame AAC priming of Apple's encoder too.
const PRIMING_TOLERANCE_FRAMES: usize = 2112;

/// The lag (frames, ours relative to theirs) with the best SNR, and that SNR.
fn best_alignment(ours: &[f32], theirs: &[f32], max_lag: usize) -> (i64, f64) {
    let mut best = (0i64, f64::MIN);
    let max_lag = max_lag as i64;
    let frames_o = (ours.len() / 2) as i64;
    let frames_t = (theirs.len() / 2) as i64;
    for lag in -max_lag..=max_lag {
        // ours[i + lag] vs theirs[i], over the middle of the signal (edges differ by design).
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        let mut i = 4096i64;
        while i < frames_t - 4096 {
            let j = i + lag;
            if j >= 0 && j < frames_o {
                let a = f64::from(ours[(j * 2) as usize]);
                let b = f64::from(theirs[(i * 2) as usize]);
                sig += b * b;
                err += (a - b) * (a - b);
            }
            i += 7; // a sparse comb is enough to find the peak and keeps this cheap
        }
        if sig > 0.0 {
            let snr = 10.0 * (sig / err.max(1e-20)).log10();
            if snr > best.1 {
                best = (lag, snr);
            }
        }
    }
    best
}

/// Clicks at known frames; seeking to a target before each must find it at the right offset.
#[test]
fn seek_lands_on_the_exact_frame_for_pcm_and_flac_and_within_priming_for_lossy() {
    let dir = common::tempdir();
    let frames = RATE as usize * 4;
    let click_at = [
        RATE as usize / 2 + 17,
        2 * RATE as usize + 1001,
        3 * RATE as usize + 4321,
    ];
    let src = common::clicks(frames, &click_at);
    for fmt in Fmt::ALL {
        let path = make_file(dir.path(), "clicks", fmt, &src);
        // Where a full decode puts each click: exact for lossless, shifted by at most the
        // priming for lossy codecs.
        let full = decode_file(&path).unwrap();
        let found = common::click_frames(&full.samples, 2, 0.3, 1000);
        assert_eq!(
            found.len(),
            click_at.len(),
            "{fmt:?}: clicks found {found:?}"
        );
        let tolerance = if fmt.lossy() {
            PRIMING_TOLERANCE_FRAMES as i64
        } else {
            0
        };
        for (f, c) in found.iter().zip(click_at) {
            let d = *f as i64 - c as i64;
            assert!(d.abs() <= tolerance, "{fmt:?}: click at {c} decoded at {f}");
        }
        // Seek to a few frames before each click and decode: the click must be where the full
        // decode had it, within 1 frame (a lossy decoder primed from another packet may ring
        // differently, but its peak stays put).
        for (&c_full, back) in found.iter().zip([0usize, 1, 1234]) {
            let target = c_full - back - 300;
            let mut dec = Decoder::open(&path).unwrap();
            dec.seek(target as u64).unwrap();
            assert_eq!(dec.position(), target as u64);
            let mut got = Vec::new();
            while got.len() < 4000 * 2 {
                match dec.next_chunk().unwrap() {
                    Some(c) => got.extend_from_slice(c),
                    None => break,
                }
            }
            let peak = common::peak_frame(&got, 2, 0) as i64;
            let expect = (c_full - target) as i64;
            let err = peak - expect;
            println!(
                "{fmt:?}: seek to {target}, click at +{peak} (expected +{expect}): error {err} frames"
            );
            assert!(
                err.abs() <= 1,
                "{fmt:?}: seek to {target}: click at +{peak}, expected +{expect}"
            );
        }
    }
}

#[test]
fn missing_empty_garbage_and_truncated_files_fail_with_clear_errors() {
    let dir = common::tempdir();
    let missing = dir.path().join("nope.mp3");
    assert!(matches!(
        Decoder::open(&missing),
        Err(AudioError::Io { .. })
    ));

    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    let e = Decoder::open(&empty).unwrap_err();
    println!("empty: {e}");
    assert!(matches!(
        e,
        AudioError::Unsupported { .. } | AudioError::Corrupt { .. }
    ));

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "these are not the samples you are looking for\n".repeat(100),
    )
    .unwrap();
    let e = Decoder::open(&text).unwrap_err();
    println!("text: {e}");
    assert!(matches!(e, AudioError::Unsupported { .. }));
    assert!(
        e.to_string().contains("notes.txt"),
        "error names the file: {e}"
    );

    // A FLAC cut in half states more frames than it holds: decoding says "truncated".
    let src = common::music(RATE as usize * 2, SEED);
    let flac = make_file(dir.path(), "cut", Fmt::Flac, &src);
    let bytes = std::fs::read(&flac).unwrap();
    std::fs::write(&flac, &bytes[..bytes.len() / 2]).unwrap();
    let e = decode_file(&flac).unwrap_err();
    println!("half a flac: {e}");
    assert!(
        matches!(e, AudioError::Corrupt { .. }) && e.to_string().contains("truncated"),
        "{e}"
    );
}

#[test]
fn tags_title_artist_album_duration_and_cover() {
    let dir = common::tempdir();
    let src = common::music(RATE as usize * 2, SEED);
    let wav = dir.path().join("t.wav");
    common::write_wav16(&wav, &src);
    let cover = dir.path().join("cover.png");
    let st = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=16x16",
            "-frames:v",
            "1",
        ])
        .arg(&cover)
        .status()
        .unwrap();
    assert!(st.success());
    let meta = [
        "-metadata",
        "title=Road Song",
        "-metadata",
        "artist=The Convoy",
        "-metadata",
        "album=Highway",
    ];
    for fmt in [Fmt::Mp3, Fmt::Flac, Fmt::M4a, Fmt::Ogg] {
        let out = dir.path().join(format!("tagged.{}", fmt.ext()));
        let with_cover = matches!(fmt, Fmt::Mp3 | Fmt::Flac | Fmt::M4a);
        let mut cmd = std::process::Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&wav);
        if with_cover {
            cmd.arg("-i").arg(&cover).args([
                "-map",
                "0:a",
                "-map",
                "1:v",
                "-c:v",
                "copy",
                "-disposition:v",
                "attached_pic",
            ]);
        }
        match fmt {
            Fmt::Mp3 => cmd.args(["-c:a", "libmp3lame", "-id3v2_version", "3"]),
            Fmt::Flac => cmd.args(["-c:a", "flac"]),
            Fmt::M4a => cmd.args(["-c:a", "aac"]),
            _ => cmd.args(["-c:a", "libvorbis"]),
        };
        let st = cmd.args(meta).arg(&out).status().unwrap();
        assert!(st.success(), "ffmpeg tagging {fmt:?}");
        let tags = read_tags(&out).unwrap();
        println!("{fmt:?}: {tags:?}");
        assert_eq!(tags.title.as_deref(), Some("Road Song"), "{fmt:?}");
        assert_eq!(tags.artist.as_deref(), Some("The Convoy"), "{fmt:?}");
        assert_eq!(tags.album.as_deref(), Some("Highway"), "{fmt:?}");
        let d = tags.duration_s.unwrap_or(0.0);
        assert!((d - 2.0).abs() < 0.1, "{fmt:?}: duration {d}");
        if with_cover {
            let c = tags
                .cover
                .as_ref()
                .unwrap_or_else(|| panic!("{fmt:?}: no cover"));
            assert!(
                c.data.starts_with(b"\x89PNG"),
                "{fmt:?}: cover is not the PNG"
            );
        }
    }
}

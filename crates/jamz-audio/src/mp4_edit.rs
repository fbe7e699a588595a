//! The MP4 edit list of an audio track: which part of the decoded stream is the audio.
//!
//! An AAC encoder primes its output with frames that are not part of the audio (1024 for
//! ffmpeg's and Apple's encoders) and pads the last packet; an MP4 file says which stretch to
//! play in its edit list (`moov/trak/edts/elst`): the first edit's media time is the priming,
//! its duration the audio's length. symphonia 0.6 reads the atom but does not apply it, so an
//! M4A decoded without this plays 1024 frames (23 ms at 44.1 kHz) late against the same audio
//! in any other format.

use std::io::{Read, Seek, SeekFrom};

/// The audible stretch of a track, in frames of its sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edit {
    /// Decoded frames before the audio starts (the encoder's priming).
    pub skip: u64,
    /// Frames of audio after them, if the edit states it.
    pub frames: Option<u64>,
}

/// An edit as the file states it: the media time in the track's timescale, the duration in
/// the movie's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawEdit {
    media_time: u64,
    media_timescale: u32,
    duration: u64,
    movie_timescale: u32,
}

impl RawEdit {
    /// The edit in frames at `rate` (the decoder's output rate, which for HE-AAC is twice the
    /// track's timescale).
    pub fn at_rate(&self, rate: u32) -> Edit {
        let scale = |v: u64, ts: u32| -> u64 {
            ((u128::from(v) * u128::from(rate) + u128::from(ts) / 2) / u128::from(ts)) as u64
        };
        Edit {
            skip: scale(self.media_time, self.media_timescale),
            // A zero duration means "to the end of the media".
            frames: (self.duration > 0).then(|| scale(self.duration, self.movie_timescale)),
        }
    }
}

/// Largest `moov` box read into memory: 64 MiB. A `moov` holds the sample tables, about
/// 12 bytes per packet (an hour of AAC is ~160,000 packets, under 2 MiB); more is not a file
/// we need to understand to play, and is left to symphonia.
const MAX_MOOV: u64 = 64 << 20;

/// The first audio track's edit; `None` if the input is not an MP4 file, has no usable edit
/// list (none, an empty edit, or several edits), or cannot be read: the stream then plays
/// whole.
pub(crate) fn read_edit<R: Read + Seek>(mut input: R) -> Option<RawEdit> {
    let mut head = [0u8; 8];
    input.seek(SeekFrom::Start(0)).ok()?;
    input.read_exact(&mut head).ok()?;
    if &head[4..8] != b"ftyp" {
        return None;
    }
    let moov = find_top_level(&mut input, b"moov")?;
    let movie_timescale = child(&moov, b"mvhd").and_then(timescale_of_header)?;
    for trak in children(&moov)
        .filter(|(t, _)| t == b"trak")
        .map(|(_, b)| b)
    {
        let mdia = child(trak, b"mdia")?;
        let is_audio = child(mdia, b"hdlr").is_some_and(|h| h.get(8..12) == Some(b"soun"));
        if !is_audio {
            continue;
        }
        let media_timescale = child(mdia, b"mdhd").and_then(timescale_of_header)?;
        let elst = child(trak, b"edts").and_then(|e| child(e, b"elst"))?;
        return edit_of(elst, movie_timescale, media_timescale);
    }
    None
}

/// Reads the body of the first top-level box of type `kind`.
fn find_top_level<R: Read + Seek>(input: &mut R, kind: &[u8; 4]) -> Option<Vec<u8>> {
    let mut at = 0u64;
    loop {
        input.seek(SeekFrom::Start(at)).ok()?;
        let mut h = [0u8; 8];
        input.read_exact(&mut h).ok()?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (size, header) = match size32 {
            1 => {
                let mut l = [0u8; 8];
                input.read_exact(&mut l).ok()?;
                (u64::from_be_bytes(l), 16)
            }
            // A box running to the end of the file: only the last one can.
            0 => (u64::MAX, 8),
            s => (u64::from(s), 8),
        };
        if size < header {
            return None;
        }
        if &h[4..8] == kind {
            let len = if size == u64::MAX {
                let end = input.seek(SeekFrom::End(0)).ok()?;
                input.seek(SeekFrom::Start(at + header)).ok()?;
                end.checked_sub(at + header)?
            } else {
                size - header
            };
            if len > MAX_MOOV {
                return None;
            }
            let mut body = vec![0u8; usize::try_from(len).ok()?];
            input.read_exact(&mut body).ok()?;
            return Some(body);
        }
        at = at.checked_add(size)?;
    }
}

/// The boxes directly inside `body`: (type, body). Stops at the first malformed header.
fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = body.get(at..at + 8)?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let kind = [h[4], h[5], h[6], h[7]];
        let (size, header) = match size32 {
            1 => {
                let l = body.get(at + 8..at + 16)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(l);
                (usize::try_from(u64::from_be_bytes(b)).ok()?, 16)
            }
            0 => (body.len() - at, 8),
            s => (usize::try_from(s).ok()?, 8),
        };
        if size < header {
            return None;
        }
        let inner = body.get(at + header..at.checked_add(size)?)?;
        at += size;
        Some((kind, inner))
    })
}

fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(body).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// The timescale of an `mvhd` or `mdhd` body (the same layout up to it).
fn timescale_of_header(body: &[u8]) -> Option<u32> {
    let at = match body.first()? {
        0 => 12, // version, flags, creation and modification times (32 bit)
        1 => 20, // the same with 64-bit times
        _ => return None,
    };
    be_u32(body, at).filter(|t| *t > 0)
}

/// The one edit of an `elst` body.
fn edit_of(elst: &[u8], movie_timescale: u32, media_timescale: u32) -> Option<RawEdit> {
    let version = *elst.first()?;
    let count = usize::try_from(be_u32(elst, 4)?).ok()?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut found: Option<(u64, i64)> = None;
    for i in 0..count {
        let at = 8 + i * entry_len;
        let (duration, media_time) = if version == 1 {
            (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64)
        } else {
            (
                u64::from(be_u32(elst, at)?),
                i64::from(be_u32(elst, at + 4)? as i32),
            )
        };
        if media_time < 0 {
            // An empty edit (silence before the track): not something a music file does.
            return None;
        }
        if found.replace((duration, media_time)).is_some() {
            // Several edits: a cut-up timeline we do not play.
            return None;
        }
    }
    let (duration, media_time) = found?;
    Some(RawEdit {
        media_time: u64::try_from(media_time).ok()?,
        media_timescale,
        duration,
        movie_timescale,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A header box body (mvhd/mdhd, version 0) with this timescale.
    fn header(timescale: u32) -> Vec<u8> {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b
    }

    fn mp4(edits: &[(u32, i32)], handler: &[u8; 4]) -> Vec<u8> {
        let mut elst = vec![0u8, 0, 0, 0];
        elst.extend_from_slice(&(edits.len() as u32).to_be_bytes());
        for (d, m) in edits {
            elst.extend_from_slice(&d.to_be_bytes());
            elst.extend_from_slice(&m.to_be_bytes());
            elst.extend_from_slice(&[0, 1, 0, 0]);
        }
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 12]);
        let mdia = [boxed(b"mdhd", &header(44_100)), boxed(b"hdlr", &hdlr)].concat();
        let trak = [
            boxed(b"tkhd", &[0u8; 20]),
            boxed(b"edts", &boxed(b"elst", &elst)),
            boxed(b"mdia", &mdia),
        ]
        .concat();
        let moov = [boxed(b"mvhd", &header(1000)), boxed(b"trak", &trak)].concat();
        [
            boxed(b"ftyp", b"M4A \0\0\0\0"),
            boxed(b"mdat", &[0u8; 64]),
            boxed(b"moov", &moov),
        ]
        .concat()
    }

    #[test]
    fn the_priming_and_length_come_from_the_audio_tracks_edit() {
        // 2 s of audio (movie timescale: ms) after 1024 frames of priming (media: 44.1 kHz).
        let f = mp4(&[(2000, 1024)], b"soun");
        let edit = read_edit(Cursor::new(&f)).unwrap();
        assert_eq!(
            edit.at_rate(44_100),
            Edit {
                skip: 1024,
                frames: Some(88_200)
            }
        );
        // HE-AAC decodes at twice the track's timescale: the same edit scales.
        assert_eq!(edit.at_rate(88_200).skip, 2048);
    }

    #[test]
    fn no_audio_track_several_edits_or_an_empty_edit_mean_no_edit() {
        assert_eq!(read_edit(Cursor::new(mp4(&[(2000, 1024)], b"vide"))), None);
        assert_eq!(
            read_edit(Cursor::new(mp4(&[(1000, 1024), (1000, 50_000)], b"soun"))),
            None
        );
        assert_eq!(
            read_edit(Cursor::new(mp4(&[(500, -1), (2000, 0)], b"soun"))),
            None
        );
    }

    #[test]
    fn other_formats_and_damaged_files_give_no_edit_and_no_panic() {
        assert_eq!(read_edit(Cursor::new(b"RIFF\0\0\0\0WAVEfmt ")), None);
        let f = mp4(&[(2000, 1024)], b"soun");
        for cut in [0, 7, 12, 40, f.len() - 30, f.len() - 1] {
            let _ = read_edit(Cursor::new(&f[..cut]));
        }
        // Sizes that lie: every byte of the file flipped in turn.
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0xff;
            let _ = read_edit(Cursor::new(&g));
        }
    }
}

//! Cover art for the app's now-playing view: the picture in a cached track's tags,
//! read once per file and kept beside the track cache (`<cache>/covers/<sha256>`), so
//! it shows offline and without reading the tags again. Keyed by content hash, the
//! same file has the same picture in every group. Covers of files that have left the
//! cache are removed whenever a new one is saved, so the covers stay within what the
//! track cache holds.

use std::path::{Path, PathBuf};

use super::App;
use crate::error::NodeError;

/// A picture larger than this is not shown (it would cross the IPC as one string).
const MAX_COVER_BYTES: usize = 2 * 1024 * 1024;

/// The image types a cover may be shown as.
const IMAGE_TYPES: [&str; 5] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
];

impl App {
    /// The cover art of the cached file with this SHA-256, as a `data:` URL; `None`
    /// when the file has none, or is not (yet) complete in the cache.
    pub async fn cover_art(&self, sha256: &str) -> Result<Option<String>, NodeError> {
        let cache_dir = self.dirs.cache.clone();
        let sha256 = sha256.to_owned();
        tokio::task::spawn_blocking(move || cover_data_url(&cache_dir, &sha256))
            .await
            .map_err(|e| NodeError::Stopped(format!("reading a cover: {e}")))?
    }
}

fn covers_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("covers")
}

/// The saved cover (an empty file: the track has none), else the track's tags.
pub(crate) fn cover_data_url(cache_dir: &Path, sha256: &str) -> Result<Option<String>, NodeError> {
    let Some(track) = jamz_cache::stored_file(cache_dir, sha256) else {
        return Ok(None);
    };
    let dir = covers_dir(cache_dir);
    let saved = dir.join(sha256);
    match std::fs::read_to_string(&saved) {
        Ok(url) => return Ok(Some(url).filter(|u| !u.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io(&saved, e)),
    }
    let url = jamz_audio::read_tags(&track)?
        .cover
        .filter(|c| !c.data.is_empty() && c.data.len() <= MAX_COVER_BYTES)
        .and_then(|c| {
            let media_type = c
                .media_type
                .filter(|t| IMAGE_TYPES.contains(&t.as_str()))
                .or_else(|| sniff_image_type(&c.data).map(str::to_owned))?;
            Some(format!("data:{media_type};base64,{}", base64(&c.data)))
        });
    std::fs::create_dir_all(&dir).map_err(|e| NodeError::io(&dir, e))?;
    std::fs::write(&saved, url.as_deref().unwrap_or("")).map_err(|e| NodeError::io(&saved, e))?;
    prune(cache_dir, &dir);
    Ok(url)
}

/// Removes the covers of files no longer in the cache (best effort: a cover left
/// behind is removed next time).
fn prune(cache_dir: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let gone = name
            .to_str()
            .is_none_or(|sha| jamz_cache::stored_file(cache_dir, sha).is_none());
        if gone && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::debug!(path = %entry.path().display(), error = %e, "cover not removed");
        }
    }
}

/// The image type from the first bytes, for pictures whose tag does not say.
fn sniff_image_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"GIF8") {
        Some("image/gif")
    } else {
        None
    }
}

/// Standard base64 with padding (RFC 4648).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_follows_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn only_a_hex_sha256_names_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            cover_data_url(dir.path(), "../../etc/passwd").unwrap(),
            None
        );
        assert_eq!(cover_data_url(dir.path(), &"a".repeat(64)).unwrap(), None);
    }

    /// A FLAC file with a red 16x16 PNG as its front cover (ffmpeg; skipped without it).
    #[test]
    fn reads_the_cover_from_the_tags_once_and_prunes_it_with_the_track() {
        let dir = tempfile::tempdir().unwrap();
        let cover = dir.path().join("cover.png");
        let flac = dir.path().join("t.flac");
        let ffmpeg = |args: &[&str]| {
            std::process::Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(args)
                .status()
        };
        let made = ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=16x16",
            "-frames:v",
            "1",
            cover.to_str().unwrap(),
        ]);
        if !made.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var_os("JAMZ_REQUIRE_FFMPEG").is_none(),
                "ffmpeg is required"
            );
            eprintln!("skipped: no ffmpeg");
            return;
        }
        let made = ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-i",
            cover.to_str().unwrap(),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "flac",
            "-c:v",
            "copy",
            "-disposition:v",
            "attached_pic",
            flac.to_str().unwrap(),
        ])
        .unwrap();
        assert!(made.success());
        let cache = dir.path().join("cache");
        let sha = "0123456789abcdef".repeat(4);
        std::fs::create_dir_all(cache.join("files")).unwrap();
        std::fs::copy(&flac, cache.join("files").join(&sha)).unwrap();

        let url = cover_data_url(&cache, &sha).unwrap().unwrap();
        let png = std::fs::read(&cover).unwrap();
        assert_eq!(url, format!("data:image/png;base64,{}", base64(&png)));
        // Kept: the same answer from the saved cover, even with the track's tags unreadable.
        std::fs::write(cache.join("files").join(&sha), b"not audio any more").unwrap();
        assert_eq!(cover_data_url(&cache, &sha).unwrap(), Some(url));

        // The first file leaves the cache: its cover goes when the next one is saved.
        let other = "fedcba9876543210".repeat(4);
        std::fs::copy(&flac, cache.join("files").join(&other)).unwrap();
        std::fs::remove_file(cache.join("files").join(&sha)).unwrap();
        assert!(cover_data_url(&cache, &other).unwrap().is_some());
        assert!(!covers_dir(&cache).join(&sha).exists());
        assert!(covers_dir(&cache).join(&other).exists());
    }
}

//! Cover art for the app's now-playing view: the picture in a cached track's tags
//! ([`crate::covers`], which reads and keeps it) as a `data:` URL.

use std::path::Path;

use super::App;
use crate::covers::{Cover, cover_file, image_type};
use crate::error::NodeError;

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

/// The cover as a `data:` URL (see [`cover_file`]).
pub(crate) fn cover_data_url(cache_dir: &Path, sha256: &str) -> Result<Option<String>, NodeError> {
    let Cover::Picture(path) = cover_file(cache_dir, sha256)? else {
        return Ok(None);
    };
    let data = std::fs::read(&path).map_err(|e| NodeError::io(&path, e))?;
    Ok(image_type(&data).map(|t| format!("data:{t};base64,{}", base64(&data))))
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
        let covers = crate::covers::covers_dir(&cache);
        assert!(!covers.join(&sha).exists());
        assert_eq!(
            std::fs::read(covers.join(&other)).unwrap(),
            png,
            "the picture itself"
        );
    }
}

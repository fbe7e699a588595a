//! Cover art of cached tracks: the picture in a track's tags, read once per file and
//! kept beside the track cache (`<cache>/covers/<sha256>`: the image's bytes, or an
//! empty file when the track has none), so it shows offline and without reading the
//! tags again. Keyed by content hash, the same file has the same picture in every
//! group. The app's now-playing view shows it ([`crate::app::covers`]) and the OS's
//! media session points at the file ([`crate::media_session`]). Covers of files that
//! have left the cache are removed whenever a new one is saved, so the covers stay
//! within what the track cache holds.

use std::path::{Path, PathBuf};

use crate::error::NodeError;

/// A picture larger than this is not kept (the app would carry it over IPC as one string).
const MAX_COVER_BYTES: usize = 2 * 1024 * 1024;

/// A cached track's cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cover {
    /// The file is not (yet) complete in the cache: ask again once it is.
    NotCached,
    /// The track's tags hold no picture that can be shown.
    Nothing,
    /// The picture, saved as its own file.
    Picture(PathBuf),
}

pub fn covers_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("covers")
}

/// The cover of the cached file with this SHA-256 (reads the tags the first time).
pub fn cover_file(cache_dir: &Path, sha256: &str) -> Result<Cover, NodeError> {
    let Some(track) = jamz_cache::stored_file(cache_dir, sha256) else {
        return Ok(Cover::NotCached);
    };
    let dir = covers_dir(cache_dir);
    let saved = dir.join(sha256);
    match std::fs::read(&saved) {
        Ok(bytes) if bytes.is_empty() => return Ok(Cover::Nothing),
        // Anything else (an older cache kept a `data:` URL here) is read from the tags again.
        Ok(bytes) if image_type(&bytes).is_some() => return Ok(Cover::Picture(saved)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io(&saved, e)),
    }
    let picture = jamz_audio::read_tags(&track)?
        .cover
        .map(|c| c.data)
        .filter(|d| !d.is_empty() && d.len() <= MAX_COVER_BYTES && image_type(d).is_some());
    std::fs::create_dir_all(&dir).map_err(|e| NodeError::io(&dir, e))?;
    std::fs::write(&saved, picture.as_deref().unwrap_or_default())
        .map_err(|e| NodeError::io(&saved, e))?;
    prune(cache_dir, &dir);
    Ok(if picture.is_some() {
        Cover::Picture(saved)
    } else {
        Cover::Nothing
    })
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

/// The image type, from the picture's first bytes (a tag's own claim is not trusted:
/// the picture is shown as what it is, or not at all).
pub fn image_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"GIF8") {
        Some("image/gif")
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.starts_with(b"BM") && data.len() > 14 {
        Some("image/bmp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_hex_sha256_names_a_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            cover_file(dir.path(), "../../etc/passwd").unwrap(),
            Cover::NotCached
        );
        assert_eq!(
            cover_file(dir.path(), &"a".repeat(64)).unwrap(),
            Cover::NotCached
        );
    }

    #[test]
    fn knows_images_by_their_bytes() {
        assert_eq!(image_type(b"\xff\xd8\xff\xe0rest"), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(b"GIF89a"), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"BM0123456789abcdef"), Some("image/bmp"));
        assert_eq!(image_type(b"data:image/png;base64,AAAA"), None);
        assert_eq!(image_type(b"<svg"), None);
        assert_eq!(image_type(b""), None);
    }
}

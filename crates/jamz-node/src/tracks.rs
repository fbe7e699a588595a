//! Tracks between the adapters: uploads (tags read by jamz-audio), the wire
//! `Track` mapped onto the cache's `CacheTrack`, and the cache's location.

use std::path::Path;

use bytes::Bytes;
use jamz_cache::{Cache, CacheConfig, CacheTrack};
use jamz_link::{Progress, RestClient, Upload};
use jamz_proto::Track;

use crate::error::NodeError;

pub use crate::directories::{CACHE_DIR_ENV, cache_dir as default_cache_dir};

/// Opens the track cache in `dir` (default: [`default_cache_dir`]).
pub async fn open_cache(dir: Option<&Path>) -> Result<Cache, NodeError> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => default_cache_dir()?,
    };
    let config = CacheConfig {
        extra_ca_der: jamz_link::tls::extra_roots_der(),
        ..CacheConfig::default()
    };
    Ok(Cache::open(&dir, config).await?)
}

/// The cache's view of a playlist track.
pub fn cache_track(track: &Track) -> CacheTrack {
    CacheTrack {
        id: track.id.clone(),
        url: track.url.clone(),
        sha256: track.sha256.clone(),
        size: track.size,
        etag: None,
        mime: None,
        title: Some(track.title.clone()).filter(|t| !t.is_empty()),
        artist: Some(track.artist.clone()).filter(|a| !a.is_empty()),
        duration: track.duration,
    }
}

/// The MIME type of an audio file, from its extension.
pub fn content_type_for(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "ogg" | "oga" => "audio/ogg",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        _ => return None,
    })
}

/// Reads `path`'s tags (title defaults to the file name), uploads it with
/// progress `(sent, total)`, and returns the server's track (not yet in any
/// playlist).
pub async fn upload_file(
    rest: &RestClient,
    path: &Path,
    progress: Option<Progress>,
) -> Result<Track, NodeError> {
    let p = path.to_path_buf();
    let (data, tags) = tokio::task::spawn_blocking(move || {
        let data = std::fs::read(&p).map_err(|e| NodeError::io(&p, e))?;
        let tags = jamz_audio::read_tags(&p)?;
        Ok::<_, NodeError>((data, tags))
    })
    .await
    .map_err(|e| NodeError::Stopped(e.to_string()))??;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "track".into());
    let title = tags
        .title
        .clone()
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let upload = Upload {
        file_name,
        content_type: content_type_for(path).map(str::to_owned),
        data: Bytes::from(data),
        title,
        artist: tags.artist.clone(),
        duration: tags.duration_s,
        progress,
    };
    Ok(rest.upload(upload).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wire_track_maps_onto_the_cache() {
        let t = Track {
            id: "7".into(),
            title: "Song".into(),
            url: "http://h/api/music/files/abc".into(),
            size: Some(10),
            duration: Some(3.5),
            ..Track::default()
        };
        let c = cache_track(&t);
        assert_eq!(c.id, "7");
        assert_eq!(c.url, t.url);
        assert_eq!(c.size, Some(10));
        assert_eq!(c.title.as_deref(), Some("Song"));
        assert_eq!(c.artist, None);
    }

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type_for(Path::new("a.MP3")), Some("audio/mpeg"));
        assert_eq!(content_type_for(Path::new("a.flac")), Some("audio/flac"));
        assert_eq!(content_type_for(Path::new("a")), None);
    }
}

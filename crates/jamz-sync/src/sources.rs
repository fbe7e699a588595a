//! How this device plays a track, from the track's `source` (docs/protocol.md, `Track`):
//! uploads and any audio URL through the cache and the player, a Spotify track through its
//! preview URL. A YouTube video plays only in YouTube's own player (the app's webview), so a
//! device without one, like a headless node, cannot play it. A track this device cannot play
//! leaves it silent for that track and in step for the next: the engine keeps the timeline
//! and says why (`not-playable`).

use jamz_proto::youtube::{OEmbed, VideoId};
use jamz_proto::{Track, TrackSource};

/// The playlist track for a YouTube video added by link or id: titled from its oEmbed
/// answer when there is one (the channel as artist), else "YouTube video ID" so that the
/// playlist still says what it is; `duration` from the IFrame player when the adder had
/// it (without one the DJ moves on by hand at the video's end).
pub fn youtube_track(id: &VideoId, metadata: Option<&OEmbed>, duration: Option<f64>) -> Track {
    let title = metadata
        .map(|m| m.title.trim())
        .filter(|t| !t.is_empty())
        .map_or_else(|| format!("YouTube video {id}"), str::to_owned);
    Track {
        title,
        artist: metadata
            .and_then(|m| m.author_name.as_deref())
            .unwrap_or_default()
            .trim()
            .to_owned(),
        source: TrackSource::Youtube,
        youtube_id: Some(id.as_str().to_owned()),
        album_art: metadata.and_then(|m| m.thumbnail_url.clone()),
        duration: duration.filter(|d| d.is_finite() && *d > 0.0),
        ..Track::default()
    }
}

/// The track as the player fetches it (`url`: the audio to play), or why this device
/// cannot play it (shown to the user).
pub fn audio_of(track: &Track) -> Result<Track, String> {
    match track.source {
        TrackSource::Youtube => Err(
            "a YouTube video plays only in YouTube's own player (the app); this device stays silent for it"
                .into(),
        ),
        TrackSource::Spotify => match track.spotify_preview_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let mut preview = track.clone();
                preview.url = url.to_owned();
                Ok(preview)
            }
            _ => Err(
                "a Spotify track without a preview is not playable on this device (full tracks need Spotify's own player)"
                    .into(),
            ),
        },
        TrackSource::Upload | TrackSource::Unknown if !track.url.trim().is_empty() => {
            Ok(track.clone())
        }
        TrackSource::Upload | TrackSource::Unknown => Err("the track has no audio URL".into()),
    }
}

/// Whether some device of the group can play `track`: a DJ may play a video it cannot play
/// itself (the web app and the app play it; this device is silent for it).
pub fn playable_somewhere(track: &Track) -> bool {
    match track.source {
        TrackSource::Youtube => track
            .youtube_id
            .as_deref()
            .is_some_and(|id| !id.trim().is_empty()),
        _ => audio_of(track).is_ok(),
    }
}

/// Seconds of audio past the start position a track still downloading must hold before it
/// starts: 1 s covers the decoder's look-ahead (0.5 s) with as much again to spare, so a
/// download keeping up with playback plays without a gap.
pub const START_BUFFER_S: f64 = 1.0;

/// Bytes allowed for what precedes the audio (tags, a cover picture, a container's header):
/// 64 KiB holds the headers of every format the player decodes and a small cover; a larger
/// one only makes the decoder wait a moment longer for its bytes.
pub const START_HEADER_BYTES: u64 = 64 * 1024;

/// How many bytes from its start a track still downloading must hold before it starts at
/// `position` (s): its header and [`START_BUFFER_S`] past the position, estimated from its
/// size and duration as if its bit rate were constant; all of it at most. `None` when the
/// track states no size or duration: it starts as soon as its first bytes are there and the
/// decoder waits for the rest.
pub fn start_bytes(track: &Track, position: f64) -> Option<u64> {
    let size = track.size.filter(|s| *s > 0)?;
    let duration = track.duration.filter(|d| d.is_finite() && *d > 0.0)?;
    if !position.is_finite() {
        return None;
    }
    let share = ((position.max(0.0) + START_BUFFER_S) / duration).min(1.0);
    let audio = (size as f64 * share).ceil() as u64;
    Some(audio.saturating_add(START_HEADER_BYTES).min(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_waits_for_its_position_and_a_second_more() {
        let mut t = track(TrackSource::Upload);
        assert_eq!(start_bytes(&t, 0.0), None, "no size or duration");
        t.size = Some(10_000_000);
        t.duration = Some(100.0);
        assert_eq!(start_bytes(&t, 0.0), Some(100_000 + START_HEADER_BYTES));
        assert_eq!(start_bytes(&t, 49.0), Some(5_000_000 + START_HEADER_BYTES));
        assert_eq!(
            start_bytes(&t, 99.5),
            Some(10_000_000),
            "never past the end"
        );
        assert_eq!(start_bytes(&t, f64::NAN), None);
        t.duration = Some(0.0);
        assert_eq!(start_bytes(&t, 1.0), None);
    }

    fn track(source: TrackSource) -> Track {
        Track {
            id: "t".into(),
            title: "T".into(),
            source,
            ..Track::default()
        }
    }

    #[test]
    fn a_video_track_is_titled_from_oembed_or_by_its_id() {
        let id = jamz_proto::youtube::parse_video_ref("https://youtu.be/dQw4w9WgXcQ").unwrap();
        let meta = OEmbed {
            title: " Never ".into(),
            author_name: Some("Rick".into()),
            thumbnail_url: None,
        };
        let t = youtube_track(&id, Some(&meta), Some(212.0));
        assert_eq!((t.title.as_str(), t.artist.as_str()), ("Never", "Rick"));
        assert_eq!(t.youtube_id.as_deref(), Some("dQw4w9WgXcQ"));
        assert_eq!(t.duration, Some(212.0));
        assert!(playable_somewhere(&t));
        assert!(t.url.is_empty());
        let bare = youtube_track(&id, None, Some(f64::NAN));
        assert_eq!(bare.title, "YouTube video dQw4w9WgXcQ");
        assert_eq!(bare.duration, None);
    }

    #[test]
    fn each_source_is_played_its_way_or_said_why_not() {
        let mut up = track(TrackSource::Upload);
        up.url = "http://h/a.mp3".into();
        assert_eq!(audio_of(&up), Ok(up.clone()));
        let mut yt = track(TrackSource::Youtube);
        yt.youtube_id = Some("dQw4w9WgXcQ".into());
        assert!(matches!(audio_of(&yt), Err(why) if why.contains("YouTube")));
        assert!(playable_somewhere(&yt));
        yt.youtube_id = None;
        assert!(!playable_somewhere(&yt));
        let mut sp = track(TrackSource::Spotify);
        assert!(matches!(audio_of(&sp), Err(why) if why.contains("preview")));
        sp.spotify_preview_url = Some("http://h/preview.mp3".into());
        assert_eq!(
            audio_of(&sp).map(|t| t.url),
            Ok("http://h/preview.mp3".into())
        );
        assert!(audio_of(&track(TrackSource::Upload)).is_err());
    }
}

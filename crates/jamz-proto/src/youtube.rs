//! YouTube video references as users type or paste them: a video id, or a link to the
//! video on youtube.com, youtu.be, music.youtube.com or an embed/shorts address. A track
//! of `source: "youtube"` carries only the id (`youtube_id`, docs/protocol.md); this is
//! the one place that turns what a user gave into that id, and says plainly why when it
//! cannot. It never panics, whatever the input (its proptest feeds it arbitrary strings).
//!
//! Also the shape of YouTube's oEmbed answer ([`OEmbed`]), where a video's title comes
//! from.

use serde::Deserialize;
use std::fmt;

/// Length of every YouTube video id.
pub const VIDEO_ID_LEN: usize = 11;

/// Longest input looked at: a pasted link with tracking parameters is a few hundred
/// bytes; anything longer is not a link someone meant.
pub const MAX_REF_LEN: usize = 2048;

/// The hosts whose links name a video (lower case, no port).
const VIDEO_HOSTS: &[&str] = &[
    "youtube.com",
    "www.youtube.com",
    "m.youtube.com",
    "music.youtube.com",
    "youtube-nocookie.com",
    "www.youtube-nocookie.com",
];

/// The short-link host: the path is the id.
const SHORT_HOST: &str = "youtu.be";

/// Path prefixes (on [`VIDEO_HOSTS`]) followed by the id.
const ID_PATHS: &[&str] = &["/embed/", "/shorts/", "/live/", "/v/", "/e/"];

/// A YouTube video id: exactly [`VIDEO_ID_LEN`] characters of `A-Z a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VideoId(String);

impl VideoId {
    /// The id if `text` is one (no trimming, no link).
    pub fn new(text: &str) -> Result<Self, VideoRefError> {
        if is_video_id(text) {
            Ok(VideoId(text.to_owned()))
        } else {
            Err(VideoRefError::BadId(excerpt(text)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The video's canonical watch page (what oEmbed is asked about).
    pub fn watch_url(&self) -> String {
        format!("https://www.youtube.com/watch?v={}", self.0)
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not a YouTube video reference; each message is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoRefError {
    #[error("no YouTube link or video id given")]
    Empty,
    #[error("a YouTube link is at most {MAX_REF_LEN} characters, this one has {0}")]
    TooLong(usize),
    #[error(
        "\"{0}\" is not a YouTube link (youtube.com, youtu.be, music.youtube.com) or an 11-character video id"
    )]
    NotYoutube(String),
    #[error(
        "the YouTube link \"{0}\" names no video (expected watch?v=ID, youtu.be/ID, /embed/ID or /shorts/ID)"
    )]
    NoVideo(String),
    #[error("\"{0}\" is not a YouTube video id (11 characters: letters, digits, '-' and '_')")]
    BadId(String),
}

/// Whether `text` is a well-formed video id.
pub fn is_video_id(text: &str) -> bool {
    text.len() == VIDEO_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The video a user's text names: a bare id, or a link of the forms
/// `https://www.youtube.com/watch?v=ID`, `https://youtu.be/ID`, `.../embed/ID`,
/// `.../shorts/ID`, `https://music.youtube.com/watch?v=ID` (with or without the scheme,
/// `www.` or `m.`, extra query parameters or a `#fragment`).
pub fn parse_video_ref(input: &str) -> Result<VideoId, VideoRefError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(VideoRefError::Empty);
    }
    if text.len() > MAX_REF_LEN {
        return Err(VideoRefError::TooLong(text.len()));
    }
    if is_video_id(text) {
        return Ok(VideoId(text.to_owned()));
    }
    let without_scheme = strip_scheme(text);
    // Host: up to the first '/', '?' or '#'.
    let host_end = without_scheme
        .find(['/', '?', '#'])
        .unwrap_or(without_scheme.len());
    let (authority, rest) = without_scheme.split_at(host_end);
    // A user-info part ("youtube.com@evil.example") would make the host another one.
    if authority.contains('@') {
        return Err(VideoRefError::NotYoutube(excerpt(text)));
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(host, _)| host)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let (path, query) = split_path_query(rest);
    let id = if host == SHORT_HOST {
        first_segment(path.strip_prefix('/').unwrap_or(path))
    } else if VIDEO_HOSTS.contains(&host.as_str()) {
        if path == "/watch" || path == "/watch/" {
            query_param(query, "v")
        } else {
            ID_PATHS
                .iter()
                .find_map(|prefix| path.strip_prefix(prefix))
                .and_then(first_segment)
        }
    } else {
        return Err(VideoRefError::NotYoutube(excerpt(text)));
    };
    match id {
        Some(id) if !id.is_empty() => VideoId::new(id),
        _ => Err(VideoRefError::NoVideo(excerpt(text))),
    }
}

/// `text` without a leading `http://` or `https://` (any case) or `//`.
fn strip_scheme(text: &str) -> &str {
    for scheme in ["https://", "http://", "//"] {
        if let Some(head) = text.get(..scheme.len())
            && head.eq_ignore_ascii_case(scheme)
        {
            return &text[scheme.len()..];
        }
    }
    text
}

/// The path (from its '/', possibly empty) and the query (without '?'), the fragment
/// dropped.
fn split_path_query(rest: &str) -> (&str, &str) {
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    rest.split_once('?').unwrap_or((rest, ""))
}

/// The first path segment of `path` (no leading '/').
fn first_segment(path: &str) -> Option<&str> {
    path.split('/').next()
}

/// The value of `name` in a query string (the first one; values are ids, so no
/// percent-decoding is needed: an encoded id is not a valid id anyway).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// At most 80 characters of the user's text for an error message (on a char boundary).
fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// YouTube's oEmbed answer (`GET {origin}/oembed?url=WATCH_URL&format=json`), the fields
/// the playlist uses. oEmbed has no duration: that comes from the IFrame player
/// (`getDuration()`) once it has loaded the video.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OEmbed {
    pub title: String,
    /// The channel's name: the track's artist.
    #[serde(default)]
    pub author_name: Option<String>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "dQw4w9WgXcQ";

    #[test]
    fn every_link_form_names_its_video() {
        for text in [
            ID,
            "  dQw4w9WgXcQ\n",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "http://youtube.com/watch?v=dQw4w9WgXcQ",
            "www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=42s",
            "https://m.youtube.com/watch?v=dQw4w9WgXcQ#comments",
            "HTTPS://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com:443/watch?v=dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=abc&t=10",
            "youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/embed/dQw4w9WgXcQ?autoplay=1",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtube.com/shorts/dQw4w9WgXcQ/",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&list=RDAMVM",
            "//www.youtube.com/v/dQw4w9WgXcQ",
        ] {
            assert_eq!(
                parse_video_ref(text).map(|id| id.0),
                Ok(ID.to_owned()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn malformed_references_say_why() {
        type Expect = fn(&VideoRefError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("", |e| *e == VideoRefError::Empty),
            ("   ", |e| *e == VideoRefError::Empty),
            ("dQw4w9WgXc", |e| matches!(e, VideoRefError::NotYoutube(_))),
            ("dQw4w9WgXcQQ", |e| {
                matches!(e, VideoRefError::NotYoutube(_))
            }),
            ("https://vimeo.com/12345678901", |e| {
                matches!(e, VideoRefError::NotYoutube(_))
            }),
            (
                "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
                |e| matches!(e, VideoRefError::NotYoutube(_)),
            ),
            (
                "https://youtube.com@evil.example/watch?v=dQw4w9WgXcQ",
                |e| matches!(e, VideoRefError::NotYoutube(_)),
            ),
            ("https://www.youtube.com/", |e| {
                matches!(e, VideoRefError::NoVideo(_))
            }),
            ("https://www.youtube.com/watch?list=PL123", |e| {
                matches!(e, VideoRefError::NoVideo(_))
            }),
            ("https://youtu.be/", |e| {
                matches!(e, VideoRefError::NoVideo(_))
            }),
            ("https://www.youtube.com/watch?v=dQw4w9WgXc", |e| {
                matches!(e, VideoRefError::BadId(_))
            }),
            ("https://www.youtube.com/watch?v=dQw4w9WgX%51", |e| {
                matches!(e, VideoRefError::BadId(_))
            }),
            ("https://youtu.be/dQw4w9WgXcQ!", |e| {
                matches!(e, VideoRefError::BadId(_))
            }),
            ("https://www.youtube.com/shorts/dQw4w9Wg€cQ", |e| {
                matches!(e, VideoRefError::BadId(_))
            }),
        ];
        for (text, expected) in cases {
            let err = parse_video_ref(text).unwrap_err();
            assert!(expected(&err), "{text:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
        let long = "x".repeat(MAX_REF_LEN + 1);
        assert_eq!(
            parse_video_ref(&long),
            Err(VideoRefError::TooLong(MAX_REF_LEN + 1))
        );
        // The message quotes a bounded excerpt of what was given.
        let wordy = format!("https://example.com/{}", "é".repeat(500));
        let message = parse_video_ref(&wordy).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
    }

    #[test]
    fn the_watch_url_is_canonical() {
        assert_eq!(
            parse_video_ref("youtu.be/dQw4w9WgXcQ").unwrap().watch_url(),
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
        );
    }

    #[test]
    fn an_oembed_answer_gives_title_and_channel() {
        let o: OEmbed = crate::decode_str(
            r#"{"title":"Never","author_name":"Rick","type":"video","version":"1.0","html":"<iframe>"}"#,
        )
        .unwrap();
        assert_eq!(o.title, "Never");
        assert_eq!(o.author_name.as_deref(), Some("Rick"));
        assert!(crate::decode_str::<OEmbed>(r#"{"author_name":"Rick"}"#).is_err());
    }
}

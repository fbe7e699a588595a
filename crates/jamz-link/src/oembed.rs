//! A YouTube video's title and channel from YouTube's oEmbed endpoint
//! (`GET {origin}/oembed?url=https://www.youtube.com/watch?v=ID&format=json`), for a track
//! added by link or id. The origin is a setting (default [`DEFAULT_OEMBED_ORIGIN`]) so that
//! tests answer from a local stand-in and never reach the public internet.
//!
//! oEmbed also says when a video cannot be played elsewhere: 404 (no such video, or
//! private) and 401/403 (its owner does not allow embedding). Those are the user's errors
//! ([`OEmbedError::Unavailable`], [`OEmbedError::NotEmbeddable`]); a network failure is
//! not a verdict on the video ([`OEmbedError::Unreachable`]).

use std::time::Duration;

use jamz_proto::youtube::{OEmbed, VideoId};

/// Where YouTube answers oEmbed requests.
pub const DEFAULT_OEMBED_ORIGIN: &str = "https://www.youtube.com";

/// A metadata lookup is a convenience of adding a track: it must not hold the add up
/// for long when the network is poor (the track is then added with a plain title).
const OEMBED_TIMEOUT: Duration = Duration::from_secs(8);

/// The largest answer read: an oEmbed document is well under 2 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OEmbedError {
    #[error("invalid oEmbed origin {origin:?}: {reason}")]
    Origin { origin: String, reason: String },
    #[error("YouTube video {0} does not exist or is private")]
    Unavailable(String),
    #[error("the owner of YouTube video {0} does not allow it to be played outside YouTube")]
    NotEmbeddable(String),
    #[error("YouTube's oEmbed answered HTTP {status} for video {id}")]
    Refused { id: String, status: u16 },
    #[error("YouTube's oEmbed could not be reached: {0}")]
    Unreachable(String),
    #[error("YouTube's oEmbed answer for video {id} is not usable: {reason}")]
    Malformed { id: String, reason: String },
}

impl OEmbedError {
    /// Whether the answer is a verdict on the video itself (so adding it makes no sense),
    /// rather than a failure to ask.
    pub fn is_about_the_video(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::NotEmbeddable(_))
    }
}

/// Asks one oEmbed origin about videos.
#[derive(Debug, Clone)]
pub struct OEmbedClient {
    http: reqwest::Client,
    endpoint: url::Url,
}

impl OEmbedClient {
    /// A client of the oEmbed endpoint under `origin` (`http(s)://host[:port][/prefix]`).
    pub fn new(origin: &str) -> Result<Self, OEmbedError> {
        let bad = |reason: String| OEmbedError::Origin {
            origin: origin.to_owned(),
            reason,
        };
        let mut base = url::Url::parse(origin.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base.join("oembed").map_err(|e| bad(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(OEMBED_TIMEOUT)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self { http, endpoint })
    }

    /// The video's title and channel.
    pub async fn video(&self, id: &VideoId) -> Result<OEmbed, OEmbedError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("url", &id.watch_url())
            .append_pair("format", "json");
        let unreachable = |e: reqwest::Error| OEmbedError::Unreachable(e.to_string());
        let mut answer = self.http.get(url).send().await.map_err(unreachable)?;
        let status = answer.status().as_u16();
        match status {
            200 => {}
            404 | 400 => return Err(OEmbedError::Unavailable(id.to_string())),
            401 | 403 => return Err(OEmbedError::NotEmbeddable(id.to_string())),
            _ => {
                return Err(OEmbedError::Refused {
                    id: id.to_string(),
                    status,
                });
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(OEmbedError::Malformed {
                    id: id.to_string(),
                    reason: format!("longer than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let oembed: OEmbed =
            jamz_proto::decode_slice(&body).map_err(|e| OEmbedError::Malformed {
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        Ok(oembed)
    }
}

//! What the cache is given (`CacheTrack`) and what it knows (`StoredTrack`, `CachedEntry`).

use crate::error::CacheError;

/// A track as the cache needs it. `jamz-node` maps the wire `Track` onto this.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheTrack {
    /// The track id (any string; never used as a file name directly).
    pub id: String,
    /// Absolute http(s) URL of the file.
    pub url: String,
    /// Expected sha256 of the bytes, lowercase hex, when the server published it.
    pub sha256: Option<String>,
    /// Expected size in bytes, when known.
    pub size: Option<u64>,
    /// A strong ETag seen earlier for this URL, when known (used for `If-Range`).
    pub etag: Option<String>,
    /// MIME type, e.g. `audio/mpeg`.
    pub mime: Option<String>,
    pub title: Option<String>,
    pub artist: Option<String>,
    /// Duration in seconds.
    pub duration: Option<f64>,
}

impl CacheTrack {
    /// Checks what can be checked before any I/O.
    pub(crate) fn validate(&self) -> Result<(), CacheError> {
        let bad = |message: &str| {
            Err(CacheError::InvalidTrack {
                id: self.id.clone(),
                message: message.to_owned(),
            })
        };
        if self.id.is_empty() {
            return bad("empty id");
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return bad("url is not http(s)");
        }
        if let Some(sha) = &self.sha256
            && !is_sha256_hex(sha)
        {
            return bad("sha256 is not 64 hex digits");
        }
        Ok(())
    }

    /// The expected sha256, normalised to lowercase.
    pub(crate) fn expected_sha256(&self) -> Option<String> {
        self.sha256.as_deref().map(str::to_ascii_lowercase)
    }
}

/// Whether `s` is 64 hex digits (either case).
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the index stores of one complete, verified track file: written once, when
/// the download completes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrack {
    pub id: String,
    pub url: String,
    pub etag: Option<String>,
    /// sha256 of the file, lowercase hex; also its file name.
    pub sha256: String,
    pub size: u64,
    pub mime: Option<String>,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub duration: Option<f64>,
    /// Milliseconds since the Unix epoch.
    pub cached_at: i64,
}

/// One complete, verified track in the index: what was stored, and how it was used since.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedEntry {
    pub stored: StoredTrack,
    /// Milliseconds since the Unix epoch; `None` until first played.
    pub last_played: Option<i64>,
    pub play_count: u64,
    pub pinned: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> CacheTrack {
        CacheTrack {
            id: "t".into(),
            url: "http://127.0.0.1:1/a".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_refuses_bad_input() {
        assert!(track().validate().is_ok());
        let mut t = track();
        t.id.clear();
        assert!(t.validate().is_err());
        let mut t = track();
        t.url = "file:///etc/passwd".into();
        assert!(t.validate().is_err());
        let mut t = track();
        t.sha256 = Some("abc".into());
        assert!(t.validate().is_err());
        let mut t = track();
        t.sha256 = Some("A".repeat(64));
        assert!(t.validate().is_ok());
        assert_eq!(t.expected_sha256(), Some("a".repeat(64)));
    }
}

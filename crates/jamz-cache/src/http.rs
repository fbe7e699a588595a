//! Small HTTP helpers: `Content-Range`, ETags.

use crate::track::is_sha256_hex;

/// `Content-Range: bytes <start>-<end>/<total|*>` → (start, end inclusive, total).
pub(crate) fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some((start, end, total))
}

/// A strong ETag (`"..."`, not `W/"..."`) may be used with `If-Range` (RFC 9110 13.1.5).
pub(crate) fn is_strong_etag(etag: &str) -> bool {
    let e = etag.trim();
    e.len() >= 2 && e.starts_with('"') && e.ends_with('"')
}

/// The sha256 an ETag claims, when it is a quoted 64-hex string (the reference
/// server's convention: `ETag: "<sha256 hex>"`).
pub(crate) fn etag_sha256(etag: &str) -> Option<String> {
    if !is_strong_etag(etag) {
        return None;
    }
    let inner = etag.trim().trim_matches('"');
    is_sha256_hex(inner).then(|| inner.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_and_rejects_nonsense() {
        assert_eq!(parse_content_range("bytes 0-9/10"), Some((0, 9, Some(10))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }

    #[test]
    fn etags() {
        let sha = "ab".repeat(32);
        assert_eq!(etag_sha256(&format!("\"{sha}\"")), Some(sha.clone()));
        assert_eq!(etag_sha256(&format!("W/\"{sha}\"")), None);
        assert_eq!(etag_sha256("\"short\""), None);
        assert!(is_strong_etag("\"x\""));
        assert!(!is_strong_etag("W/\"x\""));
    }
}

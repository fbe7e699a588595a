//! Waiting when the server says "not now": a 429 (too many attempts) or 503 (the
//! server is at capacity) answers a request the server did not act on, usually
//! with `Retry-After`. The REST client waits that long and tries again, within
//! bounds, and otherwise gives up with [`crate::LinkError::Throttled`].

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How long and how often the REST client waits on 429 and 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after the first (0: never wait, report at once).
    pub max_retries: u32,
    /// Longest single wait: a `Retry-After` beyond it is not waited for (a
    /// person at a login screen is better told "try again in a minute").
    pub max_wait: Duration,
    /// Longest total time spent waiting over all retries of one request.
    pub max_total_wait: Duration,
    /// The first wait when the answer has no usable `Retry-After`; doubled on
    /// each further retry (still within `max_wait`).
    pub fallback_wait: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, each at most 15 s, 30 s in all: long enough for the
    /// server's password-check queue to drain or a throttling bucket to refill
    /// by one attempt, short enough for someone waiting at a screen.
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(15),
            max_total_wait: Duration::from_secs(30),
            fallback_wait: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Never waits: a 429 or 503 is reported at once (tests, batch tools).
    pub fn never() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// After `retries_done` retries and `waited` in all, with the server asking
    /// for `retry_after` (if it said): how long to wait before the next
    /// attempt, or `None` to give up.
    pub fn next_wait(
        &self,
        retries_done: u32,
        waited: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if retries_done >= self.max_retries {
            return None;
        }
        let wait = match retry_after {
            Some(d) => d,
            None => self
                .fallback_wait
                .saturating_mul(2u32.saturating_pow(retries_done)),
        };
        if wait > self.max_wait || waited.saturating_add(wait) > self.max_total_wait {
            return None;
        }
        Some(wait)
    }
}

/// Statuses that mean "the server did not act on this, ask again later".
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// The `Retry-After` of an answer: delay-seconds or an HTTP date (RFC 9110
/// 10.2.3). An unreadable value counts as absent.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse_retry_after(value, SystemTime::now())
}

/// Parses a `Retry-After` value relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    // A date already past means "now".
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn waits_are_bounded_by_count_single_wait_and_total() {
        let p = RetryPolicy::default();
        let s = Duration::from_secs;
        assert_eq!(p.next_wait(0, s(0), Some(s(5))), Some(s(5)));
        // Longer than one wait may be: give up at once.
        assert_eq!(p.next_wait(0, s(0), Some(s(60))), None);
        // Over the total.
        assert_eq!(p.next_wait(2, s(20), Some(s(11))), None);
        // Out of retries.
        assert_eq!(p.next_wait(3, s(0), Some(s(1))), None);
        // No Retry-After: 1, 2, 4 s.
        assert_eq!(p.next_wait(0, s(0), None), Some(s(1)));
        assert_eq!(p.next_wait(1, s(1), None), Some(s(2)));
        assert_eq!(p.next_wait(2, s(3), None), Some(s(4)));
        assert_eq!(RetryPolicy::never().next_wait(0, s(0), Some(s(1))), None);
    }

    #[test]
    fn only_429_and_503_are_retried() {
        for s in [429, 503] {
            assert!(is_retryable(s));
        }
        for s in [400, 401, 408, 413, 415, 500, 502, 504] {
            assert!(!is_retryable(s), "{s}");
        }
    }
}

//! Wall-clock time as the protocol counts it.
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, fractional.
pub fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Whole milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    now_ms_f64() as i64
}

/// A stored millisecond time as the protocol's date (ISO-8601, like the web
/// backend's MongoDB dates).
pub fn iso(ms: i64) -> jamz_proto::DateValue {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    jamz_proto::DateValue::Text(humantime::format_rfc3339_millis(t).to_string())
}

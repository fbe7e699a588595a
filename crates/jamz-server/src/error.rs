//! The server's error type and how it reaches a REST client: a status code and
//! `{"error": "..."}` (docs/protocol.md, Conventions).
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jamz_proto::rest::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Too many attempts; retry after this many seconds (429).
    #[error("too many attempts; retry in {0} s")]
    Throttled(u64),
    /// The server is at capacity; retry after this many seconds (503).
    #[error("the server is busy; retry in {0} s")]
    Busy(u64),
    #[error("upload too slow: {0}")]
    TooSlow(String),
    #[error("range not satisfiable: {0}")]
    RangeNotSatisfiable(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Io(e) if is_disk_full(e) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Database(e) if crate::db::is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Io(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// What a client is told to wait when the database cannot be reached: a restart
/// or a fail-over takes seconds.
const DATABASE_RETRY_SECS: u64 = 2;

fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match self {
            Self::Throttled(s) | Self::Busy(s) => Some(s),
            Self::Database(_) if status == StatusCode::SERVICE_UNAVAILABLE => {
                Some(DATABASE_RETRY_SECS)
            }
            _ => None,
        };
        if status == StatusCode::SERVICE_UNAVAILABLE && !matches!(self, Self::Busy(_)) {
            // The database is gone for now: one line per request, not an error trace.
            tracing::warn!(error = %self, "database unavailable");
        } else if status.is_server_error() && !matches!(self, Self::Busy(_)) {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request refused");
        }
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of our own faults go to the log, not to the client.
            "internal server error".to_string()
        } else if status == StatusCode::SERVICE_UNAVAILABLE && !matches!(self, Self::Busy(_)) {
            "the database is unavailable; retry shortly".to_string()
        } else if status == StatusCode::INSUFFICIENT_STORAGE {
            "the server's disk is full".to_string()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of that slow body is not waited for: this connection ends
            // (after a short lingering read, `rest::files`).
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

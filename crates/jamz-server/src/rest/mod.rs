//! The REST routes of docs/protocol.md and the pieces they share.
mod accounts;
mod files;
mod groups;
mod locations;
mod ops;
mod sessions;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Limits on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// JSON bodies. A 10,000-track playlist is about 3 MB of JSON; leave room.
    pub json_body: usize,
    /// One uploaded file. Long DJ mixes as 320 kbit/s MP3 run to about 150 MB.
    pub upload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json_body: 8 * 1024 * 1024,
            upload: 200 * 1024 * 1024,
        }
    }
}

pub fn router(state: AppState, limits: Limits) -> Router {
    let upload = Router::new()
        .route("/api/music/upload", post(files::upload))
        // The multipart envelope adds a little to the file itself; past the
        // limit, a refused upload is still read for a while (see files::drain).
        .layer(DefaultBodyLimit::max(
            limits.upload as usize + 64 * 1024 + files::REFUSED_UPLOAD_DRAIN_BYTES,
        ));
    Router::new()
        .route("/api/auth/register", post(accounts::register))
        .route("/api/auth/login", post(accounts::login))
        .route("/api/auth/logout", post(accounts::logout))
        .route("/api/auth/password", post(accounts::change_password))
        .route("/api/groups", get(groups::list).post(groups::create))
        .route("/api/groups/{group_id}/members", post(groups::add_member))
        .route("/api/groups/{group_id}/members/me", delete(groups::leave))
        .route(
            "/api/groups/{group_id}/locations/latest",
            get(locations::latest),
        )
        .route(
            "/api/audio/sessions/group/{group_id}",
            get(sessions::for_group),
        )
        .route(
            "/api/audio/sessions/{session_id}/music/playlist",
            post(sessions::append).put(sessions::reorder),
        )
        .route(
            "/api/audio/sessions/{session_id}/music/playlist/{track_id}",
            delete(sessions::remove),
        )
        .route("/api/music/files/{key}", get(files::download))
        .route("/api/locations", post(locations::report))
        .route("/api/mesh/grant-key", get(sessions::grant_key))
        .route("/health", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .layer(DefaultBodyLimit::max(limits.json_body))
        .merge(upload)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// No response is to be sniffed into another type (an upload served as HTML).
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// The client's IP address (from the connection), for per-address limits.
pub struct ClientAddr(pub std::net::IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or_else(|| ApiError::Internal("no client address on the request".into()))?;
        Ok(Self(addr))
    }
}

/// A JSON body decoded by jamz-proto: malformed JSON is a 400, a wrong or
/// missing field a 422 naming the field, a body over the limit a 413, another
/// content type a 415; all as `{"error"}`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
                    || v.contains("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge("request body is too large".into())
            } else {
                ApiError::BadRequest(format!(
                    "could not read the body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        match jamz_proto::decode_slice(&body) {
            Ok(v) => Ok(ApiJson(v)),
            Err(e @ jamz_proto::ProtoError::Syntax { .. }) => {
                Err(ApiError::BadRequest(e.to_string()))
            }
            Err(e) => Err(ApiError::Unprocessable(e.to_string())),
        }
    }
}

//! Uploads into the content-addressed store, and downloads with `Range` and `ETag`.
use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use jamz_proto::rest::TrackResponse;
use jamz_proto::{Track, TrackSource};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::clock::{iso, now_ms};
use crate::error::{ApiError, ApiResult};
use crate::service::new_object_id;
use crate::state::AppState;

use crate::service::MAX_TAG_CHARS;

fn mime_for(file_name: &str, declared: Option<&str>) -> ApiResult<String> {
    if let Some(m) = declared.map(str::to_ascii_lowercase) {
        if m.starts_with("audio/") || m == "video/mp4" || m == "application/ogg" {
            return Ok(m);
        }
        if m != "application/octet-stream" {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{m} is not an audio type"
            )));
        }
    }
    let ext = file_name
        .rsplit('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(match ext.as_str() {
        "mp3" => "audio/mpeg",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        "flac" => "audio/flac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
    .to_string())
}

fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A short text field of the form, read with a byte cap: the whole upload
/// limit must not be spendable on a "title".
async fn text_field(
    name: &str,
    mut field: axum::extract::multipart::Field<'_>,
) -> ApiResult<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_err)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_TAG_CHARS * 4 {
            return Err(too_long(name));
        }
    }
    let value = String::from_utf8(bytes)
        .map_err(|_| ApiError::BadRequest(format!("{name} is not UTF-8")))?
        .trim()
        .to_string();
    if value.chars().count() > MAX_TAG_CHARS {
        return Err(too_long(name));
    }
    Ok(value)
}

fn too_long(name: &str) -> ApiError {
    ApiError::Unprocessable(format!("{name} is longer than {MAX_TAG_CHARS} characters"))
}

fn multipart_err(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge("upload exceeds the size limit".into())
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// How much of a refused upload is read before answering: a client that sent
/// a body not far over the limit (or a small one without a token) gets the
/// 401/413/415 instead of a reset connection (EPIPE).
pub const REFUSED_UPLOAD_DRAIN_BYTES: usize = 1024 * 1024;

pub async fn upload(
    State(state): State<AppState>,
    auth: Result<AuthUser, ApiError>,
    headers: HeaderMap,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<TrackResponse>)> {
    let user = match auth {
        Ok(AuthUser(user)) => user,
        Err(e) => {
            drain(&mut form).await;
            return Err(e);
        }
    };
    match store_upload(&state, &headers, user, &mut form).await {
        Ok(stored) => Ok(stored),
        // Draining a too-slow body before answering would wait on that slow body
        // again, past the client's patience: answer now, and keep reading behind
        // the answer (a lingering close), so that the client, still sending, reads
        // the 408 instead of a reset connection.
        Err(e @ ApiError::TooSlow(_)) => {
            tokio::spawn(linger(form));
            Err(e)
        }
        Err(e) => {
            drain(&mut form).await;
            Err(e)
        }
    }
}

/// How long a too-slow upload is still read after its 408 has been sent: the
/// answer needs one round trip to reach the client.
pub const TOO_SLOW_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads what a too-slow client still sends, for at most [`TOO_SLOW_LINGER`] and
/// [`REFUSED_UPLOAD_DRAIN_BYTES`]: while the request body is read, the connection
/// stays open behind the answer already sent. Closing it with unread bytes would
/// make the kernel reset it, and the client, whose next write then fails, would see
/// "error sending request" instead of the 408.
async fn linger(mut form: Multipart) {
    let _ = tokio::time::timeout(TOO_SLOW_LINGER, drain(&mut form)).await;
}

/// Reads (and drops) what is left of a refused upload, up to
/// [`REFUSED_UPLOAD_DRAIN_BYTES`], so that the client reads the answer.
async fn drain(form: &mut Multipart) {
    let mut drained = 0;
    while drained < REFUSED_UPLOAD_DRAIN_BYTES {
        match form.next_field().await {
            Ok(Some(mut field)) => {
                while let Ok(Some(chunk)) = field.chunk().await {
                    drained += chunk.len();
                    if drained >= REFUSED_UPLOAD_DRAIN_BYTES {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
}

async fn store_upload(
    state: &AppState,
    headers: &HeaderMap,
    user: jamz_proto::UserId,
    form: &mut Multipart,
) -> ApiResult<(StatusCode, Json<TrackResponse>)> {
    let (mut title, mut artist, mut duration) = (None, None, None);
    let mut stored = None;
    while let Some(field) = form.next_field().await.map_err(multipart_err)? {
        match field.name().unwrap_or("") {
            "file" => {
                let file_name = field.file_name().unwrap_or("upload").to_string();
                // A declared type that is not audio is refused early; the type
                // stored and served is the one the probe finds.
                mime_for(&file_name, field.content_type())?;
                let stream = field.map_err(multipart_err);
                let probe_name = file_name.clone();
                let (file, mime) = state
                    .store
                    .put(
                        Box::pin(stream),
                        state.upload_limit,
                        state.upload_min_rate,
                        move |path| {
                            crate::probe::audio_type(path, &probe_name)
                                .map_err(ApiError::UnsupportedMediaType)
                        },
                    )
                    .await?;
                stored = Some((file, mime.to_string(), file_name));
            }
            "title" => title = Some(text_field("title", field).await?),
            "artist" => artist = Some(text_field("artist", field).await?),
            "duration" => {
                let text = field.text().await.map_err(multipart_err)?;
                let d: f64 = text.trim().parse().map_err(|_| {
                    ApiError::Unprocessable(format!(
                        "duration must be a number of seconds, not {text:?}"
                    ))
                })?;
                if !d.is_finite() || d < 0.0 {
                    return Err(ApiError::Unprocessable(
                        "duration must be non-negative".into(),
                    ));
                }
                duration = Some(d);
            }
            _ => {} // unknown fields are ignored, as in JSON bodies
        }
    }
    let Some((file, mime, file_name)) = stored else {
        return Err(ApiError::Unprocessable(
            "the upload has no `file` field".into(),
        ));
    };
    state.db.add_file(&file.key, file.size, &mime, user).await?;
    // The file name is the title of last resort: cut to the tag limit.
    let stem: String = file_name
        .rsplit_once('.')
        .map_or(file_name.as_str(), |(s, _)| s)
        .trim()
        .chars()
        .take(MAX_TAG_CHARS)
        .collect();
    let track = Track {
        id: new_object_id(),
        title: title.filter(|t| !t.is_empty()).unwrap_or(stem),
        artist: artist.unwrap_or_default(),
        source: TrackSource::Upload,
        url: format!("{}/api/music/files/{}", base_url(state, headers), file.key),
        duration,
        size: Some(file.size),
        sha256: Some(file.key.clone()),
        uploaded_by: Some(user),
        created_at: Some(iso(now_ms())),
        ..Track::default()
    };
    state.db.add_track(&track, &file.key).await?;
    tracing::info!(user, key = %file.key, size = file.size, "upload stored");
    Ok((StatusCode::CREATED, Json(TrackResponse { track })))
}

/// A parsed `Range: bytes=...` header (one range; several are answered whole).
#[derive(Debug, PartialEq)]
enum RangeRequest {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => Some((start, end.min(len.saturating_sub(1)))),
        (Ok(start), Err(_)) if b.is_empty() => Some((start, len.saturating_sub(1))),
        (Err(_), Ok(suffix)) if a.is_empty() && suffix > 0 => {
            Some((len.saturating_sub(suffix), len.saturating_sub(1)))
        }
        _ => return RangeRequest::Whole,
    };
    match range {
        Some((start, end)) if start < len && start <= end => RangeRequest::Part { start, end },
        _ => RangeRequest::Unsatisfiable,
    }
}

/// Files are addressed by their SHA-256, an unguessable capability like the
/// seeds' object-storage URLs, so they are served without a token (an `<audio>`
/// element cannot send one); a token that is sent must still be valid.
pub async fn download(
    State(state): State<AppState>,
    MaybeAuthUser(_user): MaybeAuthUser,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = state
        .store
        .path(&key)
        .ok_or_else(|| ApiError::NotFound(format!("no file {key}")))?;
    let mime = state
        .db
        .file_mime(&key)
        .await?
        .unwrap_or_else(|| "application/octet-stream".into());
    let etag = format!("\"{key}\"");
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if header_str(header::IF_NONE_MATCH)
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            ],
        )
            .into_response());
    }
    let mut file = tokio::fs::File::open(&path).await?;
    let len = file.metadata().await?.len();
    // If-Range with another validator: the client's partial copy is stale, send it all.
    let range_header = match header_str(header::IF_RANGE) {
        Some(v) if v.trim() != etag => None,
        _ => header_str(header::RANGE),
    };
    let common = |b: axum::http::response::Builder| {
        b.header(header::ETAG, &etag)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_TYPE, &mime)
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
    };
    let response = match parse_range(range_header, len) {
        RangeRequest::Whole => common(Response::builder())
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, len)
            .body(Body::from_stream(ReaderStream::new(file))),
        RangeRequest::Part { start, end } => {
            file.seek(std::io::SeekFrom::Start(start)).await?;
            let part_len = end - start + 1;
            common(Response::builder())
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_LENGTH, part_len)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))
                .body(Body::from_stream(ReaderStream::new(file.take(part_len))))
        }
        RangeRequest::Unsatisfiable => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::json!({"error": format!("range not satisfiable: the file has {len} bytes")}).to_string(),
            )),
    };
    response.map_err(|e| ApiError::Internal(format!("build response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--public-url` is the base of every file URL the server hands out (a trailing slash
    /// dropped); without it, the Host the client asked for.
    #[tokio::test]
    async fn file_urls_start_at_the_public_url_or_else_the_requested_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = crate::state::test_state(dir.path()).await;
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "10.0.0.5:5050".parse().unwrap());
        assert_eq!(base_url(&state, &headers), "http://10.0.0.5:5050");
        state.public_url = Some("https://jamz.example/base/".into());
        assert_eq!(base_url(&state, &headers), "https://jamz.example/base");
    }

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(
            parse_range(Some("bytes=0-3"), 10),
            RangeRequest::Part { start: 0, end: 3 }
        );
        assert_eq!(
            parse_range(Some("bytes=4-"), 10),
            RangeRequest::Part { start: 4, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            RangeRequest::Part { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            RangeRequest::Part { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=3-1"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
    }
}

//! The `maptile:` protocol: the map's `<img>`s ask `maptile://localhost/z/x/y`
//! (`http://maptile.localhost/z/x/y` on Windows and Android) and get the tile from
//! [`jamz_node::app::App::map_tile`] (the tile cache, then the tile server). The
//! web view reaches no tile server itself.

use jamz_node::ErrorCode;
use jamz_node::app::App;
use tauri::http::{Response, StatusCode, header};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

/// The scheme the UI's tile layer uses (`ui/src/backend`).
pub const SCHEME: &str = "maptile";

pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: tauri::http::Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app = ctx.app_handle().clone();
    let path = request.uri().path().to_owned();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<App>();
        let response = match state.map_tile(&path).await {
            Ok(tile) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, tile.media_type)
                // The disk cache is the one copy (within its size limit): the web
                // view asks again rather than keep a second one.
                .header(header::CACHE_CONTROL, "no-store")
                .header("x-from-cache", if tile.from_cache { "1" } else { "0" })
                .body(tile.body),
            Err(e) => {
                let status = match e.code() {
                    ErrorCode::Invalid => StatusCode::BAD_REQUEST,
                    ErrorCode::Unreachable => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                tracing::debug!("map tile {path}: {e}");
                Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .header(header::CACHE_CONTROL, "no-store")
                    .body(e.to_string().into_bytes())
            }
        };
        match response {
            Ok(r) => responder.respond(r),
            Err(e) => {
                // A media type from disk that is no header value: answer anyway.
                tracing::warn!("map tile {path}: cannot build the response: {e}");
                let mut r = Response::new(Vec::new());
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                responder.respond(r);
            }
        }
    });
}

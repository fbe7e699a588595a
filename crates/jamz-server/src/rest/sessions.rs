//! The group's audio session and its playlist.
use axum::Json;
use axum::extract::{Path, State};
use jamz_proto::rest::{AddTrackRequest, PlaylistResponse, ReorderRequest, SessionResponse};

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, Origin};
use crate::state::AppState;

pub async fn for_group(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(group_id): Path<String>,
) -> ApiResult<Json<SessionResponse>> {
    if state.db.group(&group_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no group {group_id}")));
    }
    if !state.db.is_member(&group_id, user).await? {
        return Err(ApiError::Forbidden(
            "you are not a member of this group".into(),
        ));
    }
    let row = state.db.session_for_group(&group_id, user).await?;
    Ok(Json(SessionResponse {
        session: service::session_document(&state, &row).await?,
    }))
}

pub async fn append(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(session_id): Path<String>,
    ApiJson(body): ApiJson<AddTrackRequest>,
) -> ApiResult<Json<PlaylistResponse>> {
    service::member_session(&state, &session_id, user).await?;
    let track = service::prepare_track(body.track, user)?;
    let (playlist, _added) =
        service::append_track(&state, &session_id, track, Origin::Rest).await?;
    Ok(Json(PlaylistResponse {
        success: true,
        playlist,
    }))
}

pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((session_id, track_id)): Path<(String, String)>,
) -> ApiResult<Json<PlaylistResponse>> {
    let playlist = service::remove_track(&state, &session_id, user, &track_id).await?;
    Ok(Json(PlaylistResponse {
        success: true,
        playlist,
    }))
}

pub async fn reorder(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(session_id): Path<String>,
    ApiJson(body): ApiJson<ReorderRequest>,
) -> ApiResult<Json<PlaylistResponse>> {
    let playlist = service::reorder_tracks(&state, &session_id, user, &body.order).await?;
    Ok(Json(PlaylistResponse {
        success: true,
        playlist,
    }))
}

/// `GET /api/mesh/grant-key` (ext): the public key controller grants are signed with. No
/// token: it is public, and peers fetch it to check grants later, offline.
pub async fn grant_key(State(state): State<AppState>) -> Json<jamz_proto::grant::GrantKey> {
    Json(jamz_proto::grant::GrantKey {
        algorithm: jamz_proto::grant::ALGORITHM.to_owned(),
        public_key: state.grants.public_key_hex(),
    })
}

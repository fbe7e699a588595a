//! Groups and their members.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jamz_proto::rest::{AddMemberRequest, CreateGroupRequest, GroupResponse, GroupsResponse};

use super::{ApiJson, ClientAddr};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service::new_object_id;
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1000;

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<GroupsResponse>> {
    Ok(Json(GroupsResponse {
        groups: state.db.groups_of(user).await?,
    }))
}

pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<GroupResponse>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "group name must be 1-{MAX_NAME_CHARS} characters"
        )));
    }
    let description = body.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    let id = new_object_id();
    state
        .db
        .create_group(&id, name, description.trim(), user)
        .await?;
    let group = state
        .db
        .group(&id)
        .await?
        .ok_or_else(|| ApiError::Internal("group vanished after creation".into()))?;
    Ok((StatusCode::CREATED, Json(GroupResponse { group })))
}

pub async fn add_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddr(addr): ClientAddr,
    Path(group_id): Path<String>,
    ApiJson(body): ApiJson<AddMemberRequest>,
) -> ApiResult<Json<GroupResponse>> {
    let group = state
        .db
        .group(&group_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no group {group_id}")))?;
    // A creator who left the group is no longer its admin.
    if group.creator_id != user || !group.members.contains(&user) {
        return Err(ApiError::Forbidden(
            "only the group's creator may add members".into(),
        ));
    }
    // "No user named X" tells which names exist: lookups are limited like
    // logins, per caller and per address.
    state
        .throttle
        .check(&format!("lookup:{user}"), addr)
        .await
        .map_err(|t| ApiError::Throttled(t.retry_after_secs))?;
    let member = state
        .db
        .user_id_by_username(body.username.trim())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named {}", body.username.trim())))?;
    state.db.add_member(&group_id, member).await?;
    let group = state
        .db
        .group(&group_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no group {group_id}")))?;
    Ok(Json(GroupResponse { group }))
}

/// (ext) `DELETE /api/groups/:groupId/members/me`: the caller leaves the group.
/// Their sockets leave its session and their positions are no longer shown in it.
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(group_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if state.db.group(&group_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no group {group_id}")));
    }
    if !state.db.remove_member(&group_id, user).await? {
        return Err(ApiError::Forbidden(
            "you are not a member of this group".into(),
        ));
    }
    if let Some(session) = state.db.session_id_of_group(&group_id).await? {
        crate::realtime::evict(&state, &session, user).await;
    }
    tracing::info!(user, group = %group_id, "left group");
    Ok(Json(serde_json::json!({"success": true})))
}

//! Position fixes over REST.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jamz_proto::CarriesFix;
use jamz_proto::rest::{LatestLocationsResponse, LocationReport};
use serde_json::json;

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service;
use crate::state::AppState;

pub async fn report(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<LocationReport>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let fix = body.fix();
    fix.validate().map_err(ApiError::Unprocessable)?;
    let shared_with = match &body.session_id {
        Some(session) => Some(service::member_session(&state, session, user).await?),
        None => None,
    };
    state
        .db
        .add_location(
            user,
            shared_with
                .as_ref()
                .map(|row| (row.id.as_str(), row.group_id.as_str())),
            &fix,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"success": true}))))
}

pub async fn latest(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(group_id): Path<String>,
) -> ApiResult<Json<LatestLocationsResponse>> {
    if state.db.group(&group_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no group {group_id}")));
    }
    if !state.db.is_member(&group_id, user).await? {
        return Err(ApiError::Forbidden(
            "you are not a member of this group".into(),
        ));
    }
    Ok(Json(LatestLocationsResponse {
        locations: state.db.latest_locations(&group_id).await?,
    }))
}

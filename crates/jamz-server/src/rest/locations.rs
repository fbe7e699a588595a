//! Position fixes over REST.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jamz_proto::rest::{LatestLocationsResponse, LocationReport};
use serde_json::json;

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service;
use crate::state::AppState;

/// Rejects NaN and infinities in optional measurements, which SQLite would store
/// as NULL or garbage without a word.
pub fn check_optional(name: &str, v: Option<f64>) -> ApiResult<()> {
    match v {
        Some(x) if !x.is_finite() => Err(ApiError::Unprocessable(format!(
            "{name} must be a finite number"
        ))),
        _ => Ok(()),
    }
}

pub async fn report(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<LocationReport>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    jamz_proto::validate_coordinates(body.latitude, body.longitude)
        .map_err(ApiError::Unprocessable)?;
    check_optional("accuracy", body.accuracy)?;
    check_optional("speed", body.speed)?;
    check_optional("heading", body.heading)?;
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
            body.latitude,
            body.longitude,
            body.accuracy,
            body.speed,
            body.heading,
            body.timestamp,
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

//! Register and log in.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jamz_proto::User;
use jamz_proto::rest::{AuthResponse, LoginRequest, RegisterRequest};

use super::ApiJson;
use crate::auth::{hash_password, verify_password};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const MAX_USERNAME_CHARS: usize = 64;
const MAX_PASSWORD_BYTES: usize = 1024;

fn check_username(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USERNAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "username must be 1-{MAX_USERNAME_CHARS} letters, digits, '_', '.' or '-'"
        )))
    }
}

pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<AuthResponse>)> {
    let username = body.username.trim().to_string();
    let email = body.email.trim().to_string();
    check_username(&username)?;
    if !email.contains('@') || email.len() > 254 {
        return Err(ApiError::Unprocessable(
            "email is not a valid address".into(),
        ));
    }
    if body.password.is_empty() || body.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "password must be 1-{MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let hash = hash_password(body.password).await?;
    let id = state.db.create_user(&username, &email, &hash).await?;
    tracing::info!(user = id, %username, "registered");
    let token = state.keys.issue(id, &username)?;
    Ok((
        StatusCode::CREATED,
        Json(AuthResponse {
            token,
            user: User {
                id,
                username,
                email,
            },
        }),
    ))
}

pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let refused = || ApiError::Unauthorized("invalid username or password".into());
    let Some(user) = state.db.user_by_login(body.username.trim()).await? else {
        return Err(refused());
    };
    if !verify_password(body.password, user.password_hash.clone()).await {
        return Err(refused());
    }
    state.db.touch_login(user.id).await?;
    let token = state.keys.issue(user.id, &user.username)?;
    Ok(Json(AuthResponse {
        token,
        user: User {
            id: user.id,
            username: user.username,
            email: user.email,
        },
    }))
}

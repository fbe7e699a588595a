//! Register and log in.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use jamz_proto::User;
use jamz_proto::rest::{AuthResponse, LoginRequest, RegisterRequest};

use super::{ApiJson, ClientAddr};
use crate::auth::AuthUser;
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
    let hash = state.hash_password(body.password).await?;
    let id = state.db.create_user(&username, &email, &hash).await?;
    tracing::info!(user = id, %username, "registered");
    let token = state.keys.issue(id, &username, 0)?;
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
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let login = body.username.trim();
    state
        .throttle
        .check(login, addr)
        .await
        .map_err(|t| ApiError::Throttled(t.retry_after_secs))?;
    let refused = || ApiError::Unauthorized("invalid username or password".into());
    if body.password.len() > MAX_PASSWORD_BYTES {
        return Err(refused());
    }
    let user = state.db.user_by_login(login).await?;
    // An unknown name costs the same argon2 check as a known one (against a
    // dummy hash): the answer's timing does not tell which names exist.
    let ok = state
        .verify_password(
            body.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(refused());
    };
    state.throttle.reset(login).await;
    state.db.touch_login(user.id).await?;
    let token = state
        .keys
        .issue(user.id, &user.username, user.token_version)?;
    Ok(Json(AuthResponse {
        token,
        user: User {
            id: user.id,
            username: user.username,
            email: user.email,
        },
    }))
}

/// (ext) `POST /api/auth/logout`: revokes every token of the caller (all their
/// devices sign in again) and closes their sockets.
pub async fn logout(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<serde_json::Value>> {
    state.db.bump_token_version(user).await?;
    crate::realtime::disconnect_user(&state, user).await;
    tracing::info!(user, "logged out everywhere");
    Ok(Json(serde_json::json!({"success": true})))
}

#[derive(serde::Deserialize)]
pub struct ChangePasswordRequest {
    #[serde(alias = "currentPassword")]
    current_password: String,
    #[serde(alias = "newPassword")]
    new_password: String,
}

/// (ext) `POST /api/auth/password`: a new password; every earlier token is
/// revoked and the answer carries a fresh one (like a login).
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<Json<AuthResponse>> {
    let row = state
        .db
        .user_by_id(user)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
    // A stolen token must not turn into unlimited guesses at the password.
    state
        .throttle
        .check(&row.username, addr)
        .await
        .map_err(|t| ApiError::Throttled(t.retry_after_secs))?;
    if body.new_password.is_empty() || body.new_password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "password must be 1-{MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if body.current_password.len() > MAX_PASSWORD_BYTES
        || !state
            .verify_password(body.current_password, Some(row.password_hash.clone()))
            .await?
    {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let hash = state.hash_password(body.new_password).await?;
    let version = state.db.set_password(user, &hash).await?;
    crate::realtime::disconnect_user(&state, user).await;
    tracing::info!(user, "password changed");
    let token = state.keys.issue(user, &row.username, version)?;
    Ok(Json(AuthResponse {
        token,
        user: User {
            id: row.id,
            username: row.username,
            email: row.email,
        },
    }))
}

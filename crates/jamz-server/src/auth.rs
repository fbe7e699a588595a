//! Accounts: argon2 password hashes and HS256 JWTs, and the axum extractor that
//! turns `Authorization: Bearer <JWT>` into the caller's user id.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jamz_proto::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// How long a token stays valid. A road trip lasts days and the app must work
/// offline in between, so sign-ins are long-lived, like the web app's; a token
/// is revoked by bumping its user's token version (logout, password change).
const TOKEN_LIFETIME_SECS: u64 = 30 * 24 * 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id (as the web backend's tokens carry it).
    sub: String,
    id: UserId,
    username: String,
    iat: u64,
    exp: u64,
    /// The user's token version at issue (tokens from before versions: 0).
    #[serde(default)]
    ver: i64,
}

/// Who a valid token was issued to, and under which token version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    pub user: UserId,
    pub version: i64,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue(&self, user: UserId, username: &str, version: i64) -> Result<String, ApiError> {
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            sub: user.to_string(),
            id: user,
            username: username.to_string(),
            iat,
            exp: iat + TOKEN_LIFETIME_SECS,
            ver: version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("sign token: {e}")))
    }

    /// Whom a token was issued to, or `None` for anything invalid. Whether it
    /// is still current is [`AppState::current_user`]'s question.
    pub fn verify(&self, token: &str) -> Option<TokenSubject> {
        let validation = Validation::new(Algorithm::HS256);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| TokenSubject {
                user: data.claims.id,
                version: data.claims.ver,
            })
    }
}

impl AppState {
    /// The user of a token that is valid and not revoked: the user exists (a
    /// token outliving its user is as bad as a forged one) and its version is
    /// the user's current one.
    pub async fn current_user(&self, token: &str) -> Result<Option<UserId>, ApiError> {
        let Some(subject) = self.keys.verify(token) else {
            return Ok(None);
        };
        let current = self.db.token_version(subject.user).await?;
        Ok((current == Some(subject.version)).then_some(subject.user))
    }
}

/// The authenticated caller of a REST route.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                ApiError::Unauthorized("Authorization must be `Bearer <token>`".into())
            })?;
        let user = state
            .current_user(token.trim())
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
        Ok(AuthUser(user))
    }
}

/// The caller, where a route serves both signed-in and anonymous clients.
#[derive(Debug, Clone, Copy)]
pub struct MaybeAuthUser(pub Option<UserId>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            AuthUser::from_request_parts(parts, state)
                .await
                .map(|u| MaybeAuthUser(Some(u.0)))
        } else {
            Ok(MaybeAuthUser(None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef")
    }

    fn signed(claims: &Claims, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "7".into(),
            id: 7,
            username: "kim".into(),
            iat: 0,
            exp,
            ver: 3,
        }
    }

    #[test]
    fn an_issued_token_names_its_user_and_version() {
        let t = keys().issue(7, "kim", 3).unwrap();
        assert_eq!(
            keys().verify(&t),
            Some(TokenSubject {
                user: 7,
                version: 3
            })
        );
    }

    #[test]
    fn forged_tampered_expired_and_garbage_tokens_are_refused() {
        let k = keys();
        let far = 4_000_000_000;
        // Signed with another secret.
        assert_eq!(
            k.verify(&signed(&claims(far), b"another secret, not ours at all")),
            None
        );
        // Our signature over other claims: the payload swapped for another user's.
        let good = signed(&claims(far), b"0123456789abcdef0123456789abcdef");
        let mut other = claims(far);
        other.id = 8;
        let forged = signed(&other, b"x");
        let parts: Vec<&str> = good.split('.').collect();
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            forged.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert_eq!(k.verify(&swapped), None);
        // Expired (an hour ago).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(
            k.verify(&signed(
                &claims(now - 3600),
                b"0123456789abcdef0123456789abcdef"
            )),
            None
        );
        // "none" algorithm and plain garbage.
        let unsigned = format!("{}.{}.", "eyJhbGciOiJub25lIn0", parts[1]);
        assert_eq!(k.verify(&unsigned), None);
        let long = "x".repeat(10_000);
        for junk in ["", "not.a.jwt", "a.b", "....", long.as_str()] {
            assert_eq!(k.verify(junk), None, "{junk:.20}");
        }
    }

    #[tokio::test]
    async fn a_token_stops_working_when_its_version_is_bumped_or_its_user_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::test_state(dir.path()).await;
        let kim = state
            .db
            .create_user("kim", "kim@e.test", "x")
            .await
            .unwrap();
        let v = state.db.token_version(kim).await.unwrap().unwrap();
        let token = state.keys.issue(kim, "kim", v).unwrap();
        assert_eq!(state.current_user(&token).await.unwrap(), Some(kim));
        // Logout / password change: every token of the old version is revoked.
        let v2 = state.db.bump_token_version(kim).await.unwrap();
        assert_ne!(v2, v);
        assert_eq!(state.current_user(&token).await.unwrap(), None);
        let fresh = state.keys.issue(kim, "kim", v2).unwrap();
        assert_eq!(state.current_user(&fresh).await.unwrap(), Some(kim));
        // A well-signed token of a user this database never had.
        let ghost = state.keys.issue(kim + 100, "ghost", 0).unwrap();
        assert_eq!(state.current_user(&ghost).await.unwrap(), None);
    }
}

//! The one error type of the app's commands: serialized as `{code, message}`; the UI
//! shows `message` and branches on `code`.

use jamz_link::LinkError;
use jamz_node::NodeError;
use serde::ser::{Serialize, SerializeStruct, Serializer};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("track cache: {0}")]
    Cache(#[from] jamz_cache::CacheError),
    #[error("no session is open")]
    NoSession,
    #[error("a session is already open: leave it first")]
    SessionOpen,
    #[error("this device already hosts a session at {0}")]
    AlreadyHosting(String),
    #[error("{0}")]
    Invalid(String),
    #[error("app: {0}")]
    Tauri(#[from] tauri::Error),
}

/// A stable, machine-readable name for an HTTP status the backend answered.
fn http_code(status: u16) -> &'static str {
    match status {
        400 | 422 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        409 => "conflict",
        413 => "too-large",
        _ => "server-error",
    }
}

fn link_code(e: &LinkError) -> &'static str {
    match e {
        LinkError::Http { status, .. } => http_code(*status),
        LinkError::Request { .. } | LinkError::WebSocket(_) => "unreachable",
        LinkError::Url { .. } => "bad-url",
        _ => "link",
    }
}

impl AppError {
    /// What the UI branches on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Node(NodeError::Link(e)) | AppError::Link(e) => link_code(e),
            AppError::Node(NodeError::NotLoggedIn { .. }) => "not-logged-in",
            AppError::Node(NodeError::Audio(_)) => "audio",
            AppError::Node(NodeError::Cache(_)) | AppError::Cache(_) => "cache",
            AppError::Node(NodeError::Invalid(_)) | AppError::Invalid(_) => "invalid",
            AppError::Node(NodeError::Stopped(_)) => "stopped",
            AppError::Node(NodeError::Host(_)) => "host",
            AppError::Node(_) => "node",
            AppError::NoSession => "no-session",
            AppError::SessionOpen => "session-open",
            AppError::AlreadyHosting(_) => "already-hosting",
            AppError::Tauri(_) => "app",
        }
    }
}

impl Serialize for AppError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AppError", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let v = serde_json::to_value(AppError::NoSession).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "no-session", "message": "no session is open"})
        );
    }

    #[test]
    fn http_statuses_map_to_codes_the_ui_branches_on() {
        let e = AppError::Link(LinkError::Http {
            method: "POST".into(),
            path: "/api/auth/login".into(),
            status: 401,
            message: "bad password".into(),
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "unauthorized");
        assert!(v["message"].as_str().unwrap().contains("bad password"));
    }
}

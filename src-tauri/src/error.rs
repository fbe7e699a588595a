//! The one error type of the app's commands: jamz-node's error as `{code, message}`;
//! the UI shows `message` and branches on `code` (`ErrorView` in the UI's types).

use jamz_node::{ErrorView, NodeError};
use serde::Serialize;

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct AppError(ErrorView);

impl From<NodeError> for AppError {
    fn from(e: NodeError) -> Self {
        AppError(e.into())
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let v = serde_json::to_value(AppError::from(NodeError::SessionOpen)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "session-open", "message": "a session is already open: leave it first"})
        );
    }
}

//! Bodies of the REST routes (docs/protocol.md, "REST").
use serde::{Deserialize, Serialize};

use crate::model::{Group, Location, Session, Track, User};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub username: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// (ext) Body of `POST /api/auth/password`; the answer is an [`AuthResponse`]
/// with a fresh token (every earlier one is revoked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePasswordRequest {
    #[serde(alias = "currentPassword")]
    pub current_password: String,
    #[serde(alias = "newPassword")]
    pub new_password: String,
}

/// Answer of register (201) and login (200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthResponse {
    pub token: String,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupsResponse {
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateGroupRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupResponse {
    pub group: Group,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddMemberRequest {
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub session: Session,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddTrackRequest {
    pub track: Track,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaylistResponse {
    pub success: bool,
    pub playlist: Vec<Track>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReorderRequest {
    pub order: Vec<String>,
}

/// Answer of `POST /api/music/upload` (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackResponse {
    pub track: Track,
}

crate::fix::with_fix_fields! {
    /// Body of `POST /api/locations`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct LocationReport {
        #[serde(default, alias = "sessionId", skip_serializing_if = "Option::is_none")]
        pub session_id: Option<String>,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatestLocationsResponse {
    pub locations: Vec<Location>,
}

/// Every REST error: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

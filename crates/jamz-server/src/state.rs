//! What every handler shares.
use std::sync::Arc;

use socketioxide::SocketIo;

use crate::auth::TokenKeys;
use crate::db::Db;
use crate::live::LiveSessions;
use crate::store::FileStore;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: TokenKeys,
    pub store: FileStore,
    pub live: Arc<LiveSessions>,
    pub io: SocketIo,
    /// Serializes playlist writes so that read-modify-write never interleaves.
    pub playlist_lock: Arc<tokio::sync::Mutex<()>>,
    /// The base of absolute file URLs when set (`--public-url`); else the
    /// request's Host.
    pub public_url: Option<String>,
    /// Largest accepted upload, bytes.
    pub upload_limit: u64,
}

/// The Socket.IO room of a session (PROTOCOL.md: `audio-<sessionId>`).
pub fn room(session_id: &str) -> String {
    format!("audio-{session_id}")
}

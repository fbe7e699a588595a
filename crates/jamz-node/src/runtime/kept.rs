//! Keeping the session for a start with the server gone (docs/node-control.md,
//! "Starting with the server gone"): while the server link is up, what the engine says
//! to keep ([`jamz_sync::Engine::kept_session`]) is written to the cache directory
//! whenever the session, its members, the DJ, the playlist, playback or a peer's address
//! changed (and it differs from what is on disk).

use std::path::PathBuf;

use jamz_sync::kept::KeptIdentity;

/// Where and as whom the session is kept, and what was written last.
pub(crate) struct KeptWriter {
    pub dir: PathBuf,
    pub identity: KeptIdentity,
    /// The last file written, without its time (to write only changes).
    pub last: Option<String>,
    /// Something kept may have changed since.
    pub dirty: bool,
}

impl KeptWriter {
    pub fn changed(&mut self) {
        self.dirty = true;
    }
}

impl super::Runtime {
    /// Writes the kept session when something in it changed, while the server is reachable
    /// (what the mesh says while it is gone is not the server's word).
    pub(super) fn save_kept(&mut self) {
        if !self.kept.dirty || !self.connected {
            return;
        }
        self.kept.dirty = false;
        let Some(mut kept) = self.engine.kept_session(self.kept.identity.clone(), 0.0) else {
            return;
        };
        let Ok(text) = serde_json::to_string(&kept) else {
            return;
        };
        if self.kept.last.as_deref() == Some(text.as_str()) {
            return;
        }
        kept.saved_at_ms = self.clock.now_ms();
        match crate::kept_session::save(&self.kept.dir, &kept) {
            Ok(()) => {
                tracing::debug!(session = kept.session_id, "session kept");
                self.kept.last = Some(text);
            }
            Err(e) => tracing::warn!(error = %e, "the session is not kept"),
        }
    }
}

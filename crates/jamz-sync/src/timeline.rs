//! The shared timeline: "track T is at position P at server instant S, playing or not".
use jamz_proto::Track;
use serde::Serialize;

use crate::api::ServerTime;

/// What every device plays, in server time. The DJ's controls and position syncs set it;
/// each device maps it to its own clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub track: Track,
    pub playing: bool,
    /// Seconds into `track` at `at_server_ms`.
    pub position_s: f64,
    /// Server-clock instant (ms) at which `position_s` is (or was) audible.
    pub at_server_ms: ServerTime,
    /// `true` for an anchor the DJ stated (control or position sync); `false` for the
    /// server's approximate memory (`music-session-state`).
    pub precise: bool,
}

impl Timeline {
    /// Position (s) due at server instant `server_ms`. While playing, before the anchor this
    /// is below `position_s` (the start has not come yet).
    pub fn position_at(&self, server_ms: ServerTime) -> f64 {
        if self.playing {
            self.position_s + (server_ms - self.at_server_ms) / 1000.0
        } else {
            self.position_s
        }
    }

    /// Server instant (ms) at which the track reaches its end, if its duration is known.
    pub fn end_at(&self) -> Option<ServerTime> {
        let d = self.track.duration.filter(|d| d.is_finite() && *d > 0.0)?;
        self.playing
            .then(|| self.at_server_ms + (d - self.position_s).max(0.0) * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_advances_in_real_time_only_while_playing() {
        let mut t = Timeline {
            track: Track::default(),
            playing: true,
            position_s: 10.0,
            at_server_ms: 1_000.0,
            precise: true,
        };
        assert_eq!(t.position_at(3_000.0), 12.0);
        assert_eq!(t.position_at(500.0), 9.5);
        t.playing = false;
        assert_eq!(t.position_at(3_000.0), 10.0);
    }
}

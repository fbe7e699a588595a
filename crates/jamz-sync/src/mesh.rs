//! The engine's side of the peer mesh (docs/protocol.md, "Peer mesh"): which peers' links
//! are open (who may steer over them is [`crate::trust`]'s), and the memory that lets a control arriving over
//! both the socket and the mesh be applied once.
//!
//! The mesh adapter (jamz-mesh, driven by the node) de-duplicates by `(from, sequence)`;
//! that cannot match a socket relay, which carries no sequence. The DJ sends the *same*
//! control (action, track, position, timestamp) over both, so the engine recognises the
//! second copy by its content ([`RecentControls`]).
use std::collections::{BTreeMap, VecDeque};

use jamz_proto::UserId;
use jamz_proto::events::ControlAction;

/// The peers whose mesh link is open, each with its last measured round trip (ms).
#[derive(Debug, Clone, Default)]
pub(crate) struct Peers {
    up: BTreeMap<UserId, Option<f64>>,
}

impl Peers {
    pub fn up(&mut self, user: UserId, rtt_ms: Option<f64>) {
        let rtt = rtt_ms.filter(|r| r.is_finite() && *r >= 0.0);
        let entry = self.up.entry(user).or_default();
        if rtt.is_some() {
            *entry = rtt;
        }
    }

    pub fn down(&mut self, user: UserId) {
        self.up.remove(&user);
    }

    pub fn is_up(&self, user: UserId) -> bool {
        self.up.contains_key(&user)
    }

    /// The peers whose link is open, in user id order.
    pub fn users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.up.keys().copied()
    }

    pub fn count(&self) -> usize {
        self.up.len()
    }

    pub fn any(&self) -> bool {
        !self.up.is_empty()
    }
}

/// How many applied controls are remembered to recognise their second copy. The link
/// replays what the DJ sent while the server was away (up to its queue of 256) once the
/// server is back; those come after their mesh copies and must match.
const RECENT_CONTROLS: usize = 512;

/// The controls applied lately, by content.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecentControls {
    keys: VecDeque<ControlKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ControlKey {
    action: ControlAction,
    track: u64,
    position: u64,
    timestamp: u64,
}

impl RecentControls {
    /// Records a control; `false` if the same one was applied before.
    pub fn first_time(
        &mut self,
        action: ControlAction,
        track: &str,
        position: f64,
        timestamp: f64,
    ) -> bool {
        let key = ControlKey {
            action,
            track: fnv1a(track.as_bytes()),
            position: position.to_bits(),
            timestamp: timestamp.to_bits(),
        };
        if self.keys.contains(&key) {
            return false;
        }
        if self.keys.len() >= RECENT_CONTROLS {
            self.keys.pop_front();
        }
        self.keys.push_back(key);
        true
    }
}

/// How many signals carried over the mesh are remembered to drop their other copies.
const SIGNALS_KEPT: usize = 512;

/// The signals carried over the mesh lately, by `(from, sequence)` and content: a copy
/// over another path is dropped. By content too, not the sequence window alone: a member's
/// signals relayed by others cannot be checked, so a forged far-ahead sequence in its
/// name must not make its real ones look old (docs/mesh-trust.md).
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenSignals {
    keys: VecDeque<(UserId, u64, u64)>,
}

impl SeenSignals {
    /// Records a signal; `false` if the same one came before.
    pub fn first_time(&mut self, from: UserId, sequence: u64, data: &serde_json::Value) -> bool {
        let key = (from, sequence, fnv1a(data.to_string().as_bytes()));
        if self.keys.contains(&key) {
            return false;
        }
        if self.keys.len() >= SIGNALS_KEPT {
            self.keys.pop_front();
        }
        self.keys.push_back(key);
        true
    }
}

/// FNV-1a (64 bits): a stable hash for track ids and the `state-hello` playlist hash
/// (not a security measure).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_copy_of_a_control_is_recognised() {
        let mut r = RecentControls::default();
        assert!(r.first_time(ControlAction::Pause, "t", 1.5, 1000.0));
        assert!(!r.first_time(ControlAction::Pause, "t", 1.5, 1000.0));
        assert!(r.first_time(ControlAction::Pause, "t", 1.5, 1000.5));
        assert!(r.first_time(ControlAction::Seek, "t", 1.5, 1000.0));
        for i in 0..RECENT_CONTROLS {
            r.first_time(ControlAction::Play, "u", 0.0, i as f64);
        }
        assert!(
            r.first_time(ControlAction::Pause, "t", 1.5, 1000.0),
            "forgotten past the window"
        );
    }
}

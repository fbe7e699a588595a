//! Mesh messages: docs/protocol.md's envelope `{type, action?, data, sequence, from, epoch?, sig?}`
//! as JSON text on `music-control`, with the rules every receiver applies alike: over 64 KiB
//! is refused, a `(from, sequence)` seen before is dropped (a message may arrive over the
//! socket and over the mesh, or over two mesh paths), a type this version does not know is
//! ignored. Decoding never panics, whatever the bytes.

use jamz_proto::UserId;
use jamz_proto::events::ControlAction;
use jamz_proto::mesh::{MeshEnvelope, MeshPayload, SeenSequences};

pub use jamz_proto::mesh::MAX_MESSAGE_BYTES;

pub use jamz_proto::mesh::{DEDUP_WINDOW, MAX_SENDERS};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MessageError {
    #[error("a mesh message of {0} bytes is over the 64 KiB limit")]
    TooLarge(usize),
    #[error("not a mesh message: {0}")]
    Malformed(String),
}

/// Encodes an envelope as the JSON text sent on the channel.
pub fn encode(envelope: &MeshEnvelope) -> Result<String, MessageError> {
    let text =
        serde_json::to_string(envelope).map_err(|e| MessageError::Malformed(e.to_string()))?;
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(text.len()));
    }
    Ok(text)
}

/// Decodes channel bytes into an envelope (the size is checked before parsing).
pub fn decode(bytes: &[u8]) -> Result<MeshEnvelope, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge(bytes.len()));
    }
    jamz_proto::decode_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))
}

/// The local member's side: stamps each message with the next sequence number.
#[derive(Debug, Clone)]
pub struct Outgoing {
    from: UserId,
    next: u64,
}

impl Outgoing {
    /// `first` should grow across restarts of the same member (the Unix time in ms at start
    /// does), or peers that remember its earlier run would drop its new messages as seen.
    pub fn new(from: UserId, first: u64) -> Self {
        Self { from, next: first }
    }

    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// A new envelope with the next sequence number.
    pub fn envelope(
        &mut self,
        kind: &str,
        action: Option<ControlAction>,
        data: serde_json::Value,
        epoch: Option<u64>,
    ) -> MeshEnvelope {
        let sequence = self.next;
        self.next = self.next.saturating_add(1);
        MeshEnvelope {
            kind: kind.to_owned(),
            action,
            data,
            sequence,
            from: self.from,
            epoch,
            sig: None,
            ttl: None,
        }
    }

    /// [`Outgoing::envelope`], encoded; a message over 64 KiB is refused and uses no number.
    pub fn encode(
        &mut self,
        kind: &str,
        action: Option<ControlAction>,
        data: serde_json::Value,
        epoch: Option<u64>,
    ) -> Result<String, MessageError> {
        let before = self.next;
        let envelope = self.envelope(kind, action, data, epoch);
        encode(&envelope).inspect_err(|_| self.next = before)
    }
}

/// What a receiver makes of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// New: hand it to the engine.
    Message(Box<MeshEnvelope>, MeshPayload),
    /// This `(from, sequence)` was seen before (or is older than the window).
    Duplicate { from: UserId, sequence: u64 },
    /// A type this version does not understand.
    Ignored { kind: String },
}

/// The receiving side: de-duplicates by `(from, sequence)` across every transport.
#[derive(Debug, Default)]
pub struct Receiver {
    seen: SeenSequences,
}

impl Receiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes and judges one message, whichever transport it came over.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, MessageError> {
        let envelope = decode(bytes)?;
        let payload = envelope
            .payload()
            .map_err(|e| MessageError::Malformed(e.to_string()))?;
        if !self.accept(envelope.from, envelope.sequence) {
            return Ok(Received::Duplicate {
                from: envelope.from,
                sequence: envelope.sequence,
            });
        }
        Ok(match payload {
            MeshPayload::Unknown => Received::Ignored {
                kind: envelope.kind,
            },
            payload => Received::Message(Box::new(envelope), payload),
        })
    }

    /// Records `(from, sequence)`; false if it was seen before (or is older than the window).
    pub fn accept(&mut self, from: UserId, sequence: u64) -> bool {
        self.seen.accept(from, sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamz_proto::mesh::kinds;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_control_message_round_trips_with_a_growing_sequence() {
        let mut out = Outgoing::new(7, 100);
        let data = json!({"position": 12.5, "trackId": "t1", "timestamp": 1.7e12, "from": 7});
        let a = out
            .encode(
                kinds::MUSIC_CONTROL,
                Some(ControlAction::Pause),
                data.clone(),
                Some(3),
            )
            .unwrap();
        let b = out
            .encode(
                kinds::MUSIC_CONTROL,
                Some(ControlAction::Play),
                data,
                Some(3),
            )
            .unwrap();
        let mut rx = Receiver::new();
        let Received::Message(env, MeshPayload::MusicControl(action, control)) =
            rx.receive(a.as_bytes()).unwrap()
        else {
            panic!("not a control message");
        };
        assert_eq!((env.from, env.sequence, env.epoch), (7, 100, Some(3)));
        assert_eq!(action, ControlAction::Pause);
        assert_eq!(control.position, 12.5);
        let Received::Message(env, _) = rx.receive(b.as_bytes()).unwrap() else {
            panic!("second message not accepted");
        };
        assert_eq!(env.sequence, 101);
    }

    #[test]
    fn the_same_message_twice_is_a_duplicate() {
        let mut out = Outgoing::new(1, 0);
        let text = out
            .encode(
                kinds::POSITION_SYNC,
                None,
                json!({"position": 1.0, "timestamp": 5.0}),
                None,
            )
            .unwrap();
        let mut rx = Receiver::new();
        assert!(matches!(
            rx.receive(text.as_bytes()),
            Ok(Received::Message(..))
        ));
        assert_eq!(
            rx.receive(text.as_bytes()),
            Ok(Received::Duplicate {
                from: 1,
                sequence: 0
            })
        );
    }

    #[test]
    fn late_copies_inside_the_window_are_accepted_once_and_older_ones_dropped() {
        let mut rx = Receiver::new();
        assert!(rx.accept(1, 10));
        assert!(rx.accept(1, 12));
        assert!(rx.accept(1, 11), "a gap filled late is new");
        assert!(!rx.accept(1, 11));
        assert!(rx.accept(1, 10 + DEDUP_WINDOW + 5));
        assert!(!rx.accept(1, 12), "older than the window");
        assert!(rx.accept(2, 11), "sequences are per sender");
    }

    #[test]
    fn over_64_kib_is_refused_both_ways() {
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        let mut out = Outgoing::new(1, 5);
        let err = out
            .encode(
                kinds::PLAYLIST_UPDATE,
                None,
                json!({"playlist": [], "pad": big}),
                None,
            )
            .unwrap_err();
        assert!(matches!(err, MessageError::TooLarge(n) if n > MAX_MESSAGE_BYTES));
        assert_eq!(out.next_sequence(), 5, "a refused message uses no number");
        let mut rx = Receiver::new();
        let bytes = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            rx.receive(&bytes),
            Err(MessageError::TooLarge(MAX_MESSAGE_BYTES + 1))
        );
        assert!(err.to_string().contains("64 KiB"));
    }

    #[test]
    fn unknown_types_are_ignored_and_bad_data_is_an_error() {
        let mut rx = Receiver::new();
        let unknown = br#"{"type":"future-thing","data":{"x":1},"sequence":1,"from":4}"#;
        assert_eq!(
            rx.receive(unknown),
            Ok(Received::Ignored {
                kind: "future-thing".into()
            })
        );
        let bad = br#"{"type":"position-sync","data":{"position":"no"},"sequence":2,"from":4}"#;
        assert!(matches!(rx.receive(bad), Err(MessageError::Malformed(_))));
        let no_action = br#"{"type":"music-control","data":{"timestamp":1},"sequence":3,"from":4}"#;
        assert!(matches!(
            rx.receive(no_action),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            rx.receive(b"{\"type\":"),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn a_flood_of_senders_is_bounded() {
        let mut rx = Receiver::new();
        for from in 0..(MAX_SENDERS as i64 * 3) {
            assert!(rx.accept(from, 1));
        }
        assert_eq!(rx.seen.senders(), MAX_SENDERS);
    }

    proptest! {
        #![proptest_config(jamz_proto::test_support::proptest_config(256))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Receiver::new().receive(&bytes);
        }

        #[test]
        fn arbitrary_envelopes_never_panic(
            kind in "[a-z-]{0,20}",
            seq in any::<u64>(),
            from in any::<i64>(),
            data in "[ -~]{0,64}",
        ) {
            let text = format!(
                r#"{{"type":"{kind}","action":"pause","data":{data:?},"sequence":{seq},"from":{from}}}"#
            );
            let _ = Receiver::new().receive(text.as_bytes());
        }

        /// Whatever the arrival order and repetition, each sequence is accepted at most once,
        /// and every sequence within the window of the highest is accepted exactly once.
        #[test]
        fn each_sequence_is_accepted_at_most_once(
            seqs in proptest::collection::vec(0u64..3000, 1..400),
        ) {
            let mut rx = Receiver::new();
            let mut accepted = std::collections::HashSet::new();
            let mut highest = 0;
            for s in &seqs {
                highest = highest.max(*s);
                if rx.accept(9, *s) {
                    prop_assert!(accepted.insert(*s), "sequence {} accepted twice", s);
                } else {
                    prop_assert!(
                        accepted.contains(s) || highest - s >= DEDUP_WINDOW,
                        "sequence {} refused though new and inside the window", s
                    );
                }
            }
        }
    }
}

//! **(ext)** Mesh messages sent straight over UDP to a peer's mesh socket, with no
//! DataChannel (docs/protocol.md, "Rejoining without the server"): how a node restarted
//! while the server is gone asks a peer it kept the address of for a link (`mesh-rejoin`)
//! and exchanges that link's `webrtc-signal`s with it. One datagram is [`MAGIC`] and the
//! envelope's JSON text. The first byte, `J` (74), is none of the ranges RFC 7983 gives
//! STUN (0-3), DTLS (20-63) or RTP (128-191), so the owner tells them apart before
//! handing datagrams to [`crate::Mesh`].

use jamz_proto::mesh::{MeshEnvelope, kinds};

use crate::message::MessageError;

/// The first bytes of a direct datagram.
pub const MAGIC: &[u8] = b"JZM1";

/// The largest direct datagram: one UDP datagram of IPv4 (an offer is about 1 KB).
pub const MAX_DIRECT_BYTES: usize = 65_507;

/// Whether a datagram is a direct one (else it is the links').
pub fn is_direct(datagram: &[u8]) -> bool {
    datagram.starts_with(MAGIC)
}

/// The datagram for `envelope`. Only `mesh-rejoin` and `webrtc-signal` go this way.
pub fn encode(envelope: &MeshEnvelope) -> Result<Vec<u8>, MessageError> {
    if !matches!(
        envelope.kind.as_str(),
        kinds::MESH_REJOIN | kinds::WEBRTC_SIGNAL
    ) {
        return Err(MessageError::Malformed(format!(
            "a `{}` is not sent directly",
            envelope.kind
        )));
    }
    let text = crate::message::encode(envelope)?;
    let mut out = Vec::with_capacity(MAGIC.len() + text.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(text.as_bytes());
    if out.len() > MAX_DIRECT_BYTES {
        return Err(MessageError::TooLarge(out.len()));
    }
    Ok(out)
}

/// The envelope of a direct datagram: refused when it lacks the magic, is not JSON of an
/// envelope, is over the limits, or is of another type than the two that go this way.
pub fn decode(datagram: &[u8]) -> Result<MeshEnvelope, MessageError> {
    let body = datagram
        .strip_prefix(MAGIC)
        .ok_or_else(|| MessageError::Malformed("not a direct mesh datagram".into()))?;
    let envelope = crate::message::decode(body)?;
    if !matches!(
        envelope.kind.as_str(),
        kinds::MESH_REJOIN | kinds::WEBRTC_SIGNAL
    ) {
        return Err(MessageError::Malformed(format!(
            "a `{}` may not come directly",
            envelope.kind
        )));
    }
    Ok(envelope)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rejoin() -> MeshEnvelope {
        MeshEnvelope {
            kind: kinds::MESH_REJOIN.into(),
            action: None,
            data: serde_json::json!({"sessionId":"s","from":3,"to":1}),
            sequence: 7,
            from: 3,
            epoch: None,
            sig: None,
            ttl: None,
        }
    }

    #[test]
    fn a_rejoin_goes_and_comes_back_the_same() {
        let bytes = encode(&rejoin()).unwrap();
        assert!(is_direct(&bytes));
        assert_eq!(decode(&bytes).unwrap(), rejoin());
    }

    #[test]
    fn garbage_truncation_and_other_types_are_refused() {
        let bytes = encode(&rejoin()).unwrap();
        for cut in [0, 2, MAGIC.len(), bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(b"JZM1\xff\xfe{").is_err());
        let mut control = rejoin();
        control.kind = kinds::MUSIC_CONTROL.into();
        assert!(encode(&control).is_err());
        let text = serde_json::to_string(&control).unwrap();
        assert!(decode(&[MAGIC, text.as_bytes()].concat()).is_err());
        // A STUN binding request's first byte is never taken for ours.
        assert!(!is_direct(&[0x00, 0x01, 0x00, 0x00]));
    }
}

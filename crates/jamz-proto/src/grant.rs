//! **(ext)** Controller grants and signed mesh messages (docs/protocol.md, "Controller
//! grants"): the wire types, and the exact bytes each signature covers. The signing and
//! the checks live elsewhere (`jamz-server` signs grants, `jamz_sync::trust` verifies
//! them and signs/verifies relayed envelopes); this module only says what is signed, so
//! both sides agree byte for byte.
use serde::{Deserialize, Serialize};

use crate::mesh::MeshEnvelope;
use crate::model::UserId;

/// The signature scheme of grants and relayed mesh messages.
pub const ALGORITHM: &str = "Ed25519";
/// What the grant signature covers starts with this line.
pub const GRANT_DOMAIN: &str = "jamz-controller-grant-v1";
/// What an envelope signature covers starts with this line.
pub const ENVELOPE_DOMAIN: &str = "jamz-mesh-envelope-v1";

/// The server's statement "user `user_id` is the DJ of session `session_id` from control
/// change `epoch` on, and device key `device_key` speaks for it until `expires_at`".
/// Public keys and signatures are lower-case hex (32 and 64 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerGrant {
    #[serde(rename = "sessionId", alias = "session_id")]
    pub session_id: String,
    #[serde(rename = "userId", alias = "user_id")]
    pub user_id: UserId,
    /// Grows by one at every change of control in the session (never reused).
    pub epoch: u64,
    /// The DJ device's Ed25519 public key; `None` when the DJ's client presented none
    /// (a web app): then no relayed message can be accepted from it.
    #[serde(rename = "deviceKey", alias = "device_key", default)]
    pub device_key: Option<String>,
    /// Server clock, whole milliseconds since the Unix epoch.
    #[serde(rename = "issuedAt", alias = "issued_at")]
    pub issued_at: u64,
    #[serde(rename = "expiresAt", alias = "expires_at")]
    pub expires_at: u64,
    /// The server's signature over [`ControllerGrant::signing_bytes`].
    pub sig: String,
}

/// Why some bytes cannot be made canonical (so nothing can be signed or verified).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("field {0} contains a line break")]
    LineBreak(&'static str),
    #[error("envelope does not encode: {0}")]
    Encode(String),
}

impl ControllerGrant {
    /// The bytes the server signs: seven lines joined by `\n` (no trailing one):
    /// [`GRANT_DOMAIN`], session id, user id, epoch, device key (or `-`), issued at,
    /// expires at; numbers in decimal without sign or leading zeros.
    pub fn signing_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        let key = self.device_key.as_deref().unwrap_or("-");
        for (name, value) in [("sessionId", self.session_id.as_str()), ("deviceKey", key)] {
            if value.contains(['\n', '\r']) {
                return Err(CanonicalError::LineBreak(name));
            }
        }
        Ok(format!(
            "{GRANT_DOMAIN}\n{}\n{}\n{}\n{key}\n{}\n{}",
            self.session_id, self.user_id, self.epoch, self.issued_at, self.expires_at
        )
        .into_bytes())
    }
}

/// The bytes a DJ device signs for a mesh message of session `session_id`:
/// [`ENVELOPE_DOMAIN`], `\n`, the session id, `\n`, then the envelope without `sig` (and
/// without `ttl`, which relays lower) as canonical JSON (see [`canonical_json`]).
pub fn envelope_signing_bytes(
    session_id: &str,
    envelope: &MeshEnvelope,
) -> Result<Vec<u8>, CanonicalError> {
    if session_id.contains(['\n', '\r']) {
        return Err(CanonicalError::LineBreak("sessionId"));
    }
    let mut unsigned = envelope.clone();
    unsigned.sig = None;
    // The relay budget is lowered by each relay: not the sender's to vouch for.
    unsigned.ttl = None;
    let value =
        serde_json::to_value(&unsigned).map_err(|e| CanonicalError::Encode(e.to_string()))?;
    let mut out = format!("{ENVELOPE_DOMAIN}\n{session_id}\n").into_bytes();
    canonical_json(&value, &mut out)?;
    Ok(out)
}

/// Canonical JSON: no whitespace; object members sorted by the UTF-8 bytes of their
/// keys; strings and numbers exactly as `serde_json` writes them (integers in decimal,
/// other numbers as their shortest round-trip form); absent optional fields left out,
/// `null` written where a value is null. A receiver re-parses what arrived and writes it
/// again this way, so the signature does not depend on how a relay spaced or ordered it.
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    use serde_json::Value;
    let enc = |e: serde_json::Error| CanonicalError::Encode(e.to_string());
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(enc)?;
                out.push(b':');
                canonical_json(v, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(v, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).map_err(enc)?,
    }
    Ok(())
}

/// `GET /api/mesh/grant-key` **(ext)**: the key grants are signed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantKey {
    /// Always [`ALGORITHM`].
    pub algorithm: String,
    /// The server's Ed25519 public key, lower-case hex (32 bytes).
    #[serde(rename = "publicKey", alias = "public_key")]
    pub public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::kinds;
    use serde_json::json;

    fn grant() -> ControllerGrant {
        ControllerGrant {
            session_id: "5b0c7e0e-1b2f-4c1e-9a51-3b7c1d2e4f60".into(),
            user_id: 7,
            epoch: 3,
            device_key: Some("ab".repeat(32)),
            issued_at: 1_700_000_000_000,
            expires_at: 1_700_043_200_000,
            sig: "00".into(),
        }
    }

    #[test]
    fn grant_bytes_are_the_documented_lines() {
        let bytes = grant().signing_bytes().unwrap();
        let expected = format!(
            "jamz-controller-grant-v1\n5b0c7e0e-1b2f-4c1e-9a51-3b7c1d2e4f60\n7\n3\n{}\n1700000000000\n1700043200000",
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        let keyless = ControllerGrant {
            device_key: None,
            ..grant()
        };
        assert!(
            String::from_utf8(keyless.signing_bytes().unwrap())
                .unwrap()
                .contains("\n3\n-\n")
        );
        let bad = ControllerGrant {
            session_id: "a\nb".into(),
            ..grant()
        };
        assert_eq!(
            bad.signing_bytes(),
            Err(CanonicalError::LineBreak("sessionId"))
        );
    }

    #[test]
    fn grant_wire_form_round_trips_in_both_spellings() {
        let text = serde_json::to_string(&grant()).unwrap();
        assert!(text.contains("\"deviceKey\"") && text.contains("\"expiresAt\""));
        assert_eq!(
            serde_json::from_str::<ControllerGrant>(&text).unwrap(),
            grant()
        );
        let snake = json!({"session_id": "s", "user_id": 1, "epoch": 2, "device_key": null,
            "issued_at": 3, "expires_at": 4, "sig": "x", "future": true});
        let g: ControllerGrant = serde_json::from_value(snake).unwrap();
        assert_eq!((g.user_id, g.epoch, g.device_key), (1, 2, None));
    }

    #[test]
    fn envelope_bytes_ignore_spacing_order_sig_and_ttl() {
        let a: MeshEnvelope = serde_json::from_str(
            r#"{"type":"music-control","action":"pause","data":{"timestamp":5.5,"position":1.25,"from":7},"sequence":9,"from":7,"epoch":3,"sig":"ff","ttl":2}"#,
        )
        .unwrap();
        let b: MeshEnvelope = serde_json::from_str(
            r#"{ "from": 7, "epoch": 3, "sequence": 9, "data": { "from": 7, "position": 1.25, "timestamp": 5.5 },
                "action": "pause", "type": "music-control" }"#,
        )
        .unwrap();
        let bytes = envelope_signing_bytes("s1", &a).unwrap();
        assert_eq!(bytes, envelope_signing_bytes("s1", &b).unwrap());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "jamz-mesh-envelope-v1\ns1\n{\"action\":\"pause\",\"data\":{\"from\":7,\"position\":1.25,\"timestamp\":5.5},\"epoch\":3,\"from\":7,\"sequence\":9,\"type\":\"music-control\"}"
        );
        assert_ne!(
            envelope_signing_bytes("s2", &a).unwrap(),
            envelope_signing_bytes("s1", &a).unwrap(),
            "the session is signed too"
        );
        let position_sync = MeshEnvelope {
            kind: kinds::POSITION_SYNC.into(),
            action: None,
            data: json!({"position": 2.0, "timestamp": 1, "s": "é\"\n"}),
            sequence: 1,
            from: 2,
            epoch: None,
            sig: None,
            ttl: None,
        };
        let text = String::from_utf8(envelope_signing_bytes("s", &position_sync).unwrap()).unwrap();
        assert!(
            text.ends_with(
                r#"{"data":{"position":2.0,"s":"é\"\n","timestamp":1},"from":2,"sequence":1,"type":"position-sync"}"#
            ),
            "{text}"
        );
    }
}

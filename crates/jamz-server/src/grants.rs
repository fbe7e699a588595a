//! **(ext)** Controller grants (docs/protocol.md, "Controller grants"): the server's
//! Ed25519 key, kept in its data directory, and the grants it signs with it, which let
//! peers check a DJ's relayed mesh messages while the server is gone.
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use jamz_proto::UserId;
use jamz_proto::grant::ControllerGrant;

use crate::fsperm;

/// How long a grant is good for. It must outlast a server outage (the mesh carries the
/// session meanwhile) yet end on its own: half a day covers a day's drive, and every
/// join answers with a fresh one (a client refreshes by joining again).
pub const GRANT_LIFETIME_MS: u64 = 12 * 3600 * 1000;

/// The key file beside the database: the 32-byte seed, hex.
const KEY_FILE: &str = "mesh-grant-key";

pub struct GrantSigner {
    key: SigningKey,
}

impl GrantSigner {
    /// The key kept in `data_dir`, created (0600) on first start.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        fsperm::create_private_dir(data_dir)?;
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut seed = [0u8; 32];
                return match hex::decode_to_slice(text.trim(), &mut seed) {
                    Ok(()) => Ok(Self::from_seed(seed)),
                    // Replacing it would silently invalidate every grant peers hold and
                    // every public key they fetched: the operator decides.
                    Err(e) => Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} is not a 32-byte hex seed ({e}); remove it to make a new key",
                            path.display()
                        ),
                    )),
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let seed: [u8; 32] = rand::random();
        let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
        {
            use std::io::Write;
            let mut f = fsperm::private_file()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(hex::encode(seed).as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        tracing::info!(path = %path.display(), "created the controller-grant signing key");
        Ok(Self::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key, lower-case hex, as `GET /api/mesh/grant-key` serves it.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// A grant for `user` as DJ of `session_id` at `epoch`, valid from `now_ms` for
    /// [`GRANT_LIFETIME_MS`]. `None` only for a session id that cannot be signed (a line
    /// break; ours are UUIDs).
    pub fn grant(
        &self,
        session_id: &str,
        user: UserId,
        epoch: u64,
        device_key: Option<&str>,
        now_ms: u64,
    ) -> Option<ControllerGrant> {
        let mut grant = ControllerGrant {
            session_id: session_id.to_owned(),
            user_id: user,
            epoch,
            device_key: device_key.map(str::to_owned),
            issued_at: now_ms,
            expires_at: now_ms.saturating_add(GRANT_LIFETIME_MS),
            sig: String::new(),
        };
        let bytes = grant
            .signing_bytes()
            .inspect_err(|e| tracing::error!(session = session_id, error = %e, "grant not signed"))
            .ok()?;
        grant.sig = hex::encode(self.key.sign(&bytes).to_bytes());
        Some(grant)
    }
}

/// A device key as a client presents it: 64 hex digits naming a valid Ed25519 point,
/// returned lower-case; anything else is `None`.
pub fn parse_device_key(text: &str) -> Option<String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    VerifyingKey::from_bytes(&bytes).ok()?;
    Some(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier};

    #[test]
    fn the_key_is_created_private_once_and_grants_verify_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = GrantSigner::load_or_create(dir.path()).unwrap();
        let again = GrantSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key_hex(), again.public_key_hex());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let device = hex::encode([9u8; 32]);
        let g = first.grant("s-1", 4, 2, Some(&device), 1000).unwrap();
        assert_eq!(g.expires_at, 1000 + GRANT_LIFETIME_MS);
        let mut public = [0u8; 32];
        hex::decode_to_slice(first.public_key_hex(), &mut public).unwrap();
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&g.sig, &mut sig).unwrap();
        VerifyingKey::from_bytes(&public)
            .unwrap()
            .verify(&g.signing_bytes().unwrap(), &Signature::from_bytes(&sig))
            .unwrap();
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not hex").unwrap();
        let err = GrantSigner::load_or_create(dir.path()).err().unwrap();
        assert!(err.to_string().contains("remove it"), "{err}");
    }

    #[test]
    fn device_keys_must_be_32_byte_hex_points() {
        let good = hex::encode(
            GrantSigner::from_seed([1; 32])
                .key
                .verifying_key()
                .as_bytes(),
        );
        assert_eq!(parse_device_key(&good.to_uppercase()), Some(good));
        assert_eq!(parse_device_key("abcd"), None);
        assert_eq!(parse_device_key(&"zz".repeat(32)), None);
    }
}

//! Whom the link trusts over https/wss: the platform's verifier (the OS trust store, as a
//! browser on that machine would), plus the certificate authorities the user added for a
//! self-hosted server with its own CA (`--ca-cert`, the app's setting). One set for the
//! whole process, like the OS store it extends: REST and the websocket agree on it.
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::LinkError;

static EXTRA_ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// Trusts the certificate authorities in `path` (PEM) from now on, beside the platform's.
/// Returns how many certificates the file held. Call it before the first client is made;
/// it can be called once per process (a second call is an error naming the first file's
/// count).
pub fn trust_ca_file(path: &Path) -> Result<usize, LinkError> {
    let bad = |reason: String| LinkError::Tls {
        reason: format!("CA file {}: {reason}", path.display()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    let n = certs.len();
    EXTRA_ROOTS
        .set(certs)
        .map_err(|_| bad("a CA file is already trusted in this process".into()))?;
    Ok(n)
}

/// The added authorities (none unless [`trust_ca_file`] was called).
pub(crate) fn extra_roots() -> &'static [CertificateDer<'static>] {
    EXTRA_ROOTS.get().map_or(&[], Vec::as_slice)
}

/// The added authorities in DER, for another HTTP client of this process (the cache's).
pub fn extra_roots_der() -> Vec<Vec<u8>> {
    extra_roots().iter().map(|c| c.as_ref().to_vec()).collect()
}

/// The rustls configuration of a wss:// connection: the platform's verifier with the
/// added authorities (the same verifier reqwest uses for https).
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, LinkError> {
    let tls = |e: rustls::Error| LinkError::Tls {
        reason: e.to_string(),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots().iter().cloned(),
        provider.clone(),
    )
    .map_err(tls)?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The added authorities for reqwest.
pub(crate) fn reqwest_roots() -> Result<Vec<reqwest::Certificate>, LinkError> {
    extra_roots()
        .iter()
        .map(|c| {
            reqwest::Certificate::from_der(c).map_err(|e| LinkError::Tls {
                reason: format!("added CA: {e}"),
            })
        })
        .collect()
}

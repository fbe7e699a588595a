//! The ICE servers of the settings, one string each (docs/node-control.md, `--ice-server`):
//! `stun:host[:port]` (RFC 7064) for a server-reflexive address, and
//! `turn:user:credential@host[:port][?transport=udp]` for a relay. RFC 7065's TURN URI has no
//! user part: a browser's `RTCIceServer` carries the username and credential beside the URL.
//! A setting that is one string per server carries them inline, percent-encoded where they
//! hold `:` or `@` (GStreamer's `turn://user:password@host` is the same idea).

use std::str::FromStr;

/// The STUN and TURN port when a URL names none (RFC 8489 §18.6, RFC 8656 §18.3).
pub const DEFAULT_STUN_PORT: u16 = 3478;

/// A STUN server from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunUrl {
    pub host: String,
    pub port: u16,
}

/// A TURN server from the settings, reached over UDP with its long-term credential
/// (RFC 8489 §9.2). Its `Debug` and `Display` never show the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnUrl {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub credential: String,
}

/// One ICE server of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceServer {
    Stun(StunUrl),
    Turn(TurnUrl),
}

/// Why an ICE server URL of the settings is refused. A TURN URL is shown with its
/// credential left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceUrlError {
    #[error(
        "{0:?} is not an ICE server URL (stun:host[:port] or turn:user:credential@host[:port])"
    )]
    Malformed(String),
    #[error("{0:?}: TURN over TLS (turns:) is not supported; give turn:user:credential@host")]
    TurnTls(String),
    #[error("{0:?}: only UDP to the TURN server is supported (?transport=udp or none)")]
    TurnTransport(String),
    #[error("{0:?}: a TURN server needs a username and credential: turn:user:credential@host")]
    TurnCredentials(String),
    #[error("{0:?}: a STUN server takes no credentials")]
    StunCredentials(String),
}

impl FromStr for IceServer {
    type Err = IceUrlError;
    fn from_str(s: &str) -> Result<Self, IceUrlError> {
        let s = s.trim();
        let shown = redacted(s);
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| IceUrlError::Malformed(shown.clone()))?;
        match scheme.to_ascii_lowercase().as_str() {
            "stun" => {
                if rest.contains('@') {
                    return Err(IceUrlError::StunCredentials(shown));
                }
                let (host, port) =
                    host_port(rest).ok_or_else(|| IceUrlError::Malformed(shown.clone()))?;
                Ok(IceServer::Stun(StunUrl { host, port }))
            }
            "turns" => Err(IceUrlError::TurnTls(shown)),
            "turn" => {
                let (rest, query) = match rest.split_once('?') {
                    Some((r, q)) => (r, Some(q)),
                    None => (rest, None),
                };
                if let Some(q) = query
                    && !q.eq_ignore_ascii_case("transport=udp")
                {
                    return Err(IceUrlError::TurnTransport(shown));
                }
                let Some((userinfo, address)) = rest.rsplit_once('@') else {
                    return Err(IceUrlError::TurnCredentials(shown));
                };
                let (user, credential) = userinfo
                    .split_once(':')
                    .ok_or_else(|| IceUrlError::TurnCredentials(shown.clone()))?;
                let (username, credential) =
                    match (percent_decoded(user), percent_decoded(credential)) {
                        (Some(u), Some(c)) if !u.is_empty() && !c.is_empty() => (u, c),
                        _ => return Err(IceUrlError::TurnCredentials(shown)),
                    };
                let (host, port) =
                    host_port(address).ok_or_else(|| IceUrlError::Malformed(shown.clone()))?;
                Ok(IceServer::Turn(TurnUrl {
                    host,
                    port,
                    username,
                    credential,
                }))
            }
            _ => Err(IceUrlError::Malformed(shown)),
        }
    }
}

impl FromStr for StunUrl {
    type Err = IceUrlError;
    fn from_str(s: &str) -> Result<Self, IceUrlError> {
        match s.parse::<IceServer>()? {
            IceServer::Stun(url) => Ok(url),
            IceServer::Turn(_) => Err(IceUrlError::Malformed(redacted(s.trim()))),
        }
    }
}

/// `[v6]:port`, `[v6]`, `host:port` or `host`; no path, query or user part.
fn host_port(rest: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let bad_host = host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@' | '[' | ']'));
    if bad_host {
        return None;
    }
    let port = match port {
        None => DEFAULT_STUN_PORT,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p > 0)?
        }
        Some(_) => return None,
    };
    Some((host.to_owned(), port))
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL as it may be shown: a user part's credential left out.
fn redacted(s: &str) -> String {
    match (s.split_once(':'), s.rsplit_once('@')) {
        (Some((scheme, _)), Some((userinfo, address))) => {
            let user = userinfo
                .get(scheme.len() + 1..)
                .and_then(|u| u.split(':').next())
                .unwrap_or("");
            format!("{scheme}:{user}:…@{address}")
        }
        _ => s.to_owned(),
    }
}

fn fmt_host(f: &mut std::fmt::Formatter<'_>, host: &str, port: u16) -> std::fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]:{port}")
    } else {
        write!(f, "{host}:{port}")
    }
}

impl std::fmt::Display for StunUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stun:")?;
        fmt_host(f, &self.host, self.port)
    }
}

impl std::fmt::Display for TurnUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "turn:{}@", self.username)?;
        fmt_host(f, &self.host, self.port)
    }
}

impl std::fmt::Debug for TurnUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("credential", &"…")
            .finish()
    }
}

impl std::fmt::Display for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IceServer::Stun(u) => u.fmt(f),
            IceServer::Turn(u) => u.fmt(f),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stun_urls_parse_and_bad_ones_are_refused() {
        let ok = |s: &str, host: &str, port: u16| {
            assert_eq!(
                s.parse::<StunUrl>(),
                Ok(StunUrl {
                    host: host.into(),
                    port
                }),
                "{s}"
            );
        };
        ok("stun:stun.example.org", "stun.example.org", 3478);
        ok("stun:127.0.0.1:19302", "127.0.0.1", 19302);
        ok("STUN:[::1]:5000", "::1", 5000);
        ok("stun:[2001:db8::1]", "2001:db8::1", 3478);
        for bad in [
            "",
            "stun:",
            "stun:host:0",
            "stun:host:99999",
            "stun:host:x",
            "stun:host:+5",
            "stun:host/path",
            "stun:[::1",
            "stun:[::1]x",
            "host:3478",
            "http://host",
        ] {
            assert!(
                matches!(bad.parse::<IceServer>(), Err(IceUrlError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "stun:user@host".parse::<IceServer>(),
            Err(IceUrlError::StunCredentials(_))
        ));
        let shown = "stun:[::1]:5000".parse::<StunUrl>().unwrap().to_string();
        assert_eq!(shown, "stun:[::1]:5000");
    }

    #[test]
    fn turn_urls_carry_their_credentials_which_are_never_shown() {
        let url = "TURN:u%40car:p%3Ass%40w@[::1]:5000?transport=UDP"
            .parse::<IceServer>()
            .unwrap();
        let IceServer::Turn(turn) = &url else {
            panic!("{url:?}")
        };
        assert_eq!(
            (turn.host.as_str(), turn.port, turn.username.as_str()),
            ("::1", 5000, "u@car")
        );
        assert_eq!(turn.credential, "p:ss@w");
        assert_eq!(url.to_string(), "turn:u@car@[::1]:5000");
        assert!(!format!("{url:?}").contains("ss@w"), "{url:?}");
        let plain = "turn:user:secret@relay.example.org"
            .parse::<IceServer>()
            .unwrap();
        assert_eq!(
            plain,
            IceServer::Turn(TurnUrl {
                host: "relay.example.org".into(),
                port: 3478,
                username: "user".into(),
                credential: "secret".into(),
            })
        );
        for (bad, why) in [
            ("turns:user:secret@relay", "TLS"),
            ("turn:user:secret@relay?transport=tcp", "UDP"),
            ("turn:relay.example.org:3478", "credential"),
            ("turn:user@relay", "credential"),
            ("turn::secret@relay", "credential"),
            ("turn:user:@relay", "credential"),
            ("turn:user:secret%zz@relay", "credential"),
            ("turn:user:secret%+F@relay", "credential"),
            ("turn:user:secret@relay:0", "not an ICE server URL"),
            ("turn:user:secret@", "not an ICE server URL"),
        ] {
            let err = bad.parse::<IceServer>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(!err.contains("secret"), "the credential is shown: {err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(jamz_proto::test_support::proptest_config(256))]
        #[test]
        fn never_panics_and_never_shows_a_credential(text in "[a-zA-Z0-9:@%/?=\\[\\]. ]{0,40}") {
            for scheme in ["stun:", "turn:", "turns:", "tunr:"] {
                let url = format!("{scheme}u:SECRET@{text}");
                if let Err(e) = url.parse::<IceServer>() {
                    proptest::prop_assert!(!e.to_string().contains("SECRET"), "{}", e);
                }
            }
        }
    }
}

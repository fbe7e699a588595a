//! A kept session: what a node needs to start with the server gone and rejoin the peer
//! mesh (docs/node-control.md, "Starting with the server gone"). While online the node
//! writes [`KeptSession`] (from [`crate::Engine::kept_session`]) to its data directory;
//! when it starts and the server does not answer, [`KeptSession::read`] decides whether
//! what it kept may be used, and [`crate::api::Input::SessionKept`] puts the engine back
//! in the session, on the mesh tier as soon as a peer's link is open. Pure: no clock, no
//! I/O (the node passes the bytes and the time).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use jamz_proto::grant::ControllerGrant;
use jamz_proto::{Track, UserId};
use serde::{Deserialize, Serialize};

/// The file format's version; a file of another is not used.
pub const KEPT_FORMAT: u32 = 1;

/// A kept session older than this is not used (ms): the controller grant the server signs
/// lasts 12 h, and after that nobody could be obeyed over the mesh anyway.
pub const KEPT_MAX_AGE_MS: f64 = 12.0 * 3600.0 * 1000.0;

/// The largest kept-session file read (a playlist of thousands of tracks stays far below).
pub const KEPT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Who kept the session, where: a kept session is used only by the same user for the same
/// group on the same server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptIdentity {
    /// The server's base URL, as configured.
    pub server: String,
    pub group_id: String,
    pub user_id: UserId,
    pub username: String,
    pub display_name: String,
    /// The login's token, for the link when the server returns (the file is private to
    /// the user, like the saved login).
    pub token: String,
}

/// A member as last listed by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptMember {
    pub user_id: UserId,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The group's timeline as last known: `position` (s) of `track_id` at server instant
/// `at_server_ms`, moving on from there while `playing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptTimeline {
    pub track_id: String,
    pub playing: bool,
    pub position: f64,
    pub at_server_ms: f64,
}

/// Everything kept (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptSession {
    pub format: u32,
    #[serde(flatten)]
    pub identity: KeptIdentity,
    pub session_id: String,
    /// The members the server last listed (this device's user among them or not).
    pub members: Vec<KeptMember>,
    /// The server's DJ, and the grant it signed for it (checked again at use, against the
    /// server's key the node keeps apart: `mesh-grant-key-*.json`).
    pub controller: Option<UserId>,
    #[serde(default)]
    pub grant: Option<ControllerGrant>,
    pub playlist: Vec<Track>,
    #[serde(default)]
    pub timeline: Option<KeptTimeline>,
    /// Where each peer's end of its mesh link was (its mesh socket), to ask it for a link
    /// again with no server.
    #[serde(default)]
    pub peers: BTreeMap<UserId, SocketAddr>,
    /// When it was written (Unix ms, the device's clock).
    pub saved_at_ms: f64,
}

/// Why a kept session is not used (the node says so and starts as without one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeptError {
    #[error("it is {0} bytes, over the {KEPT_MAX_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("it is not a kept session (truncated or damaged?): {0}")]
    Unreadable(String),
    #[error("it is of format {found}, this version reads format {KEPT_FORMAT}")]
    Format { found: u32 },
    #[error("it is for the server {kept}, not {asked}")]
    OtherServer { kept: String, asked: String },
    #[error("it is for the group {kept}, not {asked}")]
    OtherGroup { kept: String, asked: String },
    #[error("it is {kept}'s, not {asked}'s")]
    OtherUser { kept: String, asked: String },
    #[error("it was saved {hours:.1} h ago (a kept session is used for 12 h)")]
    Stale { hours: f64 },
    #[error("it was saved in the future by this device's clock ({seconds:.0} s ahead)")]
    FromTheFuture { seconds: f64 },
    #[error("the DJ's grant in it expired {minutes:.0} min ago: nobody could be obeyed")]
    GrantExpired { minutes: f64 },
    #[error("it lists no session id")]
    NoSession,
}

/// What a kept session must match to be used.
#[derive(Debug, Clone, Copy)]
pub struct KeptCheck<'a> {
    /// The server asked for (`--server`).
    pub server: &'a str,
    pub group_id: &'a str,
    /// The user logging in, when known before the server answers (`--username`, the
    /// saved login's).
    pub username: Option<&'a str>,
    /// Now, Unix ms (the device's clock).
    pub now_ms: f64,
}

/// The clock may step back a little between runs (NTP): a file this much "ahead" is fine.
const FUTURE_SLACK_MS: f64 = 60_000.0;

impl KeptSession {
    /// Decodes a kept-session file and decides whether it may be used now.
    pub fn read(bytes: &[u8], check: &KeptCheck<'_>) -> Result<KeptSession, KeptError> {
        if bytes.len() > KEPT_MAX_BYTES {
            return Err(KeptError::TooLarge(bytes.len()));
        }
        // The format first: a file of another version is named so, not as damaged.
        let version: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| KeptError::Unreadable(e.to_string()))?;
        match version.get("format").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(KEPT_FORMAT) => {}
            Some(v) => {
                return Err(KeptError::Format {
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                });
            }
            None => return Err(KeptError::Unreadable("no `format`".into())),
        }
        let kept: KeptSession =
            serde_json::from_value(version).map_err(|e| KeptError::Unreadable(e.to_string()))?;
        kept.usable(check)?;
        Ok(kept)
    }

    /// Whether this kept session may be used now (see [`KeptError`] for each refusal).
    pub fn usable(&self, check: &KeptCheck<'_>) -> Result<(), KeptError> {
        let same_server = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        if !same_server(&self.identity.server, check.server) {
            return Err(KeptError::OtherServer {
                kept: self.identity.server.clone(),
                asked: check.server.to_owned(),
            });
        }
        if self.identity.group_id != check.group_id {
            return Err(KeptError::OtherGroup {
                kept: self.identity.group_id.clone(),
                asked: check.group_id.to_owned(),
            });
        }
        if let Some(user) = check.username
            && user != self.identity.username
        {
            return Err(KeptError::OtherUser {
                kept: self.identity.username.clone(),
                asked: user.to_owned(),
            });
        }
        if self.session_id.is_empty() {
            return Err(KeptError::NoSession);
        }
        let age = check.now_ms - self.saved_at_ms;
        if !age.is_finite() || age > KEPT_MAX_AGE_MS {
            return Err(KeptError::Stale {
                hours: if age.is_finite() {
                    age / 3_600_000.0
                } else {
                    f64::INFINITY
                },
            });
        }
        if age < -FUTURE_SLACK_MS {
            return Err(KeptError::FromTheFuture {
                seconds: -age / 1000.0,
            });
        }
        if let Some(grant) = &self.grant {
            #[allow(clippy::cast_precision_loss)] // ms since 1970 fit f64 exactly
            let expires = grant.expires_at as f64;
            if expires < check.now_ms {
                return Err(KeptError::GrantExpired {
                    minutes: (check.now_ms - expires) / 60_000.0,
                });
            }
        }
        Ok(())
    }

    /// The file name a session of `group_id` on `server` is kept under (in the node's data
    /// directory): one per server and group.
    pub fn file_name(server: &str, group_id: &str) -> String {
        let key = format!("{}\n{group_id}", server.trim_end_matches('/'));
        format!(
            "kept-session-{:016x}.json",
            crate::mesh::fnv1a(key.as_bytes())
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000_000.0;

    fn kept() -> KeptSession {
        KeptSession {
            format: KEPT_FORMAT,
            identity: KeptIdentity {
                server: "http://127.0.0.1:5000".into(),
                group_id: "g1".into(),
                user_id: 3,
                username: "car2".into(),
                display_name: "car2's car".into(),
                token: "t".into(),
            },
            session_id: "s1".into(),
            members: vec![
                KeptMember {
                    user_id: 1,
                    display_name: None,
                },
                KeptMember {
                    user_id: 3,
                    display_name: Some("me".into()),
                },
            ],
            controller: Some(1),
            grant: None,
            playlist: vec![],
            timeline: Some(KeptTimeline {
                track_id: "t1".into(),
                playing: true,
                position: 2.5,
                at_server_ms: NOW - 1000.0,
            }),
            peers: BTreeMap::from([(1, "127.0.0.1:40000".parse().unwrap())]),
            saved_at_ms: NOW - 5000.0,
        }
    }

    fn check() -> KeptCheck<'static> {
        KeptCheck {
            server: "http://127.0.0.1:5000/",
            group_id: "g1",
            username: Some("car2"),
            now_ms: NOW,
        }
    }

    #[test]
    fn a_fresh_file_of_the_same_user_group_and_server_is_used() {
        let bytes = serde_json::to_vec(&kept()).unwrap();
        assert_eq!(KeptSession::read(&bytes, &check()).unwrap(), kept());
    }

    #[test]
    fn truncated_garbage_and_other_formats_are_refused_with_their_reason() {
        let bytes = serde_json::to_vec(&kept()).unwrap();
        for cut in [0, 1, bytes.len() / 3, bytes.len() - 1] {
            let e = KeptSession::read(&bytes[..cut], &check()).unwrap_err();
            assert!(matches!(e, KeptError::Unreadable(_)), "cut at {cut}: {e}");
        }
        for garbage in [
            &b"\xff\xfe\x00garbage"[..],
            b"[]",
            b"{\"format\":1}",
            b"null",
        ] {
            let e = KeptSession::read(garbage, &check()).unwrap_err();
            assert!(matches!(e, KeptError::Unreadable(_)), "{garbage:?}: {e}");
            assert!(e.to_string().contains("not a kept session"), "{e}");
        }
        let mut v = serde_json::to_value(kept()).unwrap();
        v["format"] = 2.into();
        let e = KeptSession::read(&serde_json::to_vec(&v).unwrap(), &check()).unwrap_err();
        assert_eq!(e, KeptError::Format { found: 2 });
        let big = vec![b' '; KEPT_MAX_BYTES + 1];
        assert!(matches!(
            KeptSession::read(&big, &check()),
            Err(KeptError::TooLarge(_))
        ));
    }

    #[test]
    fn another_server_group_or_user_is_refused() {
        let bytes = serde_json::to_vec(&kept()).unwrap();
        let other = KeptCheck {
            server: "http://10.0.0.1:5000",
            ..check()
        };
        let e = KeptSession::read(&bytes, &other).unwrap_err();
        assert!(matches!(e, KeptError::OtherServer { .. }), "{e}");
        assert!(e.to_string().contains("10.0.0.1"), "{e}");
        let other = KeptCheck {
            group_id: "g2",
            ..check()
        };
        assert!(matches!(
            KeptSession::read(&bytes, &other),
            Err(KeptError::OtherGroup { .. })
        ));
        let other = KeptCheck {
            username: Some("car9"),
            ..check()
        };
        assert!(matches!(
            KeptSession::read(&bytes, &other),
            Err(KeptError::OtherUser { .. })
        ));
    }

    #[test]
    fn stale_future_and_expired_grants_are_refused() {
        let mut k = kept();
        k.saved_at_ms = NOW - KEPT_MAX_AGE_MS - 1.0;
        assert!(matches!(k.usable(&check()), Err(KeptError::Stale { .. })));
        k.saved_at_ms = NOW + 3_600_000.0;
        assert!(matches!(
            k.usable(&check()),
            Err(KeptError::FromTheFuture { .. })
        ));
        k.saved_at_ms = f64::NAN;
        assert!(matches!(k.usable(&check()), Err(KeptError::Stale { .. })));
        let mut k = kept();
        k.grant = Some(ControllerGrant {
            session_id: "s1".into(),
            user_id: 1,
            epoch: 1,
            device_key: None,
            issued_at: 0,
            expires_at: 1_799_999_000_000,
            sig: String::new(),
        });
        assert!(matches!(
            k.usable(&check()),
            Err(KeptError::GrantExpired { .. })
        ));
        let mut k = kept();
        k.session_id.clear();
        assert_eq!(k.usable(&check()), Err(KeptError::NoSession));
    }

    #[test]
    fn one_file_per_server_and_group() {
        let a = KeptSession::file_name("http://a:1/", "g");
        assert_eq!(a, KeptSession::file_name("http://a:1", "g"));
        assert_ne!(a, KeptSession::file_name("http://a:1", "h"));
        assert!(
            a.starts_with("kept-session-") && a.ends_with(".json"),
            "{a}"
        );
    }
}

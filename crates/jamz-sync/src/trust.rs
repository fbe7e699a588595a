//! Who may be obeyed over the peer mesh: controller grants, signed relayed messages, and
//! the rule that keeps a DJ when the DJ leaves while the server is gone
//! (docs/protocol.md, "Controller grants"; docs/mesh-trust.md).
//!
//! # Using it (the engine's side)
//!
//! One [`Gate`] per joined session, fed with what the server says and asked about every
//! mesh message before anything else is done with it:
//!
//! ```text
//! GET /api/mesh/grant-key        -> gate.set_server_key(ServerKey::from_grant_key(&body)?)
//! music-session-state            -> gate.on_server_controller(state.controller_id, state.grant.as_ref())
//! music-controller-changed       -> gate.on_server_controller(Some(ev.user_id), ev.grant.as_ref())
//! mesh controller-changed        -> gate.learn_grant(grant)   (its `data.grant`, once admitted)
//! every second or so             -> gate.update_acting(me, &heard, now, server_reachable)
//! mesh text from link `peer`     -> decode (jamz_mesh::message::decode + payload()), then
//!     match gate.judge(server_now, peer, &envelope) {
//!         Ok(admitted) => { dedup (jamz_mesh Receiver::accept(from, sequence)), then apply;
//!                           Admitted::Member may only append to the playlist }
//!         Err(why)     => { drop, count by why.label(), log at debug }
//!     }
//! ```
//!
//! Judge **before** de-duplicating: the de-duplication window records every sequence it
//! is shown, so a forged `from: <DJ>` with a huge `sequence` shown to it first would make
//! the DJ's real messages look old.
//!
//! On the DJ's device, a [`DeviceKey`] (its seed kept by the node) is presented at
//! CONNECT (`SocketConfig::device_key(key.public_hex())` in jamz-link) and signs every
//! message it sends over the mesh with [`DeviceKey::sign`], the grant's epoch set in the
//! envelope first. Receivers only need the signature when the message was relayed, but
//! signing everything lets any peer forward any message.
//!
//! # The rules
//!
//! - A message's *link* is the authenticated peer whose DataChannel it arrived on (its SDP
//!   came through the server's authenticated relay). It is *direct* when `from` is that
//!   peer, *relayed* otherwise.
//! - Controller messages (`music-control`, `position-sync`, `controller-changed`) are
//!   obeyed from the acting DJ ([`Acting`]) on its direct link while it holds an unexpired
//!   grant, signed by the server's key, for this session, naming it (the succession rule's
//!   DJ has none and needs none), or relayed when also signed by the device key of that
//!   grant, whose epoch the envelope carries.
//! - Member messages (`playlist-update`, `location-update`, `convoy-update`): any member on its direct
//!   link ([`Admitted::Member`]: a playlist may only be appended to); relayed only as a
//!   controller message is.
//! - Link messages (`state-hello`, `time-sync`, `time-sync-reply`): direct only.
//! - A web app peer cannot sign: it is obeyed on its direct link only, which the rules
//!   above give without a special case.
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use jamz_proto::UserId;
use jamz_proto::grant::{ALGORITHM, ControllerGrant, GrantKey, envelope_signing_bytes};
use jamz_proto::mesh::{MeshEnvelope, kinds};

/// How long the DJ may go unheard on the mesh, with the server gone, before the
/// succession rule hands control on ([`acting_controller`]). Every peer sends something
/// each half second (`time-sync`) and the DJ a position sync every few seconds, so ten
/// seconds of silence is a DJ that is gone, not one that is quiet.
pub const DJ_ABSENCE_MS: f64 = 10_000.0;

/// A public key that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a key is 64 hex digits (32 bytes)")]
    NotHex,
    #[error("not an Ed25519 public key")]
    NotAPoint,
    #[error("grant key algorithm {0:?} is not Ed25519")]
    Algorithm(String),
}

fn key_from_hex(text: &str) -> Result<VerifyingKey, KeyError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::NotHex)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint)
}

/// The server's grant-signing key, fetched while online (`GET /api/mesh/grant-key`) and
/// kept for when the server is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey(VerifyingKey);

impl ServerKey {
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        key_from_hex(text).map(Self)
    }

    /// From the route's answer, refusing another algorithm.
    pub fn from_grant_key(key: &GrantKey) -> Result<Self, KeyError> {
        if key.algorithm != ALGORITHM {
            return Err(KeyError::Algorithm(key.algorithm.clone()));
        }
        Self::from_hex(&key.public_key)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

/// Why a DJ device could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("a signed mesh message needs the grant's epoch in `epoch`")]
    NoEpoch,
    #[error("cannot sign: {0}")]
    Canonical(#[from] jamz_proto::grant::CanonicalError),
}

/// This device's own Ed25519 key: presented to the server at CONNECT, named in the grant
/// when this device's user takes control, and signing what it sends over the mesh.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey(SigningKey);

impl fmt::Debug for DeviceKey {
    // Never the secret half, whatever logs it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({})", self.public_hex())
    }
}

impl DeviceKey {
    /// From a 32-byte seed the node draws once and keeps (private file): the same key
    /// across restarts, so a grant outlives a restart of the DJ's app.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The public key, lower-case hex: CONNECT's `deviceKey`.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    fn verifying(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// Signs `envelope` as a message of session `session_id`: sets `sig` to the hex
    /// signature of [`envelope_signing_bytes`]. `epoch` must be set (to the grant's).
    pub fn sign(&self, session_id: &str, envelope: &mut MeshEnvelope) -> Result<(), SignError> {
        if envelope.epoch.is_none() {
            return Err(SignError::NoEpoch);
        }
        let bytes = envelope_signing_bytes(session_id, envelope)?;
        envelope.sig = Some(hex::encode(self.0.sign(&bytes).to_bytes()));
        Ok(())
    }
}

/// Why a mesh message (or a grant) is not obeyed. The engine drops the message, counts
/// it under [`Rejection::label`] and logs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a type this version does not judge: {0}")]
    UnknownKind(String),
    #[error("user {from} is not the DJ ({})", match controller {
        Some(dj) => format!("the DJ is user {dj}"),
        None => "there is no DJ".to_owned(),
    })]
    NotController {
        from: UserId,
        controller: Option<UserId>,
    },
    #[error("message says it is from {from} but arrived on {link}'s link, unsigned")]
    RelayedUnsigned { link: UserId, from: UserId },
    #[error("{kind} is only taken from the peer itself, not relayed (from {from} via {link})")]
    NotDirect {
        kind: String,
        link: UserId,
        from: UserId,
    },
    #[error("{kind} is only taken on a link the server or the DJ vouched for, and {link}'s is not")]
    NotVouched { kind: String, link: UserId },
    #[error("the envelope is from {from} but its data says {data_from}")]
    ForgedFrom { from: UserId, data_from: i64 },
    #[error("no server key yet: relayed messages cannot be checked")]
    NoServerKey,
    #[error("no grant for the DJ: relayed messages cannot be checked")]
    NoGrant,
    #[error("the grant's signature is not the server's")]
    GrantBadSignature,
    #[error("the grant is for session {0}")]
    GrantOtherSession(String),
    #[error("the grant names user {grant}, not {from}")]
    GrantOtherUser { grant: UserId, from: UserId },
    #[error("the grant expired at {expires_at} (now {now})")]
    GrantExpired { expires_at: u64, now: u64 },
    #[error("the message's epoch {message:?} is not the grant's {grant}")]
    GrantOtherEpoch { grant: u64, message: Option<u64> },
    #[error("the grant names no device key (a web app DJ): only its direct link counts")]
    DeviceCannotSign,
    #[error("the signature is not the DJ device's")]
    BadSignature,
    #[error("user {from} is not the DJ: it may only append to the playlist")]
    NotAnAppend { from: UserId },
    #[error("a signal carried over the mesh that does not hold: {0}")]
    BadSignal(String),
    #[error("a signal in {from}'s name over another peer while {from}'s own link is open")]
    SignalLinkOpen { from: UserId },
}

impl Rejection {
    /// A short stable name, for counters.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownKind(_) => "unknown-kind",
            Self::NotController { .. } => "not-controller",
            Self::RelayedUnsigned { .. } => "relayed-unsigned",
            Self::NotDirect { .. } => "not-direct",
            Self::NotVouched { .. } => "not-vouched",
            Self::ForgedFrom { .. } => "forged-from",
            Self::NoServerKey => "no-server-key",
            Self::NoGrant => "no-grant",
            Self::GrantBadSignature => "grant-bad-signature",
            Self::GrantOtherSession(_) => "grant-other-session",
            Self::GrantOtherUser { .. } => "grant-other-user",
            Self::GrantExpired { .. } => "grant-expired",
            Self::GrantOtherEpoch { .. } => "grant-other-epoch",
            Self::DeviceCannotSign => "device-cannot-sign",
            Self::BadSignature => "bad-signature",
            Self::NotAnAppend { .. } => "not-an-append",
            Self::BadSignal(_) => "bad-signal",
            Self::SignalLinkOpen { .. } => "signal-link-open",
        }
    }
}

/// What a message may do once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// From the acting DJ: apply it as the DJ's (control, any playlist).
    Controller,
    /// From a member on its own link: apply as any member may (append to the playlist,
    /// its own location, link messages).
    Member,
}

/// Who is obeyed as DJ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acting {
    /// Nobody controls.
    Nobody,
    /// The server's DJ (the last it named).
    Server(UserId),
    /// The succession rule's DJ: the server's is gone from the mesh and the server too.
    /// Obeyed on its direct links only (it has no grant).
    Successor(UserId),
}

impl Acting {
    pub fn user(self) -> Option<UserId> {
        match self {
            Self::Nobody => None,
            Self::Server(u) | Self::Successor(u) => Some(u),
        }
    }
}

/// The succession rule, the same pure function on every peer (docs/mesh-trust.md):
///
/// - the server reachable: its DJ (`granted`), whatever the mesh says;
/// - else the server's DJ while it is this peer or was heard within [`DJ_ABSENCE_MS`];
/// - else, when at least one other member was heard within [`DJ_ABSENCE_MS`], the lowest
///   user id among this peer and those members (the gone DJ excluded); alone, the
///   server's DJ still (nobody to control, nobody to agree with);
/// - no DJ at all stays no DJ.
///
/// `heard` is, per member, the last time anything from it was admitted over the mesh
/// (direct, or relayed and admitted), on the same clock as `now_ms`. Peers that hear
/// the same members pick the same DJ; when the server's DJ is heard again, it has control
/// again; when the server returns, its DJ wins.
pub fn acting_controller(
    granted: Option<UserId>,
    me: UserId,
    heard: &[(UserId, f64)],
    now_ms: f64,
    server_reachable: bool,
) -> Acting {
    let Some(dj) = granted else {
        return Acting::Nobody;
    };
    let present = |at: f64| now_ms - at <= DJ_ABSENCE_MS;
    if server_reachable || dj == me || heard.iter().any(|&(u, at)| u == dj && present(at)) {
        return Acting::Server(dj);
    }
    let mut others = heard
        .iter()
        .filter(|&&(u, at)| u != dj && u != me && present(at))
        .map(|&(u, _)| u)
        .peekable();
    if others.peek().is_none() {
        // Alone: there is nobody to control, and no one to agree with.
        return Acting::Server(dj);
    }
    Acting::Successor(others.fold(me, UserId::min))
}

/// A grant whose signature and session were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGrant {
    pub user: UserId,
    pub epoch: u64,
    pub expires_at: u64,
    device: Option<VerifyingKey>,
}

/// Checks `grant`'s signature against `server` and that it is for `session_id` (not
/// its expiry: that is checked at each use, against the time then).
pub fn verify_grant(
    server: &ServerKey,
    session_id: &str,
    grant: &ControllerGrant,
) -> Result<VerifiedGrant, Rejection> {
    let bytes = grant
        .signing_bytes()
        .map_err(|_| Rejection::GrantBadSignature)?;
    let sig = signature_from_hex(&grant.sig).ok_or(Rejection::GrantBadSignature)?;
    server
        .0
        .verify_strict(&bytes, &sig)
        .map_err(|_| Rejection::GrantBadSignature)?;
    if grant.session_id != session_id {
        return Err(Rejection::GrantOtherSession(grant.session_id.clone()));
    }
    // The server checked the key at CONNECT; a signed grant with a bad one is a server bug.
    let device = match &grant.device_key {
        Some(k) => Some(key_from_hex(k).map_err(|_| Rejection::GrantBadSignature)?),
        None => None,
    };
    Ok(VerifiedGrant {
        user: grant.user_id,
        epoch: grant.epoch,
        expires_at: grant.expires_at,
        device,
    })
}

fn signature_from_hex(text: &str) -> Option<Signature> {
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(Signature::from_bytes(&bytes))
}

/// How a message type is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Controller,
    Member,
    Link,
    /// Only from the peer itself on a link the server (or the DJ) vouched for: what acts
    /// on the receiving device for a user that must be known (a calibration).
    Direct,
}

fn class_of(kind: &str) -> Option<Class> {
    Some(match kind {
        kinds::MUSIC_CONTROL | kinds::POSITION_SYNC | kinds::CONTROLLER_CHANGED => {
            Class::Controller
        }
        kinds::PLAYLIST_UPDATE | kinds::LOCATION_UPDATE | kinds::CONVOY_UPDATE => Class::Member,
        kinds::STATE_HELLO | kinds::TIME_SYNC | kinds::TIME_SYNC_REPLY => Class::Link,
        kinds::CALIBRATION_UPDATE => Class::Direct,
        _ => return None,
    })
}

/// The server's word on the DJ: its user, and the grant for it as given.
#[derive(Debug, Clone)]
struct ServerDj {
    user: UserId,
    grant: Option<ControllerGrant>,
}

/// One session's judge of mesh messages. Pure: no clock, no I/O; see the module doc.
#[derive(Debug, Clone)]
pub struct Gate {
    session_id: String,
    server_key: Option<ServerKey>,
    dj: Option<ServerDj>,
    /// The grant of `dj`, checked whenever the key or the grant changes.
    checked: Option<Result<VerifiedGrant, Rejection>>,
    acting: Acting,
}

impl Gate {
    pub fn new(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            server_key: None,
            dj: None,
            checked: None,
            acting: Acting::Nobody,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn set_server_key(&mut self, key: ServerKey) {
        self.server_key = Some(key);
        self.recheck();
    }

    pub fn server_key(&self) -> Option<&ServerKey> {
        self.server_key.as_ref()
    }

    /// The server named the DJ (`music-session-state`'s `controller_id` and `grant`, or
    /// `music-controller-changed`'s `userId` and `grant`): it wins over anything the mesh
    /// said. A grant for another user or session, or not signed by the server's key (once
    /// known), is refused (the DJ is still set: the server's word on who it is stands,
    /// only its relayed messages cannot be checked).
    pub fn on_server_controller(
        &mut self,
        user: Option<UserId>,
        grant: Option<&ControllerGrant>,
    ) -> Result<(), Rejection> {
        self.dj = user.map(|user| ServerDj {
            user,
            grant: grant.filter(|g| g.user_id == user).cloned(),
        });
        self.acting = user.map_or(Acting::Nobody, Acting::Server);
        self.recheck();
        match (user, grant) {
            (Some(user), Some(g)) if g.user_id != user => Err(Rejection::GrantOtherUser {
                grant: g.user_id,
                from: user,
            }),
            _ => match &self.checked {
                Some(Err(e)) => Err(e.clone()),
                _ => Ok(()),
            },
        }
    }

    /// A grant that came over the mesh (a `controller-changed`'s `data.grant`). Adopted,
    /// with its user as the server's DJ, when the server signed it for this session and
    /// its epoch is newer than the one held (or the same epoch for the same DJ: a fresher
    /// copy). Returns whether it was adopted. Needs the server's key.
    pub fn learn_grant(&mut self, grant: &ControllerGrant) -> Result<bool, Rejection> {
        let key = self.server_key.as_ref().ok_or(Rejection::NoServerKey)?;
        let verified = verify_grant(key, &self.session_id, grant)?;
        let newer = match (&self.dj, &self.checked) {
            (Some(dj), Some(Ok(held))) => {
                verified.epoch > held.epoch
                    || (verified.epoch == held.epoch
                        && dj.user == verified.user
                        && verified.expires_at > held.expires_at)
            }
            // A DJ named by the server without a usable grant: a grant for the same user
            // completes it; another user's must not override the server's word.
            (Some(dj), _) => dj.user == verified.user,
            (None, _) => true,
        };
        if newer {
            self.dj = Some(ServerDj {
                user: verified.user,
                grant: Some(grant.clone()),
            });
            if !matches!(self.acting, Acting::Successor(_)) {
                self.acting = Acting::Server(verified.user);
            }
            self.checked = Some(Ok(verified));
        }
        Ok(newer)
    }

    /// The grant held for the server's DJ, as given (checked or not).
    pub fn grant(&self) -> Option<&ControllerGrant> {
        self.dj.as_ref()?.grant.as_ref()
    }

    /// The server's DJ (as it last said, or as a newer grant says).
    pub fn server_controller(&self) -> Option<UserId> {
        self.dj.as_ref().map(|d| d.user)
    }

    /// The epoch of the held grant, once it checked out.
    pub fn epoch(&self) -> Option<u64> {
        match &self.checked {
            Some(Ok(g)) => Some(g.epoch),
            _ => None,
        }
    }

    /// The epoch to sign with when `me` sends with `device`: the held grant checked out,
    /// names `me` and `device`'s key (not another device of the same user). Its expiry is
    /// the receivers' to check.
    pub fn signing_epoch(&self, me: UserId, device: &DeviceKey) -> Option<u64> {
        match &self.checked {
            Some(Ok(g)) if g.user == me && g.device == Some(device.verifying()) => Some(g.epoch),
            _ => None,
        }
    }

    /// The DJ obeyed now.
    pub fn acting(&self) -> Acting {
        self.acting
    }

    /// Applies [`acting_controller`] to this gate's DJ; call it whenever what was heard
    /// or the server's reachability changes (once a second is plenty).
    pub fn update_acting(
        &mut self,
        me: UserId,
        heard: &[(UserId, f64)],
        now_ms: f64,
        server_reachable: bool,
    ) -> Acting {
        self.acting = acting_controller(
            self.server_controller(),
            me,
            heard,
            now_ms,
            server_reachable,
        );
        self.acting
    }

    fn recheck(&mut self) {
        self.checked = match (&self.server_key, &self.dj) {
            (Some(key), Some(ServerDj { grant: Some(g), .. })) => {
                Some(verify_grant(key, &self.session_id, g))
            }
            _ => None,
        };
    }

    /// Whether `envelope`, which arrived on the DataChannel of authenticated peer `link`,
    /// may be obeyed. `server_now_ms`: the time on the server's clock (the engine's
    /// estimate), against which grants expire.
    pub fn judge(
        &self,
        server_now_ms: f64,
        link: UserId,
        envelope: &MeshEnvelope,
    ) -> Result<Admitted, Rejection> {
        self.judge_on(server_now_ms, link, true, envelope)
    }

    /// [`Gate::judge`] on a link that is `vouched` for or not. A link set up by signals
    /// that the server did not carry and the DJ's device did not sign (relayed over the
    /// mesh by other members, docs/mesh-trust.md, "Signaling over the mesh") proves nothing
    /// of who is on it: what arrives there is judged as relayed, but for the link messages
    /// (`state-hello`, `time-sync`, `time-sync-reply`), taken as any member's.
    pub fn judge_on(
        &self,
        server_now_ms: f64,
        link: UserId,
        vouched: bool,
        envelope: &MeshEnvelope,
    ) -> Result<Admitted, Rejection> {
        let class = class_of(&envelope.kind)
            .ok_or_else(|| Rejection::UnknownKind(envelope.kind.clone()))?;
        if class == Class::Direct {
            if envelope.from != link {
                return Err(Rejection::NotDirect {
                    kind: envelope.kind.clone(),
                    link,
                    from: envelope.from,
                });
            }
            if !vouched {
                return Err(Rejection::NotVouched {
                    kind: envelope.kind.clone(),
                    link,
                });
            }
            return Ok(Admitted::Member);
        }
        if !vouched && envelope.from == link {
            if class == Class::Link {
                return Ok(Admitted::Member);
            }
            // As if some other peer carried it: only the DJ's signature counts.
            return self.judge_relayed(server_now_ms, link, class, envelope);
        }
        let from = envelope.from;
        if envelope.kind == kinds::MUSIC_CONTROL
            && let Some(data_from) = envelope.data.get("from").and_then(|v| v.as_i64())
            && data_from != from
        {
            return Err(Rejection::ForgedFrom { from, data_from });
        }
        let acting = self.acting.user();
        if from == link {
            // The server's DJ is obeyed on its own link while it holds a valid grant; the
            // succession rule's DJ has none to hold.
            let granted = || match self.acting {
                Acting::Server(_) => self.check_grant(server_now_ms, from).map(|_| ()),
                _ => Ok(()),
            };
            return match class {
                Class::Controller if acting == Some(from) => {
                    granted().map(|()| Admitted::Controller)
                }
                Class::Controller => Err(Rejection::NotController {
                    from,
                    controller: acting,
                }),
                Class::Member | Class::Link if acting == Some(from) && granted().is_ok() => {
                    Ok(Admitted::Controller)
                }
                Class::Member | Class::Link | Class::Direct => Ok(Admitted::Member),
            };
        }
        if class == Class::Link {
            return Err(Rejection::NotDirect {
                kind: envelope.kind.clone(),
                link,
                from,
            });
        }
        self.judge_relayed(server_now_ms, link, class, envelope)
    }

    /// Whether `envelope` is the server's DJ's, signed by the device its grant names (as a
    /// relayed message must be): what vouches for a link set up by signals carried over
    /// the mesh.
    pub fn signed_by_dj(&self, server_now_ms: f64, link: UserId, envelope: &MeshEnvelope) -> bool {
        self.server_controller() == Some(envelope.from)
            && self.check_signed(server_now_ms, link, envelope).is_ok()
    }

    fn judge_relayed(
        &self,
        server_now_ms: f64,
        link: UserId,
        class: Class,
        envelope: &MeshEnvelope,
    ) -> Result<Admitted, Rejection> {
        let from = envelope.from;
        let acting = self.acting.user();
        // Relayed: only the server's DJ can prove itself. Its signature also proves it is
        // there, while a successor acts for it: the engine then hears it, and the
        // succession rule gives control back (docs/mesh-trust.md).
        let granted = self.server_controller();
        if acting == Some(from) && granted != Some(from) {
            // The succession rule's DJ: nothing the server signed speaks for it.
            return Err(Rejection::NoGrant);
        }
        if granted != Some(from) {
            return match (class, &envelope.sig) {
                (Class::Controller, _) => Err(Rejection::NotController {
                    from,
                    controller: acting,
                }),
                (_, None) => Err(Rejection::RelayedUnsigned { link, from }),
                (_, Some(_)) => Err(Rejection::BadSignature),
            };
        }
        self.check_signed(server_now_ms, link, envelope)?;
        Ok(Admitted::Controller)
    }

    /// The held grant, when it is the server's, for this session, names `from` and has
    /// not expired at `server_now_ms` (the server's clock as this peer estimates it).
    pub fn check_grant(
        &self,
        server_now_ms: f64,
        from: UserId,
    ) -> Result<&VerifiedGrant, Rejection> {
        if self.server_key.is_none() {
            return Err(Rejection::NoServerKey);
        }
        let grant = match &self.checked {
            None => return Err(Rejection::NoGrant),
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(g)) => g,
        };
        if grant.user != from {
            return Err(Rejection::GrantOtherUser {
                grant: grant.user,
                from,
            });
        }
        // Whole ms; a clock before 1970 or past u64 is no clock: expired.
        let now = if server_now_ms.is_finite() && server_now_ms >= 0.0 {
            server_now_ms as u64
        } else {
            u64::MAX
        };
        if now >= grant.expires_at {
            return Err(Rejection::GrantExpired {
                expires_at: grant.expires_at,
                now,
            });
        }
        Ok(grant)
    }

    fn check_signed(
        &self,
        server_now_ms: f64,
        link: UserId,
        envelope: &MeshEnvelope,
    ) -> Result<(), Rejection> {
        let grant = self.check_grant(server_now_ms, envelope.from)?;
        if envelope.epoch != Some(grant.epoch) {
            return Err(Rejection::GrantOtherEpoch {
                grant: grant.epoch,
                message: envelope.epoch,
            });
        }
        let device = grant.device.as_ref().ok_or(Rejection::DeviceCannotSign)?;
        let sig = envelope.sig.as_deref().ok_or(Rejection::RelayedUnsigned {
            link,
            from: envelope.from,
        })?;
        let sig = signature_from_hex(sig).ok_or(Rejection::BadSignature)?;
        let bytes = envelope_signing_bytes(&self.session_id, envelope)
            .map_err(|_| Rejection::BadSignature)?;
        device
            .verify_strict(&bytes, &sig)
            .map_err(|_| Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests;

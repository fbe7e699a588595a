//! Helpers that build an engine's world in one line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jamz_proto::events::{
    MusicControllerChanged, MusicRelay, MusicSessionState, ParticipantInfo, PositionSyncRelay,
};
use jamz_proto::{CurrentlyPlaying, ServerEvent, Track, UserId};
use jamz_sync::{
    Action, AudioCommand, Command, Engine, EngineConfig, Input, LocalTime, Notification, ServerTime,
};

pub mod mesh;

pub const SESSION: &str = "s-1";

pub fn track(i: u32, duration: f64) -> Track {
    Track {
        id: format!("t{i}"),
        title: format!("Song {i}"),
        artist: "Band".to_string(),
        url: format!("https://example.invalid/{i}.mp3"),
        duration: Some(duration),
        ..Track::default()
    }
}

pub fn socket_of(user: UserId) -> String {
    format!("sock-{user}")
}

/// An engine for `user`, connected, its join emitted; actions drained.
pub fn connected(user: UserId, now: LocalTime) -> Engine {
    let mut e = Engine::new(EngineConfig::new(user, format!("user {user}")).with_session(SESSION));
    e.handle(
        now,
        Input::Connected {
            socket_id: socket_of(user),
        },
    );
    drain(&mut e);
    e
}

pub fn drain(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll()).collect()
}

/// Answers every pending probe as a server `offset_ms` ahead, 1 ms away each way, until
/// `samples` exchanges are done. Returns the local time reached.
pub fn sync_clock(e: &mut Engine, mut now: LocalTime, offset_ms: f64, samples: usize) -> LocalTime {
    let mut done = 0;
    while done < samples {
        let probes: Vec<f64> = drain(e)
            .into_iter()
            .filter_map(|a| match a {
                Action::TimeSync { t0, .. } => Some(t0),
                _ => None,
            })
            .collect();
        if probes.is_empty() {
            now = e.next_timeout().unwrap_or(now + 10.0).max(now);
            e.handle(now, Input::Tick);
            continue;
        }
        for t0 in probes {
            let t1 = t0 + 1.0 + offset_ms;
            now = t0 + 2.0;
            e.handle(
                now,
                Input::TimeSyncReply {
                    t0,
                    t1,
                    t2: t1,
                    t3: now,
                },
            );
            done += 1;
        }
    }
    drain(e);
    now
}

pub fn server(e: &mut Engine, now: LocalTime, ev: ServerEvent) -> Vec<Action> {
    e.handle(now, Input::Server(ev));
    drain(e)
}

/// Feeds a local command; the actions it produced.
pub fn command(e: &mut Engine, now: LocalTime, cmd: Command) -> Vec<Action> {
    e.handle(now, Input::Command(cmd));
    drain(e)
}

/// `play` as a bare button: the current track where it was, else the first from 0.
pub fn play() -> Command {
    Command::Play {
        track: None,
        position: None,
    }
}

pub fn controller_is(user: UserId) -> ServerEvent {
    ServerEvent::MusicControllerChanged(MusicControllerChanged {
        controller_id: socket_of(user),
        user_id: user,
        timestamp: 0.0,
        grant: None,
    })
}

/// The test server's grant-signing key (a fixed seed).
pub fn grant_signer() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[11; 32])
}

/// What `GET /api/mesh/grant-key` answers for [`grant_signer`].
pub fn grant_key() -> jamz_proto::grant::GrantKey {
    jamz_proto::grant::GrantKey {
        algorithm: jamz_proto::grant::ALGORITHM.into(),
        public_key: hex::encode(grant_signer().verifying_key().as_bytes()),
    }
}

/// A grant for `user` in `session` at `epoch`, expiring at server ms `expires_at`, signed
/// by `signer`.
pub fn grant_by(
    signer: &ed25519_dalek::SigningKey,
    session: &str,
    user: UserId,
    epoch: u64,
    expires_at: u64,
) -> jamz_proto::grant::ControllerGrant {
    use ed25519_dalek::Signer;
    let mut g = jamz_proto::grant::ControllerGrant {
        session_id: session.into(),
        user_id: user,
        epoch,
        device_key: None,
        issued_at: 0,
        expires_at,
        sig: String::new(),
    };
    g.sig = hex::encode(signer.sign(&g.signing_bytes().unwrap()).to_bytes());
    g
}

/// The server's grant for `user` in [`SESSION`] at `epoch`, valid for ages.
pub fn grant(user: UserId, epoch: u64) -> jamz_proto::grant::ControllerGrant {
    grant_by(&grant_signer(), SESSION, user, epoch, u64::MAX / 2)
}

/// `music-controller-changed` for `user` with the server's grant at `epoch`.
pub fn controller_granted(user: UserId, epoch: u64) -> ServerEvent {
    ServerEvent::MusicControllerChanged(MusicControllerChanged {
        controller_id: socket_of(user),
        user_id: user,
        timestamp: 0.0,
        grant: Some(grant(user, epoch)),
    })
}

/// The engine's `mesh-refused` reports among `actions`: (from, via, reason).
pub fn refused(actions: &[Action]) -> Vec<(UserId, UserId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::MeshRefused {
                from, via, reason, ..
            }) => Some((*from, *via, reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn playlist(tracks: Vec<Track>) -> ServerEvent {
    ServerEvent::PlaylistUpdate(jamz_proto::events::PlaylistRelay { playlist: tracks })
}

pub fn relay(dj: UserId, track: Option<Track>, position: f64, timestamp: ServerTime) -> MusicRelay {
    MusicRelay {
        position,
        track,
        timestamp,
        controller_id: Some(socket_of(dj)),
        user_id: Some(dj),
    }
}

pub fn position_sync(dj: UserId, position: f64, timestamp: ServerTime) -> ServerEvent {
    ServerEvent::PositionSync(PositionSyncRelay {
        position,
        timestamp,
        user_id: Some(dj),
    })
}

pub fn joined(user: UserId) -> ServerEvent {
    ServerEvent::ParticipantJoined(ParticipantInfo {
        socket_id: socket_of(user),
        user_id: user,
        display_name: None,
    })
}

pub fn session_state(
    dj: Option<UserId>,
    tracks: Vec<Track>,
    playing: Option<(Track, f64)>,
    server_time: Option<f64>,
) -> ServerEvent {
    ServerEvent::MusicSessionState(MusicSessionState {
        playlist: tracks,
        is_playing: playing.is_some(),
        currently_playing: playing.map(|(t, position)| CurrentlyPlaying {
            track: Some(t),
            position,
            started_at: None,
            controlled_by: None,
        }),
        controller_id: dj,
        controller_socket_id: dj.map(socket_of),
        server_time,
        grant: None,
        rest_broadcasts: false,
    })
}

pub fn starts(actions: &[Action]) -> Vec<(String, f64, LocalTime)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audio(AudioCommand::Start {
                track,
                position,
                at,
            }) => Some((track.id.clone(), *position, *at)),
            _ => None,
        })
        .collect()
}

pub fn emitted<'a>(actions: &'a [Action], name: &str) -> Vec<&'a serde_json::Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Emit { event, data } if *event == name => Some(data),
            _ => None,
        })
        .collect()
}

pub fn errors(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(Notification::Error { message, .. }) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Runs timers until `until`, collecting every action with its local time.
pub fn run_until(e: &mut Engine, mut now: LocalTime, until: LocalTime) -> Vec<(LocalTime, Action)> {
    let mut out = Vec::new();
    while let Some(t) = e.next_timeout() {
        if t > until {
            break;
        }
        now = t.max(now);
        e.handle(now, Input::Tick);
        out.extend(drain(e).into_iter().map(|a| (now, a)));
    }
    out
}

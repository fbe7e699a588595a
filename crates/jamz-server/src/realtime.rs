//! The Socket.IO side of docs/protocol.md: authentication at CONNECT, session rooms,
//! DJ authority, relays, and the `time-sync` clock probe.
use jamz_proto::events::{
    CalibrationKind, CalibrationRelay, CalibrationUpdate, ConvoyKind, ConvoyRelay, ConvoyUpdate,
    CurrentParticipants, JoinAudioSession, LeaveAudioSession, LocationRelay, LocationUpdate,
    MusicControl, MusicControllerChanged, MusicError, MusicRelay, MusicTakeControl,
    ParticipantInfo, ParticipantLeft, PlaylistUpdate, PositionSync, PositionSyncRelay, TimeSync,
    TimeSyncReply, WebrtcSignal, names,
};
use jamz_proto::{CarriesFix, ClientEvent, UserId};
use serde_json::Value;
use socketioxide::extract::{Event, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use tokio::sync::{mpsc, oneshot};

use crate::clock::now_ms_f64;
use crate::cluster::{Ack as AckSender, Sock};
use crate::error::ApiError;
use crate::live::{Controller, Dj, Persist, Playback};
use crate::service;
use crate::state::{AppState, room};

/// The authenticated user of a socket, set by the CONNECT middleware.
#[derive(Debug, Clone, Copy)]
struct SocketUser(UserId);

/// The id other members know a socket by. Never the Engine.IO session id: that
/// one is a bearer credential for the transport (whoever knows it may post
/// packets into the session, upgrade it to a websocket or close it), so it is
/// shown to nobody but its own client, which already has it from the handshake.
#[derive(Debug, Clone)]
struct PublicId(String);

impl PublicId {
    /// 128 random bits, base64url like socket.io's own ids.
    fn random() -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes: [u8; 22] = rand::random();
        Self(
            bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
                .collect(),
        )
    }
}

/// The public key a socket's client presented in its CONNECT auth (`deviceKey`, hex):
/// the device's own Ed25519 key, named in the grant when this socket's user takes control.
#[derive(Debug, Clone)]
struct DeviceKey(String);

/// The session a socket has joined.
#[derive(Debug, Clone)]
struct Joined {
    session_id: String,
}

#[derive(Debug)]
struct AuthFailed;

impl std::fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Exactly what docs/protocol.md says a refused client sees.
        f.write_str("Authentication failed")
    }
}

/// Events a socket may have waiting before the server refuses more: a client
/// flooding faster than the database keeps up gets `music-error`, not memory.
const SOCKET_INBOX: usize = 1024;

/// What reaches a socket's worker, in the order the client sent it.
enum Inbound {
    Event {
        name: String,
        data: Value,
        ack: AckSender,
    },
    /// The socket is gone: leave its session, then tell the disconnect handler.
    Disconnect(oneshot::Sender<()>),
}

/// Registers the `/` namespace on `io` (with Redis: subscribes to the other processes).
pub async fn register(state: AppState) -> Result<(), String> {
    let io = state.io.clone();
    let auth = move |s: Sock, TryData(auth): TryData<Value>| {
        let state = state.clone();
        async move {
            let auth = auth.ok();
            let token = auth
                .as_ref()
                .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_string))
                .ok_or(AuthFailed)?;
            let token = token.strip_prefix("Bearer ").unwrap_or(&token);
            let user = state
                .current_user(token)
                .await
                .ok()
                .flatten()
                .ok_or(AuthFailed)?;
            s.extensions.insert(SocketUser(user));
            // Every process can reach this user's sockets (revoked tokens: disconnect_user).
            s.join(user_room(user));
            s.extensions.insert(PublicId::random());
            if let Some(text) = auth
                .as_ref()
                .and_then(|a| a.get("deviceKey"))
                .and_then(Value::as_str)
            {
                // A bad key costs the client its grant's key, not its connection: it
                // still plays, and its relayed messages are refused by every peer.
                match crate::grants::parse_device_key(text) {
                    Some(key) => {
                        s.extensions.insert(DeviceKey(key));
                    }
                    None => tracing::warn!(
                        user,
                        "CONNECT deviceKey is not a 32-byte Ed25519 public key in hex; ignored"
                    ),
                }
            }
            attach_worker(state, &s);
            Ok::<(), AuthFailed>(())
        }
    };
    // socketioxide 0.18 runs connect handlers only after CONNECT has gone out, so
    // the event handlers are attached by the middleware above instead: an event
    // sent right after CONNECT must find them.
    let on_connect = async |s: Sock| {
        tracing::debug!(socket = %s.id, "connected");
    };
    io.ns("/", on_connect.with(auth))
        .await
        .map_err(|e| format!("Socket.IO adapter: {e}"))
}

/// The room of every socket of one user, on every process.
fn user_room(user: UserId) -> String {
    format!("user-{user}")
}

/// The room of one user's sockets in one session, on every process.
fn member_room(session_id: &str, user: UserId) -> String {
    format!("member-{session_id}-{user}")
}

/// The processes with sockets in the session's room (this one always): their open
/// participations are live, those of a process that died are not. `false` with it when
/// the other processes could not be asked (the set is then this process only).
async fn live_servers(
    state: &AppState,
    session_id: &str,
) -> (std::collections::HashSet<String>, bool) {
    let mut live = std::collections::HashSet::from([server_id(state)]);
    // `SocketIo::within` panics once the server closing has removed its namespace (a join
    // still being handled then): asked through `of`, that is an answer like any other.
    let Some(default) = state.io.of("/") else {
        return (live, false);
    };
    match default.within(room(session_id)).fetch_sockets().await {
        Ok(sockets) => {
            live.extend(sockets.iter().map(|r| r.data().server_id.to_string()));
            (live, true)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not ask the other processes who is in the room");
            (live, false)
        }
    }
}

/// How old an open participation of a process with no socket in the session's room must be
/// before it is taken for one of a process that died: a join writes its row just before its
/// socket joins the room.
const GONE_PROCESS_GRACE_MS: i64 = 2_000;

/// The session's open participations on live processes (and those written before
/// participations named their process). Those of a process that has no socket left in the
/// room (it died: SIGKILL, a crash) are closed now, their `leftAt` set, when every process
/// answered: so the session's history does not keep them open for ever.
pub async fn live_participants(
    state: &AppState,
    session_id: &str,
) -> crate::error::ApiResult<Vec<crate::db::OpenParticipant>> {
    let (live, everyone_answered) = live_servers(state, session_id).await;
    let open = state.db.open_participants(session_id).await?;
    let now = crate::clock::now_ms();
    let (live_rows, gone): (Vec<_>, Vec<_>) = open
        .into_iter()
        .partition(|p| p.server_id.as_ref().is_none_or(|id| live.contains(id)));
    if everyone_answered {
        let mut closed = 0;
        for p in gone
            .iter()
            .filter(|p| now - p.joined_at_ms >= GONE_PROCESS_GRACE_MS)
        {
            match state.db.participant_left(session_id, &p.socket_id).await {
                Ok(()) => closed += 1,
                Err(e) => tracing::warn!(error = %e, "could not close a participation"),
            }
        }
        if closed > 0 {
            tracing::info!(
                session = session_id,
                closed,
                "closed the participations of a server process that is gone"
            );
        }
    }
    Ok(live_rows)
}

/// This process's Socket.IO server id (named in its participations).
fn server_id(state: &AppState) -> String {
    state.io.config().server_id.to_string()
}

/// Handles a socket's events one at a time, in the order they arrived.
/// socketioxide spawns a task per event, so without this a `join-audio-session`
/// followed at once by `music-take-control` could be handled the other way round.
fn attach_worker(state: AppState, s: &Sock) {
    state.metrics.socket_opened();
    let (tx, mut rx) = mpsc::channel::<Inbound>(SOCKET_INBOX);
    let worker_socket = s.clone();
    tokio::spawn(async move {
        while let Some(inbound) = rx.recv().await {
            match inbound {
                Inbound::Event { name, data, ack } => {
                    let started = std::time::Instant::now();
                    let refused = dispatch(&state, &worker_socket, &name, data, ack).await;
                    state.metrics.event_handled(started.elapsed(), refused);
                }
                Inbound::Disconnect(done) => {
                    state.metrics.socket_closed();
                    leave_current(&state, &worker_socket).await;
                    let _ = done.send(());
                    break;
                }
            }
        }
    });
    let events = tx.clone();
    // The closure runs synchronously as each packet is read; only the returned
    // future is spawned. Queueing here keeps the client's order.
    s.on_fallback(
        move |s: Sock, Event(name): Event, TryData(data): TryData<Value>, ack: AckSender| {
            let data = data.unwrap_or(Value::Null);
            if let Err(mpsc::error::TrySendError::Full(_)) =
                events.try_send(Inbound::Event { name, data, ack })
            {
                refuse(&s, "too many events at once; slow down");
            }
            async {}
        },
    );
    s.on_disconnect(move |s: Sock, reason: DisconnectReason| {
        let tx = tx.clone();
        async move {
            tracing::debug!(socket = %s.id, ?reason, "disconnected");
            let (done_tx, done_rx) = oneshot::channel();
            if tx.send(Inbound::Disconnect(done_tx)).await.is_ok() {
                let _ = done_rx.await;
            }
        }
    });
}

fn user_of(s: &Sock) -> Option<UserId> {
    s.extensions.get::<SocketUser>().map(|u| u.0)
}

/// The socket's id as other members see it.
fn public_id(s: &Sock) -> String {
    s.extensions
        .get::<PublicId>()
        .map(|p| p.0)
        .unwrap_or_default()
}

/// `id` (a public id) as `s` itself is shown it: its own public id becomes the
/// handshake id its client already knows, so that "is that me?" checks of
/// existing clients (the DJ recognising itself) keep working; any other id is
/// left as it is.
fn as_seen_by(s: &Sock, id: String) -> String {
    if !id.is_empty() && id == public_id(s) {
        s.id.to_string()
    } else {
        id
    }
}

fn refuse(s: &Sock, message: impl Into<String>) {
    let message = message.into();
    tracing::debug!(socket = %s.id, %message, "refused");
    if let Err(e) = s.emit(names::MUSIC_ERROR, &MusicError { error: message }) {
        tracing::debug!(socket = %s.id, error = %e, "could not send music-error");
    }
}

fn emit_to_self<T: serde::Serialize>(s: &Sock, event: &str, data: &T) {
    if let Err(e) = s.emit(event, data) {
        tracing::debug!(socket = %s.id, event, error = %e, "emit failed");
    }
}

async fn emit_to_others<T: serde::Serialize>(s: &Sock, session_id: &str, event: &str, data: &T) {
    if let Err(e) = s.to(room(session_id)).emit(event, data).await {
        tracing::warn!(socket = %s.id, event, error = %e, "broadcast failed");
    }
}

/// The joined session, checked against the one the event names.
fn joined_session(s: &Sock, named: &str) -> Result<Joined, String> {
    match s.extensions.get::<Joined>() {
        Some(j) if j.session_id == named => Ok(j),
        Some(_) => Err(format!("you have not joined session {named}")),
        None => Err("join the session first".to_string()),
    }
}

/// Handles one event; whether it was refused (answered with `music-error`).
async fn dispatch(state: &AppState, s: &Sock, name: &str, data: Value, ack: AckSender) -> bool {
    let Some(user) = user_of(s) else {
        refuse(s, "Authentication failed");
        return true;
    };
    let event = match ClientEvent::decode(name, data) {
        Ok(Some(e)) => e,
        Ok(None) => {
            tracing::debug!(socket = %s.id, event = name, "unknown event ignored");
            return false;
        }
        Err(e) => {
            refuse(s, e.to_string());
            return true;
        }
    };
    let result = match event {
        ClientEvent::TimeSync(t) => {
            time_sync(t, ack);
            Ok(())
        }
        ClientEvent::JoinAudioSession(e) => join(state, s, user, e).await,
        ClientEvent::LeaveAudioSession(e) => leave(state, s, e).await,
        ClientEvent::MusicTakeControl(e) => take_control(state, s, user, e).await,
        ClientEvent::MusicControl(e) => control(state, s, user, e).await,
        ClientEvent::PositionSync(e) => position_sync(state, s, user, e).await,
        ClientEvent::PlaylistUpdate(e) => playlist_update(state, s, user, e).await,
        ClientEvent::WebrtcSignal(e) => webrtc_signal(s, user, e).await,
        ClientEvent::LocationUpdate(e) => location_update(state, s, user, e).await,
        ClientEvent::ConvoyUpdate(e) => convoy_update(state, s, user, e).await,
        ClientEvent::CalibrationUpdate(e) => calibration_update(state, s, user, e).await,
    };
    match result {
        Ok(()) => false,
        Err(message) => {
            refuse(s, message);
            true
        }
    }
}

fn api_message(e: ApiError) -> String {
    match e {
        ApiError::Database(_) | ApiError::Io(_) | ApiError::Internal(_) => {
            tracing::error!(error = %e, "socket event failed");
            "internal server error".to_string()
        }
        other => other.to_string(),
    }
}

fn time_sync(t: TimeSync, ack: AckSender) {
    let t1 = now_ms_f64();
    let reply = TimeSyncReply {
        t0: t.t0,
        t1,
        t2: now_ms_f64(),
    };
    if let Err(e) = ack.send(&reply) {
        tracing::debug!(error = %e, "time-sync ack failed");
    }
}

async fn join(state: &AppState, s: &Sock, user: UserId, e: JoinAudioSession) -> Result<(), String> {
    // The token says who this is; a payload naming someone else is not believed.
    if e.user_id.is_some_and(|claimed| claimed != user) {
        tracing::warn!(socket = %s.id, user, claimed = ?e.user_id, "join names another user; using the token's");
    }
    let row = service::member_session(state, &e.session_id, user)
        .await
        .map_err(api_message)?;
    if let Some(previous) = s.extensions.get::<Joined>() {
        if previous.session_id == row.id {
            // A repeated join (client retry): answer with the state again, no new history row.
            emit_to_self(
                s,
                names::MUSIC_SESSION_STATE,
                &session_state_for(state, s, &row),
            );
            emit_to_self(
                s,
                names::CURRENT_PARTICIPANTS,
                &participants_of(state, s, &row.id).await,
            );
            return Ok(());
        }
        leave_current(state, s).await;
    }
    let display_name = service::check_display_name(e.display_name.clone()).map_err(api_message)?;
    let me = public_id(s);
    state
        .db
        .participant_joined_on(
            &row.id,
            user,
            &me,
            display_name.as_deref(),
            Some(&server_id(state)),
        )
        .await
        .map_err(api_message)?;
    s.join([room(&row.id), member_room(&row.id, user)]);
    // Read again now that the socket is in the room: a change made between the first
    // read and the join (a take-control, a play) was broadcast to a room this socket was
    // not yet in, so the state it is shown must be read after the join, not before.
    let row = service::member_session(state, &row.id, user)
        .await
        .map_err(api_message)?;
    note_row(state, &row);
    s.extensions.insert(Joined {
        session_id: row.id.clone(),
    });
    tracing::info!(socket = %s.id, user, session = %row.id, "joined");
    // A DJ reconnecting on a new socket keeps the role; its socket id follows.
    let mut controller_moved = None;
    if let Some(c) = service::controller(&row)
        && c.user == user
        && c.socket_id != me
    {
        // Unless control changed meanwhile (then the newer DJ stays).
        controller_moved = set_controller(state, s, &row.id, user, c.epoch).await?;
    }
    // The state as it is after that move.
    let row = match controller_moved {
        Some(_) => service::member_session(state, &row.id, user)
            .await
            .map_err(api_message)?,
        None => row,
    };
    emit_to_self(
        s,
        names::MUSIC_SESSION_STATE,
        &session_state_for(state, s, &row),
    );
    emit_to_self(
        s,
        names::CURRENT_PARTICIPANTS,
        &participants_of(state, s, &row.id).await,
    );
    let joined = ParticipantInfo {
        socket_id: me.clone(),
        user_id: user,
        display_name,
    };
    emit_to_others(s, &row.id, names::PARTICIPANT_JOINED, &joined).await;
    if let Some(c) = controller_moved {
        let changed = MusicControllerChanged {
            controller_id: me,
            user_id: user,
            timestamp: now_ms_f64(),
            grant: service::grant_for(state, &row.id, &c),
        };
        emit_to_others(s, &row.id, names::MUSIC_CONTROLLER_CHANGED, &changed).await;
    }
    Ok(())
}

/// The session state as `s` is shown it (its own id as its handshake id).
fn session_state_for(
    state: &AppState,
    s: &Sock,
    row: &crate::db::SessionRow,
) -> jamz_proto::events::MusicSessionState {
    let mut st = service::session_state(state, row);
    st.controller_socket_id = st.controller_socket_id.map(|id| as_seen_by(s, id));
    st
}

/// Everyone connected to the session's room on any process, the asker included: the
/// open participations (the database) of the processes that have sockets in the room
/// (asked through the adapter), so that a process that died is not counted.
async fn participants_of(state: &AppState, s: &Sock, session_id: &str) -> CurrentParticipants {
    let open = match live_participants(state, session_id).await {
        Ok(open) => open,
        Err(e) => {
            tracing::error!(error = %e, "could not read the session's participants");
            Vec::new()
        }
    };
    let mut participants: Vec<ParticipantInfo> = open
        .into_iter()
        .filter(|p| p.server_id.is_some())
        .map(|p| ParticipantInfo {
            socket_id: as_seen_by(s, p.socket_id),
            user_id: p.user_id,
            display_name: p.display_name,
        })
        .collect();
    participants.sort_by(|a, b| a.socket_id.cmp(&b.socket_id));
    participants.dedup_by(|a, b| a.socket_id == b.socket_id);
    CurrentParticipants { participants }
}

async fn leave(state: &AppState, s: &Sock, e: LeaveAudioSession) -> Result<(), String> {
    joined_session(s, &e.session_id)?;
    leave_current(state, s).await;
    Ok(())
}

/// Takes `user`'s sockets out of the session (they left its group): each of this
/// process's leaves the room as if it had sent `leave-audio-session`; those on other
/// processes are disconnected (their client reconnects and can no longer join).
pub async fn evict(state: &AppState, session_id: &str, user: UserId) {
    let Some(default) = state.io.of("/") else {
        return; // the server is closing: every socket goes anyway
    };
    let sockets: Vec<Sock> = default
        .clone()
        .to(member_room(session_id, user))
        .sockets()
        .into_iter()
        .collect();
    for s in sockets {
        leave_current(state, &s).await;
    }
    // Only other processes' sockets are left in the member room now.
    if let Err(e) = default.to(member_room(session_id, user)).disconnect().await {
        tracing::warn!(user, error = %e, "could not disconnect the user's sockets elsewhere");
    }
}

/// Disconnects every socket of `user` (their tokens were revoked), on every process.
pub async fn disconnect_user(state: &AppState, user: UserId) {
    let Some(default) = state.io.of("/") else {
        return; // the server is closing: every socket goes anyway
    };
    if let Err(e) = default.to(user_room(user)).disconnect().await {
        tracing::warn!(user, error = %e, "could not disconnect the user's sockets");
    }
}

/// Leaves the joined session, if any: history row closed, the others told.
async fn leave_current(state: &AppState, s: &Sock) {
    let Some(joined) = s.extensions.remove::<Joined>() else {
        return;
    };
    let Some(user) = user_of(s) else { return };
    if let Err(e) = state
        .db
        .participant_left(&joined.session_id, &public_id(s))
        .await
    {
        tracing::error!(socket = %s.id, error = %e, "could not record leave");
    }
    let left = ParticipantLeft {
        socket_id: public_id(s),
        user_id: user,
    };
    emit_to_others(s, &joined.session_id, names::PARTICIPANT_LEFT, &left).await;
    s.leave([
        room(&joined.session_id),
        member_room(&joined.session_id, user),
    ]);
    tracing::info!(socket = %s.id, user, session = %joined.session_id, "left");
}

async fn take_control(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: MusicTakeControl,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    let row = service::member_session(state, &joined.session_id, user)
        .await
        .map_err(api_message)?;
    let me = public_id(s);
    note_row(state, &row);
    // Conditional on the epoch read: of two members racing (on two processes), one wins.
    let Some(c) = set_controller(state, s, &row.id, user, row.controller_epoch).await? else {
        return Err("another member took control at the same moment; try again".to_string());
    };
    let timestamp = now_ms_f64();
    tracing::info!(socket = %s.id, user, session = %row.id, epoch = c.epoch, "took control");
    let grant = service::grant_for(state, &row.id, &c);
    // The taker hears its own handshake id, the room the public one.
    let to_self = MusicControllerChanged {
        controller_id: s.id.to_string(),
        user_id: user,
        timestamp,
        grant: grant.clone(),
    };
    emit_to_self(s, names::MUSIC_CONTROLLER_CHANGED, &to_self);
    let to_others = MusicControllerChanged {
        controller_id: me,
        user_id: user,
        timestamp,
        grant,
    };
    emit_to_others(s, &row.id, names::MUSIC_CONTROLLER_CHANGED, &to_others).await;
    Ok(())
}

/// Makes `user` on socket `s` the DJ if the session's epoch is still `seen`: a change of
/// control, so a new epoch, with the device key `s` presented at CONNECT. `None`: another
/// change of control came first (this one did nothing).
async fn set_controller(
    state: &AppState,
    s: &Sock,
    session_id: &str,
    user: UserId,
    seen: u64,
) -> Result<Option<Controller>, String> {
    let socket_id = public_id(s);
    let device_key = s.extensions.get::<DeviceKey>().map(|k| k.0);
    let epoch = state
        .db
        .set_controller_if(session_id, seen, user, &socket_id, device_key.as_deref())
        .await
        .map_err(api_message)?;
    match epoch {
        Some(epoch) => {
            let dj = Dj {
                user: Some(user),
                epoch,
            };
            state.live.dj_changed_here(session_id, dj).await;
        }
        // Another change came first (maybe on another process): read it when needed.
        None => state.live.forget_dj(session_id),
    }
    Ok(epoch.map(|epoch| Controller {
        user,
        socket_id,
        epoch,
        device_key,
    }))
}

/// What the database says of the session's DJ and anchor, for this process's memory
/// (kept where this process knows newer).
fn note_row(state: &AppState, row: &crate::db::SessionRow) {
    state.live.note_dj(
        &row.id,
        Dj {
            user: row.controller_id,
            epoch: row.controller_epoch,
        },
    );
}

/// The DJ check for playback events, in this process's memory (read from the database
/// only when this process does not know the DJ: first use, or another process changed
/// it): the session's controller is a user, so any of that user's sockets may steer (a
/// reconnect gets a new socket id). Returns the session's playback anchor, for the
/// caller to go on with.
async fn require_dj(state: &AppState, session_id: &str, user: UserId) -> Result<Playback, String> {
    let mut read = None;
    let dj = match state.live.dj(session_id) {
        Some(dj) => dj,
        None => {
            let row = read_session(state, session_id).await?;
            note_row(state, &row);
            let dj = state.live.dj(session_id).unwrap_or(Dj {
                user: row.controller_id,
                epoch: row.controller_epoch,
            });
            read = Some(row);
            dj
        }
    };
    if dj.user != Some(user) {
        return Err("only the DJ can control playback; take control first".to_string());
    }
    // Only the DJ's events fill in the anchor: this process then writes it.
    if let Some(anchor) = state.live.playback(session_id) {
        return Ok(anchor);
    }
    let row = match read {
        Some(row) => row,
        None => read_session(state, session_id).await?,
    };
    state.live.note_playback(session_id, &row.playback);
    Ok(state.live.playback(session_id).unwrap_or(row.playback))
}

async fn read_session(state: &AppState, session_id: &str) -> Result<crate::db::SessionRow, String> {
    state
        .db
        .session(session_id)
        .await
        .map_err(api_message)?
        .ok_or_else(|| format!("no session {session_id}"))
}

fn check_position(position: f64) -> Result<(), String> {
    if position.is_finite() && position >= 0.0 {
        Ok(())
    } else {
        Err(format!(
            "position must be a non-negative number of seconds, not {position}"
        ))
    }
}

async fn control(state: &AppState, s: &Sock, user: UserId, e: MusicControl) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    check_position(e.position)?;
    if let Some(t) = &e.track {
        service::check_track(t).map_err(api_message)?;
    }
    let mut p = require_dj(state, &joined.session_id, user).await?;
    use jamz_proto::events::ControlAction::*;
    let now = now_ms_f64();
    let track = {
        if let Some(t) = &e.track {
            p.track = Some(t.clone());
        }
        match e.action {
            Play => {
                p.playing = true;
                p.started_at_ms = now;
            }
            Pause => p.playing = false,
            Seek | TrackChange => p.started_at_ms = now,
        }
        p.position = e.position;
        p.at_ms = now;
        p.track.clone()
    };
    service::save_playback(state, &joined.session_id, p, Persist::Now);
    let relay = MusicRelay {
        position: e.position,
        track,
        timestamp: e.timestamp,
        controller_id: Some(public_id(s)),
        user_id: Some(user),
    };
    emit_to_others(s, &joined.session_id, e.action.relay_event(), &relay).await;
    Ok(())
}

async fn position_sync(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: PositionSync,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    check_position(e.position)?;
    let mut playback = require_dj(state, &joined.session_id, user).await?;
    playback.position = e.position;
    playback.at_ms = now_ms_f64();
    service::save_playback(state, &joined.session_id, playback, Persist::No);
    let relay = PositionSyncRelay {
        position: e.position,
        timestamp: e.timestamp,
        user_id: Some(user),
    };
    emit_to_others(s, &joined.session_id, names::MUSIC_POSITION_SYNC, &relay).await;
    Ok(())
}

async fn playlist_update(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: PlaylistUpdate,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    service::replace_playlist(state, &joined.session_id, user, e.playlist, s)
        .await
        .map_err(api_message)?;
    Ok(())
}

async fn webrtc_signal(s: &Sock, user: UserId, e: WebrtcSignal) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    if e.from != user {
        return Err(format!(
            "webrtc-signal `from` must be your own user id ({user})"
        ));
    }
    emit_to_member(s, &joined.session_id, e.to, names::WEBRTC_SIGNAL, &e).await
}

/// Sends `event` to the sockets of member `to` in `session_id` only, on any process (the
/// sender's own socket left out); refused when `to` has none there.
async fn emit_to_member<T: serde::Serialize>(
    s: &Sock,
    session_id: &str,
    to: UserId,
    event: &str,
    data: &T,
) -> Result<(), String> {
    let targets = member_room(session_id, to);
    let found = match s.within(targets.clone()).fetch_sockets().await {
        Ok(found) => found.iter().any(|r| r.data().id != s.id),
        Err(err) => {
            tracing::warn!(error = %err, "could not ask the other processes for the addressee");
            !s.within(targets.clone())
                .sockets()
                .iter()
                .all(|o| o.id == s.id)
        }
    };
    if !found {
        return Err(format!("user {to} is not in this session"));
    }
    if let Err(err) = s.to(targets).emit(event, data).await {
        tracing::debug!(event, error = %err, "delivery to a member failed");
    }
    Ok(())
}

/// (ext) Relays one message of the relative calibration to member `target` only, with the
/// sender's user id (docs/protocol.md, "Relative calibration"). The server judges nothing
/// of the measurement: the two devices do; it only keeps the message to a member of the
/// sender's session and within the sizes carried.
async fn calibration_update(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: CalibrationUpdate,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    if e.kind == CalibrationKind::Unknown {
        return Err("unknown calibration-update kind".to_string());
    }
    e.check_size()?;
    // Membership may have ended since the join (the member left the group).
    service::member_session(state, &joined.session_id, user)
        .await
        .map_err(api_message)?;
    let target = e.target;
    let relay = CalibrationRelay {
        user_id: user,
        update: e,
    };
    emit_to_member(
        s,
        &joined.session_id,
        target,
        names::CALIBRATION_UPDATE,
        &relay,
    )
    .await
}

async fn location_update(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: LocationUpdate,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    let fix = e.fix();
    fix.validate()?;
    // Membership may have ended since the join (the member left the group).
    let row = service::member_session(state, &joined.session_id, user)
        .await
        .map_err(api_message)?;
    state
        .db
        .add_location(user, Some((&row.id, &row.group_id)), &fix)
        .await
        .map_err(api_message)?;
    // Sharing live again: back among the group's latest positions.
    state
        .db
        .set_location_hidden(&row.group_id, user, false)
        .await
        .map_err(api_message)?;
    let relay = LocationRelay {
        user_id: user,
        session_id: Some(joined.session_id.clone()),
        latitude: e.latitude,
        longitude: e.longitude,
        accuracy: e.accuracy,
        speed: e.speed,
        heading: e.heading,
        timestamp: e.timestamp,
    };
    emit_to_others(s, &joined.session_id, names::LOCATION_UPDATE, &relay).await;
    Ok(())
}

/// (ext) Relays a convoy signal to the room with the sender's user id. A regroup point
/// is not stored (it lives in the cars); `location-off` leaves the sender out of the
/// group's latest positions until they share again (docs/protocol.md, "Convoy").
async fn convoy_update(
    state: &AppState,
    s: &Sock,
    user: UserId,
    e: ConvoyUpdate,
) -> Result<(), String> {
    let joined = joined_session(s, &e.session_id)?;
    match (e.kind, e.latitude, e.longitude) {
        (ConvoyKind::RegroupSet, Some(lat), Some(lon)) => {
            jamz_proto::validate_coordinates(lat, lon)?;
        }
        (ConvoyKind::RegroupSet, _, _) => {
            return Err("regroup-set needs latitude and longitude".to_string());
        }
        (ConvoyKind::Unknown, _, _) => return Err("unknown convoy-update kind".to_string()),
        (ConvoyKind::LocationOff, _, _) => {
            let row = service::member_session(state, &joined.session_id, user)
                .await
                .map_err(api_message)?;
            state
                .db
                .set_location_hidden(&row.group_id, user, true)
                .await
                .map_err(api_message)?;
        }
        _ => {}
    }
    let relay = ConvoyRelay {
        user_id: user,
        session_id: Some(joined.session_id.clone()),
        kind: e.kind,
        latitude: e.latitude,
        longitude: e.longitude,
    };
    emit_to_others(s, &joined.session_id, names::CONVOY_UPDATE, &relay).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DJ is a user, not a socket: after a reconnect (a new socket id) the same user
    /// still steers; nobody else does, and nobody at all before someone took control.
    #[tokio::test]
    async fn only_the_dj_user_steers_from_any_of_its_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::test_state(dir.path()).await;
        let ann = state.db.create_user("ann", "a@e.test", "x").await.unwrap();
        let bob = state.db.create_user("bob", "b@e.test", "x").await.unwrap();
        state.db.create_group("g1", "A", "", ann).await.unwrap();
        state.db.create_group("g2", "B", "", ann).await.unwrap();
        let s1 = state.db.session_for_group("g1", ann).await.unwrap().id;
        let s2 = state.db.session_for_group("g2", ann).await.unwrap().id;
        let err = require_dj(&state, &s1, ann).await.unwrap_err();
        assert!(err.contains("take control first"), "{err}");
        // Another process made ann the DJ (from an old socket) and said so.
        let epoch = state
            .db
            .set_controller(&s1, ann, "old-socket", None)
            .await
            .unwrap();
        let err = require_dj(&state, &s1, ann).await.unwrap_err();
        assert!(err.contains("take control first"), "not told yet: {err}");
        state.live.remote_dj(
            &s1,
            Dj {
                user: Some(ann),
                epoch,
            },
        );
        require_dj(&state, &s1, ann).await.unwrap();
        assert!(require_dj(&state, &s1, bob).await.is_err());
        // A stale announcement (an older epoch) changes nothing.
        state.live.remote_dj(
            &s1,
            Dj {
                user: Some(bob),
                epoch: epoch - 1,
            },
        );
        assert!(require_dj(&state, &s1, bob).await.is_err());
        // Forgotten (this process lost a race): read from the database again.
        state.live.forget_dj(&s1);
        require_dj(&state, &s1, ann).await.unwrap();
        // Another session's DJ is not this one's.
        assert!(require_dj(&state, &s2, ann).await.is_err());
    }

    /// A join or an eviction still being handled while the server closes (its namespace
    /// removed) gets an answer, not a panic inside socketioxide.
    #[tokio::test]
    async fn asking_who_is_in_a_room_while_the_server_closes_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::test_state(dir.path()).await;
        let ann = state.db.create_user("ann", "a@e.test", "x").await.unwrap();
        state.db.create_group("g1", "A", "", ann).await.unwrap();
        let s1 = state.db.session_for_group("g1", ann).await.unwrap().id;
        let (_, everyone_answered) = live_servers(&state, &s1).await;
        assert!(everyone_answered, "asked with the namespace there");
        state.io.delete_ns("/");
        let (live, everyone_answered) = live_servers(&state, &s1).await;
        assert_eq!(live.len(), 1, "this process only: {live:?}");
        assert!(!everyone_answered, "nobody else could be asked");
        assert!(live_participants(&state, &s1).await.unwrap().is_empty());
        disconnect_user(&state, ann).await;
        evict(&state, &s1, ann).await;
        crate::shutdown::notify(&state.io).await;
    }

    #[test]
    fn positions_must_be_finite_and_not_negative() {
        for ok in [0.0, 0.5, 7_200.0] {
            assert!(check_position(ok).is_ok(), "{ok}");
        }
        for bad in [-0.001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = check_position(bad).unwrap_err();
            assert!(e.contains("non-negative"), "{bad}: {e}");
        }
    }

    /// Where a late joiner is told playback stands: moving on while playing, still while
    /// paused, never before the announced instant.
    #[test]
    fn playback_moves_on_only_while_playing() {
        let mut p = Playback {
            position: 10.0,
            at_ms: 1_000.0,
            playing: true,
            ..Playback::default()
        };
        assert_eq!(p.position_at(3_500.0), 12.5);
        // A start announced for later (the control lead) is not run backwards.
        assert_eq!(p.position_at(500.0), 10.0);
        p.playing = false;
        assert_eq!(p.position_at(3_500.0), 10.0);
    }
}

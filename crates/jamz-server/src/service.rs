//! Session operations shared by the REST routes and the Socket.IO events:
//! membership, the session document, playlist changes and their broadcast.
use jamz_proto::events::{MusicSessionState, PlaylistRelay, names};
use jamz_proto::{CurrentlyPlaying, MusicState, Session, Track, UserId};

use crate::clock::iso;
use crate::db::SessionRow;
use crate::error::{ApiError, ApiResult};
use crate::live::Controller;
use crate::playlist;
use crate::state::{AppState, room};

/// The session, if `user` belongs to its group; 404 / 403 otherwise.
pub async fn member_session(
    state: &AppState,
    session_id: &str,
    user: UserId,
) -> ApiResult<SessionRow> {
    let session = state
        .db
        .session(session_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no session {session_id}")))?;
    if !state.db.is_member(&session.group_id, user).await? {
        return Err(ApiError::Forbidden(
            "you are not a member of this session's group".into(),
        ));
    }
    Ok(session)
}

/// The current DJ, as the database has it.
pub fn controller(session: &SessionRow) -> Option<Controller> {
    session.controller_id.map(|user| Controller {
        user,
        socket_id: session.controller_socket_id.clone().unwrap_or_default(),
        epoch: session.controller_epoch,
        device_key: session.controller_device_key.clone(),
    })
}

pub fn is_dj(session: &SessionRow, user: UserId) -> bool {
    controller(session).is_some_and(|c| c.user == user)
}

/// The session's playback anchor: this process's if it knows one (the newest, maybe not
/// written yet), else the database's.
pub fn playback(state: &AppState, session: &SessionRow) -> crate::live::Playback {
    state
        .live
        .playback(&session.id)
        .unwrap_or_else(|| session.playback.clone())
}

/// Stores `playback` as the session's anchor: at once for this process, in the database
/// by the session's writer in the background (the newest anchor at each write, so a
/// burst of seeks does not queue a write each; position-syncs at most every
/// [`crate::live::COALESCE`], and not at all in a single process).
pub fn save_playback(
    state: &AppState,
    session_id: &str,
    playback: crate::live::Playback,
    persist: crate::live::Persist,
) {
    if !state.live.offer_playback(session_id, playback, persist) {
        return;
    }
    let (state, id) = (state.clone(), session_id.to_string());
    tokio::spawn(async move {
        let mut last_write: Option<tokio::time::Instant> = None;
        while let Some((_, _, may_wait)) = state.live.playback_to_write(&id) {
            if may_wait {
                // Position-syncs wait, unless a change (play, pause, seek, track) comes:
                // other processes read it at a join.
                let urgent = state.live.urgent(&id);
                tokio::select! {
                    () = tokio::time::sleep(crate::live::COALESCE) => {}
                    () = urgent.notified() => {}
                }
            } else if let Some(last) = last_write.filter(|_| !state.live.clustered()) {
                // One process (its memory is the truth; the database is for a restart):
                // a DJ seeking many times a second costs the database one write per
                // SPACING (the newest anchor), not one each, as the relays share its
                // CPU. Other processes read the database at a join: written at once.
                tokio::time::sleep_until(last + crate::live::SPACING).await;
            }
            last_write = Some(tokio::time::Instant::now());
            let Some((playback, generation, _)) = state.live.playback_to_write(&id) else {
                break;
            };
            if let Err(e) = state.db.save_playback(&id, &playback).await {
                tracing::error!(session = %id, error = %e, "could not store the playback anchor");
            }
            state.live.playback_written(&id, generation);
        }
    });
}

fn currently_playing(
    state: &AppState,
    session: &SessionRow,
) -> (Option<CurrentlyPlaying>, bool, f64) {
    let now = crate::clock::now_ms_f64();
    let playback = &playback(state, session);
    let playing = playback.playing;
    let current = playback.track.clone().map(|track| CurrentlyPlaying {
        track: Some(track),
        position: playback.position_at(now),
        started_at: Some(jamz_proto::DateValue::Millis(playback.started_at_ms)),
        controlled_by: None,
    });
    (current, playing, now)
}

/// The REST session document.
pub async fn session_document(state: &AppState, row: &SessionRow) -> ApiResult<Session> {
    // Open participations of live processes (those of a process that died are closed
    // first, so the history below shows them ended).
    let mut active: Vec<UserId> = crate::realtime::live_participants(state, &row.id)
        .await?
        .into_iter()
        .map(|p| p.user_id)
        .collect();
    let participants = state.db.participants(&row.id).await?;
    active.sort_unstable();
    active.dedup();
    let ctrl = controller(row);
    let (mut current, is_playing, _) = currently_playing(state, row);
    if let (Some(c), Some(cur)) = (&ctrl, current.as_mut()) {
        cur.controlled_by = Some(c.user);
    }
    Ok(Session {
        id: row.id.clone(),
        group_id: row.group_id.clone(),
        creator_id: Some(row.creator_id),
        active_participants: active,
        participants,
        music: MusicState {
            playlist: row.playlist.clone(),
            currently_playing: current,
            controller_id: ctrl.map(|c| c.user),
            is_playing,
        },
        created_at: Some(iso(row.created_at)),
        last_activity: Some(iso(row.last_activity)),
    })
}

/// What a joiner receives.
pub fn session_state(state: &AppState, row: &SessionRow) -> MusicSessionState {
    let ctrl = controller(row);
    let (current, is_playing, now) = currently_playing(state, row);
    MusicSessionState {
        playlist: row.playlist.clone(),
        currently_playing: current,
        controller_id: ctrl.as_ref().map(|c| c.user),
        is_playing,
        grant: ctrl.as_ref().and_then(|c| grant_for(state, &row.id, c)),
        controller_socket_id: ctrl.map(|c| c.socket_id),
        server_time: Some(now),
        rest_broadcasts: true,
    }
}

/// A fresh grant for the DJ `c` of session `session_id` (docs/protocol.md, "Controller
/// grants").
pub fn grant_for(
    state: &AppState,
    session_id: &str,
    c: &Controller,
) -> Option<jamz_proto::grant::ControllerGrant> {
    state.grants.grant(
        session_id,
        c.user,
        c.epoch,
        c.device_key.as_deref(),
        u64::try_from(crate::clock::now_ms()).unwrap_or(0),
    )
}

/// Who sent a change, for deciding who hears about it.
pub enum Origin<'a> {
    /// A REST call: everyone in the room hears.
    Rest,
    /// A socket event: everyone but that socket hears (docs/protocol.md: "the others").
    Socket(&'a crate::cluster::Sock),
}

async fn broadcast_playlist(
    state: &AppState,
    session_id: &str,
    playlist: &[Track],
    origin: Origin<'_>,
) {
    let payload = PlaylistRelay {
        playlist: playlist.to_vec(),
    };
    let result = match origin {
        // The server closing has no namespace left to tell (`SocketIo::to` would panic).
        Origin::Rest => match state.io.of("/") {
            Some(default) => {
                default
                    .to(room(session_id))
                    .emit(names::PLAYLIST_UPDATE, &payload)
                    .await
            }
            None => return,
        },
        Origin::Socket(s) => {
            s.to(room(session_id))
                .emit(names::PLAYLIST_UPDATE, &payload)
                .await
        }
    };
    if let Err(e) = result {
        tracing::warn!(session = session_id, error = %e, "broadcast playlist-update failed");
    }
}

/// Longest title or artist of a track (characters).
pub const MAX_TAG_CHARS: usize = 300;
/// Longest URL (track, album art, preview).
pub const MAX_URL_CHARS: usize = 2048;
/// Longest id-like field (track id, YouTube id, content hash).
pub const MAX_ID_CHARS: usize = 128;
/// Longest display name in a session.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

fn check_len(name: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::Unprocessable(format!(
            "{name} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Only web URLs: a `javascript:` or `file:` URL handed to a browser's player
/// or `<img>` is an attack, not a track.
fn check_url(name: &str, value: &str) -> ApiResult<()> {
    check_len(name, value, MAX_URL_CHARS)?;
    let v = value.trim().to_ascii_lowercase();
    if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "{name} must be an http or https URL"
        )))
    }
}

/// The limits every track obeys, wherever it comes from (REST, a playlist or a
/// control event).
pub fn check_track(track: &Track) -> ApiResult<()> {
    check_len("track id", &track.id, MAX_ID_CHARS)?;
    check_len("title", &track.title, MAX_TAG_CHARS)?;
    check_len("artist", &track.artist, MAX_TAG_CHARS)?;
    check_url("url", &track.url)?;
    for (name, v) in [
        ("album_art", &track.album_art),
        ("spotify_preview_url", &track.spotify_preview_url),
    ] {
        if let Some(v) = v {
            check_url(name, v)?;
        }
    }
    for (name, v) in [("youtube_id", &track.youtube_id), ("sha256", &track.sha256)] {
        if let Some(v) = v {
            check_len(name, v, MAX_ID_CHARS)?;
        }
    }
    if track.duration.is_some_and(|d| !d.is_finite() || d < 0.0) {
        return Err(ApiError::Unprocessable(
            "track duration must be a non-negative number".into(),
        ));
    }
    Ok(())
}

/// A display name as stored and relayed: trimmed, within the limit.
pub fn check_display_name(name: Option<String>) -> ApiResult<Option<String>> {
    let name = name.map(|n| n.trim().to_string());
    if let Some(n) = &name {
        check_len("display_name", n, MAX_DISPLAY_NAME_CHARS)?;
    }
    Ok(name)
}

/// Checks a proposed track and gives it an id if it has none. `uploaded_by` is
/// the caller (from the token), whatever the client wrote there.
pub fn prepare_track(mut track: Track, added_by: UserId) -> ApiResult<Track> {
    if track.title.trim().is_empty() {
        return Err(ApiError::Unprocessable("a track needs a title".into()));
    }
    check_track(&track)?;
    if track.id.trim().is_empty() {
        track.id = new_object_id();
    }
    track.uploaded_by = Some(added_by);
    Ok(track)
}

/// A 24-hex id, the shape of the web backend's MongoDB ObjectIds.
pub fn new_object_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

/// How often a playlist change is tried again when another process changed the playlist
/// between this one's read and write.
const PLAYLIST_WRITE_TRIES: usize = 16;

/// Reads the session (checking `user` is a member, if given), lets `change` compute the
/// new playlist from it (`None`: nothing to change) and stores it if the stored playlist
/// is still the one read; else reads again. Returns the playlist and whether it changed.
async fn change_playlist(
    state: &AppState,
    session_id: &str,
    member: Option<UserId>,
    mut change: impl FnMut(&SessionRow) -> ApiResult<Option<Vec<Track>>>,
) -> ApiResult<(Vec<Track>, bool)> {
    // Serializes this process's writers; other processes' are caught by the
    // conditional write.
    let _guard = state.live.lock_playlist(session_id).await;
    for _ in 0..PLAYLIST_WRITE_TRIES {
        let row = match member {
            Some(user) => member_session(state, session_id, user).await?,
            None => state
                .db
                .session(session_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no session {session_id}")))?,
        };
        let Some(list) = change(&row)? else {
            return Ok((row.playlist, false));
        };
        if state
            .db
            .save_playlist_if(session_id, &row.playlist, &list)
            .await?
        {
            return Ok((list, true));
        }
        tracing::debug!(
            session = session_id,
            "playlist changed by another process meanwhile; reading it again"
        );
    }
    Err(ApiError::Busy(1))
}

/// Appends (any member). Returns the playlist and whether the track was added.
pub async fn append_track(
    state: &AppState,
    session_id: &str,
    track: Track,
    origin: Origin<'_>,
) -> ApiResult<(Vec<Track>, bool)> {
    let (list, added) = change_playlist(state, session_id, None, |row| {
        let mut list = row.playlist.clone();
        Ok(playlist::append(&mut list, track.clone()).then_some(list))
    })
    .await?;
    if added {
        broadcast_playlist(state, session_id, &list, origin).await;
    }
    Ok((list, added))
}

/// Deletes a track (DJ only).
pub async fn remove_track(
    state: &AppState,
    session_id: &str,
    user: UserId,
    track_id: &str,
) -> ApiResult<Vec<Track>> {
    let (list, _) = change_playlist(state, session_id, Some(user), |row| {
        if !is_dj(row, user) {
            return Err(ApiError::Forbidden("only the DJ may delete tracks".into()));
        }
        let mut list = row.playlist.clone();
        let before = list.len();
        list.retain(|t| t.id != track_id);
        if list.len() == before {
            return Err(ApiError::NotFound(format!(
                "track {track_id} is not in the playlist"
            )));
        }
        Ok(Some(list))
    })
    .await?;
    broadcast_playlist(state, session_id, &list, Origin::Rest).await;
    Ok(list)
}

/// Reorders the playlist (DJ only).
pub async fn reorder_tracks(
    state: &AppState,
    session_id: &str,
    user: UserId,
    order: &[String],
) -> ApiResult<Vec<Track>> {
    let (list, _) = change_playlist(state, session_id, Some(user), |row| {
        if !is_dj(row, user) {
            return Err(ApiError::Forbidden("only the DJ may reorder tracks".into()));
        }
        playlist::reorder(&row.playlist, order)
            .map(Some)
            .map_err(ApiError::Unprocessable)
    })
    .await?;
    broadcast_playlist(state, session_id, &list, Origin::Rest).await;
    Ok(list)
}

/// A whole playlist sent over the socket (`playlist-update`): the DJ may change
/// anything; others may only append. Returns the stored playlist.
pub async fn replace_playlist(
    state: &AppState,
    session_id: &str,
    user: UserId,
    proposed: Vec<Track>,
    socket: &crate::cluster::Sock,
) -> ApiResult<Vec<Track>> {
    let mut checked = Vec::with_capacity(proposed.len());
    for t in proposed {
        checked.push(prepare_track(t, user)?);
    }
    let (list, _) = change_playlist(state, session_id, Some(user), |row| {
        let mut prepared = checked.clone();
        // A track already in the playlist keeps who added it.
        let added_by: std::collections::HashMap<&str, Option<UserId>> = row
            .playlist
            .iter()
            .map(|t| (t.id.as_str(), t.uploaded_by))
            .collect();
        for t in &mut prepared {
            if let Some(by) = added_by.get(t.id.as_str()) {
                t.uploaded_by = *by;
            }
        }
        let list = if is_dj(row, user) {
            playlist::dedupe(prepared)
        } else {
            playlist::merge_member_proposal(&row.playlist, prepared).map_err(ApiError::Forbidden)?
        };
        Ok(Some(list))
    })
    .await?;
    broadcast_playlist(state, session_id, &list, Origin::Socket(socket)).await;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn track(i: usize) -> Track {
        Track {
            id: format!("t{i}"),
            title: format!("Track {i}"),
            url: format!("http://cdn.example/{i}.mp3"),
            ..Track::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_sessions_append_completes_while_a_huge_reorder_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::test_state(dir.path()).await;
        let ann = state
            .db
            .create_user("ann", "ann@e.test", "x")
            .await
            .unwrap();
        state.db.create_group("ga", "A", "", ann).await.unwrap();
        state.db.create_group("gb", "B", "", ann).await.unwrap();
        let a = state.db.session_for_group("ga", ann).await.unwrap().id;
        let b = state.db.session_for_group("gb", ann).await.unwrap().id;
        let tracks: Vec<Track> = (0..40_000).map(track).collect();
        state.db.save_playlist(&a, &tracks).await.unwrap();
        state.db.set_controller(&a, ann, "dj", None).await.unwrap();
        let order: Vec<String> = tracks.iter().rev().map(|t| t.id.clone()).collect();

        // Session A's playlist is busy (held here), so its 40,000-track reorder
        // is in flight: started and waiting inside A.
        let held = state.live.lock_playlist(&a).await;
        let reorder = tokio::spawn({
            let (state, a) = (state.clone(), a.clone());
            async move { reorder_tracks(&state, &a, ann, &order).await }
        });
        // Session B's append finishes meanwhile: it never waits for A.
        let appended = tokio::time::timeout(
            Duration::from_secs(60),
            append_track(&state, &b, track(1), Origin::Rest),
        )
        .await
        .expect("B's append waited for A's reorder")
        .unwrap();
        assert!(appended.1);
        assert_eq!(appended.0.len(), 1);
        assert!(!reorder.is_finished(), "A's reorder was still in flight");
        drop(held);
        let reordered = reorder.await.unwrap().unwrap();
        assert_eq!(reordered.first().map(|t| t.id.as_str()), Some("t39999"));
        assert_eq!(reordered.last().map(|t| t.id.as_str()), Some("t0"));
    }
}

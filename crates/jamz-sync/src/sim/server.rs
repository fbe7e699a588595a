//! A simulated server relaying like jamz-server: DJ authority, relays to the others,
//! playback memory for joiners, time-sync acks at its own clock, playlist REST routes.
use jamz_proto::events::{
    ClientEvent, ControlAction, CurrentParticipants, MusicControllerChanged, MusicError,
    MusicRelay, MusicSessionState, ParticipantInfo, ParticipantLeft, PlaylistRelay,
    PositionSyncRelay, names,
};
use jamz_proto::{CurrentlyPlaying, Track, UserId};
use serde::Serialize;

use crate::api::RestCall;

use super::clock::DeviceClock;

/// What the server sends to one device.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    Event {
        name: &'static str,
        data: serde_json::Value,
    },
    TimeSyncAck {
        t0: f64,
        t1: f64,
        t2: f64,
    },
    RestAnswer(Result<Vec<Track>, String>),
}

/// Who sent an event: a device, on a socket, as a user.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub dev: usize,
    pub socket: &'a str,
    pub user: UserId,
}

#[derive(Debug, Clone)]
struct Member {
    dev: usize,
    socket: String,
    user: UserId,
    name: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Playback {
    track: Option<Track>,
    position: f64,
    at_ms: f64,
    playing: bool,
}

#[derive(Debug, Clone)]
pub struct SimServer {
    pub clock: DeviceClock,
    /// Whether it answers `time-sync` (the extension).
    pub time_sync: bool,
    /// Whether `music-session-state` carries `server_time`.
    pub server_time_in_state: bool,
    room: Vec<Member>,
    controller: Option<(UserId, String)>,
    playback: Playback,
    playlist: Vec<Track>,
    next_id: u64,
}

type Out = Vec<(usize, ServerMsg)>;

fn event<T: Serialize>(name: &'static str, v: &T) -> ServerMsg {
    ServerMsg::Event {
        name,
        data: serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
    }
}

impl SimServer {
    pub fn new(clock: DeviceClock) -> Self {
        Self {
            clock,
            time_sync: true,
            server_time_in_state: true,
            room: Vec::new(),
            controller: None,
            playback: Playback::default(),
            playlist: Vec::new(),
            next_id: 1,
        }
    }

    fn now(&self, true_ms: f64) -> f64 {
        self.clock.local(true_ms)
    }

    /// A socket went away.
    pub fn disconnect(&mut self, socket: &str, out: &mut Out) {
        let Some(i) = self.room.iter().position(|m| m.socket == socket) else {
            return;
        };
        let m = self.room.remove(i);
        let left = ParticipantLeft {
            socket_id: m.socket,
            user_id: m.user,
        };
        for o in &self.room {
            out.push((o.dev, event(names::PARTICIPANT_LEFT, &left)));
        }
    }

    /// An event from `from` arrives at true time `t`.
    pub fn on_event(
        &mut self,
        t: f64,
        from: &Sender<'_>,
        name: &str,
        data: serde_json::Value,
        out: &mut Out,
    ) {
        let Sender { dev, socket, user } = *from;
        let now = self.now(t);
        let ev = match ClientEvent::decode(name, data) {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => {
                out.push((
                    dev,
                    event(
                        names::MUSIC_ERROR,
                        &MusicError {
                            error: e.to_string(),
                        },
                    ),
                ));
                return;
            }
        };
        let others = |room: &[Member]| -> Vec<usize> {
            room.iter()
                .filter(|m| m.socket != socket)
                .map(|m| m.dev)
                .collect()
        };
        let is_dj = self.controller.as_ref().is_some_and(|(u, _)| *u == user);
        match ev {
            ClientEvent::JoinAudioSession(j) => {
                self.room.retain(|m| m.socket != socket);
                let me = Member {
                    dev,
                    socket: socket.to_string(),
                    user,
                    name: j.display_name,
                };
                let info = ParticipantInfo {
                    socket_id: me.socket.clone(),
                    user_id: user,
                    display_name: me.name.clone(),
                };
                self.room.push(me);
                let p = &self.playback;
                let state = MusicSessionState {
                    playlist: self.playlist.clone(),
                    currently_playing: p.track.clone().map(|track| CurrentlyPlaying {
                        track: Some(track),
                        position: if p.playing {
                            p.position + ((now - p.at_ms) / 1000.0).max(0.0)
                        } else {
                            p.position
                        },
                        started_at: None,
                        controlled_by: None,
                    }),
                    controller_id: self.controller.as_ref().map(|c| c.0),
                    is_playing: p.playing,
                    controller_socket_id: self.controller.as_ref().map(|c| c.1.clone()),
                    server_time: self.server_time_in_state.then_some(now),
                    grant: None,
                    // The seeds' backend: REST changes are told by their client.
                    rest_broadcasts: false,
                };
                out.push((dev, event(names::MUSIC_SESSION_STATE, &state)));
                let list = CurrentParticipants {
                    participants: self
                        .room
                        .iter()
                        .map(|m| ParticipantInfo {
                            socket_id: m.socket.clone(),
                            user_id: m.user,
                            display_name: m.name.clone(),
                        })
                        .collect(),
                };
                out.push((dev, event(names::CURRENT_PARTICIPANTS, &list)));
                for o in others(&self.room) {
                    out.push((o, event(names::PARTICIPANT_JOINED, &info)));
                }
            }
            ClientEvent::LeaveAudioSession(_) => self.disconnect(socket, out),
            ClientEvent::MusicTakeControl(_) => {
                self.controller = Some((user, socket.to_string()));
                let c = MusicControllerChanged {
                    controller_id: socket.to_string(),
                    user_id: user,
                    timestamp: now,
                    grant: None,
                };
                for m in &self.room {
                    out.push((m.dev, event(names::MUSIC_CONTROLLER_CHANGED, &c)));
                }
            }
            ClientEvent::MusicControl(c) => {
                if !is_dj {
                    out.push((dev, dj_only()));
                    return;
                }
                let p = &mut self.playback;
                if let Some(t) = &c.track {
                    p.track = Some(t.clone());
                }
                match c.action {
                    ControlAction::Play => p.playing = true,
                    ControlAction::Pause => p.playing = false,
                    ControlAction::Seek | ControlAction::TrackChange => {}
                }
                p.position = c.position;
                p.at_ms = now;
                let relay = MusicRelay {
                    position: c.position,
                    track: p.track.clone(),
                    timestamp: c.timestamp,
                    controller_id: Some(socket.to_string()),
                    user_id: Some(user),
                };
                for o in others(&self.room) {
                    out.push((o, event(c.action.relay_event(), &relay)));
                }
            }
            ClientEvent::PositionSync(s) => {
                if !is_dj {
                    out.push((dev, dj_only()));
                    return;
                }
                self.playback.position = s.position;
                self.playback.at_ms = now;
                let relay = PositionSyncRelay {
                    position: s.position,
                    timestamp: s.timestamp,
                    user_id: Some(user),
                };
                for o in others(&self.room) {
                    out.push((o, event(names::MUSIC_POSITION_SYNC, &relay)));
                }
            }
            ClientEvent::PlaylistUpdate(u) => {
                let relay = PlaylistRelay {
                    playlist: u.playlist,
                };
                for o in others(&self.room) {
                    out.push((o, event(names::PLAYLIST_UPDATE, &relay)));
                }
            }
            ClientEvent::TimeSync(ts) => {
                if self.time_sync {
                    out.push((
                        dev,
                        ServerMsg::TimeSyncAck {
                            t0: ts.t0,
                            t1: now,
                            t2: now + 0.02,
                        },
                    ));
                }
            }
            ClientEvent::WebrtcSignal(_)
            | ClientEvent::LocationUpdate(_)
            | ClientEvent::ConvoyUpdate(_)
            | ClientEvent::CalibrationUpdate(_) => {}
        }
    }

    /// A REST call from device `dev` (user `user`).
    pub fn on_rest(&mut self, dev: usize, user: UserId, call: RestCall, out: &mut Out) {
        let is_dj = self.controller.as_ref().is_some_and(|(u, _)| *u == user);
        let result = match call {
            RestCall::AppendTrack { mut track, .. } => {
                if self.playlist.iter().any(|t| t.is_duplicate_of(&track)) {
                    Err("409 duplicate".to_string())
                } else {
                    if track.id.is_empty() {
                        track.id = format!("t{}", self.next_id);
                        self.next_id += 1;
                    }
                    self.playlist.push(track);
                    Ok(())
                }
            }
            RestCall::DeleteTrack { track_id, .. } if is_dj => {
                self.playlist.retain(|t| t.id != track_id);
                Ok(())
            }
            RestCall::Reorder { order, .. } if is_dj => {
                let mut out_list = Vec::new();
                for id in &order {
                    if let Some(t) = self.playlist.iter().find(|t| &t.id == id) {
                        out_list.push(t.clone());
                    }
                }
                if out_list.len() == self.playlist.len() {
                    self.playlist = out_list;
                    Ok(())
                } else {
                    Err("400 not a permutation".to_string())
                }
            }
            RestCall::DeleteTrack { .. } | RestCall::Reorder { .. } => {
                Err("403 only the DJ".to_string())
            }
        };
        match result {
            // The seeds' flow: the change is stored and answered; the client that made it
            // tells the others (`playlist-update`).
            Ok(()) => out.push((dev, ServerMsg::RestAnswer(Ok(self.playlist.clone())))),
            Err(e) => out.push((dev, ServerMsg::RestAnswer(Err(e)))),
        }
    }
}

fn dj_only() -> ServerMsg {
    event(
        names::MUSIC_ERROR,
        &MusicError {
            error: "only the DJ may control playback".to_string(),
        },
    )
}

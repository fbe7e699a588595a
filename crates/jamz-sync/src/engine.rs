//! The engine: session state, the rules, the DJ's timeline, and this device's playout.
use std::collections::{BTreeMap, VecDeque};

use jamz_proto::events::{
    ControlAction, JoinAudioSession, MusicControl, MusicRelay, MusicSessionState, MusicTakeControl,
    PlaylistUpdate, PositionSync, PositionSyncRelay,
};
use jamz_proto::events::{ConvoyRelay, LocationRelay, TimeSync, TimeSyncReply};
use jamz_proto::mesh::{
    MeshControl, MeshEnvelope, MeshPayload, MeshPlaylist, MeshPositionSync, MeshRejoin,
    SeenSequences, StateHello, kinds,
};
use jamz_proto::{Event, ServerEvent, Track, UserId};

use crate::api::*;
use crate::calibration::peer::{self, PeerCalibration};
use crate::clock::ClockSync;
use crate::constants::*;
use crate::error::{DjName, SyncError};
use crate::external::{Correction, ExternalPlayout};
use crate::location::{Ctx, Happening, LocationState};
use crate::mesh::{Peers, RecentControls, SeenSignals, fnv1a};
use crate::playlist::Playlist;
use crate::playout::{Decision, Playout};
use crate::sync_meter::{SyncMeter, SyncReading};
use crate::timeline::Timeline;
use crate::trust::{Acting, Admitted, Gate, Rejection, ServerKey};

#[derive(Debug, Clone, PartialEq)]
struct Controller {
    user_id: UserId,
    /// The DJ's socket (the seeds key the controller by socket).
    socket_id: Option<String>,
}

/// What was last handed to the player.
#[derive(Debug, Clone, PartialEq)]
struct Started {
    track_id: String,
    /// Local instant the start is due (may be in the past).
    at: LocalTime,
}

/// One device's session engine. See [`crate::api`] for the contract.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    session_id: Option<String>,
    socket_id: Option<String>,
    /// This engine's earlier sockets: a DJ that reconnects is still the DJ.
    old_sockets: VecDeque<String>,
    connected: bool,
    playlist: Playlist,
    participants: Vec<ParticipantView>,
    controller: Option<Controller>,
    timeline: Option<Timeline>,
    /// The server clock estimate in use: the server's own, or (while the server is away)
    /// the one drawn from `time-sync` with the DJ over the mesh (see `mesh_clock`).
    clock: ClockSync,
    /// The estimate not in use: the mesh's while it settles, the server's while the
    /// mesh's is in use.
    spare_clock: ClockSync,
    /// `clock` is the one drawn over the mesh.
    clock_via_mesh: bool,
    /// The peer probed over the mesh for the server's time (the DJ), while the server is away.
    mesh_ref: Option<UserId>,
    playout: Playout,
    /// This device's offset to the group, for the faces.
    meter: SyncMeter,
    started: Option<Started>,
    /// The track waiting for its bytes (`Input::Buffering`), if any.
    buffering: Option<String>,
    /// The bytes the wait was for are there again (the player may still be catching up).
    bytes_back: bool,
    /// When they came back (local): silence right after it is the player catching up,
    /// not a lost start.
    buffered_at: Option<LocalTime>,
    /// The track this device cannot play and has said so (`not-playable`), once per track.
    silent_for: Option<String>,
    /// The external video player's loop, the track it was told to play, and the track
    /// whose video it failed to play (silent for it).
    external: ExternalPlayout,
    external_track: Option<String>,
    external_failed: Option<String>,
    next_audio_query: Option<LocalTime>,
    /// The next periodic `playback` notification (while playing).
    next_playback_report: Option<LocalTime>,
    /// When the playing track ends here (local), if its duration is known.
    end_timer: Option<LocalTime>,
    /// The player's last report of what it plays: (local instant, what).
    last_heard: Option<(LocalTime, Heard)>,
    next_position_sync: Option<LocalTime>,
    /// The DJ's last control that left the group paused, as it went over the mesh: sent
    /// again as the paused DJ's heartbeat while the server is away (see
    /// `send_position_sync`).
    paused_control: Option<(ControlAction, MeshControl)>,
    /// When the DJ sends the track change at the end of the current track, and for which track.
    auto_advance: Option<(LocalTime, String)>,
    /// A joiner waits until this instant (at most) for a clock estimate and an exact anchor.
    join_wait: Option<LocalTime>,
    /// The next start is a late joiner's (tighter limits for a few seconds).
    joining: bool,
    /// The output device is away: nothing can be audible, and no restart would help.
    output_lost: bool,
    /// The tier last announced, and why the link went down last.
    tier: Option<Tier>,
    down_reason: String,
    reported_source: Option<ClockSource>,
    reported_samples: u64,
    /// The peers whose mesh link is open.
    peers: Peers,
    /// Controls applied lately, to recognise the socket and mesh copies of one.
    recent: RecentControls,
    /// The timeline came from the DJ over the mesh since the socket was lost: the
    /// server's memory, when it returns, may be older than it.
    mesh_timeline: bool,
    /// The server tells the room of REST playlist changes itself (its session state says
    /// so): this device then never repeats one with `playlist-update`.
    rest_broadcasts: bool,
    /// A REST playlist change was answered while the socket was down: the room hears the
    /// playlist once this device has joined again (never the old answer, which a later
    /// change or another DJ may have replaced by then).
    playlist_echo_owed: bool,
    /// Who is obeyed over the mesh: the server's key and DJ grant, the succession rule.
    gate: Gate,
    /// When anything was last admitted from each member over the mesh (local ms).
    heard: BTreeMap<UserId, LocalTime>,
    /// The DJ last announced (`controller` notification).
    announced_dj: Option<UserId>,
    /// Refused mesh messages, per link and reason: when last reported, and how many since.
    refusals: BTreeMap<(UserId, &'static str), (LocalTime, u64)>,
    /// The sequence number of this member's next mesh message.
    next_sequence: u64,
    /// The `(from, sequence)` of every mesh message admitted, whichever link brought it:
    /// a copy over another path (or replayed) is dropped, and only the first is relayed.
    seen: SeenSequences,
    /// Signals carried over the mesh lately (their other copies are dropped).
    seen_signals: SeenSignals,
    /// Peers whose link was set up by signals neither the server carried nor the DJ's
    /// device signed: nothing proves who is on it, so what comes over it is judged as
    /// relayed (docs/mesh-trust.md, "Signaling over the mesh").
    unvouched: std::collections::BTreeSet<UserId>,
    /// Started from a kept session with the server gone: asking peers for links until the
    /// socket is up (docs/protocol.md, "Rejoining without the server").
    rejoining: bool,
    next_rejoin: Option<LocalTime>,
    /// Which kept address the next straight `mesh-rejoin` goes to (round robin).
    rejoin_turn: usize,
    /// Where each peer's end of its mesh link was (for the kept session).
    peer_addresses: BTreeMap<UserId, std::net::SocketAddr>,
    /// Peers reached straight at their mesh socket, whose link is not open yet: their
    /// signals go there.
    direct: BTreeMap<UserId, std::net::SocketAddr>,
    actions: VecDeque<Action>,
    stats: EngineStats,
    /// Location sharing and the convoy.
    location: LocationState,
    /// The relative calibration's runs, as listener and as player.
    peer_calibration: PeerCalibration,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let mut engine = Self {
            location: LocationState::new(cfg.location),
            session_id: cfg.session_id.clone(),
            gate: Gate::new(cfg.session_id.clone().unwrap_or_default()),
            cfg,
            socket_id: None,
            old_sockets: VecDeque::new(),
            connected: false,
            playlist: Playlist::default(),
            participants: Vec::new(),
            controller: None,
            timeline: None,
            clock: ClockSync::default(),
            spare_clock: ClockSync::default(),
            clock_via_mesh: false,
            mesh_ref: None,
            playout: Playout::default(),
            meter: SyncMeter::default(),
            started: None,
            buffering: None,
            bytes_back: false,
            buffered_at: None,
            silent_for: None,
            external: ExternalPlayout::default(),
            external_track: None,
            external_failed: None,
            next_audio_query: None,
            next_playback_report: None,
            end_timer: None,
            last_heard: None,
            next_position_sync: None,
            paused_control: None,
            auto_advance: None,
            join_wait: None,
            joining: false,
            output_lost: false,
            tier: None,
            down_reason: "connecting".to_string(),
            reported_source: None,
            reported_samples: 0,
            peers: Peers::default(),
            recent: RecentControls::default(),
            mesh_timeline: false,
            rest_broadcasts: false,
            playlist_echo_owed: false,
            heard: BTreeMap::new(),
            announced_dj: None,
            refusals: BTreeMap::new(),
            next_sequence: 0, // set below, from `cfg`
            seen: SeenSequences::default(),
            seen_signals: SeenSignals::default(),
            unvouched: std::collections::BTreeSet::new(),
            rejoining: false,
            next_rejoin: None,
            rejoin_turn: 0,
            peer_addresses: BTreeMap::new(),
            direct: BTreeMap::new(),
            actions: VecDeque::new(),
            stats: EngineStats::default(),
            peer_calibration: PeerCalibration::default(),
        };
        engine.next_sequence = engine.cfg.mesh_first_sequence;
        engine
    }

    // ------------------------------------------------------------------ the contract

    /// Feeds one input at local time `now`. Drain [`Engine::poll`] afterwards.
    pub fn handle(&mut self, now: LocalTime, input: Input) {
        if !now.is_finite() {
            self.error(None, SyncError::InvalidTimestamp { timestamp: now });
            return;
        }
        match input {
            Input::SessionLoaded(s) => self.on_session_loaded(*s),
            Input::Connected { socket_id } => {
                self.on_connected(now, socket_id);
                self.location_happened(now, Happening::Connected);
            }
            Input::Disconnected { reason } => {
                self.connected = false;
                self.down_reason = reason;
                self.server_clock().on_disconnected();
                self.location_happened(now, Happening::Disconnected);
            }
            Input::Server(ev) => self.on_server(now, ev),
            Input::TimeSyncReply { t0, t1, t2, t3 } => {
                if self.server_clock().on_reply(t0, t1, t2, t3) {
                    self.stats.time_sync_samples = self.server_clock().samples();
                }
                self.location_happened(now, Happening::Confirmed(t0));
            }
            Input::TimeSyncFailed { t0 } => self.server_clock().on_failed(t0, now),
            Input::Command(c) => {
                let name = c.name();
                if let Err(e) = self.on_command(now, c) {
                    self.error(Some(name), e);
                }
            }
            Input::AudioClock { at, heard } => self.on_audio_clock(now, at, heard),
            Input::TrackEnded { track } => self.on_track_ended(now, &track),
            Input::OutputStalled { gap_ms } => self.restart(now, RestartCause::Stall { gap_ms }),
            Input::Buffering { track, buffering } => self.on_buffering(now, track, buffering),
            Input::OutputLost => self.output_lost = true,
            Input::OutputRestored => {
                self.output_lost = false;
                self.restart(now, RestartCause::DeviceRestored);
            }
            Input::OutputSwitched => {
                self.output_lost = false;
                self.restart(now, RestartCause::OutputSwitched);
            }
            Input::External(report) => self.on_external(now, report),
            Input::PlaylistLoaded(tracks) => self.on_rest_playlist(tracks),
            Input::RestFailed { message, .. } => self.error(None, SyncError::Rest { message }),
            Input::Location(i) => self.location_happened(now, Happening::Input(i)),
            Input::PeerUp { user, rtt_ms } => self.on_peer_up(now, user, rtt_ms),
            Input::PeerDown { user } => {
                self.peers.down(user);
                self.heard.remove(&user);
            }
            Input::Mesh { link, message } => self.on_mesh(now, link, *message),
            Input::SignalOut(signal) => self.on_signal_out(*signal),
            Input::GrantKey(key) => match ServerKey::from_grant_key(&key) {
                Ok(key) => self.gate.set_server_key(key),
                Err(e) => self.error(
                    None,
                    SyncError::Server {
                        message: format!("the server's grant key is unusable: {e}"),
                    },
                ),
            },
            Input::SessionKept(k) => self.on_session_kept(now, *k),
            Input::PeerAddress { user, address } => {
                if self.is_member(user) {
                    self.peer_addresses.insert(user, address);
                }
            }
            Input::MeshDirect { address, message } => self.on_mesh_direct(now, address, *message),
            Input::Calibration(i) => self.calibration(now, |pc, cx, out| pc.on_input(cx, i, out)),
            Input::Tick => {}
        }
        self.update_acting(now);
        self.rejoin(now);
        self.mesh_clock(now);
        self.on_timers(now);
        self.location_happened(now, Happening::Tick);
        self.decide_tier();
    }

    /// The tier from both transports' health: the socket while it is up and answers (down,
    /// or up but silent for [`TIER_OFFLINE_MISSED_REPLIES`] time-sync probes in a row, is
    /// not); else the mesh while a peer's link is open; else offline. Announced on every
    /// change (the first input announces the starting tier).
    fn decide_tier(&mut self) {
        let (tier, reason) = match self.socket_down() {
            None => (Tier::Socket, "connected to the server".to_string()),
            Some(why) if self.peers.any() => {
                let n = self.peers.count();
                let peers = if n == 1 { "peer" } else { "peers" };
                (Tier::Mesh, format!("{why}; {n} {peers} on the mesh"))
            }
            Some(why) => (Tier::Offline, why),
        };
        if self.tier != Some(tier) {
            self.tier = Some(tier);
            self.push_notify(Notification::Tier { tier, reason });
        }
    }

    /// Why the socket tier is not usable (down, or up but silent for
    /// [`TIER_OFFLINE_MISSED_REPLIES`] probes in a row); `None` while it is.
    fn socket_down(&self) -> Option<String> {
        let server_clock = if self.clock_via_mesh {
            &self.spare_clock
        } else {
            &self.clock
        };
        let missed = server_clock.missed_in_a_row().unwrap_or(0);
        if !self.connected {
            Some(self.down_reason.clone())
        } else if missed >= TIER_OFFLINE_MISSED_REPLIES {
            Some(format!(
                "the server stopped answering ({missed} time-sync probes missed)"
            ))
        } else {
            None
        }
    }

    /// The tier last announced (offline before the first input).
    pub fn tier(&self) -> Tier {
        self.tier.unwrap_or(Tier::Offline)
    }

    /// The next action for the node, `None` when there is nothing left.
    pub fn poll(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When to call `handle(t, Input::Tick)` next.
    pub fn next_timeout(&self) -> Option<LocalTime> {
        let dj = self.is_dj() && self.reaches_group();
        [
            self.clock.next_timeout(),
            self.spare_clock.next_timeout(),
            self.join_wait,
            self.next_audio_query,
            self.next_playback_report,
            self.end_timer,
            self.next_position_sync.filter(|_| dj),
            self.auto_advance.as_ref().map(|(t, _)| *t).filter(|_| dj),
            self.location.next_timeout(),
            self.peer_calibration.next_timeout(),
            self.next_rejoin
                .filter(|_| self.rejoining && !self.connected),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::min)
    }

    // ------------------------------------------------------------------ accessors

    /// Is this device the DJ (the server's, or the succession rule's while the server and
    /// the server's DJ are gone)?
    pub fn is_dj(&self) -> bool {
        if let Acting::Successor(u) = self.gate.acting() {
            return u == self.cfg.user_id;
        }
        self.is_server_dj()
    }

    /// Is this device the DJ the server named?
    fn is_server_dj(&self) -> bool {
        self.controller.as_ref().is_some_and(|c| {
            c.user_id == self.cfg.user_id
                && match (&c.socket_id, &self.socket_id) {
                    (Some(theirs), Some(ours)) if !theirs.is_empty() => {
                        theirs == ours || self.old_sockets.contains(theirs)
                    }
                    _ => true,
                }
        })
    }

    /// The DJ's user id: the server's, or the succession rule's while the server and the
    /// server's DJ are gone (docs/mesh-trust.md).
    pub fn controller(&self) -> Option<UserId> {
        match self.gate.acting() {
            Acting::Successor(u) => Some(u),
            _ => self.server_controller(),
        }
    }

    /// The DJ the server last named.
    pub fn server_controller(&self) -> Option<UserId> {
        self.controller.as_ref().map(|c| c.user_id)
    }

    /// Who is obeyed over the mesh now (the server's DJ, a successor, nobody).
    pub fn acting(&self) -> Acting {
        self.gate.acting()
    }

    pub fn playlist(&self) -> &Playlist {
        &self.playlist
    }

    pub fn participants(&self) -> &[ParticipantView] {
        &self.participants
    }

    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.as_ref()
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// A relative calibration runs on this device, as listener or player: the node's own
    /// calibration would play or record over it.
    pub fn peer_calibration_running(&self) -> bool {
        self.peer_calibration.running()
    }

    /// The server clock estimate at local time `now`.
    pub fn clock_estimate(&self, now: LocalTime) -> ClockEstimate {
        self.clock.estimate(now)
    }

    /// Local time `local` on the server's clock, by the current estimate.
    pub fn to_server_time(&self, local: LocalTime) -> ServerTime {
        self.clock.to_server(local)
    }

    /// Where the group's timeline stands at local time `now`: the track and its position
    /// (s), never past the track's end; `None` with nothing loaded.
    pub fn group_position(&self, now: LocalTime) -> Option<(String, f64)> {
        let tl = self.timeline.as_ref()?;
        let position = tl.position_at(self.clock.to_server(now)).max(0.0);
        Some((tl.track.id.clone(), position.min(track_end(&tl.track))))
    }

    /// The position (s) this device should have audible at local time `now`, if playing.
    pub fn due_position(&self, now: LocalTime) -> Option<(String, f64)> {
        let tl = self.timeline.as_ref().filter(|t| t.playing)?;
        Some((
            tl.track.id.clone(),
            tl.position_at(self.clock.to_server(now)),
        ))
    }

    /// The sync meter: this device's offset to the group's timeline now (`None` while
    /// nothing was measured in the last second: paused, silent, just started).
    pub fn sync_reading(&self, now: LocalTime) -> Option<SyncReading> {
        self.meter.reading(now)
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            rate_trim_ppm: self.playout.trim_ppm(),
            ..self.stats
        }
    }

    // ------------------------------------------------------------------ link and session

    fn on_session_loaded(&mut self, s: jamz_proto::Session) {
        if self.gate.session_id() != s.id {
            let mut gate = Gate::new(s.id.clone());
            if let Some(key) = self.gate.server_key() {
                gate.set_server_key(key.clone());
            }
            self.gate = gate;
        }
        if let Some(user) = s.music.controller_id
            && self.gate.server_controller() != Some(user)
        {
            let _ = self.gate.on_server_controller(Some(user), None);
        }
        self.session_id = Some(s.id);
        self.set_playlist(s.music.playlist);
        if let Some(user_id) = s.music.controller_id {
            self.set_controller(Some(Controller {
                user_id,
                socket_id: None,
            }));
        }
    }

    fn on_connected(&mut self, now: LocalTime, socket_id: String) {
        // The server is back: its own estimate again, carried on by its new exchanges.
        if self.mesh_ref.take().is_some() {
            self.mesh_clock_mut().on_disconnected();
        }
        if std::mem::take(&mut self.clock_via_mesh) {
            std::mem::swap(&mut self.clock, &mut self.spare_clock);
        }
        if let Some(old) = self.socket_id.replace(socket_id) {
            self.old_sockets.push_back(old);
            while self.old_sockets.len() > OLD_SOCKETS_KEPT {
                self.old_sockets.pop_front();
            }
        }
        self.connected = true;
        // The server carries signals again; what the mesh says, it said while away.
        self.rejoining = false;
        self.next_rejoin = None;
        self.direct.clear();
        self.clock.on_connected(now);
        match self.session_id.clone() {
            Some(session_id) => self.emit(&JoinAudioSession {
                session_id,
                user_id: Some(self.cfg.user_id),
                display_name: Some(self.cfg.display_name.clone()),
            }),
            None => self.error(None, SyncError::NoSession),
        }
    }

    fn on_server(&mut self, now: LocalTime, ev: ServerEvent) {
        match ev {
            ServerEvent::MusicSessionState(s) => self.on_session_state(now, s),
            ServerEvent::CurrentParticipants(p) => {
                self.participants = p.participants.into_iter().map(view).collect();
                self.notify_participants();
            }
            ServerEvent::ParticipantJoined(p) => {
                self.participants.retain(|q| q.socket_id != p.socket_id);
                self.participants.push(view(p));
                self.notify_participants();
                // The joiner's exact anchor: the server's memory is only approximate.
                if self.is_dj() {
                    self.send_position_sync(now);
                }
                self.location_happened(now, Happening::Joined);
            }
            ServerEvent::ParticipantLeft(p) => {
                self.participants.retain(|q| q.socket_id != p.socket_id);
                self.notify_participants();
                if !self.participants.iter().any(|q| q.user_id == p.user_id) {
                    self.location_happened(now, Happening::Left(p.user_id));
                }
            }
            ServerEvent::MusicControllerChanged(c) => {
                self.server_grant(Some(c.user_id), c.grant.as_ref());
                self.set_controller(Some(Controller {
                    user_id: c.user_id,
                    socket_id: Some(c.controller_id),
                }));
                self.refresh_dj(now, true);
            }
            ServerEvent::MusicPlay(r) => self.on_relay(now, ControlAction::Play, r, false),
            ServerEvent::MusicPause(r) => self.on_relay(now, ControlAction::Pause, r, false),
            ServerEvent::MusicSeek(r) => self.on_relay(now, ControlAction::Seek, r, false),
            ServerEvent::MusicTrackChange(r) => {
                self.on_relay(now, ControlAction::TrackChange, r, false)
            }
            ServerEvent::PositionSync(r) => self.on_position_sync(now, r),
            ServerEvent::PlaylistUpdate(p) => {
                self.set_playlist(p.playlist);
            }
            ServerEvent::MusicError(e) => self.error(None, SyncError::Server { message: e.error }),
            ServerEvent::LocationUpdate(l) => self.location_happened(now, Happening::Remote(&l)),
            ServerEvent::ConvoyUpdate(c) => self.location_happened(now, Happening::Convoy(&c)),
            ServerEvent::CalibrationUpdate(c) => self.calibration(now, |pc, cx, out| {
                pc.on_message(cx, c.user_id, c.update, out)
            }),
            ServerEvent::WebrtcSignal(signal) => {
                // The server authenticated its sender: the link it sets up is vouched for.
                self.unvouched.remove(&signal.from);
                self.actions.push_back(Action::Signal(Box::new(signal)));
            }
            ServerEvent::Unknown { .. } => {}
        }
    }

    fn on_session_state(&mut self, now: LocalTime, s: MusicSessionState) {
        // The server's memory of playback is older than what the same DJ said over the
        // mesh while the server was away (the DJ's link replays those controls to it next).
        let keep_mesh_timeline =
            std::mem::take(&mut self.mesh_timeline) && s.controller_id == self.controller();
        if let Some(t) = s.server_time {
            self.clock.on_session_state(t, now);
        }
        self.server_grant(s.controller_id, s.grant.as_ref());
        self.rest_broadcasts = s.rest_broadcasts;
        self.set_playlist(s.playlist);
        if std::mem::take(&mut self.playlist_echo_owed)
            && !self.rest_broadcasts
            && let Some(session_id) = self.session_id.clone()
        {
            self.emit(&PlaylistUpdate {
                session_id,
                playlist: self.playlist.tracks().to_vec(),
            });
        }
        self.set_controller(s.controller_id.map(|user_id| Controller {
            user_id,
            socket_id: s.controller_socket_id.clone(),
        }));
        if let (Some(session_id), Some(socket_id)) = (&self.session_id, &self.socket_id) {
            self.push_notify(Notification::Ready {
                user_id: self.cfg.user_id,
                session_id: session_id.clone(),
                socket_id: socket_id.clone(),
            });
        }
        // Where the server's clock is unknown, "now" is the seeds' reading of its state.
        let anchor = s
            .server_time
            .filter(|t| t.is_finite())
            .unwrap_or_else(|| self.clock.to_server(now));
        let current = s
            .currently_playing
            .and_then(|cp| cp.track.map(|t| (t, cp.position)));
        let Some((track, position)) = current else {
            if self.timeline.is_some() && !self.is_dj() && !keep_mesh_timeline {
                self.timeline = None;
                self.apply_timeline(now);
            }
            self.refresh_dj(now, false);
            return;
        };
        let track = match self.resolve_track(Some(track)) {
            Ok(t) => t,
            Err(e) => return self.error(None, e),
        };
        if let Err(e) = check_position(&track, position) {
            return self.error(None, e);
        }
        if let Some(ours) = &self.timeline {
            let same = ours.track.id == track.id && ours.playing == s.is_playing;
            let close =
                (ours.position_at(anchor) - position).abs() * 1000.0 < SESSION_STATE_TOLERANCE_MS;
            // The DJ is the authority; a re-joiner keeps its exact anchor over the server's
            // approximate memory.
            if self.is_dj() || (same && close) || keep_mesh_timeline {
                self.refresh_dj(now, false);
                return;
            }
        }
        let tl = Timeline {
            track,
            playing: s.is_playing,
            position_s: position,
            at_server_ms: anchor,
            precise: false,
        };
        let dj_elsewhere = self.controller.is_some() && !self.is_dj();
        if tl.playing && (dj_elsewhere || !self.clock.ready()) {
            self.join_wait = Some(now + JOIN_SETTLE_MAX_MS);
            self.joining = true;
        }
        self.timeline = Some(tl);
        self.apply_timeline(now);
    }

    /// A control relayed by the server, or (`via_mesh`) sent by the DJ over the mesh. The
    /// DJ sends one control over both: the second copy to arrive is dropped here.
    fn on_relay(&mut self, now: LocalTime, action: ControlAction, r: MusicRelay, via_mesh: bool) {
        if let Err(e) = self
            .check_sender(r.user_id)
            .and_then(|()| self.check_timestamp(now, r.timestamp))
        {
            return self.error(None, e);
        }
        let track = match self.resolve_track(r.track) {
            Ok(t) => t,
            Err(e) => return self.error(None, e),
        };
        if let Err(e) = check_position(&track, r.position) {
            return self.error(None, e);
        }
        if !self
            .recent
            .first_time(action, &track.id, r.position, r.timestamp)
        {
            return; // its other copy came first
        }
        if via_mesh && !self.connected {
            self.mesh_timeline = true;
        }
        let was_playing = self.timeline.as_ref().map(|t| t.playing);
        let playing = match action {
            ControlAction::Play => true,
            ControlAction::Pause => false,
            ControlAction::Seek | ControlAction::TrackChange => was_playing.unwrap_or(true),
        };
        self.timeline = Some(Timeline {
            track,
            playing,
            position_s: r.position,
            at_server_ms: r.timestamp,
            precise: true,
        });
        if self.join_wait.is_some() && self.clock.ready() {
            self.join_wait = None;
        }
        self.apply_timeline(now);
        self.refresh_dj(now, true);
    }

    fn on_position_sync(&mut self, now: LocalTime, r: PositionSyncRelay) {
        if let Err(e) = self
            .check_sender(r.user_id)
            .and_then(|()| self.check_timestamp(now, r.timestamp))
        {
            return self.error(None, e);
        }
        if !r.position.is_finite() || r.position < 0.0 {
            return self.error(
                None,
                SyncError::InvalidPosition {
                    position: r.position,
                },
            );
        }
        if self.is_dj() {
            return;
        }
        let Some(tl) = self.timeline.clone() else {
            return;
        };
        if let Err(e) = check_position(&tl.track, r.position) {
            return self.error(None, e);
        }
        let deviation_ms = (r.position - tl.position_at(r.timestamp)) * 1000.0;
        if tl.precise && tl.playing && deviation_ms.abs() <= POSITION_SYNC_TOLERANCE_MS {
            return;
        }
        let new = Timeline {
            playing: true,
            position_s: r.position,
            at_server_ms: r.timestamp,
            precise: true,
            ..tl.clone()
        };
        self.timeline = Some(new);
        if self.join_wait.is_some() {
            if self.clock.ready() {
                self.join_wait = None;
                self.apply_timeline(now);
            }
            return;
        }
        // Small corrections of a playing timeline go to soft sync; big ones restart.
        let soft = tl.playing
            && self.started.is_some()
            && deviation_ms.abs() < HARD_SYNC_SHORT_MS
            && self.clock.to_server(now) >= tl.at_server_ms;
        if !soft {
            self.apply_timeline(now);
        }
    }

    // ------------------------------------------------------------------ the peer mesh

    /// Whether the DJ's words reach anyone: over the socket or over an open mesh link.
    fn reaches_group(&self) -> bool {
        self.connected || self.peers.any()
    }

    /// How many peers' mesh links are open.
    pub fn mesh_peers(&self) -> usize {
        self.peers.count()
    }

    /// The open mesh links whose peer is known (set up by signals the server carried or
    /// the DJ signed): the ones a message for that very user may take.
    fn vouched_links(&self) -> Vec<UserId> {
        self.peers
            .users()
            .filter(|u| !self.unvouched.contains(u))
            .collect()
    }

    fn on_peer_up(&mut self, now: LocalTime, user: UserId, rtt_ms: Option<f64>) {
        let new = !self.peers.is_up(user);
        self.peers.up(user, rtt_ms);
        // A link up, or its round trip measured anew, is the peer alive (when it is known
        // who is on it).
        if !self.unvouched.contains(&user) {
            self.heard.insert(user, now);
        }
        if !new {
            return;
        }
        // A new channel: say where we stand (docs/protocol.md, `state-hello`).
        let ids: Vec<&str> = self
            .playlist
            .tracks()
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        let (playing, position) = match &self.timeline {
            Some(tl) => (tl.playing, self.current_position(tl, now)),
            None => (false, 0.0),
        };
        let hello = StateHello {
            playlist_hash: format!("{:016x}", fnv1a(ids.join("\n").as_bytes())),
            controller: self.controller(),
            epoch: 0,
            playing,
            position,
            timestamp: self.clock.to_server(now),
        };
        self.mesh_send(Some(user), kinds::STATE_HELLO, None, &hello);
        // A DJ gives a peer that comes up while the server is away the exact anchor.
        if self.is_dj() && !self.connected {
            self.send_position_sync(now);
        }
    }

    /// A mesh message from the direct link to `link` (already de-duplicated by sequence,
    /// per link). Judged first (docs/mesh-trust.md): what is refused is not applied, and
    /// is reported.
    fn on_mesh(&mut self, now: LocalTime, link: UserId, message: MeshEnvelope) {
        let payload = match message.payload() {
            Ok(p) => p,
            Err(e) => {
                return self.error(
                    None,
                    SyncError::BadMesh {
                        link,
                        message: e.to_string(),
                    },
                );
            }
        };
        let from = message.from;
        let vouched = !self.unvouched.contains(&link);
        // Whatever it says, the link's peer is alive (its link is authenticated).
        if vouched {
            self.heard.insert(link, now);
            // The server's DJ heard again on its own link while a successor acts for it:
            // control goes back to it before its message is judged, so that its first word
            // after the outage counts (docs/mesh-trust.md, "When the DJ leaves").
            if from == link
                && self.gate.server_controller() == Some(link)
                && matches!(self.gate.acting(), Acting::Successor(_))
            {
                self.update_acting(now);
            }
        }
        if from == self.cfg.user_id {
            // Our own, relayed back to us.
            self.stats.mesh_duplicates += 1;
            return;
        }
        if let MeshPayload::ControllerChanged(c) = &payload {
            // A grant speaks for itself (the server signed it), whoever carries it.
            return self.on_mesh_grant(now, link, &message, c.grant.as_ref());
        }
        if let MeshPayload::Signal(signal) = payload {
            return self.on_mesh_signal(now, link, &message, *signal);
        }
        if let MeshPayload::Rejoin(r) = payload {
            return self.on_mesh_rejoin(now, link, &message, &r);
        }
        let server_now = self.clock.to_server(now);
        let admitted = match self.gate.judge_on(server_now, link, vouched, &message) {
            Ok(a) => a,
            Err(why) => return self.refuse(now, link, &message, why),
        };
        // De-duplicate only what was admitted: a forged sequence cannot move the window
        // of the member it names (docs/mesh-trust.md).
        if !self.seen.accept(from, message.sequence) {
            self.stats.mesh_duplicates += 1;
            return;
        }
        self.heard.insert(from, now);
        if from != link {
            // The DJ's own signature over another peer: it is there (a successor acting
            // for it hands control back before this is applied).
            self.stats.mesh_relayed_in += 1;
            self.update_acting(now);
        }
        self.relay(link, admitted, &message);
        match payload {
            MeshPayload::MusicControl(action, c) => {
                let track = match (c.track, c.track_id) {
                    (Some(t), _) => Some(t),
                    (None, Some(id)) => match self.playlist.get(&id) {
                        Some(t) => Some(t.clone()),
                        None => return self.error(None, SyncError::UnknownTrack { id }),
                    },
                    (None, None) => None,
                };
                let relay = MusicRelay {
                    position: c.position,
                    track,
                    timestamp: c.timestamp,
                    controller_id: None,
                    user_id: Some(from),
                };
                self.on_relay(now, action, relay, true);
            }
            MeshPayload::PositionSync(p) => {
                let other_track = match (&p.track_id, &self.timeline) {
                    (Some(id), Some(tl)) => *id != tl.track.id,
                    _ => false,
                };
                if other_track {
                    return; // a sync of the track before the latest change
                }
                if !self.connected {
                    self.mesh_timeline = true;
                }
                let relay = PositionSyncRelay {
                    position: p.position,
                    timestamp: p.timestamp,
                    user_id: Some(from),
                };
                self.on_position_sync(now, relay);
            }
            MeshPayload::PlaylistUpdate(p) => {
                // The DJ may send any playlist; anyone else on its own link only appends.
                let appends = p.playlist.len() >= self.playlist.len()
                    && self
                        .playlist
                        .tracks()
                        .iter()
                        .zip(&p.playlist)
                        .all(|(a, b)| a.id == b.id);
                if admitted == Admitted::Controller || appends {
                    self.set_playlist(p.playlist);
                } else {
                    self.refuse(now, link, &message, Rejection::NotAnAppend { from });
                }
            }
            MeshPayload::TimeSync(t) => {
                // Anyone may ask where the server's clock stands by our estimate.
                let at = self.clock.to_server(now);
                let reply = TimeSyncReply {
                    t0: t.t0,
                    t1: at,
                    t2: at,
                };
                self.mesh_send(Some(link), kinds::TIME_SYNC_REPLY, None, &reply);
            }
            MeshPayload::TimeSyncReply(r) => {
                if self.mesh_ref == Some(link) {
                    self.mesh_clock_mut().on_reply(r.t0, r.t1, r.t2, now);
                }
            }
            MeshPayload::LocationUpdate(l) => {
                // A position told by its owner on its own link (the gate saw to that).
                let relay = LocationRelay {
                    user_id: from,
                    session_id: None,
                    latitude: l.latitude,
                    longitude: l.longitude,
                    accuracy: l.accuracy,
                    speed: l.speed,
                    heading: l.heading,
                    timestamp: l.timestamp,
                };
                self.location_happened(now, Happening::Remote(&relay));
            }
            MeshPayload::ConvoyUpdate(c) => {
                let relay = ConvoyRelay {
                    user_id: from,
                    session_id: None,
                    kind: c.kind,
                    latitude: c.latitude,
                    longitude: c.longitude,
                };
                self.location_happened(now, Happening::Convoy(&relay));
            }
            MeshPayload::Calibration(c) => {
                // The gate took it only from the link's own, vouched-for peer.
                self.calibration(now, |pc, cx, out| pc.on_message(cx, from, *c, out));
            }
            MeshPayload::StateHello(_)
            | MeshPayload::ControllerChanged(_)
            | MeshPayload::Signal(_)
            | MeshPayload::Rejoin(_)
            | MeshPayload::Unknown => {}
        }
    }

    /// Relays a message just admitted (the first copy of it) to every other open link:
    /// only the DJ's signed messages (every peer can check them, however many hops they
    /// took) with relays left in their `ttl`, never back to the link it came on nor to its
    /// author (docs/mesh-trust.md, "Relaying").
    fn relay(&mut self, link: UserId, admitted: Admitted, message: &MeshEnvelope) {
        let ttl = match message.ttl {
            Some(t) if t > 0 && message.sig.is_some() && admitted == Admitted::Controller => t,
            _ => return,
        };
        let to: Vec<UserId> = self
            .peers
            .users()
            .filter(|&u| u != link && u != message.from)
            .collect();
        for user in to {
            let mut copy = message.clone();
            copy.ttl = Some(ttl - 1);
            self.stats.mesh_relayed += 1;
            self.actions.push_back(Action::Mesh {
                to: Some(user),
                message: Box::new(copy),
            });
        }
    }

    /// A signal the mesh has for a peer: through the server while the socket is up (it
    /// authenticates the sender), else to the open mesh links for the peers there to carry
    /// (the target's own link if it is open), with [`MESH_RELAY_TTL`] relays to go.
    fn on_signal_out(&mut self, signal: jamz_proto::events::WebrtcSignal) {
        if signal.from != self.cfg.user_id {
            return; // not ours to send
        }
        if self.connected {
            return self.emit(&signal);
        }
        if !self.peers.is_up(signal.to)
            && let Some(&address) = self.direct.get(&signal.to)
        {
            // A peer reached straight at its socket, with no link yet: straight there.
            self.stats.mesh_signals_sent += 1;
            let out = MeshOut {
                kind: kinds::WEBRTC_SIGNAL,
                action: None,
                data: match serde_json::to_value(&signal) {
                    Ok(d) => d,
                    Err(_) => return,
                },
            };
            let message = self.stamp(out);
            self.actions.push_back(Action::MeshDirect {
                to: address,
                message: Box::new(message),
            });
            return;
        }
        if !self.peers.any() {
            return; // nobody to carry it: the mesh offers again when a link comes or goes
        }
        let to = Some(signal.to).filter(|&u| self.peers.is_up(u));
        self.stats.mesh_signals_sent += 1;
        self.mesh_send(to, kinds::WEBRTC_SIGNAL, None, &signal);
    }

    /// A signal carried over the mesh (docs/mesh-trust.md, "Signaling over the mesh"): for
    /// this device, handed to the mesh unless it would replace an open link in someone
    /// else's name; for another, carried on (once, while its `ttl` lasts) to the target's
    /// link if open here, else to every other open link.
    fn on_mesh_signal(
        &mut self,
        now: LocalTime,
        link: UserId,
        message: &MeshEnvelope,
        signal: jamz_proto::events::WebrtcSignal,
    ) {
        if signal.from != message.from {
            let why = format!(
                "the envelope is from {} but the signal from {}",
                message.from, signal.from
            );
            return self.refuse(now, link, message, Rejection::BadSignal(why));
        }
        if signal.session_id != self.gate.session_id() {
            let why = format!("for session {}", signal.session_id);
            return self.refuse(now, link, message, Rejection::BadSignal(why));
        }
        if !self
            .seen_signals
            .first_time(message.from, message.sequence, &message.data)
        {
            self.stats.mesh_duplicates += 1;
            return;
        }
        if signal.to == self.cfg.user_id {
            let own_link = link == signal.from && !self.unvouched.contains(&link);
            if !own_link && self.peers.is_up(signal.from) {
                // A live link is replaced by a new offer: only its own peer may ask.
                let why = Rejection::SignalLinkOpen { from: signal.from };
                return self.refuse(now, link, message, why);
            }
            let server_now = self.clock.to_server(now);
            if own_link || self.gate.signed_by_dj(server_now, link, message) {
                self.unvouched.remove(&signal.from);
            } else {
                self.unvouched.insert(signal.from);
            }
            self.stats.mesh_signals_in += 1;
            self.actions.push_back(Action::Signal(Box::new(signal)));
            return;
        }
        self.carry(link, message, signal.to);
    }

    /// Carries a signal or a `mesh-rejoin` for `target` on (once, while its `ttl` lasts): to
    /// the target's link if open here, else to every open link but the one it came on and
    /// its sender's.
    fn carry(&mut self, link: UserId, message: &MeshEnvelope, target: UserId) {
        let Some(ttl) = message.ttl.filter(|t| *t > 0) else {
            return;
        };
        let to: Vec<UserId> = if self.peers.is_up(target) && target != link {
            vec![target]
        } else {
            self.peers
                .users()
                .filter(|&u| u != link && u != message.from)
                .collect()
        };
        for user in to {
            let mut copy = message.clone();
            copy.ttl = Some(ttl - 1);
            self.stats.mesh_signals_relayed += 1;
            self.actions.push_back(Action::Mesh {
                to: Some(user),
                message: Box::new(copy),
            });
        }
    }

    /// A `mesh-rejoin` over the mesh (docs/protocol.md, "Rejoining without the server"): a
    /// member back from a restart asks for a link. For this device, the mesh sets its link
    /// to that member up anew (unless it is open: only its own peer could ask that); for
    /// another, carried on like a signal.
    fn on_mesh_rejoin(
        &mut self,
        now: LocalTime,
        link: UserId,
        message: &MeshEnvelope,
        r: &MeshRejoin,
    ) {
        if let Err(why) = self.check_rejoin_like(message, &r.session_id, r.from) {
            return self.refuse(now, link, message, why);
        }
        if !self
            .seen_signals
            .first_time(message.from, message.sequence, &message.data)
        {
            self.stats.mesh_duplicates += 1;
            return;
        }
        if r.to != self.cfg.user_id {
            return self.carry(link, message, r.to);
        }
        if !self.is_member(r.from) {
            let why = format!("{} is not a member of the session", r.from);
            return self.refuse(now, link, message, Rejection::BadSignal(why));
        }
        if self.peers.is_up(r.from) {
            let why = Rejection::SignalLinkOpen { from: r.from };
            return self.refuse(now, link, message, why);
        }
        self.stats.mesh_rejoins_in += 1;
        self.actions.push_back(Action::Rejoin {
            user: r.from,
            by_peer: true,
        });
    }

    /// A signal's or rejoin's own checks: its sender is the envelope's, its session ours.
    fn check_rejoin_like(
        &self,
        message: &MeshEnvelope,
        session_id: &str,
        from: UserId,
    ) -> Result<(), Rejection> {
        if from != message.from {
            return Err(Rejection::BadSignal(format!(
                "the envelope is from {} but its data from {from}",
                message.from
            )));
        }
        if session_id != self.gate.session_id() {
            return Err(Rejection::BadSignal(format!("for session {session_id}")));
        }
        Ok(())
    }

    /// A member of the session (as the server last listed them), not this device's user.
    fn is_member(&self, user: UserId) -> bool {
        user != self.cfg.user_id && self.participants.iter().any(|p| p.user_id == user)
    }

    /// A mesh message that came straight to this device's mesh socket from `address`
    /// (docs/protocol.md, "Rejoining without the server"): only a `mesh-rejoin` or a
    /// `webrtc-signal` for this device, from a member of this session whose link here is
    /// not open. Its signals then go back there until the link is open. Nothing proves who
    /// sent it: the link it sets up is unvouched unless the DJ's device signed it.
    fn on_mesh_direct(
        &mut self,
        now: LocalTime,
        address: std::net::SocketAddr,
        message: MeshEnvelope,
    ) {
        let from = message.from;
        let payload = match message.payload() {
            Ok(p) => p,
            Err(e) => {
                let why = Rejection::BadSignal(e.to_string());
                return self.refuse(now, from, &message, why);
            }
        };
        let (session_id, claimed, to) = match &payload {
            MeshPayload::Signal(s) => (s.session_id.clone(), s.from, s.to),
            MeshPayload::Rejoin(r) => (r.session_id.clone(), r.from, r.to),
            _ => {
                let why =
                    Rejection::BadSignal(format!("a `{}` may not come directly", message.kind));
                return self.refuse(now, from, &message, why);
            }
        };
        if let Err(why) = self.check_rejoin_like(&message, &session_id, claimed) {
            return self.refuse(now, from, &message, why);
        }
        if to != self.cfg.user_id {
            let why = Rejection::BadSignal(format!("for {to}: direct messages are not carried"));
            return self.refuse(now, from, &message, why);
        }
        if !self.is_member(from) {
            let why = Rejection::BadSignal(format!("{from} is not a member of the session"));
            return self.refuse(now, from, &message, why);
        }
        if self.peers.is_up(from) {
            return self.refuse(now, from, &message, Rejection::SignalLinkOpen { from });
        }
        if !self
            .seen_signals
            .first_time(message.from, message.sequence, &message.data)
        {
            self.stats.mesh_duplicates += 1;
            return;
        }
        self.stats.mesh_direct_in += 1;
        self.direct.insert(from, address);
        match payload {
            MeshPayload::Signal(signal) => {
                let server_now = self.clock.to_server(now);
                if self.gate.signed_by_dj(server_now, from, &message) {
                    self.unvouched.remove(&from);
                } else {
                    self.unvouched.insert(from);
                }
                self.stats.mesh_signals_in += 1;
                self.actions.push_back(Action::Signal(signal));
            }
            _ => {
                self.stats.mesh_rejoins_in += 1;
                self.actions.push_back(Action::Rejoin {
                    user: from,
                    by_peer: true,
                });
            }
        }
    }

    /// A node started from a kept session (the server unreachable at start): the session,
    /// its members, the DJ and its grant, the playlist and the timeline as last known.
    /// Playback goes on from the kept timeline by this device's clock until the DJ is
    /// heard; links are asked for by [`Engine::rejoin`].
    fn on_session_kept(&mut self, now: LocalTime, k: crate::kept::KeptSession) {
        if self.gate.session_id() != k.session_id {
            let mut gate = Gate::new(k.session_id.clone());
            if let Some(key) = self.gate.server_key() {
                gate.set_server_key(key.clone());
            }
            self.gate = gate;
        }
        // Checked again once the server's key is given (`Input::GrantKey`).
        let _ = self
            .gate
            .on_server_controller(k.controller, k.grant.as_ref());
        self.session_id = Some(k.session_id);
        self.set_playlist(k.playlist);
        self.set_controller(k.controller.map(|user_id| Controller {
            user_id,
            socket_id: None,
        }));
        self.participants = k
            .members
            .into_iter()
            .map(|m| ParticipantView {
                user_id: m.user_id,
                display_name: m.display_name,
                socket_id: String::new(),
            })
            .collect();
        self.notify_participants();
        self.peer_addresses = k
            .peers
            .into_iter()
            .filter(|(u, _)| self.is_member(*u))
            .collect();
        self.down_reason = "the server did not answer at start: playing the kept session".into();
        if let Some(t) = k.timeline
            && let Some(track) = self.playlist.get(&t.track_id).cloned()
            && check_position(&track, t.position).is_ok()
            && t.at_server_ms.is_finite()
        {
            self.timeline = Some(Timeline {
                track,
                playing: t.playing,
                position_s: t.position,
                at_server_ms: t.at_server_ms,
                precise: false,
            });
            self.apply_timeline(now);
        }
        self.rejoining = true;
        self.next_rejoin = Some(now);
    }

    /// Asks for links while started from a kept session and the server is gone, every
    /// [`REJOIN_EVERY_MS`]: with no link open, straight to one kept peer address per round
    /// (the other members first, the DJ last, round robin: one answer brings the rest over
    /// the mesh); with one open, a `mesh-rejoin` over the mesh to every member with no link
    /// here, carried by the peers like a signal. Each time the mesh here is told too
    /// (`Action::Rejoin`): where this device offers, its offer goes anew if the last one
    /// went unanswered.
    fn rejoin(&mut self, now: LocalTime) {
        if !self.rejoining || self.connected {
            return;
        }
        match self.next_rejoin {
            Some(due) if now >= due => {}
            _ => return,
        }
        self.next_rejoin = Some(now + REJOIN_EVERY_MS);
        let mut missing: Vec<UserId> = self
            .participants
            .iter()
            .map(|p| p.user_id)
            .filter(|&u| u != self.cfg.user_id && !self.peers.is_up(u))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let session_id = self.gate.session_id().to_owned();
        let me = self.cfg.user_id;
        let rejoin = |to: UserId| MeshRejoin {
            session_id: session_id.clone(),
            from: me,
            to,
        };
        if self.peers.any() {
            for user in missing {
                self.stats.mesh_rejoins_sent += 1;
                self.mesh_send(None, kinds::MESH_REJOIN, None, &rejoin(user));
                self.actions.push_back(Action::Rejoin {
                    user,
                    by_peer: false,
                });
            }
            return;
        }
        let dj = self.gate.server_controller();
        let mut order: Vec<UserId> = missing
            .into_iter()
            .filter(|u| self.peer_addresses.contains_key(u))
            .collect();
        order.sort_by_key(|&u| (Some(u) == dj, u));
        if order.is_empty() {
            return;
        }
        let user = order[self.rejoin_turn % order.len()];
        self.rejoin_turn = self.rejoin_turn.wrapping_add(1);
        let Some(&address) = self.peer_addresses.get(&user) else {
            return;
        };
        let Ok(data) = serde_json::to_value(rejoin(user)) else {
            return;
        };
        self.direct.insert(user, address);
        self.stats.mesh_rejoins_sent += 1;
        let message = self.stamp(MeshOut {
            kind: kinds::MESH_REJOIN,
            action: None,
            data,
        });
        self.actions.push_back(Action::MeshDirect {
            to: address,
            message: Box::new(message),
        });
        self.actions.push_back(Action::Rejoin {
            user,
            by_peer: false,
        });
    }

    /// What this device keeps to start again with the server gone (docs/node-control.md,
    /// "Starting with the server gone"), `None` before it is in a session. The timeline is
    /// kept as its anchor (it changes only when the DJ's words do).
    pub fn kept_session(
        &self,
        identity: crate::kept::KeptIdentity,
        now_unix_ms: f64,
    ) -> Option<crate::kept::KeptSession> {
        let session_id = self.session_id.clone()?;
        let mut members: Vec<crate::kept::KeptMember> = Vec::new();
        for p in &self.participants {
            if !members.iter().any(|m| m.user_id == p.user_id) {
                members.push(crate::kept::KeptMember {
                    user_id: p.user_id,
                    display_name: p.display_name.clone(),
                });
            }
        }
        Some(crate::kept::KeptSession {
            format: crate::kept::KEPT_FORMAT,
            identity,
            session_id,
            members,
            controller: self.gate.server_controller(),
            grant: self.gate.grant().cloned(),
            playlist: self.playlist.tracks().to_vec(),
            timeline: self.timeline.as_ref().map(|tl| crate::kept::KeptTimeline {
                track_id: tl.track.id.clone(),
                playing: tl.playing,
                position: tl.position_s,
                at_server_ms: tl.at_server_ms,
            }),
            peers: self.peer_addresses.clone(),
            saved_at_ms: now_unix_ms,
        })
    }

    /// A `controller-changed` over the mesh: its grant, when the server signed it for this
    /// session with a newer epoch, names the DJ; anything else is refused.
    fn on_mesh_grant(
        &mut self,
        now: LocalTime,
        link: UserId,
        message: &MeshEnvelope,
        grant: Option<&jamz_proto::grant::ControllerGrant>,
    ) {
        let Some(grant) = grant else {
            return self.refuse(now, link, message, Rejection::NoGrant);
        };
        match self.gate.learn_grant(grant) {
            Ok(true) => {
                self.set_controller(Some(Controller {
                    user_id: grant.user_id,
                    socket_id: None,
                }));
                self.refresh_dj(now, true);
            }
            Ok(false) => {} // an older or the same grant: nothing new
            Err(why) => self.refuse(now, link, message, why),
        }
    }

    /// The server named the DJ, with its grant: the gate checks it (a bad one is reported;
    /// the server's word on who the DJ is stands).
    fn server_grant(
        &mut self,
        user: Option<UserId>,
        grant: Option<&jamz_proto::grant::ControllerGrant>,
    ) {
        if let Err(why) = self.gate.on_server_controller(user, grant)
            && grant.is_some()
        {
            self.error(
                None,
                SyncError::Server {
                    message: format!("the server's controller grant does not check: {why}"),
                },
            );
        }
    }

    /// A mesh message not obeyed: nothing of it applied, counted, and reported (at most
    /// once per link and reason every [`MESH_REFUSAL_REPORT_MS`], with how many since).
    fn refuse(&mut self, now: LocalTime, link: UserId, message: &MeshEnvelope, why: Rejection) {
        self.stats.mesh_refused += 1;
        let entry = self
            .refusals
            .entry((link, why.label()))
            .or_insert((f64::NEG_INFINITY, 0));
        entry.1 += 1;
        if now - entry.0 < MESH_REFUSAL_REPORT_MS {
            return;
        }
        let count = std::mem::take(&mut entry.1);
        entry.0 = now;
        self.push_notify(Notification::MeshRefused {
            from: message.from,
            via: link,
            kind: message.kind.clone(),
            reason: why.label().to_owned(),
            message: why.to_string(),
            count,
        });
    }

    /// Applies the succession rule (docs/mesh-trust.md) to what the mesh carries now:
    /// members present are those whose link is open; the server's DJ must also have been
    /// heard lately (followers probe its clock every half second and it answers). A
    /// change of who is obeyed is announced, and the new DJ takes up its duties.
    fn update_acting(&mut self, now: LocalTime) {
        let was_dj = self.is_dj();
        let dj = self.gate.server_controller();
        let mut heard: Vec<(UserId, f64)> = self
            .peers
            .users()
            .map(|u| {
                let at = if Some(u) == dj {
                    self.heard.get(&u).copied().unwrap_or(f64::NEG_INFINITY)
                } else {
                    now
                };
                (u, at)
            })
            .collect();
        // The DJ with no link here may still be heard: its signed messages relayed.
        if let Some(dj) = dj
            && !self.peers.is_up(dj)
            && let Some(&at) = self.heard.get(&dj)
        {
            heard.push((dj, at));
        }
        let reachable = self.socket_down().is_none();
        self.gate
            .update_acting(self.cfg.user_id, &heard, now, reachable);
        if self.controller() != self.announced_dj {
            self.announce_dj();
        }
        if self.is_dj() != was_dj {
            self.refresh_dj(now, true);
        }
    }

    /// The server's own clock estimate, whichever slot it is in.
    fn server_clock(&mut self) -> &mut ClockSync {
        if self.clock_via_mesh {
            &mut self.spare_clock
        } else {
            &mut self.clock
        }
    }

    /// The estimate drawn over the mesh, whichever slot it is in.
    fn mesh_clock_mut(&mut self) -> &mut ClockSync {
        if self.clock_via_mesh {
            &mut self.clock
        } else {
            &mut self.spare_clock
        }
    }

    /// One clock while the server is gone: a follower runs `time-sync` with the DJ over
    /// the mesh, and the DJ answers with its estimate of the server's clock, so the
    /// group stays on the server's timeline (converted, not restarted). Once that
    /// estimate settles it replaces the server's, which froze when the socket went down;
    /// when the server returns, its own estimate is back in use.
    fn mesh_clock(&mut self, now: LocalTime) {
        let wanted = match self.controller() {
            Some(dj) if !self.connected && !self.is_dj() && self.peers.is_up(dj) => Some(dj),
            _ => None,
        };
        if wanted != self.mesh_ref {
            self.mesh_ref = wanted;
            if wanted.is_some() {
                if !self.clock_via_mesh {
                    self.spare_clock = ClockSync::default();
                }
                self.mesh_clock_mut().on_connected(now);
            } else {
                self.mesh_clock_mut().on_disconnected();
            }
        }
        let Some(dj) = self.mesh_ref else {
            return;
        };
        if let Some(t0) = self.mesh_clock_mut().poll_probe(now) {
            self.mesh_send(Some(dj), kinds::TIME_SYNC, None, &TimeSync { t0 });
        }
        if !self.clock_via_mesh && self.spare_clock.settled() {
            std::mem::swap(&mut self.clock, &mut self.spare_clock);
            self.clock_via_mesh = true;
        }
    }

    fn mesh_send<T: serde::Serialize>(
        &mut self,
        to: Option<UserId>,
        kind: &'static str,
        action: Option<ControlAction>,
        data: &T,
    ) {
        match serde_json::to_value(data) {
            Ok(data) => self.stamp_and_send(to, MeshOut { kind, action, data }),
            // Plain structs with string keys always serialize; this cannot happen.
            Err(err) => self.error(
                None,
                SyncError::Server {
                    message: format!("cannot encode mesh {kind}: {err}"),
                },
            ),
        }
    }

    /// Stamps `out` with this member's next sequence number and sends it. While this
    /// device is the DJ under a grant naming its key, what may be relayed (all but the
    /// link messages) is signed with the grant's epoch and may travel [`MESH_RELAY_TTL`]
    /// relays (docs/mesh-trust.md, "Relaying").
    fn stamp_and_send(&mut self, to: Option<UserId>, out: MeshOut) {
        let envelope = self.stamp(out);
        self.actions.push_back(Action::Mesh {
            to,
            message: Box::new(envelope),
        });
    }

    /// [`Engine::stamp_and_send`]'s envelope, not sent.
    fn stamp(&mut self, out: MeshOut) -> MeshEnvelope {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.saturating_add(1);
        let mut envelope = MeshEnvelope {
            kind: out.kind.to_owned(),
            action: out.action,
            data: out.data,
            sequence,
            from: self.cfg.user_id,
            epoch: None,
            sig: None,
            ttl: None,
        };
        let relayable = !matches!(
            out.kind,
            kinds::STATE_HELLO
                | kinds::TIME_SYNC
                | kinds::TIME_SYNC_REPLY
                | kinds::CALIBRATION_UPDATE
        );
        let signed = if relayable
            && let Some(device) = &self.cfg.device_key
            && let Some(epoch) = self.gate.signing_epoch(self.cfg.user_id, device)
        {
            envelope.epoch = Some(epoch);
            envelope.ttl = Some(MESH_RELAY_TTL);
            device.sign(self.gate.session_id(), &mut envelope)
        } else {
            Ok(())
        };
        if envelope.sig.is_some() {
            self.stats.mesh_signed += 1;
        }
        if matches!(out.kind, kinds::WEBRTC_SIGNAL | kinds::MESH_REJOIN) && envelope.ttl.is_none() {
            // Anyone's signals are carried by peers (unsigned: see `on_mesh_signal`).
            envelope.ttl = Some(MESH_RELAY_TTL);
        }
        if let Err(e) = signed {
            // A session id with a line break: sent unsigned (obeyed on direct links only).
            (envelope.epoch, envelope.ttl) = (None, None);
            self.error(
                None,
                SyncError::Server {
                    message: format!("mesh {} not signed: {e}", envelope.kind),
                },
            );
        }
        envelope
    }

    // ------------------------------------------------------------------ commands

    fn on_command(&mut self, now: LocalTime, c: Command) -> Result<(), SyncError> {
        match c {
            Command::TakeControl => {
                let session_id = self.session()?;
                self.emit(&MusicTakeControl {
                    session_id,
                    user_id: Some(self.cfg.user_id),
                });
            }
            Command::Play { track, position } => {
                self.require_dj("play")?;
                let track = match track {
                    Some(id) => self
                        .playlist
                        .get(&id)
                        .cloned()
                        .ok_or(SyncError::UnknownTrack { id })?,
                    None => match &self.timeline {
                        Some(tl) => tl.track.clone(),
                        None => self
                            .playlist
                            .tracks()
                            .first()
                            .cloned()
                            .ok_or(SyncError::EmptyPlaylist)?,
                    },
                };
                if !crate::sources::playable_somewhere(&track) {
                    return Err(SyncError::UnplayableTrack { title: track.title });
                }
                let position = match position {
                    Some(p) => p,
                    None => match &self.timeline {
                        Some(tl) if tl.track.id == track.id => {
                            self.current_position(tl, now).min(track_end(&track))
                        }
                        _ => 0.0,
                    },
                };
                check_position(&track, position)?;
                self.dj_control(now, ControlAction::Play, track, position, true, None)?;
            }
            Command::Pause => {
                self.require_dj("pause")?;
                let tl = self
                    .timeline
                    .clone()
                    .ok_or(SyncError::NothingLoaded { what: "pause" })?;
                let position = self.current_position(&tl, now).min(track_end(&tl.track));
                self.dj_control(now, ControlAction::Pause, tl.track, position, false, None)?;
            }
            Command::Seek { position } => {
                self.require_dj("seek")?;
                let tl = self
                    .timeline
                    .clone()
                    .ok_or(SyncError::NothingLoaded { what: "seek" })?;
                check_position(&tl.track, position)?;
                self.dj_control(
                    now,
                    ControlAction::Seek,
                    tl.track,
                    position,
                    tl.playing,
                    None,
                )?;
            }
            Command::Next | Command::Previous => {
                let (step, which, what) = if c == Command::Next {
                    (1, "next", "skip to the next track")
                } else {
                    (-1, "previous", "go back a track")
                };
                self.require_dj(what)?;
                let (track, playing) = match &self.timeline {
                    Some(tl) => (
                        self.playlist
                            .neighbour(&tl.track.id, step)
                            .cloned()
                            .ok_or(SyncError::NoAdjacentTrack { which })?,
                        tl.playing,
                    ),
                    None => (
                        self.playlist
                            .tracks()
                            .first()
                            .cloned()
                            .ok_or(SyncError::EmptyPlaylist)?,
                        true,
                    ),
                };
                self.dj_control(now, ControlAction::TrackChange, track, 0.0, playing, None)?;
            }
            Command::Add(track) => {
                let session_id = self.session()?;
                self.playlist.check_append(&track)?;
                if self.socket_down().is_some() && self.peers.any() {
                    // The server is gone but the group is here: everyone sees the track at
                    // once over the mesh; only this device's outbox takes it to the server
                    // when it returns (peers that learn of it over the mesh never send it).
                    let mut tracks = self.playlist.tracks().to_vec();
                    tracks.push((*track).clone());
                    if self.set_playlist(tracks) {
                        let update = MeshPlaylist {
                            playlist: self.playlist.tracks().to_vec(),
                        };
                        self.mesh_send(None, kinds::PLAYLIST_UPDATE, None, &update);
                    }
                }
                self.actions.push_back(Action::Rest(RestCall::AppendTrack {
                    session_id,
                    track: *track,
                }));
            }
            Command::Remove { track } => {
                self.require_dj("remove tracks")?;
                let session_id = self.session()?;
                if self.playlist.get(&track).is_none() {
                    return Err(SyncError::UnknownTrack { id: track });
                }
                self.actions.push_back(Action::Rest(RestCall::DeleteTrack {
                    session_id,
                    track_id: track,
                }));
            }
            Command::Reorder { order } => {
                self.require_dj("reorder the playlist")?;
                let session_id = self.session()?;
                self.playlist.check_reorder(&order)?;
                self.actions
                    .push_back(Action::Rest(RestCall::Reorder { session_id, order }));
            }
        }
        Ok(())
    }

    /// The DJ's control: emitted with a server-clock timestamp and applied here at once (the
    /// server does not echo it to its sender).
    ///
    /// Play, seek and track change start at `start` (default: now + the lead) on the server
    /// clock, slightly in the future, so that every device schedules the same sample. This
    /// is still right for web clients that apply the seeds' rule `position + (now -
    /// timestamp)/1000`: with a timestamp in their future the rule yields a position a little
    /// *before* P now, which advances to exactly P at S, so they end up where we are (to
    /// their clock's accuracy, as with any seeds-rule client). Pause takes effect now.
    fn dj_control(
        &mut self,
        now: LocalTime,
        action: ControlAction,
        track: Track,
        position: f64,
        playing: bool,
        start: Option<ServerTime>,
    ) -> Result<(), SyncError> {
        let session_id = self.session()?;
        let server_now = self.clock.to_server(now);
        let start = match (start, action) {
            (Some(s), _) => s,
            (None, ControlAction::Pause) => server_now,
            (None, _) => server_now + self.cfg.control_lead_ms.max(0.0),
        };
        // A successor is obeyed over the mesh only: the server would refuse its words.
        if self.is_server_dj() {
            self.emit(&MusicControl {
                session_id,
                action,
                position,
                track: Some(track.clone()),
                timestamp: start,
            });
        }
        // The same control over the mesh at once: receivers apply whichever copy comes
        // first, so losing the server loses no control.
        let control = MeshControl {
            position,
            track_id: Some(track.id.clone()),
            track: Some(track.clone()),
            timestamp: start,
            from: Some(self.cfg.user_id),
        };
        if self.peers.any() {
            self.mesh_send(None, kinds::MUSIC_CONTROL, Some(action), &control);
        }
        self.paused_control = (!playing).then_some((action, control));
        self.timeline = Some(Timeline {
            track,
            playing,
            position_s: position,
            at_server_ms: start,
            precise: true,
        });
        self.join_wait = None;
        self.apply_timeline(now);
        self.refresh_dj(now, true);
        Ok(())
    }

    // ------------------------------------------------------------------ DJ duties

    /// (Re)plans the DJ's position syncs and the track change at the end of the track.
    /// `anchor_moved`: the timeline got a new anchor (sync right after it starts).
    fn refresh_dj(&mut self, now: LocalTime, anchor_moved: bool) {
        let timeline = self.timeline.clone().filter(|_| self.is_dj());
        let Some(tl) = timeline.filter(|t| t.playing) else {
            self.auto_advance = None;
            // Paused, the DJ still says it is there every period while the server is away
            // (`send_position_sync`); with nothing loaded or not the DJ, nothing to say.
            let paused = self.is_dj() && self.timeline.is_some();
            self.next_position_sync = match self.next_position_sync {
                Some(t) if paused && !anchor_moved => Some(t),
                _ if paused => Some(now + self.position_sync_period()),
                _ => None,
            };
            return;
        };
        let start_local = self.clock.to_local(tl.at_server_ms);
        if anchor_moved || self.next_position_sync.is_none() {
            // The first sync right after the start makes the server's memory exact for joiners.
            self.next_position_sync = Some(start_local.max(now));
        }
        self.auto_advance = tl.end_at().map(|end| {
            (
                self.clock.to_local(end) - self.cfg.control_lead_ms.max(0.0),
                tl.track.id.clone(),
            )
        });
    }

    fn position_sync_period(&self) -> f64 {
        let high = self.cfg.high_latency_link.unwrap_or_else(|| {
            self.clock
                .min_rtt()
                .is_some_and(|r| r >= HIGH_LATENCY_RTT_MS)
        });
        if high {
            HIGH_LATENCY_POSITION_SYNC_PERIOD_MS
        } else {
            POSITION_SYNC_PERIOD_MS
        }
    }

    fn send_position_sync(&mut self, now: LocalTime) {
        let server_now = self.clock.to_server(now);
        let Some(tl) = self.timeline.as_ref() else {
            return;
        };
        if !tl.playing {
            return self.send_paused_heartbeat();
        }
        let position = tl.position_at(server_now);
        if !self.reaches_group() || server_now < tl.at_server_ms || position > track_end(&tl.track)
        {
            return;
        }
        let Some(session_id) = self.session_id.clone() else {
            return;
        };
        if !self.connected && self.peers.any() {
            let sync = MeshPositionSync {
                position,
                track_id: Some(tl.track.id.clone()),
                timestamp: server_now,
            };
            self.mesh_send(None, kinds::POSITION_SYNC, None, &sync);
        }
        if self.is_server_dj() {
            self.emit(&PositionSync {
                session_id,
                position,
                timestamp: server_now,
            });
        }
    }

    /// A paused DJ with the server away sends its last control (the pause, or a seek or
    /// track change made while paused) again over the mesh each
    /// period (a new sequence number, signed, relayed like the first): peers that reach it
    /// only through others hear it is there and pick no successor, those that missed the
    /// pause apply it, and the others recognise it as a copy already applied
    /// (docs/mesh-trust.md, "Relaying").
    fn send_paused_heartbeat(&mut self) {
        if self.connected || !self.peers.any() {
            return;
        }
        let Some((action, control)) = self.paused_control.clone() else {
            return;
        };
        // Only while it still says where the group is (nothing moved it since).
        let current = self.timeline.as_ref().is_some_and(|tl| {
            !tl.playing
                && control.track_id.as_deref() == Some(tl.track.id.as_str())
                && control.position.to_bits() == tl.position_s.to_bits()
                && control.timestamp.to_bits() == tl.at_server_ms.to_bits()
        });
        if current {
            self.mesh_send(None, kinds::MUSIC_CONTROL, Some(action), &control);
        }
    }

    fn advance_at_end(&mut self, now: LocalTime) {
        self.auto_advance = None;
        let Some(tl) = self.timeline.clone().filter(|t| t.playing) else {
            return;
        };
        let start = tl.end_at();
        let Some(next) = self.playlist.neighbour(&tl.track.id, 1).cloned() else {
            return self.stop_at_playlist_end(now, tl);
        };
        if let Err(e) = self.dj_control(now, ControlAction::TrackChange, next, 0.0, true, start) {
            self.error(None, e);
        }
    }

    /// The last track of the playlist ends: the session stops there for everyone. The DJ
    /// announces it like a pause at the track's end (so web clients stop too), when the end
    /// has come (not a lead ahead: a pause takes effect on arrival).
    fn stop_at_playlist_end(&mut self, now: LocalTime, tl: Timeline) {
        let Some(end) = tl.end_at() else {
            return;
        };
        let end_local = self.clock.to_local(end);
        if now < end_local {
            self.auto_advance = Some((end_local, tl.track.id.clone()));
            return;
        }
        let position = track_end(&tl.track);
        let (track, start) = (tl.track, Some(end));
        if let Err(e) = self.dj_control(now, ControlAction::Pause, track, position, false, start) {
            self.error(None, e);
        }
    }

    /// The end of the playing track has come on this device. A DJ on line has it in hand
    /// (track change or the end-of-playlist pause); anyone else stops at the end of the last
    /// track by itself, as the DJ's pause will say (a web DJ sends none), and never reports a
    /// position past it.
    fn on_end_of_track(&mut self, now: LocalTime) {
        self.end_timer = None;
        if self.is_dj() && self.reaches_group() {
            return;
        }
        let Some(tl) = self.timeline.clone().filter(|t| t.playing) else {
            return;
        };
        let Some(end) = tl.end_at() else {
            return;
        };
        let end_local = self.clock.to_local(end);
        if now < end_local {
            self.end_timer = Some(end_local); // the clock estimate moved it
            return;
        }
        if self.playlist.neighbour(&tl.track.id, 1).is_some() {
            return; // the DJ changes track
        }
        self.timeline = Some(Timeline {
            playing: false,
            position_s: track_end(&tl.track),
            at_server_ms: end,
            ..tl
        });
        self.apply_timeline(now);
    }

    fn on_track_ended(&mut self, now: LocalTime, track: &str) {
        let ended_unplanned = self.is_dj()
            && self
                .timeline
                .as_ref()
                .is_some_and(|t| t.playing && t.track.id == track && t.end_at().is_none());
        if !ended_unplanned {
            return;
        }
        let Some(tl) = self.timeline.clone() else {
            return;
        };
        let r = match self.playlist.neighbour(&tl.track.id, 1).cloned() {
            Some(next) => self.dj_control(now, ControlAction::TrackChange, next, 0.0, true, None),
            // The end of the playlist: stop there, for everyone.
            None => {
                let position = self.current_position(&tl, now);
                self.dj_control(now, ControlAction::Pause, tl.track, position, false, None)
            }
        };
        if let Err(e) = r {
            self.error(None, e);
        }
    }

    // ------------------------------------------------------------------ playout

    /// Hands the timeline to the player (unless a joiner is still settling).
    fn apply_timeline(&mut self, now: LocalTime) {
        if self.join_wait.is_some() {
            return;
        }
        // Whatever comes next (a pause, a stop, a new start), the offset measured so far no
        // longer describes it.
        self.meter.reset();
        let Some(tl) = self.timeline.clone() else {
            self.started = None;
            self.end_buffering_unless(None);
            self.next_audio_query = None;
            self.next_playback_report = None;
            self.end_timer = None;
            self.actions.push_back(Action::Audio(AudioCommand::Stop));
            self.stop_external();
            self.push_notify(Notification::Playback {
                playing: false,
                track: None,
                position: 0.0,
                at: now,
                sync_offset_ms: None,
            });
            return;
        };
        if !tl.playing {
            self.started = None;
            self.end_buffering_unless(None);
            self.next_audio_query = None;
            self.next_playback_report = None;
            self.end_timer = None;
            self.actions.push_back(Action::Audio(AudioCommand::Pause));
            self.pause_external(&tl);
            self.push_notify(Notification::Playback {
                playing: false,
                track: Some(tl.track.id.clone()),
                position: tl.position_s.min(track_end(&tl.track)),
                at: now,
                sync_offset_ms: None,
            });
            return;
        }
        // A timeline that ran past the end of its track (a joiner at the very end, a late
        // message): nothing to start; the DJ's track change follows.
        let due_now = tl.position_at(self.clock.to_server(now));
        if due_now >= track_end(&tl.track).min(MAX_TRACK_LENGTH_S) {
            self.started = None;
            self.end_buffering_unless(None);
            self.next_audio_query = None;
            self.next_playback_report = None;
            self.end_timer = None;
            self.actions.push_back(Action::Audio(AudioCommand::Stop));
            self.stop_external();
            return;
        }
        let at = self.clock.to_local(tl.at_server_ms);
        self.start_player(&tl, at, now);
        if std::mem::take(&mut self.joining) {
            self.playout.begin_join_phase(at.max(now) + JOIN_PHASE_MS);
        }
        self.stats.starts += 1;
        self.next_audio_query = Some(at.max(now) + AUDIO_CLOCK_INTERVAL_MS);
        self.next_playback_report = Some(at.max(now) + PLAYBACK_REPORT_PERIOD_MS);
        self.end_timer = tl.end_at().map(|end| self.clock.to_local(end));
        self.push_notify(Notification::Playback {
            playing: true,
            track: Some(tl.track.id.clone()),
            position: tl.position_s.min(track_end(&tl.track)),
            at,
            sync_offset_ms: None,
        });
        if let Some(next) = self
            .playlist
            .neighbour(&tl.track.id, 1)
            .and_then(|t| crate::sources::audio_of(t).ok())
        {
            self.actions
                .push_back(Action::Audio(AudioCommand::Preload(next)));
        }
    }

    /// Starts the player on `tl`, due at local `at`. An anchor in the past is first carried
    /// to `now` along the timeline: the player extrapolates a late start with its current
    /// rate trim, which over a long-past anchor (a re-sync minutes into a track) would put it
    /// off by trim x lateness (700 ppm x 60 s = 42 ms).
    fn start_player(&mut self, tl: &Timeline, at: LocalTime, now: LocalTime) {
        let (position, at) = if at < now {
            (tl.position_at(self.clock.to_server(now)), now)
        } else {
            (tl.position_s, at)
        };
        self.start_at(tl, position, at);
    }

    /// Hands the player `position` of the timeline's track, due at local `at`. A track this
    /// device cannot play (`sources::audio_of`) silences it instead, says why once, and
    /// leaves the timeline running: the next track starts on time.
    fn start_at(&mut self, tl: &Timeline, position: f64, at: LocalTime) {
        self.playout.reset();
        self.meter.reset();
        if self.start_external(tl, position, at) {
            return;
        }
        self.stop_external();
        match crate::sources::audio_of(&tl.track) {
            Ok(track) => {
                self.silent_for = None;
                self.end_buffering_unless(Some(&tl.track.id));
                self.started = Some(Started {
                    track_id: tl.track.id.clone(),
                    at,
                });
                self.actions.push_back(Action::Audio(AudioCommand::Start {
                    track,
                    position,
                    at,
                }));
            }
            Err(reason) => {
                self.started = None;
                self.end_buffering_unless(None);
                self.actions.push_back(Action::Audio(AudioCommand::Stop));
                if self.silent_for.as_deref() != Some(tl.track.id.as_str()) {
                    self.silent_for = Some(tl.track.id.clone());
                    self.push_notify(Notification::NotPlayable {
                        track: tl.track.id.clone(),
                        reason,
                    });
                }
            }
        }
    }

    fn on_audio_clock(&mut self, now: LocalTime, at: LocalTime, heard: Option<Heard>) {
        if self.join_wait.is_some() || self.output_lost || !at.is_finite() {
            return;
        }
        let (Some(tl), Some(started)) = (self.timeline.clone(), self.started.clone()) else {
            return;
        };
        // Before a (re)start lands, what is heard is what it replaces.
        if !tl.playing || at < started.at {
            return;
        }
        let server_at = self.clock.to_server(at);
        if server_at < tl.at_server_ms || tl.end_at().is_some_and(|end| server_at >= end) {
            return;
        }
        let due = tl.position_at(server_at);
        match heard {
            Some(h) if h.track == tl.track.id && h.position.is_finite() => {
                self.heard_after_buffering(&h.track);
                let error_ms = (h.position - due) * 1000.0;
                self.last_heard = Some((at, h));
                self.stats.last_error_ms = Some(error_ms);
                self.meter.observe(at, error_ms);
                match self.playout.observe(at, error_ms, self.clock.drift_ppm()) {
                    Decision::Keep => {}
                    Decision::Trim(ppm) => self
                        .actions
                        .push_back(Action::Audio(AudioCommand::SetRateTrim { ppm })),
                    Decision::Hard => self.restart(now, RestartCause::Drift { error_ms }),
                }
            }
            // Silence or another track well after the start: the start was lost (a track
            // still downloading). Retry, slowly.
            _ => {
                let waiting = self.buffering.as_deref() == Some(started.track_id.as_str());
                if waiting && !self.bytes_back {
                    return; // silent while its bytes arrive: in step once they are there
                }
                let since = self.buffered_at.map_or(started.at, |b| b.max(started.at));
                if now - since >= HARD_SYNC_COOLDOWN_MS && self.playout.may_force(now) {
                    self.restart(now, RestartCause::Silence);
                }
            }
        }
    }

    // ------------------------------------------------------------------ external player

    /// Hands a YouTube track to the external player, if this device has one and it has not
    /// failed on this track; `false` when the track is not the external player's.
    fn start_external(&mut self, tl: &Timeline, position: f64, at: LocalTime) -> bool {
        let video = match (&tl.track.source, tl.track.youtube_id.as_deref()) {
            (jamz_proto::TrackSource::Youtube, Some(id)) if self.cfg.external_video_player => {
                id.to_owned()
            }
            _ => return false,
        };
        if self.external_failed.as_deref() == Some(tl.track.id.as_str()) {
            return false; // silent for it (said so when the player failed)
        }
        self.started = None;
        self.silent_for = None;
        self.actions.push_back(Action::Audio(AudioCommand::Stop));
        self.external.started(at);
        self.external_track = Some(tl.track.id.clone());
        self.actions
            .push_back(Action::External(crate::external::Directive::Play {
                video,
                position,
                at,
            }));
        true
    }

    /// Pauses the external player at the timeline's position, if it holds the track.
    fn pause_external(&mut self, tl: &Timeline) {
        if self.external_track.as_deref() != Some(tl.track.id.as_str()) {
            self.stop_external();
            return;
        }
        if let Some(video) = tl.track.youtube_id.clone() {
            self.actions
                .push_back(Action::External(crate::external::Directive::Pause {
                    video,
                    position: tl.position_s.min(track_end(&tl.track)),
                }));
        }
    }

    /// Unloads the external player, if it holds anything.
    fn stop_external(&mut self) {
        if self.external_track.take().is_some() {
            self.actions
                .push_back(Action::External(crate::external::Directive::Stop));
        }
    }

    /// A reading is judged against the timeline (a seek ahead when it is off); an error
    /// leaves this device silent for the track, in step, and says why.
    fn on_external(&mut self, now: LocalTime, report: ExternalReport) {
        let Some(tl) = self.timeline.clone() else {
            return;
        };
        let holds = |video: &str| {
            self.external_track.as_deref() == Some(tl.track.id.as_str())
                && tl.track.youtube_id.as_deref() == Some(video)
        };
        match report {
            ExternalReport::Error { video, code } if holds(&video) => {
                self.external_failed = Some(tl.track.id.clone());
                self.stop_external();
                self.silent_for = Some(tl.track.id.clone());
                self.push_notify(Notification::NotPlayable {
                    track: tl.track.id.clone(),
                    reason: crate::external::player_error_message(code),
                });
            }
            ExternalReport::Reading { video, reading } if holds(&video) => {
                if let Some(d) = reading.duration_s.and_then(crate::external::video_duration) {
                    self.learn_duration(now, &tl.track.id, d);
                }
                if !tl.playing {
                    return;
                }
                let server_at = self.clock.to_server(reading.at);
                if server_at < tl.at_server_ms {
                    return; // the start has not landed yet
                }
                let due = tl.position_at(server_at);
                self.stats.last_error_ms = Some((reading.position_s - due) * 1000.0);
                if self.external.on_reading(reading, due) == Correction::Seek {
                    let at = now + EXTERNAL_PLAY_LEAD_MS;
                    let position = tl.position_at(self.clock.to_server(at));
                    if position < track_end(&tl.track) {
                        self.stats.hard_resyncs += 1;
                        self.actions.push_back(Action::External(
                            crate::external::Directive::Play {
                                video,
                                position,
                                at,
                            },
                        ));
                    }
                }
            }
            // A report of another video (one the player held before) or while paused.
            _ => {}
        }
    }

    /// The external player knows the duration of the track it holds, which the track
    /// lacks (YouTube's oEmbed gives none, so a video added by link has none until a player
    /// loads it). This device's timeline takes it at once (the end of the track, the DJ's
    /// track change, the position bar). The shared playlist takes it from the DJ only:
    /// docs/protocol.md lets the DJ send any playlist (`playlist-update`) but anyone else
    /// only append, so a member's device keeps the duration to itself and the track gets it
    /// for everyone when a DJ's device learns it.
    fn learn_duration(&mut self, now: LocalTime, track_id: &str, duration: f64) {
        let mut timeline_moved = false;
        if let Some(tl) = self.timeline.as_mut().filter(|t| t.track.id == track_id)
            && track_end(&tl.track).is_infinite()
        {
            tl.track.duration = Some(duration);
            timeline_moved = true;
        }
        if timeline_moved {
            let playing = self.timeline.as_ref().filter(|t| t.playing);
            self.end_timer = playing
                .and_then(Timeline::end_at)
                .map(|end| self.clock.to_local(end));
            self.refresh_dj(now, false);
        }
        let Some(index) = self.playlist.index_of(track_id) else {
            return;
        };
        if self.playlist.tracks()[index].duration.is_some() {
            return;
        }
        let mut tracks = self.playlist.tracks().to_vec();
        tracks[index].duration = Some(duration);
        if !self.set_playlist(tracks) || !self.is_dj() {
            return;
        }
        let playlist = self.playlist.tracks().to_vec();
        if !self.connected && self.peers.any() {
            let update = MeshPlaylist {
                playlist: playlist.clone(),
            };
            self.mesh_send(None, kinds::PLAYLIST_UPDATE, None, &update);
        }
        if self.connected
            && self.is_server_dj()
            && let Some(session_id) = self.session_id.clone()
        {
            self.emit(&PlaylistUpdate {
                session_id,
                playlist,
            });
        }
    }

    /// The player waits for (or has again) the bytes of `track`. Only the track the
    /// timeline plays counts. The wait is told when it begins, and as over once the track
    /// is heard again after its bytes came back (a player catching up after a long stall
    /// is silent a little longer than the bytes are missing).
    fn on_buffering(&mut self, now: LocalTime, track: String, buffering: bool) {
        let current = self.started.as_ref().is_some_and(|s| s.track_id == track);
        if buffering {
            if current {
                self.bytes_back = false;
                if self.buffering.as_deref() != Some(track.as_str()) {
                    self.buffering = Some(track.clone());
                    self.push_notify(Notification::Buffering {
                        track,
                        buffering: true,
                    });
                }
            }
        } else if self.buffering.as_deref() == Some(track.as_str()) && !self.bytes_back {
            self.bytes_back = true;
            self.buffered_at = Some(now);
        }
    }

    /// The track waiting for its bytes is heard again: the wait is over.
    fn heard_after_buffering(&mut self, track: &str) {
        if self.bytes_back && self.buffering.as_deref() == Some(track) {
            self.buffering = None;
            self.push_notify(Notification::Buffering {
                track: track.to_owned(),
                buffering: false,
            });
        }
    }

    /// The track waiting for its bytes, if any (`status`'s `buffering`).
    pub fn buffering(&self) -> Option<&str> {
        self.buffering.as_deref()
    }

    /// Forgets a wait for bytes of a track no longer started here (told as over).
    fn end_buffering_unless(&mut self, track: Option<&str>) {
        if self.buffering.is_some()
            && self.buffering.as_deref() != track
            && let Some(t) = self.buffering.take()
        {
            self.push_notify(Notification::Buffering {
                track: t,
                buffering: false,
            });
        }
    }

    /// The one way the player is restarted on the current timeline, whatever the cause: the
    /// playout windows start over, the restart cooldown begins, the statistics count it and
    /// a `Resync` notification says why. For what the output reported, the start is
    /// [`RESTART_LEAD_MS`] ahead (or at a pending start's own instant, if later); for drift
    /// or a lost start it is at once.
    fn restart(&mut self, now: LocalTime, cause: RestartCause) {
        if self.join_wait.is_some() || self.started.is_none() {
            return; // nothing handed to the player yet: its first start is still to come
        }
        let Some(tl) = self.timeline.clone().filter(|t| t.playing) else {
            return;
        };
        let anchor = self.clock.to_local(tl.at_server_ms);
        let ahead = now + RESTART_LEAD_MS;
        let lead = cause.is_output_event() && ahead > anchor;
        let lands = if lead { ahead } else { anchor.max(now) };
        if tl.position_at(self.clock.to_server(lands)) >= track_end(&tl.track) {
            return; // the track ends before the restart would land; the next start follows
        }
        if cause.is_output_event() {
            self.stats.output_restarts += 1;
        } else {
            self.stats.hard_resyncs += 1;
        }
        let stall = matches!(cause, RestartCause::Stall { .. });
        if lead && stall {
            // A stall delays the same stream on the same device: start again ahead on the
            // timeline, and keep the playout windows, the start they measure against and
            // the cooldown as they were. Resetting them on each stall was followed by drift
            // restarts on the PulseAudio path (several stalls of 50-70 ms follow a stream's
            // first one there), and first-start medians of 4-54 ms in node_pulse instead of
            // under 1 ms.
            let position = tl.position_at(self.clock.to_server(ahead));
            let Ok(track) = crate::sources::audio_of(&tl.track) else {
                return; // never started: nothing plays to restart
            };
            self.actions.push_back(Action::Audio(AudioCommand::Start {
                track,
                position,
                at: ahead,
            }));
        } else if lead {
            // Another device, or one that was gone: what it reports before the start
            // lands is not this timeline, so measuring starts over from that start.
            let position = tl.position_at(self.clock.to_server(ahead));
            self.start_at(&tl, position, ahead);
            self.playout.forced(now);
        } else {
            // At once (or at a start still to come, which keeps its own instant).
            self.start_player(&tl, anchor, now);
            self.playout.forced(now);
        }
        self.push_notify(Notification::Resync { cause });
    }

    // ------------------------------------------------------------------ timers

    fn on_timers(&mut self, now: LocalTime) {
        if self
            .peer_calibration
            .next_timeout()
            .is_some_and(|t| now >= t)
        {
            self.calibration(now, |pc, cx, out| pc.on_tick(cx, out));
        }
        if let Some(t0) = self.server_clock().poll_probe(now) {
            self.actions.push_back(Action::TimeSync {
                t0,
                timeout_ms: TIME_SYNC_TIMEOUT_MS,
            });
        }
        self.report_clock(now);
        if let Some(deadline) = self.join_wait {
            let precise = self.timeline.as_ref().is_some_and(|t| t.precise);
            if now >= deadline || (self.clock.ready() && precise) {
                self.join_wait = None;
                self.apply_timeline(now);
            }
        }
        if self.next_audio_query.is_some_and(|t| now >= t) {
            self.actions
                .push_back(Action::Audio(AudioCommand::QueryClock));
            self.next_audio_query = Some(now + AUDIO_CLOCK_INTERVAL_MS);
        }
        if self.end_timer.is_some_and(|t| now >= t) {
            self.on_end_of_track(now);
        }
        if self.next_playback_report.is_some_and(|t| now >= t) {
            self.next_playback_report = Some(now + PLAYBACK_REPORT_PERIOD_MS);
            self.report_playback(now);
        }
        if self.is_dj() && self.reaches_group() {
            if self.next_position_sync.is_some_and(|t| now >= t) {
                self.send_position_sync(now);
                self.next_position_sync = Some(now + self.position_sync_period());
            }
            if self.auto_advance.as_ref().is_some_and(|(t, _)| now >= *t) {
                self.advance_at_end(now);
            }
        }
    }

    /// The periodic `playback`: what the player last said it plays, carried to `now`, or
    /// (silent, still loading) where the group is; never past the track's end.
    fn report_playback(&mut self, now: LocalTime) {
        let Some(tl) = self.timeline.clone().filter(|t| t.playing) else {
            self.next_playback_report = None;
            return;
        };
        let fresh = self.last_heard.as_ref().filter(|(at, h)| {
            h.track == tl.track.id && now >= *at && now - at <= 2.0 * AUDIO_CLOCK_INTERVAL_MS
        });
        let position = match fresh {
            Some((at, h)) => h.position + (now - at) / 1000.0,
            None => self.current_position(&tl, now),
        };
        self.push_notify(Notification::Playback {
            playing: true,
            track: Some(tl.track.id.clone()),
            position: position.min(track_end(&tl.track)),
            at: now,
            sync_offset_ms: self.meter.reading(now).map(|r| r.offset_ms),
        });
    }

    fn report_clock(&mut self, now: LocalTime) {
        let source = self.clock.source();
        let samples = self.clock.samples();
        let milestone = samples == u64::from(TIME_SYNC_BURST)
            || (samples > 0 && samples.is_multiple_of(CLOCK_REPORT_EVERY));
        if self.reported_source != Some(source) || (milestone && self.reported_samples != samples) {
            self.reported_source = Some(source);
            self.reported_samples = samples;
            let e = self.clock.estimate(now);
            self.push_notify(Notification::ClockEstimate {
                offset_ms: e.offset_ms,
                drift_ppm: e.drift_ppm,
                rtt_ms: e.rtt_ms,
                source: e.source,
            });
        }
    }

    // ------------------------------------------------------------------ location

    /// Whether this device shares its position now.
    pub fn location_sharing(&self) -> bool {
        self.location.sharing()
    }

    /// This car's fixes waiting for the server (sent by REST when the link is back).
    pub fn locations_waiting(&self) -> usize {
        self.location.waiting()
    }

    /// This car's fixes not known to have reached the server, oldest first (for a device
    /// to keep on disk; given back by [`crate::location::LocationInput::Kept`] after a restart).
    pub fn location_backlog(&self) -> Vec<jamz_proto::rest::LocationReport> {
        self.location.backlog()
    }

    /// Changes whenever [`Engine::location_backlog`] does.
    pub fn location_backlog_version(&self) -> u64 {
        self.location.backlog_version()
    }

    /// Hands something that happened to the location part; its actions follow.
    fn location_happened(&mut self, now: LocalTime, h: Happening<'_>) {
        let ctx = Ctx {
            user: self.cfg.user_id,
            session: self.session_id.as_deref(),
            connected: self.connected,
            server_now: self.clock.to_server(now),
            dj: self.controller.as_ref().map(|c| c.user_id),
        };
        self.location.handle(now, h, &ctx);
        self.actions.extend(self.location.drain());
        let mesh: Vec<MeshOut> = self.location.drain_mesh().collect();
        for out in mesh {
            self.stamp_and_send(None, out);
        }
    }

    // ------------------------------------------------------------------ helpers

    fn current_position(&self, tl: &Timeline, now: LocalTime) -> f64 {
        // Before a pending start, the track is still at the anchor.
        tl.position_at(self.clock.to_server(now))
            .max(tl.position_s)
            .max(0.0)
    }

    /// Only the DJ's controls change the timeline. The server already enforces this; a relay
    /// naming another user is a stale one from a former DJ, or a server without the rule.
    fn check_sender(&self, user: Option<UserId>) -> Result<(), SyncError> {
        match (user, self.controller()) {
            (Some(u), Some(dj)) if u != dj => Err(SyncError::ControlFromNonDj {
                user: u,
                dj: DjName(Some(dj)),
            }),
            _ => Ok(()),
        }
    }

    fn check_timestamp(&self, now: LocalTime, timestamp: f64) -> Result<(), SyncError> {
        if !timestamp.is_finite() {
            return Err(SyncError::InvalidTimestamp { timestamp });
        }
        let ahead_ms = timestamp - self.clock.to_server(now);
        if ahead_ms > MAX_FUTURE_TIMESTAMP_MS {
            return Err(SyncError::TimestampInFuture {
                timestamp,
                ahead_ms,
                limit_ms: MAX_FUTURE_TIMESTAMP_MS,
            });
        }
        if -ahead_ms > MAX_PAST_TIMESTAMP_MS {
            return Err(SyncError::TimestampInPast {
                timestamp,
                behind_ms: -ahead_ms,
                limit_ms: MAX_PAST_TIMESTAMP_MS,
            });
        }
        Ok(())
    }

    /// The playable track a relay names: the playlist's entry, or the relayed object if it
    /// carries a url (a track added a moment ago whose playlist update is still on its way).
    fn resolve_track(&self, track: Option<Track>) -> Result<Track, SyncError> {
        let Some(t) = track else {
            return self
                .timeline
                .as_ref()
                .map(|tl| tl.track.clone())
                .ok_or(SyncError::NoTrack);
        };
        let known = (!t.id.is_empty())
            .then(|| self.playlist.get(&t.id))
            .flatten()
            .or_else(|| self.playlist.duplicate_of(&t))
            .cloned();
        match known {
            Some(k) if crate::sources::playable_somewhere(&k) => Ok(k),
            _ if crate::sources::playable_somewhere(&t) => Ok(t),
            _ => Err(SyncError::UnknownTrack { id: t.id }),
        }
    }

    fn require_dj(&self, what: &'static str) -> Result<(), SyncError> {
        if self.is_dj() {
            Ok(())
        } else {
            Err(SyncError::NotDj {
                what,
                dj: DjName(self.controller()),
            })
        }
    }

    fn session(&self) -> Result<String, SyncError> {
        self.session_id.clone().ok_or(SyncError::NoSession)
    }

    /// Takes a playlist; `false` (and an error notification) if it is refused.
    fn set_playlist(&mut self, tracks: Vec<Track>) -> bool {
        match self.playlist.replace(tracks) {
            Ok(()) => {
                self.push_notify(Notification::Playlist {
                    playlist: self.playlist.tracks().to_vec(),
                });
                true
            }
            Err(e) => {
                self.error(None, e);
                false
            }
        }
    }

    /// The playlist a REST change answered with. In the seeds' flow the server only stores
    /// a REST change; the client that made it tells the room with `playlist-update`, as the
    /// web app does. Not to a server that tells the room itself: there the copy is stored
    /// too, and arriving after a later change (the socket is slower than the next REST
    /// call) it would undo that change until a newer copy came, or for good if that one
    /// was lost with the connection. Never queued for a later connection either.
    fn on_rest_playlist(&mut self, tracks: Vec<Track>) {
        if !self.set_playlist(tracks) || self.rest_broadcasts {
            return;
        }
        if !self.connected {
            self.playlist_echo_owed = true;
            return;
        }
        if let Some(session_id) = self.session_id.clone() {
            self.emit(&PlaylistUpdate {
                session_id,
                playlist: self.playlist.tracks().to_vec(),
            });
        }
    }

    fn set_controller(&mut self, c: Option<Controller>) {
        if self.controller != c {
            self.controller = c;
            self.announce_dj();
        }
    }

    fn announce_dj(&mut self) {
        self.announced_dj = self.controller();
        self.push_notify(Notification::Controller {
            user_id: self.announced_dj,
        });
    }

    fn notify_participants(&mut self) {
        self.push_notify(Notification::Participants {
            participants: self.participants.clone(),
        });
    }

    fn emit<E: Event>(&mut self, e: &E) {
        match serde_json::to_value(e) {
            Ok(data) => self.actions.push_back(Action::Emit {
                event: E::NAME,
                data,
            }),
            // Plain structs with string keys always serialize; this cannot happen.
            Err(err) => self.error(
                None,
                SyncError::Server {
                    message: format!("cannot encode {}: {err}", E::NAME),
                },
            ),
        }
    }

    /// Runs one step of the relative calibration and carries out what it decided.
    fn calibration(
        &mut self,
        now: LocalTime,
        step: impl FnOnce(&mut PeerCalibration, &peer::Context<'_>, &mut Vec<peer::Out>),
    ) {
        let mesh_links = self.vouched_links();
        let cx = peer::Context {
            now,
            me: self.cfg.user_id,
            session_id: self.session_id.as_deref(),
            connected: self.connected,
            mesh_links: &mesh_links,
            playing: self.timeline.as_ref().is_some_and(|t| t.playing),
            // The estimate the music plays by: it is the music's lateness that is measured.
            clock: self.clock.estimate(now),
        };
        let mut out = Vec::new();
        step(&mut self.peer_calibration, &cx, &mut out);
        self.stats.calibration_refused = self.peer_calibration.refused;
        for o in out {
            match o {
                peer::Out::Send(m) => {
                    // Through the server while it is there; else straight over the
                    // target's own mesh link, never relayed (docs/protocol.md, "Relative
                    // calibration (ext)").
                    if self.connected {
                        self.emit(&m);
                    } else if mesh_links.contains(&m.target) {
                        self.mesh_send(Some(m.target), kinds::CALIBRATION_UPDATE, None, &m);
                    } else {
                        self.error(
                            Some(peer::COMMAND),
                            SyncError::Server {
                                message: format!(
                                    "neither the server nor a mesh link reaches user {}: the calibration's message was not sent",
                                    m.target
                                ),
                            },
                        );
                    }
                }
                peer::Out::Do(a) => self.actions.push_back(Action::Calibration(a)),
                peer::Out::Notify(n) => self.push_notify(n),
            }
        }
    }

    fn push_notify(&mut self, n: Notification) {
        self.actions.push_back(Action::Notify(n));
    }

    fn error(&mut self, cmd: Option<&'static str>, e: SyncError) {
        self.push_notify(Notification::Error {
            message: e.to_string(),
            cmd: cmd.map(str::to_owned),
        });
    }
}

/// How many earlier socket ids are remembered (one per reconnect).
const OLD_SOCKETS_KEPT: usize = 16;

/// Every `CLOCK_REPORT_EVERY` time-sync samples, the estimate is reported.
const CLOCK_REPORT_EVERY: u64 = 60;

fn view(p: jamz_proto::events::ParticipantInfo) -> ParticipantView {
    ParticipantView {
        user_id: p.user_id,
        display_name: p.display_name,
        socket_id: p.socket_id,
    }
}

/// Where a track ends (s), infinity when unknown.
fn track_end(track: &Track) -> f64 {
    track
        .duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(f64::INFINITY)
}

fn check_position(track: &Track, position: f64) -> Result<(), SyncError> {
    if !position.is_finite() || position < 0.0 {
        return Err(SyncError::InvalidPosition { position });
    }
    if position > track_end(track).min(MAX_TRACK_LENGTH_S) + TRACK_END_TOLERANCE_S {
        return Err(SyncError::PositionPastEnd {
            position,
            duration: track_end(track).min(MAX_TRACK_LENGTH_S),
            title: track.title.clone(),
        });
    }
    Ok(())
}

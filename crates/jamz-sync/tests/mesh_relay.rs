//! Relaying over the peer mesh (docs/mesh-trust.md, "Relaying"): with the server gone, a
//! peer that has no link to the DJ still obeys it, through a peer that has. The DJ's device
//! signs what it sends with the key the server's grant names; each peer relays the first
//! copy of a signed DJ message it admits to its other links, one hop less to go; a relayed
//! message is obeyed only when that signature checks against an unexpired grant signed by
//! the server's key. Everything else is dropped and counted.
//!
//! The world here: engines wired by a little network that carries each mesh message as
//! the JSON text the node sends, over the links it is given (DJ - B - C: no DJ - C link).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use common::*;
use ed25519_dalek::Signer;
use jamz_proto::events::{MusicControllerChanged, SignalData, SignalType, WebrtcSignal, names};
use jamz_proto::grant::ControllerGrant;
use jamz_proto::mesh::{MeshEnvelope, kinds};
use jamz_proto::{ServerEvent, UserId};
use jamz_sync::trust::{Acting, DJ_ABSENCE_MS, DeviceKey};
use jamz_sync::{Action, AudioCommand, Command, Engine, EngineConfig, Input};

const DJ: UserId = 1;
const B: UserId = 2;
const C: UserId = 3;

/// The server is this far ahead of every engine's clock.
const OFFSET_MS: f64 = 500.0;

fn device_of(user: UserId) -> DeviceKey {
    DeviceKey::from_seed([40 + user as u8; 32])
}

/// The server's grant for the DJ's device, at epoch 1, expiring at server ms `expires_at`.
fn dj_grant(expires_at: u64) -> ControllerGrant {
    let mut g = ControllerGrant {
        session_id: SESSION.into(),
        user_id: DJ,
        epoch: 1,
        device_key: Some(device_of(DJ).public_hex()),
        issued_at: 0,
        expires_at,
        sig: String::new(),
    };
    g.sig = hex::encode(grant_signer().sign(&g.signing_bytes().unwrap()).to_bytes());
    g
}

/// Engines by user, the links between them, and what is on the wire.
struct Net {
    engines: BTreeMap<UserId, Engine>,
    links: BTreeSet<(UserId, UserId)>,
    /// (from, to, JSON text), in the order sent.
    wire: VecDeque<(UserId, UserId, String)>,
    /// Every action each engine produced, in order.
    seen: BTreeMap<UserId, Vec<Action>>,
    now: f64,
    /// Messages of this type from this user are lost on the wire.
    mute: Option<(UserId, &'static str)>,
}

impl Net {
    /// Every user connected with the server's key and clock, the DJ (user 1, with the
    /// grant `grant`) playing track 1, and the mesh links `links` open.
    fn new(users: &[UserId], links: &[(UserId, UserId)], grant: ControllerGrant) -> Self {
        let mut engines = BTreeMap::new();
        let mut now: f64 = 0.0;
        for &u in users {
            let mut cfg = EngineConfig::new(u, format!("user {u}")).with_session(SESSION);
            cfg.device_key = Some(device_of(u));
            let mut e = Engine::new(cfg);
            e.handle(
                0.0,
                Input::Connected {
                    socket_id: socket_of(u),
                },
            );
            e.handle(0.0, Input::GrantKey(grant_key()));
            now = now.max(sync_clock(&mut e, 0.0, OFFSET_MS, 20));
            engines.insert(u, e);
        }
        let mut net = Net {
            engines,
            links: links.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect(),
            wire: VecDeque::new(),
            seen: BTreeMap::new(),
            now,
            mute: None,
        };
        let granted = ServerEvent::MusicControllerChanged(MusicControllerChanged {
            controller_id: socket_of(DJ),
            user_id: DJ,
            timestamp: 0.0,
            grant: Some(grant),
        });
        net.server_to_all(granted);
        net.server_to_all(playlist(vec![track(1, 600.0), track(2, 600.0)]));
        for &(a, b) in &net.links.clone() {
            net.input(
                a,
                Input::PeerUp {
                    user: b,
                    rtt_ms: Some(1.0),
                },
            );
            net.input(
                b,
                Input::PeerUp {
                    user: a,
                    rtt_ms: Some(1.0),
                },
            );
        }
        // The DJ plays while the server is there: everyone hears it over the socket.
        let actions = net.input(DJ, Input::Command(play()));
        let sent = emitted(&actions, names::MUSIC_CONTROL);
        let data = sent[0].clone();
        let track: jamz_proto::Track = serde_json::from_value(data["track"].clone()).unwrap();
        let relay = relay(
            DJ,
            Some(track),
            data["position"].as_f64().unwrap(),
            data["timestamp"].as_f64().unwrap(),
        );
        for u in users.iter().filter(|&&u| u != DJ) {
            net.input(*u, Input::Server(ServerEvent::MusicPlay(relay.clone())));
        }
        net.deliver();
        net.seen.clear();
        net
    }

    fn server_to_all(&mut self, ev: ServerEvent) {
        let users: Vec<UserId> = self.engines.keys().copied().collect();
        for u in users {
            self.input(u, Input::Server(ev.clone()));
        }
    }

    fn linked(&self, a: UserId, b: UserId) -> bool {
        self.links.contains(&(a.min(b), a.max(b)))
    }

    /// Feeds `user`'s engine at the net's time; its actions (mesh messages go on the wire).
    fn input(&mut self, user: UserId, input: Input) -> Vec<Action> {
        let now = self.now;
        let e = self.engines.get_mut(&user).unwrap();
        e.handle(now, input);
        let actions = drain(e);
        for a in &actions {
            if let Action::Mesh { to, message } = a {
                if self
                    .mute
                    .is_some_and(|(u, k)| u == user && k == message.kind)
                {
                    continue;
                }
                let text = serde_json::to_string(&**message).unwrap();
                let peers: Vec<UserId> = match to {
                    Some(p) => vec![*p],
                    None => self
                        .engines
                        .keys()
                        .copied()
                        .filter(|&p| p != user)
                        .collect(),
                };
                let linked: Vec<UserId> = peers
                    .into_iter()
                    .filter(|&p| self.linked(user, p))
                    .collect();
                for p in linked {
                    self.wire.push_back((user, p, text.clone()));
                }
            }
        }
        self.seen.entry(user).or_default().extend(actions.clone());
        actions
    }

    /// Carries what is on the wire, and what that makes the engines send, until quiet.
    fn deliver(&mut self) {
        while let Some((from, to, text)) = self.wire.pop_front() {
            self.carry(from, to, &text);
        }
    }

    /// One message on the link `from` - `to`, as the node hands it to the engine.
    fn carry(&mut self, link: UserId, to: UserId, text: &str) {
        let message: MeshEnvelope = serde_json::from_str(text).unwrap();
        self.input(
            to,
            Input::Mesh {
                link,
                message: Box::new(message),
            },
        );
    }

    /// The server dies: every engine loses its socket.
    fn server_gone(&mut self) {
        let users: Vec<UserId> = self.engines.keys().copied().collect();
        for u in users {
            self.input(
                u,
                Input::Disconnected {
                    reason: "server gone".into(),
                },
            );
        }
        self.deliver();
    }

    /// Runs every engine's timers for `ms`, carrying what they send.
    fn run_for(&mut self, ms: f64) {
        let until = self.now + ms;
        while self.now < until {
            self.now += 50.0;
            let users: Vec<UserId> = self.engines.keys().copied().collect();
            for u in users {
                self.input(u, Input::Tick);
            }
            self.deliver();
        }
    }

    fn command(&mut self, user: UserId, cmd: Command) {
        self.input(user, Input::Command(cmd));
        self.deliver();
    }

    fn engine(&self, user: UserId) -> &Engine {
        &self.engines[&user]
    }

    fn playing(&self, user: UserId) -> bool {
        self.engine(user).timeline().unwrap().playing
    }

    fn position(&self, user: UserId) -> f64 {
        self.engine(user).timeline().unwrap().position_s
    }

    fn pauses(&self, user: UserId) -> usize {
        self.seen.get(&user).map_or(0, |a| {
            a.iter()
                .filter(|a| matches!(a, Action::Audio(AudioCommand::Pause)))
                .count()
        })
    }

    /// The DJ's last signed mesh message of `kind` on the wire log of its actions.
    fn last_sent(&self, user: UserId, kind: &str) -> MeshEnvelope {
        self.seen[&user]
            .iter()
            .rev()
            .find_map(|a| match a {
                Action::Mesh { message, .. } if message.kind == kind && message.from == user => {
                    Some((**message).clone())
                }
                _ => None,
            })
            .unwrap()
    }
}

fn line() -> Net {
    Net::new(&[DJ, B, C], &[(DJ, B), (B, C)], dj_grant(u64::MAX / 2))
}

#[test]
fn c_with_no_link_to_the_dj_follows_its_pause_and_seek_through_b() {
    let mut net = line();
    assert!(net.playing(C) && net.playing(B));
    net.server_gone();
    let relayed_before = net.engine(B).stats().mesh_relayed;
    net.command(DJ, Command::Pause);
    let pause = net.last_sent(DJ, kinds::MUSIC_CONTROL);
    assert!(
        pause.sig.is_some() && pause.epoch == Some(1),
        "the DJ signs: {pause:?}"
    );
    assert!(!net.playing(B), "B, linked to the DJ, paused");
    assert!(!net.playing(C), "C paused through B's relay");
    assert_eq!(net.pauses(C), 1);
    assert_eq!(
        net.engine(B).stats().mesh_relayed,
        relayed_before + 1,
        "B relayed it to C only"
    );
    assert_eq!(net.engine(C).stats().mesh_refused, 0);

    net.command(DJ, Command::Seek { position: 42.0 });
    assert!(
        close(net.position(C), 42.0, 1e-9),
        "C seeks with the DJ: {:?}",
        net.engine(C).timeline()
    );
    assert_eq!(net.position(B), net.position(C));
    net.command(DJ, play());
    assert!(net.playing(C));

    // Playing on for half a minute: the DJ's position syncs reach C through B, so C never
    // takes the DJ for gone (no successor) and nobody refuses anything.
    net.run_for(3.0 * DJ_ABSENCE_MS);
    assert_eq!(net.engine(C).acting(), Acting::Server(DJ));
    assert_eq!(net.engine(B).acting(), Acting::Server(DJ));
    assert_eq!(net.engine(C).stats().mesh_refused, 0);
    assert!(
        net.engine(B).stats().mesh_relayed >= 4,
        "{:?}",
        net.engine(B).stats()
    );
}

#[test]
fn every_copy_is_obeyed_once_and_relayed_once() {
    // A full triangle: C hears the DJ directly and through B.
    let mut net = Net::new(
        &[DJ, B, C],
        &[(DJ, B), (B, C), (DJ, C)],
        dj_grant(u64::MAX / 2),
    );
    net.server_gone();
    let count = |net: &Net| {
        let (b, c) = (net.engine(B).stats(), net.engine(C).stats());
        (
            b.mesh_relayed + c.mesh_relayed,
            b.mesh_duplicates + c.mesh_duplicates,
        )
    };
    let (relayed, dups) = count(&net);
    net.command(DJ, Command::Pause);
    assert_eq!(net.pauses(C), 1);
    assert_eq!(net.pauses(B), 1);
    assert_eq!(
        count(&net),
        (relayed + 2, dups + 2),
        "each relays its first copy to the other, once; the second copies are dropped and counted"
    );
}

#[test]
fn a_relayed_message_goes_no_further_than_its_ttl() {
    // DJ - 2 - 3 - 4 - 5 - 6 - 7: user 6 is 5 links away (4 relays: 2, 3, 4, 5); user 7,
    // 6 links away, would need a fifth.
    let users = [DJ, 2, 3, 4, 5, 6, 7];
    let links: Vec<(UserId, UserId)> = users.windows(2).map(|w| (w[0], w[1])).collect();
    let mut net = Net::new(&users, &links, dj_grant(u64::MAX / 2));
    net.server_gone();
    net.command(DJ, Command::Pause);
    let ttl = jamz_sync::constants::MESH_RELAY_TTL as i64;
    assert_eq!(ttl, 4);
    for u in 2..=7 {
        let distance = u - DJ;
        assert_eq!(
            !net.playing(u),
            distance <= ttl + 1,
            "user {u}, {distance} links from the DJ"
        );
    }
    assert_eq!(net.engine(6).stats().mesh_relayed, 0, "no relays left");
}

#[test]
fn a_web_app_dj_that_cannot_sign_is_obeyed_on_its_own_links_only() {
    let mut grant = dj_grant(u64::MAX / 2);
    grant.device_key = None;
    grant.sig = hex::encode(
        grant_signer()
            .sign(&grant.signing_bytes().unwrap())
            .to_bytes(),
    );
    let mut net = Net::new(&[DJ, B, C], &[(DJ, B), (B, C)], grant);
    net.server_gone();
    net.command(DJ, Command::Pause);
    assert!(net.last_sent(DJ, kinds::MUSIC_CONTROL).sig.is_none());
    assert!(!net.playing(B), "obeyed on its link");
    assert!(net.playing(C), "not relayed");
    assert_eq!(net.engine(B).stats().mesh_relayed, 0);
}

/// A line DJ - B - C with the server gone and C playing; the DJ's signed pause as it
/// left the DJ (not yet delivered anywhere).
fn a_signed_pause() -> (Net, MeshEnvelope) {
    let mut net = line();
    net.server_gone();
    // The DJ pauses, but the link carries nothing yet: we play B.
    let actions = net.input(DJ, Input::Command(Command::Pause));
    net.wire.clear();
    let pause = actions
        .iter()
        .find_map(|a| match a {
            Action::Mesh { message, .. } if message.kind == kinds::MUSIC_CONTROL => {
                Some((**message).clone())
            }
            _ => None,
        })
        .unwrap();
    (net, pause)
}

/// B hands C `message` on their link; C's refusals reported for it.
fn b_relays(net: &mut Net, message: &MeshEnvelope) -> Vec<(UserId, UserId, String)> {
    net.now += 1.0;
    let before = net.seen.get(&C).map_or(0, Vec::len);
    net.carry(B, C, &serde_json::to_string(message).unwrap());
    refused(&net.seen[&C][before..])
}

/// B hands C `message`: C refuses it, for `reason`. Refusals are reported once per link
/// and reason every 5 s (all are counted): a repeated reason is checked by the count.
fn refused_by_c(net: &mut Net, message: &MeshEnvelope, reason: &str, reported: &mut Vec<String>) {
    let before = net.engine(C).stats().mesh_refused;
    let reports = b_relays(net, message);
    assert_eq!(
        net.engine(C).stats().mesh_refused,
        before + 1,
        "refused: {message:?}"
    );
    if !reported.iter().any(|r| r == reason) {
        assert_eq!(reports, vec![(message.from, B, reason.to_string())]);
        reported.push(reason.to_string());
    } else {
        assert!(reports.is_empty(), "{reports:?}");
    }
}

#[test]
fn forged_relayed_controls_are_dropped_and_counted() {
    let (mut net, pause) = a_signed_pause();
    assert!(net.playing(C));
    let refused_before = net.engine(C).stats().mesh_refused;
    let reported = &mut Vec::new();

    // B signs a pause in the DJ's name with its own key.
    let mut own = pause.clone();
    device_of(B).sign(SESSION, &mut own).unwrap();
    refused_by_c(&mut net, &own, "bad-signature", reported);

    // B changes the DJ's signed pause (where it pauses, which sequence it has).
    let mut moved = pause.clone();
    moved.data["position"] = serde_json::json!(1.0);
    refused_by_c(&mut net, &moved, "bad-signature", reported);
    let mut renumbered = pause.clone();
    renumbered.sequence += 1;
    refused_by_c(&mut net, &renumbered, "bad-signature", reported);

    // B signs its own pause: on its own link, or relayed as if from someone else, it is
    // not the DJ's.
    let mut mine = pause.clone();
    mine.from = B;
    mine.data["from"] = serde_json::json!(B);
    device_of(B).sign(SESSION, &mut mine).unwrap();
    refused_by_c(&mut net, &mine, "not-controller", reported);
    let mut as_other = mine.clone();
    as_other.from = 9;
    as_other.data["from"] = serde_json::json!(9);
    device_of(B).sign(SESSION, &mut as_other).unwrap();
    refused_by_c(&mut net, &as_other, "not-controller", reported);

    // Stripped of its signature.
    let mut bare = pause.clone();
    bare.sig = None;
    refused_by_c(&mut net, &bare, "relayed-unsigned", reported);

    assert!(net.playing(C), "none of it obeyed");
    assert_eq!(net.pauses(C), 0);
    assert_eq!(net.engine(C).stats().mesh_refused, refused_before + 6);
    assert_eq!(net.engine(C).stats().mesh_relayed, 0, "nothing passed on");

    // The real one: obeyed once. Replayed (the same sequence again): dropped, counted.
    assert!(b_relays(&mut net, &pause).is_empty());
    assert!(!net.playing(C));
    net.command(DJ, play());
    assert!(net.playing(C), "the DJ plays again (relayed)");
    let dups = net.engine(C).stats().mesh_duplicates;
    assert!(b_relays(&mut net, &pause).is_empty());
    assert!(net.playing(C), "the old pause replayed changes nothing");
    assert_eq!(net.engine(C).stats().mesh_duplicates, dups + 1);
    assert_eq!(net.pauses(C), 1);
}

#[test]
fn a_relayed_control_under_an_expired_grant_is_dropped_and_counted() {
    // The grant runs out a minute after the server's clock at the start.
    let expires_at = (OFFSET_MS + 60_000.0) as u64;
    let mut net = Net::new(&[DJ, B, C], &[(DJ, B), (B, C)], dj_grant(expires_at));
    net.server_gone();
    assert!(
        net.engine(C).to_server_time(net.now) < expires_at as f64,
        "valid at first"
    );
    net.now += 80_000.0;
    assert!(net.engine(C).to_server_time(net.now) > expires_at as f64);
    let actions = net.input(DJ, Input::Command(Command::Pause));
    net.wire.clear();
    let pause = actions
        .iter()
        .find_map(|a| match a {
            Action::Mesh { message, .. } if message.kind == kinds::MUSIC_CONTROL => {
                Some((**message).clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(
        pause.sig.is_some(),
        "signed: the receivers judge the expiry"
    );
    let refused_before = net.engine(C).stats().mesh_refused;
    assert_eq!(
        b_relays(&mut net, &pause),
        vec![(DJ, B, "grant-expired".into())]
    );
    assert!(net.playing(C), "not obeyed");
    assert_eq!(net.engine(C).stats().mesh_refused, refused_before + 1);
    // B, on the DJ's own link, refuses it too (and so relays nothing).
    let relayed_before = net.engine(B).stats().mesh_relayed;
    net.carry(DJ, B, &serde_json::to_string(&pause).unwrap());
    assert!(net.playing(B));
    assert_eq!(net.engine(B).stats().mesh_relayed, relayed_before);
}

#[test]
fn a_successor_hands_control_back_when_the_djs_signature_arrives_relayed() {
    let mut net = line();
    net.server_gone();
    net.command(DJ, Command::Pause);
    // Its repeated pauses are lost on the way for a long while: C, hearing only B, takes
    // the DJ for gone and applies the succession rule (B and C present: the lowest id, B).
    net.mute = Some((DJ, kinds::MUSIC_CONTROL));
    net.run_for(2.0 * DJ_ABSENCE_MS);
    assert_eq!(net.engine(C).acting(), Acting::Successor(B));
    assert_eq!(net.engine(B).acting(), Acting::Server(DJ), "B hears it");
    net.mute = None;
    // The DJ plays: its signed control, relayed by B, proves it is there.
    net.command(DJ, play());
    assert_eq!(net.engine(C).acting(), Acting::Server(DJ));
    assert!(net.playing(C), "obeyed");
}

#[test]
fn a_control_ahead_of_the_grant_check_does_not_poison_the_djs_sequence() {
    // A forged far-ahead sequence in the DJ's name, refused, must not make the DJ's real
    // messages look old (judge before de-duplicating).
    let (mut net, pause) = a_signed_pause();
    let mut ahead = pause.clone();
    ahead.sequence += 1_000_000;
    assert_eq!(b_relays(&mut net, &ahead)[0].2, "bad-signature");
    assert!(b_relays(&mut net, &pause).is_empty());
    assert!(!net.playing(C), "the real pause is obeyed");
}

// ------------------------------------------------------------ signaling over the mesh

/// A signal of `from`'s for `to`, as the mesh makes it.
fn signal(from: UserId, to: UserId, kind: SignalType, sdp: &str) -> WebrtcSignal {
    WebrtcSignal {
        session_id: SESSION.into(),
        from,
        to,
        kind,
        data: SignalData {
            sdp: Some(sdp.into()),
            candidate: None,
        },
    }
}

/// The signals `user`'s engine handed its mesh since `before` (an index in its actions).
fn signals_for(net: &Net, user: UserId, before: usize) -> Vec<WebrtcSignal> {
    net.seen.get(&user).map_or(Vec::new(), |a| {
        a[before.min(a.len())..]
            .iter()
            .filter_map(|a| match a {
                Action::Signal(s) => Some((**s).clone()),
                _ => None,
            })
            .collect()
    })
}

fn actions_so_far(net: &Net, user: UserId) -> usize {
    net.seen.get(&user).map_or(0, Vec::len)
}

/// The mesh of `user` has a signal and the server cannot carry it.
fn signal_out(net: &mut Net, user: UserId, s: WebrtcSignal) -> Vec<Action> {
    let actions = net.input(user, Input::SignalOut(Box::new(s)));
    net.deliver();
    actions
}

/// Both ends' links are up (the peer connection the signals set up).
fn link_up(net: &mut Net, a: UserId, b: UserId) {
    net.links.insert((a.min(b), a.max(b)));
    for (x, y) in [(a, b), (b, a)] {
        net.input(
            x,
            Input::PeerUp {
                user: y,
                rtt_ms: Some(1.0),
            },
        );
    }
    net.deliver();
}

#[test]
fn with_the_server_gone_c_and_the_dj_link_through_signals_b_carries() {
    let mut net = line();
    net.server_gone();
    // C's mesh offers to the DJ: over C's one open link, to B, which reaches the DJ.
    let (c0, dj0) = (actions_so_far(&net, C), actions_so_far(&net, DJ));
    let offer = signal(C, DJ, SignalType::Offer, "v=0 offer of C");
    let sent = signal_out(&mut net, C, offer.clone());
    let out: Vec<&MeshEnvelope> = sent
        .iter()
        .filter_map(|a| match a {
            Action::Mesh { message, .. } => Some(&**message),
            _ => None,
        })
        .collect();
    assert_eq!(out.len(), 1, "{sent:?}");
    assert_eq!(out[0].kind, kinds::WEBRTC_SIGNAL);
    assert_eq!(out[0].ttl, Some(4), "carried like the DJ's words");
    assert!(out[0].sig.is_none(), "C is no DJ: it cannot sign");
    assert!(emitted(&sent, names::WEBRTC_SIGNAL).is_empty(), "no server");
    assert_eq!(signals_for(&net, DJ, dj0), vec![offer], "B carried it");
    assert_eq!(net.engine(B).stats().mesh_signals_relayed, 1);
    assert_eq!(net.engine(DJ).stats().mesh_signals_in, 1);
    assert!(signals_for(&net, C, c0).is_empty());

    // The DJ's answer goes back the same way, signed by the DJ's device.
    let answer = signal(DJ, C, SignalType::Answer, "v=0 answer of the DJ");
    let sent = signal_out(&mut net, DJ, answer.clone());
    assert!(sent.iter().any(|a| matches!(a,
        Action::Mesh { message, .. } if message.kind == kinds::WEBRTC_SIGNAL && message.sig.is_some())));
    assert_eq!(signals_for(&net, C, c0), vec![answer]);
    assert_eq!(net.engine(B).stats().mesh_signals_relayed, 2);

    // The link comes up. C obeys the DJ over it directly (the DJ's answer was signed: C
    // knows who is on it), each pause once however many paths bring it.
    link_up(&mut net, DJ, C);
    let relayed_before = net.engine(C).stats().mesh_relayed_in;
    net.command(DJ, Command::Pause);
    assert!(!net.playing(C));
    assert_eq!(net.pauses(C), 1);
    assert_eq!(net.engine(C).stats().mesh_refused, 0);
    assert!(
        net.engine(C).stats().mesh_duplicates >= 1,
        "B's copy dropped"
    );
    assert_eq!(net.engine(C).stats().mesh_relayed_in, relayed_before);
    // The clock: C probes the DJ over the new link, and the DJ answers (link messages are
    // taken on an unproven link too).
    net.run_for(2_000.0);
    assert_eq!(net.engine(DJ).stats().mesh_refused, 0);

    // C's offer was unsigned: nothing proves to the DJ that C is on that link. What comes
    // over it counts as relayed: C's own append is not taken there (it reaches the DJ
    // through the server when it returns).
    let mut pl = net.engine(DJ).playlist().tracks().to_vec();
    pl.push(track(9, 60.0));
    let append = MeshEnvelope {
        kind: kinds::PLAYLIST_UPDATE.into(),
        action: None,
        data: serde_json::json!({ "playlist": pl }),
        sequence: 1 << 50,
        from: C,
        epoch: None,
        sig: None,
        ttl: None,
    };
    let before = actions_so_far(&net, DJ);
    net.carry(C, DJ, &serde_json::to_string(&append).unwrap());
    assert_eq!(
        refused(&net.seen[&DJ][before..]),
        vec![(C, C, "relayed-unsigned".to_owned())]
    );
    assert_eq!(net.engine(DJ).playlist().len(), 2);
}

#[test]
fn a_signal_in_anothers_name_sets_up_nothing_that_is_obeyed() {
    let mut net = line();
    net.server_gone();
    // B offers to C in the DJ's name (C has no link to the DJ): C's mesh gets it, but the
    // link it makes proves nothing.
    let forged = signal(DJ, C, SignalType::Offer, "v=0 B pretending");
    let c0 = actions_so_far(&net, C);
    let mut env = MeshEnvelope {
        kind: kinds::WEBRTC_SIGNAL.into(),
        action: None,
        data: serde_json::to_value(&forged).unwrap(),
        sequence: 1 << 50,
        from: DJ,
        epoch: None,
        sig: None,
        ttl: Some(4),
    };
    net.carry(B, C, &serde_json::to_string(&env).unwrap());
    assert_eq!(signals_for(&net, C, c0), vec![forged]);
    // The "DJ" (B behind it) on that link: its unsigned pause is refused.
    link_up(&mut net, DJ, C);
    net.links.remove(&(DJ, C)); // the wire is B's, not the DJ's
    let pause = MeshEnvelope {
        kind: kinds::MUSIC_CONTROL.into(),
        action: Some(jamz_proto::events::ControlAction::Pause),
        data: serde_json::json!({"position": 5.0, "timestamp": 1.0, "from": DJ}),
        sequence: (1 << 50) + 1,
        from: DJ,
        epoch: None,
        sig: None,
        ttl: None,
    };
    let before = actions_so_far(&net, C);
    net.carry(DJ, C, &serde_json::to_string(&pause).unwrap());
    // Judged as relayed: it carries no epoch of the DJ's grant (nor a signature).
    assert_eq!(
        refused(&net.seen[&C][before..]),
        vec![(DJ, DJ, "grant-other-epoch".to_owned())]
    );
    assert!(net.playing(C));

    // A signal in C's name for B, carried by the DJ, while B's own link to C is open: it
    // would replace that link, so it is refused.
    env.data = serde_json::to_value(signal(C, B, SignalType::Offer, "v=0 not C")).unwrap();
    env.from = C;
    env.sequence += 7;
    let b0 = actions_so_far(&net, B);
    net.carry(DJ, B, &serde_json::to_string(&env).unwrap());
    assert!(signals_for(&net, B, b0).is_empty());
    assert_eq!(
        refused(&net.seen[&B][b0..]),
        vec![(C, DJ, "signal-link-open".to_owned())]
    );
    // One whose envelope and signal disagree on who sends it: refused.
    env.from = DJ;
    env.sequence += 1;
    env.data = serde_json::to_value(signal(C, B, SignalType::Offer, "v=0")).unwrap();
    let b0 = actions_so_far(&net, B);
    net.carry(C, B, &serde_json::to_string(&env).unwrap());
    assert_eq!(
        refused(&net.seen[&B][b0..]),
        vec![(DJ, C, "bad-signal".to_owned())]
    );
}

#[test]
fn signals_go_through_the_server_while_it_is_there_and_die_out_in_the_mesh() {
    let mut net = line();
    // Server up: the socket carries it, the mesh nothing.
    let sent = signal_out(&mut net, C, signal(C, DJ, SignalType::Offer, "v=0"));
    assert_eq!(emitted(&sent, names::WEBRTC_SIGNAL).len(), 1);
    assert!(!sent.iter().any(|a| matches!(a, Action::Mesh { .. })));
    // The server's signal is handed to the mesh (and vouches for its sender).
    let s = signal(DJ, C, SignalType::Answer, "v=0");
    let c0 = actions_so_far(&net, C);
    net.input(C, Input::Server(ServerEvent::WebrtcSignal(s.clone())));
    assert_eq!(signals_for(&net, C, c0), vec![s]);

    // Server gone: a signal for someone nobody reaches goes round the mesh once and stops.
    net.server_gone();
    let nobody: UserId = 99;
    signal_out(&mut net, C, signal(C, nobody, SignalType::Offer, "v=0"));
    let relayed = |net: &Net, u| net.engine(u).stats().mesh_signals_relayed;
    assert_eq!(
        (relayed(&net, B), relayed(&net, DJ)),
        (1, 0),
        "B to the DJ, the DJ to nobody"
    );
    // A copy that comes again (a replay) is dropped, not carried twice.
    let copy = net.last_sent(C, kinds::WEBRTC_SIGNAL);
    let dups = net.engine(B).stats().mesh_duplicates;
    net.carry(C, B, &serde_json::to_string(&copy).unwrap());
    net.deliver();
    assert_eq!(relayed(&net, B), 1);
    assert_eq!(net.engine(B).stats().mesh_duplicates, dups + 1);
}

// ------------------------------------------------------------ the paused DJ's heartbeat

#[test]
fn a_paused_dj_is_heard_through_b_and_c_picks_no_successor() {
    let mut net = line();
    net.server_gone();
    net.command(DJ, Command::Pause);
    assert!(!net.playing(C));
    let before = net.engine(C).stats();
    // Paused for three times the absence limit: the DJ repeats its signed pause each
    // period, B carries it, C hears the DJ and keeps it; nothing is applied twice.
    net.run_for(3.0 * DJ_ABSENCE_MS);
    let after = net.engine(C).stats();
    assert_eq!(net.engine(C).acting(), Acting::Server(DJ));
    assert_eq!(net.engine(B).acting(), Acting::Server(DJ));
    assert_eq!(net.pauses(C), 1, "the repeats change nothing");
    assert!(!net.playing(C));
    assert_eq!(after.mesh_refused, before.mesh_refused);
    assert!(
        after.mesh_relayed_in >= before.mesh_relayed_in + 5,
        "a repeat every 5 s: {after:?}"
    );
    // Each repeat is the pause itself: same content, a new sequence number, signed.
    let last = net.last_sent(DJ, kinds::MUSIC_CONTROL);
    assert_eq!(last.action, Some(jamz_proto::events::ControlAction::Pause));
    assert!(last.sig.is_some());

    // The DJ plays again: C follows; the repeats stop (position syncs take over).
    net.command(DJ, play());
    assert!(net.playing(C));
    net.run_for(2.0 * DJ_ABSENCE_MS);
    assert_eq!(net.engine(C).acting(), Acting::Server(DJ));
    assert_eq!(net.pauses(C), 1);
}

#[test]
fn with_the_server_there_a_paused_dj_repeats_nothing() {
    let mut net = line();
    net.command(DJ, Command::Pause);
    let sent = |net: &Net| {
        net.seen[&DJ]
            .iter()
            .filter(|a| matches!(a, Action::Mesh { message, .. } if message.kind == kinds::MUSIC_CONTROL))
            .count()
    };
    let n = sent(&net);
    net.run_for(3.0 * DJ_ABSENCE_MS);
    assert_eq!(sent(&net), n, "the server keeps everyone: no heartbeat");
}

//! Two `jamz-server` processes as one (deploy/scale-out.md): both on one fresh PostgreSQL
//! database (scripts/env.d/postgres.sh) and one Redis (scripts/env.d/redis.sh), the
//! members of a session on different processes. Relays, the participants list, the
//! playlist and the playback anchor reach across; two members racing for control from
//! two processes always end with one DJ that everybody agrees on (100 seeded rounds); and
//! Redis going away leaves each process relaying to its own sockets (a logged warning)
//! until it is back. Failover: four members spread over the two processes, the DJ's
//! process killed (SIGKILL) mid-session; its members' links move to the other process and
//! re-join, and the session goes on with its DJ, playlist and position.
//!
//! Skipped (saying so) without PostgreSQL or Redis; with `JAMZ_REQUIRE_POSTGRES` /
//! `JAMZ_REQUIRE_REDIS` (CI) they fail instead. Needs `cargo build -p jamz-server` first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod link_support;
#[path = "../../crates/jamz-server/tests/support/postgres.rs"]
mod pg;

use std::time::Duration;

use jamz_e2e::{TestServer, track};
use jamz_proto::Track;
use jamz_proto::events::{ControlAction, MusicControl, PlaylistUpdate, WebrtcSignal};
use link_support::{Member, seed};
use rand::{RngExt, SeedableRng};
use serde_json::Value;

/// The token secret both processes sign and check with.
const SECRET: &str = "0123456789abcdef0123456789abcdef-cluster-test";

/// The test Redis's URL, or `None` (skipped, said on stderr) unless `JAMZ_REQUIRE_REDIS`.
fn redis_url(test: &str) -> Option<String> {
    match std::env::var("JAMZ_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("JAMZ_REQUIRE_REDIS").is_some_and(|v| !v.is_empty()) => panic!(
            "{test}: JAMZ_REQUIRE_REDIS is set but JAMZ_TEST_REDIS_URL is not: \
             source scripts/env.d/redis.sh first"
        ),
        _ => {
            eprintln!(
                "{test}: skipped: no Redis (JAMZ_TEST_REDIS_URL unset; source scripts/env.d/redis.sh)"
            );
            None
        }
    }
}

/// `member` sends `music-control` for `session` (timestamp 0: the server stamps it).
fn control(
    member: &Member,
    session: &str,
    action: ControlAction,
    position: f64,
    track: Option<Track>,
) {
    member
        .link()
        .send(&MusicControl {
            session_id: session.to_owned(),
            action,
            position,
            track,
            timestamp: 0.0,
        })
        .unwrap();
}

/// Two processes on one fresh database and one Redis (a key prefix of this test's own).
struct Cluster {
    a: TestServer,
    b: TestServer,
    _dir: tempfile::TempDir,
}

async fn cluster(test: &str) -> Option<Cluster> {
    let admin = pg::admin_url(test)?;
    let redis = redis_url(test)?;
    let db = pg::fresh_database(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) =
        TestServer::start_pair_on_redis(dir.path(), std::ffi::OsStr::new(&db), &redis, SECRET)
            .await
            .unwrap();
    eprintln!("{test}: processes at {} and {}", a.url, b.url);
    Some(Cluster { a, b, _dir: dir })
}

/// `ann` registered on process A, the others on B; one group, its session; each member
/// connected to the process named with it and joined.
async fn session_across(
    c: &Cluster,
    names: &[(&str, bool)],
    seed: u64,
) -> (Vec<Member>, String, String) {
    session_across_with(c, names, seed, false).await
}

/// [`session_across`]; with `fallback`, each member's link is also given the other
/// process, to move to when its own dies (docs/protocol.md, "Several servers").
async fn session_across_with(
    c: &Cluster,
    names: &[(&str, bool)],
    seed: u64,
    fallback: bool,
) -> (Vec<Member>, String, String) {
    let mut members = Vec::new();
    for (name, on_a) in names {
        let url = if *on_a { &c.a.url } else { &c.b.url };
        members.push(Member::register(url, name).await.unwrap());
    }
    let group = members[0].rest.create_group("Convoy", None).await.unwrap();
    for m in &members[1..] {
        members[0]
            .rest
            .add_member(&group.id, &m.name)
            .await
            .unwrap();
    }
    let session = members[0].rest.session_for_group(&group.id).await.unwrap();
    for (i, (_, on_a)) in names.iter().enumerate() {
        let (url, other) = if *on_a {
            (&c.a.url, &c.b.url)
        } else {
            (&c.b.url, &c.a.url)
        };
        let mut cfg = members[i].config(url, seed.wrapping_add(i as u64)).unwrap();
        if fallback {
            cfg = cfg.fallbacks([other.clone()]);
        }
        members[i].enter(cfg, &session.id).await.unwrap();
        // Everyone already in hears of the newcomer, whichever process they are on.
        let newcomer = members[i].user.id;
        for m in members.iter_mut().take(i) {
            let joined = m.wait_for("participant-joined").await.unwrap();
            assert_eq!(joined.data()["userId"], newcomer, "{}", m.name);
        }
    }
    (members, session.id, group.id)
}

/// The session document as `m`'s process serves it, once `pred` holds of its music
/// (polled, bounded by [`link_support::WAIT`]): the playback anchor reaches the database,
/// where the other process reads it, from a writer in the background.
async fn session_seen(
    m: &Member,
    group: &str,
    what: &str,
    pred: impl Fn(&jamz_proto::MusicState) -> bool,
) -> jamz_proto::Session {
    let deadline = tokio::time::Instant::now() + link_support::WAIT;
    loop {
        let doc = m.rest.session_for_group(group).await.unwrap();
        if pred(&doc.music) {
            return doc;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}'s process never showed {what}: {:?}",
            m.name,
            doc.music
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn user_ids(participants: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = participants["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_two_processes_hear_each_other() {
    let Some(c) = cluster("members_on_two_processes_hear_each_other").await else {
        return;
    };
    let seed = seed();
    let (mut m, session, group) = session_across(&c, &[("ann", true), ("bob", false)], seed).await;
    let (ann_id, bob_id) = (m[0].user.id, m[1].user.id);

    // Who is in the session, asked on either process: both, wherever they are.
    m[1].link()
        .send(&jamz_proto::events::JoinAudioSession {
            session_id: session.clone(),
            user_id: Some(bob_id),
            display_name: Some("bob".into()),
        })
        .unwrap();
    let seen_by_b = m[1].wait_for("current-participants").await.unwrap();
    assert_eq!(user_ids(seen_by_b.data()), [ann_id, bob_id]);

    // Control and playback from A reach B.
    m[0].take_control(&session).unwrap();
    let changed = m[1].wait_for("music-controller-changed").await.unwrap();
    assert_eq!(changed.data()["userId"], ann_id);
    control(&m[0], &session, ControlAction::Play, 12.5, Some(track("a")));
    let play = m[1].wait_for("music-play").await.unwrap();
    assert_eq!(play.data()["position"], 12.5);
    assert_eq!(play.data()["track"]["id"], "a");

    // The playback anchor is shared: B's REST answer knows what A's DJ started (once
    // A's writer has stored it: in the background, so waited for, bounded).
    let doc = session_seen(&m[1], &group, "the playing state", |music| {
        music.is_playing && music.currently_playing.is_some()
    })
    .await;
    let current = doc.music.currently_playing.expect("B knows what plays");
    assert_eq!(current.track.map(|t| t.id), Some("a".to_string()));
    assert!(doc.music.is_playing);
    assert_eq!(doc.music.controller_id, Some(ann_id));

    // Bob takes control on B: A, which checks the DJ in its memory, hears of it (the
    // announcement goes out before the room is told) and refuses ann from now on; bob's
    // playback reaches ann.
    m[1].take_control(&session).unwrap();
    // (ann's own take may still be queued before it)
    while m[0]
        .wait_for("music-controller-changed")
        .await
        .unwrap()
        .data()["userId"]
        != bob_id
    {}
    control(&m[0], &session, ControlAction::Pause, 13.0, None);
    let refused = m[0].wait_for("music-error").await.unwrap();
    assert!(
        refused.data()["error"]
            .as_str()
            .is_some_and(|e| e.contains("only the DJ")),
        "{refused:?}"
    );
    control(&m[1], &session, ControlAction::Seek, 40.0, None);
    let seek = m[0].wait_for("music-seek").await.unwrap();
    assert_eq!(seek.data()["position"], 40.0);

    // A playlist change from B reaches A; stored once for both.
    m[1].link()
        .send(&PlaylistUpdate {
            session_id: session.clone(),
            playlist: vec![track("b")],
        })
        .unwrap();
    let list = m[0].wait_for("playlist-update").await.unwrap();
    let ids: Vec<&str> = list.data()["playlist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b"]);

    // A signal addressed to ann on A, sent from B.
    m[1].link()
        .send(&WebrtcSignal {
            session_id: session.clone(),
            from: bob_id,
            to: ann_id,
            kind: jamz_proto::events::SignalType::Offer,
            data: jamz_proto::events::SignalData {
                sdp: Some("v=0".into()),
                candidate: None,
            },
        })
        .unwrap();
    let signal = m[0].wait_for("webrtc-signal").await.unwrap();
    assert_eq!(signal.data()["from"], bob_id);

    // Bob leaves on B: ann on A hears it.
    m[1].link()
        .send(&jamz_proto::events::LeaveAudioSession {
            session_id: session.clone(),
        })
        .unwrap();
    let left = m[0].wait_for("participant-left").await.unwrap();
    assert_eq!(left.data()["userId"], bob_id);
}

/// The highest-epoch DJ a member was told of in `events` (its own take or a relay).
fn dj_of(changed: &[Value]) -> Option<(u64, i64)> {
    changed
        .iter()
        .filter_map(|c| Some((c["grant"]["epoch"].as_u64()?, c["userId"].as_i64()?)))
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_racing_for_control_across_processes_leave_one_dj() {
    const TEST: &str = "two_members_racing_for_control_across_processes_leave_one_dj";
    let Some(c) = cluster(TEST).await else {
        return;
    };
    let seed = seed();
    let rounds: usize = std::env::var("JAMZ_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    eprintln!("{TEST}: seed {seed}, {rounds} rounds");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // ann on A and bob on B race; carl on A and dora on B watch.
    let (mut m, session, group) = session_across(
        &c,
        &[
            ("ann", true),
            ("bob", false),
            ("carl", true),
            ("dora", false),
        ],
        seed,
    )
    .await;
    let mut refused_rounds = 0;
    let mut last_epoch = 0;
    for round in 0..rounds {
        // Both at once; which is sent first, and a few hundred µs between, from the seed.
        let first = rng.random_range(0..2usize);
        let gap = Duration::from_micros(rng.random_range(0..500));
        m[first].take_control(&session).unwrap();
        tokio::time::sleep(gap).await;
        m[1 - first].take_control(&session).unwrap();

        // Each racer hears either its own take (its handshake id) or a refusal; every
        // change of control anyone hears is kept: a member's view of the DJ is the one
        // with the highest epoch it was told of.
        let mut changes: Vec<Vec<Value>> = vec![Vec::new(); m.len()];
        let mut winners = Vec::new();
        for i in 0..2 {
            let own = m[i].sid.clone().unwrap();
            loop {
                let msg = bounded_next(&mut m[i]).await;
                match msg.name.as_str() {
                    "music-error" => break,
                    "music-controller-changed" => {
                        changes[i].push(msg.data().clone());
                        if msg.data()["controllerId"] == own.as_str() {
                            winners.push((msg.data()["grant"]["epoch"].as_u64().unwrap(), i));
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(
            !winners.is_empty(),
            "round {round} (seed {seed}): nobody took control"
        );
        winners.sort_unstable();
        if winners.len() == 1 {
            refused_rounds += 1;
        }
        let (top_epoch, top) = *winners.last().unwrap();
        assert!(
            top_epoch > last_epoch,
            "round {round} (seed {seed}): epochs grow"
        );
        let stored = m[2].rest.session_for_group(&group).await.unwrap();
        assert_eq!(
            stored.music.controller_id,
            Some(m[top].user.id),
            "round {round} (seed {seed}): the stored DJ is the last winner"
        );
        // Every member, on either process, ends up told of that same DJ at that epoch.
        let want = Some((top_epoch, m[top].user.id));
        for (i, member) in m.iter_mut().enumerate() {
            while dj_of(&changes[i]) < want {
                let msg = bounded_next(member).await;
                if msg.name == "music-controller-changed" {
                    changes[i].push(msg.data().clone());
                }
            }
            assert_eq!(
                dj_of(&changes[i]),
                want,
                "round {round} (seed {seed}): {} was told of another DJ",
                member.name
            );
        }
        last_epoch = top_epoch;
    }
    eprintln!(
        "{TEST}: seed {seed}: {rounds} rounds, one DJ after each; in {refused_rounds} the two \
         takes overlapped and one was refused, in {} both went through one after the other",
        rounds - refused_rounds
    );
}

/// The member's next server event (bounded).
async fn bounded_next(m: &mut Member) -> jamz_link::ServerMessage {
    loop {
        let ev = tokio::time::timeout(link_support::WAIT, m.events.as_mut().unwrap().recv())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing heard in time", m.name))
            .unwrap_or_else(|| panic!("{}: link ended", m.name));
        if let jamz_link::LinkEvent::Event { raw, .. } = ev {
            return raw;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_restarted_alone_knows_the_session_from_the_database() {
    const TEST: &str = "a_process_restarted_alone_knows_the_session_from_the_database";
    let Some(mut c) = cluster(TEST).await else {
        return;
    };
    let seed = seed();
    let (mut m, session, _group) = session_across(&c, &[("ann", true), ("bob", false)], seed).await;
    m[0].take_control(&session).unwrap();
    m[1].wait_for("music-controller-changed").await.unwrap();
    // Process A dies (SIGKILL): what B says of the session comes from the database;
    // ann's participation on the dead process is not counted.
    c.a.kill9().await.unwrap();
    m[1].link()
        .send(&jamz_proto::events::JoinAudioSession {
            session_id: session.clone(),
            user_id: Some(m[1].user.id),
            display_name: Some("bob".into()),
        })
        .unwrap();
    let state = m[1].wait_for("music-session-state").await.unwrap();
    assert_eq!(state.data()["controller_id"], m[0].user.id);
    let seen = m[1].wait_for("current-participants").await.unwrap();
    assert_eq!(user_ids(seen.data()), [m[1].user.id]);
}

/// How far back of the position B read before the kill a position after it may be:
/// both are B's reading of one stored anchor on one clock, so only rounding.
const POSITION_SLACK: f64 = 0.05;

fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn track_ids(playlist: &[Track]) -> Vec<&str> {
    playlist.iter().map(|t| t.id.as_str()).collect()
}

/// A `music-session-state` after the failover: the DJ, the playlist [a, b], track `a`
/// playing from no earlier than `before`; returns its position.
fn assert_goes_on(who: &str, msg: &jamz_link::ServerMessage, dj: i64, before: f64) -> f64 {
    let st: jamz_proto::events::MusicSessionState =
        serde_json::from_value(msg.data().clone()).unwrap();
    assert_eq!(
        st.controller_id,
        Some(dj),
        "{who}: the DJ is still the DJ: {st:?}"
    );
    assert_eq!(
        track_ids(&st.playlist),
        ["a", "b"],
        "{who}: the playlist: {st:?}"
    );
    assert!(st.is_playing, "{who}: still playing: {st:?}");
    let current = st.currently_playing.as_ref().expect("a current track");
    assert_eq!(
        current.track.as_ref().map(|t| t.id.as_str()),
        Some("a"),
        "{who}: the track playing: {st:?}"
    );
    assert!(
        current.position >= before - POSITION_SLACK,
        "{who}: the position went back from {before} to {} (not carried over): {st:?}",
        current.position
    );
    current.position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_djs_process_moves_its_clients_and_the_session_goes_on() {
    const TEST: &str = "sigkill_of_the_djs_process_moves_its_clients_and_the_session_goes_on";
    let Some(mut c) = cluster(TEST).await else {
        return;
    };
    let seed = seed();
    eprintln!("{TEST}: seed {seed}");
    let (a_url, b_url) = (c.a.url.clone(), c.b.url.clone());
    // ann (the DJ) and carl on A, bob and dora on B; every link also knows the other process.
    let (mut m, session, group) = session_across_with(
        &c,
        &[
            ("ann", true),
            ("bob", false),
            ("carl", true),
            ("dora", false),
        ],
        seed,
        true,
    )
    .await;
    let ids: Vec<i64> = m.iter().map(|m| m.user.id).collect();
    let ann_id = ids[0];

    // ann takes control, sets the playlist [a, b] and plays a from 30 s; everyone hears it.
    m[0].take_control(&session).unwrap();
    for other in &mut m[1..] {
        let changed = other.wait_for("music-controller-changed").await.unwrap();
        assert_eq!(changed.data()["userId"], ann_id, "{}", other.name);
    }
    m[0].link()
        .send(&PlaylistUpdate {
            session_id: session.clone(),
            playlist: vec![track("a"), track("b")],
        })
        .unwrap();
    for other in &mut m[1..] {
        let list = other.wait_for("playlist-update").await.unwrap();
        let got: Vec<&str> = list.data()["playlist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(got, ["a", "b"], "{}", other.name);
    }
    control(&m[0], &session, ControlAction::Play, 30.0, Some(track("a")));
    for other in &mut m[1..] {
        let play = other.wait_for("music-play").await.unwrap();
        assert_eq!(play.data()["track"]["id"], "a", "{}", other.name);
    }

    // The anchor reaches the database in the background: B (asked by bob) must see the
    // playing state before A dies, else there would be nothing to carry over.
    let doc = session_seen(&m[1], &group, "ann's playlist and playing state", |music| {
        music.is_playing
            && music.controller_id == Some(ann_id)
            && track_ids(&music.playlist) == ["a", "b"]
            && music
                .currently_playing
                .as_ref()
                .is_some_and(|c| c.track.as_ref().is_some_and(|t| t.id == "a"))
    })
    .await;
    let before = doc.music.currently_playing.unwrap().position;
    assert!(before >= 30.0, "{before}");

    // Process A dies (SIGKILL) mid-session.
    let killed = tokio::time::Instant::now();
    c.a.kill9().await.unwrap();
    eprintln!("{TEST}: A ({a_url}) killed at position {before:.3} s as B saw it");

    // ann and carl move to B and re-join; each is told the session as it was.
    let mut after = Vec::new();
    for i in [0, 2] {
        let state = m[i]
            .wait_state_within("Connected to B", Duration::from_secs(30), |s| {
                matches!(s, jamz_link::LinkState::Connected { server, .. } if same_server(server, &b_url))
            })
            .await
            .unwrap();
        let jamz_link::LinkState::Connected { sid, .. } = state else {
            unreachable!()
        };
        let msg = m[i].wait_for("music-session-state").await.unwrap();
        let position = assert_goes_on(&m[i].name, &msg, ann_id, before);
        if i == 0 {
            // B moved the controller to the DJ's new socket.
            assert_eq!(
                msg.data()["controller_socket_id"],
                sid.as_str(),
                "ann's new socket is the DJ's: {:?}",
                msg.data()
            );
        }
        eprintln!(
            "{TEST}: {} re-joined on B {:.0} ms after the kill, at position {position:.3} s",
            m[i].name,
            killed.elapsed().as_secs_f64() * 1000.0
        );
        after.push((m[i].name.clone(), position));
    }

    // bob and dora (on B all along) hear ann and carl come back, and ann's new socket
    // announced as the DJ's.
    for i in [1, 3] {
        let (mut joined, mut dj_moved) = (Vec::new(), false);
        while !(dj_moved && joined.contains(&ids[0]) && joined.contains(&ids[2])) {
            let msg = bounded_next(&mut m[i]).await;
            match msg.name.as_str() {
                "participant-joined" => joined.push(msg.data()["userId"].as_i64().unwrap()),
                "music-controller-changed" => {
                    assert_eq!(msg.data()["userId"], ann_id, "{}: {msg:?}", m[i].name);
                    dj_moved = true;
                }
                _ => {}
            }
        }
        // Asked again, B tells them the same session: DJ, playlist, position; and all
        // four members there (the participations on the dead process not counted).
        m[i].link()
            .send(&jamz_proto::events::JoinAudioSession {
                session_id: session.clone(),
                user_id: Some(m[i].user.id),
                display_name: Some(m[i].name.clone()),
            })
            .unwrap();
        let msg = m[i].wait_for("music-session-state").await.unwrap();
        let position = assert_goes_on(&m[i].name, &msg, ann_id, before);
        let seen = m[i].wait_for("current-participants").await.unwrap();
        let mut everyone = ids.clone();
        everyone.sort_unstable();
        assert_eq!(user_ids(seen.data()), everyone, "{}", m[i].name);
        after.push((m[i].name.clone(), position));
    }
    eprintln!("{TEST}: positions after the failover (s): {after:?}");

    // The DJ goes on: the next track, accepted by B and relayed to the three others.
    control(
        &m[0],
        &session,
        ControlAction::TrackChange,
        0.0,
        Some(track("b")),
    );
    for other in &mut m[1..] {
        let change = other.wait_for("music-track-change").await.unwrap();
        assert_eq!(change.data()["track"]["id"], "b", "{}", other.name);
        assert_eq!(change.data()["userId"], ann_id, "{}", other.name);
    }
    assert!(
        !m[0].skipped.iter().any(|e| e == "music-error"),
        "ann was refused: {:?}",
        m[0].skipped
    );
    eprintln!("{TEST}: ann's track change after the failover reached bob, carl and dora");

    // The participations on the dead process end in the session's history: B closes them
    // once they are older than a join's moment between its row and its room (bounded wait).
    let deadline = tokio::time::Instant::now() + link_support::WAIT;
    loop {
        let doc = m[1].rest.session_for_group(&group).await.unwrap();
        let open: Vec<_> = doc
            .participants
            .iter()
            .filter(|p| p.left_at.is_none())
            .map(|p| p.user_id)
            .collect();
        if open.len() == 4 {
            let mut open = open;
            open.sort_unstable();
            let mut everyone = ids.clone();
            everyone.sort_unstable();
            assert_eq!(open, everyone, "one open participation per member: {doc:?}");
            eprintln!(
                "{TEST}: {} participations in the history, 4 open",
                doc.participants.len()
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead process's participations stay open: {:?}",
            doc.participants
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `jamz-server` whose log is read by the test (for the warning it must give).
struct LoggedServer {
    _child: tokio::process::Child,
    url: String,
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl LoggedServer {
    async fn start(dir: &std::path::Path, db: &str, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(jamz_e2e::workspace_bin("jamz-server"))
            .args(["--bind", "127.0.0.1:0", "--db", db, "--data-dir"])
            .arg(dir.join("files"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, log) = tokio::sync::mpsc::unbounded_channel();
        let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                eprintln!("[server] {line}");
                let _ = tx.send(line);
            }
        });
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(link_support::WAIT, out.next_line())
            .await
            .expect("jamz-server did not start in time")
            .unwrap()
            .expect("jamz-server ended before listening");
        let url = line
            .strip_prefix("jamz-server listening on ")
            .expect("the listening line")
            .to_string();
        Self {
            _child: child,
            url,
            log,
        }
    }

    /// Waits (bounded) for a log line containing `text`.
    async fn logged(&mut self, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + link_support::WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.log.recv())
                .await
                .unwrap_or_else(|_| panic!("no log line with {text:?} in time"))
                .expect("the server's log ended");
            if line.contains(text) {
                return line;
            }
        }
    }
}

/// A private `redis-server` on a free port of its own, to be stopped and started again.
struct OwnRedis {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    async fn start_on(port: u16, dir: tempfile::TempDir) -> Self {
        let child = tokio::process::Command::new(
            std::env::var("JAMZ_REDIS_BIN").unwrap_or_else(|_| "redis-server".into()),
        )
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server");
        // Ready when it accepts a connection (bounded).
        let deadline = tokio::time::Instant::now() + link_support::WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child, port, dir }
    }

    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port, tempfile::tempdir().unwrap()).await
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// Sends `event` from `from` until `to` hears `name` (bounded): for a path that comes
/// back at a moment nobody announces (Redis reconnecting).
async fn until_heard<E: jamz_proto::events::Event>(
    from: &Member,
    to: &mut Member,
    event: &E,
    name: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        from.link().send(event).unwrap();
        match tokio::time::timeout(Duration::from_millis(300), to.wait_for(name)).await {
            Ok(Ok(_)) => return,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "{}: never heard {name} from {}",
                to.name,
                from.name
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_leaves_each_process_relaying_to_its_own_sockets() {
    const TEST: &str = "redis_going_away_leaves_each_process_relaying_to_its_own_sockets";
    let Some(admin) = pg::admin_url(TEST) else {
        return;
    };
    if redis_url(TEST).is_none() {
        return;
    }
    let seed = seed();
    let db = pg::fresh_database(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let mut redis = OwnRedis::start().await;
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--jwt-secret", SECRET];
    let mut a = LoggedServer::start(dir.path(), &db, &args).await;
    let b = LoggedServer::start(dir.path(), &db, &args).await;

    // ann and carl on A, bob on B, in one session.
    let mut ann = Member::register(&a.url, "ann").await.unwrap();
    let mut bob = Member::register(&b.url, "bob").await.unwrap();
    let mut carl = Member::register(&a.url, "carl").await.unwrap();
    let group = ann.rest.create_group("Convoy", None).await.unwrap();
    ann.rest.add_member(&group.id, "bob").await.unwrap();
    ann.rest.add_member(&group.id, "carl").await.unwrap();
    let session = ann.rest.session_for_group(&group.id).await.unwrap().id;
    for (m, url, i) in [
        (&mut ann, &a.url, 0),
        (&mut bob, &b.url, 1),
        (&mut carl, &a.url, 2),
    ] {
        let cfg = m.config(url, seed + i).unwrap();
        m.enter(cfg, &session).await.unwrap();
    }
    ann.take_control(&session).unwrap();
    bob.wait_for("music-controller-changed").await.unwrap();
    carl.wait_for("music-controller-changed").await.unwrap();
    let seek = |position: f64| MusicControl {
        session_id: session.clone(),
        action: jamz_proto::events::ControlAction::Seek,
        position,
        track: Some(track("a")),
        timestamp: 0.0,
    };

    // Redis dies: A says so, and ann's relays still reach carl on A.
    let port = redis.port;
    redis.child.start_kill().unwrap();
    redis.child.wait().await.unwrap();
    ann.link().send(&seek(1.0)).unwrap();
    let warning = a.logged("Redis unreachable").await;
    assert!(warning.contains("this process's sockets only"), "{warning}");
    let heard = carl.wait_for("music-seek").await.unwrap();
    assert_eq!(heard.data()["position"], 1.0);
    ann.link().send(&seek(2.0)).unwrap();
    let heard = carl.wait_for("music-seek").await.unwrap();
    assert_eq!(heard.data()["position"], 2.0);

    // Redis is back on the same port: relays reach B again, and A says so.
    let redis = OwnRedis::start_on(port, redis.dir).await;
    until_heard(&ann, &mut bob, &seek(3.0), "music-seek").await;
    a.logged("Redis reachable again").await;
    drop((a, b, redis));
}

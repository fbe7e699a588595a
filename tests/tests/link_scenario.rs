//! The whole docs/protocol.md scenario with `jamz-link` as the client, written once and
//! run against two servers: `jamz-server`, and a reference server on the official
//! Node `socket.io` package (`tests/js/ref-server.mjs`), which proves that the
//! client speaks real Socket.IO and not only our server's dialect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod link_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use jamz_e2e::{RefServer, TestServer};
use jamz_link::{LinkError, LinkState, SocketConfig, Upload};
use jamz_proto::events::{
    ControlAction, LeaveAudioSession, LocationUpdate, MusicControl, PlaylistUpdate, PositionSync,
    SignalData, SignalType, WebrtcSignal,
};
use jamz_proto::rest::LocationReport;
use jamz_proto::{ServerEvent, Track};
use link_support::{Member, seed};
use rand::{RngExt, SeedableRng};

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn track(title: &str, artist: &str, url: &str) -> Track {
    Track {
        title: title.into(),
        artist: artist.into(),
        url: url.into(),
        duration: Some(180.0),
        ..Default::default()
    }
}

fn decode(m: &jamz_link::ServerMessage) -> ServerEvent {
    m.decode()
        .unwrap_or_else(|e| panic!("{}: {e}: {}", m.name, m.data()))
}

/// The scenario of issue 2, against the backend at `base`.
async fn scenario(base: &str, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // ---- register, log in, create a group, add members, get the session
    let mut alice = Member::register(base, "alice").await?;
    let mut bob = Member::register(base, "bob").await?;
    let mut carol = Member::register(base, "carol").await?;
    let relogin = alice.rest.login("alice", "correct horse battery").await?;
    assert_eq!(relogin.user.id, alice.user.id);
    let bad_login = alice.rest.login("alice", "wrong").await;
    assert_eq!(
        bad_login.as_ref().err().and_then(LinkError::status),
        Some(401),
        "{bad_login:?}"
    );
    alice.rest.set_token(Some(relogin.token));

    let group = alice
        .rest
        .create_group("road trip", Some("to the coast"))
        .await?;
    assert_eq!(group.creator_id, alice.user.id);
    alice.rest.add_member(&group.id, "bob").await?;
    let group = alice.rest.add_member(&group.id, "carol").await?;
    assert!(group.members.contains(&bob.user.id), "{group:?}");
    let bobs_groups = bob.rest.groups().await?;
    assert!(
        bobs_groups.iter().any(|g| g.id == group.id),
        "{bobs_groups:?}"
    );

    let session = alice.rest.session_for_group(&group.id).await?;
    let again = bob.rest.session_for_group(&group.id).await?;
    assert_eq!(session.id, again.id, "one active session per group");
    assert_eq!(session.group_id, group.id);
    let sid = session.id.clone();

    // ---- two members join: state, current participants, participant-joined
    let state = alice.enter(alice.config(base, seed)?, &sid).await?;
    assert!(matches!(decode(&state), ServerEvent::MusicSessionState(_)));
    let cp = alice.wait_for("current-participants").await?;
    let ServerEvent::CurrentParticipants(cp) = decode(&cp) else {
        unreachable!()
    };
    assert!(
        cp.participants.iter().any(|p| p.user_id == alice.user.id),
        "{cp:?}"
    );

    bob.enter(bob.config(base, seed.wrapping_add(1))?, &sid)
        .await?;
    let cp = bob.wait_for("current-participants").await?;
    let ServerEvent::CurrentParticipants(cp) = decode(&cp) else {
        unreachable!()
    };
    let ids: Vec<_> = cp.participants.iter().map(|p| p.user_id).collect();
    assert!(
        ids.contains(&alice.user.id) && ids.contains(&bob.user.id),
        "{cp:?}"
    );
    // Others know a socket by its public id, never by its handshake (Engine.IO)
    // id; a socket sees its own entries under its handshake id.
    let id_of = |user| {
        cp.participants
            .iter()
            .find(|p| p.user_id == user)
            .map(|p| p.socket_id.clone())
    };
    assert_eq!(id_of(bob.user.id).as_ref(), bob.sid.as_ref(), "{cp:?}");
    let alice_public = id_of(alice.user.id);
    // (Only consistency here: the reference Socket.IO server shows its own
    // socket ids; that jamz-server's differ is tests/js/server-security.)
    assert!(alice_public.is_some(), "{cp:?}");
    let joined = alice.wait_for("participant-joined").await?;
    let ServerEvent::ParticipantJoined(joined) = decode(&joined) else {
        unreachable!()
    };
    assert_eq!(joined.user_id, bob.user.id);

    carol.connect(base, seed.wrapping_add(2)).await?;
    carol.join(&sid)?;
    carol.wait_for("current-participants").await?;
    let carol_joined = alice.wait_for("participant-joined").await?;
    let ServerEvent::ParticipantJoined(carol_joined) = decode(&carol_joined) else {
        unreachable!()
    };
    bob.wait_for("participant-joined").await?;

    // ---- alice takes control: the whole room hears it
    alice.take_control(&sid)?;
    let (dj_id, alice_sid) = (alice.user.id, alice.sid.clone());
    for (m, dj_sid) in [
        (&mut alice, alice_sid),
        (&mut bob, alice_public.clone()),
        (&mut carol, alice_public.clone()),
    ] {
        let cc = m.wait_for("music-controller-changed").await?;
        let ServerEvent::MusicControllerChanged(cc) = decode(&cc) else {
            unreachable!()
        };
        assert_eq!(cc.user_id, dj_id, "{}", m.name);
        assert_eq!(Some(&cc.controller_id), dj_sid.as_ref(), "{}", m.name);
    }

    // ---- play / pause / seek / track-change relayed to the others
    let song = track(
        "Roadrunner",
        "The Modern Lovers",
        "https://example.test/roadrunner.mp3",
    );
    let steps = [
        (ControlAction::TrackChange, "music-track-change", 0.0),
        (ControlAction::Play, "music-play", 0.0),
        (
            ControlAction::Pause,
            "music-pause",
            rng.random_range(1.0..60.0),
        ),
        (
            ControlAction::Seek,
            "music-seek",
            rng.random_range(60.0..120.0),
        ),
    ];
    for (action, relay, position) in steps {
        let ts = now_ms();
        alice.link().send(&MusicControl {
            session_id: sid.clone(),
            action,
            position,
            track: Some(song.clone()),
            timestamp: ts,
        })?;
        let m = bob.wait_for(relay).await?;
        let r = match decode(&m) {
            ServerEvent::MusicPlay(r)
            | ServerEvent::MusicPause(r)
            | ServerEvent::MusicSeek(r)
            | ServerEvent::MusicTrackChange(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.position, position, "{relay}");
        assert_eq!(r.timestamp, ts, "{relay}");
        assert_eq!(r.user_id, Some(alice.user.id), "{relay}");
        assert_eq!(r.controller_id, alice_public, "{relay}");
        assert_eq!(
            r.track.as_ref().map(|t| t.title.as_str()),
            Some("Roadrunner")
        );
        let m = carol.wait_for(relay).await?;
        assert_eq!(m.data()["position"], position, "carol {relay}");
    }

    // ---- control from a non-DJ is refused with music-error
    bob.link().send(&MusicControl {
        session_id: sid.clone(),
        action: ControlAction::Play,
        position: 3.0,
        track: None,
        timestamp: now_ms(),
    })?;
    let err = bob.wait_for("music-error").await?;
    let ServerEvent::MusicError(err) = decode(&err) else {
        unreachable!()
    };
    assert!(!err.error.is_empty());
    // and the others never heard it: the next relay alice... carol sees is the
    // DJ's seek that follows, not bob's play.
    alice.link().send(&MusicControl {
        session_id: sid.clone(),
        action: ControlAction::Seek,
        position: 5.0,
        track: None,
        timestamp: now_ms(),
    })?;
    carol.skipped.clear();
    let seek = carol.wait_for("music-seek").await?;
    assert_eq!(seek.data()["position"], 5.0);
    assert!(
        !carol.skipped.iter().any(|n| n == "music-play"),
        "{:?}",
        carol.skipped
    );

    // ---- playlist: append with de-duplication
    let t1 = track("Holiday", "Green Day", &format!("{base}/x/holiday.mp3"));
    let t2 = track(
        "Highway Star",
        "Deep Purple",
        &format!("{base}/x/highway.mp3"),
    );
    let pl = alice.rest.append_track(&sid, &t1).await?;
    assert_eq!(pl.len(), 1, "{pl:?}");
    let same_url = track("Holiday (live)", "Someone", &t1.url);
    let pl = bob.rest.append_track(&sid, &same_url).await?;
    assert_eq!(pl.len(), 1, "same url is a duplicate: {pl:?}");
    let same_title = track("  holiday ", "GREEN DAY", "https://elsewhere.test/h.mp3");
    let pl = bob.rest.append_track(&sid, &same_title).await?;
    assert_eq!(pl.len(), 1, "same title+artist is a duplicate: {pl:?}");
    let pl = bob.rest.append_track(&sid, &t2).await?;
    assert_eq!(pl.len(), 2, "{pl:?}");
    let ids: Vec<String> = pl.iter().map(|t| t.id.clone()).collect();
    assert!(
        ids.iter().all(|id| !id.is_empty()),
        "the server gives ids: {pl:?}"
    );

    // ---- DJ-only delete and reorder (403 otherwise)
    let del = bob.rest.delete_track(&sid, &ids[0]).await;
    assert_eq!(
        del.as_ref().err().and_then(LinkError::status),
        Some(403),
        "{del:?}"
    );
    let reversed: Vec<String> = ids.iter().rev().cloned().collect();
    let re = bob.rest.reorder_playlist(&sid, &reversed).await;
    assert_eq!(
        re.as_ref().err().and_then(LinkError::status),
        Some(403),
        "{re:?}"
    );
    if let Err(LinkError::Http { message, .. }) = &re {
        assert!(!message.is_empty());
    }
    let pl = alice.rest.reorder_playlist(&sid, &reversed).await?;
    assert_eq!(
        pl.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        reversed
    );
    let pl = alice.rest.delete_track(&sid, &ids[1]).await?;
    assert_eq!(
        pl.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        vec![ids[0].clone()]
    );

    // ---- webrtc-signal delivered to the one addressed user
    let offer = WebrtcSignal {
        session_id: sid.clone(),
        from: alice.user.id,
        to: bob.user.id,
        kind: SignalType::Offer,
        data: SignalData {
            sdp: Some("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into()),
            candidate: None,
        },
    };
    alice.link().send(&offer)?;
    let to_carol = WebrtcSignal {
        to: carol.user.id,
        kind: SignalType::Answer,
        ..offer.clone()
    };
    alice.link().send(&to_carol)?;
    let got = bob.wait_for("webrtc-signal").await?;
    let ServerEvent::WebrtcSignal(got) = decode(&got) else {
        unreachable!()
    };
    assert_eq!(got, offer);
    // carol's first signal is the one addressed to her: bob's was not relayed to her
    let got = carol.wait_for("webrtc-signal").await?;
    let ServerEvent::WebrtcSignal(got) = decode(&got) else {
        unreachable!()
    };
    assert_eq!(
        got.to, carol.user.id,
        "carol got a signal addressed to {}",
        got.to
    );

    // ---- playlist-update and music-position-sync relayed to the others
    let shared = vec![t1.clone(), t2.clone()];
    alice.link().send(&PlaylistUpdate {
        session_id: sid.clone(),
        playlist: shared.clone(),
    })?;
    let pu = bob.wait_for("playlist-update").await?;
    let ServerEvent::PlaylistUpdate(pu) = decode(&pu) else {
        unreachable!()
    };
    let titles: Vec<_> = pu.playlist.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["Holiday", "Highway Star"]);
    let ts = now_ms();
    alice.link().send(&PositionSync {
        session_id: sid.clone(),
        position: 12.5,
        timestamp: ts,
    })?;
    let ps = bob.wait_for("music-position-sync").await?;
    let ServerEvent::PositionSync(ps) = decode(&ps) else {
        unreachable!()
    };
    assert_eq!(
        (ps.position, ps.timestamp, ps.user_id),
        (12.5, ts, Some(alice.user.id))
    );

    // ---- location relayed and stored
    let (lat, lon) = (
        rng.random_range(-80.0..80.0),
        rng.random_range(-170.0..170.0),
    );
    let ts = now_ms();
    bob.link().send(&LocationUpdate {
        session_id: sid.clone(),
        latitude: lat,
        longitude: lon,
        accuracy: Some(5.0),
        speed: Some(27.0),
        heading: Some(90.0),
        timestamp: ts,
    })?;
    let loc = alice.wait_for("location-update").await?;
    let ServerEvent::LocationUpdate(loc) = decode(&loc) else {
        unreachable!()
    };
    assert_eq!(
        (loc.user_id, loc.latitude, loc.longitude),
        (bob.user.id, lat, lon)
    );
    // stored: the relay may precede the write, so poll within a bound
    let stored = async {
        loop {
            let latest = alice.rest.latest_locations(&group.id).await?;
            if latest
                .iter()
                .any(|l| l.user_id == bob.user.id && l.latitude == lat && l.longitude == lon)
            {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(link_support::WAIT, stored)
        .await
        .context("bob's socket location was never stored")??;
    carol
        .rest
        .post_location(&LocationReport {
            session_id: Some(sid.clone()),
            latitude: 45.5,
            longitude: -122.6,
            accuracy: None,
            speed: None,
            heading: None,
            timestamp: now_ms(),
        })
        .await?;
    let latest = bob.rest.latest_locations(&group.id).await?;
    assert!(
        latest
            .iter()
            .any(|l| l.user_id == carol.user.id && l.latitude == 45.5),
        "{latest:?}"
    );
    let bad = carol
        .rest
        .post_location(&LocationReport {
            session_id: None,
            latitude: 91.0,
            longitude: 0.0,
            accuracy: None,
            speed: None,
            heading: None,
            timestamp: now_ms(),
        })
        .await;
    // docs/protocol.md: a validation failure is a 400 or a 422 with {"error"}
    assert!(
        matches!(
            bad.as_ref().err().and_then(LinkError::status),
            Some(400 | 422)
        ),
        "{bad:?}"
    );

    // ---- time-sync acked
    let t0 = now_ms();
    let reply = alice.link().time_sync(t0, link_support::WAIT).await?;
    assert_eq!(reply.t0, t0);
    assert!(reply.t1 <= reply.t2, "{reply:?}");

    // ---- a non-member: 403 over REST, music-error over the socket
    let mut dave = Member::register(base, "dave").await?;
    let r = dave.rest.session_for_group(&group.id).await;
    assert_eq!(
        r.as_ref().err().and_then(LinkError::status),
        Some(403),
        "{r:?}"
    );
    let r = dave.rest.latest_locations(&group.id).await;
    assert_eq!(
        r.as_ref().err().and_then(LinkError::status),
        Some(403),
        "{r:?}"
    );
    dave.connect(base, seed.wrapping_add(3)).await?;
    dave.join(&sid)?;
    let err = dave.wait_for("music-error").await?;
    assert!(matches!(decode(&err), ServerEvent::MusicError(_)));
    assert!(
        !dave.skipped.iter().any(|n| n == "music-session-state"),
        "{:?}",
        dave.skipped
    );
    dave.link().close().await?;

    // ---- a bad token is refused with `Authentication failed`
    let mut mallory = Member {
        name: "mallory".into(),
        rest: jamz_link::RestClient::new(base)?,
        user: alice.user.clone(),
        link: None,
        events: None,
        sid: None,
        skipped: Vec::new(),
        room: None,
    };
    mallory.open(SocketConfig::new(base).token("not-a-jwt").seed(seed))?;
    let refused = mallory
        .wait_state("Refused", |s| {
            matches!(s, LinkState::Refused { .. } | LinkState::Connected { .. })
        })
        .await?;
    assert_eq!(
        refused,
        LinkState::Refused {
            message: "Authentication failed".into()
        }
    );
    let no_token = mallory.rest.groups().await;
    assert_eq!(
        no_token.as_ref().err().and_then(LinkError::status),
        Some(401),
        "{no_token:?}"
    );
    mallory.link().close().await?;

    // ---- upload then a ranged download
    // Real audio (the server probes uploads): a 16-bit mono WAV of random samples.
    let mut audio = vec![0u8; 300_000];
    rng.fill(&mut audio[44..]);
    let data_len = (audio.len() - 44) as u32;
    let header = [
        &b"RIFF"[..],
        &(36 + data_len).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &8000u32.to_le_bytes(),
        &16000u32.to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data_len.to_le_bytes(),
    ]
    .concat();
    audio[..44].copy_from_slice(&header);
    let progress = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let p2 = progress.clone();
    let uploaded = alice
        .rest
        .upload(Upload {
            file_name: "drive.wav".into(),
            content_type: Some("audio/wav".into()),
            data: audio.clone().into(),
            title: Some("Drive".into()),
            artist: Some("The Cars".into()),
            duration: Some(235.0),
            progress: Some(Arc::new(move |sent, total| {
                p2.lock().unwrap().push((sent, total))
            })),
        })
        .await?;
    assert_eq!(uploaded.title, "Drive");
    assert!(!uploaded.url.is_empty(), "{uploaded:?}");
    let progress = progress.lock().unwrap().clone();
    assert_eq!(
        progress.last(),
        Some(&(audio.len() as u64, audio.len() as u64)),
        "{progress:?}"
    );
    assert!(
        progress.len() > 1,
        "progress reported per chunk: {progress:?}"
    );
    let (start, end) = (
        rng.random_range(0..100_000u64),
        rng.random_range(100_000..200_000u64),
    );
    let part = bob
        .rest
        .download(&uploaded.url, Some((start, Some(end))))
        .await?;
    assert_eq!(part.status, 206);
    assert_eq!(&part.bytes[..], &audio[start as usize..=end as usize]);
    assert_eq!(part.total_len(), Some(audio.len() as u64));
    let whole = bob.rest.download(&uploaded.url, None).await?;
    assert_eq!(whole.status, 200);
    ensure!(whole.bytes[..] == audio[..], "whole download differs");
    assert!(whole.etag.is_some(), "ETag sent");
    let tail = bob
        .rest
        .download(&uploaded.url, Some((250_000, None)))
        .await?;
    assert_eq!(&tail.bytes[..], &audio[250_000..]);
    let mut streamed = Vec::new();
    let meta = bob
        .rest
        .download_to(&uploaded.url, Some((start, None)), &mut streamed, None)
        .await?;
    assert_eq!(meta.status, 206);
    ensure!(
        streamed[..] == audio[start as usize..],
        "streamed range differs"
    );

    // ---- leaving: explicitly, and by disconnecting
    carol.forget_room();
    carol.link().send(&LeaveAudioSession {
        session_id: sid.clone(),
    })?;
    let left = alice.wait_for("participant-left").await?;
    let ServerEvent::ParticipantLeft(left) = decode(&left) else {
        unreachable!()
    };
    assert_eq!(left.user_id, carol.user.id);
    assert_eq!(left.socket_id, carol_joined.socket_id);
    bob.link().close().await?;
    let left = alice.wait_for("participant-left").await?;
    let ServerEvent::ParticipantLeft(left) = decode(&left) else {
        unreachable!()
    };
    assert_eq!(left.user_id, bob.user.id);

    for m in [&alice, &carol] {
        m.link().close().await?;
    }
    Ok(())
}

async fn run(base: &str) {
    let seed = seed();
    if let Err(e) = scenario(base, seed).await {
        panic!("scenario against {base} failed (seed {seed}): {e:?}");
    }
}

#[tokio::test]
async fn scenario_against_node_socket_io_reference_server() {
    let server = RefServer::start(None).await.expect("start ref-server");
    run(&server.url).await;
}

#[tokio::test]
async fn scenario_against_jamz_server() {
    let server = TestServer::start().await.expect("start jamz-server");
    run(&server.url).await;
}

//! The settings a user changes while a session runs (README, "Node control:
//! additions"): output latency offset, cache size, cache clear, output switch,
//! the output list; and what a face sees without polling: periodic `playback`,
//! its own `location`, its username as display name when started with a token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::{Command, LocationEvent, Notification};
use jamz_node::{Node, NodeAuth, NodeCommand, NodeConfig, NodeEvent, StatusView};

mod support;

use support::{ann_config, heard_ramp, next_matching, quit, world, write_ramp, write_tone};

async fn status(node: &mut Node, what: &str, pred: impl Fn(&StatusView) -> bool) -> StatusView {
    node.send(NodeCommand::Status).unwrap();
    let ev = next_matching(node, what, |e| matches!(e, NodeEvent::Status(s) if pred(s))).await;
    let NodeEvent::Status(s) = ev else {
        unreachable!()
    };
    s
}

/// Switches the node's output to a WAV file at `path` and waits for the status that
/// shows it; the output's spec.
async fn switch_to_wav(node: &mut Node, path: &std::path::Path) -> String {
    let spec = format!("wav:{}", path.display());
    node.send(NodeCommand::Output { spec: spec.clone() })
        .unwrap();
    next_matching(
        node,
        "the status after the switch",
        |e| matches!(e, NodeEvent::Status(s) if s.output == spec),
    )
    .await;
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_apply_while_the_session_plays() {
    let dir = tempfile::tempdir().unwrap();
    let (url, auth, group) = world(dir.path()).await;

    let first_wav = dir.path().join("first.wav");
    let mut config = NodeConfig::new(
        url.clone(),
        NodeAuth::Token {
            token: auth.token.clone(),
            user_id: auth.user.id,
            username: "ann".into(),
        },
        group,
    );
    config.output = format!("wav:{}", first_wav.display()).parse().unwrap();
    config.cache_dir = Some(dir.path().join("cache"));
    config.latency_offset_ms = 40.0;
    config.cache_max_bytes = Some(512 * 1024 * 1024);
    let mut node = Node::start(config).await.unwrap();
    let me = node.user_id();

    // Started with a token: the session knows the node by its username.
    next_matching(&mut node, "participants naming ann", |e| {
        matches!(e, NodeEvent::Session(Notification::Participants { participants })
            if participants.iter().any(|p| p.user_id == me && p.display_name.as_deref() == Some("ann")))
    })
    .await;
    let s = status(&mut node, "the first status", |_| true).await;
    assert_eq!(s.latency_offset_ms, 40.0);
    assert_eq!(s.cache.max_bytes, 512 * 1024 * 1024);
    assert_eq!(s.output, format!("wav:{}", first_wav.display()));

    // A track, played.
    let tone = dir.path().join("tone.wav");
    write_ramp(&tone, TONE_S);
    node.send(NodeCommand::Session(Command::TakeControl))
        .unwrap();
    next_matching(
        &mut node,
        "the DJ role",
        |e| matches!(e, NodeEvent::Session(Notification::Controller { user_id: Some(u) }) if *u == me),
    )
    .await;
    node.send(NodeCommand::Add {
        path: Some(tone.clone()),
        track: None,
        youtube: None,
        duration: None,
    })
    .unwrap();
    let ev = next_matching(
        &mut node,
        "the playlist with the tone",
        |e| matches!(e, NodeEvent::Session(Notification::Playlist { playlist }) if playlist.len() == 1),
    )
    .await;
    let NodeEvent::Session(Notification::Playlist { playlist }) = ev else {
        unreachable!()
    };
    let track = playlist[0].id.clone();
    // The uploaded file went into this device's cache: it is never downloaded back.
    let s = status(&mut node, "the cache after the upload", |_| true).await;
    assert_eq!((s.cache.tracks, s.cache.misses), (1, 0), "{:?}", s.cache);
    node.send(NodeCommand::Session(Command::Play {
        track: Some(track.clone()),
        position: Some(0.0),
    }))
    .unwrap();
    next_matching(&mut node, "playing", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Playback { playing: true, .. })
        )
    })
    .await;

    // While it plays, `playback` repeats with a moving position, unasked.
    let mut positions = Vec::new();
    while positions.len() < 3 {
        if let NodeEvent::Session(Notification::Playback {
            playing: true,
            position,
            track: Some(t),
            ..
        }) = next_matching(&mut node, "a periodic playback", |e| {
            matches!(e, NodeEvent::Session(Notification::Playback { .. }))
        })
        .await
        {
            assert_eq!(t, track);
            positions.push(position);
        }
    }
    assert!(
        positions.windows(2).all(|w| w[1] > w[0]),
        "positions do not move: {positions:?}"
    );

    // Latency offset and cache limit, live.
    node.send(NodeCommand::LatencyOffset { ms: 250.0 }).unwrap();
    node.send(NodeCommand::CacheLimit {
        bytes: 64 * 1024 * 1024,
        tracks: Some(10),
    })
    .unwrap();
    let s = status(&mut node, "the new limits", |s| s.cache.max_tracks == 10).await;
    assert_eq!(s.latency_offset_ms, 250.0);
    assert_eq!(s.cache.max_bytes, 64 * 1024 * 1024);
    // Within the new limits the playing track stays cached.
    assert_eq!(s.cache.tracks, 1);

    // The output list has the system default first.
    node.send(NodeCommand::Outputs).unwrap();
    let ev = next_matching(&mut node, "outputs", |e| {
        matches!(e, NodeEvent::Outputs { .. })
    })
    .await;
    let NodeEvent::Outputs { outputs } = ev else {
        unreachable!()
    };
    assert_eq!(outputs.first().map(|o| o.id.as_str()), Some("default"));

    // Switch the output: the new one carries on where the group is.
    let second_wav = dir.path().join("second.wav");
    let spec = switch_to_wav(&mut node, &second_wav).await;
    let before = match next_matching(&mut node, "playback on the new output", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Playback { playing: true, .. })
        )
    })
    .await
    {
        NodeEvent::Session(Notification::Playback { position, .. }) => position,
        _ => unreachable!(),
    };
    let after = match next_matching(&mut node, "more playback on the new output", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Playback { playing: true, .. })
        )
    })
    .await
    {
        NodeEvent::Session(Notification::Playback { position, .. }) => position,
        _ => unreachable!(),
    };
    assert!(after > before, "{before} then {after}");
    assert!(
        before > positions[0],
        "restarted from the top: {before} after {positions:?}"
    );
    // A spec that cannot open is an error; the old output keeps playing.
    node.send(NodeCommand::Output {
        spec: "device:no-such-device".into(),
    })
    .unwrap();
    next_matching(
        &mut node,
        "the output error",
        |e| matches!(e, NodeEvent::Session(Notification::Error { message, .. }) if message.contains("no-such-device")),
    )
    .await;
    let s = status(&mut node, "status after the failed switch", |_| true).await;
    assert_eq!(s.output, spec);
    assert!(s.playing);

    // Clear the cache mid-session: nothing left, playback goes on.
    node.send(NodeCommand::CacheClear).unwrap();
    let s = status(&mut node, "an empty cache", |s| s.cache.tracks == 0).await;
    assert_eq!(s.cache.bytes, 0);
    assert!(s.playing);

    // This device's own fix comes back as a `location` event.
    node.send(NodeCommand::Location {
        latitude: 47.37,
        longitude: 8.54,
        speed: Some(20.0),
        heading: None,
    })
    .unwrap();
    next_matching(&mut node, "its own location", |e| {
        matches!(e, NodeEvent::Session(Notification::Location(LocationEvent::Location { user_id, latitude, .. })) if *user_id == me && *latitude == 47.37)
    })
    .await;

    // The new output kept playing (more periodic playback) until the end.
    next_matching(&mut node, "playback after the cache was cleared", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Playback { playing: true, .. })
        )
    })
    .await;
    quit(node).await;

    // Both WAVs are finished files. The first played from the top; the second has sound,
    // which starts where the group was at the switch, not at the top.
    let first = heard_ramp(&first_wav, TONE_S);
    eprintln!("first output: {first:?}");
    assert!(first.audible_s >= 0.5, "{first:?}");
    assert!(first.first_position.is_some_and(|p| p < 1.0), "{first:?}");
    let second = heard_ramp(&second_wav, TONE_S);
    eprintln!("second output: {second:?} (playback at {before} s on it)");
    assert!(
        second.audible_s >= 0.5,
        "the second output is silent: {second:?}"
    );
    let p = second.first_position.unwrap();
    assert!(
        p > positions[0] && (p - before).abs() < 1.5,
        "the second output began at {p:.2} s of the track, the group was at {before:.2} s"
    );
}

/// Seconds of the ramp tone the settings tests play.
const TONE_S: u32 = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_out_of_range_refuse_to_start() {
    let mut config = NodeConfig::new(
        "http://127.0.0.1:9",
        NodeAuth::Password {
            username: "x".into(),
            password: "y".into(),
        },
        "g",
    );
    config.latency_offset_ms = -1.0;
    let e = Node::start(config.clone()).await.unwrap_err();
    assert!(e.to_string().contains("0..=2000"), "{e}");
    config.latency_offset_ms = 0.0;
    config.cache_max_bytes = Some(1024);
    let e = Node::start(config).await.unwrap_err();
    assert!(e.to_string().contains("at least"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_device_that_cannot_open_leaves_the_node_in_the_session_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let mut config = NodeConfig::new(
        url,
        NodeAuth::Password {
            username: "ann".into(),
            password: "pw".into(),
        },
        group,
    );
    config.output = "device:no-such-device".parse().unwrap();
    config.cache_dir = Some(dir.path().join("cache"));
    let mut node = Node::start(config).await.unwrap();
    next_matching(&mut node, "the output error", |e| {
        matches!(e, NodeEvent::Session(Notification::Error { message, .. }) if message.contains("no-such-device") && message.contains("silently"))
    })
    .await;
    let s = status(&mut node, "a status", |_| true).await;
    assert_eq!(s.output, "null");

    // It plays silently, in step with the group...
    let me = node.user_id();
    node.send(NodeCommand::Session(Command::TakeControl))
        .unwrap();
    next_matching(
        &mut node,
        "the DJ role",
        |e| matches!(e, NodeEvent::Session(Notification::Controller { user_id: Some(u) }) if *u == me),
    )
    .await;
    let tone = dir.path().join("ramp.wav");
    write_ramp(&tone, TONE_S);
    node.send(NodeCommand::Add {
        path: Some(tone),
        track: None,
        youtube: None,
        duration: None,
    })
    .unwrap();
    let NodeEvent::Session(Notification::Playlist { playlist }) = next_matching(
        &mut node,
        "the playlist with the tone",
        |e| matches!(e, NodeEvent::Session(Notification::Playlist { playlist }) if playlist.len() == 1),
    )
    .await
    else {
        unreachable!()
    };
    node.send(NodeCommand::Session(Command::Play {
        track: Some(playlist[0].id.clone()),
        position: Some(0.0),
    }))
    .unwrap();
    let playing_at = |e: &NodeEvent, from: f64| matches!(e, NodeEvent::Session(Notification::Playback { playing: true, position, .. }) if *position >= from);
    next_matching(&mut node, "silent playback past 1 s", |e| {
        playing_at(e, 1.0)
    })
    .await;

    // ... until an output that opens is chosen: sound from there on, at the group's place.
    let wav = dir.path().join("recovered.wav");
    switch_to_wav(&mut node, &wav).await;
    let s = status(&mut node, "a status on the new output", |_| true).await;
    let switched_at = s.position.unwrap_or(0.0);
    next_matching(&mut node, "playback on the new output", |e| {
        playing_at(e, switched_at + 1.0)
    })
    .await;
    quit(node).await;
    let heard = heard_ramp(&wav, TONE_S);
    eprintln!("after the null output: {heard:?} (switched at {switched_at:.2} s)");
    assert!(heard.audible_s >= 0.5, "still silent: {heard:?}");
    let p = heard.first_position.unwrap();
    assert!(
        p > 0.5 && (p - switched_at).abs() < 1.5,
        "the sound began at {p:.2} s of the track, the group was at {switched_at:.2} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_preload_a_track_another_car_adds_is_cached_without_playing() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ann, group) = world(dir.path()).await;
    let bo_rest = jamz_node::RestClient::new(&url).unwrap();
    bo_rest
        .register("bo", "bo@example.test", "pw")
        .await
        .unwrap();
    let ann_rest = jamz_node::RestClient::new(&url).unwrap();
    ann_rest.set_token(Some(ann.token.clone()));
    ann_rest.add_member(&group, "bo").await.unwrap();

    let car = |user: &str, name: &str| {
        let mut c = NodeConfig::new(
            url.clone(),
            NodeAuth::Password {
                username: user.into(),
                password: "pw".into(),
            },
            group.clone(),
        );
        c.output = "null".parse().unwrap();
        c.cache_dir = Some(dir.path().join(format!("cache-{name}")));
        c
    };
    let mut bo_config = car("bo", "bo");
    bo_config.auto_preload = true;
    let mut bo = Node::start(bo_config).await.unwrap();
    next_matching(&mut bo, "bo's tier", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Tier {
                tier: jamz_node::Tier::Socket,
                ..
            })
        )
    })
    .await;
    let ann = Node::start(car("ann", "ann")).await.unwrap();
    let tone = dir.path().join("tone.wav");
    write_tone(&tone, 30);
    ann.send(NodeCommand::Add {
        path: Some(tone),
        track: None,
        youtube: None,
        duration: None,
    })
    .unwrap();
    // bo hears of the new track and caches it in the background.
    next_matching(
        &mut bo,
        "bo's background preload finishing",
        |e| matches!(e, NodeEvent::Progress { what, done: 1, total: 1 } if what == "preload"),
    )
    .await;
    let s = status(&mut bo, "bo's status", |_| true).await;
    assert_eq!(s.cache.tracks, 1, "{:?}", s.cache);
    assert!(!s.playing);
    quit(bo).await;
    quit(ann).await;
}

/// An output that takes long to open (here a FIFO no one reads yet: opening it for the
/// WAV blocks until a reader comes) holds up nothing: a later switch is made meanwhile,
/// and when the slow one finally opens it is dropped as superseded, not switched to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_output_switch_does_not_hold_up_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let mut node = Node::start(ann_config(&url, &group, dir.path()))
        .await
        .unwrap();

    let fifo = dir.path().join("slow.wav");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed: {made}");
    node.send(NodeCommand::Output {
        spec: format!("wav:{}", fifo.display()),
    })
    .unwrap();
    // The slow output is still opening (nothing reads the FIFO): this switch is made.
    let spec = switch_to_wav(&mut node, &dir.path().join("second.wav")).await;

    // Now the slow one opens; superseded, it is stopped at once, which closes the FIFO.
    let reader = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::open(&fifo)?, &mut bytes).map(|_| bytes)
    });
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), reader)
        .await
        .expect("the superseded output kept its FIFO open")
        .unwrap()
        .unwrap();
    eprintln!("the superseded output wrote {} bytes", read.len());
    let s = status(&mut node, "the status after the slow output opened", |_| {
        true
    })
    .await;
    assert_eq!(s.output, spec, "the superseded switch took over");
    quit(node).await;
}

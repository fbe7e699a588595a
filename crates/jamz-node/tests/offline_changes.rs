//! Playlist changes made while the server is away reach it when it is back, in
//! order; also when the app was closed in between (the outbox is on disk).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use jamz_node::Notification;

use jamz_node::{Node, NodeAuth, NodeCommand, NodeConfig, NodeEvent, RestClient, Tier};
use jamz_proto::Track;
use support::{StoppableServer, next_matching, quit, write_tone};

fn track(n: u32) -> Track {
    Track {
        title: format!("Song {n}"),
        artist: "Offline".into(),
        url: format!("https://example.test/{n}.mp3"),
        ..Default::default()
    }
}

fn titles(playlist: &[Track]) -> Vec<String> {
    playlist.iter().map(|t| t.title.clone()).collect()
}

async fn offline(node: &mut Node) {
    next_matching(node, "the offline tier", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Tier {
                tier: Tier::Offline,
                ..
            })
        )
    })
    .await;
}

async fn playlist_of(node: &mut Node, want: &[&str]) {
    next_matching(
        node,
        &format!("the playlist {want:?}"),
        |e| matches!(e, NodeEvent::Session(Notification::Playlist { playlist }) if titles(playlist) == want),
    )
    .await;
}

/// Waits (bounded) until the outbox is empty: the playlist may arrive (the
/// server's broadcast) before the answer to the last change.
async fn all_sent(node: &mut Node) {
    tokio::time::timeout(support::WAIT, async { while queued(node).await != 0 {} })
        .await
        .expect("changes still queued");
}

async fn queued(node: &mut Node) -> u64 {
    node.send(NodeCommand::Status).unwrap();
    match next_matching(node, "a status", |e| matches!(e, NodeEvent::Status(_))).await {
        NodeEvent::Status(s) => s.queued,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_offline_reach_the_server_later_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoppableServer::start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = server.addr;
    let url = format!("http://{addr}");
    let rest = RestClient::new(&url).unwrap();
    rest.register("ann", "ann@example.test", "pw")
        .await
        .unwrap();
    let group = rest.create_group("trip", None).await.unwrap();
    let config = || {
        let mut c = NodeConfig::new(
            url.clone(),
            NodeAuth::Password {
                username: "ann".into(),
                password: "pw".into(),
            },
            group.id.clone(),
        );
        c.output = "null".parse().unwrap();
        c.cache_dir = Some(dir.path().join("car-cache"));
        c
    };
    let mut node = Node::start(config()).await.unwrap();
    next_matching(&mut node, "the socket tier", |e| {
        matches!(
            e,
            NodeEvent::Session(Notification::Tier {
                tier: Tier::Socket,
                ..
            })
        )
    })
    .await;

    // 1. The server goes away; a track is added; it waits, counted as queued.
    server.stop().await;
    offline(&mut node).await;
    node.send(NodeCommand::Add {
        path: None,
        track: Some(Box::new(track(1))),
        youtube: None,
        duration: None,
    })
    .unwrap();
    assert_eq!(queued(&mut node).await, 1);
    // Back: it is sent, and the playlist has it.
    let server = StoppableServer::start(dir.path(), addr).await;
    playlist_of(&mut node, &["Song 1"]).await;
    all_sent(&mut node).await;

    // 2. Away again: a track, a local file (its upload waits too), a track; then
    // the app is closed before the server is back.
    server.stop().await;
    offline(&mut node).await;
    let file = dir.path().join("offline-tone.wav");
    write_tone(&file, 2);
    node.send(NodeCommand::Add {
        path: None,
        track: Some(Box::new(track(2))),
        youtube: None,
        duration: None,
    })
    .unwrap();
    node.send(NodeCommand::Add {
        path: Some(file),
        track: None,
        youtube: None,
        duration: None,
    })
    .unwrap();
    node.send(NodeCommand::Add {
        path: None,
        track: Some(Box::new(track(3))),
        youtube: None,
        duration: None,
    })
    .unwrap();
    // The face can show what waits: oldest first.
    next_matching(&mut node, "the outbox of three", |e| {
        matches!(e, NodeEvent::Outbox { pending } if pending.iter()
            .map(|p| format!("{} {}", p.action, p.label))
            .collect::<Vec<_>>() == ["add Song 2", "upload offline-tone.wav", "add Song 3"])
    })
    .await;
    assert_eq!(queued(&mut node).await, 3);
    quit(node).await;

    // The server is back, then the app: the changes reach it, in order.
    let server = StoppableServer::start(dir.path(), addr).await;
    let mut node = Node::start(config()).await.unwrap();
    let want = ["Song 1", "Song 2", "offline-tone", "Song 3"];
    next_matching(
        &mut node,
        "the waiting changes at start",
        |e| matches!(e, NodeEvent::Outbox { pending } if pending.len() == 3),
    )
    .await;
    playlist_of(&mut node, &want).await;
    next_matching(
        &mut node,
        "an empty outbox",
        |e| matches!(e, NodeEvent::Outbox { pending } if pending.is_empty()),
    )
    .await;
    all_sent(&mut node).await;
    let on_server = rest
        .session_for_group(&group.id)
        .await
        .unwrap()
        .music
        .playlist;
    assert_eq!(titles(&on_server), want);
    // The uploaded file went into this car's cache on the way.
    node.send(NodeCommand::Status).unwrap();
    let NodeEvent::Status(s) =
        next_matching(&mut node, "a status", |e| matches!(e, NodeEvent::Status(_))).await
    else {
        unreachable!()
    };
    assert_eq!(s.cache.tracks, 1, "{:?}", s.cache);
    quit(node).await;
    server.stop().await;
}

//! Slow work runs off the node's loop: a cache change that cannot finish yet does not hold
//! back a control given after it. The cache's index is held by a write transaction of this
//! test (SQLite makes the cache wait for it), so the `cache-clear` stays in progress until
//! the control has been answered; only then is the index let go.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::{Command, Notification};
use jamz_node::{Node, NodeCommand, NodeEvent};

mod support;

use support::{ann_config as config, next_matching, quit, world};

/// Is this the answer to the `cache-clear` (its `status`, or its error)?
fn clear_answer(e: &NodeEvent) -> bool {
    matches!(e, NodeEvent::Status(_))
        || matches!(e, NodeEvent::Session(Notification::Error { cmd: Some(c), .. }) if c == "cache-clear")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_is_answered_while_a_cache_clear_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let mut node = Node::start(config(&url, &group, dir.path())).await.unwrap();
    let me = node.user_id();
    next_matching(&mut node, "ready", |e| {
        matches!(e, NodeEvent::Session(Notification::Ready { .. }))
    })
    .await;

    // Hold the index: every write of the cache now waits for this transaction.
    let index = rusqlite::Connection::open(dir.path().join("cache").join("index.sqlite3")).unwrap();
    index.execute_batch("BEGIN IMMEDIATE").unwrap();

    node.send(NodeCommand::CacheClear).unwrap();
    node.send(NodeCommand::Session(Command::TakeControl))
        .unwrap();
    // The control's answer comes while the clear is still blocked: nothing of the clear
    // may come first.
    let first = next_matching(&mut node, "the DJ role or the clear's answer", |e| {
        clear_answer(e) || matches!(e, NodeEvent::Session(Notification::Controller { user_id: Some(u) }) if *u == me)
    })
    .await;
    assert!(
        matches!(first, NodeEvent::Session(Notification::Controller { .. })),
        "the control waited for the cache: {first:?}"
    );

    // Let the cache go: the clear is answered after all (SQLite gives up on a lock after
    // its busy timeout, so on a very slow machine the answer may be that error).
    index.execute_batch("COMMIT").unwrap();
    drop(index);
    let answer = next_matching(&mut node, "the clear's answer", clear_answer).await;
    if let NodeEvent::Status(s) = &answer {
        assert_eq!(s.cache.tracks, 0);
    } else {
        eprintln!("the clear gave up waiting for the index: {answer:?}");
    }
    quit(node).await;
}

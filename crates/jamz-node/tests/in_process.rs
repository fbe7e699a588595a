//! The node as a library, the way the Tauri shell will use it: an in-process
//! jamz-server, a `Node` driven through its API, and `json::serve` over in-memory
//! pipes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::{Command, Notification};
use jamz_node::{Node, NodeCommand, NodeEvent, Tier};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod support;

use support::{WAIT, ann_config as config, next_matching, quit, world};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_takes_control_and_reports_status() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let mut node = Node::start(config(&url, &group, dir.path())).await.unwrap();
    let ready = next_matching(&mut node, "ready", |e| {
        matches!(e, NodeEvent::Session(Notification::Ready { .. }))
    })
    .await;
    let NodeEvent::Session(Notification::Ready { user_id, .. }) = ready else {
        unreachable!()
    };
    assert_eq!(user_id, node.user_id());
    node.send(NodeCommand::Session(Command::TakeControl))
        .unwrap();
    next_matching(
        &mut node,
        "the DJ role",
        |e| matches!(e, NodeEvent::Session(Notification::Controller { user_id: Some(u) }) if *u == user_id),
    )
    .await;
    node.send(NodeCommand::Status).unwrap();
    let status = next_matching(&mut node, "a status", |e| matches!(e, NodeEvent::Status(_))).await;
    let NodeEvent::Status(s) = status else {
        unreachable!()
    };
    assert_eq!(s.tier, Tier::Socket);
    assert!(!s.playing);
    // DJ commands on an empty playlist are refused, and the node goes on.
    node.send(NodeCommand::Session(Command::Next)).unwrap();
    next_matching(
        &mut node,
        "the error for next",
        |e| matches!(e, NodeEvent::Session(Notification::Error { cmd: Some(c), .. }) if c == "next"),
    )
    .await;
    quit(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_in_json_lines_out_and_end_of_input_quits() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let node = Node::start(config(&url, &group, dir.path())).await.unwrap();
    let (mut cmd_w, cmd_r) = tokio::io::duplex(64 * 1024);
    let (ev_w, ev_r) = tokio::io::duplex(64 * 1024);
    let served = tokio::spawn(jamz_node::json::serve(node, cmd_r, ev_w));
    let mut lines = BufReader::new(ev_r).lines();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("events ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    loop {
        if next().await["event"] == "ready" {
            break;
        }
    }
    cmd_w
        .write_all(b"{\"cmd\":\"jump\"}\n\n   \n{\"cmd\":\"status\"}\n")
        .await
        .unwrap();
    let mut seen_error = false;
    loop {
        let v = next().await;
        if v["event"] == "error" {
            assert_eq!(v["cmd"], "jump");
            seen_error = true;
        }
        if v["event"] == "status" {
            assert!(seen_error, "the error comes first");
            assert_eq!(v["tier"], "socket");
            break;
        }
    }
    // A line over the limit is drained and answered, and the next one works.
    let mut big = vec![b'x'; jamz_node::control::MAX_COMMAND_LINE + 10];
    big.push(b'\n');
    cmd_w.write_all(&big).await.unwrap();
    cmd_w.write_all(b"{\"cmd\":\"status\"}\n").await.unwrap();
    let mut seen_too_long = false;
    loop {
        let v = next().await;
        if v["event"] == "error" {
            assert!(
                v["message"].as_str().unwrap().contains("over the limit"),
                "{v}"
            );
            seen_too_long = true;
        }
        if v["event"] == "status" {
            assert!(seen_too_long);
            break;
        }
    }
    drop(cmd_w);
    tokio::time::timeout(WAIT, served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

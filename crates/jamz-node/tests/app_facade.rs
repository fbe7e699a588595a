//! The facade the Tauri shell forwards to, driven as the shell drives it: a real
//! server in this process, the saved login in a temporary config directory, one
//! session whose events reach a sink, and the cache refused while it runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_node::Notification;
use jamz_node::app::{App, EventSink, LoginArgs, OpenArgs, SessionEnded};
use jamz_node::directories::Dirs;
use jamz_node::{ErrorCode, NodeCommand, NodeError, NodeEvent};
use tokio::sync::mpsc;

mod support;

use support::{WAIT, world};

/// What the sink saw, in order: `Ok(event)`, then `Err(end)`.
struct ChannelSink(mpsc::UnboundedSender<Result<NodeEvent, SessionEnded>>);

impl EventSink for ChannelSink {
    fn event(&mut self, event: NodeEvent) {
        let _ = self.0.send(Ok(event));
    }
    fn ended(&mut self, ended: SessionEnded) {
        let _ = self.0.send(Err(ended));
    }
}

/// The next event `pred` accepts; panics naming `what` after [`WAIT`] or at the end.
async fn next_event(
    rx: &mut mpsc::UnboundedReceiver<Result<NodeEvent, SessionEnded>>,
    what: &str,
    pred: impl Fn(&NodeEvent) -> bool,
) -> NodeEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await.expect("sink closed") {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(end) => panic!("ended before {what}: {end:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} in time"))
}

fn code(e: NodeError) -> ErrorCode {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_at_a_time_and_the_cache_only_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _, group) = world(dir.path()).await;
    let app = App::new(Dirs {
        config: dir.path().join("config"),
        cache: dir.path().join("cache"),
    })
    .unwrap();

    assert_eq!(app.current_account().unwrap(), None);
    let args = OpenArgs {
        group_id: group.clone(),
        output: Some("null".into()),
        ..OpenArgs::default()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let e = app.open_session(args.clone(), ChannelSink(tx)).await;
    assert_eq!(code(e.unwrap_err()), ErrorCode::NotLoggedIn);

    let bad = LoginArgs {
        server: url.clone(),
        username: "ann".into(),
        password: "wrong".into(),
    };
    assert_eq!(
        code(app.login(bad).await.unwrap_err()),
        ErrorCode::Unauthorized
    );
    let login = LoginArgs {
        server: format!(" {url} "),
        username: "ann".into(),
        password: "pw".into(),
    };
    let account = app.login(login).await.unwrap();
    assert_eq!(account.server, url, "the server is saved trimmed");
    assert_eq!(app.current_account().unwrap(), Some(account.clone()));
    let groups = app.groups().await.unwrap();
    assert!(groups.iter().any(|g| g.id == group), "{groups:?}");

    let empty = app.cache_info().await.unwrap();
    assert_eq!((empty.tracks, empty.bytes), (0, 0));
    assert_eq!(
        code(app.command(NodeCommand::Status).await.unwrap_err()),
        ErrorCode::NoSession
    );

    let (tx, mut rx) = mpsc::unbounded_channel();
    let view = app
        .open_session(args.clone(), ChannelSink(tx))
        .await
        .unwrap();
    assert_eq!(view.user_id, account.user_id);
    assert_eq!(view.group_id, group);
    let ready = next_event(&mut rx, "ready", |e| {
        matches!(e, NodeEvent::Session(Notification::Ready { .. }))
    })
    .await;
    let NodeEvent::Session(Notification::Ready { user_id, .. }) = ready else {
        unreachable!()
    };
    assert_eq!(user_id, account.user_id);
    let info = app.info("1.2.3".into(), false).await;
    assert_eq!(info.session_group.as_deref(), Some(group.as_str()));

    // The session holds the lock: no second session, no cache administration.
    let (tx2, _rx2) = mpsc::unbounded_channel();
    let e = app.open_session(args, ChannelSink(tx2)).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::SessionOpen);
    assert_eq!(
        code(app.cache_info().await.unwrap_err()),
        ErrorCode::SessionOpen
    );
    assert_eq!(
        code(app.cache_clear().await.unwrap_err()),
        ErrorCode::SessionOpen
    );
    let e = app
        .command(NodeCommand::Volume { level: 2.0 })
        .await
        .unwrap_err();
    assert_eq!(code(e), ErrorCode::Invalid);

    // Commands reach the node, and its answers the sink.
    app.command(NodeCommand::Status).await.unwrap();
    let status = next_event(&mut rx, "a status", |e| matches!(e, NodeEvent::Status(_))).await;
    let NodeEvent::Status(status) = status else {
        unreachable!()
    };
    assert_eq!(status.output, "null");
    // The session reads the saved login itself, so it says where the token is kept.
    let account = app.current_account().unwrap().expect("logged in");
    assert_eq!(status.token_store, Some(account.token_store));

    app.leave_session().await.unwrap();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            if let Err(end) = rx.recv().await.expect("sink closed before the end") {
                return end;
            }
        }
    })
    .await
    .expect("no end in time");
    assert_eq!(end, SessionEnded { reason: None });
    assert_eq!(app.info("1.2.3".into(), false).await.session_group, None);

    // Free again at once: the cache is the face's.
    let cleared = app.cache_clear().await.unwrap();
    assert_eq!(cleared.tracks, 0);
    assert_eq!(cleared.dir, dir.path().join("cache").to_string_lossy());
    let out = app.logout().await.unwrap();
    assert!(out.revoked_on_server, "{out:?}");
    assert_eq!(app.current_account().unwrap(), None);
}

/// The web view's limits, at the facade the shell forwards to: a file enters only
/// if the picker returned it in this run, and `wav:` outputs are refused.
#[tokio::test]
async fn the_web_view_adds_only_picked_files_and_writes_no_wav() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(Dirs {
        config: dir.path().join("config"),
        cache: dir.path().join("cache"),
    })
    .unwrap();
    let song = dir.path().join("song.wav");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&song, b"RIFF").unwrap();
    std::fs::write(&secret, b"key").unwrap();
    let add = |path: &std::path::Path| NodeCommand::Add {
        path: Some(path.to_path_buf()),
        track: None,
        youtube: None,
        duration: None,
    };

    // Refused before anything else is looked at (no session is open).
    let e = app.command(add(&song)).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::Invalid, "a file never picked");
    let granted = app.grant_picked_files([song.clone()]);
    assert_eq!(granted, vec![song.canonicalize().unwrap()]);
    // The picked file passes the check and reaches the session lookup.
    let e = app.command(add(&song)).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::NoSession, "a picked file");
    let e = app.command(add(&secret)).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::Invalid, "a file beside a picked one");

    let wav = dir.path().join("out.wav");
    let e = app
        .command(NodeCommand::Output {
            spec: format!("wav:{}", wav.display()),
        })
        .await
        .unwrap_err();
    assert_eq!(code(e), ErrorCode::Invalid);
    let args = OpenArgs {
        group_id: "g".into(),
        output: Some(format!("wav:{}", wav.display())),
        ..OpenArgs::default()
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let e = app.open_session(args, ChannelSink(tx)).await.unwrap_err();
    assert_eq!(code(e), ErrorCode::Invalid, "wav: when opening a session");
    assert!(!wav.exists());
}

/// "Copy diagnostics": the version, the state and the end of the log file.
#[tokio::test]
async fn diagnostics_name_the_app_and_end_with_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let app = App::new(Dirs {
        config: dir.path().join("config"),
        cache: dir.path().join("cache"),
    })
    .unwrap();
    let log = dir.path().join("trafficjamz.2026-01-01.log");
    std::fs::write(&log, "INFO first\nWARN the last line\n").unwrap();
    let text = app
        .diagnostics(jamz_node::app::ShellFacts {
            version: "9.8.7".into(),
            mobile: false,
            log_file: Some(log.clone()),
        })
        .await;
    assert!(text.starts_with("TrafficJamz: 9.8.7\n"), "{text}");
    assert!(text.contains("account: not logged in\n"), "{text}");
    assert!(text.contains("session: none open\n"), "{text}");
    assert!(
        text.contains(&format!("log file: {}\n", log.display())),
        "{text}"
    );
    assert!(text.ends_with("WARN the last line\n"), "{text}");
}

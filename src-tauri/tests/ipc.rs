//! Every command through Tauri's IPC, called by the names and with the arguments
//! `ui/src/backend/index.ts` uses, on Tauri's mock runtime (no window system here),
//! forwarding to a real `jamz_node::app::App`: its hosted session is a real
//! jamz-server on a loopback port, its session a real node. What each command
//! answers is checked against what the facade did (the account it saved, the group
//! on the server, the node's events), so a command that forwarded to the wrong
//! method, dropped an argument or renamed one the UI sends fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use jamz_node::app::App;
use jamz_node::directories::Dirs;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context};
use tauri::webview::InvokeRequest;
use tauri::{Listener, WebviewWindow, WebviewWindowBuilder};

use trafficjamz_lib::{LaunchLink, LogDir, NODE_EVENT, SESSION_ENDED_EVENT, handler};

/// Bound on each wait for an event.
const WAIT: Duration = Duration::from_secs(30);

const LINK: &str = "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=g1";

struct Shell {
    app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
}

impl Shell {
    fn new(dir: &std::path::Path) -> Shell {
        let facade = App::new(Dirs {
            config: dir.join("config"),
            cache: dir.join("cache"),
        })
        .unwrap();
        let app = mock_builder()
            .invoke_handler(handler())
            .manage(facade)
            .manage(LogDir(Some(dir.join("logs"))))
            .manage(LaunchLink::from_args(["trafficjamz".into(), LINK.into()]))
            .build(mock_context(tauri::test::noop_assets()))
            .unwrap();
        let window = WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        Shell { app, window }
    }

    /// What the UI's `invoke(cmd, args)` gets: the value, or the rejection.
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, request).map(|b| b.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.invoke(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    /// The `code` of a refused command.
    fn refused(&self, cmd: &str, args: Value) -> String {
        match self.invoke(cmd, args) {
            Ok(v) => panic!("{cmd} should have been refused, answered {v}"),
            Err(e) => {
                assert!(e["message"].is_string(), "{cmd}: no message in {e}");
                e["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{cmd}: no code in {e}"))
                    .to_owned()
            }
        }
    }

    /// The events named `event` as they are emitted.
    fn listen(&self, event: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.app.listen_any(event, move |e| {
            let _ = tx.send(serde_json::from_str(e.payload()).unwrap_or(Value::Null));
        });
        rx
    }
}

/// The next payload `pred` accepts; panics naming `what` after [`WAIT`].
fn next(rx: &mpsc::Receiver<Value>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if pred(&v) => return v,
            Ok(_) => {}
            Err(e) => panic!("no {what}: {e}"),
        }
    }
}

#[test]
fn every_command_forwards_to_the_facade_through_the_ipc() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/trafficjamz.2026-12-02.log"),
        "the log's first line\nthe log's last line\n",
    )
    .unwrap();
    let shell = Shell::new(dir.path());

    // Before anything: no account, no session, nothing hosted.
    let info = shell.ok("app_info", json!({}));
    assert_eq!(
        info,
        json!({"version": "0.1.0", "mobile": false, "hosting": null, "sessionGroup": null})
    );
    assert_eq!(shell.ok("current_account", json!({})), Value::Null);
    assert_eq!(
        shell.refused("node_command", json!({"command": {"cmd": "status"}})),
        "no-session"
    );
    assert_eq!(shell.ok("first_paint", json!({})), Value::Null);
    // The launch link is handed over once.
    assert_eq!(shell.ok("launch_link", json!({})), json!(LINK));
    assert_eq!(shell.ok("launch_link", json!({})), Value::Null);

    // Hosting runs a real server; app_info reports it.
    let hosted = shell.ok("host_session", json!({"port": 0}));
    let url = hosted["url"].as_str().expect("hosted url").to_owned();
    assert_ne!(hosted["port"], 0, "{hosted}");
    assert!(url.ends_with(&format!(":{}", hosted["port"])), "{hosted}");
    assert_eq!(shell.ok("app_info", json!({}))["hosting"], hosted);
    assert_eq!(
        shell.refused("host_session", json!({"port": 0})),
        "already-hosting"
    );

    // Accounts on that server.
    let account = shell.ok(
        "register",
        json!({"args": {"server": url, "username": "ann", "email": "ann@example.test", "password": "pw-one-two"}}),
    );
    assert_eq!(account["username"], "ann", "{account}");
    assert_eq!(account["server"], json!(url), "{account}");
    assert_eq!(shell.ok("current_account", json!({})), account);
    assert_eq!(
        shell.refused(
            "login",
            json!({"args": {"server": url, "username": "ann", "password": "wrong"}})
        ),
        "unauthorized"
    );
    let again = shell.ok(
        "login",
        json!({"args": {"server": url, "username": "ann", "password": "pw-one-two"}}),
    );
    assert_eq!(again["userId"], account["userId"], "{again}");

    // Groups: what the commands did is on the server.
    let bo = tauri::async_runtime::block_on(async {
        let rest = jamz_node::RestClient::new(&url).unwrap();
        rest.register("bo", "bo@example.test", "pw-bo-bo-bo")
            .await
            .unwrap()
    });
    let group = shell.ok(
        "create_group",
        json!({"name": "road trip", "description": "to the lake"}),
    );
    let group_id = group["id"].as_str().expect("group id").to_owned();
    assert_eq!(group["name"], "road trip", "{group}");
    let with_bo = shell.ok("add_member", json!({"groupId": group_id, "username": "bo"}));
    let members = with_bo["members"].as_array().expect("members");
    assert!(members.contains(&json!(bo.user.id)), "{with_bo}");
    let groups = shell.ok("list_groups", json!({}));
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == json!(group_id) && g["description"] == "to the lake"),
        "{groups}"
    );

    // The cache and the device, without a session.
    let cache = shell.ok("cache_info", json!({}));
    assert_eq!((&cache["tracks"], &cache["bytes"]), (&json!(0), &json!(0)));
    assert_eq!(
        cache["dir"],
        json!(dir.path().join("cache").to_string_lossy())
    );
    assert_eq!(shell.ok("cache_clear", json!({}))["tracks"], 0);
    assert_eq!(
        shell.ok("cover_art", json!({"sha256": "00".repeat(32)})),
        Value::Null
    );
    let sources = shell.ok("location_sources", json!({}));
    assert_eq!(sources[0]["spec"], "manual", "{sources}");
    // The desktop's location service is offered on a desktop, whether or not it answers.
    assert_eq!(sources[1]["spec"], "desktop", "{sources}");
    let outputs = shell.ok("list_outputs", json!({}));
    assert_eq!(outputs[0]["id"], "default", "{outputs}");

    // A session: its events come out as `node-event`, then `session-ended`.
    let events = shell.listen(NODE_EVENT);
    let ended = shell.listen(SESSION_ENDED_EVENT);
    let session = shell.ok(
        "open_session",
        json!({"args": {"groupId": group_id, "output": "null"}, "onProgress": "__CHANNEL__:1"}),
    );
    assert_eq!(session["groupId"], json!(group_id), "{session}");
    assert_eq!(session["userId"], account["userId"], "{session}");
    next(&events, "ready", |e| {
        e["event"] == "ready" && e["userId"] == account["userId"]
    });
    assert_eq!(
        shell.ok("app_info", json!({}))["sessionGroup"],
        json!(group_id)
    );
    assert_eq!(
        shell.refused(
            "open_session",
            json!({"args": {"groupId": group_id, "output": "null"}, "onProgress": "__CHANNEL__:2"})
        ),
        "session-open"
    );
    assert_eq!(shell.refused("cache_info", json!({})), "session-open");
    // Commands reach the node; its answers come back as events.
    assert_eq!(
        shell.ok(
            "node_command",
            json!({"command": {"cmd": "volume", "level": 0.25}})
        ),
        Value::Null
    );
    assert_eq!(
        shell.ok("node_command", json!({"command": {"cmd": "status"}})),
        Value::Null
    );
    let status = next(&events, "a status", |e| e["event"] == "status");
    assert_eq!(status["output"], "null", "{status}");
    assert_eq!(
        shell.refused(
            "node_command",
            json!({"command": {"cmd": "volume", "level": 2.0}})
        ),
        "invalid"
    );
    // The web view may not write WAV files (the facade's rule, reached through the IPC).
    assert_eq!(
        shell.refused(
            "node_command",
            json!({"command": {"cmd": "output", "spec": "wav:/tmp/x.wav"}})
        ),
        "invalid"
    );
    let text = shell.ok("diagnostics", json!({}));
    let text = text.as_str().expect("diagnostics text");
    assert!(text.contains("TrafficJamz: 0.1.0\n"), "{text}");
    assert!(text.contains(&format!("session: {group_id}\n")), "{text}");
    assert!(text.ends_with("the log's last line\n"), "{text}");
    assert_eq!(shell.ok("leave_session", json!({})), Value::Null);
    assert_eq!(
        next(&ended, "session-ended", |_| true),
        json!({"reason": null})
    );
    assert_eq!(shell.ok("app_info", json!({}))["sessionGroup"], Value::Null);

    // The account again: password, leaving the group, logout.
    assert_eq!(
        shell.refused(
            "change_password",
            json!({"args": {"currentPassword": "wrong", "newPassword": "pw-three-four"}})
        ),
        "forbidden"
    );
    let changed = shell.ok(
        "change_password",
        json!({"args": {"currentPassword": "pw-one-two", "newPassword": "pw-three-four"}}),
    );
    assert_eq!(changed["userId"], account["userId"], "{changed}");
    assert_eq!(
        shell.ok("leave_group", json!({"groupId": group_id})),
        Value::Null
    );
    let groups = shell.ok("list_groups", json!({}));
    assert!(
        !groups.to_string().contains(&group_id),
        "still in the group: {groups}"
    );
    let out = shell.ok("logout", json!({}));
    assert_eq!(out["revokedOnServer"], true, "{out}");
    assert_eq!(shell.ok("current_account", json!({})), Value::Null);
    let back = shell.ok(
        "login",
        json!({"args": {"server": url, "username": "ann", "password": "pw-three-four"}}),
    );
    assert_eq!(back["userId"], account["userId"], "{back}");

    assert_eq!(shell.ok("stop_hosting", json!({})), Value::Null);
    assert_eq!(shell.ok("app_info", json!({}))["hosting"], Value::Null);
}

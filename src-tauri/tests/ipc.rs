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
        self.refusal(cmd, args).0
    }

    /// The `code` and `message` of a refused command.
    fn refusal(&self, cmd: &str, args: Value) -> (String, String) {
        match self.invoke(cmd, args) {
            Ok(v) => panic!("{cmd} should have been refused, answered {v}"),
            Err(e) => {
                let message = e["message"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{cmd}: no message in {e}"))
                    .to_owned();
                let code = e["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{cmd}: no code in {e}"))
                    .to_owned();
                (code, message)
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
    // Calibration, outside a session: both arguments reach the facade (a real measurement
    // needs a microphone; its refusals name what they were given).
    let (code, message) = shell.refusal(
        "calibrate_output",
        json!({"output": "null", "latencyOffsetMs": 0.0}),
    );
    assert_eq!(code, "audio", "{message}");
    assert!(
        message.contains("output null plays to no speaker"),
        "{message}"
    );
    let (code, message) = shell.refusal(
        "calibrate_output",
        json!({"output": "default", "latencyOffsetMs": 2345.5}),
    );
    assert_eq!(code, "invalid", "{message}");
    assert!(message.contains("got 2345.5"), "{message}");

    // The map's tile server: set, read back, unset; a template without its fields refused.
    let tiles = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png";
    let set = shell.ok("set_map_tiles", json!({"template": tiles}));
    assert_eq!(set["source"], tiles, "{set}");
    assert_eq!(
        (&set["tiles"], &set["fetched"]),
        (&json!(0), &json!(0)),
        "{set}"
    );
    assert!(set["maxBytes"].as_u64().is_some_and(|b| b > 0), "{set}");
    assert_eq!(shell.ok("map_tiles_info", json!({})), set);
    assert_eq!(
        shell.refused(
            "set_map_tiles",
            json!({"template": "http://127.0.0.1:9/tiles.png"})
        ),
        "invalid"
    );
    assert_eq!(shell.ok("map_tiles_info", json!({}))["source"], tiles);
    let unset = shell.ok("set_map_tiles", json!({"template": null}));
    assert_eq!(unset["source"], Value::Null, "{unset}");
    assert_eq!(shell.ok("map_tiles_info", json!({}))["source"], Value::Null);

    // Join links: the launch link read, a link made to the hosted server's group read back.
    let read = shell.ok("read_join_link", json!({"link": LINK}));
    assert_eq!(read["link"], LINK, "{read}");
    assert_eq!(read["server"], "http://10.42.0.1:5050", "{read}");
    assert_eq!(
        (&read["group"], &read["name"]),
        (&json!("g1"), &Value::Null)
    );
    assert!(
        read["qrSvg"].as_str().is_some_and(|s| s.contains("<svg")),
        "{read}"
    );
    assert_eq!(
        shell.refused("read_join_link", json!({"link": url})),
        "invalid"
    );
    let made = shell.ok(
        "make_join_link",
        json!({"server": url, "group": group_id, "name": "Ann's car"}),
    );
    assert_eq!(made["server"], json!(url), "{made}");
    assert_eq!(made["group"], json!(group_id), "{made}");
    assert_eq!(made["name"], "Ann's car", "{made}");
    assert_eq!(
        shell.ok("read_join_link", json!({"link": made["link"]})),
        made
    );
    let bare = shell.ok(
        "make_join_link",
        json!({"server": url, "group": null, "name": null}),
    );
    assert_eq!(
        (&bare["group"], &bare["name"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(
        shell.refused(
            "make_join_link",
            json!({"server": "10.42.0.1:5050", "group": group_id, "name": null})
        ),
        "invalid"
    );

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
    // In a session the node calibrates its own output: refused here.
    let (code, message) = shell.refusal(
        "calibrate_output",
        json!({"output": "default", "latencyOffsetMs": 0.0}),
    );
    assert_eq!(code, "audio", "{message}");
    assert!(message.contains("a session is open"), "{message}");
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

/// The pickers' stand-in (`JAMZ_TEST_PICKED_FILES` in src-tauri's commands.rs): a file
/// listing paths, read at each pick. It is read from this process's environment, which a
/// test may not change (no `unsafe`), so [`the_pickers_grant_what_they_returned`] runs
/// itself again in a child process with the variable set.
const PICKED_FILES_ENV: &str = "JAMZ_TEST_PICKED_FILES";

/// A second of a 440 Hz tone, 16-bit mono at 8 kHz.
fn write_tone(path: &std::path::Path) {
    let rate: u32 = 8000;
    let samples: Vec<i16> = (0..rate)
        .map(|i| {
            let t = f64::from(i) / f64::from(rate);
            ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
        })
        .collect();
    let data_len = u32::try_from(samples.len() * 2).unwrap();
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).unwrap();
}

/// A recorded drive: five points 111 m apart northward, ten seconds apart.
fn write_drive(path: &std::path::Path) {
    let mut gpx = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"ipc test\"><trk><trkseg>\n",
    );
    for i in 0..5 {
        gpx.push_str(&format!(
            "<trkpt lat=\"{:.4}\" lon=\"11.5750\"><time>2026-12-01T21:11:{:02}Z</time></trkpt>\n",
            48.137 + 0.001 * f64::from(i),
            5 + 10 * i
        ));
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    std::fs::write(path, gpx).unwrap();
}

/// What the pickers return is what the web view may then use, and nothing else: an
/// `add` of a file the audio picker did not return is refused, one it returned is added;
/// the replay picker returns one drive (or none), and a session replays it while a
/// drive it did not return is refused.
#[test]
fn the_pickers_grant_what_they_returned() {
    let Some(list) = std::env::var_os(PICKED_FILES_ENV) else {
        let name = "the_pickers_grant_what_they_returned";
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(PICKED_FILES_ENV, dir.path().join("picked.txt"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stdout}\n{stderr}");
        assert!(out.status.success(), "the child run failed: {}", out.status);
        // It ran this test (a filter that matched nothing would pass too).
        assert!(
            stdout.contains(&format!("test {name} ... ok")) && stdout.contains("1 passed"),
            "the child run did not run {name}"
        );
        return;
    };
    let list = std::path::PathBuf::from(list);
    let pick = |paths: &[&std::path::Path]| {
        let text: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
        std::fs::write(&list, text).unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("sub")).unwrap();
    let tone = files.join("tone.wav");
    let other_tone = files.join("other.wav");
    let drive = files.join("drive.gpx");
    let other_drive = files.join("other.gpx");
    write_tone(&tone);
    write_tone(&other_tone);
    write_drive(&drive);
    write_drive(&other_drive);
    let canonical = |p: &std::path::Path| json!(p.canonicalize().unwrap().to_string_lossy());

    let shell = Shell::new(dir.path());
    let url = shell.ok("host_session", json!({"port": 0}))["url"]
        .as_str()
        .expect("hosted url")
        .to_owned();
    let account = shell.ok(
        "register",
        json!({"args": {"server": url, "username": "ann", "email": "ann@example.test", "password": "pw-one-two"}}),
    );
    let group_id = shell.ok(
        "create_group",
        json!({"name": "road trip", "description": null}),
    )["id"]
        .as_str()
        .expect("group id")
        .to_owned();
    let user = account["userId"].clone();

    // Audio files. Nothing picked yet: an existing file is refused.
    let events = shell.listen(NODE_EVENT);
    shell.ok(
        "open_session",
        json!({"args": {"groupId": group_id, "output": "null"}, "onProgress": "__CHANNEL__:1"}),
    );
    next(&events, "ready", |e| e["event"] == "ready");
    let add = |path: &Value| json!({"command": {"cmd": "add", "path": path}});
    let (code, message) = shell.refusal("node_command", add(&json!(tone)));
    assert_eq!(code, "invalid", "{message}");
    assert!(message.contains("only files chosen"), "{message}");
    // The picker returns the tone (spelled with `..`) and a file that is not there: the
    // tone comes back, as its canonical path, the missing file does not.
    let spelled = files.join("sub/../tone.wav");
    pick(&[&spelled, &files.join("gone.wav")]);
    let picked = shell.ok("pick_audio_files", json!({}));
    assert_eq!(picked, json!([canonical(&tone)]));
    shell.ok("node_command", add(&picked[0]));
    let playlist = next(&events, "the tone in the playlist", |e| {
        e["event"] == "playlist" && e["playlist"].as_array().is_some_and(|p| !p.is_empty())
    });
    assert_eq!(playlist["playlist"][0]["title"], "tone", "{playlist}");
    // Picking the tone granted the tone only.
    let (code, message) = shell.refusal("node_command", add(&json!(other_tone)));
    assert_eq!(code, "invalid", "{message}");
    shell.ok("leave_session", json!({}));

    // A recorded drive: the replay picker returns one file (the first), or none.
    pick(&[&drive, &other_drive]);
    assert_eq!(shell.ok("pick_replay_file", json!({})), canonical(&drive));
    pick(&[]);
    assert_eq!(shell.ok("pick_replay_file", json!({})), Value::Null);
    let open = |location: &std::path::Path, channel: u32| {
        json!({"args": {
            "groupId": group_id,
            "output": "null",
            "location": format!("replay:{}@max", location.display()),
        }, "onProgress": format!("__CHANNEL__:{channel}")})
    };
    let (code, message) = shell.refusal("open_session", open(&other_drive, 2));
    assert_eq!(code, "invalid", "{message}");
    assert!(message.contains("only files chosen"), "{message}");
    shell.ok("open_session", open(&drive, 3));
    let fix = next(&events, "a fix of the picked drive", |e| {
        e["event"] == "location" && e["userId"] == user
    });
    assert!(
        (fix["latitude"].as_f64().unwrap() - 48.137).abs() < 0.0045,
        "{fix}"
    );
    shell.ok("leave_session", json!({}));
    shell.ok("stop_hosting", json!({}));
}

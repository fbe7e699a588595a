//! Interop with a real browser: headless Chromium (Debian's `chromium`, driven by
//! playwright-core through `tests/js/browser-peer.mjs`) and a native `Mesh` on a loopback
//! UDP socket open `music-control` and exchange a message each way, with Chromium's mDNS
//! hiding of host addresses on (its default: `.local` candidates) and off, with either side
//! making the offer. Signaling is carried by this test as JSON lines over the script's stdio,
//! in docs/protocol.md's `webrtc-signal` shape.
//!
//! Without chromium (or playwright-core) the test prints why and passes, unless
//! `JAMZ_REQUIRE_CHROMIUM` is set: then it fails with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use common::{Cmd, Out, SESSION, spawn_node};
use jamz_mesh::MeshEvent;
use jamz_proto::events::WebrtcSignal;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// One Chromium at a time: the machine is small and each case launches a browser.
static BROWSER: Mutex<()> = Mutex::new(());

const BROWSER_USER: i64 = 20;
const CASE_TIMEOUT: Duration = Duration::from_secs(90);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser test cannot run here, if it cannot.
fn missing_browser() -> Option<String> {
    let chromium = chromium_path();
    if !chromium.exists() {
        return Some(format!(
            "{} not found (apt-get install chromium, see scripts/apt/mesh.txt)",
            chromium.display()
        ));
    }
    if !workspace_root()
        .join("node_modules/playwright-core")
        .exists()
    {
        return Some("node_modules/playwright-core not found (npm install)".into());
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node not found".into());
    }
    None
}

/// Returns false (after printing why) when the test must be skipped.
fn browser_available() -> bool {
    match missing_browser() {
        None => true,
        Some(reason) if std::env::var_os("JAMZ_REQUIRE_CHROMIUM").is_some() => {
            panic!("JAMZ_REQUIRE_CHROMIUM is set but the browser test cannot run: {reason}")
        }
        Some(reason) => {
            println!("SKIPPED browser interop: {reason}");
            false
        }
    }
}

#[derive(Debug, Default)]
struct CaseReport {
    browser_candidates: Vec<String>,
    native_got: Option<String>,
    browser_got: Option<String>,
    browser_channel: Option<Value>,
}

async fn run_case(native_user: i64, hide_with_mdns: bool) -> CaseReport {
    let (tx, mut outs) = tokio::sync::mpsc::unbounded_channel();
    let node = spawn_node(native_user, tx).await;
    // the session's participant list names the browser's user: offer if ours is lower
    node.send(Cmd::AddPeer(BROWSER_USER));
    let native_offers = native_user < BROWSER_USER;
    let mut cmd = Command::new("node");
    cmd.current_dir(workspace_root())
        .arg("tests/js/browser-peer.mjs")
        .args(["--me", &BROWSER_USER.to_string()])
        .args(["--peer", &native_user.to_string()])
        .args(["--session", SESSION])
        .env("CHROMIUM_PATH", chromium_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if !native_offers {
        cmd.arg("--offer");
    }
    if !hide_with_mdns {
        cmd.arg("--no-mdns");
    }
    let mut child = cmd.spawn().expect("spawn node tests/js/browser-peer.mjs");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let mut report = CaseReport::default();
    let mut ready = false;
    let mut queued: Vec<String> = Vec::new();

    let result = tokio::time::timeout(CASE_TIMEOUT, async {
        loop {
            if report.native_got.is_some() && report.browser_got.is_some() {
                return;
            }
            tokio::select! {
                out = outs.recv() => {
                    match out.expect("native node stopped").1 {
                        Out::Signal(s) => {
                            queued.push(json!({ "signal": s }).to_string());
                        }
                        Out::Event(MeshEvent::PeerConnected(u)) => {
                            assert_eq!(u, BROWSER_USER);
                            node.send(Cmd::Send(BROWSER_USER, "hello from native".into()));
                        }
                        Out::Event(MeshEvent::Message { from, text }) => {
                            assert_eq!(from, BROWSER_USER);
                            report.native_got = Some(text);
                        }
                        Out::Event(MeshEvent::PeerClosed(u)) => panic!("link to {u} closed"),
                        Out::Event(e) => println!("native event: {e:?}"),
                        Out::Error(e) => println!("native error (kept going): {e}"),
                        Out::Path(..) => {}
                    }
                }
                line = lines.next_line() => {
                    let line = line.expect("read browser stdout").expect("browser script ended");
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("browser line {line:?}: {e}"));
                    if let Some(err) = v.get("error") {
                        panic!("browser: {err}");
                    }
                    if let Some(s) = v.get("signal") {
                        let signal: WebrtcSignal = serde_json::from_value(s.clone())
                            .unwrap_or_else(|e| panic!("browser signal {s}: {e}"));
                        if let Some(c) = &signal.data.candidate {
                            report.browser_candidates.push(c.candidate.clone());
                        }
                        node.send(Cmd::Signal(signal));
                    }
                    match v.get("event").and_then(Value::as_str) {
                        Some("ready") => ready = true,
                        Some("open") => {
                            report.browser_channel = Some(v.clone());
                            queued.push(json!({ "send": "hello from browser" }).to_string());
                        }
                        Some("message") => {
                            report.browser_got =
                                v.get("text").and_then(Value::as_str).map(str::to_owned);
                        }
                        _ => {}
                    }
                }
            }
            if ready {
                for line in queued.drain(..) {
                    stdin
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .unwrap();
                }
            }
        }
    })
    .await;
    let _ = stdin.write_all(b"{\"quit\":true}\n").await;
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(
        result.is_ok(),
        "no exchange within {CASE_TIMEOUT:?} (native offers: {native_offers}, mDNS hiding: \
         {hide_with_mdns}): {report:?}"
    );
    report
}

fn check(native_user: i64, hide_with_mdns: bool) {
    if !browser_available() {
        return;
    }
    let _one_browser = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(run_case(native_user, hide_with_mdns));
    println!(
        "native offers: {}, mDNS hiding: {hide_with_mdns}: {report:#?}",
        native_user < BROWSER_USER
    );
    assert_eq!(report.native_got.as_deref(), Some("hello from browser"));
    assert_eq!(report.browser_got.as_deref(), Some("hello from native"));
    let channel = report
        .browser_channel
        .expect("the browser saw the channel open");
    assert_eq!(channel["label"], "music-control");
    assert_eq!(channel["ordered"], true);
    assert_eq!(channel["maxRetransmits"], 3);
    let hidden = report
        .browser_candidates
        .iter()
        .any(|c| c.contains(".local"));
    assert_eq!(
        hidden, hide_with_mdns,
        "the browser's candidates do not match the mode: {:?}",
        report.browser_candidates
    );
}

#[test]
fn chromium_mdns_hidden_native_offers() {
    check(10, true);
}

#[test]
fn chromium_mdns_hidden_browser_offers() {
    check(30, true);
}

#[test]
fn chromium_raw_addresses_native_offers() {
    check(10, false);
}

#[test]
fn chromium_raw_addresses_browser_offers() {
    check(30, false);
}

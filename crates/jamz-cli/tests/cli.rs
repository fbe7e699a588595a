//! The `jamz` binary's face: its subcommands, and clear failures without a login.
//! (Also makes `cargo test --workspace` build `target/debug/jamz` for the
//! end-to-end tests in `tests/`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn jamz(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jamz"))
        .args(args)
        .env("JAMZ_CONFIG_DIR", config)
        .env_remove("JAMZ_SERVER")
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = jamz(&["--help"], dir.path());
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "server", "register", "login", "group", "upload", "playlist", "cache", "node",
    ] {
        assert!(help.contains(sub), "{sub} missing from:\n{help}");
    }
}

#[test]
fn commands_that_need_a_login_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = jamz(&["group", "list"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jamz login"), "{err}");
    let out = jamz(&["node", "--group", "g", "--json"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no --server and no saved login"), "{err}");
}

/// A bad `--output` is refused by name before anything connects (the server given here
/// listens nowhere: reaching it would be a different error).
#[test]
fn a_bad_output_spec_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "node",
        "--server",
        "http://127.0.0.1:9",
        "--group",
        "g",
        "--output",
        "speaker",
    ];
    let out = jamz(&args, dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--output"), "{err}");
    assert!(err.contains("speaker"), "{err}");
}

/// `jamz outputs` lists the system default first, as the spec to pass to `--output`;
/// `--json` gives the same list as one array.
#[test]
fn outputs_lists_the_default_first_in_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let out = jamz(&["outputs", "--json"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], "default", "{list:?}");
    assert_eq!(list[0]["is_default"], true, "{list:?}");
    for d in &list[1..] {
        let id = d["id"].as_str().unwrap();
        assert!(id.starts_with("device:"), "{id} is no --output spec");
        assert!(d["name"].as_str().is_some_and(|n| !n.is_empty()), "{d}");
    }
    let out = jamz(&["outputs"], dir.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    let json_ids: Vec<&str> = list.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, json_ids, "{text}");
    // With the test PulseAudio (scripts/env.d/pulseaudio.sh), ALSA's devices reach it.
    if std::env::var_os("JAMZ_PULSE_SINK").is_some() {
        assert!(list.len() > 1, "no real device listed: {list:?}");
    }
}

#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // A cache directory that is a file: the cache cannot be created.
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").unwrap();
    let out = jamz(
        &["cache", "--cache-dir", file.to_str().unwrap(), "stats"],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("(os error").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A server that does not answer: the refused connection once.
    let out = jamz(
        &[
            "node",
            "--server",
            "http://127.0.0.1:1",
            "--username",
            "u",
            "--password",
            "p",
            "--group",
            "g",
            "--output",
            "null",
            "--no-stdin",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert_eq!(err.matches("error sending request").count(), 1, "{err}");
}

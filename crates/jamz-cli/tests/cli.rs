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
    let out = jamz(&["node", "--group", "g", "--output", "speaker"], dir.path());
    assert!(!out.status.success());
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

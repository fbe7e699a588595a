//! The systemd units (`deploy/systemd/`: the speaker node, system and user variants, and the
//! server) pass `systemd-analyze verify` with no warning. The units name the installed
//! binaries (`/usr/bin/jamz`, `/usr/bin/jamz-server`); the test verifies them naming this
//! build's. Without
//! systemd-analyze the test says why and passes, unless `JAMZ_REQUIRE_SYSTEMD` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use jamz_e2e::workspace_bin;

fn verify(unit: &str, user: bool, exec: &str, bin: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(unit)).unwrap();
    assert!(text.contains(&format!("ExecStart={exec}")), "{unit}");
    let built = workspace_bin(bin);
    let dir = tempfile::tempdir().unwrap();
    let name = Path::new(unit).file_name().unwrap();
    let path = dir.path().join(name);
    std::fs::write(
        &path,
        text.replace(
            &format!("/usr/bin/{bin} "),
            &format!("{} ", built.display()),
        ),
    )
    .unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        // The user manager's checks need a runtime directory, as a session has.
        cmd.arg("--user").env("XDG_RUNTIME_DIR", dir.path());
    }
    let out = cmd.arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{unit}: {}\n{stderr}", out.status);
    // Unknown keys and bad values are only warnings: none is allowed either.
    assert!(stderr.trim().is_empty(), "{unit}: {stderr}");
}

fn have_systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        let why = "systemd-analyze is not installed (scripts/apt/deploy.txt)";
        if std::env::var_os("JAMZ_REQUIRE_SYSTEMD").is_some() {
            panic!("JAMZ_REQUIRE_SYSTEMD is set but {why}");
        }
        eprintln!("skipped: {why}");
    }
    found
}

#[test]
fn the_system_unit_verifies() {
    if have_systemd_analyze() {
        verify(
            "deploy/systemd/jamz-node.service",
            false,
            "/usr/bin/jamz node --no-stdin",
            "jamz",
        );
    }
}

#[test]
fn the_user_unit_verifies() {
    if have_systemd_analyze() {
        verify(
            "deploy/systemd/user/jamz-node.service",
            true,
            "/usr/bin/jamz node --no-stdin",
            "jamz",
        );
    }
}

#[test]
fn the_server_unit_verifies() {
    if have_systemd_analyze() {
        verify(
            "deploy/systemd/jamz-server.service",
            false,
            "/usr/bin/jamz-server --bind",
            "jamz-server",
        );
    }
}

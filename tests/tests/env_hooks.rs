//! scripts/env.d/pulseaudio.sh on every path where PulseAudio is unavailable (and
//! scripts/env.d/postgres.sh where PostgreSQL is, scripts/env.d/redis.sh where Redis is): without
//! `JAMZ_REQUIRE_PULSE` it says why and lets the run go on (the real-time tests then say
//! "skipped"); with it (CI) it fails the run and says why. Each path is made real with
//! stand-in `pulseaudio`/`pactl` programs that fail, on a PATH of their own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Sources the hook as scripts/test.sh does (under `set -euo pipefail`) and reports whether
/// the shell got past it, and its stderr.
fn source_hook(path: &str, pulse_dir: &Path, require: bool) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("/bin/bash");
    cmd.current_dir(&root)
        .args([
            "-c",
            "set -euo pipefail; . scripts/env.d/pulseaudio.sh; echo past-the-hook",
        ])
        .env("PATH", path)
        .env("JAMZ_PULSE_DIR", pulse_dir)
        .env_remove("PULSE_SERVER")
        .env_remove("JAMZ_REQUIRE_PULSE");
    if require {
        cmd.env("JAMZ_REQUIRE_PULSE", "1");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success() && stdout.contains("past-the-hook"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory holding `pulseaudio` and `pactl` that always fail.
fn failing_pulse_programs(dir: &Path) {
    for name in ["pulseaudio", "pactl"] {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Checks one path both ways: skipped with `reason` without the variable, fails with it.
fn check(path: &str, pulse_dir: &Path, reason: &str) {
    let (passed, err) = source_hook(path, pulse_dir, false);
    assert!(passed, "without JAMZ_REQUIRE_PULSE the run goes on: {err}");
    assert!(err.contains(reason), "{err}");
    assert!(err.contains("will be skipped"), "{err}");
    let (passed, err) = source_hook(path, pulse_dir, true);
    assert!(!passed, "with JAMZ_REQUIRE_PULSE the run fails: {err}");
    assert!(err.contains(reason), "{err}");
    assert!(err.contains("JAMZ_REQUIRE_PULSE is set"), "{err}");
}

#[test]
fn pulseaudio_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    check(
        &empty.display().to_string(),
        &dir.path().join("pulse"),
        "not installed",
    );
}

#[test]
fn its_directories_cannot_be_made() {
    let dir = tempfile::tempdir().unwrap();
    failing_pulse_programs(dir.path());
    // A regular file where the hook wants a directory.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    check(
        &format!("{}:/usr/bin:/bin", dir.path().display()),
        &file.join("pulse"),
        "cannot make its directories",
    );
}

#[test]
fn the_daemon_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    failing_pulse_programs(dir.path());
    check(
        &format!("{}:/usr/bin:/bin", dir.path().display()),
        &dir.path().join("pulse"),
        "could not start",
    );
}

/// Sources scripts/env.d/postgres.sh with `JAMZ_PG_BIN` pointing where there is no
/// PostgreSQL: whether the shell got past it, its stderr, and whether it exported a URL.
fn source_postgres_hook(pg_dir: &Path, require: bool) -> (bool, String, bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("/bin/bash");
    cmd.current_dir(&root)
        .args([
            "-c",
            "set -euo pipefail; . scripts/env.d/postgres.sh; echo \"past-the-hook url=${JAMZ_TEST_POSTGRES_URL:-}\"",
        ])
        .env("JAMZ_PG_BIN", pg_dir.join("no-bin"))
        .env("JAMZ_PG_DIR", pg_dir.join("pg"))
        .env("JAMZ_PG_PORT", "1")
        .env_remove("JAMZ_TEST_POSTGRES_URL")
        .env_remove("JAMZ_REQUIRE_POSTGRES");
    if require {
        cmd.env("JAMZ_REQUIRE_POSTGRES", "1");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success() && stdout.contains("past-the-hook"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout.contains("url=postgres"),
    )
}

#[test]
fn postgresql_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let (passed, err, url) = source_postgres_hook(dir.path(), false);
    assert!(
        passed,
        "without JAMZ_REQUIRE_POSTGRES the run goes on: {err}"
    );
    assert!(!url, "no URL exported: {err}");
    assert!(err.contains("initdb not found"), "{err}");
    assert!(err.contains("will be skipped"), "{err}");
    let (passed, err, _) = source_postgres_hook(dir.path(), true);
    assert!(!passed, "with JAMZ_REQUIRE_POSTGRES the run fails: {err}");
    assert!(err.contains("initdb not found"), "{err}");
    assert!(err.contains("JAMZ_REQUIRE_POSTGRES is set"), "{err}");
}

/// Sources scripts/env.d/redis.sh with `JAMZ_REDIS_BIN` naming `program`: whether the shell
/// got past it, its stderr, and whether it exported a URL.
fn source_redis_hook(program: &Path, dir: &Path, require: bool) -> (bool, String, bool) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new("/bin/bash");
    cmd.current_dir(&root)
        .args([
            "-c",
            "set -euo pipefail; . scripts/env.d/redis.sh; echo \"past-the-hook url=${JAMZ_TEST_REDIS_URL:-}\"",
        ])
        .env("JAMZ_REDIS_BIN", program)
        .env("JAMZ_REDIS_DIR", dir.join("redis"))
        .env("JAMZ_REDIS_PORT", "1")
        .env_remove("JAMZ_TEST_REDIS_URL")
        .env_remove("JAMZ_REQUIRE_REDIS");
    if require {
        cmd.env("JAMZ_REQUIRE_REDIS", "1");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success() && stdout.contains("past-the-hook"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout.contains("url=redis"),
    )
}

/// Checks the Redis hook both ways: skipped with `reason` without JAMZ_REQUIRE_REDIS, fails
/// with it; no URL either way.
fn check_redis(program: &Path, dir: &Path, reason: &str) {
    let (passed, err, url) = source_redis_hook(program, dir, false);
    assert!(passed, "without JAMZ_REQUIRE_REDIS the run goes on: {err}");
    assert!(!url, "no URL exported: {err}");
    assert!(err.contains(reason), "{err}");
    assert!(err.contains("will be skipped"), "{err}");
    let (passed, err, _) = source_redis_hook(program, dir, true);
    assert!(!passed, "with JAMZ_REQUIRE_REDIS the run fails: {err}");
    assert!(err.contains(reason), "{err}");
    assert!(err.contains("JAMZ_REQUIRE_REDIS is set"), "{err}");
}

#[test]
fn redis_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    check_redis(
        &dir.path().join("no-redis-server"),
        dir.path(),
        "not installed",
    );
}

#[test]
fn redis_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("redis-server");
    std::fs::write(&program, "#!/bin/sh\necho 'cannot bind' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    check_redis(&program, dir.path(), "could not start");
}

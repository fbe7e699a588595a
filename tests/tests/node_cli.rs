//! The `jamz` admin commands end to end: `jamz server` (the reference backend
//! embedded), `register`/`login` (token saved mode 0600), `group
//! create|list|add-member`, `upload` (tags read from the files), `playlist`,
//! `cache preload|stats|clear`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use jamz_e2e::{STARTUP_TIMEOUT, jamz_as, workspace_bin};
use node_support::click_track;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Runs `jamz ARGS` as the user whose config lives in `home`; returns stdout,
/// or the failure with stderr.
async fn jamz(home: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::time::timeout(STARTUP_TIMEOUT, jamz_as(home).args(args).output())
        .await
        .with_context(|| format!("jamz {args:?} timed out"))??;
    if !out.status.success() {
        bail!(
            "jamz {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `jamz register|login --server URL --username USER --password PASSWORD` as the user whose
/// config lives in `home`.
async fn account(home: &Path, cmd: &str, url: &str, user: &str, password: &str) -> Result<String> {
    jamz(
        home,
        &[
            cmd,
            "--server",
            url,
            "--username",
            user,
            "--password",
            password,
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_work_against_jamz_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut server = Command::new(workspace_bin("jamz"))
        .args(["server", "--bind", "127.0.0.1:0", "--db"])
        .arg(d.join("jamz.db"))
        .arg("--data-dir")
        .arg(d.join("data"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().context("stdout")?).lines();
    let first = tokio::time::timeout(STARTUP_TIMEOUT, lines.next_line())
        .await??
        .context("no line")?;
    let url = first
        .strip_prefix("jamz-server listening on ")
        .with_context(|| format!("unexpected first line {first:?}"))?
        .to_owned();
    let (ann, bob) = (d.join("ann"), d.join("bob"));

    // register and login; the token file is private
    let out = account(&ann, "register", &url, "ann", "pw-ann").await?;
    assert!(out.contains("registered ann"), "{out}");
    account(&bob, "register", &url, "bob", "pw-bob").await?;
    let creds = ann.join("config/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "credentials file mode {mode:o}");
    }
    let wrong = account(&ann, "login", &url, "ann", "nope").await;
    assert!(wrong.is_err(), "a wrong password logged in");
    assert!(wrong.unwrap_err().to_string().contains("401"));
    account(&ann, "login", &url, "ann", "pw-ann").await?;

    // groups
    let created = jamz(&ann, &["group", "create", "road trip"]).await?;
    let group = created
        .split('\t')
        .next()
        .context("group id")?
        .trim()
        .to_owned();
    let added = jamz(&ann, &["group", "add-member", &group, "bob"]).await?;
    assert!(added.contains("2 members"), "{added}");
    let listed = jamz(&bob, &["group", "list"]).await?;
    assert!(listed.contains(&group), "bob's groups: {listed}");

    // uploads with tags, appended to the group's playlist
    let a = d.join("alpha.wav");
    click_track(&a, 2.0, 1.0)?;
    let b = d.join("b.flac");
    let sox = std::process::Command::new("sox")
        .args(["-n", "-r", "48000", "-c", "2"])
        .args([
            "--comment",
            "TITLE=Bravo",
            "--add-comment",
            "ARTIST=The Clicks",
        ])
        .arg(&b)
        .args(["synth", "2", "sine", "440"])
        .status()
        .context("sox")?;
    assert!(sox.success());
    let up = jamz(
        &ann,
        &[
            "upload",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--group",
            &group,
        ],
    )
    .await?;
    assert_eq!(up.lines().count(), 2, "{up}");
    let pl = jamz(&bob, &["playlist", "--group", &group, "--json"]).await?;
    let tracks: Vec<Value> = pl
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(tracks.len(), 2, "{pl}");
    assert_eq!(tracks[0]["title"], "alpha");
    assert_eq!(tracks[1]["title"], "Bravo");
    assert_eq!(tracks[1]["artist"], "The Clicks");
    assert!((tracks[1]["duration"].as_f64().unwrap() - 2.0).abs() < 0.05);

    // bob's cache
    let pre = jamz(&bob, &["cache", "preload", "--group", &group]).await?;
    assert!(pre.contains("2 fetched"), "{pre}");
    let stats = jamz(&bob, &["cache", "stats"]).await?;
    assert!(stats.starts_with("2 tracks"), "{stats}");
    let again = jamz(&bob, &["cache", "preload", "--group", &group]).await?;
    assert!(again.contains("2 already cached"), "{again}");
    jamz(&bob, &["cache", "clear"]).await?;
    let stats = jamz(&bob, &["cache", "stats"]).await?;
    assert!(stats.starts_with("0 tracks"), "{stats}");

    server.start_kill()?;
    Ok(())
}

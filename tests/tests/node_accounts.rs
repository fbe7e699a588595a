//! The account commands of `jamz` through jamz-node against a real jamz-server
//! process: `password` (other devices' tokens revoked, this one's replaced),
//! `group leave`, `logout` (revoked on the server, forgotten here), and a
//! throttled login reported clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use anyhow::{Context, Result, bail};
use jamz_e2e::{STARTUP_TIMEOUT, TestServer, jamz_as, workspace_bin};
use tokio::process::Command;

const PASSWORD: &str = "correct horse battery";

/// `jamz ARGS` as the user whose config lives in `home`: success and stdout, or
/// failure and stderr.
async fn run(home: &Path, args: &[&str]) -> Result<Result<String, String>> {
    let out = tokio::time::timeout(STARTUP_TIMEOUT, jamz_as(home).args(args).output())
        .await
        .with_context(|| format!("jamz {args:?} timed out"))??;
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    Ok(if out.status.success() {
        Ok(stdout)
    } else {
        Err(stderr)
    })
}

async fn jamz(home: &Path, args: &[&str]) -> Result<String> {
    match run(home, args).await? {
        Ok(out) => Ok(out),
        Err(e) => bail!("jamz {args:?} failed: {e}"),
    }
}

async fn jamz_fails(home: &Path, args: &[&str]) -> Result<String> {
    match run(home, args).await? {
        Ok(out) => bail!("jamz {args:?} succeeded: {out}"),
        Err(e) => Ok(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_group_leave_and_logout_from_the_cli() -> Result<()> {
    let server = TestServer::start().await?;
    let url = server.url.as_str();
    let ann = tempfile::tempdir()?;
    let ann = ann.path();
    let ann_laptop = tempfile::tempdir()?;
    let ann_laptop = ann_laptop.path();
    let bob = tempfile::tempdir()?;
    let bob = bob.path();
    let login = ["--server", url, "--username"];

    jamz(
        ann,
        &[&["register"][..], &login, &["ann", "--password", PASSWORD]].concat(),
    )
    .await?;
    jamz(
        bob,
        &[&["register"][..], &login, &["bob", "--password", PASSWORD]].concat(),
    )
    .await?;
    jamz(
        ann_laptop,
        &[&["login"][..], &login, &["ann", "--password", PASSWORD]].concat(),
    )
    .await?;

    // A group of Ann's that Bob is in, then leaves.
    let created = jamz(ann, &["group", "create", "road trip"]).await?;
    let group = created.split('\t').next().context("group id")?.to_owned();
    jamz(ann, &["group", "add-member", &group, "bob"]).await?;
    assert!(jamz(bob, &["group", "list"]).await?.contains(&group));
    let out = jamz(bob, &["group", "leave", &group]).await?;
    assert!(out.contains("left"), "{out}");
    assert!(!jamz(bob, &["group", "list"]).await?.contains(&group));

    // A password change: this device keeps working, the laptop's token is revoked.
    let wrong = jamz_fails(ann, &["password", "--current", "nope", "--new", "x"]).await?;
    assert!(wrong.contains("HTTP 403"), "{wrong}");
    let out = jamz(
        ann,
        &[
            "password",
            "--current",
            PASSWORD,
            "--new",
            "a new and longer one",
        ],
    )
    .await?;
    assert!(out.contains("password changed"), "{out}");
    assert!(jamz(ann, &["group", "list"]).await?.contains(&group));
    let revoked = jamz_fails(ann_laptop, &["group", "list"]).await?;
    assert!(revoked.contains("HTTP 401"), "{revoked}");

    // Logout: revoked on the server, forgotten here.
    let out = jamz(ann, &["logout"]).await?;
    assert!(out.contains("the server revoked"), "{out}");
    let gone = jamz_fails(ann, &["group", "list"]).await?;
    assert!(gone.contains("not logged in"), "{gone}");
    // The laptop's token was already revoked: its logout still signs it out.
    let out = jamz(ann_laptop, &["logout"]).await?;
    assert!(out.contains("logged out"), "{out}");
    assert!(
        jamz_fails(ann_laptop, &["group", "list"])
            .await?
            .contains("not logged in")
    );
    // The new password logs in, the old one no longer does.
    jamz(
        ann,
        &[
            &["login"][..],
            &login,
            &["ann", "--password", "a new and longer one"],
        ]
        .concat(),
    )
    .await?;
    let old = jamz_fails(
        ann_laptop,
        &[&["login"][..], &login, &["ann", "--password", PASSWORD]].concat(),
    )
    .await?;
    assert!(old.contains("HTTP 401"), "{old}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_login_is_a_clear_error() -> Result<()> {
    let server = TestServer::start_one_login_per(600).await?;
    let home = tempfile::tempdir()?;
    let home = home.path();
    let login = ["--server", server.url.as_str(), "--username", "cat"];
    jamz(
        home,
        &[&["register"][..], &login, &["--password", PASSWORD]].concat(),
    )
    .await?;
    let wrong = jamz_fails(
        home,
        &[&["login"][..], &login, &["--password", "wrong"]].concat(),
    )
    .await?;
    assert!(wrong.contains("HTTP 401"), "{wrong}");
    let throttled = jamz_fails(
        home,
        &[&["login"][..], &login, &["--password", PASSWORD]].concat(),
    )
    .await?;
    eprintln!("  {throttled}");
    assert!(throttled.contains("HTTP 429"), "{throttled}");
    assert!(throttled.contains("the server asks to wait"), "{throttled}");
    Ok(())
}

/// A program on `PATH`?
fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The token in a real Secret Service: gnome-keyring-daemon on a private
/// session bus (dbus-run-session), as on a desktop. Skips with a reason when
/// either program is missing, unless `JAMZ_REQUIRE_KEYRING=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_goes_into_a_running_secret_service() -> Result<()> {
    let missing: Vec<_> = ["dbus-run-session", "gnome-keyring-daemon"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    if !missing.is_empty() {
        if std::env::var_os("JAMZ_REQUIRE_KEYRING").is_some() {
            bail!(
                "JAMZ_REQUIRE_KEYRING is set but {missing:?} is missing (scripts/apt/keyring.txt)"
            );
        }
        eprintln!("SKIPPED: {missing:?} not installed (scripts/apt/keyring.txt)");
        return Ok(());
    }
    let server = TestServer::start().await?;
    let home = tempfile::tempdir()?;
    let h = home.path();
    // Every step inside one session bus; each prints a marker line, and the
    // script stops at the first failure.
    let script = r#"
set -e
printf 'jamz-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
echo "== register"; "$JAMZ" register --server "$URL" --username kim --password "$PW"
echo "== file"; cat "$JAMZ_CONFIG_DIR/credentials.json"; echo
echo "== list"; G=$("$JAMZ" group create trip | cut -f1); "$JAMZ" group list
echo "== status"; echo '{"cmd":"status"}' | "$JAMZ" node --json --group "$G" --output null | grep '"status"'
echo "== file-only"; JAMZ_TOKEN_STORE=file "$JAMZ" group list 2>&1 || echo "refused"
echo "== logout"; "$JAMZ" logout
echo "== after"; "$JAMZ" group list 2>&1 || echo "refused"
"#;
    let out = tokio::time::timeout(
        STARTUP_TIMEOUT * 4,
        Command::new("dbus-run-session")
            .args(["--", "sh", "-c", script])
            .env("JAMZ", workspace_bin("jamz"))
            .env("URL", &server.url)
            .env("PW", PASSWORD)
            .env("HOME", h)
            .env("XDG_DATA_HOME", h.join("data"))
            .env("XDG_RUNTIME_DIR", h)
            .env("JAMZ_CONFIG_DIR", h.join("config"))
            .env("JAMZ_CACHE_DIR", h.join("cache"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("JAMZ_TOKEN_STORE")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the keyring session timed out")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the script failed");
    let section = |name: &str| -> String {
        stdout
            .split(&format!("== {name}\n"))
            .nth(1)
            .and_then(|rest| rest.split("\n== ").next())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        section("register").contains("token saved in the OS keyring"),
        "{stdout}"
    );
    let file = section("file");
    assert!(file.contains(r#""token_store": "keyring""#), "{file}");
    assert!(
        !file.contains(r#""token":"#),
        "the token is in the file: {file}"
    );
    assert!(section("list").contains("trip"), "{stdout}");
    assert!(
        section("status").contains(r#""token_store":"keyring""#),
        "{stdout}"
    );
    let file_only = section("file-only");
    assert!(
        file_only.contains("refused") && file_only.contains("log in again"),
        "{file_only}"
    );
    assert!(section("logout").contains("the server revoked"), "{stdout}");
    assert!(section("after").contains("not logged in"), "{stdout}");
    Ok(())
}

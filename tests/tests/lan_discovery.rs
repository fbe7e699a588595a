//! A hosted session found on the local network without a URL (docs/protocol.md,
//! "Finding a hosted session"): `jamz server --announce` in one process, `jamz discover`
//! and `jamz node --discover` in others, over real mDNS multicast.
//!
//! mDNS speaks to a whole network, so every test runs in a network namespace it makes
//! (`unshare --net`, `ip` from iproute2: scripts/apt/platform.txt; needs root or user
//! namespaces) with one network of its own, a veth pair: "hotspot0" 10.42.0.1/24 (the
//! hosting phone) and "car0" 10.42.0.2/24. Nothing leaves the namespace. Skipped with a
//! printed reason when no namespace can be made, unless `JAMZ_REQUIRE_NETNS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jamz_e2e::jamz_as;
use jamz_e2e::tls::private_ca;
use jamz_link::RestClient;
use node_support::{NodeProc, PASSWORD, click_track};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const WAIT: Duration = Duration::from_secs(30);

const SETUP: &str = r#"
ip link set lo up
ip link add hotspot0 type veth peer name car0
ip addr add 10.42.0.1/24 dev hotspot0
ip addr add 10.42.0.2/24 dev car0
ip link set car0 up
ip link set hotspot0 up
exec "$@"
"#;

/// `jamz server --bind 0.0.0.0:0 --announce NAME`, its data in `dir`.
struct Host {
    _child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    port: u16,
    /// Through loopback, for this test's own set-up calls.
    local_url: String,
}

impl Host {
    async fn start(dir: &Path, name: &str) -> Result<Host> {
        Self::start_with(dir, name, &[]).await
    }

    /// [`Host::start`] with more `jamz server` arguments (`--tls-cert`, `--tls-key`).
    async fn start_with(dir: &Path, name: &str, extra: &[&str]) -> Result<Host> {
        let mut child = jamz_as(dir)
            .args(["server", "--bind", "0.0.0.0:0", "--announce", name])
            .args(extra)
            .arg("--db")
            .arg(dir.join("jamz.db"))
            .arg("--data-dir")
            .arg(dir.join("files"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut port = None;
        let announced = tokio::time::timeout(WAIT, async {
            while let Some(line) = stdout.next_line().await? {
                if let Some(addr) = line
                    .strip_prefix("jamz-server listening on http://")
                    .or_else(|| line.strip_prefix("jamz-server listening on https://"))
                {
                    port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                }
                if line.starts_with("announced on this network as") {
                    return Ok(());
                }
            }
            bail!("jamz server ended before announcing")
        })
        .await
        .context("jamz server did not announce in time")?;
        announced?;
        let port = port.context("no listening line")?;
        Ok(Host {
            _child: child,
            _stdout: stdout,
            port,
            local_url: format!("http://127.0.0.1:{port}"),
        })
    }
}

/// `jamz ARGS` as the user of `home` to its end: (success, stdout, stderr).
async fn jamz(home: &Path, args: &[&str]) -> Result<(bool, String, String)> {
    let out = tokio::time::timeout(WAIT, jamz_as(home).args(args).output())
        .await
        .context("jamz did not end in time")??;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn an_announced_server_is_found_by_another_process() {
    if !jamz_e2e::in_network_namespace("an_announced_server_is_found_by_another_process", SETUP) {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            let tmp = tempfile::tempdir()?;
            let home = tmp.path();

            // Nothing hosts yet: a clear answer within the wait.
            let (ok, _, err) = jamz(home, &["discover", "--wait-s", "1"]).await?;
            assert!(!ok);
            assert!(
                err.contains("no session found on this network within 1 s"),
                "{err}"
            );

            let ann = Host::start(&home.join("ann"), "Ann's car").await?;
            let (ok, out, err) = jamz(home, &["discover", "--wait-s", "5"]).await?;
            assert!(ok, "{err}");
            let want = format!("http://10.42.0.1:{}\tAnn's car", ann.port);
            assert!(out.lines().any(|l| l == want), "{want:?} not in {out:?}");
            // The URL found is the server's.
            let rest = RestClient::new(&format!("http://10.42.0.1:{}", ann.port))?;
            rest.register("probe", "probe@example.test", PASSWORD)
                .await?;

            // Two hosts: joining needs a choice, and the error offers it.
            let bob = Host::start(&home.join("bob"), "Bob's van").await?;
            let (ok, _, err) = jamz(
                home,
                &[
                    "node",
                    "--discover",
                    "--username",
                    "x",
                    "--password",
                    "y",
                    "--output",
                    "null",
                ],
            )
            .await?;
            assert!(!ok);
            assert!(err.contains("2 sessions found on this network"), "{err}");
            assert!(err.contains("\"Ann's car\""), "{err}");
            assert!(
                err.contains(&format!("\"Bob's van\" (http://10.42.0.1:{})", bob.port)),
                "{err}"
            );
            assert!(err.contains("--discover NAME"), "{err}");

            // A part of a name, letter case ignored, picks one (then the login is Bob's
            // van's business: no such account there).
            let node_as_x = |session: &'static str| {
                [
                    "node",
                    "--discover",
                    session,
                    "--username",
                    "x",
                    "--password",
                    "y",
                    "--output",
                    "null",
                ]
            };
            let (ok, _, err) = jamz(home, &node_as_x("bob")).await?;
            assert!(!ok);
            let picked = format!("found \"Bob's van\" at http://10.42.0.1:{}", bob.port);
            assert!(err.contains(&picked), "{err}");
            // A name nobody announces: said, with what was found.
            let (ok, _, err) = jamz(home, &node_as_x("Carol")).await?;
            assert!(!ok);
            assert!(
                err.contains("no session named \"Carol\" found on this network"),
                "{err}"
            );
            assert!(err.contains("\"Ann's car\""), "{err}");
            anyhow::Ok(())
        })
        .unwrap();
}

#[test]
fn a_discovering_node_joins_the_hosted_session_and_plays() {
    if !jamz_e2e::in_network_namespace(
        "a_discovering_node_joins_the_hosted_session_and_plays",
        SETUP,
    ) {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            let tmp = tempfile::tempdir()?;
            let dir = tmp.path();
            let host = Host::start(&dir.join("host"), "Ann's car").await?;

            // The host's members and the group, set up as the app would over REST.
            let ann = RestClient::new(&host.local_url)?;
            let ann_id = ann
                .register("ann", "ann@example.test", PASSWORD)
                .await?
                .user
                .id;
            RestClient::new(&host.local_url)?
                .register("bob", "bob@example.test", PASSWORD)
                .await?;
            let group = ann.create_group("road trip", None).await?;
            ann.add_member(&group.id, "bob").await?;

            // The DJ on the host itself.
            let cache = dir.join("cache-ann");
            let mut dj = NodeProc::spawn(
                "ann",
                &[
                    "node",
                    "--json",
                    "--server",
                    host.local_url.as_str(),
                    "--username",
                    "ann",
                    "--password",
                    PASSWORD,
                    "--group",
                    group.id.as_str(),
                    "--name",
                    "Ann's car",
                    "--output",
                    "null",
                    "--cache-dir",
                    cache.to_str().context("path")?,
                ],
                &dir.join("config-ann"),
                &[],
            )
            .await?;
            dj.wait_event("ready", |_| true).await?;
            dj.take_control(ann_id).await?;
            let song = dir.join("song.wav");
            click_track(&song, 20.0, 1.0)?;
            let playlist = dj.add(&song, 1).await?;
            let track = playlist["playlist"][0]["id"].clone();

            // Bob's speaker node: no URL, no group.
            let cache = dir.join("cache-bob");
            let mut bob = NodeProc::spawn(
                "bob",
                &[
                    "node",
                    "--json",
                    "--discover",
                    "--username",
                    "bob",
                    "--password",
                    PASSWORD,
                    "--name",
                    "Bob's car",
                    "--output",
                    "null",
                    "--cache-dir",
                    cache.to_str().context("path")?,
                ],
                &dir.join("config-bob"),
                &[],
            )
            .await?;
            bob.wait_event("ready", |_| true).await?;
            bob.wait_playlist(1).await?;
            dj.send(serde_json::json!({"cmd":"play"})).await?;
            let playing = bob
                .wait_event("playback", |v| v["playing"] == true && v["track"] == track)
                .await?;
            println!("bob plays: {playing}");
            // Bob's node is in Ann's session (the server hosting it says so).
            dj.wait_event("participants", |v| {
                v["participants"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x["display_name"] == "Bob's car"))
            })
            .await?;
            bob.quit().await?;
            dj.quit().await?;
            anyhow::Ok(())
        })
        .unwrap();
}

/// A host speaking TLS is announced as such (`scheme=https`): the URL found is its
/// `https://` one, and it works with the host's CA, for `jamz` and for a node that
/// discovers it (configured by environment only, as the service is).
#[test]
fn a_tls_server_is_found_as_https() {
    if !jamz_e2e::in_network_namespace("a_tls_server_is_found_as_https", SETUP) {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async {
            let tmp = tempfile::tempdir()?;
            let home = tmp.path();
            let tls = home.join("tls");
            private_ca(&tls, &["10.42.0.1"])?;
            let (cert, key) = (tls.join("server.pem"), tls.join("server.key"));
            let host = Host::start_with(
                &home.join("ann"),
                "Ann's secure car",
                &[
                    "--tls-cert",
                    cert.to_str().context("path")?,
                    "--tls-key",
                    key.to_str().context("path")?,
                ],
            )
            .await?;
            let (ok, out, err) = jamz(home, &["discover", "--wait-s", "5"]).await?;
            assert!(ok, "{err}");
            let url = format!("https://10.42.0.1:{}", host.port);
            let want = format!("{url}\tAnn's secure car");
            assert!(out.lines().any(|l| l == want), "{want:?} not in {out:?}");
            // The URL found is the server's, over TLS with its CA.
            let ca = tls.join("ca.pem");
            let (ok, _, err) = jamz(
                home,
                &[
                    "--ca-cert",
                    ca.to_str().context("path")?,
                    "register",
                    "--server",
                    &url,
                    "--username",
                    "probe",
                    "--password",
                    PASSWORD,
                ],
            )
            .await?;
            assert!(ok, "{err}");

            // A node finds it and reaches it over TLS with the CA: it logs in and asks
            // for the member's groups there.
            let ca = ca.to_str().context("path")?;
            let (ok, _, err) = jamz(
                home,
                &[
                    "--ca-cert",
                    ca,
                    "node",
                    "--discover",
                    "--username",
                    "probe",
                    "--password",
                    PASSWORD,
                    "--output",
                    "null",
                ],
            )
            .await?;
            assert!(!ok);
            assert!(
                err.contains(&format!(
                    "you are in no group on {url}: ask the host to add you"
                )),
                "{err}"
            );
            // In a group, a node configured as the service is (environment only:
            // JAMZ_DISCOVER=any, deploy/node.env.example) joins its session.
            let (ok, _, err) =
                jamz(home, &["--ca-cert", ca, "group", "create", "night drive"]).await?;
            assert!(ok, "{err}");
            let cache = home.join("cache-probe");
            let mut node = NodeProc::spawn(
                "probe",
                &["node", "--json", "--output", "null"],
                &home.join("config"),
                &[
                    ("JAMZ_DISCOVER", "any"),
                    ("JAMZ_CA_CERT", ca),
                    ("JAMZ_USERNAME", "probe"),
                    ("JAMZ_PASSWORD", PASSWORD),
                    ("JAMZ_CACHE_DIR", cache.to_str().context("path")?),
                ],
            )
            .await?;
            let ready = node.wait_event("ready", |_| true).await?;
            println!("joined over https: {ready}");
            node.wait_event("participants", |v| {
                v["participants"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x["userId"] == ready["userId"]))
            })
            .await?;
            node.quit().await?;
            anyhow::Ok(())
        })
        .unwrap();
}

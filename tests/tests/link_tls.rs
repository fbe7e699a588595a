//! https and wss to a self-hosted server with its own certificate authority: a real
//! jamz-server process started with `--tls-cert/--tls-key`; the link refuses it until the
//! CA is trusted (`--ca-cert`, `jamz_link::tls::trust_ca_file`), then REST, the Socket.IO
//! websocket and the `jamz` CLI all work over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::Result;
use jamz_e2e::tls::private_ca;
use jamz_e2e::{TestServer, jamz_as};
use jamz_link::{LinkEvent, LinkState, RestClient, SocketClient, SocketConfig};

const WAIT: Duration = Duration::from_secs(20);

/// Every cause of an error, outermost first.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut all = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        all.push(s.to_string());
        next = s.source();
    }
    all.join(": ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_its_own_ca_is_refused_until_the_ca_is_trusted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    private_ca(dir.path(), &["127.0.0.1", "localhost"])?;
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let server = TestServer::start_with_args(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await?;
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // Not trusted yet: a clear certificate error, from REST and from the CLI.
    let refused = RestClient::new(&server.url)?
        .register("ann", "ann@example.test", "correct horse")
        .await
        .unwrap_err();
    let why = causes(&refused);
    eprintln!("  untrusted: {why}");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
    let home = tempfile::tempdir()?;
    let cli = jamz_as(home.path())
        .args(["register", "--server", &server.url, "--username", "bob"])
        .args(["--password", "correct horse"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli.status.success(),
        "registered over an untrusted certificate"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    // The CLI with the CA file: registered over https.
    let ca = dir.path().join("ca.pem");
    let cli = jamz_as(home.path())
        .args(["--ca-cert", ca.to_str().unwrap()])
        .args(["register", "--server", &server.url, "--username", "bob"])
        .args(["--password", "correct horse"])
        .output()
        .await?;
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // This process trusts the CA: REST and the websocket work.
    assert_eq!(jamz_link::tls::trust_ca_file(&ca)?, 1);
    let rest = RestClient::new(&server.url)?;
    let auth = rest
        .register("ann", "ann@example.test", "correct horse")
        .await?;
    let group = rest.create_group("secure trip", None).await?;
    assert!(!group.id.is_empty());
    let (_socket, mut events) =
        SocketClient::connect(SocketConfig::new(&server.url).token(&auth.token))?;
    let connected = tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.recv().await {
            match ev {
                LinkEvent::State(LinkState::Connected { .. }) => return Ok(()),
                LinkEvent::State(other) => eprintln!("  link: {other:?}"),
                _ => {}
            }
        }
        anyhow::bail!("the link's events ended")
    })
    .await;
    assert!(
        matches!(connected, Ok(Ok(()))),
        "no wss connection: {connected:?}"
    );
    Ok(())
}

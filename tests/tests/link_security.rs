//! The REST client against the server's protections (a real jamz-server
//! process): it waits out 429/503 as `Retry-After` says and gives up with a
//! clear error past its bounds, says why an upload was refused (a 408 read
//! through a slow uplink too), and carries the account routes (logout,
//! password change, leaving a group); and the server against slow clients (a
//! trickled request head) and its log when it sheds load.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use jamz_e2e::TestServer;
use jamz_link::{LinkError, RestClient, RetryPolicy, Upload};

const PASSWORD: &str = "correct horse battery";

async fn register(base: &str, name: &str) -> Result<RestClient> {
    let rest = RestClient::new(base)?;
    rest.register(name, &format!("{name}@example.test"), PASSWORD)
        .await?;
    Ok(rest)
}

/// One wrong password empties a one-attempt bucket.
async fn spend_the_only_attempt(base: &str, name: &str) -> Result<()> {
    let e = RestClient::new(base)?
        .with_retry(RetryPolicy::never())
        .login(name, "wrong")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_login_waits_for_retry_after_and_then_succeeds() -> Result<()> {
    let server = TestServer::start_one_login_per(1).await?;
    register(&server.url, "ann").await?;
    spend_the_only_attempt(&server.url, "ann").await?;

    // Without waiting: the 429 is reported at once, with the server's wait.
    let e = RestClient::new(&server.url)?
        .with_retry(RetryPolicy::never())
        .login("ann", PASSWORD)
        .await
        .unwrap_err();
    match &e {
        LinkError::Throttled {
            status,
            attempts,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 429);
            assert_eq!(*attempts, 1);
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(e.is_unreachable(), "a throttled call may succeed later");
    let text = e.to_string();
    assert!(text.contains("HTTP 429"), "{text}");
    assert!(text.contains("gave up after 1 attempt"), "{text}");
    assert!(text.contains("wait 1 s"), "{text}");

    // The default policy waits the second the server asks for and gets in.
    let rest = RestClient::new(&server.url)?;
    let auth = rest.login("ann", PASSWORD).await?;
    assert_eq!(auth.user.username, "ann");
    assert_eq!(rest.token().as_deref(), Some(auth.token.as_str()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_the_policy_allows_is_a_clear_error_at_once() -> Result<()> {
    let server = TestServer::start_one_login_per(600).await?;
    register(&server.url, "bob").await?;
    spend_the_only_attempt(&server.url, "bob").await?;
    let policy = RetryPolicy::default();
    let e = RestClient::new(&server.url)?
        .with_retry(policy)
        .login("bob", PASSWORD)
        .await
        .unwrap_err();
    match &e {
        LinkError::Throttled {
            status: 429,
            attempts: 1,
            retry_after: Some(wait),
            ..
        } => assert!(*wait > policy.max_wait, "{wait:?}"),
        other => panic!("expected Throttled at once, got {other:?}"),
    }
    eprintln!("  {e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_say_why() -> Result<()> {
    let server = TestServer::start_with_args(&["--max-upload-mib", "1"]).await?;
    let rest = register(&server.url, "cat").await?;

    let big = Upload {
        file_name: "big.wav".into(),
        data: Bytes::from(vec![0u8; 2 * 1024 * 1024]),
        ..Upload::default()
    };
    let e = rest.upload(big).await.unwrap_err();
    match &e {
        LinkError::UploadRefused { file, status, .. } => {
            assert_eq!(file, "big.wav");
            assert_eq!(*status, 413);
        }
        other => panic!("expected UploadRefused 413, got {other:?}"),
    }
    assert!(
        e.to_string().contains("larger than the server accepts"),
        "{e}"
    );

    let noise = Upload {
        file_name: "noise.mp3".into(),
        data: Bytes::from_static(b"this is not audio at all, only text pretending"),
        ..Upload::default()
    };
    let e = rest.upload(noise).await.unwrap_err();
    assert_eq!(e.status(), Some(415), "{e}");
    assert!(
        matches!(e, LinkError::UploadRefused { .. }),
        "expected UploadRefused, got {e:?}"
    );
    assert!(
        e.to_string().contains("not recognise the file as audio"),
        "{e}"
    );
    eprintln!("  {e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_password_change_revoke_the_old_tokens() -> Result<()> {
    let server = TestServer::start().await?;
    let rest = register(&server.url, "dan").await?;
    let first = rest.token().unwrap();

    // A password change: the old token is refused, the fresh one is kept.
    rest.change_password(PASSWORD, "a new and longer one")
        .await?;
    let second = rest.token().unwrap();
    assert_ne!(first, second);
    rest.groups().await?;
    let old = RestClient::new(&server.url)?;
    old.set_token(Some(first));
    assert_eq!(old.groups().await.unwrap_err().status(), Some(401));
    let e = rest
        .change_password("not the current one", "x")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let e = RestClient::new(&server.url)?
        .login("dan", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "the old password still works: {e}");

    // Logout: this client forgets its token and the server refuses it.
    let other_device = RestClient::new(&server.url)?;
    other_device.login("dan", "a new and longer one").await?;
    rest.logout().await?;
    assert_eq!(rest.token(), None);
    let stale = RestClient::new(&server.url)?;
    stale.set_token(Some(second));
    assert_eq!(stale.groups().await.unwrap_err().status(), Some(401));
    // Logout is everywhere: the other device's token is revoked too.
    assert_eq!(other_device.groups().await.unwrap_err().status(), Some(401));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_a_group() -> Result<()> {
    let server = TestServer::start().await?;
    let eve = register(&server.url, "eve").await?;
    let fay = register(&server.url, "fay").await?;
    let group = eve.create_group("road trip", None).await?;
    eve.add_member(&group.id, "fay").await?;
    assert!(fay.groups().await?.iter().any(|g| g.id == group.id));

    fay.leave_group(&group.id).await?;
    assert!(!fay.groups().await?.iter().any(|g| g.id == group.id));
    // Not a member any more: leaving again is refused.
    assert_eq!(
        fay.leave_group(&group.id).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        fay.leave_group("no-such-group").await.unwrap_err().status(),
        Some(404)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_server_is_waited_out_and_without_retries_reported_as_busy() -> Result<()> {
    // One password check at a time, none waiting: a second concurrent login is a 503.
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("jamz-server.log");
    let mut server = TestServer::start_logging_to(
        &log,
        &[
            "--hash-workers",
            "1",
            "--hash-queue",
            "0",
            "--login-attempts-per-address",
            "1000",
        ],
    )
    .await?;
    let names: Vec<String> = (0..6).map(|i| format!("busy{i}")).collect();
    for n in &names {
        // Registrations one at a time (each is a password hash too).
        register(&server.url, n).await?;
    }

    // Without retries, concurrent logins meet the busy pool and say so. They leave
    // together (a barrier), many per account: each check takes the one thread a while.
    const RACERS: usize = 24;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let tries = (0..RACERS)
        .map(|i| {
            let url = server.url.clone();
            let n = names[i % names.len()].clone();
            let start = start.clone();
            tokio::spawn(async move {
                let rest = RestClient::new(&url)?.with_retry(RetryPolicy::never());
                start.wait().await;
                rest.login(&n, PASSWORD).await.map(|_| ())
            })
        })
        .collect::<Vec<_>>();
    let mut busy = Vec::new();
    for t in tries {
        if let Err(e) = t.await? {
            busy.push(e);
        }
    }
    assert!(
        !busy.is_empty(),
        "six concurrent logins on one password thread: none was told the server is busy"
    );
    for e in &busy {
        assert_eq!(e.status(), Some(503), "{e}");
        assert!(
            matches!(
                e,
                LinkError::Throttled {
                    retry_after: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("busy"), "{e}");
    }
    eprintln!("  {} of {RACERS} told: {}", busy.len(), busy[0]);

    // With the default policy, the same race is waited out as Retry-After says.
    let tries = names[..2]
        .iter()
        .map(|n| {
            let url = server.url.clone();
            let n = n.clone();
            tokio::spawn(
                async move { RestClient::new(&url)?.login(&n, PASSWORD).await.map(|_| ()) },
            )
        })
        .collect::<Vec<_>>();
    for t in tries {
        t.await??;
    }

    // Shedding load is the server working as meant: a warning, not an error. (The
    // request trace logs each answer's failure before the answer leaves.)
    server.kill9().await?;
    let log = std::fs::read_to_string(&log)?;
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "busy answers logged as errors: {errors:#?}"
    );
    let shed = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("503"))
        .count();
    assert!(
        shed >= 1,
        "no warning for a 503 in the server's log:\n{log}"
    );
    eprintln!("  {shed} warnings for 503 in the server's log, no error");
    Ok(())
}

/// Forwards each client to `upstream`, the client's bytes at about `bytes_per_sec` (a
/// slow uplink), the server's at full speed. It closes the client's connection the
/// moment the server closes its own, the way the server did (the kernel says it: a FIN,
/// or a reset when the relay still holds bytes of the client's that the server never
/// read), as a client on a direct slow link would see it.
async fn slow_uplink_relay(
    upstream: String,
    bytes_per_sec: usize,
) -> Result<(String, Arc<RelayCount>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let count = Arc::new(RelayCount::default());
    let counts = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            tokio::spawn(relay_one(client, server, bytes_per_sec, counts.clone()));
        }
    });
    Ok((format!("http://{addr}"), count))
}

/// What the relay saw of a 408.
#[derive(Default)]
struct RelayCount {
    /// A 408 went to the client.
    answered_408: AtomicBool,
    /// The server closed while the client was still sending (after a 408: on its unread
    /// bytes, which resets the connection).
    server_closed_first: AtomicBool,
}

async fn relay_one(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    bytes_per_sec: usize,
    count: Arc<RelayCount>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const TICKS_PER_SEC: usize = 20;
    let (client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / TICKS_PER_SEC as u64));
    let mut up = vec![0u8; (bytes_per_sec / TICKS_PER_SEC).max(1)];
    let mut down = vec![0u8; 64 * 1024];
    let mut client_sends = true;
    loop {
        tokio::select! {
            read = server_rx.read(&mut down) => match read {
                Ok(n) if n > 0 => {
                    if down[..n].starts_with(b"HTTP/1.1 408 ") {
                        count.answered_408.store(true, Ordering::SeqCst);
                    }
                    if client_tx.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
                // The server closed or reset: so does the client's side, now. Dropping
                // both halves closes the socket with whatever of the client's is unread.
                _ => {
                    if client_sends && count.answered_408.load(Ordering::SeqCst) {
                        count.server_closed_first.store(true, Ordering::SeqCst);
                    }
                    return;
                }
            },
            _ = tick.tick(), if client_sends => match client_rx.try_read(&mut up) {
                Ok(0) => {
                    client_sends = false;
                    let _ = server_tx.shutdown().await;
                }
                Ok(n) => {
                    if server_tx.write_all(&up[..n]).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            },
        }
    }
}

/// An upload slower than the server's floor is answered 408 at once, and the
/// client reads that answer although it is still sending: the server keeps reading
/// behind its answer for a moment (a lingering close) instead of closing on unread
/// bytes, which reset the connection under the client ("error sending request").
/// (Draining up to 1 MiB of the refused body before answering, as for a 413, would
/// at this rate outlast the client's read timeout.) The server serves on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_slower_than_the_floor_is_told_408() -> Result<()> {
    let server = TestServer::start_with_args(&["--upload-min-bytes-per-sec", "200000"]).await?;
    register(&server.url, "dee").await?;
    let upstream = server.url.trim_start_matches("http://").to_string();
    let (relay, relayed) = slow_uplink_relay(upstream, 20_000).await?;
    let rest = RestClient::new(&relay)?.with_retry(RetryPolicy::never());
    rest.login("dee", PASSWORD).await?;
    // Far more than the 10 s grace carries at 20 KB/s, and than the sockets' buffers
    // on the way hold: still sending (its writes waiting) when refused.
    let slow = Upload {
        file_name: "slow.wav".into(),
        data: Bytes::from(vec![0u8; 16 * 1024 * 1024]),
        ..Upload::default()
    };
    let e = rest.upload(slow).await.unwrap_err();
    eprintln!("  {e}");
    match &e {
        LinkError::UploadRefused {
            file,
            status,
            message,
            ..
        } => {
            assert_eq!(file, "slow.wav");
            assert_eq!(*status, 408, "{e}");
            // The server's own words came through, not a transport error.
            assert!(message.contains("upload too slow"), "{e}");
        }
        other => panic!("expected UploadRefused 408, got {other:?}"),
    }
    assert!(
        !relayed.server_closed_first.load(Ordering::SeqCst),
        "the server closed on the client's unread bytes (a reset) instead of reading on behind its 408"
    );
    // In words, for the person: the status and what it means.
    let words = e.to_string();
    assert!(words.contains("HTTP 408"), "{words}");
    assert!(words.contains("too slow"), "{words}");

    // The server is healthy: the same account, directly, lists its groups and uploads.
    let direct = RestClient::new(&server.url)?.with_retry(RetryPolicy::never());
    direct.login("dee", PASSWORD).await?;
    direct.groups().await?;
    let fast = Upload {
        file_name: "fast.wav".into(),
        data: Bytes::from(one_second_of_silence()?),
        ..Upload::default()
    };
    direct.upload(fast).await?;
    Ok(())
}

/// A WAV file the server's probe accepts.
fn one_second_of_silence() -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec)?;
    for _ in 0..8000 {
        w.write_sample(0i16)?;
    }
    w.finalize()?;
    Ok(out.into_inner())
}

/// A client that trickles a request's head (a byte every 50 ms, never done) keeps no
/// connection: the header-read timeout counts from the head's first byte, so bytes that
/// keep coming do not reset it (the idle timeout alone would never fire). Silent
/// connections are tests/js/server-security.test.mjs's "silent connections".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_trickled_byte_by_byte_is_cut_at_the_header_timeout() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with_args(&["--header-read-timeout-secs", "2"]).await?;
    let stream = tokio::net::TcpStream::connect(&server.addr).await?;
    let (mut rx, mut tx) = stream.into_split();
    tx.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n").await?;
    let trickle = tokio::spawn(async move {
        // Endless: only the server can end this connection.
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut sent = 0u64;
        loop {
            tick.tick().await;
            if tx.write_all(b"x").await.is_err() {
                return sent;
            }
            sent += 1;
        }
    });
    // The server closes (EOF or reset); the unfinished head was not served.
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), rx.read_to_end(&mut answer))
        .await
        .expect("a trickled head still open after 30 s: no header-read timeout");
    eprintln!("  closed: {closed:?}, answer {} bytes", answer.len());
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    trickle.abort();
    // The server is healthy.
    RestClient::new(&server.url)?
        .with_retry(RetryPolicy::never())
        .register("fay", "fay@example.test", PASSWORD)
        .await?;
    Ok(())
}

//! Faults on the link: the server killed with `kill -9` and restarted mid-session,
//! and a peer that goes silent (a loopback proxy that stops forwarding).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod link_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use jamz_e2e::{RefServer, TestServer};
use jamz_link::{DisconnectReason, LinkState, ReconnectPolicy};
use jamz_proto::events::{LocationUpdate, PlaylistUpdate, TimeSync, TimeSyncReply};
use jamz_proto::{ServerEvent, Track};
use link_support::{Member, WAIT, seed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Quick reconnects for tests (the defaults are for cars, not loopback).
fn fast_policy() -> ReconnectPolicy {
    ReconnectPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        ..ReconnectPolicy::default()
    }
}

fn track(title: &str, url: &str) -> Track {
    Track {
        title: title.into(),
        artist: "Test".into(),
        url: url.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn server_killed_and_restarted_clients_rejoin_with_persisted_playlist_and_controller() {
    let seed = seed();
    if let Err(e) = kill_and_restart(seed).await {
        panic!("failed (seed {seed}): {e:?}");
    }
}

async fn kill_and_restart(seed: u64) -> Result<()> {
    let mut server = TestServer::start().await?;
    let base = server.url.clone();
    let mut alice = Member::register(&base, "alice").await?;
    let mut bob = Member::register(&base, "bob").await?;
    let group = alice.rest.create_group("convoy", None).await?;
    alice.rest.add_member(&group.id, "bob").await?;
    let sid = alice.rest.session_for_group(&group.id).await?.id;

    for (i, m) in [&mut alice, &mut bob].into_iter().enumerate() {
        let cfg = m
            .config(&base, seed.wrapping_add(i as u64))?
            .reconnect(fast_policy());
        m.enter(cfg, &sid).await?;
    }
    alice.take_control(&sid)?;
    alice.wait_for("music-controller-changed").await?;
    bob.wait_for("music-controller-changed").await?;
    alice
        .rest
        .append_track(&sid, &track("One", "https://example.test/1.mp3"))
        .await?;
    let before = bob
        .rest
        .append_track(&sid, &track("Two", "https://example.test/2.mp3"))
        .await?;
    assert_eq!(before.len(), 2);

    // ---- kill -9
    server.kill9().await?;
    let tmp = server.take_dir().context("temporary dir")?;
    let addr = server.addr.clone();
    for m in [&mut alice, &mut bob] {
        let s = m
            .wait_state("Disconnected", |s| {
                matches!(s, LinkState::Disconnected { .. } | LinkState::Dead { .. })
            })
            .await?;
        eprintln!("{}: {s:?}", m.name);
    }
    // While the server is down, the links keep trying with growing delays:
    // wait for two failed attempts each.
    for m in [&mut alice, &mut bob] {
        for _ in 0..2 {
            let s = m
                .wait_state("a failed attempt", |s| {
                    matches!(
                        s,
                        LinkState::Disconnected {
                            reason: DisconnectReason::ConnectFailed(_)
                        }
                    )
                })
                .await?;
            eprintln!("{}: {s:?}", m.name);
        }
    }
    // Emitted while the server is down: queued, and flushed after the reconnect.
    let probe_link = bob.link().clone();
    let probe = tokio::spawn(async move {
        probe_link
            .request::<_, TimeSyncReply>(&TimeSync { t0: 42.0 }, WAIT * 2)
            .await
    });

    // ---- restart on the same address over the same files
    let _server = TestServer::start_in(tmp.path(), &addr).await?;
    let dj = alice.user.id;
    for m in [&mut alice, &mut bob] {
        m.skipped.clear();
        m.wait_connected().await?;
        let state = m.wait_for("music-session-state").await?;
        let ServerEvent::MusicSessionState(state) = state.decode()? else {
            unreachable!()
        };
        let titles: Vec<_> = state.playlist.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["One", "Two"], "{}: persisted playlist", m.name);
        assert_eq!(
            state.controller_id,
            Some(dj),
            "{}: persisted controller",
            m.name
        );
        eprintln!(
            "{}: re-joined, state {:?} / controller {:?}",
            m.name, titles, state.controller_id
        );
    }
    let reply = probe.await??;
    assert_eq!(reply.t0, 42.0, "the queued time-sync was flushed and acked");
    drop(tmp);
    Ok(())
}

/// A loopback TCP proxy that forwards until told to stop; then it drops
/// everything in both directions and never closes a connection (a silent peer).
struct Proxy {
    addr: String,
    forwarding: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(upstream: String) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let forwarding = Arc::new(AtomicBool::new(true));
        let fwd = forwarding.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, fwd.clone()));
                tokio::spawn(pump(sr, cw, fwd.clone()));
            }
        });
        Ok(Self { addr, forwarding })
    }

    fn set_forwarding(&self, on: bool) {
        self.forwarding.store(on, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    fwd: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if !fwd.load(Ordering::SeqCst) {
            if n == 0 {
                // A silent peer never closes: hold `to` open until the test ends.
                std::future::pending::<()>().await;
            }
            continue; // swallow
        }
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

// Short enough for a quick test, long enough that a loaded CI box answers every
// ping in time before the proxy goes silent (300 ms flaked once under load).
const PING_INTERVAL_MS: u64 = 1000;
const PING_TIMEOUT_MS: u64 = 1000;

async fn silent_peer(server_url: &str, seed: u64) -> Result<()> {
    let mut alice = Member::register(server_url, "alice").await?;
    let upstream = server_url.trim_start_matches("http://").to_string();
    let proxy = Proxy::start(upstream).await?;
    let via_proxy = format!("http://{}", proxy.addr);
    let cfg = alice
        .config(&via_proxy, seed)?
        .reconnect(fast_policy())
        .connect_timeout(Duration::from_secs(2));
    alice.open(cfg)?;
    let connected = alice
        .wait_state("Connected", |s| matches!(s, LinkState::Connected { .. }))
        .await?;
    let LinkState::Connected {
        ping_interval,
        ping_timeout,
        ..
    } = connected
    else {
        unreachable!()
    };
    let limit = ping_interval + ping_timeout;
    eprintln!("server says pingInterval {ping_interval:?}, pingTimeout {ping_timeout:?}");

    proxy.set_forwarding(false);
    let stopped = tokio::time::Instant::now();
    // Generous bound: ten times the protocol's limit, plus slack for a slow box.
    let bound = limit * 10 + Duration::from_secs(5);
    let dead = alice
        .wait_state_within("Dead", bound, |s| matches!(s, LinkState::Dead { .. }))
        .await?;
    let measured = stopped.elapsed();
    println!(
        "link declared dead {measured:?} after the proxy went silent (pingInterval + pingTimeout = {limit:?}); {dead:?}"
    );

    // The link recovers by itself once the path works again.
    proxy.set_forwarding(true);
    alice
        .wait_state("Connected again", |s| {
            matches!(s, LinkState::Connected { .. })
        })
        .await?;
    alice.link().close().await?;
    Ok(())
}

#[tokio::test]
async fn silent_peer_is_declared_dead_node_reference_server() {
    let seed = seed();
    let server = RefServer::start(Some((PING_INTERVAL_MS, PING_TIMEOUT_MS)))
        .await
        .expect("ref-server");
    if let Err(e) = silent_peer(&server.url, seed).await {
        panic!("failed (seed {seed}): {e:?}");
    }
}

#[tokio::test]
async fn silent_peer_is_declared_dead_jamz_server() {
    let seed = seed();
    let server = TestServer::start_with_args(&[
        "--ping-interval-ms",
        &PING_INTERVAL_MS.to_string(),
        "--ping-timeout-ms",
        &PING_TIMEOUT_MS.to_string(),
    ])
    .await
    .expect("jamz-server");
    if let Err(e) = silent_peer(&server.url, seed).await {
        panic!("failed (seed {seed}): {e:?}");
    }
}

/// An hour offline is thousands of GPS fixes. With location updates marked
/// latest-only, the fixes queued while the server is down are one (the newest),
/// and a playlist change the DJ made in between still reaches the server: with
/// the plain bounded queue (256) the 600 fixes around it would have pushed it out.
#[tokio::test]
async fn offline_fixes_do_not_crowd_a_playlist_change_out_of_the_queue() -> Result<()> {
    let seed = seed();
    let mut server = TestServer::start().await?;
    let base = server.url.clone();
    let mut alice = Member::register(&base, "alice").await?;
    let group = alice.rest.create_group("convoy", None).await?;
    let sid = alice.rest.session_for_group(&group.id).await?.id;
    let cfg = alice
        .config(&base, seed)?
        .reconnect(fast_policy())
        .latest_only(["location-update"]);
    alice.enter(cfg, &sid).await?;
    alice.take_control(&sid)?;
    alice.wait_for("music-controller-changed").await?;
    alice
        .rest
        .append_track(&sid, &track("One", "https://example.test/1.mp3"))
        .await?;
    let before = alice
        .rest
        .append_track(&sid, &track("Two", "https://example.test/2.mp3"))
        .await?;

    server.kill9().await?;
    let tmp = server.take_dir().context("temporary dir")?;
    let addr = server.addr.clone();
    alice
        .wait_state("Disconnected", |s| {
            matches!(s, LinkState::Disconnected { .. } | LinkState::Dead { .. })
        })
        .await?;
    let fix = |i: usize| LocationUpdate {
        session_id: sid.clone(),
        latitude: 47.0 + i as f64 * 1e-4,
        longitude: 8.5,
        accuracy: None,
        speed: Some(25.0),
        heading: None,
        timestamp: 1.0e12 + i as f64 * 1000.0,
    };
    for i in 0..300 {
        alice.link().send(&fix(i))?;
    }
    let reordered: Vec<Track> = before.iter().rev().cloned().collect();
    alice.link().send(&PlaylistUpdate {
        session_id: sid.clone(),
        playlist: reordered,
    })?;
    for i in 300..600 {
        alice.link().send(&fix(i))?;
    }

    let _server = TestServer::start_in(tmp.path(), &addr).await?;
    alice.wait_connected().await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let playlist = alice
            .rest
            .session_for_group(&group.id)
            .await?
            .music
            .playlist;
        let titles: Vec<_> = playlist.iter().map(|t| t.title.clone()).collect();
        let latest = alice.rest.latest_locations(&group.id).await?;
        let lat = latest
            .iter()
            .find(|l| l.user_id == alice.user.id)
            .map(|l| l.latitude);
        if titles == ["Two", "One"] && lat == Some(fix(599).latitude) {
            eprintln!("after the reconnect: playlist {titles:?}, newest fix {lat:?}");
            break;
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "the offline change was lost (seed {seed}): playlist {titles:?}, newest fix {lat:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tmp);
    Ok(())
}

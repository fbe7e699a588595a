//! Relayed control-event latency and throughput of a real `jamz-server` process:
//! N jamz-link sockets in M sessions on loopback, one DJ per session.
//!
//! ```text
//! cargo build --release -p jamz-server
//! cargo bench -p jamz-e2e --bench relay_latency            # defaults: 60 sockets, 10 sessions
//! JAMZ_BENCH_SOCKETS=200 JAMZ_BENCH_SESSIONS=20 cargo bench -p jamz-e2e --bench relay_latency
//! ```
//! Latency is measured on one clock (sender and receivers share the process):
//! from the DJ's emit to each listener's receipt of the relayed `music-seek`.
//!
//! `JAMZ_BENCH_SERVER=cluster` runs it on two processes sharing one fresh PostgreSQL
//! database and one Redis (deploy/scale-out.md; the services of scripts/env.d/postgres.sh
//! and redis.sh), the sockets of each session spread over both (the DJ on the first);
//! `postgres` on one process on PostgreSQL; `sqlite` (the default) on one process on
//! SQLite. The issue's figure, 1,000 sessions of 5 sockets:
//! ```text
//! JAMZ_BENCH_SOCKETS=5000 JAMZ_BENCH_SESSIONS=1000 JAMZ_BENCH_SERVER=cluster cargo bench -p jamz-e2e --bench relay_latency
//! ```
//! It also prints each server process's resident memory per socket it holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../crates/jamz-server/tests/support/postgres.rs"]
mod pg;

use jamz_e2e::bench::{env_usize, percentile};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use jamz_e2e::TestServer;
use jamz_link::{LinkEvent, LinkEvents, LinkState, RestClient, SocketClient, SocketConfig};
use jamz_proto::events::{ControlAction, JoinAudioSession, MusicControl, MusicTakeControl, names};
use tokio::sync::Mutex;

/// Events each DJ sends in the paced latency phase, and how far apart: slow
/// enough that queues stay empty, so the figure is the relay path itself.
const PACED_EVENTS: usize = 200;
const PACE: Duration = Duration::from_millis(10);
/// The most events per second all DJs together send in the paced phase: with many
/// sessions each DJ is paced slower (and sends fewer, at least `MIN_PACED_EVENTS`), their
/// starts spread over one pace, so that the figure stays the relay path's, not a queue's.
const PACED_RATE: f64 = 2_000.0;
const MIN_PACED_EVENTS: usize = 20;
/// Events each DJ sends back to back in the throughput phase, at most `BURST_TOTAL` in
/// all (at least 10 each): a socket's queue holds 2048 packets before the server drops.
const BURST_EVENTS: usize = 500;
const BURST_TOTAL: usize = 20_000;
/// Positions at or above this mark the burst phase.
const BURST_MARK: f64 = 1.0e6;
const WAIT: Duration = Duration::from_secs(120);
/// Sessions set up at once.
const SETUP_CONCURRENCY: usize = 16;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

struct Member {
    link: SocketClient,
    events: LinkEvents,
    user_id: i64,
}

async fn wait_for(events: &mut LinkEvents, name: &str) -> Result<serde_json::Value> {
    tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.recv().await {
            match ev {
                LinkEvent::Event { raw: m, .. } | LinkEvent::BadEvent { raw: m, .. }
                    if m.name == name =>
                {
                    return Ok(m.into_data());
                }
                LinkEvent::State(LinkState::Refused { message }) => bail!("refused: {message}"),
                _ => {}
            }
        }
        bail!("link ended while waiting for {name}")
    })
    .await
    .with_context(|| format!("timed out waiting for {name}"))?
}

#[tokio::main]
async fn main() -> Result<()> {
    let sockets = env_usize("JAMZ_BENCH_SOCKETS", 60);
    let sessions = env_usize("JAMZ_BENCH_SESSIONS", 10).max(1);
    let per_session = (sockets / sessions).max(2);
    let mode = std::env::var("JAMZ_BENCH_SERVER").unwrap_or_else(|_| "sqlite".into());
    let limits = bench_limits(sockets);
    let (servers, _dir) = start_servers(&mode, &limits).await?;
    let server = &servers[0];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    println!(
        "relay_latency: {} sockets in {sessions} sessions ({per_session} per session, 1 DJ each), {mode}: {}",
        per_session * sessions,
        urls.join(" + ")
    );

    // Accounts, groups and sessions over REST, several sessions at once (the server
    // hashes passwords on as many threads as there are cores).
    let setup = Instant::now();
    let mut rest_done = futures_util::stream::iter((0..sessions).map(|s| {
        let url = server.url.clone();
        async move { session_over_rest(&url, s, per_session).await }
    }))
    .buffer_unordered(SETUP_CONCURRENCY);
    let mut planned = Vec::with_capacity(sessions);
    while let Some(r) = rest_done.next().await {
        planned.push(r?);
    }
    drop(rest_done);
    println!(
        "  {sessions} sessions of {per_session} accounts over REST in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    // Memory per socket is what the sockets add: the REST work before (password hashing
    // above all) leaves the allocator holding memory that no socket uses.
    let before: Vec<Option<u64>> = servers
        .iter()
        .map(|s| s.child.id().and_then(rss_kib))
        .collect();

    let setup = Instant::now();
    let mut joined = futures_util::stream::iter(planned.into_iter().map(|p| {
        let urls = urls.clone();
        async move { join_session(&urls, p).await }
    }))
    .buffer_unordered(SETUP_CONCURRENCY);
    let mut rooms = Vec::with_capacity(sessions);
    while let Some(r) = joined.next().await {
        rooms.push(r?);
    }
    drop(joined);
    println!(
        "  {} sockets joined, a DJ in each session, in {:.1} s",
        per_session * sessions,
        setup.elapsed().as_secs_f64()
    );

    for (s, before) in servers.iter().zip(before) {
        let held = per_session * sessions / servers.len();
        if let (Some(kib), Some(before)) = (s.child.id().and_then(rss_kib), before) {
            println!(
                "  {}: resident {:.1} MiB ({:.1} MiB before the sockets), {:.1} KiB per socket ({held} sockets)",
                s.url,
                kib as f64 / 1024.0,
                before as f64 / 1024.0,
                kib.saturating_sub(before) as f64 / held.max(1) as f64
            );
        }
    }

    let pace = PACE.max(Duration::from_secs_f64(sessions as f64 / PACED_RATE));
    let paced_events = (PACED_EVENTS as f64 * PACE.as_secs_f64() / pace.as_secs_f64())
        .round()
        .clamp(MIN_PACED_EVENTS as f64, PACED_EVENTS as f64) as usize;
    let burst_events = (BURST_TOTAL / sessions.max(1)).clamp(10, BURST_EVENTS);
    // Listeners record the latency of every relayed event.
    let latencies = Arc::new(Mutex::new(Vec::<f64>::with_capacity(
        sessions * per_session * paced_events,
    )));
    let burst_done = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut listeners = Vec::new();
    let mut djs = Vec::new();
    for (session_id, members) in rooms {
        let mut it = members.into_iter();
        let dj = it.next().context("a DJ")?;
        djs.push((session_id, dj));
        for mut m in it {
            let latencies = latencies.clone();
            let burst_done = burst_done.clone();
            listeners.push(tokio::spawn(async move {
                let (mut paced, mut burst) = (0, 0);
                while paced < paced_events || burst < burst_events {
                    let Some(ev) = m.events.recv().await else {
                        break;
                    };
                    let LinkEvent::Event { raw: msg, .. } = ev else {
                        continue;
                    };
                    if msg.name != names::MUSIC_SEEK {
                        continue;
                    }
                    let received = now_ms();
                    let data = msg.data();
                    let sent = data["timestamp"].as_f64().unwrap_or(received);
                    if data["position"].as_f64().unwrap_or(0.0) >= BURST_MARK {
                        burst += 1;
                    } else {
                        paced += 1;
                        latencies.lock().await.push(received - sent);
                    }
                }
                burst_done.lock().await.push(Instant::now());
                m.link
            }));
        }
    }

    // Phase 1: paced events, every DJ at once, their starts spread over one pace.
    let mut senders = Vec::new();
    let djs_n = djs.len().max(1) as u32;
    for (k, (session_id, dj)) in djs.iter().enumerate() {
        let (link, session_id) = (dj.link.clone(), session_id.clone());
        let start = tokio::time::Instant::now() + pace * k as u32 / djs_n;
        senders.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(start, pace);
            for i in 0..paced_events {
                tick.tick().await;
                let ev = MusicControl {
                    session_id: session_id.clone(),
                    action: ControlAction::Seek,
                    position: i as f64,
                    track: None,
                    timestamp: now_ms(),
                };
                link.send(&ev)?;
            }
            Ok::<_, jamz_link::LinkError>(())
        }));
    }
    for s in senders {
        s.await??;
    }
    // Phase 2: bursts.
    let burst_start = Instant::now();
    for (session_id, dj) in &djs {
        for i in 0..burst_events {
            dj.link.send(&MusicControl {
                session_id: session_id.clone(),
                action: ControlAction::Seek,
                position: BURST_MARK + i as f64,
                track: None,
                timestamp: now_ms(),
            })?;
        }
    }
    for l in listeners {
        tokio::time::timeout(WAIT, l)
            .await
            .context("listeners did not get every event")??;
    }
    let last = burst_done
        .lock()
        .await
        .iter()
        .max()
        .copied()
        .unwrap_or(burst_start);
    let burst_secs = last.duration_since(burst_start).as_secs_f64();

    let mut lat = latencies.lock().await.clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let listeners_n = sessions * (per_session - 1);
    println!(
        "paced phase: {} deliveries ({paced_events} events per DJ, every {} ms)",
        lat.len(),
        pace.as_millis()
    );
    println!(
        "  relayed control-event latency: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let deliveries = (listeners_n * burst_events) as f64;
    println!("burst phase: {burst_events} events per DJ back to back");
    println!(
        "  {:.0} events/s relayed by the server ({:.0} deliveries/s to {listeners_n} listeners) in {:.3} s",
        (sessions * burst_events) as f64 / burst_secs,
        deliveries / burst_secs,
        burst_secs
    );
    Ok(())
}

/// One session's accounts, group and session, made over REST.
struct Planned {
    session_id: String,
    users: Vec<jamz_proto::rest::AuthResponse>,
}

async fn session_over_rest(url: &str, s: usize, per_session: usize) -> Result<Planned> {
    let mut users = Vec::with_capacity(per_session);
    let mut rests = Vec::with_capacity(per_session);
    for u in 0..per_session {
        let rest = RestClient::new(url)?;
        let name = format!("s{s}u{u}");
        let auth = rest
            .register(&name, &format!("{name}@bench.test"), "pw")
            .await
            .with_context(|| format!("registering {name}"))?;
        users.push(auth);
        rests.push(rest);
    }
    let group = rests[0].create_group(&format!("bench {s}"), None).await?;
    for auth in &users[1..] {
        rests[0].add_member(&group.id, &auth.user.username).await?;
    }
    let session = rests[0].session_for_group(&group.id).await?;
    Ok(Planned {
        session_id: session.id,
        users,
    })
}

/// Connects and joins a session's members (member u on process u mod n), and makes the
/// first the DJ.
async fn join_session(urls: &[String], p: Planned) -> Result<(String, Vec<Member>)> {
    let mut members = Vec::with_capacity(p.users.len());
    for (u, auth) in p.users.iter().enumerate() {
        let url = urls[u % urls.len()].clone();
        let (link, mut events) =
            SocketClient::connect(SocketConfig::new(url).token(auth.token.clone()))?;
        link.send(&JoinAudioSession {
            session_id: p.session_id.clone(),
            user_id: Some(auth.user.id),
            display_name: Some(auth.user.username.clone()),
        })?;
        wait_for(&mut events, names::MUSIC_SESSION_STATE).await?;
        members.push(Member {
            link,
            events,
            user_id: auth.user.id,
        });
    }
    members[0].link.send(&MusicTakeControl {
        session_id: p.session_id.clone(),
        user_id: Some(members[0].user_id),
    })?;
    for m in members.iter_mut() {
        wait_for(&mut m.events, names::MUSIC_CONTROLLER_CHANGED).await?;
    }
    Ok((p.session_id, members))
}

/// The caps of a public server (connections per address, logins and member lookups per
/// address) would refuse a load test from one address: raised to what it opens.
fn bench_limits(sockets: usize) -> Vec<String> {
    let n = (sockets * 2 + 64).to_string();
    [
        "--max-connections",
        &n,
        "--max-connections-per-address",
        &n,
        "--login-attempts-per-address",
        &n,
        "--login-attempts-per-account",
        &n,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The server set-up of `mode` (see the top of this file).
async fn start_servers(
    mode: &str,
    limits: &[String],
) -> Result<(Vec<TestServer>, Option<tempfile::TempDir>)> {
    let limits: Vec<&str> = limits.iter().map(String::as_str).collect();
    if mode == "sqlite" {
        return Ok((vec![TestServer::start_with_args(&limits).await?], None));
    }
    let admin = std::env::var("JAMZ_TEST_POSTGRES_URL")
        .context("JAMZ_TEST_POSTGRES_URL (source scripts/env.d/postgres.sh)")?;
    let db = pg::fresh_database(&admin).await;
    let dir = tempfile::tempdir()?;
    let db = std::ffi::OsStr::new(&db);
    match mode {
        "postgres" => {
            let s = TestServer::start_on_db(dir.path(), "127.0.0.1:0", db, &limits).await?;
            Ok((vec![s], Some(dir)))
        }
        "cluster" => {
            let redis = std::env::var("JAMZ_TEST_REDIS_URL")
                .context("JAMZ_TEST_REDIS_URL (source scripts/env.d/redis.sh)")?;
            let (a, b) = TestServer::start_pair_on_redis_with_args(
                dir.path(),
                db,
                &redis,
                "bench-secret-0123456789abcdef0123456789",
                &limits,
            )
            .await?;
            Ok((vec![a, b], Some(dir)))
        }
        other => bail!("JAMZ_BENCH_SERVER={other}: sqlite, postgres or cluster"),
    }
}

/// A process's resident memory (KiB), from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

//! Location sharing between real nodes on a real server, each car a replayed drive written
//! by the test: who travels together, the regroup point's ETAs, the falling-behind alert,
//! and a drive whose server goes away for a while without leaving a hole in its history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;

use jamz_geo::Fix;
use jamz_geo::fix::destination;
use jamz_geo::nmea::log_of;
use jamz_node::{
    LocationEvent, LocationSource, Node, NodeAuth, NodeCommand, NodeConfig, NodeEvent,
    Notification, RestClient, Tier,
};
use support::{StoppableServer, WAIT, next_matching, quit};

const START: (f64, f64) = (48.137, 11.575);
/// 2026-12-01T21:11:05Z, the drives' first fix.
const T0: f64 = 1_796_159_465_000.0;

/// A drive of one fix a second along `legs` of (seconds, speed m/s, heading degrees),
/// starting `behind_m` south of [`START`].
fn drive(behind_m: f64, legs: &[(u32, f64, f64)]) -> Vec<Fix> {
    let (mut lat, mut lon) = destination(START.0, START.1, 180.0, behind_m);
    let mut fixes = Vec::new();
    let mut t = T0;
    for &(secs, speed, heading) in legs {
        for _ in 0..secs {
            let mut f = Fix::at(lat, lon, t);
            f.speed = Some(speed);
            f.heading = Some(heading);
            fixes.push(f);
            (lat, lon) = destination(lat, lon, heading, speed);
            t += 1000.0;
        }
    }
    fixes
}

fn write_drive(dir: &Path, name: &str, fixes: &[Fix]) -> String {
    let path = dir.join(format!("{name}.nmea"));
    std::fs::write(&path, log_of(fixes)).unwrap();
    path.display().to_string()
}

/// A server with `names` registered (password `pw`) in one group: (url, group, server).
async fn server_with(dir: &Path, names: &[&str]) -> (String, String, StoppableServer) {
    let server = StoppableServer::start(dir, "127.0.0.1:0".parse().unwrap()).await;
    let url = server.url.clone();
    let owner = RestClient::new(&url).unwrap();
    owner
        .register(names[0], &format!("{}@example.test", names[0]), "pw")
        .await
        .unwrap();
    let group = owner.create_group("convoy", None).await.unwrap();
    for n in &names[1..] {
        RestClient::new(&url)
            .unwrap()
            .register(n, &format!("{n}@example.test"), "pw")
            .await
            .unwrap();
        owner.add_member(&group.id, n).await.unwrap();
    }
    (url, group.id, server)
}

fn car(url: &str, group: &str, dir: &Path, name: &str, replay: &str) -> NodeConfig {
    let auth = NodeAuth::Password {
        username: name.into(),
        password: "pw".into(),
    };
    let mut config = NodeConfig::new(url, auth, group);
    config.display_name = Some(format!("{name}'s car"));
    config.output = "null".parse().unwrap();
    config.cache_dir = Some(dir.join(format!("cache-{name}")));
    config.location = replay.parse::<LocationSource>().unwrap();
    config.share_location = true;
    config
}

fn location(e: &NodeEvent) -> Option<&LocationEvent> {
    match e {
        NodeEvent::Session(Notification::Location(l)) => Some(l),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cars_together_one_leaves_at_a_junction_and_stops_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (url, group, _server) = server_with(dir.path(), &["ann", "bob", "cy"]).await;
    // Ann leads, Bob 60 m behind her, Cy 120 m behind; all north at 20 m/s for 150 s.
    // Cy then turns east at the junction for 30 s and stops; Ann and Bob go on north.
    let north = (150, 20.0, 0.0);
    let ann = drive(0.0, &[north, (250, 20.0, 0.0)]);
    let bob = drive(60.0, &[north, (250, 20.0, 0.0)]);
    let cy = drive(120.0, &[north, (30, 20.0, 90.0), (220, 0.0, 90.0)]);
    // Ten times the recorded pace: the drive takes 40 s.
    let spec =
        |name: &str, fixes: &[Fix]| format!("replay:{}@10", write_drive(dir.path(), name, fixes));
    let (spec_a, spec_b, spec_c) = (spec("ann", &ann), spec("bob", &bob), spec("cy", &cy));
    let window_ms = 3_000.0;
    let with_window = |mut c: NodeConfig| {
        c.location_rules.convoy.together_window_ms = window_ms;
        c
    };
    let mut a = Node::start(with_window(car(&url, &group, dir.path(), "ann", &spec_a)))
        .await
        .unwrap();
    let mut b = Node::start(with_window(car(&url, &group, dir.path(), "bob", &spec_b)))
        .await
        .unwrap();
    let c = Node::start(with_window(car(&url, &group, dir.path(), "cy", &spec_c)))
        .await
        .unwrap();
    let (ua, ub, uc) = (a.user_id(), b.user_id(), c.user_id());

    // All three together (as Ann's node sees it).
    let all = {
        let mut v = vec![ua, ub, uc];
        v.sort();
        v
    };
    next_matching(&mut a, "all three together", |e| {
        matches!(location(e), Some(LocationEvent::Together { groups }) if groups == &vec![all.clone()])
    })
    .await;
    // Ann sets a meeting point 9 km north of the start.
    let (plat, plon) = destination(START.0, START.1, 0.0, 9_000.0);
    a.send(NodeCommand::Regroup {
        latitude: plat,
        longitude: plon,
    })
    .unwrap();

    // On Bob's node: the regroup point arrives, Ann's ETA falls, Cy splits off, then falls
    // behind.
    let mut ann_etas: Vec<f64> = Vec::new();
    // Bob's node may see Ann and Bob together before Cy's first fixes arrive.
    let mut seen_all = false;
    let mut split = false;
    let mut behind = None;
    tokio::time::timeout(WAIT * 2, async {
        while behind.is_none() || ann_etas.len() < 3 || !split {
            let ev = b.next_event().await.expect("bob's node stopped");
            match location(&ev) {
                Some(LocationEvent::Regroup { etas, set_by, .. }) => {
                    assert_eq!(*set_by, ua);
                    if let Some(eta) = etas.iter().find(|e| e.user_id == ua).and_then(|e| e.eta_s) {
                        ann_etas.push(eta);
                    }
                }
                Some(LocationEvent::Together { groups }) => {
                    eprintln!("bob sees together: {groups:?}");
                    let mut pair = vec![ua, ub];
                    pair.sort();
                    if groups == &vec![all.clone()] {
                        seen_all = true;
                    } else if seen_all && groups == &vec![pair] {
                        split = true;
                    }
                }
                Some(LocationEvent::Location {
                    user_id, together, ..
                }) if *user_id == uc && split => {
                    assert!(together.is_empty(), "cy left: {together:?}");
                }
                Some(LocationEvent::FallingBehind { user_id, behind_m }) => {
                    eprintln!("falling behind: {user_id} by {behind_m:.0} m");
                    assert_eq!(*user_id, uc, "only cy stops");
                    assert!(split, "cy falls behind after leaving the group");
                    behind = Some(*behind_m);
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("no split ({split}), ETAs {ann_etas:?} or alert ({behind:?}) in time")
    });
    eprintln!("ann's ETAs to the regroup point: {ann_etas:.0?}");
    assert!(
        ann_etas.windows(2).all(|w| w[1] < w[0]),
        "ETAs fall as ann approaches: {ann_etas:?}"
    );
    assert!(behind.unwrap() > 2_000.0);
    for n in [a, b, c] {
        quit(n).await;
    }
    // Ann's node starts again: the last positions it kept come first, for the map.
    let mut again = car(&url, &group, dir.path(), "ann", "manual");
    again.share_location = false;
    let mut a = Node::start(again).await.unwrap();
    let ev = next_matching(&mut a, "the kept positions", |e| {
        matches!(e, NodeEvent::LastPositions { .. })
    })
    .await;
    let NodeEvent::LastPositions { positions } = ev else {
        unreachable!()
    };
    let users: Vec<i64> = positions.iter().map(|p| p.user_id).collect();
    assert_eq!(users, all, "everyone's last position was kept");
    quit(a).await;
}

/// This car's own `location` events (the fixes the sharing rule produced) until `pred`
/// accepts an event; panics after [`WAIT`].
async fn collect_until(
    node: &mut Node,
    own: &mut Vec<(f64, f64)>,
    what: &str,
    pred: impl Fn(&NodeEvent, &[(f64, f64)]) -> bool,
) {
    let me = node.user_id();
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = node.next_event().await.expect("node stopped");
            if let Some(LocationEvent::Location {
                user_id,
                latitude,
                longitude,
                ..
            }) = location(&ev)
                && *user_id == me
            {
                own.push((*latitude, *longitude));
            }
            if pred(&ev, own) {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} in time ({} fixes so far)", own.len()));
}

fn tier_is(e: &NodeEvent, want: Tier) -> bool {
    matches!(e, NodeEvent::Session(Notification::Tier { tier, .. }) if *tier == want)
}

/// The server's stored fixes of `user`.
fn history(db: &Path, user: i64) -> Vec<(f64, f64)> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let mut q = conn
        .prepare("SELECT latitude, longitude FROM locations WHERE user_id = ? ORDER BY id")
        .unwrap();
    q.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits (up to [`WAIT`]) until every one of `own` is in the server's history of `user`
/// (posted in the background); returns how many fixes it stores. The database is polled:
/// the server says nothing when a fix is stored.
async fn wait_all_stored(db: &Path, user: i64, own: &[(f64, f64)]) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stored = history(db, user);
        let lost = missing(own, &stored);
        if lost == 0 {
            return stored.len();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{lost} of {} fixes missing from the server's history",
            own.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn missing(own: &[(f64, f64)], stored: &[(f64, f64)]) -> usize {
    own.iter()
        .filter(|(la, lo)| {
            !stored
                .iter()
                .any(|(sa, so)| (sa - la).abs() < 1e-9 && (so - lo).abs() < 1e-9)
        })
        .count()
}

/// Ann's car on a drive north, its server stopped after `shared` fixes were shared, and
/// 8 more fixes taken offline.
struct DeadZone {
    node: Node,
    url: String,
    group: String,
    me: i64,
    /// This car's fixes as it reported them, in order.
    own: Vec<(f64, f64)>,
    /// How many of `own` came before the server stopped.
    offline_from: usize,
    /// Where the stopped server listened (a restart takes it again).
    addr: SocketAddr,
    /// The drive's last fix.
    last: (f64, f64),
}

async fn into_a_dead_zone(dir: &Path, shared: usize) -> DeadZone {
    let (url, group, server) = server_with(dir, &["ann"]).await;
    let addr = server.addr;
    // North at 15 m/s, 161 fixes: the rule shares every 4th (60 m), the last one too.
    let fixes = drive(0.0, &[(161, 15.0, 0.0)]);
    let last = fixes.last().map(|f| (f.latitude, f.longitude)).unwrap();
    let spec = format!("replay:{}@8", write_drive(dir, "ann", &fixes));
    let mut node = Node::start(car(&url, &group, dir, "ann", &spec))
        .await
        .unwrap();
    let me = node.user_id();
    let mut own = Vec::new();
    collect_until(&mut node, &mut own, "shared fixes", |_, own| {
        own.len() >= shared
    })
    .await;
    // The server goes away for part of the drive.
    server.stop().await;
    collect_until(&mut node, &mut own, "the offline tier", |e, _| {
        tier_is(e, Tier::Offline)
    })
    .await;
    let offline_from = own.len();
    collect_until(&mut node, &mut own, "fixes while offline", |_, own| {
        own.len() >= offline_from + 8
    })
    .await;
    DeadZone {
        node,
        url,
        group,
        me,
        own,
        offline_from,
        addr,
        last,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_with_the_server_away_leaves_no_hole_in_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let drive = into_a_dead_zone(dir.path(), 10).await;
    let DeadZone {
        mut node,
        me,
        mut own,
        offline_from,
        addr,
        last,
        ..
    } = drive;
    let server = StoppableServer::start(dir.path(), addr).await;
    collect_until(&mut node, &mut own, "the socket tier", |e, _| {
        tier_is(e, Tier::Socket)
    })
    .await;
    // (NMEA carries ten-thousandths of a minute: the replayed fix is within 0.2 m.)
    let at_end = |own: &[(f64, f64)]| {
        own.last().is_some_and(|&(la, lo)| {
            Fix::at(la, lo, 0.0).distance_to(&Fix::at(last.0, last.1, 0.0)) < 0.5
        })
    };
    if !at_end(&own) {
        collect_until(&mut node, &mut own, "the drive's last fix", |_, own| {
            at_end(own)
        })
        .await;
    }
    let shared = own.len();
    assert_eq!(shared, 41, "every 4th of 161 fixes");
    // Every fix the rule produced reaches the server's history (posted in the background).
    let stored = wait_all_stored(&dir.path().join("jamz.db"), me, &own).await;
    eprintln!(
        "{shared} fixes shared, {stored} stored ({} offline at least)",
        shared - offline_from
    );
    quit(node).await;
    server.stop().await;
}

/// The files this car keeps for fixes not yet delivered (`waiting-fixes-*.json`).
fn waiting_files(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("waiting-fixes-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixes_taken_offline_survive_a_restart_of_the_node_and_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let DeadZone {
        node,
        url,
        group,
        me,
        own,
        addr,
        ..
    } = into_a_dead_zone(dir.path(), 3).await;
    // The car is switched off in the dead zone: its waiting fixes are on disk.
    quit(node).await;
    let cache = dir.path().join("cache-ann");
    assert_eq!(
        waiting_files(&cache).len(),
        1,
        "the waiting fixes were kept"
    );

    // Back in coverage, the node starts again (with no source: no new fixes).
    let server = StoppableServer::start(dir.path(), addr).await;
    let mut again = car(&url, &group, dir.path(), "ann", "none");
    again.share_location = false;
    let node = Node::start(again).await.unwrap();
    // Every fix of the first run reaches the history, the offline ones from its file.
    wait_all_stored(&dir.path().join("jamz.db"), me, &own).await;
    quit(node).await;
    assert!(
        waiting_files(&cache).is_empty(),
        "delivered: nothing is kept any more"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_is_off_until_turned_on_and_off_is_seen_by_the_others_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, group, _server) = server_with(dir.path(), &["ann", "bob"]).await;
    let mut ann = car(&url, &group, dir.path(), "ann", "manual");
    ann.share_location = false;
    let mut a = Node::start(ann).await.unwrap();
    let mut b = Node::start(car(&url, &group, dir.path(), "bob", "manual"))
        .await
        .unwrap();
    let ua = a.user_id();
    let fix = |m: f64| {
        let (latitude, longitude) = destination(START.0, START.1, 0.0, m);
        NodeCommand::Location {
            latitude,
            longitude,
            speed: Some(15.0),
            heading: Some(0.0),
        }
    };
    // Both in the room before anything is shared: Bob hears Ann join.
    next_matching(&mut b, "ann in the session", |e| {
        matches!(e, NodeEvent::Session(Notification::Participants { participants }) if participants.iter().any(|p| p.user_id == ua))
    })
    .await;
    // Off: Ann's fix is shown on her node only.
    a.send(fix(0.0)).unwrap();
    next_matching(
        &mut a,
        "ann's own fix",
        |e| matches!(location(e), Some(LocationEvent::Location { user_id, .. }) if *user_id == ua),
    )
    .await;
    // On for an hour: the next fix reaches Bob.
    a.send(NodeCommand::ShareLocation {
        enabled: true,
        duration_s: Some(3600.0),
    })
    .unwrap();
    next_matching(&mut a, "sharing on", |e| {
        matches!(
            location(e),
            Some(LocationEvent::Sharing {
                enabled: true,
                until: Some(_),
                ..
            })
        )
    })
    .await;
    a.send(fix(100.0)).unwrap();
    let seen = next_matching(
        &mut b,
        "ann's shared fix",
        |e| matches!(location(e), Some(LocationEvent::Location { user_id, .. }) if *user_id == ua),
    )
    .await;
    let Some(LocationEvent::Location { latitude, .. }) = location(&seen) else {
        unreachable!()
    };
    let (want, _) = destination(START.0, START.1, 0.0, 100.0);
    assert!(
        (latitude - want).abs() < 1e-9,
        "bob got the shared fix, not the private one"
    );
    // Off: Bob is told at once and drops her marker.
    a.send(NodeCommand::ShareLocation {
        enabled: false,
        duration_s: None,
    })
    .unwrap();
    next_matching(
        &mut b,
        "ann's location-off",
        |e| matches!(location(e), Some(LocationEvent::LocationOff { user_id }) if *user_id == ua),
    )
    .await;
    // Nothing of hers after that. A regroup point she sets after a new fix travels the same
    // socket, handled and relayed in order: had the fix been sent, Bob would get it first.
    a.send(fix(300.0)).unwrap();
    next_matching(
        &mut a,
        "ann's own later fix",
        |e| matches!(location(e), Some(LocationEvent::Location { user_id, .. }) if *user_id == ua),
    )
    .await;
    a.send(NodeCommand::Regroup {
        latitude: START.0,
        longitude: START.1,
    })
    .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = b.next_event().await.expect("bob's node stopped");
            match location(&ev) {
                Some(LocationEvent::Location { user_id, .. }) => {
                    assert_ne!(*user_id, ua, "a fix of ann's reached bob after she stopped");
                }
                Some(LocationEvent::Regroup { set_by, .. }) if *set_by == ua => return,
                _ => {}
            }
        }
    })
    .await
    .expect("ann's regroup point never reached bob");
    quit(a).await;
    quit(b).await;
}

//! Two cars behind their own NAT link over the server-reflexive path only
//! (docs/node-control.md, "Peer mesh": `--ice-server`), and the mesh carries the DJ's
//! pause there once the server is dead. Behind NATs that map each destination apart
//! (`masquerade random`, as carrier-grade NATs do) the reflexive path cannot work, and the
//! cars link through a TURN relay (Debian's coturn on the public side) instead.
//!
//! The network (`unshare --net` for the public side, `ip netns` for the rest; `ip` from
//! iproute2 and `nft` from nftables: scripts/apt/platform.txt; needs root):
//! - the public side is this test's own namespace: a bridge at 10.99.0.1/24 where the
//!   server, a STUN server and a TURN server listen, and a default route to a namespace
//!   that forwards nothing, as the Internet swallows what is sent to a private address (a
//!   relay asked to check a car's host candidate must not get "network unreachable", on
//!   which coturn drops the allocation);
//! - each car `k` (1, 2) is a namespace with 192.168.k.2/24 whose default route is a NAT
//!   namespace: 192.168.k.1 towards the car, 10.99.0.1k on the bridge, masquerading
//!   (Linux's NAT: a mapping per source port, replies only from where the car sent to)
//!   and dropping what comes in unasked, as a home or mobile router does (an unasked
//!   datagram would otherwise take the car's port on the NAT and move its mapping).
//!
//! Neither NAT has a route to the other car's network, so the cars' host candidates can
//! never meet; only the addresses the STUN server saw (10.99.0.11 and 10.99.0.12, holes
//! punched by both sides' checks) can. Skipped with a printed reason when no namespace can
//! be made, unless `JAMZ_REQUIRE_NETNS=1` (as on CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod node_support;

use std::process::Command;

use anyhow::{Context, Result, bail};
use jamz_mesh::stun_responder::StunResponder;
use jamz_mesh::turn_server::TurnServerProcess;
use node_support::{NodeProc, World, click_track, track_id};
use serde_json::json;

const SETUP: &str = r#"
ip link set lo up
ip link add jzbr0 type bridge
ip addr add 10.99.0.1/24 dev jzbr0
ip link set jzbr0 up
exec "$@"
"#;

/// Car `k`'s network behind its NAT (`$1`: k, `$2`: the car's namespace, `$3`: the NAT's,
/// `$4`: the masquerade's flags: empty, or `random` for a mapping per destination).
const CAR_NETWORK: &str = r#"
k=$1 car=$2 nat=$3 flags=$4
ip netns add "$nat"
ip netns add "$car"
ip link add "jzpub$k" type veth peer name "jzwan$k" netns "$nat"
ip link set "jzpub$k" master jzbr0 up
ip -n "$nat" link set lo up
ip -n "$nat" addr add "10.99.0.1$k/24" dev "jzwan$k"
ip -n "$nat" link set "jzwan$k" up
ip -n "$nat" link add "jzlan$k" type veth peer name "jzeth$k" netns "$car"
ip -n "$nat" addr add "192.168.$k.1/24" dev "jzlan$k"
ip -n "$nat" link set "jzlan$k" up
ip -n "$car" link set lo up
ip -n "$car" addr add "192.168.$k.2/24" dev "jzeth$k"
ip -n "$car" link set "jzeth$k" up
ip -n "$car" route add default via "192.168.$k.1"
ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1
printf 'table ip jamz_nat {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname "jzwan%s" masquerade %s\n }\n chain in {\n  type filter hook input priority 0;\n  iifname "jzwan%s" ct state new drop\n }\n}\n' "$k" "$flags" "$k" | ip netns exec "$nat" nft -f -
"#;

/// The public side's default route (`$1`: a namespace that forwards nothing).
const NOWHERE: &str = r#"
ns=$1
ip netns add "$ns"
ip link add jzvoid type veth peer name jzvoid netns "$ns"
ip addr add 10.98.0.1/30 dev jzvoid
ip link set jzvoid up
ip -n "$ns" addr add 10.98.0.2/30 dev jzvoid
ip -n "$ns" link set jzvoid up
ip route add default via 10.98.0.2
"#;

/// The named namespaces this test made, deleted when dropped (their links go with them).
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn sh(script: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("sh")
        .args(["-ec", script, "sh"])
        .args(args)
        .output()
        .context("run sh")?;
    if !out.status.success() {
        bail!(
            "{script}\nfailed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How the cars' NATs map and what the cars are given.
#[derive(Clone, Copy, PartialEq)]
enum Nat {
    /// A mapping per source port (Linux's masquerade): a STUN server is enough.
    PerSource,
    /// A mapping per destination (`masquerade random`): only a TURN relay links.
    PerDestination,
}

/// Car `k`'s namespaces: (car, nat).
fn car_network(k: usize, nat_kind: Nat, made: &mut Namespaces) -> Result<(String, String)> {
    let tag = std::process::id();
    let (car, nat) = (format!("jzcar{k}-{tag}"), format!("jznat{k}-{tag}"));
    made.0.push(car.clone());
    made.0.push(nat.clone());
    let flags = match nat_kind {
        Nat::PerSource => "",
        Nat::PerDestination => "random",
    };
    sh(CAR_NETWORK, &[&k.to_string(), &car, &nat, flags])?;
    Ok((car, nat))
}

#[test]
fn two_cars_behind_their_own_nat_link_over_the_reflexive_path_and_follow_the_dj() {
    const NAME: &str =
        "two_cars_behind_their_own_nat_link_over_the_reflexive_path_and_follow_the_dj";
    jamz_e2e::run_in_network_namespace(NAME, SETUP, || behind_nat(Nat::PerSource));
}

#[test]
fn two_cars_behind_nats_that_map_each_destination_apart_link_through_a_turn_relay() {
    const NAME: &str =
        "two_cars_behind_nats_that_map_each_destination_apart_link_through_a_turn_relay";
    jamz_e2e::run_in_network_namespace(NAME, SETUP, || behind_nat(Nat::PerDestination));
}

async fn behind_nat(nat_kind: Nat) -> Result<()> {
    if nat_kind == Nat::PerDestination && jamz_mesh::turn_server::binary().is_none() {
        assert!(
            std::env::var_os("JAMZ_REQUIRE_COTURN").is_none(),
            "JAMZ_REQUIRE_COTURN is set but turnserver is not installed (scripts/apt/mesh.txt)"
        );
        eprintln!("skipped: turnserver is not installed (apt-get install coturn)");
        return Ok(());
    }
    let mut made = Namespaces(Vec::new());
    let nowhere = format!("jzvoid-{}", std::process::id());
    made.0.push(nowhere.clone());
    sh(NOWHERE, &[&nowhere])?;
    let (car1, nat1) = car_network(1, nat_kind, &mut made)?;
    let (car2, nat2) = car_network(2, nat_kind, &mut made)?;
    // No host path: neither NAT routes to the other car's network.
    for (nat, other) in [(&nat1, "192.168.2.2"), (&nat2, "192.168.1.2")] {
        let route = Command::new("ip")
            .args(["-n", nat, "route", "get", other])
            .output()?;
        assert!(
            !route.status.success(),
            "{nat} has a route to {other}: {}",
            String::from_utf8_lossy(&route.stdout)
        );
    }

    let mut world = World::new_bound(2, "10.99.0.1:0", &[]).await?;
    let url = world.server.url.clone();
    let stun = StunResponder::start_on("10.99.0.1:0".parse()?)?;
    let mut ice = vec!["--ice-server".to_owned(), stun.url()];
    let turn = match nat_kind {
        Nat::PerSource => None,
        Nat::PerDestination => {
            let turn = TurnServerProcess::start("10.99.0.1".parse()?, "car", "s3cret@car")
                .context("a TURN server (coturn: scripts/apt/mesh.txt)")?;
            ice.push("--ice-server".to_owned());
            ice.push(format!("turn:car:s3cret%40car@{}", turn.address));
            Some(turn)
        }
    };
    let ice: Vec<&str> = ice.iter().map(String::as_str).collect();
    let mut nodes: Vec<NodeProc> = Vec::new();
    for (i, car) in [&car1, &car2].into_iter().enumerate() {
        let mut n = world.node_in_netns(car, i, &url, "null", &ice).await?;
        n.wait_event("ready", |_| true).await?;
        nodes.push(n);
    }
    // The STUN server saw each car at its NAT's public address, not its own.
    let asked =
        tokio::task::block_in_place(|| stun.wait_askers(2, std::time::Duration::from_secs(30)));
    eprintln!("the STUN server was asked from {asked:?}");
    let seen: Vec<String> = asked.iter().map(|a| a.ip().to_string()).collect();
    assert!(
        seen.contains(&"10.99.0.11".to_owned()) && seen.contains(&"10.99.0.12".to_owned()),
        "the cars are seen at their NATs' addresses: {asked:?}"
    );
    if let Err(e) = world.wait_linked(&mut nodes, 2).await {
        bail!(
            "{e}\nthe TURN server's log:\n{}",
            turn.as_ref()
                .map(TurnServerProcess::log)
                .unwrap_or_default()
        );
    }
    let path = match nat_kind {
        Nat::PerSource => "direct",
        Nat::PerDestination => "relay",
    };
    for n in nodes.iter_mut() {
        let s = n.status().await?;
        eprintln!("{}: peers {} tier {}", n.name, s["peers"], s["tier"]);
        assert_eq!(s["peers"], 1, "{}: {s}", n.name);
        let told = n.wait_event("peer", |v| v["path"].is_string()).await?;
        eprintln!("{}: {told}", n.name);
        assert_eq!(
            told["path"],
            path,
            "{}: {told}\n{}",
            n.name,
            turn.as_ref()
                .map(TurnServerProcess::log)
                .unwrap_or_default()
        );
    }

    // The DJ plays; the server dies; the DJ's pause reaches the other car through the NATs.
    let track = world.dir.path().join("clicks.wav");
    click_track(&track, 30.0, 1.0)?;
    let dj = world.user_id(0);
    let (first, rest) = nodes.split_first_mut().context("two nodes")?;
    let follower = &mut rest[0];
    first.take_control(dj).await?;
    let pl = first.add(&track, 1).await?;
    let id = track_id(&pl, 0)?;
    follower.wait_playlist(1).await?;
    first
        .send(json!({"cmd":"play","track":id,"position":0.0}))
        .await?;
    follower.wait_position(&id, 1.0).await?;
    first.clear();
    follower.clear();
    world.server.kill9().await?;
    for n in [&mut *first, &mut *follower] {
        let e = n.wait_event("tier", |v| v["tier"] == "mesh").await?;
        eprintln!("{}: {e}", n.name);
    }
    first.send(json!({"cmd":"pause"})).await?;
    let paused = follower
        .wait_event("playback", |v| v["playing"] == false)
        .await?;
    eprintln!("{}: {paused}", follower.name);
    for n in nodes {
        n.quit().await?;
    }
    // A node that quits releases its relay at once (not when its lifetime ends).
    if let Some(turn) = &turn {
        tokio::task::block_in_place(|| turn.wait_released(2, std::time::Duration::from_secs(20)))?;
    }
    drop(made);
    Ok(())
}

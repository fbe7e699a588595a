//! A hosting device on a hotspot with no internet: its network namespace has one
//! interface, 10.42.0.1/24 (the address a phone's hotspot gives itself), and no
//! default route. The hosting screen must still list that address.
//!
//! The test re-runs itself inside a network namespace it creates (`unshare --net`,
//! `ip` from iproute2: scripts/apt/platform.txt; needs root or user namespaces):
//! skipped with a printed reason when that cannot be done, unless
//! `JAMZ_REQUIRE_NETNS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

const TEST: &str = "a_hotspot_without_a_default_route_lists_its_address";

/// Makes the hotspot's interface (a veth pair: both ends up, one addressed) and
/// checks there is no default route before running the test binary again.
const SETUP: &str = r#"
ip link set lo up
ip link add hotspot0 type veth peer name car0
ip addr add 10.42.0.1/24 dev hotspot0
ip link set car0 up
ip link set hotspot0 up
if [ -n "$(ip route show default)" ]; then echo "a default route exists" >&2; exit 3; fi
exec "$@"
"#;

#[test]
fn a_hotspot_without_a_default_route_lists_its_address() {
    if jamz_e2e::in_network_namespace(TEST, SETUP) {
        let found = jamz_node::host::lan_addresses();
        let hotspot: IpAddr = "10.42.0.1".parse().unwrap();
        assert_eq!(found, vec![hotspot], "inside the hotspot namespace");
    }
}

#[test]
fn only_addresses_a_person_can_type_are_listed() {
    let ips: Vec<IpAddr> = [
        "127.0.0.1",
        "169.254.3.4",
        "0.0.0.0",
        "fe80::1",
        "2001:db8::1",
        "192.168.43.1",
        "10.42.0.1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let listed = jamz_node::host::lan_addresses_of(ips);
    let want: Vec<IpAddr> = vec![
        "10.42.0.1".parse().unwrap(),
        "192.168.43.1".parse().unwrap(),
    ];
    assert_eq!(listed, want);
}

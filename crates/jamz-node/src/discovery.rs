//! Hosted sessions on the local network (DNS-SD over mDNS; docs/protocol.md, "Finding
//! a hosted session"): a device that hosts announces its server, one that looks finds
//! it without a URL. The mDNS work is `mdns-sd`'s (its own thread); which session to
//! join is `jamz_sync::discovery`'s decision.
//!
//! Announcing and browsing use the device's non-loopback IPv4 interfaces: the address
//! another car types. `JAMZ_MDNS=off` turns both off (tests that host a session outside
//! a network namespace of their own must not speak on the machine's real network).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use jamz_sync::discovery::{
    FoundSession, GroupChoice, GroupPick, SessionList, SessionPick, pick_group, pick_session,
};
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::NodeAuth;
use crate::account::{CredentialStore, saved_client};
use crate::error::NodeError;

/// The DNS-SD service type of a TrafficJamz server.
pub const SERVICE_TYPE: &str = "_trafficjamz._tcp.local.";
/// `off` turns announcing and browsing off.
pub const MDNS_ENV: &str = "JAMZ_MDNS";
/// The TXT record's format (`txtvers`): a browser skips announcements of another.
pub const TXT_VERSION: &str = "1";
/// How long `jamz node --discover` listens by default, s.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// The longest instance name (one DNS label).
const MAX_NAME_BYTES: usize = 63;

/// Whether `JAMZ_MDNS=off` is set.
pub fn turned_off() -> bool {
    std::env::var(MDNS_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"))
}

fn mdns_error(doing: &str, e: mdns_sd::Error) -> NodeError {
    NodeError::Discovery(format!("{doing}: {e}"))
}

/// A daemon on the interfaces another car reaches: no loopback, IPv4 only.
fn daemon() -> Result<ServiceDaemon, NodeError> {
    let daemon = ServiceDaemon::new().map_err(|e| mdns_error("starting mDNS", e))?;
    daemon
        .disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6, IfKind::IPv6])
        .map_err(|e| mdns_error("choosing the mDNS interfaces", e))?;
    Ok(daemon)
}

/// This server announced on the local network until stopped (or dropped).
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
    name: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish()
    }
}

impl Announcer {
    /// Announces the server listening on `port` under `name` ("TrafficJamz on
    /// ann-laptop"); `only` restricts it to the interface with that address (a server
    /// bound to one address); `https`: the server speaks TLS (`scheme=https` in the TXT
    /// record, so that browsers build an `https://` URL). A name already taken on the
    /// network gets a suffix.
    pub fn start(
        name: &str,
        port: u16,
        only: Option<IpAddr>,
        https: bool,
    ) -> Result<Announcer, NodeError> {
        if turned_off() {
            return Err(NodeError::Discovery(format!(
                "announcing is turned off ({MDNS_ENV}=off)"
            )));
        }
        let name = instance_name(name);
        let daemon = daemon()?;
        let txt = [
            ("txtvers", TXT_VERSION),
            ("path", "/"),
            ("scheme", if https { "https" } else { "http" }),
            ("version", env!("CARGO_PKG_VERSION")),
        ];
        let mut info =
            ServiceInfo::new(SERVICE_TYPE, &name, &host_label(&name), (), port, &txt[..])
                .map_err(|e| mdns_error("describing the announcement", e))?
                .enable_addr_auto();
        if let Some(ip) = only.filter(|ip| !ip.is_unspecified()) {
            info.set_interfaces(vec![IfKind::Addr(ip)]);
        }
        let fullname = info.get_fullname().to_owned();
        daemon
            .register(info)
            .map_err(|e| mdns_error("announcing the session", e))?;
        tracing::info!(%fullname, port, "announcing the session on the local network");
        Ok(Announcer {
            daemon,
            fullname,
            name,
        })
    }

    /// The name announced (before any suffix a conflict adds).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Says goodbye on the network (others drop it at once) and stops.
    pub async fn stop(self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            // The goodbye goes out before the answer; bounded in case the daemon died.
            let _ = tokio::time::timeout(Duration::from_secs(2), done.recv_async()).await;
        }
        // Drop shuts the daemon down.
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// Listens for announced sessions for `wait`, or until `enough` says what was heard
/// suffices, and returns those heard.
///
/// Why not stop at the first answer plus a moment: the first query asks for unicast
/// answers (RFC 6762, 5.4), and on a device where several programs share port 5353 a
/// unicast answer reaches only one of them; the browser hears a missed host at its
/// next query, a second or more later.
pub async fn browse(
    wait: Duration,
    enough: impl Fn(&[FoundSession]) -> bool,
) -> Result<Vec<FoundSession>, NodeError> {
    if turned_off() {
        return Err(NodeError::Discovery(format!(
            "looking for sessions is turned off ({MDNS_ENV}=off)"
        )));
    }
    let daemon = daemon()?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| mdns_error("looking for sessions", e))?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut found: BTreeMap<String, FoundSession> = BTreeMap::new();
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv_async()).await {
            Ok(Ok(event)) => event,
            // Time is up, or the daemon stopped.
            Ok(Err(_)) | Err(_) => break,
        };
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let Some(session) = found_session(
                    &service.fullname,
                    service.get_port(),
                    &service.get_addresses_v4(),
                    service.get_property_val_str("txtvers"),
                    service.get_property_val_str("path"),
                    service.get_property_val_str("scheme"),
                ) else {
                    tracing::debug!(fullname = %service.fullname, "skipped an announcement");
                    continue;
                };
                tracing::info!(name = %session.name, url = %session.url, "found a session");
                found.insert(service.fullname.clone(), session);
                let heard: Vec<FoundSession> = found.values().cloned().collect();
                if enough(&heard) {
                    break;
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => {
                found.remove(&fullname);
            }
            _ => {}
        }
    }
    let _ = daemon.shutdown();
    Ok(found.into_values().collect())
}

/// Finds the session to join: `wanted` names one when several are announced. Without
/// a name it listens the whole `wait`, so that a choice among several is offered
/// rather than the quickest taken; with one, it stops when that one answers.
pub async fn find_session(wanted: Option<&str>, wait: Duration) -> Result<FoundSession, NodeError> {
    let found = browse(wait, |heard| {
        wanted.is_some() && matches!(pick_session(heard, wanted), SessionPick::Join(_))
    })
    .await?;
    let secs = wait.as_secs_f64();
    match pick_session(&found, wanted) {
        SessionPick::Join(s) => Ok(s.clone()),
        SessionPick::NoneFound => Err(NodeError::Discovery(format!(
            "no session found on this network within {secs} s (is the hosting device on the same network, and hosting?)"
        ))),
        SessionPick::Several(list) => Err(NodeError::Discovery(format!(
            "{} sessions found on this network: {}; choose one with --discover NAME",
            list.len(),
            SessionList(&list)
        ))),
        SessionPick::NoMatch { wanted } => {
            let all: Vec<&FoundSession> = found.iter().collect();
            Err(NodeError::Discovery(format!(
                "no session named \"{wanted}\" found on this network within {secs} s; found: {}",
                SessionList(&all)
            )))
        }
    }
}

/// How to join a found `server` when no group was named: logs in once (a password
/// becomes the token the node then uses) and takes the member's only group there.
pub async fn group_on(
    server: &str,
    auth: NodeAuth,
    store: &CredentialStore,
) -> Result<(NodeAuth, String), NodeError> {
    match auth {
        NodeAuth::Password { username, password } => {
            let rest = jamz_link::RestClient::new(server)?;
            let logged = rest.login(&username, &password).await?;
            let group = only_group(&rest, server).await?;
            let auth = NodeAuth::Token {
                token: logged.token,
                user_id: logged.user.id,
                username: logged.user.username,
            };
            Ok((auth, group))
        }
        NodeAuth::Saved => {
            let (rest, _) = saved_client(store, Some(server))?;
            Ok((NodeAuth::Saved, only_group(&rest, server).await?))
        }
        NodeAuth::Token {
            token,
            user_id,
            username,
        } => {
            let rest = jamz_link::RestClient::new(server)?;
            rest.set_token(Some(token.clone()));
            let group = only_group(&rest, server).await?;
            let auth = NodeAuth::Token {
                token,
                user_id,
                username,
            };
            Ok((auth, group))
        }
    }
}

/// The group whose session to join on a found server, when none was named: the
/// member's only group there.
async fn only_group(rest: &jamz_link::RestClient, server: &str) -> Result<String, NodeError> {
    let groups: Vec<GroupChoice> = rest
        .groups()
        .await?
        .into_iter()
        .map(|g| GroupChoice {
            id: g.id,
            name: g.name,
        })
        .collect();
    match pick_group(&groups) {
        GroupPick::Join(g) => Ok(g.id.clone()),
        GroupPick::NoGroup => Err(NodeError::Discovery(format!(
            "you are in no group on {server}: ask the host to add you"
        ))),
        GroupPick::Several(list) => {
            let names: Vec<String> = list
                .iter()
                .map(|g| format!("\"{}\" ({})", g.name, g.id))
                .collect();
            Err(NodeError::Discovery(format!(
                "you are in {} groups on {server}: {}; choose one with --group ID",
                list.len(),
                names.join(", ")
            )))
        }
    }
}

/// The name announced: a DNS label's length at most, cut on a character.
fn instance_name(name: &str) -> String {
    let name = name.trim();
    let name = if name.is_empty() { "TrafficJamz" } else { name };
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// The host name of the announcement's address records: letters, digits and dashes.
fn host_label(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label = label.trim_matches('-').to_owned();
    if label.is_empty() {
        label = "trafficjamz".to_owned();
    }
    label.truncate(MAX_NAME_BYTES - "-jamz".len());
    format!("{label}-jamz.local.")
}

/// A found announcement as a session to join, or `None` when it is not one this
/// device can use (another TXT format, an unknown scheme, no address another car
/// reaches). No `scheme` (an announcement of an earlier version) is `http`.
fn found_session(
    fullname: &str,
    port: u16,
    addresses: &std::collections::HashSet<Ipv4Addr>,
    txtvers: Option<&str>,
    path: Option<&str>,
    scheme: Option<&str>,
) -> Option<FoundSession> {
    if txtvers != Some(TXT_VERSION) {
        return None;
    }
    let scheme = match scheme.map(str::trim) {
        None | Some("http") => "http",
        Some("https") => "https",
        Some(_) => return None,
    };
    let instance = fullname.strip_suffix(&format!(".{SERVICE_TYPE}"))?;
    let ip = addresses
        .iter()
        .filter(|ip| !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified())
        .min()?;
    Some(FoundSession {
        name: unescape(instance),
        url: base_url(scheme, *ip, port, path.unwrap_or("/")),
    })
}

/// `SCHEME://IP:PORT` and the announced path (none for `/`).
fn base_url(scheme: &str, ip: Ipv4Addr, port: u16, path: &str) -> String {
    let path = path.trim().trim_end_matches('/');
    let path = if path.is_empty() || path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{ip}:{port}{path}")
}

/// An instance label as DNS-SD writes it (`\.` for a dot, `\\` for a backslash).
fn unescape(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// This device's name for an announcement ("TrafficJamz on ann-laptop").
pub fn device_announcement_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("TrafficJamz on {h}"),
        None => "TrafficJamz".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ips(list: &[&str]) -> HashSet<Ipv4Addr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_announcement_becomes_a_url_another_car_reaches() {
        let s = found_session(
            "Ann's car._trafficjamz._tcp.local.",
            5050,
            &ips(&["127.0.0.1", "169.254.1.1", "10.42.0.1", "192.168.43.1"]),
            Some("1"),
            Some("/"),
            None,
        )
        .unwrap();
        assert_eq!(s.name, "Ann's car");
        assert_eq!(s.url, "http://10.42.0.1:5050");
    }

    #[test]
    fn a_tls_server_is_announced_and_found_as_https() {
        let lan = ips(&["10.42.0.1"]);
        let found = |scheme| {
            found_session(
                "A._trafficjamz._tcp.local.",
                5050,
                &lan,
                Some("1"),
                None,
                scheme,
            )
        };
        assert_eq!(found(Some("https")).unwrap().url, "https://10.42.0.1:5050");
        assert_eq!(found(Some("http")).unwrap().url, "http://10.42.0.1:5050");
        // A scheme this version cannot speak is skipped, not guessed.
        assert!(found(Some("gopher")).is_none());
    }

    #[test]
    fn an_unusable_announcement_is_skipped() {
        let name = "x._trafficjamz._tcp.local.";
        let lan = ips(&["10.42.0.1"]);
        assert!(found_session(name, 1, &lan, Some("2"), None, None).is_none());
        assert!(found_session(name, 1, &lan, None, None, None).is_none());
        assert!(found_session(name, 1, &ips(&["127.0.0.1"]), Some("1"), None, None).is_none());
        assert!(found_session("x._other._tcp.local.", 1, &lan, Some("1"), None, None).is_none());
    }

    #[test]
    fn paths_and_escapes() {
        let ip: Ipv4Addr = "10.0.0.2".parse().unwrap();
        assert_eq!(base_url("http", ip, 80, "/"), "http://10.0.0.2:80");
        assert_eq!(base_url("http", ip, 80, "jamz/"), "http://10.0.0.2:80/jamz");
        assert_eq!(
            base_url("https", ip, 443, "/a/b"),
            "https://10.0.0.2:443/a/b"
        );
        assert_eq!(unescape(r"Ann\.s car\\x"), r"Ann.s car\x");
    }

    #[test]
    fn names_fit_one_dns_label() {
        let long = "é".repeat(40);
        let n = instance_name(&long);
        assert!(n.len() <= MAX_NAME_BYTES && long.starts_with(&n));
        assert_eq!(instance_name("  "), "TrafficJamz");
        assert_eq!(host_label("Ann's Car!"), "ann-s-car-jamz.local.");
        assert_eq!(host_label("ééé"), "trafficjamz-jamz.local.");
        assert!(host_label(&"a".repeat(100)).len() <= MAX_NAME_BYTES + ".local.".len());
    }
}

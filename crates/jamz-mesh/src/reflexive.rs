//! Server-reflexive candidates (RFC 8445 §5.1.1.2): each of the owner's sockets asks each
//! STUN server of the settings (a Binding request, RFC 8489) which address its datagrams
//! come from. A car behind a mobile network's NAT is reached at that address, not at its
//! host address, so every link advertises it as a `srflx` candidate. Sans-IO like the rest:
//! the requests are [`crate::Transmit`]s, the answers arrive through
//! [`crate::Mesh::handle_datagram`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, TransactionId};
use rtc::stun::xoraddr::XorMappedAddress;

/// Unanswered requests are sent again after this, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// An answered request is asked again after this: NATs forget idle mappings (RFC 4787
/// asks at least 2 minutes of them; many keep UDP mappings for 30 s only), and a car
/// changes networks.
const REFRESH: Duration = Duration::from_secs(25);

/// One socket's question to one server.
struct Ask {
    local: SocketAddr,
    server: SocketAddr,
    /// The outstanding request's id, if one is outstanding (a new one per send: only the
    /// current request's answer is taken; none once it is answered, so a datagram forged
    /// with a guessable id is not taken either).
    id: Option<[u8; 12]>,
    due: Option<Instant>,
    wait: Duration,
    mapped: Option<SocketAddr>,
}

/// What an answer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Learned {
    pub base: SocketAddr,
    pub mapped: SocketAddr,
}

/// Why a datagram from a STUN server was not an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAnswer {
    /// Not from a server we asked, or not a response to an outstanding request.
    NotOurs,
    /// From a server we asked, with the outstanding id, but unusable.
    Bad(String),
}

/// The questions of one mesh.
pub(crate) struct Gatherer {
    asks: Vec<Ask>,
}

impl Gatherer {
    /// Each local socket asks each server (same address family only).
    pub(crate) fn new(locals: &[SocketAddr], servers: &[SocketAddr]) -> Self {
        let asks = locals
            .iter()
            .flat_map(|l| servers.iter().map(move |s| (*l, *s)))
            .filter(|(l, s)| l.is_ipv4() == s.is_ipv4())
            .map(|(local, server)| Ask {
                local,
                server,
                id: None,
                due: None,
                wait: RETRY_FIRST,
                mapped: None,
            })
            .collect();
        Gatherer { asks }
    }

    /// The servers are now `servers` (their names resolved anew): a (socket, server) pair
    /// still there keeps its state (its mapping, its schedule), a new one is asked at once,
    /// one gone is no longer asked nor answered. Whether anything changed.
    pub(crate) fn set_servers(&mut self, locals: &[SocketAddr], servers: &[SocketAddr]) -> bool {
        let mut fresh = Gatherer::new(locals, servers);
        let mut changed = fresh.asks.len() != self.asks.len();
        for ask in &mut fresh.asks {
            match self
                .asks
                .iter()
                .position(|a| a.local == ask.local && a.server == ask.server)
            {
                Some(kept) => *ask = self.asks.swap_remove(kept),
                None => changed = true,
            }
        }
        self.asks = fresh.asks;
        changed
    }

    /// The next instant a request is due (`None`: nothing to ask). A request never sent
    /// is due at once: the mesh asks on creation.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.asks.iter().filter_map(|a| a.due).min()
    }

    /// The requests due at `now`: (from, to, datagram).
    pub(crate) fn requests(&mut self, now: Instant) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for ask in &mut self.asks {
            if ask.due.is_some_and(|d| d > now) {
                continue;
            }
            let mut msg = Message::new();
            let id = TransactionId::new();
            if let Err(e) = msg.build(&[Box::new(id), Box::new(BINDING_REQUEST)]) {
                // Building a header-only request cannot fail; if it ever does, ask later.
                tracing::warn!(server = %ask.server, "STUN request not built: {e}");
                ask.due = Some(now + RETRY_MAX);
                continue;
            }
            ask.id = Some(id.0);
            if ask.mapped.is_some() {
                ask.due = Some(now + REFRESH);
            } else {
                ask.due = Some(now + ask.wait);
                ask.wait = (ask.wait * 2).min(RETRY_MAX);
            }
            out.push((ask.local, ask.server, msg.raw));
        }
        out
    }

    /// Whether `source` is a server some socket asked.
    pub(crate) fn is_server(&self, source: SocketAddr) -> bool {
        self.asks.iter().any(|a| a.server == source)
    }

    /// A datagram from `source` to our socket `local`: an answer, or why not. `Ok(None)`:
    /// an answer that changed nothing.
    pub(crate) fn handle_answer(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        contents: &[u8],
    ) -> Result<Option<Learned>, NotAnswer> {
        let id: Option<[u8; 12]> = contents.get(8..20).and_then(|b| b.try_into().ok());
        let Some(ask) = self
            .asks
            .iter_mut()
            .find(|a| a.server == source && a.local == local && a.id.is_some() && a.id == id)
        else {
            return Err(NotAnswer::NotOurs);
        };
        let mut msg = Message::new();
        msg.unmarshal_binary(contents)
            .map_err(|e| NotAnswer::Bad(format!("not STUN: {e}")))?;
        if msg.typ != BINDING_SUCCESS {
            return Err(NotAnswer::Bad(format!(
                "a {} instead of a success",
                msg.typ
            )));
        }
        let mut xor = XorMappedAddress::default();
        xor.get_from(&msg)
            .map_err(|e| NotAnswer::Bad(format!("no XOR-MAPPED-ADDRESS: {e}")))?;
        let mapped = SocketAddr::new(xor.ip, xor.port);
        if mapped.port() == 0 || mapped.ip().is_unspecified() || mapped.ip().is_multicast() {
            return Err(NotAnswer::Bad(format!(
                "mapped address {mapped} is unusable"
            )));
        }
        // Answered: the next question is a refresh.
        ask.id = None;
        ask.wait = RETRY_FIRST;
        ask.due = Some(now + REFRESH);
        if ask.mapped == Some(mapped) {
            return Ok(None);
        }
        ask.mapped = Some(mapped);
        Ok(Some(Learned {
            base: local,
            mapped,
        }))
    }

    /// The distinct (base, mapped) pairs known, for a link made now.
    pub(crate) fn known(&self) -> Vec<Learned> {
        let mut known: Vec<Learned> = Vec::new();
        for a in &self.asks {
            if let Some(mapped) = a.mapped {
                let l = Learned {
                    base: a.local,
                    mapped,
                };
                if !known.contains(&l) {
                    known.push(l);
                }
            }
        }
        known
    }
}

/// A Binding success for `request` saying `mapped` (what a STUN server answers).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn answer(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
    let mut req = Message::new();
    req.unmarshal_binary(request).unwrap();
    let mut msg = Message::new();
    msg.build(&[
        Box::new(req.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        }),
    ])
    .unwrap();
    msg.raw
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn asks_each_server_from_each_socket_of_its_family_retries_then_refreshes() {
        let local = addr("127.0.0.1:4000");
        let server = addr("127.0.0.1:3478");
        let mut g = Gatherer::new(&[local], &[server, addr("[::1]:3478")]);
        let t0 = Instant::now();
        let first = g.requests(t0);
        assert_eq!(
            first.len(),
            1,
            "the IPv6 server is not asked from an IPv4 socket"
        );
        assert_eq!((first[0].0, first[0].1), (local, server));
        assert!(g.requests(t0).is_empty(), "not due again at once");
        // Unanswered: again after 0.5 s, then after 1 s.
        assert_eq!(g.poll_timeout(), Some(t0 + RETRY_FIRST));
        let second = g.requests(t0 + RETRY_FIRST);
        assert_eq!(second.len(), 1);
        assert_ne!(
            first[0].2[8..20],
            second[0].2[8..20],
            "a new transaction id"
        );
        assert_eq!(g.poll_timeout(), Some(t0 + RETRY_FIRST + 2 * RETRY_FIRST));
        // An answer to the superseded request is not expected.
        let late = answer(&first[0].2, addr("203.0.113.7:40000"));
        assert_eq!(
            g.handle_answer(t0, server, local, &late),
            Err(NotAnswer::NotOurs)
        );
        let now = t0 + Duration::from_secs(1);
        let mapped = addr("203.0.113.7:40000");
        let learned = g.handle_answer(now, server, local, &answer(&second[0].2, mapped));
        assert_eq!(
            learned,
            Ok(Some(Learned {
                base: local,
                mapped
            }))
        );
        assert_eq!(
            g.known(),
            vec![Learned {
                base: local,
                mapped
            }]
        );
        assert_eq!(g.poll_timeout(), Some(now + REFRESH));
        // Answered: the same answer again, or one with an all-zero id, is not expected.
        let again = answer(&second[0].2, addr("203.0.113.9:1"));
        assert_eq!(
            g.handle_answer(now, server, local, &again),
            Err(NotAnswer::NotOurs)
        );
        let mut zero = again.clone();
        zero[8..20].fill(0);
        assert_eq!(
            g.handle_answer(now, server, local, &zero),
            Err(NotAnswer::NotOurs)
        );
        // The refresh with the same answer changes nothing; a new mapping is learned.
        let refresh = g.requests(now + REFRESH);
        assert_eq!(
            g.handle_answer(now + REFRESH, server, local, &answer(&refresh[0].2, mapped)),
            Ok(None)
        );
        let moved = addr("203.0.113.7:40001");
        let refresh = g.requests(now + 2 * REFRESH);
        assert_eq!(
            g.handle_answer(
                now + 2 * REFRESH,
                server,
                local,
                &answer(&refresh[0].2, moved)
            ),
            Ok(Some(Learned {
                base: local,
                mapped: moved
            }))
        );
    }

    #[test]
    fn servers_resolved_anew_keep_what_stays_ask_what_is_new_and_forget_what_went() {
        let local = addr("127.0.0.1:4000");
        let (kept, gone, new) = (
            addr("127.0.0.1:3478"),
            addr("127.0.0.1:3479"),
            addr("127.0.0.1:3480"),
        );
        let mut g = Gatherer::new(&[local], &[kept, gone]);
        let t0 = Instant::now();
        let asked = g.requests(t0);
        let mapped = addr("203.0.113.7:40000");
        let to_kept = asked.iter().find(|r| r.1 == kept).unwrap();
        let to_gone = asked.iter().find(|r| r.1 == gone).unwrap().clone();
        assert!(
            g.handle_answer(t0, kept, local, &answer(&to_kept.2, mapped))
                .unwrap()
                .is_some()
        );
        assert!(!g.set_servers(&[local], &[gone, kept]), "the same servers");
        assert!(g.set_servers(&[local], &[kept, new]));
        // The new server is asked at once; the kept one keeps its mapping and schedule.
        let now = t0 + Duration::from_millis(10);
        let asked = g.requests(now);
        assert_eq!(
            asked.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec![new],
            "only the new server is due"
        );
        assert_eq!(
            g.known(),
            vec![Learned {
                base: local,
                mapped
            }]
        );
        // The server that went is no longer answered.
        assert!(!g.is_server(gone));
        assert_eq!(
            g.handle_answer(now, gone, local, &answer(&to_gone.2, mapped)),
            Err(NotAnswer::NotOurs)
        );
    }

    #[test]
    fn bad_answers_are_refused_with_a_reason() {
        let local = addr("127.0.0.1:4000");
        let server = addr("127.0.0.1:3478");
        let mut g = Gatherer::new(&[local], &[server]);
        let now = Instant::now();
        let req = g.requests(now).remove(0).2;
        // the right id, but truncated
        let mut truncated = answer(&req, addr("203.0.113.7:40000"));
        truncated.truncate(24);
        assert!(matches!(
            g.handle_answer(now, server, local, &truncated),
            Err(NotAnswer::Bad(_))
        ));
        // a success with no mapped address
        let mut bare = Message::new();
        let mut parsed = Message::new();
        parsed.unmarshal_binary(&req).unwrap();
        bare.build(&[Box::new(parsed.transaction_id), Box::new(BINDING_SUCCESS)])
            .unwrap();
        assert!(matches!(
            g.handle_answer(now, server, local, &bare.raw),
            Err(NotAnswer::Bad(_))
        ));
        // an unusable mapped address
        assert!(matches!(
            g.handle_answer(now, server, local, &answer(&req, addr("0.0.0.0:1"))),
            Err(NotAnswer::Bad(_))
        ));
        // from someone else
        assert_eq!(
            g.handle_answer(
                now,
                addr("127.0.0.1:9"),
                local,
                &answer(&req, addr("203.0.113.7:1"))
            ),
            Err(NotAnswer::NotOurs)
        );
        assert!(g.known().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics_on_datagrams_from_the_server(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
            keep_id in proptest::prelude::any::<bool>(),
        ) {
            let local = addr("127.0.0.1:4000");
            let server = addr("127.0.0.1:3478");
            let mut g = Gatherer::new(&[local], &[server]);
            let now = Instant::now();
            let req = g.requests(now).remove(0).2;
            let mut bytes = bytes;
            if keep_id && bytes.len() >= 20 {
                bytes[8..20].copy_from_slice(&req[8..20]);
            }
            let _ = g.handle_answer(now, server, local, &bytes);
        }
    }
}

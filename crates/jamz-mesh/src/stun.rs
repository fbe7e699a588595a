//! Just enough STUN (RFC 8489) to route a datagram to its peer connection: every link shares
//! the node's sockets, and a connectivity check from an address we have never sent to (a
//! browser hiding its host address behind an mDNS name) is only attributable by the ICE
//! username, `<our ufrag>:<their ufrag>`.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER_LEN: usize = 20;
const ATTR_USERNAME: u16 = 0x0006;

/// Whether `packet` looks like STUN (RFC 7983 demultiplexing: first byte 0..=3, the cookie).
pub(crate) fn is_stun(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN && packet[0] < 4 && packet[4..8] == MAGIC_COOKIE
}

/// A STUN request's transaction id, which its response carries back.
pub(crate) fn request_id(packet: &[u8]) -> Option<[u8; 12]> {
    // class bits (0x0110 of the type) zero: a request
    (is_stun(packet) && packet[0] & 0x01 == 0 && packet[1] & 0x10 == 0)
        .then(|| packet[8..20].try_into().ok())
        .flatten()
}

/// A STUN response's transaction id (success or error class).
pub(crate) fn response_id(packet: &[u8]) -> Option<[u8; 12]> {
    (is_stun(packet) && packet[0] & 0x01 == 1)
        .then(|| packet[8..20].try_into().ok())
        .flatten()
}

/// The local ufrag a STUN request is addressed to: the part of USERNAME before the colon.
pub(crate) fn local_ufrag(packet: &[u8]) -> Option<&str> {
    if !is_stun(packet) {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let end = HEADER_LEN.checked_add(declared)?.min(packet.len());
    let mut at = HEADER_LEN;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([packet[at], packet[at + 1]]);
        let len = usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]]));
        let value = packet.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        // attributes are padded to four bytes
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(username: &[u8]) -> Vec<u8> {
        let padded = username.len().div_ceil(4) * 4;
        let mut p = vec![0x00, 0x01];
        p.extend_from_slice(&u16::try_from(4 + padded).unwrap_or(0).to_be_bytes());
        p.extend_from_slice(&MAGIC_COOKIE);
        p.extend_from_slice(&[7; 12]);
        p.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        p.extend_from_slice(&u16::try_from(username.len()).unwrap_or(0).to_be_bytes());
        p.extend_from_slice(username);
        p.resize(HEADER_LEN + 4 + padded, 0);
        p
    }

    #[test]
    fn reads_the_local_ufrag_of_a_binding_request() {
        assert_eq!(local_ufrag(&request(b"abcd:wxyz1")), Some("abcd"));
    }

    #[test]
    fn a_response_carries_its_request_id() {
        let req = request(b"a:b");
        let mut resp = req.clone();
        resp[0..2].copy_from_slice(&[0x01, 0x01]);
        assert_eq!(request_id(&req), Some([7; 12]));
        assert_eq!(response_id(&req), None);
        assert_eq!(response_id(&resp), Some([7; 12]));
        assert_eq!(request_id(&resp), None);
    }

    #[test]
    fn non_stun_and_truncated_packets_have_no_ufrag() {
        assert_eq!(local_ufrag(&[22, 254, 253, 0]), None);
        let mut p = request(b"abcd:wxyz");
        p.truncate(HEADER_LEN + 6);
        assert_eq!(local_ufrag(&p), None);
        assert_eq!(local_ufrag(&[]), None);
    }

    proptest::proptest! {
        #![proptest_config(jamz_proto::test_support::proptest_config(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = (local_ufrag(&bytes), request_id(&bytes), response_id(&bytes));
        }
    }
}

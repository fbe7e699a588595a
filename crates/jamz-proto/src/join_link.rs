//! The join link, `trafficjamz://join?server=URL&group=ID&name=NAME`: what a hosting
//! device shows (as text and as a QR code) and what the app opens to join a session
//! without typing (docs/protocol.md, "Join links"). Values are percent-encoded; keys
//! this version does not know are ignored, so a later one can add an invite token.

use std::fmt;

/// The link's scheme and host.
pub const JOIN_PREFIX: &str = "trafficjamz://join";
/// Longest link read (a QR code holds about 2.9 KB; anything longer is no join link).
pub const MAX_LINK_LEN: usize = 4096;

/// Where to join: the server, and optionally the group and a name to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinLink {
    /// `http://` or `https://` base URL of the server.
    pub server: String,
    pub group: Option<String>,
    /// The session's or host's name, for the person to recognise it.
    pub name: Option<String>,
}

/// Why a text is not a join link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinLinkError {
    #[error("not a TrafficJamz join link (it starts with {JOIN_PREFIX}?)")]
    NotAJoinLink,
    #[error("the join link is longer than {MAX_LINK_LEN} characters")]
    TooLong,
    #[error("the join link names no server")]
    NoServer,
    #[error("the join link's server is not an http:// or https:// address: {0}")]
    BadServer(String),
    #[error("the join link's {0} is not valid percent-encoded text")]
    BadEncoding(&'static str),
}

impl JoinLink {
    /// Reads a link; whitespace around it is ignored.
    pub fn parse(text: &str) -> Result<JoinLink, JoinLinkError> {
        let text = text.trim();
        if text.len() > MAX_LINK_LEN {
            return Err(JoinLinkError::TooLong);
        }
        let rest = text
            .get(..JOIN_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(JOIN_PREFIX))
            .map(|_| &text[JOIN_PREFIX.len()..])
            .ok_or(JoinLinkError::NotAJoinLink)?;
        let rest = rest.strip_prefix('/').unwrap_or(rest);
        let query = match rest.strip_prefix('?') {
            Some(q) => q,
            None if rest.is_empty() => "",
            None => return Err(JoinLinkError::NotAJoinLink),
        };
        // A fragment is not part of the query.
        let query = query.split('#').next().unwrap_or_default();
        let (mut server, mut group, mut name) = (None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // The first of a repeated key counts, as in DNS-SD TXT records.
            let (slot, what) = match key {
                "server" => (&mut server, "server"),
                "group" => (&mut group, "group"),
                "name" => (&mut name, "name"),
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(decode(value).ok_or(JoinLinkError::BadEncoding(what))?);
            }
        }
        let server = server
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(JoinLinkError::NoServer)?;
        let lower = server.to_ascii_lowercase();
        let host = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
            return Err(JoinLinkError::BadServer(server));
        }
        let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(JoinLink {
            server,
            group: nonempty(group),
            name: nonempty(name),
        })
    }
}

impl fmt::Display for JoinLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{JOIN_PREFIX}?server={}", encode(&self.server))?;
        if let Some(g) = &self.group {
            write!(f, "&group={}", encode(g))?;
        }
        if let Some(n) = &self.name {
            write!(f, "&name={}", encode(n))?;
        }
        Ok(())
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes (`+` is a space, as forms write it); `None` for a broken escape or
/// bytes that are not UTF-8.
fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_link_reads_back() {
        let link = JoinLink {
            server: "http://10.42.0.1:5050".into(),
            group: Some("65f0c0ffee0123456789abcd".into()),
            name: Some("Ann's car & co".into()),
        };
        let text = link.to_string();
        assert_eq!(
            text,
            "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=65f0c0ffee0123456789abcd&name=Ann%27s%20car%20%26%20co"
        );
        assert_eq!(JoinLink::parse(&text), Ok(link));
    }

    #[test]
    fn what_others_write_is_read() {
        let l = JoinLink::parse(
            " TrafficJamz://join/?name=Road+trip&server=https://jamz.example.org&x=1&group=g1#top ",
        )
        .unwrap();
        assert_eq!(l.server, "https://jamz.example.org");
        assert_eq!(l.group.as_deref(), Some("g1"));
        assert_eq!(l.name.as_deref(), Some("Road trip"));
        let only_server = JoinLink::parse("trafficjamz://join?server=http%3A%2F%2Fh:1").unwrap();
        assert_eq!(only_server.group, None);
    }

    #[test]
    fn bad_links_say_why() {
        use JoinLinkError::*;
        let e = |t: &str| JoinLink::parse(t).unwrap_err();
        assert_eq!(e("http://10.42.0.1:5050"), NotAJoinLink);
        assert_eq!(e("trafficjamz://joinx?server=http://h"), NotAJoinLink);
        assert_eq!(e("trafficjamz://join?group=g"), NoServer);
        assert_eq!(e("trafficjamz://join"), NoServer);
        assert_eq!(
            e("trafficjamz://join?server=file:///etc/passwd"),
            BadServer("file:///etc/passwd".into())
        );
        assert_eq!(
            e("trafficjamz://join?server=http://"),
            BadServer("http://".into())
        );
        assert_eq!(e("trafficjamz://join?server=%zz"), BadEncoding("server"));
        assert_eq!(
            e("trafficjamz://join?server=http://h&name=%FF"),
            BadEncoding("name")
        );
        assert_eq!(
            e(&format!("{JOIN_PREFIX}?server={}", "a".repeat(5000))),
            TooLong
        );
    }

    proptest! {
        #![proptest_config(crate::test_support::proptest_config(256))]

        /// Any text, a join link or not: an answer, never a panic.
        #[test]
        fn any_text_is_read_without_panicking(text in ".{0,200}") {
            let _ = JoinLink::parse(&text);
            let _ = JoinLink::parse(&format!("{JOIN_PREFIX}?{text}"));
            let _ = JoinLink::parse(&format!("{JOIN_PREFIX}?server={text}"));
        }

        /// Any link written reads back as itself.
        #[test]
        fn any_link_round_trips(
            host in "[a-z0-9.-]{1,30}(:[0-9]{1,5})?",
            https in any::<bool>(),
            group in proptest::option::of(".+"),
            name in proptest::option::of(".+"),
        ) {
            let scheme = if https { "https" } else { "http" };
            let link = JoinLink { server: format!("{scheme}://{host}"), group, name };
            prop_assert_eq!(JoinLink::parse(&link.to_string()), Ok(link));
        }
    }
}

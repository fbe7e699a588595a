//! Join links for the app (docs/protocol.md, "Join links"): a hosting device shows one
//! per group, as text and as a QR code, and a joining device reads one (pasted, opened
//! from the system, handed over by a second launch) to fill in the server and the group.
//! The link's format is `jamz_proto::join_link`'s.

use jamz_proto::join_link::JoinLink;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

/// A join link, read or made, as the UI shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinLinkView {
    /// `trafficjamz://join?server=...`, as written by this version.
    pub link: String,
    pub server: String,
    pub group: Option<String>,
    pub name: Option<String>,
    /// The link as a QR code: an SVG document (black on white, with its quiet zone).
    pub qr_svg: String,
}

impl TryFrom<JoinLink> for JoinLinkView {
    type Error = NodeError;

    fn try_from(link: JoinLink) -> Result<Self, NodeError> {
        let text = link.to_string();
        let qr_svg = qrcode::QrCode::with_error_correction_level(&text, qrcode::EcLevel::M)
            .map_err(|e| NodeError::Invalid(format!("the join link does not fit a QR code: {e}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build();
        Ok(JoinLinkView {
            link: text,
            server: link.server,
            group: link.group,
            name: link.name,
            qr_svg,
        })
    }
}

/// Reads a link someone pasted or opened.
pub fn read_join_link(text: &str) -> Result<JoinLinkView, NodeError> {
    JoinLink::parse(text)
        .map_err(|e| NodeError::Invalid(e.to_string()))?
        .try_into()
}

/// The link to `group` on `server` (a hosting device's LAN URL), named `name`.
pub fn make_join_link(
    server: &str,
    group: Option<&str>,
    name: Option<&str>,
) -> Result<JoinLinkView, NodeError> {
    let nonempty = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let link = JoinLink {
        server: server.trim().to_owned(),
        group: nonempty(group),
        name: nonempty(name),
    };
    // Through the parser: a link this device makes is one it would accept.
    read_join_link(&link.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_link_reads_back_with_its_qr_code() {
        let made = make_join_link("http://10.42.0.1:5050", Some("g1"), Some("Ann's car")).unwrap();
        assert_eq!(
            made.link,
            "trafficjamz://join?server=http%3A%2F%2F10.42.0.1%3A5050&group=g1&name=Ann%27s%20car"
        );
        assert!(
            made.qr_svg.starts_with("<?xml") && made.qr_svg.contains("<svg"),
            "{}",
            made.qr_svg
        );
        let read = read_join_link(&format!("  {}\n", made.link)).unwrap();
        assert_eq!(read, made);
        assert_eq!(read.group.as_deref(), Some("g1"));
    }

    #[test]
    fn what_is_not_a_join_link_is_refused_in_words() {
        let e = read_join_link("http://10.42.0.1:5050").unwrap_err();
        assert!(e.to_string().contains("not a TrafficJamz join link"), "{e}");
        let e = make_join_link("10.42.0.1:5050", None, None).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }
}

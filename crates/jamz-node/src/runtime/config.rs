//! What a node needs to start: the server, how to log in, the group, the output,
//! the cache and the settings a user can change later by command.

use std::path::PathBuf;
use std::str::FromStr;

use jamz_audio::OutputSpec;
use jamz_proto::UserId;

use crate::account::CredentialStore;

/// How the node logs in.
#[derive(Debug, Clone)]
pub enum NodeAuth {
    /// Log in with these (the token is not saved).
    Password { username: String, password: String },
    /// Use the token saved by `jamz login` (needs [`NodeConfig::store`]).
    Saved,
    /// A token the caller already has, for this user.
    Token {
        token: String,
        user_id: UserId,
        username: String,
    },
}

/// Where location fixes come from (`--location`): a jamz-geo source spec
/// (`none`, `manual`, `auto`, `desktop`, `gpsd:HOST:PORT`, `nmea:DEVICE[@BAUD]`, `replay:FILE[@SPEED]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationSource(pub jamz_geo::LocationSpec);

impl LocationSource {
    /// No source (the default).
    #[allow(non_upper_case_globals)]
    pub const None: LocationSource = LocationSource(jamz_geo::LocationSpec::None);
}

impl FromStr for LocationSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(LocationSource).map_err(|e| e.to_string())
    }
}

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The backend, `http://host:port`.
    pub server: String,
    /// Further servers of the same backend (processes sharing its database), tried
    /// in turn when the one in use dies (docs/node-control.md, "Several servers").
    pub fallback_servers: Vec<String>,
    pub auth: NodeAuth,
    /// Where saved credentials live (for [`NodeAuth::Saved`]).
    pub store: Option<CredentialStore>,
    pub group_id: String,
    /// Display name in the session (default: the username).
    pub display_name: Option<String>,
    pub output: OutputSpec,
    /// Track cache directory (default: the platform cache dir).
    pub cache_dir: Option<PathBuf>,
    pub location: LocationSource,
    /// Extra output latency, ms (`latency-offset`; 0 ..= 2000).
    pub latency_offset_ms: f64,
    /// Cache size limit in bytes (`cache-limit`; default: jamz-cache's, 2 GiB).
    pub cache_max_bytes: Option<u64>,
    /// Cache the playlist in the background while online (`auto-preload`).
    pub auto_preload: bool,
    /// Share this car's position from the start (`share-location`; off by default).
    pub share_location: bool,
    /// Stop sharing by itself after this many seconds (with `share_location`).
    pub share_for_s: Option<f64>,
    /// The sharing rule's and the convoy's settings (the product's defaults; tests
    /// shorten the `together` window).
    pub location_rules: jamz_sync::location::LocationConfig,
    /// Where YouTube answers oEmbed (a video's title): `{origin}/oembed`. Default
    /// [`jamz_link::DEFAULT_OEMBED_ORIGIN`]; tests point it at a local stand-in.
    pub youtube_origin: String,
    /// The face runs YouTube's IFrame player (the app's web view): YouTube tracks are
    /// steered there (`youtube` events, `youtube-reading` commands) instead of leaving this
    /// device silent. Off for a headless node.
    pub external_video_player: bool,
    /// Show the session in the OS's "now playing" and take its media keys
    /// ([`crate::media_session`]: MPRIS on Linux). Off by default: a test's node stays
    /// off the desktop's bus.
    pub media_session: bool,
    /// ICE servers of the peer mesh: STUN servers it asks for this device's address as
    /// seen from outside its NAT (a server-reflexive candidate), so that cars on different
    /// mobile networks can link, and TURN servers that relay for it where the NATs allow
    /// nothing else (a relayed candidate). None by default: host candidates only, as on
    /// one network.
    pub ice_servers: Vec<jamz_mesh::IceServer>,
}

impl NodeConfig {
    /// A node for `group_id` on `server` with the defaults: the system's default
    /// output, the platform's cache directory, no location source, no offset.
    pub fn new(server: impl Into<String>, auth: NodeAuth, group_id: impl Into<String>) -> Self {
        NodeConfig {
            server: server.into(),
            fallback_servers: Vec::new(),
            auth,
            store: None,
            group_id: group_id.into(),
            display_name: None,
            output: OutputSpec::Default,
            cache_dir: None,
            location: LocationSource::None,
            latency_offset_ms: 0.0,
            cache_max_bytes: None,
            auto_preload: false,
            share_location: false,
            share_for_s: None,
            location_rules: jamz_sync::location::LocationConfig::default(),
            youtube_origin: jamz_link::DEFAULT_OEMBED_ORIGIN.to_owned(),
            external_video_player: false,
            media_session: false,
            ice_servers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_sources_parse() {
        assert_eq!("none".parse(), Ok(LocationSource::None));
        assert_eq!(
            "replay:/tmp/a.nmea".parse(),
            Ok(LocationSource(jamz_geo::LocationSpec::Replay {
                file: "/tmp/a.nmea".into(),
                format: jamz_geo::ReplayFormat::Nmea,
                speed: jamz_geo::ReplaySpeed::Scaled(1.0),
            }))
        );
        assert_eq!(
            "gpsd:localhost:2947".parse(),
            Ok(LocationSource(jamz_geo::LocationSpec::Gpsd {
                host: "localhost".into(),
                port: 2947,
            }))
        );
        for bad in ["", "replay:", "gps", "gpsd:"] {
            assert!(bad.parse::<LocationSource>().is_err(), "{bad:?}");
        }
    }
}

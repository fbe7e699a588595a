//! The facade both faces stand on: what a face that lives longer than one
//! command keeps (the app), and what it may ask. The Tauri shell registers one
//! command per method and forwards; errors reach it as [`NodeError`]s whose
//! [`NodeError::code`] it hands on.
//!
//! - [`accounts`]: register, log in and out, groups.
//! - [`session`]: at most one running node, its events to an [`EventSink`].
//! - [`cache_admin`]: the track cache while no session holds it.
//! - [`covers`]: cover art of cached tracks, for now playing.
//! - [`join`]: join links and their QR codes.
//! - [`location_sources`]: the location sources this device has.
//! - [`map_tiles`]: the map's tiles, from the tile cache (the shell serves them).
//! - [`diagnostics`]: the text of "copy diagnostics".
//! - `hosting` (the `host` feature): this device runs the session's server.
//! - [`web_view`]: what the web view may ask of files (picked files only, no `wav:`).

pub mod accounts;
pub mod cache_admin;
pub mod covers;
pub mod diagnostics;
#[cfg(feature = "host")]
pub mod hosting;
pub mod join;
pub mod location_sources;
pub mod map_tiles;
pub mod session;
pub mod web_view;

use serde::{Deserialize, Serialize};

pub use crate::account::LogoutOutcome;
pub use accounts::{AccountView, ChangePasswordArgs, LoginArgs, RegisterArgs};
pub use cache_admin::CacheInfo;
pub use diagnostics::ShellFacts;
#[cfg(feature = "host")]
pub use hosting::HOST_PORT_ENV;
pub use join::{JoinLinkView, make_join_link, read_join_link};
pub use location_sources::LocationSourceView;
pub use map_tiles::MapTilesInfo;
pub use session::{EventSink, OpenArgs, SessionEnded, SessionView};

use crate::account::CredentialStore;
use crate::control::OutputView;
use crate::directories::Dirs;
use crate::error::NodeError;

/// A hosted session as the UI shows it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedView {
    /// The URL this device uses.
    pub url: String,
    pub port: u16,
    /// What the other cars type in: this device's address on each of its networks.
    pub lan_urls: Vec<String>,
}

/// What the app shows about itself.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub version: String,
    pub mobile: bool,
    pub hosting: Option<HostedView>,
    /// The group whose session is running.
    pub session_group: Option<String>,
}

/// What a long-lived face keeps between commands.
pub struct App {
    dirs: Dirs,
    store: CredentialStore,
    session: session::SessionSlot,
    picked: web_view::PickedFiles,
    map_tiles: map_tiles::MapTiles,
    #[cfg(feature = "host")]
    hosting: hosting::Hosting,
}

/// A self-hosted https server with its own CA: `JAMZ_CA_CERT`, else `ca.pem` in the
/// config directory, is trusted beside the system's store (docs/protocol.md, "TLS"). A
/// file that cannot be used is logged, and the app goes on with the system's store.
fn trust_private_ca(dirs: &Dirs) {
    let ca = std::env::var_os("JAMZ_CA_CERT")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(dirs.config.join("ca.pem")).filter(|p| p.is_file()));
    if let Some(ca) = ca {
        match jamz_link::tls::trust_ca_file(&ca) {
            Ok(n) => {
                tracing::info!(file = %ca.display(), certificates = n, "trusting a private CA")
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

impl App {
    /// An app keeping its files in `dirs`.
    pub fn new(dirs: Dirs) -> Result<App, NodeError> {
        trust_private_ca(&dirs);
        Ok(App {
            store: dirs.credentials(),
            #[cfg(feature = "host")]
            hosting: hosting::Hosting::new(dirs.hosted_session())?,
            session: session::SessionSlot::default(),
            picked: web_view::PickedFiles::default(),
            map_tiles: map_tiles::MapTiles::default(),
            dirs,
        })
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }

    /// The shell calls this with what the native file picker returned; the paths
    /// it gives back are the ones an `add` from the web view may then name.
    pub fn grant_picked_files(
        &self,
        picked: impl IntoIterator<Item = std::path::PathBuf>,
    ) -> Vec<std::path::PathBuf> {
        self.picked.grant(picked)
    }

    /// `version` and `mobile` are the shell's to say.
    pub async fn info(&self, version: String, mobile: bool) -> AppInfo {
        #[cfg(feature = "host")]
        let hosting = self.hosting.view().await;
        #[cfg(not(feature = "host"))]
        let hosting = None;
        AppInfo {
            version,
            mobile,
            hosting,
            session_group: self.session.group().await,
        }
    }

    /// The output devices of this machine (`id` is what [`OpenArgs::output`] and
    /// the node's `output` command take).
    pub async fn outputs(&self) -> Result<Vec<OutputView>, NodeError> {
        // Listing probes the audio host's devices: blocking, off the async threads.
        let devices = tokio::task::spawn_blocking(crate::output_devices)
            .await
            .map_err(|e| NodeError::Stopped(format!("listing outputs: {e}")))??;
        Ok(devices.into_iter().map(OutputView::from).collect())
    }

    /// "Calibrate this car's speakers" outside a session: measures `output` (a spec, as
    /// [`OpenArgs::output`]) with the microphone while `latency_offset_ms` is in force and
    /// returns the offset to use ([`crate::calibrate_output`]). In a session the face sends
    /// the node's `calibrate` command instead, which measures the output in use.
    pub async fn calibrate_output(
        &self,
        output: String,
        latency_offset_ms: f64,
    ) -> Result<crate::Calibrated, NodeError> {
        if self.session.group().await.is_some() {
            return Err(NodeError::Calibration(
                "a session is open: calibrate from its settings (the node measures its own output)"
                    .into(),
            ));
        }
        let spec: crate::OutputSpec = output.parse()?;
        // Plays and records for several seconds: off the async threads.
        tokio::task::spawn_blocking(move || crate::calibrate_output(&spec, latency_offset_ms, None))
            .await
            .map_err(|e| NodeError::Stopped(format!("calibration: {e}")))?
    }
}

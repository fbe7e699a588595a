//! # jamz-node: one running TrafficJamz client
//!
//! The only crate that owns tokio tasks: it wires the adapters (jamz-link,
//! jamz-audio, jamz-cache) to the sans-IO session engine (jamz-sync). Both faces,
//! the `jamz` CLI and the Tauri app, are thin layers over it.
//!
//! - [`Node::start`] logs in, finds the group's session, opens the cache and the
//!   audio output, connects the link and runs the engine; drive it with
//!   [`NodeCommand`]s and read [`NodeEvent`]s (the `docs/node-control.md` vocabulary).
//! - [`json::serve`] is `jamz node --json`: the same over JSON lines.
//! - `host::HostedServer` (the `host` feature) runs the reference server in this
//!   process ("this device hosts the session"); `host::serve` is `jamz server`.
//! - [`discovery`] announces a hosted session on the local network (mDNS) and finds
//!   one without a URL (`jamz node --discover`).
//! - [`account`] keeps the login token (mode 0600) and holds the REST helpers;
//!   [`tracks`] uploads files with their tags and maps tracks onto the cache;
//!   [`directories`] says where a face keeps its files.
//! - [`app::App`] is the facade of a face that keeps state between commands (the
//!   Tauri shell): accounts, the one session, cache administration, hosting;
//!   [`ErrorView`] is an error as a face hands it on (a stable [`ErrorCode`]).
//! - [`calibrate_output`] measures an output's latency with the microphone (`jamz
//!   calibrate`); in a session the `calibrate` command does it on the output in use.
//! - [`media_session`] shows the session in the OS's "now playing" (MPRIS on Linux) and
//!   turns its media keys into the engine's commands; [`covers`] keeps the cover art
//!   found in cached tracks' tags, for it and for the app.
//! - `ui_types` (the `ts` feature) writes the UI's TypeScript types.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jamz_node::NodeError> {
//! use jamz_node::{Command, Node, NodeAuth, NodeCommand, NodeConfig, NodeEvent, Notification};
//!
//! let mut config = NodeConfig::new(
//!     "http://127.0.0.1:5050",
//!     NodeAuth::Password { username: "ann".into(), password: "pw".into() },
//!     "0123456789abcdef01234567",
//! );
//! config.display_name = Some("Ann's car".into());
//! config.output = "null".parse()?;
//! let mut node = Node::start(config).await?;
//! node.send(NodeCommand::Session(Command::TakeControl))?;
//! while let Some(ev) = node.next_event().await {
//!     if let NodeEvent::Session(Notification::Controller { .. }) = ev {
//!         node.send(NodeCommand::Quit)?;
//!     }
//! }
//! node.join().await
//! # }
//! ```

pub mod account;
pub mod app;
pub mod audio;
pub mod calibration;
pub mod clock;
pub mod control;
pub mod covers;
pub mod device_key;
pub mod directories;
pub mod discovery;
mod error;
mod files;
mod grant_key;
#[cfg(feature = "host")]
pub mod host;
pub mod human;
pub mod json;
pub mod kept_session;
pub mod media_session;
pub mod outbox;
pub mod positions;
mod runtime;
pub mod secrets;
pub mod tracks;
#[cfg(feature = "ts")]
pub mod ui_types;
pub mod waiting_fixes;

pub use calibration::{Calibrated, calibrate_output};
pub use clock::LocalClock;
pub use control::{
    CacheSummary, Command, CommandError, EtaView, LocationEvent, MeshCounters, NodeCommand,
    NodeEvent, Notification, OutputView, ParticipantView, PeerState, PendingView, StatusView, Tier,
    VideoDirective, parse_command,
};
pub use error::{ErrorCode, ErrorView, NodeError};
#[cfg(feature = "host")]
pub use host::HostedServer;
pub use jamz_audio::{OutputDevice, OutputSpec, output_devices};
pub use jamz_cache::CancellationToken;
pub use jamz_link::tls::trust_ca_file;
pub use jamz_link::{DEFAULT_OEMBED_ORIGIN as DEFAULT_YOUTUBE_ORIGIN, Progress, RestClient};
pub use jamz_mesh::IceServer;
pub use runtime::{Commander, LocationSource, Node, NodeAuth, NodeConfig, QUIT_GRACE};
pub use secrets::TokenStore;

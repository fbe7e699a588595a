//! The backend link of TrafficJamz native: a REST client ([`RestClient`]) and a
//! Socket.IO v5 / Engine.IO v4 client over websockets ([`SocketClient`]), both
//! speaking the protocol of docs/protocol.md.
//!
//! The Socket.IO client is split the way quinn splits from quinn-proto: a
//! sans-IO [`Session`](session::Session) (frames and time in, frames, transport
//! orders, a timeout and events out) decides everything, and the tokio driver in
//! [`socket`] only moves bytes and sleeps until the session's next timeout.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jamz_link::LinkError> {
//! use std::time::Duration;
//! use jamz_link::{LinkEvent, LinkState, RestClient, SocketClient, SocketConfig};
//! use jamz_proto::events::{JoinAudioSession, MusicTakeControl};
//!
//! let rest = RestClient::new("http://127.0.0.1:5050")?;
//! let auth = rest.login("alice", "secret").await?; // keeps the token
//! let group = rest.create_group("road trip", None).await?;
//! let session = rest.session_for_group(&group.id).await?;
//!
//! // Events emitted while offline wait after each (re)connection until released,
//! // so that the room is joined before they reach the server.
//! let (link, mut events) = SocketClient::connect(
//!     SocketConfig::new(rest.base_url()).token(auth.token).hold_queue(true),
//! )?;
//! let join = JoinAudioSession {
//!     session_id: session.id.clone(),
//!     user_id: Some(auth.user.id),
//!     display_name: Some("alice".into()),
//! };
//! link.send(&MusicTakeControl { session_id: session.id.clone(), user_id: Some(auth.user.id) })?;
//! let reply = link.time_sync(0.0, Duration::from_secs(2)).await?; // acked event
//! # let _ = reply;
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         LinkEvent::Event { event, .. } => println!("{event:?}"),
//!         LinkEvent::BadEvent { error, .. } => eprintln!("not the protocol: {error}"),
//!         LinkEvent::State(LinkState::Connected { sid, .. }) => {
//!             // Every connection joins first, then sends what waited.
//!             link.send_first(&join)?;
//!             link.release_queue()?;
//!             println!("connected as {sid}");
//!         }
//!         LinkEvent::QueueOverflow { dropped } => println!("lost while offline: {dropped:?}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod config;
pub mod error;
pub mod oembed;
pub mod packet;
pub mod rest;
pub mod retry;
pub mod session;
pub mod socket;
pub mod tls;
mod typed;

pub use backoff::ReconnectPolicy;
pub use config::{MAX_SHUTDOWN_WAIT, OUTGOING_QUEUE_CAPACITY, SocketConfig};
pub use error::LinkError;
pub use oembed::{DEFAULT_OEMBED_ORIGIN, OEmbedClient, OEmbedError};
pub use rest::{Download, Progress, RestClient, Upload};
pub use retry::RetryPolicy;
pub use session::{DisconnectReason, LinkState, OutgoingEvent, SERVER_SHUTDOWN, Session};
pub use socket::{AckSender, LinkEvent, LinkEvents, ServerMessage, SocketClient};

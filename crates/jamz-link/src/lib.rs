//! The backend link of TrafficJamz native: a REST client ([`RestClient`]) and a
//! Socket.IO v5 / Engine.IO v4 client over websockets ([`SocketClient`]), both
//! speaking PROTOCOL.md.
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
//! let (link, mut events) =
//!     SocketClient::connect(SocketConfig::new(rest.base_url()).token(auth.token))?;
//! // The room to be in; re-joined automatically after every reconnect.
//! link.join_session(&JoinAudioSession {
//!     session_id: session.id.clone(),
//!     user_id: Some(auth.user.id),
//!     display_name: Some("alice".into()),
//! })?;
//! link.send(&MusicTakeControl { session_id: session.id.clone(), user_id: Some(auth.user.id) })?;
//! let reply = link.time_sync(0.0, Duration::from_secs(2)).await?; // acked event
//! # let _ = reply;
//! while let Some(ev) = events.recv().await {
//!     match ev {
//!         LinkEvent::Message(m) => println!("{:?}", m.decode()),
//!         LinkEvent::State(LinkState::Connected { sid, .. }) => println!("connected as {sid}"),
//!         LinkEvent::QueueOverflow { dropped } => println!("lost while offline: {dropped:?}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod error;
pub mod packet;
pub mod rest;
pub mod socket;
mod typed;

pub use backoff::ReconnectPolicy;
pub use error::LinkError;
pub use rest::{Download, Progress, RestClient, Upload};
pub use socket::{
    AckSender, DisconnectReason, LinkEvent, LinkEvents, LinkState, OUTGOING_QUEUE_CAPACITY,
    OutgoingEvent, ServerMessage, SocketClient, SocketConfig,
};

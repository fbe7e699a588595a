//! Wire types of TrafficJamz's protocol (`docs/protocol.md`): the shared objects, the
//! REST bodies, the Socket.IO events and the peer-mesh messages, as serde types.
//!
//! Decoding is lenient where the protocol asks for it: both spellings of every
//! field (snake_case and camelCase, and legacy names such as `fileUrl` for `url`)
//! are read, unknown fields are ignored. Wrong types are rejected by [`decode`] with
//! a [`ProtoError`] that names the field. Encoding emits the spelling docs/protocol.md
//! shows for each message.

mod decode;
mod error;
pub mod events;
pub mod fix;
pub mod grant;
pub mod join_link;
pub mod mesh;
pub mod model;
pub mod rest;
#[cfg(feature = "test-support")]
pub mod test_support;
mod wire_helpers;
pub mod youtube;

pub use decode::{decode, decode_slice, decode_str};
pub use error::ProtoError;
pub use events::{ClientEvent, Event, ServerEvent};
pub use fix::{CarriesFix, PositionFix};
pub use model::*;

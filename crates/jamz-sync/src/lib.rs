//! # jamz-sync: the session engine, sans-IO
//!
//! Session state (playlist, participants, DJ, playback), the rules (anyone appends, only the
//! DJ deletes, reorders and controls; duplicates by url, then title+artist), the DJ's actions
//! as a shared timeline ("track T, position P at server instant S"), the server clock
//! estimate (`time-sync`, lowest round trips, drift fitted), and this device's playout plan
//! (scheduled start, rate trim for small errors, hard re-sync past limits).
//!
//! Who may be obeyed over the peer mesh (controller grants, signed relayed messages, the
//! DJ succession rule while the server is gone) is [`trust`], a pure module of its own.
//!
//! Time and events come in through [`Engine::handle`], actions go out through
//! [`Engine::poll`]; see [`api`] for the contract. `sim` (the `sim` feature: this crate's
//! tests, benches and examples) runs many engines over a simulated server and network in
//! virtual time; `cargo bench -p jamz-sync --bench sync_sim` prints its figures.
//!
//! ```
//! use jamz_sync::{Action, Engine, EngineConfig, Input};
//!
//! let mut engine = Engine::new(EngineConfig::new(7, "Ann's car").with_session("s-1"));
//! let now = 1_700_000_000_000.0; // ms: wall clock at start + monotonic elapsed
//! engine.handle(now, Input::Connected { socket_id: "abc".into() });
//! while let Some(action) = engine.poll() {
//!     match action {
//!         Action::Emit { event, data } => { /* socket.emit(event, data) */ let _ = (event, data); }
//!         Action::TimeSync { t0, .. } => { /* emit "time-sync" {t0} with an ack */ let _ = t0; }
//!         _ => {}
//!     }
//! }
//! // ... and call `engine.handle(t, Input::Tick)` at `engine.next_timeout()`.
//! assert!(engine.next_timeout().is_some());
//! ```

pub mod api;
pub mod calibration;
mod clock;
pub mod constants;
pub mod convoy;
pub mod discovery;
mod engine;
mod error;
pub mod external;
pub mod kept;
pub mod location;
pub mod mesh;
mod playlist;
mod playout;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sources;
pub mod sync_meter;
mod timeline;
pub mod trust;

pub use api::*;
pub use engine::Engine;
pub use error::{DjName, SyncError};
pub use playlist::Playlist;
pub use timeline::Timeline;

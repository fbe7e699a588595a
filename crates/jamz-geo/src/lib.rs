//! # jamz-geo: where the car is
//!
//! Location sources behind one trait, [`LocationSource`]: gpsd over its JSON protocol
//! ([`GpsdSource`]), NMEA 0183 from a serial receiver ([`SerialNmeaSource`]), a recorded
//! NMEA log or GPX track replayed at its pace or scaled ([`ReplaySource`]), the desktop's
//! own location service ([`DesktopSource`]: the portal or GeoClue, CoreLocation, Windows),
//! and fixes given by hand ([`ManualSource`]). [`LocationSpec`] parses the node's `--location` flag and
//! opens the source it names.
//!
//! Every source runs its fixes through a [`FixFilter`]: bad checksums, truncated
//! sentences, fixes without satellites, and jumps faster than
//! [`MAX_PLAUSIBLE_SPEED_MPS`] are skipped and counted ([`SkipCounts`]), never a panic.
//! A receiver that goes away is a [`SourceStatus`], and the source reconnects by itself.
//!
//! This crate is an adapter: it decides nothing about sharing or convoys (that is
//! jamz-sync's), and knows no other adapter.
//!
//! ```no_run
//! # async fn run() -> Result<(), jamz_geo::GeoError> {
//! use jamz_geo::{LocationSpec, SourceEvent};
//! let spec: LocationSpec = "gpsd:localhost:2947".parse()?;
//! if let Some(mut source) = spec.open().await? {
//!     loop {
//!         match source.next_event().await? {
//!             SourceEvent::Fix(fix) => println!("{} {}", fix.latitude, fix.longitude),
//!             SourceEvent::Ended => break,
//!             SourceEvent::Skipped(_) | SourceEvent::Status(_) => {}
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod desktop;
pub mod filter;
pub mod fix;
pub mod gpsd;
pub mod gpx;
pub mod manual;
pub mod nmea;
pub mod replay;
pub mod serial;
pub mod source;
pub mod spec;

pub use desktop::{DesktopError, DesktopSource};
pub use filter::{FixFilter, MAX_PLAUSIBLE_SPEED_MPS, SkipCounts, SkipReason};
pub use fix::Fix;
pub use gpsd::GpsdSource;
pub use manual::{ManualFixes, ManualSource};
pub use replay::{ReplayFormat, ReplaySource, ReplaySpeed};
pub use serial::SerialNmeaSource;
pub use source::{GeoError, LocationSource, SourceEvent, SourceStatus};
pub use spec::LocationSpec;

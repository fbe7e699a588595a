//! A recorded drive (an NMEA log or a GPX track) replayed at its recorded pace or scaled.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::filter::SkipCounts;
use crate::gpx::decode_gpx;
use crate::nmea::{Decoded, decode_all};
use crate::source::{EventFuture, Gate, GeoError, LocationSource, SourceEvent};

/// The largest replay file read: a day's drive at 1 Hz is about 10 MB of NMEA.
pub const MAX_REPLAY_BYTES: u64 = 256 * 1024 * 1024;

/// What a replay file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFormat {
    Nmea,
    Gpx,
}

impl ReplayFormat {
    /// By extension: `.gpx`, or `.nmea` / `.nma` / `.log` / `.txt`.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "gpx" => Some(ReplayFormat::Gpx),
            "nmea" | "nma" | "log" | "txt" => Some(ReplayFormat::Nmea),
            _ => None,
        }
    }
}

/// How fast a replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplaySpeed {
    /// `factor` times the recorded pace (1.0: as recorded).
    Scaled(f64),
    /// No waiting: every fix at once (imports, tests).
    Max,
}

impl fmt::Display for ReplaySpeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaySpeed::Scaled(x) => write!(f, "{x}"),
            ReplaySpeed::Max => f.write_str("max"),
        }
    }
}

/// Replays decoded fixes with the recorded gaps between them, divided by the speed.
/// Fixes keep their recorded timestamps; skips come out as they occur in the file.
pub struct ReplaySource {
    name: String,
    items: VecDeque<Decoded>,
    speed: ReplaySpeed,
    /// The first fix's recorded time and the instant it was given out.
    anchor: Option<(f64, Instant)>,
    gate: Gate,
}

impl ReplaySource {
    /// Reads and decodes `path` now; fails if it cannot be read or holds no usable fix.
    pub async fn open(
        path: &Path,
        format: ReplayFormat,
        speed: ReplaySpeed,
    ) -> Result<Self, GeoError> {
        let file_err = |source| GeoError::File {
            what: "replay file",
            path: path.to_owned(),
            source,
        };
        let meta = tokio::fs::metadata(path).await.map_err(file_err)?;
        if meta.len() > MAX_REPLAY_BYTES {
            return Err(file_err(std::io::Error::other(format!(
                "larger than {MAX_REPLAY_BYTES} bytes"
            ))));
        }
        let bytes = tokio::fs::read(path).await.map_err(file_err)?;
        let text = String::from_utf8_lossy(&bytes);
        let items = match format {
            ReplayFormat::Nmea => decode_all(&text),
            ReplayFormat::Gpx => decode_gpx(&text),
        };
        let name = format!("replay:{}@{speed}", path.display());
        let source = Self::from_decoded(name, items, speed);
        if !source.items.iter().any(|d| matches!(d, Decoded::Fix(_))) {
            let mut counts = SkipCounts::default();
            for d in &source.items {
                if let Decoded::Skip(r) = d {
                    counts.add(*r);
                }
            }
            return Err(GeoError::NoFixes {
                path: PathBuf::from(path),
                counts,
            });
        }
        Ok(source)
    }

    /// A replay of already decoded items (named `name` in [`LocationSource::describe`]).
    pub fn from_decoded(name: String, items: Vec<Decoded>, speed: ReplaySpeed) -> Self {
        ReplaySource {
            name,
            items: items.into(),
            speed,
            anchor: None,
            gate: Gate::default(),
        }
    }

    async fn next(&mut self) -> SourceEvent {
        let Some(item) = self.items.pop_front() else {
            return SourceEvent::Ended;
        };
        let fix = match item {
            Decoded::Skip(reason) => return self.gate.skip(reason),
            Decoded::Fix(fix) => fix,
        };
        if let ReplaySpeed::Scaled(factor) = self.speed {
            match self.anchor {
                None => self.anchor = Some((fix.timestamp, Instant::now())),
                Some((t0, start)) => {
                    let offset_s = ((fix.timestamp - t0) / 1000.0 / factor).max(0.0);
                    // A far-future time in a bad file must not overflow the instant:
                    // cap the wait at about four months.
                    let offset =
                        Duration::try_from_secs_f64(offset_s.min(1e7)).unwrap_or(Duration::ZERO);
                    sleep_until(start + offset).await;
                }
            }
        }
        self.gate.pass(fix)
    }
}

impl LocationSource for ReplaySource {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(async move { Ok::<_, GeoError>(self.next().await) })
    }

    fn counts(&self) -> SkipCounts {
        self.gate.counts
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

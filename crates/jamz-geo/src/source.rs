//! The trait every source implements, what it yields, and its errors.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::filter::{FixFilter, SkipCounts, SkipReason};
use crate::fix::Fix;

/// What a source yields next.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// A fix that passed the source's plausibility filter.
    Fix(Fix),
    /// A sentence, report or fix was dropped (also counted in [`LocationSource::counts`]).
    Skipped(SkipReason),
    /// The source's link to its receiver changed.
    Status(SourceStatus),
    /// A replay or a file came to its end; every later call answers this again.
    Ended,
}

/// The state of a source's link to its receiver.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceStatus {
    /// Connected or (re)opened; `detail` says to what.
    Connected { detail: String },
    /// The receiver went away; the source tries again after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
}

/// Errors that end a source (a receiver going away is a [`SourceStatus`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// A `--location` spec that cannot be understood.
    #[error("location source `{spec}`: {reason}")]
    Spec { spec: String, reason: String },
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A GPX file that is not well-formed XML.
    #[error("GPX {}: {reason}", path.display())]
    Gpx { path: PathBuf, reason: String },
    /// The desktop's location service gives no position.
    #[error("desktop location service: {0}")]
    Desktop(#[from] crate::desktop::DesktopError),
    /// A replay file with no usable fix.
    #[error("{}: no usable fix ({counts:?} skipped)", path.display())]
    NoFixes { path: PathBuf, counts: SkipCounts },
}

/// The future [`LocationSource::next_event`] returns (boxed, so sources are `dyn`).
pub type EventFuture<'a> = Pin<Box<dyn Future<Output = Result<SourceEvent, GeoError>> + Send + 'a>>;

/// A stream of position fixes from one receiver, file or user.
///
/// Sources never panic on what they read: bad input is skipped, counted and reported as
/// [`SourceEvent::Skipped`]; a receiver that goes away is retried with capped backoff and
/// reported as [`SourceStatus::Disconnected`].
pub trait LocationSource: Send {
    /// The next event. Cancel-safe only between events: drop the source to stop it.
    fn next_event(&mut self) -> EventFuture<'_>;
    /// What was skipped so far, by reason.
    fn counts(&self) -> SkipCounts;
    /// The source as a `--location` spec would name it.
    fn describe(&self) -> String;
}

/// Runs decoded fixes through a filter, counting what is dropped.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) filter: FixFilter,
    pub(crate) counts: SkipCounts,
}

impl Gate {
    pub(crate) fn skip(&mut self, reason: SkipReason) -> SourceEvent {
        self.counts.add(reason);
        SourceEvent::Skipped(reason)
    }

    pub(crate) fn pass(&mut self, fix: Fix) -> SourceEvent {
        match self.filter.check(fix) {
            Ok(fix) => SourceEvent::Fix(fix),
            Err(reason) => self.skip(reason),
        }
    }
}

/// One line read with a length cap: `Ok(None)` at the end of input, `Ok(Some(Err(())))`
/// for a line longer than `max` (its rest is discarded).
pub(crate) async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Result<String, ()>>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            if buf.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            let room = max.saturating_sub(buf.len());
            if take > room {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(())));
    }
    Ok(Some(Ok(String::from_utf8_lossy(buf).into_owned())))
}

/// Backoff between reconnection attempts: doubles from `min` up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The wait before the next attempt; the one after is twice as long, up to the cap.
    pub(crate) fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_next_is_read() {
        let text = format!("short\n{}\nnext\nlast", "x".repeat(100));
        let mut r = tokio::io::BufReader::with_capacity(7, text.as_bytes());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(l) = read_line_capped(&mut r, &mut buf, 20).await.unwrap() {
            got.push(l);
        }
        assert_eq!(
            got,
            vec![
                Ok("short\n".to_owned()),
                Err(()),
                Ok("next\n".to_owned()),
                Ok("last".to_owned())
            ]
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let steps: Vec<_> = (0..5).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.step().as_millis(), 100);
    }
}

//! NMEA 0183 read live from a serial device (a USB receiver's `/dev/ttyUSB0`,
//! `/dev/ttyACM0`), as a byte stream of lines.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use tokio::fs::File;
use tokio::io::BufReader;
use tokio::time::{Instant, sleep_until};

use crate::filter::{FixFilter, SkipCounts};
use crate::nmea::{Decoded, MAX_LINE_BYTES, NmeaDecoder};
use crate::source::{
    Backoff, EventFuture, Gate, GeoError, LocationSource, SourceEvent, SourceStatus,
    read_line_capped,
};

/// Line speeds a receiver may use; 4800 is NMEA 0183's own, 9600 the usual USB default.
pub const BAUD_RATES: [u32; 9] = [
    4800, 9600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 921_600,
];

/// First wait before reopening a device that went away (a receiver unplugged).
pub const REOPEN_MIN: Duration = Duration::from_millis(500);
/// Longest wait between reopening attempts.
pub const REOPEN_MAX: Duration = Duration::from_secs(5);

/// Fixes from NMEA lines on a device. A regular file is read once to its end (then
/// [`SourceEvent::Ended`]); a device that fails or ends is reopened with capped backoff.
pub struct SerialNmeaSource {
    path: PathBuf,
    baud: Option<u32>,
    reader: Option<BufReader<File>>,
    is_file: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
    decoder: NmeaDecoder,
    pending: VecDeque<Decoded>,
    gate: Gate,
    buf: Vec<u8>,
    ended: bool,
}

impl SerialNmeaSource {
    /// Reads `path`; with a `baud`, the line is set to raw mode at that speed (without,
    /// it is read as the system left it).
    pub fn new(path: impl Into<PathBuf>, baud: Option<u32>) -> Self {
        SerialNmeaSource {
            path: path.into(),
            baud,
            reader: None,
            is_file: false,
            retry_at: None,
            backoff: Backoff::new(REOPEN_MIN, REOPEN_MAX),
            decoder: NmeaDecoder::new(),
            pending: VecDeque::new(),
            gate: Gate::default(),
            buf: Vec::new(),
            ended: false,
        }
    }

    async fn open(&mut self) -> Result<(), String> {
        let file = std::fs::File::open(&self.path).map_err(|e| format!("cannot open: {e}"))?;
        let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
        self.is_file = meta.is_file();
        if let Some(baud) = self.baud
            && !self.is_file
        {
            set_line(&file, baud)?;
        }
        self.reader = Some(BufReader::new(File::from_std(file)));
        Ok(())
    }

    fn lost(&mut self, reason: String) -> SourceEvent {
        self.reader = None;
        let retry_in = self.backoff.step();
        self.retry_at = Some(Instant::now() + retry_in);
        SourceEvent::Status(SourceStatus::Disconnected { reason, retry_in })
    }

    async fn next(&mut self) -> SourceEvent {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return match d {
                    Decoded::Fix(fix) => self.gate.pass(fix),
                    Decoded::Skip(reason) => self.gate.skip(reason),
                };
            }
            if self.ended {
                return SourceEvent::Ended;
            }
            let Some(reader) = self.reader.as_mut() else {
                if let Some(at) = self.retry_at.take() {
                    sleep_until(at).await;
                }
                return match self.open().await {
                    Ok(()) => {
                        // A replugged receiver may be another one, on another clock.
                        self.gate.filter = FixFilter::new();
                        SourceEvent::Status(SourceStatus::Connected {
                            detail: format!("NMEA from {}", self.path.display()),
                        })
                    }
                    Err(reason) => self.lost(reason),
                };
            };
            let mut out = Vec::new();
            match read_line_capped(reader, &mut self.buf, MAX_LINE_BYTES).await {
                Ok(Some(Ok(line))) => {
                    self.backoff.reset();
                    self.decoder.push_line(&line, &mut out);
                }
                Ok(Some(Err(()))) => out.push(Decoded::Skip(crate::SkipReason::Malformed)),
                Ok(None) if self.is_file => {
                    self.decoder.finish(&mut out);
                    self.ended = true;
                }
                Ok(None) => return self.lost("the device ended".into()),
                Err(e) => return self.lost(format!("read failed: {e}")),
            }
            self.pending.extend(out);
        }
    }
}

impl LocationSource for SerialNmeaSource {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(async move { Ok::<_, GeoError>(self.next().await) })
    }

    fn counts(&self) -> SkipCounts {
        self.gate.counts
    }

    fn describe(&self) -> String {
        match self.baud {
            Some(b) => format!("nmea:{}@{b}", self.path.display()),
            None => format!("nmea:{}", self.path.display()),
        }
    }
}

#[cfg(unix)]
fn set_line(file: &std::fs::File, baud: u32) -> Result<(), String> {
    use rustix::termios::{OptionalActions, tcgetattr, tcsetattr};
    let mut t = tcgetattr(file).map_err(|e| format!("not a serial line: {e}"))?;
    t.make_raw();
    t.set_speed(baud)
        .map_err(|e| format!("cannot set {baud} baud: {e}"))?;
    tcsetattr(file, OptionalActions::Now, &t).map_err(|e| format!("cannot set the line: {e}"))
}

#[cfg(not(unix))]
fn set_line(_file: &std::fs::File, baud: u32) -> Result<(), String> {
    Err(format!(
        "setting {baud} baud is not supported on this system; set the port's speed in the system settings and leave out @BAUD"
    ))
}

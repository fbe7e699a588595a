//! Tracks read from a stream instead of a file: a download still arriving, whose reads may
//! have to wait for bytes.
//!
//! The caller's reader waits a bounded time for bytes that are not there yet and then fails
//! with [`std::io::ErrorKind::TimedOut`] (it may report the stall to its owner meanwhile).
//! The player reads again for as long as the track is wanted, so a stalled download only
//! drains the track's ring: the callback plays silence, counts the underrun and skips what it
//! missed when the bytes return, so the track stays on its timeline. Once the track is let go
//! of (a stop, a seek, a replacement), the next timed-out read ends its decode thread.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use symphonia::core::io::MediaSource;

/// A reader over one track's bytes, maybe still arriving (see the module doc).
pub trait StreamRead: Read + Seek + Send + Sync {
    /// The track's length in bytes, once known.
    fn byte_len(&self) -> Option<u64>;
}

/// Opens readers over one track, each at its start: the player opens one per start (a seek,
/// a resume, a restart on the group's timeline), and one more to look for an MP4 edit list.
pub trait OpenStream: Send + Sync + std::fmt::Debug {
    fn open(&self) -> io::Result<Box<dyn StreamRead>>;
}

/// Whether a track's decode thread is still needed: cleared when the callback lets go of it.
pub(crate) type Wanted = Arc<AtomicBool>;

/// Reads the caller's stream, reading again after each bounded wait while the track is
/// wanted.
pub(crate) struct Patient {
    inner: Box<dyn StreamRead>,
    wanted: Wanted,
}

impl Patient {
    pub fn new(inner: Box<dyn StreamRead>, wanted: Wanted) -> Self {
        Patient { inner, wanted }
    }

    fn retry<T>(
        &mut self,
        mut op: impl FnMut(&mut dyn StreamRead) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op(self.inner.as_mut()) {
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        && self.wanted.load(Ordering::Relaxed) => {}
                r => return r,
            }
        }
    }
}

impl Read for Patient {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.retry(|r| r.read(buf))
    }
}

impl Seek for Patient {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.retry(|r| r.seek(to))
    }
}

impl MediaSource for Patient {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::atomic::AtomicUsize;

    /// A reader that times out on every other call.
    struct Flaky {
        bytes: Cursor<Vec<u8>>,
        calls: Arc<AtomicUsize>,
    }

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.calls.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "not yet"));
            }
            self.bytes.read(buf)
        }
    }

    impl Seek for Flaky {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.bytes.seek(to)
        }
    }

    impl StreamRead for Flaky {
        fn byte_len(&self) -> Option<u64> {
            Some(self.bytes.get_ref().len() as u64)
        }
    }

    #[test]
    fn waits_through_timeouts_while_wanted_and_gives_up_once_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let flaky = Flaky {
            bytes: Cursor::new(vec![7u8; 100]),
            calls: calls.clone(),
        };
        let wanted = Arc::new(AtomicBool::new(true));
        let mut p = Patient::new(Box::new(flaky), wanted.clone());
        let mut all = Vec::new();
        p.read_to_end(&mut all).unwrap();
        assert_eq!(all, vec![7u8; 100]);
        assert!(
            calls.load(Ordering::Relaxed) > 2,
            "it read again after a timeout"
        );
        p.seek(SeekFrom::Start(0)).unwrap();
        wanted.store(false, Ordering::Relaxed);
        calls.store(0, Ordering::Relaxed);
        let err = p.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}

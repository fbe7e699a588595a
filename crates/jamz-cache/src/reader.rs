//! `TrackReader`: `Read + Seek` over a complete file or over a download in progress.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shared::Shared;

/// Reads a cached track. Blocking: use it from a blocking thread (the decoder's).
///
/// Over a download in progress, a read of bytes not written yet waits up to the
/// configured `read_wait_timeout` and then fails with `io::ErrorKind::TimedOut`; the
/// caller may simply read again. End of file (`Ok(0)`) is reported only once the whole
/// file is downloaded *and verified*; if verification fails, that read returns the
/// error instead, so a decoder never ends a track on unverified bytes silently.
#[derive(Debug)]
pub struct TrackReader {
    id: String,
    pos: u64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Complete {
        file: File,
        len: u64,
        path: PathBuf,
    },
    Growing {
        shared: Arc<Shared>,
        file: Option<File>,
        /// Where `file`'s OS cursor is, to skip needless seeks.
        file_pos: u64,
        generation: u64,
        wait: Duration,
    },
}

impl TrackReader {
    pub(crate) fn complete(id: &str, file: File, len: u64, path: PathBuf) -> Self {
        TrackReader {
            id: id.to_owned(),
            pos: 0,
            source: Source::Complete { file, len, path },
        }
    }

    pub(crate) fn growing(shared: Arc<Shared>, wait: Duration) -> Self {
        shared.readers.fetch_add(1, Ordering::SeqCst);
        let generation = shared.lock().generation;
        TrackReader {
            id: shared.id.clone(),
            pos: 0,
            source: Source::Growing {
                shared,
                file: None,
                file_pos: 0,
                generation,
                wait,
            },
        }
    }

    /// Another reader over the same track, from its start: over the file once it is
    /// complete, else over the same download (a player seeking or restarting while the
    /// track still arrives). Blocking only for opening a file.
    pub fn reopen(&self) -> io::Result<TrackReader> {
        match &self.source {
            Source::Complete { path, len, .. } => Ok(TrackReader::complete(
                &self.id,
                File::open(path)?,
                *len,
                path.clone(),
            )),
            Source::Growing { shared, wait, .. } => {
                let done = match &shared.lock().outcome {
                    Some(Ok(path)) => Some(path.clone()),
                    _ => None,
                };
                match done {
                    Some(path) => {
                        let file = File::open(&path)?;
                        let len = file.metadata()?.len();
                        Ok(TrackReader::complete(&self.id, file, len, path))
                    }
                    None => Ok(TrackReader::growing(Arc::clone(shared), *wait)),
                }
            }
        }
    }

    /// How long a read of bytes not downloaded yet waits before it fails with
    /// `io::ErrorKind::TimedOut` (the cache's `read_wait_timeout` until set). A player
    /// sets it short, to notice a stalled download while it keeps waiting.
    pub fn set_read_wait(&mut self, wait: Duration) {
        if let Source::Growing { wait: w, .. } = &mut self.source {
            *w = wait;
        }
    }

    /// Waits (blocking, at most `timeout`) until the first `bytes` bytes can be read, the
    /// download ends or fails; returns how many can be read then ([`TrackReader::available`]).
    pub fn wait_available(&self, bytes: u64, timeout: Duration) -> u64 {
        let Source::Growing { shared, .. } = &self.source else {
            return self.available();
        };
        let deadline = Instant::now() + timeout;
        let mut st = shared.lock();
        loop {
            let now = Instant::now();
            if st.valid_len >= bytes || st.outcome.is_some() || now >= deadline {
                return st.valid_len;
            }
            st = shared.wait(st, deadline - now);
        }
    }

    /// The track id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The total length, once known.
    pub fn len(&self) -> Option<u64> {
        match &self.source {
            Source::Complete { len, .. } => Some(*len),
            Source::Growing { shared, .. } => shared.lock().total,
        }
    }

    /// Whether the length is known to be zero.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the file is complete and verified.
    pub fn is_complete(&self) -> bool {
        self.final_path().is_some()
    }

    /// The path of the complete, verified file (content-addressed), once it exists.
    pub fn final_path(&self) -> Option<PathBuf> {
        match &self.source {
            Source::Complete { path, .. } => Some(path.clone()),
            Source::Growing { shared, .. } => match &shared.lock().outcome {
                Some(Ok(p)) => Some(p.clone()),
                _ => None,
            },
        }
    }

    /// Why the download under this reader failed, once it has (a reader over a
    /// complete file never fails this way).
    pub fn failed(&self) -> Option<crate::CacheError> {
        match &self.source {
            Source::Complete { .. } => None,
            Source::Growing { shared, .. } => match &shared.lock().outcome {
                Some(Err(e)) => Some(e.clone()),
                _ => None,
            },
        }
    }

    /// How many bytes from the start can be read without waiting.
    pub fn available(&self) -> u64 {
        match &self.source {
            Source::Complete { len, .. } => *len,
            Source::Growing { shared, .. } => shared.lock().valid_len,
        }
    }

    fn read_growing(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Source::Growing {
            shared,
            file,
            file_pos,
            generation,
            wait,
        } = &mut self.source
        else {
            return Ok(0);
        };
        let deadline = Instant::now() + *wait;
        let mut st = shared.lock();
        loop {
            if st.generation != *generation {
                if self.pos > st.diverged_at {
                    return Err(io::Error::other(format!(
                        "track {}: content changed on the server during the download",
                        self.id
                    )));
                }
                *generation = st.generation;
            }
            if let Some(Err(e)) = &st.outcome {
                return Err(io::Error::other(e.clone()));
            }
            if self.pos < st.valid_len {
                break;
            }
            if matches!(st.outcome, Some(Ok(_))) {
                return Ok(0);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "track {}: byte {} not downloaded within {:?}",
                        self.id, self.pos, wait
                    ),
                ));
            }
            st = shared.wait(st, deadline - now);
        }
        // Read under the lock: the writer truncates or renames only under it too.
        let want = usize::try_from(st.valid_len - self.pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let f = match file {
            Some(f) => f,
            None => {
                *file_pos = 0;
                file.insert(File::open(&st.path)?)
            }
        };
        if *file_pos != self.pos {
            f.seek(SeekFrom::Start(self.pos))?;
        }
        let n = f.read(&mut buf[..want])?;
        self.pos += n as u64;
        *file_pos = self.pos;
        // Once complete, switch to the lock-free path.
        if let Some(Ok(path)) = &st.outcome
            && let Some(f) = file.take()
        {
            let len = st.valid_len;
            let path = path.clone();
            drop(st);
            shared.readers.fetch_sub(1, Ordering::SeqCst);
            self.source = Source::Complete { file: f, len, path };
            if let Source::Complete { file, .. } = &mut self.source {
                file.seek(SeekFrom::Start(self.pos))?;
            }
        }
        Ok(n)
    }

    /// The length for `SeekFrom::End`, waiting (bounded) until it is known.
    fn wait_len(&self) -> io::Result<u64> {
        match &self.source {
            Source::Complete { len, .. } => Ok(*len),
            Source::Growing { shared, wait, .. } => {
                let deadline = Instant::now() + *wait;
                let mut st = shared.lock();
                loop {
                    if let Some(Ok(_)) = &st.outcome {
                        return Ok(st.valid_len);
                    }
                    if let Some(Err(e)) = &st.outcome {
                        return Err(io::Error::other(e.clone()));
                    }
                    if let Some(t) = st.total {
                        return Ok(t);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("track {}: length not known within {wait:?}", self.id),
                        ));
                    }
                    st = shared.wait(st, deadline - now);
                }
            }
        }
    }
}

impl Read for TrackReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match &mut self.source {
            Source::Complete { file, .. } => {
                let n = file.read(buf)?;
                self.pos += n as u64;
                Ok(n)
            }
            Source::Growing { .. } => self.read_growing(buf),
        }
    }
}

impl Seek for TrackReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.wait_len()?.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start or overflow",
            )
        })?;
        if let Source::Complete { file, .. } = &mut self.source {
            file.seek(SeekFrom::Start(target))?;
        }
        self.pos = target;
        Ok(target)
    }
}

impl Drop for TrackReader {
    fn drop(&mut self) {
        if let Source::Growing { shared, .. } = &self.source {
            shared.readers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

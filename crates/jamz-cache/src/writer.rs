//! The partial-download file: appends, hashes as it goes, compares when a server
//! resends bytes we already have, and commits the verified file into place
//! (fsync, rename, fsync of the directory). Synchronous: runs on blocking threads.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::CacheError;
use crate::layout::{Layout, remove_file_if_exists, sync_dir};
use crate::shared::Shared;

/// Buffer for hashing a kept partial file at start-up: 256 KiB keeps syscalls few
/// without a large allocation per download.
const HASH_BUF: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct PartialWriter {
    id: String,
    path: PathBuf,
    file: File,
    /// Where the file's OS cursor is.
    cursor: u64,
    /// sha256 of bytes `[0, write_pos)`.
    hasher: Sha256,
    /// Where the next byte from the server goes.
    write_pos: u64,
    /// Bytes in the file that are valid (published to readers as `valid_len`).
    len: u64,
    shared: Arc<Shared>,
}

/// What a verified, committed file is.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
}

impl PartialWriter {
    /// Opens (creating) the partial file and hashes what it already holds.
    pub fn open(id: &str, path: PathBuf, shared: Arc<Shared>) -> Result<Self, CacheError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| CacheError::io(id, "opening the partial download", e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; HASH_BUF];
        let mut len = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| CacheError::io(id, "reading the partial download", e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        {
            let mut st = shared.lock();
            st.valid_len = len;
        }
        shared.notify(len);
        Ok(PartialWriter {
            id: id.to_owned(),
            path,
            file,
            cursor: len,
            hasher,
            write_pos: len,
            len,
            shared,
        })
    }

    /// Where the next byte goes (the resume offset).
    pub fn offset(&self) -> u64 {
        self.write_pos
    }

    /// The server resends from byte 0 (it ignored `Range`): compare instead of append
    /// until we are past what we have.
    pub fn rewind(&mut self) {
        self.write_pos = 0;
        self.hasher = Sha256::new();
    }

    /// Drops everything downloaded so far.
    pub fn reset(&mut self) -> Result<(), CacheError> {
        self.truncate_to(0)?;
        self.rewind();
        Ok(())
    }

    /// Cuts the file to `at` bytes; readers past `at` will fail (content changed).
    fn truncate_to(&mut self, at: u64) -> Result<(), CacheError> {
        {
            let mut st = self.shared.lock();
            self.file
                .set_len(at)
                .map_err(|e| CacheError::io(&self.id, "truncating the partial download", e))?;
            if at < self.len {
                // Readable bytes went away: readers past `at` must not go on.
                st.generation += 1;
                st.diverged_at = at;
            }
            self.len = at;
            st.valid_len = at;
        }
        self.shared.notify(at);
        Ok(())
    }

    fn seek_to(&mut self, pos: u64) -> Result<(), CacheError> {
        if self.cursor != pos {
            self.file
                .seek(SeekFrom::Start(pos))
                .map_err(|e| CacheError::io(&self.id, "seeking in the partial download", e))?;
            self.cursor = pos;
        }
        Ok(())
    }

    /// Writes the next bytes from the server.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), CacheError> {
        if self.write_pos < self.len {
            let overlap = usize::try_from(self.len - self.write_pos)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let mut old = vec![0u8; overlap];
            self.seek_to(self.write_pos)?;
            self.file
                .read_exact(&mut old)
                .map_err(|e| CacheError::io(&self.id, "reading the partial download", e))?;
            self.cursor += overlap as u64;
            if old[..] == data[..overlap] {
                self.hasher.update(&data[..overlap]);
                self.write_pos += overlap as u64;
                data = &data[overlap..];
            } else {
                tracing::warn!(
                    track = %self.id,
                    at = self.write_pos,
                    "resent bytes differ from the kept ones; dropping the rest of the partial"
                );
                self.truncate_to(self.write_pos)?;
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        self.seek_to(self.write_pos)?;
        let written = self.file.write_all(data);
        // On a short write the cursor is unknown: force a seek next time.
        self.cursor = u64::MAX;
        if let Err(e) = written {
            // Drop whatever part of `data` did land, so the file holds exactly the
            // `len` valid bytes (a retry after making room resumes from there).
            if let Err(t) = self.file.set_len(self.len) {
                tracing::warn!(track = %self.id, error = %t, "could not trim a short write");
            }
            return Err(CacheError::io(&self.id, "writing the partial download", e));
        }
        self.cursor = self.write_pos + data.len() as u64;
        self.hasher.update(data);
        self.write_pos += data.len() as u64;
        if self.write_pos > self.len {
            self.len = self.write_pos;
            self.shared.lock().valid_len = self.len;
            self.shared.notify(self.len);
        }
        Ok(())
    }

    /// Verifies size and hash, then fsync, rename into `files/<sha256>`, fsync of the
    /// directory. After this returns, the file is complete and durable; the caller
    /// writes the index row.
    pub fn commit(
        &mut self,
        layout: &Layout,
        expected_sha256: Option<&str>,
        expected_size: Option<u64>,
    ) -> Result<Committed, CacheError> {
        if self.write_pos < self.len {
            // A resent body ended before the bytes we had: they are stale.
            self.truncate_to(self.write_pos)?;
        }
        let size = self.len;
        if let Some(expected) = expected_size
            && expected != size
        {
            return Err(CacheError::SizeMismatch {
                id: self.id.clone(),
                expected,
                got: size,
            });
        }
        let sha256 = hex::encode(self.hasher.clone().finalize());
        if let Some(expected) = expected_sha256
            && expected != sha256
        {
            return Err(CacheError::HashMismatch {
                id: self.id.clone(),
                expected: expected.to_owned(),
                got: sha256,
            });
        }
        // The file must hold exactly the verified bytes (a failed write may have left
        // more behind).
        let on_disk = self
            .file
            .metadata()
            .map_err(|e| CacheError::io(&self.id, "checking the downloaded file", e))?
            .len();
        if on_disk != size {
            self.file
                .set_len(size)
                .map_err(|e| CacheError::io(&self.id, "trimming the downloaded file", e))?;
        }
        self.file
            .sync_all()
            .map_err(|e| CacheError::io(&self.id, "syncing the downloaded file", e))?;
        let path = layout.file(&sha256);
        {
            let mut st = self.shared.lock();
            std::fs::rename(&self.path, &path)
                .map_err(|e| CacheError::io(&self.id, "moving the file into place", e))?;
            st.path = path.clone();
        }
        sync_dir(&layout.files)
            .map_err(|e| CacheError::io(&self.id, "syncing the files directory", e))?;
        Ok(Committed { sha256, size, path })
    }

    /// Deletes the partial file (a verdict against its bytes, or a full disk). The
    /// outcome is published in the same critical section, so a reader never finds
    /// the file gone without knowing why.
    pub fn discard(&mut self, why: CacheError) {
        {
            let mut st = self.shared.lock();
            st.outcome = Some(Err(why));
            if let Err(e) = remove_file_if_exists(&self.path) {
                tracing::warn!(track = %self.id, error = %e, "could not delete the partial download");
            }
        }
        self.shared.notify(self.len);
    }
}

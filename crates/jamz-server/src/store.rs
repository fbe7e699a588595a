//! Content-addressed file store for uploads: `<dir>/<aa>/<sha256>`, written as
//! a temp file, fsynced, renamed, directory fsynced, so a crash never leaves a
//! half-written file under a real key.
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

/// How long an upload may be slow (or stalled) before its rate counts.
pub const UPLOAD_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
}

pub struct StoredFile {
    pub key: String,
    pub size: u64,
}

impl FileStore {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        crate::fsperm::create_private_dir(&dir.join("tmp"))?;
        // Temp files left by a crash mid-upload are garbage: nothing refers to them.
        for entry in std::fs::read_dir(dir.join("tmp"))? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The file for `key`, if `key` is a well-formed content hash and the file exists.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        let well_formed = key.len() == 64
            && key
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !well_formed {
            return None;
        }
        let path = self.dir.join(&key[..2]).join(key);
        path.is_file().then_some(path)
    }

    /// Streams `body` to the store, refusing more than `max_bytes` and a body
    /// slower than `min_rate` bytes/s (after [`UPLOAD_GRACE`]).
    /// `check` sees the complete file before it is stored; its refusal stores nothing.
    pub async fn put<S, T>(
        &self,
        mut body: S,
        max_bytes: u64,
        min_rate: u64,
        check: impl FnOnce(&Path) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<(StoredFile, T), ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, ApiError>> + Unpin,
        T: Send + 'static,
    {
        let tmp_path = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = match self
            .write_tmp(&tmp_path, &mut body, max_bytes, min_rate)
            .await
        {
            Ok(v) => {
                let path = tmp_path.clone();
                tokio::task::spawn_blocking(move || check(&path))
                    .await
                    .map_err(|e| ApiError::Internal(format!("check task: {e}")))
                    .and_then(|checked| checked.map(|c| (v, c)))
            }
            Err(e) => Err(e),
        };
        let ((key, size), checked) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp_path).await;
                return Err(e);
            }
        };
        let shard = self.dir.join(&key[..2]);
        {
            let shard = shard.clone();
            tokio::task::spawn_blocking(move || crate::fsperm::create_private_dir(&shard))
                .await
                .map_err(std::io::Error::other)??;
        }
        let final_path = shard.join(&key);
        if final_path.is_file() {
            // Same content already stored: the key is the content.
            let _ = tokio::fs::remove_file(&tmp_path).await;
        } else {
            tokio::fs::rename(&tmp_path, &final_path).await?;
            sync_dir(&shard).await?;
        }
        Ok((StoredFile { key, size }, checked))
    }

    async fn write_tmp<S>(
        &self,
        tmp_path: &Path,
        body: &mut S,
        max_bytes: u64,
        min_rate: u64,
    ) -> Result<(String, u64), ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, ApiError>> + Unpin,
    {
        let mut file = tokio::fs::OpenOptions::from(crate::fsperm::private_file())
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp_path)
            .await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let started = tokio::time::Instant::now();
        loop {
            // A body that stops for the whole grace period is not coming.
            let next = tokio::time::timeout(UPLOAD_GRACE, body.next())
                .await
                .map_err(|_| ApiError::TooSlow(format!("nothing received for {UPLOAD_GRACE:?}")))?;
            let Some(chunk) = next else { break };
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(ApiError::TooLarge(format!(
                    "file exceeds the upload limit of {max_bytes} bytes"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
            let elapsed = started.elapsed();
            if elapsed > UPLOAD_GRACE && (size as f64) < min_rate as f64 * elapsed.as_secs_f64() {
                return Err(ApiError::TooSlow(format!(
                    "{size} bytes in {} s is under {min_rate} bytes/s",
                    elapsed.as_secs()
                )));
            }
        }
        if size == 0 {
            return Err(ApiError::Unprocessable("the uploaded file is empty".into()));
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok((hex::encode(hasher.finalize()), size))
    }
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

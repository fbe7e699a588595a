//! Content-addressed file store for uploads: `<dir>/<aa>/<sha256>`, written as
//! a temp file, fsynced, renamed, directory fsynced, so a crash never leaves a
//! half-written file under a real key.
use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

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
        std::fs::create_dir_all(dir.join("tmp"))?;
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

    /// Streams `body` to the store, refusing more than `max_bytes`.
    pub async fn put<S, E>(&self, mut body: S, max_bytes: u64) -> Result<StoredFile, ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp_path = self.dir.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = self.write_tmp(&tmp_path, &mut body, max_bytes).await;
        let (key, size) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp_path).await;
                return Err(e);
            }
        };
        let shard = self.dir.join(&key[..2]);
        tokio::fs::create_dir_all(&shard).await?;
        let final_path = shard.join(&key);
        if final_path.is_file() {
            // Same content already stored: the key is the content.
            let _ = tokio::fs::remove_file(&tmp_path).await;
        } else {
            tokio::fs::rename(&tmp_path, &final_path).await?;
            sync_dir(&shard).await?;
        }
        Ok(StoredFile { key, size })
    }

    async fn write_tmp<S, E>(
        &self,
        tmp_path: &Path,
        body: &mut S,
        max_bytes: u64,
    ) -> Result<(String, u64), ApiError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(tmp_path).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("upload interrupted: {e}")))?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(ApiError::TooLarge(format!(
                    "file exceeds the upload limit of {max_bytes} bytes"
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
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

//! Files this device already has (a track it just uploaded) put into the cache
//! without downloading them back: the same verification and write order as a
//! download (hash, fsync, rename, directory fsync, index row).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::Cache;
use crate::download::record_committed;
use crate::error::CacheError;
use crate::layout::{partial_key, remove_file_if_exists};
use crate::shared::Shared;
use crate::track::CacheTrack;
use crate::writer::PartialWriter;

/// Copy buffer: large enough that a 10 MiB track is a few dozen reads.
const COPY_BUF: usize = 256 * 1024;

/// Tells concurrent imports' temporary files apart.
static IMPORTS: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// Caches the local file `source` as `track`, verified against the track's
    /// sha256 and size when it has them (a file changed since it was uploaded is
    /// refused with `HashMismatch`, and nothing is cached). Returns the cached path.
    ///
    /// A crash part-way leaves a partial file without a row, which the next open
    /// removes.
    pub async fn import_file(
        &self,
        track: &CacheTrack,
        source: &Path,
    ) -> Result<PathBuf, CacheError> {
        track.validate()?;
        let inner = Arc::clone(self.inner());
        let track = track.clone();
        let source = source.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let n = IMPORTS.fetch_add(1, Ordering::Relaxed);
            let tmp = inner.layout.partial.join(format!(
                "import-{}-{}-{n}.part",
                partial_key(&track.id),
                std::process::id()
            ));
            let result = (|| {
                let shared = Arc::new(Shared::new(&track.id, tmp.clone(), track.size));
                let mut writer = PartialWriter::open(&track.id, tmp.clone(), shared)?;
                let mut file = std::fs::File::open(&source)
                    .map_err(|e| CacheError::io(&track.id, "opening the file to cache", e))?;
                let mut buf = vec![0u8; COPY_BUF];
                loop {
                    let n = file
                        .read(&mut buf)
                        .map_err(|e| CacheError::io(&track.id, "reading the file to cache", e))?;
                    if n == 0 {
                        break;
                    }
                    writer.write(&buf[..n])?;
                }
                let committed = writer.commit(
                    &inner.layout,
                    track.expected_sha256().as_deref(),
                    track.size,
                )?;
                record_committed(&inner, &track, &committed, None)
            })();
            if result.is_err() {
                let _ = remove_file_if_exists(&tmp);
            }
            result
        })
        .await
        .map_err(|e| CacheError::io_task_failed("import", "caching a local file", &e))?
    }
}

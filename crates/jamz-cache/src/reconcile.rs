//! Start-up reconciliation of the index with the files on disk.
//!
//! Every crash point of the write order (partial row, partial bytes, fsync, rename,
//! fsync dir, index row, partial row deleted, eviction row deleted, file deleted)
//! leaves one of the states handled here:
//! - a row whose file is missing or has the wrong size: the row is dropped;
//! - a file in `files/` no row points at (renamed but not recorded, or evicted but
//!   not deleted), or with a name that is not a sha256: removed;
//! - a partial file with a partial row: kept, the next fetch resumes it;
//! - a partial file without a row (created before its row was written), or one
//!   whose track is complete already: removed; a partial row without a file: dropped.

use std::collections::HashSet;

use crate::index::Index;
use crate::layout::{Layout, partial_key, remove_file_if_exists};
use crate::track::is_sha256_hex;

/// What reconciliation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Files in `files/` that no row pointed at (or with foreign names).
    pub orphan_files_removed: usize,
    /// Rows whose file was missing or of the wrong size.
    pub rows_dropped: usize,
    /// Partial downloads kept for resumption.
    pub partials_kept: usize,
    /// Partial files or rows removed.
    pub partials_removed: usize,
}

fn file_name(entry: &std::fs::DirEntry) -> Option<String> {
    entry.file_name().to_str().map(str::to_owned)
}

/// Runs reconciliation. I/O errors on single entries are logged and skipped: a file
/// that cannot be removed now is tried again at the next start.
pub(crate) fn reconcile(layout: &Layout, index: &mut Index) -> rusqlite::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();

    // Rows without a (right-sized) file.
    for (id, sha, size) in index.file_rows()? {
        let path = layout.file(&sha);
        let ok = is_sha256_hex(&sha)
            && std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == size);
        if !ok {
            tracing::warn!(track = %id, %sha, "reconcile: file missing or wrong size; dropping the row");
            index.remove(&id)?;
            report.rows_dropped += 1;
        }
    }

    // Files without a row.
    let referenced = index.referenced_files()?;
    match std::fs::read_dir(&layout.files) {
        Ok(dir) => {
            for entry in dir.flatten() {
                let keep = file_name(&entry).is_some_and(|n| referenced.contains(&n));
                if keep || entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                tracing::info!(file = ?entry.path(), "reconcile: removing orphan file");
                match remove_file_if_exists(&entry.path()) {
                    Ok(()) => report.orphan_files_removed += 1,
                    Err(e) => tracing::warn!(error = %e, "reconcile: could not remove orphan"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reconcile: cannot list files/"),
    }

    // Partial downloads.
    let mut wanted = HashSet::new();
    for row in index.partials()? {
        let path = layout.partial_file(&row.track_id);
        let complete = index.get(&row.track_id)?.is_some();
        if complete || !path.is_file() {
            if complete {
                let _ = remove_file_if_exists(&path);
            }
            index.delete_partial(&row.track_id)?;
            report.partials_removed += 1;
        } else {
            wanted.insert(format!("{}.part", partial_key(&row.track_id)));
            report.partials_kept += 1;
        }
    }
    match std::fs::read_dir(&layout.partial) {
        Ok(dir) => {
            for entry in dir.flatten() {
                if file_name(&entry).is_some_and(|n| wanted.contains(&n))
                    || entry.file_type().is_ok_and(|t| t.is_dir())
                {
                    continue;
                }
                tracing::info!(file = ?entry.path(), "reconcile: removing partial without a row");
                match remove_file_if_exists(&entry.path()) {
                    Ok(()) => report.partials_removed += 1,
                    Err(e) => tracing::warn!(error = %e, "reconcile: could not remove partial"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reconcile: cannot list partial/"),
    }
    Ok(report)
}

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
use std::ffi::OsStr;
use std::path::Path;

use crate::index::Index;
use crate::layout::{Layout, remove_file_if_exists};
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

/// Removes every file in `dir` whose name `keep` does not accept (directories are
/// left alone). Returns how many were removed; `what` names them in the logs.
fn sweep(dir: &Path, keep: impl Fn(&OsStr) -> bool, what: &str) -> usize {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(?dir, error = %e, "reconcile: cannot list the directory");
            return 0;
        }
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if keep(&entry.file_name()) || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        tracing::info!(file = ?entry.path(), "reconcile: removing {what}");
        match remove_file_if_exists(&entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(error = %e, "reconcile: could not remove {what}"),
        }
    }
    removed
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
    report.orphan_files_removed = sweep(
        &layout.files,
        |name| name.to_str().is_some_and(|n| referenced.contains(n)),
        "orphan file",
    );

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
            wanted.extend(path.file_name().map(OsStr::to_owned));
            report.partials_kept += 1;
        }
    }
    report.partials_removed += sweep(
        &layout.partial,
        |name| wanted.contains(name),
        "partial without a row",
    );
    Ok(report)
}

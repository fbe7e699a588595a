//! The SQLite index: one row per complete track, one per partial download, and the
//! pinned set. Synchronous; the cache calls it from blocking threads only.
//!
//! Public so that benchmarks and admin tools can drive it directly; applications use
//! [`crate::Cache`].

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::track::{CachedEntry, StoredTrack};

/// Schema migrations; `PRAGMA user_version` holds how many have been applied.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE tracks (
        id          TEXT PRIMARY KEY NOT NULL,
        url         TEXT NOT NULL,
        etag        TEXT,
        sha256      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        mime        TEXT,
        title       TEXT,
        artist      TEXT,
        duration    REAL,
        cached_at   INTEGER NOT NULL,
        last_played INTEGER,
        play_count  INTEGER NOT NULL DEFAULT 0,
        pinned      INTEGER NOT NULL DEFAULT 0,
        -- recency order for LRU: bumped on insert and on every play; a counter
        -- rather than a clock so that ties and clock jumps cannot reorder it
        lru_seq     INTEGER NOT NULL
    );
    CREATE INDEX tracks_by_lru ON tracks(lru_seq);
    CREATE INDEX tracks_by_sha ON tracks(sha256);
    -- the pinned set (the current playlist); may name tracks not cached yet
    CREATE TABLE pins (track_id TEXT PRIMARY KEY NOT NULL);
    -- downloads in progress, kept across restarts for resumption
    CREATE TABLE partials (
        track_id   TEXT PRIMARY KEY NOT NULL,
        url        TEXT NOT NULL,
        etag       TEXT,
        sha256     TEXT,
        size       INTEGER,
        updated_at INTEGER NOT NULL
    );",
];

/// SQLite waits this long for a lock held by another connection (another process
/// cannot hold the directory, but an admin tool may read the index meanwhile).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const ENTRY_COLUMNS: &str = "id, url, etag, sha256, size, mime, title, artist, duration, \
                             cached_at, last_played, play_count, pinned";

/// A download in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRow {
    pub track_id: String,
    pub url: String,
    pub etag: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub updated_at: i64,
}

/// A row removed by eviction or `remove`.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    /// No other row shares the file: it may be deleted.
    pub file_unreferenced: bool,
}

/// The index. One connection, WAL mode.
pub struct Index {
    conn: Connection,
    /// (tracks, bytes of distinct files), kept in step with every committed change
    /// so that eviction and stats do not scan the table (one process owns the
    /// directory, and every change goes through this connection).
    totals: (u64, u64),
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<CachedEntry> {
    Ok(CachedEntry {
        stored: StoredTrack {
            id: row.get(0)?,
            url: row.get(1)?,
            etag: row.get(2)?,
            sha256: row.get(3)?,
            size: to_u64(row.get(4)?),
            mime: row.get(5)?,
            title: row.get(6)?,
            artist: row.get(7)?,
            duration: row.get(8)?,
            cached_at: row.get(9)?,
        },
        last_played: row.get(10)?,
        play_count: to_u64(row.get(11)?),
        pinned: row.get::<_, i64>(12)? != 0,
    })
}

impl Index {
    /// Opens (creating if needed) and migrates the index at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Index> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL: readers never block the writer and a crash never corrupts the file.
        // synchronous=NORMAL in WAL mode survives an application crash; a power cut
        // may lose the last commits, which at worst leaves an orphan file that the
        // next start-up removes (a row is written only after its file is durable).
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "index: WAL mode refused by SQLite");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut index = Index {
            conn,
            totals: (0, 0),
        };
        index.migrate()?;
        index.totals = totals(&index.conn)?;
        Ok(index)
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let applied = usize::try_from(version).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(rusqlite::Error::InvalidQuery).inspect_err(|_| {
                tracing::error!(version, "index: schema is newer than this build knows");
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )?;
            tx.commit()?;
            tracing::info!(version = i + 1, "index: schema migrated");
        }
        Ok(())
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> rusqlite::Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
    }

    /// One complete track.
    pub fn get(&self, id: &str) -> rusqlite::Result<Option<CachedEntry>> {
        self.conn
            .prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM tracks WHERE id = ?1"))?
            .query_row([id], entry_from_row)
            .optional()
    }

    /// All complete tracks, least recently used first.
    pub fn entries(&self) -> rusqlite::Result<Vec<CachedEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM tracks ORDER BY lru_seq"
        ))?;
        stmt.query_map([], entry_from_row)?.collect()
    }

    /// Inserts (or replaces) a complete track as the most recently used. Returns the
    /// row it replaced, if that row pointed at another file.
    pub fn insert(&mut self, e: &StoredTrack) -> rusqlite::Result<Option<Removed>> {
        let tx = self.conn.transaction()?;
        let old = file_of(&tx, &e.id)?;
        let file_known = sha_referenced(&tx, &e.sha256)?;
        let seq = next_seq(&tx)?;
        tx.prepare_cached(
            "INSERT INTO tracks (id, url, etag, sha256, size, mime, title, artist, duration,
                                 cached_at, last_played, play_count, pinned, lru_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, 0,
                     EXISTS (SELECT 1 FROM pins WHERE track_id = ?1), ?11)
             ON CONFLICT(id) DO UPDATE SET
                url = excluded.url, etag = excluded.etag, sha256 = excluded.sha256,
                size = excluded.size, mime = excluded.mime, title = excluded.title,
                artist = excluded.artist, duration = excluded.duration,
                cached_at = excluded.cached_at, pinned = excluded.pinned,
                lru_seq = excluded.lru_seq",
        )?
        .execute(params![
            e.id,
            e.url,
            e.etag,
            e.sha256,
            to_i64(e.size),
            e.mime,
            e.title,
            e.artist,
            e.duration,
            e.cached_at,
            seq
        ])?;
        let replaced = match &old {
            Some((old_sha, size)) if *old_sha != e.sha256 => Some(Removed {
                id: e.id.clone(),
                file_unreferenced: !sha_referenced(&tx, old_sha)?,
                sha256: old_sha.clone(),
                size: *size,
            }),
            _ => None,
        };
        tx.commit()?;
        let (mut count, mut bytes) = self.totals;
        if old.is_none() {
            count += 1;
        }
        if !file_known {
            bytes += e.size;
        }
        if let Some(r) = replaced.as_ref().filter(|r| r.file_unreferenced) {
            bytes = bytes.saturating_sub(r.size);
        }
        self.totals = (count, bytes);
        Ok(replaced)
    }

    /// Records a play: newest in LRU order, `last_played = now`, `play_count + 1`.
    /// Returns whether the track is in the index.
    pub fn mark_played(&mut self, id: &str, now_ms: i64) -> rusqlite::Result<bool> {
        let seq = next_seq(&self.conn)?;
        let n = self
            .conn
            .prepare_cached(
                "UPDATE tracks SET last_played = ?2, play_count = play_count + 1, lru_seq = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, now_ms, seq])?;
        Ok(n > 0)
    }

    /// Replaces the pinned set.
    pub fn set_pinned(&mut self, ids: &[String]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM pins", [])?;
        {
            let mut ins = tx.prepare_cached("INSERT OR IGNORE INTO pins (track_id) VALUES (?1)")?;
            for id in ids {
                ins.execute([id])?;
            }
        }
        tx.execute(
            "UPDATE tracks SET pinned = EXISTS (SELECT 1 FROM pins WHERE track_id = tracks.id)",
            [],
        )?;
        tx.commit()
    }

    /// Pins or unpins one track.
    pub fn pin(&mut self, id: &str, pinned: bool) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        if pinned {
            tx.execute("INSERT OR IGNORE INTO pins (track_id) VALUES (?1)", [id])?;
        } else {
            tx.execute("DELETE FROM pins WHERE track_id = ?1", [id])?;
        }
        tx.execute(
            "UPDATE tracks SET pinned = ?2 WHERE id = ?1",
            params![id, i64::from(pinned)],
        )?;
        tx.commit()
    }

    /// The pinned set.
    pub fn pinned(&self) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT track_id FROM pins ORDER BY track_id")?;
        stmt.query_map([], |r| r.get(0))?.collect()
    }

    /// (tracks, bytes), bytes counting each distinct file once.
    pub fn totals(&self) -> rusqlite::Result<(u64, u64)> {
        Ok(self.totals)
    }

    /// (tracks, bytes) recounted from the table (what `totals` keeps up to date).
    pub fn recount(&self) -> rusqlite::Result<(u64, u64)> {
        totals(&self.conn)
    }

    /// Removes least recently used unpinned tracks until the index is within both
    /// limits. `keep` (the track just added) is never chosen. Stops, with a warning,
    /// when only pinned tracks are left.
    pub fn evict(
        &mut self,
        max_tracks: usize,
        max_bytes: u64,
        keep: Option<&str>,
    ) -> rusqlite::Result<Vec<Removed>> {
        let max_tracks = u64::try_from(max_tracks).unwrap_or(u64::MAX);
        self.evict_until(keep, |count, bytes, _| {
            count <= max_tracks && bytes <= max_bytes
        })
    }

    /// Removes least recently used unpinned tracks (never `keep`) until their files
    /// free at least `needed` bytes, for a download that hit a full disk. Removes
    /// nothing when all evictable tracks together could not free that much.
    pub fn evict_for_space(&mut self, needed: u64, keep: &str) -> rusqlite::Result<Vec<Removed>> {
        let evictable: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(SUM(size), 0) FROM tracks WHERE pinned = 0 AND id != ?1",
            )?
            .query_row([keep], |r| r.get(0))?;
        if to_u64(evictable) < needed {
            return Ok(Vec::new());
        }
        self.evict_until(Some(keep), |_, _, freed| freed >= needed)
    }

    /// Evicts in LRU order until `enough(tracks, bytes, bytes freed)` holds.
    fn evict_until(
        &mut self,
        keep: Option<&str>,
        enough: impl Fn(u64, u64, u64) -> bool,
    ) -> rusqlite::Result<Vec<Removed>> {
        let tx = self.conn.transaction()?;
        let mut removed = Vec::new();
        let (mut count, mut bytes) = self.totals;
        let mut freed = 0u64;
        while !enough(count, bytes, freed) {
            let victim: Option<(String, String, u64)> = tx
                .prepare_cached(
                    "SELECT id, sha256, size FROM tracks WHERE pinned = 0 AND id != ?1
                     ORDER BY lru_seq LIMIT 1",
                )?
                .query_row([keep.unwrap_or("")], |r| {
                    Ok((r.get(0)?, r.get(1)?, to_u64(r.get(2)?)))
                })
                .optional()?;
            let Some((id, sha256, size)) = victim else {
                tracing::warn!(
                    count,
                    bytes,
                    "eviction: not enough room made, every remaining track is pinned or in use"
                );
                break;
            };
            tx.execute("DELETE FROM tracks WHERE id = ?1", [&id])?;
            let file_unreferenced = !sha_referenced(&tx, &sha256)?;
            count -= 1;
            if file_unreferenced {
                bytes = bytes.saturating_sub(size);
                freed += size;
            }
            tracing::debug!(track = %id, "evicted");
            removed.push(Removed {
                id,
                sha256,
                size,
                file_unreferenced,
            });
        }
        tx.commit()?;
        self.totals = (count, bytes);
        Ok(removed)
    }

    /// Removes one track's row.
    pub fn remove(&mut self, id: &str) -> rusqlite::Result<Option<Removed>> {
        let tx = self.conn.transaction()?;
        let out = match file_of(&tx, id)? {
            Some((sha256, size)) => {
                tx.execute("DELETE FROM tracks WHERE id = ?1", [id])?;
                Some(Removed {
                    id: id.to_owned(),
                    file_unreferenced: !sha_referenced(&tx, &sha256)?,
                    sha256,
                    size,
                })
            }
            None => None,
        };
        tx.commit()?;
        if let Some(r) = &out {
            let (count, bytes) = self.totals;
            let freed = if r.file_unreferenced { r.size } else { 0 };
            self.totals = (count.saturating_sub(1), bytes.saturating_sub(freed));
        }
        Ok(out)
    }

    /// Removes every track and partial row (pins stay: they describe the playlist).
    pub fn clear(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM tracks", [])?;
        tx.execute("DELETE FROM partials", [])?;
        tx.commit()?;
        self.totals = (0, 0);
        Ok(())
    }

    /// Whether any row points at this file.
    pub fn is_referenced(&self, sha256: &str) -> rusqlite::Result<bool> {
        sha_referenced(&self.conn, sha256)
    }

    /// Every distinct file hash the index references.
    pub fn referenced_files(&self) -> rusqlite::Result<HashSet<String>> {
        let mut stmt = self.conn.prepare("SELECT DISTINCT sha256 FROM tracks")?;
        stmt.query_map([], |r| r.get(0))?.collect()
    }

    /// (id, sha256, size) of every row, for reconciliation.
    pub fn file_rows(&self) -> rusqlite::Result<Vec<(String, String, u64)>> {
        let mut stmt = self.conn.prepare("SELECT id, sha256, size FROM tracks")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, to_u64(r.get(2)?))))?
            .collect()
    }

    /// Records (or updates) a download in progress.
    pub fn upsert_partial(&mut self, p: &PartialRow) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO partials (track_id, url, etag, sha256, size, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(track_id) DO UPDATE SET url = excluded.url,
                    etag = excluded.etag, sha256 = excluded.sha256, size = excluded.size,
                    updated_at = excluded.updated_at",
            )?
            .execute(params![
                p.track_id,
                p.url,
                p.etag,
                p.sha256,
                p.size.map(to_i64),
                p.updated_at
            ])?;
        Ok(())
    }

    /// A download in progress.
    pub fn get_partial(&self, track_id: &str) -> rusqlite::Result<Option<PartialRow>> {
        self.conn
            .prepare_cached(
                "SELECT track_id, url, etag, sha256, size, updated_at FROM partials
                 WHERE track_id = ?1",
            )?
            .query_row([track_id], partial_from_row)
            .optional()
    }

    /// Every download in progress.
    pub fn partials(&self) -> rusqlite::Result<Vec<PartialRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT track_id, url, etag, sha256, size, updated_at FROM partials ORDER BY track_id",
        )?;
        stmt.query_map([], partial_from_row)?.collect()
    }

    /// Forgets a download in progress.
    pub fn delete_partial(&mut self, track_id: &str) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("DELETE FROM partials WHERE track_id = ?1")?
            .execute([track_id])?;
        Ok(())
    }
}

fn partial_from_row(r: &Row<'_>) -> rusqlite::Result<PartialRow> {
    Ok(PartialRow {
        track_id: r.get(0)?,
        url: r.get(1)?,
        etag: r.get(2)?,
        sha256: r.get(3)?,
        size: r.get::<_, Option<i64>>(4)?.map(to_u64),
        updated_at: r.get(5)?,
    })
}

/// The next LRU sequence number: newer than every row.
fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(lru_seq), 0) + 1 FROM tracks")?
        .query_row([], |r| r.get(0))
}

/// (sha256, size) of a track's row.
fn file_of(conn: &Connection, id: &str) -> rusqlite::Result<Option<(String, u64)>> {
    conn.prepare_cached("SELECT sha256, size FROM tracks WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, to_u64(r.get(1)?))))
        .optional()
}

fn sha_referenced(conn: &Connection, sha256: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM tracks WHERE sha256 = ?1)")?
        .query_row([sha256], |r| r.get(0))
}

fn totals(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    conn.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM tracks),
                (SELECT COALESCE(SUM(size), 0) FROM
                    (SELECT MAX(size) AS size FROM tracks GROUP BY sha256))",
    )?
    .query_row([], |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, sha: &str, size: u64) -> StoredTrack {
        StoredTrack {
            id: id.into(),
            url: format!("http://x/{id}"),
            etag: None,
            sha256: sha.into(),
            size,
            mime: Some("audio/mpeg".into()),
            title: Some(id.to_uppercase()),
            artist: None,
            duration: Some(1.5),
            cached_at: 1,
        }
    }

    fn index() -> (tempfile::TempDir, Index) {
        let dir = tempfile::tempdir().unwrap();
        let idx = Index::open(&dir.path().join("i.sqlite3")).unwrap();
        (dir, idx)
    }

    #[test]
    fn migrations_run_once_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.sqlite3");
        {
            let mut idx = Index::open(&path).unwrap();
            assert_eq!(idx.schema_version().unwrap(), 1);
            idx.insert(&entry("a", "s1", 10)).unwrap();
        }
        let idx = Index::open(&path).unwrap();
        assert_eq!(idx.schema_version().unwrap(), 1);
        assert_eq!(
            idx.get("a").unwrap().unwrap().stored.title.as_deref(),
            Some("A")
        );
    }

    #[test]
    fn eviction_is_lru_and_skips_pins_and_keep() {
        let (_d, mut idx) = index();
        for id in ["a", "b", "c", "d"] {
            idx.insert(&entry(id, &format!("s{id}"), 10)).unwrap();
        }
        idx.mark_played("a", 5).unwrap(); // order now b, c, d, a
        idx.pin("b", true).unwrap();
        let gone = idx.evict(2, u64::MAX, Some("c")).unwrap();
        let ids: Vec<_> = gone.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["d", "a"]);
        let left: Vec<_> = idx
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.stored.id)
            .collect();
        assert_eq!(left, ["b", "c"]);
    }

    #[test]
    fn shared_files_count_once_and_are_kept_while_referenced() {
        let (_d, mut idx) = index();
        idx.insert(&entry("a", "same", 100)).unwrap();
        idx.insert(&entry("b", "same", 100)).unwrap();
        assert_eq!(idx.totals().unwrap(), (2, 100));
        assert_eq!(idx.recount().unwrap(), (2, 100));
        let r = idx.remove("a").unwrap().unwrap();
        assert!(!r.file_unreferenced);
        let r = idx.remove("b").unwrap().unwrap();
        assert!(r.file_unreferenced);
    }

    #[test]
    fn kept_totals_match_a_recount_after_any_sequence() {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let seed = 0x70_7a15;
        let mut rng = StdRng::seed_from_u64(seed);
        let (_d, mut idx) = index();
        for step in 0..2000 {
            let id = format!("t{}", rng.random_range(0..30));
            let sha = format!("s{}", rng.random_range(0..20));
            let size = sha.len() as u64 * 100; // one size per content
            match rng.random_range(0..6) {
                0 | 1 => drop(idx.insert(&entry(&id, &sha, size)).unwrap()),
                2 => drop(idx.remove(&id).unwrap()),
                3 => drop(
                    idx.evict(rng.random_range(0..25), rng.random_range(0..3000), None)
                        .unwrap(),
                ),
                4 => drop(idx.mark_played(&id, step).unwrap()),
                _ => idx.pin(&id, rng.random()).unwrap(),
            }
            assert_eq!(
                idx.totals().unwrap(),
                idx.recount().unwrap(),
                "seed {seed} step {step}"
            );
        }
    }

    #[test]
    fn pins_apply_to_tracks_cached_later() {
        let (_d, mut idx) = index();
        idx.set_pinned(&["later".to_owned()]).unwrap();
        idx.insert(&entry("later", "s", 1)).unwrap();
        assert!(idx.get("later").unwrap().unwrap().pinned);
        idx.set_pinned(&[]).unwrap();
        assert!(!idx.get("later").unwrap().unwrap().pinned);
    }

    #[test]
    fn partial_rows_round_trip() {
        let (_d, mut idx) = index();
        let p = PartialRow {
            track_id: "t".into(),
            url: "http://x/t".into(),
            etag: Some("\"e\"".into()),
            sha256: None,
            size: Some(42),
            updated_at: 7,
        };
        idx.upsert_partial(&p).unwrap();
        assert_eq!(idx.get_partial("t").unwrap(), Some(p));
        idx.delete_partial("t").unwrap();
        assert_eq!(idx.partials().unwrap(), vec![]);
    }
}

//! The tiles on disk, within a byte budget: `<root>/<source id>/<z>-<x>-<y>`, each
//! a [`TileRecord`], the least recently used removed first when a new one would
//! pass the budget. The order of use lives in memory and in each file's
//! modification time (set on every use), so it survives a restart. Files are
//! written under `tmp/` and renamed into place: a crash never leaves half a tile
//! where it would be read (and a damaged one is found by its hash anyway).
//!
//! Blocking file I/O: the cache calls it from a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::record::{MAX_TILE_BYTES, TileRecord};
use super::source::TileKey;

/// A tile of one source.
pub(crate) type Name = (String, TileKey);

/// Room for the header on top of the largest body.
const MAX_FILE_BYTES: u64 = MAX_TILE_BYTES as u64 + 512;

struct Entry {
    size: u64,
    /// Position in the order of use (higher: used later).
    used: u64,
}

pub(crate) struct TileStore {
    root: PathBuf,
    max_bytes: u64,
    entries: HashMap<Name, Entry>,
    /// `used` → tile: the least recently used first.
    order: BTreeMap<u64, Name>,
    bytes: u64,
    next_use: u64,
}

/// What the disk has for a tile.
pub(crate) enum Lookup {
    Hit(TileRecord),
    Miss,
    /// The file was damaged (cut off, overwritten): removed (and logged, with what
    /// was wrong).
    Damaged,
}

impl TileStore {
    /// Opens (creating) the store at `root`: forgets unfinished writes and reads
    /// the order of use from the files' modification times.
    pub fn open(root: &Path, max_bytes: u64) -> io::Result<TileStore> {
        std::fs::create_dir_all(root)?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        let mut found: Vec<(SystemTime, Name, u64)> = Vec::new();
        for source in std::fs::read_dir(root)? {
            let source = source?;
            let Some(id) = source.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if id == "tmp" || !source.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(source.path())? {
                let file = file?;
                let meta = file.metadata()?;
                let key = file.file_name().to_str().and_then(TileKey::from_file_name);
                match key {
                    Some(key) if meta.is_file() => {
                        let when = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        found.push((when, (id.clone(), key), meta.len()));
                    }
                    // Not ours (or a directory where a tile should be): leave it.
                    _ => tracing::debug!(path = ?file.path(), "not a tile, ignored"),
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut store = TileStore {
            root: root.to_owned(),
            max_bytes,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            next_use: 0,
        };
        for (_, name, size) in found {
            store.index(name, size);
        }
        // A smaller budget than last time: down to it now.
        store.evict(0);
        Ok(store)
    }

    fn path(&self, name: &Name) -> PathBuf {
        self.root.join(&name.0).join(name.1.file_name())
    }

    fn index(&mut self, name: Name, size: u64) {
        self.next_use += 1;
        let used = self.next_use;
        if let Some(old) = self.entries.insert(name.clone(), Entry { size, used }) {
            self.order.remove(&old.used);
            self.bytes -= old.size;
        }
        self.order.insert(used, name);
        self.bytes += size;
    }

    fn unindex(&mut self, name: &Name) {
        if let Some(old) = self.entries.remove(name) {
            self.order.remove(&old.used);
            self.bytes -= old.size;
        }
    }

    /// The tile when it is on disk and whole; a use that moves it to the back of
    /// the eviction order.
    pub fn get(&mut self, name: &Name) -> io::Result<Lookup> {
        let Some(size) = self.entries.get(name).map(|e| e.size) else {
            return Ok(Lookup::Miss);
        };
        let path = self.path(name);
        let read = if size > MAX_FILE_BYTES {
            Err("larger than any tile")
        } else {
            match std::fs::read(&path) {
                Ok(bytes) => TileRecord::decode(&bytes),
                // Removed behind our back: a miss.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.unindex(name);
                    return Ok(Lookup::Miss);
                }
                Err(e) => return Err(e),
            }
        };
        match read {
            Ok(record) => {
                self.index(name.clone(), size);
                // Best effort: the order of use across restarts.
                if let Err(e) = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now()))
                {
                    tracing::debug!(?path, "cannot mark a tile used: {e}");
                }
                Ok(Lookup::Hit(record))
            }
            Err(why) => {
                tracing::warn!(?path, "damaged map tile removed: {why}");
                self.remove(name)?;
                Ok(Lookup::Damaged)
            }
        }
    }

    /// Keeps a tile, then removes the least recently used ones past the budget. A
    /// tile larger than the whole budget is not kept.
    pub fn put(&mut self, name: &Name, record: &TileRecord) -> io::Result<()> {
        let bytes = record.encode();
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Ok(());
        }
        // A newer copy replaces the old one: only the new one counts against the budget.
        self.unindex(name);
        self.evict(size);
        let dir = self.root.join(&name.0);
        std::fs::create_dir_all(&dir)?;
        let tmp_dir = self.root.join("tmp");
        std::fs::create_dir_all(&tmp_dir)?;
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let tmp = tmp_dir.join(format!(
            "{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written =
            std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, self.path(name)));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.index(name.clone(), size);
        Ok(())
    }

    /// Removes least recently used tiles until `incoming` more bytes fit.
    fn evict(&mut self, incoming: u64) {
        while self.bytes + incoming > self.max_bytes {
            let Some((_, name)) = self.order.pop_first() else {
                break;
            };
            if let Err(e) = self.remove(&name) {
                // Still counted as gone: the next open finds the file and retries.
                tracing::warn!(?name, "cannot evict a map tile: {e}");
            }
        }
    }

    fn remove(&mut self, name: &Name) -> io::Result<()> {
        self.unindex(name);
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes every tile.
    pub fn clear(&mut self) -> io::Result<()> {
        let names: Vec<Name> = self.entries.keys().cloned().collect();
        for name in &names {
            self.remove(name)?;
        }
        Ok(())
    }

    pub fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
        self.evict(0);
    }

    pub fn tiles(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

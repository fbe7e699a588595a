//! The track cache while no session runs. The cache is one process's (and one
//! node's) at a time, so these refuse while a session holds it; in a session the
//! node's `status` events carry the same figures and `cache-clear` empties it.

use jamz_cache::Cache;
use serde::{Deserialize, Serialize};

use super::App;
use crate::error::NodeError;
use crate::tracks::open_cache;

/// The track cache on disk.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInfo {
    pub dir: String,
    pub tracks: u64,
    pub bytes: u64,
}

impl App {
    pub async fn cache_info(&self) -> Result<CacheInfo, NodeError> {
        // Held to the end: no session opens the cache while this one has it.
        let _idle = self.session.idle().await?;
        let cache = open_cache(Some(&self.dirs.cache)).await?;
        self.cache_info_of(&cache).await
    }

    /// Empties the cache; answers what is left (nothing).
    pub async fn cache_clear(&self) -> Result<CacheInfo, NodeError> {
        let _idle = self.session.idle().await?;
        let cache = open_cache(Some(&self.dirs.cache)).await?;
        cache.clear().await?;
        self.cache_info_of(&cache).await
    }

    async fn cache_info_of(&self, cache: &Cache) -> Result<CacheInfo, NodeError> {
        let stats = cache.stats().await?;
        Ok(CacheInfo {
            dir: self.dirs.cache.to_string_lossy().into_owned(),
            tracks: stats.tracks,
            bytes: stats.bytes,
        })
    }
}

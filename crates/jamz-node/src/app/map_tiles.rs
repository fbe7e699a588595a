//! The map's tiles for the app: the web view asks the shell for `z/x/y` (a custom
//! protocol), the shell asks here, and this asks the tile cache
//! (`jamz_cache::tiles`) in `<cache>/map-tiles`, which fetches from the tile
//! server the settings name. So the web view reaches no tile server itself (its
//! CSP allows none), and every tile seen once still draws in a dead zone.

use jamz_cache::tiles::{
    DEFAULT_TILE_CACHE_BYTES, Tile, TileCache, TileCacheConfig, TileKey, TileSource,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, OnceCell};

use super::App;
use crate::error::NodeError;

/// The tile server in use (none until the UI says) and the cache, opened at first use.
#[derive(Default)]
pub(crate) struct MapTiles {
    source: Mutex<Option<TileSource>>,
    cache: OnceCell<TileCache>,
}

/// The map tiles as the UI shows them.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MapTilesInfo {
    /// The tile URL template in use; `None`: no tile server (cars on a blank map).
    pub source: Option<String>,
    /// Tiles on this device and their size on disk, within `max_bytes`.
    pub tiles: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    /// Since the app started: tiles shown from this device, fetched, not available.
    pub from_cache: u64,
    pub fetched: u64,
    pub failed: u64,
}

impl App {
    async fn tile_cache(&self) -> Result<&TileCache, NodeError> {
        let dir = self.dirs.cache.join("map-tiles");
        let config = TileCacheConfig {
            max_bytes: DEFAULT_TILE_CACHE_BYTES,
            ..TileCacheConfig::default()
        };
        Ok(self
            .map_tiles
            .cache
            .get_or_try_init(|| TileCache::open(dir, config))
            .await?)
    }

    /// Where tiles come from from now on: a template with `{z}`, `{x}` and `{y}`, or
    /// `None` for no tile server.
    pub async fn set_map_tiles(&self, template: Option<&str>) -> Result<MapTilesInfo, NodeError> {
        let source = match template.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Some(TileSource::parse(t)?),
            None => None,
        };
        *self.map_tiles.source.lock().await = source;
        self.map_tiles_info().await
    }

    /// The tile at `path` (`z/x/y`, as the web view asks) of the tile server in use.
    pub async fn map_tile(&self, path: &str) -> Result<Tile, NodeError> {
        let key = TileKey::parse(path)?;
        let Some(source) = self.map_tiles.source.lock().await.clone() else {
            return Err(NodeError::Invalid("no map tile server is set".into()));
        };
        Ok(self.tile_cache().await?.tile(&source, key).await?)
    }

    pub async fn map_tiles_info(&self) -> Result<MapTilesInfo, NodeError> {
        let stats = self.tile_cache().await?.stats().await;
        Ok(MapTilesInfo {
            source: self
                .map_tiles
                .source
                .lock()
                .await
                .as_ref()
                .map(|s| s.template().to_owned()),
            tiles: stats.tiles,
            bytes: stats.bytes,
            max_bytes: stats.max_bytes,
            from_cache: stats.from_cache,
            fetched: stats.fetched,
            failed: stats.failed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directories::Dirs;
    use crate::error::ErrorCode;

    fn app(dir: &std::path::Path) -> App {
        App::new(Dirs {
            config: dir.join("config"),
            cache: dir.join("cache"),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn no_tile_without_a_server_and_bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let e = app.map_tile("1/0/0").await.unwrap_err();
        assert_eq!(e.to_string(), "no map tile server is set");
        let e = app
            .set_map_tiles(Some("file:///etc/{z}/{x}/{y}"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Invalid);
        let info = app
            .set_map_tiles(Some("http://127.0.0.1:9/{z}/{x}/{y}.png"))
            .await
            .unwrap();
        assert_eq!(
            info.source.as_deref(),
            Some("http://127.0.0.1:9/{z}/{x}/{y}.png")
        );
        assert_eq!(info.tiles, 0);
        let e = app.map_tile("../../etc/passwd").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Invalid);
        // Nothing listens on port 9: not on this device, cannot reach the server.
        let e = app.map_tile("/1/0/0").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unreachable, "{e}");
        assert!(dir.path().join("cache/map-tiles").is_dir());
        assert_eq!(app.set_map_tiles(None).await.unwrap().source, None);
    }
}

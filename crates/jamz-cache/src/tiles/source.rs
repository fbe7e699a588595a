//! Where tiles come from: a URL template with `{z}`, `{x}` and `{y}`, and the
//! address of one tile in the Web Mercator pyramid.

use std::fmt;

use sha2::{Digest, Sha256};

use super::TileError;

/// Deepest zoom level a tile may have (tile servers stop at 19-22).
pub const MAX_ZOOM: u8 = 22;
/// Longest template accepted.
const MAX_TEMPLATE_LEN: usize = 2048;

/// A tile server's URL template, e.g. `https://tile.openstreetmap.org/{z}/{x}/{y}.png`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileSource {
    template: String,
    /// Names this source's directory in the cache: tiles of two servers never mix.
    id: String,
}

impl TileSource {
    /// An `http(s)` template with each of `{z}`, `{x}` and `{y}` and no other
    /// placeholder, whitespace or control character.
    pub fn parse(template: &str) -> Result<TileSource, TileError> {
        let t = template.trim();
        let bad = |reason: &str| TileError::BadTemplate {
            template: t.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        if t.len() > MAX_TEMPLATE_LEN {
            return Err(bad("longer than 2048 characters"));
        }
        let Some(rest) = t
            .strip_prefix("https://")
            .or_else(|| t.strip_prefix("http://"))
        else {
            return Err(bad("not an http:// or https:// URL"));
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("no host"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains a space or a control character"));
        }
        for p in ["{z}", "{x}", "{y}"] {
            if !t.contains(p) {
                return Err(bad(&format!("has no {p}")));
            }
        }
        let left = t.replace("{z}", "").replace("{x}", "").replace("{y}", "");
        if left.contains('{') || left.contains('}') {
            return Err(bad("has a placeholder other than {z}, {x} and {y}"));
        }
        let id = hex::encode(&Sha256::digest(t.as_bytes())[..8]);
        Ok(TileSource {
            template: t.to_owned(),
            id,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// Short, file-name safe, stable for the same template.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The URL of one tile.
    pub fn url(&self, tile: TileKey) -> String {
        self.template
            .replace("{z}", &tile.z.to_string())
            .replace("{x}", &tile.x.to_string())
            .replace("{y}", &tile.y.to_string())
    }
}

/// One tile: zoom `z`, column `x`, row `y` (both below `2^z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl TileKey {
    pub fn new(z: u8, x: u32, y: u32) -> Result<TileKey, TileError> {
        let path = format!("{z}/{x}/{y}");
        if z > MAX_ZOOM {
            return Err(TileError::BadTile {
                path,
                reason: format!("zoom over {MAX_ZOOM}"),
            });
        }
        let side = 1u64 << z;
        if u64::from(x) >= side || u64::from(y) >= side {
            return Err(TileError::BadTile {
                path,
                reason: format!("x and y must be under {side} at zoom {z}"),
            });
        }
        Ok(TileKey { z, x, y })
    }

    /// `z/x/y`, with or without a leading `/` and an image extension on `y`
    /// (`/12/2144/1434.png`).
    pub fn parse(path: &str) -> Result<TileKey, TileError> {
        let bad = |reason: &str| TileError::BadTile {
            path: path.chars().take(100).collect(),
            reason: reason.to_owned(),
        };
        let p = path.trim_start_matches('/');
        let mut parts = p.split('/');
        let (Some(z), Some(x), Some(y), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not z/x/y"));
        };
        let y = y.split_once('.').map_or(y, |(n, _)| n);
        let num = |s: &str| -> Result<u64, TileError> {
            if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("z, x and y must be whole numbers"));
            }
            s.parse()
                .map_err(|_| bad("z, x and y must be whole numbers"))
        };
        let (z, x, y) = (num(z)?, num(x)?, num(y)?);
        let z = u8::try_from(z).map_err(|_| bad("zoom too large"))?;
        let x = u32::try_from(x).map_err(|_| bad("x too large"))?;
        let y = u32::try_from(y).map_err(|_| bad("y too large"))?;
        TileKey::new(z, x, y)
    }

    /// The tile's file name in its source's directory.
    pub(crate) fn file_name(self) -> String {
        format!("{}-{}-{}", self.z, self.x, self.y)
    }

    /// The inverse of [`TileKey::file_name`]; `None` for anything else.
    pub(crate) fn from_file_name(name: &str) -> Option<TileKey> {
        let mut it = name.split('-');
        let (Some(z), Some(x), Some(y), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return None;
        };
        TileKey::new(z.parse().ok()?, x.parse().ok()?, y.parse().ok()?).ok()
    }
}

impl fmt::Display for TileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        let osm = TileSource::parse(" https://tile.openstreetmap.org/{z}/{x}/{y}.png ").unwrap();
        assert_eq!(
            osm.template(),
            "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
        );
        assert_eq!(
            osm.url(TileKey::new(3, 4, 5).unwrap()),
            "https://tile.openstreetmap.org/3/4/5.png"
        );
        assert_eq!(osm.id().len(), 16);
        for (t, why) in [
            ("ftp://x/{z}/{x}/{y}", "not an http"),
            ("https:///{z}/{x}/{y}", "no host"),
            ("https://x/{z}/{x}", "has no {y}"),
            ("https://x/{s}/{z}/{x}/{y}", "other than"),
            ("https://x/{z}/{x}/{y} .png", "space"),
            ("file:///etc/passwd", "not an http"),
        ] {
            let e = TileSource::parse(t).unwrap_err().to_string();
            assert!(e.contains(why), "{t}: {e}");
        }
        assert_ne!(
            TileSource::parse("http://a/{z}/{x}/{y}").unwrap().id(),
            TileSource::parse("http://b/{z}/{x}/{y}").unwrap().id()
        );
    }

    #[test]
    fn tile_addresses_are_checked() {
        assert_eq!(
            TileKey::parse("/12/2144/1434.png").unwrap(),
            TileKey::new(12, 2144, 1434).unwrap()
        );
        assert_eq!(
            TileKey::parse("0/0/0").unwrap(),
            TileKey::new(0, 0, 0).unwrap()
        );
        for p in [
            "",
            "1/2",
            "1/2/3/4",
            "1/2/x",
            "1/-2/0",
            "23/0/0",
            "1/2/0",
            "2/0/4",
            "99999999999/0/0",
            "1/0/0/../..",
            "1/+1/0",
        ] {
            assert!(TileKey::parse(p).is_err(), "{p:?} accepted");
        }
        let k = TileKey::new(5, 31, 7).unwrap();
        assert_eq!(TileKey::from_file_name(&k.file_name()), Some(k));
        assert_eq!(TileKey::from_file_name("5-32-7"), None);
        assert_eq!(TileKey::from_file_name("tmp"), None);
    }
}

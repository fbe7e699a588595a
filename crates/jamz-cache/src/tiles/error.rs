//! The tile cache's error type.

/// What can go wrong getting a map tile. Each names the tile (`z/x/y`) when there
/// is one, and says what happened once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The tile URL template is not one the cache fetches from.
    #[error("map tile URL {template:?}: {reason}")]
    BadTemplate { template: String, reason: String },

    /// The tile address is outside the map (`z` over 22, `x` or `y` past `2^z - 1`)
    /// or not `z/x/y`.
    #[error("map tile {path:?}: {reason}")]
    BadTile { path: String, reason: String },

    /// The tile is not on this device and the tile server could not give it.
    #[error("map tile {tile}: not on this device and {reason}{}", damaged_note(*.was_damaged))]
    Unavailable {
        tile: String,
        reason: String,
        /// A copy was on disk but damaged (removed).
        was_damaged: bool,
    },

    /// The cache's directory cannot be used.
    #[error("map tile cache {path}: {message}")]
    Disk { path: String, message: String },

    /// The HTTP client could not be built (TLS set-up).
    #[error("map tile client: {message}")]
    Client { message: String },
}

fn damaged_note(was_damaged: bool) -> &'static str {
    if was_damaged {
        " (the copy on disk was damaged and has been removed)"
    } else {
        ""
    }
}

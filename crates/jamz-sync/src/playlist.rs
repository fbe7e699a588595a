//! The playlist and its rules: anyone appends, only the DJ deletes or reorders (checked by
//! the engine), no duplicates (same url, else same title+artist), bounded length.
use jamz_proto::Track;

use crate::constants::MAX_PLAYLIST_LEN;
use crate::error::SyncError;

/// An ordered, duplicate-free list of tracks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Playlist {
    tracks: Vec<Track>,
}

impl Playlist {
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == id)
    }

    /// The entry `track` duplicates (by the protocol's rule), if any.
    pub fn duplicate_of(&self, track: &Track) -> Option<&Track> {
        self.tracks.iter().find(|t| t.is_duplicate_of(track))
    }

    /// Replaces the whole list (a server's playlist). Later duplicates of an earlier entry are
    /// dropped (web clients may send them); too long a list is refused and nothing changes.
    pub fn replace(&mut self, tracks: Vec<Track>) -> Result<(), SyncError> {
        if tracks.len() > MAX_PLAYLIST_LEN {
            return Err(SyncError::PlaylistTooLong {
                len: tracks.len(),
                max: MAX_PLAYLIST_LEN,
            });
        }
        let mut kept: Vec<Track> = Vec::with_capacity(tracks.len());
        for t in tracks {
            if !kept.iter().any(|k| k.is_duplicate_of(&t)) {
                kept.push(t);
            }
        }
        self.tracks = kept;
        Ok(())
    }

    /// Checks that `track` may be appended (something to play: an audio URL, a video id or a
    /// preview; no duplicate; room left).
    pub fn check_append(&self, track: &Track) -> Result<(), SyncError> {
        if !crate::sources::playable_somewhere(track) {
            return Err(SyncError::TrackWithoutUrl {
                title: track.title.clone(),
            });
        }
        if let Some(d) = self.duplicate_of(track) {
            return Err(SyncError::Duplicate {
                title: d.title.clone(),
                artist: d.artist.clone(),
            });
        }
        if self.tracks.len() >= MAX_PLAYLIST_LEN {
            return Err(SyncError::PlaylistTooLong {
                len: self.tracks.len() + 1,
                max: MAX_PLAYLIST_LEN,
            });
        }
        Ok(())
    }

    /// Appends `track` if the rules allow it.
    pub fn append(&mut self, track: Track) -> Result<(), SyncError> {
        self.check_append(&track)?;
        self.tracks.push(track);
        Ok(())
    }

    /// Removes the track with id `id`.
    pub fn remove(&mut self, id: &str) -> Result<Track, SyncError> {
        let i = self
            .index_of(id)
            .ok_or_else(|| SyncError::UnknownTrack { id: id.to_string() })?;
        Ok(self.tracks.remove(i))
    }

    /// Checks that `order` is a permutation of the current ids.
    pub fn check_reorder(&self, order: &[String]) -> Result<(), SyncError> {
        if order.len() != self.tracks.len() {
            return Err(SyncError::BadReorder {
                reason: format!("{} ids for {} tracks", order.len(), self.tracks.len()),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for id in order {
            if self.get(id).is_none() {
                return Err(SyncError::UnknownTrack { id: id.clone() });
            }
            if !seen.insert(id.as_str()) {
                return Err(SyncError::BadReorder {
                    reason: format!("{id:?} appears twice"),
                });
            }
        }
        Ok(())
    }

    /// Puts the tracks in `order` (a permutation of the current ids).
    pub fn reorder(&mut self, order: &[String]) -> Result<(), SyncError> {
        self.check_reorder(order)?;
        let mut out = Vec::with_capacity(order.len());
        for id in order {
            if let Some(t) = self.get(id) {
                out.push(t.clone());
            }
        }
        self.tracks = out;
        Ok(())
    }

    /// The track after (`step` = 1) or before (`step` = -1) `id`.
    pub fn neighbour(&self, id: &str, step: isize) -> Option<&Track> {
        let i = self.index_of(id)?;
        let j = i.checked_add_signed(step)?;
        self.tracks.get(j)
    }
}

//! Tag reading for uploads: title, artist, album, duration and cover art.

use std::path::Path;

use symphonia::core::formats::{FormatReader, TrackType};
use symphonia::core::meta::{MetadataRevision, StandardTag, StandardVisualKey, Visual};

use crate::decode::probe;
use crate::error::Result;

/// The tags of one file. Every field is optional: untagged files are common.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    /// Length in seconds, from the container (no full decode).
    pub duration_s: Option<f64>,
    pub cover: Option<Cover>,
}

/// An embedded picture, as stored (usually JPEG or PNG).
#[derive(Clone, PartialEq)]
pub struct Cover {
    /// MIME type, e.g. "image/jpeg", when the file states it.
    pub media_type: Option<String>,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Cover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cover")
            .field("media_type", &self.media_type)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// Reads the tags of a local file without decoding its audio.
pub fn read_tags(path: &Path) -> Result<Tags> {
    let mut reader = probe(path)?;
    let mut tags = Tags {
        duration_s: duration_of(reader.as_ref()),
        ..Tags::default()
    };
    // Walk every metadata revision, oldest first; later revisions override earlier ones.
    let mut meta = reader.metadata();
    loop {
        if let Some(rev) = meta.current() {
            apply_revision(&mut tags, rev);
        }
        if meta.pop().is_none() {
            break;
        }
    }
    Ok(tags)
}

fn duration_of(reader: &dyn FormatReader) -> Option<f64> {
    let track = reader.default_track(TrackType::Audio)?;
    if let (Some(tb), Some(d)) = (track.time_base, track.duration) {
        return tb.calc_duration(d).map(|t| t.as_secs_f64());
    }
    let rate = track.codec_params.as_ref()?.audio()?.sample_rate?;
    track.num_frames.map(|n| n as f64 / f64::from(rate))
}

fn apply_revision(tags: &mut Tags, rev: &MetadataRevision) {
    let containers = std::iter::once(&rev.media).chain(rev.per_track.iter().map(|t| &t.metadata));
    for c in containers {
        for tag in &c.tags {
            match &tag.std {
                Some(StandardTag::TrackTitle(v)) => tags.title = Some(v.to_string()),
                Some(StandardTag::Artist(v)) => tags.artist = Some(v.to_string()),
                Some(StandardTag::Album(v)) => tags.album = Some(v.to_string()),
                _ => {}
            }
        }
        if let Some(v) = pick_cover(&c.visuals) {
            tags.cover = Some(Cover {
                media_type: v.media_type.clone(),
                data: v.data.to_vec(),
            });
        }
    }
}

/// The front cover if marked as such, else the first picture.
fn pick_cover(visuals: &[Visual]) -> Option<&Visual> {
    visuals
        .iter()
        .find(|v| v.usage == Some(StandardVisualKey::FrontCover))
        .or_else(|| visuals.first())
}

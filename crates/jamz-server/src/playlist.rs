//! The playlist rules of docs/protocol.md: any member appends, only the DJ deletes or
//! reorders, duplicates (same url, else same title+artist) are dropped.
use std::collections::{HashMap, HashSet};

use jamz_proto::Track;

/// The duplicate keys of a playlist (docs/protocol.md: same url, else same
/// title+artist, case-insensitive and trimmed), for O(1) checks: a 10,000-track
/// `playlist-update` compared pairwise took half a minute.
#[derive(Default)]
struct DuplicateKeys {
    urls: HashSet<String>,
    tags: HashSet<(String, String)>,
}

impl DuplicateKeys {
    fn keys(track: &Track) -> (Option<String>, Option<(String, String)>) {
        let url = track.url.trim();
        let title = track.title.trim().to_lowercase();
        (
            (!url.is_empty()).then(|| url.to_string()),
            (!title.is_empty()).then(|| (title, track.artist.trim().to_lowercase())),
        )
    }

    /// Records `track`'s keys; false if it duplicates one already recorded.
    fn insert(&mut self, track: &Track) -> bool {
        let (url, tags) = Self::keys(track);
        let dup = url.as_ref().is_some_and(|u| self.urls.contains(u))
            || tags.as_ref().is_some_and(|t| self.tags.contains(t));
        if !dup {
            self.urls.extend(url);
            self.tags.extend(tags);
        }
        !dup
    }
}

/// Appends unless a duplicate is already there. Returns whether it was added.
pub fn append(playlist: &mut Vec<Track>, track: Track) -> bool {
    if playlist.iter().any(|t| track.is_duplicate_of(t)) {
        return false;
    }
    playlist.push(track);
    true
}

/// Drops later duplicates, keeping the first of each.
pub fn dedupe(tracks: Vec<Track>) -> Vec<Track> {
    let mut keys = DuplicateKeys::default();
    tracks.into_iter().filter(|t| keys.insert(t)).collect()
}

/// The playlist in the given order. `order` must name every track exactly once.
/// Linear: an index by id, each track taken out once (40,000 tracks compared
/// pairwise held the server for seconds).
pub fn reorder(playlist: &[Track], order: &[String]) -> Result<Vec<Track>, String> {
    if order.len() != playlist.len() {
        return Err(format!(
            "order names {} tracks but the playlist has {}",
            order.len(),
            playlist.len()
        ));
    }
    let mut by_id: HashMap<&str, &Track> = HashMap::with_capacity(playlist.len());
    for t in playlist {
        by_id.insert(t.id.as_str(), t);
    }
    let mut taken: HashSet<&str> = HashSet::with_capacity(order.len());
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let track = by_id
            .get(id.as_str())
            .ok_or_else(|| format!("track {id} is not in the playlist"))?;
        if !taken.insert(id.as_str()) {
            return Err(format!("track {id} appears twice in order"));
        }
        out.push((*track).clone());
    }
    Ok(out)
}

/// A whole playlist proposed by a member who is not the DJ: acceptable only if
/// it keeps every current track in the current order (it may only append).
/// Returns the merged playlist.
pub fn merge_member_proposal(
    current: &[Track],
    proposed: Vec<Track>,
) -> Result<Vec<Track>, String> {
    let mut rest = proposed.into_iter().peekable();
    for existing in current {
        match rest.next() {
            Some(t) if t.id == existing.id => {}
            _ => return Err("only the DJ may delete or reorder tracks".to_string()),
        }
    }
    let mut keys = DuplicateKeys::default();
    let mut merged = current.to_vec();
    for t in &merged {
        keys.insert(t);
    }
    merged.extend(rest.filter(|t| keys.insert(t)));
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, url: &str, title: &str) -> Track {
        Track {
            id: id.into(),
            url: url.into(),
            title: title.into(),
            ..Track::default()
        }
    }

    #[test]
    fn member_may_append_but_not_drop() {
        let cur = vec![t("a", "u1", "A"), t("b", "u2", "B")];
        let ok = merge_member_proposal(
            &cur,
            vec![cur[0].clone(), cur[1].clone(), t("c", "u3", "C")],
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert!(merge_member_proposal(&cur, vec![cur[1].clone(), cur[0].clone()]).is_err());
        assert!(merge_member_proposal(&cur, vec![cur[0].clone()]).is_err());
    }

    #[test]
    fn reorder_needs_a_permutation() {
        let cur = vec![t("a", "u1", "A"), t("b", "u2", "B")];
        assert_eq!(reorder(&cur, &["b".into(), "a".into()]).unwrap()[0].id, "b");
        assert!(reorder(&cur, &["b".into(), "b".into()]).is_err());
        assert!(reorder(&cur, &["b".into()]).is_err());
        assert!(reorder(&cur, &["b".into(), "z".into()]).is_err());
    }

    #[test]
    fn reorder_of_40000_tracks_reverses_them() {
        let list: Vec<Track> = (0..40_000)
            .map(|i| t(&format!("t{i}"), &format!("u{i}"), &format!("T{i}")))
            .collect();
        let order: Vec<String> = list.iter().rev().map(|t| t.id.clone()).collect();
        let out = reorder(&list, &order).unwrap();
        assert_eq!(out.len(), 40_000);
        assert_eq!(out[0].id, "t39999");
        assert_eq!(out[39_999].id, "t0");
    }

    #[test]
    fn dedupe_agrees_with_the_pairwise_rule() {
        let list = vec![
            t("a", "u1", "Song"),
            t("b", "u1", "Other"),
            t("c", "u9", " SONG "),
            t("d", "u2", "New"),
            t("e", "", "new"),
            t("f", "", ""),
        ];
        let mut pairwise = Vec::new();
        for x in list.clone() {
            append(&mut pairwise, x);
        }
        let ids = |v: &[Track]| v.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&dedupe(list)), ids(&pairwise));
    }

    #[test]
    fn duplicates_by_url_or_tags_are_dropped() {
        let mut p = vec![t("a", "u1", "Song")];
        assert!(!append(&mut p, t("b", "u1", "Other")));
        assert!(!append(&mut p, t("c", "u9", " song ")));
        assert!(append(&mut p, t("d", "u2", "New")));
        assert_eq!(p.len(), 2);
    }
}

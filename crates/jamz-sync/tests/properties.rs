//! Property tests of the rules.
mod common;

use common::*;
use jamz_proto::events::names;
use jamz_proto::{ServerEvent, Track};
use jamz_sync::{Action, Command, Input, Playlist};
use proptest::prelude::*;

/// Tracks drawn from a small pool so that duplicates (by url, by title+artist with case and
/// space variants) are frequent.
fn arb_track() -> impl Strategy<Value = Track> {
    (0u8..6, 0u8..6, 0u8..4, 0u8..3, any::<bool>()).prop_map(|(id, url, title, artist, shout)| {
        let title = format!("{}song {title}", if shout { "  " } else { "" });
        Track {
            id: format!("id{id}"),
            url: if url == 0 {
                String::new()
            } else {
                format!("https://x.invalid/{url}.mp3")
            },
            title: if shout { title.to_uppercase() } else { title },
            artist: format!("artist {artist}"),
            ..Track::default()
        }
    })
}

#[derive(Debug, Clone)]
enum Op {
    Append(Box<Track>),
    Remove(usize),
    Reorder(Vec<usize>),
    Replace(Vec<Track>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        arb_track().prop_map(|t| Op::Append(Box::new(t))),
        (0usize..8).prop_map(Op::Remove),
        Just(()).prop_perturb(|_, mut rng| {
            let mut v: Vec<usize> = (0..8).collect();
            for i in (1..v.len()).rev() {
                v.swap(i, rng.random_range(0..=i));
            }
            Op::Reorder(v)
        }),
        proptest::collection::vec(arb_track(), 0..10).prop_map(Op::Replace),
    ]
}

fn assert_no_duplicates(p: &Playlist) -> Result<(), TestCaseError> {
    let t = p.tracks();
    for i in 0..t.len() {
        for j in i + 1..t.len() {
            prop_assert!(!t[i].is_duplicate_of(&t[j]), "{:?} ~ {:?}", t[i], t[j]);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(256))]
    #[test]
    fn any_adds_removes_and_reorders_keep_the_playlist_free_of_duplicates(
        ops in proptest::collection::vec(arb_op(), 0..40)
    ) {
        let mut p = Playlist::default();
        for op in ops {
            match op {
                Op::Append(t) => { let _ = p.append(*t); }
                Op::Remove(i) => {
                    if let Some(id) = p.tracks().get(i).map(|t| t.id.clone()) {
                        let _ = p.remove(&id);
                    }
                }
                Op::Reorder(perm) => {
                    let order: Vec<String> = perm
                        .iter()
                        .filter_map(|i| p.tracks().get(*i).map(|t| t.id.clone()))
                        .collect();
                    let _ = p.reorder(&order);
                }
                Op::Replace(v) => { let _ = p.replace(v); }
            }
            assert_no_duplicates(&p)?;
        }
    }

    #[test]
    fn playlists_from_the_server_are_deduplicated_by_the_engine(
        lists in proptest::collection::vec(proptest::collection::vec(arb_track(), 0..12), 1..5)
    ) {
        let mut e = connected(2, 0.0);
        for l in lists {
            e.handle(1.0, Input::Server(ServerEvent::PlaylistUpdate(
                jamz_proto::events::PlaylistRelay { playlist: l },
            )));
            drain(&mut e);
            assert_no_duplicates(e.playlist())?;
        }
    }

    #[test]
    fn only_the_djs_controls_change_the_timeline(
        steps in proptest::collection::vec((0u8..8, 0i64..4, 0.0f64..150.0), 1..30)
    ) {
        // User 1 is the DJ; this engine is user 2. Users 0 and 3 are not DJs.
        let mut e = connected(2, 0.0);
        let mut now = 10.0;
        e.handle(now, Input::Server(controller_is(1)));
        e.handle(now, Input::Server(playlist(vec![track(1, 200.0), track(2, 200.0)])));
        drain(&mut e);
        for (kind, user, pos) in steps {
            now += 100.0;
            let before = e.timeline().cloned();
            let input = match kind {
                0 => Input::Command(Command::Play { track: None, position: Some(pos) }),
                1 => Input::Command(Command::Pause),
                2 => Input::Command(Command::Seek { position: pos }),
                3 => Input::Command(Command::Next),
                4 => Input::Server(ServerEvent::MusicPlay(relay(user, Some(track(1, 200.0)), pos, now))),
                5 => Input::Server(ServerEvent::MusicSeek(relay(user, None, pos, now))),
                6 => Input::Server(ServerEvent::MusicPause(relay(user, None, pos, now))),
                _ => Input::Server(position_sync(user, pos, now)),
            };
            let from_dj = kind >= 4 && user == 1;
            e.handle(now, input);
            let actions = drain(&mut e);
            prop_assert!(emitted(&actions, names::MUSIC_CONTROL).is_empty());
            prop_assert!(!actions.iter().any(|a| matches!(a, Action::Rest(_))));
            if !from_dj {
                prop_assert_eq!(e.timeline().cloned(), before);
            }
        }
    }
}

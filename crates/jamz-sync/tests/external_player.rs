//! A device with an external video player (the app's YouTube IFrame player): the engine
//! steers it like its own player. It is told to play the video at the agreed instant,
//! paused and moved with the DJ; a reading off the timeline past the bounds brings a seek
//! ahead; a player error leaves the device silent for the video, saying why, and the next
//! track starts on time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::*;
use jamz_sync::constants::*;
use jamz_sync::external::{Directive, PlayerState, Reading};
use jamz_sync::{Action, Command, Engine, EngineConfig, ExternalReport, Input, Notification};

const DJ: i64 = 1;
const VIDEO: &str = "dQw4w9WgXcQ";

fn video_track() -> jamz_proto::Track {
    let mut video = track(1, 20.0);
    video.source = jamz_proto::TrackSource::Youtube;
    video.url = String::new();
    video.youtube_id = Some(VIDEO.into());
    video
}

/// The DJ's app (server clock 500 ms ahead), a 20 s video then a 3 s upload.
fn app_dj() -> (Engine, f64) {
    let mut config = EngineConfig::new(DJ, "app").with_session(SESSION);
    config.external_video_player = true;
    let mut e = Engine::new(config);
    e.handle(
        0.0,
        Input::Connected {
            socket_id: socket_of(DJ),
        },
    );
    drain(&mut e);
    let now = sync_clock(&mut e, 0.0, 500.0, 20);
    server(&mut e, now, controller_is(DJ));
    server(&mut e, now, playlist(vec![video_track(), track(2, 3.0)]));
    (e, now)
}

fn directives(actions: &[Action]) -> Vec<Directive> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::External(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn reading(e: &mut Engine, now: f64, position_s: f64) -> Vec<Action> {
    e.handle(
        now,
        Input::External(ExternalReport::Reading {
            video: VIDEO.into(),
            reading: Reading {
                at: now,
                position_s,
                state: PlayerState::Playing,
                duration_s: None,
            },
        }),
    );
    drain(e)
}

/// A reading that also says the video's duration (`getDuration()`).
fn reading_with_duration(
    e: &mut Engine,
    now: f64,
    position_s: f64,
    duration_s: f64,
) -> Vec<Action> {
    e.handle(
        now,
        Input::External(ExternalReport::Reading {
            video: VIDEO.into(),
            reading: Reading {
                at: now,
                position_s,
                state: PlayerState::Playing,
                duration_s: Some(duration_s),
            },
        }),
    );
    drain(e)
}

/// The video as added by link: oEmbed gives no duration.
fn video_without_duration() -> jamz_proto::Track {
    jamz_proto::Track {
        duration: None,
        ..video_track()
    }
}

#[test]
fn the_video_plays_pauses_and_seeks_with_the_dj_and_is_moved_when_off() {
    let (mut e, now) = app_dj();
    let actions = command(
        &mut e,
        now,
        Command::Play {
            track: Some("t1".into()),
            position: Some(2.0),
        },
    );
    let d = directives(&actions);
    assert_eq!(
        d,
        vec![Directive::Play {
            video: VIDEO.into(),
            position: 2.0,
            at: now + CONTROL_LEAD_MS
        }],
        "{actions:?}"
    );
    // The native player is silent for it, and nobody is told it cannot play.
    assert!(starts(&actions).is_empty());
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::Notify(Notification::NotPlayable { .. })))
    );

    // Readings on the timeline (+-100 ms) change nothing.
    let start = now + CONTROL_LEAD_MS;
    let mut t = start + EXTERNAL_SEEK_COOLDOWN_MS;
    for i in 0..20 {
        let due = 2.0 + (t - start) / 1000.0;
        let jitter = if i % 2 == 0 { 0.1 } else { -0.1 };
        assert!(
            directives(&reading(&mut e, t, due + jitter)).is_empty(),
            "at {t}"
        );
        t += EXTERNAL_REPORT_INTERVAL_MS;
    }
    // A reading 2 s behind: a seek ahead, to where the timeline is then.
    let due = 2.0 + (t - start) / 1000.0;
    let d = directives(&reading(&mut e, t, due - 2.0));
    let expected_at = t + EXTERNAL_PLAY_LEAD_MS;
    match d.as_slice() {
        [
            Directive::Play {
                video,
                position,
                at,
            },
        ] => {
            assert_eq!(video, VIDEO);
            assert!(close(*at, expected_at, 1e-6), "{at}");
            assert!(
                close(*position, 2.0 + (expected_at - start) / 1000.0, 1e-6),
                "{position}"
            );
        }
        other => panic!("no seek: {other:?}"),
    }

    // The DJ pauses, then seeks: the player follows.
    let d = directives(&command(&mut e, t, Command::Pause));
    assert!(
        matches!(d.as_slice(), [Directive::Pause { video, .. }] if video == VIDEO),
        "{d:?}"
    );
    let d = directives(&command(&mut e, t, Command::Seek { position: 12.0 }));
    assert!(
        matches!(d.as_slice(), [Directive::Pause { position, .. }] if close(*position, 12.0, 1e-9)),
        "{d:?}"
    );
    let d = directives(&command(&mut e, t, play()));
    assert_eq!(
        d,
        vec![Directive::Play {
            video: VIDEO.into(),
            position: 12.0,
            at: t + CONTROL_LEAD_MS
        }]
    );

    // The next track is an upload: the video player is stopped, the native one starts.
    let actions = command(&mut e, t, Command::Next);
    assert_eq!(directives(&actions), vec![Directive::Stop]);
    assert_eq!(starts(&actions).len(), 1, "{actions:?}");
}

#[test]
fn a_player_error_leaves_the_device_silent_and_the_next_track_on_time() {
    let (mut e, now) = app_dj();
    command(
        &mut e,
        now,
        Command::Play {
            track: Some("t1".into()),
            position: Some(0.0),
        },
    );
    e.handle(
        now + 500.0,
        Input::External(ExternalReport::Error {
            video: VIDEO.into(),
            code: 150,
        }),
    );
    let actions = drain(&mut e);
    assert_eq!(directives(&actions), vec![Directive::Stop]);
    let reason = actions
        .iter()
        .find_map(|a| match a {
            Action::Notify(Notification::NotPlayable { track, reason }) if track == "t1" => {
                Some(reason.clone())
            }
            _ => None,
        })
        .expect("not-playable");
    assert!(reason.contains("does not allow"), "{reason}");
    // An error about another video changes nothing.
    e.handle(
        now + 600.0,
        Input::External(ExternalReport::Error {
            video: "otherVideo1".into(),
            code: 100,
        }),
    );
    let other = drain(&mut e);
    assert!(directives(&other).is_empty(), "{other:?}");
    assert!(
        !other
            .iter()
            .any(|a| matches!(a, Action::Notify(Notification::NotPlayable { .. })))
    );

    // The session goes on: at the video's end the upload starts exactly then.
    let video_end = now + CONTROL_LEAD_MS + 20_000.0;
    let later: Vec<Action> = run_until(&mut e, now + 600.0, video_end + 1_000.0)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let s = starts(&later);
    assert_eq!(s.first().map(|s| s.0.as_str()), Some("t2"), "{later:?}");
    assert!(
        close(s[0].2, video_end, 1.0),
        "t2 at {} vs {video_end}",
        s[0].2
    );
}

#[test]
fn the_dj_shares_the_duration_the_player_read_and_the_next_track_starts_at_its_end() {
    let (mut e, now) = app_dj();
    server(
        &mut e,
        now,
        playlist(vec![video_without_duration(), track(2, 3.0)]),
    );
    command(
        &mut e,
        now,
        Command::Play {
            track: Some("t1".into()),
            position: Some(0.0),
        },
    );
    let start = now + CONTROL_LEAD_MS;
    // Readings without a duration (the player answers 0 before the metadata) share nothing.
    let t = start + 300.0;
    let actions = reading(&mut e, t, 0.3);
    assert!(
        emitted(&actions, "playlist-update").is_empty(),
        "{actions:?}"
    );
    // Nonsense durations neither.
    for bad in [0.0, -3.0, f64::NAN, f64::INFINITY, MAX_TRACK_LENGTH_S + 1.0] {
        let actions = reading_with_duration(&mut e, t, 0.3, bad);
        assert!(
            emitted(&actions, "playlist-update").is_empty(),
            "{bad}: {actions:?}"
        );
    }
    // The first real one: the DJ's device sends the playlist with it (the DJ may send any
    // playlist, docs/protocol.md), and its own playlist shows it.
    let actions = reading_with_duration(&mut e, t + 250.0, 0.55, 20.0);
    let sent = emitted(&actions, "playlist-update");
    assert_eq!(sent.len(), 1, "{actions:?}");
    assert_eq!(sent[0]["sessionId"], SESSION);
    assert_eq!(sent[0]["playlist"][0]["id"], "t1");
    assert_eq!(sent[0]["playlist"][0]["duration"], 20.0);
    assert_eq!(sent[0]["playlist"][1]["id"], "t2");
    assert!(
        actions.iter().any(|a| matches!(a,
        Action::Notify(Notification::Playlist { playlist }) if playlist[0].duration == Some(20.0)))
    );
    // Once: the next readings send nothing more.
    let again = reading_with_duration(&mut e, t + 500.0, 0.8, 20.0);
    assert!(emitted(&again, "playlist-update").is_empty(), "{again:?}");

    // The track now ends: at the video's end the upload starts exactly then.
    let video_end = start + 20_000.0;
    let later: Vec<Action> = run_until(&mut e, t + 500.0, video_end + 1_000.0)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    let s = starts(&later);
    assert_eq!(s.first().map(|s| s.0.as_str()), Some("t2"), "{later:?}");
    assert!(
        close(s[0].2, video_end, 1.0),
        "t2 at {} vs {video_end}",
        s[0].2
    );
}

#[test]
fn a_member_keeps_the_duration_to_itself() {
    const MEMBER: i64 = 2;
    let mut config = EngineConfig::new(MEMBER, "app").with_session(SESSION);
    config.external_video_player = true;
    let mut e = Engine::new(config);
    e.handle(
        0.0,
        Input::Connected {
            socket_id: socket_of(MEMBER),
        },
    );
    drain(&mut e);
    let now = sync_clock(&mut e, 0.0, 0.0, 20);
    server(&mut e, now, controller_is(DJ));
    server(&mut e, now, playlist(vec![video_without_duration()]));
    let mut video = video_without_duration();
    video.id = "t1".into();
    server(
        &mut e,
        now,
        jamz_proto::events::ServerEvent::MusicPlay(relay(DJ, Some(video), 0.0, now)),
    );
    drain(&mut e);
    let actions = reading_with_duration(&mut e, now + 1_000.0, 1.0, 20.0);
    // Only the DJ may change a track already in the playlist (docs/protocol.md).
    assert!(
        emitted(&actions, "playlist-update").is_empty(),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| matches!(a,
        Action::Notify(Notification::Playlist { playlist }) if playlist[0].duration == Some(20.0)))
    );
}

#[test]
fn a_headless_device_is_not_given_directives() {
    let mut e = connected(DJ, 0.0);
    let now = sync_clock(&mut e, 0.0, 0.0, 20);
    server(&mut e, now, controller_is(DJ));
    server(&mut e, now, playlist(vec![video_track()]));
    let actions = command(&mut e, now, play());
    assert!(directives(&actions).is_empty());
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Notify(Notification::NotPlayable { .. })))
    );
}

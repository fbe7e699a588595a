//! Steering an external player: YouTube's IFrame player in the app's web view, the only
//! sanctioned way to play a YouTube video. The engine decides, the web view only executes:
//! it is told to be at a position of a video, playing from an instant ([`Directive::Play`]),
//! or paused at a position ([`Directive::Pause`]), and it reports what the player says
//! (`getCurrentTime()`, `getPlayerState()`) as [`Reading`]s. Each reading is compared with
//! the group's timeline; [`ExternalPlayout`] decides when the player is far enough off to
//! be moved. The IFrame API offers no rate trim finer than its playback-rate steps (0.25
//! apart: a listener hears that), so the only correction is a seek, and the bounds are
//! those of a seek, not of the native player's soft sync (see the constants).
//!
//! A player error ([`player_error_message`]) leaves this device silent for the video, in
//! step: the timeline goes on and the next track starts on time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::api::LocalTime;
use crate::constants::{
    EXTERNAL_HARD_SYNC_MS, EXTERNAL_PLAY_LEAD_MS, EXTERNAL_SEEK_COOLDOWN_MS, EXTERNAL_SOFT_SYNC_MS,
    EXTERNAL_WINDOW,
};

/// The IFrame player's states (`getPlayerState()` and `onStateChange`'s `data`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlayerState {
    /// -1
    Unstarted,
    /// 0
    Ended,
    /// 1
    Playing,
    /// 2
    Paused,
    /// 3
    Buffering,
    /// 5
    Cued,
}

impl PlayerState {
    /// The state of an IFrame API state code (`YT.PlayerState`), `None` for an unknown one.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            -1 => Self::Unstarted,
            0 => Self::Ended,
            1 => Self::Playing,
            2 => Self::Paused,
            3 => Self::Buffering,
            5 => Self::Cued,
            _ => return None,
        })
    }
}

/// What the web view's player is told to do. The node hands `at` over as a delay from
/// then (`in_ms`), so the web view needs no clock shared with the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "kebab-case")]
pub enum Directive {
    /// Load `video` (when it is not the one loaded) paused at `position` s, and play it
    /// at local instant `at`; past `at`: play at once from `position` plus the lateness.
    /// A seek is the same directive for the loaded video: the web view pauses, seeks (the
    /// player buffers meanwhile) and plays at the instant.
    Play {
        video: String,
        position: f64,
        at: LocalTime,
    },
    /// Pause `video` at `position` s.
    Pause { video: String, position: f64 },
    /// No video: stop and unload.
    Stop,
}

/// One report of the web view's player, stamped by the engine's clock when it arrived
/// (the web view sends it as soon as it has read the player).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub at: LocalTime,
    /// `getCurrentTime()`, s: what the player plays now, as far as the page knows.
    pub position_s: f64,
    pub state: PlayerState,
    /// `getDuration()`, s, once the player knows it (`None` while it answers 0, before
    /// the video's metadata has loaded). YouTube's oEmbed gives no duration: a track added
    /// by link has none until a player has loaded it ([`video_duration`]).
    pub duration_s: Option<f64>,
}

/// The duration a player reported, if it is one a track may carry: finite, positive and
/// within [`MAX_TRACK_LENGTH_S`] (a live stream's `getDuration()` grows with it and is
/// no length to end a track at).
///
/// [`MAX_TRACK_LENGTH_S`]: crate::constants::MAX_TRACK_LENGTH_S
pub fn video_duration(reported: f64) -> Option<f64> {
    (reported.is_finite() && reported > 0.0 && reported <= crate::constants::MAX_TRACK_LENGTH_S)
        .then_some(reported)
}

/// What to do about one reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Correction {
    /// Within the bounds, or not a reading to judge by (buffering, before the start).
    Keep,
    /// Move the player: a [`Directive::Play`] of the due position [`EXTERNAL_PLAY_LEAD_MS`]
    /// ahead.
    Seek,
}

/// The playout loop of one external player.
#[derive(Debug, Clone, Default)]
pub struct ExternalPlayout {
    /// Recent errors (player minus due), ms.
    errors: VecDeque<f64>,
    /// Readings before this instant are not judged: a start or seek is landing.
    settle_until: Option<LocalTime>,
    /// Last measured error, ms (for `status`).
    last_error_ms: Option<f64>,
}

impl ExternalPlayout {
    /// A (re)start is due to land at `at`: what the player said before no longer applies,
    /// and readings are not judged until a cooldown after it.
    pub fn started(&mut self, at: LocalTime) {
        self.errors.clear();
        self.settle_until = Some(at + EXTERNAL_SEEK_COOLDOWN_MS);
    }

    pub fn last_error_ms(&self) -> Option<f64> {
        self.last_error_ms
    }

    /// Judges a reading against `due_s`, the position the group's timeline has at the
    /// reading's instant. Only a playing player is judged (a buffering one is late by
    /// nature and reports a frozen time).
    pub fn on_reading(&mut self, reading: Reading, due_s: f64) -> Correction {
        if reading.state != PlayerState::Playing
            || !reading.position_s.is_finite()
            || !due_s.is_finite()
        {
            return Correction::Keep;
        }
        let error_ms = (reading.position_s - due_s) * 1000.0;
        self.last_error_ms = Some(error_ms);
        if self.settle_until.is_some_and(|t| reading.at < t) {
            return Correction::Keep;
        }
        self.errors.push_back(error_ms);
        while self.errors.len() > EXTERNAL_WINDOW {
            self.errors.pop_front();
        }
        let persistent = self.errors.len() == EXTERNAL_WINDOW
            && median(&self.errors).abs() > EXTERNAL_SOFT_SYNC_MS;
        if error_ms.abs() > EXTERNAL_HARD_SYNC_MS || persistent {
            self.started(reading.at + EXTERNAL_PLAY_LEAD_MS);
            Correction::Seek
        } else {
            Correction::Keep
        }
    }
}

fn median(values: &VecDeque<f64>) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The user's words for an IFrame player error (`onError`'s `data`), as YouTube documents
/// the codes (and -1: the app could not load YouTube's player script at all). The device
/// stays silent for the video and the session goes on.
pub fn player_error_message(code: i64) -> String {
    match code {
        2 => "YouTube refused the video id (malformed): this device stays silent for it".into(),
        5 => "YouTube's player cannot play this video in the app (an HTML5 player error): this device stays silent for it".into(),
        100 => "this YouTube video was removed, is private or does not exist: this device stays silent for it".into(),
        -1 => "YouTube's player could not be loaded in the app (offline, or blocked): this device stays silent for the video".into(),
        101 | 150 => "the owner of this YouTube video does not allow it to be played outside YouTube: this device stays silent for it".into(),
        other => format!("YouTube's player failed (error {other}): this device stays silent for the video"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playing(at: LocalTime, position_s: f64) -> Reading {
        Reading {
            at,
            position_s,
            state: PlayerState::Playing,
            duration_s: None,
        }
    }

    #[test]
    fn state_codes_are_the_iframe_apis() {
        assert_eq!(PlayerState::from_code(1), Some(PlayerState::Playing));
        assert_eq!(PlayerState::from_code(5), Some(PlayerState::Cued));
        assert_eq!(PlayerState::from_code(-1), Some(PlayerState::Unstarted));
        assert_eq!(PlayerState::from_code(4), None);
    }

    #[test]
    fn jitter_within_the_soft_bound_is_left_alone() {
        let mut p = ExternalPlayout::default();
        p.started(0.0);
        let mut t = EXTERNAL_SEEK_COOLDOWN_MS;
        for i in 0..50 {
            // +-200 ms of reading jitter around the due position.
            let jitter = if i % 2 == 0 { 0.2 } else { -0.2 };
            assert_eq!(
                p.on_reading(playing(t, 10.0 + jitter), 10.0),
                Correction::Keep
            );
            t += 250.0;
        }
        assert!(p.last_error_ms().is_some());
    }

    #[test]
    fn a_persistent_offset_past_the_soft_bound_is_sought_once_then_settles() {
        let mut p = ExternalPlayout::default();
        p.started(0.0);
        let mut t = EXTERNAL_SEEK_COOLDOWN_MS;
        let off_s = (EXTERNAL_SOFT_SYNC_MS + 100.0) / 1000.0;
        let mut seeks = 0;
        for _ in 0..EXTERNAL_WINDOW {
            if p.on_reading(playing(t, 20.0 + off_s), 20.0) == Correction::Seek {
                seeks += 1;
            }
            t += 250.0;
        }
        assert_eq!(
            seeks, 1,
            "a full window of the same offset asks for one seek"
        );
        // Right after it the readings are not judged (the seek is landing).
        assert_eq!(p.on_reading(playing(t, 25.0), 20.0), Correction::Keep);
    }

    #[test]
    fn one_reading_past_the_hard_bound_seeks_at_once_but_not_while_settling_or_buffering() {
        let mut p = ExternalPlayout::default();
        p.started(0.0);
        let far = 10.0 + (EXTERNAL_HARD_SYNC_MS + 50.0) / 1000.0;
        assert_eq!(p.on_reading(playing(100.0, far), 10.0), Correction::Keep);
        let buffering = Reading {
            state: PlayerState::Buffering,
            ..playing(EXTERNAL_SEEK_COOLDOWN_MS + 1.0, 0.0)
        };
        assert_eq!(p.on_reading(buffering, 10.0), Correction::Keep);
        assert_eq!(
            p.on_reading(playing(EXTERNAL_SEEK_COOLDOWN_MS + 1.0, far), 10.0),
            Correction::Seek
        );
        assert_eq!(
            p.on_reading(playing(f64::NAN, f64::NAN), 10.0),
            Correction::Keep
        );
    }

    #[test]
    fn only_a_finite_positive_bounded_duration_is_one() {
        assert_eq!(video_duration(212.5), Some(212.5));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 86_400.5] {
            assert_eq!(video_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_error_code_has_words() {
        for code in [-1, 2, 5, 100, 101, 150, 999] {
            let m = player_error_message(code);
            assert!(m.contains("silent"), "{code}: {m}");
        }
        assert!(player_error_message(150).contains("does not allow"));
        assert!(player_error_message(100).contains("removed"));
    }
}

//! Fuzz targets for event decoding (what the network hands `ClientEvent::decode`
//! and `ServerEvent::decode`): any event name with any JSON value, recorded
//! events with mutated fields, and raw bytes. None may panic; a known event
//! with a malformed body is an error that names the event.
//!
//! `JAMZ_FUZZ_CASES` sets the cases per target (default 512); `JAMZ_TEST_SEED`
//! replays a run (the seed is printed). The long run is in the crate README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_proto::events::names;
use jamz_proto::test_support::fuzz_runner;
use jamz_proto::{ClientEvent, ServerEvent};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels, with the numbers and strings that
/// break parsers (NaN-like floats cannot be JSON; huge, negative, fractional ids).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("sessionId"),
            Just("play"),
            Just("http://x/a.mp3"),
            Just("javascript:alert(1)"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Field names of the protocol (so that the decoders get past the first
/// field), and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "sessionId",
            "session_id",
            "action",
            "position",
            "timestamp",
            "track",
            "playlist",
            "id",
            "_id",
            "title",
            "url",
            "fileUrl",
            "duration",
            "userId",
            "socketId",
            "controllerId",
            "participants",
            "latitude",
            "longitude",
            "type",
            "from",
            "to",
            "signal",
            "currentlyPlaying",
            "music",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{0,12}",
    ]
}

/// Every event name the protocol defines, and names it does not.
fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            names::JOIN_AUDIO_SESSION,
            names::LEAVE_AUDIO_SESSION,
            names::MUSIC_TAKE_CONTROL,
            names::MUSIC_CONTROL,
            names::MUSIC_POSITION_SYNC,
            names::PLAYLIST_UPDATE,
            names::LOCATION_UPDATE,
            "music-play",
            "music-pause",
            "music-seek",
            "music-session-state",
            "music-controller-changed",
            "current-participants",
            "participant-joined",
            "participant-left",
            "webrtc-signal",
            "music-error",
            "time-sync",
        ])
        .prop_map(str::to_owned),
        ".{0,24}",
    ]
}

fn decode_both(name: &str, value: Value) {
    let client = ClientEvent::decode(name, value.clone());
    if let Err(e) = &client {
        // A known event's error says which event it was.
        assert!(
            e.to_string().contains(name),
            "error without the event name {name:?}: {e}"
        );
    }
    let _ = ServerEvent::decode(name, value);
}

#[test]
fn fuzz_event_decoding_any_name_any_json() {
    fuzz_runner("event decoding (any name, any JSON)", 512, file!())
        .run(&(event_name(), any_json()), |(name, value)| {
            decode_both(&name, value);
            Ok(())
        })
        .unwrap();
}

/// Recorded events with one field replaced by anything.
#[test]
fn fuzz_event_decoding_mutated_recordings() {
    let recorded: Vec<(&str, Value)> = vec![
        (
            names::MUSIC_CONTROL,
            json!({"sessionId": "s", "action": "play", "position": 1.5, "timestamp": 1.7e12,
                   "track": {"id": "t", "title": "a", "url": "http://x/a.mp3"}}),
        ),
        (
            names::PLAYLIST_UPDATE,
            json!({"sessionId": "s", "playlist": [{"id": "t", "title": "a", "url": "u", "duration": 3}]}),
        ),
        (
            names::LOCATION_UPDATE,
            json!({"sessionId": "s", "latitude": 51.5, "longitude": -0.1, "speed": 3, "heading": 90}),
        ),
        (
            "music-session-state",
            json!({"sessionId": "s", "playlist": [], "currentlyPlaying": null, "isPlaying": false,
                   "position": 0, "controllerId": "c", "server_time": 1.7e12}),
        ),
        (
            "current-participants",
            json!([{"userId": 1, "socketId": "a", "display_name": "Ann"}]),
        ),
        (
            "webrtc-signal",
            json!({"type": "offer", "from": "a", "to": "b", "signal": {"sdp": "v=0"}}),
        ),
    ];
    let strategy = (
        prop::sample::select(recorded),
        field_name(),
        any_json(),
        any::<bool>(),
    );
    fuzz_runner("event decoding (mutated recordings)", 512, file!())
        .run(&strategy, |((name, mut value), field, new, drop)| {
            if let Some(obj) = value.as_object_mut() {
                if drop {
                    obj.remove(&field);
                } else {
                    obj.insert(field, new);
                }
            }
            decode_both(name, value);
            Ok(())
        })
        .unwrap();
}

/// Raw bytes as a Socket.IO payload would carry them: whatever parses as JSON
/// is decoded as every event.
#[test]
fn fuzz_event_decoding_raw_bytes() {
    fuzz_runner("event decoding (raw bytes)", 512, file!())
        .run(
            &(event_name(), prop::collection::vec(any::<u8>(), 0..256)),
            |(name, bytes)| {
                if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                    decode_both(&name, value);
                }
                let _ =
                    jamz_proto::decode_str::<jamz_proto::Track>(&String::from_utf8_lossy(&bytes));
                Ok(())
            },
        )
        .unwrap();
}

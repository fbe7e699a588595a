#![allow(clippy::unwrap_used, clippy::expect_used)]
use jamz_proto::events::MusicSessionState;
use jamz_proto::events::{ControlAction, JoinAudioSession, MusicControl, SignalType, WebrtcSignal};
use jamz_proto::mesh::{MeshEnvelope, MeshPayload};
use jamz_proto::rest::LocationReport;
use jamz_proto::{ClientEvent, ProtoError, ServerEvent, Session, Track, decode, decode_str};
use proptest::prelude::*;
use serde_json::json;

#[test]
fn track_reads_legacy_and_camel_spellings() {
    let t: Track = decode(json!({
        "_id": "abc", "title": "Song", "artist": null, "fileUrl": "http://x/a.mp3",
        "albumArt": "http://x/a.png", "uploadedBy": 7, "duration": 12.5, "someNewField": [1]
    }))
    .unwrap();
    assert_eq!(t.id, "abc");
    assert_eq!(t.url, "http://x/a.mp3");
    assert_eq!(t.artist, "");
    assert_eq!(t.album_art.as_deref(), Some("http://x/a.png"));
    assert_eq!(t.uploaded_by, Some(7));
}

#[test]
fn track_with_both_url_and_legacy_file_url_prefers_url() {
    let t: Track =
        decode(json!({"id": "1", "title": "S", "url": "http://new", "fileUrl": "http://old"}))
            .unwrap();
    assert_eq!(t.url, "http://new");
}

#[test]
fn track_encodes_in_protocol_spelling() {
    let t: Track =
        decode(json!({"id": "1", "title": "S", "file_url": "u", "spotifyPreviewUrl": "p"}))
            .unwrap();
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["url"], "u");
    assert_eq!(v["spotify_preview_url"], "p");
    assert_eq!(v["source"], "upload");
    assert!(v.get("fileUrl").is_none());
}

#[test]
fn wrong_type_names_the_field() {
    let err = decode::<MusicControl>(json!({
        "sessionId": "s", "action": "play", "position": "ten", "timestamp": 1
    }))
    .unwrap_err();
    assert_eq!(err.field(), Some("position"), "{err}");

    let err = decode::<Session>(json!({
        "id": "s", "group_id": "g", "music": {"playlist": [{"id": "1", "title": "a"}, {"id": 2, "title": "b"}]}
    }))
    .unwrap_err();
    assert_eq!(err.field(), Some("music.playlist[1].id"), "{err}");
    assert!(err.to_string().contains("music.playlist[1].id"));
}

#[test]
fn malformed_json_is_a_syntax_error() {
    let err = decode_str::<Track>("{\"id\": \"1\", ").unwrap_err();
    assert!(matches!(err, ProtoError::Syntax { .. }), "{err:?}");
    let err = decode_str::<Track>("{} trailing").unwrap_err();
    assert!(matches!(err, ProtoError::Syntax { .. }), "{err:?}");
}

#[test]
fn snake_and_camel_event_fields_both_decode() {
    let a: JoinAudioSession =
        decode(json!({"sessionId": "s", "userId": 3, "display_name": "Ann"})).unwrap();
    let b: JoinAudioSession =
        decode(json!({"session_id": "s", "user_id": 3, "displayName": "Ann"})).unwrap();
    assert_eq!(a, b);
    let enc = serde_json::to_value(&a).unwrap();
    assert_eq!(
        enc,
        json!({"sessionId": "s", "userId": 3, "display_name": "Ann"})
    );
}

#[test]
fn client_event_decoding_names_the_event() {
    let err = ClientEvent::decode(
        "music-control",
        json!({"sessionId": "s", "action": "dance", "timestamp": 1}),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("event `music-control`"),
        "{err}"
    );
    assert_eq!(err.field(), Some("action"));
    assert_eq!(ClientEvent::decode("made-up", json!(1)).unwrap(), None);
}

#[test]
fn server_event_unknown_names_are_kept() {
    let ev = ServerEvent::decode("brand-new", json!({"x": 1})).unwrap();
    assert_eq!(ev.name(), "brand-new");
    let ev = ServerEvent::decode(
        "music-play",
        json!({"position": 1.5, "timestamp": 10, "controllerId": "sock", "userId": 4}),
    )
    .unwrap();
    match ev {
        ServerEvent::MusicPlay(r) => {
            assert_eq!(r.position, 1.5);
            assert_eq!(r.user_id, Some(4));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn session_state_accepts_null_currently_playing_and_missing_server_time() {
    let s: MusicSessionState = decode(json!({"playlist": [], "currently_playing": null, "controller_id": null, "is_playing": false})).unwrap();
    assert!(s.currently_playing.is_none());
    assert!(s.server_time.is_none());
}

#[test]
fn session_state_reads_both_spellings_and_nulls_and_writes_the_documented_one() {
    let s: MusicSessionState = decode(json!({"playlist": null,
        "currentlyPlaying": {"track": {"id": "t", "title": "T"}, "position": 4.5},
        "controllerId": 3, "controllerSocketId": "pub-3", "isPlaying": null, "serverTime": 12.5}))
    .unwrap();
    assert!(s.playlist.is_empty());
    assert_eq!(s.controller_id, Some(3));
    assert!(!s.is_playing);
    assert_eq!(s.currently_playing.as_ref().map(|c| c.position), Some(4.5));
    assert_eq!(s.controller_socket_id.as_deref(), Some("pub-3"));
    assert_eq!(s.server_time, Some(12.5));
    let written = serde_json::to_value(&s).unwrap();
    for key in [
        "playlist",
        "currently_playing",
        "controller_id",
        "controller_socket_id",
        "is_playing",
        "server_time",
    ] {
        assert!(written.get(key).is_some(), "{key} missing from {written}");
    }
    assert!(written.get("music").is_none(), "{written}");
}

#[test]
fn a_bad_track_in_the_session_state_is_named_by_its_path() {
    let err = decode::<MusicSessionState>(json!({"playlist": [{"id": "a", "title": "A"},
        {"id": 5, "title": "B"}], "is_playing": false}))
    .unwrap_err();
    assert_eq!(err.field(), Some("playlist[1].id"), "{err}");
}

#[test]
fn webrtc_candidate_keeps_browser_spelling() {
    let v = json!({"sessionId": "s", "from": 1, "to": 2, "type": "ice-candidate",
        "data": {"candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}});
    let s: WebrtcSignal = decode(v.clone()).unwrap();
    assert_eq!(s.kind, SignalType::IceCandidate);
    assert_eq!(serde_json::to_value(&s).unwrap(), v);
}

#[test]
fn location_report_requires_numbers() {
    let err =
        decode::<LocationReport>(json!({"latitude": "north", "longitude": 1, "timestamp": 1}))
            .unwrap_err();
    assert_eq!(err.field(), Some("latitude"));
}

#[test]
fn mesh_message_decodes_by_type() {
    let env: MeshEnvelope = decode(
        json!({"type": "music-control", "action": "seek", "sequence": 4, "from": 2,
        "data": {"position": 3.0, "trackId": "t", "timestamp": 5}}),
    )
    .unwrap();
    match env.payload().unwrap() {
        MeshPayload::MusicControl(ControlAction::Seek, c) => {
            assert_eq!(c.track_id.as_deref(), Some("t"))
        }
        other => panic!("{other:?}"),
    }
    let env: MeshEnvelope = decode(
        json!({"type": "calibration-update", "sequence": 2, "from": 2,
        "data": {"sessionId": "s", "kind": "probe-request", "target": 1, "runId": "r",
        "at": [1000.0, 2000.0]}}),
    )
    .unwrap();
    match env.payload().unwrap() {
        MeshPayload::Calibration(c) => {
            assert_eq!(
                (c.target, c.at.as_deref()),
                (1, Some(&[1000.0, 2000.0][..]))
            )
        }
        other => panic!("{other:?}"),
    }
    let env: MeshEnvelope = decode(
        json!({"type": "calibration-update", "sequence": 3, "from": 2, "data": {"kind": 7}}),
    )
    .unwrap();
    assert!(
        env.payload().is_err(),
        "a calibration without its fields is an error"
    );
    let env: MeshEnvelope =
        decode(json!({"type": "future-thing", "sequence": 1, "from": 2})).unwrap();
    assert_eq!(env.payload().unwrap(), MeshPayload::Unknown);
}

#[test]
fn duplicate_rule_matches_url_then_title_and_artist() {
    let a = Track {
        url: "u1".into(),
        title: "Song".into(),
        artist: "Band".into(),
        ..Track::default()
    };
    let same_url = Track {
        url: " u1 ".into(),
        title: "Other".into(),
        ..Track::default()
    };
    let same_tags = Track {
        url: "u2".into(),
        title: " song ".into(),
        artist: "BAND".into(),
        ..Track::default()
    };
    let different = Track {
        url: "u3".into(),
        title: "Song".into(),
        artist: "Other".into(),
        ..Track::default()
    };
    assert!(same_url.is_duplicate_of(&a));
    assert!(same_tags.is_duplicate_of(&a));
    assert!(!different.is_duplicate_of(&a));
}

fn arb_track() -> impl Strategy<Value = Track> {
    (
        "[a-f0-9]{0,24}",
        ".{0,20}",
        ".{0,20}",
        "(http://[a-z]{1,8}/[a-z0-9]{1,8})?",
        proptest::option::of(0.0f64..100_000.0),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(id, title, artist, url, duration, size, uploaded_by)| Track {
                id,
                title,
                artist,
                url,
                duration,
                size,
                uploaded_by,
                ..Track::default()
            },
        )
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(256))]
    #[test]
    fn track_roundtrips(t in arb_track()) {
        let text = serde_json::to_string(&t).unwrap();
        let back: Track = decode_str(&text).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn music_control_roundtrips(pos in 0.0f64..10_000.0, ts in 0.0f64..2e12, t in proptest::option::of(arb_track())) {
        let m = MusicControl { session_id: "s".into(), action: ControlAction::TrackChange, position: pos, track: t, timestamp: ts };
        let back: MusicControl = decode(serde_json::to_value(&m).unwrap()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = jamz_proto::decode_slice::<Session>(&bytes);
        let _ = jamz_proto::decode_slice::<MeshEnvelope>(&bytes);
    }
}

#[test]
fn convoy_updates_decode_both_ways_and_an_unknown_kind_is_kept_as_unknown() {
    use jamz_proto::events::{ConvoyKind, names};
    let c = ClientEvent::decode(
        names::CONVOY_UPDATE,
        json!({"sessionId": "s", "kind": "regroup-set", "latitude": 48.2, "longitude": 11.6}),
    )
    .unwrap()
    .unwrap();
    let ClientEvent::ConvoyUpdate(c) = c else {
        panic!("not a convoy-update: {c:?}")
    };
    assert_eq!(c.kind, ConvoyKind::RegroupSet);
    assert_eq!(c.latitude, Some(48.2));
    let off = ServerEvent::decode(
        names::CONVOY_UPDATE,
        json!({"userId": 3, "kind": "location-off"}),
    )
    .unwrap();
    assert_eq!(
        off.to_json(),
        json!({"userId": 3, "kind": "location-off"}),
        "optional fields are left out"
    );
    let later =
        ServerEvent::decode(names::CONVOY_UPDATE, json!({"userId": 3, "kind": "honk"})).unwrap();
    let ServerEvent::ConvoyUpdate(later) = later else {
        panic!("not a convoy-update")
    };
    assert_eq!(later.kind, ConvoyKind::Unknown);
    assert!(
        ClientEvent::decode(names::CONVOY_UPDATE, json!({"sessionId": "s"})).is_err(),
        "kind is required"
    );
}

#[test]
fn calibration_updates_decode_both_ways_and_garbage_is_refused() {
    use jamz_proto::events::{CalibrationKind, names};
    let c = ClientEvent::decode(
        names::CALIBRATION_UPDATE,
        json!({"sessionId": "s", "kind": "probe-request", "target": 7, "runId": "r1",
               "at": [1500.0, 2500.0, 3500.0]}),
    )
    .unwrap()
    .unwrap();
    let ClientEvent::CalibrationUpdate(c) = c else {
        panic!("not a calibration-update: {c:?}")
    };
    assert_eq!(c.kind, CalibrationKind::ProbeRequest);
    assert_eq!((c.target, c.run_id.as_str()), (7, "r1"));
    assert!(c.check_size().is_ok());
    let relayed = ServerEvent::decode(
        names::CALIBRATION_UPDATE,
        json!({"userId": 3, "sessionId": "s", "kind": "offset-result", "target": 7,
               "runId": "r1", "delayMs": 150.5, "spreadMs": 1.0, "confidence": 0.9,
               "againstMs": 0.0}),
    )
    .unwrap();
    let ServerEvent::CalibrationUpdate(r) = &relayed else {
        panic!("not a calibration-update")
    };
    assert_eq!((r.user_id, r.update.delay_ms), (3, Some(150.5)));
    assert_eq!(
        relayed.to_json(),
        json!({"userId": 3, "sessionId": "s", "kind": "offset-result", "target": 7,
               "runId": "r1", "delayMs": 150.5, "spreadMs": 1.0, "confidence": 0.9,
               "againstMs": 0.0}),
        "optional fields absent stay out"
    );
    for garbage in [
        json!({"sessionId": "s", "kind": "probe-request", "target": "bob", "runId": "r"}),
        json!({"sessionId": "s", "kind": "probe-request", "runId": "r"}),
        json!({"sessionId": "s", "kind": "probe-request", "target": 7, "runId": "r", "at": "soon"}),
    ] {
        assert!(
            ClientEvent::decode(names::CALIBRATION_UPDATE, garbage.clone()).is_err(),
            "{garbage}"
        );
    }
    let mut big = c.clone();
    big.at = Some(vec![0.0; 21]);
    assert!(big.check_size().is_err());
    big.at = None;
    big.run_id = "x".repeat(65);
    assert!(big.check_size().is_err());
}

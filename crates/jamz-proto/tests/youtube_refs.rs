//! YouTube references from users: arbitrary text never panics the parser, every link form
//! built around any valid id gives that id back, and whatever it accepts is a valid id.
#![allow(clippy::unwrap_used)]
use jamz_proto::youtube::{VIDEO_ID_LEN, is_video_id, parse_video_ref};
use proptest::prelude::*;

fn arb_id() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_-]{11}").unwrap()
}

/// Text shaped like links, so the generator reaches deep into the parser rather than
/// failing at the host.
fn arb_linkish() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("youtube.com"),
        Just("www.youtube.com"),
        Just("music.youtube.com"),
        Just("youtu.be"),
        Just("m.youtube.com:8080"),
        Just("evil.example"),
    ];
    let path = prop_oneof![
        Just("/watch?"),
        Just("/embed/"),
        Just("/shorts/"),
        Just("/"),
        Just(""),
    ];
    (
        prop_oneof![Just("https://"), Just("HTTP://"), Just("//"), Just("")],
        host,
        path,
        ".{0,40}",
    )
        .prop_map(|(scheme, host, path, tail)| format!("{scheme}{host}{path}{tail}"))
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(id) = parse_video_ref(&text) {
            prop_assert!(is_video_id(id.as_str()));
        }
    }

    #[test]
    fn link_shaped_text_never_panics_and_only_gives_valid_ids(text in arb_linkish()) {
        match parse_video_ref(&text) {
            Ok(id) => prop_assert_eq!(id.as_str().len(), VIDEO_ID_LEN),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn every_form_gives_the_id_back(id in arb_id(), extra in "[a-uw-z]{2,8}=[a-z0-9]{0,8}") {
        for text in [
            id.clone(),
            format!("https://www.youtube.com/watch?v={id}&{extra}"),
            format!("https://www.youtube.com/watch?{extra}&v={id}"),
            format!("https://youtu.be/{id}?{extra}"),
            format!("https://www.youtube.com/embed/{id}"),
            format!("youtube.com/shorts/{id}"),
            format!("https://music.youtube.com/watch?v={id}#{extra}"),
        ] {
            prop_assert_eq!(parse_video_ref(&text).map(|v| v.as_str().to_owned()), Ok(id.clone()), "{}", text);
        }
    }
}

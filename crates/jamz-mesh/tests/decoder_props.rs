//! The mesh message decoder against hostile input: whatever the bytes, an answer and never
//! a panic; over 64 KiB, refused before parsing; a valid message cut short, an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_mesh::message::{MAX_MESSAGE_BYTES, MessageError, Receiver, decode};
use proptest::prelude::*;

/// A valid control message to cut and mangle.
const PAUSE: &str = r#"{"type":"music-control","action":"pause","data":{"position":12.5,"trackId":"t1","track":null,"timestamp":1700000000000.5,"from":7},"sequence":41,"from":7,"epoch":3,"sig":"00ff"}"#;

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(512))]

    /// Random bytes of any length up to past the limit: an answer, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        pad in 0usize..(MAX_MESSAGE_BYTES + 2),
    ) {
        let mut rx = Receiver::new();
        let _ = rx.receive(&bytes);
        let mut long = bytes;
        long.resize(long.len() + pad, b' ');
        let verdict = rx.receive(&long);
        if long.len() > MAX_MESSAGE_BYTES {
            prop_assert_eq!(verdict, Err(MessageError::TooLarge(long.len())));
        }
    }

    /// Anything over 64 KiB is refused as too large, even a well-formed message.
    #[test]
    fn oversized_is_refused_whatever_it_holds(extra in 1usize..4096, fill in any::<u8>()) {
        let mut text = PAUSE.as_bytes().to_vec();
        // Valid JSON all along: the refusal is about size, not syntax.
        text.truncate(text.len() - 1);
        text.extend_from_slice(br#","pad":""#);
        let room = MAX_MESSAGE_BYTES + extra - text.len() - 2;
        text.extend(std::iter::repeat_n(b'a' + fill % 26, room));
        text.extend_from_slice(br#""}"#);
        prop_assert_eq!(text.len(), MAX_MESSAGE_BYTES + extra);
        prop_assert_eq!(decode(&text), Err(MessageError::TooLarge(text.len())));
        prop_assert_eq!(Receiver::new().receive(&text), Err(MessageError::TooLarge(text.len())));
    }

    /// A valid message cut anywhere, or with one byte changed: an error or a message, never
    /// a panic; cut short, always an error.
    #[test]
    fn truncated_or_flipped_messages_never_panic(cut in 0usize..PAUSE.len(), at in 0usize..PAUSE.len(), byte in any::<u8>()) {
        prop_assert!(matches!(
            Receiver::new().receive(&PAUSE.as_bytes()[..cut]),
            Err(MessageError::Malformed(_))
        ));
        let mut flipped = PAUSE.as_bytes().to_vec();
        flipped[at] = byte;
        let _ = Receiver::new().receive(&flipped);
    }
}

#[test]
fn the_untouched_message_decodes_and_exactly_64_kib_is_allowed() {
    assert!(Receiver::new().receive(PAUSE.as_bytes()).is_ok());
    let mut text = PAUSE[..PAUSE.len() - 1].to_string();
    text.push_str(r#","pad":""#);
    let room = MAX_MESSAGE_BYTES - text.len() - 2;
    text.push_str(&"p".repeat(room));
    text.push_str(r#""}"#);
    assert_eq!(text.len(), MAX_MESSAGE_BYTES);
    assert_eq!(decode(text.as_bytes()).unwrap().sequence, 41);
}

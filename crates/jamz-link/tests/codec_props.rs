//! Property tests of the Engine.IO / Socket.IO codecs: network input never
//! panics, and what we encode decodes back to itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_link::packet::{EioPacket, SioKind, SioPacket};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        // quarters are exact in binary and in decimal: no float-parsing ULP noise
        (-4_000_000i64..4_000_000).prop_map(|n| json!(n as f64 / 4.0)),
        ".*".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(jamz_proto::test_support::proptest_config(256))]
    #[test]
    fn arbitrary_text_never_panics(s in ".*") {
        let _ = EioPacket::decode(&s);
        let _ = SioPacket::decode(&s);
    }

    #[test]
    fn arbitrary_packet_like_text_never_panics(
        ty in "[0-6]", att in "[0-9]{0,3}-?", ns in "(/[a-z]{0,4},)?", id in "[0-9]{0,25}", body in ".{0,40}"
    ) {
        let s = format!("{ty}{att}{ns}{id}{body}");
        let _ = SioPacket::decode(&s);
        let _ = EioPacket::decode(&format!("4{s}"));
    }

    #[test]
    fn events_round_trip(
        name in ".{1,20}",
        id in proptest::option::of(any::<u64>()),
        args in prop::collection::vec(json_value(), 0..4),
    ) {
        let p = SioPacket::main(SioKind::Event { id, name, args });
        let wire = EioPacket::Message(p.encode()).encode();
        let EioPacket::Message(inner) = EioPacket::decode(&wire).unwrap() else { panic!() };
        prop_assert_eq!(SioPacket::decode(&inner).unwrap(), p);
    }

    #[test]
    fn acks_round_trip(id in any::<u64>(), args in prop::collection::vec(json_value(), 0..4)) {
        let p = SioPacket::main(SioKind::Ack { id, args });
        prop_assert_eq!(SioPacket::decode(&p.encode()).unwrap(), p);
    }
}

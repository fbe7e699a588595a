//! Engine.IO v4 and Socket.IO v5 packet codecs (websocket transport only).
//!
//! Written from the public specs: socketio/engine.io-protocol (README, "Protocol"
//! and "Packet encoding / WebSocket") and socketio/socket.io-protocol (Readme,
//! "Packet encoding / Format"). Pure functions, no I/O: every byte comes from the
//! network, so every malformed input is an `Err`, never a panic.

use serde::Deserialize;
use serde_json::Value;

/// The Socket.IO main namespace, the only one this client speaks.
pub const MAIN_NAMESPACE: &str = "/";

/// An Engine.IO packet as carried in one websocket text frame.
#[derive(Debug, Clone, PartialEq)]
pub enum EioPacket {
    /// `0{...}`: the handshake data.
    Open(OpenData),
    /// `1`
    Close,
    /// `2[payload]`
    Ping(String),
    /// `3[payload]`
    Pong(String),
    /// `4<data>`: a Socket.IO packet (or any text).
    Message(String),
    /// `5`
    Upgrade,
    /// `6`
    Noop,
}

/// The payload of the Engine.IO `open` packet.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenData {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for our pong.
    pub ping_timeout: u64,
    /// Bytes per payload (meaningful for HTTP long-polling only).
    #[serde(default)]
    pub max_payload: Option<u64>,
}

/// What went wrong while decoding a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownEioType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownSioType(char),
    #[error("bad open packet: {0}")]
    BadOpen(String),
    #[error("bad attachment count")]
    BadAttachments,
    #[error("namespace not terminated by ','")]
    BadNamespace,
    #[error("ack id out of range")]
    BadAckId,
    #[error("payload is not valid JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    BadPayload(&'static str),
}

impl EioPacket {
    /// Decodes one websocket text frame.
    pub fn decode(text: &str) -> Result<Self, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let rest = chars.as_str();
        Ok(match kind {
            '0' => {
                let open: OpenData =
                    serde_json::from_str(rest).map_err(|e| PacketError::BadOpen(e.to_string()))?;
                EioPacket::Open(open)
            }
            '1' => EioPacket::Close,
            '2' => EioPacket::Ping(rest.to_owned()),
            '3' => EioPacket::Pong(rest.to_owned()),
            '4' => EioPacket::Message(rest.to_owned()),
            '5' => EioPacket::Upgrade,
            '6' => EioPacket::Noop,
            other => return Err(PacketError::UnknownEioType(other)),
        })
    }

    /// Encodes for one websocket text frame.
    pub fn encode(&self) -> String {
        match self {
            // A client never sends `open`; encode its type alone for completeness.
            EioPacket::Open(_) => "0".to_owned(),
            EioPacket::Close => "1".to_owned(),
            EioPacket::Ping(p) => format!("2{p}"),
            EioPacket::Pong(p) => format!("3{p}"),
            EioPacket::Message(m) => format!("4{m}"),
            EioPacket::Upgrade => "5".to_owned(),
            EioPacket::Noop => "6".to_owned(),
        }
    }
}

/// A Socket.IO packet (namespace kept apart so that other namespaces can be ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    pub namespace: String,
    pub kind: SioKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SioKind {
    /// `0[payload]`: from the client the auth payload, from the server `{sid}`.
    Connect(Option<Value>),
    /// `1`
    Disconnect,
    /// `2[id][name, args...]`
    Event {
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3id[args...]`
    Ack { id: u64, args: Vec<Value> },
    /// `4{message}`
    ConnectError(Value),
    /// `5n-...` / `6n-...`: binary packets, which this client does not support; kept
    /// so that the caller can report them and skip their attachments.
    Binary { attachments: u32, ack: bool },
}

impl SioPacket {
    /// A packet on the main namespace.
    pub fn main(kind: SioKind) -> Self {
        Self {
            namespace: MAIN_NAMESPACE.to_owned(),
            kind,
        }
    }

    /// Decodes the data of an Engine.IO `message` packet.
    pub fn decode(text: &str) -> Result<Self, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let mut rest = chars.as_str();
        if !matches!(kind, '0'..='6') {
            return Err(PacketError::UnknownSioType(kind));
        }
        let mut attachments = 0u32;
        if matches!(kind, '5' | '6') {
            let dash = rest.find('-').ok_or(PacketError::BadAttachments)?;
            attachments = rest[..dash]
                .parse()
                .map_err(|_| PacketError::BadAttachments)?;
            rest = &rest[dash + 1..];
        }
        let mut namespace = MAIN_NAMESPACE.to_owned();
        if rest.starts_with('/') {
            let comma = rest.find(',').ok_or(PacketError::BadNamespace)?;
            namespace = rest[..comma].to_owned();
            rest = &rest[comma + 1..];
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            Some(
                rest[..digits]
                    .parse::<u64>()
                    .map_err(|_| PacketError::BadAckId)?,
            )
        } else {
            None
        };
        rest = &rest[digits..];
        let payload: Option<Value> = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str(rest).map_err(|e| PacketError::BadJson(e.to_string()))?)
        };
        let kind = match kind {
            '0' => SioKind::Connect(payload),
            '1' => SioKind::Disconnect,
            '2' => {
                // "The payload is mandatory and MUST be a non-empty array."
                let Some(Value::Array(mut items)) = payload else {
                    return Err(PacketError::BadPayload("EVENT payload is not an array"));
                };
                if items.is_empty() {
                    return Err(PacketError::BadPayload("EVENT payload is empty"));
                }
                let Value::String(name) = items.remove(0) else {
                    return Err(PacketError::BadPayload("EVENT name is not a string"));
                };
                SioKind::Event {
                    id,
                    name,
                    args: items,
                }
            }
            '3' => {
                let id = id.ok_or(PacketError::BadPayload("ACK without an id"))?;
                let Some(Value::Array(args)) = payload else {
                    return Err(PacketError::BadPayload("ACK payload is not an array"));
                };
                SioKind::Ack { id, args }
            }
            '4' => SioKind::ConnectError(payload.unwrap_or(Value::Null)),
            _ => SioKind::Binary {
                attachments,
                ack: kind == '6',
            },
        };
        Ok(Self { namespace, kind })
    }

    /// Encodes to the data of an Engine.IO `message` packet (without the `4`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let (ty, id, payload): (char, Option<u64>, Option<String>) = match &self.kind {
            SioKind::Connect(p) => ('0', None, p.as_ref().map(Value::to_string)),
            SioKind::Disconnect => ('1', None, None),
            SioKind::Event { id, name, args } => {
                let mut items = Vec::with_capacity(args.len() + 1);
                items.push(Value::String(name.clone()));
                items.extend(args.iter().cloned());
                ('2', *id, Some(Value::Array(items).to_string()))
            }
            SioKind::Ack { id, args } => {
                ('3', Some(*id), Some(Value::Array(args.clone()).to_string()))
            }
            SioKind::ConnectError(v) => ('4', None, Some(v.to_string())),
            // Never produced by this client: binary packets are not supported.
            SioKind::Binary { attachments, ack } => {
                out.push(if *ack { '6' } else { '5' });
                out.push_str(&attachments.to_string());
                out.push('-');
                return out;
            }
        };
        out.push(ty);
        if self.namespace != MAIN_NAMESPACE {
            out.push_str(&self.namespace);
            out.push(',');
        }
        if let Some(id) = id {
            out.push_str(&id.to_string());
        }
        if let Some(p) = payload {
            out.push_str(&p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_spec_open_packet() {
        let p = EioPacket::decode(
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#,
        )
        .unwrap();
        let EioPacket::Open(o) = p else {
            panic!("{p:?}")
        };
        assert_eq!(o.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(o.ping_interval, 25000);
        assert_eq!(o.ping_timeout, 5000);
        assert_eq!(o.max_payload, Some(1_000_000));
    }

    #[test]
    fn engine_io_ping_pong_and_message() {
        assert_eq!(
            EioPacket::decode("2").unwrap(),
            EioPacket::Ping(String::new())
        );
        assert_eq!(
            EioPacket::decode("2probe").unwrap(),
            EioPacket::Ping("probe".into())
        );
        assert_eq!(EioPacket::Pong(String::new()).encode(), "3");
        assert_eq!(
            EioPacket::decode("42[\"a\"]").unwrap(),
            EioPacket::Message("2[\"a\"]".into())
        );
        assert_eq!(EioPacket::decode("1").unwrap(), EioPacket::Close);
        assert!(EioPacket::decode("").is_err());
        assert!(EioPacket::decode("9").is_err());
        assert!(EioPacket::decode("0{bad").is_err());
    }

    #[test]
    fn spec_examples_encode() {
        assert_eq!(SioPacket::main(SioKind::Connect(None)).encode(), "0");
        assert_eq!(
            SioPacket::main(SioKind::Connect(Some(json!({"token": "123"})))).encode(),
            r#"0{"token":"123"}"#
        );
        assert_eq!(
            SioPacket::main(SioKind::Event {
                id: None,
                name: "foo".into(),
                args: vec![]
            })
            .encode(),
            r#"2["foo"]"#
        );
        assert_eq!(
            SioPacket::main(SioKind::Event {
                id: Some(12),
                name: "foo".into(),
                args: vec![]
            })
            .encode(),
            r#"212["foo"]"#
        );
        assert_eq!(
            SioPacket {
                namespace: "/admin".into(),
                kind: SioKind::Ack {
                    id: 13,
                    args: vec![json!("bar")]
                }
            }
            .encode(),
            r#"3/admin,13["bar"]"#
        );
        assert_eq!(SioPacket::main(SioKind::Disconnect).encode(), "1");
    }

    #[test]
    fn spec_examples_decode() {
        let p = SioPacket::decode(r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#).unwrap();
        assert_eq!(
            p.kind,
            SioKind::Connect(Some(json!({"sid": "wZX3oN0bSVIhsaknAAAI"})))
        );
        let p = SioPacket::decode(r#"4{"message":"Not authorized"}"#).unwrap();
        assert_eq!(
            p.kind,
            SioKind::ConnectError(json!({"message": "Not authorized"}))
        );
        let p = SioPacket::decode(r#"2/admin,["bar"]"#).unwrap();
        assert_eq!(p.namespace, "/admin");
        assert_eq!(
            p.kind,
            SioKind::Event {
                id: None,
                name: "bar".into(),
                args: vec![]
            }
        );
        let p = SioPacket::decode(r#"3/admin,13["bar"]"#).unwrap();
        assert_eq!(
            p.kind,
            SioKind::Ack {
                id: 13,
                args: vec![json!("bar")]
            }
        );
        let p = SioPacket::decode(r#"212["foo",{"a":1},2]"#).unwrap();
        assert_eq!(
            p.kind,
            SioKind::Event {
                id: Some(12),
                name: "foo".into(),
                args: vec![json!({"a":1}), json!(2)]
            }
        );
        let p = SioPacket::decode(r#"61-15["bar",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            p.kind,
            SioKind::Binary {
                attachments: 1,
                ack: true
            }
        );
        let p = SioPacket::decode(r#"1/admin,"#).unwrap();
        assert_eq!(p.kind, SioKind::Disconnect);
    }

    #[test]
    fn malformed_socket_io_packets_are_errors() {
        for bad in [
            "",
            "7",
            "2",
            "2[]",
            "2{}",
            "2[1]",
            "2[\"a\"",
            "3[\"x\"]",
            "312{}",
            "5x-[]",
            "2/admin[\"a\"]",
            "299999999999999999999999[\"a\"]",
        ] {
            assert!(SioPacket::decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn round_trips() {
        let cases = vec![
            SioPacket::main(SioKind::Event {
                id: Some(0),
                name: "music-control".into(),
                args: vec![json!({"position": 1.5, "s": "é\u{1e}"})],
            }),
            SioPacket::main(SioKind::Ack {
                id: 7,
                args: vec![],
            }),
            SioPacket::main(SioKind::Connect(Some(json!({"token": "t"})))),
        ];
        for p in cases {
            assert_eq!(SioPacket::decode(&p.encode()).unwrap(), p);
        }
    }
}

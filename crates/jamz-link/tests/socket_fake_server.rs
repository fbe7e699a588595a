//! The Socket.IO client against a scripted in-process server that writes the
//! wire frames by hand (from the Engine.IO v4 / Socket.IO v5 specs), so that each
//! test controls exactly what the client sees: acks both ways, binary packets,
//! malformed frames, refusals, silence, queueing while disconnected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jamz_link::{
    DisconnectReason, LinkError, LinkEvent, LinkEvents, LinkState, ReconnectPolicy, SocketClient,
    SocketConfig,
};
use jamz_proto::ServerEvent;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

struct Fake {
    listener: TcpListener,
    url: String,
}

struct Conn {
    ws: WebSocketStream<TcpStream>,
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        Fake { listener, url }
    }

    /// Accepts a websocket and sends the Engine.IO open packet.
    async fn accept_with(&self, ping_interval: u64, ping_timeout: u64) -> Conn {
        let (tcp, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("no connection")
            .unwrap();
        let ws = tokio_tungstenite::accept_hdr_async(
            tcp,
            |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                let q = req.uri().query().unwrap_or_default().to_string();
                assert!(
                    q.contains("EIO=4") && q.contains("transport=websocket"),
                    "{q}"
                );
                assert_eq!(req.uri().path(), "/socket.io/");
                Ok(resp)
            },
        )
        .await
        .unwrap();
        let mut c = Conn { ws };
        c.send(&format!(
            r#"0{{"sid":"eio-sid","upgrades":[],"pingInterval":{ping_interval},"pingTimeout":{ping_timeout},"maxPayload":1000000}}"#
        ))
        .await;
        c
    }

    async fn accept(&self) -> Conn {
        self.accept_with(25_000, 20_000).await
    }

    /// Accepts and completes the Socket.IO CONNECT; returns the auth payload.
    async fn accept_connected(&self, sid: &str) -> (Conn, Value) {
        let mut c = self.accept().await;
        let auth = c.expect_connect().await;
        c.send(&format!(r#"40{{"sid":"{sid}"}}"#)).await;
        (c, auth)
    }
}

impl Conn {
    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).await.unwrap();
    }

    async fn recv(&mut self) -> String {
        loop {
            let m = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("nothing from the client")
                .expect("closed")
                .unwrap();
            if let Message::Text(t) = m {
                return t.to_string();
            }
        }
    }

    async fn expect_connect(&mut self) -> Value {
        let t = self.recv().await;
        let payload = t
            .strip_prefix("40")
            .unwrap_or_else(|| panic!("expected CONNECT, got {t}"));
        serde_json::from_str(payload).unwrap()
    }
}

fn config(url: &str) -> SocketConfig {
    SocketConfig::new(url)
        .token("good")
        .seed(1)
        .reconnect(ReconnectPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            ..ReconnectPolicy::default()
        })
}

async fn next(ev: &mut LinkEvents) -> LinkEvent {
    tokio::time::timeout(WAIT, ev.recv())
        .await
        .expect("no link event")
        .expect("link ended")
}

async fn state(ev: &mut LinkEvents, pred: impl Fn(&LinkState) -> bool) -> LinkState {
    loop {
        if let LinkEvent::State(s) = next(ev).await
            && pred(&s)
        {
            return s;
        }
    }
}

async fn message(ev: &mut LinkEvents) -> jamz_link::ServerMessage {
    loop {
        if let LinkEvent::Event { raw: m, .. } = next(ev).await {
            return m;
        }
    }
}

fn connected(s: &LinkState) -> bool {
    matches!(s, LinkState::Connected { .. })
}

/// A link connected to a fresh fake server as `sid`; the Connected state has
/// been reported. Keep the `Fake` to accept reconnections.
async fn up(sid: &str) -> (Fake, SocketClient, LinkEvents, Conn) {
    let fake = Fake::start().await;
    let (link, mut ev) = SocketClient::connect(config(&fake.url)).unwrap();
    let (c, _) = fake.accept_connected(sid).await;
    state(&mut ev, connected).await;
    (fake, link, ev, c)
}

#[tokio::test]
async fn handshake_sends_the_token_and_answers_pings() {
    let fake = Fake::start().await;
    let (link, mut ev) = SocketClient::connect(config(&fake.url)).unwrap();
    let (mut c, auth) = fake.accept_connected("sock-1").await;
    assert_eq!(auth, json!({"token": "good"}));
    let s = state(&mut ev, connected).await;
    assert!(
        matches!(s, LinkState::Connected { ref sid, .. } if sid == "sock-1"),
        "{s:?}"
    );
    c.send("2").await;
    assert_eq!(c.recv().await, "3");
    c.send("2probe").await;
    assert_eq!(c.recv().await, "3probe");
    link.close().await.unwrap();
    assert_eq!(c.recv().await, "41", "Socket.IO DISCONNECT");
    assert_eq!(c.recv().await, "1", "Engine.IO close");
}

#[tokio::test]
async fn server_acks_and_client_acks() {
    let (_fake, link, mut ev, mut c) = up("s").await;

    // server -> client, with an ack id
    c.send(r#"427["question",{"q":1},2]"#).await;
    let m = message(&mut ev).await;
    assert_eq!(m.name, "question");
    assert_eq!(m.args, vec![json!({"q": 1}), json!(2)]);
    m.ack
        .expect("ack requested")
        .send(vec![json!("yes"), json!(3)])
        .unwrap();
    assert_eq!(c.recv().await, r#"437["yes",3]"#);

    // client -> server, acked
    let l2 = link.clone();
    let asked = tokio::spawn(async move {
        l2.emit_with_ack("time-sync", json!({"t0": 1.5}), WAIT)
            .await
    });
    let t = c.recv().await;
    assert_eq!(t, r#"420["time-sync",{"t0":1.5}]"#);
    c.send(r#"430[{"t0":1.5,"t1":2,"t2":3}]"#).await;
    assert_eq!(
        asked.await.unwrap().unwrap(),
        vec![json!({"t0": 1.5, "t1": 2, "t2": 3})]
    );

    // client -> server, never acked: a timeout, and the link stays up
    let r = link
        .emit_with_ack("time-sync", json!({"t0": 2}), Duration::from_millis(50))
        .await;
    assert!(matches!(r, Err(LinkError::AckTimeout { .. })), "{r:?}");
    assert_eq!(c.recv().await, r#"421["time-sync",{"t0":2}]"#);
    link.emit("after", json!(null)).unwrap();
    assert_eq!(c.recv().await, r#"42["after",null]"#);
}

#[tokio::test]
async fn binary_packets_are_refused_and_the_link_survives() {
    let (_fake, _link, mut ev, mut c) = up("s").await;
    c.send(r#"451-["bin",{"_placeholder":true,"num":0}]"#).await;
    c.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    c.send(r#"42["after",1]"#).await;
    let mut warned = false;
    loop {
        match next(&mut ev).await {
            LinkEvent::Warning(w) => {
                assert!(w.contains("binary"), "{w}");
                warned = true;
            }
            LinkEvent::Event { raw: m, .. } => {
                assert_eq!(m.name, "after");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(warned);
}

#[tokio::test]
async fn malformed_frames_drop_the_connection_and_it_comes_back() {
    let (fake, _link, mut ev, mut c) = up("s1").await;
    c.send(r#"42{"not":"an array"}"#).await;
    let s = state(&mut ev, |s| matches!(s, LinkState::Disconnected { .. })).await;
    assert!(
        matches!(
            s,
            LinkState::Disconnected {
                reason: DisconnectReason::ProtocolError(_)
            }
        ),
        "{s:?}"
    );
    let (_c2, _) = fake.accept_connected("s2").await;
    let s = state(&mut ev, connected).await;
    assert!(
        matches!(s, LinkState::Connected { ref sid, .. } if sid == "s2"),
        "{s:?}"
    );
}

#[tokio::test]
async fn queue_overflow_is_reported_and_the_rest_flushes_in_order_after_the_rejoin() {
    let fake = Fake::start().await;
    let cfg = config(&fake.url).queue_capacity(3).hold_queue(true);
    let (link, mut ev) = SocketClient::connect(cfg).unwrap();
    // Not accepted yet: the link is connecting, so everything is queued.
    for i in 0..5 {
        link.emit("e", json!(i)).unwrap();
    }
    let mut dropped = Vec::new();
    while dropped.len() < 2 {
        if let LinkEvent::QueueOverflow { dropped: d } = next(&mut ev).await {
            dropped.extend(d.into_iter().map(|e| e.args[0].clone()));
        }
    }
    assert_eq!(
        dropped,
        vec![json!(0), json!(1)],
        "the oldest are dropped, and said so"
    );
    // The caller joins on every connection, then releases what waited.
    let rejoin = |link: &SocketClient| {
        link.emit_first("join-audio-session", json!({"sessionId": "S"}))
            .unwrap();
        link.release_queue().unwrap();
    };
    let (mut c, _) = fake.accept_connected("s").await;
    state(&mut ev, connected).await;
    rejoin(&link);
    assert_eq!(
        c.recv().await,
        r#"42["join-audio-session",{"sessionId":"S"}]"#
    );
    for i in 2..5 {
        assert_eq!(c.recv().await, format!(r#"42["e",{i}]"#));
    }

    // after a lost connection: the room again first, then what was queued meanwhile
    drop(c);
    state(&mut ev, |s| matches!(s, LinkState::Disconnected { .. })).await;
    link.emit("e", json!(9)).unwrap();
    let (mut c, _) = fake.accept_connected("s").await;
    state(&mut ev, connected).await;
    rejoin(&link);
    assert_eq!(
        c.recv().await,
        r#"42["join-audio-session",{"sessionId":"S"}]"#
    );
    assert_eq!(c.recv().await, r#"42["e",9]"#);
}

#[tokio::test]
async fn a_refused_token_waits_for_a_new_one() {
    let fake = Fake::start().await;
    let (link, mut ev) = SocketClient::connect(config(&fake.url).token("bad")).unwrap();
    let mut c = fake.accept().await;
    assert_eq!(c.expect_connect().await, json!({"token": "bad"}));
    c.send(r#"44{"message":"Authentication failed"}"#).await;
    let s = state(&mut ev, |s| matches!(s, LinkState::Refused { .. })).await;
    assert_eq!(
        s,
        LinkState::Refused {
            message: "Authentication failed".into()
        }
    );
    link.set_token(Some("fresh".into())).unwrap();
    let (_c, auth) = fake.accept_connected("s").await;
    assert_eq!(auth, json!({"token": "fresh"}));
    state(&mut ev, connected).await;
}

#[tokio::test]
async fn a_silent_server_is_declared_dead_and_the_link_reconnects() {
    let fake = Fake::start().await;
    let (_link, mut ev) = SocketClient::connect(config(&fake.url)).unwrap();
    let mut c = fake.accept_with(100, 50).await;
    c.expect_connect().await;
    c.send(r#"40{"sid":"quiet"}"#).await;
    state(&mut ev, connected).await;
    // say nothing at all
    let s = state(&mut ev, |s| matches!(s, LinkState::Dead { .. })).await;
    let LinkState::Dead { silence } = s else {
        unreachable!()
    };
    assert!(
        silence >= Duration::from_millis(150),
        "declared dead before the limit: {silence:?}"
    );
    println!("dead after {silence:?} of silence (limit 150ms)");
    let s = state(&mut ev, |s| matches!(s, LinkState::Disconnected { .. })).await;
    assert_eq!(
        s,
        LinkState::Disconnected {
            reason: DisconnectReason::PingTimeout
        }
    );
    let (_c2, _) = fake.accept_connected("again").await;
    state(&mut ev, connected).await;
    drop(c);
}

#[tokio::test]
async fn pending_acks_fail_when_the_connection_drops() {
    let (_fake, link, _ev, mut c) = up("s").await;
    let l2 = link.clone();
    let asked = tokio::spawn(async move { l2.emit_with_ack("q", json!(1), WAIT).await });
    c.recv().await;
    drop(c);
    let r = asked.await.unwrap();
    assert!(matches!(r, Err(LinkError::AckLost { .. })), "{r:?}");
}

#[tokio::test]
async fn close_reports_what_was_still_queued() {
    let fake = Fake::start().await;
    let (link, mut ev) = SocketClient::connect(config(&fake.url)).unwrap();
    link.emit("never-sent", json!(1)).unwrap();
    link.close().await.unwrap();
    let mut reported = false;
    loop {
        match next(&mut ev).await {
            LinkEvent::QueueOverflow { dropped } => {
                assert_eq!(dropped[0].name, "never-sent");
                reported = true;
            }
            LinkEvent::State(LinkState::Closed) => break,
            _ => {}
        }
    }
    assert!(reported);
    assert!(matches!(link.emit("x", json!(1)), Err(LinkError::Closed)));
}

#[tokio::test]
async fn wss_to_a_plain_server_fails_cleanly_and_the_policy_can_give_up() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let cfg = config(&url).reconnect(ReconnectPolicy {
        max_attempts: Some(1),
        initial: Duration::from_millis(10),
        ..ReconnectPolicy::default()
    });
    let (_link, mut ev) = SocketClient::connect(cfg).unwrap();
    let mut failures = 0;
    loop {
        match next(&mut ev).await {
            LinkEvent::State(LinkState::Disconnected {
                reason: DisconnectReason::ConnectFailed(why),
            }) => {
                println!("{why}");
                failures += 1;
            }
            LinkEvent::State(LinkState::Closed) => break,
            LinkEvent::State(LinkState::Connected { .. }) => {
                panic!("connected to a non-TLS server")
            }
            _ => {}
        }
    }
    assert_eq!(failures, 2, "the first attempt and one retry");
}

#[tokio::test]
async fn state_can_be_awaited_without_the_event_stream() {
    let fake = Fake::start().await;
    let (link, _events) = SocketClient::connect(config(&fake.url)).unwrap();
    assert!(!link.is_connected());
    let accept = async { fake.accept_connected("watched").await };
    let (sid, (_c, _)) = tokio::join!(link.wait_connected(WAIT), accept);
    assert_eq!(sid.unwrap(), "watched");
    assert!(link.is_connected());
    link.close().await.unwrap();
    assert_eq!(link.state(), LinkState::Closed);
}

#[tokio::test]
async fn with_no_queue_an_event_emitted_offline_is_dropped_at_once() {
    let fake = Fake::start().await;
    let (link, mut ev) = SocketClient::connect(config(&fake.url).queue_capacity(0)).unwrap();
    // Not accepted: the link is connecting, so the event would have to wait.
    let r = link.emit_with_ack("q", json!(1), WAIT).await;
    assert!(
        matches!(&r, Err(LinkError::QueueOverflow { event, capacity: 0 }) if event == "q"),
        "{r:?}"
    );
    loop {
        if let LinkEvent::QueueOverflow { dropped } = next(&mut ev).await {
            assert_eq!(dropped.len(), 1);
            assert_eq!(dropped[0].name, "q");
            break;
        }
    }
}

#[tokio::test]
async fn server_events_arrive_decoded_and_a_bad_payload_is_its_own_event() {
    let (_fake, _link, mut ev, mut c) = up("s").await;
    c.send(r#"42["participant-left",{"socketId":"x","userId":7}]"#)
        .await;
    c.send(r#"42["participant-left",{"socketId":"x","userId":"seven"}]"#)
        .await;
    c.send(r#"42["some-extension",{"a":1}]"#).await;
    match next(&mut ev).await {
        LinkEvent::Event { event, raw } => {
            let ServerEvent::ParticipantLeft(left) = *event else {
                panic!("{event:?}")
            };
            assert_eq!(left.user_id, 7);
            assert_eq!(left.socket_id, "x");
            assert_eq!(raw.name, "participant-left");
        }
        other => panic!("{other:?}"),
    }
    match next(&mut ev).await {
        LinkEvent::BadEvent { error, raw } => {
            assert_eq!(raw.name, "participant-left");
            assert_eq!(error.field(), Some("userId"), "{error}");
            let message = error.to_string();
            assert!(
                message.contains("participant-left") && message.contains("userId"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match next(&mut ev).await {
        LinkEvent::Event { event, .. } => {
            let ServerEvent::Unknown { name, data } = *event else {
                panic!("{event:?}")
            };
            assert_eq!(name, "some-extension");
            assert_eq!(data, json!({"a": 1}));
        }
        other => panic!("{other:?}"),
    }
}

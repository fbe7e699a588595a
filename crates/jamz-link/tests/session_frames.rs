//! The sans-IO session alone: recorded Engine.IO v4 / Socket.IO v5 frames and
//! instants in, frames, transport orders, timeouts and events out. No socket, no
//! runtime, no sleeping: time is whatever instant the test passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use jamz_link::session::RequestId;
use jamz_link::session::{Frame, Io, SessionEvent};
use jamz_link::{
    DisconnectReason, LinkError, LinkState, OutgoingEvent, ReconnectPolicy, Session, SocketConfig,
};
use serde_json::{Value, json};

/// Recorded from a Socket.IO 4 server (pingInterval 25 s, pingTimeout 20 s).
const OPEN: &str = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const OPEN_FAST: &str =
    r#"0{"sid":"fast","upgrades":[],"pingInterval":100,"pingTimeout":50,"maxPayload":1000000}"#;

fn config() -> SocketConfig {
    SocketConfig::new("http://127.0.0.1:1")
        .token("good")
        .reconnect(ReconnectPolicy {
            jitter: 0.0,
            ..ReconnectPolicy::default()
        })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn event(name: &str, data: Value) -> OutgoingEvent {
    OutgoingEvent {
        name: name.into(),
        args: vec![data],
    }
}

/// Everything the session asks of the transport, the frames as text.
#[derive(Debug, PartialEq)]
enum Did {
    Connect,
    Send(String),
    Close { graceful: bool },
}

fn io(s: &mut Session) -> Vec<Did> {
    std::iter::from_fn(|| s.poll_io())
        .map(|io| match io {
            Io::Connect => Did::Connect,
            Io::Send(t) => Did::Send(t.frame),
            Io::Close { graceful } => Did::Close { graceful },
        })
        .collect()
}

fn sent(s: &mut Session) -> Vec<String> {
    io(s)
        .into_iter()
        .filter_map(|d| match d {
            Did::Send(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn states(s: &mut Session) -> Vec<LinkState> {
    events(s)
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::State(st) => Some(st),
            _ => None,
        })
        .collect()
}

fn text(s: &mut Session, now: Instant, frame: &str) {
    s.handle_frame(now, Frame::Text(frame));
}

/// A session connected as `sid` at `t0` (open packet `open`), outputs drained.
fn connected_with(cfg: SocketConfig, open: &str, t0: Instant) -> Session {
    let mut s = Session::new(cfg, 1, t0);
    assert_eq!(io(&mut s), vec![Did::Connect]);
    text(&mut s, t0, open);
    assert_eq!(sent(&mut s), vec![r#"40{"token":"good"}"#]);
    text(&mut s, t0, r#"40{"sid":"sock-1"}"#);
    assert!(s.is_connected());
    events(&mut s);
    io(&mut s);
    s
}

fn connected(t0: Instant) -> Session {
    connected_with(config(), OPEN, t0)
}

#[test]
fn handshake_sends_the_token_and_reports_the_connection() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), 1, t0);
    assert_eq!(io(&mut s), vec![Did::Connect]);
    assert_eq!(states(&mut s), vec![LinkState::Connecting { attempt: 0 }]);
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + Duration::from_secs(10)),
        "connect timeout"
    );
    // A ping during the handshake is answered too.
    text(&mut s, t0, OPEN);
    text(&mut s, t0, "2");
    assert_eq!(sent(&mut s), vec![r#"40{"token":"good"}"#, "3"]);
    text(&mut s, t0, r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
    assert_eq!(
        states(&mut s),
        vec![LinkState::Connected {
            sid: "wZX3oN0bSVIhsaknAAAI".into(),
            engine_sid: "lv_VI97HAXpY6yYWAAAC".into(),
            server: "http://127.0.0.1:1".into(),
            ping_interval: ms(25_000),
            ping_timeout: ms(20_000),
        }]
    );
    assert_eq!(s.poll_timeout(), Some(t0 + ms(45_000)), "silence limit");
    assert_eq!(s.write_limit(), ms(45_000));
}

#[test]
fn without_a_token_the_auth_payload_is_empty() {
    let t0 = Instant::now();
    let mut s = Session::new(SocketConfig::new("http://x"), 1, t0);
    io(&mut s);
    text(&mut s, t0, OPEN);
    assert_eq!(sent(&mut s), vec!["40{}"]);
}

#[test]
fn pings_are_answered_with_their_payload() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    text(&mut s, t0, "2");
    text(&mut s, t0, "2probe");
    assert_eq!(sent(&mut s), vec!["3", "3probe"]);
    assert!(events(&mut s).is_empty());
}

#[test]
fn silence_past_ping_interval_plus_timeout_is_a_dead_link() {
    let t0 = Instant::now();
    let mut s = connected_with(config(), OPEN_FAST, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(150)));
    // Not yet: nothing happens.
    s.handle_timeout(t0 + ms(149));
    assert!(s.is_connected());
    assert!(events(&mut s).is_empty());
    // Any frame is a sign of life and pushes the limit.
    text(&mut s, t0 + ms(100), "2");
    assert_eq!(sent(&mut s), vec!["3"]);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(250)));
    s.handle_frame(t0 + ms(200), Frame::Control);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(350)));
    s.handle_timeout(t0 + ms(349));
    assert!(s.is_connected());
    s.handle_timeout(t0 + ms(360));
    assert_eq!(
        states(&mut s),
        vec![
            LinkState::Dead { silence: ms(160) },
            LinkState::Disconnected {
                reason: DisconnectReason::PingTimeout
            },
            LinkState::Reconnecting {
                attempt: 1,
                delay: ms(250)
            },
        ]
    );
    assert_eq!(io(&mut s), vec![Did::Close { graceful: false }]);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(360 + 250)));
}

#[test]
fn connect_error_waits_for_a_new_token_then_tries_at_once() {
    let t0 = Instant::now();
    let mut s = Session::new(config().token("bad"), 1, t0);
    io(&mut s);
    text(&mut s, t0, OPEN);
    assert_eq!(sent(&mut s), vec![r#"40{"token":"bad"}"#]);
    text(&mut s, t0, r#"44{"message":"Authentication failed"}"#);
    assert_eq!(
        states(&mut s),
        vec![
            LinkState::Connecting { attempt: 0 },
            LinkState::Refused {
                message: "Authentication failed".into()
            }
        ]
    );
    assert_eq!(io(&mut s), vec![Did::Close { graceful: false }]);
    assert_eq!(s.poll_timeout(), None, "a refused token is not retried");
    s.set_token(t0 + ms(5), Some("fresh".into()));
    assert_eq!(io(&mut s), vec![Did::Connect]);
    assert_eq!(states(&mut s), vec![LinkState::Connecting { attempt: 0 }]);
    text(&mut s, t0, OPEN);
    assert_eq!(sent(&mut s), vec![r#"40{"token":"fresh"}"#]);
}

#[test]
fn a_token_changed_during_the_handshake_gets_its_own_attempt() {
    let t0 = Instant::now();
    let mut s = Session::new(config().token("old"), 1, t0);
    io(&mut s);
    text(&mut s, t0, OPEN);
    s.set_token(t0, Some("new".into()));
    // A handshake under way is not interrupted.
    assert_eq!(sent(&mut s), vec![r#"40{"token":"old"}"#]);
    text(&mut s, t0, r#"44{"message":"jwt expired"}"#);
    assert_eq!(
        io(&mut s),
        vec![Did::Close { graceful: false }, Did::Connect]
    );
}

#[test]
fn server_events_and_their_acks_on_the_right_connection() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    text(
        &mut s,
        t0,
        r#"42["music-play",{"sessionId":"S","position":1.5}]"#,
    );
    text(&mut s, t0, r#"427["question",{"q":1},2]"#);
    let evs = events(&mut s);
    let SessionEvent::Message { name, args, ack } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(name, "music-play");
    assert_eq!(args, &vec![json!({"sessionId": "S", "position": 1.5})]);
    assert!(ack.is_none());
    let SessionEvent::Message { name, args, ack } = &evs[1] else {
        panic!("{evs:?}")
    };
    assert_eq!(name, "question");
    assert_eq!(args, &vec![json!({"q": 1}), json!(2)]);
    let ticket = ack.expect("an ack was asked for");
    s.ack(ticket, vec![json!("yes"), json!(3)]);
    assert_eq!(sent(&mut s), vec![r#"437["yes",3]"#]);

    // Another namespace is not ours.
    text(&mut s, t0, r#"42/admin,["bar"]"#);
    assert!(events(&mut s).is_empty());

    // After a reconnection the old connection's ack id means nothing.
    text(&mut s, t0, "1");
    events(&mut s);
    io(&mut s);
    s.handle_timeout(t0 + ms(250));
    io(&mut s);
    text(&mut s, t0 + ms(250), OPEN);
    text(&mut s, t0 + ms(250), r#"40{"sid":"sock-2"}"#);
    io(&mut s);
    s.ack(ticket, vec![json!("late")]);
    assert!(sent(&mut s).is_empty(), "an answer for a gone connection");
}

#[test]
fn client_acks_arrive_and_pending_ones_fail_when_the_link_drops() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.emit(event("time-sync", json!({"t0": 1.5})), Some(RequestId(7)));
    s.emit(event("time-sync", json!({"t0": 2})), Some(RequestId(8)));
    s.emit(event("after", Value::Null), None);
    assert_eq!(
        sent(&mut s),
        vec![
            r#"420["time-sync",{"t0":1.5}]"#,
            r#"421["time-sync",{"t0":2}]"#,
            r#"42["after",null]"#
        ]
    );
    text(&mut s, t0, r#"430[{"t0":1.5,"t1":2,"t2":3}]"#);
    // An ack for nobody is ignored.
    text(&mut s, t0, r#"4399["x"]"#);
    let evs = events(&mut s);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let SessionEvent::AckResult { request, result } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(*request, RequestId(7));
    assert_eq!(
        result.as_ref().unwrap(),
        &vec![json!({"t0": 1.5, "t1": 2, "t2": 3})]
    );
    s.handle_frame(t0, Frame::End);
    let evs = events(&mut s);
    assert!(
        evs.iter().any(|e| matches!(
            e,
            SessionEvent::AckResult { request: RequestId(8), result: Err(LinkError::AckLost { event }) } if event == "time-sync"
        )),
        "{evs:?}"
    );
    assert!(evs.iter().any(|e| matches!(
        e,
        SessionEvent::State(LinkState::Disconnected {
            reason: DisconnectReason::TransportClosed(_)
        })
    )));
}

#[test]
fn binary_packets_are_refused_and_their_attachments_skipped() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    text(&mut s, t0, r#"451-["bin",{"_placeholder":true,"num":0}]"#);
    s.handle_frame(t0, Frame::Binary);
    let evs = events(&mut s);
    assert_eq!(evs.len(), 1, "the attachment is skipped silently: {evs:?}");
    assert!(matches!(&evs[0], SessionEvent::Warning(w) if w.contains("binary")));
    s.handle_frame(t0, Frame::Binary);
    let evs = events(&mut s);
    assert!(
        matches!(&evs[..], [SessionEvent::Warning(w)] if w.contains("unexpected binary")),
        "{evs:?}"
    );
    text(&mut s, t0, r#"42["after",1]"#);
    assert!(matches!(&events(&mut s)[..], [SessionEvent::Message { name, .. }] if name == "after"));
    assert!(s.is_connected());
}

#[test]
fn malformed_frames_end_the_connection_with_a_reason() {
    for bad in [
        r#"42{"not":"an array"}"#,
        "9",
        "",
        "4",
        "42[1]",
        r#"43["no id"]"#,
        "45x-[]",
        "0{bad",
    ] {
        let t0 = Instant::now();
        let mut s = connected(t0);
        text(&mut s, t0, bad);
        let st = states(&mut s);
        let closing = io(&mut s);
        assert!(
            matches!(
                &st[..],
                [
                    LinkState::Disconnected {
                        reason: DisconnectReason::ProtocolError(_)
                    },
                    LinkState::Reconnecting { .. }
                ]
            ),
            "{bad:?}: {st:?}"
        );
        assert_eq!(closing, vec![Did::Close { graceful: true }], "{bad:?}");
    }
}

#[test]
fn malformed_handshake_frames_fail_the_attempt() {
    for (bad, why) in [
        ("0{bad", "bad open"),
        (r#"42["x"]"#, "before open"),
        ("1", "closed during the handshake"),
    ] {
        let t0 = Instant::now();
        let mut s = Session::new(config(), 1, t0);
        io(&mut s);
        text(&mut s, t0, bad);
        let st = states(&mut s);
        assert!(
            matches!(&st[1], LinkState::Disconnected { reason: DisconnectReason::ConnectFailed(m) } if m.contains(why)),
            "{bad:?}: {st:?}"
        );
    }
    // A CONNECT without a sid, and anything but CONNECT after open.
    for bad in [r#"40{}"#, r#"42["x"]"#] {
        let t0 = Instant::now();
        let mut s = Session::new(config(), 1, t0);
        io(&mut s);
        text(&mut s, t0, OPEN);
        text(&mut s, t0, bad);
        assert!(!s.is_connected());
        assert!(matches!(
            &states(&mut s)[1],
            LinkState::Disconnected {
                reason: DisconnectReason::ConnectFailed(_)
            }
        ));
    }
}

#[test]
fn reconnect_backoff_grows_caps_and_can_give_up() {
    let t0 = Instant::now();
    let cfg = config().reconnect(ReconnectPolicy {
        jitter: 0.0,
        max_attempts: Some(3),
        max: ms(600),
        ..ReconnectPolicy::default()
    });
    let mut s = Session::new(cfg, 1, t0);
    io(&mut s);
    let mut now = t0;
    let mut delays = Vec::new();
    loop {
        s.handle_transport_error(now, "connection refused".into());
        let st = states(&mut s);
        match st.last() {
            Some(LinkState::Reconnecting { attempt, delay }) => {
                delays.push(*delay);
                assert_eq!(*attempt as usize, delays.len());
                assert_eq!(s.poll_timeout(), Some(now + *delay));
                // Not before its time.
                s.handle_timeout(now + *delay - ms(1));
                assert!(io(&mut s).iter().all(|d| *d != Did::Connect));
                now += *delay;
                s.handle_timeout(now);
                assert_eq!(io(&mut s), vec![Did::Connect]);
                assert_eq!(
                    states(&mut s),
                    vec![LinkState::Connecting { attempt: *attempt }]
                );
            }
            Some(LinkState::Closed) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delays, vec![ms(250), ms(500), ms(600)]);
    assert!(s.is_closed());
}

#[test]
fn a_success_resets_the_backoff() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), 1, t0);
    io(&mut s);
    s.handle_transport_error(t0, "refused".into());
    s.handle_timeout(t0 + ms(250));
    s.handle_transport_error(t0 + ms(250), "refused".into());
    s.handle_timeout(t0 + ms(750));
    text(&mut s, t0 + ms(750), OPEN);
    text(&mut s, t0 + ms(750), r#"40{"sid":"x"}"#);
    events(&mut s);
    text(&mut s, t0 + ms(800), "41");
    assert_eq!(
        states(&mut s),
        vec![
            LinkState::Disconnected {
                reason: DisconnectReason::ServerDisconnect
            },
            LinkState::Reconnecting {
                attempt: 1,
                delay: ms(250)
            }
        ]
    );
}

#[test]
fn the_handshake_times_out() {
    let t0 = Instant::now();
    let mut s = Session::new(config().connect_timeout(ms(300)), 1, t0);
    io(&mut s);
    text(&mut s, t0, OPEN);
    s.handle_timeout(t0 + ms(300));
    let st = states(&mut s);
    assert!(
        matches!(&st[1], LinkState::Disconnected { reason: DisconnectReason::ConnectFailed(m) } if m.contains("timed out")),
        "{st:?}"
    );
}

#[test]
fn the_offline_queue_is_bounded_at_256_and_drops_the_oldest() {
    let t0 = Instant::now();
    let mut s = Session::new(config(), 1, t0);
    io(&mut s);
    events(&mut s);
    s.emit(event("first", json!(0)), Some(RequestId(1)));
    for i in 1..300 {
        s.emit(event("e", json!(i)), None);
    }
    assert_eq!(s.queued(), 256);
    let mut dropped = Vec::new();
    let mut overflowed = None;
    for e in events(&mut s) {
        match e {
            SessionEvent::QueueOverflow { dropped: d } => dropped.extend(d),
            SessionEvent::AckResult { request, result } => overflowed = Some((request, result)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(dropped.len(), 300 - 256);
    assert_eq!(dropped[0].name, "first");
    assert_eq!(dropped[43].args, vec![json!(43)]);
    let (request, result) = overflowed.expect("the acked one was told");
    assert_eq!(request, RequestId(1));
    assert!(matches!(
        result,
        Err(LinkError::QueueOverflow { capacity: 256, .. })
    ));
    // Connected: the rest goes out in order.
    text(&mut s, t0, OPEN);
    text(&mut s, t0, r#"40{"sid":"s"}"#);
    let frames = sent(&mut s);
    assert_eq!(frames.len(), 1 + 256);
    assert_eq!(frames[1], r#"42["e",44]"#);
    assert_eq!(frames[256], r#"42["e",299]"#);
}

#[test]
fn latest_only_events_replace_their_queued_copy() {
    let t0 = Instant::now();
    let mut s = Session::new(
        config().latest_only(["location-update"]).queue_capacity(3),
        1,
        t0,
    );
    io(&mut s);
    events(&mut s);
    s.emit(event("location-update", json!(1)), Some(RequestId(1)));
    s.emit(event("playlist-update", json!("p")), None);
    for i in 2..600 {
        s.emit(event("location-update", json!(i)), None);
    }
    assert_eq!(s.queued(), 2, "one fix, one playlist change");
    let evs = events(&mut s);
    assert!(
        matches!(
            &evs[..],
            [SessionEvent::AckResult {
                request: RequestId(1),
                result: Err(LinkError::Superseded { .. })
            }]
        ),
        "{evs:?}"
    );
    text(&mut s, t0, OPEN);
    text(&mut s, t0, r#"40{"sid":"s"}"#);
    assert_eq!(
        sent(&mut s),
        vec![
            r#"40{"token":"good"}"#,
            r#"42["playlist-update","p"]"#,
            r#"42["location-update",599]"#
        ]
    );
}

#[test]
fn a_held_queue_waits_for_the_join_and_the_release() {
    let t0 = Instant::now();
    let mut s = Session::new(config().hold_queue(true), 1, t0);
    io(&mut s);
    s.emit(event("music-control", json!(1)), None);
    // Not connected: a first event belongs to a connection, and there is none.
    s.emit_first(event("join-audio-session", json!("early")));
    text(&mut s, t0, OPEN);
    text(&mut s, t0, r#"40{"sid":"s"}"#);
    assert_eq!(sent(&mut s), vec![r#"40{"token":"good"}"#], "held");
    s.emit(event("music-control", json!(2)), None);
    assert!(sent(&mut s).is_empty(), "behind the held queue");
    s.emit_first(event("join-audio-session", json!({"sessionId": "S"})));
    s.release_queue();
    assert_eq!(
        sent(&mut s),
        vec![
            r#"42["join-audio-session",{"sessionId":"S"}]"#,
            r#"42["music-control",1]"#,
            r#"42["music-control",2]"#
        ]
    );
    s.emit(event("music-control", json!(3)), None);
    assert_eq!(sent(&mut s), vec![r#"42["music-control",3]"#]);
    // The next connection holds again.
    text(&mut s, t0, "1");
    s.emit(event("music-control", json!(4)), None);
    s.handle_timeout(t0 + ms(250));
    text(&mut s, t0 + ms(250), OPEN);
    text(&mut s, t0 + ms(250), r#"40{"sid":"s2"}"#);
    assert!(sent(&mut s).iter().all(|f| !f.contains("music-control")));
    s.release_queue();
    assert_eq!(sent(&mut s), vec![r#"42["music-control",4]"#]);
}

#[test]
fn a_failed_write_puts_the_event_back_in_front() {
    let t0 = Instant::now();
    let mut s = connected(t0);
    s.emit(event("a", json!(1)), Some(RequestId(1)));
    s.emit(event("b", json!(2)), None);
    let Some(Io::Send(t)) = s.poll_io() else {
        panic!()
    };
    assert_eq!(t.frame, r#"420["a",1]"#);
    s.handle_write_failed(t0, t, "broken pipe".into());
    assert_eq!(s.queued(), 2, "a and the unsent b");
    let st = states(&mut s);
    assert!(matches!(
        &st[0],
        LinkState::Disconnected { reason: DisconnectReason::TransportClosed(m) } if m == "broken pipe"
    ));
    assert_eq!(io(&mut s), vec![Did::Close { graceful: false }]);
    s.handle_timeout(t0 + ms(250));
    text(&mut s, t0, OPEN);
    text(&mut s, t0, r#"40{"sid":"s2"}"#);
    assert_eq!(
        sent(&mut s),
        vec![r#"40{"token":"good"}"#, r#"421["a",1]"#, r#"42["b",2]"#]
    );
    text(&mut s, t0, r#"431["ok"]"#);
    assert!(matches!(
        &events(&mut s)[..],
        [
            ..,
            SessionEvent::AckResult {
                request: RequestId(1),
                result: Ok(_)
            }
        ]
    ));
}

#[test]
fn close_says_goodbye_and_reports_what_was_queued() {
    let t0 = Instant::now();
    let mut s = connected_with(config().hold_queue(true), OPEN, t0);
    s.emit(event("never-sent", json!(1)), Some(RequestId(3)));
    s.close();
    assert_eq!(
        io(&mut s),
        vec![
            Did::Send("41".into()),
            Did::Send("1".into()),
            Did::Close { graceful: true }
        ]
    );
    let evs = events(&mut s);
    assert!(
        matches!(
            &evs[..],
            [
                SessionEvent::AckResult { request: RequestId(3), result: Err(LinkError::Closed) },
                SessionEvent::QueueOverflow { dropped },
                SessionEvent::State(LinkState::Closed)
            ] if dropped[0].name == "never-sent"
        ),
        "{evs:?}"
    );
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    s.emit(event("x", json!(1)), Some(RequestId(4)));
    assert!(matches!(
        &events(&mut s)[..],
        [SessionEvent::AckResult {
            result: Err(LinkError::Closed),
            ..
        }]
    ));
}

#[test]
fn a_device_key_goes_beside_the_token_in_connect() {
    let t0 = Instant::now();
    let key = "ab".repeat(32);
    let mut s = Session::new(config().device_key(key.clone()), 1, t0);
    assert_eq!(io(&mut s), vec![Did::Connect]);
    text(&mut s, t0, OPEN);
    let frames = sent(&mut s);
    assert_eq!(frames.len(), 1);
    let auth: Value = serde_json::from_str(frames[0].strip_prefix("40").unwrap()).unwrap();
    assert_eq!(auth, json!({"token": "good", "deviceKey": key}));
}

/// Connects `s` (its attempt already ordered) and drains what it said.
fn finish_handshake(s: &mut Session, now: Instant) -> Vec<LinkState> {
    text(s, now, OPEN);
    text(s, now, r#"40{"sid":"again"}"#);
    io(s);
    states(s)
}

fn on_server(states: &[LinkState]) -> Option<&str> {
    states.iter().find_map(|st| match st {
        LinkState::Connected { server, .. } => Some(server.as_str()),
        _ => None,
    })
}

#[test]
fn several_servers_sticky_first_then_round_robin() {
    let t0 = Instant::now();
    let cfg = config().fallbacks(["http://127.0.0.1:2", "http://127.0.0.1:3"]);
    let mut s = connected_with(cfg, OPEN, t0);
    assert_eq!(s.server_url(), "http://127.0.0.1:1");
    // The connection drops: the same server once more first (a tunnel, not a
    // dead process), after the backoff.
    s.handle_frame(t0 + ms(10), Frame::End);
    assert_eq!(s.server(), 0);
    let st = states(&mut s);
    assert!(
        st.contains(&LinkState::Reconnecting {
            attempt: 1,
            delay: ms(250)
        }),
        "{st:?}"
    );
    io(&mut s);
    s.handle_timeout(t0 + ms(260));
    assert_eq!(io(&mut s), vec![Did::Connect]);
    assert_eq!(s.server(), 0);
    // Refused at the door: the next server, after the grown backoff.
    s.handle_transport_error(t0 + ms(261), "Connection refused".into());
    assert_eq!(s.server(), 1);
    let st = states(&mut s);
    assert!(
        st.contains(&LinkState::Reconnecting {
            attempt: 2,
            delay: ms(500)
        }),
        "{st:?}"
    );
    io(&mut s);
    s.handle_timeout(t0 + ms(761));
    assert_eq!(io(&mut s), vec![Did::Connect]);
    // That one times out at the handshake: the third.
    s.handle_timeout(t0 + ms(761) + Duration::from_secs(10));
    assert_eq!(s.server(), 2);
    events(&mut s);
    io(&mut s);
    s.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(io(&mut s), vec![Did::Connect]);
    let st = finish_handshake(&mut s, t0 + Duration::from_secs(20));
    assert_eq!(on_server(&st), Some("http://127.0.0.1:3"), "{st:?}");
    // Lost again: sticky to the third, then round to the first.
    s.handle_frame(t0 + Duration::from_secs(21), Frame::End);
    assert_eq!(s.server(), 2);
    events(&mut s);
    io(&mut s);
    s.handle_timeout(t0 + Duration::from_secs(22));
    io(&mut s);
    s.handle_transport_error(t0 + Duration::from_secs(22), "Connection refused".into());
    assert_eq!(s.server(), 0);
}

#[test]
fn a_shutdown_notice_moves_to_the_next_server_at_once_keeping_the_queue() {
    let t0 = Instant::now();
    let cfg = config().hold_queue(true).fallbacks(["http://127.0.0.1:2"]);
    let mut s = connected_with(cfg, OPEN, t0);
    s.release_queue();
    // An acked emit in flight is failed (it may not have been acted on); a
    // later one waits for the next server.
    s.emit(event("ping-me", json!({})), Some(RequestId(7)));
    io(&mut s);
    text(
        &mut s,
        t0 + ms(5),
        r#"42["server-shutdown",{"reconnectAfterMs":3000}]"#,
    );
    let evs = events(&mut s);
    assert!(
        evs.iter().any(|e| matches!(
            e,
            SessionEvent::AckResult {
                request: RequestId(7),
                result: Err(LinkError::AckLost { .. })
            }
        )),
        "{evs:?}"
    );
    let st: Vec<_> = evs
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::State(st) => Some(st),
            _ => None,
        })
        .collect();
    assert_eq!(
        st,
        vec![
            LinkState::Disconnected {
                reason: DisconnectReason::ServerShutdown {
                    reconnect_after: ms(3000)
                }
            },
            LinkState::Connecting { attempt: 0 },
        ]
    );
    // No backoff: the next server's attempt is ordered now.
    assert_eq!(
        io(&mut s),
        vec![Did::Close { graceful: false }, Did::Connect]
    );
    assert_eq!(s.server_url(), "http://127.0.0.1:2");
    s.emit(event("music-add", json!({"n": 1})), None);
    assert_eq!(s.queued(), 1);
    let st = finish_handshake(&mut s, t0 + ms(6));
    assert_eq!(on_server(&st), Some("http://127.0.0.1:2"));
    s.release_queue();
    assert_eq!(sent(&mut s), vec![r#"42["music-add",{"n":1}]"#]);
}

#[test]
fn a_shutdown_notice_with_one_server_waits_what_it_asks_within_bounds() {
    let t0 = Instant::now();
    for (data, wait) in [
        (r#"{"reconnectAfterMs":3000}"#, ms(3000)),
        // The backoff's first delay when the notice asks less, or nothing usable.
        (r#"{"reconnectAfterMs":1}"#, ms(250)),
        (r#"{"reconnectAfterMs":"soon"}"#, ms(250)),
        ("null", ms(250)),
        (r#"{"reconnectAfterMs":-5}"#, ms(250)),
        // A hostile number is capped.
        (
            r#"{"reconnectAfterMs":1e300}"#,
            jamz_link::MAX_SHUTDOWN_WAIT,
        ),
    ] {
        let mut s = connected(t0);
        text(&mut s, t0, &format!(r#"42["server-shutdown",{data}]"#));
        let st = states(&mut s);
        assert_eq!(
            st.last(),
            Some(&LinkState::Reconnecting {
                attempt: 1,
                delay: wait
            }),
            "{data}: {st:?}"
        );
        assert_eq!(io(&mut s), vec![Did::Close { graceful: false }]);
        assert_eq!(s.poll_timeout(), Some(t0 + wait), "{data}");
        assert_eq!(s.server(), 0);
    }
}

//! Robustness of the sans-IO session against whatever the network sends: a
//! seeded generator feeds it recorded frames, mutated frames and noise, mixed
//! with time passing, emits, acks, write failures and token changes. It must
//! never panic, and afterwards a clean handshake must still connect it and an
//! emit must still go out.
//!
//! `JAMZ_TEST_SEED` replays a run; `JAMZ_FUZZ_CASES` sets the number of cases
//! (default 5000, well under a second in a debug build).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_proto::test_support::{fuzz_cases, test_seed};
use std::time::{Duration, Instant};

use jamz_link::session::{AckTicket, Frame, Io, RequestId, SessionEvent};
use jamz_link::{OutgoingEvent, ReconnectPolicy, Session, SocketConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

/// Frames as a Socket.IO 4 server sends them (and a few it should not).
const RECORDED: &[&str] = &[
    r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
    r#"0{"sid":"x","upgrades":["websocket"],"pingInterval":100,"pingTimeout":50}"#,
    r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
    r#"40/admin,{"sid":"a"}"#,
    r#"44{"message":"Authentication failed"}"#,
    r#"44"plain""#,
    "2",
    "2probe",
    "3",
    "1",
    "41",
    "5",
    "6",
    r#"42["music-play",{"sessionId":"S","position":1.5,"timestamp":1700000000000}]"#,
    r#"42["music-session-state",{"sessionId":"S","playlist":[{"title":"é\u001e","url":"u"}]}]"#,
    r#"427["question",{"q":1},2]"#,
    r#"430[{"t0":1.5,"t1":2,"t2":3}]"#,
    r#"431[]"#,
    r#"451-["bin",{"_placeholder":true,"num":0}]"#,
    r#"461-7["bin",{"_placeholder":true,"num":0}]"#,
    r#"42/admin,["bar"]"#,
    r#"4299999999999999999999["x"]"#,
    r#"42{"not":"an array"}"#,
];

const NOISE: &[char] = &[
    '0',
    '1',
    '2',
    '3',
    '4',
    '5',
    '6',
    '7',
    '9',
    '[',
    ']',
    '{',
    '}',
    '"',
    ',',
    '/',
    '-',
    ':',
    'a',
    ' ',
    '\\',
    '\u{0}',
    'é',
    '\u{1e}',
    '\u{10ffff}',
];

fn mutate(rng: &mut StdRng, frame: &str) -> String {
    let mut chars: Vec<char> = frame.chars().collect();
    for _ in 0..rng.random_range(0..4) {
        let len = chars.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                chars[i] = NOISE[rng.random_range(0..NOISE.len())];
            }
            1 => {
                let i = rng.random_range(0..=len);
                chars.insert(i, NOISE[rng.random_range(0..NOISE.len())]);
            }
            2 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len);
                chars.drain(i..j);
            }
            3 => chars.truncate(rng.random_range(0..=len)),
            4 if len > 0 => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(i..=len);
                let part: Vec<char> = chars[i..j].to_vec();
                chars.splice(i..i, part);
            }
            _ => {
                let i = rng.random_range(0..=len);
                for c in "18446744073709551616".chars().rev() {
                    chars.insert(i, c);
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn frame(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0 => {
            let n = rng.random_range(0..20);
            (0..n)
                .map(|_| NOISE[rng.random_range(0..NOISE.len())])
                .collect()
        }
        1..=4 => RECORDED[rng.random_range(0..RECORDED.len())].to_owned(),
        _ => {
            let base = RECORDED[rng.random_range(0..RECORDED.len())];
            mutate(rng, base)
        }
    }
}

/// Carries out the session's orders; sometimes a write fails. Returns the
/// frames written.
fn drain(
    rng: &mut StdRng,
    s: &mut Session,
    now: Instant,
    tickets: &mut Vec<AckTicket>,
) -> Vec<String> {
    let mut written = Vec::new();
    for _ in 0..10_000 {
        let Some(io) = s.poll_io() else {
            break;
        };
        if let Io::Send(t) = io {
            if rng.random_ratio(1, 50) {
                s.handle_write_failed(now, t, "broken pipe".into());
            } else {
                written.push(t.frame);
            }
        }
    }
    while let Some(ev) = s.poll_event() {
        if let SessionEvent::Message { ack: Some(t), .. } = ev {
            tickets.push(t);
        }
    }
    written
}

/// Carries out every order without failures; the frames written.
fn flush(s: &mut Session) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(io) = s.poll_io() {
        if let Io::Send(t) = io {
            out.push(t.frame);
        }
    }
    while s.poll_event().is_some() {}
    out
}

fn event(name: &str, n: u64) -> OutgoingEvent {
    OutgoingEvent {
        name: name.into(),
        args: vec![json!(n)],
    }
}

/// Returns whether the case was connected after one of its random steps.
fn one_case(rng: &mut StdRng) -> bool {
    let t0 = Instant::now();
    let mut now = t0;
    let cfg = SocketConfig::new("http://127.0.0.1:1")
        .token("t")
        .queue_capacity(rng.random_range(0..8))
        .hold_queue(rng.random_bool(0.5))
        .latest_only(["location-update"])
        .reconnect(ReconnectPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            ..ReconnectPolicy::default()
        });
    let capacity = cfg.queue_capacity;
    let mut s = Session::new(cfg, rng.random(), now);
    let mut tickets = Vec::new();
    let mut request = 0;
    let mut was_connected = false;
    // Most cases start connected, so that the connected parser sees the noise too.
    if rng.random_bool(0.7) {
        s.handle_frame(now, Frame::Text(RECORDED[0]));
        s.handle_frame(now, Frame::Text(r#"40{"sid":"first"}"#));
        assert!(s.is_connected());
        s.release_queue();
        flush(&mut s);
    }
    for _ in 0..rng.random_range(1..40) {
        now += Duration::from_millis(rng.random_range(0..120));
        match rng.random_range(0..20) {
            0..=9 => {
                let f = frame(rng);
                s.handle_frame(now, Frame::Text(&f));
            }
            10 => s.handle_frame(now, Frame::Binary),
            11 => s.handle_frame(
                now,
                *[Frame::Control, Frame::End, Frame::Close("1000")]
                    .get(rng.random_range(0..3))
                    .unwrap(),
            ),
            12 => {
                if let Some(t) = s.poll_timeout() {
                    now = now.max(t);
                }
                s.handle_timeout(now);
            }
            13 => s.handle_transport_error(now, "reset".into()),
            14 => {
                request += 1;
                let r = rng.random_bool(0.3).then_some(RequestId(request));
                let name = if rng.random_bool(0.5) {
                    "location-update"
                } else {
                    "e"
                };
                s.emit(event(name, request), r);
            }
            15 => s.emit_first(event("join-audio-session", 0)),
            16 => s.release_queue(),
            17 => {
                if let Some(t) = tickets.get(rng.random_range(0..=tickets.len())) {
                    s.ack(*t, vec![json!("ok")]);
                } else {
                    s.ack(
                        AckTicket {
                            id: rng.random(),
                            generation: rng.random_range(0..3),
                        },
                        vec![],
                    );
                }
            }
            18 => s.set_token(now, Some("fresh".into())),
            _ => s.forget_request(RequestId(rng.random_range(0..=request))),
        }
        drain(rng, &mut s, now, &mut tickets);
        was_connected |= s.is_connected();
        assert!(!s.is_closed(), "the default policy never gives up");
        if !s.is_connected() {
            // Offline, the queue keeps its bound (requeued sends aside, which
            // only happen on a lost connection with writes in flight).
            assert!(s.queued() <= capacity + 64, "{} queued", s.queued());
        }
    }

    // Still usable: a clean handshake connects, and an emit goes out.
    s.handle_transport_error(now, "reset".into());
    s.set_token(now, Some("t".into()));
    flush(&mut s);
    s.handle_frame(now, Frame::Text(RECORDED[0]));
    s.handle_frame(now, Frame::Text(r#"40{"sid":"again"}"#));
    assert!(s.is_connected(), "a clean handshake connects");
    s.release_queue();
    flush(&mut s);
    s.emit(event("probe", 1), None);
    assert_eq!(flush(&mut s), vec![r#"42["probe",1]"#]);
    was_connected
}

#[test]
fn arbitrary_and_mutated_frames_never_panic_and_the_session_recovers() {
    let seed = test_seed("session fuzz");
    let n = fuzz_cases(5000) as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut connected = 0;
    for case in 0..n {
        let case_seed: u64 = rng.random();
        let mut case_rng = StdRng::seed_from_u64(case_seed);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one_case(&mut case_rng)));
        match r {
            Ok(c) => connected += usize::from(c),
            Err(e) => panic!("case {case} failed (seed {seed}, case seed {case_seed}): {e:?}"),
        }
    }
    println!("{n} cases, {connected} of them were connected after a random step (seed {seed})");
    if n >= 1000 {
        // Otherwise the generator only ever tests the handshake.
        assert!(connected > 0, "no case connected (seed {seed})");
    }
}

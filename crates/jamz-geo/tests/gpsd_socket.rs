//! The gpsd source against a scripted daemon on a real socket: the WATCH it sends, fixes,
//! bad and fix-less reports counted, the daemon going away and coming back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use jamz_geo::fix::format_utc_ms;
use jamz_geo::{GpsdSource, LocationSource, SkipReason, SourceEvent, SourceStatus};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn tpv(f: &jamz_geo::Fix) -> String {
    format!(
        r#"{{"class":"TPV","device":"/dev/ttyUSB0","mode":3,"time":"{}","lat":{:.9},"lon":{:.9},"speed":{},"track":{},"eph":4.5}}"#,
        format_utc_ms(f.timestamp),
        f.latitude,
        f.longitude,
        f.speed.unwrap_or(0.0),
        f.heading.unwrap_or(0.0)
    ) + "\n"
}

/// Serves one connection: checks the WATCH, then writes `lines` and closes.
async fn serve(listener: &TcpListener, lines: Vec<String>) {
    let (sock, _) = listener.accept().await.unwrap();
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"{\"class\":\"VERSION\",\"release\":\"3.22\",\"proto_major\":3}\n")
        .await
        .unwrap();
    let mut watch = String::new();
    r.read_line(&mut watch).await.unwrap();
    assert_eq!(watch, jamz_geo::gpsd::WATCH);
    for l in lines {
        w.write_all(l.as_bytes()).await.unwrap();
    }
}

async fn next(source: &mut GpsdSource) -> SourceEvent {
    timeout(WAIT, source.next_event())
        .await
        .expect("the source said nothing")
        .unwrap()
}

#[tokio::test]
async fn reports_fixes_skips_bad_reports_and_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let drive = city_drive();
    let first: Vec<String> = vec![
        tpv(&drive[0]),
        "{\"class\":\"SKY\",\"satellites\":[]}\n".into(),
        "{\"class\":\"TPV\",\"mode\":1}\n".into(),
        "not json at all\n".into(),
        format!("{}\n", "x".repeat(100_000)),
        tpv(&drive[1]),
    ];
    let second = vec![tpv(&drive[5]), tpv(&drive[6])];
    let server = tokio::spawn(async move {
        serve(&listener, first).await;
        serve(&listener, second).await;
    });
    let mut source = GpsdSource::new("127.0.0.1", port)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let mut events = Vec::new();
    let mut connects = 0;
    let mut fixes = Vec::new();
    while fixes.len() < 4 {
        let ev = next(&mut source).await;
        match &ev {
            SourceEvent::Status(SourceStatus::Connected { .. }) => connects += 1,
            SourceEvent::Fix(f) => fixes.push(*f),
            _ => {}
        }
        events.push(ev);
    }
    assert_eq!(connects, 2, "{events:?}");
    let want = [drive[0], drive[1], drive[5], drive[6]];
    for (g, w) in fixes.iter().zip(&want) {
        assert!(same_fix(g, w), "{g:?} != {w:?}");
        assert_eq!(g.accuracy, Some(4.5));
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SourceEvent::Status(SourceStatus::Disconnected { .. })))
    );
    let c = source.counts();
    assert_eq!(c.get(SkipReason::NoFix), 1, "{c:?}");
    assert_eq!(c.get(SkipReason::BadReport), 2, "{c:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn retries_with_capped_backoff_until_gpsd_starts() {
    // A port nobody listens on (bound, then freed).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut source = GpsdSource::new("127.0.0.1", port)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20));
    let mut waits = Vec::new();
    while waits.len() < 4 {
        match next(&mut source).await {
            SourceEvent::Status(SourceStatus::Disconnected { retry_in, .. }) => {
                waits.push(retry_in.as_millis())
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits, [5, 10, 20, 20]);
    let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await else {
        println!("port {port} was taken meanwhile: the reconnection half is skipped");
        return;
    };
    let drive = city_drive();
    let server = tokio::spawn(async move { serve(&listener, vec![tpv(&drive[0])]).await });
    loop {
        match next(&mut source).await {
            SourceEvent::Status(SourceStatus::Connected { .. }) => break,
            SourceEvent::Status(SourceStatus::Disconnected { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(next(&mut source).await, SourceEvent::Fix(_)));
    server.await.unwrap();
}

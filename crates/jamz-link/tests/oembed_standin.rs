//! The oEmbed client against a local stand-in of YouTube's endpoint (a real HTTP server on
//! loopback, written by hand): a title and channel, each verdict on a video (missing,
//! not embeddable), a broken answer, a server that is not there. Nothing reaches the
//! public internet: the origin is the client's setting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jamz_link::{OEmbedClient, OEmbedError};
use jamz_proto::youtube::parse_video_ref;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers each request by the video id in its `url` parameter; records the request lines.
async fn stand_in() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let line = head.lines().next().unwrap_or_default().to_owned();
                let _ = seen.send(line.clone());
                let (status, body) = if line.contains("okvideo0001") {
                    (
                        "200 OK",
                        r#"{"title":"Stand-in song","author_name":"Stand-in channel","type":"video"}"#,
                    )
                } else if line.contains("noembed0001") {
                    ("401 Unauthorized", "Unauthorized")
                } else if line.contains("garbage0001") {
                    ("200 OK", "<html>not json</html>")
                } else if line.contains("busy0000001") {
                    ("500 Internal Server Error", "")
                } else {
                    ("404 Not Found", "Not Found")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    (origin, requests)
}

#[tokio::test]
async fn titles_and_verdicts_come_from_the_configured_origin() {
    let (origin, mut requests) = stand_in().await;
    let client = OEmbedClient::new(&origin).unwrap();
    let id = |s: &str| parse_video_ref(s).unwrap();

    let ok = client.video(&id("okvideo0001")).await.unwrap();
    assert_eq!(ok.title, "Stand-in song");
    assert_eq!(ok.author_name.as_deref(), Some("Stand-in channel"));
    let line = requests.recv().await.unwrap();
    assert!(
        line.starts_with(
            "GET /oembed?url=https%3A%2F%2Fwww.youtube.com%2Fwatch%3Fv%3Dokvideo0001&format=json "
        ),
        "{line}"
    );

    let missing = client.video(&id("gone0000001")).await.unwrap_err();
    assert!(matches!(missing, OEmbedError::Unavailable(_)), "{missing}");
    assert!(missing.is_about_the_video());
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    let private = client.video(&id("noembed0001")).await.unwrap_err();
    assert!(
        matches!(private, OEmbedError::NotEmbeddable(_)),
        "{private}"
    );
    assert!(private.is_about_the_video());

    let garbage = client.video(&id("garbage0001")).await.unwrap_err();
    assert!(
        matches!(garbage, OEmbedError::Malformed { .. }),
        "{garbage}"
    );
    assert!(!garbage.is_about_the_video());

    let busy = client.video(&id("busy0000001")).await.unwrap_err();
    assert!(
        matches!(busy, OEmbedError::Refused { status: 500, .. }),
        "{busy}"
    );

    // An origin with a path prefix keeps it (the requests above are done with).
    while requests.try_recv().is_ok() {}
    let prefixed = OEmbedClient::new(&format!("{origin}/yt")).unwrap();
    let _ = prefixed.video(&id("okvideo0001")).await;
    let line = requests.recv().await.unwrap();
    assert!(line.starts_with("GET /yt/oembed?"), "{line}");
}

#[tokio::test]
async fn no_server_is_not_a_verdict_on_the_video() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = OEmbedClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = client
        .video(&parse_video_ref("dQw4w9WgXcQ").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, OEmbedError::Unreachable(_)), "{err}");
    assert!(!err.is_about_the_video());
    assert!(matches!(
        OEmbedClient::new("ftp://example.com"),
        Err(OEmbedError::Origin { .. })
    ));
    assert!(matches!(
        OEmbedClient::new("not a url"),
        Err(OEmbedError::Origin { .. })
    ));
}

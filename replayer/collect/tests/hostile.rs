//! Hostile and malformed requests against a running collector: each is refused with the
//! right status, the server keeps serving, and nothing is written (no archive at the
//! destination or in the spool, no staged upload).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_missing_foreign_expired_or_ungranted_get_401() {
    let c = TestCollector::start(Limits::default()).await;
    let body = recording_body(&header("AJ_auth", ""), None, None);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("another secret", Some(token("another-secret", 3600, true))),
        ("expired", Some(token(SECRET, -3600, true))),
        ("no observability grant", Some(token(SECRET, 3600, false))),
        ("not a JWT", Some("not.a.jwt".into())),
    ];
    for (what, tok) in cases {
        for path in [TRACES, LOGS, METRICS, RECORDINGS] {
            let auth = tok.as_ref().map(|t| format!("Bearer {t}"));
            let ct = if path == RECORDINGS {
                MULTIPART
            } else {
                PROTOBUF
            };
            let (status, text) = c.post(path, auth.as_deref(), ct, &[], &body).await;
            assert_eq!(status, 401, "{what} on {path}: {text}");
            assert!(text.contains("unauthorized"), "{what}: {text}");
        }
    }
    c.assert_healthy_and_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2_gib_recording_is_refused_while_it_streams() {
    let c = TestCollector::start(Limits::default()).await;
    let status = c.stream_declared(RECORDINGS, 2 << 30).await;
    assert_eq!(status, 413);
    c.assert_healthy_and_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_refused() {
    let c = TestCollector::start(Limits {
        recording_body: 1 << 20,
        otlp_body: 64 << 10,
        ..Limits::default()
    })
    .await;
    // an Ogg part that never ends: 4 MiB, no Content-Length
    let mut body = part_head("header", "header.binpb", "application/protobuf");
    body.extend(header("AJ_big", ""));
    body.extend(b"\r\n");
    body.extend(part_head("audio", "recording.ogg", "audio/ogg"));
    body.extend(b"OggS");
    body.extend(vec![0u8; 4 << 20]);
    let status = c.post_chunked(RECORDINGS, MULTIPART, &body).await;
    assert_eq!(status, 413);
    let status = c
        .post_chunked(TRACES, PROTOBUF, &vec![0u8; 256 << 10])
        .await;
    assert_eq!(status, 413);
    c.assert_healthy_and_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_400_with_a_reason() {
    let c = TestCollector::start(Limits::default()).await;
    let auth = format!("Bearer {}", token(SECRET, 3600, true));
    let noise = noise(64 << 10);
    for path in [TRACES, LOGS, METRICS] {
        let (status, text) = c.post(path, Some(&auth), PROTOBUF, &[], &noise).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("protobuf"), "{text}");
        let (status, text) = c
            .post(
                path,
                Some(&auth),
                PROTOBUF,
                &[("Content-Encoding", "gzip")],
                &noise,
            )
            .await;
        assert_eq!(status, 400, "{path} gzip: {text}");
        let (status, _) = c
            .post(path, Some(&auth), "application/json", &[], b"{}")
            .await;
        assert_eq!(status, 415, "{path} json");
    }
    // truncated multipart: the closing boundary never comes
    let full = recording_body(&header("AJ_cut", ""), Some(b"{\"items\": []}"), None);
    let (status, text) = c
        .post(
            RECORDINGS,
            Some(&auth),
            MULTIPART,
            &[],
            &full[..full.len() - 30],
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("multipart"), "{text}");
    // random bytes as the header protobuf
    let (status, text) = c
        .post(
            RECORDINGS,
            Some(&auth),
            MULTIPART,
            &[],
            &recording_body(&noise[..512], None, None),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    // a chat history that is not JSON
    let (status, text) = c
        .post(
            RECORDINGS,
            Some(&auth),
            MULTIPART,
            &[],
            &recording_body(&header("AJ_chat", ""), Some(b"{not json"), None),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("chat_history"), "{text}");
    // audio that is not Ogg Opus
    let (status, text) = c
        .post(
            RECORDINGS,
            Some(&auth),
            MULTIPART,
            &[],
            &recording_body(&header("AJ_ogg", ""), None, Some(&noise[..4096])),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Ogg"), "{text}");
    // no multipart at all
    let (status, _) = c.post(RECORDINGS, Some(&auth), PROTOBUF, &[], &noise).await;
    assert_eq!(status, 400);
    c.assert_healthy_and_empty().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ids_that_could_name_a_path_are_refused() {
    let c = TestCollector::start(Limits::default()).await;
    let auth = format!("Bearer {}", token(SECRET, 3600, true));
    for bad in ["../../etc/evil", "..", "a/b", "AJ_\0x", &"x".repeat(200)] {
        let (status, text) = c
            .post(
                RECORDINGS,
                Some(&auth),
                MULTIPART,
                &[],
                &recording_body(&header(bad, ""), None, None),
            )
            .await;
        assert_eq!(status, 400, "{bad:?}: {text}");
        assert!(text.contains("cannot name a session"), "{text}");
        let (status, text) = c
            .post(TRACES, Some(&auth), PROTOBUF, &[], &traces_for(bad))
            .await;
        assert_eq!(status, 400, "{bad:?}: {text}");
    }
    c.assert_healthy_and_empty().await;
    assert!(!c.spool.path().join("etc").exists());
    assert!(!std::path::Path::new("/etc/evil").exists());
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_upload_leaves_nothing_behind() {
    use tokio::io::AsyncWriteExt;
    let c = TestCollector::start(Limits::default()).await;
    let mut body = part_head("header", "header.binpb", "application/protobuf");
    body.extend(header("AJ_gone", ""));
    body.extend(b"\r\n");
    body.extend(part_head("audio", "recording.ogg", "audio/ogg"));
    body.extend(vec![7u8; 256 << 10]);
    let head = format!(
        "POST {RECORDINGS} HTTP/1.1\r\nHost: {}\r\nContent-Type: {MULTIPART}\r\nContent-Length: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        c.addr,
        body.len() + (1 << 20),
        token(SECRET, 3600, true)
    );
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    // the upload is being staged...
    let mut staged = false;
    for _ in 0..600 {
        if files_under(c.spool.path())
            .iter()
            .any(|f| f.ends_with("header.binpb"))
        {
            staged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(staged, "the server never started staging the upload");
    drop(s);
    // ...and once the client is gone, the partial upload is removed
    for _ in 0..600 {
        if files_under(c.spool.path()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.assert_healthy_and_empty().await;
}

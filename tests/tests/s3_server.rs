//! Tests for `calltape_tests::s3_server::TestS3`, plus an optional round trip
//! against a moto server when `CALLTAPE_MOTO_ENDPOINT` is set (see `.ci/run`).

use std::io::{Read, Write};
use std::time::Duration;

use calltape_tests::s3_server::TestS3;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};

const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn no_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 0,
        retry_timeout: Duration::from_secs(5),
    }
}

/// True if some error in the `source()` chain is an I/O "connection refused",
/// or (fallback) if the rendered chain says so.
fn is_connection_refused(err: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut rendered = String::new();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        rendered.push_str(&format!("{e} / {e:?}\n"));
        cur = e.source();
    }
    let lower = rendered.to_lowercase();
    lower.contains("connection refused") || lower.contains("connectionrefused")
}

async fn put_get_range_list(store: &AmazonS3) {
    let small = pattern(1000, 1);
    let loc = Path::from("calls/2024/call-1/audio.bin");
    let put = store
        .put(&loc, PutPayload::from(small.clone()))
        .await
        .expect("put");
    assert!(put.e_tag.is_some(), "put returns an ETag");

    let got = store.get(&loc).await.expect("get");
    assert_eq!(got.meta.size, small.len() as u64);
    assert_eq!(&got.bytes().await.expect("body")[..], &small[..]);

    let range = store.get_range(&loc, 100..250).await.expect("range get");
    assert_eq!(&range[..], &small[100..250]);

    let head = store.head(&loc).await.expect("head");
    assert_eq!(head.size, small.len() as u64);

    store
        .put(
            &Path::from("calls/2024/call-2/meta.json"),
            b"{}".to_vec().into(),
        )
        .await
        .expect("put 2");
    store
        .put(&Path::from("other/x"), b"x".to_vec().into())
        .await
        .expect("put 3");

    let mut listed: Vec<String> = store
        .list(Some(&Path::from("calls")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(
        listed,
        vec![
            "calls/2024/call-1/audio.bin".to_owned(),
            "calls/2024/call-2/meta.json".to_owned()
        ]
    );

    let delim = store
        .list_with_delimiter(Some(&Path::from("calls/2024")))
        .await
        .expect("list with delimiter");
    let mut prefixes: Vec<String> = delim
        .common_prefixes
        .iter()
        .map(|p| p.to_string())
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, vec!["calls/2024/call-1", "calls/2024/call-2"]);
    assert!(delim.objects.is_empty());

    let missing = store.get(&Path::from("nope")).await.unwrap_err();
    assert!(
        matches!(missing, object_store::Error::NotFound { .. }),
        "{missing:?}"
    );
}

async fn multipart(store: &AmazonS3) {
    // Raw parts: S3 (and moto) require every part but the last to be >= 5 MiB.
    let a = pattern(5 * MIB, 7);
    let b = pattern(1234, 9);
    let loc = Path::from("mp/raw.bin");
    let mut up = store.put_multipart(&loc).await.expect("create multipart");
    up.put_part(a.clone().into()).await.expect("part 1");
    up.put_part(b.clone().into()).await.expect("part 2");
    up.complete().await.expect("complete");
    let got = store.get(&loc).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), a.len() + b.len());
    assert!(got[..a.len()] == a[..] && got[a.len()..] == b[..]);

    // WriteMultipart (what a streaming writer would use).
    let data = pattern(11 * MIB + 17, 3);
    let loc = Path::from("mp/writer.bin");
    let mut w = WriteMultipart::new(store.put_multipart(&loc).await.unwrap());
    for chunk in data.chunks(300 * 1024) {
        w.write(chunk);
    }
    w.finish().await.expect("finish");
    let got = store.get(&loc).await.unwrap().bytes().await.unwrap();
    assert!(got[..] == data[..], "multipart writer round trip");
    let tail = store
        .get_range(&loc, (data.len() - 100) as u64..data.len() as u64)
        .await
        .unwrap();
    assert_eq!(&tail[..], &data[data.len() - 100..]);
}

#[tokio::test]
async fn put_get_range_list_and_multipart() {
    let s3 = TestS3::start().await;
    assert!(s3.endpoint().starts_with("http://127.0.0.1:"));
    assert_eq!(s3.endpoint(), format!("http://{}", s3.addr()));
    s3.create_bucket("calltape");
    let store = s3.store("calltape");
    put_get_range_list(&store).await;
    multipart(&store).await;
    // Objects are plain files under root/bucket.
    assert_eq!(
        std::fs::read(s3.root().join("calltape/other/x")).unwrap(),
        b"x"
    );
}

#[tokio::test]
async fn wrong_credentials_are_rejected() {
    let s3 = TestS3::start().await;
    s3.create_bucket("authb");
    let store = s3
        .store_builder("authb")
        .with_secret_access_key("wrong")
        .with_retry(no_retry())
        .build()
        .unwrap();
    let err = store
        .put(&Path::from("k"), b"v".to_vec().into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ),
        "expected an auth error: {err:?}"
    );
}

#[tokio::test]
async fn env_works_with_from_env_style_config() {
    let s3 = TestS3::start().await;
    s3.create_bucket("envb");
    let env = s3.env();
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "AWS_ENDPOINT_URL",
            "AWS_ALLOW_HTTP",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION"
        ]
    );
    // Same parsing as AmazonS3Builder::from_env(), without touching the
    // process environment (tests run in parallel).
    let mut b = AmazonS3Builder::new().with_bucket_name("envb");
    for (k, v) in &env {
        b = b.with_config(k.to_ascii_lowercase().parse().unwrap(), v);
    }
    let store = b.build().unwrap();
    store
        .put(&Path::from("k"), b"v".to_vec().into())
        .await
        .unwrap();
    let got = store.get(&Path::from("k")).await.unwrap().bytes().await;
    assert_eq!(&got.unwrap()[..], b"v");
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_keeps_objects() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calltape");
    let store = s3
        .store_builder("calltape")
        .with_retry(no_retry())
        .build()
        .unwrap();
    let loc = Path::from("calls/keep.bin");
    let data = pattern(4096, 5);
    store.put(&loc, data.clone().into()).await.unwrap();
    let addr = s3.addr();
    let root = s3.root().to_path_buf();

    // Stop: the pooled keep-alive connection is closed by the server and the
    // listener is gone, so new requests fail to connect.
    let stopped = s3.stop().await;
    assert_eq!(stopped.addr(), addr);
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "nothing listens after stop"
    );
    let err = store.get(&loc).await.unwrap_err();
    assert!(
        is_connection_refused(&err),
        "expected connection refused: {err:?}"
    );
    let err = store
        .put(&Path::from("x"), b"x".to_vec().into())
        .await
        .unwrap_err();
    assert!(
        is_connection_refused(&err),
        "expected connection refused: {err:?}"
    );
    assert!(root.join("calltape/calls/keep.bin").is_file(), "data kept");

    // Restart on the same addr + root; the same client works again.
    let s3 = stopped.restart().await.expect("restart");
    assert_eq!(s3.addr(), addr);
    let got = store.get(&loc).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], &data[..]);

    // And once more through start_at, keeping the temp dir alive ourselves.
    let mut stopped = s3.stop().await;
    let _tempdir = stopped.take_tempdir();
    let s3 = TestS3::start_at(addr, &root).await.expect("start_at");
    assert_eq!(s3.addr(), addr);
    let got = store.get(&loc).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], &data[..]);
    s3.stop().await;
}

#[tokio::test]
async fn stop_aborts_in_flight_connections() {
    // A client that connected but has not finished its request must not keep
    // the server alive.
    let s3 = TestS3::start().await;
    let addr = s3.addr();
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    half.write_all(b"GET /b/k HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), s3.stop())
        .await
        .expect("stop does not wait for in-flight requests");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), half.read(&mut buf))
        .await
        .expect("server side closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "connection closed without a response");
}

#[tokio::test]
async fn start_at_reports_bind_errors() {
    let s3 = TestS3::start().await;
    let err = TestS3::start_at(s3.addr(), s3.root()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    let missing = s3.root().join("does-not-exist");
    let addr = "127.0.0.1:0".parse().unwrap();
    assert!(TestS3::start_at(addr, &missing).await.is_err());
}

#[tokio::test]
#[should_panic(expected = "invalid S3 bucket name")]
async fn create_bucket_rejects_invalid_names() {
    TestS3::start().await.create_bucket("b");
}

#[test]
fn usable_from_a_blocked_current_thread_runtime() {
    // The server has its own thread, so blocking the caller's runtime (e.g. on
    // a child process) does not stall it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s3 = rt.block_on(TestS3::start());
    s3.create_bucket("blocked");
    let addr = s3.addr();
    let bucket_put = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /blocked HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .join()
    .unwrap();
    // Unsigned request: s3s answers (with an auth error), it does not hang.
    assert!(bucket_put.starts_with("HTTP/1.1 "), "{bucket_put}");
    rt.block_on(s3.stop());
}

// ---------------------------------------------------------------------------
// moto (only when CALLTAPE_MOTO_ENDPOINT is set, e.g. by .ci/run)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn moto_round_trip() {
    let Some(endpoint) = calltape_tests::moto::endpoint("moto_round_trip") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("calltape-test-{}-{nanos}", std::process::id());
    calltape_tests::moto::create_bucket(&endpoint, &bucket);

    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    let store = AmazonS3Builder::new()
        .with_endpoint(endpoint.trim_end_matches('/'))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id(var("AWS_ACCESS_KEY_ID", "testing"))
        .with_secret_access_key(var("AWS_SECRET_ACCESS_KEY", "testing"))
        .with_region(var("AWS_REGION", "us-east-1"))
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    put_get_range_list(&store).await;
    multipart(&store).await;
}

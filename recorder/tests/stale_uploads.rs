//! Stale multipart uploads of this recorder (under its prefix, archive keys) are aborted: at
//! start those older than the upload deadline, after an upload every other one of its key;
//! other keys are left alone. Against moto (which reports every upload as initiated in 2010,
//! so the age limit itself is not exercised here).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use calltape_recorder::Recorder;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

/// The keys of the bucket's incomplete multipart uploads, by moto's own listing.
fn incomplete_uploads(endpoint: &str, bucket: &str) -> Vec<String> {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to moto");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /{bucket}?uploads HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    resp.split("<Key>")
        .skip(1)
        .map(|k| k.split("</Key>").next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_archive_uploads_under_the_prefix_are_aborted_at_start() {
    let Some(endpoint) = calltape_tests::moto::endpoint(
        "stale_archive_uploads_under_the_prefix_are_aborted_at_start",
    ) else {
        return;
    };
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let bucket = format!("calltape-stale-{}", std::process::id());
    calltape_tests::moto::create_bucket(&endpoint, &bucket);
    // credentials and region from the environment (AWS_ACCESS_KEY_ID=testing, …)
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .build()
        .unwrap();
    // uploads left behind: two of this recorder's archives, one outside its prefix, one not
    // an archive
    let keys = [
        "calls/2026/11/21/call-a.calltape",
        "calls/2026/11/21/call-b.calltape",
        "elsewhere/call-c.calltape",
        "calls/notes.txt",
    ];
    for key in keys {
        let mut up = store.put_multipart(&Path::from(key)).await.unwrap();
        up.put_part(PutPayload::from(vec![7u8; 1024]))
            .await
            .unwrap();
        drop(up); // neither completed nor aborted
    }
    let mut left = incomplete_uploads(&endpoint, &bucket);
    left.sort();
    assert_eq!(left.len(), 4, "{left:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // older than the deadline below

    let spool = tempfile::tempdir().unwrap();
    let rec = Recorder::builder()
        .destination(format!("s3://{bucket}/calls"))
        .store_option("aws_endpoint", &endpoint)
        .store_option("aws_allow_http", "true")
        .spool_dir(spool.path())
        .retry_interval(None)
        .upload_deadline(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    // the sweep runs in the background: wait (bounded) for it to finish
    for _ in 0..100 {
        if incomplete_uploads(&endpoint, &bucket).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut left = incomplete_uploads(&endpoint, &bucket);
    left.sort();
    assert_eq!(
        left,
        ["calls/notes.txt", "elsewhere/call-c.calltape"],
        "health: {:?}",
        rec.health()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earlier_incomplete_uploads_of_a_key_are_aborted_once_it_is_uploaded() {
    let Some(endpoint) = calltape_tests::moto::endpoint(
        "earlier_incomplete_uploads_of_a_key_are_aborted_once_it_is_uploaded",
    ) else {
        return;
    };
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let bucket = format!("calltape-stale-key-{}", std::process::id());
    calltape_tests::moto::create_bucket(&endpoint, &bucket);
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .build()
        .unwrap();
    // moto reports every upload as initiated in 2010, so the start sweep would abort any
    // upload under the prefix: let it run (and finish, seen by a canary) before the uploads
    // this test is about exist, so only the after-upload sweep can abort them
    let up = store
        .put_multipart(&Path::from("calls/canary.calltape"))
        .await
        .unwrap();
    drop(up);
    let spool = tempfile::tempdir().unwrap();
    let rec = Recorder::builder()
        .destination(format!("s3://{bucket}/calls"))
        .store_option("aws_endpoint", &endpoint)
        .store_option("aws_allow_http", "true")
        .spool_dir(spool.path())
        .retry_interval(None)
        .multipart_threshold(5 << 20)
        .build()
        .await
        .unwrap();
    for _ in 0..100 {
        if incomplete_uploads(&endpoint, &bucket).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(incomplete_uploads(&endpoint, &bucket).is_empty());
    // two earlier attempts at the same key (their aborts were lost), one live upload of another
    let key = "calls/2026/11/21/call-big.calltape";
    for k in [key, key, "calls/2026/11/21/call-other.calltape"] {
        let mut up = store.put_multipart(&Path::from(k)).await.unwrap();
        up.put_part(PutPayload::from(vec![7u8; 1024]))
            .await
            .unwrap();
        drop(up);
    }
    let s = rec.start_session(common::call_info("call-big")).unwrap();
    // an archive above the 5 MiB multipart threshold: an incompressible attribute
    let mut x = 0x2545_F491u32;
    let noise: String = (0..9 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    let mut attrs = calltape_recorder::Attributes::new();
    attrs.insert("blob".into(), noise.into());
    s.at(0).event("big", attrs);
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    assert!(report.upload.bytes >= 5 << 20, "multipart: {report:?}");
    assert_eq!(report.upload.key, key);
    assert_eq!(
        incomplete_uploads(&endpoint, &bucket),
        ["calls/2026/11/21/call-other.calltape"]
    );
}

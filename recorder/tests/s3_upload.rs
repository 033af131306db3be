//! Upload to a real (in-process) S3 server, with the server going away and coming back, and
//! to moto when CALLTAPE_MOTO_ENDPOINT is set.

mod common;

use std::time::Duration;

use calltape_recorder::{Recorder, RetryPolicy, UploadOutcome};
use calltape_tests::s3_server::{TestS3, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use common::*;
use object_store::path::Path;
use object_store::ObjectStoreExt;

fn s3_recorder(
    endpoint: &str,
    bucket: &str,
    spool: &std::path::Path,
) -> calltape_recorder::RecorderBuilder {
    Recorder::builder()
        .destination(format!("s3://{bucket}/calls"))
        .store_option("aws_endpoint", endpoint)
        .store_option("aws_allow_http", "true")
        .store_option("aws_access_key_id", ACCESS_KEY_ID)
        .store_option("aws_secret_access_key", SECRET_ACCESS_KEY)
        .store_option("aws_region", REGION)
        .spool_dir(spool)
        .retry_interval(None)
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        multiplier: 2.0,
    }
}

fn spool_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_call_lands_at_dated_key_and_reads_back_sample_exact() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let spool = tempfile::tempdir().unwrap();
    let rec = s3_recorder(&s3.endpoint(), "calls", spool.path())
        .build()
        .await
        .unwrap();
    let session = rec.start_session(call_info("call-s3-1")).unwrap();
    script(&session);
    let report = session.finish().await.unwrap();
    assert_eq!(report.upload.outcome, UploadOutcome::Uploaded, "{report:?}");
    assert_eq!(report.upload.key, "calls/2026/11/21/call-s3-1.calltape");
    assert_eq!((report.dropped_samples, report.dropped_records), (0, 0));
    assert!(
        spool_files(spool.path()).is_empty(),
        "spool copy deleted after verification"
    );

    let store = s3.store("calls");
    let got = store
        .get(&Path::from("calls/2026/11/21/call-s3-1.calltape"))
        .await
        .unwrap();
    assert_eq!(
        got.attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some(calltape_recorder::CONTENT_TYPE)
    );
    let bytes = got.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, report.upload.bytes);
    let rb = read_back(&bytes);
    assert_eq!(rb.archive.footer.flags & 1, 0, "not recovered");
    assert_scripted_call(&rb, "call-s3-1");
    rec.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_keeps_archive_in_spool_until_a_retry_uploads_it() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let endpoint = s3.endpoint();
    let spool = tempfile::tempdir().unwrap();
    let rec = s3_recorder(&endpoint, "calls", spool.path())
        .retry_policy(quick_retries())
        .upload_deadline(Duration::from_secs(3))
        .build()
        .await
        .unwrap();
    let session = rec.start_session(call_info("call-down-1")).unwrap();
    script(&session);
    session.drained().await;

    let stopped = s3.stop().await;
    let report = session.finish().await.unwrap();
    let UploadOutcome::InSpool { path, reason } = &report.upload.outcome else {
        panic!("expected the archive to stay in the spool: {report:?}");
    };
    assert!(path.exists(), "{path:?}");
    assert!(
        reason.contains("calls/2026/11/21/call-down-1.calltape"),
        "{reason}"
    );
    assert_eq!(spool_files(spool.path()), vec!["call-down-1.calltape"]);
    let health = rec.health();
    assert!(
        health.errors >= 1 && health.last_error.is_some(),
        "{health:?}"
    );

    // a retry while the store is still down changes nothing and loses nothing
    let again = rec.upload_pending().await;
    assert_eq!(again.len(), 1);
    assert!(!again[0].is_uploaded());
    assert!(path.exists());

    let s3 = stopped.restart().await.unwrap();
    let up = rec.upload_pending().await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(up[0].is_uploaded(), "{up:?}");
    assert!(spool_files(spool.path()).is_empty());
    let bytes = s3
        .store("calls")
        .get(&Path::from("calls/2026/11/21/call-down-1.calltape"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_scripted_call(&read_back(&bytes), "call-down-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_left_by_a_shutdown_with_the_store_down_go_up_on_next_start() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let endpoint = s3.endpoint();
    let stopped = s3.stop().await;
    let spool = tempfile::tempdir().unwrap();
    let rec = s3_recorder(&endpoint, "calls", spool.path())
        .retry_policy(quick_retries())
        .upload_deadline(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    for id in ["call-a", "call-b"] {
        let s = rec.start_session(call_info(id)).unwrap();
        script(&s);
        s.drained().await;
    }
    let shut = rec.shutdown(Duration::from_secs(5)).await;
    assert_eq!(shut.sessions.len(), 2, "{shut:?}");
    assert!(shut.sessions.iter().all(|r| !r.upload.is_uploaded()));
    assert!(
        rec.start_session(call_info("late")).is_err(),
        "no sessions after shutdown"
    );
    assert_eq!(
        spool_files(spool.path()),
        vec!["call-a.calltape", "call-b.calltape"]
    );

    let s3 = stopped.restart().await.unwrap();
    let rec2 = s3_recorder(&endpoint, "calls", spool.path())
        .build()
        .await
        .unwrap();
    // the start-up run (or this call, whichever takes the spool first) uploads both
    rec2.upload_pending().await;
    assert!(spool_files(spool.path()).is_empty());
    let store = s3.store("calls");
    for id in ["call-a", "call-b"] {
        let bytes = store
            .get(&Path::from(format!("calls/2026/11/21/{id}.calltape")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_scripted_call(&read_back(&bytes), id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_archive_goes_up_as_multipart() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let spool = tempfile::tempdir().unwrap();
    let rec = s3_recorder(&s3.endpoint(), "calls", spool.path())
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-big")).unwrap();
    // white noise does not compress: ~10 MiB of audio
    let mut x: u32 = 1;
    for i in 0..16_500u64 {
        let frame: Vec<i16> = (0..320)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as i16
            })
            .collect();
        s.at(i * 20 * MS).audio(1, &frame);
        if i % 500 == 0 {
            s.drained().await;
        }
    }
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    assert!(report.upload.bytes > 8 << 20, "{}", report.upload.bytes);
    assert_eq!(report.dropped_samples, 0);
    let bytes = s3
        .store("calls")
        .get(&Path::from(report.upload.key.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let rb = read_back(&bytes);
    assert_eq!(rb.timeline(1).len(), 16_500 * 320);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_moto_when_available() {
    let Some(endpoint) = calltape_tests::moto::endpoint("upload_to_moto_when_available") else {
        return;
    };
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let bucket = format!("calltape-rec-{}", std::process::id());
    calltape_tests::moto::create_bucket(&endpoint, &bucket);
    let spool = tempfile::tempdir().unwrap();
    // credentials and region from the environment (AWS_ACCESS_KEY_ID=testing, …)
    let rec = Recorder::builder()
        .destination(format!("s3://{bucket}/calls"))
        .store_option("aws_endpoint", &endpoint)
        .store_option("aws_allow_http", "true")
        .spool_dir(spool.path())
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-moto")).unwrap();
    script(&s);
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded(), "{report:?}");
    assert_eq!(report.upload.key, "calls/2026/11/21/call-moto.calltape");
}

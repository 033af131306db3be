//! Uploads that cannot succeed end as the settings say: a missing bucket is refused at once
//! (not retried; against moto, since the in-process S3 server creates buckets on demand), and the upload deadline counts from `finish()`, waiting for an upload slot
//! included.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use calltape_recorder::{Recorder, RetryPolicy, UploadOutcome};
use calltape_tests::s3_server::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use common::*;

fn s3_recorder(
    endpoint: &str,
    bucket: &str,
    spool: &std::path::Path,
) -> calltape_recorder::RecorderBuilder {
    Recorder::builder()
        .destination(format!("s3://{bucket}/calls"))
        .store_option("aws_endpoint", endpoint)
        .store_option("aws_allow_http", "true")
        .spool_dir(spool)
        .retry_interval(None)
        .retry_policy(RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            multiplier: 2.0,
        })
}

fn assert_refused_at_once(outcome: &UploadOutcome) {
    match outcome {
        UploadOutcome::InSpool { path, reason } => {
            assert!(path.exists(), "archive kept in the spool: {path:?}");
            assert!(reason.contains("does not exist"), "{reason}");
            assert!(reason.contains("attempt 1; not retried"), "{reason}");
        }
        other => panic!("expected the archive in the spool, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_on_moto_is_refused_at_once_not_retried() {
    let Some(endpoint) =
        calltape_tests::moto::endpoint("a_missing_bucket_on_moto_is_refused_at_once_not_retried")
    else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    // credentials and region from the environment (AWS_ACCESS_KEY_ID=testing, …)
    let rec = s3_recorder(
        endpoint.trim_end_matches('/'),
        &format!("calltape-missing-{}", std::process::id()),
        spool.path(),
    )
    .build()
    .await
    .unwrap();
    let s = rec.start_session(call_info("call-moto-no-bucket")).unwrap();
    script(&s);
    let report = s.finish().await.unwrap();
    assert_refused_at_once(&report.upload.outcome);
}

/// A store that accepts connections and never answers.
fn silent_store() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

/// Six sessions finish at once against a store that never answers; four upload slots. The
/// two that wait for a slot must not get a fresh deadline when one frees up: every upload
/// ends at `finish() + upload_deadline`. Runs on tokio's paused clock, so the deadline is
/// measured in the runtime's virtual time (exact, not a wall-clock timing).
#[tokio::test(start_paused = true)]
async fn the_upload_deadline_counts_from_finish_including_the_wait_for_a_slot() {
    const DEADLINE: Duration = Duration::from_secs(10);
    let store = silent_store();
    let spool = tempfile::tempdir().unwrap();
    let rec = s3_recorder(&format!("http://{store}"), "calls", spool.path())
        .store_option("aws_access_key_id", ACCESS_KEY_ID)
        .store_option("aws_secret_access_key", SECRET_ACCESS_KEY)
        .store_option("aws_region", REGION)
        .upload_deadline(DEADLINE)
        .build()
        .await
        .unwrap();
    let sessions: Vec<_> = (0..6)
        .map(|i| {
            let s = rec
                .start_session(call_info(&format!("call-slot-{i}")))
                .unwrap();
            script(&s);
            s
        })
        .collect();
    let t0 = tokio::time::Instant::now();
    let reports = futures::future::join_all(sessions.into_iter().map(|s| s.finish())).await;
    let took = t0.elapsed();
    for r in &reports {
        let r = r.as_ref().unwrap();
        match &r.upload.outcome {
            UploadOutcome::InSpool { reason, .. } => {
                assert!(reason.contains("deadline"), "{reason}")
            }
            other => panic!("expected the archive in the spool, got {other:?}"),
        }
    }
    assert!(
        took <= DEADLINE + Duration::from_secs(1),
        "the last finish() returned {took:?} after it was called; the deadline is {DEADLINE:?}"
    );
}

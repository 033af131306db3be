//! Extreme but plausible settings: none may panic (in the caller or in a background task), and
//! `finish()` / `shutdown()` always return. Nonsense (a NaN multiplier) is refused at build.

mod common;

use std::time::Duration;

use calltape_recorder::{Recorder, RecorderError, RetryPolicy, UploadOutcome};
use common::*;

fn file_recorder(
    spool: &std::path::Path,
    dest: &std::path::Path,
) -> calltape_recorder::RecorderBuilder {
    Recorder::builder()
        .destination(format!("file://{}", dest.display()))
        .spool_dir(spool)
        .retry_interval(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_durations_and_largest_sizes_record_and_upload() {
    let (spool, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(spool.path(), dest.path())
        .upload_deadline(Duration::MAX)
        .flush_interval(Duration::MAX)
        .audio_tolerance(Duration::MAX)
        .memory_budget(usize::MAX)
        .queue_capacity(usize::MAX)
        .multipart_threshold(u64::MAX)
        .retry_interval(Some(Duration::MAX))
        .retry_policy(RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::MAX,
            max_backoff: Duration::MAX,
            multiplier: f64::MAX,
        })
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-extreme")).unwrap();
    script(&s);
    let report = s.finish().await.unwrap();
    assert_eq!(report.upload.outcome, UploadOutcome::Uploaded, "{report:?}");
    let bytes = std::fs::read(dest.path().join(&report.upload.key)).unwrap();
    let rb = read_back(&bytes);
    assert_eq!(rb.archive.header().session_id, "call-extreme");
    // an unbounded audio tolerance closes the scripted 3 s gap, but keeps every sample
    assert_eq!(rb.timeline(1).len(), 24_000);
    assert_eq!(rb.timeline(2).len(), 12_800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_longest_deadline_finishes_open_sessions() {
    let (spool, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(spool.path(), dest.path())
        .upload_deadline(Duration::MAX)
        .build()
        .await
        .unwrap();
    let s = rec
        .start_session(call_info("call-open-at-shutdown"))
        .unwrap();
    script(&s);
    let report = rec.shutdown(Duration::MAX).await;
    assert!(report.timed_out.is_empty(), "{report:?}");
    assert_eq!(report.sessions.len(), 1, "{report:?}");
    assert!(report.sessions[0].upload.is_uploaded(), "{report:?}");
    drop(s);
}

/// A store that refuses every connection makes every attempt fail: with a multiplier of
/// f64::MAX and u32::MAX attempts, the backoff saturates at `max_backoff` and the upload
/// deadline ends the retries; the archive stays in the spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_retry_multiplier_and_attempts_end_at_the_deadline() {
    let spool = tempfile::tempdir().unwrap();
    // a port nothing listens on: bind one, note it, close it
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rec = Recorder::builder()
        .destination("s3://calls/prefix")
        .store_option("aws_endpoint", format!("http://127.0.0.1:{port}"))
        .store_option("aws_allow_http", "true")
        .store_option("aws_access_key_id", "testing")
        .store_option("aws_secret_access_key", "testing")
        .store_option("aws_region", "us-east-1")
        .spool_dir(spool.path())
        .retry_interval(None)
        .upload_deadline(Duration::from_millis(800))
        .retry_policy(RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(50),
            multiplier: f64::MAX,
        })
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-unreachable")).unwrap();
    script(&s);
    let report = s.finish().await.unwrap();
    match &report.upload.outcome {
        UploadOutcome::InSpool { path, reason } => {
            assert!(path.exists(), "archive kept in the spool: {path:?}");
            assert!(reason.contains("deadline"), "{reason}");
        }
        other => panic!("expected the archive in the spool, got {other:?}"),
    }
}

#[tokio::test]
async fn a_multiplier_that_is_not_a_finite_number_of_at_least_one_is_refused_at_build() {
    for multiplier in [f64::NAN, f64::INFINITY, 0.5, -2.0] {
        let spool = tempfile::tempdir().unwrap();
        let err = Recorder::builder()
            .destination("memory://")
            .spool_dir(spool.path())
            .retry_policy(RetryPolicy {
                multiplier,
                ..RetryPolicy::default()
            })
            .build()
            .await
            .unwrap_err();
        assert!(
            matches!(err, RecorderError::InvalidSetting { setting, .. } if setting == "RetryPolicy::multiplier"),
            "{multiplier}: {err}"
        );
        assert!(err.to_string().contains("multiplier"), "{err}");
    }
}

//! An S3 destination without credentials: the upload fails at once with a message naming the
//! settings to set, instead of retrying requests to the instance metadata service. Its own
//! test binary, because it clears the AWS credential variables of the process.

mod common;

use std::time::Duration;

use calltape_recorder::{Recorder, RetryPolicy, UploadOutcome};
use common::*;

/// A local port nothing listens on (bound, noted, closed).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_name_the_settings_and_are_not_retried() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(var);
    }
    // the store: moto when CI runs it (the failure comes before any request to it either way)
    let endpoint = std::env::var("CALLTAPE_MOTO_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", closed_port()));
    let spool = tempfile::tempdir().unwrap();
    let rec = Recorder::builder()
        .destination("s3://calls/calls")
        .store_option("aws_endpoint", endpoint.trim_end_matches('/'))
        .store_option("aws_allow_http", "true")
        .store_option("aws_region", "us-east-1")
        // no instance here: point the metadata service at a closed local port
        .store_option(
            "aws_metadata_endpoint",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .spool_dir(spool.path())
        .retry_interval(None)
        .retry_policy(RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            multiplier: 2.0,
        })
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-no-credentials")).unwrap();
    script(&s);
    let report = s.finish().await.unwrap();
    match &report.upload.outcome {
        UploadOutcome::InSpool { path, reason } => {
            assert!(path.exists(), "archive kept in the spool: {path:?}");
            assert!(reason.contains("no AWS credentials found"), "{reason}");
            assert!(reason.contains("AWS_ACCESS_KEY_ID"), "{reason}");
            assert!(reason.contains("AWS_PROFILE"), "{reason}");
            assert!(reason.contains("attempt 1; not retried"), "{reason}");
        }
        other => panic!("expected the archive in the spool, got {other:?}"),
    }
}

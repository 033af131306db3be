//! The S3 server going away in the middle of a multipart upload and coming back: the archive
//! waits in the spool, nothing half-written shows up at its key, and the retry (or the next
//! recorder on the same spool) uploads it whole.
//!
//! The outage is exact, not timed: a [`FaultProxy`] in front of the in-process S3 server resets
//! every connection once a given number of request-body bytes has gone through, and refuses
//! connections until healed.

mod common;

use std::time::Duration;

use calltape_format::Record;
use calltape_recorder::{Attributes, Recorder, RetryPolicy, Session, UploadOutcome};
use calltape_tests::fault_proxy::FaultProxy;
use calltape_tests::s3_server::{TestS3, ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use common::*;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

const MIB: u64 = 1 << 20;
/// The recorder uploads multipart in parts of this size.
const PART: u64 = 8 * MIB;
/// An event is recorded every this many audio frames.
const EVENT_EVERY: u64 = 100;

fn recorder_via(proxy: &FaultProxy, spool: &std::path::Path) -> calltape_recorder::RecorderBuilder {
    Recorder::builder()
        .destination("s3://calls/calls")
        .store_option("aws_endpoint", proxy.endpoint())
        .store_option("aws_allow_http", "true")
        .store_option("aws_access_key_id", ACCESS_KEY_ID)
        .store_option("aws_secret_access_key", SECRET_ACCESS_KEY)
        .store_option("aws_region", REGION)
        .spool_dir(spool)
        .multipart_threshold(5 * MIB)
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(100),
            multiplier: 2.0,
        })
        .upload_deadline(Duration::from_secs(20))
        .retry_interval(None)
}

/// Frame `i` of track 1: white noise (xorshift, seeded by the frame number), so the archive
/// is about as large as the PCM and every sample can be checked.
fn frame(i: u64) -> Vec<i16> {
    let mut x = (i as u32).wrapping_mul(2_654_435_761) | 1;
    (0..320)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as i16
        })
        .collect()
}

/// Records `frames` 20 ms frames of noise on track 1 with an event every [`EVENT_EVERY`]
/// frames, between a turn start and the session end.
async fn record_noise(s: &Session, frames: u64) {
    s.at(0).turn_start(1, calltape_recorder::Speaker::User);
    for i in 0..frames {
        s.at(i * 20 * MS).audio(1, &frame(i));
        if i % EVENT_EVERY == 0 {
            let mut attrs = Attributes::new();
            attrs.insert("frame".into(), i.into());
            s.at(i * 20 * MS).event("noise_marker", attrs);
        }
        if i % 500 == 499 {
            s.drained().await;
        }
    }
    s.at(frames * 20 * MS).turn_end(1);
    s.at(frames * 20 * MS).end("user_hangup", Some("resolved"));
}

/// Asserts the archive holds exactly what [`record_noise`] recorded.
fn assert_holds_noise(bytes: &[u8], id: &str, frames: u64) {
    let rb = read_back(bytes);
    assert_eq!(rb.archive.header().session_id, id);
    assert_eq!(
        rb.archive.footer.flags & 1,
        0,
        "closed normally, not recovered"
    );
    assert!(
        rb.archive.summary.totals.dropped.is_empty(),
        "{:?}",
        rb.archive.summary.totals.dropped
    );
    let mut audio: Vec<(u64, &[i16])> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Audio(a) if a.track == 1 => Some((a.first_sample, a.samples.as_slice())),
            _ => None,
        })
        .collect();
    audio.sort_by_key(|a| a.0);
    let recorded: Vec<i16> = (0..frames).flat_map(frame).collect();
    let mut next = 0usize;
    for (first, samples) in audio {
        assert_eq!(
            first, next as u64,
            "track 1 is contiguous: gap or overlap at sample {next}"
        );
        let end = next + samples.len();
        assert!(end <= recorded.len(), "more samples than recorded: {end}");
        if let Some(k) = (0..samples.len()).find(|&k| samples[k] != recorded[next + k]) {
            panic!("sample {} differs from what was recorded", next + k);
        }
        next = end;
    }
    assert_eq!(next, recorded.len(), "every sample of track 1");
    let markers: Vec<u64> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Event(e) if e.name == "noise_marker" => e.attributes["frame"].as_u64(),
            _ => None,
        })
        .collect();
    let expected: Vec<u64> = (0..frames).step_by(EVENT_EVERY as usize).collect();
    assert_eq!(markers, expected, "every event, in order");
    let kinds = rb.kinds();
    for k in ["turn_start", "turn_end", "session_end"] {
        assert!(kinds.contains(&k), "missing {k}");
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

/// Nothing at all in the bucket: no object at the key, no half-written one elsewhere.
async fn assert_bucket_empty(s3: &TestS3) {
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(s3.store("calls").list(None))
        .await
        .unwrap();
    assert!(
        listed.is_empty(),
        "objects in the bucket during the outage: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_during_the_second_part_keeps_the_archive_until_upload_pending() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let proxy = FaultProxy::start(s3.addr()).await;
    let spool = tempfile::tempdir().unwrap();
    let rec = recorder_via(&proxy, spool.path()).build().await.unwrap();
    let id = "call-outage-1";
    // ~10.2 MiB of noise: a multipart upload of an 8 MiB part and a ~2 MiB one
    let frames = 16_700;
    let s = rec.start_session(call_info(id)).unwrap();
    record_noise(&s, frames).await;
    s.drained().await;

    // the server "dies" 1 MiB into the second part
    proxy.cut_after_body_bytes(PART + MIB);
    let report = s.finish().await.unwrap();
    assert!(
        proxy.is_down(),
        "the outage happened during the upload: {report:?} {:#?}",
        proxy.requests()
    );
    let UploadOutcome::InSpool { path, reason } = &report.upload.outcome else {
        panic!("expected the archive to stay in the spool: {report:?}");
    };
    let key = "calls/2026/11/21/call-outage-1.calltape";
    assert!(reason.contains(key), "the reason names the key: {reason}");
    assert!(
        report.upload.bytes > PART + 2 * MIB,
        "{}",
        report.upload.bytes
    );
    assert_eq!((report.dropped_samples, report.dropped_records), (0, 0));

    // what the store saw: part 1 whole, part 2 cut, never completed
    let seen = proxy.requests();
    let part = |n: u32| {
        seen.iter()
            .filter(|r| r.request_line.contains(&format!("partNumber={n}&")))
            .collect::<Vec<_>>()
    };
    assert!(
        part(1).iter().any(|r| !r.cut && r.body_bytes == PART),
        "part 1 went through whole: {seen:#?}"
    );
    assert!(
        part(2).iter().any(|r| r.cut && r.body_bytes == MIB),
        "part 2 was cut 1 MiB in: {seen:#?}"
    );
    assert!(
        !seen
            .iter()
            .any(|r| r.request_line.starts_with("POST") && r.request_line.contains("uploadId=")),
        "no CompleteMultipartUpload got through: {seen:#?}"
    );
    assert!(proxy.refused() >= 1, "the retry met the outage too");
    assert_bucket_empty(&s3).await;
    let missing = s3.store("calls").head(&Path::from(key)).await;
    assert!(
        matches!(missing, Err(object_store::Error::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(spool_files(spool.path()), vec!["call-outage-1.calltape"]);
    let waiting = std::fs::read(path).unwrap();
    let health = rec.health();
    assert!(
        health.errors >= 1 && health.last_error.is_some(),
        "{health:?}"
    );

    // a retry during the outage changes nothing and loses nothing
    let again = rec.upload_pending().await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(!again[0].is_uploaded(), "{again:?}");
    assert!(path.exists());
    assert_bucket_empty(&s3).await;

    proxy.heal();
    let up = rec.upload_pending().await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(up[0].is_uploaded(), "{up:?}");
    assert_eq!(up[0].key, key);
    assert!(spool_files(spool.path()).is_empty(), "spool emptied");
    let bytes = s3
        .store("calls")
        .get(&Path::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        bytes == waiting,
        "the object is the archive that waited in the spool"
    );
    assert_holds_noise(&bytes, id, frames);
    rec.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_during_the_only_part_is_uploaded_by_the_next_recorder() {
    let s3 = TestS3::start().await;
    s3.create_bucket("calls");
    let proxy = FaultProxy::start(s3.addr()).await;
    let spool = tempfile::tempdir().unwrap();
    let id = "call-outage-2";
    let key = "calls/2026/11/21/call-outage-2.calltape";
    // ~6.1 MiB of noise: above the lowered 5 MiB threshold, one part
    let frames = 10_000;
    {
        let rec = recorder_via(&proxy, spool.path()).build().await.unwrap();
        let s = rec.start_session(call_info(id)).unwrap();
        record_noise(&s, frames).await;
        s.drained().await;
        proxy.cut_after_body_bytes(3 * MIB);
        let report = s.finish().await.unwrap();
        assert!(proxy.is_down());
        assert!(
            matches!(&report.upload.outcome, UploadOutcome::InSpool { reason, .. } if reason.contains(key)),
            "{report:?}"
        );
        assert!(report.upload.bytes > 5 * MIB, "{}", report.upload.bytes);
        let seen = proxy.requests();
        assert!(
            seen.iter().any(|r| r.cut
                && r.body_bytes == 3 * MIB
                && r.request_line.contains("partNumber=1&")),
            "part 1 was cut 3 MiB in: {seen:#?}"
        );
        // the process goes away while the store is still down
        let shut = rec.shutdown(Duration::from_secs(5)).await;
        assert!(shut.pending.iter().all(|r| !r.is_uploaded()), "{shut:?}");
    }
    assert_bucket_empty(&s3).await;
    assert_eq!(spool_files(spool.path()), vec!["call-outage-2.calltape"]);

    proxy.heal();
    let rec = recorder_via(&proxy, spool.path()).build().await.unwrap();
    // the start-up run (or this call, whichever takes the spool first) uploads it
    rec.upload_pending().await;
    assert!(spool_files(spool.path()).is_empty(), "spool emptied");
    let bytes = s3
        .store("calls")
        .get(&Path::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_holds_noise(&bytes, id, frames);
    rec.shutdown(Duration::from_secs(5)).await;
}

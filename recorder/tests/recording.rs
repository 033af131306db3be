//! Recording behaviour seen through the archive (file:// destination): drift correction,
//! drop accounting under a tiny memory budget, redaction, session id errors, stage guards.

mod common;

use std::time::Duration;

use calltape_format::Record;
use calltape_recorder::{Attributes, Recorder, RecorderError, SessionInfo, Speaker, Stage};
use common::*;

async fn file_recorder(
    dest: &std::path::Path,
    spool: &std::path::Path,
) -> calltape_recorder::RecorderBuilder {
    Recorder::builder()
        .destination(format!("file://{}", dest.display()))
        .spool_dir(spool)
        .retry_interval(None)
}

fn uploaded(dest: &std::path::Path, key: &str) -> ReadBack {
    read_back(&std::fs::read(dest.join(key)).unwrap())
}

#[tokio::test]
async fn drift_between_sample_count_and_clock_is_corrected_and_noted() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("drift")).unwrap();
    // the user's device really runs at 15 900 Hz against the session clock: 320-sample
    // frames arrive every 20.126 ms
    let frame_ns = 320 * 1_000_000_000 / 15_900;
    for i in 0..1_500u64 {
        s.at(i * frame_ns).audio(1, &[i as i16; 320]);
    }
    let report = s.finish().await.unwrap();
    let rb = uploaded(dest.path(), &report.upload.key);
    let corrections: Vec<i64> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Event(e) if e.name == "audio_drift_corrected" => {
                assert_eq!(e.attributes["what"], "audio:user");
                Some(e.attributes["samples"].as_i64().unwrap())
            }
            _ => None,
        })
        .collect();
    assert!(!corrections.is_empty());
    assert!(
        corrections.iter().all(|&d| d > 0),
        "silence inserted: {corrections:?}"
    );
    // every frame kept, none overlapping, and each within the 40 ms tolerance of its clock time
    for r in &rb.records {
        if let Record::Audio(a) = &r.record {
            let i = a.samples[0] as u64;
            let clock_sample = (i * frame_ns) as u128 * 16_000 / 1_000_000_000;
            let off = a.first_sample as i128 - clock_sample as i128;
            assert!(off.abs() <= 641, "frame {i} off by {off} samples");
            assert_eq!(
                r.time_ns,
                a.first_sample * 1_000_000 / 16,
                "record time = sample time"
            );
        }
    }
    assert_eq!(rb.timeline(1).len(), 1_500 * 320);
}

#[tokio::test]
async fn over_budget_audio_is_dropped_counted_and_noted_control_records_kept() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .memory_budget(64 * 1024)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("budget")).unwrap();
    // one burst far over the 64 KiB budget, without giving the writer a chance to drain
    for i in 0..500u64 {
        s.at(i * 20 * MS).audio(1, &[1; 320]);
        s.at(i * 20 * MS).event("frame", Attributes::new());
    }
    let status = s.status();
    assert!(status.dropped_samples > 0, "{status:?}");
    s.drained().await;
    // room again: what comes now is kept, and the drop is noted in the archive
    s.at(20_000 * MS).event("after", Attributes::new());
    let report = s.finish().await.unwrap();
    assert!(report.upload.is_uploaded());
    let rb = uploaded(dest.path(), &report.upload.key);
    let dropped: Vec<_> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Dropped(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let audio = dropped
        .iter()
        .find(|d| d.what == "audio:user")
        .expect("dropped record");
    assert_eq!(audio.unit, "samples");
    let kept = rb.timeline(1).len() as u64;
    assert_eq!(
        kept + audio.count,
        500 * 320,
        "every sample kept or counted"
    );
    assert_eq!(report.dropped_samples, audio.count);
    let events = rb
        .records
        .iter()
        .filter(|r| matches!(&r.record, Record::Event(e) if e.name == "frame"))
        .count() as u64;
    let lost_records = dropped
        .iter()
        .filter(|d| d.what == "records")
        .map(|d| d.count)
        .sum::<u64>();
    assert_eq!(
        events + lost_records,
        500,
        "control records kept or counted"
    );
    assert!(events > 0);
    assert!(rb.kinds().contains(&"session_end"));
}

#[tokio::test]
async fn pii_is_redacted_before_it_reaches_the_disk() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .redact_pii(true)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("pii")).unwrap();
    s.at(0).turn_start(1, Speaker::User);
    s.at(MS).transcript(
        Speaker::User,
        "my card is 4111 1111 1111 1111 and order 8237461928374652",
        true,
    );
    s.at(2 * MS).state(
        "caller",
        &serde_json::json!({"email": "jane@example.com", "n": 3}),
    );
    s.at(3 * MS).log(
        calltape_recorder::LogLevel::Info,
        "agent",
        "calling +1 415 555 0132",
    );
    s.drained().await;
    // nothing unredacted in the spool file either
    let part = std::fs::read(spool.path().join("pii.calltape.part")).unwrap();
    let report = s.finish().await.unwrap();
    let rb = uploaded(dest.path(), &report.upload.key);
    let texts: Vec<String> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Transcript(t) => Some(t.text.clone()),
            Record::StateSnapshot(v) => Some(v.value.to_string()),
            Record::Log(l) => Some(l.message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "my card is [CARD] and order 8237461928374652".to_string(),
            r#"{"email":"[EMAIL]","n":3}"#.to_string(),
            "calling [PHONE]".to_string(),
        ]
    );
    assert!(!part.windows(4).any(|w| w == b"4111"));
}

#[tokio::test]
async fn bad_session_ids_are_refused_with_a_clear_error() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .build()
        .await
        .unwrap();
    for id in ["../escape", "a/b", "", "x\0y", "..", "sp ace"] {
        let err = rec.start_session(SessionInfo::new(id)).unwrap_err();
        assert!(
            matches!(err, RecorderError::InvalidSessionId { .. }),
            "{id:?}: {err}"
        );
    }
    let s = rec.start_session(SessionInfo::new("dup")).unwrap();
    assert!(matches!(
        rec.start_session(SessionInfo::new("dup")).unwrap_err(),
        RecorderError::DuplicateSession { .. }
    ));
    s.finish().await.unwrap();
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn stage_guard_records_on_drop_and_dropped_session_is_closed_and_uploaded() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("guards")).unwrap();
    {
        let mut tts = s.at(100 * MS).stage(1, Stage::Tts);
        tts.first_byte_at(250 * MS);
        tts.characters(42);
        s.at(400 * MS).event("x", Attributes::new());
        // dropped here: ends at the clock's "now" (400 ms, the latest explicit time)
    }
    drop(s);
    // nobody called finish: the writer notices, closes with reason "session_dropped", uploads
    for _ in 0..1_000 {
        if rec.health().open_sessions == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rec.health().open_sessions, 0);
    let rb = uploaded(dest.path(), "2026/11/21/guards.calltape");
    let st = rb
        .records
        .iter()
        .find_map(|r| match &r.record {
            Record::StageTiming(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (st.start_ns, st.end_ns, st.ttfb_ns, st.characters),
        (100 * MS, 400 * MS, Some(150 * MS), Some(42))
    );
    assert_eq!(
        rb.archive.summary.totals.end_reason.as_deref(),
        Some("session_dropped")
    );
}

/// With a manual clock the archive depends only on the calls: the same call recorded three
/// times, waiting for the writer after every call (tiny batches), after every 13th, and never
/// (batches as the writer happens to run), gives the same bytes.
#[tokio::test]
async fn a_manual_clock_call_gives_the_same_bytes_however_the_writer_runs() {
    let mut archives = Vec::new();
    for wait_every in [1, 13, u64::MAX] {
        let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let rec = file_recorder(dest.path(), spool.path())
            .await
            .build()
            .await
            .unwrap();
        let s = rec.start_session(call_info("same-bytes")).unwrap();
        for i in 0..200u64 {
            let t = i * 20 * MS;
            if i % 65 == 0 {
                s.at(t).turn_start(i as u32 / 65 + 1, Speaker::User);
            }
            let first = i * 320;
            let frame: Vec<i16> = (first..first + 320).map(|n| sample(1, n)).collect();
            s.at(t).audio(1, &frame);
            if i % 3 == 0 {
                s.at(t + 5 * MS).audio(2, &frame);
            }
            if i % 7 == 0 {
                let mut attrs = Attributes::new();
                attrs.insert("i".into(), i.into());
                s.at(t + MS).event("tick", attrs);
            }
            if i % wait_every == 0 {
                s.drained().await;
            }
        }
        s.at(4_000 * MS).end("user_hangup", None);
        let report = s.finish().await.unwrap();
        archives.push(std::fs::read(dest.path().join(&report.upload.key)).unwrap());
    }
    let rb = read_back(&archives[0]);
    assert!(rb.archive.index.len() > 8, "several chunks per lane");
    assert!(
        archives[0] == archives[1],
        "waiting after every call changed the bytes"
    );
    assert!(
        archives[0] == archives[2],
        "never waiting changed the bytes"
    );
}

/// A spool scan (`upload_pending`, as at start-up or from the retry loop) can find a call's
/// closed archive before the call's own `finish()` uploads it. Whichever task uploads it,
/// `finish()` reports the real outcome and key, never "in the spool" for a call that was
/// uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_racing_a_spool_scan_reports_the_upload_whichever_task_did_it() {
    let (dest, spool) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rec = file_recorder(dest.path(), spool.path())
        .await
        .build()
        .await
        .unwrap();
    let scanning = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let scanner = {
        let (rec, scanning) = (rec.clone(), scanning.clone());
        tokio::spawn(async move {
            let mut scans = 0u32;
            while scanning.load(std::sync::atomic::Ordering::Relaxed) {
                rec.upload_pending().await;
                scans += 1;
                tokio::task::yield_now().await;
            }
            scans
        })
    };
    let mut finishing = Vec::new();
    for i in 0..60 {
        let s = rec.start_session(call_info(&format!("race-{i}"))).unwrap();
        script(&s);
        finishing.push(tokio::spawn(s.finish()));
    }
    for (i, f) in finishing.into_iter().enumerate() {
        let report = f.await.unwrap().unwrap();
        assert_eq!(
            report.upload.outcome,
            calltape_recorder::UploadOutcome::Uploaded,
            "{report:?}"
        );
        assert_scripted_call(
            &uploaded(dest.path(), &report.upload.key),
            &format!("race-{i}"),
        );
    }
    scanning.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(scanner.await.unwrap() > 0);
    assert!(std::fs::read_dir(spool.path()).unwrap().next().is_none());
}

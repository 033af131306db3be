//! Session assembly: telemetry that arrives before and after the recording ends up in one
//! archive whose turns are exactly what the SessionReport importer makes of the same
//! report; a session without a recording is closed after its timeout; shutdown writes what
//! is open; a recording staged before a crash is written after the restart.

mod support;

use std::time::Duration;

use calltape_format::{Record, TimedRecord};
use prost::Message;
use serde_json::{json, Value};
use support::*;

const T0: i64 = 1_795_255_200; // the recording's start, unix seconds
const NS: u64 = 1_000_000_000;

fn chat_history() -> Value {
    let t = T0 as f64;
    json!({"items": [
        {"id": "item_1", "type": "message", "role": "user", "content": ["Book a table for two"],
         "interrupted": false, "created_at": t + 2.0,
         "metrics": {"started_speaking_at": t + 1.0, "stopped_speaking_at": t + 1.8,
                     "end_of_turn_delay": 0.2, "transcription_delay": 0.1}},
        {"id": "item_2", "type": "message", "role": "assistant",
         "content": ["Done, a table for two at eight."], "interrupted": false,
         "created_at": t + 2.4,
         "metrics": {"started_speaking_at": t + 2.5, "stopped_speaking_at": t + 4.0,
                     "llm_node_ttft": 0.3, "tts_node_ttfb": 0.1}}
    ]})
}

fn summary(job: &str) -> Value {
    json!({"job_id": job, "room_id": "RM_1", "room": "bookings",
           "audio_recording_path": "/agent/recording.ogg",
           "audio_recording_started_at": T0 as f64,
           "options": {"recording_options": {"audio": true, "transcript": true}},
           "timestamp": T0 as f64 + 5.0, "usage": null, "sdk_version": "1.8.9",
           "close_reason": "CR_USER_INITIATED"})
}

fn upload(job: &str) -> Vec<u8> {
    let chat = chat_history().to_string();
    recording_body(
        &header_at(job, &summary(job).to_string(), Some(T0)),
        Some(chat.as_bytes()),
        None,
    )
}

fn spans(job: &str, name: &str, at_s: f64) -> Vec<u8> {
    let start = (T0 as u64) * NS + (at_s * 1e9) as u64;
    span(job, name, start, start + NS / 10).encode_to_vec()
}

fn auth() -> String {
    format!("Bearer {}", token(SECRET, 3600, true))
}

fn spans_named(records: &[TimedRecord]) -> Vec<(String, Option<u32>)> {
    records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Event(e) if e.name == "otel_span" => Some((
                e.attributes["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e.turn,
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_before_and_after_the_recording_joins_one_archive_mapped_like_import() {
    let c = TestCollector::start(Limits {
        linger: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let job = "AJ_join";
    let a = auth();
    let (s, t) = c
        .post(
            TRACES,
            Some(&a),
            PROTOBUF,
            &[],
            &spans(job, "user_turn", 1.0),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let (s, t) = c
        .post(RECORDINGS, Some(&a), MULTIPART, &[], &upload(job))
        .await;
    assert_eq!(s, 200, "{t}");
    let (s, t) = c
        .post(
            TRACES,
            Some(&a),
            PROTOBUF,
            &[],
            &spans(job, "agent_turn", 2.2),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let path = c.wait_for_archive().await;
    let (summary, records) = read_archive(&path);

    // the same report through `calltape import livekit`'s mapping
    let mut report = summary_obj(job);
    report.insert("chat_history".into(), chat_history());
    let call = calltape_import::livekit::import_report(&Value::Object(report), "x").unwrap();
    let (bytes, _) =
        calltape_import::write_archive(call, None, std::io::Cursor::new(Vec::new())).unwrap();
    let imported = calltape_format::open(&mut std::io::Cursor::new(bytes.into_inner())).unwrap();
    assert_eq!(summary.turns, imported.summary.turns);
    assert_eq!(summary.turns.len(), 1);
    assert_eq!(summary.header.session_id, job);
    assert_eq!(summary.header.started_at_unix_ns, T0 * NS as i64);

    // both spans, each in its place on the session clock
    assert_eq!(
        spans_named(&records),
        vec![
            ("user_turn".to_string(), Some(1)),
            ("agent_turn".to_string(), Some(1))
        ]
    );
    let first = records
        .iter()
        .find(|r| matches!(&r.record, Record::Event(e) if e.name == "otel_span"))
        .unwrap();
    assert_eq!(first.time_ns, NS);
    c.stop().await;
}

fn summary_obj(job: &str) -> serde_json::Map<String, Value> {
    match summary(job) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_recording_never_comes_is_closed_after_its_timeout() {
    let c = TestCollector::start(Limits {
        session_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let a = auth();
    let (s, _) = c
        .post(
            TRACES,
            Some(&a),
            PROTOBUF,
            &[],
            &spans("AJ_lost", "agent_turn", 3.0),
        )
        .await;
    assert_eq!(s, 200);
    let path = c.wait_for_archive().await;
    let (summary, records) = read_archive(&path);
    assert_eq!(summary.header.session_id, "AJ_lost");
    assert_eq!(
        spans_named(&records),
        vec![("agent_turn".to_string(), None)]
    );
    let warned = records.iter().any(|r| {
        matches!(&r.record, Record::Event(e) if e.name == "import_warning"
            && e.attributes.get("code") == Some(&json!("no_recording")))
    });
    assert!(warned, "the archive says its recording never came");
    // telemetry arriving after the session was written is dropped, not a second archive
    let (s, _) = c
        .post(
            TRACES,
            Some(&a),
            PROTOBUF,
            &[],
            &spans("AJ_lost", "late", 9.0),
        )
        .await;
    assert_eq!(s, 200);
    let stopped = c.stop().await;
    assert_eq!(stopped.sessions_written, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_the_sessions_still_open() {
    let c = TestCollector::start(Limits {
        linger: Duration::from_secs(3600),
        session_timeout: Duration::from_secs(3600),
        ..Limits::default()
    })
    .await;
    let a = auth();
    let (s, _) = c
        .post(RECORDINGS, Some(&a), MULTIPART, &[], &upload("AJ_open"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = c
        .post(
            TRACES,
            Some(&a),
            PROTOBUF,
            &[],
            &spans("AJ_tele", "llm_node", 1.0),
        )
        .await;
    assert_eq!(s, 200);
    let (stopped, dest, _spool) = c.stop_keeping_folders().await;
    assert_eq!(stopped.sessions_written, 2);
    assert_eq!(stopped.left_in_spool, 0);
    let files = files_under(dest.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("AJ_open.calltape")));
    assert!(files.iter().any(|f| f.ends_with("AJ_tele.calltape")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_staged_before_a_crash_is_written_after_the_restart() {
    let slow = Limits {
        linger: Duration::from_secs(3600),
        ..Limits::default()
    };
    let c = TestCollector::start(slow).await;
    let (s, _) = c
        .post(
            RECORDINGS,
            Some(&auth()),
            MULTIPART,
            &[],
            &upload("AJ_crash"),
        )
        .await;
    assert_eq!(s, 200, "the upload is acknowledged once staged on disk");
    let (dest, spool) = c.crash().await;
    assert!(files_under(dest.path()).is_empty());
    let c = TestCollector::start_in(
        Limits {
            linger: Duration::from_millis(200),
            ..Limits::default()
        },
        dest,
        spool,
    )
    .await;
    let path = c.wait_for_archive().await;
    let (summary, _) = read_archive(&path);
    assert_eq!(summary.header.session_id, "AJ_crash");
    assert_eq!(summary.turns.len(), 1);
    c.stop().await;
}

//! Turns what arrived for a session into an archive in the recorder's spool.
//!
//! The recording's parts are put back together as the `SessionReport.to_dict()` LiveKit
//! would have written: the header's session summary (the report without chat history and
//! events) + `chat_history` + `events` derived from the spans (a span that ended in error is
//! an `error` event). That report goes through the SessionReport importer
//! (`calltape_import::livekit::import_report`), so turns, stages, tools and errors are mapped
//! exactly as `calltape import livekit` maps them. Then the telemetry the report has no place
//! for is added on the session clock: each span as an `otel_span` event, each OTLP log record
//! as a log record, both in the turn they fall in. `calltape_import::write_archive` writes the
//! archive with the decoded audio (user left, agent right) to `<spool>/<id>.calltape.part`
//! (locked while written, so the recorder never mistakes it for a crash leftover), which is
//! synced and renamed to `<id>.calltape` for the recorder's uploader.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use calltape_format::call::TurnTimeline;
use calltape_format::{Event, LogLine, Record, TimedRecord};
use calltape_import::{audio, livekit, ImportOutcome, Warnings};
use serde_json::{json, Map, Value};

use crate::otlp::SpanRecord;
use crate::sessions::{CloseReason, Pending};

/// Suffix of an archive being assembled in the spool (removed at start: its upload is still
/// staged in the inbox and is assembled again).
pub const ASSEMBLING: &str = ".calltape.assembling";

/// Name recorded in the header tags (`import_source`).
pub const SOURCE_NAME: &str = "calltape collect";

/// A session written to the spool.
#[derive(Debug)]
pub struct Assembled {
    pub path: PathBuf,
    pub outcome: ImportOutcome,
    pub spans: usize,
    pub logs: usize,
}

/// Why a session could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("reading the staged recording {path}: {reason}")]
    Staged { path: String, reason: String },
    #[error("mapping the session report: {0}")]
    Report(String),
    #[error(transparent)]
    Import(#[from] calltape_import::ImportError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The report-shaped JSON for a session: what `SessionReport.to_dict()` holds, as far as
/// the uploads carry it.
pub fn report_json(p: &Pending) -> Result<Value, AssembleError> {
    let mut root = Map::new();
    if let Some(rec) = &p.recording {
        if !rec.header.session_summary.is_empty() {
            match serde_json::from_str(&rec.header.session_summary) {
                Ok(Value::Object(m)) => root = m,
                _ => {
                    return Err(AssembleError::Staged {
                        path: rec.dir.display().to_string(),
                        reason: "the session summary is not a JSON object".into(),
                    })
                }
            }
        }
        let h = &rec.header;
        for (k, v) in [
            ("job_id", &h.job_id),
            ("room_id", &h.room_id),
            ("room", &h.room_name),
        ] {
            if !v.is_empty() && !root.contains_key(k) {
                root.insert(k.into(), json!(v));
            }
        }
        let audio_start = root
            .get("audio_recording_started_at")
            .is_some_and(|v| !v.is_null());
        if let (false, Some(ns)) = (audio_start, h.start_unix_ns()) {
            root.insert("audio_recording_started_at".into(), json!(ns as f64 / 1e9));
        }
        if let Some(path) = rec.chat_path() {
            let text = std::fs::read(&path).map_err(|e| AssembleError::Staged {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let chat: Value = serde_json::from_slice(&text).map_err(|e| AssembleError::Staged {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            root.insert("chat_history".into(), chat);
        }
    } else {
        root.insert("job_id".into(), json!(p.session_id));
        // no recording: session time 0 is the first telemetry
        let first = p
            .spans
            .iter()
            .map(|s| s.start_unix_ns)
            .chain(p.logs.iter().map(|l| l.time_unix_ns))
            .filter(|t| *t > 0)
            .min();
        if let Some(t) = first {
            root.insert("timestamp".into(), json!(t as f64 / 1e9));
        }
    }
    let mut events: Vec<Value> = p.spans.iter().filter_map(error_event).collect();
    events.extend(close_event(&root));
    root.insert("events".into(), Value::Array(events));
    Ok(Value::Object(root))
}

/// The summary's `close_reason` (the `livekit.agent.CloseReason` proto name of the last close
/// event, e.g. `CR_USER_INITIATED`) as the report's `close` event at the report's timestamp:
/// the SDK names the enum member after the reason (`task_completed` is `CR_COMPLETED`).
fn close_event(summary: &Map<String, Value>) -> Option<Value> {
    let name = summary.get("close_reason")?.as_str()?;
    let member = name.strip_prefix("CR_")?.to_ascii_lowercase();
    let reason = match member.as_str() {
        "completed" => "task_completed".to_string(),
        "unknown" => return None,
        _ => member,
    };
    let at = summary.get("timestamp").filter(|t| t.is_number())?;
    Some(json!({"type": "close", "reason": reason, "created_at": at, "error": null}))
}

/// A span that ended in error, as the report's `error` event.
fn error_event(s: &SpanRecord) -> Option<Value> {
    let message = s.error.as_ref()?;
    Some(json!({
        "type": "error",
        "created_at": s.end_unix_ns as f64 / 1e9,
        "error": {"message": message, "type": s.name},
        "source": s.name,
    }))
}

/// Writes the session's archive into `spool`.
pub fn assemble(p: Pending, why: CloseReason, spool: &Path) -> Result<Assembled, AssembleError> {
    let report = report_json(&p)?;
    let mut call = livekit::import_report(&report, SOURCE_NAME).map_err(AssembleError::Report)?;
    call.audio_hint = None;
    let t0 = call.header.started_at_unix_ns;
    let timeline = TurnTimeline::new(call.records.iter().filter_map(|r| match &r.record {
        Record::TurnStart(t) => Some((t.turn, r.time_ns)),
        _ => None,
    }));
    let at = |unix_ns: i64| unix_ns.saturating_sub(t0).max(0) as u64;
    let mut warnings = Warnings::default();
    if p.recording.is_none() {
        warnings.general(
            "no_recording",
            format!(
                "no recording upload arrived for this session (closed by {}): the archive holds \
                 the telemetry only, without transcript or audio",
                why.as_str()
            ),
            Value::Null,
        );
    }
    if p.dropped > 0 {
        warnings.general(
            "telemetry_dropped",
            format!(
                "{} spans or log records exceeded the collector's per-session telemetry budget \
                 and were dropped (raise --session-telemetry)",
                p.dropped
            ),
            json!({"count": p.dropped}),
        );
    }
    let (spans, logs) = (p.spans.len(), p.logs.len());
    for s in &p.spans {
        let t = at(s.start_unix_ns);
        let mut a = Map::new();
        a.insert("name".into(), json!(s.name));
        a.insert("trace_id".into(), json!(s.trace_id));
        a.insert("span_id".into(), json!(s.span_id));
        if !s.parent_span_id.is_empty() {
            a.insert("parent_span_id".into(), json!(s.parent_span_id));
        }
        a.insert("start_ns".into(), json!(t));
        a.insert("end_ns".into(), json!(at(s.end_unix_ns)));
        if let Some(e) = &s.error {
            a.insert("error".into(), json!(e));
        }
        a.insert("attributes".into(), Value::Object(s.attributes.clone()));
        call.records.push(TimedRecord::new(
            t,
            Record::Event(Event {
                turn: timeline.turn_at(t),
                name: "otel_span".into(),
                attributes: a,
            }),
        ));
    }
    for l in p.logs {
        let t = at(l.time_unix_ns);
        call.records.push(TimedRecord::new(
            t,
            Record::Log(LogLine {
                turn: timeline.turn_at(t),
                level: l.level.into(),
                target: l.target,
                message: l.message,
                fields: l.fields,
            }),
        ));
    }
    call.warnings.extend(warnings.into_vec());
    let decoder = match p.recording.as_ref().and_then(|r| r.audio_path()) {
        Some(path) => Some(audio::open(&path)?),
        None => None,
    };
    let path = write_to_spool(call, decoder, spool, &p.session_id)?;
    Ok(Assembled {
        path: path.0,
        outcome: path.1,
        spans,
        logs,
    })
}

fn write_to_spool(
    call: calltape_import::ImportedCall,
    decoder: Option<Box<dyn audio::AudioDecoder>>,
    spool: &Path,
    id: &str,
) -> Result<(PathBuf, ImportOutcome), AssembleError> {
    let part = spool.join(format!("{id}{ASSEMBLING}"));
    let io = |what, path: &Path| {
        let path = path.display().to_string();
        move |source| AssembleError::Io { what, path, source }
    };
    let file = File::create(&part).map_err(io("creating", &part))?;
    let result =
        calltape_import::write_archive(call, decoder, BufWriter::with_capacity(1 << 20, file));
    let (out, outcome) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io("writing", &part))?;
    file.sync_all().map_err(io("syncing", &part))?;
    let mut dest = spool.join(format!("{id}.calltape"));
    let mut n = 1;
    while dest.exists() {
        n += 1;
        dest = spool.join(format!("{id}.{n}.calltape"));
    }
    std::fs::rename(&part, &dest).map_err(io("renaming", &part))?;
    drop(file);
    if let Ok(d) = File::open(spool) {
        let _ = d.sync_all();
    }
    Ok((dest, outcome))
}

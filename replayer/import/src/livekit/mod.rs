//! LiveKit Agents session reports (`SessionReport.to_dict()`, the `session_report.json` that
//! `console --record` writes beside `audio.ogg`) as calltape records.
//!
//! This is the one LiveKit mapping: `calltape import livekit`, `calltape collect` (through
//! [`from_report`]) and the Python package's live recorder (`calltape.livekit`, which hands
//! the session's events and chat history in this same shape to [`from_report`] when the
//! session closes) all go through it, so a live recording and an imported report of the same
//! call agree turn by turn.
//!
//! Session time 0 is `audio_recording_started_at` (t = 0 of the recording; the live recorder
//! sets it to its own session start) when present, else the earliest timestamp in the
//! report; the wall clock goes in the header. Timestamps are unix seconds (Python SDK) or
//! unix milliseconds (Node SDK, agents-js), told apart by magnitude (`timestamps_in_ms`).
//!
//! | report | calltape |
//! |---|---|
//! | user `message` | turn (`speaker: user`) + final user `transcript` (`start_ns`/`end_ns` = `metrics.started/stopped_speaking_at`, `confidence` = `transcript_confidence`, `language` from its final `user_input_transcribed` event) |
//! | user `metrics.started_speaking_at` → `stopped_speaking_at` | `vad` stage |
//! | `metrics.end_of_turn_delay` | `eou` stage from the end of speech |
//! | `metrics.transcription_delay` | `stt` stage from the end of speech (`model`/`provider` = `metrics.stt_metadata`) |
//! | `metrics.on_user_turn_completed_delay` | custom stage `on_user_turn_completed` after the commit |
//! | assistant `message` | agent `transcript` in the same turn (or an agent-opened turn: greeting) |
//! | `metrics.llm_node_ttft` | `llm` stage with `ttft_ns`, starting after the commit (or the last tool output); `model`/`provider` = `llm_metadata`; attributes `ttfs_ns` (`llm_node_ttfs`), `tokens_per_second` (`llm_node_tps`), `provider_request_ids` |
//! | `metrics.tts_node_ttfb` | `tts` stage with `ttfb_ns`, starting at the LLM's first token (`model`/`provider` = `tts_metadata`) |
//! | `metrics.playback_latency` | custom stage `playback_latency` ending when playback started |
//! | assistant `metrics.started/stopped_speaking_at` | `playback` stage |
//! | `metrics.e2e_latency` | `turn_end` attribute `reported_e2e_ns` |
//! | `interrupted: true` | transcript `interrupted` with `heard_text` = the message's text (LiveKit keeps the text forwarded until the cut: what was heard when the output synchronizes its transcript), playback `cancelled`, `interruption` event, `turn_end` `interrupted` |
//! | `function_call` + `function_call_output` | `tool_call` (start/end = their `created_at`, `is_error`, `output`); a tool the reply spoke over is not part of the e2e wait (calltape_format::call::latency) |
//! | `agent_handoff` | `handoff` event (`old_agent`, `new_agent`) |
//! | `agent_config_update` | `agent_config_update` event (`instructions`, `tools_added`, `tools_removed`) |
//! | events `user_state_changed`, `agent_state_changed`, `speech_created`, `function_tools_executed`, `overlapping_speech`, `agent_false_interruption`, `user_transcription_timeout`, `user_turn_exceeded`, `conversation_item_added`, `session_usage_updated`, `tool_execution_updated`, `debug_message`, `metrics_collected` | events of the same name |
//! | event `user_input_transcribed` | interim → user `transcript` with `is_final: false` (and `language`); final → `user_input_transcribed` event when a chat message holds its text, else a final user `transcript` |
//! | event `error` | `error` event (`message`; 1.x errors: "`llm_error` in `<label>` (recoverable: retried / unrecoverable)", `source` llm/stt/tts/realtime, `recoverable`) |
//! | event `close` | `session_end` (`reason` mapped) + `close` event with the raw values |
//! | `usage` | one `usage` record per model (1.x list of `{type, provider, model, ...}`), else one with the counts found by key name |
//! | `job_id`, `room_id`, `room`, `sdk_version`, `agent_name`, `close_reason`, `tags` | header tags `livekit.*`; everything top-level in a `livekit_report` event at 0; `user_turns` is checked against the chat history (`user_turns_mismatch`) |
//! | unknown item / event types, unknown keys | events / attributes with the raw JSON, plus an `import_warning` |
//!
//! When a message lacks its speaking times, the importer takes them from the
//! `user_state_changed` / `agent_state_changed` events and says so in a warning.

pub mod settle;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use calltape_format::call::TurnTimeline;
use calltape_format::{
    AgentInfo, Attributes, Event, Header, Record, SessionEnd, Speaker, Stage, StageTiming,
    TimedRecord, ToolCall, Transcript, TurnEnd, TurnId, TurnStart, Usage,
};
use serde_json::{json, Map, Value};

use super::clock::{self, delay_ns, SessionClock};
use super::{as_attributes, sanitize_session_id, ImportError, ImportedCall, Warnings};

const TOP_LEVEL_KEYS: &[&str] = &[
    "job_id",
    "room_id",
    "room",
    "events",
    "audio_recording_path",
    "audio_recording_started_at",
    "options",
    "chat_history",
    "timestamp",
    "usage",
    "sdk_version",
    "agent_name",
    "tags",
    "duration_ms",
    "user_turns",
    "errors",
    "close_reason",
];
const MESSAGE_KEYS: &[&str] = &[
    "type",
    "id",
    "role",
    "content",
    "interrupted",
    "transcript_confidence",
    "extra",
    "metrics",
    "created_at",
];
const METRIC_KEYS: &[&str] = &[
    "started_speaking_at",
    "stopped_speaking_at",
    "transcription_delay",
    "end_of_turn_delay",
    "on_user_turn_completed_delay",
    "llm_node_ttft",
    "tts_node_ttfb",
    "e2e_latency",
    "llm_node_ttfs",
    "llm_node_tps",
    "playback_latency",
    "provider_request_ids",
    "stt_metadata",
    "llm_metadata",
    "tts_metadata",
];
const KNOWN_EVENTS: &[&str] = &[
    "user_state_changed",
    "agent_state_changed",
    "user_input_transcribed",
    "speech_created",
    "function_tools_executed",
    "overlapping_speech",
    "error",
    "close",
    "metrics_collected",
    "agent_false_interruption",
    "user_transcription_timeout",
    "user_turn_exceeded",
    "debug_message",
    "conversation_item_added",
    "session_usage_updated",
    "tool_execution_updated",
];

/// Unix milliseconds a real report can hold (the Node SDK, agents-js, writes `Date.now()`):
/// the unix-seconds range times 1000, so the two never overlap.
const UNIX_MS_MIN: f64 = 1.0e12;
const UNIX_MS_MAX: f64 = 1.0e13;

/// A report timestamp as unix ns: unix seconds (the Python SDK) or unix milliseconds (the
/// Node SDK), told apart by magnitude.
fn unix_ns(v: &Value) -> Option<i64> {
    clock::unix_ns(v).or_else(|| unix_ms_ns(v))
}

fn unix_ms_ns(v: &Value) -> Option<i64> {
    let ms = clock::number(v).filter(|x| (UNIX_MS_MIN..UNIX_MS_MAX).contains(x))?;
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    // exact for whole milliseconds, else to the f64's precision (well under 1 µs)
    match text.parse::<i64>() {
        Ok(whole) => whole.checked_mul(1_000_000),
        Err(_) => Some((ms * 1e6).round() as i64),
    }
}

/// Reads `session_report.json` at `path`.
pub fn import_file(path: &Path) -> Result<ImportedCall, ImportError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: shown.clone(),
        source,
    })?;
    let report: Value = serde_json::from_str(&text).map_err(|e| ImportError::Input {
        path: shown.clone(),
        what: "LiveKit session report (JSON)",
        reason: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut call = import_report(&report, &name).map_err(|reason| ImportError::Input {
        path: shown,
        what: "LiveKit session report",
        reason,
    })?;
    // a relative audio_recording_path is relative to the report's folder
    if let Some(hint) = call.audio_hint.take() {
        let dir = path.parent().unwrap_or(Path::new("."));
        call.audio_hint = Some(if hint.is_relative() {
            dir.join(hint)
        } else {
            hint
        });
    }
    Ok(call)
}

/// The default recording beside a report: its `audio_recording_path` if that file exists,
/// else `audio.ogg` in the report's folder if it exists.
pub fn default_audio(report_path: &Path, call: &ImportedCall) -> Option<PathBuf> {
    if let Some(p) = call.audio_hint.as_ref().filter(|p| p.is_file()) {
        return Some(p.clone());
    }
    let sibling = report_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("audio.ogg");
    sibling.is_file().then_some(sibling)
}

/// The library entry point (used by `calltape collect` and the live recorder of the Python
/// package): maps a parsed report; `source_name` is recorded in the header tags. Audio is
/// added by [`crate::write_archive`]. Fails only when the report is not a JSON object.
pub fn from_report(report: &Value, source_name: &str) -> Result<ImportedCall, String> {
    import_report(report, source_name)
}

/// Maps a parsed report. `source_name` is recorded in the header tags. Fails only when the
/// report is not a JSON object.
pub fn import_report(report: &Value, source_name: &str) -> Result<ImportedCall, String> {
    let root = report
        .as_object()
        .ok_or("the top level is not a JSON object")?;
    let mut warnings = Warnings::default();
    let audio_start = root.get("audio_recording_started_at").and_then(unix_ns);
    let in_ms = ["timestamp", "audio_recording_started_at"]
        .iter()
        .filter_map(|k| root.get(*k))
        .any(|v| unix_ms_ns(v).is_some());
    if in_ms {
        warnings.general(
            "timestamps_in_ms",
            "the report's timestamps are unix milliseconds (written by the Node SDK, \
             agents-js): read as such",
            Value::Null,
        );
    }
    let t0 = match audio_start {
        Some(t) => t,
        None => {
            let earliest = earliest_timestamp(report);
            match earliest {
                Some(t) => {
                    warnings.general(
                        "no_audio_start",
                        "audio_recording_started_at is missing: session time 0 is the earliest \
                         timestamp in the report, and a recording given with --audio is assumed \
                         to start there",
                        json!({"t0_unix_ns": t}),
                    );
                    t
                }
                None => {
                    warnings.general(
                        "no_timestamps",
                        "the report holds no valid unix timestamp: times are unknown and all \
                         records sit at 0",
                        Value::Null,
                    );
                    0
                }
            }
        }
    };
    let mut m = Mapper {
        clock: SessionClock::new(t0),
        warnings,
        records: Vec::new(),
        turns: Vec::new(),
        cur: None,
        next_turn: 1,
        cursor: 0,
        user_spans: Vec::new(),
        agent_spans: Vec::new(),
        used_user_spans: BTreeSet::new(),
        used_agent_spans: BTreeSet::new(),
        pending_calls: Vec::new(),
        user_texts: Vec::new(),
        languages: Vec::new(),
        unknown_fields: BTreeMap::new(),
    };
    m.note_unknown_keys("report", root, TOP_LEVEL_KEYS);

    let events = parse_events(root.get("events"), &mut m);
    m.speaking_spans(&events);
    m.languages = final_languages(&events);

    let items = chat_items(root.get("chat_history"), &mut m.warnings);
    for item in &items {
        m.chat_item(item);
    }
    m.finish_turn();
    m.unmatched_calls();

    // events name the turn they fall in (turn membership, SPEC §7)
    let starts = TurnTimeline::new(m.turns.iter().map(|t| (t.1, t.0)));
    let mut session_end = None;
    for ev in &events {
        m.event(ev, &starts, &mut session_end);
    }

    // the rest of the report, so nothing is lost
    let mut report_attrs = Attributes::new();
    for (k, v) in root {
        if k != "events" && k != "chat_history" {
            report_attrs.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Object(ch)) = root.get("chat_history") {
        for (k, v) in ch {
            if k != "items" {
                report_attrs.insert(format!("chat_history.{k}"), v.clone());
            }
        }
    }
    m.records.push(TimedRecord::new(
        0,
        Record::Event(Event {
            turn: None,
            name: "livekit_report".into(),
            attributes: report_attrs,
        }),
    ));
    let last_ns = m.records.iter().map(|r| r.time_ns).max().unwrap_or(0);
    if let Some(usage) = root.get("usage").filter(|u| !u.is_null()) {
        // one record per model where the report lists usage per model (1.x: a list of
        // {type, provider, model, ...}), else one for the whole
        let per_model: Vec<Usage> = match usage.as_array() {
            Some(list) if list.iter().all(Value::is_object) => {
                list.iter().filter_map(usage_from).collect()
            }
            _ => Vec::new(),
        };
        let whole = if per_model.is_empty() {
            usage_from(usage)
        } else {
            None
        };
        let found = !per_model.is_empty() || whole.is_some();
        for u in per_model.into_iter().chain(whole) {
            m.records.push(TimedRecord::new(last_ns, Record::Usage(u)));
        }
        match found {
            true => {}
            false => m.warnings.general(
                "usage_not_understood",
                "`usage` has no token, character or audio-duration counts this importer \
                 recognizes; it is kept in the livekit_report event",
                Value::Null,
            ),
        }
    }
    let user_messages = items
        .iter()
        .filter(|i| {
            i.get("type").and_then(Value::as_str) == Some("message")
                && i.get("role").and_then(Value::as_str) == Some("user")
        })
        .count();
    if let Some(n) = root.get("user_turns").and_then(Value::as_u64) {
        if n != user_messages as u64 {
            m.warnings.general(
                "user_turns_mismatch",
                format!(
                    "the report counts {n} user turns but its chat history holds \
                     {user_messages} user messages"
                ),
                json!({"user_turns": n, "user_messages": user_messages}),
            );
        }
    }
    if let Some((t, end)) = session_end {
        m.records
            .push(TimedRecord::new(t.max(last_ns), Record::SessionEnd(end)));
    }
    if !m.unknown_fields.is_empty() {
        let details: Map<String, Value> = m
            .unknown_fields
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        m.warnings.general(
            "unknown_fields",
            format!(
                "fields this importer does not know (a newer SDK?) were kept as attributes: {}",
                m.unknown_fields
                    .iter()
                    .map(|(k, v)| format!(
                        "{k}: {}",
                        v.iter().cloned().collect::<Vec<_>>().join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Value::Object(details),
        );
    }
    let (clamped, earliest) = m.clock.clamped();
    if clamped > 0 {
        m.warnings.general(
            "times_before_start",
            format!(
                "{clamped} timestamps lie before session time 0 (up to {:.3} s before the \
                 recording started) and were placed at 0",
                -earliest as f64 / 1e9
            ),
            json!({"count": clamped, "earliest_ns": earliest}),
        );
    }

    let header = header(root, &m.clock, source_name);
    let audio_hint = root
        .get("audio_recording_path")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let audio_start_ns = audio_start.map_or(0, |a| m.clock.offset_ns(a));
    Ok(ImportedCall {
        header,
        records: m.records,
        warnings: m.warnings.into_vec(),
        audio_start_ns,
        audio_hint,
    })
}

fn header(root: &Map<String, Value>, clock: &SessionClock, source_name: &str) -> Header {
    let s = |k: &str| match root.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut tags = Attributes::new();
    tags.insert("imported_from".into(), json!("livekit"));
    if !source_name.is_empty() {
        tags.insert("import_source".into(), json!(source_name));
    }
    for k in [
        "sdk_version",
        "room",
        "room_id",
        "job_id",
        "agent_name",
        "close_reason",
    ] {
        if let Some(v) = s(k) {
            tags.insert(format!("livekit.{k}"), json!(v));
        }
    }
    if let Some(Value::Array(t)) = root
        .get("tags")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        tags.insert("livekit.tags".into(), Value::Array(t.clone()));
    }
    let id = s("job_id")
        .or_else(|| s("room_id"))
        .or_else(|| s("room").map(|r| format!("{r}-{}", clock.t0_unix_ns() / 1_000_000_000)))
        .unwrap_or_else(|| format!("livekit-{}", clock.t0_unix_ns() / 1_000_000_000));
    Header {
        session_id: sanitize_session_id(&id),
        started_at: clock.started_at(),
        started_at_unix_ns: clock.t0_unix_ns(),
        agent: AgentInfo {
            name: "livekit-agents".into(),
            version: s("sdk_version").unwrap_or_default(),
        },
        environment: None,
        tags,
        tracks: Vec::new(),
    }
}

/// The earliest plausible unix timestamp (ns) anywhere in the report.
fn earliest_timestamp(v: &Value) -> Option<i64> {
    fn walk(v: &Value, key: &str, best: &mut Option<i64>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, k, best);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, best)),
            _ => {
                let time_key = key.ends_with("_at") || key == "timestamp";
                if let Some(t) = unix_ns(v).filter(|_| time_key) {
                    *best = Some(best.map_or(t, |b: i64| b.min(t)));
                }
            }
        }
    }
    let mut best = None;
    walk(v, "", &mut best);
    best
}

/// One report event, on the session clock.
struct LkEvent {
    kind: String,
    time_ns: u64,
    raw: Map<String, Value>,
}

fn parse_events(v: Option<&Value>, m: &mut Mapper) -> Vec<LkEvent> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Some(list) = v.as_array() else {
        m.warnings.general(
            "bad_events",
            "`events` is not a list; kept in the livekit_report event",
            Value::Null,
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    let mut untimed = 0u32;
    for e in list {
        let Some(obj) = e.as_object() else {
            m.warnings.general(
                "bad_event",
                "an event is not a JSON object; kept raw",
                e.clone(),
            );
            out.push(LkEvent {
                kind: "livekit_event".into(),
                time_ns: m.cursor,
                raw: as_attributes(json!({"raw": e})),
            });
            continue;
        };
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("livekit_event")
            .to_string();
        let time_ns = match obj.get("created_at").and_then(unix_ns) {
            Some(t) => m.clock.at(t),
            None => {
                untimed += 1;
                out.last().map_or(0, |p: &LkEvent| p.time_ns)
            }
        };
        out.push(LkEvent {
            kind,
            time_ns,
            raw: obj.clone(),
        });
    }
    if untimed > 0 {
        m.warnings.general(
            "event_without_time",
            format!(
                "{untimed} events have no valid created_at; placed at the previous event's time"
            ),
            json!({"count": untimed}),
        );
    }
    out.sort_by_key(|e| e.time_ns);
    out
}

fn final_languages(events: &[LkEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e.kind == "user_input_transcribed")
        .filter(|e| e.raw.get("is_final").and_then(Value::as_bool) == Some(true))
        .filter_map(|e| {
            let text = e.raw.get("transcript").and_then(Value::as_str)?;
            let lang = e.raw.get("language").and_then(Value::as_str)?;
            (!lang.is_empty()).then(|| (normalize(text), lang.to_string()))
        })
        .collect()
}

fn chat_items(v: Option<&Value>, warnings: &mut Warnings) -> Vec<Map<String, Value>> {
    let items = match v {
        Some(Value::Object(ch)) => ch.get("items"),
        // tolerate a bare list
        Some(Value::Array(_)) => v,
        _ => None,
    };
    match items {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|i| match i {
                Value::Object(o) => Some(o.clone()),
                other => {
                    warnings.general(
                        "bad_chat_item",
                        "a chat item is not a JSON object; kept in an import_warning",
                        other.clone(),
                    );
                    None
                }
            })
            .collect(),
        _ => {
            warnings.general(
                "no_chat_history",
                "the report has no chat_history.items: no turns, transcripts or metrics",
                Value::Null,
            );
            Vec::new()
        }
    }
}

/// The turn being built.
struct OpenTurn {
    id: TurnId,
    speaker: Speaker,
    records: Vec<TimedRecord>,
    has_agent: bool,
    tool_since_agent: bool,
    /// End of the user's speech.
    user_stop: Option<u64>,
    /// When the LLM request of the first step went out (commit + on_user_turn_completed).
    llm_anchor: Option<u64>,
    last_tool_end: Option<u64>,
    interrupted: bool,
    reported_e2e_ns: Option<i64>,
}

impl OpenTurn {
    fn push(&mut self, time_ns: u64, r: Record) {
        self.records.push(TimedRecord::new(time_ns, r));
    }
}

struct PendingCall {
    call_id: Option<String>,
    name: String,
    arguments: Value,
    start_ns: u64,
    turn: TurnId,
    attributes: Attributes,
    done: bool,
}

struct Mapper {
    clock: SessionClock,
    warnings: Warnings,
    records: Vec<TimedRecord>,
    /// (start_ns, id) of finished turns.
    turns: Vec<(u64, TurnId)>,
    cur: Option<OpenTurn>,
    next_turn: TurnId,
    /// Latest time seen while walking the chat history.
    cursor: u64,
    user_spans: Vec<(u64, Option<u64>)>,
    agent_spans: Vec<(u64, Option<u64>)>,
    used_user_spans: BTreeSet<usize>,
    used_agent_spans: BTreeSet<usize>,
    pending_calls: Vec<PendingCall>,
    /// Final user message texts (normalized), for matching transcription events.
    user_texts: Vec<String>,
    /// (normalized text, language) of the final `user_input_transcribed` events: the chat
    /// message of a user turn does not carry its language.
    languages: Vec<(String, String)>,
    unknown_fields: BTreeMap<String, BTreeSet<String>>,
}

/// `metrics.<key>` (`{"model_name", "model_provider"}`, LiveKit's `*_metadata`) on a stage.
fn set_model(s: &mut StageTiming, metrics: &Map<String, Value>, key: &str) {
    let Some(m) = metrics.get(key).and_then(Value::as_object) else {
        return;
    };
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && *v != "unknown")
            .map(String::from)
    };
    s.model = text("model_name");
    s.provider = text("model_provider");
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn message_text(content: Option<&Value>) -> (String, Vec<Value>) {
    let mut text = Vec::new();
    let mut other = Vec::new();
    match content {
        Some(Value::String(s)) => text.push(s.clone()),
        Some(Value::Array(parts)) => {
            for p in parts {
                match p {
                    Value::String(s) => text.push(s.clone()),
                    Value::Object(o) if o.get("text").is_some_and(Value::is_string) => {
                        text.push(o["text"].as_str().unwrap_or_default().to_string())
                    }
                    other_part => other.push(other_part.clone()),
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(v) => other.push(v.clone()),
    }
    (text.join(" ").trim().to_string(), other)
}

impl Mapper {
    fn note_unknown_keys(&mut self, place: &str, obj: &Map<String, Value>, known: &[&str]) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.unknown_fields
                    .entry(place.to_string())
                    .or_default()
                    .insert(k.clone());
            }
        }
    }

    fn time(&mut self, v: Option<&Value>) -> Option<u64> {
        v.and_then(unix_ns).map(|t| self.clock.at(t))
    }

    /// A delay metric in ns; odd values warn and come back as `None`.
    fn delay(
        &mut self,
        metrics: &Map<String, Value>,
        key: &str,
        turn: Option<TurnId>,
        at: u64,
    ) -> Option<u64> {
        let v = metrics.get(key).filter(|v| !v.is_null())?;
        match delay_ns(v) {
            Ok(ns) => Some(ns),
            Err(bad) => {
                let what = match bad {
                    clock::BadDelay::NotANumber => "is not a number".to_string(),
                    clock::BadDelay::Negative(s) => format!("is negative ({s} s)"),
                    clock::BadDelay::Absurd(s) => format!("is absurd ({s} s > 60 s)"),
                };
                self.warnings.push(
                    bad.code(),
                    at,
                    turn,
                    format!("metrics.{key} {what}; the stage it times was left out (the raw value is kept in the transcript's attributes)"),
                    json!({"metric": key, "value": v}),
                );
                None
            }
        }
    }

    fn speaking_spans(&mut self, events: &[LkEvent]) {
        for (kind, spans) in [
            ("user_state_changed", &mut self.user_spans),
            ("agent_state_changed", &mut self.agent_spans),
        ] {
            let mut open: Option<u64> = None;
            for e in events.iter().filter(|e| e.kind == kind) {
                let new = e.raw.get("new_state").and_then(Value::as_str);
                let old = e.raw.get("old_state").and_then(Value::as_str);
                if new == Some("speaking") {
                    if let Some(s) = open.take() {
                        spans.push((s, None));
                    }
                    open = Some(e.time_ns);
                } else if old == Some("speaking") || open.is_some() {
                    if let Some(s) = open.take() {
                        spans.push((s, Some(e.time_ns)));
                    }
                }
            }
            if let Some(s) = open {
                spans.push((s, None));
            }
        }
    }

    fn open_turn(&mut self, speaker: Speaker) -> &mut OpenTurn {
        self.finish_turn();
        let id = self.next_turn;
        self.next_turn += 1;
        self.cur.insert(OpenTurn {
            id,
            speaker,
            records: Vec::new(),
            has_agent: false,
            tool_since_agent: false,
            user_stop: None,
            llm_anchor: None,
            last_tool_end: None,
            interrupted: false,
            reported_e2e_ns: None,
        })
    }

    fn finish_turn(&mut self) {
        let Some(t) = self.cur.take() else { return };
        let mut start = u64::MAX;
        let mut end = 0u64;
        for r in &t.records {
            let (a, b) = match &r.record {
                Record::StageTiming(s) => (s.start_ns.min(r.time_ns), s.end_ns.max(r.time_ns)),
                Record::ToolCall(c) => (c.start_ns.min(r.time_ns), c.end_ns.max(r.time_ns)),
                Record::Transcript(tr) => (
                    tr.start_ns.unwrap_or(r.time_ns).min(r.time_ns),
                    tr.end_ns.unwrap_or(r.time_ns).max(r.time_ns),
                ),
                _ => (r.time_ns, r.time_ns),
            };
            start = start.min(a);
            end = end.max(b);
        }
        if start == u64::MAX {
            start = self.cursor;
            end = self.cursor;
        }
        let mut attributes = Attributes::new();
        if t.interrupted {
            attributes.insert("interrupted".into(), json!(true));
        }
        if let Some(e2e) = t.reported_e2e_ns {
            attributes.insert("reported_e2e_ns".into(), json!(e2e));
        }
        self.records.push(TimedRecord::new(
            start,
            Record::TurnStart(TurnStart {
                turn: t.id,
                speaker: t.speaker,
                attributes: Attributes::new(),
            }),
        ));
        self.records.extend(t.records);
        self.records.push(TimedRecord::new(
            end,
            Record::TurnEnd(TurnEnd {
                turn: t.id,
                speaker: Some(if t.has_agent {
                    Speaker::Agent
                } else {
                    Speaker::User
                }),
                attributes,
            }),
        ));
        self.turns.push((start, t.id));
        self.cursor = self.cursor.max(end);
    }

    fn chat_item(&mut self, item: &Map<String, Value>) {
        let created = self.time(item.get("created_at"));
        if let Some(c) = created {
            self.cursor = self.cursor.max(c);
        }
        let kind =
            item.get("type")
                .and_then(Value::as_str)
                .unwrap_or(if item.contains_key("role") {
                    "message"
                } else {
                    ""
                });
        match kind {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("");
                match role {
                    "user" => self.user_message(item, created),
                    "assistant" => self.agent_message(item, created),
                    _ => self.context_message(item, created, role),
                }
            }
            "function_call" => self.function_call(item, created),
            "function_call_output" => self.function_output(item, created),
            "agent_handoff" => {
                let at = created.unwrap_or(self.cursor);
                let mut attributes = Attributes::new();
                attributes.insert(
                    "old_agent".into(),
                    item.get("old_agent_id").cloned().unwrap_or(Value::Null),
                );
                attributes.insert(
                    "new_agent".into(),
                    item.get("new_agent_id").cloned().unwrap_or(Value::Null),
                );
                for (k, v) in item {
                    if !matches!(
                        k.as_str(),
                        "type" | "old_agent_id" | "new_agent_id" | "created_at"
                    ) {
                        attributes.insert(k.clone(), v.clone());
                    }
                }
                self.event_in_turn(at, "handoff", attributes);
            }
            "agent_config_update" => {
                // the agent's instructions / tools changed (a handoff, update_instructions)
                let at = created.unwrap_or(self.cursor);
                let mut attributes = item.clone();
                attributes.remove("type");
                attributes.remove("created_at");
                self.event_in_turn(at, "agent_config_update", attributes);
            }
            other => {
                let at = created.unwrap_or(self.cursor);
                let turn = self.cur.as_ref().map(|t| t.id);
                self.warnings.push(
                    "unknown_chat_item",
                    at,
                    turn,
                    format!(
                        "chat item type {other:?} is unknown; kept as a livekit_chat_item event"
                    ),
                    json!({"type": other}),
                );
                self.event_in_turn(at, "livekit_chat_item", item.clone());
            }
        }
    }

    fn event_in_turn(&mut self, at: u64, name: &str, attributes: Attributes) {
        let rec = Record::Event(Event {
            turn: self.cur.as_ref().map(|t| t.id),
            name: name.into(),
            attributes,
        });
        match self.cur.as_mut() {
            Some(t) => t.push(at, rec),
            None => self.records.push(TimedRecord::new(at, rec)),
        }
    }

    /// A system or developer message: context, not speech. Kept as an event.
    fn context_message(&mut self, item: &Map<String, Value>, created: Option<u64>, role: &str) {
        let at = created.unwrap_or(self.cursor);
        let mut attrs = item.clone();
        attrs.insert("role".into(), json!(role));
        self.event_in_turn(at, "chat_message", attrs);
    }

    fn message_attributes(
        &mut self,
        item: &Map<String, Value>,
        other_parts: Vec<Value>,
    ) -> Attributes {
        self.note_unknown_keys("message", item, MESSAGE_KEYS);
        let mut a = Attributes::new();
        for (k, v) in item {
            match k.as_str() {
                "type"
                | "role"
                | "content"
                | "interrupted"
                | "transcript_confidence"
                | "created_at" => {}
                "id" => {
                    a.insert("message_id".into(), v.clone());
                }
                "extra" if v.as_object().is_some_and(|o| o.is_empty()) || v.is_null() => {}
                "metrics" => {
                    if let Some(m) = v.as_object() {
                        self.note_unknown_keys("message.metrics", m, METRIC_KEYS);
                    }
                    a.insert("metrics".into(), v.clone());
                }
                _ => {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
        if !other_parts.is_empty() {
            a.insert("content_parts".into(), Value::Array(other_parts));
        }
        a
    }

    fn metrics_of(
        &mut self,
        item: &Map<String, Value>,
        turn: TurnId,
        at: u64,
    ) -> Map<String, Value> {
        match item.get("metrics") {
            Some(Value::Object(m)) if !m.is_empty() => m.clone(),
            _ => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or("?");
                self.warnings.push(
                    "missing_metrics",
                    at,
                    Some(turn),
                    format!("the {role} message has no metrics: its stages are missing from the latency breakdown"),
                    json!({"message_id": item.get("id")}),
                );
                Map::new()
            }
        }
    }

    /// Takes the user speaking span that ended last before `before`, unused so far.
    fn user_span_before(&mut self, before: u64) -> Option<(u64, u64)> {
        let tolerance = 1_000_000_000;
        let i = (0..self.user_spans.len()).rev().find(|&i| {
            !self.used_user_spans.contains(&i)
                && self.user_spans[i]
                    .1
                    .is_some_and(|e| e <= before.saturating_add(tolerance))
        })?;
        self.used_user_spans.insert(i);
        let (s, e) = self.user_spans[i];
        Some((s, e.unwrap_or(s)))
    }

    /// Takes the first agent speaking span starting at or after `after`, unused so far.
    fn agent_span_after(&mut self, after: u64) -> Option<(u64, Option<u64>)> {
        let i = (0..self.agent_spans.len())
            .find(|&i| !self.used_agent_spans.contains(&i) && self.agent_spans[i].0 >= after)?;
        self.used_agent_spans.insert(i);
        Some(self.agent_spans[i])
    }

    fn user_message(&mut self, item: &Map<String, Value>, created: Option<u64>) {
        let id = self.open_turn(Speaker::User).id;
        let at = created.unwrap_or(self.cursor);
        let metrics = self.metrics_of(item, id, at);
        let (text, other) = message_text(item.get("content"));
        let mut attributes = self.message_attributes(item, other);
        let mut started = self.time(metrics.get("started_speaking_at"));
        let mut stopped = self.time(metrics.get("stopped_speaking_at"));
        if stopped.is_none() {
            if let Some((s, e)) = created.and_then(|c| self.user_span_before(c)) {
                started = started.or(Some(s));
                stopped = Some(e);
                attributes.insert("speaking_times_from".into(), json!("user_state_changed"));
                self.warnings.push(
                    "speaking_times_from_events",
                    e,
                    Some(id),
                    "the user message has no started/stopped_speaking_at: taken from user_state_changed events",
                    Value::Null,
                );
            }
        }
        let eot = self.delay(&metrics, "end_of_turn_delay", Some(id), at);
        let td = self.delay(&metrics, "transcription_delay", Some(id), at);
        let outc = self.delay(&metrics, "on_user_turn_completed_delay", Some(id), at);
        let turn = self.cur.as_mut().expect("turn just opened");
        turn.user_stop = stopped;
        if let (Some(s), Some(e)) = (started, stopped) {
            if s <= e {
                turn.push(
                    e,
                    Record::StageTiming(StageTiming::new(Some(id), Stage::Vad, s, e)),
                );
            }
        }
        let mut committed = None;
        if let Some(stop) = stopped {
            if let Some(d) = eot {
                committed = Some(stop + d);
                let s = StageTiming::new(Some(id), Stage::Eou, stop, stop + d);
                turn.push(stop + d, Record::StageTiming(s));
            }
            if let Some(d) = td {
                let mut s = StageTiming::new(Some(id), Stage::Stt, stop, stop + d);
                set_model(&mut s, &metrics, "stt_metadata");
                turn.push(stop + d, Record::StageTiming(s));
            }
            if let (Some(c), Some(d)) = (committed, outc) {
                let s = StageTiming::new(
                    Some(id),
                    Stage::Custom("on_user_turn_completed".into()),
                    c,
                    c + d,
                );
                turn.push(c + d, Record::StageTiming(s));
            }
        }
        turn.llm_anchor = committed.map(|c| c + outc.unwrap_or(0));
        let when = match (stopped, td) {
            (Some(s), Some(d)) => s + d,
            _ => created.or(stopped).unwrap_or(at),
        };
        let confidence = item
            .get("transcript_confidence")
            .and_then(clock::number)
            .filter(|c| (0.0..=1.0).contains(c));
        let norm = normalize(&text);
        let language = self
            .languages
            .iter()
            .find(|(t, _)| !t.is_empty() && norm.contains(t.as_str()))
            .map(|(_, l)| l.clone());
        self.user_texts.push(norm);
        let turn = self.cur.as_mut().expect("turn just opened");
        turn.push(
            when,
            Record::Transcript(Transcript {
                turn: Some(id),
                speaker: Speaker::User,
                text,
                is_final: true,
                confidence,
                language,
                interrupted: item.get("interrupted").and_then(Value::as_bool) == Some(true),
                heard_text: None,
                start_ns: started,
                end_ns: stopped,
                attributes,
            }),
        );
    }

    fn agent_message(&mut self, item: &Map<String, Value>, created: Option<u64>) {
        let joins = self
            .cur
            .as_ref()
            .is_some_and(|t| !t.has_agent || t.tool_since_agent);
        if !joins {
            self.open_turn(Speaker::Agent);
        }
        let turn = self.cur.as_ref().expect("a turn is open");
        let id = turn.id;
        let first_in_turn = !turn.has_agent;
        let anchor = if turn.tool_since_agent {
            turn.last_tool_end
        } else if first_in_turn {
            turn.llm_anchor
        } else {
            None
        };
        let span_after = turn.user_stop.or(turn.last_tool_end).or(turn.llm_anchor);
        let at = created.unwrap_or(self.cursor);
        let metrics = self.metrics_of(item, id, at);
        let (text, other) = message_text(item.get("content"));
        let mut attributes = self.message_attributes(item, other);
        let interrupted = item.get("interrupted").and_then(Value::as_bool) == Some(true);
        let mut started = self.time(metrics.get("started_speaking_at"));
        let mut stopped = self.time(metrics.get("stopped_speaking_at"));
        if started.is_none() {
            let after = span_after.unwrap_or(self.cursor.min(at));
            if let Some((s, e)) = self.agent_span_after(after) {
                started = Some(s);
                stopped = stopped.or(e);
                attributes.insert("speaking_times_from".into(), json!("agent_state_changed"));
                self.warnings.push(
                    "speaking_times_from_events",
                    s,
                    Some(id),
                    "the assistant message has no started_speaking_at: taken from agent_state_changed events",
                    Value::Null,
                );
            }
        }
        let ttft = self.delay(&metrics, "llm_node_ttft", Some(id), at);
        let ttfb = self.delay(&metrics, "tts_node_ttfb", Some(id), at);
        let ttfs = self.delay(&metrics, "llm_node_ttfs", Some(id), at);
        let playback_latency = self.delay(&metrics, "playback_latency", Some(id), at);
        let reported = metrics.get("e2e_latency").filter(|v| !v.is_null());
        let reported_ns = reported.and_then(clock::number).map(clock::seconds_to_ns);
        if let Some(v) = reported {
            if let Err(bad) = delay_ns(v) {
                self.warnings.push(
                    bad.code(),
                    at,
                    Some(id),
                    "metrics.e2e_latency is negative, absurd or not a number; kept as reported_e2e_ns where numeric",
                    json!({"metric": "e2e_latency", "value": v}),
                );
            }
        }
        // where the LLM request went out: forward from the commit (or the last tool output),
        // else backward from the first audible audio
        let (llm_start, placed_back) = match (anchor, started) {
            (Some(a), _) => (Some(a), false),
            (None, Some(pb)) => (
                Some(pb.saturating_sub(ttfb.unwrap_or(0) + ttft.unwrap_or(0))),
                true,
            ),
            (None, None) => (None, false),
        };
        let turn = self.cur.as_mut().expect("a turn is open");
        if let (Some(start), Some(t)) = (llm_start, ttft) {
            let mut s = StageTiming::new(Some(id), Stage::Llm, start, start + t);
            s.ttft_ns = Some(t);
            s.attributes
                .insert("end_is_first_token".into(), json!(true));
            set_model(&mut s, &metrics, "llm_metadata");
            if let Some(f) = ttfs {
                // LLM start until the first sentence reached the TTS
                s.attributes.insert("ttfs_ns".into(), json!(f));
            }
            if let Some(tps) = metrics.get("llm_node_tps").and_then(clock::number) {
                s.attributes.insert("tokens_per_second".into(), json!(tps));
            }
            if let Some(ids) = metrics.get("provider_request_ids").filter(|v| !v.is_null()) {
                s.attributes
                    .insert("provider_request_ids".into(), ids.clone());
            }
            if placed_back {
                s.attributes
                    .insert("start_estimated".into(), json!("before_playback"));
            }
            turn.push(start + t, Record::StageTiming(s));
        }
        let tts_start = match (llm_start, ttft) {
            (Some(s), Some(t)) => Some(s + t),
            (Some(s), None) if !placed_back => Some(s),
            _ => started.map(|pb| pb.saturating_sub(ttfb.unwrap_or(0))),
        };
        if let (Some(start), Some(b)) = (tts_start, ttfb) {
            let mut s = StageTiming::new(Some(id), Stage::Tts, start, start + b);
            s.ttfb_ns = Some(b);
            s.cancelled = interrupted;
            s.attributes.insert("end_is_first_byte".into(), json!(true));
            set_model(&mut s, &metrics, "tts_metadata");
            turn.push(start + b, Record::StageTiming(s));
        }
        if let (Some(pb), Some(d)) = (started, playback_latency) {
            // from forwarding the first audio frame until the output reported playback
            let s = StageTiming::new(
                Some(id),
                Stage::Custom("playback_latency".into()),
                pb.saturating_sub(d),
                pb,
            );
            turn.push(pb, Record::StageTiming(s));
        }
        if let Some(pb) = started {
            let end = stopped.filter(|&e| e >= pb);
            let mut s = StageTiming::new(Some(id), Stage::Playback, pb, end.unwrap_or(pb));
            s.cancelled = interrupted;
            if end.is_none() {
                s.attributes.insert("end_unknown".into(), json!(true));
            }
            turn.push(end.unwrap_or(pb), Record::StageTiming(s));
        }
        if interrupted {
            turn.interrupted = true;
            let cut = stopped.or(created).unwrap_or(at);
            let mut a = Attributes::new();
            a.insert(
                "message_id".into(),
                item.get("id").cloned().unwrap_or(Value::Null),
            );
            a.insert("text_chars".into(), json!(text.chars().count()));
            a.insert(
                "note".into(),
                json!("LiveKit keeps of an interrupted message the text forwarded until the cut (what was heard when the output synchronizes its transcript, as RoomIO does); it is the transcript's heard_text"),
            );
            turn.push(
                cut,
                Record::Event(Event {
                    turn: Some(id),
                    name: "interruption".into(),
                    attributes: a,
                }),
            );
        }
        if turn.reported_e2e_ns.is_none() {
            turn.reported_e2e_ns = reported_ns;
        }
        turn.has_agent = true;
        turn.tool_since_agent = false;
        let when = started.or(created).unwrap_or(at);
        let heard_text = interrupted.then(|| text.clone());
        turn.push(
            when,
            Record::Transcript(Transcript {
                turn: Some(id),
                speaker: Speaker::Agent,
                text,
                is_final: true,
                confidence: None,
                language: None,
                interrupted,
                heard_text,
                start_ns: started,
                end_ns: stopped.filter(|&e| started.is_some_and(|s| e >= s)),
                attributes,
            }),
        );
    }

    fn function_call(&mut self, item: &Map<String, Value>, created: Option<u64>) {
        if self.cur.is_none() {
            self.open_turn(Speaker::Agent);
        }
        let turn = self.cur.as_ref().expect("a turn is open").id;
        let arguments = match item.get("arguments") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let mut attributes = Attributes::new();
        for (k, v) in item {
            if !matches!(
                k.as_str(),
                "type" | "call_id" | "name" | "arguments" | "created_at"
            ) {
                attributes.insert(k.clone(), v.clone());
            }
        }
        self.pending_calls.push(PendingCall {
            call_id: item
                .get("call_id")
                .and_then(Value::as_str)
                .map(String::from),
            name: item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            arguments,
            start_ns: created.unwrap_or(self.cursor),
            turn,
            attributes,
            done: false,
        });
    }

    fn function_output(&mut self, item: &Map<String, Value>, created: Option<u64>) {
        let call_id = item.get("call_id").and_then(Value::as_str);
        let end = created.unwrap_or(self.cursor);
        let found = self
            .pending_calls
            .iter_mut()
            .rev()
            .find(|c| !c.done && c.call_id.as_deref() == call_id && call_id.is_some());
        let (name, arguments, start, turn, mut attributes) = match found {
            Some(c) => {
                c.done = true;
                (
                    c.name.clone(),
                    c.arguments.clone(),
                    c.start_ns,
                    c.turn,
                    c.attributes.clone(),
                )
            }
            None => {
                if self.cur.is_none() {
                    self.open_turn(Speaker::Agent);
                }
                let turn = self.cur.as_ref().expect("a turn is open").id;
                self.warnings.push(
                    "orphan_tool_output",
                    end,
                    Some(turn),
                    format!("function_call_output {call_id:?} has no matching function_call; imported with unknown arguments and start"),
                    Value::Null,
                );
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                (name, Value::Null, end, turn, Attributes::new())
            }
        };
        for (k, v) in item {
            if !matches!(
                k.as_str(),
                "type" | "call_id" | "name" | "output" | "is_error" | "created_at"
            ) {
                attributes.insert(format!("output.{k}"), v.clone());
            }
        }
        let end = end.max(start);
        let record = Record::ToolCall(ToolCall {
            turn: Some(turn),
            call_id: call_id.map(String::from),
            name,
            arguments,
            output: item.get("output").cloned().unwrap_or(Value::Null),
            is_error: item.get("is_error").and_then(Value::as_bool) == Some(true),
            start_ns: start,
            end_ns: end,
            attributes,
        });
        match self.cur.as_mut().filter(|t| t.id == turn) {
            Some(t) => {
                t.push(end, record);
                t.tool_since_agent = true;
                t.last_tool_end = Some(t.last_tool_end.map_or(end, |e| e.max(end)));
            }
            None => self.records.push(TimedRecord::new(end, record)),
        }
    }

    fn unmatched_calls(&mut self) {
        for c in std::mem::take(&mut self.pending_calls) {
            if c.done {
                continue;
            }
            self.warnings.push(
                "tool_without_output",
                c.start_ns,
                Some(c.turn),
                format!(
                    "function_call {} ({:?}) has no function_call_output",
                    c.name, c.call_id
                ),
                Value::Null,
            );
            let mut attributes = c.attributes;
            attributes.insert("no_output".into(), json!(true));
            self.records.push(TimedRecord::new(
                c.start_ns,
                Record::ToolCall(ToolCall {
                    turn: Some(c.turn),
                    call_id: c.call_id,
                    name: c.name,
                    arguments: c.arguments,
                    output: Value::Null,
                    is_error: false,
                    start_ns: c.start_ns,
                    end_ns: c.start_ns,
                    attributes,
                }),
            ));
        }
    }

    fn event(
        &mut self,
        ev: &LkEvent,
        starts: &TurnTimeline,
        session_end: &mut Option<(u64, SessionEnd)>,
    ) {
        let turn = starts.turn_at(ev.time_ns);
        let mut attrs = ev.raw.clone();
        attrs.remove("type");
        attrs.remove("created_at");
        let push = |m: &mut Mapper, r: Record| m.records.push(TimedRecord::new(ev.time_ns, r));
        let event = |name: &str, attributes: Attributes| {
            Record::Event(Event {
                turn,
                name: name.into(),
                attributes,
            })
        };
        match ev.kind.as_str() {
            "user_input_transcribed" => {
                let text = attrs
                    .get("transcript")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let is_final = attrs
                    .get("is_final")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let norm = normalize(&text);
                let in_message = is_final
                    && !norm.is_empty()
                    && self.user_texts.iter().any(|u| u.contains(&norm));
                if in_message {
                    // the chat message already holds this text as the turn's final transcript
                    push(self, event("user_input_transcribed", attrs));
                    return;
                }
                let language = attrs
                    .get("language")
                    .and_then(Value::as_str)
                    .filter(|l| !l.is_empty())
                    .map(String::from);
                let mut rest = attrs;
                rest.remove("transcript");
                rest.remove("is_final");
                rest.remove("language");
                if is_final {
                    rest.insert("not_in_chat_history".into(), json!(true));
                }
                push(
                    self,
                    Record::Transcript(Transcript {
                        turn,
                        speaker: Speaker::User,
                        text,
                        is_final,
                        confidence: None,
                        language,
                        interrupted: false,
                        heard_text: None,
                        start_ns: None,
                        end_ns: None,
                        attributes: rest,
                    }),
                );
            }
            "error" => {
                let err = attrs.get("error");
                let message = err
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| err.and_then(Value::as_str).map(String::from))
                    .or_else(|| {
                        attrs
                            .get("message")
                            .and_then(Value::as_str)
                            .map(String::from)
                    })
                    .or_else(|| err.and_then(sdk_error_text))
                    .unwrap_or_else(|| err.map(|e| e.to_string()).unwrap_or_default());
                // 1.x: the error is {type: "llm_error", label, recoverable, timestamp} (the
                // exception itself is not serialized) and the source {model, provider}
                let kind = err
                    .and_then(|e| e.get("type"))
                    .and_then(Value::as_str)
                    .and_then(|t| t.strip_suffix("_error"));
                let source = match attrs.get("source") {
                    _ if kind.is_some() => json!(kind),
                    Some(Value::String(s)) => json!(s),
                    Some(Value::Object(o)) => o
                        .get("type")
                        .or_else(|| o.get("label"))
                        .cloned()
                        .unwrap_or_else(|| json!("unknown")),
                    Some(other) => other.clone(),
                    None => json!("unknown"),
                };
                let mut a = Attributes::new();
                a.insert("message".into(), json!(message));
                a.insert("source".into(), source);
                if let Some(r) = err
                    .and_then(|e| e.get("recoverable"))
                    .filter(|r| r.is_boolean())
                {
                    a.insert("recoverable".into(), r.clone());
                }
                for (k, v) in attrs {
                    a.entry(format!("livekit.{k}")).or_insert(v);
                }
                push(self, event("error", a));
            }
            "close" => {
                let raw_reason = attrs
                    .get("reason")
                    .map(|r| match r {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                let reason = close_reason(&raw_reason);
                *session_end = Some((
                    ev.time_ns,
                    SessionEnd {
                        reason,
                        outcome: None,
                    },
                ));
                push(self, event("close", attrs));
            }
            known if KNOWN_EVENTS.contains(&known) => push(self, event(known, attrs)),
            unknown => {
                let first = !self.records.iter().any(|r| {
                    matches!(&r.record, Record::Event(e) if e.name == unknown
                        && e.attributes.get("livekit_unknown_type").is_some())
                });
                if first {
                    self.warnings.push(
                        "unknown_event_type",
                        ev.time_ns,
                        turn,
                        format!("event type {unknown:?} is unknown (a newer SDK?); kept as an event of that name with its raw fields"),
                        json!({"type": unknown}),
                    );
                }
                attrs.insert("livekit_unknown_type".into(), json!(true));
                push(self, event(unknown, attrs));
            }
        }
    }
}

/// The text of a 1.x SDK error (`LLMError`, `STTError`, ... dumped without their
/// exception): what failed, where, and whether LiveKit retried.
fn sdk_error_text(err: &Value) -> Option<String> {
    let kind = err.get("type")?.as_str()?;
    let label = err.get("label").and_then(Value::as_str).unwrap_or("?");
    let recoverable = match err.get("recoverable").and_then(Value::as_bool) {
        Some(true) => " (recoverable: retried)",
        Some(false) => " (unrecoverable)",
        None => "",
    };
    Some(format!("{kind} in {label}{recoverable}"))
}

/// LiveKit close reasons to the calltape vocabulary; unknown reasons are kept as they are.
fn close_reason(raw: &str) -> String {
    let r = raw.rsplit('.').next().unwrap_or(raw).to_ascii_lowercase();
    match r.as_str() {
        "participant_disconnected" => "user_hangup",
        "user_initiated" | "task_completed" => "agent_hangup",
        "job_shutdown" => "shutdown",
        "error" => "error",
        "" => "unknown",
        _ => return r,
    }
    .to_string()
}

/// Token, character and audio-second counts found anywhere in LiveKit's `usage` by key name.
fn usage_from(v: &Value) -> Option<Usage> {
    #[derive(Default)]
    struct Acc {
        u: Usage,
        found: bool,
        models: BTreeSet<String>,
        providers: BTreeSet<String>,
    }
    fn walk(v: &Value, path: &str, acc: &mut Acc) {
        match v {
            Value::Object(m) => {
                let kind = m
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("model" | "model_name", Value::String(s)) => {
                            acc.models.insert(s.clone());
                        }
                        ("provider" | "model_provider", Value::String(s)) => {
                            acc.providers.insert(s.clone());
                        }
                        _ => walk(x, &format!("{path}.{kind}.{k}"), acc),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, path, acc)),
            _ => {
                let Some(n) = clock::number(v).filter(|n| *n >= 0.0) else {
                    return;
                };
                let key = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
                let p = path.to_ascii_lowercase();
                let int = n.round() as u64;
                let u = &mut acc.u;
                if key.contains("cached") && key.contains("token") {
                    u.cached_tokens += int;
                } else if key.ends_with("prompt_tokens") || key.ends_with("input_tokens") {
                    u.prompt_tokens += int;
                } else if key.ends_with("completion_tokens") || key.ends_with("output_tokens") {
                    u.completion_tokens += int;
                } else if key.contains("characters") {
                    u.tts_characters += int;
                } else if key.contains("audio_duration") && p.contains("stt") {
                    u.stt_audio_seconds += n;
                } else if key.contains("audio_duration") && p.contains("tts") {
                    u.tts_audio_seconds += n;
                } else {
                    return;
                }
                acc.found = true;
            }
        }
    }
    let mut acc = Acc::default();
    walk(v, "", &mut acc);
    if !acc.found {
        return None;
    }
    let one = |s: BTreeSet<String>| (s.len() == 1).then(|| s.into_iter().next()).flatten();
    acc.u.model = one(acc.models);
    acc.u.provider = one(acc.providers);
    Some(acc.u)
}

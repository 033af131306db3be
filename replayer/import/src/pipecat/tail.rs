//! Pipecat Tail session files (Tail's unreleased main branch, `SessionWriter`): JSON Lines,
//! one `{"t": <unix s>, "message": <wire message>}` per message the Tail app received. A
//! message is an RTVI one (`label: "rtvi-ai"`, from Pipecat's `RTVIObserver`; no time of its
//! own, so `t` places it) or Tail's own (`label: "tail"`, with `timestamp` and `data`: the
//! events of Pipecat's observers dumped as JSON). Each becomes the frame the mapping knows:
//!
//! | message | `data` | frame |
//! |---|---|---|
//! | `tail-pipeline-started` / `-finished` | | `StartFrame` / `EndFrame` |
//! | `tail-speech` (Pipecat's `SpeechEvent`) | `kind`, `timestamp` (when the speech really began or ended), `started_at` | `user_speech_started`/`_stopped` → `VADUser…SpeakingFrame`; `user_turn_started`/`_stopped` → `User…SpeakingFrame`; `bot_speech_started`/`_stopped` → `Bot…SpeakingFrame`; `interruption` → `InterruptionFrame` |
//! | `tail-function-call` (`FunctionCallEvent`) | `kind`, `function_name`, `tool_call_id`, `arguments`, `result`, `error`, `timestamp` | `function_call_in_progress` → `FunctionCallInProgressFrame`; `_completed`/`_failed`/`_timed_out` → `FunctionCallResultFrame` (`error` on failure); `_cancelled` → `FunctionCallCancelFrame` |
//! | `tail-service-latency` (`ServiceLatencyRecord`) | `kind` (`ttfb`, `processing`, `ttfa`, `ttfat`), `processor`, `model`, `seconds`, `timestamp` | `MetricsFrame` with a TTFB (`ttfa`/`ttfat`: its `ttfb_secs`) or processing metric |
//! | `tail-service-usage` (`ServiceUsageRecord`) | `kind` (`llm`, `tts`, `stt`), token counts, `characters`, `audio_seconds` | `MetricsFrame` with the usage metric |
//! | `tail-latency` (`LatencyBreakdown` + `latency_secs`, `first_bot_speech`) | | the latency breakdown |
//! | `tail-error` (`ErrorEvent`) | `message`, `processor`, `processor_usable` | `ErrorFrame` (`fatal` when the processor is no longer usable) |
//! | `tail-turn` | `kind`, `turn`, `was_interrupted` | checked against the mapping's turns (a mismatch is warned about) |
//! | `tail-log` | `level`, `name`, `message` | a `log` record |
//! | RTVI `user-transcription` | `text`, `final`, `user_id` | `TranscriptionFrame` / `InterimTranscriptionFrame` |
//! | RTVI `bot-llm-started` / `-stopped`, `bot-llm-text` | `text` | `LLMFullResponse…Frame`, `LLMTextFrame` |
//! | RTVI `bot-tts-started` / `-stopped`, `bot-tts-text` | `text` | `TTS…Frame`, `TTSTextFrame` (sent as the words are played) |
//!
//! Other messages (RTVI speaking state, which `tail-speech` times better; audio levels; bus
//! and worker messages) are counted per type in one `import_warning`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use calltape_format::{LogLine, Record, TimedRecord};
use serde_json::{json, Map, Value};

use super::event::FrameEvent;
use crate::clock::unix_ns;
use crate::Warnings;

/// Longest line read (bytes); a longer one is skipped with a warning.
const MAX_LINE: u64 = 4 << 20;

/// What a Tail session file holds for the mapping.
#[derive(Debug)]
pub struct TailSession {
    pub t0_unix_ns: i64,
    pub last_unix_ns: i64,
    pub pipecat_version: Option<String>,
    pub frames: Vec<FrameEvent>,
    /// `tail-log` lines, as records (times on the session clock).
    pub logs: Vec<TimedRecord>,
    /// Tail's own turn numbers: (turn, was_interrupted) per `tail-turn` ended message.
    pub tail_turns: Vec<(u64, bool)>,
    pub warnings: Warnings,
}

struct Line {
    unix_ns: i64,
    message: Map<String, Value>,
}

/// Reads a Tail session file.
pub fn read_file(path: &Path) -> Result<TailSession, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    read(BufReader::new(file))
}

/// Reads a Tail session from any reader.
pub fn read(mut input: impl BufRead) -> Result<TailSession, String> {
    let mut warnings = Warnings::default();
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut number = 0usize;
    let mut bad = 0usize;
    loop {
        buf.clear();
        let n = (&mut input)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("line {}: {e}", number + 1))?;
        if n == 0 {
            break;
        }
        number += 1;
        if n as u64 > MAX_LINE && !buf.ends_with(b"\n") {
            // skip the rest of an over-long line
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut input)
                    .take(MAX_LINE)
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| format!("line {number}: {e}"))?;
                if m == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            bad += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        let entry: Value = match serde_json::from_str(text.trim()) {
            Ok(v) => v,
            Err(e) if lines.is_empty() && number == 1 => {
                return Err(format!(
                    "line 1 is not JSON ({e}): is this a Tail session file (JSON Lines)?"
                ))
            }
            Err(_) => {
                bad += 1;
                continue;
            }
        };
        let (Some(t), Some(Value::Object(message))) =
            (entry.get("t").and_then(unix_ns), entry.get("message"))
        else {
            bad += 1;
            continue;
        };
        lines.push(Line {
            unix_ns: t,
            message: message.clone(),
        });
    }
    if bad > 0 {
        warnings.general(
            "tail_bad_lines",
            format!(
                "{bad} line(s) were not {{\"t\": unix seconds, \"message\": {{…}}}} (or longer \
                 than {MAX_LINE} bytes) and were skipped"
            ),
            json!({"count": bad}),
        );
    }
    let Some(t0) = lines.iter().map(|l| l.unix_ns).min() else {
        return Err("no messages with a time (\"t\")".into());
    };
    let last = lines.iter().map(|l| l.unix_ns).max().unwrap_or(t0);
    let mut session = TailSession {
        t0_unix_ns: t0,
        last_unix_ns: last,
        pipecat_version: None,
        frames: Vec::new(),
        logs: Vec::new(),
        tail_turns: Vec::new(),
        warnings,
    };
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for line in &lines {
        if !convert(line, t0, &mut session) {
            let kind = line
                .message
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("(no type)");
            if skipped.len() < 256 || skipped.contains_key(kind) {
                *skipped.entry(kind.to_string()).or_default() += 1;
            }
        }
    }
    if !skipped.is_empty() {
        session.warnings.general(
            "tail_messages_skipped",
            format!(
                "messages with no calltape record were left out: {}",
                skipped
                    .iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!(skipped),
        );
    }
    session.frames.sort_by_key(|f| f.t_ns);
    Ok(session)
}

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A `MetricsFrame`'s fields holding one measurement of `metric` by the service `data` names
/// (its `processor` and `model`).
fn metrics(data: &Map<String, Value>, metric: &str, value: Value) -> Map<String, Value> {
    let get = |k: &str| data.get(k).cloned().unwrap_or(Value::Null);
    let entry = fields(&[
        ("processor", get("processor")),
        ("model", get("model")),
        ("value", value),
        ("metric", json!(metric)),
    ]);
    fields(&[("data", json!([entry]))])
}

/// Adds what `line` says to `session`; false when it has no mapping.
fn convert(line: &Line, t0: i64, session: &mut TailSession) -> bool {
    let m = &line.message;
    let kind = m.get("type").and_then(Value::as_str).unwrap_or_default();
    let data = match m.get("data") {
        Some(Value::Object(d)) => d.clone(),
        _ => Map::new(),
    };
    let get = |k: &str| data.get(k).cloned().unwrap_or(Value::Null);
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default();
    // messages are ordered as the Tail app received them (RTVI ones carry no time of their
    // own); speech moments keep their own time, when the speech really began or ended
    let received = line.unix_ns - t0;
    let at = received;
    let moment = data
        .get("timestamp")
        .and_then(unix_ns)
        .map_or(received, |x| x - t0);
    let mut push = |t: i64, frame: &str, source: &str, f: Map<String, Value>| {
        session.frames.push(FrameEvent::new(t, frame, source, f));
    };
    match kind {
        "tail-ready" => {
            session.pipecat_version = data
                .get("pipecat")
                .and_then(Value::as_str)
                .map(String::from);
        }
        "tail-pipeline-started" => push(at, "StartFrame", "", Map::new()),
        "tail-pipeline-finished" => push(at, "EndFrame", "", Map::new()),
        "tail-speech" => {
            let ts = get("timestamp");
            let frame = match s("kind") {
                "user_speech_started" => "VADUserStartedSpeakingFrame",
                "user_speech_stopped" => "VADUserStoppedSpeakingFrame",
                "user_turn_started" => "UserStartedSpeakingFrame",
                "user_turn_stopped" => "UserStoppedSpeakingFrame",
                "bot_speech_started" => "BotStartedSpeakingFrame",
                "bot_speech_stopped" => "BotStoppedSpeakingFrame",
                "interruption" => "InterruptionFrame",
                _ => return false,
            };
            // the speech moments are already when the speech began or ended
            push(moment, frame, "", fields(&[("timestamp", ts)]));
        }
        "tail-function-call" => {
            let base = [
                ("function_name", get("function_name")),
                ("tool_call_id", get("tool_call_id")),
                ("arguments", get("arguments")),
            ];
            match s("kind") {
                "function_call_in_progress" => {
                    push(at, "FunctionCallInProgressFrame", "", fields(&base))
                }
                "function_call_completed" => {
                    let mut f = fields(&base);
                    f.extend(fields(&[("result", get("result"))]));
                    push(at, "FunctionCallResultFrame", "", f);
                }
                k @ ("function_call_failed" | "function_call_timed_out") => {
                    let error = match get("error") {
                        Value::Null if k == "function_call_timed_out" => json!("timed out"),
                        Value::Null => json!("failed"),
                        e => e,
                    };
                    let mut f = fields(&base);
                    f.extend(fields(&[("result", get("result")), ("error", error)]));
                    push(at, "FunctionCallResultFrame", "", f);
                }
                "function_call_cancelled" => push(at, "FunctionCallCancelFrame", "", fields(&base)),
                "function_call_started" => {}
                _ => return false,
            }
        }
        "tail-service-latency" => {
            let seconds = match s("kind") {
                "ttfa" | "ttfat" => get("ttfb_secs"),
                _ => get("seconds"),
            };
            let metric = if s("kind") == "processing" {
                "ProcessingMetricsData"
            } else {
                "TTFBMetricsData"
            };
            push(
                at,
                "MetricsFrame",
                s("processor"),
                metrics(&data, metric, seconds),
            );
        }
        "tail-service-usage" => {
            let (metric, value) = match s("kind") {
                "llm" => (
                    "LLMUsageMetricsData",
                    Value::Object(fields(&[
                        ("prompt_tokens", get("prompt_tokens")),
                        ("completion_tokens", get("completion_tokens")),
                        ("total_tokens", get("total_tokens")),
                        ("cache_read_input_tokens", get("cache_read_input_tokens")),
                    ])),
                ),
                "tts" => ("TTSUsageMetricsData", get("characters")),
                "stt" => (
                    "STTUsageMetricsData",
                    Value::Object(fields(&[("audio_seconds", get("audio_seconds"))])),
                ),
                _ => return false,
            };
            push(
                at,
                "MetricsFrame",
                s("processor"),
                metrics(&data, metric, value),
            );
        }
        "tail-latency" => {
            // the breakdown's own timestamp is its user-silence start: place it when sent
            let t = m
                .get("timestamp")
                .and_then(unix_ns)
                .map_or(received, |x| x - t0);
            push(t, super::event::LATENCY_BREAKDOWN, "", data.clone());
        }
        "tail-error" => {
            let fatal = data.get("processor_usable").and_then(Value::as_bool) == Some(false);
            let processor = s("processor").to_string();
            push(
                at,
                "ErrorFrame",
                &processor,
                fields(&[("error", get("message")), ("fatal", json!(fatal))]),
            );
        }
        "tail-turn" => {
            if s("kind") == "ended" {
                if let Some(n) = data.get("turn").and_then(Value::as_u64) {
                    let interrupted = data.get("was_interrupted").and_then(Value::as_bool);
                    session.tail_turns.push((n, interrupted.unwrap_or(false)));
                }
            }
        }
        "tail-log" => {
            let t = m
                .get("timestamp")
                .and_then(unix_ns)
                .map_or(received, |x| x - t0);
            session.logs.push(TimedRecord::new(
                t.max(0) as u64,
                Record::Log(LogLine {
                    turn: None,
                    level: s("level").to_ascii_lowercase(),
                    target: s("name").to_string(),
                    message: s("message").to_string(),
                    fields: fields(&[("function", get("function")), ("line", get("line"))]),
                }),
            ));
        }
        "user-transcription" => {
            let frame = if data.get("final").and_then(Value::as_bool) == Some(true) {
                "TranscriptionFrame"
            } else {
                "InterimTranscriptionFrame"
            };
            push(
                received,
                frame,
                "",
                fields(&[("text", get("text")), ("user_id", get("user_id"))]),
            );
        }
        "bot-llm-started" => push(received, "LLMFullResponseStartFrame", "", Map::new()),
        "bot-llm-stopped" => push(received, "LLMFullResponseEndFrame", "", Map::new()),
        "bot-llm-text" => push(
            received,
            "LLMTextFrame",
            "",
            fields(&[("text", get("text"))]),
        ),
        "bot-tts-started" => push(received, "TTSStartedFrame", "", Map::new()),
        "bot-tts-stopped" => push(received, "TTSStoppedFrame", "", Map::new()),
        "bot-tts-text" => push(
            received,
            "TTSTextFrame",
            "",
            fields(&[("text", get("text"))]),
        ),
        _ => return false,
    }
    true
}

//! Pipecat sessions recorded as JSON Lines (Pipecat Tail's format: one
//! `{"t": <seconds>, "message": {...}}` per line) as calltape records.
//!
//! # Accepted input
//!
//! `t` is seconds since the session start; a value ≥ 1e9 is unix seconds (session time 0 is
//! then the first line's `t`). A message's fields are read from its `data` object when it has
//! one (the RTVI envelope `{"label": "rtvi-ai", "type": …, "data": {…}}`), else from the
//! message itself. `type` names, with accepted aliases:
//!
//! | `type` | fields | calltape |
//! |---|---|---|
//! | `session-start` (`session-started`) | `session_id?`, `started_at?` (unix s), `agent?`, `version?` | header (wall clock, id) |
//! | `recording-started` (`audio-recording-started`) | – | session time of the WAV's first sample |
//! | `user-started-speaking` | – | opens a user turn (a pause before the agent answers stays in the turn); `vad` start |
//! | `user-stopped-speaking` | – | `vad` end |
//! | `transcription` (`user-transcription`, `transcript`) | `text`, `final`/`is_final` (default true), `language?`, `confidence?`, `user_id?` | user `transcript` (`final: false` → interim) |
//! | `interim-transcription` (`user-interim-transcription`) | `text` | interim user `transcript` |
//! | `bot-started-speaking` / `bot-stopped-speaking` | – | `playback` stage; opens an agent turn (greeting) when no user turn awaits an answer |
//! | `bot-llm-started` / `bot-llm-stopped` | – | bounds of an `llm` stage |
//! | `bot-tts-started` / `bot-tts-stopped` | – | bounds of a `tts` stage |
//! | `bot-llm-text` | `text` | the agent's generated text (fragments concatenated as they are) |
//! | `bot-tts-text` | `text` | the text spoken (words joined by spaces); when the turn is interrupted, the words before the cut are `heard_text` |
//! | `bot-transcription` | `text` | agent text (whole sentences), used when no `bot-llm-text` came |
//! | `function-call` (`llm-function-call`, `function-call-in-progress`) | `function_name`/`name`, `tool_call_id`/`call_id`, `arguments`/`args` | `tool_call` start |
//! | `function-call-result` | `tool_call_id`/`call_id`, `result`, `is_error?`/`error?` | `tool_call` end |
//! | `interruption` (`bot-interrupted`, `user-interruption`) | – | cuts the agent's current turn: transcript `interrupted`, `interruption` event |
//! | `metrics` | below | stages, usage |
//! | `error` | `error`/`message`, `fatal?` | `error` event |
//! | `session-end` (`end`, `disconnected`, `client-disconnected`) | `reason?` | `session_end` |
//! | anything else | | an event named by its `type`, with its raw fields (+ one `import_warning` per type) |
//!
//! `user-started-speaking` while the bot speaks, with no `interruption` message before the bot
//! stops, is taken as a barge-in (`interruption` event with `inferred: true`).
//!
//! `metrics` data is either Pipecat's RTVI shape
//! `{"ttfb": [{"processor", "model"?, "value"}], "processing": [...], "tokens":
//! [{"processor", "model", "prompt_tokens", "completion_tokens", "total_tokens"}],
//! "characters": [{"processor", "value"}], "turn": [{"is_complete", "probability",
//! "e2e_processing_time_ms"}]}`, or a list of `{"type": "TTFBMetricsData" |
//! "ProcessingMetricsData" | "LLMUsageMetricsData" | "LLMTokenUsage" | "TTSUsageMetricsData" |
//! "TurnMetricsData", "processor", "model"?, "value"}` (for token usage `value` is the
//! `LLMTokenUsage` object). Values are seconds. The service of a metric is its `service`
//! field (`stt`, `llm`, `tts`) or else read from the processor name (`…STT…`, `…LLM…`,
//! `…TTS…`); other processors become custom stages named after the processor.
//!
//! A metric is emitted when it is measured, so it times a stage backwards from the line's `t`:
//! TTFB `v` → stage start `t − v` (LLM `ttft_ns` / TTS `ttfb_ns` = `v`; STT: the stage runs
//! from the end of user speech for `v`); processing `v` → stage end `t`, start `t − v`;
//! `bot-llm-started`/`-stopped` and `bot-tts-started`/`-stopped` override those bounds.
//! `TurnMetricsData` → `eou` stage from the end of user speech to `t`. Token usage and TTS
//! characters → the stage's counts and a `usage` record.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use calltape_format::{
    AgentInfo, Attributes, Event, Header, Record, SessionEnd, Speaker, Stage, StageTiming,
    TimedRecord, ToolCall, Transcript, TurnEnd, TurnId, TurnStart, Usage,
};
use serde_json::{json, Map, Value};

use super::clock::{self, rfc3339, seconds_to_ns};
use super::{as_attributes, sanitize_session_id, ImportError, ImportedCall, Warnings};

/// Longest line kept verbatim when it does not parse (bytes).
const RAW_LINE_LIMIT: usize = 4096;

/// Reads a Pipecat JSON Lines session at `path`.
pub fn import_file(path: &Path) -> Result<ImportedCall, ImportError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut lines = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ImportError::Io {
            path: format!("{shown} line {}", i + 1),
            source,
        })?;
        lines.push(line);
    }
    let mtime_unix = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    import_lines(&lines, &stem, mtime_unix).map_err(|reason| ImportError::Input {
        path: shown,
        what: "Pipecat session (JSON Lines)",
        reason,
    })
}

/// The service a metric or processor belongs to.
/// Pipecat names services `DeepgramSTTService`, `OpenAILLMService`, `ElevenLabsTTSService`
/// (so a plain substring test is ambiguous: `ElevenLabsTTS` contains `STT`); a name is
/// read by those suffixes first, then by `stt`/`llm`/`tts` words (`my_tts`, `llm-proxy`).
fn service_of(processor: &str, explicit: Option<&str>) -> Stage {
    if let Some(s) = explicit {
        return Stage::from(s.to_ascii_lowercase());
    }
    let base = processor.split('#').next().unwrap_or(processor);
    let word = |w: &str| {
        base.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|part| part.eq_ignore_ascii_case(w))
    };
    if base.contains("STTService") || base.contains("SpeechToText") {
        Stage::Stt
    } else if base.contains("TTSService") || base.contains("TextToSpeech") {
        Stage::Tts
    } else if base.contains("LLMService") {
        Stage::Llm
    } else if word("stt") || word("transcription") {
        Stage::Stt
    } else if word("tts") {
        Stage::Tts
    } else if word("llm") {
        Stage::Llm
    } else {
        Stage::Custom(base.to_string())
    }
}

/// One measured step of a service (an LLM request, a TTS request…).
#[derive(Default, Clone)]
struct Step {
    start: Option<u64>,
    end: Option<u64>,
    first: Option<u64>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    characters: Option<u64>,
    model: Option<String>,
    processor: Option<String>,
}

#[derive(Default)]
struct PTurn {
    speaker: Option<Speaker>,
    records: Vec<TimedRecord>,
    vad_open: Option<u64>,
    vad: Vec<(u64, u64)>,
    steps: BTreeMap<String, Vec<Step>>,
    llm_text: String,
    bot_text: String,
    tts_words: Vec<(u64, String)>,
    playback: Vec<(u64, Option<u64>)>,
    bot_spoke: bool,
    tool_since_bot: bool,
    interrupted_at: Option<u64>,
    interruption_inferred: bool,
}

struct Mapper {
    warnings: Warnings,
    turns: BTreeMap<TurnId, PTurn>,
    loose: Vec<TimedRecord>,
    cur: Option<TurnId>,
    /// The turn whose agent audio is playing.
    bot_turn: Option<TurnId>,
    /// The user started speaking while the bot spoke (a barge-in unless said otherwise).
    overlap_since: Option<u64>,
    next_turn: TurnId,
    calls: Vec<(Option<String>, String, Value, u64, TurnId)>,
    unknown_types: BTreeSet<String>,
    usage: Vec<(u64, TurnId, Usage)>,
}

fn text_of(d: &Map<String, Value>) -> String {
    d.get("text")
        .or_else(|| d.get("transcript"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn str_field<'a>(d: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| d.get(*k).and_then(Value::as_str))
}

impl Mapper {
    fn turn(&mut self, id: TurnId) -> &mut PTurn {
        self.turns.entry(id).or_default()
    }

    fn open(&mut self, speaker: Speaker) -> TurnId {
        let id = self.next_turn;
        self.next_turn += 1;
        self.turn(id).speaker = Some(speaker);
        self.cur = Some(id);
        id
    }

    /// The turn agent-side work (LLM, TTS, tools) belongs to: the current turn while its
    /// agent has not spoken yet (or a tool call since), else a new agent-opened turn.
    fn agent_turn(&mut self) -> TurnId {
        match self.cur {
            Some(id) => {
                let t = &self.turns[&id];
                if !t.bot_spoke || t.tool_since_bot {
                    id
                } else {
                    self.open(Speaker::Agent)
                }
            }
            None => self.open(Speaker::Agent),
        }
    }

    /// The turn that trailing agent output (text, stage ends, late metrics) belongs to: the
    /// current turn, or a new agent-opened turn when there is none.
    fn trailing_turn(&mut self) -> TurnId {
        match self.cur {
            Some(id) => id,
            None => self.open(Speaker::Agent),
        }
    }

    /// The current turn has a step of `stage` still running (no end seen).
    fn has_open_step(&self, stage: &Stage) -> bool {
        self.cur.is_some_and(|id| {
            self.turns[&id]
                .steps
                .get(stage.as_str())
                .is_some_and(|steps| steps.iter().any(|s| s.end.is_none() && s.first.is_none()))
        })
    }

    /// The turn user speech belongs to: the current user turn while its agent has not
    /// spoken, else a new user turn.
    fn user_turn(&mut self) -> TurnId {
        match self.cur {
            Some(id)
                if self.turns[&id].speaker == Some(Speaker::User)
                    && !self.turns[&id].bot_spoke
                    && self.bot_turn != Some(id) =>
            {
                id
            }
            _ => self.open(Speaker::User),
        }
    }

    fn push(&mut self, turn: Option<TurnId>, t: u64, r: Record) {
        match turn {
            Some(id) => self.turn(id).records.push(TimedRecord::new(t, r)),
            None => self.loose.push(TimedRecord::new(t, r)),
        }
    }

    fn event(&mut self, turn: Option<TurnId>, t: u64, name: &str, attributes: Attributes) {
        self.push(
            turn,
            t,
            Record::Event(Event {
                turn,
                name: name.into(),
                attributes,
            }),
        );
    }

    fn step(&mut self, turn: TurnId, stage: &Stage) -> &mut Vec<Step> {
        self.turn(turn)
            .steps
            .entry(stage.as_str().to_string())
            .or_default()
    }

    fn interrupt(&mut self, t: u64, inferred: bool) {
        let Some(id) = self.bot_turn.or(self.cur) else {
            return;
        };
        let turn = self.turn(id);
        if turn.interrupted_at.is_none() {
            turn.interrupted_at = Some(t);
            turn.interruption_inferred = inferred;
        }
    }

    fn message(&mut self, t: u64, line: usize, msg: &Map<String, Value>) {
        let kind = msg
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let d = match msg.get("data") {
            Some(Value::Object(o)) => o.clone(),
            _ => msg.clone(),
        };
        match kind.as_str() {
            "session-start"
            | "session-started"
            | "recording-started"
            | "audio-recording-started" => {}
            "user-started-speaking" => {
                if self.bot_turn.is_some() {
                    self.overlap_since.get_or_insert(t);
                }
                let id = self.user_turn();
                let turn = self.turn(id);
                turn.vad_open.get_or_insert(t);
            }
            "user-stopped-speaking" => {
                let id = self.user_turn();
                let turn = self.turn(id);
                let start = turn.vad_open.take().unwrap_or(t);
                turn.vad.push((start, t));
            }
            "transcription"
            | "user-transcription"
            | "transcript"
            | "interim-transcription"
            | "user-interim-transcription" => {
                let interim_type = kind.contains("interim");
                let is_final = !interim_type
                    && d.get("final")
                        .or_else(|| d.get("is_final"))
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                let id = if is_final {
                    self.user_turn()
                } else {
                    match self.cur {
                        Some(c) => c,
                        None => self.user_turn(),
                    }
                };
                let turn = &self.turns[&id];
                let start = turn.vad.first().map(|v| v.0).or(turn.vad_open);
                let end = turn.vad.last().map(|v| v.1).filter(|_| is_final);
                let mut attributes = d.clone();
                for k in [
                    "text",
                    "transcript",
                    "final",
                    "is_final",
                    "language",
                    "confidence",
                ] {
                    attributes.remove(k);
                }
                self.push(
                    Some(id),
                    t,
                    Record::Transcript(Transcript {
                        turn: Some(id),
                        speaker: Speaker::User,
                        text: text_of(&d),
                        is_final,
                        confidence: d
                            .get("confidence")
                            .and_then(clock::number)
                            .filter(|c| (0.0..=1.0).contains(c)),
                        language: str_field(&d, &["language"]).map(String::from),
                        interrupted: false,
                        heard_text: None,
                        start_ns: start,
                        end_ns: end,
                        attributes,
                    }),
                );
            }
            "bot-started-speaking" => {
                let id = self.agent_turn();
                let turn = self.turn(id);
                turn.playback.push((t, None));
                turn.bot_spoke = true;
                turn.tool_since_bot = false;
                self.bot_turn = Some(id);
            }
            "bot-stopped-speaking" => {
                if let Some(since) = self.overlap_since.take() {
                    // the user spoke over the bot and the bot stopped: a barge-in
                    self.interrupt(t, true);
                    let mut a = Attributes::new();
                    a.insert("user_started_ns".into(), json!(since));
                    self.event(self.bot_turn, since, "overlapping_speech", a);
                }
                let id = self.bot_turn.take().or(self.cur);
                if let Some(id) = id {
                    let turn = self.turn(id);
                    match turn.playback.last_mut() {
                        Some((_, end @ None)) => *end = Some(t),
                        _ => turn.playback.push((t, Some(t))),
                    }
                }
            }
            "bot-llm-started" | "bot-tts-started" => {
                let stage = if kind.contains("llm") {
                    Stage::Llm
                } else {
                    Stage::Tts
                };
                let id = if stage == Stage::Llm {
                    self.agent_turn()
                } else {
                    self.trailing_turn()
                };
                self.step(id, &stage).push(Step {
                    start: Some(t),
                    ..Step::default()
                });
            }
            "bot-llm-stopped" | "bot-tts-stopped" => {
                let stage = if kind.contains("llm") {
                    Stage::Llm
                } else {
                    Stage::Tts
                };
                let id = self.trailing_turn();
                let steps = self.step(id, &stage);
                match steps.iter_mut().rev().find(|s| s.end.is_none()) {
                    Some(s) => s.end = Some(t),
                    None => steps.push(Step {
                        end: Some(t),
                        ..Step::default()
                    }),
                }
            }
            "bot-llm-text" => {
                let id = self.trailing_turn();
                self.turn(id).llm_text.push_str(&text_of(&d));
            }
            "bot-transcription" => {
                let id = self.bot_turn.unwrap_or_else(|| self.trailing_turn());
                let turn = self.turn(id);
                join_words(&mut turn.bot_text, &text_of(&d));
            }
            "bot-tts-text" => {
                let id = self.bot_turn.unwrap_or_else(|| self.trailing_turn());
                self.turn(id).tts_words.push((t, text_of(&d)));
            }
            "function-call" | "llm-function-call" | "function-call-in-progress" => {
                let id = self.trailing_turn();
                let call_id = str_field(&d, &["tool_call_id", "call_id"]).map(String::from);
                if kind == "function-call-in-progress"
                    && self.calls.iter().any(|c| c.0.is_some() && c.0 == call_id)
                {
                    return;
                }
                let name = str_field(&d, &["function_name", "name"])
                    .unwrap_or("unknown")
                    .to_string();
                let args = match d.get("arguments").or_else(|| d.get("args")) {
                    Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| json!(s)),
                    Some(v) => v.clone(),
                    None => Value::Null,
                };
                self.calls.push((call_id, name, args, t, id));
            }
            "function-call-result" => {
                let call_id = str_field(&d, &["tool_call_id", "call_id"]).map(String::from);
                let pos = self
                    .calls
                    .iter()
                    .position(|c| c.0.is_some() && c.0 == call_id)
                    .or_else(|| (call_id.is_none() && !self.calls.is_empty()).then_some(0));
                let (name, args, start, id) = match pos {
                    Some(i) => {
                        let c = self.calls.remove(i);
                        (c.1, c.2, c.3, c.4)
                    }
                    None => {
                        let id = self.trailing_turn();
                        self.warnings.push(
                            "orphan_tool_result",
                            t,
                            Some(id),
                            format!("line {line}: function-call-result {call_id:?} has no function-call; imported with unknown arguments and start"),
                            Value::Null,
                        );
                        let name = str_field(&d, &["function_name", "name"])
                            .unwrap_or("unknown")
                            .to_string();
                        (name, Value::Null, t, id)
                    }
                };
                let error = d.get("error").filter(|e| !e.is_null());
                let is_error =
                    d.get("is_error").and_then(Value::as_bool) == Some(true) || error.is_some();
                let output = d
                    .get("result")
                    .filter(|r| !r.is_null())
                    .or(error)
                    .cloned()
                    .unwrap_or(Value::Null);
                let turn = self.turn(id);
                turn.tool_since_bot = true;
                turn.records.push(TimedRecord::new(
                    t,
                    Record::ToolCall(ToolCall {
                        turn: Some(id),
                        call_id,
                        name,
                        arguments: args,
                        output,
                        is_error,
                        start_ns: start.min(t),
                        end_ns: t,
                        attributes: Attributes::new(),
                    }),
                ));
            }
            "interruption" | "bot-interrupted" | "user-interruption" => {
                self.overlap_since = None;
                self.interrupt(t, false);
            }
            "metrics" => self.metrics(t, line, &msg.get("data").cloned().unwrap_or(Value::Null)),
            "error" => {
                let message = match d.get("error").or_else(|| d.get("message")) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                let mut a = d.clone();
                a.insert("message".into(), json!(message));
                a.entry("source").or_insert(json!("pipecat"));
                self.event(self.cur, t, "error", a);
            }
            "session-end" | "end" | "disconnected" | "client-disconnected" => {
                let reason = str_field(&d, &["reason"]).unwrap_or(match kind.as_str() {
                    "client-disconnected" => "user_hangup",
                    _ => "shutdown",
                });
                self.loose.push(TimedRecord::new(
                    t,
                    Record::SessionEnd(SessionEnd {
                        reason: reason.into(),
                        outcome: str_field(&d, &["outcome"]).map(String::from),
                    }),
                ));
                self.event(None, t, "pipecat_session_end", d);
            }
            other => {
                let name = if other.is_empty() {
                    "pipecat_message"
                } else {
                    other
                };
                if self.unknown_types.insert(name.to_string()) {
                    self.warnings.push(
                        "unknown_message_type",
                        t,
                        self.cur,
                        format!("line {line}: message type {name:?} is unknown; kept as an event of that name with its raw fields"),
                        json!({"type": other}),
                    );
                }
                self.event(self.cur, t, name, msg.clone());
            }
        }
    }

    fn metrics(&mut self, t: u64, line: usize, data: &Value) {
        // normalize both accepted shapes into (kind, entry)
        let mut entries: Vec<(String, Map<String, Value>)> = Vec::new();
        match data {
            Value::Object(o) => {
                for (k, v) in o {
                    for e in v.as_array().into_iter().flatten() {
                        if let Some(e) = e.as_object() {
                            entries.push((k.clone(), e.clone()));
                        }
                    }
                }
            }
            Value::Array(list) => {
                for e in list.iter().filter_map(Value::as_object) {
                    let kind = match str_field(e, &["type", "metric"]).unwrap_or("") {
                        "TTFBMetricsData" => "ttfb",
                        "ProcessingMetricsData" => "processing",
                        "LLMUsageMetricsData" | "LLMTokenUsage" => "tokens",
                        "TTSUsageMetricsData" => "characters",
                        "TurnMetricsData" => "turn",
                        other => other,
                    };
                    let mut e = e.clone();
                    if kind == "tokens" {
                        if let Some(Value::Object(v)) = e.get("value").cloned() {
                            e.extend(v);
                        }
                    }
                    entries.push((kind.to_string(), e));
                }
            }
            _ => {
                self.warnings.push(
                    "bad_metrics",
                    t,
                    self.cur,
                    format!("line {line}: metrics without data; ignored"),
                    data.clone(),
                );
                return;
            }
        }
        for (kind, e) in entries {
            let processor = str_field(&e, &["processor"]).unwrap_or("").to_string();
            let stage = service_of(&processor, str_field(&e, &["service"]));
            let model = str_field(&e, &["model"]).map(String::from);
            match kind.as_str() {
                "ttfb" | "processing" => {
                    let v = e.get("value").cloned().unwrap_or(Value::Null);
                    let ns = match clock::delay_ns(&v) {
                        Ok(ns) => ns,
                        Err(bad) => {
                            self.warnings.push(
                                bad.code(),
                                t,
                                self.cur,
                                format!("line {line}: {kind} of {processor} is negative, absurd (> 60 s) or not a number; left out"),
                                json!({"processor": processor, "metric": kind, "value": v}),
                            );
                            continue;
                        }
                    };
                    let id = if stage == Stage::Stt {
                        match self.cur {
                            Some(c) => c,
                            None => self.user_turn(),
                        }
                    } else if kind == "ttfb" && stage == Stage::Llm && !self.has_open_step(&stage) {
                        // a first token starts new agent work
                        self.agent_turn()
                    } else {
                        self.trailing_turn()
                    };
                    let vad_end = self.turns[&id].vad.last().map(|v| v.1);
                    let steps = self.step(id, &stage);
                    let step = if kind == "ttfb" {
                        match steps
                            .iter_mut()
                            .rev()
                            .find(|s| s.first.is_none() && s.end.is_none())
                        {
                            Some(s) => s,
                            None => {
                                steps.push(Step::default());
                                steps.last_mut().expect("pushed")
                            }
                        }
                    } else {
                        match steps.iter_mut().rev().find(|s| s.end.is_none()) {
                            Some(s) => s,
                            None => {
                                steps.push(Step::default());
                                steps.last_mut().expect("pushed")
                            }
                        }
                    };
                    if kind == "ttfb" {
                        let start = match (&stage, vad_end) {
                            (Stage::Stt, Some(v)) if step.start.is_none() => v,
                            _ => step.start.unwrap_or(t.saturating_sub(ns)),
                        };
                        step.start = Some(start);
                        step.first = Some(ns);
                    } else {
                        step.start.get_or_insert(t.saturating_sub(ns));
                        step.end = Some(t);
                    }
                    step.model = step.model.take().or(model);
                    step.processor.get_or_insert(processor);
                }
                "tokens" => {
                    let n = |k: &str| e.get(k).and_then(clock::number).map(|x| x.max(0.0) as u64);
                    let (pt, ct) = (n("prompt_tokens"), n("completion_tokens"));
                    let cached = n("cache_read_input_tokens").or(n("cached_tokens"));
                    let id = self.trailing_turn();
                    let steps = self.step(id, &Stage::Llm);
                    if let Some(s) = steps.iter_mut().rev().find(|s| s.prompt_tokens.is_none()) {
                        s.prompt_tokens = pt;
                        s.completion_tokens = ct;
                        s.model = s.model.take().or(model.clone());
                    }
                    self.usage.push((
                        t,
                        id,
                        Usage {
                            turn: Some(id),
                            prompt_tokens: pt.unwrap_or(0),
                            completion_tokens: ct.unwrap_or(0),
                            cached_tokens: cached.unwrap_or(0),
                            model,
                            provider: (!processor.is_empty()).then(|| processor.clone()),
                            ..Usage::default()
                        },
                    ));
                }
                "characters" => {
                    let chars = e
                        .get("value")
                        .and_then(clock::number)
                        .map(|x| x.max(0.0) as u64);
                    let id = self.trailing_turn();
                    if let Some(s) = self.step(id, &Stage::Tts).last_mut() {
                        s.characters = chars;
                    }
                    self.usage.push((
                        t,
                        id,
                        Usage {
                            turn: Some(id),
                            tts_characters: chars.unwrap_or(0),
                            provider: (!processor.is_empty()).then(|| processor.clone()),
                            ..Usage::default()
                        },
                    ));
                }
                "turn" => {
                    let id = match self.cur {
                        Some(c) => c,
                        None => self.user_turn(),
                    };
                    let vad_end = self.turns[&id].vad.last().map(|v| v.1);
                    let start = vad_end.unwrap_or(t).min(t);
                    let mut s = StageTiming::new(Some(id), Stage::Eou, start, t);
                    for k in ["is_complete", "probability", "e2e_processing_time_ms"] {
                        if let Some(v) = e.get(k) {
                            s.attributes.insert(k.into(), v.clone());
                        }
                    }
                    if vad_end.is_none() {
                        s.attributes.insert("start_unknown".into(), json!(true));
                    }
                    self.push(Some(id), t, Record::StageTiming(s));
                }
                other => {
                    let mut a = e.clone();
                    a.insert("metric".into(), json!(other));
                    self.event(self.cur, t, "pipecat_metric", a);
                }
            }
        }
    }

    /// Turns every accumulated turn into records.
    fn finish(mut self) -> (Vec<TimedRecord>, Warnings) {
        for (t, _, u) in std::mem::take(&mut self.usage) {
            self.loose.push(TimedRecord::new(t, Record::Usage(u)));
        }
        for (call_id, name, args, start, id) in std::mem::take(&mut self.calls) {
            self.warnings.push(
                "tool_without_result",
                start,
                Some(id),
                format!("function call {name} ({call_id:?}) has no function-call-result"),
                Value::Null,
            );
            let mut attributes = Attributes::new();
            attributes.insert("no_output".into(), json!(true));
            self.push(
                Some(id),
                start,
                Record::ToolCall(ToolCall {
                    turn: Some(id),
                    call_id,
                    name,
                    arguments: args,
                    output: Value::Null,
                    is_error: false,
                    start_ns: start,
                    end_ns: start,
                    attributes,
                }),
            );
        }
        let mut out = std::mem::take(&mut self.loose);
        for (id, mut turn) in std::mem::take(&mut self.turns) {
            let id_opt = Some(id);
            let mut recs = std::mem::take(&mut turn.records);
            if let Some(open) = turn.vad_open {
                // speech that never stopped (call ended): a vad span without end is left out
                self.warnings.push(
                    "speech_without_end",
                    open,
                    id_opt,
                    "user-started-speaking without user-stopped-speaking",
                    Value::Null,
                );
            }
            for &(s, e) in &turn.vad {
                recs.push(TimedRecord::new(
                    e,
                    Record::StageTiming(StageTiming::new(id_opt, Stage::Vad, s, e)),
                ));
            }
            for (stage, steps) in &turn.steps {
                for st in steps {
                    let Some(start) = st.start.or(st.end) else {
                        continue;
                    };
                    let end = st
                        .end
                        .or(st.first.map(|f| start + f))
                        .unwrap_or(start)
                        .max(start);
                    let mut s = StageTiming::new(id_opt, Stage::from(stage.clone()), start, end);
                    match s.stage {
                        Stage::Llm => s.ttft_ns = st.first,
                        Stage::Tts => s.ttfb_ns = st.first,
                        _ => {
                            if let Some(f) = st.first {
                                s.attributes.insert("ttfb_ns".into(), json!(f));
                            }
                        }
                    }
                    s.prompt_tokens = st.prompt_tokens;
                    s.completion_tokens = st.completion_tokens;
                    s.characters = st.characters;
                    s.model = st.model.clone();
                    s.provider = st.processor.clone().filter(|p| !p.is_empty());
                    if st.end.is_none() {
                        s.attributes.insert("end_unknown".into(), json!(true));
                    }
                    recs.push(TimedRecord::new(end, Record::StageTiming(s)));
                }
            }
            let cut = turn.interrupted_at;
            for &(s, e) in &turn.playback {
                let end = e.unwrap_or(s);
                let mut st = StageTiming::new(id_opt, Stage::Playback, s, end);
                st.cancelled = cut.is_some_and(|c| c <= end);
                if e.is_none() {
                    st.attributes.insert("end_unknown".into(), json!(true));
                }
                recs.push(TimedRecord::new(end, Record::StageTiming(st)));
            }
            let spoken: Vec<&str> = turn.tts_words.iter().map(|(_, w)| w.as_str()).collect();
            let mut tts_text = String::new();
            for w in &spoken {
                join_words(&mut tts_text, w);
            }
            let text = [turn.llm_text.trim(), turn.bot_text.trim(), tts_text.trim()]
                .into_iter()
                .find(|s| !s.is_empty())
                .unwrap_or("")
                .to_string();
            let pb_start = turn.playback.first().map(|p| p.0);
            let pb_end = turn.playback.last().and_then(|p| p.1);
            let interrupted = cut.is_some();
            if !text.is_empty() || pb_start.is_some() {
                let heard = cut.filter(|_| !turn.tts_words.is_empty()).map(|c| {
                    let mut h = String::new();
                    for (_, w) in turn.tts_words.iter().filter(|(t, _)| *t <= c) {
                        join_words(&mut h, w);
                    }
                    h
                });
                let at = pb_start
                    .or(turn.tts_words.first().map(|w| w.0))
                    .unwrap_or_else(|| recs.iter().map(|r| r.time_ns).max().unwrap_or(0));
                let mut attributes = Attributes::new();
                if !turn.llm_text.is_empty()
                    && !tts_text.is_empty()
                    && turn.llm_text.trim() != tts_text
                {
                    attributes.insert("tts_text".into(), json!(tts_text));
                }
                recs.push(TimedRecord::new(
                    at,
                    Record::Transcript(Transcript {
                        turn: id_opt,
                        speaker: Speaker::Agent,
                        text,
                        is_final: true,
                        confidence: None,
                        language: None,
                        interrupted,
                        heard_text: heard,
                        start_ns: pb_start,
                        end_ns: pb_end,
                        attributes,
                    }),
                ));
            }
            if let Some(c) = cut {
                let mut a = Attributes::new();
                if turn.interruption_inferred {
                    a.insert("inferred".into(), json!(true));
                }
                recs.push(TimedRecord::new(
                    c,
                    Record::Event(Event {
                        turn: id_opt,
                        name: "interruption".into(),
                        attributes: a,
                    }),
                ));
            }
            let (mut start, mut end) = (u64::MAX, 0u64);
            for r in &recs {
                let (a, b) = match &r.record {
                    Record::StageTiming(s) => (s.start_ns, s.end_ns),
                    Record::ToolCall(c) => (c.start_ns, c.end_ns),
                    Record::Transcript(t) => (
                        t.start_ns.unwrap_or(r.time_ns),
                        t.end_ns.unwrap_or(r.time_ns),
                    ),
                    _ => (r.time_ns, r.time_ns),
                };
                start = start.min(a).min(r.time_ns);
                end = end.max(b).max(r.time_ns);
            }
            if let Some(o) = turn.vad_open {
                start = start.min(o);
            }
            if start == u64::MAX {
                continue;
            }
            let mut attributes = Attributes::new();
            if interrupted {
                attributes.insert("interrupted".into(), json!(true));
            }
            out.push(TimedRecord::new(
                start,
                Record::TurnStart(TurnStart {
                    turn: id,
                    speaker: turn.speaker.unwrap_or(Speaker::User),
                    attributes: Attributes::new(),
                }),
            ));
            out.extend(recs);
            out.push(TimedRecord::new(
                end,
                Record::TurnEnd(TurnEnd {
                    turn: id,
                    speaker: Some(if turn.bot_spoke {
                        Speaker::Agent
                    } else {
                        Speaker::User
                    }),
                    attributes,
                }),
            ));
        }
        (out, self.warnings)
    }
}

/// Appends a word or phrase with one space between, none before punctuation.
fn join_words(dst: &mut String, w: &str) {
    let w = w.trim();
    if w.is_empty() {
        return;
    }
    if !dst.is_empty() && !w.starts_with(|c: char| ",.;:!?'".contains(c)) {
        dst.push(' ');
    }
    dst.push_str(w);
}

/// Maps the lines of a session. `name` (the file stem) is the fallback session id;
/// `mtime_unix` estimates the wall clock when the lines hold none.
pub fn import_lines(
    lines: &[String],
    name: &str,
    mtime_unix: Option<f64>,
) -> Result<ImportedCall, String> {
    const UNIX_NS_MIN: i64 = 1_000_000_000_000_000_000;
    let mut warnings = Warnings::default();
    let mut parsed: Vec<(i64, usize, Map<String, Value>)> = Vec::new();
    let mut raw_events: Vec<(usize, Attributes)> = Vec::new();
    let mut last_t = 0i64;
    let mut bad_t = 0u32;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                let mut cut = line.len().min(RAW_LINE_LIMIT);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                warnings.general(
                    "unparsed_line",
                    format!("line {n} is not JSON ({e}); kept as a pipecat_unparsed_line event"),
                    json!({"line": n}),
                );
                raw_events.push((n, as_attributes(json!({"line": n, "text": &line[..cut]}))));
                continue;
            }
        };
        let t = match v.get("t").and_then(clock::seconds_ns) {
            Some(t) => t,
            None => {
                bad_t += 1;
                last_t
            }
        };
        last_t = t;
        let msg = match v.get("message") {
            Some(Value::Object(m)) => m.clone(),
            // a line that is the message itself
            _ => match v {
                Value::Object(mut m) => {
                    m.remove("t");
                    m
                }
                other => as_attributes(json!({"value": other})),
            },
        };
        parsed.push((t, n, msg));
    }
    if parsed.is_empty() && raw_events.is_empty() {
        return Err("no JSON lines".into());
    }
    if parsed.is_empty() {
        return Err("no line parses as JSON".into());
    }
    if bad_t > 0 {
        warnings.general(
            "line_without_time",
            format!("{bad_t} lines have no numeric `t`; placed at the previous line's time"),
            json!({"count": bad_t}),
        );
    }
    parsed.sort_by_key(|p| (p.0, p.1));
    // unix seconds or seconds since start
    let first_t = parsed.iter().map(|p| p.0).min().unwrap_or(0);
    let unix = first_t >= UNIX_NS_MIN;
    let session = parsed
        .iter()
        .find(|p| {
            matches!(
                p.2.get("type").and_then(Value::as_str),
                Some("session-start" | "session-started")
            )
        })
        .cloned();
    let field = |k: &str| {
        session.as_ref().and_then(|s| {
            let d = s.2.get("data").and_then(Value::as_object).unwrap_or(&s.2);
            d.get(k).cloned()
        })
    };
    let t0_rel = if unix { first_t } else { 0 };
    let started_unix_ns = if unix {
        Some(first_t)
    } else {
        field("started_at")
            .as_ref()
            .and_then(clock::unix_ns)
            .map(|s| s - session.as_ref().map_or(0, |s| s.0))
    };
    let t0_ns = match started_unix_ns {
        Some(s) => s,
        None => {
            let last = parsed.iter().map(|p| p.0).max().unwrap_or(0);
            let est = mtime_unix.map_or(0, |m| seconds_to_ns(m) - last);
            warnings.general(
                "wall_clock_estimated",
                "the session gives no wall-clock start (no session-start with started_at, and `t` \
                 is relative): started_at is estimated from the file's modification time",
                json!({"estimated_unix_ns": est}),
            );
            est
        }
    };
    let mut negative = 0u32;
    let to_ns = |t: i64, negative: &mut u32| -> u64 {
        let ns = t - t0_rel;
        if ns < 0 {
            *negative += 1;
        }
        ns.max(0) as u64
    };
    let mut m = Mapper {
        warnings,
        turns: BTreeMap::new(),
        loose: Vec::new(),
        cur: None,
        bot_turn: None,
        overlap_since: None,
        next_turn: 1,
        calls: Vec::new(),
        unknown_types: BTreeSet::new(),
        usage: Vec::new(),
    };
    let mut audio_start_ns = 0i64;
    for (t, n, msg) in &parsed {
        let ns = to_ns(*t, &mut negative);
        if matches!(
            msg.get("type").and_then(Value::as_str),
            Some("recording-started" | "audio-recording-started")
        ) {
            audio_start_ns = t - t0_rel;
        }
        m.message(ns, *n, msg);
    }
    if negative > 0 {
        m.warnings.general(
            "times_before_start",
            format!("{negative} lines have a negative `t`; placed at 0"),
            json!({"count": negative}),
        );
    }
    let (mut records, warnings) = m.finish();
    for (_, attrs) in raw_events {
        records.push(TimedRecord::new(
            0,
            Record::Event(Event {
                turn: None,
                name: "pipecat_unparsed_line".into(),
                attributes: attrs,
            }),
        ));
    }
    let session_id = field("session_id")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| name.to_string());
    let mut tags = Attributes::new();
    tags.insert("imported_from".into(), json!("pipecat"));
    if !name.is_empty() {
        tags.insert("import_source".into(), json!(name));
    }
    if let Some(Value::Object(d)) = session.as_ref().map(|s| {
        Value::Object(
            s.2.get("data")
                .and_then(Value::as_object)
                .unwrap_or(&s.2)
                .clone(),
        )
    }) {
        for (k, v) in d {
            if k != "type" && (v.is_string() || v.is_number() || v.is_boolean()) {
                tags.insert(format!("pipecat.{k}"), v);
            }
        }
    }
    let header = Header {
        session_id: sanitize_session_id(&session_id),
        started_at: rfc3339(t0_ns),
        started_at_unix_ns: t0_ns,
        agent: AgentInfo {
            name: field("agent")
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_else(|| "pipecat".into()),
            version: field("version")
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
        },
        environment: None,
        tags,
        tracks: Vec::new(),
    };
    Ok(ImportedCall {
        header,
        records,
        warnings: warnings.into_vec(),
        audio_start_ns,
        audio_hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_read_from_processor_names() {
        assert_eq!(service_of("DeepgramSTTService#0", None), Stage::Stt);
        assert_eq!(service_of("ElevenLabsTTSService#0", None), Stage::Tts);
        assert_eq!(service_of("CartesiaTTSService#1", None), Stage::Tts);
        assert_eq!(service_of("OpenAILLMService#0", None), Stage::Llm);
        assert_eq!(service_of("my_tts", None), Stage::Tts);
        assert_eq!(service_of("x", Some("LLM")), Stage::Llm);
        assert_eq!(
            service_of("SileroVAD#0", None),
            Stage::Custom("SileroVAD".into())
        );
    }

    #[test]
    fn words_join_with_spaces_but_not_before_punctuation() {
        let mut s = String::new();
        for w in ["Hello", ",", "world", " again "] {
            join_words(&mut s, w);
        }
        assert_eq!(s, "Hello, world again");
    }
}

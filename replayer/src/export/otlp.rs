//! OTLP/JSON trace export: spans session > turn > stage, loadable by Jaeger, Tempo or
//! Langfuse (`{"resourceSpans":[{"resource":{attributes},"scopeSpans":[{"scope":{name},
//! "spans":[...]}]}]}`). Ids are derived from the session id, turn and stage, so exporting
//! the same call twice gives the same ids. Times are unix nanoseconds, as strings.

use serde_json::{json, Value};

use calltape_format::{Record, Stage, Summary, TimedRecord};

use calltape_format::call::turns::turn_end_ns;
use calltape_format::call::{classify, TurnTimeline};

const SPAN_KIND_INTERNAL: u32 = 1;
const STATUS_ERROR: u32 = 2;

/// 64-bit FNV-1a.
fn fnv1a(data: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 32 hex digits, from the session id.
pub fn trace_id(session_id: &str) -> String {
    let a = fnv1a(session_id.as_bytes(), 0x5eed_0001);
    let b = fnv1a(session_id.as_bytes(), 0x5eed_0002);
    format!("{a:016x}{b:016x}")
}

/// 16 hex digits, from the session id and a path such as `turn/3/llm/0`. Never all zeros.
pub fn span_id(session_id: &str, path: &str) -> String {
    let mut key = session_id.as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(path.as_bytes());
    let h = fnv1a(&key, 0x5eed_0003).max(1);
    format!("{h:016x}")
}

/// An OTLP attribute value.
#[derive(Debug, Clone)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

fn attr(key: &str, v: AttrValue) -> Value {
    let value = match v {
        AttrValue::Str(s) => json!({"stringValue": s}),
        // int64 is a string in the protobuf JSON mapping
        AttrValue::Int(i) => json!({"intValue": i.to_string()}),
        AttrValue::Double(d) => json!({"doubleValue": d}),
        AttrValue::Bool(b) => json!({"boolValue": b}),
    };
    json!({"key": key, "value": value})
}

fn s(v: impl Into<String>) -> AttrValue {
    AttrValue::Str(v.into())
}

struct SpanBuilder<'a> {
    session_id: &'a str,
    trace_id: String,
    base_ns: i64,
    spans: Vec<Value>,
}

impl SpanBuilder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        path: &str,
        parent: Option<&str>,
        name: &str,
        start_ns: u64,
        end_ns: u64,
        attrs: Vec<Value>,
        events: Vec<Value>,
        error: Option<String>,
    ) -> String {
        let id = span_id(self.session_id, path);
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": id,
            "name": name,
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": self.unix(start_ns),
            "endTimeUnixNano": self.unix(end_ns.max(start_ns)),
            "attributes": attrs,
        });
        if let Some(p) = parent {
            span["parentSpanId"] = json!(p);
        }
        if !events.is_empty() {
            span["events"] = json!(events);
        }
        if let Some(message) = error {
            span["status"] = json!({"code": STATUS_ERROR, "message": message});
        }
        self.spans.push(span);
        id
    }

    fn unix(&self, session_ns: u64) -> String {
        (self.base_ns as i128 + i128::from(session_ns)).to_string()
    }

    fn event(&self, name: &str, time_ns: u64, attrs: Vec<Value>) -> Value {
        json!({"timeUnixNano": self.unix(time_ns), "name": name, "attributes": attrs})
    }
}

/// The OTLP/JSON document for one call.
pub fn spans(summary: &Summary, records: &[TimedRecord]) -> Value {
    let h = &summary.header;
    let mut b = SpanBuilder {
        session_id: &h.session_id,
        trace_id: trace_id(&h.session_id),
        base_ns: h.started_at_unix_ns,
        spans: Vec::new(),
    };
    let t = &summary.totals;
    let mut session_attrs = vec![
        attr("session.id", s(&h.session_id)),
        attr("calltape.session_id", s(&h.session_id)),
        attr("calltape.turns", AttrValue::Int(i64::from(t.turns))),
        attr(
            "calltape.interruptions",
            AttrValue::Int(i64::from(t.interruptions)),
        ),
        attr("calltape.errors", AttrValue::Int(i64::from(t.errors))),
        attr(
            "calltape.tool_calls",
            AttrValue::Int(i64::from(t.tool_calls)),
        ),
        attr(
            "calltape.tool_errors",
            AttrValue::Int(i64::from(t.tool_errors)),
        ),
        attr(
            "gen_ai.usage.input_tokens",
            AttrValue::Int(t.usage.prompt_tokens as i64),
        ),
        attr(
            "gen_ai.usage.output_tokens",
            AttrValue::Int(t.usage.completion_tokens as i64),
        ),
    ];
    if let Some(v) = &t.end_reason {
        session_attrs.push(attr("calltape.end_reason", s(v)));
    }
    if let Some(v) = &t.outcome {
        session_attrs.push(attr("calltape.outcome", s(v)));
    }
    for (k, v) in [
        ("calltape.e2e_p50_ms", t.e2e_p50_ns),
        ("calltape.e2e_p95_ms", t.e2e_p95_ns),
    ] {
        if let Some(v) = v {
            session_attrs.push(attr(k, AttrValue::Double(v as f64 / 1e6)));
        }
    }
    if summary.recovery.is_some() {
        session_attrs.push(attr("calltape.recovered", AttrValue::Bool(true)));
    }
    let session_span = b.push(
        "session",
        None,
        "agent_session",
        0,
        summary.duration_ns,
        session_attrs,
        Vec::new(),
        (t.errors > 0).then(|| format!("{} error(s) in the call", t.errors)),
    );

    // records grouped by turn, in order
    let timeline = TurnTimeline::of(summary);
    let turn_of: Vec<Option<u32>> = records.iter().map(|r| timeline.turn_of(r)).collect();
    let mut turn_spans = std::collections::BTreeMap::new();
    for (i, turn) in summary.turns.iter().enumerate() {
        let l = &turn.latency;
        let mut attrs = vec![
            attr("turn.number", AttrValue::Int(i64::from(turn.turn))),
            attr("turn.speaker", s(turn.speaker.to_string())),
            attr("turn.was_interrupted", AttrValue::Bool(turn.interrupted)),
            attr("turn.user_text", s(&turn.user_text)),
            attr("turn.agent_text", s(&turn.agent_text)),
            attr(
                "turn.tool_calls",
                AttrValue::Int(i64::from(turn.tool_calls)),
            ),
            attr(
                "turn.tool_errors",
                AttrValue::Int(i64::from(turn.tool_errors)),
            ),
        ];
        if let Some(e2e) = l.e2e_ns {
            attrs.push(attr(
                "turn.user_bot_latency_seconds",
                AttrValue::Double(e2e as f64 / 1e9),
            ));
            attrs.push(attr(
                "calltape.latency.e2e_ms",
                AttrValue::Double(e2e as f64 / 1e6),
            ));
        }
        for (name, v) in l.parts() {
            if let Some(v) = v {
                attrs.push(attr(
                    &format!("calltape.latency.{name}_ms"),
                    AttrValue::Double(v as f64 / 1e6),
                ));
            }
        }
        if let Some(v) = l.reported_e2e_ns {
            attrs.push(attr(
                "calltape.latency.reported_e2e_ms",
                AttrValue::Double(v as f64 / 1e6),
            ));
        }
        if !l.flags.is_empty() {
            attrs.push(attr("calltape.latency.flags", s(l.flags_text(","))));
        }
        let mut events = Vec::new();
        for (r, rt) in records.iter().zip(&turn_of) {
            if *rt != Some(turn.turn) {
                continue;
            }
            if let Some(err) = classify::error(&r.record) {
                let mut a = vec![
                    attr("exception.type", s(err.origin.as_str())),
                    attr("exception.message", s(&err.message)),
                ];
                if let Some(source) = &err.source {
                    a.push(attr("calltape.error.source", s(source)));
                }
                events.push(b.event("exception", r.time_ns, a));
            } else if let Record::Event(e) = &r.record {
                if e.name == "interruption" {
                    let a = e
                        .attributes
                        .iter()
                        .map(|(k, v)| {
                            attr(
                                k,
                                s(v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())),
                            )
                        })
                        .collect();
                    events.push(b.event("interruption", r.time_ns, a));
                }
            }
        }
        let error = (turn.errors > 0 || turn.tool_errors > 0).then(|| {
            format!(
                "{} error(s), {} failed tool call(s)",
                turn.errors, turn.tool_errors
            )
        });
        let id = b.push(
            &format!("turn/{}", turn.turn),
            Some(&session_span),
            "turn",
            turn.start_ns,
            turn_end_ns(summary, i),
            attrs,
            events,
            error,
        );
        turn_spans.insert(turn.turn, id);
    }

    let mut seen = std::collections::HashMap::<String, u32>::new();
    for (r, turn) in records.iter().zip(turn_of) {
        let parent = turn
            .and_then(|t| turn_spans.get(&t).cloned())
            .unwrap_or_else(|| session_span.clone());
        let turn_key = turn.map(|t| t.to_string()).unwrap_or_else(|| "none".into());
        let mut path_for = |what: &str| {
            let n = seen.entry(format!("{turn_key}/{what}")).or_insert(0);
            *n += 1;
            format!("turn/{turn_key}/{what}/{}", *n - 1)
        };
        match &r.record {
            Record::StageTiming(st) => {
                let mut attrs = vec![attr("calltape.stage", s(st.stage.to_string()))];
                if let Some(t) = turn {
                    attrs.push(attr("turn.number", AttrValue::Int(i64::from(t))));
                }
                if let Some(v) = st.ttft_ns {
                    attrs.push(attr("calltape.ttft_ms", AttrValue::Double(v as f64 / 1e6)));
                    attrs.push(attr(
                        "gen_ai.server.time_to_first_token",
                        AttrValue::Double(v as f64 / 1e9),
                    ));
                }
                if let Some(v) = st.ttfb_ns {
                    attrs.push(attr("calltape.ttfb_ms", AttrValue::Double(v as f64 / 1e6)));
                }
                if let Some(m) = &st.model {
                    attrs.push(attr("gen_ai.request.model", s(m)));
                }
                if let Some(p) = &st.provider {
                    attrs.push(attr("gen_ai.system", s(p)));
                }
                if let Some(v) = st.prompt_tokens {
                    attrs.push(attr("gen_ai.usage.input_tokens", AttrValue::Int(v as i64)));
                }
                if let Some(v) = st.completion_tokens {
                    attrs.push(attr("gen_ai.usage.output_tokens", AttrValue::Int(v as i64)));
                }
                if let Some(v) = st.characters {
                    attrs.push(attr("calltape.tts.characters", AttrValue::Int(v as i64)));
                }
                if st.cancelled {
                    attrs.push(attr("calltape.cancelled", AttrValue::Bool(true)));
                }
                let name = match &st.stage {
                    Stage::Llm => "llm_request".to_string(),
                    Stage::Tts => "tts_request".to_string(),
                    Stage::Stt => "stt".to_string(),
                    Stage::Eou => "eou_detection".to_string(),
                    Stage::Vad => "user_speaking".to_string(),
                    Stage::Playback => "agent_speaking".to_string(),
                    Stage::Tool => "function_tool".to_string(),
                    Stage::Custom(c) => c.clone(),
                };
                let path = path_for(st.stage.as_str());
                b.push(
                    &path,
                    Some(&parent),
                    &name,
                    st.start_ns,
                    st.end_ns,
                    attrs,
                    Vec::new(),
                    None,
                );
            }
            Record::ToolCall(c) => {
                let mut attrs = vec![
                    attr("gen_ai.tool.name", s(&c.name)),
                    attr("lk.function_tool.name", s(&c.name)),
                    attr("lk.function_tool.is_error", AttrValue::Bool(c.is_error)),
                    attr("calltape.tool.arguments", s(c.arguments.to_string())),
                    attr("calltape.tool.output", s(c.output.to_string())),
                ];
                if let Some(id) = &c.call_id {
                    attrs.push(attr("gen_ai.tool.call.id", s(id)));
                }
                let path = path_for(&format!("tool_call:{}", c.name));
                b.push(
                    &path,
                    Some(&parent),
                    &format!("tool_call {}", c.name),
                    c.start_ns,
                    c.end_ns,
                    attrs,
                    Vec::new(),
                    c.is_error
                        .then(|| format!("tool {} failed: {}", c.name, c.output)),
                );
            }
            _ => {}
        }
    }

    let mut resource = vec![
        attr(
            "service.name",
            s(if h.agent.name.is_empty() {
                "voice-agent"
            } else {
                &h.agent.name
            }),
        ),
        attr("service.version", s(&h.agent.version)),
        attr("calltape.session_id", s(&h.session_id)),
        attr("calltape.started_at", s(&h.started_at)),
    ];
    if let Some(env) = &h.environment {
        resource.push(attr("deployment.environment", s(env)));
    }
    for (k, v) in &h.tags {
        resource.push(attr(
            &format!("calltape.tag.{k}"),
            s(v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())),
        ));
    }
    json!({
        "resourceSpans": [{
            "resource": {"attributes": resource},
            "scopeSpans": [{
                "scope": {"name": "calltape", "version": env!("CARGO_PKG_VERSION")},
                "spans": b.spans,
            }],
        }]
    })
}

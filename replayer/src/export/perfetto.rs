//! Perfetto / Chrome trace-event export: a JSON trace that opens in ui.perfetto.dev or
//! chrome://tracing. One process per call, one thread (track) per pipeline stage plus turns,
//! speech and events; `X` complete events for every timing, `i` instants for interruptions
//! and errors, `M` metadata naming the process and threads. Times are microseconds.
//!
//! The Trace Event Format lets `X` slices on one thread only nest or follow each other, never
//! partly overlap. Overlapping things (the turns of an interrupted call, two LLM requests in
//! flight) are real in voice calls, so each track is split into lanes (`llm`, `llm (2)`, …):
//! a slice goes to the first lane where it nests or follows, else to a new lane.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use calltape_format::{Record, Speaker, Stage, Summary, TimedRecord};

use calltape_format::call::latency::Part;
use calltape_format::call::turns::turn_end_ns;
use calltape_format::call::{classify, TurnTimeline};

const PID: u32 = 1;

/// Fixed tracks, in display order. Custom stages get ids from 100 up.
const TRACKS: [(u32, &str); 11] = [
    (1, "turns"),
    (2, "vad"),
    (3, "eou"),
    (4, "stt"),
    (5, "llm"),
    (6, "tool"),
    (7, "tts"),
    (8, "playback"),
    (9, "user speech"),
    (10, "agent speech"),
    (11, "events"),
];

fn tid_of_stage(stage: &Stage, custom: &mut BTreeMap<String, u32>) -> u32 {
    match stage {
        Stage::Vad => 2,
        Stage::Eou => 3,
        Stage::Stt => 4,
        Stage::Llm => 5,
        Stage::Tool => 6,
        Stage::Tts => 7,
        Stage::Playback => 8,
        Stage::Custom(name) => {
            let next = 100 + custom.len() as u32;
            *custom.entry(name.clone()).or_insert(next)
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// An `X` slice on a track, its bounds kept in ns until it is given a lane.
struct Slice {
    track: u32,
    start_ns: u64,
    end_ns: u64,
    event: Value,
}

fn complete(name: &str, cat: &str, tid: u32, start_ns: u64, end_ns: u64, args: Value) -> Slice {
    let end_ns = end_ns.max(start_ns);
    Slice {
        track: tid,
        start_ns,
        end_ns,
        event: json!({
            "name": name, "cat": cat, "ph": "X", "pid": PID, "tid": tid,
            "ts": us(start_ns), "dur": us(end_ns - start_ns), "args": args,
        }),
    }
}

/// Splits each track's slices into lanes where they only nest or follow each other. Returns
/// the events with their final `tid`, and the extra lanes as (tid, track, lane number from 2).
/// Extra lanes get tids from `first_free` up.
fn into_lanes(slices: Vec<Slice>, first_free: u32) -> (Vec<Value>, Vec<(u32, u32, u32)>) {
    let mut by_track: BTreeMap<u32, Vec<Slice>> = BTreeMap::new();
    for s in slices {
        by_track.entry(s.track).or_default().push(s);
    }
    let mut events = Vec::new();
    let mut extra = Vec::new();
    let mut next_tid = first_free;
    for (track, mut slices) in by_track {
        // parents before their children: earliest first, longest first at the same start
        slices.sort_by_key(|s| (s.start_ns, std::cmp::Reverse(s.end_ns)));
        // per lane: its tid and the ends of the slices still open at the current start
        let mut lanes: Vec<(u32, Vec<u64>)> = Vec::new();
        for mut s in slices {
            let mut chosen = None;
            for (tid, open) in lanes.iter_mut() {
                while open.last().is_some_and(|&end| end <= s.start_ns) {
                    open.pop();
                }
                if open.last().is_none_or(|&end| s.end_ns <= end) {
                    open.push(s.end_ns);
                    chosen = Some(*tid);
                    break;
                }
            }
            let tid = chosen.unwrap_or_else(|| {
                let tid = if lanes.is_empty() {
                    track
                } else {
                    let tid = next_tid;
                    next_tid += 1;
                    extra.push((tid, track, lanes.len() as u32 + 1));
                    tid
                };
                lanes.push((tid, vec![s.end_ns]));
                tid
            });
            s.event["tid"] = json!(tid);
            events.push(s.event);
        }
    }
    (events, extra)
}

fn instant(name: &str, cat: &str, time_ns: u64, args: Value) -> Value {
    json!({
        "name": name, "cat": cat, "ph": "i", "s": "t", "pid": PID, "tid": 11,
        "ts": us(time_ns), "args": args,
    })
}

/// The trace of one call: `{"traceEvents": [...], "displayTimeUnit": "ms", "metadata": {...}}`.
pub fn trace(summary: &Summary, records: &[TimedRecord]) -> Value {
    let mut slices = Vec::new();
    let mut events = Vec::new();
    let mut custom = BTreeMap::new();
    let timeline = TurnTimeline::of(summary);
    let turn_of: Vec<Option<u32>> = records.iter().map(|r| timeline.turn_of(r)).collect();
    for (i, t) in summary.turns.iter().enumerate() {
        let l = &t.latency;
        let mut args = Map::new();
        args.insert("turn".into(), json!(t.turn));
        args.insert("speaker".into(), json!(t.speaker));
        args.insert("user_text".into(), json!(t.user_text));
        args.insert("agent_text".into(), json!(t.agent_text));
        args.insert("interrupted".into(), json!(t.interrupted));
        for (part, v) in [(Part::E2e, l.e2e_ns)].into_iter().chain(l.parts()) {
            if let Some(v) = v {
                args.insert(format!("{part}_ms"), json!(v as f64 / 1e6));
            }
        }
        if !l.flags.is_empty() {
            args.insert("flags".into(), json!(l.flags));
        }
        slices.push(complete(
            &format!("turn {} ({})", t.turn, t.speaker),
            "turn",
            1,
            t.start_ns,
            turn_end_ns(summary, i),
            Value::Object(args),
        ));
        if let (Some(a), Some(b)) = (l.user_speech_end_ns, l.agent_audio_start_ns) {
            if b > a {
                slices.push(complete(
                    "e2e (silence the caller hears)",
                    "latency",
                    1,
                    a,
                    b,
                    json!({"turn": t.turn, "e2e_ms": ms(b - a)}),
                ));
            }
        }
    }
    for (r, turn) in records.iter().zip(turn_of) {
        match &r.record {
            Record::StageTiming(s) => {
                let tid = tid_of_stage(&s.stage, &mut custom);
                let mut args = Map::new();
                args.insert("turn".into(), json!(turn));
                args.insert(
                    "duration_ms".into(),
                    json!(ms(s.end_ns.saturating_sub(s.start_ns))),
                );
                if let Some(v) = s.ttft_ns {
                    args.insert("ttft_ms".into(), json!(ms(v)));
                }
                if let Some(v) = s.ttfb_ns {
                    args.insert("ttfb_ms".into(), json!(ms(v)));
                }
                for (k, v) in [
                    ("prompt_tokens", s.prompt_tokens),
                    ("completion_tokens", s.completion_tokens),
                    ("characters", s.characters),
                ] {
                    if let Some(v) = v {
                        args.insert(k.into(), json!(v));
                    }
                }
                if let Some(m) = &s.model {
                    args.insert("model".into(), json!(m));
                }
                if let Some(p) = &s.provider {
                    args.insert("provider".into(), json!(p));
                }
                if s.cancelled {
                    args.insert("cancelled".into(), json!(true));
                }
                for (k, v) in &s.attributes {
                    args.entry(k.clone()).or_insert(v.clone());
                }
                let name = match &s.model {
                    Some(m) => format!("{} {m}", s.stage),
                    None => s.stage.to_string(),
                };
                slices.push(complete(
                    &name,
                    "stage",
                    tid,
                    s.start_ns,
                    s.end_ns,
                    Value::Object(args),
                ));
                // first token / first byte as a nested slice
                let first = match s.stage {
                    Stage::Llm => s.ttft_ns.map(|v| ("ttft", v)),
                    Stage::Tts => s.ttfb_ns.map(|v| ("ttfb", v)),
                    _ => None,
                };
                if let Some((what, v)) = first {
                    slices.push(complete(
                        what,
                        "stage",
                        tid,
                        s.start_ns,
                        s.start_ns + v,
                        json!({"turn": turn, format!("{what}_ms"): ms(v)}),
                    ));
                }
            }
            Record::ToolCall(c) => {
                slices.push(complete(
                    &format!("tool_call {}", c.name),
                    "tool",
                    6,
                    c.start_ns,
                    c.end_ns,
                    json!({"turn": turn, "name": c.name, "call_id": c.call_id, "is_error": c.is_error,
                           "arguments": c.arguments.to_string(), "output": c.output.to_string()}),
                ));
                if c.is_error {
                    events.push(instant(
                        &format!("tool error: {}", c.name),
                        "error",
                        c.end_ns,
                        json!({"turn": turn, "output": c.output.to_string()}),
                    ));
                }
            }
            Record::Transcript(t) if t.is_final => {
                let (Some(a), Some(b)) = (t.start_ns, t.end_ns) else {
                    continue;
                };
                let tid = if t.speaker == Speaker::User { 9 } else { 10 };
                let mut args = json!({"turn": turn, "text": t.text, "interrupted": t.interrupted});
                if let Some(h) = &t.heard_text {
                    args["heard_text"] = json!(h);
                }
                slices.push(complete(
                    &super::units::preview(t.heard_text.as_deref().unwrap_or(&t.text), 40),
                    "speech",
                    tid,
                    a,
                    b,
                    args,
                ));
            }
            Record::Event(e)
                if matches!(
                    e.name.as_str(),
                    "interruption" | "error" | "overlapping_speech" | "handoff" | "metrics_flag"
                ) =>
            {
                let mut args = Value::Object(e.attributes.clone());
                args["turn"] = json!(turn);
                let cat = if classify::is_error(&r.record) {
                    "error"
                } else {
                    "event"
                };
                events.push(instant(&e.name, cat, r.time_ns, args));
            }
            Record::Log(l) if classify::is_error(&r.record) => {
                events.push(instant(
                    &format!("error: {}", super::units::preview(&l.message, 60)),
                    "error",
                    r.time_ns,
                    json!({"turn": turn, "target": l.target, "message": l.message}),
                ));
            }
            Record::Dropped(d) => {
                events.push(instant(
                    &format!("dropped {} {}", d.count, d.unit),
                    "error",
                    r.time_ns,
                    json!({"what": d.what, "count": d.count, "unit": d.unit, "reason": d.reason}),
                ));
            }
            _ => {}
        }
    }
    let h = &summary.header;
    let mut meta = vec![
        json!({"name": "process_name", "ph": "M", "pid": PID, "tid": 0,
               "args": {"name": format!("calltape {} ({} {})", h.session_id, h.agent.name, h.agent.version)}}),
        json!({"name": "process_sort_index", "ph": "M", "pid": PID, "tid": 0, "args": {"sort_index": 0}}),
    ];
    let (laid_out, lanes) = into_lanes(slices, 100 + custom.len() as u32);
    let names: BTreeMap<u32, String> = TRACKS
        .iter()
        .map(|(tid, name)| (*tid, name.to_string()))
        .chain(custom.iter().map(|(name, tid)| (*tid, name.clone())))
        .collect();
    // a track's extra lanes sort right after it
    let named = names
        .iter()
        .map(|(tid, name)| (*tid, name.clone(), *tid * 100))
        .chain(lanes.iter().map(|(tid, track, n)| {
            let name = names.get(track).map_or("?", String::as_str);
            (*tid, format!("{name} ({n})"), track * 100 + n)
        }));
    for (tid, name, sort) in named {
        meta.push(json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": tid, "args": {"name": name}}));
        meta.push(json!({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": tid, "args": {"sort_index": sort}}));
    }
    meta.extend(laid_out);
    meta.extend(events);
    json!({
        "traceEvents": meta,
        "displayTimeUnit": "ms",
        "metadata": {
            "session_id": h.session_id,
            "started_at": h.started_at,
            "agent": h.agent.name,
            "agent_version": h.agent.version,
            "source": "calltape",
        },
    })
}

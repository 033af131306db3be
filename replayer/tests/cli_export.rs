//! Exports read back: WAV sample-exact against the archive (gaps as zeros), SRT/WebVTT
//! timings, Perfetto and OTLP JSON against the fields their viewers require.

mod cli_support;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use cli_support::*;
use serde_json::Value;

fn audio_call(id: &str) -> CallSpec {
    let mut spec = three_turn_call(id);
    spec.audio = true;
    spec
}

/// What the archive holds for `track` at sample `n`: the recorded value, or 0 in a gap.
fn expected(spec: &CallSpec, track: u16, n: u64) -> i16 {
    let recorded = recorded_ranges(spec, track)
        .iter()
        .any(|&(a, b)| n >= a && n < b);
    if recorded {
        sample_value(track, n)
    } else {
        0
    }
}

fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples = r.samples::<i16>().map(Result::unwrap).collect();
    (spec, samples)
}

#[test]
fn wav_tracks_are_sample_exact_with_gaps_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let spec = audio_call("wav-1");
    let path = write_call(dir.path(), &spec);
    let duration_ns = 3 * TURN_NS; // the session_end at 30 s is the last record
    let total = duration_ns * u64::from(RATE) / 1_000_000_000;

    let user = dir.path().join("user.wav");
    ok(&["export", s(&path), "--wav", s(&user), "--track", "user"]);
    let (ws, samples) = read_wav(&user);
    assert_eq!(
        (ws.channels, ws.sample_rate, ws.bits_per_sample),
        (1, RATE, 16)
    );
    assert_eq!(samples.len() as u64, total);
    for (n, &x) in samples.iter().enumerate() {
        assert_eq!(x, expected(&spec, 1, n as u64), "user sample {n}");
    }
    assert!(samples.iter().any(|&x| x != 0));
    assert_eq!(samples[0], 0, "the first 0.5 s were not recorded: silence");

    let stereo = dir.path().join("stereo.wav");
    ok(&["export", s(&path), "--wav", s(&stereo)]);
    let (ws, samples) = read_wav(&stereo);
    assert_eq!(ws.channels, 2);
    assert_eq!(samples.len() as u64, 2 * total);
    for (n, lr) in samples.chunks(2).enumerate() {
        assert_eq!(
            lr[0],
            expected(&spec, 1, n as u64),
            "left (user) sample {n}"
        );
        assert_eq!(
            lr[1],
            expected(&spec, 2, n as u64),
            "right (agent) sample {n}"
        );
    }
}

#[test]
fn wav_of_a_turn_and_of_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let spec = audio_call("wav-2");
    let path = write_call(dir.path(), &spec);
    let agent = dir.path().join("agent.wav");
    ok(&[
        "export",
        s(&path),
        "--wav",
        s(&agent),
        "--track",
        "agent",
        "--from",
        "12.5s",
        "--to",
        "15s",
    ]);
    let (_, samples) = read_wav(&agent);
    let first = 12_500 * u64::from(RATE) / 1000;
    assert_eq!(samples.len(), (2_500 * RATE / 1000) as usize);
    for (i, &x) in samples.iter().enumerate() {
        assert_eq!(
            x,
            expected(&spec, 2, first + i as u64),
            "agent sample {}",
            first + i as u64
        );
    }
    // turn 2 runs from 10 s to its turn_end
    let turn = dir.path().join("turn2.wav");
    let v = json_of(&[
        "export",
        s(&path),
        "--wav",
        s(&turn),
        "--track",
        "user",
        "--turn",
        "2",
        "--json",
    ]);
    let w = &v["written"][0];
    assert_eq!(w["from_ns"], 10 * 1_000_000_000u64);
    let (_, samples) = read_wav(&turn);
    assert_eq!(samples.len() as u64, w["frames"].as_u64().unwrap());
    for (i, &x) in samples.iter().enumerate() {
        assert_eq!(x, expected(&spec, 1, 80_000 + i as u64));
    }
    let bad = run(&["export", s(&path), "--wav", s(&turn), "--turn", "9"], &[]);
    assert_eq!(code(&bad), 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no turn 9"));
}

#[test]
fn stereo_with_different_rates_meets_at_the_higher_rate() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = audio_call("wav-3");
    spec.agent_rate = 16_000;
    let path = write_call(dir.path(), &spec);
    let wav = dir.path().join("x.wav");
    ok(&["export", s(&path), "--wav", s(&wav)]);
    let mut r = hound::WavReader::open(&wav).unwrap();
    let spec_out = r.spec();
    assert_eq!((spec_out.channels, spec_out.sample_rate), (2, 16_000));
    let samples: Vec<i16> = r.samples::<i16>().map(|x| x.unwrap()).collect();
    // the agent (right) is sample-exact at its own rate; the user (left, 8 kHz) repeats each
    // of its samples twice
    for (track, rate, channel) in [(2u16, 16_000u64, 1usize), (1, 8_000, 0)] {
        let (a, b) = recorded_ranges(&spec, track)[0];
        for n in [a, (a + b) / 2, b - 1] {
            let out_index = (n * 16_000 / rate) as usize;
            assert_eq!(
                samples[out_index * 2 + channel],
                sample_value(track, n),
                "track {track} sample {n}"
            );
        }
    }
}

#[test]
fn srt_and_vtt_timings_come_from_the_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = three_turn_call("srt-1");
    let path = write_call(dir.path(), &spec);
    let srt = dir.path().join("t.srt");
    ok(&["export", s(&path), "--transcript", s(&srt)]);
    let text = std::fs::read_to_string(&srt).unwrap();
    let blocks: Vec<&str> = text.trim_end().split("\n\n").collect();
    assert_eq!(blocks.len(), 6, "{text}");
    assert_eq!(
        blocks[0],
        "1\n00:00:00,500 --> 00:00:02,000\nUser: Hello there"
    );
    // agent of turn 1 speaks at 2.0 s + e2e 0.8 s for 1.5 s
    assert_eq!(
        blocks[1],
        "2\n00:00:02,800 --> 00:00:04,300\nAgent: Hi, how can I help?"
    );
    assert_eq!(
        blocks[2],
        "3\n00:00:10,500 --> 00:00:12,000\nUser: I want a refund for my order"
    );
    assert_eq!(
        blocks[3],
        "4\n00:00:14,400 --> 00:00:15,900\nAgent: Let me check that order for you"
    );

    let vtt = ok(&["export", s(&path), "--transcript", "-", "--format", "vtt"]);
    assert!(
        vtt.starts_with("WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\n<v User>Hello there\n"),
        "{vtt}"
    );

    let json = ok(&["export", s(&path), "--transcript", "-", "--format", "json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cues"].as_array().unwrap().len(), 6);
    assert_eq!(v["cues"][3]["start_ns"], 14_400_000_000u64);
    assert_eq!(v["cues"][3]["turn"], 2);

    // a range: times count from its start
    let part = ok(&[
        "export",
        s(&path),
        "--transcript",
        "-",
        "--format",
        "srt",
        "--turn",
        "2",
    ]);
    assert!(
        part.starts_with("1\n00:00:00,500 --> 00:00:02,000\nUser: I want a refund"),
        "{part}"
    );
}

#[test]
fn perfetto_trace_has_tracks_slices_and_instants() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = three_turn_call("trace-1");
    spec.turns[2].error = true;
    let path = write_call(dir.path(), &spec);
    let out = dir.path().join("t.json");
    ok(&["export", s(&path), "--perfetto", s(&out)]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let mut named_threads = HashSet::new();
    let mut process_named = false;
    for e in events.iter().filter(|e| e["ph"] == "M") {
        if e["name"] == "thread_name" {
            named_threads.insert(e["tid"].as_u64().unwrap());
            assert!(e["args"]["name"].is_string());
        }
        if e["name"] == "process_name" {
            process_named = true;
            assert!(e["args"]["name"].as_str().unwrap().contains("trace-1"));
        }
    }
    assert!(process_named);
    let mut stage_tids: HashMap<String, u64> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        for k in ["name", "ts", "dur", "pid", "tid"] {
            assert!(!e[k].is_null(), "X event without {k}: {e}");
        }
        assert!(e["dur"].as_f64().unwrap() >= 0.0);
        let tid = e["tid"].as_u64().unwrap();
        assert!(named_threads.contains(&tid), "tid {tid} has no thread_name");
        if e["cat"] == "stage" {
            let stage = e["name"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string();
            if let Some(prev) = stage_tids.insert(stage.clone(), tid) {
                if !matches!(stage.as_str(), "ttft" | "ttfb") {
                    assert_eq!(prev, tid, "one track per stage");
                }
            }
        }
    }
    for stage in ["vad", "eou", "stt", "llm", "tts", "playback"] {
        assert!(stage_tids.contains_key(stage), "no {stage} slices");
    }
    assert_ne!(stage_tids["llm"], stage_tids["tts"]);
    let llm = events
        .iter()
        .find(|e| e["ph"] == "X" && e["name"] == "llm gpt-test")
        .unwrap();
    assert_eq!(llm["args"]["ttft_ms"], 400.0);
    assert_eq!(llm["args"]["model"], "gpt-test");
    // turn 1 LLM request: committed at 2.16 s
    assert_eq!(llm["ts"], 2_160_000.0);
    let instants: Vec<&Value> = events.iter().filter(|e| e["ph"] == "i").collect();
    assert!(
        instants.iter().any(|e| e["name"] == "error"),
        "error instant"
    );
    assert!(instants
        .iter()
        .any(|e| e["name"].as_str().unwrap().starts_with("tool error")));
    for e in instants {
        assert!(e["ts"].is_number() && e["s"].is_string());
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit()) && s.chars().any(|c| c != '0')
}

#[test]
fn otlp_spans_nest_session_turn_stage_with_stable_ids() {
    let dir = tempfile::tempdir().unwrap();
    let spec = three_turn_call("otlp-1");
    let path = write_call(dir.path(), &spec);
    let out = dir.path().join("o.json");
    ok(&["export", s(&path), "--otlp", s(&out)]);
    let text = std::fs::read_to_string(&out).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let rs = &v["resourceSpans"][0];
    let attrs = rs["resource"]["attributes"].as_array().unwrap();
    assert!(attrs
        .iter()
        .any(|a| a["key"] == "service.name" && a["value"]["stringValue"] == "support-bot"));
    assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "calltape");
    let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
    let trace_id = spans[0]["traceId"].as_str().unwrap();
    assert!(is_hex(trace_id, 32));
    let mut ids = HashMap::new();
    for sp in spans {
        assert_eq!(sp["traceId"], trace_id);
        let id = sp["spanId"].as_str().unwrap();
        assert!(is_hex(id, 16), "{id}");
        assert!(
            ids.insert(id.to_string(), sp.clone()).is_none(),
            "duplicate span id {id}"
        );
        let start: u128 = sp["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u128 = sp["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(end >= start && start >= T0_UNIX_NS as u128);
        for a in sp["attributes"].as_array().unwrap() {
            let val = a["value"].as_object().unwrap();
            assert_eq!(val.len(), 1);
            let k = val.keys().next().unwrap().as_str();
            assert!(
                ["stringValue", "intValue", "doubleValue", "boolValue"].contains(&k),
                "{a}"
            );
        }
    }
    let session: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"].is_null())
        .collect();
    assert_eq!(session.len(), 1);
    let turns: Vec<&Value> = spans.iter().filter(|s| s["name"] == "turn").collect();
    assert_eq!(turns.len(), 3);
    for t in &turns {
        assert_eq!(t["parentSpanId"], session[0]["spanId"]);
    }
    let llm: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "llm_request")
        .collect();
    assert_eq!(llm.len(), 3);
    for l in &llm {
        let parent = &ids[l["parentSpanId"].as_str().unwrap()];
        assert_eq!(parent["name"], "turn");
        assert!(l["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "gen_ai.request.model"));
    }
    let tool = spans
        .iter()
        .find(|s| s["name"] == "tool_call lookup_order")
        .unwrap();
    assert_eq!(tool["status"]["code"], 2);
    // deterministic: the same export twice gives the same document
    let again = dir.path().join("o2.json");
    ok(&["export", s(&path), "--otlp", s(&again)]);
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
}

#[test]
fn export_needs_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_call(dir.path(), &three_turn_call("none"));
    let out = run(&["export", s(&path)], &[]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--wav"));
}

/// Checks the Trace Event Format's rule for `X` slices on one thread: each pair nests or
/// follows, never partly overlaps. Returns how many threads carry slices.
fn assert_slices_nest_per_thread(events: &[Value]) -> usize {
    let mut by_tid: HashMap<u64, Vec<(f64, f64, String)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        by_tid.entry(e["tid"].as_u64().unwrap()).or_default().push((
            ts,
            ts + dur,
            e["name"].as_str().unwrap().to_string(),
        ));
    }
    for (tid, mut slices) in by_tid.clone() {
        slices.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<&(f64, f64, String)> = Vec::new();
        for s in &slices {
            while open.last().is_some_and(|o| o.1 <= s.0) {
                open.pop();
            }
            if let Some(parent) = open.last() {
                assert!(
                    s.1 <= parent.1,
                    "tid {tid}: {:?} partly overlaps {:?}",
                    s,
                    parent
                );
            }
            open.push(s);
        }
    }
    by_tid.len()
}

#[test]
fn perfetto_gives_overlapping_turns_and_stages_their_own_lanes() {
    let dir = tempfile::tempdir().unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/archives");
    let mut lanes_seen = 0;
    for name in ["barge_in", "slow_llm", "tool_failure", "misheard"] {
        let out = dir.path().join(format!("{name}.json"));
        let input = samples.join(format!("{name}.calltape"));
        ok(&["export", s(&input), "--perfetto", s(&out)]);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        assert_slices_nest_per_thread(events);
        let names: HashMap<u64, String> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .map(|e| {
                let name = e["args"]["name"].as_str().unwrap().to_string();
                (e["tid"].as_u64().unwrap(), name)
            })
            .collect();
        for e in events.iter().filter(|e| e["ph"] == "X") {
            assert!(names.contains_key(&e["tid"].as_u64().unwrap()), "{e}");
        }
        lanes_seen += names.values().filter(|n| n.ends_with(" (2)")).count();
    }
    // the interrupted call's turns overlap: its turns track needed a second lane
    assert!(lanes_seen > 0, "no overlapping slices in any sample");
}

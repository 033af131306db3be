//! Pipecat JSON Lines sessions imported into archives: turns from speaking events, stages
//! from TTFB/processing metrics, tool calls, interruptions (explicit and inferred), odd and
//! unknown messages, and a stereo WAV split into user (left) and bot (right) tracks.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use calltape_format::{Record, Speaker};
use calltape_import::{self as import, audio, pipecat};
use serde_json::json;

const MS: i64 = 1_000_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pipecat")
        .join(name)
}

mod import_support;
use import_support::Imported;

fn import_with(session: &Path, wav: Option<&Path>) -> Imported {
    let call = pipecat::import_file(session).expect("session imports");
    let decoder = wav.map(|p| audio::open(p).expect("audio opens"));
    let (bytes, outcome) = import::write_archive(call, decoder, Vec::new()).expect("written");
    let scan = calltape_format::scan(Cursor::new(&bytes)).expect("archive scans");
    assert!(scan.report.intact);
    assert_eq!(scan.summary, outcome.summary);
    let mut cur = Cursor::new(&bytes);
    let archive = calltape_format::open(&mut cur).expect("archive opens");
    let mut records = Vec::new();
    for entry in &archive.index {
        records.extend(
            calltape_format::read_chunk(&mut cur, entry)
                .unwrap()
                .records,
        );
    }
    records.sort_by_key(|r| r.time_ns);
    Imported { outcome, records }
}

#[test]
fn normal_session_has_turns_and_a_breakdown_from_metrics() {
    let imp = import_with(&fixture("normal.jsonl"), None);
    let s = imp.summary();
    assert_eq!(s.header.session_id, "pc-normal-0001");
    assert_eq!(s.header.started_at, "2025-11-21T10:00:00.000Z");
    assert_eq!(s.header.agent.name, "pipecat-dental");
    assert_eq!(
        s.turns.len(),
        3,
        "greeting + two user turns, no stray turns"
    );
    assert_eq!(s.turns[0].speaker, Speaker::Agent);
    assert_eq!(s.turns[0].agent_text, "Hello, Acme Dental.");
    assert_eq!(s.turns[1].user_text, "I'd like to book a cleaning.");
    assert_eq!(s.turns[1].agent_text, "Sure. Tuesday or Thursday?");
    // user stopped at 4.40 s, turn decided at 4.75 s, bot audible at 5.50 s
    let l = imp.latency(2);
    assert_eq!(l.user_speech_end_ns, Some(4_400_000_000));
    assert_eq!(l.agent_audio_start_ns, Some(5_500_000_000));
    assert_eq!(l.e2e_ns, Some(1_100 * MS));
    assert_eq!(l.eou_ns, Some(350 * MS));
    assert_eq!(l.stt_ns, Some(0));
    assert_eq!(l.llm_ttft_ns, Some(400 * MS));
    assert_eq!(l.tts_ttfb_ns, Some(200 * MS));
    assert_eq!(l.rest_ns, Some(150 * MS));
    assert!(l.flags.is_empty(), "{:?}", l.flags);
    let u = &s.totals.usage;
    assert!(u.prompt_tokens > 0 && u.completion_tokens > 0 && u.tts_characters > 0);
    assert_eq!(s.totals.end_reason.as_deref(), Some("user_hangup"));
    assert!(
        imp.outcome.warnings.is_empty(),
        "{:?}",
        imp.outcome.warnings
    );
}

#[test]
fn interruptions_cut_the_agent_and_keep_what_was_heard() {
    let imp = import_with(&fixture("interrupted.jsonl"), None);
    let s = imp.summary();
    assert_eq!(s.turns.len(), 3);
    assert!(s.turns[0].interrupted && s.turns[1].interrupted);
    assert_eq!(s.totals.interruptions, 2);
    let agent = imp.transcripts(Speaker::Agent);
    assert_eq!(
        agent[0].text,
        "Our office hours are Monday through Friday, eight to six."
    );
    assert_eq!(
        agent[0].heard_text.as_deref(),
        Some("Our office hours are Monday")
    );
    assert!(agent[0].interrupted);
    let cuts = imp.events("interruption");
    assert_eq!(cuts.len(), 2);
    assert!(cuts[0].attributes.get("inferred").is_none(), "explicit");
    assert_eq!(
        cuts[1].attributes["inferred"],
        json!(true),
        "barge-in inferred"
    );
    assert_eq!(imp.events("overlapping_speech").len(), 1);
    // the last user turn got no answer: flagged, not invented
    assert!(imp
        .latency(3)
        .flags
        .contains(&calltape_format::call::LatencyFlag::MissingAgentAudio));
}

#[test]
fn tool_calls_and_every_llm_step_count() {
    let imp = import_with(&fixture("tools.jsonl"), None);
    let s = imp.summary();
    assert_eq!(s.turns.len(), 2);
    assert_eq!((s.totals.tool_calls, s.totals.tool_errors), (2, 1));
    let l = imp.latency(1);
    assert_eq!(l.tool_ns, Some(700 * MS));
    assert_eq!(
        l.llm_ttft_ns,
        Some(600 * MS),
        "both LLM steps wait for a first token"
    );
    assert_eq!(l.e2e_ns, Some(2_000 * MS));
    let calls: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    assert_eq!(calls[0].output, json!({"forecast": "sunny", "temp_c": 21}));
    assert_eq!(calls[1].name, "book_table");
    assert!(calls[1].is_error);
    assert_eq!(calls[1].output, json!("booking service timed out"));
    assert_eq!(s.totals.end_reason.as_deref(), Some("agent_hangup"));
}

#[test]
fn missing_and_odd_metrics_and_broken_lines_warn() {
    let imp = import_with(&fixture("missing_metrics.jsonl"), None);
    let codes = imp.warning_codes();
    for code in [
        "unparsed_line",
        "line_without_time",
        "wall_clock_estimated",
        "negative_metric",
        "absurd_metric",
        "invalid_metric",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    assert_eq!(imp.events("import_warning").len(), codes.len());
    assert_eq!(imp.events("pipecat_unparsed_line").len(), 1);
    let s = imp.summary();
    assert_eq!(s.turns.len(), 2);
    // without metrics the measured e2e is still there, all of it unexplained
    let l = imp.latency(1);
    assert_eq!(l.e2e_ns, Some(1_300 * MS));
    assert_eq!(l.llm_ttft_ns, None);
    assert_eq!(l.rest_ns, Some(1_300 * MS));
    assert_eq!(s.turns[1].agent_text, "Friday at 9 is free.");
    assert_eq!(imp.latency(2).llm_ttft_ns, None, "negative TTFB left out");
}

#[test]
fn newer_messages_are_kept_and_rtvi_shapes_read() {
    let imp = import_with(&fixture("newer.jsonl"), None);
    let codes = imp.warning_codes();
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == "unknown_message_type")
            .count(),
        3
    );
    for name in ["bot-ready", "user-llm-text", "server-message"] {
        assert_eq!(imp.events(name).len(), 1, "{name} kept");
    }
    assert_eq!(
        imp.events("server-message")[0].attributes["data"]["ticket"],
        json!("T-1")
    );
    assert_eq!(imp.events("pipecat_metric").len(), 1, "VAD confidence kept");
    let s = imp.summary();
    // unix `t`: session time 0 is the first line
    assert_eq!(s.header.started_at_unix_ns, 1_763_719_200_000_000_000);
    assert_eq!(s.turns.len(), 2);
    let l = imp.latency(2);
    assert_eq!(l.eou_ns, Some(200 * MS));
    assert_eq!(l.llm_ttft_ns, Some(350 * MS));
    assert_eq!(l.tts_ttfb_ns, Some(150 * MS), "ElevenLabsTTSService is TTS");
    assert_eq!(l.e2e_ns, Some(1_000 * MS));
    assert_eq!(s.totals.usage.cached_tokens, 200);
    assert_eq!(s.totals.end_reason.as_deref(), Some("user_hangup"));
}

#[test]
fn stereo_wav_puts_the_user_left_and_the_bot_right() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("call.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    for n in 0..16_000 * 12 {
        let t = n as f64 / 16_000.0;
        let tone = |f: f64| ((t * f * 2.0 * std::f64::consts::PI).sin() * 12_000.0) as i16;
        // user speaks 3.0–4.4 s, bot 5.5–7.0 s (as in normal.jsonl)
        w.write_sample(if (3.0..4.4).contains(&t) {
            tone(440.0)
        } else {
            0
        })
        .unwrap();
        w.write_sample(if (5.5..7.0).contains(&t) {
            tone(880.0)
        } else {
            0
        })
        .unwrap();
    }
    w.finalize().unwrap();
    let imp = import_with(&fixture("normal.jsonl"), Some(&wav));
    let tracks = &imp.summary().header.tracks;
    assert_eq!(tracks.len(), 2);
    assert_eq!(
        (tracks[0].role, tracks[1].role),
        (Speaker::User, Speaker::Agent)
    );
    assert_eq!(tracks[0].sample_rate, 16_000);
    let user = imp.audio(1);
    let bot = imp.audio(2);
    assert_eq!(user.len(), 16_000 * 12);
    let first = |s: &[i16]| s.iter().position(|x| x.unsigned_abs() > 1000).unwrap();
    assert!((first(&user) as i64 - 48_000).abs() <= 1, "user at 3.0 s");
    assert!((first(&bot) as i64 - 88_000).abs() <= 1, "bot at 5.5 s");
}

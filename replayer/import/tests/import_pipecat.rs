//! Pipecat Whisker recordings imported into archives. `fixtures/pipecat/call.whisk` was written
//! by Whisker's own `WhiskerFile` sink while Pipecat 1.14 ran the test agent of the Python
//! package (recorder/python/tests/pipecat_agent.py: websocket transport, Silero VAD, a caller
//! speaking espeak-ng audio): a greeting, a failing tool, a slow answer the caller barged into,
//! a goodbye.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use calltape_format::{Record, Speaker};
use calltape_import::pipecat::{self, whisker};
use calltape_import::{self as import};

mod import_support;
use import_support::Imported;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pipecat")
        .join(name)
}

fn import(path: &Path) -> Imported {
    let call = pipecat::import_file(path, None).expect("recording imports");
    let (bytes, outcome) = import::write_archive(call, None, Vec::new()).expect("written");
    let scan = calltape_format::scan(Cursor::new(&bytes)).expect("archive scans");
    assert!(scan.report.intact);
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
fn whisker_recording_has_pipecats_turns_and_breakdown() {
    let imp = import(&fixture("call.whisk"));
    let s = imp.summary();
    assert_eq!(s.header.agent.name, "pipecat");
    assert_eq!(s.header.agent.version, "1.14.0");
    assert_eq!(s.header.tags["imported_from"], "pipecat-whisker");
    let speakers: Vec<Speaker> = s.turns.iter().map(|t| t.speaker).collect();
    assert_eq!(
        speakers,
        [Speaker::Agent, Speaker::User, Speaker::User, Speaker::User]
    );
    let users: Vec<&str> = s.turns.iter().map(|t| t.user_text.as_str()).collect();
    assert_eq!(
        users,
        [
            "",
            "What is the weather in Paris?",
            "Please book a table for two tonight.",
            "Stop, thank you."
        ]
    );
    // every user turn has the whole breakdown: eou, stt, llm, tts from Pipecat's frames and
    // metrics; none is flagged
    for t in &s.turns[1..] {
        let l = &t.latency;
        assert!(l.flags.is_empty(), "turn {}: {:?}", t.turn, l.flags);
        assert!(l.e2e_ns.unwrap() > 0);
        assert!(l.eou_ns.is_some() && l.llm_ttft_ns.is_some() && l.tts_ttfb_ns.is_some());
    }
    // the slow turn: its LLM's first token took the 2.6 s the stand-in LLM waited
    let slow = &s.turns[2].latency;
    assert!(slow.e2e_ns.unwrap() > 1_500_000_000);
    assert!(slow.llm_ttft_ns.unwrap() >= 2_600_000_000);
    // the tool turn waits for two LLM steps and the failed tool
    assert!(s.turns[1].latency.tool_ns.unwrap() > 0);
}

#[test]
fn one_barge_in_among_pipecats_routine_interruptions() {
    let imp = import(&fixture("call.whisk"));
    let s = imp.summary();
    // Pipecat pushed an InterruptionFrame at each of the three user turn starts
    assert_eq!(s.totals.interruptions, 1);
    let flags: Vec<bool> = s.turns.iter().map(|t| t.interrupted).collect();
    assert_eq!(flags, [false, false, true, false]);
    let cut = imp.events("interruption");
    assert_eq!(cut.len(), 1);
    let heard = cut[0].attributes["heard_text"].as_str().unwrap();
    let generated = cut[0].attributes["generated_text"].as_str().unwrap();
    assert!(!heard.is_empty() && generated.starts_with(heard) && heard.len() < generated.len());
    let agent = imp.transcripts(Speaker::Agent);
    let cut_short: Vec<_> = agent.iter().filter(|t| t.interrupted).collect();
    assert_eq!(cut_short.len(), 1);
    assert_eq!(cut_short[0].heard_text.as_deref(), Some(heard));
}

#[test]
fn the_failed_tool_by_name_and_pipecats_error() {
    let imp = import(&fixture("call.whisk"));
    let tools: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::ToolCall(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(tools.len(), 1, "the broadcast copies are one call");
    let t = tools[0];
    assert_eq!(t.name, "get_weather");
    assert!(t.is_error);
    assert_eq!(t.arguments["city"], "Paris");
    assert!(t
        .output
        .as_str()
        .unwrap()
        .contains("weather backend unreachable"));
    assert!(t.end_ns > t.start_ns);
    assert_eq!(imp.summary().totals.tool_errors, 1);
    assert_eq!(imp.events("error").len(), 1);
}

#[test]
fn initial_zero_metrics_are_not_measurements() {
    let session = whisker::read_file(&fixture("call.whisk")).unwrap();
    let zero_report = session
        .frames
        .iter()
        .find(|f| f.frame == "MetricsFrame")
        .expect("Pipecat's first metrics frame");
    let values: Vec<f64> = zero_report.fields["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_f64())
        .collect();
    assert!(!values.is_empty() && values.iter().all(|v| *v == 0.0));
    let imp = import(&fixture("call.whisk"));
    for r in &imp.records {
        if let Record::StageTiming(st) = &r.record {
            assert_ne!(st.ttft_ns, Some(0), "{st:?}");
            assert_ne!(st.ttfb_ns, Some(0), "{st:?}");
        }
    }
}

#[test]
fn a_recording_cut_short_keeps_what_came_before() {
    let bytes = std::fs::read(fixture("call.whisk")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.whisk");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let call = pipecat::import_file(&cut, None).expect("the readable part imports");
    assert!(call
        .warnings
        .iter()
        .any(|w| w.code == "whisker_truncated" && w.message.contains("byte")));
    assert!(call.turn_count() >= 2);

    let junk = dir.path().join("junk.whisk");
    std::fs::write(&junk, b"\xc1not msgpack").unwrap();
    let err = pipecat::import_file(&junk, None).unwrap_err().to_string();
    assert!(
        err.contains("Whisker") && err.contains("junk.whisk"),
        "{err}"
    );
}

/// `fixtures/pipecat/tail-session.jsonl`: the same kind of call as a Tail session file. Tail's
/// session writer is only on its unreleased main branch, which cannot be installed here, so
/// the file was written by recorder/python/tests/pipecat_tail_session.py: Tail's wire format
/// (`{"t", "message"}` lines, `tail-*` messages with `timestamp` and `data`) around payloads
/// that are all Pipecat's own (its RTVIObserver's messages and its observers' events).
#[test]
fn tail_session_maps_like_the_frames() {
    let imp = import(&fixture("tail-session.jsonl"));
    let s = imp.summary();
    assert_eq!(s.header.tags["imported_from"], "pipecat-tail");
    assert_eq!(s.turns.len(), 4);
    assert!(
        !imp.warning_codes().contains(&"turns_differ"),
        "Tail's numbering is ours"
    );
    let users: Vec<&str> = s.turns.iter().map(|t| t.user_text.as_str()).collect();
    assert_eq!(
        users,
        [
            "",
            "What is the weather in Paris?",
            "Please book a table for two tonight.",
            "Stop, thank you."
        ]
    );
    assert_eq!(s.totals.interruptions, 1);
    assert!(s.turns[2].interrupted);
    assert_eq!(s.totals.tool_errors, 1);
    for t in &s.turns[1..] {
        let l = &t.latency;
        assert!(l.flags.is_empty(), "turn {}: {:?}", t.turn, l.flags);
        // Tail's tail-latency is Pipecat's own user-to-bot number: the breakdown agrees
        let reported = l.reported_e2e_ns.expect("tail-latency");
        assert!((reported - l.e2e_ns.unwrap()).abs() < 5_000_000, "{l:?}");
    }
    // the tool turn's LLM waited twice (before and after the failed tool)
    let steps = imp
        .records
        .iter()
        .filter(|r| {
            matches!(&r.record, Record::StageTiming(st)
                if st.turn == Some(2) && st.stage == calltape_format::Stage::Llm
                    && st.ttft_ns.is_some())
        })
        .count();
    assert_eq!(steps, 2);
    assert!(imp.warning_codes().contains(&"tail_messages_skipped"));
}

#[test]
fn tail_lines_that_are_not_messages_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("tail-session.jsonl")).unwrap();
    let mut text = String::new();
    for (i, line) in good.lines().enumerate() {
        text.push_str(line);
        text.push('\n');
        if i == 5 {
            text.push_str("{\"t\": \"yesterday\", \"message\": {}}\nnot json\n");
        }
    }
    let p = dir.path().join("odd.jsonl");
    std::fs::write(&p, text).unwrap();
    let call = pipecat::import_file(&p, None).unwrap();
    let w = call
        .warnings
        .iter()
        .find(|w| w.code == "tail_bad_lines")
        .expect("bad lines warned about");
    assert_eq!(w.details["count"], 2);
    assert_eq!(call.turn_count(), 4);
}

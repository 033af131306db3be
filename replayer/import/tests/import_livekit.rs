//! LiveKit session reports imported into archives: turns, the latency breakdown the summary
//! computes from the imported records, tool calls, interruptions, odd and unknown input,
//! and the OGG/Opus recording split into user and agent tracks on the session clock.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use calltape_format::{Record, Speaker, Stage};
use calltape_import::{self as import, audio, livekit};
use serde_json::json;

const MS: i64 = 1_000_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/livekit")
        .join(name)
}

mod import_support;
use import_support::Imported;

/// Imports a report (and audio) into an in-memory archive, then reads it back: the
/// summary must be what a scan of the written bytes recomputes, and every record decodes.
fn import_with(report: &Path, audio_path: Option<&Path>) -> Imported {
    let call = livekit::import_file(report).expect("report imports");
    let decoder = audio_path.map(|p| audio::open(p).expect("audio opens"));
    let (bytes, outcome) =
        import::write_archive(call, decoder, Vec::new()).expect("archive is written");
    let scan = calltape_format::scan(Cursor::new(&bytes)).expect("archive scans");
    assert!(scan.report.intact, "archive is intact: {:?}", scan.report);
    assert_eq!(scan.summary, outcome.summary, "summary matches the records");
    let mut cur = Cursor::new(&bytes);
    let archive = calltape_format::open(&mut cur).expect("archive opens");
    let mut records = Vec::new();
    for entry in &archive.index {
        let chunk = calltape_format::read_chunk(&mut cur, entry).expect("chunk reads");
        records.extend(chunk.records);
    }
    records.sort_by_key(|r| r.time_ns);
    Imported { outcome, records }
}

fn import_report(name: &str) -> Imported {
    import_with(&fixture(name), None)
}

#[test]
fn normal_call_has_turns_transcripts_and_the_reported_breakdown() {
    let imp = import_report("normal.json");
    let s = imp.summary();
    assert_eq!(s.header.session_id, "AJ_normal");
    assert_eq!(s.header.started_at, "2025-11-21T10:00:00.000Z");
    assert_eq!(s.header.started_at_unix_ns, 1_763_719_200_000_000_000);
    assert_eq!(s.header.agent.version, "1.3.2");
    assert_eq!(s.header.tags["livekit.room"], json!("dental-AJ_normal"));
    assert_eq!(s.turns.len(), 3);
    assert_eq!(
        s.turns[0].speaker,
        Speaker::Agent,
        "the greeting opens turn 1"
    );
    assert_eq!(s.turns[1].speaker, Speaker::User);
    assert_eq!(
        s.turns[1].user_text,
        "I'd like to book a cleaning next week."
    );
    assert_eq!(
        s.turns[1].agent_text,
        "Sure. Tuesday at 10 or Thursday at 3?"
    );

    // turn 2: user stopped at 6.30 s, agent audible at 7.62 s
    let l = imp.latency(2);
    assert_eq!(l.user_speech_end_ns, Some(6_300 * MS as u64));
    assert_eq!(l.agent_audio_start_ns, Some(7_620 * MS as u64));
    assert_eq!(l.e2e_ns, Some(1_320 * MS));
    assert_eq!(l.eou_ns, Some(350 * MS));
    assert_eq!(l.stt_ns, Some(0), "transcript was final before the commit");
    assert_eq!(l.llm_ttft_ns, Some(380 * MS));
    assert_eq!(l.tts_ttfb_ns, Some(170 * MS));
    assert_eq!(l.tool_ns, None);
    assert_eq!(l.rest_ns, Some(420 * MS));
    assert_eq!(l.reported_e2e_ns, Some(1_320 * MS));
    assert!(l.flags.is_empty(), "{:?}", l.flags);
    assert_eq!(imp.latency(3).e2e_ns, Some(1_150 * MS));
    assert_eq!(imp.latency(3).reported_e2e_ns, Some(1_150 * MS));

    // the user transcript carries the speech bounds and STT confidence
    let user = imp.transcripts(Speaker::User);
    let finals: Vec<_> = user.iter().filter(|t| t.is_final).collect();
    assert_eq!(finals.len(), 2, "one final per user message, not per event");
    assert_eq!(finals[0].start_ns, Some(4_100_000_000));
    assert_eq!(finals[0].end_ns, Some(6_300_000_000));
    assert_eq!(finals[0].confidence, Some(0.94));
    assert!(user.iter().any(|t| !t.is_final && t.text == "I'd like to"));
    assert_eq!(imp.events("user_input_transcribed").len(), 2);
    assert_eq!(imp.events("agent_state_changed").len(), 9);

    assert_eq!(s.totals.end_reason.as_deref(), Some("user_hangup"));
    assert_eq!(s.totals.usage.prompt_tokens, 2400);
    assert_eq!(s.totals.usage.cached_tokens, 800);
    assert_eq!(s.totals.usage.completion_tokens, 61);
    assert_eq!(s.totals.usage.tts_characters, 142);
    assert!((s.totals.usage.stt_audio_seconds - 3.1).abs() < 1e-9);
    let report = &imp.events("livekit_report")[0].attributes;
    assert_eq!(report["options"]["min_endpointing_delay"], json!(0.5));
    assert!(
        imp.outcome.warnings.is_empty(),
        "{:?}",
        imp.outcome.warnings
    );
}

#[test]
fn interrupted_agent_message_marks_the_turn_cut() {
    let imp = import_report("interrupted.json");
    let s = imp.summary();
    assert_eq!(s.turns.len(), 3);
    assert!(s.turns[1].interrupted);
    assert!(!s.turns[2].interrupted);
    assert_eq!(s.totals.interruptions, 1);
    let cut = imp
        .transcripts(Speaker::Agent)
        .into_iter()
        .find(|t| t.interrupted)
        .expect("an interrupted agent transcript");
    assert!(cut.text.starts_with("Our office hours"));
    assert_eq!(
        cut.end_ns,
        Some(6_400_000_000),
        "cut where the agent stopped"
    );
    let ev = imp.events("interruption");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].turn, Some(2));
    let playback = imp.records.iter().find_map(|r| match &r.record {
        Record::StageTiming(st) if st.stage == Stage::Playback && st.turn == Some(2) => Some(st),
        _ => None,
    });
    assert!(playback.expect("playback of turn 2").cancelled);
    assert_eq!(imp.events("overlapping_speech").len(), 1);
    // the next user turn began while the agent still spoke
    assert_eq!(s.turns[2].start_ns, 6_100_000_000);
}

#[test]
fn tool_calls_are_timed_and_failures_counted() {
    let imp = import_report("tools.json");
    let s = imp.summary();
    assert_eq!(s.turns.len(), 2, "tool steps stay in the user's turn");
    assert_eq!(s.totals.tool_calls, 2);
    assert_eq!(s.totals.tool_errors, 1);
    let calls: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
    assert_eq!(calls[0].output, json!("sunny, 21C"));
    assert_eq!(calls[0].end_ns - calls[0].start_ns, 700_000_000);
    assert!(calls[1].is_error);

    // the LLM step after the tool starts when the tool returned
    let l = imp.latency(1);
    assert_eq!(l.tool_ns, Some(700 * MS));
    assert_eq!(l.llm_ttft_ns, Some(300 * MS));
    assert_eq!(l.e2e_ns, Some(1_950 * MS));
    assert_eq!(l.reported_e2e_ns, Some(1_950 * MS));
    assert_eq!(imp.latency(2).tool_ns, Some(3_000 * MS));
    assert_eq!(s.turns[1].errors, 1, "the error event lands in turn 2");
    let handoff = imp.events("handoff");
    assert_eq!(handoff[0].attributes["old_agent"], json!("assistant"));
    assert_eq!(handoff[0].attributes["new_agent"], json!("reservations"));
}

#[test]
fn missing_and_odd_metrics_import_with_warnings() {
    let imp = import_report("missing_metrics.json");
    let codes = imp.warning_codes();
    for code in [
        "missing_metrics",
        "speaking_times_from_events",
        "negative_metric",
        "absurd_metric",
        "invalid_metric",
    ] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    // every warning is also in the archive
    assert_eq!(
        imp.events("import_warning").len(),
        imp.outcome.warnings.len()
    );
    let s = imp.summary();
    assert_eq!(s.turns.len(), 3);
    // turn 1 has no metrics: speech times come from the state-change events
    let l1 = imp.latency(1);
    assert_eq!(l1.user_speech_end_ns, Some(1_200_000_000));
    assert_eq!(l1.agent_audio_start_ns, Some(2_600_000_000));
    assert_eq!(l1.e2e_ns, Some(1_400 * MS));
    // turn 2: the absurd TTFT and the non-numeric TTFB are left out, not drawn
    let l2 = imp.latency(2);
    assert_eq!(l2.llm_ttft_ns, None);
    assert_eq!(l2.tts_ttfb_ns, None);
    assert_eq!(
        l2.stt_ns, None,
        "the negative transcription delay is left out"
    );
    assert_eq!(l2.eou_ns, Some(300 * MS));
    assert_eq!(l2.e2e_ns, Some(1_300 * MS));
    // the raw values are kept on the transcript
    let agent = imp.transcripts(Speaker::Agent);
    assert_eq!(
        agent[1].attributes["metrics"]["llm_node_ttft"],
        json!(250.0)
    );
    // turn 3: nothing to time it by
    let l3 = imp.latency(3);
    assert!(l3
        .flags
        .contains(&calltape_format::call::LatencyFlag::MissingUserSpeechEnd));
    assert!(l3
        .flags
        .contains(&calltape_format::call::LatencyFlag::MissingAgentAudio));
    assert_eq!(s.totals.end_reason.as_deref(), Some("agent_hangup"));
}

#[test]
fn newer_sdk_report_keeps_unknown_data() {
    let imp = import_report("newer_sdk.json");
    let codes = imp.warning_codes();
    for code in ["no_audio_start", "unknown_fields"] {
        assert!(codes.contains(&code), "{code} in {codes:?}");
    }
    // 1.x chat items and events are known: no warning, kept under their own name
    assert!(!codes.contains(&"unknown_chat_item"), "{codes:?}");
    assert!(!codes.contains(&"unknown_event_type"), "{codes:?}");
    let s = imp.summary();
    // t0 is the earliest timestamp when audio_recording_started_at is missing
    assert_eq!(s.header.started_at_unix_ns, 1_763_719_200_000_000_000);
    assert_eq!(s.header.agent.version, "2.3.0");
    assert_eq!(s.turns.len(), 2);
    assert_eq!(imp.latency(2).e2e_ns, Some(1_200 * MS));
    let false_interruptions = imp.events("agent_false_interruption");
    assert_eq!(false_interruptions.len(), 2, "every event is kept");
    assert_eq!(false_interruptions[0].attributes["resumed"], json!(true));
    assert_eq!(
        imp.events("agent_config_update")[0].attributes["instructions"],
        json!("be brief")
    );
    let added = imp.events("conversation_item_added");
    assert!(added
        .iter()
        .all(|e| e.attributes.get("livekit_unknown_type").is_none()));
    let report = &imp.events("livekit_report")[0].attributes;
    assert_eq!(report["session_metadata"]["region"], json!("eu-west"));
    // unknown message keys and content parts stay on the transcript
    let greeting = imp.transcripts(Speaker::Agent)[0];
    assert_eq!(greeting.text, "Hello!");
    assert_eq!(greeting.attributes["speaker_id"], json!("agent-1"));
    assert_eq!(
        greeting.attributes["content_parts"][0]["type"],
        json!("audio_content")
    );
    // usage in another shape is still counted
    let u = &s.totals.usage;
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
        (900, 40, 100)
    );
    assert_eq!(u.tts_characters, 80);
    assert!((u.stt_audio_seconds - 3.0).abs() < 1e-9);
    assert!((u.tts_audio_seconds - 4.2).abs() < 1e-9);
    assert_eq!(s.totals.end_reason.as_deref(), Some("shutdown"));
}

/// First sample index whose magnitude exceeds `threshold`.
fn onset(samples: &[i16], threshold: i16) -> Option<usize> {
    samples
        .iter()
        .position(|s| s.unsigned_abs() > threshold as u16)
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[test]
fn opus_recording_is_split_by_channel_on_the_session_clock() {
    // audio.ogg (opusenc, pre-skip 312): a 440 Hz tone on the left (user) from 0.5 s to
    // 1.0 s, an 880 Hz tone on the right (agent) from 1.5 s to 2.0 s, 3.0 s in all
    let dir = fixture("console");
    let imp = import_with(
        &dir.join("session_report.json"),
        Some(&dir.join("audio.ogg")),
    );
    let s = imp.summary();
    assert_eq!(s.header.tracks.len(), 2);
    assert_eq!(s.header.tracks[0].role, Speaker::User);
    assert_eq!(s.header.tracks[1].role, Speaker::Agent);
    assert_eq!(s.header.tracks[0].sample_rate, 48_000);
    assert_eq!(
        s.totals.audio_frames.get(&1),
        Some(&144_000),
        "pre-skip dropped and encoder padding trimmed: exactly 3.0 s"
    );
    let user = imp.audio(1);
    let agent = imp.audio(2);
    let ms = |n: usize| n as f64 / 48.0;
    let u = onset(&user, 3000).expect("user tone");
    let a = onset(&agent, 3000).expect("agent tone");
    assert!((ms(u) - 500.0).abs() < 3.0, "user tone at {} ms", ms(u));
    assert!((ms(a) - 1500.0).abs() < 3.0, "agent tone at {} ms", ms(a));
    // each tone stays on its own channel
    let user_tone = rms(&user[26_000..46_000]);
    assert!(user_tone > 10_000.0, "user tone rms {user_tone}");
    assert!(
        rms(&agent[26_000..46_000]) < user_tone / 100.0,
        "no user tone on the agent track"
    );
    assert!(
        rms(&user[74_000..94_000]) < user_tone / 100.0,
        "no agent tone on the user track"
    );
    // the report's own timing agrees with the recording: user stops at 1.0 s, agent at 1.5 s
    let l = imp.latency(1);
    assert_eq!(l.e2e_ns, Some(500 * MS));
    assert_eq!(l.reported_e2e_ns, Some(500 * MS));
    assert!(
        imp.outcome.warnings.is_empty(),
        "{:?}",
        imp.outcome.warnings
    );
}

/// Writes an OGG/Opus stereo file: `lead` frames of noise before the content, all declared
/// as pre-skip, so a decoder that ignores pre-skip puts the content `lead` frames late.
fn write_ogg_opus(path: &Path, content: &[i16], lead: usize) {
    // a second, independent Opus implementation encodes what the importer's decoder reads
    let mut enc = opus_pure::OpusEncoder::new(48_000, 2, opus_pure::Application::Audio).unwrap();
    enc.bitrate_bps = 96_000;
    let lookahead = enc.lookahead();
    let mut pcm: Vec<i16> = (0..lead * 2)
        .map(|i| if i % 7 < 3 { 12_000 } else { -12_000 })
        .collect();
    pcm.extend_from_slice(content);
    let frames = pcm.len() / 2;
    let pre_skip = lookahead + lead;
    pcm.resize((frames + lookahead).div_ceil(960) * 960 * 2, 0);
    let file = std::fs::File::create(path).unwrap();
    let mut w = ogg::writing::PacketWriter::new(file);
    let serial = 0x0ca1_1a9e;
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(2);
    head.extend_from_slice(&(pre_skip as u16).to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    w.write_packet(head, serial, ogg::writing::PacketWriteEndInfo::EndPage, 0)
        .unwrap();
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&4u32.to_le_bytes());
    tags.extend_from_slice(b"test");
    tags.extend_from_slice(&0u32.to_le_bytes());
    w.write_packet(tags, serial, ogg::writing::PacketWriteEndInfo::EndPage, 0)
        .unwrap();
    let packets = pcm.len() / (960 * 2);
    let total = (lookahead + frames) as u64;
    let mut out = vec![0u8; 4000];
    for (i, frame) in pcm.chunks(960 * 2).enumerate() {
        let n = enc.encode_s16(frame, 960, &mut out).unwrap();
        let last = i + 1 == packets;
        let granule = if last { total } else { ((i + 1) * 960) as u64 };
        let end = if last {
            ogg::writing::PacketWriteEndInfo::EndStream
        } else if (i + 1) % 25 == 0 {
            ogg::writing::PacketWriteEndInfo::EndPage
        } else {
            ogg::writing::PacketWriteEndInfo::NormalPacket
        };
        w.write_packet(out[..n].to_vec(), serial, end, granule)
            .unwrap();
    }
}

#[test]
fn opus_pre_skip_is_dropped_and_the_end_trimmed() {
    // 100 ms of loud noise declared as pre-skip, then 1 s of content: silence with a
    // 1 kHz tone on the left from 200 ms to 400 ms
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preskip.ogg");
    let frames = 48_000;
    let mut content = vec![0i16; frames * 2];
    for n in 9_600..19_200 {
        content[n * 2] =
            ((n as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 48_000.0).sin() * 16_000.0) as i16;
    }
    write_ogg_opus(&path, &content, 4_800);
    let imp = import_with(&fixture("console/session_report.json"), Some(&path));
    let user = imp.audio(1);
    assert_eq!(
        user.len(),
        frames,
        "exactly the content: pre-skip and padding gone"
    );
    // ignoring pre-skip would leave the 12 000-amplitude noise here; Opus only smears
    // its edge a little
    let head = rms(&user[..4_800]);
    assert!(head < 2_000.0, "pre-skip noise at the start (rms {head})");
    assert!(rms(&user[2_400..9_000]) < 300.0, "silence before the tone");
    let at = 2_400 + onset(&user[2_400..], 3000).expect("tone");
    assert!(
        (at as i64 - 9_600).abs() < 96,
        "tone at sample {at}, expected 9600 (200 ms) within 2 ms"
    );
    assert!(rms(&imp.audio(2)) < 300.0, "the right channel is silent");
}

/// The report livekit-agents 1.8.9 itself wrote for the Python package's live test call
/// (fixtures/livekit/v1_8_9/README.md).
#[test]
fn livekit_1_8_9_report_is_understood_field_by_field() {
    let imp = import_report("v1_8_9/session_report.json");
    let codes = imp.warning_codes();
    for unknown in ["unknown_fields", "unknown_event_type", "unknown_chat_item"] {
        assert!(!codes.contains(&unknown), "{unknown} in {codes:?}");
    }
    let s = imp.summary();
    assert_eq!(s.turns.len(), 6);
    assert_eq!(s.header.tags["livekit.agent_name"], json!("front-desk"));
    assert_eq!(
        s.header.tags["livekit.close_reason"],
        json!("CR_USER_INITIATED")
    );
    for t in &s.turns {
        assert!(
            t.latency.flags.is_empty(),
            "turn {}: {:?}",
            t.turn,
            t.latency
        );
        assert!(t.latency.rest_ns.is_some_and(|r| r >= 0), "turn {}", t.turn);
    }
    // turn 2 speaks "Let me check" while its lookup_order tool runs: not part of the wait
    assert_eq!(imp.latency(2).tool_ns, None);
    assert!(imp.latency(1).tool_ns.is_some_and(|t| t > 0));
    assert_eq!((s.turns[1].tool_calls, s.turns[1].tool_errors), (1, 1));
    let tools: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::ToolCall(c) => Some((c.name.as_str(), c.is_error, c.output.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        tools,
        vec![
            ("get_weather", false, json!("sunny, 20 C in Paris")),
            ("lookup_order", true, json!("order A123 not found")),
            ("transfer_to_billing", false, json!("")),
        ]
    );
    // the new metrics: models on the stages, ttfs/tps on the LLM, playback latency
    let stages: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::StageTiming(st) => Some(st),
            _ => None,
        })
        .collect();
    let llm = stages.iter().find(|st| st.stage == Stage::Llm).unwrap();
    assert_eq!(llm.model.as_deref(), Some("scripted-llm"));
    assert_eq!(llm.provider.as_deref(), Some("calltape-tests"));
    assert!(llm.attributes["ttfs_ns"].as_u64().unwrap() > llm.ttft_ns.unwrap());
    assert!(llm.attributes["tokens_per_second"].as_f64().unwrap() > 0.0);
    let tts = stages.iter().find(|st| st.stage == Stage::Tts).unwrap();
    assert_eq!(tts.model.as_deref(), Some("espeak-ng"));
    let stt = stages.iter().find(|st| st.stage == Stage::Stt).unwrap();
    assert_eq!(stt.model.as_deref(), Some("scripted-stt"));
    assert!(stages
        .iter()
        .any(|st| st.stage == Stage::Custom("playback_latency".into())));
    // final user transcripts carry the language of their transcription event
    let users = imp.transcripts(Speaker::User);
    let finals: Vec<_> = users.iter().filter(|t| t.is_final).collect();
    assert_eq!(finals.len(), 6);
    assert!(finals.iter().all(|t| t.language.as_deref() == Some("en")));
    assert!(users.iter().any(|t| !t.is_final));
    // the cut story keeps what was heard
    let cut: Vec<_> = imp
        .transcripts(Speaker::Agent)
        .into_iter()
        .filter(|t| t.interrupted)
        .collect();
    assert_eq!(cut.len(), 1);
    let heard = cut[0].heard_text.as_deref().unwrap();
    assert!(heard.starts_with("Once upon a time"), "{heard}");
    // usage per model
    let models: Vec<_> = imp
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Usage(u) => Some(u.model.clone()),
            _ => None,
        })
        .collect();
    assert!(models.contains(&Some("scripted-llm".into())), "{models:?}");
    assert!(models.contains(&Some("espeak-ng".into())), "{models:?}");
    assert!(!imp.events("agent_config_update").is_empty());
    assert_eq!(imp.events("handoff").len(), 2);
}

/// The Node SDK writes unix milliseconds: the same call reads the same.
#[test]
fn agents_js_millisecond_timestamps_are_detected() {
    let secs = import_report("v1_8_9/session_report.json");
    let ms = import_report("v1_8_9/session_report_agents_js_ms.json");
    let codes = ms.warning_codes();
    assert!(codes.contains(&"timestamps_in_ms"), "{codes:?}");
    assert!(!codes.contains(&"no_audio_start"), "{codes:?}");
    assert!(!secs.warning_codes().contains(&"timestamps_in_ms"));
    let (a, b) = (secs.summary(), ms.summary());
    // whole milliseconds: within 0.5 ms of the seconds report
    let near = |x: i64, y: i64| (x - y).abs() <= MS / 2;
    assert!(near(
        a.header.started_at_unix_ns,
        b.header.started_at_unix_ns
    ));
    assert_eq!(a.turns.len(), b.turns.len());
    for (x, y) in a.turns.iter().zip(&b.turns) {
        assert_eq!(
            (&x.user_text, &x.agent_text, x.interrupted, x.tool_calls),
            (&y.user_text, &y.agent_text, y.interrupted, y.tool_calls)
        );
        assert!(
            near(x.start_ns as i64, y.start_ns as i64),
            "turn {}",
            x.turn
        );
        let (ex, ey) = (x.latency.e2e_ns.unwrap(), y.latency.e2e_ns.unwrap());
        assert!(near(ex, ey), "turn {}: {ex} vs {ey}", x.turn);
        assert_eq!(x.latency.flags, y.latency.flags);
    }
}

/// An event or chat item type this importer has never seen is kept under its own name, with
/// one warning per type.
#[test]
fn unknown_event_and_item_types_are_kept_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session_report.json");
    let report = json!({
        "audio_recording_started_at": 1_763_719_200.0,
        "events": [
            {"type": "future_event", "created_at": 1_763_719_201.0, "level": 3},
            {"type": "future_event", "created_at": 1_763_719_202.0, "level": 4},
            {"type": "error", "created_at": 1_763_719_203.0,
             "error": {"type": "tts_error", "label": "x.TTS", "recoverable": false,
                       "timestamp": 1_763_719_203.0},
             "source": {"model": "m", "provider": "p"}},
        ],
        "chat_history": {"items": [
            {"type": "future_item", "id": "i1", "created_at": 1_763_719_201.5},
        ]},
    });
    std::fs::write(&path, report.to_string()).unwrap();
    let imp = import_with(&path, None);
    let codes = imp.warning_codes();
    assert_eq!(
        codes.iter().filter(|c| **c == "unknown_event_type").count(),
        1,
        "{codes:?}"
    );
    assert!(codes.contains(&"unknown_chat_item"), "{codes:?}");
    let kept = imp.events("future_event");
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1].attributes["level"], json!(4));
    assert_eq!(
        imp.events("livekit_chat_item")[0].attributes["id"],
        json!("i1")
    );
    // a 1.x SDK error: what failed, where, and that LiveKit gave up
    let err = &imp.events("error")[0].attributes;
    assert_eq!(err["message"], json!("tts_error in x.TTS (unrecoverable)"));
    assert_eq!(err["source"], json!("tts"));
    assert_eq!(err["recoverable"], json!(false));
    assert_eq!(imp.summary().totals.errors, 1);
}

/// The live recorder maps the report as it grows and writes the turns that are over: what it
/// writes in the end is exactly what one mapping of the whole report gives.
#[test]
fn writing_settled_turns_as_the_report_grows_gives_the_whole_mapping() {
    use livekit::settle::{settled_records, Progress};
    let text = std::fs::read_to_string(fixture("v1_8_9/session_report.json")).unwrap();
    let full: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = full["chat_history"]["items"].as_array().unwrap().clone();
    let events = full["events"].as_array().unwrap().clone();
    let created = |v: &serde_json::Value| v["created_at"].as_f64().unwrap_or(0.0);
    // the report as it stood when each user message was added
    let mut cuts: Vec<f64> = items
        .iter()
        .filter(|i| i["type"] == "message" && i["role"] == "user")
        .map(created)
        .collect();
    cuts.remove(0);
    let key = |r: &calltape_format::TimedRecord| {
        let mut json = Vec::new();
        r.record.write_json_payload(&mut json);
        (r.time_ns, r.record.kind_name().to_string(), json)
    };
    let mut written = Vec::new();
    let mut progress = Progress::default();
    for cut in cuts {
        let mut partial = full.clone();
        partial["chat_history"]["items"] = json!(items
            .iter()
            .filter(|i| created(i) <= cut)
            .collect::<Vec<_>>());
        partial["events"] = json!(events
            .iter()
            .filter(|e| created(e) <= cut)
            .collect::<Vec<_>>());
        let call = livekit::from_report(&partial, "live").unwrap();
        let (records, next) = settled_records(&call, progress, false);
        assert!(next.done_turns >= progress.done_turns);
        progress = next;
        written.extend(records.iter().map(key));
    }
    assert_eq!(
        progress.done_turns, 5,
        "all turns but the last were over before the close"
    );
    let call = livekit::from_report(&full, "live").unwrap();
    let (rest, _) = settled_records(&call, progress, true);
    written.extend(rest.iter().map(key));
    let mut whole: Vec<_> = call.records.iter().map(key).collect();
    whole.extend(call.warnings.iter().map(|w| key(&w.to_record())));
    written.sort();
    whole.sort();
    assert_eq!(written.len(), whole.len());
    assert!(written == whole, "the same records, each once");
}

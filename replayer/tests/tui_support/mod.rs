//! A scripted five-turn call for the replayer tests, written with `ArchiveWriter`: a greeting,
//! a normal turn with a tool call, a slow turn whose agent audio starts later than reported
//! (and whose tool output and logs carry escape sequences), a barge-in, and a recovery turn.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use calltape::tui::Options;
use calltape_format::*;
use serde_json::json;

pub const MS: u64 = 1_000_000;
pub const RATE: u32 = 16_000;

pub fn header() -> Header {
    Header {
        session_id: "fixture-call-1".into(),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000,
        agent: AgentInfo {
            name: "support-bot".into(),
            version: "1.4.2".into(),
        },
        environment: Some("test".into()),
        tags: Default::default(),
        tracks: vec![track(1, Speaker::User), track(2, Speaker::Agent)],
    }
}

fn track(id: u16, role: Speaker) -> Track {
    Track {
        id,
        role,
        sample_rate: RATE,
        channels: 1,
        codec: AudioCodec::Pcm16Lpc2,
        name: None,
    }
}

fn at(ms: u64, r: Record) -> TimedRecord {
    TimedRecord::new(ms * MS, r)
}

fn stage(turn: u32, s: Stage, a: u64, b: u64) -> StageTiming {
    StageTiming::new(Some(turn), s, a * MS, b * MS)
}

fn start(turn: u32, speaker: Speaker) -> Record {
    Record::TurnStart(TurnStart {
        turn,
        speaker,
        attributes: Default::default(),
    })
}

fn end(turn: u32, attrs: serde_json::Value) -> Record {
    Record::TurnEnd(TurnEnd {
        turn,
        speaker: Some(Speaker::Agent),
        attributes: serde_json::from_value(attrs).unwrap(),
    })
}

fn say(turn: u32, speaker: Speaker, text: &str, a: u64, b: u64, is_final: bool) -> Record {
    Record::Transcript(Transcript {
        turn: Some(turn),
        speaker,
        text: text.into(),
        is_final,
        confidence: None,
        language: None,
        interrupted: false,
        heard_text: None,
        start_ns: Some(a * MS),
        end_ns: Some(b * MS),
        attributes: Default::default(),
    })
}

fn snapshot(turn: u32, value: serde_json::Value) -> Record {
    Record::StateSnapshot(StateSnapshot {
        turn: Some(turn),
        scope: "session".into(),
        value,
    })
}

fn event(turn: u32, name: &str, attrs: serde_json::Value) -> Record {
    Record::Event(Event {
        turn: Some(turn),
        name: name.into(),
        attributes: serde_json::from_value(attrs).unwrap(),
    })
}

/// Speech (ms ranges) heard on each track: the agent of turn 3 really starts at 13 700 ms,
/// 400 ms after its reported playback start.
pub const USER_SPEECH: [(u64, u64); 4] = [
    (3_000, 4_500),
    (9_000, 10_500),
    (16_000, 17_000),
    (19_000, 20_500),
];
pub const AGENT_SPEECH: [(u64, u64); 5] = [
    (200, 2_200),
    (5_900, 8_000),
    (13_700, 15_500),
    (17_800, 19_200),
    (21_500, 23_000),
];

pub fn control_records() -> Vec<TimedRecord> {
    use Speaker::{Agent, User};
    let mut llm2 = stage(2, Stage::Llm, 4_850, 5_600);
    llm2.ttft_ns = Some(450 * MS);
    llm2.model = Some("gpt-4o-mini".into());
    llm2.provider = Some("openai".into());
    llm2.prompt_tokens = Some(812);
    llm2.completion_tokens = Some(31);
    let mut tts2 = stage(2, Stage::Tts, 5_450, 7_000);
    tts2.ttfb_ns = Some(200 * MS);
    let mut llm3 = stage(3, Stage::Llm, 10_950, 13_000);
    llm3.ttft_ns = Some(1_500 * MS);
    llm3.model = Some("gpt-4o".into());
    let mut tts3 = stage(3, Stage::Tts, 12_900, 14_500);
    tts3.ttfb_ns = Some(250 * MS);
    let mut llm4 = stage(4, Stage::Llm, 17_100, 17_500);
    llm4.ttft_ns = Some(300 * MS);
    let mut tts4 = stage(4, Stage::Tts, 17_450, 18_000);
    tts4.ttfb_ns = Some(150 * MS);
    let mut llm5 = stage(5, Stage::Llm, 20_900, 21_300);
    llm5.ttft_ns = Some(350 * MS);
    let mut cut = say(
        4,
        Agent,
        "Your order shipped on Monday and should arrive by Thursday.",
        17_800,
        19_200,
        true,
    );
    if let Record::Transcript(t) = &mut cut {
        t.interrupted = true;
        t.heard_text = Some("Your order shipped on Monday".into());
    }
    let mut rs = vec![
        at(0, start(1, Agent)),
        at(
            200,
            Record::StageTiming(stage(1, Stage::Playback, 200, 2_200)),
        ),
        at(
            200,
            say(
                1,
                Agent,
                "Hi, thanks for calling Acme. How can I help?",
                200,
                2_200,
                true,
            ),
        ),
        at(2_300, end(1, json!({}))),
        at(3_000, start(2, User)),
        at(
            3_600,
            say(2, User, "I want to check my", 3_000, 3_600, false),
        ),
        at(
            4_200,
            say(
                2,
                User,
                "I want to check my order stat",
                3_000,
                4_200,
                false,
            ),
        ),
        at(
            4_500,
            Record::StageTiming(stage(2, Stage::Vad, 3_000, 4_500)),
        ),
        at(
            4_800,
            Record::StageTiming(stage(2, Stage::Eou, 4_500, 4_800)),
        ),
        at(
            4_850,
            Record::StageTiming(stage(2, Stage::Stt, 4_500, 4_850)),
        ),
        at(
            4_850,
            say(
                2,
                User,
                "I want to check my order status.",
                3_000,
                4_500,
                true,
            ),
        ),
        at(
            4_900,
            snapshot(
                2,
                json!({"intent": "order_status", "order_id": null, "verified": false}),
            ),
        ),
        at(
            5_300,
            Record::ToolCall(ToolCall {
                turn: Some(2),
                call_id: Some("call_1".into()),
                name: "find_order".into(),
                arguments: json!({"customer": "c-42"}),
                output: json!({"order_id": "A-1001", "status": "shipped"}),
                is_error: false,
                start_ns: 5_000 * MS,
                end_ns: 5_300 * MS,
                attributes: Default::default(),
            }),
        ),
        at(5_600, Record::StageTiming(llm2)),
        at(
            5_900,
            Record::StageTiming(stage(2, Stage::Playback, 5_900, 8_000)),
        ),
        at(
            5_900,
            say(
                2,
                Agent,
                "Your order A-1001 has shipped.",
                5_900,
                8_000,
                true,
            ),
        ),
        at(7_000, Record::StageTiming(tts2)),
        at(8_100, end(2, json!({}))),
        at(9_000, start(3, User)),
        at(
            10_500,
            Record::StageTiming(stage(3, Stage::Vad, 9_000, 10_500)),
        ),
        at(
            10_900,
            Record::StageTiming(stage(3, Stage::Eou, 10_500, 10_900)),
        ),
        at(
            10_950,
            say(3, User, "When will it arrive?", 9_000, 10_500, true),
        ),
        at(
            10_960,
            snapshot(
                3,
                json!({"intent": "delivery_date", "order_id": "A-1001", "verified": false}),
            ),
        ),
        at(
            11_500,
            Record::ToolCall(ToolCall {
                turn: Some(3),
                call_id: Some("call_2".into()),
                name: "track_parcel".into(),
                arguments: json!({"order_id": "A-1001"}),
                output: json!({"error": "carrier timeout \u{1b}[31mRED\u{1b}[0m"}),
                is_error: true,
                start_ns: 11_000 * MS,
                end_ns: 11_500 * MS,
                attributes: Default::default(),
            }),
        ),
        at(
            11_500,
            event(
                3,
                "error",
                json!({"message": "track_parcel failed", "source": "tool"}),
            ),
        ),
        at(
            11_510,
            Record::Log(LogLine {
                turn: Some(3),
                level: "error".into(),
                target: "agent::tools".into(),
                message: "carrier said \u{1b}]0;pwned\u{7}\u{1b}[2J".into(),
                fields: Default::default(),
            }),
        ),
        at(13_000, Record::StageTiming(llm3)),
        at(
            13_300,
            Record::StageTiming(stage(3, Stage::Playback, 13_300, 15_500)),
        ),
        at(
            13_300,
            say(
                3,
                Agent,
                "It should arrive by Thursday.",
                13_300,
                15_500,
                true,
            ),
        ),
        at(14_500, Record::StageTiming(tts3)),
        at(
            15_600,
            end(3, json!({"reported_e2e_ns": 2_100_000_000_u64})),
        ),
        at(16_000, start(4, User)),
        at(
            17_000,
            Record::StageTiming(stage(4, Stage::Vad, 16_000, 17_000)),
        ),
        at(
            17_050,
            Record::StageTiming(stage(4, Stage::Eou, 17_000, 17_100)),
        ),
        at(
            17_100,
            say(4, User, "And the other one?", 16_000, 17_000, true),
        ),
        at(17_500, Record::StageTiming(llm4)),
        at(17_800, cut),
        at(18_000, Record::StageTiming(tts4)),
        at(19_000, event(4, "overlapping_speech", json!({}))),
        at(
            19_200,
            Record::StageTiming(stage(4, Stage::Playback, 17_800, 19_200)),
        ),
        at(19_200, event(4, "interruption", json!({"heard_ms": 1400}))),
        at(19_250, end(4, json!({"interrupted": true}))),
        at(19_300, start(5, User)),
        at(
            20_500,
            Record::StageTiming(stage(5, Stage::Vad, 19_000, 20_500)),
        ),
        at(
            20_800,
            Record::StageTiming(stage(5, Stage::Eou, 20_500, 20_800)),
        ),
        at(
            20_800,
            say(5, User, "No, I meant my other order.", 19_000, 20_500, true),
        ),
        at(21_300, Record::StageTiming(llm5)),
        at(
            21_500,
            Record::StageTiming(stage(5, Stage::Playback, 21_500, 23_000)),
        ),
        at(
            21_500,
            say(
                5,
                Agent,
                "Order A-1002 arrives Friday.",
                21_500,
                23_000,
                true,
            ),
        ),
        at(23_100, end(5, json!({}))),
        at(
            23_200,
            Record::Dropped(Dropped {
                what: "audio:user".into(),
                count: 320,
                unit: "samples".into(),
                reason: "queue full".into(),
            }),
        ),
        at(
            24_000,
            Record::SessionEnd(SessionEnd {
                reason: "user_hangup".into(),
                outcome: Some("resolved".into()),
            }),
        ),
    ];
    rs.sort_by_key(|r| r.time_ns);
    rs
}

/// 20 ms audio frames: the user track is continuous (silence as zeros), the agent track has
/// records only while speaking (gaps are silence that really happened).
pub fn audio_records(until_ms: u64) -> Vec<TimedRecord> {
    let per = (RATE / 50) as u64;
    let mut out = Vec::new();
    for (track, speech, continuous) in [
        (1u16, &USER_SPEECH[..], true),
        (2u16, &AGENT_SPEECH[..], false),
    ] {
        for f in 0..until_ms / 20 {
            let t_ms = f * 20;
            let speaking = speech.iter().any(|&(a, b)| t_ms >= a && t_ms < b);
            if !speaking && !continuous {
                continue;
            }
            let first = f * per;
            let samples: Vec<i16> = (0..per)
                .map(|i| {
                    if speaking {
                        let x = (first + i) as f64;
                        ((x * 0.09).sin() * 6000.0 + (x * 0.031).sin() * 3000.0) as i16
                    } else {
                        0
                    }
                })
                .collect();
            out.push(TimedRecord::new(
                t_ms * MS,
                Record::Audio(AudioFrame {
                    track,
                    channels: 1,
                    first_sample: first,
                    samples,
                }),
            ));
        }
    }
    out
}

pub fn all_records() -> Vec<TimedRecord> {
    let mut all = control_records();
    all.extend(audio_records(24_000));
    all.sort_by_key(|r| r.time_ns);
    all
}

/// The closed archive's bytes.
pub fn archive_bytes() -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), header()).unwrap();
    for r in all_records() {
        w.write(&r).unwrap();
    }
    w.finish().unwrap().0
}

pub fn write_to(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The archive cut in the middle of a chunk after about 60% of its data: no summary, no footer.
pub fn truncated_bytes() -> Vec<u8> {
    let full = archive_bytes();
    let archive = calltape_format::open(&mut std::io::Cursor::new(&full)).unwrap();
    let e = archive.index[archive.index.len() * 6 / 10];
    full[..(e.offset + e.frame_len() / 2) as usize].to_vec()
}

/// Options for deterministic screens: no colour, no audio player.
pub fn options(wav_dir: &Path) -> Options {
    Options {
        slow_ns: 1_500_000_000,
        color: false,
        player: None,
        wav_dir: wav_dir.to_path_buf(),
        start_turn: None,
    }
}

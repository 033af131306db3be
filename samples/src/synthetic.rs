//! Synthetic calls and archives for benchmarks, where size and regularity matter more than
//! realism: a long call of any length written straight to a file, and small closed archives
//! by the thousand. One place, so every benchmark measures the same content.

use std::path::Path;

use calltape_format::*;

const RATE: u32 = 16_000;
const MS: u64 = 1_000_000;

/// A call `seconds` long written to `path` (via a temporary file, then renamed): two 16 kHz
/// tracks, ~30 control records/s, a turn every 10 s (user speaks 0–3 s, agent 4.2–8 s).
/// Panics if the file cannot be written: it is a benchmark fixture.
pub fn long_call(path: &Path, seconds: u64) {
    std::fs::create_dir_all(path.parent().expect("cache dir")).expect("create cache dir");
    let tmp = path.with_extension("tmp");
    let out = std::io::BufWriter::new(std::fs::File::create(&tmp).expect("create archive"));
    let track = |id, role| Track {
        id,
        role,
        sample_rate: RATE,
        channels: 1,
        codec: AudioCodec::Pcm16Lpc2,
        name: None,
    };
    let header = Header {
        session_id: "bench-two-hours".into(),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000,
        agent: AgentInfo {
            name: "bench".into(),
            version: "1".into(),
        },
        environment: None,
        tags: Default::default(),
        tracks: vec![track(1, Speaker::User), track(2, Speaker::Agent)],
    };
    let mut w = ArchiveWriter::new(out, header).expect("writer");
    let mut put = |t_ms: u64, r: Record| {
        w.write(&TimedRecord::new(t_ms * MS, r))
            .expect("write record")
    };
    let per = (RATE / 50) as u64;
    // a 10 s turn: user speaks 0–3 s, agent 4.2–8 s
    for f in 0..seconds * 50 {
        let t_ms = f * 20;
        let turn = (t_ms / 10_000) as u32 + 1;
        let in_turn = t_ms % 10_000;
        let base = (turn as u64 - 1) * 10_000;
        if in_turn == 0 {
            put(
                t_ms,
                Record::TurnStart(TurnStart {
                    turn,
                    speaker: Speaker::User,
                    attributes: Default::default(),
                }),
            );
        }
        for (track, speaking) in [
            (1u16, in_turn < 3_000),
            (2u16, (4_200..8_000).contains(&in_turn)),
        ] {
            let first = f * per;
            let samples: Vec<i16> = (0..per)
                .map(|i| {
                    if speaking {
                        (((first + i) as f64 * 0.07).sin() * 5000.0) as i16
                    } else {
                        ((first + i) % 7) as i16 - 3
                    }
                })
                .collect();
            put(
                t_ms,
                Record::Audio(AudioFrame {
                    track,
                    channels: 1,
                    first_sample: first,
                    samples,
                }),
            );
        }
        // ~30 control records per second: interim transcripts, events, logs
        if f % 5 < 3 {
            let rec = match f % 3 {
                0 => Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker: Speaker::User,
                    text: format!("interim hypothesis number {f}"),
                    is_final: false,
                    confidence: Some(0.5),
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: Some(base * MS),
                    end_ns: None,
                    attributes: Default::default(),
                }),
                1 => Record::Event(Event {
                    turn: Some(turn),
                    name: "agent_state_changed".into(),
                    attributes: Default::default(),
                }),
                _ => Record::Log(LogLine {
                    turn: Some(turn),
                    level: "debug".into(),
                    target: "agent".into(),
                    message: format!("tick {f}"),
                    fields: Default::default(),
                }),
            };
            put(t_ms, rec);
        }
        if in_turn == 8_100 {
            let st = |s, a: u64, b: u64| {
                Record::StageTiming(StageTiming::new(
                    Some(turn),
                    s,
                    (base + a) * MS,
                    (base + b) * MS,
                ))
            };
            let mut llm = StageTiming::new(
                Some(turn),
                Stage::Llm,
                (base + 3_400) * MS,
                (base + 4_000) * MS,
            );
            llm.ttft_ns = Some((300 + (turn as u64 * 37) % 900) * MS);
            let transcript = |speaker, text: String, start: u64, end: u64| {
                Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker,
                    text,
                    is_final: true,
                    confidence: None,
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: Some((base + start) * MS),
                    end_ns: Some((base + end) * MS),
                    attributes: Default::default(),
                })
            };
            for r in [
                st(Stage::Vad, 0, 3_000),
                st(Stage::Eou, 3_000, 3_300),
                Record::StageTiming(llm),
                st(Stage::Playback, 4_200, 8_000),
                transcript(
                    Speaker::User,
                    format!("final user words of turn {turn}"),
                    0,
                    3_000,
                ),
                transcript(Speaker::Agent, format!("agent answer {turn}"), 4_200, 8_000),
                Record::TurnEnd(TurnEnd {
                    turn,
                    speaker: Some(Speaker::Agent),
                    attributes: Default::default(),
                }),
            ] {
                put(t_ms, r);
            }
        }
    }
    w.finish().expect("finish archive");
    std::fs::rename(&tmp, path).expect("move archive into place");
}

/// A small closed archive: four user turns of control records, no audio (~2 KiB). `i` varies
/// the session id, start time, agent and latencies.
pub fn small_archive(i: usize) -> Vec<u8> {
    let header = Header {
        session_id: format!("bench-{i:06}"),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000 + i as i64 * 60_000_000_000,
        agent: AgentInfo {
            name: format!("agent-{}", i % 4),
            version: "1.0".into(),
        },
        environment: Some("bench".into()),
        tags: Default::default(),
        tracks: Vec::new(),
    };
    let mut w = ArchiveWriter::new(Vec::new(), header).expect("writer");
    for turn in 1..=4u32 {
        let t0 = u64::from(turn) * 10_000 * MS;
        let e2e = 600 + (i as u64 * 37 + u64::from(turn) * 101) % 1500;
        let recs = [
            Record::TurnStart(TurnStart {
                turn,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
            Record::StageTiming(StageTiming::new(Some(turn), Stage::Vad, t0, t0 + 1500 * MS)),
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Eou,
                t0 + 1500 * MS,
                t0 + 1800 * MS,
            )),
            Record::StageTiming(StageTiming::new(
                Some(turn),
                Stage::Playback,
                t0 + (1500 + e2e) * MS,
                t0 + (3000 + e2e) * MS,
            )),
            Record::TurnEnd(TurnEnd {
                turn,
                speaker: None,
                attributes: Default::default(),
            }),
        ];
        for (k, r) in recs.into_iter().enumerate() {
            w.write(&TimedRecord::new(t0 + k as u64 * MS, r))
                .expect("write record");
        }
    }
    w.finish().expect("finish archive").0
}

//! Deterministic archives for the format tests and the conformance vectors.
#![allow(dead_code)]

use calltape_format::*;
use serde_json::json;

pub fn header(tracks: Vec<Track>) -> Header {
    Header {
        session_id: "vec-0001".into(),
        started_at: "2026-11-21T10:00:00.000Z".into(),
        started_at_unix_ns: 1_795_255_200_000_000_000,
        agent: AgentInfo {
            name: "support-bot".into(),
            version: "1.4.2".into(),
        },
        environment: Some("test".into()),
        tags: serde_json::from_value(json!({"region": "eu-west-1"})).unwrap(),
        tracks,
    }
}

pub fn track(id: u16, role: Speaker, rate: u32) -> Track {
    Track {
        id,
        role,
        sample_rate: rate,
        channels: 1,
        codec: AudioCodec::Pcm16Lpc2,
        name: None,
    }
}

/// A mono track in codec `pcm16_rice` (chunk encoding 2, format 1.1).
pub fn rice_track(id: u16, role: Speaker, rate: u32) -> Track {
    Track {
        codec: AudioCodec::Pcm16Rice,
        ..track(id, role, rate)
    }
}

/// A track in codec `pcm16_qlpc` (chunk encoding 3, format 1.2).
pub fn qlpc_track(id: u16, role: Speaker, rate: u32, channels: u8) -> Track {
    Track {
        codec: AudioCodec::Pcm16Qlpc,
        channels,
        ..track(id, role, rate)
    }
}

const MS: u64 = 1_000_000;

fn stage(turn: u32, stage: Stage, start_ms: u64, end_ms: u64) -> StageTiming {
    StageTiming::new(Some(turn), stage, start_ms * MS, end_ms * MS)
}

/// One user turn with every stage, a tool call and the rest of the record kinds.
pub fn full_records() -> Vec<TimedRecord> {
    let t = |ms: u64, r: Record| TimedRecord::new(ms * MS, r);
    let mut llm = stage(1, Stage::Llm, 1_900, 2_600);
    llm.ttft_ns = Some(420 * MS);
    llm.model = Some("gpt-4o-mini".into());
    llm.provider = Some("openai".into());
    llm.prompt_tokens = Some(812);
    llm.completion_tokens = Some(31);
    let mut tts = stage(1, Stage::Tts, 2_350, 3_900);
    tts.ttfb_ns = Some(180 * MS);
    tts.characters = Some(64);
    vec![
        t(
            0,
            Record::TurnStart(TurnStart {
                turn: 1,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
        ),
        t(
            1_200,
            Record::Transcript(Transcript {
                turn: Some(1),
                speaker: Speaker::User,
                text: "what's my bal".into(),
                is_final: false,
                confidence: Some(0.5),
                language: Some("en".into()),
                interrupted: false,
                heard_text: None,
                start_ns: Some(300 * MS),
                end_ns: None,
                attributes: Default::default(),
            }),
        ),
        t(1_500, Record::StageTiming(stage(1, Stage::Vad, 300, 1_400))),
        t(
            1_700,
            Record::StageTiming(stage(1, Stage::Stt, 1_400, 1_650)),
        ),
        t(
            1_700,
            Record::Transcript(Transcript {
                turn: Some(1),
                speaker: Speaker::User,
                text: "What's my balance?".into(),
                is_final: true,
                confidence: Some(0.92),
                language: Some("en".into()),
                interrupted: false,
                heard_text: None,
                start_ns: Some(300 * MS),
                end_ns: Some(1_400 * MS),
                attributes: Default::default(),
            }),
        ),
        t(
            1_850,
            Record::StageTiming(stage(1, Stage::Eou, 1_400, 1_800)),
        ),
        t(
            1_900,
            Record::StateSnapshot(StateSnapshot {
                turn: Some(1),
                scope: "session".into(),
                value: json!({"intent": "balance", "verified": true}),
            }),
        ),
        t(
            2_100,
            Record::ToolCall(ToolCall {
                turn: Some(1),
                call_id: Some("call_1".into()),
                name: "get_balance".into(),
                arguments: json!({"account": "checking"}),
                output: json!({"balance": 2410.0}),
                is_error: false,
                start_ns: 1_950 * MS,
                end_ns: 2_100 * MS,
                attributes: Default::default(),
            }),
        ),
        t(
            2_100,
            Record::StageTiming(stage(1, Stage::Tool, 1_950, 2_100)),
        ),
        t(2_600, Record::StageTiming(llm)),
        t(
            2_650,
            Record::Transcript(Transcript {
                turn: Some(1),
                speaker: Speaker::Agent,
                text: "Your balance is $2,410.".into(),
                is_final: true,
                confidence: None,
                language: None,
                interrupted: false,
                heard_text: None,
                start_ns: Some(2_700 * MS),
                end_ns: Some(3_900 * MS),
                attributes: Default::default(),
            }),
        ),
        t(
            2_700,
            Record::Event(Event {
                turn: Some(1),
                name: "agent_state_changed".into(),
                attributes: serde_json::from_value(
                    json!({"old_state": "thinking", "new_state": "speaking"}),
                )
                .unwrap(),
            }),
        ),
        t(3_900, Record::StageTiming(tts)),
        t(
            3_900,
            Record::StageTiming(stage(1, Stage::Playback, 2_700, 3_900)),
        ),
        t(
            3_950,
            Record::Log(LogLine {
                turn: Some(1),
                level: "warn".into(),
                target: "agent::llm".into(),
                message: "slow upstream".into(),
                fields: serde_json::from_value(json!({"ms": 420})).unwrap(),
            }),
        ),
        t(
            3_960,
            Record::Usage(Usage {
                turn: Some(1),
                prompt_tokens: 812,
                completion_tokens: 31,
                cached_tokens: 512,
                stt_audio_seconds: 1.1,
                tts_audio_seconds: 1.2,
                tts_characters: 23,
                model: Some("gpt-4o-mini".into()),
                provider: None,
            }),
        ),
        t(
            3_970,
            Record::Dropped(Dropped {
                what: "audio:user".into(),
                count: 320,
                unit: "samples".into(),
                reason: "queue full".into(),
            }),
        ),
        t(
            4_000,
            Record::TurnEnd(TurnEnd {
                turn: 1,
                speaker: Some(Speaker::Agent),
                attributes: Default::default(),
            }),
        ),
        t(
            4_100,
            Record::SessionEnd(SessionEnd {
                reason: "user_hangup".into(),
                outcome: Some("resolved".into()),
            }),
        ),
    ]
}

/// A deterministic speech-like signal: two detuned tones with a slow envelope.
pub fn tone(n: usize, seed: u32) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let x = i as f64;
            let env = (x / 900.0 + f64::from(seed)).sin().abs();
            let v = (x * 0.071).sin() * 6000.0 + (x * 0.213 + f64::from(seed)).sin() * 2500.0;
            (v * env) as i16
        })
        .collect()
}

/// Audio frames of 20 ms for `track` at `rate`, covering `frames` frames.
pub fn audio_records(track: u16, rate: u32, frames: usize, seed: u32) -> Vec<TimedRecord> {
    let per = (rate / 50) as usize;
    let samples = tone(per * frames, seed);
    (0..frames)
        .map(|f| {
            let first = (f * per) as u64;
            TimedRecord::new(
                first * 1_000_000_000 / u64::from(rate),
                Record::Audio(AudioFrame {
                    track,
                    channels: 1,
                    first_sample: first,
                    samples: samples[f * per..(f + 1) * per].to_vec(),
                }),
            )
        })
        .collect()
}

/// 20 ms frames of `channels`-wide audio at `rate` whose sample `i` (per channel) is, by
/// `parts`: `(end, kind)` with kind 'u' the tone on the G.711 μ-law grid, 'a' on the A-law
/// grid, '0' digital silence, 'n' white noise, 'l' the tone with a little noise (linear);
/// past the last part, 'l'. For the `audio_lpc`
/// vector, whose chunks then hold every block kind and grid of `pcm16_qlpc`.
pub fn qlpc_audio_records(
    track: u16,
    rate: u32,
    channels: u8,
    frames: usize,
    parts: &[(usize, char)],
) -> Vec<TimedRecord> {
    let per = (rate / 50) as usize;
    let c = usize::from(channels);
    let base = tone(per * frames * c, 3);
    let grid = |l: &calltape_format::qlpc::Lattice, v: i16| l.values[l.nearest(i32::from(v))];
    let samples: Vec<i16> = base
        .iter()
        .enumerate()
        .map(|(n, &v)| {
            let i = n / c;
            let kind = parts.iter().find(|p| i < p.0).map_or('l', |p| p.1);
            match kind {
                'u' => grid(calltape_format::qlpc::ulaw(), v),
                'a' => grid(calltape_format::qlpc::alaw(), v),
                '0' => 0,
                'n' => {
                    // a 32-bit integer hash of the index: white, unlike the index itself
                    let mut h = n as u32;
                    h ^= h >> 16;
                    h = h.wrapping_mul(0x7feb_352d);
                    h ^= h >> 15;
                    h = h.wrapping_mul(0x846c_a68b);
                    h ^= h >> 16;
                    (h >> 20) as i16 - 2048
                }
                _ => v.wrapping_add((n * 7919 % 13) as i16 - 6),
            }
        })
        .collect();
    (0..frames)
        .map(|f| {
            let first = (f * per) as u64;
            TimedRecord::new(
                first * 1_000_000_000 / u64::from(rate),
                Record::Audio(AudioFrame {
                    track,
                    channels,
                    first_sample: first,
                    samples: samples[f * per * c..(f + 1) * per * c].to_vec(),
                }),
            )
        })
        .collect()
}

pub fn write(header: Header, records: &[TimedRecord], opts: WriterOptions) -> Vec<u8> {
    let mut w = ArchiveWriter::with_options(Vec::new(), header, opts).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap().0
}

/// Merges record lists by time (stable), as a recorder would interleave them.
pub fn merge(mut lists: Vec<Vec<TimedRecord>>) -> Vec<TimedRecord> {
    let mut all: Vec<TimedRecord> = lists.drain(..).flatten().collect();
    all.sort_by_key(|r| r.time_ns);
    all
}

/// Every conformance vector, by name.
pub fn vectors() -> Vec<(&'static str, Vec<u8>)> {
    let minimal = write(
        header(vec![]),
        &[
            TimedRecord::new(
                0,
                Record::TurnStart(TurnStart {
                    turn: 1,
                    speaker: Speaker::Agent,
                    attributes: Default::default(),
                }),
            ),
            TimedRecord::new(
                5 * MS,
                Record::SessionEnd(SessionEnd {
                    reason: "agent_hangup".into(),
                    outcome: None,
                }),
            ),
        ],
        WriterOptions::default(),
    );
    let full = write(
        header(vec![]),
        &full_records(),
        WriterOptions {
            max_chunk_duration_ns: 1_000 * MS,
            ..Default::default()
        },
    );
    let audio_opts = WriterOptions {
        max_chunk_duration_ns: 250 * MS,
        ..Default::default()
    };
    let audio_input = || {
        merge(vec![
            full_records().into_iter().take(4).collect(),
            audio_records(1, 8_000, 20, 1),
            audio_records(2, 8_000, 20, 2),
        ])
    };
    let with_audio = write(
        header(vec![
            track(1, Speaker::User, 8_000),
            track(2, Speaker::Agent, 8_000),
        ]),
        &audio_input(),
        audio_opts.clone(),
    );
    let with_rice = write(
        header(vec![
            rice_track(1, Speaker::User, 8_000),
            rice_track(2, Speaker::Agent, 8_000),
        ]),
        &audio_input(),
        audio_opts,
    );
    // 600 ms chunks of 4800 samples: blocks of 4096 and 704. Track 1's blocks are μ-law
    // grid, silence, linear, A-law grid; track 2 is stereo white noise (fixed predictor).
    let with_qlpc = write(
        header(vec![
            qlpc_track(1, Speaker::User, 8_000, 1),
            qlpc_track(2, Speaker::Agent, 8_000, 2),
        ]),
        &merge(vec![
            full_records().into_iter().take(4).collect(),
            qlpc_audio_records(
                1,
                8_000,
                1,
                60,
                &[(4096, 'u'), (4800, '0'), (8896, 'l'), (9600, 'a')],
            ),
            qlpc_audio_records(2, 8_000, 2, 10, &[(1600, 'n')]),
        ]),
        WriterOptions {
            max_chunk_duration_ns: 600 * MS,
            ..Default::default()
        },
    );
    // cut in the middle of the last chunk frame: the footer and tail are gone too
    let open = calltape_format::open(&mut std::io::Cursor::new(&full)).unwrap();
    let last = open.index.last().unwrap();
    let truncated = full[..(last.offset + last.frame_len() / 2) as usize].to_vec();
    let mut bad_crc = full.clone();
    let second = open.index[1];
    bad_crc[(second.offset + 45) as usize] ^= 0x40;
    let unknown = {
        let mut w = ArchiveWriter::new(Vec::new(), header(vec![])).unwrap();
        w.write_extension_frame(9, b"from the future").unwrap();
        w.write(&TimedRecord::new(
            0,
            Record::TurnStart(TurnStart {
                turn: 1,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
        ))
        .unwrap();
        w.write(&TimedRecord::new(
            MS,
            Record::Unknown {
                kind: 200,
                payload: b"\x01\x02opaque".to_vec(),
            },
        ))
        .unwrap();
        w.write(&TimedRecord::new(2 * MS, Record::Unknown {
            kind: calltape_format::kind::TRANSCRIPT,
            payload: br#"{"turn":1,"speaker":"user","text":"hello","is_final":true,"sentiment":"calm"}"#.to_vec(),
        })).unwrap();
        w.finish().unwrap().0
    };
    vec![
        ("minimal", minimal),
        ("full", full),
        ("audio", with_audio),
        ("audio_rice", with_rice),
        ("audio_lpc", with_qlpc),
        ("truncated", truncated),
        ("bad_crc", bad_crc),
        ("unknown_kind", unknown),
        ("unknown_encoding", unknown_encoding()),
    ]
}

/// The body of the chunk of encoding 7 in `unknown_encoding`: not zstd, not records.
pub const FUTURE_BODY: &[u8] = b"a chunk body no 1.0 reader can read";

/// A closed archive whose second chunk (lane 1) has encoding 7, unknown to this version:
/// readers skip it and read on. The writer cannot make such a chunk, so it is spliced in
/// between two chunks the writer made, and the tail is written for all three.
pub fn unknown_encoding() -> Vec<u8> {
    use calltape_format::chunk::ChunkHeader;
    use calltape_format::frame::{encode_frame, FrameKind};
    let mut future = track(1, Speaker::User, 8_000);
    future.codec = AudioCodec::Unknown;
    let mut w = ArchiveWriter::new(Vec::new(), header(vec![future])).unwrap();
    w.write(&TimedRecord::new(
        0,
        Record::TurnStart(TurnStart {
            turn: 1,
            speaker: Speaker::User,
            attributes: Default::default(),
        }),
    ))
    .unwrap();
    w.flush_chunks().unwrap();
    let first_end = w.position() as usize;
    w.write(&TimedRecord::new(
        40 * MS,
        Record::SessionEnd(SessionEnd {
            reason: "user_hangup".into(),
            outcome: None,
        }),
    ))
    .unwrap();
    w.flush_chunks().unwrap();
    let written = w.get_ref().clone();
    let mut index = w.chunks().to_vec();
    let summary = w.summary();
    let head = ChunkHeader {
        lane: 1,
        encoding: 7,
        start_ns: 0,
        end_ns: 20 * MS,
        record_count: 1,
        uncompressed_len: 320,
        first_turn: 0,
        last_turn: 0,
    };
    let mut payload = head.encode().to_vec();
    payload.extend_from_slice(FUTURE_BODY);
    let frame = encode_frame(FrameKind::Chunk, &payload);
    index[1].offset += frame.len() as u64;
    index.insert(
        1,
        ChunkEntry {
            lane: 1,
            start_ns: head.start_ns,
            end_ns: head.end_ns,
            offset: first_end as u64,
            compressed_len: FUTURE_BODY.len() as u32,
            uncompressed_len: head.uncompressed_len,
            record_count: head.record_count,
            first_turn: 0,
            last_turn: 0,
        },
    );
    let mut bytes = written[..first_end].to_vec();
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&written[first_end..]);
    let tail =
        calltape_format::writer::encode_tail(bytes.len() as u64, &summary, &index, 0).unwrap();
    bytes.extend_from_slice(&tail);
    bytes
}

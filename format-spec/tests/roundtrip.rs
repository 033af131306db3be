//! Property tests: any record sequence round-trips; a file cut at any byte recovers a prefix.

mod common;

use std::io::Cursor;

use calltape_format::*;
use proptest::prelude::*;
use serde_json::json;

fn read_all(bytes: &[u8]) -> (Archive, Vec<TimedRecord>) {
    let mut cur = Cursor::new(bytes);
    let archive = open(&mut cur).unwrap();
    let mut records = Vec::new();
    for e in &archive.index {
        records.extend(read_chunk(&mut cur, e).unwrap().records);
    }
    (archive, records)
}

fn by_lane(records: &[TimedRecord]) -> std::collections::BTreeMap<u16, Vec<TimedRecord>> {
    let mut m = std::collections::BTreeMap::<u16, Vec<TimedRecord>>::new();
    for r in records {
        m.entry(r.record.lane()).or_default().push(r.clone());
    }
    m
}

fn arb_record() -> impl Strategy<Value = TimedRecord> {
    let text = "[a-zA-Z0-9 ,.!?éß€\u{1F600}\u{0}\u{1b}]{0,40}";
    prop_oneof![
        (any::<u32>(), 1u32..50).prop_map(|(t, turn)| TimedRecord::new(
            t as u64,
            Record::TurnStart(TurnStart {
                turn,
                speaker: Speaker::User,
                attributes: Default::default()
            })
        )),
        (
            any::<u32>(),
            1u32..50,
            text,
            any::<bool>(),
            proptest::option::of(0.0f64..1.0)
        )
            .prop_map(|(t, turn, s, fin, c)| TimedRecord::new(
                t as u64,
                Record::Transcript(Transcript {
                    turn: Some(turn),
                    speaker: Speaker::Agent,
                    text: s.clone(),
                    is_final: fin,
                    confidence: c,
                    language: None,
                    interrupted: !fin,
                    heard_text: fin.then_some(s),
                    start_ns: Some(t as u64),
                    end_ns: None,
                    attributes: Default::default()
                })
            )),
        (any::<u32>(), any::<u32>(), any::<u32>(), "[a-z]{1,8}").prop_map(|(t, a, b, name)| {
            let mut s = StageTiming::new(Some(1), Stage::from(name), a as u64, b as u64);
            s.ttft_ns = Some(7);
            TimedRecord::new(t as u64, Record::StageTiming(s))
        }),
        (any::<u32>(), "[a-z_]{1,12}", any::<i64>()).prop_map(|(t, name, v)| TimedRecord::new(
            t as u64,
            Record::Event(Event {
                turn: None,
                name,
                attributes: serde_json::from_value(json!({"v": v})).unwrap()
            })
        )),
        (
            any::<u32>(),
            100u16..300,
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(t, kind, payload)| TimedRecord::new(
                t as u64,
                Record::Unknown { kind, payload }
            )),
        (
            any::<u32>(),
            0u64..1_000_000,
            proptest::collection::vec(any::<i16>(), 0..400)
        )
            .prop_map(|(t, first, samples)| TimedRecord::new(
                t as u64,
                Record::Audio(AudioFrame {
                    track: 1,
                    channels: 1,
                    first_sample: first,
                    samples
                })
            )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sequences_round_trip(records in proptest::collection::vec(arb_record(), 0..120), chunk_ms in 1u64..2000, rice in any::<bool>()) {
        let track = if rice { common::rice_track(1, Speaker::User, 16_000) } else { common::track(1, Speaker::User, 16_000) };
        let header = common::header(vec![track]);
        let opts = WriterOptions { max_chunk_duration_ns: chunk_ms * 1_000, max_chunk_bytes: 4096, ..Default::default() };
        let bytes = common::write(header, &records, opts);
        let (archive, read) = read_all(&bytes);
        prop_assert_eq!(archive.summary.totals.records, records.len() as u64);
        // within a lane, order is kept exactly
        prop_assert_eq!(by_lane(&read), by_lane(&records));
    }
}

#[test]
fn truncation_at_every_byte_recovers_a_prefix_and_never_panics() {
    for (name, bytes) in common::vectors() {
        if name.starts_with("audio") {
            // covered at a stride; every byte of it is slow in debug builds
            check_truncations(&bytes, 7);
            continue;
        }
        check_truncations(&bytes, 1);
    }
}

fn check_truncations(bytes: &[u8], stride: usize) {
    let full = calltape_format::scan(bytes).unwrap();
    let all_records: Vec<TimedRecord> = {
        let mut closed = Vec::new();
        recover_to(bytes, &mut closed).unwrap();
        read_all(&closed).1
    };
    for cut in (0..bytes.len()).step_by(stride) {
        let part = &bytes[..cut];
        let _ = calltape_format::dump::dump(part);
        let mut out = Vec::new();
        match recover_to(part, &mut out) {
            Ok(report) => {
                assert!(report.kept_bytes <= cut as u64);
                assert!(report.chunks_kept <= full.report.chunks_kept);
                let (_, records) = read_all(&out);
                // the recovered records are the first chunks' records, in order
                assert_eq!(records[..], all_records[..records.len()], "cut at {cut}");
            }
            Err(e) => assert!(
                matches!(e, FormatError::NotAnArchive | FormatError::Truncated { .. }),
                "cut at {cut}: {e}"
            ),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn corrupting_any_byte_never_panics(idx in any::<prop::sample::Index>(), bit in 0u8..8) {
        let vectors = common::vectors();
        let (_, bytes) = &vectors[idx.index(vectors.len())];
        let mut bytes = bytes.clone();
        let at = idx.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let _ = calltape_format::dump::dump(&bytes);
        let _ = recover_to(&bytes[..], Vec::new());
        if let Ok(a) = open(&mut Cursor::new(&bytes)) {
            for e in &a.index {
                let _ = read_chunk(&mut Cursor::new(&bytes), e);
            }
        }
    }
}

#[test]
fn latency_breakdown_of_the_full_turn() {
    let bytes = common::write(
        common::header(vec![]),
        &common::full_records(),
        WriterOptions::default(),
    );
    let a = open(&mut Cursor::new(&bytes)).unwrap();
    let l = &a.summary.turns[0].latency;
    let ms = 1_000_000i64;
    assert_eq!(l.user_speech_end_ns, Some(1_400 * ms as u64));
    assert_eq!(l.agent_audio_start_ns, Some(2_700 * ms as u64));
    assert_eq!(l.e2e_ns, Some(1_300 * ms));
    assert_eq!(l.eou_ns, Some(400 * ms));
    assert_eq!(
        l.stt_ns,
        Some(0),
        "stt finished before the turn was committed"
    );
    assert_eq!(l.llm_ttft_ns, Some(420 * ms));
    assert_eq!(l.tool_ns, Some(150 * ms));
    assert_eq!(l.tts_ttfb_ns, Some(180 * ms));
    assert_eq!(l.rest_ns, Some((1_300 - 400 - 420 - 150 - 180) * ms));
    assert!(l.flags.is_empty(), "{:?}", l.flags);
    let t = &a.summary.totals;
    assert_eq!(t.tool_calls, 1);
    assert_eq!(t.outcome.as_deref(), Some("resolved"));
    assert_eq!(t.usage.prompt_tokens, 812);
    assert_eq!(t.dropped[0].count, 320);
    assert_eq!(t.e2e_p50_ns, Some(1_300 * ms));
}

#[test]
fn audio_lane_is_lossless_and_smaller_than_pcm() {
    let records = common::audio_records(1, 16_000, 250, 3);
    let mut sizes = Vec::new();
    for track in [
        common::track(1, Speaker::User, 16_000),
        common::rice_track(1, Speaker::User, 16_000),
        common::qlpc_track(1, Speaker::User, 16_000, 1),
    ] {
        // (minor version, chunk encoding) each codec is written with (SPEC §2.1, §4)
        let (minor, encoding) = match track.codec {
            AudioCodec::Pcm16Lpc2 => (0, 1),
            AudioCodec::Pcm16Rice => (1, 2),
            _ => (2, 3),
        };
        let header = common::header(vec![track]);
        let bytes = common::write(header, &records, WriterOptions::default());
        assert_eq!(
            bytes[9], minor,
            "the lowest minor version defining the codec"
        );
        let (a, read) = read_all(&bytes);
        assert_eq!(read, records);
        assert_eq!(a.index.len(), 5, "5 s of audio in 1 s chunks");
        let d = calltape_format::dump::dump(&bytes);
        let encodings: Vec<u64> = d["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["encoding"].as_u64().unwrap())
            .collect();
        assert_eq!(encodings, vec![encoding; 5]);
        let pcm_bytes = 250 * 320 * 2;
        assert!(
            bytes.len() * 10 < pcm_bytes * 6,
            "{} vs {pcm_bytes}",
            bytes.len()
        );
        sizes.push(bytes.len());
    }
    assert!(sizes[1] < sizes[0], "pcm16_rice is smaller: {sizes:?}");
    assert!(
        sizes[2] < sizes[1],
        "pcm16_qlpc is smaller still: {sizes:?}"
    );
}

#[test]
fn stereo_rice_round_trips_and_recovery_keeps_the_minor_version() {
    let mut track = common::rice_track(1, Speaker::Agent, 48_000);
    track.channels = 2;
    let frames = 960;
    let left = common::tone(frames * 60, 4);
    let right = common::tone(frames * 60, 5);
    let records: Vec<TimedRecord> = (0..60)
        .map(|f| {
            let samples = (f * frames..(f + 1) * frames)
                .flat_map(|i| [left[i], right[i].wrapping_mul(3)])
                .collect();
            TimedRecord::new(
                (f * 20_000_000) as u64,
                Record::Audio(AudioFrame {
                    track: 1,
                    channels: 2,
                    first_sample: (f * frames) as u64,
                    samples,
                }),
            )
        })
        .collect();
    let bytes = common::write(
        common::header(vec![track]),
        &records,
        WriterOptions::default(),
    );
    assert_eq!(bytes[9], 1);
    assert_eq!(read_all(&bytes).1, records);
    let mut out = Vec::new();
    recover_to(&bytes[..bytes.len() - 3], &mut out).unwrap();
    assert_eq!(out[9], 1, "recovery keeps the input's minor version");
    assert_eq!(read_all(&out).1, records);
}

#[test]
fn writer_refuses_audio_of_an_unknown_codec() {
    let mut track = common::track(1, Speaker::User, 16_000);
    track.codec = AudioCodec::Unknown;
    let mut w = ArchiveWriter::new(Vec::new(), common::header(vec![track])).unwrap();
    let rec = &common::audio_records(1, 16_000, 1, 0)[0];
    assert!(matches!(w.write(rec), Err(FormatError::Invalid { .. })));
}

/// An encoding-2 chunk payload: one audio record of `frames` x `channels` and `bits` as the
/// Rice bitstream, zstd-compressed.
fn rice_chunk(frames: u32, channels: u8, bits: &[u8]) -> Vec<u8> {
    use calltape_format::chunk::ChunkHeader;
    let mut head = vec![1, 0, channels, 0];
    head.extend_from_slice(&0u64.to_le_bytes());
    head.extend_from_slice(&frames.to_le_bytes());
    let mut records = kind::AUDIO.to_le_bytes().to_vec();
    records.extend_from_slice(&0u64.to_le_bytes());
    records.extend_from_slice(&(head.len() as u32).to_le_bytes());
    records.extend_from_slice(&head);
    let mut body = (records.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&records);
    body.extend_from_slice(bits);
    let h = ChunkHeader {
        lane: 1,
        encoding: 2,
        start_ns: 0,
        end_ns: 0,
        record_count: 1,
        uncompressed_len: body.len() as u32,
        first_turn: 0,
        last_turn: 0,
    };
    let mut payload = h.encode().to_vec();
    payload.extend_from_slice(&zstd::bulk::compress(&body, 1).unwrap());
    payload
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rice_chunks_of_garbage_never_panic(frames in 0u32..1500, channels in 0u8..4, bits in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = calltape_format::chunk::decode_chunk(&rice_chunk(frames, channels, &bits), 0);
    }
}

#[test]
fn rice_chunks_are_bounded_before_decoding() {
    use calltape_format::chunk::decode_chunk;
    // 4 billion frames claimed over 8 bytes: refused before anything is allocated
    let err = decode_chunk(&rice_chunk(u32::MAX, 1, &[0xFF; 8]), 0).unwrap_err();
    assert!(matches!(err, FormatError::TooLarge { .. }), "{err}");
    let err = decode_chunk(&rice_chunk(65, 1, &[0xFF; 8]), 0).unwrap_err();
    assert!(err.to_string().contains("pcm16_rice"), "{err}");
    // 32 zero residuals at k = 0 after an order-0 block header: 3 + 4 + 32 bits, padded
    let mut bits = vec![0xFFu8; 5];
    bits[0] = 0b0000_0001; // order 000, k 0000, the first residual
    bits[4] = 0b1111_1110; // 7 + 32 = 39 bits: the last byte has 1 bit of padding
    let c = decode_chunk(&rice_chunk(32, 1, &bits), 0).unwrap();
    match &c.records[0].record {
        Record::Audio(a) => assert_eq!(a.samples, vec![0i16; 32]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn opener_asks_for_a_second_range_when_the_tail_is_large() {
    // thousands of turns with incompressible text make a summary bigger than the first fetch
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = || {
        (0..120)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect::<String>()
    };
    let records: Vec<TimedRecord> = (0..6_000u64)
        .map(|i| {
            TimedRecord::new(
                i * 1_000,
                Record::Transcript(Transcript {
                    turn: Some(i as u32 + 1),
                    speaker: Speaker::User,
                    text: noise(),
                    is_final: true,
                    confidence: None,
                    language: None,
                    interrupted: false,
                    heard_text: None,
                    start_ns: None,
                    end_ns: None,
                    attributes: Default::default(),
                }),
            )
        })
        .collect();
    let opts = WriterOptions {
        max_chunk_duration_ns: 1,
        ..Default::default()
    };
    let bytes = common::write(common::header(vec![]), &records, opts);
    let mut opener = Opener::new(bytes.len() as u64);
    let first = opener.first_range();
    let mut requests = 1;
    let mut step = opener
        .feed(first.start, &bytes[first.start as usize..])
        .unwrap();
    while let OpenStep::Need(r) = step {
        requests += 1;
        step = opener
            .feed(r.start, &bytes[r.start as usize..r.end as usize])
            .unwrap();
    }
    let OpenStep::Ready(a) = step else {
        unreachable!()
    };
    assert_eq!(a.summary.turns.len(), 6_000);
    assert_eq!(requests, 2);
}

#[test]
fn overlapping_parts_keep_e2e_valid_but_negative_e2e_does_not() {
    let mut records = common::full_records();
    // a reported LLM ttft longer than the whole gap: parts exceed e2e, e2e itself is fine
    for r in &mut records {
        if let Record::StageTiming(s) = &mut r.record {
            if s.stage == Stage::Llm {
                s.ttft_ns = Some(5_000_000_000);
            }
        }
    }
    let bytes = common::write(common::header(vec![]), &records, WriterOptions::default());
    let a = open(&mut Cursor::new(&bytes)).unwrap();
    let l = &a.summary.turns[0].latency;
    assert!(l
        .flags
        .contains(&calltape_format::call::LatencyFlag::PartsExceedE2e));
    assert_eq!(l.valid_e2e_ns(), Some(1_300_000_000));
    assert_eq!(a.summary.totals.e2e_p50_ns, Some(1_300_000_000));
}

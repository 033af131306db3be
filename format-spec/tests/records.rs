//! The record reader against the plain decode path (open, read every selected chunk, stable
//! sort by time): same records, same order, for every filter, fetch option and cache size,
//! on closed files and on crashed files read through a forward scan.

mod common;

use std::io::Cursor;
use std::sync::Arc;

use calltape_format::*;
use proptest::prelude::*;

/// The plain path: the selected chunks in file order, concatenated, stably sorted by time.
fn expected(bytes: &[u8], archive: &Archive, filter: &Filter) -> Vec<TimedRecord> {
    let mut cur = Cursor::new(bytes);
    let mut out = Vec::new();
    for e in archive.index.iter().filter(|e| filter.wants_chunk(e)) {
        out.extend(read_chunk(&mut cur, e).unwrap().records);
    }
    out.sort_by_key(|r| r.time_ns);
    out.retain(|r| filter.wants_time(r.time_ns));
    out
}

/// Drives the sans-io reader from memory, checking every request it makes.
fn drive(bytes: &[u8], mut reader: RecordReader, opts: &FetchOptions) -> Vec<TimedRecord> {
    let mut out = Vec::new();
    let frames: Vec<_> = reader
        .chunks()
        .iter()
        .map(ChunkEntry::frame_range)
        .collect();
    while let Some(ev) = reader.next_event().unwrap() {
        match ev {
            ReadEvent::Record(r) => out.push(r),
            ReadEvent::Need(ranges) => {
                assert!(!ranges.is_empty());
                for r in &ranges {
                    assert!(r.end <= bytes.len() as u64 && r.start < r.end);
                    // a range over the size bound is one frame
                    let one_frame = frames.iter().any(|f| f == r);
                    assert!(r.end - r.start <= opts.max_request || one_frame, "{r:?}");
                }
                // feed the last range first: order must not matter
                let mut taken = 0;
                for r in ranges.iter().rev() {
                    taken += reader
                        .feed(r.start, &bytes[r.start as usize..r.end as usize])
                        .unwrap();
                }
                assert!(taken > 0, "asked for {ranges:?} holding no wanted chunk");
            }
        }
    }
    out
}

fn arb_control() -> impl Strategy<Value = TimedRecord> {
    (0u64..3_000, 1u32..6, "[a-z ]{0,12}", any::<bool>()).prop_map(|(t, turn, text, user)| {
        let record = if user {
            Record::Transcript(Transcript {
                turn: Some(turn),
                speaker: Speaker::User,
                text,
                is_final: true,
                confidence: None,
                language: None,
                interrupted: false,
                heard_text: None,
                start_ns: None,
                end_ns: None,
                attributes: Default::default(),
            })
        } else {
            Record::Event(Event {
                turn: Some(turn),
                name: text,
                attributes: Default::default(),
            })
        };
        TimedRecord::new(t * 1_000, record)
    })
}

fn arb_audio() -> impl Strategy<Value = TimedRecord> {
    (0u64..3_000, 1u16..3, 0u64..10_000, 0usize..40).prop_map(|(t, track, first, n)| {
        TimedRecord::new(
            t * 1_000,
            Record::Audio(AudioFrame {
                track,
                channels: 1,
                first_sample: first,
                samples: common::tone(n, first as u32),
            }),
        )
    })
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    prop_oneof![
        Just(Filter::all()),
        (0u16..3).prop_map(Filter::lane),
        proptest::collection::vec(0u16..3, 0..3).prop_map(Filter::lanes),
        (0u64..3_000_000, 0u64..3_000_000).prop_map(|(a, b)| Filter::all().between(a, b)),
        (0u16..3, 0u64..3_000_000, 0u64..1_500_000)
            .prop_map(|(l, a, d)| Filter::lane(l).between(a, a + d)),
    ]
}

fn arb_fetch() -> impl Strategy<Value = FetchOptions> {
    (0u64..2_000, 1u64..4_000, 0u64..6_000).prop_map(|(max_gap, max_request, read_ahead)| {
        FetchOptions {
            max_gap,
            max_request,
            read_ahead,
        }
    })
}

fn write(records: &[TimedRecord], chunk_us: u64) -> Vec<u8> {
    let header = common::header(vec![
        common::track(1, Speaker::User, 16_000),
        common::rice_track(2, Speaker::Agent, 16_000),
    ]);
    let opts = WriterOptions {
        max_chunk_duration_ns: chunk_us * 1_000,
        max_chunk_bytes: 2048,
        ..Default::default()
    };
    common::write(header, records, opts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn same_records_in_the_same_order_as_the_plain_path(
        control in proptest::collection::vec(arb_control(), 0..80),
        audio in proptest::collection::vec(arb_audio(), 0..60),
        chunk_us in 1u64..800,
        filter in arb_filter(),
        fetch in arb_fetch(),
        budget in prop_oneof![Just(0u64), Just(4_000u64), Just(1u64 << 30)],
    ) {
        // records arrive out of time order, so chunks of one lane overlap in time
        let mut records = control;
        records.extend(audio);
        let bytes = write(&records, chunk_us);
        let archive = open(&mut Cursor::new(&bytes)).unwrap();
        let want = expected(&bytes, &archive, &filter);

        let blocking = read_records(Cursor::new(&bytes), &archive, filter.clone()).unwrap();
        prop_assert_eq!(&blocking, &want);

        // twice through one shared cache: the second pass finds some or all chunks cached
        let cache = Arc::new(ChunkCache::new(budget));
        for _ in 0..2 {
            let reader = RecordReader::new(&archive, filter.clone())
                .with_options(fetch)
                .with_cache(cache.clone());
            prop_assert_eq!(&drive(&bytes, reader, &fetch), &want);
        }
        prop_assert!(cache.used() <= budget);
    }

    #[test]
    fn a_crashed_file_reads_through_the_scan_like_its_recovered_copy(
        control in proptest::collection::vec(arb_control(), 1..60),
        audio in proptest::collection::vec(arb_audio(), 0..30),
        chunk_us in 1u64..800,
        cut_permille in 0u64..1000,
        filter in arb_filter(),
    ) {
        let mut records = control;
        records.extend(audio);
        let full = write(&records, chunk_us);
        let cut = (full.len() as u64 * cut_permille / 1000) as usize;
        let part = &full[..cut];
        let mut cur = Cursor::new(part);
        let Ok((archive, scanned)) = open_or_scan(&mut cur) else {
            // too short to hold even the header frame
            return Ok(());
        };
        prop_assert!(scanned.is_some() || cut == full.len());
        let mut recovered = Vec::new();
        recover_to(part, &mut recovered).unwrap();
        let closed = open(&mut Cursor::new(&recovered)).unwrap();
        let got = read_records(Cursor::new(part), &archive, filter.clone()).unwrap();
        prop_assert_eq!(got, expected(&recovered, &closed, &filter));
    }
}

#[test]
fn the_full_vector_reads_in_time_order_across_lanes() {
    for (name, bytes) in common::vectors() {
        if name == "truncated" || name == "bad_crc" {
            continue;
        }
        let archive = open(&mut Cursor::new(&bytes)).unwrap();
        let all = read_records(Cursor::new(&bytes), &archive, Filter::all()).unwrap();
        assert_eq!(all, expected(&bytes, &archive, &Filter::all()), "{name}");
        assert!(all.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
        assert_eq!(all.len() as u64, archive.summary.totals.records, "{name}");
    }
}

#[test]
fn neighbouring_chunks_come_in_one_range() {
    let mut records = common::audio_records(1, 16_000, 200, 1);
    records.extend(common::audio_records(2, 16_000, 200, 2));
    records.sort_by_key(|r| r.time_ns);
    let bytes = write(&records, 200_000);
    let archive = open(&mut Cursor::new(&bytes)).unwrap();
    assert!(archive.index.len() > 10);
    let mut reader = RecordReader::new(&archive, Filter::all());
    let Some(ReadEvent::Need(ranges)) = reader.next_event().unwrap() else {
        panic!("a fresh reader asks for bytes first");
    };
    // every chunk is adjacent to the next: one request for all of them
    let first = archive.index.first().unwrap().offset;
    let last = archive.index.last().unwrap().frame_range().end;
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0], first..last);
}

#[test]
fn a_damaged_chunk_is_an_error_naming_its_offset_and_the_reader_stops() {
    let records = common::full_records();
    let mut bytes = write(&records, 1_000_000);
    let archive = open(&mut Cursor::new(&bytes)).unwrap();
    let victim = archive.index[0];
    bytes[victim.offset as usize + 12] ^= 0xff;
    let mut it = records::records(Cursor::new(&bytes), &archive, Filter::all());
    match it.next() {
        Some(Err(FormatError::BadChecksum { offset, .. })) => assert_eq!(offset, victim.offset),
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(it.next().is_none());
}

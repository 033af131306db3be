//! Each class of hostile archive from issues 17 and 18, built with valid frames and CRCs:
//! the reader refuses it with an error naming what and where, or reads it within its limits.

use std::io::Cursor;

use calltape_format::limits::{MAX_CHUNK_RECORDS, MAX_SUMMARY_TURNS};
use calltape_format::{open, read_chunk, records, recover_to, Filter, FormatError, Record};
use calltape_hostile::cases;
use calltape_hostile::forge::Forge;

#[test]
fn an_index_inflating_to_millions_of_entries_is_refused_by_count() {
    let file = cases::index_bomb(7_000_000, 7_000_000);
    assert!(file.len() < 16 << 10, "{} bytes", file.len());
    let err = open(&mut Cursor::new(&file)).unwrap_err();
    assert!(
        matches!(&err, FormatError::Malformed { what: "footer", reason, .. } if reason.contains("7000000 chunks")),
        "{err}"
    );
    // the footer's count agreeing with a small file, the index itself is refused
    let file = cases::index_bomb(7_000_000, 0);
    let err = open(&mut Cursor::new(&file)).unwrap_err();
    assert!(err.to_string().contains("claims 7000000 chunks"), "{err}");
}

#[test]
fn a_chunk_of_millions_of_empty_records_is_refused_before_decoding_them() {
    let all = ((32 << 20) / 14) as u32;
    let file = cases::empty_record_bomb(all);
    assert!(file.len() < 4 << 10, "{} bytes", file.len());
    let a = open(&mut Cursor::new(&file)).unwrap();
    let err = read_chunk(&mut Cursor::new(&file), &a.index[0]).unwrap_err();
    assert!(
        matches!(err, FormatError::TooMany { what: "chunk record count", count, limit, .. }
            if count == u64::from(all) && limit == u64::from(MAX_CHUNK_RECORDS)),
        "{err}"
    );
    let file = cases::empty_record_bomb(MAX_CHUNK_RECORDS);
    let a = open(&mut Cursor::new(&file)).unwrap();
    let err = read_chunk(&mut Cursor::new(&file), &a.index[0]).unwrap_err();
    assert!(
        err.to_string()
            .contains("holds more records than the 65536 its header says"),
        "{err}"
    );
}

#[test]
fn a_record_of_a_million_json_values_is_refused_before_parsing() {
    let file = cases::json_value_bomb(2 << 20);
    let a = open(&mut Cursor::new(&file)).unwrap();
    let err = read_chunk(&mut Cursor::new(&file), &a.index[0]).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::TooMany {
                what: "chunk JSON values",
                ..
            }
        ),
        "{err}"
    );
    // under the limit it reads
    let file = cases::json_value_bomb(1000);
    let a = open(&mut Cursor::new(&file)).unwrap();
    assert_eq!(
        read_chunk(&mut Cursor::new(&file), &a.index[0])
            .unwrap()
            .records
            .len(),
        1
    );
}

#[test]
fn chunks_piled_on_one_instant_stop_the_merge_with_an_error() {
    let file = cases::pile_on_one_instant(60);
    assert!(file.len() < 64 << 10, "{} bytes", file.len());
    let a = open(&mut Cursor::new(&file)).unwrap();
    // each chunk alone is fine
    assert_eq!(
        read_chunk(&mut Cursor::new(&file), &a.index[0])
            .unwrap()
            .records
            .len(),
        MAX_CHUNK_RECORDS as usize
    );
    let mut read = 0usize;
    let mut error = None;
    for r in records(Cursor::new(&file), &a, Filter::all()) {
        match r {
            Ok(_) => read += 1,
            Err(e) => error = Some(e),
        }
    }
    let err = error.expect("the merge refuses to hold every chunk at once");
    assert!(
        matches!(err, FormatError::TooLarge { what, .. } if what.starts_with("records overlapping in time")),
        "{err}"
    );
    assert!(read < 60 * MAX_CHUNK_RECORDS as usize);
}

#[test]
fn recovering_200_000_turns_writes_a_summary_that_opens() {
    let crashed = cases::turn_flood(200_000);
    let mut out = Vec::new();
    let report = recover_to(&crashed[..], &mut out).unwrap();
    assert_eq!(report.records_kept, 200_000);
    let a = open(&mut Cursor::new(&out)).expect("the recovered file opens from its footer");
    assert_eq!(a.summary.turns.len(), MAX_SUMMARY_TURNS);
    assert!(a.summary.totals.turns_truncated);
    // the lowest ids are the ones listed, and the records still hold every turn
    assert_eq!(a.summary.turns.first().unwrap().turn, 1);
    assert_eq!(
        a.summary.turns.last().unwrap().turn,
        MAX_SUMMARY_TURNS as u32
    );
    let starts = records(Cursor::new(&out), &a, Filter::all())
        .filter(|r| matches!(r, Ok(t) if matches!(t.record, Record::TurnStart(_))))
        .count();
    assert_eq!(starts, 200_000);
}

#[test]
fn a_summary_listing_more_turns_than_the_limit_is_refused() {
    let crashed = cases::turn_flood(MAX_SUMMARY_TURNS as u32 + 1);
    let mut out = Vec::new();
    recover_to(&crashed[..], &mut out).unwrap();
    let a = open(&mut Cursor::new(&out)).unwrap();
    assert_eq!(a.summary.turns.len(), MAX_SUMMARY_TURNS);
    // a forged summary listing one more
    let forge = Forge::new(a.summary.header.clone());
    let mut summary = a.summary.clone();
    let extra = summary.turns[0].clone();
    summary.turns.push(extra);
    let file = forge.closed_with(&summary, &[]);
    let err = open(&mut Cursor::new(&file)).unwrap_err();
    assert!(
        err.to_string()
            .contains("lists 20001 turns, over the limit of 20000"),
        "{err}"
    );
}

#[test]
fn a_chunk_header_that_lies_about_its_records_is_named() {
    use calltape_format::chunk::header_problems;
    use calltape_hostile::cases::{lying_header, Lie};
    let honest = lying_header(Lie::FirstTurn(2));
    let a = open(&mut Cursor::new(&honest)).unwrap();
    for e in &a.index {
        let c = read_chunk(&mut Cursor::new(&honest), e).unwrap();
        assert_eq!(
            header_problems(&c, &a.header().tracks),
            Vec::<String>::new()
        );
    }
    for (lie, says) in [
        (Lie::FirstTurn(u32::MAX), "header says turns 4294967295..2"),
        (
            Lie::Lane(3),
            "header says lane 3, but it holds a turn_start record of lane 0",
        ),
        (
            Lie::StartNs(u64::MAX),
            "header says records span 18446744073709551615..2000000003 ns",
        ),
    ] {
        let file = lying_header(lie);
        let a = open(&mut Cursor::new(&file)).unwrap();
        let c = read_chunk(&mut Cursor::new(&file), &a.index[1]).unwrap();
        let problems = header_problems(&c, &a.header().tracks);
        assert!(
            problems.iter().any(|p| p.contains(says)),
            "{lie:?}: {problems:?}"
        );
    }
}

/// A writer whose chunks close only on the reader limits (no time or size bound in reach).
fn unbounded_writer() -> calltape_format::ArchiveWriter<Vec<u8>> {
    let opts = calltape_format::WriterOptions {
        max_chunk_duration_ns: u64::MAX,
        max_chunk_bytes: usize::MAX,
        ..Default::default()
    };
    calltape_format::ArchiveWriter::with_options(
        Vec::new(),
        calltape_hostile::forge::header(&[]),
        opts,
    )
    .unwrap()
}

#[test]
fn the_writer_closes_a_chunk_at_the_record_limit() {
    let mut w = unbounded_writer();
    let n = MAX_CHUNK_RECORDS as u64 + 10;
    for t in 0..n {
        let r = Record::Unknown {
            kind: cases::UNKNOWN_KIND,
            payload: Vec::new(),
        };
        w.write(&calltape_format::TimedRecord::new(t, r)).unwrap();
    }
    let (file, _) = w.finish().unwrap();
    let a = open(&mut Cursor::new(&file)).unwrap();
    let counts: Vec<u32> = a.index.iter().map(|e| e.record_count).collect();
    assert_eq!(counts, vec![MAX_CHUNK_RECORDS, 10]);
    for e in &a.index {
        read_chunk(&mut Cursor::new(&file), e).unwrap();
    }
}

#[test]
fn the_writer_closes_a_chunk_before_the_json_value_limit() {
    use calltape_format::limits::MAX_CHUNK_JSON_VALUES;
    let mut w = unbounded_writer();
    // three turn_starts of 0.4 Mi values each: the third starts a new chunk
    let values: Vec<u32> = vec![0; MAX_CHUNK_JSON_VALUES * 2 / 5];
    for turn in 1..=3u32 {
        let r = Record::TurnStart(calltape_format::TurnStart {
            turn,
            speaker: calltape_format::Speaker::User,
            attributes: [("a".to_string(), serde_json::json!(values))]
                .into_iter()
                .collect(),
        });
        w.write(&calltape_format::TimedRecord::new(u64::from(turn), r))
            .unwrap();
    }
    // one record over the limit by itself is refused, and the archive stays writable
    let huge = Record::TurnStart(calltape_format::TurnStart {
        turn: 9,
        speaker: calltape_format::Speaker::User,
        attributes: [(
            "a".to_string(),
            serde_json::json!(vec![0; MAX_CHUNK_JSON_VALUES]),
        )]
        .into_iter()
        .collect(),
    });
    let err = w
        .write(&calltape_format::TimedRecord::new(9, huge))
        .unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::TooMany {
                what: "record JSON values",
                ..
            }
        ),
        "{err}"
    );
    let (file, _) = w.finish().unwrap();
    let a = open(&mut Cursor::new(&file)).unwrap();
    let counts: Vec<u32> = a.index.iter().map(|e| e.record_count).collect();
    assert_eq!(counts, vec![2, 1]);
    for e in &a.index {
        read_chunk(&mut Cursor::new(&file), e).unwrap();
    }
}

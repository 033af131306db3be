//! Each class of hostile archive from issues 17 and 18, built with valid frames and CRCs:
//! the reader refuses it with an error naming what and where, or reads it within its limits.

use std::io::Cursor;

use calltape_format::limits::{MAX_CHUNK_RECORDS, MAX_SUMMARY_TURNS};
use calltape_format::{open, read_chunk, records, recover_to, Filter, FormatError, Record};
use calltape_hostile::forge::{chunk_header, header, record, Forge};

const UNKNOWN_KIND: u16 = 200;

fn empty_records(n: usize) -> Vec<u8> {
    record(UNKNOWN_KIND, 5, &[]).repeat(n)
}

#[test]
fn an_index_inflating_to_millions_of_entries_is_refused_by_count() {
    // 7 M entries of nine zero varints compress to a few KB
    let mut raw = Vec::new();
    let n: u64 = 7_000_000;
    let mut v = n;
    while v >= 0x80 {
        raw.push((v as u8) | 0x80);
        v >>= 7;
    }
    raw.push(v as u8);
    raw.resize(raw.len() + 9 * n as usize, 0);
    let forge = Forge::new(header(&[]));
    let summary = serde_json::to_vec(&forge.empty_summary()).unwrap();
    let file = forge.closed_raw(&summary, &raw, n as u32);
    assert!(file.len() < 16 << 10, "{} bytes", file.len());
    let err = open(&mut Cursor::new(&file)).unwrap_err();
    assert!(
        matches!(&err, FormatError::Malformed { what: "footer", reason, .. } if reason.contains("7000000 chunks")),
        "{err}"
    );
    // the footer's count agreeing with a small file, the index itself is refused
    let file = forge.closed_raw(&summary, &raw, 0);
    let err = open(&mut Cursor::new(&file)).unwrap_err();
    assert!(err.to_string().contains("claims 7000000 chunks"), "{err}");
}

#[test]
fn a_chunk_of_millions_of_empty_records_is_refused_before_decoding_them() {
    // 32 MiB of zero-length unknown records: 96 bytes compressed
    let body = empty_records((32 << 20) / 14);
    let mut lying = chunk_header(0, 0, 0, 0);
    lying.record_count = (body.len() / 14) as u32;
    let mut honest_count = lying;
    honest_count.record_count = MAX_CHUNK_RECORDS;
    let mut forge = Forge::new(header(&[]));
    forge.chunk(lying, &body).chunk(honest_count, &body);
    let file = forge.closed();
    let a = open(&mut Cursor::new(&file)).unwrap();
    let err = read_chunk(&mut Cursor::new(&file), &a.index[0]).unwrap_err();
    assert!(
        matches!(err, FormatError::TooLarge { what: "chunk record count", len, limit, .. }
            if len == u64::from(lying.record_count) && limit == u64::from(MAX_CHUNK_RECORDS)),
        "{err}"
    );
    let err = read_chunk(&mut Cursor::new(&file), &a.index[1]).unwrap_err();
    assert!(
        err.to_string()
            .contains("holds more records than the 65536 its header says"),
        "{err}"
    );
}

#[test]
fn a_record_of_a_million_json_values_is_refused_before_parsing() {
    let mut payload = br#"{"turn":1,"speaker":"user","attributes":{"a":["#.to_vec();
    payload.extend_from_slice(&b"0,".repeat(2 << 20));
    payload.extend_from_slice(b"0]}}");
    let mut h = chunk_header(0, 0, 0, 0);
    h.record_count = 1;
    h.first_turn = 1;
    h.last_turn = 1;
    let mut forge = Forge::new(header(&[]));
    forge.chunk(h, &record(1, 0, &payload));
    let file = forge.closed();
    let a = open(&mut Cursor::new(&file)).unwrap();
    let err = read_chunk(&mut Cursor::new(&file), &a.index[0]).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::TooLarge {
                what: "chunk JSON values",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn chunks_piled_on_one_instant_stop_the_merge_with_an_error() {
    let body = empty_records(MAX_CHUNK_RECORDS as usize);
    let mut h = chunk_header(0, 0, 5, 5);
    h.record_count = MAX_CHUNK_RECORDS;
    let mut forge = Forge::new(header(&[]));
    for _ in 0..60 {
        forge.chunk(h, &body);
    }
    let file = forge.closed();
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

fn turn_flood(turns: u32) -> Vec<u8> {
    let mut forge = Forge::new(header(&[]));
    let per_chunk = MAX_CHUNK_RECORDS;
    let mut turn = 1u32;
    while turn <= turns {
        let last = (turn + per_chunk - 1).min(turns);
        let mut body = Vec::new();
        for t in turn..=last {
            let payload = format!(r#"{{"turn":{t},"speaker":"user"}}"#);
            body.extend_from_slice(&record(1, u64::from(t) * 1000, payload.as_bytes()));
        }
        let mut h = chunk_header(0, 0, u64::from(turn) * 1000, u64::from(last) * 1000);
        h.record_count = last - turn + 1;
        h.first_turn = turn;
        h.last_turn = last;
        forge.chunk(h, &body);
        turn = last + 1;
    }
    forge.unclosed()
}

#[test]
fn recovering_200_000_turns_writes_a_summary_that_opens() {
    let crashed = turn_flood(200_000);
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
    let crashed = turn_flood(MAX_SUMMARY_TURNS as u32 + 1);
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

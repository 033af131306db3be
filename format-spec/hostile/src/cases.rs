//! One builder per class of hostile archive from issues 17 and 18, each a few KB on disk:
//! shared by this crate's tests, the CLI's tests (run under an address-space limit) and the
//! fuzz corpus seeds.

use calltape_format::limits::MAX_CHUNK_RECORDS;
use calltape_format::{
    ArchiveWriter, AudioFrame, Record, Speaker, TimedRecord, Transcript, TurnEnd, TurnStart,
};
use serde_json::json;

use crate::forge::{chunk_header, header, record, Forge};

/// A record kind no version defines: readers keep such records as unknown.
pub const UNKNOWN_KIND: u16 = 200;

/// `n` zero-length records of an unknown kind at time 5: 14 bytes each, 96 bytes zstd'd per
/// 32 MiB.
pub fn empty_records(n: usize) -> Vec<u8> {
    record(UNKNOWN_KIND, 5, &[]).repeat(n)
}

/// A closed archive whose chunk index inflates to `entries` entries of nine zero varints
/// (7 M of them compress to a few KB); the footer's chunk count is `footer_count`.
pub fn index_bomb(entries: u64, footer_count: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut v = entries;
    while v >= 0x80 {
        raw.push((v as u8) | 0x80);
        v >>= 7;
    }
    raw.push(v as u8);
    raw.resize(raw.len() + 9 * entries as usize, 0);
    let forge = Forge::new(header(&[]));
    let summary = serde_json::to_vec(&forge.empty_summary()).expect("serializes");
    forge.closed_raw(&summary, &raw, footer_count)
}

/// A closed archive of one chunk whose 32 MiB body is zero-length unknown records, its
/// header claiming `record_count` of them.
pub fn empty_record_bomb(record_count: u32) -> Vec<u8> {
    let body = empty_records((32 << 20) / 14);
    let mut h = chunk_header(0, 0, 5, 5);
    h.record_count = record_count;
    let mut forge = Forge::new(header(&[]));
    forge.chunk(h, &body);
    forge.closed()
}

/// A closed archive of one chunk holding one turn_start whose attributes are an array of
/// `values` zeros (2 bytes each on disk, 32 parsed).
pub fn json_value_bomb(values: usize) -> Vec<u8> {
    let mut payload = br#"{"turn":1,"speaker":"user","attributes":{"a":["#.to_vec();
    payload.extend_from_slice(&b"0,".repeat(values.saturating_sub(1)));
    payload.extend_from_slice(b"0]}}");
    let mut h = chunk_header(0, 0, 0, 0);
    h.record_count = 1;
    h.first_turn = 1;
    h.last_turn = 1;
    let mut forge = Forge::new(header(&[]));
    forge.chunk(h, &record(1, 0, &payload));
    forge.closed()
}

/// A closed archive of `chunks` chunks, each the most records a chunk may hold, all at the
/// same instant: a time-ordered merge would hold them all at once.
pub fn pile_on_one_instant(chunks: usize) -> Vec<u8> {
    let body = empty_records(MAX_CHUNK_RECORDS as usize);
    let mut h = chunk_header(0, 0, 5, 5);
    h.record_count = MAX_CHUNK_RECORDS;
    let mut forge = Forge::new(header(&[]));
    for _ in 0..chunks {
        forge.chunk(h, &body);
    }
    forge.closed()
}

/// An unclosed archive (as a crash leaves it) of `turns` turn_start records, one per turn.
pub fn turn_flood(turns: u32) -> Vec<u8> {
    let mut forge = Forge::new(header(&[]));
    let mut turn = 1u32;
    while turn <= turns {
        let last = turn.saturating_add(MAX_CHUNK_RECORDS - 1).min(turns);
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
        if last == u32::MAX {
            break;
        }
        turn = last + 1;
    }
    forge.unclosed()
}

/// What a lying chunk header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    FirstTurn(u32),
    Lane(u16),
    StartNs(u64),
}

/// A closed two-turn call whose second chunk's header (and index entry) tells `lie`; the
/// records are honest. Each chunk holds one turn: a user line and an agent line.
pub fn lying_header(lie: Lie) -> Vec<u8> {
    let mut forge = Forge::new(header(&[]));
    for turn in 1..=2u32 {
        let t0 = u64::from(turn) * 1_000_000_000;
        let records = [
            TimedRecord::new(
                t0,
                Record::TurnStart(TurnStart {
                    turn,
                    speaker: Speaker::User,
                    attributes: Default::default(),
                }),
            ),
            TimedRecord::new(t0 + 1, transcript(turn, Speaker::User, "user line")),
            TimedRecord::new(t0 + 2, transcript(turn, Speaker::Agent, "agent line")),
            TimedRecord::new(
                t0 + 3,
                Record::TurnEnd(TurnEnd {
                    turn,
                    speaker: None,
                    attributes: Default::default(),
                }),
            ),
        ];
        let mut body = Vec::new();
        for r in &records {
            calltape_format::chunk::encode_record(&mut body, r, None).expect("encodes");
        }
        let mut h = chunk_header(0, 0, t0, t0 + 3);
        h.record_count = records.len() as u32;
        h.first_turn = turn;
        h.last_turn = turn;
        if turn == 2 {
            match lie {
                Lie::FirstTurn(t) => h.first_turn = t,
                Lie::Lane(l) => h.lane = l,
                Lie::StartNs(t) => h.start_ns = t,
            }
        }
        forge.chunk(h, &body);
    }
    forge.closed()
}

fn transcript(turn: u32, speaker: Speaker, text: &str) -> Record {
    Record::Transcript(
        serde_json::from_value::<Transcript>(
            json!({"turn": turn, "speaker": speaker, "text": text}),
        )
        .expect("a transcript"),
    )
}

/// A closed call with a user track of `sample_rate` Hz holding one 20 ms frame (at 16 kHz)
/// whose first sample is `first_sample`, written by the writer itself.
pub fn audio_call(sample_rate: u32, first_sample: u64) -> Vec<u8> {
    let h = header(
        &[json!({"id": 1, "role": "user", "sample_rate": sample_rate,
                            "channels": 1, "codec": "pcm16_lpc2"})],
    );
    let mut w = ArchiveWriter::new(Vec::new(), h).expect("writer");
    w.write(&TimedRecord::new(
        0,
        Record::Audio(AudioFrame {
            track: 1,
            channels: 1,
            first_sample,
            samples: vec![100; 320],
        }),
    ))
    .expect("written");
    w.finish().expect("finished").0
}

/// A closed one-turn call whose user and agent lines (and so the summary's previews) are
/// `text`, escape sequences and all.
pub fn text_call(text: &str) -> Vec<u8> {
    let mut w = ArchiveWriter::new(Vec::new(), header(&[])).expect("writer");
    let records = [
        TimedRecord::new(
            0,
            Record::TurnStart(TurnStart {
                turn: 1,
                speaker: Speaker::User,
                attributes: Default::default(),
            }),
        ),
        TimedRecord::new(1, transcript(1, Speaker::User, text)),
        TimedRecord::new(2, transcript(1, Speaker::Agent, text)),
    ];
    for r in &records {
        w.write(r).expect("written");
    }
    w.finish().expect("finished").0
}

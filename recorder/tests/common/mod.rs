//! Shared test helpers: a scripted call with explicit timestamps, and reading archives back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, SystemTime};

use calltape_format::{read_chunk, Archive, Record, TimedRecord};
use calltape_recorder::{Attributes, Session, SessionInfo, Speaker, Stage};

pub const MS: u64 = 1_000_000;
pub const RATE: u32 = 16_000;
/// 2026-11-21T10:00:00Z
pub const STARTED_AT_UNIX_S: u64 = 1_795_255_200;

pub fn started_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(STARTED_AT_UNIX_S)
}

/// A deterministic session: user on track 1, agent on track 2, both 16 kHz mono.
pub fn call_info(id: &str) -> SessionInfo {
    SessionInfo::new(id)
        .agent("front-desk", "1.2.3")
        .environment("test")
        .tag("tenant", "acme")
        .track(Speaker::User, RATE, 1)
        .track(Speaker::Agent, RATE, 1)
        .started_at(started_at())
        .manual_clock()
}

/// Sample `n` of a track: a recognizable ramp per track.
pub fn sample(track: u16, n: u64) -> i16 {
    ((n as i64 * 7 + i64::from(track) * 1000) % 30_000) as i16
}

/// Records `[from_ms, to_ms)` of track audio in 20 ms frames with explicit capture times.
pub fn speak(s: &Session, track: u16, from_ms: u64, to_ms: u64) {
    let mut t = from_ms;
    while t < to_ms {
        let first = t * 16; // samples at 16 kHz
        let frame: Vec<i16> = (first..first + 320).map(|n| sample(track, n)).collect();
        s.at(t * MS).audio(track, &frame);
        t += 20;
    }
}

/// One user turn and one agent answer, with a 2 s gap of user silence.
pub fn script(s: &Session) {
    s.at(0).turn_start(1, Speaker::User);
    speak(s, 1, 0, 1_000);
    s.at(1_000 * MS)
        .transcript(Speaker::User, "book a table for two", true);
    let mut llm = s.at(1_050 * MS).stage(1, Stage::Llm);
    llm.first_token_at(1_350 * MS);
    llm.end_at(1_600 * MS);
    speak(s, 2, 1_200, 2_000);
    let mut attrs = Attributes::new();
    attrs.insert("old_state".into(), "thinking".into());
    attrs.insert("new_state".into(), "speaking".into());
    s.at(1_200 * MS).event("agent_state_changed", attrs);
    s.at(1_200 * MS)
        .transcript(Speaker::Agent, "Sure, for what time?", true);
    s.at(2_000 * MS).turn_end(1);
    // the user is silent until 4 s: no frames at all in between
    speak(s, 1, 4_000, 4_500);
    s.at(4_500 * MS).end("user_hangup", Some("resolved"));
}

pub struct ReadBack {
    pub archive: Archive,
    pub records: Vec<TimedRecord>,
}

pub fn read_back(bytes: &[u8]) -> ReadBack {
    let mut c = Cursor::new(bytes);
    let archive = calltape_format::open(&mut c).expect("archive opens");
    let mut records = Vec::new();
    for e in &archive.index {
        records.extend(read_chunk(&mut c, e).expect("chunk decodes").records);
    }
    ReadBack { archive, records }
}

impl ReadBack {
    /// Track timeline: sample index → value, from every audio record of `track`.
    pub fn timeline(&self, track: u16) -> BTreeMap<u64, i16> {
        let mut m = BTreeMap::new();
        for r in &self.records {
            if let Record::Audio(a) = &r.record {
                if a.track == track {
                    for (i, &x) in a.samples.iter().enumerate() {
                        assert!(
                            m.insert(a.first_sample + i as u64, x).is_none(),
                            "overlapping audio at sample {}",
                            a.first_sample + i as u64
                        );
                    }
                }
            }
        }
        m
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.records
            .iter()
            .map(|r| calltape_format::kind_name(r.record.kind()))
            .collect()
    }
}

/// Asserts the archive holds exactly what [`script`] recorded, sample-exact, gaps kept.
pub fn assert_scripted_call(rb: &ReadBack, id: &str) {
    let h = rb.archive.header();
    assert_eq!(h.session_id, id);
    assert_eq!(h.started_at, "2026-11-21T10:00:00.000Z");
    assert_eq!(h.agent.name, "front-desk");
    assert_eq!(h.tracks.len(), 2);
    let user = rb.timeline(1);
    // 0..1 s and 4..4.5 s: 16 000 + 8 000 samples, each where its capture time says
    assert_eq!(user.len(), 24_000);
    for (&n, &x) in &user {
        assert!(
            n < 16_000 || (64_000..72_000).contains(&n),
            "user sample {n} misplaced"
        );
        assert_eq!(x, sample(1, n), "user sample {n}");
    }
    assert!(
        !user.contains_key(&16_000) && user.contains_key(&64_000),
        "the 3 s gap is kept"
    );
    let agent = rb.timeline(2);
    assert_eq!(agent.len(), 12_800);
    assert_eq!(agent.keys().next(), Some(&19_200));
    for (&n, &x) in &agent {
        assert_eq!(x, sample(2, n), "agent sample {n}");
    }
    let kinds = rb.kinds();
    for k in [
        "turn_start",
        "transcript",
        "stage_timing",
        "event",
        "turn_end",
        "session_end",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    let llm = rb
        .records
        .iter()
        .find_map(|r| match &r.record {
            Record::StageTiming(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (llm.start_ns, llm.end_ns, llm.ttft_ns),
        (1_050 * MS, 1_600 * MS, Some(300 * MS))
    );
    let s = &rb.archive.summary;
    assert_eq!(s.totals.end_reason.as_deref(), Some("user_hangup"));
    assert!(s.totals.dropped.is_empty(), "{:?}", s.totals.dropped);
    assert!(!rb
        .records
        .iter()
        .any(|r| matches!(&r.record, Record::Event(e) if e.name == "audio_drift_corrected")));
}

//! The summary places records by the rules of `calltape_format::call` (SPEC §7, §9) whatever
//! order they were written in, and keeps the same answer a reader of the records gets.

mod common;

use calltape_format::call::TurnTimeline;
use calltape_format::summary::SummaryBuilder;
use calltape_format::*;

const MS: u64 = 1_000_000;

fn turn_start(turn: u32) -> Record {
    Record::TurnStart(TurnStart {
        turn,
        speaker: Speaker::User,
        attributes: Default::default(),
    })
}

fn event(name: &str) -> Record {
    Record::Event(Event {
        turn: None,
        name: name.into(),
        attributes: Default::default(),
    })
}

fn error_log() -> Record {
    Record::Log(LogLine {
        turn: None,
        level: "ERROR".into(),
        target: "agent".into(),
        message: "boom".into(),
        fields: Default::default(),
    })
}

#[test]
fn loose_records_go_to_the_turn_they_fall_in_whatever_the_file_order() {
    // file order differs from time order: turn 2's start is written after an error that
    // falls in it, and an interruption that falls in turn 1 is written after turn 2 started
    let written = vec![
        TimedRecord::new(0, turn_start(1)),
        TimedRecord::new(5_000 * MS, event("error")),
        TimedRecord::new(4_000 * MS, turn_start(2)),
        TimedRecord::new(3_000 * MS, event("interruption")),
        TimedRecord::new(6_000 * MS, error_log()),
        TimedRecord::new(100 * MS, event("speech_created")),
    ];
    let mut b = SummaryBuilder::new(common::header(vec![]));
    for r in &written {
        b.observe(r);
    }
    let s = b.build();
    let t1 = &s.turns[0];
    let t2 = &s.turns[1];
    assert_eq!((t1.turn, t1.errors, t1.interrupted), (1, 0, true));
    assert_eq!((t2.turn, t2.errors, t2.interrupted), (2, 2, false));
    assert_eq!((s.totals.errors, s.totals.interruptions), (2, 1));

    // a reader placing the same records with the timeline agrees
    let timeline = TurnTimeline::of(&s);
    let placed: Vec<Option<u32>> = written.iter().map(|r| timeline.turn_of(r)).collect();
    assert_eq!(
        placed,
        vec![Some(1), Some(2), Some(2), Some(1), Some(2), Some(1)]
    );
}

#[test]
fn records_before_the_first_turn_count_only_in_the_totals() {
    let mut b = SummaryBuilder::new(common::header(vec![]));
    b.observe(&TimedRecord::new(0, event("error")));
    b.observe(&TimedRecord::new(MS, turn_start(1)));
    let s = b.build();
    assert_eq!(s.turns[0].errors, 0);
    assert_eq!(s.totals.errors, 1);
}

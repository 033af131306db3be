//! Turn membership and turn ends (SPEC.md §7 "Turn membership").
//!
//! A record that names a turn belongs to it. A record that names none belongs to the turn
//! with the latest start at or before the record's time (ties: the higher turn id), whatever
//! order the records were written in; a record before the first turn's start belongs to no
//! turn. A turn's start is the time of its `turn_start` (the earliest, if repeated), else of
//! the first record naming it.

use crate::model::{TimedRecord, TurnId};
use crate::summary::Summary;

/// The turns' starts on the session clock, to place records that name no turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnTimeline {
    /// (start, turn), ascending.
    starts: Vec<(u64, TurnId)>,
}

impl TurnTimeline {
    /// From (turn, start) pairs in any order.
    pub fn new(starts: impl IntoIterator<Item = (TurnId, u64)>) -> Self {
        let mut starts: Vec<(u64, TurnId)> = starts.into_iter().map(|(t, s)| (s, t)).collect();
        starts.sort_unstable();
        TurnTimeline { starts }
    }

    /// The timeline of a summary's turns.
    pub fn of(summary: &Summary) -> Self {
        Self::new(summary.turns.iter().map(|t| (t.turn, t.start_ns)))
    }

    /// The turn a moment falls in: the latest started at or before `time_ns`.
    pub fn turn_at(&self, time_ns: u64) -> Option<TurnId> {
        match self.starts.partition_point(|&(s, _)| s <= time_ns) {
            0 => None,
            n => Some(self.starts[n - 1].1),
        }
    }

    /// The turn a record belongs to.
    pub fn turn_of(&self, rec: &TimedRecord) -> Option<TurnId> {
        rec.record.turn().or_else(|| self.turn_at(rec.time_ns))
    }
}

/// When the turn at `index` of the summary ends: its `turn_end`, else the next turn's start,
/// else the end of the call; never before its start.
pub fn turn_end_ns(summary: &Summary, index: usize) -> u64 {
    let Some(t) = summary.turns.get(index) else {
        return summary.duration_ns;
    };
    t.end_ns
        .or_else(|| summary.turns.get(index + 1).map(|n| n.start_ns))
        .unwrap_or(summary.duration_ns)
        .max(t.start_ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Record};

    fn loose(t: u64) -> TimedRecord {
        TimedRecord::new(
            t,
            Record::Event(Event {
                turn: None,
                name: "error".into(),
                attributes: Default::default(),
            }),
        )
    }

    #[test]
    fn latest_start_at_or_before_wins() {
        // written out of order: turn 2 before turn 1
        let tl = TurnTimeline::new([(2, 5_000), (1, 1_000), (3, 5_000)]);
        assert_eq!(tl.turn_of(&loose(999)), None);
        assert_eq!(tl.turn_of(&loose(1_000)), Some(1));
        assert_eq!(tl.turn_of(&loose(4_999)), Some(1));
        assert_eq!(
            tl.turn_of(&loose(5_000)),
            Some(3),
            "ties go to the higher turn id"
        );
        let named = TimedRecord::new(
            9_000,
            Record::Event(Event {
                turn: Some(1),
                name: "error".into(),
                attributes: Default::default(),
            }),
        );
        assert_eq!(tl.turn_of(&named), Some(1), "a named turn wins over time");
    }
}

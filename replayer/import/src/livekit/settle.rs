//! What a live recorder may write of a call whose report is still growing.
//!
//! The live recorder of the Python package (`calltape.livekit`) maps the session's report
//! so far each time a user turn starts, and writes the records of the turns that are over;
//! when the session closes it maps the whole report and writes the rest. So a crash loses
//! at most the turn in progress, and every record is written once, by the same mapping an
//! import uses.
//!
//! A turn is over when a later turn has started and none of its tool calls still waits for
//! its output; the records before the first turn go out with the first turn that is over.
//! The records that describe the whole report (the `livekit_report` event, usage, the
//! session end) and the mapping's warnings go out at the close only.

use calltape_format::{Record, TimedRecord, TurnId};

use crate::ImportedCall;

/// How far a live recording has written: every record of turns `1..=done_turns`, and the
/// records in no turn that lie before `horizon_ns`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub done_turns: TurnId,
    pub horizon_ns: u64,
}

/// The records of `call` (the whole report mapped so far) not written yet at `from`, and the
/// progress after writing them. With `last` (the session closed) everything left goes out,
/// the mapping's warnings as `import_warning` events included.
pub fn settled_records(
    call: &ImportedCall,
    from: Progress,
    last: bool,
) -> (Vec<TimedRecord>, Progress) {
    let starts: Vec<(TurnId, u64)> = call
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::TurnStart(t) => Some((t.turn, r.time_ns)),
            _ => None,
        })
        .collect();
    let open_from = if last {
        None
    } else {
        let latest = starts.iter().map(|s| s.0).max();
        let waiting = call
            .records
            .iter()
            .filter_map(|r| match &r.record {
                Record::ToolCall(c) if c.attributes.contains_key("no_output") => c.turn,
                _ => None,
            })
            .min();
        [latest, waiting].into_iter().flatten().min()
    };
    let (done_turns, horizon_ns) = match open_from {
        None if last => (TurnId::MAX, u64::MAX),
        None => (from.done_turns, from.horizon_ns),
        Some(open) => {
            let start = starts
                .iter()
                .find(|s| s.0 == open)
                .map_or(from.horizon_ns, |s| s.1);
            (
                from.done_turns.max(open.saturating_sub(1)),
                from.horizon_ns.max(start),
            )
        }
    };
    let whole_report = |r: &Record| match r {
        Record::Usage(_) | Record::SessionEnd(_) => true,
        Record::Event(e) => e.name == "livekit_report",
        _ => false,
    };
    let mut out: Vec<TimedRecord> = call
        .records
        .iter()
        .filter(|r| match r.record.turn() {
            _ if whole_report(&r.record) => last,
            Some(t) => t > from.done_turns && t <= done_turns,
            None => r.time_ns >= from.horizon_ns && (last || r.time_ns < horizon_ns),
        })
        .cloned()
        .collect();
    if last {
        out.extend(call.warnings.iter().map(crate::ImportWarning::to_record));
    }
    crate::archive::sort_records(&mut out);
    let to = if last {
        from
    } else {
        Progress {
            done_turns,
            horizon_ns,
        }
    };
    (out, to)
}

//! Turning calls into other formats and into what the CLI prints: WAV audio, transcripts
//! (text, JSON, SRT, WebVTT), Perfetto traces, OTLP spans; plus the plain-text tables,
//! units and progress bars the non-TUI commands share.

pub mod otlp;
pub mod perfetto;
pub mod progress;
pub mod table;
pub mod transcript;
pub mod units;
pub mod wav;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

/// The turn each record belongs to: its own `turn`, else the turn most recently started
/// (the rule the summary uses). `records` must be in file/time order.
pub fn turns_of(records: &[calltape_format::TimedRecord]) -> Vec<Option<u32>> {
    let mut current = None;
    records
        .iter()
        .map(|r| {
            if let calltape_format::Record::TurnStart(t) = &r.record {
                current = Some(t.turn);
            }
            r.record.turn().or(current)
        })
        .collect()
}

/// When a turn ends, for drawing: its `turn_end`, else the next turn's start, else the call end.
pub fn turn_end_ns(summary: &calltape_format::Summary, index: usize) -> u64 {
    let t = &summary.turns[index];
    t.end_ns
        .or_else(|| summary.turns.get(index + 1).map(|n| n.start_ns))
        .unwrap_or(summary.duration_ns)
        .max(t.start_ns)
}

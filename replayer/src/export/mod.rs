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

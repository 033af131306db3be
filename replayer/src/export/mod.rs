//! Turning calls into other formats and into what the CLI prints: WAV audio, transcripts
//! (text, JSON, SRT, WebVTT), Perfetto traces, OTLP spans; plus the plain-text tables,
//! units and progress bars the non-TUI commands share.

pub mod audio_gap;
pub mod otlp;
pub mod perfetto;
pub mod progress;
pub mod table;
pub mod transcript;
pub mod units;
pub mod wav;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    let mut s = serde_json::to_string_pretty(value).expect("JSON values serialize");
    s.push('\n');
    emit(&s);
}

/// Writes `text` to stdout. A closed pipe (`calltape ls | head`) ends the process quietly
/// instead of panicking.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("calltape: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` to stdout through [`emit`].
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::export::emit(&format!($($t)*)) };
}

/// `println!` to stdout through [`emit`].
#[macro_export]
macro_rules! outln {
    () => { $crate::export::emit("\n") };
    ($($t:tt)*) => { $crate::export::emit(&format!("{}\n", format_args!($($t)*))) };
}

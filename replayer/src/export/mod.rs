//! Turning calls into other formats and into what the CLI prints: WAV audio, transcripts
//! (text, JSON, SRT, WebVTT), Perfetto traces, OTLP spans; plus the plain-text tables,
//! units and progress bars the non-TUI commands share.

pub use calltape_read::{progress, units};

pub mod audio_gap;
pub mod json_diff;
pub mod otlp;
pub mod perfetto;
pub mod table;
pub mod transcript;
pub mod wav;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> crate::error::Result<()> {
    let mut s = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::AppError::Other(format!("cannot print JSON: {e}")))?;
    s.push('\n');
    write_stdout(&calltape_read::safe_text::json(&s))
}

/// Writes `text` to stdout, control characters and escape sequences made visible
/// ([`safe_text::terminal`](calltape_read::safe_text::terminal)): every command's text output
/// comes through here, and much of it is archive text. A closed pipe (`calltape ls | head`)
/// is [`AppError::StdoutClosed`](crate::error::AppError::StdoutClosed), which the binary ends
/// on quietly with success.
pub fn emit(text: &str) -> crate::error::Result<()> {
    write_stdout(&calltape_read::safe_text::terminal(text))
}

fn write_stdout(text: &str) -> crate::error::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => crate::error::AppError::StdoutClosed,
            _ => crate::error::AppError::Io {
                what: "cannot write to stdout".into(),
                source: e,
            },
        })
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

/// `eprintln!` with the text made safe for a terminal ([`safe_text::terminal`]): errors and
/// notes quote archive text (a session id, a record's field) as often as stdout does.
///
/// [`safe_text::terminal`]: calltape_read::safe_text::terminal
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {
        eprintln!("{}", $crate::safe_text::terminal(&format!($($t)*)))
    };
}

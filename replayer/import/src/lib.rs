//! Importers for calls recorded by other voice-agent frameworks (LiveKit Agents session
//! reports, Pipecat Whisker recordings and Tail session files): each turns its input into
//! ordinary calltape records, and [`archive`] writes them with the call's audio into a normal
//! archive.
//!
//! Nothing in the input is dropped silently: what has no calltape field is kept as record
//! attributes, header tags or events, and anything missing or odd becomes an
//! [`ImportWarning`] (printed by the CLI and stored as an `import_warning` event).

pub mod archive;
pub mod audio;
pub mod clock;
pub mod livekit;
pub mod pipecat;
pub mod warning;

use std::path::PathBuf;

use calltape_format::{Attributes, Header, Record, TimedRecord};
use thiserror::Error;

pub use archive::{write_archive, ImportOutcome};
pub use warning::{ImportWarning, Warnings};

/// A call read from a foreign recording, ready to be written: header (tracks are added from
/// the audio), control records in any order, and what was odd about the input.
#[derive(Debug, Clone)]
pub struct ImportedCall {
    pub header: Header,
    pub records: Vec<TimedRecord>,
    pub warnings: Vec<ImportWarning>,
    /// Session time (ns, may be negative) of sample 0 of the call's audio recording.
    pub audio_start_ns: i64,
    /// An audio recording the input names (e.g. LiveKit's `audio_recording_path`).
    pub audio_hint: Option<PathBuf>,
}

impl ImportedCall {
    /// Turns in the call, by id.
    pub fn turn_count(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.record, Record::TurnStart(_)))
            .count()
    }
}

/// Why an import failed outright (odd content only warns; this is for unreadable input).
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a {what}: {reason}")]
    Input {
        path: String,
        what: &'static str,
        reason: String,
    },
    #[error("audio {path}: {reason}")]
    Audio { path: String, reason: String },
    #[error("writing the archive: {0}")]
    Write(#[from] calltape_format::FormatError),
}

/// Keeps `session_id` within what recorders allow: `[A-Za-z0-9._:-]`, at most 128 bytes.
pub fn sanitize_session_id(raw: &str) -> String {
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    id.truncate(128);
    if id.is_empty() {
        "imported".into()
    } else {
        id
    }
}

/// `value` as an attributes object (`{}` for non-objects).
pub(crate) fn as_attributes(value: serde_json::Value) -> Attributes {
    match value {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => Attributes::new(),
        other => {
            let mut m = Attributes::new();
            m.insert("value".into(), other);
            m
        }
    }
}

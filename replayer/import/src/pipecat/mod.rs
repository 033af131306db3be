//! Pipecat calls as calltape records. Every Pipecat source becomes a time-ordered list of
//! [`FrameEvent`]s that the one [`mapping`] turns into records: a Whisker recording
//! ([`whisker`]), and live, the `calltape.pipecat.CalltapeObserver` of the Python package
//! (which feeds the same mapping through the `_calltape` extension).

pub mod audio_alignment;
pub mod event;
pub mod mapping;
pub mod msgpack;
pub mod whisker;

use std::path::Path;

use calltape_format::{AgentInfo, Header};
use serde_json::{json, Value};

pub use event::FrameEvent;
pub use mapping::{Mapped, Mapping};

use super::clock::rfc3339;
use super::{sanitize_session_id, ImportError, ImportedCall};

/// Maps `frames` (session time 0 at unix `t0_unix_ns`) and closes what is open at `end_ns`.
pub fn map_frames(frames: &[FrameEvent], t0_unix_ns: i64, end_ns: i64) -> Mapped {
    let mut m = Mapping::new(t0_unix_ns);
    for f in frames {
        m.feed(f);
    }
    m.finish(end_ns)
}

/// Reads a Pipecat Whisker recording (`.whisk`); with `audio` (the call's recording from
/// Pipecat's `AudioBufferProcessor`), places it on the session clock and measures how well it
/// lines up ([`audio_alignment`]).
pub fn import_file(path: &Path, audio: Option<&Path>) -> Result<ImportedCall, ImportError> {
    let shown = path.display().to_string();
    let session = whisker::read_file(path).map_err(|reason| ImportError::Input {
        path: shown.clone(),
        what: "Pipecat Whisker recording (.whisk)",
        reason,
    })?;
    let end_ns = session.last_unix_ns - session.t0_unix_ns;
    let mapped = map_frames(&session.frames, session.t0_unix_ns, end_ns);
    let mut tags = mapped.tags;
    tags.insert("imported_from".into(), json!("pipecat-whisker"));
    if let Some(v) = &session.whisker_version {
        tags.insert("whisker_version".into(), json!(v));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut found = session.warnings;
    let mut records = mapped.records;
    let audio_start_ns = session.recording_started_ns.unwrap_or(0);
    if let Some(p) = audio {
        if session.recording_started_ns.is_none() {
            found.general(
                "audio_start_unknown",
                "the recording shows no AudioBufferProcessor starting: the audio's first sample \
                 is placed at session time 0 (use --audio-offset to move it)",
                Value::Null,
            );
        }
        let mut notes = Vec::new();
        audio_alignment::measure(
            crate::audio::open(p)?,
            audio_start_ns,
            &records,
            &mut notes,
            &mut found,
        )?;
        records.extend(notes);
    }
    let mut warnings = found.into_vec();
    warnings.extend(mapped.warnings.into_vec());
    let mut call = ImportedCall {
        header: Header {
            session_id: sanitize_session_id(&stem),
            started_at: rfc3339(session.t0_unix_ns),
            started_at_unix_ns: session.t0_unix_ns,
            agent: AgentInfo {
                name: "pipecat".into(),
                version: session.pipecat_version.unwrap_or_default(),
            },
            environment: None,
            tags,
            tracks: Vec::new(),
        },
        records,
        warnings,
        audio_start_ns,
        audio_hint: None,
    };
    if call.turn_count() == 0 {
        let mut w = crate::Warnings::default();
        w.general(
            "no_turns",
            "the recording holds no StartFrame or user speech: no turns",
            Value::Null,
        );
        call.warnings.extend(w.into_vec());
    }
    Ok(call)
}

//! Pipecat calls as calltape records. Every Pipecat source becomes a time-ordered list of
//! [`FrameEvent`]s that the one [`mapping`] turns into records: a Whisker recording
//! ([`whisker`]), a Tail session file ([`tail`]), and live, the
//! `calltape.pipecat.CalltapeObserver` of the Python package (which feeds the same mapping
//! through the `_calltape` extension).

pub mod audio_alignment;
pub mod event;
pub mod mapping;
pub mod msgpack;
pub mod tail;
pub mod whisker;

use std::path::Path;

use calltape_format::{AgentInfo, Header, TimedRecord};
use serde_json::{json, Map, Value};

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

/// A Pipecat call read from a file, ready for the mapping.
struct Source {
    what: &'static str,
    frames: Vec<FrameEvent>,
    t0_unix_ns: i64,
    last_unix_ns: i64,
    pipecat_version: Option<String>,
    tags: Map<String, Value>,
    /// Records of the file that need no mapping (Tail's log lines).
    records: Vec<TimedRecord>,
    recording_started_ns: Option<i64>,
    tail_turns: Option<Vec<(u64, bool)>>,
    warnings: crate::Warnings,
}

/// Reads a Pipecat Whisker recording (`.whisk`, MessagePack) or a Tail session file (JSON
/// Lines), told apart by their first byte; with `audio` (the call's recording from Pipecat's
/// `AudioBufferProcessor`), places it on the session clock and measures how well it lines up
/// ([`audio_alignment`]).
pub fn import_file(path: &Path, audio: Option<&Path>) -> Result<ImportedCall, ImportError> {
    let shown = path.display().to_string();
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|source| ImportError::Io {
            path: shown.clone(),
            source,
        })?;
    let json = head[..n]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let source = if json {
        let s = tail::read_file(path).map_err(|reason| ImportError::Input {
            path: shown.clone(),
            what: "Pipecat Tail session file (JSON Lines)",
            reason,
        })?;
        let mut tags = Map::new();
        tags.insert("imported_from".into(), json!("pipecat-tail"));
        Source {
            what: "Tail session",
            frames: s.frames,
            t0_unix_ns: s.t0_unix_ns,
            last_unix_ns: s.last_unix_ns,
            pipecat_version: s.pipecat_version,
            tags,
            records: s.logs,
            recording_started_ns: None,
            tail_turns: Some(s.tail_turns),
            warnings: s.warnings,
        }
    } else {
        let s = whisker::read_file(path).map_err(|reason| ImportError::Input {
            path: shown.clone(),
            what: "Pipecat Whisker recording (.whisk)",
            reason,
        })?;
        let mut tags = Map::new();
        tags.insert("imported_from".into(), json!("pipecat-whisker"));
        if let Some(v) = &s.whisker_version {
            tags.insert("whisker_version".into(), json!(v));
        }
        Source {
            what: "Whisker recording",
            frames: s.frames,
            t0_unix_ns: s.t0_unix_ns,
            last_unix_ns: s.last_unix_ns,
            pipecat_version: s.pipecat_version,
            tags,
            records: Vec::new(),
            recording_started_ns: s.recording_started_ns,
            tail_turns: None,
            warnings: s.warnings,
        }
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    build(source, &stem, audio)
}

fn build(source: Source, stem: &str, audio: Option<&Path>) -> Result<ImportedCall, ImportError> {
    let end_ns = source.last_unix_ns - source.t0_unix_ns;
    let mapped = map_frames(&source.frames, source.t0_unix_ns, end_ns);
    let mut tags = source.tags;
    tags.extend(mapped.tags);
    let mut found = source.warnings;
    let mut records = mapped.records;
    records.extend(source.records);
    if let Some(tail_turns) = &source.tail_turns {
        let theirs: Vec<u64> = tail_turns.iter().map(|t| t.0).collect();
        let ours: Vec<u64> = mapped.turns.iter().map(|t| u64::from(t.0)).collect();
        if !theirs.is_empty() && theirs != ours {
            found.general(
                "turns_differ",
                format!(
                    "Tail numbered the turns {theirs:?}, the mapping {ours:?}: turn numbers may \
                     not match what Tail showed"
                ),
                json!({"tail": theirs, "mapping": ours}),
            );
        }
    }
    let audio_start_ns = source.recording_started_ns.unwrap_or(0);
    if let Some(p) = audio {
        if source.recording_started_ns.is_none() {
            found.general(
                "audio_start_unknown",
                format!(
                    "the {} shows no AudioBufferProcessor starting: the audio's first sample \
                     is placed at session time 0 (use --audio-offset to move it)",
                    source.what
                ),
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
            session_id: sanitize_session_id(stem),
            started_at: rfc3339(source.t0_unix_ns),
            started_at_unix_ns: source.t0_unix_ns,
            agent: AgentInfo {
                name: "pipecat".into(),
                version: source.pipecat_version.unwrap_or_default(),
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
            format!(
                "the {} holds no pipeline start or user speech: no turns",
                source.what
            ),
            Value::Null,
        );
        call.warnings.extend(w.into_vec());
    }
    Ok(call)
}

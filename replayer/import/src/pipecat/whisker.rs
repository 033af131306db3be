//! Pipecat Whisker recordings (`WhiskerFile`, `.whisk`): a stream of MessagePack records, the
//! first a `snapshot` (`timestamp` unix s, `server.pipecat` version, workers), then one
//! `frame` record per frame push or process (`name` = `Class#n`, `from` = processor,
//! `action` = `push`|`process`, `direction`, `timestamp` unix s, `payload` = the frame's
//! fields), plus `worker_added` and `bus_message` records. A frame is recorded at every hop;
//! its first push is the moment it happened, so later pushes and the `process` records are
//! skipped, except for `TTSTextFrame`: the spoken text is taken when the output transport
//! passes it on, which it does as the audio plays (as Pipecat's RTVI observer does). Audio and
//! speaking-heartbeat frames are left out by Whisker's default filter.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::event::{class_of, FrameEvent};
use super::msgpack::Reader;
use crate::clock::seconds_to_ns;
use crate::Warnings;

/// What Pipecat's output transports are named (`WebsocketServerOutputTransport#0`, …).
const OUTPUT_TRANSPORT: &str = "OutputTransport";

/// Largest recording read (bytes): a day-long call is far below.
const MAX_FILE_BYTES: u64 = 4 << 30;

/// What a Whisker recording holds for the mapping.
#[derive(Debug)]
pub struct WhiskerSession {
    /// Unix ns of session time 0: the snapshot's time (else the first record's).
    pub t0_unix_ns: i64,
    pub pipecat_version: Option<String>,
    pub whisker_version: Option<String>,
    /// First pushes of frames, in time order.
    pub frames: Vec<FrameEvent>,
    /// Unix ns of the last record.
    pub last_unix_ns: i64,
    /// Session ns at which Pipecat's `AudioBufferProcessor` started recording, if seen.
    pub recording_started_ns: Option<i64>,
    pub warnings: Warnings,
}

/// Reads a `.whisk` file.
pub fn read_file(path: &Path) -> Result<WhiskerSession, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{len} bytes is more than the {MAX_FILE_BYTES} a Whisker recording is read up to"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    read_bytes(&bytes)
}

/// Reads a Whisker recording held in memory.
pub fn read_bytes(bytes: &[u8]) -> Result<WhiskerSession, String> {
    let mut reader = Reader::new(bytes);
    let mut warnings = Warnings::default();
    let mut records: Vec<(i64, Map<String, Value>)> = Vec::new();
    while !reader.at_end() {
        let at = reader.offset();
        match reader.value() {
            Ok(Value::Object(m)) => {
                let Some(ts) = m.get("timestamp").and_then(Value::as_f64) else {
                    continue;
                };
                records.push((seconds_to_ns(ts), m));
            }
            Ok(_) => {}
            Err(e) if records.is_empty() => {
                return Err(format!(
                    "byte {}: {} (is this a Whisker .whisk file?)",
                    e.offset, e.reason
                ))
            }
            Err(e) => {
                warnings.general(
                    "whisker_truncated",
                    format!(
                        "the recording ends in a damaged record at byte {at} ({}): the {} \
                         records before it were imported",
                        e.reason,
                        records.len()
                    ),
                    Value::Null,
                );
                break;
            }
        }
    }
    let snapshot = records
        .iter()
        .find(|(_, m)| m.get("type").and_then(Value::as_str) == Some("snapshot"));
    let Some(t0) = snapshot.or(records.first()).map(|r| r.0) else {
        return Err("no records with a timestamp".into());
    };
    let server = snapshot
        .and_then(|(_, m)| m.get("server"))
        .and_then(Value::as_object);
    let version = |k: &str| {
        server
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    if snapshot.is_none() {
        warnings.general(
            "whisker_no_snapshot",
            "no snapshot record: session time 0 is the first record's time",
            Value::Null,
        );
    }
    let last_unix_ns = records.iter().map(|r| r.0).max().unwrap_or(t0);
    let pushes: Vec<(i64, &str, &str, &Map<String, Value>)> = records
        .iter()
        .filter(|(_, m)| {
            m.get("type").and_then(Value::as_str) == Some("frame")
                && m.get("action").and_then(Value::as_str) == Some("push")
        })
        .filter_map(|(ts, m)| {
            let name = m.get("name").and_then(Value::as_str)?;
            let source = m.get("from").and_then(Value::as_str).unwrap_or_default();
            Some((*ts, name, source, m))
        })
        .collect();
    // spoken text counts when the output transport passes it on (as it plays)
    let played = |name: &str, source: &str| {
        class_of(name) == "TTSTextFrame" && source.contains(OUTPUT_TRANSPORT)
    };
    let text_played = pushes.iter().any(|p| played(p.1, p.2));
    // the AudioBufferProcessor starts recording at its start frame, or at the StartFrame it
    // passes on (auto_start_recording); its file begins with the first audio it gets after
    // that (it fills no silence before), which flows once a client is connected
    let recording_started = pushes
        .iter()
        .find(|p| class_of(p.1) == "AudioBufferStartRecordingFrame")
        .or_else(|| {
            pushes
                .iter()
                .find(|p| class_of(p.1) == "StartFrame" && p.2.starts_with("AudioBufferProcessor"))
        })
        .map(|p| p.0);
    let connected = pushes
        .iter()
        .find(|p| class_of(p.1) == "ClientConnectedFrame")
        .map(|p| p.0);
    // (a recording that began after the StartFrame went by still has the client connecting)
    let recording_started_ns = match (recording_started, connected) {
        (Some(r), Some(c)) => Some(r.max(c) - t0),
        (Some(x), None) | (None, Some(x)) => Some(x - t0),
        (None, None) => None,
    };
    let mut seen: HashSet<&str> = HashSet::new();
    let mut frames = Vec::new();
    for &(ts, name, source, m) in &pushes {
        if text_played && class_of(name) == "TTSTextFrame" && !played(name, source) {
            continue;
        }
        if !seen.insert(name) {
            continue;
        }
        let fields = match m.get("payload") {
            Some(Value::Object(p)) => p.clone(),
            _ => Map::new(),
        };
        frames.push(FrameEvent::new(ts - t0, class_of(name), source, fields));
    }
    frames.sort_by_key(|f| f.t_ns);
    Ok(WhiskerSession {
        t0_unix_ns: t0,
        pipecat_version: version("pipecat"),
        whisker_version: version("whisker"),
        frames,
        last_unix_ns,
        recording_started_ns,
        warnings,
    })
}

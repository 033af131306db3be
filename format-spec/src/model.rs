//! The version-neutral record model: the archive header and every record a call can hold.
//!
//! Times are nanoseconds since the session start on one monotonic clock (`*_ns: u64`)
//! unless a field says otherwise. JSON payloads ignore unknown fields, so older readers
//! open files from newer writers.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Free-form key/value attributes kept beside the typed fields.
pub type Attributes = Map<String, Value>;

/// Turn ids start at 1; 0 is never a turn (the chunk index uses it for "no turn").
pub type TurnId = u32;

/// The archive header: who recorded the call, when, and which audio tracks it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub session_id: String,
    /// Wall-clock start of the session, RFC 3339 in UTC (e.g. `2026-11-21T10:00:00.000Z`).
    pub started_at: String,
    /// The same instant as unix nanoseconds. Record time 0 is this instant.
    pub started_at_unix_ns: i64,
    #[serde(default)]
    pub agent: AgentInfo,
    /// Deployment environment, e.g. `production`, `staging`, `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub tags: Attributes,
    #[serde(default)]
    pub tracks: Vec<Track>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// One audio track. Its lane number in the archive equals `id` (ids start at 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub id: u16,
    pub role: Speaker,
    /// Samples per second per channel.
    pub sample_rate: u32,
    pub channels: u8,
    pub codec: AudioCodec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// How a track's audio chunks are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioCodec {
    /// Codec id 1: 16-bit PCM, order-2 fixed predictor, zigzag, byte planes, zstd.
    Pcm16Lpc2,
    /// Chunk encoding 2 (format 1.1): 16-bit PCM, fixed predictor of order 0..=4 per block,
    /// Rice-coded residuals, zstd (SPEC §4.3).
    Pcm16Rice,
    /// Chunk encoding 3 (format 1.2): 16-bit PCM, per block a constant, a fixed predictor or
    /// a quantized LPC of order up to 32, Rice-coded residuals, G.711 audio coded in grid
    /// steps (SPEC §4.4).
    Pcm16Qlpc,
    #[serde(other)]
    Unknown,
}

/// Who is speaking or acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    User,
    Agent,
    System,
    #[serde(other)]
    Other,
}

impl fmt::Display for Speaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Speaker::User => "user",
            Speaker::Agent => "agent",
            Speaker::System => "system",
            Speaker::Other => "other",
        })
    }
}

/// A pipeline stage whose timing is recorded. Serialized as a lowercase string;
/// any other string is a custom stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Stage {
    /// Voice activity: start = user started speaking, end = user stopped speaking.
    Vad,
    /// End-of-utterance detection: start = end of user speech, end = turn committed.
    Eou,
    /// Speech-to-text: start = end of user speech (or stream start), end = final transcript.
    Stt,
    /// LLM request: start = request sent, end = last token; `ttft_ns` attribute.
    Llm,
    /// Text-to-speech request: start = request sent, end = last audio; `ttfb_ns` attribute.
    Tts,
    /// A tool (function) call executed by the agent.
    Tool,
    /// Agent audio playback: start = first audible sample, end = last sample or cut.
    Playback,
    Custom(String),
}

impl Stage {
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Vad => "vad",
            Stage::Eou => "eou",
            Stage::Stt => "stt",
            Stage::Llm => "llm",
            Stage::Tts => "tts",
            Stage::Tool => "tool",
            Stage::Playback => "playback",
            Stage::Custom(s) => s,
        }
    }
}

impl From<String> for Stage {
    fn from(s: String) -> Self {
        match s.as_str() {
            "vad" => Stage::Vad,
            "eou" => Stage::Eou,
            "stt" => Stage::Stt,
            "llm" => Stage::Llm,
            "tts" => Stage::Tts,
            "tool" => Stage::Tool,
            "playback" => Stage::Playback,
            _ => Stage::Custom(s),
        }
    }
}

impl From<Stage> for String {
    fn from(s: Stage) -> Self {
        s.as_str().to_string()
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A turn begins. A turn is one exchange: what the user said and the agent's answer to it
/// (`speaker` = who opened it: `user` normally, `agent` for a greeting or a proactive prompt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnStart {
    pub turn: TurnId,
    pub speaker: Speaker,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// A turn ends (the agent finished or was cut off, or the exchange was abandoned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEnd {
    pub turn: TurnId,
    #[serde(default)]
    pub speaker: Option<Speaker>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// Something said, as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    #[serde(default)]
    pub turn: Option<TurnId>,
    pub speaker: Speaker,
    /// For the user: what STT heard. For the agent: what was generated to be spoken.
    pub text: String,
    /// `false` for an interim (partial) hypothesis, `true` for the final one.
    #[serde(default = "yes")]
    pub is_final: bool,
    /// STT confidence in 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// BCP 47 language tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The agent was cut off (barge-in) before it finished saying `text`.
    #[serde(default)]
    pub interrupted: bool,
    /// For an interrupted agent line: the part the caller actually heard before the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_text: Option<String>,
    /// When the speech this text covers started and ended (session ns), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

fn yes() -> bool {
    true
}

/// The measured span of one pipeline stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    #[serde(default)]
    pub turn: Option<TurnId>,
    pub stage: Stage,
    pub start_ns: u64,
    pub end_ns: u64,
    /// LLM time to first token, ns after `start_ns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ns: Option<u64>,
    /// TTS time to first audio byte, ns after `start_ns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// TTS characters synthesized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default)]
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

impl StageTiming {
    pub fn new(turn: Option<TurnId>, stage: Stage, start_ns: u64, end_ns: u64) -> Self {
        StageTiming {
            turn,
            stage,
            start_ns,
            end_ns,
            ttft_ns: None,
            ttfb_ns: None,
            prompt_tokens: None,
            completion_tokens: None,
            characters: None,
            model: None,
            provider: None,
            cancelled: false,
            attributes: Attributes::new(),
        }
    }

    /// `end_ns - start_ns`, or `None` when the end lies before the start.
    pub fn duration_ns(&self) -> Option<u64> {
        self.end_ns.checked_sub(self.start_ns)
    }
}

/// A tool (function) the agent called, with what went in and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub turn: Option<TurnId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
    #[serde(default)]
    pub output: Value,
    #[serde(default)]
    pub is_error: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// The agent's state (or part of it, named by `scope`) at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSnapshot {
    #[serde(default)]
    pub turn: Option<TurnId>,
    pub scope: String,
    pub value: Value,
}

/// A named event: state changes, interruption, handoff, error, overlapping speech…
/// Well-known names are listed in SPEC.md (`error`, `interruption`, `handoff`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub turn: Option<TurnId>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub attributes: Attributes,
}

/// A log line from the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    #[serde(default)]
    pub turn: Option<TurnId>,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    #[serde(default)]
    pub target: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    pub fields: Attributes,
}

/// Resource usage to add to the session totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub turn: Option<TurnId>,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    /// Seconds of audio sent to STT.
    #[serde(default)]
    pub stt_audio_seconds: f64,
    /// Seconds of audio produced by TTS.
    #[serde(default)]
    pub tts_audio_seconds: f64,
    /// Characters sent to TTS.
    #[serde(default)]
    pub tts_characters: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// Data the recorder had to drop (queue full, disk full…), and how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    /// What was dropped: `audio:user`, `audio:agent`, `records`, …
    pub what: String,
    pub count: u64,
    /// Unit of `count`: `samples`, `records` or `bytes`.
    pub unit: String,
    #[serde(default)]
    pub reason: String,
}

/// The session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Why it ended: `user_hangup`, `agent_hangup`, `error`, `shutdown`, …
    pub reason: String,
    /// Business outcome, free text: `resolved`, `escalated`, `abandoned`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// Audio samples of one track. `first_sample` is the index (per channel) of the first
/// sample on the track's own timeline, whose sample 0 is session time 0: sample `n` plays
/// at `n * 1e9 / sample_rate` ns. A jump in `first_sample` is silence, never collapsed.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    pub track: u16,
    pub channels: u8,
    pub first_sample: u64,
    /// Interleaved when `channels > 1`.
    pub samples: Vec<i16>,
}

impl AudioFrame {
    /// Samples per channel in this frame.
    pub fn frames(&self) -> u64 {
        (self.samples.len() / usize::from(self.channels.max(1))) as u64
    }
}

/// Parses a JSON payload that must be an object, validating all of it (unknown fields too)
/// before the typed fields are taken out, so what a reader accepts is valid JSON throughout.
pub fn parse_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("payload is not a JSON object".into());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Record kind numbers as stored on disk.
pub mod kind {
    pub const TURN_START: u16 = 1;
    pub const TURN_END: u16 = 2;
    pub const TRANSCRIPT: u16 = 3;
    pub const STAGE_TIMING: u16 = 4;
    pub const TOOL_CALL: u16 = 5;
    pub const STATE_SNAPSHOT: u16 = 6;
    pub const EVENT: u16 = 7;
    pub const LOG: u16 = 8;
    pub const USAGE: u16 = 9;
    pub const DROPPED: u16 = 10;
    pub const SESSION_END: u16 = 11;
    pub const AUDIO: u16 = 32;
}

/// One record of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    TurnStart(TurnStart),
    TurnEnd(TurnEnd),
    Transcript(Transcript),
    StageTiming(StageTiming),
    ToolCall(ToolCall),
    StateSnapshot(StateSnapshot),
    Event(Event),
    Log(LogLine),
    Usage(Usage),
    Dropped(Dropped),
    SessionEnd(SessionEnd),
    Audio(AudioFrame),
    /// A record kind this reader does not know, kept byte for byte.
    Unknown {
        kind: u16,
        payload: Vec<u8>,
    },
}

impl Record {
    pub fn kind(&self) -> u16 {
        match self {
            Record::TurnStart(_) => kind::TURN_START,
            Record::TurnEnd(_) => kind::TURN_END,
            Record::Transcript(_) => kind::TRANSCRIPT,
            Record::StageTiming(_) => kind::STAGE_TIMING,
            Record::ToolCall(_) => kind::TOOL_CALL,
            Record::StateSnapshot(_) => kind::STATE_SNAPSHOT,
            Record::Event(_) => kind::EVENT,
            Record::Log(_) => kind::LOG,
            Record::Usage(_) => kind::USAGE,
            Record::Dropped(_) => kind::DROPPED,
            Record::SessionEnd(_) => kind::SESSION_END,
            Record::Audio(_) => kind::AUDIO,
            Record::Unknown { kind, .. } => *kind,
        }
    }

    /// The stable lowercase name of the kind, as used in JSON dumps.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind())
    }

    /// The turn this record names, if any.
    pub fn turn(&self) -> Option<TurnId> {
        match self {
            Record::TurnStart(r) => Some(r.turn),
            Record::TurnEnd(r) => Some(r.turn),
            Record::Transcript(r) => r.turn,
            Record::StageTiming(r) => r.turn,
            Record::ToolCall(r) => r.turn,
            Record::StateSnapshot(r) => r.turn,
            Record::Event(r) => r.turn,
            Record::Log(r) => r.turn,
            Record::Usage(r) => r.turn,
            _ => None,
        }
    }

    /// Appends the record's JSON payload (as stored on disk) to `out`. Returns false for the
    /// binary kinds (audio, unknown), whose payloads are not JSON.
    pub fn write_json_payload(&self, out: &mut Vec<u8>) -> bool {
        fn put<T: Serialize>(out: &mut Vec<u8>, v: &T) -> bool {
            serde_json::to_writer(out, v).expect("record models always serialize");
            true
        }
        match self {
            Record::TurnStart(r) => put(out, r),
            Record::TurnEnd(r) => put(out, r),
            Record::Transcript(r) if r.confidence.is_some_and(|c| !c.is_finite()) => {
                // JSON has no NaN or infinity: an unusable confidence is no confidence
                put(
                    out,
                    &Transcript {
                        confidence: None,
                        ..r.clone()
                    },
                )
            }
            Record::Transcript(r) => put(out, r),
            Record::StageTiming(r) => put(out, r),
            Record::ToolCall(r) => put(out, r),
            Record::StateSnapshot(r) => put(out, r),
            Record::Event(r) => put(out, r),
            Record::Log(r) => put(out, r),
            Record::Usage(r)
                if !(r.stt_audio_seconds.is_finite() && r.tts_audio_seconds.is_finite()) =>
            {
                let clean = |x: f64| if x.is_finite() { x } else { 0.0 };
                put(
                    out,
                    &Usage {
                        stt_audio_seconds: clean(r.stt_audio_seconds),
                        tts_audio_seconds: clean(r.tts_audio_seconds),
                        ..r.clone()
                    },
                )
            }
            Record::Usage(r) => put(out, r),
            Record::Dropped(r) => put(out, r),
            Record::SessionEnd(r) => put(out, r),
            Record::Audio(_) | Record::Unknown { .. } => false,
        }
    }

    /// The lane this record is stored in: 0 for control records, the track id for audio.
    pub fn lane(&self) -> u16 {
        match self {
            Record::Audio(a) => a.track,
            _ => 0,
        }
    }
}

/// The lowercase name of a record kind number (`unknown` for kinds this reader lacks).
pub fn kind_name(kind: u16) -> &'static str {
    match kind {
        kind::TURN_START => "turn_start",
        kind::TURN_END => "turn_end",
        kind::TRANSCRIPT => "transcript",
        kind::STAGE_TIMING => "stage_timing",
        kind::TOOL_CALL => "tool_call",
        kind::STATE_SNAPSHOT => "state_snapshot",
        kind::EVENT => "event",
        kind::LOG => "log",
        kind::USAGE => "usage",
        kind::DROPPED => "dropped",
        kind::SESSION_END => "session_end",
        kind::AUDIO => "audio",
        _ => "unknown",
    }
}

/// A record with its time: ns since session start.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedRecord {
    pub time_ns: u64,
    pub record: Record,
}

impl TimedRecord {
    pub fn new(time_ns: u64, record: Record) -> Self {
        TimedRecord { time_ns, record }
    }
}

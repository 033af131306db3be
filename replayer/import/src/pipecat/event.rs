//! The neutral form of one Pipecat frame, as every Pipecat source delivers it to the one
//! mapping ([`super::mapping`]): the live observer (`calltape.pipecat.CalltapeObserver`), a
//! Whisker recording and a Tail session file all become a time-ordered list of these.
//!
//! The shape is Whisker's frame record reduced to what identifies a frame: its class name
//! (Whisker's `name` without the `#n` instance suffix), the processor that pushed it, when,
//! and its fields as Whisker's serializer writes them (dataclass fields, `None` left out,
//! enums by name, pydantic models dumped).

use serde_json::{Map, Value};

/// One frame push, first push only (a frame passed along by later processors is not repeated).
#[derive(Debug, Clone, PartialEq)]
pub struct FrameEvent {
    /// ns since the session's time 0 (negative when before it).
    pub t_ns: i64,
    /// The frame's class, e.g. `TranscriptionFrame`; or one of the [`PSEUDO`] names for what
    /// Pipecat reports outside frames.
    pub frame: String,
    /// Name of the processor that pushed it (`OpenAILLMService#0`); empty when unknown.
    pub source: String,
    /// The frame's fields.
    pub fields: Map<String, Value>,
}

/// What is not a frame but feeds the same mapping: the per-turn latency breakdown Pipecat's
/// `UserBotLatencyObserver` computes (its `LatencyBreakdown` model, dumped).
pub const LATENCY_BREAKDOWN: &str = "UserBotLatencyBreakdown";

/// Every pseudo frame name.
pub const PSEUDO: [&str; 1] = [LATENCY_BREAKDOWN];

impl FrameEvent {
    pub fn new(t_ns: i64, frame: &str, source: &str, fields: Map<String, Value>) -> FrameEvent {
        FrameEvent {
            t_ns,
            frame: frame.to_string(),
            source: source.to_string(),
            fields,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    pub fn f64(&self, key: &str) -> Option<f64> {
        self.fields
            .get(key)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite())
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.fields.get(key).and_then(Value::as_bool)
    }
}

/// A frame's class from Whisker's `name` (`TranscriptionFrame#12` → `TranscriptionFrame`).
pub fn class_of(name: &str) -> &str {
    name.split('#').next().unwrap_or(name)
}

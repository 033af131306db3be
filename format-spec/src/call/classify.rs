//! What a record says happened (SPEC.md §7 "What counts"): errors, tool failures,
//! interruptions and overlapping speech. Counted in the summary, marked on the timeline,
//! listed by the catalog and exported, always by these functions.

use crate::model::{Record, TimedRecord, ToolCall};

/// Where an error was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOrigin {
    /// An `error` event.
    Event,
    /// A log line of level `error`.
    Log,
}

impl ErrorOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOrigin::Event => "event",
            ErrorOrigin::Log => "log",
        }
    }
}

/// An error and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    pub origin: ErrorOrigin,
    /// Who reported it: the event's `source` attribute or the log line's target.
    pub source: Option<String>,
    pub message: String,
}

/// Something worth a mark on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mark {
    Error,
    ToolFailure,
    Interruption,
    Overlap,
}

/// The error a record reports: an `error` event or an `error`-level log line. A failed tool
/// call is not an error in this sense: it is a [`tool failure`](is_tool_failure), counted
/// apart (`tool_errors`).
pub fn error(record: &Record) -> Option<ErrorInfo> {
    match record {
        Record::Event(e) if e.name == "error" => {
            let text = |k: &str| {
                e.attributes
                    .get(k)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            Some(ErrorInfo {
                origin: ErrorOrigin::Event,
                source: text("source"),
                message: text("message")
                    .unwrap_or_else(|| serde_json::Value::Object(e.attributes.clone()).to_string()),
            })
        }
        Record::Log(l) if is_error_level(&l.level) => Some(ErrorInfo {
            origin: ErrorOrigin::Log,
            source: (!l.target.is_empty()).then(|| l.target.clone()),
            message: l.message.clone(),
        }),
        _ => None,
    }
}

/// Is `level` the error level (any case).
pub fn is_error_level(level: &str) -> bool {
    level.eq_ignore_ascii_case("error")
}

/// Does the record report an error ([`error`] without building its text).
pub fn is_error(record: &Record) -> bool {
    match record {
        Record::Event(e) => e.name == "error",
        Record::Log(l) => is_error_level(&l.level),
        _ => false,
    }
}

/// A tool call that failed.
pub fn is_tool_failure(record: &Record) -> bool {
    matches!(record, Record::ToolCall(c) if c.is_error)
}

/// What a failed tool call says went wrong: its output (a JSON string as is, anything else
/// as compact JSON), else its `error` attribute; `None` for a tool call that did not fail.
pub fn tool_error_text(call: &ToolCall) -> Option<String> {
    if !call.is_error {
        return None;
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    Some(
        text(&call.output)
            .or_else(|| call.attributes.get("error").and_then(text))
            .unwrap_or_default(),
    )
}

/// How a turn's tool failures read wherever they are shown (inspect's flags, the TUI):
/// `"1 of 2 tool call(s) failed: lookup_order (order A123 not found)"`, each failed call by
/// name and [`tool_error_text`] (cut to `max_chars`), or the counts alone when the calls
/// are not at hand.
pub fn tool_failures_text<'a>(
    failed: u32,
    calls: u32,
    turn_calls: impl IntoIterator<Item = &'a ToolCall>,
    max_chars: usize,
) -> String {
    let named: Vec<String> = turn_calls
        .into_iter()
        .filter(|c| c.is_error)
        .map(|c| match tool_error_text(c) {
            Some(e) if !e.trim().is_empty() => format!("{} ({})", c.name, cut(e.trim(), max_chars)),
            _ => c.name.clone(),
        })
        .collect();
    let counts = format!("{failed} of {calls} tool call(s) failed");
    if named.is_empty() {
        counts
    } else {
        format!("{counts}: {}", named.join("; "))
    }
}

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Does the record say the agent was cut off: an `interruption` event, an agent transcript
/// marked `interrupted`, or a `turn_end` with `interrupted: true`.
pub fn is_interruption(record: &Record) -> bool {
    match record {
        Record::Event(e) => e.name == "interruption",
        Record::Transcript(t) => t.interrupted,
        Record::TurnEnd(t) => {
            t.attributes.get("interrupted").and_then(|v| v.as_bool()) == Some(true)
        }
        _ => false,
    }
}

/// The mark a record puts on the timeline and when: errors and interruption events at the
/// record's time, tool failures when the tool returned, overlapping speech events.
pub fn mark(rec: &TimedRecord) -> Option<(u64, Mark)> {
    match &rec.record {
        Record::Event(e) => match e.name.as_str() {
            "interruption" => Some((rec.time_ns, Mark::Interruption)),
            "overlapping_speech" => Some((rec.time_ns, Mark::Overlap)),
            "error" => Some((rec.time_ns, Mark::Error)),
            _ => None,
        },
        Record::Log(l) if is_error_level(&l.level) => Some((rec.time_ns, Mark::Error)),
        Record::ToolCall(c) if c.is_error => Some((c.end_ns, Mark::ToolFailure)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attributes, Event, LogLine, ToolCall};

    fn event(name: &str, attrs: serde_json::Value) -> Record {
        Record::Event(Event {
            turn: None,
            name: name.into(),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
        })
    }

    #[test]
    fn errors_and_their_text() {
        let e = error(&event(
            "error",
            serde_json::json!({"source": "llm", "message": "429"}),
        ))
        .unwrap();
        assert_eq!(e.origin, ErrorOrigin::Event);
        assert_eq!(e.source.as_deref(), Some("llm"));
        assert_eq!(e.message, "429");
        let log = Record::Log(LogLine {
            turn: None,
            level: "ERROR".into(),
            target: "agent.tools".into(),
            message: "boom".into(),
            fields: Attributes::new(),
        });
        assert!(is_error(&log));
        assert_eq!(error(&log).unwrap().source.as_deref(), Some("agent.tools"));
        assert!(!is_error(&event("interruption", serde_json::json!({}))));
        let failed = Record::ToolCall(ToolCall {
            turn: None,
            call_id: None,
            name: "place_order".into(),
            arguments: serde_json::Value::Null,
            output: serde_json::Value::Null,
            is_error: true,
            start_ns: 0,
            end_ns: 1,
            attributes: Attributes::new(),
        });
        assert!(is_tool_failure(&failed));
        if let Record::ToolCall(c) = &failed {
            assert_eq!(tool_error_text(c).as_deref(), Some(""));
        }
        assert!(
            !is_error(&failed),
            "a failed tool is counted apart from errors"
        );
        assert!(is_interruption(&event(
            "interruption",
            serde_json::json!({})
        )));
    }

    #[test]
    fn tool_failures_name_the_tool_and_why() {
        let call = |name: &str, is_error: bool, output: serde_json::Value| ToolCall {
            turn: Some(4),
            call_id: None,
            name: name.into(),
            arguments: serde_json::Value::Null,
            output,
            is_error,
            start_ns: 0,
            end_ns: 1,
            attributes: Attributes::new(),
        };
        let calls = [
            call("get_weather", false, serde_json::json!("sunny")),
            call(
                "lookup_order",
                true,
                serde_json::json!("order A123 not found"),
            ),
            call("refund", true, serde_json::Value::Null),
        ];
        assert_eq!(
            tool_failures_text(2, 3, &calls, 80),
            "2 of 3 tool call(s) failed: lookup_order (order A123 not found); refund"
        );
        assert_eq!(
            tool_failures_text(2, 3, &calls, 6),
            "2 of 3 tool call(s) failed: lookup_order (order…); refund"
        );
        assert_eq!(
            tool_failures_text(1, 2, [], 80),
            "1 of 2 tool call(s) failed"
        );
    }
}

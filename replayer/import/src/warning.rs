//! Import warnings: something in the input was missing, odd or unknown. Each is printed by
//! the CLI and stored in the archive as an `import_warning` event, so a reader sees why a
//! value is absent or flagged.

use std::fmt;

use calltape_format::{Event, Record, TimedRecord, TurnId};
use serde_json::{json, Value};

/// One thing the importer could not map as-is.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportWarning {
    /// Stable machine code, e.g. `missing_metrics`, `negative_metric`, `unknown_event_type`.
    pub code: String,
    /// What happened and what the importer did about it.
    pub message: String,
    /// Session time the warning is about (0 when it is about the whole input).
    pub time_ns: u64,
    pub turn: Option<TurnId>,
    /// Raw values behind the warning (the odd metric, the unknown JSON, …).
    pub details: Value,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.turn {
            Some(t) => write!(f, "[{}] turn {t}: {}", self.code, self.message),
            None => write!(f, "[{}] {}", self.code, self.message),
        }
    }
}

impl ImportWarning {
    /// The `import_warning` event that stores this warning in the archive.
    pub fn to_record(&self) -> TimedRecord {
        let mut attributes = serde_json::Map::new();
        attributes.insert("code".into(), json!(self.code));
        attributes.insert("message".into(), json!(self.message));
        if !self.details.is_null() {
            attributes.insert("details".into(), self.details.clone());
        }
        TimedRecord::new(
            self.time_ns,
            Record::Event(Event {
                turn: self.turn,
                name: "import_warning".into(),
                attributes,
            }),
        )
    }
}

/// Collects warnings while an importer runs.
#[derive(Debug, Default, Clone)]
pub struct Warnings {
    list: Vec<ImportWarning>,
}

impl Warnings {
    pub fn push(
        &mut self,
        code: &str,
        time_ns: u64,
        turn: Option<TurnId>,
        message: impl Into<String>,
        details: Value,
    ) {
        self.list.push(ImportWarning {
            code: code.into(),
            message: message.into(),
            time_ns,
            turn,
            details,
        });
    }

    /// Adds a warning about the input as a whole.
    pub fn general(&mut self, code: &str, message: impl Into<String>, details: Value) {
        self.push(code, 0, None, message, details);
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_vec(self) -> Vec<ImportWarning> {
        self.list
    }
}

//! The Parquet tables' columns: Arrow record batches built from the catalog's rows
//! ([`crate::rows`]). Times are TIMESTAMP(µs, UTC); durations are INT64 nanoseconds (`_ns`)
//! plus DOUBLE milliseconds (`_ms`); flags are LIST<STRING>. Every table but `sessions` and
//! `damaged` repeats the session's key and agent (`location`, `session_id`, `started_at`,
//! `agent_name`, `agent_version`) so the usual queries need no join. Every table carries
//! `indexed_at`, which `compact` uses to drop rows of an archive indexed again since.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{Field, Schema};

use crate::rows::{DamagedRow, SessionRow, SessionRows, PARTS};
use calltape_read::error::{AppError, Result};

/// The tables, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Sessions,
    Turns,
    ToolCalls,
    Errors,
    Usage,
    Damaged,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Sessions,
        Table::Turns,
        Table::ToolCalls,
        Table::Errors,
        Table::Usage,
        Table::Damaged,
    ];

    /// The tables built from an archive's rows (all but `damaged`).
    pub const OF_SESSIONS: [Table; 5] = [
        Table::Sessions,
        Table::Turns,
        Table::ToolCalls,
        Table::Errors,
        Table::Usage,
    ];

    /// The table's folder under the destination.
    pub fn name(self) -> &'static str {
        match self {
            Table::Sessions => "sessions",
            Table::Turns => "turns",
            Table::ToolCalls => "tool_calls",
            Table::Errors => "errors",
            Table::Usage => "usage",
            Table::Damaged => "damaged",
        }
    }
}

/// Unix ns → µs (the Parquet timestamps' unit).
fn us(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

/// Columns collected one by one, each with its field.
#[derive(Default)]
struct Cols {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Cols {
    fn push(&mut self, name: &str, nullable: bool, array: ArrayRef) {
        self.fields
            .push(Field::new(name, array.data_type().clone(), nullable));
        self.arrays.push(array);
    }

    fn str<'a>(&mut self, name: &str, values: impl Iterator<Item = &'a str>) {
        self.push(
            name,
            false,
            Arc::new(values.map(Some).collect::<StringArray>()),
        );
    }

    fn opt_str<'a>(&mut self, name: &str, values: impl Iterator<Item = Option<&'a str>>) {
        self.push(name, true, Arc::new(values.collect::<StringArray>()));
    }

    fn i64(&mut self, name: &str, values: impl Iterator<Item = i64>) {
        self.push(
            name,
            false,
            Arc::new(values.map(Some).collect::<Int64Array>()),
        );
    }

    fn opt_i64(&mut self, name: &str, values: impl Iterator<Item = Option<i64>>) {
        self.push(name, true, Arc::new(values.collect::<Int64Array>()));
    }

    fn f64(&mut self, name: &str, values: impl Iterator<Item = f64>) {
        self.push(
            name,
            false,
            Arc::new(values.map(Some).collect::<Float64Array>()),
        );
    }

    fn bool(&mut self, name: &str, values: impl Iterator<Item = bool>) {
        self.push(
            name,
            false,
            Arc::new(values.map(Some).collect::<BooleanArray>()),
        );
    }

    /// A TIMESTAMP(µs, UTC) column from unix ns.
    fn ts(&mut self, name: &str, unix_ns: impl Iterator<Item = i64>) {
        let a: TimestampMicrosecondArray = unix_ns.map(|n| Some(us(n))).collect();
        self.push(name, false, Arc::new(a.with_timezone("UTC")));
    }

    /// `{base}_ns` INT64 and `{base}_ms` DOUBLE from one duration in ns.
    fn dur(&mut self, base: &str, ns: impl Iterator<Item = Option<i64>> + Clone, nullable: bool) {
        let ms = ns.clone().map(|v| v.map(|n| n as f64 / 1e6));
        let a: Int64Array = ns.collect();
        let b: Float64Array = ms.collect();
        self.push(&format!("{base}_ns"), nullable, Arc::new(a));
        self.push(&format!("{base}_ms"), nullable, Arc::new(b));
    }

    fn list_str<'a>(&mut self, name: &str, values: impl Iterator<Item = &'a [String]>) {
        let mut b = ListBuilder::new(StringBuilder::new());
        for v in values {
            for s in v {
                b.values().append_value(s);
            }
            b.append(true);
        }
        self.push(name, false, Arc::new(b.finish()));
    }

    fn finish(self) -> Result<RecordBatch> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
            .map_err(|e| AppError::Other(format!("building a Parquet batch: {e}")))
    }
}

/// The session columns every child table repeats.
fn session_key<'a, T: 'a>(cols: &mut Cols, rows: &'a [(&'a SessionRow, T)], indexed_at_ns: i64) {
    cols.str(
        "location",
        rows.iter().map(|(s, _)| s.object.location.as_str()),
    );
    cols.str(
        "session_id",
        rows.iter().map(|(s, _)| s.session_id.as_str()),
    );
    cols.ts("started_at", rows.iter().map(|(s, _)| s.started_at_unix_ns));
    cols.str(
        "agent_name",
        rows.iter().map(|(s, _)| s.agent_name.as_str()),
    );
    cols.str(
        "agent_version",
        rows.iter().map(|(s, _)| s.agent_version.as_str()),
    );
    cols.ts("indexed_at", rows.iter().map(|_| indexed_at_ns));
}

/// The batch of `table` (one of [`Table::OF_SESSIONS`]) for `sessions` (all of one day),
/// indexed at `indexed_at_ns`; `damaged` rows are built by [`damaged_batch`].
pub fn batch(table: Table, sessions: &[SessionRows], indexed_at_ns: i64) -> Result<RecordBatch> {
    let mut c = Cols::default();
    match table {
        Table::Sessions => {
            let s: Vec<&SessionRow> = sessions.iter().map(|r| &r.session).collect();
            c.str("location", s.iter().map(|s| s.object.location.as_str()));
            c.str("session_id", s.iter().map(|s| s.session_id.as_str()));
            c.ts("started_at", s.iter().map(|s| s.started_at_unix_ns));
            c.str("agent_name", s.iter().map(|s| s.agent_name.as_str()));
            c.str("agent_version", s.iter().map(|s| s.agent_version.as_str()));
            c.opt_str("environment", s.iter().map(|s| s.environment.as_deref()));
            c.str("tags_json", s.iter().map(|s| s.tags_json.as_str()));
            c.dur("duration", s.iter().map(|s| Some(s.duration_ns)), false);
            c.i64("turns", s.iter().map(|s| s.turns));
            c.i64("records", s.iter().map(|s| s.records));
            c.i64("interruptions", s.iter().map(|s| s.interruptions));
            c.i64("errors", s.iter().map(|s| s.errors));
            c.i64("tool_calls", s.iter().map(|s| s.tool_calls));
            c.i64("tool_errors", s.iter().map(|s| s.tool_errors));
            c.dur("e2e_p50", s.iter().map(|s| s.e2e_p50_ns), true);
            c.dur("e2e_p95", s.iter().map(|s| s.e2e_p95_ns), true);
            c.dur("max_e2e", s.iter().map(|s| s.max_e2e_ns), true);
            c.opt_str("end_reason", s.iter().map(|s| s.end_reason.as_deref()));
            c.opt_str("outcome", s.iter().map(|s| s.outcome.as_deref()));
            c.bool("recovered", s.iter().map(|s| s.recovered));
            c.opt_str(
                "recovery_reason",
                s.iter().map(|s| s.recovery_reason.as_deref()),
            );
            c.str("dropped_json", s.iter().map(|s| s.dropped_json.as_str()));
            c.i64("size_bytes", s.iter().map(|s| s.object.size_bytes));
            c.opt_str("etag", s.iter().map(|s| s.object.etag.as_deref()));
            c.ts(
                "last_modified",
                s.iter().map(|s| s.object.last_modified_unix_ns),
            );
            c.bool("deep", s.iter().map(|s| s.deep));
            c.ts("indexed_at", s.iter().map(|_| indexed_at_ns));
        }
        Table::Turns => {
            let rows: Vec<_> = sessions
                .iter()
                .flat_map(|r| r.turns.iter().map(move |t| (&r.session, t)))
                .collect();
            session_key(&mut c, &rows, indexed_at_ns);
            c.i64("turn", rows.iter().map(|(_, t)| t.turn));
            c.str("speaker", rows.iter().map(|(_, t)| t.speaker.as_str()));
            c.dur("start", rows.iter().map(|(_, t)| Some(t.start_ns)), false);
            c.dur("end", rows.iter().map(|(_, t)| t.end_ns), true);
            c.str("user_text", rows.iter().map(|(_, t)| t.user_text.as_str()));
            c.str(
                "agent_text",
                rows.iter().map(|(_, t)| t.agent_text.as_str()),
            );
            c.bool("interrupted", rows.iter().map(|(_, t)| t.interrupted));
            c.i64("errors", rows.iter().map(|(_, t)| t.errors));
            c.i64("tool_calls", rows.iter().map(|(_, t)| t.tool_calls));
            c.i64("tool_errors", rows.iter().map(|(_, t)| t.tool_errors));
            for (i, part) in PARTS.iter().enumerate() {
                c.dur(
                    part.name(),
                    rows.iter().map(move |(_, t)| t.parts_ns[i]),
                    true,
                );
                c.bool(
                    &format!("{}_valid", part.name()),
                    rows.iter().map(|(_, t)| t.parts_valid[i]),
                );
            }
            c.dur(
                "reported_e2e",
                rows.iter().map(|(_, t)| t.reported_e2e_ns),
                true,
            );
            c.list_str("flags", rows.iter().map(|(_, t)| t.flags.as_slice()));
        }
        Table::ToolCalls => {
            let rows: Vec<_> = sessions
                .iter()
                .flat_map(|r| r.tool_calls.iter().map(move |t| (&r.session, t)))
                .collect();
            session_key(&mut c, &rows, indexed_at_ns);
            c.opt_i64("turn", rows.iter().map(|(_, t)| t.turn));
            c.opt_str("call_id", rows.iter().map(|(_, t)| t.call_id.as_deref()));
            c.str("name", rows.iter().map(|(_, t)| t.name.as_str()));
            c.bool("is_error", rows.iter().map(|(_, t)| t.is_error));
            c.dur("start", rows.iter().map(|(_, t)| Some(t.start_ns)), false);
            c.dur(
                "duration",
                rows.iter().map(|(_, t)| Some(t.duration_ns)),
                false,
            );
            c.str("output", rows.iter().map(|(_, t)| t.output.as_str()));
        }
        Table::Errors => {
            let rows: Vec<_> = sessions
                .iter()
                .flat_map(|r| r.errors.iter().map(move |e| (&r.session, e)))
                .collect();
            session_key(&mut c, &rows, indexed_at_ns);
            c.opt_i64("turn", rows.iter().map(|(_, e)| e.turn));
            c.dur("time", rows.iter().map(|(_, e)| Some(e.time_ns)), false);
            c.str("kind", rows.iter().map(|(_, e)| e.kind.as_str()));
            c.opt_str("source", rows.iter().map(|(_, e)| e.source.as_deref()));
            c.str("message", rows.iter().map(|(_, e)| e.message.as_str()));
        }
        Table::Usage => {
            let rows: Vec<_> = sessions
                .iter()
                .flat_map(|r| r.usage.iter().map(move |u| (&r.session, u)))
                .collect();
            session_key(&mut c, &rows, indexed_at_ns);
            c.opt_str("model", rows.iter().map(|(_, u)| u.model.as_deref()));
            c.opt_str("provider", rows.iter().map(|(_, u)| u.provider.as_deref()));
            c.i64("prompt_tokens", rows.iter().map(|(_, u)| u.prompt_tokens));
            c.i64(
                "completion_tokens",
                rows.iter().map(|(_, u)| u.completion_tokens),
            );
            c.i64("cached_tokens", rows.iter().map(|(_, u)| u.cached_tokens));
            c.f64(
                "stt_audio_seconds",
                rows.iter().map(|(_, u)| u.stt_audio_seconds),
            );
            c.f64(
                "tts_audio_seconds",
                rows.iter().map(|(_, u)| u.tts_audio_seconds),
            );
            c.i64("tts_characters", rows.iter().map(|(_, u)| u.tts_characters));
        }
        Table::Damaged => {
            return Err(AppError::Other(
                "the damaged table is not built from sessions".into(),
            ))
        }
    }
    c.finish()
}

/// The `damaged` batch.
pub fn damaged_batch(rows: &[DamagedRow], indexed_at_ns: i64) -> Result<RecordBatch> {
    let mut c = Cols::default();
    c.str("location", rows.iter().map(|d| d.object.location.as_str()));
    c.i64("size_bytes", rows.iter().map(|d| d.object.size_bytes));
    c.opt_str("etag", rows.iter().map(|d| d.object.etag.as_deref()));
    c.ts(
        "last_modified",
        rows.iter().map(|d| d.object.last_modified_unix_ns),
    );
    c.str("reason", rows.iter().map(|d| d.reason.as_str()));
    c.ts("indexed_at", rows.iter().map(|_| indexed_at_ns));
    c.finish()
}

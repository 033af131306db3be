//! The catalog's rows: one function turns an archive's summary (and, with `--deep`, its
//! control records) into the rows of every catalog table. Both sinks, the SQLite catalog
//! (`indexer`) and the Parquet tables (`parquet`), write exactly these rows, so the two can
//! never disagree on what a call holds. Durations are kept in nanoseconds here; each sink
//! chooses its units.

use calltape_format::call::latency::Part;
use calltape_format::Summary;
use object_store::ObjectMeta;

use crate::indexer::DeepRecords;

/// The parts of the latency breakdown in column order: e2e, then the breakdown (SPEC §9).
pub const PARTS: [Part; 7] = [
    Part::E2e,
    Part::Eou,
    Part::Stt,
    Part::Llm,
    Part::Tool,
    Part::Tts,
    Part::Rest,
];

/// The object an archive was read from, as listed (for incremental runs).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRow {
    pub location: String,
    pub size_bytes: i64,
    pub etag: Option<String>,
    /// RFC 3339.
    pub last_modified: String,
    pub last_modified_unix_ns: i64,
}

impl ObjectRow {
    pub fn new(meta: &ObjectMeta, location: &str) -> ObjectRow {
        ObjectRow {
            location: location.to_string(),
            size_bytes: meta.size as i64,
            etag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339(),
            last_modified_unix_ns: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub object: ObjectRow,
    pub session_id: String,
    pub started_at: String,
    pub started_at_unix_ns: i64,
    /// `YYYY-MM-DD` (UTC) of the start: the Parquet partition and SQLite's `started_day`.
    pub started_day: String,
    pub agent_name: String,
    pub agent_version: String,
    pub environment: Option<String>,
    pub tags_json: String,
    pub duration_ns: i64,
    pub turns: i64,
    pub records: i64,
    pub interruptions: i64,
    pub errors: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    pub e2e_p50_ns: Option<i64>,
    pub e2e_p95_ns: Option<i64>,
    /// The slowest valid e2e of the call.
    pub max_e2e_ns: Option<i64>,
    pub end_reason: Option<String>,
    pub outcome: Option<String>,
    pub recovered: bool,
    pub recovery_reason: Option<String>,
    pub dropped_json: String,
    pub deep: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TurnRow {
    pub turn: i64,
    pub speaker: String,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    pub user_text: String,
    pub agent_text: String,
    pub interrupted: bool,
    pub errors: i64,
    pub tool_calls: i64,
    pub tool_errors: i64,
    /// Each of [`PARTS`] as measured (signed ns).
    pub parts_ns: [Option<i64>; 7],
    /// Each of [`PARTS`]: present and not flagged negative or absurd (`Latency::valid`).
    pub parts_valid: [bool; 7],
    pub reported_e2e_ns: Option<i64>,
    /// SPEC §9 flag strings.
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallRow {
    pub turn: Option<i64>,
    pub call_id: Option<String>,
    pub name: String,
    pub is_error: bool,
    pub start_ns: i64,
    pub duration_ns: i64,
    /// Output JSON, first 500 characters.
    pub output: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRow {
    pub turn: Option<i64>,
    pub time_ns: i64,
    /// `event` or `log`.
    pub kind: String,
    pub source: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// None for the summary's totals (without `--deep`).
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub stt_audio_seconds: f64,
    pub tts_audio_seconds: f64,
    pub tts_characters: i64,
}

/// Every catalog row of one archive.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRows {
    pub session: SessionRow,
    pub turns: Vec<TurnRow>,
    /// `--deep` only.
    pub tool_calls: Vec<ToolCallRow>,
    /// `--deep` only.
    pub errors: Vec<ErrorRow>,
    pub usage: Vec<UsageRow>,
}

/// An archive that could not be opened.
#[derive(Debug, Clone, PartialEq)]
pub struct DamagedRow {
    pub object: ObjectRow,
    pub reason: String,
}

/// `YYYY-MM-DD` (UTC) of a unix time in ns.
pub fn day_of(unix_ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(unix_ns)
        .format("%Y-%m-%d")
        .to_string()
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The rows of one archive read for the catalog.
pub fn session_rows(
    object: ObjectRow,
    s: &Summary,
    recovered: bool,
    deep: Option<&DeepRecords>,
) -> SessionRows {
    let h = &s.header;
    let t = &s.totals;
    let max_e2e_ns = s
        .turns
        .iter()
        .filter_map(|t| t.latency.valid_e2e_ns())
        .max();
    let session = SessionRow {
        object,
        session_id: h.session_id.clone(),
        started_at: h.started_at.clone(),
        started_at_unix_ns: h.started_at_unix_ns,
        started_day: day_of(h.started_at_unix_ns),
        agent_name: h.agent.name.clone(),
        agent_version: h.agent.version.clone(),
        environment: h.environment.clone(),
        tags_json: serde_json::Value::Object(h.tags.clone()).to_string(),
        duration_ns: count(s.duration_ns),
        turns: t.turns.into(),
        records: count(t.records),
        interruptions: t.interruptions.into(),
        errors: t.errors.into(),
        tool_calls: t.tool_calls.into(),
        tool_errors: t.tool_errors.into(),
        e2e_p50_ns: t.e2e_p50_ns,
        e2e_p95_ns: t.e2e_p95_ns,
        max_e2e_ns,
        end_reason: t.end_reason.clone(),
        outcome: t.outcome.clone(),
        recovered,
        recovery_reason: s.recovery.as_ref().map(|r| r.reason.clone()),
        dropped_json: serde_json::to_string(&t.dropped).unwrap_or_else(|_| "[]".into()),
        deep: deep.is_some(),
    };
    let turns = s
        .turns
        .iter()
        .map(|turn| {
            let l = &turn.latency;
            TurnRow {
                turn: turn.turn.into(),
                speaker: turn.speaker.to_string(),
                start_ns: count(turn.start_ns),
                end_ns: turn.end_ns.map(count),
                user_text: turn.user_text.clone(),
                agent_text: turn.agent_text.clone(),
                interrupted: turn.interrupted,
                errors: turn.errors.into(),
                tool_calls: turn.tool_calls.into(),
                tool_errors: turn.tool_errors.into(),
                parts_ns: PARTS.map(|p| l.value(p)),
                parts_valid: PARTS.map(|p| l.valid(p).is_some()),
                reported_e2e_ns: l.reported_e2e_ns,
                flags: l.flags.iter().map(|f| f.as_str().into_owned()).collect(),
            }
        })
        .collect();
    let usage_row = |model: Option<String>,
                     provider: Option<String>,
                     u: (u64, u64, u64, f64, f64, u64)| UsageRow {
        model,
        provider,
        prompt_tokens: count(u.0),
        completion_tokens: count(u.1),
        cached_tokens: count(u.2),
        stt_audio_seconds: u.3,
        tts_audio_seconds: u.4,
        tts_characters: count(u.5),
    };
    let usage = match deep.filter(|d| !d.usage.is_empty()) {
        Some(d) => d
            .usage
            .iter()
            .map(|u| {
                usage_row(
                    u.model.clone(),
                    u.provider.clone(),
                    (
                        u.prompt_tokens,
                        u.completion_tokens,
                        u.cached_tokens,
                        u.stt_audio_seconds,
                        u.tts_audio_seconds,
                        u.tts_characters,
                    ),
                )
            })
            .collect(),
        None => {
            let u = &t.usage;
            vec![usage_row(
                None,
                None,
                (
                    u.prompt_tokens,
                    u.completion_tokens,
                    u.cached_tokens,
                    u.stt_audio_seconds,
                    u.tts_audio_seconds,
                    u.tts_characters,
                ),
            )]
        }
    };
    let (tool_calls, errors) = match deep {
        Some(d) => (
            d.tool_calls
                .iter()
                .map(|(turn, c)| ToolCallRow {
                    turn: turn.map(i64::from),
                    call_id: c.call_id.clone(),
                    name: c.name.clone(),
                    is_error: c.is_error,
                    start_ns: count(c.start_ns),
                    duration_ns: count(c.end_ns.saturating_sub(c.start_ns)),
                    output: calltape_read::units::preview(&c.output.to_string(), 500),
                })
                .collect(),
            d.errors
                .iter()
                .map(|(turn, time, kind, source, message)| ErrorRow {
                    turn: turn.map(i64::from),
                    time_ns: count(*time),
                    kind: kind.to_string(),
                    source: source.clone(),
                    message: message.clone(),
                })
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    SessionRows {
        session,
        turns,
        tool_calls,
        errors,
        usage,
    }
}
